/* broker/raft.c — Raft: elections, replication, commit, snapshots. */
#include "broker/raft.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/invariant.h"
#include "broker/tokens.h"

#define RAFT_NONE RAFT_NODES_MAX

static const char *const raft_role_names[] = {"follower", "precandidate",
                                              "candidate", "leader"};

const char *raft_role_name(raft_role_t role) {
    assert((unsigned)role <= RAFT_LEADER);
    return raft_role_names[role];
}

void raft_config_default(raft_config_t *cfg, uint32_t id, uint32_t nodes_count) {
    assert(cfg != NULL);
    memset(cfg, 0, sizeof *cfg);
    cfg->id = id;
    cfg->nodes_count = nodes_count;
    cfg->election_timeout_min_ns = UINT64_C(300000000);
    cfg->election_timeout_max_ns = UINT64_C(600000000);
    cfg->heartbeat_interval_ns = UINT64_C(50000000);
    cfg->pre_vote = true;
    cfg->check_quorum = true;
    cfg->unclean_election = false;
    cfg->wait_durable = true;
    cfg->batch_entries_max = 256;
    cfg->batch_bytes_max = 1024u * 1024u;
}

int raft_config_check(const raft_config_t *cfg) {
    if (cfg == NULL) return IO_EINVAL;
    if (cfg->nodes_count == 0 || cfg->nodes_count > RAFT_NODES_MAX) return IO_EINVAL;
    if (cfg->id >= cfg->nodes_count) return IO_EINVAL;
    if (cfg->heartbeat_interval_ns == 0) return IO_EINVAL;
    if (cfg->election_timeout_min_ns <= cfg->heartbeat_interval_ns) return IO_EINVAL;
    if (cfg->election_timeout_max_ns <= cfg->election_timeout_min_ns) return IO_EINVAL;
    if (cfg->batch_entries_max == 0 || cfg->batch_entries_max > WIRE_ENTRIES_MAX) return IO_EINVAL;
    if (cfg->batch_bytes_max == 0 || cfg->batch_bytes_max > WIRE_MESSAGE_SIZE_MAX / 2) return IO_EINVAL;
    return 0;
}

int raft_init(raft_t *r, const io_t *io, broker_log_t *log,
              const raft_config_t *cfg, const raft_callbacks_t *cb, void *arg) {
    if (r == NULL || io == NULL || log == NULL || cb == NULL) return IO_EINVAL;
    if (raft_config_check(cfg) != 0) return IO_EINVAL;
    if (cb->persist == NULL || cb->committed == NULL) return IO_EINVAL;
    memset(r, 0, sizeof *r);
    r->io = io;
    r->log = log;
    r->cfg = *cfg;
    r->cb = *cb;
    r->cb_arg = arg;
    r->voted_for = RAFT_NONE;
    r->durable_vote = RAFT_NONE;
    r->leader = RAFT_NONE;
    r->send_buf = malloc(WIRE_MESSAGE_SIZE_MAX);
    r->entry_buf = calloc(WIRE_ENTRIES_MAX, sizeof(wire_entry_t));
    if (r->send_buf == NULL || r->entry_buf == NULL) {
        raft_close(r);
        return IO_ENOMEM;
    }
    return 0;
}

void raft_close(raft_t *r) {
    if (r == NULL) return;
    for (uint32_t i = 0; i < r->outbox_count; i++) free(r->outbox[i].bytes);
    r->outbox_count = 0;
    free(r->send_buf);
    free(r->entry_buf);
    free(r->snap_buf);
    r->send_buf = NULL;
    r->entry_buf = NULL;
    r->snap_buf = NULL;
}

/* ---- helpers ------------------------------------------------------------ */

static uint64_t raft__now(const raft_t *r) { return io_now_ns(r->io); }

static uint32_t raft__majority(const raft_t *r) { return r->cfg.nodes_count / 2 + 1; }

static uint32_t raft__count(uint32_t mask) {
    uint32_t n = 0;
    for (; mask; mask &= mask - 1) n++;
    return n;
}

static bool raft__durable_matches(const raft_t *r) {
    return r->durable_term == r->term && r->durable_vote == r->voted_for;
}

static void raft__persist(raft_t *r) {
    if (raft__durable_matches(r) && !r->persisting) return;
    if (r->persisting) {
        r->persist_again = true;
        return;
    }
    r->persisting = true;
    r->persist_again = false;
    if (r->cb.persist(r->cb_arg, r->term, r->voted_for) != 0) {
        r->persisting = false;
        r->stopped = true; /* cannot make votes durable: take no part */
        io_trace(r->io, "raft.persist_failed", NULL);
    }
}

/* Encode and send, or hold the message until term/vote are durable. */
static void raft__send(raft_t *r, io_addr_t dest, const wire_msg_t *msg) {
    assert(dest < r->cfg.nodes_count && dest != r->cfg.id);
    const int len = wire_encode(msg, r->send_buf, WIRE_MESSAGE_SIZE_MAX);
    assert(len > 0 && "raft built an unencodable message");
    if (len <= 0) return;
    if (raft__durable_matches(r) && !r->persisting) {
        (void)io_send(r->io, dest, r->send_buf, (size_t)len);
        return;
    }
    if (r->outbox_count >= RAFT_OUTBOX_MAX) return; /* lost, like the network */
    uint8_t *copy = malloc((size_t)len);
    if (copy == NULL) return;
    memcpy(copy, r->send_buf, (size_t)len);
    r->outbox[r->outbox_count].dest = dest;
    r->outbox[r->outbox_count].len = (uint32_t)len;
    r->outbox[r->outbox_count].bytes = copy;
    r->outbox_count++;
}

