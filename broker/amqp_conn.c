/*
 * broker/amqp_conn.c -- AMQP 0-9-1 connection/channel state machine (see
 * amqp_conn.h for the contract).
 *
 * Shape: amqp_conn_feed() appends to a bounded input buffer; amqp__pump()
 * cuts frames off its front and dispatches them by connection state, then by
 * channel. Anything the client does wrong becomes connection.close (hard
 * errors, 5xx) or channel.close (soft errors, 4xx) in the output; nothing
 * the client sends can make us fail or crash.
 */
#include "broker/amqp_conn.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io.h"

/* Input holds at most one maximal frame plus the bytes after it. */
#define AMQP__IN_CAP_BYTES (AMQP_FRAME_MAX_DEFAULT + AMQP_PROTOCOL_HEADER_SIZE)
#define AMQP__NS_PER_S 1000000000ull

enum { AMQP__CH_OPEN = 1, AMQP__CH_CLOSING = 2 };
enum { AMQP__CONTENT_NONE = 0, AMQP__CONTENT_HEADER, AMQP__CONTENT_BODY };
enum { AMQP__CONSUMER_FREE = 0, AMQP__CONSUMER_PENDING, AMQP__CONSUMER_ACTIVE,
       AMQP__CONSUMER_CANCELLING };

typedef struct amqp__consumer {
    uint8_t state;
    uint8_t no_ack;
    uint8_t tag_len;
    uint8_t tag[AMQP_SHORTSTR_SIZE_MAX];
} amqp__consumer_t;

/* One delivery awaiting ack; entries sorted by tag, dead ones are holes. */
typedef struct amqp__unacked {
    uint64_t tag;
    uint64_t msg_ref;
    uint8_t live;
} amqp__unacked_t;

/* One publish awaiting confirm; sorted by seq, `sent` ones are holes. */
typedef struct amqp__confirm {
    uint64_t seq;
    uint8_t sent;
} amqp__confirm_t;

/* A publish held by a transaction until tx.commit (owns header and body). */
typedef struct amqp__txpub {
    uint8_t mandatory, exchange_len, rk_len;
    uint8_t exchange[AMQP_SHORTSTR_SIZE_MAX];
    uint8_t rk[AMQP_SHORTSTR_SIZE_MAX];
    uint8_t *header;
    size_t header_len;
    uint8_t *body;
    size_t body_len;
} amqp__txpub_t;

/* An ack/nack/reject held by a transaction until tx.commit. */
typedef struct amqp__txack {
    uint64_t tag;
    uint8_t multiple;
    uint8_t how; /* enum amqp_settle */
} amqp__txack_t;

typedef struct amqp__channel {
    uint8_t state;
    uint8_t confirm_mode;
    uint8_t tx_mode;       /* tx.select seen: publishes and acks wait for commit */
    uint8_t tx_committing; /* commit-ok waits for the committed publishes */
    uint8_t tx_failed;     /* a committed publish was refused by the broker */
    uint8_t tx_sending;    /* tx.commit is handing its publishes over */
    uint8_t cur_queue_len; /* the "current queue": last one declared */
    uint8_t cur_queue[AMQP_SHORTSTR_SIZE_MAX];
    uint8_t content; /* AMQP__CONTENT_*: where a publish is in its frames */
    uint8_t mandatory;
    uint8_t exchange_len;
    uint8_t rk_len;
    uint8_t exchange[AMQP_SHORTSTR_SIZE_MAX];
    uint8_t rk[AMQP_SHORTSTR_SIZE_MAX];
    uint8_t *header; /* copy of the content header payload */
    size_t header_len;
    uint8_t *body;
    uint64_t body_size;
    uint64_t body_len;
    uint64_t last_delivery_tag;
    uint64_t last_publish_seq;
    amqp__unacked_t *un;
    size_t un_head, un_end, un_cap, un_live;
    amqp__confirm_t *cf;
    size_t cf_head, cf_end, cf_cap, cf_live;
    amqp__consumer_t consumers[AMQP_CONN_CONSUMERS_MAX];
    amqp__txpub_t *txp;
    size_t txp_count, txp_cap, tx_bytes;
    amqp__txack_t *txa;
    size_t txa_count, txa_cap;
} amqp__channel_t;

/* A backend op awaiting its answer. `name` keeps what the reply must echo
 * (queue name for declare-ok, consumer tag for consume-ok/cancel-ok). */
typedef struct amqp__pending {
    uint8_t used;
    uint8_t nowait;
    uint8_t no_ack;
    uint8_t name_len;
    uint16_t channel;
    uint32_t method;
    uint64_t req;
    uint8_t name[AMQP_SHORTSTR_SIZE_MAX];
} amqp__pending_t;

struct amqp_conn {
    amqp_conn_config_t cfg;
    amqp_backend_t be;
    enum amqp_conn_state state;
    uint16_t close_code;
    uint16_t channel_max;
    uint16_t heartbeat_s;
    uint32_t frame_max;
    char user[AMQP_SHORTSTR_SIZE_MAX + 1];
    uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_cap;
    amqp__channel_t *ch[AMQP_CONN_CHANNELS_MAX + 1];
    amqp__pending_t pend[AMQP_CONN_PENDING_MAX];
    uint64_t next_req;
    uint64_t name_counter;
    int in_pump;
    int closed_notified;
    uint32_t commits_waiting; /* channels whose tx.commit-ok is owed */
    /* The last basic.ack/nack confirm frame, if it is the last output and
     * confirmed every publish up to its tag: a following confirm of the next
     * lowest one rewrites it (multiple=1), as RabbitMQ's clients expect. */
    int last_cf_valid;
    size_t last_cf_off;
    uint16_t last_cf_channel;
    uint8_t last_cf_ack;
    uint64_t last_cf_tag;
    /* time: feed/output only raise flags; tick turns them into times */
    int rx_seen, tx_seen, time_known, closing_time_known;
    uint64_t started_ns, last_rx_ns, last_tx_ns, closing_ns;
};

static void amqp__pump(amqp_conn_t *c);
static int amqp__has_slot(const amqp_conn_t *c, uint32_t id);
static void amqp__start_op(amqp_conn_t *c, uint16_t n, const amqp_method_t *m,
                           int nowait, amqp_bytes_t name, int no_ack);

/* ---- small helpers ----------------------------------------------------- */

static amqp_bytes_t amqp__b(const uint8_t *p, size_t n) {
    amqp_bytes_t b = {n ? p : NULL, n};
    return b;
}

static amqp_bytes_t amqp__text(const char *s) {
    amqp_bytes_t b = amqp_cstr(s ? s : "");
    if (b.len > AMQP_SHORTSTR_SIZE_MAX) b.len = AMQP_SHORTSTR_SIZE_MAX;
    return b;
}

static void amqp__notify_closed(amqp_conn_t *c) {
    if (c->closed_notified) return;
    c->closed_notified = 1;
    if (c->be.conn_closed) c->be.conn_closed(c->be.ctx, c);
}

/* ---- output ------------------------------------------------------------ */

/* Make room for n more output bytes; -1 if that would pass the hard cap. */
static int amqp__out_reserve(amqp_conn_t *c, size_t n) {
    assert(c->out_len <= c->out_cap);
    if (n > AMQP_CONN_OUTPUT_MAX_BYTES + AMQP_FRAME_MAX_DEFAULT - c->out_len)
        return -1;
    if (c->out_len + n <= c->out_cap) return 0;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (!p) return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static void amqp__die(amqp_conn_t *c);

static int amqp__send_method(amqp_conn_t *c, uint16_t channel,
                             const amqp_method_t *m) {
    assert(amqp_method_known(m->id));
    size_t need = c->frame_max;
    if (amqp__out_reserve(c, need) != 0) {
        /* Freeing channels here would pull them from under our callers:
         * mark the end; amqp__pump and amqp_conn_free release later. */
        c->state = AMQP_CONN_S_CLOSED;
        amqp__notify_closed(c);
        return IO_ENOMEM;
    }
    amqp_wr_t w;
    amqp_wr_init(&w, c->out + c->out_len, need);
    size_t mark = amqp_wr_frame_begin(&w, AMQP_FRAME_METHOD, channel);
    int rc = amqp_method_encode(m, &w);
    amqp_wr_frame_end(&w, mark);
    if (rc != 0 || w.err) return IO_EMSGSIZE;
    c->out_len += w.len;
    c->tx_seen = 1;
    return 0;
}

/* Method + content header + body frames, all or nothing. */
static int amqp__send_content(amqp_conn_t *c, uint16_t channel,
                              const amqp_method_t *m,
                              const amqp_basic_props_t *props, amqp_bytes_t body) {
    assert(amqp_method_has_content(m->id));
    assert(c->frame_max >= AMQP_FRAME_MIN_SIZE);
    size_t chunk = c->frame_max - AMQP_FRAME_OVERHEAD_SIZE;
    size_t frames = (body.len + chunk - 1) / chunk;
    size_t need = 2 * (size_t)c->frame_max + body.len + frames * AMQP_FRAME_OVERHEAD_SIZE;
    if (amqp__out_reserve(c, need) != 0) return IO_ENOMEM;
    amqp_wr_t w;
    amqp_wr_init(&w, c->out + c->out_len, c->frame_max);
    size_t mark = amqp_wr_frame_begin(&w, AMQP_FRAME_METHOD, channel);
    if (amqp_method_encode(m, &w) != 0) return IO_EMSGSIZE;
    amqp_wr_frame_end(&w, mark);
    if (w.err) return IO_EMSGSIZE;
    size_t method_len = w.len;
    amqp_wr_init(&w, c->out + c->out_len + method_len, c->frame_max);
    mark = amqp_wr_frame_begin(&w, AMQP_FRAME_HEADER, channel);
    amqp_content_header_t h = {AMQP_CLASS_BASIC, 0, body.len, {0}};
    if (props) h.props = *props;
    amqp_content_header_encode(&w, &h);
    amqp_wr_frame_end(&w, mark);
    if (w.err) return IO_EMSGSIZE;
    size_t used = method_len + w.len;
    amqp_wr_init(&w, c->out + c->out_len + used, need - used);
    for (size_t off = 0, i = 0; i < frames; i++, off += chunk) {
        size_t n = body.len - off < chunk ? body.len - off : chunk;
        mark = amqp_wr_frame_begin(&w, AMQP_FRAME_BODY, channel);
        amqp_wr_bytes(&w, body.ptr + off, n);
        amqp_wr_frame_end(&w, mark);
    }
    assert(w.err == 0);
    c->out_len += used + w.len;
    c->tx_seen = 1;
    return 0;
}

/* ---- channel bookkeeping ----------------------------------------------- */

static amqp__channel_t *amqp__ch(const amqp_conn_t *c, uint16_t n) {
    if (n == 0 || n > AMQP_CONN_CHANNELS_MAX) return NULL;
    return c->ch[n];
}

static amqp__channel_t *amqp__ch_open(const amqp_conn_t *c, uint16_t n) {
    amqp__channel_t *ch = amqp__ch(c, n);
    return ch && ch->state == AMQP__CH_OPEN ? ch : NULL;
}

static void amqp__content_reset(amqp__channel_t *ch) {
    free(ch->header);
    free(ch->body);
    ch->header = NULL;
    ch->body = NULL;
    ch->header_len = 0;
    ch->body_size = ch->body_len = 0;
    ch->content = AMQP__CONTENT_NONE;
}

/* Drop what an uncommitted transaction holds (rollback, close). */
static void amqp__tx_reset(amqp__channel_t *ch) {
    for (size_t i = 0; i < ch->txp_count; i++) {
        free(ch->txp[i].header);
        free(ch->txp[i].body);
    }
    ch->txp_count = 0;
    ch->txa_count = 0;
    ch->tx_bytes = 0;
}

static void amqp__ch_free(amqp_conn_t *c, uint16_t n) {
    amqp__channel_t *ch = c->ch[n];
    assert(ch != NULL);
    amqp__content_reset(ch);
    amqp__tx_reset(ch);
    free(ch->txp);
    free(ch->txa);
    free(ch->un);
    free(ch->cf);
    free(ch);
    c->ch[n] = NULL;
}

static amqp__consumer_t *amqp__consumer_find(amqp__channel_t *ch, amqp_bytes_t tag) {
    for (size_t i = 0; i < AMQP_CONN_CONSUMERS_MAX; i++) {
        amqp__consumer_t *k = &ch->consumers[i];
        if (k->state != AMQP__CONSUMER_FREE && k->tag_len == tag.len &&
            (tag.len == 0 || memcmp(k->tag, tag.ptr, tag.len) == 0))
            return k;
    }
    return NULL;
}

static void amqp__un_pop(amqp__channel_t *ch) {
    while (ch->un_head < ch->un_end && !ch->un[ch->un_head].live) ch->un_head++;
    if (ch->un_head == ch->un_end) ch->un_head = ch->un_end = 0;
}

/* Append a tracked delivery; IO_ENOMEM when AMQP_CONN_UNACKED_MAX are live. */
static int amqp__un_push(amqp__channel_t *ch, uint64_t tag, uint64_t ref) {
    assert(ch->un_live <= AMQP_CONN_UNACKED_MAX);
    assert(ch->un_end == 0 || ch->un[ch->un_end - 1].tag < tag);
    if (ch->un_live == AMQP_CONN_UNACKED_MAX) return IO_ENOMEM;
    if (ch->un_end == ch->un_cap) { /* squeeze out holes, then grow */
        size_t j = 0;
        for (size_t i = ch->un_head; i < ch->un_end; i++)
            if (ch->un[i].live) ch->un[j++] = ch->un[i];
        ch->un_head = 0;
        ch->un_end = j;
    }
    if (ch->un_end == ch->un_cap) {
        size_t cap = ch->un_cap ? ch->un_cap * 2 : 16;
        if (cap > AMQP_CONN_UNACKED_MAX) cap = AMQP_CONN_UNACKED_MAX;
        amqp__unacked_t *p = realloc(ch->un, cap * sizeof *p);
        if (!p) return IO_ENOMEM;
        ch->un = p;
        ch->un_cap = cap;
    }
    ch->un[ch->un_end++] = (amqp__unacked_t){tag, ref, 1};
    ch->un_live++;
    return 0;
}

/* Index of the entry with `tag`, or SIZE_MAX (binary search: tags sorted). */
static size_t amqp__un_find(const amqp__channel_t *ch, uint64_t tag) {
    size_t lo = ch->un_head, hi = ch->un_end;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ch->un[mid].tag < tag) lo = mid + 1;
        else hi = mid;
    }
    return lo < ch->un_end && ch->un[lo].tag == tag ? lo : SIZE_MAX;
}

