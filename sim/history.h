/*
 * sim/history.h — the operation history of a run (Jepsen style).
 *
 * Every client operation is recorded as it happens: a publish is `invoke`d
 * when first sent and completes `ok` (CONFIRM), `fail` (a definite
 * NACK_PUBLISH) or `info` (unknown outcome: timed out after every retry).
 * Consumers record what the broker handed them (op=deliver), what they
 * handled (op=process: what no_loss and no_duplicates count), and their
 * acks. The checkers (sim/check.h) are pure functions over this record list.
 *
 * Records are appended in virtual-time order (time never goes back: the
 * append is refused otherwise), so record order is time order and the
 * history is deterministic: same seed, same records. Storage grows by
 * doubling up to the `records_max` the caller chose (at most
 * HISTORY_RECORDS_MAX); records beyond it are counted as dropped, never a
 * crash, and a checker seeing dropped > 0 knows the history is partial.
 *
 * Ownership: the caller owns the history_t (history_new / history_free).
 * Record pointers from history_get stay valid until the next append.
 */
#ifndef CHAOSLAB_SIM_HISTORY_H
#define CHAOSLAB_SIM_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HISTORY_RECORDS_MAX (4u * 1024u * 1024u) /* records per history */
#define HISTORY_QUEUES_MAX 64u                   /* distinct queue names */
#define HISTORY_QUEUE_NAME_MAX 255u              /* bytes, excluding NUL */
#define HISTORY_QUEUE_NONE UINT16_MAX            /* record about no queue */
#define HISTORY_NODE_NONE UINT32_MAX             /* record about no broker */

typedef enum history_kind {
    HISTORY_INVOKE = 0, /* operation started */
    HISTORY_OK = 1,     /* definitely happened */
    HISTORY_FAIL = 2,   /* definitely did not happen */
    HISTORY_INFO = 3,   /* outcome unknown (or an event with no outcome) */
    HISTORY_KIND_COUNT = 4,
} history_kind_t;

typedef enum history_op {
    HISTORY_OP_PUBLISH = 0, /* producer: one logical message */
    HISTORY_OP_DELIVER = 1, /* consumer: the broker delivered it (ok) */
    HISTORY_OP_PROCESS = 2, /* consumer: handled it (the side effect) */
    HISTORY_OP_ACK = 3,     /* consumer: ACK sent (ok) */
    HISTORY_OP_NACK = 4,    /* consumer: NACK/REJECT sent */
    HISTORY_OP_CONSUME = 5, /* consumer: subscription (invoke/ok/fail) */
    HISTORY_OP_DECLARE = 6, /* setup: DECLARE_QUEUE (invoke/ok/fail) */
    HISTORY_OP_CRASH = 7,   /* consumer dropped its session (info) */
    HISTORY_OP_SKIP = 8,    /* idempotent consumer: seen before, not processed */
    HISTORY_OP_REPLICA = 9, /* the engine's sample of one broker's state (info):
                               node = broker, detail = history_role_t,
                               value = commit index, sequence = term. One sample
                               is the run of such records at one time. */
    HISTORY_OP_COUNT = 10,
} history_op_t;

/* A broker's role in a HISTORY_OP_REPLICA sample (record detail). Only
 * LEADER counts as "a leader exists"; DOWN, PAUSED and FAILED brokers are
 * not live (a failed one stopped itself on a disk error). FAILED and CORRUPT
 * are damaged storage: with a majority damaged no leader can be elected
 * safely, which is beyond what any strategy can recover from. */
typedef enum history_role {
    HISTORY_ROLE_DOWN = 0,       /* host crashed / not started */
    HISTORY_ROLE_PAUSED = 1,     /* host paused (a frozen leader leads nothing) */
    HISTORY_ROLE_RECOVERING = 2, /* up, still replaying its disk */
    HISTORY_ROLE_FAILED = 3,     /* up, stopped by a disk error */
    HISTORY_ROLE_FOLLOWER = 4,
    HISTORY_ROLE_CANDIDATE = 5,
    HISTORY_ROLE_LEADER = 6,
    HISTORY_ROLE_CORRUPT = 7,    /* up, its log is corrupt: refuses to vote until a
                                    leader repairs it */
    HISTORY_ROLE_COUNT = 8,
} history_role_t;

