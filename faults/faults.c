/* faults/faults.c — fault injectors over the simulation kernel. */
#include "faults/faults.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static void faults__note(faults_t *f, const faults_op_t *op) {
    if (f->op_fn != NULL) f->op_fn(f->op_arg, op);
}

static bool faults__valid_set(const faults_t *f, faults_set_t set) {
    return set != 0 && (set & ~faults_all(f)) == 0;
}

int faults_init(faults_t *f, sim_t *sim, uint32_t brokers_count,
                const sim_link_config_t *base_link,
                const sim_disk_config_t *base_disk, faults_event_t *timeline,
                uint32_t timeline_cap) {
    if (f == NULL || sim == NULL || base_link == NULL || base_disk == NULL)
        return IO_EINVAL;
    if (brokers_count == 0 || brokers_count > FAULTS_BROKERS_MAX ||
        brokers_count > sim_hosts_count(sim))
        return IO_EINVAL;
    if (timeline == NULL && timeline_cap != 0) return IO_EINVAL;
    /* heal restores these, so a bad one would only fail later, mid-run. */
    if (sim_link_config_check(base_link) != 0 || base_link->blocked)
        return IO_EINVAL;
    if (sim_disk_config_check(base_disk) != 0) return IO_EINVAL;
    memset(f, 0, sizeof *f);
    f->sim = sim;
    f->brokers_count = brokers_count;
    f->base_link = *base_link;
    f->base_disk = *base_disk;
    f->timeline = timeline;
    f->timeline_cap = timeline_cap < FAULTS_TIMELINE_MAX ? timeline_cap
                                                         : FAULTS_TIMELINE_MAX;
    sim_prng_init(&f->prng, sim_seed(sim), SIM_STREAM_FAULTS);
    return 0;
}

void faults_set_leader_fn(faults_t *f, faults_leader_fn fn, void *arg) {
    assert(f != NULL);
    f->leader_fn = fn;
    f->leader_arg = arg;
}

faults_set_t faults_all(const faults_t *f) {
    assert(f->brokers_count >= 1 && f->brokers_count <= FAULTS_BROKERS_MAX);
    return (faults_set_t)((1u << f->brokers_count) - 1u);
}

faults_set_t faults_leader_set(const faults_t *f) {
    if (f->leader_fn == NULL) return 0;
    const int leader = f->leader_fn(f->leader_arg);
    if (leader < 0 || (uint32_t)leader >= f->brokers_count) return 0;
    return (faults_set_t)1u << leader;
}

faults_set_t faults_random_set(faults_t *f, uint32_t count) {
    assert(f != NULL);
    if (count > f->brokers_count) count = f->brokers_count;
    faults_set_t set = 0;
    /* Partial Fisher-Yates over broker ids: bounded, one draw per pick. */
    uint32_t ids[FAULTS_BROKERS_MAX];
    for (uint32_t i = 0; i < f->brokers_count; i++) ids[i] = i;
    for (uint32_t i = 0; i < count; i++) {
        const uint32_t j = i + (uint32_t)sim_prng_below(&f->prng, f->brokers_count - i);
        const uint32_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
        set |= 1u << ids[i];
    }
    faults__note(f, &(faults_op_t){.kind = FAULTS_OP_DRAW, .host = count});
    return set;
}

void faults_set_format(faults_set_t set, char *buf, size_t cap) {
    assert(buf != NULL && cap > 0);
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < 32 && used + 1 < cap; i++) {
        if (!(set & (1u << i))) continue;
        int n = snprintf(buf + used, cap - used, "%sn%u", used ? "," : "", i);
        if (n < 0 || (size_t)n >= cap - used) break;
        used += (size_t)n;
    }
}

void faults_record(faults_t *f, const char *kind, const char *target,
                   const char *detail) {
    assert(f != NULL && kind != NULL);
    faults_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.time_ns = sim_now_ns(f->sim);
    snprintf(ev.kind, sizeof ev.kind, "%s", kind);
    snprintf(ev.target, sizeof ev.target, "%s", target ? target : "");
    snprintf(ev.detail, sizeof ev.detail, "%s", detail ? detail : "");
    if (f->record_fn != NULL) f->record_fn(f->record_arg, &ev);
    if (f->timeline == NULL) return;
    if (f->timeline_count >= f->timeline_cap) {
        f->timeline_dropped++;
        return;
    }
    f->timeline[f->timeline_count++] = ev;
}

void faults_set_record_fn(faults_t *f, faults_record_fn fn, void *arg) {
    assert(f != NULL);
    f->record_fn = fn;
    f->record_arg = arg;
}

static void faults__record_set(faults_t *f, const char *kind, faults_set_t set,
                               const char *detail) {
    char target[24];
    faults_set_format(set, target, sizeof target);
    faults_record(f, kind, target, detail);
}

/* ---- process ------------------------------------------------------------- */

typedef int (*faults__host_op)(sim_t *, uint32_t);

/* Apply `op` to every host of `set` whose state is `want` (or, with
 * `want_up`, to every host that is not down). Others are left as they are:
 * crashing a crashed host is not an error for a nemesis. A failing host
 * (e.g. boot returned NULL) does not stop the others, so one bad node never
 * leaves the rest of a restart undone; the first error is returned and the
 * event is not recorded. */
