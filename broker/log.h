/*
 * broker/log.h — the durable append-only Raft log.
 *
 * The whole unsnapshotted suffix lives in memory (term, type and a payload
 * copy per index), so Raft reads entries from memory; the disk is only for
 * durability. On disk the log is a series of segment files named
 * "log-<20-digit first index>", each a sequence of records:
 *
 *     u32 payload_len | u32 crc32c | u64 term | u64 index | u8 type | payload
 *
 * little-endian; the CRC covers payload_len and every byte after the crc
 * field. A segment is rolled when the next record would push it past the
 * configured size (a single record larger than that gets a segment alone).
 *
 * The log is a state machine driven by disk completions. It issues every disk
 * operation itself, in a FIFO order that carries the durability argument:
 *   - before the first write of a new segment, the previous one is fsynced,
 *     so crash damage (torn or lost unsynced writes) can only ever sit in the
 *     last non-empty segment;
 *   - a truncation (Raft conflict, torn tail) is truncate + fsync, issued
 *     before any later write, so truncated records never come back;
 *   - the device is serial (io.h), so an fsync's completion makes every
 *     earlier write durable: durable_index is advanced only from the fsync
 *     that ends a group commit.
 *
 * Recovery verifies every record (length bound, CRC, index contiguity, term
 * monotonic). A bad LAST record of the LAST segment, or a bad record whose
 * region shows the zero-filled hole of a lost unsynced write, is a torn tail:
 * it is truncated (durably) and appends continue after it. Any other bad
 * record (a bad record followed by valid data, a bad non-last segment, a gap)
 * is corruption: the log keeps only the verified prefix before it, serves
 * nothing past it, leaves the damaged bytes on disk (sealed: appends go to a
 * new segment that supersedes them) and reports BROKER_LOG_CORRUPT until the
 * log again reaches the highest index seen in the damaged region
 * (broker_log_repair_index).
 *
 * Ownership: the caller owns broker_log_t and the io_t (which must outlive
 * the log). Every disk completion whose token has owner BROKER_TOKEN_LOG
 * must be passed to broker_log_on_disk_done.
 */
#ifndef CHAOSLAB_BROKER_LOG_H
#define CHAOSLAB_BROKER_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "broker/io.h"

/* Limits. */
#define BROKER_LOG_RECORD_HEADER_SIZE 25u
#define BROKER_LOG_RECORD_PAYLOAD_MAX (1024u * 1024u + 4096u)
#define BROKER_LOG_RECORD_SIZE_MAX \
    (BROKER_LOG_RECORD_HEADER_SIZE + BROKER_LOG_RECORD_PAYLOAD_MAX)
#define BROKER_LOG_SEGMENT_SIZE_DEFAULT (8u * 1024u * 1024u)
#define BROKER_LOG_SEGMENT_SIZE_MAX (64u * 1024u * 1024u)
/* A segment file larger than this is not a segment we wrote. */
#define BROKER_LOG_SEGMENT_FILE_SIZE_MAX \
    ((uint64_t)BROKER_LOG_SEGMENT_SIZE_MAX + BROKER_LOG_RECORD_SIZE_MAX)
#define BROKER_LOG_SEGMENTS_MAX 512u            /* live segment files */
#define BROKER_LOG_ENTRIES_IN_MEMORY_MAX (1u << 20)
#define BROKER_LOG_MEMORY_BYTES_DEFAULT (256u * 1024u * 1024u)
#define BROKER_LOG_DISK_OPS_MAX 32u     /* outstanding disk operations */
#define BROKER_LOG_OPS_QUEUED_MAX 4096u /* operations waiting to be issued */
#define BROKER_LOG_READ_CHUNK_BYTES (1024u * 1024u)
#define BROKER_LOG_WRITE_BATCH_BYTES_MAX (2u * 1024u * 1024u)
#define BROKER_LOG_SEGMENT_NAME_PREFIX "log-"

