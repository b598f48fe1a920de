/*
 * scenarios/engine.h — one simulated run of a loaded scenario.
 *
 * The engine builds the world: brokers 0..replicas-1 run broker_node_program,
 * client hosts after them run the workload programs (one setup client, then
 * the producers, then the consumers). It runs the phases
 *   chaos  (timed Lua actions and the nemesis)
 *   heal   (faults_heal_all at the start; the nemesis stops at chaos end)
 *   drain  (producers stop; run until every producer is done and the queue
 *           is empty on the leader, or the drain limit)
 *   check  (sim/check.h checkers, the scenario's expectations, a verdict)
 * and fills a scn_result_t. Output (terminal, JSON) and the SQLite writer
 * are in output.c; seed sweeps in sweep.c.
 *
 * Ownership: the caller owns the scenario and the result; scn_result_free
 * releases what the engine allocated inside the result. The wall clock is
 * read only to fill wall_time_ns (never influences the run).
 */
#ifndef CHAOSLAB_SCENARIOS_ENGINE_H
#define CHAOSLAB_SCENARIOS_ENGINE_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "faults/faults.h"
#include "faults/nemesis.h"
#include "reports/report.h"
#include "scenarios/scenario.h"
#include "scenarios/trace_fmt.h"
#include "sim/check.h"
#include "sim/history.h"
#include "sim/workload.h"

#define SCN_FIGURES_TEXT_MAX 512u
#define SCN_STRATEGY_TEXT_MAX 512u
#define SCN_REPRO_MAX 2048u
#define SCN_SERIES_INTERVAL_NS UINT64_C(1000000000) /* 1 s buckets */
#define SCN_DRAIN_POLL_NS UINT64_C(50000000)        /* drain / setup polling */
#define SCN_RUN_EVENTS_MAX UINT64_C(2000000000)     /* no run's budget goes above */
#define SCN_LOGS_MAX 1024u                           /* log() lines kept */
/* Every broker's role and commit index go into the history this often (for
 * leaderless time and the progress check): finer than an election. */
#define SCN_SAMPLE_INTERVAL_NS UINT64_C(10000000)   /* 10 ms */

/* Liveness budgets: a run that needs more is a verdict `stalled`, not a
 * hang. The default event budget grows with what the scenario asks for:
 *   SCN_EVENTS_BUDGET_MIN + total_s * (hosts * SCN_EVENTS_PER_HOST_S
 *                                      + offered_msgs_per_s * SCN_EVENTS_PER_MSG)
 * (total_s = chaos + heal + drain). Library scenarios use 5 to 20 times
 * less; a replication storm (thousands of appends at one virtual instant)
 * runs through it in seconds. The wall budget only stops a run (it never
 * changes the trace): SCN_WALL_BUDGET_MIN_S + total_s * SCN_WALL_PER_SIM_S
 * (swarm_nemesis: 31 s for a run that takes 0.2 s). A storm of large
 * messages costs ~80 us per event, so it is usually the wall budget that
 * ends it. */
#define SCN_EVENTS_BUDGET_MIN UINT64_C(1000000)
#define SCN_EVENTS_PER_HOST_S 2000u       /* heartbeats, ticks, retries */
#define SCN_EVENTS_PER_MSG 100u           /* ~20 in a calm run */
#define SCN_WALL_BUDGET_MIN_S 20.0
#define SCN_WALL_PER_SIM_S 0.25
#define SCN_WALL_BUDGET_S_MAX 86400.0     /* --max-wall at most a day */
#define SCN_BUDGET_SLICE_EVENTS 4096u     /* the wall clock is read this often */
/* Storms: the event budget also holds per window. A run stalls when
 * SCN_STORM_WINDOW_EVENTS consecutive events (counted in windows that start
 * at slice ends) span less virtual time than they would at
 * SCN_STORM_DENSITY_FACTOR times the per-second rate of the event budget
 * (hosts x SCN_EVENTS_PER_HOST_S + offered x SCN_EVENTS_PER_MSG). A
 * replication storm (thousands of appends per virtual millisecond) trips
 * it within a few wall seconds, deterministically (the trace at the stall
 * is the same on any machine); a calm run stays ~50x below it. */
#define SCN_STORM_WINDOW_EVENTS 65536u
#define SCN_STORM_DENSITY_FACTOR 8u
#define SCN_STALL_WINDOW_EVENTS 100000u   /* events tallied after a stall, */
#define SCN_STALL_WINDOW_WALL_NS UINT64_C(2000000000) /* or this long at most */
#define SCN_STALL_KINDS_MAX 8u            /* event kinds shown for a stall */
#define SCN_STALL_KEYS_MAX 512u           /* distinct kinds tallied */
/* broker_sm_check on every live replica this often (virtual time), and at
 * the end of every run. O(state) per replica: cheap next to a second of
 * simulated traffic. */
#define SCN_SM_CHECK_INTERVAL_NS UINT64_C(1000000000)
#define SCN_STOP_TEXT_MAX 2048u           /* why a run stalled / tripped */
#define SCN_VERSION_MAX 128u
#define SCN_HASH_HEX_MAX 17u              /* 16 hex digits + NUL */

