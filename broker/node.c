/* broker/node.c — the broker node: recovery, Raft glue, client protocol. */
#include "broker/node.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/log.h"
#include "broker/meta.h"
#include "broker/raft.h"
#include "broker/session.h"
#include "broker/sm.h"
#include "broker/snapshot.h"
#include "broker/tokens.h"
#include "broker/wire.h"

#define NODE_DELIVERIES_BATCH 128u
#define NODE_CMDS_BATCH 256u
#define NODE_DISPATCH_ROUNDS_MAX 64u
#define NODE_TICK_NS UINT64_C(20000000)
/* basic.get parked behind a requeue being committed: at most this many, for
 * at most this long (then answered empty, as before). */
#define NODE_PARKED_GETS_MAX 64u
#define NODE_GET_PARK_NS UINT64_C(2000000000)
#define NODE_ENVELOPE_HEADER 12u

enum { NODE_TIMER_TICK = 1, NODE_TIMER_FSYNC = 2 };

typedef enum node_phase {
    NODE_LOADING_META = 0,
    NODE_LOADING_SNAPSHOT = 1,
    NODE_RECOVERING_LOG = 2,
    NODE_RUNNING = 3,
    NODE_FAILED = 4,
} node_phase_t;

typedef enum node_pending_kind {
    NODE_PENDING_PUBLISH = 1,
    NODE_PENDING_REPLY = 2, /* declare / bind: REPLY after apply */
} node_pending_kind_t;

typedef struct node_pending {
    uint64_t index, term;
    uint64_t request_id, producer_id, sequence;
    io_addr_t client;
    uint8_t kind;
    uint8_t confirmed; /* acks=leader: confirmed before commit */
} node_pending_t;

typedef struct node_client {
    io_addr_t addr;
    uint64_t session_id; /* 0 = none open */
    uint64_t owner;      /* from its HEARTBEATs: owner of exclusive queues */
} node_client_t;

struct broker_node {
    io_t io;
    broker_config_t cfg;
    node_phase_t phase;
    broker_log_t log;
    broker_meta_t meta;
    broker_snapshot_t snap;
    raft_t raft;
    broker_sm_t sm;
    broker_sessions_t sessions;
    bool sessions_live;
    uint64_t applied;

    /* Latest durable snapshot (what raft sends to lagging followers). */
    uint8_t *snap_bytes;
    size_t snap_len;
    uint64_t snap_index, snap_term;
    uint8_t *snap_saving_bytes; /* being written */
    size_t snap_saving_len;

    node_pending_t *pending; /* ring, ordered by index */
    uint32_t pending_head, pending_count;

    node_client_t clients[BROKER_CLIENTS_MAX]; /* sorted by addr */
    uint32_t client_count;

    uint8_t *cmd_buf;  /* SM_CMD_SIZE_MAX */
    uint8_t *env_buf;  /* envelope scratch */
    uint8_t *out_buf;  /* WIRE_MESSAGE_SIZE_MAX */
    wire_entry_t *entries;
    broker_delivery_t deliveries[NODE_DELIVERIES_BATCH];
    broker_session_cmd_t cmds[NODE_CMDS_BATCH];

    uint64_t confirms_sent, nacks_sent, deliveries_sent;
    bool get_delivered; /* set by node__deliver for the GET consumer */
    /* basic.get that found only messages whose requeue is still being
     * committed: answered once they are ready again (AMQP protocol hook). */
    struct node_parked_get {
        io_addr_t from;
        uint64_t request_id, deadline_ns;
        uint8_t ack_mode;
        uint16_t queue_len;
        char queue[SM_NAME_MAX];
    } parked[NODE_PARKED_GETS_MAX];
    uint32_t parked_count;
    uint64_t orphans_checked; /* sm.queues_deleted at the last orphan check */
    uint64_t next_epoch;  /* session epochs handed out by this node */
    bool fresh_pending;   /* leader: its term's first entry not applied yet */
    bool snap_installed;  /* the snapshot being saved came from the leader */
};

/* ---- envelope ------------------------------------------------------------ */

size_t broker_envelope_size(size_t props_len, size_t body_len) {
    return NODE_ENVELOPE_HEADER + props_len + body_len;
}

static void node__put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void node__put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t node__get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t node__get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void broker_envelope_encode(uint8_t *out, uint64_t message_id,
                            const uint8_t *props, size_t props_len,
                            const uint8_t *body, size_t body_len) {
    assert(out != NULL);
    node__put_u64(out, message_id);
    node__put_u32(out + 8, (uint32_t)props_len);
    if (props_len) memcpy(out + NODE_ENVELOPE_HEADER, props, props_len);
    if (body_len) memcpy(out + NODE_ENVELOPE_HEADER + props_len, body, body_len);
}

int broker_envelope_decode(const uint8_t *in, size_t len, uint64_t *message_id,
                           const uint8_t **props, size_t *props_len,
                           const uint8_t **body, size_t *body_len) {
    if (in == NULL || len < NODE_ENVELOPE_HEADER) return -1;
    const uint32_t plen = node__get_u32(in + 8);
    if (plen > len - NODE_ENVELOPE_HEADER) return -1;
    *message_id = node__get_u64(in);
    *props = in + NODE_ENVELOPE_HEADER;
    *props_len = plen;
    *body = in + NODE_ENVELOPE_HEADER + plen;
    *body_len = len - NODE_ENVELOPE_HEADER - plen;
    return 0;
}

/* ---- small helpers ---------------------------------------------------------- */

static bool node__is_client(const broker_node_t *n, io_addr_t addr) {
    return addr >= n->cfg.replicas;
}

static void node__send(broker_node_t *n, io_addr_t dest, const wire_msg_t *m) {
    const int len = wire_encode(m, n->out_buf, WIRE_MESSAGE_SIZE_MAX);
    assert(len > 0);
    if (len > 0) (void)io_send(&n->io, dest, n->out_buf, (size_t)len);
}

static void node__fail(broker_node_t *n, const char *why) {
    if (n->phase == NODE_FAILED) return;
    n->phase = NODE_FAILED;
    raft_set_stopped(&n->raft, true);
    io_trace(&n->io, "node.failed", why);
}

static void node__reply_full(broker_node_t *n, io_addr_t to, uint64_t request_id,
                             uint16_t status, uint64_t count, uint32_t consumers,
                             const char *detail) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_REPLY;
    m.reply.request_id = request_id;
    m.reply.status = status;
    m.reply.count = count;
    m.reply.consumers = consumers;
    m.reply.detail = wire_str(detail);
    node__send(n, to, &m);
}

static void node__reply(broker_node_t *n, io_addr_t to, uint64_t request_id,
                        uint16_t status, uint64_t count, const char *detail) {
    node__reply_full(n, to, request_id, status, count, 0, detail);
}

static void node__not_leader(broker_node_t *n, io_addr_t to, uint64_t request_id) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_NOT_LEADER;
    m.not_leader.request_id = request_id;
    const uint32_t leader = raft_leader(&n->raft);
    m.not_leader.leader_hint = leader < n->cfg.replicas ? leader : WIRE_NODE_NONE;
    node__send(n, to, &m);
}

static void node__confirm(broker_node_t *n, const node_pending_t *p, bool duplicate,
                          bool unroutable) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_CONFIRM;
    m.confirm.request_id = p->request_id;
    m.confirm.producer_id = p->producer_id;
    m.confirm.sequence = p->sequence;
    m.confirm.duplicate = duplicate;
    m.confirm.unroutable = unroutable;
    node__send(n, p->client, &m);
    n->confirms_sent++;
}

static void node__nack_publish(broker_node_t *n, io_addr_t to, uint64_t request_id,
                               uint64_t producer_id, uint64_t sequence, uint16_t reason) {
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_NACK_PUBLISH;
    m.nack_publish.request_id = request_id;
    m.nack_publish.producer_id = producer_id;
    m.nack_publish.sequence = sequence;
    m.nack_publish.reason = reason;
    node__send(n, to, &m);
    n->nacks_sent++;
}

