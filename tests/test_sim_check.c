/* tests/test_sim_check.c — history storage and the invariant checkers over
 * hand-built histories: each invariant passing and failing with exact
 * counts and violation ids, plus bad input rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "broker/io.h"
#include "sim/check.h"
#include "sim/history.h"

#define MS 1000000ull
#define S 1000000000ull

static history_t *hist;
static uint16_t q0;

static int setup(void **state) {
    (void)state;
    assert_int_equal(history_new(0, &hist), 0);
    assert_int_equal(history_queue_id(hist, "q", &q0), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    history_free(hist);
    hist = NULL;
    return 0;
}

static void add(uint64_t t, uint8_t kind, uint8_t op, uint64_t id, uint64_t prod,
                uint64_t seq, uint8_t flags) {
    history_record_t r;
    memset(&r, 0, sizeof(r));
    r.time_ns = t;
    r.kind = kind;
    r.op = op;
    r.message_id = id;
    r.producer_id = prod;
    r.sequence = seq;
    r.flags = flags;
    r.queue = q0;
    r.node = 0;
    assert_int_equal(history_append(hist, &r), 0);
}

/* publish invoke at t, ok at t + 1ms. */
static void publish_ok(uint64_t t, uint64_t id, uint64_t seq) {
    add(t, HISTORY_INVOKE, HISTORY_OP_PUBLISH, id, 1, seq, 0);
    add(t + MS, HISTORY_OK, HISTORY_OP_PUBLISH, id, 1, seq, 0);
}

static void consume(uint64_t t, uint64_t id, uint64_t seq, uint8_t flags) {
    add(t, HISTORY_OK, HISTORY_OP_DELIVER, id, 1, seq, flags);
    add(t + MS, HISTORY_OK, HISTORY_OP_PROCESS, id, 1, seq, 0);
    add(t + MS, HISTORY_OK, HISTORY_OP_ACK, id, 1, seq, 0);
}

static check_input_t input(void) {
    check_input_t in;
    memset(&in, 0, sizeof(in));
    in.history = hist;
    return in;
}

static void test_all_pass(void **state) {
    (void)state;
    publish_ok(0, 1, 1);
    publish_ok(10 * MS, 2, 2);
    publish_ok(20 * MS, 3, 3);
    consume(30 * MS, 1, 1, 0);
    consume(40 * MS, 2, 2, 0);
    consume(50 * MS, 3, 3, 0);
    check_replica_final_t reps[3] = {{0, 7, 0xab}, {1, 7, 0xab}, {2, 7, 0xab}};
    check_input_t in = input();
    in.replicas = reps;
    in.replicas_count = 3;
    check_result_t r[CHECK_ALL_COUNT];
    assert_int_equal(check_all(&in, r), 0);
    for (unsigned i = 0; i < CHECK_ALL_COUNT; i++) {
        assert_true(r[i].passed);
        assert_int_equal(r[i].violations_total, 0);
    }
    assert_string_equal(r[0].name, "no_loss");
    assert_true(check_figure(&r[0], "confirmed") == 3);
    assert_true(check_figure(&r[0], "lost") == 0);
    assert_true(check_figure(&r[1], "processed_messages") == 3);
    assert_true(check_figure(&r[2], "delivered_messages") == 3);
    assert_true(check_figure(&r[3], "checked") == 3);
    assert_true(check_figure(&r[4], "availability") == 1.0);
    assert_true(check_figure(&r[5], "at_highest") == 3);
    assert_true(check_figure(&r[6], "confirm_p50_ns") == (double)MS);
    assert_true(isnan(check_figure(&r[0], "nope")));
    char line[512];
    check_result_format(&r[0], line, sizeof(line));
    assert_non_null(strstr(line, "no_loss PASS"));
    assert_non_null(strstr(line, "confirmed=3"));
}

