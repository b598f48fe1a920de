/*
 * sim/sim.c — the deterministic simulation kernel: virtual time, the event
 * loop, hosts (lifecycle, clocks, timers, disk operations) and the io_t
 * method table the broker core runs on. The network lives in sim/net.c.
 *
 * Determinism notes:
 *   - the heap orders by (time_ns, seq); seq is a counter, never a pointer;
 *   - stale events (timers re-armed or cancelled, disk ops of a crashed
 *     incarnation) stay in the heap and are skipped when popped: cheaper than
 *     deleting from the middle and exactly as deterministic;
 *   - callback pointers are never hashed (ASLR would change them per run).
 */
#include "sim/sim.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/crc32c.h"
#include "sim/hash.h"
#include "sim/heap.h"
#include "sim/kernel_internal.h"

__extension__ typedef __int128 sim__i128;

/* ---- hashing and observation ------------------------------------------ */

void sim__record(sim_t *sim, uint32_t host, uint32_t code, uint64_t a,
                 uint64_t b, const void *bytes, size_t len) {
    uint64_t h = sim->trace_hash;
    h = sim__hash_word(h, sim->now_ns);
    h = sim__hash_word(h, ((uint64_t)code << 32) | host);
    h = sim__hash_word(h, a);
    h = sim__hash_word(h, b);
    /* Contents go in as their CRC32C (the SSE4.2 instruction where the CPU
     * has it): a word-by-word mix of every message was 5% of a saturated
     * run, and 32 bits per message still make any divergence show. */
    if (bytes != NULL) h = sim__hash_word(h, (uint64_t)crc32c(bytes, len) << 32 | (uint32_t)len);
    sim->trace_hash = h;
}

void sim__observe(sim_t *sim, uint32_t host, const char *kind,
                  const char *fmt, ...) {
    if (sim->observer == NULL) return;
    char detail[SIM__DETAIL_MAX];
    detail[0] = '\0';
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
    }
    sim->observer(sim->observer_arg, sim->now_ns, host, kind,
                  fmt != NULL ? detail : NULL);
}

const uint8_t *sim_observed_bytes(const sim_t *sim, size_t *len) {
    assert(sim != NULL && len != NULL);
    *len = sim->observed_len;
    return sim->observed_bytes;
}

void sim_set_observer(sim_t *sim, sim_observer_t fn, void *arg) {
    assert(sim != NULL);
    sim->observer = fn;
    sim->observer_arg = arg;
}

/* ---- scheduling ------------------------------------------------------- */

int sim__schedule(sim_t *sim, sim__event_t *ev, int fresh) {
    assert(ev->time_ns >= sim->now_ns);
    assert(ev->kind >= SIM__EV_CALL && ev->kind <= SIM__EV_CLOG);
    if (fresh && sim->events_pending >= SIM__EVENTS_MAX) return IO_ENOMEM;
    int rc = sim__heap_reserve(&sim->heap);
    if (rc != 0) return rc;
    ev->seq = sim->seq++;
    sim__heap_push(&sim->heap, ev);
    sim->events_pending++;
    return 0;
}

void sim__reschedule(sim_t *sim, const sim__event_t *ev) {
    assert(ev->time_ns == sim->now_ns);
    assert(sim->seq_front < SIM__SEQ_NORMAL_BASE);
    if (sim__heap_reserve(&sim->heap) != 0) abort(); /* out of memory mid-run */
    sim__event_t copy = *ev;
    copy.seq = sim->seq_front++;
    sim__heap_push(&sim->heap, &copy);
    sim->events_pending++;
}

int sim__held_push(sim_t *sim, sim__held_t *q, const sim__event_t *ev) {
    assert(q->count <= q->capacity);
    if (q->count == q->capacity) {
        uint32_t cap = q->capacity ? q->capacity * 2 : 64u;
        sim__event_t *items = realloc(q->items, (size_t)cap * sizeof(*items));
        if (items == NULL) return IO_ENOMEM;
        q->items = items;
        q->capacity = cap;
    }
    q->items[q->count++] = *ev;
    sim->events_pending++;
    return 0;
}

int sim_call_at(sim_t *sim, uint64_t time_ns, sim_callback_t cb, void *arg) {
    if (sim == NULL || cb == NULL || time_ns < sim->now_ns) return IO_EINVAL;
    sim__event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ns = time_ns;
    ev.kind = SIM__EV_CALL;
    ev.host = SIM_ANY;
    ev.u.call.cb = cb;
    ev.u.call.arg = arg;
    return sim__schedule(sim, &ev, 1);
}

/* ---- message slab ----------------------------------------------------- */

