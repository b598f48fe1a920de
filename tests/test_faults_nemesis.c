/* tests/test_faults_nemesis.c — the random swarm nemesis of faults/nemesis.h
 * driving a real sim_t: each host runs a tiny pinger (pings every other host
 * every 10 ms, appends a boot record to its disk), hosts 0..brokers-1 are
 * brokers and the last host is a client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "faults/faults.h"
#include "faults/nemesis.h"
#include "sim/sim.h"

#define HOSTS_MAX 8u
#define MS (UINT64_C(1000000))
#define SEC (UINT64_C(1000000000))
#define TICK_NS (10 * MS)

typedef struct world world_t;

typedef struct pnode {
    world_t *w;
    const io_t *io;
} pnode_t;

struct world {
    sim_t *sim;
    uint32_t hosts, brokers;
    faults_t f;
    nemesis_t n;
    sim_link_config_t base_link;
    sim_disk_config_t base_disk;
    pnode_t nodes[HOSTS_MAX];
    uint32_t heard[HOSTS_MAX][HOSTS_MAX]; /* [to][from] */
    faults_event_t timeline[FAULTS_TIMELINE_MAX];
};

/* ---- the pinger program ---------------------------------------------------- */

static void *p_boot(void *arg, const io_t *io) {
    world_t *w = arg;
    assert_true(io->self < w->hosts);
    pnode_t *n = &w->nodes[io->self];
    n->w = w;
    n->io = io;
    assert_int_equal(io_timer_set(io, io_now_ns(io) + TICK_NS, 1), 0);
    uint64_t size = 0;
    if (io_disk_size(io, "log.boot", &size) != 0) size = 0;
    const uint8_t rec[32] = {'b', 'o', 'o', 't'};
    assert_int_equal(io_disk_write(io, "log.boot", size, rec, sizeof rec, 2), 0);
    assert_int_equal(io_disk_fsync(io, "log.boot", 3), 0);
    return n;
}

static void p_halt(void *node, int graceful) {
    (void)node;
    (void)graceful;
}

static void p_on_message(void *node, io_addr_t from, const uint8_t *b, size_t len) {
    pnode_t *n = node;
    (void)b;
    (void)len;
    assert_true(from < n->w->hosts);
    n->w->heard[n->io->self][from]++;
}

static void p_on_timer(void *node, uint64_t token) {
    pnode_t *n = node;
    assert_int_equal(token, 1);
    const uint8_t ping = (uint8_t)n->io->self;
    for (uint32_t to = 0; to < n->w->hosts; to++)
        if (to != n->io->self) assert_int_equal(io_send(n->io, to, &ping, 1), 0);
    assert_int_equal(io_timer_set(n->io, io_now_ns(n->io) + TICK_NS, 1), 0);
}

static void p_on_disk_done(void *node, uint64_t token, int64_t result) {
    (void)node;
    (void)token;
    (void)result;
}

static const io_handler_t p_handler = {p_on_message, p_on_timer, p_on_disk_done};
static const io_program_t p_program = {"pinger", p_boot, p_halt, &p_handler};

/* ---- helpers ----------------------------------------------------------------- */

static world_t *world_new(uint32_t brokers, uint64_t seed) {
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->brokers = brokers;
    w->hosts = brokers + 1;
    assert_true(w->hosts <= HOSTS_MAX);
    const sim_config_t cfg = {.seed = seed, .hosts_count = w->hosts};
    assert_int_equal(sim_new(&cfg, &w->sim), 0);
    sim_link_config_default(&w->base_link);
    sim_disk_config_default(&w->base_disk);
    for (uint32_t i = 0; i < w->hosts; i++) {
        assert_int_equal(sim_host_set_program(w->sim, i, &p_program, w), 0);
        assert_int_equal(sim_host_start(w->sim, i), 0);
    }
    assert_int_equal(faults_init(&w->f, w->sim, brokers, &w->base_link, &w->base_disk,
                                 w->timeline, FAULTS_TIMELINE_MAX),
                     0);
    return w;
}

