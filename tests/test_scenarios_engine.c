/* tests/test_scenarios_engine.c — the scenario engine and its Lua binding:
 * loading (good and broken files), running phases, invariants, determinism
 * and strategy overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/invariant.h"
#include "broker/sm.h"
#include "scenarios/engine.h"
#include "scenarios/scenario.h"

#define FIXTURE(name) CHAOSLAB_SOURCE_DIR "/tests/scenarios/" name

/* Load and run one seed; returns scn_engine_run's result. */
static int run_file(const char *path, uint64_t seed, scn_variant_t v,
                    const scn_strategy_t *overrides, scn_result_t *r) {
    scenario_t *s = NULL;
    char err[SCN_ERR_MAX];
    if (scenario_new(path, seed, &s, err, sizeof err) != 0) {
        print_error("load failed: %s\n", err);
        return -2;
    }
    const scn_run_opts_t o = {.seed = seed, .variant = v, .overrides = overrides};
    const int rc = scn_engine_run(s, &o, r);
    scenario_free(s);
    return rc;
}

static void test_calm_run_keeps_every_message(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(FIXTURE("engine_calm.lua"), 1, SCN_VARIANT_NONE, NULL, r), 0);
    assert_true(r->confirmed > 100);
    assert_true(r->inv[SCN_INV_NO_DUPLICATES].passed);
    assert_true(r->inv[SCN_INV_NO_PHANTOMS].passed);
    assert_true(r->inv[SCN_INV_REPLICA_AGREEMENT].passed);
    if (!r->inv[SCN_INV_NO_LOSS].passed) print_error("no_loss: %s\n", r->inv[0].figures);
    assert_true(r->inv[SCN_INV_NO_LOSS].passed);
    assert_int_equal(r->exit_code, 0);
    assert_int_equal(r->verdict, REPORT_VERDICT_PASS);
    assert_true(r->series_count >= 3); /* 1 s buckets over chaos (2 s) + heal (1 s) */
    /* calm: windows confirm, a leader all along, recovered at once, drained */
    assert_true(check_figure(&r->checks[CHECK_AVAILABILITY], "availability") >= 0.9);
    assert_true(check_figure(&r->checks[CHECK_AVAILABILITY], "idle_windows") == 0);
    assert_true(check_figure(&r->checks[CHECK_LEADERLESS], "samples") > 100);
    assert_true(check_figure(&r->checks[CHECK_LEADERLESS], "leaderless_ns") == 0);
    assert_true(r->inv[SCN_INV_PROGRESS].enforced && r->inv[SCN_INV_PROGRESS].passed);
    assert_true(r->inv[SCN_INV_DRAINED].enforced && r->inv[SCN_INV_DRAINED].passed);
    assert_true(r->probe_published > 0);
    assert_int_equal(r->published, r->confirmed + r->nacked + r->failed + r->unknown);
    scn_result_free(r);
    free(r);
}

/* The case: one replica down 6 s of a 10 s chaos phase. Attempts
 * barely notice (a blocked producer tries little); the windows do, and the
 * expectation availability = 0.9 fails. */
static void test_outage_fails_availability(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(
        run_file(FIXTURE("engine_outage_one_replica.lua"), 1, SCN_VARIANT_NONE, NULL, r), 0);
    const check_result_t *av = &r->checks[CHECK_AVAILABILITY];
    print_message("availability %.4f attempt_success %.4f leaderless %.3fs\n",
                  check_figure(av, "availability"), check_figure(av, "attempt_success"),
                  check_figure(&r->checks[CHECK_LEADERLESS], "leaderless_ns") / 1e9);
    assert_true(r->inv[SCN_INV_AVAILABILITY].enforced);
    assert_false(r->inv[SCN_INV_AVAILABILITY].passed);
    assert_true(check_figure(av, "availability") < 0.5);
    assert_true(check_figure(av, "unavailable_windows") >= 55); /* ~6 s of 100 ms windows */
    assert_true(check_figure(av, "attempt_success") > 0.8);   /* the old figure, fooled */
    assert_true(check_figure(&r->checks[CHECK_LEADERLESS], "leaderless_ns") > 5.5e9);
    assert_true(r->inv[SCN_INV_NO_LOSS].passed); /* down, not lossy */
    assert_true(r->inv[SCN_INV_PROGRESS].passed);
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->verdict, REPORT_VERDICT_FAIL);
    scn_result_free(r);
    free(r);
}

/* workload{probe = false}: no probe traffic, and windows in which nobody had
 * a publish pending are idle (not counted available). */
static void test_without_probe_idle_windows_are_not_counted(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(FIXTURE("engine_no_probe.lua"), 1, SCN_VARIANT_NONE, NULL, r), 0);
    const check_result_t *av = &r->checks[CHECK_AVAILABILITY];
    assert_int_equal(r->probe_published, 0);
    assert_int_equal(r->published, 50);
    assert_true(check_figure(av, "idle_windows") >= 15);
    assert_true(check_figure(av, "available_windows") + check_figure(av, "unavailable_windows") +
                    check_figure(av, "idle_windows") == check_figure(av, "windows"));
    assert_true(r->inv[SCN_INV_RECOVERY].passed); /* nothing was pending after heal */
    assert_non_null(strstr(r->inv[SCN_INV_RECOVERY].figures, "n/a"));
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    free(r);
}

