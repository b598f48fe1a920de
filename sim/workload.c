/*
 * sim/workload.c — producer, consumer and setup client programs.
 *
 * One struct (workload_client_t) holds a client of any role: its copied
 * config, the state that survives a host crash (id counters, the consumer's
 * dedup set, stats) and the volatile state of the running incarnation
 * (in-flight publishes, buffered deliveries, leader guess), which boot
 * resets. boot returns the client itself as the node: at most one
 * incarnation runs at a time, so that is safe.
 */
#include "sim/workload.h"

#include "broker/invariant.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WL_PRODUCER = 1, WL_CONSUMER = 2, WL_SETUP = 3 };

/* Timer tokens. Every op's timeout or backoff shares one timer, the slot
 * sweep: ops keep their own deadline (wl_op_t.deadline_ns) and the sweep is
 * armed for the earliest, so a confirmed op costs no kernel event. */
enum {
    WL_TOKEN_START = 1,
    WL_TOKEN_TICK = 2,
    WL_TOKEN_HEARTBEAT = 3,
    WL_TOKEN_WATCHDOG = 4,
    WL_TOKEN_PROCESS = 5,
    WL_TOKEN_RESTART = 6,
    WL_TOKEN_SETUP = 7,
    WL_TOKEN_SLOTS = 8,
};

/* Delivery tags remembered per subscription (duplicate DELIVER frames). */
#define WL_TAGS_WINDOW 4096u

/* Consumer session states. */
enum { WL_C_IDLE = 0, WL_C_SUBSCRIBING, WL_C_ACTIVE, WL_C_DOWN, WL_C_STOPPED };

#define WL_ATTEMPTS_MAX 255u /* sends per op: fits the low byte of request_id */
#define WL_TAG_MAX 48u

typedef struct wl_op {
    bool used;
    bool backoff;      /* timer means "resend", not "timed out" */
    bool maybe_stored; /* an attempt got no definite answer */
    uint64_t op_number;
    uint64_t message_id;
    uint64_t sequence;
    uint64_t invoke_ns;
    uint32_t attempts; /* sends so far */
    uint32_t retries_used;
    uint32_t redirects;
    uint32_t node;     /* broker of the current attempt */
    uint64_t deadline_ns; /* local clock; 0 = no timeout or backoff pending */
} wl_op_t;

typedef struct wl_delivery {
    uint64_t delivery_tag, message_id, producer_id, sequence;
    uint32_t delivery_count;
    uint32_t node;
    uint8_t redelivered;
} wl_delivery_t;

/* Open-addressing set of processed ids (idempotent consumer). */
typedef struct wl_set {
    uint64_t *slots; /* 0 = empty (message id 0 is never used) */
    uint64_t cap, count;
} wl_set_t;

struct workload_client {
    int role;
    workload_env_t env;
    workload_producer_config_t pcfg;
    workload_consumer_config_t ccfg;
    workload_setup_config_t scfg;
    char queue[WIRE_NAME_SIZE_MAX + 1];
    char setup_names[WORKLOAD_QUEUES_MAX][WIRE_NAME_SIZE_MAX + 1];
    char setup_dlqs[WORKLOAD_QUEUES_MAX][WIRE_NAME_SIZE_MAX + 1];
    uint16_t queue_id; /* history id of `queue` */
    sim_prng_t prng;
    workload_stats_t stats;
    /* Survives crashes. */
    uint64_t ops_started;   /* producer: message counter */
    uint64_t next_sequence;
    uint64_t request_seq;
    uint32_t process;       /* Jepsen process number */
    uint32_t sessions;      /* consumer tag counter */
    bool stopped;
    wl_set_t dedup;
    uint32_t setup_index;   /* queues declared so far */
    uint32_t setup_attempts;
    /* Volatile: one incarnation. */
    const io_t *io;
    bool running;
    uint32_t leader;
    bool waiting_window;    /* the window is full: the next publish waits for a slot */
    bool ticking;
    /* With waiting_window: when the skipped tick was due (local clock). A
     * publish that fills the window does not arm the tick it would find
     * full; the freed slot either re-arms it for this time or, when later,
     * publishes at once, as the tick would have. */
    uint64_t tick_due_ns;
    uint32_t inflight;
    uint64_t sweep_armed_ns; /* deadline of the slot sweep timer; 0 = idle */
    wl_op_t ops[WORKLOAD_WINDOW_MAX];
    int cstate;
    uint64_t session_id;
    /* Delivery tags seen in this subscription: a duplicated DELIVER frame is
     * dropped as TCP would (tags below tag_floor count as seen). */
    uint64_t tag_floor;
    uint64_t tag_bits[WL_TAGS_WINDOW / 64];
    uint64_t consume_request;
    uint64_t last_heard_ns; /* local clock */
    char tag[WL_TAG_MAX];
    bool processing;
    uint32_t buf_head, buf_count;
    wl_delivery_t buf[WORKLOAD_BUFFER_MAX];
    uint64_t setup_request;
    /* Encode buffer (body + names + header). */
    uint8_t *wbuf;
    size_t wbuf_cap;
    uint8_t *body;
};

/* ---- small helpers ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int wl__err(char *err, size_t cap, const char *fmt, ...) {
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return IO_EINVAL;
}

static uint64_t wl__gnow(const workload_client_t *c) { return sim_now_ns(c->env.sim); }

static void wl__record_flags(workload_client_t *c, uint8_t kind, uint8_t op,
                             uint64_t message_id, uint64_t producer_id, uint64_t sequence,
                             uint32_t node, int32_t detail, uint64_t value, uint8_t flags) {
    if (c->env.history == NULL) return;
    history_record_t r;
    memset(&r, 0, sizeof(r));
    r.time_ns = wl__gnow(c);
    r.client = c->env.client_index;
    r.process = c->process;
    r.kind = kind;
    r.op = op;
    r.message_id = message_id;
    r.producer_id = producer_id;
    r.sequence = sequence;
    r.node = node;
    r.detail = detail;
    r.value = value;
    r.flags = flags;
    r.queue = c->queue_id;
    (void)history_append(c->env.history, &r); /* full: counted as dropped */
}

static void wl__record(workload_client_t *c, uint8_t kind, uint8_t op, uint64_t message_id,
                       uint64_t producer_id, uint64_t sequence, uint32_t node, int32_t detail,
                       uint64_t value) {
    wl__record_flags(c, kind, op, message_id, producer_id, sequence, node, detail, value, 0);
}

/* A deliver record also carries the redelivered flag and the count. */
static void wl__record_deliver(workload_client_t *c, io_addr_t from, const wire_deliver_t *d) {
    if (c->env.history == NULL) return;
    history_record_t r;
    memset(&r, 0, sizeof(r));
    r.time_ns = wl__gnow(c);
    r.client = c->env.client_index;
    r.process = c->process;
    r.kind = HISTORY_OK;
    r.op = HISTORY_OP_DELIVER;
    r.message_id = d->message_id;
    r.producer_id = d->producer_id;
    r.sequence = d->sequence;
    r.node = from;
    r.value = d->delivery_tag;
    r.delivery_count = d->delivery_count;
    r.flags = d->redelivered ? HISTORY_FLAG_REDELIVERED : 0;
    r.queue = c->queue_id;
    (void)history_append(c->env.history, &r);
}

/* Arm `token` delay_ns from now on the host's own clock. */
static void wl__after(workload_client_t *c, uint64_t delay_ns, uint64_t token) {
    assert(c->running);
    (void)io_timer_set(c->io, io_now_ns(c->io) + delay_ns, token);
}

