/*
 * broker/sm.c — the replicated queue state machine (see sm.h).
 *
 * Layout of this file: byte reader/writer, command codec, table helpers,
 * one apply function per command, then snapshot/digest/restore.
 *
 * Every apply function validates everything and reserves every allocation
 * it needs before its first mutation, so an error leaves the state exactly as
 * it was: that is what makes "invalid command = deterministic no-op" true.
 */
#include "broker/sm.h"
#include "broker/table.h"

#include "broker/io.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SM__SNAPSHOT_MAGIC 0x4D53434Cu /* "LCSM" little endian */
#define SM__SNAPSHOT_VERSION 4u /* 3: exchange bindings; 4: queue props, owner,
                                    internal exchanges */
#define SM__FNV_OFFSET 0xcbf29ce484222325ull
#define SM__FNV_PRIME 0x100000001b3ull

/* ------------------------------------------------------------------------ */
/* Byte sink: counts, copies and/or hashes, so one walker serves encode,
 * snapshot size, snapshot serialize and digest (they cannot drift apart). */

typedef struct sm__sink {
    uint8_t *buf; /* NULL = count only */
    size_t pos;
    int hashing;
    uint64_t hash;
} sm__sink_t;

static void sm__put(sm__sink_t *s, const void *p, size_t n) {
    assert(s != NULL);
    assert(p != NULL || n == 0);
    if (n == 0)
        return;
    if (s->buf != NULL)
        memcpy(s->buf + s->pos, p, n);
    if (s->hashing) {
        const uint8_t *b = p;
        uint64_t h = s->hash;
        for (size_t i = 0; i < n; i++)
            h = (h ^ b[i]) * SM__FNV_PRIME;
        s->hash = h;
    }
    s->pos += n;
}

static void sm__put_u8(sm__sink_t *s, uint8_t v) { sm__put(s, &v, 1); }

static void sm__put_u16(sm__sink_t *s, uint16_t v) {
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    sm__put(s, b, 2);
}

static void sm__put_u32(sm__sink_t *s, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    sm__put(s, b, 4);
}

static void sm__put_u64(sm__sink_t *s, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    sm__put(s, b, 8);
}

static void sm__put_str(sm__sink_t *s, const char *p, size_t len) {
    assert(len <= SM_NAME_MAX);
    sm__put_u16(s, (uint16_t)len);
    sm__put(s, p, len);
}

/* ------------------------------------------------------------------------ */
/* Byte reader: any overrun sets `bad` and every later read returns zeros. */

typedef struct sm__rd {
    const uint8_t *p;
    size_t len, pos;
    int bad;
} sm__rd_t;

