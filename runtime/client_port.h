/*
 * runtime/client_port.h — a TCP listener speaking the wire.h client protocol.
 *
 * Each accepted connection becomes one client endpoint of a node hosted by an
 * rt_io_t: it gets a fresh address from rt_io_client_open (never reused), the
 * wire frames it sends are cut out of the byte stream with wire_frame_size()
 * and handed to the node with rt_io_client_deliver(), and what the node sends
 * to that address goes back out on the socket (rt_client_port_send, which the
 * embedder calls from its rt_io client hook). There is no extra framing: a
 * wire frame carries its own length.
 *
 * Authentication: with a token configured, a connection must first send the
 * preamble "CHLA", u32 length (little-endian), the token bytes; anything else
 * (no preamble, a wrong token) closes it before a single byte reaches the
 * node (counted in auth_refused). Without a token the port relies on being
 * bound to loopback (the CLI refuses a non-loopback --client without one).
 *
 * Bounded everywhere: at most conns_max connections (one more is accepted,
 * sent a wire ERROR with status RESOURCE_LIMIT "connection limit", and
 * closed, so the client sees a refusal instead of a hang), at most one frame
 * of WIRE_MESSAGE_SIZE_MAX buffered per connection on the way in, and at
 * most out_bytes_max unsent bytes on the way out. Backpressure: past
 * RT_CLIENT_OUT_PAUSE_BYTES of unsent output the port stops reading from the
 * connection (a client that does not read its replies cannot make the node
 * queue more), and reads again below RT_CLIENT_OUT_RESUME_BYTES. A
 * connection that sends a bad frame header (wrong magic or version,
 * oversized length) or whose output still passes out_bytes_max is closed
 * (never a crash, never unbounded memory). Timeouts (checked every
 * RT_CLIENT_SWEEP_MS): no authenticated first frame within
 * handshake_timeout_ms; no frame in and no write progress for
 * idle_timeout_ms; a frame begun but not complete within frame_timeout_ms
 * (slow-byte / half-sent frames). The input buffer is freed whenever it is
 * empty, so idle connections hold no buffer. The body and CRC of a frame are checked by the node (wire_decode),
 * which drops a corrupt frame.
 * When a connection has closed, the port forgets its address and calls
 * closed_fn(addr) — from a libuv close callback, so never inside one of the
 * node's handlers — so the embedder can tell the node the client is gone.
 *
 * Lifecycle like rt_io_t: new -> start -> stop -> free; the memory goes away
 * during the caller's next uv_run once every handle has closed.
 */
#ifndef CHAOSLAB_RUNTIME_CLIENT_PORT_H
#define CHAOSLAB_RUNTIME_CLIENT_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker/io.h"
#include "runtime/uv_io.h"

#define RT_CLIENT_CONNS_MAX 4096u                     /* hard cap on conns_max */
/* conns_max when 0: every AMQP connection of every node holds one link to
 * the leader's port, so this must exceed nodes x RT_AMQP_CONNS_DEFAULT. */
#define RT_CLIENT_CONNS_DEFAULT 1024u
#define RT_CLIENT_OUT_BYTES_DEFAULT (64u * 1024u * 1024u) /* unsent bytes/conn: above
                                                        FE_PREFETCH_MAX x the largest body */
#define RT_CLIENT_READ_CHUNK_BYTES (64u * 1024u)      /* one read at most */
#define RT_CLIENT_BACKLOG 128                         /* listen(2) backlog */
#define RT_CLIENT_OUT_PAUSE_BYTES (4u * 1024u * 1024u)  /* stop reading above */
#define RT_CLIENT_OUT_RESUME_BYTES (1u * 1024u * 1024u) /* read again below */
#define RT_CLIENT_HANDSHAKE_TIMEOUT_MS_DEFAULT 10000u /* to the first frame */
#define RT_CLIENT_IDLE_TIMEOUT_MS_DEFAULT 600000u     /* no frame, no progress */
#define RT_CLIENT_FRAME_TIMEOUT_MS_DEFAULT 30000u     /* one frame's bytes */
#define RT_CLIENT_TIMEOUT_MS_MAX 86400000u            /* a day */
#define RT_CLIENT_SWEEP_MS 250u                       /* timeout check period */
#define RT_CLIENT_TOKEN_MAX 256u                      /* bytes of the token */
#define RT_CLIENT_AUTH_MAGIC 0x414c4843u /* "CHLA" read as little-endian u32 */
#define RT_CLIENT_AUTH_HEADER_BYTES 8u   /* magic, u32 token length */

