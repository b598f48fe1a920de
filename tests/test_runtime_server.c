/*
 * tests/test_runtime_server.c — real broker servers (runtime/server.c) in one
 * uv loop: a 3-node cluster on free 127.0.0.1 ports with temp data dirs, and
 * a small wire client over TCP written here (non-blocking POSIX socket,
 * pumped between loop turns). Every wait is bounded; temp dirs are removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/wire.h"
#include "runtime/errors.h"
#include "runtime/server.h"
#include "tests/support/tnet.h"

#define T_NODES_MAX 3u
#define T_BUF_BYTES (2u * 1024u * 1024u)
#define T_IDS_MAX 512u
#define T_WAIT_MS 5000u

/* ---- time and loop ------------------------------------------------------ */

static void t_turn(uv_loop_t *loop) {
    (void)uv_run(loop, UV_RUN_NOWAIT);
    const struct timespec d = {0, 500000}; /* 0.5 ms: let other sockets move */
    nanosleep(&d, NULL);
}

static void t_pump(uv_loop_t *loop, uint32_t ms) {
    const uint64_t end = tnet_now_ms() + ms;
    while (tnet_now_ms() < end) t_turn(loop);
}

/* ---- temp dirs and ports ------------------------------------------------- */

static int t_has_file(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int found = 0;
    if (d == NULL) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
    closedir(d);
    return found;
}

/* One loopback port the kernel says is free now. */
static int t_free_port(void) {
    uint16_t port = 0;
    tnet_kernel_ports(&port, 1);
    return port;
}

/* ---- the cluster fixture -------------------------------------------------- */

typedef struct tcluster {
    uv_loop_t loop;
    uint32_t n;
    char root[64];
    char dirs[T_NODES_MAX][128];
    char peer_text[T_NODES_MAX][32];
    const char *peers[T_NODES_MAX];
    rt_server_t *srv[T_NODES_MAX];
    int client_port[T_NODES_MAX];
    broker_config_t bcfg;
    uint32_t conns_max;
    const char *token;                 /* client port token, NULL = none */
    uint32_t handshake_ms, idle_ms, frame_ms;
} tcluster_t;

static tcluster_t *t_cluster_new(uint32_t n) {
    tcluster_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    c->n = n;
    snprintf(c->root, sizeof c->root, "/tmp/chaoslab-srv-XXXXXX");
    assert_non_null(mkdtemp(c->root));
    for (uint32_t i = 0; i < n; i++) {
        snprintf(c->dirs[i], sizeof c->dirs[i], "%s/node-%u", c->root, i);
        snprintf(c->peer_text[i], sizeof c->peer_text[i], "127.0.0.1:%d", t_free_port());
        c->peers[i] = c->peer_text[i];
    }
    broker_config_default(&c->bcfg);
    char err[128];
    assert_int_equal(broker_config_set(&c->bcfg, "election_timeout_ms", "150", err, sizeof err), 0);
    assert_int_equal(broker_config_set(&c->bcfg, "heartbeat_ms", "30", err, sizeof err), 0);
    return c;
}

static int t_server_start(tcluster_t *c, uint32_t i) {
    assert_null(c->srv[i]);
    rt_server_config_t cfg = {
        .node_id = i, .peers = c->peers, .peers_count = c->n, .client_addr = "127.0.0.1:0",
        .client_conns_max = c->conns_max, .data_dir = c->dirs[i], .broker = c->bcfg,
        .log_level = RT_LOG_WARN, .seed = 1000 + i, .client_token = c->token,
        .handshake_timeout_ms = c->handshake_ms, .idle_timeout_ms = c->idle_ms,
        .frame_timeout_ms = c->frame_ms,
    };
    char err[RT_SERVER_ERR_MAX] = "";
    int rc = rt_server_new(&c->loop, &cfg, &c->srv[i], err, sizeof err);
    assert_int_equal(rc, 0);
    rc = rt_server_start(c->srv[i], err, sizeof err);
    if (rc != 0) {
        print_message("start %u: %s\n", i, err);
        rt_server_free(c->srv[i]);
        c->srv[i] = NULL;
        return rc;
    }
    c->client_port[i] = rt_server_client_port(c->srv[i]);
    assert_true(c->client_port[i] > 0);
    return 0;
}

static void t_server_stop(tcluster_t *c, uint32_t i) {
    assert_non_null(c->srv[i]);
    rt_server_stop(c->srv[i]);
    rt_server_free(c->srv[i]);
    c->srv[i] = NULL;
    c->client_port[i] = 0;
    t_pump(&c->loop, 50); /* handles close, the last disk op finishes */
}