static int faults__apply_hosts(faults_t *f, faults_set_t set, faults__host_op op,
                               sim_host_state_t want, bool want_up,
                               const char *kind) {
    assert(f != NULL && op != NULL && kind != NULL);
    if (!faults__valid_set(f, set)) return IO_EINVAL;
    int first_rc = 0;
    for (uint32_t i = 0; i < f->brokers_count; i++) {
        if (!(set & (1u << i))) continue;
        const sim_host_state_t st = sim_host_state(f->sim, i);
        if (want_up ? st == SIM_HOST_DOWN : st != want) continue;
        const int rc = op(f->sim, i);
        if (rc != 0 && first_rc == 0) first_rc = rc;
    }
    assert(first_rc <= 0);
    if (first_rc == 0) faults__record_set(f, kind, set, NULL);
    return first_rc;
}

static int faults__each(faults_t *f, faults_set_t set, faults__host_op op,
                        sim_host_state_t want, const char *kind) {
    return faults__apply_hosts(f, set, op, want, false, kind);
}

static int faults__crash_any(faults_t *f, faults_set_t set, faults__host_op op,
                             const char *kind) {
    return faults__apply_hosts(f, set, op, SIM_HOST_UP, true, kind);
}

static int faults__do_crash(faults_t *f, faults_set_t hosts) {
    return faults__crash_any(f, hosts, sim_host_crash, "crash");
}
static int faults__do_kill(faults_t *f, faults_set_t hosts) {
    return faults__crash_any(f, hosts, sim_host_kill, "kill");
}
static int faults__do_stop(faults_t *f, faults_set_t hosts) {
    return faults__crash_any(f, hosts, sim_host_stop, "stop");
}
static int faults__do_restart(faults_t *f, faults_set_t hosts) {
    return faults__each(f, hosts, sim_host_start, SIM_HOST_DOWN, "restart");
}
/* ---- client faults and disk loss ----------------------------------------------- */

static bool faults__client_host(const faults_t *f, uint32_t host) {
    return host >= f->brokers_count && host < sim_hosts_count(f->sim) && host < FAULTS_HOSTS_MAX;
}

static int faults__do_client_partition(faults_t *f, uint32_t host, faults_set_t brokers) {
    if (!faults__client_host(f, host) || !faults__valid_set(f, brokers)) return IO_EINVAL;
    for (uint32_t b = 0; b < f->brokers_count; b++) {
        if (!(brokers & ((faults_set_t)1u << b))) continue;
        int rc = sim_link_block(f->sim, host, b, true);
        if (rc == 0) rc = sim_link_block(f->sim, b, host, true);
        if (rc != 0) return rc;
    }
    char target[24], set[24];
    snprintf(target, sizeof target, "host%u", host);
    faults_set_format(brokers, set, sizeof set);
    faults_record(f, "partition_client", target, set);
    return 0;
}

static int faults__do_client_crash(faults_t *f, uint32_t host) {
    if (!faults__client_host(f, host)) return IO_EINVAL;
    if (sim_host_state(f->sim, host) != SIM_HOST_UP) return 0; /* already down */
    const int rc = sim_host_crash(f->sim, host);
    if (rc != 0) return rc;
    f->client_crashed[host] = true;
    char target[24];
    snprintf(target, sizeof target, "host%u", host);
    faults_record(f, "crash_client", target, NULL);
    return 0;
}

static int faults__do_client_restart(faults_t *f, uint32_t host) {
    if (!faults__client_host(f, host)) return IO_EINVAL;
    if (!f->client_crashed[host] || sim_host_state(f->sim, host) != SIM_HOST_DOWN) return 0;
    const int rc = sim_host_start(f->sim, host);
    if (rc != 0) return rc;
    f->client_crashed[host] = false;
    char target[24];
    snprintf(target, sizeof target, "host%u", host);
    faults_record(f, "restart_client", target, NULL);
    return 0;
}

typedef struct faults__wipe_names {
    char names[FAULTS_WIPE_FILES_MAX][64];
    uint32_t count;
    bool overflow;
} faults__wipe_names_t;

static int faults__collect_name(void *arg, const char *name, uint64_t size_bytes) {
    (void)size_bytes;
    faults__wipe_names_t *n = arg;
    if (n->count >= FAULTS_WIPE_FILES_MAX || strlen(name) >= sizeof n->names[0]) {
        n->overflow = true;
        return 0;
    }
    snprintf(n->names[n->count++], sizeof n->names[0], "%s", name);
    return 0;
}

