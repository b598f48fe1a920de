/* tests/test_sim_net.c — the virtual network: latency, FIFO, loss,
 * duplication, reorder, corruption, capacity, partitions, clogs, counters and
 * argument checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim.h"

#define HOSTS 3
#define RECV_MAX 300000
#define PAYLOAD 16

typedef struct recv_entry {
    uint64_t time_ns;
    uint32_t from, to;
    uint32_t seq; /* first 4 bytes of the payload */
    uint32_t len;
    uint8_t bytes[PAYLOAD];
} recv_entry_t;

typedef struct net_world {
    sim_t *sim;
    recv_entry_t *recv;
    uint32_t count;
} net_world_t;

typedef struct net_node {
    net_world_t *w;
    const io_t *io;
} net_node_t;

static net_node_t net_nodes[HOSTS];

static void *net_boot(void *arg, const io_t *io) {
    net_nodes[io->self].w = arg;
    net_nodes[io->self].io = io;
    return &net_nodes[io->self];
}

static void net_halt(void *node, int graceful) {
    (void)node;
    (void)graceful;
}

static void net_on_message(void *node, io_addr_t from, const uint8_t *b,
                           size_t len) {
    net_node_t *n = node;
    net_world_t *w = n->w;
    assert_true(w->count < RECV_MAX);
    recv_entry_t *e = &w->recv[w->count++];
    e->time_ns = sim_now_ns(w->sim);
    e->from = from;
    e->to = n->io->self;
    e->len = (uint32_t)len;
    e->seq = UINT32_MAX;
    if (len >= 4) memcpy(&e->seq, b, 4);
    memcpy(e->bytes, b, len < PAYLOAD ? len : PAYLOAD);
}

static void net_on_timer(void *node, uint64_t token) {
    (void)node;
    (void)token;
}

static void net_on_disk(void *node, uint64_t token, int64_t result) {
    (void)node;
    (void)token;
    (void)result;
}

static const io_handler_t net_handler = {net_on_message, net_on_timer, net_on_disk};
static const io_program_t net_program = {"net", net_boot, net_halt, &net_handler};

static net_world_t *world_new(uint64_t seed) {
    static net_world_t w;
    static recv_entry_t recv[RECV_MAX];
    memset(&w, 0, sizeof(w));
    w.recv = recv;
    sim_config_t cfg = {seed, HOSTS};
    assert_int_equal(sim_new(&cfg, &w.sim), 0);
    for (uint32_t i = 0; i < HOSTS; i++) {
        assert_int_equal(sim_host_set_program(w.sim, i, &net_program, &w), 0);
        assert_int_equal(sim_host_start(w.sim, i), 0);
    }
    return &w;
}

static const io_t *io_of(net_world_t *w, uint32_t h) {
    const io_t *io = sim_host_io(w->sim, h);
    assert_non_null(io);
    return io;
}

/* Send a 16-byte message carrying `seq`. */
static void send_seq(net_world_t *w, uint32_t from, uint32_t to, uint32_t seq) {
    uint8_t b[PAYLOAD];
    memset(b, 0xA5, sizeof(b));
    memcpy(b, &seq, 4);
    assert_int_equal(io_send(io_of(w, from), to, b, sizeof(b)), 0);
}

static sim_link_stats_t stats(net_world_t *w, uint32_t from, uint32_t to) {
    sim_link_stats_t s;
    assert_int_equal(sim_link_stats(w->sim, from, to, &s), 0);
    return s;
}

static void configure(net_world_t *w, uint32_t from, uint32_t to,
                      const sim_link_config_t *c) {
    assert_int_equal(sim_link_configure(w->sim, from, to, c), 0);
}

/* |observed - n p| <= 5 sigma of a binomial. */
static void assert_rate(uint64_t observed, uint64_t n, double p) {
    double mean = (double)n * p;
    double sigma = sqrt((double)n * p * (1.0 - p));
    assert_true(fabs((double)observed - mean) <= 5.0 * sigma);
}

/* ---- latency and FIFO --------------------------------------------------- */

static void test_default_latency_and_self_send(void **state) {
    (void)state;
    net_world_t *w = world_new(1);
    send_seq(w, 0, 1, 1);
    send_seq(w, 2, 2, 2); /* to itself */
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 2);
    assert_int_equal(w->recv[0].time_ns, 1000000);
    assert_int_equal(w->recv[1].to, 2);
    sim_link_stats_t s = stats(w, 0, 1);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.bytes_delivered, PAYLOAD);
    assert_int_equal(s.in_flight, 0);
    sim_free(w->sim);
}