typedef struct broker_log_config {
    uint64_t segment_size_max_bytes; /* 0 = default; <= SEGMENT_SIZE_MAX */
    uint64_t memory_bytes_max;       /* payload bytes in memory; 0 = default */
    uint32_t entries_max;            /* entries in memory; 0 = the MAX */
    uint32_t sector_size_bytes;      /* for hole detection; 0 = 512 */
} broker_log_config_t;

/* What a completion (or a synchronous recovery) changed. */
enum {
    BROKER_LOG_EV_RECOVERED = 1u << 0, /* recovery finished (see status) */
    BROKER_LOG_EV_DURABLE = 1u << 1,   /* durable_index advanced */
    BROKER_LOG_EV_ERROR = 1u << 2,     /* a disk op failed: log is failed */
    BROKER_LOG_EV_REPAIRED = 1u << 3,  /* corrupt status cleared */
};

typedef struct broker_log_event {
    uint32_t flags;
    int error; /* IO_E* when BROKER_LOG_EV_ERROR */
    uint64_t durable_index;
} broker_log_event_t;

typedef enum broker_log_status {
    BROKER_LOG_INIT = 0,       /* before recovery */
    BROKER_LOG_RECOVERING = 1, /* reads and cleanup in flight */
    BROKER_LOG_OK = 2,
    BROKER_LOG_CORRUPT = 3, /* verified prefix only; must not vote or lead */
    BROKER_LOG_FAILED = 4,  /* a disk op failed; restart the node */
} broker_log_status_t;

typedef struct broker_log_entry {
    uint64_t term;
    uint8_t *payload; /* owned by the log */
    uint32_t len;
    uint32_t end_offset; /* file offset right after the record */
    uint8_t type;
} broker_log_entry_t;

typedef struct broker_log_segment {
    uint64_t first_index;
    uint64_t size_bytes; /* append offset: end of the last live record */
    uint8_t sealed;      /* never append here again */
    uint8_t dirty;       /* writes queued since its last fsync was queued */
} broker_log_segment_t;

typedef struct broker_log__op broker_log__op_t;
typedef struct broker_log__recovery broker_log__recovery_t;

typedef struct broker_log {
    const io_t *io;
    broker_log_config_t cfg;
    broker_log_status_t status;
    int error;

    uint64_t base_index, base_term; /* snapshot point */
    uint64_t last_index, last_term;
    uint64_t durable_index;
    uint64_t repair_index; /* while CORRUPT: index the log must reach */

    /* Entries base_index+1 .. last_index in a ring. */
    broker_log_entry_t *ring;
    uint32_t ring_cap; /* power of two */
    uint32_t ring_head;
    uint64_t memory_bytes;

    broker_log_segment_t segs[BROKER_LOG_SEGMENTS_MAX];
    uint32_t seg_count;
    uint64_t stale[BROKER_LOG_SEGMENTS_MAX]; /* first indexes to remove */
    uint32_t stale_count;

    /* Operations not yet issued (FIFO) and in flight (ring). */
    broker_log__op_t *queued;
    uint32_t queued_head, queued_count;
    broker_log__op_t *inflight;
    uint32_t inflight_head, inflight_count;
    uint64_t token_seq;
    uint8_t sync_wanted;
    uint32_t sync_inflight; /* group-commit fsyncs issued, not completed */

    broker_log__recovery_t *rec;
} broker_log_t;

/* Fill `cfg` with defaults. */
void broker_log_config_default(broker_log_config_t *cfg);

/* Initialise `log` on `io` (borrowed). `cfg` may be NULL (defaults). Returns
 * 0, IO_EINVAL (bad config) or IO_ENOMEM. No disk operation is issued. */
int broker_log_init(broker_log_t *log, const io_t *io,
                    const broker_log_config_t *cfg);

/* Free every entry and buffer. Pending completions are simply forgotten (the
 * world drops them when the node halts). */
void broker_log_close(broker_log_t *log);

/* Before recovery: the persisted snapshot covers index/term. Recovery starts
 * after it. Returns 0 or IO_EINVAL (after recovery started). */