/* HISTORY record flags. */
enum {
    HISTORY_FLAG_REDELIVERED = 1u << 0, /* DELIVER.redelivered */
    HISTORY_FLAG_DUPLICATE = 1u << 1,   /* CONFIRM.duplicate */
    HISTORY_FLAG_NACKED = 1u << 2,      /* publish fail: the broker said NACK */
    HISTORY_FLAG_AT_END = 1u << 3,      /* publish info: still in flight when the
                                           run ended (outcome never learned) */
    HISTORY_FLAG_UNCONFIRMED = 1u << 4, /* publish info: fire-and-forget, sent once
                                           and never waited for (confirms = false) */
    HISTORY_FLAG_UNROUTABLE = 1u << 6,  /* publish ok: confirmed, but no queue took
                                           it (CONFIRM.unroutable) */
    HISTORY_FLAG_DISCARDED = 1u << 5,   /* nack ok: the consumer refused it without
                                           requeue (the broker dead-letters or drops it) */
};

typedef struct history_record {
    uint64_t time_ns;     /* global virtual time */
    uint64_t message_id;  /* end-to-end id, 0 = none */
    uint64_t producer_id; /* from PUBLISH/DELIVER, 0 = none */
    uint64_t sequence;    /* producer sequence of this attempt/delivery */
    uint64_t value;       /* op specific: delivery_tag, attempts, ... */
    uint32_t client;      /* client index (0 = first client host) */
    uint32_t process;     /* Jepsen process: changes when a session is lost */
    uint32_t node;        /* broker the op went to, HISTORY_NODE_NONE */
    uint32_t delivery_count; /* DELIVER.delivery_count */
    int32_t detail;       /* wire_status_t / IO_E* / 0 */
    uint16_t queue;       /* history_queue_id, HISTORY_QUEUE_NONE */
    uint8_t kind;         /* history_kind_t */
    uint8_t op;           /* history_op_t */
    uint8_t flags;        /* HISTORY_FLAG_* */
} history_record_t;

typedef struct history history_t;

/* Create an empty history holding at most `records_max` records (0 means
 * HISTORY_RECORDS_MAX; more than that is IO_EINVAL). Returns 0 and *out
 * (owned by the caller, free with history_free), or IO_ENOMEM. */
int history_new(uint64_t records_max, history_t **out);
/* NULL is fine. */
void history_free(history_t *h);

/* Copy `r` to the end. Returns 0; IO_EINVAL if the record is malformed
 * (unknown kind/op, unknown queue id) or its time is before the previous
 * record's; IO_ENOMEM when the history is full or growing failed (the
 * record is counted in history_dropped). */
int history_append(history_t *h, const history_record_t *r);

uint64_t history_count(const history_t *h);
uint64_t history_dropped(const history_t *h);
/* Record `index` (< history_count) or NULL. Valid until the next append. */
const history_record_t *history_get(const history_t *h, uint64_t index);

/* Intern a queue name: the same name always gets the same id, ids are given
 * in first-seen order (deterministic). Returns 0 and *id, or IO_EINVAL
 * (NULL/too long), IO_ENOMEM (HISTORY_QUEUES_MAX names already). */
int history_queue_id(history_t *h, const char *name, uint16_t *id);
/* The name of queue `id`, or NULL. */
const char *history_queue_name(const history_t *h, uint16_t id);
uint16_t history_queues_count(const history_t *h);

/* Static names ("invoke", "publish"), "?" for unknown values. */
const char *history_kind_name(unsigned kind);
const char *history_op_name(unsigned op);
const char *history_role_name(unsigned role);

/* One readable line for `r` (no newline) into buf. Returns what snprintf
 * returns. */
int history_format(const history_t *h, const history_record_t *r, char *buf,
                   size_t cap);

#endif
