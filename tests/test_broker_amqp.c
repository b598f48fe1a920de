/*
 * tests/test_broker_amqp.c -- AMQP 0-9-1 codec and connection state machine,
 * driven by hand with a fake in-memory backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/amqp_codec.h"
#include "broker/amqp_conn.h"
#include "broker/amqp_methods.h"
#include "broker/io.h"

static amqp_bytes_t bytes_of(const uint8_t *p, size_t n) {
    amqp_bytes_t b = {p, n};
    return b;
}

/* ---- fake backend ------------------------------------------------------- */

#define FAKE_REFS_MAX 64

typedef struct fake {
    amqp_conn_t *conn;
    int defer;            /* do not answer ops; remember the last req */
    uint64_t last_req;
    uint32_t last_method;
    int ops;
    int get_empty;
    int publishes;
    int confirm_sync;     /* confirm each sequenced publish from inside the call */
    uint64_t last_seq;
    uint8_t mandatory;
    char routing_key[256];
    uint8_t body[65536];
    size_t body_len;
    uint8_t props_raw[4096];
    size_t props_raw_len;
    int settled;
    uint64_t settle_ref[FAKE_REFS_MAX];
    int settle_how[FAKE_REFS_MAX];
    int channel_closed;
    int conn_closed;
    char last_queue[256];
    char last_tag[256];
    char op_queue[256]; /* queue named by the last bind/consume/get/purge/delete */
    char op_key[256];   /* routing key of the last bind */
} fake_t;

static void fake_copy(char *dst, amqp_bytes_t b) {
    if (b.len) memcpy(dst, b.ptr, b.len);
    dst[b.len] = '\0';
}

static int fake_note(fake_t *f, const amqp_op_t *op, uint32_t method) {
    f->ops++;
    f->last_req = op->req;
    f->last_method = method;
    return f->defer;
}

static int fake_exchange_declare(void *ctx, const amqp_op_t *op,
                                 const amqp_exchange_declare_t *a) {
    fake_t *f = ctx;
    if (fake_note(f, op, AMQP_EXCHANGE_DECLARE)) return 0;
    if (a->passive && amqp_bytes_eq(a->exchange, "missing"))
        return amqp_conn_op_fail(op->conn, op->req, AMQP_REPLY_NOT_FOUND,
                                 "NOT_FOUND - no exchange 'missing'");
    if (amqp_bytes_eq(a->exchange, "boom")) return IO_EIO;
    return amqp_conn_op_ok(op->conn, op->req);
}

static int fake_queue_declare(void *ctx, const amqp_op_t *op,
                              const amqp_queue_declare_t *a) {
    fake_t *f = ctx;
    fake_copy(f->last_queue, a->queue);
    if (fake_note(f, op, AMQP_QUEUE_DECLARE)) return 0;
    if (a->exclusive && amqp_bytes_eq(a->queue, "locked"))
        return amqp_conn_op_fail(op->conn, op->req, AMQP_REPLY_RESOURCE_LOCKED,
                                 "RESOURCE_LOCKED");
    return amqp_conn_queue_ok(op->conn, op->req, 7, 1);
}

static int fake_queue_bind(void *ctx, const amqp_op_t *op, const amqp_queue_bind_t *a) {
    fake_t *f = ctx;
    fake_copy(f->op_queue, a->queue);
    fake_copy(f->op_key, a->routing_key);
    if (fake_note(f, op, AMQP_QUEUE_BIND)) return 0;
    return amqp_conn_op_ok(op->conn, op->req);
}

static int fake_queue_purge(void *ctx, const amqp_op_t *op, const amqp_queue_purge_t *a) {
    fake_t *f = ctx;
    fake_copy(f->op_queue, a->queue);
    if (fake_note(f, op, AMQP_QUEUE_PURGE)) return 0;
    return amqp_conn_queue_ok(op->conn, op->req, 3, 0);
}

static int fake_queue_delete(void *ctx, const amqp_op_t *op,
                             const amqp_queue_delete_t *a) {
    fake_t *f = ctx;
    if (fake_note(f, op, AMQP_QUEUE_DELETE)) return 0;
    return amqp_conn_queue_ok(op->conn, op->req, 2, 0);
}

static int fake_basic_qos(void *ctx, const amqp_op_t *op, const amqp_basic_qos_t *a) {
    fake_t *f = ctx;
    if (fake_note(f, op, AMQP_BASIC_QOS)) return 0;
    return amqp_conn_op_ok(op->conn, op->req);
}

static int fake_basic_consume(void *ctx, const amqp_op_t *op,
                              const amqp_basic_consume_t *a) {
    fake_t *f = ctx;
    fake_copy(f->last_tag, a->consumer_tag);
    fake_copy(f->op_queue, a->queue);
    if (fake_note(f, op, AMQP_BASIC_CONSUME)) return 0;
    return amqp_conn_op_ok(op->conn, op->req);
}

static int fake_basic_cancel(void *ctx, const amqp_op_t *op,
                             const amqp_basic_cancel_t *a) {
    fake_t *f = ctx;
    if (fake_note(f, op, AMQP_BASIC_CANCEL)) return 0;
    return amqp_conn_op_ok(op->conn, op->req);
}

static int fake_basic_get(void *ctx, const amqp_op_t *op, const amqp_basic_get_t *a) {
    fake_t *f = ctx;
    fake_copy(f->op_queue, a->queue);
    if (fake_note(f, op, AMQP_BASIC_GET)) return 0;
    if (f->get_empty) return amqp_conn_get_empty(op->conn, op->req);
    amqp_basic_props_t props = {.flags = AMQP_PROP_MESSAGE_ID,
                                .message_id = amqp_cstr("m-1")};
    return amqp_conn_get_ok(op->conn, op->req, 1001, 0, amqp_cstr(""),
                            amqp_cstr("q1"), 4, &props, amqp_cstr("hello"), NULL);
}

static int fake_basic_publish(void *ctx, amqp_conn_t *conn, uint16_t channel,
                              uint64_t seq, const amqp_publish_t *msg) {
    fake_t *f = ctx;
    f->publishes++;
    f->last_seq = seq;
    f->mandatory = msg->mandatory;
    fake_copy(f->routing_key, msg->routing_key);
    assert_true(msg->body.len <= sizeof f->body);
    if (msg->body.len) memcpy(f->body, msg->body.ptr, msg->body.len);
    f->body_len = msg->body.len;
    assert_true(msg->props_raw.len <= sizeof f->props_raw);
    if (msg->props_raw.len) memcpy(f->props_raw, msg->props_raw.ptr, msg->props_raw.len);
    f->props_raw_len = msg->props_raw.len;
    if (f->confirm_sync && seq) {
        (void)amqp_conn_confirm(conn, channel, seq, 0, 1);
    }
    return 0;
}

static void fake_settle(void *ctx, amqp_conn_t *conn, uint16_t channel,
                        uint64_t ref, enum amqp_settle how) {
    fake_t *f = ctx;
    assert_true(f->settled < FAKE_REFS_MAX);
    f->settle_ref[f->settled] = ref;
    f->settle_how[f->settled] = how;
    f->settled++;
}

static void fake_channel_closed(void *ctx, amqp_conn_t *conn, uint16_t channel) {
    ((fake_t *)ctx)->channel_closed++;
}

static void fake_conn_closed(void *ctx, amqp_conn_t *conn) {
    ((fake_t *)ctx)->conn_closed++;
}

static amqp_backend_t fake_backend(fake_t *f) {
    amqp_backend_t be = {
        .ctx = f,
        .exchange_declare = fake_exchange_declare,
        .queue_declare = fake_queue_declare,
        .queue_bind = fake_queue_bind,
        .queue_purge = fake_queue_purge,
        .queue_delete = fake_queue_delete,
        .basic_qos = fake_basic_qos,
        .basic_consume = fake_basic_consume,
        .basic_cancel = fake_basic_cancel,
        .basic_get = fake_basic_get,
        .basic_publish = fake_basic_publish,
        .settle = fake_settle,
        .channel_closed = fake_channel_closed,
        .conn_closed = fake_conn_closed,
    };
    return be;
}

/* ---- test client -------------------------------------------------------- */

typedef struct tc {
    fake_t fake;
    amqp_conn_t *conn;
    uint8_t frame[AMQP_FRAME_MAX_DEFAULT + 16]; /* last frame read */
    amqp_frame_t f;
} tc_t;

static tc_t *tc_new(uint32_t frame_max, int loopback) {
    tc_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    amqp_conn_config_t cfg = {.frame_max = frame_max, .heartbeat_s = 60,
                              .conn_id = 0x2a, .loopback = loopback};
    amqp_backend_t be = fake_backend(&t->fake);
    t->conn = amqp_conn_new(&cfg, &be);
    assert_non_null(t->conn);
    t->fake.conn = t->conn;
    return t;
}

static void tc_free(tc_t *t) {
    amqp_conn_free(t->conn);
    free(t);
}

static void feed(tc_t *t, const void *b, size_t n) {
    assert_int_equal(amqp_conn_feed(t->conn, b, n), n);
}

static void feed_method(tc_t *t, uint16_t ch, const amqp_method_t *m) {
    static uint8_t buf[AMQP_FRAME_MAX_DEFAULT];
    amqp_wr_t w;
    amqp_wr_init(&w, buf, sizeof buf);
    size_t mark = amqp_wr_frame_begin(&w, AMQP_FRAME_METHOD, ch);
    assert_int_equal(amqp_method_encode(m, &w), 0);
    amqp_wr_frame_end(&w, mark);
    assert_int_equal(w.err, 0);
    feed(t, buf, w.len);
}

static void feed_frame(tc_t *t, uint8_t type, uint16_t ch, const void *p, size_t n) {
    static uint8_t buf[AMQP_FRAME_MAX_DEFAULT + 16];
    amqp_wr_t w;
    amqp_wr_init(&w, buf, sizeof buf);
    size_t mark = amqp_wr_frame_begin(&w, type, ch);
    amqp_wr_bytes(&w, p, n);
    amqp_wr_frame_end(&w, mark);
    feed(t, buf, w.len);
}

/* Pull the next frame out of the server's output. */
static int next_frame(tc_t *t) {
    const uint8_t *out;
    size_t n = amqp_conn_output(t->conn, &out);
    if (n == 0) return 0;
    int rc = amqp_frame_parse(out, n, AMQP_FRAME_MAX_DEFAULT, &t->f);
    assert_true(rc > 0);
    memcpy(t->frame, out, (size_t)rc);
    t->f.payload = t->frame + AMQP_FRAME_HEADER_SIZE;
    amqp_conn_output_consume(t->conn, (size_t)rc);
    return 1;
}

static void expect_method(tc_t *t, uint16_t ch, uint32_t id, amqp_method_t *m) {
    amqp_method_t tmp;
    if (!m) m = &tmp;
    assert_true(next_frame(t));
    assert_int_equal(t->f.type, AMQP_FRAME_METHOD);
    assert_int_equal(t->f.channel, ch);
    assert_int_equal(amqp_method_decode(t->f.payload, t->f.size, m), 0);
    if (m->id != id)
        fail_msg("expected %s, got %s", amqp_method_name(id), amqp_method_name(m->id));
}

static void expect_no_output(tc_t *t) {
    const uint8_t *out;
    assert_int_equal(amqp_conn_output(t->conn, &out), 0);
}