static int faults__do_wipe(faults_t *f, faults_set_t hosts) {
    if (!faults__valid_set(f, hosts)) return IO_EINVAL;
    for (uint32_t b = 0; b < f->brokers_count; b++) {
        if (!(hosts & ((faults_set_t)1u << b))) continue;
        if (sim_host_state(f->sim, b) != SIM_HOST_DOWN) {
            const int rc = sim_host_crash(f->sim, b);
            if (rc != 0) return rc;
        }
        sim_disk_t *d = sim_host_disk(f->sim, b);
        faults__wipe_names_t names;
        memset(&names, 0, sizeof names);
        int rc = sim_disk_list(d, faults__collect_name, &names);
        if (rc == 0 && names.overflow) rc = IO_ENOSPC;
        for (uint32_t i = 0; rc == 0 && i < names.count; i++) rc = sim_disk_remove(d, names.names[i]);
        if (rc == 0) rc = sim_host_start(f->sim, b);
        if (rc != 0) return rc;
        char target[24], detail[FAULTS_DETAIL_MAX];
        snprintf(target, sizeof target, "n%u", b);
        snprintf(detail, sizeof detail, "disk destroyed (%u files), restarted empty", names.count);
        faults_record(f, "wipe", target, detail);
    }
    return 0;
}

static int faults__do_pause(faults_t *f, faults_set_t hosts) {
    return faults__each(f, hosts, sim_host_pause, SIM_HOST_UP, "pause");
}
static int faults__do_resume(faults_t *f, faults_set_t hosts) {
    return faults__each(f, hosts, sim_host_resume, SIM_HOST_PAUSED, "resume");
}
static int faults__do_power_loss(faults_t *f) {
    return faults__crash_any(f, faults_all(f), sim_host_crash, "power_loss");
}

static int faults__do_clock(faults_t *f, faults_set_t hosts, int64_t offset_ns,
                 int32_t drift_ppm) {
    if (!faults__valid_set(f, hosts)) return IO_EINVAL;
    if (drift_ppm < -100000 || drift_ppm > 100000) return IO_EINVAL;
    for (uint32_t i = 0; i < f->brokers_count; i++) {
        if (!(hosts & (1u << i))) continue;
        const int rc = sim_host_set_clock(f->sim, i, offset_ns, drift_ppm);
        if (rc != 0) return rc;
    }
    char detail[64];
    snprintf(detail, sizeof detail, "offset_ns=%lld drift_ppm=%d",
             (long long)offset_ns, (int)drift_ppm);
    faults__record_set(f, "clock", hosts, detail);
    return 0;
}

/* ---- partitions ----------------------------------------------------------- */

/* Block a->b for every broker pair where cut(a, b) says so. */
typedef bool (*faults__cut_fn)(const faults_t *f, uint32_t a, uint32_t b,
                               const void *arg);

static void faults__partition(faults_t *f, faults__cut_fn cut, const void *arg) {
    for (uint32_t a = 0; a < f->brokers_count; a++)
        for (uint32_t b = 0; b < f->brokers_count; b++)
            if (a != b && cut(f, a, b, arg))
                (void)sim_link_block(f->sim, a, b, true);
}

static bool faults__cut_across(const faults_t *f, uint32_t a, uint32_t b,
                               const void *arg) {
    (void)f;
    const faults_set_t side = *(const faults_set_t *)arg;
    return ((side >> a) & 1u) != ((side >> b) & 1u);
}

static int faults__do_isolate(faults_t *f, faults_set_t hosts) {
    if (!faults__valid_set(f, hosts)) return IO_EINVAL;
    /* Each isolated host is alone: cut it from everyone, including the
     * other isolated hosts. */
    for (uint32_t i = 0; i < f->brokers_count; i++) {
        if (!(hosts & (1u << i))) continue;
        const faults_set_t one = 1u << i;
        faults__partition(f, faults__cut_across, &one);
    }
    faults__record_set(f, "isolate", hosts, NULL);
    return 0;
}

static int faults__do_split(faults_t *f, faults_set_t side) {
    if (!faults__valid_set(f, side) || side == faults_all(f)) return IO_EINVAL;
    faults__partition(f, faults__cut_across, &side);
    char other[24];
    faults_set_format(faults_all(f) & ~side, other, sizeof other);
    faults__record_set(f, "split", side, other);
    return 0;
}

typedef struct faults__bridge_arg {
    faults_set_t side_a;
    uint32_t bridge;
} faults__bridge_arg_t;

static bool faults__cut_bridge(const faults_t *f, uint32_t a, uint32_t b,
                               const void *arg) {
    (void)f;
    const faults__bridge_arg_t *x = arg;
    if (a == x->bridge || b == x->bridge) return false;
    return ((x->side_a >> a) & 1u) != ((x->side_a >> b) & 1u);
}

static int faults__do_bridge(faults_t *f, faults_set_t side_a, uint32_t bridge) {
    if (!faults__valid_set(f, side_a) || bridge >= f->brokers_count)
        return IO_EINVAL;
    faults__bridge_arg_t arg = {side_a & ~(1u << bridge), bridge};
    if (arg.side_a == 0 || (faults_all(f) & ~arg.side_a & ~(1u << bridge)) == 0)
        return IO_EINVAL;
    faults__partition(f, faults__cut_bridge, &arg);
    char detail[32];
    snprintf(detail, sizeof detail, "bridge=n%u", bridge);
    faults__record_set(f, "bridge", arg.side_a, detail);
    return 0;
}

