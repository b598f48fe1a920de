/*
 * runtime/uv_io.h — broker/io.h on libuv: real TCP between peers, real files.
 *
 * One rt_io_t hosts ONE node (an io_program_t) on a uv_loop_t the caller
 * owns; several rt_io_t may share one loop (tests run a two-node cluster in
 * one process). The runtime gives the node:
 *   - now_ns: uv_hrtime() (monotonic);
 *   - random_u64: xoshiro256** seeded from the OS (or from cfg.seed);
 *   - timers: a bounded token table driven by one uv_timer_t;
 *   - send: length-prefixed frames on one outbound TCP link per peer, with
 *     reconnect and exponential backoff; a peer that is down means lost
 *     messages, never an error; sends to client addresses
 *     (>= IO_ADDR_CLIENT_BASE) go to a hook the embedding code installs;
 *   - disk: files in the data dir, one operation at a time in issue order on
 *     libuv's thread pool.
 *
 * Lifecycle: rt_io_new -> rt_io_start -> ... -> rt_io_stop -> rt_io_free.
 * Closing libuv handles is asynchronous: after rt_io_free the caller keeps
 * running the loop (uv_run until it returns); the memory goes away when the
 * last handle has closed.
 *
 * Threading: everything runs on the loop's thread; only the file syscalls
 * run on the thread pool, one per node at a time.
 */
#ifndef CHAOSLAB_RUNTIME_UV_IO_H
#define CHAOSLAB_RUNTIME_UV_IO_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <uv.h>

#include "broker/io.h"
#include "runtime/errors.h"
#include "runtime/log.h"

#define RT_PEERS_MAX 16u                /* nodes in a cluster */
#define RT_TIMERS_MAX 4096u             /* armed timer tokens per node */
#define RT_PEER_QUEUE_BYTES_MAX (16u * 1024u * 1024u) /* unsent bytes/peer */
#define RT_INBOUND_MAX 64u              /* accepted peer connections */
#define RT_DISK_QUEUE_MAX 65536u        /* queued disk operations */
#define RT_DISK_QUEUE_BYTES_MAX (256u * 1024u * 1024u) /* copied write bytes */
#define RT_FD_CACHE_MAX 16u             /* open files kept per node */
#define RT_BACKOFF_MIN_MS 100u          /* first reconnect delay */
#define RT_BACKOFF_MAX_MS 5000u         /* reconnect delay cap */
#define RT_HOST_MAX 255u                /* bytes of a host name/literal */
#define RT_PATH_MAX 4096u               /* bytes of the data dir path */
#define RT_TIMERS_FIRE_MAX RT_TIMERS_MAX /* on_timer calls per loop turn */

typedef struct rt_io rt_io_t;

typedef struct rt_config {
    uint32_t node_id;           /* index of this node in `peers` */
    const char *const *peers;   /* "host:port" per node id; copied */
    uint32_t peers_count;       /* 1..RT_PEERS_MAX */
    const char *listen_host;    /* NULL = "127.0.0.1"; port = peers[node_id] */
    const char *data_dir;       /* must exist; copied */
    rt_log_level_t log_level;
    FILE *log_out;              /* borrowed; NULL = stderr */
    uint64_t seed;              /* 0 = seed random_u64 from the OS */
    uint32_t backoff_min_ms;    /* 0 = RT_BACKOFF_MIN_MS */
    uint32_t backoff_max_ms;    /* 0 = RT_BACKOFF_MAX_MS */
} rt_config_t;

/* Per-node counters, for logs, tests and `chaoslab broker` status. */
typedef struct rt_stats {
    uint64_t frames_sent, frames_received;
    uint64_t frames_dropped_down;     /* peer not connected */
    uint64_t frames_dropped_overflow; /* peer queue full (IO_ENOMEM) */
    uint64_t connects, disconnects, frames_rejected;
    uint64_t timers_fired, disk_ops_done;
} rt_stats_t;

/* Parse "host:port" into a socket address: IPv4 literal, "localhost" (as
 * 127.0.0.1) or "[IPv6]". Port 1..65535. Returns 0 or RT_EADDR. No DNS:
 * the loop must not block on a resolver at start. */
int rt_parse_addr(const char *host_port, struct sockaddr_storage *out);

/* Allocate a node host on `loop` (borrowed; must outlive the rt_io_t).
 * Validates and copies `cfg`. Touches neither network nor disk. Returns 0
 * and *out, or IO_EINVAL / RT_EADDR (bad config), IO_ENOMEM. */
int rt_io_new(uv_loop_t *loop, const rt_config_t *cfg, rt_io_t **out);

