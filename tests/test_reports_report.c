/*
 * tests/test_reports_report.c — the SQLite report store: writer, schema
 * checks, queries and the `chaoslab report` command.
 *
 * Every test works in its own directory under /tmp, removed in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "reports/report.h"

#define TEST_PATH_SIZE 256
#define TEST_WRITERS 2
#define TEST_RUNS_PER_WRITER 200

typedef struct fixture {
    char dir[TEST_PATH_SIZE];
    char db[TEST_PATH_SIZE + 16];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/chaoslab-test-reports-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/runs.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char path[TEST_PATH_SIZE + 32];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s%s", f->db, suffixes[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/other.db", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- a complete sample run ---- */

static const report_kv_t sample_config[] = {
    {"replicas", "3"}, {"acks", "quorum"}, {"fsync", "always"},
    {"election", "safe"}, {"dedup", "on"}};

static const report_invariant_t sample_invariants[] = {
    {"no_loss", 0, REPORT_EXPECT_PASS, 0, "{\"confirmed\":100,\"lost\":3}"},
    {"no_duplicates", 1, REPORT_EXPECT_PASS, 1, "duplicates=0"},
    {"availability>=0.9", 1, REPORT_EXPECT_PASS, 1, NULL}};

static const report_metric_t sample_metrics[] = {
    {"availability", 0.95, "ratio"},
    {"publish_confirm_p99", 1250000.0, "ns"}};

static const report_sample_t sample_series[] = {
    {0, 1000000000u, 100, 98, 97, 2, 0.98},
    {1000000000u, 1000000000u, 100, 50, 60, 50, 0.5}};

static const report_fault_t sample_faults[] = {
    {2000000000u, "partition", "n1|n2,n3", "majority side n2,n3"},
    {7500000000u, "heal", "", NULL}};

static const report_violation_t sample_violations[] = {
    {"no_loss", "p1-42", 12500000000u, "confirmed but never consumed"},
    {"no_loss", "p1-43", 12600000000u, NULL}};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static report_run_t sample_run(void)
{
    report_run_t run = {
        .scenario_path = "scenarios/leader_crash.lua",
        .scenario_name = "leader_crash",
        .seed = UINT64_C(9223372036854775813), /* 2^63 + 5 */
        .config = sample_config,
        .config_count = COUNT(sample_config),
        .verdict = REPORT_VERDICT_FAIL,
        .trace_hash = UINT64_C(0xfedcba9876543210),
        .sim_time_ns = UINT64_C(30000000000),
        .wall_time_ns = UINT64_C(412000000),
        .events = 123456,
        .exit_code = 1,
        .reproduce = "chaoslab run scenarios/leader_crash.lua "
                     "--seed 9223372036854775813",
        .invariants = sample_invariants,
        .invariant_count = COUNT(sample_invariants),
        .metrics = sample_metrics,
        .metric_count = COUNT(sample_metrics),
        .series = sample_series,
        .series_count = COUNT(sample_series),
        .faults = sample_faults,
        .fault_count = COUNT(sample_faults),
        .violations = sample_violations,
        .violation_count = COUNT(sample_violations),
    };
    return run;
}

/* A small run for list/compare tests. */
static report_run_t small_run(const char *scenario, const report_kv_t *config,
                              size_t config_count, uint64_t seed,
                              int no_loss_held)
{
    static const report_invariant_t held[] = {
        {"no_loss", 1, REPORT_EXPECT_PASS, 1, NULL},
        {"no_duplicates", 1, REPORT_EXPECT_PASS, 1, NULL}};
    static const report_invariant_t lost[] = {
        {"no_loss", 0, REPORT_EXPECT_PASS, 0, NULL},
        {"no_duplicates", 1, REPORT_EXPECT_PASS, 1, NULL}};
    report_run_t run = {
        .scenario_path = scenario,
        .scenario_name = scenario,
        .seed = seed,
        .config = config,
        .config_count = config_count,
        .verdict = no_loss_held ? REPORT_VERDICT_PASS : REPORT_VERDICT_FAIL,
        .trace_hash = seed * 31,
        .sim_time_ns = 1000,
        .wall_time_ns = 1000,
        .events = 10,
        .exit_code = no_loss_held ? 0 : 1,
        .reproduce = "chaoslab run x.lua --seed 1",
        .invariants = no_loss_held ? held : lost,
        .invariant_count = 2,
    };
    return run;
}

