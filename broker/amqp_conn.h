/*
 * broker/amqp_conn.h -- one AMQP 0-9-1 client connection as a sans-I/O state
 * machine.
 *
 * Bytes from the client go in with amqp_conn_feed(); bytes for the client
 * collect in an output buffer the caller drains (amqp_conn_output() +
 * amqp_conn_output_consume()). Time comes in with amqp_conn_tick(). The broker
 * itself sits behind amqp_backend_t: the connection decodes and checks the
 * protocol, the backend does the work.
 *
 * Asynchronous answers: a backend operation gets an amqp_op_t whose `req`
 * names it; the backend answers later (or at once, from inside the call)
 * with amqp_conn_op_ok()/amqp_conn_op_fail()/amqp_conn_queue_ok()/
 * amqp_conn_get_ok()/amqp_conn_get_empty(), because a replicated node must
 * commit before it can answer. While a synchronous operation is unanswered,
 * the connection stops decoding further input (it stays buffered), so
 * replies always go out in request order. Publishes do not wait: their
 * confirms come later through amqp_conn_confirm() (and amqp_conn_return()
 * for an unroutable mandatory message, sent before its confirm).
 *
 * Deliveries: the backend pushes with amqp_conn_deliver() or answers a
 * basic.get with amqp_conn_get_ok(); the connection assigns the per-channel
 * delivery tag and remembers the backend's `msg_ref`. Every delivery that
 * needs an ack is settled back to the backend exactly once through
 * backend->settle(): acked, rejected/nacked, or released because its channel
 * or connection closed (the backend requeues it).
 *
 * Not re-entrant across connections' owners: one thread drives a connection.
 * Backend callbacks may call amqp_conn_* answer/deliver functions on the same
 * connection, but never amqp_conn_free().
 */
#ifndef CHAOSLAB_BROKER_AMQP_CONN_H
#define CHAOSLAB_BROKER_AMQP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "broker/amqp_codec.h"
#include "broker/amqp_methods.h"

#define AMQP_CONN_CHANNEL_MAX_DEFAULT 2047u
#define AMQP_CONN_CHANNELS_MAX 2047u       /* hard cap on channel_max */
#define AMQP_CONN_CONSUMERS_MAX 64u        /* consumers per channel */
#define AMQP_CONN_UNACKED_MAX 8192u        /* deliveries awaiting ack, per channel */
#define AMQP_CONN_CONFIRMS_MAX 16384u      /* publishes awaiting confirm, per channel */
#define AMQP_CONN_PENDING_MAX 32u          /* backend ops awaiting an answer */
/* Hard cap on one message: body plus encoded properties. A larger publish
 * closes its channel (406) at its content header, before any body byte is
 * accepted. The backend may lower it (body_size_max) to what it can store. */
#define AMQP_CONN_BODY_SIZE_MAX (1u << 20)
#define AMQP_CONN_TX_PUBLISHES_MAX 1024u      /* publishes one transaction holds */
#define AMQP_CONN_TX_ACKS_MAX 8192u           /* acks/nacks one transaction holds */
#define AMQP_CONN_TX_BYTES_MAX (64u << 20)    /* body bytes one transaction holds */
#define AMQP_CONN_OUTPUT_HIGH_BYTES (1u << 20) /* stop reading/delivering above */
#define AMQP_CONN_OUTPUT_MAX_BYTES (4u << 20)  /* never buffer more than this */
#define AMQP_CONN_USERS_MAX 16u
#define AMQP_CONN_HANDSHAKE_TIMEOUT_NS (10ull * 1000000000ull)
#define AMQP_CONN_CLOSE_TIMEOUT_NS (3ull * 1000000000ull)

typedef struct amqp_conn amqp_conn_t;

/* One user of the static user table (both strings NUL-terminated). */
typedef struct amqp_user {
    const char *name;
    const char *password;
} amqp_user_t;

/* What a backend operation is about. `req` identifies it for the answer. */
typedef struct amqp_op {
    amqp_conn_t *conn;
    uint64_t req;
    uint16_t channel;
    uint8_t nowait; /* the client wants no reply; still answer (errors matter) */
} amqp_op_t;

/* A complete publish, handed to backend->basic_publish. All pointers are
 * valid only during the call: copy what you keep. */
typedef struct amqp_publish {
    amqp_bytes_t exchange;
    amqp_bytes_t routing_key;
    uint8_t mandatory;
    const amqp_basic_props_t *props;
    amqp_bytes_t props_raw; /* encoded flag word + properties */
    amqp_bytes_t body;
} amqp_publish_t;