/* Settle entry i: mark, pop, then tell the backend (last, because the
 * backend may deliver again from inside settle and move the array). */
static void amqp__un_settle(amqp_conn_t *c, uint16_t n, size_t i,
                            enum amqp_settle how) {
    amqp__channel_t *ch = c->ch[n];
    assert(ch != NULL && i < ch->un_end && ch->un[i].live);
    uint64_t ref = ch->un[i].msg_ref;
    ch->un[i].live = 0;
    ch->un_live--;
    amqp__un_pop(ch);
    if (c->be.settle) c->be.settle(c->be.ctx, c, n, ref, how);
}

/* Settle every live delivery with tag <= upper, oldest first. */
static void amqp__un_settle_upto(amqp_conn_t *c, uint16_t n, uint64_t upper,
                                 enum amqp_settle how) {
    for (size_t k = 0; k < AMQP_CONN_UNACKED_MAX; k++) {
        amqp__channel_t *ch = c->ch[n];
        if (!ch) return;
        amqp__un_pop(ch);
        if (ch->un_head == ch->un_end || ch->un[ch->un_head].tag > upper) return;
        amqp__un_settle(c, n, ch->un_head, how);
    }
}

/* Drop everything the channel holds and tell the backend. The channel
 * becomes CLOSING first so nothing can be delivered into it meanwhile. */
static void amqp__ch_release(amqp_conn_t *c, uint16_t n) {
    amqp__channel_t *ch = c->ch[n];
    assert(ch != NULL);
    ch->state = AMQP__CH_CLOSING;
    amqp__content_reset(ch);
    amqp__tx_reset(ch);
    if (ch->tx_committing) {
        ch->tx_committing = 0;
        assert(c->commits_waiting > 0);
        c->commits_waiting--;
    }
    memset(ch->consumers, 0, sizeof ch->consumers);
    for (size_t i = 0; i < AMQP_CONN_PENDING_MAX; i++)
        if (c->pend[i].used && c->pend[i].channel == n) c->pend[i].used = 0;
    amqp__un_settle_upto(c, n, UINT64_MAX, AMQP_SETTLE_RELEASED);
    ch = c->ch[n];
    if (ch) {
        ch->cf_head = ch->cf_end = ch->cf_live = 0;
        if (c->be.channel_closed) c->be.channel_closed(c->be.ctx, c, n);
    }
}

static void amqp__release_all(amqp_conn_t *c) {
    for (uint32_t n = 1; n <= AMQP_CONN_CHANNELS_MAX; n++) {
        if (!c->ch[n]) continue;
        if (c->ch[n]->state == AMQP__CH_OPEN) amqp__ch_release(c, (uint16_t)n);
        if (c->ch[n]) amqp__ch_free(c, (uint16_t)n);
    }
    memset(c->pend, 0, sizeof c->pend);
}

/* ---- errors ------------------------------------------------------------ */

static void amqp__die(amqp_conn_t *c) {
    if (c->state == AMQP_CONN_S_CLOSED) return;
    c->state = AMQP_CONN_S_CLOSED;
    amqp__release_all(c);
    amqp__notify_closed(c);
}

/* Hard error: connection.close, then wait for close-ok. */
static void amqp__conn_error(amqp_conn_t *c, uint16_t code, const char *text,
                             uint32_t method_id) {
    assert(code >= 300);
    if (c->state >= AMQP_CONN_S_CLOSING) return;
    amqp_method_t m = {.id = AMQP_CONNECTION_CLOSE};
    m.u.connection_close.reply_code = code;
    m.u.connection_close.reply_text = amqp__text(text);
    m.u.connection_close.class_id = AMQP_METHOD_CLASS(method_id);
    m.u.connection_close.method_id = AMQP_METHOD_INDEX(method_id);
    c->close_code = code;
    c->state = AMQP_CONN_S_CLOSING;
    (void)amqp__send_method(c, 0, &m);
    amqp__release_all(c);
    amqp__notify_closed(c);
}

/* Soft error: channel.close, the channel drops its state and waits for
 * close-ok (discarding everything else). A hard code escalates. */
static void amqp__ch_error(amqp_conn_t *c, uint16_t n, uint16_t code,
                           const char *text, uint32_t method_id) {
    if (code >= 500) {
        amqp__conn_error(c, code, text, method_id);
        return;
    }
    amqp__channel_t *ch = amqp__ch_open(c, n);
    if (!ch) return;
    amqp_method_t m = {.id = AMQP_CHANNEL_CLOSE};
    m.u.channel_close.reply_code = code;
    m.u.channel_close.reply_text = amqp__text(text);
    m.u.channel_close.class_id = AMQP_METHOD_CLASS(method_id);
    m.u.channel_close.method_id = AMQP_METHOD_INDEX(method_id);
    (void)amqp__send_method(c, n, &m);
    amqp__ch_release(c, n);
}

static void amqp__decode_error(amqp_conn_t *c, int rc, uint32_t id) {
    assert(rc < 0);
    if (rc == AMQP_E_UNKNOWN_CLASS || rc == AMQP_E_UNKNOWN_METHOD)
        amqp__conn_error(c, AMQP_REPLY_NOT_IMPLEMENTED, "unknown class or method", id);
    else
        amqp__conn_error(c, AMQP_REPLY_SYNTAX_ERROR, "malformed method arguments", id);
}

/* ---- pending backend ops ----------------------------------------------- */

static amqp__pending_t *amqp__pend_find(amqp_conn_t *c, uint64_t req) {
    for (size_t i = 0; i < AMQP_CONN_PENDING_MAX; i++)
        if (c->pend[i].used && c->pend[i].req == req) return &c->pend[i];
    return NULL;
}

static size_t amqp__pend_count(const amqp_conn_t *c, int *sync_waiting) {
    size_t k = 0;
    *sync_waiting = 0;
    for (size_t i = 0; i < AMQP_CONN_PENDING_MAX; i++) {
        if (!c->pend[i].used) continue;
        k++;
        if (!c->pend[i].nowait) *sync_waiting = 1;
    }
    return k;
}

static amqp__pending_t *amqp__pend_new(amqp_conn_t *c, uint16_t n, uint32_t method,
                                       int nowait, amqp_bytes_t name) {
    assert(name.len <= AMQP_SHORTSTR_SIZE_MAX);
    for (size_t i = 0; i < AMQP_CONN_PENDING_MAX; i++) {
        amqp__pending_t *p = &c->pend[i];
        if (p->used) continue;
        memset(p, 0, sizeof *p);
        p->used = 1;
        p->nowait = nowait ? 1 : 0;
        p->channel = n;
        p->method = method;
        p->req = ++c->next_req;
        p->name_len = (uint8_t)name.len;
        if (name.len) memcpy(p->name, name.ptr, name.len);
        return p;
    }
    assert(0 && "pump admits a method only with a free pending slot");
    return NULL;
}

/* The backend refused to even start the op: internal error. */
static void amqp__op_started(amqp_conn_t *c, uint64_t req, int rc, uint32_t id) {
    if (rc >= 0) return;
    amqp__pending_t *p = amqp__pend_find(c, req);
    if (p) p->used = 0;
    amqp__conn_error(c, AMQP_REPLY_INTERNAL_ERROR, "backend failure", id);
}

/* ---- handshake --------------------------------------------------------- */

static void amqp__send_start(amqp_conn_t *c) {
    uint8_t props[1024];
    amqp_wr_t w;
    amqp_wr_init(&w, props, sizeof props);
    size_t outer = amqp_wr_table_begin(&w);
    amqp_wr_field_str(&w, "product", "chaoslab");
    amqp_wr_field_str(&w, "version", "0.1.0");
    amqp_wr_field_str(&w, "platform", "C11");
    amqp_wr_shortstr(&w, amqp_cstr("capabilities"));
    amqp_wr_u8(&w, 'F');
    size_t caps = amqp_wr_table_begin(&w);
    amqp_wr_field_bool(&w, "publisher_confirms", 1);
    /* What clients check before using a feature: only what we do. */
    amqp_wr_field_bool(&w, "exchange_exchange_bindings", c->be.exchange_bind != NULL);
    amqp_wr_field_bool(&w, "basic.nack", 1);
    amqp_wr_field_bool(&w, "consumer_cancel_notify", 1);
    amqp_wr_field_bool(&w, "connection.blocked", c->cfg.connection_blocked ? 1 : 0);
    amqp_wr_field_bool(&w, "consumer_priorities", 0);
    amqp_wr_field_bool(&w, "authentication_failure_close", 1);
    /* basic.qos sets the prefetch of the channel's later consumers. */
    amqp_wr_field_bool(&w, "per_consumer_qos", 1);
    amqp_wr_field_bool(&w, "direct_reply_to", 0);
    amqp_wr_table_end(&w, caps);
    amqp_wr_table_end(&w, outer);
    assert(w.err == 0 && w.len > 4);
    amqp_method_t m = {.id = AMQP_CONNECTION_START};
    m.u.connection_start.version_major = 0;
    m.u.connection_start.version_minor = 9;
    m.u.connection_start.server_properties = (amqp_table_t){props + 4, w.len - 4};
    m.u.connection_start.mechanisms = amqp_cstr("PLAIN AMQPLAIN");
    m.u.connection_start.locales = amqp_cstr("en_US");
    (void)amqp__send_method(c, 0, &m);
}