static int faults__do_one_way(faults_t *f, faults_set_t from, faults_set_t to) {
    if (!faults__valid_set(f, from) || !faults__valid_set(f, to)) return IO_EINVAL;
    for (uint32_t a = 0; a < f->brokers_count; a++)
        for (uint32_t b = 0; b < f->brokers_count; b++)
            if (a != b && (from & (1u << a)) && (to & (1u << b)))
                (void)sim_link_block(f->sim, a, b, true);
    char detail[32];
    faults_set_format(to, detail, sizeof detail);
    faults__record_set(f, "one_way", from, detail);
    return 0;
}

static bool faults__cut_ring(const faults_t *f, uint32_t a, uint32_t b,
                             const void *arg) {
    (void)arg;
    const uint32_t n = f->brokers_count;
    /* Each node keeps its ring neighbours within distance k, with 2k+1 just
     * reaching a majority (n/2+1): n=5 -> k=1, n=7 -> k=2. */
    const uint32_t k = (n / 2 + 1) / 2;
    const uint32_t d = a > b ? a - b : b - a;
    const uint32_t ring = d < n - d ? d : n - d;
    return ring > k;
}

static int faults__do_ring(faults_t *f) {
    if (f->brokers_count < 5) return IO_EINVAL; /* needs 5+ to differ from a split */
    faults__partition(f, faults__cut_ring, NULL);
    faults__record_set(f, "ring", faults_all(f), NULL);
    return 0;
}

static int faults__do_heal_net(faults_t *f) {
    assert(f != NULL);
    sim_net_heal(f->sim);
    const int rc = sim_link_configure(f->sim, SIM_ANY, SIM_ANY, &f->base_link);
    if (rc != 0) return rc;
    faults_record(f, "heal_net", "all", NULL);
    return 0;
}

/* ---- link faults ------------------------------------------------------------ */

static int faults__do_links(faults_t *f, faults_set_t hosts, const faults_link_spec_t *spec) {
    if (!faults__valid_set(f, hosts) || spec == NULL) return IO_EINVAL;
    /* A wrapped sum would pass the kernel's range check as a tiny latency. */
    if (spec->extra_latency_ns > UINT64_MAX - f->base_link.latency.base_ns)
        return IO_EINVAL;
    sim_link_config_t cfg = f->base_link;
    cfg.loss = spec->loss;
    cfg.duplicate = spec->duplicate;
    cfg.reorder = spec->reorder;
    cfg.corrupt = spec->corrupt;
    cfg.reorder_window_ns = spec->reorder_window_ns;
    cfg.latency.base_ns += spec->extra_latency_ns;
    if (sim_link_config_check(&cfg) != 0) return IO_EINVAL;
    const uint32_t hosts_count = sim_hosts_count(f->sim);
    for (uint32_t a = 0; a < f->brokers_count; a++) {
        if (!(hosts & (1u << a))) continue;
        for (uint32_t b = 0; b < hosts_count; b++) {
            if (a == b || (spec->brokers_only && b >= f->brokers_count)) continue;
            sim_link_config_t cur;
            /* Keep partitions that are in force. */
            (void)sim_link_get_config(f->sim, a, b, &cur);
            cfg.blocked = cur.blocked;
            (void)sim_link_configure(f->sim, a, b, &cfg);
            (void)sim_link_get_config(f->sim, b, a, &cur);
            cfg.blocked = cur.blocked;
            (void)sim_link_configure(f->sim, b, a, &cfg);
        }
    }
    char detail[FAULTS_DETAIL_MAX];
    snprintf(detail, sizeof detail,
             "loss=%.3f dup=%.3f reorder=%.3f corrupt=%.3f extra_latency_ns=%llu",
             spec->loss, spec->duplicate, spec->reorder, spec->corrupt,
             (unsigned long long)spec->extra_latency_ns);
    faults__record_set(f, "links", hosts, detail);
    return 0;
}

static int faults__do_clog(faults_t *f, faults_set_t hosts, uint64_t duration_ns) {
    if (!faults__valid_set(f, hosts) || duration_ns == 0) return IO_EINVAL;
    /* The kernel bounds a clog's length. Every call below asks for the same
     * duration, so only the first can be refused, before anything changed. */
    for (uint32_t a = 0; a < f->brokers_count; a++) {
        if (!(hosts & (1u << a))) continue;
        for (uint32_t b = 0; b < f->brokers_count; b++) {
            if (a == b) continue;
            int rc = sim_link_clog(f->sim, a, b, duration_ns);
            if (rc != 0) return rc;
            rc = sim_link_clog(f->sim, b, a, duration_ns);
            assert(rc == 0);
        }
    }
    char detail[48];
    snprintf(detail, sizeof detail, "duration_ns=%llu", (unsigned long long)duration_ns);
    faults__record_set(f, "clog", hosts, detail);
    return 0;
}

/* ---- disk ------------------------------------------------------------------- */

typedef int (*faults__disk_fn)(faults_t *f, sim_disk_t *d, const void *arg);

