/*
 * tests/test_runtime_io.c — the libuv runtime with real TCP and real files.
 *
 * One uv loop hosts up to two nodes (two rt_io_t on 127.0.0.1 ports picked
 * free by the kernel) running a tiny test program that records everything
 * it sees. Every wait is bounded (run_until with a timeout), and every
 * fixture checks at teardown that all libuv handles closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/lock.h"
#include "runtime/uv_io.h"
#include "tests/support/tnet.h"

#define T_LOG_MAX 1024u
#define T_NODES 2u
#define T_NS_PER_MS UINT64_C(1000000)

/* ---- the test program -------------------------------------------------- */

typedef struct tnode {
    const io_t *io;
    rt_io_t *rt;
    int booted, halted, graceful;
    int echo;            /* send every message back to its sender */
    int stop_on_message; /* rt_io_stop from inside on_message */
    uint32_t rearm_past; /* on_timer re-arms its token in the past this often */
    int in_handler, halted_in_handler;
    uint32_t msgs;
    uint32_t msg_from[T_LOG_MAX], msg_seq[T_LOG_MAX];
    size_t msg_len[T_LOG_MAX];
    int msg_bad; /* payload pattern mismatches */
    uint32_t timers;
    uint64_t timer_token[T_LOG_MAX], timer_at_ns[T_LOG_MAX];
    uint32_t disks;
    uint64_t disk_token[T_LOG_MAX];
    int64_t disk_result[T_LOG_MAX];
    uint8_t rbuf[4][64];
} tnode_t;

static void *t_boot(void *arg, const io_t *io) {
    tnode_t *n = arg;
    n->io = io;
    n->booted++;
    return n;
}

static void t_halt(void *node, int graceful) {
    tnode_t *n = node;
    n->halted++;
    n->graceful = graceful;
    if (n->in_handler) n->halted_in_handler = 1;
}

/* Message = u32 seq (little-endian) + bytes (seq + i) & 0xff. */
static size_t t_msg_make(uint8_t *buf, uint32_t seq, size_t len) {
    assert_true(len >= 4);
    memcpy(buf, &seq, 4);
    for (size_t i = 4; i < len; i++) buf[i] = (uint8_t)(seq + i);
    return len;
}

static void t_on_message(void *node, io_addr_t from, const uint8_t *b, size_t len) {
    tnode_t *n = node;
    uint32_t seq = UINT32_MAX;
    if (len >= 4) {
        memcpy(&seq, b, 4);
        for (size_t i = 4; i < len; i++) {
            if (b[i] != (uint8_t)(seq + i)) {
                n->msg_bad++;
                break;
            }
        }
    }
    if (n->msgs < T_LOG_MAX) {
        n->msg_from[n->msgs] = from;
        n->msg_seq[n->msgs] = seq;
        n->msg_len[n->msgs] = len;
    }
    n->msgs++;
    if (n->echo) io_send(n->io, from, b, len);
    if (n->stop_on_message) {
        n->in_handler = 1;
        rt_io_stop(n->rt);
        n->in_handler = 0;
    }
}

static void t_on_timer(void *node, uint64_t token) {
    tnode_t *n = node;
    if (n->timers < T_LOG_MAX) {
        n->timer_token[n->timers] = token;
        n->timer_at_ns[n->timers] = io_now_ns(n->io);
    }
    n->timers++;
    if (n->rearm_past > 0) {
        n->rearm_past--;
        io_timer_set(n->io, 0, token);
    }
}

static void t_on_disk_done(void *node, uint64_t token, int64_t result) {
    tnode_t *n = node;
    if (n->disks < T_LOG_MAX) {
        n->disk_token[n->disks] = token;
        n->disk_result[n->disks] = result;
    }
    n->disks++;
}

static const io_handler_t t_handler = {t_on_message, t_on_timer, t_on_disk_done};
static const io_program_t t_program = {"test", t_boot, t_halt, &t_handler};

/* ---- fixture ----------------------------------------------------------- */

typedef struct fx {
    uv_loop_t loop;
    uv_timer_t tick;
    char dir[T_NODES][64];
    char addr[T_NODES][32];
    const char *peers[T_NODES];
    uint16_t port[T_NODES];
    rt_io_t *io[T_NODES];
    tnode_t node[T_NODES];
    rt_log_level_t level;
} fx_t;

static void tick_cb(uv_timer_t *t) { (void)t; }

static int setup(void **state) {
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->tick);
    tnet_kernel_ports(fx->port, T_NODES);
    for (unsigned i = 0; i < T_NODES; i++) {
        snprintf(fx->dir[i], sizeof(fx->dir[i]), "/tmp/chaoslab-rt-XXXXXX");
        assert_non_null(mkdtemp(fx->dir[i]));
        snprintf(fx->addr[i], sizeof(fx->addr[i]), "127.0.0.1:%u", fx->port[i]);
        fx->peers[i] = fx->addr[i];
    }
    fx->level = getenv("RT_TEST_DEBUG") != NULL ? RT_LOG_DEBUG : RT_LOG_ERROR;
    *state = fx;
    return 0;
}

