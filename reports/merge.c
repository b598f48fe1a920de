/*
 * reports/merge.c — `chaoslab report merge OUT.db IN.db...`: fold the
 * databases of seed shards (or of any runs) into one.
 *
 * A run's natural key is what makes it the same run on any machine:
 * (scenario, scenario_hash, config_hash, binary_version, seed, verdict,
 * trace_hash). A deterministic run reproduced anywhere has the same key, so
 * an input run whose key is already in OUT is skipped: merging a file twice,
 * or overlapping files, adds nothing. Other runs get new ids in OUT and
 * their rows in every per-run table follow them (run_id remapped).
 *
 * The input must have exactly this build's schema version: its columns are
 * then the same as OUT's. It is only read (attached), never migrated.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "reports/report_internal.h"

#define REPORT__MERGE_SQL_MAX 2048

/* The tables that hang off runs (run_id), copied with the run. */
static const char *const report__child_tables[] = {
    "run_config", "invariants", "metrics", "series", "faults", "violations"};

#define REPORT__MERGE_KEY                                                      \
    "scenario, scenario_hash, config_hash, binary_version, seed, verdict, trace_hash"

#define REPORT__MERGE_KEY_MATCH                                                \
    "m.scenario = s.scenario AND m.scenario_hash = s.scenario_hash AND"        \
    " m.config_hash = s.config_hash AND m.binary_version = s.binary_version"   \
    " AND m.seed = s.seed AND m.verdict = s.verdict"                           \
    " AND m.trace_hash = s.trace_hash"

/* Check the input read-only: a chaoslab database with our schema version. */
int report_db_merge_check(report_db_t *db, const char *path)
{
    sqlite3 *in = NULL;
    int rc = sqlite3_open_v2(path, &in, SQLITE_OPEN_READONLY, NULL);
    int64_t version = -1, runs = 0;
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(in, "SELECT (SELECT user_version FROM pragma_user_version),"
                                " (SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                " AND name = 'runs')", -1, &st, NULL);
    }
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int64(st, 0);
        runs = sqlite3_column_int64(st, 1);
    } else {
        rc = SQLITE_NOTADB;
    }
    sqlite3_finalize(st);
    sqlite3_close(in);
    if (rc != SQLITE_OK || runs != 1) {
        return report__fail(db, REPORT_ENOTDB, "%s: not a chaoslab report database", path);
    }
    if (version != REPORT_SCHEMA_VERSION) {
        return report__fail(db, REPORT_EVERSION, "%s: schema version %" PRId64 ", this build "
                            "merges version %d only (a version-1 file is upgraded by opening "
                            "it once, e.g. `chaoslab report list --db %s`)", path, version,
                            REPORT_SCHEMA_VERSION, path);
    }
    return 0;
}

static int report__merge_exec(report_db_t *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db->sqlite, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : report__sqlite_fail(db, rc, what);
}

/* "a, b, c" of table `t` without its id/run_id column. */
static int report__merge_columns(report_db_t *db, const char *t, char *buf, size_t cap)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s') WHERE name NOT IN "
             "('id', 'run_id') ORDER BY cid", t);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sqlite, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return report__sqlite_fail(db, rc, "reading the schema");
    size_t used = 0;
    buf[0] = '\0';
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "",
                               (const char *)sqlite3_column_text(st, 0));
        if (n < 0 || (size_t)n >= cap - used) rc = SQLITE_TOOBIG;
        if (rc == SQLITE_TOOBIG) break;
        used += (size_t)n;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return report__sqlite_fail(db, rc, "reading the schema");
    return used > 0 ? 0 : report__fail(db, REPORT_EIO, "table %s has no columns", t);
}

/* Copy every src run whose key is not in main yet, with its rows. Runs are
 * copied in src id order, so the merged ids keep each input's order. */
