/*
 * sim/kernel_internal.h — the kernel's private structures, shared by sim.c
 * (time, hosts, timers, disk ops) and net.c (links, messages). Not for use
 * outside sim/.
 */
#ifndef CHAOSLAB_SIM_KERNEL_INTERNAL_H
#define CHAOSLAB_SIM_KERNEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/io.h"
#include "sim/disk.h"
#include "sim/prng.h"
#include "sim/sim.h"

#define SIM__SEQ_NORMAL_BASE (UINT64_C(1) << 63)

/* Pending events (heap + held by paused hosts): bounded so a runaway program
 * gets IO_ENOMEM instead of eating the machine. */
#define SIM__EVENTS_MAX (UINT32_C(1) << 24)
/* Disk operations issued and not yet completed, per host. */
#define SIM__DISK_OPS_PER_HOST_MAX 65536u
/* Largest single disk read or write; bigger is a core bug (IO_EINVAL). */
#define SIM__DISK_IO_SIZE_MAX (UINT64_C(64) << 20)
/* Messages up to this size come from the kernel's slab free list. */
#define SIM__SLAB_BLOCK_BYTES 256u
/* Free slab blocks kept for reuse; extra ones go back to malloc. */
#define SIM__SLAB_FREE_MAX 65536u
/* Most in-flight messages one link may be configured for. */
#define SIM__LINK_CAPACITY_MAX (UINT32_C(1) << 20)
/* Longest reorder window (about 13 days): keeps time sums far from overflow. */
#define SIM__REORDER_WINDOW_MAX_NS (UINT64_C(1) << 50)
/* Largest |clock offset| (about 292 years would overflow; keep 2^62). */
#define SIM__CLOCK_OFFSET_MAX_NS (INT64_C(1) << 62)
#define SIM__DRIFT_PPM_MAX 100000
/* Longest observer detail string built by the kernel. */
#define SIM__DETAIL_MAX 256u

typedef enum sim__event_kind {
    SIM__EV_CALL = 1,
    SIM__EV_MSG = 2,
    SIM__EV_TIMER = 3,
    SIM__EV_DISK = 4,
    SIM__EV_CLOG = 5, /* internal: release a link's clogged messages */
} sim__event_kind_t;

typedef enum sim__disk_kind {
    SIM__DISK_WRITE = 1,
    SIM__DISK_READ = 2,
    SIM__DISK_FSYNC = 3,
    SIM__DISK_TRUNCATE = 4,
    SIM__DISK_REMOVE = 5,
} sim__disk_kind_t;

typedef struct sim__disk_op {
    sim__disk_kind_t kind;
    char name[IO_FILE_NAME_MAX + 1];
    uint64_t offset;     /* write/read */
    uint64_t size_bytes; /* truncate */
    size_t len;          /* write/read */
    uint8_t *bytes;      /* write: the kernel's copy (owned) */
    uint8_t *buf;        /* read: the node's buffer (not owned) */
    uint64_t token;
} sim__disk_op_t;

/* One event, stored by value in the heap. Ordered by (time_ns, seq) only. */
typedef struct sim__event {
    uint64_t time_ns;
    uint64_t seq;
    uint32_t kind;        /* sim__event_kind_t */
    uint32_t host;        /* destination host; SIM_ANY for calls */
    uint32_t incarnation; /* timers/disk: the host incarnation that issued it */
    uint32_t pad;
    union {
        struct {
            sim_callback_t cb;
            void *arg;
        } call;
        struct {
            uint8_t *bytes; /* owned by the event (slab or malloc) */
            uint32_t len;
            uint32_t from;
        } msg;
        struct {
            uint64_t token;
            uint64_t arming; /* must equal the live arming to fire */
        } timer;
        struct {
            sim__disk_op_t *op; /* owned by the event */
        } disk;
        struct {
            uint64_t link;   /* index into sim->links */
            uint64_t arming; /* must equal the link's release_arming */
        } clog;
    } u;
} sim__event_t;

typedef struct sim__heap {
    sim__event_t *items;
    uint32_t count;
    uint32_t capacity;
} sim__heap_t;

/* A FIFO of events held for a paused host. */
typedef struct sim__held {
    sim__event_t *items;
    uint32_t count;
    uint32_t capacity;
} sim__held_t;

typedef struct sim__timer_slot {
    uint64_t token;
    uint64_t arming; /* 0 = empty slot; else the seq of the live arming */
    uint64_t deadline_ns; /* host-local clock */
} sim__timer_slot_t;

typedef struct sim__timers {
    sim__timer_slot_t *slots; /* open addressing, linear probing */
    uint32_t capacity;        /* power of two, or 0 before first use */
    uint32_t count;
} sim__timers_t;

typedef struct sim__host {
    sim_t *sim;
    uint32_t index;
    sim_host_state_t state;
    uint32_t incarnation; /* boots so far; events carry the one that made them */
    const io_program_t *prog;
    void *prog_arg;
    void *node;
    io_t io;
    sim_prng_t prng;      /* SIM_STREAM_HOST_BASE + index */
    sim_prng_t disk_prng; /* SIM_STREAM_DISK_BASE + index */
    sim_disk_t *disk;
    /* Clock model: local = max(raw(global), floor_ns) where raw(g) =
     * offset_ns + g + g * drift_ppm / 1e6. floor_ns keeps it monotonic
     * across set_clock steps without mutating anything on reads. */
    int64_t offset_ns;
    int32_t drift_ppm;
    uint64_t clock_floor_ns;
    sim__timers_t timers;
    uint64_t disk_busy_until_ns; /* completion time of the last issued op */
    uint32_t disk_ops_pending;
    sim__held_t held;
} sim__host_t;

