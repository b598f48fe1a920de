/*
 * scenarios/sweep.h — `chaoslab run` as a library call: one run, a scenario's
 * default seeds, a --seeds range over --jobs worker processes (fork), and
 * teach files (weak and strong sides per seed, then a lesson verdict).
 *
 * Every run is written to the report database (each worker process opens
 * its own connection). Output goes to opts->out (summaries, JSON) and
 * opts->err (errors "FILE:LINE: message", the progress bar on a TTY).
 */
#ifndef CHAOSLAB_SCENARIOS_SWEEP_H
#define CHAOSLAB_SCENARIOS_SWEEP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scenarios/engine.h"
#include "scenarios/scenario.h"

#define SCN_JOBS_MAX 256u
#define SCN_SHARDS_MAX 100000u  /* --shard I/N: N at most this (SCN_SEEDS_MAX) */

/* Parse "I/N" (0 <= I < N <= SCN_SHARDS_MAX). Returns 0, or -1. */
int scn_shard_parse(const char *text, uint64_t *index, uint64_t *count);

typedef struct scn_sweep_opts {
    const char *path;             /* the scenario file */
    bool has_seeds;               /* else the scenario's seeds= */
    uint64_t seed_first, seed_last;
    bool has_variant;             /* --variant weak|strong */
    scn_variant_t variant;
    const scn_strategy_t *overrides; /* NULL = none */
    uint32_t jobs;                /* 1..SCN_JOBS_MAX worker processes */
    const char *db_path;          /* NULL = do not store */
    const char *trace_path;       /* single run only; NULL = off */
    const char *junit_path;       /* JUnit XML of every run; NULL = off */
    uint64_t shard_index, shard_count; /* --shard I/N: seeds s with s mod N == I;
                                          shard_count 0 = every seed */
    const char *shard_text;       /* "I/N" as given (JUnit property); NULL = none */
    trace_fmt_kind_t trace_format; /* --trace-format text|json (also of --message) */
    uint64_t message_id;          /* --message: print this message's life; 0 = off */
    const char *html_path;        /* --html: the run's page (single run); NULL = off */
    bool json;
    scn_budget_t budget;          /* --max-events, --max-wall (0 = default) */
    FILE *out, *err;
} scn_sweep_opts_t;

/* Run everything `opts` asks for. Returns the exit code: 0 every
 * expectation held (teach: lesson demonstrated), 1 an expectation failed
 * or a run ended stalled or invariant (a sweep records such a seed and
 * moves on), 2 bad usage, a broken scenario or a database error. */
int scn_sweep_main(const scn_sweep_opts_t *opts);

#endif
