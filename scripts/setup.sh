#!/usr/bin/env bash
# Installs chaoslab's build and test dependencies on Debian (run as root, or
# with sudo available). Safe to run again: apt skips what is installed.
set -euo pipefail

PACKAGES=(
  cmake gcc make libc6-dev pkg-config   # build (libc6-dev is only a "recommends" of gcc)
  liblua5.4-dev libuv1-dev libsqlite3-dev libcmocka-dev   # libraries
  sqlite3                               # inspecting reports by hand
)
if [[ "${1:-}" == "--test" ]]; then
  # Real AMQP clients for the broker acceptance tests, clang for fuzzing.
  # libclang-rt-14-dev holds libFuzzer and the sanitizer runtimes for clang; it
  # is only "recommended" by clang, and we install without recommends.
  # chromium renders the --html pages headless in tests/test_cli_run.c.
  PACKAGES+=(clang libclang-rt-14-dev python3 python3-pika amqp-tools librabbitmq-dev chromium
            python3-junitparser  # a real JUnit consumer for --junit tests
            python3-yaml)        # reads the Kubernetes manifests in tests/ci
  # amqplib's runtime; a machine that has node and npm from elsewhere keeps them.
  command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
fi

# amqplib (from the npm registry) for tests/amqp/*.js, into tests/amqp/node_modules.
install_amqplib() {
  [[ "${1:-}" == "--test" ]] || return 0
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/amqp"
  [[ -f "$dir/node_modules/amqplib/package.json" ]] && return 0
  echo "setup: installing amqplib into tests/amqp/node_modules" >&2
  npm install --no-audit --no-fund --no-save --no-package-lock --prefix "$dir" \
    amqplib@0.10.9 >/dev/null
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  install_amqplib "${1:-}"
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root (missing: ${missing[*]})" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_amqplib "${1:-}"