static int64_t count_rows(const char *db_path, const char *table)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY,
                                     NULL), SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void exec_sql(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Output captured from a query or the CLI; free with free(). */
typedef struct capture {
    char *text;
    size_t size;
    FILE *file;
} capture_t;

static void capture_begin(capture_t *c)
{
    memset(c, 0, sizeof *c);
    c->file = open_memstream(&c->text, &c->size);
    assert_non_null(c->file);
}

static char *capture_end(capture_t *c)
{
    fclose(c->file);
    return c->text;
}

/* Run `chaoslab report ARGS...` (NULL-terminated); returns the exit code
 * and the captured stdout/stderr (caller frees). */
static int cli(char **out_text, char **err_text, ...)
{
    char *argv[32] = {"report"};
    int argc = 1;
    va_list ap;
    va_start(ap, err_text);
    for (char *a = va_arg(ap, char *); a != NULL; a = va_arg(ap, char *)) {
        assert_true(argc < 31);
        argv[argc++] = a;
    }
    va_end(ap);
    capture_t out, err;
    capture_begin(&out);
    capture_begin(&err);
    int code = report_cli_main(argc, argv, out.file, err.file);
    *out_text = capture_end(&out);
    *err_text = capture_end(&err);
    return code;
}

static void write_sample(const char *path, int64_t *id)
{
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(path, &db, NULL, 0), 0);
    report_run_t run = sample_run();
    assert_int_equal(report_db_write_run(db, &run, id), 0);
    report_db_close(db);
}

/* ---- writer + show ---- */

static void test_write_then_show(void **state)
{
    fixture_t *f = *state;
    int64_t id = 0;
    write_sample(f->db, &id);
    assert_int_equal(id, 1);
    assert_int_equal(count_rows(f->db, "run_config"), 5);
    assert_int_equal(count_rows(f->db, "invariants"), 3);
    assert_int_equal(count_rows(f->db, "series"), 2);

    report_db_t *db = NULL;
    assert_int_equal(report_db_open_existing(f->db, &db, NULL, 0), 0);
    capture_t c;
    capture_begin(&c);
    assert_int_equal(report_query_show(db, id, 0, c.file), 0);
    char *text = capture_end(&c);
    report_db_close(db);

    assert_non_null(strstr(text, "run 1: leader_crash "
                                 "(scenarios/leader_crash.lua)"));
    assert_non_null(strstr(text, "seed        9223372036854775813"));
    assert_non_null(strstr(text, "trace hash  fedcba9876543210"));
    assert_non_null(strstr(text, "verdict     fail (exit code 1)"));
    assert_non_null(strstr(text, "sim time    30.000s (30000000000 ns)"));
    assert_non_null(strstr(text, "strategy    acks=quorum dedup=on "
                                 "election=safe fsync=always replicas=3"));
    /* config keeps the scenario's order */
    char *replicas = strstr(text, "replicas  3");
    char *acks = strstr(text, "acks      quorum");
    assert_non_null(replicas);
    assert_non_null(acks);
    assert_true(replicas < acks);
    assert_non_null(strstr(text, "no_loss            VIOLATED  pass      "
                                 "NO           {\"confirmed\":100,"
                                 "\"lost\":3}"));
    assert_non_null(strstr(text, "duplicates=0"));
    assert_non_null(strstr(text, "availability            0.95  ratio"));
    assert_non_null(strstr(text, "publish_confirm_p99  1250000  ns"));
    assert_non_null(strstr(text, "50.0%"));
    assert_non_null(strstr(text, "2.000s  partition  n1|n2,n3  majority"));
    assert_non_null(strstr(text, "12.500s  no_loss    p1-42    confirmed"));
    assert_non_null(strstr(text, "12.600s  no_loss    p1-43"));
    free(text);
}

