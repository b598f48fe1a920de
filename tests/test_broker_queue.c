/*
 * tests/test_broker_queue.c — queue semantics as consumers see them: the
 * leader-local sessions (broker/session.h) driving the replicated state
 * machine (broker/sm.h), with every command going through encode + apply as
 * it would through Raft.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io.h"
#include "broker/queue.h"
#include "broker/session.h"
#include "broker/sm.h"

#define T_DELIVERIES_MAX 64u
#define T_CMDS_MAX SESSION_INFLIGHT_MAX
#define MS (1000ull * 1000ull)

/* A one-node "leader": the SM, its log index, the sessions, out buffers. */
typedef struct t_leader {
    broker_sm_t sm;
    uint64_t index;
    uint8_t *buf;
    broker_sessions_t s;
    broker_delivery_t dv[T_DELIVERIES_MAX];
    uint32_t nd;
    broker_session_cmd_t *cmds;
    uint32_t nc;
} t_leader_t;

static void l_init(t_leader_t *l, uint64_t ack_timeout_ns) {
    memset(l, 0, sizeof *l);
    broker_sm_config_t cfg = {.dedup = 1};
    broker_sm_init(&l->sm, &cfg);
    l->buf = malloc(SM_CMD_SIZE_MAX);
    l->cmds = calloc(T_CMDS_MAX, sizeof *l->cmds);
    assert_non_null(l->buf);
    assert_non_null(l->cmds);
    broker_sessions_config_t sc = {.ack_timeout_ns = ack_timeout_ns};
    broker_sessions_init(&l->s, &sc, l->sm.next_message_id);
}

static void l_close(t_leader_t *l) {
    broker_sessions_close(&l->s);
    broker_sm_close(&l->sm);
    free(l->buf);
    free(l->cmds);
}

static int l_apply(t_leader_t *l, const broker_sm_cmd_t *c,
                   broker_sm_result_t *r) {
    size_t len = 0;
    assert_int_equal(broker_sm_cmd_encode(c, l->buf, SM_CMD_SIZE_MAX, &len), 0);
    broker_sm_result_t tmp;
    return broker_sm_apply(&l->sm, ++l->index, l->buf, len, r ? r : &tmp);
}

static broker_sm_cmd_t c_base(uint8_t type) {
    broker_sm_cmd_t c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.queue = c.exchange = c.key = c.dlq = broker_sm_str("");
    return c;
}

static void l_queue(t_leader_t *l, const char *name, const char *dlq,
                    uint32_t limit) {
    broker_sm_cmd_t c = c_base(SM_CMD_DECLARE_QUEUE);
    c.queue = broker_sm_str(name);
    c.dlq = broker_sm_str(dlq);
    c.delivery_limit = limit;
    assert_int_equal(l_apply(l, &c, NULL), 0);
}

static void l_publish(t_leader_t *l, const char *queue, int n) {
    for (int i = 0; i < n; i++) {
        char body[32];
        snprintf(body, sizeof body, "m%d", i);
        broker_sm_cmd_t c = c_base(SM_CMD_PUBLISH);
        c.key = broker_sm_str(queue);
        c.body = (const uint8_t *)body;
        c.body_len = (uint32_t)strlen(body);
        broker_sm_result_t r;
        assert_int_equal(l_apply(l, &c, &r), 0);
        assert_int_equal(r.status, SM_STATUS_OK);
    }
}

/* Propose (here: apply at once) the commands the sessions produced. */
static void l_commit(t_leader_t *l, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        broker_sm_cmd_t c;
        broker_session_cmd_to_sm(&l->cmds[i], &c);
        assert_int_equal(l_apply(l, &c, NULL), 0);
    }
}

static uint32_t l_dispatch(t_leader_t *l, uint64_t now_ns) {
    assert_int_equal(broker_sessions_dispatch(&l->s, &l->sm, now_ns, l->dv,
                                              T_DELIVERIES_MAX, l->cmds,
                                              T_CMDS_MAX, &l->nd, &l->nc),
                     0);
    return l->nd;
}