static void test_loss(void **state) {
    (void)state;
    publish_ok(0, 1, 1);
    publish_ok(0 + 2 * MS, 2, 2); /* confirmed, never seen again: lost */
    publish_ok(4 * MS, 3, 3);     /* confirmed, still in the queue */
    publish_ok(6 * MS, 4, 4);     /* confirmed, dead-lettered */
    add(8 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 5, 1, 5, 0);
    add(9 * MS, HISTORY_INFO, HISTORY_OP_PUBLISH, 5, 1, 5, 0); /* unknown, processed */
    consume(20 * MS, 1, 1, 0);
    consume(30 * MS, 5, 5, 0);
    uint64_t remaining[] = {3};
    uint64_t dead[] = {4, 777};
    check_queue_final_t qf = {"q", remaining, 1, dead, 2};
    check_input_t in = input();
    in.queues = &qf;
    in.queues_count = 1;
    check_result_t r;
    assert_int_equal(check_no_loss(&in, &r), 0);
    assert_false(r.passed);
    assert_true(check_figure(&r, "confirmed") == 4);
    assert_true(check_figure(&r, "processed_confirmed") == 1);
    assert_true(check_figure(&r, "lost") == 1);
    assert_true(check_figure(&r, "remaining") == 1);
    assert_true(check_figure(&r, "dead_lettered") == 1);
    assert_true(check_figure(&r, "recovered") == 1);
    assert_true(check_figure(&r, "unknown") == 1);
    /* Still enqueued is not lost: only the one found nowhere is a violation. */
    assert_int_equal(r.violations_total, 1);
    assert_int_equal(r.violations_count, 1);
    assert_int_equal(r.violations[0].message_id, 2);
    assert_int_equal(r.violations[0].time_ns, 3 * MS);
    /* ... the one left in the queue is a drain that did not finish. */
    check_result_t d;
    assert_int_equal(check_drained(&in, &d), 0);
    assert_false(d.passed);
    assert_true(check_figure(&d, "remaining") == 1);
    assert_int_equal(d.violations_count, 1);
    assert_int_equal(d.violations[0].message_id, 3);
    assert_non_null(strstr(d.violations[0].detail, "drain incomplete"));
    char line[512];
    check_result_format(&r, line, sizeof(line));
    assert_non_null(strstr(line, "no_loss FAIL"));
    assert_non_null(strstr(line, "lost=1"));
    assert_non_null(strstr(line, "0x2"));
}

static void test_duplicates(void **state) {
    (void)state;
    publish_ok(0, 1, 1);
    publish_ok(2 * MS, 2, 2);
    publish_ok(4 * MS, 3, 3);
    consume(10 * MS, 1, 1, 0);
    consume(20 * MS, 1, 7, 0); /* stored twice (a non-idempotent retry) */
    consume(30 * MS, 2, 2, 0);
    consume(40 * MS, 2, 2, HISTORY_FLAG_REDELIVERED); /* redelivered, processed again */
    consume(50 * MS, 3, 3, 0);
    add(60 * MS, HISTORY_OK, HISTORY_OP_DELIVER, 3, 1, 3, HISTORY_FLAG_REDELIVERED);
    add(61 * MS, HISTORY_OK, HISTORY_OP_SKIP, 3, 1, 3, 0); /* idempotent consumer */
    check_input_t in = input();
    check_result_t r;
    assert_int_equal(check_no_duplicates(&in, &r), 0);
    assert_false(r.passed);
    assert_true(check_figure(&r, "processed_messages") == 3);
    assert_true(check_figure(&r, "duplicate_processings") == 2);
    assert_true(check_figure(&r, "duplicate_enqueues") == 1);
    assert_true(check_figure(&r, "redeliveries") == 2);
    assert_int_equal(r.violations_total, 2);
    assert_int_equal(r.violations[0].message_id, 1);
    assert_int_equal(r.violations[0].time_ns, 21 * MS);
    assert_int_equal(r.violations[1].message_id, 2);
}

static void test_phantoms(void **state) {
    (void)state;
    publish_ok(0, 1, 1);
    add(MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 2, 1, 2, 0);
    add(2 * MS, HISTORY_FAIL, HISTORY_OP_PUBLISH, 2, 1, 2, 0);
    consume(10 * MS, 1, 1, 0);
    consume(20 * MS, 2, 2, 0);    /* definite fail, delivered anyway */
    consume(30 * MS, 0x99, 9, 0); /* never published: phantom */
    check_input_t in = input();
    check_result_t r;
    assert_int_equal(check_no_phantoms(&in, &r), 0);
    assert_false(r.passed);
    assert_true(check_figure(&r, "delivered_messages") == 3);
    assert_true(check_figure(&r, "phantoms") == 1);
    assert_true(check_figure(&r, "failed_delivered") == 1);
    assert_int_equal(r.violations_count, 1);
    assert_int_equal(r.violations[0].message_id, 0x99);
    assert_int_equal(r.violations[0].time_ns, 30 * MS);
}

