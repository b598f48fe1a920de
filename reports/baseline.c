/*
 * reports/baseline.c — `chaoslab report compare --baseline OLD.db`: a CI
 * gate that fails when a figure regressed against a baseline database.
 *
 * Groups are formed in each database and paired by (scenario, scenario file
 * hash, K), where K is the whole configuration hash (`--match config`, the
 * default: only runs of exactly the same configuration are compared) or the
 * teach variant (`--match variant`: the same scenario file and side, with
 * the configuration differences printed — this is how a strategy changed by
 * CLI overrides is compared with the baseline). The binary version is never
 * part of the pairing: comparing two builds is the point.
 *
 * Per group: pass rate (share of runs with verdict pass), availability (mean
 * of the per-run `availability` metric), and the confirm latency p50/p99
 * (means of the per-run percentiles). Rates regress when they drop by more
 * than `tolerance` (absolute); latencies when they grow by more than
 * `latency_tolerance` (relative).
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "reports/report_internal.h"

#define REPORT__BASELINE_SQL_MAX 4096

/* One database's groups; %s = schema ("main" or "base"), twice the key. */
#define REPORT__BASELINE_GROUPS                                                \
    "SELECT r.scenario AS scenario, r.scenario_hash AS scenario_hash, %s AS k,"\
    " count(*) AS runs, avg(r.verdict = 'pass') AS pass_rate,"                 \
    " avg((SELECT value FROM %s.metrics m WHERE m.run_id = r.id AND"           \
    "  m.name = 'availability')) AS availability,"                             \
    " avg((SELECT value FROM %s.metrics m WHERE m.run_id = r.id AND"           \
    "  m.name = 'publish_confirm_p50')) AS p50,"                               \
    " avg((SELECT value FROM %s.metrics m WHERE m.run_id = r.id AND"           \
    "  m.name = 'publish_confirm_p99')) AS p99,"                               \
    " min(r.id) AS rep, count(DISTINCT r.config_hash) AS configs,"             \
    " min(r.config_hash) AS config_hash, count(DISTINCT r.seed) AS seeds"       \
    " FROM %s.runs r WHERE (?1 IS NULL OR r.scenario = ?1 OR"                  \
    " r.scenario_path = ?1) GROUP BY r.scenario, r.scenario_hash, k"

enum { BL_SCENARIO, BL_HASH, BL_K, BL_RUNS, BL_PASS, BL_AVAIL, BL_P50, BL_P99, BL_REP,
       BL_CONFIGS, BL_CONFIG_HASH, BL_SEEDS, BL_COLUMNS };

static void report__baseline_groups(char *buf, size_t cap, const char *schema, int by_variant)
{
    char key[256];
    if (by_variant) {
        snprintf(key, sizeof key, "coalesce((SELECT value FROM %s.run_config c WHERE"
                 " c.run_id = r.id AND c.key = 'variant'), '')", schema);
    } else {
        snprintf(key, sizeof key, "r.config_hash");
    }
    snprintf(buf, cap, REPORT__BASELINE_GROUPS, key, schema, schema, schema, schema);
}

/* Print the configuration keys whose values differ between the groups'
 * representative runs (variant matching only). */
static void report__baseline_diff(report_db_t *db, int64_t new_rep, int64_t base_rep, FILE *out)
{
    static const char sql[] =
        "SELECT n.key, coalesce(b.value, '(unset)'), n.value FROM main.run_config n"
        " LEFT JOIN base.run_config b ON b.run_id = ?2 AND b.key = n.key"
        " WHERE n.run_id = ?1 AND n.key NOT LIKE 'run.%'"
        " AND (b.value IS NULL OR b.value <> n.value) ORDER BY n.position";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->sqlite, sql, -1, &st, NULL) != SQLITE_OK) return;
    sqlite3_bind_int64(st, 1, new_rep);
    sqlite3_bind_int64(st, 2, base_rep);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        fprintf(out, "%s %s %s -> %s", n++ ? "," : "    config differs:",
                (const char *)sqlite3_column_text(st, 0),
                (const char *)sqlite3_column_text(st, 1),
                (const char *)sqlite3_column_text(st, 2));
    }
    if (n > 0) fputc('\n', out);
    sqlite3_finalize(st);
}

/* Compare one figure; returns 1 when it regressed. NULL on either side
 * (not measured) is reported and never a regression. */
static int report__baseline_figure(sqlite3_stmt *st, int col, const char *name, int higher_worse,
                                   double tol, FILE *out)
{
    const int ncol = col, bcol = col + BL_COLUMNS;
    if (sqlite3_column_type(st, ncol) == SQLITE_NULL ||
        sqlite3_column_type(st, bcol) == SQLITE_NULL) {
        return 0;
    }
    const double now = sqlite3_column_double(st, ncol);
    const double was = sqlite3_column_double(st, bcol);
    const int regressed = higher_worse ? now > was * (1.0 + tol) && now > was
                                       : now < was - tol;
    if (higher_worse) {
        fprintf(out, "    %-9s %-12s %.6g -> %.6g ns (allowed +%.0f%%)\n",
                regressed ? "REGRESSED" : "ok", name, was, now, 100 * tol);
    } else {
        fprintf(out, "    %-9s %-12s %.4f -> %.4f (allowed -%.4f)\n",
                regressed ? "REGRESSED" : "ok", name, was, now, tol);
    }
    return regressed;
}

