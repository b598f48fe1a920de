/* tests/test_sim_workload.c — simulated producers, consumers and the setup
 * client, driven through the real kernel against a small fake broker (one
 * in-memory queue speaking the wire client protocol), checked with the
 * checkers of sim/check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "broker/wire.h"
#include "sim/check.h"
#include "sim/history.h"
#include "sim/sim.h"
#include "sim/workload.h"

#define MS 1000000ull
#define S 1000000000ull
#define FAKE_BROKERS 3u
#define FAKE_MSGS_MAX 8192u
#define FAKE_HOSTS 8u
#define FAKE_TICK 1u

/* ---- the fake broker -------------------------------------------------------- */

enum { FM_READY = 0, FM_UNACKED = 1, FM_DONE = 2 };

typedef struct fake_msg {
    uint64_t message_id, producer_id, sequence, tag;
    uint32_t deliveries;
    uint32_t consumer;
    int state;
} fake_msg_t;

typedef struct fake_session {
    bool active;
    char tag[64];
    uint32_t prefetch, unacked;
    uint8_t ack_mode;
    uint64_t last_seen_ns, next_tag;
} fake_session_t;

typedef struct fake_world {
    uint32_t leader;
    bool dedup;
    uint32_t drop_confirms; /* confirms still to drop */
    uint32_t nack_publishes; /* publishes still to refuse (NACK_PUBLISH, not stored) */
    bool declared;
    uint64_t session_timeout_ns;
    fake_msg_t msgs[FAKE_MSGS_MAX];
    uint32_t count;
    fake_session_t sess[FAKE_HOSTS];
    uint64_t publishes, declares, not_leaders;
    uint64_t transient; /* publishes with persistent = 0 */
    bool unroutable;    /* confirm every publish as unroutable, store nothing */
} fake_world_t;

typedef struct fake_node {
    fake_world_t *w;
    const io_t *io;
} fake_node_t;

static fake_node_t fake_nodes[FAKE_BROKERS];

static void fake_send(fake_node_t *n, io_addr_t to, const wire_msg_t *m) {
    uint8_t buf[2048];
    int len = wire_encode(m, buf, sizeof(buf));
    assert_true(len > 0);
    (void)io_send(n->io, to, buf, (size_t)len);
}

static void fake_deliver(fake_node_t *n) {
    fake_world_t *w = n->w;
    for (uint32_t i = 0; i < w->count; i++) {
        fake_msg_t *m = &w->msgs[i];
        if (m->state != FM_READY) continue;
        uint32_t c = FAKE_BROKERS;
        for (; c < FAKE_HOSTS; c++)
            if (w->sess[c].active && w->sess[c].unacked < w->sess[c].prefetch) break;
        if (c == FAKE_HOSTS) return;
        fake_session_t *s = &w->sess[c];
        wire_msg_t d;
        memset(&d, 0, sizeof(d));
        d.type = WIRE_MSG_DELIVER;
        d.deliver.consumer_tag = wire_str(s->tag);
        d.deliver.delivery_tag = ++s->next_tag;
        d.deliver.message_id = m->message_id;
        d.deliver.producer_id = m->producer_id;
        d.deliver.sequence = m->sequence;
        d.deliver.redelivered = m->deliveries > 0;
        d.deliver.delivery_count = ++m->deliveries;
        d.deliver.routing_key = wire_str("q");
        m->tag = d.deliver.delivery_tag;
        m->consumer = c;
        if (s->ack_mode == WIRE_ACK_MANUAL) {
            m->state = FM_UNACKED;
            s->unacked++;
        } else {
            m->state = FM_DONE;
        }
        fake_send(n, c, &d);
    }
}

static void fake_publish(fake_node_t *n, io_addr_t from, const wire_publish_t *p) {
    fake_world_t *w = n->w;
    wire_msg_t a;
    memset(&a, 0, sizeof(a));
    a.type = WIRE_MSG_CONFIRM;
    a.confirm.request_id = p->request_id;
    a.confirm.producer_id = p->producer_id;
    a.confirm.sequence = p->sequence;
    w->publishes++;
    if (!p->persistent) w->transient++;
    if (w->unroutable) {
        a.confirm.unroutable = 1;
        fake_send(n, from, &a);
        return;
    }
    if (w->nack_publishes > 0) {
        w->nack_publishes--;
        wire_msg_t nk;
        memset(&nk, 0, sizeof(nk));
        nk.type = WIRE_MSG_NACK_PUBLISH;
        nk.nack_publish.request_id = p->request_id;
        nk.nack_publish.producer_id = p->producer_id;
        nk.nack_publish.sequence = p->sequence;
        nk.nack_publish.reason = WIRE_STATUS_RESOURCE_LIMIT;
        fake_send(n, from, &nk);
        return;
    }
    for (uint32_t i = 0; w->dedup && i < w->count; i++)
        if (w->msgs[i].producer_id == p->producer_id && w->msgs[i].sequence == p->sequence)
            a.confirm.duplicate = 1;
    if (!a.confirm.duplicate) {
        assert_true(w->count < FAKE_MSGS_MAX);
        fake_msg_t *m = &w->msgs[w->count++];
        memset(m, 0, sizeof(*m));
        m->message_id = p->message_id;
        m->producer_id = p->producer_id;
        m->sequence = p->sequence;
    }
    if (w->drop_confirms > 0) w->drop_confirms--;
    else fake_send(n, from, &a);
    fake_deliver(n);
}

