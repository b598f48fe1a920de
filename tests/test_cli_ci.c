/* tests/test_cli_ci.c — the CI features of `chaoslab run` and `chaoslab
 * report` through the built binary: --junit (checked by a real JUnit
 * consumer, python3-junitparser), --shard, `report merge` and
 * `report compare --baseline`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "reports/report.h"
#include "scenarios/junit.h"
#include "tests/support/tnet.h"

#define FIXTURE(name) CHAOSLAB_SOURCE_DIR "/tests/scenarios/" name
#define JUNIT_CHECK CHAOSLAB_SOURCE_DIR "/tests/ci/junit_check.py"
#define ARGS_MAX 32
#define OUTPUT_MAX (1u << 20)

typedef struct cli_out {
    int code;
    char out[OUTPUT_MAX];
    char err[OUTPUT_MAX];
} cli_out_t;

static char tmpdir[64];

/* Run `prog` with NULL-terminated args in tmpdir; capture stdout/stderr. */
static void run_prog(cli_out_t *o, const char *prog, const char *const *args) {
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmpdir);
    char *argv[ARGS_MAX];
    argv[0] = (char *)prog;
    int n = 1;
    for (; args[n - 1] != NULL && n < ARGS_MAX - 1; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    fflush(NULL);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen(out_path, "w", stdout) == NULL || freopen(err_path, "w", stderr) == NULL)
            _exit(99);
        if (chdir(tmpdir) != 0) _exit(99);
        execv(argv[0], argv);
        _exit(98);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    o->code = WEXITSTATUS(status);
    tnet_read_file(out_path, o->out, sizeof o->out);
    tnet_read_file(err_path, o->err, sizeof o->err);
}

static void run_cli(cli_out_t *o, const char *const *args) { run_prog(o, CHAOSLAB_BINARY, args); }

/* The JUnit file must parse and hold these counts (junit_check.py). */
static void junit_expect(cli_out_t *o, const char *file, const char *suites, const char *tests,
                         const char *failures, const char *errors, const char *error_type) {
    run_prog(o, "/usr/bin/python3",
             (const char *[]){JUNIT_CHECK, file, suites, tests, failures, errors, error_type, NULL});
    if (o->code != 0) fprintf(stderr, "%s%s", o->out, o->err);
    assert_int_equal(o->code, 0);
}

static cli_out_t *out_new(void) {
    cli_out_t *o = calloc(1, sizeof *o);
    assert_non_null(o);
    return o;
}

static void test_junit_counts_parse(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    /* teach: two suites (weak, strong), all as expected */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_teach.lua"), "--db", "none", "--junit",
                                "teach.xml", NULL});
    assert_int_equal(o->code, 0);
    junit_expect(o, "teach.xml", "2", "4", "0", "0", NULL);
    /* a weakened strong side: every seed a <failure> naming no_loss */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_teach.lua"), "--db", "none", "--variant",
                                "strong", "--fsync", "never", "--junit", "weak.xml", NULL});
    assert_int_equal(o->code, 1);
    junit_expect(o, "weak.xml", "1", "2", "2", "0", NULL);
    char path[128], xml[16384];
    snprintf(path, sizeof path, "%s/weak.xml", tmpdir);
    tnet_read_file(path, xml, sizeof xml);
    assert_non_null(strstr(xml, "not as expected: no_loss"));
    assert_non_null(strstr(xml, "--seed 2 --variant strong --set fsync=never"));
    /* stalled runs are <error type="stalled">, one seed alone too */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--db", "none", "--seeds",
                                "1..3", "--jobs", "2", "--max-events", "3000", "--junit",
                                "stalled.xml", NULL});
    assert_int_equal(o->code, 1);
    junit_expect(o, "stalled.xml", "1", "3", "0", "3", "stalled");
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--db", "none", "--seed", "2",
                                "--junit", "one.xml", NULL});
    assert_int_equal(o->code, 0);
    junit_expect(o, "one.xml", "1", "1", "0", "0", NULL);
    /* the checker itself rejects wrong counts */
    run_prog(o, "/usr/bin/python3",
             (const char *[]){JUNIT_CHECK, "one.xml", "1", "2", "0", "0", NULL});
    assert_int_equal(o->code, 1);
    free(o);
}

/* Verdicts the CLI cannot easily produce (invariant, an error, a run the
 * worker never reported) and hostile text, through the writer itself. */
