/* scenarios/shrink.c — shrink a failing run to a minimal standalone scenario
 * (see shrink.h for the search). */
#include "scenarios/shrink.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHRINK__NS 1e9
#define SHRINK__NUM_MAX 48u
#define SHRINK__RATE_MIN 1.0          /* publishes per second a producer keeps */
#define SHRINK__PHASE_MIN_S 0.5       /* heal / drain never shorter */
#define SHRINK__CHAOS_TAIL_S 0.5      /* chaos ends this long after the last step at least */

/* One fault call of the schedule, or an empty step (`nop`: a call event
 * that injected nothing, kept so the replay repeats the trace). Items of
 * one step share `step` and are consecutive. */
typedef struct shrink__item {
    uint64_t time_ns;
    uint32_t step;
    bool nop;
    faults_op_t op;
    uint8_t client;            /* 0 = a broker op, 1 = producer, 2 = consumer */
    uint32_t client_index;
} shrink__item_t;

typedef struct shrink__cand {
    scn_workload_t w;
    scn_phases_t phases;
    uint32_t replicas;
    shrink__item_t *items;
    uint32_t count;
} shrink__cand_t;

typedef struct shrink__ctx {
    const shrink_opts_t *o;
    const scenario_t *s;          /* the original, its side applied */
    const scenario_t *defaults;   /* a scenario with nothing declared */
    scn_strategy_t strategy;      /* the layers the run used, merged */
    bool ack_auto;
    uint32_t replicas;
    int inv;
    char tmp_path[64];
    uint64_t wall0_ns;
    uint32_t trials, kept;
    bool stop;                    /* a bound ran out */
    shrink__cand_t best;
    scn_result_t *r;              /* the last trial's result (scratch) */
    uint64_t best_published;
    double best_sim_s;
    uint64_t best_hash;
} shrink__ctx_t;

static uint64_t shrink__wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* ---- numbers that read back exactly ------------------------------------------ */

/* The shortest plain decimal text of d that strtod reads back as d (no
 * exponent: a reader sees 500, not 5e+02), else %.17g. */
static void shrink__shortest(double d, char *buf, size_t cap) {
    if (fabs(d) < 1e15) {
        for (int p = 0; p <= 17; p++) {
            snprintf(buf, cap, "%.*f", p, d);
            if (strtod(buf, NULL) == d) return;
        }
    }
    snprintf(buf, cap, "%.17g", d);
}

typedef enum { SHRINK__ROUND, SHRINK__TRUNC } shrink__conv_t;

static bool shrink__converts(double d, double scale, shrink__conv_t conv, int64_t want) {
    const double v = d * scale;
    const int64_t got = conv == SHRINK__ROUND ? (int64_t)llround(v) : (int64_t)v;
    return got == want;
}

/* A number `d` that the Lua API turns back into exactly `want` units
 * (d * scale, rounded or truncated as the API does), written shortest. */
static void shrink__units(int64_t want, double scale, shrink__conv_t conv, char *buf,
                          size_t cap) {
    double d = (double)want / scale;
    const double toward = want >= 0 ? INFINITY : -INFINITY;
    for (int i = 0; i < 16 && !shrink__converts(d, scale, conv, want); i++)
        d = nextafter(d, toward);
    shrink__shortest(d, buf, cap);
}

static void shrink__num(double d, char *buf, size_t cap) { shrink__shortest(d, buf, cap); }

/* ---- the candidate as Lua ------------------------------------------------------- */

static void shrink__set(FILE *f, faults_set_t set) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < FAULTS_BROKERS_MAX; i++) n += (set >> i) & 1u;
    fprintf(f, n == 1 ? "node(" : "nodes(");
    bool first = true;
    for (uint32_t i = 0; i < FAULTS_BROKERS_MAX; i++)
        if (set & (1u << i)) {
            fprintf(f, "%s%" PRIu32, first ? "" : ", ", i);
            first = false;
        }
    fprintf(f, ")");
}

static bool shrink__client_exists(const shrink__cand_t *c, const shrink__item_t *it) {
    if (it->client == 1) return it->client_index < c->w.producers;
    if (it->client == 2) return it->client_index < c->w.consumers;
    return true;
}

static void shrink__client(FILE *f, const shrink__item_t *it) {
    fprintf(f, "%s(%" PRIu32 ")", it->client == 1 ? "producer" : "consumer", it->client_index);
}

/* Whether the Lua API can say this op (what it cannot is dropped when the
 * run is rewritten: shrink__from_schedule counts them). */
static bool shrink__expressible(const faults_op_t *op, uint8_t client) {
    switch (op->kind) {
    case FAULTS_OP_CLIENT_PARTITION:
    case FAULTS_OP_CLIENT_CRASH:
    case FAULTS_OP_CLIENT_RESTART: return client != 0;
    case FAULTS_OP_DISK_CRASH_MODE: return op->host == SIM_DISK_CRASH_TORN;
    case FAULTS_OP_DISK_READ_ERRORS: return op->prefix[0] == '\0';
    case FAULTS_OP_HEAL_DISK:
    case FAULTS_OP_KINDS_COUNT: return false;
    default: return true;
    }
}