static uint32_t l_count(const t_leader_t *l, const char *q) {
    const broker_queue_t *qq = broker_sm_queue(&l->sm, q, strlen(q));
    return qq ? qq->count : UINT32_MAX;
}

static void l_consume(t_leader_t *l, uint64_t sid, const char *tag,
                      const char *q, uint32_t prefetch, int auto_ack) {
    assert_int_equal(broker_sessions_consume(&l->s, &l->sm, sid, tag,
                                             strlen(tag), q, strlen(q),
                                             prefetch, auto_ack),
                     0);
}

/* ------------------------------------------------------------------------ */

static void test_prefetch_respected(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 10);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c1", "q", 3, 0);
    assert_int_equal(l_dispatch(&l, 0), 3);
    assert_int_equal(l.nc, 0);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(l.dv[i].delivery_tag, i + 1);
        assert_int_equal(l.dv[i].message->message_id, i + 1);
        assert_int_equal(l.dv[i].redelivered, 0);
        assert_memory_equal(l.dv[i].consumer_tag, "c1", 2);
    }
    assert_int_equal(l_dispatch(&l, 0), 0); /* full: nothing more */
    assert_int_equal(broker_sessions_unacked(&l.s, 1), 3);
    uint32_t n;
    assert_int_equal(broker_sessions_ack(&l.s, 1, 2, 0, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(l_dispatch(&l, 0), 1); /* one slot freed */
    assert_int_equal(l.dv[0].message->message_id, 4);
    assert_int_equal(l.dv[0].delivery_tag, 4);
    l_close(&l);
}

static void test_manual_ack_settles(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 5);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c", "q", 0, 0);
    assert_int_equal(l_dispatch(&l, 0), 5);
    uint32_t n;
    /* multiple: tags 1..3 in one ack */
    assert_int_equal(broker_sessions_ack(&l.s, 1, 3, 1, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(l.cmds[i].type, SM_CMD_SETTLE);
        assert_int_equal(l.cmds[i].message_id, i + 1);
        assert_memory_equal(l.cmds[i].queue, "q", 2);
    }
    /* not committed yet: acked messages must not be handed out again */
    assert_int_equal(l_dispatch(&l, 0), 0);
    l_commit(&l, n);
    assert_int_equal(l_count(&l, "q"), 2);
    assert_int_equal(l_dispatch(&l, 0), 0);
    /* multiple with tag 0 = everything outstanding */
    assert_int_equal(broker_sessions_ack(&l.s, 1, 0, 1, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, 2);
    l_commit(&l, n);
    assert_int_equal(l_count(&l, "q"), 0);
    assert_int_equal(l.s.pending_total, 2); /* forgotten at next dispatch */
    assert_int_equal(l_dispatch(&l, 0), 0);
    assert_int_equal(l.s.pending_total, 0);
    l_close(&l);
}

static void test_bad_acks_rejected(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 3);
    uint32_t n = 99;
    assert_int_equal(broker_sessions_ack(&l.s, 7, 1, 0, l.cmds, T_CMDS_MAX, &n),
                     SM_ENOTFOUND);
    assert_int_equal(n, 0);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c", "q", 0, 0);
    assert_int_equal(l_dispatch(&l, 0), 3);
    assert_int_equal(broker_sessions_ack(&l.s, 1, 9, 0, l.cmds, T_CMDS_MAX, &n),
                     SM_ENOTFOUND);
    assert_int_equal(broker_sessions_nack(&l.s, 1, 9, 1, 1, l.cmds, T_CMDS_MAX, &n),
                     SM_ENOTFOUND);
    /* output too small: refused, nothing changed */
    assert_int_equal(broker_sessions_ack(&l.s, 1, 3, 1, l.cmds, 2, &n),
                     SM_ENOSPACE);
    assert_int_equal(broker_sessions_unacked(&l.s, 1), 3);
    assert_int_equal(broker_sessions_ack(&l.s, 1, 2, 0, l.cmds, 1, &n), 0);
    /* the same tag twice is unknown the second time */
    assert_int_equal(broker_sessions_ack(&l.s, 1, 2, 0, l.cmds, 1, &n),
                     SM_ENOTFOUND);
    assert_int_equal(broker_sessions_unacked(&l.s, 1), 2);
    l_close(&l);
}

static void test_nack_requeue_redelivers(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 1);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c", "q", 1, 0);
    assert_int_equal(l_dispatch(&l, 0), 1);
    uint64_t id = l.dv[0].message->message_id;
    uint32_t n;
    assert_int_equal(broker_sessions_nack(&l.s, 1, 1, 0, 1, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(l.cmds[0].type, SM_CMD_RETURN);
    assert_int_equal(l.cmds[0].message_id, id);
    /* the RETURN is not committed yet: the message stays out of reach */
    assert_int_equal(l_dispatch(&l, 0), 0);
    l_commit(&l, n);
    assert_int_equal(l_dispatch(&l, 0), 1);
    assert_int_equal(l.dv[0].message->message_id, id);
    assert_int_equal(l.dv[0].message->delivery_count, 1);
    assert_int_equal(l.dv[0].redelivered, 1);
    assert_int_equal(l.dv[0].delivery_tag, 2);
    l_close(&l);
}

static void test_nack_without_requeue_dead_letters(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "dlq", 0);
    l_queue(&l, "dlq", "", 0);
    l_publish(&l, "q", 2);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c", "q", 0, 0);
    assert_int_equal(l_dispatch(&l, 0), 2);
    uint32_t n;
    /* basic.reject = nack of one tag */
    assert_int_equal(broker_sessions_nack(&l.s, 1, 2, 0, 0, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(l.cmds[0].type, SM_CMD_REJECT_DISCARD);
    l_commit(&l, n);
    assert_int_equal(l_count(&l, "q"), 1);
    assert_int_equal(l_count(&l, "dlq"), 1);
    assert_int_equal(broker_sessions_unacked(&l.s, 1), 1);
    /* the dead letter is consumable from the DLQ */
    l_consume(&l, 1, "d", "dlq", 0, 0);
    assert_int_equal(l_dispatch(&l, 0), 1);
    assert_memory_equal(l.dv[0].queue->name, "dlq", 4);
    assert_memory_equal(broker_message_body(l.dv[0].message), "m1", 2);
    assert_int_equal(l.dv[0].redelivered, 0);
    l_close(&l);
}

static void test_session_expiry_redelivers(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 3);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 100 * MS, 0), 0);
    assert_int_equal(broker_sessions_open_session(&l.s, 2, 0, 0), 0);
    l_consume(&l, 1, "a", "q", 0, 0);
    assert_int_equal(l_dispatch(&l, 0), 3);
    l_consume(&l, 2, "b", "q", 0, 0);
    assert_int_equal(broker_sessions_next_deadline_ns(&l.s), 100 * MS);
    uint32_t n;
    assert_int_equal(broker_sessions_touch(&l.s, 1, 50 * MS), 0);
    assert_int_equal(broker_sessions_tick(&l.s, 120 * MS, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, 0); /* heard from at 50 ms: still alive */
    /* silent past the heartbeat timeout: expired, everything returned.
     * A small output array is filled over several calls. */
    assert_int_equal(broker_sessions_tick(&l.s, 150 * MS, l.cmds, 2, &n), 1);
    assert_int_equal(n, 2);
    l_commit(&l, n);
    assert_int_equal(broker_sessions_tick(&l.s, 150 * MS, l.cmds, 2, &n), 0);
    assert_int_equal(n, 1);
    l_commit(&l, n);
    assert_int_equal(l.cmds[0].type, SM_CMD_RETURN);
    assert_int_equal(broker_sessions_touch(&l.s, 1, 0), SM_ENOTFOUND);
    /* the other session's consumer gets all three, flagged redelivered */
    assert_int_equal(l_dispatch(&l, 0), 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(l.dv[i].session_id, 2);
        assert_int_equal(l.dv[i].redelivered, 1);
        assert_int_equal(l.dv[i].message->delivery_count, 1);
    }
    l_close(&l);
}

static void test_ack_timeout_redelivers(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 30 * MS);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 2);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c", "q", 1, 0);
    assert_int_equal(l_dispatch(&l, 10 * MS), 1);
    assert_int_equal(broker_sessions_next_deadline_ns(&l.s), 40 * MS);
    uint32_t n;
    assert_int_equal(broker_sessions_tick(&l.s, 39 * MS, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(broker_sessions_tick(&l.s, 40 * MS, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(l.cmds[0].type, SM_CMD_RETURN);
    assert_int_equal(l.cmds[0].message_id, 1);
    /* a late ack of the timed-out tag is refused */
    uint32_t m;
    broker_session_cmd_t late[1];
    assert_int_equal(broker_sessions_ack(&l.s, 1, 1, 0, late, 1, &m), SM_ENOTFOUND);
    l_commit(&l, n);
    /* the prefetch slot was freed: message 1 comes back first (FIFO) */
    assert_int_equal(l_dispatch(&l, 50 * MS), 1);
    assert_int_equal(l.dv[0].message->message_id, 1);
    assert_int_equal(l.dv[0].redelivered, 1);
    l_close(&l);
}

static void test_delivery_limit_to_dlq(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "dlq", 3);
    l_queue(&l, "dlq", "", 0);
    l_publish(&l, "q", 1);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c", "q", 1, 0);
    uint32_t n;
    for (uint32_t round = 0; round < 3; round++) {
        assert_int_equal(l_dispatch(&l, 0), 1);
        assert_int_equal(l.dv[0].message->delivery_count, round);
        uint64_t tag = l.dv[0].delivery_tag;
        assert_int_equal(broker_sessions_nack(&l.s, 1, tag, 0, 1, l.cmds,
                                              T_CMDS_MAX, &n), 0);
        l_commit(&l, n);
    }
    /* third return reached the limit: moved to the DLQ */
    assert_int_equal(l_count(&l, "q"), 0);
    assert_int_equal(l_count(&l, "dlq"), 1);
    assert_int_equal(l.sm.dead_lettered_total, 1);
    assert_int_equal(l_dispatch(&l, 0), 0);
    l_close(&l);
}

static void test_auto_ack_settles_at_delivery(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 4);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c", "q", 0, 1);
    assert_int_equal(l_dispatch(&l, 0), 4);
    assert_int_equal(l.nc, 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(l.dv[i].auto_ack, 1);
        assert_int_equal(l.cmds[i].type, SM_CMD_SETTLE);
        assert_int_equal(l.cmds[i].message_id, l.dv[i].message->message_id);
    }
    assert_int_equal(broker_sessions_unacked(&l.s, 1), 0);
    broker_session_cmd_t settles[4];
    memcpy(settles, l.cmds, sizeof settles);
    /* not committed yet: the messages are still in the SM but not ready */
    assert_int_equal(l_dispatch(&l, 0), 0);
    assert_int_equal(l_count(&l, "q"), 4);
    memcpy(l.cmds, settles, sizeof settles);
    l_commit(&l, 4);
    assert_int_equal(l_count(&l, "q"), 0);
    assert_int_equal(l_dispatch(&l, 0), 0);
    assert_int_equal(l.s.pending_total, 0);
    /* with a SETTLE array of 0, auto-ack consumers wait for room */
    l_publish(&l, "q", 1);
    uint32_t nd, nc;
    assert_int_equal(broker_sessions_dispatch(&l.s, &l.sm, 0, l.dv, 8, l.cmds,
                                              0, &nd, &nc), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(l_dispatch(&l, 0), 1);
    l_close(&l);
}

static void test_round_robin_and_exclusive_delivery(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 6);
    assert_int_equal(broker_sessions_open_session(&l.s, 2, 0, 0), 0);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 2, "x", "q", 2, 0);
    l_consume(&l, 1, "y", "q", 2, 0);
    assert_int_equal(l_dispatch(&l, 0), 4);
    /* attach order (x first), alternating, never the same message twice */
    const uint64_t want_session[] = {2, 1, 2, 1};
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(l.dv[i].session_id, want_session[i]);
        assert_int_equal(l.dv[i].message->message_id, i + 1);
    }
    /* cancel y: its unacked stay with session 1, x gets nothing new (full) */
    assert_int_equal(broker_sessions_cancel(&l.s, 1, "y", 1), 0);
    assert_int_equal(broker_sessions_cancel(&l.s, 1, "y", 1), SM_ENOTFOUND);
    assert_int_equal(l_dispatch(&l, 0), 0);
    uint32_t n;
    assert_int_equal(broker_sessions_close_session(&l.s, 1, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, 2);
    l_commit(&l, n);
    /* x is still full; ack one of x's, and it gets the oldest ready one */
    assert_int_equal(broker_sessions_ack(&l.s, 2, 1, 0, l.cmds, T_CMDS_MAX, &n), 0);
    l_commit(&l, n);
    assert_int_equal(l_dispatch(&l, 0), 1);
    assert_int_equal(l.dv[0].message->message_id, 2);
    assert_int_equal(l.dv[0].redelivered, 1);
    l_close(&l);
}

