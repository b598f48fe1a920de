/*
 * broker/sm.h — the replicated queue state machine.
 *
 * Every replica applies the same committed Raft entries, in the same order, to
 * its own broker_sm_t; the payload of each entry is one encoded command
 * (broker_sm_cmd_encode). The machine is pure: no I/O, no clock, no random,
 * no pointer or hash order. Two machines that applied the same commands have
 * the same broker_sm_digest(), and a snapshot round trip keeps the digest.
 *
 * State: exchanges (direct, fanout, topic; the default exchange "" is
 * implicit and routes to the queue named by the routing key), bindings
 * (exchange -> queue and exchange -> exchange),
 * queues of messages (see broker/queue.h), a producer dedup table and a few
 * counters. Tables are sorted arrays (by name), so iteration is in name order.
 *
 * Failure model: a malformed or invalid command is applied as a no-op that
 * returns a negative SM_E* code; every replica computes the same code. The
 * only non-deterministic failure is IO_ENOMEM (malloc failed): the state is
 * then unchanged, but that replica has diverged and must stop (the caller
 * treats IO_ENOMEM from apply as fatal).
 */
#ifndef CHAOSLAB_BROKER_SM_H
#define CHAOSLAB_BROKER_SM_H

#include <stddef.h>
#include <stdint.h>

#include "broker/exchange.h"
#include "broker/queue.h"

/* Limits. Everything the SM holds is bounded by one of these. */
#define SM_NAME_MAX 255u                  /* queue/exchange/key bytes */
#define SM_QUEUES_MAX 1024u
#define SM_EXCHANGES_MAX 256u             /* declared, excluding "" */
#define SM_BINDINGS_MAX 4096u
#define SM_XBINDINGS_MAX 1024u            /* exchange -> exchange bindings */
#define SM_PURGE_KEEP_MAX 65536u          /* ids one PURGE_READY keeps */
#define SM_QUEUE_MESSAGES_MAX BROKER_QUEUE_MESSAGES_MAX /* per queue */
#define SM_MESSAGE_BODY_MAX BROKER_QUEUE_BODY_MAX       /* 1 MiB */
#define SM_BODY_BYTES_MAX (256ull * 1024u * 1024u) /* all bodies, all queues */
#define SM_DEDUP_PRODUCERS_MAX 1024u
/* Sequences remembered below the highest, per producer. A producer's
 * in-flight window bounds how many publishes are outstanding, not how far a
 * long-retried one trails the newest, so this is generous; a sequence older
 * than it is applied as new (a possible duplicate, never a silent loss). */
#define SM_DEDUP_WINDOW 1024u
#define SM_DEDUP_WINDOW_WORDS (SM_DEDUP_WINDOW / 64u)
/* Largest encoded command: a PUBLISH with maximal names and body. */
#define SM_CMD_SIZE_MAX (1u + 8u + 8u + 2u * (2u + SM_NAME_MAX) + 1u + 4u + \
                         SM_MESSAGE_BODY_MAX)

/* Errors (negative). IO_ENOMEM / IO_EINVAL from broker/io.h are also used. */
enum {
    SM_EMALFORMED = -100, /* bytes are not a valid command / snapshot */
    SM_ENOTFOUND = -101,  /* queue, exchange or message does not exist */
    SM_ELIMIT = -102,     /* a *_MAX table limit is reached */
    SM_EMISMATCH = -103,  /* redeclare with different arguments */
    SM_EINVALID = -104,   /* well-formed but not allowed (bind to "", ...) */
    SM_EEXISTS = -105,    /* (sessions) consumer tag / session id in use */
    SM_ENOSPACE = -106,   /* caller's output buffer too small */
    SM_ELOCKED = -107,    /* exclusive queue of another owner (AMQP 405) */
    SM_EINUSE = -108,     /* (sessions) queue has an exclusive consumer (AMQP 403) */
    SM_EACCESS = -109,    /* publish to an internal exchange (AMQP 403) */
};

/* Outcomes of a command that applied (result.status >= 0). */
enum {
    SM_STATUS_OK = 0,
    SM_STATUS_DUPLICATE = 1,  /* PUBLISH: (producer, sequence) already applied */
    SM_STATUS_UNROUTABLE = 2, /* PUBLISH: no queue took it (still confirmed) */
    SM_STATUS_QUEUE_FULL = 3, /* PUBLISH: a target queue or the SM is full */
};