/* Never recovering fails the run though the file expects no recovery, and
 * the publishes in flight at the end are counted (unknown), so the sums add. */
static void test_never_recovered_fails_and_counts_add_up(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(
        run_file(FIXTURE("engine_never_recovers.lua"), 1, SCN_VARIANT_NONE, NULL, r), 0);
    assert_true(r->inv[SCN_INV_PROGRESS].enforced);
    assert_false(r->inv[SCN_INV_PROGRESS].passed);
    assert_false(r->inv[SCN_INV_RECOVERY].enforced);
    assert_false(r->inv[SCN_INV_RECOVERY].passed); /* "never", not "held" */
    assert_non_null(strstr(r->inv[SCN_INV_RECOVERY].figures, "never"));
    assert_true(r->checks[CHECK_PROGRESS].violations_total >= 1);
    assert_non_null(strstr(r->checks[CHECK_PROGRESS].violations[0].detail, "never recovered"));
    assert_int_equal(r->exit_code, 1);
    assert_true(r->unknown_at_end > 0);
    assert_int_equal(r->published, r->confirmed + r->nacked + r->failed + r->unknown);
    const check_result_t *nl = &r->checks[CHECK_NO_LOSS];
    assert_true(check_figure(nl, "unfinished") == 0);
    assert_true(check_figure(nl, "published") == (double)r->published);
    assert_true(check_figure(nl, "unknown_at_end") == (double)r->unknown_at_end);
    assert_true(r->inv[SCN_INV_NO_LOSS].passed); /* in flight is not lost */
    scn_result_free(r);
    free(r);
}

static void test_crash_all_with_fsync_never_loses(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(FIXTURE("engine_crash_all.lua"), 1, SCN_VARIANT_NONE, NULL, r), 0);
    assert_false(r->inv[SCN_INV_NO_LOSS].passed);
    assert_true(r->checks[0].violations_total > 0);
    assert_true(check_figure(&r->checks[0], "lost") > 0); /* gone, not just undelivered */
    assert_int_equal(r->exit_code, 1);
    assert_non_null(strstr(r->reproduce, "--seed 1"));
    assert_true(r->timeline_count >= 2); /* the crash and the heal */
    scn_result_free(r);
    free(r);
}

static void test_same_seed_same_hash(void **state) {
    (void)state;
    scn_result_t *a = calloc(3, sizeof *a);
    assert_non_null(a);
    const char *path = FIXTURE("engine_actions.lua");
    assert_int_equal(run_file(path, 7, SCN_VARIANT_NONE, NULL, &a[0]), 0);
    assert_int_equal(run_file(path, 7, SCN_VARIANT_NONE, NULL, &a[1]), 0);
    assert_int_equal(run_file(path, 8, SCN_VARIANT_NONE, NULL, &a[2]), 0);
    assert_true(a[0].events > 1000);
    assert_int_equal(a[0].trace_hash, a[1].trace_hash);
    assert_int_equal(a[0].events, a[1].events);
    assert_int_equal(a[0].timeline_count, a[1].timeline_count);
    assert_int_not_equal(a[0].trace_hash, a[2].trace_hash);
    for (int i = 0; i < 3; i++) scn_result_free(&a[i]);
    free(a);
}

static void test_overrides_apply_and_bad_ones_are_refused(void **state) {
    (void)state;
    scn_strategy_t o;
    memset(&o, 0, sizeof o);
    char err[256];
    assert_int_equal(scn_strategy_set(&o, "acks", "leader", err, sizeof err), 0);
    assert_int_equal(scn_strategy_set_pair(&o, "replicas=5", err, sizeof err), 0);
    assert_int_equal(scn_strategy_set(&o, "replicas", "9", err, sizeof err), -1);
    assert_int_equal(scn_strategy_set(&o, "colour", "blue", err, sizeof err), -1);
    assert_int_equal(scn_strategy_set_pair(&o, "acks", err, sizeof err), -1);
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(FIXTURE("engine_calm.lua"), 1, SCN_VARIANT_NONE, &o, r), 0);
    assert_non_null(strstr(r->strategy, "acks=leader"));
    assert_non_null(strstr(r->strategy, "replicas=5"));
    assert_non_null(strstr(r->reproduce, "--set acks=leader"));
    assert_non_null(strstr(r->checks[5].name, "replica_agreement"));
    assert_true(check_figure(&r->checks[5], "replicas") == 5.0);
    scn_result_free(r);
    free(r);
}

static void test_teach_variants_use_their_strategy(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(FIXTURE("engine_teach.lua"), 1, SCN_VARIANT_WEAK, NULL, r), 0);
    assert_non_null(strstr(r->strategy, "fsync=never"));
    assert_true(r->inv[SCN_INV_NO_LOSS].enforced);
    assert_int_equal(r->inv[SCN_INV_NO_LOSS].expected, REPORT_EXPECT_VIOLATION);
    /* weak passes exactly when it shows the violation */
    assert_int_equal(r->exit_code, r->inv[SCN_INV_NO_LOSS].passed ? 1 : 0);
    scn_result_free(r);
    memset(r, 0, sizeof *r);
    assert_int_equal(run_file(FIXTURE("engine_teach.lua"), 1, SCN_VARIANT_STRONG, NULL, r), 0);
    assert_non_null(strstr(r->strategy, "fsync=always"));
    scn_result_free(r);
    free(r);
}