/* Let every handle close; the loop must then be empty. */
static void drain_loop(fx_t *fx) {
    for (int i = 0; i < 2000; i++) {
        if (uv_run(&fx->loop, UV_RUN_NOWAIT) == 0) return;
        usleep(1000);
    }
    fail_msg("loop still has live handles after 2 s");
}

static int teardown(void **state) {
    fx_t *fx = *state;
    for (unsigned i = 0; i < T_NODES; i++) rt_io_free(fx->io[i]);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    drain_loop(fx);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    for (unsigned i = 0; i < T_NODES; i++) tnet_rm_tree(fx->dir[i]);
    free(fx);
    return 0;
}

static rt_config_t fx_config(fx_t *fx, unsigned id, unsigned peers_count) {
    rt_config_t cfg = {
        .node_id = id,
        .peers = fx->peers,
        .peers_count = peers_count,
        .data_dir = fx->dir[id],
        .log_level = fx->level,
    };
    return cfg;
}

static void fx_start(fx_t *fx, unsigned id, unsigned peers_count) {
    rt_config_t cfg = fx_config(fx, id, peers_count);
    assert_null(fx->io[id]);
    memset(&fx->node[id], 0, sizeof(fx->node[id]));
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[id]), 0);
    fx->node[id].rt = fx->io[id];
    assert_int_equal(rt_io_start(fx->io[id], &t_program, &fx->node[id]), 0);
    assert_int_equal(fx->node[id].booted, 1);
    assert_int_equal(rt_io_listen_port(fx->io[id]), fx->port[id]);
}

static void fx_kill(fx_t *fx, unsigned id) {
    rt_io_free(fx->io[id]);
    fx->io[id] = NULL;
}

typedef int (*pred_fn)(fx_t *fx, uintptr_t arg);

/* Run the loop until pred holds or timeout_ms passes; returns pred. */
static int run_until(fx_t *fx, pred_fn pred, uintptr_t arg, uint64_t timeout_ms) {
    uint64_t deadline = uv_hrtime() + timeout_ms * T_NS_PER_MS;
    uv_timer_start(&fx->tick, tick_cb, 5, 5); /* wakes UV_RUN_ONCE */
    int ok = pred(fx, arg);
    for (int i = 0; i < 1000000 && !ok && uv_hrtime() < deadline; i++) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        ok = pred(fx, arg);
    }
    uv_timer_stop(&fx->tick);
    return ok;
}

static int p_never(fx_t *fx, uintptr_t arg) { (void)fx; (void)arg; return 0; }
static void run_for(fx_t *fx, uint64_t ms) { run_until(fx, p_never, 0, ms); }

static int p_linked(fx_t *fx, uintptr_t arg) {
    (void)arg;
    return fx->io[0] && fx->io[1] && rt_io_peer_connected(fx->io[0], 1) &&
           rt_io_peer_connected(fx->io[1], 0);
}
static int p_msgs0(fx_t *fx, uintptr_t n) { return fx->node[0].msgs >= n; }
static int p_msgs1(fx_t *fx, uintptr_t n) { return fx->node[1].msgs >= n; }
static int p_disks0(fx_t *fx, uintptr_t n) { return fx->node[0].disks >= n; }
static int p_timers0(fx_t *fx, uintptr_t n) { return fx->node[0].timers >= n; }
static int p_down0(fx_t *fx, uintptr_t arg) {
    (void)arg;
    return !rt_io_peer_connected(fx->io[0], 1);
}
static int p_rejected0(fx_t *fx, uintptr_t n) {
    rt_stats_t st;
    rt_io_stats(fx->io[0], &st);
    return st.frames_rejected >= n;
}

static void send_seq(fx_t *fx, unsigned from, unsigned to, uint32_t seq, size_t len) {
    static uint8_t buf[2u * 1024u * 1024u];
    assert_true(len <= sizeof(buf));
    t_msg_make(buf, seq, len);
    assert_int_equal(io_send(rt_io_io(fx->io[from]), to, buf, len), 0);
}

/* ---- messages ---------------------------------------------------------- */

#define T_MSGS 300u

