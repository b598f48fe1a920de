/*
 * reports/report.c — the writer: one run, all its rows, one transaction.
 *
 * Why one transaction: a report database is read by CI and by `report
 * compare`; a run with half its invariants written would count as a run that
 * passed nothing. Either all rows land or none do, and a field the schema
 * refuses (NULL name, NaN metric, out-of-range count) rolls the run back.
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "reports/report_internal.h"

/* An insert statement with a sticky error: after the first failure every
 * later bind/step is a no-op, so insert loops stay short and the first
 * message survives. */
typedef struct report__ins {
    report_db_t *db;
    sqlite3_stmt *st;
    const char *table;
    size_t row;
    int rc;
} report__ins_t;

static void report__ins_open(report__ins_t *in, report_db_t *db,
                             const char *table, const char *sql)
{
    assert(db != NULL && db->sqlite != NULL);
    assert(table != NULL && sql != NULL);
    memset(in, 0, sizeof *in);
    in->db = db;
    in->table = table;
    int rc = sqlite3_prepare_v2(db->sqlite, sql, -1, &in->st, NULL);
    if (rc != SQLITE_OK) {
        in->rc = report__sqlite_fail(db, rc, table);
    }
}

static void report__ins_text(report__ins_t *in, int col, const char *s,
                             const char *field)
{
    assert(in != NULL);
    assert(col > 0);
    if (in->rc != 0) {
        return;
    }
    if (s != NULL && strnlen(s, REPORT_TEXT_SIZE_MAX + 1) >
                         REPORT_TEXT_SIZE_MAX) {
        in->rc = report__fail(in->db, REPORT_EINVAL,
                              "%s[%zu].%s is longer than %d bytes", in->table,
                              in->row, field, REPORT_TEXT_SIZE_MAX);
        return;
    }
    /* NULL binds SQL NULL: NOT NULL columns then refuse it by name. */
    int rc = sqlite3_bind_text(in->st, col, s, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        in->rc = report__sqlite_fail(in->db, rc, in->table);
    }
}

static void report__ins_i64(report__ins_t *in, int col, int64_t value)
{
    assert(in != NULL);
    assert(col > 0);
    if (in->rc == 0) {
        int rc = sqlite3_bind_int64(in->st, col, value);
        if (rc != SQLITE_OK) {
            in->rc = report__sqlite_fail(in->db, rc, in->table);
        }
    }
}

/* Times and counts: SQLite integers are signed, so values above INT64_MAX
 * are refused rather than silently stored negative. */
static void report__ins_u64(report__ins_t *in, int col, uint64_t value,
                            const char *field)
{
    assert(in != NULL);
    if (in->rc == 0 && value > (uint64_t)INT64_MAX) {
        in->rc = report__fail(in->db, REPORT_EINVAL,
                              "%s[%zu].%s = %" PRIu64 " is above INT64_MAX",
                              in->table, in->row, field, value);
    }
    report__ins_i64(in, col, (int64_t)(value & (uint64_t)INT64_MAX));
}

static void report__ins_double(report__ins_t *in, int col, double value,
                               const char *field)
{
    assert(in != NULL);
    assert(col > 0);
    if (in->rc != 0) {
        return;
    }
    if (!isfinite(value)) {
        in->rc = report__fail(in->db, REPORT_EINVAL,
                              "%s[%zu].%s is not a finite number", in->table,
                              in->row, field);
        return;
    }
    int rc = sqlite3_bind_double(in->st, col, value);
    if (rc != SQLITE_OK) {
        in->rc = report__sqlite_fail(in->db, rc, in->table);
    }
}

/* Execute the bound row and get ready for the next one. */
static void report__ins_step(report__ins_t *in)
{
    assert(in != NULL);
    if (in->rc == 0) {
        int rc = sqlite3_step(in->st);
        if (rc != SQLITE_DONE) {
            char what[96];
            snprintf(what, sizeof what, "%s[%zu]", in->table, in->row);
            in->rc = report__sqlite_fail(in->db, rc, what);
        }
    }
    if (in->st != NULL) {
        sqlite3_reset(in->st);
        sqlite3_clear_bindings(in->st);
    }
    in->row++;
}