static void fake_ack(fake_node_t *n, io_addr_t from, uint64_t tag) {
    fake_world_t *w = n->w;
    for (uint32_t i = 0; i < w->count; i++) {
        fake_msg_t *m = &w->msgs[i];
        if (m->state == FM_UNACKED && m->consumer == from && m->tag == tag) {
            m->state = FM_DONE;
            w->sess[from].unacked--;
        }
    }
    fake_deliver(n);
}

static void fake_expire(fake_node_t *n) {
    fake_world_t *w = n->w;
    uint64_t now = io_now_ns(n->io);
    for (uint32_t c = FAKE_BROKERS; c < FAKE_HOSTS; c++) {
        fake_session_t *s = &w->sess[c];
        if (!s->active || now - s->last_seen_ns <= w->session_timeout_ns) continue;
        s->active = false; /* the session is gone: requeue what it held */
        for (uint32_t i = 0; i < w->count; i++)
            if (w->msgs[i].state == FM_UNACKED && w->msgs[i].consumer == c)
                w->msgs[i].state = FM_READY;
        s->unacked = 0;
    }
    fake_deliver(n);
}

static void fake_client_msg(fake_node_t *n, io_addr_t from, const wire_msg_t *m) {
    fake_world_t *w = n->w;
    wire_msg_t a;
    memset(&a, 0, sizeof(a));
    if (from < FAKE_HOSTS) w->sess[from].last_seen_ns = io_now_ns(n->io);
    if (m->type == WIRE_MSG_HEARTBEAT && n->io->self == w->leader) {
        a.type = WIRE_MSG_HEARTBEAT;
        a.heartbeat = m->heartbeat;
        fake_send(n, from, &a);
        return;
    }
    uint64_t rid = m->type == WIRE_MSG_PUBLISH   ? m->publish.request_id
                   : m->type == WIRE_MSG_CONSUME ? m->consume.request_id
                   : m->type == WIRE_MSG_DECLARE_QUEUE ? m->declare_queue.request_id
                                                       : 0;
    if (n->io->self != w->leader) {
        w->not_leaders++;
        a.type = WIRE_MSG_NOT_LEADER;
        a.not_leader.request_id = rid;
        a.not_leader.leader_hint = w->leader;
        fake_send(n, from, &a);
        return;
    }
    a.type = WIRE_MSG_REPLY;
    a.reply.request_id = rid;
    switch (m->type) {
    case WIRE_MSG_DECLARE_QUEUE:
        w->declares++;
        w->declared = true;
        fake_send(n, from, &a);
        return;
    case WIRE_MSG_PUBLISH: fake_publish(n, from, &m->publish); return;
    case WIRE_MSG_CONSUME: {
        fake_session_t *s = &w->sess[from];
        /* A new CONSUME replaces the old session: requeue its deliveries. */
        for (uint32_t i = 0; i < w->count; i++)
            if (w->msgs[i].state == FM_UNACKED && w->msgs[i].consumer == from)
                w->msgs[i].state = FM_READY;
        s->unacked = 0;
        s->active = true;
        snprintf(s->tag, sizeof(s->tag), "%.*s", (int)m->consume.consumer_tag.len,
                 (const char *)m->consume.consumer_tag.ptr);
        s->prefetch = m->consume.prefetch;
        s->ack_mode = m->consume.ack_mode;
        fake_send(n, from, &a);
        fake_deliver(n);
        return;
    }
    case WIRE_MSG_ACK: fake_ack(n, from, m->ack.delivery_tag); return;
    default: return;
    }
}

static void *fake_boot(void *arg, const io_t *io) {
    fake_node_t *n = &fake_nodes[io->self];
    n->w = arg;
    n->io = io;
    (void)io_timer_set(io, io_now_ns(io) + 10 * MS, FAKE_TICK);
    return n;
}
static void fake_halt(void *node, int graceful) { (void)node; (void)graceful; }
static void fake_on_message(void *node, io_addr_t from, const uint8_t *b, size_t len) {
    wire_msg_t m;
    if (wire_decode(b, len, &m, NULL, 0) != 0) return;
    fake_client_msg(node, from, &m);
}
static void fake_on_timer(void *node, uint64_t token) {
    fake_node_t *n = node;
    (void)token;
    if (n->io->self == n->w->leader) fake_expire(n);
    (void)io_timer_set(n->io, io_now_ns(n->io) + 10 * MS, FAKE_TICK);
}
static void fake_on_disk(void *node, uint64_t token, int64_t result) {
    (void)node; (void)token; (void)result;
}
static const io_handler_t fake_handler = {fake_on_message, fake_on_timer, fake_on_disk};
static const io_program_t fake_program = {"fake-broker", fake_boot, fake_halt, &fake_handler};

