/*
 * broker/wire.h — the broker's versioned binary wire format.
 *
 * Every message that crosses io_send (peer <-> peer, client <-> node) is one
 * frame:
 *
 *     offset size  field
 *     0      2     magic    WIRE_MAGIC (the bytes "CL")
 *     2      1     version  WIRE_VERSION
 *     3      1     type     wire_type_t
 *     4      4     length   of the body in bytes (<= WIRE_MESSAGE_SIZE_MAX - 12)
 *     8      4     crc32c   over bytes [0, 8) of the header, then the body
 *     12     len   body     the fields of the type, in the order of its struct
 *
 * All integers are little-endian and fixed width (u8, u32, u64). A string or
 * blob is a u32 length followed by that many bytes (no terminator, any byte
 * values). A flag is a u8 that must be 0 or 1. Enums are u8/u16 whose value
 * must be one this version knows. There is no padding and no optional field,
 * so the encoding is canonical: wire_encode(wire_decode(x)) == x byte for byte
 * for every accepted x (the fuzz target checks this).
 *
 * Versioning: WIRE_VERSION changes on any change of layout or of the set of
 * accepted values; a decoder accepts exactly its own version (WIRE_EVERSION
 * otherwise). A cluster runs one version; clients must match it.
 *
 * Checks, in order (the first failure is returned): frame length, magic,
 * version, declared length vs limit and vs the bytes given, type, CRC, then
 * the body fields. Because the CRC covers everything but itself, any single
 * bit flip of a valid frame is rejected.
 *
 * Memory: the codec never allocates. wire_decode() leaves strings and blobs
 * pointing INTO the input buffer (zero copy), so a decoded message is valid
 * only while the input bytes are — for io_handler_t.on_message that is the
 * duration of the call: copy what you keep. The entries of APPEND_ENTRIES are
 * decoded into caller-provided storage (bounded by WIRE_ENTRIES_MAX).
 */
#ifndef CHAOSLAB_BROKER_WIRE_H
#define CHAOSLAB_BROKER_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "broker/io.h"

/* ---- framing constants --------------------------------------------------- */

#define WIRE_MAGIC 0x4C43u /* "CL" as the first two bytes on the wire */
#define WIRE_VERSION 4u
#define WIRE_HEADER_SIZE 12u

/* ---- limits (every one is checked on encode and on decode) ----------------- */

/* One whole frame, header included. The seam cannot carry more. */
#define WIRE_MESSAGE_SIZE_MAX IO_MESSAGE_SIZE_MAX
/* The body of one published/delivered message. */
#define WIRE_BODY_SIZE_MAX (1024u * 1024u)
/* Queue, exchange, routing key and consumer tag names (AMQP short strings). */
#define WIRE_NAME_SIZE_MAX 255u
/* The human-readable detail of REPLY and ERROR. */
#define WIRE_DETAIL_SIZE_MAX 1024u
/* AMQP content properties carried opaquely in PUBLISH / DELIVER. */
#define WIRE_PROPERTIES_SIZE_MAX (64u * 1024u)
/* Entries in one APPEND_ENTRIES. */
#define WIRE_ENTRIES_MAX 1024u
/* One log entry's payload: a whole publish (body + names + ids) must fit. */
#define WIRE_ENTRY_PAYLOAD_SIZE_MAX (WIRE_BODY_SIZE_MAX + 4096u)
/* One INSTALL_SNAPSHOT data chunk. */
#define WIRE_SNAPSHOT_CHUNK_MAX (1024u * 1024u)

/* Bytes one entry adds to APPEND_ENTRIES: term u64, index u64, type u8,
 * payload length u32, then the payload. */
#define WIRE_ENTRY_OVERHEAD_SIZE 21u

/* "No node" in NOT_LEADER.leader_hint. */
#define WIRE_NODE_NONE UINT32_MAX

/* ---- error codes ----------------------------------------------------------- */

/* Negative and stable. They live in their own range (-100 and below) so a
 * node can pass a wire error and an IO_E* error through one int without
 * ambiguity; wire_error_name() names both. */