static void t_cluster_free(tcluster_t *c) {
    for (uint32_t i = 0; i < c->n; i++)
        if (c->srv[i] != NULL) t_server_stop(c, i);
    const uint64_t end = tnet_now_ms() + 2000;
    while (uv_run(&c->loop, UV_RUN_NOWAIT) != 0 && tnet_now_ms() < end) t_turn(&c->loop);
    assert_int_equal(uv_loop_close(&c->loop), 0); /* every handle closed */
    tnet_rm_tree(c->root);
    free(c);
}

static int t_info(tcluster_t *c, uint32_t i, broker_node_info_t *info) {
    if (c->srv[i] == NULL) return -1;
    broker_node_t *node = rt_server_node(c->srv[i]);
    if (node == NULL) return -1;
    broker_node_info(node, info);
    return 0;
}

static int64_t t_depth(tcluster_t *c, uint32_t i, const char *q) {
    if (c->srv[i] == NULL || rt_server_node(c->srv[i]) == NULL) return -2;
    return broker_node_queue_depth(rt_server_node(c->srv[i]), q);
}

/* ---- the wire client ---------------------------------------------------- */

typedef struct tclient {
    int fd;
    uint8_t *buf;   /* received, not yet consumed */
    size_t have;
    uint8_t *frame; /* the last frame returned (decoded messages point here) */
    uint64_t epoch; /* session epoch the leader handed out */
    uint64_t next_request;
} tclient_t;

static int t_client_open(tclient_t *t, int port) {
    memset(t, 0, sizeof *t);
    t->fd = tnet_connect(port);
    if (t->fd < 0) return -1;
    const int one = 1;
    (void)setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_NONBLOCK);
    t->buf = malloc(T_BUF_BYTES);
    t->frame = malloc(WIRE_MESSAGE_SIZE_MAX);
    assert_non_null(t->buf);
    assert_non_null(t->frame);
    t->next_request = 1;
    return 0;
}

