/*
 * tests/test_broker_sm.c — the replicated queue state machine: command codec,
 * exchanges and routing, dedup, dead-lettering, limits, snapshots, digests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/exchange.h"
#include "broker/io.h"
#include "broker/sm.h"
#include "sim/prng.h"

/* ------------------------------------------------------------------------ */
/* Helpers: build commands, encode them, apply them at increasing indexes. */

typedef struct t_sm {
    broker_sm_t sm;
    uint64_t index;
    uint8_t *buf; /* SM_CMD_SIZE_MAX */
} t_sm_t;

static void t_init(t_sm_t *t, int dedup) {
    broker_sm_config_t cfg = {.dedup = dedup};
    broker_sm_init(&t->sm, &cfg);
    t->index = 0;
    t->buf = malloc(SM_CMD_SIZE_MAX);
    assert_non_null(t->buf);
}

static void t_close(t_sm_t *t) {
    broker_sm_close(&t->sm);
    free(t->buf);
}

static broker_sm_cmd_t c_base(uint8_t type) {
    broker_sm_cmd_t c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.queue = c.exchange = c.key = c.dlq = broker_sm_str("");
    return c;
}

static int t_apply(t_sm_t *t, const broker_sm_cmd_t *c, broker_sm_result_t *r) {
    size_t len = 0;
    assert_int_equal(broker_sm_cmd_encode(c, t->buf, SM_CMD_SIZE_MAX, &len), 0);
    broker_sm_result_t tmp;
    return broker_sm_apply(&t->sm, ++t->index, t->buf, len, r ? r : &tmp);
}

static int t_queue(t_sm_t *t, const char *name, const char *dlq,
                   uint32_t limit, uint32_t max) {
    broker_sm_cmd_t c = c_base(SM_CMD_DECLARE_QUEUE);
    c.queue = broker_sm_str(name);
    c.dlq = broker_sm_str(dlq);
    c.delivery_limit = limit;
    c.max_messages = max;
    return t_apply(t, &c, NULL);
}

static int t_exchange(t_sm_t *t, const char *name, uint8_t type) {
    broker_sm_cmd_t c = c_base(SM_CMD_DECLARE_EXCHANGE);
    c.exchange = broker_sm_str(name);
    c.exchange_type = type;
    return t_apply(t, &c, NULL);
}

static int t_bind(t_sm_t *t, const char *ex, const char *q, const char *key) {
    broker_sm_cmd_t c = c_base(SM_CMD_BIND);
    c.exchange = broker_sm_str(ex);
    c.queue = broker_sm_str(q);
    c.key = broker_sm_str(key);
    return t_apply(t, &c, NULL);
}

static broker_sm_result_t t_publish(t_sm_t *t, const char *ex, const char *rk,
                                    const char *body, uint64_t producer,
                                    uint64_t seq) {
    broker_sm_cmd_t c = c_base(SM_CMD_PUBLISH);
    c.exchange = broker_sm_str(ex);
    c.key = broker_sm_str(rk);
    c.body = (const uint8_t *)body;
    c.body_len = (uint32_t)strlen(body);
    c.producer_id = producer;
    c.sequence = seq;
    c.persistent = 1;
    broker_sm_result_t r;
    int rc = t_apply(t, &c, &r);
    assert_int_equal(rc, r.status < 0 ? r.status : 0);
    return r;
}

static int t_msg(t_sm_t *t, uint8_t type, const char *q, uint64_t id,
                 broker_sm_result_t *r) {
    broker_sm_cmd_t c = c_base(type);
    c.queue = broker_sm_str(q);
    c.message_id = id;
    return t_apply(t, &c, r);
}

static uint32_t t_count(const t_sm_t *t, const char *q) {
    const broker_queue_t *qq = broker_sm_queue(&t->sm, q, strlen(q));
    return qq ? qq->count : UINT32_MAX;
}

/* ------------------------------------------------------------------------ */
/* Codec */

static broker_sm_cmd_t sample_cmd(uint8_t type) {
    static const uint8_t body[] = {1, 2, 0, 4};
    broker_sm_cmd_t c = c_base(type);
    c.queue = broker_sm_str("q1");
    c.exchange = broker_sm_str("ex");
    c.key = broker_sm_str("a.b");
    c.dlq = broker_sm_str("dead");
    c.exchange_type = BROKER_EXCHANGE_TOPIC;
    c.delivery_limit = 3;
    c.max_messages = 10;
    c.producer_id = 7;
    c.sequence = 99;
    c.message_id = 1234;
    c.persistent = 1;
    c.body = body;
    c.body_len = sizeof body;
    return c;
}

static void test_codec_roundtrip(void **state) {
    (void)state;
    uint8_t buf[512];
    for (uint8_t type = SM_CMD_DECLARE_QUEUE; type <= SM_CMD_REJECT_DISCARD;
         type++) {
        broker_sm_cmd_t c = sample_cmd(type), d;
        size_t len = 0;
        assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len), 0);
        assert_int_equal(len, broker_sm_cmd_size(&c));
        assert_int_equal(broker_sm_cmd_decode(buf, len, &d), 0);
        assert_int_equal(d.type, type);
        if (type == SM_CMD_PUBLISH) {
            assert_int_equal(d.producer_id, 7);
            assert_int_equal(d.sequence, 99);
            assert_int_equal(d.body_len, 4);
            assert_memory_equal(d.body, c.body, 4);
            assert_int_equal(d.key.len, 3);
            assert_memory_equal(d.key.ptr, "a.b", 3);
        }
        if (type == SM_CMD_DECLARE_QUEUE) {
            assert_int_equal(d.delivery_limit, 3);
            assert_int_equal(d.max_messages, 10);
            assert_memory_equal(d.dlq.ptr, "dead", 4);
        }
        if (type >= SM_CMD_SETTLE)
            assert_int_equal(d.message_id, 1234);
    }
}

static void test_codec_truncated_every_prefix(void **state) {
    (void)state;
    uint8_t buf[512];
    for (uint8_t type = SM_CMD_DECLARE_QUEUE; type <= SM_CMD_REJECT_DISCARD;
         type++) {
        broker_sm_cmd_t c = sample_cmd(type), d;
        size_t len = 0;
        assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len), 0);
        for (size_t n = 0; n < len; n++)
            assert_int_equal(broker_sm_cmd_decode(buf, n, &d), SM_EMALFORMED);
        buf[len] = 0; /* one trailing byte is rejected too */
        assert_int_equal(broker_sm_cmd_decode(buf, len + 1, &d), SM_EMALFORMED);
        assert_int_equal(broker_sm_cmd_decode(buf, len, &d), 0);
    }
}

