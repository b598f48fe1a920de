/*
 * faults/faults.h — fault kinds and their injectors.
 *
 * A `faults_t` stands beside one sim_t and turns named faults into kernel
 * calls: process faults (crash, kill, restart, power loss, stop, pause,
 * resume, clock skew/drift), network faults (isolate, split, bridge, one-way,
 * ring, heal, lossy/duplicating/reordering/corrupting links, latency spikes,
 * clogging) and disk faults (torn writes on crash, corruption, latent read
 * errors, full disk, slow fsync). Every injected fault is recorded in a
 * bounded timeline (for the report); the kernel's observer sees its effects
 * (crash, clock, msg.drop, ...) as usual.
 *
 * Hosts 0..brokers_count-1 are brokers; the rest (clients) are never crashed
 * by these faults, and partitions only cut broker<->broker links (clients
 * keep reaching every broker, as in Jepsen). Link faults (loss, latency, ...)
 * apply to every link touching the chosen brokers, clients included.
 *
 * Ownership: the caller owns the faults_t and the sim; faults_init never
 * allocates beyond the struct. Functions return 0 or a negative IO_E* code;
 * a bad host/fraction/duration returns IO_EINVAL and changes nothing (a set
 * is bad when it is empty or names a host >= brokers_count). Only a call
 * that succeeded is recorded in the timeline.
 */
#ifndef CHAOSLAB_FAULTS_FAULTS_H
#define CHAOSLAB_FAULTS_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "sim/sim.h"

#define FAULTS_TIMELINE_MAX 4096u   /* recorded fault events per run */
#define FAULTS_DETAIL_MAX 96u       /* bytes of detail text per event */
#define FAULTS_BROKERS_MAX 7u       /* replicas 1..7 */
#define FAULTS_HOSTS_MAX 256u       /* hosts (brokers + clients) client faults reach */
#define FAULTS_WIPE_FILES_MAX 64u   /* files one broker's disk may hold when wiped */

typedef uint32_t faults_set_t; /* bit i = broker i */

typedef struct faults_event {
    uint64_t time_ns;
    char kind[24];
    char target[24];
    char detail[FAULTS_DETAIL_MAX];
} faults_event_t;

/* One call to a fault injector with its concrete arguments: a run's fault
 * schedule is a list of them (scenarios/engine.c records it, the shrinker
 * replays it). Calling the same injectors with the same ops at the same
 * virtual times repeats the run. FAULTS_OP_DRAW is a faults_random_set
 * (host = count): it moves the faults stream, which disk_corrupt draws from. */
typedef enum faults_op_kind {
    FAULTS_OP_DRAW = 0, FAULTS_OP_CRASH, FAULTS_OP_KILL, FAULTS_OP_STOP, FAULTS_OP_RESTART,
    FAULTS_OP_PAUSE, FAULTS_OP_RESUME, FAULTS_OP_POWER_LOSS, FAULTS_OP_CLOCK,
    FAULTS_OP_ISOLATE, FAULTS_OP_SPLIT, FAULTS_OP_BRIDGE, FAULTS_OP_ONE_WAY, FAULTS_OP_RING,
    FAULTS_OP_HEAL_NET, FAULTS_OP_CLIENT_PARTITION, FAULTS_OP_CLIENT_CRASH,
    FAULTS_OP_CLIENT_RESTART, FAULTS_OP_WIPE, FAULTS_OP_LINKS, FAULTS_OP_CLOG,
    FAULTS_OP_DISK_CRASH_MODE, FAULTS_OP_DISK_CORRUPT, FAULTS_OP_DISK_READ_ERRORS,
    FAULTS_OP_DISK_FULL, FAULTS_OP_DISK_SLOW, FAULTS_OP_DISK_FAST, FAULTS_OP_HEAL_DISK,
    FAULTS_OP_KINDS_COUNT
} faults_op_kind_t;

#define FAULTS_OP_PREFIX_MAX 16u

typedef struct faults_op {
    faults_op_kind_t kind;
    faults_set_t set;        /* hosts; split/bridge side; one_way from; client_partition brokers */
    faults_set_t to;         /* one_way: the receivers */
    uint32_t host;           /* bridge broker; client host; draw count; corrupt bits;
                                crash mode (sim_disk_crash_mode_t) */
    int64_t offset_ns;       /* clock */
    int32_t drift_ppm;       /* clock */
    uint64_t duration_ns;    /* clog; disk_slow fsync latency */
    double keep_probability; /* disk_crash_mode */
    bool full;               /* disk_full */
    struct {                 /* links (faults_link_spec_t, declared below) */
        double loss, duplicate, reorder, corrupt;
        uint64_t extra_latency_ns, reorder_window_ns;
        bool brokers_only;
    } link;
    char prefix[FAULTS_OP_PREFIX_MAX]; /* disk_corrupt / read_errors file prefix, "" = all */
} faults_op_t;

