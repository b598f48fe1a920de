/* tests/test_faults_faults.c — every fault injector of faults/faults.h, checked
 * by its effect on a real sim_t whose hosts run a tiny "pinger" program: each
 * host pings every other host every 10 ms and counts who it heard from,
 * appends a record to its disk at boot, and (when asked) appends and fsyncs on
 * every tick. Hosts 0..brokers-1 are brokers, the rest clients. */
#include <math.h>
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
#include "sim/sim.h"

#define HOSTS_MAX 8u
#define TIMELINE_CAP 64u
#define MS (UINT64_C(1000000))
#define TICK_NS (10 * MS)

enum { TOK_TICK = 1, TOK_BOOT_WRITE = 2, TOK_WRITE = 3, TOK_FSYNC = 4 };

typedef struct world world_t;

typedef struct pnode {
    world_t *w;
    const io_t *io;
    bool fsync_in_flight;
} pnode_t;

struct world {
    sim_t *sim;
    uint32_t hosts, brokers;
    faults_t f;
    faults_event_t timeline[TIMELINE_CAP];
    sim_link_config_t base_link;
    sim_disk_config_t base_disk;
    pnode_t nodes[HOSTS_MAX];
    /* Survives crashes: the test reads it after the node is gone. */
    uint32_t heard[HOSTS_MAX][HOSTS_MAX]; /* [to][from] */
    uint32_t boots[HOSTS_MAX], halts_graceful[HOSTS_MAX], halts_crash[HOSTS_MAX];
    bool write_on_tick[HOSTS_MAX], fsync_on_tick[HOSTS_MAX];
    uint32_t writes_ok[HOSTS_MAX], writes_enospc[HOSTS_MAX];
    int64_t last_write[HOSTS_MAX];
    uint64_t fsync_issued_ns[HOSTS_MAX];
    uint64_t fsync_min_ns[HOSTS_MAX], fsync_max_ns[HOSTS_MAX];
    uint32_t fsyncs_done[HOSTS_MAX];
};

/* ---- the pinger program ---------------------------------------------------- */

static uint64_t file_size(const io_t *io, const char *name) {
    uint64_t size = 0;
    if (io_disk_size(io, name, &size) != 0) return 0;
    return size;
}

static void *p_boot(void *arg, const io_t *io) {
    world_t *w = arg;
    assert_true(io->self < w->hosts);
    pnode_t *n = &w->nodes[io->self];
    n->w = w;
    n->io = io;
    n->fsync_in_flight = false;
    w->boots[io->self]++;
    assert_int_equal(io_timer_set(io, io_now_ns(io) + TICK_NS, TOK_TICK), 0);
    const uint8_t rec[8] = {'b', 'o', 'o', 't', (uint8_t)io->self, 0, 0, 0};
    assert_int_equal(io_disk_write(io, "log.boot", file_size(io, "log.boot"), rec,
                                   sizeof rec, TOK_BOOT_WRITE),
                     0);
    return n;
}

static void p_halt(void *node, int graceful) {
    pnode_t *n = node;
    if (graceful) n->w->halts_graceful[n->io->self]++;
    else n->w->halts_crash[n->io->self]++;
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
    world_t *w = n->w;
    const uint32_t self = n->io->self;
    assert_int_equal(token, TOK_TICK);
    const uint8_t ping = (uint8_t)self;
    for (uint32_t to = 0; to < w->hosts; to++)
        if (to != self) assert_int_equal(io_send(n->io, to, &ping, 1), 0);
    if (w->write_on_tick[self]) {
        const uint8_t rec[16] = {'t'};
        assert_int_equal(io_disk_write(n->io, "log.ticks", file_size(n->io, "log.ticks"),
                                       rec, sizeof rec, TOK_WRITE),
                         0);
    }
    if (w->fsync_on_tick[self] && !n->fsync_in_flight) {
        n->fsync_in_flight = true;
        w->fsync_issued_ns[self] = sim_now_ns(w->sim);
        assert_int_equal(io_disk_fsync(n->io, "log.ticks", TOK_FSYNC), 0);
    }
    assert_int_equal(io_timer_set(n->io, io_now_ns(n->io) + TICK_NS, TOK_TICK), 0);
}

static void p_on_disk_done(void *node, uint64_t token, int64_t result) {
    pnode_t *n = node;
    world_t *w = n->w;
    const uint32_t self = n->io->self;
    if (token == TOK_WRITE) {
        w->last_write[self] = result;
        if (result == IO_ENOSPC) w->writes_enospc[self]++;
        else if (result > 0) w->writes_ok[self]++;
    } else if (token == TOK_FSYNC) {
        n->fsync_in_flight = false;
        const uint64_t lat = sim_now_ns(w->sim) - w->fsync_issued_ns[self];
        if (w->fsyncs_done[self] == 0 || lat < w->fsync_min_ns[self]) w->fsync_min_ns[self] = lat;
        if (lat > w->fsync_max_ns[self]) w->fsync_max_ns[self] = lat;
        w->fsyncs_done[self]++;
    }
}

static const io_handler_t p_handler = {p_on_message, p_on_timer, p_on_disk_done};
static const io_program_t p_program = {"pinger", p_boot, p_halt, &p_handler};

/* ---- world helpers ------------------------------------------------------------ */

static world_t *world_new(uint32_t brokers, uint32_t hosts, uint64_t seed) {
    assert_true(hosts <= HOSTS_MAX && brokers <= hosts);
    world_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    const sim_config_t cfg = {.seed = seed, .hosts_count = hosts};
    assert_int_equal(sim_new(&cfg, &w->sim), 0);
    w->hosts = hosts;
    w->brokers = brokers;
    sim_link_config_default(&w->base_link);
    w->base_link.latency.base_ns = 2 * MS;
    assert_int_equal(sim_link_configure(w->sim, SIM_ANY, SIM_ANY, &w->base_link), 0);
    sim_disk_config_default(&w->base_disk);
    for (uint32_t i = 0; i < hosts; i++) {
        assert_int_equal(sim_host_set_program(w->sim, i, &p_program, w), 0);
        assert_int_equal(sim_host_start(w->sim, i), 0);
    }
    assert_int_equal(faults_init(&w->f, w->sim, brokers, &w->base_link, &w->base_disk,
                                 w->timeline, TIMELINE_CAP),
                     0);
    return w;
}

static void world_free(world_t *w) {
    sim_free(w->sim);
    free(w);
}

static void run_for(world_t *w, uint64_t ns) {
    (void)sim_run(w->sim, sim_now_ns(w->sim) + ns, 0);
}

static void clear_heard(world_t *w) { memset(w->heard, 0, sizeof w->heard); }

static bool blocked(world_t *w, uint32_t a, uint32_t b) {
    sim_link_config_t c;
    assert_int_equal(sim_link_get_config(w->sim, a, b, &c), 0);
    return c.blocked;
}

static bool link_equal(const sim_link_config_t *a, const sim_link_config_t *b) {
    return a->latency.kind == b->latency.kind && a->latency.base_ns == b->latency.base_ns &&
           a->latency.spread_ns == b->latency.spread_ns && a->loss == b->loss &&
           a->duplicate == b->duplicate && a->reorder == b->reorder &&
           a->reorder_window_ns == b->reorder_window_ns && a->corrupt == b->corrupt &&
           a->capacity == b->capacity && a->blocked == b->blocked;
}

static bool disk_equal(const sim_disk_config_t *a, const sim_disk_config_t *b) {
    const sim_dist_t *da[3] = {&a->read_latency, &a->write_latency, &a->fsync_latency};
    const sim_dist_t *db[3] = {&b->read_latency, &b->write_latency, &b->fsync_latency};
    for (int i = 0; i < 3; i++)
        if (da[i]->kind != db[i]->kind || da[i]->base_ns != db[i]->base_ns ||
            da[i]->spread_ns != db[i]->spread_ns)
            return false;
    const uint32_t sa = a->sector_size_bytes ? a->sector_size_bytes : SIM_DISK_SECTOR_SIZE_DEFAULT;
    const uint32_t sb = b->sector_size_bytes ? b->sector_size_bytes : SIM_DISK_SECTOR_SIZE_DEFAULT;
    return sa == sb && a->capacity_bytes == b->capacity_bytes &&
           a->crash_mode == b->crash_mode &&
           a->crash_keep_probability == b->crash_keep_probability;
}

