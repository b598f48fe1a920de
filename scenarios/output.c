/* scenarios/output.c — one run's result as a terminal summary, as JSON, and
 * as rows in the SQLite report store. */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "chaoslab_version.h"
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

const char *scn_binary_version(void) {
    return CHAOSLAB_VERSION " (" CHAOSLAB_GIT_DESCRIBE ")";
}

int scn_file_hash(const char *path, char out[SCN_HASH_HEX_MAX]) {
    assert(path != NULL && out != NULL);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return -1;
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a 64 */
    unsigned char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * UINT64_C(1099511628211);
    const int bad = ferror(f);
    fclose(f);
    if (bad) return -1;
    snprintf(out, SCN_HASH_HEX_MAX, "%016" PRIx64, h);
    return 0;
}

static const char *output__verdict_word(report_verdict_t v) {
    switch (v) {
    case REPORT_VERDICT_PASS: return "PASS";
    case REPORT_VERDICT_FAIL: return "FAIL";
    case REPORT_VERDICT_STALLED: return "STALLED";
    case REPORT_VERDICT_INVARIANT: return "INVARIANT";
    case REPORT_VERDICT_ERROR: return "ERROR";
    }
    return "ERROR";
}

/* Print `text` with every line after the first indented under a label. */
static void output__block(FILE *out, const char *label, const char *text) {
    fprintf(out, "%-10s ", label);
    for (const char *p = text; *p; p++) {
        fputc(*p, out);
        if (*p == '\n') fprintf(out, "%-10s ", "");
    }
    fputc('\n', out);
}

/* A run that ended with stalled or invariant: what happened, and the facts
 * at that moment (no checks ran). */