uint8_t *sim__msg_alloc(sim_t *sim, size_t len) {
    if (len > SIM__SLAB_BLOCK_BYTES) return malloc(len);
    sim__slab_block_t *b = sim->slab_free;
    if (b != NULL) {
        sim->slab_free = b->next;
        sim->slab_free_count--;
        return (uint8_t *)b;
    }
    return malloc(SIM__SLAB_BLOCK_BYTES);
}

void sim__msg_free(sim_t *sim, uint8_t *bytes, size_t len) {
    if (bytes == NULL) return;
    if (len > SIM__SLAB_BLOCK_BYTES || sim->slab_free_count >= SIM__SLAB_FREE_MAX) {
        free(bytes);
        return;
    }
    sim__slab_block_t *b = (sim__slab_block_t *)(void *)bytes;
    b->next = sim->slab_free;
    sim->slab_free = b;
    sim->slab_free_count++;
}

static void sim__disk_op_free(sim__disk_op_t *op) {
    if (op == NULL) return;
    free(op->bytes);
    free(op);
}

void sim__event_discard(sim_t *sim, sim__event_t *ev, int count_drop) {
    switch ((sim__event_kind_t)ev->kind) {
    case SIM__EV_MSG:
        if (count_drop) {
            sim__link_t *l = sim__link_at(sim, ev->u.msg.from, ev->host);
            assert(l->stats.in_flight > 0);
            l->stats.in_flight--;
            l->stats.dropped_down++;
        }
        sim__msg_free(sim, ev->u.msg.bytes, ev->u.msg.len);
        ev->u.msg.bytes = NULL;
        break;
    case SIM__EV_DISK:
        sim__disk_op_free(ev->u.disk.op);
        ev->u.disk.op = NULL;
        break;
    case SIM__EV_CALL:
    case SIM__EV_TIMER:
    case SIM__EV_CLOG:
        break;
    }
}

/* ---- clock model ------------------------------------------------------ */

static sim__i128 sim__floor_div(sim__i128 a, sim__i128 b) {
    assert(b > 0);
    sim__i128 q = a / b;
    if (a % b != 0 && a < 0) q--;
    return q;
}

static uint64_t sim__clamp_u64(sim__i128 v) {
    if (v < 0) return 0;
    if (v > (sim__i128)UINT64_MAX) return UINT64_MAX;
    return (uint64_t)v;
}

/* offset + g + floor(g * drift / 1e6), clamped to [0, UINT64_MAX]. Strictly
 * increasing in g because |drift| <= 1e5 ppm. */
static uint64_t sim__clock_raw(const sim__host_t *h, uint64_t g) {
    sim__i128 drift = sim__floor_div((sim__i128)g * h->drift_ppm, 1000000);
    return sim__clamp_u64((sim__i128)h->offset_ns + (sim__i128)g + drift);
}

static uint64_t sim__clock_local(const sim__host_t *h, uint64_t g) {
    uint64_t raw = sim__clock_raw(h, g);
    return raw > h->clock_floor_ns ? raw : h->clock_floor_ns;
}

/* The first global time >= now at which the host's clock reads >= deadline. */
static uint64_t sim__clock_global_for(const sim__host_t *h, uint64_t now_ns,
                                      uint64_t deadline_ns) {
    if (sim__clock_local(h, now_ns) >= deadline_ns) return now_ns;
    /* deadline > floor here, so only raw matters. Invert, then fix the
     * rounding by stepping (at most a couple of ns either way). */
    sim__i128 num = ((sim__i128)deadline_ns - h->offset_ns) * 1000000;
    sim__i128 den = 1000000 + (sim__i128)h->drift_ppm;
    sim__i128 g = -sim__floor_div(-num, den); /* ceil */
    if (g < (sim__i128)now_ns) g = now_ns;
    if (g >= (sim__i128)UINT64_MAX) return UINT64_MAX;
    uint64_t t = (uint64_t)g;
    for (int i = 0; i < 64 && sim__clock_raw(h, t) < deadline_ns; i++) t++;
    for (int i = 0; i < 64 && t > now_ns && sim__clock_raw(h, t - 1) >= deadline_ns;
         i++)
        t--;
    assert(sim__clock_raw(h, t) >= deadline_ns || t == UINT64_MAX);
    return t;
}

/* ---- timers: token -> live arming (open addressing) -------------------- */

#define SIM__TIMER_CAPACITY_MIN 16u

