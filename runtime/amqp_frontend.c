/*
 * runtime/amqp_frontend.c — AMQP 0-9-1 connections on libuv, each backed by
 * a wire client session over TCP to a node's client port. See the header.
 */
#include "runtime/amqp_frontend.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "broker/amqp_conn.h"
#include "broker/node.h"
#include "broker/sm.h"
#include "broker/wire.h"
#include "runtime/outbuf.h"

#define FE_WINDOW 8192u              /* wire requests in flight per connection */
#define FE_WINDOW_HEADROOM 2048u     /* free slots needed before feeding input */
#define FE_FEED_CHUNK_BYTES (32u * 1024u) /* < headroom publishes per feed */
#define FE_IN_BYTES_MAX (256u * 1024u)    /* unfed client bytes */
#define FE_LINK_IN_BYTES_MAX (2u * WIRE_MESSAGE_SIZE_MAX)
#define FE_READ_CHUNK_BYTES (64u * 1024u)
#define FE_TICK_MS 50u
#define FE_HEARTBEAT_NS (250ull * 1000000ull) /* < FE_LINK_SILENT_NS / 3 */
#define FE_LINK_SILENT_NS ((uint64_t)RT_AMQP_LINK_SILENT_MS * 1000000ull)
#define FE_DRAIN_TIMEOUT_NS ((uint64_t)RT_AMQP_DRAIN_TIMEOUT_MS * 1000000ull)
#define FE_LINK_IN_CAP_MIN (64u * 1024u) /* first link buffer; doubles to the max */
#define FE_TRIM_EVERY_FREES 64u          /* trim the heap after this many frees */
#define FE_REFUSE_LOG_EVERY 100u         /* log the 1st, 101st, ... refusal */
#define FE_REQUEST_TIMEOUT_NS (10ull * 1000000000ull)
#define FE_BACKOFF_MIN_NS (50ull * 1000000ull)
#define FE_BACKOFF_MAX_NS (2000ull * 1000000ull)
#define FE_CONSUMERS_MAX 64u         /* consumers per connection */
#define FE_PREFETCH_MAX 64u          /* unacked deliveries per consumer on the wire:
                                        x 1 MiB bodies stays under the node's 64 MiB
                                        per-connection output cap */
#define FE_EXCLUSIVE_MAX 64u         /* exclusive queues per connection */
#define FE_FRAMES_PER_PASS_MAX 4096u /* link frames handled per pass */
#define FE_FEEDS_PER_PASS_MAX 64u
#define FE_SOCK_LINGER_MS 1000u          /* read after our last byte before closing */
#define FE_GEN_SHIFT 48
#define FE_TAG_MASK ((UINT64_C(1) << FE_GEN_SHIFT) - 1u)

enum fe_req_kind {
    FE_REQ_FREE = 0,
    FE_REQ_OP,      /* answer amqp_conn_op_ok */
    FE_REQ_QUEUE,   /* answer amqp_conn_queue_ok(count) */
    FE_REQ_CONSUME, /* op_ok + consumer becomes active */
    FE_REQ_CANCEL,  /* op_ok whatever the node says */
    FE_REQ_GET,     /* get_ok / get_empty */
    FE_REQ_PUBLISH, /* confirm / nack / return */
    FE_REQ_IGNORE,  /* answer dropped (housekeeping) */
    FE_REQ_DELETE,  /* queue.delete: a missing queue is deleted already */
    FE_REQ_XDELETE, /* exchange.delete: likewise */
};

typedef struct fe_req {
    uint64_t rid; /* 0 = free slot */
    uint8_t kind;
    uint8_t mandatory;
    uint8_t deferred; /* held until the publishes before it are answered */
    uint16_t channel;
    uint64_t amqp_req; /* the amqp op, or the publish seq (0 = no confirm) */
    uint8_t *frame;    /* the encoded wire frame, re-sent on failover */
    uint32_t frame_len;
    uint64_t sent_ns;
} fe_req_t;

typedef struct fe_consumer {
    uint8_t used, active, no_ack, exclusive;
    uint16_t channel;
    uint32_t prefetch;
    uint8_t tag_len, queue_len, wtag_len;
    char tag[WIRE_NAME_SIZE_MAX];   /* the client's tag (unique per channel) */
    char queue[WIRE_NAME_SIZE_MAX];
    char wtag[24];                  /* the tag on the wire (unique per connection) */
} fe_consumer_t;

typedef struct fe_conn fe_conn_t;

typedef struct fe_link {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    fe_conn_t *owner;
    uint8_t up, dead, reading;
    uint8_t *in;          /* NULL while empty; grows to FE_LINK_IN_BYTES_MAX */
    size_t in_len, in_cap;
    uint64_t last_rx_ns;  /* connect time, then the last bytes from the node */
    rt_outbuf_t out; /* frames of this loop turn, not yet written */
} fe_link_t;

struct fe_conn {
    rt_amqp_t *fe;
    fe_conn_t *next, *prev;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uint32_t refs; /* open handles (tcp, timer, links) */
    amqp_conn_t *conn;
    uint64_t id;
    uint8_t closing, reading, writing, link_blocked, amq_declared, amq_used;
    uint8_t link_dirty; /* link->out has bytes for the next flush */
    uint8_t tcp_closed; /* no more client I/O (draining or gone) */
    uint8_t draining;   /* closed by the client; finishing its requests */
    uint8_t graceful;   /* the AMQP close completed: FIN, then read to EOF */
    uint8_t sock_done;  /* the socket's close is under way */
    uv_shutdown_t shutdown_req;
    uint8_t *in;        /* NULL while empty */
    size_t in_len;
    uint64_t accepted_ns, active_ns; /* handshake / idle timeouts */
    uint64_t last_tick_ns;   /* our own liveness: a gap = we were stopped */
    uint64_t drain_deadline_ns;
    /* the wire session */
    fe_link_t *link;
    uint32_t node;         /* index of the node the link goes to */
    uint64_t gen;          /* link generation (msg_ref high bits) */
    uint64_t epoch;        /* session epoch from the node, 0 = none yet */
    uint8_t hb_waiting;    /* a HEARTBEAT(0) is unanswered */
    uint64_t last_hb_ns, retry_at_ns, backoff_ns;
    uint64_t next_rid, head_rid;
    uint64_t next_wtag; /* wire consumer tags: AMQP's are unique per channel only */
    uint32_t deferred; /* requests held behind earlier publishes */
    fe_req_t *reqs; /* FE_WINDOW slots, slot = rid % FE_WINDOW */
    fe_consumer_t consumers[FE_CONSUMERS_MAX];
    char *exclusive[FE_EXCLUSIVE_MAX];
    char *autodel[FE_EXCLUSIVE_MAX];  /* auto_delete queues this connection declared */
    uint8_t autodel_used[FE_EXCLUSIVE_MAX]; /* ... that had a consumer here */
    uint16_t prefetch[AMQP_CONN_CHANNELS_MAX + 1];
    uint64_t pub_seq[AMQP_CONN_CHANNELS_MAX + 1]; /* producer sequence */
};

struct rt_amqp {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uint8_t started, stopped, listener_open, freed;
    /* one link write per connection per loop turn: a zero-delay timer
     * flushes every dirty connection's link */
    uv_timer_t flush_timer;
    uint8_t flush_open;
    uint32_t dirty_count;
    char listen[RT_AMQP_ADDR_MAX + 1];
    char nodes[RT_AMQP_NODES_MAX][RT_AMQP_ADDR_MAX + 1];
    uint32_t nodes_count, first_node, conns_max, conns;
    uint32_t alive; /* fe_conn_t structs not yet freed (handles closing) */
    uint16_t heartbeat_s;
    char token[RT_CLIENT_TOKEN_MAX];
    uint32_t token_len;
    uint64_t handshake_ns, idle_ns;
    uint64_t session_trust_ns; /* half the node's session timeout */
    uint32_t frees; /* connections freed, for the heap trim */
    int verbose, port;
    FILE *log_out;
    fe_conn_t *head;
    uint64_t next_conn_id, next_message_id, producer_base;
    rt_amqp_stats_t stats;
};

typedef struct fe_write {
    uv_write_t req;
    fe_conn_t *c;
    size_t len;
    uint8_t data[];
} fe_write_t;

