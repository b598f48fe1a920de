/*
 * tests/fuzz/fuzz_amqp.c -- arbitrary bytes into an AMQP 0-9-1 connection.
 *
 * Input layout: byte 0 = mode flags, byte 1 = chunking seed, the rest is
 * what the "client" sends.
 *   bit 0: prepend a valid handshake + channel.open 1, so the fuzzer starts
 *          in the RUNNING state instead of spending its time on the header;
 *   bit 1: the backend answers ops later (after the chunk) instead of inside
 *          the call: exercises the asynchronous path and input waiting;
 *   bit 2: negotiate frame_max 4096 (small frames, split bodies);
 *   bit 3: the backend pushes a delivery to every new consumer and confirms
 *          every publish at once.
 * Oracle: beyond "no crash, no leak, no over-read" (ASan/UBSan), everything
 * the server writes after a valid header must parse as well-formed frames
 * within frame_max whose methods decode.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/amqp_codec.h"
#include "broker/amqp_conn.h"
#include "broker/amqp_methods.h"

typedef struct fz {
    amqp_conn_t *conn;
    int defer;
    int push;
    uint64_t deferred_req;
    uint32_t deferred_method;
    int has_deferred;
    uint64_t next_ref;
    char tag[256];
    size_t tag_len;
    uint16_t tag_channel;
    int want_deliver;
} fz_t;

static int fz_note(fz_t *f, const amqp_op_t *op, uint32_t method) {
    if (!f->defer) return 0;
    f->deferred_req = op->req;
    f->deferred_method = method;
    f->has_deferred = 1;
    return 1;
}

static int fz_ok(void *ctx, const amqp_op_t *op, uint32_t method) {
    fz_t *f = ctx;
    if (fz_note(f, op, method)) return 0;
    (void)amqp_conn_op_ok(op->conn, op->req);
    return 0;
}

static int fz_exchange_declare(void *ctx, const amqp_op_t *op, const amqp_exchange_declare_t *a) {
    if (a->passive) {
        fz_t *f = ctx;
        if (fz_note(f, op, AMQP_EXCHANGE_DECLARE)) return 0;
        (void)amqp_conn_op_fail(op->conn, op->req, AMQP_REPLY_NOT_FOUND, "no exchange");
        return 0;
    }
    return fz_ok(ctx, op, AMQP_EXCHANGE_DECLARE);
}
static int fz_exchange_delete(void *ctx, const amqp_op_t *op, const amqp_exchange_delete_t *a) {
    return fz_ok(ctx, op, AMQP_EXCHANGE_DELETE);
}
static int fz_queue_declare(void *ctx, const amqp_op_t *op, const amqp_queue_declare_t *a) {
    fz_t *f = ctx;
    if (fz_note(f, op, AMQP_QUEUE_DECLARE)) return 0;
    (void)amqp_conn_queue_ok(op->conn, op->req, 1, 0);
    return 0;
}
static int fz_queue_bind(void *ctx, const amqp_op_t *op, const amqp_queue_bind_t *a) {
    return fz_ok(ctx, op, AMQP_QUEUE_BIND);
}
static int fz_queue_unbind(void *ctx, const amqp_op_t *op, const amqp_queue_unbind_t *a) {
    return fz_ok(ctx, op, AMQP_QUEUE_UNBIND);
}
static int fz_queue_purge(void *ctx, const amqp_op_t *op, const amqp_queue_purge_t *a) {
    fz_t *f = ctx;
    if (fz_note(f, op, AMQP_QUEUE_PURGE)) return 0;
    (void)amqp_conn_queue_ok(op->conn, op->req, 0, 0);
    return 0;
}
static int fz_queue_delete(void *ctx, const amqp_op_t *op, const amqp_queue_delete_t *a) {
    fz_t *f = ctx;
    if (fz_note(f, op, AMQP_QUEUE_DELETE)) return 0;
    (void)amqp_conn_op_fail(op->conn, op->req, AMQP_REPLY_PRECONDITION_FAILED, "in use");
    return 0;
}
static int fz_qos(void *ctx, const amqp_op_t *op, const amqp_basic_qos_t *a) {
    return fz_ok(ctx, op, AMQP_BASIC_QOS);
}
static int fz_consume(void *ctx, const amqp_op_t *op, const amqp_basic_consume_t *a) {
    fz_t *f = ctx;
    if (a->consumer_tag.len) memcpy(f->tag, a->consumer_tag.ptr, a->consumer_tag.len);
    f->tag_len = a->consumer_tag.len;
    f->tag_channel = op->channel;
    f->want_deliver = f->push;
    return fz_ok(ctx, op, AMQP_BASIC_CONSUME);
}
static int fz_cancel(void *ctx, const amqp_op_t *op, const amqp_basic_cancel_t *a) {
    return fz_ok(ctx, op, AMQP_BASIC_CANCEL);
}
static int fz_get(void *ctx, const amqp_op_t *op, const amqp_basic_get_t *a) {
    fz_t *f = ctx;
    if (fz_note(f, op, AMQP_BASIC_GET)) return 0;
    if (a->queue.len & 1) {
        (void)amqp_conn_get_empty(op->conn, op->req);
    } else {
        amqp_bytes_t body = {(const uint8_t *)"payload", 7};
        (void)amqp_conn_get_ok(op->conn, op->req, ++f->next_ref, 0, a->queue, a->queue,
                               0, NULL, body, NULL);
    }
    return 0;
}
static int fz_select(void *ctx, const amqp_op_t *op) {
    return fz_ok(ctx, op, AMQP_CONFIRM_SELECT);
}
static int fz_publish(void *ctx, amqp_conn_t *conn, uint16_t channel, uint64_t seq,
                      const amqp_publish_t *msg) {
    fz_t *f = ctx;
    if (!f->push) return 0;
    if (msg->mandatory)
        (void)amqp_conn_return(conn, channel, AMQP_REPLY_NO_ROUTE, "NO_ROUTE", msg->exchange,
                               msg->routing_key, msg->props, msg->body);
    if (seq) (void)amqp_conn_confirm(conn, channel, seq, (int)(seq & 1), (int)(seq % 3 != 0));
    return 0;
}
static void fz_settle(void *ctx, amqp_conn_t *conn, uint16_t channel, uint64_t ref,
                      enum amqp_settle how) {
    (void)ctx;
    assert(how >= AMQP_SETTLE_ACK && how <= AMQP_SETTLE_RELEASED);
}

/* Answer the op deferred during the last chunk with whatever fits it. */
static void fz_answer(fz_t *f) {
    if (!f->has_deferred) return;
    f->has_deferred = 0;
    uint64_t req = f->deferred_req;
    switch (f->deferred_method) {
    case AMQP_QUEUE_DECLARE:
    case AMQP_QUEUE_PURGE: (void)amqp_conn_queue_ok(f->conn, req, 0, 0); break;
    case AMQP_BASIC_GET: (void)amqp_conn_get_empty(f->conn, req); break;
    case AMQP_EXCHANGE_DECLARE:
    case AMQP_QUEUE_DELETE:
        (void)amqp_conn_op_fail(f->conn, req, AMQP_REPLY_NOT_FOUND, "gone");
        break;
    default: (void)amqp_conn_op_ok(f->conn, req); break;
    }
}