/* The expected partition: cut[a][b] for broker pairs; client links never cut.
 * Checked twice: in the link table, and by traffic (b hears a iff a->b open). */
static void expect_partition(world_t *w, bool cut[HOSTS_MAX][HOSTS_MAX]) {
    for (uint32_t a = 0; a < w->hosts; a++)
        for (uint32_t b = 0; b < w->hosts; b++) {
            if (a == b) continue;
            const bool want = a < w->brokers && b < w->brokers && cut[a][b];
            if (blocked(w, a, b) != want) fail_msg("link %u->%u blocked=%d want %d", a, b, !want, want);
        }
    clear_heard(w);
    run_for(w, 100 * MS);
    for (uint32_t a = 0; a < w->hosts; a++)
        for (uint32_t b = 0; b < w->hosts; b++) {
            if (a == b) continue;
            const bool want = a < w->brokers && b < w->brokers && cut[a][b];
            if ((w->heard[b][a] == 0) != want)
                fail_msg("%u heard %u times from %u, cut=%d", b, w->heard[b][a], a, want);
        }
}

static void expect_no_partition(world_t *w) {
    bool cut[HOSTS_MAX][HOSTS_MAX];
    memset(cut, 0, sizeof cut);
    expect_partition(w, cut);
}

static uint64_t disk_size(world_t *w, uint32_t host, const char *name) {
    uint64_t size = UINT64_MAX;
    assert_int_equal(sim_disk_size(sim_host_disk(w->sim, host), name, &size), 0);
    return size;
}

static void put_file(world_t *w, uint32_t host, const char *name, uint8_t fill, size_t len) {
    uint8_t buf[256];
    assert_true(len <= sizeof buf);
    memset(buf, fill, len);
    sim_disk_t *d = sim_host_disk(w->sim, host);
    assert_int_equal(sim_disk_write(d, name, 0, buf, len), (int64_t)len);
    assert_int_equal(sim_disk_fsync(d, name), 0);
}

/* Number of bytes of `name` on `host` that differ from `fill`. */
static uint32_t bytes_changed(world_t *w, uint32_t host, const char *name, uint8_t fill,
                              size_t len) {
    uint8_t buf[256];
    assert_true(len <= sizeof buf);
    assert_int_equal(sim_disk_read(sim_host_disk(w->sim, host), name, 0, buf, len), (int64_t)len);
    uint32_t changed = 0;
    for (size_t i = 0; i < len; i++) changed += buf[i] != fill;
    return changed;
}

static const faults_event_t *last_event(world_t *w) {
    assert_true(w->f.timeline_count > 0);
    return &w->f.timeline[w->f.timeline_count - 1];
}

/* ---- init and sets --------------------------------------------------------------- */

static void test_init_rejects_bad_config(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 1);
    faults_t f;
    faults_event_t tl[4];
    assert_int_equal(faults_init(&f, w->sim, 0, &w->base_link, &w->base_disk, tl, 4), IO_EINVAL);
    assert_int_equal(faults_init(&f, w->sim, 5, &w->base_link, &w->base_disk, tl, 4), IO_EINVAL);
    assert_int_equal(faults_init(&f, NULL, 3, &w->base_link, &w->base_disk, tl, 4), IO_EINVAL);
    assert_int_equal(faults_init(NULL, w->sim, 3, &w->base_link, &w->base_disk, tl, 4), IO_EINVAL);
    assert_int_equal(faults_init(&f, w->sim, 3, NULL, &w->base_disk, tl, 4), IO_EINVAL);
    assert_int_equal(faults_init(&f, w->sim, 3, &w->base_link, NULL, tl, 4), IO_EINVAL);
    assert_int_equal(faults_init(&f, w->sim, 3, &w->base_link, &w->base_disk, NULL, 4), IO_EINVAL);
    sim_link_config_t bad_link = w->base_link;
    bad_link.loss = 1.5;
    assert_int_equal(faults_init(&f, w->sim, 3, &bad_link, &w->base_disk, tl, 4), IO_EINVAL);
    bad_link = w->base_link;
    bad_link.blocked = true; /* heal would restore a partition */
    assert_int_equal(faults_init(&f, w->sim, 3, &bad_link, &w->base_disk, tl, 4), IO_EINVAL);
    sim_disk_config_t bad_disk = w->base_disk;
    bad_disk.sector_size_bytes = 3;
    assert_int_equal(faults_init(&f, w->sim, 3, &w->base_link, &bad_disk, tl, 4), IO_EINVAL);
    /* Good ones, including no timeline at all. */
    assert_int_equal(faults_init(&f, w->sim, 4, &w->base_link, &w->base_disk, NULL, 0), 0);
    assert_int_equal(faults_all(&f), 0xfu);
    assert_int_equal(faults_crash(&f, 1u), 0); /* works, records nothing */
    assert_int_equal(sim_host_state(w->sim, 0), SIM_HOST_DOWN);
    assert_int_equal(f.timeline_count, 0);
    assert_int_equal(f.timeline_dropped, 0);
    world_free(w);

    /* 7 brokers is the maximum; 8 is refused even with enough hosts. */
    w = world_new(7, 8, 1);
    assert_int_equal(faults_all(&w->f), 0x7fu);
    assert_int_equal(faults_init(&f, w->sim, 8, &w->base_link, &w->base_disk, tl, 4), IO_EINVAL);
    world_free(w);
}

static int leader_fn(void *arg) { return *(const int *)arg; }

static void test_sets(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 3);
    assert_int_equal(faults_all(&w->f), 0x1fu);
    assert_int_equal(faults_leader_set(&w->f), 0); /* no leader fn */
    int leader_value = 3;
    faults_set_leader_fn(&w->f, leader_fn, &leader_value);
    leader_value = 3;
    assert_int_equal(faults_leader_set(&w->f), 1u << 3);
    leader_value = -1;
    assert_int_equal(faults_leader_set(&w->f), 0);
    leader_value = 5; /* a client, or nonsense: not a broker */
    assert_int_equal(faults_leader_set(&w->f), 0);

    for (uint32_t count = 0; count <= 6; count++) {
        const faults_set_t s = faults_random_set(&w->f, count);
        assert_int_equal(s & ~0x1fu, 0);
        assert_int_equal((uint32_t)__builtin_popcount(s), count < 5 ? count : 5);
    }
    /* Deterministic from the seed: same seed, same sets; another seed differs. */
    world_t *w2 = world_new(5, 7, 3);
    world_t *w3 = world_new(5, 7, 4);
    world_t *w4 = world_new(5, 7, 3);
    bool differs = false;
    for (int i = 0; i < 16; i++) {
        const faults_set_t a = faults_random_set(&w2->f, 2);
        const faults_set_t same = faults_random_set(&w4->f, 2);
        const faults_set_t other = faults_random_set(&w3->f, 2);
        assert_int_equal(a, same);
        if (a != other) differs = true;
    }
    assert_true(differs);

    char buf[32];
    faults_set_format(0x5u, buf, sizeof buf);
    assert_string_equal(buf, "n0,n2");
    faults_set_format(0, buf, sizeof buf);
    assert_string_equal(buf, "");
    faults_set_format(0x7fu, buf, 6); /* truncated at a whole name */
    assert_string_equal(buf, "n0,n1");
    world_free(w);
    world_free(w2);
    world_free(w3);
    world_free(w4);
}

/* ---- process faults ----------------------------------------------------------------- */