typedef enum broker_sm_cmd_type {
    SM_CMD_DECLARE_QUEUE = 1,   /* queue, dlq, delivery_limit, max_messages */
    SM_CMD_DELETE_QUEUE = 2,    /* queue */
    SM_CMD_PURGE_QUEUE = 3,     /* queue */
    SM_CMD_DECLARE_EXCHANGE = 4,/* exchange, exchange_type */
    SM_CMD_DELETE_EXCHANGE = 5, /* exchange */
    SM_CMD_BIND = 6,            /* exchange, queue, key */
    SM_CMD_UNBIND = 7,          /* exchange, queue, key */
    SM_CMD_PUBLISH = 8, /* producer_id, sequence, exchange, key, persistent, body */
    SM_CMD_SETTLE = 9,          /* queue, message_id: acked, remove */
    SM_CMD_RETURN = 10,         /* queue, message_id: back to ready, count+1 */
    SM_CMD_REJECT_DISCARD = 11, /* queue, message_id: dead-letter or drop */
    SM_CMD_BIND_EXCHANGE = 12,  /* exchange (source), destination, key */
    SM_CMD_UNBIND_EXCHANGE = 13,/* exchange (source), destination, key */
    /* DECLARE_QUEUE plus queue_props and owner: a redeclare must match the
     * props (SM_EMISMATCH), an exclusive queue its owner (SM_ELOCKED). */
    SM_CMD_DECLARE_QUEUE_EX = 14,
    /* PURGE_QUEUE of ready messages only (AMQP): queue, keep_count, then
     * keep_count message ids (u64, ascending) the leader has out to
     * consumers; those stay. */
    SM_CMD_PURGE_READY = 15,
} broker_sm_cmd_type_t;

/* A borrowed byte string (not NUL-terminated). */
typedef struct broker_sm_str {
    const char *ptr;
    uint32_t len;
} broker_sm_str_t;

/* A decoded command. Strings and body point into the caller's bytes. */
typedef struct broker_sm_cmd {
    uint8_t type; /* broker_sm_cmd_type_t */
    broker_sm_str_t queue, exchange, key, dlq;
    broker_sm_str_t destination; /* BIND/UNBIND_EXCHANGE: the bound exchange */
    uint8_t exchange_type;   /* broker_exchange_type_t, | BROKER_EXCHANGE_INTERNAL_FLAG */
    uint8_t persistent;      /* 0 or 1 */
    uint32_t delivery_limit; /* 0 = unlimited */
    uint32_t max_messages;   /* 0 = SM_QUEUE_MESSAGES_MAX */
    uint8_t queue_props;     /* DECLARE_QUEUE_EX: BROKER_QUEUE_PROP_* */
    uint64_t owner;          /* DECLARE_QUEUE_EX: exclusive owner, 0 = none */
    const uint8_t *keep;     /* PURGE_READY: keep_count little-endian u64 ids */
    uint32_t keep_count;
    uint64_t producer_id;    /* 0 = anonymous (never deduplicated) */
    uint64_t sequence;
    uint64_t message_id;
    const uint8_t *body;
    uint32_t body_len;
} broker_sm_cmd_t;

/* What apply did. */
typedef struct broker_sm_result {
    int status;          /* SM_STATUS_* or the negative error apply returned */
    uint32_t queues;     /* PUBLISH: queues that enqueued the message */
    uint64_t message_id; /* PUBLISH: id given (0 if none); DLQ: new id */
    uint32_t messages;   /* PURGE/DELETE_QUEUE: removed; DECLARE: in queue */
    uint8_t dead_lettered; /* RETURN/REJECT_DISCARD: moved to the DLQ */
    uint8_t dropped;       /* RETURN/REJECT_DISCARD: dropped (no/full DLQ) */
    /* DECLARE_QUEUE: the queue (valid until the next apply), so the leader
     * can answer with what clients see of it (ready count, consumers). */
    const broker_queue_t *queue;
} broker_sm_result_t;

typedef struct broker_sm_config {
    int dedup; /* 1 = (producer_id, sequence) publishes apply at most once */
} broker_sm_config_t;

typedef struct broker_sm_dedup {
    uint64_t producer_id;
    uint64_t highest;    /* highest sequence applied */
    uint64_t window[SM_DEDUP_WINDOW_WORDS]; /* bit k: sequence highest - k applied */
    uint64_t last_index; /* log index of last use: LRU eviction key */
} broker_sm_dedup_t;

