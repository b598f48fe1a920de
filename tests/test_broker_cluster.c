/*
 * tests/test_broker_cluster.c — three real broker nodes on the simulation
 * kernel under hand-written fault schedules. Each strategy test shows what
 * the strategy loses (or keeps) because of how it works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/node.h"
#include "broker/raft.h"
#include "broker/wire.h"
#include "sim/sim.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)
#define BROKERS 3u
#define CLIENT 3u /* host index of the scripted client */
#define RECORDS_MAX 4096u

/* ---- a scripted client: sends what the test says, records what comes back */

typedef struct tclient {
    io_t io;
    uint64_t confirms[RECORDS_MAX];
    uint32_t confirm_count;
    uint64_t replies_ok, replies_bad, not_leader;
    uint64_t delivered[RECORDS_MAX];
    uint32_t deliver_count;
    uint16_t last_status;
    uint64_t last_count;
    char last_props[64];
    uint32_t last_tag_len, last_message_count;
    uint64_t last_epoch; /* session epoch of the last HEARTBEAT answer */
} tclient_t;

static void *tclient_boot(void *arg, const io_t *io) {
    tclient_t *c = arg;
    memset(c, 0, sizeof *c);
    c->io = *io;
    return c;
}
static void tclient_halt(void *node, int graceful) { (void)node; (void)graceful; }
static void tclient_on_message(void *node, io_addr_t from, const uint8_t *b, size_t len) {
    tclient_t *c = node;
    (void)from;
    wire_msg_t m;
    if (wire_decode(b, len, &m, NULL, 0) != 0) return;
    if (m.type == WIRE_MSG_CONFIRM && c->confirm_count < RECORDS_MAX)
        c->confirms[c->confirm_count++] = m.confirm.request_id;
    if (m.type == WIRE_MSG_REPLY) {
        if (m.reply.status == WIRE_STATUS_OK) c->replies_ok++;
        else c->replies_bad++;
        c->last_status = m.reply.status;
        c->last_count = m.reply.count;
    }
    if (m.type == WIRE_MSG_DELIVER) {
        const uint32_t n = m.deliver.properties.len < 63 ? m.deliver.properties.len : 63;
        memcpy(c->last_props, m.deliver.properties.ptr, n);
        c->last_props[n] = '\0';
        c->last_tag_len = m.deliver.consumer_tag.len;
        c->last_message_count = m.deliver.message_count;
    }
    if (m.type == WIRE_MSG_NOT_LEADER) c->not_leader++;
    if (m.type == WIRE_MSG_HEARTBEAT) c->last_epoch = m.heartbeat.session_id;
    if (m.type == WIRE_MSG_DELIVER && c->deliver_count < RECORDS_MAX)
        c->delivered[c->deliver_count++] = m.deliver.message_id;
}
static void tclient_on_timer(void *node, uint64_t token) { (void)node; (void)token; }
static void tclient_on_disk(void *node, uint64_t token, int64_t r) {
    (void)node; (void)token; (void)r;
}
static const io_handler_t tclient_handler = {tclient_on_message, tclient_on_timer, tclient_on_disk};
static const io_program_t tclient_program = {"tclient", tclient_boot, tclient_halt, &tclient_handler};

static void tclient_send(tclient_t *c, io_addr_t to, const wire_msg_t *m) {
    uint8_t buf[4096];
    const int len = wire_encode(m, buf, sizeof buf);
    assert_true(len > 0);
    assert_int_equal(io_send(&c->io, to, buf, (size_t)len), 0);
}

static void tclient_declare(tclient_t *c, io_addr_t to, const char *queue) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_DECLARE_QUEUE;
    m.declare_queue.request_id = 1;
    m.declare_queue.name = wire_str(queue);
    m.declare_queue.durable = 1;
    tclient_send(c, to, &m);
}

static void tclient_publish(tclient_t *c, io_addr_t to, uint64_t request_id,
                            uint64_t producer, uint64_t seq, uint64_t message_id) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_PUBLISH;
    m.publish.request_id = request_id;
    m.publish.producer_id = producer;
    m.publish.sequence = seq;
    m.publish.message_id = message_id;
    m.publish.routing_key = wire_str("q");
    m.publish.persistent = 1;
    m.publish.body = wire_str("hello");
    tclient_send(c, to, &m);
}

