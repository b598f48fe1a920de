/*
 * tests/test_cli_amqp.c — the AMQP 0-9-1 entry points through the real
 * binaries (CHAOSLAB_BINARY), with ordinary clients:
 *
 *   (a) one `chaoslab broker --amqp` process: every tutorial program of
 *       tests/amqp/ (pika) against it;
 *   (b) Debian amqp-tools against it: declare, publish, get, consume;
 *   (c) `chaoslab cluster --nodes 3`: the pika programs through a follower;
 *   (d) chaos: three `chaoslab broker` processes (fsync=always, acks=quorum),
 *       tests/amqp/chaos_publisher.py publishing 2000 confirmed persistent
 *       messages, the leader SIGKILLed mid-stream and restarted on its data
 *       dir, tests/amqp/chaos_consumer.py draining: every confirmed id must
 *       be consumed.
 *
 * /usr/bin/python3 with pika (python3-pika) and amqp-tools are REQUIRED: the
 * tests fail without them. Ports are free loopback ports; every wait is
 * bounded by the part's budget (T_PART_BUDGET_MS); every child pid is
 * tracked and killed in the teardown even when a test failed (never by
 * name); temp dirs are removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/tnet.h"

#define T_PYTHON "/usr/bin/python3"
/* amqplib programs (the .js files of tests/amqp) run with node; setup.sh --test
 * installs amqplib into tests/amqp/node_modules, where node finds it. */
#define T_NODE "node"
#define T_CHILDREN_MAX 16
#define T_ARGS_MAX 40
#define T_PROGRAMS_MAX 32
#define T_PATH_MAX 512
#define T_OUT_MAX 65536u
#define T_IDS_TEXT_MAX (1u << 20) /* bytes of an id file */
#define T_IDS_MAX 8192u           /* lines of an id file */
#define T_PART_BUDGET_MS 58000u   /* each part stays under a minute */
#define T_PROGRAM_TIMEOUT_MS 25000u
#define T_LEADER_TIMEOUT_MS 10000u
#define T_CHAOS_MESSAGES 2000u
#define T_CHAOS_KILL_AT 600u      /* confirms before the leader is killed */
#define T_PORT_SALT 53u           /* tnet_free_ports: apart from other tests */

/* ---- output files ------------------------------------------------------------ */

static void t_show_file(const char *what, const char *path) {
    static char buf[T_OUT_MAX];
    tnet_read_file(path, buf, sizeof buf);
    printf("# ---- %s (%s) ----\n%s\n# ----\n", what, path, buf);
    fflush(stdout);
}

/* ---- the fixture: a temp dir, a budget, every child pid ------------------------ */

typedef struct tfix {
    char dir[64];
    uint64_t deadline_ms; /* the part's budget */
    pid_t pids[T_CHILDREN_MAX];
} tfix_t;

static int t_setup(void **state) {
    tfix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/chaoslab-cliamqp-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->deadline_ms = tnet_now_ms() + T_PART_BUDGET_MS;
    *state = f;
    return 0;
}

/* Milliseconds left of the part's budget, at most `want`. */
static uint32_t t_budget(const tfix_t *f, uint32_t want) {
    const uint64_t now = tnet_now_ms();
    if (now >= f->deadline_ms) return 0;
    const uint64_t left = f->deadline_ms - now;
    return left < want ? (uint32_t)left : want;
}

static void t_track(tfix_t *f, pid_t pid) {
    for (int i = 0; i < T_CHILDREN_MAX; i++) {
        if (f->pids[i] == 0) {
            f->pids[i] = pid;
            return;
        }
    }
    kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    fail_msg("more than %d children", T_CHILDREN_MAX);
}

static void t_untrack(tfix_t *f, pid_t pid) {
    for (int i = 0; i < T_CHILDREN_MAX; i++)
        if (f->pids[i] == pid) f->pids[i] = 0;
}

/* Start argv[0] (a path) with stdout+stderr into out_path; tracked. */
static pid_t t_spawn(tfix_t *f, const char *const *argv, const char *out_path) {
    const pid_t pid = tnet_spawn(argv, out_path);
    t_track(f, pid);
    return pid;
}

/* Wait up to timeout_ms: the exit code, -1 (timed out: SIGKILLed) or
 * -2 (killed by a signal). The pid is no longer tracked afterwards. */
