/*
 * reports/report.h — the SQLite report store: one row per simulated run plus
 * its invariant results, metrics, time series, fault timeline and
 * violations; the writer used by `chaoslab run`, and the `chaoslab report`
 * queries (list, show, compare) that read it back.
 *
 * Ownership: every pointer inside a report_run_t is borrowed from the caller
 * for the duration of report_db_write_run() only; the writer copies what it
 * stores. A report_db_t is allocated by report_db_open*() and released by
 * report_db_close(). One report_db_t belongs to one thread; never share it
 * across fork(): each worker process opens its own. Several processes may
 * write to the same file at once (WAL mode + busy timeout + bounded retry).
 *
 * Errors are negative REPORT_E* codes (values match broker/io.h's IO_E* where
 * the meaning is the same); report_db_errmsg() holds the last message.
 * The schema is documented in docs/reports.md.
 */
#ifndef CHAOSLAB_REPORTS_REPORT_H
#define CHAOSLAB_REPORTS_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The schema this code writes and understands (PRAGMA user_version and the
 * schema_version table). A database with a larger number is refused. */
#define REPORT_SCHEMA_VERSION 2

/* Limits: a run larger than these is refused (REPORT_EINVAL), never cut. */
#define REPORT_CONFIG_MAX 128         /* key=value pairs per run */
#define REPORT_INVARIANTS_MAX 256     /* invariant results per run */
#define REPORT_METRICS_MAX 1024       /* metrics per run */
#define REPORT_SERIES_MAX 100000      /* time-series intervals per run */
#define REPORT_FAULTS_MAX 100000      /* fault timeline entries per run */
#define REPORT_VIOLATIONS_MAX 100000  /* violation rows per run */
#define REPORT_TEXT_SIZE_MAX 65536    /* bytes in any one text field */
#define REPORT_STRATEGY_SIZE_MAX 4096 /* bytes in the joined strategy string */
#define REPORT_ERRMSG_SIZE_MAX 512    /* bytes in report_db_errmsg() */
#define REPORT_LIST_LIMIT_DEFAULT 20  /* rows `report list` prints by default */
#define REPORT_LIST_LIMIT_MAX 100000  /* rows `report list` prints at most */
#define REPORT_BUSY_TIMEOUT_MS 10000  /* sqlite3_busy_timeout per connection */
#define REPORT_BUSY_RETRY_MAX 20      /* whole-transaction retries on BUSY */

/* Error codes (negative). */
enum {
    REPORT_EINVAL = -1,   /* bad argument or a run field the schema refuses */
    REPORT_ENOENT = -2,   /* database file or run id does not exist */
    REPORT_EIO = -3,      /* SQLite or file system failure */
    REPORT_ENOSPC = -4,   /* disk full */
    REPORT_ENOMEM = -6,   /* out of memory */
    REPORT_EBUSY = -20,   /* still locked by other writers after every retry */
    REPORT_EVERSION = -21,/* schema newer than this build understands */
    REPORT_ENOTDB = -22,  /* file is not a chaoslab report database */
};

typedef enum report_verdict {
    REPORT_VERDICT_PASS = 0,  /* every expectation held (exit 0) */
    REPORT_VERDICT_FAIL = 1,  /* an expectation failed (exit 1) */
    REPORT_VERDICT_ERROR = 2, /* the run could not be completed (exit 2) */
    REPORT_VERDICT_STALLED = 3,   /* over its event or wall budget (exit 1) */
    REPORT_VERDICT_INVARIANT = 4, /* an internal invariant tripped (exit 1) */
} report_verdict_t;

typedef enum report_expect {
    REPORT_EXPECT_PASS = 0,      /* the invariant must hold */
    REPORT_EXPECT_VIOLATION = 1, /* teaching scenario: it must be violated */
} report_expect_t;

/* One strategy/config setting, e.g. {"acks", "quorum"}. Keys and values are
 * non-empty and contain no whitespace; keys contain no '='. */
typedef struct report_kv {
    const char *key;
    const char *value;
} report_kv_t;

typedef struct report_invariant {
    const char *name;      /* "no_loss", "availability>=0.99", ... */
    int passed;            /* 1 = the invariant held in this run */
    report_expect_t expected;
    int as_expected;       /* 1 = the outcome matched `expected` */
    const char *figures;   /* free text or JSON; NULL = none */
} report_invariant_t;