static void t_client_close(tclient_t *t) {
    if (t->fd >= 0) close(t->fd);
    free(t->buf);
    free(t->frame);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

static void t_send_raw(tcluster_t *c, tclient_t *t, const uint8_t *b, size_t len) {
    size_t off = 0;
    const uint64_t end = tnet_now_ms() + T_WAIT_MS;
    while (off < len && tnet_now_ms() < end) {
        const ssize_t w = send(t->fd, b + off, len - off, MSG_NOSIGNAL);
        if (w > 0) off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return; /* closed */
        else t_turn(&c->loop);
    }
}

static void t_send(tcluster_t *c, tclient_t *t, const wire_msg_t *m) {
    static uint8_t out[64 * 1024];
    const int len = wire_encode(m, out, sizeof out);
    assert_true(len > 0);
    t_send_raw(c, t, out, (size_t)len);
}

/* 1 = a frame decoded into *m (valid until the next call), 0 = nothing yet,
 * -1 = the server closed the connection. */
static int t_poll(tclient_t *t, wire_msg_t *m) {
    for (;;) { /* bounded: each recv fills the buffer further */
        const int size = wire_frame_size(t->buf, t->have);
        assert_true(size >= 0);
        if (size > 0 && (size_t)size <= t->have) {
            memcpy(t->frame, t->buf, (size_t)size);
            memmove(t->buf, t->buf + size, t->have - (size_t)size);
            t->have -= (size_t)size;
            assert_int_equal(wire_decode(t->frame, (size_t)size, m, NULL, 0), 0);
            return 1;
        }
        assert_true(t->have < T_BUF_BYTES);
        const ssize_t r = recv(t->fd, t->buf + t->have, T_BUF_BYTES - t->have, 0);
        if (r > 0) {
            t->have += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return -1;
        return 0;
    }
}

/* Wait for the next frame (pumping the loop). 1, or -1 closed, 0 timeout. */
static int t_next(tcluster_t *c, tclient_t *t, wire_msg_t *m, uint32_t timeout_ms) {
    const uint64_t end = tnet_now_ms() + timeout_ms;
    while (tnet_now_ms() < end) {
        const int r = t_poll(t, m);
        if (r != 0) return r;
        t_turn(&c->loop);
    }
    return 0;
}

static uint64_t t_request_id(const wire_msg_t *m) {
    switch (m->type) {
    case WIRE_MSG_REPLY: return m->reply.request_id;
    case WIRE_MSG_NOT_LEADER: return m->not_leader.request_id;
    case WIRE_MSG_CONFIRM: return m->confirm.request_id;
    case WIRE_MSG_NACK_PUBLISH: return m->nack_publish.request_id;
    case WIRE_MSG_ERROR: return m->error.request_id;
    default: return 0;
    }
}

/* Send and wait for the answer carrying `rid` (other frames are skipped). */
static int t_call(tcluster_t *c, tclient_t *t, const wire_msg_t *req, uint64_t rid,
                  wire_msg_t *out) {
    t_send(c, t, req);
    const uint64_t end = tnet_now_ms() + T_WAIT_MS;
    while (tnet_now_ms() < end) {
        const int r = t_next(c, t, out, 100);
        if (r < 0) return -1;
        if (r > 0 && t_request_id(out) == rid) return 0;
    }
    return -1;
}

/* Find the leader through NOT_LEADER hints: HEARTBEAT any running node; the
 * leader echoes it (and hands out a session epoch), a follower names the
 * leader. Returns the leader's id with *t connected to it, or -1. */
static int t_connect_leader(tcluster_t *c, tclient_t *t, uint32_t timeout_ms) {
    const uint64_t end = tnet_now_ms() + timeout_ms;
    uint32_t target = 0;
    while (tnet_now_ms() < end) {
        if (c->srv[target] == NULL || t_client_open(t, c->client_port[target]) != 0) {
            target = (target + 1) % c->n;
            t_pump(&c->loop, 20);
            continue;
        }
        wire_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_MSG_HEARTBEAT;
        t_send(c, t, &m);
        const int r = t_next(c, t, &m, 300);
        if (r > 0 && m.type == WIRE_MSG_HEARTBEAT) {
            t->epoch = m.heartbeat.session_id;
            return (int)target;
        }
        uint32_t next = (target + 1) % c->n;
        if (r > 0 && m.type == WIRE_MSG_NOT_LEADER && m.not_leader.leader_hint < c->n)
            next = m.not_leader.leader_hint;
        t_client_close(t);
        target = next;
        t_pump(&c->loop, 30);
    }
    return -1;
}

static void t_declare(tcluster_t *c, tclient_t *t, const char *q) {
    wire_msg_t m, r;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_DECLARE_QUEUE;
    m.declare_queue.request_id = t->next_request++;
    m.declare_queue.name = wire_str(q);
    m.declare_queue.durable = 1;
    assert_int_equal(t_call(c, t, &m, m.declare_queue.request_id, &r), 0);
    assert_int_equal(r.type, WIRE_MSG_REPLY);
    assert_int_equal(r.reply.status, WIRE_STATUS_OK);
}

/* Publish ids [first, first + count) pipelined; returns how many confirmed. */
static uint32_t t_publish(tcluster_t *c, tclient_t *t, const char *q, uint64_t first,
                          uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        wire_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_MSG_PUBLISH;
        m.publish.request_id = t->next_request++;
        m.publish.producer_id = 7;
        m.publish.sequence = first + i;
        m.publish.message_id = first + i;
        m.publish.routing_key = wire_str(q);
        m.publish.persistent = 1;
        m.publish.body = wire_str("payload");
        t_send(c, t, &m);
    }
    uint32_t confirmed = 0;
    const uint64_t end = tnet_now_ms() + T_WAIT_MS;
    while (confirmed < count && tnet_now_ms() < end) {
        wire_msg_t r;
        const int got = t_next(c, t, &r, 100);
        if (got < 0) break;
        if (got > 0 && r.type == WIRE_MSG_CONFIRM && !r.confirm.unroutable) confirmed++;
        if (got > 0 && r.type != WIRE_MSG_CONFIRM && r.type != WIRE_MSG_HEARTBEAT) {
            print_message("publish answered %s\n", wire_type_name(r.type));
            break;
        }
    }
    return confirmed;
}

static void t_consume(tcluster_t *c, tclient_t *t, const char *q, const char *tag,
                      uint32_t prefetch) {
    wire_msg_t m, r;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_CONSUME;
    m.consume.request_id = t->next_request++;
    m.consume.queue = wire_str(q);
    m.consume.prefetch = prefetch;
    m.consume.ack_mode = WIRE_ACK_MANUAL;
    m.consume.consumer_tag = wire_str(tag);
    assert_int_equal(t_call(c, t, &m, m.consume.request_id, &r), 0);
    assert_int_equal(r.type, WIRE_MSG_REPLY);
    assert_int_equal(r.reply.status, WIRE_STATUS_OK);
}

static void t_ack(tcluster_t *c, tclient_t *t, uint64_t tag) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_ACK;
    m.ack.delivery_tag = tag;
    t_send(c, t, &m);
}