static void test_junit_invariant_and_error_elements(void **state) {
    (void)state;
    scn_junit_case_t cases[4] = {
        {.seed = 1, .verdict = REPORT_VERDICT_INVARIANT, .exit_code = 1, .done = true,
         .availability = -1, .why = "broker_sm_check: <log> & \"index\" mismatch\x01"},
        {.seed = 2, .verdict = REPORT_VERDICT_ERROR, .exit_code = 2, .done = true,
         .availability = -1, .why = "x.lua:3: attempt to call a nil value"},
        {.seed = 3, .done = false, .availability = -1},
        {.seed = 4, .verdict = REPORT_VERDICT_PASS, .exit_code = 0, .done = true,
         .availability = 1},
    };
    const scn_junit_suite_t suite = {SCN_VARIANT_NONE, "acks=<quorum>&x"};
    const scn_junit_doc_t doc = {"a&b.lua", "name\"<&>", NULL, &suite, 1, cases, 4, NULL, NULL};
    char path[128];
    snprintf(path, sizeof path, "%s/inv.xml", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(scn_junit_write(f, &doc), 0);
    assert_int_equal(fclose(f), 0);
    cli_out_t *o = out_new();
    junit_expect(o, "inv.xml", "1", "4", "0", "3", NULL);
    char xml[16384];
    tnet_read_file(path, xml, sizeof xml);
    assert_non_null(strstr(xml, "<error type=\"invariant\" message=\"broker_sm_check: &lt;log&gt;"
                                " &amp; &quot;index&quot; mismatch\">"));
    assert_non_null(strstr(xml, "<error type=\"error\" message=\"x.lua:3:"));
    assert_non_null(strstr(xml, "the worker never reported this run"));
    assert_null(strstr(xml, "\x01"));
    free(o);
}

static void test_junit_bad_path(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--db", "none", "--junit",
                                "/nonexistent/dir/x.xml", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "--junit /nonexistent/dir/x.xml: No such file"));
    assert_null(strstr(o->out, "seed")); /* refused before any run */
    run_cli(o, (const char *[]){"run", FIXTURE("engine_calm.lua"), "--junit", NULL});
    assert_int_equal(o->code, 2);
    free(o);
}

/* "seed|verdict|trace_hash|rows" per run, ordered by seed, into buf: what
 * must be equal between a merged and an unsharded database. */