/* Told of every injector call that succeeded, with its op (NULL = none). */
typedef void (*faults_op_fn)(void *arg, const faults_op_t *op);

/* Asks the embedding world which broker leads now; -1 when none is known. */
typedef int (*faults_leader_fn)(void *arg);

/* Told of every recorded fault event as it happens, even past the timeline's
 * capacity (the decoded trace writes one line per action). */
typedef void (*faults_record_fn)(void *arg, const faults_event_t *event);

typedef struct faults {
    sim_t *sim;
    faults_record_fn record_fn;
    void *record_arg;
    uint32_t brokers_count;
    faults_leader_fn leader_fn;
    void *leader_arg;
    sim_link_config_t base_link; /* the scenario's healthy link config */
    sim_disk_config_t base_disk; /* the scenario's healthy disk config */
    sim_prng_t prng;             /* stream SIM_STREAM_FAULTS */
    faults_event_t *timeline;    /* caller-provided storage, or NULL */
    uint32_t timeline_cap;
    uint32_t timeline_count;
    uint32_t timeline_dropped;   /* events past the capacity */
    faults_op_fn op_fn;          /* the schedule recorder, or NULL */
    void *op_arg;
    bool client_crashed[FAULTS_HOSTS_MAX]; /* client hosts crashed by
                                              faults_client_crash: heal boots them */
} faults_t;

/* Bind `f` to `sim`. `timeline` (capacity `timeline_cap`, clamped to
 * FAULTS_TIMELINE_MAX) is owned by the caller and may be NULL with cap 0
 * (nothing recorded). base_link/base_disk are copied; they are what heal
 * restores. Returns IO_EINVAL for brokers_count 0 or > FAULTS_BROKERS_MAX or
 * more brokers than hosts, a NULL timeline with a capacity, or a base config
 * the kernel would refuse (or a blocked base link). */
int faults_init(faults_t *f, sim_t *sim, uint32_t brokers_count,
                const sim_link_config_t *base_link,
                const sim_disk_config_t *base_disk, faults_event_t *timeline,
                uint32_t timeline_cap);
void faults_set_leader_fn(faults_t *f, faults_leader_fn fn, void *arg);
/* Call fn for every fault event recorded from now on (NULL = none). */
void faults_set_record_fn(faults_t *f, faults_record_fn fn, void *arg);

/* Call fn with every successful injector call from now on (NULL = none). */
void faults_set_op_fn(faults_t *f, faults_op_fn fn, void *arg);
/* Call the injector `op` names with its arguments; its return code. */
int faults_apply_op(faults_t *f, const faults_op_t *op);
/* "crash", "disk_slow", ...: the op's name (the Lua function's, mostly). */
const char *faults_op_name(faults_op_kind_t kind);

/* The set with every broker. */
faults_set_t faults_all(const faults_t *f);
/* The current leader as a one-broker set, or 0 if none is known. */
faults_set_t faults_leader_set(const faults_t *f);
/* A random set of `count` brokers (deterministic from the faults stream). */
faults_set_t faults_random_set(faults_t *f, uint32_t count);

/* ---- process ------------------------------------------------------------
 * Each applies to the brokers of the set that are in the right state (crash
 * skips down ones, restart skips up ones, ...). One host failing (a boot
 * returning NULL) does not stop the others: the first error is returned and
 * nothing is recorded. */
int faults_crash(faults_t *f, faults_set_t hosts);   /* machine crash */
int faults_kill(faults_t *f, faults_set_t hosts);    /* kill -9: page cache kept */
int faults_stop(faults_t *f, faults_set_t hosts);    /* graceful */
int faults_restart(faults_t *f, faults_set_t hosts); /* boot those that are down */
int faults_pause(faults_t *f, faults_set_t hosts);
int faults_resume(faults_t *f, faults_set_t hosts);
/* Power loss of every broker: crash all at once. */
int faults_power_loss(faults_t *f);
int faults_clock(faults_t *f, faults_set_t hosts, int64_t offset_ns,
                 int32_t drift_ppm);

/* ---- network partitions (broker<->broker links only) -------------------- */
/* Cut `hosts` from every other broker, both directions. */
int faults_isolate(faults_t *f, faults_set_t hosts);
/* Split into `side` and the rest: no link crosses. */
int faults_split(faults_t *f, faults_set_t side);
/* Two sides that cannot talk, joined by one `bridge` broker that sees both. */
int faults_bridge(faults_t *f, faults_set_t side_a, uint32_t bridge);
/* Messages from `from` to `to` are dropped; the reverse flows. */
int faults_one_way(faults_t *f, faults_set_t from, faults_set_t to);
/* Majorities ring: broker i talks only to its ring neighbours (i±1 .. within
 * a majority window), so every node sees a majority but no two see the same. */