static void fe__log(const rt_amqp_t *fe, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fe__log(const rt_amqp_t *fe, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(fe->log_out ? fe->log_out : stderr, "chaoslab[amqp] %s\n", line);
}

static uint64_t fe__now(const rt_amqp_t *fe) {
    (void)fe;
    return uv_hrtime();
}

/* rt_parse_addr wants a port 1..65535; a listener may ask for port 0. */
static int fe__parse_listen(const char *text, struct sockaddr_storage *out) {
    const size_t len = strlen(text);
    if (len < 2 || len > RT_AMQP_ADDR_MAX) return RT_EADDR;
    if (strcmp(text + len - 2, ":0") != 0) return rt_parse_addr(text, out);
    char buf[RT_AMQP_ADDR_MAX + 2];
    snprintf(buf, sizeof buf, "%.*s:1", (int)(len - 2), text);
    if (rt_parse_addr(buf, out) != 0) return RT_EADDR;
    if (out->ss_family == AF_INET6) ((struct sockaddr_in6 *)out)->sin6_port = 0;
    else ((struct sockaddr_in *)out)->sin_port = 0;
    return 0;
}

static int fe__copy(char *dst, size_t cap, const char *src) {
    if (src == NULL) return -1;
    const size_t n = strlen(src);
    if (n == 0 || n >= cap) return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* ---- connection lifetime ------------------------------------------------- */

/* Free the front end once freed and every handle it owns has closed. */
static void fe__maybe_free(rt_amqp_t *fe) {
    assert(fe != NULL);
    if (fe->freed && fe->alive == 0 && !fe->listener_open && !fe->flush_open) free(fe);
}

static void fe__conn_unref(fe_conn_t *c) {
    assert(c->refs > 0);
    c->refs--;
    if (c->refs > 0) return;
    rt_amqp_t *fe = c->fe;
    for (uint32_t i = 0; c->reqs != NULL && i < FE_WINDOW; i++) free(c->reqs[i].frame);
    for (uint32_t i = 0; i < FE_EXCLUSIVE_MAX; i++) free(c->exclusive[i]);
    for (uint32_t i = 0; i < FE_EXCLUSIVE_MAX; i++) free(c->autodel[i]);
    free(c->reqs);
    free(c->in);
    free(c);
    assert(fe->alive > 0);
    fe->alive--;
    /* Give freed pages back: after a burst of connections glibc would keep
     * them in its arenas (RSS stuck at the peak). */
    if (fe->alive == 0 || ++fe->frees % FE_TRIM_EVERY_FREES == 0) rt_trim_memory();
    fe__maybe_free(fe);
}

static void fe__handle_closed(uv_handle_t *h) { fe__conn_unref((fe_conn_t *)h->data); }

static void fe__link_closed(uv_handle_t *h) {
    fe_link_t *l = (fe_link_t *)h->data;
    fe_conn_t *c = l->owner;
    rt_outbuf_discard(&l->out);
    free(l->in);
    free(l);
    fe__conn_unref(c);
}

static void fe__link_shutdown_cb(uv_shutdown_t *req, int status) {
    (void)status;
    fe_link_t *l = (fe_link_t *)req->data;
    uv_close((uv_handle_t *)&l->tcp, fe__link_closed);
}

static void fe__link_write_cb(uv_write_t *req, int status) {
    (void)status; /* a failed link shows up as a read error / close */
    rt_outbuf_chunk_free((rt_outbuf_chunk_t *)req);
}

static void fe__undirty(fe_conn_t *c) {
    if (!c->link_dirty) return;
    c->link_dirty = 0;
    assert(c->fe->dirty_count > 0);
    c->fe->dirty_count--;
}

/* Hand the link's pending frames to libuv as one write. A failure drops
 * them: the link is broken, which its read side reports. */
static void fe__link_flush(fe_conn_t *c) {
    fe__undirty(c);
    fe_link_t *l = c->link;
    if (l == NULL) return;
    if (!l->up || l->dead) {
        rt_outbuf_discard(&l->out);
        return;
    }
    size_t handed = 0;
    (void)rt_outbuf_flush(&l->out, (uv_stream_t *)&l->tcp, c, fe__link_write_cb, &handed);
}

static void fe__flush_cb(uv_timer_t *t) {
    rt_amqp_t *fe = (rt_amqp_t *)t->data;
    assert(fe != NULL && fe->flush_open);
    /* A flush never closes a connection, so the list holds still. */
    fe_conn_t *c = fe->head;
    for (uint32_t i = 0; i <= RT_AMQP_CONNS_MAX && c != NULL && fe->dirty_count > 0; i++) {
        if (c->link_dirty) fe__link_flush(c);
        c = c->next;
    }
    assert(fe->dirty_count == 0);
}

/* Drop the link. graceful: let queued writes reach the node first. */
static void fe__link_drop(fe_conn_t *c, int graceful) {
    fe_link_t *l = c->link;
    if (l == NULL) return;
    assert(l->owner == c);
    if (graceful) fe__link_flush(c);
    fe__undirty(c);
    rt_outbuf_discard(&l->out);
    c->link = NULL;
    l->dead = 1;
    if (l->reading) uv_read_stop((uv_stream_t *)&l->tcp);
    l->shutdown_req.data = l;
    if (graceful && l->up &&
        uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp, fe__link_shutdown_cb) == 0)
        return;
    uv_close((uv_handle_t *)&l->tcp, fe__link_closed);
}

static void fe__conn_close(fe_conn_t *c);
static void fe__conn_close_ex(fe_conn_t *c, int graceful);

/* ---- writes ---------------------------------------------------------------- */

static void fe__client_flush(fe_conn_t *c);
static void fe__pump(fe_conn_t *c);
static void fe__link_process(fe_conn_t *c);

static void fe__client_write_cb(uv_write_t *req, int status) {
    fe_write_t *w = (fe_write_t *)req;
    fe_conn_t *c = w->c;
    free(w);
    c->writing = 0;
    if (c->closing || c->tcp_closed) return;
    if (status < 0) { /* EPIPE, ECONNRESET: this connection only */
        fe__conn_close(c);
        return;
    }
    c->active_ns = fe__now(c->fe); /* the client reads: not idle */
    fe__client_flush(c);
    if (c->link_blocked) fe__link_process(c);
    fe__pump(c);
}

/* Send what amqp_conn has for the client: one write in flight at a time, so
 * amqp_conn's own output high-water mark throttles it. */
static void fe__client_flush(fe_conn_t *c) {
    if (c->closing || c->writing) return;
    const uint8_t *bytes = NULL;
    size_t n = amqp_conn_output(c->conn, &bytes);
    if (c->tcp_closed) { /* draining: nobody to tell */
        for (uint32_t i = 0; i < FE_FEEDS_PER_PASS_MAX && n > 0; i++) {
            amqp_conn_output_consume(c->conn, n);
            n = amqp_conn_output(c->conn, &bytes);
        }
        return;
    }
    if (n == 0) {
        /* Everything said (close-ok, or our close and its close-ok): end
         * the connection gracefully, so the client reads our last frames. */
        if (amqp_conn_state(c->conn) == AMQP_CONN_S_CLOSED) fe__conn_close_ex(c, 1);
        return;
    }
    fe_write_t *w = malloc(sizeof *w + n);
    if (w == NULL) {
        fe__conn_close(c);
        return;
    }
    memcpy(w->data, bytes, n);
    w->c = c;
    w->len = n;
    amqp_conn_output_consume(c->conn, n);
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, fe__client_write_cb) != 0) {
        free(w);
        fe__conn_close(c);
        return;
    }
    c->writing = 1;
}

/* Queue one frame for the node; written on the next loop turn (or at once
 * past RT_OUTBUF_FLUSH_BYTES). No memory: the frame is lost, and a request
 * is re-sent by the failover that its missing answer triggers. */
static void fe__link_send(fe_conn_t *c, const uint8_t *bytes, size_t len) {
    assert(c != NULL && bytes != NULL);
    fe_link_t *l = c->link;
    if (l == NULL || !l->up) return; /* sent again when the link is up */
    rt_amqp_t *fe = c->fe;
    if (rt_outbuf_append(&l->out, bytes, len, NULL, 0) != 0) return;
    if (rt_outbuf_pending_bytes(&l->out) >= RT_OUTBUF_FLUSH_BYTES || !fe->flush_open) {
        fe__link_flush(c);
        return;
    }
    if (!c->link_dirty) {
        c->link_dirty = 1;
        fe->dirty_count++;
        /* A zero delay runs on the next loop turn, never inside this call. */
        if (!uv_is_active((uv_handle_t *)&fe->flush_timer))
            uv_timer_start(&fe->flush_timer, fe__flush_cb, 0, 0);
    }
}

/* Encode and send a fire-and-forget message (request id 0 or no id). */
static void fe__link_send_msg(fe_conn_t *c, const wire_msg_t *m) {
    uint8_t small[1024];
    const int size = wire_encoded_size(m);
    if (size <= 0) return;
    uint8_t *buf = (size_t)size <= sizeof small ? small : malloc((size_t)size);
    if (buf == NULL) return;
    if (wire_encode(m, buf, (size_t)size) == size) fe__link_send(c, buf, (size_t)size);
    if (buf != small) free(buf);
}

/* ---- the request window ------------------------------------------------------ */

static uint32_t fe__window_used(const fe_conn_t *c) { return (uint32_t)(c->next_rid - c->head_rid); }

static fe_req_t *fe__req_find(fe_conn_t *c, uint64_t rid) {
    if (rid == 0 || rid < c->head_rid || rid >= c->next_rid || c->reqs == NULL) return NULL;
    fe_req_t *r = &c->reqs[rid % FE_WINDOW];
    return r->rid == rid ? r : NULL;
}

/* Send the held requests that no unanswered publish precedes any more. */
static void fe__release_deferred(fe_conn_t *c) {
    if (c->reqs == NULL) return;
    for (uint64_t rid = c->head_rid; rid < c->next_rid && c->deferred > 0; rid++) {
        fe_req_t *r = &c->reqs[rid % FE_WINDOW];
        if (r->rid != rid) continue;
        if (r->kind == FE_REQ_PUBLISH || r->kind == FE_REQ_IGNORE) return;
        if (!r->deferred) continue;
        r->deferred = 0;
        c->deferred--;
        fe__link_send(c, r->frame, r->frame_len);
    }
}

static void fe__req_done(fe_conn_t *c, fe_req_t *r) {
    assert(r->rid != 0);
    if (r->deferred) c->deferred--;
    const int was_publish = r->kind == FE_REQ_PUBLISH || r->kind == FE_REQ_IGNORE;
    free(r->frame);
    memset(r, 0, sizeof *r);
    while (c->head_rid < c->next_rid && c->reqs[c->head_rid % FE_WINDOW].rid != c->head_rid)
        c->head_rid++;
    if (was_publish && c->deferred > 0) fe__release_deferred(c);
}

/* 1 if a publish (or a housekeeping delete) of this connection is still
 * unanswered: state reads wait for it. */
static int fe__publishes_pending(const fe_conn_t *c) {
    if (c->reqs == NULL) return 0;
    for (uint64_t rid = c->head_rid; rid < c->next_rid; rid++) {
        const fe_req_t *r = &c->reqs[rid % FE_WINDOW];
        if (r->rid == rid && (r->kind == FE_REQ_PUBLISH || r->kind == FE_REQ_IGNORE)) return 1;
    }
    return 0;
}

/* Store and send one request. `m`'s request_id field must be rid_field.
 * Returns 0, IO_ENOMEM (window full / no memory), IO_EINVAL (not encodable). */
static int fe__req_issue(fe_conn_t *c, wire_msg_t *m, uint64_t *rid_field, uint8_t kind,
                         uint16_t channel, uint64_t amqp_req) {
    assert(kind != FE_REQ_FREE);
    if (fe__window_used(c) >= FE_WINDOW) return IO_ENOMEM;
    if (c->reqs == NULL) { /* allocated on the first request, freed when idle */
        c->reqs = calloc(FE_WINDOW, sizeof *c->reqs);
        if (c->reqs == NULL) return IO_ENOMEM;
    }
    const uint64_t rid = c->next_rid;
    *rid_field = rid;
    const int size = wire_encoded_size(m);
    if (size <= 0) return IO_EINVAL;
    uint8_t *frame = malloc((size_t)size);
    if (frame == NULL) return IO_ENOMEM;
    if (wire_encode(m, frame, (size_t)size) != size) {
        free(frame);
        return IO_EINVAL;
    }
    fe_req_t *r = &c->reqs[rid % FE_WINDOW];
    assert(r->rid == 0);
    *r = (fe_req_t){.rid = rid, .kind = kind, .channel = channel, .amqp_req = amqp_req,
                    .frame = frame, .frame_len = (uint32_t)size, .sent_ns = fe__now(c->fe)};
    c->next_rid++;
    /* A passive declare or a get is answered from the node's applied state
     * at once: hold it until this connection's earlier publishes are
     * answered, so it sees them (AMQP orders a channel's methods). */
    const int reads_state = m->type == WIRE_MSG_GET ||
                            (m->type == WIRE_MSG_DECLARE_QUEUE &&
                             (m->declare_queue.flags & WIRE_QUEUE_PASSIVE)) ||
                            (m->type == WIRE_MSG_DECLARE_EXCHANGE &&
                             m->declare_exchange.passive);
    if (reads_state && fe__publishes_pending(c)) {
        r->deferred = 1;
        c->deferred++;
        return 0;
    }
    fe__link_send(c, frame, (size_t)size);
    return 0;
}