static void test_echo_in_order(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 2);
    fx_start(fx, 1, 2);
    assert_true(run_until(fx, p_linked, 0, 3000));
    fx->node[1].echo = 1;
    for (uint32_t i = 0; i < T_MSGS; i++) {
        /* sizes cross read-buffer boundaries; one frame is 1 MiB */
        size_t len = i == 150 ? 1024u * 1024u : 4u + (i * 37u) % 3000u;
        send_seq(fx, 0, 1, i, len);
    }
    assert_true(run_until(fx, p_msgs0, T_MSGS, 4000));
    for (unsigned n = 0; n < T_NODES; n++) {
        assert_int_equal(fx->node[n].msgs, T_MSGS);
        assert_int_equal(fx->node[n].msg_bad, 0);
        for (uint32_t i = 0; i < T_MSGS; i++) {
            assert_int_equal(fx->node[n].msg_seq[i], i);
            assert_int_equal(fx->node[n].msg_from[i], 1 - n);
        }
    }
    assert_int_equal(fx->node[0].msg_len[150], 1024u * 1024u);
    rt_stats_t st;
    rt_io_stats(fx->io[0], &st);
    assert_int_equal(st.frames_sent, T_MSGS);
    assert_int_equal(st.frames_received, T_MSGS);
}

static void test_send_rejects_bad_dest_and_size(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 2); /* node 1 never starts: its link stays down */
    const io_t *io = rt_io_io(fx->io[0]);
    uint8_t b[8] = {0};
    assert_int_equal(io_send(io, 5, b, sizeof(b)), IO_EUNREACH);
    assert_int_equal(io_send(io, IO_ADDR_CLIENT_BASE, b, sizeof(b)), IO_EUNREACH);
    assert_int_equal(io_send(io, 1, NULL, 4), IO_EINVAL);
    static uint8_t big[IO_MESSAGE_SIZE_MAX + 1];
    assert_int_equal(io_send(io, 1, big, sizeof(big)), IO_EMSGSIZE);
    /* A peer that is down is loss, not an error. */
    assert_int_equal(io_send(io, 1, b, sizeof(b)), 0);
    rt_stats_t st;
    rt_io_stats(fx->io[0], &st);
    assert_int_equal(st.frames_dropped_down, 1);
    assert_int_equal(st.frames_sent, 0);
}

static void test_self_send_is_async(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    uint8_t b[16];
    t_msg_make(b, 7, sizeof(b));
    assert_int_equal(io_send(rt_io_io(fx->io[0]), 0, b, sizeof(b)), 0);
    assert_int_equal(fx->node[0].msgs, 0); /* never inside send */
    assert_true(run_until(fx, p_msgs0, 1, 1000));
    assert_int_equal(fx->node[0].msg_from[0], 0);
    assert_int_equal(fx->node[0].msg_seq[0], 7);
}

static void test_reconnect_after_restart(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 2);
    fx_start(fx, 1, 2);
    assert_true(run_until(fx, p_linked, 0, 3000));
    send_seq(fx, 0, 1, 1, 32);
    assert_true(run_until(fx, p_msgs1, 1, 2000));

    fx_kill(fx, 1);
    assert_true(run_until(fx, p_down0, 0, 2000));
    send_seq(fx, 0, 1, 2, 32); /* lost: returns 0 */
    rt_stats_t st;
    rt_io_stats(fx->io[0], &st);
    assert_true(st.frames_dropped_down >= 1);
    run_for(fx, 300); /* a few failed dials: backoff grows */

    fx_start(fx, 1, 2);
    assert_true(run_until(fx, p_linked, 0, 4000));
    fx->node[1].echo = 1;
    send_seq(fx, 0, 1, 3, 32);
    assert_true(run_until(fx, p_msgs0, 1, 2000));
    assert_int_equal(fx->node[1].msgs, 1);
    assert_int_equal(fx->node[1].msg_seq[0], 3);
    assert_int_equal(fx->node[0].msg_seq[0], 3);
    rt_io_stats(fx->io[0], &st);
    assert_true(st.connects >= 2);
    assert_true(st.disconnects >= 1);
}

/* A fake peer on a blocking socket: connect to node 0 and say hello. */
static int fake_peer(fx_t *fx, uint32_t magic, uint32_t from, uint32_t to) {
    const int fd = tnet_connect(fx->port[0]);
    assert_true(fd >= 0);
    uint32_t hello[3] = {htonl(magic), htonl(from), htonl(to)};
    assert_int_equal(send(fd, hello, sizeof(hello), 0), (ssize_t)sizeof(hello));
    return fd;
}

