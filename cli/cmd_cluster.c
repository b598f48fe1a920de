/*
 * cli/cmd_cluster.c — `chaoslab cluster`: N real `chaoslab broker` processes
 * on loopback, for trying the broker out. Node i gets three consecutive
 * ports from the base: peer P+3i, client P+3i+1, amqp P+3i+2. Every child
 * gets the client port list too (--client-peers), so the AMQP front end of a
 * follower forwards to the leader.
 *
 * The parent blocks SIGINT/SIGTERM/SIGCHLD and waits for them with
 * sigtimedwait (no handler, no global flag). Each child runs in its own
 * process group, so a Ctrl-C in the terminal reaches only the parent, which
 * forwards one SIGTERM to every child (a graceful stop) and SIGKILLs those
 * still alive after CLUSTER_STOP_TIMEOUT_MS. Children also get SIGTERM if
 * the parent dies (PR_SET_PDEATHSIG), so none is left behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli/broker_flags.h"
#include "cli/cli.h"
#include "runtime/log.h"
#include "runtime/uv_io.h"

#define CLUSTER_NODES_MAX BROKER_REPLICAS_MAX
#define CLUSTER_PORTS_PER_NODE 3u
#define CLUSTER_BASE_PORT_DEFAULT 7000u
#define CLUSTER_DIR_DEFAULT "chaoslab-cluster"
#define CLUSTER_STOP_TIMEOUT_MS 10000u
#define CLUSTER_WAIT_SLICE_MS 200u
#define CLUSTER_PATH_MAX 4096u
#define CLUSTER_ADDR_MAX 32u
#define CLUSTER_ARGV_MAX (26 + CLI_STRATEGY_WORDS_MAX)
#define CLUSTER_TOKEN_BYTES 16u /* random bytes of a new token (32 hex digits) */
#define CLUSTER_TOKEN_FILE "client-token"

typedef struct cluster_node {
    pid_t pid;   /* 0 once reaped */
    int status;  /* wait status once reaped */
    unsigned peer_port, client_port, amqp_port;
    char peer[CLUSTER_ADDR_MAX], client[CLUSTER_ADDR_MAX], amqp[CLUSTER_ADDR_MAX];
    char dir[CLUSTER_PATH_MAX];
} cluster_node_t;

typedef struct cluster {
    uint64_t nodes, base_port;
    const char *dir;
    const char *log_level;
    cli_strategy_t strategy;
    char self[CLUSTER_PATH_MAX];
    char token_file[CLUSTER_PATH_MAX]; /* DIR/client-token, shared by the nodes */
    char peers[CLUSTER_NODES_MAX * CLUSTER_ADDR_MAX];
    char clients[CLUSTER_NODES_MAX * CLUSTER_ADDR_MAX]; /* --client-peers */
    cluster_node_t node[CLUSTER_NODES_MAX];
    uint32_t alive;
} cluster_t;

static void cluster_usage(FILE *out) {
    fprintf(out,
            "usage: chaoslab cluster --nodes N [--base-port P] [--data-dir DIR]\n"
            "                        [--log-level L] [strategy flags]\n\n"
            "Starts N real `chaoslab broker` processes on 127.0.0.1 forming one\n"
            "cluster, prints their ports, and runs until Ctrl-C or SIGTERM, which it\n"
            "forwards to every node (graceful stop). Every node has an AMQP 0-9-1\n"
            "port (pika, amqp-tools; guest/guest): connect to any of them, a\n"
            "follower forwards to the leader. Kill one node's pid to watch the\n"
            "others elect a new leader; start the same command again and every node\n"
            "recovers from its data dir.\n\n"
            "  --nodes N        1..%u nodes (the replica count)\n"
            "  --base-port P    node i uses P+3i (peers), P+3i+1 (wire clients),\n"
            "                   P+3i+2 (AMQP); default %u\n"
            "  --data-dir DIR   node i keeps its data in DIR/node-i (default ./%s)\n"
            "  --log-level L    error, warn, info (default) or debug\n\n",
            CLUSTER_NODES_MAX, CLUSTER_BASE_PORT_DEFAULT, CLUSTER_DIR_DEFAULT);
    cli_strategy_usage(out);
    fprintf(out, "\nexit codes: 0 = stopped by a signal, every node stopped cleanly;\n"
                 "1 = a node failed or exited on its own; 2 = bad usage\n");
}