/* Receive deliveries until `want` or a quiet `quiet_ms`; ack each if asked.
 * Message ids go to ids[]; returns the count. */
static uint32_t t_receive(tcluster_t *c, tclient_t *t, uint64_t *ids, uint32_t want,
                          int ack, uint32_t quiet_ms) {
    uint32_t got = 0;
    while (got < want) {
        wire_msg_t r;
        const int rc = t_next(c, t, &r, quiet_ms);
        if (rc <= 0) break;
        if (r.type != WIRE_MSG_DELIVER) continue;
        assert_true(got < T_IDS_MAX);
        ids[got++] = r.deliver.message_id;
        if (ack) t_ack(c, t, r.deliver.delivery_tag);
    }
    return got;
}

static int t_until_depth(tcluster_t *c, uint32_t i, const char *q, int64_t depth) {
    const uint64_t end = tnet_now_ms() + T_WAIT_MS;
    while (tnet_now_ms() < end) {
        if (t_depth(c, i, q) == depth) return 1;
        t_turn(&c->loop);
    }
    print_message("node %u depth %lld, want %lld\n", i, (long long)t_depth(c, i, q),
                  (long long)depth);
    return 0;
}

/* ---- tests --------------------------------------------------------------- */

/* The whole story: leader discovery, confirms, consume + ack, the leader's
 * process stops, a new leader serves every confirmed message, the old one
 * restarts on its data dir and catches up. */
static void test_cluster_failover_keeps_confirmed(void **state) {
    tcluster_t *c = t_cluster_new(3);
    *(tcluster_t **)*state = c;
    for (uint32_t i = 0; i < 3; i++) assert_int_equal(t_server_start(c, i), 0);
    tclient_t t;
    const int leader = t_connect_leader(c, &t, T_WAIT_MS);
    assert_true(leader >= 0);
    t_declare(c, &t, "orders");
    assert_int_equal(t_publish(c, &t, "orders", 1, 50), 50);

    /* Consume 10 with prefetch 10, ack them, cancel. */
    t_consume(c, &t, "orders", "c1", 10);
    uint64_t first[T_IDS_MAX];
    uint32_t taken = t_receive(c, &t, first, 10, 1, 1000);
    assert_int_equal(taken, 10);
    wire_msg_t m, r;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_CANCEL;
    m.cancel.request_id = t.next_request++;
    m.cancel.consumer_tag = wire_str("c1");
    t_send(c, &t, &m);
    /* Deliveries that raced the cancel are acked too (counted as taken). */
    const uint64_t end = tnet_now_ms() + T_WAIT_MS;
    while (tnet_now_ms() < end) {
        if (t_next(c, &t, &r, 100) <= 0) continue;
        if (r.type == WIRE_MSG_DELIVER) {
            first[taken++] = r.deliver.message_id;
            t_ack(c, &t, r.deliver.delivery_tag);
        }
        if (r.type == WIRE_MSG_REPLY && r.reply.request_id == m.cancel.request_id) break;
    }
    for (uint32_t i = 0; i < 3; i++) assert_true(t_until_depth(c, i, "orders", 50 - taken));
    t_client_close(&t);

    /* The leader's process goes away. */
    broker_node_info_t before;
    assert_int_equal(t_info(c, (uint32_t)leader, &before), 0);
    t_server_stop(c, (uint32_t)leader);
    const int leader2 = t_connect_leader(c, &t, T_WAIT_MS);
    assert_true(leader2 >= 0 && leader2 != leader);

    /* Every confirmed, unacked message is still there, exactly once. */
    t_consume(c, &t, "orders", "c2", 0);
    uint64_t rest[T_IDS_MAX];
    const uint32_t got = t_receive(c, &t, rest, 50 - taken, 1, 1500);
    assert_int_equal(got, 50 - taken);
    uint8_t seen[51] = {0};
    for (uint32_t i = 0; i < taken; i++) seen[first[i]]++;
    for (uint32_t i = 0; i < got; i++) {
        assert_true(rest[i] >= 1 && rest[i] <= 50);
        seen[rest[i]]++;
    }
    for (uint32_t id = 1; id <= 50; id++) assert_int_equal(seen[id], 1);
    t_client_close(&t);

    /* New publishes on the new leader, then the old node comes back. */
    assert_true(t_connect_leader(c, &t, T_WAIT_MS) == leader2);
    assert_int_equal(t_publish(c, &t, "orders", 101, 5), 5);
    assert_int_equal(t_server_start(c, (uint32_t)leader), 0);
    for (uint32_t i = 0; i < 3; i++) assert_true(t_until_depth(c, i, "orders", 5));
    broker_node_info_t after;
    assert_int_equal(t_info(c, (uint32_t)leader, &after), 0);
    assert_true(after.running);
    assert_true(after.term >= before.term);
    t_client_close(&t);
    t_cluster_free(c);
    *(tcluster_t **)*state = NULL;
}

