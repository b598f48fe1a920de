/*
 * reports/schema.c — the schema (version REPORT_SCHEMA_VERSION), opening a
 * database, creating or checking its schema, and error plumbing.
 *
 * Why WAL + busy timeout + BEGIN IMMEDIATE: `chaoslab run --jobs N` runs
 * worker processes that each write their runs to the same file. WAL lets
 * readers run beside one writer; the busy timeout makes a writer wait for
 * the lock instead of failing; BEGIN IMMEDIATE takes the write lock up front
 * so two writers never deadlock upgrading read locks (which SQLite answers
 * with SQLITE_BUSY without calling the busy handler).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "reports/report_internal.h"

/* The runs table (version 2: verdicts stalled and invariant, and the run's
 * identity: config_hash, scenario_hash, binary_version). A macro because
 * the version 1 -> 2 migration creates it under another name first. */
#define REPORT__RUNS_TABLE_SQL(name)                                          \
    "CREATE TABLE " name " (\n"                                               \
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"                               \
    "  created_at TEXT NOT NULL\n"                                            \
    "    DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),\n"                   \
    "  scenario_path TEXT NOT NULL,\n"                                        \
    "  scenario TEXT NOT NULL CHECK (length(scenario) > 0),\n"                \
    "  seed INTEGER NOT NULL,\n"                                              \
    "  strategy TEXT NOT NULL,\n"                                             \
    "  verdict TEXT NOT NULL CHECK (verdict IN\n"                             \
    "    ('pass','fail','error','stalled','invariant')),\n"                   \
    "  trace_hash TEXT NOT NULL CHECK (length(trace_hash) = 16),\n"           \
    "  sim_time_ns INTEGER NOT NULL CHECK (sim_time_ns >= 0),\n"              \
    "  wall_time_ns INTEGER NOT NULL CHECK (wall_time_ns >= 0),\n"            \
    "  events INTEGER NOT NULL CHECK (events >= 0),\n"                        \
    "  exit_code INTEGER NOT NULL,\n"                                         \
    "  reproduce TEXT NOT NULL,\n"                                            \
    "  config_hash TEXT NOT NULL DEFAULT '',\n"                               \
    "  scenario_hash TEXT NOT NULL DEFAULT '',\n"                             \
    "  binary_version TEXT NOT NULL DEFAULT ''\n"                             \
    ");\n"

#define REPORT__RUNS_INDEX_SQL                                                \
    "CREATE INDEX runs_by_scenario ON runs (scenario, strategy, id);\n"       \
    "CREATE INDEX runs_by_path ON runs (scenario_path, id);\n"                \
    "CREATE INDEX runs_by_verdict ON runs (verdict, id);\n"

/* Version 1 -> 2, SQLite's documented table rebuild (a CHECK constraint
 * cannot be altered in place): runs is copied into the new shape, old runs
 * get empty identity columns (so they never group with new runs), child
 * tables keep their rows and ids. Foreign keys are off while it runs. */
static const char report__migrate_v1_sql[] =
    REPORT__RUNS_TABLE_SQL("runs_v2")
    "INSERT INTO runs_v2 (id, created_at, scenario_path, scenario, seed,"
    " strategy, verdict, trace_hash, sim_time_ns, wall_time_ns, events,"
    " exit_code, reproduce) SELECT id, created_at, scenario_path, scenario,"
    " seed, strategy, verdict, trace_hash, sim_time_ns, wall_time_ns, events,"
    " exit_code, reproduce FROM runs;\n"
    "DROP TABLE runs;\n"
    "ALTER TABLE runs_v2 RENAME TO runs;\n"
    REPORT__RUNS_INDEX_SQL
    "INSERT INTO schema_version (version) VALUES (2);\n"
    "PRAGMA user_version = 2;\n";

/* Every table is documented column by column in docs/reports.md. Child rows
 * carry `position` (their index in the run's array) so reading them back
 * ORDER BY position restores the simulator's order exactly. */