/* Returns -1 when parsed, else an exit code. */
static int cluster_parse(cluster_t *c, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            cluster_usage(stdout);
            return CLI_EXIT_OK;
        }
        const int st = cli_strategy_flag(&c->strategy, argc, argv, &i, "cluster");
        if (st < 0) return CLI_EXIT_USAGE;
        if (st > 0) continue;
        const char *flag = argv[i];
        const int valued = strcmp(flag, "--nodes") == 0 || strcmp(flag, "--base-port") == 0 ||
                           strcmp(flag, "--data-dir") == 0 || strcmp(flag, "--log-level") == 0;
        if (!valued) return cli_usage_error("cluster", "unknown flag '%s'", flag);
        if (i + 1 >= argc) return cli_usage_error("cluster", "missing value for '%s'", flag);
        const char *v = argv[++i];
        if (strcmp(flag, "--nodes") == 0) {
            if (cli_parse_u64(v, &c->nodes) != 0 || c->nodes < 1 || c->nodes > CLUSTER_NODES_MAX)
                return cli_usage_error("cluster", "--nodes wants 1..7, got '%s'", v);
        } else if (strcmp(flag, "--base-port") == 0) {
            if (cli_parse_u64(v, &c->base_port) != 0 || c->base_port < 1 ||
                c->base_port + CLUSTER_PORTS_PER_NODE * CLUSTER_NODES_MAX > 65535)
                return cli_usage_error("cluster", "--base-port wants 1..65514, got '%s'", v);
        } else if (strcmp(flag, "--data-dir") == 0) {
            if (v[0] == '\0' || strlen(v) > CLUSTER_PATH_MAX - 16)
                return cli_usage_error("cluster", "bad --data-dir '%s'", v);
            c->dir = v;
        } else {
            rt_log_level_t lvl;
            if (rt_log_level_parse(v, &lvl) != 0)
                return cli_usage_error("cluster", "--log-level wants error|warn|info|debug, got '%s'", v);
            c->log_level = v;
        }
    }
    if (c->nodes == 0) return cli_usage_error("cluster", "--nodes is required '%s'", "--nodes");
    if (c->strategy.replicas_set && c->strategy.cfg.replicas != c->nodes)
        return cli_usage_error("cluster", "replicas= must equal --nodes, got '%s'", "--set replicas");
    return -1;
}

static void cluster_layout(cluster_t *c) {
    size_t used = 0, used_clients = 0;
    for (uint32_t i = 0; i < c->nodes; i++) {
        cluster_node_t *n = &c->node[i];
        n->peer_port = (unsigned)(c->base_port + CLUSTER_PORTS_PER_NODE * i);
        n->client_port = n->peer_port + 1;
        n->amqp_port = n->peer_port + 2;
        snprintf(n->peer, sizeof n->peer, "127.0.0.1:%u", n->peer_port);
        snprintf(n->client, sizeof n->client, "127.0.0.1:%u", n->client_port);
        snprintf(n->amqp, sizeof n->amqp, "127.0.0.1:%u", n->amqp_port);
        snprintf(n->dir, sizeof n->dir, "%s/node-%u", c->dir, i);
        used += (size_t)snprintf(c->peers + used, sizeof c->peers - used, "%s%s",
                                 i ? "," : "", n->peer);
        used_clients += (size_t)snprintf(c->clients + used_clients,
                                         sizeof c->clients - used_clients, "%s%s",
                                         i ? "," : "", n->client);
    }
}

/* The wire client ports' token: DIR/client-token (mode 0600), made from
 * getrandom the first time and kept, so a restarted cluster and the wire
 * clients that read the file keep working. Returns 0 or -1 (said why). */
