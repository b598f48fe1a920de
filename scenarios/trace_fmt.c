/*
 * scenarios/trace_fmt.c — decode one simulator event into a trace line
 * (format: docs/trace.md) and follow one message through them.
 */
#include "scenarios/trace_fmt.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/node.h"
#include "broker/raft.h"
#include "broker/sm.h"
#include "broker/tokens.h"
#include "broker/wire.h"
#include "sim/sim.h"

/* On-disk log record header (broker/log.h): u32 payload_len | u32 crc32c |
 * u64 term | u64 index | u8 type, then the payload. */
#define TF__RECORD_HEADER_SIZE 25u
#define TF__REQUESTS_MAX 64u /* publish attempts of the focus message followed */

/* ---- fields of one line ------------------------------------------------------ */

typedef struct tf__field {
    const char *key; /* static */
    bool number;     /* JSON: emit unquoted (value is decimal digits) */
    char value[TRACE_FMT_VALUE_MAX];
} tf__field_t;

typedef struct tf__line {
    char event[48];
    uint32_t count;
    tf__field_t f[TRACE_FMT_FIELDS_MAX];
} tf__line_t;

static void tf__add(tf__line_t *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tf__add(tf__line_t *l, const char *key, const char *fmt, ...) {
    if (l->count == TRACE_FMT_FIELDS_MAX) return;
    tf__field_t *f = &l->f[l->count++];
    f->key = key;
    f->number = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->value, sizeof f->value, fmt, ap);
    va_end(ap);
}

static void tf__num(tf__line_t *l, const char *key, uint64_t v) {
    if (l->count == TRACE_FMT_FIELDS_MAX) return;
    tf__field_t *f = &l->f[l->count++];
    f->key = key;
    f->number = true;
    snprintf(f->value, sizeof f->value, "%" PRIu64, v);
}

static void tf__id(tf__line_t *l, const char *key, uint64_t id) {
    tf__add(l, key, "%#" PRIx64, id); /* as the checkers print ids */
}

/* ---- state --------------------------------------------------------------------- */

typedef struct tf__host {
    uint64_t written_last; /* highest log index in the last log write */
    uint64_t durable;      /* written_last at the last log fsync */
    /* the focus message in this host's log */
    uint64_t f_index, f_term;
    bool f_durable, f_committed, f_overwritten, f_lost;
    uint64_t f_over_term; /* the term that overwrote it */
} tf__host_t;

typedef struct tf__delivery {
    uint32_t client, node;
    uint64_t tag;
    uint64_t session; /* of the first ack that matched; 0 = not yet known */
} tf__delivery_t;

struct trace_fmt {
    trace_fmt_kind_t kind;
    uint32_t replicas;
    tf__host_t hosts[TRACE_FMT_HOSTS_MAX];
    wire_entry_t entries[WIRE_ENTRIES_MAX];
    /* focus */
    uint64_t focus;
    bool have_key;
    uint64_t producer, sequence;
    struct { uint32_t client; uint64_t request; } requests[TF__REQUESTS_MAX];
    uint32_t requests_count;
    tf__delivery_t deliveries[TRACE_FMT_TAGS_MAX];
    uint32_t deliveries_count;
    uint64_t attempts, confirms, nacked, not_leader, delivered, acked, requeued, rejected;
    uint64_t lost_in_net;
    char last[TRACE_FMT_LINE_MAX];
    /* context lines before the first touch, oldest first from ring_next */
    char ring[TRACE_FMT_CONTEXT_MAX][TRACE_FMT_LINE_MAX];
    uint32_t ring_next, ring_count;
};

int trace_fmt_parse(const char *name, trace_fmt_kind_t *out) {
    if (name == NULL || out == NULL) return -1;
    if (strcmp(name, "text") == 0) *out = TRACE_FMT_TEXT;
    else if (strcmp(name, "json") == 0) *out = TRACE_FMT_JSON;
    else return -1;
    return 0;
}

trace_fmt_t *trace_fmt_new(uint32_t replicas, trace_fmt_kind_t kind) {
    trace_fmt_t *tf = calloc(1, sizeof *tf);
    if (tf == NULL) return NULL;
    tf->kind = kind;
    tf->replicas = replicas;
    return tf;
}

void trace_fmt_free(trace_fmt_t *tf) { free(tf); }

void trace_fmt_focus(trace_fmt_t *tf, uint64_t message_id) {
    assert(tf != NULL);
    tf->focus = message_id;
}

static void tf__host_name(const trace_fmt_t *tf, uint32_t host, char *buf, size_t cap) {
    if (host == SIM_ANY) snprintf(buf, cap, "-");
    else if (host < tf->replicas) snprintf(buf, cap, "n%" PRIu32, host);
    else snprintf(buf, cap, "c%" PRIu32, host - tf->replicas);
}

static tf__host_t *tf__host(trace_fmt_t *tf, uint32_t host) {
    return host < TRACE_FMT_HOSTS_MAX ? &tf->hosts[host] : NULL;
}

/* ---- rendering ------------------------------------------------------------------- */