/* The run's fault schedule: every call event that could inject a fault (an
 * at()/every() firing, a nemesis tick or undo) is one step, with the
 * injector calls it made, in order, with concrete targets and parameters
 * (faults_op_t). Steps that made no call are kept: each is an event of the
 * trace. Replaying the steps as explicit at() actions, without the nemesis,
 * repeats the run (scenarios/shrink.c does). */
#define SCN_STEP_NEMESIS UINT32_MAX        /* scn_step_t.source of a nemesis step */
#define SCN_SCHEDULE_STEPS_MAX 65536u      /* steps recorded per run */
#define SCN_SCHEDULE_OPS_MAX 65536u        /* injector calls recorded per run */

typedef struct scn_step {
    uint64_t time_ns;
    uint32_t source;                       /* the action's index, or SCN_STEP_NEMESIS */
    uint32_t ops_first, ops_count;         /* in scn_schedule_t.ops */
} scn_step_t;

typedef struct scn_schedule {
    scn_step_t *steps;                     /* owned */
    uint32_t steps_count, steps_cap;
    faults_op_t *ops;                      /* owned */
    uint32_t ops_count, ops_cap;
    bool truncated;                        /* a bound or memory ran out: not replayable */
} scn_schedule_t;

/* Budgets of a run; 0 = the default derived from the scenario. */
typedef struct scn_budget {
    uint64_t max_events;
    double max_wall_s;
} scn_budget_t;

typedef struct scn_invariant {
    bool enforced;           /* an expectation of this run */
    bool passed;             /* the invariant held */
    report_expect_t expected;
    bool as_expected;
    char figures[SCN_FIGURES_TEXT_MAX];
} scn_invariant_t;

typedef struct scn_result {
    uint64_t seed;
    scn_variant_t variant;
    char scenario_name[SCN_NAME_MAX];
    char strategy[SCN_STRATEGY_TEXT_MAX];  /* broker_config_format */
    char nemesis[128];                     /* swarm draw, "" = none */
    report_verdict_t verdict;              /* pass, fail, stalled, invariant, error */
    int exit_code;                         /* 0 pass, 1 fail/stalled/invariant, 2 error */
    bool judged;                           /* the checkers ran: inv[] and checks[] hold */
    uint64_t events_budget;                /* the budgets this run had */
    double wall_budget_s;
    char stop_text[SCN_STOP_TEXT_MAX];     /* stalled / invariant: what happened */
    uint64_t stop_time_ns;                 /* virtual time it happened */
    char scenario_hash[SCN_HASH_HEX_MAX];  /* the file's content (FNV-1a 64) */
    /* cost of the always-on checks (bench/bench_scenario prints them) */
    uint64_t invariant_checks;             /* BROKER_INVARIANT evaluations */
    uint64_t sm_checks;                    /* broker_sm_check calls */
    uint64_t sm_check_wall_ns;             /* wall time spent in them */
    uint64_t trace_hash, sim_time_ns, wall_time_ns, events;
    scn_invariant_t inv[SCN_INV_COUNT];
    check_result_t checks[CHECK_ALL_COUNT]; /* no_loss .. latency */
    /* Publishes of every producer, the probe included: published = confirmed
     * + nacked + failed + unknown (unknown_at_end of them still in flight when
     * the run ended). */
    uint64_t published, confirmed, processed;
    uint64_t nacked, failed, unknown, unknown_at_end;
    uint64_t probe_published;              /* of `published`, by the probe */
    report_sample_t *series;               /* owned */
    size_t series_count;
    faults_event_t *timeline;              /* owned */
    uint32_t timeline_count;
    char *violations_text;                 /* owned: per violated invariant, the first
                                              message ids and their history lines */
    scn_schedule_t schedule;               /* owned: the concrete fault schedule */
    char reproduce[SCN_REPRO_MAX];
    char err[SCN_ERR_MAX];                 /* exit_code 2: why */
} scn_result_t;

typedef struct scn_run_opts {
    uint64_t seed;
    scn_variant_t variant;
    const scn_strategy_t *overrides; /* CLI --set/--<key>; NULL = none */
    FILE *trace;                     /* every event, one line each; NULL = off */
    trace_fmt_kind_t trace_format;   /* of trace and of message_out lines */
    uint64_t message_id;             /* --message: follow this message; 0 = off */
    FILE *message_out;               /* where its life is printed (with message_id) */
    FILE *html;                      /* --html: the run's page; NULL = off */
    uint64_t history_records_max;    /* 0 = HISTORY_RECORDS_MAX (tests use less) */
    scn_budget_t budget;             /* --max-events, --max-wall; 0 = default */
    /* Tests only: called once at test_hook_at_ns with the running engine
     * (e.g. to corrupt a replica and see the invariant verdict). */
    void (*test_hook)(struct scn_engine *e, void *arg);
    void *test_hook_arg;
    uint64_t test_hook_at_ns;
    /* Tests only: called on every scn_engine_leader (which Lua's leader()
     * reaches from inside an action's pcall frame). */
    void (*test_leader_hook)(const struct scn_engine *e);
} scn_run_opts_t;

