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
    assert_int_equal(r.violations_total, 2);
    assert_int_equal(r.violations_count, 2);
    assert_int_equal(r.violations[0].message_id, 2);
    assert_int_equal(r.violations[0].time_ns, 3 * MS);
    assert_int_equal(r.violations[1].message_id, 3);
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
    assert_true(fabs(check_figure(&r, "availability") - 0.4) < 1e-12);
    assert_true(check_figure(&r, "longest_gap_ns") == (double)(4 * S));
    assert_true(check_figure(&r, "heal_to_ok_ns") == (double)S);
    /* With thresholds: the gap and the share both fail. */
    in.max_gap_ns = 3 * S;
    in.availability_min = 0.5;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_false(r.passed);
    assert_int_equal(r.violations_total, 2);
    assert_int_equal(r.violations[1].time_ns, 2 * S); /* the gap starts at 2 s */
    /* No confirm after the heal moment. */
    in.max_gap_ns = 0;
    in.availability_min = 0;
    in.heal_ns = 8 * S;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_false(r.passed);
    assert_true(check_figure(&r, "heal_to_ok_ns") == -1);
    /* Any ok counts without a timeout. */
    in.heal_ns = 0;
    in.timeout_ns = 0;
    assert_int_equal(check_availability(&in, &r), 0);
    assert_true(check_figure(&r, "confirmed_in_time") == 4);
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
    assert_true(iv[0].availability == 1.0);
    assert_int_equal(iv[1].start_ns, S);
    assert_int_equal(iv[1].published, 1);
    assert_int_equal(iv[1].failed, 1);
    assert_true(iv[1].availability == 0.0);
    assert_int_equal(iv[2].consumed, 1);
    assert_true(iv[2].availability == 1.0); /* nothing published there */
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