static void world_free(world_t *w) {
    sim_free(w->sim);
    free(w);
}

static void config(nemesis_config_t *c, bool swarm, uint64_t start_ns, uint64_t stop_ns,
                   uint64_t interval_ns, uint64_t duration_ns) {
    nemesis_config_default(c);
    c->swarm = swarm;
    c->start_ns = start_ns;
    c->stop_ns = stop_ns;
    c->interval_mean_ns = interval_ns;
    c->duration_mean_ns = duration_ns;
}

static world_t *run_nemesis(uint32_t brokers, uint64_t seed, const nemesis_config_t *c,
                            uint64_t until_ns) {
    world_t *w = world_new(brokers, seed);
    assert_int_equal(nemesis_start(&w->n, &w->f, c), 0);
    (void)sim_run(w->sim, until_ns, 0);
    return w;
}

static bool link_equal(const sim_link_config_t *a, const sim_link_config_t *b) {
    return a->latency.kind == b->latency.kind && a->latency.base_ns == b->latency.base_ns &&
           a->latency.spread_ns == b->latency.spread_ns && a->loss == b->loss &&
           a->duplicate == b->duplicate && a->reorder == b->reorder &&
           a->reorder_window_ns == b->reorder_window_ns && a->corrupt == b->corrupt &&
           a->capacity == b->capacity && a->blocked == b->blocked;
}

static bool dist_equal(const sim_dist_t *a, const sim_dist_t *b) {
    return a->kind == b->kind && a->base_ns == b->base_ns && a->spread_ns == b->spread_ns;
}

/* An event that ends a fault rather than starts one. */
static bool is_undo(const faults_event_t *e) {
    if (strcmp(e->kind, "restart") == 0 || strcmp(e->kind, "resume") == 0 ||
        strcmp(e->kind, "heal_net") == 0)
        return true;
    if (strcmp(e->kind, "clock") == 0) return strcmp(e->detail, "offset_ns=0 drift_ppm=0") == 0;
    if (strcmp(e->kind, "disk_slow") == 0) return strcmp(e->detail, "off") == 0;
    return false;
}

/* After the nemesis stopped: every broker up and reachable, links and disks
 * back to the base, clocks back to global time. */
static void expect_all_healed(world_t *w) {
    assert_int_equal(w->n.active, -1);
    for (uint32_t a = 0; a < w->hosts; a++) {
        assert_int_equal(sim_host_state(w->sim, a), SIM_HOST_UP);
        for (uint32_t b = 0; b < w->hosts; b++) {
            sim_link_config_t c;
            assert_int_equal(sim_link_get_config(w->sim, a, b, &c), 0);
            if (!link_equal(&c, &w->base_link)) fail_msg("link %u->%u not healed", a, b);
        }
        const sim_disk_config_t *d = sim_disk_get_config(sim_host_disk(w->sim, a));
        assert_true(dist_equal(&d->fsync_latency, &w->base_disk.fsync_latency));
        assert_int_equal(d->capacity_bytes, w->base_disk.capacity_bytes);
        assert_int_equal(sim_host_clock_ns(w->sim, a), sim_now_ns(w->sim));
    }
    memset(w->heard, 0, sizeof w->heard);
    (void)sim_run(w->sim, sim_now_ns(w->sim) + 100 * MS, 0);
    for (uint32_t a = 0; a < w->hosts; a++)
        for (uint32_t b = 0; b < w->hosts; b++)
            if (a != b && w->heard[b][a] < 5) fail_msg("%u hears %u only %u times", b, a, w->heard[b][a]);
}

/* ---- kinds and config ----------------------------------------------------------- */