static void test_crash_loses_unsynced_kill_keeps(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 7);
    run_for(w, 5 * MS); /* boot writes landed in the cache, never fsynced */
    for (uint32_t i = 0; i < 4; i++) assert_int_equal(disk_size(w, i, "log.boot"), 8);

    assert_int_equal(faults_crash(&w->f, 1u << 0), 0);
    assert_int_equal(faults_kill(&w->f, 1u << 1), 0);
    assert_int_equal(sim_host_state(w->sim, 0), SIM_HOST_DOWN);
    assert_int_equal(sim_host_state(w->sim, 1), SIM_HOST_DOWN);
    assert_int_equal(sim_host_state(w->sim, 2), SIM_HOST_UP);
    assert_int_equal(w->halts_crash[0], 1);
    assert_int_equal(w->halts_crash[1], 1);
    assert_int_equal(disk_size(w, 0, "log.boot"), 0); /* machine crash: cache gone */
    assert_int_equal(disk_size(w, 1, "log.boot"), 8); /* kill -9: page cache kept */
    assert_int_equal(disk_size(w, 2, "log.boot"), 8);

    /* Crashing what is down is a no-op, not an error. */
    assert_int_equal(faults_crash(&w->f, 0x3u), 0);
    assert_int_equal(w->halts_crash[0], 1);

    /* Down hosts stop hearing and being heard. */
    clear_heard(w);
    run_for(w, 50 * MS);
    assert_int_equal(w->heard[2][0], 0);
    assert_int_equal(w->heard[0][2], 0);
    assert_true(w->heard[2][3] > 0);

    assert_int_equal(faults_restart(&w->f, 0x3u), 0);
    assert_int_equal(sim_host_incarnation(w->sim, 0), 2);
    assert_int_equal(sim_host_incarnation(w->sim, 1), 2);
    assert_int_equal(sim_host_incarnation(w->sim, 2), 1); /* not in the set */
    run_for(w, 50 * MS);
    assert_int_equal(disk_size(w, 0, "log.boot"), 8);  /* a fresh record */
    assert_int_equal(disk_size(w, 1, "log.boot"), 16); /* appended to the kept one */
    assert_true(w->heard[2][0] > 0);
    world_free(w);
}

static void test_stop_pause_resume_restart(void **state) {
    (void)state;
    world_t *w = world_new(3, 5, 9);
    run_for(w, 30 * MS);

    assert_int_equal(faults_stop(&w->f, 1u << 2), 0);
    assert_int_equal(sim_host_state(w->sim, 2), SIM_HOST_DOWN);
    assert_int_equal(w->halts_graceful[2], 1);
    assert_int_equal(w->halts_crash[2], 0);
    assert_int_equal(disk_size(w, 2, "log.boot"), 8); /* graceful: cache kept */

    assert_int_equal(faults_pause(&w->f, 0x3u), 0);
    assert_int_equal(sim_host_state(w->sim, 0), SIM_HOST_PAUSED);
    assert_int_equal(sim_host_state(w->sim, 1), SIM_HOST_PAUSED);
    assert_int_equal(sim_host_state(w->sim, 3), SIM_HOST_UP); /* clients untouched */
    run_for(w, 5 * MS); /* pings sent just before the pause land */
    clear_heard(w);
    run_for(w, 50 * MS);
    assert_int_equal(w->heard[0][3], 0); /* held, not delivered */
    assert_int_equal(w->heard[3][0], 0); /* its timers are held too */
    assert_true(w->heard[4][3] > 0);

    /* Pausing a paused host, or resuming an up one, changes nothing. */
    assert_int_equal(faults_pause(&w->f, 0x3u), 0);
    assert_int_equal(faults_resume(&w->f, 0x1u), 0);
    assert_int_equal(sim_host_state(w->sim, 0), SIM_HOST_UP);
    assert_int_equal(sim_host_state(w->sim, 1), SIM_HOST_PAUSED);
    run_for(w, 1); /* the held messages are delivered right after resume */
    assert_true(w->heard[0][3] >= 4);
    assert_int_equal(w->heard[1][3], 0);
    assert_int_equal(faults_resume(&w->f, 0x2u), 0);
    assert_int_equal(sim_host_state(w->sim, 1), SIM_HOST_UP);
    assert_int_equal(sim_host_incarnation(w->sim, 1), 1); /* same node, not a reboot */

    /* Restart boots only what is down. */
    assert_int_equal(faults_restart(&w->f, 0x7u), 0);
    assert_int_equal(sim_host_state(w->sim, 2), SIM_HOST_UP);
    assert_int_equal(w->boots[0], 1);
    assert_int_equal(w->boots[2], 2);
    world_free(w);
}

static void test_power_loss_crashes_every_broker(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 11);
    run_for(w, 5 * MS);
    assert_int_equal(faults_pause(&w->f, 1u << 4), 0); /* a paused one dies too */
    assert_int_equal(faults_power_loss(&w->f), 0);
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(sim_host_state(w->sim, i), SIM_HOST_DOWN);
        assert_int_equal(disk_size(w, i, "log.boot"), 0);
        assert_int_equal(w->halts_crash[i], 1);
    }
    for (uint32_t i = 5; i < 7; i++) {
        assert_int_equal(sim_host_state(w->sim, i), SIM_HOST_UP);
        assert_int_equal(disk_size(w, i, "log.boot"), 8);
    }
    assert_string_equal(last_event(w)->kind, "power_loss");
    assert_string_equal(last_event(w)->target, "n0,n1,n2,n3,n4");
    world_free(w);
}

static void test_clock(void **state) {
    (void)state;
    world_t *w = world_new(5, 6, 13);
    run_for(w, 100 * MS);
    const uint64_t now = sim_now_ns(w->sim);
    assert_int_equal(faults_clock(&w->f, 0x6u, INT64_C(5000000000), 0), 0);
    assert_int_equal(sim_host_clock_ns(w->sim, 1), now + UINT64_C(5000000000));
    assert_int_equal(sim_host_clock_ns(w->sim, 2), now + UINT64_C(5000000000));
    assert_int_equal(sim_host_clock_ns(w->sim, 0), now);
    assert_int_equal(sim_host_clock_ns(w->sim, 5), now);
    assert_non_null(strstr(last_event(w)->detail, "offset_ns=5000000000"));
    assert_string_equal(last_event(w)->target, "n1,n2");

    /* 10% fast: 100 ms of real time is 110 ms on its clock. */
    assert_int_equal(faults_clock(&w->f, 1u << 3, 0, 100000), 0);
    const uint64_t before = sim_host_clock_ns(w->sim, 3);
    run_for(w, 100 * MS);
    assert_int_equal(sim_host_clock_ns(w->sim, 3) - before, 110 * MS);
    assert_int_equal(sim_host_clock_ns(w->sim, 4) - now, 100 * MS);

    /* Out of range: refused for every host, nothing recorded. */
    const uint32_t count = w->f.timeline_count;
    assert_int_equal(faults_clock(&w->f, 0x1u, 0, 100001), IO_EINVAL);
    assert_int_equal(faults_clock(&w->f, 0x1u, 0, -100001), IO_EINVAL);
    assert_int_equal(faults_clock(&w->f, 0x1u, INT64_MAX, 0), IO_EINVAL);
    assert_int_equal(faults_clock(&w->f, 0, 1, 0), IO_EINVAL);
    assert_int_equal(faults_clock(&w->f, 1u << 5, 1, 0), IO_EINVAL); /* a client */
    assert_int_equal(w->f.timeline_count, count);
    assert_int_equal(sim_host_clock_ns(w->sim, 0), sim_now_ns(w->sim));
    world_free(w);
}

/* ---- partitions ------------------------------------------------------------------------ */

static void test_isolate(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 15);
    run_for(w, 20 * MS);
    assert_int_equal(faults_isolate(&w->f, 0x5u), 0); /* n0 and n2, each alone */
    bool cut[HOSTS_MAX][HOSTS_MAX];
    memset(cut, 0, sizeof cut);
    for (uint32_t a = 0; a < 5; a++)
        for (uint32_t b = 0; b < 5; b++)
            cut[a][b] = a != b && (a == 0 || a == 2 || b == 0 || b == 2);
    expect_partition(w, cut);
    assert_string_equal(last_event(w)->kind, "isolate");
    assert_string_equal(last_event(w)->target, "n0,n2");
    world_free(w);
}

