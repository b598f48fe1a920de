/*
 * sim/workload.h — simulated clients: producers, consumers and a setup
 * client that declares queues. Each is an io_program_t running on a client
 * host of the simulator (addresses 0..brokers-1 are the brokers, client i is
 * host brokers + i) and speaks the wire.h client protocol. Every operation
 * is recorded in a history (sim/history.h) for the checkers.
 *
 * Producers publish to a queue through the default exchange (routing key =
 * queue name) at a constant or Poisson rate, keep at most `window` publishes
 * in flight, and retry a publish that got no answer within timeout_ns with
 * exponential backoff. A publish is recorded invoke (first send), then ok
 * (CONFIRM), fail (definite NACK_PUBLISH, or NOT_LEADER answers only) or
 * info (unknown: no answer after every retry, a NACK after an attempt that
 * may have been stored, or the client host crashed). Idempotent producers
 * resend the same (producer_id, sequence) so broker dedup can drop the
 * copy; non-idempotent ones take a new sequence but keep the message_id, so
 * the duplicate is visible to the checkers. Message ids are
 * client_index << 40 | counter (counter from 1): unique and deterministic.
 *
 * A producer with confirms = false (fire-and-forget) sends each publish
 * once and records it info (HISTORY_FLAG_UNCONFIRMED) right away: no wait,
 * no retry, no window throttling; answers that come later are late answers.
 *
 * Leader discovery (all clients): start at broker client_index % brokers,
 * follow NOT_LEADER hints, move to the next broker on a timeout.
 *
 * Consumers CONSUME with a prefetch and an ack mode, handle deliveries one
 * at a time (processing time drawn from a sim_dist_t), record process, then
 * ACK (manual mode). With crash_probability they "crash" between processing
 * and ack: the session is dropped (heartbeats stop, unacked deliveries are
 * forgotten, the Jepsen process number changes) and a new session is opened
 * after crash_restart_ns, so the broker must redeliver. An idempotent
 * consumer remembers processed message ids (as a real one would in its own
 * database, so this survives its crashes) and acks a repeat without
 * processing it again (op=skip). A consumer that hears nothing from its
 * broker (no heartbeat answer, no delivery) for session_timeout_ns presumes
 * the session gone and subscribes again at the next broker.
 *
 * Randomness: client i draws from its own stream SIM_STREAM_CLIENT_BASE + i
 * of the run seed. Times in configs (start_ns, stop_ns) are global virtual
 * times; the history uses global time too.
 *
 * Ownership: the caller owns each workload_client_t (new/free), the sim and
 * the history; both must outlive the client, and the history must outlive
 * sim_free (halting a client records its unfinished operations).
 */
#ifndef CHAOSLAB_SIM_WORKLOAD_H
#define CHAOSLAB_SIM_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/io.h"
#include "broker/wire.h"
#include "sim/history.h"
#include "sim/prng.h"
#include "sim/sim.h"

#define WORKLOAD_WINDOW_MAX 1024u      /* publishes in flight per producer */
#define WORKLOAD_RETRIES_MAX 64u       /* retries per publish */
#define WORKLOAD_REDIRECTS_MAX 8u      /* NOT_LEADER hops per op before they count as retries */
#define WORKLOAD_BUFFER_MAX 4096u      /* deliveries held by a consumer */
#define WORKLOAD_DEDUP_MAX (4u * 1024u * 1024u) /* ids an idempotent consumer remembers */
#define WORKLOAD_QUEUES_MAX 16u        /* queues one setup client declares */
#define WORKLOAD_BODY_SIZE_MAX (64u * 1024u)
#define WORKLOAD_CLIENTS_MAX (1u << 20) /* client_index < this (message id layout) */
#define WORKLOAD_MESSAGES_MAX ((UINT64_C(1) << 40) - 1) /* per producer */
#define WORKLOAD_SETUP_ATTEMPTS_MAX 1000u /* per queue declaration */
#define WORKLOAD_ERR_MAX 128u          /* config error text */

