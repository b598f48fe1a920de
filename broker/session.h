/*
 * broker/session.h — leader-local consumer sessions.
 *
 * Only the Raft leader runs these. A session is one AMQP channel (the caller
 * picks its 64-bit id, e.g. connection << 16 | channel). Consumers attach to
 * a queue with a tag, a prefetch (max unacked deliveries, 0 = up to
 * SESSION_INFLIGHT_MAX) and an ack mode. broker_sessions_dispatch() reads the
 * replicated state machine (never writes it) and hands out ready messages;
 * acks, nacks, rejects, session expiry and ack timeouts produce the commands
 * (SETTLE / RETURN / REJECT_DISCARD) that the leader must propose to Raft.
 *
 * A message is "pending" (not ready) from its delivery until the state
 * machine shows the outcome: gone (SETTLE / REJECT_DISCARD / dead-lettered
 * applied) or delivery_count above what was seen at delivery (RETURN
 * applied). So a message is delivered to at most one consumer at a time even
 * while the commands are in flight through Raft. The caller must propose
 * every command it gets (or drop the whole broker_sessions_t, as on losing
 * leadership), else those messages stay pending.
 *
 * On a leader change the new leader starts with fresh sessions: everything
 * in the SM is ready again, and messages older than the leadership (id below
 * `fresh_from_id`) are flagged redelivered because an earlier leader may have
 * delivered them. That is why acks are replicated.
 *
 * Determinism: sessions sorted by id, consumers by attach order, queues by
 * name; round robin per queue in attach order. Time comes in as now_ns.
 */
#ifndef CHAOSLAB_BROKER_SESSION_H
#define CHAOSLAB_BROKER_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "broker/sm.h"

#define SESSIONS_MAX 256u            /* sessions (channels) per leader */
#define SESSION_CONSUMERS_MAX 32u    /* consumers per session */
#define SESSION_INFLIGHT_MAX 4096u   /* unacked deliveries per session */
#define SESSION_PENDING_MAX 65536u   /* leader-wide messages not ready */
#define SESSION_TRACKS_MAX SM_QUEUES_MAX /* queues with consumers/pending */

/* A command for the leader to propose (owns its queue name). */
typedef struct broker_session_cmd {
    uint8_t type; /* SM_CMD_SETTLE, SM_CMD_RETURN or SM_CMD_REJECT_DISCARD */
    uint16_t queue_len;
    char queue[SM_NAME_MAX + 1];
    uint64_t message_id;
} broker_session_cmd_t;

/* One delivery to send as basic.deliver. Pointers are borrowed: consumer_tag
 * until the next consume/cancel/close/tick call on the sessions (the consumer
 * table may move), queue/message until the next SM apply or restore. Send
 * them before doing anything else. */
typedef struct broker_delivery {
    uint64_t session_id;
    uint64_t delivery_tag; /* per session, from 1, monotonic */
    const char *consumer_tag;
    uint16_t consumer_tag_len;
    const broker_queue_t *queue;
    const broker_message_t *message;
    uint8_t redelivered;
    uint8_t auto_ack; /* 1: already settled (a SETTLE was emitted) */
} broker_delivery_t;

typedef struct broker_sessions_config {
    uint64_t ack_timeout_ns; /* 0 = deliveries never time out */
} broker_sessions_config_t;

struct broker_sessions__session;
struct broker_sessions__consumer;
struct broker_sessions__track;

/* Caller-owned; fields are private to session.c. */
typedef struct broker_sessions {
    broker_sessions_config_t config;
    uint64_t fresh_from_id;
    uint64_t next_consumer_seq;
    uint32_t pending_total;
    struct broker_sessions__session **sessions; /* sorted by id */
    uint32_t session_count, session_capacity;
    struct broker_sessions__consumer *consumers; /* attach order */
    uint32_t consumer_count, consumer_capacity;
    struct broker_sessions__track **tracks; /* sorted by queue name */
    uint32_t track_count, track_capacity;
    uint32_t *scratch; /* consumer indices for one dispatch round */
    uint32_t scratch_capacity;
} broker_sessions_t;

/* View a session command as an SM command (strings borrowed from `in`). */
void broker_session_cmd_to_sm(const broker_session_cmd_t *in,
                              broker_sm_cmd_t *out);

/* Start empty (on becoming leader). `fresh_from_id` = the SM's
 * next_message_id at that moment. Never fails. */
void broker_sessions_init(broker_sessions_t *s,
                          const broker_sessions_config_t *config,
                          uint64_t fresh_from_id);

/* Messages with an id below `fresh_from_id` are flagged redelivered. A new
 * leader starts with UINT64_MAX (its state machine may still be behind what
 * an older leader delivered) and lowers it once its first own entry applied. */
void broker_sessions_set_fresh_from(broker_sessions_t *s, uint64_t fresh_from_id);

/* Free everything (on losing leadership, or shutdown). No commands: the next
 * leader makes every unsettled message ready again. */
void broker_sessions_close(broker_sessions_t *s);

/* Open session `id` whose peer must be heard from every heartbeat_timeout_ns
 * (0 = never expires). Errors: SM_EEXISTS, SM_ELIMIT, IO_ENOMEM. */
int broker_sessions_open_session(broker_sessions_t *s, uint64_t id,
                                 uint64_t heartbeat_timeout_ns, uint64_t now_ns);

/* The peer of session `id` was heard from. Error: SM_ENOTFOUND. */
int broker_sessions_touch(broker_sessions_t *s, uint64_t id, uint64_t now_ns);