typedef struct tf__out {
    char *buf;
    size_t cap, used;
} tf__out_t;

static void tf__put(tf__out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tf__put(tf__out_t *o, const char *fmt, ...) {
    if (o->used + 1 >= o->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->used, o->cap - o->used, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    o->used = o->used + (size_t)n < o->cap ? o->used + (size_t)n : o->cap - 1;
}

/* JSON string body (RFC 8259 escapes) or a text value quoted when needed. */
static void tf__put_json_str(tf__out_t *o, const char *s) {
    tf__put(o, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') tf__put(o, "\\%c", *p);
        else if (*p < 0x20) tf__put(o, "\\u%04x", *p);
        else tf__put(o, "%c", *p);
    }
    tf__put(o, "\"");
}

static void tf__put_text_value(tf__out_t *o, const char *s) {
    if (s[0] != '\0' && strpbrk(s, " \"=\\\t\n") == NULL) {
        tf__put(o, "%s", s);
        return;
    }
    tf__put(o, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') tf__put(o, "\\%c", *p);
        else if (*p < 0x20) tf__put(o, "\\x%02x", *p);
        else tf__put(o, "%c", *p);
    }
    tf__put(o, "\"");
}

static size_t tf__render(const trace_fmt_t *tf, uint64_t time_ns, uint32_t host,
                         const tf__line_t *l, char *buf, size_t cap) {
    tf__out_t o = {buf, cap, 0};
    char who[16];
    tf__host_name(tf, host, who, sizeof who);
    const uint64_t s = time_ns / 1000000000u, ns = time_ns % 1000000000u;
    if (tf->kind == TRACE_FMT_JSON) {
        tf__put(&o, "{\"t_ns\":%" PRIu64 ",\"host\":\"%s\",\"event\":", time_ns, who);
        tf__put_json_str(&o, l->event);
        for (uint32_t i = 0; i < l->count; i++) {
            tf__put(&o, ",\"%s\":", l->f[i].key);
            if (l->f[i].number) tf__put(&o, "%s", l->f[i].value);
            else tf__put_json_str(&o, l->f[i].value);
        }
        tf__put(&o, "}");
    } else {
        tf__put(&o, "%" PRIu64 ".%09" PRIu64 " %s %s", s, ns, who, l->event);
        for (uint32_t i = 0; i < l->count; i++) {
            tf__put(&o, " %s=", l->f[i].key);
            tf__put_text_value(&o, l->f[i].value);
        }
    }
    /* A cut line still ends in a newline, so the next one starts fresh. */
    if (o.used + 1 >= cap && cap >= 2) o.used = cap - 2;
    buf[o.used++] = '\n';
    buf[o.used] = '\0';
    return o.used;
}

/* ---- generic key=value details ------------------------------------------------------ */

static bool tf__digits(const char *s) {
    if (*s == '-') s++;
    if (*s == '\0') return false;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* Keys must outlive the line: detail tokens are copied into static-size
 * storage of the line (the key points into the caller's copy). */
static void tf__add_detail(tf__line_t *l, char *copy) {
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok) {
            tf__add(l, "why", "%s", tok);
            continue;
        }
        *eq = '\0';
        if (l->count == TRACE_FMT_FIELDS_MAX) return;
        tf__field_t *f = &l->f[l->count++];
        f->key = tok;
        snprintf(f->value, sizeof f->value, "%s", eq + 1);
        f->number = tf__digits(eq + 1) && eq[1] != '-';
    }
}

/* ---- the focus message ---------------------------------------------------------------- */

static bool tf__focus_request(const trace_fmt_t *tf, uint32_t client, uint64_t request) {
    for (uint32_t i = 0; i < tf->requests_count; i++)
        if (tf->requests[i].client == client && tf->requests[i].request == request) return true;
    return false;
}

/* Delivery tags restart in every session: an ack names the focus delivery
 * if its tag matches and its session is the one the delivery's first ack
 * used (DELIVER itself carries no session). */
static bool tf__focus_tag(trace_fmt_t *tf, uint32_t client, uint32_t node, uint64_t tag,
                          bool multiple, uint64_t session) {
    for (uint32_t i = 0; i < tf->deliveries_count; i++) {
        tf__delivery_t *d = &tf->deliveries[i];
        if (d->client != client || d->node != node) continue;
        if (d->tag != tag && !(multiple && d->tag <= tag)) continue;
        if (d->session != 0 && session != 0 && d->session != session) continue;
        if (d->session == 0) d->session = session;
        return true;
    }
    return false;
}

/* ---- log entries (AppendEntries batches and log writes) ---------------------------------- */

typedef struct tf__cmds {
    uint32_t publish_count, settle_count;
    char publish[TRACE_FMT_VALUE_MAX], settle[TRACE_FMT_VALUE_MAX];
    bool focus;
} tf__cmds_t;

static void tf__list_id(char *list, uint32_t *count, uint64_t id) {
    size_t used = strlen(list);
    if (*count < TRACE_FMT_IDS_SHOWN_MAX)
        snprintf(list + used, TRACE_FMT_VALUE_MAX - used, "%s%#" PRIx64, *count ? "," : "", id);
    (*count)++;
}

/* Note the message ids one entry carries; returns the command's message id
 * (0 = none) and whether it is a publish. */
static uint64_t tf__entry(const trace_fmt_t *tf, uint8_t type, const uint8_t *payload,
                          size_t len, tf__cmds_t *c, bool *is_publish) {
    *is_publish = false;
    broker_sm_cmd_t cmd;
    if (type != RAFT_ENTRY_COMMAND || broker_sm_cmd_decode(payload, len, &cmd) != 0) return 0;
    if (cmd.type == SM_CMD_SETTLE || cmd.type == SM_CMD_RETURN ||
        cmd.type == SM_CMD_REJECT_DISCARD) {
        /* The state machine's own message number, not the client's id. */
        tf__list_id(c->settle, &c->settle_count, cmd.message_id);
        return 0;
    }
    uint64_t id = 0;
    const uint8_t *props = NULL, *body = NULL;
    size_t props_len = 0, body_len = 0;
    if (cmd.type != SM_CMD_PUBLISH ||
        broker_envelope_decode(cmd.body, cmd.body_len, &id, &props, &props_len, &body,
                               &body_len) != 0)
        return 0;
    *is_publish = true;
    tf__list_id(c->publish, &c->publish_count, id);
    if (tf->focus != 0 && id == tf->focus) c->focus = true;
    return id;
}

static void tf__add_cmds(tf__line_t *l, const tf__cmds_t *c) {
    if (c->publish_count > 0)
        tf__add(l, "publish", "%s%s", c->publish,
                c->publish_count > TRACE_FMT_IDS_SHOWN_MAX ? ",..." : "");
    if (c->settle_count > 0)
        tf__add(l, "settle_sm", "%s%s", c->settle,
                c->settle_count > TRACE_FMT_IDS_SHOWN_MAX ? ",..." : "");
}

/* ---- wire messages ------------------------------------------------------------------------ */

static void tf__bytes_field(tf__line_t *l, const char *key, wire_bytes_t b) {
    tf__add(l, key, "%.*s", (int)(b.len < 200 ? b.len : 200), (const char *)b.ptr);
}

static void tf__peer_msg(trace_fmt_t *tf, const wire_msg_t *m, uint32_t from, uint32_t to,
                         bool arrived, tf__line_t *l, int *touches) {
    switch (m->type) {
    case WIRE_MSG_REQUEST_VOTE: {
        const wire_request_vote_t *v = &m->request_vote;
        tf__num(l, "term", v->term);
        tf__num(l, "candidate", v->candidate_id);
        tf__num(l, "last_index", v->last_log_index);
        tf__num(l, "last_term", v->last_log_term);
        tf__num(l, "pre_vote", v->pre_vote);
        break;
    }
    case WIRE_MSG_VOTE_RESPONSE: {
        const wire_vote_response_t *v = &m->vote_response;
        tf__num(l, "term", v->term);
        tf__num(l, "voter", v->voter_id);
        tf__num(l, "granted", v->granted);
        tf__num(l, "pre_vote", v->pre_vote);
        break;
    }
    case WIRE_MSG_APPEND_ENTRIES: {
        const wire_append_entries_t *a = &m->append_entries;
        tf__num(l, "term", a->term);
        tf__num(l, "leader", a->leader_id);
        tf__num(l, "prev_index", a->prev_log_index);
        tf__num(l, "prev_term", a->prev_log_term);
        tf__num(l, "commit", a->leader_commit);
        tf__num(l, "entries", a->entry_count);
        if (a->entry_count > 0) {
            tf__num(l, "first", a->entries[0].index);
            tf__num(l, "last", a->entries[a->entry_count - 1].index);
            tf__num(l, "last_term", a->entries[a->entry_count - 1].term);
        }
        tf__cmds_t c = {0};
        for (uint32_t i = 0; i < a->entry_count; i++) {
            bool pub = false;
            (void)tf__entry(tf, a->entries[i].type, a->entries[i].payload.ptr,
                            a->entries[i].payload.len, &c, &pub);
        }
        tf__add_cmds(l, &c);
        if (c.focus) *touches = 1;
        /* The leader's commit index passing where the focus message sits. */
        tf__host_t *lh = tf__host(tf, from), *fh = tf__host(tf, to);
        if (arrived && tf->focus != 0) {
            if (lh != NULL && lh->f_index != 0 && !lh->f_overwritten && !lh->f_committed &&
                a->leader_commit >= lh->f_index) {
                lh->f_committed = true;
                tf__num(l, "focus_committed_at_leader", lh->f_index);
                *touches = 1;
            }
            if (fh != NULL && fh->f_index != 0 && !fh->f_overwritten && !fh->f_committed &&
                a->leader_commit >= fh->f_index && a->prev_log_index >= fh->f_index) {
                fh->f_committed = true;
                tf__num(l, "focus_committed_here", fh->f_index);
                *touches = 1;
            }
        }
        break;
    }
    case WIRE_MSG_APPEND_RESPONSE: {
        const wire_append_response_t *a = &m->append_response;
        tf__num(l, "term", a->term);
        tf__num(l, "follower", a->follower_id);
        tf__num(l, "success", a->success);
        tf__num(l, "match", a->match_index);
        if (!a->success) {
            tf__num(l, "conflict_index", a->conflict_index);
            tf__num(l, "conflict_term", a->conflict_term);
        }
        break;
    }
    case WIRE_MSG_INSTALL_SNAPSHOT: {
        const wire_install_snapshot_t *s = &m->install_snapshot;
        tf__num(l, "term", s->term);
        tf__num(l, "leader", s->leader_id);
        tf__num(l, "last_index", s->last_included_index);
        tf__num(l, "last_term", s->last_included_term);
        tf__num(l, "offset", s->offset);
        tf__num(l, "bytes", s->data.len);
        tf__num(l, "done", s->done);
        break;
    }
    case WIRE_MSG_SNAPSHOT_RESPONSE: {
        const wire_snapshot_response_t *s = &m->snapshot_response;
        tf__num(l, "term", s->term);
        tf__num(l, "follower", s->follower_id);
        tf__num(l, "last_index", s->last_included_index);
        tf__num(l, "next_offset", s->next_offset);
        tf__num(l, "success", s->success);
        break;
    }
    case WIRE_MSG_TIMEOUT_NOW:
        tf__num(l, "term", m->timeout_now.term);
        tf__num(l, "leader", m->timeout_now.leader_id);
        break;
    default:
        break;
    }
}

static void tf__client_msg(trace_fmt_t *tf, const wire_msg_t *m, uint32_t from, uint32_t to,
                           bool arrived, tf__line_t *l, int *touches) {
    switch (m->type) {
    case WIRE_MSG_PUBLISH: {
        const wire_publish_t *p = &m->publish;
        tf__id(l, "msg", p->message_id);
        tf__num(l, "producer", p->producer_id);
        tf__num(l, "seq", p->sequence);
        tf__num(l, "request", p->request_id);
        tf__bytes_field(l, "exchange", p->exchange);
        tf__bytes_field(l, "key", p->routing_key);
        tf__num(l, "persistent", p->persistent);
        tf__num(l, "bytes", p->body.len);
        if (tf->focus != 0 && p->message_id == tf->focus) {
            *touches = 1;
            tf->have_key = true;
            tf->producer = p->producer_id;
            tf->sequence = p->sequence;
            if (!tf__focus_request(tf, from, p->request_id) && tf->requests_count < TF__REQUESTS_MAX) {
                tf->requests[tf->requests_count].client = from;
                tf->requests[tf->requests_count++].request = p->request_id;
            }
            if (arrived) tf->attempts++;
        }
        break;
    }
    case WIRE_MSG_CONFIRM: {
        const wire_confirm_t *c = &m->confirm;
        tf__num(l, "producer", c->producer_id);
        tf__num(l, "seq", c->sequence);
        tf__num(l, "request", c->request_id);
        tf__num(l, "duplicate", c->duplicate);
        tf__num(l, "unroutable", c->unroutable);
        if (tf->have_key && c->producer_id == tf->producer && c->sequence == tf->sequence &&
            (tf->producer != 0 || tf__focus_request(tf, to, c->request_id))) {
            *touches = 1;
            tf__id(l, "msg", tf->focus);
            if (arrived) tf->confirms++;
        }
        break;
    }
    case WIRE_MSG_NACK_PUBLISH: {
        const wire_nack_publish_t *n = &m->nack_publish;
        tf__num(l, "producer", n->producer_id);
        tf__num(l, "seq", n->sequence);
        tf__num(l, "request", n->request_id);
        tf__add(l, "reason", "%s", wire_status_name(n->reason));
        if (tf->have_key && n->producer_id == tf->producer && n->sequence == tf->sequence &&
            (tf->producer != 0 || tf__focus_request(tf, to, n->request_id))) {
            *touches = 1;
            tf__id(l, "msg", tf->focus);
            if (arrived) tf->nacked++;
        }
        break;
    }
    case WIRE_MSG_NOT_LEADER:
        tf__num(l, "request", m->not_leader.request_id);
        if (m->not_leader.leader_hint == WIRE_NODE_NONE) tf__add(l, "leader_hint", "none");
        else tf__add(l, "leader_hint", "n%" PRIu32, m->not_leader.leader_hint);
        if (tf->focus != 0 && tf__focus_request(tf, to, m->not_leader.request_id)) {
            *touches = 1;
            tf__id(l, "msg", tf->focus);
            if (arrived) tf->not_leader++;
        }
        break;
    case WIRE_MSG_DELIVER: {
        const wire_deliver_t *d = &m->deliver;
        tf__id(l, "msg", d->message_id);
        tf__num(l, "producer", d->producer_id);
        tf__num(l, "seq", d->sequence);
        tf__num(l, "tag", d->delivery_tag);
        tf__bytes_field(l, "consumer", d->consumer_tag);
        tf__num(l, "redelivered", d->redelivered);
        tf__num(l, "count", d->delivery_count);
        if (tf->focus != 0 && d->message_id == tf->focus) {
            *touches = 1;
            if (arrived) tf->delivered++;
            if (arrived && tf->deliveries_count < TRACE_FMT_TAGS_MAX) {
                tf__delivery_t *x = &tf->deliveries[tf->deliveries_count++];
                x->client = to;
                x->node = from;
                x->tag = d->delivery_tag;
                x->session = 0;
            }
        }
        break;
    }
    case WIRE_MSG_ACK:
    case WIRE_MSG_NACK:
    case WIRE_MSG_REJECT: {
        uint64_t tag = 0, session = 0;
        uint8_t multiple = 0, requeue = 0;
        if (m->type == WIRE_MSG_ACK) {
            tag = m->ack.delivery_tag, multiple = m->ack.multiple, session = m->ack.session_id;
        } else if (m->type == WIRE_MSG_NACK) {
            tag = m->nack.delivery_tag, multiple = m->nack.multiple, session = m->nack.session_id;
            requeue = m->nack.requeue;
        } else {
            tag = m->reject.delivery_tag, session = m->reject.session_id;
            requeue = m->reject.requeue;
        }
        tf__num(l, "tag", tag);
        tf__num(l, "multiple", multiple);
        if (m->type != WIRE_MSG_ACK) tf__num(l, "requeue", requeue);
        tf__num(l, "session", session);
        if (tf->focus != 0 && tf__focus_tag(tf, from, to, tag, multiple != 0, session)) {
            *touches = 1;
            tf__id(l, "msg", tf->focus);
            if (arrived) {
                if (m->type == WIRE_MSG_ACK) tf->acked++;
                else if (requeue) tf->requeued++;
                else tf->rejected++;
            }
        }
        break;
    }
    case WIRE_MSG_HEARTBEAT:
        tf__num(l, "session", m->heartbeat.session_id);
        tf__num(l, "timestamp_ns", m->heartbeat.timestamp_ns);
        break;
    case WIRE_MSG_DECLARE_QUEUE:
        tf__num(l, "request", m->declare_queue.request_id);
        tf__bytes_field(l, "queue", m->declare_queue.name);
        break;
    case WIRE_MSG_DECLARE_EXCHANGE:
        tf__num(l, "request", m->declare_exchange.request_id);
        tf__bytes_field(l, "exchange", m->declare_exchange.name);
        break;
    case WIRE_MSG_BIND:
    case WIRE_MSG_UNBIND:
        tf__num(l, "request", m->bind.request_id);
        tf__bytes_field(l, "exchange", m->bind.exchange);
        tf__bytes_field(l, "queue", m->bind.queue);
        tf__bytes_field(l, "key", m->bind.routing_key);
        break;
    case WIRE_MSG_CONSUME:
        tf__num(l, "request", m->consume.request_id);
        tf__bytes_field(l, "queue", m->consume.queue);
        tf__num(l, "prefetch", m->consume.prefetch);
        tf__add(l, "ack_mode", "%s", m->consume.ack_mode == WIRE_ACK_AUTO ? "auto" : "manual");
        break;
    case WIRE_MSG_CANCEL:
        tf__num(l, "request", m->cancel.request_id);
        tf__bytes_field(l, "consumer", m->cancel.consumer_tag);
        break;
    case WIRE_MSG_GET:
        tf__num(l, "request", m->get.request_id);
        tf__bytes_field(l, "queue", m->get.queue);
        break;
    case WIRE_MSG_PURGE_QUEUE:
    case WIRE_MSG_DELETE_QUEUE:
        tf__num(l, "request", m->type == WIRE_MSG_PURGE_QUEUE ? m->purge_queue.request_id
                                                               : m->delete_queue.request_id);
        tf__bytes_field(l, "queue", m->type == WIRE_MSG_PURGE_QUEUE ? m->purge_queue.queue
                                                                     : m->delete_queue.queue);
        break;
    case WIRE_MSG_REPLY:
        tf__num(l, "request", m->reply.request_id);
        tf__add(l, "status", "%s", wire_status_name(m->reply.status));
        tf__num(l, "count", m->reply.count);
        break;
    case WIRE_MSG_ERROR:
        tf__num(l, "request", m->error.request_id);
        tf__add(l, "status", "%s", wire_status_name(m->error.status));
        tf__bytes_field(l, "detail", m->error.detail);
        break;
    default:
        break;
    }
}

/* msg, msg.drop, msg.lost, msg.dup, msg.corrupt: detail "from=F len=L [why=W|bit=B]". */
static void tf__message(trace_fmt_t *tf, const trace_fmt_event_t *ev, tf__line_t *l,
                        int *touches) {
    unsigned from = 0, len = 0;
    char why[24] = "";
    if (ev->detail == NULL || sscanf(ev->detail, "from=%u len=%u why=%23s", &from, &len, why) < 2) {
        snprintf(l->event, sizeof l->event, "%s", ev->kind);
        return;
    }
    const bool arrived = strcmp(ev->kind, "msg") == 0;
    const bool dropped = strcmp(ev->kind, "msg.drop") == 0 || strcmp(ev->kind, "msg.lost") == 0;
    snprintf(l->event, sizeof l->event, "%s", arrived ? "msg.recv" : ev->kind);
    char who[16];
    tf__host_name(tf, from, who, sizeof who);
    tf__add(l, "from", "%s", who);
    wire_msg_t m;
    const int rc = ev->bytes != NULL ? wire_decode(ev->bytes, ev->len, &m, tf->entries,
                                                   WIRE_ENTRIES_MAX)
                                     : WIRE_ETRUNCATED;
    if (rc != 0) {
        tf__add(l, "type", "undecodable");
        tf__add(l, "error", "%s", wire_error_name(rc));
        tf__num(l, "bytes", len);
    } else {
        tf__add(l, "type", "%s", wire_type_name(m.type));
        if (m.type < WIRE_MSG_DECLARE_QUEUE) tf__peer_msg(tf, &m, from, ev->host, arrived, l, touches);
        else tf__client_msg(tf, &m, from, ev->host, arrived, l, touches);
    }
    if (why[0] != '\0') tf__add(l, "why", "%s", why);
    unsigned long long bit = 0;
    if (strcmp(ev->kind, "msg.corrupt") == 0 &&
        sscanf(ev->detail, "from=%*u len=%*u bit=%llu", &bit) == 1)
        tf__num(l, "bit", bit); /* which bit of the frame flipped */
    if (*touches && dropped && tf->focus != 0) tf->lost_in_net++;
}

/* ---- disk ---------------------------------------------------------------------------------- */

static const char *tf__owner_name(unsigned owner) {
    switch (owner) {
    case BROKER_TOKEN_LOG: return "log";
    case BROKER_TOKEN_META: return "meta";
    case BROKER_TOKEN_SNAPSHOT: return "snapshot";
    case BROKER_TOKEN_RAFT: return "raft";
    case BROKER_TOKEN_NODE: return "node";
    default: return "disk";
    }
}

static uint64_t tf__le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8u * i);
    return v;
}