static int report__ins_close(report__ins_t *in)
{
    assert(in != NULL);
    sqlite3_finalize(in->st);
    in->st = NULL;
    return in->rc;
}

static const char *report__or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* ---- validation done before the transaction ---- */

static int report__check_word(report_db_t *db, const char *s, size_t index,
                              const char *field, int allow_equals)
{
    assert(db != NULL);
    assert(field != NULL);
    if (s == NULL || s[0] == '\0') {
        return report__fail(db, REPORT_EINVAL, "config[%zu].%s is empty",
                            index, field);
    }
    size_t len = strnlen(s, REPORT_STRATEGY_SIZE_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || (c == '=' && !allow_equals)) {
            return report__fail(db, REPORT_EINVAL,
                                "config[%zu].%s \"%s\" contains a space, "
                                "control character or '='", index, field, s);
        }
    }
    return 0;
}

/* FNV-1a 64, folded over the canonical config text. */
static uint64_t report__fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    }
    return h;
}

/* The strategy string is the config's strategy keys (keys without a '.')
 * sorted and joined as "k=v k=v": sorting makes it canonical, so `report
 * compare` groups runs with the same settings whatever order the scenario
 * listed them in. The config hash covers every key but the "run." ones
 * (facts of the run, such as the swarm's per-seed draw): two runs with any
 * other difference in configuration get different hashes. */
static int report__strategy(report_db_t *db, const report_run_t *run,
                            char *buf, size_t size, uint64_t *config_hash)
{
    assert(run->config_count <= REPORT_CONFIG_MAX);
    assert(size == REPORT_STRATEGY_SIZE_MAX);
    size_t order[REPORT_CONFIG_MAX];
    for (size_t i = 0; i < run->config_count; i++) {
        const report_kv_t *kv = &run->config[i];
        int rc = report__check_word(db, kv->key, i, "key", 0);
        if (rc == 0) {
            rc = report__check_word(db, kv->value, i, "value", 1);
        }
        if (rc != 0) {
            return rc;
        }
        size_t j = i; /* insertion sort: at most REPORT_CONFIG_MAX items */
        while (j > 0 && strcmp(run->config[order[j - 1]].key, kv->key) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        if (j > 0 && strcmp(run->config[order[j - 1]].key, kv->key) == 0) {
            return report__fail(db, REPORT_EINVAL,
                                "config key \"%s\" appears twice", kv->key);
        }
        order[j] = i;
    }
    size_t used = 0;
    buf[0] = '\0';
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < run->config_count; i++) {
        const report_kv_t *kv = &run->config[order[i]];
        if (strncmp(kv->key, "run.", 4) != 0) {
            h = report__fnv(report__fnv(report__fnv(h, kv->key), "="), kv->value);
            h = report__fnv(h, "\n");
        }
        if (strchr(kv->key, '.') != NULL) {
            continue;
        }
        int n = snprintf(buf + used, size - used, "%s%s=%s", used ? " " : "",
                         kv->key, kv->value);
        if (n < 0 || (size_t)n >= size - used) {
            return report__fail(db, REPORT_EINVAL, "config is longer than "
                                "%d bytes", REPORT_STRATEGY_SIZE_MAX - 1);
        }
        used += (size_t)n;
    }
    *config_hash = h;
    return 0;
}

static int report__check_array(report_db_t *db, const void *array,
                               size_t count, size_t max, const char *name)
{
    assert(db != NULL);
    assert(name != NULL);
    if (count > max) {
        return report__fail(db, REPORT_EINVAL, "%zu %s: more than the "
                            "limit of %zu", count, name, max);
    }
    if (count > 0 && array == NULL) {
        return report__fail(db, REPORT_EINVAL, "%s: count %zu but no array",
                            name, count);
    }
    return 0;
}