static int t_wait(tfix_t *f, pid_t pid, uint32_t timeout_ms) {
    const int rc = tnet_wait(pid, timeout_ms);
    t_untrack(f, pid);
    return rc;
}

/* 1 while `pid` has not exited. WNOWAIT leaves an exited child unreaped,
 * so its pid stays ours until t_wait reaps it. */
static int t_alive(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return 0;
    return info.si_pid == 0;
}

/* SIGTERM every child still tracked, SIGKILL after a bounded wait. */
static int t_teardown(void **state) {
    tfix_t *f = *state;
    for (int i = 0; i < T_CHILDREN_MAX; i++)
        if (f->pids[i] > 0) kill(f->pids[i], SIGTERM);
    for (int i = 0; i < T_CHILDREN_MAX; i++)
        if (f->pids[i] > 0) (void)t_wait(f, f->pids[i], 5000);
    tnet_rm_tree(f->dir);
    free(f);
    return 0;
}

/* Run to completion within the budget (at most want_ms); output in out. */
static int t_run(tfix_t *f, const char *const *argv, uint32_t want_ms, char *out, size_t cap) {
    char path[T_PATH_MAX];
    snprintf(path, sizeof path, "%s/run-%llu.out", f->dir, (unsigned long long)tnet_now_ms());
    const int rc = t_wait(f, t_spawn(f, argv, path), t_budget(f, want_ms));
    tnet_read_file(path, out, cap);
    unlink(path);
    return rc;
}

/* ---- the leader ------------------------------------------------------------------ */

/* The wire ports' token of a `chaoslab cluster` (DIR/client-token); empty
 * for brokers started without one. */
static char t_token[128];

/* Wait (bounded) for `cluster` to write DIR/client-token and read it. */
static void t_read_token(const char *data_dir) {
    char path[T_PATH_MAX];
    snprintf(path, sizeof path, "%s/client-token", data_dir);
    const uint64_t end = tnet_now_ms() + 5000;
    while (access(path, R_OK) != 0 && tnet_now_ms() < end) tnet_sleep_ms(20);
    tnet_read_file(path, t_token, sizeof t_token);
    char *nl = strchr(t_token, '\n');
    if (nl != NULL) *nl = '\0';
    assert_true(strlen(t_token) > 0);
}

/* The index of the one node whose client port says "leader", polling
 * until every one of them answers and exactly one leads (bounded). */
static int t_find_leader(tfix_t *f, const int *client_ports, int n) {
    const uint64_t end = tnet_now_ms() + t_budget(f, T_LEADER_TIMEOUT_MS);
    while (tnet_now_ms() < end) {
        int leader = -1, leaders = 0, answered = 0;
        for (int i = 0; i < n; i++) {
            const int role = tnet_wire_role_token(client_ports[i], t_token[0] ? t_token : NULL);
            answered += role >= 0;
            if (role == 1) {
                leader = i;
                leaders++;
            }
        }
        if (answered == n && leaders == 1) return leader;
        tnet_sleep_ms(100);
    }
    fail_msg("no single leader within %u ms", T_LEADER_TIMEOUT_MS);
    return -1;
}

/* ---- the tools ------------------------------------------------------------------- */

