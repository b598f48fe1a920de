/*
 * scenarios/scenario.h — a loaded Lua scenario (the Lua API is documented
 * for users in docs/scenarios.md).
 *
 * scenario_new() loads one scenario file into a fresh sandboxed Lua state
 * and checks every declaration strictly (unknown field, wrong type,
 * impossible value: an error "FILE:LINE: message"). The timed actions stay
 * in the Lua state as functions; the engine (scenarios/engine.h) calls them
 * at virtual times with scenario_call_action(). A scenario is loaded once per
 * run: its math.random draws from the run seed's SIM_STREAM_LUA stream.
 *
 * Ownership: scenario_new allocates; the caller frees with scenario_free.
 * Nothing here touches the wall clock, libc rand or the file system beyond
 * reading the scenario file.
 */
#ifndef CHAOSLAB_SCENARIOS_SCENARIO_H
#define CHAOSLAB_SCENARIOS_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/node.h"
#include "sim/disk.h"
#include "sim/prng.h"

#define SCN_PATH_MAX 1024u
#define SCN_NAME_MAX 128u
#define SCN_TEXT_MAX 1024u            /* description, lesson */
#define SCN_KV_MAX 32u                /* strategy settings per layer */
#define SCN_KEY_MAX 32u
#define SCN_VALUE_MAX 64u
#define SCN_ACTIONS_MAX 1024u         /* at()/every() declarations */
#define SCN_SEEDS_MAX 100000u         /* seeds in one range */
#define SCN_ERR_MAX 4096u            /* one error message (several lines for a broken file) */
#define SCN_SOFT_ERRORS_MAX 16u       /* declaration errors listed for one file */
#define SCN_LUA_MEMORY_MAX (64u << 20) /* bytes one Lua state may hold */
#define SCN_LUA_STEPS_MAX 50000000u   /* VM instructions per load / action */
#define SCN_PRODUCERS_MAX 64u
#define SCN_CONSUMERS_MAX 64u
#define SCN_PHASE_S_MAX 86400.0       /* seconds per phase */
#define SCN_QUEUE_NAME_MAX 128u
#define SCN_PROGRESS_DEFAULT_S 10.0   /* progress bound after heal, unless expect{progress} */
#define SCN_PROBE_RATE 20.0           /* probe publishes per second: 2 per 100 ms window */
#define SCN_PROBE_WINDOW 16u          /* probe publishes in flight */

/* One layer of strategy settings ("acks" -> "leader"), in the order given;
 * a later set of the same key replaces the value in place. */
typedef struct scn_kv {
    char key[SCN_KEY_MAX];
    char value[SCN_VALUE_MAX];
} scn_kv_t;

typedef struct scn_strategy {
    scn_kv_t kv[SCN_KV_MAX];
    uint32_t count;
} scn_strategy_t;

typedef enum scn_variant {
    SCN_VARIANT_NONE = 0,   /* a plain scenario */
    SCN_VARIANT_WEAK = 1,   /* teach file: the weak strategy */
    SCN_VARIANT_STRONG = 2, /* teach file: the strong strategy */
} scn_variant_t;

typedef struct scn_network {
    double latency_ms, jitter_ms;
    bool jitter_exponential;
    double loss, duplicate, reorder, corrupt;
    double reorder_window_ms;
} scn_network_t;

typedef struct scn_disk {
    double fsync_ms, fsync_jitter_ms, write_us;
    sim_disk_crash_mode_t crash;
    double keep;
} scn_disk_t;