static void test_show_json(void **state)
{
    fixture_t *f = *state;
    int64_t id = 0;
    write_sample(f->db, &id);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "show", "1", "--db", f->db, "--json",
                         NULL), 0);
    assert_string_equal(err, "");
    assert_non_null(strstr(out, "\"seed\":9223372036854775813"));
    assert_non_null(strstr(out, "\"trace_hash\":\"fedcba9876543210\""));
    assert_non_null(strstr(out, "\"config\":{\"replicas\":\"3\","
                                "\"acks\":\"quorum\""));
    assert_non_null(strstr(out, "\"passed\":false"));
    assert_non_null(strstr(out, "\"figures\":{\"confirmed\":100,"
                                "\"lost\":3}"));
    assert_non_null(strstr(out, "\"figures\":\"duplicates=0\""));
    assert_non_null(strstr(out, "\"figures\":null"));
    assert_non_null(strstr(out, "\"value\":0.95"));
    assert_non_null(strstr(out, "\"message_id\":\"p1-42\",\"t_ns\":"
                                "12500000000"));
    assert_non_null(strstr(out, "\"availability\":0.5"));
    free(out);
    free(err);
}

static void test_show_unknown_run(void **state)
{
    fixture_t *f = *state;
    int64_t id = 0;
    write_sample(f->db, &id);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "show", "99", "--db", f->db, NULL), 1);
    assert_non_null(strstr(err, "run 99 not found"));
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "show", "99", "--json", "--db", f->db,
                         NULL), 1);
    free(out);
    free(err);
}

/* ---- atomicity and validation ---- */

static void assert_no_rows(const char *path)
{
    static const char *const tables[] = {"runs", "run_config", "invariants",
                                         "metrics", "series", "faults",
                                         "violations"};
    for (size_t i = 0; i < COUNT(tables); i++) {
        assert_int_equal(count_rows(path, tables[i]), 0);
    }
}

static void test_invalid_field_rolls_back(void **state)
{
    fixture_t *f = *state;
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(f->db, &db, NULL, 0), 0);

    /* The last row of the last table is bad: every earlier row was already
     * inserted when the schema refuses it. */
    report_violation_t bad_violations[2];
    memcpy(bad_violations, sample_violations, sizeof bad_violations);
    bad_violations[1].invariant = NULL;
    report_run_t run = sample_run();
    run.violations = bad_violations;
    int64_t id = -7;
    assert_int_equal(report_db_write_run(db, &run, &id), REPORT_EINVAL);
    assert_int_equal(id, -7);
    assert_non_null(strstr(report_db_errmsg(db), "violations"));
    assert_no_rows(f->db);

    report_metric_t nan_metrics[2];
    memcpy(nan_metrics, sample_metrics, sizeof nan_metrics);
    nan_metrics[1].value = NAN;
    run = sample_run();
    run.metrics = nan_metrics;
    assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    assert_non_null(strstr(report_db_errmsg(db), "metrics[1].value"));
    assert_no_rows(f->db);

    report_sample_t bad_series[2];
    memcpy(bad_series, sample_series, sizeof bad_series);
    bad_series[1].availability = 1.5; /* CHECK constraint */
    run = sample_run();
    run.series = bad_series;
    assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    assert_no_rows(f->db);

    run = sample_run();
    run.sim_time_ns = UINT64_MAX; /* would be stored negative */
    assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    assert_non_null(strstr(report_db_errmsg(db), "sim_time_ns"));
    assert_no_rows(f->db);

    /* The same handle still writes a good run, and it gets id 1: the
     * rolled-back attempts left nothing behind, not even an id. */
    run = sample_run();
    assert_int_equal(report_db_write_run(db, &run, &id), 0);
    assert_int_equal(id, 1);
    report_db_close(db);
    assert_int_equal(count_rows(f->db, "violations"), 2);
}

static void test_bad_runs_rejected(void **state)
{
    fixture_t *f = *state;
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(f->db, &db, NULL, 0), 0);
    report_run_t run = sample_run();

    static const report_kv_t spaced[] = {{"acks", "quorum leader"}};
    static const report_kv_t equals[] = {{"a=b", "1"}};
    static const report_kv_t twice[] = {{"acks", "quorum"}, {"acks", "x"}};
    static const report_kv_t empty[] = {{"acks", ""}};
    const report_kv_t *bad[] = {spaced, equals, twice, empty};
    size_t counts[] = {1, 1, 2, 1};
    for (size_t i = 0; i < COUNT(bad); i++) {
        run.config = bad[i];
        run.config_count = counts[i];
        assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    }
    run = sample_run();
    run.config_count = REPORT_CONFIG_MAX + 1;
    assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    run = sample_run();
    run.faults = NULL; /* count 2, no array */
    assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    run = sample_run();
    run.verdict = (report_verdict_t)7;
    assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    run = sample_run();
    run.scenario_name = "";
    assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    assert_int_equal(report_db_write_run(db, NULL, NULL), REPORT_EINVAL);
    report_db_close(db);
    assert_no_rows(f->db);
}