static uint32_t sim__timer_home(uint64_t token, uint32_t mask) {
    return (uint32_t)((token * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & mask;
}

static sim__timer_slot_t *sim__timer_find(sim__timers_t *t, uint64_t token) {
    if (t->capacity == 0) return NULL;
    uint32_t mask = t->capacity - 1;
    uint32_t i = sim__timer_home(token, mask);
    for (uint32_t n = 0; n < t->capacity; n++, i = (i + 1) & mask) {
        if (t->slots[i].arming == 0) return NULL;
        if (t->slots[i].token == token) return &t->slots[i];
    }
    return NULL;
}

static void sim__timer_place(sim__timers_t *t, const sim__timer_slot_t *s) {
    uint32_t mask = t->capacity - 1;
    uint32_t i = sim__timer_home(s->token, mask);
    for (uint32_t n = 0; n < t->capacity; n++, i = (i + 1) & mask) {
        if (t->slots[i].arming == 0) {
            t->slots[i] = *s;
            t->count++;
            return;
        }
    }
    assert(0 && "timer table full");
}

/* Make room for one more entry (load factor <= 1/2). 0 or IO_ENOMEM. */
static int sim__timer_reserve(sim__timers_t *t) {
    if ((t->count + 1) * 2 <= t->capacity) return 0;
    uint32_t cap = t->capacity ? t->capacity * 2 : SIM__TIMER_CAPACITY_MIN;
    sim__timer_slot_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) return IO_ENOMEM;
    sim__timers_t grown = {slots, cap, 0};
    for (uint32_t i = 0; i < t->capacity; i++)
        if (t->slots[i].arming != 0) sim__timer_place(&grown, &t->slots[i]);
    assert(grown.count == t->count);
    free(t->slots);
    *t = grown;
    return 0;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void sim__timer_remove(sim__timers_t *t, sim__timer_slot_t *s) {
    assert(s->arming != 0 && t->count > 0);
    uint32_t mask = t->capacity - 1;
    uint32_t i = (uint32_t)(s - t->slots);
    uint32_t j = i;
    for (uint32_t n = 0; n < t->capacity; n++) {
        j = (j + 1) & mask;
        if (t->slots[j].arming == 0) break;
        uint32_t k = sim__timer_home(t->slots[j].token, mask);
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        int home_between = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!home_between) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].arming = 0;
    t->count--;
}

static void sim__timers_clear(sim__timers_t *t) {
    if (t->slots != NULL) memset(t->slots, 0, t->capacity * sizeof(*t->slots));
    t->count = 0;
}

static int sim__timer_schedule(sim__host_t *h, uint64_t token, uint64_t arming,
                               uint64_t deadline_ns, int fresh) {
    sim_t *sim = h->sim;
    sim__event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ns = sim__clock_global_for(h, sim->now_ns, deadline_ns);
    ev.kind = SIM__EV_TIMER;
    ev.host = h->index;
    ev.incarnation = h->incarnation;
    ev.u.timer.token = token;
    ev.u.timer.arming = arming;
    return sim__schedule(sim, &ev, fresh);
}

/* ---- io_t methods ----------------------------------------------------- */

static uint64_t sim__io_now_ns(void *ctx) {
    const sim__host_t *h = ctx;
    return sim__clock_local(h, h->sim->now_ns);
}

static uint64_t sim__io_random_u64(void *ctx) {
    sim__host_t *h = ctx;
    return sim_prng_next(&h->prng);
}

static int sim__io_send(void *ctx, io_addr_t dest, const uint8_t *bytes,
                        size_t len) {
    return sim__net_send(ctx, dest, bytes, len);
}

static int sim__io_timer_set(void *ctx, uint64_t deadline_ns, uint64_t token) {
    sim__host_t *h = ctx;
    assert(h != NULL && h->sim != NULL);
    if (h->state == SIM_HOST_DOWN) return IO_ECANCELED;
    sim__timer_slot_t *slot = sim__timer_find(&h->timers, token);
    if (slot == NULL) {
        if (h->timers.count >= SIM_TIMERS_PER_HOST_MAX) return IO_ENOMEM;
        if (sim__timer_reserve(&h->timers) != 0) return IO_ENOMEM;
    }
    uint64_t arming = h->sim->seq++;
    int rc = sim__timer_schedule(h, token, arming, deadline_ns, 1);
    if (rc != 0) return rc;
    /* Replacing the arming id is what cancels the previous event. */
    if (slot != NULL) {
        slot->arming = arming;
        slot->deadline_ns = deadline_ns;
    } else {
        sim__timer_slot_t s = {token, arming, deadline_ns};
        sim__timer_place(&h->timers, &s);
    }
    assert(h->timers.count <= SIM_TIMERS_PER_HOST_MAX);
    return 0;
}

static int sim__io_timer_cancel(void *ctx, uint64_t token) {
    sim__host_t *h = ctx;
    assert(h != NULL);
    sim__timer_slot_t *slot = sim__timer_find(&h->timers, token);
    if (slot != NULL) sim__timer_remove(&h->timers, slot);
    assert(sim__timer_find(&h->timers, token) == NULL);
    return 0;
}

static int sim__check_name(const char *name) {
    if (name == NULL || name[0] == '\0') return IO_EINVAL;
    if (strnlen(name, IO_FILE_NAME_MAX + 1) > IO_FILE_NAME_MAX)
        return IO_ENAMETOOLONG;
    return 0;
}

/* Queue `op` (owned on success) to complete after the host's previous op and
 * after its sampled latency: the disk is a serial device. */
static int sim__disk_issue(sim__host_t *h, sim__disk_op_t *op) {
    sim_t *sim = h->sim;
    assert(op != NULL && h->disk != NULL);
    if (h->state == SIM_HOST_DOWN) return IO_ECANCELED;
    if (h->disk_ops_pending >= SIM__DISK_OPS_PER_HOST_MAX) return IO_ENOMEM;
    const sim_disk_config_t *cfg = sim_disk_get_config(h->disk);
    const sim_dist_t *dist = &cfg->write_latency;
    if (op->kind == SIM__DISK_READ) dist = &cfg->read_latency;
    if (op->kind == SIM__DISK_FSYNC) dist = &cfg->fsync_latency;
    uint64_t t = sim->now_ns + sim_dist_sample_ns(dist, &h->disk_prng);
    if (t < h->disk_busy_until_ns) t = h->disk_busy_until_ns;
    sim__event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ns = t;
    ev.kind = SIM__EV_DISK;
    ev.host = h->index;
    ev.incarnation = h->incarnation;
    ev.u.disk.op = op;
    int rc = sim__schedule(sim, &ev, 1);
    if (rc != 0) return rc;
    h->disk_busy_until_ns = t;
    h->disk_ops_pending++;
    return 0;
}

static int sim__disk_submit(void *ctx, sim__disk_kind_t kind, const char *name,
                            uint64_t offset, const uint8_t *bytes, uint8_t *buf,
                            size_t len, uint64_t size_bytes, uint64_t token) {
    sim__host_t *h = ctx;
    int rc = sim__check_name(name);
    if (rc != 0) return rc;
    if (len > SIM__DISK_IO_SIZE_MAX) return IO_EINVAL;
    if (len > 0 && bytes == NULL && buf == NULL) return IO_EINVAL;
    sim__disk_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) return IO_ENOMEM;
    op->kind = kind;
    memcpy(op->name, name, strlen(name) + 1);
    op->offset = offset;
    op->size_bytes = size_bytes;
    op->len = len;
    op->buf = buf;
    op->token = token;
    if (kind == SIM__DISK_WRITE && len > 0) {
        op->bytes = malloc(len); /* copied at issue: the caller may reuse it */
        if (op->bytes == NULL) {
            free(op);
            return IO_ENOMEM;
        }
        memcpy(op->bytes, bytes, len);
    }
    rc = sim__disk_issue(h, op);
    if (rc != 0) sim__disk_op_free(op);
    return rc;
}