static uint32_t jitter_next_seq;

static void jitter_send_cb(sim_t *sim, void *arg) {
    (void)sim;
    send_seq(arg, 0, 1, jitter_next_seq++);
}

static void test_jitter_keeps_fifo(void **state) {
    (void)state;
    net_world_t *w = world_new(2);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.latency = (sim_dist_t){SIM_DIST_EXPONENTIAL, 100000, 300000};
    configure(w, 0, 1, &c);
    /* One send every 100 us: latencies (mean 300 us) overlap, so without the
     * FIFO floor later messages would often overtake earlier ones. */
    jitter_next_seq = 0;
    for (uint32_t i = 0; i < 2000; i++)
        assert_int_equal(sim_call_at(w->sim, (uint64_t)i * 100000, jitter_send_cb, w), 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 2000);
    uint64_t distinct_times = 1;
    for (uint32_t i = 0; i < 2000; i++) {
        assert_int_equal(w->recv[i].seq, i);
        if (i > 0 && w->recv[i].time_ns != w->recv[i - 1].time_ns) distinct_times++;
        assert_true(w->recv[i].time_ns >= 100000);
    }
    assert_true(distinct_times > 500); /* the jitter is real */
    assert_int_equal(stats(w, 0, 1).reordered, 0);
    sim_free(w->sim);
}

/* ---- loss, duplication --------------------------------------------------- */

static void test_loss_rate(void **state) {
    (void)state;
    net_world_t *w = world_new(3);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.loss = 0.1;
    configure(w, 0, 1, &c);
    const uint32_t n = 100000;
    for (uint32_t i = 0; i < n; i++) {
        send_seq(w, 0, 1, i);
        if (i % 2000 == 1999) assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    }
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    sim_link_stats_t s = stats(w, 0, 1);
    assert_int_equal(s.sent, n);
    assert_int_equal(s.delivered + s.dropped_loss, n);
    assert_int_equal(s.delivered, w->count);
    assert_rate(s.dropped_loss, n, 0.1);
    assert_true(s.dropped_loss > 0);
    sim_free(w->sim);
}

static void test_duplicate_rate(void **state) {
    (void)state;
    net_world_t *w = world_new(4);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.duplicate = 0.05;
    configure(w, 1, 2, &c);
    const uint32_t n = 100000;
    for (uint32_t i = 0; i < n; i++) {
        send_seq(w, 1, 2, i);
        if (i % 2000 == 1999) assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    }
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    sim_link_stats_t s = stats(w, 1, 2);
    assert_int_equal(s.delivered, n + s.duplicated);
    assert_int_equal(w->count, n + s.duplicated);
    assert_rate(s.duplicated, n, 0.05);
    sim_free(w->sim);
}

/* ---- reorder, corruption ------------------------------------------------- */

static void test_reorder_happens_and_is_counted(void **state) {
    (void)state;
    net_world_t *w = world_new(5);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.reorder = 0.2;
    c.reorder_window_ns = 5000000;
    configure(w, 0, 1, &c);
    for (uint32_t i = 0; i < 1000; i++) {
        send_seq(w, 0, 1, i);
    }
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 1000);
    uint32_t inversions = 0;
    for (uint32_t i = 1; i < w->count; i++)
        if (w->recv[i].seq < w->recv[i - 1].seq) inversions++;
    sim_link_stats_t s = stats(w, 0, 1);
    assert_true(s.reordered > 0);
    assert_rate(s.reordered, 1000, 0.2);
    assert_true(inversions > 0);
    sim_free(w->sim);
}