static void test_ordering(void **state) {
    (void)state;
    for (uint64_t i = 1; i <= 4; i++) publish_ok(i * MS, i, i);
    consume(10 * MS, 1, 1, 0);
    consume(20 * MS, 3, 3, 0);
    consume(30 * MS, 2, 2, 0); /* inversion: seq 2 after seq 3 */
    consume(40 * MS, 1, 1, HISTORY_FLAG_REDELIVERED); /* not a first delivery */
    consume(50 * MS, 4, 4, 0);
    /* Another producer's stream is separate. */
    add(60 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 10, 2, 1, 0);
    add(61 * MS, HISTORY_OK, HISTORY_OP_DELIVER, 10, 2, 1, 0);
    check_input_t in = input();
    check_result_t r;
    assert_int_equal(check_ordering(&in, &r), 0);
    assert_false(r.passed);
    assert_true(check_figure(&r, "streams") == 2);
    assert_true(check_figure(&r, "checked") == 5);
    assert_true(check_figure(&r, "inversions") == 1);
    assert_int_equal(r.violations_count, 1);
    assert_int_equal(r.violations[0].message_id, 2);
}

static void test_ordering_pass(void **state) {
    (void)state;
    for (uint64_t i = 1; i <= 3; i++) publish_ok(i * MS, i, i);
    for (uint64_t i = 1; i <= 3; i++) consume(10 * i * MS, i, i, 0);
    check_input_t in = input();
    check_result_t r;
    assert_int_equal(check_ordering(&in, &r), 0);
    assert_true(r.passed);
    assert_true(check_figure(&r, "inversions") == 0);
}

static void test_availability_gap(void **state) {
    (void)state;
    /* Chaos window [1s, 10s): ok at 1.5, 2, 6, 7 s; attempts at 1, 1.9, 3, 5.5,
     * 6.9 s; the 3 s one never answers, the 5.5 s one takes 0.5 s. */
    add(1 * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 1, 1, 1, 0);
    add(1500 * MS, HISTORY_OK, HISTORY_OP_PUBLISH, 1, 1, 1, 0);
    add(1900 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 2, 1, 2, 0);
    add(2 * S, HISTORY_OK, HISTORY_OP_PUBLISH, 2, 1, 2, 0);
    add(3 * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 3, 1, 3, 0);
    add(4 * S, HISTORY_INFO, HISTORY_OP_PUBLISH, 3, 1, 3, 0);
    add(5500 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 4, 1, 4, 0);
    add(6 * S, HISTORY_OK, HISTORY_OP_PUBLISH, 4, 1, 4, 0);
    add(6900 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 5, 1, 5, 0);
    add(7 * S, HISTORY_OK, HISTORY_OP_PUBLISH, 5, 1, 5, 0);
    check_input_t in = input();
    in.chaos_start_ns = 1 * S;
    in.chaos_end_ns = 10 * S;
    in.heal_ns = 5 * S;
    in.timeout_ns = 400 * MS;
    check_result_t r;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_true(r.passed); /* no thresholds set */
    assert_true(check_figure(&r, "attempts") == 5);
    assert_true(check_figure(&r, "confirmed_in_time") == 2); /* 1.9s and 6.9s */
    assert_true(fabs(check_figure(&r, "attempt_success") - 0.4) < 1e-12);
    /* 90 windows of 100 ms. Confirms land in 4 ([1.5,1.6), [2,2.1), [6,6.1),
     * [7,7.1)). Pending a whole window without a confirm: [1,1.5) 5 windows,
     * [1.9,2) 1 (its confirm lands in the next one), [3,4) 10, [5.5,6) 5,
     * [6.9,7) 1 -> 22 unavailable; the other 64 are idle. */
    assert_true(check_figure(&r, "windows") == 90);
    assert_true(check_figure(&r, "available_windows") == 4);
    assert_true(check_figure(&r, "unavailable_windows") == 22);
    assert_true(check_figure(&r, "idle_windows") == 64);
    assert_true(fabs(check_figure(&r, "availability") - 4.0 / 26.0) < 1e-12);
    assert_true(check_figure(&r, "longest_gap_ns") == (double)(4 * S));
    assert_true(check_figure(&r, "heal_to_ok_ns") == (double)S);
    /* With thresholds: the gap, the window share and the attempt share fail. */
    in.max_gap_ns = 3 * S;
    in.availability_min = 0.5;
    in.attempt_success_min = 0.5;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_false(r.passed);
    assert_int_equal(r.violations_total, 3);
    assert_int_equal(r.violations[2].time_ns, 2 * S); /* the gap starts at 2 s */
    /* No confirm after the heal moment: -1 (progress judges it). */
    in.max_gap_ns = 0;
    in.availability_min = 0;
    in.attempt_success_min = 0;
    in.heal_ns = 8 * S;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_true(check_figure(&r, "heal_to_ok_ns") == -1);
    /* Any ok counts without a timeout. */
    in.heal_ns = 0;
    in.timeout_ns = 0;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_true(check_figure(&r, "confirmed_in_time") == 4);
}