/* Broken files: each error names the file and the line. */
static void expect_load_error(const char *name, const char *line, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s", name);
    scenario_t *s = NULL;
    char err[SCN_ERR_MAX];
    assert_int_equal(scenario_new(path, 1, &s, err, sizeof err), -1);
    assert_null(s);
    char want[1100];
    snprintf(want, sizeof want, "%s:%s: ", path, line);
    if (strstr(err, want) == NULL || strstr(err, text) == NULL)
        print_error("got '%s', want '%s' and '%s'\n", err, want, text);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, text));
}

static void test_broken_files_name_file_and_line(void **state) {
    (void)state;
    expect_load_error(FIXTURE("broken_syntax.lua"), "3", "expected");
    expect_load_error(FIXTURE("broken_unknown_field.lua"), "2", "did you mean 'replicas'");
    expect_load_error(FIXTURE("broken_wrong_type.lua"), "3", "must be a number");
    expect_load_error(FIXTURE("broken_impossible.lua"), "2", "replicas");
    expect_load_error(FIXTURE("broken_loss.lua"), "2", "loss = 1.5 is impossible");
    expect_load_error(FIXTURE("broken_action_time.lua"), "4", "beyond the phases");
    expect_load_error(FIXTURE("broken_typo.lua"), "3", "did you mean 'cluster'");
    expect_load_error(FIXTURE("broken_expect_field.lua"), "2", "did you mean 'leaderless_max'");
    expect_load_error(FIXTURE("broken_progress_bound.lua"), "3", "cannot be observed");
    expect_load_error(FIXTURE("broken_probe_type.lua"), "2", "'probe' must be true or false");
    expect_load_error(FIXTURE("broken_expect_values.lua"), "2", "latency_p99_ms = -5 is impossible");
    expect_load_error(FIXTURE("broken_expect_values.lua"), "2",
                      "duplicate_enqueues = 0.5 must be a whole number");
    expect_load_error(FIXTURE("broken_expect_values.lua"), "2", "'leaderless' must be a number");
    expect_load_error(FIXTURE("broken_producer_options.lua"), "2",
                      "'confirms' must be true or false, got string");
    expect_load_error(FIXTURE("broken_producer_options.lua"), "2",
                      "'persistent' must be true or false, got number");
    expect_load_error(FIXTURE("broken_producer_options.lua"), "2",
                      "unknown field 'confirm' (did you mean 'confirms'?)");
    expect_load_error(FIXTURE("broken_refusals.lua"), "2",
                      "consumers.nack: unknown field 'probabilty' (did you mean 'probability'?)");
    expect_load_error(FIXTURE("broken_refusals.lua"), "2", "poison: field 'every' is required");
    expect_load_error(FIXTURE("broken_refusals.lua"), "2", "'reject' must be a table");
    expect_load_error(FIXTURE("broken_refusals.lua"), "2", "'requeue' must be true or false");
    expect_load_error(FIXTURE("broken_refusal_auto.lua"), "2", "need ack = \"manual\"");
    expect_load_error(FIXTURE("broken_dlq_consumers.lua"), "2", "needs a dead_letter queue");
    expect_load_error(FIXTURE("broken_leaderless_both.lua"), "2", "are the same bound");
    /* whole-file checks: every one reported */
    expect_load_error(FIXTURE("broken_whole_file.lua"), "4", "time 9 s is beyond the phases");
    expect_load_error(FIXTURE("broken_whole_file.lua"), "5", "never fires inside the chaos phase");
    expect_load_error(FIXTURE("broken_whole_file.lua"), "3", "needs a dead_letter queue");
    expect_load_error(FIXTURE("broken_whole_file.lua"), "3", "need ack = \"manual\"");
    expect_load_error(FIXTURE("broken_teach_side.lua"), "3",
                      "unknown field 'idempotnt' (did you mean 'idempotent'?)");
    expect_load_error(FIXTURE("broken_teach_side.lua"), "3",
                      "teach.strong: field 'expect' must be a table, got number");
}

/* A file with several mistakes: every one is reported in one pass, each
 * with its own line (and a suggestion where one is close). */
static void test_broken_file_reports_every_error(void **state) {
    (void)state;
    const char *path = FIXTURE("broken_many.lua");
    scenario_t *s = NULL;
    char err[SCN_ERR_MAX];
    assert_int_equal(scenario_new(path, 1, &s, err, sizeof err), -1);
    assert_null(s);
    static const char *const want[][2] = {
        {"2", "cluster: unknown field 'replica' (did you mean 'replicas'?)"},
        {"3", "workload.producers: unknown field 'windw' (did you mean 'window'?)"},
        {"3", "workload.producers: field 'rate' must be a number, got string"},
        {"3", "workload.consumers: ack = 'manul' is impossible (did you mean 'manual'?)"},
        {"7", "phases: unknown field 'drian' (did you mean 'drain'?)"},
        {"8", "expect: unknown field 'no_los' (did you mean 'no_loss'?)"},
    };
    const char *prev = err;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char line[1400];
        snprintf(line, sizeof line, "%s:%s: %s", path, want[i][0], want[i][1]);
        const char *at = strstr(err, line);
        if (at == NULL) print_error("missing '%s' in:\n%s\n", line, err);
        assert_non_null(at);
        assert_true(at >= prev); /* in file order */
        prev = at;
    }
}

