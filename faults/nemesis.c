/* faults/nemesis.c — random faults, one at a time, with swarm testing. */
#include "faults/nemesis.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char *const nemesis_names[NEMESIS_KINDS_COUNT] = {
    "crash", "kill", "pause", "isolate_leader", "isolate", "split", "bridge",
    "one_way", "ring", "flaky", "corrupt_net", "latency", "clog", "clock",
    "disk_slow", "disk_corrupt", "power_loss",
};

const char *nemesis_kind_name(nemesis_kind_t kind) {
    assert((unsigned)kind < NEMESIS_KINDS_COUNT);
    return nemesis_names[kind];
}

int nemesis_kind_parse(const char *name) {
    if (name == NULL) return -1;
    for (int i = 0; i < NEMESIS_KINDS_COUNT; i++)
        if (strcmp(name, nemesis_names[i]) == 0) return i;
    return -1;
}

void nemesis_config_default(nemesis_config_t *cfg) {
    assert(cfg != NULL);
    memset(cfg, 0, sizeof *cfg);
    cfg->kinds_mask = NEMESIS_KINDS_ALL;
    cfg->swarm = true;
    cfg->start_ns = 0;
    cfg->stop_ns = UINT64_C(30000000000);
    cfg->interval_mean_ns = UINT64_C(2000000000);
    cfg->duration_mean_ns = UINT64_C(3000000000);
}

void nemesis_describe(const nemesis_t *n, char *buf, size_t cap) {
    assert(buf != NULL && cap > 0);
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < NEMESIS_KINDS_COUNT && used + 1 < cap; i++) {
        if (!(n->enabled_mask & (1u << i))) continue;
        const int w = snprintf(buf + used, cap - used, "%s%s", used ? "," : "", nemesis_names[i]);
        if (w < 0 || (size_t)w >= cap - used) break;
        used += (size_t)w;
    }
}

static void nemesis__tick(sim_t *sim, void *arg);
static void nemesis__undo(sim_t *sim, void *arg);

/* A minority of the brokers (at least one): what a majority quorum survives. */
static uint32_t nemesis__minority(const nemesis_t *n) {
    const uint32_t b = n->faults->brokers_count;
    return b <= 2 ? 1 : (b - 1) / 2;
}

/* a + b, saturating: virtual time never wraps into the past. */
static uint64_t nemesis__add_ns(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A random set of `count` brokers drawn from the nemesis's own stream, so a
 * scenario drawing from the faults stream never shifts the schedule. */
static faults_set_t nemesis__random_set(nemesis_t *n, uint32_t count) {
    const uint32_t b = n->faults->brokers_count;
    assert(b >= 1 && b <= FAULTS_BROKERS_MAX);
    if (count > b) count = b;
    uint32_t ids[FAULTS_BROKERS_MAX];
    for (uint32_t i = 0; i < b; i++) ids[i] = i;
    faults_set_t set = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint32_t j = i + (uint32_t)sim_prng_below(&n->prng, b - i);
        const uint32_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
        set |= 1u << ids[i];
    }
    assert(count == 0 || set != 0);
    return set;
}

static uint64_t nemesis__scaled(const nemesis_t *n, uint64_t mean_ns, double k) {
    (void)n;
    const double v = (double)mean_ns * k;
    return v < 1.0 ? 1 : (uint64_t)v;
}