/* One node, a small snapshot interval: after a restart on the same data dir
 * the meta (term), the snapshot and the log tail are all recovered. */
static void test_restart_recovers_meta_snapshot_log(void **state) {
    tcluster_t *c = t_cluster_new(1);
    *(tcluster_t **)*state = c;
    char err[128];
    assert_int_equal(broker_config_set(&c->bcfg, "snapshot_every", "100", err, sizeof err), 0);
    assert_int_equal(t_server_start(c, 0), 0);
    tclient_t t;
    assert_int_equal(t_connect_leader(c, &t, T_WAIT_MS), 0);
    t_declare(c, &t, "q");
    assert_int_equal(t_publish(c, &t, "q", 1, 250), 250);
    broker_node_info_t before;
    const uint64_t end = tnet_now_ms() + T_WAIT_MS;
    do {
        t_turn(&c->loop);
        assert_int_equal(t_info(c, 0, &before), 0);
    } while (before.snapshot_index == 0 && tnet_now_ms() < end);
    assert_true(before.snapshot_index > 0);
    /* A tail after the snapshot, so recovery needs both. */
    assert_int_equal(t_publish(c, &t, "q", 251, 30), 30);
    assert_int_equal(t_info(c, 0, &before), 0);
    assert_true(before.last_index > before.snapshot_index);
    t_client_close(&t);
    t_server_stop(c, 0);

    assert_true(t_has_file(c->dirs[0], "LOCK"));
    assert_true(t_has_file(c->dirs[0], "meta-"));
    assert_true(t_has_file(c->dirs[0], "snap-"));
    assert_true(t_has_file(c->dirs[0], "log-"));

    assert_int_equal(t_server_start(c, 0), 0);
    assert_true(t_until_depth(c, 0, "q", 280));
    broker_node_info_t after;
    assert_int_equal(t_info(c, 0, &after), 0);
    assert_true(after.term >= before.term);
    assert_true(after.snapshot_index >= before.snapshot_index);
    assert_true(after.applied_index >= before.last_index);
    assert_int_equal(t_connect_leader(c, &t, T_WAIT_MS), 0);
    t_consume(c, &t, "q", "all", 0);
    uint64_t ids[T_IDS_MAX];
    assert_int_equal(t_receive(c, &t, ids, 280, 1, 1000), 280);
    for (uint32_t i = 0; i < 280; i++) assert_int_equal(ids[i], i + 1); /* FIFO */
    t_client_close(&t);
    t_cluster_free(c);
    *(tcluster_t **)*state = NULL;
}

/* A consumer's connection closes with unacked deliveries: they go back to
 * the queue at once (not after the session timeout) for the next consumer. */
static void test_closed_client_returns_unacked(void **state) {
    tcluster_t *c = t_cluster_new(1);
    *(tcluster_t **)*state = c;
    char err[128];
    assert_int_equal(broker_config_set(&c->bcfg, "session_timeout_ms", "600000", err, sizeof err),
                     0);
    assert_int_equal(t_server_start(c, 0), 0);
    tclient_t a, b;
    assert_int_equal(t_connect_leader(c, &a, T_WAIT_MS), 0);
    t_declare(c, &a, "jobs");
    assert_int_equal(t_publish(c, &a, "jobs", 1, 3), 3);
    t_consume(c, &a, "jobs", "greedy", 0);
    uint64_t ids[T_IDS_MAX];
    assert_int_equal(t_receive(c, &a, ids, 3, 0, 1000), 3);
    t_client_close(&a); /* no ack */
    assert_int_equal(t_connect_leader(c, &b, T_WAIT_MS), 0);
    t_consume(c, &b, "jobs", "patient", 0);
    assert_int_equal(t_receive(c, &b, ids, 3, 1, 1000), 3);
    t_client_close(&b);
    t_cluster_free(c);
    *(tcluster_t **)*state = NULL;
}

