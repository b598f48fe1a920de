/*
 * runtime/server.c — one real broker process (see the header).
 *
 * The server owns a few libuv handles of its own (a status timer, two signal
 * watchers); its memory goes away when the last of them has closed, the same
 * rule rt_io_t and the client port follow. It does not use rt_signals_start
 * because that helper closes its handles without a callback, so the server
 * could not know when freeing the struct holding them is safe.
 */
#include "runtime/server.h"

#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/raft.h"
#include "runtime/errors.h"
#include "runtime/lock.h"

#define RT_SERVER__ADDR_MAX (RT_HOST_MAX + 16u) /* "host:port" text */

typedef enum rt_server__state {
    RT_SERVER__NEW = 0,
    RT_SERVER__RUNNING = 1,
    RT_SERVER__STOPPED = 2,
} rt_server__state_t;

struct rt_server {
    uv_loop_t *loop;
    rt_server__state_t state;
    uint32_t node_id, peers_count;
    char peers_text[RT_PEERS_MAX][RT_SERVER__ADDR_MAX + 1];
    char listen_host[RT_HOST_MAX + 1];
    char client_addr[RT_SERVER__ADDR_MAX + 1];
    char amqp_addr[RT_SERVER__ADDR_MAX + 1];
    char data_dir[RT_PATH_MAX + 1];
    uint8_t has_client, has_amqp, has_frontend, frontend_started;
    rt_server_frontend_t frontend;
    broker_config_t broker;
    rt_log_t log;

    rt_lock_t lock;
    rt_io_t *io;
    rt_client_port_t *clients;

    uv_timer_t status_timer;
    uint8_t status_open;
    uv_signal_t sigint, sigterm;
    uint8_t signals_open;
    uint32_t pending;        /* open handles of the server itself */
    uint8_t free_requested;
    uint8_t failed;          /* the node stopped on a disk error */
    uint8_t started;         /* rt_server_start succeeded */

    /* last reported view, so the log says what changed */
    int last_running, last_role;
    uint32_t last_leader;
    uint64_t last_term;
};