static uint16_t node__status_of(int rc) {
    switch (rc) {
    case 0: return WIRE_STATUS_OK;
    case SM_ENOTFOUND: return WIRE_STATUS_NOT_FOUND;
    case SM_EMISMATCH: return WIRE_STATUS_PRECONDITION_FAILED;
    case SM_ELIMIT: return WIRE_STATUS_RESOURCE_LIMIT;
    case IO_ENOMEM: return WIRE_STATUS_RESOURCE_LIMIT;
    case SM_EEXISTS: return WIRE_STATUS_PRECONDITION_FAILED;
    case SM_ELOCKED: return WIRE_STATUS_RESOURCE_LOCKED;
    case SM_EINUSE: return WIRE_STATUS_ACCESS_REFUSED;
    case SM_EACCESS: return WIRE_STATUS_ACCESS_REFUSED;
    default: return WIRE_STATUS_INVALID;
    }
}

/* ---- pending requests ----------------------------------------------------------- */

static node_pending_t *node__pending_at(broker_node_t *n, uint32_t i) {
    assert(i < n->pending_count);
    return &n->pending[(n->pending_head + i) % BROKER_PENDING_MAX];
}

static int node__pending_push(broker_node_t *n, const node_pending_t *p) {
    if (n->pending_count >= BROKER_PENDING_MAX) return IO_ENOMEM;
    assert(n->pending_count == 0 ||
           node__pending_at(n, n->pending_count - 1)->index < p->index);
    n->pending[(n->pending_head + n->pending_count) % BROKER_PENDING_MAX] = *p;
    n->pending_count++;
    return 0;
}

static void node__pending_clear(broker_node_t *n) {
    n->pending_head = 0;
    n->pending_count = 0;
}

/* acks=leader: confirm publishes once the leader's own copy is as durable as
 * the fsync strategy makes it. */
static void node__confirm_leader_acks(broker_node_t *n) {
    if (n->cfg.acks != BROKER_ACKS_LEADER) return;
    const uint64_t durable = n->cfg.fsync == BROKER_FSYNC_ALWAYS
                                 ? broker_log_durable_index(&n->log)
                                 : broker_log_last_index(&n->log);
    for (uint32_t i = 0; i < n->pending_count; i++) {
        node_pending_t *p = node__pending_at(n, i);
        if (p->index > durable) break;
        if (p->kind == NODE_PENDING_PUBLISH && !p->confirmed) {
            p->confirmed = 1;
            node__confirm(n, p, false, false);
        }
    }
}

/* Answer the request waiting on log entry `index` after it applied. */
static void node__resolve(broker_node_t *n, uint64_t index, uint64_t term,
                          int rc, const broker_sm_result_t *res) {
    while (n->pending_count > 0) {
        node_pending_t *p = node__pending_at(n, 0);
        if (p->index > index) return;
        const node_pending_t copy = *p;
        n->pending_head = (n->pending_head + 1) % BROKER_PENDING_MAX;
        n->pending_count--;
        if (copy.index < index || copy.term != term) continue; /* replaced entry */
        if (copy.kind == NODE_PENDING_PUBLISH) {
            if (copy.confirmed) continue;
            if (rc == 0 && res->status == SM_STATUS_QUEUE_FULL)
                node__nack_publish(n, copy.client, copy.request_id, copy.producer_id,
                                   copy.sequence, WIRE_STATUS_RESOURCE_LIMIT);
            else if (rc == 0)
                node__confirm(n, &copy, res->status == SM_STATUS_DUPLICATE,
                              res->status == SM_STATUS_UNROUTABLE);
            else
                node__nack_publish(n, copy.client, copy.request_id, copy.producer_id,
                                   copy.sequence, node__status_of(rc));
        } else if (rc == 0 && res->queue != NULL && n->sessions_live) {
            /* queue.declare-ok: what clients see (AMQP protocol hook) */
            uint32_t ready = 0, consumers = 0;
            broker_sessions_queue_info(&n->sessions, res->queue, &ready, &consumers);
            node__reply_full(n, copy.client, copy.request_id, WIRE_STATUS_OK, ready,
                             consumers, NULL);
        } else {
            node__reply(n, copy.client, copy.request_id, node__status_of(rc),
                        rc == 0 ? res->messages : 0, NULL);
        }
    }
}

/* ---- proposing ---------------------------------------------------------------------- */

static int64_t node__propose_cmd(broker_node_t *n, const broker_sm_cmd_t *cmd) {
    size_t len = 0;
    const int rc = broker_sm_cmd_encode(cmd, n->cmd_buf, SM_CMD_SIZE_MAX, &len);
    if (rc != 0) return rc;
    return raft_propose(&n->raft, RAFT_ENTRY_COMMAND, n->cmd_buf, len);
}

static void node__propose_session_cmds(broker_node_t *n, uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        broker_sm_cmd_t cmd;
        broker_session_cmd_to_sm(&n->cmds[i], &cmd);
        (void)node__propose_cmd(n, &cmd); /* lost on failure: redelivered later */
    }
}

/* ---- consumers (leader only) ------------------------------------------------------- */

#define NODE_GET_TAG "amq.get"

static void node__deliver(broker_node_t *n, const broker_delivery_t *d) {
    const broker_message_t *msg = d->message;
    uint64_t message_id = 0;
    const uint8_t *props = NULL, *body = NULL;
    size_t props_len = 0, body_len = 0;
    if (broker_envelope_decode(broker_message_body(msg), msg->body_len, &message_id,
                               &props, &props_len, &body, &body_len) != 0) {
        message_id = msg->message_id;
        body = broker_message_body(msg);
        body_len = msg->body_len;
    }
    wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_MSG_DELIVER;
    m.deliver.consumer_tag.ptr = (const uint8_t *)d->consumer_tag;
    m.deliver.consumer_tag.len = d->consumer_tag_len;
    m.deliver.delivery_tag = d->delivery_tag;
    m.deliver.message_id = message_id;
    m.deliver.producer_id = msg->producer_id;
    m.deliver.sequence = msg->sequence;
    m.deliver.redelivered = d->redelivered;
    m.deliver.delivery_count = msg->delivery_count + 1;
    m.deliver.exchange.ptr = (const uint8_t *)broker_message_exchange(msg);
    m.deliver.exchange.len = msg->exchange_len;
    m.deliver.routing_key.ptr = (const uint8_t *)broker_message_routing_key(msg);
    m.deliver.routing_key.len = msg->routing_key_len;
    m.deliver.body.ptr = body;
    m.deliver.body.len = (uint32_t)body_len;
    m.deliver.properties.ptr = props;
    m.deliver.properties.len = (uint32_t)props_len;
    if (d->consumer_tag_len == sizeof NODE_GET_TAG - 1 &&
        memcmp(d->consumer_tag, NODE_GET_TAG, d->consumer_tag_len) == 0) {
        /* A basic.get answer: empty consumer tag, messages left. */
        m.deliver.consumer_tag.len = 0;
        uint32_t ready = 0, consumers = 0; /* this one is pending already */
        broker_sessions_queue_info(&n->sessions, d->queue, &ready, &consumers);
        m.deliver.message_count = ready;
        n->get_delivered = true;
    }
    node__send(n, (io_addr_t)(d->session_id >> 32), &m);
    n->deliveries_sent++;
}

/* AMQP consumer cancel notification: consumers whose queue was deleted are
 * detached and their clients told with a CANCEL (request id 0). */
static void node__drop_orphans(broker_node_t *n) {
    if (n->orphans_checked == n->sm.queues_deleted) return; /* nothing deleted */
    n->orphans_checked = n->sm.queues_deleted;
    broker_session_dropped_t dropped[8];
    for (uint32_t round = 0; round < SESSIONS_MAX * SESSION_CONSUMERS_MAX / 8 + 1; round++) {
        const uint32_t k = broker_sessions_drop_orphans(&n->sessions, &n->sm, dropped, 8);
        for (uint32_t i = 0; i < k; i++) {
            wire_msg_t m;
            memset(&m, 0, sizeof m);
            m.type = WIRE_MSG_CANCEL;
            m.cancel.consumer_tag.ptr = (const uint8_t *)dropped[i].tag;
            m.cancel.consumer_tag.len = dropped[i].tag_len;
            node__send(n, (io_addr_t)(dropped[i].session_id >> 32), &m);
        }
        if (k < 8) return;
    }
}