const char report__schema_sql[] =
    "CREATE TABLE schema_version (\n"
    "  version INTEGER NOT NULL,\n"
    "  created_at TEXT NOT NULL\n"
    "    DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))\n"
    ");\n"
    REPORT__RUNS_TABLE_SQL("runs")
    REPORT__RUNS_INDEX_SQL
    "CREATE TABLE run_config (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL,\n"
    "  key TEXT NOT NULL CHECK (length(key) > 0),\n"
    "  value TEXT NOT NULL,\n"
    "  PRIMARY KEY (run_id, position),\n"
    "  UNIQUE (run_id, key)\n"
    ");\n"
    "CREATE TABLE invariants (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL,\n"
    "  name TEXT NOT NULL CHECK (length(name) > 0),\n"
    "  passed INTEGER NOT NULL CHECK (passed IN (0, 1)),\n"
    "  expected TEXT NOT NULL CHECK (expected IN ('pass','violation')),\n"
    "  as_expected INTEGER NOT NULL CHECK (as_expected IN (0, 1)),\n"
    "  figures TEXT NOT NULL DEFAULT '',\n"
    "  PRIMARY KEY (run_id, position)\n"
    ");\n"
    "CREATE INDEX invariants_by_name ON invariants (name, run_id);\n"
    "CREATE TABLE metrics (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL,\n"
    "  name TEXT NOT NULL CHECK (length(name) > 0),\n"
    "  value REAL NOT NULL,\n"
    "  unit TEXT NOT NULL,\n"
    "  PRIMARY KEY (run_id, position)\n"
    ");\n"
    "CREATE TABLE series (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL,\n"
    "  t_ns INTEGER NOT NULL CHECK (t_ns >= 0),\n"
    "  interval_ns INTEGER NOT NULL CHECK (interval_ns >= 0),\n"
    "  published INTEGER NOT NULL CHECK (published >= 0),\n"
    "  confirmed INTEGER NOT NULL CHECK (confirmed >= 0),\n"
    "  consumed INTEGER NOT NULL CHECK (consumed >= 0),\n"
    "  failed INTEGER NOT NULL CHECK (failed >= 0),\n"
    "  availability REAL NOT NULL\n"
    "    CHECK (availability >= 0 AND availability <= 1),\n"
    "  PRIMARY KEY (run_id, position)\n"
    ");\n"
    "CREATE TABLE faults (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL,\n"
    "  t_ns INTEGER NOT NULL CHECK (t_ns >= 0),\n"
    "  kind TEXT NOT NULL CHECK (length(kind) > 0),\n"
    "  target TEXT NOT NULL,\n"
    "  detail TEXT NOT NULL DEFAULT '',\n"
    "  PRIMARY KEY (run_id, position)\n"
    ");\n"
    "CREATE TABLE violations (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL,\n"
    "  invariant TEXT NOT NULL CHECK (length(invariant) > 0),\n"
    "  message_id TEXT,\n"
    "  t_ns INTEGER NOT NULL CHECK (t_ns >= 0),\n"
    "  detail TEXT NOT NULL DEFAULT '',\n"
    "  PRIMARY KEY (run_id, position)\n"
    ");\n"
    "CREATE INDEX violations_by_message ON violations (message_id);\n";

int report__fail(report_db_t *db, int code, const char *fmt, ...)
{
    assert(db != NULL);
    assert(code < 0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

int report__sqlite_fail(report_db_t *db, int sqlite_rc, const char *what)
{
    assert(db != NULL);
    assert(sqlite_rc != SQLITE_OK);
    int primary = sqlite_rc & 0xff;
    const char *detail = db->sqlite != NULL ? sqlite3_errmsg(db->sqlite)
                                            : sqlite3_errstr(sqlite_rc);
    int code = REPORT_EIO;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        code = REPORT_EBUSY;
    } else if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH ||
               primary == SQLITE_TOOBIG || primary == SQLITE_RANGE) {
        code = REPORT_EINVAL;
    } else if (primary == SQLITE_NOMEM) {
        code = REPORT_ENOMEM;
    } else if (primary == SQLITE_FULL) {
        code = REPORT_ENOSPC;
    } else if (primary == SQLITE_NOTADB) {
        code = REPORT_ENOTDB;
    } else if (primary == SQLITE_CANTOPEN) {
        code = REPORT_ENOENT;
    }
    return report__fail(db, code, "%s: %s", what, detail);
}

int64_t report__i64_from_bits(uint64_t bits)
{
    if (bits <= (uint64_t)INT64_MAX) {
        return (int64_t)bits;
    }
    /* bits >= 2^63: the value is bits - 2^64, computed without overflow. */
    return -(int64_t)(~bits) - 1;
}

