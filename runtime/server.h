/*
 * runtime/server.h — one real broker process: the reference broker node
 * (broker_node_program) on the libuv runtime, its data dir locked, its peer
 * links over TCP, a client port speaking the wire protocol, and an AMQP
 * 0-9-1 front end plugged in through rt_server_config_t.amqp_frontend
 * (runtime/amqp_frontend.h provides one).
 *
 * What `chaoslab broker` runs (rt_server_run), and what tests embed: several
 * rt_server_t may share one uv loop (a whole cluster in one process).
 *
 * Lifecycle: rt_server_new -> rt_server_start -> ... -> rt_server_stop ->
 * rt_server_free, then keep running the loop until the handles have closed
 * (as with rt_io_t). The data dir lock is taken in start and released in
 * free, so another server may open the same dir only after free; in one
 * process, run the loop a turn or two after free before reopening the dir,
 * so a disk operation still running on the thread pool has finished.
 *
 * Client endpoints: the runtime has ONE client send hook per node. The server
 * owns it and routes each send to the front end that opened the address: the
 * client port first, then the AMQP front end. A front end that sees a
 * connection close calls rt_server_client_closed() so the node returns the
 * client's unacked deliveries at once and forgets it.
 */
#ifndef CHAOSLAB_RUNTIME_SERVER_H
#define CHAOSLAB_RUNTIME_SERVER_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "broker/node.h"
#include "runtime/client_port.h"
#include "runtime/uv_io.h"

#define RT_SERVER_ERR_MAX 256u          /* bytes of an error message */
#define RT_SERVER_STATUS_INTERVAL_MS 250u /* role/leader change polling */

typedef struct rt_server rt_server_t;

/*
 * The AMQP front end hook. The AMQP 0-9-1 listener lives in another module
 * (rt_amqp_server_hook fills one); it plugs in here without changing the
 * server. With
 * rt_server_config_t.amqp_frontend NULL, `amqp_addr` is stored (and logged)
 * but nothing listens on it.
 */
typedef struct rt_server_frontend {
    const char *name; /* for logs, e.g. "amqp" */
    /* Listen on `listen_addr` ("host:port") and serve the node of `server`:
     * open client endpoints with rt_io_client_open(rt_server_io(server)),
     * deliver with rt_io_client_deliver, report closes with
     * rt_server_client_closed. Returns 0 or a negative RT_E* / IO_E* code. */
    int (*start)(void *arg, rt_server_t *server, const char *listen_addr);
    /* Node -> client bytes for `dest` (copy them). Return IO_EUNREACH when
     * `dest` is not one of this front end's endpoints. */
    int (*send)(void *arg, io_addr_t dest, const uint8_t *bytes, size_t len);
    /* Close the listener and every connection. Idempotent. */
    void (*stop)(void *arg);
    void *arg;
} rt_server_frontend_t;

typedef struct rt_server_config {
    uint32_t node_id;          /* index into peers */
    const char *const *peers;  /* "host:port" per node id, borrowed until new returns */
    uint32_t peers_count;      /* 1..BROKER_REPLICAS_MAX: the replica count */
    const char *listen_host;   /* peer listener host; NULL = "127.0.0.1" */
    const char *client_addr;   /* wire client port "host:port" (port 0 = any);
                                  NULL = no client port */
    uint32_t client_conns_max; /* 0 = RT_CLIENT_CONNS_DEFAULT */
    const char *client_token;  /* wire client port token (client_port.h);
                                  NULL = none (keep the port on loopback) */
    uint32_t handshake_timeout_ms; /* client port; 0 = default */
    uint32_t idle_timeout_ms;      /* client port; 0 = default */
    uint32_t frame_timeout_ms;     /* client port; 0 = default */
    const char *amqp_addr;     /* AMQP 0-9-1 "host:port"; NULL = none */
    const rt_server_frontend_t *amqp_frontend; /* NULL = amqp_addr only stored */
    const char *data_dir;      /* created if missing; locked while running */
    broker_config_t broker;    /* strategies; id and replicas are set from
                                  node_id and peers_count */
    rt_log_level_t log_level;
    FILE *log_out;             /* borrowed; NULL = stderr */
    uint64_t seed;             /* 0 = from the OS */
} rt_server_config_t;

/* Allocate a server on `loop` (borrowed). Copies and checks `cfg` (peers,
 * addresses, the broker config). Touches neither disk nor network. Returns 0
 * and *out, or IO_EINVAL / RT_EADDR / IO_ENOMEM with a message in err. */
int rt_server_new(uv_loop_t *loop, const rt_server_config_t *cfg,
                  rt_server_t **out, char *err, size_t err_cap);

/* Lock the data dir, boot the node (recovery from meta, snapshot and log
 * begins), listen for peers and clients, start the AMQP front end if any.
 * Returns 0; RT_ELOCKED (another process holds the dir: err names its pid),
 * RT_EDIR, RT_EBIND (a port is busy), RT_EBOOT, RT_ESTATE; err says which.
 * After a failure everything started is stopped: call rt_server_free. */
int rt_server_start(rt_server_t *s, char *err, size_t err_cap);

/* Graceful stop: the front ends close, the node halts (rt_io_stop). The
 * data dir stays locked until rt_server_free. Idempotent; safe from a
 * signal callback, not from inside a node handler. */
void rt_server_stop(rt_server_t *s);

/* Stop if needed, release the data dir lock, free once the handles closed
 * (during the caller's next uv_run). NULL is fine. */
void rt_server_free(rt_server_t *s);

/* Stop gracefully on the first SIGINT or SIGTERM. Returns 0 or IO_EINVAL. */
int rt_server_watch_signals(rt_server_t *s);

/* 1 while the node runs. */
int rt_server_running(const rt_server_t *s);
rt_io_t *rt_server_io(rt_server_t *s);
/* The node, NULL when not running. */
broker_node_t *rt_server_node(rt_server_t *s);
int rt_server_peer_port(const rt_server_t *s);
/* Bound client port, 0 when there is none. */
int rt_server_client_port(const rt_server_t *s);
/* The AMQP address given in the config, NULL if none. */
const char *rt_server_amqp_addr(const rt_server_t *s);
rt_client_port_t *rt_server_clients(rt_server_t *s);

/* A front end's connection for `addr` closed: the node closes its session
 * (unacked deliveries return to their queues) and forgets the client. */
void rt_server_client_closed(rt_server_t *s, io_addr_t addr);

/* The whole process for `chaoslab broker`: own loop, start, watch signals,
 * run until stopped, clean up. Returns 0 after a graceful stop, or a
 * negative code with err set (nothing left running). */
int rt_server_run(const rt_server_config_t *cfg, char *err, size_t err_cap);

/* rt_server_run on the caller's `loop` (borrowed, initialised), so things
 * that must live on the server's loop (the AMQP front end of
 * cfg->amqp_frontend) can be created on it first. Runs until stopped, frees
 * the server and runs the loop until the server's handles closed; does NOT
 * close the loop: the caller frees its own objects (e.g. rt_amqp_free), runs
 * the loop once more and closes it. Same returns as rt_server_run. */
int rt_server_run_on(uv_loop_t *loop, const rt_server_config_t *cfg, char *err,
                     size_t err_cap);

#endif