/* The case attempts cannot see: a producer with a full window tries nothing
 * while the cluster is down 6 s of a 10 s chaos phase. Its attempt share
 * stays high; the windows in which it waited count as down. */
static void test_availability_blocked_client(void **state) {
    (void)state;
    uint64_t id = 1;
    for (uint64_t t = 0; t < 2 * S; t += 10 * MS, id++) publish_ok(t, id, id); /* up */
    /* at 2 s: one publish sent, answered only at 8 s (the window is full) */
    add(2 * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, id, 1, id, 0);
    add(8 * S, HISTORY_OK, HISTORY_OP_PUBLISH, id, 1, id, 0);
    id++;
    for (uint64_t t = 8 * S + 10 * MS; t < 10 * S; t += 10 * MS, id++) publish_ok(t, id, id);
    check_input_t in = input();
    in.chaos_end_ns = 10 * S;
    in.timeout_ns = 10 * S;
    in.availability_min = 0.9;
    check_result_t r;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_true(check_figure(&r, "attempt_success") > 0.99); /* the old figure: fooled */
    assert_true(check_figure(&r, "unavailable_windows") == 60);
    assert_true(fabs(check_figure(&r, "availability") - 0.4) < 1e-12);
    assert_false(r.passed);
    assert_non_null(strstr(r.violations[0].detail, "availability 0.4000 below 0.9000"));
}

/* Nothing asked during chaos: no evidence, and never 100 %. */
static void test_availability_empty_is_not_full(void **state) {
    (void)state;
    publish_ok(0, 1, 1);
    check_input_t in = input();
    in.chaos_start_ns = 1 * S;
    in.chaos_end_ns = 3 * S;
    check_result_t r;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_true(check_figure(&r, "idle_windows") == 20);
    assert_true(check_figure(&r, "availability") == 0.0);
    in.availability_min = 0.5;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_false(r.passed);
}

static void test_consumer_availability(void **state) {
    (void)state;
    /* Confirmed at 1 ms and 2 ms; delivered at 50 ms and 1.05 s: the second
     * waited [2ms, 1.05s) with no delivery -> 9 windows down. */
    publish_ok(0, 1, 1);
    publish_ok(1 * MS, 2, 2);
    consume(50 * MS, 1, 1, 0);
    consume(1050 * MS, 2, 2, 0);
    check_input_t in = input();
    in.chaos_end_ns = 2 * S;
    check_result_t r;
    assert_int_equal(check_consumer_availability(&in, &r), 0);
    assert_true(r.passed);
    assert_true(check_figure(&r, "windows") == 20);
    assert_true(check_figure(&r, "available_windows") == 2);
    assert_true(check_figure(&r, "unavailable_windows") == 9);
    assert_true(check_figure(&r, "idle_windows") == 9);
    assert_true(fabs(check_figure(&r, "consumer_availability") - 2.0 / 11.0) < 1e-12);
    in.consumer_availability_min = 0.5;
    assert_int_equal(check_consumer_availability(&in, &r), 0);
    assert_false(r.passed);
}

/* One sample: broker roles (and commits) at time t. */
static void sample(uint64_t t, const int *roles, const uint64_t *commits, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        history_record_t rec;
        memset(&rec, 0, sizeof(rec));
        rec.time_ns = t;
        rec.op = HISTORY_OP_REPLICA;
        rec.kind = HISTORY_INFO;
        rec.node = i;
        rec.detail = roles[i];
        rec.sequence = 1;
        rec.value = commits != NULL ? commits[i] : 0;
        rec.queue = HISTORY_QUEUE_NONE;
        assert_int_equal(history_append(hist, &rec), 0);
    }
}

enum { F = HISTORY_ROLE_FOLLOWER, L = HISTORY_ROLE_LEADER, C = HISTORY_ROLE_CANDIDATE,
       D = HISTORY_ROLE_DOWN, R = HISTORY_ROLE_RECOVERING };