static void raft__flush_outbox(raft_t *r) {
    for (uint32_t i = 0; i < r->outbox_count; i++) {
        (void)io_send(r->io, r->outbox[i].dest, r->outbox[i].bytes, r->outbox[i].len);
        free(r->outbox[i].bytes);
    }
    r->outbox_count = 0;
}

void raft_on_persisted(raft_t *r, uint64_t term, uint32_t vote) {
    assert(r->persisting);
    /* Election safety rests on these: terms never go back, and a durable
     * vote of a term is never changed to another candidate. */
    BROKER_INVARIANT(term >= r->durable_term, "durable term went backwards");
    BROKER_INVARIANT(term > r->durable_term || r->durable_vote == RAFT_NONE ||
                         r->durable_vote == vote,
                     "two different votes in one term");
    r->persisting = false;
    r->durable_term = term;
    r->durable_vote = vote;
    if (!raft__durable_matches(r) || r->persist_again) {
        r->persist_again = false;
        raft__persist(r);
        return;
    }
    raft__flush_outbox(r);
}

static void raft__arm_election_timer(raft_t *r) {
    assert(r->election_deadline_ns != 0);
    r->election_armed_ns = r->election_deadline_ns;
    (void)io_timer_set(r->io, r->election_deadline_ns,
                       broker_token_make(BROKER_TOKEN_RAFT, RAFT_TIMER_ELECTION));
}

static void raft__arm_election(raft_t *r) {
    const uint64_t span = r->cfg.election_timeout_max_ns - r->cfg.election_timeout_min_ns;
    const uint64_t jitter = io_random_u64(r->io) % span;
    r->election_deadline_ns = raft__now(r) + r->cfg.election_timeout_min_ns + jitter;
    if (r->election_armed_ns != 0 && r->election_armed_ns <= r->election_deadline_ns)
        return; /* fires first; raft_on_timer re-arms it to the deadline */
    raft__arm_election_timer(r);
}

static void raft__arm_heartbeat(raft_t *r) {
    (void)io_timer_set(r->io, raft__now(r) + r->cfg.heartbeat_interval_ns,
                       broker_token_make(BROKER_TOKEN_RAFT, RAFT_TIMER_HEARTBEAT));
}

static void raft__set_role(raft_t *r, raft_role_t role, uint32_t leader) {
    const bool changed = r->role != role || r->leader != leader;
    r->role = role;
    r->leader = leader;
    if (changed && r->cb.role_changed)
        r->cb.role_changed(r->cb_arg, role, r->term, leader);
}

static void raft__become_follower(raft_t *r, uint64_t term, uint32_t leader) {
    assert(term >= r->term);
    if (term > r->term) {
        r->term = term;
        r->voted_for = RAFT_NONE;
        raft__persist(r);
    }
    if (r->role == RAFT_LEADER)
        (void)io_timer_cancel(r->io, broker_token_make(BROKER_TOKEN_RAFT, RAFT_TIMER_HEARTBEAT));
    r->votes = 0;
    raft__set_role(r, RAFT_FOLLOWER, leader);
    raft__arm_election(r);
}

static bool raft__log_up_to_date(const raft_t *r, uint64_t last_index, uint64_t last_term) {
    const uint64_t my_term = broker_log_last_term(r->log);
    if (last_term != my_term) return last_term > my_term;
    return last_index >= broker_log_last_index(r->log);
}

static bool raft__may_vote(const raft_t *r) {
    return r->started && !r->stopped && broker_log_status(r->log) == BROKER_LOG_OK;
}

static void raft__commit_to(raft_t *r, uint64_t index) {
    if (index <= r->commit_index) return;
    BROKER_INVARIANT(index <= broker_log_last_index(r->log),
                     "commit index beyond the last log entry");
    r->commit_index = index;
    r->cb.committed(r->cb_arg, index);
}

/* In-flight appends per peer: a FIFO of the last index each carried. */
static void raft__sent_clear(raft_peer_t *peer) {
    peer->inflight = 0;
    peer->sent_head = 0;
}

static void raft__sent_push(raft_peer_t *peer, uint64_t end_index, uint64_t now_ns) {
    assert(peer->inflight < RAFT_INFLIGHT_MAX);
    if (peer->inflight == 0) peer->progress_ns = now_ns; /* starts waiting */
    peer->sent_end[(peer->sent_head + peer->inflight) % RAFT_INFLIGHT_MAX] = end_index;
    peer->inflight++;
}