/* ---- concurrency ---- */

static int writer_child(const char *path, int writer)
{
    report_db_t *db = NULL;
    char msg[REPORT_ERRMSG_SIZE_MAX];
    if (report_db_open(path, &db, msg, sizeof msg) != 0) {
        fprintf(stderr, "child %d open: %s\n", writer, msg);
        return 1;
    }
    static const report_kv_t config[] = {{"acks", "quorum"}};
    for (int i = 0; i < TEST_RUNS_PER_WRITER; i++) {
        uint64_t seed = (uint64_t)writer * 100000u + (uint64_t)i;
        report_run_t run = small_run("race", config, 1, seed, i % 2);
        int rc = report_db_write_run(db, &run, NULL);
        if (rc != 0) {
            fprintf(stderr, "child %d run %d: %s\n", writer, i,
                    report_db_errmsg(db));
            report_db_close(db);
            return 1;
        }
    }
    report_db_close(db);
    return 0;
}

static void test_concurrent_writers(void **state)
{
    fixture_t *f = *state;
    pid_t pids[TEST_WRITERS];
    fflush(NULL);
    for (int w = 0; w < TEST_WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            _exit(writer_child(f->db, w)); /* both race to create the file */
        }
    }
    for (int w = 0; w < TEST_WRITERS; w++) {
        int status = 0;
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    int64_t total = TEST_WRITERS * TEST_RUNS_PER_WRITER;
    assert_int_equal(count_rows(f->db, "runs"), total);
    assert_int_equal(count_rows(f->db, "(SELECT DISTINCT seed FROM runs)"),
                     total);
    assert_int_equal(count_rows(f->db, "invariants"), 2 * total);
    assert_int_equal(count_rows(f->db, "schema_version"), 1);
}

/* ---- schema version ---- */

static void test_newer_schema_refused(void **state)
{
    fixture_t *f = *state;
    int64_t id = 0;
    write_sample(f->db, &id);
    exec_sql(f->db, "PRAGMA user_version = 3");
    report_db_t *db = NULL;
    char msg[REPORT_ERRMSG_SIZE_MAX];
    assert_int_equal(report_db_open(f->db, &db, msg, sizeof msg),
                     REPORT_EVERSION);
    assert_null(db);
    assert_non_null(strstr(msg, "schema version 3 is newer"));
    assert_int_equal(report_db_open_existing(f->db, &db, msg, sizeof msg),
                     REPORT_EVERSION);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "list", "--db", f->db, NULL), 2);
    assert_non_null(strstr(err, "newer"));
    free(out);
    free(err);

    /* our own version opens fine and records itself once */
    exec_sql(f->db, "PRAGMA user_version = 2");
    assert_int_equal(report_db_open(f->db, &db, NULL, 0), 0);
    report_db_close(db);
    assert_int_equal(count_rows(f->db, "schema_version"), 1);
}

static void test_foreign_db_refused(void **state)
{
    fixture_t *f = *state;
    exec_sql(f->db, "CREATE TABLE something (x)");
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(f->db, &db, NULL, 0), REPORT_ENOTDB);
    assert_null(db);

    char other[TEST_PATH_SIZE + 16];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    FILE *junk = fopen(other, "w");
    assert_non_null(junk);
    fputs("this is not an sqlite database, just some text that is long "
          "enough to have a header ........................................",
          junk);
    fclose(junk);
    assert_int_equal(report_db_open_existing(other, &db, NULL, 0),
                     REPORT_ENOTDB);
    assert_null(db);
}

/* ---- list and compare ---- */

static const report_kv_t strong[] = {{"acks", "quorum"}, {"fsync", "always"}};
static const report_kv_t weak[] = {{"fsync", "never"}, {"acks", "leader"}};