/* up(), down(), paused(), leader() and followers() in every state (the
 * fixture raises an error, exit 2, on a wrong answer). */
static void test_selectors_in_every_state(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    const int rc = run_file(FIXTURE("engine_selectors.lua"), 1, SCN_VARIANT_NONE, NULL, r);
    if (rc != 0) print_error("%s\n", r->err);
    assert_int_equal(rc, 0);
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    free(r);
}

/* expect{duplicate_enqueues = 0} fails when the broker stored retries twice,
 * though an idempotent consumer keeps no_duplicates. */
/* expect{leaderless_s} is the leaderless bound under its unit-suffixed name. */
static void test_leaderless_s_alias(void **state) {
    (void)state;
    scenario_t *s = NULL;
    char err[SCN_ERR_MAX];
    assert_int_equal(scenario_new(CHAOSLAB_SOURCE_DIR "/docs/examples/latency_expectations.lua", 1,
                                  &s, err, sizeof err), 0);
    assert_true(s->expect.has_leaderless);
    assert_true(s->expect.leaderless_s == 3.0);
    assert_true(s->expect.has_latency_p99 && s->expect.latency_p99_ms == 2000.0);
    assert_true(s->expect.has_duplicate_enqueues && s->expect.duplicate_enqueues == 0);
    scenario_free(s);
}

static void test_duplicate_enqueues_expectation(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(
        run_file(FIXTURE("engine_dup_enqueues.lua"), 1, SCN_VARIANT_NONE, NULL, r), 0);
    const scn_invariant_t *d = &r->inv[SCN_INV_DUPLICATE_ENQUEUES];
    assert_true(d->enforced);
    assert_false(d->passed);
    assert_true(check_figure(&r->checks[CHECK_NO_DUPLICATES], "duplicate_enqueues") > 0);
    assert_true(r->inv[SCN_INV_NO_DUPLICATES].passed);
    assert_false(r->inv[SCN_INV_LATENCY].enforced); /* not asked */
    assert_int_equal(r->exit_code, 1);
    scn_result_free(r);
    free(r);
}

/* expect{latency_p99_ms}: the slow-disk lesson's weak side breaks it, the
 * strong side holds it. */
static void test_latency_expectation(void **state) {
    (void)state;
    const char *path = CHAOSLAB_SOURCE_DIR "/docs/examples/teach_latency.lua";
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(path, 1, SCN_VARIANT_WEAK, NULL, r), 0);
    const double weak_p99 = check_figure(&r->checks[CHECK_LATENCY], "confirm_p99_ns");
    assert_true(r->inv[SCN_INV_LATENCY].enforced);
    assert_false(r->inv[SCN_INV_LATENCY].passed);
    assert_true(weak_p99 > 30e6);
    scn_result_free(r);
    memset(r, 0, sizeof *r);
    assert_int_equal(run_file(path, 1, SCN_VARIANT_STRONG, NULL, r), 0);
    const double strong_p99 = check_figure(&r->checks[CHECK_LATENCY], "confirm_p99_ns");
    print_message("confirm p99: weak %.2f ms, strong %.2f ms\n", weak_p99 / 1e6, strong_p99 / 1e6);
    assert_true(r->inv[SCN_INV_LATENCY].enforced && r->inv[SCN_INV_LATENCY].passed);
    assert_true(strong_p99 <= 30e6);
    assert_non_null(strstr(r->inv[SCN_INV_LATENCY].figures, "confirm_p99="));
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    free(r);
}

/* producers{confirms = false}: every publish of the producer is unknown
 * (unconfirmed), the probe's are confirmed, and no_loss holds: nothing the
 * fire-and-forget producer sent was promised. */
static void test_fire_and_forget_is_never_loss(void **state) {
    (void)state;
    const char *path = CHAOSLAB_SOURCE_DIR "/docs/examples/fire_and_forget.lua";
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(path, 1, SCN_VARIANT_NONE, NULL, r), 0);
    const check_result_t *nl = &r->checks[CHECK_NO_LOSS];
    assert_true(check_figure(nl, "unconfirmed") > 0);
    assert_true(check_figure(nl, "unconfirmed") == (double)(r->published - r->probe_published));
    assert_true(check_figure(nl, "confirmed") == (double)r->probe_published);
    assert_true(check_figure(nl, "unconfirmed_missing") > 0); /* the leader crash */
    assert_true(r->inv[SCN_INV_NO_LOSS].passed);
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    free(r);
}

/* Refusals: nack/requeue retries, poison messages dead-lettered after the
 * delivery limit and processed by the dead-letter consumer (the library's
 * retry_dead_letter); and rejects without requeue and without a DLQ,
 * counted as discarded, never as loss. */
