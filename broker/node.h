/*
 * broker/node.h — one broker node: Raft + durable log + queue state machine
 * + leader-local consumer sessions, behind the io.h seam.
 *
 * The node is an io_program_t (broker_node_program): the simulator boots it on
 * a virtual host, the libuv runtime on a real one, tests by hand. Its
 * strategies are runtime configuration (broker_config_t), so one scenario can
 * compare them:
 *
 *   replicas   1..7
 *   acks       leader = confirm after the leader's own append (durable if
 *              fsync=always); quorum = confirm after commit and apply
 *   fsync      always (group commit before acknowledging), interval:<ms>
 *              (a timer syncs; acknowledgements do not wait), never
 *   election   safe (Raft's up-to-date vote rule), unclean (any live
 *              replica may win)
 *   dedup      on/off: (producer id, sequence) applied at most once, kept in
 *              the replicated state so it survives failover
 *   delivery_limit, session_timeout_ms, ack_timeout_ms (redelivery)
 *
 * Client messages are the wire.h client protocol; clients are any address
 * >= replicas. A client message reaching a follower is answered NOT_LEADER
 * with a leader hint.
 *
 * Stored message body (the SM's opaque bytes) is an envelope:
 *   u64 client message_id | u32 properties length | properties | body
 * so end-to-end ids (and AMQP properties) survive replication.
 */
#ifndef CHAOSLAB_BROKER_NODE_H
#define CHAOSLAB_BROKER_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/io.h"

#define BROKER_REPLICAS_MAX 7u
#define BROKER_PENDING_MAX 65536u  /* client requests awaiting commit */
#define BROKER_CLIENTS_MAX 1024u   /* client sessions per node */

typedef enum broker_acks { BROKER_ACKS_LEADER = 0, BROKER_ACKS_QUORUM = 1 } broker_acks_t;
typedef enum broker_fsync {
    BROKER_FSYNC_ALWAYS = 0,
    BROKER_FSYNC_INTERVAL = 1,
    BROKER_FSYNC_NEVER = 2,
} broker_fsync_t;
typedef enum broker_election { BROKER_ELECTION_SAFE = 0, BROKER_ELECTION_UNCLEAN = 1 } broker_election_t;

typedef struct broker_config {
    uint32_t id;       /* this node, 0..replicas-1 */
    uint32_t replicas; /* 1..BROKER_REPLICAS_MAX */
    broker_acks_t acks;
    broker_fsync_t fsync;
    uint64_t fsync_interval_ns;
    broker_election_t election;
    bool dedup;
    bool pre_vote;
    bool check_quorum;
    uint32_t delivery_limit; /* default for queues declared without one */
    uint64_t session_timeout_ns; /* client heartbeat timeout */
    uint64_t ack_timeout_ns;     /* unacked delivery redelivered after; 0 = never */
    uint64_t election_timeout_min_ns, election_timeout_max_ns;
    uint64_t heartbeat_interval_ns;
    uint64_t snapshot_every_entries; /* compact after this many applied */
    uint64_t segment_size_bytes;     /* log segment roll size */
} broker_config_t;

/* Defaults: 3 replicas, acks=quorum, fsync=always, election=safe, dedup on. */
void broker_config_default(broker_config_t *cfg);

/* Set one strategy value from text ("acks", "quorum"). Keys: replicas, acks,
 * fsync (always|never|interval:<ms>), election, dedup (on|off),
 * delivery_limit, session_timeout_ms, ack_timeout_ms, election_timeout_ms,
 * heartbeat_ms, snapshot_every, pre_vote, check_quorum. Returns 0, or -1 with
 * a message in err (unknown key / bad value). */
int broker_config_set(broker_config_t *cfg, const char *key, const char *value,
                      char *err, size_t err_cap);

/* 0 if the config is usable, else -1 with a message. */
int broker_config_check(const broker_config_t *cfg, char *err, size_t err_cap);

/* Write "replicas=3 acks=quorum fsync=always ..." into buf. */
void broker_config_format(const broker_config_t *cfg, char *buf, size_t cap);

