/*
 * sim/sim.h — the deterministic discrete-event simulation kernel.
 *
 * One `sim_t` is one simulated world: virtual time (uint64_t ns), an event
 * queue ordered by (time_ns, seq), N hosts each running an io_program_t on its
 * own io_t (clock, PRNG stream, virtual disk), and a virtual network of
 * directed links between host addresses. Hosts are brokers and clients alike:
 * address i is host i, 0 <= i < hosts_count.
 *
 * Determinism: single-threaded; every random draw comes from a stream derived
 * from the run seed (sim/prng.h); ties are broken by `seq`, never by pointers.
 * A running 64-bit trace hash covers every processed event (time, host, kind,
 * payload bytes): same seed + same inputs + same binary = same hash.
 *
 * Ownership: the caller owns the sim_t (sim_new/sim_free). Programs and their
 * `arg` pointers are owned by the caller and must outlive the sim. Functions
 * return 0 or a negative IO_E* code; bad arguments return IO_EINVAL.
 */
#ifndef CHAOSLAB_SIM_SIM_H
#define CHAOSLAB_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/io.h"
#include "sim/disk.h"
#include "sim/prng.h"

#define SIM_HOSTS_MAX 256u             /* hosts (brokers + clients) per sim */
#define SIM_TIMERS_PER_HOST_MAX 4096u  /* armed timers per host */
#define SIM_LINK_CAPACITY_DEFAULT 4096u /* in-flight messages per link */
#define SIM_ANY UINT32_MAX             /* wildcard host in link calls */

typedef struct sim sim_t;

typedef struct sim_config {
    uint64_t seed;
    uint32_t hosts_count; /* 1..SIM_HOSTS_MAX */
} sim_config_t;

/* Create a world with every host down and no program. Every link starts with
 * the default link config (1ms const latency, no faults). */
int sim_new(const sim_config_t *cfg, sim_t **out);
/* Halts every running node (as a crash, without disk crash effects) and frees
 * everything. NULL is fine. */
void sim_free(sim_t *sim);

uint64_t sim_now_ns(const sim_t *sim);
uint64_t sim_seed(const sim_t *sim);
uint32_t sim_hosts_count(const sim_t *sim);
uint64_t sim_trace_hash(const sim_t *sim);
uint64_t sim_events_processed(const sim_t *sim);
/* A stream of the kernel's seed for components outside the kernel (faults,
 * workloads, Lua): sim_prng_init(p, sim_seed(sim), stream). */

/* ---- running ---------------------------------------------------------- */

typedef enum sim_run_result {
    SIM_RUN_IDLE = 0,        /* queue empty */
    SIM_RUN_TIME_LIMIT = 1,  /* next event is after until_ns; now = until_ns */
    SIM_RUN_EVENT_LIMIT = 2, /* processed max_events */
    SIM_RUN_STOPPED = 3,     /* sim_stop() was called */
} sim_run_result_t;

/* Process events with time <= until_ns, at most max_events of them (0 = no
 * event bound). On TIME_LIMIT the clock advances to until_ns. On IDLE the
 * clock stays at the last processed event (schedule a call at T to move an
 * idle world to T). Skipped stale events (cancelled timers, ops of a crashed
 * incarnation) do not count as processed. */
sim_run_result_t sim_run(sim_t *sim, uint64_t until_ns, uint64_t max_events);

/* After a longjmp out of an event handler (the scenario engine ends a run
 * that way when a BROKER_INVARIANT trips, see broker/invariant.h): release
 * the payload of the event that was being processed and leave the running
 * state. The world is then fit only for sim_free (no more sim_run). Also
 * safe when the jump came from outside sim_run (a node's boot). */
void sim_run_abandon(sim_t *sim);

/* Ask sim_run to return after the current event. */
void sim_stop(sim_t *sim);

/* Schedule `cb(sim, arg)` at virtual time `time_ns` (>= now). Used by faults,
 * scenario actions and workloads. Counts as an event (hashed with kind
 * "call"). Returns 0 or IO_EINVAL (time in the past). */
typedef void (*sim_callback_t)(sim_t *sim, void *arg);
int sim_call_at(sim_t *sim, uint64_t time_ns, sim_callback_t cb, void *arg);

/* ---- hosts ------------------------------------------------------------ */

typedef enum sim_host_state {
    SIM_HOST_DOWN = 0,   /* no node (never started, crashed or stopped) */
    SIM_HOST_UP = 1,
    SIM_HOST_PAUSED = 2, /* node exists, events held until resume */
} sim_host_state_t;

/* Attach the program a host runs; the host must be down. */
int sim_host_set_program(sim_t *sim, uint32_t host, const io_program_t *prog,
                         void *arg);
/* Boot a new incarnation (program->boot) now. The host must be down.
 * Returns IO_EINVAL if it is not, or IO_ENOMEM if boot returned NULL. */
int sim_host_start(sim_t *sim, uint32_t host);
/* Machine crash: halt(node, 0), drop every pending timer, disk op and
 * undelivered event of the host, and apply the disk's crash mode (unsynced
 * writes lost/kept/torn). Messages arriving while it is down are dropped
 * (dropped_down); messages still in flight when it restarts are delivered
 * to the new incarnation, as a real network would. While a host is down its
 * io methods return IO_ECANCELED (timer_cancel returns 0). */
