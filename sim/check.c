/*
 * sim/check.c — invariant checkers. Pure over (history, final facts).
 *
 * Every checker first builds a per-message index (check__index_t): one entry
 * per message_id, in first-seen order, found through an open-addressing hash
 * table. Iteration always walks the entry array or the history, never the
 * hash table, so results never depend on hash order.
 */
#include "sim/check.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io.h"

#define CHECK__NONE UINT64_MAX

/* ---- a two-key open-addressing index (key -> dense entry number) ---------- */

typedef struct check__table {
    uint32_t *slots; /* entry number + 1, 0 = empty */
    uint64_t mask;
} check__table_t;

static uint64_t check__hash(uint64_t a, uint64_t b) {
    uint64_t x = a * UINT64_C(0x9E3779B97F4A7C15) ^ (b + UINT64_C(0xBF58476D1CE4E5B9));
    x ^= x >> 31;
    x *= UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 29);
}

static int check__table_init(check__table_t *t, uint64_t entries_max) {
    uint64_t cap = 16;
    while (cap < entries_max * 2 && cap < (UINT64_C(1) << 40)) cap <<= 1;
    t->slots = calloc((size_t)cap, sizeof(*t->slots));
    t->mask = cap - 1;
    return t->slots != NULL ? 0 : IO_ENOMEM;
}

/* The slot holding (a, b) or the empty slot where it belongs. `keys_a/b`
 * give each entry's key. The table is at most half full, so this ends. */
static uint32_t *check__table_slot(const check__table_t *t, uint64_t a, uint64_t b,
                                   const uint64_t *keys_a, const uint64_t *keys_b) {
    uint64_t i = check__hash(a, b) & t->mask;
    for (uint64_t probes = 0; probes <= t->mask; probes++) {
        uint32_t *s = &t->slots[i];
        if (*s == 0) return s;
        uint32_t e = *s - 1;
        if (keys_a[e] == a && (keys_b == NULL || keys_b[e] == b)) return s;
        i = (i + 1) & t->mask;
    }
    assert(0 && "check table full");
    return NULL;
}

/* Double t and re-place entries [0, count): keeps it at most half full with
 * a table sized by the entries actually seen (a history holds several
 * records per message, so sizing by records made it sparse and cache-cold). */
static int check__table_grow(check__table_t *t, uint32_t count, const uint64_t *keys_a,
                             const uint64_t *keys_b) {
    assert(count <= (t->mask + 1) / 2);
    check__table_t bigger;
    if (check__table_init(&bigger, (t->mask + 1)) != 0) return IO_ENOMEM;
    assert(bigger.mask > t->mask);
    for (uint32_t e = 0; e < count; e++) {
        uint32_t *s = check__table_slot(&bigger, keys_a[e], keys_b != NULL ? keys_b[e] : 0,
                                        keys_a, keys_b);
        assert(*s == 0);
        *s = e + 1;
    }
    free(t->slots);
    *t = bigger;
    return 0;
}

/* ---- the per-message index ---------------------------------------------- */

enum { CHECK__OUT_NONE = 0, CHECK__OUT_OK, CHECK__OUT_FAIL, CHECK__OUT_INFO };

typedef struct check__msg {
    uint64_t invoke_ns;        /* CHECK__NONE: never invoked */
    uint64_t outcome_ns;
    uint64_t first_deliver_ns; /* CHECK__NONE: never delivered */
    uint64_t first_process_ns; /* CHECK__NONE: never processed */
    uint64_t second_process_ns;
    uint32_t process_count;
    uint32_t deliveries;
    uint32_t fresh_deliveries; /* not flagged redelivered */
    uint32_t redeliveries;
    uint16_t queue;
    uint8_t outcome;
    uint8_t dead;
    uint8_t remaining;
    uint8_t ordered; /* ordering: its first delivery was already seen */
    uint8_t outcome_flags; /* HISTORY_FLAG_* of the outcome record */
    uint8_t discarded;     /* a consumer refused it without requeue */
    uint8_t other_queue_processed; /* processed from another queue (the DLQ) */
} check__msg_t;

typedef struct check__index {
    check__table_t table;
    uint64_t *ids;     /* entry -> message id */
    check__msg_t *msgs;
    uint32_t count;
} check__index_t;

static void check__index_free(check__index_t *x) {
    free(x->table.slots);
    free(x->ids);
    free(x->msgs);
    memset(x, 0, sizeof(*x));
}

/* Entry of `id`, created if `create`; -1 if absent (or out of memory). */
static int64_t check__index_find(check__index_t *x, uint64_t id, bool create) {
    uint32_t *s = check__table_slot(&x->table, id, 0, x->ids, NULL);
    if (*s != 0) return (int64_t)(*s - 1);
    if (!create) return -1;
    if ((uint64_t)(x->count + 1) * 2 > x->table.mask + 1) {
        if (check__table_grow(&x->table, x->count, x->ids, NULL) != 0) return -1;
        s = check__table_slot(&x->table, id, 0, x->ids, NULL);
    }
    uint32_t e = x->count++;
    x->ids[e] = id;
    check__msg_t *m = &x->msgs[e];
    memset(m, 0, sizeof(*m));
    m->invoke_ns = m->first_deliver_ns = m->first_process_ns = CHECK__NONE;
    m->second_process_ns = CHECK__NONE;
    m->queue = HISTORY_QUEUE_NONE;
    *s = e + 1;
    return e;
}

static void check__index_record(check__msg_t *m, const history_record_t *r) {
    if (m->queue == HISTORY_QUEUE_NONE) m->queue = r->queue;
    if (r->op == HISTORY_OP_PUBLISH) {
        if (r->kind == HISTORY_INVOKE && m->invoke_ns == CHECK__NONE) m->invoke_ns = r->time_ns;
        if (r->kind != HISTORY_INVOKE && m->outcome == CHECK__OUT_NONE) {
            m->outcome = r->kind == HISTORY_OK     ? CHECK__OUT_OK
                         : r->kind == HISTORY_FAIL ? CHECK__OUT_FAIL
                                                   : CHECK__OUT_INFO;
            m->outcome_ns = r->time_ns;
            m->outcome_flags = r->flags;
        }
    } else if (r->op == HISTORY_OP_DELIVER && r->kind == HISTORY_OK) {
        if (m->first_deliver_ns == CHECK__NONE) m->first_deliver_ns = r->time_ns;
        m->deliveries++;
        /* a delivery from another queue (the dead-letter queue) is the same
         * stored message moved, never a second enqueue */
        if (r->flags & HISTORY_FLAG_REDELIVERED) m->redeliveries++;
        else if (r->queue == m->queue || m->queue == HISTORY_QUEUE_NONE) m->fresh_deliveries++;
    } else if (r->op == HISTORY_OP_NACK && r->kind == HISTORY_OK) {
        if (r->flags & HISTORY_FLAG_DISCARDED) m->discarded = 1;
    } else if (r->op == HISTORY_OP_PROCESS && r->kind == HISTORY_OK) {
        if (r->queue != m->queue) m->other_queue_processed = 1;
        if (m->process_count == 0) m->first_process_ns = r->time_ns;
        if (m->process_count == 1) m->second_process_ns = r->time_ns;
        m->process_count++;
    }
}