static void write_sweep(const char *path)
{
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(path, &db, NULL, 0), 0);
    /* weak: seeds 1..3, no_loss holds once; strong: seeds 1..2, always */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        report_run_t run = small_run("crash", weak, 2, seed, seed == 2);
        assert_int_equal(report_db_write_run(db, &run, NULL), 0);
    }
    for (uint64_t seed = 1; seed <= 2; seed++) {
        report_run_t run = small_run("crash", strong, 2, seed, 1);
        assert_int_equal(report_db_write_run(db, &run, NULL), 0);
    }
    report_run_t other = small_run("partition", strong, 2, 9, 1);
    assert_int_equal(report_db_write_run(db, &other, NULL), 0);
    report_db_close(db);
}

static void test_list(void **state)
{
    fixture_t *f = *state;
    write_sweep(f->db);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "list", "--db", f->db, NULL), 0);
    /* newest first, aligned under the headers */
    char *header = strstr(out, "ID  TIME");
    assert_ptr_equal(header, out);
    char *six = strstr(out, "\n 6  ");
    char *one = strstr(out, "\n 1  ");
    assert_non_null(six);
    assert_non_null(one);
    assert_true(six < one);
    assert_non_null(strstr(out, "partition     9  pass     "));
    assert_non_null(strstr(out, "acks=leader fsync=never"));
    size_t strategy_col = (size_t)(strstr(out, "STRATEGY") - out);
    char *line = strchr(out, '\n') + 1;
    assert_true(strncmp(line + strategy_col, "acks=quorum", 11) == 0);
    free(out);
    free(err);

    assert_int_equal(cli(&out, &err, "list", "--db", f->db, "--scenario",
                         "crash", "--verdict=fail", NULL), 0);
    assert_null(strstr(out, "partition"));
    assert_null(strstr(out, " pass "));
    assert_non_null(strstr(out, "\n 3  "));
    assert_non_null(strstr(out, "\n 1  "));
    assert_null(strstr(out, "\n 2  "));
    free(out);
    free(err);

    assert_int_equal(cli(&out, &err, "list", "--db", f->db, "--limit", "2",
                         "--json", NULL), 0);
    assert_non_null(strstr(out, "{\"runs\":[\n {\"id\":6,"));
    assert_non_null(strstr(out, "{\"id\":5,"));
    assert_null(strstr(out, "{\"id\":4,"));
    assert_non_null(strstr(out, "\"strategy\":\"acks=quorum fsync=always\""));
    free(out);
    free(err);

    assert_int_equal(cli(&out, &err, "list", "--db", f->db, "--scenario",
                         "nothing-here", NULL), 0);
    assert_string_equal(out, "no runs\n");
    free(out);
    free(err);
}

static void test_compare(void **state)
{
    fixture_t *f = *state;
    write_sweep(f->db);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "compare", "--scenario", "crash",
                         "--db", f->db, NULL), 0);
    assert_string_equal(err, "");
    assert_null(strstr(out, "partition"));
    /* counts, then the identity (no file hash or binary stored here: "-"),
     * then the strategy */
    assert_non_null(strstr(out, "crash        3      3     1     2        0"
                                "          0      0   33.3%  -/"));
    assert_non_null(strstr(out, "crash        2      2     2     0        0"
                                "          0      0  100.0%  -/"));
    assert_non_null(strstr(out, " -        acks=leader fsync=never\n"));
    assert_non_null(strstr(out, " -        acks=quorum fsync=always\n"));
    assert_non_null(strstr(out, "crash     no_loss        pass         3"
                                "     1   33.3%         33.3%  -/"));
    assert_non_null(strstr(out, "crash     no_loss        pass         2"
                                "     2  100.0%        100.0%  -/"));
    free(out);
    free(err);

    assert_int_equal(cli(&out, &err, "compare", "--json", "--db", f->db,
                         NULL), 0);
    assert_non_null(strstr(out, "\"strategy\":\"acks=leader fsync=never\","));
    assert_non_null(strstr(out, "\"scenario_hash\":\"\",\"binary_version\":"
                                "\"\",\"runs\":3,\"seeds\":3,\"pass\":1,"
                                "\"fail\":2,\"stalled\":0,\"invariant\":0,"
                                "\"error\":0,\"pass_rate\":0.333333333333333"));
    assert_non_null(strstr(out, "\"scenario\":\"partition\""));
    assert_non_null(strstr(out, "\"invariant\":\"no_loss\",\"expected\":"
                                "\"pass\",\"strategy\":\"acks=leader "
                                "fsync=never\",\"config_hash\":"));
    assert_non_null(strstr(out, "\"binary_version\":\"\",\"runs\":3,"
                                "\"held\":1"));
    free(out);
    free(err);
}

