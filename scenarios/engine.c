/* scenarios/engine.c — builds the simulated world of one scenario run, runs
 * its phases (chaos, heal, drain) and checks the invariants. */
#include "scenarios/engine.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>

#include "broker/invariant.h"
#include "broker/raft.h"
#include "broker/sm.h"
#include "scenarios/html.h"

#define ENGINE__NS 1e9

typedef struct engine__slot {
    scn_engine_t *e;
    uint32_t index;
} engine__slot_t;

/* Heap-allocated run context: the engine plus its action slots. */
typedef struct engine__run {
    scn_engine_t e;
    engine__slot_t slots[SCN_ACTIONS_MAX];
} engine__run_t;

static uint64_t engine__s_to_ns(double s) {
    assert(s >= 0);
    return (uint64_t)llround(s * ENGINE__NS);
}

static uint64_t engine__wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

int scn_engine_leader(const scn_engine_t *e) {
    assert(e != NULL && e->sim != NULL);
    if (e->opts != NULL && e->opts->test_leader_hook != NULL) e->opts->test_leader_hook(e);
    int best = -1;
    uint64_t best_term = 0;
    for (uint32_t i = 0; i < e->replicas; i++) {
        if (sim_host_state(e->sim, i) != SIM_HOST_UP) continue;
        const broker_node_t *n = sim_host_node(e->sim, i);
        if (n == NULL) continue;
        broker_node_info_t info;
        broker_node_info(n, &info);
        if (info.running && info.role == RAFT_LEADER && (best < 0 || info.term > best_term)) {
            best = (int)i;
            best_term = info.term;
        }
    }
    return best;
}

static int engine__leader_cb(void *arg) { return scn_engine_leader(arg); }

void scn_reproduce_format(const char *path, uint64_t seed, scn_variant_t variant,
                          const scn_strategy_t *overrides, const scn_budget_t *budget,
                          char *buf, size_t cap) {
    assert(path != NULL && buf != NULL && cap > 0);
    int used = snprintf(buf, cap, "chaoslab run %s --seed %" PRIu64, path, seed);
    if (variant != SCN_VARIANT_NONE && used > 0 && (size_t)used < cap)
        used += snprintf(buf + used, cap - (size_t)used, " --variant %s", scn_variant_name(variant));
    for (uint32_t i = 0; overrides != NULL && i < overrides->count; i++) {
        if (used < 0 || (size_t)used >= cap) break;
        used += snprintf(buf + used, cap - (size_t)used, " --set %s=%s", overrides->kv[i].key,
                         overrides->kv[i].value);
    }
    /* A budget the user chose is part of what reproduces a stall. */
    if (budget != NULL && budget->max_events != 0 && used > 0 && (size_t)used < cap)
        used += snprintf(buf + used, cap - (size_t)used, " --max-events %" PRIu64,
                         budget->max_events);
    if (budget != NULL && budget->max_wall_s > 0 && used > 0 && (size_t)used < cap)
        used += snprintf(buf + used, cap - (size_t)used, " --max-wall %g", budget->max_wall_s);
}

/* ---- budgets -------------------------------------------------------------- */

static double engine__total_s(const scenario_t *s) {
    return s->phases.chaos_s + s->phases.heal_s + s->phases.drain_s;
}

double scn_events_rate_budget(const scenario_t *s, uint32_t replicas) {
    assert(s != NULL);
    const scn_workload_t *w = &s->workload;
    const double hosts = (double)replicas + 1.0 + w->producers + w->consumers;
    const double offered = (double)w->producers * w->rate;
    return hosts * SCN_EVENTS_PER_HOST_S + offered * SCN_EVENTS_PER_MSG;
}

uint64_t scn_events_budget_default(const scenario_t *s, uint32_t replicas) {
    const double budget = (double)SCN_EVENTS_BUDGET_MIN +
                          engine__total_s(s) * scn_events_rate_budget(s, replicas);
    return budget >= (double)SCN_RUN_EVENTS_MAX ? SCN_RUN_EVENTS_MAX : (uint64_t)budget;
}

double scn_wall_budget_default(const scenario_t *s) {
    assert(s != NULL);
    const double w = SCN_WALL_BUDGET_MIN_S + engine__total_s(s) * SCN_WALL_PER_SIM_S;
    return w > SCN_WALL_BUDGET_S_MAX ? SCN_WALL_BUDGET_S_MAX : w;
}

int scn_budget_check(const scn_budget_t *b, char *err, size_t err_cap) {
    assert(b != NULL);
    if (b->max_events > SCN_RUN_EVENTS_MAX) {
        snprintf(err, err_cap, "max events must be 1..%" PRIu64, SCN_RUN_EVENTS_MAX);
        return -1;
    }
    if (!(b->max_wall_s >= 0) || b->max_wall_s > SCN_WALL_BUDGET_S_MAX) {
        snprintf(err, err_cap, "max wall must be above 0 and at most %.0f seconds",
                 SCN_WALL_BUDGET_S_MAX);
        return -1;
    }
    return 0;
}

/* ---- callbacks --------------------------------------------------------- */

/* Write one decoded event: to the trace file, and to message_out when it
 * touches the followed message. Only reads the world (the trace hash is
 * the same with or without it). */
static void engine__trace_event(scn_engine_t *e, trace_fmt_event_t *ev) {
    char line[TRACE_FMT_LINE_MAX];
    int touches = 0;
    const size_t n = trace_fmt_line(e->tfmt, ev, line, sizeof line, &touches);
    if (e->trace != NULL) fwrite(line, 1, n, e->trace);
    if (touches != 0 && e->message_out != NULL) {
        if (touches == 1) trace_fmt_focus_context(e->tfmt, e->message_out);
        fwrite(line, 1, n, e->message_out);
    }
}

static void engine__observer(void *arg, uint64_t time_ns, uint32_t host, const char *kind,
                             const char *detail) {
    scn_engine_t *e = arg;
    trace_fmt_event_t ev = {.time_ns = time_ns, .host = host, .kind = kind, .detail = detail};
    ev.bytes = sim_observed_bytes(e->sim, &ev.len);
    if (strcmp(kind, "trace") == 0 && host < e->replicas) {
        /* Role changes name their term: read it from the node (the io
         * trace detail itself is hashed, so it stays as it is). */
        const broker_node_t *n = sim_host_node(e->sim, host);
        if (n != NULL) {
            broker_node_info_t info;
            broker_node_info(n, &info);
            ev.term = info.term;
            ev.role_name = raft_role_name((raft_role_t)info.role);
        }
    }
    engine__trace_event(e, &ev);
}

static void engine__fault_recorded(void *arg, const faults_event_t *fe) {
    scn_engine_t *e = arg;
    char detail[FAULTS_DETAIL_MAX + 32];
    const bool note = strcmp(fe->kind, "log") == 0;
    if (note) snprintf(detail, sizeof detail, "%s", fe->detail);
    else snprintf(detail, sizeof detail, "%s%s%s", fe->kind, fe->detail[0] ? " " : "", fe->detail);
    trace_fmt_event_t ev = {.time_ns = fe->time_ns, .host = SIM_ANY, .kind = note ? "log" : "fault",
                            .detail = detail, .fault_target = fe->target};
    engine__trace_event(e, &ev);
}

/* ---- the fault schedule -------------------------------------------------- */

/* Only reads what happens (never the sim's state or streams), so recording
 * leaves the trace hash as it was. */
static void engine__step_begin(scn_engine_t *e, uint32_t source) {
    scn_schedule_t *sc = &e->schedule;
    e->step_open = false;
    if (sc->truncated) return;
    if (sc->steps_count == sc->steps_cap) {
        const uint32_t cap = sc->steps_cap == 0 ? 64 : sc->steps_cap * 2;
        scn_step_t *steps = cap <= SCN_SCHEDULE_STEPS_MAX
                                ? realloc(sc->steps, (size_t)cap * sizeof *steps) : NULL;
        if (steps == NULL) {
            sc->truncated = true;
            return;
        }
        sc->steps = steps;
        sc->steps_cap = cap;
    }
    sc->steps[sc->steps_count++] =
        (scn_step_t){sim_now_ns(e->sim), source, sc->ops_count, 0};
    e->step_open = true;
}

static void engine__nemesis_step(void *arg) { engine__step_begin(arg, SCN_STEP_NEMESIS); }