static bool check__op_indexed(unsigned op) {
    return op == HISTORY_OP_PUBLISH || op == HISTORY_OP_DELIVER || op == HISTORY_OP_PROCESS ||
           op == HISTORY_OP_NACK;
}

/* Mark final facts: dead-lettered and still-enqueued ids. Ids unknown to the
 * history are ignored (no_phantoms judges deliveries, not leftovers). */
static void check__index_finals(check__index_t *x, const check_input_t *in) {
    for (uint32_t q = 0; q < in->queues_count; q++) {
        const check_queue_final_t *f = &in->queues[q];
        for (uint32_t i = 0; i < f->dead_count; i++) {
            int64_t e = check__index_find(x, f->dead_ids[i], false);
            if (e >= 0) x->msgs[e].dead = 1;
        }
        for (uint32_t i = 0; i < f->enqueued_count; i++) {
            int64_t e = check__index_find(x, f->enqueued_ids[i], false);
            if (e >= 0) x->msgs[e].remaining = 1;
        }
    }
}

static int check__index_build(check__index_t *x, const check_input_t *in) {
    memset(x, 0, sizeof(*x));
    const history_t *h = in->history;
    uint64_t n = history_count(h);
    uint64_t cap = n > 0 ? n : 1;
    x->ids = malloc((size_t)cap * sizeof(*x->ids));
    x->msgs = malloc((size_t)cap * sizeof(*x->msgs));
    if (x->ids == NULL || x->msgs == NULL || check__table_init(&x->table, cap / 8 + 16) != 0) {
        check__index_free(x);
        return IO_ENOMEM;
    }
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(h, i);
        if (r->message_id == 0 || !check__op_indexed(r->op)) continue;
        int64_t e = check__index_find(x, r->message_id, true);
        if (e < 0) {
            check__index_free(x);
            return IO_ENOMEM;
        }
        assert((uint64_t)e < cap);
        check__index_record(&x->msgs[e], r);
    }
    check__index_finals(x, in);
    return 0;
}

/* ---- result helpers ------------------------------------------------------- */

static void check__begin(check_result_t *out, const char *name) {
    memset(out, 0, sizeof(*out));
    out->name = name;
    out->passed = true;
}

static void check__fig(check_result_t *out, const char *name, double value) {
    assert(out->figures_count < CHECK_FIGURES_MAX);
    out->figures[out->figures_count].name = name;
    out->figures[out->figures_count].value = value;
    out->figures_count++;
}

__attribute__((format(printf, 4, 5)))
static void check__violation(check_result_t *out, uint64_t message_id,
                             uint64_t time_ns, const char *fmt, ...) {
    out->passed = false;
    out->violations_total++;
    if (out->violations_count >= CHECK_VIOLATIONS_MAX) return;
    check_violation_t *v = &out->violations[out->violations_count++];
    v->message_id = message_id;
    v->time_ns = time_ns;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
    va_end(ap);
}

typedef int (*check__fn_t)(const check_input_t *in, check__index_t *x, check_result_t *out);

/* Mark `out` as failed with error `rc`; returns rc. */
static int check__error(check_result_t *out, int rc) {
    assert(rc != 0);
    out->passed = false;
    out->error = rc;
    return rc;
}

/* One checker on its own: validate, reset the result, build the index, run
 * `fn`, free the index. */
static int check__run(const check_input_t *in, check_result_t *out, const char *name,
                      check__fn_t fn) {
    assert(out != NULL && name != NULL && fn != NULL);
    check__begin(out, name);
    int rc = check_input_validate(in);
    check__index_t x;
    if (rc == 0) rc = check__index_build(&x, in);
    if (rc != 0) return check__error(out, rc);
    rc = fn(in, &x, out);
    check__index_free(&x);
    return rc;
}

int check_input_validate(const check_input_t *in) {
    if (in == NULL || in->history == NULL) return IO_EINVAL;
    if (in->queues_count > CHECK_QUEUES_MAX || in->replicas_count > CHECK_REPLICAS_MAX)
        return IO_EINVAL;
    if (in->queues_count > 0 && in->queues == NULL) return IO_EINVAL;
    if (in->replicas_count > 0 && in->replicas == NULL) return IO_EINVAL;
    for (uint32_t i = 0; i < in->queues_count; i++) {
        const check_queue_final_t *q = &in->queues[i];
        if (q->enqueued_count > CHECK_FINAL_IDS_MAX || q->dead_count > CHECK_FINAL_IDS_MAX)
            return IO_EINVAL;
        if ((q->enqueued_count > 0 && q->enqueued_ids == NULL) ||
            (q->dead_count > 0 && q->dead_ids == NULL))
            return IO_EINVAL;
    }
    const double shares[] = {in->availability_min, in->attempt_success_min,
                             in->consumer_availability_min};
    for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++)
        if (!(shares[i] >= 0.0 && shares[i] <= 1.0)) return IO_EINVAL;
    if (in->chaos_end_ns != 0 && in->chaos_end_ns < in->chaos_start_ns) return IO_EINVAL;
    const uint64_t window_ns = in->window_ns != 0 ? in->window_ns : CHECK_WINDOW_NS;
    if (in->chaos_end_ns != 0 &&
        (in->chaos_end_ns - in->chaos_start_ns) / window_ns >= CHECK_WINDOWS_MAX)
        return IO_EINVAL;
    return 0;
}

/* ---- no_loss ---------------------------------------------------------- */

/* How one publish ended, for the accounting figures. */
enum { CHECK__END_OK, CHECK__END_NACKED, CHECK__END_FAILED, CHECK__END_UNKNOWN,
       CHECK__END_UNFINISHED };

static unsigned check__publish_end(const check__msg_t *m) {
    if (m->outcome == CHECK__OUT_OK) return CHECK__END_OK;
    if (m->outcome == CHECK__OUT_FAIL)
        return (m->outcome_flags & HISTORY_FLAG_NACKED) ? CHECK__END_NACKED : CHECK__END_FAILED;
    if (m->outcome == CHECK__OUT_INFO) return CHECK__END_UNKNOWN;
    return CHECK__END_UNFINISHED;
}

