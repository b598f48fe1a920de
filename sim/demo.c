/*
 * sim/demo.c — the kernel demo: three hosts play ping/pong and keep a durable
 * tick counter on their virtual disks while the world misbehaves.
 *
 * Timeline (virtual time):
 *     0 ms   boot all three; links jitter 200 us .. 1.2 ms
 *    50 ms   20% loss on every link      (until 100 ms)
 *   120 ms   partition host 0 <-> host 1 (until 170 ms)
 *   200 ms   crash host 2 (power loss)   restart at 230 ms
 *   260 ms   pause host 1 (SIGSTOP)      resume at 280 ms
 *   300 ms   end
 */
#include "sim/demo.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

#define DEMO_HOSTS 3u
#define DEMO_TICK_NS 2000000u /* each node ticks every 2 ms of its clock */
#define DEMO_END_NS 300000000u
#define DEMO_BOOTS_MAX 8u

enum { DEMO_TOKEN_TICK = 1, DEMO_TOKEN_WRITE = 2, DEMO_TOKEN_FSYNC = 3,
       DEMO_TOKEN_READ = 4 };
enum { DEMO_MSG_PING = 'P', DEMO_MSG_PONG = 'O' };

typedef struct demo_world {
    sim_t *sim;
    /* What each boot recovered from disk, per host. */
    uint64_t recovered[DEMO_HOSTS][DEMO_BOOTS_MAX];
    uint32_t boots[DEMO_HOSTS];
    uint64_t counter_at_crash[DEMO_HOSTS];
    uint64_t synced_at_crash[DEMO_HOSTS];
    uint64_t pings[DEMO_HOSTS], pongs[DEMO_HOSTS];
    /* From the observer: processed events by kind, and held by the pause. */
    uint64_t ev_msg, ev_drop, ev_timer, ev_disk, ev_call, ev_trace;
    uint64_t held_on_resume;
} demo_world_t;

typedef struct demo_node {
    const io_t *io;
    demo_world_t *w;
    uint64_t counter;   /* volatile: ticks since the first boot */
    uint64_t synced;    /* the last value whose fsync completed */
    uint64_t writing;   /* value in the write+fsync in flight, 0 = none */
    uint8_t wbuf[8], rbuf[8];
    int ready;          /* recovery done */
} demo_node_t;

static void demo_put_u64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t demo_get_u64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static void *demo_boot(void *arg, const io_t *io) {
    demo_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL) return NULL;
    n->io = io;
    n->w = arg;
    /* Recovery: read the durable counter before doing anything else. */
    if (io_disk_read(io, "counter", 0, n->rbuf, sizeof(n->rbuf), DEMO_TOKEN_READ) != 0) {
        free(n);
        return NULL;
    }
    return n;
}

static void demo_halt(void *node, int graceful) {
    demo_node_t *n = node;
    demo_world_t *w = n->w;
    if (!graceful) {
        w->counter_at_crash[n->io->self] = n->counter;
        w->synced_at_crash[n->io->self] = n->synced;
    }
    free(n);
}

static void demo_send(demo_node_t *n, io_addr_t to, uint8_t kind) {
    uint8_t msg[9];
    msg[0] = kind;
    demo_put_u64(msg + 1, n->counter);
    (void)io_send(n->io, to, msg, sizeof(msg));
}

static void demo_on_message(void *node, io_addr_t from, const uint8_t *b,
                            size_t len) {
    demo_node_t *n = node;
    if (!n->ready || len != 9) return; /* validate: never trust the wire */
    if (b[0] == DEMO_MSG_PING) {
        n->w->pings[n->io->self]++;
        demo_send(n, from, DEMO_MSG_PONG);
    } else if (b[0] == DEMO_MSG_PONG) {
        n->w->pongs[n->io->self]++;
    }
}

static void demo_tick(demo_node_t *n) {
    const io_t *io = n->io;
    n->counter++;
    /* Ping a random other host. */
    io_addr_t to = (io_addr_t)((io->self + 1 + io_random_u64(io) % (DEMO_HOSTS - 1)) %
                               DEMO_HOSTS);
    demo_send(n, to, DEMO_MSG_PING);
    /* Persist the counter unless a previous write+fsync is still running;
     * the disk is serial, so the fsync covers the write issued before it. */
    if (n->writing == 0) {
        n->writing = n->counter;
        demo_put_u64(n->wbuf, n->counter);
        if (io_disk_write(io, "counter", 0, n->wbuf, 8, DEMO_TOKEN_WRITE) != 0 ||
            io_disk_fsync(io, "counter", DEMO_TOKEN_FSYNC) != 0)
            n->writing = 0;
    }
    (void)io_timer_set(io, io_now_ns(io) + DEMO_TICK_NS, DEMO_TOKEN_TICK);
}

