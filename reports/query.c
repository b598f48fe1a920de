/*
 * reports/query.c — `report list`, `report show`, `report compare`.
 *
 * Each query is plain SQL with a deterministic ORDER BY (ids, positions,
 * names: never rowid order by accident, never hash order). Display
 * formatting (seconds, percentages) is done in the SQL so the C side has
 * just two generic printers: an aligned table and JSON rows keyed by the
 * column names. A per-column `kinds` string tells the printers what SQLite
 * cannot: '.' plain value, 'u' a 64-bit unsigned stored as signed (seeds),
 * 'b' a 0/1 flag printed as a JSON boolean, 'j' text that is already JSON.
 */
#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "reports/report_internal.h"

#define REPORT__PARAMS_MAX 3
#define REPORT__ROWS_MAX 10000000 /* bounds every row loop */

typedef struct report__param {
    int is_text;
    const char *text;   /* NULL binds SQL NULL (no filter) */
    int64_t value;
} report__param_t;

typedef struct report__query {
    const char *sql;
    const char *kinds;  /* one letter per result column */
    const report__param_t *params;
    size_t param_count;
} report__query_t;

/* Seconds with millisecond precision, truncated like format_seconds(). */
#define REPORT__SQL_SECONDS(col) \
    "printf('%d.%03ds', " col " / 1000000000, (" col " / 1000000) % 1000)"

/* Figures are emitted as JSON objects/arrays when they are valid JSON. */
#define REPORT__SQL_FIGURES_JSON                                             \
    "CASE WHEN figures = '' THEN 'null' "                                    \
    "WHEN json_valid(figures) AND json_type(figures) IN ('object','array') " \
    "THEN json(figures) ELSE json_quote(figures) END"

static int report__prepare(report_db_t *db, const report__query_t *q,
                           sqlite3_stmt **out)
{
    assert(db != NULL && db->sqlite != NULL);
    assert(q->param_count <= REPORT__PARAMS_MAX);
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sqlite, q->sql, -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < q->param_count; i++) {
        const report__param_t *p = &q->params[i];
        rc = p->is_text ? sqlite3_bind_text(st, (int)i + 1, p->text, -1,
                                            SQLITE_STATIC)
                        : sqlite3_bind_int64(st, (int)i + 1, p->value);
    }
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return report__sqlite_fail(db, rc, "preparing the query");
    }
    assert((size_t)sqlite3_column_count(st) == strlen(q->kinds));
    *out = st;
    return 0;
}

/* The text of one cell for a table; `buf` holds converted numbers. */
static const char *report__cell(sqlite3_stmt *st, int col, char kind,
                                char *buf, size_t size)
{
    assert(st != NULL && buf != NULL);
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        return "-";
    }
    if (kind == 'u') {
        uint64_t v = report__bits_from_i64(sqlite3_column_int64(st, col));
        snprintf(buf, size, "%" PRIu64, v);
        return buf;
    }
    const unsigned char *text = sqlite3_column_text(st, col);
    return text != NULL ? (const char *)text : "";
}

/* Run `q` and print its rows as an aligned table (or `empty` when there are
 * none). Returns the row count (>= 0) or a REPORT_E* code. */
static int64_t report__print_table(report_db_t *db, const report__query_t *q,
                                   const char *align,
                                   const char *const *headers, FILE *out,
                                   const char *indent, const char *empty)
{
    assert(strlen(align) == strlen(q->kinds));
    assert(out != NULL && headers != NULL);
    sqlite3_stmt *st = NULL;
    int rc = report__prepare(db, q, &st);
    if (rc != 0) {
        return rc;
    }
    report__table_t table;
    report__table_init(&table, align, headers);
    size_t columns = table.column_count;
    char bufs[REPORT__TABLE_COLUMNS_MAX][32];
    int step = SQLITE_ROW;
    for (size_t row = 0; row < REPORT__ROWS_MAX && rc == 0; row++) {
        step = sqlite3_step(st);
        if (step != SQLITE_ROW) {
            break;
        }
        const char *cells[REPORT__TABLE_COLUMNS_MAX];
        for (size_t c = 0; c < columns; c++) {
            cells[c] = report__cell(st, (int)c, q->kinds[c], bufs[c],
                                    sizeof bufs[c]);
        }
        rc = report__table_add(&table, cells);
    }
    if (rc == 0 && step != SQLITE_DONE) {
        rc = report__sqlite_fail(db, step, "reading the database");
    } else if (rc != 0) {
        rc = report__fail(db, rc, "building the table: %s",
                          report_strerror(rc));
    }
    sqlite3_finalize(st);
    int64_t rows = (int64_t)table.row_count;
    if (rc == 0 && rows == 0 && empty != NULL) {
        fprintf(out, "%s%s\n", indent, empty);
    } else if (rc == 0 && rows > 0) {
        report__table_print(&table, out, indent);
    }
    report__table_free(&table);
    return rc != 0 ? rc : rows;
}