static int sim__io_disk_write(void *ctx, const char *name, uint64_t offset,
                              const uint8_t *bytes, size_t len, uint64_t token) {
    return sim__disk_submit(ctx, SIM__DISK_WRITE, name, offset, bytes, NULL, len,
                            0, token);
}

static int sim__io_disk_read(void *ctx, const char *name, uint64_t offset,
                             uint8_t *buf, size_t len, uint64_t token) {
    return sim__disk_submit(ctx, SIM__DISK_READ, name, offset, NULL, buf, len, 0,
                            token);
}

static int sim__io_disk_fsync(void *ctx, const char *name, uint64_t token) {
    return sim__disk_submit(ctx, SIM__DISK_FSYNC, name, 0, NULL, NULL, 0, 0,
                            token);
}

static int sim__io_disk_truncate(void *ctx, const char *name,
                                 uint64_t size_bytes, uint64_t token) {
    return sim__disk_submit(ctx, SIM__DISK_TRUNCATE, name, 0, NULL, NULL, 0,
                            size_bytes, token);
}

static int sim__io_disk_remove(void *ctx, const char *name, uint64_t token) {
    return sim__disk_submit(ctx, SIM__DISK_REMOVE, name, 0, NULL, NULL, 0, 0,
                            token);
}

static int sim__io_disk_size(void *ctx, const char *name, uint64_t *size_bytes) {
    sim__host_t *h = ctx;
    int rc = sim__check_name(name);
    if (rc != 0) return rc;
    if (size_bytes == NULL) return IO_EINVAL;
    return sim_disk_size(h->disk, name, size_bytes);
}

static int sim__io_disk_list(void *ctx, io_list_cb cb, void *arg) {
    sim__host_t *h = ctx;
    if (cb == NULL) return IO_EINVAL;
    return sim_disk_list(h->disk, cb, arg);
}