/* The records of one log write: their index range and the ids inside;
 * follows the focus message into (and out of) this host's log. */
static void tf__log_write(trace_fmt_t *tf, const trace_fmt_event_t *ev, tf__line_t *l,
                          int *touches) {
    tf__host_t *h = tf__host(tf, ev->host);
    tf__cmds_t c = {0};
    uint64_t first = 0, last = 0, last_term = 0;
    uint32_t n = 0;
    size_t off = 0;
    while (ev->bytes != NULL && ev->len - off >= TF__RECORD_HEADER_SIZE) {
        const uint8_t *r = ev->bytes + off;
        const uint64_t plen = tf__le(r, 4), term = tf__le(r + 8, 8), index = tf__le(r + 16, 8);
        if (plen > ev->len - off - TF__RECORD_HEADER_SIZE) break; /* not a whole record */
        bool pub = false;
        const uint64_t id = tf__entry(tf, r[24], r + TF__RECORD_HEADER_SIZE, (size_t)plen, &c, &pub);
        if (h != NULL && tf->focus != 0) {
            if (pub && id == tf->focus) {
                h->f_index = index, h->f_term = term;
                h->f_overwritten = h->f_durable = h->f_lost = h->f_committed = false;
                *touches = 1;
            } else if (h->f_index == index && h->f_index != 0 && !h->f_overwritten) {
                h->f_overwritten = true;
                h->f_over_term = term;
                tf__add(l, "overwrote_focus", "entry %" PRIu64 " term %" PRIu64 " by term %" PRIu64,
                        h->f_index, h->f_term, term);
                *touches = 1;
            }
        }
        if (n++ == 0) first = index;
        last = index, last_term = term;
        off += TF__RECORD_HEADER_SIZE + (size_t)plen;
    }
    if (n > 0) {
        tf__num(l, "first", first);
        tf__num(l, "last", last);
        tf__num(l, "last_term", last_term);
        tf__num(l, "entries", n);
        if (h != NULL) h->written_last = last;
    }
    tf__add_cmds(l, &c);
}

