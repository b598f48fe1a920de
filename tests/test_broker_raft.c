/*
 * tests/test_broker_raft.c — one Raft instance driven by hand on the fake
 * world (tests/support/testio): vote rules, durability of term/vote before
 * answering, log matching and truncation, the commit rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/log.h"
#include "broker/raft.h"
#include "broker/tokens.h"
#include "broker/wire.h"
#include "tests/support/testio.h"

typedef struct harness {
    testio_t t;
    broker_log_t log;
    raft_t raft;
    int persist_calls;
    uint64_t persisted_term;
    uint32_t persisted_vote;
    uint64_t committed;
    int role_changes;
} harness_t;

static int h_persist(void *arg, uint64_t term, uint32_t vote) {
    harness_t *h = arg;
    h->persist_calls++;
    h->persisted_term = term;
    h->persisted_vote = vote;
    return 0;
}
static void h_committed(void *arg, uint64_t index) { ((harness_t *)arg)->committed = index; }
static void h_role(void *arg, raft_role_t role, uint64_t term, uint32_t leader) {
    (void)role, (void)term, (void)leader;
    ((harness_t *)arg)->role_changes++;
}

static void h_timer(void *node, uint64_t token) {
    harness_t *h = node;
    raft_on_timer(&h->raft, broker_token_local(token));
}

static void h_disk_done(void *node, uint64_t token, int64_t result) {
    harness_t *h = node;
    assert_int_equal(broker_token_owner(token), BROKER_TOKEN_LOG);
    const broker_log_event_t ev = broker_log_on_disk_done(&h->log, token, result);
    if (h->raft.started) raft_on_log_event(&h->raft, &ev);
}

static harness_t *h_new(uint32_t id, bool unclean, bool pre_vote) {
    harness_t *h = calloc(1, sizeof *h);
    assert_non_null(h);
    sim_disk_config_t dc;
    sim_disk_config_default(&dc);
    assert_int_equal(testio_init(&h->t, 7 + id, id, &dc), 0);
    assert_int_equal(broker_log_init(&h->log, &h->t.io, NULL), 0);
    const int rc = broker_log_recover(&h->log);
    assert_true(rc == 0 || rc == 1);
    testio_run_disk(&h->t, h_disk_done, h);
    raft_config_t cfg;
    raft_config_default(&cfg, id, 3);
    cfg.unclean_election = unclean;
    cfg.pre_vote = pre_vote;
    const raft_callbacks_t cb = {.persist = h_persist, .committed = h_committed,
                                 .role_changed = h_role};
    assert_int_equal(raft_init(&h->raft, &h->t.io, &h->log, &cfg, &cb, h), 0);
    return h;
}

static void h_free(harness_t *h) {
    raft_close(&h->raft);
    broker_log_close(&h->log);
    testio_close(&h->t);
    free(h);
}

/* Append entries with the given terms (index 1..n) and make them durable. */
static void h_log(harness_t *h, const uint64_t *terms, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        assert_true(broker_log_append(&h->log, terms[i], RAFT_ENTRY_NOOP, NULL, 0) > 0);
    assert_int_equal(broker_log_sync(&h->log), 0);
    testio_run_disk(&h->t, h_disk_done, h);
    assert_int_equal(broker_log_durable_index(&h->log), n);
}

/* Pop the one message raft sent and decode it into *m (entries storage in *e). */
static int h_pop(harness_t *h, wire_msg_t *m, wire_entry_t *e, uint8_t **keep) {
    testio_message_t out;
    if (testio_pop_message(&h->t, &out) != 1) return -1;
    *keep = out.bytes;
    assert_int_equal(wire_decode(out.bytes, out.len, m, e, WIRE_ENTRIES_MAX), 0);
    return (int)out.dest;
}

/* Complete every term/vote save raft asked for (bounded). */
static void h_persist_all(harness_t *h) {
    for (int i = 0; i < 4 && h->raft.persisting; i++)
        raft_on_persisted(&h->raft, h->persisted_term, h->persisted_vote);
    assert_false(h->raft.persisting);
}

static void h_deliver(harness_t *h, io_addr_t from, const wire_msg_t *m) {
    raft_on_message(&h->raft, from, m);
}