typedef struct scn_workload {
    char queue[SCN_QUEUE_NAME_MAX];
    char dead_letter[SCN_QUEUE_NAME_MAX]; /* "" = none */
    uint32_t delivery_limit;
    /* producers */
    uint32_t producers;
    double rate;            /* publishes per second per producer */
    bool poisson;
    uint32_t window;
    double timeout_ms;
    uint32_t retries;
    double backoff_ms;
    bool producer_idempotent;
    uint32_t body_bytes;
    uint64_t messages;      /* per producer, 0 = until drain starts */
    bool persistent;        /* PUBLISH.persistent (delivery mode 2) */
    bool confirms;          /* false = fire-and-forget (never waits, never retries) */
    /* consumers */
    uint32_t consumers;
    uint32_t prefetch;
    bool ack_auto;
    double processing_ms;
    double crash_before_ack;
    bool consumer_idempotent;
    /* refusals (see workload_consumer_config_t) */
    double nack_p, reject_p;
    bool nack_requeue, reject_requeue, poison_requeue;
    uint64_t poison_every;
    uint32_t dead_letter_consumers; /* plain consumers on the dead-letter queue */
    /* the availability probe: one more producer, SCN_PROBE_RATE publishes a
     * second, so every availability window has a publish to judge */
    bool probe;
} scn_workload_t;

typedef struct scn_phases {
    double chaos_s, heal_s, drain_s;
} scn_phases_t;

typedef struct scn_nemesis {
    bool enabled;
    uint32_t kinds_mask;
    bool swarm;
    double interval_s, duration_s;
} scn_nemesis_t;

typedef struct scn_expect {
    bool no_loss, no_duplicates, no_phantoms, ordering, replica_agreement;
    bool drained;            /* nothing confirmed left enqueued at the end */
    bool has_availability, has_recovery, has_max_unavailable;
    bool has_attempt_success, has_consumer_availability;
    bool has_leaderless, has_leaderless_max, has_progress;
    bool has_latency_p99, has_duplicate_enqueues;
    double availability;     /* share of chaos windows that confirmed, >= */
    double recovery_s;       /* heal -> first confirm, <= */
    double max_unavailable_s;/* longest gap during chaos, <= */
    double attempt_success;  /* share of chaos publishes confirmed in time, >= */
    double consumer_availability; /* share of chaos windows that delivered, >= */
    double leaderless_s;     /* leaderless seconds during chaos, <= */
    double leaderless_max_s; /* longest leaderless stretch during chaos, <= */
    double latency_p99_ms;   /* publish -> confirm p99 over the run, <= */
    uint64_t duplicate_enqueues; /* messages the broker stored twice, <= */
    double progress_s;       /* recovery bound after heal (always checked:
                                default SCN_PROGRESS_DEFAULT_S, at most heal +
                                drain) */
} scn_expect_t;

typedef struct scn_teach {
    bool present;
    char lesson[SCN_TEXT_MAX];
    char violation[SCN_KEY_MAX];
    scn_strategy_t weak, strong;
    /* Per side (index scn_variant_t): the Lua registry refs of the side's
     * `workload` and `expect` tables (0 = none), and the workload and
     * expectations the side runs with (the file's, with the side's tables
     * applied over them). */
    int side_ref[3][2];
    scn_workload_t workload[3];
    scn_expect_t expect[3];
} scn_teach_t;

typedef struct scn_action {
    double at_s;     /* first firing, seconds */
    double every_s;  /* 0 = once; else repeat during chaos */
    int ref;         /* the function in the Lua registry */
    int line;        /* where it was declared */
} scn_action_t;

struct scn_engine;
struct lua_State;

typedef struct scenario {
    char path[SCN_PATH_MAX];
    char name[SCN_NAME_MAX];
    char description[SCN_TEXT_MAX];
    uint64_t seed_first, seed_last;  /* scenario{seeds=} (default 1..1) */
    scn_strategy_t strategy;         /* cluster{} */
    scn_network_t network;
    scn_disk_t disk;
    scn_workload_t workload;
    scn_phases_t phases;
    scn_nemesis_t nemesis;
    scn_expect_t expect;
    scn_teach_t teach;
    scn_action_t actions[SCN_ACTIONS_MAX];
    uint32_t actions_count;
    int lines[16];                   /* line of each declaration, 0 = absent */
    /* Lua state (private to lua_api.c and the engine) */
    struct lua_State *L;
    sim_prng_t lua_prng;
    size_t lua_memory_bytes;
    uint64_t lua_steps_left;
    struct scn_engine *engine;       /* set while a run can fire actions */
    char err[SCN_ERR_MAX];
    /* declaration errors collected while loading (reported together) */
    char soft_err[SCN_ERR_MAX];
    uint32_t soft_errors;
    int soft_line;                   /* line for errors raised outside a call, 0 = none */
} scenario_t;