static void test_refusals_retry_dead_letter_and_discard(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(CHAOSLAB_SOURCE_DIR "/scenarios/retry_dead_letter.lua", 1,
                              SCN_VARIANT_NONE, NULL, r), 0);
    const check_result_t *nl = &r->checks[CHECK_NO_LOSS];
    const check_result_t *nd = &r->checks[CHECK_NO_DUPLICATES];
    print_message("retry_dead_letter: dead_letter_processed=%.0f redeliveries=%.0f\n",
                  check_figure(nl, "dead_letter_processed"), check_figure(nd, "redeliveries"));
    assert_true(check_figure(nl, "dead_letter_processed") >= 5); /* every 100th of >1000 */
    assert_true(check_figure(nd, "redeliveries") > check_figure(nl, "dead_letter_processed"));
    assert_true(check_figure(nd, "duplicate_enqueues") == 0); /* moving is not enqueuing */
    assert_true(check_figure(nl, "lost") == 0 && check_figure(nl, "discarded") == 0);
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    memset(r, 0, sizeof *r);
    assert_int_equal(run_file(FIXTURE("engine_reject_discard.lua"), 1, SCN_VARIANT_NONE, NULL, r), 0);
    nl = &r->checks[CHECK_NO_LOSS];
    assert_true(check_figure(nl, "discarded") >= 30); /* every 10th of ~400 */
    assert_true(check_figure(nl, "lost") == 0);
    assert_true(check_figure(nl, "processed_confirmed") + check_figure(nl, "discarded") ==
                check_figure(nl, "confirmed"));
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    free(r);
}

static const faults_event_t *find_event(const scn_result_t *r, const char *kind, uint32_t nth) {
    for (uint32_t i = 0; i < r->timeline_count; i++)
        if (strcmp(r->timeline[i].kind, kind) == 0 && nth-- == 0) return &r->timeline[i];
    return NULL;
}

/* Client faults at chosen times and wipe(): each lands in the fault
 * timeline at its time, heal reboots the client left down, the wiped broker
 * catches up (replica agreement at the highest commit), nothing is lost. */
static void test_client_faults_and_wipe(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(CHAOSLAB_SOURCE_DIR "/docs/examples/client_faults.lua", 1,
                              SCN_VARIANT_NONE, NULL, r), 0);
    const faults_event_t *pc = find_event(r, "partition_client", 0);
    const faults_event_t *cc = find_event(r, "crash_client", 1);
    const faults_event_t *rc1 = find_event(r, "restart_client", 0);
    const faults_event_t *rc2 = find_event(r, "restart_client", 1); /* at heal */
    const faults_event_t *wp = find_event(r, "wipe", 0);
    assert_non_null(pc);
    assert_non_null(cc);
    assert_non_null(rc1);
    assert_non_null(rc2);
    assert_non_null(wp);
    assert_true(pc->time_ns == 1000000000ull && wp->time_ns == 4000000000ull);
    assert_true(rc1->time_ns == 3000000000ull && rc2->time_ns == 8000000000ull);
    assert_non_null(strstr(wp->detail, "restarted empty"));
    assert_null(find_event(r, "restart_client", 2));
    const check_result_t *ra = &r->checks[CHECK_REPLICA_AGREEMENT];
    assert_true(r->inv[SCN_INV_REPLICA_AGREEMENT].passed);
    assert_true(check_figure(ra, "at_highest") == 3); /* the wiped one caught up */
    assert_true(r->inv[SCN_INV_NO_LOSS].passed);
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    memset(r, 0, sizeof *r);
    assert_int_equal(run_file(FIXTURE("broken_client_fault.lua"), 1, SCN_VARIANT_NONE, NULL, r), -1);
    assert_int_equal(r->exit_code, 2);
    assert_non_null(strstr(r->err, "broken_client_fault.lua:4: producer(3) does not exist"));
    scn_result_free(r);
    memset(r, 0, sizeof *r);
    assert_int_equal(run_file(FIXTURE("broken_client_arg.lua"), 1, SCN_VARIANT_NONE, NULL, r), -1);
    assert_non_null(strstr(r->err, "broken_client_arg.lua:3: crash_client: argument 1 must be a client"));
    scn_result_free(r);
    free(r);
}

/* A teach side's own workload and expect tables apply to that side only. */
static void test_teach_sides_have_their_own_workload_and_expect(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(FIXTURE("engine_teach_sides.lua"), 1, SCN_VARIANT_WEAK, NULL, r), 0);
    assert_false(r->inv[SCN_INV_LATENCY].enforced); /* the weak side has no bound */
    scn_result_free(r);
    memset(r, 0, sizeof *r);
    assert_int_equal(run_file(FIXTURE("engine_teach_sides.lua"), 1, SCN_VARIANT_STRONG, NULL, r), 0);
    assert_true(r->inv[SCN_INV_LATENCY].enforced && r->inv[SCN_INV_LATENCY].passed);
    assert_false(r->inv[SCN_INV_NO_DUPLICATES].enforced); /* the side said so */
    assert_true(r->inv[SCN_INV_NO_LOSS].enforced && r->inv[SCN_INV_NO_LOSS].passed);
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    /* the library lesson whose sides differ only in the consumer's code */
    const char *path = CHAOSLAB_SOURCE_DIR "/scenarios/teach_idempotent_consumer.lua";
    memset(r, 0, sizeof *r);
    assert_int_equal(run_file(path, 1, SCN_VARIANT_WEAK, NULL, r), 0);
    const double weak_dups =
        check_figure(&r->checks[CHECK_NO_DUPLICATES], "duplicate_processings");
    assert_false(r->inv[SCN_INV_NO_DUPLICATES].passed);
    scn_result_free(r);
    memset(r, 0, sizeof *r);
    assert_int_equal(run_file(path, 1, SCN_VARIANT_STRONG, NULL, r), 0);
    print_message("idempotent consumer lesson: weak %.0f duplicate processings, strong %.0f\n",
                  weak_dups, check_figure(&r->checks[CHECK_NO_DUPLICATES], "duplicate_processings"));
    assert_true(weak_dups > 0);
    assert_true(r->inv[SCN_INV_NO_DUPLICATES].passed);
    assert_int_equal(r->exit_code, 0);
    scn_result_free(r);
    free(r);
}