static void shrink__op(FILE *f, const shrink__item_t *it) {
    const faults_op_t *op = &it->op;
    char a[SHRINK__NUM_MAX], b[SHRINK__NUM_MAX];
    const char *name = faults_op_name(op->kind);
    switch (op->kind) {
    case FAULTS_OP_DRAW: fprintf(f, "random_nodes(%" PRIu32 ")", op->host); return;
    case FAULTS_OP_POWER_LOSS:
    case FAULTS_OP_RING:
    case FAULTS_OP_HEAL_NET: fprintf(f, "%s()", name); return;
    case FAULTS_OP_CLOCK:
        shrink__units(op->offset_ns, 1e6, SHRINK__TRUNC, a, sizeof a);
        fprintf(f, "clock(");
        shrink__set(f, op->set);
        fprintf(f, ", %s, %" PRId32 ")", a, op->drift_ppm);
        return;
    case FAULTS_OP_BRIDGE:
        fprintf(f, "bridge(");
        shrink__set(f, op->set);
        fprintf(f, ", %" PRIu32 ")", op->host);
        return;
    case FAULTS_OP_ONE_WAY:
        fprintf(f, "one_way(");
        shrink__set(f, op->set);
        fprintf(f, ", ");
        shrink__set(f, op->to);
        fprintf(f, ")");
        return;
    case FAULTS_OP_CLIENT_PARTITION:
        fprintf(f, "partition_client(");
        shrink__client(f, it);
        fprintf(f, ", ");
        shrink__set(f, op->set);
        fprintf(f, ")");
        return;
    case FAULTS_OP_CLIENT_CRASH:
    case FAULTS_OP_CLIENT_RESTART:
        fprintf(f, "%s(", name);
        shrink__client(f, it);
        fprintf(f, ")");
        return;
    case FAULTS_OP_LINKS:
        fprintf(f, "links(");
        shrink__set(f, op->set);
        fprintf(f, ", {");
        static const char *const probs[] = {"loss", "duplicate", "reorder", "corrupt"};
        const double p[] = {op->link.loss, op->link.duplicate, op->link.reorder,
                            op->link.corrupt};
        for (int k = 0; k < 4; k++) {
            if (!(p[k] > 0)) continue;
            shrink__num(p[k], a, sizeof a);
            fprintf(f, " %s = %s,", probs[k], a);
        }
        if (op->link.extra_latency_ns > 0) {
            shrink__units((int64_t)op->link.extra_latency_ns, 1e6, SHRINK__TRUNC, a, sizeof a);
            fprintf(f, " latency_ms = %s,", a);
        }
        shrink__units((int64_t)op->link.reorder_window_ns, 1e6, SHRINK__TRUNC, b, sizeof b);
        fprintf(f, " reorder_window_ms = %s, clients = %s })", b,
                op->link.brokers_only ? "false" : "true");
        return;
    case FAULTS_OP_CLOG:
        shrink__units((int64_t)op->duration_ns, 1e9, SHRINK__TRUNC, a, sizeof a);
        fprintf(f, "clog(");
        shrink__set(f, op->set);
        fprintf(f, ", %s)", a);
        return;
    case FAULTS_OP_DISK_CRASH_MODE:
        shrink__num(op->keep_probability, a, sizeof a);
        fprintf(f, "torn_writes(");
        shrink__set(f, op->set);
        fprintf(f, ", %s)", a);
        return;
    case FAULTS_OP_DISK_CORRUPT:
        fprintf(f, "disk_corrupt(");
        shrink__set(f, op->set);
        fprintf(f, ", %" PRIu32, op->host);
        if (op->prefix[0] != '\0') fprintf(f, ", \"%s\"", op->prefix);
        fprintf(f, ")");
        return;
    case FAULTS_OP_DISK_FULL:
        fprintf(f, "disk_full(");
        shrink__set(f, op->set);
        fprintf(f, ", %s)", op->full ? "true" : "false");
        return;
    case FAULTS_OP_DISK_SLOW:
        shrink__units((int64_t)op->duration_ns, 1e6, SHRINK__TRUNC, a, sizeof a);
        fprintf(f, "disk_slow(");
        shrink__set(f, op->set);
        fprintf(f, ", %s)", a);
        return;
    default: /* crash, kill, stop, restart, pause, resume, isolate, split, wipe, ... */
        fprintf(f, "%s(", name);
        shrink__set(f, op->set);
        fprintf(f, ")");
        return;
    }
}

static void shrink__kv_value(FILE *f, const char *v) {
    if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
        fprintf(f, "%s", v[1] == 'n' ? "true" : "false");
        return;
    }
    if (v[0] != '\0' && strspn(v, "0123456789") == strlen(v)) {
        fprintf(f, "%s", v);
        return;
    }
    fprintf(f, "\"%s\"", v);
}

/* One `key = value,` when it differs from the default (or `always`). */
static void shrink__field_num(FILE *f, bool *any, const char *key, double v, double dflt,
                              bool always) {
    if (!always && v == dflt) return;
    char num[SHRINK__NUM_MAX];
    shrink__num(v, num, sizeof num);
    fprintf(f, "%s%s = %s", *any ? ", " : " ", key, num);
    *any = true;
}

static void shrink__field_bool(FILE *f, bool *any, const char *key, bool v, bool dflt) {
    if (v == dflt) return;
    fprintf(f, "%s%s = %s", *any ? ", " : " ", key, v ? "true" : "false");
    *any = true;
}

static void shrink__field_str(FILE *f, bool *any, const char *key, const char *v,
                              const char *dflt) {
    if (strcmp(v, dflt) == 0) return;
    fprintf(f, "%s%s = \"%s\"", *any ? ", " : " ", key, v);
    *any = true;
}

static void shrink__refusal(FILE *f, bool *any, const char *key, double p, uint64_t every,
                            bool requeue, bool poison) {
    if (poison ? every == 0 : p <= 0) return;
    char num[SHRINK__NUM_MAX];
    shrink__num(p, num, sizeof num);
    if (poison) fprintf(f, "%s%s = { every = %" PRIu64, *any ? ", " : " ", key, every);
    else fprintf(f, "%s%s = { probability = %s", *any ? ", " : " ", key, num);
    fprintf(f, ", requeue = %s }", requeue ? "true" : "false");
    *any = true;
}