enum {
    WIRE_OK = 0,
    WIRE_ENOBUFS = -101,    /* encode: `cap` smaller than the frame */
    WIRE_ETOOLARGE = -102,  /* frame would exceed / declares more than WIRE_MESSAGE_SIZE_MAX */
    WIRE_EFIELD = -103,     /* a field value out of range (unknown enum, bad flag bits,
                               non-contiguous entry indexes, NULL bytes with len > 0) */
    WIRE_ETRUNCATED = -104, /* decode: fewer bytes than the frame or a field needs */
    WIRE_EMAGIC = -105,     /* decode: not a chaoslab frame */
    WIRE_EVERSION = -106,   /* decode: another version of the format */
    WIRE_ECRC = -107,       /* decode: checksum mismatch (corruption) */
    WIRE_ETYPE = -108,      /* unknown message type (encode and decode) */
    WIRE_EOVERSIZE = -109,  /* a string/blob longer than its *_MAX (encode and decode) */
    WIRE_ETRAILING = -110,  /* decode: bytes after the frame or after the last field */
    WIRE_EFLAG = -111,      /* a flag field other than 0 or 1 (encode and decode) */
    WIRE_ETOOMANY = -112,   /* more entries than WIRE_ENTRIES_MAX or than the
                               decode storage holds */
};

/* ---- message types --------------------------------------------------------- */

typedef enum wire_type {
    /* peer <-> peer (Raft) */
    WIRE_MSG_REQUEST_VOTE = 1,
    WIRE_MSG_VOTE_RESPONSE = 2,
    WIRE_MSG_APPEND_ENTRIES = 3,
    WIRE_MSG_APPEND_RESPONSE = 4,
    WIRE_MSG_INSTALL_SNAPSHOT = 5,
    WIRE_MSG_SNAPSHOT_RESPONSE = 6,
    WIRE_MSG_TIMEOUT_NOW = 7,
    /* client -> node */
    WIRE_MSG_DECLARE_QUEUE = 16,
    WIRE_MSG_DECLARE_EXCHANGE = 17,
    WIRE_MSG_BIND = 18,
    WIRE_MSG_PUBLISH = 19,
    WIRE_MSG_CONSUME = 20,
    WIRE_MSG_CANCEL = 21, /* node -> client too: the consumer's queue is gone */
    WIRE_MSG_ACK = 22,
    WIRE_MSG_NACK = 23,
    WIRE_MSG_REJECT = 24,
    WIRE_MSG_HEARTBEAT = 25, /* both directions */
    WIRE_MSG_GET = 26,          /* basic.get: one message or REPLY EMPTY */
    WIRE_MSG_PURGE_QUEUE = 27,
    WIRE_MSG_DELETE_QUEUE = 28,
    WIRE_MSG_UNBIND = 29,
    WIRE_MSG_DELETE_EXCHANGE = 30, /* exchange.delete: REPLY */
    WIRE_MSG_EXCHANGE_BIND = 31,   /* wire_bind_t: exchange = source, queue = destination */
    WIRE_MSG_EXCHANGE_UNBIND = 15, /* likewise (32 and up: node -> client) */
    /* node -> client */
    WIRE_MSG_CONFIRM = 32,
    WIRE_MSG_NACK_PUBLISH = 33,
    WIRE_MSG_NOT_LEADER = 34,
    WIRE_MSG_DELIVER = 35,
    WIRE_MSG_REPLY = 36,
    WIRE_MSG_ERROR = 37,
} wire_type_t;

/* Exchange kinds (u8 on the wire). */
typedef enum wire_exchange_kind {
    WIRE_EXCHANGE_DIRECT = 1, /* routing key == binding key */
    WIRE_EXCHANGE_FANOUT = 2, /* every bound queue */
    WIRE_EXCHANGE_TOPIC = 3,  /* AMQP topic patterns (* and #) */
} wire_exchange_kind_t;