static void node__dispatch(broker_node_t *n) {
    if (!n->sessions_live) return;
    node__drop_orphans(n);
    for (uint32_t round = 0; round < NODE_DISPATCH_ROUNDS_MAX; round++) {
        uint32_t nd = 0, nc = 0;
        (void)broker_sessions_dispatch(&n->sessions, &n->sm, io_now_ns(&n->io),
                                       n->deliveries, NODE_DELIVERIES_BATCH, n->cmds,
                                       NODE_CMDS_BATCH, &nd, &nc);
        for (uint32_t i = 0; i < nd; i++) node__deliver(n, &n->deliveries[i]);
        node__propose_session_cmds(n, nc);
        if (nd < NODE_DELIVERIES_BATCH && nc < NODE_CMDS_BATCH) break;
    }
}

static void node__sessions_reset(broker_node_t *n, bool live) {
    if (n->sessions_live) broker_sessions_close(&n->sessions);
    n->sessions_live = false;
    n->parked_count = 0; /* their clients time out and re-send */
    for (uint32_t i = 0; i < n->client_count; i++) n->clients[i].session_id = 0;
    if (live) {
        broker_sessions_config_t sc = {.ack_timeout_ns = n->cfg.ack_timeout_ns};
        /* Until this leader's own first entry applies, its state machine may
         * be behind what an older leader delivered: flag everything. */
        broker_sessions_init(&n->sessions, &sc, UINT64_MAX);
        n->sessions_live = true;
        n->fresh_pending = true;
    }
}

static node_client_t *node__client(broker_node_t *n, io_addr_t addr, bool create) {
    uint32_t lo = 0, hi = n->client_count;
    while (lo < hi) {
        const uint32_t mid = (lo + hi) / 2;
        if (n->clients[mid].addr < addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo < n->client_count && n->clients[lo].addr == addr) return &n->clients[lo];
    if (!create || n->client_count >= BROKER_CLIENTS_MAX) return NULL;
    memmove(&n->clients[lo + 1], &n->clients[lo],
            (n->client_count - lo) * sizeof n->clients[0]);
    n->client_count++;
    n->clients[lo].addr = addr;
    n->clients[lo].session_id = 0;
    n->clients[lo].owner = 0;
    return &n->clients[lo];
}

/* Make sure `addr` has a session open at this leader and return its id.
 * epoch 0 means "I am new" (a client that (re)started): any old session of
 * the address closes, its unacked deliveries return to the queue, and a fresh
 * epoch is assigned. A non-zero epoch names the client's existing session; a
 * new leader adopts it. Session id = addr << 32 | epoch. */
static uint64_t node__session(broker_node_t *n, io_addr_t addr, uint64_t epoch) {
    node_client_t *c = node__client(n, addr, true);
    if (c == NULL || !n->sessions_live) return 0;
    epoch &= 0xffffffffu;
    const uint64_t now = io_now_ns(&n->io);
    if (epoch != 0 && c->session_id == (((uint64_t)addr << 32) | epoch)) {
        if (broker_sessions_touch(&n->sessions, c->session_id, now) == 0)
            return c->session_id;
        /* The session expired here (its deliveries went back to their
         * queues). It never comes back under the same id: a fresh epoch,
         * which the client learns from the answer, so late acks of the old
         * session are refused as stale instead of settling new deliveries
         * that reuse their tags. */
        epoch = 0;
    }
    if (epoch == 0) {
        n->next_epoch = n->next_epoch >= 0xffffffffu ? 1 : n->next_epoch + 1;
        epoch = n->next_epoch;
    }
    if (c->session_id != 0) {
        uint32_t count = 0;
        if (broker_sessions_close_session(&n->sessions, c->session_id, n->cmds,
                                          NODE_CMDS_BATCH, &count) == 0)
            node__propose_session_cmds(n, count);
    }
    c->session_id = 0;
    const uint64_t sid = ((uint64_t)addr << 32) | epoch;
    if (broker_sessions_open_session(&n->sessions, sid, n->cfg.session_timeout_ns, now) != 0)
        return 0;
    c->session_id = sid;
    return sid;
}

/* ---- applying committed entries ------------------------------------------------------ */

static void node__maybe_snapshot(broker_node_t *n);
static void node__retry_gets(broker_node_t *n);

static void node__apply(broker_node_t *n, uint64_t commit) {
    if (n->phase != NODE_RUNNING) return;
    while (n->applied < commit) {
        const uint64_t i = n->applied + 1;
        const broker_log_entry_t *e = broker_log_entry(&n->log, i);
        if (e == NULL) break; /* not here yet (snapshot install pending) */
        broker_sm_result_t res;
        memset(&res, 0, sizeof res);
        int rc = 0;
        if (e->type == RAFT_ENTRY_COMMAND)
            rc = broker_sm_apply(&n->sm, i, e->payload, e->len, &res);
        n->applied = i;
        if (n->fresh_pending && n->sessions_live && e->term == raft_term(&n->raft)) {
            /* Caught up with every older leader: newer ids are fresh. */
            broker_sessions_set_fresh_from(&n->sessions, n->sm.next_message_id);
            n->fresh_pending = false;
        }
        if (n->pending_count > 0) node__resolve(n, i, e->term, rc, &res);
    }
    if (raft_is_leader(&n->raft)) node__dispatch(n);
    if (raft_is_leader(&n->raft)) node__retry_gets(n);
    node__maybe_snapshot(n);
}

static void node__on_committed(void *arg, uint64_t commit_index) {
    node__apply(arg, commit_index);
}

/* ---- snapshots ------------------------------------------------------------------------ */

static void node__maybe_snapshot(broker_node_t *n) {
    if (n->snap_saving_bytes != NULL) return;
    if (n->applied < n->snap_index + n->cfg.snapshot_every_entries) return;
    const uint64_t term = broker_log_term_at(&n->log, n->applied);
    if (term == 0) return;
    const size_t size = broker_sm_snapshot_size(&n->sm);
    if (size > BROKER_SNAPSHOT_DATA_MAX) return;
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL) return;
    const int64_t len = broker_sm_snapshot_serialize(&n->sm, buf, size);
    if (len < 0 || broker_snapshot_write(&n->snap, n->applied, term, buf, (size_t)len) != 0) {
        free(buf);
        return;
    }
    n->snap_saving_bytes = buf;
    n->snap_saving_len = (size_t)len;
}

static void node__snapshot_saved(broker_node_t *n, uint64_t index, uint64_t term) {
    free(n->snap_bytes);
    n->snap_bytes = n->snap_saving_bytes;
    n->snap_len = n->snap_saving_len;
    n->snap_saving_bytes = NULL;
    n->snap_saving_len = 0;
    n->snap_index = index;
    n->snap_term = term;
    if (n->snap_installed) {
        /* Our log may conflict with the leader's snapshot: start after it. */
        n->snap_installed = false;
        (void)broker_log_compact(&n->log, index, term);
        return;
    }
    /* Keep a tail of entries behind the snapshot so a follower that is only
     * a little behind gets entries, not a whole snapshot (etcd does the
     * same); the log stays bounded by snapshot_every + this slack. */
    const uint64_t keep = n->cfg.snapshot_every_entries / 2;
    if (index <= keep) return;
    const uint64_t upto = index - keep;
    const uint64_t upto_term = broker_log_term_at(&n->log, upto);
    if (upto > broker_log_base_index(&n->log) && upto_term != 0)
        (void)broker_log_compact(&n->log, upto, upto_term);
}

static int node__snapshot_get(void *arg, const uint8_t **bytes, size_t *len,
                              uint64_t *index, uint64_t *term) {
    broker_node_t *n = arg;
    if (n->snap_bytes == NULL || n->snap_index == 0) return IO_ENOENT;
    *bytes = n->snap_bytes;
    *len = n->snap_len;
    *index = n->snap_index;
    *term = n->snap_term;
    return 0;
}