static void shrink__workload(FILE *f, const shrink__ctx_t *c, const scn_workload_t *w) {
    const scn_workload_t *d = &c->defaults->workload;
    bool any = false;
    fprintf(f, "workload {\n  producers = {");
    shrink__field_num(f, &any, "count", w->producers, d->producers, true);
    shrink__field_num(f, &any, "rate", w->rate, d->rate, false);
    shrink__field_bool(f, &any, "poisson", w->poisson, d->poisson);
    shrink__field_num(f, &any, "window", w->window, d->window, false);
    shrink__field_num(f, &any, "timeout_ms", w->timeout_ms, d->timeout_ms, false);
    shrink__field_num(f, &any, "retries", w->retries, d->retries, false);
    shrink__field_num(f, &any, "backoff_ms", w->backoff_ms, d->backoff_ms, false);
    shrink__field_bool(f, &any, "idempotent", w->producer_idempotent, d->producer_idempotent);
    shrink__field_num(f, &any, "body_bytes", w->body_bytes, d->body_bytes, false);
    shrink__field_num(f, &any, "messages", (double)w->messages, (double)d->messages, false);
    shrink__field_bool(f, &any, "persistent", w->persistent, d->persistent);
    shrink__field_bool(f, &any, "confirms", w->confirms, d->confirms);
    fprintf(f, " },\n  consumers = {");
    any = false;
    shrink__field_num(f, &any, "count", w->consumers, d->consumers, true);
    shrink__field_num(f, &any, "prefetch", w->prefetch, d->prefetch, false);
    if (c->ack_auto) fprintf(f, ", ack = \"auto\"");
    shrink__field_num(f, &any, "processing_ms", w->processing_ms, d->processing_ms, false);
    shrink__field_num(f, &any, "crash_before_ack", w->crash_before_ack, d->crash_before_ack,
                      false);
    shrink__field_bool(f, &any, "idempotent", w->consumer_idempotent, d->consumer_idempotent);
    shrink__refusal(f, &any, "nack", w->nack_p, 0, w->nack_requeue, false);
    shrink__refusal(f, &any, "reject", w->reject_p, 0, w->reject_requeue, false);
    shrink__refusal(f, &any, "poison", 0, w->poison_every, w->poison_requeue, true);
    fprintf(f, " },\n ");
    any = false;
    shrink__field_str(f, &any, "queue", w->queue, d->queue);
    shrink__field_str(f, &any, "dead_letter", w->dead_letter, d->dead_letter);
    shrink__field_num(f, &any, "delivery_limit", w->delivery_limit, d->delivery_limit, false);
    shrink__field_num(f, &any, "dead_letter_consumers", w->dead_letter_consumers,
                      d->dead_letter_consumers, false);
    shrink__field_bool(f, &any, "probe", w->probe, d->probe);
    fprintf(f, "%s}\n", any ? "\n" : "");
}

static void shrink__env(FILE *f, const shrink__ctx_t *c) {
    const scn_network_t *n = &c->s->network, *dn = &c->defaults->network;
    bool any = false;
    char buf[512];
    FILE *m = fmemopen(buf, sizeof buf, "w");
    if (m == NULL) return;
    shrink__field_num(m, &any, "latency_ms", n->latency_ms, dn->latency_ms, false);
    shrink__field_num(m, &any, "jitter_ms", n->jitter_ms, dn->jitter_ms, false);
    if (n->jitter_exponential != dn->jitter_exponential) {
        fprintf(m, "%sjitter = \"%s\"", any ? ", " : " ",
                n->jitter_exponential ? "exponential" : "uniform");
        any = true;
    }
    shrink__field_num(m, &any, "loss", n->loss, dn->loss, false);
    shrink__field_num(m, &any, "duplicate", n->duplicate, dn->duplicate, false);
    shrink__field_num(m, &any, "reorder", n->reorder, dn->reorder, false);
    shrink__field_num(m, &any, "corrupt", n->corrupt, dn->corrupt, false);
    shrink__field_num(m, &any, "reorder_window_ms", n->reorder_window_ms, dn->reorder_window_ms,
                      false);
    fclose(m);
    if (any) fprintf(f, "network {%s }\n", buf);
    const scn_disk_t *d = &c->s->disk, *dd = &c->defaults->disk;
    any = false;
    m = fmemopen(buf, sizeof buf, "w");
    if (m == NULL) return;
    shrink__field_num(m, &any, "fsync_ms", d->fsync_ms, dd->fsync_ms, false);
    shrink__field_num(m, &any, "fsync_jitter_ms", d->fsync_jitter_ms, dd->fsync_jitter_ms, false);
    shrink__field_num(m, &any, "write_us", d->write_us, dd->write_us, false);
    if (d->crash != dd->crash) {
        static const char *const modes[] = {"lose", "keep", "torn"};
        fprintf(m, "%scrash = \"%s\"", any ? ", " : " ", modes[d->crash]);
        any = true;
    }
    shrink__field_num(m, &any, "keep", d->keep, dd->keep, false);
    fclose(m);
    if (any) fprintf(f, "disk {%s }\n", buf);
}

/* expect{} holding the run to the one invariant (and progress, always on). */
static void shrink__expect(FILE *f, const shrink__ctx_t *c) {
    const scn_expect_t *x = &c->s->expect;
    char num[SHRINK__NUM_MAX];
    fprintf(f, "expect { ");
    switch (c->inv) {
    case SCN_INV_AVAILABILITY: shrink__num(x->availability, num, sizeof num);
        fprintf(f, "availability = %s", num); break;
    case SCN_INV_RECOVERY: shrink__num(x->recovery_s, num, sizeof num);
        fprintf(f, "recovery = %s", num); break;
    case SCN_INV_MAX_UNAVAILABLE: shrink__num(x->max_unavailable_s, num, sizeof num);
        fprintf(f, "max_unavailable = %s", num); break;
    case SCN_INV_ATTEMPT_SUCCESS: shrink__num(x->attempt_success, num, sizeof num);
        fprintf(f, "attempt_success = %s", num); break;
    case SCN_INV_CONSUMER_AVAILABILITY: shrink__num(x->consumer_availability, num, sizeof num);
        fprintf(f, "consumer_availability = %s", num); break;
    case SCN_INV_LEADERLESS:
        if (x->has_leaderless) {
            shrink__num(x->leaderless_s, num, sizeof num);
            fprintf(f, "leaderless = %s%s", num, x->has_leaderless_max ? ", " : "");
        }
        if (x->has_leaderless_max) {
            shrink__num(x->leaderless_max_s, num, sizeof num);
            fprintf(f, "leaderless_max = %s", num);
        }
        break;
    case SCN_INV_PROGRESS: break;
    case SCN_INV_DRAINED: fprintf(f, "drained = true"); break;
    case SCN_INV_LATENCY: shrink__num(x->latency_p99_ms, num, sizeof num);
        fprintf(f, "latency_p99_ms = %s", num); break;
    case SCN_INV_DUPLICATE_ENQUEUES:
        fprintf(f, "duplicate_enqueues = %" PRIu64, x->duplicate_enqueues); break;
    default: fprintf(f, "%s = true", scn_invariant_name((unsigned)c->inv)); break;
    }
    if (x->has_progress) {
        shrink__num(x->progress_s, num, sizeof num);
        fprintf(f, "%sprogress = %s", c->inv == SCN_INV_PROGRESS ? "" : ", ", num);
    }
    /* no_loss alone would also enforce drained (its default follows no_loss) */
    if (c->inv == SCN_INV_NO_LOSS) fprintf(f, ", drained = false");
    fprintf(f, " }\n");
}