/* Close session `id` (channel close, connection lost): one RETURN per unacked
 * delivery into cmds[0..cap), *n_out set. Errors: SM_ENOTFOUND, SM_ENOSPACE
 * (cap too small: nothing changed; SESSION_INFLIGHT_MAX always suffices). */
int broker_sessions_close_session(broker_sessions_t *s, uint64_t id,
                                  broker_session_cmd_t *cmds, uint32_t cap,
                                  uint32_t *n_out);

/* Attach consumer `tag` of session `id` to queue `queue` (which must exist in
 * sm). Tags are copied. Errors: SM_ENOTFOUND (session or queue), SM_EINVALID
 * (empty or oversized tag), SM_EEXISTS (tag in use in the session),
 * SM_ELIMIT, IO_ENOMEM. */
int broker_sessions_consume(broker_sessions_t *s, const broker_sm_t *sm,
                            uint64_t id, const char *tag, size_t tag_len,
                            const char *queue, size_t queue_len,
                            uint32_t prefetch, int auto_ack);

/* broker_sessions_consume with AMQP's exclusive consumers: SM_EINUSE when
 * the queue has an exclusive consumer, or has any consumer and `exclusive`
 * is asked. (basic.get is not affected.) */
int broker_sessions_consume_ex(broker_sessions_t *s, const broker_sm_t *sm, uint64_t id,
                               const char *tag, size_t tag_len, const char *queue,
                               size_t queue_len, uint32_t prefetch, int auto_ack,
                               int exclusive);

/* Detach consumer `tag`. Its unacked deliveries stay with the session (AMQP
 * basic.cancel). Error: SM_ENOTFOUND. */
int broker_sessions_cancel(broker_sessions_t *s, uint64_t id, const char *tag,
                           size_t tag_len);

/* Hand out ready messages to consumers with spare prefetch, queue by queue in
 * name order, round robin within a queue. Fills deliveries[0..dcap) and, for
 * auto-ack consumers, SETTLE commands into cmds[0..ccap); sets *n_deliveries
 * and *n_cmds. Stops early when either array is full (call again). Returns 0
 * or IO_ENOMEM (what was handed out so far stays valid). */
int broker_sessions_dispatch(broker_sessions_t *s, const broker_sm_t *sm,
                             uint64_t now_ns, broker_delivery_t *deliveries,
                             uint32_t dcap, broker_session_cmd_t *cmds,
                             uint32_t ccap, uint32_t *n_deliveries,
                             uint32_t *n_cmds);

/* basic.ack: SETTLE for `delivery_tag`, or with `multiple` for every
 * delivery up to it (0 with multiple = all). Errors: SM_ENOTFOUND (unknown
 * session or tag; AMQP makes that a channel error), SM_ENOSPACE (nothing
 * changed). */
int broker_sessions_ack(broker_sessions_t *s, uint64_t id,
                        uint64_t delivery_tag, int multiple,
                        broker_session_cmd_t *cmds, uint32_t cap,
                        uint32_t *n_out);

/* basic.nack / basic.reject (reject = multiple 0): RETURN when `requeue`,
 * else REJECT_DISCARD. Errors as broker_sessions_ack. */
int broker_sessions_nack(broker_sessions_t *s, uint64_t id,
                         uint64_t delivery_tag, int multiple, int requeue,
                         broker_session_cmd_t *cmds, uint32_t cap,
                         uint32_t *n_out);

/* Expire sessions not heard from within their heartbeat timeout and time
 * out deliveries unacked for config.ack_timeout_ns: RETURN commands into
 * cmds[0..cap). Returns 1 if cmds filled up before all work was done (call
 * again), else 0. */
int broker_sessions_tick(broker_sessions_t *s, uint64_t now_ns,
                         broker_session_cmd_t *cmds, uint32_t cap,
                         uint32_t *n_out);

/* Earliest time tick() has work, or UINT64_MAX. For arming a timer. */
uint64_t broker_sessions_next_deadline_ns(const broker_sessions_t *s);

/* What a client should see of queue `q` (AMQP queue.declare-ok and
 * basic.get-ok): *ready = messages neither delivered-and-unacked nor being
 * settled (a message whose RETURN is proposed counts as ready at once, so a
 * requeue is visible immediately); *consumers = consumers attached. */
void broker_sessions_queue_info(const broker_sessions_t *s, const broker_queue_t *q,
                                uint32_t *ready, uint32_t *consumers);

/* Ids (ascending) of the messages of `q` that are not ready: delivered and
 * unacked, or being settled (what queue_info does not count). Writes at
 * most `cap` into out[]; returns how many there are (may exceed cap). */
uint32_t broker_sessions_queue_busy(const broker_sessions_t *s, const broker_queue_t *q,
                                    uint64_t *out, uint32_t cap);

/* A consumer dropped because its queue no longer exists. */
typedef struct broker_session_dropped {
    uint64_t session_id;
    uint16_t tag_len;
    char tag[SM_NAME_MAX + 1];
} broker_session_dropped_t;

/* Detach consumers whose queue is gone from `sm` (queue.delete), filling
 * out[0..cap) so the caller can tell their clients (AMQP consumer cancel
 * notification). Returns how many were detached (call again while it
 * returns cap). Their unacked deliveries stay with the session. */
uint32_t broker_sessions_drop_orphans(broker_sessions_t *s, const broker_sm_t *sm,
                                      broker_session_dropped_t *out, uint32_t cap);

/* Unacked deliveries of session `id` (0 if unknown). */
uint32_t broker_sessions_unacked(const broker_sessions_t *s, uint64_t id);

#endif /* CHAOSLAB_BROKER_SESSION_H */