/* ---- a world: 3 fake brokers + clients ------------------------------------- */

typedef struct world {
    sim_t *sim;
    history_t *h;
    fake_world_t fw;
    workload_client_t *clients[FAKE_HOSTS];
    uint32_t nclients;
} world_t;

static world_t *world_new(uint64_t seed) {
    world_t *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    sim_config_t cfg = {seed, FAKE_HOSTS};
    assert_int_equal(sim_new(&cfg, &w->sim), 0);
    assert_int_equal(history_new(0, &w->h), 0);
    w->fw.leader = 1;
    w->fw.dedup = true;
    w->fw.session_timeout_ns = 300 * MS;
    for (uint32_t b = 0; b < FAKE_BROKERS; b++) {
        assert_int_equal(sim_host_set_program(w->sim, b, &fake_program, &w->fw), 0);
        assert_int_equal(sim_host_start(w->sim, b), 0);
    }
    return w;
}

static workload_env_t world_env(world_t *w) {
    workload_env_t env = {w->sim, w->h, FAKE_BROKERS, w->nclients};
    return env;
}

static workload_client_t *add_producer(world_t *w, const workload_producer_config_t *cfg) {
    workload_env_t env = world_env(w);
    workload_client_t *c = NULL;
    char err[WORKLOAD_ERR_MAX];
    assert_int_equal(workload_producer_new(&env, cfg, &c, err, sizeof(err)), 0);
    assert_int_equal(workload_client_attach(c), 0);
    w->clients[w->nclients++] = c;
    return c;
}

static workload_client_t *add_consumer(world_t *w, const workload_consumer_config_t *cfg) {
    workload_env_t env = world_env(w);
    workload_client_t *c = NULL;
    char err[WORKLOAD_ERR_MAX];
    assert_int_equal(workload_consumer_new(&env, cfg, &c, err, sizeof(err)), 0);
    assert_int_equal(workload_client_attach(c), 0);
    w->clients[w->nclients++] = c;
    return c;
}

static void world_free(world_t *w) {
    sim_free(w->sim); /* halts the clients: they may still record */
    for (uint32_t i = 0; i < w->nclients; i++) workload_client_free(w->clients[i]);
    history_free(w->h);
    free(w);
}

static void check_run(world_t *w, check_result_t r[CHECK_ALL_COUNT]) {
    check_input_t in;
    memset(&in, 0, sizeof(in));
    in.history = w->h;
    assert_int_equal(check_all(&in, r), 0);
}

static workload_producer_config_t producer_cfg(uint64_t count) {
    workload_producer_config_t p;
    workload_producer_config_default(&p);
    p.queue = "q";
    p.count = count;
    p.interval_ns = 5 * MS;
    p.timeout_ns = 100 * MS;
    p.backoff_base_ns = 10 * MS;
    return p;
}

static workload_consumer_config_t consumer_cfg(void) {
    workload_consumer_config_t c;
    workload_consumer_config_default(&c);
    c.queue = "q";
    c.prefetch = 4;
    c.heartbeat_interval_ns = 50 * MS;
    c.session_timeout_ns = 400 * MS;
    c.crash_restart_ns = 500 * MS;
    return c;
}

static uint64_t count_records(const history_t *h, uint8_t kind, uint8_t op) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < history_count(h); i++) {
        const history_record_t *r = history_get(h, i);
        if (r->kind == kind && r->op == op) n++;
    }
    return n;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_no_faults_all_confirmed(void **state) {
    (void)state;
    uint64_t hashes[2], counts[2];
    for (int run = 0; run < 2; run++) {
        world_t *w = world_new(42);
        workload_setup_config_t sc;
        workload_setup_config_default(&sc);
        sc.queues[0].name = "q";
        sc.queues[0].durable = true;
        sc.queues_count = 1;
        workload_env_t env = world_env(w);
        workload_client_t *setup = NULL;
        assert_int_equal(workload_setup_new(&env, &sc, &setup, NULL, 0), 0);
        assert_int_equal(workload_client_attach(setup), 0);
        w->clients[w->nclients++] = setup;
        workload_producer_config_t pc = producer_cfg(50);
        pc.start_ns = 50 * MS;
        workload_client_t *p1 = add_producer(w, &pc);
        workload_client_t *p2 = add_producer(w, &pc);
        workload_consumer_config_t cc = consumer_cfg();
        workload_client_t *c = add_consumer(w, &cc);
        sim_run(w->sim, 3 * S, 0);
        assert_true(workload_client_done(setup));
        assert_true(w->fw.declared);
        assert_true(workload_client_done(p1));
        assert_true(workload_client_done(p2));
        workload_stats_t s1, s2, cs;
        workload_client_stats(p1, &s1);
        workload_client_stats(p2, &s2);
        workload_client_stats(c, &cs);
        assert_int_equal(s1.published, 50);
        assert_int_equal(s1.confirmed, 50);
        assert_int_equal(s2.confirmed, 50);
        assert_int_equal(s1.failed + s1.unknown + s1.retries, 0);
        assert_true(s1.redirects + s2.redirects >= 1); /* one starts at a follower */
        assert_int_equal(cs.processed, 100);
        assert_int_equal(cs.acked, 100);
        assert_int_equal(count_records(w->h, HISTORY_OK, HISTORY_OP_PUBLISH), 100);
        check_result_t r[CHECK_ALL_COUNT];
        check_run(w, r);
        for (unsigned i = 0; i < CHECK_ALL_COUNT; i++) assert_true(r[i].passed);
        assert_true(check_figure(&r[0], "confirmed") == 100);
        assert_true(check_figure(&r[3], "streams") == 2);
        assert_true(check_figure(&r[3], "checked") == 100);
        /* Message ids: client index << 40 | counter. */
        assert_int_equal(history_get(w->h, 0)->op, HISTORY_OP_DECLARE);
        bool saw = false;
        for (uint64_t i = 0; i < history_count(w->h); i++) {
            const history_record_t *rec = history_get(w->h, i);
            if (rec->op == HISTORY_OP_PUBLISH && rec->message_id == ((2ull << 40) | 50)) saw = true;
        }
        assert_true(saw);
        hashes[run] = sim_trace_hash(w->sim);
        counts[run] = history_count(w->h);
        world_free(w);
    }
    assert_int_equal(hashes[0], hashes[1]);
    assert_int_equal(counts[0], counts[1]);
}