static void shrink__actions(FILE *f, const shrink__cand_t *c) {
    for (uint32_t i = 0; i < c->count;) {
        const uint32_t step = c->items[i].step;
        char t[SHRINK__NUM_MAX];
        shrink__units((int64_t)c->items[i].time_ns, 1e9, SHRINK__ROUND, t, sizeof t);
        fprintf(f, "at(%s, function()", t);
        bool first = true;
        for (; i < c->count && c->items[i].step == step; i++) {
            const shrink__item_t *it = &c->items[i];
            if (it->nop || !shrink__client_exists(c, it)) continue;
            fprintf(f, "%s", first ? " " : "; ");
            shrink__op(f, it);
            first = false;
        }
        fprintf(f, " end)\n");
    }
}

/* The whole file for candidate `cand`. */
static int shrink__write_lua(const shrink__ctx_t *c, const shrink__cand_t *cand, FILE *f) {
    const char *side = scn_variant_name(c->o->variant);
    fprintf(f, "-- %s, seed %" PRIu64 "%s%s: shrunk by `chaoslab shrink` to what still fails "
               "%s.\n",
            c->s->path, c->o->seed, side[0] ? ", variant " : "", side,
            scn_invariant_name((unsigned)c->inv));
    fprintf(f, "-- Every fault is an explicit at() action on concrete nodes (no nemesis).\n");
    if (c->s->teach.present) fprintf(f, "-- Lesson: %s\n", c->s->teach.lesson);
    fprintf(f, "scenario { name = \"%s_shrunk\", seeds = \"%" PRIu64 "\" }\n\n", c->s->name,
            c->o->seed);
    fprintf(f, "cluster {");
    bool any = false;
    if (cand->replicas != c->replicas) { /* shrunk: says so first */
        fprintf(f, " replicas = %" PRIu32, cand->replicas);
        any = true;
    }
    for (uint32_t i = 0; i < c->strategy.count; i++) {
        const char *key = c->strategy.kv[i].key;
        if (strcmp(key, "ack") == 0) continue; /* client side: consumers.ack */
        if (strcmp(key, "replicas") == 0 && cand->replicas != c->replicas) continue;
        fprintf(f, "%s%s = ", any ? ", " : " ", key);
        shrink__kv_value(f, c->strategy.kv[i].value);
        any = true;
    }
    fprintf(f, " }\n");
    shrink__env(f, c);
    shrink__workload(f, c, &cand->w);
    char ch[SHRINK__NUM_MAX], he[SHRINK__NUM_MAX], dr[SHRINK__NUM_MAX];
    shrink__num(cand->phases.chaos_s, ch, sizeof ch);
    shrink__num(cand->phases.heal_s, he, sizeof he);
    shrink__num(cand->phases.drain_s, dr, sizeof dr);
    fprintf(f, "phases { chaos = %s, heal = %s, drain = %s }\n\n", ch, he, dr);
    shrink__actions(f, cand);
    fprintf(f, "\n");
    shrink__expect(f, c);
    return ferror(f) ? -1 : 0;
}

static int shrink__save(const shrink__ctx_t *c, const shrink__cand_t *cand, const char *path) {
    FILE *f = fopen(path, "w");
    if (f == NULL) return -1;
    const int rc = shrink__write_lua(c, cand, f);
    return fclose(f) != 0 || rc != 0 ? -1 : 0;
}

/* ---- candidates ------------------------------------------------------------------ */

static int shrink__copy(shrink__cand_t *dst, const shrink__cand_t *src) {
    shrink__item_t *items = malloc(((size_t)src->count + 1) * sizeof *items);
    if (items == NULL) return -1;
    if (src->count > 0) memcpy(items, src->items, (size_t)src->count * sizeof *items);
    free(dst->items);
    *dst = *src;
    dst->items = items;
    return 0;
}

static uint32_t shrink__steps(const shrink__cand_t *c) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->count; i++)
        if (i == 0 || c->items[i].step != c->items[i - 1].step) n++;
    return n;
}

static uint32_t shrink__faults(const shrink__cand_t *c) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->count; i++)
        if (!c->items[i].nop && c->items[i].op.kind != FAULTS_OP_DRAW &&
            shrink__client_exists(c, &c->items[i]))
            n++;
    return n;
}

static uint32_t shrink__clients(const scn_workload_t *w) {
    return w->producers + w->consumers + (w->probe ? 1u : 0u) + w->dead_letter_consumers;
}

/* The run's schedule as items; client hosts become producer(i)/consumer(j).
 * Returns the number of calls the Lua API cannot say (dropped), or -1. */
static int shrink__from_schedule(const shrink__ctx_t *c, const scn_schedule_t *sc,
                                 shrink__cand_t *out) {
    const uint32_t cap = sc->ops_count + sc->steps_count;
    if (cap > SHRINK_ITEMS_MAX) return -1;
    out->items = calloc((size_t)cap + 1, sizeof *out->items);
    if (out->items == NULL) return -1;
    int dropped = 0;
    const scn_workload_t *w = &c->s->workload;
    for (uint32_t s = 0; s < sc->steps_count; s++) {
        const scn_step_t *st = &sc->steps[s];
        const uint32_t before = out->count;
        for (uint32_t k = 0; k < st->ops_count; k++) {
            shrink__item_t it = {.time_ns = st->time_ns, .step = s, .op = sc->ops[st->ops_first + k]};
            const bool client_op = it.op.kind == FAULTS_OP_CLIENT_PARTITION ||
                                   it.op.kind == FAULTS_OP_CLIENT_CRASH ||
                                   it.op.kind == FAULTS_OP_CLIENT_RESTART;
            if (client_op) {
                const uint32_t first = c->replicas + 1; /* after the setup client */
                if (it.op.host >= first && it.op.host < first + w->producers) {
                    it.client = 1;
                    it.client_index = it.op.host - first;
                } else if (it.op.host >= first + w->producers &&
                           it.op.host < first + w->producers + w->consumers) {
                    it.client = 2;
                    it.client_index = it.op.host - first - w->producers;
                }
            }
            if (!shrink__expressible(&it.op, it.client)) {
                dropped++;
                continue;
            }
            out->items[out->count++] = it;
        }
        if (out->count == before) /* still a call event of the trace */
            out->items[out->count++] = (shrink__item_t){.time_ns = st->time_ns, .step = s, .nop = true};
    }
    return dropped;
}