typedef enum workload_rate {
    WORKLOAD_RATE_CONSTANT = 0, /* one publish every interval_ns */
    WORKLOAD_RATE_POISSON = 1,  /* exponential gaps with mean interval_ns */
} workload_rate_t;

typedef struct workload_producer_config {
    const char *queue;          /* copied at new; 1..WIRE_NAME_SIZE_MAX bytes */
    uint64_t count;             /* messages to publish, 0 = unlimited */
    workload_rate_t rate;
    uint64_t interval_ns;       /* (mean) gap between publishes, > 0 */
    uint32_t window;            /* 1..WORKLOAD_WINDOW_MAX publishes in flight */
    uint64_t timeout_ns;        /* per attempt, > 0 */
    uint32_t retries;           /* 0..WORKLOAD_RETRIES_MAX after the first send */
    uint64_t backoff_base_ns;   /* first retry delay */
    uint64_t backoff_max_ns;    /* cap, >= base */
    double backoff_multiplier;  /* >= 1, finite */
    bool idempotent;            /* resend the same (producer_id, sequence) */
    bool persistent;            /* PUBLISH.persistent */
    bool confirms;              /* false = fire-and-forget: send once, never wait,
                                   record the publish unknown (HISTORY_FLAG_UNCONFIRMED) */
    uint32_t body_size_bytes;   /* 0..WORKLOAD_BODY_SIZE_MAX */
    uint64_t start_ns;          /* first publish not before (global time) */
    uint64_t stop_ns;           /* no new publish from then on, 0 = never */
    uint64_t heartbeat_interval_ns; /* 0 = no heartbeats */
} workload_producer_config_t;

typedef struct workload_consumer_config {
    const char *queue;          /* copied at new */
    uint32_t prefetch;          /* 1..WORKLOAD_BUFFER_MAX */
    wire_ack_mode_t ack_mode;   /* WIRE_ACK_MANUAL or WIRE_ACK_AUTO */
    sim_dist_t processing;      /* time to handle one delivery */
    double crash_probability;   /* [0,1]: crash between process and ack */
    /* Refusals (manual ack only), decided before processing, so a refused
     * delivery is never processed: a poison message (message counter a
     * multiple of poison_every, 0 = none) is always REJECTed; otherwise
     * NACK with nack_probability, else REJECT with reject_probability. Each
     * has its requeue flag (false: the broker dead-letters or drops it). */
    uint64_t poison_every;
    bool poison_requeue;
    double nack_probability;
    bool nack_requeue;
    double reject_probability;
    bool reject_requeue;
    uint64_t crash_restart_ns;  /* new session this long after a crash */
    bool idempotent;            /* dedup by message_id */
    uint64_t start_ns, stop_ns; /* global times; stop 0 = never */
    uint64_t heartbeat_interval_ns; /* > 0 */
    uint64_t session_timeout_ns;    /* silence before re-subscribing, > heartbeat */
    uint64_t request_timeout_ns;    /* wait for the CONSUME reply, > 0 */
    uint64_t retry_delay_ns;        /* before re-sending a refused CONSUME */
} workload_consumer_config_t;

typedef struct workload_queue_spec {
    const char *name;        /* copied at new */
    bool durable;
    uint32_t delivery_limit; /* 0 = unlimited */
    const char *dlq;         /* NULL or "" = none; copied */
} workload_queue_spec_t;

typedef struct workload_setup_config {
    workload_queue_spec_t queues[WORKLOAD_QUEUES_MAX];
    uint32_t queues_count;   /* 1..WORKLOAD_QUEUES_MAX */
    uint64_t timeout_ns;     /* per attempt, > 0 */
    uint64_t start_ns;
} workload_setup_config_t;

/* Where a client lives. */
typedef struct workload_env {
    sim_t *sim;              /* required: global time, seed, its host */
    history_t *history;      /* NULL = record nothing */
    uint32_t brokers_count;  /* >= 1; hosts 0..brokers_count-1 */
    uint32_t client_index;   /* host = brokers_count + client_index */
} workload_env_t;

