/* runtime/errors.c — names for error codes (see errors.h). */
#include "runtime/errors.h"

#include "broker/io.h"

const char *rt_strerror(int code) {
    switch (code) {
    case IO_OK: return "ok";
    case IO_EINVAL: return "invalid argument";
    case IO_ENOENT: return "no such file";
    case IO_EIO: return "i/o error";
    case IO_ENOSPC: return "no space left on device";
    case IO_EMSGSIZE: return "message too large";
    case IO_ENOMEM: return "queue or memory exhausted";
    case IO_EUNREACH: return "destination unknown";
    case IO_ECANCELED: return "cancelled (node stopping)";
    case IO_ENAMETOOLONG: return "file name too long";
    case RT_EBIND: return "cannot bind the listen address";
    case RT_ELOCKED: return "data dir locked by another process";
    case RT_EBOOT: return "node failed to boot";
    case RT_ESTATE: return "not allowed in this state";
    case RT_EADDR: return "malformed host:port address";
    case RT_EDIR: return "data dir unusable";
    default: return "unknown error";
    }
}