static int check__no_loss(const check_input_t *in, check__index_t *x, check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    uint64_t published = 0, ends[CHECK__END_UNFINISHED + 1] = {0}, at_end = 0;
    uint64_t processed = 0, dead = 0, remaining = 0, lost = 0, recovered = 0;
    uint64_t unconfirmed = 0, unconfirmed_missing = 0, discarded = 0, dlq_processed = 0;
    uint64_t unroutable = 0;
    for (uint32_t e = 0; e < x->count; e++) {
        const check__msg_t *m = &x->msgs[e];
        if (m->invoke_ns != CHECK__NONE) {
            published++;
            ends[check__publish_end(m)]++;
            if (m->outcome == CHECK__OUT_INFO && (m->outcome_flags & HISTORY_FLAG_AT_END))
                at_end++;
            /* fire-and-forget: never evidence of loss (nothing was promised),
             * but how many never reached a consumer is worth showing */
            if (m->outcome == CHECK__OUT_INFO && (m->outcome_flags & HISTORY_FLAG_UNCONFIRMED)) {
                unconfirmed++;
                if (m->process_count == 0 && !m->dead && !m->remaining) unconfirmed_missing++;
            }
        }
        if (m->outcome != CHECK__OUT_OK) {
            if (m->outcome != CHECK__OUT_NONE && m->process_count > 0) recovered++;
            continue;
        }
        if (m->process_count > 0) {
            processed++;
            if (m->other_queue_processed) dlq_processed++;
        } else if (m->dead) {
            dead++;
        } else if (m->remaining) {
            remaining++; /* held by the queue: check_drained judges it */
        } else if (m->discarded) {
            discarded++; /* a consumer refused it for good: its choice, not loss */

        } else {
            lost++;
            /* Confirmed unroutable: the queue the producer publishes to
             * (declared, durable) was gone — still loss, shown apart. */
            if (m->outcome_flags & HISTORY_FLAG_UNROUTABLE) unroutable++;
            check__violation(out, x->ids[e], m->outcome_ns,
                             (m->outcome_flags & HISTORY_FLAG_UNROUTABLE)
                                 ? "confirmed unroutable: its queue was gone"
                                 : "confirmed but never processed nor dead-lettered");
        }
    }
    const uint64_t confirmed = processed + dead + remaining + discarded + lost;
    /* Every invoked publish ends in exactly one bucket: they add up. */
    assert(published == ends[CHECK__END_OK] + ends[CHECK__END_NACKED] +
                            ends[CHECK__END_FAILED] + ends[CHECK__END_UNKNOWN] +
                            ends[CHECK__END_UNFINISHED]);
    check__fig(out, "published", (double)published);
    check__fig(out, "confirmed", (double)confirmed);
    check__fig(out, "nacked", (double)ends[CHECK__END_NACKED]);
    check__fig(out, "failed", (double)ends[CHECK__END_FAILED]);
    check__fig(out, "unknown", (double)ends[CHECK__END_UNKNOWN]);
    check__fig(out, "unknown_at_end", (double)at_end);
    check__fig(out, "unfinished", (double)ends[CHECK__END_UNFINISHED]);
    check__fig(out, "processed_confirmed", (double)processed);
    check__fig(out, "dead_lettered", (double)dead);
    check__fig(out, "remaining", (double)remaining);
    check__fig(out, "lost", (double)lost);
    check__fig(out, "recovered", (double)recovered);
    check__fig(out, "discarded", (double)discarded);
    check__fig(out, "lost_unroutable", (double)unroutable);
    check__fig(out, "dead_letter_processed", (double)dlq_processed);
    check__fig(out, "unconfirmed", (double)unconfirmed);
    check__fig(out, "unconfirmed_missing", (double)unconfirmed_missing);
    return 0;
}

int check_no_loss(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "no_loss", check__no_loss);
}

/* ---- drained -------------------------------------------------------------- */

static int check__drained(const check_input_t *in, check__index_t *x, check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    uint64_t confirmed = 0, remaining = 0;
    for (uint32_t e = 0; e < x->count; e++) {
        const check__msg_t *m = &x->msgs[e];
        if (m->outcome != CHECK__OUT_OK) continue;
        confirmed++;
        if (m->process_count > 0 || m->dead || !m->remaining) continue;
        remaining++;
        check__violation(out, x->ids[e], m->outcome_ns,
                         "confirmed, still enqueued at the end: drain incomplete");
    }
    check__fig(out, "remaining", (double)remaining);
    check__fig(out, "confirmed", (double)confirmed);
    return 0;
}

int check_drained(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "drained", check__drained);
}

/* ---- no_duplicates ------------------------------------------------------- */

static int check__no_duplicates(const check_input_t *in, check__index_t *x, check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    uint64_t processed = 0, dup_processings = 0, dup_enqueues = 0, redeliveries = 0;
    for (uint32_t e = 0; e < x->count; e++) {
        const check__msg_t *m = &x->msgs[e];
        if (m->process_count > 0) processed++;
        if (m->fresh_deliveries > 1) dup_enqueues += m->fresh_deliveries - 1;
        redeliveries += m->redeliveries;
        if (m->process_count > 1) {
            dup_processings += m->process_count - 1;
            check__violation(out, x->ids[e], m->second_process_ns,
                             "processed %" PRIu32 " times (%" PRIu32
                             " fresh deliveries, %" PRIu32 " redeliveries)",
                             m->process_count, m->fresh_deliveries, m->redeliveries);
        }
    }
    check__fig(out, "processed_messages", (double)processed);
    check__fig(out, "duplicate_processings", (double)dup_processings);
    check__fig(out, "duplicate_enqueues", (double)dup_enqueues);
    check__fig(out, "redeliveries", (double)redeliveries);
    return 0;
}

int check_no_duplicates(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "no_duplicates", check__no_duplicates);
}

/* ---- no_phantoms -------------------------------------------------------- */

static int check__no_phantoms(const check_input_t *in, check__index_t *x, check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    uint64_t delivered = 0, phantoms = 0, failed_delivered = 0;
    for (uint32_t e = 0; e < x->count; e++) {
        const check__msg_t *m = &x->msgs[e];
        uint64_t seen_ns = m->first_deliver_ns != CHECK__NONE ? m->first_deliver_ns
                                                               : m->first_process_ns;
        if (seen_ns == CHECK__NONE) continue;
        delivered++;
        if (m->invoke_ns == CHECK__NONE || m->invoke_ns > seen_ns) {
            phantoms++;
            check__violation(out, x->ids[e], seen_ns, "delivered but never published");
        } else if (m->outcome == CHECK__OUT_FAIL) {
            failed_delivered++;
        }
    }
    check__fig(out, "delivered_messages", (double)delivered);
    check__fig(out, "phantoms", (double)phantoms);
    check__fig(out, "failed_delivered", (double)failed_delivered);
    return 0;
}

int check_no_phantoms(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "no_phantoms", check__no_phantoms);
}

/* ---- ordering ------------------------------------------------------------ */

typedef struct check__streams {
    check__table_t table;
    uint64_t *keys_a, *keys_b; /* queue, producer_id */
    uint64_t *max_seq;
    uint32_t count;
} check__streams_t;

static void check__streams_free(check__streams_t *s) {
    free(s->table.slots);
    free(s->keys_a);
    free(s->keys_b);
    free(s->max_seq);
}

/* The stream entry of (queue, producer), created with max_seq = seq. Returns
 * the entry, or -1 when created (nothing to compare yet). */
