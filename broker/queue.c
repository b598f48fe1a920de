/*
 * broker/queue.c — message list of one queue (see queue.h for the layout).
 */
#include "broker/queue.h"

#include "broker/io.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

broker_queue_t *broker_queue_new(const char *name, size_t name_len,
                                 const char *dlq, size_t dlq_len,
                                 uint32_t delivery_limit,
                                 uint32_t max_messages) {
    assert(name_len <= BROKER_QUEUE_NAME_MAX);
    assert(dlq_len <= BROKER_QUEUE_NAME_MAX);
    assert(max_messages >= 1 && max_messages <= BROKER_QUEUE_MESSAGES_MAX);
    broker_queue_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    if (name_len > 0)
        memcpy(q->name, name, name_len);
    if (dlq_len > 0)
        memcpy(q->dlq, dlq, dlq_len);
    q->name_len = (uint16_t)name_len;
    q->dlq_len = (uint16_t)dlq_len;
    q->delivery_limit = delivery_limit;
    q->max_messages = max_messages;
    return q;
}

void broker_queue_free(broker_queue_t *q) {
    if (q == NULL)
        return;
    broker_queue_purge(q);
    free(q->slots);
    free(q);
}

int broker_queue_reserve(broker_queue_t *q, uint32_t extra) {
    assert(q != NULL);
    assert(q->head + q->count <= q->capacity || q->capacity == 0);
    uint64_t need = (uint64_t)q->count + extra;
    if (need > BROKER_QUEUE_MESSAGES_MAX)
        return IO_ENOMEM;
    if ((uint64_t)q->head + need <= q->capacity)
        return 0;
    if (need <= q->capacity) {
        /* Enough room overall: slide the live window back to slot 0. */
        memmove(q->slots, q->slots + q->head, q->count * sizeof *q->slots);
        q->head = 0;
        return 0;
    }
    uint32_t cap = q->capacity ? q->capacity : 16;
    while (cap < need)
        cap *= 2;
    if (cap > BROKER_QUEUE_MESSAGES_MAX)
        cap = BROKER_QUEUE_MESSAGES_MAX;
    broker_message_t *slots = malloc((size_t)cap * sizeof *slots);
    if (slots == NULL)
        return IO_ENOMEM;
    if (q->count > 0)
        memcpy(slots, q->slots + q->head, q->count * sizeof *slots);
    free(q->slots);
    q->slots = slots;
    q->capacity = cap;
    q->head = 0;
    return 0;
}

void broker_queue_append(broker_queue_t *q, const broker_message_t *m) {
    assert(q != NULL && m != NULL && m->data != NULL);
    assert(q->head + q->count < q->capacity); /* reserved */
    assert(q->count < q->max_messages);
    assert(q->count == 0 ||
           q->slots[q->head + q->count - 1].message_id < m->message_id);
    q->slots[q->head + q->count] = *m;
    q->count++;
    q->body_bytes += m->body_len;
}

int64_t broker_queue_find(const broker_queue_t *q, uint64_t message_id) {
    assert(q != NULL);
    uint32_t lo = 0, hi = q->count; /* search [lo, hi) */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t id = q->slots[q->head + mid].message_id;
        if (id == message_id)
            return mid;
        if (id < message_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    assert(lo <= q->count);
    return -1;
}



void broker_queue_remove(broker_queue_t *q, uint32_t pos,
                         broker_message_t *out) {
    assert(q != NULL && out != NULL);
    assert(pos < q->count);
    broker_message_t *base = q->slots + q->head;
    *out = base[pos];
    assert(q->body_bytes >= out->body_len);
    q->body_bytes -= out->body_len;
    if (pos < q->count / 2) {
        /* closer to the head: shift the front part one slot right */
        memmove(base + 1, base, pos * sizeof *base);
        q->head++;
    } else {
        memmove(base + pos, base + pos + 1,
                (q->count - pos - 1) * sizeof *base);
    }
    q->count--;
    if (q->count == 0)
        q->head = 0;
}

uint32_t broker_queue_purge_except(broker_queue_t *q, const uint64_t *keep,
                                   uint32_t keep_count) {
    assert(q != NULL && (keep != NULL || keep_count == 0));
    const uint32_t n = q->count;
    if (n == 0)
        return 0; /* slots may not be allocated yet: no pointer arithmetic */
    broker_message_t *base = q->slots + q->head;
    uint32_t w = 0, k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t id = base[i].message_id;
        while (k < keep_count && keep[k] < id) k++;
        if (k < keep_count && keep[k] == id) {
            base[w++] = base[i];
            continue;
        }
        assert(q->body_bytes >= base[i].body_len);
        q->body_bytes -= base[i].body_len;
        free(base[i].data);
    }
    q->count = w;
    if (w == 0) q->head = 0;
    return n - w;
}

uint32_t broker_queue_purge(broker_queue_t *q) {
    assert(q != NULL);
    uint32_t n = q->count;
    for (uint32_t i = 0; i < n; i++)
        free(q->slots[q->head + i].data);
    q->count = 0;
    q->head = 0;
    q->body_bytes = 0;
    return n;
}

uint8_t *broker_message_data_new(const char *exchange, size_t exchange_len,
                                 const char *routing_key, size_t rk_len,
                                 const uint8_t *body, size_t body_len) {
    assert(exchange_len <= BROKER_QUEUE_NAME_MAX && rk_len <= BROKER_QUEUE_NAME_MAX);
    assert(body_len <= BROKER_QUEUE_BODY_MAX);
    size_t total = exchange_len + rk_len + body_len;
    uint8_t *d = malloc(total > 0 ? total : 1); /* never malloc(0) */
    if (d == NULL)
        return NULL;
    if (exchange_len > 0)
        memcpy(d, exchange, exchange_len);
    if (rk_len > 0)
        memcpy(d + exchange_len, routing_key, rk_len);
    if (body_len > 0)
        memcpy(d + exchange_len + rk_len, body, body_len);
    return d;
}