/* ---- link (wire session) ------------------------------------------------------ */

static void fe__link_connect(fe_conn_t *c);

/* The client port's token preamble ("CHLA", u32 LE length, token): the
 * first bytes of every link, before the session's first heartbeat. */
static void fe__link_auth(fe_conn_t *c) {
    const rt_amqp_t *fe = c->fe;
    uint8_t head[RT_CLIENT_AUTH_HEADER_BYTES];
    const uint32_t magic = RT_CLIENT_AUTH_MAGIC, len = fe->token_len;
    for (uint32_t i = 0; i < 4; i++) {
        head[i] = (uint8_t)(magic >> (8 * i));
        head[4 + i] = (uint8_t)(len >> (8 * i));
    }
    if (rt_outbuf_append(&c->link->out, head, sizeof head, (const uint8_t *)fe->token, len) != 0)
        return; /* no memory: the node refuses the link, which fails over */
}

static void fe__link_retry(fe_conn_t *c, uint32_t node, int at_once) {
    fe__link_drop(c, 0);
    c->node = node % c->fe->nodes_count;
    const uint64_t delay = at_once ? 0 : c->backoff_ns;
    c->backoff_ns = c->backoff_ns * 2 > FE_BACKOFF_MAX_NS ? FE_BACKOFF_MAX_NS : c->backoff_ns * 2;
    c->retry_at_ns = fe__now(c->fe) + delay;
    c->fe->stats.link_failovers++;
}

static void fe__not_leader(fe_conn_t *c, uint32_t hint) {
    if (hint < c->fe->nodes_count && hint != c->node) fe__link_retry(c, hint, 1);
    else fe__link_retry(c, c->node + 1, 0);
}

static void fe__declare_amq(fe_conn_t *c) {
    static const struct { const char *name; uint8_t kind; } amq[3] = {
        {"amq.direct", WIRE_EXCHANGE_DIRECT},
        {"amq.fanout", WIRE_EXCHANGE_FANOUT},
        {"amq.topic", WIRE_EXCHANGE_TOPIC},
    };
    for (uint32_t i = 0; i < 3; i++) {
        wire_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_MSG_DECLARE_EXCHANGE;
        m.declare_exchange.name = wire_str(amq[i].name);
        m.declare_exchange.kind = amq[i].kind;
        m.declare_exchange.durable = 1;
        fe__link_send_msg(c, &m);
    }
    c->amq_declared = 1;
}

static int fe__is_amq(amqp_bytes_t name) {
    return name.len > 4 && memcmp(name.ptr, "amq.", 4) == 0;
}

static void fe__heartbeat(fe_conn_t *c) {
    if (c->link == NULL || !c->link->up) return;
    if (c->epoch == 0 && c->hb_waiting) return; /* a second 0 would reset the session */
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_HEARTBEAT;
    m.heartbeat.session_id = c->epoch;
    m.heartbeat.timestamp_ns = fe__now(c->fe);
    /* This AMQP connection's identity (owner of its exclusive queues),
     * unique across front ends: random high bits, connection id below. */
    m.heartbeat.owner = c->fe->producer_base ^ (c->id << 16);
    if (c->epoch == 0) c->hb_waiting = 1;
    c->last_hb_ns = fe__now(c->fe);
    fe__link_send_msg(c, &m);
}

static void fe__consume_msg(const fe_consumer_t *k, wire_msg_t *m) {
    memset(m, 0, sizeof *m);
    m->type = WIRE_MSG_CONSUME;
    m->consume.queue = (wire_bytes_t){(const uint8_t *)k->queue, k->queue_len};
    m->consume.consumer_tag = (wire_bytes_t){(const uint8_t *)k->wtag, k->wtag_len};
    /* Flow control toward the client: the node pushes at most
     * FE_PREFETCH_MAX unacked deliveries per consumer, and a no_ack
     * consumer is a manual one on the wire that the front end acks once the
     * delivery sits in the client's output (fe__on_deliver). A client that
     * stops reading then stops the node instead of piling up deliveries. */
    m->consume.prefetch = k->prefetch == 0 || k->prefetch > FE_PREFETCH_MAX ? FE_PREFETCH_MAX
                                                                            : k->prefetch;
    m->consume.ack_mode = WIRE_ACK_MANUAL;
    m->consume.exclusive = k->exclusive;
}

/* A new session: heartbeat first (so the node opens the session we will
 * keep), consumers again, then every unanswered request in order. */
static void fe__link_up(fe_conn_t *c) {
    c->gen = (c->gen + 1) & 0xffffu;
    c->epoch = 0;
    c->hb_waiting = 0;
    c->amq_declared = 0;
    c->fe->stats.link_connects++;
    fe__heartbeat(c);
    if (c->amq_used) fe__declare_amq(c);
    for (uint32_t i = 0; i < FE_CONSUMERS_MAX; i++) {
        const fe_consumer_t *k = &c->consumers[i];
        if (!k->used || !k->active) continue;
        wire_msg_t m;
        fe__consume_msg(k, &m);
        fe__link_send_msg(c, &m);
    }
    for (uint64_t rid = c->head_rid; rid < c->next_rid; rid++) {
        fe_req_t *r = fe__req_find(c, rid);
        if (r == NULL || r->deferred) continue;
        r->sent_ns = fe__now(c->fe);
        fe__link_send(c, r->frame, r->frame_len);
        c->fe->stats.resent++;
    }
}

/* The link's input grows by doubling while a big frame needs it (up to
 * FE_LINK_IN_BYTES_MAX) and is freed whenever it is empty. */
static void fe__link_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    fe_link_t *l = (fe_link_t *)h->data;
    if (l->in_cap - l->in_len < FE_READ_CHUNK_BYTES && l->in_cap < FE_LINK_IN_BYTES_MAX) {
        size_t cap = l->in_cap ? l->in_cap * 2 : FE_LINK_IN_CAP_MIN;
        if (cap > FE_LINK_IN_BYTES_MAX) cap = FE_LINK_IN_BYTES_MAX;
        uint8_t *in = realloc(l->in, cap);
        if (in != NULL) {
            l->in = in;
            l->in_cap = cap;
        }
    }
    const size_t room = l->in_cap - l->in_len;
    /* room 0 (no memory) makes libuv report UV_ENOBUFS: the link fails over. */
    *buf = uv_buf_init(room ? (char *)l->in + l->in_len : NULL,
                       (unsigned)(room < FE_READ_CHUNK_BYTES ? room : FE_READ_CHUNK_BYTES));
}

/* 1 when this process did not run for longer than half the node's session
 * timeout (SIGSTOP, a VM pause, a swap storm): our heartbeats stopped, the
 * node may have expired the session and given its unacked messages to other
 * consumers, and the deliveries buffered on the link (in the kernel or here)
 * may be of that dead session. Handing them out would be a second first
 * delivery (redelivered=0) of a message someone else already got; acking
 * them could hit a reopened session's tags. So the link is dropped, unread,
 * and a fresh session gets the messages again, flagged. */
static int fe__stalled(fe_conn_t *c, uint64_t now) {
    if (c->last_tick_ns == 0 || now - c->last_tick_ns <= c->fe->session_trust_ns) return 0;
    c->last_tick_ns = now;
    if (c->link == NULL) return 0;
    c->fe->stats.stale_drops++;
    fe__link_retry(c, c->node, 1);
    return 1;
}

static void fe__link_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    fe_link_t *l = (fe_link_t *)s->data;
    fe_conn_t *c = l->owner;
    if (l->dead) return;
    /* After a stop, libuv may run this before our timers: check here too. */
    if (fe__stalled(c, fe__now(c->fe))) return;
    if (nread < 0) {
        fe__link_retry(c, c->node, 0);
        return;
    }
    l->in_len += (size_t)nread;
    assert(l->in_len <= l->in_cap);
    if (nread > 0) l->last_rx_ns = fe__now(c->fe);
    fe__link_process(c);
    fe__client_flush(c);
    fe__pump(c);
}

static void fe__link_connect_cb(uv_connect_t *req, int status) {
    fe_link_t *l = (fe_link_t *)req->data;
    if (l->dead) return; /* dropped meanwhile; its close is queued */
    fe_conn_t *c = l->owner;
    if (status < 0) {
        fe__link_retry(c, c->node + 1, 0);
        return;
    }
    l->up = 1;
    l->last_rx_ns = fe__now(c->fe);
    c->backoff_ns = FE_BACKOFF_MIN_NS;
    (void)uv_tcp_nodelay(&l->tcp, 1);
    if (uv_read_start((uv_stream_t *)&l->tcp, fe__link_alloc_cb, fe__link_read_cb) != 0) {
        fe__link_retry(c, c->node + 1, 0);
        return;
    }
    l->reading = 1;
    if (c->fe->token_len > 0) fe__link_auth(c);
    fe__link_up(c);
}

static void fe__link_connect(fe_conn_t *c) {
    assert(c->link == NULL);
    assert(c->node < c->fe->nodes_count);
    struct sockaddr_storage sa;
    if (rt_parse_addr(c->fe->nodes[c->node], &sa) != 0) {
        fe__link_retry(c, c->node + 1, 0);
        return;
    }
    fe_link_t *l = calloc(1, sizeof *l);
    if (l == NULL || uv_tcp_init(c->fe->loop, &l->tcp) != 0) {
        free(l);
        c->retry_at_ns = fe__now(c->fe) + FE_BACKOFF_MAX_NS;
        return;
    }
    l->owner = c;
    l->tcp.data = l;
    l->connect_req.data = l;
    c->refs++;
    c->link = l;
    c->retry_at_ns = 0;
    if (uv_tcp_connect(&l->connect_req, &l->tcp, (const struct sockaddr *)&sa,
                       fe__link_connect_cb) != 0)
        fe__link_retry(c, c->node + 1, 0);
}

/* ---- node -> client ---------------------------------------------------------- */

static uint16_t fe__reply_code(uint16_t status) {
    switch (status) {
    case WIRE_STATUS_NOT_FOUND: return 404;
    case WIRE_STATUS_PRECONDITION_FAILED: return 406;
    case WIRE_STATUS_INVALID: return 406;
    case WIRE_STATUS_ACCESS_REFUSED: return 403;
    case WIRE_STATUS_RESOURCE_LOCKED: return 405;
    case WIRE_STATUS_RESOURCE_LIMIT: return 506;
    default: return 541;
    }
}