static int64_t check__stream(check__streams_t *s, uint64_t queue, uint64_t producer,
                             uint64_t seq) {
    uint32_t *slot = check__table_slot(&s->table, queue, producer, s->keys_a, s->keys_b);
    if (*slot != 0) return (int64_t)(*slot - 1);
    uint32_t e = s->count++;
    s->keys_a[e] = queue;
    s->keys_b[e] = producer;
    s->max_seq[e] = seq;
    *slot = e + 1;
    return -1;
}

static void check__ordering_walk(const check_input_t *in, check__index_t *x,
                                 check__streams_t *s, check_result_t *out,
                                 uint64_t *checked, uint64_t *inversions) {
    uint64_t n = history_count(in->history);
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(in->history, i);
        if (r->op != HISTORY_OP_DELIVER || r->kind != HISTORY_OK || r->message_id == 0)
            continue;
        int64_t m = check__index_find(x, r->message_id, false);
        assert(m >= 0);
        if (x->msgs[m].ordered) continue; /* only first deliveries count */
        x->msgs[m].ordered = 1;
        (*checked)++;
        int64_t e = check__stream(s, r->queue, r->producer_id, r->sequence);
        if (e < 0) continue;
        if (r->sequence < s->max_seq[e]) {
            (*inversions)++;
            check__violation(out, r->message_id, r->time_ns,
                             "producer %" PRIu64 " seq %" PRIu64 " after seq %" PRIu64,
                             r->producer_id, r->sequence, s->max_seq[e]);
        } else {
            s->max_seq[e] = r->sequence;
        }
    }
}

static int check__ordering(const check_input_t *in, check__index_t *x, check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    for (uint32_t e = 0; e < x->count; e++) x->msgs[e].ordered = 0; /* shared index */
    check__streams_t s = {0};
    uint64_t cap = x->count > 0 ? x->count : 1;
    s.keys_a = malloc((size_t)cap * sizeof(uint64_t));
    s.keys_b = malloc((size_t)cap * sizeof(uint64_t));
    s.max_seq = malloc((size_t)cap * sizeof(uint64_t));
    if (s.keys_a == NULL || s.keys_b == NULL || s.max_seq == NULL ||
        check__table_init(&s.table, cap) != 0) {
        check__streams_free(&s);
        return check__error(out, IO_ENOMEM);
    }
    uint64_t checked = 0, inversions = 0;
    check__ordering_walk(in, x, &s, out, &checked, &inversions);
    check__fig(out, "streams", (double)s.count);
    check__fig(out, "checked", (double)checked);
    check__fig(out, "inversions", (double)inversions);
    check__streams_free(&s);
    return 0;
}

int check_ordering(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "ordering", check__ordering);
}

/* ---- availability ------------------------------------------------------- */

static uint64_t check__end_ns(const check_input_t *in) {
    if (in->chaos_end_ns != 0) return in->chaos_end_ns;
    uint64_t n = history_count(in->history);
    return n > 0 ? history_get(in->history, n - 1)->time_ns + 1 : in->chaos_start_ns;
}

static bool check__in_time(const check_input_t *in, const check__msg_t *m) {
    if (m->outcome != CHECK__OUT_OK || m->invoke_ns == CHECK__NONE) return false;
    return in->timeout_ns == 0 || m->outcome_ns - m->invoke_ns <= in->timeout_ns;
}

/* Longest stretch of [t0, t1) without a publish ok; *gap_start_ns says where. */
static uint64_t check__longest_gap(const check_input_t *in, uint64_t t0, uint64_t t1,
                                   uint64_t *gap_start_ns) {
    uint64_t last = t0, longest = 0;
    *gap_start_ns = t0;
    uint64_t n = history_count(in->history);
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(in->history, i);
        if (r->time_ns >= t1) break;
        if (r->op != HISTORY_OP_PUBLISH || r->kind != HISTORY_OK || r->time_ns < t0)
            continue;
        if (r->time_ns - last > longest) {
            longest = r->time_ns - last;
            *gap_start_ns = last;
        }
        last = r->time_ns;
    }
    if (t1 - last > longest) {
        longest = t1 - last;
        *gap_start_ns = last;
    }
    assert(longest <= t1 - t0);
    return longest;
}

/* Time of the first publish ok at or after heal_ns, CHECK__NONE if none. */
static uint64_t check__first_ok_after(const check_input_t *in, uint64_t heal_ns) {
    uint64_t n = history_count(in->history);
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(in->history, i);
        if (r->time_ns >= heal_ns && r->op == HISTORY_OP_PUBLISH && r->kind == HISTORY_OK)
            return r->time_ns;
    }
    return CHECK__NONE;
}

/* ---- windows ------------------------------------------------------------- */

/* The chaos phase cut into windows: window k is [t0 + k*win, min(t0 +
 * (k+1)*win, t1)). `waiting` is a difference array over windows counting
 * spans that cover a window whole; `evidence` marks windows in which the
 * thing hoped for (a confirm, a delivery) happened. */
typedef struct check__windows {
    uint64_t t0, t1, win, n;
    int64_t *waiting; /* n + 1 entries */
    uint8_t *evidence;
} check__windows_t;

static int check__windows_init(check__windows_t *w, const check_input_t *in) {
    memset(w, 0, sizeof(*w));
    w->t0 = in->chaos_start_ns;
    w->t1 = check__end_ns(in);
    w->win = in->window_ns != 0 ? in->window_ns : CHECK_WINDOW_NS;
    w->n = w->t1 > w->t0 ? (w->t1 - w->t0 + w->win - 1) / w->win : 0;
    if (w->n > CHECK_WINDOWS_MAX) return IO_EINVAL; /* validate bounds chaos_end; not its absence */
    w->waiting = calloc((size_t)w->n + 1, sizeof(*w->waiting));
    w->evidence = calloc((size_t)w->n + 1, sizeof(*w->evidence));
    if (w->waiting == NULL || w->evidence == NULL) {
        free(w->waiting);
        free(w->evidence);
        return IO_ENOMEM;
    }
    return 0;
}

static void check__windows_free(check__windows_t *w) {
    free(w->waiting);
    free(w->evidence);
    memset(w, 0, sizeof(*w));
}

/* Something was waiting over [a, b) (b = CHECK__NONE: until the end): mark
 * the windows it covers whole (started at or after a, ended at or before b). */
static void check__windows_span(check__windows_t *w, uint64_t a, uint64_t b) {
    if (w->n == 0 || b <= a || b <= w->t0 || a >= w->t1) return;
    const uint64_t first = a <= w->t0 ? 0 : (a - w->t0 + w->win - 1) / w->win;
    const uint64_t end = b >= w->t1 ? w->n : (b - w->t0) / w->win; /* windows ending <= b */
    if (first >= end) return;
    w->waiting[first]++;
    w->waiting[end]--;
}

static void check__windows_hit(check__windows_t *w, uint64_t t) {
    if (t >= w->t0 && t < w->t1) w->evidence[(t - w->t0) / w->win] = 1;
}

