/*
 * scenarios/shrink.h — shrink a failing run to a minimal scenario.
 *
 * shrink_run() runs one seed of a scenario, takes the concrete fault
 * schedule the engine recorded (scn_schedule_t) and rewrites the run as a
 * standalone Lua scenario: the strategy the run used as cluster{}, its
 * workload and phases, every schedule step as an explicit at() action with
 * concrete targets (no nemesis, no leader() lookups), and an expect{} that
 * holds the run to the one invariant that failed. With nothing removed that
 * file repeats the run (the replay hash is reported). It then removes and
 * simplifies pieces — fault steps, single fault calls, producers, consumers,
 * the probe, messages, rates, replicas (odd counts down to 3, when no fault
 * names a broker past them), phase lengths, the time between faults — and
 * keeps a change only if the same invariant still fails (a delta-debugging
 * search, greedy and in a fixed order, so the same inputs give the same
 * file). Every trial runs in-process through scn_engine_run on the
 * candidate file written to a temporary path.
 *
 * Bounds: max_trials runs and budget_s wall seconds (the wall budget is the
 * one thing that can make two shrinks differ: it only stops the search).
 * Nothing here writes outside the temporary file, the output file and the
 * progress stream.
 */
#ifndef CHAOSLAB_SCENARIOS_SHRINK_H
#define CHAOSLAB_SCENARIOS_SHRINK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scenarios/engine.h"

#define SHRINK_TRIALS_DEFAULT 300u
#define SHRINK_TRIALS_MAX 100000u
#define SHRINK_BUDGET_S_DEFAULT 300.0
#define SHRINK_BUDGET_S_MAX 86400.0
#define SHRINK_ITEMS_MAX 16384u       /* fault calls + empty steps of one schedule */
#define SHRINK_REPLICAS_MIN 3u        /* fewer replicas are tried down to this */
#define SHRINK_TIME_QUANTUM_NS UINT64_C(1000000) /* moved steps land on whole ms */

typedef struct shrink_opts {
    const char *path;          /* the scenario file */
    uint64_t seed;
    scn_variant_t variant;     /* teach files: weak or strong; else NONE */
    int invariant;             /* SCN_INV_*; -1 = the lesson's, else the first failed */
    double budget_s;           /* wall seconds for the whole search, > 0 */
    uint32_t max_trials;       /* trial runs at most, >= 1 */
    const char *out_path;      /* where the shrunk scenario is written */
    FILE *progress;            /* a line per kept change; NULL = quiet */
} shrink_opts_t;

typedef struct shrink_size {
    uint32_t faults;           /* fault calls (at() actions may hold several) */
    uint32_t steps;            /* at() actions */
    uint32_t clients;          /* producers + consumers (+ probe, dead-letter consumers) */
    uint64_t messages;         /* publishes in the run */
    double sim_s;              /* simulated seconds of the run */
} shrink_size_t;

typedef struct shrink_result {
    int invariant;             /* the one that fails */
    shrink_size_t before, after;
    uint64_t trace_hash;       /* of the original run */
    uint64_t replay_hash;      /* of its explicit schedule with nothing removed */
    uint64_t shrunk_hash;      /* of the written file's run */
    uint32_t trials, kept;
    bool budget_hit;           /* the search stopped on a bound, not at a fixed point */
    double wall_s;
    char command[SCN_REPRO_MAX]; /* the command that runs the written file */
    char err[SCN_ERR_MAX];
} shrink_result_t;

/* Returns 0 (shrunk, written to out_path), 1 (nothing to shrink: the run
 * does not fail that invariant, or ends stalled; err says why), or -1 (an
 * error: unreadable scenario, bad options, unwritable output; err says). */
int shrink_run(const shrink_opts_t *opts, shrink_result_t *out);

#endif