static void engine__op_recorded(void *arg, const faults_op_t *op) {
    scn_engine_t *e = arg;
    scn_schedule_t *sc = &e->schedule;
    if (!e->step_open || sc->truncated) return; /* the engine's own heal */
    if (sc->ops_count == sc->ops_cap) {
        const uint32_t cap = sc->ops_cap == 0 ? 64 : sc->ops_cap * 2;
        faults_op_t *ops = cap <= SCN_SCHEDULE_OPS_MAX
                               ? realloc(sc->ops, (size_t)cap * sizeof *ops) : NULL;
        if (ops == NULL) {
            sc->truncated = true;
            return;
        }
        sc->ops = ops;
        sc->ops_cap = cap;
    }
    sc->ops[sc->ops_count++] = *op;
    sc->steps[sc->steps_count - 1].ops_count++;
}

static void engine__action_cb(sim_t *sim, void *arg) {
    engine__slot_t *slot = arg;
    scn_engine_t *e = slot->e;
    engine__step_begin(e, slot->index);
    if (e->failed) return;
    const scn_action_t *a = &e->scn->actions[slot->index];
    e->actions_fired++;
    e->in_action = true;
    const int rc = scenario_call_action(e->scn, slot->index);
    e->in_action = false;
    e->step_open = false;
    if (e->tripped) {
        sim_stop(sim); /* the invariant handler raised a Lua error to get here */
        return;
    }
    if (rc != 0) {
        e->failed = true;
        snprintf(e->err, sizeof e->err, "%s", e->scn->err);
        sim_stop(sim);
        return;
    }
    if (a->every_s > 0) {
        const uint64_t next = sim_now_ns(sim) + engine__s_to_ns(a->every_s);
        if (next < e->chaos_end_ns) (void)sim_call_at(sim, next, engine__action_cb, slot);
    }
}

/* Producers and consumers start once the queues exist, so a slow election
 * (or an early fault) never makes the first publishes unroutable. */
static void engine__setup_poll(sim_t *sim, void *arg) {
    scn_engine_t *e = arg;
    assert(!e->clients_started);
    if (!workload_client_done(e->setup)) {
        const uint64_t next = sim_now_ns(sim) + SCN_DRAIN_POLL_NS;
        if (next < e->drain_end_ns) (void)sim_call_at(sim, next, engine__setup_poll, e);
        return;
    }
    e->clients_started = true;
    e->clients_started_ns = sim_now_ns(sim);
    for (uint32_t i = 0; i < e->producers_count; i++) (void)workload_client_attach(e->producers[i]);
    for (uint32_t i = 0; i < e->consumers_count; i++) (void)workload_client_attach(e->consumers[i]);
    if (e->probe != NULL) (void)workload_client_attach(e->probe);
}

/* Broker samples for leaderless time and the progress check: every
 * SCN_SAMPLE_INTERVAL_NS, one HISTORY_OP_REPLICA record per broker. */
static uint32_t engine__role(const scn_engine_t *e, uint32_t i, uint64_t *term,
                             uint64_t *commit) {
    *term = *commit = 0;
    const sim_host_state_t st = sim_host_state(e->sim, i);
    const broker_node_t *n = sim_host_node(e->sim, i);
    if (st == SIM_HOST_DOWN || n == NULL) return HISTORY_ROLE_DOWN;
    broker_node_info_t info;
    broker_node_info(n, &info);
    *term = info.term;
    *commit = info.commit_index;
    if (st == SIM_HOST_PAUSED) return HISTORY_ROLE_PAUSED;
    if (info.failed) return HISTORY_ROLE_FAILED;
    if (!info.running) return HISTORY_ROLE_RECOVERING;
    if (info.log_corrupt && info.role != RAFT_LEADER) return HISTORY_ROLE_CORRUPT;
    return info.role == RAFT_LEADER      ? HISTORY_ROLE_LEADER
           : info.role == RAFT_CANDIDATE ? HISTORY_ROLE_CANDIDATE
                                         : HISTORY_ROLE_FOLLOWER;
}

static void engine__sample(sim_t *sim, void *arg) {
    scn_engine_t *e = arg;
    for (uint32_t i = 0; i < e->replicas; i++) {
        history_record_t r = {.time_ns = sim_now_ns(sim), .node = i, .kind = HISTORY_INFO,
                              .op = HISTORY_OP_REPLICA, .queue = HISTORY_QUEUE_NONE};
        r.detail = (int32_t)engine__role(e, i, &r.sequence, &r.value);
        (void)history_append(e->history, &r); /* full: counted, the run errors */
    }
    const uint64_t next = sim_now_ns(sim) + SCN_SAMPLE_INTERVAL_NS;
    if (next < e->drain_end_ns) (void)sim_call_at(sim, next, engine__sample, e);
}

/* ---- building the world ---------------------------------------------------- */

static void engine__link_config(const scn_network_t *n, sim_link_config_t *lc) {
    sim_link_config_default(lc);
    lc->latency.kind = n->jitter_exponential ? SIM_DIST_EXPONENTIAL : SIM_DIST_UNIFORM;
    lc->latency.base_ns = (uint64_t)(n->latency_ms * 1e6);
    lc->latency.spread_ns = (uint64_t)(n->jitter_ms * 1e6);
    lc->loss = n->loss;
    lc->duplicate = n->duplicate;
    lc->reorder = n->reorder;
    lc->reorder_window_ns = (uint64_t)(n->reorder_window_ms * 1e6);
    lc->corrupt = n->corrupt;
}

static void engine__disk_config(const scn_disk_t *d, sim_disk_config_t *dc) {
    sim_disk_config_default(dc);
    dc->fsync_latency = (sim_dist_t){SIM_DIST_EXPONENTIAL, (uint64_t)(d->fsync_ms * 1e6),
                                     (uint64_t)(d->fsync_jitter_ms * 1e6)};
    dc->write_latency = (sim_dist_t){SIM_DIST_UNIFORM, (uint64_t)(d->write_us * 1e3),
                                     (uint64_t)(d->write_us * 500)};
    dc->crash_mode = d->crash;
    dc->crash_keep_probability = d->keep;
}

static int engine__fail(scn_engine_t *e, const char *what, int rc) {
    snprintf(e->err, sizeof e->err, "%.600s: %.200s failed (error %d)", e->scn->path, what, rc);
    return -1;
}