/* The program: boot(arg = const broker_config_t *, io). The config is copied
 * at boot; the caller keeps ownership of it. */
extern const io_program_t broker_node_program;

typedef struct broker_node broker_node_t;

/* Introspection for tests, checkers and the CLI (read-only). */
typedef struct broker_node_info {
    int running;            /* recovery finished */
    int failed;             /* a disk error stopped the node */
    int log_corrupt;        /* refusing to vote until repaired */
    int role;               /* raft_role_t */
    uint32_t leader;        /* BROKER_REPLICAS_MAX if unknown */
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;
    uint64_t durable_index;
    uint64_t snapshot_index;
    /* (no digest here: broker_node_state_digest hashes the whole state and
     * costs time proportional to it; info is meant to be cheap) */
    uint64_t confirms_sent, nacks_sent, deliveries_sent;
} broker_node_info_t;

void broker_node_info(const broker_node_t *node, broker_node_info_t *out);

/* 64-bit hash of the node's applied replicated state (broker_sm_digest):
 * replicas with the same applied index must agree. O(state size). */
uint64_t broker_node_state_digest(const broker_node_t *node);

/* Whole-node consistency check (SQLite's pager_check idea), for the
 * simulator to run periodically and at the end of every run: log indexes
 * ordered (snapshot <= applied <= commit <= last, durable <= last), the
 * client table sorted and in bounds, pending requests ordered by index and
 * above what was applied, and broker_sm_check on the replicated state.
 * Returns 1 when consistent, 0 with a short reason in why (may be NULL).
 * Costs O(state size); read-only. A node that is not running (recovering,
 * failed) is only checked for what is meaningful before recovery. */
int broker_node_check(const broker_node_t *node, char *why, size_t why_cap);
/* The node's replicated state machine (broker/sm.h), read-only: the
 * simulator runs broker_sm_check on every live replica during and after a
 * run. Valid until the node's next event. */
struct broker_sm;
const struct broker_sm *broker_node_sm(const broker_node_t *node);

/* Messages in `queue` (ready + unacked), or -1 if it does not exist. */
int64_t broker_node_queue_depth(const broker_node_t *node, const char *queue);

/* Visit every message in `queue`: cb(arg, client message_id). For end-of-run
 * checks (what is left in a queue / its DLQ). Returns visited or -1. */
int64_t broker_node_queue_visit(const broker_node_t *node, const char *queue,
                                void (*cb)(void *arg, uint64_t message_id),
                                void *arg);

/* Term of log entry `index` as this node holds it, 0 if outside its log
 * (compacted or not there). Equal terms at an index mean equal entries (Raft's
 * log matching), so replica agreement compares terms over the common range. */
uint64_t broker_node_log_term_at(const broker_node_t *node, uint64_t index);
uint64_t broker_node_log_base(const broker_node_t *node);

/* The connection of client `addr` closed (called by the real runtime's front
 * ends, never from inside one of the node's handlers). At a leader the
 * client's session closes now, so its unacked deliveries return to their
 * queues at once instead of after session_timeout_ms; everywhere the client
 * leaves the client table, which would otherwise fill up after
 * BROKER_CLIENTS_MAX connections over the node's life. Requests it left
 * pending are still answered, to an address nobody reads. Never fails. */
void broker_node_client_closed(broker_node_t *node, io_addr_t addr);

/* Envelope helpers (node and AMQP front end). */
size_t broker_envelope_size(size_t props_len, size_t body_len);
void broker_envelope_encode(uint8_t *out, uint64_t message_id,
                            const uint8_t *props, size_t props_len,
                            const uint8_t *body, size_t body_len);
/* Returns 0 and the parts (pointing into `in`), or -1 for a malformed one. */
int broker_envelope_decode(const uint8_t *in, size_t len, uint64_t *message_id,
                           const uint8_t **props, size_t *props_len,
                           const uint8_t **body, size_t *body_len);

#endif