/* Apply `kind`; returns 0 if something was injected. */
static int nemesis__apply(nemesis_t *n, nemesis_kind_t kind) {
    faults_t *f = n->faults;
    const double k = n->intensity[kind];
    faults_set_t set = nemesis__random_set(n, nemesis__minority(n));
    n->active_set = set;
    switch (kind) {
    case NEMESIS_CRASH: return faults_crash(f, set);
    case NEMESIS_KILL: return faults_kill(f, set);
    case NEMESIS_PAUSE: return faults_pause(f, set);
    case NEMESIS_ISOLATE_LEADER: {
        const faults_set_t leader = faults_leader_set(f);
        n->active_set = leader ? leader : set;
        return faults_isolate(f, n->active_set);
    }
    case NEMESIS_ISOLATE: return faults_isolate(f, set);
    case NEMESIS_SPLIT: return f->brokers_count < 2 ? IO_EINVAL : faults_split(f, set);
    case NEMESIS_BRIDGE: {
        if (f->brokers_count < 3) return IO_EINVAL;
        const uint32_t bridge = (uint32_t)sim_prng_below(&n->prng, f->brokers_count);
        const faults_set_t rest = faults_all(f) & ~(1u << bridge);
        faults_set_t side = 0;
        uint32_t taken = 0;
        for (uint32_t i = 0; i < f->brokers_count && taken < (f->brokers_count - 1) / 2; i++)
            if (rest & (1u << i)) { side |= 1u << i; taken++; }
        return faults_bridge(f, side, bridge);
    }
    case NEMESIS_ONE_WAY:
        return f->brokers_count < 2 ? IO_EINVAL
                                    : faults_one_way(f, set, faults_all(f) & ~set);
    case NEMESIS_RING: return faults_ring(f);
    case NEMESIS_FLAKY: {
        faults_link_spec_t s = {.brokers_only = true, .loss = 0.2 * k, .duplicate = 0.1 * k,
                                .reorder = 0.2 * k, .reorder_window_ns = 5000000};
        n->active_set = faults_all(f);
        return faults_links(f, n->active_set, &s);
    }
    case NEMESIS_CORRUPT_NET: {
        faults_link_spec_t s = {.brokers_only = true, .corrupt = 0.05 * k};
        n->active_set = faults_all(f);
        return faults_links(f, n->active_set, &s);
    }
    case NEMESIS_LATENCY: {
        faults_link_spec_t s = {.brokers_only = true,
                                .extra_latency_ns = nemesis__scaled(n, 200000000, k)};
        return faults_links(f, set, &s);
    }
    case NEMESIS_CLOG:
        return faults_clog(f, set, nemesis__scaled(n, n->cfg.duration_mean_ns, k));
    case NEMESIS_CLOCK: {
        const int64_t offset = (int64_t)sim_prng_below(&n->prng, 2000000000) - 1000000000;
        const int32_t drift = (int32_t)(sim_prng_below(&n->prng, 2001) - 1000);
        return faults_clock(f, set, (int64_t)((double)offset * k), drift);
    }
    case NEMESIS_DISK_SLOW:
        return faults_disk_slow(f, set, nemesis__scaled(n, 50000000, k));
    case NEMESIS_DISK_CORRUPT:
        return faults_disk_corrupt(f, nemesis__random_set(n, 1), "log", 1 + (uint32_t)(3 * k));
    case NEMESIS_POWER_LOSS:
        n->active_set = faults_all(f);
        return faults_power_loss(f);
    case NEMESIS_KINDS_COUNT: break;
    }
    assert(0 && "unknown nemesis kind");
    return IO_EINVAL;
}

static void nemesis__undo_kind(nemesis_t *n, nemesis_kind_t kind) {
    faults_t *f = n->faults;
    assert(n->active == (int)kind);
    switch (kind) {
    case NEMESIS_CRASH:
    case NEMESIS_KILL:
    case NEMESIS_POWER_LOSS: (void)faults_restart(f, n->active_set); break;
    case NEMESIS_PAUSE: (void)faults_resume(f, n->active_set); break;
    case NEMESIS_CLOCK: (void)faults_clock(f, n->active_set, 0, 0); break;
    case NEMESIS_DISK_SLOW:
        /* only the brokers it hit, back to the base fsync latency:
         * faults_heal_disk would also drop a crash mode a scenario set */
        (void)faults_disk_fast(f, n->active_set);
        break;
    case NEMESIS_DISK_CORRUPT: break; /* corruption stays; the node repairs */
    default: (void)faults_heal_net(f); break;
    }
}

static void nemesis__schedule_next(nemesis_t *n) {
    sim_t *sim = n->faults->sim;
    assert(n->active < 0);
    const uint64_t wait = 1 + sim_prng_exponential_ns(&n->prng, n->cfg.interval_mean_ns);
    const uint64_t at = nemesis__add_ns(sim_now_ns(sim), wait);
    if (at >= n->cfg.stop_ns) return;
    (void)sim_call_at(sim, at, nemesis__tick, n);
}