static void demo_on_timer(void *node, uint64_t token) {
    if (token == DEMO_TOKEN_TICK) demo_tick(node);
}

static void demo_on_disk_done(void *node, uint64_t token, int64_t result) {
    demo_node_t *n = node;
    demo_world_t *w = n->w;
    if (token == DEMO_TOKEN_READ) {
        uint32_t self = n->io->self;
        n->counter = result == 8 ? demo_get_u64(n->rbuf) : 0;
        n->synced = n->counter;
        if (w->boots[self] < DEMO_BOOTS_MAX) w->recovered[self][w->boots[self]] = n->counter;
        w->boots[self]++;
        n->ready = 1;
        io_trace(n->io, "demo.recovered", NULL);
        (void)io_timer_set(n->io, io_now_ns(n->io) + DEMO_TICK_NS, DEMO_TOKEN_TICK);
    } else if (token == DEMO_TOKEN_FSYNC) {
        if (result == 0) n->synced = n->writing;
        n->writing = 0;
    }
}

static const io_handler_t demo_handler = {demo_on_message, demo_on_timer,
                                          demo_on_disk_done};
static const io_program_t demo_program = {"demo-ping", demo_boot, demo_halt,
                                          &demo_handler};

/* ---- the fault timeline ---------------------------------------------- */

static void demo_set_loss(sim_t *sim, double loss) {
    sim_link_config_t c;
    for (uint32_t f = 0; f < DEMO_HOSTS; f++)
        for (uint32_t t = 0; t < DEMO_HOSTS; t++) {
            if (sim_link_get_config(sim, f, t, &c) != 0) continue;
            c.loss = loss;
            (void)sim_link_configure(sim, f, t, &c);
        }
}

static void demo_loss_on(sim_t *sim, void *arg) { (void)arg; demo_set_loss(sim, 0.2); }
static void demo_loss_off(sim_t *sim, void *arg) { (void)arg; demo_set_loss(sim, 0.0); }
static void demo_partition(sim_t *sim, void *arg) {
    (void)arg;
    (void)sim_link_block(sim, 0, 1, true);
    (void)sim_link_block(sim, 1, 0, true);
}
static void demo_heal(sim_t *sim, void *arg) { (void)arg; sim_net_heal(sim); }
static void demo_crash(sim_t *sim, void *arg) { (void)arg; (void)sim_host_crash(sim, 2); }
static void demo_restart(sim_t *sim, void *arg) { (void)arg; (void)sim_host_start(sim, 2); }
static void demo_pause(sim_t *sim, void *arg) { (void)arg; (void)sim_host_pause(sim, 1); }
static void demo_resume(sim_t *sim, void *arg) { (void)arg; (void)sim_host_resume(sim, 1); }

typedef struct demo_action {
    uint64_t time_ns;
    sim_callback_t cb;
} demo_action_t;

static const demo_action_t demo_timeline[] = {
    {50000000, demo_loss_on},  {100000000, demo_loss_off},
    {120000000, demo_partition}, {170000000, demo_heal},
    {200000000, demo_crash},   {230000000, demo_restart},
    {260000000, demo_pause},   {280000000, demo_resume},
};

static void demo_observe(void *arg, uint64_t time_ns, uint32_t host,
                         const char *kind, const char *detail) {
    demo_world_t *w = arg;
    (void)time_ns;
    (void)host;
    if (strcmp(kind, "msg") == 0) w->ev_msg++;
    else if (strcmp(kind, "msg.drop") == 0) w->ev_drop++;
    else if (strcmp(kind, "timer") == 0) w->ev_timer++;
    else if (strcmp(kind, "disk") == 0) w->ev_disk++;
    else if (strcmp(kind, "call") == 0) w->ev_call++;
    else if (strcmp(kind, "trace") == 0) w->ev_trace++;
    else if (strcmp(kind, "resume") == 0 && detail != NULL &&
             strncmp(detail, "held=", 5) == 0)
        w->held_on_resume += strtoull(detail + 5, NULL, 10);
}

static int demo_setup(demo_world_t *w) {
    sim_set_observer(w->sim, demo_observe, w);
    sim_link_config_t c;
    sim_link_config_default(&c);
    c.latency = (sim_dist_t){SIM_DIST_UNIFORM, 200000, 1000000};
    int rc = sim_link_configure(w->sim, SIM_ANY, SIM_ANY, &c);
    for (uint32_t i = 0; rc == 0 && i < DEMO_HOSTS; i++)
        rc = sim_host_set_program(w->sim, i, &demo_program, w);
    for (uint32_t i = 0; rc == 0 && i < DEMO_HOSTS; i++)
        rc = sim_host_start(w->sim, i);
    size_t n = sizeof(demo_timeline) / sizeof(demo_timeline[0]);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sim_call_at(w->sim, demo_timeline[i].time_ns, demo_timeline[i].cb, w);
    return rc;
}