/* Classify every window; returns the share available / judged (0 if none). */
static double check__windows_share(const check__windows_t *w, check_result_t *out,
                                   const char *share_name) {
    uint64_t avail = 0, unavail = 0, idle = 0;
    int64_t waiting = 0;
    for (uint64_t k = 0; k < w->n; k++) {
        waiting += w->waiting[k];
        assert(waiting >= 0);
        if (w->evidence[k]) avail++;
        else if (waiting > 0) unavail++;
        else idle++;
    }
    assert(avail + unavail + idle == w->n);
    const double share = avail + unavail > 0 ? (double)avail / (double)(avail + unavail) : 0.0;
    check__fig(out, "windows", (double)w->n);
    check__fig(out, "available_windows", (double)avail);
    check__fig(out, "unavailable_windows", (double)unavail);
    check__fig(out, "idle_windows", (double)idle);
    check__fig(out, share_name, share);
    return share;
}

static int check__availability(const check_input_t *in, check__index_t *x, check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    const uint64_t t0 = in->chaos_start_ns, t1 = check__end_ns(in);
    check__windows_t w;
    int rc = check__windows_init(&w, in);
    if (rc != 0) return check__error(out, rc);
    uint64_t attempts = 0, in_time = 0;
    for (uint32_t e = 0; e < x->count; e++) {
        const check__msg_t *m = &x->msgs[e];
        if (m->invoke_ns == CHECK__NONE) continue;
        check__windows_span(&w, m->invoke_ns,
                            m->outcome == CHECK__OUT_NONE ? CHECK__NONE : m->outcome_ns);
        if (m->invoke_ns < t0 || m->invoke_ns >= t1) continue;
        attempts++;
        if (check__in_time(in, m)) in_time++;
    }
    const uint64_t n = history_count(in->history);
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(in->history, i);
        if (r->time_ns >= t1) break;
        if (r->op == HISTORY_OP_PUBLISH && r->kind == HISTORY_OK) check__windows_hit(&w, r->time_ns);
    }
    const double share = check__windows_share(&w, out, "availability");
    check__windows_free(&w);
    const double attempt_share = attempts > 0 ? (double)in_time / (double)attempts : 1.0;
    uint64_t gap_start = t0;
    uint64_t gap = t1 > t0 ? check__longest_gap(in, t0, t1, &gap_start) : 0;
    double heal_to_ok = -1.0;
    if (share < in->availability_min)
        check__violation(out, 0, t0, "availability %.4f below %.4f", share, in->availability_min);
    if (attempt_share < in->attempt_success_min)
        check__violation(out, 0, t0, "attempt_success %.4f below %.4f", attempt_share,
                         in->attempt_success_min);
    if (in->max_gap_ns != 0 && gap > in->max_gap_ns)
        check__violation(out, 0, gap_start, "no confirm for %" PRIu64 " ns", gap);
    if (in->heal_ns != 0) {
        uint64_t ok_ns = check__first_ok_after(in, in->heal_ns);
        if (ok_ns != CHECK__NONE) heal_to_ok = (double)(ok_ns - in->heal_ns);
    }
    check__fig(out, "attempts", (double)attempts);
    check__fig(out, "confirmed_in_time", (double)in_time);
    check__fig(out, "attempt_success", attempt_share);
    check__fig(out, "longest_gap_ns", (double)gap);
    check__fig(out, "heal_to_ok_ns", heal_to_ok);
    return 0;
}

int check_availability(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "availability", check__availability);
}

/* ---- consumer availability -------------------------------------------------- */

static int check__consumer_availability(const check_input_t *in, check__index_t *x,
                                        check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    check__windows_t w;
    int rc = check__windows_init(&w, in);
    if (rc != 0) return check__error(out, rc);
    for (uint32_t e = 0; e < x->count; e++) {
        const check__msg_t *m = &x->msgs[e];
        if (m->outcome != CHECK__OUT_OK || m->dead) continue; /* ready once confirmed */
        check__windows_span(&w, m->outcome_ns, m->first_deliver_ns);
    }
    const uint64_t n = history_count(in->history);
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(in->history, i);
        if (r->time_ns >= w.t1) break;
        if (r->op == HISTORY_OP_DELIVER && r->kind == HISTORY_OK) check__windows_hit(&w, r->time_ns);
    }
    const double share = check__windows_share(&w, out, "consumer_availability");
    if (share < in->consumer_availability_min)
        check__violation(out, 0, w.t0, "consumer_availability %.4f below %.4f", share,
                         in->consumer_availability_min);
    check__windows_free(&w);
    return 0;
}

int check_consumer_availability(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "consumer_availability", check__consumer_availability);
}

/* ---- broker samples: leaderless time and progress ------------------------- */

/* One HISTORY_OP_REPLICA sample: the records at one time. */
typedef struct check__sample {
    uint64_t time_ns;
    uint32_t leader;      /* highest-term LEADER, HISTORY_NODE_NONE if none */
    uint64_t leader_term, leader_commit;
    uint64_t max_commit;  /* over every broker in the sample */
    uint32_t brokers, live, failed, damaged; /* damaged: failed or corrupt storage */
    uint64_t first_lag_commit; /* commit of the first live broker below a target */
    uint32_t first_lag_node, first_lag_role;
} check__sample_t;

/* Read the sample starting at record *i (an OP_REPLICA record) and advance
 * *i past it. Lagging is judged against `target` (CHECK__NONE: not judged);
 * returns the number of live brokers below it (a recovering one always). */
static uint32_t check__sample_read(const history_t *h, uint64_t *i, uint64_t target,
                                   check__sample_t *s) {
    const uint64_t n = history_count(h);
    memset(s, 0, sizeof(*s));
    s->leader = s->first_lag_node = HISTORY_NODE_NONE;
    s->time_ns = history_get(h, *i)->time_ns;
    uint32_t lagging = 0;
    for (; *i < n; (*i)++) {
        const history_record_t *r = history_get(h, *i);
        if (r->op != HISTORY_OP_REPLICA || r->time_ns != s->time_ns) break;
        if (r->value > s->max_commit) s->max_commit = r->value;
        const int role = r->detail;
        if (role == HISTORY_ROLE_LEADER && (s->leader == HISTORY_NODE_NONE || r->sequence > s->leader_term)) {
            s->leader = r->node;
            s->leader_term = r->sequence;
            s->leader_commit = r->value;
        }
        s->brokers++;
        if (role == HISTORY_ROLE_FAILED) s->failed++;
        if (role == HISTORY_ROLE_FAILED || role == HISTORY_ROLE_CORRUPT) s->damaged++;
        if (role == HISTORY_ROLE_DOWN || role == HISTORY_ROLE_PAUSED || role == HISTORY_ROLE_FAILED)
            continue;
        s->live++;
        if (target == CHECK__NONE || (role != HISTORY_ROLE_RECOVERING && r->value >= target))
            continue;
        if (lagging++ == 0) {
            s->first_lag_node = r->node;
            s->first_lag_commit = r->value;
            s->first_lag_role = (uint32_t)role;
        }
    }
    return lagging;
}