typedef struct workload_stats {
    /* Publishes: published = confirmed + publish_nacked + failed + unknown +
     * in flight, always (checked with BROKER_INVARIANT). publish_nacked: the
     * broker refused it (NACK_PUBLISH, never stored); failed: given up with
     * no attempt that may have been stored; unknown: timed out, NACKed after
     * an attempt that may have been stored, the client crashed, or still in
     * flight when the run ended (unknown_at_end of them). */
    uint64_t published, confirmed, duplicate_confirms, publish_nacked, failed, unknown;
    uint64_t unknown_at_end;
    uint64_t retries, redirects, late_answers, throttled;
    uint64_t delivered, processed, skipped, acked, nacked, overflowed;
    uint64_t crashes, sessions_lost, subscribes, declared;
    uint64_t bad_messages, send_errors;
} workload_stats_t;

typedef struct workload_client workload_client_t;

/* Defaults: constant 10 ms, window 16, timeout 500 ms, 5 retries, backoff
 * 50 ms x2 up to 1 s, not idempotent, persistent, 64-byte bodies,
 * heartbeat 100 ms; consumer prefetch 16, manual ack, 1 ms processing, no
 * crashes, restart 1 s, heartbeat 100 ms, session timeout 1 s, request
 * timeout 500 ms, retry 100 ms; setup timeout 500 ms. The queue pointers are
 * left NULL (required). */
void workload_producer_config_default(workload_producer_config_t *cfg);
void workload_consumer_config_default(workload_consumer_config_t *cfg);
void workload_setup_config_default(workload_setup_config_t *cfg);

/* 0 if usable, else IO_EINVAL with a message in err (may be NULL). */
int workload_producer_config_check(const workload_producer_config_t *cfg, char *err,
                                   size_t err_cap);
int workload_consumer_config_check(const workload_consumer_config_t *cfg, char *err,
                                   size_t err_cap);
int workload_setup_config_check(const workload_setup_config_t *cfg, char *err,
                                size_t err_cap);

/* Create a client (not running yet: see workload_client_attach). The config
 * is copied. Returns 0 and *out, IO_EINVAL (bad env or config: the message
 * is in err), or IO_ENOMEM. */
int workload_producer_new(const workload_env_t *env, const workload_producer_config_t *cfg,
                          workload_client_t **out, char *err, size_t err_cap);
int workload_consumer_new(const workload_env_t *env, const workload_consumer_config_t *cfg,
                          workload_client_t **out, char *err, size_t err_cap);
int workload_setup_new(const workload_env_t *env, const workload_setup_config_t *cfg,
                       workload_client_t **out, char *err, size_t err_cap);
/* NULL is fine. The client's host must be down (or the sim freed). */
void workload_client_free(workload_client_t *c);

/* The program every client runs; its boot arg is the workload_client_t. */
extern const io_program_t workload_program;

/* The client's host address (brokers_count + client_index). */
io_addr_t workload_client_host(const workload_client_t *c);

/* Put the client's program on its host and boot it (sim_host_set_program +
 * sim_host_start). Returns 0 or their error. */
int workload_client_attach(workload_client_t *c);

/* Producer: publish nothing new from now on (the scenario calls it when
 * drain starts); publishes in flight still finish (retries included).
 * Consumer: stop consuming (unacked deliveries are dropped, the broker will
 * redeliver them). Idempotent. */
void workload_client_stop(workload_client_t *c);
#define workload_producer_stop workload_client_stop

/* The run is over (call before reading the history for checks): a producer
 * records each publish still in flight as unknown with HISTORY_FLAG_AT_END
 * (so every publish has an outcome) and forgets it; every client publishes
 * and consumes nothing more. Idempotent. */
void workload_client_settle(workload_client_t *c);

/* Producer: every publish it will ever make has completed. Setup: every
 * queue declared (or given up). Consumer: stopped. */
bool workload_client_done(const workload_client_t *c);

/* Counters since new (all incarnations). */
void workload_client_stats(const workload_client_t *c, workload_stats_t *out);

#endif