static void expect_conn_close(tc_t *t, uint16_t code) {
    amqp_method_t m;
    expect_method(t, 0, AMQP_CONNECTION_CLOSE, &m);
    assert_int_equal(m.u.connection_close.reply_code, code);
    assert_int_equal(amqp_conn_close_code(t->conn), code);
    assert_true(amqp_conn_state(t->conn) >= AMQP_CONN_S_CLOSING);
    assert_int_equal(t->fake.conn_closed, 1);
}

static void expect_channel_close(tc_t *t, uint16_t ch, uint16_t code) {
    amqp_method_t m;
    expect_method(t, ch, AMQP_CHANNEL_CLOSE, &m);
    assert_int_equal(m.u.channel_close.reply_code, code);
}

/* Minimal big-endian builder, independent of the codec under test, so the
 * handshake bytes are what a client such as pika puts on the wire. */
typedef struct raw {
    uint8_t b[2048];
    size_t n;
} raw_t;

static void r8(raw_t *r, uint8_t v) { r->b[r->n++] = v; }
static void r16(raw_t *r, uint16_t v) { r8(r, (uint8_t)(v >> 8)); r8(r, (uint8_t)v); }
static void r32(raw_t *r, uint32_t v) { r16(r, (uint16_t)(v >> 16)); r16(r, (uint16_t)v); }
static void rstr(raw_t *r, const char *s) {
    r8(r, (uint8_t)strlen(s));
    memcpy(r->b + r->n, s, strlen(s));
    r->n += strlen(s);
}
static void rlong(raw_t *r, const void *p, uint32_t n) {
    r32(r, n);
    memcpy(r->b + r->n, p, n);
    r->n += n;
}
static void rframe(raw_t *out, uint8_t type, uint16_t ch, const raw_t *payload) {
    r8(out, type);
    r16(out, ch);
    r32(out, (uint32_t)payload->n);
    memcpy(out->b + out->n, payload->b, payload->n);
    out->n += payload->n;
    r8(out, 0xCE);
}

static void feed_bytewise(tc_t *t, const raw_t *r) {
    for (size_t i = 0; i < r->n; i++) feed(t, &r->b[i], 1);
}

/* The client half of the handshake as pika 1.x sends it. */
static void pika_start_ok(raw_t *wire, const char *user, const char *pass) {
    raw_t props = {0}, p = {0};
    rstr(&props, "product");
    r8(&props, 'S');
    rlong(&props, "Pika Python Client Library", 26);
    rstr(&props, "platform");
    r8(&props, 'S');
    rlong(&props, "Python 3.11.2", 13);
    rstr(&props, "capabilities");
    r8(&props, 'F');
    raw_t caps = {0};
    rstr(&caps, "authentication_failure_close");
    r8(&caps, 't');
    r8(&caps, 1);
    rstr(&caps, "basic.nack");
    r8(&caps, 't');
    r8(&caps, 1);
    rstr(&caps, "consumer_cancel_notify");
    r8(&caps, 't');
    r8(&caps, 1);
    rstr(&caps, "publisher_confirms");
    r8(&caps, 't');
    r8(&caps, 1);
    rlong(&props, caps.b, (uint32_t)caps.n);
    rstr(&props, "version");
    r8(&props, 'S');
    rlong(&props, "1.3.2", 5);
    r16(&p, 10);
    r16(&p, 11);
    rlong(&p, props.b, (uint32_t)props.n);
    rstr(&p, "PLAIN");
    char resp[128];
    size_t ul = strlen(user), pl = strlen(pass);
    resp[0] = 0;
    memcpy(resp + 1, user, ul);
    resp[1 + ul] = 0;
    memcpy(resp + 2 + ul, pass, pl);
    rlong(&p, resp, (uint32_t)(2 + ul + pl));
    rstr(&p, "en_US");
    rframe(wire, 1, 0, &p);
}

static void pika_tune_ok_open(raw_t *wire, uint32_t frame_max, uint16_t heartbeat) {
    raw_t p = {0};
    r16(&p, 10);
    r16(&p, 31);
    r16(&p, 2047);
    r32(&p, frame_max);
    r16(&p, heartbeat);
    rframe(wire, 1, 0, &p);
    raw_t o = {0};
    r16(&o, 10);
    r16(&o, 40);
    rstr(&o, "/");
    rstr(&o, "");
    r8(&o, 0);
    rframe(wire, 1, 0, &o);
}

static void handshake(tc_t *t, uint32_t frame_max, uint16_t heartbeat) {
    raw_t wire = {0};
    memcpy(wire.b, "AMQP\x00\x00\x09\x01", 8);
    wire.n = 8;
    pika_start_ok(&wire, "guest", "guest");
    pika_tune_ok_open(&wire, frame_max, heartbeat);
    feed(t, wire.b, wire.n);
    expect_method(t, 0, AMQP_CONNECTION_START, NULL);
    expect_method(t, 0, AMQP_CONNECTION_TUNE, NULL);
    expect_method(t, 0, AMQP_CONNECTION_OPEN_OK, NULL);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
}

static void open_channel(tc_t *t, uint16_t ch) {
    amqp_method_t m = {.id = AMQP_CHANNEL_OPEN};
    feed_method(t, ch, &m);
    expect_method(t, ch, AMQP_CHANNEL_OPEN_OK, NULL);
}

static tc_t *tc_ready(uint32_t frame_max) {
    tc_t *t = tc_new(0, 1);
    handshake(t, frame_max, 0);
    open_channel(t, 1);
    return t;
}

/* Publish `body` with the given properties, split at the negotiated
 * frame_max, the way clients do. */
static void publish(tc_t *t, uint16_t ch, const char *rk, int mandatory,
                    const amqp_basic_props_t *props, const uint8_t *body, size_t len) {
    amqp_method_t m = {.id = AMQP_BASIC_PUBLISH};
    m.u.basic_publish.exchange = amqp_cstr("");
    m.u.basic_publish.routing_key = amqp_cstr(rk);
    m.u.basic_publish.mandatory = (uint8_t)mandatory;
    feed_method(t, ch, &m);
    uint8_t hdr[4096];
    amqp_wr_t w;
    amqp_wr_init(&w, hdr, sizeof hdr);
    amqp_content_header_t h = {AMQP_CLASS_BASIC, 0, len, {0}};
    if (props) h.props = *props;
    amqp_content_header_encode(&w, &h);
    assert_int_equal(w.err, 0);
    feed_frame(t, AMQP_FRAME_HEADER, ch, hdr, w.len);
    size_t chunk = amqp_conn_frame_max(t->conn) - 8;
    for (size_t off = 0; off < len; off += chunk)
        feed_frame(t, AMQP_FRAME_BODY, ch, body + off, len - off < chunk ? len - off : chunk);
}

/* Read a delivery's method, header and body frames back into one body. */
static size_t read_content(tc_t *t, uint16_t ch, uint8_t *body, size_t cap,
                           amqp_basic_props_t *props, uint8_t *props_store) {
    assert_true(next_frame(t));
    assert_int_equal(t->f.type, AMQP_FRAME_HEADER);
    assert_int_equal(t->f.channel, ch);
    amqp_content_header_t h;
    memcpy(props_store, t->f.payload, t->f.size);
    assert_int_equal(amqp_content_header_decode(props_store, t->f.size, &h), 0);
    if (props) *props = h.props;
    size_t got = 0;
    for (int i = 0; got < h.body_size && i < 1000; i++) {
        assert_true(next_frame(t));
        assert_int_equal(t->f.type, AMQP_FRAME_BODY);
        assert_true(got + t->f.size <= cap);
        memcpy(body + got, t->f.payload, t->f.size);
        got += t->f.size;
    }
    assert_int_equal(got, h.body_size);
    return got;
}

/* ---- tests: handshake ----------------------------------------------------- */

static void test_handshake_pika_bytes(void **state) {
    tc_t *t = tc_new(0, 1);
    raw_t wire = {0};
    memcpy(wire.b, "AMQP\x00\x00\x09\x01", 8);
    wire.n = 8;
    feed_bytewise(t, &wire);
    amqp_method_t m;
    expect_method(t, 0, AMQP_CONNECTION_START, &m);
    assert_int_equal(m.u.connection_start.version_major, 0);
    assert_int_equal(m.u.connection_start.version_minor, 9);
    assert_true(amqp_bytes_eq(m.u.connection_start.mechanisms, "PLAIN AMQPLAIN"));
    amqp_field_t caps, v;
    assert_int_equal(amqp_table_get(m.u.connection_start.server_properties,
                                     "capabilities", &caps), 1);
    assert_int_equal(caps.kind, 'F');
    assert_int_equal(amqp_table_get(caps.v.table, "publisher_confirms", &v), 1);
    assert_int_equal(v.kind, 't');
    assert_int_equal(v.v.u, 1);
    assert_int_equal(amqp_table_get(caps.v.table, "basic.nack", &v), 1);
    assert_int_equal(v.v.u, 1);
    assert_int_equal(amqp_table_get(caps.v.table, "consumer_cancel_notify", &v), 1);
    assert_int_equal(v.v.u, 1);
    assert_int_equal(amqp_table_get(caps.v.table, "exchange_exchange_bindings", &v), 1);
    assert_int_equal(v.v.u, 0); /* the fake backend has no exchange_bind */
    assert_int_equal(amqp_table_get(caps.v.table, "per_consumer_qos", &v), 1);
    assert_int_equal(v.v.u, 1);
    assert_int_equal(amqp_table_get(caps.v.table, "authentication_failure_close", &v), 1);
    assert_int_equal(v.v.u, 1);
    assert_int_equal(amqp_table_get(caps.v.table, "connection.blocked", &v), 1);

    wire.n = 0;
    pika_start_ok(&wire, "guest", "guest");
    feed_bytewise(t, &wire);
    /* tune: channel_max 2047, frame_max 131072, heartbeat 60, exact bytes */
    static const uint8_t tune[] = {1, 0, 0, 0, 0, 0, 12, 0, 10, 0, 30, 0x07, 0xFF,
                                   0, 2, 0, 0, 0, 60, 0xCE};
    const uint8_t *out;
    assert_int_equal(amqp_conn_output(t->conn, &out), sizeof tune);
    assert_memory_equal(out, tune, sizeof tune);
    amqp_conn_output_consume(t->conn, sizeof tune);
    assert_string_equal(amqp_conn_user(t->conn), "guest");

    wire.n = 0;
    pika_tune_ok_open(&wire, 131072, 60);
    feed_bytewise(t, &wire);
    static const uint8_t open_ok[] = {1, 0, 0, 0, 0, 0, 5, 0, 10, 0, 41, 0, 0xCE};
    assert_int_equal(amqp_conn_output(t->conn, &out), sizeof open_ok);
    assert_memory_equal(out, open_ok, sizeof open_ok);
    amqp_conn_output_consume(t->conn, sizeof open_ok);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    assert_int_equal(amqp_conn_frame_max(t->conn), 131072);
    assert_int_equal(amqp_conn_heartbeat_s(t->conn), 60);

    /* and a clean client close */
    amqp_method_t c = {.id = AMQP_CONNECTION_CLOSE};
    c.u.connection_close.reply_code = 200;
    feed_method(t, 0, &c);
    expect_method(t, 0, AMQP_CONNECTION_CLOSE_OK, NULL);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_CLOSED);
    assert_int_equal(t->fake.conn_closed, 1);
    tc_free(t);
}

