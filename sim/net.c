/*
 * sim/net.c — the virtual network: one config + stats per directed link
 * (hosts_count x hosts_count matrix), message send and arrival.
 *
 * Every send draws the same number of values from the SIM_STREAM_NET stream
 * whatever the link's faults, so turning a fault on or off changes only the
 * fate of the messages it touches, not the draws of every later message.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/heap.h"
#include "sim/kernel_internal.h"
#include "sim/sim.h"

void sim_link_config_default(sim_link_config_t *cfg) {
    assert(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    cfg->latency.kind = SIM_DIST_CONST;
    cfg->latency.base_ns = 1000000; /* 1 ms */
    cfg->latency.spread_ns = 0;
    cfg->capacity = 0; /* SIM_LINK_CAPACITY_DEFAULT */
    cfg->blocked = false;
}

static int sim__probability_ok(double p) { return p >= 0.0 && p <= 1.0; }

int sim_link_config_check(const sim_link_config_t *cfg) {
    if (cfg == NULL) return IO_EINVAL;
    if (sim_dist_check(&cfg->latency) != 0) return IO_EINVAL;
    /* The comparisons are false for NaN, which is rejected too. */
    if (!sim__probability_ok(cfg->loss) || !sim__probability_ok(cfg->duplicate) ||
        !sim__probability_ok(cfg->reorder) || !sim__probability_ok(cfg->corrupt))
        return IO_EINVAL;
    if (cfg->reorder_window_ns > SIM__REORDER_WINDOW_MAX_NS) return IO_EINVAL;
    if (cfg->capacity > SIM__LINK_CAPACITY_MAX) return IO_EINVAL;
    return 0;
}

int sim__net_init(sim_t *sim) {
    assert(sim != NULL && sim->hosts_count > 0);
    size_t n = (size_t)sim->hosts_count * sim->hosts_count;
    sim->links = calloc(n, sizeof(*sim->links));
    if (sim->links == NULL) return IO_ENOMEM;
    for (size_t i = 0; i < n; i++) sim_link_config_default(&sim->links[i].cfg);
    return 0;
}

void sim__net_free(sim_t *sim) {
    size_t n = (size_t)sim->hosts_count * sim->hosts_count;
    for (size_t i = 0; sim->links != NULL && i < n; i++) {
        sim__held_t *q = &sim->links[i].clog_held;
        for (uint32_t k = 0; k < q->count; k++) sim__event_discard(sim, &q->items[k], 0);
        free(q->items);
    }
    free(sim->links);
    sim->links = NULL;
}

/* ---- clogs -------------------------------------------------------------- */

/* Arm the link's (single) release event at `time_ns`; older ones go stale. */
static void sim__clog_arm(sim_t *sim, size_t index, uint64_t time_ns) {
    sim__link_t *l = &sim->links[index];
    assert(l->clog_held.count > 0);
    sim__event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.time_ns = time_ns;
    ev.kind = SIM__EV_CLOG;
    ev.host = (uint32_t)(index % sim->hosts_count);
    ev.u.clog.link = index;
    ev.u.clog.arming = sim->seq++;
    l->release_arming = ev.u.clog.arming;
    if (sim__schedule(sim, &ev, 0) != 0) abort(); /* out of memory mid-run */
}

/* The clog of a link changed: let its held messages re-check now. */
static void sim__clog_changed(sim_t *sim, size_t index) {
    if (sim->links[index].clog_held.count > 0) sim__clog_arm(sim, index, sim->now_ns);
}

/* Held messages go back in arrival order ahead of anything else due now, so
 * a later message of the link arriving at this instant cannot overtake them. */
void sim__net_clog_release(sim_t *sim, const sim__event_t *ev) {
    assert(ev->kind == SIM__EV_CLOG);
    assert(ev->u.clog.link < (uint64_t)sim->hosts_count * sim->hosts_count);
    const size_t index = (size_t)ev->u.clog.link;
    sim__link_t *l = &sim->links[index];
    if (ev->u.clog.arming != l->release_arming) return; /* superseded */
    if (l->clog_until_ns > sim->now_ns) {
        sim__clog_arm(sim, index, l->clog_until_ns); /* clog was extended */
        return;
    }
    l->release_arming = 0;
    sim__held_t *q = &l->clog_held;
    assert(sim->events_pending >= q->count);
    sim->events_pending -= q->count;
    for (uint32_t k = 0; k < q->count; k++) {
        sim__event_t m = q->items[k];
        m.time_ns = sim->now_ns;
        sim__reschedule(sim, &m);
    }
    q->count = 0;
}

