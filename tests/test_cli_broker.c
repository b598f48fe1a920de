/*
 * tests/test_cli_broker.c — `chaoslab broker` and `chaoslab cluster` through
 * the binary (CHAOSLAB_BINARY): help, usage errors, a data dir held by
 * another process, and a 3-process cluster on loopback that answers and
 * stops on SIGTERM. Ports are 127.0.0.1 only; every wait is bounded; temp
 * dirs are removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/tnet.h"

#define T_OUT_MAX 16384u
#define T_ARGS_MAX 32
#define T_PORT_SALT 37u /* tnet_free_ports: apart from other tests */

/* ---- processes ------------------------------------------------------------ */

/* Start `chaoslab args...` with stdout+stderr into `out_path`. */
static pid_t t_spawn(const char *const *args, const char *out_path) {
    const char *argv[T_ARGS_MAX + 2];
    int n = 0;
    argv[n++] = CHAOSLAB_BINARY;
    for (int i = 0; args[i] != NULL && n < T_ARGS_MAX; i++) argv[n++] = args[i];
    argv[n] = NULL;
    return tnet_spawn(argv, out_path);
}

/* Run to completion (bounded); output in out[]. */
static int t_run(const char *const *args, char *out, size_t cap) {
    char path[] = "/tmp/chaoslab-cli-out-XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const int rc = tnet_wait(t_spawn(args, path), 5000);
    tnet_read_file(path, out, cap);
    unlink(path);
    return rc;
}

/* ---- the wire client port ------------------------------------------------ */

/* 1 if a wire client on `port` gets an answer to HEARTBEAT (an echo from the
 * leader, NOT_LEADER from a follower). */
static int t_wire_answers(int port) { return tnet_wire_role(port) >= 0; }

static int t_until_answers(int port, uint32_t timeout_ms) {
    const uint64_t end = tnet_now_ms() + timeout_ms;
    while (tnet_now_ms() < end) {
        if (t_wire_answers(port)) return 1;
        tnet_sleep_ms(50);
    }
    return 0;
}

static int t_until_answers_token(int port, const char *token, uint32_t timeout_ms) {
    const uint64_t end = tnet_now_ms() + timeout_ms;
    while (tnet_now_ms() < end) {
        if (tnet_wire_role_token(port, token) >= 0) return 1;
        tnet_sleep_ms(50);
    }
    return 0;
}

/* ---- fixture: children and the temp dir are cleaned up even on failure ---- */

typedef struct tfix {
    char dir[64];
    pid_t pids[2];
} tfix_t;

