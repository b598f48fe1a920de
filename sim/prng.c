/* sim/prng.c — xoshiro256** (Blackman & Vigna) seeded with splitmix64. */
#include "sim/prng.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>

uint64_t sim_splitmix64(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

void sim_prng_init(sim_prng_t *p, uint64_t seed, uint64_t stream) {
    assert(p != NULL);
    /* Mix the stream id through splitmix first so that nearby stream ids
     * (host 1, host 2) land on unrelated seeds. */
    uint64_t mix = stream;
    uint64_t state = seed ^ sim_splitmix64(&mix);
    for (int i = 0; i < 4; i++) p->s[i] = sim_splitmix64(&state);
    /* xoshiro must not start from the all-zero state. */
    if ((p->s[0] | p->s[1] | p->s[2] | p->s[3]) == 0) p->s[0] = 1;
}

uint64_t sim_prng_next(sim_prng_t *p) {
    const uint64_t result = rotl(p->s[1] * 5, 7) * 9;
    const uint64_t t = p->s[1] << 17;
    p->s[2] ^= p->s[0];
    p->s[3] ^= p->s[1];
    p->s[1] ^= p->s[2];
    p->s[0] ^= p->s[3];
    p->s[2] ^= t;
    p->s[3] = rotl(p->s[3], 45);
    return result;
}

uint64_t sim_prng_below(sim_prng_t *p, uint64_t bound) {
    assert(bound > 0);
    /* Rejection sampling on the top of the range: unbiased and bounded in
     * expectation (fewer than 2 draws on average). */
    const uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
    for (;;) {
        uint64_t x = sim_prng_next(p);
        if (x < limit) return x % bound;
    }
}

double sim_prng_unit(sim_prng_t *p) {
    return (double)(sim_prng_next(p) >> 11) * 0x1.0p-53;
}

int sim_prng_chance(sim_prng_t *p, double probability) {
    const double u = sim_prng_unit(p);
    if (!(probability > 0.0)) return 0; /* also rejects NaN */
    if (probability >= 1.0) return 1;
    return u < probability;
}

uint64_t sim_prng_exponential_ns(sim_prng_t *p, uint64_t mean_ns) {
    /* 1 - u is in (0, 1], so log() is finite. */
    const double u = 1.0 - sim_prng_unit(p);
    const double x = -log(u) * (double)mean_ns;
    const double cap = (double)mean_ns * 64.0; /* bound the tail */
    return (uint64_t)(x < cap ? x : cap);
}

uint64_t sim_dist_sample_ns(const sim_dist_t *d, sim_prng_t *p) {
    assert(d != NULL);
    switch (d->kind) {
    case SIM_DIST_CONST:
        (void)sim_prng_next(p);
        return d->base_ns;
    case SIM_DIST_UNIFORM:
        if (d->spread_ns == 0) {
            (void)sim_prng_next(p);
            return d->base_ns;
        }
        return d->base_ns + sim_prng_below(p, d->spread_ns + 1);
    case SIM_DIST_EXPONENTIAL:
        return d->base_ns + sim_prng_exponential_ns(p, d->spread_ns);
    }
    assert(0 && "unknown distribution kind");
    return d->base_ns;
}

int sim_dist_check(const sim_dist_t *d) {
    if (d == NULL) return -1;
    if (d->kind != SIM_DIST_CONST && d->kind != SIM_DIST_UNIFORM &&
        d->kind != SIM_DIST_EXPONENTIAL)
        return -1;
    /* Leave head-room: exponential tails reach 64x the mean. */
    const uint64_t limit = UINT64_C(1) << 56;
    if (d->base_ns > limit || d->spread_ns > (limit >> 6)) return -1;
    return 0;
}