static void test_leaderless(void **state) {
    (void)state;
    const int led0[3] = {L, F, F}, none[3] = {D, C, F}, led1[3] = {D, L, F};
    const int none2[3] = {F, C, C}, led2[3] = {F, F, L};
    sample(0, led0, NULL, 3);
    sample(1 * S, none, NULL, 3);     /* leaderless 1 s .. 1.5 s */
    sample(1500 * MS, led1, NULL, 3);
    sample(3 * S, none2, NULL, 3);    /* leaderless 3 s .. 5 s */
    sample(4 * S, none2, NULL, 3);
    sample(5 * S, led2, NULL, 3);
    check_input_t in = input();
    in.chaos_start_ns = 500 * MS;
    in.chaos_end_ns = 6 * S;
    check_result_t r;
    assert_int_equal(check_leaderless(&in, &r), 0);
    assert_true(r.passed);
    assert_true(check_figure(&r, "samples") == 6);
    assert_true(check_figure(&r, "leaderless_ns") == (double)(2500 * MS));
    assert_true(check_figure(&r, "leaderless_max_ns") == (double)(2 * S));
    assert_true(check_figure(&r, "leader_changes") == 2);
    in.leaderless_max_ns = 1 * S;
    assert_int_equal(check_leaderless(&in, &r), 0);
    assert_false(r.passed);
    in.leaderless_max_ns = 0;
    in.leaderless_total_ns = 3 * S;
    assert_int_equal(check_leaderless(&in, &r), 0);
    assert_true(r.passed);
}

static void test_leaderless_without_samples(void **state) {
    (void)state;
    publish_ok(0, 1, 1);
    check_input_t in = input();
    check_result_t r;
    assert_int_equal(check_leaderless(&in, &r), 0);
    assert_true(check_figure(&r, "leaderless_ns") == -1);
    in.leaderless_max_ns = S;
    assert_int_equal(check_leaderless(&in, &r), 0);
    assert_false(r.passed); /* a bound with nothing to judge is not "held" */
}

static void test_progress(void **state) {
    (void)state;
    const int down[3] = {D, F, C}, rec[3] = {R, L, F}, led[3] = {F, L, F};
    const uint64_t c0[3] = {0, 90, 90}, c1[3] = {0, 100, 100}, c2[3] = {100, 104, 102};
    sample(9 * S, down, c0, 3);
    add(9 * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 1, 1, 1, 0); /* pending at heal */
    sample(10 * S, down, c0, 3);                                /* heal at 10 s */
    sample(10200 * MS, rec, c1, 3);                             /* leader: target 100 */
    add(10300 * MS, HISTORY_OK, HISTORY_OP_PUBLISH, 1, 1, 1, 0);
    sample(11 * S, led, c2, 3);                                 /* n0 caught up */
    check_input_t in = input();
    in.heal_ns = 10 * S;
    check_result_t r;
    assert_int_equal(check_progress(&in, &r), 0);
    assert_true(r.passed);
    assert_true(check_figure(&r, "heal_to_leader_ns") == (double)(200 * MS));
    assert_true(check_figure(&r, "heal_to_caught_up_ns") == (double)(1 * S));
    assert_true(check_figure(&r, "heal_to_ok_ns") == (double)(300 * MS));
    assert_true(check_figure(&r, "target_commit") == 100);
    assert_true(check_figure(&r, "confirm_needed") == 1);
    /* A bound of 0.5 s: the recovering broker had not caught up by then. */
    in.progress_bound_ns = 500 * MS;
    assert_int_equal(check_progress(&in, &r), 0);
    assert_false(r.passed);
    assert_int_equal(r.violations_total, 1);
    assert_non_null(strstr(r.violations[0].detail, "never recovered: n0 (recovering)"));
    /* A bound of 0.1 s: no leader either, and no confirm. */
    in.progress_bound_ns = 100 * MS;
    assert_int_equal(check_progress(&in, &r), 0);
    assert_int_equal(r.violations_total, 2);
    assert_non_null(strstr(r.violations[0].detail, "no leader"));
    assert_non_null(strstr(r.violations[1].detail, "no confirm"));
    /* No heal phase: nothing to judge. */
    in.heal_ns = 0;
    assert_int_equal(check_progress(&in, &r), 0);
    assert_true(r.passed);
}

static void test_progress_never_recovers(void **state) {
    (void)state;
    const int led[2] = {L, F}, gone[2] = {D, C};
    sample(1 * S, led, NULL, 2);
    add(1 * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 1, 1, 1, 0);
    add(2 * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 2, 1, 2, 0);
    add(2 * S, HISTORY_OK, HISTORY_OP_PUBLISH, 2, 1, 2, 0);      /* before heal */
    for (uint64_t t = 3 * S; t < 8 * S; t += 100 * MS) sample(t, gone, NULL, 2);
    add(9 * S, HISTORY_INFO, HISTORY_OP_PUBLISH, 1, 1, 1, HISTORY_FLAG_AT_END);
    check_input_t in = input();
    in.heal_ns = 3 * S;
    check_result_t r;
    assert_int_equal(check_progress(&in, &r), 0);
    assert_false(r.passed);
    assert_true(check_figure(&r, "heal_to_leader_ns") == -1);
    assert_true(check_figure(&r, "heal_to_ok_ns") == -1);
    assert_int_equal(r.violations_total, 2); /* no leader, no confirm */
}