/* The fake drops the first confirm: the producer times out and retries. */
static void run_dropped_confirm(bool idempotent, check_result_t r[CHECK_ALL_COUNT],
                                workload_stats_t *ps, uint64_t *stored) {
    world_t *w = world_new(7);
    w->fw.drop_confirms = 1;
    workload_producer_config_t pc = producer_cfg(5);
    pc.idempotent = idempotent;
    workload_client_t *p = add_producer(w, &pc);
    workload_consumer_config_t cc = consumer_cfg();
    (void)add_consumer(w, &cc);
    sim_run(w->sim, 2 * S, 0);
    assert_true(workload_client_done(p));
    workload_client_stats(p, ps);
    *stored = w->fw.count;
    check_run(w, r);
    world_free(w);
}

static void test_dropped_confirm_duplicate_unless_idempotent(void **state) {
    (void)state;
    check_result_t r[CHECK_ALL_COUNT];
    workload_stats_t ps;
    uint64_t stored = 0;
    run_dropped_confirm(false, r, &ps, &stored);
    assert_int_equal(ps.confirmed, 5);
    assert_int_equal(ps.retries, 1);
    assert_int_equal(ps.duplicate_confirms, 0);
    assert_int_equal(stored, 6); /* the retry had a new sequence */
    assert_true(r[0].passed);    /* nothing lost */
    assert_false(r[1].passed);   /* message 1 processed twice */
    assert_true(check_figure(&r[1], "duplicate_processings") == 1);
    assert_true(check_figure(&r[1], "duplicate_enqueues") == 1);
    assert_int_equal(r[1].violations_count, 1);
    assert_int_equal(r[1].violations[0].message_id, (0ull << 40) | 1);

    run_dropped_confirm(true, r, &ps, &stored);
    assert_int_equal(ps.confirmed, 5);
    assert_int_equal(ps.retries, 1);
    assert_int_equal(ps.duplicate_confirms, 1); /* dedup caught the resend */
    assert_int_equal(stored, 5);
    assert_true(r[0].passed);
    assert_true(r[1].passed);
    assert_true(check_figure(&r[1], "duplicate_enqueues") == 0);
}

static void test_unknown_outcome_after_retries(void **state) {
    (void)state;
    world_t *w = world_new(9);
    w->fw.drop_confirms = 1000; /* never confirms */
    workload_producer_config_t pc = producer_cfg(3);
    pc.retries = 2;
    pc.window = 3;
    workload_client_t *p = add_producer(w, &pc);
    sim_run(w->sim, 5 * S, 0);
    assert_true(workload_client_done(p));
    workload_stats_t ps;
    workload_client_stats(p, &ps);
    assert_int_equal(ps.unknown, 3);
    assert_int_equal(ps.retries, 6);
    assert_int_equal(count_records(w->h, HISTORY_INFO, HISTORY_OP_PUBLISH), 3);
    assert_int_equal(count_records(w->h, HISTORY_INVOKE, HISTORY_OP_PUBLISH), 3);
    world_free(w);
}

static uint64_t count_flagged(const history_t *h, uint8_t kind, uint8_t flag) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < history_count(h); i++) {
        const history_record_t *r = history_get(h, i);
        if (r->op == HISTORY_OP_PUBLISH && r->kind == kind && (r->flags & flag)) n++;
    }
    return n;
}

/* A confirm flagged unroutable (no queue took it) is recorded so. The
 * producer's queue had been declared: a confirmed publish that found no
 * queue is loss (the durable queue itself is gone), shown apart as
 * lost_unroutable; without the flag the same loss is plain. */