/* ---- the report ------------------------------------------------------ */

static void demo_print(const demo_world_t *w, FILE *out) {
    sim_t *sim = w->sim;
    fprintf(out, "chaoslab kernel demo  seed=%" PRIu64 "\n", sim_seed(sim));
    fprintf(out, "  simulated %.1f ms, %" PRIu64 " events\n",
            (double)sim_now_ns(sim) / 1e6, sim_events_processed(sim));
    fprintf(out, "  events: %" PRIu64 " message deliveries, %" PRIu64
                 " drops on arrival, %" PRIu64 " timers, %" PRIu64
                 " disk completions, %" PRIu64 " scheduled actions, %" PRIu64
                 " trace records\n",
            w->ev_msg, w->ev_drop, w->ev_timer, w->ev_disk, w->ev_call, w->ev_trace);
    fprintf(out, "  timeline: loss 20%% 50-100ms, partition 0<->1 120-170ms, "
                 "crash host 2 at 200ms + restart at 230ms, pause host 1 260-280ms\n");
    sim_link_stats_t tot;
    memset(&tot, 0, sizeof(tot));
    fprintf(out, "  network (per link from->to: sent delivered lost blocked down):\n");
    for (uint32_t f = 0; f < DEMO_HOSTS; f++)
        for (uint32_t t = 0; t < DEMO_HOSTS; t++) {
            sim_link_stats_t s;
            if (f == t || sim_link_stats(sim, f, t, &s) != 0) continue;
            fprintf(out, "    %u->%u  %6" PRIu64 " %6" PRIu64 " %5" PRIu64 " %5" PRIu64
                         " %5" PRIu64 "\n",
                    f, t, s.sent, s.delivered, s.dropped_loss, s.dropped_blocked,
                    s.dropped_down);
            tot.sent += s.sent;
            tot.delivered += s.delivered;
            tot.dropped_loss += s.dropped_loss;
            tot.dropped_blocked += s.dropped_blocked;
            tot.dropped_down += s.dropped_down;
            tot.dropped_overflow += s.dropped_overflow;
        }
    fprintf(out, "  messages: sent=%" PRIu64 " delivered=%" PRIu64
                 " dropped: loss=%" PRIu64 " partition=%" PRIu64 " host-down=%" PRIu64
                 " overflow=%" PRIu64 "\n",
            tot.sent, tot.delivered, tot.dropped_loss, tot.dropped_blocked,
            tot.dropped_down, tot.dropped_overflow);
    for (uint32_t h = 0; h < DEMO_HOSTS; h++) {
        const sim_disk_stats_t *d = sim_disk_stats(sim_host_disk(sim, h));
        fprintf(out, "  host %u: incarnation=%u pings=%" PRIu64 " pongs=%" PRIu64
                     " disk writes=%" PRIu64 " fsyncs=%" PRIu64 " reads=%" PRIu64
                     " crashes=%" PRIu64 "\n",
                h, sim_host_incarnation(sim, h), w->pings[h], w->pongs[h], d->writes,
                d->fsyncs, d->reads, d->crashes);
    }
    fprintf(out, "  crash of host 2: counter was %" PRIu64 " (last fsynced %" PRIu64
                 "); after restart it recovered %" PRIu64 " from its disk\n",
            w->counter_at_crash[2], w->synced_at_crash[2],
            w->boots[2] >= 2 ? w->recovered[2][1] : 0);
    fprintf(out, "  pause of host 1: %" PRIu64
                 " events held, delivered in order right after resume\n",
            w->held_on_resume);
    fprintf(out, "  trace hash: %016" PRIx64 "\n", sim_trace_hash(sim));
    fprintf(out, "  reproduce with seed=%" PRIu64 "\n", sim_seed(sim));
}

int sim_demo_run(uint64_t seed, FILE *out) {
    assert(out != NULL);
    demo_world_t *w = calloc(1, sizeof(*w));
    if (w == NULL) return IO_ENOMEM;
    sim_config_t cfg = {seed, DEMO_HOSTS};
    int rc = sim_new(&cfg, &w->sim);
    if (rc == 0) rc = demo_setup(w);
    if (rc == 0) {
        sim_run_result_t r = sim_run(w->sim, DEMO_END_NS, 0);
        assert(r == SIM_RUN_TIME_LIMIT);
        (void)r;
        demo_print(w, out);
    }
    sim_free(w->sim);
    free(w);
    return rc;
}
