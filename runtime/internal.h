/*
 * runtime/internal.h — the rt_io_t struct and the functions the runtime's
 * files share (rt__ prefix). Not for use outside runtime/.
 */
#ifndef CHAOSLAB_RUNTIME_INTERNAL_H
#define CHAOSLAB_RUNTIME_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "broker/io.h"
#include "runtime/log.h"
#include "sim/prng.h"
#include "runtime/outbuf.h"
#include "runtime/uv_io.h"

#define RT__FRAME_HEADER_BYTES 4u
#define RT__HANDSHAKE_MAGIC 0x43484c42u /* "CHLB" */
#define RT__HANDSHAKE_BYTES 12u         /* magic, from id, to id */
#define RT__READ_BUF_BYTES (64u * 1024u)

typedef enum rt__state {
    RT__NEW = 0,
    RT__RUNNING = 1,
    RT__STOPPED = 2,
} rt__state_t;

typedef enum rt__stage {
    RT__STAGE_HANDSHAKE = 0, /* inbound: waiting for the 12-byte hello */
    RT__STAGE_HEADER = 1,    /* waiting for a 4-byte frame length */
    RT__STAGE_BODY = 2,      /* collecting frame bytes */
} rt__stage_t;

typedef struct rt__conn rt__conn_t;
struct rt__conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    rt_io_t *io;
    rt__conn_t *prev, *next; /* inbound list */
    int32_t peer_id;         /* -1 until the handshake names it */
    uint8_t outbound;
    uint8_t closing;
    uint8_t stage;           /* rt__stage_t */
    uint8_t hdr[RT__HANDSHAKE_BYTES];
    uint32_t hdr_have;
    uint8_t *frame;          /* owned; frame_len bytes */
    uint32_t frame_len, frame_have;
    char rbuf[RT__READ_BUF_BYTES];
};

typedef struct rt__peer {
    rt_io_t *io;
    uint32_t id;
    struct sockaddr_storage addr;
    uv_timer_t retry_timer;
    uint8_t retry_timer_open;
    rt__conn_t *out;        /* outbound link (connecting or connected) */
    uint8_t connected;      /* out has finished connecting */
    uint32_t backoff_ms;    /* delay before the next attempt */
    uint64_t queued_bytes;  /* bytes handed to uv_write, not yet done */
    rt_outbuf_t outbuf;     /* frames of this loop turn, not yet written */
    rt__conn_t *in;         /* the current identified inbound link */
} rt__peer_t;

typedef struct rt__timer {
    uint64_t token;
    uint64_t deadline_ns;
    uint64_t seq; /* arming order: breaks deadline ties, bounds a fire turn */
} rt__timer_t;

typedef struct rt__self_msg rt__self_msg_t;
struct rt__self_msg {
    rt__self_msg_t *next;
    size_t len;
    uint8_t bytes[];
};

typedef enum rt__disk_kind {
    RT__DISK_WRITE = 1,
    RT__DISK_READ = 2,
    RT__DISK_FSYNC = 3,
    RT__DISK_TRUNCATE = 4,
    RT__DISK_REMOVE = 5,
} rt__disk_kind_t;

typedef struct rt__disk_op rt__disk_op_t;
struct rt__disk_op {
    rt__disk_op_t *next;
    rt_io_t *io;
    uint8_t kind;
    char name[IO_FILE_NAME_MAX + 1];
    uint64_t offset;  /* write/read offset, truncate size */
    uint8_t *buf;     /* read: caller's; write: points into copy[] */
    size_t len;
    uint64_t token;
    int64_t result;   /* filled on the thread pool */
    uint8_t copy[];   /* write: the bytes, copied at issue */
};

typedef struct rt__fd_slot {
    char name[IO_FILE_NAME_MAX + 1];
    int fd;         /* -1 = free */
    uint64_t used;  /* LRU clock */
} rt__fd_slot_t;

struct rt_io {
    uv_loop_t *loop;
    io_t io;
    rt_log_t log;
    rt_stats_t stats;
    rt__state_t state;
    const io_program_t *program;
    void *program_arg;
    void *node;
    uint32_t dispatch_depth; /* >0 while a handler of the node runs */
    uint8_t stop_requested;  /* rt_io_stop called inside a handler */
    uint8_t free_requested;
    uint32_t pending;        /* open handles + running disk work */

    /* config (copied) */
    uint32_t node_id, peers_count;
    char listen_host[RT_HOST_MAX + 1];
    char data_dir[RT_PATH_MAX + 1];
    uint32_t backoff_min_ms, backoff_max_ms;

    sim_prng_t rng; /* the same generator as the simulator, seeded from the OS */

    /* timers */
    uv_timer_t timer;
    uint8_t timer_open;
    uint8_t timer_firing;    /* inside rt__timer_cb */
    rt__timer_t *timers;     /* RT_TIMERS_MAX slots, unordered */
    uint32_t timers_count;
    uint64_t timer_seq;

    /* self loopback: a node may send to itself, delivered asynchronously */
    uv_timer_t self_timer;
    uint8_t self_timer_open;
    rt__self_msg_t *self_head, *self_tail;
    uint64_t self_bytes;

    /* peers */
    rt__peer_t peers[RT_PEERS_MAX];
    uv_tcp_t listener;
    uint8_t listener_open;
    int listen_port;
    rt__conn_t *inbound;     /* list of accepted connections */
    uint32_t inbound_count;
    /* one flush per loop turn: a zero-delay timer writes every peer's
     * outbuf, so a burst of frames costs one write(2) per peer */
    uv_timer_t flush_timer;
    uint8_t flush_timer_open;

    /* clients */
    rt_client_send_fn client_fn;
    void *client_arg;
    io_addr_t client_next;   /* next address rt_io_client_open hands out */

    /* disk */
    rt__disk_op_t *disk_head, *disk_tail;
    uint32_t disk_count;
    uint64_t disk_bytes;
    rt__disk_op_t *disk_running; /* the batch on the thread pool (a list) */
    uv_work_t disk_work;
    int dir_fd;
    rt__fd_slot_t fds[RT_FD_CACHE_MAX];
    uint64_t fd_clock;
};

/* uv_io.c */
int rt__node_live(const rt_io_t *io);
void rt__dispatch_begin(rt_io_t *io);
void rt__dispatch_end(rt_io_t *io);
void rt__handle_closed(uv_handle_t *handle); /* close cb: pending-- */
void rt__pending_done(rt_io_t *io);

/* peers.c */
int rt__peers_start(rt_io_t *io);
void rt__peers_stop(rt_io_t *io);
int rt__peers_send(rt_io_t *io, io_addr_t dest, const uint8_t *bytes,
                   size_t len);

/* files.c */
int rt__disk_start(rt_io_t *io);
void rt__disk_stop(rt_io_t *io);
void rt__disk_free(rt_io_t *io);
int rt__disk_name_check(const char *name);
int rt__disk_submit(rt_io_t *io, rt__disk_kind_t kind, const char *name,
                    uint64_t offset, uint8_t *buf, const uint8_t *src,
                    size_t len, uint64_t token);
int rt__disk_size(void *ctx, const char *name, uint64_t *size_bytes);
int rt__disk_list(void *ctx, io_list_cb cb, void *arg);

#endif