static void test_corruption_flips_one_bit(void **state) {
    (void)state;
    net_world_t *w = world_new(6);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.corrupt = 0.3;
    configure(w, 2, 0, &c);
    for (uint32_t i = 0; i < 1000; i++) send_seq(w, 2, 0, 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    uint8_t clean[PAYLOAD];
    memset(clean, 0xA5, sizeof(clean));
    memset(clean, 0, 4);
    uint32_t corrupted = 0;
    for (uint32_t i = 0; i < w->count; i++) {
        uint32_t bits = 0;
        for (uint32_t k = 0; k < PAYLOAD; k++)
            bits += (uint32_t)__builtin_popcount(w->recv[i].bytes[k] ^ clean[k]);
        assert_true(bits <= 1);
        corrupted += bits;
    }
    sim_link_stats_t s = stats(w, 2, 0);
    assert_int_equal(s.corrupted, corrupted);
    assert_rate(corrupted, 1000, 0.3);
    sim_free(w->sim);
}

/* ---- capacity ----------------------------------------------------------- */

static void test_capacity_overflow_drops(void **state) {
    (void)state;
    net_world_t *w = world_new(7);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.capacity = 10;
    configure(w, 0, 2, &c);
    for (uint32_t i = 0; i < 25; i++) send_seq(w, 0, 2, i);
    sim_link_stats_t s = stats(w, 0, 2);
    assert_int_equal(s.in_flight, 10);
    assert_int_equal(s.dropped_overflow, 15);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 10);
    for (uint32_t i = 0; i < 10; i++) assert_int_equal(w->recv[i].seq, i);
    /* Room again once delivered. */
    send_seq(w, 0, 2, 99);
    assert_int_equal(stats(w, 0, 2).in_flight, 1);
    sim_free(w->sim);
}

/* ---- partitions ---------------------------------------------------------- */

static void test_asymmetric_partition(void **state) {
    (void)state;
    net_world_t *w = world_new(8);
    assert_int_equal(sim_link_block(w->sim, 0, 1, true), 0);
    send_seq(w, 0, 1, 1); /* blocked */
    send_seq(w, 1, 0, 2); /* flows */
    send_seq(w, 0, 2, 3); /* flows */
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 2);
    assert_int_equal(w->recv[0].seq, 2);
    assert_int_equal(w->recv[1].seq, 3);
    assert_int_equal(stats(w, 0, 1).dropped_blocked, 1);
    assert_int_equal(stats(w, 1, 0).delivered, 1);
    sim_link_config_t got;
    assert_int_equal(sim_link_get_config(w->sim, 0, 1, &got), 0);
    assert_true(got.blocked);
    assert_int_equal(sim_link_get_config(w->sim, 1, 0, &got), 0);
    assert_false(got.blocked);
    sim_free(w->sim);
}

static void test_bridge_partition(void **state) {
    (void)state;
    net_world_t *w = world_new(9);
    /* 0 and 2 cannot talk; 1 (the bridge) talks to both. */
    assert_int_equal(sim_link_block(w->sim, 0, 2, true), 0);
    assert_int_equal(sim_link_block(w->sim, 2, 0, true), 0);
    uint32_t seq = 0;
    for (uint32_t f = 0; f < HOSTS; f++)
        for (uint32_t t = 0; t < HOSTS; t++) send_seq(w, f, t, seq++);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 7);
    for (uint32_t i = 0; i < w->count; i++)
        assert_false((w->recv[i].from == 0 && w->recv[i].to == 2) ||
                     (w->recv[i].from == 2 && w->recv[i].to == 0));
    sim_net_heal(w->sim);
    send_seq(w, 0, 2, 100);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 8);
    sim_free(w->sim);
}

static void test_block_drops_in_flight(void **state) {
    (void)state;
    net_world_t *w = world_new(10);
    send_seq(w, 0, 1, 1); /* arrives at 1 ms */
    assert_int_equal(sim_link_block(w->sim, SIM_ANY, 1, true), 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 0);
    sim_link_stats_t s = stats(w, 0, 1);
    assert_int_equal(s.dropped_blocked, 1);
    assert_int_equal(s.in_flight, 0);
    sim_free(w->sim);
}

/* ---- clog ---------------------------------------------------------------- */

static void test_clog_holds_then_releases(void **state) {
    (void)state;
    net_world_t *w = world_new(11);
    assert_int_equal(sim_link_clog(w->sim, 0, 1, 10000000), 0);
    for (uint32_t i = 0; i < 5; i++) send_seq(w, 0, 1, i);
    send_seq(w, 1, 0, 50); /* the other direction is not clogged */
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 6);
    assert_int_equal(w->recv[0].seq, 50);
    assert_int_equal(w->recv[0].time_ns, 1000000);
    for (uint32_t i = 1; i < 6; i++) {
        assert_int_equal(w->recv[i].seq, i - 1); /* order kept */
        assert_int_equal(w->recv[i].time_ns, 10000000);
    }
    assert_int_equal(stats(w, 0, 1).clogged, 5);
    /* After the clog, normal latency again. */
    send_seq(w, 0, 1, 9);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->recv[6].time_ns, 11000000);
    sim_free(w->sim);
}