static int node__snapshot_install(void *arg, const uint8_t *bytes, size_t len,
                                  uint64_t index, uint64_t term) {
    broker_node_t *n = arg;
    if (index <= n->applied) return 0; /* already have it */
    if (n->snap_saving_bytes != NULL) return IO_ENOMEM; /* ask again later */
    if (broker_sm_restore(&n->sm, bytes, len) != 0) return IO_EINVAL;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) return IO_ENOMEM;
    if (len) memcpy(copy, bytes, len);
    n->applied = index;
    if (broker_snapshot_write(&n->snap, index, term, copy, len) != 0) {
        free(copy);
        return IO_EIO;
    }
    n->snap_saving_bytes = copy;
    n->snap_saving_len = len;
    n->snap_installed = true;
    io_trace(&n->io, "node.snapshot_installed", NULL);
    return 0;
}

/* ---- raft callbacks ---------------------------------------------------------------- */

static int node__persist(void *arg, uint64_t term, uint32_t vote) {
    broker_node_t *n = arg;
    return broker_meta_save(&n->meta, term, vote >= n->cfg.replicas ? BROKER_META_VOTE_NONE : vote);
}

static void node__role_changed(void *arg, raft_role_t role, uint64_t term, uint32_t leader) {
    broker_node_t *n = arg;
    (void)term;
    (void)leader;
    const bool leading = role == RAFT_LEADER;
    if (leading && n->sessions_live) return;
    /* Requests waiting on this node's leadership have an unknown outcome now:
     * clients time out and retry (they are told nothing false). */
    node__pending_clear(n);
    node__sessions_reset(n, leading);
    if (leading)
        (void)io_timer_set(&n->io, io_now_ns(&n->io) + NODE_TICK_NS,
                           broker_token_make(BROKER_TOKEN_NODE, NODE_TIMER_TICK));
}

/* ---- client requests -------------------------------------------------------------- */

static void node__on_publish(broker_node_t *n, io_addr_t from, const wire_publish_t *p) {
    if (n->pending_count >= BROKER_PENDING_MAX) {
        /* Overload: push back instead of queueing without bound. */
        node__nack_publish(n, from, p->request_id, p->producer_id, p->sequence,
                           WIRE_STATUS_RESOURCE_LIMIT);
        return;
    }
    const size_t env_len = broker_envelope_size(p->properties.len, p->body.len);
    if (env_len > SM_MESSAGE_BODY_MAX) {
        node__nack_publish(n, from, p->request_id, p->producer_id, p->sequence,
                           WIRE_STATUS_RESOURCE_LIMIT);
        return;
    }
    broker_envelope_encode(n->env_buf, p->message_id, p->properties.ptr, p->properties.len,
                           p->body.ptr, p->body.len);
    broker_sm_cmd_t cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = SM_CMD_PUBLISH;
    cmd.exchange.ptr = (const char *)p->exchange.ptr;
    cmd.exchange.len = p->exchange.len;
    cmd.key.ptr = (const char *)p->routing_key.ptr;
    cmd.key.len = p->routing_key.len;
    cmd.producer_id = p->producer_id;
    cmd.sequence = p->sequence;
    cmd.message_id = p->message_id;
    cmd.persistent = p->persistent;
    cmd.body = n->env_buf;
    cmd.body_len = (uint32_t)env_len;
    const int64_t index = node__propose_cmd(n, &cmd);
    if (index < 0) {
        node__nack_publish(n, from, p->request_id, p->producer_id, p->sequence,
                           index == IO_ENOMEM ? WIRE_STATUS_RESOURCE_LIMIT
                                              : WIRE_STATUS_INVALID);
        return;
    }
    node_pending_t pend = {
        .index = (uint64_t)index, .term = raft_term(&n->raft), .request_id = p->request_id,
        .producer_id = p->producer_id, .sequence = p->sequence, .client = from,
        .kind = NODE_PENDING_PUBLISH,
    };
    if (node__pending_push(n, &pend) != 0) return; /* client times out */
    node__confirm_leader_acks(n);
}

static void node__propose_reply(broker_node_t *n, io_addr_t from, uint64_t request_id,
                                const broker_sm_cmd_t *cmd) {
    const int64_t index = node__propose_cmd(n, cmd);
    if (index < 0) {
        node__reply(n, from, request_id, node__status_of((int)index), 0, "not proposed");
        return;
    }
    node_pending_t pend = {.index = (uint64_t)index, .term = raft_term(&n->raft),
                           .request_id = request_id, .client = from,
                           .kind = NODE_PENDING_REPLY};
    (void)node__pending_push(n, &pend);
}

/* AMQP exclusive queues (protocol hook): is queue `name` exclusive to a
 * connection other than the one behind `from`? (queue.delete is not
 * checked: a queue orphaned by a crashed front end must stay removable.) */
static bool node__locked(broker_node_t *n, io_addr_t from, const uint8_t *name, size_t len) {
    const broker_queue_t *q = broker_sm_queue(&n->sm, (const char *)name, len);
    if (q == NULL || q->owner == 0) return false;
    const node_client_t *c = node__client(n, from, false);
    return c == NULL || c->owner != q->owner;
}

static void node__on_declare_queue(broker_node_t *n, io_addr_t from,
                                   const wire_declare_queue_t *d) {
    if (node__locked(n, from, d->name.ptr, d->name.len)) {
        node__reply(n, from, d->request_id, WIRE_STATUS_RESOURCE_LOCKED, 0,
                    "RESOURCE_LOCKED - the queue is exclusive to another connection");
        return;
    }
    if (d->flags & WIRE_QUEUE_PASSIVE) {
        const broker_queue_t *q = broker_sm_queue(&n->sm, (const char *)d->name.ptr, d->name.len);
        uint32_t ready = 0, consumers = 0;
        if (q != NULL) broker_sessions_queue_info(&n->sessions, q, &ready, &consumers);
        node__reply_full(n, from, d->request_id, q ? WIRE_STATUS_OK : WIRE_STATUS_NOT_FOUND,
                         ready, consumers, NULL);
        return;
    }
    broker_sm_cmd_t cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = SM_CMD_DECLARE_QUEUE_EX;
    cmd.queue_props = (uint8_t)((d->durable ? BROKER_QUEUE_PROP_DURABLE : 0u) |
                                ((d->flags & WIRE_QUEUE_EXCLUSIVE) ? BROKER_QUEUE_PROP_EXCLUSIVE : 0u) |
                                ((d->flags & WIRE_QUEUE_AUTO_DELETE) ? BROKER_QUEUE_PROP_AUTO_DELETE
                                                                     : 0u));
    const node_client_t *cl = node__client(n, from, false);
    cmd.owner = cl != NULL ? cl->owner : 0;
    cmd.queue.ptr = (const char *)d->name.ptr;
    cmd.queue.len = d->name.len;
    cmd.dlq.ptr = (const char *)d->dlq.ptr;
    cmd.dlq.len = d->dlq.len;
    cmd.delivery_limit = d->delivery_limit ? d->delivery_limit : n->cfg.delivery_limit;
    node__propose_reply(n, from, d->request_id, &cmd);
}

/* basic.get: a one-shot consumer with prefetch 1 on the client's session.
 * Returns 1 when answered, 0 when nothing is ready now but a requeue of
 * the queue is being committed (the caller parks it). */
static int node__get_once(broker_node_t *n, io_addr_t from, uint64_t request_id,
                          const char *queue, size_t queue_len, uint8_t ack_mode, bool last) {
    node_client_t *c = node__client(n, from, true);
    const uint64_t sid = c && c->session_id ? c->session_id : node__session(n, from, 0);
    if (sid == 0) {
        node__reply(n, from, request_id, WIRE_STATUS_RESOURCE_LIMIT, 0, NULL);
        return 1;
    }
    int rc = broker_sessions_consume(&n->sessions, &n->sm, sid, NODE_GET_TAG,
                                     sizeof NODE_GET_TAG - 1, queue, queue_len, 1,
                                     ack_mode == WIRE_ACK_AUTO);
    if (rc != 0) {
        node__reply(n, from, request_id, node__status_of(rc), 0, NULL);
        return 1;
    }
    n->get_delivered = false;
    node__dispatch(n);
    (void)broker_sessions_cancel(&n->sessions, sid, NODE_GET_TAG, sizeof NODE_GET_TAG - 1);
    const bool delivered = n->get_delivered;
    n->get_delivered = false;
    if (delivered) return 1;
    /* Counts show a requeued message as ready at once (queue_info); a get
     * must not then say empty: wait for its RETURN to apply. */
    const broker_queue_t *q = broker_sm_queue(&n->sm, queue, queue_len);
    uint32_t ready = 0, consumers = 0;
    if (q != NULL) broker_sessions_queue_info(&n->sessions, q, &ready, &consumers);
    if (!last && ready > 0) return 0;
    node__reply(n, from, request_id, WIRE_STATUS_EMPTY, 0, NULL);
    return 1;
}