/* Consumer acknowledgement modes (u8 on the wire). */
typedef enum wire_ack_mode {
    WIRE_ACK_MANUAL = 1, /* the consumer sends ACK/NACK/REJECT */
    WIRE_ACK_AUTO = 2,   /* a delivery counts as acked when sent */
} wire_ack_mode_t;

/* DECLARE_QUEUE.flags bits; any other bit set is WIRE_EFIELD. */
enum {
    WIRE_QUEUE_EXCLUSIVE = 1u << 0,   /* only the declaring client may consume */
    WIRE_QUEUE_AUTO_DELETE = 1u << 1, /* deleted when its last consumer leaves */
    WIRE_QUEUE_PASSIVE = 1u << 2,     /* only check that it exists (AMQP passive) */
};
#define WIRE_QUEUE_FLAGS_ALL 0x7u

/* Status / reason codes of REPLY, NACK_PUBLISH and ERROR (u16 on the wire);
 * a value >= WIRE_STATUS_COUNT is WIRE_EFIELD. */
typedef enum wire_status {
    WIRE_STATUS_OK = 0,
    WIRE_STATUS_NOT_FOUND = 1,           /* queue/exchange/consumer unknown */
    WIRE_STATUS_PRECONDITION_FAILED = 2, /* redeclare with other properties */
    WIRE_STATUS_INVALID = 3,             /* bad argument (empty name, ...) */
    WIRE_STATUS_RESOURCE_LIMIT = 4,      /* a *_MAX of the node was reached */
    WIRE_STATUS_NOT_LEADER = 5,          /* leadership lost before commit */
    WIRE_STATUS_TIMEOUT = 6,             /* not committed in time: outcome unknown */
    WIRE_STATUS_UNROUTABLE = 7,          /* no queue matched the publish */
    WIRE_STATUS_ACCESS_REFUSED = 8,      /* exclusive queue of another client */
    WIRE_STATUS_INTERNAL = 9,            /* node-side failure (disk error, ...) */
    WIRE_STATUS_PROTOCOL = 10,           /* the client sent a malformed frame */
    WIRE_STATUS_EMPTY = 11,              /* GET: the queue has no ready message */
    WIRE_STATUS_RESOURCE_LOCKED = 12,    /* exclusive queue of another connection */
    WIRE_STATUS_COUNT = 13,
} wire_status_t;

/* A string or blob. On encode `ptr` may be NULL only when len == 0; on decode
 * it points into the input buffer (see the lifetime rule at the top). */
typedef struct wire_bytes {
    const uint8_t *ptr;
    uint32_t len;
} wire_bytes_t;

/* A wire_bytes_t naming a NUL-terminated C string (not copied). */
static inline wire_bytes_t wire_str(const char *s) {
    wire_bytes_t b = {(const uint8_t *)s, s != NULL ? (uint32_t)strlen(s) : 0u};
    return b;
}

/* ---- peer messages (Raft) ---------------------------------------------------- */

typedef struct wire_request_vote {
    uint64_t term;           /* candidate's term (the proposed term if pre_vote) */
    uint32_t candidate_id;   /* node id asking for the vote */
    uint64_t last_log_index; /* index of the candidate's last log entry */
    uint64_t last_log_term;  /* term of that entry */
    uint8_t pre_vote;        /* flag: 1 = pre-vote probe, no term change */
} wire_request_vote_t;

typedef struct wire_vote_response {
    uint64_t term;     /* responder's current term */
    uint32_t voter_id; /* node id of the responder */
    uint8_t granted;   /* flag: 1 = vote (or pre-vote) granted */
    uint8_t pre_vote;  /* flag: answers a pre-vote request */
} wire_vote_response_t;

typedef struct wire_entry {
    uint64_t term;  /* term in which the leader created the entry */
    uint64_t index; /* log position; = prev_log_index + 1 + position in batch */
    uint8_t type;   /* log entry kind; opaque here, interpreted by the log */
    wire_bytes_t payload; /* <= WIRE_ENTRY_PAYLOAD_SIZE_MAX */
} wire_entry_t;