/* Give op `slot` a timeout or backoff ending `delay_ns` from now. The sweep
 * moves only when this deadline comes first. */
static void wl__slot_arm(workload_client_t *c, uint32_t slot, uint64_t delay_ns) {
    assert(c->running && slot < c->pcfg.window && c->ops[slot].used);
    const uint64_t deadline_ns = io_now_ns(c->io) + delay_ns;
    c->ops[slot].deadline_ns = deadline_ns;
    if (c->sweep_armed_ns != 0 && c->sweep_armed_ns <= deadline_ns) return;
    c->sweep_armed_ns = deadline_ns;
    (void)io_timer_set(c->io, deadline_ns, WL_TOKEN_SLOTS);
}

static void wl__slot_disarm(workload_client_t *c, uint32_t slot) {
    assert(slot < WORKLOAD_WINDOW_MAX);
    c->ops[slot].deadline_ns = 0; /* a sweep that finds nothing due re-arms */
}

static int wl__send(workload_client_t *c, uint32_t node, const wire_msg_t *m) {
    assert(c->running);
    assert(node < c->env.brokers_count);
    int n = wire_encode(m, c->wbuf, c->wbuf_cap);
    if (n < 0 || io_send(c->io, node, c->wbuf, (size_t)n) != 0) {
        c->stats.send_errors++;
        return n < 0 ? n : IO_EUNREACH;
    }
    return 0;
}

static void wl__rotate(workload_client_t *c, uint32_t from_node) {
    if (c->leader == from_node) c->leader = (from_node + 1) % c->env.brokers_count;
}

/* Follow a NOT_LEADER hint; a useless hint rotates. True if the hint was used. */
static bool wl__follow(workload_client_t *c, uint32_t from, uint32_t hint) {
    if (hint < c->env.brokers_count && hint != from) {
        c->leader = hint;
        return true;
    }
    wl__rotate(c, from);
    return false;
}

static void wl__heartbeat(workload_client_t *c) {
    wire_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = WIRE_MSG_HEARTBEAT;
    m.heartbeat.session_id = c->session_id;
    m.heartbeat.timestamp_ns = io_now_ns(c->io);
    (void)wl__send(c, c->leader, &m);
}

/* ---- the dedup set ----------------------------------------------------------- */

static uint64_t wl__mix(uint64_t x) {
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

static bool wl__set_has(const wl_set_t *s, uint64_t id) {
    if (s->cap == 0) return false;
    for (uint64_t i = wl__mix(id) & (s->cap - 1), n = 0; n < s->cap; n++, i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i] == 0) return false;
        if (s->slots[i] == id) return true;
    }
    return false;
}

static void wl__set_put_raw(wl_set_t *s, uint64_t id) {
    uint64_t i = wl__mix(id) & (s->cap - 1);
    while (s->slots[i] != 0 && s->slots[i] != id) i = (i + 1) & (s->cap - 1);
    if (s->slots[i] == 0) s->count++;
    s->slots[i] = id;
}

/* Add id; IO_ENOMEM when WORKLOAD_DEDUP_MAX is reached or growing fails. */
static int wl__set_add(wl_set_t *s, uint64_t id) {
    assert(id != 0);
    if ((s->count + 1) * 2 > s->cap) {
        if (s->count >= WORKLOAD_DEDUP_MAX) return IO_ENOMEM;
        uint64_t cap = s->cap == 0 ? 1024 : s->cap * 2;
        wl_set_t n = {calloc((size_t)cap, sizeof(uint64_t)), cap, 0};
        if (n.slots == NULL) return IO_ENOMEM;
        for (uint64_t i = 0; i < s->cap; i++)
            if (s->slots[i] != 0) wl__set_put_raw(&n, s->slots[i]);
        free(s->slots);
        *s = n;
    }
    wl__set_put_raw(s, id);
    assert(s->count * 2 <= s->cap);
    return 0;
}

/* ---- configs ------------------------------------------------------------------ */