/* Load `path` for a run with `seed`. Returns 0 and *out (free with
 * scenario_free), or -1 with "FILE:LINE: message" (or "FILE: message") in
 * err. Never exits, never prints. */
int scenario_new(const char *path, uint64_t seed, scenario_t **out, char *err,
                 size_t err_cap);
void scenario_free(scenario_t *s);

/* Call action `index` (the engine is s->engine). Returns 0, or -1 with a
 * "FILE:LINE: message" in s->err (a Lua error in the action). */
int scenario_call_action(scenario_t *s, uint32_t index);

/* A teach side's workload and expectations replace the file's for a run of
 * that side (call once, before the run; a no-op for SCN_VARIANT_NONE). */
void scn_apply_side(scenario_t *s, scn_variant_t variant);

/* ---- strategy layers (scenario.c) -------------------------------------- */

/* Set key=value in a layer after checking it with broker_config_set (or,
 * for the client-side key `ack`, manual|auto).
 * Returns 0, or -1 with a message in err (unknown key, bad value, full). */
int scn_strategy_set(scn_strategy_t *s, const char *key, const char *value,
                     char *err, size_t err_cap);
/* Parse "key=value" and set it. */
int scn_strategy_set_pair(scn_strategy_t *s, const char *pair, char *err,
                          size_t err_cap);
/* Defaults, then each layer in order (NULL layers skipped), then
 * broker_config_check. Returns 0 or -1 with a message. */
int scn_strategy_build(const scn_strategy_t *const *layers, size_t count,
                       broker_config_t *out, char *err, size_t err_cap);
/* The layers a run of `variant` uses: cluster{}, the teach side, the CLI. */
int scn_strategy_for(const scenario_t *s, scn_variant_t variant,
                     const scn_strategy_t *overrides, broker_config_t *out,
                     char *err, size_t err_cap);

/* The consumer ack mode a run uses: workload.consumers.ack, then a teach
 * side's or the CLI's `ack` key (a client-side strategy key). */
bool scn_strategy_ack_auto(const scenario_t *s, scn_variant_t variant,
                           const scn_strategy_t *overrides);
/* "replicas=3 acks=quorum ... ack=manual" for a run; -1 (message in buf)
 * when the layers do not build. */
int scn_strategy_describe(const scenario_t *s, scn_variant_t variant,
                          const scn_strategy_t *overrides, char *buf, size_t cap);

/* Parse "A..B" or "N" into a range (B >= A, at most SCN_SEEDS_MAX seeds).
 * Returns 0 or -1. */
int scn_seeds_parse(const char *text, uint64_t *first, uint64_t *last);

/* "weak", "strong" or "" */
const char *scn_variant_name(scn_variant_t v);

/* Known names of the checked invariants, in report order. */
#define SCN_INV_COUNT 15u
enum {
    SCN_INV_NO_LOSS = 0, SCN_INV_NO_DUPLICATES, SCN_INV_NO_PHANTOMS,
    SCN_INV_ORDERING, SCN_INV_REPLICA_AGREEMENT, SCN_INV_AVAILABILITY,
    SCN_INV_RECOVERY, SCN_INV_MAX_UNAVAILABLE, SCN_INV_ATTEMPT_SUCCESS,
    SCN_INV_CONSUMER_AVAILABILITY, SCN_INV_LEADERLESS, SCN_INV_PROGRESS,
    SCN_INV_DRAINED, SCN_INV_LATENCY, SCN_INV_DUPLICATE_ENQUEUES,
};
const char *scn_invariant_name(unsigned index);
/* Index of `name` or -1. */
int scn_invariant_parse(const char *name);

/* Edit distance capped at 3 (for "did you mean"). */
unsigned scn_edit_distance(const char *a, const char *b);

#endif