typedef struct wire_append_entries {
    uint64_t term;           /* leader's term */
    uint32_t leader_id;      /* so followers can redirect clients */
    uint64_t prev_log_index; /* index of the entry just before `entries` */
    uint64_t prev_log_term;  /* its term (consistency check) */
    uint64_t leader_commit;  /* leader's commit index */
    uint32_t entry_count;    /* 0 = heartbeat; <= WIRE_ENTRIES_MAX */
    /* entry_count entries. Indexes must be contiguous from prev_log_index + 1
     * and terms non-decreasing from prev_log_term and <= term, else
     * WIRE_EFIELD (a Raft log never looks otherwise; checking here means
     * the node never sees such a batch). */
    const wire_entry_t *entries;
} wire_append_entries_t;

typedef struct wire_append_response {
    uint64_t term;           /* follower's current term */
    uint32_t follower_id;    /* node id of the responder */
    uint8_t success;         /* flag: entries matched and were appended */
    uint64_t match_index;    /* on success: last index known to match; on
                                failure: the prev_log_index of the append
                                being rejected, so the leader can tell a
                                stale rejection from the current one */
    uint64_t conflict_index; /* on failure: first index the leader should retry
                                from (fast back-off), 0 = no hint */
    uint64_t conflict_term;  /* on failure: term at conflict_index, 0 = none */
} wire_append_response_t;

typedef struct wire_install_snapshot {
    uint64_t term;                /* leader's term */
    uint32_t leader_id;           /* sender */
    uint64_t last_included_index; /* the snapshot replaces the log up to here */
    uint64_t last_included_term;  /* term of that entry */
    uint64_t offset;              /* byte offset of `data` in the snapshot */
    uint8_t done;                 /* flag: last chunk */
    wire_bytes_t data;            /* chunk, <= WIRE_SNAPSHOT_CHUNK_MAX */
} wire_install_snapshot_t;

typedef struct wire_snapshot_response {
    uint64_t term;                /* follower's current term */
    uint32_t follower_id;         /* responder */
    uint64_t last_included_index; /* echoes the snapshot being answered */
    uint64_t next_offset;         /* next byte offset the follower expects */
    uint8_t success;              /* flag: chunk accepted */
} wire_snapshot_response_t;

typedef struct wire_timeout_now {
    uint64_t term;      /* leader's term */
    uint32_t leader_id; /* the leader handing over leadership */
} wire_timeout_now_t;

/* ---- client -> node ---------------------------------------------------------- */

/* request_id: chosen by the client, echoed in the answer (REPLY, CONFIRM,
 * NACK_PUBLISH, NOT_LEADER, ERROR) so it can match answers to requests. */

typedef struct wire_declare_queue {
    uint64_t request_id;
    wire_bytes_t name;       /* <= WIRE_NAME_SIZE_MAX */
    uint8_t durable;         /* flag: survives a restart of the cluster */
    uint32_t flags;          /* WIRE_QUEUE_* bits */
    uint32_t delivery_limit; /* deliveries before dead-lettering, 0 = unlimited */
    wire_bytes_t dlq;        /* dead-letter queue name, empty = drop; <= NAME max */
} wire_declare_queue_t;

typedef struct wire_declare_exchange {
    uint64_t request_id;
    wire_bytes_t name; /* <= WIRE_NAME_SIZE_MAX; empty is the default exchange */
    uint8_t kind;      /* wire_exchange_kind_t */
    uint8_t durable;   /* flag */
    uint8_t passive;   /* flag: only check that it exists with this kind
                          (REPLY NOT_FOUND / PRECONDITION_FAILED) */
    uint8_t internal;  /* flag: publishes only through exchange bindings */
} wire_declare_exchange_t;

/* exchange.delete: REPLY OK, NOT_FOUND, or PRECONDITION_FAILED when
 * if_unused and the exchange has bindings. */
typedef struct wire_delete_exchange {
    uint64_t request_id;
    wire_bytes_t name; /* <= WIRE_NAME_SIZE_MAX; not empty */
    uint8_t if_unused; /* flag */
} wire_delete_exchange_t;

