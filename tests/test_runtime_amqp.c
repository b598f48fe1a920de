/*
 * tests/test_runtime_amqp.c — the AMQP 0-9-1 front end with real clients.
 *
 * Hosts one node or a 3-node cluster (rt_server_t with the rt_amqp hook) on
 * this process's loop, on free loopback ports with temp data dirs, and runs
 * the pika programs of tests/amqp/ against it (a follower too, in the
 * cluster). Each program exits 0 when its checks held. python3-pika is
 * required (scripts/setup.sh --test installs it): without it the test FAILS.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/raft.h"
#include "runtime/amqp_frontend.h"
#include "runtime/server.h"
#include "tests/support/tnet.h"

#define T_NODES_MAX 3u
#define T_PROGRAM_TIMEOUT_MS 30000u
#define T_LEADER_TIMEOUT_MS 10000u

typedef struct fx {
    uv_loop_t loop;
    uv_timer_t timer;
    unsigned n;
    char dir[T_NODES_MAX][64];
    char peer[T_NODES_MAX][32], client[T_NODES_MAX][32], amqp[T_NODES_MAX][32];
    const char *peers[T_NODES_MAX], *clients[T_NODES_MAX];
    uint16_t amqp_port[T_NODES_MAX];
    rt_server_t *srv[T_NODES_MAX];
    rt_amqp_t *fe[T_NODES_MAX];
    int timed_out, exited;
    int64_t exit_status;
    int term_signal;
} fx_t;

static char t_python[256];

/* The first python3 that can import pika; the test fails without one. */
static int find_python(void) {
    static const char *const candidates[] = {"/usr/bin/python3", "python3"};
    for (unsigned i = 0; i < 2; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s -c 'import pika' >/dev/null 2>&1", candidates[i]);
        if (system(cmd) == 0) {
            snprintf(t_python, sizeof t_python, "%s", candidates[i]);
            return 0;
        }
    }
    return -1;
}

static void timer_cb(uv_timer_t *t) {
    fx_t *fx = t->data;
    fx->timed_out = 1;
}

static void start_cluster(fx_t *fx, unsigned n) {
    fx->n = n;
    uint16_t ports[3 * T_NODES_MAX];
    tnet_kernel_ports(ports, 3 * n);
    for (unsigned i = 0; i < n; i++) {
        snprintf(fx->dir[i], sizeof fx->dir[i], "/tmp/chaoslab-amqp-XXXXXX");
        assert_non_null(mkdtemp(fx->dir[i]));
        snprintf(fx->peer[i], sizeof fx->peer[i], "127.0.0.1:%u", ports[3 * i]);
        snprintf(fx->client[i], sizeof fx->client[i], "127.0.0.1:%u", ports[3 * i + 1]);
        snprintf(fx->amqp[i], sizeof fx->amqp[i], "127.0.0.1:%u", ports[3 * i + 2]);
        fx->amqp_port[i] = ports[3 * i + 2];
        fx->peers[i] = fx->peer[i];
        fx->clients[i] = fx->client[i];
    }
    for (unsigned i = 0; i < n; i++) {
        const rt_amqp_config_t acfg = {.nodes = fx->clients, .nodes_count = n, .first_node = i};
        assert_int_equal(rt_amqp_new(&fx->loop, &acfg, &fx->fe[i]), 0);
        rt_server_frontend_t hook;
        rt_amqp_server_hook(fx->fe[i], &hook);
        rt_server_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.node_id = i;
        cfg.peers = fx->peers;
        cfg.peers_count = n;
        cfg.client_addr = fx->client[i];
        cfg.amqp_addr = fx->amqp[i];
        cfg.amqp_frontend = &hook;
        cfg.data_dir = fx->dir[i];
        broker_config_default(&cfg.broker);
        cfg.log_level = getenv("RT_TEST_DEBUG") ? RT_LOG_DEBUG : RT_LOG_ERROR;
        char err[RT_SERVER_ERR_MAX];
        assert_int_equal(rt_server_new(&fx->loop, &cfg, &fx->srv[i], err, sizeof err), 0);
        const int rc = rt_server_start(fx->srv[i], err, sizeof err);
        if (rc != 0) fail_msg("server %u: %s", i, err);
        assert_int_equal(rt_amqp_port(fx->fe[i]), fx->amqp_port[i]);
    }
}

static int leader_of(fx_t *fx) {
    for (unsigned i = 0; i < fx->n; i++) {
        broker_node_t *node = rt_server_node(fx->srv[i]);
        if (node == NULL) continue;
        broker_node_info_t info;
        broker_node_info(node, &info);
        if (info.running && info.role == RAFT_LEADER) return (int)i;
    }
    return -1;
}

