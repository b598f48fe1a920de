/* scenarios/output.c — one run's result as a terminal summary, as JSON, and
 * as rows in the SQLite report store. */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios/engine.h"

#define OUTPUT__METRICS_MAX 32u
#define OUTPUT__VIOLATIONS_MAX (CHECK_ALL_COUNT * CHECK_VIOLATIONS_MAX)

static double output__fig(const scn_result_t *r, unsigned check, const char *name) {
    assert(check < CHECK_ALL_COUNT);
    const double v = check_figure(&r->checks[check], name);
    return isfinite(v) ? v : 0;
}

static const char *output__status(const scn_invariant_t *inv) {
    if (!inv->enforced) return inv->passed ? "held" : "info";
    return inv->as_expected ? "ok" : "FAIL";
}

static void output__ms(char *buf, size_t cap, double ns) {
    snprintf(buf, cap, "%.2fms", ns / 1e6);
}

void scn_output_text(FILE *out, const scenario_t *s, const scn_result_t *r) {
    assert(out != NULL && s != NULL && r != NULL);
    fprintf(out, "scenario   %s (%s)\n", r->scenario_name, s->path);
    fprintf(out, "seed       %" PRIu64 "%s%s\n", r->seed,
            r->variant != SCN_VARIANT_NONE ? "   variant " : "", scn_variant_name(r->variant));
    fprintf(out, "strategy   %s\n", r->strategy);
    if (r->nemesis[0] != '\0') fprintf(out, "nemesis    %s\n", r->nemesis);
    if (r->exit_code == 2) {
        fprintf(out, "error      %s\n", r->err);
        return;
    }
    fprintf(out, "invariants\n");
    for (unsigned i = 0; i < SCN_INV_COUNT; i++) {
        const scn_invariant_t *inv = &r->inv[i];
        fprintf(out, "  %-4s %-21s %-9s%s %s\n", output__status(inv), scn_invariant_name(i),
                inv->passed ? "held" : "VIOLATED",
                inv->enforced && inv->expected == REPORT_EXPECT_VIOLATION ? " (expected violated)"
                                                                          : "",
                inv->figures);
    }
    char c50[32], c99[32], p50[32], p99[32];
    output__ms(c50, sizeof c50, output__fig(r, 6, "confirm_p50_ns"));
    output__ms(c99, sizeof c99, output__fig(r, 6, "confirm_p99_ns"));
    output__ms(p50, sizeof p50, output__fig(r, 6, "process_p50_ns"));
    output__ms(p99, sizeof p99, output__fig(r, 6, "process_p99_ns"));
    fprintf(out, "latency    publish->confirm p50 %s p99 %s; publish->process p50 %s p99 %s\n",
            c50, c99, p50, p99);
    const double heal = check_figure(&r->checks[CHECK_AVAILABILITY], "heal_to_ok_ns");
    const double leaderless = check_figure(&r->checks[CHECK_LEADERLESS], "leaderless_ns");
    fprintf(out, "available  publish %.2f%% of %.0f chaos windows (%.0f down, %.0f idle); "
                 "consumer %.2f%%; leaderless %.3fs (longest %.3fs)\n",
            100.0 * output__fig(r, CHECK_AVAILABILITY, "availability"),
            output__fig(r, CHECK_AVAILABILITY, "windows"),
            output__fig(r, CHECK_AVAILABILITY, "unavailable_windows"),
            output__fig(r, CHECK_AVAILABILITY, "idle_windows"),
            100.0 * output__fig(r, CHECK_CONSUMER_AVAILABILITY, "consumer_availability"),
            leaderless < 0 ? -1.0 : leaderless / 1e9,
            output__fig(r, CHECK_LEADERLESS, "leaderless_max_ns") / 1e9);
    char recovery[32];
    if (heal < 0 && output__fig(r, CHECK_PROGRESS, "confirm_needed") == 0)
        snprintf(recovery, sizeof recovery, "n/a (nothing pending)");
    else if (heal < 0) snprintf(recovery, sizeof recovery, "never");
    else snprintf(recovery, sizeof recovery, "%.3fs", heal / 1e9);
    fprintf(out, "           %.2f%% of chaos publishes confirmed in time; longest unavailable "
                 "%.3fs; recovery %s\n",
            100.0 * output__fig(r, CHECK_AVAILABILITY, "attempt_success"),
            output__fig(r, CHECK_AVAILABILITY, "longest_gap_ns") / 1e9, recovery);
    fprintf(out, "workload   published %" PRIu64 " (probe %" PRIu64 "): confirmed %" PRIu64
                 ", nacked %" PRIu64 ", failed %" PRIu64 ", unknown %" PRIu64
                 " (%" PRIu64 " in flight at the end); processed %" PRIu64 ", faults %" PRIu32 "\n",
            r->published, r->probe_published, r->confirmed, r->nacked, r->failed, r->unknown,
            r->unknown_at_end, r->processed, r->timeline_count);
    const double wall_s = (double)r->wall_time_ns / 1e9;
    fprintf(out, "trace      %016" PRIx64 "   events %" PRIu64 "\n", r->trace_hash, r->events);
    fprintf(out, "time       sim %.3fs, wall %.3fs (%.0fx)\n", (double)r->sim_time_ns / 1e9,
            wall_s, wall_s > 0 ? (double)r->sim_time_ns / 1e9 / wall_s : 0.0);
    if (r->violations_text != NULL && r->verdict != REPORT_VERDICT_PASS)
        fprintf(out, "violations (first messages, with their history)\n%s", r->violations_text);
    fprintf(out, "verdict    %s\n", r->verdict == REPORT_VERDICT_PASS ? "PASS" : "FAIL");
    if (r->verdict != REPORT_VERDICT_PASS) fprintf(out, "reproduce with: %s\n", r->reproduce);
}

