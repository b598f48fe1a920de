/* cli/cmd_broker.c — `chaoslab broker`: one real broker node (runtime/server). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/broker_flags.h"
#include "cli/cli.h"
#include "runtime/amqp_frontend.h"
#include "runtime/errors.h"
#include "runtime/server.h"

#define CLI_BROKER_PEERS_TEXT_MAX 4096u /* bytes of a --peers / --client-peers list */
#define CLI_BROKER_TIMEOUT_MS_MAX 86400000u /* a day: the most any timeout flag takes */

/* A comma-separated address list, split in place. */
typedef struct cli_addr_list {
    char text[CLI_BROKER_PEERS_TEXT_MAX];
    const char *addr[BROKER_REPLICAS_MAX];
    uint32_t count;
} cli_addr_list_t;

typedef struct cli_broker_args {
    uint64_t id;
    int id_set;
    cli_addr_list_t peers;
    cli_addr_list_t client_peers; /* count 0 = not given */
    const char *client, *amqp, *data_dir, *listen;
    const char *token_file;
    char token[RT_CLIENT_TOKEN_MAX]; /* read from token_file */
    uint64_t handshake_ms, idle_ms, frame_ms; /* 0 = the runtime's defaults */
    rt_log_level_t log_level;
    cli_strategy_t strategy;
} cli_broker_args_t;

static void broker_usage(FILE *out) {
    fprintf(out,
            "usage: chaoslab broker --id N --peers H:P,H:P,... --client H:P --data-dir DIR\n"
            "                       [--amqp H:P [--client-peers H:P,...]] [--listen HOST]\n"
            "                       [--client-token-file FILE] [--handshake-timeout MS]\n"
            "                       [--idle-timeout MS] [--frame-timeout MS]\n"
            "                       [strategy flags]\n"
            "                       [--log-level error|warn|info|debug]\n\n"
            "Runs one node of the reference broker for real: Raft over TCP between\n"
            "the peers, a durable log, meta and snapshots in DIR, and a port for\n"
            "wire-protocol clients, and with --amqp one for AMQP 0-9-1 clients (pika,\n"
            "amqp-tools). Ctrl-C or SIGTERM stops it gracefully. A node restarted on\n"
            "its data dir recovers from it. See docs/broker.md and docs/amqp.md.\n\n"
            "  --id N           this node's index in --peers (0-based)\n"
            "  --peers LIST     peer address of every node, in id order; the count is\n"
            "                   the replica count (1..%u)\n"
            "  --client H:P     where wire clients connect (port 0 = any free port);\n"
            "                   a loopback address unless --client-token-file is given\n"
            "  --client-token-file FILE\n"
            "                   wire clients must send this token first (the file's\n"
            "                   first line, 1..%u bytes; see docs/broker.md); the AMQP\n"
            "                   front end sends it on its own links. Every node of a\n"
            "                   cluster needs the same token\n"
            "  --handshake-timeout MS  close a connection not logged in by then\n"
            "                   (default %u)\n"
            "  --idle-timeout MS        close a logged-in connection that sent nothing\n"
            "                   and read nothing for this long, heartbeats or not\n"
            "                   (default %u)\n"
            "  --frame-timeout MS       close a wire connection whose frame is not\n"
            "                   complete by then (slow bytes; default %u)\n"
            "  --data-dir DIR   created if missing; locked while this node runs\n"
            "  --amqp H:P       listen for AMQP 0-9-1 clients here (guest/guest,\n"
            "                   vhost /)\n"
            "  --client-peers LIST\n"
            "                   wire client address of every node, in id order (same\n"
            "                   count as --peers): the AMQP front end of a follower\n"
            "                   forwards to the leader through it. Default: only this\n"
            "                   node's own --client port (fine for one node)\n"
            "  --listen HOST    host the peer port binds to (default 127.0.0.1; use\n"
            "                   0.0.0.0 for a cluster across machines)\n"
            "  --log-level L    error, warn, info (default) or debug\n\n",
            BROKER_REPLICAS_MAX, RT_CLIENT_TOKEN_MAX - 1, RT_CLIENT_HANDSHAKE_TIMEOUT_MS_DEFAULT,
            RT_CLIENT_IDLE_TIMEOUT_MS_DEFAULT, RT_CLIENT_FRAME_TIMEOUT_MS_DEFAULT);
    cli_strategy_usage(out);
    fprintf(out,
            "\nexit codes: 0 = stopped by a signal, 1 = could not run (data dir locked,\n"
            "port busy, disk error), 2 = bad usage\n");
}