/* The machine. Caller-owned; fields are read-only outside sm.c. */
typedef struct broker_sm {
    broker_sm_config_t config;
    uint64_t last_applied;    /* index of the last applied command */
    uint64_t next_message_id; /* starts at 1 */
    uint64_t published_total, duplicates_total;
    uint64_t dead_lettered_total, dropped_total;
    uint64_t body_bytes; /* all queues */
    /* Queues deleted since init or restore: not replicated state (neither
     * digested nor in snapshots), only a cue for the leader to look for
     * consumers whose queue is gone. */
    uint64_t queues_deleted;
    broker_queue_t **queues; /* sorted by name */
    uint32_t queue_count, queue_capacity;
    broker_exchange_t *exchanges; /* sorted by name */
    uint32_t exchange_count, exchange_capacity;
    broker_binding_t *bindings; /* sorted by (exchange, queue, key) */
    uint32_t binding_count, binding_capacity;
    /* Exchange-to-exchange bindings (AMQP exchange.bind): `exchange` is the
     * source, `queue` names the destination exchange; sorted likewise. A
     * message routed by a source is routed again by each matching
     * destination (each exchange at most once per publish: cycles are
     * harmless), and lands in each queue at most once. */
    broker_binding_t *xbindings;
    uint32_t xbinding_count, xbinding_capacity;
    broker_sm_dedup_t *dedup; /* sorted by producer_id */
    uint32_t dedup_count, dedup_capacity;
} broker_sm_t;

/* Borrow a NUL-terminated C string as a broker_sm_str_t. */
broker_sm_str_t broker_sm_str(const char *s);

/* Encoded size of `cmd`, or 0 if it is not valid (see decode rules). */
size_t broker_sm_cmd_size(const broker_sm_cmd_t *cmd);

/* Encode `cmd` into buf[0..cap). Sets *len_out. Returns 0, SM_EMALFORMED
 * (invalid command: oversized name, bad enum, ...) or SM_ENOSPACE. */
int broker_sm_cmd_encode(const broker_sm_cmd_t *cmd, uint8_t *buf, size_t cap,
                         size_t *len_out);

/* Decode bytes into *cmd, whose strings then point into `bytes` (the caller
 * keeps them alive). Rejects with SM_EMALFORMED any truncated input, trailing
 * byte, unknown type or enum, name > SM_NAME_MAX or containing NUL, body >
 * SM_MESSAGE_BODY_MAX. Never reads outside bytes[0..len). */
int broker_sm_cmd_decode(const uint8_t *bytes, size_t len,
                         broker_sm_cmd_t *cmd);

/* Initialise an empty machine. Never fails (allocation is lazy). */
void broker_sm_init(broker_sm_t *sm, const broker_sm_config_t *config);

/* Free everything the machine owns. */
void broker_sm_close(broker_sm_t *sm);

/* Apply the command in bytes[0..len) committed at log `index` (> every index
 * applied before: asserted). Fills *result (may be NULL). Returns 0 when the
 * command applied (see result->status), else a negative error and the state
 * is unchanged except last_applied. Bytes are copied where kept. */
int broker_sm_apply(broker_sm_t *sm, uint64_t index, const uint8_t *bytes,
                    size_t len, broker_sm_result_t *result);

/* Apply an already decoded command (same contract as broker_sm_apply; cmd is
 * validated again). */
int broker_sm_apply_cmd(broker_sm_t *sm, uint64_t index,
                        const broker_sm_cmd_t *cmd, broker_sm_result_t *result);

/* Lookups. The pointers stay valid until the next apply/restore/close. */
const broker_queue_t *broker_sm_queue(const broker_sm_t *sm, const char *name,
                                      size_t name_len);
const broker_exchange_t *broker_sm_exchange(const broker_sm_t *sm,
                                            const char *name, size_t name_len);

/* Whole-object invariant check (SQLite's pager_check idea): tables sorted
 * and within limits, message ids ascending per queue and below
 * next_message_id, byte totals consistent, every binding naming a declared
 * exchange and an existing queue. Returns 1 if all hold, else 0. O(state):
 * for tests, fuzzing and debug builds, not for every apply. */
int broker_sm_check(const broker_sm_t *sm);

/* 64-bit hash of the whole replicated state (config excluded). Equal states
 * give equal digests; used for replica agreement checks. */
uint64_t broker_sm_digest(const broker_sm_t *sm);

/* Bytes needed by broker_sm_snapshot_serialize. */
size_t broker_sm_snapshot_size(const broker_sm_t *sm);

/* Write the snapshot into buf[0..cap). Returns bytes written, or SM_ENOSPACE
 * when cap < broker_sm_snapshot_size(sm). The format is versioned, little
 * endian and ends with a 64-bit checksum. */
int64_t broker_sm_snapshot_serialize(const broker_sm_t *sm, uint8_t *buf,
                                     size_t cap);

/* Replace the state of `sm` (its config stays) with the snapshot in
 * bytes[0..len). Everything is validated (checksum, limits, order, ids, that
 * bindings name existing exchanges and queues); on any error, SM_EMALFORMED
 * (or IO_ENOMEM) is returned and `sm` is unchanged. */
int broker_sm_restore(broker_sm_t *sm, const uint8_t *bytes, size_t len);

#endif /* CHAOSLAB_BROKER_SM_H */