static int engine__clients(scn_engine_t *e) {
    const scn_workload_t *w = &e->scn->workload;
    char err[WORKLOAD_ERR_MAX];
    workload_env_t env = {.sim = e->sim, .history = e->history, .brokers_count = e->replicas};
    workload_setup_config_t sc;
    workload_setup_config_default(&sc);
    if (w->dead_letter[0] != '\0')
        sc.queues[sc.queues_count++] = (workload_queue_spec_t){w->dead_letter, true, 0, NULL};
    sc.queues[sc.queues_count++] =
        (workload_queue_spec_t){w->queue, true, w->delivery_limit,
                                w->dead_letter[0] != '\0' ? w->dead_letter : NULL};
    env.client_index = 0;
    if (workload_setup_new(&env, &sc, &e->setup, err, sizeof err) != 0) {
        snprintf(e->err, sizeof e->err, "%.600s: workload: %.200s", e->scn->path, err);
        return -1;
    }
    workload_producer_config_t pc;
    workload_producer_config_default(&pc);
    pc.queue = w->queue;
    pc.count = w->messages;
    pc.rate = w->poisson ? WORKLOAD_RATE_POISSON : WORKLOAD_RATE_CONSTANT;
    pc.interval_ns = (uint64_t)(1e9 / w->rate);
    if (pc.interval_ns == 0) pc.interval_ns = 1;
    pc.window = w->window;
    pc.timeout_ns = (uint64_t)(w->timeout_ms * 1e6);
    pc.retries = w->retries;
    pc.backoff_base_ns = (uint64_t)(w->backoff_ms * 1e6);
    if (pc.backoff_max_ns < pc.backoff_base_ns) pc.backoff_max_ns = pc.backoff_base_ns;
    pc.idempotent = w->producer_idempotent;
    pc.body_size_bytes = w->body_bytes;
    pc.persistent = w->persistent;
    pc.confirms = w->confirms;
    pc.stop_ns = e->heal_end_ns > 0 ? e->heal_end_ns : 1;
    for (uint32_t i = 0; i < w->producers; i++) {
        env.client_index = 1 + i;
        if (workload_producer_new(&env, &pc, &e->producers[i], err, sizeof err) != 0) {
            snprintf(e->err, sizeof e->err, "%.600s: workload.producers: %.200s", e->scn->path, err);
            return -1;
        }
        e->producers_count++;
    }
    if (w->probe) { /* after the consumers: their client indices stay put */
        pc.count = 0;
        pc.rate = WORKLOAD_RATE_CONSTANT;
        pc.interval_ns = (uint64_t)(1e9 / SCN_PROBE_RATE);
        pc.window = SCN_PROBE_WINDOW;
        pc.confirms = true; /* the probe measures confirms */
        pc.persistent = true;
        env.client_index = 1 + w->producers + w->consumers;
        if (workload_producer_new(&env, &pc, &e->probe, err, sizeof err) != 0) {
            snprintf(e->err, sizeof e->err, "%.600s: workload.probe: %.200s", e->scn->path, err);
            return -1;
        }
    }
    workload_consumer_config_t cc;
    workload_consumer_config_default(&cc);
    cc.queue = w->queue;
    cc.prefetch = w->prefetch;
    cc.ack_mode = e->ack_auto ? WIRE_ACK_AUTO : WIRE_ACK_MANUAL;
    cc.processing = (sim_dist_t){SIM_DIST_CONST, (uint64_t)(w->processing_ms * 1e6), 0};
    cc.crash_probability = w->crash_before_ack;
    cc.idempotent = w->consumer_idempotent;
    cc.nack_probability = w->nack_p, cc.nack_requeue = w->nack_requeue;
    cc.reject_probability = w->reject_p, cc.reject_requeue = w->reject_requeue;
    cc.poison_every = w->poison_every, cc.poison_requeue = w->poison_requeue;
    for (uint32_t i = 0; i < w->consumers; i++) {
        env.client_index = 1 + w->producers + i;
        if (workload_consumer_new(&env, &cc, &e->consumers[i], err, sizeof err) != 0) {
            snprintf(e->err, sizeof e->err, "%.600s: workload.consumers: %.200s", e->scn->path, err);
            return -1;
        }
        e->consumers_count++;
    }
    /* Consumers of the dead-letter queue: plain ones (no refusals, no
     * crashes), after the probe so every other client index stays put. */
    workload_consumer_config_t dc;
    workload_consumer_config_default(&dc);
    dc.queue = w->dead_letter;
    dc.prefetch = w->prefetch;
    for (uint32_t i = 0; i < w->dead_letter_consumers; i++) {
        env.client_index = 1 + w->producers + w->consumers + (w->probe ? 1 : 0) + i;
        if (workload_consumer_new(&env, &dc, &e->consumers[e->consumers_count], err,
                                  sizeof err) != 0) {
            snprintf(e->err, sizeof e->err, "%.600s: workload.dead_letter_consumers: %.200s",
                     e->scn->path, err);
            return -1;
        }
        e->consumers_count++;
    }
    const int rc = workload_client_attach(e->setup);
    return rc == 0 ? 0 : engine__fail(e, "starting the setup client", rc);
}

static int engine__build(engine__run_t *run, const broker_config_t *cfg, uint64_t seed,
                         uint64_t history_records_max) {
    scn_engine_t *e = &run->e;
    scenario_t *s = e->scn;
    e->replicas = cfg->replicas;
    e->chaos_end_ns = engine__s_to_ns(s->phases.chaos_s);
    e->heal_end_ns = e->chaos_end_ns + engine__s_to_ns(s->phases.heal_s);
    e->drain_end_ns = e->heal_end_ns + engine__s_to_ns(s->phases.drain_s);
    const sim_config_t sc = {.seed = seed,
                             .hosts_count = e->replicas + 1 + s->workload.producers +
                                            s->workload.consumers + (s->workload.probe ? 1 : 0) +
                                            s->workload.dead_letter_consumers};
    int rc = sim_new(&sc, &e->sim);
    if (rc != 0) return engine__fail(e, "creating the simulator", rc);
    rc = history_new(history_records_max, &e->history);
    if (rc != 0) return engine__fail(e, "creating the history", rc);
    sim_link_config_t lc;
    engine__link_config(&s->network, &lc);
    rc = sim_link_configure(e->sim, SIM_ANY, SIM_ANY, &lc);
    if (rc != 0) return engine__fail(e, "network{}", rc);
    sim_disk_config_t dc;
    engine__disk_config(&s->disk, &dc);
    for (uint32_t i = 0; i < e->replicas; i++) {
        rc = sim_disk_configure(sim_host_disk(e->sim, i), &dc);
        if (rc != 0) return engine__fail(e, "disk{}", rc);
    }
    e->timeline = calloc(FAULTS_TIMELINE_MAX, sizeof *e->timeline);
    if (e->timeline == NULL) return engine__fail(e, "allocating the fault timeline", IO_ENOMEM);
    rc = faults_init(&e->faults, e->sim, e->replicas, &lc, &dc, e->timeline, FAULTS_TIMELINE_MAX);
    if (rc != 0) return engine__fail(e, "faults_init", rc);
    faults_set_leader_fn(&e->faults, engine__leader_cb, e);
    faults_set_op_fn(&e->faults, engine__op_recorded, e);
    if (e->trace != NULL || e->message_out != NULL) {
        e->tfmt = trace_fmt_new(e->replicas, e->opts->trace_format);
        if (e->tfmt == NULL) return engine__fail(e, "allocating the trace decoder", IO_ENOMEM);
        trace_fmt_focus(e->tfmt, e->message_out != NULL ? e->opts->message_id : 0);
        sim_set_observer(e->sim, engine__observer, e);
        faults_set_record_fn(&e->faults, engine__fault_recorded, e);
    }
    for (uint32_t i = 0; i < e->replicas; i++) {
        e->cfg[i] = *cfg;
        e->cfg[i].id = i;
        rc = sim_host_set_program(e->sim, i, &broker_node_program, &e->cfg[i]);
        if (rc == 0) rc = sim_host_start(e->sim, i);
        if (rc != 0) return engine__fail(e, "starting a broker", rc);
    }
    if (engine__clients(e) != 0) return -1;
    rc = sim_call_at(e->sim, SCN_DRAIN_POLL_NS, engine__setup_poll, e);
    if (rc == 0) rc = sim_call_at(e->sim, 0, engine__sample, e);
    if (rc != 0) return engine__fail(e, "scheduling the workload", rc);
    for (uint32_t i = 0; i < s->actions_count; i++) {
        run->slots[i] = (engine__slot_t){e, i};
        rc = sim_call_at(e->sim, engine__s_to_ns(s->actions[i].at_s), engine__action_cb,
                         &run->slots[i]);
        if (rc != 0) return engine__fail(e, "scheduling an action", rc);
    }
    if (s->nemesis.enabled) {
        nemesis_config_t nc;
        nemesis_config_default(&nc);
        nc.kinds_mask = s->nemesis.kinds_mask;
        nc.swarm = s->nemesis.swarm;
        nc.start_ns = 0;
        nc.stop_ns = e->chaos_end_ns;
        nc.interval_mean_ns = engine__s_to_ns(s->nemesis.interval_s);
        nc.duration_mean_ns = engine__s_to_ns(s->nemesis.duration_s);
        rc = nemesis_start(&e->nemesis, &e->faults, &nc);
        if (rc != 0) return engine__fail(e, "nemesis{}", rc);
        nemesis_set_step_fn(&e->nemesis, engine__nemesis_step, e);
    }
    return 0;
}

static void engine__noop(sim_t *sim, void *arg) {
    (void)sim;
    (void)arg;
}

/* ---- always-on invariants ---------------------------------------------------- */

static void engine__stop_at_now(scn_engine_t *e) {
    e->stop_time_ns = sim_now_ns(e->sim);
    e->stop_events = sim_events_processed(e->sim);
    e->stop_hash = sim_trace_hash(e->sim);
}

/* broker/invariant.h handler for the run on this thread. It must not return:
 * inside a Lua action it raises a Lua error (a longjmp past the action's
 * pcall frame would leave the Lua state unusable), which ends the action;
 * anywhere else it jumps back to scn_engine_run's guard. */
static void engine__invariant_trip(void *ctx, const char *file, int line, const char *expr,
                                   const char *msg) {
    scn_engine_t *e = ctx;
    if (!e->tripped) {
        e->tripped = true;
        if (e->sim != NULL) engine__stop_at_now(e);
        snprintf(e->stop_text, sizeof e->stop_text, "%s:%d: %s (%s)", file, line, expr,
                 msg != NULL ? msg : "");
    }
    if (e->in_action && e->scn->L != NULL) {
        lua_pushstring(e->scn->L, e->stop_text);
        lua_error(e->scn->L);
    }
    longjmp(e->trip_jmp, 1);
}