static void tf__disk(trace_fmt_t *tf, const trace_fmt_event_t *ev, tf__line_t *l, int *touches) {
    char op[16] = "", file[96] = "";
    unsigned long long token = 0;
    long long result = 0;
    if (ev->detail == NULL ||
        sscanf(ev->detail, "op=%15s file=%95s token=%llu result=%lld", op, file, &token, &result) != 4) {
        snprintf(l->event, sizeof l->event, "disk");
        return;
    }
    const bool broker = ev->host < tf->replicas;
    const char *owner = broker ? tf__owner_name(broker_token_owner(token)) : "disk";
    snprintf(l->event, sizeof l->event, "%s.%s", owner, op);
    tf__add(l, "file", "%s", file);
    if (result < 0) tf__add(l, "error", "%s", wire_error_name((int)result));
    else if (strcmp(op, "write") == 0 || strcmp(op, "read") == 0) tf__num(l, "bytes", (uint64_t)result);
    if (!broker || broker_token_owner(token) != BROKER_TOKEN_LOG || result < 0) return;
    tf__host_t *h = tf__host(tf, ev->host);
    if (strcmp(op, "write") == 0) {
        tf__log_write(tf, ev, l, touches);
    } else if (strcmp(op, "fsync") == 0 && h != NULL) {
        /* The device is serial (io.h): an fsync makes every earlier write durable. */
        h->durable = h->written_last;
        tf__num(l, "durable", h->durable);
        if (h->f_index != 0 && !h->f_durable && !h->f_overwritten && h->f_index <= h->durable) {
            h->f_durable = true;
            tf__num(l, "focus_durable", h->f_index);
            *touches = 1;
        }
    }
}