static void fz_push(fz_t *f) {
    if (!f->want_deliver) return;
    f->want_deliver = 0;
    amqp_bytes_t tag = {(const uint8_t *)f->tag, f->tag_len};
    amqp_bytes_t body = {(const uint8_t *)"0123456789", 10};
    amqp_bytes_t rk = {(const uint8_t *)"rk", 2};
    for (int i = 0; i < 3; i++)
        (void)amqp_conn_deliver(f->conn, f->tag_channel, tag, ++f->next_ref, i == 1, rk, rk,
                                NULL, body, NULL);
}

/* Every server frame must be well formed; drain the output. */
static void fz_check_output(fz_t *f, int check) {
    const uint8_t *out;
    size_t n = amqp_conn_output(f->conn, &out);
    size_t pos = 0;
    uint32_t fm = amqp_conn_frame_max(f->conn);
    while (check && pos < n) {
        amqp_frame_t fr;
        int rc = amqp_frame_parse(out + pos, n - pos, fm, &fr);
        if (rc <= 0) abort(); /* the server wrote a broken or partial frame */
        if (fr.type == AMQP_FRAME_METHOD) {
            amqp_method_t m;
            if (amqp_method_decode(fr.payload, fr.size, &m) != 0) abort();
        } else if (fr.type == AMQP_FRAME_HEADER) {
            amqp_content_header_t h;
            if (amqp_content_header_decode(fr.payload, fr.size, &h) != 0) abort();
        }
        pos += (size_t)rc;
    }
    amqp_conn_output_consume(f->conn, n);
}