typedef struct heard_faults {
    uint32_t count;
    faults_event_t last;
} heard_faults_t;

static void on_fault(void *arg, const faults_event_t *ev) {
    heard_faults_t *h = arg;
    h->count++;
    h->last = *ev;
}

/* The record callback hears every fault as it happens (the decoded trace
 * writes them), also past the timeline's capacity; NULL turns it off. */
static void test_record_callback(void **state) {
    (void)state;
    world_t *w = world_new(3, 3, 19);
    heard_faults_t h = {0};
    faults_set_record_fn(&w->f, on_fault, &h);
    run_for(w, 5 * MS);
    assert_int_equal(faults_isolate(&w->f, 0x2u), 0);
    assert_int_equal(h.count, 1);
    assert_string_equal(h.last.kind, "isolate");
    assert_string_equal(h.last.target, "n1");
    assert_int_equal(h.last.time_ns, sim_now_ns(w->sim));
    while (w->f.timeline_count < w->f.timeline_cap) faults_record(&w->f, "log", "", "fill");
    const uint32_t before = h.count;
    assert_int_equal(faults_heal_net(&w->f), 0);
    assert_true(w->f.timeline_dropped > 0);
    assert_int_equal(h.count, before + 1);
    assert_string_equal(h.last.kind, "heal_net");
    faults_set_record_fn(&w->f, NULL, NULL);
    assert_int_equal(faults_heal_net(&w->f), 0);
    assert_int_equal(h.count, before + 1);
    world_free(w);
}

static void test_split(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 17);
    assert_int_equal(faults_split(&w->f, 0x3u), 0);
    bool cut[HOSTS_MAX][HOSTS_MAX];
    memset(cut, 0, sizeof cut);
    for (uint32_t a = 0; a < 5; a++)
        for (uint32_t b = 0; b < 5; b++) cut[a][b] = (a < 2) != (b < 2);
    expect_partition(w, cut);
    assert_string_equal(last_event(w)->target, "n0,n1");
    assert_string_equal(last_event(w)->detail, "n2,n3,n4");
    world_free(w);
}

static void test_bridge(void **state) {
    (void)state;
    world_t *w = world_new(5, 6, 19);
    /* side_a may name the bridge itself; it is taken out of the side. */
    assert_int_equal(faults_bridge(&w->f, 0x7u, 2), 0);
    bool cut[HOSTS_MAX][HOSTS_MAX];
    memset(cut, 0, sizeof cut);
    for (uint32_t a = 0; a < 5; a++)
        for (uint32_t b = 0; b < 5; b++)
            cut[a][b] = a != 2 && b != 2 && ((a < 2) != (b < 2));
    expect_partition(w, cut);
    assert_string_equal(last_event(w)->target, "n0,n1");
    assert_string_equal(last_event(w)->detail, "bridge=n2");
    world_free(w);
}

static void test_one_way(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 21);
    assert_int_equal(faults_one_way(&w->f, 0x1u, 0x6u), 0); /* n0 cannot reach n1, n2 */
    bool cut[HOSTS_MAX][HOSTS_MAX];
    memset(cut, 0, sizeof cut);
    cut[0][1] = cut[0][2] = true;
    expect_partition(w, cut);
    world_free(w);
}

static void check_ring(uint32_t brokers, uint32_t reach) {
    world_t *w = world_new(brokers, brokers + 1, 23);
    assert_int_equal(faults_ring(&w->f), 0);
    bool cut[HOSTS_MAX][HOSTS_MAX];
    memset(cut, 0, sizeof cut);
    const uint32_t k = reach / 2;
    for (uint32_t a = 0; a < brokers; a++) {
        uint32_t open = 0;
        for (uint32_t b = 0; b < brokers; b++) {
            if (a == b) continue;
            const uint32_t d = (b + brokers - a) % brokers;
            const bool neighbour = d <= k || d >= brokers - k;
            cut[a][b] = !neighbour;
            if (!blocked(w, a, b)) {
                open++;
                assert_true(neighbour);
            }
        }
        assert_int_equal(open, reach);
    }
    expect_partition(w, cut);
    /* No two brokers see the same set (it is not a split). */
    for (uint32_t a = 0; a < brokers; a++)
        for (uint32_t b = a + 1; b < brokers; b++) {
            bool same = true;
            for (uint32_t c = 0; c < brokers; c++)
                if ((c == a || !cut[a][c]) != (c == b || !cut[b][c])) same = false;
            assert_false(same);
        }
    world_free(w);
}

static void test_ring_5(void **state) {
    (void)state;
    check_ring(5, 2);
}

static void test_ring_7(void **state) {
    (void)state;
    check_ring(7, 4);
}

static void test_heal_net_restores_base(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 25);
    assert_int_equal(faults_split(&w->f, 0x3u), 0);
    assert_int_equal(faults_one_way(&w->f, 0x4u, 0x8u), 0);
    const faults_link_spec_t spec = {.loss = 0.5, .duplicate = 0.2, .corrupt = 0.1,
                                     .extra_latency_ns = 7 * MS};
    assert_int_equal(faults_links(&w->f, 0x10u, &spec), 0);
    assert_int_equal(faults_clog(&w->f, 0x4u, 10000 * MS), 0);
    assert_int_equal(faults_heal_net(&w->f), 0);
    for (uint32_t a = 0; a < 7; a++)
        for (uint32_t b = 0; b < 7; b++) {
            sim_link_config_t c;
            assert_int_equal(sim_link_get_config(w->sim, a, b, &c), 0);
            assert_true(link_equal(&c, &w->base_link));
        }
    expect_no_partition(w); /* the clog on n2 was lifted too */
    assert_string_equal(last_event(w)->kind, "heal_net");
    world_free(w);
}

/* ---- link faults -------------------------------------------------------------------------- */

static void test_links_touch_set_and_keep_partitions(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 27);
    assert_int_equal(faults_split(&w->f, 0x3u), 0);
    const faults_link_spec_t spec = {.loss = 1.0, .extra_latency_ns = 4 * MS};
    assert_int_equal(faults_links(&w->f, 0x1u, &spec), 0);
    for (uint32_t b = 1; b < 7; b++) {
        sim_link_config_t out, in;
        assert_int_equal(sim_link_get_config(w->sim, 0, b, &out), 0);
        assert_int_equal(sim_link_get_config(w->sim, b, 0, &in), 0);
        assert_true(out.loss == 1.0 && in.loss == 1.0);
        assert_int_equal(out.latency.base_ns, 6 * MS);
        assert_int_equal(in.latency.base_ns, 6 * MS);
        const bool across = b >= 2 && b < 5;
        assert_int_equal(out.blocked, across); /* the split is still in force */
        assert_int_equal(in.blocked, across);
    }
    sim_link_config_t c;
    assert_int_equal(sim_link_get_config(w->sim, 1, 2, &c), 0);
    assert_true(c.blocked && c.loss == 0.0);
    assert_int_equal(sim_link_get_config(w->sim, 1, 5, &c), 0);
    assert_true(link_equal(&c, &w->base_link));
    assert_int_equal(sim_link_get_config(w->sim, 5, 6, &c), 0);
    assert_true(link_equal(&c, &w->base_link));

    clear_heard(w);
    run_for(w, 100 * MS);
    assert_int_equal(w->heard[1][0], 0);
    assert_int_equal(w->heard[0][1], 0);
    assert_int_equal(w->heard[5][0], 0); /* clients' links are hit too */
    assert_int_equal(w->heard[0][6], 0);
    assert_true(w->heard[1][5] > 0);
    assert_true(w->heard[3][2] > 0);
    assert_int_equal(w->heard[2][1], 0); /* split */
    assert_string_equal(last_event(w)->kind, "links");
    assert_non_null(strstr(last_event(w)->detail, "loss=1.000"));

    /* Latency alone: messages still flow, just later. */
    const faults_link_spec_t slow = {.extra_latency_ns = 30 * MS};
    assert_int_equal(faults_links(&w->f, 0x4u, &slow), 0);
    assert_int_equal(sim_link_get_config(w->sim, 5, 2, &c), 0);
    assert_int_equal(c.latency.base_ns, 32 * MS);
    assert_true(c.loss == 0.0);
    world_free(w);
}