void workload_producer_config_default(workload_producer_config_t *cfg) {
    assert(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    cfg->rate = WORKLOAD_RATE_CONSTANT;
    cfg->interval_ns = 10000000;
    cfg->window = 16;
    cfg->timeout_ns = 500000000;
    cfg->retries = 5;
    cfg->backoff_base_ns = 50000000;
    cfg->backoff_max_ns = 1000000000;
    cfg->backoff_multiplier = 2.0;
    cfg->persistent = true;
    cfg->confirms = true;
    cfg->body_size_bytes = 64;
    cfg->heartbeat_interval_ns = 100000000;
}

void workload_consumer_config_default(workload_consumer_config_t *cfg) {
    assert(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    cfg->prefetch = 16;
    cfg->ack_mode = WIRE_ACK_MANUAL;
    cfg->processing.kind = SIM_DIST_CONST;
    cfg->processing.base_ns = 1000000;
    cfg->crash_restart_ns = 1000000000;
    cfg->heartbeat_interval_ns = 100000000;
    cfg->session_timeout_ns = 1000000000;
    cfg->request_timeout_ns = 500000000;
    cfg->retry_delay_ns = 100000000;
}

void workload_setup_config_default(workload_setup_config_t *cfg) {
    assert(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    cfg->timeout_ns = 500000000;
}

static int wl__check_name(const char *name, bool empty_ok, const char *what, char *err,
                          size_t cap) {
    if (name == NULL || name[0] == '\0')
        return empty_ok ? 0 : wl__err(err, cap, "%s: name required", what);
    if (strlen(name) > WIRE_NAME_SIZE_MAX)
        return wl__err(err, cap, "%s: name longer than %u bytes", what, WIRE_NAME_SIZE_MAX);
    return 0;
}

int workload_producer_config_check(const workload_producer_config_t *cfg, char *err,
                                   size_t err_cap) {
    if (cfg == NULL) return wl__err(err, err_cap, "producer: no config");
    if (wl__check_name(cfg->queue, false, "producer queue", err, err_cap) != 0) return IO_EINVAL;
    if (cfg->count > WORKLOAD_MESSAGES_MAX) return wl__err(err, err_cap, "producer: count too large");
    if (cfg->rate != WORKLOAD_RATE_CONSTANT && cfg->rate != WORKLOAD_RATE_POISSON)
        return wl__err(err, err_cap, "producer: unknown rate kind");
    if (cfg->interval_ns == 0 || cfg->interval_ns > (UINT64_C(1) << 50))
        return wl__err(err, err_cap, "producer: interval_ns must be in (0, 2^50]");
    if (cfg->window == 0 || cfg->window > WORKLOAD_WINDOW_MAX)
        return wl__err(err, err_cap, "producer: window must be 1..%u", WORKLOAD_WINDOW_MAX);
    if (cfg->timeout_ns == 0) return wl__err(err, err_cap, "producer: timeout_ns must be > 0");
    if (cfg->retries > WORKLOAD_RETRIES_MAX)
        return wl__err(err, err_cap, "producer: retries must be <= %u", WORKLOAD_RETRIES_MAX);
    if (!isfinite(cfg->backoff_multiplier) || cfg->backoff_multiplier < 1.0)
        return wl__err(err, err_cap, "producer: backoff_multiplier must be finite and >= 1");
    if (cfg->backoff_max_ns < cfg->backoff_base_ns)
        return wl__err(err, err_cap, "producer: backoff_max_ns < backoff_base_ns");
    if (cfg->body_size_bytes > WORKLOAD_BODY_SIZE_MAX)
        return wl__err(err, err_cap, "producer: body larger than %u", WORKLOAD_BODY_SIZE_MAX);
    if (cfg->stop_ns != 0 && cfg->stop_ns < cfg->start_ns)
        return wl__err(err, err_cap, "producer: stop_ns before start_ns");
    return 0;
}

int workload_consumer_config_check(const workload_consumer_config_t *cfg, char *err,
                                   size_t err_cap) {
    if (cfg == NULL) return wl__err(err, err_cap, "consumer: no config");
    if (wl__check_name(cfg->queue, false, "consumer queue", err, err_cap) != 0) return IO_EINVAL;
    if (cfg->prefetch == 0 || cfg->prefetch > WORKLOAD_BUFFER_MAX)
        return wl__err(err, err_cap, "consumer: prefetch must be 1..%u", WORKLOAD_BUFFER_MAX);
    if (cfg->ack_mode != WIRE_ACK_MANUAL && cfg->ack_mode != WIRE_ACK_AUTO)
        return wl__err(err, err_cap, "consumer: unknown ack mode");
    if (sim_dist_check(&cfg->processing) != 0)
        return wl__err(err, err_cap, "consumer: bad processing distribution");
    if (!(cfg->crash_probability >= 0.0 && cfg->crash_probability <= 1.0))
        return wl__err(err, err_cap, "consumer: crash_probability must be in [0, 1]");
    if (!(cfg->nack_probability >= 0.0 && cfg->nack_probability <= 1.0) ||
        !(cfg->reject_probability >= 0.0 && cfg->reject_probability <= 1.0))
        return wl__err(err, err_cap, "consumer: nack/reject probabilities must be in [0, 1]");
    const bool refuses = cfg->poison_every != 0 || cfg->nack_probability > 0 ||
                         cfg->reject_probability > 0;
    if (refuses && cfg->ack_mode != WIRE_ACK_MANUAL)
        return wl__err(err, err_cap, "consumer: nack/reject/poison need manual acks");
    if (cfg->heartbeat_interval_ns == 0 || cfg->request_timeout_ns == 0)
        return wl__err(err, err_cap, "consumer: heartbeat and request timeouts must be > 0");
    if (cfg->session_timeout_ns <= cfg->heartbeat_interval_ns)
        return wl__err(err, err_cap, "consumer: session_timeout_ns must exceed the heartbeat");
    if (cfg->stop_ns != 0 && cfg->stop_ns < cfg->start_ns)
        return wl__err(err, err_cap, "consumer: stop_ns before start_ns");
    return 0;
}

int workload_setup_config_check(const workload_setup_config_t *cfg, char *err,
                                size_t err_cap) {
    if (cfg == NULL) return wl__err(err, err_cap, "setup: no config");
    if (cfg->queues_count == 0 || cfg->queues_count > WORKLOAD_QUEUES_MAX)
        return wl__err(err, err_cap, "setup: queues_count must be 1..%u", WORKLOAD_QUEUES_MAX);
    if (cfg->timeout_ns == 0) return wl__err(err, err_cap, "setup: timeout_ns must be > 0");
    for (uint32_t i = 0; i < cfg->queues_count; i++) {
        if (wl__check_name(cfg->queues[i].name, false, "setup queue", err, err_cap) != 0 ||
            wl__check_name(cfg->queues[i].dlq, true, "setup dlq", err, err_cap) != 0)
            return IO_EINVAL;
    }
    return 0;
}

/* ---- construction ------------------------------------------------------------ */

static int wl__new(const workload_env_t *env, int role, const char *queue,
                   size_t body_size, workload_client_t **out, char *err, size_t cap) {
    if (out == NULL) return wl__err(err, cap, "no output");
    *out = NULL;
    if (env == NULL || env->sim == NULL || env->brokers_count == 0 ||
        env->client_index >= WORKLOAD_CLIENTS_MAX ||
        (uint64_t)env->brokers_count + env->client_index >= sim_hosts_count(env->sim))
        return wl__err(err, cap, "bad workload env (sim, brokers, client index)");
    workload_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL) return IO_ENOMEM;
    c->role = role;
    c->env = *env;
    c->queue_id = HISTORY_QUEUE_NONE;
    if (queue != NULL) {
        snprintf(c->queue, sizeof(c->queue), "%s", queue);
        if (env->history != NULL && history_queue_id(env->history, queue, &c->queue_id) != 0) {
            free(c);
            return wl__err(err, cap, "history: too many queue names");
        }
    }
    c->wbuf_cap = WIRE_HEADER_SIZE + body_size + 4 * WIRE_NAME_SIZE_MAX + 256;
    c->wbuf = malloc(c->wbuf_cap);
    c->body = calloc(1, body_size > 0 ? body_size : 1);
    if (c->wbuf == NULL || c->body == NULL) {
        workload_client_free(c);
        return IO_ENOMEM;
    }
    sim_prng_init(&c->prng, sim_seed(env->sim), SIM_STREAM_CLIENT_BASE + env->client_index);
    *out = c;
    return 0;
}

int workload_producer_new(const workload_env_t *env, const workload_producer_config_t *cfg,
                          workload_client_t **out, char *err, size_t err_cap) {
    if (workload_producer_config_check(cfg, err, err_cap) != 0) return IO_EINVAL;
    int rc = wl__new(env, WL_PRODUCER, cfg->queue, cfg->body_size_bytes, out, err, err_cap);
    if (rc != 0) return rc;
    (*out)->pcfg = *cfg;
    (*out)->pcfg.queue = (*out)->queue;
    return 0;
}

int workload_consumer_new(const workload_env_t *env, const workload_consumer_config_t *cfg,
                          workload_client_t **out, char *err, size_t err_cap) {
    if (workload_consumer_config_check(cfg, err, err_cap) != 0) return IO_EINVAL;
    int rc = wl__new(env, WL_CONSUMER, cfg->queue, 0, out, err, err_cap);
    if (rc != 0) return rc;
    (*out)->ccfg = *cfg;
    (*out)->ccfg.queue = (*out)->queue;
    return 0;
}

int workload_setup_new(const workload_env_t *env, const workload_setup_config_t *cfg,
                       workload_client_t **out, char *err, size_t err_cap) {
    if (workload_setup_config_check(cfg, err, err_cap) != 0) return IO_EINVAL;
    int rc = wl__new(env, WL_SETUP, NULL, 0, out, err, err_cap);
    if (rc != 0) return rc;
    workload_client_t *c = *out;
    c->scfg = *cfg;
    for (uint32_t i = 0; i < cfg->queues_count; i++) {
        const workload_queue_spec_t *q = &cfg->queues[i];
        snprintf(c->setup_names[i], sizeof(c->setup_names[i]), "%s", q->name);
        snprintf(c->setup_dlqs[i], sizeof(c->setup_dlqs[i]), "%s", q->dlq != NULL ? q->dlq : "");
        c->scfg.queues[i].name = c->setup_names[i];
        c->scfg.queues[i].dlq = c->setup_dlqs[i];
    }
    return 0;
}

void workload_client_free(workload_client_t *c) {
    if (c == NULL) return;
    free(c->dedup.slots);
    free(c->wbuf);
    free(c->body);
    free(c);
}

io_addr_t workload_client_host(const workload_client_t *c) {
    assert(c != NULL);
    return c->env.brokers_count + c->env.client_index;
}

int workload_client_attach(workload_client_t *c) {
    if (c == NULL) return IO_EINVAL;
    int rc = sim_host_set_program(c->env.sim, workload_client_host(c), &workload_program, c);
    return rc != 0 ? rc : sim_host_start(c->env.sim, workload_client_host(c));
}

void workload_client_stats(const workload_client_t *c, workload_stats_t *out) {
    assert(c != NULL && out != NULL);
    *out = c->stats;
}

/* ---- producer ------------------------------------------------------------------ */

static uint64_t wl__producer_id(const workload_client_t *c) {
    return (uint64_t)c->env.client_index + 1;
}

static bool wl__producer_exhausted(const workload_client_t *c) {
    if (c->stopped) return true;
    if (c->pcfg.count != 0 && c->ops_started >= c->pcfg.count) return true;
    if (c->ops_started >= WORKLOAD_MESSAGES_MAX) return true;
    return c->pcfg.stop_ns != 0 && wl__gnow(c) >= c->pcfg.stop_ns;
}

static void wl__publish_send(workload_client_t *c, uint32_t slot) {
    wl_op_t *op = &c->ops[slot];
    assert(op->used && op->attempts < WL_ATTEMPTS_MAX);
    op->node = c->leader;
    op->backoff = false;
    uint64_t request_id = op->op_number << 8 | (op->attempts & 0xffu);
    op->attempts++;
    for (uint32_t i = 0; i < c->pcfg.body_size_bytes; i++)
        c->body[i] = (uint8_t)(op->message_id >> (8 * (i % 8)));
    wire_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = WIRE_MSG_PUBLISH;
    m.publish.request_id = request_id;
    m.publish.producer_id = wl__producer_id(c);
    m.publish.sequence = op->sequence;
    m.publish.message_id = op->message_id;
    m.publish.exchange = wire_str("");
    m.publish.routing_key = wire_str(c->queue);
    m.publish.persistent = c->pcfg.persistent ? 1 : 0;
    m.publish.body.ptr = c->body;
    m.publish.body.len = c->pcfg.body_size_bytes;
    (void)wl__send(c, op->node, &m); /* a failed send looks like a lost message */
    wl__slot_arm(c, slot, c->pcfg.timeout_ns);
}

static uint64_t wl__tick_gap_ns(workload_client_t *c) {
    return c->pcfg.rate == WORKLOAD_RATE_POISSON
               ? sim_prng_exponential_ns(&c->prng, c->pcfg.interval_ns)
               : c->pcfg.interval_ns;
}

static void wl__tick_schedule(workload_client_t *c) {
    c->ticking = true;
    wl__after(c, wl__tick_gap_ns(c), WL_TOKEN_TICK);
}

static void wl__op_complete_flags(workload_client_t *c, uint32_t slot, uint8_t kind,
                                  int32_t detail, uint32_t node, uint8_t flags);

static void wl__publish_new(workload_client_t *c) {
    assert(c->inflight < c->pcfg.window);
    uint32_t slot = 0;
    while (slot < WORKLOAD_WINDOW_MAX && c->ops[slot].used) slot++;
    assert(slot < c->pcfg.window);
    wl_op_t *op = &c->ops[slot];
    memset(op, 0, sizeof(*op));
    op->used = true;
    op->op_number = ++c->ops_started;
    op->message_id = (uint64_t)c->env.client_index << 40 | op->op_number;
    op->sequence = ++c->next_sequence;
    op->invoke_ns = wl__gnow(c);
    c->inflight++;
    c->stats.published++;
    wl__record(c, HISTORY_INVOKE, HISTORY_OP_PUBLISH, op->message_id, wl__producer_id(c),
               op->sequence, c->leader, 0, 0);
    wl__publish_send(c, slot);
    /* Fire-and-forget: the client never learns what became of it, so the
     * publish ends here as unknown; a later CONFIRM is a late answer. */
    if (!c->pcfg.confirms)
        wl__op_complete_flags(c, slot, HISTORY_INFO, 0, op->node, HISTORY_FLAG_UNCONFIRMED);
}

static void wl__tick(workload_client_t *c) {
    c->ticking = false;
    if (wl__producer_exhausted(c)) return;
    if (c->inflight >= c->pcfg.window) {
        c->waiting_window = true; /* resume when a slot frees */
        c->tick_due_ns = 0;
        c->stats.throttled++;
        return;
    }
    wl__publish_new(c);
    if (c->inflight >= c->pcfg.window) {
        c->tick_due_ns = io_now_ns(c->io) + wl__tick_gap_ns(c);
        c->waiting_window = true; /* no timer: see tick_due_ns */
        return;
    }
    wl__tick_schedule(c);
}

/* Every publish is in flight or ended in exactly one way. */
static void wl__accounting_check(const workload_client_t *c) {
    const workload_stats_t *st = &c->stats;
    BROKER_INVARIANT(st->published == st->confirmed + st->publish_nacked + st->failed +
                                          st->unknown + c->inflight,
                     "workload: a publish ended in no outcome or in two");
}

/* `flags`: HISTORY_FLAG_NACKED for a definite broker refusal (kind fail). */
static void wl__op_complete_flags(workload_client_t *c, uint32_t slot, uint8_t kind,
                                  int32_t detail, uint32_t node, uint8_t flags) {
    wl_op_t *op = &c->ops[slot];
    assert(op->used && c->inflight > 0);
    wl__slot_disarm(c, slot);
    if (kind == HISTORY_OK) c->stats.confirmed++;
    else if (kind == HISTORY_FAIL && (flags & HISTORY_FLAG_NACKED)) c->stats.publish_nacked++;
    else if (kind == HISTORY_FAIL) c->stats.failed++;
    else c->stats.unknown++;
    wl__record_flags(c, kind, HISTORY_OP_PUBLISH, op->message_id, wl__producer_id(c),
                     op->sequence, node, detail, op->attempts, flags);
    op->used = false;
    c->inflight--;
    wl__accounting_check(c);
    if (c->waiting_window) {
        c->waiting_window = false;
        if (c->tick_due_ns > io_now_ns(c->io)) {
            c->ticking = true; /* the skipped tick, at its own time */
            (void)io_timer_set(c->io, c->tick_due_ns, WL_TOKEN_TICK);
        } else {
            if (c->tick_due_ns != 0) c->stats.throttled++; /* it would have waited */
            wl__tick(c);
        }
    }
}

static void wl__op_complete(workload_client_t *c, uint32_t slot, uint8_t kind, int32_t detail,
                            uint32_t node) {
    wl__op_complete_flags(c, slot, kind, detail, node, 0);
}

/* Resend after `delay_ns`, or give up when the retries are spent. */
static void wl__op_retry(workload_client_t *c, uint32_t slot, bool counts, uint64_t delay_ns,
                         int32_t detail) {
    wl_op_t *op = &c->ops[slot];
    assert(op->used);
    if (counts) {
        if (op->retries_used >= c->pcfg.retries || op->attempts >= WL_ATTEMPTS_MAX) {
            wl__op_complete(c, slot, op->maybe_stored ? HISTORY_INFO : HISTORY_FAIL, detail,
                            op->node);
            return;
        }
        double d = (double)c->pcfg.backoff_base_ns *
                   pow(c->pcfg.backoff_multiplier, (double)op->retries_used);
        delay_ns = d >= (double)c->pcfg.backoff_max_ns ? c->pcfg.backoff_max_ns : (uint64_t)d;
        op->retries_used++;
        c->stats.retries++;
    }
    /* A new sequence makes the retry a new message to the broker's dedup. */
    if (!c->pcfg.idempotent && op->maybe_stored) op->sequence = ++c->next_sequence;
    op->backoff = true;
    wl__slot_arm(c, slot, delay_ns);
}

static void wl__slot_timer(workload_client_t *c, uint32_t slot) {
    wl_op_t *op = &c->ops[slot];
    assert(slot < c->pcfg.window && op->used);
    op->deadline_ns = 0;
    if (op->backoff) {
        wl__publish_send(c, slot);
        return;
    }
    op->maybe_stored = true; /* no answer: it may have been stored */
    wl__rotate(c, op->node);
    wl__op_retry(c, slot, true, 0, WIRE_STATUS_TIMEOUT);
}

/* The sweep timer fired: run every op due now (earliest deadline first, ties
 * by slot), each once, then re-arm for the earliest deadline left. An op
 * re-armed due again now waits for that next firing, like a fresh timer. */
static void wl__slots_sweep(workload_client_t *c) {
    c->sweep_armed_ns = 0;
    const uint64_t now_ns = io_now_ns(c->io);
    uint32_t due[WORKLOAD_WINDOW_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->pcfg.window; i++) {
        const wl_op_t *op = &c->ops[i];
        if (!op->used || op->deadline_ns == 0 || op->deadline_ns > now_ns) continue;
        uint32_t k = n++; /* insertion sort: due ops are few */
        while (k > 0 && c->ops[due[k - 1]].deadline_ns > op->deadline_ns) {
            due[k] = due[k - 1];
            k--;
        }
        due[k] = i;
    }
    assert(n <= WORKLOAD_WINDOW_MAX);
    /* Running one op never completes or re-arms another: all stay due. */
    for (uint32_t k = 0; k < n; k++) wl__slot_timer(c, due[k]);
    uint64_t next_ns = 0;
    for (uint32_t i = 0; i < c->pcfg.window; i++) {
        const wl_op_t *op = &c->ops[i];
        if (op->used && op->deadline_ns != 0 && (next_ns == 0 || op->deadline_ns < next_ns))
            next_ns = op->deadline_ns;
    }
    if (next_ns != 0 && (c->sweep_armed_ns == 0 || next_ns < c->sweep_armed_ns)) {
        c->sweep_armed_ns = next_ns;
        (void)io_timer_set(c->io, next_ns, WL_TOKEN_SLOTS);
    }
}

/* The slot of op `op_number`, or -1 (already completed: a late answer). */
static int32_t wl__find_op(workload_client_t *c, uint64_t request_id, uint64_t producer_id,
                           bool *current) {
    uint64_t op_number = request_id >> 8;
    for (uint32_t i = 0; i < c->pcfg.window; i++) {
        const wl_op_t *op = &c->ops[i];
        if (op->used && op->op_number == op_number && producer_id == wl__producer_id(c)) {
            *current = (request_id & 0xffu) == ((op->attempts - 1) & 0xffu) && !op->backoff;
            return (int32_t)i;
        }
    }
    c->stats.late_answers++;
    return -1;
}

static void wl__producer_message(workload_client_t *c, io_addr_t from, const wire_msg_t *m) {
    bool current = false;
    int32_t slot;
    switch (m->type) {
    case WIRE_MSG_CONFIRM:
        slot = wl__find_op(c, m->confirm.request_id, m->confirm.producer_id, &current);
        if (slot < 0) return;
        c->leader = from; /* it confirmed: it leads */
        if (m->confirm.duplicate) c->stats.duplicate_confirms++;
        wl__op_complete_flags(c, (uint32_t)slot, HISTORY_OK, m->confirm.duplicate ? 1 : 0, from,
                              m->confirm.unroutable ? HISTORY_FLAG_UNROUTABLE : 0);
        return;
    case WIRE_MSG_NACK_PUBLISH:
        slot = wl__find_op(c, m->nack_publish.request_id, m->nack_publish.producer_id, &current);
        if (slot < 0 || !current) return;
        if (m->nack_publish.reason == WIRE_STATUS_TIMEOUT ||
            m->nack_publish.reason == WIRE_STATUS_NOT_LEADER) {
            c->ops[slot].maybe_stored = true; /* in a log, may still commit */
            wl__rotate(c, from);
            wl__op_retry(c, (uint32_t)slot, true, 0, m->nack_publish.reason);
            return;
        }
        const bool maybe = c->ops[slot].maybe_stored; /* then the NACK proves nothing */
        wl__op_complete_flags(c, (uint32_t)slot, maybe ? HISTORY_INFO : HISTORY_FAIL,
                              m->nack_publish.reason, from, maybe ? 0 : HISTORY_FLAG_NACKED);
        return;
    case WIRE_MSG_NOT_LEADER:
        slot = wl__find_op(c, m->not_leader.request_id, wl__producer_id(c), &current);
        if (slot < 0 && from == c->leader) (void)wl__follow(c, from, m->not_leader.leader_hint);
        if (slot < 0 || !current) return;
        c->stats.redirects++;
        wl__slot_disarm(c, (uint32_t)slot);
        bool hinted = wl__follow(c, from, m->not_leader.leader_hint);
        wl_op_t *op = &c->ops[slot];
        if (op->redirects++ < WORKLOAD_REDIRECTS_MAX)
            wl__op_retry(c, (uint32_t)slot, false, hinted ? 0 : c->pcfg.backoff_base_ns, 0);
        else
            wl__op_retry(c, (uint32_t)slot, true, 0, WIRE_STATUS_NOT_LEADER);
        return;
    default:
        return; /* heartbeat answers and anything else: nothing to do */
    }
}

/* Record every publish in flight as unknown (`flags` says why) and forget it. */
static void wl__producer_abandon(workload_client_t *c, uint8_t flags) {
    for (uint32_t i = 0; i < c->pcfg.window; i++) {
        wl_op_t *op = &c->ops[i];
        if (!op->used) continue;
        c->stats.unknown++;
        if (flags & HISTORY_FLAG_AT_END) c->stats.unknown_at_end++;
        wl__record_flags(c, HISTORY_INFO, HISTORY_OP_PUBLISH, op->message_id, wl__producer_id(c),
                         op->sequence, op->node, IO_ECANCELED, op->attempts, flags);
        op->used = false;
        op->deadline_ns = 0;
        c->inflight--;
    }
    assert(c->inflight == 0);
    wl__accounting_check(c);
}

static void wl__producer_halt(workload_client_t *c) {
    wl__producer_abandon(c, 0); /* the process died with these in flight */
}

/* ---- consumer ------------------------------------------------------------------ */

static void wl__consumer_subscribe(workload_client_t *c) {
    c->sessions++;
    c->tag_floor = 0;
    memset(c->tag_bits, 0, sizeof c->tag_bits);
    snprintf(c->tag, sizeof(c->tag), "c%" PRIu32 ".%" PRIu32, c->env.client_index, c->sessions);
    c->consume_request = ++c->request_seq;
    c->cstate = WL_C_SUBSCRIBING;
    c->stats.subscribes++;
    wire_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = WIRE_MSG_CONSUME;
    m.consume.request_id = c->consume_request;
    m.consume.queue = wire_str(c->queue);
    m.consume.prefetch = c->ccfg.prefetch;
    m.consume.ack_mode = (uint8_t)c->ccfg.ack_mode;
    m.consume.consumer_tag = wire_str(c->tag);
    wl__record(c, HISTORY_INVOKE, HISTORY_OP_CONSUME, 0, 0, 0, c->leader, 0, c->sessions);
    /* Announce our session first (0 = "I am new"): the broker then closes
     * any session this address had before, returning what it left unacked. */
    wire_msg_t hb;
    memset(&hb, 0, sizeof(hb));
    hb.type = WIRE_MSG_HEARTBEAT;
    hb.heartbeat.session_id = c->session_id;
    hb.heartbeat.timestamp_ns = io_now_ns(c->io);
    (void)wl__send(c, c->leader, &hb);
    (void)wl__send(c, c->leader, &m);
    c->last_heard_ns = io_now_ns(c->io);
    wl__after(c, c->ccfg.request_timeout_ns, WL_TOKEN_WATCHDOG);
}

/* Forget the session: buffered deliveries are the broker's to redeliver. */
static void wl__consumer_drop(workload_client_t *c) {
    c->buf_head = c->buf_count = 0;
    c->processing = false;
    c->session_id = 0;
    c->process++;
    if (c->running) {
        (void)io_timer_cancel(c->io, WL_TOKEN_PROCESS);
        (void)io_timer_cancel(c->io, WL_TOKEN_HEARTBEAT);
        (void)io_timer_cancel(c->io, WL_TOKEN_WATCHDOG);
    }
}

static bool wl__consumer_stopping(workload_client_t *c) {
    if (!c->stopped && c->ccfg.stop_ns != 0 && wl__gnow(c) >= c->ccfg.stop_ns) c->stopped = true;
    if (c->stopped && c->cstate != WL_C_STOPPED) {
        wl__consumer_drop(c);
        c->cstate = WL_C_STOPPED;
    }
    return c->stopped;
}

static void wl__process_one(workload_client_t *c);

/* Start on the next buffered delivery. Zero processing time completes it at
 * once, in a loop, instead of through a timer event per delivery. */
static void wl__process_next(workload_client_t *c) {
    for (uint32_t k = 0; k <= WORKLOAD_BUFFER_MAX; k++) {
        if (c->processing || c->buf_count == 0 || c->cstate != WL_C_ACTIVE) return;
        c->processing = true;
        const uint64_t delay_ns = sim_dist_sample_ns(&c->ccfg.processing, &c->prng);
        if (delay_ns > 0) {
            wl__after(c, delay_ns, WL_TOKEN_PROCESS);
            return;
        }
        if (wl__consumer_stopping(c)) return; /* as the timer would check */
        wl__process_one(c);
    }
    assert(0 && "more deliveries than the buffer holds");
}

static void wl__consumer_crash(workload_client_t *c) {
    c->stats.crashes++;
    wl__record(c, HISTORY_INFO, HISTORY_OP_CRASH, 0, 0, 0, c->leader, 0, c->buf_count);
    wl__consumer_drop(c);
    c->cstate = WL_C_DOWN;
    wl__after(c, c->ccfg.crash_restart_ns, WL_TOKEN_RESTART);
}

static void wl__ack(workload_client_t *c, const wl_delivery_t *d) {
    wire_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = WIRE_MSG_ACK;
    m.ack.delivery_tag = d->delivery_tag;
    m.ack.session_id = c->session_id;
    (void)wl__send(c, d->node, &m);
    c->stats.acked++;
    wl__record(c, HISTORY_OK, HISTORY_OP_ACK, d->message_id, d->producer_id, d->sequence,
               d->node, 0, d->delivery_tag);
}

/* Refuse a delivery: NACK or REJECT, with or without requeue. */
static void wl__refuse(workload_client_t *c, const wl_delivery_t *d, bool reject, bool requeue) {
    wire_msg_t m;
    memset(&m, 0, sizeof(m));
    if (reject) {
        m.type = WIRE_MSG_REJECT;
        m.reject.delivery_tag = d->delivery_tag;
        m.reject.requeue = requeue ? 1 : 0;
        m.reject.session_id = c->session_id;
    } else {
        m.type = WIRE_MSG_NACK;
        m.nack.delivery_tag = d->delivery_tag;
        m.nack.requeue = requeue ? 1 : 0;
        m.nack.session_id = c->session_id;
    }
    (void)wl__send(c, d->node, &m);
    c->stats.nacked++;
    wl__record_flags(c, HISTORY_OK, HISTORY_OP_NACK, d->message_id, d->producer_id, d->sequence,
                     d->node, reject ? 1 : 0, d->delivery_tag,
                     requeue ? 0 : HISTORY_FLAG_DISCARDED);
}

/* The consumer's refusal rules; true if `d` was refused (not processed).
 * Draws only for a rule that is on, so runs without rules keep their
 * random stream. */
static bool wl__refused(workload_client_t *c, const wl_delivery_t *d) {
    const workload_consumer_config_t *k = &c->ccfg;
    const uint64_t counter = d->message_id & WORKLOAD_MESSAGES_MAX;
    if (k->poison_every != 0 && counter % k->poison_every == 0) {
        wl__refuse(c, d, true, k->poison_requeue);
        return true;
    }
    if (k->nack_probability > 0 && sim_prng_chance(&c->prng, k->nack_probability)) {
        wl__refuse(c, d, false, k->nack_requeue);
        return true;
    }
    if (k->reject_probability > 0 && sim_prng_chance(&c->prng, k->reject_probability)) {
        wl__refuse(c, d, true, k->reject_requeue);
        return true;
    }
    return false;
}

static void wl__process_one(workload_client_t *c) {
    assert(c->processing && c->buf_count > 0);
    wl_delivery_t d = c->buf[c->buf_head];
    c->buf_head = (c->buf_head + 1) % WORKLOAD_BUFFER_MAX;
    c->buf_count--;
    c->processing = false;
    if (c->ccfg.ack_mode == WIRE_ACK_MANUAL && wl__refused(c, &d)) return;
    if (c->ccfg.idempotent && wl__set_has(&c->dedup, d.message_id)) {
        c->stats.skipped++;
        wl__record(c, HISTORY_OK, HISTORY_OP_SKIP, d.message_id, d.producer_id, d.sequence,
                   d.node, 0, d.delivery_tag);
    } else {
        c->stats.processed++;
        wl__record(c, HISTORY_OK, HISTORY_OP_PROCESS, d.message_id, d.producer_id, d.sequence,
                   d.node, 0, d.delivery_tag);
        if (c->ccfg.idempotent && wl__set_add(&c->dedup, d.message_id) != 0)
            c->stats.overflowed++; /* dedup memory full: later repeats get processed */
    }
    /* One draw per delivery whatever the probability: a stable stream. */
    if (sim_prng_chance(&c->prng, c->ccfg.crash_probability)) {
        wl__consumer_crash(c);
        return;
    }
    if (c->ccfg.ack_mode == WIRE_ACK_MANUAL) wl__ack(c, &d);
}

static void wl__process_done(workload_client_t *c) {
    wl__process_one(c);
    wl__process_next(c);
}

/* True if `tag` was already delivered in this subscription (and remember it). */
static bool wl__tag_seen(workload_client_t *c, uint64_t tag) {
    if (tag < c->tag_floor) return true;
    if (tag - c->tag_floor >= 2 * (uint64_t)WL_TAGS_WINDOW) {
        memset(c->tag_bits, 0, sizeof c->tag_bits); /* a jump: start over */
        c->tag_floor = tag - WL_TAGS_WINDOW + 1;
    }
    while (tag >= c->tag_floor + WL_TAGS_WINDOW) { /* slide, at most one window */
        const uint64_t i = c->tag_floor % WL_TAGS_WINDOW;
        c->tag_bits[i / 64] &= ~(UINT64_C(1) << (i % 64));
        c->tag_floor++;
    }
    const uint64_t i = tag % WL_TAGS_WINDOW;
    const uint64_t bit = UINT64_C(1) << (i % 64);
    if (c->tag_bits[i / 64] & bit) return true;
    c->tag_bits[i / 64] |= bit;
    return false;
}

static void wl__deliver(workload_client_t *c, io_addr_t from, const wire_deliver_t *d) {
    if (c->cstate != WL_C_ACTIVE && c->cstate != WL_C_SUBSCRIBING) return;
    if (d->consumer_tag.len != strlen(c->tag) ||
        memcmp(d->consumer_tag.ptr, c->tag, d->consumer_tag.len) != 0)
        return; /* for a session this client already dropped */
    if (wl__tag_seen(c, d->delivery_tag)) return; /* a duplicated frame */
    c->last_heard_ns = io_now_ns(c->io);
    c->stats.delivered++;
    wl__record_deliver(c, from, d);
    if (c->buf_count >= WORKLOAD_BUFFER_MAX) {
        c->stats.overflowed++;
        wl__record(c, HISTORY_FAIL, HISTORY_OP_NACK, d->message_id, d->producer_id,
                   d->sequence, from, WIRE_STATUS_RESOURCE_LIMIT, d->delivery_tag);
        if (c->ccfg.ack_mode == WIRE_ACK_MANUAL) {
            wire_msg_t m;
            memset(&m, 0, sizeof(m));
            m.type = WIRE_MSG_NACK;
            m.nack.delivery_tag = d->delivery_tag;
            m.nack.session_id = c->session_id;
            m.nack.requeue = 1;
            (void)wl__send(c, from, &m);
            c->stats.nacked++;
        }
        return;
    }
    wl_delivery_t *b = &c->buf[(c->buf_head + c->buf_count) % WORKLOAD_BUFFER_MAX];
    b->delivery_tag = d->delivery_tag;
    b->message_id = d->message_id;
    b->producer_id = d->producer_id;
    b->sequence = d->sequence;
    b->delivery_count = d->delivery_count;
    b->redelivered = d->redelivered;
    b->node = from;
    c->buf_count++;
    wl__process_next(c);
}

static void wl__consumer_message(workload_client_t *c, io_addr_t from, const wire_msg_t *m) {
    if (wl__consumer_stopping(c) || c->cstate == WL_C_DOWN || c->cstate == WL_C_IDLE) return;
    switch (m->type) {
    case WIRE_MSG_REPLY:
        if (c->cstate != WL_C_SUBSCRIBING || m->reply.request_id != c->consume_request) return;
        c->last_heard_ns = io_now_ns(c->io);
        if (m->reply.status == WIRE_STATUS_OK) {
            c->cstate = WL_C_ACTIVE;
            c->leader = from;
            if (m->reply.count != 0) c->session_id = m->reply.count; /* the session epoch */
            wl__record(c, HISTORY_OK, HISTORY_OP_CONSUME, 0, 0, 0, from, 0, c->sessions);
            wl__after(c, c->ccfg.heartbeat_interval_ns, WL_TOKEN_HEARTBEAT);
            wl__after(c, c->ccfg.heartbeat_interval_ns, WL_TOKEN_WATCHDOG);
            wl__process_next(c);
        } else {
            wl__record(c, HISTORY_FAIL, HISTORY_OP_CONSUME, 0, 0, 0, from, m->reply.status,
                       c->sessions);
            c->cstate = WL_C_IDLE;
            wl__after(c, c->ccfg.retry_delay_ns, WL_TOKEN_WATCHDOG);
        }
        return;
    case WIRE_MSG_NOT_LEADER:
        if (c->cstate == WL_C_ACTIVE && from == c->leader) {
            /* Our broker no longer leads (answering a heartbeat or an ack):
             * the session died with its leadership. */
            c->stats.sessions_lost++;
            wl__record(c, HISTORY_INFO, HISTORY_OP_CONSUME, 0, 0, 0, from,
                       WIRE_STATUS_NOT_LEADER, c->sessions);
            wl__consumer_drop(c);
            c->cstate = WL_C_IDLE;
            bool moved = wl__follow(c, from, m->not_leader.leader_hint);
            wl__after(c, moved ? 0 : c->ccfg.retry_delay_ns, WL_TOKEN_WATCHDOG);
            return;
        }
        if (c->cstate != WL_C_SUBSCRIBING || m->not_leader.request_id != c->consume_request)
            return;
        c->stats.redirects++;
        wl__record(c, HISTORY_FAIL, HISTORY_OP_CONSUME, 0, 0, 0, from, WIRE_STATUS_NOT_LEADER,
                   c->sessions);
        c->cstate = WL_C_IDLE;
        bool hinted = wl__follow(c, from, m->not_leader.leader_hint);
        wl__after(c, hinted ? 0 : c->ccfg.retry_delay_ns, WL_TOKEN_WATCHDOG);
        return;
    case WIRE_MSG_DELIVER:
        wl__deliver(c, from, &m->deliver);
        return;
    case WIRE_MSG_HEARTBEAT:
        if (from != c->leader) return;
        c->last_heard_ns = io_now_ns(c->io);
        if (m->heartbeat.session_id != 0) c->session_id = m->heartbeat.session_id;
        return;
    default:
        return;
    }
}

/* Periodic: subscribe when idle, re-subscribe when the session went silent. */
static void wl__watchdog(workload_client_t *c) {
    if (wl__consumer_stopping(c)) return;
    uint64_t now = io_now_ns(c->io);
    if (c->cstate == WL_C_IDLE) {
        wl__consumer_subscribe(c);
    } else if (c->cstate == WL_C_SUBSCRIBING) {
        wl__record(c, HISTORY_INFO, HISTORY_OP_CONSUME, 0, 0, 0, c->leader, WIRE_STATUS_TIMEOUT,
                   c->sessions);
        wl__rotate(c, c->leader);
        wl__consumer_subscribe(c);
    } else if (c->cstate == WL_C_ACTIVE) {
        if (now - c->last_heard_ns > c->ccfg.session_timeout_ns) {
            c->stats.sessions_lost++;
            wl__record(c, HISTORY_INFO, HISTORY_OP_CONSUME, 0, 0, 0, c->leader,
                       WIRE_STATUS_TIMEOUT, c->sessions);
            wl__consumer_drop(c);
            wl__rotate(c, c->leader);
            wl__consumer_subscribe(c);
        } else {
            wl__after(c, c->ccfg.heartbeat_interval_ns, WL_TOKEN_WATCHDOG);
        }
    }
}

/* ---- setup ---------------------------------------------------------------------- */

static void wl__setup_send(workload_client_t *c) {
    if (c->setup_index >= c->scfg.queues_count) return;
    const workload_queue_spec_t *q = &c->scfg.queues[c->setup_index];
    if (c->setup_attempts >= WORKLOAD_SETUP_ATTEMPTS_MAX) {
        wl__record(c, HISTORY_FAIL, HISTORY_OP_DECLARE, 0, 0, 0, c->leader, WIRE_STATUS_TIMEOUT,
                   c->setup_index);
        c->setup_index++; /* give up on this one, try the next */
        c->setup_attempts = 0;
        wl__setup_send(c);
        return;
    }
    if (c->setup_attempts == 0)
        wl__record(c, HISTORY_INVOKE, HISTORY_OP_DECLARE, 0, 0, 0, c->leader, 0, c->setup_index);
    c->setup_attempts++;
    c->setup_request = ++c->request_seq;
    wire_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = WIRE_MSG_DECLARE_QUEUE;
    m.declare_queue.request_id = c->setup_request;
    m.declare_queue.name = wire_str(q->name);
    m.declare_queue.durable = q->durable ? 1 : 0;
    m.declare_queue.delivery_limit = q->delivery_limit;
    m.declare_queue.dlq = wire_str(q->dlq);
    (void)wl__send(c, c->leader, &m);
    wl__after(c, c->scfg.timeout_ns, WL_TOKEN_SETUP);
}

static void wl__setup_message(workload_client_t *c, io_addr_t from, const wire_msg_t *m) {
    if (c->setup_index >= c->scfg.queues_count) return;
    if (m->type == WIRE_MSG_REPLY && m->reply.request_id == c->setup_request) {
        if (m->reply.status == WIRE_STATUS_OK) {
            c->leader = from;
            c->stats.declared++;
            wl__record(c, HISTORY_OK, HISTORY_OP_DECLARE, 0, 0, 0, from, 0, c->setup_index);
            c->setup_index++;
            c->setup_attempts = 0;
            (void)io_timer_cancel(c->io, WL_TOKEN_SETUP);
            wl__setup_send(c);
        } else {
            /* e.g. no leader yet: retry after the timeout (a bounded loop). */
            wl__after(c, c->scfg.timeout_ns, WL_TOKEN_SETUP);
        }
    } else if (m->type == WIRE_MSG_NOT_LEADER && m->not_leader.request_id == c->setup_request) {
        c->stats.redirects++;
        bool hinted = wl__follow(c, from, m->not_leader.leader_hint);
        wl__after(c, hinted ? 0 : c->scfg.timeout_ns / 4, WL_TOKEN_SETUP);
    }
}

static void wl__setup_timer(workload_client_t *c) {
    /* Reached both after a timeout (rotate) and as a scheduled retry. */
    if (c->setup_index >= c->scfg.queues_count) return;
    wl__setup_send(c);
}

/* ---- the program ------------------------------------------------------------- */

static void wl__start(workload_client_t *c) {
    if (c->role == WL_PRODUCER) {
        if (c->pcfg.heartbeat_interval_ns != 0)
            wl__after(c, c->pcfg.heartbeat_interval_ns, WL_TOKEN_HEARTBEAT);
        wl__tick(c);
    } else if (c->role == WL_CONSUMER) {
        if (!wl__consumer_stopping(c)) wl__consumer_subscribe(c);
    } else {
        wl__setup_send(c);
    }
}

static void *wl__boot(void *arg, const io_t *io) {
    workload_client_t *c = arg;
    if (c == NULL || io == NULL || c->running) return NULL;
    assert(io->self == workload_client_host(c));
    c->io = io;
    c->running = true;
    c->leader = c->env.client_index % c->env.brokers_count;
    c->waiting_window = c->ticking = false;
    c->tick_due_ns = 0;
    c->inflight = 0;
    c->sweep_armed_ns = 0; /* the kernel dropped the old incarnation's timers */
    memset(c->ops, 0, sizeof(c->ops));
    c->cstate = c->stopped && c->role == WL_CONSUMER ? WL_C_STOPPED : WL_C_IDLE;
    c->session_id = 0;
    c->buf_head = c->buf_count = 0;
    c->processing = false;
    c->setup_attempts = 0;
    uint64_t start = c->role == WL_PRODUCER   ? c->pcfg.start_ns
                     : c->role == WL_CONSUMER ? c->ccfg.start_ns
                                              : c->scfg.start_ns;
    uint64_t now = wl__gnow(c);
    wl__after(c, start > now ? start - now : 0, WL_TOKEN_START);
    return c;
}

static void wl__halt(void *node, int graceful) {
    workload_client_t *c = node;
    assert(c != NULL && c->running);
    if (c->role == WL_PRODUCER) wl__producer_halt(c);
    if (c->role == WL_CONSUMER && c->cstate != WL_C_STOPPED && c->cstate != WL_C_DOWN) {
        if (!graceful) c->stats.crashes++;
        wl__record(c, HISTORY_INFO, HISTORY_OP_CRASH, 0, 0, 0, c->leader, graceful ? 0 : 1,
                   c->buf_count);
        c->process++;
    }
    c->running = false;
    c->io = NULL;
}

static void wl__on_message(void *node, io_addr_t from, const uint8_t *bytes, size_t len) {
    workload_client_t *c = node;
    assert(c != NULL && c->running);
    wire_msg_t m;
    if (from >= c->env.brokers_count || wire_decode(bytes, len, &m, NULL, 0) != 0) {
        c->stats.bad_messages++; /* corrupt or foreign: ignore, never crash */
        return;
    }
    if (c->role == WL_PRODUCER) wl__producer_message(c, from, &m);
    else if (c->role == WL_CONSUMER) wl__consumer_message(c, from, &m);
    else wl__setup_message(c, from, &m);
}

static void wl__heartbeat_timer(workload_client_t *c) {
    if (c->role == WL_PRODUCER) {
        if (wl__producer_exhausted(c) && c->inflight == 0) return;
        wl__heartbeat(c);
        wl__after(c, c->pcfg.heartbeat_interval_ns, WL_TOKEN_HEARTBEAT);
    } else if (c->role == WL_CONSUMER && !wl__consumer_stopping(c) && c->cstate == WL_C_ACTIVE) {
        wl__heartbeat(c);
        wl__after(c, c->ccfg.heartbeat_interval_ns, WL_TOKEN_HEARTBEAT);
    }
}

static void wl__on_timer(void *node, uint64_t token) {
    workload_client_t *c = node;
    assert(c != NULL && c->running);
    switch (token) {
    case WL_TOKEN_START: wl__start(c); return;
    case WL_TOKEN_TICK: wl__tick(c); return;
    case WL_TOKEN_HEARTBEAT: wl__heartbeat_timer(c); return;
    case WL_TOKEN_WATCHDOG: wl__watchdog(c); return;
    case WL_TOKEN_PROCESS:
        if (!wl__consumer_stopping(c) && c->processing) wl__process_done(c);
        return;
    case WL_TOKEN_RESTART:
        if (!wl__consumer_stopping(c) && c->cstate == WL_C_DOWN) wl__consumer_subscribe(c);
        return;
    case WL_TOKEN_SETUP: wl__setup_timer(c); return;
    case WL_TOKEN_SLOTS:
        if (c->role == WL_PRODUCER) wl__slots_sweep(c);
        return;
    default: return;
    }
}

static void wl__on_disk_done(void *node, uint64_t token, int64_t result) {
    (void)node; /* clients never touch the disk */
    (void)token;
    (void)result;
}

static const io_handler_t wl__handler = {
    .on_message = wl__on_message,     /* wire answers from brokers */
    .on_timer = wl__on_timer,         /* rate ticks, timeouts, heartbeats */
    .on_disk_done = wl__on_disk_done, /* unused */
};

const io_program_t workload_program = {"workload-client", wl__boot, wl__halt, &wl__handler};

void workload_client_stop(workload_client_t *c) {
    if (c == NULL) return;
    c->stopped = true;
    if (c->role == WL_CONSUMER && c->running) (void)wl__consumer_stopping(c);
}

void workload_client_settle(workload_client_t *c) {
    if (c == NULL) return;
    c->stopped = true;
    if (c->role == WL_PRODUCER) wl__producer_abandon(c, HISTORY_FLAG_AT_END);
}

bool workload_client_done(const workload_client_t *c) {
    assert(c != NULL);
    if (c->role == WL_PRODUCER) {
        bool exhausted = c->stopped || (c->pcfg.count != 0 && c->ops_started >= c->pcfg.count) ||
                         (c->pcfg.stop_ns != 0 && wl__gnow(c) >= c->pcfg.stop_ns);
        return exhausted && c->inflight == 0;
    }
    if (c->role == WL_SETUP) return c->setup_index >= c->scfg.queues_count;
    return c->stopped;
}