/* ---- hosts, timers, io trace events, faults ---------------------------------------------------- */

static void tf__host_event(trace_fmt_t *tf, const trace_fmt_event_t *ev, tf__line_t *l,
                           char *copy, int *touches) {
    snprintf(l->event, sizeof l->event, "host.%s", ev->kind);
    tf__add_detail(l, copy);
    tf__host_t *h = tf__host(tf, ev->host);
    if (h == NULL || tf->focus == 0 || h->f_index == 0 || h->f_overwritten) return;
    if (strcmp(ev->kind, "crash") == 0 && !h->f_durable) {
        /* A machine crash loses what was written but not fsynced. */
        h->f_lost = true;
        tf__add(l, "lost_focus", "entry %" PRIu64 " term %" PRIu64 " not fsynced (durable %" PRIu64 ")",
                h->f_index, h->f_term, h->durable);
        *touches = 1;
    }
}

static void tf__timer(const trace_fmt_t *tf, const trace_fmt_event_t *ev, tf__line_t *l) {
    unsigned long long token = 0;
    snprintf(l->event, sizeof l->event, "timer");
    if (ev->detail == NULL || sscanf(ev->detail, "token=%llu", &token) != 1) return;
    if (ev->host < tf->replicas) {
        tf__add(l, "owner", "%s", tf__owner_name(broker_token_owner(token)));
        tf__num(l, "local", broker_token_local(token));
    } else {
        tf__num(l, "token", token);
    }
}