/* Storage damaged on a majority: no safe election exists, so progress is
 * not owed — and says so in a figure. One damaged of three still owes it. */
static void test_progress_beyond_fault_model(void **state) {
    (void)state;
    const int two[3] = {HISTORY_ROLE_FAILED, HISTORY_ROLE_CORRUPT, C};
    const int one[3] = {HISTORY_ROLE_FAILED, C, C};
    add(1 * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 1, 1, 1, 0);
    for (uint64_t t = 2 * S; t < 4 * S; t += 100 * MS) sample(t, two, NULL, 3);
    check_input_t in = input();
    in.heal_ns = 2 * S;
    check_result_t r;
    assert_int_equal(check_progress(&in, &r), 0);
    assert_true(r.passed);
    assert_true(check_figure(&r, "beyond_fault_model") == 1);
    assert_true(check_figure(&r, "damaged_replicas") == 2);
    for (uint64_t t = 4 * S; t < 5 * S; t += 100 * MS) sample(t, one, NULL, 3);
    assert_int_equal(check_progress(&in, &r), 0);
    assert_false(r.passed); /* a majority was healthy: never recovered */
    assert_true(check_figure(&r, "beyond_fault_model") == 0);
}

/* Every publish ends one way and the counts add up. */
static void test_accounting(void **state) {
    (void)state;
    publish_ok(0, 1, 1);
    add(1 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 2, 1, 2, 0);
    add(2 * MS, HISTORY_FAIL, HISTORY_OP_PUBLISH, 2, 1, 2, HISTORY_FLAG_NACKED);
    add(3 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 3, 1, 3, 0);
    add(4 * MS, HISTORY_FAIL, HISTORY_OP_PUBLISH, 3, 1, 3, 0);
    add(5 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 4, 1, 4, 0);
    add(6 * MS, HISTORY_INFO, HISTORY_OP_PUBLISH, 4, 1, 4, 0);
    add(7 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 5, 1, 5, 0);
    add(8 * MS, HISTORY_INFO, HISTORY_OP_PUBLISH, 5, 1, 5, HISTORY_FLAG_AT_END);
    add(9 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 6, 1, 6, 0); /* never settled */
    consume(20 * MS, 1, 1, 0);
    check_input_t in = input();
    check_result_t r;
    assert_int_equal(check_no_loss(&in, &r), 0);
    assert_true(r.passed);
    assert_true(check_figure(&r, "published") == 6);
    assert_true(check_figure(&r, "confirmed") == 1);
    assert_true(check_figure(&r, "nacked") == 1);
    assert_true(check_figure(&r, "failed") == 1);
    assert_true(check_figure(&r, "unknown") == 2);
    assert_true(check_figure(&r, "unknown_at_end") == 1);
    assert_true(check_figure(&r, "unfinished") == 1);
}

static void test_replicas(void **state) {
    (void)state;
    check_replica_final_t reps[4] = {
        {0, 10, 0xaa}, {1, 10, 0xaa}, {2, 9, 0x55}, {3, 10, 0xbb}};
    check_input_t in = input();
    in.replicas = reps;
    in.replicas_count = 4;
    check_result_t r;
    assert_int_equal(check_replica_agreement(&in, &r), 0);
    assert_false(r.passed);
    assert_true(check_figure(&r, "highest_commit") == 10);
    assert_true(check_figure(&r, "at_highest") == 3);
    assert_true(check_figure(&r, "lagging") == 1);
    assert_true(check_figure(&r, "mismatches") == 1);
    assert_int_equal(r.violations_count, 1);
    assert_non_null(strstr(r.violations[0].detail, "replica 3"));
    reps[3].digest = 0xaa;
    assert_int_equal(check_replica_agreement(&in, &r), 0);
    assert_true(r.passed);
}

/* Latencies in no particular order, spread over several bytes (1 us to
 * ~0.9 s): the percentiles come from a correct sort. */