static const uint8_t fz_handshake_head[] = {
    'A', 'M', 'Q', 'P', 0, 0, 9, 1,
    /* start-ok: empty client props, PLAIN, "\0guest\0guest", en_US */
    1, 0, 0, 0, 0, 0, 36, 0, 10, 0, 11, 0, 0, 0, 0, 5, 'P', 'L', 'A', 'I', 'N',
    0, 0, 0, 12, 0, 'g', 'u', 'e', 's', 't', 0, 'g', 'u', 'e', 's', 't',
    5, 'e', 'n', '_', 'U', 'S', 0xCE,
};

static size_t fz_handshake(uint8_t *buf, uint32_t frame_max) {
    size_t n = sizeof fz_handshake_head;
    memcpy(buf, fz_handshake_head, n);
    const uint8_t tune_ok[] = {1, 0, 0, 0, 0, 0, 12, 0, 10, 0, 31, 0, 16,
                               (uint8_t)(frame_max >> 24), (uint8_t)(frame_max >> 16),
                               (uint8_t)(frame_max >> 8), (uint8_t)frame_max, 0, 0, 0xCE};
    const uint8_t open[] = {1, 0, 0, 0, 0, 0, 8, 0, 10, 0, 40, 1, '/', 0, 0, 0xCE};
    const uint8_t ch_open[] = {1, 0, 1, 0, 0, 0, 5, 0, 20, 0, 10, 0, 0xCE};
    memcpy(buf + n, tune_ok, sizeof tune_ok);
    n += sizeof tune_ok;
    memcpy(buf + n, open, sizeof open);
    n += sizeof open;
    memcpy(buf + n, ch_open, sizeof ch_open);
    n += sizeof ch_open;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t mode = data[0];
    uint32_t chunk_seed = data[1];
    data += 2;
    size -= 2;
    fz_t f = {0};
    f.defer = (mode & 2) != 0;
    f.push = (mode & 8) != 0;
    amqp_conn_config_t cfg = {.heartbeat_s = 5, .conn_id = 7, .loopback = 1,
                              .channel_max = 16, .body_size_max = 65536};
    amqp_backend_t be = {
        .ctx = &f,
        .exchange_declare = fz_exchange_declare,
        .exchange_delete = fz_exchange_delete,
        .queue_declare = fz_queue_declare,
        .queue_bind = fz_queue_bind,
        .queue_unbind = fz_queue_unbind,
        .queue_purge = fz_queue_purge,
        .queue_delete = fz_queue_delete,
        .basic_qos = fz_qos,
        .basic_consume = fz_consume,
        .basic_cancel = fz_cancel,
        .basic_get = fz_get,
        .confirm_select = fz_select,
        .basic_publish = fz_publish,
        .settle = fz_settle,
    };
    f.conn = amqp_conn_new(&cfg, &be);
    if (!f.conn) return 0;
    int check = 0;
    if (mode & 1) {
        uint8_t hs[256];
        size_t n = fz_handshake(hs, (mode & 4) ? 4096 : 131072);
        size_t got = amqp_conn_feed(f.conn, hs, n);
        if (got != n || amqp_conn_state(f.conn) != AMQP_CONN_S_RUNNING) abort();
        check = 1;
    }
    fz_check_output(&f, check);
    uint64_t now_ns = 0;
    size_t pos = 0;
    /* Feed in chunks of pseudo-random sizes; bounded by the input. */
    for (size_t round = 0; pos < size && round < size + 16; round++) {
        chunk_seed = chunk_seed * 1103515245u + 12345u;
        size_t want = 1 + (chunk_seed >> 16) % 64;
        if (want > size - pos) want = size - pos;
        size_t took = amqp_conn_feed(f.conn, data + pos, want);
        pos += took;
        fz_push(&f);
        fz_answer(&f);
        fz_check_output(&f, check);
        now_ns += (chunk_seed & 0xFF) * 50000000ull; /* up to ~12.7 s */
        (void)amqp_conn_tick(f.conn, now_ns);
        fz_check_output(&f, check);
    }
    amqp_conn_free(f.conn);
    return 0;
}