static void test_codec_bad_values(void **state) {
    (void)state;
    uint8_t buf[512];
    broker_sm_cmd_t d;
    size_t len = 0;
    /* unknown command types */
    const uint8_t bad_types[] = {0, 12, 200, 255};
    for (size_t i = 0; i < sizeof bad_types; i++) {
        buf[0] = bad_types[i];
        assert_int_equal(broker_sm_cmd_decode(buf, 1, &d), SM_EMALFORMED);
    }
    /* bad exchange type byte */
    broker_sm_cmd_t c = sample_cmd(SM_CMD_DECLARE_EXCHANGE);
    assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len), 0);
    buf[len - 1] = 9;
    assert_int_equal(broker_sm_cmd_decode(buf, len, &d), SM_EMALFORMED);
    c.exchange_type = 0;
    assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len),
                     SM_EMALFORMED);
    /* persistent must be 0 or 1 */
    c = sample_cmd(SM_CMD_PUBLISH);
    c.persistent = 2;
    assert_int_equal(broker_sm_cmd_size(&c), 0);
    /* a name length field of 256 */
    c = sample_cmd(SM_CMD_PURGE_QUEUE);
    assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len), 0);
    buf[1] = 0x00;
    buf[2] = 0x01; /* 256, little endian */
    assert_int_equal(broker_sm_cmd_decode(buf, len, &d), SM_EMALFORMED);
    /* a NUL inside a name */
    c = sample_cmd(SM_CMD_PURGE_QUEUE);
    assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len), 0);
    buf[3] = 0;
    assert_int_equal(broker_sm_cmd_decode(buf, len, &d), SM_EMALFORMED);
    /* a body length above SM_MESSAGE_BODY_MAX */
    c = sample_cmd(SM_CMD_PUBLISH);
    assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len), 0);
    size_t body_len_at = len - 4 - 4;
    uint32_t huge = SM_MESSAGE_BODY_MAX + 1;
    for (int i = 0; i < 4; i++)
        buf[body_len_at + i] = (uint8_t)(huge >> (8 * i));
    assert_int_equal(broker_sm_cmd_decode(buf, len, &d), SM_EMALFORMED);
    /* too small an output buffer */
    c = sample_cmd(SM_CMD_PUBLISH);
    assert_int_equal(broker_sm_cmd_encode(&c, buf, 5, &len), SM_ENOSPACE);
}

static void test_codec_oversized_names(void **state) {
    (void)state;
    char name[SM_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0; /* 256 bytes */
    uint8_t buf[1024];
    size_t len;
    broker_sm_cmd_t c = sample_cmd(SM_CMD_DECLARE_QUEUE);
    c.queue = broker_sm_str(name);
    assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len),
                     SM_EMALFORMED);
    c.queue.len = SM_NAME_MAX; /* exactly the limit is fine */
    assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len), 0);
    /* apply_cmd validates too (a decoded struct could be hand-made) */
    t_sm_t t;
    t_init(&t, 0);
    c.queue.len = SM_NAME_MAX + 1;
    broker_sm_result_t r;
    assert_int_equal(broker_sm_apply_cmd(&t.sm, ++t.index, &c, &r),
                     SM_EMALFORMED);
    assert_int_equal(r.status, SM_EMALFORMED);
    assert_int_equal(t.sm.queue_count, 0);
    t_close(&t);
}

static void test_apply_malformed_is_noop(void **state) {
    (void)state;
    t_sm_t a, b;
    t_init(&a, 1);
    t_init(&b, 1);
    assert_int_equal(t_queue(&a, "q", "", 0, 0), 0);
    assert_int_equal(t_queue(&b, "q", "", 0, 0), 0);
    const uint8_t garbage[] = {8, 1, 2, 3};
    broker_sm_result_t r;
    assert_int_equal(broker_sm_apply(&a.sm, ++a.index, garbage, sizeof garbage, &r),
                     SM_EMALFORMED);
    assert_int_equal(r.status, SM_EMALFORMED);
    assert_int_equal(broker_sm_apply(&b.sm, ++b.index, garbage, sizeof garbage, &r),
                     SM_EMALFORMED);
    assert_int_equal(broker_sm_digest(&a.sm), broker_sm_digest(&b.sm));
    assert_int_equal(t_count(&a, "q"), 0);
    assert_int_equal(a.sm.last_applied, 2);
    t_close(&a);
    t_close(&b);
}

/* ------------------------------------------------------------------------ */
/* Exchanges and routing */

static void test_topic_match_table(void **state) {
    (void)state;
    static const struct {
        const char *pattern, *key;
        int match;
    } cases[] = {
        {"a.b.c", "a.b.c", 1}, {"a.b.c", "a.b", 0},  {"a.*.c", "a.x.c", 1},
        {"a.*.c", "a.c", 0},   {"a.*.c", "a.x.y.c", 0}, {"a.#", "a", 1},
        {"a.#", "a.b.c", 1},   {"a.#", "b.a", 0},    {"#", "", 1},
        {"#", "a.b", 1},       {"*", "", 0},         {"*", "a", 1},
        {"*", "a.b", 0},       {"#.c", "c", 1},      {"#.c", "a.b.c", 1},
        {"#.c", "a.b.c.d", 0}, {"a.#.c", "a.c", 1},  {"a.#.c", "a.x.y.c", 1},
        {"#.#", "", 1},        {"#.#", "a.b.c", 1},  {"*.#", "", 0},
        {"*.#", "a", 1},       {"#.*", "a.b", 1},    {"a..b", "a..b", 1},
        {"a.*.b", "a..b", 1},  {"", "", 1},          {"", "a", 0},
        {"a", "", 0},          {"a.b", "a.bc", 0},   {"#.a.#", "x.a.y", 1},
        {"#.a.#", "x.b.y", 0}, {"*.*.*", "a.b.c", 1}, {"*.*.*", "a.b", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = broker_exchange_topic_match(cases[i].pattern,
                                              strlen(cases[i].pattern),
                                              cases[i].key, strlen(cases[i].key));
        if (got != cases[i].match)
            fail_msg("topic '%s' vs '%s': got %d", cases[i].pattern,
                     cases[i].key, got);
    }
    /* many '#' never blow up, and oversized input never matches */
    char many[255];
    for (size_t i = 0; i < sizeof many; i++)
        many[i] = (i % 2) ? '.' : '#';
    assert_int_equal(broker_exchange_topic_match(many, 255, "a.b.c", 5), 1);
    char big[300];
    memset(big, 'a', sizeof big);
    assert_int_equal(broker_exchange_topic_match("#", 1, big, sizeof big), 0);
    assert_int_equal(broker_exchange_matches(99, "a", 1, "a", 1), 0);
}

static void test_default_exchange(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_queue(&t, "orders", "", 0, 0), 0);
    broker_sm_result_t r = t_publish(&t, "", "orders", "hello", 0, 0);
    assert_int_equal(r.status, SM_STATUS_OK);
    assert_int_equal(r.queues, 1);
    assert_int_equal(r.message_id, 1);
    const broker_queue_t *q = broker_sm_queue(&t.sm, "orders", 6);
    assert_int_equal(q->count, 1);
    const broker_message_t *m = broker_queue_at(q, 0);
    assert_memory_equal(broker_message_body(m), "hello", 5);
    assert_memory_equal(broker_message_routing_key(m), "orders", 6);
    assert_int_equal(m->persistent, 1);
    /* unknown queue via the default exchange: unroutable, still applied */
    r = t_publish(&t, "", "nope", "x", 0, 0);
    assert_int_equal(r.status, SM_STATUS_UNROUTABLE);
    assert_int_equal(r.queues, 0);
    /* the default exchange takes no bindings and cannot be declared */
    assert_int_equal(t_bind(&t, "", "orders", "k"), SM_EINVALID);
    assert_int_equal(t_exchange(&t, "", BROKER_EXCHANGE_DIRECT), SM_EINVALID);
    t_close(&t);
}