static void tf__io_trace(const trace_fmt_event_t *ev, tf__line_t *l, char *copy) {
    char *rest = strchr(copy, ' ');
    if (rest != NULL) *rest++ = '\0';
    snprintf(l->event, sizeof l->event, "%s", copy[0] != '\0' ? copy : "trace");
    if (ev->role_name != NULL) {
        tf__num(l, "term", ev->term);
        tf__add(l, "role", "%s", ev->role_name);
    }
    if (rest != NULL) tf__add_detail(l, rest);
}

/* Events that explain a followed message's fate without touching it:
 * faults, the scenario's notes, leadership and host lifecycle. */
static bool tf__context(const char *event) {
    return strncmp(event, "fault.", 6) == 0 || strcmp(event, "scenario.log") == 0 ||
           strcmp(event, "raft.leader") == 0 || strcmp(event, "raft.step_down") == 0 ||
           strncmp(event, "host.", 5) == 0;
}

size_t trace_fmt_line(trace_fmt_t *tf, const trace_fmt_event_t *ev, char *buf, size_t cap,
                      int *touches) {
    assert(tf != NULL && ev != NULL && buf != NULL && cap > 0);
    int hit = 0;
    tf__line_t *l = calloc(1, sizeof *l);
    char copy[512];
    snprintf(copy, sizeof copy, "%s", ev->detail != NULL ? ev->detail : "");
    if (l == NULL) {
        buf[0] = '\0';
        return 0;
    }
    const char *k = ev->kind;
    if (strncmp(k, "msg", 3) == 0) {
        tf__message(tf, ev, l, &hit);
    } else if (strcmp(k, "disk") == 0) {
        tf__disk(tf, ev, l, &hit);
    } else if (strcmp(k, "timer") == 0) {
        tf__timer(tf, ev, l);
    } else if (strcmp(k, "trace") == 0) {
        tf__io_trace(ev, l, copy);
    } else if (strcmp(k, "fault") == 0) {
        /* detail = "KIND [DETAIL]" from faults_record */
        char *rest = strchr(copy, ' ');
        if (rest != NULL) *rest++ = '\0';
        snprintf(l->event, sizeof l->event, "fault.%s", copy);
        tf__add(l, "target", "%s", ev->fault_target != NULL ? ev->fault_target : "");
        if (rest != NULL && rest[0] != '\0') tf__add(l, "detail", "%s", rest);
    } else if (strcmp(k, "log") == 0) {
        snprintf(l->event, sizeof l->event, "scenario.log");
        tf__add(l, "text", "%s", copy);
    } else if (strcmp(k, "call") == 0) {
        snprintf(l->event, sizeof l->event, "sim.call");
    } else {
        tf__host_event(tf, ev, l, copy, &hit);
    }
    const size_t n = tf__render(tf, ev->time_ns, ev->host, l, buf, cap);
    if (hit) snprintf(tf->last, sizeof tf->last, "%s", buf);
    else if (tf->focus != 0 && tf__context(l->event)) {
        if (tf->have_key) {
            hit = 2;
        } else {
            snprintf(tf->ring[tf->ring_next], TRACE_FMT_LINE_MAX, "%s", buf);
            tf->ring_next = (tf->ring_next + 1) % TRACE_FMT_CONTEXT_MAX;
            if (tf->ring_count < TRACE_FMT_CONTEXT_MAX) tf->ring_count++;
        }
    }
    free(l);
    if (touches != NULL) *touches = hit;
    return n;
}