static wire_msg_t vote_request(uint64_t term, uint32_t cand, uint64_t li, uint64_t lt) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_REQUEST_VOTE;
    m.request_vote = (wire_request_vote_t){term, cand, li, lt, 0};
    return m;
}

static void test_vote_waits_for_durable_term_and_vote(void **state) {
    (void)state;
    harness_t *h = h_new(0, false, false);
    raft_start(&h->raft, 1, RAFT_NODES_MAX, 0);
    wire_msg_t req = vote_request(2, 1, 0, 0);
    h_deliver(h, 1, &req);
    /* First the new term (no vote yet) is being saved; the vote waits behind. */
    assert_int_equal(h->persist_calls, 1);
    assert_int_equal(h->persisted_term, 2);
    assert_int_equal(testio_message_count(&h->t), 0); /* nothing before it is durable */
    raft_on_persisted(&h->raft, h->persisted_term, h->persisted_vote);
    assert_int_equal(h->persist_calls, 2);
    assert_int_equal(h->persisted_vote, 1);
    assert_int_equal(testio_message_count(&h->t), 0); /* the vote is not durable yet */
    raft_on_persisted(&h->raft, 2, 1);
    wire_msg_t m;
    wire_entry_t *e = calloc(WIRE_ENTRIES_MAX, sizeof *e);
    uint8_t *keep = NULL;
    assert_int_equal(h_pop(h, &m, e, &keep), 1);
    assert_int_equal(m.type, WIRE_MSG_VOTE_RESPONSE);
    assert_int_equal(m.vote_response.granted, 1);
    assert_int_equal(m.vote_response.term, 2);
    free(keep);
    /* One vote per term: another candidate of term 2 is refused. */
    req = vote_request(2, 2, 0, 0);
    h_deliver(h, 2, &req);
    assert_int_equal(h_pop(h, &m, e, &keep), 2);
    assert_int_equal(m.vote_response.granted, 0);
    free(keep);
    free(e);
    h_free(h);
}

static void vote_against_stale_log(bool unclean, uint8_t want_granted) {
    harness_t *h = h_new(0, unclean, false);
    const uint64_t terms[] = {1, 1, 3};
    h_log(h, terms, 3);
    raft_start(&h->raft, 3, RAFT_NODES_MAX, 0);
    /* The candidate's last entry is of term 2: older than ours (term 3). */
    wire_msg_t req = vote_request(4, 1, 5, 2);
    h_deliver(h, 1, &req);
    h_persist_all(h);
    wire_msg_t m;
    wire_entry_t e[4];
    uint8_t *keep = NULL;
    assert_int_equal(h_pop(h, &m, e, &keep), 1);
    assert_int_equal(m.type, WIRE_MSG_VOTE_RESPONSE);
    assert_int_equal(m.vote_response.granted, want_granted);
    assert_int_equal(m.vote_response.term, 4); /* the higher term is adopted either way */
    free(keep);
    h_free(h);
}

static void test_safe_election_refuses_stale_candidate(void **state) {
    (void)state;
    vote_against_stale_log(false, 0);
}

static void test_unclean_election_grants_stale_candidate(void **state) {
    (void)state;
    vote_against_stale_log(true, 1);
}

static wire_msg_t append(uint64_t term, uint64_t prev, uint64_t prev_term, uint64_t commit,
                         const wire_entry_t *entries, uint32_t count) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_APPEND_ENTRIES;
    m.append_entries = (wire_append_entries_t){term, 1, prev, prev_term, commit, count, entries};
    return m;
}

/* A started follower of term 3 whose durable log holds terms [1, 1, 2]. */
static harness_t *h_follower_112(void) {
    harness_t *h = h_new(0, false, false);
    const uint64_t terms[] = {1, 1, 2};
    h_log(h, terms, 3);
    raft_start(&h->raft, 3, RAFT_NODES_MAX, 0);
    return h;
}