static void report__json_value(FILE *out, sqlite3_stmt *st, int col,
                               char kind)
{
    assert(out != NULL && st != NULL);
    int type = sqlite3_column_type(st, col);
    if (type == SQLITE_NULL) {
        fputs("null", out);
    } else if (kind == 'j') {
        fputs((const char *)sqlite3_column_text(st, col), out);
    } else if (kind == 'b') {
        fputs(sqlite3_column_int64(st, col) ? "true" : "false", out);
    } else if (kind == 'u') {
        uint64_t v = report__bits_from_i64(sqlite3_column_int64(st, col));
        fprintf(out, "%" PRIu64, v);
    } else if (type == SQLITE_INTEGER) {
        fprintf(out, "%lld", (long long)sqlite3_column_int64(st, col));
    } else if (type == SQLITE_FLOAT) {
        report__json_double(out, sqlite3_column_double(st, col));
    } else {
        report__json_string(out, (const char *)sqlite3_column_text(st, col));
    }
}

/* The current row as `"name":value,...` (no braces). */
static void report__json_fields(FILE *out, sqlite3_stmt *st,
                                const char *kinds)
{
    assert(out != NULL && st != NULL);
    int columns = sqlite3_column_count(st);
    assert(columns > 0);
    for (int c = 0; c < columns; c++) {
        fputs(c ? "," : "", out);
        report__json_string(out, sqlite3_column_name(st, c));
        fputc(':', out);
        report__json_value(out, st, c, kinds[c]);
    }
}