void trace_fmt_focus_context(trace_fmt_t *tf, FILE *out) {
    assert(tf != NULL && out != NULL);
    const uint32_t first = (tf->ring_next + TRACE_FMT_CONTEXT_MAX - tf->ring_count) %
                           TRACE_FMT_CONTEXT_MAX;
    for (uint32_t i = 0; i < tf->ring_count; i++)
        fputs(tf->ring[(first + i) % TRACE_FMT_CONTEXT_MAX], out);
    tf->ring_count = 0;
}

/* ---- summary ---------------------------------------------------------------------------------- */

void trace_fmt_focus_summary(const trace_fmt_t *tf, FILE *out) {
    assert(tf != NULL && out != NULL);
    fprintf(out, "summary of message %#" PRIx64 ":\n", tf->focus);
    bool in_a_log = false;
    for (uint32_t i = 0; i < tf->replicas && i < TRACE_FMT_HOSTS_MAX; i++)
        in_a_log = in_a_log || tf->hosts[i].f_index != 0;
    if (!tf->have_key && !in_a_log) {
        fprintf(out, "  never seen: no PUBLISH or log entry carried it in this run\n");
        return;
    }
    if (!tf->have_key) fprintf(out, "  its PUBLISH was not seen on the wire\n");
    else fprintf(out, "  producer %" PRIu64 " seq %" PRIu64 ": %" PRIu64 " publish attempt(s) arrived, %" PRIu64
                 " confirm(s), %" PRIu64 " nack(s), %" PRIu64 " not-leader answer(s)\n",
            tf->producer, tf->sequence, tf->attempts, tf->confirms, tf->nacked, tf->not_leader);
    fprintf(out, "  %" PRIu64 " delivery(ies), %" PRIu64 " ack(s), %" PRIu64 " requeue(s), %" PRIu64
                 " reject(s); %" PRIu64 " message(s) carrying it dropped by the network\n",
            tf->delivered, tf->acked, tf->requeued, tf->rejected, tf->lost_in_net);
    uint32_t held = 0, gone = 0;
    char gone_why[TRACE_FMT_VALUE_MAX] = "";
    for (uint32_t i = 0; i < tf->replicas && i < TRACE_FMT_HOSTS_MAX; i++) {
        const tf__host_t *h = &tf->hosts[i];
        if (h->f_index == 0) {
            fprintf(out, "  n%" PRIu32 ": never held it\n", i);
            continue;
        }
        fprintf(out, "  n%" PRIu32 ": entry %" PRIu64 " term %" PRIu64 ": %s%s%s\n", i, h->f_index,
                h->f_term, h->f_durable ? "fsynced" : "never fsynced",
                h->f_committed ? ", committed" : "",
                h->f_overwritten ? ", then OVERWRITTEN" : h->f_lost ? ", then LOST in a crash" : "");
        if (h->f_overwritten || h->f_lost) {
            gone++;
            size_t used = strlen(gone_why);
            if (h->f_overwritten)
                snprintf(gone_why + used, sizeof gone_why - used,
                         "%sentry %" PRIu64 " term %" PRIu64 " overwritten by term %" PRIu64 " on n%" PRIu32,
                         used ? "; " : "", h->f_index, h->f_term, h->f_over_term, i);
            else
                snprintf(gone_why + used, sizeof gone_why - used,
                         "%sentry %" PRIu64 " term %" PRIu64 " not fsynced when n%" PRIu32 " crashed",
                         used ? "; " : "", h->f_index, h->f_term, i);
        } else {
            held++;
        }
    }
    const char *end;
    if (tf->acked > 0) end = "settled: a consumer acked it";
    else if (tf->delivered > 0) end = "delivered, never acked";
    else if (held == 0 && gone > 0) end = "LOST: no replica kept it";
    else if (held == 0) end = "never reached a replica's log";
    else if (tf->confirms > 0) end = "confirmed and held by a replica, never delivered";
    else end = "held by a replica, never confirmed nor delivered";
    if (gone > 0) fprintf(out, "  ended: %s (%s)\n", end, gone_why);
    else fprintf(out, "  ended: %s\n", end);
    if (tf->last[0] != '\0') fprintf(out, "  last event: %s", tf->last);
}