static int wait_leader(fx_t *fx) {
    fx->timed_out = 0;
    uv_timer_start(&fx->timer, timer_cb, T_LEADER_TIMEOUT_MS, 0);
    int leader = -1;
    while (!fx->timed_out && (leader = leader_of(fx)) < 0) uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->timer);
    if (leader < 0) fail_msg("no leader within %u ms", T_LEADER_TIMEOUT_MS);
    /* let the leader's first commit (its no-op) land */
    fx->timed_out = 0;
    uv_timer_start(&fx->timer, timer_cb, 300, 0);
    while (!fx->timed_out) uv_run(&fx->loop, UV_RUN_ONCE);
    return leader;
}

static void exit_cb(uv_process_t *p, int64_t status, int term_signal) {
    fx_t *fx = p->data;
    fx->exited = 1;
    fx->exit_status = status;
    fx->term_signal = term_signal;
    uv_close((uv_handle_t *)p, NULL);
}

/* Run tests/amqp/<prog> against node `node`'s AMQP port; returns its exit
 * status (the loop keeps serving the broker meanwhile). */
static int run_program(fx_t *fx, const char *prog, unsigned node) {
    char script[512], port[16];
    snprintf(script, sizeof script, "%s/tests/amqp/%s", CHAOSLAB_SOURCE_DIR, prog);
    snprintf(port, sizeof port, "%u", fx->amqp_port[node]);
    char *args[] = {t_python, script, port, NULL};
    uv_process_t proc;
    memset(&proc, 0, sizeof proc);
    proc.data = fx;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t opt = {.exit_cb = exit_cb, .file = t_python, .args = args,
                                .stdio_count = 3, .stdio = stdio};
    fx->exited = 0;
    fx->timed_out = 0;
    printf("# %s -> node %u (port %s)\n", prog, node, port);
    fflush(stdout);
    assert_int_equal(uv_spawn(&fx->loop, &proc, &opt), 0);
    uv_timer_start(&fx->timer, timer_cb, T_PROGRAM_TIMEOUT_MS, 0);
    while (!fx->exited && !fx->timed_out) uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->timer);
    if (!fx->exited) {
        uv_process_kill(&proc, SIGKILL);
        while (!fx->exited) uv_run(&fx->loop, UV_RUN_ONCE);
        printf("# %s timed out\n", prog);
        return -1;
    }
    return fx->term_signal ? -fx->term_signal : (int)fx->exit_status;
}

static int setup(void **state) {
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->timer);
    fx->timer.data = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fx_t *fx = *state;
    for (unsigned i = 0; i < fx->n; i++) {
        rt_server_stop(fx->srv[i]);
        rt_server_free(fx->srv[i]);
        rt_amqp_free(fx->fe[i]);
    }
    uv_close((uv_handle_t *)&fx->timer, NULL);
    for (int i = 0; i < 3000 && uv_run(&fx->loop, UV_RUN_NOWAIT) != 0; i++) usleep(1000);
    const int closed = uv_loop_close(&fx->loop);
    for (unsigned i = 0; i < fx->n; i++) tnet_rm_tree(fx->dir[i]);
    free(fx);
    assert_int_equal(closed, 0); /* every handle closed */
    return 0;
}

static const char *const t_programs[] = {
    "hello.py", "work_queues.py", "pubsub.py", "routing.py", "topics.py",
    "confirms.py", "nack_requeue.py", "basic_get.py", "bad_input.py",
};
#define T_PROGRAMS (sizeof t_programs / sizeof t_programs[0])

static void test_python_pika_present(void **state) {
    (void)state;
    if (find_python() != 0)
        fail_msg("python3 with pika not found: run scripts/setup.sh --test "
                 "(installs python3-pika)");
}

static void test_single_node(void **state) {
    fx_t *fx = *state;
    if (t_python[0] == '\0' && find_python() != 0) fail_msg("python3-pika missing");
    start_cluster(fx, 1);
    (void)wait_leader(fx);
    int failed = 0;
    for (unsigned i = 0; i < T_PROGRAMS; i++) {
        const int rc = run_program(fx, t_programs[i], 0);
        if (rc != 0) {
            printf("# FAILED: %s exited %d\n", t_programs[i], rc);
            failed++;
        }
    }
    rt_amqp_stats_t st;
    rt_amqp_stats(fx->fe[0], &st);
    printf("# amqp: %llu conns, %llu publishes, %llu confirms, %llu deliveries\n",
           (unsigned long long)st.accepted, (unsigned long long)st.publishes,
           (unsigned long long)st.confirms, (unsigned long long)st.deliveries);
    assert_int_equal(failed, 0);
    assert_true(st.accepted >= T_PROGRAMS);
    assert_true(st.confirms >= 200);
}