static void test_leader_change_makes_all_ready(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", 3);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "c", "q", 0, 0);
    assert_int_equal(l_dispatch(&l, 0), 3);
    uint32_t n;
    assert_int_equal(broker_sessions_ack(&l.s, 1, 1, 0, l.cmds, T_CMDS_MAX, &n), 0);
    l_commit(&l, n); /* only the first ack was replicated */
    /* leadership moves: the new leader's sessions start empty */
    broker_sessions_close(&l.s);
    broker_sessions_config_t sc = {0};
    broker_sessions_init(&l.s, &sc, l.sm.next_message_id);
    l_publish(&l, "q", 1); /* a message published under the new leader */
    assert_int_equal(broker_sessions_open_session(&l.s, 9, 0, 0), 0);
    l_consume(&l, 9, "c", "q", 0, 0);
    assert_int_equal(l_dispatch(&l, 0), 3);
    assert_int_equal(l.dv[0].message->message_id, 2);
    assert_int_equal(l.dv[0].redelivered, 1); /* may have been delivered */
    assert_int_equal(l.dv[1].message->message_id, 3);
    assert_int_equal(l.dv[1].redelivered, 1);
    assert_int_equal(l.dv[2].message->message_id, 4);
    assert_int_equal(l.dv[2].redelivered, 0); /* new under this leader */
    assert_int_equal(l.dv[0].delivery_tag, 1);
    l_close(&l);
}