static void test_clog_holds_then_releases(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 29);
    run_for(w, 20 * MS);
    assert_int_equal(faults_clog(&w->f, 0x1u, 100 * MS), 0);
    sim_link_stats_t before;
    assert_int_equal(sim_link_stats(w->sim, 1, 0, &before), 0);
    clear_heard(w);
    run_for(w, 60 * MS);
    assert_int_equal(w->heard[0][1], 0);
    assert_int_equal(w->heard[1][0], 0);
    assert_true(w->heard[0][5] > 0); /* client links never clogged */
    assert_true(w->heard[5][0] > 0);
    assert_true(w->heard[2][1] > 0); /* other brokers unaffected */
    sim_link_stats_t during;
    assert_int_equal(sim_link_stats(w->sim, 1, 0, &during), 0);
    assert_true(during.clogged > before.clogged);

    run_for(w, 100 * MS);
    /* Everything held arrived, nothing was dropped. */
    assert_true(w->heard[0][1] >= 14);
    sim_link_stats_t after;
    assert_int_equal(sim_link_stats(w->sim, 1, 0, &after), 0);
    assert_int_equal(after.dropped_blocked + after.dropped_loss + after.dropped_overflow,
                     before.dropped_blocked + before.dropped_loss + before.dropped_overflow);
    assert_true(after.delivered - before.delivered >= 14);
    assert_string_equal(last_event(w)->detail, "duration_ns=100000000");

    /* Zero and absurd durations are refused and change nothing. */
    const uint32_t count = w->f.timeline_count;
    assert_int_equal(faults_clog(&w->f, 0x1u, 0), IO_EINVAL);
    assert_int_equal(faults_clog(&w->f, 0x1u, UINT64_MAX), IO_EINVAL);
    assert_int_equal(faults_clog(&w->f, 0, 10 * MS), IO_EINVAL);
    assert_int_equal(w->f.timeline_count, count);
    clear_heard(w);
    run_for(w, 30 * MS);
    assert_true(w->heard[0][1] > 0);
    world_free(w);
}

/* ---- disk faults ---------------------------------------------------------------------------- */

static void test_disk_corrupt_prefix(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 31);
    run_for(w, 5 * MS);
    for (uint32_t h = 0; h < 4; h++) {
        put_file(w, h, "log.a", 0, 256);
        put_file(w, h, "data.b", 0, 256);
    }
    assert_int_equal(faults_disk_corrupt(&w->f, 0x1u, "log", 32), 0);
    assert_true(bytes_changed(w, 0, "log.a", 0, 256) > 0);
    assert_int_equal(bytes_changed(w, 0, "data.b", 0, 256), 0);
    for (uint32_t h = 1; h < 4; h++) assert_int_equal(bytes_changed(w, h, "log.a", 0, 256), 0);
    assert_int_equal(sim_disk_stats(sim_host_disk(w->sim, 0))->bits_corrupted, 32);
    /* Both images: a crash does not bring the old bytes back. */
    assert_int_equal(faults_crash(&w->f, 0x1u), 0);
    assert_true(bytes_changed(w, 0, "log.a", 0, 256) > 0);
    assert_string_equal(last_event(w)->kind, "crash");

    /* No prefix: every file is fair game. */
    assert_int_equal(faults_disk_corrupt(&w->f, 0x2u, NULL, 64), 0);
    assert_true(bytes_changed(w, 1, "data.b", 0, 256) > 0);
    assert_true(bytes_changed(w, 1, "log.a", 0, 256) > 0);

    /* Bad input. */
    const uint32_t count = w->f.timeline_count;
    assert_int_equal(faults_disk_corrupt(&w->f, 0x1u, "log", 0), IO_EINVAL);
    assert_int_equal(faults_disk_corrupt(&w->f, 0x1u, "log", (1u << 20) + 1), IO_EINVAL);
    assert_int_equal(faults_disk_corrupt(&w->f, 0, "log", 1), IO_EINVAL);
    assert_int_equal(faults_disk_corrupt(&w->f, 1u << 3, "log", 1), IO_EINVAL);
    assert_int_equal(w->f.timeline_count, count);
    assert_int_equal(bytes_changed(w, 2, "log.a", 0, 256), 0);
    world_free(w);
}

static void test_disk_read_errors(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 33);
    for (uint32_t h = 0; h < 4; h++) {
        put_file(w, h, "log.a", 7, 64);
        put_file(w, h, "data.b", 7, 64);
    }
    assert_int_equal(faults_disk_read_errors(&w->f, 0x1u, "log"), 0);
    uint8_t buf[64];
    sim_disk_t *d0 = sim_host_disk(w->sim, 0);
    assert_int_equal(sim_disk_read(d0, "log.a", 0, buf, 64), IO_EIO);
    assert_int_equal(sim_disk_read(d0, "log.a", 60, buf, 4), IO_EIO);
    assert_int_equal(sim_disk_read(d0, "data.b", 0, buf, 64), 64);
    assert_int_equal(sim_disk_read(sim_host_disk(w->sim, 1), "log.a", 0, buf, 64), 64);
    assert_int_equal(sim_disk_stats(d0)->read_errors, 2);
    assert_string_equal(last_event(w)->detail, "log");
    /* heal_disk clears them. */
    assert_int_equal(faults_heal_disk(&w->f), 0);
    assert_int_equal(sim_disk_read(d0, "log.a", 0, buf, 64), 64);
    assert_int_equal(faults_disk_read_errors(&w->f, 0, "log"), IO_EINVAL);
    assert_int_equal(faults_disk_read_errors(&w->f, 0x8u, "log"), IO_EINVAL);
    world_free(w);
}

static void test_disk_full(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 35);
    w->write_on_tick[0] = w->write_on_tick[1] = true;
    run_for(w, 50 * MS);
    assert_true(w->writes_ok[0] > 0);
    assert_int_equal(faults_disk_full(&w->f, 0x1u, true), 0);
    run_for(w, 1 * MS); /* let a write issued before the fault land */
    memset(w->writes_ok, 0, sizeof w->writes_ok);
    run_for(w, 50 * MS);
    assert_int_equal(w->writes_ok[0], 0);
    assert_true(w->writes_enospc[0] >= 4);
    assert_int_equal(w->last_write[0], IO_ENOSPC);
    assert_true(w->writes_ok[1] > 0);
    assert_int_equal(w->writes_enospc[1], 0);

    sim_disk_t *d0 = sim_host_disk(w->sim, 0);
    const uint8_t one = 1;
    /* Even one byte of growth is refused; overwriting in place still works. */
    assert_int_equal(sim_disk_write(d0, "other", 0, &one, 1), IO_ENOSPC);
    assert_int_equal(sim_disk_write(d0, "log.boot", 0, &one, 1), 1);
    assert_int_equal(last_event(w)->detail[0], 'o');
    assert_string_equal(last_event(w)->detail, "on");

    assert_int_equal(faults_disk_full(&w->f, 0x1u, false), 0);
    assert_int_equal(sim_disk_get_config(d0)->capacity_bytes, w->base_disk.capacity_bytes);
    assert_int_equal(sim_disk_write(d0, "other", 0, &one, 1), 1);
    memset(w->writes_ok, 0, sizeof w->writes_ok);
    run_for(w, 50 * MS);
    assert_true(w->writes_ok[0] > 0);
    assert_int_equal(w->last_write[0], 16);
    assert_int_equal(faults_disk_full(&w->f, 0, true), IO_EINVAL);
    assert_int_equal(faults_disk_full(&w->f, 0x10u, true), IO_EINVAL);
    world_free(w);
}