static void test_direct_exchange(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_exchange(&t, "d", BROKER_EXCHANGE_DIRECT), 0);
    assert_int_equal(t_queue(&t, "qa", "", 0, 0), 0);
    assert_int_equal(t_queue(&t, "qb", "", 0, 0), 0);
    assert_int_equal(t_bind(&t, "d", "qa", "red"), 0);
    assert_int_equal(t_bind(&t, "d", "qb", "blue"), 0);
    assert_int_equal(t_bind(&t, "d", "qb", "red"), 0);
    assert_int_equal(t_bind(&t, "d", "qb", "red"), 0); /* idempotent */
    assert_int_equal(t.sm.binding_count, 3);
    assert_int_equal(t_publish(&t, "d", "red", "1", 0, 0).queues, 2);
    assert_int_equal(t_publish(&t, "d", "blue", "2", 0, 0).queues, 1);
    assert_int_equal(t_publish(&t, "d", "green", "3", 0, 0).status,
                     SM_STATUS_UNROUTABLE);
    assert_int_equal(t_count(&t, "qa"), 1);
    assert_int_equal(t_count(&t, "qb"), 2);
    /* unbind, then red goes only to qa */
    broker_sm_cmd_t c = c_base(SM_CMD_UNBIND);
    c.exchange = broker_sm_str("d");
    c.queue = broker_sm_str("qb");
    c.key = broker_sm_str("red");
    assert_int_equal(t_apply(&t, &c, NULL), 0);
    assert_int_equal(t_publish(&t, "d", "red", "4", 0, 0).queues, 1);
    /* errors: missing exchange or queue */
    assert_int_equal(t_bind(&t, "nope", "qa", "k"), SM_ENOTFOUND);
    assert_int_equal(t_bind(&t, "d", "nope", "k"), SM_ENOTFOUND);
    assert_int_equal(t_publish(&t, "nope", "red", "x", 0, 0).status,
                     SM_ENOTFOUND);
    /* redeclare with another type is a mismatch */
    assert_int_equal(t_exchange(&t, "d", BROKER_EXCHANGE_DIRECT), 0);
    assert_int_equal(t_exchange(&t, "d", BROKER_EXCHANGE_FANOUT), SM_EMISMATCH);
    t_close(&t);
}

static void test_fanout_and_topic_exchange(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_exchange(&t, "f", BROKER_EXCHANGE_FANOUT), 0);
    assert_int_equal(t_exchange(&t, "t", BROKER_EXCHANGE_TOPIC), 0);
    const char *qs[] = {"q1", "q2", "q3"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(t_queue(&t, qs[i], "", 0, 0), 0);
    assert_int_equal(t_bind(&t, "f", "q1", "ignored"), 0);
    assert_int_equal(t_bind(&t, "f", "q2", ""), 0);
    assert_int_equal(t_bind(&t, "f", "q2", "other"), 0); /* 2 bindings, 1 copy */
    broker_sm_result_t r = t_publish(&t, "f", "anything", "x", 0, 0);
    assert_int_equal(r.queues, 2);
    assert_int_equal(t_count(&t, "q2"), 1);

    assert_int_equal(t_bind(&t, "t", "q1", "stock.*.nyse"), 0);
    assert_int_equal(t_bind(&t, "t", "q2", "stock.#"), 0);
    assert_int_equal(t_bind(&t, "t", "q3", "#"), 0);
    assert_int_equal(t_publish(&t, "t", "stock.ibm.nyse", "a", 0, 0).queues, 3);
    assert_int_equal(t_publish(&t, "t", "stock", "b", 0, 0).queues, 2);
    assert_int_equal(t_publish(&t, "t", "", "c", 0, 0).queues, 1);
    assert_int_equal(t_publish(&t, "t", "stock.ibm.lse", "d", 0, 0).queues, 2);
    assert_int_equal(t_count(&t, "q1"), 2);
    assert_int_equal(t_count(&t, "q3"), 4);
    /* deleting a queue deletes its bindings; deleting an exchange too */
    broker_sm_cmd_t c = c_base(SM_CMD_DELETE_QUEUE);
    c.queue = broker_sm_str("q3");
    broker_sm_result_t dr;
    assert_int_equal(t_apply(&t, &c, &dr), 0);
    assert_int_equal(dr.messages, 4);
    assert_int_equal(t_publish(&t, "t", "x", "e", 0, 0).status,
                     SM_STATUS_UNROUTABLE);
    c = c_base(SM_CMD_DELETE_EXCHANGE);
    c.exchange = broker_sm_str("f");
    assert_int_equal(t_apply(&t, &c, NULL), 0);
    assert_int_equal(t.sm.binding_count, 2);
    assert_int_equal(t_apply(&t, &c, NULL), SM_ENOTFOUND);
    assert_int_equal(t_publish(&t, "f", "x", "e", 0, 0).status, SM_ENOTFOUND);
    t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Dedup */

static void test_dedup_on_enqueues_once(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 1);
    assert_int_equal(t_queue(&t, "q", "", 0, 0), 0);
    broker_sm_result_t r1 = t_publish(&t, "", "q", "m", 42, 1);
    broker_sm_result_t r2 = t_publish(&t, "", "q", "m", 42, 1); /* retry */
    assert_int_equal(r1.status, SM_STATUS_OK);
    assert_int_equal(r2.status, SM_STATUS_DUPLICATE);
    assert_int_equal(t_count(&t, "q"), 1);
    assert_int_equal(t.sm.duplicates_total, 1);
    /* out-of-order sequences inside the window are each applied once */
    assert_int_equal(t_publish(&t, "", "q", "m", 42, 5).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "q", "m", 42, 3).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "q", "m", 42, 3).status,
                     SM_STATUS_DUPLICATE);
    assert_int_equal(t_publish(&t, "", "q", "m", 42, 5).status,
                     SM_STATUS_DUPLICATE);
    /* another producer with the same sequence is not a duplicate */
    assert_int_equal(t_publish(&t, "", "q", "m", 43, 1).status, SM_STATUS_OK);
    /* anonymous producer (0) is never deduplicated */
    assert_int_equal(t_publish(&t, "", "q", "m", 0, 1).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "q", "m", 0, 1).status, SM_STATUS_OK);
    assert_int_equal(t_count(&t, "q"), 6);
    /* a publish rejected as queue-full is not recorded: its retry can land */
    assert_int_equal(t_queue(&t, "small", "", 0, 1), 0);
    assert_int_equal(t_publish(&t, "", "small", "a", 50, 1).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "small", "b", 50, 2).status,
                     SM_STATUS_QUEUE_FULL);
    broker_sm_cmd_t c = c_base(SM_CMD_PURGE_QUEUE);
    c.queue = broker_sm_str("small");
    assert_int_equal(t_apply(&t, &c, NULL), 0);
    assert_int_equal(t_publish(&t, "", "small", "b", 50, 2).status, SM_STATUS_OK);
    t_close(&t);
}