static int faults__each_disk(faults_t *f, faults_set_t hosts,
                             faults__disk_fn fn, const void *arg) {
    if (!faults__valid_set(f, hosts)) return IO_EINVAL;
    for (uint32_t i = 0; i < f->brokers_count; i++) {
        if (!(hosts & (1u << i))) continue;
        sim_disk_t *d = sim_host_disk(f->sim, i);
        assert(d != NULL);
        const int rc = fn(f, d, arg);
        if (rc != 0) return rc;
    }
    return 0;
}

typedef struct faults__crash_mode {
    sim_disk_crash_mode_t mode;
    double p;
} faults__crash_mode_t;

static int faults__set_crash_mode(faults_t *f, sim_disk_t *d, const void *arg) {
    (void)f;
    const faults__crash_mode_t *m = arg;
    sim_disk_config_t cfg = *sim_disk_get_config(d);
    cfg.crash_mode = m->mode;
    cfg.crash_keep_probability = m->p;
    return sim_disk_configure(d, &cfg);
}

static int faults__do_disk_crash_mode(faults_t *f, faults_set_t hosts,
                           sim_disk_crash_mode_t mode, double keep_probability) {
    if (!(keep_probability >= 0.0 && keep_probability <= 1.0)) return IO_EINVAL;
    if (mode != SIM_DISK_CRASH_LOSE && mode != SIM_DISK_CRASH_KEEP &&
        mode != SIM_DISK_CRASH_TORN)
        return IO_EINVAL;
    const faults__crash_mode_t m = {mode, keep_probability};
    const int rc = faults__each_disk(f, hosts, faults__set_crash_mode, &m);
    if (rc != 0) return rc;
    static const char *const names[] = {"lose", "keep", "torn"};
    char detail[48];
    snprintf(detail, sizeof detail, "mode=%s keep=%.2f", names[mode], keep_probability);
    faults__record_set(f, "disk_crash_mode", hosts, detail);
    return 0;
}

/* Files a disk fault touches per disk: the first ones in name order. It
 * matches SIM_DISK_READ_ERRORS_MAX, the kernel's bound on error ranges. */
#define FAULTS__FILES_MAX 64u

/* Collect the non-empty file names matching a prefix. */
typedef struct faults__names {
    const char *prefix;
    uint32_t count;
    char names[FAULTS__FILES_MAX][IO_FILE_NAME_MAX + 1];
} faults__names_t;

static int faults__collect(void *arg, const char *name, uint64_t size_bytes) {
    faults__names_t *n = arg;
    assert(n != NULL && name != NULL);
    if (size_bytes == 0) return 0;
    if (n->prefix && strncmp(name, n->prefix, strlen(n->prefix)) != 0) return 0;
    if (n->count >= FAULTS__FILES_MAX) return 1;
    snprintf(n->names[n->count++], IO_FILE_NAME_MAX + 1, "%s", name);
    return 0;
}

typedef struct faults__corrupt_arg {
    const char *prefix;
    uint32_t bits;
} faults__corrupt_arg_t;

static int faults__corrupt_one(faults_t *f, sim_disk_t *d, const void *arg) {
    const faults__corrupt_arg_t *c = arg;
    faults__names_t names = {.prefix = c->prefix};
    (void)sim_disk_list(d, faults__collect, &names);
    if (names.count == 0) return 0;
    /* Spread the flips over the matching files, one file per draw. */
    for (uint32_t i = 0; i < c->bits; i++) {
        const uint32_t k = (uint32_t)sim_prng_below(&f->prng, names.count);
        (void)sim_disk_corrupt(d, names.names[k], 0, UINT64_MAX, 1, &f->prng);
    }
    return 0;
}

static int faults__do_disk_corrupt(faults_t *f, faults_set_t hosts, const char *prefix,
                        uint32_t bits) {
    if (bits == 0 || bits > 1u << 20) return IO_EINVAL;
    const faults__corrupt_arg_t arg = {(prefix && *prefix) ? prefix : NULL, bits};
    const int rc = faults__each_disk(f, hosts, faults__corrupt_one, &arg);
    if (rc != 0) return rc;
    char detail[FAULTS_DETAIL_MAX];
    snprintf(detail, sizeof detail, "files=%s* bits=%u", arg.prefix ? arg.prefix : "", bits);
    faults__record_set(f, "disk_corrupt", hosts, detail);
    return 0;
}

static int faults__read_errors_one(faults_t *f, sim_disk_t *d, const void *arg) {
    (void)f;
    faults__names_t names = {.prefix = arg};
    (void)sim_disk_list(d, faults__collect, &names);
    for (uint32_t i = 0; i < names.count; i++) {
        const int rc = sim_disk_add_read_error(d, names.names[i], 0, UINT64_MAX / 2);
        if (rc != 0) return rc;
    }
    return 0;
}

static int faults__do_disk_read_errors(faults_t *f, faults_set_t hosts, const char *prefix) {
    const char *p = (prefix && *prefix) ? prefix : NULL;
    const int rc = faults__each_disk(f, hosts, faults__read_errors_one, p);
    if (rc != 0) return rc;
    faults__record_set(f, "disk_read_errors", hosts, p ? p : "*");
    return 0;
}