static void test_disk_slow(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 37);
    for (uint32_t i = 0; i < 2; i++) w->write_on_tick[i] = w->fsync_on_tick[i] = true;
    run_for(w, 100 * MS);
    assert_true(w->fsync_max_ns[0] < 5 * MS);
    assert_int_equal(faults_disk_slow(&w->f, 0x1u, 50 * MS), 0);
    const sim_disk_config_t *c0 = sim_disk_get_config(sim_host_disk(w->sim, 0));
    assert_int_equal(c0->fsync_latency.base_ns, 50 * MS);
    assert_true(disk_equal(sim_disk_get_config(sim_host_disk(w->sim, 1)), &w->base_disk));
    run_for(w, 20 * MS);
    memset(w->fsyncs_done, 0, sizeof w->fsyncs_done);
    memset(w->fsync_max_ns, 0, sizeof w->fsync_max_ns);
    run_for(w, 500 * MS);
    assert_true(w->fsyncs_done[0] >= 3);
    assert_true(w->fsync_min_ns[0] >= 50 * MS);
    assert_true(w->fsyncs_done[1] >= 40);
    assert_true(w->fsync_max_ns[1] < 5 * MS);

    assert_int_equal(faults_heal_disk(&w->f), 0);
    assert_true(disk_equal(c0, &w->base_disk));
    run_for(w, 2000 * MS); /* drain what the slow disk had queued */
    memset(w->fsyncs_done, 0, sizeof w->fsyncs_done);
    memset(w->fsync_max_ns, 0, sizeof w->fsync_max_ns);
    run_for(w, 200 * MS);
    assert_true(w->fsyncs_done[0] >= 15);
    assert_true(w->fsync_max_ns[0] < 5 * MS);

    assert_int_equal(faults_disk_slow(&w->f, 0x1u, 0), IO_EINVAL);
    assert_int_equal(faults_disk_slow(&w->f, 0x1u, UINT64_C(60000000001)), IO_EINVAL);
    assert_int_equal(faults_disk_slow(&w->f, 0, MS), IO_EINVAL);
    assert_true(disk_equal(c0, &w->base_disk));
    world_free(w);
}

static void test_disk_crash_mode(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 39);
    run_for(w, 5 * MS);
    assert_int_equal(faults_disk_crash_mode(&w->f, 0x1u, SIM_DISK_CRASH_KEEP, 1.0), 0);
    assert_int_equal(faults_crash(&w->f, 0x3u), 0);
    assert_int_equal(disk_size(w, 0, "log.boot"), 8); /* kept whole */
    assert_int_equal(disk_size(w, 1, "log.boot"), 0); /* base: lost */
    assert_string_equal(last_event(w)->kind, "crash");
    const sim_disk_config_t *c0 = sim_disk_get_config(sim_host_disk(w->sim, 0));
    assert_int_equal(c0->crash_mode, SIM_DISK_CRASH_KEEP);

    const uint32_t count = w->f.timeline_count;
    assert_int_equal(faults_disk_crash_mode(&w->f, 0x1u, SIM_DISK_CRASH_TORN, 1.5), IO_EINVAL);
    assert_int_equal(faults_disk_crash_mode(&w->f, 0x1u, SIM_DISK_CRASH_TORN, -0.1), IO_EINVAL);
    assert_int_equal(faults_disk_crash_mode(&w->f, 0x1u, SIM_DISK_CRASH_TORN, NAN), IO_EINVAL);
    assert_int_equal(faults_disk_crash_mode(&w->f, 0x1u, (sim_disk_crash_mode_t)7, 0.5), IO_EINVAL);
    assert_int_equal(faults_disk_crash_mode(&w->f, 0, SIM_DISK_CRASH_TORN, 0.5), IO_EINVAL);
    assert_int_equal(w->f.timeline_count, count);
    assert_int_equal(c0->crash_mode, SIM_DISK_CRASH_KEEP);
    world_free(w);
}

/* ---- heal everything ------------------------------------------------------------------------------- */

static void test_heal_all(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 41);
    run_for(w, 20 * MS);
    assert_int_equal(faults_crash(&w->f, 0x1u), 0);
    assert_int_equal(faults_stop(&w->f, 0x4u), 0);
    assert_int_equal(faults_pause(&w->f, 0x2u), 0);
    assert_int_equal(faults_split(&w->f, 0x3u), 0);
    const faults_link_spec_t spec = {.loss = 0.5, .reorder = 0.5, .reorder_window_ns = MS};
    assert_int_equal(faults_links(&w->f, 0x8u, &spec), 0);
    assert_int_equal(faults_clog(&w->f, 0x10u, 5000 * MS), 0);
    assert_int_equal(faults_clock(&w->f, 0x8u, INT64_C(2000000000), 5000), 0);
    assert_int_equal(faults_disk_slow(&w->f, 0x10u, 80 * MS), 0);
    assert_int_equal(faults_disk_full(&w->f, 0x8u, true), 0);
    assert_int_equal(faults_disk_crash_mode(&w->f, 0x8u, SIM_DISK_CRASH_TORN, 0.5), 0);
    assert_int_equal(faults_disk_read_errors(&w->f, 0x10u, "log"), 0);

    assert_int_equal(faults_heal_all(&w->f), 0);
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(sim_host_state(w->sim, i), SIM_HOST_UP);
        assert_true(disk_equal(sim_disk_get_config(sim_host_disk(w->sim, i)), &w->base_disk));
    }
    assert_int_equal(sim_host_incarnation(w->sim, 0), 2);
    assert_int_equal(sim_host_incarnation(w->sim, 1), 1); /* resumed, not rebooted */
    assert_int_equal(sim_host_incarnation(w->sim, 2), 2);
    for (uint32_t a = 0; a < 7; a++)
        for (uint32_t b = 0; b < 7; b++) {
            sim_link_config_t c;
            assert_int_equal(sim_link_get_config(w->sim, a, b, &c), 0);
            assert_true(link_equal(&c, &w->base_link));
        }
    uint8_t buf[8];
    assert_int_equal(sim_disk_read(sim_host_disk(w->sim, 4), "log.boot", 0, buf, 8), 8);
    assert_string_equal(last_event(w)->kind, "heal");
    expect_no_partition(w);
    /* The clock is back to global time once the +2 s it had is caught up
     * (local clocks never go back), and runs at the true rate. */
    run_for(w, 2500 * MS);
    assert_int_equal(sim_host_clock_ns(w->sim, 3), sim_now_ns(w->sim));
    world_free(w);
}

/* ---- timeline ------------------------------------------------------------------------------------------ */