/* Garbage, an oversized header and a full port close connections; a corrupt
 * frame is dropped by the node; the server keeps serving. */
static void test_client_port_rejects_bad_input(void **state) {
    tcluster_t *c = t_cluster_new(1);
    *(tcluster_t **)*state = c;
    c->conns_max = 2;
    assert_int_equal(t_server_start(c, 0), 0);
    tclient_t t, u, v;
    wire_msg_t m;
    assert_int_equal(t_connect_leader(c, &t, T_WAIT_MS), 0);

    /* 1. not a wire frame */
    assert_int_equal(t_client_open(&u, c->client_port[0]), 0);
    t_send_raw(c, &u, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18);
    assert_int_equal(t_next(c, &u, &m, 2000), -1);
    t_client_close(&u);

    /* 2. a header declaring more than WIRE_MESSAGE_SIZE_MAX */
    uint8_t hdr[WIRE_HEADER_SIZE];
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_HEARTBEAT;
    uint8_t good[64];
    const int good_len = wire_encode(&m, good, sizeof good);
    assert_true(good_len > 0);
    memcpy(hdr, good, WIRE_HEADER_SIZE);
    hdr[4] = hdr[5] = hdr[6] = hdr[7] = 0xff;
    assert_int_equal(t_client_open(&u, c->client_port[0]), 0);
    t_send_raw(c, &u, hdr, sizeof hdr);
    assert_int_equal(t_next(c, &u, &m, 2000), -1);
    t_client_close(&u);

    /* 3. a corrupt frame (CRC) is dropped, the connection lives on */
    uint8_t bad[64];
    memcpy(bad, good, (size_t)good_len);
    bad[good_len - 1] ^= 0x40;
    t_send_raw(c, &t, bad, (size_t)good_len);
    t_send_raw(c, &t, good, (size_t)good_len);
    assert_int_equal(t_next(c, &t, &m, 2000), 1);
    assert_int_equal(m.type, WIRE_MSG_HEARTBEAT);
    assert_int_equal(t_next(c, &t, &m, 200), 0); /* exactly one answer */

    /* 4. the connection limit: t + u fill it, v is closed at once */
    assert_int_equal(t_client_open(&u, c->client_port[0]), 0);
    t_pump(&c->loop, 50);
    assert_int_equal(rt_client_port_conns(rt_server_clients(c->srv[0])), 2);
    assert_int_equal(t_client_open(&v, c->client_port[0]), 0);
    /* a clear refusal: one ERROR frame saying why, then the close */
    assert_int_equal(t_next(c, &v, &m, 2000), 1);
    assert_int_equal(m.type, WIRE_MSG_ERROR);
    assert_int_equal(m.error.status, WIRE_STATUS_RESOURCE_LIMIT);
    assert_int_equal(t_next(c, &v, &m, 2000), -1);
    t_client_close(&v);
    /* a closed connection is forgotten, its slot is free again */
    t_client_close(&u);
    const uint64_t end = tnet_now_ms() + T_WAIT_MS;
    while (rt_client_port_conns(rt_server_clients(c->srv[0])) != 1 && tnet_now_ms() < end)
        t_turn(&c->loop);
    assert_int_equal(rt_client_port_conns(rt_server_clients(c->srv[0])), 1);
    assert_int_equal(t_client_open(&v, c->client_port[0]), 0);
    t_send_raw(c, &v, good, (size_t)good_len);
    assert_int_equal(t_next(c, &v, &m, 2000), 1);
    assert_int_equal(m.type, WIRE_MSG_HEARTBEAT);
    rt_client_port_stats_t st;
    rt_client_port_stats(rt_server_clients(c->srv[0]), &st);
    assert_int_equal(st.bad_frames, 2);
    assert_int_equal(st.refused_full, 1);
    t_client_close(&v);
    t_client_close(&t);
    t_cluster_free(c);
    *(tcluster_t **)*state = NULL;
}

/* The token preamble ("CHLA", u32 LE length, token). */
static void t_send_auth(tcluster_t *c, tclient_t *t, const char *token) {
    uint8_t b[8 + 64];
    const uint32_t len = (uint32_t)strlen(token);
    assert_true(len <= 64);
    memcpy(b, "CHLA", 4);
    for (uint32_t i = 0; i < 4; i++) b[4 + i] = (uint8_t)(len >> (8 * i));
    memcpy(b + 8, token, len);
    t_send_raw(c, t, b, 8 + len);
}