static void test_handshake_auth_refused(void **state) {
    /* wrong password */
    tc_t *t = tc_new(0, 1);
    raw_t wire = {0};
    memcpy(wire.b, "AMQP\x00\x00\x09\x01", 8);
    wire.n = 8;
    pika_start_ok(&wire, "guest", "nope");
    feed(t, wire.b, wire.n);
    expect_method(t, 0, AMQP_CONNECTION_START, NULL);
    expect_conn_close(t, AMQP_REPLY_ACCESS_REFUSED);
    tc_free(t);
    /* right password, but guest from a non-loopback peer */
    t = tc_new(0, 0);
    feed(t, wire.b, 8);
    wire.n = 8;
    pika_start_ok(&wire, "guest", "guest");
    feed(t, wire.b + 8, wire.n - 8);
    expect_method(t, 0, AMQP_CONNECTION_START, NULL);
    expect_conn_close(t, AMQP_REPLY_ACCESS_REFUSED);
    tc_free(t);
}

static void test_handshake_user_table(void **state) {
    fake_t f = {0};
    amqp_user_t users[] = {{"alice", "s3cret"}};
    amqp_conn_config_t cfg = {.users = users, .users_count = 1};
    amqp_backend_t be = fake_backend(&f);
    amqp_conn_t *c = amqp_conn_new(&cfg, &be);
    raw_t wire = {0};
    memcpy(wire.b, "AMQP\x00\x00\x09\x01", 8);
    wire.n = 8;
    pika_start_ok(&wire, "alice", "s3cret");
    pika_tune_ok_open(&wire, 0, 0);
    assert_int_equal(amqp_conn_feed(c, wire.b, wire.n), wire.n);
    assert_int_equal(amqp_conn_state(c), AMQP_CONN_S_RUNNING);
    assert_string_equal(amqp_conn_user(c), "alice");
    assert_int_equal(amqp_conn_frame_max(c), AMQP_FRAME_MAX_DEFAULT);
    amqp_conn_free(c);
}

static void test_wrong_protocol_header(void **state) {
    tc_t *t = tc_new(0, 1);
    feed(t, "AMQP\x01\x01\x00\x09", 8); /* an AMQP 0-9 client */
    const uint8_t *out;
    assert_int_equal(amqp_conn_output(t->conn, &out), 8);
    assert_memory_equal(out, "AMQP\x00\x00\x09\x01", 8);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_CLOSED);
    tc_free(t);
    t = tc_new(0, 1);
    feed(t, "GET / HTTP/1.1\r\n", 16);
    assert_int_equal(amqp_conn_output(t->conn, &out), 8);
    assert_memory_equal(out, "AMQP\x00\x00\x09\x01", 8);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_CLOSED);
    tc_free(t);
}

static void test_handshake_bad_tune(void **state) {
    tc_t *t = tc_new(0, 1);
    raw_t wire = {0};
    memcpy(wire.b, "AMQP\x00\x00\x09\x01", 8);
    wire.n = 8;
    pika_start_ok(&wire, "guest", "guest");
    pika_tune_ok_open(&wire, 1024, 0); /* below FRAME_MIN_SIZE */
    feed(t, wire.b, wire.n);
    expect_method(t, 0, AMQP_CONNECTION_START, NULL);
    expect_method(t, 0, AMQP_CONNECTION_TUNE, NULL);
    expect_conn_close(t, AMQP_REPLY_NOT_ALLOWED);
    tc_free(t);
}

static void test_handshake_timeout(void **state) {
    tc_t *t = tc_new(0, 1);
    assert_int_equal(amqp_conn_tick(t->conn, 1000), 1000 + AMQP_CONN_HANDSHAKE_TIMEOUT_NS);
    feed(t, "AMQP", 4);
    amqp_conn_tick(t->conn, 1000 + AMQP_CONN_HANDSHAKE_TIMEOUT_NS);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_CLOSED);
    tc_free(t);
}

/* ---- tests: framing errors ------------------------------------------------ */

static void test_bad_frame_end(void **state) {
    tc_t *t = tc_ready(0);
    uint8_t frame[] = {1, 0, 1, 0, 0, 0, 4, 0, 20, 0, 40, 0xCD};
    feed(t, frame, sizeof frame);
    expect_conn_close(t, AMQP_REPLY_FRAME_ERROR);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_CLOSED);
    tc_free(t);
}

static void test_oversized_frame(void **state) {
    tc_t *t = tc_ready(4096);
    /* The header alone announces 5000 bytes: rejected before the payload. */
    uint8_t head[] = {3, 0, 1, 0, 0, 0x13, 0x88};
    feed(t, head, sizeof head);
    expect_conn_close(t, AMQP_REPLY_FRAME_ERROR);
    tc_free(t);
    /* exactly frame_max is fine (a body frame with no publish -> 505 instead) */
    t = tc_ready(4096);
    static uint8_t body[4096 - 8];
    feed_frame(t, AMQP_FRAME_BODY, 1, body, sizeof body);
    expect_conn_close(t, AMQP_REPLY_UNEXPECTED_FRAME);
    tc_free(t);
}

static void test_bad_frame_type(void **state) {
    tc_t *t = tc_ready(0);
    uint8_t frame[] = {9, 0, 0, 0, 0, 0, 0, 0xCE};
    feed(t, frame, sizeof frame);
    expect_conn_close(t, AMQP_REPLY_FRAME_ERROR);
    tc_free(t);
}

static void test_unknown_class_and_method(void **state) {
    tc_t *t = tc_ready(0);
    uint8_t p1[] = {0, 99, 0, 10}; /* class 99 does not exist */
    feed_frame(t, AMQP_FRAME_METHOD, 1, p1, sizeof p1);
    expect_conn_close(t, AMQP_REPLY_NOT_IMPLEMENTED);
    tc_free(t);
    t = tc_ready(0);
    uint8_t p2[] = {0, 60, 0, 99}; /* basic.99 does not exist */
    feed_frame(t, AMQP_FRAME_METHOD, 1, p2, sizeof p2);
    expect_conn_close(t, AMQP_REPLY_NOT_IMPLEMENTED);
    tc_free(t);
    /* A real method that only a server may send: an invalid command. */
    t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_BASIC_GET_EMPTY};
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_COMMAND_INVALID);
    tc_free(t);
    /* channel.flow active=false is refused as RabbitMQ does (540) */
    t = tc_ready(0);
    memset(&m, 0, sizeof m);
    m.id = AMQP_CHANNEL_FLOW;
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_NOT_IMPLEMENTED);
    tc_free(t);
}

static void test_unopened_channel(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_QUEUE_DECLARE};
    m.u.queue_declare.queue = amqp_cstr("q");
    feed_method(t, 2, &m); /* channel 2 was never opened */
    expect_conn_close(t, AMQP_REPLY_CHANNEL_ERROR);
    assert_int_equal(t->fake.ops, 0);
    tc_free(t);
    /* opening an open channel is a channel error too */
    t = tc_ready(0);
    memset(&m, 0, sizeof m);
    memset(&m, 0, sizeof m);
    m.id = AMQP_CHANNEL_OPEN;
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_CHANNEL_ERROR);
    tc_free(t);
}

static void test_content_without_method(void **state) {
    tc_t *t = tc_ready(0);
    uint8_t hdr[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0};
    feed_frame(t, AMQP_FRAME_HEADER, 1, hdr, sizeof hdr);
    expect_conn_close(t, AMQP_REPLY_UNEXPECTED_FRAME);
    tc_free(t);
    /* a method where the body should be */
    t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_BASIC_PUBLISH};
    m.u.basic_publish.routing_key = amqp_cstr("q");
    feed_method(t, 1, &m);
    feed_frame(t, AMQP_FRAME_HEADER, 1, hdr, sizeof hdr);
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_QOS;
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_UNEXPECTED_FRAME);
    assert_int_equal(t->fake.publishes, 0);
    tc_free(t);
}

static void test_truncated_arguments(void **state) {
    tc_t *t = tc_ready(0);
    /* queue.declare: ticket, then a shortstr claiming 10 bytes, only 3 here */
    uint8_t p[] = {0, 50, 0, 10, 0, 0, 10, 'a', 'b', 'c'};
    feed_frame(t, AMQP_FRAME_METHOD, 1, p, sizeof p);
    expect_conn_close(t, AMQP_REPLY_SYNTAX_ERROR);
    assert_int_equal(t->fake.ops, 0);
    tc_free(t);
    /* trailing junk after the arguments is a syntax error too */
    t = tc_ready(0);
    uint8_t q[] = {0, 60, 0, 10, 0, 0, 0, 0, 0, 1, 0, 0xFF};
    feed_frame(t, AMQP_FRAME_METHOD, 1, q, sizeof q);
    expect_conn_close(t, AMQP_REPLY_SYNTAX_ERROR);
    tc_free(t);
}

static void test_closing_conn_ignores_input(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_CHANNEL_FLOW}; /* active=false: 540 */
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_NOT_IMPLEMENTED);
    /* anything but close-ok is dropped, close-ok ends it */
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_QOS;
    feed_method(t, 1, &m);
    expect_no_output(t);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_CLOSING);
    memset(&m, 0, sizeof m);
    m.id = AMQP_CONNECTION_CLOSE_OK;
    feed_method(t, 0, &m);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_CLOSED);
    tc_free(t);
}

/* ---- tests: operations ------------------------------------------------ */

static void test_publish_split_body(void **state) {
    tc_t *t = tc_ready(4096);
    uint8_t body[10000];
    for (size_t i = 0; i < sizeof body; i++) body[i] = (uint8_t)(i * 7);
    uint8_t tbl[256];
    amqp_wr_t w;
    amqp_wr_init(&w, tbl, sizeof tbl);
    size_t mark = amqp_wr_table_begin(&w);
    amqp_wr_field_str(&w, "x-trace", "abc");
    amqp_wr_table_end(&w, mark);
    amqp_basic_props_t props = {
        .flags = AMQP_PROP_CONTENT_TYPE | AMQP_PROP_HEADERS | AMQP_PROP_DELIVERY_MODE |
                 AMQP_PROP_MESSAGE_ID | AMQP_PROP_TIMESTAMP,
        .content_type = amqp_cstr("application/octet-stream"),
        .headers = {tbl + 4, w.len - 4},
        .delivery_mode = 2,
        .message_id = amqp_cstr("id-42"),
        .timestamp = 1700000000,
    };
    publish(t, 1, "work", 1, &props, body, sizeof body);
    assert_int_equal(t->fake.publishes, 1);
    assert_int_equal(t->fake.body_len, sizeof body);
    assert_memory_equal(t->fake.body, body, sizeof body);
    assert_string_equal(t->fake.routing_key, "work");
    assert_int_equal(t->fake.mandatory, 1);
    assert_int_equal(t->fake.last_seq, 0); /* no confirm mode */
    amqp_basic_props_t got;
    assert_int_equal(amqp_basic_props_decode(t->fake.props_raw, t->fake.props_raw_len, &got), 0);
    assert_int_equal(got.flags, props.flags);
    assert_true(amqp_bytes_eq(got.message_id, "id-42"));
    assert_int_equal(got.delivery_mode, 2);
    assert_int_equal(got.timestamp, 1700000000);
    amqp_field_t f;
    assert_int_equal(amqp_table_get(got.headers, "x-trace", &f), 1);
    assert_true(f.kind == 'S' && amqp_bytes_eq(f.v.bytes, "abc"));
    expect_no_output(t);
    /* a zero-length body completes at the header */
    publish(t, 1, "empty", 0, NULL, NULL, 0);
    assert_int_equal(t->fake.publishes, 2);
    assert_int_equal(t->fake.body_len, 0);
    tc_free(t);
}

