/*
 * broker/io.h — the seam between the broker core and the world.
 *
 * A broker node is a state machine. It never calls the OS: no syscalls, no wall
 * clock, no libc rand, no globals. Everything it needs from the world comes
 * through one table of function pointers plus a context pointer (`io_t`), the
 * way SQLite's VFS works. Everything the world has to tell the node comes back
 * in through the handler table (`io_handler_t`).
 *
 * Two implementations exist: the deterministic simulator (sim/) and the libuv
 * runtime (runtime/). Unit tests may provide a third by hand.
 *
 * Conventions (libuv style):
 *   - every fallible call returns 0 or a negative IO_E* code;
 *   - a completion never fires for a call that returned an error;
 *   - bytes passed in are copied before the call returns (the caller keeps
 *     ownership), except read buffers, which the caller owns and must keep
 *     valid until the completion fires or the node is destroyed;
 *   - addresses are small integers: peers are node ids, clients get addresses
 *     assigned by the world (>= IO_ADDR_CLIENT_BASE in the real runtime).
 */
#ifndef CHAOSLAB_BROKER_IO_H
#define CHAOSLAB_BROKER_IO_H

#include <stddef.h>
#include <stdint.h>

/* Error codes: negative, stable, independent of errno values. */
enum {
    IO_OK = 0,
    IO_EINVAL = -1,   /* bad argument (programmer error in the core) */
    IO_ENOENT = -2,   /* no such file */
    IO_EIO = -3,      /* read/write failed (latent sector error, ...) */
    IO_ENOSPC = -4,   /* disk full */
    IO_EMSGSIZE = -5, /* message larger than IO_MESSAGE_SIZE_MAX */
    IO_ENOMEM = -6,   /* a bounded queue or allocation is exhausted */
    IO_EUNREACH = -7, /* destination unknown (never a silent loss signal) */
    IO_ECANCELED = -8,/* operation cancelled (node stopping) */
    IO_ENAMETOOLONG = -9, /* file name longer than IO_FILE_NAME_MAX */
};

/* Limits of the seam itself. */
#define IO_MESSAGE_SIZE_MAX (4u * 1024u * 1024u) /* one wire message */
#define IO_FILE_NAME_MAX 63u                      /* bytes, excluding NUL */
#define IO_FILES_MAX 1024u                        /* files per node disk */
#define IO_ADDR_CLIENT_BASE 1024u                 /* real runtime client ids */

typedef uint32_t io_addr_t;

/* Trace events: a static event name plus a short key=value detail string.
 * Implementations fold them into the history/trace; the core must not rely on
 * them for behaviour. */
typedef struct io_trace_event {
    const char *name;   /* static string, e.g. "raft.elected" */
    const char *detail; /* NUL-terminated, may be NULL; copied if kept */
} io_trace_event_t;

/* Callback for io_methods.disk_list: called once per file, in byte order of
 * the names (deterministic). Return non-zero to stop the listing early. */
typedef int (*io_list_cb)(void *arg, const char *name, uint64_t size_bytes);

/*
 * The method table. `ctx` is the implementation's per-node context; it is the
 * first argument of every method.
 *
 * Disk model: a flat namespace of named files. write/read/fsync/truncate/
 * remove are asynchronous; each completes exactly once through
 * io_handler_t.on_disk_done(node, token, result) unless the call itself
 * returned an error (then it never completes). Operations complete in the
 * order they were issued (the disk is a serial device), so an fsync's
 * completion means every write issued before it is durable. Writes sit in a
 * volatile cache until an fsync of that file completes; a crash may lose
 * them, or keep them partly. `list` and `size` are synchronous metadata
 * queries and see the volatile view. A write to a missing file creates it;
 * creation and removal are durable on completion.
 */
typedef struct io_methods {
    /* Monotonic time of this node's clock in nanoseconds. Never goes back. */
    uint64_t (*now_ns)(void *ctx);

    /* Next value of this node's own PRNG stream. */
    uint64_t (*random_u64)(void *ctx);

    /* Send one message of `len` bytes to `dest`. The bytes are copied. Delivery
     * is not guaranteed (loss, partition, crash): returns 0 even if the message
     * will be lost. Errors: IO_EMSGSIZE, IO_EUNREACH (no such address),
     * IO_ENOMEM (local send queue full). */
    int (*send)(void *ctx, io_addr_t dest, const uint8_t *bytes, size_t len);

    /* Arm the timer `token` to fire once at this node's clock >= deadline_ns.
     * Re-arming an armed token replaces its deadline. A deadline in the past
     * fires as soon as possible (never synchronously inside this call). */
    int (*timer_set)(void *ctx, uint64_t deadline_ns, uint64_t token);

    /* Disarm `token`. Returns 0 whether or not it was armed. After it returns,
     * on_timer(token) does not fire for the cancelled arming. */
    int (*timer_cancel)(void *ctx, uint64_t token);

    /* Write `len` bytes at `offset` of file `name` (created if missing). The
     * bytes are copied. Completion result: bytes written, or IO_ENOSPC/IO_EIO. */
    int (*disk_write)(void *ctx, const char *name, uint64_t offset,
                      const uint8_t *bytes, size_t len, uint64_t token);

    /* Read up to `len` bytes at `offset` into `buf` (caller-owned, valid until
     * completion). Completion result: bytes read (short at end of file, 0 past
     * it), or IO_ENOENT/IO_EIO. */
    int (*disk_read)(void *ctx, const char *name, uint64_t offset,
                     uint8_t *buf, size_t len, uint64_t token);

    /* Make every completed write and truncate of `name` durable. Completion
     * result: 0, or IO_ENOENT/IO_EIO. */
    int (*disk_fsync)(void *ctx, const char *name, uint64_t token);

    /* Set the size of `name` (zero-filling when growing). Volatile until the
     * next fsync of the file. Completion result: 0 or IO_ENOENT/IO_EIO. */
    int (*disk_truncate)(void *ctx, const char *name, uint64_t size_bytes,
                         uint64_t token);

    /* Remove `name`. Completion result: 0 or IO_ENOENT. */
    int (*disk_remove)(void *ctx, const char *name, uint64_t token);

    /* Size of `name` in the volatile view. Returns 0 and sets *size_bytes, or
     * IO_ENOENT. Synchronous. */
    int (*disk_size)(void *ctx, const char *name, uint64_t *size_bytes);

    /* Call `cb` for every file, names in ascending byte order. Synchronous.
     * Returns 0 or the first non-zero value `cb` returned. */
    int (*disk_list)(void *ctx, io_list_cb cb, void *arg);

    /* Record a structured trace event. Never fails. */
    void (*trace)(void *ctx, const io_trace_event_t *event);
} io_methods_t;