static int64_t report__baseline_count(report_db_t *db, const char *groups, const char *scenario)
{
    char sql[REPORT__BASELINE_SQL_MAX + 64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s)", groups);
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db->sqlite, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, scenario, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

static int report__baseline_run(report_db_t *db, const report_baseline_opts_t *o, FILE *out,
                                int *regressions)
{
    char ng[REPORT__BASELINE_SQL_MAX], bg[REPORT__BASELINE_SQL_MAX];
    char sql[3 * REPORT__BASELINE_SQL_MAX];
    report__baseline_groups(ng, sizeof ng, "main", o->match_variant);
    report__baseline_groups(bg, sizeof bg, "base", o->match_variant);
    snprintf(sql, sizeof sql, "SELECT n.*, b.* FROM (%s) n JOIN (%s) b ON"
             " n.scenario = b.scenario AND n.scenario_hash = b.scenario_hash AND n.k = b.k"
             " ORDER BY n.scenario, n.k", ng, bg);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sqlite, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return report__sqlite_fail(db, rc, "comparing");
    sqlite3_bind_text(st, 1, o->scenario, -1, SQLITE_TRANSIENT);
    fprintf(out, "baseline %s, paired by scenario file and %s\n", o->baseline_path,
            o->match_variant ? "variant (configuration differences shown)"
                             : "whole configuration");
    int64_t matched = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        matched++;
        const char *k = (const char *)sqlite3_column_text(st, BL_K);
        fprintf(out, "%s (file %.8s, %s %.16s): %lld runs, baseline %lld\n",
                (const char *)sqlite3_column_text(st, BL_SCENARIO),
                (const char *)sqlite3_column_text(st, BL_HASH),
                o->match_variant ? "variant" : "config", k[0] ? k : "-",
                (long long)sqlite3_column_int64(st, BL_RUNS),
                (long long)sqlite3_column_int64(st, BL_RUNS + BL_COLUMNS));
        if (o->match_variant &&
            (sqlite3_column_int64(st, BL_CONFIGS) > 1 ||
             sqlite3_column_int64(st, BL_CONFIGS + BL_COLUMNS) > 1 ||
             strcmp((const char *)sqlite3_column_text(st, BL_CONFIG_HASH),
                    (const char *)sqlite3_column_text(st, BL_CONFIG_HASH + BL_COLUMNS)) != 0)) {
            report__baseline_diff(db, sqlite3_column_int64(st, BL_REP),
                                  sqlite3_column_int64(st, BL_REP + BL_COLUMNS), out);
        }
        if (sqlite3_column_int64(st, BL_SEEDS) != sqlite3_column_int64(st, BL_SEEDS + BL_COLUMNS)) {
            /* Means over other seeds differ without any regression: say so. */
            fprintf(out, "    note: %lld seeds here, %lld in the baseline: figures are means "
                    "over different seed sets\n", (long long)sqlite3_column_int64(st, BL_SEEDS),
                    (long long)sqlite3_column_int64(st, BL_SEEDS + BL_COLUMNS));
        }
        *regressions += report__baseline_figure(st, BL_PASS, "pass_rate", 0, o->tolerance, out);
        *regressions += report__baseline_figure(st, BL_AVAIL, "availability", 0, o->tolerance,
                                                out);
        *regressions += report__baseline_figure(st, BL_P50, "confirm_p50", 1,
                                                o->latency_tolerance, out);
        *regressions += report__baseline_figure(st, BL_P99, "confirm_p99", 1,
                                                o->latency_tolerance, out);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return report__sqlite_fail(db, rc, "comparing");
    const int64_t new_groups = report__baseline_count(db, ng, o->scenario);
    const int64_t base_groups = report__baseline_count(db, bg, o->scenario);
    fprintf(out, "\n%lld groups compared, %d figures regressed; %lld groups without a "
            "baseline, %lld baseline groups not run\n", (long long)matched, *regressions,
            (long long)(new_groups - matched), (long long)(base_groups - matched));
    if (matched == 0) {
        fprintf(out, "nothing compared: no group of this database has the same scenario file "
                "and %s as the baseline\n", o->match_variant ? "variant" : "configuration");
    }
    return 0;
}

int report_query_baseline(report_db_t *db, const report_baseline_opts_t *o, FILE *out,
                          int *regressions)
{
    assert(db != NULL && o != NULL && o->baseline_path != NULL && out != NULL);
    *regressions = 0;
    if (!(o->tolerance >= 0 && o->tolerance <= 1) ||
        !(o->latency_tolerance >= 0 && isfinite(o->latency_tolerance))) {
        return report__fail(db, REPORT_EINVAL, "tolerances must be in [0, 1] (rates) and >= 0 "
                            "(latency)");
    }
    int rc = report_db_merge_check(db, o->baseline_path);
    if (rc != 0) return rc;
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db->sqlite, "ATTACH DATABASE ?1 AS base", -1, &st, NULL);
    if (src == SQLITE_OK) sqlite3_bind_text(st, 1, o->baseline_path, -1, SQLITE_TRANSIENT);
    if (src == SQLITE_OK) src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE) return report__sqlite_fail(db, src, "attaching the baseline");
    rc = report__baseline_run(db, o, out, regressions);
    (void)sqlite3_exec(db->sqlite, "DETACH DATABASE base", NULL, NULL, NULL);
    return rc;
}