static void tclient_heartbeat(tclient_t *c, io_addr_t to, uint64_t epoch) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_HEARTBEAT;
    m.heartbeat.session_id = epoch;
    tclient_send(c, to, &m);
}

static bool tclient_confirmed(const tclient_t *c, uint64_t request_id) {
    for (uint32_t i = 0; i < c->confirm_count; i++)
        if (c->confirms[i] == request_id) return true;
    return false;
}

/* ---- cluster harness ---------------------------------------------------------- */

typedef struct cluster {
    sim_t *sim;
    broker_config_t cfg;
    tclient_t client;
} cluster_t;

static void cluster_start(cluster_t *cl, uint64_t seed, const char *const *settings) {
    memset(cl, 0, sizeof *cl);
    broker_config_default(&cl->cfg);
    char err[256];
    for (uint32_t i = 0; settings && settings[i]; i += 2)
        assert_int_equal(broker_config_set(&cl->cfg, settings[i], settings[i + 1], err, sizeof err), 0);
    sim_config_t sc = {.seed = seed, .hosts_count = BROKERS + 1};
    assert_int_equal(sim_new(&sc, &cl->sim), 0);
    for (uint32_t h = 0; h < BROKERS; h++) {
        assert_int_equal(sim_host_set_program(cl->sim, h, &broker_node_program, &cl->cfg), 0);
        assert_int_equal(sim_host_start(cl->sim, h), 0);
    }
    assert_int_equal(sim_host_set_program(cl->sim, CLIENT, &tclient_program, &cl->client), 0);
    assert_int_equal(sim_host_start(cl->sim, CLIENT), 0);
}

static void cluster_run(cluster_t *cl, uint64_t duration_ns) {
    (void)sim_run(cl->sim, sim_now_ns(cl->sim) + duration_ns, 0);
}

/* The leader with the highest term among running nodes, or -1. */
static int cluster_leader(const cluster_t *cl) {
    int best = -1;
    uint64_t best_term = 0;
    for (uint32_t h = 0; h < BROKERS; h++) {
        const broker_node_t *n = sim_host_node(cl->sim, h);
        if (n == NULL || sim_host_state(cl->sim, h) != SIM_HOST_UP) continue;
        broker_node_info_t info;
        broker_node_info(n, &info);
        if (info.role == RAFT_LEADER && info.term >= best_term) {
            best = (int)h;
            best_term = info.term;
        }
    }
    return best;
}

static int cluster_wait_leader(cluster_t *cl) {
    for (int i = 0; i < 100; i++) {
        const int l = cluster_leader(cl);
        if (l >= 0) return l;
        cluster_run(cl, 100 * MS);
    }
    return -1;
}

static void cluster_isolate(cluster_t *cl, uint32_t h, bool blocked) {
    for (uint32_t o = 0; o < BROKERS; o++) {
        if (o == h) continue;
        assert_int_equal(sim_link_block(cl->sim, h, o, blocked), 0);
        assert_int_equal(sim_link_block(cl->sim, o, h, blocked), 0);
    }
}

static int64_t cluster_depth(const cluster_t *cl, uint32_t h) {
    const broker_node_t *n = sim_host_node(cl->sim, h);
    return n ? broker_node_queue_depth(n, "q") : -1;
}

/* Declare "q" at the leader and wait for the reply. */
static int cluster_setup_queue(cluster_t *cl) {
    const int leader = cluster_wait_leader(cl);
    assert_true(leader >= 0);
    tclient_declare(&cl->client, (io_addr_t)leader, "q");
    cluster_run(cl, 500 * MS);
    assert_int_equal(cl->client.replies_ok, 1);
    return leader;
}