static void test_session_limits_and_errors(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    /* consume needs a session, a queue and a sane, unique tag */
    assert_int_equal(broker_sessions_consume(&l.s, &l.sm, 1, "c", 1, "q", 1, 0, 0),
                     SM_ENOTFOUND);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), SM_EEXISTS);
    assert_int_equal(broker_sessions_consume(&l.s, &l.sm, 1, "c", 1, "nope", 4, 0, 0),
                     SM_ENOTFOUND);
    assert_int_equal(broker_sessions_consume(&l.s, &l.sm, 1, "", 0, "q", 1, 0, 0),
                     SM_EINVALID);
    char big[SM_NAME_MAX + 1];
    memset(big, 't', sizeof big);
    assert_int_equal(broker_sessions_consume(&l.s, &l.sm, 1, big, sizeof big, "q",
                                             1, 0, 0),
                     SM_EINVALID);
    char tag[16];
    for (uint32_t i = 0; i < SESSION_CONSUMERS_MAX; i++) {
        snprintf(tag, sizeof tag, "t%u", i);
        l_consume(&l, 1, tag, "q", 0, 0);
    }
    assert_int_equal(broker_sessions_consume(&l.s, &l.sm, 1, "t0", 2, "q", 1, 0, 0),
                     SM_EEXISTS);
    assert_int_equal(broker_sessions_consume(&l.s, &l.sm, 1, "more", 4, "q", 1, 0, 0),
                     SM_ELIMIT);
    for (uint64_t id = 2; id <= SESSIONS_MAX; id++)
        assert_int_equal(broker_sessions_open_session(&l.s, id, 0, 0), 0);
    assert_int_equal(broker_sessions_open_session(&l.s, 100000, 0, 0), SM_ELIMIT);
    uint32_t n;
    assert_int_equal(broker_sessions_close_session(&l.s, 100000, l.cmds, 1, &n),
                     SM_ENOTFOUND);
    assert_int_equal(broker_sessions_close_session(&l.s, 1, l.cmds, 1, &n), 0);
    assert_int_equal(broker_sessions_open_session(&l.s, 100000, 0, 0), 0);
    l_close(&l);
}