static void test_cluster_follower_and_leader(void **state) {
    fx_t *fx = *state;
    if (t_python[0] == '\0' && find_python() != 0) fail_msg("python3-pika missing");
    start_cluster(fx, 3);
    const int leader = wait_leader(fx);
    const unsigned follower = ((unsigned)leader + 1) % 3;
    int failed = 0;
    for (unsigned i = 0; i < T_PROGRAMS; i++) {
        if (run_program(fx, t_programs[i], follower) != 0) {
            printf("# FAILED via follower: %s\n", t_programs[i]);
            failed++;
        }
    }
    static const char *const on_leader[] = {"hello.py", "work_queues.py", "confirms.py"};
    for (unsigned i = 0; i < 3; i++) {
        if (run_program(fx, on_leader[i], (unsigned)leader) != 0) {
            printf("# FAILED via leader: %s\n", on_leader[i]);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_bad_config_rejected(void **state) {
    fx_t *fx = *state;
    rt_amqp_t *fe = NULL;
    const char *nodes[2] = {"127.0.0.1:5000", "no-such-host:x"};
    rt_amqp_config_t cfg = {.listen = "127.0.0.1:0", .nodes = nodes, .nodes_count = 2};
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), RT_EADDR);
    cfg.nodes_count = RT_AMQP_NODES_MAX + 1;
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), IO_EINVAL);
    cfg.nodes_count = 1;
    cfg.first_node = 1;
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), IO_EINVAL);
    cfg.first_node = 0;
    cfg.listen = "bogus";
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), RT_EADDR);
    cfg.listen = "127.0.0.1:0";
    cfg.conns_max = RT_AMQP_CONNS_MAX + 1;
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), IO_EINVAL);
    cfg.conns_max = 0;
    char long_token[RT_CLIENT_TOKEN_MAX + 1];
    memset(long_token, 't', sizeof long_token - 1);
    long_token[sizeof long_token - 1] = '\0';
    cfg.node_token = long_token;
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), IO_EINVAL);
    cfg.node_token = NULL;
    cfg.handshake_timeout_ms = RT_AMQP_TIMEOUT_MS_MAX + 1;
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), IO_EINVAL);
    cfg.handshake_timeout_ms = 0;
    cfg.idle_timeout_ms = RT_AMQP_TIMEOUT_MS_MAX + 1;
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), IO_EINVAL);
    cfg.idle_timeout_ms = 0;
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), 0);
    assert_int_equal(rt_amqp_start(fe), 0);
    assert_true(rt_amqp_port(fe) > 0);
    assert_int_equal(rt_amqp_start(fe), RT_ESTATE);
    rt_amqp_free(fe);
    /* no node known: start refuses */
    cfg.nodes = NULL;
    cfg.nodes_count = 0;
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), 0);
    assert_int_equal(rt_amqp_start(fe), IO_EINVAL);
    rt_amqp_free(fe);
}

/* 1 when the server closed `fd` (EOF or reset), pumping the loop meanwhile;
 * 0 when it is still open after timeout_ms. */
static int t_closed_by_server(fx_t *fx, int fd, uint32_t timeout_ms) {
    const uint64_t end = tnet_now_ms() + timeout_ms;
    while (tnet_now_ms() < end) {
        (void)uv_run(&fx->loop, UV_RUN_NOWAIT);
        char b[256];
        const ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return 1;
        usleep(2000);
    }
    return 0;
}

/* Connections that never log in are closed after the handshake timeout
 * (silent, or only the protocol header); the one past conns_max is closed
 * at once; no node is ever dialled for them (the node address is bogus). */
static void test_handshake_timeout_and_cap(void **state) {
    fx_t *fx = *state;
    rt_amqp_t *fe = NULL;
    const char *nodes[1] = {"127.0.0.1:1"};
    const rt_amqp_config_t cfg = {.listen = "127.0.0.1:0", .nodes = nodes, .nodes_count = 1,
                                  .conns_max = 2, .handshake_timeout_ms = 300};
    assert_int_equal(rt_amqp_new(&fx->loop, &cfg, &fe), 0);
    assert_int_equal(rt_amqp_start(fe), 0);
    const int port = rt_amqp_port(fe);
    const int silent = tnet_connect(port);
    const int header = tnet_connect(port);
    assert_true(silent >= 0 && header >= 0);
    assert_int_equal(send(header, "AMQP\x00\x00\x09\x01", 8, MSG_NOSIGNAL), 8);
    for (int i = 0; i < 50; i++) { /* both accepted before the third */
        (void)uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    rt_amqp_stats_t st;
    rt_amqp_stats(fe, &st);
    assert_int_equal(rt_amqp_conns(fe), 2);
    const int extra = tnet_connect(port);
    assert_true(extra >= 0);
    assert_int_equal(t_closed_by_server(fx, extra, 250), 1); /* refused at once */
    const uint64_t t0 = tnet_now_ms();
    assert_int_equal(t_closed_by_server(fx, silent, 3000), 1);
    assert_int_equal(t_closed_by_server(fx, header, 3000), 1);
    const uint64_t took = tnet_now_ms() - t0;
    assert_true(took < 2000);
    rt_amqp_stats(fe, &st);
    assert_int_equal(st.timeouts, 2);
    assert_int_equal(st.refused_full, 1);
    assert_int_equal(st.link_connects, 0);
    assert_int_equal(rt_amqp_conns(fe), 0);
    close(silent);
    close(header);
    close(extra);
    rt_amqp_free(fe);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_pika_present),
        cmocka_unit_test_setup_teardown(test_bad_config_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeout_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_follower_and_leader, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