/* Wait until every up node applied the leader's commit index. */
static void cluster_settle(cluster_t *cl) {
    for (int i = 0; i < 100; i++) {
        cluster_run(cl, 100 * MS);
        const int l = cluster_leader(cl);
        if (l < 0) continue;
        broker_node_info_t li;
        broker_node_info(sim_host_node(cl->sim, (uint32_t)l), &li);
        bool all = true;
        for (uint32_t h = 0; h < BROKERS; h++) {
            const broker_node_t *n = sim_host_node(cl->sim, h);
            if (n == NULL) { all = false; continue; }
            broker_node_info_t info;
            broker_node_info(n, &info);
            if (info.applied_index != li.applied_index) all = false;
        }
        if (all) return;
    }
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_elects_one_leader_and_agrees(void **state) {
    (void)state;
    cluster_t cl;
    cluster_start(&cl, 1, NULL);
    const int leader = cluster_setup_queue(&cl);
    for (uint64_t i = 1; i <= 50; i++) tclient_publish(&cl.client, (io_addr_t)leader, 100 + i, 0, 0, i);
    cluster_run(&cl, 2 * SEC);
    assert_int_equal(cl.client.confirm_count, 50);
    cluster_settle(&cl);
    uint32_t leaders = 0;
    broker_node_info_t first;
    broker_node_info(sim_host_node(cl.sim, 0), &first);
    for (uint32_t h = 0; h < BROKERS; h++) {
        broker_node_info_t info;
        broker_node_info(sim_host_node(cl.sim, h), &info);
        if (info.role == RAFT_LEADER) leaders++;
        assert_int_equal(info.applied_index, first.applied_index);
        assert_int_equal(broker_node_state_digest(sim_host_node(cl.sim, h)),
                         broker_node_state_digest(sim_host_node(cl.sim, 0))); /* replica agreement */
        assert_int_equal(cluster_depth(&cl, h), 50);
        char why[128] = "";
        assert_int_equal(broker_node_check(sim_host_node(cl.sim, h), why, sizeof why), 1);
    }
    assert_int_equal(leaders, 1);
    char why[128] = "";
    assert_int_equal(broker_node_check(NULL, why, sizeof why), 0);
    assert_string_equal(why, "no node");
    sim_free(cl.sim);
}

static void test_follower_rejects_with_leader_hint(void **state) {
    (void)state;
    cluster_t cl;
    cluster_start(&cl, 2, NULL);
    const int leader = cluster_wait_leader(&cl);
    assert_true(leader >= 0);
    const io_addr_t follower = (io_addr_t)((leader + 1) % BROKERS);
    tclient_publish(&cl.client, follower, 7, 0, 0, 7);
    cluster_run(&cl, 200 * MS);
    assert_int_equal(cl.client.not_leader, 1);
    assert_false(tclient_confirmed(&cl.client, 7));
    sim_free(cl.sim);
}

static void test_committed_survives_leader_crash(void **state) {
    (void)state;
    cluster_t cl;
    cluster_start(&cl, 3, NULL);
    const int leader = cluster_setup_queue(&cl);
    for (uint64_t i = 1; i <= 20; i++) tclient_publish(&cl.client, (io_addr_t)leader, i, 0, 0, i);
    cluster_run(&cl, 1 * SEC);
    assert_int_equal(cl.client.confirm_count, 20);
    assert_int_equal(sim_host_crash(cl.sim, (uint32_t)leader), 0);
    cluster_run(&cl, 3 * SEC);
    const int next = cluster_wait_leader(&cl);
    assert_true(next >= 0 && next != leader);
    assert_int_equal(sim_host_start(cl.sim, (uint32_t)leader), 0);
    cluster_settle(&cl);
    for (uint32_t h = 0; h < BROKERS; h++) assert_int_equal(cluster_depth(&cl, h), 20);
    sim_free(cl.sim);
}

/* The leader is cut off from its followers but not from the client: with
 * acks=leader it confirms after its own durable append; the majority elects
 * a new leader without the entry, and the old one's entry is overwritten. */
static int run_partitioned_leader(const char *acks, bool *confirmed, int64_t *depth) {
    cluster_t cl;
    const char *settings[] = {"acks", acks, NULL};
    cluster_start(&cl, 4, settings);
    const int leader = cluster_setup_queue(&cl);
    cluster_settle(&cl);
    cluster_isolate(&cl, (uint32_t)leader, true);
    tclient_publish(&cl.client, (io_addr_t)leader, 42, 0, 0, 42);
    cluster_run(&cl, 300 * MS);
    *confirmed = tclient_confirmed(&cl.client, 42);
    assert_int_equal(sim_host_crash(cl.sim, (uint32_t)leader), 0);
    cluster_isolate(&cl, (uint32_t)leader, false);
    cluster_run(&cl, 3 * SEC);
    assert_int_equal(sim_host_start(cl.sim, (uint32_t)leader), 0);
    cluster_settle(&cl);
    const int now = cluster_leader(&cl);
    assert_true(now >= 0);
    *depth = cluster_depth(&cl, (uint32_t)now);
    sim_free(cl.sim);
    return now;
}

static void test_acks_leader_loses_confirmed(void **state) {
    (void)state;
    bool confirmed = false;
    int64_t depth = -1;
    (void)run_partitioned_leader("leader", &confirmed, &depth);
    assert_true(confirmed);   /* the producer was told it is safe ... */
    assert_int_equal(depth, 0); /* ... and it is gone */
}

static void test_acks_quorum_does_not_confirm_uncommitted(void **state) {
    (void)state;
    bool confirmed = true;
    int64_t depth = -1;
    (void)run_partitioned_leader("quorum", &confirmed, &depth);
    assert_false(confirmed); /* never confirmed, so nothing promised is lost */
    assert_int_equal(depth, 0);
}

/* fsync strategies under power loss of every node. */
static int64_t run_power_loss(const char *fsync, uint32_t *confirms) {
    cluster_t cl;
    const char *settings[] = {"fsync", fsync, NULL};
    cluster_start(&cl, 5, settings);
    const int leader = cluster_setup_queue(&cl);
    for (uint64_t i = 1; i <= 30; i++) tclient_publish(&cl.client, (io_addr_t)leader, i, 0, 0, i);
    cluster_run(&cl, 1 * SEC);
    *confirms = cl.client.confirm_count;
    for (uint32_t h = 0; h < BROKERS; h++) assert_int_equal(sim_host_crash(cl.sim, h), 0);
    cluster_run(&cl, 100 * MS);
    for (uint32_t h = 0; h < BROKERS; h++) assert_int_equal(sim_host_start(cl.sim, h), 0);
    assert_true(cluster_wait_leader(&cl) >= 0);
    cluster_settle(&cl);
    const int64_t depth = cluster_depth(&cl, (uint32_t)cluster_leader(&cl));
    sim_free(cl.sim);
    return depth;
}

static void test_fsync_never_loses_on_power_loss(void **state) {
    (void)state;
    uint32_t confirms = 0;
    const int64_t depth = run_power_loss("never", &confirms);
    assert_int_equal(confirms, 30);
    assert_true(depth < 30); /* confirmed messages lost (the queue may be gone too) */
}

static void test_fsync_always_keeps_on_power_loss(void **state) {
    (void)state;
    uint32_t confirms = 0;
    const int64_t depth = run_power_loss("always", &confirms);
    assert_int_equal(confirms, 30);
    assert_int_equal(depth, 30);
}

/* Unclean election: a replica that missed committed entries may win. Across
 * seeds, unclean loses committed data at least once; safe never does. */
static int64_t run_stale_replica_election(const char *election, uint64_t seed) {
    cluster_t cl;
    /* Without pre-vote the isolated replica inflates its term, so it is the
     * first to campaign when the partition heals. */
    const char *settings[] = {"election", election, "pre_vote", "off", NULL};
    cluster_start(&cl, seed, settings);
    const int leader = cluster_setup_queue(&cl);
    cluster_settle(&cl);
    const uint32_t stale = (uint32_t)((leader + 1) % BROKERS);
    cluster_isolate(&cl, stale, true);
    for (uint64_t i = 1; i <= 10; i++) tclient_publish(&cl.client, (io_addr_t)leader, i, 0, 0, i);
    cluster_run(&cl, 1 * SEC);
    assert_int_equal(cl.client.confirm_count, 10); /* committed on leader + one follower */
    assert_int_equal(sim_host_crash(cl.sim, (uint32_t)leader), 0);
    cluster_isolate(&cl, stale, false);
    cluster_run(&cl, 3 * SEC);
    assert_int_equal(sim_host_start(cl.sim, (uint32_t)leader), 0);
    cluster_settle(&cl);
    const int64_t depth = cluster_depth(&cl, (uint32_t)cluster_leader(&cl));
    sim_free(cl.sim);
    return depth;
}

static void test_unclean_election_loses_committed(void **state) {
    (void)state;
    uint32_t losses = 0;
    for (uint64_t seed = 1; seed <= 12; seed++)
        if (run_stale_replica_election("unclean", seed) < 10) losses++;
    print_message("unclean election lost committed data in %u of 12 seeds\n", losses);
    assert_true(losses >= 1);
}

static void test_safe_election_keeps_committed(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 12; seed++)
        assert_int_equal(run_stale_replica_election("safe", seed), 10);
}