/* The dedup window spans many words: a retry 700 sequences behind the newest
 * is still caught; one beyond the window is applied as new (never reported
 * as stored when it was not). */
static void test_dedup_wide_window_and_beyond(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 1);
    assert_int_equal(t_queue(&t, "q", "", 0, 0), 0);
    assert_int_equal(t_publish(&t, "", "q", "m", 9, 100).status, SM_STATUS_OK);
    /* 101 is "lost" (never applied); the producer moves far ahead. */
    for (uint64_t seq = 102; seq <= 800; seq++)
        assert_int_equal(t_publish(&t, "", "q", "m", 9, seq).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "q", "m", 9, 100).status, SM_STATUS_DUPLICATE);
    assert_int_equal(t_publish(&t, "", "q", "m", 9, 101).status, SM_STATUS_OK); /* late, new */
    assert_int_equal(t_publish(&t, "", "q", "m", 9, 101).status, SM_STATUS_DUPLICATE);
    assert_int_equal(t_publish(&t, "", "q", "m", 9, 3000).status, SM_STATUS_OK);
    /* 100 is now 2900 behind: unknown, so applied as new rather than lost. */
    assert_int_equal(t_publish(&t, "", "q", "m", 9, 100).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "q", "m", 9, 2999).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "q", "m", 9, 2999).status, SM_STATUS_DUPLICATE);
    t_close(&t);
}

static void test_dedup_off_enqueues_twice(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_queue(&t, "q", "", 0, 0), 0);
    assert_int_equal(t_publish(&t, "", "q", "m", 42, 1).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "q", "m", 42, 1).status, SM_STATUS_OK);
    assert_int_equal(t_count(&t, "q"), 2);
    assert_int_equal(t.sm.dedup_count, 0);
    t_close(&t);
}

static void test_dedup_eviction_is_lru(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 1);
    assert_int_equal(t_queue(&t, "q", "", 0, 0), 0);
    for (uint64_t p = 1; p <= SM_DEDUP_PRODUCERS_MAX; p++)
        assert_int_equal(t_publish(&t, "", "q", "m", p, 1).status, SM_STATUS_OK);
    /* producer 1 is touched again (a duplicate), so producer 2 is the LRU */
    assert_int_equal(t_publish(&t, "", "q", "m", 1, 1).status,
                     SM_STATUS_DUPLICATE);
    assert_int_equal(t_publish(&t, "", "q", "m", 5000, 1).status, SM_STATUS_OK);
    assert_int_equal(t.sm.dedup_count, SM_DEDUP_PRODUCERS_MAX);
    assert_int_equal(t_publish(&t, "", "q", "m", 1, 1).status,
                     SM_STATUS_DUPLICATE);
    /* producer 2 was forgotten: its retry is enqueued again */
    assert_int_equal(t_publish(&t, "", "q", "m", 2, 1).status, SM_STATUS_OK);
    t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Settle / return / dead letters */

static void test_return_and_dead_letter(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_queue(&t, "work", "dlq", 3, 0), 0);
    assert_int_equal(t_queue(&t, "dlq", "", 0, 0), 0);
    assert_int_equal(t_queue(&t, "nodlq", "", 2, 0), 0);
    uint64_t id = t_publish(&t, "", "work", "job", 9, 1).message_id;
    broker_sm_result_t r;
    assert_int_equal(t_msg(&t, SM_CMD_RETURN, "work", id, &r), 0);
    assert_int_equal(t_msg(&t, SM_CMD_RETURN, "work", id, &r), 0);
    const broker_queue_t *q = broker_sm_queue(&t.sm, "work", 4);
    assert_int_equal(broker_queue_at(q, 0)->delivery_count, 2);
    assert_int_equal(r.dead_lettered, 0);
    assert_int_equal(t_msg(&t, SM_CMD_RETURN, "work", id, &r), 0); /* 3rd */
    assert_int_equal(r.dead_lettered, 1);
    assert_int_equal(t_count(&t, "work"), 0);
    assert_int_equal(t_count(&t, "dlq"), 1);
    const broker_message_t *m = broker_queue_at(broker_sm_queue(&t.sm, "dlq", 3), 0);
    assert_int_equal(m->message_id, r.message_id);
    assert_true(m->message_id > id);
    assert_int_equal(m->producer_id, 9);
    assert_int_equal(m->delivery_count, 0);
    assert_memory_equal(broker_message_body(m), "job", 3);
    /* reject without requeue dead-letters at once */
    id = t_publish(&t, "", "work", "job2", 0, 0).message_id;
    assert_int_equal(t_msg(&t, SM_CMD_REJECT_DISCARD, "work", id, &r), 0);
    assert_int_equal(r.dead_lettered, 1);
    assert_int_equal(t_count(&t, "dlq"), 2);
    /* without a DLQ the message is dropped and counted */
    id = t_publish(&t, "", "nodlq", "x", 0, 0).message_id;
    assert_int_equal(t_msg(&t, SM_CMD_RETURN, "nodlq", id, &r), 0);
    assert_int_equal(t_msg(&t, SM_CMD_RETURN, "nodlq", id, &r), 0);
    assert_int_equal(r.dropped, 1);
    assert_int_equal(t.sm.dropped_total, 1);
    assert_int_equal(t.sm.dead_lettered_total, 2);
    /* settle removes; settling again or an unknown id is ENOTFOUND */
    id = t_publish(&t, "", "dlq", "y", 0, 0).message_id;
    assert_int_equal(t_msg(&t, SM_CMD_SETTLE, "dlq", id, NULL), 0);
    assert_int_equal(t_msg(&t, SM_CMD_SETTLE, "dlq", id, NULL), SM_ENOTFOUND);
    assert_int_equal(t_msg(&t, SM_CMD_RETURN, "nope", 1, NULL), SM_ENOTFOUND);
    assert_int_equal(t_count(&t, "dlq"), 2);
    /* a queue may not dead-letter into itself */
    assert_int_equal(t_queue(&t, "self", "self", 1, 0), SM_EINVALID);
    assert_int_equal(t_queue(&t, "", "", 0, 0), SM_EINVALID);
    /* redeclare: same args ok, different args mismatch */
    assert_int_equal(t_queue(&t, "work", "dlq", 3, 0), 0);
    assert_int_equal(t_queue(&t, "work", "dlq", 4, 0), SM_EMISMATCH);
    t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Limits */