/* The follower holds everything up to `match`: those appends are answered. */
static void raft__sent_ack(raft_peer_t *peer, uint64_t match, uint64_t now_ns) {
    if (peer->inflight > 0 && peer->sent_end[peer->sent_head] <= match)
        peer->progress_ns = now_ns;
    while (peer->inflight > 0 && peer->sent_end[peer->sent_head] <= match) {
        peer->sent_head = (peer->sent_head + 1) % RAFT_INFLIGHT_MAX;
        peer->inflight--;
    }
}

/* ---- elections ------------------------------------------------------------ */

static void raft__become_leader(raft_t *r);

static void raft__request_votes(raft_t *r, bool pre_vote) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_REQUEST_VOTE;
    m.request_vote.term = pre_vote ? r->term + 1 : r->term;
    m.request_vote.candidate_id = r->cfg.id;
    m.request_vote.last_log_index = broker_log_last_index(r->log);
    m.request_vote.last_log_term = broker_log_last_term(r->log);
    m.request_vote.pre_vote = pre_vote ? 1 : 0;
    for (uint32_t p = 0; p < r->cfg.nodes_count; p++)
        if (p != r->cfg.id) raft__send(r, p, &m);
}

static void raft__become_candidate(raft_t *r) {
    r->term++;
    r->voted_for = r->cfg.id;
    r->votes = 1u << r->cfg.id;
    r->stat_elections++;
    raft__persist(r);
    raft__set_role(r, RAFT_CANDIDATE, RAFT_NONE);
    raft__arm_election(r);
    io_trace(r->io, "raft.candidate", NULL);
    if (raft__count(r->votes) >= raft__majority(r)) {
        raft__become_leader(r);
        return;
    }
    raft__request_votes(r, false);
}

static void raft__start_election(raft_t *r) {
    if (!raft__may_vote(r)) {
        raft__arm_election(r);
        return;
    }
    if (!r->cfg.pre_vote || r->cfg.nodes_count == 1) {
        raft__become_candidate(r);
        return;
    }
    r->votes = 1u << r->cfg.id;
    raft__set_role(r, RAFT_PRECANDIDATE, RAFT_NONE);
    raft__arm_election(r);
    raft__request_votes(r, true);
}

/* Heard from a live leader recently: refuse to help depose it (leader
 * stickiness; sound because leaders step down under check-quorum). */
static bool raft__leader_recent(const raft_t *r) {
    if (r->role == RAFT_LEADER) return true;
    if (r->leader == RAFT_NONE) return false;
    return raft__now(r) - r->leader_seen_ns < r->cfg.election_timeout_min_ns;
}

static void raft__on_request_vote(raft_t *r, const wire_request_vote_t *q) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_VOTE_RESPONSE;
    m.vote_response.voter_id = r->cfg.id;
    m.vote_response.pre_vote = q->pre_vote;
    const uint32_t c = q->candidate_id;
    if (c >= r->cfg.nodes_count || c == r->cfg.id) return;
    const bool log_ok = r->cfg.unclean_election ||
                        raft__log_up_to_date(r, q->last_log_index, q->last_log_term);
    if (q->pre_vote) {
        m.vote_response.term = r->term;
        m.vote_response.granted = raft__may_vote(r) && q->term > r->term && log_ok &&
                                  !raft__leader_recent(r);
        raft__send(r, c, &m);
        return;
    }
    if (q->term > r->term && raft__leader_recent(r)) return; /* ignore */
    if (q->term > r->term) raft__become_follower(r, q->term, RAFT_NONE);
    bool grant = false;
    if (q->term == r->term && raft__may_vote(r) && log_ok &&
        (r->voted_for == RAFT_NONE || r->voted_for == c)) {
        grant = true;
        r->voted_for = c;
        raft__persist(r);
        raft__arm_election(r);
    }
    m.vote_response.term = r->term;
    m.vote_response.granted = grant;
    raft__send(r, c, &m);
}

static void raft__on_vote_response(raft_t *r, const wire_vote_response_t *v) {
    if (v->voter_id >= r->cfg.nodes_count || v->voter_id == r->cfg.id) return;
    if (v->term > r->term && !(v->pre_vote && v->granted)) {
        raft__become_follower(r, v->term, RAFT_NONE);
        return;
    }
    if (!v->granted) return;
    if (v->pre_vote && r->role == RAFT_PRECANDIDATE) {
        r->votes |= 1u << v->voter_id;
        if (raft__count(r->votes) >= raft__majority(r)) raft__become_candidate(r);
        return;
    }
    if (!v->pre_vote && r->role == RAFT_CANDIDATE && v->term == r->term) {
        r->votes |= 1u << v->voter_id;
        if (raft__count(r->votes) >= raft__majority(r)) raft__become_leader(r);
    }
}

/* ---- replication: leader side ----------------------------------------------- */

static uint64_t raft__self_match(const raft_t *r) {
    return r->cfg.wait_durable ? broker_log_durable_index(r->log)
                               : broker_log_last_index(r->log);
}