static int64_t run_retry(const char *dedup) {
    cluster_t cl;
    const char *settings[] = {"dedup", dedup, NULL};
    cluster_start(&cl, 6, settings);
    const int leader = cluster_setup_queue(&cl);
    tclient_publish(&cl.client, (io_addr_t)leader, 1, 77, 1, 500);
    cluster_run(&cl, 300 * MS);
    /* The producer retries the same (producer, sequence), as after a lost confirm. */
    tclient_publish(&cl.client, (io_addr_t)leader, 2, 77, 1, 500);
    cluster_run(&cl, 300 * MS);
    assert_int_equal(cl.client.confirm_count, 2); /* both attempts confirmed */
    cluster_settle(&cl);
    const int64_t depth = cluster_depth(&cl, (uint32_t)leader);
    sim_free(cl.sim);
    return depth;
}

static void test_dedup_on_enqueues_retry_once(void **state) {
    (void)state;
    assert_int_equal(run_retry("on"), 1);
}

static void test_dedup_off_enqueues_retry_twice(void **state) {
    (void)state;
    assert_int_equal(run_retry("off"), 2);
}

static void test_same_seed_same_trace_hash(void **state) {
    (void)state;
    uint64_t hashes[2];
    for (int k = 0; k < 2; k++) {
        cluster_t cl;
        cluster_start(&cl, 9, NULL);
        const int leader = cluster_setup_queue(&cl);
        for (uint64_t i = 1; i <= 10; i++) tclient_publish(&cl.client, (io_addr_t)leader, i, 0, 0, i);
        cluster_run(&cl, 1 * SEC);
        assert_int_equal(sim_host_crash(cl.sim, (uint32_t)leader), 0);
        cluster_run(&cl, 2 * SEC);
        hashes[k] = sim_trace_hash(cl.sim);
        sim_free(cl.sim);
    }
    assert_int_equal(hashes[0], hashes[1]);
}