static void test_unroutable_confirm_is_counted(void **state) {
    (void)state;
    for (int flag = 0; flag < 2; flag++) {
        world_t *w = world_new(23);
        w->fw.unroutable = flag == 1;
        workload_producer_config_t pc = producer_cfg(5);
        workload_client_t *p = add_producer(w, &pc);
        sim_run(w->sim, 1 * S, 0);
        workload_stats_t ps;
        workload_client_stats(p, &ps);
        assert_int_equal(ps.confirmed, 5);
        check_result_t r[CHECK_ALL_COUNT];
        check_run(w, r);
        if (flag) {
            assert_int_equal(count_flagged(w->h, HISTORY_OK, HISTORY_FLAG_UNROUTABLE), 5);
            assert_true(check_figure(&r[CHECK_NO_LOSS], "lost_unroutable") == 5);
        } else {
            assert_int_equal(count_flagged(w->h, HISTORY_OK, HISTORY_FLAG_UNROUTABLE), 0);
            assert_true(check_figure(&r[CHECK_NO_LOSS], "lost_unroutable") == 0);
        }
        assert_false(r[CHECK_NO_LOSS].passed);
        assert_true(check_figure(&r[CHECK_NO_LOSS], "lost") == 5);
        world_free(w);
    }
}

/* confirms = false: each publish is sent once, never waited for and never
 * retried (the broker confirms nothing here); it ends unknown, flagged
 * unconfirmed, at once, so the window never throttles. persistent = false
 * reaches the broker. The checker counts them apart and proves no loss
 * from them; the ones that never reached a consumer are counted. */
static void test_fire_and_forget_never_waits(void **state) {
    (void)state;
    world_t *w = world_new(21);
    w->fw.drop_confirms = 1000; /* never confirms */
    workload_producer_config_t pc = producer_cfg(20);
    pc.confirms = false;
    pc.persistent = false;
    pc.window = 1;
    workload_client_t *p = add_producer(w, &pc);
    workload_consumer_config_t cc = consumer_cfg();
    (void)add_consumer(w, &cc);
    sim_run(w->sim, 1 * S, 0);
    assert_true(workload_client_done(p));
    workload_stats_t ps;
    workload_client_stats(p, &ps);
    assert_int_equal(ps.published, 20);
    assert_int_equal(ps.unknown, 20);
    assert_int_equal(ps.confirmed + ps.retries + ps.throttled, 0);
    /* One send each; the first went to a follower (the producer starts at
     * broker client_index % brokers), which refused it: nobody resends a
     * fire-and-forget publish, so it is gone. */
    assert_int_equal(w->fw.not_leaders, 1);
    assert_int_equal(w->fw.publishes, 19);
    assert_int_equal(w->fw.transient, 19);
    assert_int_equal(count_flagged(w->h, HISTORY_INFO, HISTORY_FLAG_UNCONFIRMED), 20);
    check_result_t r[CHECK_ALL_COUNT];
    check_run(w, r);
    assert_true(r[CHECK_NO_LOSS].passed); /* nothing was promised */
    assert_true(check_figure(&r[CHECK_NO_LOSS], "unconfirmed") == 20);
    print_message("unconfirmed_missing %.0f recovered %.0f\n", check_figure(&r[CHECK_NO_LOSS], "unconfirmed_missing"), check_figure(&r[CHECK_NO_LOSS], "recovered"));
    assert_true(check_figure(&r[CHECK_NO_LOSS], "unconfirmed_missing") == 1);
    assert_true(check_figure(&r[CHECK_NO_LOSS], "recovered") == 19);
    world_free(w);

    /* The default: confirmed publishes, persistent, flagged nothing. */
    w = world_new(21);
    pc = producer_cfg(5);
    p = add_producer(w, &pc);
    sim_run(w->sim, 1 * S, 0);
    workload_client_stats(p, &ps);
    assert_int_equal(ps.confirmed, 5);
    assert_int_equal(w->fw.transient, 0);
    assert_int_equal(count_flagged(w->h, HISTORY_INFO, HISTORY_FLAG_UNCONFIRMED), 0);
    world_free(w);
}

/* The run ends with publishes in flight: settling records each as unknown
 * (at end), so every publish has exactly one outcome and the counts add up;
 * a second settle changes nothing. */
static void test_settle_counts_in_flight_as_unknown(void **state) {
    (void)state;
    world_t *w = world_new(11);
    w->fw.drop_confirms = 1000; /* never confirms */
    workload_producer_config_t pc = producer_cfg(0);
    pc.window = 4;
    pc.retries = 20;
    workload_client_t *p = add_producer(w, &pc);
    sim_run(w->sim, 300 * MS, 0);
    assert_false(workload_client_done(p));
    workload_client_settle(p);
    workload_client_settle(p);
    assert_true(workload_client_done(p));
    workload_stats_t ps;
    workload_client_stats(p, &ps);
    assert_int_equal(ps.published, 4);
    assert_int_equal(ps.unknown, 4);
    assert_int_equal(ps.unknown_at_end, 4);
    assert_int_equal(ps.published, ps.confirmed + ps.publish_nacked + ps.failed + ps.unknown);
    assert_int_equal(count_flagged(w->h, HISTORY_INFO, HISTORY_FLAG_AT_END), 4);
    check_result_t r[CHECK_ALL_COUNT];
    check_run(w, r);
    assert_true(check_figure(&r[CHECK_NO_LOSS], "unfinished") == 0);
    assert_true(check_figure(&r[CHECK_NO_LOSS], "unknown_at_end") == 4);
    world_free(w); /* halting records nothing more: nothing is in flight */
}