int broker_log_set_base(broker_log_t *log, uint64_t index, uint64_t term);

/* Start recovery: list the segments and issue the reads. Returns 0 (wait for
 * BROKER_LOG_EV_RECOVERED), 1 (recovered synchronously: nothing on disk),
 * IO_EINVAL (called twice) or IO_ENOMEM (too many segments or no memory). */
int broker_log_recover(broker_log_t *log);

/* Feed a completion of a BROKER_TOKEN_LOG token. Unknown or out-of-order
 * tokens fail the log (EV_ERROR with IO_EINVAL). */
broker_log_event_t broker_log_on_disk_done(broker_log_t *log, uint64_t token,
                                           int64_t result);

/* Append one entry; `payload` is copied. Returns the new index (> 0), or
 * IO_EINVAL (not recovered, term below last_term, len too big), IO_ENOMEM
 * (memory/entry/segment/queue limit: compact or wait) or the sticky IO_E*
 * error of a failed log. The write is issued at once or batched. */
int64_t broker_log_append(broker_log_t *log, uint64_t term, uint8_t type,
                          const uint8_t *payload, size_t len);

/* Ask for everything appended so far to become durable (group commit: one
 * fsync covers every append made before it is issued; while one runs, later
 * requests are merged into the next). Watch EV_DURABLE. Returns 0 or the
 * sticky error. */
int broker_log_sync(broker_log_t *log);

/* Drop entries > index (Raft conflict). Durable-safe: the segment is
 * truncated and fsynced before any later write. index must be >= base.
 * Returns 0, IO_EINVAL or IO_ENOMEM (queue full). */
int broker_log_truncate_after(broker_log_t *log, uint64_t index);

/* After the caller persisted a snapshot covering (upto_index, upto_term):
 * drop entries <= upto_index and remove the segments wholly below it. If the
 * log does not hold upto_index with upto_term, the whole log is discarded and
 * restarts after the snapshot. Returns 0, IO_EINVAL or IO_ENOMEM. */
int broker_log_compact(broker_log_t *log, uint64_t upto_index,
                       uint64_t upto_term);

/* Queries. term_at returns 0 for an index outside [base, last]. entry returns
 * NULL outside (base, last]; the pointer is valid until the next mutation. */
uint64_t broker_log_last_index(const broker_log_t *log);
uint64_t broker_log_last_term(const broker_log_t *log);
uint64_t broker_log_base_index(const broker_log_t *log);
uint64_t broker_log_durable_index(const broker_log_t *log);
uint64_t broker_log_term_at(const broker_log_t *log, uint64_t index);
const broker_log_entry_t *broker_log_entry(const broker_log_t *log,
                                           uint64_t index);
broker_log_status_t broker_log_status(const broker_log_t *log);
/* While CORRUPT: the index the log must reach (through appends from the
 * leader, made durable) before the node may vote again. */
uint64_t broker_log_repair_index(const broker_log_t *log);
/* 1 when no disk operation is queued or in flight. */
int broker_log_idle(const broker_log_t *log);

/* Record codec (exposed for tests and fuzzing). encode writes HEADER+len
 * bytes into out (capacity out_cap) and returns the size or IO_EINVAL.
 * decode returns the record size (> 0) and fills the fields, 0 when `len` is
 * too short for the record it announces, or IO_EINVAL for a bad record. */
int64_t broker_log_record_encode(uint8_t *out, size_t out_cap, uint64_t term,
                                 uint64_t index, uint8_t type,
                                 const uint8_t *payload, size_t len);
int64_t broker_log_record_decode(const uint8_t *buf, size_t len,
                                 uint64_t *term, uint64_t *index,
                                 uint8_t *type, const uint8_t **payload,
                                 uint32_t *payload_len);

/* Segment file name for first index: "log-%020llu". out >= 32 bytes. */
void broker_log_segment_name(char *out, size_t cap, uint64_t first_index);

#endif /* CHAOSLAB_BROKER_LOG_H */