typedef struct rt_client_port rt_client_port_t;

/* The port's address of a closed connection: called once per connection. */
typedef void (*rt_client_closed_fn)(void *arg, io_addr_t addr);

typedef struct rt_client_port_config {
    const char *listen;         /* "host:port" (rt_parse_addr); port 0 = any */
    uint32_t conns_max;         /* 0 = RT_CLIENT_CONNS_DEFAULT; <= RT_CLIENT_CONNS_MAX */
    size_t out_bytes_max;       /* 0 = RT_CLIENT_OUT_BYTES_DEFAULT */
    rt_client_closed_fn closed_fn; /* may be NULL */
    void *closed_arg;
    const char *token;          /* NULL or "" = no authentication; copied;
                                   < RT_CLIENT_TOKEN_MAX bytes */
    uint32_t handshake_timeout_ms; /* 0 = default; <= RT_CLIENT_TIMEOUT_MS_MAX */
    uint32_t idle_timeout_ms;      /* 0 = default */
    uint32_t frame_timeout_ms;     /* 0 = default */
} rt_client_port_config_t;

/* Counters for logs and tests. */
typedef struct rt_client_port_stats {
    uint64_t accepted, refused_full, closed;
    uint64_t frames_in, frames_out;
    uint64_t bad_frames;       /* header or decode rejected: conn closed */
    uint64_t overflow_closes;  /* out queue over out_bytes_max: conn closed */
    uint64_t auth_refused;     /* no or wrong token: conn closed */
    uint64_t timeouts;         /* handshake, idle or frame timeout */
    uint64_t pauses;           /* reading stopped for backpressure */
} rt_client_port_stats_t;

/* Allocate a port for the node on `io` (borrowed; must outlive the port).
 * Validates and copies `cfg`; touches no socket. Returns 0 and *out, or
 * IO_EINVAL (bad conns_max, token or timeout), RT_EADDR (bad listen address), IO_ENOMEM. */
int rt_client_port_new(uv_loop_t *loop, rt_io_t *io,
                       const rt_client_port_config_t *cfg,
                       rt_client_port_t **out);

/* Bind and listen. Returns 0, RT_EBIND (address in use or not local), or
 * RT_ESTATE (started twice / after stop). After a failure call
 * rt_client_port_free. */
int rt_client_port_start(rt_client_port_t *port);

/* The port actually bound (useful with port 0), 0 before start. */
int rt_client_port_port(const rt_client_port_t *port);

/* Send `len` bytes (one wire frame) to the connection of `dest`; the bytes
 * are copied. Returns 0; IO_EUNREACH if `dest` is not a live connection of
 * this port (closed, or another front end's); IO_ENOMEM if the connection's
 * queue would pass out_bytes_max (the connection is then closed: a client
 * that stopped reading must notice, not silently miss deliveries). Shaped
 * like rt_client_send_fn so it can serve as the rt_io client hook. */
int rt_client_port_send(void *port, io_addr_t dest, const uint8_t *bytes,
                        size_t len);

/* Live connections right now. */
uint32_t rt_client_port_conns(const rt_client_port_t *port);
void rt_client_port_stats(const rt_client_port_t *port,
                          rt_client_port_stats_t *out);

/* Close the listener and every connection (closed_fn is NOT called for
 * them: the node is stopping too). Idempotent. */
void rt_client_port_stop(rt_client_port_t *port);

/* Stop (if needed) and free once every handle has closed. NULL is fine. */
void rt_client_port_free(rt_client_port_t *port);

#endif