static int report__validate(report_db_t *db, const report_run_t *run)
{
    assert(db != NULL);
    assert(run != NULL);
    int rc = report__check_array(db, run->config, run->config_count,
                                 REPORT_CONFIG_MAX, "config");
    if (rc == 0) {
        rc = report__check_array(db, run->invariants, run->invariant_count,
                                 REPORT_INVARIANTS_MAX, "invariants");
    }
    if (rc == 0) {
        rc = report__check_array(db, run->metrics, run->metric_count,
                                 REPORT_METRICS_MAX, "metrics");
    }
    if (rc == 0) {
        rc = report__check_array(db, run->series, run->series_count,
                                 REPORT_SERIES_MAX, "series");
    }
    if (rc == 0) {
        rc = report__check_array(db, run->faults, run->fault_count,
                                 REPORT_FAULTS_MAX, "faults");
    }
    if (rc == 0) {
        rc = report__check_array(db, run->violations, run->violation_count,
                                 REPORT_VIOLATIONS_MAX, "violations");
    }
    if (rc == 0 && (run->verdict < REPORT_VERDICT_PASS ||
                    run->verdict > REPORT_VERDICT_INVARIANT)) {
        rc = report__fail(db, REPORT_EINVAL, "verdict %d is not pass, fail, "
                          "error, stalled or invariant", (int)run->verdict);
    }
    return rc;
}

/* ---- the inserts ---- */

static int report__insert_run(report_db_t *db, const report_run_t *run,
                              const char *strategy, uint64_t config_hash,
                              int64_t *run_id)
{
    assert(run != NULL && strategy != NULL);
    assert(run_id != NULL);
    report__ins_t in;
    report__ins_open(&in, db, "runs",
        "INSERT INTO runs (scenario_path, scenario, seed, strategy, verdict,"
        " trace_hash, sim_time_ns, wall_time_ns, events, exit_code,"
        " reproduce, config_hash, scenario_hash, binary_version)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14)");
    char hash[17], cfg_hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, run->trace_hash);
    snprintf(cfg_hash, sizeof cfg_hash, "%016" PRIx64, config_hash);
    report__ins_text(&in, 12, cfg_hash, "config_hash");
    report__ins_text(&in, 13, report__or_empty(run->scenario_hash),
                     "scenario_hash");
    report__ins_text(&in, 14, report__or_empty(run->binary_version),
                     "binary_version");
    report__ins_text(&in, 1, run->scenario_path, "scenario_path");
    report__ins_text(&in, 2, run->scenario_name, "scenario_name");
    report__ins_i64(&in, 3, report__i64_from_bits(run->seed));
    report__ins_text(&in, 4, strategy, "strategy");
    report__ins_text(&in, 5, report_verdict_name(run->verdict), "verdict");
    report__ins_text(&in, 6, hash, "trace_hash");
    report__ins_u64(&in, 7, run->sim_time_ns, "sim_time_ns");
    report__ins_u64(&in, 8, run->wall_time_ns, "wall_time_ns");
    report__ins_u64(&in, 9, run->events, "events");
    report__ins_i64(&in, 10, run->exit_code);
    report__ins_text(&in, 11, run->reproduce, "reproduce");
    report__ins_step(&in);
    *run_id = sqlite3_last_insert_rowid(db->sqlite);
    return report__ins_close(&in);
}

static int report__insert_config(report_db_t *db, const report_run_t *run,
                                 int64_t run_id)
{
    assert(run != NULL);
    assert(run_id > 0);
    report__ins_t in;
    report__ins_open(&in, db, "config", "INSERT INTO run_config "
                     "(run_id, position, key, value) VALUES (?1,?2,?3,?4)");
    for (size_t i = 0; i < run->config_count && in.rc == 0; i++) {
        report__ins_i64(&in, 1, run_id);
        report__ins_i64(&in, 2, (int64_t)i);
        report__ins_text(&in, 3, run->config[i].key, "key");
        report__ins_text(&in, 4, run->config[i].value, "value");
        report__ins_step(&in);
    }
    return report__ins_close(&in);
}