static int amqp__auth(amqp_conn_t *c, amqp_bytes_t user, amqp_bytes_t pass) {
    /* guest is a loopback-only user, as in RabbitMQ's loopback_users. */
    if (amqp_bytes_eq(user, "guest") && !c->cfg.loopback) return 0;
    if (c->cfg.auth) return c->cfg.auth(c->cfg.auth_arg, user, pass) ? 1 : 0;
    for (size_t i = 0; i < c->cfg.users_count; i++) {
        if (amqp_bytes_eq(user, c->cfg.users[i].name) &&
            amqp_bytes_eq(pass, c->cfg.users[i].password))
            return 1;
    }
    return c->cfg.users_count == 0 && amqp_bytes_eq(user, "guest") &&
           amqp_bytes_eq(pass, "guest");
}

/* PLAIN response: [authzid] NUL user NUL password. Returns 0 or -1. */
static int amqp__plain(amqp_bytes_t resp, amqp_bytes_t *user, amqp_bytes_t *pass) {
    const uint8_t *r = resp.ptr;
    size_t len = resp.len;
    const uint8_t *z1 = len ? memchr(r, 0, len) : NULL;
    const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, len - (size_t)(z1 + 1 - r)) : NULL;
    if (!z2) return -1;
    *user = (amqp_bytes_t){z1 + 1, (size_t)(z2 - z1 - 1)};
    *pass = (amqp_bytes_t){z2 + 1, len - (size_t)(z2 + 1 - r)};
    return 0;
}

/* AMQPLAIN response: a field table without its length prefix holding LOGIN
 * and PASSWORD as long strings (what RabbitMQ's older clients send).
 * Returns 0 or -1. */
static int amqp__amqplain(amqp_bytes_t resp, amqp_bytes_t *user, amqp_bytes_t *pass) {
    amqp_table_t t = {resp.len ? resp.ptr : NULL, resp.len};
    if (amqp_table_validate(t, 0, 1) != 0) return -1;
    amqp_field_t login, password;
    if (amqp_table_get(t, "LOGIN", &login) != 1 || login.kind != 'S') return -1;
    if (amqp_table_get(t, "PASSWORD", &password) != 1 || password.kind != 'S') return -1;
    *user = login.v.bytes;
    *pass = password.v.bytes;
    return 0;
}

static void amqp__on_start_ok(amqp_conn_t *c, const amqp_connection_start_ok_t *a) {
    uint32_t id = AMQP_CONNECTION_START_OK;
    amqp_bytes_t user = {NULL, 0}, pass = {NULL, 0};
    int rc;
    const char *mech = "PLAIN";
    if (amqp_bytes_eq(a->mechanism, "PLAIN")) {
        rc = amqp__plain(a->response, &user, &pass);
    } else if (amqp_bytes_eq(a->mechanism, "AMQPLAIN")) {
        mech = "AMQPLAIN";
        rc = amqp__amqplain(a->response, &user, &pass);
    } else {
        amqp__conn_error(c, AMQP_REPLY_ACCESS_REFUSED,
                         "ACCESS_REFUSED - only PLAIN and AMQPLAIN are supported", id);
        return;
    }
    if (rc != 0) {
        amqp__conn_error(c, AMQP_REPLY_ACCESS_REFUSED, "malformed login response", id);
        return;
    }
    if (user.len > AMQP_SHORTSTR_SIZE_MAX || !amqp__auth(c, user, pass)) {
        char text[96];
        snprintf(text, sizeof text,
                 "ACCESS_REFUSED - Login was refused using authentication mechanism %s", mech);
        amqp__conn_error(c, AMQP_REPLY_ACCESS_REFUSED, text, id);
        return;
    }
    if (user.len) memcpy(c->user, user.ptr, user.len);
    c->user[user.len] = '\0';
    amqp_method_t m = {.id = AMQP_CONNECTION_TUNE};
    m.u.connection_tune.channel_max = c->channel_max;
    m.u.connection_tune.frame_max = c->frame_max;
    m.u.connection_tune.heartbeat = c->cfg.heartbeat_s;
    c->state = AMQP_CONN_S_TUNE_OK;
    (void)amqp__send_method(c, 0, &m);
}

static void amqp__on_tune_ok(amqp_conn_t *c, const amqp_connection_tune_ok_t *a) {
    uint32_t id = AMQP_CONNECTION_TUNE_OK;
    uint32_t fm = a->frame_max ? a->frame_max : c->frame_max;
    uint16_t cm = a->channel_max ? a->channel_max : c->channel_max;
    if (fm < AMQP_FRAME_MIN_SIZE || fm > c->frame_max) {
        amqp__conn_error(c, AMQP_REPLY_NOT_ALLOWED, "frame_max out of range", id);
        return;
    }
    if (cm > c->channel_max) {
        amqp__conn_error(c, AMQP_REPLY_NOT_ALLOWED, "channel_max above offer", id);
        return;
    }
    c->frame_max = fm;
    c->channel_max = cm;
    c->heartbeat_s = a->heartbeat; /* the client's choice; 0 disables */
    c->state = AMQP_CONN_S_OPEN;
}

static void amqp__on_open(amqp_conn_t *c, const amqp_connection_open_t *a) {
    const char *vhost = c->cfg.vhost ? c->cfg.vhost : "/";
    if (!amqp_bytes_eq(a->virtual_host, vhost)) {
        amqp__conn_error(c, AMQP_REPLY_NOT_ALLOWED, "vhost not found",
                         AMQP_CONNECTION_OPEN);
        return;
    }
    amqp_method_t m = {.id = AMQP_CONNECTION_OPEN_OK};
    c->state = AMQP_CONN_S_RUNNING;
    (void)amqp__send_method(c, 0, &m);
}

/* Client's connection.close: answer close-ok and we are done. */
static void amqp__on_conn_close(amqp_conn_t *c, const amqp_connection_close_t *a) {
    amqp_method_t m = {.id = AMQP_CONNECTION_CLOSE_OK};
    c->close_code = a->reply_code;
    (void)amqp__send_method(c, 0, &m);
    amqp__die(c);
}

static void amqp__handshake_frame(amqp_conn_t *c, const amqp_frame_t *f) {
    if (f->type == AMQP_FRAME_HEARTBEAT && f->channel == 0) return;
    if (f->type != AMQP_FRAME_METHOD) {
        amqp__conn_error(c, AMQP_REPLY_UNEXPECTED_FRAME, "expected a method frame", 0);
        return;
    }
    amqp_method_t m;
    int rc = amqp_method_decode(f->payload, f->size, &m);
    if (rc != 0) {
        amqp__decode_error(c, rc, m.id);
        return;
    }
    if (f->channel != 0) {
        amqp__conn_error(c, AMQP_REPLY_CHANNEL_ERROR, "channel before open", m.id);
        return;
    }
    if (m.id == AMQP_CONNECTION_CLOSE) {
        amqp__on_conn_close(c, &m.u.connection_close);
    } else if (c->state == AMQP_CONN_S_START_OK && m.id == AMQP_CONNECTION_START_OK) {
        amqp__on_start_ok(c, &m.u.connection_start_ok);
    } else if (c->state == AMQP_CONN_S_TUNE_OK && m.id == AMQP_CONNECTION_TUNE_OK) {
        amqp__on_tune_ok(c, &m.u.connection_tune_ok);
    } else if (c->state == AMQP_CONN_S_OPEN && m.id == AMQP_CONNECTION_OPEN) {
        amqp__on_open(c, &m.u.connection_open);
    } else {
        amqp__conn_error(c, AMQP_REPLY_COMMAND_INVALID, "unexpected method", m.id);
    }
}

/* ---- channel methods --------------------------------------------------- */

static void amqp__make_name(amqp_conn_t *c, const char *prefix, uint8_t *buf,
                            uint8_t *len) {
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, "%s%llx.%llu", prefix,
                     (unsigned long long)c->cfg.conn_id,
                     (unsigned long long)++c->name_counter);
    assert(n > 0 && (size_t)n < sizeof tmp);
    memcpy(buf, tmp, (size_t)n);
    *len = (uint8_t)n;
}

static void amqp__reply_simple(amqp_conn_t *c, uint16_t n, uint32_t id) {
    amqp_method_t m = {.id = id};
    (void)amqp__send_method(c, n, &m);
}

static void amqp__on_ch_open(amqp_conn_t *c, uint16_t n) {
    amqp__channel_t *ch = calloc(1, sizeof *ch);
    if (!ch) {
        amqp__conn_error(c, AMQP_REPLY_INTERNAL_ERROR, "out of memory",
                         AMQP_CHANNEL_OPEN);
        return;
    }
    ch->state = AMQP__CH_OPEN;
    c->ch[n] = ch;
    amqp_method_t m = {.id = AMQP_CHANNEL_OPEN_OK};
    (void)amqp__send_method(c, n, &m);
}

/* ---- arguments, current queue, transactions ---------------------------- */

/*
 * The broker implements no x-arguments (TTL, expiry, max-length,
 * dead-lettering, alternate exchanges, priorities, ...): refusing them is
 * better than ignoring them, because a client that asked for a TTL must not
 * believe it got one. The one exception is x-queue-type = "classic", which
 * is what this broker's queues are. Returns 0 when `t` is acceptable, else
 * 1 after closing the channel with 406.
 */
static int amqp__args_refused(amqp_conn_t *c, uint16_t n, amqp_table_t t, const char *what,
                              uint32_t method_id) {
    if (t.len == 0) return 0;
    amqp_table_iter_t it;
    amqp_table_iter_init(&it, t, 0);
    amqp_bytes_t key;
    amqp_field_t val;
    for (size_t i = 0; i < AMQP_FRAME_MAX_DEFAULT; i++) {
        int rc = amqp_table_next(&it, &key, &val);
        if (rc == 0) return 0;
        if (rc < 0) break;
        if (method_id == AMQP_QUEUE_DECLARE && amqp_bytes_eq(key, "x-queue-type") &&
            val.kind == 'S' && amqp_bytes_eq(val.v.bytes, "classic"))
            continue;
        char text[AMQP_SHORTSTR_SIZE_MAX + 1];
        snprintf(text, sizeof text,
                 "PRECONDITION_FAILED - %s argument '%.*s' is not supported by this broker",
                 what, (int)(key.len > 64 ? 64 : key.len), (const char *)key.ptr);
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED, text, method_id);
        return 1;
    }
    amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED, "PRECONDITION_FAILED - bad arguments",
                   method_id);
    return 1;
}

static void amqp__set_current_queue(amqp__channel_t *ch, amqp_bytes_t q) {
    assert(q.len <= AMQP_SHORTSTR_SIZE_MAX);
    if (q.len) memcpy(ch->cur_queue, q.ptr, q.len);
    ch->cur_queue_len = (uint8_t)q.len;
}

/* AMQP 0-9-1: an empty queue name means the channel's current queue (the
 * last one declared on it). Returns 0 with *q filled in, or 1 after closing
 * the channel with 404 when none was declared yet. */
static int amqp__current_queue(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                               amqp_bytes_t *q, uint32_t method_id) {
    if (q->len) return 0;
    if (ch->cur_queue_len == 0) {
        amqp__ch_error(c, n, AMQP_REPLY_NOT_FOUND, "NOT_FOUND - no previously declared queue",
                       method_id);
        return 1;
    }
    *q = amqp__b(ch->cur_queue, ch->cur_queue_len);
    return 0;
}