/* ---- trials ----------------------------------------------------------------------- */

static void shrink__progress(const shrink__ctx_t *c, const char *what) {
    if (c->o->progress == NULL) return;
    fprintf(c->o->progress,
            "shrink: trial %" PRIu32 "/%" PRIu32 "  kept %" PRIu32 "  faults %" PRIu32
            "  steps %" PRIu32 "  clients %" PRIu32 "  messages %" PRIu64 "  sim %.1fs  "
            "wall %.1fs  (%s)\n",
            c->trials, c->o->max_trials, c->kept, shrink__faults(&c->best),
            shrink__steps(&c->best), shrink__clients(&c->best.w), c->best_published,
            c->best_sim_s, (double)(shrink__wall_ns() - c->wall0_ns) / SHRINK__NS, what);
    fflush(c->o->progress);
}

/* Run `cand`; true when the invariant still fails (a judged run). Sets
 * c->stop once a bound is reached. */
static bool shrink__fails(shrink__ctx_t *c, const shrink__cand_t *cand, char *err,
                          size_t err_cap) {
    /* Trial 0 (the whole run, explicit) always runs: it is what gets written
     * when a bound stops the search at once. */
    if (c->trials > 0 &&
        (c->trials >= c->o->max_trials ||
         (double)(shrink__wall_ns() - c->wall0_ns) / SHRINK__NS > c->o->budget_s)) {
        c->stop = true;
        return false;
    }
    c->trials++;
    if (shrink__save(c, cand, c->tmp_path) != 0) {
        snprintf(err, err_cap, "%s: cannot write a trial: %s", c->tmp_path, strerror(errno));
        c->stop = true;
        return false;
    }
    scenario_t *s = NULL;
    char lerr[SCN_ERR_MAX];
    if (scenario_new(c->tmp_path, c->o->seed, &s, lerr, sizeof lerr) != 0) {
        snprintf(err, err_cap, "a shrunk candidate does not load (a shrink bug): %.3000s", lerr);
        c->stop = true;
        return false;
    }
    scn_result_free(c->r);
    const scn_run_opts_t ro = {.seed = c->o->seed, .variant = SCN_VARIANT_NONE};
    const int rc = scn_engine_run(s, &ro, c->r);
    scenario_free(s);
    return rc == 0 && c->r->judged && !c->r->inv[c->inv].passed;
}

/* Try `cand`: when it still fails, it becomes the best. */
static bool shrink__try(shrink__ctx_t *c, const shrink__cand_t *cand, const char *what,
                        char *err, size_t err_cap) {
    if (c->stop || !shrink__fails(c, cand, err, err_cap)) return false;
    if (shrink__copy(&c->best, cand) != 0) {
        c->stop = true;
        return false;
    }
    c->kept++;
    c->best_published = c->r->published;
    c->best_sim_s = (double)c->r->sim_time_ns / SHRINK__NS;
    c->best_hash = c->r->trace_hash;
    shrink__progress(c, what);
    return true;
}

/* Remove items [from, to) of `src` into dst. */
static void shrink__without(const shrink__cand_t *src, uint32_t from, uint32_t to,
                            shrink__cand_t *dst) {
    dst->w = src->w;
    dst->phases = src->phases;
    dst->replicas = src->replicas;
    dst->count = 0;
    for (uint32_t i = 0; i < src->count; i++)
        if (i < from || i >= to) dst->items[dst->count++] = src->items[i];
}

/* Item index where step number `k` (0-based, in order) begins; count if none. */
static uint32_t shrink__step_at(const shrink__cand_t *c, uint32_t k) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        if (i > 0 && c->items[i].step == c->items[i - 1].step) continue;
        if (n++ == k) return i;
    }
    return c->count;
}

/* Pass 1: drop whole steps, chunks first (delta debugging), then one by one. */
static bool shrink__pass_steps(shrink__ctx_t *c, shrink__cand_t *t, char *err, size_t cap) {
    bool changed = false;
    for (uint32_t chunk = shrink__steps(&c->best) / 2; chunk >= 1 && !c->stop; chunk /= 2) {
        for (uint32_t k = 0; k < shrink__steps(&c->best) && !c->stop;) {
            const uint32_t from = shrink__step_at(&c->best, k);
            const uint32_t to = shrink__step_at(&c->best, k + chunk);
            shrink__without(&c->best, from, to, t);
            char what[64];
            snprintf(what, sizeof what, "dropped %" PRIu32 " step%s", chunk, chunk > 1 ? "s" : "");
            if (shrink__try(c, t, what, err, cap)) changed = true;
            else k += chunk;
        }
        if (chunk == 1) break;
    }
    return changed;
}

/* Pass 2: drop single calls out of steps that hold several. */
static bool shrink__pass_calls(shrink__ctx_t *c, shrink__cand_t *t, char *err, size_t cap) {
    bool changed = false;
    for (uint32_t i = 0; i < c->best.count && !c->stop;) {
        const shrink__item_t *it = &c->best.items[i];
        const bool alone = (i == 0 || c->best.items[i - 1].step != it->step) &&
                           (i + 1 == c->best.count || c->best.items[i + 1].step != it->step);
        if (alone || it->nop) {
            i++;
            continue;
        }
        shrink__without(&c->best, i, i + 1, t);
        if (shrink__try(c, t, "dropped a fault call", err, cap)) changed = true;
        else i++;
    }
    return changed;
}

static bool shrink__try_w(shrink__ctx_t *c, shrink__cand_t *t, const scn_workload_t *w,
                          const char *what, char *err, size_t cap) {
    shrink__without(&c->best, 0, 0, t);
    t->w = *w;
    return shrink__try(c, t, what, err, cap);
}