/* The consumer a node message names (by its wire tag). */
static fe_consumer_t *fe__consumer(fe_conn_t *c, const uint8_t *wtag, size_t len) {
    for (uint32_t i = 0; i < FE_CONSUMERS_MAX; i++) {
        fe_consumer_t *k = &c->consumers[i];
        if (k->used && k->wtag_len == len && memcmp(k->wtag, wtag, len) == 0) return k;
    }
    return NULL;
}

/* The consumer a client method names (by channel and its own tag). */
static fe_consumer_t *fe__consumer_on(fe_conn_t *c, uint16_t channel, amqp_bytes_t tag) {
    for (uint32_t i = 0; i < FE_CONSUMERS_MAX; i++) {
        fe_consumer_t *k = &c->consumers[i];
        if (k->used && k->channel == channel && k->tag_len == tag.len &&
            (tag.len == 0 || memcmp(k->tag, tag.ptr, tag.len) == 0))
            return k;
    }
    return NULL;
}

static void fe__settle_wire(fe_conn_t *c, uint64_t node_tag, int requeue, int ack) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    if (ack) {
        m.type = WIRE_MSG_ACK;
        m.ack.delivery_tag = node_tag;
        m.ack.session_id = c->epoch;
    } else {
        m.type = WIRE_MSG_NACK;
        m.nack.delivery_tag = node_tag;
        m.nack.session_id = c->epoch;
        m.nack.requeue = (uint8_t)requeue;
    }
    fe__link_send_msg(c, &m);
}

static void fe__props(const wire_bytes_t raw, amqp_basic_props_t *props) {
    memset(props, 0, sizeof *props);
    if (raw.len > 0 && amqp_basic_props_decode(raw.ptr, raw.len, props) != 0)
        memset(props, 0, sizeof *props);
}

static amqp_bytes_t fe__b(wire_bytes_t b) { return (amqp_bytes_t){b.ptr, b.len}; }

static fe_req_t *fe__oldest_get(fe_conn_t *c) {
    if (c->reqs == NULL) return NULL;
    for (uint64_t rid = c->head_rid; rid < c->next_rid; rid++) {
        fe_req_t *r = fe__req_find(c, rid);
        if (r != NULL && r->kind == FE_REQ_GET) return r;
    }
    return NULL;
}

/* Returns 1 when the frame must wait (the client is not reading). */
static int fe__on_deliver(fe_conn_t *c, const wire_deliver_t *d) {
    amqp_basic_props_t props;
    fe__props(d->properties, &props);
    const uint64_t ref = (c->gen << FE_GEN_SHIFT) | (d->delivery_tag & FE_TAG_MASK);
    int rc;
    if (d->consumer_tag.len == 0) {
        fe_req_t *r = fe__oldest_get(c);
        if (r == NULL) return 0;
        rc = amqp_conn_get_ok(c->conn, r->amqp_req, ref, d->redelivered, fe__b(d->exchange),
                              fe__b(d->routing_key), d->message_count, &props, fe__b(d->body),
                              NULL);
        if (rc == IO_ENOMEM) return 1;
        if (rc != 0) fe__settle_wire(c, d->delivery_tag, 1, 0);
        fe__req_done(c, r);
    } else {
        fe_consumer_t *k = fe__consumer(c, d->consumer_tag.ptr, d->consumer_tag.len);
        rc = k == NULL ? IO_ENOENT
                       : amqp_conn_deliver(c->conn, k->channel,
                                           (amqp_bytes_t){(const uint8_t *)k->tag, k->tag_len}, ref,
                                           d->redelivered, fe__b(d->exchange),
                                           fe__b(d->routing_key), &props, fe__b(d->body), NULL);
        if (rc == IO_ENOMEM) return 1;
        if (rc != 0) fe__settle_wire(c, d->delivery_tag, 1, 0); /* back to the queue */
        else if (k->no_ack) fe__settle_wire(c, d->delivery_tag, 0, 1); /* handed over */
    }
    if (rc == 0) c->fe->stats.deliveries++;
    return 0;
}

static void fe__on_confirm(fe_conn_t *c, fe_req_t *r, const wire_confirm_t *cf) {
    if (cf->unroutable && r->mandatory) {
        wire_msg_t pub;
        if (wire_decode(r->frame, r->frame_len, &pub, NULL, 0) == 0) {
            amqp_basic_props_t props;
            fe__props(pub.publish.properties, &props);
            (void)amqp_conn_return(c->conn, r->channel, 312, "NO_ROUTE",
                                   fe__b(pub.publish.exchange), fe__b(pub.publish.routing_key),
                                   &props, fe__b(pub.publish.body));
        }
    }
    if (r->amqp_req > 0) (void)amqp_conn_confirm(c->conn, r->channel, r->amqp_req, 0, 1);
    c->fe->stats.confirms++;
    fe__req_done(c, r);
}

static void fe__on_reply(fe_conn_t *c, fe_req_t *r, const wire_reply_t *rep) {
    char detail[256];
    const size_t n = rep->detail.len < sizeof detail - 1 ? rep->detail.len : sizeof detail - 1;
    if (n > 0) memcpy(detail, rep->detail.ptr, n);
    detail[n] = '\0';
    const char *text = n > 0 ? detail : wire_status_name(rep->status);
    const int ok = rep->status == WIRE_STATUS_OK;
    switch (r->kind) {
    case FE_REQ_OP:
        if (ok) (void)amqp_conn_op_ok(c->conn, r->amqp_req);
        else (void)amqp_conn_op_fail(c->conn, r->amqp_req, fe__reply_code(rep->status), text);
        break;
    case FE_REQ_QUEUE:
    case FE_REQ_DELETE: {
        const uint32_t count = rep->count > UINT32_MAX ? UINT32_MAX : (uint32_t)rep->count;
        /* RabbitMQ: deleting what does not exist succeeds (idempotent). */
        const int gone = r->kind == FE_REQ_DELETE && rep->status == WIRE_STATUS_NOT_FOUND;
        if (ok || gone) (void)amqp_conn_queue_ok(c->conn, r->amqp_req, ok ? count : 0,
                                                 rep->consumers);
        else (void)amqp_conn_op_fail(c->conn, r->amqp_req, fe__reply_code(rep->status), text);
        break;
    }
    case FE_REQ_XDELETE:
        if (ok || rep->status == WIRE_STATUS_NOT_FOUND) (void)amqp_conn_op_ok(c->conn, r->amqp_req);
        else (void)amqp_conn_op_fail(c->conn, r->amqp_req, fe__reply_code(rep->status), text);
        break;
    case FE_REQ_CONSUME: {
        wire_msg_t m;
        fe_consumer_t *k = NULL;
        if (wire_decode(r->frame, r->frame_len, &m, NULL, 0) == 0)
            k = fe__consumer(c, m.consume.consumer_tag.ptr, m.consume.consumer_tag.len);
        if (ok) {
            if (k != NULL) k->active = 1;
            (void)amqp_conn_op_ok(c->conn, r->amqp_req);
        } else {
            if (k != NULL) memset(k, 0, sizeof *k);
            (void)amqp_conn_op_fail(c->conn, r->amqp_req, fe__reply_code(rep->status), text);
        }
        break;
    }
    case FE_REQ_CANCEL: (void)amqp_conn_op_ok(c->conn, r->amqp_req); break;
    case FE_REQ_GET:
        if (rep->status == WIRE_STATUS_EMPTY) (void)amqp_conn_get_empty(c->conn, r->amqp_req);
        else (void)amqp_conn_op_fail(c->conn, r->amqp_req, fe__reply_code(rep->status), text);
        break;
    case FE_REQ_PUBLISH:
        if (r->amqp_req > 0) (void)amqp_conn_confirm(c->conn, r->channel, r->amqp_req, 0, 0);
        break;
    default: break;
    }
    fe__req_done(c, r);
}

/* A publish to a missing exchange: AMQP closes the channel with 404 (the
 * connection stays usable), as RabbitMQ does, whether or not the channel
 * is in confirm mode. */
static void fe__no_exchange(fe_conn_t *c, const fe_req_t *r) {
    wire_msg_t pub;
    char text[AMQP_SHORTSTR_SIZE_MAX + 1];
    if (wire_decode(r->frame, r->frame_len, &pub, NULL, 0) != 0) return;
    const wire_bytes_t x = pub.publish.exchange;
    snprintf(text, sizeof text, "NOT_FOUND - no exchange '%.*s' in vhost '/'",
             (int)(x.len > 200 ? 200 : x.len), (const char *)x.ptr);
    (void)amqp_conn_channel_error(c->conn, r->channel, 404, text, AMQP_BASIC_PUBLISH);
}

/* The node dropped a consumer because its queue was deleted: tell the
 * client (basic.cancel from the server, consumer_cancel_notify). */
static void fe__on_node_cancel(fe_conn_t *c, const wire_cancel_t *cn) {
    fe_consumer_t *k = fe__consumer(c, cn->consumer_tag.ptr, cn->consumer_tag.len);
    if (k == NULL) return;
    (void)amqp_conn_cancel_consumer(c->conn, k->channel,
                                    (amqp_bytes_t){(const uint8_t *)k->tag, k->tag_len});
    memset(k, 0, sizeof *k);
}

/* Returns 1 when the frame must wait, -1 when the link was dropped. */
static int fe__on_frame(fe_conn_t *c, const wire_msg_t *m) {
    fe_req_t *r = NULL;
    switch (m->type) {
    case WIRE_MSG_HEARTBEAT:
        if (m->heartbeat.session_id != 0) c->epoch = m->heartbeat.session_id;
        c->hb_waiting = 0;
        return 0;
    case WIRE_MSG_NOT_LEADER:
        fe__not_leader(c, m->not_leader.leader_hint);
        return -1;
    case WIRE_MSG_DELIVER: return fe__on_deliver(c, &m->deliver);
    case WIRE_MSG_CONFIRM:
        r = fe__req_find(c, m->confirm.request_id);
        if (r != NULL && r->kind == FE_REQ_PUBLISH) fe__on_confirm(c, r, &m->confirm);
        return 0;
    case WIRE_MSG_NACK_PUBLISH:
        r = fe__req_find(c, m->nack_publish.request_id);
        if (r == NULL || r->kind != FE_REQ_PUBLISH) return 0;
        if (m->nack_publish.reason == WIRE_STATUS_NOT_LEADER) {
            fe__not_leader(c, WIRE_NODE_NONE); /* outcome unknown: re-send */
            return -1;
        }
        if (r->amqp_req > 0) (void)amqp_conn_confirm(c->conn, r->channel, r->amqp_req, 0, 0);
        if (m->nack_publish.reason == WIRE_STATUS_NOT_FOUND) fe__no_exchange(c, r);
        if (m->nack_publish.reason == WIRE_STATUS_ACCESS_REFUSED)
            (void)amqp_conn_channel_error(c->conn, r->channel, 403,
                                          "ACCESS_REFUSED - cannot publish to an internal "
                                          "exchange", AMQP_BASIC_PUBLISH);
        c->fe->stats.nacks++;
        fe__req_done(c, r);
        return 0;
    case WIRE_MSG_CANCEL:
        if (m->cancel.request_id == 0) fe__on_node_cancel(c, &m->cancel);
        return 0;
    case WIRE_MSG_REPLY:
        if (m->reply.status == WIRE_STATUS_NOT_LEADER) {
            fe__not_leader(c, WIRE_NODE_NONE);
            return -1;
        }
        r = fe__req_find(c, m->reply.request_id);
        if (r != NULL) fe__on_reply(c, r, &m->reply);
        return 0;
    case WIRE_MSG_ERROR: {
        r = fe__req_find(c, m->error.request_id);
        if (r == NULL) return 0;
        const wire_reply_t rep = {.request_id = m->error.request_id,
                                  .status = m->error.status == WIRE_STATUS_OK
                                                ? WIRE_STATUS_INTERNAL
                                                : m->error.status,
                                  .detail = m->error.detail};
        fe__on_reply(c, r, &rep);
        return 0;
    }
    default: return 0;
    }
}