static int faults__full_one(faults_t *f, sim_disk_t *d, const void *arg) {
    const bool full = *(const bool *)arg;
    sim_disk_config_t cfg = *sim_disk_get_config(d);
    /* Full = capacity pinned at what is used now, so every write that grows
     * the disk fails and overwrites in place still work. Capacity 0 means
     * unlimited to the disk, so an empty disk is pinned at 1 byte: the one
     * case where a (single-byte) growing write still fits. */
    const uint64_t used = sim_disk_stats(d)->used_bytes;
    cfg.capacity_bytes = full ? (used > 0 ? used : 1) : f->base_disk.capacity_bytes;
    assert(!full || cfg.capacity_bytes >= 1);
    return sim_disk_configure(d, &cfg);
}

static int faults__do_disk_full(faults_t *f, faults_set_t hosts, bool full) {
    const int rc = faults__each_disk(f, hosts, faults__full_one, &full);
    if (rc != 0) return rc;
    faults__record_set(f, "disk_full", hosts, full ? "on" : "off");
    return 0;
}

static int faults__slow_one(faults_t *f, sim_disk_t *d, const void *arg) {
    (void)f;
    sim_disk_config_t cfg = *sim_disk_get_config(d);
    cfg.fsync_latency.kind = SIM_DIST_EXPONENTIAL;
    cfg.fsync_latency.base_ns = *(const uint64_t *)arg;
    cfg.fsync_latency.spread_ns = *(const uint64_t *)arg / 2;
    return sim_disk_configure(d, &cfg);
}

static int faults__do_disk_slow(faults_t *f, faults_set_t hosts, uint64_t fsync_latency_ns) {
    if (fsync_latency_ns == 0 || fsync_latency_ns > UINT64_C(60000000000)) return IO_EINVAL;
    const int rc = faults__each_disk(f, hosts, faults__slow_one, &fsync_latency_ns);
    if (rc != 0) return rc;
    char detail[48];
    snprintf(detail, sizeof detail, "fsync_ns=%llu", (unsigned long long)fsync_latency_ns);
    faults__record_set(f, "disk_slow", hosts, detail);
    return 0;
}

static int faults__heal_disk_one(faults_t *f, sim_disk_t *d, const void *arg) {
    (void)arg;
    sim_disk_clear_read_errors(d);
    return sim_disk_configure(d, &f->base_disk);
}

static int faults__do_heal_disk(faults_t *f) {
    const int rc = faults__each_disk(f, faults_all(f), faults__heal_disk_one, NULL);
    if (rc != 0) return rc;
    faults_record(f, "heal_disk", "all", NULL);
    return 0;
}

int faults_heal_all(faults_t *f) {
    assert(f != NULL && f->sim != NULL);
    int rc = faults_heal_net(f);
    const int disk_rc = faults_heal_disk(f);
    if (rc == 0) rc = disk_rc;
    /* One broker failing to boot must not keep the others down. */
    for (uint32_t i = 0; i < f->brokers_count; i++) {
        int host_rc = sim_host_set_clock(f->sim, i, 0, 0);
        const sim_host_state_t st = sim_host_state(f->sim, i);
        if (st == SIM_HOST_PAUSED && host_rc == 0) host_rc = sim_host_resume(f->sim, i);
        else if (st == SIM_HOST_DOWN && host_rc == 0) host_rc = sim_host_start(f->sim, i);
        if (rc == 0) rc = host_rc;
    }
    /* Clients crashed by a scenario come back too: heal clears every fault. */
    for (uint32_t h = f->brokers_count; h < FAULTS_HOSTS_MAX && h < sim_hosts_count(f->sim); h++) {
        const int client_rc = faults_client_restart(f, h);
        if (rc == 0) rc = client_rc;
    }
    assert(rc <= 0);
    if (rc == 0) faults_record(f, "heal", "all", "every broker up");
    return rc;
}

/* ---- the schedule: every injector notes its op when it succeeded -------------- */

static int faults__disk_fast_one(faults_t *f, sim_disk_t *d, const void *arg) {
    (void)arg;
    sim_disk_config_t cfg = *sim_disk_get_config(d);
    cfg.fsync_latency = f->base_disk.fsync_latency;
    return sim_disk_configure(d, &cfg);
}

static int faults__do_disk_fast(faults_t *f, faults_set_t hosts) {
    const int rc = faults__each_disk(f, hosts, faults__disk_fast_one, NULL);
    if (rc != 0) return rc;
    faults__record_set(f, "disk_slow", hosts, "off");
    return 0;
}

static int faults__noted(faults_t *f, int rc, const faults_op_t *op) {
    if (rc == 0) faults__note(f, op);
    return rc;
}

#define FAULTS__OP(f, call, ...) faults__noted((f), (call), &(faults_op_t){__VA_ARGS__})