/* Internal state of a running world; lua_api.c drives faults through it. */
typedef struct scn_engine {
    scenario_t *scn;
    sim_t *sim;
    faults_t faults;
    faults_event_t *timeline;
    nemesis_t nemesis;
    history_t *history;
    broker_config_t cfg[BROKER_REPLICAS_MAX];
    uint32_t replicas;
    workload_client_t *setup;
    workload_client_t *producers[SCN_PRODUCERS_MAX];
    workload_client_t *consumers[SCN_CONSUMERS_MAX];
    workload_client_t *probe;        /* NULL when workload{probe = false} */
    uint32_t producers_count, consumers_count;
    uint64_t chaos_end_ns, heal_end_ns, drain_end_ns;
    uint64_t clients_started_ns;
    bool clients_started;
    FILE *trace;
    struct trace_fmt *tfmt;          /* decodes trace lines; NULL = no observer */
    FILE *message_out;               /* the followed message's lines (opts) */
    bool ack_auto;                   /* consumers ack mode for this run */
    uint32_t actions_fired;
    bool failed;                     /* an action raised an error */
    scn_schedule_t schedule;         /* recorded as the run goes (moved to the result) */
    bool step_open;                  /* injector calls now belong to the last step */
    bool settled;                    /* clients settled: every publish has an outcome */
    char err[SCN_ERR_MAX];
    /* budgets and always-on invariants */
    uint64_t events_budget, wall_budget_ns, wall_start_ns;
    uint64_t storm_span_min_ns;          /* a window of events must span this */
    uint64_t window_events, window_ns;   /* where the current window began */
    uint64_t next_sm_check_ns;
    uint64_t sm_checks, sm_check_wall_ns;
    bool stalled, tripped;           /* the run ended with that verdict */
    bool in_action;                  /* inside a Lua action (a pcall frame) */
    uint64_t stop_time_ns, stop_events, stop_hash;
    char stop_text[SCN_STOP_TEXT_MAX];
    jmp_buf trip_jmp;                /* where a tripped BROKER_INVARIANT lands */
    const scn_run_opts_t *opts;
} scn_engine_t;

/* Run one seed of `s` (freshly loaded for this seed). Returns 0 with a
 * pass/fail verdict in out, or -1 when the run could not be completed (a
 * broken scenario or an error in an action): out->exit_code = 2 and
 * out->err holds "FILE:LINE: message". `out` is zeroed first. */
int scn_engine_run(scenario_t *s, const scn_run_opts_t *opts, scn_result_t *out);

/* Free what scn_engine_run allocated in `r` (not r itself). */
void scn_result_free(scn_result_t *r);

/* Leader now (highest-term running leader) or -1. */
int scn_engine_leader(const scn_engine_t *e);

/* "chaoslab run PATH --seed N [--variant V] [--set k=v]... [--max-events N]
 * [--max-wall S]" (budget may be NULL: no budget options). */
void scn_reproduce_format(const char *path, uint64_t seed, scn_variant_t variant,
                          const scn_strategy_t *overrides, const scn_budget_t *budget,
                          char *buf, size_t cap);

/* The default budgets of a run of `s` (see SCN_EVENTS_BUDGET_MIN). */
uint64_t scn_events_budget_default(const scenario_t *s, uint32_t replicas);
/* The per-second event rate the budget allows (storm windows use it). */
double scn_events_rate_budget(const scenario_t *s, uint32_t replicas);
double scn_wall_budget_default(const scenario_t *s);
/* 0, or -1 with a message when a budget is out of range. */
int scn_budget_check(const scn_budget_t *b, char *err, size_t err_cap);

/* The binary's identity: "<project version> (<git describe>)", baked in
 * at build time; "unknown" stands in for what the build did not know. */
const char *scn_binary_version(void);
/* FNV-1a 64 of the file's bytes as 16 hex digits; -1 if unreadable. */
int scn_file_hash(const char *path, char out[SCN_HASH_HEX_MAX]);

/* ---- output.c ----------------------------------------------------------- */

/* Human summary of one run. */
void scn_output_text(FILE *out, const scenario_t *s, const scn_result_t *r);
/* One JSON object (with a newline): the run's line of `--json`
 * (docs/reports.md, "chaoslab run --json"). */
void scn_output_json(FILE *out, const scenario_t *s, const scn_result_t *r);
/* The line of a run that never got going (the scenario did not load, a
 * worker died): verdict error, exit_code 2, the reason. */
void scn_output_json_error(FILE *out, const char *path, uint64_t seed, scn_variant_t variant,
                           const char *why);
/* A JSON number (null when not finite). */
void scn_json_number(FILE *out, double v);
/* Store the run; returns 0 or a REPORT_E* code (message in err). */
int scn_output_db(report_db_t *db, const scenario_t *s, const scn_result_t *r,
                  const scn_strategy_t *overrides, int64_t *run_id,
                  char *err, size_t err_cap);
/* JSON string escaping helper (quotes included). */
void scn_json_string(FILE *out, const char *text);

#endif