static void test_timeline_records_and_drops(void **state) {
    (void)state;
    world_t *w = world_new(5, 6, 43);
    faults_event_t tl[3];
    memset(tl, 0xab, sizeof tl);
    assert_int_equal(faults_init(&w->f, w->sim, 5, &w->base_link, &w->base_disk, tl, 3), 0);
    run_for(w, 10 * MS);
    assert_int_equal(faults_crash(&w->f, 0x1u), 0);
    run_for(w, 10 * MS);
    assert_int_equal(faults_isolate(&w->f, 0x6u), 0);
    /* Rejected calls record nothing. */
    assert_int_equal(faults_isolate(&w->f, 0x20u), IO_EINVAL);
    run_for(w, 10 * MS);
    assert_int_equal(faults_clock(&w->f, 0x8u, 5, -7), 0);
    assert_int_equal(w->f.timeline_count, 3);
    assert_int_equal(w->f.timeline_dropped, 0);
    assert_int_equal(faults_heal_net(&w->f), 0);
    faults_record(&w->f, "custom", NULL, NULL);
    assert_int_equal(w->f.timeline_count, 3);
    assert_int_equal(w->f.timeline_dropped, 2);

    assert_int_equal(tl[0].time_ns, 10 * MS);
    assert_string_equal(tl[0].kind, "crash");
    assert_string_equal(tl[0].target, "n0");
    assert_string_equal(tl[0].detail, "");
    assert_int_equal(tl[1].time_ns, 20 * MS);
    assert_string_equal(tl[1].kind, "isolate");
    assert_string_equal(tl[1].target, "n1,n2");
    assert_int_equal(tl[2].time_ns, 30 * MS);
    assert_string_equal(tl[2].kind, "clock");
    assert_string_equal(tl[2].target, "n3");
    assert_string_equal(tl[2].detail, "offset_ns=5 drift_ppm=-7");

    /* Long strings are cut, never overflow. */
    faults_event_t big[1];
    assert_int_equal(faults_init(&w->f, w->sim, 5, &w->base_link, &w->base_disk, big, 1), 0);
    char longs[300];
    memset(longs, 'x', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    faults_record(&w->f, longs, longs, longs);
    assert_int_equal(strlen(big[0].kind), sizeof big[0].kind - 1);
    assert_int_equal(strlen(big[0].target), sizeof big[0].target - 1);
    assert_int_equal(strlen(big[0].detail), FAULTS_DETAIL_MAX - 1);
    world_free(w);
}

/* ---- bad input --------------------------------------------------------------------------------------------- */

static void test_bad_input_changes_nothing(void **state) {
    (void)state;
    world_t *w = world_new(5, 7, 45);
    run_for(w, 20 * MS);
    const faults_set_t beyond = 1u << 5; /* host 5 exists, but is a client */
    const faults_set_t far = 1u << 31;
    const faults_set_t bad_sets[] = {0, beyond, far, 0x1fu | beyond};
    const faults_link_spec_t ok_spec = {.loss = 0.1};
    for (size_t i = 0; i < sizeof bad_sets / sizeof bad_sets[0]; i++) {
        const faults_set_t s = bad_sets[i];
        assert_int_equal(faults_crash(&w->f, s), IO_EINVAL);
        assert_int_equal(faults_kill(&w->f, s), IO_EINVAL);
        assert_int_equal(faults_stop(&w->f, s), IO_EINVAL);
        assert_int_equal(faults_restart(&w->f, s), IO_EINVAL);
        assert_int_equal(faults_pause(&w->f, s), IO_EINVAL);
        assert_int_equal(faults_resume(&w->f, s), IO_EINVAL);
        assert_int_equal(faults_clock(&w->f, s, 1, 0), IO_EINVAL);
        assert_int_equal(faults_isolate(&w->f, s), IO_EINVAL);
        assert_int_equal(faults_split(&w->f, s), IO_EINVAL);
        assert_int_equal(faults_bridge(&w->f, s, 2), IO_EINVAL);
        assert_int_equal(faults_one_way(&w->f, s, 0x1u), IO_EINVAL);
        assert_int_equal(faults_one_way(&w->f, 0x1u, s), IO_EINVAL);
        assert_int_equal(faults_links(&w->f, s, &ok_spec), IO_EINVAL);
        assert_int_equal(faults_clog(&w->f, s, MS), IO_EINVAL);
        assert_int_equal(faults_disk_crash_mode(&w->f, s, SIM_DISK_CRASH_LOSE, 0), IO_EINVAL);
        assert_int_equal(faults_disk_corrupt(&w->f, s, NULL, 1), IO_EINVAL);
        assert_int_equal(faults_disk_read_errors(&w->f, s, NULL), IO_EINVAL);
        assert_int_equal(faults_disk_full(&w->f, s, true), IO_EINVAL);
        assert_int_equal(faults_disk_slow(&w->f, s, MS), IO_EINVAL);
    }
    /* Split needs two sides; bridge needs a broker and two non-empty sides. */
    assert_int_equal(faults_split(&w->f, 0x1fu), IO_EINVAL);
    assert_int_equal(faults_bridge(&w->f, 0x3u, 5), IO_EINVAL);
    assert_int_equal(faults_bridge(&w->f, 0x3u, UINT32_MAX), IO_EINVAL);
    assert_int_equal(faults_bridge(&w->f, 0x4u, 2), IO_EINVAL);  /* side_a = just the bridge */
    assert_int_equal(faults_bridge(&w->f, 0x1bu, 2), IO_EINVAL); /* side_b empty */
    assert_int_equal(faults_links(&w->f, 0x1u, NULL), IO_EINVAL);
    const faults_link_spec_t bad_specs[] = {
        {.loss = 1.5},      {.loss = -0.1},         {.duplicate = 2.0},
        {.reorder = -1.0},  {.corrupt = 1.01},      {.loss = NAN},
        {.extra_latency_ns = UINT64_MAX},           {.extra_latency_ns = UINT64_C(1) << 60},
        {.reorder = 0.5, .reorder_window_ns = UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++)
        assert_int_equal(faults_links(&w->f, 0x1u, &bad_specs[i]), IO_EINVAL);

    assert_int_equal(w->f.timeline_count, 0);
    for (uint32_t a = 0; a < 7; a++) {
        assert_int_equal(sim_host_state(w->sim, a), SIM_HOST_UP);
        assert_int_equal(sim_host_incarnation(w->sim, a), 1);
        for (uint32_t b = 0; b < 7; b++) {
            sim_link_config_t c;
            assert_int_equal(sim_link_get_config(w->sim, a, b, &c), 0);
            assert_true(link_equal(&c, &w->base_link));
        }
        assert_true(disk_equal(sim_disk_get_config(sim_host_disk(w->sim, a)), &w->base_disk));
    }
    expect_no_partition(w);
    world_free(w);

    /* The ring needs 5 brokers to be more than a split. */
    w = world_new(4, 6, 47);
    assert_int_equal(faults_ring(&w->f), IO_EINVAL);
    assert_int_equal(w->f.timeline_count, 0);
    expect_no_partition(w);
    world_free(w);
}

/* Client faults: a client cut from some brokers only, a client crashed and
 * rebooted (by hand, or by heal_all), bad hosts refused. */
static void test_client_faults(void **state) {
    (void)state;
    world_t *w = world_new(3, 5, 31);
    const uint32_t client = 3, other = 4;
    assert_int_equal(faults_client_partition(&w->f, client, 0x3), 0); /* n0, n1 */
    assert_true(blocked(w, client, 0) && blocked(w, 0, client));
    assert_true(blocked(w, client, 1) && blocked(w, 1, client));
    assert_false(blocked(w, client, 2) || blocked(w, 2, client));
    assert_false(blocked(w, other, 0) || blocked(w, 0, 1));
    assert_string_equal(last_event(w)->kind, "partition_client");
    assert_int_equal(faults_heal_net(&w->f), 0);
    assert_false(blocked(w, client, 0));
    assert_int_equal(faults_client_crash(&w->f, client), 0);
    assert_int_equal(sim_host_state(w->sim, client), SIM_HOST_DOWN);
    assert_int_equal(faults_client_restart(&w->f, client), 0);
    assert_int_equal(sim_host_state(w->sim, client), SIM_HOST_UP);
    assert_int_equal(faults_client_crash(&w->f, other), 0);
    assert_int_equal(faults_heal_all(&w->f), 0);
    assert_int_equal(sim_host_state(w->sim, other), SIM_HOST_UP); /* heal reboots it */
    /* brokers are not clients; hosts past the end do not exist */
    assert_int_equal(faults_client_crash(&w->f, 1), IO_EINVAL);
    assert_int_equal(faults_client_restart(&w->f, 5), IO_EINVAL);
    assert_int_equal(faults_client_partition(&w->f, 2, 0x1), IO_EINVAL);
    assert_int_equal(faults_client_partition(&w->f, client, 0x8), IO_EINVAL); /* no broker 3 */
    world_free(w);
}

/* wipe: every file of the broker's disk is gone and it runs again. */
static void test_wipe_destroys_the_disk(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 32);
    put_file(w, 1, "log", 0xab, 200);
    put_file(w, 1, "meta", 0xcd, 100);
    put_file(w, 2, "log", 0xab, 200);
    assert_int_equal(faults_wipe(&w->f, 0x2), 0);
    uint64_t size = 0;
    assert_int_not_equal(sim_disk_size(sim_host_disk(w->sim, 1), "log", &size), 0);
    assert_int_not_equal(sim_disk_size(sim_host_disk(w->sim, 1), "meta", &size), 0);
    assert_int_equal(disk_size(w, 2, "log"), 200); /* the others keep theirs */
    assert_int_equal(sim_host_state(w->sim, 1), SIM_HOST_UP);
    assert_string_equal(last_event(w)->kind, "wipe");
    assert_non_null(strstr(last_event(w)->detail, "2 files"));
    assert_int_equal(faults_wipe(&w->f, 0x10), IO_EINVAL); /* no broker 4 */
    world_free(w);
}

/* ---- the schedule: ops noted, replayed --------------------------------------- */

#define OPS_MAX 32u

typedef struct op_log {
    faults_op_t ops[OPS_MAX];
    uint32_t count;
} op_log_t;

static void op_note(void *arg, const faults_op_t *op) {
    op_log_t *l = arg;
    assert_true(l->count < OPS_MAX);
    l->ops[l->count++] = *op;
}

/* Every successful injector call is noted with its arguments; a refused one
 * is not; heal_all notes its inner calls (the engine ignores them outside a
 * step). */
static void test_ops_noted_with_arguments(void **state) {
    (void)state;
    world_t *w = world_new(3, 5, 41);
    op_log_t *log = calloc(1, sizeof *log);
    assert_non_null(log);
    faults_set_op_fn(&w->f, op_note, log);
    run_for(w, 20 * MS);
    assert_int_equal(faults_crash(&w->f, 0x2u), 0);
    assert_int_equal(faults_clock(&w->f, 0x1u, -7 * (int64_t)MS, 250), 0);
    const faults_link_spec_t spec = {.loss = 0.25, .extra_latency_ns = 30 * MS,
                                     .reorder_window_ns = 5 * MS, .brokers_only = true};
    assert_int_equal(faults_links(&w->f, 0x5u, &spec), 0);
    assert_int_equal(faults_one_way(&w->f, 0x1u, 0x4u), 0);
    assert_int_equal(faults_disk_corrupt(&w->f, 0x4u, "log", 3), 0);
    (void)faults_random_set(&w->f, 2);
    assert_int_equal(faults_client_crash(&w->f, 4), 0);
    assert_int_equal(faults_isolate(&w->f, 0), IO_EINVAL); /* refused: not noted */
    assert_int_equal(log->count, 7);
    const faults_op_t *o = log->ops;
    assert_int_equal(o[0].kind, FAULTS_OP_CRASH);
    assert_int_equal(o[0].set, 0x2u);
    assert_int_equal(o[1].kind, FAULTS_OP_CLOCK);
    assert_int_equal(o[1].offset_ns, -7 * (int64_t)MS);
    assert_int_equal(o[1].drift_ppm, 250);
    assert_int_equal(o[2].kind, FAULTS_OP_LINKS);
    assert_true(o[2].link.loss == 0.25 && o[2].link.brokers_only);
    assert_int_equal(o[2].link.extra_latency_ns, 30 * MS);
    assert_int_equal(o[3].kind, FAULTS_OP_ONE_WAY);
    assert_int_equal(o[3].to, 0x4u);
    assert_int_equal(o[4].kind, FAULTS_OP_DISK_CORRUPT);
    assert_string_equal(o[4].prefix, "log");
    assert_int_equal(o[4].host, 3);
    assert_int_equal(o[5].kind, FAULTS_OP_DRAW);
    assert_int_equal(o[5].host, 2);
    assert_int_equal(o[6].kind, FAULTS_OP_CLIENT_CRASH);
    assert_int_equal(o[6].host, 4);
    assert_string_equal(faults_op_name(o[6].kind), "crash_client");
    faults_set_op_fn(&w->f, NULL, NULL);
    assert_int_equal(faults_heal_all(&w->f), 0);
    assert_int_equal(log->count, 7);
    free(log);
    world_free(w);
}

/* Two worlds of one seed: one calls the injectors, the other replays the
 * noted ops with faults_apply_op at the same times: same trace hash. */
static void test_apply_op_replays_same_trace(void **state) {
    (void)state;
    world_t *a = world_new(3, 4, 43), *b = world_new(3, 4, 43);
    op_log_t *log = calloc(1, sizeof *log);
    assert_non_null(log);
    faults_set_op_fn(&a->f, op_note, log);
    run_for(a, 30 * MS);
    run_for(b, 30 * MS);
    assert_int_equal(faults_isolate(&a->f, faults_random_set(&a->f, 1)), 0);
    assert_int_equal(faults_disk_corrupt(&a->f, 0x1u, NULL, 2), 0);
    assert_int_equal(faults_clog(&a->f, 0x2u, 40 * MS), 0);
    for (uint32_t i = 0; i < log->count; i++) assert_int_equal(faults_apply_op(&b->f, &log->ops[i]), 0);
    run_for(a, 200 * MS);
    run_for(b, 200 * MS);
    const uint32_t first = log->count;
    assert_int_equal(faults_heal_net(&a->f), 0);
    assert_int_equal(faults_crash(&a->f, 0x4u), 0);
    for (uint32_t i = first; i < log->count; i++)
        assert_int_equal(faults_apply_op(&b->f, &log->ops[i]), 0);
    run_for(a, 200 * MS);
    run_for(b, 200 * MS);
    assert_int_equal(sim_trace_hash(a->sim), sim_trace_hash(b->sim));
    /* bad input: an unknown kind changes nothing */
    const faults_op_t bad = {.kind = FAULTS_OP_KINDS_COUNT};
    assert_int_equal(faults_apply_op(&b->f, &bad), IO_EINVAL);
    assert_string_equal(faults_op_name(FAULTS_OP_KINDS_COUNT), "?");
    free(log);
    world_free(a);
    world_free(b);
}

/* disk_fast undoes disk_slow only: the crash mode a scenario set stays. */
static void test_disk_fast_keeps_crash_mode(void **state) {
    (void)state;
    world_t *w = world_new(3, 4, 45);
    run_for(w, 5 * MS);
    assert_int_equal(faults_disk_crash_mode(&w->f, 0x1u, SIM_DISK_CRASH_TORN, 0.5), 0);
    assert_int_equal(faults_disk_slow(&w->f, 0x3u, 50 * MS), 0);
    assert_int_equal(faults_disk_fast(&w->f, 0x1u), 0);
    const sim_disk_config_t *c0 = sim_disk_get_config(sim_host_disk(w->sim, 0));
    const sim_disk_config_t *c1 = sim_disk_get_config(sim_host_disk(w->sim, 1));
    assert_int_equal(c0->fsync_latency.base_ns, w->base_disk.fsync_latency.base_ns);
    assert_int_equal(c0->crash_mode, SIM_DISK_CRASH_TORN);
    assert_int_equal(c1->fsync_latency.base_ns, 50 * MS); /* not in the set */
    assert_int_equal(faults_disk_fast(&w->f, 0), IO_EINVAL);
    assert_int_equal(faults_disk_fast(&w->f, 0x10u), IO_EINVAL);
    world_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects_bad_config),
        cmocka_unit_test(test_sets),
        cmocka_unit_test(test_crash_loses_unsynced_kill_keeps),
        cmocka_unit_test(test_stop_pause_resume_restart),
        cmocka_unit_test(test_power_loss_crashes_every_broker),
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_isolate),
        cmocka_unit_test(test_record_callback),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_bridge),
        cmocka_unit_test(test_one_way),
        cmocka_unit_test(test_ring_5),
        cmocka_unit_test(test_ring_7),
        cmocka_unit_test(test_heal_net_restores_base),
        cmocka_unit_test(test_links_touch_set_and_keep_partitions),
        cmocka_unit_test(test_clog_holds_then_releases),
        cmocka_unit_test(test_disk_corrupt_prefix),
        cmocka_unit_test(test_disk_read_errors),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_disk_slow),
        cmocka_unit_test(test_disk_crash_mode),
        cmocka_unit_test(test_heal_all),
        cmocka_unit_test(test_timeline_records_and_drops),
        cmocka_unit_test(test_bad_input_changes_nothing),
        cmocka_unit_test(test_client_faults),
        cmocka_unit_test(test_wipe_destroys_the_disk),
        cmocka_unit_test(test_ops_noted_with_arguments),
        cmocka_unit_test(test_apply_op_replays_same_trace),
        cmocka_unit_test(test_disk_fast_keeps_crash_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