static void node__on_get(broker_node_t *n, io_addr_t from, const wire_get_t *g) {
    if (node__locked(n, from, g->queue.ptr, g->queue.len)) {
        node__reply(n, from, g->request_id, WIRE_STATUS_RESOURCE_LOCKED, 0,
                    "RESOURCE_LOCKED - the queue is exclusive to another connection");
        return;
    }
    const bool room = n->parked_count < NODE_PARKED_GETS_MAX;
    if (node__get_once(n, from, g->request_id, (const char *)g->queue.ptr, g->queue.len,
                       g->ack_mode, !room))
        return;
    struct node_parked_get *p = &n->parked[n->parked_count++];
    p->from = from;
    p->request_id = g->request_id;
    p->deadline_ns = io_now_ns(&n->io) + NODE_GET_PARK_NS;
    p->ack_mode = g->ack_mode;
    p->queue_len = (uint16_t)g->queue.len;
    if (g->queue.len) memcpy(p->queue, g->queue.ptr, g->queue.len);
}

/* Try the parked gets again (after applies, on ticks), oldest first. */
static void node__retry_gets(broker_node_t *n) {
    if (!n->sessions_live || n->parked_count == 0) return;
    const uint64_t now = io_now_ns(&n->io);
    uint32_t out = 0;
    const uint32_t count = n->parked_count;
    n->parked_count = 0; /* node__get_once never parks; keep the loop simple */
    struct node_parked_get keep[NODE_PARKED_GETS_MAX];
    for (uint32_t i = 0; i < count; i++) {
        const struct node_parked_get p = n->parked[i];
        if (!node__get_once(n, p.from, p.request_id, p.queue, p.queue_len, p.ack_mode,
                            now >= p.deadline_ns))
            keep[out++] = p;
    }
    memcpy(n->parked, keep, out * sizeof keep[0]);
    n->parked_count = out;
}

/* BIND and UNBIND carry the same fields. */
static void node__bind_cmd(uint8_t type, const wire_bind_t *b, broker_sm_cmd_t *cmd) {
    memset(cmd, 0, sizeof *cmd);
    cmd->type = type;
    cmd->exchange.ptr = (const char *)b->exchange.ptr;
    cmd->exchange.len = b->exchange.len;
    cmd->queue.ptr = (const char *)b->queue.ptr;
    cmd->queue.len = b->queue.len;
    cmd->key.ptr = (const char *)b->routing_key.ptr;
    cmd->key.len = b->routing_key.len;
}

/* AMQP queue.purge removes ready messages only: the leader names the ones
 * its sessions have out (protocol hook). Returns true when it answered or
 * proposed; false to purge everything (nothing is out). */
static bool node__purge_ready(broker_node_t *n, io_addr_t from, uint64_t request_id,
                              broker_sm_cmd_t *cmd) {
    const broker_queue_t *q = broker_sm_queue(&n->sm, cmd->queue.ptr, cmd->queue.len);
    if (q == NULL || !n->sessions_live) return false;
    const uint32_t busy = broker_sessions_queue_busy(&n->sessions, q, NULL, 0);
    if (busy == 0) return false;
    if (busy > SM_PURGE_KEEP_MAX) {
        node__reply(n, from, request_id, WIRE_STATUS_RESOURCE_LIMIT, 0, "too many unacked");
        return true;
    }
    uint64_t *ids = malloc(sizeof *ids * busy);
    uint8_t *keep = malloc(8 * (size_t)busy);
    if (ids == NULL || keep == NULL) {
        free(ids);
        free(keep);
        node__reply(n, from, request_id, WIRE_STATUS_RESOURCE_LIMIT, 0, NULL);
        return true;
    }
    (void)broker_sessions_queue_busy(&n->sessions, q, ids, busy);
    for (uint32_t i = 0; i < busy; i++) node__put_u64(keep + 8 * (size_t)i, ids[i]);
    cmd->type = SM_CMD_PURGE_READY;
    cmd->keep = keep;
    cmd->keep_count = busy;
    node__propose_reply(n, from, request_id, cmd);
    free(ids);
    free(keep);
    return true;
}

/* exchange.delete if_unused: does the exchange have bindings? */
static bool node__exchange_used(const broker_node_t *n, broker_sm_str_t name) {
    for (uint32_t i = 0; i < n->sm.binding_count; i++) {
        const broker_binding_t *b = &n->sm.bindings[i];
        if (b->exchange_len == name.len && memcmp(b->exchange, name.ptr, name.len) == 0)
            return true;
    }
    for (uint32_t i = 0; i < n->sm.xbinding_count; i++) {
        const broker_binding_t *b = &n->sm.xbindings[i];
        if (b->exchange_len == name.len && memcmp(b->exchange, name.ptr, name.len) == 0)
            return true;
    }
    return false;
}

/* Requests that only change the replicated state: propose, REPLY on apply. */
static void node__on_state_request(broker_node_t *n, io_addr_t from, const wire_msg_t *m,
                                   uint64_t request_id) {
    const wire_bytes_t *queue = m->type == WIRE_MSG_BIND         ? &m->bind.queue
                                : m->type == WIRE_MSG_UNBIND      ? &m->unbind.queue
                                : m->type == WIRE_MSG_PURGE_QUEUE ? &m->purge_queue.queue
                                                                  : NULL;
    if (queue != NULL && node__locked(n, from, queue->ptr, queue->len)) {
        node__reply(n, from, request_id, WIRE_STATUS_RESOURCE_LOCKED, 0,
                    "RESOURCE_LOCKED - the queue is exclusive to another connection");
        return;
    }
    broker_sm_cmd_t cmd;
    memset(&cmd, 0, sizeof cmd);
    switch (m->type) {
    case WIRE_MSG_DECLARE_EXCHANGE:
        if (m->declare_exchange.passive) {
            const broker_exchange_t *x = broker_sm_exchange(
                &n->sm, (const char *)m->declare_exchange.name.ptr, m->declare_exchange.name.len);
            node__reply(n, from, request_id, x ? WIRE_STATUS_OK : WIRE_STATUS_NOT_FOUND, 0,
                        x ? NULL : "NOT_FOUND - no such exchange");
            return;
        }
        cmd.type = SM_CMD_DECLARE_EXCHANGE;
        cmd.exchange.ptr = (const char *)m->declare_exchange.name.ptr;
        cmd.exchange.len = m->declare_exchange.name.len;
        cmd.exchange_type = (uint8_t)(m->declare_exchange.kind |
                                      (m->declare_exchange.internal
                                           ? BROKER_EXCHANGE_INTERNAL_FLAG : 0u));
        break;
    case WIRE_MSG_BIND: node__bind_cmd(SM_CMD_BIND, &m->bind, &cmd); break;
    case WIRE_MSG_UNBIND: node__bind_cmd(SM_CMD_UNBIND, &m->unbind, &cmd); break;
    case WIRE_MSG_EXCHANGE_BIND:
    case WIRE_MSG_EXCHANGE_UNBIND:
        node__bind_cmd(m->type == WIRE_MSG_EXCHANGE_BIND ? SM_CMD_BIND_EXCHANGE
                                                         : SM_CMD_UNBIND_EXCHANGE,
                       &m->exchange_bind, &cmd);
        cmd.destination = cmd.queue; /* the wire's queue field names it */
        cmd.queue = (broker_sm_str_t){"", 0};
        break;
    case WIRE_MSG_PURGE_QUEUE:
        cmd.type = SM_CMD_PURGE_QUEUE;
        cmd.queue.ptr = (const char *)m->purge_queue.queue.ptr;
        cmd.queue.len = m->purge_queue.queue.len;
        if (node__purge_ready(n, from, request_id, &cmd)) return;
        break;
    case WIRE_MSG_DELETE_QUEUE: {
        cmd.type = SM_CMD_DELETE_QUEUE;
        cmd.queue.ptr = (const char *)m->delete_queue.queue.ptr;
        cmd.queue.len = m->delete_queue.queue.len;
        const broker_queue_t *q = broker_sm_queue(&n->sm, cmd.queue.ptr, cmd.queue.len);
        if (q != NULL && m->delete_queue.if_empty && q->count > 0) {
            node__reply(n, from, request_id, WIRE_STATUS_PRECONDITION_FAILED, q->count,
                        "PRECONDITION_FAILED - queue not empty");
            return;
        }
        uint32_t ready = 0, consumers = 0;
        if (q != NULL) broker_sessions_queue_info(&n->sessions, q, &ready, &consumers);
        if (q != NULL && m->delete_queue.if_unused && consumers > 0) {
            node__reply(n, from, request_id, WIRE_STATUS_PRECONDITION_FAILED, 0,
                        "PRECONDITION_FAILED - queue in use");
            return;
        }
        break;
    }
    case WIRE_MSG_DELETE_EXCHANGE: {
        const wire_delete_exchange_t *d = &m->delete_exchange;
        cmd.type = SM_CMD_DELETE_EXCHANGE;
        cmd.exchange.ptr = (const char *)d->name.ptr;
        cmd.exchange.len = d->name.len;
        if (d->if_unused && node__exchange_used(n, cmd.exchange)) {
            node__reply(n, from, request_id, WIRE_STATUS_PRECONDITION_FAILED, 0,
                        "PRECONDITION_FAILED - exchange in use");
            return;
        }
        break;
    }
    default: assert(0 && "not a state request"); return;
    }
    node__propose_reply(n, from, request_id, &cmd);
}

