/*
 * runtime/errors.h — error codes of the libuv runtime.
 *
 * The runtime returns the IO_E* codes of broker/io.h where they fit (bad
 * argument, missing file, full queue). The codes below cover what only a real
 * process meets: a busy port, a locked data dir, a node that failed to boot.
 * They are negative and far from the IO_E* range so the two never collide.
 */
#ifndef CHAOSLAB_RUNTIME_ERRORS_H
#define CHAOSLAB_RUNTIME_ERRORS_H

enum {
    RT_EBIND = -100,   /* the listen address could not be bound (in use?) */
    RT_ELOCKED = -101, /* the data dir is locked by another process */
    RT_EBOOT = -102,   /* program->boot returned NULL */
    RT_ESTATE = -103,  /* call not allowed in the current state */
    RT_EADDR = -104,   /* malformed host:port */
    RT_EDIR = -105,    /* data dir missing or unusable */
};

/* A static, human-readable name for a runtime or IO_E* code. Never NULL. */
const char *rt_strerror(int code);

#endif