static void rt_server__err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void rt_server__err(char *err, size_t cap, const char *fmt, ...) {
    if (err == NULL || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ---- lifetime ------------------------------------------------------------ */

static void rt_server__release_if_done(rt_server_t *s) {
    assert(s != NULL);
    if (!s->free_requested || s->pending > 0) return;
    assert(s->state != RT_SERVER__RUNNING);
    free(s);
}

static void rt_server__handle_closed(uv_handle_t *h) {
    rt_server_t *s = h->data;
    assert(s != NULL && s->pending > 0);
    s->pending--;
    rt_server__release_if_done(s);
}

static int rt_server__copy(char *dst, size_t cap, const char *src) {
    if (src == NULL || src[0] == '\0' || strlen(src) >= cap) return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int rt_server__check_text(rt_server_t *s, const rt_server_config_t *cfg,
                                 char *err, size_t cap) {
    for (uint32_t i = 0; i < cfg->peers_count; i++) {
        struct sockaddr_storage ss;
        if (cfg->peers[i] == NULL || rt_server__copy(s->peers_text[i], sizeof s->peers_text[i],
                                                     cfg->peers[i]) != 0 ||
            rt_parse_addr(cfg->peers[i], &ss) != 0) {
            rt_server__err(err, cap, "bad peer address '%s' (want host:port)",
                           cfg->peers[i] ? cfg->peers[i] : "(null)");
            return RT_EADDR;
        }
    }
    if (rt_server__copy(s->data_dir, sizeof s->data_dir, cfg->data_dir) != 0) {
        rt_server__err(err, cap, "a data dir is required (and at most %u bytes)", RT_PATH_MAX);
        return IO_EINVAL;
    }
    if (rt_server__copy(s->listen_host, sizeof s->listen_host,
                        cfg->listen_host ? cfg->listen_host : "127.0.0.1") != 0) {
        rt_server__err(err, cap, "bad listen host");
        return RT_EADDR;
    }
    s->has_client = cfg->client_addr != NULL;
    if (s->has_client &&
        rt_server__copy(s->client_addr, sizeof s->client_addr, cfg->client_addr) != 0) {
        rt_server__err(err, cap, "bad client address");
        return RT_EADDR;
    }
    s->has_amqp = cfg->amqp_addr != NULL;
    if (s->has_amqp && rt_server__copy(s->amqp_addr, sizeof s->amqp_addr, cfg->amqp_addr) != 0) {
        rt_server__err(err, cap, "bad amqp address");
        return RT_EADDR;
    }
    return 0;
}

static void rt_server__on_client_closed(void *arg, io_addr_t addr) {
    rt_server_client_closed(arg, addr);
}

/* Allocate the rt_io_t and the client port (neither touches the world). */
static int rt_server__make_parts(rt_server_t *s, const rt_server_config_t *cfg,
                                 char *err, size_t cap) {
    const char *peers[RT_PEERS_MAX];
    for (uint32_t i = 0; i < s->peers_count; i++) peers[i] = s->peers_text[i];
    const rt_config_t rc = {
        .node_id = s->node_id, .peers = peers, .peers_count = s->peers_count,
        .listen_host = s->listen_host, .data_dir = s->data_dir,
        .log_level = cfg->log_level, .log_out = cfg->log_out, .seed = cfg->seed,
    };
    int r = rt_io_new(s->loop, &rc, &s->io);
    if (r != 0) {
        rt_server__err(err, cap, "runtime config: %s", rt_strerror(r));
        return r;
    }
    if (!s->has_client) return 0;
    const rt_client_port_config_t pc = {
        .listen = s->client_addr, .conns_max = cfg->client_conns_max,
        .closed_fn = rt_server__on_client_closed, .closed_arg = s,
        .token = cfg->client_token, .handshake_timeout_ms = cfg->handshake_timeout_ms,
        .idle_timeout_ms = cfg->idle_timeout_ms, .frame_timeout_ms = cfg->frame_timeout_ms,
    };
    r = rt_client_port_new(s->loop, s->io, &pc, &s->clients);
    if (r != 0)
        rt_server__err(err, cap, "client port '%s' (address, token or timeouts): %s",
                       s->client_addr, rt_strerror(r));
    return r;
}

int rt_server_new(uv_loop_t *loop, const rt_server_config_t *cfg, rt_server_t **out,
                  char *err, size_t err_cap) {
    if (loop == NULL || cfg == NULL || out == NULL) return IO_EINVAL;
    if (cfg->peers == NULL || cfg->peers_count == 0 || cfg->peers_count > BROKER_REPLICAS_MAX ||
        cfg->node_id >= cfg->peers_count) {
        rt_server__err(err, err_cap, "need 1..%u peers and an id below their count",
                       BROKER_REPLICAS_MAX);
        return IO_EINVAL;
    }
    rt_server_t *s = calloc(1, sizeof *s);
    if (s == NULL) return IO_ENOMEM;
    s->loop = loop;
    s->node_id = cfg->node_id;
    s->peers_count = cfg->peers_count;
    s->lock.fd = -1;
    s->broker = cfg->broker;
    s->broker.id = cfg->node_id;
    s->broker.replicas = cfg->peers_count;
    char why[RT_SERVER_ERR_MAX];
    int rc = rt_server__check_text(s, cfg, err, err_cap);
    if (rc == 0 && broker_config_check(&s->broker, why, sizeof why) != 0) {
        rt_server__err(err, err_cap, "strategy: %s", why);
        rc = IO_EINVAL;
    }
    if (rc == 0 && cfg->amqp_frontend != NULL) {
        if (cfg->amqp_frontend->start == NULL || cfg->amqp_frontend->send == NULL ||
            cfg->amqp_frontend->stop == NULL || !s->has_amqp) {
            rt_server__err(err, err_cap, "an AMQP front end needs start/send/stop and an address");
            rc = IO_EINVAL;
        }
        s->frontend = *cfg->amqp_frontend;
        s->has_frontend = 1;
    }
    char tag[RT_LOG_TAG_MAX + 1];
    snprintf(tag, sizeof tag, "node %" PRIu32, cfg->node_id);
    rt_log_init(&s->log, cfg->log_level, cfg->log_out, tag);
    if (rc == 0) rc = rt_server__make_parts(s, cfg, err, err_cap);
    if (rc != 0) {
        rt_client_port_free(s->clients);
        rt_io_free(s->io);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- client routing ---------------------------------------------------------- */

/* The one rt_io client hook: the client port, then the AMQP front end. */
static int rt_server__client_send(void *arg, io_addr_t dest, const uint8_t *bytes, size_t len) {
    rt_server_t *s = arg;
    assert(s != NULL);
    int rc = IO_EUNREACH;
    if (s->clients != NULL) rc = rt_client_port_send(s->clients, dest, bytes, len);
    if (rc == IO_EUNREACH && s->frontend_started)
        rc = s->frontend.send(s->frontend.arg, dest, bytes, len);
    return rc == IO_EUNREACH ? 0 : rc; /* a closed client: a lost message */
}

void rt_server_client_closed(rt_server_t *s, io_addr_t addr) {
    assert(s != NULL);
    assert(addr >= IO_ADDR_CLIENT_BASE);
    if (s->state != RT_SERVER__RUNNING) return;
    broker_node_t *node = rt_server_node(s);
    if (node != NULL) broker_node_client_closed(node, addr);
}

/* ---- status ------------------------------------------------------------------ */

static const char *rt_server__role_name(int role) {
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRECANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "?";
    }
}

/* Say in the log what changed (recovered, leader, term); stop on failure so a
 * supervisor sees the process exit instead of a silently dead node. */
static void rt_server__status_cb(uv_timer_t *t) {
    rt_server_t *s = t->data;
    assert(s != NULL && s->state == RT_SERVER__RUNNING);
    broker_node_t *node = rt_server_node(s);
    if (node == NULL) return;
    broker_node_info_t info;
    broker_node_info(node, &info);
    if (info.failed) {
        rt_log_write(&s->log, RT_LOG_ERROR,
                     "node failed (disk error or unreadable data dir %s): stopping",
                     s->data_dir);
        s->failed = 1;
        rt_server_stop(s);
        return;
    }
    if (info.running && !s->last_running)
        rt_log_write(&s->log, RT_LOG_INFO,
                     "recovered: term %" PRIu64 ", log %" PRIu64 "..%" PRIu64
                     ", snapshot at %" PRIu64 ", applied %" PRIu64,
                     info.term, broker_node_log_base(node), info.last_index,
                     info.snapshot_index, info.applied_index);
    s->last_running = info.running;
    if (info.role != s->last_role || info.leader != s->last_leader) {
        if (info.role == RAFT_LEADER)
            rt_log_write(&s->log, RT_LOG_INFO, "this node is the leader (term %" PRIu64 ")",
                         info.term);
        else if (info.leader < s->peers_count)
            rt_log_write(&s->log, RT_LOG_INFO, "%s, leader is node %" PRIu32 " (term %" PRIu64 ")",
                         rt_server__role_name(info.role), info.leader, info.term);
        else
            rt_log_write(&s->log, RT_LOG_INFO, "%s, no leader known (term %" PRIu64 ")",
                         rt_server__role_name(info.role), info.term);
    }
    s->last_role = info.role;
    s->last_leader = info.leader;
    s->last_term = info.term;
}

static void rt_server__status_start(rt_server_t *s) {
    assert(!s->status_open);
    if (uv_timer_init(s->loop, &s->status_timer) != 0) return;
    s->status_timer.data = s;
    s->status_open = 1;
    s->pending++;
    s->last_role = -1;
    s->last_leader = UINT32_MAX;
    (void)uv_timer_start(&s->status_timer, rt_server__status_cb, RT_SERVER_STATUS_INTERVAL_MS,
                         RT_SERVER_STATUS_INTERVAL_MS);
}

/* ---- start / stop ----------------------------------------------------------- */

static int rt_server__start_listeners(rt_server_t *s, char *err, size_t cap) {
    int rc = 0;
    if (s->clients != NULL && (rc = rt_client_port_start(s->clients)) != 0) {
        rt_server__err(err, cap, "client port %s: %s", s->client_addr, rt_strerror(rc));
        return rc;
    }
    if (s->has_client)
        rt_log_write(&s->log, RT_LOG_INFO, "wire clients on port %d",
                     rt_client_port_port(s->clients));
    if (s->has_frontend) {
        rc = s->frontend.start(s->frontend.arg, s, s->amqp_addr);
        if (rc != 0) {
            rt_server__err(err, cap, "%s front end on %s: %s",
                           s->frontend.name ? s->frontend.name : "amqp", s->amqp_addr,
                           rt_strerror(rc));
            return rc;
        }
        s->frontend_started = 1;
        rt_log_write(&s->log, RT_LOG_INFO, "AMQP 0-9-1 on %s", s->amqp_addr);
    } else if (s->has_amqp) {
        /* The hook for the AMQP front end (rt_server_config_t.amqp_frontend)
         * is empty in this build: say so rather than pretend to listen. */
        rt_log_write(&s->log, RT_LOG_WARN,
                     "AMQP address %s stored; no AMQP front end is plugged in yet",
                     s->amqp_addr);
    }
    return 0;
}

int rt_server_start(rt_server_t *s, char *err, size_t err_cap) {
    assert(s != NULL);
    if (s->state != RT_SERVER__NEW) return RT_ESTATE;
    s->state = RT_SERVER__RUNNING;
    rt_ignore_sigpipe(); /* a client closing under a write must not kill the node */
    int rc = rt_lock_data_dir(s->data_dir, &s->lock);
    if (rc != 0) {
        rt_server__err(err, err_cap, "%s", s->lock.message);
        rt_server_stop(s);
        return rc;
    }
    rt_io_set_client_hook(s->io, rt_server__client_send, s);
    rc = rt_io_start(s->io, &broker_node_program, &s->broker);
    if (rc != 0) {
        rt_server__err(err, err_cap, "node on %s (data dir %s): %s", s->peers_text[s->node_id],
                       s->data_dir, rt_strerror(rc));
        rt_server_stop(s);
        return rc;
    }
    rc = rt_server__start_listeners(s, err, err_cap);
    if (rc != 0) {
        rt_server_stop(s);
        return rc;
    }
    char strategy[RT_SERVER_ERR_MAX];
    broker_config_format(&s->broker, strategy, sizeof strategy);
    rt_log_write(&s->log, RT_LOG_INFO, "peers on %s, data dir %s, %s",
                 s->peers_text[s->node_id], s->data_dir, strategy);
    rt_server__status_start(s);
    s->started = 1;
    return 0;
}

static void rt_server__close_signals(rt_server_t *s) {
    if (!s->signals_open) return;
    s->signals_open = 0;
    uv_close((uv_handle_t *)&s->sigint, rt_server__handle_closed);
    uv_close((uv_handle_t *)&s->sigterm, rt_server__handle_closed);
}

void rt_server_stop(rt_server_t *s) {
    if (s == NULL || s->state == RT_SERVER__STOPPED) return;
    const int was_started = s->started;
    s->state = RT_SERVER__STOPPED;
    if (s->frontend_started) {
        s->frontend_started = 0;
        s->frontend.stop(s->frontend.arg);
    }
    rt_client_port_stop(s->clients);
    if (s->io != NULL) {
        rt_io_set_client_hook(s->io, NULL, NULL);
        rt_io_stop(s->io);
    }
    if (s->status_open) {
        s->status_open = 0;
        uv_close((uv_handle_t *)&s->status_timer, rt_server__handle_closed);
    }
    rt_server__close_signals(s);
    if (was_started) rt_log_write(&s->log, RT_LOG_INFO, "server stopped");
}

void rt_server_free(rt_server_t *s) {
    if (s == NULL) return;
    rt_server_stop(s);
    rt_client_port_free(s->clients);
    s->clients = NULL;
    rt_io_free(s->io);
    s->io = NULL;
    rt_lock_release(&s->lock);
    s->free_requested = 1;
    rt_server__release_if_done(s);
}

static void rt_server__signal_cb(uv_signal_t *h, int signum) {
    rt_server_t *s = h->data;
    assert(s != NULL && s->signals_open);
    rt_log_write(&s->log, RT_LOG_INFO, "signal %d: stopping gracefully", signum);
    rt_server_stop(s); /* also closes the signal watchers */
}

int rt_server_watch_signals(rt_server_t *s) {
    assert(s != NULL);
    if (s->state != RT_SERVER__RUNNING || s->signals_open) return IO_EINVAL;
    if (uv_signal_init(s->loop, &s->sigint) != 0) return IO_EINVAL;
    if (uv_signal_init(s->loop, &s->sigterm) != 0) {
        s->pending++;
        uv_close((uv_handle_t *)&s->sigint, rt_server__handle_closed);
        return IO_EINVAL;
    }
    s->sigint.data = s;
    s->sigterm.data = s;
    s->signals_open = 1;
    s->pending += 2;
    if (uv_signal_start(&s->sigint, rt_server__signal_cb, SIGINT) != 0 ||
        uv_signal_start(&s->sigterm, rt_server__signal_cb, SIGTERM) != 0) {
        rt_server__close_signals(s);
        return IO_EINVAL;
    }
    return 0;
}

/* ---- accessors ------------------------------------------------------------ */

int rt_server_running(const rt_server_t *s) {
    assert(s != NULL);
    return s->state == RT_SERVER__RUNNING && s->io != NULL && rt_io_running(s->io);
}

rt_io_t *rt_server_io(rt_server_t *s) {
    assert(s != NULL);
    return s->io;
}

broker_node_t *rt_server_node(rt_server_t *s) {
    assert(s != NULL);
    return s->io != NULL ? (broker_node_t *)rt_io_node(s->io) : NULL;
}

int rt_server_peer_port(const rt_server_t *s) {
    assert(s != NULL);
    return s->io != NULL ? rt_io_listen_port(s->io) : 0;
}

int rt_server_client_port(const rt_server_t *s) {
    assert(s != NULL);
    return s->clients != NULL ? rt_client_port_port(s->clients) : 0;
}

const char *rt_server_amqp_addr(const rt_server_t *s) {
    assert(s != NULL);
    return s->has_amqp ? s->amqp_addr : NULL;
}

rt_client_port_t *rt_server_clients(rt_server_t *s) {
    assert(s != NULL);
    return s->clients;
}

/* ---- the whole process ------------------------------------------------------ */

int rt_server_run_on(uv_loop_t *loop, const rt_server_config_t *cfg, char *err,
                     size_t err_cap) {
    assert(loop != NULL);
    assert(cfg != NULL);
    rt_server_t *s = NULL;
    int rc = rt_server_new(loop, cfg, &s, err, err_cap);
    if (rc == 0) rc = rt_server_start(s, err, err_cap);
    if (rc == 0 && rt_server_watch_signals(s) != 0) {
        rt_server__err(err, err_cap, "cannot watch SIGINT/SIGTERM");
        rc = IO_EINVAL;
        rt_server_stop(s);
    }
    /* Runs until a signal or a node failure stopped everything. */
    if (rc == 0) (void)uv_run(loop, UV_RUN_DEFAULT);
    if (s != NULL && rc == 0 && s->failed) {
        rt_server__err(err, err_cap, "the node failed (see the log)");
        rc = RT_EBOOT;
    }
    rt_server_free(s);
    (void)uv_run(loop, UV_RUN_DEFAULT); /* let the handles close */
    return rc;
}

int rt_server_run(const rt_server_config_t *cfg, char *err, size_t err_cap) {
    assert(cfg != NULL);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        rt_server__err(err, err_cap, "libuv loop init failed");
        return IO_ENOMEM;
    }
    const int rc = rt_server_run_on(&loop, cfg, err, err_cap);
    if (uv_loop_close(&loop) != 0) (void)uv_run(&loop, UV_RUN_DEFAULT);
    return rc;
}