/* Handle the whole frames the link holds, in order. */
static void fe__link_process(fe_conn_t *c) {
    fe_link_t *l = c->link;
    c->link_blocked = 0;
    if (l == NULL || c->closing) return;
    size_t off = 0;
    for (uint32_t i = 0; i < FE_FRAMES_PER_PASS_MAX && l->in_len > off; i++) {
        const int size = wire_frame_size(l->in + off, l->in_len - off);
        if (size < 0) {
            fe__link_retry(c, c->node, 0);
            return;
        }
        if (size == 0 || (size_t)size > l->in_len - off) break;
        wire_msg_t m;
        int rc = 0;
        if (wire_decode(l->in + off, (size_t)size, &m, NULL, 0) == 0) rc = fe__on_frame(c, &m);
        if (rc < 0) return; /* the link is gone (and its buffer with it) */
        if (rc > 0) {
            c->link_blocked = 1;
            break;
        }
        off += (size_t)size;
    }
    if (off > 0) memmove(l->in, l->in + off, l->in_len - off);
    l->in_len -= off;
    if (l->in_len == 0 && l->in_cap > 0) {
        free(l->in);
        l->in = NULL;
        l->in_cap = 0;
    }
    const int want = !c->link_blocked && l->in_len < FE_LINK_IN_BYTES_MAX;
    if (want && !l->reading && l->up) {
        l->reading = uv_read_start((uv_stream_t *)&l->tcp, fe__link_alloc_cb,
                                   fe__link_read_cb) == 0;
        l->last_rx_ns = fe__now(c->fe); /* silence counts from here again */
    } else if (!want && l->reading) {
        uv_read_stop((uv_stream_t *)&l->tcp);
        l->reading = 0;
    }
}

/* ---- the backend (amqp_conn -> wire) ----------------------------------------- */

static fe_conn_t *fe__of(void *ctx, amqp_conn_t *conn) {
    fe_conn_t *c = ctx;
    assert(c != NULL && c->conn == conn);
    return c;
}

static int fe__name(wire_bytes_t *out, amqp_bytes_t b) {
    if (b.len > WIRE_NAME_SIZE_MAX) return IO_EINVAL;
    *out = (wire_bytes_t){b.ptr, (uint32_t)b.len};
    return 0;
}

static int fe__exchange_declare(void *ctx, const amqp_op_t *op, const amqp_exchange_declare_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    uint8_t kind = 0;
    if (amqp_bytes_eq(a->type, "direct")) kind = WIRE_EXCHANGE_DIRECT;
    else if (amqp_bytes_eq(a->type, "fanout")) kind = WIRE_EXCHANGE_FANOUT;
    else if (amqp_bytes_eq(a->type, "topic")) kind = WIRE_EXCHANGE_TOPIC;
    if (a->exchange.len == 0 || fe__is_amq(a->exchange)) {
        /* The default and amq.* exchanges are predeclared; the spec
         * reserves the names (403 for an active declare). */
        if (a->passive) (void)amqp_conn_op_ok(c->conn, op->req);
        else (void)amqp_conn_op_fail(c->conn, op->req, 403, "ACCESS_REFUSED - reserved name");
        return 0;
    }
    if (kind == 0 && !a->passive) {
        /* A known AMQP type this broker does not route by: refuse on the
         * channel (the connection stays usable); an unknown type is a
         * connection error, as in RabbitMQ. */
        if (amqp_bytes_eq(a->type, "headers"))
            (void)amqp_conn_op_fail(c->conn, op->req, 406,
                                    "PRECONDITION_FAILED - headers exchanges are not supported "
                                    "by this broker");
        else
            (void)amqp_conn_op_fail(c->conn, op->req, 503,
                                    "COMMAND_INVALID - unknown exchange type");
        return 0;
    }
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_DECLARE_EXCHANGE;
    if (fe__name(&m.declare_exchange.name, a->exchange) != 0) return IO_EINVAL;
    m.declare_exchange.kind = kind ? kind : WIRE_EXCHANGE_DIRECT; /* passive: unused */
    m.declare_exchange.durable = a->durable;
    m.declare_exchange.passive = a->passive ? 1 : 0;
    m.declare_exchange.internal = a->internal ? 1 : 0;
    return fe__req_issue(c, &m, &m.declare_exchange.request_id, FE_REQ_OP, op->channel, op->req);
}

static int fe__exchange_delete(void *ctx, const amqp_op_t *op, const amqp_exchange_delete_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    if (a->exchange.len == 0 || fe__is_amq(a->exchange)) {
        (void)amqp_conn_op_fail(c->conn, op->req, 403,
                                "ACCESS_REFUSED - the predeclared exchanges cannot be deleted");
        return 0;
    }
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_DELETE_EXCHANGE;
    if (fe__name(&m.delete_exchange.name, a->exchange) != 0) return IO_EINVAL;
    m.delete_exchange.if_unused = a->if_unused ? 1 : 0;
    return fe__req_issue(c, &m, &m.delete_exchange.request_id, FE_REQ_XDELETE, op->channel,
                         op->req);
}

/* Index of `name` in the connection's auto-delete list, or -1. */
static int fe__autodel_find(const fe_conn_t *c, amqp_bytes_t name) {
    for (uint32_t i = 0; i < FE_EXCLUSIVE_MAX; i++)
        if (c->autodel[i] != NULL && amqp_bytes_eq(name, c->autodel[i])) return (int)i;
    return -1;
}

/* Store a copy of `name` in a free slot of `list`; its index or -1. */
static int fe__name_add(char **list, amqp_bytes_t name) {
    for (uint32_t i = 0; i < FE_EXCLUSIVE_MAX; i++) {
        if (list[i] != NULL) continue;
        char *copy = malloc(name.len + 1);
        if (copy == NULL) return -1;
        if (name.len) memcpy(copy, name.ptr, name.len);
        copy[name.len] = '\0';
        list[i] = copy;
        return (int)i;
    }
    return -1;
}

static int fe__queue_declare(void *ctx, const amqp_op_t *op, const amqp_queue_declare_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_DECLARE_QUEUE;
    if (fe__name(&m.declare_queue.name, a->queue) != 0) return IO_EINVAL;
    m.declare_queue.durable = a->durable;
    m.declare_queue.flags = (a->passive ? WIRE_QUEUE_PASSIVE : 0u) |
                            (a->exclusive ? WIRE_QUEUE_EXCLUSIVE : 0u) |
                            (a->auto_delete ? WIRE_QUEUE_AUTO_DELETE : 0u);
    if (a->auto_delete && !a->passive && fe__autodel_find(c, a->queue) < 0 &&
        fe__name_add(c->autodel, a->queue) < 0) {
        (void)amqp_conn_op_fail(c->conn, op->req, 406,
                                "PRECONDITION_FAILED - too many auto-delete queues on one "
                                "connection");
        return 0;
    }
    if (a->exclusive && !a->passive) {
        /* Remember it: the node does not tie queues to sessions, so the
         * front end deletes exclusive queues when the connection closes. */
        for (uint32_t i = 0; i < FE_EXCLUSIVE_MAX; i++) {
            if (c->exclusive[i] != NULL) continue;
            char *name = malloc(a->queue.len + 1);
            if (name == NULL) break;
            memcpy(name, a->queue.ptr, a->queue.len);
            name[a->queue.len] = '\0';
            c->exclusive[i] = name;
            break;
        }
    }
    return fe__req_issue(c, &m, &m.declare_queue.request_id, FE_REQ_QUEUE, op->channel, op->req);
}

static void fe__maybe_amq(fe_conn_t *c, amqp_bytes_t exchange) {
    if (!fe__is_amq(exchange)) return;
    c->amq_used = 1;
    if (!c->amq_declared) fe__declare_amq(c);
}

static int fe__bind_common(fe_conn_t *c, const amqp_op_t *op, uint8_t type, amqp_bytes_t queue,
                           amqp_bytes_t exchange, amqp_bytes_t key) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = type;
    if (fe__name(&m.bind.queue, queue) != 0 || fe__name(&m.bind.exchange, exchange) != 0 ||
        fe__name(&m.bind.routing_key, key) != 0)
        return IO_EINVAL;
    if (exchange.len == 0) {
        (void)amqp_conn_op_fail(c->conn, op->req, 403,
                                "ACCESS_REFUSED - the default exchange takes no bindings");
        return 0;
    }
    fe__maybe_amq(c, exchange);
    return fe__req_issue(c, &m, &m.bind.request_id, FE_REQ_OP, op->channel, op->req);
}

/* exchange.bind / unbind: source -> destination, replicated. */
static int fe__xbind_common(fe_conn_t *c, const amqp_op_t *op, uint8_t type,
                            amqp_bytes_t destination, amqp_bytes_t source, amqp_bytes_t key) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = type;
    if (fe__name(&m.exchange_bind.exchange, source) != 0 ||
        fe__name(&m.exchange_bind.queue, destination) != 0 ||
        fe__name(&m.exchange_bind.routing_key, key) != 0)
        return IO_EINVAL;
    if (source.len == 0 || destination.len == 0) {
        (void)amqp_conn_op_fail(c->conn, op->req, 403,
                                "ACCESS_REFUSED - the default exchange takes no bindings");
        return 0;
    }
    fe__maybe_amq(c, source);
    fe__maybe_amq(c, destination);
    return fe__req_issue(c, &m, &m.exchange_bind.request_id, FE_REQ_OP, op->channel, op->req);
}

static int fe__exchange_bind(void *ctx, const amqp_op_t *op, const amqp_exchange_bind_t *a) {
    return fe__xbind_common(fe__of(ctx, op->conn), op, WIRE_MSG_EXCHANGE_BIND, a->destination,
                            a->source, a->routing_key);
}