/* Check-quorum: a leader cut off from every follower steps down by itself,
 * and the majority elects a new one. */
static void test_isolated_leader_steps_down(void **state) {
    (void)state;
    cluster_t cl;
    cluster_start(&cl, 11, NULL);
    const int leader = cluster_wait_leader(&cl);
    assert_true(leader >= 0);
    cluster_isolate(&cl, (uint32_t)leader, true);
    cluster_run(&cl, 2 * SEC);
    broker_node_info_t info;
    broker_node_info(sim_host_node(cl.sim, (uint32_t)leader), &info);
    assert_int_not_equal(info.role, RAFT_LEADER);
    const int next = cluster_leader(&cl);
    assert_true(next >= 0 && next != leader);
    sim_free(cl.sim);
}

/* A follower down while the log was compacted catches up through
 * InstallSnapshot and ends with the same state as the others. */
static void test_catch_up_from_snapshot(void **state) {
    (void)state;
    cluster_t cl;
    const char *settings[] = {"snapshot_every", "100", NULL};
    cluster_start(&cl, 12, settings);
    const int leader = cluster_setup_queue(&cl);
    const uint32_t lagging = (uint32_t)((leader + 1) % BROKERS);
    assert_int_equal(sim_host_crash(cl.sim, lagging), 0);
    for (uint64_t i = 1; i <= 400; i++) tclient_publish(&cl.client, (io_addr_t)leader, i, 0, 0, i);
    cluster_run(&cl, 3 * SEC);
    assert_int_equal(cl.client.confirm_count, 400);
    broker_node_info_t li;
    broker_node_info(sim_host_node(cl.sim, (uint32_t)leader), &li);
    assert_true(li.snapshot_index > 0); /* the leader compacted its log */
    assert_int_equal(sim_host_start(cl.sim, lagging), 0);
    cluster_settle(&cl);
    broker_node_info_t fi;
    broker_node_info(sim_host_node(cl.sim, lagging), &fi);
    broker_node_info(sim_host_node(cl.sim, (uint32_t)leader), &li);
    assert_true(fi.snapshot_index > 0); /* it received a snapshot */
    assert_int_equal(fi.applied_index, li.applied_index);
    assert_int_equal(broker_node_state_digest(sim_host_node(cl.sim, lagging)),
                     broker_node_state_digest(sim_host_node(cl.sim, (uint32_t)leader)));
    assert_int_equal(cluster_depth(&cl, lagging), 400);
    sim_free(cl.sim);
}