static void test_kind_names(void **state) {
    (void)state;
    for (int k = 0; k < NEMESIS_KINDS_COUNT; k++) {
        const char *name = nemesis_kind_name((nemesis_kind_t)k);
        assert_non_null(name);
        assert_int_equal(nemesis_kind_parse(name), k);
    }
    assert_int_equal(nemesis_kind_parse("crash"), NEMESIS_CRASH);
    assert_int_equal(nemesis_kind_parse("isolate_leader"), NEMESIS_ISOLATE_LEADER);
    assert_int_equal(nemesis_kind_parse("power_loss"), NEMESIS_POWER_LOSS);
    assert_int_equal(nemesis_kind_parse("nope"), -1);
    assert_int_equal(nemesis_kind_parse(""), -1);
    assert_int_equal(nemesis_kind_parse("CRASH"), -1);
    assert_int_equal(nemesis_kind_parse("crash "), -1);
    assert_int_equal(nemesis_kind_parse(NULL), -1);
}

static void test_bad_config_rejected(void **state) {
    (void)state;
    world_t *w = world_new(5, 1);
    nemesis_config_t good;
    config(&good, true, 0, 10 * SEC, SEC, SEC);
    nemesis_config_t c = good;
    assert_int_equal(nemesis_start(NULL, &w->f, &c), IO_EINVAL);
    assert_int_equal(nemesis_start(&w->n, NULL, &c), IO_EINVAL);
    assert_int_equal(nemesis_start(&w->n, &w->f, NULL), IO_EINVAL);
    c.kinds_mask = 0;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    c = good;
    c.kinds_mask = NEMESIS_KINDS_ALL | (1u << NEMESIS_KINDS_COUNT); /* unknown kind */
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    c = good;
    c.start_ns = c.stop_ns;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    c = good;
    c.start_ns = 20 * SEC;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    c = good;
    c.interval_mean_ns = 0;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    c = good;
    c.duration_mean_ns = 0;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    c = good;
    c.interval_mean_ns = NEMESIS_MEAN_MAX_NS + 1;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    c = good;
    c.duration_mean_ns = UINT64_MAX;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    /* Nothing was recorded or scheduled by the rejected starts. */
    assert_int_equal(w->f.timeline_count, 0);
    (void)sim_run(w->sim, 20 * SEC, 0);
    assert_int_equal(w->f.timeline_count, 0);
    world_free(w);

    /* A ring needs 5 brokers and a bridge 3: alone they are refused. */
    w = world_new(4, 1);
    c = good;
    c.kinds_mask = 1u << NEMESIS_RING;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    world_free(w);
    w = world_new(2, 1);
    c.kinds_mask = (1u << NEMESIS_RING) | (1u << NEMESIS_BRIDGE);
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), IO_EINVAL);
    c.kinds_mask |= 1u << NEMESIS_CRASH; /* with another kind it runs */
    c.swarm = false;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), 0);
    assert_int_equal(w->n.enabled_mask, 1u << NEMESIS_CRASH);
    world_free(w);
}

static void test_swarm_off_enables_every_allowed_kind(void **state) {
    (void)state;
    nemesis_config_t c;
    config(&c, false, 0, 30 * SEC, 50 * MS, 50 * MS);
    world_t *w = run_nemesis(5, 5, &c, 33 * SEC);
    assert_int_equal(w->n.enabled_mask, NEMESIS_KINDS_ALL);
    uint64_t sum = 0;
    for (int k = 0; k < NEMESIS_KINDS_COUNT; k++) {
        assert_true(w->n.intensity[k] == 1.0);
        if (w->n.injected_by_kind[k] == 0) fail_msg("kind %s never injected", nemesis_kind_name((nemesis_kind_t)k));
        sum += w->n.injected_by_kind[k];
    }
    assert_int_equal(sum, w->n.injected);
    char desc[512];
    nemesis_describe(&w->n, desc, sizeof desc);
    assert_non_null(strstr(desc, "crash,kill,pause,isolate_leader"));
    assert_non_null(strstr(desc, "power_loss"));
    expect_all_healed(w);
    world_free(w);

    /* Fewer brokers: every kind that makes sense for them. */
    w = world_new(3, 5);
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), 0);
    assert_int_equal(w->n.enabled_mask, NEMESIS_KINDS_ALL & ~(1u << NEMESIS_RING));
    world_free(w);
    w = world_new(2, 5);
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), 0);
    assert_int_equal(w->n.enabled_mask,
                     NEMESIS_KINDS_ALL & ~(1u << NEMESIS_RING) & ~(1u << NEMESIS_BRIDGE));
    world_free(w);
}

