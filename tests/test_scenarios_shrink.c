/* tests/test_scenarios_shrink.c — the recorded fault schedule and the
 * shrinker: every teach file's weak side shrinks to at most 3 fault calls
 * that still fail its lesson's invariant, the explicit schedule repeats the
 * run's trace hash (nemesis included), the written file fails on its own,
 * the search is deterministic, and what cannot be shrunk is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scenarios/engine.h"
#include "scenarios/scenario.h"
#include "scenarios/shrink.h"
#include "tests/support/tnet.h"

#define LIB(name) CHAOSLAB_SOURCE_DIR "/scenarios/" name
#define FIXTURE(name) CHAOSLAB_SOURCE_DIR "/tests/scenarios/" name
#define TEST_TRIALS 150u
#define TEST_BUDGET_S 600.0   /* never the bound in a test: trials are */
#define TEST_FAULTS_MAX 3u    /* the bar for a teach file's weak side */

static char tmpdir[64];

static void out_path(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static shrink_opts_t opts_for(const char *path, uint64_t seed, scn_variant_t v, const char *out) {
    return (shrink_opts_t){.path = path, .seed = seed, .variant = v, .invariant = -1,
                           .budget_s = TEST_BUDGET_S, .max_trials = TEST_TRIALS,
                           .out_path = out, .progress = NULL};
}

/* Load and run `path` for `seed` as a plain scenario. */
static int run_plain(const char *path, uint64_t seed, scn_variant_t v, scn_result_t *r) {
    scenario_t *s = NULL;
    char err[SCN_ERR_MAX];
    if (scenario_new(path, seed, &s, err, sizeof err) != 0) {
        print_error("load failed: %s\n", err);
        return -2;
    }
    const scn_run_opts_t o = {.seed = seed, .variant = v};
    const int rc = scn_engine_run(s, &o, r);
    scenario_free(s);
    return rc;
}

/* teach_acks: five at() steps; the schedule holds them with the concrete
 * targets leader() resolved to, and nothing of the engine's own heal. */
static void test_schedule_records_actions(void **state) {
    (void)state;
    scn_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(run_plain(LIB("teach_acks.lua"), 1, SCN_VARIANT_WEAK, r), 0);
    const scn_schedule_t *sc = &r->schedule;
    assert_false(sc->truncated);
    assert_int_equal(sc->steps_count, 5);
    const double at_s[5] = {3, 6, 8, 10, 11};
    const faults_op_kind_t first_op[5] = {FAULTS_OP_ISOLATE, FAULTS_OP_HEAL_NET,
                                          FAULTS_OP_ISOLATE, FAULTS_OP_CRASH,
                                          FAULTS_OP_RESTART};
    const uint32_t ops[5] = {1, 1, 1, 2, 1}; /* at(10): crash(leader()); heal() */
    for (uint32_t i = 0; i < 5; i++) {
        const scn_step_t *st = &sc->steps[i];
        assert_int_equal(st->time_ns, (uint64_t)(at_s[i] * 1e9));
        assert_int_equal(st->source, i);
        assert_int_equal(st->ops_count, ops[i]);
        const faults_op_t *op = &sc->ops[st->ops_first];
        assert_int_equal(op->kind, first_op[i]);
        if (op->kind == FAULTS_OP_ISOLATE || op->kind == FAULTS_OP_CRASH) {
            /* one concrete broker: the leader at that moment */
            assert_true(op->set != 0 && (op->set & (op->set - 1)) == 0 && op->set < 8);
        }
    }
    assert_int_equal(sc->ops[sc->steps[3].ops_first + 1].kind, FAULTS_OP_HEAL_NET);
    assert_int_equal(sc->ops_count, 6);
    scn_result_free(r);
    free(r);
}

/* The nemesis's steps are recorded too (with their empty ticks), and the
 * run rewritten as explicit at() actions repeats the trace hash. */
static void test_nemesis_schedule_replays_same_hash(void **state) {
    (void)state;
    char out[128];
    out_path("nemesis_shrunk.lua", out, sizeof out);
    shrink_opts_t o = opts_for(FIXTURE("shrink_nemesis.lua"), 3, SCN_VARIANT_NONE, out);
    shrink_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    const int rc = shrink_run(&o, r);
    if (rc != 0) print_error("shrink: %s\n", r->err);
    assert_int_equal(rc, 0);
    assert_int_equal(r->invariant, SCN_INV_NO_LOSS);
    print_message("nemesis seed 3: faults %u -> %u, steps %u -> %u, %u trials, %.1fs\n",
                  r->before.faults, r->after.faults, r->before.steps, r->after.steps, r->trials,
                  r->wall_s);
    assert_true(r->before.steps > 5);
    assert_int_equal(r->replay_hash, r->trace_hash);
    assert_true(r->after.faults <= TEST_FAULTS_MAX);
    assert_true(r->after.faults < r->before.faults);
    /* The file names no nemesis: only explicit actions. */
    char *text = calloc(1, 1 << 16);
    assert_non_null(text);
    tnet_read_file(out, text, 1 << 16);
    assert_null(strstr(text, "nemesis {"));
    assert_non_null(strstr(text, "at("));
    free(text);
    free(r);
}

/* The bar: every teach file's weak side. */
static void test_teach_weak_sides_shrink(void **state) {
    (void)state;
    static const char *const files[] = {
        "teach_acks.lua", "teach_autoack.lua", "teach_dedup.lua",
        "teach_election.lua", "teach_fsync.lua", "teach_idempotent_consumer.lua",
        "teach_ordering.lua", "teach_replicas.lua", "teach_slow_disk.lua",
    };
    shrink_result_t *r = calloc(1, sizeof *r);
    scn_result_t *run = calloc(1, sizeof *run);
    assert_non_null(r);
    assert_non_null(run);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512], out[128];
        snprintf(path, sizeof path, "%s/scenarios/%s", CHAOSLAB_SOURCE_DIR, files[i]);
        snprintf(out, sizeof out, "%s/weak_%zu.lua", tmpdir, i);
        /* the first seed of the file's range whose weak side shows the lesson */
        int rc = 1;
        uint64_t seed = 1;
        for (; seed <= 4 && rc == 1; seed++) {
            shrink_opts_t o = opts_for(path, seed, SCN_VARIANT_WEAK, out);
            rc = shrink_run(&o, r);
        }
        seed--;
        if (rc != 0) print_error("%s: %s\n", files[i], r->err);
        assert_int_equal(rc, 0);
        print_message("%-30s seed %llu: faults %u -> %u, clients %u -> %u, messages %llu -> "
                      "%llu, sim %.1fs -> %.1fs, %u trials, %.1fs\n",
                      files[i], (unsigned long long)seed, r->before.faults, r->after.faults,
                      r->before.clients, r->after.clients,
                      (unsigned long long)r->before.messages,
                      (unsigned long long)r->after.messages, r->before.sim_s, r->after.sim_s,
                      r->trials, r->wall_s);
        assert_true(r->after.faults <= TEST_FAULTS_MAX);
        assert_int_equal(r->replay_hash, r->trace_hash);
        /* The written file, on its own, fails the lesson's invariant. */
        scenario_t *s = NULL;
        char err[SCN_ERR_MAX];
        assert_int_equal(scenario_new(path, seed, &s, err, sizeof err), 0);
        const int lesson = scn_invariant_parse(s->teach.violation);
        scenario_free(s);
        assert_int_equal(r->invariant, lesson);
        assert_int_equal(run_plain(out, seed, SCN_VARIANT_NONE, run), 0);
        assert_true(run->judged);
        assert_false(run->inv[lesson].passed);
        assert_true(run->inv[lesson].enforced);
        assert_int_equal(run->exit_code, 1);
        assert_int_equal(run->trace_hash, r->shrunk_hash);
        scn_result_free(run);
    }
    free(run);
    free(r);
}