/* broker_node_check (tables, log indexes, broker_sm_check) on every live
 * replica; the first failure ends the run with verdict `invariant`.
 * Returns 0 or -1. */
static int engine__sm_check_all(scn_engine_t *e) {
    const uint64_t wall0 = engine__wall_ns(); /* cost figure only */
    for (uint32_t i = 0; i < e->replicas; i++) {
        const broker_node_t *n = sim_host_node(e->sim, i);
        if (n == NULL) continue;
        e->sm_checks++;
        char why[96] = "";
        if (broker_node_check(n, why, sizeof why)) continue;
        e->sm_check_wall_ns += engine__wall_ns() - wall0;
        e->tripped = true;
        engine__stop_at_now(e);
        snprintf(e->stop_text, sizeof e->stop_text,
                 "%s:%d: broker_node_check(n%" PRIu32 "): %s (the replica failed its "
                 "whole-object check at %.3fs)",
                 __FILE__, __LINE__, i, why, (double)e->stop_time_ns / ENGINE__NS);
        return -1;
    }
    e->sm_check_wall_ns += engine__wall_ns() - wall0;
    return 0;
}

/* ---- stalls ---------------------------------------------------------------------- */

typedef struct engine__tally_key {
    const char *kind;   /* static string from the kernel */
    char sub[24];       /* trace events: their name */
    uint32_t host, from;
    uint64_t count;
} engine__tally_key_t;

typedef struct engine__tally {
    scn_engine_t *e;
    engine__tally_key_t keys[SCN_STALL_KEYS_MAX];
    uint32_t count;
    uint64_t other;     /* events past SCN_STALL_KEYS_MAX distinct keys */
} engine__tally_t;

static void engine__tally_observer(void *arg, uint64_t time_ns, uint32_t host, const char *kind,
                                   const char *detail) {
    engine__tally_t *t = arg;
    if (t->e->tfmt != NULL) engine__observer(t->e, time_ns, host, kind, detail);
    engine__tally_key_t k = {.kind = kind, .host = host, .from = SIM_ANY};
    if (detail != NULL && strncmp(kind, "msg", 3) == 0 && strncmp(detail, "from=", 5) == 0)
        k.from = (uint32_t)strtoul(detail + 5, NULL, 10);
    if (detail != NULL && strcmp(kind, "trace") == 0) {
        size_t n = strcspn(detail, " ");
        if (n >= sizeof k.sub) n = sizeof k.sub - 1;
        memcpy(k.sub, detail, n);
        k.sub[n] = '\0';
    }
    for (uint32_t i = 0; i < t->count; i++) {
        engine__tally_key_t *x = &t->keys[i];
        if (x->host == k.host && x->from == k.from && strcmp(x->kind, k.kind) == 0 &&
            strcmp(x->sub, k.sub) == 0) {
            x->count++;
            return;
        }
    }
    if (t->count == SCN_STALL_KEYS_MAX) {
        t->other++;
        return;
    }
    k.count = 1;
    t->keys[t->count++] = k;
}

static void engine__host_name(const scn_engine_t *e, uint32_t host, char *buf, size_t cap) {
    if (host == SIM_ANY) snprintf(buf, cap, "-");
    else if (host < e->replicas) snprintf(buf, cap, "n%" PRIu32, host);
    else snprintf(buf, cap, "c%" PRIu32, host - e->replicas);
}

static void engine__tally_label(const scn_engine_t *e, const engine__tally_key_t *k, char *buf,
                                size_t cap) {
    char to[16], from[16];
    engine__host_name(e, k->host, to, sizeof to);
    engine__host_name(e, k->from, from, sizeof from);
    if (k->from != SIM_ANY) snprintf(buf, cap, "%s %s->%s", k->kind, from, to);
    else if (k->sub[0] != '\0') snprintf(buf, cap, "%s %s %s", k->kind, to, k->sub);
    else snprintf(buf, cap, "%s %s", k->kind, to);
}

/* Most frequent first; equal counts by label, so the text is deterministic. */
static bool engine__tally_before(const scn_engine_t *e, const engine__tally_key_t *a,
                                 const engine__tally_key_t *b) {
    if (a->count != b->count) return a->count > b->count;
    char la[96], lb[96];
    engine__tally_label(e, a, la, sizeof la);
    engine__tally_label(e, b, lb, sizeof lb);
    return strcmp(la, lb) < 0;
}

/* The run is over budget: note where, then run SCN_STALL_WINDOW_EVENTS more
 * events (the run is lost anyway) with a tallying observer, so the verdict
 * can say what the world was busy with. */
static void engine__stall(scn_engine_t *e, uint64_t until_ns, const char *why) {
    e->stalled = true;
    engine__stop_at_now(e);
    engine__tally_t *t = calloc(1, sizeof *t);
    size_t used = (size_t)snprintf(e->stop_text, sizeof e->stop_text,
                                   "%s at sim %.3fs after %" PRIu64 " events", why,
                                   (double)e->stop_time_ns / ENGINE__NS, e->stop_events);
    if (t == NULL) return;
    t->e = e;
    sim_set_observer(e->sim, engine__tally_observer, t);
    /* A storm of large messages runs ~15k events per wall second: the wall
     * bound keeps the window from adding more than a moment to a stall. It
     * only shortens the diagnostic; the run's figures were taken above. */
    const uint64_t wall0 = engine__wall_ns();
    while (sim_events_processed(e->sim) - e->stop_events < SCN_STALL_WINDOW_EVENTS &&
           engine__wall_ns() - wall0 < SCN_STALL_WINDOW_WALL_NS) {
        const uint64_t left = SCN_STALL_WINDOW_EVENTS -
                              (sim_events_processed(e->sim) - e->stop_events);
        const sim_run_result_t r =
            sim_run(e->sim, until_ns, left < SCN_BUDGET_SLICE_EVENTS ? left
                                                                     : SCN_BUDGET_SLICE_EVENTS);
        if (r != SIM_RUN_EVENT_LIMIT) break; /* idle, phase end or stopped */
    }
    sim_set_observer(e->sim, e->tfmt != NULL ? engine__observer : NULL, e);
    used += (size_t)snprintf(e->stop_text + used, sizeof e->stop_text - used,
                             "\nmost frequent event kinds in the next %" PRIu64
                             " events (to sim %.3fs):",
                             sim_events_processed(e->sim) - e->stop_events,
                             (double)sim_now_ns(e->sim) / ENGINE__NS);
    for (uint32_t shown = 0; shown < SCN_STALL_KINDS_MAX && shown < t->count; shown++) {
        uint32_t best = shown;
        for (uint32_t i = shown + 1; i < t->count; i++)
            if (engine__tally_before(e, &t->keys[i], &t->keys[best])) best = i;
        const engine__tally_key_t tmp = t->keys[shown];
        t->keys[shown] = t->keys[best];
        t->keys[best] = tmp;
        char label[96];
        engine__tally_label(e, &t->keys[shown], label, sizeof label);
        if (used < sizeof e->stop_text)
            used += (size_t)snprintf(e->stop_text + used, sizeof e->stop_text - used,
                                     "\n  %9" PRIu64 "  %s", t->keys[shown].count, label);
    }
    if (t->other > 0 && used < sizeof e->stop_text)
        snprintf(e->stop_text + used, sizeof e->stop_text - used,
                 "\n  %9" PRIu64 "  (kinds past the first %u)", t->other, SCN_STALL_KEYS_MAX);
    free(t);
}

/* ---- running ------------------------------------------------------------------ */

/* The per-window side of the event budget (SCN_STORM_WINDOW_EVENTS). Checked
 * at slice ends, which depend only on the simulation, so a storm stalls at
 * the same event on every machine. Returns true when the run stalled. */
static bool engine__storm(scn_engine_t *e, uint64_t until_ns) {
    const uint64_t events = sim_events_processed(e->sim);
    if (events - e->window_events < SCN_STORM_WINDOW_EVENTS) return false;
    const uint64_t span_ns = sim_now_ns(e->sim) - e->window_ns;
    if (span_ns >= e->storm_span_min_ns) {
        e->window_events = events;
        e->window_ns = sim_now_ns(e->sim);
        return false;
    }
    char why[200];
    snprintf(why, sizeof why,
             "an event storm: %" PRIu64 " events in %.3f ms of virtual time (the budget "
             "allows %u events in no less than %.3f ms)",
             events - e->window_events, (double)span_ns / 1e6, SCN_STORM_WINDOW_EVENTS,
             (double)e->storm_span_min_ns / 1e6);
    engine__stall(e, until_ns, why);
    return true;
}