/* Index of the first OP_REPLICA record at or after t0, or the count. */
static uint64_t check__next_sample(const history_t *h, uint64_t from) {
    const uint64_t n = history_count(h);
    while (from < n && history_get(h, from)->op != HISTORY_OP_REPLICA) from++;
    return from;
}

typedef struct check__leaderless_acc {
    uint64_t t0, t1;
    uint64_t total, longest, stretch;
} check__leaderless_acc_t;

/* The state of the previous sample (leaderless or not) held over [a, b). */
static void check__leaderless_hold(check__leaderless_acc_t *acc, bool leaderless, uint64_t a,
                                   uint64_t b) {
    if (!leaderless) {
        acc->stretch = 0;
        return;
    }
    const uint64_t lo = a > acc->t0 ? a : acc->t0, hi = b < acc->t1 ? b : acc->t1;
    if (hi <= lo) return;
    acc->total += hi - lo;
    acc->stretch += hi - lo;
    if (acc->stretch > acc->longest) acc->longest = acc->stretch;
}

static int check__leaderless(const check_input_t *in, check__index_t *x, check_result_t *out) {
    (void)x; /* works on the broker samples only */
    assert(in != NULL && out != NULL);
    check__leaderless_acc_t acc = {.t0 = in->chaos_start_ns, .t1 = check__end_ns(in)};
    const history_t *h = in->history;
    uint64_t samples = 0, changes = 0, prev_ns = 0;
    uint32_t last_leader = HISTORY_NODE_NONE;
    bool prev_leaderless = false, any = false;
    for (uint64_t i = check__next_sample(h, 0); i < history_count(h); i = check__next_sample(h, i)) {
        check__sample_t s;
        (void)check__sample_read(h, &i, CHECK__NONE, &s);
        if (any) check__leaderless_hold(&acc, prev_leaderless, prev_ns, s.time_ns);
        any = true;
        samples++;
        prev_ns = s.time_ns;
        prev_leaderless = s.leader == HISTORY_NODE_NONE;
        if (s.leader != HISTORY_NODE_NONE && s.leader != last_leader) {
            if (last_leader != HISTORY_NODE_NONE && s.time_ns >= acc.t0 && s.time_ns < acc.t1)
                changes++;
            last_leader = s.leader;
        }
    }
    if (any) check__leaderless_hold(&acc, prev_leaderless, prev_ns, acc.t1);
    const uint64_t span = acc.t1 > acc.t0 ? acc.t1 - acc.t0 : 0;
    if (!any && (in->leaderless_max_ns != 0 || in->leaderless_total_ns != 0))
        check__violation(out, 0, acc.t0, "no broker samples: leaderless time unknown");
    if (any && in->leaderless_total_ns != 0 && acc.total > in->leaderless_total_ns)
        check__violation(out, 0, acc.t0, "leaderless for %" PRIu64 " ns in all", acc.total);
    if (any && in->leaderless_max_ns != 0 && acc.longest > in->leaderless_max_ns)
        check__violation(out, 0, acc.t0, "leaderless for %" PRIu64 " ns at a stretch",
                         acc.longest);
    check__fig(out, "samples", (double)samples);
    check__fig(out, "leaderless_ns", any ? (double)acc.total : -1.0);
    check__fig(out, "leaderless_max_ns", any ? (double)acc.longest : -1.0);
    check__fig(out, "leaderless_share",
                any && span > 0 ? (double)acc.total / (double)span : (any ? 0.0 : -1.0));
    check__fig(out, "leader_changes", (double)changes);
    return 0;
}

int check_leaderless(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "leaderless", check__leaderless);
}

/* True if a publish was pending at heal or invoked after it (by deadline):
 * then confirms must flow again. */
static bool check__confirm_needed(const check__index_t *x, uint64_t heal_ns,
                                  uint64_t deadline_ns) {
    for (uint32_t e = 0; e < x->count; e++) {
        const check__msg_t *m = &x->msgs[e];
        if (m->invoke_ns == CHECK__NONE || m->invoke_ns > deadline_ns) continue;
        if (m->outcome == CHECK__OUT_NONE || m->outcome_ns >= heal_ns) return true;
    }
    return false;
}

static double check__since(uint64_t t, uint64_t heal_ns) {
    return t == CHECK__NONE ? -1.0 : (double)(t - heal_ns);
}

static int check__progress(const check_input_t *in, check__index_t *x, check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    const uint64_t heal = in->heal_ns;
    const uint64_t deadline = heal == 0 || in->progress_bound_ns == 0 ||
                                      in->progress_bound_ns > UINT64_MAX - heal
                                  ? UINT64_MAX
                                  : heal + in->progress_bound_ns;
    const history_t *h = in->history;
    uint64_t samples = 0, target = CHECK__NONE, leader_ns = CHECK__NONE, caught_ns = CHECK__NONE;
    check__sample_t last;
    memset(&last, 0, sizeof(last));
    uint32_t last_lagging = 0;
    uint64_t i = 0;
    while (heal != 0 && i < history_count(h) && history_get(h, i)->time_ns < heal) i++;
    for (i = check__next_sample(h, i); heal != 0 && i < history_count(h);
         i = check__next_sample(h, i)) {
        if (history_get(h, i)->time_ns > deadline) break;
        if (target == CHECK__NONE) { /* the first leader after heal sets the bar */
            uint64_t j = i;
            check__sample_t first;
            (void)check__sample_read(h, &j, CHECK__NONE, &first);
            if (first.leader != HISTORY_NODE_NONE) target = first.leader_commit;
        }
        last_lagging = check__sample_read(h, &i, target, &last);
        samples++;
        const bool led = last.leader != HISTORY_NODE_NONE;
        if (led && leader_ns == CHECK__NONE) leader_ns = last.time_ns;
        if (led && last_lagging == 0 && caught_ns == CHECK__NONE) caught_ns = last.time_ns;
    }
    uint64_t ok_ns = heal != 0 ? check__first_ok_after(in, heal) : CHECK__NONE;
    if (ok_ns != CHECK__NONE && ok_ns > deadline) ok_ns = CHECK__NONE;
    const bool needed = heal != 0 && check__confirm_needed(x, heal, deadline);
    const double bound_s = deadline == UINT64_MAX ? -1.0 : (double)(deadline - heal) / 1e9;
    /* Storage damaged on a majority (failed, or a corrupt log that may not
     * vote): no leader can be elected safely, so liveness is not owed (the
     * VOPR's rule: liveness is judged only within the fault model). Shown as
     * a figure, never silently. */
    const bool beyond = samples > 0 && last.brokers - last.damaged < last.brokers / 2 + 1;
    if (beyond) {
        /* not judged */
    } else if (heal != 0 && samples == 0) {
        check__violation(out, 0, heal, "no broker samples after heal: progress unknown");
    } else if (heal != 0) {
        if (leader_ns == CHECK__NONE)
            check__violation(out, 0, heal, "never recovered: no leader within %.3fs after heal",
                             bound_s);
        if (caught_ns == CHECK__NONE && last.first_lag_node != HISTORY_NODE_NONE)
            check__violation(out, 0, last.time_ns,
                             "never recovered: n%" PRIu32 " (%s) at commit %" PRIu64
                             " < %" PRIu64 " %.3fs after heal",
                             last.first_lag_node, history_role_name(last.first_lag_role),
                             last.first_lag_commit, target, (double)(last.time_ns - heal) / 1e9);
        else if (caught_ns == CHECK__NONE && leader_ns != CHECK__NONE)
            check__violation(out, 0, last.time_ns,
                             "never recovered: no sample with a leader and every broker caught up");
        if (needed && ok_ns == CHECK__NONE)
            check__violation(out, 0, heal, "never recovered: no confirm within %.3fs after heal",
                             bound_s);
    }
    check__fig(out, "bound_ns", deadline == UINT64_MAX ? -1.0 : (double)(deadline - heal));
    check__fig(out, "heal_to_leader_ns", check__since(leader_ns, heal));
    check__fig(out, "heal_to_caught_up_ns", check__since(caught_ns, heal));
    check__fig(out, "heal_to_ok_ns", check__since(ok_ns, heal));
    check__fig(out, "confirm_needed", needed ? 1.0 : 0.0);
    check__fig(out, "target_commit", target == CHECK__NONE ? -1.0 : (double)target);
    check__fig(out, "live_replicas", (double)last.live);
    check__fig(out, "lagging", (double)last_lagging);
    check__fig(out, "failed_replicas", (double)last.failed);
    check__fig(out, "damaged_replicas", (double)last.damaged);
    check__fig(out, "beyond_fault_model", beyond ? 1.0 : 0.0);
    check__fig(out, "samples", (double)samples);
    return 0;
}

