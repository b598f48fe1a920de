/* cli/cmd_run.c — `chaoslab run SCENARIO.lua ...`: argument parsing only;
 * the work is scenarios/sweep.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "scenarios/sweep.h"

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: chaoslab run SCENARIO.lua [options]\n\n"
            "Runs a Lua fault scenario in the deterministic simulator and checks its\n"
            "expectations. Without --seed/--seeds it runs the scenario's own seeds.\n\n"
            "  --seed N             one seed\n"
            "  --seeds A..B         a range of seeds\n"
            "  --jobs N             worker processes for a range (default 1)\n"
            "  --shard I/N          run only the seeds s with s mod N == I (0 <= I < N);\n"
            "                       merge the shards' databases with `report merge`\n"
            "  --db FILE            report database (default chaoslab.db; 'none' = off)\n"
            "  --trace FILE         write every event of the run, decoded, one line each\n"
            "                       (format: docs/trace.md)\n"
            "  --trace-format text|json  lines of --trace and --message (default text;\n"
            "                       json = one JSON object per line)\n"
            "  --message ID         print every event that touched message ID (as printed\n"
            "                       in violations, e.g. 0x10000000068) on every node and\n"
            "                       client, then where its life ended; needs one run\n"
            "  --html FILE|DIR      one run: write its page, one self-contained HTML file\n"
            "                       (a lane per broker, fault bands, rates, invariants,\n"
            "                       violations; docs/trace.md); a range: DIR/index.html\n"
            "                       and a page per run not as expected\n"
            "  --json               JSON: one object per run, one per line; a range ends\n"
            "                       with a summary object (fields: docs/reports.md)\n"
            "  --junit FILE         also write JUnit XML: a testsuite per strategy, a\n"
            "                       testcase per seed (see docs/ci.md)\n"
            "  --variant weak|strong  one side of a teach{} scenario\n"
            "  --max-events N       event budget of each run (default: derived from the\n"
            "                       scenario, 1e6 + seconds x (hosts x 2000 + msgs/s x 100));\n"
            "                       any 65536 events must also span 1/8 of that rate's time\n"
            "  --max-wall S         wall-clock budget of each run in seconds (default:\n"
            "                       20 + a quarter of the simulated seconds); only stops a run\n"
            "  --set KEY=VALUE      override a strategy value (repeatable)\n"
            "  --KEY VALUE          same, e.g. --acks leader --fsync never --replicas 5\n\n"
            "A run over either budget ends with verdict `stalled`; a tripped internal\n"
            "invariant (BROKER_INVARIANT, broker_sm_check) with verdict `invariant`.\n"
            "Both print the reproduce command; a sweep records them and goes on.\n\n"
            "exit codes: 0 every expectation held (teach: lesson demonstrated),\n"
            "            1 an expectation failed, a run stalled or an invariant tripped,\n"
            "            2 bad usage or a broken scenario\n");
}

static int run_u32(const char *text, uint32_t max, uint32_t *out) {
    uint64_t v = 0;
    if (cli_parse_u64(text, &v) != 0 || v == 0 || v > max) return -1;
    *out = (uint32_t)v;
    return 0;
}

int cli_cmd_run(int argc, char **argv) { return cli_cmd_run_to(argc, argv, stdout); }

int cli_cmd_run_to(int argc, char **argv, FILE *out) {
    scn_strategy_t *overrides = calloc(1, sizeof *overrides);
    if (overrides == NULL) return CLI_EXIT_USAGE;
    scn_sweep_opts_t o = {.jobs = 1, .db_path = "chaoslab.db", .out = out, .err = stderr,
                          .overrides = overrides};
    int rc = -1;
    char err[256];
    for (int i = 1; i < argc && rc < 0; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            run_usage(stdout);
            rc = CLI_EXIT_OK;
        } else if (a[0] != '-' || a[1] == '\0') {
            if (o.path != NULL) rc = cli_usage_error("run", "more than one scenario file ('%s')", a);
            o.path = a;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (next == NULL) {
            rc = cli_usage_error("run", "%s needs a value", a);
        } else if (strcmp(a, "--seed") == 0) {
            if (cli_parse_u64(next, &o.seed_first) != 0) rc = cli_usage_error("run", "--seed wants a number, got '%s'", next);
            o.seed_last = o.seed_first;
            o.has_seeds = true;
            i++;
        } else if (strcmp(a, "--seeds") == 0) {
            if (scn_seeds_parse(next, &o.seed_first, &o.seed_last) != 0)
                rc = cli_usage_error("run", "--seeds wants A..B (A <= B, at most 100000 seeds), got '%s'", next);
            o.has_seeds = true;
            i++;
        } else if (strcmp(a, "--jobs") == 0) {
            if (run_u32(next, SCN_JOBS_MAX, &o.jobs) != 0) rc = cli_usage_error("run", "--jobs wants 1..256, got '%s'", next);
            i++;
        } else if (strcmp(a, "--db") == 0) {
            o.db_path = strcmp(next, "none") == 0 ? NULL : next;
            i++;
        } else if (strcmp(a, "--trace") == 0) {
            o.trace_path = next;
            i++;
        } else if (strcmp(a, "--shard") == 0) {
            if (scn_shard_parse(next, &o.shard_index, &o.shard_count) != 0)
                rc = cli_usage_error("run", "--shard wants I/N with 0 <= I < N <= %u, got '%s'",
                                     SCN_SHARDS_MAX, next);
            o.shard_text = next;
            i++;
        } else if (strcmp(a, "--junit") == 0) {
            o.junit_path = next;
            i++;
        } else if (strcmp(a, "--trace-format") == 0) {
            if (trace_fmt_parse(next, &o.trace_format) != 0)
                rc = cli_usage_error("run", "--trace-format wants text or json, got '%s'", next);
            i++;
        } else if (strcmp(a, "--message") == 0) {
            char *end = NULL;
            errno = 0;
            o.message_id = strtoull(next, &end, 0);
            if (next[0] == '-' || end == next || *end != '\0' || errno != 0 || o.message_id == 0)
                rc = cli_usage_error("run", "--message wants a message id such as 0x10000000068, got '%s'", next);
            i++;
        } else if (strcmp(a, "--html") == 0) {
            o.html_path = next;
            i++;
        } else if (strcmp(a, "--variant") == 0) {
            o.has_variant = true;
            if (strcmp(next, "weak") == 0) o.variant = SCN_VARIANT_WEAK;
            else if (strcmp(next, "strong") == 0) o.variant = SCN_VARIANT_STRONG;
            else rc = cli_usage_error("run", "--variant wants weak or strong, got '%s'", next);
            i++;
        } else if (strcmp(a, "--max-events") == 0) {
            if (cli_parse_u64(next, &o.budget.max_events) != 0 || o.budget.max_events == 0 ||
                o.budget.max_events > SCN_RUN_EVENTS_MAX)
                rc = cli_usage_error("run", "--max-events wants 1..%llu, got '%s'",
                                     (unsigned long long)SCN_RUN_EVENTS_MAX, next);
            i++;
        } else if (strcmp(a, "--max-wall") == 0) {
            char *end = NULL;
            o.budget.max_wall_s = strtod(next, &end);
            if (end == next || *end != '\0' || !(o.budget.max_wall_s > 0) ||
                o.budget.max_wall_s > SCN_WALL_BUDGET_S_MAX)
                rc = cli_usage_error("run", "--max-wall wants seconds in (0, %.0f], got '%s'",
                                     SCN_WALL_BUDGET_S_MAX, next);
            i++;
        } else if (strcmp(a, "--set") == 0) {
            if (scn_strategy_set_pair(overrides, next, err, sizeof err) != 0)
                rc = cli_usage_error("run", "--set: %s", err);
            i++;
        } else if (a[1] == '-') {
            /* --<strategy-key> VALUE: any key broker_config_set knows. */
            if (scn_strategy_set(overrides, a + 2, next, err, sizeof err) != 0) {
                if (strncmp(err, "unknown strategy key", 20) == 0) rc = cli_usage_error("run", "unknown option '%s'", a);
                else rc = cli_usage_error("run", "%s", err);
            }
            i++;
        } else {
            rc = cli_usage_error("run", "unknown option '%s'", a);
        }
    }
    if (rc < 0 && o.path == NULL) rc = cli_usage_error("run", "%s", "missing the scenario file");
    if (rc < 0) rc = scn_sweep_main(&o);
    free(overrides);
    return rc;
}