static void raft__advance_commit(raft_t *r) {
    assert(r->role == RAFT_LEADER);
    uint64_t match[RAFT_NODES_MAX];
    const uint32_t n = r->cfg.nodes_count;
    for (uint32_t i = 0; i < n; i++)
        match[i] = i == r->cfg.id ? raft__self_match(r) : r->peers[i].match_index;
    /* Insertion sort, descending: n <= 7. */
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && match[j] > match[j - 1]; j--) {
            const uint64_t t = match[j];
            match[j] = match[j - 1];
            match[j - 1] = t;
        }
    const uint64_t candidate = match[raft__majority(r) - 1];
    /* Only entries of the current term commit by counting (Raft 5.4.2). */
    if (candidate > r->commit_index && broker_log_term_at(r->log, candidate) == r->term)
        raft__commit_to(r, candidate);
}

static void raft__send_snapshot_chunk(raft_t *r, uint32_t p) {
    raft_peer_t *peer = &r->peers[p];
    const uint8_t *bytes = NULL;
    size_t len = 0;
    uint64_t index = 0, term = 0;
    if (r->cb.snapshot_get == NULL ||
        r->cb.snapshot_get(r->cb_arg, &bytes, &len, &index, &term) != 0) {
        peer->sending_snapshot = false;
        return;
    }
    if (!peer->sending_snapshot || peer->snap_index != index) {
        peer->sending_snapshot = true;
        peer->snap_index = index;
        peer->snap_term = term;
        peer->snap_offset = 0;
        r->stat_snapshots_sent++;
    }
    if (peer->snap_offset > len) peer->snap_offset = 0;
    size_t chunk = len - peer->snap_offset;
    if (chunk > RAFT_SNAPSHOT_CHUNK_BYTES) chunk = RAFT_SNAPSHOT_CHUNK_BYTES;
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_INSTALL_SNAPSHOT;
    m.install_snapshot.term = r->term;
    m.install_snapshot.leader_id = r->cfg.id;
    m.install_snapshot.last_included_index = index;
    m.install_snapshot.last_included_term = term;
    m.install_snapshot.offset = peer->snap_offset;
    m.install_snapshot.done = peer->snap_offset + chunk == len;
    m.install_snapshot.data.ptr = bytes + peer->snap_offset;
    m.install_snapshot.data.len = (uint32_t)chunk;
    raft__sent_clear(peer);
    raft__sent_push(peer, 0, raft__now(r)); /* one chunk at a time; its answer clears it */
    peer->last_sent_ns = raft__now(r);
    raft__send(r, p, &m);
}

/* An AppendEntries from this leader after `prev` carrying the first `count`
 * entries of entry_buf. */
static void raft__append_header(const raft_t *r, wire_msg_t *m, uint64_t prev,
                                uint32_t count) {
    memset(m, 0, sizeof *m);
    m->type = WIRE_MSG_APPEND_ENTRIES;
    m->append_entries.term = r->term;
    m->append_entries.leader_id = r->cfg.id;
    m->append_entries.prev_log_index = prev;
    m->append_entries.prev_log_term = broker_log_term_at(r->log, prev);
    m->append_entries.leader_commit = r->commit_index;
    m->append_entries.entry_count = count;
    m->append_entries.entries = r->entry_buf;
}

/* Send one AppendEntries to peer p from its next_index (possibly empty). */
static void raft__send_append(raft_t *r, uint32_t p) {
    raft_peer_t *peer = &r->peers[p];
    const uint64_t base = broker_log_base_index(r->log);
    const uint64_t last = broker_log_last_index(r->log);
    if (peer->sending_snapshot || peer->next_index <= base) {
        if (peer->inflight == 0 || !peer->sending_snapshot) raft__send_snapshot_chunk(r, p);
        return;
    }
    if (peer->next_index > last + 1) peer->next_index = last + 1;
    const uint64_t prev = peer->next_index - 1;
    uint32_t count = 0;
    uint64_t bytes = 0;
    for (uint64_t i = peer->next_index; i <= last && count < r->cfg.batch_entries_max; i++) {
        const broker_log_entry_t *e = broker_log_entry(r->log, i);
        assert(e != NULL);
        if (count > 0 && bytes + e->len > r->cfg.batch_bytes_max) break;
        wire_entry_t *w = &r->entry_buf[count++];
        w->term = e->term;
        w->index = i;
        w->type = e->type;
        w->payload.ptr = e->payload;
        w->payload.len = e->len;
        bytes += e->len + WIRE_ENTRY_OVERHEAD_SIZE;
    }
    wire_msg_t m;
    raft__append_header(r, &m, prev, count);
    /* A probe does not move next_index: its answer must be recognisable. */
    if (peer->replicating) peer->next_index += count;
    raft__sent_push(peer, prev + count, raft__now(r));
    peer->last_sent_ns = raft__now(r);
    r->stat_appends_sent++;
    raft__send(r, p, &m);
}

/* Keep-alive for a follower whose pipeline is full: an empty, untracked
 * append anchored at what the follower is known to hold, so it neither adds
 * to the data in flight nor makes the follower reject a gap. */
static void raft__send_keepalive(raft_t *r, uint32_t p) {
    raft_peer_t *peer = &r->peers[p];
    const uint64_t base = broker_log_base_index(r->log);
    const uint64_t prev = peer->match_index > base ? peer->match_index : base;
    wire_msg_t m;
    raft__append_header(r, &m, prev, 0);
    peer->last_sent_ns = raft__now(r);
    raft__send(r, p, &m);
}