static int t_setup(void **state) {
    tfix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/chaoslab-cli-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int t_teardown(void **state) {
    tfix_t *f = *state;
    for (int i = 0; i < 2; i++) {
        if (f->pids[i] <= 0) continue;
        kill(f->pids[i], SIGTERM);
        (void)tnet_wait(f->pids[i], 5000);
    }
    tnet_rm_tree(f->dir);
    free(f);
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_help_exits_zero(void **state) {
    (void)state;
    char out[T_OUT_MAX];
    const char *b[] = {"broker", "--help", NULL};
    assert_int_equal(t_run(b, out, sizeof out), 0);
    assert_non_null(strstr(out, "--data-dir"));
    assert_non_null(strstr(out, "--acks"));
    assert_non_null(strstr(out, "--amqp"));
    const char *c[] = {"cluster", "--help", NULL};
    assert_int_equal(t_run(c, out, sizeof out), 0);
    assert_non_null(strstr(out, "--nodes"));
    assert_non_null(strstr(out, "--base-port"));
    const char *top[] = {"--help", NULL};
    assert_int_equal(t_run(top, out, sizeof out), 0);
    assert_non_null(strstr(out, "broker"));
    assert_non_null(strstr(out, "cluster"));
}

static void test_bad_usage_exits_two(void **state) {
    (void)state;
    static const char *const cases[][14] = {
        {"broker", "--bogus", NULL},
        {"broker", NULL},
        {"broker", "--id", "0", "--peers", "127.0.0.1:1", "--client", "127.0.0.1:2", NULL},
        {"broker", "--id", "1", "--peers", "127.0.0.1:1", "--client", "127.0.0.1:2",
         "--data-dir", "/tmp/chaoslab-never", NULL},
        {"broker", "--id", "x", NULL},
        {"broker", "--id", "0", "--peers", "nohost", "--client", "127.0.0.1:2", "--data-dir",
         "/tmp/chaoslab-never", NULL},
        {"broker", "--acks", "maybe", NULL},
        {"broker", "--set", "colour=blue", NULL},
        {"broker", "--fsync", "interval:0", NULL},
        {"broker", "--log-level", "loud", NULL},
        {"broker", "--id", NULL},
        {"cluster", "--nodes", "0", NULL},
        /* a wire port off loopback needs a token */
        {"broker", "--id", "0", "--peers", "127.0.0.1:1", "--client", "0.0.0.0:2",
         "--data-dir", "/tmp/chaoslab-never", NULL},
        {"broker", "--id", "0", "--peers", "127.0.0.1:1", "--client", "127.0.0.1:2",
         "--data-dir", "/tmp/chaoslab-never", "--client-token-file", "/nonexistent/x", NULL},
        {"broker", "--id", "0", "--peers", "127.0.0.1:1", "--client", "127.0.0.1:2",
         "--data-dir", "/tmp/chaoslab-never", "--idle-timeout", "0", NULL},
        {"broker", "--id", "0", "--peers", "127.0.0.1:1", "--client", "127.0.0.1:2",
         "--data-dir", "/tmp/chaoslab-never", "--handshake-timeout", "soon", NULL},
    };
    static const char *const cluster_cases[][6] = {
        {"cluster", NULL},
        {"cluster", "--nodes", "9", NULL},
        {"cluster", "--nodes", "3", "--election", "sometimes", NULL},
        {"cluster", "--nodes", "3", "--base-port", "65530", NULL},
        {"cluster", "--nodes", "3", "--what", NULL},
    };
    char out[T_OUT_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int rc = t_run((const char *const *)cases[i], out, sizeof out);
        if (rc != 2) print_message("case %zu: exit %d: %s\n", i, rc, out);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out, "chaoslab"));
    }
    for (size_t i = 0; i < sizeof cluster_cases / sizeof cluster_cases[0]; i++) {
        const int rc = t_run((const char *const *)cluster_cases[i], out, sizeof out);
        if (rc != 2) print_message("cluster case %zu: exit %d: %s\n", i, rc, out);
        assert_int_equal(rc, 2);
    }
    struct stat st;
    assert_int_not_equal(stat("/tmp/chaoslab-never", &st), 0); /* nothing created */
}

/* One node serves; a second process on its data dir is refused, naming it. */
static void test_second_broker_on_same_dir_refused(void **state) {
    tfix_t *f = *state;
    const char *dir = f->dir;
    char data[128], log_a[128], log_b[128];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log_a, sizeof log_a, "%s/a.log", dir);
    snprintf(log_b, sizeof log_b, "%s/b.log", dir);
    const int base = tnet_free_ports(4, T_PORT_SALT);
    char peer_a[32], client_a[32], peer_b[32], client_b[32];
    snprintf(peer_a, sizeof peer_a, "127.0.0.1:%d", base);
    snprintf(client_a, sizeof client_a, "127.0.0.1:%d", base + 1);
    snprintf(peer_b, sizeof peer_b, "127.0.0.1:%d", base + 2);
    snprintf(client_b, sizeof client_b, "127.0.0.1:%d", base + 3);
    const char *a[] = {"broker", "--id", "0", "--peers", peer_a, "--client", client_a,
                       "--data-dir", data, "--set", "election_timeout_ms=150", NULL};
    const pid_t pa = t_spawn(a, log_a);
    f->pids[0] = pa;
    assert_true(t_until_answers(base + 1, 5000));

    const char *b[] = {"broker", "--id", "0", "--peers", peer_b, "--client", client_b,
                       "--data-dir", data, NULL};
    const pid_t pb = t_spawn(b, log_b);
    assert_int_equal(tnet_wait(pb, 5000), 1);
    char out[T_OUT_MAX], want[64];
    tnet_read_file(log_b, out, sizeof out);
    snprintf(want, sizeof want, "in use by process %ld", (long)pa);
    if (strstr(out, want) == NULL) print_message("second broker said: %s\n", out);
    assert_non_null(strstr(out, want));
    assert_true(t_wire_answers(base + 1)); /* the first one is unharmed */

    assert_int_equal(kill(pa, SIGTERM), 0);
    f->pids[0] = 0;
    assert_int_equal(tnet_wait(pa, 5000), 0);
    assert_int_equal(tnet_connect(base + 1), -1);
    tnet_read_file(log_a, out, sizeof out);
    assert_non_null(strstr(out, "stopping gracefully"));
}