/* Same inputs, same file and same run. */
static void test_deterministic(void **state) {
    (void)state;
    char a[128], b[128];
    out_path("det_a.lua", a, sizeof a);
    out_path("det_b.lua", b, sizeof b);
    shrink_result_t *ra = calloc(1, sizeof *ra), *rb = calloc(1, sizeof *rb);
    assert_non_null(ra);
    assert_non_null(rb);
    shrink_opts_t o = opts_for(LIB("teach_ordering.lua"), 1, SCN_VARIANT_WEAK, a);
    assert_int_equal(shrink_run(&o, ra), 0);
    o.out_path = b;
    assert_int_equal(shrink_run(&o, rb), 0);
    assert_int_equal(ra->shrunk_hash, rb->shrunk_hash);
    assert_int_equal(ra->trials, rb->trials);
    char *ta = calloc(1, 1 << 16), *tb = calloc(1, 1 << 16);
    assert_non_null(ta);
    assert_non_null(tb);
    tnet_read_file(a, ta, 1 << 16);
    tnet_read_file(b, tb, 1 << 16);
    assert_true(strlen(ta) > 100);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
    free(ra);
    free(rb);
}

/* A safe strategy fails nothing: refused (1), no file written. */
static void test_safe_strategy_refused(void **state) {
    (void)state;
    char out[128];
    out_path("strong.lua", out, sizeof out);
    shrink_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    shrink_opts_t o = opts_for(LIB("teach_acks.lua"), 1, SCN_VARIANT_STRONG, out);
    assert_int_equal(shrink_run(&o, r), 1);
    assert_non_null(strstr(r->err, "nothing"));
    assert_int_equal(r->trials, 0);
    assert_int_not_equal(access(out, F_OK), 0);
    /* a plain scenario's passing seed: the same */
    o = opts_for(FIXTURE("engine_calm.lua"), 1, SCN_VARIANT_NONE, out);
    assert_int_equal(shrink_run(&o, r), 1);
    assert_non_null(strstr(r->err, "nothing fails"));
    /* an invariant that held in a failing run */
    o = opts_for(LIB("teach_acks.lua"), 1, SCN_VARIANT_WEAK, out);
    o.invariant = SCN_INV_NO_PHANTOMS;
    assert_int_equal(shrink_run(&o, r), 1);
    assert_non_null(strstr(r->err, "no_phantoms held"));
    assert_int_not_equal(access(out, F_OK), 0);
    free(r);
}