/* Host ranges for the SIM_ANY wildcard: [lo, hi). */
static int sim__range(const sim_t *sim, uint32_t host, uint32_t *lo,
                      uint32_t *hi) {
    if (host == SIM_ANY) {
        *lo = 0;
        *hi = sim->hosts_count;
        return 0;
    }
    if (host >= sim->hosts_count) return IO_EINVAL;
    *lo = host;
    *hi = host + 1;
    return 0;
}

int sim_link_configure(sim_t *sim, uint32_t from, uint32_t to,
                       const sim_link_config_t *cfg) {
    uint32_t f0, f1, t0, t1;
    if (sim == NULL || sim_link_config_check(cfg) != 0) return IO_EINVAL;
    if (sim__range(sim, from, &f0, &f1) != 0 || sim__range(sim, to, &t0, &t1) != 0)
        return IO_EINVAL;
    for (uint32_t f = f0; f < f1; f++)
        for (uint32_t t = t0; t < t1; t++) sim__link_at(sim, f, t)->cfg = *cfg;
    return 0;
}

int sim_link_get_config(const sim_t *sim, uint32_t from, uint32_t to,
                        sim_link_config_t *out) {
    if (sim == NULL || out == NULL) return IO_EINVAL;
    if (from >= sim->hosts_count || to >= sim->hosts_count) return IO_EINVAL;
    *out = sim__link_at(sim, from, to)->cfg;
    return 0;
}

int sim_link_block(sim_t *sim, uint32_t from, uint32_t to, bool blocked) {
    uint32_t f0, f1, t0, t1;
    if (sim == NULL) return IO_EINVAL;
    if (sim__range(sim, from, &f0, &f1) != 0 || sim__range(sim, to, &t0, &t1) != 0)
        return IO_EINVAL;
    for (uint32_t f = f0; f < f1; f++)
        for (uint32_t t = t0; t < t1; t++)
            sim__link_at(sim, f, t)->cfg.blocked = blocked;
    return 0;
}

int sim_link_clog(sim_t *sim, uint32_t from, uint32_t to, uint64_t duration_ns) {
    uint32_t f0, f1, t0, t1;
    if (sim == NULL || duration_ns > SIM__REORDER_WINDOW_MAX_NS) return IO_EINVAL;
    if (sim__range(sim, from, &f0, &f1) != 0 || sim__range(sim, to, &t0, &t1) != 0)
        return IO_EINVAL;
    uint64_t until = sim->now_ns + duration_ns;
    for (uint32_t f = f0; f < f1; f++)
        for (uint32_t t = t0; t < t1; t++) {
            sim__link_at(sim, f, t)->clog_until_ns = until;
            sim__clog_changed(sim, (size_t)f * sim->hosts_count + t);
        }
    return 0;
}

void sim_net_heal(sim_t *sim) {
    assert(sim != NULL);
    size_t n = (size_t)sim->hosts_count * sim->hosts_count;
    for (size_t i = 0; i < n; i++) {
        sim->links[i].cfg.blocked = false;
        sim->links[i].clog_until_ns = 0;
        sim__clog_changed(sim, i);
    }
}

int sim_link_stats(const sim_t *sim, uint32_t from, uint32_t to,
                   sim_link_stats_t *out) {
    if (sim == NULL || out == NULL) return IO_EINVAL;
    if (from >= sim->hosts_count || to >= sim->hosts_count) return IO_EINVAL;
    *out = sim__link_at(sim, from, to)->stats;
    return 0;
}

/* ---- send ------------------------------------------------------------- */