/* Try `*field` = 1 (or `lo`), then halving from the current value. */
static bool shrink__fewer(shrink__ctx_t *c, shrink__cand_t *t, size_t offset, uint32_t lo,
                          const char *what, char *err, size_t cap) {
    bool changed = false;
    for (int round = 0; round < 8 && !c->stop; round++) {
        scn_workload_t w = c->best.w;
        uint32_t *field = (uint32_t *)((char *)&w + offset);
        if (*field <= lo) break;
        const uint32_t cur = *field;
        *field = lo;
        if (shrink__try_w(c, t, &w, what, err, cap)) {
            changed = true;
            break;
        }
        if (cur / 2 <= lo || cur / 2 == cur) break;
        *field = cur / 2;
        if (!shrink__try_w(c, t, &w, what, err, cap)) break;
        changed = true;
    }
    return changed;
}

/* Pass 3: fewer clients and messages, lower rates. */
static bool shrink__pass_workload(shrink__ctx_t *c, shrink__cand_t *t, char *err, size_t cap) {
    bool changed = false;
    scn_workload_t w = c->best.w;
    if (w.probe) {
        w.probe = false;
        changed |= shrink__try_w(c, t, &w, "no probe", err, cap);
    }
    changed |= shrink__fewer(c, t, offsetof(scn_workload_t, producers), 1, "fewer producers",
                             err, cap);
    changed |= shrink__fewer(c, t, offsetof(scn_workload_t, consumers), 1, "fewer consumers",
                             err, cap);
    changed |= shrink__fewer(c, t, offsetof(scn_workload_t, dead_letter_consumers), 0,
                             "fewer dead-letter consumers", err, cap);
    for (int i = 0; i < 4 && !c->stop && c->best.w.rate / 2 >= SHRINK__RATE_MIN; i++) {
        w = c->best.w;
        w.rate = floor(w.rate / 2);
        if (!shrink__try_w(c, t, &w, "lower rate", err, cap)) break;
        changed = true;
    }
    /* A producer that publishes until heal gets a count: what it sent, then half. */
    for (int i = 0; i < 4 && !c->stop; i++) {
        w = c->best.w;
        const uint64_t per = w.producers > 0 ? c->best_published / w.producers : 0;
        const uint64_t next = w.messages == 0 ? per : w.messages / 2;
        if (next == 0 || (w.messages != 0 && next >= w.messages)) break;
        w.messages = next;
        if (!shrink__try_w(c, t, &w, "fewer messages", err, cap)) break;
        changed = true;
    }
    return changed;
}

/* Whether every call of `c` names only brokers below `replicas` (and a
 * ring still has the 5 it needs). */
static bool shrink__fits(const shrink__cand_t *c, uint32_t replicas) {
    const faults_set_t all = (faults_set_t)((1u << replicas) - 1u);
    for (uint32_t i = 0; i < c->count; i++) {
        const shrink__item_t *it = &c->items[i];
        if (it->nop || !shrink__client_exists(c, it)) continue;
        const faults_op_t *op = &it->op;
        if ((op->set & ~all) != 0 || (op->to & ~all) != 0) return false;
        if (op->kind == FAULTS_OP_BRIDGE && op->host >= replicas) return false;
        if (op->kind == FAULTS_OP_DRAW && op->host > replicas) return false;
        if (op->kind == FAULTS_OP_RING && replicas < 5) return false;
    }
    return true;
}

/* Pass 3b: fewer replicas, two at a time, never below SHRINK_REPLICAS_MIN
 * (a quorum of one would change what the run is about, not shrink it). */
static bool shrink__pass_replicas(shrink__ctx_t *c, shrink__cand_t *t, char *err, size_t cap) {
    bool changed = false;
    while (!c->stop && c->best.replicas >= SHRINK_REPLICAS_MIN + 2 &&
           shrink__fits(&c->best, c->best.replicas - 2)) {
        shrink__without(&c->best, 0, 0, t);
        t->replicas = c->best.replicas - 2;
        if (!shrink__try(c, t, "fewer replicas", err, cap)) break;
        changed = true;
    }
    return changed;
}

static uint64_t shrink__last_ns(const shrink__cand_t *c) {
    uint64_t last = 0;
    for (uint32_t i = 0; i < c->count; i++)
        if (c->items[i].time_ns > last) last = c->items[i].time_ns;
    return last;
}

static bool shrink__try_phases(shrink__ctx_t *c, shrink__cand_t *t, scn_phases_t p,
                               const char *what, char *err, size_t cap) {
    shrink__without(&c->best, 0, 0, t);
    t->phases = p;
    return shrink__try(c, t, what, err, cap);
}

/* Pass 4: shorter phases (chaos never ends before the last fault step). */
static bool shrink__pass_phases(shrink__ctx_t *c, shrink__cand_t *t, char *err, size_t cap) {
    bool changed = false;
    for (int i = 0; i < 4 && !c->stop; i++) {
        scn_phases_t p = c->best.phases;
        const double floor_s = ceil((double)shrink__last_ns(&c->best) / SHRINK__NS * 10) / 10 +
                               SHRINK__CHAOS_TAIL_S;
        if (p.chaos_s <= floor_s) break;
        p.chaos_s = i == 0 ? floor_s : ceil((p.chaos_s + floor_s) / 2 * 10) / 10;
        if (p.chaos_s >= c->best.phases.chaos_s) break;
        if (shrink__try_phases(c, t, p, "shorter chaos", err, cap)) changed = true;
        else if (i > 0) break;
    }
    for (int which = 0; which < 2; which++)
        for (int i = 0; i < 4 && !c->stop; i++) {
            scn_phases_t p = c->best.phases;
            double *v = which == 0 ? &p.drain_s : &p.heal_s;
            const double half = ceil(*v / 2 * 10) / 10;
            if (half < SHRINK__PHASE_MIN_S || half >= *v) break;
            *v = half;
            if (!shrink__try_phases(c, t, p, which == 0 ? "shorter drain" : "shorter heal", err,
                                    cap))
                break;
            changed = true;
        }
    return changed;
}

/* Pass 5: each step halfway closer to the one before it (faults start
 * sooner, last shorter), on whole milliseconds. */