static void amqp__on_consume(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                             amqp_method_t *m) {
    amqp_basic_consume_t *a = &m->u.basic_consume;
    if (!amqp__has_slot(c, m->id)) {
        amqp__conn_error(c, AMQP_REPLY_NOT_IMPLEMENTED, "basic.consume", m->id);
        return;
    }
    if (amqp__current_queue(c, n, ch, &a->queue, m->id)) return;
    if (amqp__args_refused(c, n, a->arguments, "consumer", m->id)) return;

    if (amqp__consumer_find(ch, a->consumer_tag)) {
        amqp__conn_error(c, AMQP_REPLY_NOT_ALLOWED, "attempt to reuse consumer tag", m->id);
        return;
    }
    amqp__consumer_t *k = NULL;
    for (size_t i = 0; i < AMQP_CONN_CONSUMERS_MAX && !k; i++)
        if (ch->consumers[i].state == AMQP__CONSUMER_FREE) k = &ch->consumers[i];
    if (!k) {
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED, "too many consumers", m->id);
        return;
    }
    if (a->consumer_tag.len == 0) {
        amqp__make_name(c, "amq.ctag-", k->tag, &k->tag_len);
    } else {
        memcpy(k->tag, a->consumer_tag.ptr, a->consumer_tag.len);
        k->tag_len = (uint8_t)a->consumer_tag.len;
    }
    k->state = AMQP__CONSUMER_PENDING;
    k->no_ack = a->no_ack;
    a->consumer_tag = amqp__b(k->tag, k->tag_len);
    amqp__start_op(c, n, m, a->nowait, a->consumer_tag, 0);
}

static void amqp__on_cancel(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                            const amqp_method_t *m) {
    const amqp_basic_cancel_t *a = &m->u.basic_cancel;
    amqp__consumer_t *k = amqp__consumer_find(ch, a->consumer_tag);
    if (!k || !amqp__has_slot(c, m->id)) {
        /* Unknown tags are answered as RabbitMQ does: a plain cancel-ok. */
        if (k) memset(k, 0, sizeof *k);
        if (a->nowait) return;
        amqp_method_t r = {.id = AMQP_BASIC_CANCEL_OK};
        r.u.basic_cancel_ok.consumer_tag = a->consumer_tag;
        (void)amqp__send_method(c, n, &r);
        return;
    }
    k->state = AMQP__CONSUMER_CANCELLING;
    amqp__start_op(c, n, m, a->nowait, a->consumer_tag, 0);
}

static void amqp__on_settle(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                            uint32_t id, uint64_t tag, int multiple,
                            enum amqp_settle how) {
    if (multiple) {
        if (tag > ch->last_delivery_tag) {
            amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                           "PRECONDITION_FAILED - unknown delivery tag", id);
            return;
        }
        amqp__un_settle_upto(c, n, tag ? tag : ch->last_delivery_tag, how);
        return;
    }
    size_t i = amqp__un_find(ch, tag);
    if (i == SIZE_MAX || !ch->un[i].live) {
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                       "PRECONDITION_FAILED - unknown delivery tag", id);
        return;
    }
    amqp__un_settle(c, n, i, how);
}

static void amqp__on_publish(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                             const amqp_basic_publish_t *a) {
    uint32_t id = AMQP_BASIC_PUBLISH;
    if (a->immediate) {
        amqp__conn_error(c, AMQP_REPLY_NOT_IMPLEMENTED, "immediate=true", id);
        return;
    }
    if (!c->be.basic_publish) {
        amqp__conn_error(c, AMQP_REPLY_NOT_IMPLEMENTED, "basic.publish", id);
        return;
    }
    if (a->exchange.len) memcpy(ch->exchange, a->exchange.ptr, a->exchange.len);
    ch->exchange_len = (uint8_t)a->exchange.len;
    if (a->routing_key.len) memcpy(ch->rk, a->routing_key.ptr, a->routing_key.len);
    ch->rk_len = (uint8_t)a->routing_key.len;
    ch->mandatory = a->mandatory;
    ch->content = AMQP__CONTENT_HEADER;
}

/* The backend slot for a method (typed calls: no function pointer casts). */
static int amqp__has_slot(const amqp_conn_t *c, uint32_t id) {
    const amqp_backend_t *b = &c->be;
    switch (id) {
    case AMQP_EXCHANGE_DECLARE: return b->exchange_declare != NULL;
    case AMQP_EXCHANGE_DELETE: return b->exchange_delete != NULL;
    case AMQP_EXCHANGE_BIND: return b->exchange_bind != NULL;
    case AMQP_EXCHANGE_UNBIND: return b->exchange_unbind != NULL;
    case AMQP_QUEUE_DECLARE: return b->queue_declare != NULL;
    case AMQP_QUEUE_BIND: return b->queue_bind != NULL;
    case AMQP_QUEUE_UNBIND: return b->queue_unbind != NULL;
    case AMQP_QUEUE_PURGE: return b->queue_purge != NULL;
    case AMQP_QUEUE_DELETE: return b->queue_delete != NULL;
    case AMQP_BASIC_QOS: return b->basic_qos != NULL;
    case AMQP_BASIC_CONSUME: return b->basic_consume != NULL;
    case AMQP_BASIC_CANCEL: return b->basic_cancel != NULL;
    case AMQP_BASIC_GET: return b->basic_get != NULL;
    case AMQP_CONFIRM_SELECT: return b->confirm_select != NULL;
    default: return 0;
    }
}

static int amqp__call_slot(amqp_conn_t *c, const amqp_op_t *op, const amqp_method_t *m) {
    const amqp_backend_t *b = &c->be;
    switch (m->id) {
    case AMQP_EXCHANGE_DECLARE: return b->exchange_declare(b->ctx, op, &m->u.exchange_declare);
    case AMQP_EXCHANGE_DELETE: return b->exchange_delete(b->ctx, op, &m->u.exchange_delete);
    case AMQP_EXCHANGE_BIND: return b->exchange_bind(b->ctx, op, &m->u.exchange_bind);
    case AMQP_EXCHANGE_UNBIND: return b->exchange_unbind(b->ctx, op, &m->u.exchange_unbind);
    case AMQP_QUEUE_DECLARE: return b->queue_declare(b->ctx, op, &m->u.queue_declare);
    case AMQP_QUEUE_BIND: return b->queue_bind(b->ctx, op, &m->u.queue_bind);
    case AMQP_QUEUE_UNBIND: return b->queue_unbind(b->ctx, op, &m->u.queue_unbind);
    case AMQP_QUEUE_PURGE: return b->queue_purge(b->ctx, op, &m->u.queue_purge);
    case AMQP_QUEUE_DELETE: return b->queue_delete(b->ctx, op, &m->u.queue_delete);
    case AMQP_BASIC_QOS: return b->basic_qos(b->ctx, op, &m->u.basic_qos);
    case AMQP_BASIC_CONSUME: return b->basic_consume(b->ctx, op, &m->u.basic_consume);
    case AMQP_BASIC_CANCEL: return b->basic_cancel(b->ctx, op, &m->u.basic_cancel);
    case AMQP_BASIC_GET: return b->basic_get(b->ctx, op, &m->u.basic_get);
    case AMQP_CONFIRM_SELECT: return b->confirm_select(b->ctx, op);
    default: assert(0 && "no backend slot"); return IO_EINVAL;
    }
}

/* Hand a method to the backend as an op awaiting its answer. `name` is what
 * the reply must echo (queue name, consumer tag). The backend may answer
 * from inside the call. */
static void amqp__start_op(amqp_conn_t *c, uint16_t n, const amqp_method_t *m,
                           int nowait, amqp_bytes_t name, int no_ack) {
    assert(amqp__has_slot(c, m->id));
    amqp__pending_t *p = amqp__pend_new(c, n, m->id, nowait, name);
    p->no_ack = no_ack ? 1 : 0;
    amqp_op_t op = {c, p->req, n, (uint8_t)(nowait ? 1 : 0)};
    amqp__op_started(c, op.req, amqp__call_slot(c, &op, m), m->id);
}

/* The common case: no slot means 540; otherwise start the op. */
static void amqp__op(amqp_conn_t *c, uint16_t n, const amqp_method_t *m, int nowait) {
    if (!amqp__has_slot(c, m->id)) {
        amqp__conn_error(c, AMQP_REPLY_NOT_IMPLEMENTED, amqp_method_name(m->id), m->id);
        return;
    }
    amqp__start_op(c, n, m, nowait, amqp__b(NULL, 0), 0);
}

static void amqp__on_queue_declare(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                                   amqp_method_t *m) {
    amqp_queue_declare_t *a = &m->u.queue_declare;
    uint8_t name[AMQP_SHORTSTR_SIZE_MAX];
    uint8_t len = 0;
    if (!amqp__has_slot(c, m->id)) {
        amqp__conn_error(c, AMQP_REPLY_NOT_IMPLEMENTED, "queue.declare", m->id);
        return;
    }
    if (!a->passive && amqp__args_refused(c, n, a->arguments, "queue", m->id)) return;
    if (a->queue.len == 0 && a->passive) {
        if (amqp__current_queue(c, n, ch, &a->queue, m->id)) return;
    } else if (a->queue.len == 0) {
        amqp__make_name(c, "amq.gen-", name, &len);
        a->queue = amqp__b(name, len);
    }
    /* The current queue changes at once, so a nowait declare followed by
     * a bind with an empty name binds this queue. */
    amqp__set_current_queue(ch, a->queue);
    amqp__start_op(c, n, m, a->nowait, a->queue, 0);
}

static void amqp__on_exchange_declare(amqp_conn_t *c, uint16_t n, amqp_method_t *m) {
    const amqp_exchange_declare_t *a = &m->u.exchange_declare;
    if (!a->passive) {
        const char *refused = NULL;
        if (a->auto_delete) refused = "PRECONDITION_FAILED - auto-delete exchanges are not "
                                      "supported by this broker";
        if (refused) {
            amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED, refused, m->id);
            return;
        }
        if (amqp__args_refused(c, n, a->arguments, "exchange", m->id)) return;
    }
    amqp__op(c, n, m, a->nowait);
}

static void amqp__on_qos_or_select(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                                   const amqp_method_t *m) {
    int nowait = 0;
    uint32_t ok = AMQP_BASIC_QOS_OK;
    if (m->id == AMQP_BASIC_QOS && m->u.basic_qos.prefetch_size != 0) {
        /* A byte window is not implemented: refused as RabbitMQ does. */
        amqp__conn_error(c, AMQP_REPLY_NOT_IMPLEMENTED, "NOT_IMPLEMENTED - prefetch_size!=0",
                         m->id);
        return;
    }
    if (m->id == AMQP_CONFIRM_SELECT) {
        if (ch->tx_mode) {
            amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                           "PRECONDITION_FAILED - cannot switch from tx to confirm mode", m->id);
            return;
        }
        ch->confirm_mode = 1; /* publishes after this carry sequence numbers */
        nowait = m->u.confirm_select.nowait;
        ok = AMQP_CONFIRM_SELECT_OK;
    }
    if (!amqp__has_slot(c, m->id)) { /* nothing for a backend to do */
        if (!nowait) amqp__reply_simple(c, n, ok);
        return;
    }
    amqp__start_op(c, n, m, nowait, amqp__b(NULL, 0), 0);
}

/* Hand one complete publish to the backend. In confirm and tx mode it gets
 * a sequence number (tx: commit-ok waits for all of them). */
static void amqp__publish_send(amqp_conn_t *c, uint16_t n, amqp_bytes_t exchange,
                               amqp_bytes_t rk, uint8_t mandatory, const uint8_t *header,
                               size_t header_len, const uint8_t *body, size_t body_len) {
    amqp__channel_t *ch = c->ch[n];
    uint64_t seq = 0;
    if (ch->confirm_mode || ch->tx_mode) {
        /* amqp__may_dispatch admitted the publish only below the window. */
        assert(ch->cf_live < AMQP_CONN_CONFIRMS_MAX);
        if (ch->cf_end == ch->cf_cap) {
            size_t j = 0; /* squeeze out holes, then grow */
            for (size_t i = ch->cf_head; i < ch->cf_end; i++)
                if (!ch->cf[i].sent) ch->cf[j++] = ch->cf[i];
            ch->cf_head = 0;
            ch->cf_end = j;
        }
        if (ch->cf_end == ch->cf_cap) {
            size_t cap = ch->cf_cap ? ch->cf_cap * 2 : 16;
            if (cap > AMQP_CONN_CONFIRMS_MAX) cap = AMQP_CONN_CONFIRMS_MAX;
            amqp__confirm_t *p = realloc(ch->cf, cap * sizeof *p);
            if (!p || cap == ch->cf_cap) {
                if (p) ch->cf = p;
                amqp__conn_error(c, AMQP_REPLY_INTERNAL_ERROR, "confirm window", 0);
                return;
            }
            ch->cf = p;
            ch->cf_cap = cap;
        }
        seq = ++ch->last_publish_seq;
        ch->cf[ch->cf_end++] = (amqp__confirm_t){seq, 0};
        ch->cf_live++;
    }
    amqp_content_header_t h;
    int rc = amqp_content_header_decode(header, header_len, &h);
    assert(rc == 0);
    amqp_publish_t msg = {
        .exchange = exchange,
        .routing_key = rk,
        .mandatory = mandatory,
        .props = &h.props,
        .props_raw = amqp__b(header + 12, header_len - 12),
        .body = amqp__b(body, body_len),
    };
    rc = c->be.basic_publish(c->be.ctx, c, n, seq, &msg);
    if (rc < 0)
        amqp__conn_error(c, AMQP_REPLY_INTERNAL_ERROR, "backend failure", AMQP_BASIC_PUBLISH);
}