static int p_closed_fd(fx_t *fx, uintptr_t fd) {
    (void)fx;
    char c;
    ssize_t n = recv((int)fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void test_fake_peer_frame_delivered(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 2);
    int fd = fake_peer(fx, 0x43484c42u, 1, 0);
    uint8_t frame[4 + 8];
    uint32_t len = htonl(8);
    memcpy(frame, &len, 4);
    t_msg_make(frame + 4, 42, 8);
    assert_int_equal(send(fd, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
    assert_true(run_until(fx, p_msgs0, 1, 2000));
    assert_int_equal(fx->node[0].msg_from[0], 1);
    assert_int_equal(fx->node[0].msg_seq[0], 42);
    assert_false(p_closed_fd(fx, (uintptr_t)fd));
    close(fd);
}

static void test_oversized_frame_closes_link(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 2);
    int fd = fake_peer(fx, 0x43484c42u, 1, 0);
    uint32_t len = htonl(IO_MESSAGE_SIZE_MAX + 1);
    assert_int_equal(send(fd, &len, 4, 0), 4);
    assert_true(run_until(fx, p_rejected0, 1, 2000));
    assert_true(run_until(fx, p_closed_fd, (uintptr_t)fd, 2000));
    close(fd);
    assert_int_equal(fx->node[0].msgs, 0);
    /* The node lives on: a real node 1 links up and talks. */
    fx_start(fx, 1, 2);
    assert_true(run_until(fx, p_linked, 0, 3000));
    send_seq(fx, 1, 0, 9, 64);
    assert_true(run_until(fx, p_msgs0, 1, 2000));
    assert_int_equal(fx->node[0].msg_seq[0], 9);
}

static void test_bad_hello_closes_link(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 2);
    int bad[3] = {
        fake_peer(fx, 0xdeadbeefu, 1, 0), /* wrong magic */
        fake_peer(fx, 0x43484c42u, 0, 0), /* claims to be node 0 itself */
        fake_peer(fx, 0x43484c42u, 1, 3), /* dialed the wrong node */
    };
    for (int i = 0; i < 3; i++) {
        assert_true(run_until(fx, p_closed_fd, (uintptr_t)bad[i], 2000));
        close(bad[i]);
    }
    assert_true(p_rejected0(fx, 3));
    assert_int_equal(fx->node[0].msgs, 0);
}

/* ---- timers ------------------------------------------------------------ */

static void test_timers_order_cancel_rearm(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    const io_t *io = rt_io_io(fx->io[0]);
    uint64_t now = io_now_ns(io);
    uint64_t ms = T_NS_PER_MS;
    assert_int_equal(io_timer_set(io, now + 30 * ms, 3), 0);
    assert_int_equal(io_timer_set(io, now + 10 * ms, 1), 0);
    assert_int_equal(io_timer_set(io, now + 20 * ms, 2), 0);
    assert_int_equal(io_timer_set(io, now + 15 * ms, 4), 0);
    assert_int_equal(io_timer_cancel(io, 4), 0);
    assert_int_equal(io_timer_cancel(io, 99), 0); /* never armed: fine */
    assert_int_equal(io_timer_set(io, now + 5 * ms, 5), 0);
    assert_int_equal(io_timer_set(io, now + 40 * ms, 5), 0); /* replaces */
    assert_int_equal(io_timer_set(io, now - 1, 6), 0);        /* past */
    assert_int_equal(fx->node[0].timers, 0); /* never synchronous */
    assert_true(run_until(fx, p_timers0, 5, 2000));
    run_for(fx, 30); /* cancelled 4 and the old 5 must stay silent */
    tnode_t *n = &fx->node[0];
    assert_int_equal(n->timers, 5);
    const uint64_t want[5] = {6, 1, 2, 3, 5};
    const uint64_t due[5] = {0, 10, 20, 30, 40};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(n->timer_token[i], want[i]);
        assert_true(n->timer_at_ns[i] >= now + due[i] * ms);
    }
}

static void test_timer_rearmed_in_past_waits_a_turn(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    fx->node[0].rearm_past = 19;
    assert_int_equal(io_timer_set(rt_io_io(fx->io[0]), 0, 77), 0);
    /* One loop turn fires it once: the re-armed token waits, so a node
     * stuck re-arming in the past cannot starve the network. */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->node[0].timers, 1);
    assert_true(run_until(fx, p_timers0, 20, 2000));
    run_for(fx, 10);
    assert_int_equal(fx->node[0].timers, 20);
    assert_int_equal(fx->node[0].timer_token[19], 77);
}

static void test_timers_bounded_and_stopped(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    const io_t *io = rt_io_io(fx->io[0]);
    uint64_t later = io_now_ns(io) + 60ull * 1000 * T_NS_PER_MS;
    for (uint64_t t = 0; t < RT_TIMERS_MAX; t++) {
        assert_int_equal(io_timer_set(io, later, t), 0);
    }
    assert_int_equal(io_timer_set(io, later, RT_TIMERS_MAX), IO_ENOMEM);
    assert_int_equal(io_timer_set(io, later + 1, 7), 0); /* re-arm still fits */
    rt_io_stop(fx->io[0]);
    assert_int_equal(io_timer_set(io, later, 1), IO_ECANCELED);
    assert_int_equal(fx->node[0].halted, 1);
    assert_int_equal(fx->node[0].graceful, 1);
}

/* ---- disk -------------------------------------------------------------- */

typedef struct listing {
    int count;
    char names[8][IO_FILE_NAME_MAX + 1];
    uint64_t sizes[8];
    int stop_after;
} listing_t;