static void test_bad_input_rejected(void **state) {
    (void)state;
    char out[128];
    out_path("bad.lua", out, sizeof out);
    shrink_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    shrink_opts_t o = opts_for(LIB("teach_acks.lua"), 1, SCN_VARIANT_WEAK, out);
    o.budget_s = 0;
    assert_int_equal(shrink_run(&o, r), -1);
    assert_non_null(strstr(r->err, "budget"));
    o.budget_s = -3;
    assert_int_equal(shrink_run(&o, r), -1);
    o = opts_for(LIB("teach_acks.lua"), 1, SCN_VARIANT_WEAK, out);
    o.max_trials = 0;
    assert_int_equal(shrink_run(&o, r), -1);
    o = opts_for(LIB("teach_acks.lua"), 1, SCN_VARIANT_WEAK, out);
    o.invariant = (int)SCN_INV_COUNT;
    assert_int_equal(shrink_run(&o, r), -1);
    /* unwritable output: refused before any trial */
    o = opts_for(LIB("teach_acks.lua"), 1, SCN_VARIANT_WEAK, "/nonexistent-dir/x.lua");
    assert_int_equal(shrink_run(&o, r), -1);
    assert_non_null(strstr(r->err, "cannot write"));
    assert_int_equal(r->trials, 0);
    o.out_path = tmpdir; /* a directory */
    assert_int_equal(shrink_run(&o, r), -1);
    assert_non_null(strstr(r->err, "directory"));
    /* a teach file needs a side; a plain one takes none */
    o = opts_for(LIB("teach_acks.lua"), 1, SCN_VARIANT_NONE, out);
    assert_int_equal(shrink_run(&o, r), -1);
    assert_non_null(strstr(r->err, "--variant"));
    o = opts_for(FIXTURE("engine_calm.lua"), 1, SCN_VARIANT_WEAK, out);
    assert_int_equal(shrink_run(&o, r), -1);
    /* no such file */
    o = opts_for(FIXTURE("no_such_file.lua"), 1, SCN_VARIANT_NONE, out);
    assert_int_equal(shrink_run(&o, r), -1);
    assert_int_not_equal(access(out, F_OK), 0);
    free(r);
}

/* The trial bound holds: one trial (the explicit replay) and stop. */
static void test_trial_budget_bounds_search(void **state) {
    (void)state;
    char out[128];
    out_path("bounded.lua", out, sizeof out);
    shrink_result_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    shrink_opts_t o = opts_for(LIB("teach_acks.lua"), 1, SCN_VARIANT_WEAK, out);
    o.max_trials = 1;
    assert_int_equal(shrink_run(&o, r), 0);
    assert_int_equal(r->trials, 1);
    assert_true(r->budget_hit);
    /* nothing removed: the file is the whole run, and repeats its hash */
    assert_int_equal(r->after.faults, r->before.faults);
    assert_int_equal(r->shrunk_hash, r->trace_hash);
    /* the wall budget: spent before the first trial ends, so one trial */
    o.max_trials = TEST_TRIALS;
    o.budget_s = 0.001;
    assert_int_equal(shrink_run(&o, r), 0);
    assert_int_equal(r->trials, 1);
    assert_true(r->budget_hit);
    free(r);
}