static int fe__exchange_unbind(void *ctx, const amqp_op_t *op,
                               const amqp_exchange_unbind_t *a) {
    return fe__xbind_common(fe__of(ctx, op->conn), op, WIRE_MSG_EXCHANGE_UNBIND,
                            a->destination, a->source, a->routing_key);
}

static int fe__queue_bind(void *ctx, const amqp_op_t *op, const amqp_queue_bind_t *a) {
    return fe__bind_common(fe__of(ctx, op->conn), op, WIRE_MSG_BIND, a->queue, a->exchange,
                           a->routing_key);
}

static int fe__queue_unbind(void *ctx, const amqp_op_t *op, const amqp_queue_unbind_t *a) {
    return fe__bind_common(fe__of(ctx, op->conn), op, WIRE_MSG_UNBIND, a->queue, a->exchange,
                           a->routing_key);
}

static int fe__queue_purge(void *ctx, const amqp_op_t *op, const amqp_queue_purge_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_PURGE_QUEUE;
    if (fe__name(&m.purge_queue.queue, a->queue) != 0) return IO_EINVAL;
    return fe__req_issue(c, &m, &m.purge_queue.request_id, FE_REQ_QUEUE, op->channel, op->req);
}

static int fe__queue_delete(void *ctx, const amqp_op_t *op, const amqp_queue_delete_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_DELETE_QUEUE;
    if (fe__name(&m.delete_queue.queue, a->queue) != 0) return IO_EINVAL;
    m.delete_queue.if_unused = a->if_unused;
    m.delete_queue.if_empty = a->if_empty;
    for (uint32_t i = 0; i < FE_EXCLUSIVE_MAX; i++) {
        if (c->exclusive[i] != NULL && amqp_bytes_eq(a->queue, c->exclusive[i])) {
            free(c->exclusive[i]);
            c->exclusive[i] = NULL;
        }
        if (c->autodel[i] != NULL && amqp_bytes_eq(a->queue, c->autodel[i])) {
            free(c->autodel[i]);
            c->autodel[i] = NULL;
            c->autodel_used[i] = 0;
        }
    }
    return fe__req_issue(c, &m, &m.delete_queue.request_id, FE_REQ_DELETE, op->channel, op->req);
}

static int fe__basic_qos(void *ctx, const amqp_op_t *op, const amqp_basic_qos_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    assert(op->channel <= AMQP_CONN_CHANNELS_MAX);
    c->prefetch[op->channel] = a->prefetch_count;
    (void)amqp_conn_op_ok(c->conn, op->req);
    return 0;
}

static int fe__basic_consume(void *ctx, const amqp_op_t *op, const amqp_basic_consume_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    if (a->queue.len > WIRE_NAME_SIZE_MAX || a->consumer_tag.len > WIRE_NAME_SIZE_MAX)
        return IO_EINVAL;
    if (fe__consumer_on(c, op->channel, a->consumer_tag) != NULL) {
        (void)amqp_conn_op_fail(c->conn, op->req, 530, "NOT_ALLOWED - consumer tag in use");
        return 0;
    }
    fe_consumer_t *k = NULL;
    for (uint32_t i = 0; i < FE_CONSUMERS_MAX && k == NULL; i++)
        if (!c->consumers[i].used) k = &c->consumers[i];
    if (k == NULL) {
        (void)amqp_conn_op_fail(c->conn, op->req, 506, "RESOURCE_ERROR - too many consumers");
        return 0;
    }
    *k = (fe_consumer_t){.used = 1, .no_ack = a->no_ack, .exclusive = a->exclusive ? 1 : 0,
                         .channel = op->channel,
                         .prefetch = c->prefetch[op->channel],
                         .tag_len = (uint8_t)a->consumer_tag.len,
                         .queue_len = (uint8_t)a->queue.len};
    memcpy(k->tag, a->consumer_tag.ptr, a->consumer_tag.len);
    memcpy(k->queue, a->queue.ptr, a->queue.len);
    k->wtag_len = (uint8_t)snprintf(k->wtag, sizeof k->wtag, "fe.%llu",
                                    (unsigned long long)++c->next_wtag);
    const int ad = fe__autodel_find(c, a->queue);
    if (ad >= 0) c->autodel_used[ad] = 1;
    wire_msg_t m;
    fe__consume_msg(k, &m);
    const int rc = fe__req_issue(c, &m, &m.consume.request_id, FE_REQ_CONSUME, op->channel, op->req);
    if (rc != 0) memset(k, 0, sizeof *k);
    return rc;
}

/*
 * auto_delete: a queue declared auto-delete on this connection is deleted
 * when its last consumer here goes (basic.cancel, channel or connection
 * close) after it had one. The DELETE_QUEUE carries if_unused, so the node
 * keeps it while a consumer of another connection is still attached. (A
 * queue declared auto-delete elsewhere is not tracked here: docs/amqp.md.)
 */
static void fe__autodel_check(fe_conn_t *c, amqp_bytes_t queue) {
    const int i = fe__autodel_find(c, queue);
    if (i < 0 || !c->autodel_used[i]) return;
    for (uint32_t j = 0; j < FE_CONSUMERS_MAX; j++) {
        const fe_consumer_t *k = &c->consumers[j];
        if (k->used && k->queue_len == queue.len && memcmp(k->queue, queue.ptr, queue.len) == 0)
            return; /* still consumed from here */
    }
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_DELETE_QUEUE;
    m.delete_queue.queue = wire_str(c->autodel[i]);
    m.delete_queue.if_unused = 1;
    /* In the window, so a later passive declare or get waits for it. */
    if (fe__req_issue(c, &m, &m.delete_queue.request_id, FE_REQ_IGNORE, 0, 0) != 0)
        fe__link_send_msg(c, &m);
    free(c->autodel[i]);
    c->autodel[i] = NULL;
    c->autodel_used[i] = 0;
}

static int fe__cancel_wire(fe_conn_t *c, fe_consumer_t *k, const amqp_op_t *op) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_CANCEL;
    m.cancel.consumer_tag = (wire_bytes_t){(const uint8_t *)k->wtag, k->wtag_len};
    int rc = 0;
    if (op != NULL) rc = fe__req_issue(c, &m, &m.cancel.request_id, FE_REQ_CANCEL, op->channel, op->req);
    else fe__link_send_msg(c, &m);
    char queue[WIRE_NAME_SIZE_MAX];
    const size_t queue_len = k->queue_len;
    memcpy(queue, k->queue, queue_len);
    memset(k, 0, sizeof *k);
    fe__autodel_check(c, (amqp_bytes_t){(const uint8_t *)queue, queue_len});
    return rc;
}

static int fe__basic_cancel(void *ctx, const amqp_op_t *op, const amqp_basic_cancel_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    fe_consumer_t *k = fe__consumer_on(c, op->channel, a->consumer_tag);
    if (k == NULL) {
        (void)amqp_conn_op_ok(c->conn, op->req);
        return 0;
    }
    return fe__cancel_wire(c, k, op);
}

static int fe__basic_get(void *ctx, const amqp_op_t *op, const amqp_basic_get_t *a) {
    fe_conn_t *c = fe__of(ctx, op->conn);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_GET;
    if (fe__name(&m.get.queue, a->queue) != 0) return IO_EINVAL;
    m.get.ack_mode = a->no_ack ? WIRE_ACK_AUTO : WIRE_ACK_MANUAL;
    return fe__req_issue(c, &m, &m.get.request_id, FE_REQ_GET, op->channel, op->req);
}

static int fe__basic_publish(void *ctx, amqp_conn_t *conn, uint16_t channel, uint64_t publish_seq,
                             const amqp_publish_t *msg) {
    fe_conn_t *c = fe__of(ctx, conn);
    assert(channel <= AMQP_CONN_CHANNELS_MAX);
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_PUBLISH;
    c->pub_seq[channel]++;
    m.publish.producer_id = c->fe->producer_base ^ ((c->id << 16) | channel);
    m.publish.sequence = c->pub_seq[channel];
    m.publish.message_id = ++c->fe->next_message_id;
    if (fe__name(&m.publish.exchange, msg->exchange) != 0 ||
        fe__name(&m.publish.routing_key, msg->routing_key) != 0)
        return IO_EINVAL;
    m.publish.persistent = (msg->props->flags & AMQP_PROP_DELIVERY_MODE) &&
                           msg->props->delivery_mode == 2;
    m.publish.body = (wire_bytes_t){msg->body.ptr, (uint32_t)msg->body.len};
    m.publish.mandatory = msg->mandatory;
    m.publish.properties = (wire_bytes_t){msg->props_raw.ptr, (uint32_t)msg->props_raw.len};
    fe__maybe_amq(c, msg->exchange);
    const int rc = fe__req_issue(c, &m, &m.publish.request_id, FE_REQ_PUBLISH, channel, publish_seq);
    if (rc == 0) {
        c->reqs[(c->next_rid - 1) % FE_WINDOW].mandatory = msg->mandatory;
        c->fe->stats.publishes++;
    }
    return rc;
}

static void fe__settle(void *ctx, amqp_conn_t *conn, uint16_t channel, uint64_t msg_ref,
                       enum amqp_settle how) {
    fe_conn_t *c = fe__of(ctx, conn);
    (void)channel;
    if (c->closing || (msg_ref >> FE_GEN_SHIFT) != c->gen) return; /* an old session's */
    const uint64_t tag = msg_ref & FE_TAG_MASK;
    if (how == AMQP_SETTLE_ACK) fe__settle_wire(c, tag, 0, 1);
    else fe__settle_wire(c, tag, how != AMQP_SETTLE_DROP, 0);
}

static void fe__channel_closed(void *ctx, amqp_conn_t *conn, uint16_t channel) {
    fe_conn_t *c = fe__of(ctx, conn);
    for (uint32_t i = 0; i < FE_CONSUMERS_MAX; i++) {
        fe_consumer_t *k = &c->consumers[i];
        if (k->used && k->channel == channel) (void)fe__cancel_wire(c, k, NULL);
    }
    c->prefetch[channel] = 0;
}

/* ---- client socket ------------------------------------------------------------ */

static void fe__client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    fe_conn_t *c = (fe_conn_t *)h->data;
    if (c->in == NULL) c->in = malloc(FE_IN_BYTES_MAX); /* freed again when empty */
    const size_t room = c->in != NULL ? FE_IN_BYTES_MAX - c->in_len : 0;
    /* room 0 (no memory) makes libuv report UV_ENOBUFS: the conn closes. */
    *buf = uv_buf_init(room ? (char *)c->in + c->in_len : NULL,
                       (unsigned)(room < FE_READ_CHUNK_BYTES ? room : FE_READ_CHUNK_BYTES));
}