typedef struct wire_bind {
    uint64_t request_id;
    wire_bytes_t exchange;    /* <= WIRE_NAME_SIZE_MAX */
    wire_bytes_t queue;       /* <= WIRE_NAME_SIZE_MAX */
    wire_bytes_t routing_key; /* binding key/pattern, <= WIRE_NAME_SIZE_MAX */
} wire_bind_t;

typedef struct wire_publish {
    uint64_t request_id;
    uint64_t producer_id;     /* dedup key part 1: the producer's identity */
    uint64_t sequence;        /* dedup key part 2: per-producer sequence */
    uint64_t message_id;      /* end-to-end id the checkers follow */
    wire_bytes_t exchange;    /* empty = default exchange */
    wire_bytes_t routing_key; /* the queue name for the default exchange */
    uint8_t persistent;       /* flag: write to the durable log */
    wire_bytes_t body;        /* <= WIRE_BODY_SIZE_MAX */
    uint8_t mandatory;        /* flag: tell the publisher if no queue took it */
    wire_bytes_t properties;  /* opaque AMQP content properties, <= WIRE_PROPERTIES_SIZE_MAX */
} wire_publish_t;

typedef struct wire_consume {
    uint64_t request_id;
    wire_bytes_t queue;        /* <= WIRE_NAME_SIZE_MAX */
    uint32_t prefetch;         /* unacked deliveries in flight, 0 = unlimited */
    uint8_t ack_mode;          /* wire_ack_mode_t */
    wire_bytes_t consumer_tag; /* client-chosen, <= WIRE_NAME_SIZE_MAX */
    uint8_t exclusive;         /* flag: the queue's only consumer (else
                                  ACCESS_REFUSED) */
} wire_consume_t;

/* Client -> node: basic.cancel (REPLY). Node -> client (request_id 0):
 * the node dropped the consumer because its queue was deleted (AMQP's
 * consumer cancel notification). */
typedef struct wire_cancel {
    uint64_t request_id;
    wire_bytes_t consumer_tag; /* <= WIRE_NAME_SIZE_MAX */
} wire_cancel_t;

/* session_id in ACK/NACK/REJECT: the session epoch the delivery came in
 * (HEARTBEAT / CONSUME reply). Tags restart in every session, so a late ack
 * from an older session must not settle a newer session's delivery; the node
 * ignores an ack whose epoch is not the client's current one (0 = unchecked). */
typedef struct wire_ack {
    uint64_t delivery_tag; /* from DELIVER */
    uint8_t multiple;      /* flag: every tag <= delivery_tag of this session */
    uint64_t session_id;   /* epoch, see above */
} wire_ack_t;

typedef struct wire_nack {
    uint64_t delivery_tag;
    uint8_t multiple; /* flag */
    uint8_t requeue;  /* flag: 1 = deliver again, 0 = dead-letter/drop */
    uint64_t session_id; /* epoch, see wire_ack_t */
} wire_nack_t;

typedef struct wire_reject {
    uint64_t delivery_tag;
    uint8_t requeue; /* flag */
    uint64_t session_id; /* epoch, see wire_ack_t */
} wire_reject_t;

typedef struct wire_heartbeat {
    uint64_t session_id;   /* the client's session, 0 before one exists */
    uint64_t timestamp_ns; /* sender's clock; an answer echoes the request's */
    uint64_t owner;        /* client -> node: the connection this link serves
                              (owner of its exclusive queues), 0 = none */
} wire_heartbeat_t;

/* basic.get: the node answers with one DELIVER whose consumer_tag is empty
 * (message_count set), or REPLY with WIRE_STATUS_EMPTY. */
typedef struct wire_get {
    uint64_t request_id;
    wire_bytes_t queue; /* <= WIRE_NAME_SIZE_MAX */
    uint8_t ack_mode;   /* wire_ack_mode_t */
} wire_get_t;

/* queue.purge: REPLY count = messages removed. */
typedef struct wire_purge_queue {
    uint64_t request_id;
    wire_bytes_t queue; /* <= WIRE_NAME_SIZE_MAX */
} wire_purge_queue_t;