static const uint8_t *sm__take(sm__rd_t *r, size_t n) {
    assert(r != NULL);
    if (r->bad || r->len - r->pos < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    assert(r->pos <= r->len);
    return p;
}

static uint64_t sm__get_le(sm__rd_t *r, size_t n) {
    const uint8_t *b = sm__take(r, n);
    uint64_t v = 0;
    if (b == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static uint8_t sm__get_u8(sm__rd_t *r) { return (uint8_t)sm__get_le(r, 1); }
static uint32_t sm__get_u32(sm__rd_t *r) { return (uint32_t)sm__get_le(r, 4); }
static uint64_t sm__get_u64(sm__rd_t *r) { return sm__get_le(r, 8); }

static int sm__name_ok(const char *p, size_t len) {
    if (len > SM_NAME_MAX || (len > 0 && p == NULL))
        return 0;
    return len == 0 || memchr(p, '\0', len) == NULL;
}

/* A name: u16 length (<= SM_NAME_MAX) + bytes without NUL. */
static broker_sm_str_t sm__get_str(sm__rd_t *r) {
    broker_sm_str_t s = {"", 0};
    uint32_t len = (uint32_t)sm__get_le(r, 2);
    if (len > SM_NAME_MAX) {
        r->bad = 1;
        return s;
    }
    const uint8_t *p = sm__take(r, len);
    if (p == NULL || !sm__name_ok((const char *)p, len)) {
        r->bad = 1;
        return s;
    }
    s.ptr = (const char *)p;
    s.len = len;
    return s;
}

/* ------------------------------------------------------------------------ */
/* Names */

broker_sm_str_t broker_sm_str(const char *s) {
    assert(s != NULL);
    broker_sm_str_t r = {s, (uint32_t)strlen(s)};
    return r;
}

/* Byte-wise order of (a, alen) vs (b, blen): <0, 0, >0. */
static int sm__str_eq(broker_sm_str_t s, const char *b, size_t blen) {
    return broker_name_cmp(s.ptr, s.len, b, blen) == 0;
}

/* ------------------------------------------------------------------------ */
/* Command codec */

static uint64_t sm__le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* PURGE_READY ids: strictly ascending. */
static int sm__keep_sorted(const uint8_t *keep, uint32_t n) {
    for (uint32_t i = 1; i < n; i++)
        if (sm__le64(keep + 8 * (size_t)(i - 1)) >= sm__le64(keep + 8 * (size_t)i))
            return 0;
    return 1;
}

static int sm__cmd_valid(const broker_sm_cmd_t *c) {
    assert(c != NULL);
    if (c->type < SM_CMD_DECLARE_QUEUE || c->type > SM_CMD_PURGE_READY)
        return 0;
    if (c->type == SM_CMD_PURGE_READY &&
        (c->keep_count > SM_PURGE_KEEP_MAX || (c->keep_count > 0 && c->keep == NULL) ||
         !sm__keep_sorted(c->keep, c->keep_count)))
        return 0;
    if (c->type == SM_CMD_DECLARE_QUEUE_EX && (c->queue_props & ~BROKER_QUEUE_PROPS_ALL))
        return 0;
    if (!sm__name_ok(c->destination.ptr, c->destination.len) ||
        !sm__name_ok(c->queue.ptr, c->queue.len) ||
        !sm__name_ok(c->exchange.ptr, c->exchange.len) ||
        !sm__name_ok(c->key.ptr, c->key.len) ||
        !sm__name_ok(c->dlq.ptr, c->dlq.len))
        return 0;
    if (c->type == SM_CMD_DECLARE_EXCHANGE &&
        !broker_exchange_type_valid(c->exchange_type & ~BROKER_EXCHANGE_INTERNAL_FLAG))
        return 0;
    if ((c->type == SM_CMD_DECLARE_QUEUE || c->type == SM_CMD_DECLARE_QUEUE_EX) &&
        c->max_messages > SM_QUEUE_MESSAGES_MAX)
        return 0;
    if (c->type == SM_CMD_PUBLISH &&
        (c->persistent > 1 || c->body_len > SM_MESSAGE_BODY_MAX ||
         (c->body_len > 0 && c->body == NULL)))
        return 0;
    return 1;
}

/* The one definition of each command's wire layout (decode mirrors it). */
static void sm__cmd_walk(const broker_sm_cmd_t *c, sm__sink_t *s) {
    assert(sm__cmd_valid(c));
    sm__put_u8(s, c->type);
    switch (c->type) {
    case SM_CMD_DECLARE_QUEUE:
    case SM_CMD_DECLARE_QUEUE_EX:
        sm__put_str(s, c->queue.ptr, c->queue.len);
        sm__put_str(s, c->dlq.ptr, c->dlq.len);
        sm__put_u32(s, c->delivery_limit);
        sm__put_u32(s, c->max_messages);
        if (c->type == SM_CMD_DECLARE_QUEUE_EX) {
            sm__put_u8(s, c->queue_props);
            sm__put_u64(s, c->owner);
        }
        break;
    case SM_CMD_DELETE_QUEUE:
    case SM_CMD_PURGE_QUEUE:
        sm__put_str(s, c->queue.ptr, c->queue.len);
        break;
    case SM_CMD_PURGE_READY:
        sm__put_str(s, c->queue.ptr, c->queue.len);
        sm__put_u32(s, c->keep_count);
        sm__put(s, c->keep, 8 * (size_t)c->keep_count);
        break;
    case SM_CMD_DECLARE_EXCHANGE:
        sm__put_str(s, c->exchange.ptr, c->exchange.len);
        sm__put_u8(s, c->exchange_type);
        break;
    case SM_CMD_DELETE_EXCHANGE:
        sm__put_str(s, c->exchange.ptr, c->exchange.len);
        break;
    case SM_CMD_BIND:
    case SM_CMD_UNBIND:
        sm__put_str(s, c->exchange.ptr, c->exchange.len);
        sm__put_str(s, c->queue.ptr, c->queue.len);
        sm__put_str(s, c->key.ptr, c->key.len);
        break;
    case SM_CMD_BIND_EXCHANGE:
    case SM_CMD_UNBIND_EXCHANGE:
        sm__put_str(s, c->exchange.ptr, c->exchange.len);
        sm__put_str(s, c->destination.ptr, c->destination.len);
        sm__put_str(s, c->key.ptr, c->key.len);
        break;
    case SM_CMD_PUBLISH:
        sm__put_u64(s, c->producer_id);
        sm__put_u64(s, c->sequence);
        sm__put_str(s, c->exchange.ptr, c->exchange.len);
        sm__put_str(s, c->key.ptr, c->key.len);
        sm__put_u8(s, c->persistent);
        sm__put_u32(s, c->body_len);
        sm__put(s, c->body, c->body_len);
        break;
    default: /* SETTLE, RETURN, REJECT_DISCARD */
        sm__put_str(s, c->queue.ptr, c->queue.len);
        sm__put_u64(s, c->message_id);
        break;
    }
}

size_t broker_sm_cmd_size(const broker_sm_cmd_t *cmd) {
    assert(cmd != NULL);
    if (!sm__cmd_valid(cmd))
        return 0;
    sm__sink_t s = {0};
    sm__cmd_walk(cmd, &s);
    assert(s.pos >= 1 && s.pos <= SM_CMD_SIZE_MAX);
    return s.pos;
}

int broker_sm_cmd_encode(const broker_sm_cmd_t *cmd, uint8_t *buf, size_t cap,
                         size_t *len_out) {
    assert(cmd != NULL && len_out != NULL);
    size_t need = broker_sm_cmd_size(cmd);
    if (need == 0)
        return SM_EMALFORMED;
    if (buf == NULL || cap < need)
        return SM_ENOSPACE;
    sm__sink_t s = {.buf = buf};
    sm__cmd_walk(cmd, &s);
    assert(s.pos == need);
    *len_out = need;
    return 0;
}

static void sm__decode_fields(sm__rd_t *r, broker_sm_cmd_t *c) {
    switch (c->type) {
    case SM_CMD_DECLARE_QUEUE:
    case SM_CMD_DECLARE_QUEUE_EX:
        c->queue = sm__get_str(r);
        c->dlq = sm__get_str(r);
        c->delivery_limit = sm__get_u32(r);
        c->max_messages = sm__get_u32(r);
        if (c->type == SM_CMD_DECLARE_QUEUE_EX) {
            c->queue_props = sm__get_u8(r);
            c->owner = sm__get_u64(r);
        }
        break;
    case SM_CMD_DELETE_QUEUE:
    case SM_CMD_PURGE_QUEUE:
        c->queue = sm__get_str(r);
        break;
    case SM_CMD_PURGE_READY:
        c->queue = sm__get_str(r);
        c->keep_count = sm__get_u32(r);
        if (c->keep_count > SM_PURGE_KEEP_MAX) {
            r->bad = 1;
            break;
        }
        c->keep = sm__take(r, 8 * (size_t)c->keep_count);
        break;
    case SM_CMD_DECLARE_EXCHANGE:
        c->exchange = sm__get_str(r);
        c->exchange_type = sm__get_u8(r);
        break;
    case SM_CMD_DELETE_EXCHANGE:
        c->exchange = sm__get_str(r);
        break;
    case SM_CMD_BIND:
    case SM_CMD_UNBIND:
        c->exchange = sm__get_str(r);
        c->queue = sm__get_str(r);
        c->key = sm__get_str(r);
        break;
    case SM_CMD_BIND_EXCHANGE:
    case SM_CMD_UNBIND_EXCHANGE:
        c->exchange = sm__get_str(r);
        c->destination = sm__get_str(r);
        c->key = sm__get_str(r);
        break;
    case SM_CMD_PUBLISH:
        c->producer_id = sm__get_u64(r);
        c->sequence = sm__get_u64(r);
        c->exchange = sm__get_str(r);
        c->key = sm__get_str(r);
        c->persistent = sm__get_u8(r);
        c->body_len = sm__get_u32(r);
        if (c->body_len > SM_MESSAGE_BODY_MAX) {
            r->bad = 1;
            break;
        }
        c->body = sm__take(r, c->body_len);
        break;
    default:
        c->queue = sm__get_str(r);
        c->message_id = sm__get_u64(r);
        break;
    }
}

int broker_sm_cmd_decode(const uint8_t *bytes, size_t len,
                         broker_sm_cmd_t *cmd) {
    assert(cmd != NULL);
    assert(bytes != NULL || len == 0);
    static const broker_sm_str_t empty = {"", 0};
    memset(cmd, 0, sizeof *cmd);
    cmd->queue = cmd->exchange = cmd->key = cmd->dlq = cmd->destination = empty;
    sm__rd_t r = {bytes, len, 0, 0};
    cmd->type = sm__get_u8(&r);
    if (r.bad || cmd->type < SM_CMD_DECLARE_QUEUE ||
        cmd->type > SM_CMD_PURGE_READY)
        return SM_EMALFORMED;
    sm__decode_fields(&r, cmd);
    if (r.bad || r.pos != len || !sm__cmd_valid(cmd))
        return SM_EMALFORMED;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Init / close / lookups */

void broker_sm_init(broker_sm_t *sm, const broker_sm_config_t *config) {
    assert(sm != NULL);
    memset(sm, 0, sizeof *sm);
    if (config != NULL)
        sm->config = *config;
    sm->config.dedup = sm->config.dedup ? 1 : 0;
    sm->next_message_id = 1;
}

void broker_sm_close(broker_sm_t *sm) {
    assert(sm != NULL);
    for (uint32_t i = 0; i < sm->queue_count; i++)
        broker_queue_free(sm->queues[i]);
    free(sm->queues);
    free(sm->exchanges);
    free(sm->bindings);
    free(sm->xbindings);
    free(sm->dedup);
    memset(sm, 0, sizeof *sm);
}

/* Lower bound of `name` in the sorted queue table; *found says if equal. */
static uint32_t sm__queue_pos(const broker_sm_t *sm, const char *name,
                              size_t len, int *found) {
    uint32_t lo = 0, hi = sm->queue_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const broker_queue_t *q = sm->queues[mid];
        if (broker_name_cmp(q->name, q->name_len, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < sm->queue_count &&
             broker_name_cmp(sm->queues[lo]->name, sm->queues[lo]->name_len, name,
                     len) == 0;
    return lo;
}

static broker_queue_t *sm__queue(const broker_sm_t *sm, const char *name,
                                 size_t len) {
    int found;
    uint32_t pos = sm__queue_pos(sm, name, len, &found);
    return found ? sm->queues[pos] : NULL;
}

const broker_queue_t *broker_sm_queue(const broker_sm_t *sm, const char *name,
                                      size_t name_len) {
    assert(sm != NULL);
    assert(name != NULL || name_len == 0);
    return sm__queue(sm, name, name_len);
}

static uint32_t sm__exchange_pos(const broker_sm_t *sm, const char *name,
                                 size_t len, int *found) {
    uint32_t lo = 0, hi = sm->exchange_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const broker_exchange_t *e = &sm->exchanges[mid];
        if (broker_name_cmp(e->name, e->name_len, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < sm->exchange_count &&
             broker_name_cmp(sm->exchanges[lo].name, sm->exchanges[lo].name_len, name,
                     len) == 0;
    return lo;
}

const broker_exchange_t *broker_sm_exchange(const broker_sm_t *sm,
                                            const char *name, size_t name_len) {
    assert(sm != NULL);
    assert(name != NULL || name_len == 0);
    int found;
    uint32_t pos = sm__exchange_pos(sm, name, name_len, &found);
    return found ? &sm->exchanges[pos] : NULL;
}

/* Order of bindings: (exchange, queue, key). */
static int sm__binding_cmp(const broker_binding_t *b, broker_sm_str_t ex,
                           broker_sm_str_t q, broker_sm_str_t key) {
    int c = broker_name_cmp(b->exchange, b->exchange_len, ex.ptr, ex.len);
    if (c == 0)
        c = broker_name_cmp(b->queue, b->queue_len, q.ptr, q.len);
    if (c == 0)
        c = broker_name_cmp(b->key, b->key_len, key.ptr, key.len);
    return c;
}

/* Lower bound in a sorted binding table (queue or exchange bindings). */
static uint32_t sm__table_pos(const broker_binding_t *t, uint32_t count,
                              broker_sm_str_t ex, broker_sm_str_t q,
                              broker_sm_str_t key, int *found) {
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sm__binding_cmp(&t[mid], ex, q, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < count && sm__binding_cmp(&t[lo], ex, q, key) == 0;
    return lo;
}

static uint32_t sm__binding_pos(const broker_sm_t *sm, broker_sm_str_t ex,
                                broker_sm_str_t q, broker_sm_str_t key,
                                int *found) {
    return sm__table_pos(sm->bindings, sm->binding_count, ex, q, key, found);
}

/* ------------------------------------------------------------------------ */
/* Producer dedup table */

static broker_sm_dedup_t *sm__dedup_find(broker_sm_t *sm, uint64_t producer,
                                         uint32_t *pos_out) {
    uint32_t lo = 0, hi = sm->dedup_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sm->dedup[mid].producer_id < producer)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos_out = lo;
    if (lo < sm->dedup_count && sm->dedup[lo].producer_id == producer)
        return &sm->dedup[lo];
    return NULL;
}

/* Was `seq` applied? A sequence older than the window is unknown and counts
 * as new: a late retry may then be stored twice, but a message the producer
 * was told is stored is never one that was not. */
static int sm__dedup_seen(const broker_sm_dedup_t *e, uint64_t seq) {
    assert(e != NULL);
    assert(e->window[0] & 1u); /* highest itself was applied */
    if (seq > e->highest)
        return 0;
    uint64_t age = e->highest - seq;
    if (age >= SM_DEDUP_WINDOW)
        return 0;
    return (int)((e->window[age / 64] >> (age % 64)) & 1u);
}

/* Age every remembered sequence by `shift` (bit k moves to k + shift). */
static void sm__window_shift(uint64_t *w, uint64_t shift) {
    if (shift >= SM_DEDUP_WINDOW) {
        memset(w, 0, SM_DEDUP_WINDOW_WORDS * sizeof *w);
        return;
    }
    const uint32_t words = (uint32_t)(shift / 64), bits = (uint32_t)(shift % 64);
    for (uint32_t i = SM_DEDUP_WINDOW_WORDS; i-- > 0;) {
        uint64_t v = 0;
        if (i >= words) {
            v = w[i - words] << bits;
            if (bits != 0 && i >= words + 1) v |= w[i - words - 1] >> (64 - bits);
        }
        w[i] = v;
    }
}

/* Make the table able to take one more producer. 0 or IO_ENOMEM. */
static int sm__dedup_reserve(broker_sm_t *sm) {
    uint32_t need = sm->dedup_count + 1;
    if (need > SM_DEDUP_PRODUCERS_MAX)
        return 0; /* full: recording evicts instead of growing */
    return broker_table_grow((void **)&sm->dedup, &sm->dedup_capacity, need,
                    sizeof *sm->dedup, SM_DEDUP_PRODUCERS_MAX);
}

/* Evict the least recently used producer (smallest last_index; the scan
 * order makes the smallest producer id win ties). */
static void sm__dedup_evict(broker_sm_t *sm) {
    assert(sm->dedup_count == SM_DEDUP_PRODUCERS_MAX);
    uint32_t victim = 0;
    for (uint32_t i = 1; i < sm->dedup_count; i++) {
        if (sm->dedup[i].last_index < sm->dedup[victim].last_index)
            victim = i;
    }
    memmove(&sm->dedup[victim], &sm->dedup[victim + 1],
            (sm->dedup_count - victim - 1) * sizeof *sm->dedup);
    sm->dedup_count--;
}

/* Record (producer, seq) as applied at `index`. Never fails after
 * sm__dedup_reserve succeeded. */
static void sm__dedup_record(broker_sm_t *sm, uint64_t producer, uint64_t seq,
                             uint64_t index) {
    assert(producer != 0);
    uint32_t pos;
    broker_sm_dedup_t *e = sm__dedup_find(sm, producer, &pos);
    if (e == NULL) {
        if (sm->dedup_count == SM_DEDUP_PRODUCERS_MAX) {
            sm__dedup_evict(sm);
            e = sm__dedup_find(sm, producer, &pos);
            assert(e == NULL);
        }
        assert(sm->dedup_count < sm->dedup_capacity);
        memmove(&sm->dedup[pos + 1], &sm->dedup[pos],
                (sm->dedup_count - pos) * sizeof *sm->dedup);
        sm->dedup_count++;
        e = &sm->dedup[pos];
        e->producer_id = producer;
        e->highest = seq;
        memset(e->window, 0, sizeof e->window);
        e->window[0] = 1;
    } else if (seq > e->highest) {
        sm__window_shift(e->window, seq - e->highest);
        e->window[0] |= 1;
        e->highest = seq;
    } else if (e->highest - seq < SM_DEDUP_WINDOW) {
        const uint64_t age = e->highest - seq;
        e->window[age / 64] |= (uint64_t)1 << (age % 64);
    } /* older than the window: applied as new, nothing to remember */
    e->last_index = index;
}

/* ------------------------------------------------------------------------ */
/* Apply: queues */

static int sm__declare_queue(broker_sm_t *sm, const broker_sm_cmd_t *c,
                             broker_sm_result_t *res) {
    if (c->queue.len == 0 || sm__str_eq(c->dlq, c->queue.ptr, c->queue.len))
        return SM_EINVALID; /* names are chosen by the leader; no self-DLQ */
    uint32_t max = c->max_messages ? c->max_messages : SM_QUEUE_MESSAGES_MAX;
    int found;
    uint32_t pos = sm__queue_pos(sm, c->queue.ptr, c->queue.len, &found);
    const int ex = c->type == SM_CMD_DECLARE_QUEUE_EX;
    if (found) {
        const broker_queue_t *q = sm->queues[pos];
        if (ex && q->owner != 0 && q->owner != c->owner)
            return SM_ELOCKED; /* AMQP checks exclusivity first */
        if (!sm__str_eq(c->dlq, q->dlq, q->dlq_len) ||
            q->delivery_limit != c->delivery_limit || q->max_messages != max ||
            (ex && q->props != c->queue_props))
            return SM_EMISMATCH;
        res->messages = q->count;
        res->queue = q;
        return 0;
    }
    if (sm->queue_count >= SM_QUEUES_MAX)
        return SM_ELIMIT;
    if (broker_table_grow((void **)&sm->queues, &sm->queue_capacity,
                 sm->queue_count + 1, sizeof *sm->queues, SM_QUEUES_MAX))
        return IO_ENOMEM;
    broker_queue_t *q = broker_queue_new(c->queue.ptr, c->queue.len,
                                         c->dlq.ptr, c->dlq.len,
                                         c->delivery_limit, max);
    if (q == NULL)
        return IO_ENOMEM;
    if (ex) {
        q->props = c->queue_props;
        q->owner = (c->queue_props & BROKER_QUEUE_PROP_EXCLUSIVE) ? c->owner : 0;
    }
    memmove(&sm->queues[pos + 1], &sm->queues[pos],
            (sm->queue_count - pos) * sizeof *sm->queues);
    sm->queues[pos] = q;
    sm->queue_count++;
    res->queue = q;
    return 0;
}

/* Remove every binding for which `match` says yes, keeping the order. */
static void sm__unbind_where(broker_sm_t *sm, int by_queue, const char *name,
                             size_t len) {
    uint32_t out = 0;
    for (uint32_t i = 0; i < sm->binding_count; i++) {
        const broker_binding_t *b = &sm->bindings[i];
        int hit = by_queue ? broker_name_cmp(b->queue, b->queue_len, name, len) == 0
                           : broker_name_cmp(b->exchange, b->exchange_len, name,
                                     len) == 0;
        if (!hit)
            sm->bindings[out++] = *b;
    }
    assert(out <= sm->binding_count);
    sm->binding_count = out;
}

static int sm__delete_queue(broker_sm_t *sm, const broker_sm_cmd_t *c,
                            broker_sm_result_t *res) {
    int found;
    uint32_t pos = sm__queue_pos(sm, c->queue.ptr, c->queue.len, &found);
    if (!found)
        return SM_ENOTFOUND;
    broker_queue_t *q = sm->queues[pos];
    assert(sm->body_bytes >= q->body_bytes);
    sm->body_bytes -= q->body_bytes;
    res->messages = q->count;
    sm__unbind_where(sm, 1, q->name, q->name_len);
    broker_queue_free(q);
    sm->queues_deleted++;
    memmove(&sm->queues[pos], &sm->queues[pos + 1],
            (sm->queue_count - pos - 1) * sizeof *sm->queues);
    sm->queue_count--;
    return 0;
}

static int sm__purge_queue(broker_sm_t *sm, const broker_sm_cmd_t *c,
                           broker_sm_result_t *res) {
    broker_queue_t *q = sm__queue(sm, c->queue.ptr, c->queue.len);
    if (q == NULL)
        return SM_ENOTFOUND;
    assert(sm->body_bytes >= q->body_bytes);
    sm->body_bytes -= q->body_bytes;
    res->messages = broker_queue_purge(q);
    return 0;
}

static int sm__purge_ready(broker_sm_t *sm, const broker_sm_cmd_t *c,
                           broker_sm_result_t *res) {
    broker_queue_t *q = sm__queue(sm, c->queue.ptr, c->queue.len);
    if (q == NULL)
        return SM_ENOTFOUND;
    uint64_t small[64];
    uint64_t *ids = c->keep_count <= 64 ? small : malloc(8 * (size_t)c->keep_count);
    if (ids == NULL)
        return IO_ENOMEM;
    for (uint32_t i = 0; i < c->keep_count; i++)
        ids[i] = sm__le64(c->keep + 8 * (size_t)i);
    const uint64_t before = q->body_bytes;
    res->messages = broker_queue_purge_except(q, ids, c->keep_count);
    assert(sm->body_bytes >= before - q->body_bytes);
    sm->body_bytes -= before - q->body_bytes;
    if (ids != small)
        free(ids);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Apply: exchanges and bindings */

static int sm__declare_exchange(broker_sm_t *sm, const broker_sm_cmd_t *c) {
    if (c->exchange.len == 0)
        return SM_EINVALID; /* the default exchange cannot be redeclared */
    int found;
    uint32_t pos =
        sm__exchange_pos(sm, c->exchange.ptr, c->exchange.len, &found);
    const uint8_t type = (uint8_t)(c->exchange_type & ~BROKER_EXCHANGE_INTERNAL_FLAG);
    const uint8_t internal = (c->exchange_type & BROKER_EXCHANGE_INTERNAL_FLAG) ? 1 : 0;
    if (found)
        return sm->exchanges[pos].type == type && sm->exchanges[pos].internal == internal
                   ? 0
                   : SM_EMISMATCH;
    if (sm->exchange_count >= SM_EXCHANGES_MAX)
        return SM_ELIMIT;
    if (broker_table_grow((void **)&sm->exchanges, &sm->exchange_capacity,
                 sm->exchange_count + 1, sizeof *sm->exchanges,
                 SM_EXCHANGES_MAX))
        return IO_ENOMEM;
    memmove(&sm->exchanges[pos + 1], &sm->exchanges[pos],
            (sm->exchange_count - pos) * sizeof *sm->exchanges);
    broker_exchange_t *e = &sm->exchanges[pos];
    memset(e, 0, sizeof *e);
    e->type = type;
    e->internal = internal;
    e->name_len = (uint16_t)c->exchange.len;
    memcpy(e->name, c->exchange.ptr, c->exchange.len);
    sm->exchange_count++;
    return 0;
}

static int sm__delete_exchange(broker_sm_t *sm, const broker_sm_cmd_t *c) {
    if (c->exchange.len == 0)
        return SM_EINVALID;
    int found;
    uint32_t pos =
        sm__exchange_pos(sm, c->exchange.ptr, c->exchange.len, &found);
    if (!found)
        return SM_ENOTFOUND;
    sm__unbind_where(sm, 0, c->exchange.ptr, c->exchange.len);
    uint32_t out = 0; /* exchange bindings from or to it go too */
    for (uint32_t i = 0; i < sm->xbinding_count; i++) {
        const broker_binding_t *b = &sm->xbindings[i];
        if (!sm__str_eq(c->exchange, b->exchange, b->exchange_len) &&
            !sm__str_eq(c->exchange, b->queue, b->queue_len))
            sm->xbindings[out++] = *b;
    }
    sm->xbinding_count = out;
    memmove(&sm->exchanges[pos], &sm->exchanges[pos + 1],
            (sm->exchange_count - pos - 1) * sizeof *sm->exchanges);
    sm->exchange_count--;
    return 0;
}

/* Shared checks of BIND/UNBIND: a declared exchange and an existing queue. */
static int sm__binding_check(const broker_sm_t *sm, const broker_sm_cmd_t *c) {
    if (c->exchange.len == 0)
        return SM_EINVALID; /* AMQP: the default exchange takes no bindings */
    if (broker_sm_exchange(sm, c->exchange.ptr, c->exchange.len) == NULL ||
        sm__queue(sm, c->queue.ptr, c->queue.len) == NULL)
        return SM_ENOTFOUND;
    return 0;
}

static int sm__bind(broker_sm_t *sm, const broker_sm_cmd_t *c) {
    int rc = sm__binding_check(sm, c);
    if (rc != 0)
        return rc;
    int found;
    uint32_t pos = sm__binding_pos(sm, c->exchange, c->queue, c->key, &found);
    if (found)
        return 0; /* idempotent, as in AMQP */
    if (sm->binding_count >= SM_BINDINGS_MAX)
        return SM_ELIMIT;
    if (broker_table_grow((void **)&sm->bindings, &sm->binding_capacity,
                 sm->binding_count + 1, sizeof *sm->bindings, SM_BINDINGS_MAX))
        return IO_ENOMEM;
    memmove(&sm->bindings[pos + 1], &sm->bindings[pos],
            (sm->binding_count - pos) * sizeof *sm->bindings);
    broker_binding_t *b = &sm->bindings[pos];
    memset(b, 0, sizeof *b);
    b->exchange_len = (uint16_t)c->exchange.len;
    b->queue_len = (uint16_t)c->queue.len;
    b->key_len = (uint16_t)c->key.len;
    memcpy(b->exchange, c->exchange.ptr, c->exchange.len);
    memcpy(b->queue, c->queue.ptr, c->queue.len);
    if (c->key.len > 0)
        memcpy(b->key, c->key.ptr, c->key.len);
    sm->binding_count++;
    return 0;
}

static int sm__unbind(broker_sm_t *sm, const broker_sm_cmd_t *c) {
    int rc = sm__binding_check(sm, c);
    if (rc != 0)
        return rc;
    int found;
    uint32_t pos = sm__binding_pos(sm, c->exchange, c->queue, c->key, &found);
    if (!found)
        return 0; /* unbinding a missing binding is not an error in AMQP */
    memmove(&sm->bindings[pos], &sm->bindings[pos + 1],
            (sm->binding_count - pos - 1) * sizeof *sm->bindings);
    sm->binding_count--;
    return 0;
}

/* BIND_EXCHANGE / UNBIND_EXCHANGE: both ends declared exchanges (the
 * default exchange takes and gives no bindings). */
static int sm__xbinding_check(const broker_sm_t *sm, const broker_sm_cmd_t *c) {
    if (c->exchange.len == 0 || c->destination.len == 0)
        return SM_EINVALID;
    if (broker_sm_exchange(sm, c->exchange.ptr, c->exchange.len) == NULL ||
        broker_sm_exchange(sm, c->destination.ptr, c->destination.len) == NULL)
        return SM_ENOTFOUND;
    return 0;
}

static int sm__xbind(broker_sm_t *sm, const broker_sm_cmd_t *c) {
    int rc = sm__xbinding_check(sm, c);
    if (rc != 0)
        return rc;
    int found;
    uint32_t pos = sm__table_pos(sm->xbindings, sm->xbinding_count, c->exchange,
                                 c->destination, c->key, &found);
    if (found)
        return 0; /* idempotent */
    if (sm->xbinding_count >= SM_XBINDINGS_MAX)
        return SM_ELIMIT;
    if (broker_table_grow((void **)&sm->xbindings, &sm->xbinding_capacity,
                          sm->xbinding_count + 1, sizeof *sm->xbindings,
                          SM_XBINDINGS_MAX))
        return IO_ENOMEM;
    memmove(&sm->xbindings[pos + 1], &sm->xbindings[pos],
            (sm->xbinding_count - pos) * sizeof *sm->xbindings);
    broker_binding_t *b = &sm->xbindings[pos];
    memset(b, 0, sizeof *b);
    b->exchange_len = (uint16_t)c->exchange.len;
    b->queue_len = (uint16_t)c->destination.len;
    b->key_len = (uint16_t)c->key.len;
    memcpy(b->exchange, c->exchange.ptr, c->exchange.len);
    memcpy(b->queue, c->destination.ptr, c->destination.len);
    if (c->key.len > 0)
        memcpy(b->key, c->key.ptr, c->key.len);
    sm->xbinding_count++;
    return 0;
}

static int sm__xunbind(broker_sm_t *sm, const broker_sm_cmd_t *c) {
    int rc = sm__xbinding_check(sm, c);
    if (rc != 0)
        return rc;
    int found;
    uint32_t pos = sm__table_pos(sm->xbindings, sm->xbinding_count, c->exchange,
                                 c->destination, c->key, &found);
    if (!found)
        return 0;
    memmove(&sm->xbindings[pos], &sm->xbindings[pos + 1],
            (sm->xbinding_count - pos - 1) * sizeof *sm->xbindings);
    sm->xbinding_count--;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Apply: publish */

/* Add the queues exchange `ex` routes key `key` to (not yet in targets). */
static uint32_t sm__route_one(const broker_sm_t *sm, const broker_exchange_t *ex,
                              broker_sm_str_t key, broker_queue_t **targets,
                              uint32_t n) {
    broker_sm_str_t none = {"", 0};
    broker_sm_str_t name = {ex->name, ex->name_len};
    int found;
    uint32_t i = sm__binding_pos(sm, name, none, none, &found);
    for (; i < sm->binding_count; i++) {
        const broker_binding_t *b = &sm->bindings[i];
        if (!sm__str_eq(name, b->exchange, b->exchange_len))
            break;
        if (!broker_exchange_matches(ex->type, b->key, b->key_len, key.ptr, key.len))
            continue;
        broker_queue_t *q = sm__queue(sm, b->queue, b->queue_len);
        assert(q != NULL); /* deleting a queue deletes its bindings */
        uint32_t k = 0;
        while (k < n && targets[k] != q)
            k++;
        if (k < n)
            continue; /* already a target */
        assert(n < SM_QUEUES_MAX);
        targets[n++] = q;
    }
    return n;
}

static int sm__queue_name_cmp(const void *a, const void *b) {
    const broker_queue_t *x = *(broker_queue_t *const *)a;
    const broker_queue_t *y = *(broker_queue_t *const *)b;
    return broker_name_cmp(x->name, x->name_len, y->name, y->name_len);
}

/* Queues the message goes to, in name order, each at most once: through
 * the exchange's queue bindings, then again through every exchange bound
 * to it whose binding matches (breadth first, each exchange once). */
static uint32_t sm__route(const broker_sm_t *sm, const broker_sm_cmd_t *c,
                          const broker_exchange_t *ex,
                          broker_queue_t **targets) {
    if (ex == NULL) { /* default exchange: the queue named by the key */
        broker_queue_t *q = sm__queue(sm, c->key.ptr, c->key.len);
        targets[0] = q;
        return q != NULL ? 1 : 0;
    }
    const broker_exchange_t *todo[SM_EXCHANGES_MAX];
    uint32_t head = 0, tail = 0, n = 0;
    todo[tail++] = ex;
    while (head < tail) {
        const broker_exchange_t *x = todo[head++];
        n = sm__route_one(sm, x, c->key, targets, n);
        broker_sm_str_t name = {x->name, x->name_len};
        broker_sm_str_t none = {"", 0};
        int found;
        uint32_t i = sm__table_pos(sm->xbindings, sm->xbinding_count, name, none, none,
                                   &found);
        for (; i < sm->xbinding_count; i++) {
            const broker_binding_t *b = &sm->xbindings[i];
            if (!sm__str_eq(name, b->exchange, b->exchange_len))
                break;
            if (!broker_exchange_matches(x->type, b->key, b->key_len, c->key.ptr, c->key.len))
                continue;
            const broker_exchange_t *d = broker_sm_exchange(sm, b->queue, b->queue_len);
            assert(d != NULL); /* deleting an exchange deletes its bindings */
            uint32_t k = 0;
            while (k < tail && todo[k] != d)
                k++;
            if (k == tail && tail < SM_EXCHANGES_MAX)
                todo[tail++] = d;
        }
    }
    if (n > 1) /* names are unique: a total, deterministic order */
        qsort(targets, n, sizeof *targets, sm__queue_name_cmp);
    return n;
}

/* Can every target take one more message of `body_len` bytes? */
static int sm__room(const broker_sm_t *sm, broker_queue_t **targets,
                    uint32_t n, uint32_t body_len) {
    for (uint32_t i = 0; i < n; i++) {
        if (targets[i]->count >= targets[i]->max_messages)
            return 0;
    }
    return sm->body_bytes + (uint64_t)n * body_len <= SM_BODY_BYTES_MAX;
}

/* Reserve queue slots and copy the payload once per target, before any
 * mutation. On failure frees what it made and returns IO_ENOMEM. */
static int sm__publish_prepare(broker_queue_t **targets, uint32_t n,
                               const broker_sm_cmd_t *c, uint8_t **datas) {
    for (uint32_t i = 0; i < n; i++) {
        if (broker_queue_reserve(targets[i], 1) != 0)
            return IO_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        datas[i] = broker_message_data_new(c->exchange.ptr, c->exchange.len,
                                           c->key.ptr, c->key.len, c->body,
                                           c->body_len);
        if (datas[i] == NULL) {
            for (uint32_t j = 0; j < i; j++)
                free(datas[j]);
            return IO_ENOMEM;
        }
    }
    return 0;
}

static int sm__publish(broker_sm_t *sm, uint64_t index,
                       const broker_sm_cmd_t *c, broker_sm_result_t *res) {
    const broker_exchange_t *ex = NULL;
    if (c->exchange.len > 0) {
        ex = broker_sm_exchange(sm, c->exchange.ptr, c->exchange.len);
        if (ex == NULL)
            return SM_ENOTFOUND;
        if (ex->internal)
            return SM_EACCESS; /* only through an exchange binding */
    }
    int dedup = sm->config.dedup && c->producer_id != 0;
    uint32_t pos;
    broker_sm_dedup_t *e =
        dedup ? sm__dedup_find(sm, c->producer_id, &pos) : NULL;
    if (e != NULL && sm__dedup_seen(e, c->sequence)) {
        e->last_index = index;
        sm->duplicates_total++;
        res->status = SM_STATUS_DUPLICATE;
        return 0;
    }
    broker_queue_t *targets[SM_QUEUES_MAX];
    uint8_t *datas[SM_QUEUES_MAX];
    uint32_t n = sm__route(sm, c, ex, targets);
    if (!sm__room(sm, targets, n, c->body_len)) {
        res->status = SM_STATUS_QUEUE_FULL; /* not recorded: a retry may pass */
        return 0;
    }
    if ((dedup && sm__dedup_reserve(sm) != 0) ||
        sm__publish_prepare(targets, n, c, datas) != 0)
        return IO_ENOMEM;
    uint64_t id = sm->next_message_id++;
    for (uint32_t i = 0; i < n; i++) {
        broker_message_t m = {
            .message_id = id, .producer_id = c->producer_id,
            .sequence = c->sequence, .enqueue_index = index,
            .body_len = c->body_len, .exchange_len = (uint16_t)c->exchange.len,
            .routing_key_len = (uint16_t)c->key.len,
            .persistent = c->persistent, .data = datas[i]};
        broker_queue_append(targets[i], &m);
    }
    sm->body_bytes += (uint64_t)n * c->body_len;
    if (dedup)
        sm__dedup_record(sm, c->producer_id, c->sequence, index);
    sm->published_total++;
    res->queues = n;
    res->message_id = id;
    res->status = n > 0 ? SM_STATUS_OK : SM_STATUS_UNROUTABLE;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Apply: settle / return / discard */

static int sm__find_message(const broker_sm_t *sm, const broker_sm_cmd_t *c,
                            broker_queue_t **q_out, uint32_t *pos_out) {
    broker_queue_t *q = sm__queue(sm, c->queue.ptr, c->queue.len);
    if (q == NULL)
        return SM_ENOTFOUND;
    int64_t pos = broker_queue_find(q, c->message_id);
    if (pos < 0)
        return SM_ENOTFOUND;
    *q_out = q;
    *pos_out = (uint32_t)pos;
    return 0;
}

static int sm__settle(broker_sm_t *sm, const broker_sm_cmd_t *c) {
    broker_queue_t *q;
    uint32_t pos;
    int rc = sm__find_message(sm, c, &q, &pos);
    if (rc != 0)
        return rc;
    broker_message_t m;
    broker_queue_remove(q, pos, &m);
    assert(sm->body_bytes >= m.body_len);
    sm->body_bytes -= m.body_len;
    free(m.data);
    return 0;
}

/* Move the message at q[pos] to q's dead-letter queue with a fresh id and a
 * zero delivery count, or drop it (and count it) when there is no such
 * queue or it is full. */
static int sm__dead_letter(broker_sm_t *sm, uint64_t index, broker_queue_t *q,
                           uint32_t pos, broker_sm_result_t *res) {
    broker_queue_t *dlq =
        q->dlq_len > 0 ? sm__queue(sm, q->dlq, q->dlq_len) : NULL;
    assert(dlq != q);
    if (dlq != NULL && dlq->count >= dlq->max_messages)
        dlq = NULL;
    if (dlq != NULL && broker_queue_reserve(dlq, 1) != 0)
        return IO_ENOMEM;
    broker_message_t m;
    broker_queue_remove(q, pos, &m);
    if (dlq == NULL) {
        assert(sm->body_bytes >= m.body_len);
        sm->body_bytes -= m.body_len;
        free(m.data);
        sm->dropped_total++;
        res->dropped = 1;
        return 0;
    }
    m.message_id = sm->next_message_id++;
    m.delivery_count = 0;
    m.enqueue_index = index;
    broker_queue_append(dlq, &m);
    sm->dead_lettered_total++;
    res->dead_lettered = 1;
    res->message_id = m.message_id;
    return 0;
}

static int sm__return(broker_sm_t *sm, uint64_t index,
                      const broker_sm_cmd_t *c, broker_sm_result_t *res) {
    broker_queue_t *q;
    uint32_t pos;
    int rc = sm__find_message(sm, c, &q, &pos);
    if (rc != 0)
        return rc;
    broker_message_t *m = broker_queue_at_mut(q, pos);
    uint32_t count = m->delivery_count == UINT32_MAX ? UINT32_MAX
                                                     : m->delivery_count + 1;
    if (q->delivery_limit > 0 && count >= q->delivery_limit)
        return sm__dead_letter(sm, index, q, pos, res);
    m->delivery_count = count;
    return 0;
}

static int sm__reject_discard(broker_sm_t *sm, uint64_t index,
                              const broker_sm_cmd_t *c,
                              broker_sm_result_t *res) {
    broker_queue_t *q;
    uint32_t pos;
    int rc = sm__find_message(sm, c, &q, &pos);
    if (rc != 0)
        return rc;
    return sm__dead_letter(sm, index, q, pos, res);
}

/* ------------------------------------------------------------------------ */
/* Apply: dispatch */

int broker_sm_apply_cmd(broker_sm_t *sm, uint64_t index,
                        const broker_sm_cmd_t *c, broker_sm_result_t *result) {
    assert(sm != NULL && c != NULL);
    assert(index > sm->last_applied); /* the log hands out indexes in order */
    broker_sm_result_t res;
    memset(&res, 0, sizeof res);
    int rc = SM_EMALFORMED;
    sm->last_applied = index;
    if (sm__cmd_valid(c)) {
        switch (c->type) {
        case SM_CMD_DECLARE_QUEUE:
        case SM_CMD_DECLARE_QUEUE_EX: rc = sm__declare_queue(sm, c, &res); break;
        case SM_CMD_PURGE_READY: rc = sm__purge_ready(sm, c, &res); break;
        case SM_CMD_DELETE_QUEUE: rc = sm__delete_queue(sm, c, &res); break;
        case SM_CMD_PURGE_QUEUE: rc = sm__purge_queue(sm, c, &res); break;
        case SM_CMD_DECLARE_EXCHANGE: rc = sm__declare_exchange(sm, c); break;
        case SM_CMD_DELETE_EXCHANGE: rc = sm__delete_exchange(sm, c); break;
        case SM_CMD_BIND: rc = sm__bind(sm, c); break;
        case SM_CMD_UNBIND: rc = sm__unbind(sm, c); break;
        case SM_CMD_BIND_EXCHANGE: rc = sm__xbind(sm, c); break;
        case SM_CMD_UNBIND_EXCHANGE: rc = sm__xunbind(sm, c); break;
        case SM_CMD_PUBLISH: rc = sm__publish(sm, index, c, &res); break;
        case SM_CMD_SETTLE: rc = sm__settle(sm, c); break;
        case SM_CMD_RETURN: rc = sm__return(sm, index, c, &res); break;
        default: rc = sm__reject_discard(sm, index, c, &res); break;
        }
    }
    if (rc < 0) {
        memset(&res, 0, sizeof res);
        res.status = rc;
    }
    if (result != NULL)
        *result = res;
    return rc < 0 ? rc : 0;
}

int broker_sm_apply(broker_sm_t *sm, uint64_t index, const uint8_t *bytes,
                    size_t len, broker_sm_result_t *result) {
    assert(sm != NULL);
    assert(bytes != NULL || len == 0);
    broker_sm_cmd_t c;
    if (broker_sm_cmd_decode(bytes, len, &c) != 0) {
        assert(index > sm->last_applied);
        sm->last_applied = index; /* applied, as a no-op */
        if (result != NULL) {
            memset(result, 0, sizeof *result);
            result->status = SM_EMALFORMED;
        }
        return SM_EMALFORMED;
    }
    return broker_sm_apply_cmd(sm, index, &c, result);
}

/* ------------------------------------------------------------------------ */
/* Invariants */

static int sm__check_queue(const broker_sm_t *sm, const broker_queue_t *q,
                           uint64_t *bytes) {
    if (q->name_len == 0 || q->max_messages == 0 ||
        q->max_messages > SM_QUEUE_MESSAGES_MAX || q->count > q->max_messages ||
        broker_name_cmp(q->name, q->name_len, q->dlq, q->dlq_len) == 0)
        return 0;
    uint64_t sum = 0, last = 0;
    for (uint32_t i = 0; i < q->count; i++) {
        const broker_message_t *m = broker_queue_at(q, i);
        if (m->message_id <= last || m->message_id >= sm->next_message_id ||
            m->body_len > SM_MESSAGE_BODY_MAX ||
            (q->delivery_limit > 0 && m->delivery_count >= q->delivery_limit))
            return 0;
        last = m->message_id;
        sum += m->body_len;
    }
    *bytes += sum;
    return sum == q->body_bytes;
}

static int sm__check_tables(const broker_sm_t *sm) {
    for (uint32_t i = 1; i < sm->queue_count; i++) {
        const broker_queue_t *a = sm->queues[i - 1], *b = sm->queues[i];
        if (broker_name_cmp(a->name, a->name_len, b->name, b->name_len) >= 0)
            return 0;
    }
    for (uint32_t i = 0; i < sm->exchange_count; i++) {
        const broker_exchange_t *e = &sm->exchanges[i];
        if (e->name_len == 0 || !broker_exchange_type_valid(e->type) ||
            (i > 0 && broker_name_cmp(sm->exchanges[i - 1].name,
                              sm->exchanges[i - 1].name_len, e->name,
                              e->name_len) >= 0))
            return 0;
    }
    for (uint32_t i = 0; i < sm->dedup_count; i++) {
        if (sm->dedup[i].producer_id == 0 || !(sm->dedup[i].window[0] & 1u) ||
            (i > 0 && sm->dedup[i - 1].producer_id >= sm->dedup[i].producer_id))
            return 0;
    }
    return 1;
}

static int sm__check_bindings(const broker_sm_t *sm) {
    for (uint32_t i = 0; i < sm->binding_count; i++) {
        const broker_binding_t *b = &sm->bindings[i];
        broker_sm_str_t ex = {b->exchange, b->exchange_len};
        broker_sm_str_t q = {b->queue, b->queue_len};
        broker_sm_str_t key = {b->key, b->key_len};
        if (broker_sm_exchange(sm, ex.ptr, ex.len) == NULL ||
            sm__queue(sm, q.ptr, q.len) == NULL ||
            (i > 0 && sm__binding_cmp(&sm->bindings[i - 1], ex, q, key) >= 0))
            return 0;
    }
    return 1;
}

static int sm__check_xbindings(const broker_sm_t *sm) {
    if (sm->xbinding_count > SM_XBINDINGS_MAX)
        return 0;
    for (uint32_t i = 0; i < sm->xbinding_count; i++) {
        const broker_binding_t *b = &sm->xbindings[i];
        broker_sm_str_t src = {b->exchange, b->exchange_len};
        broker_sm_str_t dst = {b->queue, b->queue_len};
        broker_sm_str_t key = {b->key, b->key_len};
        if (broker_sm_exchange(sm, src.ptr, src.len) == NULL ||
            broker_sm_exchange(sm, dst.ptr, dst.len) == NULL ||
            (i > 0 && sm__binding_cmp(&sm->xbindings[i - 1], src, dst, key) >= 0))
            return 0;
    }
    return 1;
}

int broker_sm_check(const broker_sm_t *sm) {
    assert(sm != NULL);
    if (sm->next_message_id == 0 || sm->queue_count > SM_QUEUES_MAX ||
        sm->exchange_count > SM_EXCHANGES_MAX ||
        sm->binding_count > SM_BINDINGS_MAX ||
        sm->dedup_count > SM_DEDUP_PRODUCERS_MAX ||
        sm->body_bytes > SM_BODY_BYTES_MAX)
        return 0;
    if (!sm__check_tables(sm) || !sm__check_bindings(sm) || !sm__check_xbindings(sm))
        return 0;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < sm->queue_count; i++) {
        if (!sm__check_queue(sm, sm->queues[i], &bytes))
            return 0;
    }
    return bytes == sm->body_bytes;
}

/* ------------------------------------------------------------------------ */
/* Snapshot and digest: one walker over the state in table order. */

static void sm__walk_queue(const broker_queue_t *q, sm__sink_t *s) {
    sm__put_str(s, q->name, q->name_len);
    sm__put_str(s, q->dlq, q->dlq_len);
    sm__put_u32(s, q->delivery_limit);
    sm__put_u32(s, q->max_messages);
    sm__put_u8(s, q->props); /* since version 4 */
    sm__put_u64(s, q->owner);
    sm__put_u32(s, q->count);
    for (uint32_t i = 0; i < q->count; i++) {
        const broker_message_t *m = broker_queue_at(q, i);
        sm__put_u64(s, m->message_id);
        sm__put_u64(s, m->producer_id);
        sm__put_u64(s, m->sequence);
        sm__put_u64(s, m->enqueue_index);
        sm__put_u32(s, m->delivery_count);
        sm__put_u8(s, m->persistent);
        sm__put_str(s, broker_message_exchange(m), m->exchange_len);
        sm__put_str(s, broker_message_routing_key(m), m->routing_key_len);
        sm__put_u32(s, m->body_len);
        sm__put(s, broker_message_body(m), m->body_len);
    }
}

static void sm__walk(const broker_sm_t *sm, sm__sink_t *s) {
    sm__put_u32(s, SM__SNAPSHOT_MAGIC);
    sm__put_u32(s, SM__SNAPSHOT_VERSION);
    sm__put_u64(s, sm->last_applied);
    sm__put_u64(s, sm->next_message_id);
    sm__put_u64(s, sm->published_total);
    sm__put_u64(s, sm->duplicates_total);
    sm__put_u64(s, sm->dead_lettered_total);
    sm__put_u64(s, sm->dropped_total);
    sm__put_u32(s, sm->dedup_count);
    for (uint32_t i = 0; i < sm->dedup_count; i++) {
        sm__put_u64(s, sm->dedup[i].producer_id);
        sm__put_u64(s, sm->dedup[i].highest);
        for (uint32_t w = 0; w < SM_DEDUP_WINDOW_WORDS; w++)
            sm__put_u64(s, sm->dedup[i].window[w]);
        sm__put_u64(s, sm->dedup[i].last_index);
    }
    sm__put_u32(s, sm->exchange_count);
    for (uint32_t i = 0; i < sm->exchange_count; i++) {
        sm__put_str(s, sm->exchanges[i].name, sm->exchanges[i].name_len);
        sm__put_u8(s, sm->exchanges[i].type);
        sm__put_u8(s, sm->exchanges[i].internal); /* since version 4 */
    }
    sm__put_u32(s, sm->queue_count);
    for (uint32_t i = 0; i < sm->queue_count; i++)
        sm__walk_queue(sm->queues[i], s);
    sm__put_u32(s, sm->binding_count);
    for (uint32_t i = 0; i < sm->binding_count; i++) {
        const broker_binding_t *b = &sm->bindings[i];
        sm__put_str(s, b->exchange, b->exchange_len);
        sm__put_str(s, b->queue, b->queue_len);
        sm__put_str(s, b->key, b->key_len);
    }
    sm__put_u32(s, sm->xbinding_count); /* since version 3 */
    for (uint32_t i = 0; i < sm->xbinding_count; i++) {
        const broker_binding_t *b = &sm->xbindings[i];
        sm__put_str(s, b->exchange, b->exchange_len);
        sm__put_str(s, b->queue, b->queue_len);
        sm__put_str(s, b->key, b->key_len);
    }
}

uint64_t broker_sm_digest(const broker_sm_t *sm) {
    assert(sm != NULL);
    sm__sink_t s = {.hashing = 1, .hash = SM__FNV_OFFSET};
    sm__walk(sm, &s);
    assert(s.pos >= 8);
    return s.hash;
}

size_t broker_sm_snapshot_size(const broker_sm_t *sm) {
    assert(sm != NULL);
    sm__sink_t s = {0};
    sm__walk(sm, &s);
    return s.pos + 8; /* + checksum */
}

int64_t broker_sm_snapshot_serialize(const broker_sm_t *sm, uint8_t *buf,
                                     size_t cap) {
    assert(sm != NULL);
    size_t need = broker_sm_snapshot_size(sm);
    if (buf == NULL || cap < need)
        return SM_ENOSPACE;
    sm__sink_t s = {.buf = buf, .hashing = 1, .hash = SM__FNV_OFFSET};
    sm__walk(sm, &s);
    uint64_t sum = s.hash;
    s.hashing = 0;
    sm__put_u64(&s, sum);
    assert(s.pos == need);
    return (int64_t)need;
}

/* ------------------------------------------------------------------------ */
/* Restore: parse into a fresh machine, validate, then swap. */

static int sm__restore_dedup(broker_sm_t *t, sm__rd_t *r) {
    uint32_t n = sm__get_u32(r);
    if (r->bad || n > SM_DEDUP_PRODUCERS_MAX)
        return SM_EMALFORMED;
    if (n > 0 && broker_table_grow((void **)&t->dedup, &t->dedup_capacity, n,
                          sizeof *t->dedup, SM_DEDUP_PRODUCERS_MAX))
        return IO_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        broker_sm_dedup_t e;
        e.producer_id = sm__get_u64(r);
        e.highest = sm__get_u64(r);
        for (uint32_t w = 0; w < SM_DEDUP_WINDOW_WORDS; w++)
            e.window[w] = sm__get_u64(r);
        e.last_index = sm__get_u64(r);
        if (r->bad || e.producer_id == 0 || !(e.window[0] & 1u) ||
            e.last_index > t->last_applied ||
            (i > 0 && t->dedup[i - 1].producer_id >= e.producer_id))
            return SM_EMALFORMED;
        t->dedup[t->dedup_count++] = e;
    }
    return 0;
}

static int sm__restore_exchanges(broker_sm_t *t, sm__rd_t *r, uint32_t version) {
    uint32_t n = sm__get_u32(r);
    if (r->bad || n > SM_EXCHANGES_MAX)
        return SM_EMALFORMED;
    if (n > 0 && broker_table_grow((void **)&t->exchanges, &t->exchange_capacity, n,
                          sizeof *t->exchanges, SM_EXCHANGES_MAX))
        return IO_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        broker_sm_str_t name = sm__get_str(r);
        uint8_t type = sm__get_u8(r);
        uint8_t internal = version >= 4u ? sm__get_u8(r) : 0;
        if (r->bad || name.len == 0 || !broker_exchange_type_valid(type) || internal > 1)
            return SM_EMALFORMED;
        if (i > 0) {
            const broker_exchange_t *p = &t->exchanges[i - 1];
            if (broker_name_cmp(p->name, p->name_len, name.ptr, name.len) >= 0)
                return SM_EMALFORMED;
        }
        broker_exchange_t *e = &t->exchanges[t->exchange_count++];
        memset(e, 0, sizeof *e);
        e->type = type;
        e->internal = internal;
        e->name_len = (uint16_t)name.len;
        memcpy(e->name, name.ptr, name.len);
    }
    return 0;
}

/* One message; appended to q when valid. */
static int sm__restore_message(broker_sm_t *t, broker_queue_t *q,
                               sm__rd_t *r) {
    broker_message_t m;
    memset(&m, 0, sizeof m);
    m.message_id = sm__get_u64(r);
    m.producer_id = sm__get_u64(r);
    m.sequence = sm__get_u64(r);
    m.enqueue_index = sm__get_u64(r);
    m.delivery_count = sm__get_u32(r);
    m.persistent = sm__get_u8(r);
    broker_sm_str_t ex = sm__get_str(r);
    broker_sm_str_t rk = sm__get_str(r);
    m.body_len = sm__get_u32(r);
    if (r->bad || m.body_len > SM_MESSAGE_BODY_MAX)
        return SM_EMALFORMED;
    const uint8_t *body = sm__take(r, m.body_len);
    uint64_t last_id = q->count ? broker_queue_at(q, q->count - 1)->message_id : 0;
    if (r->bad || m.persistent > 1 || m.message_id <= last_id ||
        m.message_id >= t->next_message_id ||
        m.enqueue_index > t->last_applied ||
        (q->delivery_limit > 0 && m.delivery_count >= q->delivery_limit) ||
        t->body_bytes + m.body_len > SM_BODY_BYTES_MAX)
        return SM_EMALFORMED;
    m.exchange_len = (uint16_t)ex.len;
    m.routing_key_len = (uint16_t)rk.len;
    m.data = broker_message_data_new(ex.ptr, ex.len, rk.ptr, rk.len, body,
                                     m.body_len);
    if (m.data == NULL)
        return IO_ENOMEM;
    broker_queue_append(q, &m);
    t->body_bytes += m.body_len;
    return 0;
}

static int sm__restore_queue(broker_sm_t *t, sm__rd_t *r, uint32_t version) {
    broker_sm_str_t name = sm__get_str(r);
    broker_sm_str_t dlq = sm__get_str(r);
    uint32_t limit = sm__get_u32(r);
    uint32_t max = sm__get_u32(r);
    uint8_t props = version >= 4u ? sm__get_u8(r) : 0;
    uint64_t owner = version >= 4u ? sm__get_u64(r) : 0;
    uint32_t count = sm__get_u32(r);
    if (r->bad || name.len == 0 || sm__str_eq(dlq, name.ptr, name.len) ||
        max == 0 || max > SM_QUEUE_MESSAGES_MAX || count > max ||
        (props & ~BROKER_QUEUE_PROPS_ALL) ||
        (owner != 0 && !(props & BROKER_QUEUE_PROP_EXCLUSIVE)))
        return SM_EMALFORMED;
    if (t->queue_count > 0) {
        const broker_queue_t *p = t->queues[t->queue_count - 1];
        if (broker_name_cmp(p->name, p->name_len, name.ptr, name.len) >= 0)
            return SM_EMALFORMED;
    }
    broker_queue_t *q =
        broker_queue_new(name.ptr, name.len, dlq.ptr, dlq.len, limit, max);
    if (q == NULL)
        return IO_ENOMEM;
    q->props = props;
    q->owner = owner;
    t->queues[t->queue_count++] = q; /* owned by t from here on */
    if (count > 0 && broker_queue_reserve(q, count) != 0)
        return IO_ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        int rc = sm__restore_message(t, q, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int sm__restore_queues(broker_sm_t *t, sm__rd_t *r, uint32_t version) {
    uint32_t n = sm__get_u32(r);
    if (r->bad || n > SM_QUEUES_MAX)
        return SM_EMALFORMED;
    if (n > 0 && broker_table_grow((void **)&t->queues, &t->queue_capacity, n,
                          sizeof *t->queues, SM_QUEUES_MAX))
        return IO_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        int rc = sm__restore_queue(t, r, version);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int sm__restore_bindings(broker_sm_t *t, sm__rd_t *r) {
    uint32_t n = sm__get_u32(r);
    if (r->bad || n > SM_BINDINGS_MAX)
        return SM_EMALFORMED;
    if (n > 0 && broker_table_grow((void **)&t->bindings, &t->binding_capacity, n,
                          sizeof *t->bindings, SM_BINDINGS_MAX))
        return IO_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        broker_sm_cmd_t c;
        memset(&c, 0, sizeof c);
        c.exchange = sm__get_str(r);
        c.queue = sm__get_str(r);
        c.key = sm__get_str(r);
        if (r->bad || sm__binding_check(t, &c) != 0 ||
            (i > 0 && sm__binding_cmp(&t->bindings[i - 1], c.exchange,
                                      c.queue, c.key) >= 0))
            return SM_EMALFORMED;
        /* Append at the end: the order check above keeps the table sorted. */
        int found;
        uint32_t pos = sm__binding_pos(t, c.exchange, c.queue, c.key, &found);
        assert(pos == t->binding_count && !found);
        (void)pos;
        int rc = sm__bind(t, &c);
        assert(rc == 0);
        (void)rc;
    }
    return 0;
}

static int sm__restore_xbindings(broker_sm_t *t, sm__rd_t *r) {
    uint32_t n = sm__get_u32(r);
    if (r->bad || n > SM_XBINDINGS_MAX)
        return SM_EMALFORMED;
    for (uint32_t i = 0; i < n; i++) {
        broker_sm_cmd_t c;
        memset(&c, 0, sizeof c);
        c.exchange = sm__get_str(r);
        c.destination = sm__get_str(r);
        c.key = sm__get_str(r);
        if (r->bad || sm__xbinding_check(t, &c) != 0 ||
            (i > 0 && sm__binding_cmp(&t->xbindings[i - 1], c.exchange, c.destination,
                                      c.key) >= 0))
            return SM_EMALFORMED;
        int rc = sm__xbind(t, &c); /* sorted input: appends */
        if (rc != 0)
            return rc == IO_ENOMEM ? rc : SM_EMALFORMED;
    }
    return 0;
}

static int sm__restore_body(broker_sm_t *t, sm__rd_t *r) {
    if (sm__get_u32(r) != SM__SNAPSHOT_MAGIC)
        return SM_EMALFORMED;
    /* Versions 2 (no exchange bindings) and 3 (no queue props) are still
     * read: a node upgraded on its old data dir. */
    const uint32_t version = sm__get_u32(r);
    if (version < 2u || version > SM__SNAPSHOT_VERSION)
        return SM_EMALFORMED;
    t->last_applied = sm__get_u64(r);
    t->next_message_id = sm__get_u64(r);
    t->published_total = sm__get_u64(r);
    t->duplicates_total = sm__get_u64(r);
    t->dead_lettered_total = sm__get_u64(r);
    t->dropped_total = sm__get_u64(r);
    if (r->bad || t->next_message_id == 0)
        return SM_EMALFORMED;
    int rc = sm__restore_dedup(t, r);
    if (rc == 0)
        rc = sm__restore_exchanges(t, r, version);
    if (rc == 0)
        rc = sm__restore_queues(t, r, version);
    if (rc == 0)
        rc = sm__restore_bindings(t, r);
    if (rc == 0 && version >= 3u)
        rc = sm__restore_xbindings(t, r);
    if (rc == 0 && (r->bad || r->pos != r->len))
        rc = SM_EMALFORMED;
    return rc;
}

int broker_sm_restore(broker_sm_t *sm, const uint8_t *bytes, size_t len) {
    assert(sm != NULL);
    assert(bytes != NULL || len == 0);
    if (len < 8 + 8)
        return SM_EMALFORMED;
    /* The checksum first: garbage is rejected before any allocation. */
    sm__sink_t h = {.hashing = 1, .hash = SM__FNV_OFFSET};
    sm__put(&h, bytes, len - 8);
    sm__rd_t tail = {bytes + len - 8, 8, 0, 0};
    if (sm__get_u64(&tail) != h.hash)
        return SM_EMALFORMED;
    broker_sm_t t;
    broker_sm_init(&t, &sm->config);
    sm__rd_t r = {bytes, len - 8, 0, 0};
    int rc = sm__restore_body(&t, &r);
    if (rc != 0) {
        broker_sm_close(&t);
        return rc;
    }
    /* Dead-letter queues that do not exist yet are fine (resolved when a
     * message is dead-lettered); everything else has been checked. */
    broker_sm_close(sm);
    *sm = t;
    return 0;
}