static void db_digest(const char *name, char *buf, size_t cap) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT seed || '|' || verdict || '|' || trace_hash || '|' ||"
                           " (SELECT count(*) FROM invariants i WHERE i.run_id = r.id) || '|' ||"
                           " (SELECT count(*) FROM series i WHERE i.run_id = r.id) || '|' ||"
                           " (SELECT count(*) FROM metrics i WHERE i.run_id = r.id) || '|' ||"
                           " (SELECT count(*) FROM run_config i WHERE i.run_id = r.id)"
                           " FROM runs r ORDER BY seed, verdict, trace_hash",
                           -1, &st, NULL),
        SQLITE_OK);
    size_t used = 0;
    buf[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        const int n = snprintf(buf + used, cap - used, "%s\n", sqlite3_column_text(st, 0));
        assert_true(n > 0 && (size_t)n < cap - used);
        used += (size_t)n;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_shards_merged_equal_unsharded(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    const char *f = FIXTURE("engine_actions.lua");
    run_cli(o, (const char *[]){"run", f, "--seeds", "3..9", "--db", "all.db", NULL});
    assert_int_equal(o->code, 0);
    run_cli(o, (const char *[]){"run", f, "--seeds", "3..9", "--shard", "0/2", "--db", "s0.db",
                                "--junit", "s0.xml", NULL});
    assert_int_equal(o->code, 0);
    /* s mod 2 == 0: 4, 6, 8 */
    assert_non_null(strstr(o->out, "seed 4 "));
    assert_null(strstr(o->out, "seed 3 "));
    junit_expect(o, "s0.xml", "1", "3", "0", "0", NULL);
    run_cli(o, (const char *[]){"run", f, "--seeds", "3..9", "--shard", "1/2", "--jobs", "2",
                                "--db", "s1.db", "--json", NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "\"seeds\":\"3..9\",\"seed_first\":3,\"seed_last\":9,"
                                   "\"shard\":\"1/2\""));
    assert_non_null(strstr(o->out, "{\"type\":\"run\",\"seed\":3,"));
    assert_non_null(strstr(o->out, "{\"type\":\"run\",\"seed\":9,"));
    assert_null(strstr(o->out, "{\"type\":\"run\",\"seed\":4,"));
    run_cli(o, (const char *[]){"report", "merge", "merged.db", "s0.db", "s1.db", NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "merged.db: 7 runs added in all"));
    static char want[65536], got[65536];
    db_digest("all.db", want, sizeof want);
    db_digest("merged.db", got, sizeof got);
    assert_string_equal(got, want);
    assert_non_null(strstr(want, "9|pass|"));
    /* merging the same files again (and one twice) adds nothing */
    run_cli(o, (const char *[]){"report", "merge", "merged.db", "s1.db", "s0.db", "s1.db", NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "merged.db: 0 runs added in all"));
    db_digest("merged.db", got, sizeof got);
    assert_string_equal(got, want);
    /* an empty shard (more shards than seeds) is fine and runs nothing */
    run_cli(o, (const char *[]){"run", f, "--seeds", "3..4", "--shard", "0/5", "--db", "none",
                                NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "no seeds"));
    free(o);
}

static void test_shard_and_merge_bad_input(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    const char *f = FIXTURE("engine_calm.lua");
    static const char *const bad[] = {"2/2", "1/0", "-1/2", "1", "a/b", "0x1/2", "1/ 2", "/2",
                                      "1/100001"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        run_cli(o, (const char *[]){"run", f, "--shard", bad[i], "--db", "none", NULL});
        assert_int_equal(o->code, 2);
        assert_non_null(strstr(o->err, "--shard wants I/N"));
    }
    run_cli(o, (const char *[]){"run", f, "--seed", "1", "--db", "v.db", NULL});
    assert_int_equal(o->code, 0);
    /* a newer schema version is refused, and nothing is merged */
    char path[128];
    snprintf(path, sizeof path, "%s/v.db", tmpdir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    run_cli(o, (const char *[]){"report", "merge", "out.db", "v.db", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "schema version 3"));
    run_cli(o, (const char *[]){"report", "merge", "out2.db", "stdout", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "not a chaoslab report database"));
    run_cli(o, (const char *[]){"report", "merge", "out.db", "missing.db", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "missing.db: No such file"));
    run_cli(o, (const char *[]){"report", "merge", "out.db", NULL});
    assert_int_equal(o->code, 2);
    free(o);
}

static void test_baseline_weakened_strategy_exits_1(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    const char *f = FIXTURE("engine_teach.lua");
    run_cli(o, (const char *[]){"run", f, "--variant", "strong", "--db", "old.db", NULL});
    assert_int_equal(o->code, 0);
    run_cli(o, (const char *[]){"run", f, "--variant", "strong", "--db", "same.db", NULL});
    assert_int_equal(o->code, 0);
    /* the same strategy again: nothing regressed */
    run_cli(o, (const char *[]){"report", "compare", "--db", "same.db", "--baseline", "old.db",
                                NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "1 groups compared, 0 figures regressed"));
    /* the strong side weakened (fsync=never loses confirmed messages) */
    run_cli(o, (const char *[]){"run", f, "--variant", "strong", "--fsync", "never", "--db",
                                "new.db", NULL});
    assert_int_equal(o->code, 1);
    run_cli(o, (const char *[]){"report", "compare", "--db", "new.db", "--baseline", "old.db",
                                "--match", "variant", NULL});
    assert_int_equal(o->code, 1);
    assert_non_null(strstr(o->out, "config differs: fsync always -> never"));
    assert_non_null(strstr(o->out, "REGRESSED pass_rate    1.0000 -> 0.0000"));
    /* by whole configuration the weakened runs have no baseline: reported */
    run_cli(o, (const char *[]){"report", "compare", "--db", "new.db", "--baseline", "old.db",
                                NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "nothing compared"));
    assert_non_null(strstr(o->out, "1 groups without a baseline"));
    /* a tolerance that allows the whole drop */
    run_cli(o, (const char *[]){"report", "compare", "--db", "new.db", "--baseline", "old.db",
                                "--match=variant", "--tolerance", "1", NULL});
    assert_int_equal(o->code, 0);
    free(o);
}

/* Write `runs` runs of one identity with the given pass count and figures. */
static void baseline_db(const char *name, int runs, int passed, double availability,
                        double p99_ns) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(path, &db, NULL, 0), 0);
    const report_kv_t config[] = {{"acks", "quorum"}, {"workload.rate", "100"}};
    for (int i = 0; i < runs; i++) {
        const report_metric_t metrics[] = {{"availability", availability, "ratio"},
                                           {"publish_confirm_p50", p99_ns / 10, "ns"},
                                           {"publish_confirm_p99", p99_ns, "ns"}};
        const report_run_t run = {
            .scenario_path = "s.lua", .scenario_name = "s", .seed = (uint64_t)i + 1,
            .config = config, .config_count = 2,
            .verdict = i < passed ? REPORT_VERDICT_PASS : REPORT_VERDICT_FAIL,
            .trace_hash = (uint64_t)i, .exit_code = i < passed ? 0 : 1,
            .reproduce = "chaoslab run s.lua", .scenario_hash = "00000000000000aa",
            .binary_version = name, /* another build: never part of the pairing */
            .metrics = metrics, .metric_count = 3};
        assert_int_equal(report_db_write_run(db, &run, NULL), 0);
    }
    report_db_close(db);
}

