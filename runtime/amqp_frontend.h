/*
 * runtime/amqp_frontend.h — the AMQP 0-9-1 front end of the reference broker.
 *
 * A TCP listener for ordinary AMQP clients (pika, amqp-tools, librabbitmq).
 * Each accepted connection is one amqp_conn_t (broker/amqp_conn.h: the
 * protocol) plus one wire client session (broker/wire.h) over TCP to a
 * node's client port: the front end is a wire client like any other, so a
 * front end next to a follower reaches the leader the same way one next to
 * the leader does.
 *
 *   AMQP method            wire request
 *   exchange.declare  ->   DECLARE_EXCHANGE (""/amq.* answered here)
 *   queue.declare     ->   DECLARE_QUEUE (passive -> WIRE_QUEUE_PASSIVE)
 *   queue.bind/unbind/purge/delete -> BIND/UNBIND/PURGE_QUEUE/DELETE_QUEUE
 *   basic.qos         ->   remembered: the prefetch of later consumes
 *   basic.consume/cancel -> CONSUME/CANCEL; DELIVER -> basic.deliver
 *   basic.get         ->   GET; DELIVER (empty tag) / REPLY EMPTY
 *   basic.publish     ->   PUBLISH (producer id + sequence per channel, so
 *                          the node's dedup drops a re-sent copy);
 *                          CONFIRM/NACK_PUBLISH -> basic.ack/nack (confirm
 *                          mode), basic.return for unroutable mandatory
 *   basic.ack/nack/reject, closed channel -> ACK / NACK / REJECT
 *
 * Failover: every request waits in a bounded window (with its encoded
 * frame) until the node answers. NOT_LEADER (with a hint), a lost TCP link
 * or a silent node (no frame, not even a heartbeat answer, for
 * RT_AMQP_LINK_SILENT_MS: a paused or isolated leader) make the front end connect
 * to the hinted (or next) node, open a new session, re-register its
 * consumers and re-send every unanswered request in order. Deliveries made
 * by the old session are forgotten on our side (their acks are dropped); the
 * node returns them to their queues when that session dies, so a consumer
 * may see a message twice (at-least-once), never lose a confirmed one.
 *
 * Closing: a connection that closes (the client's connection.close, EOF or
 * a socket error) with requests still unanswered — e.g. publishes without
 * confirms sent right before the close — keeps its wire session until the
 * node answered them (or RT_AMQP_DRAIN_TIMEOUT_MS passed), following a new
 * leader as usual: what the front end took off the socket is forwarded.
 *
 * Stale deliveries: when this process did not run for longer than half the
 * node's session timeout (SIGSTOP, a VM pause), every link is dropped unread
 * before a byte more is handed out: the node may have expired the session
 * meanwhile and given its messages to other consumers, so what the link
 * still holds could be a second first delivery (redelivered=0). A fresh
 * session gets them again, flagged. A silent link (a partition) is dropped
 * after RT_AMQP_LINK_SILENT_MS, below the default session timeout.
 *
 * Limits: conns_max connections (one more is accepted and closed, logged);
 * no connection.open within handshake_timeout_ms, or nothing read and no
 * write progress for idle_timeout_ms (even with heartbeats off) closes it.
 * Per-connection buffers are allocated when needed and freed when empty, and
 * the heap is trimmed after connections close, so RSS goes back down after
 * a burst. The link to the node starts only once the client logged in.
 *
 * Lifecycle like the other runtime modules: new -> start -> stop -> free,
 * memory released during the caller's next uv_run. Single-threaded: all on
 * the loop's thread.
 */
#ifndef CHAOSLAB_RUNTIME_AMQP_FRONTEND_H
#define CHAOSLAB_RUNTIME_AMQP_FRONTEND_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "runtime/server.h"