/* A publish inside a transaction: keep it (header and body move over). */
static void amqp__tx_hold_publish(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch) {
    if (ch->txp_count == AMQP_CONN_TX_PUBLISHES_MAX ||
        ch->tx_bytes + ch->body_len > AMQP_CONN_TX_BYTES_MAX) {
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                       "PRECONDITION_FAILED - transaction too large (commit more often)",
                       AMQP_BASIC_PUBLISH);
        return;
    }
    if (ch->txp_count == ch->txp_cap) {
        size_t cap = ch->txp_cap ? ch->txp_cap * 2 : 8;
        amqp__txpub_t *p = realloc(ch->txp, cap * sizeof *p);
        if (!p) {
            amqp__conn_error(c, AMQP_REPLY_INTERNAL_ERROR, "out of memory", AMQP_BASIC_PUBLISH);
            return;
        }
        ch->txp = p;
        ch->txp_cap = cap;
    }
    amqp__txpub_t *t = &ch->txp[ch->txp_count++];
    t->mandatory = ch->mandatory;
    t->exchange_len = ch->exchange_len;
    t->rk_len = ch->rk_len;
    memcpy(t->exchange, ch->exchange, ch->exchange_len);
    memcpy(t->rk, ch->rk, ch->rk_len);
    t->header = ch->header;
    t->header_len = ch->header_len;
    t->body = ch->body;
    t->body_len = (size_t)ch->body_len;
    ch->tx_bytes += t->body_len;
    ch->header = NULL; /* owned by the transaction now */
    ch->body = NULL;
}

/* An ack/nack/reject inside a transaction: checked now, applied at commit. */
static void amqp__tx_hold_settle(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch, uint32_t id,
                                 uint64_t tag, int multiple, enum amqp_settle how) {
    int known = multiple ? tag <= ch->last_delivery_tag
                         : amqp__un_find(ch, tag) != SIZE_MAX;
    if (!known) {
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                       "PRECONDITION_FAILED - unknown delivery tag", id);
        return;
    }
    if (ch->txa_count == AMQP_CONN_TX_ACKS_MAX) {
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                       "PRECONDITION_FAILED - transaction too large (commit more often)", id);
        return;
    }
    if (ch->txa_count == ch->txa_cap) {
        size_t cap = ch->txa_cap ? ch->txa_cap * 2 : 16;
        amqp__txack_t *p = realloc(ch->txa, cap * sizeof *p);
        if (!p) {
            amqp__conn_error(c, AMQP_REPLY_INTERNAL_ERROR, "out of memory", id);
            return;
        }
        ch->txa = p;
        ch->txa_cap = cap;
    }
    ch->txa[ch->txa_count++] = (amqp__txack_t){tag, multiple ? 1 : 0, (uint8_t)how};
}

static void amqp__on_settle(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                            uint32_t id, uint64_t tag, int multiple,
                            enum amqp_settle how);

/* commit-ok once every committed publish has its (internal) confirm. */
static void amqp__tx_commit_check(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch) {
    /* tx_sending: a backend that confirms from inside basic_publish must not
     * get commit-ok out before the rest of the transaction went over. */
    if (!ch->tx_committing || ch->tx_sending || ch->cf_live > 0) return;
    ch->tx_committing = 0;
    assert(c->commits_waiting > 0);
    c->commits_waiting--;
    if (ch->tx_failed) {
        ch->tx_failed = 0;
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                       "PRECONDITION_FAILED - the broker refused a publish of the transaction",
                       AMQP_TX_COMMIT);
        return;
    }
    amqp__reply_simple(c, n, AMQP_TX_COMMIT_OK);
}

/*
 * tx.commit as RabbitMQ defines it: the channel's held acks apply, then its
 * held publishes go to the broker; commit-ok goes out when the broker has
 * stored (confirmed) every one of them, and the connection reads nothing
 * else meanwhile, so what the client does after commit-ok sees the commit.
 */
static void amqp__tx_commit(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch) {
    size_t acks = ch->txa_count;
    ch->txa_count = 0;
    for (size_t i = 0; i < acks && c->ch[n] == ch && ch->state == AMQP__CH_OPEN; i++) {
        amqp__txack_t a = ch->txa[i];
        if (!a.multiple && amqp__un_find(ch, a.tag) == SIZE_MAX) continue; /* settled twice */
        amqp__on_settle(c, n, ch, AMQP_BASIC_ACK, a.tag, a.multiple, (enum amqp_settle)a.how);
    }
    if (c->ch[n] != ch || ch->state != AMQP__CH_OPEN) return;
    ch->tx_committing = 1;
    c->commits_waiting++;
    ch->tx_sending = 1;
    size_t pubs = ch->txp_count;
    for (size_t i = 0; i < pubs; i++) {
        amqp__txpub_t *t = &ch->txp[i];
        if (c->ch[n] == ch && ch->state == AMQP__CH_OPEN && c->state == AMQP_CONN_S_RUNNING)
            amqp__publish_send(c, n, amqp__b(t->exchange, t->exchange_len),
                               amqp__b(t->rk, t->rk_len), t->mandatory, t->header,
                               t->header_len, t->body, t->body_len);
        free(t->header);
        free(t->body);
        t->header = t->body = NULL;
    }
    if (c->ch[n] != ch) return;
    ch->tx_sending = 0;
    ch->txp_count = 0;
    ch->tx_bytes = 0;
    if (ch->state == AMQP__CH_OPEN) amqp__tx_commit_check(c, n, ch);
}

static void amqp__on_tx(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch, uint32_t id) {
    if (id == AMQP_TX_SELECT) {
        if (ch->confirm_mode) {
            amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                           "PRECONDITION_FAILED - cannot switch from confirm to tx mode", id);
            return;
        }
        ch->tx_mode = 1;
        amqp__reply_simple(c, n, AMQP_TX_SELECT_OK);
        return;
    }
    if (!ch->tx_mode) {
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                       "PRECONDITION_FAILED - channel is not transactional", id);
        return;
    }
    if (id == AMQP_TX_COMMIT) {
        amqp__tx_commit(c, n, ch);
        return;
    }
    amqp__tx_reset(ch); /* rollback: held publishes and acks are forgotten */
    amqp__reply_simple(c, n, AMQP_TX_ROLLBACK_OK);
}

static void amqp__channel_method(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                                 amqp_method_t *m) {
    switch (m->id) {
    case AMQP_CHANNEL_OPEN:
        amqp__conn_error(c, AMQP_REPLY_CHANNEL_ERROR, "channel already open", m->id);
        return;
    case AMQP_CHANNEL_CLOSE:
        amqp__ch_release(c, n);
        amqp__reply_simple(c, n, AMQP_CHANNEL_CLOSE_OK);
        if (c->ch[n]) amqp__ch_free(c, n);
        return;
    case AMQP_CHANNEL_FLOW:
        if (!m->u.channel_flow.active) {
            amqp__conn_error(c, AMQP_REPLY_NOT_IMPLEMENTED, "channel.flow active=false", m->id);
            return;
        } else {
            amqp_method_t r = {.id = AMQP_CHANNEL_FLOW_OK};
            r.u.channel_flow_ok.active = 1;
            (void)amqp__send_method(c, n, &r);
        }
        return;
    case AMQP_CHANNEL_FLOW_OK: return;
    case AMQP_ACCESS_REQUEST: {
        amqp_method_t r = {.id = AMQP_ACCESS_REQUEST_OK};
        r.u.access_request_ok.ticket = 1;
        (void)amqp__send_method(c, n, &r);
        return;
    }
    case AMQP_EXCHANGE_DECLARE: amqp__on_exchange_declare(c, n, m); return;
    case AMQP_EXCHANGE_DELETE: amqp__op(c, n, m, m->u.exchange_delete.nowait); return;
    case AMQP_QUEUE_DECLARE: amqp__on_queue_declare(c, n, ch, m); return;
    case AMQP_QUEUE_BIND: {
        amqp_queue_bind_t *a = &m->u.queue_bind;
        /* RabbitMQ's shortcut: empty queue and key bind the current queue
         * under its own name. */
        if (a->queue.len == 0 && a->routing_key.len == 0 && ch->cur_queue_len)
            a->routing_key = amqp__b(ch->cur_queue, ch->cur_queue_len);
        if (amqp__current_queue(c, n, ch, &a->queue, m->id)) return;
        if (amqp__args_refused(c, n, a->arguments, "binding", m->id)) return;
        amqp__op(c, n, m, a->nowait);
        return;
    }
    case AMQP_QUEUE_UNBIND:
        if (amqp__current_queue(c, n, ch, &m->u.queue_unbind.queue, m->id)) return;
        amqp__op(c, n, m, 0);
        return;
    case AMQP_QUEUE_PURGE:
        if (amqp__current_queue(c, n, ch, &m->u.queue_purge.queue, m->id)) return;
        amqp__op(c, n, m, m->u.queue_purge.nowait);
        return;
    case AMQP_QUEUE_DELETE:
        if (amqp__current_queue(c, n, ch, &m->u.queue_delete.queue, m->id)) return;
        amqp__op(c, n, m, m->u.queue_delete.nowait);
        return;
    case AMQP_BASIC_QOS:
    case AMQP_CONFIRM_SELECT: amqp__on_qos_or_select(c, n, ch, m); return;
    case AMQP_BASIC_CONSUME: amqp__on_consume(c, n, ch, m); return;
    case AMQP_BASIC_CANCEL: amqp__on_cancel(c, n, ch, m); return;
    case AMQP_BASIC_PUBLISH: amqp__on_publish(c, n, ch, &m->u.basic_publish); return;
    case AMQP_BASIC_GET:
        if (amqp__current_queue(c, n, ch, &m->u.basic_get.queue, m->id)) return;
        if (!amqp__has_slot(c, m->id)) amqp__op(c, n, m, 0);
        else amqp__start_op(c, n, m, 0, amqp__b(NULL, 0), m->u.basic_get.no_ack);
        return;
    case AMQP_BASIC_ACK:
    case AMQP_BASIC_NACK:
    case AMQP_BASIC_REJECT: {
        uint64_t tag = m->u.basic_ack.delivery_tag;
        int multiple = m->u.basic_ack.multiple;
        enum amqp_settle how = AMQP_SETTLE_ACK;
        if (m->id == AMQP_BASIC_NACK) {
            tag = m->u.basic_nack.delivery_tag;
            multiple = m->u.basic_nack.multiple;
            how = m->u.basic_nack.requeue ? AMQP_SETTLE_REQUEUE : AMQP_SETTLE_DROP;
        } else if (m->id == AMQP_BASIC_REJECT) {
            tag = m->u.basic_reject.delivery_tag;
            multiple = 0;
            how = m->u.basic_reject.requeue ? AMQP_SETTLE_REQUEUE : AMQP_SETTLE_DROP;
        }
        if (ch->tx_mode) amqp__tx_hold_settle(c, n, ch, m->id, tag, multiple, how);
        else amqp__on_settle(c, n, ch, m->id, tag, multiple, how);
        return;
    }
    case AMQP_BASIC_RECOVER:
    case AMQP_BASIC_RECOVER_ASYNC:
        /* Both requeue: redelivering to the same consumer is not offered. */
        amqp__un_settle_upto(c, n, ch->last_delivery_tag, AMQP_SETTLE_REQUEUE);
        if (m->id == AMQP_BASIC_RECOVER) amqp__reply_simple(c, n, AMQP_BASIC_RECOVER_OK);
        return;
    case AMQP_EXCHANGE_BIND:
        if (amqp__args_refused(c, n, m->u.exchange_bind.arguments, "binding", m->id)) return;
        amqp__op(c, n, m, m->u.exchange_bind.nowait);
        return;
    case AMQP_EXCHANGE_UNBIND:
        amqp__op(c, n, m, m->u.exchange_unbind.nowait);
        return;
    case AMQP_TX_SELECT:
    case AMQP_TX_COMMIT:
    case AMQP_TX_ROLLBACK: amqp__on_tx(c, n, ch, m->id); return;
    default:
        /* A server-to-client method (deliver, declare-ok, ...) or a
         * connection method on a channel: an invalid command. */
        amqp__conn_error(c, AMQP_REPLY_COMMAND_INVALID, "method not allowed here", m->id);
        return;
    }
}