/* ACK / NACK / REJECT of a delivery of the client's current session. */
static void node__on_settle(broker_node_t *n, io_addr_t from, const wire_msg_t *m) {
    node_client_t *c = node__client(n, from, false);
    if (c == NULL || c->session_id == 0) return;
    uint64_t tag, epoch;
    uint8_t multiple = 0, requeue = 0;
    if (m->type == WIRE_MSG_ACK) {
        tag = m->ack.delivery_tag, multiple = m->ack.multiple, epoch = m->ack.session_id;
    } else if (m->type == WIRE_MSG_NACK) {
        tag = m->nack.delivery_tag, multiple = m->nack.multiple, requeue = m->nack.requeue;
        epoch = m->nack.session_id;
    } else {
        assert(m->type == WIRE_MSG_REJECT);
        tag = m->reject.delivery_tag, requeue = m->reject.requeue, epoch = m->reject.session_id;
    }
    if (epoch != 0 && epoch != (c->session_id & 0xffffffffu)) return; /* stale session */
    uint32_t count = 0;
    const int rc = m->type == WIRE_MSG_ACK
                       ? broker_sessions_ack(&n->sessions, c->session_id, tag, multiple,
                                             n->cmds, NODE_CMDS_BATCH, &count)
                       : broker_sessions_nack(&n->sessions, c->session_id, tag, multiple,
                                              requeue, n->cmds, NODE_CMDS_BATCH, &count);
    if (rc == 0) node__propose_session_cmds(n, count);
    (void)broker_sessions_touch(&n->sessions, c->session_id, io_now_ns(&n->io));
}

/* The request id of a client request (a message the client expects an
 * answer to), or false for anything else. */
static bool node__request_id(const wire_msg_t *m, uint64_t *id) {
    switch (m->type) {
    case WIRE_MSG_HEARTBEAT: *id = 0; return true;
    case WIRE_MSG_PUBLISH: *id = m->publish.request_id; return true;
    case WIRE_MSG_DECLARE_QUEUE: *id = m->declare_queue.request_id; return true;
    case WIRE_MSG_DECLARE_EXCHANGE: *id = m->declare_exchange.request_id; return true;
    case WIRE_MSG_BIND: *id = m->bind.request_id; return true;
    case WIRE_MSG_UNBIND: *id = m->unbind.request_id; return true;
    case WIRE_MSG_PURGE_QUEUE: *id = m->purge_queue.request_id; return true;
    case WIRE_MSG_DELETE_QUEUE: *id = m->delete_queue.request_id; return true;
    case WIRE_MSG_DELETE_EXCHANGE: *id = m->delete_exchange.request_id; return true;
    case WIRE_MSG_EXCHANGE_BIND:
    case WIRE_MSG_EXCHANGE_UNBIND: *id = m->exchange_bind.request_id; return true;
    case WIRE_MSG_CONSUME: *id = m->consume.request_id; return true;
    case WIRE_MSG_CANCEL: *id = m->cancel.request_id; return true;
    case WIRE_MSG_GET: *id = m->get.request_id; return true;
    default: return false;
    }
}

static void node__on_client(broker_node_t *n, io_addr_t from, const wire_msg_t *m) {
    const bool leader = raft_is_leader(&n->raft) && n->sessions_live;
    uint64_t request_id = 0;
    const bool request = node__request_id(m, &request_id);
    if (!leader) {
        /* Requests learn where the leader is; acks are dropped: their
         * session died with the old leadership. */
        if (request) node__not_leader(n, from, request_id);
        return;
    }
    switch (m->type) {
    case WIRE_MSG_HEARTBEAT: {
        const uint64_t sid = node__session(n, from, m->heartbeat.session_id);
        node_client_t *cl = node__client(n, from, false);
        if (cl != NULL) cl->owner = m->heartbeat.owner;
        wire_msg_t r = *m;
        r.heartbeat.session_id = sid & 0xffffffffu; /* the client keeps this epoch */
        node__send(n, from, &r);
        return;
    }
    case WIRE_MSG_PUBLISH: node__on_publish(n, from, &m->publish); return;
    case WIRE_MSG_DECLARE_QUEUE: node__on_declare_queue(n, from, &m->declare_queue); return;
    case WIRE_MSG_DECLARE_EXCHANGE:
    case WIRE_MSG_BIND:
    case WIRE_MSG_UNBIND:
    case WIRE_MSG_PURGE_QUEUE:
    case WIRE_MSG_DELETE_QUEUE:
    case WIRE_MSG_DELETE_EXCHANGE:
    case WIRE_MSG_EXCHANGE_BIND:
    case WIRE_MSG_EXCHANGE_UNBIND: node__on_state_request(n, from, m, request_id); return;
    case WIRE_MSG_CONSUME: {
        if (node__locked(n, from, m->consume.queue.ptr, m->consume.queue.len)) {
            node__reply(n, from, request_id, WIRE_STATUS_RESOURCE_LOCKED, 0,
                        "RESOURCE_LOCKED - the queue is exclusive to another connection");
            return;
        }
        node_client_t *c = node__client(n, from, true);
        uint64_t sid = c && c->session_id ? c->session_id : node__session(n, from, 0);
        int rc = sid ? broker_sessions_consume_ex(&n->sessions, &n->sm, sid,
                                                  (const char *)m->consume.consumer_tag.ptr,
                                                  m->consume.consumer_tag.len,
                                                  (const char *)m->consume.queue.ptr,
                                                  m->consume.queue.len, m->consume.prefetch,
                                                  m->consume.ack_mode == WIRE_ACK_AUTO,
                                                  m->consume.exclusive)
                     : SM_ELIMIT;
        /* count = the session epoch, for the client's heartbeats. */
        node__reply(n, from, request_id, node__status_of(rc),
                    rc == 0 ? (sid & 0xffffffffu) : 0, NULL);
        if (rc == 0) node__dispatch(n);
        return;
    }
    case WIRE_MSG_GET: node__on_get(n, from, &m->get); return;
    case WIRE_MSG_CANCEL: {
        node_client_t *c = node__client(n, from, false);
        int rc = c && c->session_id
                     ? broker_sessions_cancel(&n->sessions, c->session_id,
                                              (const char *)m->cancel.consumer_tag.ptr,
                                              m->cancel.consumer_tag.len)
                     : SM_ENOTFOUND;
        node__reply(n, from, request_id, node__status_of(rc), 0, NULL);
        return;
    }
    case WIRE_MSG_ACK:
    case WIRE_MSG_NACK:
    case WIRE_MSG_REJECT: node__on_settle(n, from, m); return;
    default:
        return; /* node->client types or peer types from a client: ignore */
    }
}