/* A broker's NACK (never stored) is "nacked", apart from failed/unknown. */
static void test_nack_is_its_own_outcome(void **state) {
    (void)state;
    world_t *w = world_new(12);
    w->fw.nack_publishes = 2;
    workload_producer_config_t pc = producer_cfg(5);
    workload_client_t *p = add_producer(w, &pc);
    sim_run(w->sim, 1 * S, 0);
    assert_true(workload_client_done(p));
    workload_stats_t ps;
    workload_client_stats(p, &ps);
    assert_int_equal(ps.publish_nacked, 2);
    assert_int_equal(ps.confirmed, 3);
    assert_int_equal(ps.published, ps.confirmed + ps.publish_nacked + ps.failed + ps.unknown);
    assert_int_equal(count_flagged(w->h, HISTORY_FAIL, HISTORY_FLAG_NACKED), 2);
    check_result_t r[CHECK_ALL_COUNT];
    check_run(w, r);
    assert_true(check_figure(&r[CHECK_NO_LOSS], "nacked") == 2);
    assert_true(check_figure(&r[CHECK_NO_LOSS], "failed") == 0);
    world_free(w);
}

static double gap_stats(world_t *w, double *cv) {
    uint64_t prev = 0, n = 0;
    double sum = 0, sum2 = 0;
    for (uint64_t i = 0; i < history_count(w->h); i++) {
        const history_record_t *r = history_get(w->h, i);
        if (r->op != HISTORY_OP_PUBLISH || r->kind != HISTORY_INVOKE) continue;
        if (n > 0 || prev != 0) {
            double g = (double)(r->time_ns - prev);
            sum += g;
            sum2 += g * g;
        }
        prev = r->time_ns;
        n++;
    }
    double k = (double)(n - 1), mean = sum / k;
    *cv = sqrt(sum2 / k - mean * mean) / mean;
    return mean;
}

static void test_poisson_rate(void **state) {
    (void)state;
    world_t *w = world_new(1234);
    workload_producer_config_t pc = producer_cfg(4000);
    pc.rate = WORKLOAD_RATE_POISSON;
    pc.interval_ns = 1 * MS;
    pc.window = WORKLOAD_WINDOW_MAX;
    (void)add_producer(w, &pc);
    sim_run(w->sim, 60 * S, 0);
    double cv = 0, mean = gap_stats(w, &cv);
    /* 4000 exponential gaps: the mean's standard error is ~1.6%. */
    assert_true(fabs(mean - 1e6) < 0.06e6);
    assert_true(cv > 0.9 && cv < 1.1);
    world_free(w);

    w = world_new(1234);
    pc.rate = WORKLOAD_RATE_CONSTANT;
    pc.count = 200;
    (void)add_producer(w, &pc);
    sim_run(w->sim, 60 * S, 0);
    mean = gap_stats(w, &cv);
    assert_true(mean == 1e6);
    assert_true(cv < 1e-9);
    world_free(w);
}

static void run_crashing_consumer(bool idempotent, check_result_t r[CHECK_ALL_COUNT],
                                  workload_stats_t *cs) {
    world_t *w = world_new(99);
    workload_producer_config_t pc = producer_cfg(60);
    (void)add_producer(w, &pc);
    workload_consumer_config_t cc = consumer_cfg();
    cc.crash_probability = 0.2;
    cc.idempotent = idempotent;
    workload_client_t *c = add_consumer(w, &cc);
    sim_run(w->sim, 20 * S, 0);
    workload_client_stats(c, cs);
    check_run(w, r);
    world_free(w);
}

static void test_consumer_crash_redelivers(void **state) {
    (void)state;
    check_result_t r[CHECK_ALL_COUNT];
    workload_stats_t cs;
    run_crashing_consumer(false, r, &cs);
    assert_true(cs.crashes > 0);
    assert_true(r[0].passed); /* redelivery: nothing lost */
    assert_true(check_figure(&r[0], "confirmed") == 60);
    assert_true(check_figure(&r[1], "redeliveries") > 0);
    assert_true(check_figure(&r[1], "duplicate_enqueues") == 0);
    /* Each crash right after processing means that message is handled again. */
    assert_false(r[1].passed);
    /* Exactly one extra processing per crash: the message it had handled. */
    assert_true(check_figure(&r[1], "duplicate_processings") == (double)cs.crashes);

    run_crashing_consumer(true, r, &cs);
    assert_true(cs.crashes > 0);
    assert_int_equal(cs.skipped, cs.crashes); /* the redelivered ones were recognised */
    assert_int_equal(cs.processed, 60);
    assert_true(r[0].passed);
    assert_true(r[1].passed);
    assert_true(check_figure(&r[1], "redeliveries") > 0);
}

static void stop_cb(sim_t *sim, void *arg) {
    (void)sim;
    workload_producer_stop(arg);
}

