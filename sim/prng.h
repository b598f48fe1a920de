/*
 * sim/prng.h — deterministic pseudo-random streams (xoshiro256** seeded with
 * splitmix64).
 *
 * One 64-bit run seed drives a simulation. Every component (each host, the
 * network, each disk, each client, the fault generator, Lua) owns its own
 * stream derived from (seed, stream id), so an extra draw in one component
 * never shifts the draws of another. Never use libc rand() in the sim path.
 */
#ifndef CHAOSLAB_SIM_PRNG_H
#define CHAOSLAB_SIM_PRNG_H

#include <stdint.h>

typedef struct sim_prng {
    uint64_t s[4];
} sim_prng_t;

/* Well-known stream ids; hosts and clients add their index to the base. */
enum {
    SIM_STREAM_KERNEL = 1,
    SIM_STREAM_NET = 2,
    SIM_STREAM_FAULTS = 3,
    SIM_STREAM_LUA = 4,
    SIM_STREAM_WORKLOAD = 5,
    SIM_STREAM_HOST_BASE = 0x1000,      /* + host index: the node's io stream */
    SIM_STREAM_DISK_BASE = 0x2000,      /* + host index */
    SIM_STREAM_CLIENT_BASE = 0x10000,   /* + client index */
};

/* splitmix64 step: advances *state and returns the next output. */
uint64_t sim_splitmix64(uint64_t *state);

/* Seed `p` for stream `stream` of run `seed`. Distinct streams of one seed
 * are statistically independent. Never fails. */
void sim_prng_init(sim_prng_t *p, uint64_t seed, uint64_t stream);

/* Next 64 random bits. */
uint64_t sim_prng_next(sim_prng_t *p);

/* Uniform integer in [0, bound); bound must be > 0 (asserted). Unbiased. */
uint64_t sim_prng_below(sim_prng_t *p, uint64_t bound);

/* Uniform double in [0, 1) with 53 bits of precision. */
double sim_prng_unit(sim_prng_t *p);

/* 1 with probability `probability` (clamped to [0, 1]), else 0. Draws exactly
 * one value whatever the probability, so enabling a fault never shifts the
 * stream. */
int sim_prng_chance(sim_prng_t *p, double probability);

/* Exponentially distributed value with the given mean (rounded down). */
uint64_t sim_prng_exponential_ns(sim_prng_t *p, uint64_t mean_ns);

/* A latency distribution: base + a random part. */
typedef enum sim_dist_kind {
    SIM_DIST_CONST = 0,       /* base_ns exactly */
    SIM_DIST_UNIFORM = 1,     /* base_ns + uniform [0, spread_ns] */
    SIM_DIST_EXPONENTIAL = 2, /* base_ns + exponential with mean spread_ns */
} sim_dist_kind_t;

typedef struct sim_dist {
    sim_dist_kind_t kind;
    uint64_t base_ns;
    uint64_t spread_ns;
} sim_dist_t;

/* Draw one sample of `d`. Always draws exactly one PRNG value (even for
 * SIM_DIST_CONST) so that changing a distribution never shifts the stream. */
uint64_t sim_dist_sample_ns(const sim_dist_t *d, sim_prng_t *p);

/* 0 if `d` is well formed (known kind, no overflow), else -1. */
int sim_dist_check(const sim_dist_t *d);

#endif
