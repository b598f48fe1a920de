/*
 * faults/nemesis.h — a random fault generator with swarm testing.
 *
 * The nemesis injects one fault at a time: it waits an exponential interval,
 * picks one of its enabled kinds, applies it, and undoes it after an
 * exponential duration (restart after a crash, resume after a pause, heal
 * after a partition or a lossy period). With `swarm` on (as TigerBeetle's
 * VOPR does), each seed first draws which kinds are enabled and how hard
 * each hits, so a sweep over seeds explores very different fault mixes.
 *
 * All randomness comes from its own stream of the run seed, so adding a draw
 * elsewhere never changes the fault schedule. The caller owns the nemesis_t;
 * it must outlive the simulation run (the kernel holds callbacks to it).
 */
#ifndef CHAOSLAB_FAULTS_NEMESIS_H
#define CHAOSLAB_FAULTS_NEMESIS_H

#include <stdbool.h>
#include <stdint.h>

#include "faults/faults.h"

typedef enum nemesis_kind {
    NEMESIS_CRASH = 0,        /* crash a minority, restart later */
    NEMESIS_KILL,             /* kill -9 a minority (page cache survives) */
    NEMESIS_PAUSE,            /* pause a minority (GC pause / SIGSTOP) */
    NEMESIS_ISOLATE_LEADER,   /* cut the leader off */
    NEMESIS_ISOLATE,          /* cut a random broker off */
    NEMESIS_SPLIT,            /* minority / majority split */
    NEMESIS_BRIDGE,           /* two halves joined by one broker */
    NEMESIS_ONE_WAY,          /* asymmetric: one broker cannot send */
    NEMESIS_RING,             /* majorities ring (5+ brokers) */
    NEMESIS_FLAKY,            /* loss + duplication + reordering */
    NEMESIS_CORRUPT_NET,      /* bit flips on the wire */
    NEMESIS_LATENCY,          /* latency spike */
    NEMESIS_CLOG,             /* links stall, then flow */
    NEMESIS_CLOCK,            /* clock skew and drift */
    NEMESIS_DISK_SLOW,        /* slow fsync */
    NEMESIS_DISK_CORRUPT,     /* bit flips in one replica's log */
    NEMESIS_POWER_LOSS,       /* every broker crashes at once */
    NEMESIS_KINDS_COUNT
} nemesis_kind_t;

#define NEMESIS_KINDS_ALL ((UINT32_C(1) << NEMESIS_KINDS_COUNT) - 1u)
/* The kinds a correct, fully durable configuration must survive without
 * loss: everything. Listed for scenarios that want "everything but X". */

/* Bound on interval_mean_ns and duration_mean_ns (about 4.9 hours): the
 * exponential draws reach 64x the mean, and that must stay far from
 * overflowing virtual time. */
#define NEMESIS_MEAN_MAX_NS (UINT64_C(1) << 44)

typedef struct nemesis_config {
    uint32_t kinds_mask;        /* bit per nemesis_kind_t allowed */
    bool swarm;                 /* draw a per-seed subset and intensities */
    uint64_t start_ns, stop_ns; /* active window (virtual time) */
    uint64_t interval_mean_ns;  /* quiet time between faults */
    uint64_t duration_mean_ns;  /* how long a fault lasts */
} nemesis_config_t;

typedef struct nemesis {
    faults_t *faults;
    nemesis_config_t cfg;
    sim_prng_t prng;
    uint32_t enabled_mask;                 /* after the swarm draw */
    double intensity[NEMESIS_KINDS_COUNT]; /* 0.25 .. 1.0 */
    int active;                            /* kind in force, or -1 */
    faults_set_t active_set;
    uint64_t injected;                     /* faults applied */
    void (*step_fn)(void *arg);            /* told at each tick / undo (a schedule step) */
    void *step_arg;
    uint64_t injected_by_kind[NEMESIS_KINDS_COUNT];
} nemesis_t;

void nemesis_config_default(nemesis_config_t *cfg);
/* Parse a kind name ("crash", "isolate_leader", ...): kind or -1. */
int nemesis_kind_parse(const char *name);
const char *nemesis_kind_name(nemesis_kind_t kind);

/* Draw the swarm and schedule the first fault (after start_ns; none is
 * injected at or after stop_ns, and the one in force is undone by stop_ns at
 * the latest). Returns IO_EINVAL for a mask with no kind or an unknown bit,
 * a mask left empty once the kinds the cluster is too small for (ring < 5
 * brokers, bridge < 3) are removed, an empty window, or a mean that is zero
 * or above NEMESIS_MEAN_MAX_NS. `faults` must outlive the run. */
int nemesis_start(nemesis_t *n, faults_t *faults, const nemesis_config_t *cfg);

/* Call fn at the start of every tick and undo, before its fault is applied:
 * the engine's schedule recorder groups the ops of one call event by it.
 * Set after nemesis_start (which clears the struct). */
void nemesis_set_step_fn(nemesis_t *n, void (*fn)(void *arg), void *arg);

/* Describe the swarm draw ("crash,pause,flaky") into buf. */
void nemesis_describe(const nemesis_t *n, char *buf, size_t cap);

#endif