static void heal_cb(sim_t *sim, void *arg) {
    (void)arg;
    sim_net_heal(sim);
}

static void reclog_cb(sim_t *sim, void *arg) {
    (void)arg;
    assert_int_equal(sim_link_clog(sim, 0, 1, 10000000), 0); /* until now+10ms */
}

static void test_clog_lifted_early_or_extended(void **state) {
    (void)state;
    net_world_t *w = world_new(16);
    /* Lifted early by heal at 4 ms: held messages flow at once, in order. */
    assert_int_equal(sim_link_clog(w->sim, 0, 1, 50000000), 0);
    for (uint32_t i = 0; i < 3; i++) send_seq(w, 0, 1, i);
    assert_int_equal(sim_call_at(w->sim, 4000000, heal_cb, NULL), 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(w->recv[i].seq, i);
        assert_int_equal(w->recv[i].time_ns, 4000000);
    }
    /* Extended: clog until +5 ms, re-clogged at +3 ms for 10 ms. */
    uint64_t t0 = sim_now_ns(w->sim);
    assert_int_equal(sim_link_clog(w->sim, 0, 1, 5000000), 0);
    send_seq(w, 0, 1, 7);
    assert_int_equal(sim_call_at(w->sim, t0 + 3000000, reclog_cb, NULL), 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 4);
    assert_int_equal(w->recv[3].time_ns, t0 + 13000000);
    assert_int_equal(stats(w, 0, 1).clogged, 4);
    sim_free(w->sim);
}

static void send_one_cb(sim_t *sim, void *arg) {
    (void)sim;
    send_seq(arg, 0, 1, 1);
}

static void test_clog_release_keeps_fifo_at_the_edge(void **state) {
    (void)state;
    net_world_t *w = world_new(17);
    /* m0 arrives at 1 ms (held); m1, sent at 1 ms, arrives exactly when the
     * clog ends (2 ms), possibly before the release runs: it must still
     * come after m0. */
    assert_int_equal(sim_call_at(w->sim, 1000000, send_one_cb, w), 0);
    assert_int_equal(sim_link_clog(w->sim, 0, 1, 2000000), 0);
    send_seq(w, 0, 1, 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 2);
    assert_int_equal(w->recv[0].seq, 0);
    assert_int_equal(w->recv[1].seq, 1);
    assert_int_equal(w->recv[0].time_ns, 2000000);
    assert_int_equal(w->recv[1].time_ns, 2000000);
    sim_free(w->sim);
}

/* ---- fault toggles do not shift other draws ------------------------------ */

static void run_two_links(uint64_t seed, double loss01, uint64_t *times,
                          uint32_t *count) {
    net_world_t *w = world_new(seed);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.latency = (sim_dist_t){SIM_DIST_UNIFORM, 1000, 1000000};
    configure(w, SIM_ANY, SIM_ANY, &c);
    c.loss = loss01;
    c.duplicate = loss01;
    configure(w, 0, 1, &c);
    for (uint32_t i = 0; i < 500; i++) {
        send_seq(w, 0, 1, i);
        send_seq(w, 0, 2, i);
    }
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    *count = 0;
    for (uint32_t i = 0; i < w->count; i++)
        if (w->recv[i].to == 2) times[(*count)++] = w->recv[i].time_ns;
    sim_free(w->sim);
}

static void test_fault_toggle_keeps_other_draws(void **state) {
    (void)state;
    static uint64_t a[500], b[500];
    uint32_t na, nb;
    run_two_links(12, 0.0, a, &na);
    run_two_links(12, 0.5, b, &nb);
    assert_int_equal(na, 500);
    assert_int_equal(nb, 500);
    assert_memory_equal(a, b, sizeof(a));
}

/* ---- down hosts ---------------------------------------------------------- */

static void test_down_host_drops(void **state) {
    (void)state;
    net_world_t *w = world_new(13);
    send_seq(w, 0, 1, 1);
    assert_int_equal(sim_host_stop(w->sim, 1), 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 0);
    assert_int_equal(stats(w, 0, 1).dropped_down, 1);
    sim_free(w->sim);
}

/* ---- bad arguments ------------------------------------------------------- */