/* Run to `until_ns` in slices: between slices the wall clock is read and,
 * every SCN_SM_CHECK_INTERVAL_NS of virtual time, each replica's state
 * machine is checked. Slicing never changes the trace: sim_run resumes
 * exactly where it stopped. Returns -1 when the run must end (an action
 * failed, a budget ran out, an invariant tripped). */
static int engine__run_until(scn_engine_t *e, uint64_t until_ns) {
    while (!e->failed && !e->stalled && !e->tripped && sim_now_ns(e->sim) < until_ns) {
        const uint64_t before = sim_events_processed(e->sim);
        if (before >= e->events_budget) {
            char why[160];
            snprintf(why, sizeof why, "the event budget (%" PRIu64 " events) ran out",
                     e->events_budget);
            engine__stall(e, until_ns, why);
            break;
        }
        uint64_t slice = e->events_budget - before;
        if (slice > SCN_BUDGET_SLICE_EVENTS) slice = SCN_BUDGET_SLICE_EVENTS;
        const uint64_t to = until_ns < e->next_sm_check_ns ? until_ns : e->next_sm_check_ns;
        const sim_run_result_t r = sim_run(e->sim, to, slice);
        if (r == SIM_RUN_IDLE && sim_events_processed(e->sim) == before) {
            /* Nothing left to happen: move the clock with an empty call. */
            if (sim_call_at(e->sim, to, engine__noop, NULL) != 0) break;
        }
        if (sim_now_ns(e->sim) >= e->next_sm_check_ns) {
            if (engine__sm_check_all(e) != 0) break;
            e->next_sm_check_ns += SCN_SM_CHECK_INTERVAL_NS;
        }
        if (engine__storm(e, until_ns)) break;
        if (engine__wall_ns() - e->wall_start_ns > e->wall_budget_ns) {
            char why[160];
            snprintf(why, sizeof why, "the wall-clock budget (%.1fs) ran out",
                     (double)e->wall_budget_ns / ENGINE__NS);
            engine__stall(e, until_ns, why);
        }
    }
    return e->failed || e->stalled || e->tripped ? -1 : 0;
}

/* Every up, working broker runs and has the leader's commit index: the
 * progress check's "caught up", so the drain does not end before it shows. */
static bool engine__caught_up(const scn_engine_t *e) {
    const int leader = scn_engine_leader(e);
    if (leader < 0) return false;
    uint64_t term = 0, target = 0, commit = 0;
    (void)engine__role(e, (uint32_t)leader, &term, &target);
    for (uint32_t i = 0; i < e->replicas; i++) {
        const uint32_t role = engine__role(e, i, &term, &commit);
        if (role == HISTORY_ROLE_DOWN || role == HISTORY_ROLE_PAUSED || role == HISTORY_ROLE_FAILED)
            continue;
        if (role == HISTORY_ROLE_RECOVERING || commit < target) return false;
    }
    return true;
}

/* Drained: every producer finished and every running broker holds an empty
 * queue. Reading depths (not broker_node_info, which digests the whole
 * state) keeps the 50 ms poll cheap with a deep backlog. */
static bool engine__drained(const scn_engine_t *e) {
    if (!e->clients_started) return false;
    for (uint32_t i = 0; i < e->producers_count; i++)
        if (!workload_client_done(e->producers[i])) return false;
    if (e->probe != NULL && !workload_client_done(e->probe)) return false;
    uint32_t up = 0;
    for (uint32_t i = 0; i < e->replicas; i++) {
        if (sim_host_state(e->sim, i) != SIM_HOST_UP) continue;
        const broker_node_t *n = sim_host_node(e->sim, i);
        if (n == NULL) continue;
        if (broker_node_queue_depth(n, e->scn->workload.queue) != 0) return false;
        up++;
    }
    return up > 0 && engine__caught_up(e);
}

static int engine__phases(scn_engine_t *e) {
    if (engine__run_until(e, e->chaos_end_ns) != 0) return -1;
    /* Heal: the nemesis stopped itself at chaos end; clear whatever is left.
     * The engine's heal is not a step of the schedule (a replay heals too). */
    e->step_open = false;
    const int rc = faults_heal_all(&e->faults);
    if (rc != 0) return engine__fail(e, "faults_heal_all", rc);
    if (engine__run_until(e, e->heal_end_ns) != 0) return -1;
    while (sim_now_ns(e->sim) < e->drain_end_ns) {
        uint64_t next = sim_now_ns(e->sim) + SCN_DRAIN_POLL_NS;
        if (next > e->drain_end_ns) next = e->drain_end_ns;
        if (engine__run_until(e, next) != 0) return -1;
        if (engine__drained(e)) break;
    }
    return 0;
}

/* ---- checking ------------------------------------------------------------------ */

typedef struct engine__ids {
    uint64_t *ids;
    uint32_t count, cap;
} engine__ids_t;

static void engine__collect(void *arg, uint64_t id) {
    engine__ids_t *v = arg;
    if (v->count >= CHECK_FINAL_IDS_MAX) return;
    if (v->count == v->cap) {
        const uint32_t cap = v->cap == 0 ? 256 : v->cap * 2;
        uint64_t *ids = realloc(v->ids, (size_t)cap * sizeof *ids);
        if (ids == NULL) return;
        v->ids = ids;
        v->cap = cap;
    }
    v->ids[v->count++] = id;
}

/* The node whose state the final queue contents are read from: the leader,
 * else the running node that applied the most. */
static int engine__final_node(const scn_engine_t *e) {
    int best = scn_engine_leader(e);
    if (best >= 0) return best;
    uint64_t most = 0;
    for (uint32_t i = 0; i < e->replicas; i++) {
        const broker_node_t *n = sim_host_node(e->sim, i);
        if (n == NULL) continue;
        broker_node_info_t info;
        broker_node_info(n, &info);
        if (best < 0 || info.applied_index > most) {
            best = (int)i;
            most = info.applied_index;
        }
    }
    return best;
}

static void engine__figures(const check_result_t *c, char *buf, size_t cap) {
    assert(buf != NULL && cap > 0);
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < c->figures_count && used < cap; i++) {
        const double v = c->figures[i].value;
        const int n = floor(v) == v && fabs(v) < 1e15
                          ? snprintf(buf + used, cap - used, "%s%s=%.0f", used ? " " : "",
                                     c->figures[i].name, v)
                          : snprintf(buf + used, cap - used, "%s%s=%.4g", used ? " " : "",
                                     c->figures[i].name, v);
        if (n < 0) break;
        used += (size_t)n;
    }
}

/* Whether each invariant held, from the checkers' results and the file's
 * bounds (progress: always; the checker holds its bound). */