/* Split "a,b,c" into l->addr (pointers into l->text): 1..7 non-empty words. */
static int broker_parse_list(cli_addr_list_t *l, const char *text) {
    if (strlen(text) >= sizeof l->text) return -1;
    memcpy(l->text, text, strlen(text) + 1);
    l->count = 0;
    char *p = l->text;
    for (uint32_t n = 0; n <= BROKER_REPLICAS_MAX; n++) {
        char *comma = strchr(p, ',');
        if (comma != NULL) *comma = '\0';
        if (*p == '\0' || l->count >= BROKER_REPLICAS_MAX) return -1;
        l->addr[l->count++] = p;
        if (comma == NULL) return 0;
        p = comma + 1;
    }
    return -1;
}

/* The value after argv[*i], or NULL (missing). */
static const char *broker_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) return NULL;
    *i += 1;
    return argv[*i];
}

/* Returns -1 to continue, else an exit code. */
static int broker_parse_one(cli_broker_args_t *a, int argc, char **argv, int *i) {
    const char *flag = argv[*i];
    const int st = cli_strategy_flag(&a->strategy, argc, argv, i, "broker");
    if (st < 0) return CLI_EXIT_USAGE;
    if (st > 0) return -1;
    static const char *const valued[] = {"--id",       "--peers",  "--client",
                                         "--amqp",     "--data-dir", "--listen",
                                         "--log-level", "--client-peers",
                                         "--client-token-file", "--handshake-timeout",
                                         "--idle-timeout", "--frame-timeout"};
    int known = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
        known |= strcmp(flag, valued[k]) == 0;
    if (!known) return cli_usage_error("broker", "unknown flag '%s'", flag);
    const char *v = broker_value(argc, argv, i);
    if (v == NULL) return cli_usage_error("broker", "%s needs a value", flag);
    if (strcmp(flag, "--id") == 0) {
        if (cli_parse_u64(v, &a->id) != 0 || a->id >= BROKER_REPLICAS_MAX)
            return cli_usage_error("broker", "--id wants 0..6, got '%s'", v);
        a->id_set = 1;
    } else if (strcmp(flag, "--peers") == 0) {
        if (broker_parse_list(&a->peers, v) != 0)
            return cli_usage_error("broker", "--peers wants 1..7 comma-separated H:P, got '%s'", v);
    } else if (strcmp(flag, "--client-peers") == 0) {
        if (broker_parse_list(&a->client_peers, v) != 0)
            return cli_usage_error("broker", "--client-peers wants 1..7 comma-separated H:P, got '%s'",
                                      v);
    } else if (strcmp(flag, "--log-level") == 0) {
        if (rt_log_level_parse(v, &a->log_level) != 0)
            return cli_usage_error("broker", "--log-level wants error|warn|info|debug, got '%s'", v);
    } else if (strcmp(flag, "--client-token-file") == 0) {
        a->token_file = v;
    } else if (strcmp(flag, "--handshake-timeout") == 0 || strcmp(flag, "--idle-timeout") == 0 ||
               strcmp(flag, "--frame-timeout") == 0) {
        uint64_t ms = 0;
        if (cli_parse_u64(v, &ms) != 0 || ms < 1 || ms > CLI_BROKER_TIMEOUT_MS_MAX)
            return cli_usage_error("broker", "%s wants 1..86400000 (ms), got '%s'", flag, v);
        if (flag[2] == 'h') a->handshake_ms = ms;
        else if (flag[2] == 'i') a->idle_ms = ms;
        else a->frame_ms = ms;
    } else if (strcmp(flag, "--client") == 0) {
        a->client = v;
    } else if (strcmp(flag, "--amqp") == 0) {
        a->amqp = v;
    } else if (strcmp(flag, "--data-dir") == 0) {
        a->data_dir = v;
    } else {
        a->listen = v;
    }
    return -1;
}