static void fe__client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    fe_conn_t *c = (fe_conn_t *)s->data;
    if (c->closing || c->tcp_closed) return;
    if (nread < 0) {
        fe__conn_close(c); /* bytes already read are still fed: see the drain */
        return;
    }
    c->in_len += (size_t)nread;
    assert(c->in_len <= FE_IN_BYTES_MAX);
    if (nread > 0) c->active_ns = fe__now(c->fe);
    fe__pump(c);
}

/* Feed buffered client bytes while the window has room, then flush. */
static void fe__pump(fe_conn_t *c) {
    if (c->closing) return;
    for (uint32_t i = 0; i < FE_FEEDS_PER_PASS_MAX && c->in_len > 0; i++) {
        if (fe__window_used(c) + FE_WINDOW_HEADROOM > FE_WINDOW) break;
        const size_t len = c->in_len < FE_FEED_CHUNK_BYTES ? c->in_len : FE_FEED_CHUNK_BYTES;
        const size_t took = amqp_conn_feed(c->conn, c->in, len);
        assert(took <= len);
        memmove(c->in, c->in + took, c->in_len - took);
        c->in_len -= took;
        if (took == 0) break;
    }
    if (c->in_len == 0 && c->in != NULL) {
        free(c->in);
        c->in = NULL;
    }
    if (c->draining && c->in_len > 0 && amqp_conn_state(c->conn) == AMQP_CONN_S_CLOSED)
        c->in_len = 0; /* the client said connection.close: nothing after counts */
    /* Logged in: the wire session to the node starts now, not at accept, so
     * connections that never log in cost the node nothing. */
    if (c->link == NULL && c->retry_at_ns <= fe__now(c->fe) &&
        amqp_conn_state(c->conn) >= AMQP_CONN_S_RUNNING)
        fe__link_connect(c);
    fe__client_flush(c);
    if (c->closing || c->tcp_closed) return;
    const int want = c->in_len < FE_IN_BYTES_MAX;
    if (want && !c->reading) {
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, fe__client_alloc_cb,
                                   fe__client_read_cb) == 0;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void fe__conn_teardown(fe_conn_t *c);

/* A draining connection is done when every request it took is answered
 * and every byte it read was fed (or the drain timed out). */
static void fe__drain_check(fe_conn_t *c, uint64_t now) {
    if (!c->draining || c->closing) return;
    const int done = fe__window_used(c) == 0 && c->in_len == 0;
    if (!done && now < c->drain_deadline_ns) return;
    if (!done) {
        c->fe->stats.drain_expired++;
        fe__log(c->fe, "connection %llu closed with %u requests unanswered after %u ms",
                (unsigned long long)c->id, fe__window_used(c), RT_AMQP_DRAIN_TIMEOUT_MS);
    }
    fe__conn_teardown(c);
}

/* Why c must go now (handshake or idle timeout), or NULL. */
static const char *fe__expired(const fe_conn_t *c, uint64_t now) {
    if (c->draining) return NULL;
    if (amqp_conn_state(c->conn) < AMQP_CONN_S_RUNNING &&
        now - c->accepted_ns > c->fe->handshake_ns)
        return "handshake";
    if (now - c->active_ns > c->fe->idle_ns) return "idle";
    return NULL;
}

static void fe__tick_cb(uv_timer_t *t) {
    fe_conn_t *c = (fe_conn_t *)t->data;
    if (c->closing) return;
    const uint64_t now = fe__now(c->fe);
    (void)fe__stalled(c, now);
    c->last_tick_ns = now;
    const char *why = fe__expired(c, now);
    if (why != NULL) {
        c->fe->stats.timeouts++;
        if (c->fe->verbose)
            fe__log(c->fe, "connection %llu: %s timeout", (unsigned long long)c->id, why);
        fe__conn_teardown(c);
        return;
    }
    if (!c->draining) (void)amqp_conn_tick(c->conn, now);
    if (c->link == NULL && now >= c->retry_at_ns &&
        amqp_conn_state(c->conn) >= AMQP_CONN_S_RUNNING)
        fe__link_connect(c);
    if (c->link != NULL && c->link->up) {
        if (now - c->last_hb_ns >= FE_HEARTBEAT_NS) fe__heartbeat(c);
        fe_req_t *r = fe__req_find(c, c->head_rid);
        if (c->link->reading && now - c->link->last_rx_ns > FE_LINK_SILENT_NS) {
            /* Every node answers a heartbeat (a follower with NOT_LEADER):
             * silence means a paused, isolated or dead node. Follow the
             * next one now rather than wait out a request timeout. */
            c->fe->stats.silent_failovers++;
            fe__link_retry(c, c->node + 1, 0);
        } else if ((r != NULL && now - r->sent_ns > FE_REQUEST_TIMEOUT_NS) ||
                   (c->hb_waiting && now - c->last_hb_ns > FE_REQUEST_TIMEOUT_NS)) {
            fe__link_retry(c, c->node + 1, 0); /* a node that answers all but ours */
        }
    }
    if (c->link_blocked) fe__link_process(c);
    fe__pump(c);
    if (c->reqs != NULL && fe__window_used(c) == 0) {
        free(c->reqs); /* an idle connection holds no window */
        c->reqs = NULL;
    }
    fe__drain_check(c, now);
}

/* The connection is over for the client (connection.close done, EOF, a
 * socket error). With requests unanswered or bytes unfed, keep the wire
 * session until the node answered (fe__drain_check): stop client I/O,
 * cancel the consumers (nobody takes deliveries any more; the node requeues
 * what is unacked when the session ends), and go on feeding and failing
 * over as usual. Otherwise tear down at once. The socket itself ends in
 * fe__conn_teardown; graceful = the AMQP close handshake completed, so it
 * ends with FIN and a read to EOF rather than a reset. Idempotent. */
static void fe__conn_close_ex(fe_conn_t *c, int graceful) {
    if (c->closing || c->draining) return;
    if (graceful) c->graceful = 1;
    if (fe__window_used(c) == 0 && c->in_len == 0) {
        fe__conn_teardown(c);
        return;
    }
    c->draining = 1;
    c->fe->stats.drained++;
    c->drain_deadline_ns = fe__now(c->fe) + FE_DRAIN_TIMEOUT_NS;
    for (uint32_t i = 0; i < FE_CONSUMERS_MAX; i++) {
        fe_consumer_t *k = &c->consumers[i];
        if (k->used) (void)fe__cancel_wire(c, k, NULL);
    }
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    c->tcp_closed = 1; /* no more client I/O; the socket ends at teardown */
    fe__pump(c);
    fe__drain_check(c, fe__now(c->fe));
}

static void fe__conn_close(fe_conn_t *c) { fe__conn_close_ex(c, 0); }

/* ---- graceful end of a client socket ---------------------------------------
 * Closing a socket whose receive buffer holds unread bytes makes the kernel
 * send RST, which can destroy our last frames (close-ok) before the client
 * read them: amqplib then sees ECONNRESET instead of its close callback. So
 * after the last frame we send FIN (uv_shutdown, after pending writes) and
 * read and discard until the client closes too, for at most FE_SOCK_LINGER_MS. */

static void fe__sock_end(fe_conn_t *c) {
    if (c->sock_done) return;
    c->sock_done = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, fe__handle_closed);
    uv_close((uv_handle_t *)&c->tcp, fe__handle_closed);
}

static void fe__sock_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    fe_conn_t *c = (fe_conn_t *)h->data;
    if (c->in == NULL) c->in = malloc(FE_IN_BYTES_MAX); /* freed with c */
    /* NULL (no memory) makes libuv report UV_ENOBUFS: the socket ends. */
    *buf = uv_buf_init((char *)c->in, c->in != NULL ? FE_READ_CHUNK_BYTES : 0); /* discarded */
}

static void fe__sock_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    if (nread < 0) fe__sock_end((fe_conn_t *)s->data);
}

static void fe__sock_timer_cb(uv_timer_t *t) { fe__sock_end((fe_conn_t *)t->data); }

static void fe__sock_shutdown_cb(uv_shutdown_t *req, int status) {
    (void)req, (void)status; /* the read side or the timer ends the drain */
}

static void fe__sock_start(fe_conn_t *c) {
    c->in_len = 0;
    if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, fe__sock_shutdown_cb) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, fe__sock_alloc_cb, fe__sock_read_cb) != 0 ||
        uv_timer_start(&c->timer, fe__sock_timer_cb, FE_SOCK_LINGER_MS, 0) != 0)
        fe__sock_end(c);
}


/* Tear the connection down (idempotent). Exclusive queues are deleted;
 * the link closes after its queued frames went out, so the node sees them
 * and then the session end (it requeues what was unacked). The client
 * socket ends last: gracefully (FIN, read to EOF, see above) when the AMQP
 * close completed, else at once. */
static void fe__conn_teardown(fe_conn_t *c) {
    if (c->closing) return;
    c->closing = 1;
    rt_amqp_t *fe = c->fe;
    for (uint32_t i = 0; i < FE_EXCLUSIVE_MAX; i++) {
        if (c->exclusive[i] == NULL) continue;
        wire_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_MSG_DELETE_QUEUE;
        m.delete_queue.queue = wire_str(c->exclusive[i]);
        fe__link_send_msg(c, &m);
    }
    amqp_conn_free(c->conn); /* settles land in fe__settle: ignored (closing) */
    c->conn = NULL;
    fe__link_drop(c, 1);
    if (c->prev) c->prev->next = c->next;
    else fe->head = c->next;
    if (c->next) c->next->prev = c->prev;
    assert(fe->conns > 0);
    fe->conns--;
    fe->stats.closed++;
    if (fe->verbose) fe__log(fe, "connection %llu closed", (unsigned long long)c->id);
    uv_timer_stop(&c->timer);
    if (c->graceful && !c->writing) fe__sock_start(c);
    else fe__sock_end(c);
}

static void fe__refuse_closed(uv_handle_t *h) { free(h); }