/* Listen on the node's peer port, start connecting to every other peer and
 * boot `program` with `arg` (both borrowed, must outlive the node). Returns
 * 0; RT_EBIND (port busy), RT_EDIR (data dir unusable), RT_EBOOT (boot
 * returned NULL), RT_ESTATE (started twice). After a failure the host is
 * stopped: call rt_io_free. */
int rt_io_start(rt_io_t *io, const io_program_t *program, void *arg);

/* Graceful stop: halt(node, 1), drop armed timers and queued disk ops, close
 * every connection and handle. Idempotent. Called from inside one of the
 * node's own callbacks, it takes effect when that callback returns (the node
 * is never freed under its own feet). */
void rt_io_stop(rt_io_t *io);

/* 1 while the node runs (started, not stopped). */
int rt_io_running(const rt_io_t *io);

/* Stop (if needed) and free. The memory is released once every libuv
 * handle has closed, i.e. during the caller's next uv_run. NULL is fine. */
void rt_io_free(rt_io_t *io);

/* The io_t handed to the node (valid from rt_io_new to rt_io_free). */
const io_t *rt_io_io(const rt_io_t *io);
/* The running node, or NULL. */
void *rt_io_node(const rt_io_t *io);
/* The port the peer listener is bound to (0 before start). */
int rt_io_listen_port(const rt_io_t *io);
/* 1 if the outbound link to `peer` is up. */
int rt_io_peer_connected(const rt_io_t *io, uint32_t peer);
void rt_io_stats(const rt_io_t *io, rt_stats_t *out);
rt_log_t *rt_io_log(rt_io_t *io);

/* ---- client endpoints (the AMQP front end) -------------------------- */

/* Called for io_send(dest >= IO_ADDR_CLIENT_BASE) with dest an address
 * handed out by rt_io_client_open. The bytes are valid only during the call
 * (copy them). Return 0 (also when the client is gone: a lost message), or
 * IO_ENOMEM when the client's output queue is full. */
typedef int (*rt_client_send_fn)(void *arg, io_addr_t dest,
                                 const uint8_t *bytes, size_t len);

/* Install the client send hook (replaces any previous one; fn NULL removes
 * it, then client sends are dropped). */
void rt_io_set_client_hook(rt_io_t *io, rt_client_send_fn fn, void *arg);

/* Hand out a fresh client address (IO_ADDR_CLIENT_BASE, +1, ...; never
 * reused, so a late reply for a closed client never reaches a new one).
 * Returns 0 and *addr, or IO_ENOMEM when the address space is spent. */
int rt_io_client_open(rt_io_t *io, io_addr_t *addr);

/* Deliver one message from client `from` to the node (on_message). The
 * bytes are borrowed for the call. Returns 0; IO_EUNREACH if `from` was
 * never handed out; IO_EMSGSIZE; IO_ECANCELED if the node is not running. */
int rt_io_client_deliver(rt_io_t *io, io_addr_t from, const uint8_t *bytes,
                         size_t len);

/* ---- signals (the CLI) --------------------------------------------- */

/* Called once after SIGINT/SIGTERM stopped the node, so the embedder can
 * close its own handles (e.g. the AMQP listener). May be NULL. */
typedef void (*rt_signal_fn)(void *arg, int signum);

typedef struct rt_signals {
    uv_signal_t sigint, sigterm;
    rt_io_t *io;
    rt_signal_fn fn;
    void *arg;
    int active;
    int signum; /* the signal that fired, 0 if none */
} rt_signals_t;

/* Ignore SIGPIPE for the whole process. libuv writes to sockets with
 * write(2)/writev(2) (no MSG_NOSIGNAL), so a peer that closes while we still
 * write would otherwise raise SIGPIPE and kill the process; ignored, the write
 * fails with EPIPE and only that connection closes. Idempotent; every runtime
 * listener (server, client port, AMQP front end) calls it when it starts. */
void rt_ignore_sigpipe(void);

/* Return freed heap pages to the OS (glibc malloc_trim; a no-op elsewhere).
 * The listeners call it after connections closed: glibc keeps freed memory
 * of many small connections in its arenas otherwise, so RSS would stay at
 * the peak of a connection burst. */
void rt_trim_memory(void);

/* Watch SIGINT and SIGTERM on `loop`: the first one calls rt_io_stop(io),
 * then fn(arg, signum), then closes both signal handles so the loop can end.
 * `s` is caller-owned and must stay valid until the loop has run the close.
 * Returns 0 or IO_EINVAL (libuv refused the handles). */
int rt_signals_start(rt_signals_t *s, uv_loop_t *loop, rt_io_t *io,
                     rt_signal_fn fn, void *arg);

/* Stop watching (idempotent). */
void rt_signals_close(rt_signals_t *s);

#endif