static void engine__passed(const scn_expect_t *x, const scn_result_t *out,
                           bool passed[SCN_INV_COUNT]) {
    const check_result_t *av = &out->checks[CHECK_AVAILABILITY];
    const check_result_t *ca = &out->checks[CHECK_CONSUMER_AVAILABILITY];
    const check_result_t *ll = &out->checks[CHECK_LEADERLESS];
    const double heal_ns = check_figure(av, "heal_to_ok_ns");
    const bool confirm_needed = check_figure(&out->checks[CHECK_PROGRESS], "confirm_needed") > 0;
    passed[SCN_INV_NO_LOSS] = out->checks[CHECK_NO_LOSS].passed;
    passed[SCN_INV_NO_DUPLICATES] = out->checks[CHECK_NO_DUPLICATES].passed;
    passed[SCN_INV_NO_PHANTOMS] = out->checks[CHECK_NO_PHANTOMS].passed;
    passed[SCN_INV_ORDERING] = out->checks[CHECK_ORDERING].passed;
    passed[SCN_INV_REPLICA_AGREEMENT] = out->checks[CHECK_REPLICA_AGREEMENT].passed;
    passed[SCN_INV_AVAILABILITY] =
        !x->has_availability || check_figure(av, "availability") >= x->availability;
    /* never recovered is never "held", expected or not */
    passed[SCN_INV_RECOVERY] = heal_ns < 0 ? !confirm_needed
                                           : !x->has_recovery || heal_ns <= x->recovery_s * 1e9;
    passed[SCN_INV_MAX_UNAVAILABLE] =
        !x->has_max_unavailable || check_figure(av, "longest_gap_ns") <= x->max_unavailable_s * 1e9;
    passed[SCN_INV_ATTEMPT_SUCCESS] =
        !x->has_attempt_success || check_figure(av, "attempt_success") >= x->attempt_success;
    passed[SCN_INV_CONSUMER_AVAILABILITY] =
        !x->has_consumer_availability ||
        check_figure(ca, "consumer_availability") >= x->consumer_availability;
    const double ll_ns = check_figure(ll, "leaderless_ns"), ll_max = check_figure(ll, "leaderless_max_ns");
    passed[SCN_INV_LEADERLESS] =
        (!x->has_leaderless || (ll_ns >= 0 && ll_ns <= x->leaderless_s * 1e9)) &&
        (!x->has_leaderless_max || (ll_max >= 0 && ll_max <= x->leaderless_max_s * 1e9));
    passed[SCN_INV_PROGRESS] = out->checks[CHECK_PROGRESS].passed;
    passed[SCN_INV_DRAINED] = out->checks[CHECK_DRAINED].passed;
    const check_result_t *lat = &out->checks[CHECK_LATENCY];
    passed[SCN_INV_LATENCY] = !x->has_latency_p99 ||
                              (check_figure(lat, "confirm_samples") > 0 &&
                               check_figure(lat, "confirm_p99_ns") <= x->latency_p99_ms * 1e6);
    passed[SCN_INV_DUPLICATE_ENQUEUES] =
        !x->has_duplicate_enqueues ||
        check_figure(&out->checks[CHECK_NO_DUPLICATES], "duplicate_enqueues") <=
            (double)x->duplicate_enqueues;
}

static double engine__s(double ns) { return ns < 0 ? -1.0 : ns / 1e9; }

/* The figures shown next to invariant `i`. */
static void engine__inv_figures(unsigned i, const scn_result_t *out, char *buf, size_t cap) {
    const check_result_t *av = &out->checks[CHECK_AVAILABILITY];
    const check_result_t *ll = &out->checks[CHECK_LEADERLESS];
    const check_result_t *pg = &out->checks[CHECK_PROGRESS];
    const double heal_ns = check_figure(av, "heal_to_ok_ns");
    static const int check_of[SCN_INV_COUNT] = {
        CHECK_NO_LOSS, CHECK_NO_DUPLICATES, CHECK_NO_PHANTOMS, CHECK_ORDERING,
        CHECK_REPLICA_AGREEMENT, -1, -1, -1, -1, -1, -1, -1, CHECK_DRAINED, -1, -1};
    switch (i) {
    case SCN_INV_AVAILABILITY:
        snprintf(buf, cap, "availability=%.4f windows=%.0f available=%.0f unavailable=%.0f "
                 "idle=%.0f", check_figure(av, "availability"), check_figure(av, "windows"),
                 check_figure(av, "available_windows"), check_figure(av, "unavailable_windows"),
                 check_figure(av, "idle_windows"));
        return;
    case SCN_INV_RECOVERY:
        if (heal_ns >= 0) snprintf(buf, cap, "heal_to_ok=%.3fs", heal_ns / 1e9);
        else if (check_figure(pg, "confirm_needed") > 0) snprintf(buf, cap, "heal_to_ok=never");
        else snprintf(buf, cap, "heal_to_ok=n/a (no publish pending after heal)");
        return;
    case SCN_INV_MAX_UNAVAILABLE:
        snprintf(buf, cap, "longest_gap=%.3fs", check_figure(av, "longest_gap_ns") / 1e9);
        return;
    case SCN_INV_CONSUMER_AVAILABILITY: {
        const check_result_t *ca = &out->checks[CHECK_CONSUMER_AVAILABILITY];
        snprintf(buf, cap, "consumer_availability=%.4f windows=%.0f available=%.0f "
                 "unavailable=%.0f idle=%.0f", check_figure(ca, "consumer_availability"),
                 check_figure(ca, "windows"), check_figure(ca, "available_windows"),
                 check_figure(ca, "unavailable_windows"), check_figure(ca, "idle_windows"));
        return;
    }
    case SCN_INV_ATTEMPT_SUCCESS:
        snprintf(buf, cap, "attempt_success=%.4f attempts=%.0f confirmed_in_time=%.0f",
                 check_figure(av, "attempt_success"), check_figure(av, "attempts"),
                 check_figure(av, "confirmed_in_time"));
        return;
    case SCN_INV_LEADERLESS:
        snprintf(buf, cap, "leaderless=%.3fs max=%.3fs share=%.4f leader_changes=%.0f",
                 engine__s(check_figure(ll, "leaderless_ns")),
                 engine__s(check_figure(ll, "leaderless_max_ns")),
                 check_figure(ll, "leaderless_share"), check_figure(ll, "leader_changes"));
        return;
    case SCN_INV_LATENCY: {
        const check_result_t *lat = &out->checks[CHECK_LATENCY];
        snprintf(buf, cap, "confirm_p50=%.2fms confirm_p99=%.2fms confirm_max=%.2fms samples=%.0f",
                 check_figure(lat, "confirm_p50_ns") / 1e6, check_figure(lat, "confirm_p99_ns") / 1e6,
                 check_figure(lat, "confirm_max_ns") / 1e6, check_figure(lat, "confirm_samples"));
        return;
    }
    case SCN_INV_DUPLICATE_ENQUEUES:
        snprintf(buf, cap, "duplicate_enqueues=%.0f",
                 check_figure(&out->checks[CHECK_NO_DUPLICATES], "duplicate_enqueues"));
        return;
    case SCN_INV_PROGRESS:
        if (check_figure(pg, "beyond_fault_model") > 0) {
            snprintf(buf, cap, "not judged: storage damaged on %.0f brokers, a majority "
                     "(beyond the fault model)", check_figure(pg, "damaged_replicas"));
            return;
        }
        snprintf(buf, cap, "bound=%.3fs leader=%.3fs caught_up=%.3fs confirm=%.3fs "
                 "target_commit=%.0f live=%.0f lagging=%.0f failed=%.0f (-1 = never)",
                 engine__s(check_figure(pg, "bound_ns")),
                 engine__s(check_figure(pg, "heal_to_leader_ns")),
                 engine__s(check_figure(pg, "heal_to_caught_up_ns")),
                 engine__s(check_figure(pg, "heal_to_ok_ns")), check_figure(pg, "target_commit"),
                 check_figure(pg, "live_replicas"), check_figure(pg, "lagging"),
                 check_figure(pg, "failed_replicas"));
        return;
    default:
        assert(i < SCN_INV_COUNT && check_of[i] >= 0);
        engine__figures(&out->checks[check_of[i]], buf, cap);
        return;
    }
}

static void engine__verdict(const scenario_t *s, scn_variant_t variant, scn_result_t *out) {
    const scn_expect_t *x = &s->expect;
    bool passed[SCN_INV_COUNT];
    engine__passed(x, out, passed);
    const bool enforced[SCN_INV_COUNT] = {
        x->no_loss, x->no_duplicates, x->no_phantoms, x->ordering, x->replica_agreement,
        x->has_availability, x->has_recovery, x->has_max_unavailable, x->has_attempt_success,
        x->has_consumer_availability, x->has_leaderless || x->has_leaderless_max,
        true /* progress: never recovering fails every run */, x->drained,
        x->has_latency_p99, x->has_duplicate_enqueues};
    const int lesson = s->teach.present ? scn_invariant_parse(s->teach.violation) : -1;
    out->verdict = REPORT_VERDICT_PASS;
    for (unsigned i = 0; i < SCN_INV_COUNT; i++) {
        scn_invariant_t *inv = &out->inv[i];
        inv->passed = passed[i];
        inv->enforced = enforced[i];
        inv->expected = REPORT_EXPECT_PASS;
        if (variant == SCN_VARIANT_WEAK) {
            /* The weak side is judged only on showing the named violation
             * (and, as every run, on recovering after heal). */
            inv->enforced = (int)i == lesson || i == SCN_INV_PROGRESS;
            if ((int)i == lesson) inv->expected = REPORT_EXPECT_VIOLATION;
        } else if (variant == SCN_VARIANT_STRONG && (int)i == lesson) {
            inv->enforced = true;
        }
        inv->as_expected = !inv->enforced ||
                           (inv->expected == REPORT_EXPECT_PASS ? inv->passed : !inv->passed);
        engine__inv_figures(i, out, inv->figures, sizeof inv->figures);
        if (!inv->as_expected) out->verdict = REPORT_VERDICT_FAIL;
    }
    out->exit_code = out->verdict == REPORT_VERDICT_PASS ? 0 : 1;
}

