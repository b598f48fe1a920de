/*
 * bench/bench_scenario.c — how fast the simulator runs a real scenario.
 *
 * Two runs through the engine's C API (scenarios/engine.h), each from a Lua
 * scenario written to a temporary file:
 *
 *   reference   3 replicas, acks=quorum, fsync=always, 1,000 msg/s offered
 *               (4 producers x 250/s), 60 s of simulated chaos with the swarm
 *               nemesis on (all kinds), then heal and drain; one idempotent
 *               consumer (an idempotent consumer remembers only its own
 *               deliveries, so two would process a cross-consumer
 *               redelivery twice);
 *   saturation  no faults, 4 producers publishing as fast as their in-flight
 *               window allows (the offered rate is far above what the
 *               cluster confirms), 10 s simulated.
 *
 * Printed (one key=value per line, for bench/run.sh and humans):
 *   speedup=          simulated seconds per wall second
 *   sim_msgs_per_sec= (published + processed) per wall second
 *   events_per_sec=   simulator events per wall second
 *   peak_rss_kb=      getrusage ru_maxrss after the run (kilobytes; the
 *                     process peak so far, so the second run's figure
 *                     covers both)
 *   invariant_checks= BROKER_INVARIANT evaluations in the run (and per
 *                     simulator event)
 *   sm_checks=        broker_sm_check calls (every live replica once per
 *                     SCN_SM_CHECK_INTERVAL_NS and at the end), their wall
 *                     time and its share of the run
 *
 * Usage: bench_scenario [--seed N] [--quick] [--only reference|saturation]
 *        (--quick: 10 s reference; --only: run just one of the two).
 * Not a test: numbers depend on the machine. Exit 0, or 1 if a run could
 * not be completed (its error is printed). The verdict of each run is
 * printed too: a benchmark of a failing run still measures speed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "scenarios/engine.h"
#include "scenarios/scenario.h"

#define BENCH_PATH_MAX 256u

static const char bench_reference_fmt[] =
    "scenario { name = \"bench_reference\" }\n"
    "cluster { replicas = 3, acks = \"quorum\", fsync = \"always\", ack_timeout_ms = 2000 }\n"
    "workload {\n"
    "  producers = { count = 4, rate = 250, idempotent = true, timeout_ms = 500, retries = 40 },\n"
    "  consumers = { count = 1, ack = \"manual\", idempotent = true },\n"
    "}\n"
    "phases { chaos = %d, heal = 5, drain = 20 }\n"
    "nemesis { kinds = \"all\", swarm = true, interval = 2, duration = 2 }\n"
    "expect { no_loss = true, no_duplicates = true, replica_agreement = true }\n";

static const char bench_saturation_lua[] =
    "scenario { name = \"bench_saturation\" }\n"
    "cluster { replicas = 3, acks = \"quorum\", fsync = \"always\" }\n"
    "workload {\n"
    "  producers = { count = 4, rate = 1000000, window = 256, timeout_ms = 2000 },\n"
    "  consumers = { count = 2, prefetch = 256, processing_ms = 0 },\n"
    "}\n"
    "phases { chaos = 3, heal = 0, drain = 10 }\n"
    "expect { no_loss = true }\n";

static int bench_write(char *path, size_t cap, const char *tag, const char *text) {
    snprintf(path, cap, "/tmp/chaoslab_bench_%s_%ld.lua", tag, (long)getpid());
    FILE *f = fopen(path, "w");
    if (f == NULL) return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Run one scenario file for `seed` and print its figures. 0 or -1. */
static int bench_run(const char *label, const char *path, uint64_t seed) {
    char err[SCN_ERR_MAX];
    scenario_t *s = NULL;
    if (scenario_new(path, seed, &s, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", label, err);
        return -1;
    }
    scn_run_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.seed = seed;
    scn_result_t *r = calloc(1, sizeof *r); /* big: keep it off the stack */
    if (r == NULL) {
        scenario_free(s);
        return -1;
    }
    const int rc = scn_engine_run(s, &opts, r);
    int ret = 0;
    if (rc == 0 && r->verdict != REPORT_VERDICT_PASS && r->verdict != REPORT_VERDICT_FAIL)
        fprintf(stderr, "%s: %s\n", label, r->stop_text); /* stalled / invariant */
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", label, r->err);
        ret = -1;
    } else {
        const double wall_s = (double)r->wall_time_ns / 1e9;
        const double sim_s = (double)r->sim_time_ns / 1e9;
        const double w = wall_s > 0 ? wall_s : 1e-9;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("[%s] seed=%llu verdict=%s nemesis=%s\n", label, (unsigned long long)seed,
               report_verdict_name(r->verdict), r->nemesis[0] ? r->nemesis : "-");
        printf("[%s] sim_s=%.3f wall_s=%.3f published=%llu confirmed=%llu processed=%llu "
               "events=%llu\n",
               label, sim_s, wall_s, (unsigned long long)r->published,
               (unsigned long long)r->confirmed, (unsigned long long)r->processed,
               (unsigned long long)r->events);
        printf("[%s] speedup=%.1f\n", label, sim_s / w);
        printf("[%s] sim_msgs_per_sec=%.0f\n", label,
               (double)(r->published + r->processed) / w);
        printf("[%s] events_per_sec=%.0f\n", label, (double)r->events / w);
        printf("[%s] peak_rss_kb=%ld\n", label, ru.ru_maxrss);
        /* The always-on checks: BROKER_INVARIANT evaluations (one add and
         * a compare each) and the periodic broker_sm_check of every
         * replica, with the share of the run's wall time it took. */
        printf("[%s] invariant_checks=%llu invariant_checks_per_event=%.1f\n", label,
               (unsigned long long)r->invariant_checks,
               r->events > 0 ? (double)r->invariant_checks / (double)r->events : 0.0);
        printf("[%s] sm_checks=%llu sm_check_wall_s=%.6f sm_check_share=%.3f%%\n", label,
               (unsigned long long)r->sm_checks, (double)r->sm_check_wall_ns / 1e9,
               100.0 * (double)r->sm_check_wall_ns / 1e9 / w);
    }
    scn_result_free(r);
    free(r);
    scenario_free(s);
    return ret;
}

int main(int argc, char **argv) {
    uint64_t seed = 1;
    int chaos_s = 60;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--quick") == 0) {
            chaos_s = 10;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc &&
                   (strcmp(argv[i + 1], "reference") == 0 ||
                    strcmp(argv[i + 1], "saturation") == 0)) {
            only = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: bench_scenario [--seed N] [--quick] [--only reference|saturation]\n");
            return 2;
        }
    }
    char ref_text[sizeof bench_reference_fmt + 16];
    snprintf(ref_text, sizeof ref_text, bench_reference_fmt, chaos_s);
    char ref_path[BENCH_PATH_MAX], sat_path[BENCH_PATH_MAX];
    if (bench_write(ref_path, sizeof ref_path, "reference", ref_text) != 0 ||
        bench_write(sat_path, sizeof sat_path, "saturation", bench_saturation_lua) != 0) {
        fprintf(stderr, "bench_scenario: cannot write the scenario files under /tmp\n");
        return 1;
    }
    int failed = 0;
    if (only == NULL || strcmp(only, "reference") == 0)
        failed |= bench_run("reference", ref_path, seed) != 0;
    if (only == NULL || strcmp(only, "saturation") == 0)
        failed |= bench_run("saturation", sat_path, seed) != 0;
    unlink(ref_path);
    unlink(sat_path);
    return failed ? 1 : 0;
}