/* ---- recovery ------------------------------------------------------------------------ */

static void node__start_raft(broker_node_t *n) {
    uint32_t vote = broker_meta_vote(&n->meta);
    raft_start(&n->raft, broker_meta_term(&n->meta),
               vote == BROKER_META_VOTE_NONE ? RAFT_NODES_MAX : vote, n->applied);
    n->phase = NODE_RUNNING;
    if (n->cfg.fsync == BROKER_FSYNC_INTERVAL)
        (void)io_timer_set(&n->io, io_now_ns(&n->io) + n->cfg.fsync_interval_ns,
                           broker_token_make(BROKER_TOKEN_NODE, NODE_TIMER_FSYNC));
    io_trace(&n->io, "node.recovered", NULL);
}

static void node__recover_log(broker_node_t *n) {
    n->phase = NODE_RECOVERING_LOG;
    if (n->snap_index > 0 && broker_log_set_base(&n->log, n->snap_index, n->snap_term) != 0) {
        node__fail(n, "log base");
        return;
    }
    const int rc = broker_log_recover(&n->log);
    if (rc == 1) node__start_raft(n);
    else if (rc < 0) node__fail(n, "log recover");
}

static void node__snapshot_loaded(broker_node_t *n) {
    uint64_t index = 0, term = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    broker_snapshot_loaded(&n->snap, &index, &term, &data, &len);
    if (index > 0) {
        if (broker_sm_restore(&n->sm, data, len) != 0) {
            node__fail(n, "snapshot restore");
            return;
        }
        n->snap_bytes = malloc(len ? len : 1);
        if (n->snap_bytes == NULL) {
            node__fail(n, "snapshot memory");
            return;
        }
        if (len) memcpy(n->snap_bytes, data, len);
        n->snap_len = len;
        n->snap_index = index;
        n->snap_term = term;
        n->applied = index;
    }
    node__recover_log(n);
}

static void node__meta_loaded(broker_node_t *n) {
    n->phase = NODE_LOADING_SNAPSHOT;
    const int rc = broker_snapshot_load(&n->snap);
    if (rc == 1) node__snapshot_loaded(n);
    else if (rc < 0) node__fail(n, "snapshot load");
}

/* ---- io handler ------------------------------------------------------------------------ */

static void node_on_message(void *node, io_addr_t from, const uint8_t *bytes, size_t len) {
    broker_node_t *n = node;
    if (n->phase != NODE_RUNNING) return;
    wire_msg_t m;
    if (wire_decode(bytes, len, &m, n->entries, WIRE_ENTRIES_MAX) != 0) {
        io_trace(&n->io, "node.bad_message", NULL); /* corrupt: dropped */
        return;
    }
    if (node__is_client(n, from)) node__on_client(n, from, &m);
    else raft_on_message(&n->raft, from, &m);
    raft_flush(&n->raft);
}

static void node__on_tick(broker_node_t *n) {
    if (!raft_is_leader(&n->raft) || !n->sessions_live) return;
    for (uint32_t round = 0; round < NODE_DISPATCH_ROUNDS_MAX; round++) {
        uint32_t count = 0;
        const int more = broker_sessions_tick(&n->sessions, io_now_ns(&n->io), n->cmds,
                                              NODE_CMDS_BATCH, &count);
        node__propose_session_cmds(n, count);
        if (!more) break;
    }
    /* Forget the sessions that expired so a returning client opens anew. */
    node__dispatch(n);
    node__retry_gets(n);
    (void)io_timer_set(&n->io, io_now_ns(&n->io) + NODE_TICK_NS,
                       broker_token_make(BROKER_TOKEN_NODE, NODE_TIMER_TICK));
}

static void node_on_timer(void *node, uint64_t token) {
    broker_node_t *n = node;
    if (n->phase != NODE_RUNNING) return;
    const uint64_t local = broker_token_local(token);
    switch (broker_token_owner(token)) {
    case BROKER_TOKEN_RAFT: raft_on_timer(&n->raft, local); break;
    case BROKER_TOKEN_NODE:
        if (local == NODE_TIMER_TICK) node__on_tick(n);
        if (local == NODE_TIMER_FSYNC) {
            (void)broker_log_sync(&n->log);
            (void)io_timer_set(&n->io, io_now_ns(&n->io) + n->cfg.fsync_interval_ns,
                               broker_token_make(BROKER_TOKEN_NODE, NODE_TIMER_FSYNC));
        }
        break;
    default: break;
    }
    raft_flush(&n->raft);
}

static void node__on_log_done(broker_node_t *n, uint64_t token, int64_t result) {
    const broker_log_event_t ev = broker_log_on_disk_done(&n->log, token, result);
    if (ev.flags & BROKER_LOG_EV_ERROR) {
        node__fail(n, "log disk error");
        return;
    }
    if ((ev.flags & BROKER_LOG_EV_RECOVERED) && n->phase == NODE_RECOVERING_LOG) {
        if (broker_log_status(&n->log) == BROKER_LOG_FAILED) {
            node__fail(n, "log recovery failed");
            return;
        }
        node__start_raft(n);
    }
    if (n->phase != NODE_RUNNING) return;
    raft_on_log_event(&n->raft, &ev);
    if (ev.flags & BROKER_LOG_EV_DURABLE) node__confirm_leader_acks(n);
}

static void node_on_disk_done(void *node, uint64_t token, int64_t result) {
    broker_node_t *n = node;
    if (n->phase == NODE_FAILED) return;
    switch (broker_token_owner(token)) {
    case BROKER_TOKEN_LOG: node__on_log_done(n, token, result); break;
    case BROKER_TOKEN_META: {
        const broker_meta_event_t ev = broker_meta_on_disk_done(&n->meta, token, result);
        if (ev.flags & BROKER_META_EV_ERROR) node__fail(n, "meta disk error");
        else if ((ev.flags & BROKER_META_EV_LOADED) && n->phase == NODE_LOADING_META)
            node__meta_loaded(n);
        else if (ev.flags & BROKER_META_EV_SAVED)
            raft_on_persisted(&n->raft, ev.term,
                              ev.vote == BROKER_META_VOTE_NONE ? RAFT_NODES_MAX : ev.vote);
        break;
    }
    case BROKER_TOKEN_SNAPSHOT: {
        const broker_snapshot_event_t ev = broker_snapshot_on_disk_done(&n->snap, token, result);
        if (ev.flags & BROKER_SNAPSHOT_EV_ERROR) node__fail(n, "snapshot disk error");
        else if ((ev.flags & BROKER_SNAPSHOT_EV_LOADED) && n->phase == NODE_LOADING_SNAPSHOT)
            node__snapshot_loaded(n);
        else if (ev.flags & BROKER_SNAPSHOT_EV_SAVED)
            node__snapshot_saved(n, ev.index, ev.term);
        break;
    }
    default: break;
    }
    if (n->phase == NODE_RUNNING) {
        node__apply(n, raft_commit_index(&n->raft));
        raft_flush(&n->raft);
    }
}

/* ---- boot / halt ------------------------------------------------------------------------- */

static void node_halt(void *node, int graceful) {
    broker_node_t *n = node;
    (void)graceful;
    if (n == NULL) return;
    if (n->sessions_live) broker_sessions_close(&n->sessions);
    raft_close(&n->raft);
    broker_sm_close(&n->sm);
    broker_snapshot_close(&n->snap);
    broker_meta_close(&n->meta);
    broker_log_close(&n->log);
    free(n->snap_bytes);
    free(n->snap_saving_bytes);
    free(n->pending);
    free(n->cmd_buf);
    free(n->env_buf);
    free(n->out_buf);
    free(n->entries);
    free(n);
}