static void test_publish_bad_content(void **state) {
    /* more body than announced */
    tc_t *t = tc_ready(4096);
    amqp_method_t m = {.id = AMQP_BASIC_PUBLISH};
    feed_method(t, 1, &m);
    uint8_t hdr[] = {0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0};
    feed_frame(t, AMQP_FRAME_HEADER, 1, hdr, sizeof hdr);
    feed_frame(t, AMQP_FRAME_BODY, 1, "abc", 3);
    expect_conn_close(t, AMQP_REPLY_FRAME_ERROR);
    assert_int_equal(t->fake.publishes, 0);
    tc_free(t);
    /* body above the configured maximum: channel-level 406, rest discarded */
    t = tc_ready(4096);
    feed_method(t, 1, &m);
    uint8_t big[] = {0, 60, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0};
    feed_frame(t, AMQP_FRAME_HEADER, 1, big, sizeof big);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    feed_frame(t, AMQP_FRAME_BODY, 1, "abc", 3); /* discarded while closing */
    expect_no_output(t);
    memset(&m, 0, sizeof m);
    m.id = AMQP_CHANNEL_CLOSE_OK;
    feed_method(t, 1, &m);
    open_channel(t, 1); /* the number is free again */
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    tc_free(t);
}

static void consume(tc_t *t, uint16_t ch, const char *tag, int no_ack, char *tag_out) {
    amqp_method_t m = {.id = AMQP_BASIC_CONSUME};
    m.u.basic_consume.queue = amqp_cstr("q1");
    m.u.basic_consume.consumer_tag = amqp_cstr(tag);
    m.u.basic_consume.no_ack = (uint8_t)no_ack;
    feed_method(t, ch, &m);
    expect_method(t, ch, AMQP_BASIC_CONSUME_OK, &m);
    if (m.u.basic_consume_ok.consumer_tag.len)
        memcpy(tag_out, m.u.basic_consume_ok.consumer_tag.ptr,
               m.u.basic_consume_ok.consumer_tag.len);
    tag_out[m.u.basic_consume_ok.consumer_tag.len] = '\0';
}

static void test_consume_deliver_ack(void **state) {
    tc_t *t = tc_ready(4096);
    char tag[256];
    consume(t, 1, "", 0, tag);
    assert_string_equal(tag, "amq.ctag-2a.1"); /* server-named, deterministic */
    assert_string_equal(t->fake.last_tag, tag);
    static uint8_t body[5000], got[5000];
    uint8_t store[4096];
    memset(body, 'x', sizeof body);
    amqp_basic_props_t props = {.flags = AMQP_PROP_CORRELATION_ID,
                                .correlation_id = amqp_cstr("c1")};
    for (uint64_t i = 0; i < 3; i++) {
        uint64_t dtag = 0;
        assert_int_equal(amqp_conn_deliver(t->conn, 1, amqp_cstr(tag), 500 + i, i == 2,
                                           amqp_cstr("ex"), amqp_cstr("rk"), &props,
                                           bytes_of(body, sizeof body), &dtag), 0);
        assert_int_equal(dtag, i + 1);
        amqp_method_t m;
        expect_method(t, 1, AMQP_BASIC_DELIVER, &m);
        assert_true(amqp_bytes_eq(m.u.basic_deliver.consumer_tag, tag));
        assert_int_equal(m.u.basic_deliver.delivery_tag, i + 1);
        assert_int_equal(m.u.basic_deliver.redelivered, i == 2);
        amqp_basic_props_t gp;
        assert_int_equal(read_content(t, 1, got, sizeof got, &gp, store), sizeof body);
        assert_memory_equal(got, body, sizeof body);
        assert_true(amqp_bytes_eq(gp.correlation_id, "c1"));
    }
    assert_int_equal(amqp_conn_unacked(t->conn, 1), 3);
    amqp_method_t a = {.id = AMQP_BASIC_ACK};
    a.u.basic_ack.delivery_tag = 2;
    a.u.basic_ack.multiple = 1;
    feed_method(t, 1, &a);
    assert_int_equal(t->fake.settled, 2);
    assert_int_equal(t->fake.settle_ref[0], 500);
    assert_int_equal(t->fake.settle_ref[1], 501);
    assert_int_equal(t->fake.settle_how[1], AMQP_SETTLE_ACK);
    amqp_method_t n = {.id = AMQP_BASIC_NACK};
    n.u.basic_nack.delivery_tag = 3;
    n.u.basic_nack.requeue = 1;
    feed_method(t, 1, &n);
    assert_int_equal(t->fake.settled, 3);
    assert_int_equal(t->fake.settle_ref[2], 502);
    assert_int_equal(t->fake.settle_how[2], AMQP_SETTLE_REQUEUE);
    assert_int_equal(amqp_conn_unacked(t->conn, 1), 0);
    expect_no_output(t);
    /* unknown consumer: refused */
    assert_int_equal(amqp_conn_deliver(t->conn, 1, amqp_cstr("nope"), 1, 0, amqp_cstr(""),
                                       amqp_cstr("rk"), NULL, amqp_cstr("x"), NULL),
                     IO_ENOENT);
    /* acking tag 3 twice: 406 PRECONDITION_FAILED on the channel */
    a.u.basic_ack.delivery_tag = 3;
    a.u.basic_ack.multiple = 0;
    feed_method(t, 1, &a);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    assert_int_equal(t->fake.channel_closed, 1);
    tc_free(t);
}

static void test_consumer_cancel_and_reuse(void **state) {
    tc_t *t = tc_ready(0);
    char tag[256];
    consume(t, 1, "c1", 1, tag);
    assert_string_equal(tag, "c1");
    /* no_ack deliveries are not tracked */
    assert_int_equal(amqp_conn_deliver(t->conn, 1, amqp_cstr("c1"), 9, 0, amqp_cstr(""),
                                       amqp_cstr("q1"), NULL, amqp_cstr("hi"), NULL), 0);
    expect_method(t, 1, AMQP_BASIC_DELIVER, NULL);
    assert_true(next_frame(t));
    assert_true(next_frame(t));
    assert_int_equal(amqp_conn_unacked(t->conn, 1), 0);
    amqp_method_t m = {.id = AMQP_BASIC_CANCEL};
    m.u.basic_cancel.consumer_tag = amqp_cstr("c1");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_BASIC_CANCEL_OK, &m);
    assert_true(amqp_bytes_eq(m.u.basic_cancel_ok.consumer_tag, "c1"));
    assert_int_equal(amqp_conn_deliver(t->conn, 1, amqp_cstr("c1"), 9, 0, amqp_cstr(""),
                                       amqp_cstr("q1"), NULL, amqp_cstr("hi"), NULL),
                     IO_ENOENT);
    /* server-initiated cancel */
    consume(t, 1, "c2", 0, tag);
    assert_int_equal(amqp_conn_cancel_consumer(t->conn, 1, amqp_cstr("c2")), 0);
    expect_method(t, 1, AMQP_BASIC_CANCEL, NULL);
    /* reusing a live tag is NOT_ALLOWED */
    consume(t, 1, "c3", 0, tag);
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_CONSUME;
    m.u.basic_consume.queue = amqp_cstr("q1");
    m.u.basic_consume.consumer_tag = amqp_cstr("c3");
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_NOT_ALLOWED);
    tc_free(t);
}

static void test_close_releases_unacked(void **state) {
    tc_t *t = tc_ready(0);
    char tag[256];
    consume(t, 1, "c", 0, tag);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(amqp_conn_deliver(t->conn, 1, amqp_cstr("c"), 70 + (uint64_t)i, 0,
                                           amqp_cstr(""), amqp_cstr("q"), NULL,
                                           amqp_cstr("m"), NULL), 0);
    }
    amqp_method_t m = {.id = AMQP_CHANNEL_CLOSE};
    m.u.channel_close.reply_code = 200;
    feed_method(t, 1, &m);
    assert_int_equal(t->fake.settled, 2);
    assert_int_equal(t->fake.settle_how[0], AMQP_SETTLE_RELEASED);
    assert_int_equal(t->fake.settle_ref[1], 71);
    assert_int_equal(t->fake.channel_closed, 1);
    for (int i = 0; i < 6; i++) assert_true(next_frame(t)); /* two deliveries */
    expect_method(t, 1, AMQP_CHANNEL_CLOSE_OK, NULL);
    /* the connection closing releases too */
    open_channel(t, 1);
    consume(t, 1, "c", 0, tag);
    assert_int_equal(amqp_conn_deliver(t->conn, 1, amqp_cstr("c"), 99, 0, amqp_cstr(""),
                                       amqp_cstr("q"), NULL, amqp_cstr("m"), NULL), 0);
    memset(&m, 0, sizeof m);
    m.id = AMQP_CONNECTION_CLOSE;
    m.u.connection_close.reply_code = 200;
    feed_method(t, 0, &m);
    assert_int_equal(t->fake.settled, 3);
    assert_int_equal(t->fake.settle_ref[2], 99);
    assert_int_equal(t->fake.settle_how[2], AMQP_SETTLE_RELEASED);
    assert_int_equal(t->fake.conn_closed, 1);
    assert_int_equal(amqp_conn_deliver(t->conn, 1, amqp_cstr("c"), 1, 0, amqp_cstr(""),
                                       amqp_cstr("q"), NULL, amqp_cstr("m"), NULL),
                     IO_ECANCELED);
    tc_free(t);
}

static void expect_confirm(tc_t *t, uint32_t id, uint64_t tag, int multiple) {
    amqp_method_t m;
    expect_method(t, 1, id, &m);
    if (id == AMQP_BASIC_ACK) {
        assert_int_equal(m.u.basic_ack.delivery_tag, tag);
        assert_int_equal(m.u.basic_ack.multiple, multiple);
    } else {
        assert_int_equal(m.u.basic_nack.delivery_tag, tag);
        assert_int_equal(m.u.basic_nack.multiple, multiple);
    }
}

static void test_confirms(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_CONFIRM_SELECT};
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_CONFIRM_SELECT_OK, NULL);
    for (int i = 0; i < 3; i++) {
        publish(t, 1, "q", 0, NULL, (const uint8_t *)"abc", 3);
        assert_int_equal(t->fake.last_seq, (uint64_t)i + 1);
    }
    expect_no_output(t);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 1, 0, 1), 0);
    expect_confirm(t, AMQP_BASIC_ACK, 1, 0);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 3, 1, 1), 0); /* 2 and 3 */
    expect_confirm(t, AMQP_BASIC_ACK, 3, 1);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 3, 0, 1), IO_ENOENT); /* twice */
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 9, 0, 1), IO_ENOENT); /* never */
    /* out of order: 5 before 4, then multiple over a hole -> singles */
    for (int i = 0; i < 3; i++) publish(t, 1, "q", 0, NULL, (const uint8_t *)"x", 1);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 5, 0, 0), 0);
    expect_confirm(t, AMQP_BASIC_NACK, 5, 0);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 6, 1, 1), 0);
    expect_confirm(t, AMQP_BASIC_ACK, 4, 0);
    expect_confirm(t, AMQP_BASIC_ACK, 6, 0);
    expect_no_output(t);
    /* in-order single confirms not yet read merge into one multiple ack, as
     * RabbitMQ sends them; a nack in between starts a new frame */
    for (int i = 0; i < 5; i++) publish(t, 1, "q", 0, NULL, (const uint8_t *)"x", 1);
    for (uint64_t s7 = 7; s7 <= 9; s7++) assert_int_equal(amqp_conn_confirm(t->conn, 1, s7, 0, 1), 0);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 10, 0, 0), 0);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 11, 0, 1), 0);
    expect_confirm(t, AMQP_BASIC_ACK, 9, 1);
    expect_confirm(t, AMQP_BASIC_NACK, 10, 0);
    expect_confirm(t, AMQP_BASIC_ACK, 11, 0);
    expect_no_output(t);
    /* not in confirm mode on another channel */
    open_channel(t, 2);
    assert_int_equal(amqp_conn_confirm(t->conn, 2, 1, 0, 1), IO_ENOENT);
    tc_free(t);
}