#define ENGINE_TIMELINE_IDS_MAX 3u    /* messages shown per violated invariant */
#define ENGINE_TIMELINE_LINES_MAX 16u /* history lines shown per message */

/* The history of the first violating message ids of each message-level
 * invariant: what a reader needs to see why it broke. Owned by the caller;
 * NULL when nothing was violated or on allocation failure. */
static char *engine__violation_timelines(const scn_engine_t *e, const check_result_t *checks,
                                         const char *reproduce) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (f == NULL) return NULL;
    bool any = false;
    const scn_expect_t *x = &e->scn->expect;
    const bool enforced[4] = {x->no_loss, x->no_duplicates, x->no_phantoms, x->ordering};
    for (unsigned k = 0; k < 4; k++) { /* no_loss, no_duplicates, no_phantoms, ordering */
        const check_result_t *c = &checks[k];
        if (!enforced[k] && !e->scn->teach.present) continue;
        for (uint32_t v = 0; v < c->violations_count && v < ENGINE_TIMELINE_IDS_MAX; v++) {
            const check_violation_t *viol = &c->violations[v];
            if (viol->message_id == 0) continue;
            any = true;
            fprintf(f, "  %s: message 0x%" PRIx64 " at %.3fs: %s\n", c->name, viol->message_id,
                    (double)viol->time_ns / 1e9, viol->detail);
            uint32_t lines = 0;
            for (uint64_t i = 0; i < history_count(e->history); i++) {
                const history_record_t *r = history_get(e->history, i);
                if (r->message_id != viol->message_id) continue;
                if (lines++ >= ENGINE_TIMELINE_LINES_MAX) {
                    fprintf(f, "      ...\n");
                    break;
                }
                char line[256];
                history_format(e->history, r, line, sizeof line);
                fprintf(f, "      %s\n", line);
            }
            /* The whole life, on every node and client, is one command away. */
            fprintf(f, "      its whole life: %s --message %#" PRIx64 "\n", reproduce,
                    viol->message_id);
        }
    }
    fclose(f);
    if (!any) {
        free(text);
        return NULL;
    }
    return text;
}

/* The run is over: every publish still in flight becomes unknown (at end),
 * so every publish has an outcome before the checkers count them. */
static void engine__settle(scn_engine_t *e) {
    for (uint32_t i = 0; i < e->producers_count; i++) workload_client_settle(e->producers[i]);
    for (uint32_t i = 0; i < e->consumers_count; i++) workload_client_settle(e->consumers[i]);
    workload_client_settle(e->probe);
    e->settled = true;
}

/* The progress bound: the file's (or the default), no later than the run's end. */
static uint64_t engine__progress_bound_ns(const scenario_t *s) {
    const double left_s = s->phases.heal_s + s->phases.drain_s;
    const double bound_s = s->expect.progress_s < left_s ? s->expect.progress_s : left_s;
    return engine__s_to_ns(bound_s);
}

static int engine__check(scn_engine_t *e, scn_result_t *out) {
    const scenario_t *s = e->scn;
    engine__settle(e);
    engine__ids_t main_ids = {0}, dead_ids = {0};
    check_replica_final_t replicas[BROKER_REPLICAS_MAX];
    uint32_t replicas_count = 0;
    const int fin = engine__final_node(e);
    if (fin >= 0) {
        const broker_node_t *n = sim_host_node(e->sim, (uint32_t)fin);
        (void)broker_node_queue_visit(n, s->workload.queue, engine__collect, &main_ids);
        if (s->workload.dead_letter[0] != '\0')
            (void)broker_node_queue_visit(n, s->workload.dead_letter, engine__collect, &dead_ids);
    }
    for (uint32_t i = 0; i < e->replicas; i++) {
        const broker_node_t *n = sim_host_node(e->sim, i);
        if (n == NULL) continue;
        broker_node_info_t info;
        broker_node_info(n, &info);
        if (!info.running) continue;
        replicas[replicas_count++] =
            (check_replica_final_t){i, info.applied_index, broker_node_state_digest(n)};
    }
    const check_queue_final_t q = {s->workload.queue, main_ids.ids, main_ids.count, dead_ids.ids,
                                   dead_ids.count};
    check_input_t in = {
        .history = e->history, .queues = &q, .queues_count = 1,
        .replicas = replicas, .replicas_count = replicas_count,
        .chaos_start_ns = e->clients_started ? e->clients_started_ns : 0,
        .chaos_end_ns = e->chaos_end_ns, .heal_ns = e->chaos_end_ns,
        .timeout_ns = (uint64_t)(s->workload.timeout_ms * 1e6),
        .availability_min = s->expect.has_availability ? s->expect.availability : 0,
        .max_gap_ns = s->expect.has_max_unavailable
                          ? engine__s_to_ns(s->expect.max_unavailable_s) + 1 : 0,
        .attempt_success_min = s->expect.has_attempt_success ? s->expect.attempt_success : 0,
        .consumer_availability_min =
            s->expect.has_consumer_availability ? s->expect.consumer_availability : 0,
        .leaderless_total_ns = s->expect.has_leaderless
                                   ? engine__s_to_ns(s->expect.leaderless_s) + 1 : 0,
        .leaderless_max_ns = s->expect.has_leaderless_max
                                 ? engine__s_to_ns(s->expect.leaderless_max_s) + 1 : 0,
        .progress_bound_ns = engine__progress_bound_ns(s),
    };
    if (in.chaos_start_ns > in.chaos_end_ns) in.chaos_start_ns = in.chaos_end_ns;
    int rc = check_all(&in, out->checks);
    if (rc == 0) out->violations_text = engine__violation_timelines(e, out->checks, out->reproduce);
    const uint64_t end_ns = sim_now_ns(e->sim);
    const uint64_t buckets = end_ns / SCN_SERIES_INTERVAL_NS + 1;
    check_interval_t *iv = rc == 0 ? calloc(buckets, sizeof *iv) : NULL;
    if (iv != NULL) {
        const int64_t n = check_time_series(&in, SCN_SERIES_INTERVAL_NS, end_ns, iv, buckets);
        out->series = n > 0 ? calloc((size_t)n, sizeof *out->series) : NULL;
        for (int64_t i = 0; out->series != NULL && i < n; i++)
            out->series[i] = (report_sample_t){iv[i].start_ns, SCN_SERIES_INTERVAL_NS,
                                               iv[i].published, iv[i].confirmed, iv[i].consumed,
                                               iv[i].failed, iv[i].availability};
        out->series_count = out->series != NULL ? (size_t)n : 0;
        free(iv);
    }
    free(main_ids.ids);
    free(dead_ids.ids);
    if (rc != 0) {
        snprintf(e->err, sizeof e->err, "%.600s: the checkers failed (error %d)", s->path, rc);
        return -1;
    }
    return 0;
}

static void engine__count_producer(const workload_client_t *c, scn_result_t *out) {
    workload_stats_t st;
    workload_client_stats(c, &st);
    out->published += st.published;
    out->confirmed += st.confirmed;
    out->nacked += st.publish_nacked;
    out->failed += st.failed;
    out->unknown += st.unknown;
    out->unknown_at_end += st.unknown_at_end;
}

static void engine__counts(const scn_engine_t *e, scn_result_t *out) {
    workload_stats_t st;
    for (uint32_t i = 0; i < e->producers_count; i++) engine__count_producer(e->producers[i], out);
    if (e->probe != NULL) {
        const uint64_t before = out->published;
        engine__count_producer(e->probe, out);
        out->probe_published = out->published - before;
    }
    /* Settled, every publish ended exactly one way. */
    BROKER_INVARIANT(!e->settled || out->published == out->confirmed + out->nacked + out->failed +
                                                          out->unknown,
                     "engine: publishes do not add up to their outcomes");
    for (uint32_t i = 0; i < e->consumers_count; i++) {
        workload_client_stats(e->consumers[i], &st);
        out->processed += st.processed;
    }
}

static void engine__free(engine__run_t *run) {
    scn_engine_t *e = &run->e;
    sim_free(e->sim); /* halting clients records into the history: free it after */
    workload_client_free(e->setup);
    for (uint32_t i = 0; i < e->producers_count; i++) workload_client_free(e->producers[i]);
    for (uint32_t i = 0; i < e->consumers_count; i++) workload_client_free(e->consumers[i]);
    workload_client_free(e->probe);
    history_free(e->history);
    free(e->timeline);
    free(e->schedule.steps);
    free(e->schedule.ops);
    trace_fmt_free(e->tfmt);
    free(run);
}