/* How a delivery left the client's hands. */
enum amqp_settle {
    AMQP_SETTLE_ACK = 1,      /* basic.ack: done with it */
    AMQP_SETTLE_REQUEUE = 2,  /* nack/reject requeue=1, or basic.recover */
    AMQP_SETTLE_DROP = 3,     /* nack/reject requeue=0: discard/dead-letter */
    AMQP_SETTLE_RELEASED = 4, /* channel/connection closed unacked: requeue */
};

/*
 * The broker behind the connection. Each `ctx` is backend->ctx. Operation
 * callbacks return 0 when they accepted the op (the answer comes later, or
 * already came from inside the call) or a negative code, which closes the
 * connection with 541 INTERNAL_ERROR and means no answer will come. A NULL
 * operation slot makes the method answer 540 NOT_IMPLEMENTED, except
 * basic_qos and confirm_select, which are then answered at once.
 */
typedef struct amqp_backend {
    void *ctx;
    int (*exchange_declare)(void *ctx, const amqp_op_t *op,
                            const amqp_exchange_declare_t *a);
    int (*exchange_delete)(void *ctx, const amqp_op_t *op,
                           const amqp_exchange_delete_t *a);
    /* Exchange-to-exchange bindings; NULL = not offered (the capability
     * exchange_exchange_bindings says so). */
    int (*exchange_bind)(void *ctx, const amqp_op_t *op, const amqp_exchange_bind_t *a);
    int (*exchange_unbind)(void *ctx, const amqp_op_t *op,
                           const amqp_exchange_unbind_t *a);
    /* a->queue is already the server-made "amq.gen-..." name when the client
     * left it empty. Answer with amqp_conn_queue_ok(). */
    int (*queue_declare)(void *ctx, const amqp_op_t *op,
                         const amqp_queue_declare_t *a);
    int (*queue_bind)(void *ctx, const amqp_op_t *op, const amqp_queue_bind_t *a);
    int (*queue_unbind)(void *ctx, const amqp_op_t *op,
                        const amqp_queue_unbind_t *a);
    /* Answer with amqp_conn_queue_ok(count) = messages purged / deleted. */
    int (*queue_purge)(void *ctx, const amqp_op_t *op, const amqp_queue_purge_t *a);
    int (*queue_delete)(void *ctx, const amqp_op_t *op,
                        const amqp_queue_delete_t *a);
    int (*basic_qos)(void *ctx, const amqp_op_t *op, const amqp_basic_qos_t *a);
    /* a->consumer_tag is already the server-made "amq.ctag-..." tag when the
     * client left it empty. Deliver only after answering op_ok. */
    int (*basic_consume)(void *ctx, const amqp_op_t *op,
                         const amqp_basic_consume_t *a);
    int (*basic_cancel)(void *ctx, const amqp_op_t *op,
                        const amqp_basic_cancel_t *a);
    /* Answer with amqp_conn_get_ok() or amqp_conn_get_empty(). */
    int (*basic_get)(void *ctx, const amqp_op_t *op, const amqp_basic_get_t *a);
    int (*confirm_select)(void *ctx, const amqp_op_t *op);
    /* A complete publish. publish_seq > 0 when the channel is in confirm
     * mode: answer it later with amqp_conn_confirm(). No op/req: nothing else
     * is owed. Negative return closes the connection with 541. */
    int (*basic_publish)(void *ctx, amqp_conn_t *conn, uint16_t channel,
                         uint64_t publish_seq, const amqp_publish_t *msg);
    /* A tracked delivery was settled (see enum amqp_settle). Exactly once
     * per delivery made with no_ack = 0. */
    void (*settle)(void *ctx, amqp_conn_t *conn, uint16_t channel,
                   uint64_t msg_ref, enum amqp_settle how);
    /* The channel's consumers are gone (channel closed); called after its
     * unacked deliveries were released. May be NULL. */
    void (*channel_closed)(void *ctx, amqp_conn_t *conn, uint16_t channel);
    /* The connection is closing: stop delivering. Once. May be NULL. */
    void (*conn_closed)(void *ctx, amqp_conn_t *conn);
} amqp_backend_t;

/* Returns 1 to accept the PLAIN credentials (user/password, not
 * NUL-terminated), 0 to refuse. */
typedef int (*amqp_auth_cb)(void *arg, amqp_bytes_t user, amqp_bytes_t password);