static void sim__io_trace(void *ctx, const io_trace_event_t *event) {
    sim__host_t *h = ctx;
    if (event == NULL) return;
    sim_t *sim = h->sim;
    const char *name = event->name != NULL ? event->name : "";
    uint64_t hash = sim__hash_str(SIM__HASH_SEED, name);
    hash = sim__hash_str(hash, event->detail);
    sim__record(sim, h->index, SIM__CODE_TRACE, hash, 0, NULL, 0);
    SIM__OBSERVE(sim, h->index, "trace", "%s%s%s", name,
                 event->detail != NULL ? " " : "",
                 event->detail != NULL ? event->detail : "");
}

/* The simulator's implementation of the seam; ctx is the sim__host_t. */
static const io_methods_t sim__io_methods = {
    .now_ns = sim__io_now_ns,               /* host clock model */
    .random_u64 = sim__io_random_u64,       /* host PRNG stream */
    .send = sim__io_send,                   /* virtual network (net.c) */
    .timer_set = sim__io_timer_set,         /* host-local deadline */
    .timer_cancel = sim__io_timer_cancel,   /* drops the live arming */
    .disk_write = sim__io_disk_write,       /* serial, latency sampled */
    .disk_read = sim__io_disk_read,
    .disk_fsync = sim__io_disk_fsync,
    .disk_truncate = sim__io_disk_truncate,
    .disk_remove = sim__io_disk_remove,
    .disk_size = sim__io_disk_size,         /* synchronous */
    .disk_list = sim__io_disk_list,         /* synchronous */
    .trace = sim__io_trace,                 /* hashed + observer */
};

/* ---- world lifetime --------------------------------------------------- */

static int sim__host_init(sim_t *sim, uint32_t i) {
    sim__host_t *h = &sim->hosts[i];
    h->sim = sim;
    h->index = i;
    h->state = SIM_HOST_DOWN;
    h->io.methods = &sim__io_methods;
    h->io.ctx = h;
    h->io.self = i;
    sim_prng_init(&h->prng, sim->seed, SIM_STREAM_HOST_BASE + i);
    sim_prng_init(&h->disk_prng, sim->seed, SIM_STREAM_DISK_BASE + i);
    sim_disk_config_t dcfg;
    sim_disk_config_default(&dcfg);
    return sim_disk_new(&dcfg, &h->disk);
}

int sim_new(const sim_config_t *cfg, sim_t **out) {
    if (cfg == NULL || out == NULL) return IO_EINVAL;
    if (cfg->hosts_count == 0 || cfg->hosts_count > SIM_HOSTS_MAX) return IO_EINVAL;
    *out = NULL;
    sim_t *sim = calloc(1, sizeof(*sim));
    if (sim == NULL) return IO_ENOMEM;
    sim->seed = cfg->seed;
    sim->hosts_count = cfg->hosts_count;
    sim->seq = SIM__SEQ_NORMAL_BASE; /* 0 means "empty" in timer slots */
    sim->seq_front = 1;
    sim->trace_hash = sim__hash_word(SIM__HASH_SEED, cfg->seed);
    sim_prng_init(&sim->net_prng, cfg->seed, SIM_STREAM_NET);
    sim_prng_init(&sim->kernel_prng, cfg->seed, SIM_STREAM_KERNEL);
    sim->hosts = calloc(cfg->hosts_count, sizeof(*sim->hosts));
    int rc = sim->hosts == NULL ? IO_ENOMEM : 0;
    for (uint32_t i = 0; rc == 0 && i < cfg->hosts_count; i++)
        rc = sim__host_init(sim, i);
    if (rc == 0) rc = sim__net_init(sim);
    if (rc != 0) {
        sim_free(sim);
        return rc == IO_EINVAL ? IO_ENOMEM : rc;
    }
    *out = sim;
    return 0;
}

void sim_free(sim_t *sim) {
    if (sim == NULL) return;
    for (uint32_t i = 0; sim->hosts != NULL && i < sim->hosts_count; i++) {
        sim__host_t *h = &sim->hosts[i];
        if (h->state != SIM_HOST_DOWN && h->node != NULL) {
            void *node = h->node;
            h->state = SIM_HOST_DOWN;
            h->node = NULL;
            h->prog->halt(node, 0);
        }
        for (uint32_t k = 0; k < h->held.count; k++)
            sim__event_discard(sim, &h->held.items[k], 0);
        free(h->held.items);
        free(h->timers.slots);
        sim_disk_free(h->disk);
    }
    for (uint32_t k = 0; k < sim->heap.count; k++)
        sim__event_discard(sim, &sim->heap.items[k], 0);
    free(sim->heap.items);
    sim__net_free(sim);
    while (sim->slab_free != NULL) {
        sim__slab_block_t *b = sim->slab_free;
        sim->slab_free = b->next;
        free(b);
    }
    free(sim->hosts);
    free(sim);
}