static int list_cb(void *arg, const char *name, uint64_t size) {
    listing_t *l = arg;
    if (l->count < 8) {
        snprintf(l->names[l->count], sizeof(l->names[0]), "%s", name);
        l->sizes[l->count] = size;
    }
    l->count++;
    return l->stop_after > 0 && l->count >= l->stop_after ? 7 : 0;
}

static void test_disk_ops_in_order(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    const io_t *io = rt_io_io(fx->io[0]);
    tnode_t *n = &fx->node[0];
    assert_int_equal(io_disk_write(io, "a.log", 0, (const uint8_t *)"hello world", 11, 1), 0);
    assert_int_equal(io_disk_write(io, "a.log", 6, (const uint8_t *)"there", 5, 2), 0);
    assert_int_equal(io_disk_read(io, "a.log", 0, n->rbuf[0], 64, 3), 0);
    assert_int_equal(io_disk_fsync(io, "a.log", 4), 0);
    assert_int_equal(io_disk_truncate(io, "a.log", 5, 5), 0);
    assert_int_equal(io_disk_read(io, "a.log", 0, n->rbuf[1], 64, 6), 0);
    assert_int_equal(io_disk_read(io, "a.log", 100, n->rbuf[2], 64, 7), 0);
    assert_int_equal(io_disk_write(io, "c.dat", 0, (const uint8_t *)"ccc", 3, 8), 0);
    assert_int_equal(io_disk_write(io, "b.dat", 10, (const uint8_t *)"bb", 2, 9), 0);
    assert_int_equal(io_disk_truncate(io, "c.dat", 4096, 10), 0);
    assert_int_equal(io_disk_read(io, "missing", 0, n->rbuf[3], 8, 11), 0);
    assert_int_equal(io_disk_fsync(io, "missing", 12), 0);
    assert_int_equal(io_disk_truncate(io, "missing", 1, 13), 0);
    assert_int_equal(io_disk_remove(io, "missing", 14), 0);
    assert_int_equal(io_disk_write(io, "Zed", 0, (const uint8_t *)"z", 1, 15), 0);
    assert_int_equal(n->disks, 0); /* completions are asynchronous */
    assert_true(run_until(fx, p_disks0, 15, 3000));
    const int64_t want[15] = {11, 5, 11, 0, 0, 5, 0, 3, 2, 0,
                              IO_ENOENT, IO_ENOENT, IO_ENOENT, IO_ENOENT, 1};
    for (int i = 0; i < 15; i++) {
        assert_int_equal(n->disk_token[i], (uint64_t)(i + 1)); /* issue order */
        assert_int_equal(n->disk_result[i], want[i]);
    }
    assert_memory_equal(n->rbuf[0], "hello there", 11);
    assert_memory_equal(n->rbuf[1], "hello", 5);

    uint64_t size = 0;
    assert_int_equal(io_disk_size(io, "a.log", &size), 0);
    assert_int_equal(size, 5);
    assert_int_equal(io_disk_size(io, "b.dat", &size), 0);
    assert_int_equal(size, 12);
    assert_int_equal(io_disk_size(io, "c.dat", &size), 0);
    assert_int_equal(size, 4096);
    assert_int_equal(io_disk_size(io, "missing", &size), IO_ENOENT);

    /* Real files: the bytes are in the data dir. */
    char path[128];
    snprintf(path, sizeof(path), "%s/a.log", fx->dir[0]);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char text[16] = {0};
    assert_int_equal(fread(text, 1, sizeof(text), f), 5);
    fclose(f);
    assert_string_equal(text, "hello");

    /* list: byte order, no LOCK, no directories */
    snprintf(path, sizeof(path), "%s/LOCK", fx->dir[0]);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/subdir", fx->dir[0]);
    assert_int_equal(mkdir(path, 0755), 0);
    listing_t l = {0};
    assert_int_equal(io_disk_list(io, list_cb, &l), 0);
    assert_int_equal(l.count, 4);
    assert_string_equal(l.names[0], "Zed");
    assert_string_equal(l.names[1], "a.log");
    assert_string_equal(l.names[2], "b.dat");
    assert_string_equal(l.names[3], "c.dat");
    assert_int_equal(l.sizes[2], 12);
    listing_t early = {.stop_after = 2};
    assert_int_equal(io_disk_list(io, list_cb, &early), 7);
    assert_int_equal(early.count, 2);

    assert_int_equal(io_disk_remove(io, "a.log", 16), 0);
    assert_true(run_until(fx, p_disks0, 16, 2000));
    assert_int_equal(n->disk_result[15], 0);
    assert_int_equal(io_disk_size(io, "a.log", &size), IO_ENOENT);
}

