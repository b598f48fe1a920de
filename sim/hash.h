/*
 * sim/hash.h — the kernel's running trace hash (internal).
 *
 * A small multiply-xorshift mixer over 8-byte words. Each step is a bijection
 * of the state for a fixed word and of the word for a fixed state, so a
 * single changed word anywhere in the trace changes the final value, and the
 * order of words matters. Not cryptographic: it only has to make accidental
 * nondeterminism visible.
 */
#ifndef CHAOSLAB_SIM_HASH_H
#define CHAOSLAB_SIM_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SIM__HASH_SEED UINT64_C(0x6a09e667f3bcc909)

static inline uint64_t sim__hash_word(uint64_t h, uint64_t w) {
    h ^= w * UINT64_C(0x9E3779B97F4A7C15);
    h = (h ^ (h >> 31)) * UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 29;
    return h;
}

/* Fold `len` bytes: whole words first, then the zero-padded tail, then the
 * length (so "ab" and "ab\0" differ). Loads are little-endian on the hosts
 * we build for; the hash is defined per binary anyway. */
static inline uint64_t sim__hash_bytes(uint64_t h, const void *bytes,
                                       size_t len) {
    const uint8_t *p = (const uint8_t *)bytes;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = sim__hash_word(h, w);
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, p + i, len - i);
        h = sim__hash_word(h, w);
    }
    return sim__hash_word(h, (uint64_t)len);
}

static inline uint64_t sim__hash_str(uint64_t h, const char *s) {
    if (s == NULL) return sim__hash_word(h, UINT64_MAX);
    return sim__hash_bytes(h, s, strlen(s));
}

#endif