/* Falls back to probing from `next`: one append in flight until an answer
 * shows where the follower's log matches ours. */
static void raft__peer_probe(raft_peer_t *peer, uint64_t next) {
    peer->replicating = false;
    peer->next_index = next;
    raft__sent_clear(peer);
}

static uint32_t raft__peer_window(const raft_peer_t *peer) {
    return peer->replicating ? RAFT_INFLIGHT_MAX : 1u;
}

void raft_flush(raft_t *r) {
    if (r->role != RAFT_LEADER) return;
    const uint64_t last = broker_log_last_index(r->log);
    for (uint32_t p = 0; p < r->cfg.nodes_count; p++) {
        if (p == r->cfg.id) continue;
        raft_peer_t *peer = &r->peers[p];
        /* Bounded: at most the peer's window of sends per flush, and a probe
         * is never re-sent here (it waits for its answer or a heartbeat). */
        const uint32_t window = raft__peer_window(peer);
        while (!peer->sending_snapshot && peer->next_index <= last &&
               peer->inflight < window) {
            raft__send_append(r, p);
            if (!peer->replicating) break;
        }
        BROKER_INVARIANT(peer->inflight <= RAFT_INFLIGHT_MAX,
                         "appends in flight to a follower exceed the pipeline bound");
    }
    raft__advance_commit(r);
}

static void raft__become_leader(raft_t *r) {
    assert(r->role == RAFT_CANDIDATE);
    const uint64_t now = raft__now(r);
    const uint64_t last = broker_log_last_index(r->log);
    for (uint32_t p = 0; p < r->cfg.nodes_count; p++) {
        raft_peer_t *peer = &r->peers[p];
        memset(peer, 0, sizeof *peer);
        peer->next_index = last + 1;
        peer->last_heard_ns = now; /* grace period for check-quorum */
    }
    (void)io_timer_cancel(r->io, broker_token_make(BROKER_TOKEN_RAFT, RAFT_TIMER_ELECTION));
    r->election_armed_ns = 0;
    raft__set_role(r, RAFT_LEADER, r->cfg.id);
    io_trace(r->io, "raft.leader", NULL);
    /* A no-op of the new term lets earlier entries commit (Raft 5.4.2). */
    (void)raft_propose(r, RAFT_ENTRY_NOOP, NULL, 0);
    for (uint32_t p = 0; p < r->cfg.nodes_count; p++)
        if (p != r->cfg.id) raft__send_append(r, p);
    raft__arm_heartbeat(r);
    raft_flush(r);
}

int64_t raft_propose(raft_t *r, uint8_t type, const uint8_t *payload, size_t len) {
    if (r->role != RAFT_LEADER) return IO_EINVAL;
    const int64_t index = broker_log_append(r->log, r->term, type, payload, len);
    if (index < 0) return index;
    if (r->cfg.wait_durable) (void)broker_log_sync(r->log);
    return index;
}

/* The peer answering the leader in `term`, or NULL when the answer is
 * meaningless here (unknown node, stale term, not leader). A newer term
 * deposes the leader. Marks the peer as heard from. */
static raft_peer_t *raft__answering_peer(raft_t *r, uint32_t p, uint64_t term) {
    if (p >= r->cfg.nodes_count || p == r->cfg.id) return NULL;
    if (term > r->term) {
        raft__become_follower(r, term, RAFT_NONE);
        return NULL;
    }
    if (r->role != RAFT_LEADER || term < r->term) return NULL;
    raft_peer_t *peer = &r->peers[p];
    peer->last_heard_ns = raft__now(r);
    return peer;
}

/* A rejection is acted on only when it is about the append the leader is
 * waiting on: while probing, the probe itself (prev index = next_index - 1);
 * while replicating, anything above the known match. Everything else is a
 * stale, duplicated or reordered answer and is dropped, so no answer ever
 * triggers more than one send. */
static void raft__on_append_rejected(raft_t *r, uint32_t p,
                                     const wire_append_response_t *a) {
    raft_peer_t *peer = &r->peers[p];
    const uint64_t rejected = a->match_index; /* the rejected append's prev */
    if (peer->sending_snapshot) return;
    if (peer->replicating ? rejected <= peer->match_index
                          : rejected + 1 != peer->next_index)
        return;
    const uint64_t last = broker_log_last_index(r->log);
    uint64_t next = a->conflict_index ? a->conflict_index : rejected;
    if (a->conflict_term != 0) {
        /* Bounded scan back over our own entries of that term, from the
         * rejected index down (never past where the logs diverge). */
        const uint64_t base = broker_log_base_index(r->log);
        uint64_t i = rejected < last ? rejected : last;
        while (i > base && broker_log_term_at(r->log, i) > a->conflict_term) i--;
        if (i > base && broker_log_term_at(r->log, i) == a->conflict_term) next = i + 1;
    }
    if (next > last + 1) next = last + 1;
    if (next < 1) next = 1;
    if (next <= peer->match_index) {
        if (peer->replicating) {
            next = peer->match_index + 1;
        } else {
            /* The current probe says the follower no longer holds entries
             * it acknowledged: it lost them (fsync=never/interval, a
             * damaged log). Believe it, or it never catches up. The commit
             * index never moves back, so this only costs a re-send. */
            peer->match_index = next - 1;
        }
    }
    /* A probe rejected again at the same place waits for the heartbeat
     * (the follower is busy, e.g. its log queue is full): no busy loop. */
    const bool moved = peer->replicating || next != peer->next_index;
    raft__peer_probe(peer, next);
    if (moved) raft__send_append(r, p);
}