int faults_ring(faults_t *f);
/* Unblock and unclog everything and restore the base link config. */
int faults_heal_net(faults_t *f);

/* Client faults. `host` is a client's host (>= brokers_count, < the sim's
 * hosts and FAULTS_HOSTS_MAX). partition: cut the links between the client
 * and every broker in `brokers`, both ways (heal_net removes it). crash: the
 * client process dies (what it had in flight is unknown / forgotten); it
 * stays down until faults_client_restart or heal_all. */
int faults_client_partition(faults_t *f, uint32_t host, faults_set_t brokers);
int faults_client_crash(faults_t *f, uint32_t host);
int faults_client_restart(faults_t *f, uint32_t host);

/* Permanent disk loss: crash each broker, delete every file on its disk
 * (log, snapshot, term and vote) and boot it again, empty: it rejoins as a
 * new member that has forgotten its vote, and catches up from the leader
 * (log or snapshot). */
int faults_wipe(faults_t *f, faults_set_t hosts);

/* ---- link faults (every link touching `hosts`, clients included) -------- */
/* extra_latency_ns must keep base + extra within the kernel's range; a
 * probability outside [0, 1] (or NaN) is IO_EINVAL. */
typedef struct faults_link_spec {
    double loss, duplicate, reorder, corrupt; /* probabilities, [0, 1] */
    uint64_t extra_latency_ns;                /* added to the base latency */
    uint64_t reorder_window_ns;
    /* Only broker<->broker links. Client links model TCP connections, where
     * a lost frame is a broken connection rather than a silent gap; the
     * nemesis uses this, scenarios opt in to client-link loss explicitly. */
    bool brokers_only;
} faults_link_spec_t;
int faults_links(faults_t *f, faults_set_t hosts, const faults_link_spec_t *spec);
/* Clog every link between `hosts` and the other brokers for duration_ns
 * (client links flow). IO_EINVAL for 0 or a duration the kernel refuses. */
int faults_clog(faults_t *f, faults_set_t hosts, uint64_t duration_ns);

/* ---- disk --------------------------------------------------------------- */
/* Crash behaviour of the disk: lose unsynced writes, keep them whole with
 * probability p, or tear them at sector boundaries with probability p. */
int faults_disk_crash_mode(faults_t *f, faults_set_t hosts,
                           sim_disk_crash_mode_t mode, double keep_probability);
/* Flip `bits` random bits in the files whose names start with `prefix`
 * (NULL or "" = every file). */
int faults_disk_corrupt(faults_t *f, faults_set_t hosts, const char *prefix,
                        uint32_t bits);
/* Latent read errors over the non-empty files whose names start with
 * `prefix` (NULL or "" = every file) that exist now, at most 64 per disk;
 * files created later are unaffected. IO_ENOMEM once a disk holds
 * SIM_DISK_READ_ERRORS_MAX ranges (the ranges added so far stay). */
int faults_disk_read_errors(faults_t *f, faults_set_t hosts, const char *prefix);
/* full: pin each disk's capacity at what it uses now, so every write that
 * grows it fails with IO_ENOSPC (overwrites in place still work; an empty
 * disk is pinned at 1 byte, since capacity 0 means unlimited). !full:
 * restore the base capacity. */
int faults_disk_full(faults_t *f, faults_set_t hosts, bool full);
/* fsync latency becomes fsync_latency_ns + exponential(fsync_latency_ns / 2);
 * 0 or more than 60 s is IO_EINVAL. */
int faults_disk_slow(faults_t *f, faults_set_t hosts, uint64_t fsync_latency_ns);
/* Undo disk_slow on `hosts` only: back to the base fsync latency, keeping
 * the crash mode, read errors and capacity a scenario set on purpose. */
int faults_disk_fast(faults_t *f, faults_set_t hosts);
/* Restore the base disk config and clear read errors. */
int faults_heal_disk(faults_t *f);

/* Heal everything: network, disk, clocks (offset and drift 0); resume paused
 * brokers and restart the ones that are down. Every broker is tried even if
 * one fails; the first error is returned. */
int faults_heal_all(faults_t *f);

/* Record an event in the timeline (also used by the nemesis and scenarios). */
void faults_record(faults_t *f, const char *kind, const char *target,
                   const char *detail);

/* Format a set as "n0,n2" into buf (always NUL-terminated). */
void faults_set_format(faults_set_t set, char *buf, size_t cap);

#endif
