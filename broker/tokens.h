/*
 * broker/tokens.h — how the node splits the io.h token space.
 *
 * One node issues timers and disk operations from several modules, and the
 * world hands each completion back with nothing but its 64-bit token. The top
 * 8 bits name the owning module; the low 56 bits are the module's own.
 */
#ifndef CHAOSLAB_BROKER_TOKENS_H
#define CHAOSLAB_BROKER_TOKENS_H

#include <stdint.h>

enum broker_token_owner {
    BROKER_TOKEN_LOG = 1,      /* broker/log.c: segment reads/writes/fsyncs */
    BROKER_TOKEN_META = 2,     /* broker/meta.c: durable term + vote */
    BROKER_TOKEN_SNAPSHOT = 3, /* snapshot files */
    BROKER_TOKEN_RAFT = 4,     /* raft timers (election, heartbeat) */
    BROKER_TOKEN_NODE = 5,     /* node timers (sessions, redelivery, fsync interval) */
};

#define BROKER_TOKEN_OWNER_SHIFT 56
#define BROKER_TOKEN_LOCAL_MASK ((UINT64_C(1) << BROKER_TOKEN_OWNER_SHIFT) - 1)

static inline uint64_t broker_token_make(enum broker_token_owner owner,
                                         uint64_t local) {
    return ((uint64_t)owner << BROKER_TOKEN_OWNER_SHIFT) |
           (local & BROKER_TOKEN_LOCAL_MASK);
}
static inline unsigned broker_token_owner(uint64_t token) {
    return (unsigned)(token >> BROKER_TOKEN_OWNER_SHIFT);
}
static inline uint64_t broker_token_local(uint64_t token) {
    return token & BROKER_TOKEN_LOCAL_MASK;
}

#endif
