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

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "faults/faults.h"
#include "faults/nemesis.h"
#include "reports/report.h"
#include "scenarios/scenario.h"
#include "sim/check.h"
#include "sim/history.h"
#include "sim/workload.h"

#define SCN_FIGURES_TEXT_MAX 512u
#define SCN_STRATEGY_TEXT_MAX 512u
#define SCN_REPRO_MAX 2048u
#define SCN_SERIES_INTERVAL_NS UINT64_C(1000000000) /* 1 s buckets */
#define SCN_DRAIN_POLL_NS UINT64_C(50000000)        /* drain / setup polling */
#define SCN_RUN_EVENTS_MAX UINT64_C(2000000000)     /* safety bound per run */
#define SCN_LOGS_MAX 1024u                           /* log() lines kept */
/* Every broker's role and commit index go into the history this often (for
 * leaderless time and the progress check): finer than an election. */
#define SCN_SAMPLE_INTERVAL_NS UINT64_C(10000000)   /* 10 ms */

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
    report_verdict_t verdict;
    int exit_code;                         /* 0 pass, 1 fail, 2 error */
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
    char reproduce[SCN_REPRO_MAX];
    char err[SCN_ERR_MAX];                 /* exit_code 2: why */
} scn_result_t;

typedef struct scn_run_opts {
    uint64_t seed;
    scn_variant_t variant;
    const scn_strategy_t *overrides; /* CLI --set/--<key>; NULL = none */
    FILE *trace;                     /* every event, one line each; NULL = off */
    uint64_t history_records_max;    /* 0 = HISTORY_RECORDS_MAX (tests use less) */
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
    bool ack_auto;                   /* consumers ack mode for this run */
    uint32_t actions_fired;
    bool failed;                     /* an action raised an error */
    bool settled;                    /* clients settled: every publish has an outcome */
    char err[SCN_ERR_MAX];
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

/* "chaoslab run PATH --seed N [--variant V] [--set k=v]..." */
void scn_reproduce_format(const char *path, uint64_t seed, scn_variant_t variant,
                          const scn_strategy_t *overrides, char *buf, size_t cap);

/* ---- output.c ----------------------------------------------------------- */

/* Human summary of one run. */
void scn_output_text(FILE *out, const scenario_t *s, const scn_result_t *r);
/* One JSON object (with a newline). */
void scn_output_json(FILE *out, const scenario_t *s, const scn_result_t *r);
/* Store the run; returns 0 or a REPORT_E* code (message in err). */
int scn_output_db(report_db_t *db, const scenario_t *s, const scn_result_t *r,
                  const scn_strategy_t *overrides, int64_t *run_id,
                  char *err, size_t err_cap);
/* JSON string escaping helper (quotes included). */
void scn_json_string(FILE *out, const char *text);

#endif