static int report__merge_copy(report_db_t *db, uint64_t *added, uint64_t *skipped)
{
    char cols[REPORT__MERGE_SQL_MAX / 2], sql[REPORT__MERGE_SQL_MAX];
    int rc = report__merge_columns(db, "runs", cols, sizeof cols);
    if (rc != 0) return rc;
    /* The keys already in main, indexed (main.runs has no such index, and
     * a merge must stay O(n log n) for 100,000-seed sweeps). */
    rc = report__merge_exec(db,
        "CREATE TEMP TABLE merge_keys AS SELECT " REPORT__MERGE_KEY " FROM main.runs;"
        "CREATE INDEX temp.merge_keys_k ON merge_keys (seed, trace_hash, scenario,"
        " scenario_hash, config_hash, binary_version, verdict);", "indexing the output");
    if (rc != 0) return rc;
    /* old id -> new id: the first src run of each new key, numbered after
     * main's last id in src order. */
    snprintf(sql, sizeof sql,
             "CREATE TEMP TABLE merge_map (old INTEGER PRIMARY KEY, new INTEGER);"
             "INSERT INTO merge_map (old, new)"
             " SELECT old, base + row_number() OVER (ORDER BY old) FROM"
             " (SELECT min(s.id) AS old FROM src.runs s WHERE NOT EXISTS"
             "   (SELECT 1 FROM temp.merge_keys m WHERE " REPORT__MERGE_KEY_MATCH ")"
             "  GROUP BY " REPORT__MERGE_KEY "),"
             " (SELECT coalesce(max(id), 0) AS base FROM main.runs);"
             "INSERT INTO main.runs (id, %s) SELECT mm.new, %s FROM src.runs s"
             " JOIN merge_map mm ON mm.old = s.id ORDER BY mm.new;", cols, cols);
    rc = report__merge_exec(db, sql, "copying runs");
    for (size_t t = 0; rc == 0 && t < sizeof report__child_tables / sizeof *report__child_tables;
         t++) {
        rc = report__merge_columns(db, report__child_tables[t], cols, sizeof cols);
        if (rc != 0) break;
        snprintf(sql, sizeof sql, "INSERT INTO main.%s (run_id, %s) SELECT mm.new, %s"
                 " FROM src.%s c JOIN merge_map mm ON mm.old = c.run_id;",
                 report__child_tables[t], cols, cols, report__child_tables[t]);
        rc = report__merge_exec(db, sql, report__child_tables[t]);
    }
    sqlite3_stmt *st = NULL;
    if (rc == 0 && sqlite3_prepare_v2(db->sqlite, "SELECT (SELECT count(*) FROM merge_map),"
                                      " (SELECT count(*) FROM src.runs)", -1, &st,
                                      NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *added = (uint64_t)sqlite3_column_int64(st, 0);
        *skipped = (uint64_t)sqlite3_column_int64(st, 1) - *added;
    }
    sqlite3_finalize(st);
    return rc;
}

int report_db_merge(report_db_t *db, const char *path, uint64_t *added, uint64_t *skipped)
{
    assert(db != NULL && path != NULL && added != NULL && skipped != NULL);
    *added = *skipped = 0;
    int rc = report_db_merge_check(db, path);
    if (rc != 0) return rc;
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db->sqlite, "ATTACH DATABASE ?1 AS src", -1, &st, NULL);
    if (src == SQLITE_OK) sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    if (src == SQLITE_OK) src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE) return report__sqlite_fail(db, src, "attaching the input");
    rc = report__merge_exec(db, "BEGIN IMMEDIATE", "starting the merge");
    if (rc == 0) rc = report__merge_copy(db, added, skipped);
    if (rc == 0) rc = report__merge_exec(db, "COMMIT", "committing the merge");
    if (rc != 0) (void)sqlite3_exec(db->sqlite, "ROLLBACK", NULL, NULL, NULL);
    (void)sqlite3_exec(db->sqlite, "DROP TABLE IF EXISTS temp.merge_map;"
                       "DROP TABLE IF EXISTS temp.merge_keys", NULL, NULL, NULL);
    (void)sqlite3_exec(db->sqlite, "DETACH DATABASE src", NULL, NULL, NULL);
    return rc;
}
