/*
 * broker/exchange.c — routing-key matching for direct, fanout and topic
 * exchanges. See exchange.h for the topic rules.
 */
#include "broker/exchange.h"

#include <assert.h>
#include <string.h>

typedef struct exchange__word {
    uint16_t off, len;
} exchange__word_t;

int broker_exchange_type_valid(unsigned type) {
    return type == BROKER_EXCHANGE_DIRECT || type == BROKER_EXCHANGE_FANOUT ||
           type == BROKER_EXCHANGE_TOPIC;
}

/* Split `s` on '.'; the empty string has zero words (RabbitMQ's rule).
 * Returns the word count. `len` <= BROKER_EXCHANGE_NAME_MAX, so the count
 * never exceeds BROKER_EXCHANGE_TOPIC_WORDS_MAX. */
static size_t exchange__split(const char *s, size_t len,
                              exchange__word_t *words) {
    assert(len <= BROKER_EXCHANGE_NAME_MAX);
    if (len == 0)
        return 0;
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            assert(n < BROKER_EXCHANGE_TOPIC_WORDS_MAX);
            words[n].off = (uint16_t)start;
            words[n].len = (uint16_t)(i - start);
            n++;
            start = i + 1;
        }
    }
    assert(n >= 1);
    return n;
}

static int exchange__word_is(const char *s, exchange__word_t w, char c) {
    return w.len == 1 && s[w.off] == c;
}

/* '#' states are closed over: being at a '#' also means being past it. */
static void exchange__closure(const char *p, const exchange__word_t *pw,
                              size_t np, uint8_t *states) {
    for (size_t i = 0; i < np; i++) {
        if (states[i] && exchange__word_is(p, pw[i], '#'))
            states[i + 1] = 1;
    }
}

int broker_exchange_topic_match(const char *pattern, size_t pattern_len,
                                const char *key, size_t key_len) {
    if (pattern_len > BROKER_EXCHANGE_NAME_MAX ||
        key_len > BROKER_EXCHANGE_NAME_MAX)
        return 0;
    assert(pattern != NULL || pattern_len == 0);
    assert(key != NULL || key_len == 0);
    exchange__word_t pw[BROKER_EXCHANGE_TOPIC_WORDS_MAX];
    exchange__word_t kw[BROKER_EXCHANGE_TOPIC_WORDS_MAX];
    size_t np = exchange__split(pattern, pattern_len, pw);
    size_t nk = exchange__split(key, key_len, kw);
    /* states[i] = "the first i pattern words matched the key so far": an NFA
     * simulated with a bitset, linear in the key, no backtracking. */
    uint8_t states[BROKER_EXCHANGE_TOPIC_WORDS_MAX + 1];
    uint8_t next[BROKER_EXCHANGE_TOPIC_WORDS_MAX + 1];
    memset(states, 0, sizeof states);
    states[0] = 1;
    exchange__closure(pattern, pw, np, states);
    for (size_t k = 0; k < nk; k++) {
        memset(next, 0, sizeof next);
        int any = 0;
        for (size_t i = 0; i < np; i++) {
            if (!states[i])
                continue;
            if (exchange__word_is(pattern, pw[i], '#')) {
                next[i] = 1; /* '#' swallows this word and stays */
                any = 1;
            } else if (exchange__word_is(pattern, pw[i], '*') ||
                       (pw[i].len == kw[k].len &&
                        memcmp(pattern + pw[i].off, key + kw[k].off,
                               kw[k].len) == 0)) {
                next[i + 1] = 1;
                any = 1;
            }
        }
        if (!any)
            return 0;
        exchange__closure(pattern, pw, np, next);
        memcpy(states, next, sizeof states);
    }
    return states[np] ? 1 : 0;
}

int broker_exchange_matches(unsigned type, const char *binding_key,
                            size_t binding_key_len, const char *routing_key,
                            size_t routing_key_len) {
    assert(binding_key != NULL || binding_key_len == 0);
    assert(routing_key != NULL || routing_key_len == 0);
    switch (type) {
    case BROKER_EXCHANGE_DIRECT:
        return binding_key_len == routing_key_len &&
               (routing_key_len == 0 ||
                memcmp(binding_key, routing_key, routing_key_len) == 0);
    case BROKER_EXCHANGE_FANOUT:
        return 1;
    case BROKER_EXCHANGE_TOPIC:
        return broker_exchange_topic_match(binding_key, binding_key_len,
                                           routing_key, routing_key_len);
    default:
        return 0;
    }
}