int check_progress(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "progress", check__progress);
}

/* ---- replica agreement ---------------------------------------------------- */

static int check__replica_agreement(const check_input_t *in, check__index_t *x,
                                   check_result_t *out) {
    (void)x; /* works on the final replica states only */
    assert(in != NULL && out != NULL);
    uint64_t highest = 0;
    for (uint32_t i = 0; i < in->replicas_count; i++)
        if (in->replicas[i].commit_index > highest) highest = in->replicas[i].commit_index;
    const check_replica_final_t *ref = NULL;
    uint32_t at_highest = 0, mismatches = 0;
    for (uint32_t i = 0; i < in->replicas_count; i++) {
        const check_replica_final_t *r = &in->replicas[i];
        if (r->commit_index != highest) continue;
        at_highest++;
        if (ref == NULL) {
            ref = r;
        } else if (r->digest != ref->digest) {
            mismatches++;
            check__violation(out, 0, 0,
                             "replica %" PRIu32 " digest %016" PRIx64 " != replica %" PRIu32
                             " %016" PRIx64 " at commit %" PRIu64,
                             r->node, r->digest, ref->node, ref->digest, highest);
        }
    }
    assert(at_highest <= in->replicas_count);
    check__fig(out, "replicas", (double)in->replicas_count);
    check__fig(out, "highest_commit", (double)highest);
    check__fig(out, "at_highest", (double)at_highest);
    check__fig(out, "lagging", (double)(in->replicas_count - at_highest));
    check__fig(out, "mismatches", (double)mismatches);
    return 0;
}

int check_replica_agreement(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "replica_agreement", check__replica_agreement);
}

/* ---- latency -------------------------------------------------------------- */

/* Sort v[0..n) ascending: LSD radix, a byte per pass, skipping the bytes
 * every value shares (latencies rarely use the top three). `tmp` holds n
 * values. qsort's comparator calls were 4% of a saturated run. */