static void test_log_matching_and_truncation(void **state) {
    (void)state;
    harness_t *h = h_follower_112();
    wire_msg_t m;
    wire_entry_t e[4];
    uint8_t *keep = NULL;
    /* prev (3, term 3) does not match our (3, term 2): refused with a hint
     * pointing at the first index of our conflicting term. */
    wire_msg_t a = append(3, 3, 3, 0, NULL, 0);
    h_deliver(h, 1, &a);
    assert_int_equal(h_pop(h, &m, e, &keep), 1);
    assert_int_equal(m.type, WIRE_MSG_APPEND_RESPONSE);
    assert_int_equal(m.append_response.success, 0);
    assert_int_equal(m.append_response.conflict_term, 2);
    assert_int_equal(m.append_response.conflict_index, 3);
    free(keep);
    /* prev beyond our log: hint = our last + 1. */
    a = append(3, 9, 3, 0, NULL, 0);
    h_deliver(h, 1, &a);
    assert_int_equal(h_pop(h, &m, e, &keep), 1);
    assert_int_equal(m.append_response.success, 0);
    assert_int_equal(m.append_response.conflict_index, 4);
    free(keep);
    /* Matching prev (2, term 1) with entries 3..4 of term 3: our index 3
     * (term 2) is replaced. The answer waits until the log is durable. */
    const wire_entry_t ents[2] = {{3, 3, RAFT_ENTRY_NOOP, {NULL, 0}}, {3, 4, RAFT_ENTRY_NOOP, {NULL, 0}}};
    a = append(3, 2, 1, 4, ents, 2);
    h_deliver(h, 1, &a);
    assert_int_equal(broker_log_last_index(&h->log), 4);
    assert_int_equal(broker_log_term_at(&h->log, 3), 3);
    assert_int_equal(testio_message_count(&h->t), 0);
    testio_run_disk(&h->t, h_disk_done, h);
    assert_int_equal(h_pop(h, &m, e, &keep), 1);
    assert_int_equal(m.append_response.success, 1);
    assert_int_equal(m.append_response.match_index, 4);
    free(keep);
    /* Commit follows the leader, bounded by what matched. */
    assert_int_equal(h->committed, 4);
    h_free(h);
}

static void test_follower_commit_bounded_by_match(void **state) {
    (void)state;
    harness_t *h = h_new(0, false, false);
    raft_start(&h->raft, 1, RAFT_NODES_MAX, 0);
    const wire_entry_t ents[1] = {{1, 1, RAFT_ENTRY_NOOP, {NULL, 0}}};
    wire_msg_t a = append(1, 0, 0, 10, ents, 1);
    h_deliver(h, 1, &a);
    assert_int_equal(h->committed, 1); /* leader says 10; we only hold 1 */
    h_free(h);
}

/* Becoming leader of term 3 with an entry of term 2 the others may lack:
 * replicating it to a majority does not commit it; the leader's own no-op of
 * term 3 does, and carries index 2 with it (Raft 5.4.2). */
static void test_leader_commits_only_current_term_by_counting(void **state) {
    (void)state;
    harness_t *h = h_new(0, false, false);
    const uint64_t terms[] = {1, 2};
    h_log(h, terms, 2);
    raft_start(&h->raft, 2, RAFT_NODES_MAX, 0);
    /* Fire the election timer by hand, at its deadline. */
    h->t.now_ns = h->raft.election_deadline_ns;
    raft_on_timer(&h->raft, RAFT_TIMER_ELECTION);
    assert_int_equal(h->raft.role, RAFT_CANDIDATE);
    assert_int_equal(h->raft.term, 3);
    h_persist_all(h);
    wire_msg_t m;
    wire_entry_t *e = calloc(WIRE_ENTRIES_MAX, sizeof *e);
    uint8_t *keep = NULL;
    while (h_pop(h, &m, e, &keep) >= 0) free(keep); /* the RequestVotes */
    wire_msg_t v;
    memset(&v, 0, sizeof v);
    v.type = WIRE_MSG_VOTE_RESPONSE;
    v.vote_response = (wire_vote_response_t){3, 1, 1, 0};
    h_deliver(h, 1, &v);
    assert_true(raft_is_leader(&h->raft));
    assert_int_equal(broker_log_last_index(&h->log), 3); /* the no-op of term 3 */
    testio_run_disk(&h->t, h_disk_done, h);              /* leader's copy durable */
    while (h_pop(h, &m, e, &keep) >= 0) free(keep);
    wire_msg_t r;
    memset(&r, 0, sizeof r);
    r.type = WIRE_MSG_APPEND_RESPONSE;
    r.append_response = (wire_append_response_t){3, 1, 1, 2, 0, 0};
    h_deliver(h, 1, &r);
    assert_int_equal(h->committed, 0); /* index 2 is of term 2: not by counting */
    r.append_response.match_index = 3;
    h_deliver(h, 1, &r);
    assert_int_equal(h->committed, 3);
    /* A stale answer of an older term is ignored; a newer term deposes. */
    r.append_response.term = 5;
    r.append_response.success = 0;
    h_deliver(h, 1, &r);
    assert_false(raft_is_leader(&h->raft));
    assert_int_equal(h->raft.term, 5);
    free(e);
    h_free(h);
}