static void test_inflight_max_per_session(void **state) {
    (void)state;
    t_leader_t l;
    l_init(&l, 0);
    l_queue(&l, "q", "", 0);
    l_publish(&l, "q", (int)SESSION_INFLIGHT_MAX + 10);
    assert_int_equal(broker_sessions_open_session(&l.s, 1, 0, 0), 0);
    l_consume(&l, 1, "a", "q", 0, 0);
    l_consume(&l, 1, "b", "q", 0, 0);
    uint32_t total = 0, got;
    while ((got = l_dispatch(&l, 0)) > 0)
        total += got;
    assert_int_equal(total, SESSION_INFLIGHT_MAX);
    assert_int_equal(broker_sessions_unacked(&l.s, 1), SESSION_INFLIGHT_MAX);
    uint32_t n;
    assert_int_equal(broker_sessions_ack(&l.s, 1, 0, 1, l.cmds, T_CMDS_MAX, &n), 0);
    assert_int_equal(n, SESSION_INFLIGHT_MAX);
    l_commit(&l, n);
    assert_int_equal(l_dispatch(&l, 0), 10);
    l_close(&l);
}


/* ---- random operations: dispatch never strands a message -------------------- */

#define T_RANDOM_OUT_MAX 256u

typedef struct t_random {
    t_leader_t l;
    uint64_t rng;
    uint64_t out_tag[T_RANDOM_OUT_MAX], out_id[T_RANDOM_OUT_MAX];
    uint32_t out_count;
    broker_session_cmd_t backlog[4 * T_RANDOM_OUT_MAX];
    uint32_t backlog_count;
} t_random_t;