uint64_t report__bits_from_i64(int64_t value)
{
    return (uint64_t)value; /* well defined: modulo 2^64 */
}

const char *report_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case REPORT_EINVAL: return "invalid argument";
    case REPORT_ENOENT: return "not found";
    case REPORT_EIO: return "database error";
    case REPORT_ENOSPC: return "disk full";
    case REPORT_ENOMEM: return "out of memory";
    case REPORT_EBUSY: return "database locked by other writers";
    case REPORT_EVERSION: return "database schema is newer than this build";
    case REPORT_ENOTDB: return "not a chaoslab report database";
    default: return "unknown error";
    }
}

const char *report_verdict_name(report_verdict_t verdict)
{
    switch (verdict) {
    case REPORT_VERDICT_PASS: return "pass";
    case REPORT_VERDICT_FAIL: return "fail";
    case REPORT_VERDICT_ERROR: return "error";
    case REPORT_VERDICT_STALLED: return "stalled";
    case REPORT_VERDICT_INVARIANT: return "invariant";
    }
    return "error";
}

const char *report_expect_name(report_expect_t expected)
{
    return expected == REPORT_EXPECT_VIOLATION ? "violation" : "pass";
}

const char *report_db_errmsg(const report_db_t *db)
{
    return db != NULL ? db->errmsg : "";
}

/* Sleep between whole-operation retries; the busy handler has already waited
 * REPORT_BUSY_TIMEOUT_MS, so this only spreads colliding writers apart. */
static void report__backoff(int attempt)
{
    assert(attempt >= 0);
    assert(attempt < REPORT_BUSY_RETRY_MAX);
    struct timespec ts = {0, (long)(attempt + 1) * 5L * 1000L * 1000L};
    nanosleep(&ts, NULL);
}