static void test_latency_unsorted(void **state) {
    (void)state;
    for (uint64_t i = 1; i <= 1000; i++) {
        const uint64_t rank = (i * 389) % 1000 + 1; /* a permutation of 1..1000 */
        const uint64_t lat_ns = rank * rank * 900 + 1000;
        add(i * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, i, 1, i, 0);
        add(i * S + lat_ns, HISTORY_OK, HISTORY_OP_PUBLISH, i, 1, i, 0);
    }
    check_input_t in = input();
    check_result_t r;
    assert_int_equal(check_latency(&in, &r), 0);
    assert_true(check_figure(&r, "confirm_samples") == 1000);
    assert_true(check_figure(&r, "confirm_p50_ns") == (double)(500 * 500 * 900 + 1000));
    assert_true(check_figure(&r, "confirm_p99_ns") == (double)(990 * 990 * 900 + 1000));
    assert_true(check_figure(&r, "confirm_max_ns") == (double)(1000 * 1000 * 900 + 1000));
}

static void test_latency(void **state) {
    (void)state;
    /* 100 publishes confirmed after 1..100 ms; processed 200 ms later. */
    for (uint64_t i = 1; i <= 100; i++) {
        add(i * S, HISTORY_INVOKE, HISTORY_OP_PUBLISH, i, 1, i, 0);
        add(i * S + i * MS, HISTORY_OK, HISTORY_OP_PUBLISH, i, 1, i, 0);
        add(i * S + 200 * MS, HISTORY_OK, HISTORY_OP_PROCESS, i, 1, i, 0);
    }
    check_input_t in = input();
    check_result_t r;
    assert_int_equal(check_latency(&in, &r), 0);
    assert_true(r.passed);
    assert_true(check_figure(&r, "confirm_samples") == 100);
    assert_true(check_figure(&r, "confirm_p50_ns") == (double)(50 * MS));
    assert_true(check_figure(&r, "confirm_p99_ns") == (double)(99 * MS));
    assert_true(check_figure(&r, "confirm_max_ns") == (double)(100 * MS));
    assert_true(check_figure(&r, "process_p99_ns") == (double)(200 * MS));
}

static void test_time_series(void **state) {
    (void)state;
    publish_ok(100 * MS, 1, 1);                          /* bucket 0 */
    add(1100 * MS, HISTORY_INVOKE, HISTORY_OP_PUBLISH, 2, 1, 2, 0); /* bucket 1 */
    add(1200 * MS, HISTORY_FAIL, HISTORY_OP_PUBLISH, 2, 1, 2, 0);
    consume(2500 * MS, 1, 1, 0);                         /* bucket 2 */
    check_input_t in = input();
    check_interval_t iv[8];
    assert_int_equal(check_time_series(&in, S, 0, iv, 8), 3);
    assert_int_equal(iv[0].published, 1);
    assert_int_equal(iv[0].confirmed, 1);
    assert_int_equal(iv[0].windows, 10);
    assert_int_equal(iv[0].available_windows, 1); /* one confirm: one window of ten */
    assert_true(fabs(iv[0].availability - 0.1) < 1e-12);
    assert_int_equal(iv[1].start_ns, S);
    assert_int_equal(iv[1].published, 1);
    assert_int_equal(iv[1].failed, 1);
    assert_true(iv[1].availability == 0.0);
    assert_int_equal(iv[2].consumed, 1);
    assert_true(iv[2].availability == 0.0); /* nothing confirmed: never 100 % */
    assert_int_equal(check_time_series(&in, S, 0, iv, 2), IO_EINVAL); /* too small */
    assert_int_equal(check_time_series(&in, 0, 0, iv, 8), IO_EINVAL);
}

static void test_bad_input(void **state) {
    (void)state;
    check_result_t r;
    check_input_t in = input();
    assert_int_equal(check_input_validate(&in), 0);
    in.history = NULL;
    assert_int_equal(check_no_loss(&in, &r), IO_EINVAL);
    assert_false(r.passed);
    assert_int_equal(r.error, IO_EINVAL);
    in = input();
    in.availability_min = NAN;
    assert_int_equal(check_availability(&in, &r), IO_EINVAL);
    in.availability_min = -0.1;
    assert_int_equal(check_availability(&in, &r), IO_EINVAL);
    in.availability_min = 1.5;
    assert_int_equal(check_availability(&in, &r), IO_EINVAL);
    in = input();
    in.attempt_success_min = NAN;
    assert_int_equal(check_availability(&in, &r), IO_EINVAL);
    in = input();
    in.consumer_availability_min = 2;
    assert_int_equal(check_consumer_availability(&in, &r), IO_EINVAL);
    in = input();
    in.chaos_end_ns = (uint64_t)CHECK_WINDOWS_MAX * 2 * CHECK_WINDOW_NS; /* too many windows */
    assert_int_equal(check_leaderless(&in, &r), IO_EINVAL);
    in = input();
    in.queues_count = 1; /* NULL array */
    assert_int_equal(check_no_loss(&in, &r), IO_EINVAL);
    in = input();
    in.replicas_count = CHECK_REPLICAS_MAX + 1;
    assert_int_equal(check_replica_agreement(&in, &r), IO_EINVAL);
    in = input();
    in.chaos_start_ns = 10;
    in.chaos_end_ns = 5;
    assert_int_equal(check_availability(&in, &r), IO_EINVAL);
    check_queue_final_t qf = {"q", NULL, 3, NULL, 0};
    in = input();
    in.queues = &qf;
    in.queues_count = 1;
    assert_int_equal(check_no_loss(&in, &r), IO_EINVAL);
}

