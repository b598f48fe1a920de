/*
 * broker/meta.h — the durable Raft term and vote.
 *
 * Raft's safety needs current_term and voted_for on disk BEFORE the node
 * answers a vote request or accepts a leader of a new term. Two alternating
 * slot files ("meta-a", "meta-b") each hold {magic, crc, seq, term, vote};
 * a save overwrites the older slot and fsyncs it, so a torn save leaves the
 * other slot intact, and load picks the valid slot with the highest seq.
 *
 * Ownership: the caller owns broker_meta_t; the io_t is borrowed and must
 * outlive it. Completions of BROKER_TOKEN_META tokens go to
 * broker_meta_on_disk_done.
 */
#ifndef CHAOSLAB_BROKER_META_H
#define CHAOSLAB_BROKER_META_H

#include <stdint.h>

#include "broker/io.h"

#define BROKER_META_VOTE_NONE UINT32_MAX
#define BROKER_META_SLOT_SIZE 32u
#define BROKER_META_OPS_MAX 4u /* outstanding disk operations */

enum {
    BROKER_META_EV_LOADED = 1u << 0, /* load finished: term/vote valid */
    BROKER_META_EV_SAVED = 1u << 1,  /* term/vote of the event are durable */
    BROKER_META_EV_ERROR = 1u << 2,
};

typedef struct broker_meta_event {
    uint32_t flags;
    int error;     /* IO_E* with EV_ERROR */
    uint64_t term; /* durable values after the event */
    uint32_t vote;
} broker_meta_event_t;

typedef struct broker_meta__op {
    uint64_t token;
    uint8_t kind;
    uint8_t slot;
} broker_meta__op_t;

typedef struct broker_meta {
    const io_t *io;
    int state; /* internal */
    int error;
    /* Durable (last loaded or saved) values. */
    uint64_t seq, term;
    uint32_t vote;
    uint8_t newest_slot;
    /* Load. */
    uint8_t slots[2][BROKER_META_SLOT_SIZE];
    int64_t slot_result[2];
    /* Save pipeline: one in flight, the latest request waiting behind it. */
    int saving, pending;
    uint64_t save_term, pending_term;
    uint32_t save_vote, pending_vote;
    broker_meta__op_t ops[BROKER_META_OPS_MAX];
    uint32_t ops_head, ops_count;
    uint64_t token_seq;
} broker_meta_t;

/* Initialise (no I/O). Returns 0 or IO_EINVAL. */
int broker_meta_init(broker_meta_t *m, const io_t *io);
void broker_meta_close(broker_meta_t *m);

/* Issue the reads of both slots; wait for EV_LOADED. Returns 0 or IO_EINVAL
 * (not in the initial state) or the io error. EV_ERROR IO_EIO when both
 * slots exist and neither is valid (the node must not guess its term). */
int broker_meta_load(broker_meta_t *m);

/* Make (term, vote) durable: write the older slot + fsync. While a save is
 * in flight the request waits (a newer request replaces a waiting one).
 * EV_SAVED reports each completed save. Returns 0, IO_EINVAL (not loaded,
 * term below the last requested term) or the sticky error. */
int broker_meta_save(broker_meta_t *m, uint64_t term, uint32_t vote);

broker_meta_event_t broker_meta_on_disk_done(broker_meta_t *m, uint64_t token,
                                             int64_t result);

uint64_t broker_meta_term(const broker_meta_t *m);
uint32_t broker_meta_vote(const broker_meta_t *m);
/* 1 when a save is in flight or waiting. */
int broker_meta_busy(const broker_meta_t *m);

/* Slot codec (tests, fuzzing): encode 32 bytes; decode returns 0 or -1. */
void broker_meta_slot_encode(uint8_t out[BROKER_META_SLOT_SIZE], uint64_t seq,
                             uint64_t term, uint32_t vote);
int broker_meta_slot_decode(const uint8_t *buf, size_t len, uint64_t *seq,
                            uint64_t *term, uint32_t *vote);

#endif
