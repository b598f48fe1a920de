/*
 * broker/raft.h — Raft replication for a static cluster of 1..7 nodes.
 *
 * Elections with randomized timeouts from the node's PRNG, pre-vote,
 * check-quorum (a leader that stops hearing from a majority steps down),
 * batched and pipelined AppendEntries, the commit rule (only entries of the
 * leader's own term are committed by counting), fast back-off on conflicts,
 * snapshot transfer for followers behind the leader's log base, and leader
 * hints for clients.
 *
 * Strategy knobs (what chaoslab teaches with):
 *   - unclean_election: any live replica may win a vote (the log up-to-date
 *     rule is skipped), so a stale node can become leader and overwrite
 *     committed entries;
 *   - wait_durable: acknowledge an append (follower) / count the leader's own
 *     copy only once the log made it durable (fsync=always); otherwise as soon
 *     as it is appended (fsync=never / interval).
 *
 * Durability of term and vote: raft asks the node to persist (term, vote)
 * through callbacks.persist and holds every outgoing message until the node
 * reports the save durable with raft_on_persisted(), so no vote or append
 * answer is ever sent from a term/vote that a crash could forget.
 *
 * Ownership: the node owns raft_t, the log and the io_t; raft borrows them.
 * raft never calls back into the node re-entrantly from a callback.
 */
#ifndef CHAOSLAB_BROKER_RAFT_H
#define CHAOSLAB_BROKER_RAFT_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/io.h"
#include "broker/log.h"
#include "broker/wire.h"

#define RAFT_NODES_MAX 7u
#define RAFT_INFLIGHT_MAX 16u        /* pipelined appends per follower */
#define RAFT_RESEND_HEARTBEATS 4u      /* unanswered this long: re-probe */
#define RAFT_PROBE_RETRY_HEARTBEATS 2u /* a probe is re-sent this often */
#define RAFT_OUTBOX_MAX 64u          /* messages held until term/vote durable */
#define RAFT_SNAPSHOT_CHUNK_BYTES (256u * 1024u)
#define RAFT_SNAPSHOT_BYTES_MAX (512u * 1024u * 1024u)

/* Log entry types (broker_log_entry_t.type). */
enum { RAFT_ENTRY_NOOP = 1, RAFT_ENTRY_COMMAND = 2 };

/* Timer tokens (local part under BROKER_TOKEN_RAFT). */
enum { RAFT_TIMER_ELECTION = 1, RAFT_TIMER_HEARTBEAT = 2 };

typedef enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRECANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
} raft_role_t;

typedef struct raft_config {
    uint32_t id;          /* this node, 0..nodes_count-1 (= its io address) */
    uint32_t nodes_count; /* 1..RAFT_NODES_MAX */
    uint64_t election_timeout_min_ns;
    uint64_t election_timeout_max_ns;
    uint64_t heartbeat_interval_ns;
    bool pre_vote;
    bool check_quorum;
    bool unclean_election;
    bool wait_durable;
    uint32_t batch_entries_max; /* <= WIRE_ENTRIES_MAX */
    uint32_t batch_bytes_max;   /* payload bytes per AppendEntries */
} raft_config_t;

/* What raft needs from the node. */
typedef struct raft_callbacks {
    /* Persist (term, vote) durably and call raft_on_persisted() when done.
     * Returns 0 or a negative error (raft then stays silent; the node fails). */
    int (*persist)(void *arg, uint64_t term, uint32_t vote);
    /* Entries up to commit_index are committed: apply them in order. */
    void (*committed)(void *arg, uint64_t commit_index);
    /* Role or leader changed. leader = RAFT_NODES_MAX when unknown. */
    void (*role_changed)(void *arg, raft_role_t role, uint64_t term,
                         uint32_t leader);
    /* The latest snapshot to send a lagging follower: bytes valid until the
     * next call. Returns 0, or a negative error if there is none. */
    int (*snapshot_get)(void *arg, const uint8_t **bytes, size_t *len,
                        uint64_t *index, uint64_t *term);
    /* A whole snapshot arrived from the leader: restore the state machine,
     * persist it, and compact the log to (index, term). Returns 0 or an
     * error (the snapshot is refused and asked again). */
    int (*snapshot_install)(void *arg, const uint8_t *bytes, size_t len,
                            uint64_t index, uint64_t term);
} raft_callbacks_t;

/* Replication to one follower is flow-controlled the way etcd's raft does it:
 *   - probing (replicating == false): at most one append in flight, and
 *     next_index does not advance on send, so the answer to the probe is
 *     recognisable (a rejection names the probe's prev index); a rejection
 *     that is not about the current probe is stale and ignored;
 *   - replicating: up to RAFT_INFLIGHT_MAX pipelined appends; a rejection at
 *     or below match_index is stale and ignored; any other rejection falls
 *     back to probing.
 * So no answer, stale, duplicated or reordered, makes the leader send more
 * than one message by itself, and the appends in flight per follower never
 * exceed RAFT_INFLIGHT_MAX (+1 empty heartbeat per heartbeat interval). */