static bool shrink__pass_times(shrink__ctx_t *c, shrink__cand_t *t, char *err, size_t cap) {
    bool changed = false;
    for (uint32_t k = 0; k < shrink__steps(&c->best) && !c->stop; k++) {
        const uint32_t from = shrink__step_at(&c->best, k);
        const uint32_t to = shrink__step_at(&c->best, k + 1);
        const uint64_t prev = k == 0 ? 0 : c->best.items[from - 1].time_ns;
        const uint64_t cur = c->best.items[from].time_ns;
        uint64_t next = prev + (cur - prev) / 2;
        next -= next % SHRINK_TIME_QUANTUM_NS;
        if (next <= prev && k > 0) next = prev + SHRINK_TIME_QUANTUM_NS;
        if (cur - next < 10 * SHRINK_TIME_QUANTUM_NS) continue; /* not worth a trial */
        shrink__without(&c->best, 0, 0, t);
        for (uint32_t i = from; i < to; i++) t->items[i].time_ns = next;
        if (shrink__try(c, t, "fault sooner", err, cap)) changed = true;
    }
    return changed;
}

/* ---- the search ------------------------------------------------------------------- */

static int shrink__target(const shrink_opts_t *o, const scenario_t *s, const scn_result_t *r,
                          char *err, size_t cap) {
    if (o->invariant >= 0) {
        if (r->inv[o->invariant].passed) {
            snprintf(err, cap, "invariant %s held in this run: nothing to shrink",
                     scn_invariant_name((unsigned)o->invariant));
            return -1;
        }
        return o->invariant;
    }
    if (s->teach.present && o->variant == SCN_VARIANT_WEAK) {
        const int lesson = scn_invariant_parse(s->teach.violation);
        if (lesson >= 0 && !r->inv[lesson].passed) return lesson;
        snprintf(err, cap, "the weak side did not show %s in this seed: nothing to shrink",
                 s->teach.violation);
        return -1;
    }
    for (unsigned i = 0; i < SCN_INV_COUNT; i++)
        if (r->inv[i].enforced && !r->inv[i].as_expected) return (int)i;
    snprintf(err, cap, "every expectation held in this run: nothing fails, nothing to shrink");
    return -1;
}

static int shrink__check_opts(const shrink_opts_t *o, char *err, size_t cap) {
    if (o->path == NULL || o->out_path == NULL) {
        snprintf(err, cap, "a scenario and an output path are needed");
        return -1;
    }
    if (!(o->budget_s > 0) || o->budget_s > SHRINK_BUDGET_S_MAX) {
        snprintf(err, cap, "budget must be above 0 and at most %.0f seconds", SHRINK_BUDGET_S_MAX);
        return -1;
    }
    if (o->max_trials == 0 || o->max_trials > SHRINK_TRIALS_MAX) {
        snprintf(err, cap, "max trials must be 1..%u", SHRINK_TRIALS_MAX);
        return -1;
    }
    if (o->invariant >= (int)SCN_INV_COUNT) {
        snprintf(err, cap, "unknown invariant %d", o->invariant);
        return -1;
    }
    /* The output must be writable before minutes of trials are spent (a
     * file this check creates is removed again). */
    struct stat st;
    const bool existed = stat(o->out_path, &st) == 0;
    if (existed && S_ISDIR(st.st_mode)) {
        snprintf(err, cap, "%s: is a directory (want the output file's path)", o->out_path);
        return -1;
    }
    FILE *f = fopen(o->out_path, "a");
    if (f == NULL) {
        snprintf(err, cap, "%s: cannot write: %s", o->out_path, strerror(errno));
        return -1;
    }
    fclose(f);
    if (!existed) unlink(o->out_path);
    return 0;
}

static void shrink__merge_strategy(const scenario_t *s, scn_variant_t v, scn_strategy_t *out) {
    memset(out, 0, sizeof *out);
    const scn_strategy_t *side = v == SCN_VARIANT_WEAK     ? &s->teach.weak
                                 : v == SCN_VARIANT_STRONG ? &s->teach.strong
                                                           : NULL;
    const scn_strategy_t *layers[2] = {&s->strategy, side};
    char err[256];
    for (int l = 0; l < 2; l++)
        for (uint32_t i = 0; layers[l] != NULL && i < layers[l]->count; i++)
            (void)scn_strategy_set(out, layers[l]->kv[i].key, layers[l]->kv[i].value, err,
                                   sizeof err);
}

static int shrink__defaults(shrink__ctx_t *c, scenario_t **out, char *err, size_t cap) {
    FILE *f = fopen(c->tmp_path, "w");
    if (f == NULL || fprintf(f, "scenario { name = \"defaults\" }\n") < 0) {
        if (f != NULL) fclose(f);
        snprintf(err, cap, "%s: cannot write: %s", c->tmp_path, strerror(errno));
        return -1;
    }
    fclose(f);
    return scenario_new(c->tmp_path, 1, out, err, cap);
}

static void shrink__sizes(const shrink__cand_t *cand, const scn_result_t *r, shrink_size_t *z) {
    z->faults = shrink__faults(cand);
    z->steps = shrink__steps(cand);
    z->clients = shrink__clients(&cand->w);
    z->messages = r->published;
    z->sim_s = (double)r->sim_time_ns / SHRINK__NS;
}

/* The search, once the original run failed and its schedule is items. */
static int shrink__search(shrink__ctx_t *c, shrink_result_t *out) {
    shrink__cand_t t = {0};
    if (shrink__copy(&t, &c->best) != 0) {
        snprintf(out->err, sizeof out->err, "out of memory");
        return -1;
    }
    /* Trial 0: the explicit schedule, nothing removed. */
    if (!shrink__fails(c, &c->best, out->err, sizeof out->err)) {
        if (out->err[0] == '\0')
            snprintf(out->err, sizeof out->err,
                     "the explicit schedule of the run does not fail %s (verdict %s): it "
                     "cannot be shrunk",
                     scn_invariant_name((unsigned)c->inv), report_verdict_name(c->r->verdict));
        free(t.items);
        return -1;
    }
    out->replay_hash = c->r->trace_hash;
    c->best_published = c->r->published;
    c->best_sim_s = (double)c->r->sim_time_ns / SHRINK__NS;
    c->best_hash = c->r->trace_hash;
    shrink__progress(c, "the run as explicit at() actions");
    for (bool changed = true; changed && !c->stop;) {
        changed = shrink__pass_steps(c, &t, out->err, sizeof out->err);
        changed |= shrink__pass_workload(c, &t, out->err, sizeof out->err);
        changed |= shrink__pass_replicas(c, &t, out->err, sizeof out->err);
        changed |= shrink__pass_phases(c, &t, out->err, sizeof out->err);
        changed |= shrink__pass_calls(c, &t, out->err, sizeof out->err);
        changed |= shrink__pass_times(c, &t, out->err, sizeof out->err);
    }
    free(t.items);
    return out->err[0] != '\0' ? -1 : 0;
}