static void test_history_rules(void **state) {
    (void)state;
    history_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.time_ns = 100;
    rec.queue = HISTORY_QUEUE_NONE;
    assert_int_equal(history_append(hist, &rec), 0);
    rec.time_ns = 50; /* time going back */
    assert_int_equal(history_append(hist, &rec), IO_EINVAL);
    rec.time_ns = 200;
    rec.kind = HISTORY_KIND_COUNT;
    assert_int_equal(history_append(hist, &rec), IO_EINVAL);
    rec.kind = HISTORY_OK;
    rec.op = HISTORY_OP_COUNT;
    assert_int_equal(history_append(hist, &rec), IO_EINVAL);
    rec.op = HISTORY_OP_PUBLISH;
    rec.queue = 5; /* never interned */
    assert_int_equal(history_append(hist, &rec), IO_EINVAL);
    assert_int_equal(history_count(hist), 1);
    uint16_t id = 0;
    assert_int_equal(history_queue_id(hist, "q", &id), 0);
    assert_int_equal(id, q0);
    assert_int_equal(history_queue_id(hist, "other", &id), 0);
    assert_int_equal(id, 1);
    assert_string_equal(history_queue_name(hist, 1), "other");
    assert_null(history_queue_name(hist, 9));
    assert_string_equal(history_op_name(HISTORY_OP_DELIVER), "deliver");
    assert_string_equal(history_kind_name(HISTORY_INFO), "info");
    assert_string_equal(history_kind_name(99), "?");
    char big[HISTORY_QUEUE_NAME_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(history_queue_id(hist, big, &id), IO_EINVAL);
    assert_int_equal(history_new(HISTORY_RECORDS_MAX + 1ull, &(history_t *){NULL}), IO_EINVAL);
    /* A broker sample names its broker and a known role. */
    history_record_t smp;
    memset(&smp, 0, sizeof(smp));
    smp.time_ns = 1000;
    smp.op = HISTORY_OP_REPLICA;
    smp.kind = HISTORY_INFO;
    smp.queue = HISTORY_QUEUE_NONE;
    smp.node = 1;
    smp.detail = HISTORY_ROLE_COUNT;
    assert_int_equal(history_append(hist, &smp), IO_EINVAL);
    smp.detail = -1;
    assert_int_equal(history_append(hist, &smp), IO_EINVAL);
    smp.detail = HISTORY_ROLE_LEADER;
    smp.node = HISTORY_NODE_NONE;
    assert_int_equal(history_append(hist, &smp), IO_EINVAL);
    smp.node = 1;
    smp.value = 42;
    assert_int_equal(history_append(hist, &smp), 0);
    char text[256];
    history_format(hist, &smp, text, sizeof(text));
    assert_non_null(strstr(text, "replica n1 leader"));
    assert_non_null(strstr(text, "commit=42"));
    assert_string_equal(history_role_name(HISTORY_ROLE_RECOVERING), "recovering");
}

static void test_history_bounded(void **state) {
    (void)state;
    history_t *small = NULL;
    assert_int_equal(history_new(3000, &small), 0); /* grows 1024 -> 2048 -> 3000 */
    history_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.queue = HISTORY_QUEUE_NONE;
    for (uint64_t i = 0; i < 3000; i++) {
        rec.time_ns = i;
        rec.message_id = i + 1;
        assert_int_equal(history_append(small, &rec), 0);
    }
    assert_int_equal(history_append(small, &rec), IO_ENOMEM);
    assert_int_equal(history_count(small), 3000);
    assert_int_equal(history_dropped(small), 1);
    assert_int_equal(history_get(small, 2999)->message_id, 3000);
    assert_null(history_get(small, 3000));
    char line[256];
    assert_true(history_format(small, history_get(small, 0), line, sizeof(line)) > 0);
    assert_non_null(strstr(line, "invoke publish"));
    history_free(small);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phantoms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ordering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ordering_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_availability_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_availability_blocked_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_availability_empty_is_not_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_availability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaderless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaderless_without_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_never_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_beyond_fault_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency_unsorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
