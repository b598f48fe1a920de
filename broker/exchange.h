/*
 * broker/exchange.h — exchange types and AMQP routing-key matching.
 *
 * Pure functions and plain structs: the replicated state machine (broker/sm.h)
 * owns the exchange and binding tables; this module only says whether a
 * binding key matches a routing key for a given exchange type.
 *
 * Topic matching follows RabbitMQ: keys are split on '.', '*' matches exactly
 * one word, '#' matches zero or more words, and the empty key has zero words
 * (so "#" matches "" but "*" does not). "a..b" has three words, the middle one
 * empty.
 */
#ifndef CHAOSLAB_BROKER_EXCHANGE_H
#define CHAOSLAB_BROKER_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#define BROKER_EXCHANGE_NAME_MAX 255u /* bytes; equals SM_NAME_MAX */
/* A key of at most 255 bytes has at most 128 words (127 dots). */
#define BROKER_EXCHANGE_TOPIC_WORDS_MAX 128u

typedef enum broker_exchange_type {
    BROKER_EXCHANGE_DIRECT = 1, /* binding key == routing key */
    BROKER_EXCHANGE_FANOUT = 2, /* every binding matches */
    BROKER_EXCHANGE_TOPIC = 3,  /* dotted words with '*' and '#' */
} broker_exchange_type_t;

/* A declared exchange (the default exchange "" is implicit, never stored). */
/* In a DECLARE_EXCHANGE command's exchange_type: the exchange is internal
 * (AMQP: reachable only through exchange-to-exchange bindings). */
#define BROKER_EXCHANGE_INTERNAL_FLAG 0x80u

typedef struct broker_exchange {
    uint8_t type; /* broker_exchange_type_t */
    uint8_t internal; /* 1: publishes must come through another exchange */
    uint16_t name_len;
    char name[BROKER_EXCHANGE_NAME_MAX + 1]; /* NUL-terminated copy */
} broker_exchange_t;

/* A binding exchange -> queue with a binding key. */
typedef struct broker_binding {
    uint16_t exchange_len, queue_len, key_len;
    char exchange[BROKER_EXCHANGE_NAME_MAX + 1];
    char queue[BROKER_EXCHANGE_NAME_MAX + 1];
    char key[BROKER_EXCHANGE_NAME_MAX + 1];
} broker_binding_t;

/* 1 if `type` is a known broker_exchange_type_t value, else 0. */
int broker_exchange_type_valid(unsigned type);

/* Topic match of routing key `key` against binding pattern `pattern`.
 * Returns 1 on match, 0 otherwise (also 0 when either string is longer than
 * BROKER_EXCHANGE_NAME_MAX: bad input never matches, never crashes).
 * Runs in O(words(pattern) * words(key)) with no recursion, so patterns full
 * of '#' cannot blow up. */
int broker_exchange_topic_match(const char *pattern, size_t pattern_len,
                                const char *key, size_t key_len);

/* Does a binding with `binding_key` on an exchange of `type` take a message
 * published with `routing_key`? Returns 1 or 0; 0 for an unknown type. */
int broker_exchange_matches(unsigned type, const char *binding_key,
                            size_t binding_key_len, const char *routing_key,
                            size_t routing_key_len);

#endif /* CHAOSLAB_BROKER_EXCHANGE_H */