/* Write the best candidate and run the written file once more: it must
 * fail the same invariant on its own. */
static int shrink__finish(shrink__ctx_t *c, shrink_result_t *out) {
    if (shrink__save(c, &c->best, c->o->out_path) != 0) {
        snprintf(out->err, sizeof out->err, "%s: cannot write: %s", c->o->out_path,
                 strerror(errno));
        return -1;
    }
    scenario_t *s = NULL;
    if (scenario_new(c->o->out_path, c->o->seed, &s, out->err, sizeof out->err) != 0) return -1;
    scn_result_free(c->r);
    const scn_run_opts_t ro = {.seed = c->o->seed, .variant = SCN_VARIANT_NONE};
    const int rc = scn_engine_run(s, &ro, c->r);
    scenario_free(s);
    if (rc != 0 || !c->r->judged || c->r->inv[c->inv].passed) {
        snprintf(out->err, sizeof out->err, "%s: the written scenario does not fail %s",
                 c->o->out_path, scn_invariant_name((unsigned)c->inv));
        return -1;
    }
    out->shrunk_hash = c->r->trace_hash;
    shrink__sizes(&c->best, c->r, &out->after);
    snprintf(out->command, sizeof out->command, "chaoslab run %s --seed %" PRIu64,
             c->o->out_path, c->o->seed);
    return 0;
}

static int shrink__main(shrink__ctx_t *c, shrink_result_t *out) {
    const shrink_opts_t *o = c->o;
    scenario_t *s = NULL, *d = NULL;
    if (scenario_new(o->path, o->seed, &s, out->err, sizeof out->err) != 0) return -1;
    c->s = s;
    int rc = -1;
    if (s->teach.present && o->variant == SCN_VARIANT_NONE) {
        snprintf(out->err, sizeof out->err, "%s is a teach file: give --variant weak|strong",
                 o->path);
        goto done;
    }
    if (!s->teach.present && o->variant != SCN_VARIANT_NONE) {
        snprintf(out->err, sizeof out->err, "%s has no teach{}: --variant does not apply",
                 o->path);
        goto done;
    }
    const scn_run_opts_t ro = {.seed = o->seed, .variant = o->variant};
    if (scn_engine_run(s, &ro, c->r) != 0) {
        snprintf(out->err, sizeof out->err, "%s", c->r->err);
        goto done;
    }
    out->trace_hash = c->r->trace_hash;
    if (!c->r->judged) {
        snprintf(out->err, sizeof out->err,
                 "seed %" PRIu64 " ends with verdict %s, not a failed invariant: nothing to "
                 "shrink", o->seed, report_verdict_name(c->r->verdict));
        rc = 1;
        goto done;
    }
    c->inv = shrink__target(o, s, c->r, out->err, sizeof out->err);
    if (c->inv < 0) {
        rc = 1;
        goto done;
    }
    out->invariant = c->inv;
    if (c->r->schedule.truncated) {
        snprintf(out->err, sizeof out->err, "the run's fault schedule is over %u steps or %u "
                 "calls: too long to shrink", SCN_SCHEDULE_STEPS_MAX, SCN_SCHEDULE_OPS_MAX);
        goto done;
    }
    broker_config_t cfg;
    if (scn_strategy_for(s, o->variant, NULL, &cfg, out->err, sizeof out->err) != 0) goto done;
    c->replicas = cfg.replicas;
    shrink__merge_strategy(s, o->variant, &c->strategy);
    c->ack_auto = scn_strategy_ack_auto(s, o->variant, NULL);
    c->best.w = s->workload;
    c->best.phases = s->phases;
    c->best.replicas = c->replicas;
    if (shrink__from_schedule(c, &c->r->schedule, &c->best) < 0) {
        snprintf(out->err, sizeof out->err, "the run's fault schedule is over %u items",
                 SHRINK_ITEMS_MAX);
        goto done;
    }
    shrink__sizes(&c->best, c->r, &out->before);
    if (shrink__defaults(c, &d, out->err, sizeof out->err) != 0) goto done;
    c->defaults = d;
    rc = shrink__search(c, out);
    out->budget_hit = c->stop;
    if (rc == 0) rc = shrink__finish(c, out);
done:
    scenario_free(d);
    scenario_free(s);
    return rc;
}

int shrink_run(const shrink_opts_t *opts, shrink_result_t *out) {
    assert(opts != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    out->invariant = -1;
    if (shrink__check_opts(opts, out->err, sizeof out->err) != 0) return -1;
    shrink__ctx_t c = {.o = opts, .wall0_ns = shrink__wall_ns(), .inv = -1};
    const char *dir = getenv("TMPDIR");
    snprintf(c.tmp_path, sizeof c.tmp_path, "%.30s/chaoslab-shrink-XXXXXX.lua",
             dir != NULL && dir[0] != '\0' && strlen(dir) <= 30 ? dir : "/tmp");
    const int fd = mkstemps(c.tmp_path, 4);
    if (fd < 0) {
        snprintf(out->err, sizeof out->err, "%s: cannot create: %s", c.tmp_path, strerror(errno));
        return -1;
    }
    close(fd);
    c.r = calloc(1, sizeof *c.r);
    int rc = c.r == NULL ? -1 : shrink__main(&c, out);
    if (c.r == NULL) snprintf(out->err, sizeof out->err, "out of memory");
    out->trials = c.trials;
    out->kept = c.kept;
    out->wall_s = (double)(shrink__wall_ns() - c.wall0_ns) / SHRINK__NS;
    scn_result_free(c.r);
    free(c.r);
    free(c.best.items);
    unlink(c.tmp_path);
    return rc;
}