static void t_require_tools(void) {
    if (system(T_PYTHON " -c 'import pika' >/dev/null 2>&1") != 0)
        fail_msg(T_PYTHON " cannot import pika: install python3-pika "
                 "(scripts/setup.sh --test)");
    if (system(T_NODE " -e 'require(\"" CHAOSLAB_SOURCE_DIR
               "/tests/amqp/node_modules/amqplib\")' >/dev/null 2>&1") != 0)
        fail_msg("node cannot load amqplib from tests/amqp/node_modules: run "
                 "scripts/setup.sh --test (npm install amqplib)");
    static const char *const tools[] = {"/usr/bin/amqp-publish", "/usr/bin/amqp-get",
                                        "/usr/bin/amqp-consume", "/usr/bin/amqp-declare-queue"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (access(tools[i], X_OK) != 0)
            fail_msg("%s missing: install amqp-tools (scripts/setup.sh --test)", tools[i]);
}

static int t_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The tutorial and conformance programs: every .py (pika) and .js
 * (amqplib) in tests/amqp but common.py and the chaos_ programs, sorted by
 * name. */
static int t_programs(char names[][64], int cap) {
    char dir[T_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tests/amqp", CHAOSLAB_SOURCE_DIR);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        const size_t len = strlen(e->d_name);
        if (len < 4 || len >= 64 ||
            (strcmp(e->d_name + len - 3, ".py") != 0 && strcmp(e->d_name + len - 3, ".js") != 0))
            continue;
        if (strcmp(e->d_name, "common.py") == 0 || strncmp(e->d_name, "chaos_", 6) == 0)
            continue;
        snprintf(names[n++], 64, "%s", e->d_name);
    }
    closedir(d);
    const char *order[T_PROGRAMS_MAX];
    char sorted[T_PROGRAMS_MAX][64];
    for (int i = 0; i < n; i++) order[i] = names[i];
    qsort(order, (size_t)n, sizeof order[0], t_cmp_str);
    for (int i = 0; i < n; i++) snprintf(sorted[i], 64, "%s", order[i]);
    for (int i = 0; i < n; i++) memcpy(names[i], sorted[i], 64);
    return n;
}

/* Run tests/amqp/<prog> with extra args; its output goes to log_path. */
static int t_python(tfix_t *f, const char *prog, const char *const *args, const char *log_path,
                    uint32_t want_ms) {
    char script[T_PATH_MAX];
    snprintf(script, sizeof script, "%s/tests/amqp/%s", CHAOSLAB_SOURCE_DIR, prog);
    const char *argv[T_ARGS_MAX];
    int k = 0;
    const size_t plen = strlen(prog);
    const int js = plen > 3 && strcmp(prog + plen - 3, ".js") == 0;
    argv[k++] = js ? "/usr/bin/env" : T_PYTHON;
    if (js) argv[k++] = T_NODE;
    argv[k++] = script;
    for (int i = 0; args[i] != NULL && k < T_ARGS_MAX - 1; i++) argv[k++] = args[i];
    argv[k] = NULL;
    return t_wait(f, t_spawn(f, argv, log_path), t_budget(f, want_ms));
}

/* Every tutorial program against one AMQP port; returns how many failed. */
static int t_run_tutorials(tfix_t *f, int amqp_port, const char *where) {
    char names[T_PROGRAMS_MAX][64];
    const int n = t_programs(names, T_PROGRAMS_MAX);
    assert_true(n >= 9); /* hello, work queues, pubsub, routing, topics, ... */
    char port[16], log[T_PATH_MAX];
    snprintf(port, sizeof port, "%d", amqp_port);
    const char *args[] = {port, NULL};
    int failed = 0;
    for (int i = 0; i < n; i++) {
        snprintf(log, sizeof log, "%s/%s.log", f->dir, names[i]);
        const uint64_t t0 = tnet_now_ms();
        const int rc = t_python(f, names[i], args, log, T_PROGRAM_TIMEOUT_MS);
        printf("# %s via %s (port %d): exit %d, %llu ms\n", names[i], where, amqp_port, rc,
               (unsigned long long)(tnet_now_ms() - t0));
        if (rc != 0) {
            failed++;
            t_show_file(names[i], log);
        }
    }
    return failed;
}

/* ---- brokers ------------------------------------------------------------------- */

typedef struct tnode {
    char peer[32], client[32], amqp[32], dir[T_PATH_MAX], log[T_PATH_MAX];
    int client_port, amqp_port;
    pid_t pid;
} tnode_t;

typedef struct tcluster {
    int n;
    char peers[256], clients[256];
    tnode_t node[3];
    const char *extra[8]; /* strategy flags, NULL-terminated */
} tcluster_t;

static void t_layout(tfix_t *f, tcluster_t *c, int n) {
    const int base = tnet_free_ports(3 * n, T_PORT_SALT);
    c->n = n;
    size_t used = 0, used_c = 0;
    for (int i = 0; i < n; i++) {
        tnode_t *nd = &c->node[i];
        snprintf(nd->peer, sizeof nd->peer, "127.0.0.1:%d", base + 3 * i);
        nd->client_port = base + 3 * i + 1;
        nd->amqp_port = base + 3 * i + 2;
        snprintf(nd->client, sizeof nd->client, "127.0.0.1:%d", nd->client_port);
        snprintf(nd->amqp, sizeof nd->amqp, "127.0.0.1:%d", nd->amqp_port);
        snprintf(nd->dir, sizeof nd->dir, "%s/node-%d", f->dir, i);
        used += (size_t)snprintf(c->peers + used, sizeof c->peers - used, "%s%s", i ? "," : "",
                                 nd->peer);
        used_c += (size_t)snprintf(c->clients + used_c, sizeof c->clients - used_c, "%s%s",
                                   i ? "," : "", nd->client);
    }
}

/* (Re)start node i of c on its data dir; `round` names its log file. */
static void t_start_node(tfix_t *f, tcluster_t *c, int i, int round) {
    tnode_t *nd = &c->node[i];
    char id[8];
    snprintf(id, sizeof id, "%d", i);
    snprintf(nd->log, sizeof nd->log, "%s/node-%d.%d.log", f->dir, i, round);
    const char *argv[T_ARGS_MAX];
    int k = 0;
    argv[k++] = CHAOSLAB_BINARY;
    argv[k++] = "broker";
    argv[k++] = "--id";
    argv[k++] = id;
    argv[k++] = "--peers";
    argv[k++] = c->peers;
    argv[k++] = "--client";
    argv[k++] = nd->client;
    argv[k++] = "--amqp";
    argv[k++] = nd->amqp;
    argv[k++] = "--client-peers";
    argv[k++] = c->clients;
    argv[k++] = "--data-dir";
    argv[k++] = nd->dir;
    for (int e = 0; c->extra[e] != NULL && k < T_ARGS_MAX - 1; e++) argv[k++] = c->extra[e];
    argv[k] = NULL;
    nd->pid = t_spawn(f, argv, nd->log);
}

static int t_cluster_leader(tfix_t *f, const tcluster_t *c) {
    int ports[3];
    for (int i = 0; i < c->n; i++) ports[i] = c->node[i].client_port;
    return t_find_leader(f, ports, c->n);
}

/* One broker with --amqp, serving, its leader elected. */
static void t_one_broker(tfix_t *f, tcluster_t *c) {
    t_layout(f, c, 1);
    t_start_node(f, c, 0, 0);
    if (t_cluster_leader(f, c) != 0) t_show_file("broker", c->node[0].log);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_tools_present(void **state) {
    (void)state;
    t_require_tools();
}

/* --help documents the flags; bad values exit 2 and start nothing. */
static void test_flags_help_and_bad_values(void **state) {
    tfix_t *f = *state;
    static char out[T_OUT_MAX];
    const char *help[] = {CHAOSLAB_BINARY, "broker", "--help", NULL};
    assert_int_equal(t_run(f, help, 5000, out, sizeof out), 0);
    assert_non_null(strstr(out, "--amqp H:P"));
    assert_non_null(strstr(out, "--client-peers"));
    const char *chelp[] = {CHAOSLAB_BINARY, "cluster", "--help", NULL};
    assert_int_equal(t_run(f, chelp, 5000, out, sizeof out), 0);
    assert_non_null(strstr(out, "AMQP"));

    char data[T_PATH_MAX];
    snprintf(data, sizeof data, "%s/never", f->dir);
    const char *p2 = "127.0.0.1:1,127.0.0.1:4";
    const char *bad[][20] = {
        /* --client-peers without --amqp */
        {"--id", "0", "--peers", p2, "--client", "127.0.0.1:2", "--client-peers",
         "127.0.0.1:2,127.0.0.1:5", NULL},
        /* count differs from --peers */
        {"--id", "0", "--peers", p2, "--client", "127.0.0.1:2", "--amqp", "127.0.0.1:3",
         "--client-peers", "127.0.0.1:2", NULL},
        /* malformed entries */
        {"--id", "0", "--peers", p2, "--client", "127.0.0.1:2", "--amqp", "127.0.0.1:3",
         "--client-peers", "127.0.0.1:2,nohost", NULL},
        {"--id", "0", "--peers", p2, "--client", "127.0.0.1:2", "--amqp", "127.0.0.1:3",
         "--client-peers", "127.0.0.1:2,,127.0.0.1:5", NULL},
        {"--id", "0", "--peers", p2, "--client", "127.0.0.1:2", "--amqp", "127.0.0.1:3",
         "--client-peers", "127.0.0.1:2,127.0.0.1:99999", NULL},
        {"--id", "0", "--peers", p2, "--client", "127.0.0.1:2", "--amqp", "bogus", NULL},
        {"--id", "0", "--peers", p2, "--client", "127.0.0.1:2", "--amqp", "127.0.0.1:0", NULL},
        {"--id", "0", "--peers", p2, "--client", "127.0.0.1:2", "--client-peers", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[T_ARGS_MAX];
        int k = 0;
        argv[k++] = CHAOSLAB_BINARY;
        argv[k++] = "broker";
        for (int j = 0; bad[i][j] != NULL; j++) argv[k++] = bad[i][j];
        argv[k++] = "--data-dir";
        argv[k++] = data;
        argv[k] = NULL;
        if (i == sizeof bad / sizeof bad[0] - 1) argv[k - 2] = NULL; /* value missing */
        const int rc = t_run(f, argv, 5000, out, sizeof out);
        if (rc != 2) printf("# bad case %zu: exit %d: %s\n", i, rc, out);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out, "chaoslab broker:"));
    }
    struct stat st;
    assert_int_not_equal(stat(data, &st), 0); /* nothing was started */
}

/* (a) one broker process, every tutorial program through its AMQP port. */
static void test_broker_pika_tutorials(void **state) {
    tfix_t *f = *state;
    t_require_tools();
    tcluster_t c = {0};
    t_one_broker(f, &c);
    const int failed = t_run_tutorials(f, c.node[0].amqp_port, "broker");
    if (failed != 0) t_show_file("broker", c.node[0].log);
    assert_int_equal(failed, 0);
    assert_true(t_alive(c.node[0].pid));
    static char log[T_OUT_MAX];
    tnet_read_file(c.node[0].log, log, sizeof log);
    assert_non_null(strstr(log, "AMQP 0-9-1 on"));
}

/* (b) amqp-tools: declare a durable queue, publish, get, consume. */
static void test_broker_amqp_tools(void **state) {
    tfix_t *f = *state;
    t_require_tools();
    tcluster_t c = {0};
    t_one_broker(f, &c);
    char url[64];
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d", c.node[0].amqp_port);
    static char out[T_OUT_MAX];
    /* a queue that does not exist: 404, a failing exit */
    const char *get_missing[] = {"/usr/bin/amqp-get", "-u", url, "-q", "q", NULL};
    assert_int_not_equal(t_run(f, get_missing, 10000, out, sizeof out), 0);

    const char *declare[] = {"/usr/bin/amqp-declare-queue", "-u", url, "-d", "-q", "q", NULL};
    assert_int_equal(t_run(f, declare, 10000, out, sizeof out), 0);
    assert_non_null(strstr(out, "q"));
    const char *get_empty[] = {"/usr/bin/amqp-get", "-u", url, "-q", "q", NULL};
    assert_int_not_equal(t_run(f, get_empty, 10000, out, sizeof out), 0); /* empty */

    const char *publish[] = {"/usr/bin/amqp-publish", "-u", url, "-r", "q", "-p", "-b",
                             "hello", NULL};
    assert_int_equal(t_run(f, publish, 10000, out, sizeof out), 0);
    const char *get[] = {"/usr/bin/amqp-get", "-u", url, "-q", "q", NULL};
    const int get_rc = t_run(f, get, 10000, out, sizeof out);
    printf("# amqp-get: exit %d, printed '%s'\n", get_rc, out);
    assert_int_equal(get_rc, 0);
    assert_string_equal(out, "hello");

    const char *publish2[] = {"/usr/bin/amqp-publish", "-u", url, "-r", "q", "-b",
                              "hello consumer", NULL};
    assert_int_equal(t_run(f, publish2, 10000, out, sizeof out), 0);
    const char *consume[] = {"/usr/bin/amqp-consume", "-u", url, "-q", "q", "-c", "1",
                             "/bin/cat", NULL};
    const int consume_rc = t_run(f, consume, 10000, out, sizeof out);
    printf("# amqp-consume: exit %d, printed '%s'\n", consume_rc, out);
    assert_int_equal(consume_rc, 0);
    assert_non_null(strstr(out, "hello consumer"));
    /* consumed and acked: nothing left */
    assert_int_not_equal(t_run(f, get_empty, 10000, out, sizeof out), 0);
}

/* (c) `chaoslab cluster --nodes 3`: the tutorials through a follower. */
static void test_cluster_tutorials_via_follower(void **state) {
    tfix_t *f = *state;
    t_require_tools();
    const int base = tnet_free_ports(9, T_PORT_SALT);
    char base_text[16], data[T_PATH_MAX], log[T_PATH_MAX];
    snprintf(base_text, sizeof base_text, "%d", base);
    snprintf(data, sizeof data, "%s/cluster", f->dir);
    snprintf(log, sizeof log, "%s/cluster.log", f->dir);
    const char *argv[] = {CHAOSLAB_BINARY, "cluster", "--nodes", "3", "--base-port", base_text,
                          "--data-dir", data, "--log-level", "warn", NULL};
    const pid_t pid = t_spawn(f, argv, log);
    t_read_token(data); /* the cluster's wire ports want it */
    const int clients[3] = {base + 1, base + 4, base + 7};
    const int leader = t_find_leader(f, clients, 3);
    t_token[0] = '\0';
    const int follower = (leader + 1) % 3;
    static char out[T_OUT_MAX];
    tnet_read_file(log, out, sizeof out);
    char row[64];
    snprintf(row, sizeof row, "%-6d %-7d %-6d", base + 3, base + 4, base + 5);
    if (strstr(out, row) == NULL) t_show_file("cluster", log);
    assert_non_null(strstr(out, row)); /* node 1: peer, client, amqp */
    const int failed = t_run_tutorials(f, base + 3 * follower + 2, "follower");
    if (failed != 0) t_show_file("cluster", log);
    assert_int_equal(failed, 0);
    assert_true(t_alive(pid));
    kill(pid, SIGTERM);
    assert_int_equal(t_wait(f, pid, t_budget(f, 10000)), 0);
}

/* Lines of path (ids) into text/ids; returns the count. */
static size_t t_read_ids(const char *path, char *text, const char **ids, size_t cap) {
    tnet_read_file(path, text, T_IDS_TEXT_MAX);
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line != NULL && n < cap; line = strtok(NULL, "\n"))
        if (line[0] != '\0') ids[n++] = line;
    return n;
}