static void test_error_inside_action_stops_the_run(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_file(FIXTURE("broken_action.lua"), 1, SCN_VARIANT_NONE, NULL, r), -1);
    assert_int_equal(r->exit_code, 2);
    assert_non_null(strstr(r->err, "broken_action.lua:4: "));
    assert_non_null(strstr(r->err, "node 7 does not exist"));
    scn_result_free(r);
    free(r);
}

static void test_sandbox_has_no_os_io_or_require(void **state) {
    (void)state;
    char dir[] = "/tmp/chaoslab-sandbox-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/sandbox.lua", dir);
    static const char *const bodies[] = {
        "os.exit(3)\n", "io.write('x')\n", "require('x')\n", "dofile('/etc/passwd')\n",
        "collectgarbage()\n", "load(string.dump(function() end))\n",
        "local x = 0 while true do x = x + 1 end\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bodies[i], f);
        fclose(f);
        scenario_t *s = NULL;
        char err[SCN_ERR_MAX];
        assert_int_equal(scenario_new(path, 1, &s, err, sizeof err), -1);
        char want[300];
        snprintf(want, sizeof want, "%s:1: ", path);
        assert_non_null(strstr(err, want));
    }
    /* math.random comes from the run seed: same seed, same draws. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("scenario { name = 'n' .. math.random(1, 1000000) }\n", f);
    fclose(f);
    scenario_t *a = NULL, *b = NULL, *c = NULL;
    char err[SCN_ERR_MAX];
    assert_int_equal(scenario_new(path, 5, &a, err, sizeof err), 0);
    assert_int_equal(scenario_new(path, 5, &b, err, sizeof err), 0);
    assert_int_equal(scenario_new(path, 6, &c, err, sizeof err), 0);
    assert_string_equal(a->name, b->name);
    assert_string_not_equal(a->name, c->name);
    scenario_free(a);
    scenario_free(b);
    scenario_free(c);
    remove(path);
    rmdir(dir);
}

static void test_seeds_parse(void **state) {
    (void)state;
    uint64_t a = 0, b = 0;
    assert_int_equal(scn_seeds_parse("1..5", &a, &b), 0);
    assert_true(a == 1 && b == 5);
    assert_int_equal(scn_seeds_parse("7", &a, &b), 0);
    assert_true(a == 7 && b == 7);
    assert_int_equal(scn_seeds_parse("5..1", &a, &b), -1);
    assert_int_equal(scn_seeds_parse("1..x", &a, &b), -1);
    assert_int_equal(scn_seeds_parse("", &a, &b), -1);
    assert_int_equal(scn_seeds_parse("1..1000000", &a, &b), -1);
    assert_int_equal(scn_edit_distance("replica", "replicas"), 1);
    assert_int_equal(scn_edit_distance("abc", "xyzzy"), 3);
}


/* A history that overflowed would report losses that never happened: the run
 * is an error instead (exit 2) and says why. */
static void test_history_overflow_is_an_error(void **state) {
    (void)state;
    char err[512];
    scenario_t *s = NULL;
    assert_int_equal(scenario_new(FIXTURE("engine_calm.lua"), 1, &s, err, sizeof err), 0);
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    const scn_run_opts_t o = {.seed = 1, .history_records_max = 200};
    assert_int_equal(scn_engine_run(s, &o, r), -1);
    assert_int_equal(r->exit_code, 2);
    assert_non_null(strstr(r->err, "history is full"));
    scn_result_free(r);
    free(r);
    scenario_free(s);
}

/* ---- liveness budgets and always-on invariants ---------------------------- */

/* Load and run one seed with `o` (its seed is used for loading too). */
static int run_opts(const char *path, const scn_run_opts_t *o, scn_result_t *r) {
    scenario_t *s = NULL;
    char err[SCN_ERR_MAX];
    if (scenario_new(path, o->seed, &s, err, sizeof err) != 0) {
        print_error("load failed: %s\n", err);
        return -2;
    }
    const int rc = scn_engine_run(s, o, r);
    scenario_free(s);
    return rc;
}

/* A run over its event budget is a verdict, deterministic like any other:
 * the same budget stalls at the same event with the same trace hash. */
static void test_event_budget_ends_run_stalled(void **state) {
    (void)state;
    scn_result_t *r = calloc(2, sizeof *r);
    assert_non_null(r);
    const scn_run_opts_t o = {.seed = 1, .budget = {.max_events = 3000}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(run_opts(FIXTURE("engine_calm.lua"), &o, &r[i]), 0);
        assert_int_equal(r[i].verdict, REPORT_VERDICT_STALLED);
        assert_int_equal(r[i].exit_code, 1);
        assert_false(r[i].judged);
        assert_int_equal(r[i].events, 3000);
        assert_int_equal(r[i].events_budget, 3000);
    }
    assert_int_equal(r[0].trace_hash, r[1].trace_hash);
    assert_true(r[0].sim_time_ns > 0 && r[0].sim_time_ns < 6000000000u);
    assert_non_null(strstr(r[0].stop_text, "event budget (3000 events) ran out"));
    assert_non_null(strstr(r[0].stop_text, "most frequent event kinds"));
    assert_non_null(strstr(r[0].stop_text, "msg n")); /* e.g. "msg n0->n1" */
    assert_non_null(strstr(r[0].reproduce, "--seed 1 --max-events 3000"));
    for (int i = 0; i < 2; i++) scn_result_free(&r[i]);
    free(r);
}