typedef struct report_metric {
    const char *name;      /* "publish_confirm_p99", ... */
    double value;          /* finite; NaN/inf are refused */
    const char *unit;      /* "ns", "msgs", "ratio", ... ("" = none) */
} report_metric_t;

/* One interval of the time series: counts of client operations that
 * completed in [t_ns, t_ns + interval_ns). */
typedef struct report_sample {
    uint64_t t_ns;
    uint64_t interval_ns;
    uint64_t published;
    uint64_t confirmed;
    uint64_t consumed;
    uint64_t failed;
    double availability;   /* confirmed share of attempts, in [0, 1] */
} report_sample_t;

typedef struct report_fault {
    uint64_t t_ns;         /* virtual time the fault started or healed */
    const char *kind;      /* "partition", "crash", "heal", ... */
    const char *target;    /* "n1", "n1->n2", "disk:n3", ... ("" = all) */
    const char *detail;    /* NULL = none */
} report_fault_t;

typedef struct report_violation {
    const char *invariant; /* which checker found it */
    const char *message_id;/* the message concerned; NULL = not about one */
    uint64_t t_ns;         /* virtual time it was observed */
    const char *detail;    /* NULL = none */
} report_violation_t;

/* Everything about one run. Array pointers may be NULL when their count is
 * 0. Times and counts above INT64_MAX are refused (SQLite integers are
 * signed); seed and trace_hash keep all 64 bits. */
typedef struct report_run {
    const char *scenario_path;   /* as given on the command line */
    const char *scenario_name;   /* the scenario's own name */
    uint64_t seed;
    const report_kv_t *config;
    size_t config_count;
    report_verdict_t verdict;
    uint64_t trace_hash;         /* stored as 16 lowercase hex digits */
    uint64_t sim_time_ns;
    uint64_t wall_time_ns;
    uint64_t events;
    int exit_code;
    const char *reproduce;       /* "chaoslab run FILE --seed N" */
    /* Identity: runs that differ in any of these are never grouped by
     * `report compare` (with the config hash, computed from `config`). */
    const char *scenario_hash;   /* the scenario file's content; NULL = "" */
    const char *binary_version;  /* the binary that ran it; NULL = "" */
    const report_invariant_t *invariants;
    size_t invariant_count;
    const report_metric_t *metrics;
    size_t metric_count;
    const report_sample_t *series;
    size_t series_count;
    const report_fault_t *faults;
    size_t fault_count;
    const report_violation_t *violations;
    size_t violation_count;
} report_run_t;

typedef struct report_db report_db_t;

/* Open (creating if needed) the database at `path` for writing: creates the
 * schema on a new file, switches to WAL, sets the busy timeout. On success
 * *out is a new handle the caller must report_db_close(). On failure *out is
 * NULL and the return value is REPORT_EVERSION (schema newer than ours),
 * REPORT_ENOTDB, REPORT_EBUSY, REPORT_ENOMEM or REPORT_EIO; when `errmsg`
 * is not NULL it receives a message (errmsg_size bytes, NUL-terminated). */
int report_db_open(const char *path, report_db_t **out,
                   char *errmsg, size_t errmsg_size);

/* Open an existing database for queries; never creates a file. Fails with
 * REPORT_ENOENT if `path` does not exist, otherwise as report_db_open(). */
int report_db_open_existing(const char *path, report_db_t **out,
                            char *errmsg, size_t errmsg_size);

/* Close the handle and free it. NULL is a no-op. Never fails. */
void report_db_close(report_db_t *db);

/* The message for the last failure on `db` ("" if none). Owned by db. */
const char *report_db_errmsg(const report_db_t *db);

/* Store `run` and all its rows in ONE transaction: either everything is
 * written or nothing is. On success returns 0 and, if run_id_out is not
 * NULL, sets it to the new runs.id. Fails with REPORT_EINVAL (a field out of
 * range, a limit exceeded, or a schema constraint failed — the message names
 * the field), REPORT_EBUSY (still locked after REPORT_BUSY_RETRY_MAX
 * retries), REPORT_ENOSPC or REPORT_EIO. */