static void test_limits(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    char name[32];
    for (uint32_t i = 0; i < SM_QUEUES_MAX; i++) {
        snprintf(name, sizeof name, "q%05u", i);
        assert_int_equal(t_queue(&t, name, "", 0, 0), 0);
    }
    assert_int_equal(t_queue(&t, "one-too-many", "", 0, 0), SM_ELIMIT);
    for (uint32_t i = 0; i < SM_EXCHANGES_MAX; i++) {
        snprintf(name, sizeof name, "e%05u", i);
        assert_int_equal(t_exchange(&t, name, BROKER_EXCHANGE_DIRECT), 0);
    }
    assert_int_equal(t_exchange(&t, "x", BROKER_EXCHANGE_DIRECT), SM_ELIMIT);
    for (uint32_t i = 0; i < SM_BINDINGS_MAX; i++) {
        snprintf(name, sizeof name, "k%05u", i);
        assert_int_equal(t_bind(&t, "e00000", "q00000", name), 0);
    }
    assert_int_equal(t_bind(&t, "e00000", "q00000", "more"), SM_ELIMIT);
    /* a full queue pushes back: nothing is enqueued anywhere */
    assert_int_equal(t_exchange(&t, "e00001", BROKER_EXCHANGE_DIRECT), 0);
    broker_sm_cmd_t c = c_base(SM_CMD_DELETE_QUEUE);
    c.queue = broker_sm_str("q00001");
    assert_int_equal(t_apply(&t, &c, NULL), 0);
    assert_int_equal(t_queue(&t, "tiny", "", 0, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(t_publish(&t, "", "tiny", "m", 0, 0).status,
                         SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "tiny", "m", 0, 0).status,
                     SM_STATUS_QUEUE_FULL);
    assert_int_equal(t_count(&t, "tiny"), 2);
    /* max_messages above the limit is malformed */
    uint8_t buf[600];
    size_t len;
    c = c_base(SM_CMD_DECLARE_QUEUE);
    c.queue = broker_sm_str("big");
    c.max_messages = SM_QUEUE_MESSAGES_MAX + 1;
    assert_int_equal(broker_sm_cmd_encode(&c, buf, sizeof buf, &len),
                     SM_EMALFORMED);
    /* the body limit: exactly 1 MiB passes, one byte more cannot be encoded */
    uint8_t *body = calloc(1, SM_MESSAGE_BODY_MAX + 1);
    assert_non_null(body);
    c = c_base(SM_CMD_PUBLISH);
    c.key = broker_sm_str("tiny");
    c.body = body;
    c.body_len = SM_MESSAGE_BODY_MAX + 1;
    assert_int_equal(broker_sm_cmd_size(&c), 0);
    c.body_len = SM_MESSAGE_BODY_MAX;
    broker_sm_cmd_t p = c_base(SM_CMD_PURGE_QUEUE);
    p.queue = broker_sm_str("tiny");
    assert_int_equal(t_apply(&t, &p, NULL), 0);
    broker_sm_result_t r;
    assert_int_equal(t_apply(&t, &c, &r), 0);
    assert_int_equal(r.status, SM_STATUS_OK);
    free(body);
    t_close(&t);
}

static void test_queue_messages_max(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_queue(&t, "q", "", 0, 0), 0);
    for (uint32_t i = 0; i < SM_QUEUE_MESSAGES_MAX; i++)
        assert_int_equal(t_publish(&t, "", "q", "", 0, 0).status, SM_STATUS_OK);
    assert_int_equal(t_publish(&t, "", "q", "", 0, 0).status,
                     SM_STATUS_QUEUE_FULL);
    /* settling from the middle and the ends keeps the order */
    const broker_queue_t *q = broker_sm_queue(&t.sm, "q", 1);
    assert_int_equal(t_msg(&t, SM_CMD_SETTLE, "q", 1, NULL), 0);
    assert_int_equal(t_msg(&t, SM_CMD_SETTLE, "q", 40000, NULL), 0);
    assert_int_equal(t_msg(&t, SM_CMD_SETTLE, "q", 100, NULL), 0);
    assert_int_equal(t_msg(&t, SM_CMD_SETTLE, "q", SM_QUEUE_MESSAGES_MAX, NULL), 0);
    assert_int_equal(q->count, SM_QUEUE_MESSAGES_MAX - 4);
    for (uint32_t i = 1; i < q->count; i++)
        assert_true(broker_queue_at(q, i - 1)->message_id <
                    broker_queue_at(q, i)->message_id);
    assert_int_equal(broker_queue_find(q, 40000), -1);
    assert_int_equal(broker_queue_at(q, (uint32_t)broker_queue_find(q, 40001))->message_id,
                     40001);
    assert_int_equal(t_publish(&t, "", "q", "", 0, 0).status, SM_STATUS_OK);
    t_close(&t);
}

/* ------------------------------------------------------------------------ */
/* Replica agreement and snapshots */

/* A random but valid-ish command stream: mostly well-formed, some invalid. */
static void random_step(t_sm_t *t, sim_prng_t *p) {
    static const char *queues[] = {"a", "b", "c", "dl"};
    static const char *keys[] = {"x", "x.y", "a", "b", "#", "*.y", "c"};
    const char *q = queues[sim_prng_below(p, 4)];
    const char *k = keys[sim_prng_below(p, 7)];
    char body[16];
    snprintf(body, sizeof body, "b%llu", (unsigned long long)sim_prng_below(p, 1000));
    switch (sim_prng_below(p, 10)) {
    case 0: (void)t_queue(t, q, "dl", (uint32_t)sim_prng_below(p, 4), 50); break;
    case 1: (void)t_exchange(t, "tx", BROKER_EXCHANGE_TOPIC); break;
    case 2: (void)t_bind(t, "tx", q, k); break;
    case 3: case 4: case 5:
        (void)t_publish(t, sim_prng_below(p, 2) ? "tx" : "", sim_prng_below(p, 2) ? k : q,
                        body, sim_prng_below(p, 4), sim_prng_below(p, 20));
        break;
    case 6: (void)t_msg(t, SM_CMD_SETTLE, q, sim_prng_below(p, 60), NULL); break;
    case 7: (void)t_msg(t, SM_CMD_RETURN, q, sim_prng_below(p, 60), NULL); break;
    case 8: (void)t_msg(t, SM_CMD_REJECT_DISCARD, q, sim_prng_below(p, 60), NULL); break;
    default: {
        broker_sm_cmd_t c = c_base(sim_prng_below(p, 2) ? SM_CMD_PURGE_QUEUE
                                                       : SM_CMD_DELETE_QUEUE);
        c.queue = broker_sm_str(q);
        if (sim_prng_below(p, 5) == 0)
            (void)t_apply(t, &c, NULL);
        break;
    }
    }
}