/* The default budget is derived from the scenario and is far above what a
 * calm run needs; the wall budget has a default too. */
static void test_default_budgets_leave_calm_runs_alone(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    const scn_run_opts_t o = {.seed = 1};
    assert_int_equal(run_opts(FIXTURE("engine_calm.lua"), &o, r), 0);
    assert_int_equal(r->verdict, REPORT_VERDICT_PASS);
    assert_true(r->judged);
    /* 1e6 + 6 s x (6 hosts x 2000 + 100 msg/s x 100) */
    assert_int_equal(r->events_budget, 1000000u + 6u * (6u * 2000u + 100u * 100u));
    assert_true(r->events * 5 < r->events_budget);
    assert_true(r->wall_budget_s == SCN_WALL_BUDGET_MIN_S + 6 * SCN_WALL_PER_SIM_S);
    assert_null(strstr(r->reproduce, "--max-"));
    assert_int_equal(strlen(r->scenario_hash), 16);
    scn_result_free(r);
    free(r);
}

static void test_bad_budgets_are_refused(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    scn_run_opts_t o = {.seed = 1, .budget = {.max_events = SCN_RUN_EVENTS_MAX + 1}};
    assert_int_equal(run_opts(FIXTURE("engine_calm.lua"), &o, r), -1);
    assert_int_equal(r->exit_code, 2);
    assert_non_null(strstr(r->err, "max events"));
    o.budget = (scn_budget_t){.max_wall_s = -1};
    assert_int_equal(run_opts(FIXTURE("engine_calm.lua"), &o, r), -1);
    assert_non_null(strstr(r->err, "max wall"));
    scn_result_free(r);
    free(r);
}

static void hook_trip(scn_engine_t *e, void *arg) {
    (void)e;
    (void)arg;
    BROKER_INVARIANT(1 + 1 == 3, "deliberately broken by the test");
}

/* Corrupts replica 0's state machine the way a bug would (its next message
 * id goes back to 0). The hook runs at a whole second, where the engine's
 * periodic broker_sm_check looks right after it. */
static void hook_corrupt_sm(scn_engine_t *e, void *arg) {
    (void)arg;
    broker_node_t *n = sim_host_node(e->sim, 0);
    assert_non_null(n);
    ((broker_sm_t *)broker_node_sm(n))->next_message_id = 0; /* test-only cast */
}

/* A storm at one virtual instant: a call that schedules itself again at
 * the same time, forever, as a leader and follower answering each other
 * without pacing would. */
static void storm_call(sim_t *sim, void *arg) {
    (void)sim_call_at(sim, sim_now_ns(sim), storm_call, arg);
}

static void hook_storm(scn_engine_t *e, void *arg) {
    (void)arg;
    storm_call(e->sim, NULL);
}

/* The storm window of the event budget ends it long before the total
 * budget or the wall clock would, at the same event on every run. */
static void test_event_storm_ends_run_stalled(void **state) {
    (void)state;
    scn_result_t *r = calloc(2, sizeof *r);
    assert_non_null(r);
    const scn_run_opts_t o = {.seed = 1, .test_hook = hook_storm,
                              .test_hook_at_ns = UINT64_C(1200000000)};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(run_opts(FIXTURE("engine_calm.lua"), &o, &r[i]), 0);
        assert_int_equal(r[i].verdict, REPORT_VERDICT_STALLED);
        assert_int_equal(r[i].exit_code, 1);
        assert_int_equal(r[i].sim_time_ns, UINT64_C(1200000000));
        assert_true(r[i].events < r[i].events_budget / 4);
        assert_true(r[i].wall_time_ns < UINT64_C(20000000000));
    }
    assert_int_equal(r[0].events, r[1].events);
    assert_int_equal(r[0].trace_hash, r[1].trace_hash);
    assert_non_null(strstr(r[0].stop_text, "an event storm: "));
    assert_non_null(strstr(r[0].stop_text, "call -")); /* the kind that stormed */
    for (int i = 0; i < 2; i++) scn_result_free(&r[i]);
    free(r);
}

static void leader_trip(const scn_engine_t *e) {
    (void)e;
    BROKER_INVARIANT(e == NULL, "tripped under a Lua action");
}

/* A trip inside a Lua action (leader() at 0.5 s) must not longjmp past the
 * action's pcall frame: the handler raises a Lua error instead, the action
 * ends, and the run ends with verdict invariant; the Lua state stays sound
 * (the scenario is freed normally; ASan checks the rest in CI). */
static void test_trip_inside_lua_action(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    const scn_run_opts_t o = {.seed = 1, .test_leader_hook = leader_trip};
    assert_int_equal(run_opts(FIXTURE("engine_actions.lua"), &o, r), 0);
    assert_int_equal(r->verdict, REPORT_VERDICT_INVARIANT);
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->sim_time_ns, UINT64_C(500000000));
    assert_non_null(strstr(r->stop_text, "e == NULL (tripped under a Lua action)"));
    scn_result_free(r);
    free(r);
}

