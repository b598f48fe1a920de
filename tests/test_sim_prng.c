/* tests/test_sim_prng.c — PRNG streams: independence, reproducibility and
 * basic distribution sanity. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/prng.h"

#define DRAWS 64

static void fill(sim_prng_t *p, uint64_t *out, int n) {
    for (int i = 0; i < n; i++) out[i] = sim_prng_next(p);
}

static void test_same_seed_same_stream(void **state) {
    (void)state;
    sim_prng_t a, b;
    uint64_t x[DRAWS], y[DRAWS];
    sim_prng_init(&a, 7, SIM_STREAM_NET);
    sim_prng_init(&b, 7, SIM_STREAM_NET);
    fill(&a, x, DRAWS);
    fill(&b, y, DRAWS);
    assert_memory_equal(x, y, sizeof(x));
}

static void test_streams_differ(void **state) {
    (void)state;
    sim_prng_t a, b, c;
    uint64_t x[DRAWS], y[DRAWS], z[DRAWS];
    sim_prng_init(&a, 7, SIM_STREAM_HOST_BASE + 0);
    sim_prng_init(&b, 7, SIM_STREAM_HOST_BASE + 1);
    sim_prng_init(&c, 8, SIM_STREAM_HOST_BASE + 0);
    fill(&a, x, DRAWS);
    fill(&b, y, DRAWS);
    fill(&c, z, DRAWS);
    /* No value in common at all (a collision of 64-bit values among 128
     * draws would be a 1-in-1e15 event). */
    for (int i = 0; i < DRAWS; i++)
        for (int j = 0; j < DRAWS; j++) {
            assert_true(x[i] != y[j]);
            assert_true(x[i] != z[j]);
        }
}

static void test_draws_do_not_shift_other_streams(void **state) {
    (void)state;
    sim_prng_t net1, host1, net2, host2;
    uint64_t x[DRAWS], y[DRAWS];
    sim_prng_init(&net1, 99, SIM_STREAM_NET);
    sim_prng_init(&host1, 99, SIM_STREAM_HOST_BASE);
    fill(&net1, x, DRAWS);
    sim_prng_init(&net2, 99, SIM_STREAM_NET);
    sim_prng_init(&host2, 99, SIM_STREAM_HOST_BASE);
    for (int i = 0; i < 1000; i++) (void)sim_prng_next(&host2); /* busy host */
    fill(&net2, y, DRAWS);
    assert_memory_equal(x, y, sizeof(x));
    (void)host1;
}

static void test_below_bounds(void **state) {
    (void)state;
    sim_prng_t p;
    sim_prng_init(&p, 1, SIM_STREAM_KERNEL);
    uint32_t seen[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t v = sim_prng_below(&p, 10);
        assert_true(v < 10);
        seen[v]++;
    }
    /* Each bucket: n=1e5, p=0.1, sigma ~ 95; 5 sigma bound. */
    for (int k = 0; k < 10; k++) assert_true(fabs((double)seen[k] - 10000.0) < 475.0);
    for (int i = 0; i < 1000; i++) assert_int_equal(sim_prng_below(&p, 1), 0);
    uint64_t big = (UINT64_C(1) << 63) + 12345;
    for (int i = 0; i < 1000; i++) assert_true(sim_prng_below(&p, big) < big);
}

static void test_chance_rate_and_fixed_draws(void **state) {
    (void)state;
    sim_prng_t p;
    sim_prng_init(&p, 2, SIM_STREAM_FAULTS);
    const int n = 100000;
    int hits = 0;
    for (int i = 0; i < n; i++) hits += sim_prng_chance(&p, 0.25);
    double sigma = sqrt(n * 0.25 * 0.75);
    assert_true(fabs(hits - n * 0.25) <= 5.0 * sigma);
    /* Probability 0 and 1 (and out-of-range, NaN) still draw exactly one value. */
    sim_prng_t a, b;
    sim_prng_init(&a, 3, 1);
    sim_prng_init(&b, 3, 1);
    assert_int_equal(sim_prng_chance(&a, 0.0), 0);
    assert_int_equal(sim_prng_chance(&a, 1.0), 1);
    assert_int_equal(sim_prng_chance(&a, NAN), 0);
    assert_int_equal(sim_prng_chance(&a, 7.0), 1);
    for (int i = 0; i < 4; i++) (void)sim_prng_next(&b);
    assert_int_equal(sim_prng_next(&a), sim_prng_next(&b));
}

static void test_unit_and_dists(void **state) {
    (void)state;
    sim_prng_t p;
    sim_prng_init(&p, 4, SIM_STREAM_LUA);
    double sum = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        double u = sim_prng_unit(&p);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
    }
    /* mean of U(0,1): sigma of the mean = 1/sqrt(12 n) ~ 0.00091 */
    assert_true(fabs(sum / n - 0.5) < 5 * 0.00092);
    sim_dist_t c = {SIM_DIST_CONST, 500, 99};
    sim_dist_t u = {SIM_DIST_UNIFORM, 100, 50};
    sim_dist_t e = {SIM_DIST_EXPONENTIAL, 10, 1000};
    double esum = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(sim_dist_sample_ns(&c, &p), 500);
        uint64_t v = sim_dist_sample_ns(&u, &p);
        assert_true(v >= 100 && v <= 150);
        uint64_t x = sim_dist_sample_ns(&e, &p);
        assert_true(x >= 10 && x <= 10 + 64 * 1000);
        esum += (double)(x - 10);
    }
    /* exponential mean 1000 (floor loses ~0.5): sigma of mean ~ 3.2 */
    assert_true(fabs(esum / n - 999.5) < 5 * 3.2);
}

static void test_dist_check_rejects_bad(void **state) {
    (void)state;
    sim_dist_t ok = {SIM_DIST_UNIFORM, 1000, 1000};
    assert_int_equal(sim_dist_check(&ok), 0);
    sim_dist_t bad_kind = {(sim_dist_kind_t)9, 0, 0};
    assert_int_equal(sim_dist_check(&bad_kind), -1);
    sim_dist_t huge = {SIM_DIST_CONST, UINT64_MAX, 0};
    assert_int_equal(sim_dist_check(&huge), -1);
    sim_dist_t huge_spread = {SIM_DIST_EXPONENTIAL, 0, UINT64_MAX / 2};
    assert_int_equal(sim_dist_check(&huge_spread), -1);
    assert_int_equal(sim_dist_check(NULL), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_streams_differ),
        cmocka_unit_test(test_draws_do_not_shift_other_streams),
        cmocka_unit_test(test_below_bounds),
        cmocka_unit_test(test_chance_rate_and_fixed_draws),
        cmocka_unit_test(test_unit_and_dists),
        cmocka_unit_test(test_dist_check_rejects_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