static void test_two_replicas_agree(void **state) {
    (void)state;
    t_sm_t a, b, c;
    t_init(&a, 1);
    t_init(&b, 1);
    t_init(&c, 1);
    sim_prng_t pa, pb, pc;
    sim_prng_init(&pa, 77, 1);
    sim_prng_init(&pb, 77, 1);
    sim_prng_init(&pc, 78, 1);
    for (int i = 0; i < 3000; i++) {
        random_step(&a, &pa);
        random_step(&b, &pb);
        random_step(&c, &pc);
        if (i % 100 == 0) {
            assert_int_equal(broker_sm_digest(&a.sm), broker_sm_digest(&b.sm));
            assert_true(broker_sm_check(&a.sm));
            assert_true(broker_sm_check(&c.sm));
        }
    }
    assert_int_equal(broker_sm_digest(&a.sm), broker_sm_digest(&b.sm));
    assert_true(broker_sm_digest(&a.sm) != broker_sm_digest(&c.sm));
    /* the stream exercised the interesting paths */
    assert_true(a.sm.published_total > 100);
    assert_true(a.sm.queue_count > 0);
    assert_true(a.sm.duplicates_total > 0);
    assert_true(a.sm.dead_lettered_total + a.sm.dropped_total > 0);
    assert_true(a.sm.binding_count > 0);
    t_close(&a);
    t_close(&b);
    t_close(&c);
}

static void test_snapshot_roundtrip(void **state) {
    (void)state;
    t_sm_t a;
    t_init(&a, 1);
    sim_prng_t p;
    sim_prng_init(&p, 5, 2);
    for (int i = 0; i < 2000; i++)
        random_step(&a, &p);
    size_t size = broker_sm_snapshot_size(&a.sm);
    uint8_t *snap = malloc(size);
    assert_non_null(snap);
    assert_int_equal(broker_sm_snapshot_serialize(&a.sm, snap, size - 1),
                     SM_ENOSPACE);
    assert_int_equal(broker_sm_snapshot_serialize(&a.sm, snap, size),
                     (int64_t)size);
    t_sm_t b;
    t_init(&b, 1);
    assert_int_equal(broker_sm_restore(&b.sm, snap, size), 0);
    assert_true(broker_sm_check(&b.sm));
    assert_int_equal(broker_sm_digest(&a.sm), broker_sm_digest(&b.sm));
    /* and both keep agreeing after more commands */
    b.index = a.index;
    sim_prng_t p2 = p;
    for (int i = 0; i < 500; i++) {
        random_step(&a, &p);
        random_step(&b, &p2);
    }
    assert_int_equal(broker_sm_digest(&a.sm), broker_sm_digest(&b.sm));
    /* an empty machine round-trips too */
    t_sm_t e, f;
    t_init(&e, 0);
    t_init(&f, 0);
    uint8_t small[256];
    int64_t n = broker_sm_snapshot_serialize(&e.sm, small, sizeof small);
    assert_true(n > 0);
    assert_int_equal(broker_sm_restore(&f.sm, small, (size_t)n), 0);
    assert_int_equal(broker_sm_digest(&e.sm), broker_sm_digest(&f.sm));
    free(snap);
    t_close(&a);
    t_close(&b);
    t_close(&e);
    t_close(&f);
}

/* Recompute the trailing checksum so content checks (not the sum) decide. */
static void fix_checksum(uint8_t *b, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len - 8; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++)
        b[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void test_snapshot_rejects_garbage(void **state) {
    (void)state;
    t_sm_t a;
    t_init(&a, 1);
    assert_int_equal(t_queue(&a, "q", "dlq", 2, 0), 0);
    assert_int_equal(t_exchange(&a, "ex", BROKER_EXCHANGE_TOPIC), 0);
    assert_int_equal(t_bind(&a, "ex", "q", "a.#"), 0);
    (void)t_publish(&a, "ex", "a.b", "payload", 3, 1);
    size_t size = broker_sm_snapshot_size(&a.sm);
    uint8_t *snap = malloc(size);
    assert_int_equal(broker_sm_snapshot_serialize(&a.sm, snap, size),
                     (int64_t)size);
    uint64_t before = broker_sm_digest(&a.sm);
    /* every truncation, every single-byte flip: rejected, state unchanged */
    for (size_t n = 0; n < size; n++)
        assert_int_equal(broker_sm_restore(&a.sm, snap, n), SM_EMALFORMED);
    uint8_t *bad = malloc(size);
    for (size_t i = 0; i < size; i++) {
        memcpy(bad, snap, size);
        bad[i] ^= 0x40;
        assert_int_equal(broker_sm_restore(&a.sm, bad, size), SM_EMALFORMED);
    }
    assert_int_equal(broker_sm_digest(&a.sm), before);
    /* with a valid checksum, content checks still catch bad values */
    size_t rejected = 0;
    for (size_t i = 0; i + 8 < size; i++) {
        memcpy(bad, snap, size);
        bad[i] = 0xff;
        fix_checksum(bad, size);
        t_sm_t x;
        t_init(&x, 1);
        if (broker_sm_restore(&x.sm, bad, size) != 0) {
            rejected++;
        } else {
            assert_true(broker_sm_check(&x.sm));
            /* accepted: it must be canonical, re-serializing to the input */
            assert_int_equal(broker_sm_snapshot_size(&x.sm), size);
            uint8_t *again = malloc(size);
            assert_int_equal(broker_sm_snapshot_serialize(&x.sm, again, size),
                             (int64_t)size);
            assert_memory_equal(again, bad, size);
            free(again);
        }
        t_close(&x);
    }
    /* names, counts, order, ids and enums are checked; plain counters and
     * sequence numbers legitimately take any value */
    assert_true(rejected > size / 4);
    /* random bytes */
    sim_prng_t p;
    sim_prng_init(&p, 9, 9);
    for (int i = 0; i < 200; i++) {
        for (size_t j = 0; j < size; j++)
            bad[j] = (uint8_t)sim_prng_next(&p);
        assert_int_equal(broker_sm_restore(&a.sm, bad, size), SM_EMALFORMED);
    }
    assert_int_equal(broker_sm_digest(&a.sm), before);
    free(bad);
    free(snap);
    t_close(&a);
}

static void test_check_detects_corruption(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_queue(&t, "a", "", 0, 0), 0);
    assert_int_equal(t_queue(&t, "b", "", 0, 0), 0);
    (void)t_publish(&t, "", "a", "xyz", 0, 0);
    (void)t_publish(&t, "", "a", "xyz", 0, 0);
    assert_true(broker_sm_check(&t.sm));
    broker_queue_t *q = t.sm.queues[0];
    broker_message_t *m = broker_queue_at_mut(q, 1);
    m->message_id = 1; /* ids no longer ascending */
    assert_false(broker_sm_check(&t.sm));
    m->message_id = 2;
    t.sm.body_bytes++; /* byte total off */
    assert_false(broker_sm_check(&t.sm));
    t.sm.body_bytes--;
    t.sm.queues[0] = t.sm.queues[1]; /* table order broken */
    t.sm.queues[1] = q;
    assert_false(broker_sm_check(&t.sm));
    t.sm.queues[1] = t.sm.queues[0];
    t.sm.queues[0] = q;
    assert_true(broker_sm_check(&t.sm));
    t_close(&t);
}