/* Store `r` in a fresh database and return `report show` of it (owned). */
static char *store_and_show(const char *path, const scn_result_t *r) {
    char dir[] = "/tmp/chaoslab-engine-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db_path[128];
    snprintf(db_path, sizeof db_path, "%s/runs.db", dir);
    report_db_t *db = NULL;
    assert_int_equal(report_db_open(db_path, &db, NULL, 0), 0);
    scenario_t *s = NULL;
    char err[SCN_ERR_MAX];
    assert_int_equal(scenario_new(path, r->seed, &s, err, sizeof err), 0);
    int64_t id = 0;
    assert_int_equal(scn_output_db(db, s, r, NULL, &id, err, sizeof err), 0);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    assert_int_equal(report_query_show(db, id, 0, f), 0);
    fclose(f);
    report_db_close(db);
    scenario_free(s);
    unlink(db_path);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db_path);
    unlink(wal);
    rmdir(dir);
    return text;
}

static void test_tripped_invariant_is_a_verdict(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    const scn_run_opts_t o = {.seed = 1, .test_hook = hook_trip,
                              .test_hook_at_ns = UINT64_C(1500000000)};
    assert_int_equal(run_opts(FIXTURE("engine_calm.lua"), &o, r), 0);
    assert_int_equal(r->verdict, REPORT_VERDICT_INVARIANT);
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->sim_time_ns, UINT64_C(1500000000));
    assert_non_null(strstr(r->stop_text, "test_scenarios_engine.c:"));
    assert_non_null(strstr(r->stop_text, "1 + 1 == 3 (deliberately broken by the test)"));
    char *shown = store_and_show(FIXTURE("engine_calm.lua"), r);
    assert_non_null(strstr(shown, "verdict     invariant (exit code 1)"));
    assert_non_null(strstr(shown, "deliberately broken by the test"));
    assert_non_null(strstr(shown, "reproduce   chaoslab run "));
    free(shown);
    scn_result_free(r);
    /* the handler is gone after the run: the next run is a normal one */
    const scn_run_opts_t plain = {.seed = 1};
    assert_int_equal(run_opts(FIXTURE("engine_calm.lua"), &plain, r), 0);
    assert_int_equal(r->verdict, REPORT_VERDICT_PASS);
    scn_result_free(r);
    free(r);
}

static void test_corrupt_replica_fails_sm_check(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    const scn_run_opts_t o = {.seed = 2, .test_hook = hook_corrupt_sm,
                              .test_hook_at_ns = 2 * SCN_SM_CHECK_INTERVAL_NS};
    assert_int_equal(run_opts(FIXTURE("engine_calm.lua"), &o, r), 0);
    assert_int_equal(r->verdict, REPORT_VERDICT_INVARIANT);
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->sim_time_ns, 2 * SCN_SM_CHECK_INTERVAL_NS);
    assert_non_null(strstr(r->stop_text, "broker_node_check(n0)"));
    char *shown = store_and_show(FIXTURE("engine_calm.lua"), r);
    assert_non_null(strstr(shown, "invariant (exit code 1)"));
    assert_non_null(strstr(shown, "broker_node_check(n0)"));
    assert_non_null(strstr(shown, "--seed 2"));
    free(shown);
    scn_result_free(r);
    free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calm_run_keeps_every_message),
        cmocka_unit_test(test_history_overflow_is_an_error),
        cmocka_unit_test(test_outage_fails_availability),
        cmocka_unit_test(test_never_recovered_fails_and_counts_add_up),
        cmocka_unit_test(test_without_probe_idle_windows_are_not_counted),
        cmocka_unit_test(test_crash_all_with_fsync_never_loses),
        cmocka_unit_test(test_same_seed_same_hash),
        cmocka_unit_test(test_overrides_apply_and_bad_ones_are_refused),
        cmocka_unit_test(test_teach_variants_use_their_strategy),
        cmocka_unit_test(test_broken_files_name_file_and_line),
        cmocka_unit_test(test_error_inside_action_stops_the_run),
        cmocka_unit_test(test_broken_file_reports_every_error),
        cmocka_unit_test(test_selectors_in_every_state),
        cmocka_unit_test(test_leaderless_s_alias),
        cmocka_unit_test(test_duplicate_enqueues_expectation),
        cmocka_unit_test(test_latency_expectation),
        cmocka_unit_test(test_fire_and_forget_is_never_loss),
        cmocka_unit_test(test_refusals_retry_dead_letter_and_discard),
        cmocka_unit_test(test_client_faults_and_wipe),
        cmocka_unit_test(test_teach_sides_have_their_own_workload_and_expect),
        cmocka_unit_test(test_sandbox_has_no_os_io_or_require),
        cmocka_unit_test(test_seeds_parse),
        cmocka_unit_test(test_event_budget_ends_run_stalled),
        cmocka_unit_test(test_event_storm_ends_run_stalled),
        cmocka_unit_test(test_default_budgets_leave_calm_runs_alone),
        cmocka_unit_test(test_bad_budgets_are_refused),
        cmocka_unit_test(test_tripped_invariant_is_a_verdict),
        cmocka_unit_test(test_corrupt_replica_fails_sm_check),
        cmocka_unit_test(test_trip_inside_lua_action),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