/* A follower that keeps hearing from its leader: appends push the election
 * deadline without re-arming the io timer each time, and the timer firing
 * before the pushed deadline waits on instead of starting an election. Once
 * the leader goes quiet, the election starts at the deadline. */
static void test_election_timer_rearms_lazily(void **state) {
    (void)state;
    harness_t *h = h_new(0, false, false);
    raft_start(&h->raft, 1, RAFT_NODES_MAX, 0);
    const uint64_t token = broker_token_make(BROKER_TOKEN_RAFT, RAFT_TIMER_ELECTION);
    uint64_t armed_ns = 0, later_ns = 0;
    assert_int_equal(testio_timer_armed(&h->t, token, &armed_ns), 1);
    h->t.now_ns = armed_ns - 1; /* just before it fires: a heartbeat */
    wire_msg_t a = append(1, 0, 0, 0, NULL, 0);
    h_deliver(h, 1, &a);
    assert_true(h->raft.election_deadline_ns > armed_ns);
    assert_int_equal(testio_timer_armed(&h->t, token, &later_ns), 1);
    assert_int_equal(later_ns, armed_ns); /* not re-armed */
    h->t.now_ns = armed_ns;
    assert_int_equal(testio_fire_timers(&h->t, h_timer, h), 1);
    assert_int_equal(h->raft.role, RAFT_FOLLOWER); /* heard from the leader */
    assert_int_equal(testio_timer_armed(&h->t, token, &later_ns), 1);
    assert_int_equal(later_ns, h->raft.election_deadline_ns);
    h->t.now_ns = later_ns;
    assert_int_equal(testio_fire_timers(&h->t, h_timer, h), 1);
    assert_int_equal(h->raft.role, RAFT_CANDIDATE);
    assert_int_equal(h->raft.term, 2);
    h_free(h);
}


/* Fill the log's operation queue (appends and truncates queued behind disk
 * operations that never complete) until a truncate is refused. */
static void h_fill_op_queue(harness_t *h) {
    for (int i = 0; i < 100000; i++) {
        if (broker_log_append(&h->log, 2, RAFT_ENTRY_NOOP, NULL, 0) < 0) break;
        if (broker_log_append(&h->log, 2, RAFT_ENTRY_NOOP, NULL, 0) < 0) break;
        if (broker_log_truncate_after(&h->log, broker_log_last_index(&h->log) - 1) != 0) break;
    }
    for (int i = 0; i < 8; i++)
        if (broker_log_truncate_after(&h->log, broker_log_last_index(&h->log) - 1) != 0) break;
    assert_int_equal(broker_log_truncate_after(&h->log, broker_log_last_index(&h->log) - 1),
                     IO_ENOMEM);
}

/* A follower whose log cannot truncate a conflicting suffix (its op queue is
 * full) must not acknowledge past the conflict: the entry at index 3 is of
 * term 2 here, the leader's is of term 3. The answer is a rejection naming
 * the rejected prev and where to resume; once the disk drains, the same
 * append is accepted. */