static void test_producer_stop(void **state) {
    (void)state;
    world_t *w = world_new(5);
    workload_producer_config_t pc = producer_cfg(0); /* unlimited */
    workload_client_t *p = add_producer(w, &pc);
    assert_int_equal(sim_call_at(w->sim, 100 * MS, stop_cb, p), 0);
    sim_run(w->sim, 1 * S, 0);
    assert_true(workload_client_done(p));
    workload_stats_t ps;
    workload_client_stats(p, &ps);
    assert_true(ps.published >= 15 && ps.published <= 21);
    assert_int_equal(ps.confirmed, ps.published);
    for (uint64_t i = 0; i < history_count(w->h); i++) {
        const history_record_t *r = history_get(w->h, i);
        if (r->kind == HISTORY_INVOKE) assert_true(r->time_ns <= 100 * MS);
    }
    world_free(w);
}

/* The leader moves from broker 1 to broker 2: sessions and unacked
 * deliveries at the old leader are gone, clients must find the new one. */
static void leader_change_cb(sim_t *sim, void *arg) {
    (void)sim;
    fake_world_t *fw = arg;
    fw->leader = 2;
    for (uint32_t c = 0; c < FAKE_HOSTS; c++) {
        fw->sess[c].active = false;
        fw->sess[c].unacked = 0;
    }
    for (uint32_t i = 0; i < fw->count; i++)
        if (fw->msgs[i].state == FM_UNACKED) fw->msgs[i].state = FM_READY;
}

static void test_leader_change(void **state) {
    (void)state;
    world_t *w = world_new(11);
    workload_producer_config_t pc = producer_cfg(100);
    workload_client_t *p = add_producer(w, &pc);
    workload_consumer_config_t cc = consumer_cfg();
    cc.processing.base_ns = 3 * MS;
    workload_client_t *c = add_consumer(w, &cc);
    assert_int_equal(sim_call_at(w->sim, 300 * MS, leader_change_cb, &w->fw), 0);
    sim_run(w->sim, 5 * S, 0);
    workload_stats_t ps, cs;
    workload_client_stats(p, &ps);
    workload_client_stats(c, &cs);
    assert_true(workload_client_done(p));
    assert_int_equal(ps.confirmed, 100);
    assert_true(cs.sessions_lost >= 1);
    assert_true(cs.subscribes >= 2);
    check_result_t r[CHECK_ALL_COUNT];
    check_run(w, r);
    assert_true(r[0].passed);
    assert_true(check_figure(&r[0], "processed_confirmed") == 100);
    assert_true(r[2].passed);
    /* Every delivery after the change came from the new leader. */
    for (uint64_t i = 0; i < history_count(w->h); i++) {
        const history_record_t *rec = history_get(w->h, i);
        if (rec->op == HISTORY_OP_DELIVER && rec->time_ns > 400 * MS)
            assert_int_equal(rec->node, 2);
    }
    world_free(w);
}

/* A window of one: the publish that fills it arms no tick, yet the next
 * publish still waits for its rate slot (never two within interval_ns). A
 * consumer with zero processing time processes each delivery at the instant
 * it arrives. */
static void test_window_bound_rate_and_instant_processing(void **state) {
    (void)state;
    world_t *w = world_new(11);
    workload_producer_config_t pc = producer_cfg(20);
    pc.window = 1;
    pc.interval_ns = 50 * MS; /* far longer than a confirm round trip */
    workload_client_t *p = add_producer(w, &pc);
    workload_consumer_config_t cc = consumer_cfg();
    cc.processing.kind = SIM_DIST_CONST;
    cc.processing.base_ns = 0;
    workload_client_t *c = add_consumer(w, &cc);
    sim_run(w->sim, 3 * S, 0);
    assert_true(workload_client_done(p));
    workload_stats_t ps, cs;
    workload_client_stats(p, &ps);
    workload_client_stats(c, &cs);
    assert_int_equal(ps.confirmed, 20);
    assert_int_equal(cs.processed, 20);
    uint64_t prev_ns = 0, invokes = 0, last_deliver_ns = UINT64_MAX;
    for (uint64_t i = 0; i < history_count(w->h); i++) {
        const history_record_t *r = history_get(w->h, i);
        if (r->op == HISTORY_OP_PUBLISH && r->kind == HISTORY_INVOKE) {
            if (invokes++ > 0) assert_true(r->time_ns - prev_ns >= pc.interval_ns);
            prev_ns = r->time_ns;
        }
        if (r->op == HISTORY_OP_DELIVER) last_deliver_ns = r->time_ns;
        if (r->op == HISTORY_OP_PROCESS) assert_int_equal(r->time_ns, last_deliver_ns);
    }
    assert_int_equal(invokes, 20);
    assert_int_equal(ps.throttled, 0); /* every confirm came before the next slot */
    world_free(w);
}