uint64_t sim_now_ns(const sim_t *sim) { return sim->now_ns; }
uint64_t sim_seed(const sim_t *sim) { return sim->seed; }
uint32_t sim_hosts_count(const sim_t *sim) { return sim->hosts_count; }
uint64_t sim_trace_hash(const sim_t *sim) { return sim->trace_hash; }
uint64_t sim_events_processed(const sim_t *sim) { return sim->events_processed; }

/* ---- the event loop --------------------------------------------------- */

static void sim__fire_timer(sim_t *sim, sim__host_t *h, sim__event_t *ev) {
    sim__timer_slot_t *slot = sim__timer_find(&h->timers, ev->u.timer.token);
    if (slot == NULL || slot->arming != ev->u.timer.arming) return; /* stale */
    sim__timer_remove(&h->timers, slot);
    uint64_t token = ev->u.timer.token;
    sim->events_processed++;
    sim__record(sim, h->index, SIM__CODE_TIMER, token, 0, NULL, 0);
    SIM__OBSERVE(sim, h->index, "timer", "token=%llu", (unsigned long long)token);
    h->prog->handler->on_timer(h->node, token);
}

static int64_t sim__disk_apply(sim__host_t *h, const sim__disk_op_t *op) {
    switch (op->kind) {
    case SIM__DISK_WRITE:
        return sim_disk_write(h->disk, op->name, op->offset, op->bytes, op->len);
    case SIM__DISK_READ:
        return sim_disk_read(h->disk, op->name, op->offset, op->buf, op->len);
    case SIM__DISK_FSYNC: return sim_disk_fsync(h->disk, op->name);
    case SIM__DISK_TRUNCATE:
        return sim_disk_truncate(h->disk, op->name, op->size_bytes);
    case SIM__DISK_REMOVE: return sim_disk_remove(h->disk, op->name);
    }
    assert(0 && "unknown disk op");
    return IO_EINVAL;
}

static const char *const sim__disk_op_names[] = {
    "?", "write", "read", "fsync", "truncate", "remove",
};

static void sim__complete_disk(sim_t *sim, sim__host_t *h, sim__event_t *ev) {
    sim__disk_op_t *op = ev->u.disk.op;
    assert(op != NULL && h->disk_ops_pending > 0);
    h->disk_ops_pending--;
    int64_t result = sim__disk_apply(h, op);
    uint64_t token = op->token;
    sim->events_processed++;
    sim__record(sim, h->index, SIM__CODE_DISK, token,
                ((uint64_t)op->kind << 56) ^ (uint64_t)result, NULL, 0);
    SIM__OBSERVE_BYTES(sim, op->kind == SIM__DISK_WRITE ? op->bytes : NULL,
                       op->kind == SIM__DISK_WRITE ? op->len : 0, h->index, "disk",
                       "op=%s file=%s token=%llu result=%lld",
                 sim__disk_op_names[op->kind], op->name,
                 (unsigned long long)token, (long long)result);
    sim__event_discard(sim, ev, 0);
    h->prog->handler->on_disk_done(h->node, token, result);
}

static void sim__dispatch(sim_t *sim, sim__event_t *ev) {
    if (ev->kind == SIM__EV_CALL) {
        sim->events_processed++;
        sim__record(sim, SIM_ANY, SIM__CODE_CALL, 0, 0, NULL, 0);
        SIM__OBSERVE(sim, SIM_ANY, "call", NULL);
        ev->u.call.cb(sim, ev->u.call.arg);
        return;
    }
    if (ev->kind == SIM__EV_CLOG) {
        sim__net_clog_release(sim, ev);
        return;
    }
    assert(ev->host < sim->hosts_count);
    sim__host_t *h = &sim->hosts[ev->host];
    if (ev->kind != SIM__EV_MSG &&
        (h->state == SIM_HOST_DOWN || ev->incarnation != h->incarnation)) {
        sim__event_discard(sim, ev, 0); /* an earlier incarnation's */
        return;
    }
    if (h->state == SIM_HOST_PAUSED) {
        if (sim__held_push(sim, &h->held, ev) != 0) abort(); /* out of memory */
        return;
    }
    switch ((sim__event_kind_t)ev->kind) {
    case SIM__EV_MSG: sim__net_arrive(sim, ev); break;
    case SIM__EV_TIMER: sim__fire_timer(sim, h, ev); break;
    case SIM__EV_DISK: sim__complete_disk(sim, h, ev); break;
    case SIM__EV_CALL:
    case SIM__EV_CLOG: assert(0); break;
    }
}