static void raft__on_append_response(raft_t *r, const wire_append_response_t *a) {
    const uint32_t p = a->follower_id;
    raft_peer_t *peer = raft__answering_peer(r, p, a->term);
    if (peer == NULL) return;
    if (!a->success) {
        raft__on_append_rejected(r, p, a);
        return;
    }
    if (a->match_index > broker_log_last_index(r->log)) return; /* bogus */
    if (a->match_index > peer->match_index) peer->match_index = a->match_index;
    if (!peer->replicating && !peer->sending_snapshot &&
        a->match_index + 1 >= peer->next_index) {
        /* The probe (or a later append) matched: pipeline from here. */
        peer->replicating = true;
        raft__sent_clear(peer);
    }
    if (peer->next_index < peer->match_index + 1) peer->next_index = peer->match_index + 1;
    raft__sent_ack(peer, a->match_index, raft__now(r));
    raft__advance_commit(r);
}

static void raft__on_snapshot_response(raft_t *r, const wire_snapshot_response_t *s) {
    const uint32_t p = s->follower_id;
    raft_peer_t *peer = raft__answering_peer(r, p, s->term);
    if (peer == NULL) return;
    raft__sent_clear(peer);
    if (!peer->sending_snapshot || s->last_included_index != peer->snap_index) return;
    const uint8_t *bytes = NULL;
    size_t len = 0;
    uint64_t index = 0, term = 0;
    if (r->cb.snapshot_get(r->cb_arg, &bytes, &len, &index, &term) != 0) return;
    peer->snap_offset = s->next_offset;
    if (s->success && s->next_offset >= len) {
        peer->sending_snapshot = false;
        if (peer->match_index < peer->snap_index) peer->match_index = peer->snap_index;
        raft__peer_probe(peer, peer->snap_index + 1);
        raft__advance_commit(r);
    }
    raft__send_append(r, p);
}

/* ---- replication: follower side --------------------------------------------- */

static void raft__send_append_response(raft_t *r, uint32_t leader, bool success,
                                       uint64_t match, uint64_t conflict_index,
                                       uint64_t conflict_term) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_APPEND_RESPONSE;
    m.append_response.term = r->term;
    m.append_response.follower_id = r->cfg.id;
    m.append_response.success = success;
    m.append_response.match_index = match;
    m.append_response.conflict_index = conflict_index;
    m.append_response.conflict_term = conflict_term;
    raft__send(r, leader, &m);
}

/* Accept a message from a leader of term `term`: step down if needed. */
static bool raft__heard_leader(raft_t *r, uint64_t term, uint32_t leader) {
    if (term < r->term) return false;
    if (term > r->term || r->role != RAFT_FOLLOWER || r->leader != leader)
        raft__become_follower(r, term, leader);
    r->leader_seen_ns = raft__now(r);
    raft__arm_election(r);
    return true;
}

/* Answer success for `match` once it is durable. While the leader pipelines,
 * the owed match keeps moving ahead of the disk; every durable advance is
 * answered for what it covers, so the leader's pipeline keeps flowing. */
static void raft__answer_when_durable(raft_t *r, uint32_t leader, uint64_t match) {
    if (!r->cfg.wait_durable || broker_log_durable_index(r->log) >= match) {
        raft__send_append_response(r, leader, true, match, 0, 0);
        if (r->owe_response && r->owe_leader == leader && r->owe_match <= match)
            r->owe_response = false;
        return;
    }
    (void)broker_log_sync(r->log);
    if (!r->owe_response || r->owe_leader != leader) r->owe_match = 0;
    r->owe_response = true;
    r->owe_leader = leader;
    if (match > r->owe_match) r->owe_match = match;
}