/* 1 if `addr` ("host:port") is a loopback address (127.0.0.0/8 or ::1). */
static int broker_is_loopback(const char *addr) {
    struct sockaddr_storage ss;
    char text[RT_HOST_MAX + 16];
    const size_t n = strlen(addr);
    if (n < 2 || n >= sizeof text) return 0;
    memcpy(text, addr, n + 1);
    if (strcmp(text + n - 2, ":0") == 0) text[n - 1] = '1'; /* any port parses */
    if (rt_parse_addr(text, &ss) != 0) return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    return ss.ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&ss)->sin6_addr);
}

/* The token: the first line of the file, trailing blanks cut. Returns -1 or
 * an exit code. */
static int broker_read_token(cli_broker_args_t *a) {
    FILE *f = fopen(a->token_file, "r");
    if (f == NULL) return cli_usage_error("broker", "cannot read --client-token-file '%s'", a->token_file);
    char line[RT_CLIENT_TOKEN_MAX + 2];
    const int got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    size_t n = got ? strlen(line) : 0;
    while (n > 0 && isspace((unsigned char)line[n - 1])) line[--n] = '\0';
    if (n == 0 || n >= RT_CLIENT_TOKEN_MAX)
        return cli_usage_error("broker", "--client-token-file '%s' must hold a token of 1..255 bytes",
                               a->token_file);
    memcpy(a->token, line, n + 1);
    return -1;
}

/* Required flags present and consistent; returns -1 or an exit code. */
static int broker_check(const cli_broker_args_t *a) {
    if (!a->id_set) return cli_usage_error("broker", "%s is required", "--id");
    if (a->peers.count == 0) return cli_usage_error("broker", "%s is required", "--peers");
    if (a->client == NULL) return cli_usage_error("broker", "%s is required", "--client");
    if (a->data_dir == NULL) return cli_usage_error("broker", "%s is required", "--data-dir");
    if (a->id >= a->peers.count)
        return cli_usage_error("broker", "--id must be below the number of --peers (%s)",
                                  a->peers.count == 1 ? "1" : "their count");
    if (a->strategy.replicas_set && a->strategy.cfg.replicas != a->peers.count)
        return cli_usage_error("broker", "%s", "replicas= must equal the number of --peers");
    struct sockaddr_storage ss;
    for (uint32_t i = 0; i < a->peers.count; i++)
        if (rt_parse_addr(a->peers.addr[i], &ss) != 0)
            return cli_usage_error("broker", "bad peer address '%s' (want host:port, no DNS)",
                                      a->peers.addr[i]);
    const size_t n = strlen(a->client);
    if (!(n >= 2 && strcmp(a->client + n - 2, ":0") == 0) && rt_parse_addr(a->client, &ss) != 0)
        return cli_usage_error("broker", "bad --client address '%s' (want host:port)", a->client);
    if (a->amqp != NULL && rt_parse_addr(a->amqp, &ss) != 0)
        return cli_usage_error("broker", "bad --amqp address '%s' (want host:port)", a->amqp);
    if (a->token_file == NULL && !broker_is_loopback(a->client))
        return cli_usage_error("broker",
                               "--client %s is not a loopback address: give --client-token-file "
                               "so wire clients must authenticate",
                               a->client);
    if (a->client_peers.count == 0) return -1;
    if (a->amqp == NULL)
        return cli_usage_error("broker", "%s is only used by the AMQP front end: add --amqp",
                                  "--client-peers");
    if (a->client_peers.count != a->peers.count)
        return cli_usage_error("broker", "%s must list one address per --peers entry, in id order",
                                  "--client-peers");
    for (uint32_t i = 0; i < a->client_peers.count; i++)
        if (rt_parse_addr(a->client_peers.addr[i], &ss) != 0)
            return cli_usage_error("broker", "bad --client-peers address '%s' (want host:port)",
                                      a->client_peers.addr[i]);
    return -1;
}