static void test_failed_truncate_never_acknowledges_conflict(void **state) {
    (void)state;
    harness_t *h = h_follower_112();
    h_fill_op_queue(h);
    wire_msg_t m;
    wire_entry_t e[4];
    uint8_t *keep = NULL;
    const wire_entry_t ents[1] = {{3, 3, RAFT_ENTRY_NOOP, {NULL, 0}}};
    wire_msg_t a = append(3, 2, 1, 3, ents, 1);
    h_deliver(h, 1, &a);
    h_persist_all(h);
    assert_int_equal(h_pop(h, &m, e, &keep), 1);
    assert_int_equal(m.type, WIRE_MSG_APPEND_RESPONSE);
    assert_int_equal(m.append_response.success, 0);
    assert_int_equal(m.append_response.match_index, 2);    /* the rejected prev */
    assert_int_equal(m.append_response.conflict_index, 3); /* resume here */
    free(keep);
    assert_int_equal(broker_log_term_at(&h->log, 3), 2);   /* conflict still there */
    assert_true(h->committed <= 2);                        /* never past it */
    testio_run_disk(&h->t, h_disk_done, h);
    while (testio_message_count(&h->t) > 0) {
        assert_true(h_pop(h, &m, e, &keep) >= 0);
        free(keep);
    }
    h_deliver(h, 1, &a);
    testio_run_disk(&h->t, h_disk_done, h);
    assert_int_equal(broker_log_last_index(&h->log), 3);
    assert_int_equal(broker_log_term_at(&h->log, 3), 3);
    int answered = 0;
    while (h_pop(h, &m, e, &keep) >= 0) {
        if (m.type == WIRE_MSG_APPEND_RESPONSE && m.append_response.success &&
            m.append_response.match_index == 3)
            answered++;
        free(keep);
    }
    assert_int_equal(answered, 1);
    assert_int_equal(h->committed, 3);
    h_free(h);
}

/* Pops and frees every message raft sent; returns how many went to `dest`. */
static int h_drain_to(harness_t *h, io_addr_t dest, wire_msg_t *last, wire_entry_t *e) {
    int n = 0;
    wire_msg_t m;
    uint8_t *keep = NULL;
    int to;
    while ((to = h_pop(h, &m, e, &keep)) >= 0) {
        if ((io_addr_t)to == dest) {
            n++;
            if (last) *last = m;
        }
        free(keep);
    }
    return n;
}

static wire_msg_t append_answer(uint64_t term, uint32_t from, bool ok, uint64_t match,
                                uint64_t conflict_index) {
    wire_msg_t r;
    memset(&r, 0, sizeof r);
    r.type = WIRE_MSG_APPEND_RESPONSE;
    r.append_response = (wire_append_response_t){term, from, ok, match, conflict_index, 0};
    return r;
}

/* Node 0 becomes leader of term 3 over log [1, 2] (+ its no-op at 3). */
static harness_t *h_leader(wire_entry_t *e) {
    harness_t *h = h_new(0, false, false);
    const uint64_t terms[] = {1, 2};
    h_log(h, terms, 2);
    raft_start(&h->raft, 2, RAFT_NODES_MAX, 0);
    h->t.now_ns = h->raft.election_deadline_ns;
    raft_on_timer(&h->raft, RAFT_TIMER_ELECTION);
    h_persist_all(h);
    (void)h_drain_to(h, 1, NULL, e);
    wire_msg_t v;
    memset(&v, 0, sizeof v);
    v.type = WIRE_MSG_VOTE_RESPONSE;
    v.vote_response = (wire_vote_response_t){3, 1, 1, 0};
    h_deliver(h, 1, &v);
    assert_true(raft_is_leader(&h->raft));
    testio_run_disk(&h->t, h_disk_done, h);
    return h;
}

/* The storm of issue 9: rejected appends each refilled the whole pipeline,
 * so rejections multiplied. Now no answer, stale, duplicated or reordered,
 * makes the leader send more than one message, and the appends in flight to
 * one follower never exceed RAFT_INFLIGHT_MAX. */