static void fe__on_accept(uv_stream_t *server, int status) {
    rt_amqp_t *fe = (rt_amqp_t *)server->data;
    if (status < 0 || fe->stopped) return;
    if (fe->conns >= fe->conns_max) {
        uv_tcp_t *t = malloc(sizeof *t);
        if (t == NULL || uv_tcp_init(fe->loop, t) != 0) {
            free(t);
            return;
        }
        (void)uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, fe__refuse_closed);
        if (fe->stats.refused_full++ % FE_REFUSE_LOG_EVERY == 0)
            fe__log(fe, "refused a connection on port %d: %u connections is the limit "
                        "(refused so far: %llu)",
                    fe->port, fe->conns_max, (unsigned long long)fe->stats.refused_full);
        return;
    }
    /* Buffers and the request window come when needed (first bytes, first
     * request), so a connection that never logs in costs only this. */
    fe_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL || uv_tcp_init(fe->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    fe->alive++;
    c->fe = fe;
    c->accepted_ns = c->active_ns = c->last_tick_ns = fe__now(fe);
    c->tcp.data = c;
    c->refs = 1;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || uv_timer_init(fe->loop, &c->timer) != 0) {
        uv_close((uv_handle_t *)&c->tcp, fe__handle_closed);
        return;
    }
    c->timer.data = c;
    c->refs++;
    c->id = ++fe->next_conn_id;
    c->next_rid = c->head_rid = 1;
    c->node = fe->first_node;
    c->backoff_ns = FE_BACKOFF_MIN_NS;
    (void)uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage peer;
    int peer_len = (int)sizeof peer;
    int loopback = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &peer_len) == 0) {
        if (peer.ss_family == AF_INET)
            loopback = (ntohl(((struct sockaddr_in *)&peer)->sin_addr.s_addr) >> 24) == 127;
        else if (peer.ss_family == AF_INET6)
            loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&peer)->sin6_addr);
    }
    /* A message the node cannot store is refused at its content header
     * (channel error 406), never accepted and then dropped: the node keeps
     * properties and body in one envelope of at most SM_MESSAGE_BODY_MAX. */
    const amqp_conn_config_t cfg = {
        .heartbeat_s = fe->heartbeat_s, .conn_id = c->id, .loopback = loopback,
        .body_size_max = (uint32_t)(SM_MESSAGE_BODY_MAX - broker_envelope_size(0, 0))};
    const amqp_backend_t backend = {
        .ctx = c,
        .exchange_declare = fe__exchange_declare,
        .exchange_delete = fe__exchange_delete,
        .exchange_bind = fe__exchange_bind,
        .exchange_unbind = fe__exchange_unbind,
        .queue_declare = fe__queue_declare,
        .queue_bind = fe__queue_bind,
        .queue_unbind = fe__queue_unbind,
        .queue_purge = fe__queue_purge,
        .queue_delete = fe__queue_delete,
        .basic_qos = fe__basic_qos,
        .basic_consume = fe__basic_consume,
        .basic_cancel = fe__basic_cancel,
        .basic_get = fe__basic_get,
        .basic_publish = fe__basic_publish,
        .settle = fe__settle,
        .channel_closed = fe__channel_closed,
    };
    c->conn = amqp_conn_new(&cfg, &backend);
    if (c->conn == NULL) {
        uv_close((uv_handle_t *)&c->timer, fe__handle_closed);
        uv_close((uv_handle_t *)&c->tcp, fe__handle_closed);
        return;
    }
    c->next = fe->head;
    if (fe->head) fe->head->prev = c;
    fe->head = c;
    fe->conns++;
    fe->stats.accepted++;
    if (fe->verbose) fe__log(fe, "connection %llu accepted", (unsigned long long)c->id);
    (void)uv_timer_start(&c->timer, fe__tick_cb, FE_TICK_MS, FE_TICK_MS);
    fe__pump(c);
}

/* ---- public ------------------------------------------------------------------- */

int rt_amqp_new(uv_loop_t *loop, const rt_amqp_config_t *cfg, rt_amqp_t **out) {
    if (loop == NULL || cfg == NULL || out == NULL) return IO_EINVAL;
    if ((cfg->node_token != NULL && strlen(cfg->node_token) >= RT_CLIENT_TOKEN_MAX) ||
        cfg->handshake_timeout_ms > RT_AMQP_TIMEOUT_MS_MAX ||
        cfg->idle_timeout_ms > RT_AMQP_TIMEOUT_MS_MAX ||
        cfg->session_timeout_ms > RT_AMQP_TIMEOUT_MS_MAX)
        return IO_EINVAL;
    if (cfg->nodes_count > RT_AMQP_NODES_MAX || cfg->conns_max > RT_AMQP_CONNS_MAX ||
        (cfg->nodes_count > 0 && (cfg->nodes == NULL || cfg->first_node >= cfg->nodes_count)))
        return IO_EINVAL;
    rt_amqp_t *fe = calloc(1, sizeof *fe);
    if (fe == NULL) return IO_ENOMEM;
    struct sockaddr_storage sa;
    int rc = 0;
    if (cfg->listen != NULL && (fe__copy(fe->listen, sizeof fe->listen, cfg->listen) != 0 ||
                                fe__parse_listen(cfg->listen, &sa) != 0))
        rc = RT_EADDR;
    for (uint32_t i = 0; rc == 0 && i < cfg->nodes_count; i++) {
        if (fe__copy(fe->nodes[i], sizeof fe->nodes[i], cfg->nodes[i]) != 0 ||
            rt_parse_addr(cfg->nodes[i], &sa) != 0)
            rc = RT_EADDR;
    }
    if (rc != 0) {
        free(fe);
        return rc;
    }
    fe->loop = loop;
    fe->nodes_count = cfg->nodes_count;
    fe->first_node = cfg->first_node;
    fe->conns_max = cfg->conns_max ? cfg->conns_max : RT_AMQP_CONNS_DEFAULT;
    fe->heartbeat_s = cfg->heartbeat_s ? cfg->heartbeat_s : RT_AMQP_HEARTBEAT_S_DEFAULT;
    if (cfg->node_token != NULL) {
        fe->token_len = (uint32_t)strlen(cfg->node_token);
        memcpy(fe->token, cfg->node_token, fe->token_len);
    }
    fe->handshake_ns = (uint64_t)(cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms
                                                            : RT_AMQP_HANDSHAKE_TIMEOUT_MS_DEFAULT) *
                       1000000u;
    fe->idle_ns = (uint64_t)(cfg->idle_timeout_ms ? cfg->idle_timeout_ms
                                                  : RT_AMQP_IDLE_TIMEOUT_MS_DEFAULT) *
                  1000000u;
    /* Half the session timeout: margin for the node's own timer slack. */
    fe->session_trust_ns = (uint64_t)(cfg->session_timeout_ms ? cfg->session_timeout_ms
                                                              : RT_AMQP_SESSION_TIMEOUT_MS_DEFAULT) *
                           500000u;
    fe->log_out = cfg->log_out;
    fe->verbose = cfg->verbose;
    uint8_t seed[8] = {0};
    if (uv_random(NULL, NULL, seed, sizeof seed, 0, NULL) != 0) {
        const uint64_t t = uv_hrtime();
        memcpy(seed, &t, sizeof seed);
    }
    memcpy(&fe->producer_base, seed, sizeof seed);
    fe->producer_base &= ~UINT64_C(0xffffffffffff); /* low bits: conn and channel */
    *out = fe;
    return 0;
}

int rt_amqp_start(rt_amqp_t *fe) {
    assert(fe != NULL);
    if (fe->started || fe->stopped) return RT_ESTATE;
    if (fe->nodes_count == 0 || fe->listen[0] == '\0') return IO_EINVAL;
    rt_ignore_sigpipe(); /* a write to a closed client fails with EPIPE instead */
    struct sockaddr_storage sa;
    if (fe__parse_listen(fe->listen, &sa) != 0) return RT_EADDR;
    if (uv_tcp_init(fe->loop, &fe->listener) != 0) return RT_EBIND;
    fe->listener.data = fe;
    fe->listener_open = 1;
    fe->started = 1;
    if (uv_timer_init(fe->loop, &fe->flush_timer) != 0) return RT_EBIND;
    fe->flush_timer.data = fe;
    fe->flush_open = 1;
    if (uv_tcp_bind(&fe->listener, (const struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&fe->listener, 128, fe__on_accept) != 0)
        return RT_EBIND;
    struct sockaddr_storage bound;
    int len = (int)sizeof bound;
    if (uv_tcp_getsockname(&fe->listener, (struct sockaddr *)&bound, &len) == 0)
        fe->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                     : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int rt_amqp_port(const rt_amqp_t *fe) { return fe ? fe->port : 0; }
uint32_t rt_amqp_conns(const rt_amqp_t *fe) { return fe ? fe->conns : 0; }

void rt_amqp_stats(const rt_amqp_t *fe, rt_amqp_stats_t *out) {
    assert(fe != NULL && out != NULL);
    *out = fe->stats;
}

static void fe__listener_closed(uv_handle_t *h) {
    rt_amqp_t *fe = (rt_amqp_t *)h->data;
    fe->listener_open = 0;
    fe__maybe_free(fe);
}

static void fe__flush_timer_closed(uv_handle_t *h) {
    rt_amqp_t *fe = (rt_amqp_t *)h->data;
    fe->flush_open = 0;
    fe__maybe_free(fe);
}

void rt_amqp_stop(rt_amqp_t *fe) {
    if (fe == NULL || fe->stopped) return;
    fe->stopped = 1;
    uint32_t guard = 0;
    while (fe->head != NULL && guard++ <= RT_AMQP_CONNS_MAX) fe__conn_teardown(fe->head);
    if (fe->listener_open && !uv_is_closing((uv_handle_t *)&fe->listener))
        uv_close((uv_handle_t *)&fe->listener, fe__listener_closed);
    /* Every connection flushed its link in fe__conn_teardown. */
    if (fe->flush_open && !uv_is_closing((uv_handle_t *)&fe->flush_timer))
        uv_close((uv_handle_t *)&fe->flush_timer, fe__flush_timer_closed);
}

void rt_amqp_free(rt_amqp_t *fe) {
    if (fe == NULL) return;
    rt_amqp_stop(fe);
    fe->freed = 1;
    /* conns == 0 here, but their handles may still be closing: each
     * fe__conn_unref checks, the listener and timer closes check. */
    fe__maybe_free(fe);
}

/* ---- rt_server hook --------------------------------------------------------------- */

static int fe__hook_start(void *arg, rt_server_t *server, const char *listen_addr) {
    rt_amqp_t *fe = arg;
    assert(fe != NULL && server != NULL);
    if (listen_addr != NULL && fe__copy(fe->listen, sizeof fe->listen, listen_addr) != 0)
        return RT_EADDR;
    if (fe->nodes_count == 0) {
        const int port = rt_server_client_port(server);
        if (port <= 0) return IO_EINVAL;
        snprintf(fe->nodes[0], sizeof fe->nodes[0], "127.0.0.1:%d", port);
        fe->nodes_count = 1;
        fe->first_node = 0;
    }
    return rt_amqp_start(fe);
}

static int fe__hook_send(void *arg, io_addr_t dest, const uint8_t *bytes, size_t len) {
    (void)arg, (void)dest, (void)bytes, (void)len;
    return IO_EUNREACH;
}

static void fe__hook_stop(void *arg) { rt_amqp_stop(arg); }

void rt_amqp_server_hook(rt_amqp_t *fe, rt_server_frontend_t *out) {
    assert(fe != NULL && out != NULL);
    *out = (rt_server_frontend_t){.name = "amqp", .start = fe__hook_start,
                                  .send = fe__hook_send, .stop = fe__hook_stop, .arg = fe};
}