static sim_run_result_t sim__run_loop(sim_t *sim, uint64_t until_ns,
                                      uint64_t max_events) {
    const uint64_t start = sim->events_processed;
    for (;;) {
        if (max_events != 0 && sim->events_processed - start >= max_events)
            return SIM_RUN_EVENT_LIMIT;
        const sim__event_t *top = sim__heap_top(&sim->heap);
        if (top == NULL) return SIM_RUN_IDLE;
        if (top->time_ns > until_ns) {
            if (until_ns > sim->now_ns) sim->now_ns = until_ns;
            return SIM_RUN_TIME_LIMIT;
        }
        sim__event_t *ev = &sim->current;
        sim__heap_pop(&sim->heap, ev);
        sim->events_pending--;
        assert(ev->time_ns >= sim->now_ns);
        sim->now_ns = ev->time_ns;
        sim->dispatching = true;
        sim__dispatch(sim, ev);
        sim->dispatching = false;
        if (sim->stop_requested) return SIM_RUN_STOPPED;
    }
}

sim_run_result_t sim_run(sim_t *sim, uint64_t until_ns, uint64_t max_events) {
    assert(sim != NULL);
    assert(!sim->running && "sim_run called from inside an event");
    sim->stop_requested = false;
    sim->running = true;
    sim_run_result_t r = sim__run_loop(sim, until_ns, max_events);
    sim->running = false;
    return r;
}

void sim_run_abandon(sim_t *sim) {
    assert(sim != NULL);
    /* A handler that jumped out never reached the discard at the end of its
     * dispatch: the payload (message bytes, disk op) is still the event's.
     * Events moved to a held queue were moved before any handler ran, so a
     * jump cannot happen after such a move within the same dispatch. */
    if (sim->dispatching) sim__event_discard(sim, &sim->current, 0);
    sim->dispatching = false;
    sim->running = false;
    sim->stop_requested = false;
}

void sim_stop(sim_t *sim) {
    assert(sim != NULL);
    sim->stop_requested = true;
}

/* ---- hosts ------------------------------------------------------------ */

static sim__host_t *sim__host(const sim_t *sim, uint32_t host) {
    if (sim == NULL || host >= sim->hosts_count) return NULL;
    return &sim->hosts[host];
}

int sim_host_set_program(sim_t *sim, uint32_t host, const io_program_t *prog,
                         void *arg) {
    sim__host_t *h = sim__host(sim, host);
    if (h == NULL || h->state != SIM_HOST_DOWN) return IO_EINVAL;
    if (prog == NULL || prog->boot == NULL || prog->halt == NULL ||
        prog->handler == NULL || prog->handler->on_message == NULL ||
        prog->handler->on_timer == NULL || prog->handler->on_disk_done == NULL)
        return IO_EINVAL;
    h->prog = prog;
    h->prog_arg = arg;
    return 0;
}

int sim_host_start(sim_t *sim, uint32_t host) {
    sim__host_t *h = sim__host(sim, host);
    if (h == NULL || h->state != SIM_HOST_DOWN || h->prog == NULL)
        return IO_EINVAL;
    assert(h->timers.count == 0 && h->held.count == 0);
    h->incarnation++;
    h->state = SIM_HOST_UP;
    h->disk_busy_until_ns = sim->now_ns;
    h->disk_ops_pending = 0;
    sim__record(sim, host, SIM__CODE_START, h->incarnation, 0, NULL, 0);
    SIM__OBSERVE(sim, host, "start", "incarnation=%u", h->incarnation);
    void *node = h->prog->boot(h->prog_arg, &h->io);
    if (node == NULL) {
        /* Whatever boot armed or issued belongs to a dead incarnation. */
        h->state = SIM_HOST_DOWN;
        sim__timers_clear(&h->timers);
        h->disk_ops_pending = 0;
        return IO_ENOMEM;
    }
    h->node = node;
    return 0;
}

/* Common part of crash/kill/stop: the node is gone, and so is every event
 * it was waiting for. Timer and disk events still in the heap are skipped
 * when popped (state/incarnation check); held ones are dropped here. */
static int sim__host_halt(sim_t *sim, uint32_t host, int graceful,
                          uint32_t code, const char *kind) {
    sim__host_t *h = sim__host(sim, host);
    if (h == NULL || h->state == SIM_HOST_DOWN) return IO_EINVAL;
    assert(h->node != NULL && h->prog != NULL);
    void *node = h->node;
    h->state = SIM_HOST_DOWN;
    h->node = NULL;
    sim__record(sim, host, code, h->incarnation, 0, NULL, 0);
    SIM__OBSERVE(sim, host, kind, "incarnation=%u", h->incarnation);
    h->prog->halt(node, graceful);
    sim__timers_clear(&h->timers);
    h->disk_ops_pending = 0;
    h->disk_busy_until_ns = sim->now_ns;
    for (uint32_t k = 0; k < h->held.count; k++)
        sim__event_discard(sim, &h->held.items[k], 1);
    assert(sim->events_pending >= h->held.count);
    sim->events_pending -= h->held.count;
    h->held.count = 0;
    return 0;
}