/* queue.delete: REPLY count = messages removed. */
typedef struct wire_delete_queue {
    uint64_t request_id;
    wire_bytes_t queue; /* <= WIRE_NAME_SIZE_MAX */
    uint8_t if_unused;  /* flag: refuse if it has consumers */
    uint8_t if_empty;   /* flag: refuse if it holds messages */
} wire_delete_queue_t;

/* queue.unbind: same fields as BIND. */
typedef wire_bind_t wire_unbind_t;

/* ---- node -> client ---------------------------------------------------------- */

typedef struct wire_confirm {
    uint64_t request_id;  /* of the PUBLISH */
    uint64_t producer_id; /* echoed from the PUBLISH */
    uint64_t sequence;    /* echoed from the PUBLISH */
    uint8_t duplicate;    /* flag: dedup found it already stored */
    uint8_t unroutable;   /* flag: no queue took it (AMQP mandatory -> basic.return) */
} wire_confirm_t;

typedef struct wire_nack_publish {
    uint64_t request_id;  /* of the PUBLISH */
    uint64_t producer_id; /* echoed */
    uint64_t sequence;    /* echoed */
    uint16_t reason;      /* wire_status_t */
} wire_nack_publish_t;

typedef struct wire_not_leader {
    uint64_t request_id;  /* of the refused request */
    uint32_t leader_hint; /* node id of the leader as far as known, or WIRE_NODE_NONE */
} wire_not_leader_t;

typedef struct wire_deliver {
    wire_bytes_t consumer_tag; /* <= WIRE_NAME_SIZE_MAX */
    uint64_t delivery_tag;     /* per-session, increasing; used by ACK/NACK */
    uint64_t message_id;       /* from the PUBLISH */
    uint64_t producer_id;      /* from the PUBLISH (ordering checks) */
    uint64_t sequence;         /* from the PUBLISH */
    uint8_t redelivered;       /* flag: delivered before */
    uint32_t delivery_count;   /* deliveries so far including this one */
    wire_bytes_t exchange;     /* <= WIRE_NAME_SIZE_MAX */
    wire_bytes_t routing_key;  /* <= WIRE_NAME_SIZE_MAX */
    wire_bytes_t body;         /* <= WIRE_BODY_SIZE_MAX */
    wire_bytes_t properties;   /* from the PUBLISH, <= WIRE_PROPERTIES_SIZE_MAX */
    uint32_t message_count;    /* GET answers: messages left ready; else 0 */
} wire_deliver_t;

typedef struct wire_reply {
    uint64_t request_id;  /* of DECLARE_*, BIND, CONSUME or CANCEL */
    uint16_t status;      /* wire_status_t */
    uint64_t count;       /* declare queue: messages ready (not delivered and
                             unacked); purge/delete: removed; consume: the
                             session epoch to send in HEARTBEAT */
    uint32_t consumers;   /* declare queue: consumers attached, else 0 */
    wire_bytes_t detail;  /* e.g. the queue name or an error text,
                             <= WIRE_DETAIL_SIZE_MAX */
} wire_reply_t;

typedef struct wire_error {
    uint64_t request_id; /* the request it answers, 0 = none (frame-level) */
    uint16_t status;     /* wire_status_t */
    wire_bytes_t detail; /* <= WIRE_DETAIL_SIZE_MAX */
} wire_error_t;