/* ---- content ----------------------------------------------------------- */

static void amqp__publish_done(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch) {
    assert(ch->content == AMQP__CONTENT_BODY && ch->body_len == ch->body_size);
    if (ch->tx_mode) {
        amqp__tx_hold_publish(c, n, ch);
    } else {
        amqp__publish_send(c, n, amqp__b(ch->exchange, ch->exchange_len),
                           amqp__b(ch->rk, ch->rk_len), ch->mandatory, ch->header,
                           ch->header_len, ch->body, (size_t)ch->body_len);
    }
    ch = c->ch[n];
    if (ch) amqp__content_reset(ch);
}

static void amqp__on_header(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                            const amqp_frame_t *f) {
    amqp_content_header_t h;
    if (amqp_content_header_decode(f->payload, f->size, &h) != 0) {
        amqp__conn_error(c, AMQP_REPLY_SYNTAX_ERROR, "malformed content header",
                         AMQP_BASIC_PUBLISH);
        return;
    }
    if (h.class_id != AMQP_CLASS_BASIC || h.weight != 0) {
        amqp__conn_error(c, AMQP_REPLY_UNEXPECTED_FRAME, "content header class",
                         AMQP_BASIC_PUBLISH);
        return;
    }
    /* body plus properties: what the broker has to store */
    uint64_t size = h.body_size + (f->size - 12u);
    if (size > c->cfg.body_size_max) {
        amqp__ch_error(c, n, AMQP_REPLY_PRECONDITION_FAILED,
                       "PRECONDITION_FAILED - message size exceeds maximum",
                       AMQP_BASIC_PUBLISH);
        return;
    }
    ch->header = malloc(f->size);
    ch->body = h.body_size ? malloc((size_t)h.body_size) : NULL;
    if (!ch->header || (h.body_size && !ch->body)) {
        amqp__content_reset(ch);
        amqp__conn_error(c, AMQP_REPLY_INTERNAL_ERROR, "out of memory", AMQP_BASIC_PUBLISH);
        return;
    }
    memcpy(ch->header, f->payload, f->size);
    ch->header_len = f->size;
    ch->body_size = h.body_size;
    ch->body_len = 0;
    ch->content = AMQP__CONTENT_BODY;
    if (h.body_size == 0) amqp__publish_done(c, n, ch);
}

static void amqp__on_body(amqp_conn_t *c, uint16_t n, amqp__channel_t *ch,
                          const amqp_frame_t *f) {
    assert(ch->content == AMQP__CONTENT_BODY);
    assert(ch->body_len < ch->body_size);
    if (f->size > ch->body_size - ch->body_len) {
        amqp__conn_error(c, AMQP_REPLY_FRAME_ERROR, "body larger than announced",
                         AMQP_BASIC_PUBLISH);
        return;
    }
    if (f->size) memcpy(ch->body + ch->body_len, f->payload, f->size);
    ch->body_len += f->size;
    if (ch->body_len == ch->body_size) amqp__publish_done(c, n, ch);
}

/* ---- frame dispatch ---------------------------------------------------- */

static void amqp__conn0_frame(amqp_conn_t *c, const amqp_frame_t *f) {
    if (f->type != AMQP_FRAME_METHOD) {
        amqp__conn_error(c, AMQP_REPLY_CHANNEL_ERROR, "content on channel 0", 0);
        return;
    }
    amqp_method_t m;
    int rc = amqp_method_decode(f->payload, f->size, &m);
    if (rc != 0) {
        amqp__decode_error(c, rc, m.id);
        return;
    }
    if (m.id == AMQP_CONNECTION_CLOSE) amqp__on_conn_close(c, &m.u.connection_close);
    else if (m.id == AMQP_CONNECTION_UPDATE_SECRET)
        /* Credentials are checked once, at login, and never expire here:
         * a new secret changes nothing, so it is simply acknowledged. */
        amqp__reply_simple(c, 0, AMQP_CONNECTION_UPDATE_SECRET_OK);
    else amqp__conn_error(c, AMQP_REPLY_COMMAND_INVALID, "unexpected method", m.id);
}

/* A channel we asked to close: only its close/close-ok matter now. */
static void amqp__closing_ch_frame(amqp_conn_t *c, uint16_t n, const amqp_frame_t *f) {
    amqp_method_t m;
    if (f->type != AMQP_FRAME_METHOD) return;
    if (amqp_method_decode(f->payload, f->size, &m) != 0) return;
    if (m.id == AMQP_CHANNEL_CLOSE) amqp__reply_simple(c, n, AMQP_CHANNEL_CLOSE_OK);
    if (m.id == AMQP_CHANNEL_CLOSE || m.id == AMQP_CHANNEL_CLOSE_OK) amqp__ch_free(c, n);
}

static void amqp__running_frame(amqp_conn_t *c, const amqp_frame_t *f) {
    uint16_t n = f->channel;
    if (f->type == AMQP_FRAME_HEARTBEAT) {
        if (n != 0) amqp__conn_error(c, AMQP_REPLY_FRAME_ERROR, "heartbeat on a channel", 0);
        return;
    }
    if (n == 0) {
        amqp__conn0_frame(c, f);
        return;
    }
    if (n > c->channel_max) {
        amqp__conn_error(c, AMQP_REPLY_CHANNEL_ERROR, "channel above channel_max", 0);
        return;
    }
    amqp__channel_t *ch = c->ch[n];
    if (ch && ch->state == AMQP__CH_CLOSING) {
        amqp__closing_ch_frame(c, n, f);
        return;
    }
    if (f->type != AMQP_FRAME_METHOD) {
        if (!ch) amqp__conn_error(c, AMQP_REPLY_CHANNEL_ERROR, "channel not open", 0);
        else if (f->type == AMQP_FRAME_HEADER && ch->content == AMQP__CONTENT_HEADER)
            amqp__on_header(c, n, ch, f);
        else if (f->type == AMQP_FRAME_BODY && ch->content == AMQP__CONTENT_BODY)
            amqp__on_body(c, n, ch, f);
        else amqp__conn_error(c, AMQP_REPLY_UNEXPECTED_FRAME, "unexpected content frame",
                              AMQP_BASIC_PUBLISH);
        return;
    }
    amqp_method_t m;
    int rc = amqp_method_decode(f->payload, f->size, &m);
    if (rc != 0) {
        amqp__decode_error(c, rc, m.id);
        return;
    }
    if (!ch) {
        if (m.id == AMQP_CHANNEL_OPEN) amqp__on_ch_open(c, n);
        else if (m.id != AMQP_CHANNEL_CLOSE_OK) /* a late close-ok is harmless */
            amqp__conn_error(c, AMQP_REPLY_CHANNEL_ERROR, "channel not open", m.id);
        return;
    }
    if (ch->content != AMQP__CONTENT_NONE) {
        amqp__conn_error(c, AMQP_REPLY_UNEXPECTED_FRAME, "method inside content", m.id);
        return;
    }
    amqp__channel_method(c, n, ch, &m);
}

static void amqp__frame(amqp_conn_t *c, const amqp_frame_t *f) {
    assert(c->state >= AMQP_CONN_S_START_OK);
    assert(f->size <= c->frame_max);
    switch (c->state) {
    case AMQP_CONN_S_START_OK:
    case AMQP_CONN_S_TUNE_OK:
    case AMQP_CONN_S_OPEN: amqp__handshake_frame(c, f); return;
    case AMQP_CONN_S_RUNNING: amqp__running_frame(c, f); return;
    case AMQP_CONN_S_CLOSING: {
        amqp_method_t m;
        if (f->type != AMQP_FRAME_METHOD || f->channel != 0) return;
        if (amqp_method_decode(f->payload, f->size, &m) != 0) return;
        if (m.id == AMQP_CONNECTION_CLOSE) amqp__reply_simple(c, 0, AMQP_CONNECTION_CLOSE_OK);
        if (m.id == AMQP_CONNECTION_CLOSE || m.id == AMQP_CONNECTION_CLOSE_OK) amqp__die(c);
        return;
    }
    default: return;
    }
}

/* May the next frame be processed now? Waits keep replies in order and the
 * confirm window and output bounded. */
static int amqp__may_dispatch(const amqp_conn_t *c, const amqp_frame_t *f) {
    if (c->state >= AMQP_CONN_S_CLOSING) return 1; /* only close matters */
    if (c->out_len >= AMQP_CONN_OUTPUT_HIGH_BYTES) return 0;
    int sync_waiting;
    if (amqp__pend_count(c, &sync_waiting) >= AMQP_CONN_PENDING_MAX) return 0;
    if (sync_waiting) return 0;
    if (c->commits_waiting) return 0; /* a tx.commit-ok is owed */
    if (f->type == AMQP_FRAME_METHOD && f->size >= 4 && f->payload[0] == 0 &&
        f->payload[1] == AMQP_CLASS_BASIC && f->payload[2] == 0 && f->payload[3] == 40) {
        const amqp__channel_t *ch = amqp__ch(c, f->channel);
        if (ch && ch->confirm_mode && ch->cf_live >= AMQP_CONN_CONFIRMS_MAX)
            return 0;
    }
    return 1;
}

static size_t amqp__pump_header(amqp_conn_t *c) {
    if (c->in_len < AMQP_PROTOCOL_HEADER_SIZE) return 0;
    if (memcmp(c->in, AMQP_PROTOCOL_HEADER, AMQP_PROTOCOL_HEADER_SIZE) != 0) {
        /* Tell the client which protocol we speak, then hang up. */
        if (amqp__out_reserve(c, AMQP_PROTOCOL_HEADER_SIZE) == 0) {
            memcpy(c->out + c->out_len, AMQP_PROTOCOL_HEADER, AMQP_PROTOCOL_HEADER_SIZE);
            c->out_len += AMQP_PROTOCOL_HEADER_SIZE;
        }
        c->state = AMQP_CONN_S_CLOSED;
        amqp__notify_closed(c);
        return c->in_len;
    }
    c->state = AMQP_CONN_S_START_OK;
    amqp__send_start(c);
    return AMQP_PROTOCOL_HEADER_SIZE;
}