static void test_disk_write_copies_bytes(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    const io_t *io = rt_io_io(fx->io[0]);
    tnode_t *n = &fx->node[0];
    uint8_t src[4] = {'a', 'b', 'c', 'd'};
    assert_int_equal(io_disk_write(io, "f", 0, src, sizeof(src), 1), 0);
    memset(src, 'x', sizeof(src)); /* the caller reuses its buffer at once */
    assert_int_equal(io_disk_read(io, "f", 0, n->rbuf[0], 4, 2), 0);
    assert_true(run_until(fx, p_disks0, 2, 2000));
    assert_int_equal(n->disk_result[1], 4);
    assert_memory_equal(n->rbuf[0], "abcd", 4);
}

static void test_disk_bad_names_rejected(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    const io_t *io = rt_io_io(fx->io[0]);
    tnode_t *n = &fx->node[0];
    char longname[IO_FILE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const char *bad[] = {"", "a/b", "..", "../x", ".", "LOCK", "x..y"};
    const uint8_t b[1] = {1};
    uint64_t size;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(io_disk_write(io, bad[i], 0, b, 1, 1), IO_EINVAL);
        assert_int_equal(io_disk_read(io, bad[i], 0, n->rbuf[0], 1, 1), IO_EINVAL);
        assert_int_equal(io_disk_fsync(io, bad[i], 1), IO_EINVAL);
        assert_int_equal(io_disk_truncate(io, bad[i], 0, 1), IO_EINVAL);
        assert_int_equal(io_disk_remove(io, bad[i], 1), IO_EINVAL);
        assert_int_equal(io_disk_size(io, bad[i], &size), IO_EINVAL);
    }
    assert_int_equal(io_disk_write(io, NULL, 0, b, 1, 1), IO_EINVAL);
    assert_int_equal(io_disk_write(io, longname, 0, b, 1, 1), IO_ENAMETOOLONG);
    assert_int_equal(io_disk_write(io, "ok", UINT64_MAX, b, 1, 1), IO_EINVAL);
    longname[IO_FILE_NAME_MAX] = '\0'; /* exactly the limit is fine */
    assert_int_equal(io_disk_write(io, longname, 0, b, 1, 2), 0);
    assert_true(run_until(fx, p_disks0, 1, 2000));
    run_for(fx, 20);
    assert_int_equal(n->disks, 1); /* no completion for a rejected call */
    assert_int_equal(n->disk_token[0], 2);
}

/* ---- lifecycle, clients, signals, logs ------------------------------------ */

static void test_stop_inside_handler_is_deferred(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    fx->node[0].stop_on_message = 1;
    uint8_t b[8];
    t_msg_make(b, 1, sizeof(b));
    assert_int_equal(io_send(rt_io_io(fx->io[0]), 0, b, sizeof(b)), 0);
    assert_int_equal(io_send(rt_io_io(fx->io[0]), 0, b, sizeof(b)), 0);
    assert_true(run_until(fx, p_msgs0, 1, 1000));
    run_for(fx, 20);
    assert_int_equal(fx->node[0].halted, 1);
    assert_int_equal(fx->node[0].halted_in_handler, 0);
    assert_int_equal(fx->node[0].msgs, 1); /* nothing after the halt */
    assert_false(rt_io_running(fx->io[0]));
}

typedef struct client_sink {
    int calls;
    io_addr_t dest;
    size_t len;
} client_sink_t;

static int client_hook(void *arg, io_addr_t dest, const uint8_t *b, size_t len) {
    client_sink_t *s = arg;
    s->calls++;
    s->dest = dest;
    s->len = len;
    (void)b;
    return 0;
}

static void test_client_endpoints(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    rt_io_t *rt = fx->io[0];
    const io_t *io = rt_io_io(rt);
    client_sink_t sink = {0};
    rt_io_set_client_hook(rt, client_hook, &sink);
    io_addr_t a1, a2;
    assert_int_equal(rt_io_client_open(rt, &a1), 0);
    assert_int_equal(rt_io_client_open(rt, &a2), 0);
    assert_int_equal(a1, IO_ADDR_CLIENT_BASE);
    assert_int_equal(a2, IO_ADDR_CLIENT_BASE + 1);
    uint8_t b[12];
    t_msg_make(b, 5, sizeof(b));
    assert_int_equal(io_send(io, a2, b, sizeof(b)), 0);
    assert_int_equal(sink.calls, 1);
    assert_int_equal(sink.dest, a2);
    assert_int_equal(sink.len, sizeof(b));
    assert_int_equal(io_send(io, a2 + 1, b, sizeof(b)), IO_EUNREACH);
    assert_int_equal(rt_io_client_deliver(rt, a1, b, sizeof(b)), 0);
    assert_int_equal(fx->node[0].msgs, 1);
    assert_int_equal(fx->node[0].msg_from[0], a1);
    assert_int_equal(rt_io_client_deliver(rt, a2 + 1, b, sizeof(b)), IO_EUNREACH);
    assert_int_equal(rt_io_client_deliver(rt, 0, b, sizeof(b)), IO_EUNREACH);
    rt_io_set_client_hook(rt, NULL, NULL);
    assert_int_equal(io_send(io, a1, b, sizeof(b)), 0); /* dropped */
    assert_int_equal(sink.calls, 1);
}