int sim_host_crash(sim_t *sim, uint32_t host) {
    int rc = sim__host_halt(sim, host, 0, SIM__CODE_CRASH, "crash");
    if (rc != 0) return rc;
    sim__host_t *h = &sim->hosts[host];
    sim_disk_crash(h->disk, &h->disk_prng);
    return 0;
}

int sim_host_kill(sim_t *sim, uint32_t host) {
    return sim__host_halt(sim, host, 0, SIM__CODE_KILL, "kill");
}

int sim_host_stop(sim_t *sim, uint32_t host) {
    return sim__host_halt(sim, host, 1, SIM__CODE_STOP, "stop");
}

int sim_host_pause(sim_t *sim, uint32_t host) {
    sim__host_t *h = sim__host(sim, host);
    if (h == NULL || h->state != SIM_HOST_UP) return IO_EINVAL;
    h->state = SIM_HOST_PAUSED;
    sim__record(sim, host, SIM__CODE_PAUSE, h->incarnation, 0, NULL, 0);
    SIM__OBSERVE(sim, host, "pause", NULL);
    return 0;
}

/* Held events go back to the heap at `now`, ahead of anything else due now,
 * in the order they were held (= the order they became due). */
int sim_host_resume(sim_t *sim, uint32_t host) {
    sim__host_t *h = sim__host(sim, host);
    if (h == NULL || h->state != SIM_HOST_PAUSED) return IO_EINVAL;
    h->state = SIM_HOST_UP;
    sim__record(sim, host, SIM__CODE_RESUME, h->incarnation, h->held.count,
                NULL, 0);
    SIM__OBSERVE(sim, host, "resume", "held=%u", h->held.count);
    assert(sim->events_pending >= h->held.count);
    sim->events_pending -= h->held.count;
    for (uint32_t k = 0; k < h->held.count; k++) {
        sim__event_t ev = h->held.items[k];
        ev.time_ns = sim->now_ns;
        sim__reschedule(sim, &ev);
    }
    h->held.count = 0;
    return 0;
}

sim_host_state_t sim_host_state(const sim_t *sim, uint32_t host) {
    const sim__host_t *h = sim__host(sim, host);
    return h != NULL ? h->state : SIM_HOST_DOWN;
}

uint32_t sim_host_incarnation(const sim_t *sim, uint32_t host) {
    const sim__host_t *h = sim__host(sim, host);
    return h != NULL ? h->incarnation : 0;
}

void *sim_host_node(const sim_t *sim, uint32_t host) {
    const sim__host_t *h = sim__host(sim, host);
    return h != NULL ? h->node : NULL;
}

sim_disk_t *sim_host_disk(sim_t *sim, uint32_t host) {
    sim__host_t *h = sim__host(sim, host);
    return h != NULL ? h->disk : NULL;
}

const io_t *sim_host_io(const sim_t *sim, uint32_t host) {
    const sim__host_t *h = sim__host(sim, host);
    if (h == NULL || h->state == SIM_HOST_DOWN) return NULL;
    return &h->io;
}

/* A clock step moves every armed deadline in global time, so each armed
 * timer gets a new arming at its new global time; the old events go stale. */
int sim_host_set_clock(sim_t *sim, uint32_t host, int64_t offset_ns,
                       int32_t drift_ppm) {
    sim__host_t *h = sim__host(sim, host);
    if (h == NULL) return IO_EINVAL;
    if (offset_ns > SIM__CLOCK_OFFSET_MAX_NS || offset_ns < -SIM__CLOCK_OFFSET_MAX_NS)
        return IO_EINVAL;
    if (drift_ppm > SIM__DRIFT_PPM_MAX || drift_ppm < -SIM__DRIFT_PPM_MAX)
        return IO_EINVAL;
    h->clock_floor_ns = sim__clock_local(h, sim->now_ns);
    h->offset_ns = offset_ns;
    h->drift_ppm = drift_ppm;
    sim__record(sim, host, SIM__CODE_CLOCK, (uint64_t)offset_ns,
                (uint64_t)(int64_t)drift_ppm, NULL, 0);
    SIM__OBSERVE(sim, host, "clock", "offset_ns=%lld drift_ppm=%d",
                 (long long)offset_ns, drift_ppm);
    for (uint32_t i = 0; i < h->timers.capacity; i++) {
        sim__timer_slot_t *s = &h->timers.slots[i];
        if (s->arming == 0) continue;
        s->arming = sim->seq++;
        if (sim__timer_schedule(h, s->token, s->arming, s->deadline_ns, 0) != 0)
            abort(); /* out of memory */
    }
    return 0;
}

uint64_t sim_host_clock_ns(const sim_t *sim, uint32_t host) {
    const sim__host_t *h = sim__host(sim, host);
    if (h == NULL) return 0;
    return sim__clock_local(h, sim->now_ns);
}
