/*
 * broker/queue.h — one durable queue of the replicated state machine.
 *
 * A queue is an ordered list of messages. Message ids are assigned by the
 * state machine from one monotonic counter and a message only ever enters a
 * queue at its tail with a fresh id (a dead-lettered message gets a new id),
 * so every queue is sorted by message_id: lookups are binary searches and
 * iteration order is the enqueue order, never pointer or hash order.
 *
 * Storage: a growable array with a movable head, so settling near the head
 * (the common FIFO case) is O(1) and settling in the middle moves the
 * shorter side. Each message owns one heap buffer holding
 * exchange name || routing key || body.
 */
#ifndef CHAOSLAB_BROKER_QUEUE_H
#define CHAOSLAB_BROKER_QUEUE_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define BROKER_QUEUE_NAME_MAX 255u            /* equals SM_NAME_MAX */
#define BROKER_QUEUE_MESSAGES_MAX (1u << 20) /* equals SM_QUEUE_MESSAGES_MAX; bodies are
                                                also bounded by SM_BODY_BYTES_MAX */
#define BROKER_QUEUE_BODY_MAX (1024u * 1024u) /* equals SM_MESSAGE_BODY_MAX */

/* AMQP queue properties: a redeclare must match them (406 otherwise). */
enum {
    BROKER_QUEUE_PROP_DURABLE = 1u << 0,
    BROKER_QUEUE_PROP_EXCLUSIVE = 1u << 1,
    BROKER_QUEUE_PROP_AUTO_DELETE = 1u << 2,
};
#define BROKER_QUEUE_PROPS_ALL 0x7u

typedef struct broker_message {
    uint64_t message_id;    /* unique in its queue, ascending */
    uint64_t producer_id;   /* 0 = anonymous producer */
    uint64_t sequence;      /* producer's sequence number */
    uint64_t enqueue_index; /* log index of the command that enqueued it */
    uint32_t delivery_count; /* RETURNs applied so far */
    uint32_t body_len;
    uint16_t exchange_len, routing_key_len;
    uint8_t persistent;
    uint8_t *data; /* owned: exchange || routing key || body */
} broker_message_t;

static inline const char *broker_message_exchange(const broker_message_t *m) {
    return (const char *)m->data;
}
static inline const char *broker_message_routing_key(const broker_message_t *m) {
    return (const char *)m->data + m->exchange_len;
}
static inline const uint8_t *broker_message_body(const broker_message_t *m) {
    return m->data + m->exchange_len + m->routing_key_len;
}

typedef struct broker_queue {
    uint16_t name_len, dlq_len;
    char name[BROKER_QUEUE_NAME_MAX + 1]; /* NUL-terminated */
    char dlq[BROKER_QUEUE_NAME_MAX + 1];  /* "" = no dead-letter queue */
    uint32_t delivery_limit; /* 0 = unlimited */
    uint32_t max_messages;   /* 1..BROKER_QUEUE_MESSAGES_MAX */
    uint8_t props;           /* BROKER_QUEUE_PROP_* as declared (AMQP) */
    uint64_t owner;          /* exclusive queue: the owning connection, 0 = none */
    /* messages live in slots [head, head + count) of `slots` */
    broker_message_t *slots;
    uint32_t head, count, capacity;
    uint64_t body_bytes; /* sum of body_len, for the SM-wide byte limit */
} broker_queue_t;

/* Allocate an empty queue. Names are copied; lengths must be <=
 * BROKER_QUEUE_NAME_MAX and max_messages in 1..BROKER_QUEUE_MESSAGES_MAX
 * (asserted: the SM validates first). Returns NULL when out of memory. */
broker_queue_t *broker_queue_new(const char *name, size_t name_len,
                                 const char *dlq, size_t dlq_len,
                                 uint32_t delivery_limit,
                                 uint32_t max_messages);

/* Free the queue and every message it owns. NULL is fine. */
void broker_queue_free(broker_queue_t *q);

/* Make room so the next `extra` appends cannot fail. Returns 0 or
 * IO_ENOMEM; the queue's contents are unchanged either way. */
int broker_queue_reserve(broker_queue_t *q, uint32_t extra);

/* Append `m` at the tail; the queue takes ownership of m->data. The caller
 * reserved room (asserted), checked count < max_messages (asserted) and gives
 * an id greater than every id in the queue (asserted). Never fails. */
void broker_queue_append(broker_queue_t *q, const broker_message_t *m);

/* Position (0 = head) of the message with `message_id`, or -1. */
int64_t broker_queue_find(const broker_queue_t *q, uint64_t message_id);

/* The message at position `pos` (< count, asserted). Valid until the queue
 * changes. */
/* Inline: dispatch and the sessions' bookkeeping call these in tight loops. */
static inline const broker_message_t *broker_queue_at(const broker_queue_t *q, uint32_t pos) {
    assert(q != NULL && pos < q->count);
    return &q->slots[q->head + pos];
}
static inline broker_message_t *broker_queue_at_mut(broker_queue_t *q, uint32_t pos) {
    assert(q != NULL && pos < q->count);
    return &q->slots[q->head + pos];
}

/* Remove the message at `pos` and hand it (with its buffer) to *out, which
 * the caller then owns (free out->data, or append it elsewhere). */
void broker_queue_remove(broker_queue_t *q, uint32_t pos, broker_message_t *out);

/* Drop every message but those whose ids are in keep[0..keep_count)
 * (ascending), in one pass. Returns how many were dropped. */
uint32_t broker_queue_purge_except(broker_queue_t *q, const uint64_t *keep,
                                   uint32_t keep_count);

/* Drop every message. Returns how many were dropped. */
uint32_t broker_queue_purge(broker_queue_t *q);

/* Copy exchange/routing key/body into one new buffer for a message. Returns
 * the buffer (caller owns) or NULL when out of memory. */
uint8_t *broker_message_data_new(const char *exchange, size_t exchange_len,
                                 const char *routing_key, size_t rk_len,
                                 const uint8_t *body, size_t body_len);

#endif /* CHAOSLAB_BROKER_QUEUE_H */