/* What the node sees of the world: methods + their context + its identity. */
typedef struct io {
    const io_methods_t *methods;
    void *ctx;
    io_addr_t self; /* this node's own address */
} io_t;

/*
 * The inputs: how the world drives the node. The world calls these one at a
 * time, never re-entrantly, and never after the node was halted.
 */
typedef struct io_handler {
    /* One message arrived. `bytes` is valid only during the call. The bytes
     * may be corrupt, truncated or duplicated: the node validates them. */
    void (*on_message)(void *node, io_addr_t from, const uint8_t *bytes,
                       size_t len);
    /* A timer armed with `token` reached its deadline. */
    void (*on_timer)(void *node, uint64_t token);
    /* A disk operation issued with `token` completed with `result`. */
    void (*on_disk_done)(void *node, uint64_t token, int64_t result);
} io_handler_t;

/*
 * A program is what runs on a host: the world boots it (a new incarnation
 * after every crash/restart), drives it through `handler`, and halts it. halt
 * frees all volatile state; pending timers and disk completions are dropped by
 * the world, never delivered to a halted node.
 */
typedef struct io_program {
    const char *name;
    /* Create a node on `io` and start it (recovery from disk begins here).
     * `arg` is the program's configuration, owned by the caller of the world.
     * Returns the node, or NULL on failure (the host stays down). */
    void *(*boot)(void *arg, const io_t *io);
    /* Free the node. `graceful` = 1 for an orderly stop, 0 for a crash. */
    void (*halt)(void *node, int graceful);
    const io_handler_t *handler;
} io_program_t;

/* Convenience wrappers, so core code reads `io_now_ns(io)`. */
static inline uint64_t io_now_ns(const io_t *io) {
    return io->methods->now_ns(io->ctx);
}
static inline uint64_t io_random_u64(const io_t *io) {
    return io->methods->random_u64(io->ctx);
}
static inline int io_send(const io_t *io, io_addr_t dest, const uint8_t *b,
                          size_t len) {
    return io->methods->send(io->ctx, dest, b, len);
}
static inline int io_timer_set(const io_t *io, uint64_t deadline_ns,
                               uint64_t token) {
    return io->methods->timer_set(io->ctx, deadline_ns, token);
}
static inline int io_timer_cancel(const io_t *io, uint64_t token) {
    return io->methods->timer_cancel(io->ctx, token);
}
static inline int io_disk_write(const io_t *io, const char *name, uint64_t off,
                                const uint8_t *b, size_t len, uint64_t token) {
    return io->methods->disk_write(io->ctx, name, off, b, len, token);
}
static inline int io_disk_read(const io_t *io, const char *name, uint64_t off,
                               uint8_t *buf, size_t len, uint64_t token) {
    return io->methods->disk_read(io->ctx, name, off, buf, len, token);
}
static inline int io_disk_fsync(const io_t *io, const char *name,
                                uint64_t token) {
    return io->methods->disk_fsync(io->ctx, name, token);
}
static inline int io_disk_truncate(const io_t *io, const char *name,
                                   uint64_t size_bytes, uint64_t token) {
    return io->methods->disk_truncate(io->ctx, name, size_bytes, token);
}
static inline int io_disk_remove(const io_t *io, const char *name,
                                 uint64_t token) {
    return io->methods->disk_remove(io->ctx, name, token);
}
static inline int io_disk_size(const io_t *io, const char *name,
                               uint64_t *size_bytes) {
    return io->methods->disk_size(io->ctx, name, size_bytes);
}
static inline int io_disk_list(const io_t *io, io_list_cb cb, void *arg) {
    return io->methods->disk_list(io->ctx, cb, arg);
}
static inline void io_trace(const io_t *io, const char *name,
                            const char *detail) {
    io_trace_event_t ev = {name, detail};
    io->methods->trace(io->ctx, &ev);
}

#endif /* CHAOSLAB_BROKER_IO_H */