/* The fixed set of draws made for every send. */
typedef struct sim__send_draws {
    uint64_t u_loss, u_dup, u_reorder, u_corrupt;
    uint64_t latency_ns, dup_latency_ns;
    uint64_t r_delay, r_bit;
} sim__send_draws_t;

static int sim__hit(uint64_t draw, double probability) {
    /* Same mapping as sim_prng_chance: 53 high bits to [0, 1). */
    const double u = (double)(draw >> 11) * 0x1.0p-53;
    return u < probability;
}

static void sim__draw(sim_t *sim, const sim_link_config_t *cfg,
                      sim__send_draws_t *d) {
    sim_prng_t *p = &sim->net_prng;
    d->u_loss = sim_prng_next(p);
    d->latency_ns = sim_dist_sample_ns(&cfg->latency, p);
    d->u_dup = sim_prng_next(p);
    d->dup_latency_ns = sim_dist_sample_ns(&cfg->latency, p);
    d->u_reorder = sim_prng_next(p);
    d->r_delay = sim_prng_next(p);
    d->u_corrupt = sim_prng_next(p);
    d->r_bit = sim_prng_next(p);
}

static int sim__push_msg(sim_t *sim, uint32_t from, uint32_t to,
                         uint64_t time_ns, const uint8_t *bytes, size_t len) {
    uint8_t *copy = sim__msg_alloc(sim, len);
    if (copy == NULL) return IO_ENOMEM;
    if (len > 0) memcpy(copy, bytes, len);
    sim__event_t ev;
    ev.time_ns = time_ns;
    ev.seq = 0;
    ev.kind = SIM__EV_MSG;
    ev.host = to;
    ev.incarnation = 0;
    ev.pad = 0;
    ev.u.msg.bytes = copy;
    ev.u.msg.len = (uint32_t)len;
    ev.u.msg.from = from;
    int rc = sim__schedule(sim, &ev, 1);
    if (rc != 0) sim__msg_free(sim, copy, len);
    return rc;
}

/* Send-time drops never reach the event loop; only the observer hears of
 * them (they are not hashed: the link stats and the draws already are). */
static void sim__observe_lost(sim_t *sim, uint32_t from, uint32_t to, const uint8_t *bytes,
                              size_t len, const char *why) {
    SIM__OBSERVE_BYTES(sim, bytes, len, to, "msg.lost", "from=%u len=%zu why=%s", from, len, why);
}