static uint32_t r_next(t_random_t *r, uint32_t bound) {
    r->rng = r->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((r->rng >> 33) % bound);
}

/* Take the dispatch's deliveries as outstanding; none may be outstanding already. */
static void r_dispatch(t_random_t *r) {
    uint32_t n = l_dispatch(&r->l, 0);
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t id = r->l.dv[i].message->message_id;
        for (uint32_t k = 0; k < r->out_count; k++)
            assert_true(r->out_id[k] != id); /* never two live deliveries */
        assert_true(r->out_count < T_RANDOM_OUT_MAX);
        r->out_tag[r->out_count] = r->l.dv[i].delivery_tag;
        r->out_id[r->out_count++] = id;
    }
}

/* Ack, requeue or discard outstanding delivery k; the command waits in the
 * backlog (proposed, not yet committed) until r_commit. */
static void r_settle(t_random_t *r, uint32_t k, uint32_t how) {
    uint32_t n = 0;
    int rc = how == 0 ? broker_sessions_ack(&r->l.s, 1, r->out_tag[k], 0, r->l.cmds, T_CMDS_MAX, &n)
                      : broker_sessions_nack(&r->l.s, 1, r->out_tag[k], 0, how == 1,
                                             r->l.cmds, T_CMDS_MAX, &n);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 1);
    assert_true(r->backlog_count < 4 * T_RANDOM_OUT_MAX);
    r->backlog[r->backlog_count++] = r->l.cmds[0];
    r->out_tag[k] = r->out_tag[r->out_count - 1];
    r->out_id[k] = r->out_id[--r->out_count];
}