/* Rows of the first `report compare` table (one per identity). */
static int compare_groups(const char *db_path)
{
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "compare", "--db", db_path, NULL), 0);
    const char *end = strstr(out, "invariants by strategy");
    assert_non_null(end);
    int rows = 0;
    for (const char *p = out; (p = strstr(p, "\n  ident ")) != NULL && p < end;
         p++) {
        rows++;
    }
    free(out);
    free(err);
    return rows;
}

static void write_identity(const char *db_path, const report_kv_t *config,
                           size_t count, const char *file_hash,
                           const char *version, uint64_t seed)
{
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(db_path, &db, NULL, 0), 0);
    report_run_t run = small_run("ident", config, count, seed, 1);
    run.scenario_hash = file_hash;
    run.binary_version = version;
    assert_int_equal(report_db_write_run(db, &run, NULL), 0);
    report_db_close(db);
}

static void test_compare_never_merges_identities(void **state)
{
    fixture_t *f = *state;
    /* Same strategy keys; a setting (dotted key) differs: two groups, one
     * strategy string. A "run." key (the swarm's per-seed draw) does not
     * split a group. */
    const report_kv_t a[] = {{"acks", "quorum"}, {"workload.rate", "100"},
                             {"run.nemesis", "crash,kill"}};
    const report_kv_t a2[] = {{"acks", "quorum"}, {"workload.rate", "100"},
                              {"run.nemesis", "clock"}};
    const report_kv_t b[] = {{"acks", "quorum"}, {"workload.rate", "200"}};
    write_identity(f->db, a, COUNT(a), "1111", "v1", 1);
    write_identity(f->db, a2, COUNT(a2), "1111", "v1", 2);
    assert_int_equal(compare_groups(f->db), 1);
    write_identity(f->db, b, COUNT(b), "1111", "v1", 3);
    assert_int_equal(compare_groups(f->db), 2);
    /* an edited scenario file, then another binary: a group each */
    write_identity(f->db, a, COUNT(a), "2222", "v1", 4);
    assert_int_equal(compare_groups(f->db), 3);
    write_identity(f->db, a, COUNT(a), "1111", "v2", 5);
    assert_int_equal(compare_groups(f->db), 4);
    /* dotted keys stay out of the strategy column, in the config table */
    assert_int_equal(count_rows(f->db, "(SELECT 1 FROM runs WHERE strategy ="
                                       " 'acks=quorum')"), 5);
    assert_int_equal(count_rows(f->db, "(SELECT DISTINCT config_hash FROM"
                                       " runs)"), 2);
}

static void test_stalled_and_invariant_verdicts_stored(void **state)
{
    fixture_t *f = *state;
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(f->db, &db, NULL, 0), 0);
    report_run_t run = small_run("liveness", strong, 2, 1, 1);
    run.verdict = REPORT_VERDICT_STALLED;
    run.exit_code = 1;
    assert_int_equal(report_db_write_run(db, &run, NULL), 0);
    run.verdict = REPORT_VERDICT_INVARIANT;
    run.seed = 2;
    assert_int_equal(report_db_write_run(db, &run, NULL), 0);
    run.verdict = (report_verdict_t)5; /* no such verdict */
    assert_int_equal(report_db_write_run(db, &run, NULL), REPORT_EINVAL);
    report_db_close(db);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "list", "--verdict", "stalled", "--db",
                         f->db, NULL), 0);
    assert_non_null(strstr(out, "stalled"));
    assert_null(strstr(out, "invariant"));
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "compare", "--db", f->db, NULL), 0);
    assert_non_null(strstr(out, "liveness     2      2     0     0        1"
                                "          1      0   0.0%"));
    free(out);
    free(err);
}

