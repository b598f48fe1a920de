/*
 * broker/session.c — leader-local consumer sessions (see session.h).
 *
 * Three tables: sessions (sorted by id), consumers (attach order, which is
 * also ascending `seq`), tracks (one per queue that has consumers or pending
 * messages, sorted by name). A track keeps the queue's pending message ids
 * sorted, so dispatch merges it with the queue (also sorted by id) in one
 * pass instead of searching per message.
 */
#include "broker/session.h"
#include "broker/table.h"

#include "broker/io.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum {
    SESSIONS__DELIVERED = 1, /* with a consumer, unacked */
    SESSIONS__SETTLING = 2,  /* SETTLE/REJECT_DISCARD proposed: until gone */
    SESSIONS__RETURNING = 3, /* RETURN proposed: until count > seen or gone */
};

typedef struct broker_sessions__pending {
    uint64_t message_id;
    uint32_t seen_count; /* delivery_count when delivered */
    uint8_t state;
} sessions__pending_t;

typedef struct broker_sessions__track {
    uint16_t name_len;
    char name[SM_NAME_MAX + 1];
    sessions__pending_t *pending; /* sorted by message_id */
    uint32_t pending_count, pending_capacity;
    uint32_t consumers; /* attached consumers */
    uint8_t exclusive;  /* its one consumer is exclusive (AMQP basic.consume) */
    uint32_t unsettled; /* pending entries not DELIVERED: what gc may drop */
    /* SM index gc last ran at: only applying a command (the SETTLE or RETURN
     * a resolve proposed, a purge, ...) can make an entry droppable. */
    uint64_t gc_applied;
    uint64_t rr_seq;    /* seq of the consumer served last */
    /* Dispatch resumes here: every queue message with a smaller id is in
     * `pending`. Sound because new messages always get fresh, larger ids
     * (publish and dead-letter alike), and gc lowers it when it drops the
     * entry of a message still queued (a RETURN to redeliver). */
    uint64_t scan_from_id;
} sessions__track_t;

typedef struct broker_sessions__consumer {
    uint64_t seq; /* attach order, unique */
    uint64_t session_id;
    sessions__track_t *track;
    uint32_t prefetch; /* 0 = SESSION_INFLIGHT_MAX */
    uint32_t unacked;
    uint32_t round; /* auto-ack: deliveries in this dispatch call */
    uint8_t auto_ack;
    uint8_t exclusive;
    uint16_t tag_len;
    char tag[SM_NAME_MAX + 1];
} sessions__consumer_t;

typedef struct sessions__delivery {
    uint64_t tag, message_id, consumer_seq, deadline_ns; /* 0 = none */
    sessions__track_t *track;
    uint32_t seen_count;
} sessions__delivery_t;

typedef struct broker_sessions__session {
    uint64_t id, heartbeat_timeout_ns, last_seen_ns, next_tag;
    /* Live deliveries are slots[first, first + count), sorted by tag. Acks
     * mostly take the oldest: advancing `first` instead of moving the rest
     * (a whole prefetch window per ack) keeps them O(1). */
    sessions__delivery_t *slots;
    uint32_t first, count, capacity;
    uint32_t consumers;
} sessions__session_t;