/* basic.get, purge, delete and properties through the client protocol. */
static void test_get_purge_delete(void **state) {
    (void)state;
    cluster_t cl;
    cluster_start(&cl, 13, NULL);
    const io_addr_t leader = (io_addr_t)cluster_setup_queue(&cl);
    for (uint64_t i = 1; i <= 3; i++) {
        wire_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_MSG_PUBLISH;
        m.publish.request_id = i;
        m.publish.message_id = i;
        m.publish.routing_key = wire_str("q");
        m.publish.body = wire_str("b");
        m.publish.properties = wire_str("content-type=text");
        tclient_send(&cl.client, leader, &m);
    }
    cluster_run(&cl, 500 * MS);
    assert_int_equal(cl.client.confirm_count, 3);
    wire_msg_t g;
    memset(&g, 0, sizeof g);
    g.type = WIRE_MSG_GET;
    g.get.request_id = 50;
    g.get.queue = wire_str("q");
    g.get.ack_mode = WIRE_ACK_AUTO;
    tclient_send(&cl.client, leader, &g);
    cluster_run(&cl, 300 * MS);
    assert_int_equal(cl.client.deliver_count, 1);
    assert_int_equal(cl.client.delivered[0], 1);
    assert_int_equal(cl.client.last_tag_len, 0);          /* a get-ok, not a consumer delivery */
    assert_int_equal(cl.client.last_message_count, 2);
    assert_string_equal(cl.client.last_props, "content-type=text");
    cluster_run(&cl, 300 * MS);
    assert_int_equal(cluster_depth(&cl, leader), 2);      /* auto-ack settled it */
    wire_msg_t p;
    memset(&p, 0, sizeof p);
    p.type = WIRE_MSG_PURGE_QUEUE;
    p.purge_queue.request_id = 51;
    p.purge_queue.queue = wire_str("q");
    tclient_send(&cl.client, leader, &p);
    cluster_run(&cl, 300 * MS);
    assert_int_equal(cl.client.last_status, WIRE_STATUS_OK);
    assert_int_equal(cl.client.last_count, 2);
    tclient_send(&cl.client, leader, &g);                 /* empty queue */
    cluster_run(&cl, 300 * MS);
    assert_int_equal(cl.client.last_status, WIRE_STATUS_EMPTY);
    wire_msg_t d;
    memset(&d, 0, sizeof d);
    d.type = WIRE_MSG_DELETE_QUEUE;
    d.delete_queue.request_id = 52;
    d.delete_queue.queue = wire_str("q");
    tclient_send(&cl.client, leader, &d);
    cluster_run(&cl, 300 * MS);
    assert_int_equal(cl.client.last_status, WIRE_STATUS_OK);
    assert_int_equal(cluster_depth(&cl, leader), -1);     /* gone */
    tclient_send(&cl.client, leader, &g);                 /* get from a missing queue */
    cluster_run(&cl, 300 * MS);
    assert_int_equal(cl.client.last_status, WIRE_STATUS_NOT_FOUND);
    sim_free(cl.sim);
}