typedef struct sig_seen {
    int calls, signum;
} sig_seen_t;

static void on_sig(void *arg, int signum) {
    sig_seen_t *s = arg;
    s->calls++;
    s->signum = signum;
}

static int p_stopped0(fx_t *fx, uintptr_t arg) {
    (void)arg;
    return !rt_io_running(fx->io[0]);
}

static void test_signal_stops_node(void **state) {
    fx_t *fx = *state;
    fx_start(fx, 0, 1);
    rt_signals_t sigs;
    sig_seen_t seen = {0};
    assert_int_equal(rt_signals_start(&sigs, &fx->loop, fx->io[0], on_sig, &seen), 0);
    assert_int_equal(raise(SIGTERM), 0);
    assert_true(run_until(fx, p_stopped0, 0, 2000));
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.signum, SIGTERM);
    assert_int_equal(sigs.signum, SIGTERM);
    assert_int_equal(fx->node[0].halted, 1);
    assert_int_equal(fx->node[0].graceful, 1);
    rt_signals_close(&sigs); /* already closed: idempotent */
    assert_int_equal(rt_signals_start(NULL, &fx->loop, NULL, NULL, NULL), IO_EINVAL);
}

static void test_config_rejected(void **state) {
    fx_t *fx = *state;
    rt_io_t *io = NULL;
    rt_config_t cfg = fx_config(fx, 2, 2); /* id out of range */
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &io), IO_EINVAL);
    cfg = fx_config(fx, 0, 0);
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &io), IO_EINVAL);
    cfg = fx_config(fx, 0, 2);
    cfg.data_dir = NULL;
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &io), IO_EINVAL);
    const char *bad_peers[2] = {"127.0.0.1:7000", "nohost"};
    cfg = fx_config(fx, 0, 2);
    cfg.peers = bad_peers;
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &io), RT_EADDR);
    assert_null(io);

    struct sockaddr_storage ss;
    assert_int_equal(rt_parse_addr("127.0.0.1:7000", &ss), 0);
    assert_int_equal(rt_parse_addr("localhost:1", &ss), 0);
    assert_int_equal(rt_parse_addr("[::1]:65535", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    const char *bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:7x", ":80", "example.com:80", "[::1:80",
                         "1.2.3:80", "127.0.0.1:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rt_parse_addr(bad[i], &ss), RT_EADDR);
    }
}

static void test_busy_port_and_missing_dir(void **state) {
    fx_t *fx = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(fx->port[0])};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    FILE *quiet = fopen("/dev/null", "w"); /* the errors are expected */
    assert_non_null(quiet);
    rt_config_t cfg = fx_config(fx, 0, 1);
    cfg.log_out = quiet;
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[0]), 0);
    assert_int_equal(rt_io_start(fx->io[0], &t_program, &fx->node[0]), RT_EBIND);
    assert_int_equal(fx->node[0].booted, 0);
    assert_int_equal(rt_io_start(fx->io[0], &t_program, &fx->node[0]), RT_ESTATE);
    close(fd);
    cfg = fx_config(fx, 1, 2);
    cfg.log_out = quiet;
    cfg.data_dir = "/tmp/chaoslab-rt-no-such-dir/x";
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[1]), 0);
    assert_int_equal(rt_io_start(fx->io[1], &t_program, &fx->node[1]), RT_EDIR);
    assert_int_equal(fx->node[1].booted, 0);
    drain_loop(fx); /* close the handles before `quiet` goes */
    fx_kill(fx, 0);
    fx_kill(fx, 1);
    drain_loop(fx);
    fclose(quiet);
}

static void *t_boot_fail(void *arg, const io_t *io) {
    tnode_t *n = arg;
    n->booted++;
    /* a half-booted node may have armed a timer and issued a write */
    io_timer_set(io, 0, 1);
    io_disk_write(io, "x", 0, (const uint8_t *)"x", 1, 1);
    return NULL;
}

static void test_boot_failure(void **state) {
    fx_t *fx = *state;
    static const io_program_t failing = {"failing", t_boot_fail, t_halt, &t_handler};
    FILE *quiet = fopen("/dev/null", "w");
    assert_non_null(quiet);
    rt_config_t cfg = fx_config(fx, 0, 1);
    cfg.log_out = quiet;
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[0]), 0);
    assert_int_equal(rt_io_start(fx->io[0], &failing, &fx->node[0]), RT_EBOOT);
    assert_int_equal(fx->node[0].booted, 1);
    assert_false(rt_io_running(fx->io[0]));
    run_for(fx, 30);
    assert_int_equal(fx->node[0].timers, 0); /* nothing reaches a dead node */
    assert_int_equal(fx->node[0].disks, 0);
    assert_int_equal(fx->node[0].halted, 0); /* never booted: never halted */
    fx_kill(fx, 0);
    drain_loop(fx);
    fclose(quiet);
}