static void test_bad_link_arguments(void **state) {
    (void)state;
    net_world_t *w = world_new(14);
    sim_link_config_t c;
    sim_link_config_default(&c);
    assert_int_equal(sim_link_config_check(&c), 0);
    sim_link_config_t bad = c;
    bad.loss = 1.5;
    assert_int_equal(sim_link_configure(w->sim, 0, 1, &bad), IO_EINVAL);
    bad = c;
    bad.duplicate = NAN;
    assert_int_equal(sim_link_config_check(&bad), IO_EINVAL);
    bad = c;
    bad.reorder = -0.1;
    assert_int_equal(sim_link_config_check(&bad), IO_EINVAL);
    bad = c;
    bad.latency.kind = (sim_dist_kind_t)7;
    assert_int_equal(sim_link_config_check(&bad), IO_EINVAL);
    bad = c;
    bad.capacity = UINT32_MAX;
    assert_int_equal(sim_link_config_check(&bad), IO_EINVAL);
    assert_int_equal(sim_link_config_check(NULL), IO_EINVAL);
    assert_int_equal(sim_link_configure(w->sim, 3, 0, &c), IO_EINVAL);
    assert_int_equal(sim_link_configure(w->sim, 0, 3, &c), IO_EINVAL);
    assert_int_equal(sim_link_block(w->sim, 7, 0, true), IO_EINVAL);
    assert_int_equal(sim_link_clog(w->sim, 0, 9, 10), IO_EINVAL);
    sim_link_stats_t s;
    assert_int_equal(sim_link_stats(w->sim, SIM_ANY, 0, &s), IO_EINVAL);
    assert_int_equal(sim_link_get_config(w->sim, 0, 3, &c), IO_EINVAL);
    /* Sends: unknown address, oversize, NULL bytes. Nothing is scheduled. */
    uint8_t b = 0;
    assert_int_equal(io_send(io_of(w, 0), HOSTS, &b, 1), IO_EUNREACH);
    assert_int_equal(io_send(io_of(w, 0), 1, &b, IO_MESSAGE_SIZE_MAX + 1),
                     IO_EMSGSIZE);
    assert_int_equal(io_send(io_of(w, 0), 1, NULL, 4), IO_EINVAL);
    assert_int_equal(stats(w, 0, 1).sent, 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 0);
    /* An empty message is a message. */
    assert_int_equal(io_send(io_of(w, 0), 1, NULL, 0), 0);
    assert_int_equal(sim_run(w->sim, UINT64_MAX, 0), SIM_RUN_IDLE);
    assert_int_equal(w->count, 1);
    assert_int_equal(w->recv[0].len, 0);
    sim_free(w->sim);
}

static void test_any_wildcard_configures_all(void **state) {
    (void)state;
    net_world_t *w = world_new(15);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.latency.base_ns = 7000;
    configure(w, SIM_ANY, 2, &c);
    sim_link_config_t got;
    for (uint32_t f = 0; f < HOSTS; f++) {
        assert_int_equal(sim_link_get_config(w->sim, f, 2, &got), 0);
        assert_int_equal(got.latency.base_ns, 7000);
        assert_int_equal(sim_link_get_config(w->sim, f, 1, &got), 0);
        assert_int_equal(got.latency.base_ns, 1000000);
    }
    sim_free(w->sim);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_latency_and_self_send),
        cmocka_unit_test(test_jitter_keeps_fifo),
        cmocka_unit_test(test_loss_rate),
        cmocka_unit_test(test_duplicate_rate),
        cmocka_unit_test(test_reorder_happens_and_is_counted),
        cmocka_unit_test(test_corruption_flips_one_bit),
        cmocka_unit_test(test_capacity_overflow_drops),
        cmocka_unit_test(test_asymmetric_partition),
        cmocka_unit_test(test_bridge_partition),
        cmocka_unit_test(test_block_drops_in_flight),
        cmocka_unit_test(test_clog_holds_then_releases),
        cmocka_unit_test(test_clog_lifted_early_or_extended),
        cmocka_unit_test(test_clog_release_keeps_fifo_at_the_edge),
        cmocka_unit_test(test_fault_toggle_keeps_other_draws),
        cmocka_unit_test(test_down_host_drops),
        cmocka_unit_test(test_bad_link_arguments),
        cmocka_unit_test(test_any_wildcard_configures_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