static void raft__on_append_entries(raft_t *r, const wire_append_entries_t *a) {
    const uint32_t leader = a->leader_id;
    if (leader >= r->cfg.nodes_count || leader == r->cfg.id) return;
    if (!raft__heard_leader(r, a->term, leader)) {
        raft__send_append_response(r, leader, false, 0, 0, 0);
        return;
    }
    const uint64_t base = broker_log_base_index(r->log);
    const uint64_t last = broker_log_last_index(r->log);
    const uint64_t rejected = a->prev_log_index; /* named in every rejection */
    uint64_t prev = a->prev_log_index;
    uint32_t first = 0; /* first entry of the batch we still need */
    if (prev < base) {
        /* The start of the batch is inside our snapshot: skip it. */
        while (first < a->entry_count && a->entries[first].index <= base) first++;
        prev = base;
    } else if (prev > last) {
        raft__send_append_response(r, leader, false, rejected, last + 1, 0);
        return;
    } else if (broker_log_term_at(r->log, prev) != a->prev_log_term) {
        const uint64_t ct = broker_log_term_at(r->log, prev);
        uint64_t ci = prev;
        while (ci > base + 1 && broker_log_term_at(r->log, ci - 1) == ct) ci--;
        raft__send_append_response(r, leader, false, rejected, ci, ct);
        return;
    }
    /* `verified`: every index up to it matches the leader's log. It only
     * grows past an entry once that entry is known to match or has been
     * appended; a failed truncate or append stops it before the conflict,
     * so a success answer never covers an entry of the wrong term. */
    uint64_t verified = prev;
    bool stuck = false;
    for (uint32_t i = first; i < a->entry_count && !stuck; i++) {
        const wire_entry_t *e = &a->entries[i];
        BROKER_INVARIANT(e->index == verified + 1, "append batch is not contiguous");
        const uint64_t mine = broker_log_last_index(r->log);
        if (e->index <= mine) {
            if (broker_log_term_at(r->log, e->index) == e->term) {
                verified = e->index;
                continue;
            }
            if (e->index <= r->commit_index) {
                /* Only a weak strategy may lose a committed entry (that is
                 * its lesson); with safe elections and durable acks this is
                 * a broken log-matching property. */
                BROKER_INVARIANT(r->cfg.unclean_election || !r->cfg.wait_durable,
                                 "a committed entry is being overwritten");
                io_trace(r->io, "raft.truncate_committed", NULL);
            }
            if (broker_log_truncate_after(r->log, e->index - 1) != 0) {
                stuck = true; /* op queue full: the conflict stays for now */
                break;
            }
        }
        if (broker_log_append(r->log, e->term, e->type, e->payload.ptr, e->payload.len) < 0) {
            stuck = true; /* full: the leader probes again later */
            break;
        }
        verified = e->index;
    }
    const uint64_t commit = a->leader_commit < verified ? a->leader_commit : verified;
    raft__commit_to(r, commit);
    if (stuck) {
        /* Tell the leader where to resume; it retries at its own pace. */
        raft__send_append_response(r, leader, false, rejected, verified + 1, 0);
        return;
    }
    raft__answer_when_durable(r, leader, verified);
}

static void raft__on_install_snapshot(raft_t *r, const wire_install_snapshot_t *s) {
    const uint32_t leader = s->leader_id;
    if (leader >= r->cfg.nodes_count || leader == r->cfg.id) return;
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_SNAPSHOT_RESPONSE;
    m.snapshot_response.follower_id = r->cfg.id;
    m.snapshot_response.last_included_index = s->last_included_index;
    if (!raft__heard_leader(r, s->term, leader)) {
        m.snapshot_response.term = r->term;
        raft__send(r, leader, &m);
        return;
    }
    m.snapshot_response.term = r->term;
    if (s->offset == 0) {
        r->snap_len = 0;
        r->snap_index = s->last_included_index;
        r->snap_term = s->last_included_term;
    }
    const bool in_order = s->offset == r->snap_len && s->last_included_index == r->snap_index;
    const bool fits = r->snap_len + s->data.len <= RAFT_SNAPSHOT_BYTES_MAX;
    if (in_order && fits) {
        if (r->snap_len + s->data.len > r->snap_cap) {
            size_t cap = r->snap_cap ? r->snap_cap : 64u * 1024u;
            while (cap < r->snap_len + s->data.len) cap *= 2;
            uint8_t *b = realloc(r->snap_buf, cap);
            if (b == NULL) {
                m.snapshot_response.next_offset = r->snap_len;
                raft__send(r, leader, &m);
                return;
            }
            r->snap_buf = b;
            r->snap_cap = cap;
        }
        if (s->data.len) memcpy(r->snap_buf + r->snap_len, s->data.ptr, s->data.len);
        r->snap_len += s->data.len;
        m.snapshot_response.success = 1;
        if (s->done) {
            const int rc = r->cb.snapshot_install
                               ? r->cb.snapshot_install(r->cb_arg, r->snap_buf, r->snap_len,
                                                        r->snap_index, r->snap_term)
                               : IO_EINVAL;
            if (rc == 0) {
                if (r->commit_index < r->snap_index) r->commit_index = r->snap_index;
            } else {
                m.snapshot_response.success = 0;
                r->snap_len = 0;
            }
        }
    }
    m.snapshot_response.next_offset = r->snap_len;
    raft__send(r, leader, &m);
}

/* ---- inputs ------------------------------------------------------------------ */

void raft_on_message(raft_t *r, io_addr_t from, const wire_msg_t *msg) {
    assert(r != NULL && msg != NULL);
    if (!r->started || from >= r->cfg.nodes_count) return;
    switch (msg->type) {
    case WIRE_MSG_REQUEST_VOTE: raft__on_request_vote(r, &msg->request_vote); break;
    case WIRE_MSG_VOTE_RESPONSE: raft__on_vote_response(r, &msg->vote_response); break;
    case WIRE_MSG_APPEND_ENTRIES: raft__on_append_entries(r, &msg->append_entries); break;
    case WIRE_MSG_APPEND_RESPONSE: raft__on_append_response(r, &msg->append_response); break;
    case WIRE_MSG_INSTALL_SNAPSHOT: raft__on_install_snapshot(r, &msg->install_snapshot); break;
    case WIRE_MSG_SNAPSHOT_RESPONSE: raft__on_snapshot_response(r, &msg->snapshot_response); break;
    case WIRE_MSG_TIMEOUT_NOW:
        if (msg->timeout_now.term == r->term && raft__may_vote(r) && r->role != RAFT_LEADER)
            raft__become_candidate(r);
        break;
    default: break;
    }
    raft_flush(r);
}