typedef struct raft_peer {
    bool replicating;
    uint64_t next_index;
    uint64_t match_index;
    uint32_t inflight;       /* appends sent and not answered (= ring count) */
    uint32_t sent_head;      /* ring of the last index each in-flight append
                                carried, oldest first: an answer for match m
                                retires every append ending at or before m */
    uint64_t sent_end[RAFT_INFLIGHT_MAX];
    uint64_t last_sent_ns;
    uint64_t progress_ns;    /* the oldest in-flight append started waiting,
                                or an answer last retired one */
    uint64_t last_heard_ns;  /* any answer of the current term */
    bool active;             /* answered since the last check-quorum round */
    /* snapshot transfer */
    bool sending_snapshot;
    uint64_t snap_index, snap_term, snap_offset;
} raft_peer_t;

typedef struct raft {
    const io_t *io;
    broker_log_t *log;
    raft_config_t cfg;
    raft_callbacks_t cb;
    void *cb_arg;

    raft_role_t role;
    uint64_t term;
    uint32_t voted_for; /* RAFT_NODES_MAX = none */
    uint32_t leader;    /* RAFT_NODES_MAX = unknown */
    uint64_t commit_index;
    uint64_t leader_seen_ns;  /* last valid contact from a leader */
    uint64_t election_deadline_ns;
    /* Deadline the election io timer is armed for, 0 = not armed. Followers
     * push election_deadline_ns on every append, which would re-arm the timer
     * (one stale kernel event each); instead the timer stays armed early and
     * raft_on_timer re-arms it to the real deadline when it fires. */
    uint64_t election_armed_ns;
    uint32_t votes;           /* bitmask of grants this round */
    bool started;
    bool stopped;             /* corrupt log or failed node: silent */

    /* term/vote persistence gate */
    bool persisting;          /* a save is in flight */
    bool persist_again;       /* term/vote changed during the save */
    uint64_t durable_term;
    uint32_t durable_vote;
    uint32_t outbox_count;
    struct raft_outmsg {
        io_addr_t dest;
        uint32_t len;
        uint8_t *bytes;
    } outbox[RAFT_OUTBOX_MAX];

    /* follower: answer owed to the leader once the log is durable */
    bool owe_response;
    uint32_t owe_leader;
    uint64_t owe_match;

    /* follower: snapshot being received */
    uint8_t *snap_buf;
    size_t snap_len, snap_cap;
    uint64_t snap_index, snap_term;

    raft_peer_t peers[RAFT_NODES_MAX];
    uint8_t *send_buf; /* encode buffer, WIRE_MESSAGE_SIZE_MAX */
    wire_entry_t *entry_buf; /* WIRE_ENTRIES_MAX */
    uint64_t stat_elections, stat_appends_sent, stat_snapshots_sent;
} raft_t;

void raft_config_default(raft_config_t *cfg, uint32_t id, uint32_t nodes_count);
int raft_config_check(const raft_config_t *cfg);

/* Initialise; nothing is sent until raft_start. Returns 0, IO_EINVAL or
 * IO_ENOMEM. */
int raft_init(raft_t *r, const io_t *io, broker_log_t *log,
              const raft_config_t *cfg, const raft_callbacks_t *cb, void *arg);
void raft_close(raft_t *r);

/* Begin as a follower with the recovered term/vote and commit floor (the
 * snapshot index). Arms the election timer. */
void raft_start(raft_t *r, uint64_t term, uint32_t vote, uint64_t commit_floor);

/* Stop taking part (log corrupt or failed): no votes, no elections. Appends
 * from a leader are still accepted to repair the log when `repairable`. */
void raft_set_stopped(raft_t *r, bool stopped);

/* Inputs. */
void raft_on_message(raft_t *r, io_addr_t from, const wire_msg_t *msg);
void raft_on_timer(raft_t *r, uint64_t local_token);
void raft_on_log_event(raft_t *r, const broker_log_event_t *ev);
void raft_on_persisted(raft_t *r, uint64_t term, uint32_t vote);

/* Leader: append a new entry of the current term. Returns its index, or
 * IO_EINVAL when not leader, or the log's error (IO_ENOMEM = back off).
 * Replication is sent by raft_flush(). */
int64_t raft_propose(raft_t *r, uint8_t type, const uint8_t *payload, size_t len);

/* Send whatever the last inputs made ready (batched appends). The node calls
 * it at the end of every input. */
void raft_flush(raft_t *r);

/* Leader: hand leadership to `target` (TIMEOUT_NOW once it is up to date). */
int raft_transfer(raft_t *r, uint32_t target);

static inline bool raft_is_leader(const raft_t *r) { return r->role == RAFT_LEADER; }
static inline uint32_t raft_leader(const raft_t *r) { return r->leader; }
static inline uint64_t raft_term(const raft_t *r) { return r->term; }
static inline uint64_t raft_commit_index(const raft_t *r) { return r->commit_index; }
const char *raft_role_name(raft_role_t role);

#endif