static void test_bad_configs(void **state) {
    (void)state;
    char err[WORKLOAD_ERR_MAX];
    workload_producer_config_t p = producer_cfg(1);
    assert_int_equal(workload_producer_config_check(&p, err, sizeof(err)), 0);
    p.window = 0;
    assert_int_equal(workload_producer_config_check(&p, err, sizeof(err)), IO_EINVAL);
    assert_non_null(strstr(err, "window"));
    p = producer_cfg(1);
    p.window = WORKLOAD_WINDOW_MAX + 1;
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);
    p = producer_cfg(1);
    p.backoff_multiplier = NAN;
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);
    p.backoff_multiplier = 0.5;
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);
    p = producer_cfg(1);
    p.queue = "";
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);
    p = producer_cfg(1);
    p.interval_ns = 0;
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);
    p = producer_cfg(1);
    p.timeout_ns = 0;
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);
    p = producer_cfg(1);
    p.backoff_max_ns = p.backoff_base_ns - 1;
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);
    p = producer_cfg(1);
    p.body_size_bytes = WORKLOAD_BODY_SIZE_MAX + 1;
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);
    p = producer_cfg(1);
    p.rate = (workload_rate_t)7;
    assert_int_equal(workload_producer_config_check(&p, NULL, 0), IO_EINVAL);

    workload_consumer_config_t c = consumer_cfg();
    assert_int_equal(workload_consumer_config_check(&c, NULL, 0), 0);
    c.crash_probability = -0.1;
    assert_int_equal(workload_consumer_config_check(&c, err, sizeof(err)), IO_EINVAL);
    assert_non_null(strstr(err, "crash_probability"));
    c.crash_probability = NAN;
    assert_int_equal(workload_consumer_config_check(&c, NULL, 0), IO_EINVAL);
    c.crash_probability = 1.01;
    assert_int_equal(workload_consumer_config_check(&c, NULL, 0), IO_EINVAL);
    c = consumer_cfg();
    c.prefetch = 0;
    assert_int_equal(workload_consumer_config_check(&c, NULL, 0), IO_EINVAL);
    c = consumer_cfg();
    c.processing.kind = (sim_dist_kind_t)9;
    assert_int_equal(workload_consumer_config_check(&c, NULL, 0), IO_EINVAL);
    c = consumer_cfg();
    c.ack_mode = (wire_ack_mode_t)0;
    assert_int_equal(workload_consumer_config_check(&c, NULL, 0), IO_EINVAL);
    c = consumer_cfg();
    c.session_timeout_ns = c.heartbeat_interval_ns;
    assert_int_equal(workload_consumer_config_check(&c, NULL, 0), IO_EINVAL);

    workload_setup_config_t s;
    workload_setup_config_default(&s);
    assert_int_equal(workload_setup_config_check(&s, NULL, 0), IO_EINVAL); /* no queues */
    s.queues_count = 1;
    s.queues[0].name = NULL;
    assert_int_equal(workload_setup_config_check(&s, NULL, 0), IO_EINVAL);

    /* Bad environments. */
    world_t *w = world_new(1);
    workload_client_t *cl = NULL;
    p = producer_cfg(1);
    workload_env_t env = {w->sim, w->h, 0, 0};
    assert_int_equal(workload_producer_new(&env, &p, &cl, NULL, 0), IO_EINVAL);
    env.brokers_count = FAKE_BROKERS;
    env.client_index = FAKE_HOSTS - FAKE_BROKERS; /* no such host */
    assert_int_equal(workload_producer_new(&env, &p, &cl, NULL, 0), IO_EINVAL);
    env.sim = NULL;
    env.client_index = 0;
    assert_int_equal(workload_producer_new(&env, &p, &cl, NULL, 0), IO_EINVAL);
    assert_null(cl);
    world_free(w);
}

/* Corrupt bytes and messages from non-brokers are counted and ignored. */
static void test_garbage_ignored(void **state) {
    (void)state;
    world_t *w = world_new(3);
    workload_producer_config_t pc = producer_cfg(3);
    workload_client_t *p = add_producer(w, &pc);
    sim_run(w->sim, 1 * MS, 0);
    const io_t *io = sim_host_io(w->sim, 0);
    uint8_t junk[16] = {0x43, 0x4c, 1, 32, 4, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(io_send(io, workload_client_host(p), junk, sizeof(junk)), 0);
    sim_run(w->sim, 1 * S, 0);
    workload_stats_t ps;
    workload_client_stats(p, &ps);
    assert_int_equal(ps.bad_messages, 1);
    assert_int_equal(ps.confirmed, 3);
    world_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_faults_all_confirmed),
        cmocka_unit_test(test_dropped_confirm_duplicate_unless_idempotent),
        cmocka_unit_test(test_unknown_outcome_after_retries),
        cmocka_unit_test(test_settle_counts_in_flight_as_unknown),
        cmocka_unit_test(test_nack_is_its_own_outcome),
        cmocka_unit_test(test_window_bound_rate_and_instant_processing),
        cmocka_unit_test(test_poisson_rate),
        cmocka_unit_test(test_consumer_crash_redelivers),
        cmocka_unit_test(test_producer_stop),
        cmocka_unit_test(test_leader_change),
        cmocka_unit_test(test_fire_and_forget_never_waits),
        cmocka_unit_test(test_unroutable_confirm_is_counted),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_garbage_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