static int cluster_token(cluster_t *c) {
    if (mkdir(c->dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "chaoslab cluster: cannot create %s: %s\n", c->dir, strerror(errno));
        return -1;
    }
    snprintf(c->token_file, sizeof c->token_file, "%s/%s", c->dir, CLUSTER_TOKEN_FILE);
    const int fd = open(c->token_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST) return 0; /* kept from an earlier run */
        fprintf(stderr, "chaoslab cluster: cannot create %s: %s\n", c->token_file,
                strerror(errno));
        return -1;
    }
    uint8_t raw[CLUSTER_TOKEN_BYTES];
    char text[2 * CLUSTER_TOKEN_BYTES + 2];
    int ok = getrandom(raw, sizeof raw, 0) == (ssize_t)sizeof raw;
    for (uint32_t i = 0; i < CLUSTER_TOKEN_BYTES; i++)
        snprintf(text + 2 * i, 3, "%02x", raw[i]);
    text[2 * CLUSTER_TOKEN_BYTES] = '\n';
    ok = ok && write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1);
    ok = (close(fd) == 0) && ok;
    if (!ok) {
        fprintf(stderr, "chaoslab cluster: cannot write %s\n", c->token_file);
        (void)unlink(c->token_file);
        return -1;
    }
    return 0;
}

/* In the child: the node's own process group, default signal mask, exec. */
static void cluster_exec_child(const cluster_t *c, uint32_t i, const sigset_t *old_mask) {
    (void)setpgid(0, 0);
#ifdef __linux__
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    (void)sigprocmask(SIG_SETMASK, old_mask, NULL);
    const cluster_node_t *n = &c->node[i];
    char id[16];
    snprintf(id, sizeof id, "%u", i);
    const char *args[CLUSTER_ARGV_MAX];
    int k = 0;
    args[k++] = c->self;
    args[k++] = "broker";
    args[k++] = "--id";
    args[k++] = id;
    args[k++] = "--peers";
    args[k++] = c->peers;
    args[k++] = "--client";
    args[k++] = n->client;
    args[k++] = "--amqp";
    args[k++] = n->amqp;
    args[k++] = "--client-peers";
    args[k++] = c->clients;
    args[k++] = "--client-token-file";
    args[k++] = c->token_file;
    args[k++] = "--data-dir";
    args[k++] = n->dir;
    args[k++] = "--log-level";
    args[k++] = c->log_level;
    for (int w = 0; w < c->strategy.words_count; w++) args[k++] = c->strategy.words[w];
    args[k] = NULL;
    execv(c->self, (char *const *)args);
    fprintf(stderr, "chaoslab cluster: cannot run %s: %s\n", c->self, strerror(errno));
    _exit(127);
}

static void cluster_signal_all(cluster_t *c, int sig) {
    for (uint32_t i = 0; i < c->nodes; i++)
        if (c->node[i].pid > 0) (void)kill(c->node[i].pid, sig);
}

static int cluster_spawn(cluster_t *c, const sigset_t *old_mask) {
    for (uint32_t i = 0; i < c->nodes; i++) {
        fflush(NULL); /* the child must not repeat buffered output */
        const pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "chaoslab cluster: fork: %s\n", strerror(errno));
            return -1;
        }
        if (pid == 0) cluster_exec_child(c, i, old_mask);
        c->node[i].pid = pid;
        c->alive++;
    }
    return 0;
}

static void cluster_print(const cluster_t *c) {
    printf("chaoslab cluster: %u node(s) on 127.0.0.1\n\n", (unsigned)c->nodes);
    printf("%-5s %-8s %-6s %-7s %-6s %s\n", "node", "pid", "peer", "client", "amqp", "data dir");
    for (uint32_t i = 0; i < c->nodes; i++) {
        const cluster_node_t *n = &c->node[i];
        printf("%-5u %-8ld %-6u %-7u %-6u %s\n", i, (long)n->pid, n->peer_port, n->client_port,
               n->amqp_port, n->dir);
    }
    printf("\nAMQP 0-9-1 clients (pika, amqp-tools; guest/guest, vhost /): connect to\n"
           "any amqp port, e.g. amqp://guest:guest@127.0.0.1:%u/ (a follower forwards\n"
           "to the leader). Wire clients: any client port, sending the token in\n"
           "%s first (docs/broker.md; a follower answers NOT_LEADER with the\n"
           "leader's id). Ctrl-C stops every node.\n\n",
           c->node[0].amqp_port, c->token_file);
    fflush(stdout);
}