int report_db_write_run(report_db_t *db, const report_run_t *run,
                        int64_t *run_id_out);

/* Filters and format for report_query_list(). NULL strings = no filter. */
typedef struct report_list_opts {
    const char *scenario; /* scenario name or path */
    const char *verdict;  /* "pass", "fail" or "error" */
    size_t limit;         /* 1..REPORT_LIST_LIMIT_MAX */
    int json;             /* 1 = one JSON document instead of a table */
} report_list_opts_t;

/* Print the most recent runs (newest first) to `out`. Returns 0, or
 * REPORT_EINVAL (bad verdict/limit) / REPORT_EIO. */
int report_query_list(report_db_t *db, const report_list_opts_t *opts,
                      FILE *out);

/* Print everything about run `run_id`. Returns 0, REPORT_ENOENT if there is
 * no such run, or REPORT_EIO. */
int report_query_show(report_db_t *db, int64_t run_id, int json, FILE *out);
/* The stored reproduce command and trace hash (16 hex digits) of run_id, to
 * re-simulate it (`report show RUN --html`). REPORT_ENOENT if no such run. */
int report_query_replay(report_db_t *db, int64_t run_id, char *reproduce, size_t reproduce_cap,
                        char trace_hash[17]);

/* Print pass rates per (scenario, strategy) and per invariant across seeds;
 * `scenario` (name or path) restricts to one scenario, NULL = all. Returns
 * 0 or REPORT_EIO. */
int report_query_compare(report_db_t *db, const char *scenario, int json,
                         FILE *out);

/* Copy every run of the database at `path` into `db` unless a run with
 * the same natural key (scenario, scenario_hash, config_hash,
 * binary_version, seed, verdict, trace_hash) is there already; copied runs
 * get new ids and their rows follow. One transaction: all or nothing.
 * `path` is only read; its schema version must be REPORT_SCHEMA_VERSION.
 * Returns 0 with the counts, REPORT_ENOTDB, REPORT_EVERSION, REPORT_EBUSY
 * or REPORT_EIO (message in report_db_errmsg). */
int report_db_merge(report_db_t *db, const char *path, uint64_t *added,
                    uint64_t *skipped);
/* Only the input checks of report_db_merge (0 = it would be accepted). */
int report_db_merge_check(report_db_t *db, const char *path);

#define REPORT_TOLERANCE_DEFAULT 0.0          /* rates: absolute drop allowed */
#define REPORT_LATENCY_TOLERANCE_DEFAULT 0.10 /* latency: relative growth allowed */

typedef struct report_baseline_opts {
    const char *baseline_path; /* OLD.db, read only; same schema version */
    const char *scenario;      /* name or path; NULL = all */
    double tolerance;          /* [0, 1]: pass rate / availability drop allowed */
    double latency_tolerance;  /* >= 0: relative confirm p50/p99 growth allowed */
    int match_variant;         /* 0 = pair by config hash, 1 = by variant */
} report_baseline_opts_t;

/* `report compare --baseline`: pair this database's groups with the
 * baseline's (reports/baseline.c), print every figure, and set
 * *regressions to the number that regressed beyond the tolerances.
 * Returns 0, or REPORT_EINVAL / REPORT_ENOTDB / REPORT_EVERSION /
 * REPORT_EIO (message in report_db_errmsg). */
int report_query_baseline(report_db_t *db, const report_baseline_opts_t *o,
                          FILE *out, int *regressions);

/* `chaoslab report ...`: argv[0] is the command word ("report", ignored),
 * argv[1] the subcommand (list, show, compare). Results go to `out`,
 * messages to `err`. Returns the process exit code: 0 success, 1 unknown run
 * id (show), 2 bad usage, missing database, or any database error. */
int report_cli_main(int argc, char **argv, FILE *out, FILE *err);

/* Short text for a REPORT_E* code. Never NULL. */
const char *report_strerror(int code);

/* Text forms stored in the database ("pass", "fail", "error";
 * "pass", "violation"). Never NULL. */
const char *report_verdict_name(report_verdict_t verdict);
const char *report_expect_name(report_expect_t expected);

#endif /* CHAOSLAB_REPORTS_REPORT_H */