static void test_mandatory_return(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_CONFIRM_SELECT};
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_CONFIRM_SELECT_OK, NULL);
    publish(t, 1, "nowhere", 1, NULL, (const uint8_t *)"lost", 4);
    assert_int_equal(amqp_conn_return(t->conn, 1, AMQP_REPLY_NO_ROUTE, "NO_ROUTE",
                                      amqp_cstr(""), amqp_cstr("nowhere"), NULL,
                                      amqp_cstr("lost")), 0);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, t->fake.last_seq, 0, 1), 0);
    expect_method(t, 1, AMQP_BASIC_RETURN, &m);
    assert_int_equal(m.u.basic_return.reply_code, 312);
    assert_true(amqp_bytes_eq(m.u.basic_return.routing_key, "nowhere"));
    uint8_t body[16], store[256];
    assert_int_equal(read_content(t, 1, body, sizeof body, NULL, store), 4);
    expect_confirm(t, AMQP_BASIC_ACK, 1, 0);
    assert_int_equal(amqp_conn_return(t->conn, 7, 312, "x", amqp_cstr(""), amqp_cstr(""),
                                      NULL, amqp_cstr("")), IO_ENOENT);
    tc_free(t);
}

static void test_basic_get(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_BASIC_GET};
    m.u.basic_get.queue = amqp_cstr("q1");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_BASIC_GET_OK, &m);
    assert_int_equal(m.u.basic_get_ok.delivery_tag, 1);
    assert_int_equal(m.u.basic_get_ok.message_count, 4);
    uint8_t body[16], store[256];
    amqp_basic_props_t props;
    assert_int_equal(read_content(t, 1, body, sizeof body, &props, store), 5);
    assert_memory_equal(body, "hello", 5);
    assert_true(amqp_bytes_eq(props.message_id, "m-1"));
    assert_int_equal(amqp_conn_unacked(t->conn, 1), 1);
    t->fake.get_empty = 1;
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_GET;
    m.u.basic_get.queue = amqp_cstr("q1");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_BASIC_GET_EMPTY, NULL);
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_REJECT;
    m.u.basic_reject.delivery_tag = 1;
    m.u.basic_reject.requeue = 0;
    feed_method(t, 1, &m);
    assert_int_equal(t->fake.settled, 1);
    assert_int_equal(t->fake.settle_ref[0], 1001);
    assert_int_equal(t->fake.settle_how[0], AMQP_SETTLE_DROP);
    /* acking a tag never delivered */
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_ACK;
    m.u.basic_ack.delivery_tag = 5;
    m.u.basic_ack.multiple = 1;
    feed_method(t, 1, &m);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    tc_free(t);
}

static void test_queue_ops_and_server_names(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_QUEUE_DECLARE};
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_DECLARE_OK, &m);
    assert_true(amqp_bytes_eq(m.u.queue_declare_ok.queue, "amq.gen-2a.1"));
    assert_int_equal(m.u.queue_declare_ok.message_count, 7);
    assert_int_equal(m.u.queue_declare_ok.consumer_count, 1);
    assert_string_equal(t->fake.last_queue, "amq.gen-2a.1");
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_DECLARE;
    m.u.queue_declare.queue = amqp_cstr("");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_DECLARE_OK, &m);
    assert_true(amqp_bytes_eq(m.u.queue_declare_ok.queue, "amq.gen-2a.2"));
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_PURGE;
    m.u.queue_purge.queue = amqp_cstr("q");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_PURGE_OK, &m);
    assert_int_equal(m.u.queue_purge_ok.message_count, 3);
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_DELETE;
    m.u.queue_delete.queue = amqp_cstr("q");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_DELETE_OK, &m);
    assert_int_equal(m.u.queue_delete_ok.message_count, 2);
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_QOS;
    m.u.basic_qos.prefetch_count = 10;
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_BASIC_QOS_OK, NULL);
    /* nowait: no reply */
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_BIND;
    m.u.queue_bind.queue = amqp_cstr("q");
    m.u.queue_bind.exchange = amqp_cstr("amq.direct");
    m.u.queue_bind.nowait = 1;
    feed_method(t, 1, &m);
    expect_no_output(t);
    /* the backend has no queue.unbind: 540 */
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_UNBIND;
    m.u.queue_unbind.queue = amqp_cstr("q");
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_NOT_IMPLEMENTED);
    tc_free(t);
}

static void test_async_answers_keep_order(void **state) {
    tc_t *t = tc_ready(0);
    t->fake.defer = 1;
    uint8_t buf[1024];
    amqp_wr_t w;
    amqp_wr_init(&w, buf, sizeof buf);
    amqp_method_t d = {.id = AMQP_QUEUE_DECLARE};
    d.u.queue_declare.queue = amqp_cstr("jobs");
    d.u.queue_declare.durable = 1;
    size_t mark = amqp_wr_frame_begin(&w, AMQP_FRAME_METHOD, 1);
    amqp_method_encode(&d, &w);
    amqp_wr_frame_end(&w, mark);
    amqp_method_t b = {.id = AMQP_QUEUE_BIND};
    b.u.queue_bind.queue = amqp_cstr("jobs");
    b.u.queue_bind.exchange = amqp_cstr("amq.direct");
    mark = amqp_wr_frame_begin(&w, AMQP_FRAME_METHOD, 1);
    amqp_method_encode(&b, &w);
    amqp_wr_frame_end(&w, mark);
    feed(t, buf, w.len); /* both in one read: the bind waits behind the declare */
    assert_int_equal(t->fake.ops, 1);
    assert_int_equal(t->fake.last_method, AMQP_QUEUE_DECLARE);
    expect_no_output(t);
    uint64_t req = t->fake.last_req;
    assert_int_equal(amqp_conn_op_ok(t->conn, req), IO_EINVAL); /* wrong answer kind */
    assert_int_equal(amqp_conn_queue_ok(t->conn, req + 100, 0, 0), IO_ENOENT);
    assert_int_equal(amqp_conn_queue_ok(t->conn, req, 0, 0), 0);
    /* the declare-ok went out and the bind was dispatched */
    expect_method(t, 1, AMQP_QUEUE_DECLARE_OK, &d);
    assert_true(amqp_bytes_eq(d.u.queue_declare_ok.queue, "jobs"));
    assert_int_equal(t->fake.ops, 2);
    assert_int_equal(t->fake.last_method, AMQP_QUEUE_BIND);
    assert_int_equal(amqp_conn_op_ok(t->conn, t->fake.last_req), 0);
    expect_method(t, 1, AMQP_QUEUE_BIND_OK, NULL);
    assert_int_equal(amqp_conn_op_ok(t->conn, t->fake.last_req), IO_ENOENT); /* twice */
    tc_free(t);
}

static void test_backend_errors(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_EXCHANGE_DECLARE};
    m.u.exchange_declare.exchange = amqp_cstr("missing");
    m.u.exchange_declare.passive = 1;
    feed_method(t, 1, &m);
    amqp_method_t c;
    expect_method(t, 1, AMQP_CHANNEL_CLOSE, &c);
    assert_int_equal(c.u.channel_close.reply_code, AMQP_REPLY_NOT_FOUND);
    assert_int_equal(c.u.channel_close.class_id, 40);
    assert_int_equal(c.u.channel_close.method_id, 10);
    m.u.exchange_declare.exchange = amqp_cstr("other");
    feed_method(t, 1, &m); /* dropped: the channel is closing */
    expect_no_output(t);
    memset(&m, 0, sizeof m);
    m.id = AMQP_CHANNEL_CLOSE_OK;
    feed_method(t, 1, &m);
    open_channel(t, 1);
    /* exclusive queue held elsewhere: 405 */
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_DECLARE;
    m.u.queue_declare.queue = amqp_cstr("locked");
    m.u.queue_declare.exclusive = 1;
    feed_method(t, 1, &m);
    expect_channel_close(t, 1, AMQP_REPLY_RESOURCE_LOCKED);
    /* the client closing too (simultaneous close) settles it */
    memset(&m, 0, sizeof m);
    m.id = AMQP_CHANNEL_CLOSE;
    m.u.channel_close.reply_code = 200;
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_CHANNEL_CLOSE_OK, NULL);
    open_channel(t, 1);
    /* a backend that fails outright: 541 */
    memset(&m, 0, sizeof m);
    m.id = AMQP_EXCHANGE_DECLARE;
    m.u.exchange_declare.exchange = amqp_cstr("boom");
    m.u.exchange_declare.passive = 0;
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_INTERNAL_ERROR);
    tc_free(t);
}

static void test_heartbeats(void **state) {
    tc_t *t = tc_new(0, 1);
    handshake(t, 0, 10);
    uint64_t s = 1000000000ull;
    uint64_t next = amqp_conn_tick(t->conn, 0);
    assert_int_equal(next, 5 * s);
    amqp_conn_tick(t->conn, 5 * s);
    assert_true(next_frame(t));
    assert_int_equal(t->f.type, AMQP_FRAME_HEARTBEAT);
    assert_int_equal(t->f.size, 0);
    /* a client heartbeat keeps it alive */
    uint8_t hb[] = {8, 0, 0, 0, 0, 0, 0, 0xCE};
    feed(t, hb, sizeof hb);
    amqp_conn_tick(t->conn, 15 * s);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    /* then silence for two intervals */
    amqp_conn_tick(t->conn, 34 * s);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    amqp_conn_tick(t->conn, 35 * s);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_CLOSED);
    assert_int_equal(t->fake.conn_closed, 1);
    tc_free(t);
}

static void test_output_backpressure(void **state) {
    tc_t *t = tc_ready(0);
    char tag[256];
    consume(t, 1, "c", 1, tag);
    static uint8_t body[100000];
    int sent = 0;
    for (int i = 0; i < 100; i++) {
        int rc = amqp_conn_deliver(t->conn, 1, amqp_cstr("c"), 1, 0, amqp_cstr(""),
                                   amqp_cstr("q"), NULL, bytes_of(body, sizeof body), NULL);
        if (rc == IO_ENOMEM) break;
        assert_int_equal(rc, 0);
        sent++;
    }
    assert_true(sent > 5 && sent < 100);
    /* input waits too until the output drains */
    amqp_method_t m = {.id = AMQP_BASIC_QOS};
    uint8_t buf[64];
    amqp_wr_t w;
    amqp_wr_init(&w, buf, sizeof buf);
    size_t mark = amqp_wr_frame_begin(&w, AMQP_FRAME_METHOD, 1);
    amqp_method_encode(&m, &w);
    amqp_wr_frame_end(&w, mark);
    assert_int_equal(amqp_conn_feed(t->conn, buf, w.len), w.len); /* buffered */
    int ops = t->fake.ops;
    const uint8_t *out;
    size_t n = amqp_conn_output(t->conn, &out);
    amqp_conn_output_consume(t->conn, n);
    assert_int_equal(t->fake.ops, ops + 1); /* qos ran once the output drained */
    expect_method(t, 1, AMQP_BASIC_QOS_OK, NULL);
    tc_free(t);
}