static void test_random_streams(void **state) {
    fx_t *fx = *state;
    rt_config_t cfg = fx_config(fx, 0, 1);
    cfg.seed = 42;
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[0]), 0);
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[1]), 0);
    uint64_t x = io_random_u64(rt_io_io(fx->io[0]));
    assert_int_equal(x, io_random_u64(rt_io_io(fx->io[1]))); /* same seed */
    assert_int_not_equal(x, io_random_u64(rt_io_io(fx->io[0]))); /* moves on */
    rt_io_free(fx->io[0]);
    rt_io_free(fx->io[1]);
    cfg.seed = 0; /* from the OS: two nodes differ */
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[0]), 0);
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[1]), 0);
    assert_int_not_equal(io_random_u64(rt_io_io(fx->io[0])),
                         io_random_u64(rt_io_io(fx->io[1])));
}

static void test_data_dir_lock(void **state) {
    fx_t *fx = *state;
    char dir[96];
    snprintf(dir, sizeof(dir), "%s/new", fx->dir[0]); /* created on demand */
    rt_lock_t first, second;
    assert_int_equal(rt_lock_data_dir(dir, &first), 0);
    assert_true(first.fd >= 0);
    /* flock is per open file description: a second open conflicts even in
     * this process, which is what a second broker would see. */
    assert_int_equal(rt_lock_data_dir(dir, &second), RT_ELOCKED);
    assert_int_equal(second.fd, -1);
    assert_int_equal(second.holder_pid, (long)getpid());
    char pid[32];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    assert_non_null(strstr(second.message, pid));
    rt_lock_release(&first);
    assert_int_equal(rt_lock_data_dir(dir, &second), 0);
    rt_lock_release(&second);
    rt_lock_release(&second); /* idempotent */
    assert_int_equal(rt_lock_data_dir(NULL, &second), IO_EINVAL);
    assert_int_equal(rt_lock_data_dir("", &second), IO_EINVAL);
    assert_int_equal(rt_lock_data_dir("/proc/no/such/dir", &second), RT_EDIR);
    assert_true(second.message[0] != '\0');
}

static void test_log_levels_and_trace(void **state) {
    fx_t *fx = *state;
    rt_log_level_t level = RT_LOG_ERROR;
    assert_int_equal(rt_log_level_parse("debug", &level), 0);
    assert_int_equal(level, RT_LOG_DEBUG);
    assert_int_equal(rt_log_level_parse("loud", &level), IO_EINVAL);
    assert_int_equal(rt_log_level_parse(NULL, &level), IO_EINVAL);
    assert_int_equal(level, RT_LOG_DEBUG);

    FILE *out = tmpfile();
    assert_non_null(out);
    rt_config_t cfg = fx_config(fx, 0, 1);
    cfg.log_level = RT_LOG_WARN;
    cfg.log_out = out;
    assert_int_equal(rt_io_new(&fx->loop, &cfg, &fx->io[0]), 0);
    io_trace(rt_io_io(fx->io[0]), "hidden.event", "k=1");
    rt_log_write(rt_io_log(fx->io[0]), RT_LOG_WARN, "shown %d", 7);
    rt_io_log(fx->io[0])->level = RT_LOG_DEBUG;
    io_trace(rt_io_io(fx->io[0]), "raft.elected", "term=3");
    char text[512] = {0};
    rewind(out);
    size_t n = fread(text, 1, sizeof(text) - 1, out);
    fclose(out);
    assert_true(n > 0);
    assert_null(strstr(text, "hidden.event"));
    assert_non_null(strstr(text, "chaoslab[node 0] warn: shown 7\n"));
    assert_non_null(strstr(text, "debug: trace raft.elected term=3\n"));
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_echo_in_order),
        T(test_send_rejects_bad_dest_and_size),
        T(test_self_send_is_async),
        T(test_reconnect_after_restart),
        T(test_fake_peer_frame_delivered),
        T(test_oversized_frame_closes_link),
        T(test_bad_hello_closes_link),
        T(test_timers_order_cancel_rearm),
        T(test_timer_rearmed_in_past_waits_a_turn),
        T(test_timers_bounded_and_stopped),
        T(test_disk_ops_in_order),
        T(test_disk_write_copies_bytes),
        T(test_disk_bad_names_rejected),
        T(test_stop_inside_handler_is_deferred),
        T(test_client_endpoints),
        T(test_signal_stops_node),
        T(test_config_rejected),
        T(test_busy_port_and_missing_dir),
        T(test_boot_failure),
        T(test_random_streams),
        T(test_data_dir_lock),
        T(test_log_levels_and_trace),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