int faults_crash(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_crash(f, hosts), .kind = FAULTS_OP_CRASH, .set = hosts);
}
int faults_kill(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_kill(f, hosts), .kind = FAULTS_OP_KILL, .set = hosts);
}
int faults_stop(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_stop(f, hosts), .kind = FAULTS_OP_STOP, .set = hosts);
}
int faults_restart(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_restart(f, hosts), .kind = FAULTS_OP_RESTART, .set = hosts);
}
int faults_pause(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_pause(f, hosts), .kind = FAULTS_OP_PAUSE, .set = hosts);
}
int faults_resume(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_resume(f, hosts), .kind = FAULTS_OP_RESUME, .set = hosts);
}
int faults_power_loss(faults_t *f) {
    return FAULTS__OP(f, faults__do_power_loss(f), .kind = FAULTS_OP_POWER_LOSS);
}
int faults_clock(faults_t *f, faults_set_t hosts, int64_t offset_ns, int32_t drift_ppm) {
    return FAULTS__OP(f, faults__do_clock(f, hosts, offset_ns, drift_ppm), .kind = FAULTS_OP_CLOCK,
                      .set = hosts, .offset_ns = offset_ns, .drift_ppm = drift_ppm);
}
int faults_isolate(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_isolate(f, hosts), .kind = FAULTS_OP_ISOLATE, .set = hosts);
}
int faults_split(faults_t *f, faults_set_t side) {
    return FAULTS__OP(f, faults__do_split(f, side), .kind = FAULTS_OP_SPLIT, .set = side);
}
int faults_bridge(faults_t *f, faults_set_t side_a, uint32_t bridge) {
    return FAULTS__OP(f, faults__do_bridge(f, side_a, bridge), .kind = FAULTS_OP_BRIDGE,
                      .set = side_a, .host = bridge);
}
int faults_one_way(faults_t *f, faults_set_t from, faults_set_t to) {
    return FAULTS__OP(f, faults__do_one_way(f, from, to), .kind = FAULTS_OP_ONE_WAY, .set = from,
                      .to = to);
}
int faults_ring(faults_t *f) {
    return FAULTS__OP(f, faults__do_ring(f), .kind = FAULTS_OP_RING);
}
int faults_heal_net(faults_t *f) {
    return FAULTS__OP(f, faults__do_heal_net(f), .kind = FAULTS_OP_HEAL_NET);
}
int faults_client_partition(faults_t *f, uint32_t host, faults_set_t brokers) {
    return FAULTS__OP(f, faults__do_client_partition(f, host, brokers),
                      .kind = FAULTS_OP_CLIENT_PARTITION, .host = host, .set = brokers);
}
int faults_client_crash(faults_t *f, uint32_t host) {
    return FAULTS__OP(f, faults__do_client_crash(f, host), .kind = FAULTS_OP_CLIENT_CRASH,
                      .host = host);
}
int faults_client_restart(faults_t *f, uint32_t host) {
    return FAULTS__OP(f, faults__do_client_restart(f, host), .kind = FAULTS_OP_CLIENT_RESTART,
                      .host = host);
}
int faults_wipe(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_wipe(f, hosts), .kind = FAULTS_OP_WIPE, .set = hosts);
}
int faults_links(faults_t *f, faults_set_t hosts, const faults_link_spec_t *spec) {
    faults_op_t op = {.kind = FAULTS_OP_LINKS, .set = hosts};
    if (spec != NULL) {
        op.link.loss = spec->loss, op.link.duplicate = spec->duplicate;
        op.link.reorder = spec->reorder, op.link.corrupt = spec->corrupt;
        op.link.extra_latency_ns = spec->extra_latency_ns;
        op.link.reorder_window_ns = spec->reorder_window_ns;
        op.link.brokers_only = spec->brokers_only;
    }
    return faults__noted(f, faults__do_links(f, hosts, spec), &op);
}
int faults_clog(faults_t *f, faults_set_t hosts, uint64_t duration_ns) {
    return FAULTS__OP(f, faults__do_clog(f, hosts, duration_ns), .kind = FAULTS_OP_CLOG,
                      .set = hosts, .duration_ns = duration_ns);
}
int faults_disk_crash_mode(faults_t *f, faults_set_t hosts, sim_disk_crash_mode_t mode,
                           double keep_probability) {
    return FAULTS__OP(f, faults__do_disk_crash_mode(f, hosts, mode, keep_probability),
                      .kind = FAULTS_OP_DISK_CRASH_MODE, .set = hosts, .host = (uint32_t)mode,
                      .keep_probability = keep_probability);
}

static void faults__op_prefix(faults_op_t *op, const char *prefix) {
    snprintf(op->prefix, sizeof op->prefix, "%s", prefix != NULL ? prefix : "");
}