static void output__stopped(FILE *out, const scn_result_t *r) {
    output__block(out, r->verdict == REPORT_VERDICT_STALLED ? "stalled" : "invariant",
                  r->stop_text);
    fprintf(out, "budgets    %" PRIu64 " events, %.1fs wall\n", r->events_budget,
            r->wall_budget_s);
    fprintf(out, "workload   published %" PRIu64 ", confirmed %" PRIu64 ", processed %" PRIu64
                 ", faults %" PRIu32 "\n", r->published, r->confirmed, r->processed,
            r->timeline_count);
    fprintf(out, "trace      %016" PRIx64 "   events %" PRIu64 "\n", r->trace_hash, r->events);
    fprintf(out, "time       sim %.3fs (reached), wall %.3fs\n", (double)r->sim_time_ns / 1e9,
            (double)r->wall_time_ns / 1e9);
    fprintf(out, "verdict    %s\n", output__verdict_word(r->verdict));
    fprintf(out, "reproduce with: %s\n", r->reproduce);
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
    if (!r->judged) {
        output__stopped(out, r);
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
    fprintf(out, "verdict    %s\n", output__verdict_word(r->verdict));
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

/* A figure as a JSON number: integers exactly, other values with every
 * digit a double holds; a non-finite value (nothing measured) is null. */
void scn_json_number(FILE *out, double v) {
    assert(out != NULL);
    if (!isfinite(v)) fputs("null", out);
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) fprintf(out, "%.0f", v);
    else fprintf(out, "%.17g", v);
}

/* Which figures stand behind each invariant's verdict, as numbers: the
 * checker it reads and the figure names (NULL names = every figure of that
 * checker). In SCN_INV_* order; the same figures as the text summary. */
#define OUTPUT__INV_FIGS_MAX 5u
static const struct {
    unsigned check;
    const char *names[OUTPUT__INV_FIGS_MAX];
    unsigned extra_check; /* one more figure from another checker, or CHECK_ALL_COUNT */
    const char *extra;
} output__inv_figs[SCN_INV_COUNT] = {
    [SCN_INV_NO_LOSS] = {CHECK_NO_LOSS, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_NO_DUPLICATES] = {CHECK_NO_DUPLICATES, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_NO_PHANTOMS] = {CHECK_NO_PHANTOMS, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_ORDERING] = {CHECK_ORDERING, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_REPLICA_AGREEMENT] = {CHECK_REPLICA_AGREEMENT, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_AVAILABILITY] = {CHECK_AVAILABILITY,
                              {"availability", "windows", "available_windows",
                               "unavailable_windows", "idle_windows"},
                              CHECK_ALL_COUNT, NULL},
    [SCN_INV_RECOVERY] = {CHECK_AVAILABILITY, {"heal_to_ok_ns"}, CHECK_PROGRESS,
                          "confirm_needed"},
    [SCN_INV_MAX_UNAVAILABLE] = {CHECK_AVAILABILITY, {"longest_gap_ns"}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_ATTEMPT_SUCCESS] = {CHECK_AVAILABILITY,
                                 {"attempt_success", "attempts", "confirmed_in_time"},
                                 CHECK_ALL_COUNT, NULL},
    [SCN_INV_CONSUMER_AVAILABILITY] = {CHECK_CONSUMER_AVAILABILITY, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_LEADERLESS] = {CHECK_LEADERLESS, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_PROGRESS] = {CHECK_PROGRESS, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_DRAINED] = {CHECK_DRAINED, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_LATENCY] = {CHECK_LATENCY, {NULL}, CHECK_ALL_COUNT, NULL},
    [SCN_INV_DUPLICATE_ENQUEUES] = {CHECK_NO_DUPLICATES, {"duplicate_enqueues"}, CHECK_ALL_COUNT,
                                    NULL},
};

static void output__json_fig(FILE *out, bool *first, const char *name, double v) {
    fprintf(out, "%s\"%s\":", *first ? "" : ",", name);
    scn_json_number(out, v);
    *first = false;
}

static void output__json_inv_figures(FILE *out, const scn_result_t *r, unsigned i) {
    const check_result_t *c = &r->checks[output__inv_figs[i].check];
    bool first = true;
    fputc('{', out);
    if (output__inv_figs[i].names[0] == NULL) {
        for (uint32_t k = 0; k < c->figures_count; k++)
            output__json_fig(out, &first, c->figures[k].name, c->figures[k].value);
    } else {
        for (unsigned k = 0; k < OUTPUT__INV_FIGS_MAX && output__inv_figs[i].names[k]; k++)
            output__json_fig(out, &first, output__inv_figs[i].names[k],
                             check_figure(c, output__inv_figs[i].names[k]));
    }
    if (output__inv_figs[i].extra != NULL)
        output__json_fig(out, &first, output__inv_figs[i].extra,
                         check_figure(&r->checks[output__inv_figs[i].extra_check],
                                      output__inv_figs[i].extra));
    fputc('}', out);
}

/* "name","name" of the invariants that did not hold (want_failed = false)
 * or were not as expected (true). */
static void output__json_inv_list(FILE *out, const scn_result_t *r, bool want_failed) {
    bool first = true;
    fputc('[', out);
    for (unsigned i = 0; r->judged && i < SCN_INV_COUNT; i++) {
        const bool hit = want_failed ? !r->inv[i].as_expected : !r->inv[i].passed;
        if (!hit) continue;
        fprintf(out, "%s\"%s\"", first ? "" : ",", scn_invariant_name(i));
        first = false;
    }
    fputc(']', out);
}

/* The recorded violations: checker, message id (hex string: ids use all
 * 64 bits, more than a JSON number keeps exactly), virtual time, detail. */
static void output__json_violations(FILE *out, const scn_result_t *r) {
    bool first = true;
    fputc('[', out);
    for (unsigned k = 0; r->judged && k < CHECK_ALL_COUNT; k++) {
        const check_result_t *c = &r->checks[k];
        for (uint32_t i = 0; i < c->violations_count; i++) {
            const check_violation_t *v = &c->violations[i];
            fprintf(out, "%s{\"check\":\"%s\",\"message\":", first ? "" : ",",
                    c->name != NULL ? c->name : "?");
            if (v->message_id != 0) fprintf(out, "\"%#" PRIx64 "\"", v->message_id);
            else fputs("null", out);
            fprintf(out, ",\"time_ns\":%" PRIu64 ",\"detail\":", v->time_ns);
            scn_json_string(out, v->detail);
            fputc('}', out);
            first = false;
        }
    }
    fputc(']', out);
}

void scn_output_json(FILE *out, const scenario_t *s, const scn_result_t *r) {
    assert(out != NULL && s != NULL && r != NULL);
    fprintf(out, "{\"type\":\"run\",\"seed\":%" PRIu64 ",\"variant\":", r->seed);
    scn_json_string(out, scn_variant_name(r->variant));
    fprintf(out, ",\"verdict\":\"%s\",\"exit_code\":%d,\"violated\":",
            report_verdict_name(r->verdict), r->exit_code);
    output__json_inv_list(out, r, false);
    fputs(",\"not_as_expected\":", out);
    output__json_inv_list(out, r, true);
    fputs(",\"scenario\":", out);
    scn_json_string(out, r->scenario_name);
    fputs(",\"path\":", out);
    scn_json_string(out, s->path);
    fputs(",\"strategy\":", out);
    scn_json_string(out, r->strategy);
    fputs(",\"nemesis\":", out);
    scn_json_string(out, r->nemesis);
    fprintf(out, ",\"trace_hash\":\"%016" PRIx64 "\"", r->trace_hash);
    fprintf(out, ",\"sim_time_s\":%.9f,\"wall_time_s\":%.6f,\"events\":%" PRIu64,
            (double)r->sim_time_ns / 1e9, (double)r->wall_time_ns / 1e9, r->events);
    fprintf(out, ",\"published\":%" PRIu64 ",\"confirmed\":%" PRIu64 ",\"processed\":%" PRIu64,
            r->published, r->confirmed, r->processed);
    fprintf(out, ",\"nacked\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"unknown\":%" PRIu64
                 ",\"unknown_at_end\":%" PRIu64 ",\"probe_published\":%" PRIu64
                 ",\"faults\":%" PRIu32,
            r->nacked, r->failed, r->unknown, r->unknown_at_end, r->probe_published,
            r->timeline_count);
    fputs(",\"invariants\":[", out);
    for (unsigned i = 0; r->judged && i < SCN_INV_COUNT; i++) {
        const scn_invariant_t *inv = &r->inv[i];
        fprintf(out, "%s{\"name\":\"%s\",\"enforced\":%s,\"passed\":%s,\"expected\":\"%s\","
                     "\"as_expected\":%s,\"figures\":",
                i ? "," : "", scn_invariant_name(i), inv->enforced ? "true" : "false",
                inv->passed ? "true" : "false", report_expect_name(inv->expected),
                inv->as_expected ? "true" : "false");
        output__json_inv_figures(out, r, i);
        fputs(",\"summary\":", out);
        scn_json_string(out, inv->figures);
        fputc('}', out);
    }
    fputs("],\"metrics\":{", out);
    const check_result_t *lat = &r->checks[CHECK_LATENCY];
    bool first = true;
    for (uint32_t i = 0; r->judged && i < lat->figures_count; i++)
        output__json_fig(out, &first, lat->figures[i].name, lat->figures[i].value);
    fputs("},\"violations\":", out);
    output__json_violations(out, r);
    fputs(",\"stop\":", out);
    scn_json_string(out, r->stop_text);
    fprintf(out, ",\"stop_time_ns\":%" PRIu64 ",\"events_budget\":%" PRIu64
                 ",\"wall_budget_s\":%.3f,\"scenario_hash\":",
            r->stop_time_ns, r->events_budget, r->wall_budget_s);
    scn_json_string(out, r->scenario_hash);
    fputs(",\"version\":", out);
    scn_json_string(out, scn_binary_version());
    fputs(",\"reproduce\":", out);
    scn_json_string(out, r->reproduce);
    fputs(",\"error\":", out);
    scn_json_string(out, r->err);
    fputs("}\n", out);
}

void scn_output_json_error(FILE *out, const char *path, uint64_t seed, scn_variant_t variant,
                           const char *why) {
    assert(out != NULL);
    fprintf(out, "{\"type\":\"run\",\"seed\":%" PRIu64 ",\"variant\":", seed);
    scn_json_string(out, scn_variant_name(variant));
    fputs(",\"verdict\":\"error\",\"exit_code\":2,\"violated\":[],\"not_as_expected\":[],"
          "\"path\":", out);
    scn_json_string(out, path);
    fputs(",\"error\":", out);
    scn_json_string(out, why);
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

static void output__kvf(output__db_t *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void output__kvf(output__db_t *d, const char *key, const char *fmt, ...) {
    char value[SCN_VALUE_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    output__kv(d, key, value[0] != '\0' ? value : "-");
}

#define OUTPUT__MS(ns) ((unsigned long long)((ns) / 1000000u))
#define OUTPUT__ONOFF(b) ((b) ? "on" : "off")

/* Every strategy key with the defaults filled in (keys without a dot: they
 * make the `strategy` column). Names are broker_config_set's. */
static void output__strategy(output__db_t *d, const broker_config_t *c, const scn_result_t *r,
                             bool ack_auto) {
    char fsync[32];
    if (c->fsync == BROKER_FSYNC_INTERVAL)
        snprintf(fsync, sizeof fsync, "interval:%llu", OUTPUT__MS(c->fsync_interval_ns));
    else
        snprintf(fsync, sizeof fsync, "%s", c->fsync == BROKER_FSYNC_ALWAYS ? "always" : "never");
    output__kvf(d, "replicas", "%u", c->replicas);
    output__kvf(d, "acks", "%s", c->acks == BROKER_ACKS_QUORUM ? "quorum" : "leader");
    output__kvf(d, "fsync", "%s", fsync);
    output__kvf(d, "election", "%s", c->election == BROKER_ELECTION_SAFE ? "safe" : "unclean");
    output__kvf(d, "dedup", "%s", OUTPUT__ONOFF(c->dedup));
    output__kvf(d, "pre_vote", "%s", OUTPUT__ONOFF(c->pre_vote));
    output__kvf(d, "check_quorum", "%s", OUTPUT__ONOFF(c->check_quorum));
    output__kvf(d, "delivery_limit", "%u", c->delivery_limit);
    output__kvf(d, "session_timeout_ms", "%llu", OUTPUT__MS(c->session_timeout_ns));
    output__kvf(d, "ack_timeout_ms", "%llu", OUTPUT__MS(c->ack_timeout_ns));
    output__kvf(d, "election_timeout_ms", "%llu..%llu", OUTPUT__MS(c->election_timeout_min_ns),
                OUTPUT__MS(c->election_timeout_max_ns));
    output__kvf(d, "heartbeat_ms", "%llu", OUTPUT__MS(c->heartbeat_interval_ns));
    output__kvf(d, "snapshot_every", "%llu", (unsigned long long)c->snapshot_every_entries);
    output__kvf(d, "segment_size_bytes", "%llu", (unsigned long long)c->segment_size_bytes);
    output__kvf(d, "ack", "%s", ack_auto ? "auto" : "manual");
    output__kv(d, "variant", scn_variant_name(r->variant));
}

/* The rest of the effective configuration (dotted keys: part of a run's
 * identity, not shown as its strategy). */
static void output__settings(output__db_t *d, const scenario_t *s, const scn_result_t *r) {
    const scn_workload_t *w = &s->workload;
    output__kvf(d, "workload.queue", "%s", w->queue);
    output__kvf(d, "workload.dead_letter", "%s", w->dead_letter);
    output__kvf(d, "workload.delivery_limit", "%u", w->delivery_limit);
    output__kvf(d, "workload.producers", "%u", w->producers);
    output__kvf(d, "workload.rate", "%.10g", w->rate);
    output__kvf(d, "workload.poisson", "%s", OUTPUT__ONOFF(w->poisson));
    output__kvf(d, "workload.window", "%u", w->window);
    output__kvf(d, "workload.timeout_ms", "%.10g", w->timeout_ms);
    output__kvf(d, "workload.retries", "%u", w->retries);
    output__kvf(d, "workload.backoff_ms", "%.10g", w->backoff_ms);
    output__kvf(d, "workload.producer_idempotent", "%s", OUTPUT__ONOFF(w->producer_idempotent));
    output__kvf(d, "workload.body_bytes", "%u", w->body_bytes);
    output__kvf(d, "workload.messages", "%llu", (unsigned long long)w->messages);
    output__kvf(d, "workload.consumers", "%u", w->consumers);
    output__kvf(d, "workload.prefetch", "%u", w->prefetch);
    output__kvf(d, "workload.processing_ms", "%.10g", w->processing_ms);
    output__kvf(d, "workload.crash_before_ack", "%.10g", w->crash_before_ack);
    output__kvf(d, "workload.consumer_idempotent", "%s", OUTPUT__ONOFF(w->consumer_idempotent));
    output__kvf(d, "phases.chaos_s", "%.10g", s->phases.chaos_s);
    output__kvf(d, "phases.heal_s", "%.10g", s->phases.heal_s);
    output__kvf(d, "phases.drain_s", "%.10g", s->phases.drain_s);
    output__kvf(d, "nemesis.enabled", "%s", OUTPUT__ONOFF(s->nemesis.enabled));
    output__kvf(d, "nemesis.kinds_mask", "0x%x", (unsigned)s->nemesis.kinds_mask);
    output__kvf(d, "nemesis.swarm", "%s", OUTPUT__ONOFF(s->nemesis.swarm));
    output__kvf(d, "nemesis.interval_s", "%.10g", s->nemesis.interval_s);
    output__kvf(d, "nemesis.duration_s", "%.10g", s->nemesis.duration_s);
    const scn_network_t *n = &s->network;
    output__kvf(d, "network.latency_ms", "%.10g", n->latency_ms);
    output__kvf(d, "network.jitter_ms", "%.10g%s", n->jitter_ms,
                n->jitter_exponential ? ":exponential" : "");
    output__kvf(d, "network.loss", "%.10g", n->loss);
    output__kvf(d, "network.duplicate", "%.10g", n->duplicate);
    output__kvf(d, "network.reorder", "%.10g", n->reorder);
    output__kvf(d, "network.reorder_window_ms", "%.10g", n->reorder_window_ms);
    output__kvf(d, "network.corrupt", "%.10g", n->corrupt);
    output__kvf(d, "disk.fsync_ms", "%.10g", s->disk.fsync_ms);
    output__kvf(d, "disk.fsync_jitter_ms", "%.10g", s->disk.fsync_jitter_ms);
    output__kvf(d, "disk.write_us", "%.10g", s->disk.write_us);
    output__kvf(d, "disk.crash", "%d", (int)s->disk.crash);
    output__kvf(d, "disk.keep", "%.10g", s->disk.keep);
    output__kvf(d, "budget.events", "%llu", (unsigned long long)r->events_budget);
    output__kvf(d, "budget.wall_s", "%.10g", r->wall_budget_s);
    /* The swarm's draw is an outcome of the seed, not configuration: stored,
     * but "run." keys are left out of the identity. */
    output__kv(d, "run.nemesis", r->nemesis);
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
    output__db_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, err_cap, "out of memory");
        return REPORT_ENOMEM;
    }
    broker_config_t cfg;
    char cfg_err[256];
    if (scn_strategy_for(s, r->variant, overrides, &cfg, cfg_err, sizeof cfg_err) == 0) {
        output__strategy(d, &cfg, r, scn_strategy_ack_auto(s, r->variant, overrides));
        output__settings(d, s, r);
    } else {
        output__kv(d, "strategy", cfg_err); /* an error run: the layers did not build */
    }
    for (unsigned i = 0; r->judged && i < SCN_INV_COUNT; i++) {
        /* Not-enforced results are stored as reported facts: say so. */
        snprintf(d->figures[i], sizeof d->figures[i], "%s%s",
                 r->inv[i].enforced ? "" : "(not enforced) ", r->inv[i].figures);
        d->inv[i] = (report_invariant_t){scn_invariant_name(i), r->inv[i].passed,
                                         r->inv[i].expected, r->inv[i].as_expected,
                                         d->figures[i]};
    }
    if (r->judged) {
        output__metrics(d, r);
        output__violations(d, r);
    } else if (r->verdict == REPORT_VERDICT_INVARIANT || r->verdict == REPORT_VERDICT_STALLED) {
        /* The stop is the run's one violation: message and virtual time. */
        d->violations[d->violation_count++] = (report_violation_t){
            r->verdict == REPORT_VERDICT_INVARIANT ? "invariant" : "liveness", NULL,
            r->stop_time_ns, r->stop_text};
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
        .invariant_count = r->judged ? SCN_INV_COUNT : 0,
        .scenario_hash = r->scenario_hash, .binary_version = scn_binary_version(),
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