/* One message: `type` says which union member is meaningful. */
typedef struct wire_msg {
    uint8_t type; /* wire_type_t */
    union {
        wire_request_vote_t request_vote;
        wire_vote_response_t vote_response;
        wire_append_entries_t append_entries;
        wire_append_response_t append_response;
        wire_install_snapshot_t install_snapshot;
        wire_snapshot_response_t snapshot_response;
        wire_timeout_now_t timeout_now;
        wire_declare_queue_t declare_queue;
        wire_declare_exchange_t declare_exchange;
        wire_bind_t bind;
        wire_publish_t publish;
        wire_consume_t consume;
        wire_cancel_t cancel;
        wire_ack_t ack;
        wire_nack_t nack;
        wire_reject_t reject;
        wire_heartbeat_t heartbeat;
        wire_get_t get;
        wire_purge_queue_t purge_queue;
        wire_delete_queue_t delete_queue;
        wire_delete_exchange_t delete_exchange;
        wire_unbind_t unbind;
        wire_bind_t exchange_bind;   /* EXCHANGE_BIND and EXCHANGE_UNBIND */
        wire_confirm_t confirm;
        wire_nack_publish_t nack_publish;
        wire_not_leader_t not_leader;
        wire_deliver_t deliver;
        wire_reply_t reply;
        wire_error_t error;
    };
} wire_msg_t;

/* ---- API --------------------------------------------------------------------- */

/* Size in bytes of the frame wire_encode() would write for `msg` (header
 * included), or a negative WIRE_E* code if `msg` cannot be encoded
 * (WIRE_ETYPE, WIRE_EFIELD, WIRE_EFLAG, WIRE_EOVERSIZE, WIRE_ETOOMANY,
 * WIRE_ETOOLARGE). Only reads `msg`. */
int wire_encoded_size(const wire_msg_t *msg);

/* Encode `msg` as one frame into `buf` (caller-owned, `cap` bytes). Returns
 * the bytes written (> 0), or a negative WIRE_E* code: those of
 * wire_encoded_size(), or WIRE_ENOBUFS when cap is too small. On error the
 * contents of `buf` are unspecified. `msg` and the bytes it points to are
 * only read. */
int wire_encode(const wire_msg_t *msg, uint8_t *buf, size_t cap);

/* Decode exactly one frame of `len` bytes (any bytes: never crashes, never
 * reads outside [bytes, bytes + len)). Returns 0 and fills `msg`, or a
 * negative WIRE_E* code with `msg` unspecified.
 *   - strings/blobs in `msg` point into `bytes` (valid while `bytes` is);
 *   - APPEND_ENTRIES entries are written to `entries[0..entries_cap)` and
 *     msg->append_entries.entries points there; more than entries_cap or
 *     WIRE_ENTRIES_MAX is WIRE_ETOOMANY. `entries` may be NULL when
 *     entries_cap == 0 (a client never receives APPEND_ENTRIES). */
int wire_decode(const uint8_t *bytes, size_t len, wire_msg_t *msg,
                wire_entry_t *entries, uint32_t entries_cap);

/* For stream transports (TCP): given the first `len` bytes received, the
 * total size of the frame they start, or 0 if fewer than WIRE_HEADER_SIZE
 * bytes are present yet, or WIRE_EMAGIC / WIRE_EVERSION / WIRE_ETOOLARGE
 * when the header is already known to be bad (close the connection). Does
 * not check the CRC: wire_decode() on the whole frame does. */
int wire_frame_size(const uint8_t *bytes, size_t len);

/* Bytes one entry adds to an APPEND_ENTRIES frame, so a leader can fill a
 * batch up to WIRE_MESSAGE_SIZE_MAX. */
static inline size_t wire_entry_encoded_size(const wire_entry_t *entry) {
    return WIRE_ENTRY_OVERHEAD_SIZE + (size_t)entry->payload.len;
}

/* 1 if the two messages have the same type and field values (bytes compared
 * by content, entries one by one), else 0. Both must be valid messages (as
 * wire_decode() produces or wire_encode() accepts). */
int wire_msg_equal(const wire_msg_t *a, const wire_msg_t *b);

/* Static name of a message type ("APPEND_ENTRIES"), "UNKNOWN" otherwise. */
const char *wire_type_name(unsigned type);

/* Static, stable name of an error code ("WIRE_ECRC", "IO_EMSGSIZE", "OK"),
 * "UNKNOWN" for codes neither module defines. */
const char *wire_error_name(int err);

/* Static name of a status code ("NOT_FOUND"), "UNKNOWN" otherwise. */
const char *wire_status_name(unsigned status);

#endif /* CHAOSLAB_BROKER_WIRE_H */