int sim_host_crash(sim_t *sim, uint32_t host);
/* Process crash (kill -9): like crash but the OS page cache survives, so the
 * disk keeps unsynced writes. */
int sim_host_kill(sim_t *sim, uint32_t host);
/* Graceful stop: halt(node, 1); pending events dropped; disk cache kept. */
int sim_host_stop(sim_t *sim, uint32_t host);
/* Pause (SIGSTOP / GC pause): events due to the host are held, in order,
 * and delivered right after resume. Its clock keeps running. */
int sim_host_pause(sim_t *sim, uint32_t host);
int sim_host_resume(sim_t *sim, uint32_t host);

sim_host_state_t sim_host_state(const sim_t *sim, uint32_t host);
uint32_t sim_host_incarnation(const sim_t *sim, uint32_t host);
/* The running node (program-specific type) or NULL when down. */
void *sim_host_node(const sim_t *sim, uint32_t host);
sim_disk_t *sim_host_disk(sim_t *sim, uint32_t host);
/* The io_t handed to the current incarnation (NULL when down). */
const io_t *sim_host_io(const sim_t *sim, uint32_t host);

/* Host clock: local = offset_ns + global + global * drift_ppm / 1e6.
 * drift_ppm in [-100000, 100000]; the local clock never goes back (a negative
 * step is absorbed by holding the clock until global time catches up). */
int sim_host_set_clock(sim_t *sim, uint32_t host, int64_t offset_ns,
                       int32_t drift_ppm);
uint64_t sim_host_clock_ns(const sim_t *sim, uint32_t host);

/* ---- network ---------------------------------------------------------- */

typedef struct sim_link_config {
    sim_dist_t latency;       /* one-way delivery latency */
    double loss;              /* P(message dropped) */
    double duplicate;         /* P(message delivered twice) */
    double reorder;           /* P(message delayed by up to reorder_window_ns,
                                 letting later ones overtake it) */
    uint64_t reorder_window_ns;
    double corrupt;           /* P(one random bit flipped) */
    uint32_t capacity;        /* max in flight; overflow drops; 0 = default */
    bool blocked;             /* partitioned: every message dropped */
} sim_link_config_t;

typedef struct sim_link_stats {
    uint64_t sent, delivered;
    uint64_t dropped_loss, dropped_blocked, dropped_overflow, dropped_down;
    uint64_t duplicated, reordered, corrupted, clogged;
    uint64_t bytes_delivered;
    uint32_t in_flight;
} sim_link_stats_t;

void sim_link_config_default(sim_link_config_t *cfg);
int sim_link_config_check(const sim_link_config_t *cfg);

/* Set the config of link from->to. SIM_ANY matches every host on that side
 * (from == to links are kept too: a host may send to itself). Applies to
 * messages sent from now on; `blocked` also drops in-flight messages on
 * arrival. Without reorder, a link delivers in send order (FIFO, like TCP). */
int sim_link_configure(sim_t *sim, uint32_t from, uint32_t to,
                       const sim_link_config_t *cfg);
int sim_link_get_config(const sim_t *sim, uint32_t from, uint32_t to,
                        sim_link_config_t *out);
/* Partition helpers: block/unblock a directed link (SIM_ANY allowed). */
int sim_link_block(sim_t *sim, uint32_t from, uint32_t to, bool blocked);
/* Clog: messages arriving on the link are held until now + duration_ns,
 * then delivered in their original order. A new call replaces the clog's end
 * (duration 0 lifts it now); sim_net_heal lifts every clog. */
int sim_link_clog(sim_t *sim, uint32_t from, uint32_t to, uint64_t duration_ns);
/* Unblock and unclog every link (faults like loss stay as configured). */
void sim_net_heal(sim_t *sim);
int sim_link_stats(const sim_t *sim, uint32_t from, uint32_t to,
                   sim_link_stats_t *out);

/* ---- observation ------------------------------------------------------ */

/* Called for every processed event and every io trace event, after it is
 * hashed. kind is a static string: "msg" (delivered), "msg.drop" (dropped on
 * arrival: host down or link blocked), "timer", "disk", "call", host
 * lifecycle "start", "crash", "kill", "stop", "pause", "resume", "clock",
 * "msg.lost", "msg.dup", "msg.corrupt" at send (see sim_observed_bytes),
 * and "trace" for io trace events (detail = "<name> <detail>"). detail is a
 * short key=value string valid only during the call, or NULL. host is
 * SIM_ANY for "call". Used by --trace and by the history. fn may be NULL to
 * disable. */
typedef void (*sim_observer_t)(void *arg, uint64_t time_ns, uint32_t host,
                               const char *kind, const char *detail);
void sim_set_observer(sim_t *sim, sim_observer_t fn, void *arg);

/* During an observer call for "msg", "msg.drop", "msg.lost", "msg.dup" and
 * "disk" op=write: the message's (or written) bytes, else NULL with *len 0.
 * Only for decoding into a trace; the bytes are valid during the call and
 * observing them never touches the trace hash.
 *   "msg.lost"  (host = destination) dropped at send: why=blocked|loss|overflow
 *   "msg.dup"   (host = destination) the network queued a second copy
 *   "msg.corrupt" (host = destination) a bit was flipped in flight (bytes are
 *               the corrupted copy) */
const uint8_t *sim_observed_bytes(const sim_t *sim, size_t *len);

#endif