static int report__insert_invariants(report_db_t *db, const report_run_t *run,
                                     int64_t run_id)
{
    assert(run != NULL);
    assert(run_id > 0);
    report__ins_t in;
    report__ins_open(&in, db, "invariants", "INSERT INTO invariants (run_id,"
                     " position, name, passed, expected, as_expected, figures)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    for (size_t i = 0; i < run->invariant_count && in.rc == 0; i++) {
        const report_invariant_t *inv = &run->invariants[i];
        report__ins_i64(&in, 1, run_id);
        report__ins_i64(&in, 2, (int64_t)i);
        report__ins_text(&in, 3, inv->name, "name");
        report__ins_i64(&in, 4, inv->passed);
        /* Out-of-range enum values bind text the CHECK refuses. */
        report__ins_text(&in, 5, inv->expected == REPORT_EXPECT_PASS ? "pass"
                         : inv->expected == REPORT_EXPECT_VIOLATION
                               ? "violation" : "?", "expected");
        report__ins_i64(&in, 6, inv->as_expected);
        report__ins_text(&in, 7, report__or_empty(inv->figures), "figures");
        report__ins_step(&in);
    }
    return report__ins_close(&in);
}

static int report__insert_metrics(report_db_t *db, const report_run_t *run,
                                  int64_t run_id)
{
    assert(run != NULL);
    assert(run_id > 0);
    report__ins_t in;
    report__ins_open(&in, db, "metrics", "INSERT INTO metrics (run_id, "
                     "position, name, value, unit) VALUES (?1,?2,?3,?4,?5)");
    for (size_t i = 0; i < run->metric_count && in.rc == 0; i++) {
        const report_metric_t *m = &run->metrics[i];
        report__ins_i64(&in, 1, run_id);
        report__ins_i64(&in, 2, (int64_t)i);
        report__ins_text(&in, 3, m->name, "name");
        report__ins_double(&in, 4, m->value, "value");
        report__ins_text(&in, 5, report__or_empty(m->unit), "unit");
        report__ins_step(&in);
    }
    return report__ins_close(&in);
}

static int report__insert_series(report_db_t *db, const report_run_t *run,
                                 int64_t run_id)
{
    assert(run != NULL);
    assert(run_id > 0);
    report__ins_t in;
    report__ins_open(&in, db, "series", "INSERT INTO series (run_id, "
                     "position, t_ns, interval_ns, published, confirmed, "
                     "consumed, failed, availability) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    for (size_t i = 0; i < run->series_count && in.rc == 0; i++) {
        const report_sample_t *s = &run->series[i];
        report__ins_i64(&in, 1, run_id);
        report__ins_i64(&in, 2, (int64_t)i);
        report__ins_u64(&in, 3, s->t_ns, "t_ns");
        report__ins_u64(&in, 4, s->interval_ns, "interval_ns");
        report__ins_u64(&in, 5, s->published, "published");
        report__ins_u64(&in, 6, s->confirmed, "confirmed");
        report__ins_u64(&in, 7, s->consumed, "consumed");
        report__ins_u64(&in, 8, s->failed, "failed");
        report__ins_double(&in, 9, s->availability, "availability");
        report__ins_step(&in);
    }
    return report__ins_close(&in);
}

static int report__insert_faults(report_db_t *db, const report_run_t *run,
                                 int64_t run_id)
{
    assert(run != NULL);
    assert(run_id > 0);
    report__ins_t in;
    report__ins_open(&in, db, "faults", "INSERT INTO faults (run_id, "
                     "position, t_ns, kind, target, detail) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    for (size_t i = 0; i < run->fault_count && in.rc == 0; i++) {
        const report_fault_t *f = &run->faults[i];
        report__ins_i64(&in, 1, run_id);
        report__ins_i64(&in, 2, (int64_t)i);
        report__ins_u64(&in, 3, f->t_ns, "t_ns");
        report__ins_text(&in, 4, f->kind, "kind");
        report__ins_text(&in, 5, report__or_empty(f->target), "target");
        report__ins_text(&in, 6, report__or_empty(f->detail), "detail");
        report__ins_step(&in);
    }
    return report__ins_close(&in);
}