/* `cluster --nodes 3`: three children answer on their ports; SIGTERM to the
 * parent stops them all within a few seconds. */
static void test_cluster_starts_answers_and_stops(void **state) {
    tfix_t *f = *state;
    const char *dir = f->dir;
    char data[128], log[128], base_text[16];
    snprintf(data, sizeof data, "%s/cluster", dir);
    snprintf(log, sizeof log, "%s/cluster.log", dir);
    const int base = tnet_free_ports(9, T_PORT_SALT);
    snprintf(base_text, sizeof base_text, "%d", base);
    const char *args[] = {"cluster", "--nodes", "3", "--base-port", base_text, "--data-dir", data,
                          "--log-level", "warn", "--set", "election_timeout_ms=150", NULL};
    const pid_t pid = t_spawn(args, log);
    f->pids[0] = pid;
    /* the cluster made a token for its wire ports: DIR/client-token, 0600 */
    char token_path[160], token[128] = "";
    snprintf(token_path, sizeof token_path, "%s/client-token", data);
    struct stat tst;
    const uint64_t token_end = tnet_now_ms() + 5000;
    while (stat(token_path, &tst) != 0 && tnet_now_ms() < token_end) tnet_sleep_ms(20);
    assert_int_equal(stat(token_path, &tst), 0);
    assert_int_equal(tst.st_mode & 077, 0);
    tnet_read_file(token_path, token, sizeof token);
    char *nl = strchr(token, '\n');
    if (nl != NULL) *nl = '\0';
    assert_int_equal(strlen(token), 32);
    for (int i = 0; i < 3; i++) {
        assert_true(t_until_answers_token(base + 3 * i + 1, token, 5000));
        /* without the token, or with a wrong one: closed, no answer */
        assert_int_equal(tnet_wire_role(base + 3 * i + 1), -1);
        assert_int_equal(tnet_wire_role_token(base + 3 * i + 1, "00000000000000000000000000000000"),
                         -1);
        const int fd = tnet_connect(base + 3 * i); /* the peer port listens too */
        assert_true(fd >= 0);
        close(fd);
    }
    char out[T_OUT_MAX], row[64];
    tnet_read_file(log, out, sizeof out);
    snprintf(row, sizeof row, "%d  %d", base + 3, base + 4);
    assert_non_null(strstr(out, "client"));
    assert_non_null(strstr(out, row)); /* node 1's peer and client ports */

    const uint64_t t0 = tnet_now_ms();
    assert_int_equal(kill(pid, SIGTERM), 0);
    f->pids[0] = 0;
    assert_int_equal(tnet_wait(pid, 8000), 0);
    assert_true(tnet_now_ms() - t0 < 5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tnet_connect(base + 3 * i), -1);
        assert_int_equal(tnet_connect(base + 3 * i + 1), -1);
    }
    struct stat st;
    char node_dir[160];
    snprintf(node_dir, sizeof node_dir, "%s/node-2/LOCK", data);
    assert_int_equal(stat(node_dir, &st), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_exits_zero),
        cmocka_unit_test(test_bad_usage_exits_two),
        cmocka_unit_test_setup_teardown(test_second_broker_on_same_dir_refused, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_starts_answers_and_stops, t_setup,
                                        t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