static void amqp__pump(amqp_conn_t *c) {
    assert(c->in_len <= AMQP__IN_CAP_BYTES);
    if (c->in_pump) return; /* an answer from inside a backend call */
    c->in_pump = 1;
    size_t pos = 0;
    /* Every round consumes >= 8 bytes or stops. */
    for (size_t round = 0; round <= AMQP__IN_CAP_BYTES / 8; round++) {
        if (c->state == AMQP_CONN_S_CLOSED) {
            amqp__release_all(c); /* no-op unless a send overflowed */
            pos = c->in_len;
            break;
        }
        if (c->state == AMQP_CONN_S_HEADER) {
            size_t used = amqp__pump_header(c);
            if (used == 0) break;
            pos += used;
            continue;
        }
        amqp_frame_t f;
        int rc = amqp_frame_parse(c->in + pos, c->in_len - pos, c->frame_max, &f);
        if (rc == 0) break;
        if (rc < 0) {
            amqp__conn_error(c, AMQP_REPLY_FRAME_ERROR,
                             rc == AMQP_E_FRAME_SIZE ? "frame too large"
                             : rc == AMQP_E_FRAME_END ? "bad frame end" : "bad frame type",
                             0);
            /* The stream is unframeable from here: nothing after it can be
             * trusted, not even a close-ok. Flush the close and hang up. */
            amqp__die(c);
            pos = c->in_len;
            break;
        }
        if (!amqp__may_dispatch(c, &f)) break;
        amqp__frame(c, &f);
        pos += (size_t)rc;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    c->in_pump = 0;
}

/* ---- public API -------------------------------------------------------- */

amqp_conn_t *amqp_conn_new(const amqp_conn_config_t *cfg, const amqp_backend_t *be) {
    assert(cfg != NULL && be != NULL);
    if (cfg->users_count > AMQP_CONN_USERS_MAX) return NULL;
    if (cfg->users_count && !cfg->users) return NULL;
    if (cfg->frame_max && (cfg->frame_max < AMQP_FRAME_MIN_SIZE ||
                           cfg->frame_max > AMQP_FRAME_MAX_DEFAULT))
        return NULL;
    amqp_conn_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->in = malloc(AMQP__IN_CAP_BYTES);
    if (!c->in) {
        free(c);
        return NULL;
    }
    c->cfg = *cfg;
    c->be = *be;
    if (!c->cfg.body_size_max || c->cfg.body_size_max > AMQP_CONN_BODY_SIZE_MAX)
        c->cfg.body_size_max = AMQP_CONN_BODY_SIZE_MAX;
    c->frame_max = cfg->frame_max ? cfg->frame_max : AMQP_FRAME_MAX_DEFAULT;
    c->channel_max = cfg->channel_max ? cfg->channel_max : AMQP_CONN_CHANNEL_MAX_DEFAULT;
    if (c->channel_max > AMQP_CONN_CHANNELS_MAX) c->channel_max = AMQP_CONN_CHANNELS_MAX;
    c->state = AMQP_CONN_S_HEADER;
    return c;
}

void amqp_conn_free(amqp_conn_t *c) {
    if (!c) return;
    amqp__notify_closed(c);
    amqp__release_all(c);
    free(c->in);
    free(c->out);
    free(c);
}

size_t amqp_conn_feed(amqp_conn_t *c, const uint8_t *bytes, size_t len) {
    assert(c != NULL);
    assert(bytes != NULL || len == 0);
    if (c->state == AMQP_CONN_S_CLOSED) return len;
    if (len) c->rx_seen = 1;
    size_t taken = 0;
    /* Each round either fills the buffer or drains it; bounded by len. */
    for (size_t round = 0; round <= len / 8 + 2 && taken < len; round++) {
        size_t room = AMQP__IN_CAP_BYTES - c->in_len;
        size_t n = len - taken < room ? len - taken : room;
        if (n) memcpy(c->in + c->in_len, bytes + taken, n);
        c->in_len += n;
        taken += n;
        size_t before = c->in_len;
        amqp__pump(c);
        if (c->state == AMQP_CONN_S_CLOSED) return len;
        if (n == 0 && c->in_len == before) break; /* waiting: keep the rest */
    }
    return taken;
}

size_t amqp_conn_output(const amqp_conn_t *c, const uint8_t **bytes) {
    assert(c != NULL && bytes != NULL);
    *bytes = c->out;
    return c->out_len;
}

void amqp_conn_output_consume(amqp_conn_t *c, size_t n) {
    assert(c != NULL);
    assert(n <= c->out_len);
    if (n == 0) return;
    memmove(c->out, c->out + n, c->out_len - n);
    c->out_len -= n;
    c->last_cf_valid = 0; /* sent frames cannot change any more */
    amqp__pump(c); /* below the high mark again: buffered input may go on */
}

uint64_t amqp_conn_tick(amqp_conn_t *c, uint64_t now_ns) {
    assert(c != NULL);
    if (!c->time_known) {
        c->time_known = 1;
        c->started_ns = c->last_rx_ns = c->last_tx_ns = now_ns;
    }
    assert(now_ns >= c->started_ns);
    if (c->rx_seen) c->last_rx_ns = now_ns;
    if (c->tx_seen) c->last_tx_ns = now_ns;
    c->rx_seen = c->tx_seen = 0;
    if (c->state == AMQP_CONN_S_CLOSED) return 0;
    if (c->state == AMQP_CONN_S_CLOSING) {
        if (!c->closing_time_known) {
            c->closing_time_known = 1;
            c->closing_ns = now_ns;
        }
        if (now_ns - c->closing_ns >= AMQP_CONN_CLOSE_TIMEOUT_NS) {
            amqp__die(c);
            return 0;
        }
        return c->closing_ns + AMQP_CONN_CLOSE_TIMEOUT_NS;
    }
    if (c->state != AMQP_CONN_S_RUNNING) {
        if (now_ns - c->started_ns >= AMQP_CONN_HANDSHAKE_TIMEOUT_NS) {
            amqp__die(c);
            return 0;
        }
        return c->started_ns + AMQP_CONN_HANDSHAKE_TIMEOUT_NS;
    }
    if (c->heartbeat_s == 0) return 0;
    uint64_t hb_ns = (uint64_t)c->heartbeat_s * AMQP__NS_PER_S;
    if (now_ns - c->last_rx_ns >= 2 * hb_ns) { /* two missed heartbeats */
        amqp__die(c);
        return 0;
    }
    if (now_ns - c->last_tx_ns >= hb_ns / 2 && amqp__out_reserve(c, 8) == 0) {
        static const uint8_t hb[8] = {AMQP_FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, AMQP_FRAME_END};
        memcpy(c->out + c->out_len, hb, sizeof hb);
        c->out_len += sizeof hb;
        c->last_tx_ns = now_ns;
    }
    uint64_t a = c->last_rx_ns + 2 * hb_ns, b = c->last_tx_ns + hb_ns / 2;
    return a < b ? a : b;
}

enum amqp_conn_state amqp_conn_state(const amqp_conn_t *c) { return c->state; }
uint16_t amqp_conn_close_code(const amqp_conn_t *c) { return c->close_code; }
uint32_t amqp_conn_frame_max(const amqp_conn_t *c) { return c->frame_max; }
uint16_t amqp_conn_heartbeat_s(const amqp_conn_t *c) { return c->heartbeat_s; }
const char *amqp_conn_user(const amqp_conn_t *c) { return c->user; }

size_t amqp_conn_unacked(const amqp_conn_t *c, uint16_t n) {
    const amqp__channel_t *ch = amqp__ch_open(c, n);
    return ch ? ch->un_live : 0;
}

/* ---- backend answers --------------------------------------------------- */

/* Take the pending op `req` out of the table into *out. */
static int amqp__answer_take(amqp_conn_t *c, uint64_t req, amqp__pending_t *out) {
    amqp__pending_t *p = amqp__pend_find(c, req);
    if (!p || c->state != AMQP_CONN_S_RUNNING || !amqp__ch_open(c, p->channel))
        return IO_ENOENT;
    *out = *p;
    p->used = 0;
    return 0;
}

static void amqp__answered(amqp_conn_t *c) { amqp__pump(c); }

int amqp_conn_op_ok(amqp_conn_t *c, uint64_t req) {
    assert(c != NULL);
    amqp__pending_t *p = amqp__pend_find(c, req);
    if (p && (p->method == AMQP_QUEUE_DECLARE || p->method == AMQP_QUEUE_PURGE ||
              p->method == AMQP_QUEUE_DELETE || p->method == AMQP_BASIC_GET))
        return IO_EINVAL;
    amqp__pending_t op;
    int rc = amqp__answer_take(c, req, &op);
    if (rc != 0) return rc;
    amqp__channel_t *ch = c->ch[op.channel];
    amqp_bytes_t tag = amqp__b(op.name, op.name_len);
    amqp__consumer_t *k = NULL;
    amqp_method_t m = {0};
    switch (op.method) {
    case AMQP_EXCHANGE_DECLARE: m.id = AMQP_EXCHANGE_DECLARE_OK; break;
    case AMQP_EXCHANGE_DELETE: m.id = AMQP_EXCHANGE_DELETE_OK; break;
    case AMQP_EXCHANGE_BIND: m.id = AMQP_EXCHANGE_BIND_OK; break;
    case AMQP_EXCHANGE_UNBIND: m.id = AMQP_EXCHANGE_UNBIND_OK; break;
    case AMQP_QUEUE_BIND: m.id = AMQP_QUEUE_BIND_OK; break;
    case AMQP_QUEUE_UNBIND: m.id = AMQP_QUEUE_UNBIND_OK; break;
    case AMQP_BASIC_QOS: m.id = AMQP_BASIC_QOS_OK; break;
    case AMQP_CONFIRM_SELECT: m.id = AMQP_CONFIRM_SELECT_OK; break;
    case AMQP_BASIC_CONSUME:
        k = amqp__consumer_find(ch, tag);
        if (k) k->state = AMQP__CONSUMER_ACTIVE;
        m.id = AMQP_BASIC_CONSUME_OK;
        m.u.basic_consume_ok.consumer_tag = tag;
        break;
    case AMQP_BASIC_CANCEL:
        k = amqp__consumer_find(ch, tag);
        if (k) memset(k, 0, sizeof *k);
        m.id = AMQP_BASIC_CANCEL_OK;
        m.u.basic_cancel_ok.consumer_tag = tag;
        break;
    default: assert(0 && "pending op without a plain -ok"); return IO_EINVAL;
    }
    if (!op.nowait) (void)amqp__send_method(c, op.channel, &m);
    amqp__answered(c);
    return 0;
}

int amqp_conn_queue_ok(amqp_conn_t *c, uint64_t req, uint32_t message_count,
                       uint32_t consumer_count) {
    assert(c != NULL);
    amqp__pending_t *p = amqp__pend_find(c, req);
    if (p && p->method != AMQP_QUEUE_DECLARE && p->method != AMQP_QUEUE_PURGE &&
        p->method != AMQP_QUEUE_DELETE)
        return IO_EINVAL;
    amqp__pending_t op;
    int rc = amqp__answer_take(c, req, &op);
    if (rc != 0) return rc;
    amqp_method_t m = {0};
    if (op.method == AMQP_QUEUE_DECLARE) {
        m.id = AMQP_QUEUE_DECLARE_OK;
        m.u.queue_declare_ok.queue = amqp__b(op.name, op.name_len);
        m.u.queue_declare_ok.message_count = message_count;
        m.u.queue_declare_ok.consumer_count = consumer_count;
    } else if (op.method == AMQP_QUEUE_PURGE) {
        m.id = AMQP_QUEUE_PURGE_OK;
        m.u.queue_purge_ok.message_count = message_count;
    } else {
        m.id = AMQP_QUEUE_DELETE_OK;
        m.u.queue_delete_ok.message_count = message_count;
    }
    if (!op.nowait) (void)amqp__send_method(c, op.channel, &m);
    amqp__answered(c);
    return 0;
}

int amqp_conn_op_fail(amqp_conn_t *c, uint64_t req, uint16_t reply_code,
                      const char *text) {
    assert(c != NULL);
    if (reply_code < 300) return IO_EINVAL;
    amqp__pending_t op;
    int rc = amqp__answer_take(c, req, &op);
    if (rc != 0) return rc;
    amqp__channel_t *ch = c->ch[op.channel];
    if (op.method == AMQP_BASIC_CONSUME) { /* the consumer never started */
        amqp__consumer_t *k = amqp__consumer_find(ch, amqp__b(op.name, op.name_len));
        if (k) memset(k, 0, sizeof *k);
    }
    amqp__ch_error(c, op.channel, reply_code, text, op.method);
    amqp__answered(c);
    return 0;
}

int amqp_conn_get_ok(amqp_conn_t *c, uint64_t req, uint64_t msg_ref, int redelivered,
                     amqp_bytes_t exchange, amqp_bytes_t routing_key,
                     uint32_t message_count, const amqp_basic_props_t *props,
                     amqp_bytes_t body, uint64_t *delivery_tag) {
    assert(c != NULL);
    amqp__pending_t *p = amqp__pend_find(c, req);
    if (!p || c->state != AMQP_CONN_S_RUNNING) return IO_ENOENT;
    if (p->method != AMQP_BASIC_GET) return IO_EINVAL;
    amqp__channel_t *ch = amqp__ch_open(c, p->channel);
    if (!ch) return IO_ENOENT;
    if (exchange.len > AMQP_SHORTSTR_SIZE_MAX || routing_key.len > AMQP_SHORTSTR_SIZE_MAX)
        return IO_EINVAL;
    if (c->out_len >= AMQP_CONN_OUTPUT_HIGH_BYTES) return IO_ENOMEM;
    if (!p->no_ack && ch->un_live >= AMQP_CONN_UNACKED_MAX) return IO_ENOMEM;
    amqp_method_t m = {.id = AMQP_BASIC_GET_OK};
    m.u.basic_get_ok.delivery_tag = ch->last_delivery_tag + 1;
    m.u.basic_get_ok.redelivered = redelivered ? 1 : 0;
    m.u.basic_get_ok.exchange = exchange;
    m.u.basic_get_ok.routing_key = routing_key;
    m.u.basic_get_ok.message_count = message_count;
    int rc = amqp__send_content(c, p->channel, &m, props, body);
    if (rc != 0) return rc;
    ch->last_delivery_tag++;
    if (!p->no_ack) {
        rc = amqp__un_push(ch, ch->last_delivery_tag, msg_ref);
        assert(rc == 0);
    }
    if (delivery_tag) *delivery_tag = ch->last_delivery_tag;
    p->used = 0;
    amqp__answered(c);
    return 0;
}

int amqp_conn_get_empty(amqp_conn_t *c, uint64_t req) {
    assert(c != NULL);
    amqp__pending_t *p = amqp__pend_find(c, req);
    if (p && p->method != AMQP_BASIC_GET) return IO_EINVAL;
    amqp__pending_t op;
    int rc = amqp__answer_take(c, req, &op);
    if (rc != 0) return rc;
    amqp_method_t m = {.id = AMQP_BASIC_GET_EMPTY};
    (void)amqp__send_method(c, op.channel, &m);
    amqp__answered(c);
    return 0;
}

/* ---- backend pushes ---------------------------------------------------- */

int amqp_conn_deliver(amqp_conn_t *c, uint16_t n, amqp_bytes_t consumer_tag,
                      uint64_t msg_ref, int redelivered, amqp_bytes_t exchange,
                      amqp_bytes_t routing_key, const amqp_basic_props_t *props,
                      amqp_bytes_t body, uint64_t *delivery_tag) {
    assert(c != NULL);
    if (c->state != AMQP_CONN_S_RUNNING) return IO_ECANCELED;
    amqp__channel_t *ch = amqp__ch_open(c, n);
    if (!ch) return IO_ENOENT;
    amqp__consumer_t *k = amqp__consumer_find(ch, consumer_tag);
    if (!k || (k->state != AMQP__CONSUMER_ACTIVE && k->state != AMQP__CONSUMER_CANCELLING))
        return IO_ENOENT;
    if (exchange.len > AMQP_SHORTSTR_SIZE_MAX || routing_key.len > AMQP_SHORTSTR_SIZE_MAX)
        return IO_EINVAL;
    if (c->out_len >= AMQP_CONN_OUTPUT_HIGH_BYTES) return IO_ENOMEM;
    if (!k->no_ack && ch->un_live >= AMQP_CONN_UNACKED_MAX) return IO_ENOMEM;
    amqp_method_t m = {.id = AMQP_BASIC_DELIVER};
    m.u.basic_deliver.consumer_tag = consumer_tag;
    m.u.basic_deliver.delivery_tag = ch->last_delivery_tag + 1;
    m.u.basic_deliver.redelivered = redelivered ? 1 : 0;
    m.u.basic_deliver.exchange = exchange;
    m.u.basic_deliver.routing_key = routing_key;
    int rc = amqp__send_content(c, n, &m, props, body);
    if (rc != 0) return rc;
    ch->last_delivery_tag++;
    if (!k->no_ack) {
        rc = amqp__un_push(ch, ch->last_delivery_tag, msg_ref);
        assert(rc == 0 || rc == IO_ENOMEM);
        if (rc != 0) { /* realloc failed after sending: cannot track, so die */
            amqp__die(c);
            return rc;
        }
    }
    if (delivery_tag) *delivery_tag = ch->last_delivery_tag;
    return 0;
}

#define AMQP__CONFIRM_FRAME_SIZE 21u /* header 7, class+method 4, tag 8, bits 1, end 1 */

/* Send a confirm. covers_head: every publish up to `seq` is confirmed once
 * this frame is read, so a later confirm of the next lowest publish may be
 * merged into it. */
static void amqp__send_confirm(amqp_conn_t *c, uint16_t n, uint64_t seq, int multiple,
                               int ack, int covers_head) {
    /* Only the very next sequence number: then the merged frame cannot be
     * read as covering a publish confirmed otherwise. */
    if (covers_head && c->last_cf_valid && c->last_cf_channel == n &&
        c->last_cf_ack == (ack ? 1 : 0) && seq == c->last_cf_tag + 1 &&
        c->last_cf_off + AMQP__CONFIRM_FRAME_SIZE == c->out_len) {
        uint8_t *f = c->out + c->last_cf_off;
        c->last_cf_tag = seq;
        for (int i = 0; i < 8; i++) f[11 + i] = (uint8_t)(seq >> (56 - 8 * i));
        f[19] |= 1u; /* multiple */
        return;
    }
    amqp_method_t m = {0};
    if (ack) {
        m.id = AMQP_BASIC_ACK;
        m.u.basic_ack.delivery_tag = seq;
        m.u.basic_ack.multiple = multiple ? 1 : 0;
    } else {
        m.id = AMQP_BASIC_NACK;
        m.u.basic_nack.delivery_tag = seq;
        m.u.basic_nack.multiple = multiple ? 1 : 0;
        m.u.basic_nack.requeue = 0;
    }
    const size_t off = c->out_len;
    if (amqp__send_method(c, n, &m) != 0) return;
    assert(c->out_len - off == AMQP__CONFIRM_FRAME_SIZE);
    c->last_cf_valid = covers_head;
    c->last_cf_off = off;
    c->last_cf_channel = n;
    c->last_cf_ack = ack ? 1 : 0;
    c->last_cf_tag = seq;
}

int amqp_conn_confirm(amqp_conn_t *c, uint16_t n, uint64_t seq, int multiple, int ack) {
    assert(c != NULL);
    if (c->state != AMQP_CONN_S_RUNNING) return IO_ECANCELED;
    amqp__channel_t *ch = amqp__ch_open(c, n);
    if (!ch || !(ch->confirm_mode || ch->tx_committing)) return IO_ENOENT;
    /* Targets: unsent entries in [head, last) with seq <= `seq`. */
    size_t first = SIZE_MAX, last = ch->cf_head, targets = 0, holes = 0;
    for (size_t i = ch->cf_head; i < ch->cf_end && ch->cf[i].seq <= seq; i++) {
        last = i + 1;
        if (ch->cf[i].sent) { holes++; continue; }
        if (!multiple && ch->cf[i].seq != seq) continue;
        if (first == SIZE_MAX) first = i;
        targets++;
    }
    if (targets == 0) return IO_ENOENT;
    if (ch->tx_mode) {
        /* A committed publish: no basic.ack in tx mode, commit-ok instead. */
        for (size_t i = first; i < last; i++) {
            if (ch->cf[i].sent || (!multiple && ch->cf[i].seq != seq)) continue;
            ch->cf[i].sent = 1;
            ch->cf_live--;
        }
        if (!ack) ch->tx_failed = 1;
    } else if (multiple && targets > 1 && holes == 0) {
        /* Every unconfirmed seq up to the last target, none confirmed in
         * between: one frame says it all. */
        uint64_t top = ch->cf[last - 1].seq;
        const int head = first == ch->cf_head;
        for (size_t i = first; i < last; i++) ch->cf[i].sent = 1;
        ch->cf_live -= targets;
        amqp__send_confirm(c, n, top, 1, ack, head);
    } else {
        for (size_t i = first; i < last; i++) {
            if (ch->cf[i].sent || (!multiple && ch->cf[i].seq != seq)) continue;
            /* the lowest unconfirmed one (only holes before it)? */
            int head = 1;
            for (size_t j = ch->cf_head; j < i && head; j++) head = ch->cf[j].sent;
            ch->cf[i].sent = 1;
            ch->cf_live--;
            amqp__send_confirm(c, n, ch->cf[i].seq, 0, ack, head);
        }
    }
    while (ch->cf_head < ch->cf_end && ch->cf[ch->cf_head].sent) ch->cf_head++;
    if (ch->cf_head == ch->cf_end) ch->cf_head = ch->cf_end = 0;
    amqp__tx_commit_check(c, n, ch);
    amqp__pump(c); /* the confirm window may have opened */
    return 0;
}

int amqp_conn_return(amqp_conn_t *c, uint16_t n, uint16_t reply_code,
                     const char *reply_text, amqp_bytes_t exchange,
                     amqp_bytes_t routing_key, const amqp_basic_props_t *props,
                     amqp_bytes_t body) {
    assert(c != NULL);
    if (c->state != AMQP_CONN_S_RUNNING) return IO_ECANCELED;
    if (!amqp__ch_open(c, n)) return IO_ENOENT;
    if (exchange.len > AMQP_SHORTSTR_SIZE_MAX || routing_key.len > AMQP_SHORTSTR_SIZE_MAX)
        return IO_EINVAL;
    if (c->out_len >= AMQP_CONN_OUTPUT_HIGH_BYTES) return IO_ENOMEM;
    amqp_method_t m = {.id = AMQP_BASIC_RETURN};
    m.u.basic_return.reply_code = reply_code;
    m.u.basic_return.reply_text = amqp__text(reply_text);
    m.u.basic_return.exchange = exchange;
    m.u.basic_return.routing_key = routing_key;
    return amqp__send_content(c, n, &m, props, body);
}

int amqp_conn_cancel_consumer(amqp_conn_t *c, uint16_t n, amqp_bytes_t consumer_tag) {
    assert(c != NULL);
    if (c->state != AMQP_CONN_S_RUNNING) return IO_ENOENT;
    amqp__channel_t *ch = amqp__ch_open(c, n);
    if (!ch) return IO_ENOENT;
    amqp__consumer_t *k = amqp__consumer_find(ch, consumer_tag);
    if (!k) return IO_ENOENT;
    amqp_method_t m = {.id = AMQP_BASIC_CANCEL};
    m.u.basic_cancel.consumer_tag = amqp__b(k->tag, k->tag_len);
    m.u.basic_cancel.nowait = 1;
    (void)amqp__send_method(c, n, &m);
    memset(k, 0, sizeof *k);
    return 0;
}

int amqp_conn_channel_error(amqp_conn_t *c, uint16_t n, uint16_t reply_code,
                            const char *text, uint32_t method_id) {
    assert(c != NULL);
    if (reply_code < 300) return IO_EINVAL;
    if (c->state != AMQP_CONN_S_RUNNING || !amqp__ch_open(c, n)) return IO_ENOENT;
    amqp__ch_error(c, n, reply_code, text, method_id);
    amqp__pump(c);
    return 0;
}

int amqp_conn_shutdown(amqp_conn_t *c, uint16_t reply_code, const char *text) {
    assert(c != NULL);
    if (c->state >= AMQP_CONN_S_CLOSING) return IO_ECANCELED;
    if (c->state == AMQP_CONN_S_HEADER) {
        amqp__die(c);
        return 0;
    }
    amqp__conn_error(c, reply_code >= 300 ? reply_code : AMQP_REPLY_CONNECTION_FORCED,
                     text, 0);
    return 0;
}