/* ---- determinism and swarm ----------------------------------------------------------- */

static void expect_same_timeline(const world_t *a, const world_t *b) {
    assert_int_equal(a->f.timeline_count, b->f.timeline_count);
    assert_int_equal(a->n.injected, b->n.injected);
    for (uint32_t i = 0; i < a->f.timeline_count; i++) {
        const faults_event_t *x = &a->f.timeline[i], *y = &b->f.timeline[i];
        assert_int_equal(x->time_ns, y->time_ns);
        assert_string_equal(x->kind, y->kind);
        assert_string_equal(x->target, y->target);
        assert_string_equal(x->detail, y->detail);
    }
}

static void test_same_seed_same_timeline(void **state) {
    (void)state;
    nemesis_config_t c;
    config(&c, true, 0, 20 * SEC, 300 * MS, 400 * MS);
    world_t *a = run_nemesis(5, 42, &c, 21 * SEC);
    world_t *b = run_nemesis(5, 42, &c, 21 * SEC);
    assert_true(a->n.injected >= 10);
    expect_same_timeline(a, b);
    assert_int_equal(sim_trace_hash(a->sim), sim_trace_hash(b->sim));
    assert_int_equal(a->n.enabled_mask, b->n.enabled_mask);

    /* Another seed: another schedule. */
    world_t *d = run_nemesis(5, 43, &c, 21 * SEC);
    bool differs = d->f.timeline_count != a->f.timeline_count;
    for (uint32_t i = 1; !differs && i < a->f.timeline_count; i++)
        differs = a->f.timeline[i].time_ns != d->f.timeline[i].time_ns;
    assert_true(differs);
    assert_true(sim_trace_hash(a->sim) != sim_trace_hash(d->sim));
    world_free(a);
    world_free(b);
    world_free(d);
}

static void test_different_seeds_different_swarm(void **state) {
    (void)state;
    nemesis_config_t c;
    config(&c, true, 0, 10 * SEC, SEC, SEC);
    uint32_t masks[8];
    double intensity0[8];
    for (uint64_t seed = 1; seed <= 8; seed++) {
        world_t *w = world_new(5, seed);
        assert_int_equal(nemesis_start(&w->n, &w->f, &c), 0);
        masks[seed - 1] = w->n.enabled_mask;
        intensity0[seed - 1] = w->n.intensity[0];
        assert_true(w->n.enabled_mask != 0);
        assert_int_equal(w->n.enabled_mask & ~NEMESIS_KINDS_ALL, 0);
        assert_true(w->n.enabled_mask != NEMESIS_KINDS_ALL); /* a real subset */
        for (int k = 0; k < NEMESIS_KINDS_COUNT; k++)
            assert_true(w->n.intensity[k] >= 0.25 && w->n.intensity[k] <= 1.0);
        /* The swarm draw is the first timeline event and lists the kinds. */
        assert_string_equal(w->timeline[0].kind, "nemesis");
        char desc[512];
        nemesis_describe(&w->n, desc, sizeof desc);
        assert_string_equal(w->timeline[0].detail, desc);
        for (int k = 0; k < NEMESIS_KINDS_COUNT; k++) {
            const bool on = (w->n.enabled_mask >> k) & 1u;
            const char *name = nemesis_kind_name((nemesis_kind_t)k);
            /* "kill" is also inside no other name; check whole comma items. */
            char item[40];
            snprintf(item, sizeof item, ",%s,", name);
            char wrapped[520];
            snprintf(wrapped, sizeof wrapped, ",%s,", desc);
            assert_int_equal(strstr(wrapped, item) != NULL, on);
        }
        world_free(w);
    }
    uint32_t distinct = 0;
    for (int i = 0; i < 8; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++) seen = seen || masks[j] == masks[i];
        distinct += !seen;
    }
    assert_true(distinct >= 6);
    assert_true(intensity0[0] != intensity0[1]);
}

