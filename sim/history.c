/*
 * sim/history.c — growable, bounded, append-only record list.
 */
#include "sim/history.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io.h"

#define HISTORY__INITIAL_CAPACITY 1024u

struct history {
    history_record_t *records;
    uint64_t count;
    uint64_t capacity;
    uint64_t records_max;
    uint64_t dropped;
    uint16_t queues_count;
    char queues[HISTORY_QUEUES_MAX][HISTORY_QUEUE_NAME_MAX + 1];
};

int history_new(uint64_t records_max, history_t **out) {
    if (out == NULL) return IO_EINVAL;
    *out = NULL;
    if (records_max == 0) records_max = HISTORY_RECORDS_MAX;
    if (records_max > HISTORY_RECORDS_MAX) return IO_EINVAL;
    history_t *h = calloc(1, sizeof(*h));
    if (h == NULL) return IO_ENOMEM;
    h->records_max = records_max;
    *out = h;
    return 0;
}

void history_free(history_t *h) {
    if (h == NULL) return;
    free(h->records);
    free(h);
}

/* Double the storage, never beyond records_max. */
static int history__grow(history_t *h) {
    assert(h->count == h->capacity);
    if (h->capacity >= h->records_max) return IO_ENOMEM;
    uint64_t cap = h->capacity == 0 ? HISTORY__INITIAL_CAPACITY : h->capacity * 2;
    if (cap > h->records_max) cap = h->records_max;
    history_record_t *r = realloc(h->records, (size_t)cap * sizeof(*r));
    if (r == NULL) return IO_ENOMEM;
    h->records = r;
    h->capacity = cap;
    assert(h->capacity > h->count);
    return 0;
}

int history_append(history_t *h, const history_record_t *r) {
    if (h == NULL || r == NULL) return IO_EINVAL;
    if (r->kind >= HISTORY_KIND_COUNT || r->op >= HISTORY_OP_COUNT) return IO_EINVAL;
    if (r->queue != HISTORY_QUEUE_NONE && r->queue >= h->queues_count) return IO_EINVAL;
    if (r->op == HISTORY_OP_REPLICA &&
        (r->node == HISTORY_NODE_NONE || r->detail < 0 || r->detail >= HISTORY_ROLE_COUNT))
        return IO_EINVAL; /* a sample names its broker and a known role */
    if (h->count > 0 && r->time_ns < h->records[h->count - 1].time_ns) return IO_EINVAL;
    if (h->count == h->capacity && history__grow(h) != 0) {
        h->dropped++;
        return IO_ENOMEM;
    }
    assert(h->count < h->capacity);
    h->records[h->count++] = *r;
    return 0;
}

uint64_t history_count(const history_t *h) { return h != NULL ? h->count : 0; }
uint64_t history_dropped(const history_t *h) { return h != NULL ? h->dropped : 0; }

const history_record_t *history_get(const history_t *h, uint64_t index) {
    if (h == NULL || index >= h->count) return NULL;
    return &h->records[index];
}

int history_queue_id(history_t *h, const char *name, uint16_t *id) {
    if (h == NULL || name == NULL || id == NULL) return IO_EINVAL;
    size_t len = strlen(name);
    if (len > HISTORY_QUEUE_NAME_MAX) return IO_EINVAL;
    for (uint16_t i = 0; i < h->queues_count; i++) {
        if (strcmp(h->queues[i], name) == 0) {
            *id = i;
            return 0;
        }
    }
    if (h->queues_count >= HISTORY_QUEUES_MAX) return IO_ENOMEM;
    memcpy(h->queues[h->queues_count], name, len + 1);
    *id = h->queues_count++;
    assert(*id < HISTORY_QUEUES_MAX);
    return 0;
}

const char *history_queue_name(const history_t *h, uint16_t id) {
    if (h == NULL || id >= h->queues_count) return NULL;
    return h->queues[id];
}

uint16_t history_queues_count(const history_t *h) {
    return h != NULL ? h->queues_count : 0;
}

static const char *const history__kind_names[HISTORY_KIND_COUNT] = {
    "invoke", "ok", "fail", "info"};
static const char *const history__op_names[HISTORY_OP_COUNT] = {
    "publish", "deliver", "process", "ack", "nack",
    "consume", "declare", "crash", "skip", "replica"};
static const char *const history__role_names[HISTORY_ROLE_COUNT] = {
    "down", "paused", "recovering", "failed", "follower", "candidate", "leader", "corrupt"};

const char *history_kind_name(unsigned kind) {
    return kind < HISTORY_KIND_COUNT ? history__kind_names[kind] : "?";
}

const char *history_op_name(unsigned op) {
    return op < HISTORY_OP_COUNT ? history__op_names[op] : "?";
}

const char *history_role_name(unsigned role) {
    return role < HISTORY_ROLE_COUNT ? history__role_names[role] : "?";
}

int history_format(const history_t *h, const history_record_t *r, char *buf,
                   size_t cap) {
    assert(r != NULL);
    assert(buf != NULL || cap == 0);
    if (r->op == HISTORY_OP_REPLICA)
        return snprintf(buf, cap, "%" PRIu64 " replica n%" PRIu32 " %s term=%" PRIu64
                        " commit=%" PRIu64, r->time_ns, r->node,
                        history_role_name((unsigned)r->detail), r->sequence, r->value);
    const char *q = history_queue_name(h, r->queue);
    return snprintf(buf, cap,
                    "%" PRIu64 " c%" PRIu32 " p%" PRIu32 " %s %s q=%s id=%#" PRIx64
                    " prod=%" PRIu64 " seq=%" PRIu64 " node=%d v=%" PRIu64
                    " n=%" PRIu32 " flags=%u detail=%" PRId32,
                    r->time_ns, r->client, r->process, history_kind_name(r->kind),
                    history_op_name(r->op), q != NULL ? q : "-", r->message_id,
                    r->producer_id, r->sequence,
                    r->node == HISTORY_NODE_NONE ? -1 : (int)r->node, r->value,
                    r->delivery_count, (unsigned)r->flags, r->detail);
}