/* The publisher's last "confirmed K" progress line, 0 if none. */
static unsigned t_progress(const char *log_path) {
    static char out[T_OUT_MAX];
    tnet_read_file(log_path, out, sizeof out);
    unsigned last = 0;
    for (const char *p = strstr(out, "confirmed "); p != NULL; p = strstr(p + 1, "confirmed ")) {
        unsigned v;
        if (sscanf(p, "confirmed %u", &v) == 1) last = v;
    }
    return last;
}

/* (d) the leader SIGKILLed mid-stream: no confirmed message is lost. */
static void test_chaos_leader_sigkill(void **state) {
    tfix_t *f = *state;
    t_require_tools();
    tcluster_t c = {0};
    c.extra[0] = "--fsync";
    c.extra[1] = "always";
    c.extra[2] = "--acks";
    c.extra[3] = "quorum";
    c.extra[4] = NULL;
    t_layout(f, &c, 3);
    for (int i = 0; i < 3; i++) t_start_node(f, &c, i, 0);
    const int leader = t_cluster_leader(f, &c);
    printf("# leader is node %d (pid %ld)\n", leader, (long)c.node[leader].pid);

    /* the publisher starts on the leader's port, so the kill cuts it off */
    char ports[64], n_text[16], confirmed_path[T_PATH_MAX], consumed_path[T_PATH_MAX];
    char pub_log[T_PATH_MAX], con_log[T_PATH_MAX];
    snprintf(ports, sizeof ports, "%d,%d,%d", c.node[leader].amqp_port,
             c.node[(leader + 1) % 3].amqp_port, c.node[(leader + 2) % 3].amqp_port);
    snprintf(n_text, sizeof n_text, "%u", T_CHAOS_MESSAGES);
    snprintf(confirmed_path, sizeof confirmed_path, "%s/confirmed.txt", f->dir);
    snprintf(consumed_path, sizeof consumed_path, "%s/consumed.txt", f->dir);
    snprintf(pub_log, sizeof pub_log, "%s/publisher.log", f->dir);
    snprintf(con_log, sizeof con_log, "%s/consumer.log", f->dir);
    char script[T_PATH_MAX];
    snprintf(script, sizeof script, "%s/tests/amqp/chaos_publisher.py", CHAOSLAB_SOURCE_DIR);
    const char *pub_argv[] = {T_PYTHON, script, ports, n_text, "chaos", confirmed_path, NULL};
    const pid_t pub = t_spawn(f, pub_argv, pub_log);

    const uint64_t until = tnet_now_ms() + t_budget(f, 20000);
    while (t_progress(pub_log) < T_CHAOS_KILL_AT && t_alive(pub) && tnet_now_ms() < until)
        tnet_sleep_ms(5);
    const unsigned at_kill = t_progress(pub_log);
    const int mid_stream = t_alive(pub) && at_kill >= T_CHAOS_KILL_AT;
    if (!mid_stream) t_show_file("publisher", pub_log);
    assert_true(mid_stream);
    assert_int_equal(kill(c.node[leader].pid, SIGKILL), 0);
    assert_int_equal(t_wait(f, c.node[leader].pid, 5000), -2);
    printf("# SIGKILLed node %d after %u confirms\n", leader, at_kill);

    /* the other two elect a leader; the killed node restarts on its dir */
    tnet_sleep_ms(1000);
    t_start_node(f, &c, leader, 1);
    const int pub_rc = t_wait(f, pub, t_budget(f, 45000));
    static char text[T_OUT_MAX];
    t_show_file("publisher", pub_log);
    assert_int_equal(pub_rc, 0);
    tnet_read_file(pub_log, text, sizeof text);
    assert_non_null(strstr(text, "moving on")); /* it did lose its connection */
    (void)t_cluster_leader(f, &c); /* all three answer again */
    /* the restarted node read its data dir back (logged by its status poll) */
    const uint64_t recover_end = tnet_now_ms() + t_budget(f, 10000);
    int recovered = 0;
    while (!recovered && tnet_now_ms() < recover_end) {
        tnet_read_file(c.node[leader].log, text, sizeof text);
        recovered = strstr(text, "recovered: term") != NULL;
        if (!recovered) tnet_sleep_ms(50);
    }
    if (!recovered) t_show_file("restarted node", c.node[leader].log);
    assert_true(recovered);

    const char *con_args[] = {ports, "chaos", consumed_path, NULL};
    const int con_rc = t_python(f, "chaos_consumer.py", con_args, con_log, 45000);
    t_show_file("consumer", con_log);
    assert_int_equal(con_rc, 0);

    char *conf_text = malloc(T_IDS_TEXT_MAX), *cons_text = malloc(T_IDS_TEXT_MAX);
    const char **conf = calloc(T_IDS_MAX, sizeof *conf), **cons = calloc(T_IDS_MAX, sizeof *cons);
    assert_true(conf_text && cons_text && conf && cons);
    const size_t n_conf = t_read_ids(confirmed_path, conf_text, conf, T_IDS_MAX);
    const size_t n_cons = t_read_ids(consumed_path, cons_text, cons, T_IDS_MAX);
    qsort(cons, n_cons, sizeof *cons, t_cmp_str);
    size_t unique = 0, lost = 0;
    for (size_t i = 0; i < n_cons; i++) unique += i == 0 || strcmp(cons[i], cons[i - 1]) != 0;
    for (size_t i = 0; i < n_conf; i++) {
        if (bsearch(&conf[i], cons, n_cons, sizeof *cons, t_cmp_str) != NULL) continue;
        if (lost++ < 10) printf("# LOST: confirmed %s never consumed\n", conf[i]);
    }
    printf("# chaos: confirmed %zu, consumed %zu (%zu unique), duplicates %zu, lost %zu\n",
           n_conf, n_cons, unique, n_cons - unique, lost);
    fflush(stdout);
    free(conf_text);
    free(cons_text);
    free(conf);
    free(cons);
    assert_int_equal(lost, 0);
    assert_int_equal(n_conf, T_CHAOS_MESSAGES);
    assert_true(unique >= n_conf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tools_present),
        cmocka_unit_test_setup_teardown(test_flags_help_and_bad_values, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_broker_pika_tutorials, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_broker_amqp_tools, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_tutorials_via_follower, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_chaos_leader_sigkill, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