/* A version 1 database (the schema before stalled/invariant verdicts and
 * run identities) is upgraded in place: its runs stay readable, keep their
 * child rows, and never group with new runs. */
static void test_v1_database_upgraded(void **state)
{
    fixture_t *f = *state;
    exec_sql(f->db,
        "CREATE TABLE schema_version (version INTEGER NOT NULL,"
        " created_at TEXT NOT NULL DEFAULT 'x');"
        "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " created_at TEXT NOT NULL DEFAULT 'x', scenario_path TEXT NOT NULL,"
        " scenario TEXT NOT NULL, seed INTEGER NOT NULL, strategy TEXT NOT NULL,"
        " verdict TEXT NOT NULL CHECK (verdict IN ('pass','fail','error')),"
        " trace_hash TEXT NOT NULL, sim_time_ns INTEGER NOT NULL,"
        " wall_time_ns INTEGER NOT NULL, events INTEGER NOT NULL,"
        " exit_code INTEGER NOT NULL, reproduce TEXT NOT NULL);"
        "CREATE TABLE run_config (run_id INTEGER NOT NULL REFERENCES runs (id)"
        " ON DELETE CASCADE, position INTEGER NOT NULL, key TEXT NOT NULL,"
        " value TEXT NOT NULL, PRIMARY KEY (run_id, position));"
        "CREATE TABLE invariants (run_id INTEGER NOT NULL REFERENCES runs (id)"
        " ON DELETE CASCADE, position INTEGER NOT NULL, name TEXT NOT NULL,"
        " passed INTEGER NOT NULL, expected TEXT NOT NULL, as_expected INTEGER"
        " NOT NULL, figures TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id,"
        " position));"
        "CREATE TABLE metrics (run_id INTEGER NOT NULL, position INTEGER NOT"
        " NULL, name TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL);"
        "CREATE TABLE series (run_id INTEGER NOT NULL, position INTEGER NOT"
        " NULL, t_ns INTEGER, interval_ns INTEGER, published INTEGER,"
        " confirmed INTEGER, consumed INTEGER, failed INTEGER, availability"
        " REAL);"
        "CREATE TABLE faults (run_id INTEGER NOT NULL, position INTEGER NOT"
        " NULL, t_ns INTEGER, kind TEXT, target TEXT, detail TEXT);"
        "CREATE TABLE violations (run_id INTEGER NOT NULL, position INTEGER"
        " NOT NULL, invariant TEXT, message_id TEXT, t_ns INTEGER, detail"
        " TEXT);"
        "INSERT INTO runs (scenario_path, scenario, seed, strategy, verdict,"
        " trace_hash, sim_time_ns, wall_time_ns, events, exit_code, reproduce)"
        " VALUES ('old.lua', 'ident', 7, 'acks=quorum', 'pass',"
        " '0000000000000001', 1, 1, 1, 0, 'chaoslab run old.lua --seed 7');"
        "INSERT INTO run_config VALUES (1, 0, 'acks', 'quorum');"
        "INSERT INTO invariants VALUES (1, 0, 'no_loss', 1, 'pass', 1, '');"
        "INSERT INTO schema_version (version) VALUES (1);"
        "PRAGMA user_version = 1;");
    const report_kv_t a[] = {{"acks", "quorum"}};
    write_identity(f->db, a, COUNT(a), "1111", "v1", 8);
    assert_int_equal(count_rows(f->db, "runs"), 2);
    assert_int_equal(count_rows(f->db, "run_config"), 2);
    assert_int_equal(count_rows(f->db, "schema_version"), 2);
    assert_int_equal(compare_groups(f->db), 2); /* old and new apart */
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "show", "1", "--db", f->db, NULL), 0);
    assert_non_null(strstr(out, "chaoslab run old.lua --seed 7"));
    assert_non_null(strstr(out, "no_loss"));
    free(out);
    free(err);
    /* the upgraded table takes the new verdicts */
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(f->db, &db, NULL, 0), 0);
    report_run_t run = small_run("ident", a, COUNT(a), 9, 1);
    run.verdict = REPORT_VERDICT_STALLED;
    assert_int_equal(report_db_write_run(db, &run, NULL), 0);
    report_db_close(db);
}