static void r_commit(t_random_t *r) {
    for (uint32_t i = 0; i < r->backlog_count; i++) {
        broker_sm_cmd_t c;
        broker_session_cmd_to_sm(&r->backlog[i], &c);
        assert_int_equal(l_apply(&r->l, &c, NULL), 0);
    }
    r->backlog_count = 0;
}

/* A fresh queue has no slots allocated: purging it (what a snapshot install
 * or a purge-except command does to an empty queue) must not do arithmetic on
 * a null pointer. Found by fuzz_sm under UBSan. */
static void test_purge_of_never_filled_queue(void **state) {
    (void)state;
    broker_queue_t *q = broker_queue_new("q", 1, "", 0, 0, 16);
    assert_non_null(q);
    const uint64_t keep[1] = {7};
    assert_int_equal(broker_queue_purge_except(q, keep, 1), 0);
    assert_int_equal(broker_queue_purge_except(q, NULL, 0), 0);
    assert_int_equal(broker_queue_purge(q), 0);
    assert_int_equal(q->count, 0);
    broker_queue_free(q);
}

static void test_random_ops_strand_nothing(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        t_random_t *r = calloc(1, sizeof *r);
        assert_non_null(r);
        r->rng = seed;
        l_init(&r->l, 0);
        l_queue(&r->l, "q", "", 0);
        assert_int_equal(broker_sessions_open_session(&r->l.s, 1, 0, 0), 0);
        l_consume(&r->l, 1, "a", "q", 5, 0);
        l_consume(&r->l, 1, "b", "q", 3, 0);
        for (int step = 0; step < 400; step++) {
            uint32_t op = r_next(r, 10);
            if (op < 2) l_publish(&r->l, "q", 1 + (int)r_next(r, 4));
            else if (op < 7 && r->out_count > 0)
                r_settle(r, r_next(r, r->out_count), op < 5 ? 0 : op - 5);
            else if (op == 7) r_commit(r);
            else r_dispatch(r);
        }
        /* Drain: everything still queued must reach a consumer. */
        for (int round = 0; round < 10000 && (r->out_count > 0 || l_count(&r->l, "q") > 0);
             round++) {
            r_commit(r);
            r_dispatch(r);
            while (r->out_count > 0) r_settle(r, 0, 0);
        }
        r_commit(r);
        assert_int_equal(l_count(&r->l, "q"), 0);
        l_close(&r->l);
        free(r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefetch_respected),
        cmocka_unit_test(test_manual_ack_settles),
        cmocka_unit_test(test_bad_acks_rejected),
        cmocka_unit_test(test_nack_requeue_redelivers),
        cmocka_unit_test(test_nack_without_requeue_dead_letters),
        cmocka_unit_test(test_session_expiry_redelivers),
        cmocka_unit_test(test_ack_timeout_redelivers),
        cmocka_unit_test(test_delivery_limit_to_dlq),
        cmocka_unit_test(test_auto_ack_settles_at_delivery),
        cmocka_unit_test(test_round_robin_and_exclusive_delivery),
        cmocka_unit_test(test_leader_change_makes_all_ready),
        cmocka_unit_test(test_session_limits_and_errors),
        cmocka_unit_test(test_inflight_max_per_session),
        cmocka_unit_test(test_random_ops_strand_nothing),
        cmocka_unit_test(test_purge_of_never_filled_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