static void test_replication_is_flow_controlled(void **state) {
    (void)state;
    wire_entry_t *e = calloc(WIRE_ENTRIES_MAX, sizeof *e);
    harness_t *h = h_leader(e);
    wire_msg_t last;
    /* The new leader probes follower 1 with one append (prev = 2). */
    assert_int_equal(h_drain_to(h, 1, &last, e), 1);
    assert_int_equal(last.append_entries.prev_log_index, 2);
    /* Rejected (follower holds only index 1): exactly one new probe. */
    wire_msg_t rej = append_answer(3, 1, false, 2, 2);
    h_deliver(h, 1, &rej);
    assert_int_equal(h_drain_to(h, 1, &last, e), 1);
    assert_int_equal(last.append_entries.prev_log_index, 1);
    /* The same rejection again (duplicated by the network): stale, silent. */
    for (int i = 0; i < 50; i++) h_deliver(h, 1, &rej);
    assert_int_equal(h_drain_to(h, 1, NULL, e), 0);
    /* The probe matches: replicate. Then 200 entries: the pipeline fills to
     * its bound and no further. */
    wire_msg_t ok = append_answer(3, 1, true, 3, 0);
    h_deliver(h, 1, &ok);
    (void)h_drain_to(h, 1, NULL, e);
    h->raft.cfg.batch_entries_max = 1; /* one entry per append: easy to count */
    for (int i = 0; i < 200; i++)
        assert_true(raft_propose(&h->raft, RAFT_ENTRY_COMMAND, (const uint8_t *)"x", 1) > 0);
    raft_flush(&h->raft);
    assert_int_equal(h_drain_to(h, 1, NULL, e), RAFT_INFLIGHT_MAX);
    assert_int_equal(h->raft.peers[1].inflight, RAFT_INFLIGHT_MAX);
    /* Rejections at or below the known match are stale: nothing is sent. */
    for (int i = 0; i < 50; i++) {
        wire_msg_t stale = append_answer(3, 1, false, 3 - (uint64_t)(i % 3), 1);
        h_deliver(h, 1, &stale);
    }
    assert_int_equal(h_drain_to(h, 1, NULL, e), 0);
    /* Sixteen answers rejecting every append in flight (a gap): the first
     * makes the leader probe once; the other fifteen are stale. */
    for (uint64_t prev = 3; prev < 3 + RAFT_INFLIGHT_MAX; prev++) {
        wire_msg_t r = append_answer(3, 1, false, prev, 4);
        h_deliver(h, 1, &r);
        assert_true(h->raft.peers[1].inflight <= RAFT_INFLIGHT_MAX);
    }
    assert_int_equal(h_drain_to(h, 1, &last, e), 1);
    assert_int_equal(last.append_entries.prev_log_index, 3);
    assert_false(h->raft.peers[1].replicating);
    free(e);
    h_free(h);
}

static void test_bad_config_and_messages_rejected(void **state) {
    (void)state;
    raft_config_t cfg;
    raft_config_default(&cfg, 3, 3);
    assert_int_equal(raft_config_check(&cfg), IO_EINVAL); /* id >= nodes */
    raft_config_default(&cfg, 0, 8);
    assert_int_equal(raft_config_check(&cfg), IO_EINVAL); /* > RAFT_NODES_MAX */
    raft_config_default(&cfg, 0, 3);
    cfg.election_timeout_min_ns = cfg.heartbeat_interval_ns;
    assert_int_equal(raft_config_check(&cfg), IO_EINVAL);
    /* Messages naming impossible nodes change nothing. */
    harness_t *h = h_new(0, false, false);
    raft_start(&h->raft, 1, RAFT_NODES_MAX, 0);
    wire_msg_t req = vote_request(9, 7, 0, 0);
    h_deliver(h, 1, &req);
    assert_int_equal(h->raft.term, 1);
    assert_int_equal(testio_message_count(&h->t), 0);
    h_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vote_waits_for_durable_term_and_vote),
        cmocka_unit_test(test_safe_election_refuses_stale_candidate),
        cmocka_unit_test(test_unclean_election_grants_stale_candidate),
        cmocka_unit_test(test_log_matching_and_truncation),
        cmocka_unit_test(test_follower_commit_bounded_by_match),
        cmocka_unit_test(test_leader_commits_only_current_term_by_counting),
        cmocka_unit_test(test_election_timer_rearms_lazily),
        cmocka_unit_test(test_failed_truncate_never_acknowledges_conflict),
        cmocka_unit_test(test_replication_is_flow_controlled),
        cmocka_unit_test(test_bad_config_and_messages_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