/* Fewer replicas when no fault names a broker past them: five go down to
 * three when the isolated leader was n0..n2, and stay five otherwise. */
static void test_fewer_replicas_when_faults_allow(void **state) {
    (void)state;
    shrink_result_t *r = calloc(1, sizeof *r);
    char *text = calloc(1, 1 << 16);
    assert_non_null(r);
    assert_non_null(text);
    uint32_t to_three = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        char out[128];
        snprintf(out, sizeof out, "%s/five_%llu.lua", tmpdir, (unsigned long long)seed);
        shrink_opts_t o = opts_for(FIXTURE("shrink_five.lua"), seed, SCN_VARIANT_NONE, out);
        assert_int_equal(shrink_run(&o, r), 0);
        tnet_read_file(out, text, 1 << 16);
        int node = -1;
        const char *iso = strstr(text, "isolate(node(");
        if (iso != NULL) node = atoi(iso + strlen("isolate(node("));
        const bool three = strstr(text, "cluster { replicas = 3,") != NULL;
        assert_true(three || strstr(text, "cluster { replicas = 5,") != NULL);
        if (node >= 3) assert_false(three); /* n3/n4 need five */
        to_three += three;
        scn_result_t *run = calloc(1, sizeof *run);
        assert_non_null(run);
        assert_int_equal(run_plain(out, seed, SCN_VARIANT_NONE, run), 0);
        assert_false(run->inv[SCN_INV_NO_LOSS].passed);
        scn_result_free(run);
        free(run);
    }
    assert_true(to_three >= 1);
    free(text);
    free(r);
}

/* Every kind of injector call, written back as Lua: the same trace hash. */
static void test_every_call_kind_replays_same_hash(void **state) {
    (void)state;
    char out[128];
    out_path("allops.lua", out, sizeof out);
    shrink_result_t *r = calloc(1, sizeof *r);
    char *text = calloc(1, 1 << 16);
    assert_non_null(r);
    assert_non_null(text);
    shrink_opts_t o = opts_for(FIXTURE("shrink_allops.lua"), 1, SCN_VARIANT_NONE, out);
    o.max_trials = 1;
    assert_int_equal(shrink_run(&o, r), 0);
    assert_int_equal(r->invariant, SCN_INV_AVAILABILITY);
    assert_int_equal(r->replay_hash, r->trace_hash);
    assert_int_equal(r->shrunk_hash, r->trace_hash);
    assert_int_equal(r->before.faults, 30);
    tnet_read_file(out, text, 1 << 16);
    static const char *const calls[] = {
        "clock(node(1), -12.345678, 300)", "links(nodes(0, 2), { loss = 0.1, reorder = 0.05, "
        "latency_ms = 3.3333, reorder_window_ms = 2.5, clients = true })",
        "clog(node(3), 0.123456789)", "disk_corrupt(node(4), 3, \"log\")",
        "disk_slow(node(2), 7.77)", "disk_fast(node(2))", "torn_writes(node(1), 0.3)",
        "disk_full(node(0), true)", "one_way(node(1), nodes(2, 3))", "bridge(nodes(0, 1), 2)",
        "split(nodes(0, 1))", "partition_client(producer(1), nodes(0, 1))",
        "crash_client(consumer(1))", "restart_client(consumer(1))", "pause(node(3))",
        "kill(node(4))", "resume(node(3))", "stop(node(1))", "wipe(node(2))", "ring()",
        "power_loss()", "disk_read_errors(node(3))", "random_nodes(2)", "heal()",
        "expect { availability = 0.9999 }"};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        if (strstr(text, calls[i]) == NULL) print_error("missing: %s\n", calls[i]);
        assert_non_null(strstr(text, calls[i]));
    }
    assert_null(strstr(text, "leader()"));
    free(text);
    free(r);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/chaoslab-shrink-test-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tnet_rm_tree(tmpdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_records_actions),
        cmocka_unit_test(test_nemesis_schedule_replays_same_hash),
        cmocka_unit_test(test_every_call_kind_replays_same_hash),
        cmocka_unit_test(test_teach_weak_sides_shrink),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_safe_strategy_refused),
        cmocka_unit_test(test_bad_input_rejected),
        cmocka_unit_test(test_trial_budget_bounds_search),
        cmocka_unit_test(test_fewer_replicas_when_faults_allow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