static void test_terminal_output_is_clean(void **state)
{
    fixture_t *f = *state;
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(f->db, &db, NULL, 0), 0);
    report_fault_t faults[2] = {{5, "crash", "n1", "evil\x1b[2Jdetail\nnext"},
                                {6, "pause", "n2", "caf\xc3\xa9 \xff\xc0\xaf!"}};
    report_run_t run = sample_run();
    run.faults = faults;
    run.fault_count = 2;
    assert_int_equal(report_db_write_run(db, &run, NULL), 0);
    report_db_close(db);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "show", "1", "--db", f->db, NULL), 0);
    assert_null(strchr(out, '\x1b'));
    assert_non_null(strstr(out, "evil?[2Jdetail next"));
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "show", "1", "--json", "--db", f->db,
                         NULL), 0);
    assert_non_null(strstr(out, "evil\\u001b[2Jdetail\\nnext"));
    /* invalid UTF-8 (a stray byte, an overlong '/') never reaches JSON */
    assert_non_null(strstr(out, "caf\xc3\xa9 \\ufffd\\ufffd\\ufffd!"));
    free(out);
    free(err);
}

/* ---- the command line ---- */

static void test_cli_missing_db(void **state)
{
    fixture_t *f = *state;
    char *out = NULL, *err = NULL;
    const char *subs[][2] = {{"list", NULL}, {"show", "1"},
                             {"compare", NULL}};
    for (size_t i = 0; i < COUNT(subs); i++) {
        int code = subs[i][1]
            ? cli(&out, &err, subs[i][0], subs[i][1], "--db", f->db, NULL)
            : cli(&out, &err, subs[i][0], "--db", f->db, NULL);
        assert_int_equal(code, 2);
        assert_non_null(strstr(err, "no such database file"));
        assert_string_equal(out, "");
        free(out);
        free(err);
        assert_int_not_equal(access(f->db, F_OK), 0); /* not created */
    }
}

static void test_cli_bad_arguments(void **state)
{
    fixture_t *f = *state;
    int64_t id = 0;
    write_sample(f->db, &id);
    char *out = NULL, *err = NULL;
    char *db = f->db;
#define BAD(...)                                                        \
    do {                                                                \
        assert_int_equal(cli(&out, &err, __VA_ARGS__, NULL), 2);        \
        assert_string_not_equal(err, "");                               \
        free(out);                                                      \
        free(err);                                                      \
    } while (0)
    BAD("frobnicate");
    BAD("list", "--db", db, "--limit", "0");
    BAD("list", "--db", db, "--limit", "-3");
    BAD("list", "--db", db, "--limit", "12abc");
    BAD("list", "--db", db, "--limit", "100001");
    BAD("list", "--db", db, "--verdict", "maybe");
    BAD("list", "--db", db, "--bogus");
    BAD("list", "--db", db, "extra");
    BAD("list", "--db");
    BAD("list", "--db=");
    BAD("show", "--db", db);
    BAD("show", "abc", "--db", db);
    BAD("show", "0", "--db", db);
    BAD("show", "1", "2", "--db", db);
    BAD("show", "1", "--scenario", "x", "--db", db);
    BAD("compare", "--limit", "3", "--db", db);
    BAD("compare", "--verdict", "pass", "--db", db);
#undef BAD
    char *argv[] = {"report"};
    capture_t o, e;
    capture_begin(&o);
    capture_begin(&e);
    assert_int_equal(report_cli_main(1, argv, o.file, e.file), 2);
    out = capture_end(&o);
    err = capture_end(&e);
    assert_non_null(strstr(err, "usage: chaoslab report list"));
    free(out);
    free(err);
}

static void test_cli_help(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "--help", NULL), 0);
    assert_non_null(strstr(out, "usage: chaoslab report list"));
    assert_non_null(strstr(out, "exit status"));
    assert_string_equal(err, "");
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "show", "--help", NULL), 0);
    assert_non_null(strstr(out, "chaoslab report show RUN"));
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_then_show, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_show_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_unknown_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_field_rolls_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_runs_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_foreign_db_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare_never_merges_identities,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_stalled_and_invariant_verdicts_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_database_upgraded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_terminal_output_is_clean, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_missing_db, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_bad_arguments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_help, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