typedef struct sim__link {
    sim_link_config_t cfg;
    sim_link_stats_t stats;
    uint64_t last_delivery_ns; /* FIFO floor for non-reordered messages */
    uint64_t clog_until_ns;
    /* Messages that arrived while clogged, in arrival order, and the live
     * release event (0 = none; non-zero whenever clog_held is non-empty). */
    sim__held_t clog_held;
    uint64_t release_arming;
} sim__link_t;

/* A free slab block (the first bytes of a free block hold the link). */
typedef struct sim__slab_block {
    struct sim__slab_block *next;
} sim__slab_block_t;

struct sim {
    uint64_t seed;
    uint32_t hosts_count;
    uint64_t now_ns;
    uint64_t seq; /* next event sequence number; also timer arming ids */
    /* Seqs for held events put back at `now` (resume, clog release): they
     * count up from 1 while normal seqs start at SIM__SEQ_NORMAL_BASE, so
     * released events run before anything else due at the same instant, in
     * the order they were held. */
    uint64_t seq_front;
    uint64_t trace_hash;
    uint64_t events_processed;
    uint64_t events_pending; /* heap + held, for SIM__EVENTS_MAX */
    bool stop_requested;
    bool running; /* inside sim_run: it must not be re-entered */
    /* The event being dispatched, held here (not on the stack) so that
     * sim_run_abandon can release its payload after a longjmp out of a
     * handler; `dispatching` says whether it still owns one. */
    sim__event_t current;
    bool dispatching;
    sim__heap_t heap;
    sim__host_t *hosts;
    sim__link_t *links; /* hosts_count * hosts_count, row = from */
    sim_prng_t net_prng;
    sim_prng_t kernel_prng; /* crash-time disk effects are drawn per disk */
    sim_observer_t observer;
    void *observer_arg;
    /* Bytes of the message or disk write being observed, for
     * sim_observed_bytes(); NULL outside those observer calls. */
    const uint8_t *observed_bytes;
    size_t observed_len;
    sim__slab_block_t *slab_free;
    uint32_t slab_free_count;
};

/* ---- shared between sim.c and net.c ---- */

/* Push a new event (assigns seq). Returns 0 or IO_ENOMEM when the pending
 * bound or memory is exhausted; `fresh` = 0 for re-pushes of events already
 * counted as pending (they never fail on the bound). */
int sim__schedule(sim_t *sim, sim__event_t *ev, int fresh);
/* Put back a held event (pause, clog) at time `now`, ahead of every other
 * event due now and behind events released before it: FIFO order of links
 * survives the hold. Aborts only if memory runs out mid-run. */
void sim__reschedule(sim_t *sim, const sim__event_t *ev);
/* Append to a FIFO of held events (counted as pending). 0 or IO_ENOMEM. */
int sim__held_push(sim_t *sim, sim__held_t *q, const sim__event_t *ev);
/* Codes folded into the trace hash (stable: changing one changes hashes). */
typedef enum sim__code {
    SIM__CODE_CALL = 1,
    SIM__CODE_MSG = 2,
    SIM__CODE_TIMER = 3,
    SIM__CODE_DISK = 4,
    SIM__CODE_MSG_DROP = 5,
    SIM__CODE_START = 7,
    SIM__CODE_CRASH = 8,
    SIM__CODE_KILL = 9,
    SIM__CODE_STOP = 10,
    SIM__CODE_PAUSE = 11,
    SIM__CODE_RESUME = 12,
    SIM__CODE_CLOCK = 13,
    SIM__CODE_TRACE = 14,
} sim__code_t;

/* Fold one processed event into the trace hash: time, host, code, two
 * payload words and optional bytes (NULL = none). */
void sim__record(sim_t *sim, uint32_t host, uint32_t code, uint64_t a,
                 uint64_t b, const void *bytes, size_t len);
/* Tell the observer (if any); `fmt` is only formatted when one is set. */
void sim__observe(sim_t *sim, uint32_t host, const char *kind,
                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The hot paths skip building the detail when nobody observes. */
#define SIM__OBSERVE(sim, ...)                                     \
    do {                                                           \
        if ((sim)->observer != NULL) sim__observe((sim), __VA_ARGS__); \
    } while (0)

static inline sim__link_t *sim__link_at(const sim_t *sim, uint32_t from,
                                        uint32_t to) {
    return &sim->links[(size_t)from * sim->hosts_count + to];
}

/* Observe with the bytes the event carries visible to the observer. */
#define SIM__OBSERVE_BYTES(sim, bytes, len, ...)                   \
    do {                                                           \
        if ((sim)->observer != NULL) {                             \
            (sim)->observed_bytes = (bytes);                       \
            (sim)->observed_len = (len);                           \
            sim__observe((sim), __VA_ARGS__);                      \
            (sim)->observed_bytes = NULL;                          \
            (sim)->observed_len = 0;                               \
        }                                                          \
    } while (0)

uint8_t *sim__msg_alloc(sim_t *sim, size_t len);
void sim__msg_free(sim_t *sim, uint8_t *bytes, size_t len);

int sim__net_init(sim_t *sim);
void sim__net_free(sim_t *sim);
int sim__net_send(sim__host_t *h, io_addr_t dest, const uint8_t *bytes,
                  size_t len);
/* Handle a message event popped from the heap (the host is not paused). */
void sim__net_arrive(sim_t *sim, sim__event_t *ev);
/* Handle a clog release event. */
void sim__net_clog_release(sim_t *sim, const sim__event_t *ev);
/* Release an event's payload without delivering it (counts dropped_down and
 * frees in-flight room for messages). */
void sim__event_discard(sim_t *sim, sim__event_t *ev, int count_drop);

#endif