static void engine__test_hook(sim_t *sim, void *arg) {
    (void)sim;
    scn_engine_t *e = arg;
    e->opts->test_hook(e, e->opts->test_hook_arg);
}

/* Build and run the phases under the invariant handler. Returns 0 when the
 * run reached its end or a verdict (stalled, invariant), -1 on an error.
 * Nothing here keeps state in locals across the setjmp. */
static int engine__guarded(engine__run_t *run, const broker_config_t *cfg,
                           const scn_run_opts_t *opts, scn_result_t *out) {
    scn_engine_t *e = &run->e;
    broker_invariant_set_handler(engine__invariant_trip, e);
    if (setjmp(e->trip_jmp) != 0) {
        /* A BROKER_INVARIANT tripped inside the world: it is only fit to be
         * freed now. */
        broker_invariant_set_handler(NULL, NULL);
        e->scn->engine = NULL;
        e->in_action = false;
        if (e->sim != NULL) sim_run_abandon(e->sim);
        return 0;
    }
    int rc = engine__build(run, cfg, opts->seed, opts->history_records_max);
    if (rc == 0 && e->scn->nemesis.enabled)
        nemesis_describe(&e->nemesis, out->nemesis, sizeof out->nemesis);
    if (rc == 0 && opts->test_hook != NULL)
        rc = sim_call_at(e->sim, opts->test_hook_at_ns, engine__test_hook, e) == 0 ? 0 : -1;
    if (rc == 0) {
        e->scn->engine = e;
        rc = engine__phases(e);
        e->scn->engine = NULL;
    }
    if (rc == 0) (void)engine__sm_check_all(e); /* and once at the end */
    broker_invariant_set_handler(NULL, NULL);
    return e->stalled || e->tripped ? 0 : rc;
}

static void engine__budgets(scn_engine_t *e, const scn_run_opts_t *opts, uint32_t replicas,
                            scn_result_t *out) {
    e->events_budget = opts->budget.max_events != 0
                           ? opts->budget.max_events
                           : scn_events_budget_default(e->scn, replicas);
    const double wall_s = opts->budget.max_wall_s > 0 ? opts->budget.max_wall_s
                                                      : scn_wall_budget_default(e->scn);
    e->wall_budget_ns = (uint64_t)(wall_s * ENGINE__NS);
    e->next_sm_check_ns = SCN_SM_CHECK_INTERVAL_NS;
    /* Derived from the scenario only: --max-events moves the total. */
    const double rate = scn_events_rate_budget(e->scn, replicas);
    const double span_ns = SCN_STORM_WINDOW_EVENTS * ENGINE__NS /
                           (SCN_STORM_DENSITY_FACTOR * (rate > 1 ? rate : 1));
    e->storm_span_min_ns = (uint64_t)span_ns;
    out->events_budget = e->events_budget;
    out->wall_budget_s = wall_s;
}

/* Stalled or tripped: no checks (the history stops mid-run); the facts at
 * the moment it happened are the run's figures. */
static void engine__stopped_verdict(const scn_engine_t *e, scn_result_t *out) {
    out->verdict = e->tripped ? REPORT_VERDICT_INVARIANT : REPORT_VERDICT_STALLED;
    out->exit_code = 1;
    out->trace_hash = e->stop_hash;
    out->sim_time_ns = e->stop_time_ns;
    out->events = e->stop_events;
    out->stop_time_ns = e->stop_time_ns;
    snprintf(out->stop_text, sizeof out->stop_text, "%s", e->stop_text);
}

int scn_engine_run(scenario_t *s, const scn_run_opts_t *opts, scn_result_t *out) {
    assert(s != NULL && opts != NULL && out != NULL);
    assert(s->engine == NULL);
    memset(out, 0, sizeof *out);
    out->seed = opts->seed;
    out->variant = opts->variant;
    scn_apply_side(s, opts->variant); /* a teach side's own workload/expect */
    out->exit_code = 2;
    out->verdict = REPORT_VERDICT_ERROR;
    snprintf(out->scenario_name, sizeof out->scenario_name, "%s", s->name);
    scn_reproduce_format(s->path, opts->seed, opts->variant, opts->overrides, &opts->budget,
                         out->reproduce, sizeof out->reproduce);
    if (scn_file_hash(s->path, out->scenario_hash) != 0)
        snprintf(out->scenario_hash, sizeof out->scenario_hash, "unknown");
    broker_config_t cfg;
    char err[256];
    if (scn_budget_check(&opts->budget, err, sizeof err) != 0) {
        snprintf(out->err, sizeof out->err, "%.600s: %.200s", s->path, err);
        return -1;
    }
    if (scn_strategy_for(s, opts->variant, opts->overrides, &cfg, err, sizeof err) != 0) {
        snprintf(out->err, sizeof out->err, "%.600s: strategy: %.200s", s->path, err);
        return -1;
    }
    (void)scn_strategy_describe(s, opts->variant, opts->overrides, out->strategy,
                                sizeof out->strategy);
    engine__run_t *run = calloc(1, sizeof *run);
    if (run == NULL) {
        snprintf(out->err, sizeof out->err, "%.600s: out of memory", s->path);
        return -1;
    }
    scn_engine_t *e = &run->e;
    e->scn = s;
    e->opts = opts;
    e->trace = opts->trace;
    e->message_out = opts->message_id != 0 ? opts->message_out : NULL;
    e->ack_auto = scn_strategy_ack_auto(s, opts->variant, opts->overrides);
    engine__budgets(e, opts, cfg.replicas, out);
    const uint64_t wall0 = engine__wall_ns();
    e->wall_start_ns = wall0;
    const unsigned long long checks0 = broker_invariant_checks();
    int rc = engine__guarded(run, &cfg, opts, out);
    out->invariant_checks = broker_invariant_checks() - checks0;
    out->sm_checks = e->sm_checks;
    out->sm_check_wall_ns = e->sm_check_wall_ns;
    const bool stopped = e->stalled || e->tripped;
    if (rc == 0 && !stopped && history_dropped(e->history) > 0) {
        /* A history with holes would report losses that never happened. */
        snprintf(e->err, sizeof e->err,
                 "%.600s: the history is full (%llu records dropped past %llu): the checks "
                 "would be wrong; shorten the phases or lower the rates",
                 s->path, (unsigned long long)history_dropped(e->history),
                 (unsigned long long)history_count(e->history));
        rc = -1;
    }
    if (rc == 0 && !stopped) rc = engine__check(e, out);
    if (rc == 0 && !stopped) {
        engine__verdict(s, opts->variant, out);
        out->judged = true;
    }
    if (e->sim != NULL) {
        out->trace_hash = sim_trace_hash(e->sim);
        out->sim_time_ns = sim_now_ns(e->sim);
        out->events = sim_events_processed(e->sim);
        engine__counts(e, out);
    }
    if (rc == 0 && stopped) engine__stopped_verdict(e, out);
    out->timeline = e->timeline;
    out->timeline_count = e->faults.timeline_count;
    e->timeline = NULL;
    out->schedule = e->schedule;
    memset(&e->schedule, 0, sizeof e->schedule);
    if (rc != 0) {
        snprintf(out->err, sizeof out->err, "%s", e->err);
        out->exit_code = 2;
        out->verdict = REPORT_VERDICT_ERROR;
    }
    if (e->message_out != NULL && e->tfmt != NULL) trace_fmt_focus_summary(e->tfmt, e->message_out);
    if (opts->html != NULL && e->history != NULL && scn_html_write(opts->html, e->history, e->replicas, out) != 0)
        out->exit_code = 2;
    if (e->sim != NULL) sim_set_observer(e->sim, NULL, NULL); /* freeing is not traced */
    engine__free(run);
    out->wall_time_ns = engine__wall_ns() - wall0;
    return rc == 0 ? 0 : -1;
}

void scn_result_free(scn_result_t *r) {
    if (r == NULL) return;
    free(r->violations_text);
    r->violations_text = NULL;
    free(r->series);
    free(r->timeline);
    free(r->schedule.steps);
    free(r->schedule.ops);
    memset(&r->schedule, 0, sizeof r->schedule);
    r->series = NULL;
    r->timeline = NULL;
    r->series_count = 0;
    r->timeline_count = 0;
}