/* ---- tests: codec --------------------------------------------------------- */

static void test_field_table_roundtrip(void **state) {
    uint8_t buf[1024];
    amqp_wr_t w;
    amqp_wr_init(&w, buf, sizeof buf);
    size_t outer = amqp_wr_table_begin(&w);
    amqp_field_t vals[] = {
        {.kind = 't', .v.u = 1},        {.kind = 'b', .v.i = -5},
        {.kind = 'B', .v.u = 250},      {.kind = 's', .v.i = -300},
        {.kind = 'u', .v.u = 60000},    {.kind = 'I', .v.i = -70000},
        {.kind = 'i', .v.u = 4000000000u}, {.kind = 'L', .v.u = UINT64_MAX - 1},
        {.kind = 'l', .v.i = INT64_MIN + 3}, {.kind = 'f', .v.f32 = 1.5f},
        {.kind = 'd', .v.f64 = -2.25},  {.kind = 'D', .v.decimal = {2, 12345}},
        {.kind = 'S', .v.bytes = {(const uint8_t *)"str", 3}},
        {.kind = 'x', .v.bytes = {(const uint8_t *)"\x00\x01", 2}},
        {.kind = 'T', .v.u = 1700000000}, {.kind = 'V'},
    };
    size_t nvals = sizeof vals / sizeof vals[0];
    for (size_t i = 0; i < nvals; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%zu", i);
        amqp_wr_shortstr(&w, amqp_cstr(key));
        amqp_wr_field(&w, &vals[i]);
    }
    /* nested: a table holding an array holding a table */
    amqp_wr_shortstr(&w, amqp_cstr("nest"));
    amqp_wr_u8(&w, 'F');
    size_t inner = amqp_wr_table_begin(&w);
    amqp_wr_shortstr(&w, amqp_cstr("arr"));
    amqp_wr_u8(&w, 'A');
    size_t arr = amqp_wr_table_begin(&w);
    amqp_field_t one = {.kind = 'I', .v.i = 1};
    amqp_wr_field(&w, &one);
    amqp_wr_u8(&w, 'F');
    size_t deep = amqp_wr_table_begin(&w);
    amqp_wr_field_bool(&w, "deep", 1);
    amqp_wr_table_end(&w, deep);
    amqp_wr_table_end(&w, arr);
    amqp_wr_table_end(&w, inner);
    amqp_wr_table_end(&w, outer);
    assert_int_equal(w.err, 0);

    amqp_rd_t r;
    amqp_rd_init(&r, buf, w.len);
    amqp_table_t t = amqp_rd_table(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.pos, w.len);
    /* iterate and re-encode: byte-identical */
    uint8_t again[1024];
    amqp_wr_t w2;
    amqp_wr_init(&w2, again, sizeof again);
    size_t m2 = amqp_wr_table_begin(&w2);
    amqp_table_iter_t it;
    amqp_table_iter_init(&it, t, 0);
    amqp_bytes_t key;
    amqp_field_t v;
    size_t i = 0;
    int rc;
    while ((rc = amqp_table_next(&it, &key, &v)) == 1) {
        if (i < nvals) {
            assert_int_equal(v.kind, vals[i].kind);
            if (v.kind == 'f') assert_true(v.v.f32 == 1.5f);
            else if (v.kind == 'd') assert_true(v.v.f64 == -2.25);
            else if (v.kind == 'D') assert_int_equal(v.v.decimal.value, 12345);
            else if (v.kind == 'S' || v.kind == 'x')
                assert_memory_equal(v.v.bytes.ptr, vals[i].v.bytes.ptr, vals[i].v.bytes.len);
            else if (v.kind != 'V') assert_int_equal(v.v.u, vals[i].v.u);
        }
        amqp_wr_shortstr(&w2, key);
        amqp_wr_field(&w2, &v);
        i++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(i, nvals + 1);
    amqp_wr_table_end(&w2, m2);
    assert_int_equal(w2.len, w.len);
    assert_memory_equal(again, buf, w.len);
    /* walk down to "deep" */
    amqp_field_t nest, a, d;
    assert_int_equal(amqp_table_get(t, "nest", &nest), 1);
    assert_int_equal(amqp_table_get(nest.v.table, "arr", &a), 1);
    assert_int_equal(a.kind, 'A');
    amqp_table_iter_init(&it, a.v.table, 1);
    assert_int_equal(amqp_table_next(&it, NULL, &v), 1);
    assert_int_equal(v.v.i, 1);
    assert_int_equal(amqp_table_next(&it, NULL, &v), 1);
    assert_int_equal(v.kind, 'F');
    assert_int_equal(amqp_table_get(v.v.table, "deep", &d), 1);
    assert_int_equal(d.v.u, 1);
    assert_int_equal(amqp_table_get(t, "absent", &d), 0);
}

/* A table nested `levels` deep (the outer table is level 1). */
static size_t nested_table(uint8_t *buf, size_t cap, unsigned levels) {
    amqp_wr_t w;
    amqp_wr_init(&w, buf, cap);
    size_t marks[64];
    for (unsigned i = 0; i < levels; i++) {
        marks[i] = amqp_wr_table_begin(&w);
        if (i + 1 < levels) {
            amqp_wr_shortstr(&w, amqp_cstr("n"));
            amqp_wr_u8(&w, 'F');
        }
    }
    for (unsigned i = levels; i-- > 0;) amqp_wr_table_end(&w, marks[i]);
    assert_int_equal(w.err, 0);
    return w.len;
}

static void test_field_table_depth_and_garbage(void **state) {
    uint8_t buf[1024];
    size_t n = nested_table(buf, sizeof buf, AMQP_TABLE_DEPTH_MAX);
    amqp_table_t t = {buf + 4, n - 4};
    assert_int_equal(amqp_table_validate(t, 0, 1), 0);
    n = nested_table(buf, sizeof buf, AMQP_TABLE_DEPTH_MAX + 1);
    t = (amqp_table_t){buf + 4, n - 4};
    assert_int_equal(amqp_table_validate(t, 0, 1), AMQP_E_DEPTH);
    amqp_rd_t r;
    amqp_rd_init(&r, buf, n);
    (void)amqp_rd_table(&r);
    assert_int_equal(r.err, AMQP_E_SYNTAX);
    /* unknown field kind, truncated value, truncated key */
    static const uint8_t bad1[] = {1, 'k', 'Z', 0};
    static const uint8_t bad2[] = {1, 'k', 'I', 0, 0};
    static const uint8_t bad3[] = {5, 'k'};
    static const uint8_t bad4[] = {1, 'k', 'S', 0xFF, 0xFF, 0xFF, 0xFF, 'a'};
    assert_int_equal(amqp_table_validate((amqp_table_t){bad1, sizeof bad1}, 0, 1), AMQP_E_SYNTAX);
    assert_int_equal(amqp_table_validate((amqp_table_t){bad2, sizeof bad2}, 0, 1), AMQP_E_SYNTAX);
    assert_int_equal(amqp_table_validate((amqp_table_t){bad3, sizeof bad3}, 0, 1), AMQP_E_SYNTAX);
    assert_int_equal(amqp_table_validate((amqp_table_t){bad4, sizeof bad4}, 0, 1), AMQP_E_SYNTAX);
    /* a connection refuses a too-deep table in arguments with 502 */
    tc_t *tc = tc_ready(0);
    n = nested_table(buf, sizeof buf, AMQP_TABLE_DEPTH_MAX + 1);
    amqp_method_t m = {.id = AMQP_QUEUE_DECLARE};
    m.u.queue_declare.queue = amqp_cstr("q");
    m.u.queue_declare.arguments = (amqp_table_t){buf + 4, n - 4};
    feed_method(tc, 1, &m);
    expect_conn_close(tc, AMQP_REPLY_SYNTAX_ERROR);
    tc_free(tc);
}

static void test_method_codec_roundtrip(void **state) {
    amqp_method_t ms[6];
    memset(ms, 0, sizeof ms);
    ms[0].id = AMQP_BASIC_DELIVER;
    ms[0].u.basic_deliver.consumer_tag = amqp_cstr("ctag");
    ms[0].u.basic_deliver.delivery_tag = 0x0102030405060708ull;
    ms[0].u.basic_deliver.redelivered = 1;
    ms[0].u.basic_deliver.exchange = amqp_cstr("ex");
    ms[0].u.basic_deliver.routing_key = amqp_cstr("rk");
    ms[1].id = AMQP_QUEUE_DECLARE;
    ms[1].u.queue_declare.queue = amqp_cstr("q");
    ms[1].u.queue_declare.durable = 1;
    ms[1].u.queue_declare.auto_delete = 1;
    ms[1].u.queue_declare.nowait = 1;
    ms[2].id = AMQP_BASIC_NACK;
    ms[2].u.basic_nack.delivery_tag = 77;
    ms[2].u.basic_nack.multiple = 1;
    ms[2].u.basic_nack.requeue = 0;
    ms[3].id = AMQP_CONNECTION_TUNE;
    ms[3].u.connection_tune.channel_max = 5;
    ms[3].u.connection_tune.frame_max = 8192;
    ms[3].u.connection_tune.heartbeat = 30;
    ms[4].id = AMQP_CHANNEL_CLOSE_OK;
    ms[5].id = AMQP_QUEUE_DECLARE_OK;
    ms[5].u.queue_declare_ok.queue = amqp_cstr("amq.gen-1");
    ms[5].u.queue_declare_ok.message_count = 3;
    ms[5].u.queue_declare_ok.consumer_count = 4;
    for (size_t k = 0; k < 6; k++) {
        uint8_t buf[512];
        amqp_wr_t w;
        amqp_wr_init(&w, buf, sizeof buf);
        assert_int_equal(amqp_method_encode(&ms[k], &w), 0);
        amqp_method_t back;
        assert_int_equal(amqp_method_decode(buf, w.len, &back), 0);
        assert_int_equal(back.id, ms[k].id);
        uint8_t buf2[512];
        amqp_wr_t w2;
        amqp_wr_init(&w2, buf2, sizeof buf2);
        assert_int_equal(amqp_method_encode(&back, &w2), 0);
        assert_int_equal(w2.len, w.len);
        assert_memory_equal(buf2, buf, w.len);
        /* every truncation is an error, never an over-read (ASan checks) */
        for (size_t cut = 0; cut < w.len; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, buf, cut);
            int rc = amqp_method_decode(copy, cut, &back);
            assert_true(rc == AMQP_E_SYNTAX);
            free(copy);
        }
        /* a too-small writer reports NOSPACE */
        amqp_wr_init(&w2, buf2, w.len - 1);
        assert_int_equal(amqp_method_encode(&ms[k], &w2), AMQP_E_NOSPACE);
    }
    assert_int_equal(ms[1].u.queue_declare.durable, 1);
    assert_string_equal(amqp_method_name(AMQP_BASIC_PUBLISH), "basic.publish");
    assert_true(amqp_method_has_content(AMQP_BASIC_PUBLISH));
    assert_false(amqp_method_has_content(AMQP_BASIC_ACK));
    assert_null(amqp_method_name(AMQP_METHOD_ID(60, 99)));
}

