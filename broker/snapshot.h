/*
 * broker/snapshot.h — persisting the state-machine snapshot.
 *
 * io.h has no rename, so there is no atomic "write temp, rename". Instead
 * two slot files, "snap-a" and "snap-b", each hold
 *     u32 magic | u32 header crc | u64 seq | u64 index | u64 term |
 *     u32 length | u32 data crc | data
 * A save overwrites the slot that does NOT hold the newest valid snapshot and
 * fsyncs it; load reads both and keeps the valid one with the highest seq, so
 * a torn save falls back to the previous snapshot.
 *
 * Ownership: the caller owns broker_snapshot_t; the io_t is borrowed. Save
 * copies the data (io.h copies written bytes). Loaded data is owned by the
 * snapshot object until the next load or close. Completions of
 * BROKER_TOKEN_SNAPSHOT tokens go to broker_snapshot_on_disk_done.
 */
#ifndef CHAOSLAB_BROKER_SNAPSHOT_H
#define CHAOSLAB_BROKER_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "broker/io.h"

#define BROKER_SNAPSHOT_HEADER_SIZE 40u
#define BROKER_SNAPSHOT_DATA_MAX (64u * 1024u * 1024u)
#define BROKER_SNAPSHOT_OPS_MAX 4u

enum {
    BROKER_SNAPSHOT_EV_LOADED = 1u << 0, /* see broker_snapshot_loaded */
    BROKER_SNAPSHOT_EV_SAVED = 1u << 1,  /* index/term of the event durable */
    BROKER_SNAPSHOT_EV_ERROR = 1u << 2,
};

typedef struct broker_snapshot_event {
    uint32_t flags;
    int error;
    uint64_t index, term; /* newest durable snapshot (0, 0 = none) */
} broker_snapshot_event_t;

typedef struct broker_snapshot__op {
    uint64_t token;
    uint8_t kind, slot;
} broker_snapshot__op_t;

typedef struct broker_snapshot {
    const io_t *io;
    int state, error;
    uint64_t seq, index, term; /* newest durable */
    uint8_t newest_slot;
    uint8_t *data; /* loaded data (owned) */
    size_t len;
    uint8_t *slot_buf[2];
    size_t slot_cap[2];
    int64_t slot_result[2];
    uint64_t save_index, save_term;
    int saving;
    broker_snapshot__op_t ops[BROKER_SNAPSHOT_OPS_MAX];
    uint32_t ops_head, ops_count;
    uint64_t token_seq;
} broker_snapshot_t;

int broker_snapshot_init(broker_snapshot_t *s, const io_t *io);
void broker_snapshot_close(broker_snapshot_t *s);

/* Read both slots; wait for EV_LOADED. Returns 0, 1 (nothing on disk: loaded
 * synchronously, no event follows), IO_EINVAL (wrong state),
 * IO_ENOMEM or the io error. */
int broker_snapshot_load(broker_snapshot_t *s);

/* After EV_LOADED: the newest valid snapshot (index 0 = none). The data
 * pointer stays owned by `s`. */
void broker_snapshot_loaded(const broker_snapshot_t *s, uint64_t *index,
                            uint64_t *term, const uint8_t **data, size_t *len);

/* Write a snapshot into the older slot and fsync it; EV_SAVED when durable.
 * One save at a time. Returns 0, IO_EINVAL (not loaded, index not newer,
 * len > DATA_MAX), IO_ENOMEM (a save is in flight) or the sticky error. */
int broker_snapshot_write(broker_snapshot_t *s, uint64_t index, uint64_t term,
                          const uint8_t *data, size_t len);

broker_snapshot_event_t broker_snapshot_on_disk_done(broker_snapshot_t *s,
                                                     uint64_t token,
                                                     int64_t result);

/* Codec: encode returns HEADER+len bytes into out, or IO_EINVAL; decode
 * returns 0 and the fields (data points into buf) or -1. */
int64_t broker_snapshot_encode(uint8_t *out, size_t cap, uint64_t seq,
                               uint64_t index, uint64_t term,
                               const uint8_t *data, size_t len);
int broker_snapshot_decode(const uint8_t *buf, size_t len, uint64_t *seq,
                           uint64_t *index, uint64_t *term,
                           const uint8_t **data, size_t *data_len);

#endif