static void test_baseline_by_configuration(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    baseline_db("b_old.db", 10, 10, 0.99, 1e6);
    baseline_db("b_rate.db", 10, 9, 0.99, 1e6);   /* pass rate 1.0 -> 0.9 */
    baseline_db("b_avail.db", 10, 10, 0.95, 1e6); /* availability 0.99 -> 0.95 */
    baseline_db("b_lat.db", 10, 10, 0.99, 1.2e6); /* p99 +20% */
    baseline_db("b_ok.db", 10, 10, 0.99, 1.05e6); /* p99 +5%: within 10% */
    static const struct { const char *db, *tolerance, *lat, *what; int code; } cases[] = {
        {"b_rate.db", NULL, NULL, "REGRESSED pass_rate", 1},
        {"b_rate.db", "0.1", NULL, "0 figures regressed", 0},
        {"b_avail.db", NULL, NULL, "REGRESSED availability", 1},
        {"b_avail.db", "0.05", NULL, "0 figures regressed", 0},
        {"b_lat.db", NULL, NULL, "REGRESSED confirm_p99", 1},
        {"b_lat.db", NULL, "0.25", "0 figures regressed", 0},
        {"b_ok.db", NULL, NULL, "0 figures regressed", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[16] = {"report", "compare", "--db", cases[i].db, "--baseline",
                                "b_old.db"};
        int n = 6;
        if (cases[i].tolerance) args[n++] = "--tolerance", args[n++] = cases[i].tolerance;
        if (cases[i].lat) args[n++] = "--latency-tolerance", args[n++] = cases[i].lat;
        args[n] = NULL;
        run_cli(o, args);
        if (o->code != cases[i].code || strstr(o->out, cases[i].what) == NULL)
            fprintf(stderr, "case %zu:\n%s%s", i, o->out, o->err);
        assert_int_equal(o->code, cases[i].code);
        assert_non_null(strstr(o->out, cases[i].what));
        assert_non_null(strstr(o->out, "1 groups compared"));
    }
    assert_null(strstr(o->out, "note:")); /* same seeds on both sides */
    baseline_db("b_more.db", 12, 12, 0.99, 1e6);
    run_cli(o, (const char *[]){"report", "compare", "--db", "b_more.db", "--baseline",
                                "b_old.db", NULL});
    assert_int_equal(o->code, 0);
    assert_non_null(strstr(o->out, "note: 12 seeds here, 10 in the baseline"));
    /* improvements are never regressions */
    run_cli(o, (const char *[]){"report", "compare", "--db", "b_old.db", "--baseline",
                                "b_rate.db", NULL});
    assert_int_equal(o->code, 0);
    free(o);
}

static void test_baseline_bad_input(void **state) {
    (void)state;
    cli_out_t *o = out_new();
    baseline_db("c_old.db", 1, 1, 1, 1);
    static const char *const bad[][2] = {
        {"--tolerance", "-0.1"}, {"--tolerance", "2"}, {"--tolerance", "x"},
        {"--latency-tolerance", "-1"}, {"--match", "seed"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        run_cli(o, (const char *[]){"report", "compare", "--db", "c_old.db", "--baseline",
                                    "c_old.db", bad[i][0], bad[i][1], NULL});
        assert_int_equal(o->code, 2);
        assert_non_null(strstr(o->err, bad[i][0]));
    }
    run_cli(o, (const char *[]){"report", "compare", "--db", "c_old.db", "--tolerance", "0.1",
                                NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "need --baseline"));
    run_cli(o, (const char *[]){"report", "compare", "--db", "c_old.db", "--baseline",
                                "nope.db", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "nope.db: No such file"));
    run_cli(o, (const char *[]){"report", "compare", "--db", "c_old.db", "--baseline",
                                "stdout", NULL});
    assert_int_equal(o->code, 2);
    assert_non_null(strstr(o->err, "not a chaoslab report database"));
    free(o);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/chaoslab_ci_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_junit_counts_parse),
        cmocka_unit_test(test_junit_invariant_and_error_elements),
        cmocka_unit_test(test_junit_bad_path),
        cmocka_unit_test(test_shards_merged_equal_unsharded),
        cmocka_unit_test(test_shard_and_merge_bad_input),
        cmocka_unit_test(test_baseline_weakened_strategy_exits_1),
        cmocka_unit_test(test_baseline_by_configuration),
        cmocka_unit_test(test_baseline_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