static void test_frame_parse(void **state) {
    uint8_t f[] = {8, 0, 0, 0, 0, 0, 0, 0xCE};
    amqp_frame_t fr;
    for (size_t n = 0; n < sizeof f; n++)
        assert_int_equal(amqp_frame_parse(f, n, 4096, &fr), 0);
    assert_int_equal(amqp_frame_parse(f, sizeof f, 4096, &fr), 8);
    assert_int_equal(fr.type, AMQP_FRAME_HEARTBEAT);
    uint8_t big[] = {1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(amqp_frame_parse(big, sizeof big, AMQP_FRAME_MAX_DEFAULT, &fr),
                     AMQP_E_FRAME_SIZE);
    f[7] = 0;
    assert_int_equal(amqp_frame_parse(f, sizeof f, 4096, &fr), AMQP_E_FRAME_END);
    f[0] = 4;
    assert_int_equal(amqp_frame_parse(f, sizeof f, 4096, &fr), AMQP_E_FRAME_TYPE);
}


/* ---- tests: conformance additions (issue 16) ----------------------------- */

/* A start-ok with mechanism AMQPLAIN: LOGIN/PASSWORD as a length-less table. */
static void amqplain_start_ok(raw_t *wire, const char *mech, const char *user,
                              const char *pass) {
    raw_t p = {0}, resp = {0};
    r16(&p, 10);
    r16(&p, 11);
    r32(&p, 0); /* empty client properties */
    rstr(&p, mech);
    rstr(&resp, "LOGIN");
    r8(&resp, 'S');
    rlong(&resp, user, (uint32_t)strlen(user));
    rstr(&resp, "PASSWORD");
    r8(&resp, 'S');
    rlong(&resp, pass, (uint32_t)strlen(pass));
    rlong(&p, resp.b, (uint32_t)resp.n);
    rstr(&p, "en_US");
    rframe(wire, 1, 0, &p);
}

static void test_amqplain_login(void **state) {
    tc_t *t = tc_new(0, 1);
    raw_t wire = {0};
    memcpy(wire.b, "AMQP\x00\x00\x09\x01", 8);
    wire.n = 8;
    amqplain_start_ok(&wire, "AMQPLAIN", "guest", "guest");
    feed(t, wire.b, wire.n);
    expect_method(t, 0, AMQP_CONNECTION_START, NULL);
    expect_method(t, 0, AMQP_CONNECTION_TUNE, NULL);
    assert_string_equal(amqp_conn_user(t->conn), "guest");
    tc_free(t);
    /* wrong password: refused with 403 */
    t = tc_new(0, 1);
    wire.n = 8;
    amqplain_start_ok(&wire, "AMQPLAIN", "guest", "wrong");
    feed(t, wire.b, wire.n);
    expect_method(t, 0, AMQP_CONNECTION_START, NULL);
    expect_conn_close(t, AMQP_REPLY_ACCESS_REFUSED);
    tc_free(t);
    /* a PLAIN-shaped response under AMQPLAIN is malformed: 403, no crash */
    t = tc_new(0, 1);
    wire.n = 8;
    pika_start_ok(&wire, "guest", "guest");
    feed(t, wire.b, 8);
    expect_method(t, 0, AMQP_CONNECTION_START, NULL);
    amqp_method_t m = {.id = AMQP_CONNECTION_START_OK};
    m.u.connection_start_ok.mechanism = amqp_cstr("AMQPLAIN");
    static const uint8_t plain[] = {0, 'g', 'u', 'e', 's', 't', 0, 'g', 'u', 'e', 's', 't'};
    m.u.connection_start_ok.response = bytes_of(plain, sizeof plain);
    m.u.connection_start_ok.locale = amqp_cstr("en_US");
    feed_method(t, 0, &m);
    expect_conn_close(t, AMQP_REPLY_ACCESS_REFUSED);
    tc_free(t);
    /* an unknown mechanism: 403 */
    t = tc_new(0, 1);
    wire.n = 8;
    amqplain_start_ok(&wire, "EXTERNAL", "guest", "guest");
    feed(t, wire.b, wire.n);
    expect_method(t, 0, AMQP_CONNECTION_START, NULL);
    expect_conn_close(t, AMQP_REPLY_ACCESS_REFUSED);
    tc_free(t);
}

static void test_qos_prefetch_size_refused(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_BASIC_QOS};
    m.u.basic_qos.prefetch_count = 5;
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_BASIC_QOS_OK, NULL);
    m.u.basic_qos.prefetch_size = 4096;
    feed_method(t, 1, &m);
    expect_conn_close(t, AMQP_REPLY_NOT_IMPLEMENTED);
    tc_free(t);
}

static void test_update_secret(void **state) {
    tc_t *t = tc_ready(0);
    amqp_method_t m = {.id = AMQP_CONNECTION_UPDATE_SECRET};
    m.u.connection_update_secret.new_secret = amqp_cstr("token");
    m.u.connection_update_secret.reason = amqp_cstr("refresh");
    feed_method(t, 0, &m);
    expect_method(t, 0, AMQP_CONNECTION_UPDATE_SECRET_OK, NULL);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    /* update-secret-ok is a server method: a client sending it is wrong */
    memset(&m, 0, sizeof m);
    m.id = AMQP_CONNECTION_UPDATE_SECRET_OK;
    feed_method(t, 0, &m);
    expect_conn_close(t, AMQP_REPLY_COMMAND_INVALID);
    tc_free(t);
}

static void simple(tc_t *t, uint16_t ch, uint32_t id) {
    amqp_method_t m;
    memset(&m, 0, sizeof m);
    m.id = id;
    feed_method(t, ch, &m);
}

static void deliver_one(tc_t *t, uint16_t ch, const char *tag, uint64_t ref) {
    uint64_t dtag = 0;
    assert_int_equal(amqp_conn_deliver(t->conn, ch, amqp_cstr(tag), ref, 0, amqp_cstr(""),
                                       amqp_cstr("q"), NULL, amqp_cstr("x"), &dtag), 0);
    expect_method(t, ch, AMQP_BASIC_DELIVER, NULL);
    uint8_t body[8], props[4096];
    read_content(t, ch, body, sizeof body, NULL, props);
}

static void consume_on(tc_t *t, uint16_t ch, const char *queue, const char *tag) {
    amqp_method_t m = {.id = AMQP_BASIC_CONSUME};
    m.u.basic_consume.queue = amqp_cstr(queue);
    m.u.basic_consume.consumer_tag = amqp_cstr(tag);
    feed_method(t, ch, &m);
    expect_method(t, ch, AMQP_BASIC_CONSUME_OK, NULL);
}

static void test_tx_commit_rollback(void **state) {
    tc_t *t = tc_ready(0);
    /* commit/rollback before select: 406 on the channel, connection fine */
    simple(t, 1, AMQP_TX_COMMIT);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    open_channel(t, 1);
    simple(t, 1, AMQP_TX_SELECT);
    expect_method(t, 1, AMQP_TX_SELECT_OK, NULL);
    /* a publish is held until commit */
    publish(t, 1, "q", 0, NULL, (const uint8_t *)"abc", 3);
    assert_int_equal(t->fake.publishes, 0);
    simple(t, 1, AMQP_TX_ROLLBACK);
    expect_method(t, 1, AMQP_TX_ROLLBACK_OK, NULL);
    simple(t, 1, AMQP_TX_COMMIT);
    expect_method(t, 1, AMQP_TX_COMMIT_OK, NULL); /* nothing to commit */
    assert_int_equal(t->fake.publishes, 0);       /* rolled back: never sent */
    /* commit: sent with a sequence; commit-ok only once the broker stored it */
    publish(t, 1, "q", 0, NULL, (const uint8_t *)"abc", 3);
    publish(t, 1, "q", 0, NULL, (const uint8_t *)"def", 3);
    simple(t, 1, AMQP_TX_COMMIT);
    assert_int_equal(t->fake.publishes, 2);
    assert_int_equal(t->fake.last_seq, 2);
    expect_no_output(t);
    simple(t, 1, AMQP_BASIC_QOS); /* input waits while commit-ok is owed */
    assert_int_equal(t->fake.ops, 0);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 1, 0, 1), 0);
    expect_no_output(t); /* no basic.ack in tx mode */
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 2, 0, 1), 0);
    expect_method(t, 1, AMQP_TX_COMMIT_OK, NULL);
    expect_method(t, 1, AMQP_BASIC_QOS_OK, NULL); /* the held qos went on */
    /* acks are held too: the backend hears of them at commit */
    consume_on(t, 1, "q", "c1");
    deliver_one(t, 1, "c1", 501);
    amqp_method_t a = {.id = AMQP_BASIC_ACK};
    a.u.basic_ack.delivery_tag = 1;
    feed_method(t, 1, &a);
    assert_int_equal(t->fake.settled, 0);
    simple(t, 1, AMQP_TX_COMMIT);
    expect_method(t, 1, AMQP_TX_COMMIT_OK, NULL);
    assert_int_equal(t->fake.settled, 1);
    assert_int_equal(t->fake.settle_ref[0], 501);
    assert_int_equal(t->fake.settle_how[0], AMQP_SETTLE_ACK);
    /* an unknown tag is refused at once, inside a transaction too */
    a.u.basic_ack.delivery_tag = 99;
    feed_method(t, 1, &a);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    /* confirm and tx exclude each other */
    open_channel(t, 2);
    simple(t, 2, AMQP_TX_SELECT);
    expect_method(t, 2, AMQP_TX_SELECT_OK, NULL);
    simple(t, 2, AMQP_CONFIRM_SELECT);
    expect_channel_close(t, 2, AMQP_REPLY_PRECONDITION_FAILED);
    simple(t, 2, AMQP_CHANNEL_CLOSE_OK);
    open_channel(t, 3);
    simple(t, 3, AMQP_CONFIRM_SELECT);
    expect_method(t, 3, AMQP_CONFIRM_SELECT_OK, NULL);
    simple(t, 3, AMQP_TX_SELECT);
    expect_channel_close(t, 3, AMQP_REPLY_PRECONDITION_FAILED);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    tc_free(t);
}

/* A backend that confirms from inside basic_publish: commit-ok still waits
 * until the whole transaction was handed over. */
static void test_tx_sync_backend(void **state) {
    tc_t *t = tc_ready(0);
    t->fake.confirm_sync = 1;
    simple(t, 1, AMQP_TX_SELECT);
    expect_method(t, 1, AMQP_TX_SELECT_OK, NULL);
    for (int i = 0; i < 3; i++) publish(t, 1, "q", 0, NULL, (const uint8_t *)"abc", 3);
    simple(t, 1, AMQP_TX_COMMIT);
    assert_int_equal(t->fake.publishes, 3);
    expect_method(t, 1, AMQP_TX_COMMIT_OK, NULL);
    expect_no_output(t); /* exactly one commit-ok */
    simple(t, 1, AMQP_TX_COMMIT); /* and the next commit works */
    expect_method(t, 1, AMQP_TX_COMMIT_OK, NULL);
    tc_free(t);
}

static void test_tx_refused_publish(void **state) {
    tc_t *t = tc_ready(0);
    simple(t, 1, AMQP_TX_SELECT);
    expect_method(t, 1, AMQP_TX_SELECT_OK, NULL);
    publish(t, 1, "q", 0, NULL, (const uint8_t *)"abc", 3);
    simple(t, 1, AMQP_TX_COMMIT);
    assert_int_equal(amqp_conn_confirm(t->conn, 1, 1, 0, 0), 0); /* nack */
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    tc_free(t);
}