static void *node_boot(void *arg, const io_t *io) {
    const broker_config_t *cfg = arg;
    char err[128];
    if (cfg == NULL || io == NULL || broker_config_check(cfg, err, sizeof err) != 0) return NULL;
    broker_node_t *n = calloc(1, sizeof *n);
    if (n == NULL) return NULL;
    n->io = *io;
    n->cfg = *cfg;
    n->cfg.id = io->self;
    n->pending = calloc(BROKER_PENDING_MAX, sizeof *n->pending);
    n->cmd_buf = malloc(SM_CMD_SIZE_MAX);
    n->env_buf = malloc(SM_MESSAGE_BODY_MAX + NODE_ENVELOPE_HEADER);
    n->out_buf = malloc(WIRE_MESSAGE_SIZE_MAX);
    n->entries = calloc(WIRE_ENTRIES_MAX, sizeof *n->entries);
    broker_sm_config_t smc = {.dedup = cfg->dedup ? 1 : 0};
    broker_sm_init(&n->sm, &smc);
    broker_log_config_t lc;
    broker_log_config_default(&lc);
    lc.segment_size_max_bytes = cfg->segment_size_bytes;
    raft_config_t rc;
    raft_config_default(&rc, n->cfg.id, cfg->replicas);
    rc.election_timeout_min_ns = cfg->election_timeout_min_ns;
    rc.election_timeout_max_ns = cfg->election_timeout_max_ns;
    rc.heartbeat_interval_ns = cfg->heartbeat_interval_ns;
    rc.pre_vote = cfg->pre_vote;
    rc.check_quorum = cfg->check_quorum;
    rc.unclean_election = cfg->election == BROKER_ELECTION_UNCLEAN;
    rc.wait_durable = cfg->fsync == BROKER_FSYNC_ALWAYS;
    const raft_callbacks_t cb = {
        .persist = node__persist, .committed = node__on_committed,
        .role_changed = node__role_changed, .snapshot_get = node__snapshot_get,
        .snapshot_install = node__snapshot_install,
    };
    if (n->pending == NULL || n->cmd_buf == NULL || n->env_buf == NULL || n->out_buf == NULL ||
        n->entries == NULL || broker_log_init(&n->log, &n->io, &lc) != 0 ||
        broker_meta_init(&n->meta, &n->io) != 0 || broker_snapshot_init(&n->snap, &n->io) != 0 ||
        raft_init(&n->raft, &n->io, &n->log, &rc, &cb, n) != 0) {
        node_halt(n, 0);
        return NULL;
    }
    n->phase = NODE_LOADING_META;
    if (broker_meta_load(&n->meta) != 0) node__fail(n, "meta load");
    return n;
}

static const io_handler_t node_handler = {
    .on_message = node_on_message,
    .on_timer = node_on_timer,
    .on_disk_done = node_on_disk_done,
};

const io_program_t broker_node_program = {
    .name = "broker",
    .boot = node_boot,
    .halt = node_halt,
    .handler = &node_handler,
};

/* ---- introspection ----------------------------------------------------------------------- */

void broker_node_info(const broker_node_t *n, broker_node_info_t *out) {
    memset(out, 0, sizeof *out);
    out->running = n->phase == NODE_RUNNING;
    out->failed = n->phase == NODE_FAILED;
    out->log_corrupt = broker_log_status(&n->log) == BROKER_LOG_CORRUPT;
    out->role = n->raft.role;
    out->leader = n->raft.leader;
    out->term = n->raft.term;
    out->commit_index = n->raft.commit_index;
    out->applied_index = n->applied;
    out->last_index = broker_log_last_index(&n->log);
    out->durable_index = broker_log_durable_index(&n->log);
    out->snapshot_index = n->snap_index;
    out->confirms_sent = n->confirms_sent;
    out->nacks_sent = n->nacks_sent;
    out->deliveries_sent = n->deliveries_sent;
}

uint64_t broker_node_state_digest(const broker_node_t *n) { return broker_sm_digest(&n->sm); }

static int node__check_fail(char *why, size_t cap, const char *msg) {
    if (why != NULL && cap > 0) snprintf(why, cap, "%s", msg);
    return 0;
}

static int node__check_tables(const broker_node_t *n, char *why, size_t cap) {
    if (n->client_count > BROKER_CLIENTS_MAX)
        return node__check_fail(why, cap, "client table over its bound");
    for (uint32_t i = 1; i < n->client_count; i++)
        if (n->clients[i - 1].addr >= n->clients[i].addr)
            return node__check_fail(why, cap, "client table not sorted by address");
    if (n->pending_count > BROKER_PENDING_MAX)
        return node__check_fail(why, cap, "pending requests over their bound");
    uint64_t prev = 0;
    for (uint32_t i = 0; i < n->pending_count; i++) {
        const node_pending_t *p = &n->pending[(n->pending_head + i) % BROKER_PENDING_MAX];
        if (p->index < prev)
            return node__check_fail(why, cap, "pending requests out of index order");
        prev = p->index;
    }
    return 1;
}

int broker_node_check(const broker_node_t *n, char *why, size_t cap) {
    if (n == NULL) return node__check_fail(why, cap, "no node");
    if (!node__check_tables(n, why, cap)) return 0;
    if (n->phase != NODE_RUNNING) return 1;
    const uint64_t last = broker_log_last_index(&n->log);
    if (broker_log_durable_index(&n->log) > last)
        return node__check_fail(why, cap, "durable index beyond the last log entry");
    /* Weak strategies (fsync never/interval, unclean elections) may lose
     * committed entries from a log: that is their lesson, not a bug. */
    const bool safe = n->cfg.fsync == BROKER_FSYNC_ALWAYS &&
                      n->cfg.election == BROKER_ELECTION_SAFE;
    if (safe && n->raft.commit_index > last && n->raft.commit_index > n->snap_index)
        return node__check_fail(why, cap, "commit index beyond the log");
    if (n->applied > n->raft.commit_index)
        return node__check_fail(why, cap, "applied beyond the commit index");
    if (!broker_sm_check(&n->sm))
        return node__check_fail(why, cap, "state machine inconsistent (broker_sm_check)");
    return 1;
}
const struct broker_sm *broker_node_sm(const broker_node_t *n) { return &n->sm; }

int64_t broker_node_queue_depth(const broker_node_t *n, const char *queue) {
    const broker_queue_t *q = broker_sm_queue(&n->sm, queue, strlen(queue));
    return q ? (int64_t)q->count : -1;
}

int64_t broker_node_queue_visit(const broker_node_t *n, const char *queue,
                                void (*cb)(void *arg, uint64_t message_id), void *arg) {
    const broker_queue_t *q = broker_sm_queue(&n->sm, queue, strlen(queue));
    if (q == NULL) return -1;
    for (uint32_t i = 0; i < q->count; i++) {
        const broker_message_t *m = broker_queue_at(q, i);
        uint64_t id = m->message_id;
        const uint8_t *props, *body;
        size_t plen, blen;
        (void)broker_envelope_decode(broker_message_body(m), m->body_len, &id, &props, &plen,
                                     &body, &blen);
        cb(arg, id);
    }
    return q->count;
}

uint64_t broker_node_log_term_at(const broker_node_t *n, uint64_t index) {
    if (index <= broker_log_base_index(&n->log)) return 0;
    return broker_log_term_at(&n->log, index);
}

uint64_t broker_node_log_base(const broker_node_t *n) { return broker_log_base_index(&n->log); }

void broker_node_client_closed(broker_node_t *n, io_addr_t addr) {
    assert(n != NULL);
    if (n->phase != NODE_RUNNING || !node__is_client(n, addr)) return;
    node_client_t *c = node__client(n, addr, false);
    if (c == NULL) return;
    assert(c->addr == addr);
    if (c->session_id != 0 && n->sessions_live) {
        uint32_t count = 0;
        /* On SM_ENOSPACE (more unacked than one batch) the session stays and
         * expires by timeout, which returns its deliveries in batches. */
        if (broker_sessions_close_session(&n->sessions, c->session_id, n->cmds,
                                          NODE_CMDS_BATCH, &count) == 0)
            node__propose_session_cmds(n, count);
    }
    const uint32_t i = (uint32_t)(c - n->clients);
    memmove(&n->clients[i], &n->clients[i + 1],
            (n->client_count - i - 1) * sizeof n->clients[0]);
    n->client_count--;
    raft_flush(&n->raft);
}