/* Run `q` and print its rows as a JSON array of objects. */
static int report__print_json_rows(report_db_t *db, const report__query_t *q,
                                   FILE *out)
{
    assert(db != NULL && q != NULL);
    assert(out != NULL);
    sqlite3_stmt *st = NULL;
    int rc = report__prepare(db, q, &st);
    if (rc != 0) {
        return rc;
    }
    int step = SQLITE_DONE;
    fputc('[', out);
    for (size_t row = 0; row < REPORT__ROWS_MAX; row++) {
        step = sqlite3_step(st);
        if (step != SQLITE_ROW) {
            break;
        }
        fputs(row ? ",\n {" : "\n {", out);
        report__json_fields(out, st, q->kinds);
        fputc('}', out);
    }
    fputc(']', out);
    if (step != SQLITE_DONE) {
        rc = report__sqlite_fail(db, step, "reading the database");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- report list ---- */

#define REPORT__LIST_WHERE                                                \
    " FROM runs WHERE (?1 IS NULL OR scenario = ?1 OR scenario_path = ?1)" \
    " AND (?2 IS NULL OR verdict = ?2) ORDER BY id DESC LIMIT ?3"

int report_query_list(report_db_t *db, const report_list_opts_t *opts,
                      FILE *out)
{
    assert(db != NULL && db->sqlite != NULL);
    assert(opts != NULL && out != NULL);
    const char *v = opts->verdict;
    if (v != NULL && strcmp(v, "pass") != 0 && strcmp(v, "fail") != 0 &&
        strcmp(v, "error") != 0 && strcmp(v, "stalled") != 0 &&
        strcmp(v, "invariant") != 0) {
        return report__fail(db, REPORT_EINVAL, "verdict \"%s\" is not pass, "
                            "fail, stalled, invariant or error", v);
    }
    if (opts->limit < 1 || opts->limit > REPORT_LIST_LIMIT_MAX) {
        return report__fail(db, REPORT_EINVAL, "limit %zu is not in 1..%d",
                            opts->limit, REPORT_LIST_LIMIT_MAX);
    }
    report__param_t params[3] = {
        {1, opts->scenario, 0}, {1, v, 0}, {0, NULL, (int64_t)opts->limit}};
    if (opts->json) {
        report__query_t q = {
            "SELECT id, created_at, scenario, scenario_path, seed, strategy,"
            " verdict, trace_hash, exit_code, sim_time_ns, wall_time_ns,"
            " events" REPORT__LIST_WHERE,
            "....u.......", params, 3};
        fputs("{\"runs\":", out);
        int rc = report__print_json_rows(db, &q, out);
        fputs("}\n", out);
        return rc;
    }
    static const char *const headers[] = {"ID", "TIME", "SCENARIO", "SEED",
                                          "VERDICT", "TRACE HASH",
                                          "STRATEGY"};
    report__query_t q = {
        "SELECT id, created_at, scenario, seed, verdict, trace_hash,"
        " strategy" REPORT__LIST_WHERE,
        "...u...", params, 3};
    int64_t rows = report__print_table(db, &q, "rllrlll", headers, out, "",
                                       "no runs");
    return rows < 0 ? (int)rows : 0;
}

/* ---- report show ---- */

static int report__show_header(report_db_t *db, int64_t run_id, FILE *out)
{
    assert(db != NULL && out != NULL);
    assert(run_id > 0);
    report__param_t param = {0, NULL, run_id};
    report__query_t q = {
        "SELECT id, scenario, scenario_path, created_at, seed, verdict,"
        " exit_code, trace_hash, sim_time_ns, wall_time_ns, events,"
        " strategy, reproduce, scenario_hash, config_hash, binary_version"
        " FROM runs WHERE id = ?1",
        "....u...........", &param, 1};
    sqlite3_stmt *st = NULL;
    int rc = report__prepare(db, &q, &st);
    if (rc != 0) {
        return rc;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        char seed[32], sim[48], wall[48];
        const char *t[16];
        for (int c = 0; c < 16; c++) {
            const unsigned char *s = sqlite3_column_text(st, c);
            t[c] = s != NULL ? (const char *)s : "";
        }
        snprintf(seed, sizeof seed, "%" PRIu64,
                 report__bits_from_i64(sqlite3_column_int64(st, 4)));
        report__format_seconds(sim, sizeof sim, sqlite3_column_int64(st, 8));
        report__format_seconds(wall, sizeof wall,
                               sqlite3_column_int64(st, 9));
        fprintf(out, "run %s: %s (%s)\n", t[0], t[1], t[2]);
        fprintf(out, "  %-12s%s\n  %-12s%s\n", "created", t[3], "seed", seed);
        fprintf(out, "  %-12s%s (exit code %s)\n", "verdict", t[5], t[6]);
        fprintf(out, "  %-12s%s\n", "trace hash", t[7]);
        fprintf(out, "  %-12s%s (%s ns)\n", "sim time", sim, t[8]);
        fprintf(out, "  %-12s%s\n  %-12s%s\n", "wall time", wall, "events",
                t[10]);
        fprintf(out, "  %-12s%s\n  %-12s%s\n", "strategy", t[11],
                "reproduce", t[12]);
        fprintf(out, "  %-12sfile %s, config %s, binary %s\n", "identity",
                t[13][0] ? t[13] : "-", t[14][0] ? t[14] : "-",
                t[15][0] ? t[15] : "-");
    } else if (step == SQLITE_DONE) {
        rc = report__fail(db, REPORT_ENOENT, "run %lld not found",
                          (long long)run_id);
    } else {
        rc = report__sqlite_fail(db, step, "reading the run");
    }
    sqlite3_finalize(st);
    return rc;
}

typedef struct report__section {
    const char *title;
    const char *sql;          /* table form: display-ready text */
    const char *kinds;
    const char *align;
    const char *headers[REPORT__TABLE_COLUMNS_MAX];
    const char *json_sql;     /* JSON form: raw values */
    const char *json_kinds;
} report__section_t;

static const report__section_t report__sections[] = {
    {"config",
     "SELECT key, value FROM run_config WHERE run_id = ?1 ORDER BY position",
     "..", "ll", {"KEY", "VALUE"}, NULL, NULL},
    {"invariants",
     "SELECT name, CASE passed WHEN 1 THEN 'held' ELSE 'VIOLATED' END,"
     " expected, CASE as_expected WHEN 1 THEN 'yes' ELSE 'NO' END, figures"
     " FROM invariants WHERE run_id = ?1 ORDER BY position",
     ".....", "lllll", {"INVARIANT", "RESULT", "EXPECTED", "AS EXPECTED",
                        "FIGURES"},
     "SELECT name, passed, expected, as_expected, "
     REPORT__SQL_FIGURES_JSON " AS figures FROM invariants"
     " WHERE run_id = ?1 ORDER BY position",
     ".b.bj"},
    {"metrics",
     "SELECT name, printf('%.15g', value), unit FROM metrics"
     " WHERE run_id = ?1 ORDER BY position",
     "...", "lrl", {"METRIC", "VALUE", "UNIT"},
     "SELECT name, value, unit FROM metrics WHERE run_id = ?1"
     " ORDER BY position",
     "..."},
    {"series",
     "SELECT " REPORT__SQL_SECONDS("t_ns") ", "
     REPORT__SQL_SECONDS("interval_ns") ", published, confirmed, consumed,"
     " failed, printf('%.1f%%', availability * 100) FROM series"
     " WHERE run_id = ?1 ORDER BY position",
     ".......", "rrrrrrr", {"T", "INTERVAL", "PUBLISHED", "CONFIRMED",
                            "CONSUMED", "FAILED", "AVAILABILITY"},
     "SELECT t_ns, interval_ns, published, confirmed, consumed, failed,"
     " availability FROM series WHERE run_id = ?1 ORDER BY position",
     "......."},
    {"faults",
     "SELECT " REPORT__SQL_SECONDS("t_ns") ", kind, target, detail"
     " FROM faults WHERE run_id = ?1 ORDER BY position",
     "....", "rlll", {"T", "KIND", "TARGET", "DETAIL"},
     "SELECT t_ns, kind, target, detail FROM faults WHERE run_id = ?1"
     " ORDER BY position",
     "...."},
    {"violations",
     "SELECT " REPORT__SQL_SECONDS("t_ns") ", invariant, message_id, detail"
     " FROM violations WHERE run_id = ?1 ORDER BY position",
     "....", "rlll", {"T", "INVARIANT", "MESSAGE", "DETAIL"},
     "SELECT invariant, message_id, t_ns, detail FROM violations"
     " WHERE run_id = ?1 ORDER BY position",
     "...."},
};

#define REPORT__SECTION_COUNT \
    (sizeof report__sections / sizeof report__sections[0])

/* Config as a JSON object in the scenario's order. */
static int report__show_config_json(report_db_t *db, int64_t run_id,
                                    FILE *out)
{
    assert(db != NULL && out != NULL);
    report__param_t param = {0, NULL, run_id};
    report__query_t q = {report__sections[0].sql, "..", &param, 1};
    sqlite3_stmt *st = NULL;
    int rc = report__prepare(db, &q, &st);
    if (rc != 0) {
        return rc;
    }
    int step = SQLITE_DONE;
    fputc('{', out);
    for (int row = 0; row <= REPORT_CONFIG_MAX; row++) {
        step = sqlite3_step(st);
        if (step != SQLITE_ROW) {
            break;
        }
        fputs(row ? "," : "", out);
        report__json_string(out, (const char *)sqlite3_column_text(st, 0));
        fputc(':', out);
        report__json_string(out, (const char *)sqlite3_column_text(st, 1));
    }
    fputc('}', out);
    if (step != SQLITE_DONE) {
        rc = report__sqlite_fail(db, step, "reading the config");
    }
    sqlite3_finalize(st);
    return rc;
}

static int report__show_json(report_db_t *db, int64_t run_id, FILE *out)
{
    assert(db != NULL && out != NULL);
    report__param_t param = {0, NULL, run_id};
    report__query_t q = {
        "SELECT id, created_at, scenario, scenario_path, seed, strategy,"
        " verdict, trace_hash, sim_time_ns, wall_time_ns, events, exit_code,"
        " reproduce, scenario_hash, config_hash, binary_version"
        " FROM runs WHERE id = ?1",
        "....u...........", &param, 1};
    sqlite3_stmt *st = NULL;
    int rc = report__prepare(db, &q, &st);
    if (rc != 0) {
        return rc;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        fputs("{\"run\":{", out);
        report__json_fields(out, st, q.kinds);
    } else if (step == SQLITE_DONE) {
        rc = report__fail(db, REPORT_ENOENT, "run %lld not found",
                          (long long)run_id);
    } else {
        rc = report__sqlite_fail(db, step, "reading the run");
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        return rc;
    }
    fputs(",\"config\":", out);
    rc = report__show_config_json(db, run_id, out);
    for (size_t i = 1; i < REPORT__SECTION_COUNT && rc == 0; i++) {
        const report__section_t *s = &report__sections[i];
        report__query_t sq = {s->json_sql, s->json_kinds, &param, 1};
        fprintf(out, ",\n\"%s\":", s->title);
        rc = report__print_json_rows(db, &sq, out);
    }
    fputs("}}\n", out);
    return rc;
}

int report_query_show(report_db_t *db, int64_t run_id, int json, FILE *out)
{
    assert(db != NULL && db->sqlite != NULL);
    assert(out != NULL);
    if (run_id <= 0) {
        return report__fail(db, REPORT_ENOENT, "run %lld not found",
                            (long long)run_id);
    }
    if (json) {
        return report__show_json(db, run_id, out);
    }
    int rc = report__show_header(db, run_id, out);
    report__param_t param = {0, NULL, run_id};
    for (size_t i = 0; i < REPORT__SECTION_COUNT && rc == 0; i++) {
        const report__section_t *s = &report__sections[i];
        report__query_t q = {s->sql, s->kinds, &param, 1};
        fprintf(out, "\n%s\n", s->title);
        int64_t rows = report__print_table(db, &q, s->align, s->headers, out,
                                           "  ", "(none)");
        rc = rows < 0 ? (int)rows : 0;
    }
    return rc;
}

int report_query_replay(report_db_t *db, int64_t run_id, char *reproduce, size_t reproduce_cap,
                        char trace_hash[17])
{
    assert(db != NULL && db->sqlite != NULL && reproduce != NULL && trace_hash != NULL);
    if (run_id <= 0) {
        return report__fail(db, REPORT_ENOENT, "run %lld not found", (long long)run_id);
    }
    report__param_t param = {0, NULL, run_id};
    report__query_t q = {"SELECT reproduce, trace_hash FROM runs WHERE id = ?1", "..", &param, 1};
    sqlite3_stmt *st = NULL;
    int rc = report__prepare(db, &q, &st);
    if (rc != 0) {
        return rc;
    }
    const int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const unsigned char *r = sqlite3_column_text(st, 0), *h = sqlite3_column_text(st, 1);
        snprintf(reproduce, reproduce_cap, "%s", r != NULL ? (const char *)r : "");
        snprintf(trace_hash, 17, "%s", h != NULL ? (const char *)h : "");
    } else if (step == SQLITE_DONE) {
        rc = report__fail(db, REPORT_ENOENT, "run %lld not found", (long long)run_id);
    } else {
        rc = report__sqlite_fail(db, step, "reading the run");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- report compare ---- */

#define REPORT__COMPARE_WHERE \
    " WHERE (?1 IS NULL OR r.scenario = ?1 OR r.scenario_path = ?1)"

/* A group is one identity: scenario, strategy, the whole configuration
 * (config_hash), the scenario file's content and the binary. Runs that
 * differ in any of them are never merged. */
#define REPORT__COMPARE_GROUP \
    "r.scenario, r.strategy, r.config_hash, r.scenario_hash, r.binary_version"

/* Raw rates: the JSON form, and the inner query of the table form. */
#define REPORT__COMPARE_RUNS_SQL                                            \
    "SELECT r.scenario AS scenario, r.strategy AS strategy,"                \
    " r.config_hash AS config_hash, r.scenario_hash AS scenario_hash,"      \
    " r.binary_version AS binary_version,"                                  \
    " count(*) AS runs, count(DISTINCT r.seed) AS seeds,"                   \
    " sum(r.verdict = 'pass') AS pass, sum(r.verdict = 'fail') AS fail,"    \
    " sum(r.verdict = 'stalled') AS stalled,"                               \
    " sum(r.verdict = 'invariant') AS invariant,"                           \
    " sum(r.verdict = 'error') AS error,"                                   \
    " 1.0 * sum(r.verdict = 'pass') / count(*) AS pass_rate"                \
    " FROM runs r" REPORT__COMPARE_WHERE                                    \
    " GROUP BY " REPORT__COMPARE_GROUP " ORDER BY " REPORT__COMPARE_GROUP

#define REPORT__COMPARE_INVARIANTS_SQL                                      \
    "SELECT r.scenario AS scenario, i.name AS invariant,"                   \
    " i.expected AS expected, r.strategy AS strategy,"                      \
    " r.config_hash AS config_hash, r.scenario_hash AS scenario_hash,"      \
    " r.binary_version AS binary_version, count(*) AS runs,"                \
    " sum(i.passed) AS held, 1.0 * sum(i.passed) / count(*) AS held_rate,"  \
    " sum(i.as_expected) AS as_expected,"                                   \
    " 1.0 * sum(i.as_expected) / count(*) AS as_expected_rate"              \
    " FROM runs r JOIN invariants i ON i.run_id = r.id"                     \
    REPORT__COMPARE_WHERE                                                   \
    " GROUP BY r.scenario, i.name, i.expected, r.strategy, r.config_hash,"  \
    " r.scenario_hash, r.binary_version"                                    \
    " ORDER BY r.scenario, i.name, i.expected, r.strategy, r.config_hash,"  \
    " r.scenario_hash, r.binary_version"

/* Short identity shown in the table form: file hash / config hash / binary. */
#define REPORT__COMPARE_IDENTITY                                            \
    "coalesce(nullif(substr(scenario_hash, 1, 8), ''), '-') || '/' ||"      \
    " coalesce(nullif(substr(config_hash, 1, 8), ''), '-') || ' ' ||"       \
    " coalesce(nullif(binary_version, ''), '-')"

static int report__compare_json(report_db_t *db, const report__param_t *p,
                                FILE *out)
{
    assert(db != NULL && p != NULL);
    report__query_t runs = {REPORT__COMPARE_RUNS_SQL, ".............", p, 1};
    report__query_t invs = {REPORT__COMPARE_INVARIANTS_SQL, "............",
                            p, 1};
    fputs("{\"strategies\":", out);
    int rc = report__print_json_rows(db, &runs, out);
    if (rc == 0) {
        fputs(",\n\"invariants\":", out);
        rc = report__print_json_rows(db, &invs, out);
    }
    fputs("}\n", out);
    return rc;
}

int report_query_compare(report_db_t *db, const char *scenario, int json,
                         FILE *out)
{
    assert(db != NULL && db->sqlite != NULL);
    assert(out != NULL);
    report__param_t param = {1, scenario, 0};
    if (json) {
        return report__compare_json(db, &param, out);
    }
    static const char *const run_headers[] = {
        "SCENARIO", "RUNS", "SEEDS", "PASS", "FAIL", "STALLED", "INVARIANT",
        "ERROR", "PASS%", "FILE/CONFIG BINARY", "STRATEGY"};
    report__query_t runs = {
        "SELECT scenario, runs, seeds, pass, fail, stalled, invariant, error,"
        " printf('%.1f%%', 100 * pass_rate), " REPORT__COMPARE_IDENTITY ","
        " strategy FROM (" REPORT__COMPARE_RUNS_SQL ")"
        " ORDER BY scenario, strategy, config_hash, scenario_hash,"
        " binary_version",
        "...........", &param, 1};
    fputs("verdicts by strategy (one row per identity: scenario file, whole "
          "configuration, binary)\n", out);
    int64_t rows = report__print_table(db, &runs, "lrrrrrrrrll", run_headers,
                                       out, "  ", "no runs");
    if (rows <= 0) {
        return rows < 0 ? (int)rows : 0;
    }
    static const char *const inv_headers[] = {
        "SCENARIO", "INVARIANT", "EXPECTED", "RUNS", "HELD", "HELD%",
        "AS EXPECTED%", "FILE/CONFIG BINARY", "STRATEGY"};
    report__query_t invs = {
        "SELECT scenario, invariant, expected, runs, held,"
        " printf('%.1f%%', 100 * held_rate),"
        " printf('%.1f%%', 100 * as_expected_rate), "
        REPORT__COMPARE_IDENTITY ", strategy"
        " FROM (" REPORT__COMPARE_INVARIANTS_SQL ")"
        " ORDER BY scenario, invariant, expected, strategy, config_hash,"
        " scenario_hash, binary_version",
        ".........", &param, 1};
    fputs("\ninvariants by strategy\n", out);
    rows = report__print_table(db, &invs, "lllrrrrll", inv_headers, out, "  ",
                               "(no invariant results)");
    return rows < 0 ? (int)rows : 0;
}