/* 1 if `addr` can be dialled as given: a real port and not a wildcard host. */
static int broker_dialable(const char *addr) {
    struct sockaddr_storage ss;
    if (rt_parse_addr(addr, &ss) != 0) return 0;
    return strncmp(addr, "0.0.0.0:", 8) != 0 && strncmp(addr, "[::]:", 5) != 0;
}

/* The AMQP front end's config: --client-peers, else this node's own client
 * port (as given when it can be dialled, else the hook's 127.0.0.1:<bound
 * port>). */
static rt_amqp_config_t broker_amqp_config(const cli_broker_args_t *a) {
    rt_amqp_config_t ac = {.listen = a->amqp,
                           .node_token = a->token[0] ? a->token : NULL,
                           .handshake_timeout_ms = (uint32_t)a->handshake_ms,
                           .idle_timeout_ms = (uint32_t)a->idle_ms,
                           .session_timeout_ms =
                               (uint32_t)(a->strategy.cfg.session_timeout_ns / 1000000u)};
    if (a->client_peers.count > 0) {
        ac.nodes = a->client_peers.addr;
        ac.nodes_count = a->client_peers.count;
        ac.first_node = (uint32_t)a->id;
    } else if (broker_dialable(a->client)) {
        ac.nodes = &a->client;
        ac.nodes_count = 1;
    }
    return ac;
}

/* The server on a loop of our own, so the AMQP front end can live on it
 * too. Returns 0 or a negative code with err set. */
static int broker_run(const cli_broker_args_t *a, char *err, size_t cap) {
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        snprintf(err, cap, "libuv loop init failed");
        return IO_ENOMEM;
    }
    rt_server_config_t cfg = {
        .node_id = (uint32_t)a->id, .peers = a->peers.addr, .peers_count = a->peers.count,
        .listen_host = a->listen, .client_addr = a->client, .amqp_addr = a->amqp,
        .data_dir = a->data_dir, .broker = a->strategy.cfg, .log_level = a->log_level,
        .client_token = a->token[0] ? a->token : NULL,
        .handshake_timeout_ms = (uint32_t)a->handshake_ms,
        .idle_timeout_ms = (uint32_t)a->idle_ms, .frame_timeout_ms = (uint32_t)a->frame_ms,
    };
    rt_amqp_t *fe = NULL;
    rt_server_frontend_t hook;
    int rc = 0;
    if (a->amqp != NULL) {
        const rt_amqp_config_t ac = broker_amqp_config(a);
        rc = rt_amqp_new(&loop, &ac, &fe);
        if (rc != 0) {
            snprintf(err, cap, "AMQP front end on %s: %s", a->amqp, rt_strerror(rc));
        } else {
            rt_amqp_server_hook(fe, &hook);
            cfg.amqp_frontend = &hook;
        }
    }
    if (rc == 0) rc = rt_server_run_on(&loop, &cfg, err, cap);
    rt_amqp_free(fe); /* stopped by the server; its memory goes in the run below */
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) (void)uv_run(&loop, UV_RUN_DEFAULT);
    return rc;
}

int cli_cmd_broker(int argc, char **argv) {
    cli_broker_args_t *a = calloc(1, sizeof *a);
    if (a == NULL) return CLI_EXIT_FAIL;
    a->log_level = RT_LOG_INFO;
    cli_strategy_init(&a->strategy);
    int rc = -1;
    for (int i = 1; i < argc && rc < 0; i++) {
        if (cli_is_help(argv[i])) {
            broker_usage(stdout);
            rc = CLI_EXIT_OK;
        } else {
            rc = broker_parse_one(a, argc, argv, &i);
        }
    }
    if (rc < 0) rc = broker_check(a);
    if (rc < 0 && a->token_file != NULL) rc = broker_read_token(a);
    if (rc >= 0) {
        free(a);
        return rc;
    }
    char err[RT_SERVER_ERR_MAX] = "";
    const int r = broker_run(a, err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "chaoslab broker: %s\n", err[0] ? err : rt_strerror(r));
        rc = r == IO_EINVAL || r == RT_EADDR ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    } else {
        rc = CLI_EXIT_OK;
    }
    free(a);
    return rc;
}