void scn_json_string(FILE *out, const char *text) {
    assert(out != NULL);
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(text != NULL ? text : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", out);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

void scn_output_json(FILE *out, const scenario_t *s, const scn_result_t *r) {
    assert(out != NULL && s != NULL && r != NULL);
    fputs("{\"scenario\":", out);
    scn_json_string(out, r->scenario_name);
    fputs(",\"path\":", out);
    scn_json_string(out, s->path);
    fprintf(out, ",\"seed\":%" PRIu64 ",\"variant\":", r->seed);
    scn_json_string(out, scn_variant_name(r->variant));
    fputs(",\"strategy\":", out);
    scn_json_string(out, r->strategy);
    fputs(",\"nemesis\":", out);
    scn_json_string(out, r->nemesis);
    fprintf(out, ",\"verdict\":\"%s\",\"exit_code\":%d,\"trace_hash\":\"%016" PRIx64 "\"",
            report_verdict_name(r->verdict), r->exit_code, r->trace_hash);
    fprintf(out, ",\"sim_time_s\":%.9f,\"wall_time_s\":%.6f,\"events\":%" PRIu64,
            (double)r->sim_time_ns / 1e9, (double)r->wall_time_ns / 1e9, r->events);
    fprintf(out, ",\"published\":%" PRIu64 ",\"confirmed\":%" PRIu64 ",\"processed\":%" PRIu64,
            r->published, r->confirmed, r->processed);
    fprintf(out, ",\"nacked\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"unknown\":%" PRIu64
                 ",\"unknown_at_end\":%" PRIu64 ",\"probe_published\":%" PRIu64,
            r->nacked, r->failed, r->unknown, r->unknown_at_end, r->probe_published);
    fputs(",\"invariants\":[", out);
    for (unsigned i = 0; r->exit_code != 2 && i < SCN_INV_COUNT; i++) {
        const scn_invariant_t *inv = &r->inv[i];
        fprintf(out, "%s{\"name\":\"%s\",\"enforced\":%s,\"passed\":%s,\"expected\":\"%s\","
                     "\"as_expected\":%s,\"figures\":",
                i ? "," : "", scn_invariant_name(i), inv->enforced ? "true" : "false",
                inv->passed ? "true" : "false", report_expect_name(inv->expected),
                inv->as_expected ? "true" : "false");
        scn_json_string(out, inv->figures);
        fputc('}', out);
    }
    fputs("],\"metrics\":{", out);
    const check_result_t *lat = &r->checks[6];
    for (uint32_t i = 0; r->exit_code != 2 && i < lat->figures_count; i++)
        fprintf(out, "%s\"%s\":%.0f", i ? "," : "", lat->figures[i].name,
                isfinite(lat->figures[i].value) ? lat->figures[i].value : 0.0);
    fputs("},\"reproduce\":", out);
    scn_json_string(out, r->reproduce);
    fputs(",\"error\":", out);
    scn_json_string(out, r->err);
    fputs("}\n", out);
}

/* ---- SQLite ------------------------------------------------------------------ */

typedef struct output__db {
    report_kv_t config[REPORT_CONFIG_MAX];
    char config_text[REPORT_CONFIG_MAX][SCN_VALUE_MAX * 2];
    size_t config_count;
    report_invariant_t inv[SCN_INV_COUNT];
    char figures[SCN_INV_COUNT][SCN_FIGURES_TEXT_MAX + 32];
    report_metric_t metrics[OUTPUT__METRICS_MAX];
    size_t metric_count;
    report_violation_t violations[OUTPUT__VIOLATIONS_MAX];
    char ids[OUTPUT__VIOLATIONS_MAX][24];
    size_t violation_count;
    report_fault_t *faults;
} output__db_t;

static void output__kv(output__db_t *d, const char *key, const char *value) {
    if (d->config_count >= REPORT_CONFIG_MAX || value == NULL || value[0] == '\0') return;
    char *slot = d->config_text[d->config_count];
    snprintf(slot, sizeof d->config_text[0], "%s", value);
    for (char *p = slot; *p; p++)
        if (*p == ' ' || *p == '\t') *p = '_'; /* values hold no whitespace */
    d->config[d->config_count++] = (report_kv_t){key, slot};
}

/* "replicas=3 acks=quorum ..." -> kv pairs (keys point into `text`). */
static void output__strategy_kv(output__db_t *d, char *text) {
    char *save = NULL;
    for (char *tok = strtok_r(text, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok || eq[1] == '\0') continue;
        *eq = '\0';
        output__kv(d, tok, eq + 1);
    }
}

static void output__metric(output__db_t *d, const char *name, double value, const char *unit) {
    if (d->metric_count >= OUTPUT__METRICS_MAX || !isfinite(value)) return;
    d->metrics[d->metric_count++] = (report_metric_t){name, value, unit};
}

static void output__metrics(output__db_t *d, const scn_result_t *r) {
    static const struct { unsigned check; const char *fig, *name, *unit; } map[] = {
        {4, "availability", "availability", "ratio"},
        {4, "attempt_success", "attempt_success", "ratio"},
        {4, "unavailable_windows", "unavailable_windows", "windows"},
        {7, "consumer_availability", "consumer_availability", "ratio"},
        {8, "leaderless_ns", "leaderless_ns", "ns"},
        {8, "leaderless_max_ns", "leaderless_max_ns", "ns"},
        {4, "longest_gap_ns", "longest_unavailable_ns", "ns"},
        {4, "heal_to_ok_ns", "recovery_ns", "ns"},
        {4, "attempts", "chaos_publish_attempts", "msgs"},
        {6, "confirm_p50_ns", "publish_confirm_p50", "ns"},
        {6, "confirm_p99_ns", "publish_confirm_p99", "ns"},
        {6, "confirm_max_ns", "publish_confirm_max", "ns"},
        {6, "process_p50_ns", "publish_process_p50", "ns"},
        {6, "process_p99_ns", "publish_process_p99", "ns"},
        {6, "process_max_ns", "publish_process_max", "ns"},
        {0, "lost", "lost", "msgs"},
        {0, "remaining", "remaining", "msgs"},
        {0, "unknown", "unknown_outcome", "msgs"},
        {0, "dead_lettered", "dead_lettered", "msgs"},
        {1, "duplicate_processings", "duplicate_processings", "msgs"},
        {1, "redeliveries", "redeliveries", "msgs"},
        {2, "phantoms", "phantoms", "msgs"},
        {3, "inversions", "order_inversions", "msgs"},
        {5, "mismatches", "replica_mismatches", "replicas"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const double v = check_figure(&r->checks[map[i].check], map[i].fig);
        if ((map[i].check == 4 || map[i].check == 8) && v < 0) continue; /* never / unknown */
        output__metric(d, map[i].name, v, map[i].unit);
    }
    output__metric(d, "published", (double)r->published, "msgs");
    output__metric(d, "confirmed", (double)r->confirmed, "msgs");
    output__metric(d, "processed", (double)r->processed, "msgs");
    output__metric(d, "nacked", (double)r->nacked, "msgs");
    output__metric(d, "failed", (double)r->failed, "msgs");
    output__metric(d, "unknown_at_end", (double)r->unknown_at_end, "msgs");
    output__metric(d, "faults", (double)r->timeline_count, "events");
}

static void output__violations(output__db_t *d, const scn_result_t *r) {
    static const unsigned checks[] = {CHECK_NO_LOSS, CHECK_NO_DUPLICATES, CHECK_NO_PHANTOMS,
                                      CHECK_ORDERING, CHECK_REPLICA_AGREEMENT, CHECK_PROGRESS,
                                      CHECK_DRAINED};
    for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++) {
        const check_result_t *c = &r->checks[checks[k]];
        for (uint32_t i = 0; i < c->violations_count && d->violation_count < OUTPUT__VIOLATIONS_MAX;
             i++) {
            const check_violation_t *v = &c->violations[i];
            char *id = d->ids[d->violation_count];
            snprintf(id, sizeof d->ids[0], "0x%" PRIx64, v->message_id);
            d->violations[d->violation_count++] = (report_violation_t){
                c->name != NULL ? c->name : "?", v->message_id != 0 ? id : NULL, v->time_ns,
                v->detail[0] != '\0' ? v->detail : NULL};
        }
    }
}

int scn_output_db(report_db_t *db, const scenario_t *s, const scn_result_t *r,
                  const scn_strategy_t *overrides, int64_t *run_id, char *err, size_t err_cap) {
    assert(db != NULL && s != NULL && r != NULL);
    (void)overrides; /* already part of r->strategy and r->reproduce */
    output__db_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, err_cap, "out of memory");
        return REPORT_ENOMEM;
    }
    char strategy[SCN_STRATEGY_TEXT_MAX];
    snprintf(strategy, sizeof strategy, "%s", r->strategy);
    output__strategy_kv(d, strategy);
    output__kv(d, "variant", scn_variant_name(r->variant));
    output__kv(d, "nemesis", r->nemesis);
    for (unsigned i = 0; r->exit_code != 2 && i < SCN_INV_COUNT; i++) {
        /* Not-enforced results are stored as reported facts: say so. */
        snprintf(d->figures[i], sizeof d->figures[i], "%s%s",
                 r->inv[i].enforced ? "" : "(not enforced) ", r->inv[i].figures);
        d->inv[i] = (report_invariant_t){scn_invariant_name(i), r->inv[i].passed,
                                         r->inv[i].expected, r->inv[i].as_expected,
                                         d->figures[i]};
    }
    if (r->exit_code != 2) {
        output__metrics(d, r);
        output__violations(d, r);
    }
    d->faults = r->timeline_count > 0 ? calloc(r->timeline_count, sizeof *d->faults) : NULL;
    const size_t faults = d->faults != NULL ? r->timeline_count : 0;
    for (size_t i = 0; i < faults; i++)
        d->faults[i] = (report_fault_t){r->timeline[i].time_ns, r->timeline[i].kind,
                                        r->timeline[i].target, r->timeline[i].detail};
    const report_run_t run = {
        .scenario_path = s->path, .scenario_name = r->scenario_name, .seed = r->seed,
        .config = d->config, .config_count = d->config_count, .verdict = r->verdict,
        .trace_hash = r->trace_hash, .sim_time_ns = r->sim_time_ns,
        .wall_time_ns = r->wall_time_ns, .events = r->events, .exit_code = r->exit_code,
        .reproduce = r->reproduce, .invariants = d->inv,
        .invariant_count = r->exit_code != 2 ? SCN_INV_COUNT : 0,
        .metrics = d->metrics, .metric_count = d->metric_count,
        .series = r->series, .series_count = r->series_count,
        .faults = d->faults, .fault_count = faults,
        .violations = d->violations, .violation_count = d->violation_count,
    };
    const int rc = report_db_write_run(db, &run, run_id);
    if (rc != 0) snprintf(err, err_cap, "%s", report_db_errmsg(db));
    free(d->faults);
    free(d);
    return rc;
}