typedef struct amqp_conn_config {
    uint16_t channel_max;    /* offered; 0 = AMQP_CONN_CHANNEL_MAX_DEFAULT */
    uint32_t frame_max;      /* offered; 0 = AMQP_FRAME_MAX_DEFAULT (cap) */
    uint16_t heartbeat_s;    /* offered; 0 disables unless the client asks */
    uint32_t body_size_max;  /* body + properties; 0 = AMQP_CONN_BODY_SIZE_MAX (cap) */
    int connection_blocked;  /* the owner sends connection.blocked (capability) */
    uint64_t conn_id;        /* names server-made queues and consumer tags */
    int loopback;            /* the peer is local: guest/guest allowed */
    const amqp_user_t *users; /* user table, may be NULL */
    size_t users_count;       /* <= AMQP_CONN_USERS_MAX */
    amqp_auth_cb auth;        /* overrides the table when set */
    void *auth_arg;
    const char *vhost;        /* the only virtual host; NULL = "/" */
} amqp_conn_config_t;

enum amqp_conn_state {
    AMQP_CONN_S_HEADER = 0, /* waiting for the protocol header */
    AMQP_CONN_S_START_OK,   /* sent connection.start */
    AMQP_CONN_S_TUNE_OK,    /* sent connection.tune */
    AMQP_CONN_S_OPEN,       /* waiting for connection.open */
    AMQP_CONN_S_RUNNING,    /* open */
    AMQP_CONN_S_CLOSING,    /* sent connection.close, waiting for close-ok */
    AMQP_CONN_S_CLOSED,     /* done: flush the output, then drop the socket */
};

/*
 * Allocate a connection. `cfg` and `backend` are copied (the user table and
 * the backend's ctx stay caller-owned and must outlive the connection).
 * Returns NULL on allocation failure or an invalid config (frame_max below
 * AMQP_FRAME_MIN_SIZE, users_count above AMQP_CONN_USERS_MAX).
 */
amqp_conn_t *amqp_conn_new(const amqp_conn_config_t *cfg,
                           const amqp_backend_t *backend);

/* Tell the backend the connection is gone (conn_closed, once), release every
 * unacked delivery still held (settle RELEASED), and free everything. The
 * backend must still be alive. Never call it from a backend callback. */
void amqp_conn_free(amqp_conn_t *conn);

/*
 * Feed bytes received from the client (copied). Returns how many were taken:
 * fewer than len when the connection is waiting (a backend answer pending,
 * output above AMQP_CONN_OUTPUT_HIGH_BYTES, a confirm window full); the
 * caller keeps the rest and feeds it again after draining output or after
 * the backend answered. Protocol errors never fail the call: they queue a
 * connection.close / channel.close in the output. After CLOSED every byte
 * is taken and dropped.
 */
size_t amqp_conn_feed(amqp_conn_t *conn, const uint8_t *bytes, size_t len);

/* Pending output: sets *bytes (valid until the next amqp_conn_* call) and
 * returns its length. */
size_t amqp_conn_output(const amqp_conn_t *conn, const uint8_t **bytes);
/* The caller sent n bytes of the output (n <= the pending length). */
void amqp_conn_output_consume(amqp_conn_t *conn, size_t n);

/*
 * Advance time: sends heartbeats, closes on 2 missed client heartbeats,
 * times out a stuck handshake or close. Returns the next deadline in ns at
 * which tick wants to run again (0 = none). now_ns never goes back.
 */
uint64_t amqp_conn_tick(amqp_conn_t *conn, uint64_t now_ns);

enum amqp_conn_state amqp_conn_state(const amqp_conn_t *conn);
/* Reply code of the connection.close we sent or received (0 if none). */
uint16_t amqp_conn_close_code(const amqp_conn_t *conn);
/* Negotiated values (valid from RUNNING). */
uint32_t amqp_conn_frame_max(const amqp_conn_t *conn);
uint16_t amqp_conn_heartbeat_s(const amqp_conn_t *conn);
/* The authenticated user name (NUL-terminated, "" before start-ok). */
const char *amqp_conn_user(const amqp_conn_t *conn);
/* Number of deliveries awaiting ack on a channel (0 if not open). */
size_t amqp_conn_unacked(const amqp_conn_t *conn, uint16_t channel);

/* ---- backend answers --------------------------------------------------
 * Each returns 0, or IO_ENOENT when `req` is unknown or stale (its channel
 * or connection closed meanwhile: drop the answer), or IO_EINVAL when the
 * answer does not fit the op (e.g. queue_ok for an exchange.declare). */