/* One heartbeat's worth of traffic to peer p: at most one message. */
static void raft__heartbeat_peer(raft_t *r, uint32_t p, uint64_t now) {
    raft_peer_t *peer = &r->peers[p];
    const uint64_t hb_ns = r->cfg.heartbeat_interval_ns;
    const uint64_t quiet_ns = now - peer->last_sent_ns;
    if (peer->sending_snapshot) {
        /* One chunk at a time; re-send it if its answer was lost. */
        if (peer->inflight == 0 || quiet_ns >= RAFT_RESEND_HEARTBEATS * hb_ns) {
            raft__sent_clear(peer);
            raft__send_append(r, p);
        }
        return;
    }
    if (peer->replicating && peer->inflight > 0 &&
        now - peer->progress_ns >= RAFT_RESEND_HEARTBEATS * hb_ns) {
        /* Answers lost (or the follower restarted): probe from the last
         * known match instead of re-sending the whole pipeline. */
        raft__peer_probe(peer, peer->match_index + 1);
    }
    if (!peer->replicating) {
        if (peer->inflight == 0 || quiet_ns >= RAFT_PROBE_RETRY_HEARTBEATS * hb_ns) {
            raft__sent_clear(peer);
            raft__send_append(r, p);
        }
        return;
    }
    if (peer->inflight == 0) {
        raft__send_append(r, p);
    } else if (quiet_ns >= hb_ns) {
        raft__send_keepalive(r, p);
    }
}

static void raft__on_heartbeat(raft_t *r) {
    if (r->role != RAFT_LEADER) return;
    const uint64_t now = raft__now(r);
    uint32_t live = 1;
    for (uint32_t p = 0; p < r->cfg.nodes_count; p++) {
        if (p == r->cfg.id) continue;
        raft_peer_t *peer = &r->peers[p];
        if (now - peer->last_heard_ns <= r->cfg.election_timeout_max_ns) live++;
        raft__heartbeat_peer(r, p, now);
    }
    if (r->cfg.check_quorum && live < raft__majority(r)) {
        io_trace(r->io, "raft.step_down", "check-quorum");
        raft__become_follower(r, r->term, RAFT_NONE);
        return;
    }
    raft__arm_heartbeat(r);
    raft_flush(r);
}

void raft_on_timer(raft_t *r, uint64_t local_token) {
    if (!r->started) return;
    if (local_token == RAFT_TIMER_ELECTION) {
        r->election_armed_ns = 0;
        if (raft__now(r) < r->election_deadline_ns)
            raft__arm_election_timer(r); /* heard from a leader since: wait on */
        else if (r->role != RAFT_LEADER)
            raft__start_election(r);
    } else if (local_token == RAFT_TIMER_HEARTBEAT) {
        raft__on_heartbeat(r);
    }
    raft_flush(r);
}

void raft_on_log_event(raft_t *r, const broker_log_event_t *ev) {
    if (!r->started || !(ev->flags & BROKER_LOG_EV_DURABLE)) return;
    if (r->role == RAFT_LEADER) {
        raft__advance_commit(r);
        return;
    }
    if (!r->owe_response) return;
    if (r->owe_leader != r->leader) {
        r->owe_response = false; /* matched against a leader we left */
        return;
    }
    const uint64_t durable = broker_log_durable_index(r->log);
    /* Entries up to owe_match were matched against this leader; the durable
     * part of them is safe to acknowledge now. */
    const uint64_t match = durable < r->owe_match ? durable : r->owe_match;
    if (match > 0) raft__send_append_response(r, r->owe_leader, true, match, 0, 0);
    if (durable >= r->owe_match) r->owe_response = false;
}

void raft_start(raft_t *r, uint64_t term, uint32_t vote, uint64_t commit_floor) {
    assert(!r->started);
    r->term = term;
    r->voted_for = vote < r->cfg.nodes_count ? vote : RAFT_NONE;
    r->durable_term = r->term;
    r->durable_vote = r->voted_for;
    r->commit_index = commit_floor;
    r->started = true;
    r->role = RAFT_FOLLOWER;
    r->leader = RAFT_NONE;
    raft__arm_election(r);
}

void raft_set_stopped(raft_t *r, bool stopped) { r->stopped = stopped; }

int raft_transfer(raft_t *r, uint32_t target) {
    if (r->role != RAFT_LEADER || target >= r->cfg.nodes_count || target == r->cfg.id)
        return IO_EINVAL;
    if (r->peers[target].match_index < broker_log_last_index(r->log)) return IO_EINVAL;
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_TIMEOUT_NOW;
    m.timeout_now.term = r->term;
    m.timeout_now.leader_id = r->cfg.id;
    raft__send(r, target, &m);
    return 0;
}