static void test_swarm_stays_inside_mask(void **state) {
    (void)state;
    nemesis_config_t c;
    config(&c, true, 0, 20 * SEC, 100 * MS, 100 * MS);
    c.kinds_mask = (1u << NEMESIS_CRASH) | (1u << NEMESIS_PAUSE) | (1u << NEMESIS_SPLIT);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        world_t *w = run_nemesis(5, seed, &c, 21 * SEC);
        assert_true(w->n.enabled_mask != 0);
        assert_int_equal(w->n.enabled_mask & ~c.kinds_mask, 0);
        assert_true(w->n.injected > 0);
        for (int k = 0; k < NEMESIS_KINDS_COUNT; k++)
            if (!((w->n.enabled_mask >> k) & 1u)) assert_int_equal(w->n.injected_by_kind[k], 0);
        for (uint32_t i = 1; i < w->f.timeline_count; i++) {
            const char *kind = w->f.timeline[i].kind;
            assert_true(strcmp(kind, "crash") == 0 || strcmp(kind, "restart") == 0 ||
                        strcmp(kind, "pause") == 0 || strcmp(kind, "resume") == 0 ||
                        strcmp(kind, "split") == 0 || strcmp(kind, "heal_net") == 0);
        }
        expect_all_healed(w);
        world_free(w);
    }
}

/* The schedule comes from the nemesis's own stream: a scenario drawing from
 * the faults stream first does not move it. */
static void test_schedule_independent_of_faults_stream(void **state) {
    (void)state;
    nemesis_config_t c;
    config(&c, true, 0, 10 * SEC, 200 * MS, 300 * MS);
    world_t *a = run_nemesis(5, 77, &c, 11 * SEC);
    world_t *b = world_new(5, 77);
    for (int i = 0; i < 5; i++) (void)faults_random_set(&b->f, 2);
    assert_int_equal(nemesis_start(&b->n, &b->f, &c), 0);
    (void)sim_run(b->sim, 11 * SEC, 0);
    assert_true(a->n.injected > 5);
    expect_same_timeline(a, b);
    world_free(a);
    world_free(b);
}

/* ---- window and undo ---------------------------------------------------------------- */

static void test_window_and_undo(void **state) {
    (void)state;
    nemesis_config_t c;
    const uint64_t start = 2 * SEC, stop = 12 * SEC;
    config(&c, false, start, stop, 300 * MS, 400 * MS);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        world_t *w = run_nemesis(5, seed, &c, stop + 2 * SEC);
        assert_true(w->n.injected >= 8);
        assert_int_equal(w->f.timeline_dropped, 0);
        assert_string_equal(w->timeline[0].kind, "nemesis");
        assert_int_equal(w->timeline[0].time_ns, 0);
        uint64_t injections = 0;
        uint64_t last = 0;
        for (uint32_t i = 1; i < w->f.timeline_count; i++) {
            const faults_event_t *e = &w->timeline[i];
            assert_true(e->time_ns >= last);
            last = e->time_ns;
            assert_true(e->time_ns > start);
            if (is_undo(e)) {
                assert_true(e->time_ns <= stop);
            } else {
                if (e->time_ns >= stop) fail_msg("%s injected at %llu", e->kind, (unsigned long long)e->time_ns);
                injections++;
            }
        }
        assert_int_equal(injections, w->n.injected);
        expect_all_healed(w);
        world_free(w);
    }
}