int faults_disk_corrupt(faults_t *f, faults_set_t hosts, const char *prefix, uint32_t bits) {
    faults_op_t op = {.kind = FAULTS_OP_DISK_CORRUPT, .set = hosts, .host = bits};
    faults__op_prefix(&op, prefix);
    return faults__noted(f, faults__do_disk_corrupt(f, hosts, prefix, bits), &op);
}
int faults_disk_read_errors(faults_t *f, faults_set_t hosts, const char *prefix) {
    faults_op_t op = {.kind = FAULTS_OP_DISK_READ_ERRORS, .set = hosts};
    faults__op_prefix(&op, prefix);
    return faults__noted(f, faults__do_disk_read_errors(f, hosts, prefix), &op);
}
int faults_disk_full(faults_t *f, faults_set_t hosts, bool full) {
    return FAULTS__OP(f, faults__do_disk_full(f, hosts, full), .kind = FAULTS_OP_DISK_FULL,
                      .set = hosts, .full = full);
}
int faults_disk_slow(faults_t *f, faults_set_t hosts, uint64_t fsync_latency_ns) {
    return FAULTS__OP(f, faults__do_disk_slow(f, hosts, fsync_latency_ns),
                      .kind = FAULTS_OP_DISK_SLOW, .set = hosts, .duration_ns = fsync_latency_ns);
}
int faults_disk_fast(faults_t *f, faults_set_t hosts) {
    return FAULTS__OP(f, faults__do_disk_fast(f, hosts), .kind = FAULTS_OP_DISK_FAST, .set = hosts);
}
int faults_heal_disk(faults_t *f) {
    return FAULTS__OP(f, faults__do_heal_disk(f), .kind = FAULTS_OP_HEAL_DISK);
}

void faults_set_op_fn(faults_t *f, faults_op_fn fn, void *arg) {
    assert(f != NULL);
    f->op_fn = fn;
    f->op_arg = arg;
}

static const char *const faults__op_names[FAULTS_OP_KINDS_COUNT] = {
    "random_nodes", "crash", "kill", "stop", "restart", "pause", "resume", "power_loss",
    "clock", "isolate", "split", "bridge", "one_way", "ring", "heal", "partition_client",
    "crash_client", "restart_client", "wipe", "links", "clog", "disk_crash_mode",
    "disk_corrupt", "disk_read_errors", "disk_full", "disk_slow", "disk_fast", "heal_disk",
};

const char *faults_op_name(faults_op_kind_t kind) {
    return (unsigned)kind < FAULTS_OP_KINDS_COUNT ? faults__op_names[kind] : "?";
}

int faults_apply_op(faults_t *f, const faults_op_t *op) {
    assert(f != NULL && op != NULL);
    const faults_link_spec_t spec = {
        .loss = op->link.loss, .duplicate = op->link.duplicate, .reorder = op->link.reorder,
        .corrupt = op->link.corrupt, .extra_latency_ns = op->link.extra_latency_ns,
        .reorder_window_ns = op->link.reorder_window_ns, .brokers_only = op->link.brokers_only};
    switch (op->kind) {
    case FAULTS_OP_DRAW: (void)faults_random_set(f, op->host); return 0;
    case FAULTS_OP_CRASH: return faults_crash(f, op->set);
    case FAULTS_OP_KILL: return faults_kill(f, op->set);
    case FAULTS_OP_STOP: return faults_stop(f, op->set);
    case FAULTS_OP_RESTART: return faults_restart(f, op->set);
    case FAULTS_OP_PAUSE: return faults_pause(f, op->set);
    case FAULTS_OP_RESUME: return faults_resume(f, op->set);
    case FAULTS_OP_POWER_LOSS: return faults_power_loss(f);
    case FAULTS_OP_CLOCK: return faults_clock(f, op->set, op->offset_ns, op->drift_ppm);
    case FAULTS_OP_ISOLATE: return faults_isolate(f, op->set);
    case FAULTS_OP_SPLIT: return faults_split(f, op->set);
    case FAULTS_OP_BRIDGE: return faults_bridge(f, op->set, op->host);
    case FAULTS_OP_ONE_WAY: return faults_one_way(f, op->set, op->to);
    case FAULTS_OP_RING: return faults_ring(f);
    case FAULTS_OP_HEAL_NET: return faults_heal_net(f);
    case FAULTS_OP_CLIENT_PARTITION: return faults_client_partition(f, op->host, op->set);
    case FAULTS_OP_CLIENT_CRASH: return faults_client_crash(f, op->host);
    case FAULTS_OP_CLIENT_RESTART: return faults_client_restart(f, op->host);
    case FAULTS_OP_WIPE: return faults_wipe(f, op->set);
    case FAULTS_OP_LINKS: return faults_links(f, op->set, &spec);
    case FAULTS_OP_CLOG: return faults_clog(f, op->set, op->duration_ns);
    case FAULTS_OP_DISK_CRASH_MODE:
        return faults_disk_crash_mode(f, op->set, (sim_disk_crash_mode_t)op->host,
                                      op->keep_probability);
    case FAULTS_OP_DISK_CORRUPT: return faults_disk_corrupt(f, op->set, op->prefix, op->host);
    case FAULTS_OP_DISK_READ_ERRORS: return faults_disk_read_errors(f, op->set, op->prefix);
    case FAULTS_OP_DISK_FULL: return faults_disk_full(f, op->set, op->full);
    case FAULTS_OP_DISK_SLOW: return faults_disk_slow(f, op->set, op->duration_ns);
    case FAULTS_OP_DISK_FAST: return faults_disk_fast(f, op->set);
    case FAULTS_OP_HEAL_DISK: return faults_heal_disk(f);
    case FAULTS_OP_KINDS_COUNT: break;
    }
    return IO_EINVAL;
}