int sim__net_send(sim__host_t *h, io_addr_t dest, const uint8_t *bytes,
                  size_t len) {
    sim_t *sim = h->sim;
    assert(sim != NULL && h->index < sim->hosts_count);
    if (h->state == SIM_HOST_DOWN) return IO_ECANCELED;
    if (dest >= sim->hosts_count) return IO_EUNREACH;
    if (len > IO_MESSAGE_SIZE_MAX) return IO_EMSGSIZE;
    if (bytes == NULL && len > 0) return IO_EINVAL;
    if (sim->events_pending + 2 > SIM__EVENTS_MAX) return IO_ENOMEM;

    sim__link_t *l = sim__link_at(sim, h->index, dest);
    const sim_link_config_t *cfg = &l->cfg;
    sim__send_draws_t d;
    sim__draw(sim, cfg, &d);
    l->stats.sent++;
    const uint32_t capacity = cfg->capacity ? cfg->capacity : SIM_LINK_CAPACITY_DEFAULT;
    if (cfg->blocked) {
        l->stats.dropped_blocked++;
        sim__observe_lost(sim, h->index, dest, bytes, len, "blocked");
        return 0;
    }
    if (sim__hit(d.u_loss, cfg->loss)) {
        l->stats.dropped_loss++;
        sim__observe_lost(sim, h->index, dest, bytes, len, "loss");
        return 0;
    }
    if (l->stats.in_flight >= capacity) {
        l->stats.dropped_overflow++;
        sim__observe_lost(sim, h->index, dest, bytes, len, "overflow");
        return 0;
    }
    uint64_t t = sim->now_ns + d.latency_ns;
    if (cfg->reorder_window_ns > 0 && sim__hit(d.u_reorder, cfg->reorder)) {
        /* Delayed outside the FIFO floor: later messages may overtake it. */
        t += d.r_delay % (cfg->reorder_window_ns + 1);
        l->stats.reordered++;
    } else {
        if (t < l->last_delivery_ns) t = l->last_delivery_ns;
        l->last_delivery_ns = t;
    }
    /* Corrupt in a scratch copy only when needed; the push copies again, which
     * is rare enough (corruption on) not to matter. */
    const uint8_t *payload = bytes;
    uint8_t *scratch = NULL;
    if (len > 0 && sim__hit(d.u_corrupt, cfg->corrupt)) {
        scratch = malloc(len);
        if (scratch == NULL) return IO_ENOMEM;
        memcpy(scratch, bytes, len);
        uint64_t bit = d.r_bit % ((uint64_t)len * 8u);
        scratch[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        payload = scratch;
        l->stats.corrupted++;
        SIM__OBSERVE_BYTES(sim, scratch, len, dest, "msg.corrupt", "from=%u len=%zu bit=%llu",
                           h->index, len, (unsigned long long)bit);
    }
    int rc = sim__push_msg(sim, h->index, dest, t, payload, len);
    if (rc == 0) {
        l->stats.in_flight++;
        if (sim__hit(d.u_dup, cfg->duplicate) && l->stats.in_flight < capacity &&
            sim__push_msg(sim, h->index, dest, t + d.dup_latency_ns, payload,
                          len) == 0) {
            l->stats.in_flight++;
            l->stats.duplicated++;
            SIM__OBSERVE_BYTES(sim, payload, len, dest, "msg.dup", "from=%u len=%zu", h->index,
                               len);
        }
    }
    free(scratch);
    return rc;
}

/* ---- arrival ---------------------------------------------------------- */

void sim__net_arrive(sim_t *sim, sim__event_t *ev) {
    assert(ev->kind == SIM__EV_MSG);
    assert(ev->host < sim->hosts_count && ev->u.msg.from < sim->hosts_count);
    const uint32_t from = ev->u.msg.from;
    sim__link_t *l = sim__link_at(sim, from, ev->host);
    if (!l->cfg.blocked &&
        (l->clog_until_ns > sim->now_ns || l->clog_held.count > 0)) {
        /* Clogged (or earlier messages still held): queue behind them. */
        if (sim__held_push(sim, &l->clog_held, ev) != 0) abort(); /* OOM */
        l->stats.clogged++;
        if (l->release_arming == 0) {
            uint64_t t = l->clog_until_ns > sim->now_ns ? l->clog_until_ns : sim->now_ns;
            sim__clog_arm(sim, (size_t)from * sim->hosts_count + ev->host, t);
        }
        return;
    }
    assert(l->stats.in_flight > 0);
    l->stats.in_flight--;
    sim__host_t *h = &sim->hosts[ev->host];
    const char *why = l->cfg.blocked ? "blocked"
                      : h->state == SIM_HOST_DOWN ? "down" : NULL;
    sim->events_processed++;
    if (why != NULL) {
        if (l->cfg.blocked) l->stats.dropped_blocked++;
        else l->stats.dropped_down++;
        sim__record(sim, ev->host, SIM__CODE_MSG_DROP, from, ev->u.msg.len, NULL, 0);
        SIM__OBSERVE_BYTES(sim, ev->u.msg.bytes, ev->u.msg.len, ev->host, "msg.drop",
                           "from=%u len=%u why=%s", from, ev->u.msg.len, why);
        sim__event_discard(sim, ev, 0);
        return;
    }
    l->stats.delivered++;
    l->stats.bytes_delivered += ev->u.msg.len;
    sim__record(sim, ev->host, SIM__CODE_MSG, from, ev->u.msg.len,
                ev->u.msg.bytes, ev->u.msg.len);
    SIM__OBSERVE_BYTES(sim, ev->u.msg.bytes, ev->u.msg.len, ev->host, "msg",
                       "from=%u len=%u", from, ev->u.msg.len);
    h->prog->handler->on_message(h->node, from, ev->u.msg.bytes, ev->u.msg.len);
    sim__event_discard(sim, ev, 0);
}