static void test_current_queue(void **state) {
    tc_t *t = tc_ready(0);
    /* nothing declared yet: 404 on the channel */
    amqp_method_t m = {.id = AMQP_QUEUE_BIND};
    m.u.queue_bind.exchange = amqp_cstr("x");
    m.u.queue_bind.routing_key = amqp_cstr("k");
    feed_method(t, 1, &m);
    expect_channel_close(t, 1, AMQP_REPLY_NOT_FOUND);
    assert_int_equal(t->fake.ops, 0);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    open_channel(t, 1);
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_DECLARE;
    m.u.queue_declare.queue = amqp_cstr("q1");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_DECLARE_OK, NULL);
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_BIND;
    m.u.queue_bind.exchange = amqp_cstr("x");
    m.u.queue_bind.routing_key = amqp_cstr("k");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_BIND_OK, NULL);
    assert_string_equal(t->fake.op_queue, "q1");
    assert_string_equal(t->fake.op_key, "k");
    /* empty queue and key: the key is the queue's name too */
    m.u.queue_bind.routing_key = amqp_cstr("");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_BIND_OK, NULL);
    assert_string_equal(t->fake.op_key, "q1");
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_GET;
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_BASIC_GET_OK, NULL);
    uint8_t body[16], props[4096];
    read_content(t, 1, body, sizeof body, NULL, props);
    assert_string_equal(t->fake.op_queue, "q1");
    t->fake.op_queue[0] = '\0';
    consume_on(t, 1, "", "c1");
    assert_string_equal(t->fake.op_queue, "q1");
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_PURGE;
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_PURGE_OK, NULL);
    /* a server-named queue becomes current at once */
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_DECLARE;
    m.u.queue_declare.nowait = 1;
    feed_method(t, 1, &m);
    memset(&m, 0, sizeof m);
    m.id = AMQP_QUEUE_BIND;
    m.u.queue_bind.exchange = amqp_cstr("x");
    m.u.queue_bind.routing_key = amqp_cstr("k");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_BIND_OK, NULL);
    assert_true(strncmp(t->fake.op_queue, "amq.gen-", 8) == 0);
    /* the current queue is per channel */
    open_channel(t, 2);
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_GET;
    feed_method(t, 2, &m);
    expect_channel_close(t, 2, AMQP_REPLY_NOT_FOUND);
    tc_free(t);
}

static void args_table(uint8_t *buf, size_t cap, amqp_table_t *out, const char *key,
                       const char *val) {
    amqp_wr_t w;
    amqp_wr_init(&w, buf, cap);
    size_t mark = amqp_wr_table_begin(&w);
    amqp_wr_field_str(&w, key, val);
    amqp_wr_table_end(&w, mark);
    assert_int_equal(w.err, 0);
    *out = (amqp_table_t){buf + 4, w.len - 4};
}

static void test_unsupported_arguments_refused(void **state) {
    tc_t *t = tc_ready(0);
    uint8_t tbl[128];
    amqp_method_t m = {.id = AMQP_QUEUE_DECLARE};
    m.u.queue_declare.queue = amqp_cstr("q");
    args_table(tbl, sizeof tbl, &m.u.queue_declare.arguments, "x-message-ttl", "1000");
    feed_method(t, 1, &m);
    amqp_method_t r;
    expect_method(t, 1, AMQP_CHANNEL_CLOSE, &r);
    assert_int_equal(r.u.channel_close.reply_code, AMQP_REPLY_PRECONDITION_FAILED);
    char text[256];
    fake_copy(text, r.u.channel_close.reply_text);
    assert_non_null(strstr(text, "x-message-ttl"));
    assert_int_equal(t->fake.ops, 0); /* never reached the broker */
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    /* x-queue-type=classic is what we are: accepted */
    open_channel(t, 1);
    args_table(tbl, sizeof tbl, &m.u.queue_declare.arguments, "x-queue-type", "classic");
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_QUEUE_DECLARE_OK, NULL);
    args_table(tbl, sizeof tbl, &m.u.queue_declare.arguments, "x-queue-type", "quorum");
    feed_method(t, 1, &m);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    /* exchange arguments (alternate-exchange), auto-delete, internal */
    open_channel(t, 1);
    memset(&m, 0, sizeof m);
    m.id = AMQP_EXCHANGE_DECLARE;
    m.u.exchange_declare.exchange = amqp_cstr("x");
    m.u.exchange_declare.type = amqp_cstr("direct");
    args_table(tbl, sizeof tbl, &m.u.exchange_declare.arguments, "alternate-exchange", "ae");
    feed_method(t, 1, &m);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    open_channel(t, 1);
    m.u.exchange_declare.arguments = (amqp_table_t){NULL, 0};
    m.u.exchange_declare.auto_delete = 1;
    feed_method(t, 1, &m);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    open_channel(t, 1);
    m.u.exchange_declare.auto_delete = 0;
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_EXCHANGE_DECLARE_OK, NULL); /* plain one is fine */
    /* consumer arguments */
    memset(&m, 0, sizeof m);
    m.id = AMQP_BASIC_CONSUME;
    m.u.basic_consume.queue = amqp_cstr("q");
    args_table(tbl, sizeof tbl, &m.u.basic_consume.arguments, "x-priority", "1");
    feed_method(t, 1, &m);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    open_channel(t, 1);
    m.u.basic_consume.arguments = (amqp_table_t){NULL, 0};
    m.u.basic_consume.exclusive = 1; /* exclusive consumers reach the backend */
    feed_method(t, 1, &m);
    expect_method(t, 1, AMQP_BASIC_CONSUME_OK, NULL);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    tc_free(t);
}

static void test_message_size_limit(void **state) {
    tc_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    amqp_conn_config_t cfg = {.conn_id = 1, .loopback = 1, .body_size_max = 4000};
    amqp_backend_t be = fake_backend(&t->fake);
    t->conn = amqp_conn_new(&cfg, &be);
    t->fake.conn = t->conn;
    handshake(t, 0, 0);
    open_channel(t, 1);
    static uint8_t body[4001];
    /* exactly at the limit (properties count): stored */
    amqp_basic_props_t props = {.flags = AMQP_PROP_DELIVERY_MODE, .delivery_mode = 2};
    publish(t, 1, "q", 0, &props, body, 4000 - 3); /* flags u16 + mode u8 = 3 bytes */
    assert_int_equal(t->fake.publishes, 1);
    assert_int_equal(t->fake.body_len, 3997);
    /* one byte more: refused at the header, before any body byte */
    publish(t, 1, "q", 0, &props, body, 3998);
    assert_int_equal(t->fake.publishes, 1);
    expect_channel_close(t, 1, AMQP_REPLY_PRECONDITION_FAILED);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    open_channel(t, 1); /* the connection is still usable */
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    tc_free(t);
}

static void test_channel_error_after_the_fact(void **state) {
    tc_t *t = tc_ready(0);
    assert_int_equal(amqp_conn_channel_error(t->conn, 1, 200, "ok", 0), IO_EINVAL);
    assert_int_equal(amqp_conn_channel_error(t->conn, 5, 404, "x", 0), IO_ENOENT);
    consume_on(t, 1, "q", "c1");
    deliver_one(t, 1, "c1", 77);
    assert_int_equal(amqp_conn_channel_error(t->conn, 1, AMQP_REPLY_NOT_FOUND,
                                             "NOT_FOUND - no exchange 'nope' in vhost '/'",
                                             AMQP_BASIC_PUBLISH), 0);
    amqp_method_t r;
    expect_method(t, 1, AMQP_CHANNEL_CLOSE, &r);
    assert_int_equal(r.u.channel_close.reply_code, 404);
    assert_int_equal(r.u.channel_close.class_id, 60);
    assert_int_equal(r.u.channel_close.method_id, 40);
    /* the unacked delivery went back to the broker */
    assert_int_equal(t->fake.settled, 1);
    assert_int_equal(t->fake.settle_how[0], AMQP_SETTLE_RELEASED);
    simple(t, 1, AMQP_CHANNEL_CLOSE_OK);
    open_channel(t, 1);
    assert_int_equal(amqp_conn_state(t->conn), AMQP_CONN_S_RUNNING);
    tc_free(t);
}

static void test_server_cancel_notify(void **state) {
    tc_t *t = tc_ready(0);
    consume_on(t, 1, "q", "c1");
    deliver_one(t, 1, "c1", 9);
    assert_int_equal(amqp_conn_cancel_consumer(t->conn, 1, amqp_cstr("c1")), 0);
    amqp_method_t r;
    expect_method(t, 1, AMQP_BASIC_CANCEL, &r);
    assert_true(amqp_bytes_eq(r.u.basic_cancel.consumer_tag, "c1"));
    /* no more deliveries for it; its unacked one can still be acked */
    assert_int_equal(amqp_conn_deliver(t->conn, 1, amqp_cstr("c1"), 10, 0, amqp_cstr(""),
                                       amqp_cstr("q"), NULL, amqp_cstr("x"), NULL),
                     IO_ENOENT);
    assert_int_equal(amqp_conn_cancel_consumer(t->conn, 1, amqp_cstr("c1")), IO_ENOENT);
    amqp_method_t a = {.id = AMQP_BASIC_ACK};
    a.u.basic_ack.delivery_tag = 1;
    feed_method(t, 1, &a);
    assert_int_equal(t->fake.settled, 1);
    assert_int_equal(t->fake.settle_how[0], AMQP_SETTLE_ACK);
    tc_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_pika_bytes),
        cmocka_unit_test(test_handshake_auth_refused),
        cmocka_unit_test(test_handshake_user_table),
        cmocka_unit_test(test_wrong_protocol_header),
        cmocka_unit_test(test_handshake_bad_tune),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_bad_frame_end),
        cmocka_unit_test(test_oversized_frame),
        cmocka_unit_test(test_bad_frame_type),
        cmocka_unit_test(test_unknown_class_and_method),
        cmocka_unit_test(test_unopened_channel),
        cmocka_unit_test(test_content_without_method),
        cmocka_unit_test(test_truncated_arguments),
        cmocka_unit_test(test_closing_conn_ignores_input),
        cmocka_unit_test(test_publish_split_body),
        cmocka_unit_test(test_publish_bad_content),
        cmocka_unit_test(test_consume_deliver_ack),
        cmocka_unit_test(test_consumer_cancel_and_reuse),
        cmocka_unit_test(test_close_releases_unacked),
        cmocka_unit_test(test_confirms),
        cmocka_unit_test(test_mandatory_return),
        cmocka_unit_test(test_basic_get),
        cmocka_unit_test(test_queue_ops_and_server_names),
        cmocka_unit_test(test_async_answers_keep_order),
        cmocka_unit_test(test_backend_errors),
        cmocka_unit_test(test_amqplain_login),
        cmocka_unit_test(test_update_secret),
        cmocka_unit_test(test_qos_prefetch_size_refused),
        cmocka_unit_test(test_tx_commit_rollback),
        cmocka_unit_test(test_tx_refused_publish),
        cmocka_unit_test(test_tx_sync_backend),
        cmocka_unit_test(test_current_queue),
        cmocka_unit_test(test_unsupported_arguments_refused),
        cmocka_unit_test(test_message_size_limit),
        cmocka_unit_test(test_channel_error_after_the_fact),
        cmocka_unit_test(test_server_cancel_notify),
        cmocka_unit_test(test_heartbeats),
        cmocka_unit_test(test_output_backpressure),
        cmocka_unit_test(test_field_table_roundtrip),
        cmocka_unit_test(test_field_table_depth_and_garbage),
        cmocka_unit_test(test_method_codec_roundtrip),
        cmocka_unit_test(test_frame_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