static uint64_t cluster_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reap every exited child; report the ones that went on their own. */
static int cluster_reap(cluster_t *c, int stopping) {
    int bad = 0;
    for (uint32_t round = 0; round < CLUSTER_NODES_MAX; round++) {
        int status = 0;
        const pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        for (uint32_t i = 0; i < c->nodes; i++) {
            if (c->node[i].pid != pid) continue;
            c->node[i].pid = 0;
            c->node[i].status = status;
            c->alive--;
            const int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (!clean || !stopping) {
                bad = 1;
                if (WIFEXITED(status))
                    fprintf(stderr, "chaoslab cluster: node %u exited with status %d\n", i,
                            WEXITSTATUS(status));
                else
                    fprintf(stderr, "chaoslab cluster: node %u killed by signal %d\n", i,
                            WIFSIGNALED(status) ? WTERMSIG(status) : 0);
            }
        }
    }
    return bad;
}

/* Wait until every child is gone; forward the first SIGINT/SIGTERM. */
static int cluster_wait(cluster_t *c, const sigset_t *set) {
    int stopping = 0, bad = 0;
    uint64_t deadline_ms = 0;
    while (c->alive > 0) { /* ends: every child exits or is SIGKILLed */
        const struct timespec slice = {0, (long)CLUSTER_WAIT_SLICE_MS * 1000000L};
        const int sig = sigtimedwait(set, NULL, &slice);
        if ((sig == SIGINT || sig == SIGTERM) && !stopping) {
            printf("chaoslab cluster: stopping %u node(s)\n", c->alive);
            fflush(stdout);
            cluster_signal_all(c, SIGTERM);
            stopping = 1;
            deadline_ms = cluster_now_ms() + CLUSTER_STOP_TIMEOUT_MS;
        }
        bad |= cluster_reap(c, stopping);
        if (stopping && c->alive > 0 && cluster_now_ms() > deadline_ms) {
            fprintf(stderr, "chaoslab cluster: killing %u node(s) that did not stop\n", c->alive);
            cluster_signal_all(c, SIGKILL);
            bad = 1;
            deadline_ms = UINT64_MAX;
        }
    }
    return bad || !stopping ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_cmd_cluster(int argc, char **argv) {
    cluster_t *c = calloc(1, sizeof *c);
    if (c == NULL) return CLI_EXIT_FAIL;
    c->base_port = CLUSTER_BASE_PORT_DEFAULT;
    c->dir = CLUSTER_DIR_DEFAULT;
    c->log_level = "info";
    cli_strategy_init(&c->strategy);
    int rc = cluster_parse(c, argc, argv);
    const ssize_t len = rc < 0 ? readlink("/proc/self/exe", c->self, sizeof c->self - 1) : 0;
    if (rc < 0 && (len <= 0 || (mkdir(c->dir, 0755) != 0 && errno != EEXIST))) {
        fprintf(stderr, "chaoslab cluster: %s: %s\n", len <= 0 ? "cannot find own binary" : c->dir,
                strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    if (rc >= 0) {
        free(c);
        return rc;
    }
    c->self[len] = '\0';
    cluster_layout(c);
    /* Our stdout may be a pipe whose reader goes away (`cluster | head`):
     * dying of SIGPIPE would take every node down with us (PDEATHSIG). The
     * children inherit the ignore; each broker sets it again anyway. */
    rt_ignore_sigpipe();
    if (cluster_token(c) != 0) {
        free(c);
        return CLI_EXIT_FAIL;
    }
    sigset_t set, old_mask;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    (void)sigprocmask(SIG_BLOCK, &set, &old_mask);
    if (cluster_spawn(c, &old_mask) != 0) {
        cluster_signal_all(c, SIGTERM);
        (void)cluster_wait(c, &set);
        rc = CLI_EXIT_FAIL;
    } else {
        cluster_print(c);
        rc = cluster_wait(c, &set);
    }
    (void)sigprocmask(SIG_SETMASK, &old_mask, NULL);
    free(c);
    return rc;
}