static void nemesis__tick(sim_t *sim, void *arg) {
    nemesis_t *n = arg;
    if (n->step_fn != NULL) n->step_fn(n->step_arg);
    assert(n->active < 0);
    if (sim_now_ns(sim) >= n->cfg.stop_ns) return;
    /* Pick uniformly among the enabled kinds (bounded: at most KINDS draws). */
    uint32_t kinds[NEMESIS_KINDS_COUNT];
    uint32_t count = 0;
    for (uint32_t i = 0; i < NEMESIS_KINDS_COUNT; i++)
        if (n->enabled_mask & (1u << i)) kinds[count++] = i;
    assert(count > 0);
    const nemesis_kind_t kind = (nemesis_kind_t)kinds[sim_prng_below(&n->prng, count)];
    if (nemesis__apply(n, kind) != 0) {
        nemesis__schedule_next(n);
        return;
    }
    n->active = (int)kind;
    n->injected++;
    n->injected_by_kind[kind]++;
    const double k = n->intensity[kind];
    uint64_t dur = 1 + sim_prng_exponential_ns(&n->prng, nemesis__scaled(n, n->cfg.duration_mean_ns, k));
    uint64_t at = nemesis__add_ns(sim_now_ns(sim), dur);
    if (at > n->cfg.stop_ns) at = n->cfg.stop_ns;
    (void)sim_call_at(sim, at, nemesis__undo, n);
}

static void nemesis__undo(sim_t *sim, void *arg) {
    (void)sim;
    nemesis_t *n = arg;
    if (n->step_fn != NULL) n->step_fn(n->step_arg);
    assert(n->active >= 0);
    nemesis__undo_kind(n, (nemesis_kind_t)n->active);
    n->active = -1;
    nemesis__schedule_next(n);
}

void nemesis_set_step_fn(nemesis_t *n, void (*fn)(void *arg), void *arg) {
    assert(n != NULL);
    n->step_fn = fn;
    n->step_arg = arg;
}

int nemesis_start(nemesis_t *n, faults_t *faults, const nemesis_config_t *cfg) {
    if (n == NULL || faults == NULL || faults->sim == NULL || cfg == NULL)
        return IO_EINVAL;
    if ((cfg->kinds_mask & NEMESIS_KINDS_ALL) == 0) return IO_EINVAL;
    if ((cfg->kinds_mask & ~NEMESIS_KINDS_ALL) != 0) return IO_EINVAL;
    if (cfg->stop_ns <= cfg->start_ns) return IO_EINVAL;
    if (cfg->interval_mean_ns == 0 || cfg->duration_mean_ns == 0) return IO_EINVAL;
    if (cfg->interval_mean_ns > NEMESIS_MEAN_MAX_NS ||
        cfg->duration_mean_ns > NEMESIS_MEAN_MAX_NS)
        return IO_EINVAL;
    memset(n, 0, sizeof *n);
    n->faults = faults;
    n->cfg = *cfg;
    n->active = -1;
    sim_prng_init(&n->prng, sim_seed(faults->sim), SIM_STREAM_FAULTS + 0x100);
    uint32_t mask = cfg->kinds_mask & NEMESIS_KINDS_ALL;
    if (faults->brokers_count < 5) mask &= ~(1u << NEMESIS_RING);
    if (faults->brokers_count < 3) mask &= ~(1u << NEMESIS_BRIDGE);
    if (mask == 0) {
        n->faults = NULL; /* nothing scheduled: the struct stays inert */
        return IO_EINVAL;
    }
    n->enabled_mask = mask;
    for (uint32_t i = 0; i < NEMESIS_KINDS_COUNT; i++) {
        /* Draw for every kind, enabled or not, so the mask never shifts the
         * stream. */
        const int on = sim_prng_chance(&n->prng, 0.5);
        const double k = 0.25 + 0.75 * sim_prng_unit(&n->prng);
        n->intensity[i] = cfg->swarm ? k : 1.0;
        if (cfg->swarm && !on) n->enabled_mask &= ~(1u << i);
    }
    if (n->enabled_mask == 0) {
        /* Swarm drew nothing: keep one allowed kind, chosen at random. */
        uint32_t kinds[NEMESIS_KINDS_COUNT], count = 0;
        for (uint32_t i = 0; i < NEMESIS_KINDS_COUNT; i++)
            if (mask & (1u << i)) kinds[count++] = i;
        n->enabled_mask = 1u << kinds[sim_prng_below(&n->prng, count)];
    }
    char desc[256];
    nemesis_describe(n, desc, sizeof desc);
    faults_record(faults, "nemesis", "swarm", desc);
    const uint64_t first = cfg->start_ns > sim_now_ns(faults->sim) ? cfg->start_ns
                                                                     : sim_now_ns(faults->sim);
    const uint64_t wait = 1 + sim_prng_exponential_ns(&n->prng, cfg->interval_mean_ns);
    const uint64_t at = nemesis__add_ns(first, wait);
    /* A first draw past the window leaves the nemesis idle (tick returns). */
    if (at >= cfg->stop_ns) return 0;
    return sim_call_at(faults->sim, at, nemesis__tick, n);
}
