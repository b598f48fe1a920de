# Finds chaoslab's dependencies with pkg-config. A missing one stops the
# configure step with the Debian package to install (scripts/setup.sh does it).
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install the Debian package 'pkg-config' "
                      "(or run scripts/setup.sh as root)")
endif()

function(chaoslab_require var module debian_package)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "dependency '${module}' not found: install the Debian package "
                        "'${debian_package}' (apt-get install -y ${debian_package}, "
                        "or run scripts/setup.sh as root)")
  endif()
  message(STATUS "found ${module} ${${var}_VERSION}")
endfunction()

chaoslab_require(LUA lua5.4 liblua5.4-dev)
chaoslab_require(LIBUV libuv libuv1-dev)
chaoslab_require(SQLITE3 sqlite3 libsqlite3-dev)
if(CHAOSLAB_TESTS)
  chaoslab_require(CMOCKA cmocka libcmocka-dev)
endif()