static void check__sort_u64(uint64_t *v, uint64_t *tmp, uint64_t n) {
    uint64_t all_or = 0, all_and = UINT64_MAX;
    for (uint64_t i = 0; i < n; i++) {
        all_or |= v[i];
        all_and &= v[i];
    }
    uint64_t *src = v, *dst = tmp;
    for (unsigned shift = 0; shift < 64; shift += 8) {
        if ((((all_or ^ all_and) >> shift) & 0xffu) == 0) continue; /* one bucket */
        uint64_t count[257] = {0};
        for (uint64_t i = 0; i < n; i++) count[((src[i] >> shift) & 0xffu) + 1]++;
        for (unsigned b = 0; b < 256; b++) count[b + 1] += count[b];
        for (uint64_t i = 0; i < n; i++) dst[count[(src[i] >> shift) & 0xffu]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != v) memcpy(v, src, (size_t)n * sizeof(*v));
    for (uint64_t i = 1; i < n; i++) assert(v[i - 1] <= v[i]);
}

/* Nearest-rank percentile of sorted v[0..n), 0 when empty. */
static double check__pct(const uint64_t *v, uint64_t n, double p) {
    if (n == 0) return 0.0;
    uint64_t rank = (uint64_t)ceil(p * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)v[rank - 1];
}

static void check__pct_figs(check_result_t *out, uint64_t *v, uint64_t *tmp, uint64_t n,
                            const char *p50, const char *p99, const char *max) {
    check__sort_u64(v, tmp, n);
    check__fig(out, p50, check__pct(v, n, 0.50));
    check__fig(out, p99, check__pct(v, n, 0.99));
    check__fig(out, max, n > 0 ? (double)v[n - 1] : 0.0);
}

static int check__latency(const check_input_t *in, check__index_t *x, check_result_t *out) {
    assert(in != NULL && x != NULL && out != NULL);
    uint64_t cap = x->count > 0 ? x->count : 1;
    uint64_t *conf = malloc((size_t)cap * sizeof(uint64_t));
    uint64_t *proc = malloc((size_t)cap * sizeof(uint64_t));
    uint64_t *tmp = malloc((size_t)cap * sizeof(uint64_t));
    if (conf == NULL || proc == NULL || tmp == NULL) {
        free(conf);
        free(proc);
        free(tmp);
        return check__error(out, IO_ENOMEM);
    }
    uint64_t nc = 0, np = 0;
    for (uint32_t e = 0; e < x->count; e++) {
        const check__msg_t *m = &x->msgs[e];
        if (m->invoke_ns == CHECK__NONE) continue;
        if (m->outcome == CHECK__OUT_OK) conf[nc++] = m->outcome_ns - m->invoke_ns;
        if (m->first_process_ns != CHECK__NONE && m->first_process_ns >= m->invoke_ns)
            proc[np++] = m->first_process_ns - m->invoke_ns;
    }
    assert(nc <= cap && np <= cap);
    check__fig(out, "confirm_samples", (double)nc);
    check__pct_figs(out, conf, tmp, nc, "confirm_p50_ns", "confirm_p99_ns", "confirm_max_ns");
    check__fig(out, "process_samples", (double)np);
    check__pct_figs(out, proc, tmp, np, "process_p50_ns", "process_p99_ns", "process_max_ns");
    free(tmp);
    free(conf);
    free(proc);
    return 0;
}

int check_latency(const check_input_t *in, check_result_t *out) {
    return check__run(in, out, "latency", check__latency);
}

/* ---- all, figures, printing --------------------------------------------- */

int check_all(const check_input_t *in, check_result_t out[CHECK_ALL_COUNT]) {
    static const check__fn_t fns[CHECK_ALL_COUNT] = {
        check__no_loss,      check__no_duplicates,     check__no_phantoms, check__ordering,
        check__availability, check__replica_agreement, check__latency,
        check__consumer_availability, check__leaderless, check__progress, check__drained};
    static const char *const names[CHECK_ALL_COUNT] = {
        "no_loss",      "no_duplicates",     "no_phantoms", "ordering",
        "availability", "replica_agreement", "latency",
        "consumer_availability", "leaderless", "progress", "drained"};
    assert(out != NULL);
    for (uint32_t i = 0; i < CHECK_ALL_COUNT; i++) check__begin(&out[i], names[i]);
    int rc = check_input_validate(in);
    check__index_t x; /* built once: it is the bulk of the work */
    if (rc == 0) rc = check__index_build(&x, in);
    if (rc != 0) {
        for (uint32_t i = 0; i < CHECK_ALL_COUNT; i++) (void)check__error(&out[i], rc);
        return rc;
    }
    int first = 0;
    for (uint32_t i = 0; i < CHECK_ALL_COUNT; i++) {
        rc = fns[i](in, &x, &out[i]);
        if (rc != 0 && first == 0) first = rc;
    }
    check__index_free(&x);
    return first;
}

double check_figure(const check_result_t *r, const char *name) {
    if (r == NULL || name == NULL) return NAN;
    for (uint32_t i = 0; i < r->figures_count && i < CHECK_FIGURES_MAX; i++)
        if (r->figures[i].name != NULL && strcmp(r->figures[i].name, name) == 0)
            return r->figures[i].value;
    return NAN;
}

/* Append to buf at *pos without overflowing; *pos keeps the would-be length. */
__attribute__((format(printf, 4, 5)))
static void check__put(char *buf, size_t cap, size_t *pos, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*pos < cap ? buf + *pos : NULL, *pos < cap ? cap - *pos : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *pos += (size_t)n;
}

int check_result_format(const check_result_t *r, char *buf, size_t cap) {
    assert(r != NULL);
    assert(buf != NULL || cap == 0);
    size_t pos = 0;
    if (cap > 0) buf[0] = '\0';
    check__put(buf, cap, &pos, "%s %s", r->name != NULL ? r->name : "?",
               r->error != 0 ? "ERROR" : r->passed ? "PASS" : "FAIL");
    for (uint32_t i = 0; i < r->figures_count && i < CHECK_FIGURES_MAX; i++) {
        double v = r->figures[i].value;
        if (v == floor(v) && fabs(v) < 1e15)
            check__put(buf, cap, &pos, " %s=%.0f", r->figures[i].name, v);
        else
            check__put(buf, cap, &pos, " %s=%.4f", r->figures[i].name, v);
    }
    check__put(buf, cap, &pos, " violations=%" PRIu64, r->violations_total);
    for (uint32_t i = 0; i < r->violations_count && i < 4; i++)
        check__put(buf, cap, &pos, "%s%#" PRIx64, i == 0 ? " [ids " : " ",
                   r->violations[i].message_id);
    if (r->violations_count > 0) check__put(buf, cap, &pos, "%s]",
                                            r->violations_count > 4 ? " ..." : "");
    return (int)pos;
}

void check_result_print(const check_result_t *r, FILE *out) {
    char line[1024];
    assert(r != NULL && out != NULL);
    check_result_format(r, line, sizeof(line));
    fprintf(out, "%s\n", line);
}

/* ---- time series ---------------------------------------------------------- */

/* Per bucket, the windows of `win` (aligned to time 0, the last ending at
 * end_ns) and how many of them saw a publish ok. */
static int check__series_windows(const check_input_t *in, uint64_t interval_ns,
                                 uint64_t end_ns, check_interval_t *out) {
    const uint64_t win = in->window_ns != 0 && in->window_ns < interval_ns ? in->window_ns
                         : CHECK_WINDOW_NS < interval_ns                   ? CHECK_WINDOW_NS
                                                                           : interval_ns;
    const uint64_t windows = end_ns / win + 1;
    if (windows > CHECK_WINDOWS_MAX * 10) return IO_EINVAL;
    uint8_t *hit = calloc((size_t)windows, 1);
    if (hit == NULL) return IO_ENOMEM;
    const uint64_t n = history_count(in->history);
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(in->history, i);
        if (r->time_ns > end_ns) break;
        if (r->op == HISTORY_OP_PUBLISH && r->kind == HISTORY_OK) hit[r->time_ns / win] = 1;
    }
    for (uint64_t k = 0; k < windows; k++) {
        check_interval_t *o = &out[(k * win) / interval_ns];
        o->windows++;
        o->available_windows += hit[k];
    }
    free(hit);
    return 0;
}

static int check__series_fill(const check_input_t *in, uint64_t interval_ns, uint64_t end_ns,
                              check_interval_t *out, uint64_t buckets) {
    for (uint64_t b = 0; b < buckets; b++) {
        memset(&out[b], 0, sizeof(out[b]));
        out[b].start_ns = b * interval_ns;
    }
    uint64_t n = history_count(in->history);
    for (uint64_t i = 0; i < n; i++) {
        const history_record_t *r = history_get(in->history, i);
        if (r->time_ns > end_ns) break;
        check_interval_t *o = &out[r->time_ns / interval_ns];
        if (r->op == HISTORY_OP_PUBLISH) {
            if (r->kind == HISTORY_INVOKE) o->published++;
            else if (r->kind == HISTORY_OK) o->confirmed++;
            else o->failed++;
        } else if (r->op == HISTORY_OP_PROCESS && r->kind == HISTORY_OK) {
            o->consumed++;
        }
    }
    const int rc = check__series_windows(in, interval_ns, end_ns, out);
    for (uint64_t b = 0; b < buckets; b++)
        out[b].availability = out[b].windows > 0 ? (double)out[b].available_windows /
                                                       (double)out[b].windows
                                                 : 0.0;
    return rc;
}

int64_t check_time_series(const check_input_t *in, uint64_t interval_ns,
                          uint64_t end_ns, check_interval_t *out, uint64_t cap) {
    if (check_input_validate(in) != 0 || interval_ns == 0 || (out == NULL && cap > 0))
        return IO_EINVAL;
    uint64_t n = history_count(in->history);
    if (end_ns == 0 && n > 0) end_ns = history_get(in->history, n - 1)->time_ns;
    uint64_t buckets = end_ns / interval_ns + 1;
    if (buckets > cap || buckets > CHECK_INTERVALS_MAX) return IO_EINVAL;
    const int rc = check__series_fill(in, interval_ns, end_ns, out, buckets);
    if (rc != 0) return rc;
    assert(buckets <= cap);
    return (int64_t)buckets;
}