/* HEARTBEAT(0): 1 = the session answer, 2 = another frame (NOT_LEADER
 * before the election), -1 = the server closed, 0 = no answer. */
static int t_hello(tcluster_t *c, tclient_t *t) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_HEARTBEAT;
    t_send(c, t, &m);
    const int r = t_next(c, t, &m, 2000);
    return r > 0 && m.type != WIRE_MSG_HEARTBEAT ? 2 : r;
}

/* With a token, a client that skips it, sends a wrong one (same length or
 * not) is closed before the node hears a byte; the right token is served. */
static void test_client_port_token(void **state) {
    tcluster_t *c = t_cluster_new(1);
    *(tcluster_t **)*state = c;
    c->token = "sesame-0123456789";
    assert_int_equal(t_server_start(c, 0), 0);
    tclient_t t;
    /* wait for the leader with the right token */
    const uint64_t end = tnet_now_ms() + T_WAIT_MS;
    int ok = -1;
    while (ok != 1 && tnet_now_ms() < end) {
        assert_int_equal(t_client_open(&t, c->client_port[0]), 0);
        t_send_auth(c, &t, c->token);
        ok = t_hello(c, &t);
        t_client_close(&t);
        t_pump(&c->loop, 30);
    }
    assert_int_equal(ok, 1);
    static const char *const wrong[] = {NULL, "sesame-0123456788", "sesame", ""};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        assert_int_equal(t_client_open(&t, c->client_port[0]), 0);
        if (wrong[i] != NULL) t_send_auth(c, &t, wrong[i]);
        assert_int_equal(t_hello(c, &t), -1);
        t_client_close(&t);
    }
    rt_client_port_stats_t st;
    rt_client_port_stats(rt_server_clients(c->srv[0]), &st);
    assert_int_equal(st.auth_refused, 4);
    t_cluster_free(c);
    *(tcluster_t **)*state = NULL;
}

/* Handshake, idle and partial-frame timeouts close the connection; a
 * connection that keeps talking stays. */
static void test_client_port_timeouts(void **state) {
    tcluster_t *c = t_cluster_new(1);
    *(tcluster_t **)*state = c;
    c->handshake_ms = 300;
    c->idle_ms = 600;
    c->frame_ms = 300;
    assert_int_equal(t_server_start(c, 0), 0);
    tclient_t live, silent, idle, partial;
    wire_msg_t m;
    assert_int_equal(t_connect_leader(c, &live, T_WAIT_MS), 0);
    assert_int_equal(t_client_open(&silent, c->client_port[0]), 0);
    assert_int_equal(t_client_open(&idle, c->client_port[0]), 0);
    assert_int_equal(t_hello(c, &idle), 1);
    assert_int_equal(t_client_open(&partial, c->client_port[0]), 0);
    assert_int_equal(t_hello(c, &partial), 1);
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_HEARTBEAT;
    uint8_t good[64];
    const int good_len = wire_encode(&m, good, sizeof good);
    assert_true(good_len > (int)WIRE_HEADER_SIZE);
    t_send_raw(c, &partial, good, WIRE_HEADER_SIZE); /* header only */
    /* silent: handshake; partial: frame timeout; idle: idle timeout. live
     * sends a heartbeat every 100 ms and must stay. */
    for (uint32_t round = 0; round < 12; round++) {
        memset(&m, 0, sizeof m);
        m.type = WIRE_MSG_HEARTBEAT;
        m.heartbeat.session_id = live.epoch;
        t_send(c, &live, &m);
        assert_int_equal(t_next(c, &live, &m, 1000), 1);
        t_pump(&c->loop, 100);
    }
    assert_int_equal(t_next(c, &silent, &m, 500), -1);
    assert_int_equal(t_next(c, &idle, &m, 500), -1);
    assert_int_equal(t_next(c, &partial, &m, 500), -1);
    rt_client_port_stats_t st;
    rt_client_port_stats(rt_server_clients(c->srv[0]), &st);
    assert_int_equal(st.timeouts, 3);
    assert_int_equal(rt_client_port_conns(rt_server_clients(c->srv[0])), 1);
    t_client_close(&live);
    t_client_close(&silent);
    t_client_close(&idle);
    t_client_close(&partial);
    t_cluster_free(c);
    *(tcluster_t **)*state = NULL;
}