static void test_bad_config_rejected(void **state) {
    (void)state;
    broker_config_t cfg;
    broker_config_default(&cfg);
    char err[256];
    assert_int_equal(broker_config_set(&cfg, "acks", "sometimes", err, sizeof err), -1);
    assert_non_null(strstr(err, "acks"));
    assert_int_equal(broker_config_set(&cfg, "replicas", "8", err, sizeof err), -1);
    assert_int_equal(broker_config_set(&cfg, "replicas", "0", err, sizeof err), -1);
    assert_int_equal(broker_config_set(&cfg, "fsync", "interval:x", err, sizeof err), -1);
    assert_int_equal(broker_config_set(&cfg, "colour", "blue", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown"));
    assert_int_equal(broker_config_set(&cfg, "fsync", "interval:50", err, sizeof err), 0);
    assert_int_equal(cfg.fsync, BROKER_FSYNC_INTERVAL);
    cfg.id = 5;
    cfg.replicas = 3;
    assert_int_equal(broker_config_check(&cfg, err, sizeof err), -1);
    /* A node refuses to boot on a bad config. */
    assert_null(broker_node_program.boot(&cfg, &(io_t){0}));
}

static void test_garbage_messages_ignored(void **state) {
    (void)state;
    cluster_t cl;
    cluster_start(&cl, 10, NULL);
    const int leader = cluster_setup_queue(&cl);
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 1);
    for (uint32_t h = 0; h < BROKERS; h++)
        assert_int_equal(io_send(&cl.client.io, h, junk, sizeof junk), 0);
    tclient_publish(&cl.client, (io_addr_t)leader, 9, 0, 0, 9);
    cluster_run(&cl, 500 * MS);
    assert_true(tclient_confirmed(&cl.client, 9)); /* still serving */
    sim_free(cl.sim);
}

/* A session that expired at the leader (client silent past the session
 * timeout) never comes back under its old epoch: the next heartbeat naming
 * it gets a fresh epoch, so acks of the dead session are refused as stale
 * instead of settling new deliveries that reuse their tags. */
static void test_expired_session_gets_a_fresh_epoch(void **state) {
    (void)state;
    cluster_t cl;
    const char *const settings[] = {"session_timeout_ms", "1000", NULL};
    cluster_start(&cl, 3, settings);
    const int leader = cluster_wait_leader(&cl);
    assert_true(leader >= 0);
    tclient_heartbeat(&cl.client, (io_addr_t)leader, 0);
    cluster_run(&cl, 100 * MS);
    const uint64_t first = cl.client.last_epoch;
    assert_true(first != 0);
    tclient_heartbeat(&cl.client, (io_addr_t)leader, first); /* alive: kept */
    cluster_run(&cl, 100 * MS);
    assert_int_equal(cl.client.last_epoch, first);
    cluster_run(&cl, 3 * SEC); /* silent: the session expires */
    assert_int_equal(cluster_leader(&cl), leader);
    tclient_heartbeat(&cl.client, (io_addr_t)leader, first);
    cluster_run(&cl, 100 * MS);
    const uint64_t second = cl.client.last_epoch;
    assert_true(second != 0 && second != first);
    tclient_heartbeat(&cl.client, (io_addr_t)leader, second);
    cluster_run(&cl, 100 * MS);
    assert_int_equal(cl.client.last_epoch, second);
    sim_free(cl.sim);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expired_session_gets_a_fresh_epoch),
        cmocka_unit_test(test_elects_one_leader_and_agrees),
        cmocka_unit_test(test_follower_rejects_with_leader_hint),
        cmocka_unit_test(test_committed_survives_leader_crash),
        cmocka_unit_test(test_acks_leader_loses_confirmed),
        cmocka_unit_test(test_acks_quorum_does_not_confirm_uncommitted),
        cmocka_unit_test(test_fsync_never_loses_on_power_loss),
        cmocka_unit_test(test_fsync_always_keeps_on_power_loss),
        cmocka_unit_test(test_unclean_election_loses_committed),
        cmocka_unit_test(test_safe_election_keeps_committed),
        cmocka_unit_test(test_dedup_on_enqueues_retry_once),
        cmocka_unit_test(test_dedup_off_enqueues_retry_twice),
        cmocka_unit_test(test_same_seed_same_trace_hash),
        cmocka_unit_test(test_isolated_leader_steps_down),
        cmocka_unit_test(test_catch_up_from_snapshot),
        cmocka_unit_test(test_get_purge_delete),
        cmocka_unit_test(test_bad_config_rejected),
        cmocka_unit_test(test_garbage_messages_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