/* A fault still in force at stop_ns is undone right then. */
static void test_undo_at_stop(void **state) {
    (void)state;
    nemesis_config_t c;
    config(&c, false, 0, 1 * SEC, 100 * MS, 1000 * SEC);
    c.kinds_mask = 1u << NEMESIS_CRASH;
    world_t *w = world_new(5, 9);
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), 0);
    (void)sim_run(w->sim, SEC - 1, 0);
    assert_int_equal(w->n.injected, 1);
    assert_int_equal(w->n.active, NEMESIS_CRASH);
    uint32_t down = 0;
    for (uint32_t i = 0; i < 5; i++) down += sim_host_state(w->sim, i) == SIM_HOST_DOWN;
    assert_int_equal(down, 2); /* a minority of 5 */
    (void)sim_run(w->sim, 3 * SEC, 0);
    assert_int_equal(w->n.injected, 1);
    assert_string_equal(w->timeline[w->f.timeline_count - 1].kind, "restart");
    assert_int_equal(w->timeline[w->f.timeline_count - 1].time_ns, SEC);
    expect_all_healed(w);
    world_free(w);
}

static int leader_fn(void *arg) { return *(const int *)arg; }

static void test_isolate_leader(void **state) {
    (void)state;
    world_t *w = world_new(5, 11);
    int leader = 3;
    faults_set_leader_fn(&w->f, leader_fn, &leader);
    nemesis_config_t c;
    config(&c, false, 0, 10 * SEC, 100 * MS, 500 * MS);
    c.kinds_mask = 1u << NEMESIS_ISOLATE_LEADER;
    assert_int_equal(nemesis_start(&w->n, &w->f, &c), 0);
    for (uint32_t i = 0; i < 1000000 && w->n.active < 0; i++) (void)sim_run(w->sim, 10 * SEC, 1);
    assert_int_equal(w->n.active, NEMESIS_ISOLATE_LEADER);
    assert_int_equal(w->n.active_set, 1u << 3);
    const faults_event_t *e = &w->timeline[w->f.timeline_count - 1];
    assert_string_equal(e->kind, "isolate");
    assert_string_equal(e->target, "n3");
    for (uint32_t a = 0; a < 6; a++)
        for (uint32_t b = 0; b < 6; b++) {
            if (a == b) continue;
            sim_link_config_t l;
            assert_int_equal(sim_link_get_config(w->sim, a, b, &l), 0);
            assert_int_equal(l.blocked, (a == 3 || b == 3) && a < 5 && b < 5);
        }
    (void)sim_run(w->sim, 11 * SEC, 0);
    expect_all_healed(w);
    world_free(w);
}

static void test_disk_corrupt_is_permanent(void **state) {
    (void)state;
    nemesis_config_t c;
    config(&c, false, 0, 5 * SEC, 200 * MS, 200 * MS);
    c.kinds_mask = 1u << NEMESIS_DISK_CORRUPT;
    world_t *w = run_nemesis(5, 13, &c, 6 * SEC);
    assert_true(w->n.injected >= 5);
    uint64_t bits = 0;
    for (uint32_t i = 0; i < 5; i++)
        bits += sim_disk_stats(sim_host_disk(w->sim, i))->bits_corrupted;
    assert_true(bits >= w->n.injected);
    assert_int_equal(sim_disk_stats(sim_host_disk(w->sim, 5))->bits_corrupted, 0); /* client */
    expect_all_healed(w); /* everything else is as it was */
    world_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_bad_config_rejected),
        cmocka_unit_test(test_swarm_off_enables_every_allowed_kind),
        cmocka_unit_test(test_same_seed_same_timeline),
        cmocka_unit_test(test_different_seeds_different_swarm),
        cmocka_unit_test(test_swarm_stays_inside_mask),
        cmocka_unit_test(test_schedule_independent_of_faults_stream),
        cmocka_unit_test(test_window_and_undo),
        cmocka_unit_test(test_undo_at_stop),
        cmocka_unit_test(test_isolate_leader),
        cmocka_unit_test(test_disk_corrupt_is_permanent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