static inline sessions__delivery_t *sessions__dv(sessions__session_t *ss) {
    assert(ss->first + ss->count <= ss->capacity || ss->count == 0);
    return ss->count > 0 ? ss->slots + ss->first : ss->slots; /* no NULL + 0 */
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static uint32_t sessions__session_pos(const broker_sessions_t *s, uint64_t id,
                                      int *found) {
    uint32_t lo = 0, hi = s->session_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->sessions[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->session_count && s->sessions[lo]->id == id;
    return lo;
}

static sessions__session_t *sessions__session(const broker_sessions_t *s,
                                              uint64_t id) {
    int found;
    uint32_t pos = sessions__session_pos(s, id, &found);
    return found ? s->sessions[pos] : NULL;
}

static sessions__consumer_t *sessions__consumer_by_seq(broker_sessions_t *s,
                                                       uint64_t seq) {
    uint32_t lo = 0, hi = s->consumer_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->consumers[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->consumer_count && s->consumers[lo].seq == seq)
        return &s->consumers[lo];
    return NULL;
}

static uint32_t sessions__track_pos(const broker_sessions_t *s,
                                    const char *name, size_t len, int *found) {
    uint32_t lo = 0, hi = s->track_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const sessions__track_t *t = s->tracks[mid];
        if (broker_name_cmp(t->name, t->name_len, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->track_count &&
             broker_name_cmp(s->tracks[lo]->name, s->tracks[lo]->name_len, name,
                           len) == 0;
    return lo;
}

/* Index of `id` in t->pending (lower bound). */
static uint32_t sessions__pending_pos(const sessions__track_t *t,
                                      uint64_t id) {
    uint32_t lo = 0, hi = t->pending_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->pending[mid].message_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void broker_session_cmd_to_sm(const broker_session_cmd_t *in,
                              broker_sm_cmd_t *out) {
    assert(in != NULL && out != NULL);
    assert(in->queue_len <= SM_NAME_MAX);
    memset(out, 0, sizeof *out);
    out->type = in->type;
    out->queue.ptr = in->queue;
    out->queue.len = in->queue_len;
    out->exchange.ptr = out->key.ptr = out->dlq.ptr = "";
    out->message_id = in->message_id;
}

static void sessions__emit(broker_session_cmd_t *cmd, uint8_t type,
                           const sessions__track_t *t, uint64_t message_id) {
    assert(cmd != NULL && t != NULL);
    assert(type == SM_CMD_SETTLE || type == SM_CMD_RETURN ||
           type == SM_CMD_REJECT_DISCARD);
    memset(cmd, 0, sizeof *cmd);
    cmd->type = type;
    cmd->queue_len = t->name_len;
    memcpy(cmd->queue, t->name, t->name_len);
    cmd->message_id = message_id;
}

/* ------------------------------------------------------------------------ */
/* Init / close / sessions */

void broker_sessions_init(broker_sessions_t *s,
                          const broker_sessions_config_t *config,
                          uint64_t fresh_from_id) {
    assert(s != NULL);
    memset(s, 0, sizeof *s);
    if (config != NULL)
        s->config = *config;
    s->fresh_from_id = fresh_from_id;
    s->next_consumer_seq = 1;
}

void broker_sessions_set_fresh_from(broker_sessions_t *s, uint64_t fresh_from_id) {
    assert(s != NULL);
    s->fresh_from_id = fresh_from_id;
}

void broker_sessions_close(broker_sessions_t *s) {
    assert(s != NULL);
    for (uint32_t i = 0; i < s->session_count; i++) {
        free(s->sessions[i]->slots);
        free(s->sessions[i]);
    }
    for (uint32_t i = 0; i < s->track_count; i++) {
        free(s->tracks[i]->pending);
        free(s->tracks[i]);
    }
    free(s->sessions);
    free(s->consumers);
    free(s->tracks);
    free(s->scratch);
    memset(s, 0, sizeof *s);
}

int broker_sessions_open_session(broker_sessions_t *s, uint64_t id,
                                 uint64_t heartbeat_timeout_ns,
                                 uint64_t now_ns) {
    assert(s != NULL);
    int found;
    uint32_t pos = sessions__session_pos(s, id, &found);
    if (found)
        return SM_EEXISTS;
    if (s->session_count >= SESSIONS_MAX)
        return SM_ELIMIT;
    if (broker_table_grow((void **)&s->sessions, &s->session_capacity,
                       s->session_count + 1, sizeof *s->sessions, SESSIONS_MAX))
        return IO_ENOMEM;
    sessions__session_t *ss = calloc(1, sizeof *ss);
    if (ss == NULL)
        return IO_ENOMEM;
    ss->id = id;
    ss->heartbeat_timeout_ns = heartbeat_timeout_ns;
    ss->last_seen_ns = now_ns;
    ss->next_tag = 1;
    memmove(&s->sessions[pos + 1], &s->sessions[pos],
            (s->session_count - pos) * sizeof *s->sessions);
    s->sessions[pos] = ss;
    s->session_count++;
    assert(sessions__session(s, id) == ss);
    return 0;
}

int broker_sessions_touch(broker_sessions_t *s, uint64_t id, uint64_t now_ns) {
    assert(s != NULL);
    sessions__session_t *ss = sessions__session(s, id);
    if (ss == NULL)
        return SM_ENOTFOUND;
    if (now_ns > ss->last_seen_ns)
        ss->last_seen_ns = now_ns;
    return 0;
}

uint32_t broker_sessions_unacked(const broker_sessions_t *s, uint64_t id) {
    assert(s != NULL);
    const sessions__session_t *ss = sessions__session(s, id);
    return ss != NULL ? ss->count : 0;
}

/* ------------------------------------------------------------------------ */
/* Consumers */

static sessions__track_t *sessions__track_get(broker_sessions_t *s,
                                              const char *name, size_t len) {
    int found;
    uint32_t pos = sessions__track_pos(s, name, len, &found);
    if (found)
        return s->tracks[pos];
    if (s->track_count >= SESSION_TRACKS_MAX ||
        broker_table_grow((void **)&s->tracks, &s->track_capacity,
                       s->track_count + 1, sizeof *s->tracks,
                       SESSION_TRACKS_MAX))
        return NULL;
    sessions__track_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->name_len = (uint16_t)len;
    memcpy(t->name, name, len);
    memmove(&s->tracks[pos + 1], &s->tracks[pos],
            (s->track_count - pos) * sizeof *s->tracks);
    s->tracks[pos] = t;
    s->track_count++;
    return t;
}

static int sessions__tag_used(const broker_sessions_t *s, uint64_t id,
                              const char *tag, size_t len) {
    for (uint32_t i = 0; i < s->consumer_count; i++) {
        const sessions__consumer_t *c = &s->consumers[i];
        if (c->session_id == id &&
            broker_name_cmp(c->tag, c->tag_len, tag, len) == 0)
            return 1;
    }
    return 0;
}

int broker_sessions_consume(broker_sessions_t *s, const broker_sm_t *sm,
                            uint64_t id, const char *tag, size_t tag_len,
                            const char *queue, size_t queue_len,
                            uint32_t prefetch, int auto_ack) {
    assert(s != NULL && sm != NULL);
    sessions__session_t *ss = sessions__session(s, id);
    if (ss == NULL || queue_len > SM_NAME_MAX ||
        broker_sm_queue(sm, queue, queue_len) == NULL)
        return SM_ENOTFOUND;
    if (tag == NULL || tag_len == 0 || tag_len > SM_NAME_MAX)
        return SM_EINVALID;
    if (sessions__tag_used(s, id, tag, tag_len))
        return SM_EEXISTS;
    if (ss->consumers >= SESSION_CONSUMERS_MAX)
        return SM_ELIMIT;
    uint32_t total_max = SESSIONS_MAX * SESSION_CONSUMERS_MAX;
    if (broker_table_grow((void **)&s->consumers, &s->consumer_capacity,
                       s->consumer_count + 1, sizeof *s->consumers,
                       total_max) ||
        broker_table_grow((void **)&s->scratch, &s->scratch_capacity,
                       s->consumer_count + 1, sizeof *s->scratch, total_max))
        return IO_ENOMEM;
    sessions__track_t *t = sessions__track_get(s, queue, queue_len);
    if (t == NULL)
        return s->track_count >= SESSION_TRACKS_MAX ? SM_ELIMIT : IO_ENOMEM;
    sessions__consumer_t *c = &s->consumers[s->consumer_count++];
    memset(c, 0, sizeof *c);
    c->seq = s->next_consumer_seq++;
    c->session_id = id;
    c->track = t;
    c->prefetch = prefetch;
    c->auto_ack = auto_ack ? 1 : 0;
    c->tag_len = (uint16_t)tag_len;
    memcpy(c->tag, tag, tag_len);
    t->consumers++;
    ss->consumers++;
    return 0;
}

int broker_sessions_consume_ex(broker_sessions_t *s, const broker_sm_t *sm, uint64_t id,
                               const char *tag, size_t tag_len, const char *queue,
                               size_t queue_len, uint32_t prefetch, int auto_ack,
                               int exclusive) {
    assert(s != NULL && sm != NULL);
    int found;
    uint32_t pos = queue_len <= SM_NAME_MAX ? sessions__track_pos(s, queue, queue_len, &found) : 0;
    if (queue_len <= SM_NAME_MAX && found) {
        const sessions__track_t *t = s->tracks[pos];
        if (t->exclusive || (exclusive && t->consumers > 0))
            return SM_EINUSE;
    }
    int rc = broker_sessions_consume(s, sm, id, tag, tag_len, queue, queue_len, prefetch,
                                     auto_ack);
    if (rc != 0 || !exclusive)
        return rc;
    sessions__consumer_t *c = &s->consumers[s->consumer_count - 1]; /* just added */
    c->exclusive = 1;
    c->track->exclusive = 1;
    return 0;
}

static void sessions__consumer_remove(broker_sessions_t *s, uint32_t i) {
    assert(i < s->consumer_count);
    sessions__consumer_t *c = &s->consumers[i];
    sessions__session_t *ss = sessions__session(s, c->session_id);
    assert(ss != NULL && ss->consumers > 0 && c->track->consumers > 0);
    ss->consumers--;
    c->track->consumers--;
    if (c->exclusive) c->track->exclusive = 0;
    memmove(&s->consumers[i], &s->consumers[i + 1],
            (s->consumer_count - i - 1) * sizeof *s->consumers);
    s->consumer_count--;
}

int broker_sessions_cancel(broker_sessions_t *s, uint64_t id, const char *tag,
                           size_t tag_len) {
    assert(s != NULL);
    assert(tag != NULL || tag_len == 0);
    for (uint32_t i = 0; i < s->consumer_count; i++) {
        const sessions__consumer_t *c = &s->consumers[i];
        if (c->session_id == id &&
            broker_name_cmp(c->tag, c->tag_len, tag, tag_len) == 0) {
            sessions__consumer_remove(s, i);
            return 0;
        }
    }
    return SM_ENOTFOUND;
}

/* ------------------------------------------------------------------------ */
/* Resolving deliveries: ack, nack, expiry, timeout */

/* Turn delivery `d` into command `type`: its pending entry stops blocking
 * once the SM shows the outcome. */
static void sessions__resolve(broker_sessions_t *s,
                              const sessions__delivery_t *d, uint8_t type,
                              broker_session_cmd_t *cmd) {
    sessions__track_t *t = d->track;
    uint32_t pos = sessions__pending_pos(t, d->message_id);
    assert(pos < t->pending_count);
    sessions__pending_t *p = &t->pending[pos];
    assert(p->message_id == d->message_id && p->state == SESSIONS__DELIVERED);
    p->state = type == SM_CMD_RETURN ? SESSIONS__RETURNING : SESSIONS__SETTLING;
    p->seen_count = d->seen_count;
    t->unsettled++;
    assert(t->unsettled <= t->pending_count);
    sessions__consumer_t *c = sessions__consumer_by_seq(s, d->consumer_seq);
    if (c != NULL) {
        assert(c->unacked > 0);
        c->unacked--;
    }
    sessions__emit(cmd, type, t, d->message_id);
}

/* Resolve deliveries [0, k) of `ss` with `type` (a tag-ordered prefix). */
static void sessions__resolve_prefix(broker_sessions_t *s,
                                     sessions__session_t *ss, uint32_t k,
                                     uint8_t type, broker_session_cmd_t *cmds) {
    assert(k <= ss->count);
    sessions__delivery_t *dv = sessions__dv(ss);
    for (uint32_t i = 0; i < k; i++)
        sessions__resolve(s, &dv[i], type, &cmds[i]);
    ss->count -= k;
    ss->first = ss->count > 0 ? ss->first + k : 0;
}

static int sessions__settle_tags(broker_sessions_t *s, uint64_t id,
                                 uint64_t delivery_tag, int multiple,
                                 uint8_t type, broker_session_cmd_t *cmds,
                                 uint32_t cap, uint32_t *n_out) {
    assert(s != NULL && n_out != NULL);
    *n_out = 0;
    sessions__session_t *ss = sessions__session(s, id);
    if (ss == NULL)
        return SM_ENOTFOUND;
    sessions__delivery_t *dv = sessions__dv(ss);
    /* deliveries are sorted by tag: find the first with tag >= delivery_tag */
    uint32_t lo = 0, hi = ss->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (dv[mid].tag < delivery_tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    int exact = lo < ss->count && dv[lo].tag == delivery_tag;
    if (multiple && delivery_tag == 0) {
        lo = ss->count; /* AMQP: multiple with tag 0 means everything */
        exact = 1;
    }
    if (!exact)
        return SM_ENOTFOUND;
    uint32_t first = multiple ? 0 : lo;
    uint32_t k = multiple ? lo + (delivery_tag == 0 ? 0 : 1) : 1;
    if (k > cap)
        return SM_ENOSPACE;
    if (first > 0) { /* single delivery in the middle: move it to the front */
        sessions__delivery_t d = dv[first];
        memmove(dv + 1, dv, first * sizeof *dv);
        dv[0] = d;
    }
    sessions__resolve_prefix(s, ss, k, type, cmds);
    *n_out = k;
    return 0;
}

int broker_sessions_ack(broker_sessions_t *s, uint64_t id,
                        uint64_t delivery_tag, int multiple,
                        broker_session_cmd_t *cmds, uint32_t cap,
                        uint32_t *n_out) {
    return sessions__settle_tags(s, id, delivery_tag, multiple, SM_CMD_SETTLE,
                                 cmds, cap, n_out);
}

int broker_sessions_nack(broker_sessions_t *s, uint64_t id,
                         uint64_t delivery_tag, int multiple, int requeue,
                         broker_session_cmd_t *cmds, uint32_t cap,
                         uint32_t *n_out) {
    uint8_t type = requeue ? SM_CMD_RETURN : SM_CMD_REJECT_DISCARD;
    return sessions__settle_tags(s, id, delivery_tag, multiple, type, cmds,
                                 cap, n_out);
}

/* Drop session at `pos` with its consumers (deliveries already resolved). */
static void sessions__session_remove(broker_sessions_t *s, uint32_t pos) {
    sessions__session_t *ss = s->sessions[pos];
    assert(ss->count == 0);
    for (uint32_t i = s->consumer_count; i-- > 0;) {
        if (s->consumers[i].session_id == ss->id)
            sessions__consumer_remove(s, i);
    }
    assert(ss->consumers == 0);
    free(ss->slots);
    free(ss);
    memmove(&s->sessions[pos], &s->sessions[pos + 1],
            (s->session_count - pos - 1) * sizeof *s->sessions);
    s->session_count--;
}

int broker_sessions_close_session(broker_sessions_t *s, uint64_t id,
                                  broker_session_cmd_t *cmds, uint32_t cap,
                                  uint32_t *n_out) {
    assert(s != NULL && n_out != NULL);
    *n_out = 0;
    int found;
    uint32_t pos = sessions__session_pos(s, id, &found);
    if (!found)
        return SM_ENOTFOUND;
    sessions__session_t *ss = s->sessions[pos];
    if (ss->count > cap)
        return SM_ENOSPACE;
    *n_out = ss->count;
    sessions__resolve_prefix(s, ss, ss->count, SM_CMD_RETURN, cmds);
    sessions__session_remove(s, pos);
    return 0;
}

/* RETURN the deliveries of `ss` that are due (all if `all`), while room
 * remains in cmds. Returns 1 if some due delivery had no room. */
static int sessions__expire(broker_sessions_t *s, sessions__session_t *ss,
                            uint64_t now_ns, int all,
                            broker_session_cmd_t *cmds, uint32_t cap,
                            uint32_t *n) {
    uint32_t out = 0;
    int more = 0;
    sessions__delivery_t *dv = sessions__dv(ss);
    for (uint32_t i = 0; i < ss->count; i++) {
        const sessions__delivery_t *d = &dv[i];
        int due = all || (d->deadline_ns != 0 && now_ns >= d->deadline_ns);
        if (due && *n < cap) {
            sessions__resolve(s, d, SM_CMD_RETURN, &cmds[(*n)++]);
            continue;
        }
        more |= due;
        dv[out++] = *d;
    }
    ss->count = out;
    return more;
}

int broker_sessions_tick(broker_sessions_t *s, uint64_t now_ns,
                         broker_session_cmd_t *cmds, uint32_t cap,
                         uint32_t *n_out) {
    assert(s != NULL && n_out != NULL);
    assert(cmds != NULL || cap == 0);
    *n_out = 0;
    int more = 0;
    for (uint32_t i = 0; i < s->session_count;) {
        sessions__session_t *ss = s->sessions[i];
        int dead = ss->heartbeat_timeout_ns != 0 &&
                   now_ns - ss->last_seen_ns >= ss->heartbeat_timeout_ns &&
                   now_ns >= ss->last_seen_ns;
        more |= sessions__expire(s, ss, now_ns, dead, cmds, cap, n_out);
        if (dead && ss->count == 0) {
            sessions__session_remove(s, i);
            continue;
        }
        i++;
    }
    return more;
}

uint64_t broker_sessions_next_deadline_ns(const broker_sessions_t *s) {
    assert(s != NULL);
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < s->session_count; i++) {
        const sessions__session_t *ss = s->sessions[i];
        if (ss->heartbeat_timeout_ns != 0 &&
            ss->last_seen_ns + ss->heartbeat_timeout_ns < best)
            best = ss->last_seen_ns + ss->heartbeat_timeout_ns;
        /* Deadlines are now_ns + a constant at delivery, now_ns never goes
         * back and deliveries stay in tag order: the first is the earliest. */
        if (ss->count > 0 && ss->slots[ss->first].deadline_ns != 0 &&
            ss->slots[ss->first].deadline_ns < best)
            best = ss->slots[ss->first].deadline_ns;
    }
    return best;
}

/* ------------------------------------------------------------------------ */
/* Dispatch */

/* Position of `id` in q at or after *lo (both sorted by id), or -1; *lo
 * moves to where the search ended so the next, larger id starts there.
 * Galloping first: pending ids cluster near the queue's head, so this costs
 * far less than a binary search over the whole (possibly deep) queue. */
static int64_t sessions__find_from(const broker_queue_t *q, uint64_t id, uint32_t *lo) {
    uint32_t start = *lo, step = 1, hi = start;
    while (hi < q->count && broker_queue_at(q, hi)->message_id < id) {
        start = hi + 1;
        hi = start + step <= q->count ? start + step - 1 : q->count;
        step *= 2;
    }
    uint32_t a = start, b = hi < q->count ? hi + 1 : q->count; /* search [a, b) */
    while (a < b) {
        const uint32_t mid = a + (b - a) / 2;
        if (broker_queue_at(q, mid)->message_id < id) a = mid + 1;
        else b = mid;
    }
    *lo = a;
    return a < q->count && broker_queue_at(q, a)->message_id == id ? (int64_t)a : -1;
}

/* Forget pending entries whose outcome the SM already shows. */
static void sessions__gc(broker_sessions_t *s, sessions__track_t *t,
                         const broker_queue_t *q, uint64_t applied) {
    if (t->unsettled == 0 || t->gc_applied == applied)
        return; /* DELIVERED entries stay until resolved; nothing applied */
    t->gc_applied = applied;
    uint32_t out = 0, lo = 0, unsettled = 0;
    for (uint32_t i = 0; i < t->pending_count; i++) {
        sessions__pending_t p = t->pending[i];
        int keep = p.state == SESSIONS__DELIVERED;
        if (!keep && q != NULL) {
            int64_t pos = sessions__find_from(q, p.message_id, &lo);
            assert(pos < 0 || broker_queue_find(q, p.message_id) == pos);
            keep = pos >= 0 &&
                   !(p.state == SESSIONS__RETURNING &&
                     broker_queue_at(q, (uint32_t)pos)->delivery_count >
                         p.seen_count);
            if (!keep && pos >= 0 && p.message_id < t->scan_from_id)
                t->scan_from_id = p.message_id; /* queued again: revisit */
        }
        if (keep) {
            t->pending[out++] = p;
            unsettled += p.state != SESSIONS__DELIVERED;
        }
    }
    assert(s->pending_total >= t->pending_count - out);
    s->pending_total -= t->pending_count - out;
    t->pending_count = out;
    t->unsettled = unsettled;
}

static uint32_t sessions__spare(const broker_sessions_t *s,
                                const sessions__consumer_t *c) {
    uint32_t limit = c->prefetch ? c->prefetch : SESSION_INFLIGHT_MAX;
    if (c->auto_ack)
        return c->round < limit ? limit - c->round : 0;
    const sessions__session_t *ss = sessions__session(s, c->session_id);
    assert(ss != NULL);
    if (ss->count >= SESSION_INFLIGHT_MAX || c->unacked >= limit)
        return 0;
    return limit - c->unacked;
}

/* Next consumer in round robin after t->rr_seq with spare room, or -1.
 * `list` holds consumer indices in seq order. */
static int64_t sessions__pick(const broker_sessions_t *s,
                              const sessions__track_t *t, const uint32_t *list,
                              uint32_t n) {
    int64_t wrap = -1;
    for (uint32_t i = 0; i < n; i++) {
        const sessions__consumer_t *c = &s->consumers[list[i]];
        if (sessions__spare(s, c) == 0)
            continue;
        if (c->seq > t->rr_seq)
            return list[i];
        if (wrap < 0)
            wrap = list[i];
    }
    return wrap;
}

/* Room for one more delivery at the end of ss's live range: slide the range
 * to the front when it reached the end (amortized O(1)), else grow. */
static int sessions__slots_reserve(sessions__session_t *ss) {
    if (ss->first > 0 && ss->first + ss->count >= ss->capacity) {
        memmove(ss->slots, ss->slots + ss->first, ss->count * sizeof *ss->slots);
        ss->first = 0;
    }
    return broker_table_grow((void **)&ss->slots, &ss->capacity, ss->first + ss->count + 1,
                             sizeof *ss->slots, SESSION_INFLIGHT_MAX);
}

/* Record the delivery of message `m` to consumer `c`. The pending entry goes
 * at index `ppos` (keeps t->pending sorted). 0 or IO_ENOMEM (no change). */
static int sessions__deliver(broker_sessions_t *s, sessions__track_t *t,
                             uint32_t ppos, sessions__consumer_t *c,
                             const broker_queue_t *q,
                             const broker_message_t *m, uint64_t now_ns,
                             broker_delivery_t *dv, broker_session_cmd_t *cmd) {
    sessions__session_t *ss = sessions__session(s, c->session_id);
    assert(ss != NULL);
    if (broker_table_grow((void **)&t->pending, &t->pending_capacity,
                       t->pending_count + 1, sizeof *t->pending,
                       SESSION_PENDING_MAX) ||
        (!c->auto_ack &&
         sessions__slots_reserve(ss) != 0))
        return IO_ENOMEM;
    memmove(&t->pending[ppos + 1], &t->pending[ppos],
            (t->pending_count - ppos) * sizeof *t->pending);
    sessions__pending_t p = {m->message_id, m->delivery_count,
                             c->auto_ack ? SESSIONS__SETTLING
                                         : SESSIONS__DELIVERED};
    t->pending[ppos] = p;
    t->pending_count++;
    t->unsettled += c->auto_ack;
    s->pending_total++;
    memset(dv, 0, sizeof *dv);
    dv->session_id = ss->id;
    dv->delivery_tag = ss->next_tag++;
    dv->consumer_tag = c->tag;
    dv->consumer_tag_len = c->tag_len;
    dv->queue = q;
    dv->message = m;
    dv->redelivered = m->delivery_count > 0 || m->message_id < s->fresh_from_id;
    dv->auto_ack = c->auto_ack;
    if (c->auto_ack) {
        c->round++;
        sessions__emit(cmd, SM_CMD_SETTLE, t, m->message_id);
        return 0;
    }
    sessions__delivery_t d = {
        dv->delivery_tag, m->message_id, c->seq,
        s->config.ack_timeout_ns ? now_ns + s->config.ack_timeout_ns : 0, t,
        m->delivery_count};
    ss->slots[ss->first + ss->count++] = d;
    c->unacked++;
    return 0;
}

typedef struct sessions__out {
    broker_delivery_t *dv;
    uint32_t dcap, nd;
    broker_session_cmd_t *cmds;
    uint32_t ccap, nc;
    uint64_t now_ns;
} sessions__out_t;

/* Walk queue `q` and pending ids together (both sorted by id), delivering
 * each ready message to the next consumer in round robin. */
static int sessions__dispatch_track(broker_sessions_t *s, sessions__track_t *t,
                                    const broker_queue_t *q,
                                    sessions__out_t *o) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->consumer_count; i++) {
        if (s->consumers[i].track == t)
            s->scratch[n++] = i;
    }
    assert(n == t->consumers);
    uint32_t j = sessions__pending_pos(t, t->scan_from_id);
    uint32_t pos = 0;
    (void)sessions__find_from(q, t->scan_from_id, &pos);
    assert(pos == q->count || broker_queue_at(q, pos)->message_id >= t->scan_from_id);
    for (; pos < q->count; pos++) {
        const broker_message_t *m = broker_queue_at(q, pos);
        t->scan_from_id = m->message_id; /* not visited yet: start here */
        if (o->nd >= o->dcap || s->pending_total >= SESSION_PENDING_MAX)
            return 0;
        while (j < t->pending_count && t->pending[j].message_id < m->message_id)
            j++;
        if (j < t->pending_count && t->pending[j].message_id == m->message_id)
            continue; /* delivered, or its outcome is still in flight */
        int64_t ci = sessions__pick(s, t, s->scratch, n);
        if (ci < 0)
            return 0; /* every consumer of this queue is full */
        sessions__consumer_t *c = &s->consumers[ci];
        if (c->auto_ack && o->nc >= o->ccap)
            return 0; /* no room for its SETTLE: resume on the next call */
        int rc = sessions__deliver(s, t, j, c, q, m, o->now_ns, &o->dv[o->nd],
                                   &o->cmds[o->nc]);
        if (rc != 0)
            return rc;
        o->nd++;
        o->nc += c->auto_ack;
        t->rr_seq = c->seq;
        j++;
    }
    if (q->count > 0) /* every message visited: only newer ones are new */
        t->scan_from_id = broker_queue_at(q, q->count - 1)->message_id + 1;
    return 0;
}

/* Drop tracks that have neither consumers nor pending entries. */
static void sessions__tracks_prune(broker_sessions_t *s) {
    uint32_t out = 0;
    for (uint32_t i = 0; i < s->track_count; i++) {
        sessions__track_t *t = s->tracks[i];
        if (t->consumers == 0 && t->pending_count == 0) {
            free(t->pending);
            free(t);
            continue;
        }
        s->tracks[out++] = t;
    }
    s->track_count = out;
}

int broker_sessions_dispatch(broker_sessions_t *s, const broker_sm_t *sm,
                             uint64_t now_ns, broker_delivery_t *deliveries,
                             uint32_t dcap, broker_session_cmd_t *cmds,
                             uint32_t ccap, uint32_t *n_deliveries,
                             uint32_t *n_cmds) {
    assert(s != NULL && sm != NULL);
    assert(n_deliveries != NULL && n_cmds != NULL);
    sessions__out_t o = {deliveries, dcap, 0, cmds, ccap, 0, now_ns};
    for (uint32_t i = 0; i < s->consumer_count; i++)
        s->consumers[i].round = 0;
    int rc = 0;
    for (uint32_t i = 0; i < s->track_count && rc == 0; i++) {
        sessions__track_t *t = s->tracks[i];
        const broker_queue_t *q = broker_sm_queue(sm, t->name, t->name_len);
        sessions__gc(s, t, q, sm->last_applied);
        if (q != NULL && t->consumers > 0)
            rc = sessions__dispatch_track(s, t, q, &o);
    }
    sessions__tracks_prune(s);
    *n_deliveries = o.nd;
    *n_cmds = o.nc;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* What clients see */

void broker_sessions_queue_info(const broker_sessions_t *s, const broker_queue_t *q,
                                uint32_t *ready, uint32_t *consumers) {
    assert(s != NULL && q != NULL && ready != NULL && consumers != NULL);
    *ready = q->count;
    *consumers = 0;
    int found;
    uint32_t pos = sessions__track_pos(s, q->name, q->name_len, &found);
    if (!found) return;
    const sessions__track_t *t = s->tracks[pos];
    *consumers = t->consumers;
    uint32_t lo = 0, busy = 0;
    for (uint32_t i = 0; i < t->pending_count; i++) {
        const sessions__pending_t *p = &t->pending[i];
        int64_t at = sessions__find_from(q, p->message_id, &lo);
        if (at < 0) continue; /* gone already: not counted in q->count */
        if (p->state == SESSIONS__RETURNING) continue; /* ready again */
        busy++;
    }
    assert(busy <= q->count);
    *ready = q->count - busy;
}

uint32_t broker_sessions_queue_busy(const broker_sessions_t *s, const broker_queue_t *q,
                                    uint64_t *out, uint32_t cap) {
    assert(s != NULL && q != NULL && (out != NULL || cap == 0));
    int found;
    uint32_t pos = sessions__track_pos(s, q->name, q->name_len, &found);
    if (!found) return 0;
    const sessions__track_t *t = s->tracks[pos];
    uint32_t lo = 0, n = 0;
    for (uint32_t i = 0; i < t->pending_count; i++) {
        const sessions__pending_t *p = &t->pending[i];
        if (sessions__find_from(q, p->message_id, &lo) < 0) continue;
        if (p->state == SESSIONS__RETURNING) continue;
        if (n < cap) out[n] = p->message_id; /* pending is sorted by id */
        n++;
    }
    return n;
}

uint32_t broker_sessions_drop_orphans(broker_sessions_t *s, const broker_sm_t *sm,
                                      broker_session_dropped_t *out, uint32_t cap) {
    assert(s != NULL && sm != NULL && (out != NULL || cap == 0));
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->consumer_count && n < cap;) {
        const sessions__consumer_t *c = &s->consumers[i];
        const sessions__track_t *t = c->track;
        if (broker_sm_queue(sm, t->name, t->name_len) != NULL) {
            i++;
            continue;
        }
        out[n].session_id = c->session_id;
        out[n].tag_len = c->tag_len;
        memcpy(out[n].tag, c->tag, c->tag_len);
        out[n].tag[c->tag_len] = '\0';
        n++;
        sessions__consumer_remove(s, i); /* the next one moved to i */
    }
    sessions__tracks_prune(s);
    return n;
}