static int report__insert_violations(report_db_t *db, const report_run_t *run,
                                     int64_t run_id)
{
    assert(run != NULL);
    assert(run_id > 0);
    report__ins_t in;
    report__ins_open(&in, db, "violations", "INSERT INTO violations (run_id,"
                     " position, invariant, message_id, t_ns, detail) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    for (size_t i = 0; i < run->violation_count && in.rc == 0; i++) {
        const report_violation_t *v = &run->violations[i];
        report__ins_i64(&in, 1, run_id);
        report__ins_i64(&in, 2, (int64_t)i);
        report__ins_text(&in, 3, v->invariant, "invariant");
        report__ins_text(&in, 4, v->message_id, "message_id");
        report__ins_u64(&in, 5, v->t_ns, "t_ns");
        report__ins_text(&in, 6, report__or_empty(v->detail), "detail");
        report__ins_step(&in);
    }
    return report__ins_close(&in);
}

/* One attempt: BEGIN IMMEDIATE ... COMMIT, rolled back on any failure. */
static int report__write_once(report_db_t *db, const report_run_t *run,
                              const char *strategy, uint64_t config_hash,
                              int64_t *run_id)
{
    assert(db != NULL && run != NULL);
    assert(run_id != NULL);
    int rc = sqlite3_exec(db->sqlite, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return report__sqlite_fail(db, rc, "locking the database");
    }
    int err = report__insert_run(db, run, strategy, config_hash, run_id);
    if (err == 0) {
        err = report__insert_config(db, run, *run_id);
    }
    if (err == 0) {
        err = report__insert_invariants(db, run, *run_id);
    }
    if (err == 0) {
        err = report__insert_metrics(db, run, *run_id);
    }
    if (err == 0) {
        err = report__insert_series(db, run, *run_id);
    }
    if (err == 0) {
        err = report__insert_faults(db, run, *run_id);
    }
    if (err == 0) {
        err = report__insert_violations(db, run, *run_id);
    }
    if (err == 0) {
        rc = sqlite3_exec(db->sqlite, "COMMIT", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            return 0;
        }
        err = report__sqlite_fail(db, rc, "committing the run");
    }
    /* ROLLBACK can only fail if there is no transaction left to undo. */
    sqlite3_exec(db->sqlite, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

int report_db_write_run(report_db_t *db, const report_run_t *run,
                        int64_t *run_id_out)
{
    assert(db != NULL && db->sqlite != NULL);
    if (run == NULL) {
        return report__fail(db, REPORT_EINVAL, "no run given");
    }
    db->errmsg[0] = '\0';
    char strategy[REPORT_STRATEGY_SIZE_MAX];
    uint64_t config_hash = 0;
    int rc = report__validate(db, run);
    if (rc == 0) {
        rc = report__strategy(db, run, strategy, sizeof strategy,
                              &config_hash);
    }
    if (rc != 0) {
        return rc;
    }
    int64_t run_id = 0;
    for (int attempt = 0; attempt < REPORT_BUSY_RETRY_MAX; attempt++) {
        rc = report__write_once(db, run, strategy, config_hash, &run_id);
        if (rc != REPORT_EBUSY) {
            break;
        }
        /* The busy handler already waited; spread the colliders apart. */
        struct timespec ts = {0, (long)(attempt + 1) * 5L * 1000L * 1000L};
        nanosleep(&ts, NULL);
    }
    if (rc == 0) {
        assert(run_id > 0);
        if (run_id_out != NULL) {
            *run_id_out = run_id;
        }
    }
    return rc;
}
