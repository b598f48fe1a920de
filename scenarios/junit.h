/*
 * scenarios/junit.h — `chaoslab run --junit FILE`: the runs of a sweep as
 * JUnit XML for CI servers. One <testsuite> per scenario and strategy side
 * (variant), one <testcase> per seed; a run not as expected is a <failure>
 * naming the invariants, with its key figures and the reproduce command;
 * stalled, invariant and error runs are <error> elements of that type.
 *
 * The file is written only from facts the sweep already collected; it
 * never influences a run (wall times appear in it, never in a trace hash).
 */
#ifndef CHAOSLAB_SCENARIOS_JUNIT_H
#define CHAOSLAB_SCENARIOS_JUNIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scenarios/engine.h"

#define SCN_JUNIT_WHY_MAX 256u /* bytes of stop/error text kept per run */

/* One run as the sweep saw it. */
typedef struct scn_junit_case {
    uint64_t seed, trace_hash, sim_time_ns, wall_time_ns, events;
    uint64_t published, confirmed, lost;
    double availability;          /* < 0 = not measured */
    scn_variant_t variant;
    report_verdict_t verdict;
    int exit_code;                /* 0 as expected, 1 not, 2 error */
    bool done;                    /* false = the worker never reported it */
    uint16_t violated, failed;    /* bit per SCN_INV_* */
    char why[SCN_JUNIT_WHY_MAX];  /* stalled/invariant/error: what happened */
} scn_junit_case_t;

/* One strategy side of the sweep. */
typedef struct scn_junit_suite {
    scn_variant_t variant;
    const char *strategy;         /* scn_strategy_describe text */
} scn_junit_suite_t;

typedef struct scn_junit_doc {
    const char *path;             /* the scenario file */
    const char *scenario_name;
    const char *shard;            /* "I/N" or NULL */
    const scn_junit_suite_t *suites;
    uint32_t suites_count;
    const scn_junit_case_t *cases; /* item order: seed-major, then suite */
    uint64_t cases_count;
    const scn_strategy_t *overrides; /* for the reproduce commands */
    const scn_budget_t *budget;
} scn_junit_doc_t;

/* Write the XML document to `out`. Returns 0, or -1 on a write error. */
int scn_junit_write(FILE *out, const scn_junit_doc_t *doc);

/* Print `s` with XML escapes (&<>"' and control characters dropped). */
void scn_junit_escape(FILE *out, const char *s);

#endif