#define RT_AMQP_CONNS_MAX 1024u      /* hard cap on conns_max */
#define RT_AMQP_CONNS_DEFAULT 256u
#define RT_AMQP_NODES_MAX 16u        /* client ports the front end knows */
#define RT_AMQP_ADDR_MAX 300u        /* bytes of one "host:port" */
#define RT_AMQP_HEARTBEAT_S_DEFAULT 60u
#define RT_AMQP_HANDSHAKE_TIMEOUT_MS_DEFAULT 10000u /* accept -> connection.open */
#define RT_AMQP_IDLE_TIMEOUT_MS_DEFAULT 600000u     /* nothing in, no write progress */
#define RT_AMQP_TIMEOUT_MS_MAX 86400000u
#define RT_AMQP_DRAIN_TIMEOUT_MS 30000u  /* closed conn: finish forwarding, at most */
#define RT_AMQP_LINK_SILENT_MS 1000u     /* no frame from the node: fail over */
#define RT_AMQP_SESSION_TIMEOUT_MS_DEFAULT 2000u /* the broker's default */

typedef struct rt_amqp rt_amqp_t;

typedef struct rt_amqp_config {
    const char *listen;             /* AMQP "host:port"; port 0 = any */
    const char *const *nodes;       /* wire client port "host:port" per node
                                       id; NULL/0 = only the local server's
                                       client port (set by the server hook) */
    uint32_t nodes_count;           /* <= RT_AMQP_NODES_MAX */
    uint32_t first_node;            /* the node tried first (< nodes_count) */
    uint32_t conns_max;             /* 0 = RT_AMQP_CONNS_DEFAULT */
    uint16_t heartbeat_s;           /* offered AMQP heartbeat; 0 = default */
    const char *node_token;         /* the client ports' token (sent first on
                                       every link); NULL = none */
    uint32_t handshake_timeout_ms;  /* 0 = RT_AMQP_HANDSHAKE_TIMEOUT_MS_DEFAULT */
    uint32_t idle_timeout_ms;       /* 0 = RT_AMQP_IDLE_TIMEOUT_MS_DEFAULT */
    uint32_t session_timeout_ms;    /* the nodes' session_timeout_ms; 0 =
                                       RT_AMQP_SESSION_TIMEOUT_MS_DEFAULT */
    FILE *log_out;                  /* borrowed; NULL = stderr */
    int verbose;                    /* 1 = log every connection */
} rt_amqp_config_t;

typedef struct rt_amqp_stats {
    uint64_t accepted, refused_full, closed;
    uint64_t publishes, confirms, nacks, deliveries;
    uint64_t link_connects, link_failovers, resent;
    uint64_t timeouts;      /* handshake or idle timeout closed a connection */
    uint64_t drained;       /* closed with requests in flight: finished first */
    uint64_t drain_expired; /* ... and gave up after RT_AMQP_DRAIN_TIMEOUT_MS */
    uint64_t silent_failovers; /* the node said nothing for RT_AMQP_LINK_SILENT_MS */
    uint64_t stale_drops;   /* this process stalled past half the session
                               timeout: link dropped unread */
} rt_amqp_stats_t;

/* Allocate a front end on `loop` (borrowed). Copies and checks `cfg`.
 * Returns 0 and *out, or IO_EINVAL (bad counts), RT_EADDR (a malformed
 * address), IO_ENOMEM. Touches no socket. */
int rt_amqp_new(uv_loop_t *loop, const rt_amqp_config_t *cfg, rt_amqp_t **out);

/* Listen. Returns 0, RT_EBIND, RT_ESTATE (started twice), IO_EINVAL (no node
 * address known). After a failure call rt_amqp_free. */
int rt_amqp_start(rt_amqp_t *fe);

/* The bound AMQP port (0 before start). */
int rt_amqp_port(const rt_amqp_t *fe);
/* Live AMQP connections. */
uint32_t rt_amqp_conns(const rt_amqp_t *fe);
void rt_amqp_stats(const rt_amqp_t *fe, rt_amqp_stats_t *out);

/* Close the listener and every connection (clients see the socket close).
 * Idempotent. */
void rt_amqp_stop(rt_amqp_t *fe);

/* Stop if needed; memory goes away once every handle closed. NULL is fine. */
void rt_amqp_free(rt_amqp_t *fe);

/* Fill `out` with the rt_server_t hook for this front end (arg = fe). Its
 * start(server, listen_addr) uses listen_addr, and when the config named no
 * node, the server's own client port on 127.0.0.1 (the server needs one).
 * The front end reaches the node through that TCP port, never through
 * rt_io client endpoints, so its send() always answers IO_EUNREACH. */
void rt_amqp_server_hook(rt_amqp_t *fe, rt_server_frontend_t *out);

#endif