static int t_xbind(t_sm_t *t, uint8_t type, const char *src, const char *dst,
                   const char *key) {
    broker_sm_cmd_t c = c_base(type);
    c.exchange = broker_sm_str(src);
    c.destination = broker_sm_str(dst);
    c.key = broker_sm_str(key);
    return t_apply(t, &c, NULL);
}

/* exchange.bind: routing through exchange chains, cycles, delete, snapshot. */
static void test_exchange_to_exchange(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_exchange(&t, "src", BROKER_EXCHANGE_TOPIC), 0);
    assert_int_equal(t_exchange(&t, "mid", BROKER_EXCHANGE_FANOUT), 0);
    assert_int_equal(t_exchange(&t, "dst", BROKER_EXCHANGE_DIRECT), 0);
    assert_int_equal(t_queue(&t, "qa", "", 0, 0), 0);
    assert_int_equal(t_queue(&t, "qb", "", 0, 0), 0);
    assert_int_equal(t_xbind(&t, SM_CMD_BIND_EXCHANGE, "src", "mid", "a.*"), 0);
    assert_int_equal(t_xbind(&t, SM_CMD_BIND_EXCHANGE, "src", "mid", "a.*"), 0); /* idem */
    assert_int_equal(t_xbind(&t, SM_CMD_BIND_EXCHANGE, "mid", "dst", ""), 0);
    assert_int_equal(t_bind(&t, "dst", "qa", "a.x"), 0);
    assert_int_equal(t_bind(&t, "mid", "qb", ""), 0);
    assert_int_equal(t.sm.xbinding_count, 2);
    broker_sm_result_t r = t_publish(&t, "src", "a.x", "m1", 0, 0);
    assert_int_equal(r.status, SM_STATUS_OK);
    assert_int_equal(r.queues, 2);
    assert_int_equal(t_count(&t, "qa"), 1);
    assert_int_equal(t_count(&t, "qb"), 1);
    r = t_publish(&t, "src", "b.x", "m2", 0, 0); /* the topic binding does not match */
    assert_int_equal(r.status, SM_STATUS_UNROUTABLE);
    r = t_publish(&t, "src", "a.y", "m3", 0, 0); /* mid: fanout; dst: a.x only */
    assert_int_equal(r.queues, 1);
    assert_int_equal(t_count(&t, "qb"), 2);
    /* a cycle routes each queue once and terminates */
    assert_int_equal(t_xbind(&t, SM_CMD_BIND_EXCHANGE, "dst", "src", "a.x"), 0);
    r = t_publish(&t, "dst", "a.x", "m4", 0, 0);
    assert_int_equal(r.queues, 2);
    assert_int_equal(t_count(&t, "qa"), 2);
    assert_int_equal(t_count(&t, "qb"), 3);
    assert_true(broker_sm_check(&t.sm));
    /* bad input */
    assert_int_equal(t_xbind(&t, SM_CMD_BIND_EXCHANGE, "src", "nope", ""), SM_ENOTFOUND);
    assert_int_equal(t_xbind(&t, SM_CMD_BIND_EXCHANGE, "", "src", ""), SM_EINVALID);
    assert_int_equal(t_xbind(&t, SM_CMD_UNBIND_EXCHANGE, "nope", "src", ""), SM_ENOTFOUND);
    /* snapshot round trip keeps them */
    size_t size = broker_sm_snapshot_size(&t.sm);
    uint8_t *snap = malloc(size);
    assert_non_null(snap);
    assert_int_equal(broker_sm_snapshot_serialize(&t.sm, snap, size), (int64_t)size);
    t_sm_t b;
    t_init(&b, 0);
    assert_int_equal(broker_sm_restore(&b.sm, snap, size), 0);
    assert_int_equal(b.sm.xbinding_count, 3);
    assert_int_equal(broker_sm_digest(&t.sm), broker_sm_digest(&b.sm));
    free(snap);
    t_close(&b);
    /* deleting an exchange drops its bindings both ways */
    broker_sm_cmd_t c = c_base(SM_CMD_DELETE_EXCHANGE);
    c.exchange = broker_sm_str("mid");
    assert_int_equal(t_apply(&t, &c, NULL), 0);
    assert_int_equal(t.sm.xbinding_count, 1); /* dst -> src stays */
    assert_true(broker_sm_check(&t.sm));
    r = t_publish(&t, "dst", "a.x", "m5", 0, 0);
    assert_int_equal(r.queues, 1);
    assert_int_equal(t_count(&t, "qa"), 3);
    assert_int_equal(t_xbind(&t, SM_CMD_UNBIND_EXCHANGE, "dst", "src", "a.x"), 0);
    assert_int_equal(t_xbind(&t, SM_CMD_UNBIND_EXCHANGE, "dst", "src", "a.x"), 0); /* idem */
    assert_int_equal(t.sm.xbinding_count, 0);
    /* an internal exchange: reachable through a binding, not directly */
    assert_int_equal(t_exchange(&t, "int", BROKER_EXCHANGE_FANOUT | BROKER_EXCHANGE_INTERNAL_FLAG),
                     0);
    assert_int_equal(t_exchange(&t, "int", BROKER_EXCHANGE_FANOUT), SM_EMISMATCH);
    assert_int_equal(t_bind(&t, "int", "qb", ""), 0);
    assert_int_equal(t_xbind(&t, SM_CMD_BIND_EXCHANGE, "src", "int", "#"), 0);
    uint32_t before = t_count(&t, "qb");
    r = t_publish(&t, "src", "z", "via", 0, 0);
    assert_int_equal(t_count(&t, "qb"), before + 1);
    broker_sm_cmd_t pub = c_base(SM_CMD_PUBLISH);
    pub.exchange = broker_sm_str("int");
    pub.key = broker_sm_str("z");
    assert_int_equal(t_apply(&t, &pub, &r), SM_EACCESS);
    assert_int_equal(t_count(&t, "qb"), before + 1);
    assert_true(broker_sm_check(&t.sm));
    t_close(&t);
}