/* Success for ops whose reply carries no backend data (exchange.declare-ok,
 * delete-ok, queue bind/unbind-ok, qos-ok, consume-ok, cancel-ok,
 * confirm.select-ok). */
int amqp_conn_op_ok(amqp_conn_t *conn, uint64_t req);
/* queue.declare-ok (name as declared, counts), purge-ok / delete-ok
 * (message_count; consumer_count ignored). */
int amqp_conn_queue_ok(amqp_conn_t *conn, uint64_t req, uint32_t message_count,
                       uint32_t consumer_count);
/* The op failed: a 3xx/4xx code closes the channel, a 5xx code closes the
 * connection. `text` is copied (cut to 255 bytes). */
int amqp_conn_op_fail(amqp_conn_t *conn, uint64_t req, uint16_t reply_code,
                      const char *text);
/* basic.get found a message. msg_ref comes back through settle() unless the
 * get was no_ack. *delivery_tag (may be NULL) gets the tag assigned. Also
 * IO_ENOMEM (output or unacked window full: answer again later). */
int amqp_conn_get_ok(amqp_conn_t *conn, uint64_t req, uint64_t msg_ref,
                     int redelivered, amqp_bytes_t exchange,
                     amqp_bytes_t routing_key, uint32_t message_count,
                     const amqp_basic_props_t *props, amqp_bytes_t body,
                     uint64_t *delivery_tag);
int amqp_conn_get_empty(amqp_conn_t *conn, uint64_t req);

/* ---- backend pushes ----------------------------------------------------- */

/*
 * Deliver a message to an active consumer. The connection picks the
 * channel's next delivery tag (stored in *delivery_tag if not NULL). Returns
 * 0; IO_ENOENT (no such open channel or active consumer); IO_ENOMEM (output
 * above the high mark or unacked window full: keep the message, retry later);
 * IO_EMSGSIZE (properties too large for one frame); IO_ECANCELED (closing).
 */
int amqp_conn_deliver(amqp_conn_t *conn, uint16_t channel,
                      amqp_bytes_t consumer_tag, uint64_t msg_ref,
                      int redelivered, amqp_bytes_t exchange,
                      amqp_bytes_t routing_key, const amqp_basic_props_t *props,
                      amqp_bytes_t body, uint64_t *delivery_tag);

/*
 * Confirm publish `seq` on a channel in confirm mode (multiple = every
 * unconfirmed seq <= seq), positive (ack) or negative (nack). Consecutive
 * confirms go out as one basic.ack/nack with multiple=1 where the client
 * cannot misread it. Returns 0, IO_ENOENT (channel not open, seq unknown or
 * already confirmed), IO_ECANCELED (closing).
 */
int amqp_conn_confirm(amqp_conn_t *conn, uint16_t channel, uint64_t seq,
                      int multiple, int ack);

/* basic.return of an unroutable mandatory publish (reply 312 NO_ROUTE
 * usually). Send it before the publish's confirm. Returns 0, IO_ENOENT,
 * IO_ENOMEM, IO_EMSGSIZE, IO_ECANCELED like amqp_conn_deliver. */
int amqp_conn_return(amqp_conn_t *conn, uint16_t channel, uint16_t reply_code,
                     const char *reply_text, amqp_bytes_t exchange,
                     amqp_bytes_t routing_key, const amqp_basic_props_t *props,
                     amqp_bytes_t body);

/* Server-initiated basic.cancel (the queue was deleted...): the consumer is
 * removed; its unacked deliveries stay unacked. Returns 0 or IO_ENOENT. */
int amqp_conn_cancel_consumer(amqp_conn_t *conn, uint16_t channel,
                              amqp_bytes_t consumer_tag);

/* A channel error found after the fact (e.g. a publish to a missing
 * exchange: 404): channel.close with the code; a code >= 500 closes the
 * connection instead. `method_id` names the method at fault (0 = none).
 * Returns 0, IO_ENOENT (channel not open) or IO_EINVAL (code < 300). */
int amqp_conn_channel_error(amqp_conn_t *conn, uint16_t channel, uint16_t reply_code,
                            const char *text, uint32_t method_id);

/* Server-initiated connection.close (e.g. 320 CONNECTION_FORCED when the
 * node stops). Releases unacked deliveries. Returns 0 or IO_ECANCELED if
 * already closing. */
int amqp_conn_shutdown(amqp_conn_t *conn, uint16_t reply_code, const char *text);

#endif /* CHAOSLAB_BROKER_AMQP_CONN_H */