static int report__exec(report_db_t *db, const char *sql, const char *what)
{
    assert(db != NULL && db->sqlite != NULL);
    assert(sql != NULL);
    int rc = sqlite3_exec(db->sqlite, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : report__sqlite_fail(db, rc, what);
}

/* A single integer from a one-row query (PRAGMA user_version, counts). */
static int report__query_int(report_db_t *db, const char *sql,
                             int64_t *value)
{
    assert(db != NULL && db->sqlite != NULL);
    assert(value != NULL);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sqlite, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return report__sqlite_fail(db, rc, "reading the schema");
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    int result = rc == SQLITE_OK || rc == SQLITE_DONE
                     ? 0 : report__sqlite_fail(db, rc, "reading the schema");
    sqlite3_finalize(st);
    return result;
}

/* Switch to WAL. A concurrent opener may hold a lock for a moment, so retry;
 * if the file system cannot do WAL we keep the rollback journal (slower with
 * many writers, still correct). */
static int report__enable_wal(report_db_t *db)
{
    assert(db != NULL && db->sqlite != NULL);
    for (int attempt = 0; attempt < REPORT_BUSY_RETRY_MAX; attempt++) {
        int rc = report__exec(db, "PRAGMA journal_mode=WAL", "enabling WAL");
        if (rc != REPORT_EBUSY) {
            return rc;
        }
        report__backoff(attempt);
    }
    return report__fail(db, REPORT_EBUSY, "enabling WAL: database locked");
}

/* Check user_version and create the schema on an empty file, inside one
 * IMMEDIATE transaction so two processes creating the same new file never
 * both run CREATE TABLE. */
static int report__ensure_schema_once(report_db_t *db, int may_create)
{
    assert(db != NULL && db->sqlite != NULL);
    int rc = report__exec(db, may_create ? "BEGIN IMMEDIATE" : "BEGIN",
                          "locking the database");
    if (rc != 0) {
        return rc;
    }
    int64_t version = 0;
    int64_t tables = 0;
    rc = report__query_int(db, "PRAGMA user_version", &version);
    if (rc == 0) {
        rc = report__query_int(db, "SELECT count(*) FROM sqlite_master",
                               &tables);
    }
    if (rc == 0 && version > REPORT_SCHEMA_VERSION) {
        rc = report__fail(db, REPORT_EVERSION,
                          "database schema version %lld is newer than this "
                          "chaoslab understands (%d): upgrade chaoslab",
                          (long long)version, REPORT_SCHEMA_VERSION);
    } else if (rc == 0 && version == 0 && tables > 0) {
        rc = report__fail(db, REPORT_ENOTDB, "not a chaoslab report database "
                          "(it has tables but no schema version)");
    } else if (rc == 0 && version == 0 && !may_create) {
        rc = report__fail(db, REPORT_ENOTDB, "not a chaoslab report database "
                          "(empty file)");
    } else if (rc == 0 && version == 0) {
        rc = report__exec(db, report__schema_sql, "creating the schema");
        if (rc == 0) {
            rc = report__exec(db,
                              "INSERT INTO schema_version (version) VALUES (2);"
                              "PRAGMA user_version = 2;",
                              "recording the schema version");
        }
    } else if (rc == 0 && version == 1) {
        rc = report__exec(db, report__migrate_v1_sql,
                          "upgrading the database from schema version 1");
    }
    if (rc != 0) {
        sqlite3_exec(db->sqlite, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return report__exec(db, "COMMIT", "committing the schema");
}

static int report__ensure_schema(report_db_t *db, int may_create)
{
    assert(db != NULL);
    assert(REPORT_SCHEMA_VERSION == 2);
    for (int attempt = 0; attempt < REPORT_BUSY_RETRY_MAX; attempt++) {
        int rc = report__ensure_schema_once(db, may_create);
        if (rc != REPORT_EBUSY) {
            return rc;
        }
        report__backoff(attempt);
    }
    return report__fail(db, REPORT_EBUSY, "database locked by other writers");
}

static int report__open(const char *path, report_db_t **out, char *errmsg,
                        size_t errmsg_size, int may_create)
{
    assert(out != NULL);
    *out = NULL;
    if (errmsg != NULL && errmsg_size > 0) {
        errmsg[0] = '\0';
    }
    report_db_t *db = calloc(1, sizeof *db);
    if (db == NULL) {
        if (errmsg != NULL && errmsg_size > 0) {
            snprintf(errmsg, errmsg_size, "out of memory");
        }
        return REPORT_ENOMEM;
    }
    int rc = 0;
    if (path == NULL || path[0] == '\0') {
        rc = report__fail(db, REPORT_EINVAL, "no database file given");
    } else if (!may_create && access(path, F_OK) != 0) {
        rc = report__fail(db, REPORT_ENOENT, "%s: no such database file",
                          path);
    } else {
        int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                    (may_create ? SQLITE_OPEN_CREATE : 0);
        int src = sqlite3_open_v2(path, &db->sqlite, flags, NULL);
        if (src != SQLITE_OK) {
            rc = report__sqlite_fail(db, src, path);
        }
    }
    if (rc == 0) {
        sqlite3_busy_timeout(db->sqlite, REPORT_BUSY_TIMEOUT_MS);
        sqlite3_extended_result_codes(db->sqlite, 1);
        /* Foreign keys stay off until the schema is current: the version
         * 1 -> 2 upgrade drops and recreates the parent table. */
        rc = report__ensure_schema(db, may_create);
    }
    if (rc == 0) {
        rc = report__exec(db, "PRAGMA foreign_keys=ON", "configuring");
    }
    if (rc == 0 && may_create) {
        rc = report__enable_wal(db);
    }
    if (rc == 0 && may_create) {
        /* NORMAL is crash-safe in WAL (a power cut may lose the last runs,
         * never corrupt the file) and avoids an fsync per run in sweeps. */
        rc = report__exec(db, "PRAGMA synchronous=NORMAL", "configuring");
    }
    if (rc != 0) {
        if (errmsg != NULL && errmsg_size > 0) {
            snprintf(errmsg, errmsg_size, "%s", db->errmsg);
        }
        report_db_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

int report_db_open(const char *path, report_db_t **out, char *errmsg,
                   size_t errmsg_size)
{
    return report__open(path, out, errmsg, errmsg_size, 1);
}

int report_db_open_existing(const char *path, report_db_t **out,
                            char *errmsg, size_t errmsg_size)
{
    return report__open(path, out, errmsg, errmsg_size, 0);
}

void report_db_close(report_db_t *db)
{
    if (db == NULL) {
        return;
    }
    /* sqlite3_close_v2 defers the close if a statement leaked; all of ours
     * are finalized on every path, so this frees immediately. */
    sqlite3_close_v2(db->sqlite);
    free(db);
}