static int t_queue_ex(t_sm_t *t, const char *name, uint8_t props, uint64_t owner) {
    broker_sm_cmd_t c = c_base(SM_CMD_DECLARE_QUEUE_EX);
    c.queue = broker_sm_str(name);
    c.queue_props = props;
    c.owner = owner;
    return t_apply(t, &c, NULL);
}

/* AMQP queue properties: a redeclare must match; exclusive queues have an
 * owner; both survive a snapshot. */
static void test_queue_props_and_owner(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    const uint8_t durable = BROKER_QUEUE_PROP_DURABLE;
    const uint8_t excl = BROKER_QUEUE_PROP_EXCLUSIVE;
    assert_int_equal(t_queue_ex(&t, "d", durable, 7), 0);
    assert_int_equal(t_queue_ex(&t, "d", durable, 9), 0); /* not exclusive: anyone */
    assert_int_equal(t_queue_ex(&t, "d", 0, 7), SM_EMISMATCH);
    assert_int_equal(t_queue_ex(&t, "d", durable | BROKER_QUEUE_PROP_AUTO_DELETE, 7),
                     SM_EMISMATCH);
    assert_int_equal(broker_sm_queue(&t.sm, "d", 1)->owner, 0);
    assert_int_equal(t_queue_ex(&t, "x", excl, 7), 0);
    assert_int_equal(broker_sm_queue(&t.sm, "x", 1)->owner, 7);
    assert_int_equal(t_queue_ex(&t, "x", excl, 7), 0);
    assert_int_equal(t_queue_ex(&t, "x", excl, 8), SM_ELOCKED);
    assert_int_equal(t_queue_ex(&t, "x", 0, 8), SM_ELOCKED); /* locked before mismatch */
    /* the old command still declares (no props, no owner) */
    assert_int_equal(t_queue(&t, "legacy", "", 0, 0), 0);
    assert_int_equal(broker_sm_queue(&t.sm, "legacy", 6)->props, 0);
    /* bad props are malformed */
    broker_sm_cmd_t c = c_base(SM_CMD_DECLARE_QUEUE_EX);
    c.queue = broker_sm_str("bad");
    c.queue_props = 0x80;
    assert_int_equal(broker_sm_cmd_size(&c), 0);
    /* snapshot round trip */
    size_t size = broker_sm_snapshot_size(&t.sm);
    uint8_t *snap = malloc(size);
    assert_non_null(snap);
    assert_int_equal(broker_sm_snapshot_serialize(&t.sm, snap, size), (int64_t)size);
    t_sm_t b;
    t_init(&b, 0);
    assert_int_equal(broker_sm_restore(&b.sm, snap, size), 0);
    assert_int_equal(broker_sm_queue(&b.sm, "x", 1)->owner, 7);
    assert_int_equal(broker_sm_queue(&b.sm, "d", 1)->props, durable);
    assert_int_equal(broker_sm_digest(&t.sm), broker_sm_digest(&b.sm));
    free(snap);
    t_close(&b);
    t_close(&t);
}


/* PURGE_READY: every message but the listed (delivered) ones goes. */
static void test_purge_ready(void **state) {
    (void)state;
    t_sm_t t;
    t_init(&t, 0);
    assert_int_equal(t_queue(&t, "q", "", 0, 0), 0);
    for (int i = 0; i < 6; i++) (void)t_publish(&t, "", "q", "m", 0, 0);
    const broker_queue_t *q = broker_sm_queue(&t.sm, "q", 1);
    const uint64_t a = broker_queue_at(q, 1)->message_id, b = broker_queue_at(q, 4)->message_id;
    uint8_t keep[16];
    for (int i = 0; i < 8; i++) keep[i] = (uint8_t)(a >> (8 * i)), keep[8 + i] = (uint8_t)(b >> (8 * i));
    broker_sm_cmd_t c = c_base(SM_CMD_PURGE_READY);
    c.queue = broker_sm_str("q");
    c.keep = keep;
    c.keep_count = 2;
    broker_sm_result_t r;
    assert_int_equal(t_apply(&t, &c, &r), 0);
    assert_int_equal(r.messages, 4);
    q = broker_sm_queue(&t.sm, "q", 1);
    assert_int_equal(q->count, 2);
    assert_int_equal(broker_queue_at(q, 0)->message_id, a);
    assert_int_equal(broker_queue_at(q, 1)->message_id, b);
    assert_true(broker_sm_check(&t.sm));
    /* ids out of order are malformed; a missing queue is not found */
    uint8_t swapped[16];
    memcpy(swapped, keep + 8, 8);
    memcpy(swapped + 8, keep, 8);
    c.keep = swapped;
    assert_int_equal(broker_sm_cmd_size(&c), 0);
    c.keep = keep;
    c.queue = broker_sm_str("nope");
    assert_int_equal(t_apply(&t, &c, NULL), SM_ENOTFOUND);
    /* nothing kept: all go */
    c.queue = broker_sm_str("q");
    c.keep_count = 0;
    c.keep = NULL;
    assert_int_equal(t_apply(&t, &c, &r), 0);
    assert_int_equal(r.messages, 2);
    assert_int_equal(t.sm.body_bytes, 0);
    t_close(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_codec_truncated_every_prefix),
        cmocka_unit_test(test_codec_bad_values),
        cmocka_unit_test(test_codec_oversized_names),
        cmocka_unit_test(test_apply_malformed_is_noop),
        cmocka_unit_test(test_topic_match_table),
        cmocka_unit_test(test_default_exchange),
        cmocka_unit_test(test_direct_exchange),
        cmocka_unit_test(test_fanout_and_topic_exchange),
        cmocka_unit_test(test_dedup_on_enqueues_once),
        cmocka_unit_test(test_dedup_wide_window_and_beyond),
        cmocka_unit_test(test_dedup_off_enqueues_twice),
        cmocka_unit_test(test_dedup_eviction_is_lru),
        cmocka_unit_test(test_return_and_dead_letter),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_queue_messages_max),
        cmocka_unit_test(test_two_replicas_agree),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_exchange_to_exchange),
        cmocka_unit_test(test_queue_props_and_owner),
        cmocka_unit_test(test_purge_ready),
        cmocka_unit_test(test_snapshot_rejects_garbage),
        cmocka_unit_test(test_check_detects_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