/* A data dir held by a running server is refused with a clear message; bad
 * configurations are refused before anything starts. */
static void test_locked_dir_and_bad_config(void **state) {
    tcluster_t *c = t_cluster_new(1);
    *(tcluster_t **)*state = c;
    assert_int_equal(t_server_start(c, 0), 0);
    char other[32];
    snprintf(other, sizeof other, "127.0.0.1:%d", t_free_port());
    const char *peers[1] = {other};
    rt_server_config_t cfg = {
        .node_id = 0, .peers = peers, .peers_count = 1, .client_addr = "127.0.0.1:0",
        .data_dir = c->dirs[0], .broker = c->bcfg, .log_level = RT_LOG_ERROR,
    };
    char err[RT_SERVER_ERR_MAX] = "";
    rt_server_t *s2 = NULL;
    assert_int_equal(rt_server_new(&c->loop, &cfg, &s2, err, sizeof err), 0);
    assert_int_equal(rt_server_start(s2, err, sizeof err), RT_ELOCKED);
    assert_non_null(strstr(err, "in use by process"));
    rt_server_free(s2);

    /* id out of range, a bad peer, a bad client address, a bad strategy */
    cfg.node_id = 1;
    assert_int_equal(rt_server_new(&c->loop, &cfg, &s2, err, sizeof err), IO_EINVAL);
    cfg.node_id = 0;
    const char *bad_peers[1] = {"no-such-host:7000"};
    cfg.peers = bad_peers;
    assert_int_equal(rt_server_new(&c->loop, &cfg, &s2, err, sizeof err), RT_EADDR);
    assert_non_null(strstr(err, "no-such-host"));
    cfg.peers = peers;
    cfg.client_addr = "127.0.0.1:99999";
    assert_int_equal(rt_server_new(&c->loop, &cfg, &s2, err, sizeof err), RT_EADDR);
    cfg.client_addr = "127.0.0.1:0";
    /* a token too long, a timeout past the cap */
    char long_token[RT_CLIENT_TOKEN_MAX + 1];
    memset(long_token, 'k', sizeof long_token - 1);
    long_token[sizeof long_token - 1] = '\0';
    cfg.client_token = long_token;
    assert_int_equal(rt_server_new(&c->loop, &cfg, &s2, err, sizeof err), IO_EINVAL);
    cfg.client_token = NULL;
    cfg.idle_timeout_ms = RT_CLIENT_TIMEOUT_MS_MAX + 1;
    assert_int_equal(rt_server_new(&c->loop, &cfg, &s2, err, sizeof err), IO_EINVAL);
    cfg.idle_timeout_ms = 0;
    cfg.broker.heartbeat_interval_ns = cfg.broker.election_timeout_min_ns;
    assert_int_equal(rt_server_new(&c->loop, &cfg, &s2, err, sizeof err), IO_EINVAL);
    assert_non_null(strstr(err, "strategy"));

    /* a busy client port: the node stops again and the dir is free after */
    cfg.broker = c->bcfg;
    char busy[32];
    snprintf(busy, sizeof busy, "127.0.0.1:%d", c->client_port[0]);
    cfg.client_addr = busy;
    t_server_stop(c, 0);
    assert_int_equal(t_server_start(c, 0), 0);
    snprintf(busy, sizeof busy, "127.0.0.1:%d", c->client_port[0]);
    char dir2[160];
    snprintf(dir2, sizeof dir2, "%s/other", c->root);
    cfg.data_dir = dir2;
    assert_int_equal(rt_server_new(&c->loop, &cfg, &s2, err, sizeof err), 0);
    assert_int_equal(rt_server_start(s2, err, sizeof err), RT_EBIND);
    assert_non_null(strstr(err, "client port"));
    rt_server_free(s2);
    t_pump(&c->loop, 50);
    t_cluster_free(c);
    *(tcluster_t **)*state = NULL;
}

/* A failed assertion jumps out of a test: free its cluster (servers, loop,
 * temp dirs) here. */
static int t_setup(void **state) {
    *state = calloc(1, sizeof(tcluster_t *));
    return *state == NULL;
}

static int t_teardown(void **state) {
    tcluster_t **slot = *state;
    if (*slot != NULL) t_cluster_free(*slot);
    free(slot);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_failover_keeps_confirmed, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_restart_recovers_meta_snapshot_log, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_closed_client_returns_unacked, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_client_port_rejects_bad_input, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_locked_dir_and_bad_config, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_client_port_token, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_client_port_timeouts, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
