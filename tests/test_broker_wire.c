/*
 * tests/test_broker_wire.c — the wire format (broker/wire.h) and CRC32C.
 *
 * Bad inputs are built two ways: by mutating a valid frame and resealing it
 * (new length + CRC, so the check under test is the one that fires), and by
 * writing bodies byte by byte with a small builder that knows the layout
 * independently of broker/wire.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/crc32c.h"
#include "broker/wire.h"

/* ---- fixtures -------------------------------------------------------------- */

static const uint8_t all_types[] = {
    WIRE_MSG_REQUEST_VOTE,     WIRE_MSG_VOTE_RESPONSE,   WIRE_MSG_APPEND_ENTRIES,
    WIRE_MSG_APPEND_RESPONSE,  WIRE_MSG_INSTALL_SNAPSHOT, WIRE_MSG_SNAPSHOT_RESPONSE,
    WIRE_MSG_TIMEOUT_NOW,      WIRE_MSG_DECLARE_QUEUE,   WIRE_MSG_DECLARE_EXCHANGE,
    WIRE_MSG_BIND,             WIRE_MSG_PUBLISH,         WIRE_MSG_CONSUME,
    WIRE_MSG_CANCEL,           WIRE_MSG_ACK,             WIRE_MSG_NACK,
    WIRE_MSG_REJECT,           WIRE_MSG_HEARTBEAT,       WIRE_MSG_CONFIRM,
    WIRE_MSG_NACK_PUBLISH,     WIRE_MSG_NOT_LEADER,      WIRE_MSG_DELIVER,
    WIRE_MSG_REPLY,            WIRE_MSG_ERROR,           WIRE_MSG_GET,
    WIRE_MSG_PURGE_QUEUE,      WIRE_MSG_DELETE_QUEUE,    WIRE_MSG_UNBIND,
    WIRE_MSG_DELETE_EXCHANGE,  WIRE_MSG_EXCHANGE_BIND,   WIRE_MSG_EXCHANGE_UNBIND,
};
#define TYPES_COUNT (sizeof all_types / sizeof all_types[0])

enum { V_TYPICAL = 0, V_EMPTY = 1, V_MAX = 2, VARIANTS = 3 };

/* Pattern bytes every sample string/blob is cut from. */
static uint8_t blob[WIRE_ENTRY_PAYLOAD_SIZE_MAX + 1];

typedef struct sample {
    wire_msg_t msg;
    wire_entry_t entries[WIRE_ENTRIES_MAX + 1];
} sample_t;

static wire_bytes_t bytes_of(uint32_t len, uint32_t skew) {
    assert_true(skew + len <= sizeof blob);
    wire_bytes_t b = {blob + skew, len};
    return b;
}

/* A string of `len` for a variant: typical = short, empty = 0, max = max. */
static wire_bytes_t pick(int variant, uint32_t typical, uint32_t max, uint32_t skew) {
    uint32_t len = variant == V_TYPICAL ? typical : variant == V_EMPTY ? 0 : max;
    return bytes_of(len, variant == V_MAX ? 0 : skew);
}

/* u64 / u32 / flag values per variant. */
static uint64_t v64(int variant, uint64_t typical) {
    return variant == V_TYPICAL ? typical : variant == V_EMPTY ? 0 : UINT64_MAX;
}
static uint32_t v32(int variant, uint32_t typical) {
    return variant == V_TYPICAL ? typical : variant == V_EMPTY ? 0 : UINT32_MAX;
}
static uint8_t vflag(int variant) { return variant == V_EMPTY ? 0 : 1; }

static void fill_append_entries(sample_t *s, int variant) {
    wire_append_entries_t *m = &s->msg.append_entries;
    uint32_t count = variant == V_TYPICAL ? 3 : variant == V_EMPTY ? 0 : WIRE_ENTRIES_MAX;
    m->term = v64(variant, 7);
    m->leader_id = v32(variant, 2);
    m->prev_log_index = variant == V_MAX ? UINT64_MAX - count : v64(variant, 41);
    m->prev_log_term = v64(variant, 5);
    m->leader_commit = v64(variant, 40);
    m->entry_count = count;
    m->entries = s->entries;
    for (uint32_t i = 0; i < count; i++) {
        wire_entry_t *e = &s->entries[i];
        e->term = variant == V_MAX ? UINT64_MAX : 5 + (i > 0);
        e->index = m->prev_log_index + 1 + i;
        e->type = (uint8_t)(variant == V_MAX ? 255 : i);
        /* The max variant must fit WIRE_MESSAGE_SIZE_MAX with 1024 entries. */
        e->payload = bytes_of(variant == V_MAX ? 2048 : 10 * i, i);
    }
}

static void fill_peer(sample_t *s, int v) {
    wire_msg_t *m = &s->msg;
    switch (m->type) {
    case WIRE_MSG_REQUEST_VOTE:
        m->request_vote = (wire_request_vote_t){v64(v, 9), v32(v, 3), v64(v, 100),
                                                v64(v, 8), vflag(v)};
        break;
    case WIRE_MSG_VOTE_RESPONSE:
        m->vote_response = (wire_vote_response_t){v64(v, 9), v32(v, 1), vflag(v), vflag(v)};
        break;
    case WIRE_MSG_APPEND_ENTRIES: fill_append_entries(s, v); break;
    case WIRE_MSG_APPEND_RESPONSE:
        m->append_response = (wire_append_response_t){v64(v, 9), v32(v, 4), vflag(v),
                                                      v64(v, 50), v64(v, 33), v64(v, 6)};
        break;
    case WIRE_MSG_INSTALL_SNAPSHOT:
        m->install_snapshot = (wire_install_snapshot_t){
            v64(v, 9), v32(v, 2), v64(v, 1000), v64(v, 8), v64(v, 65536), vflag(v),
            pick(v, 300, WIRE_SNAPSHOT_CHUNK_MAX, 3)};
        break;
    case WIRE_MSG_SNAPSHOT_RESPONSE:
        m->snapshot_response = (wire_snapshot_response_t){v64(v, 9), v32(v, 5),
                                                          v64(v, 1000), v64(v, 70000), vflag(v)};
        break;
    case WIRE_MSG_TIMEOUT_NOW:
        m->timeout_now = (wire_timeout_now_t){v64(v, 9), v32(v, 1)};
        break;
    default: fail_msg("not a peer type %u", m->type);
    }
}

static void fill_request(sample_t *s, int v) {
    wire_msg_t *m = &s->msg;
    const uint32_t N = WIRE_NAME_SIZE_MAX;
    switch (m->type) {
    case WIRE_MSG_DECLARE_QUEUE:
        m->declare_queue = (wire_declare_queue_t){
            v64(v, 1), pick(v, 6, N, 1), vflag(v),
            v == V_MAX ? WIRE_QUEUE_FLAGS_ALL : v == V_EMPTY ? 0 : WIRE_QUEUE_EXCLUSIVE,
            v32(v, 5), pick(v, 3, N, 2)};
        break;
    case WIRE_MSG_DECLARE_EXCHANGE:
        m->declare_exchange = (wire_declare_exchange_t){
            v64(v, 2), pick(v, 4, N, 3),
            v == V_MAX ? WIRE_EXCHANGE_TOPIC : WIRE_EXCHANGE_DIRECT, vflag(v), vflag(v), vflag(v)};
        break;
    case WIRE_MSG_EXCHANGE_BIND:
    case WIRE_MSG_EXCHANGE_UNBIND:
        m->exchange_bind = (wire_bind_t){v64(v, 12), pick(v, 4, N, 1), pick(v, 5, N, 2),
                                         pick(v, 7, N, 3)};
        break;
    case WIRE_MSG_DELETE_EXCHANGE:
        m->delete_exchange = (wire_delete_exchange_t){v64(v, 11), pick(v, 5, N, 4), vflag(v)};
        break;
    case WIRE_MSG_BIND:
        m->bind = (wire_bind_t){v64(v, 3), pick(v, 4, N, 1), pick(v, 5, N, 2),
                                pick(v, 7, N, 3)};
        break;
    case WIRE_MSG_PUBLISH:
        m->publish = (wire_publish_t){v64(v, 4), v64(v, 77), v64(v, 12), v64(v, 770012),
                                      pick(v, 3, N, 1), pick(v, 5, N, 2), vflag(v),
                                      pick(v, 100, WIRE_BODY_SIZE_MAX, 4), vflag(v),
                                      pick(v, 30, WIRE_PROPERTIES_SIZE_MAX, 5)};
        break;
    case WIRE_MSG_GET:
        m->get = (wire_get_t){v64(v, 7), pick(v, 5, N, 1),
                              v == V_MAX ? WIRE_ACK_AUTO : WIRE_ACK_MANUAL};
        break;
    case WIRE_MSG_PURGE_QUEUE:
        m->purge_queue = (wire_purge_queue_t){v64(v, 8), pick(v, 5, N, 1)};
        break;
    case WIRE_MSG_DELETE_QUEUE:
        m->delete_queue = (wire_delete_queue_t){v64(v, 9), pick(v, 5, N, 1), vflag(v), vflag(v)};
        break;
    case WIRE_MSG_UNBIND:
        m->unbind = (wire_unbind_t){v64(v, 10), pick(v, 4, N, 1), pick(v, 5, N, 2),
                                    pick(v, 7, N, 3)};
        break;
    case WIRE_MSG_CONSUME:
        m->consume = (wire_consume_t){v64(v, 5), pick(v, 5, N, 1), v32(v, 10),
                                      v == V_MAX ? WIRE_ACK_AUTO : WIRE_ACK_MANUAL,
                                      pick(v, 8, N, 2), vflag(v)};
        break;
    case WIRE_MSG_CANCEL:
        m->cancel = (wire_cancel_t){v64(v, 6), pick(v, 8, N, 2)};
        break;
    case WIRE_MSG_ACK: m->ack = (wire_ack_t){v64(v, 11), vflag(v), v64(v, 5)}; break;
    case WIRE_MSG_NACK: m->nack = (wire_nack_t){v64(v, 12), vflag(v), vflag(v), v64(v, 5)}; break;
    case WIRE_MSG_REJECT: m->reject = (wire_reject_t){v64(v, 13), vflag(v), v64(v, 5)}; break;
    case WIRE_MSG_HEARTBEAT:
        m->heartbeat = (wire_heartbeat_t){v64(v, 99), v64(v, 123456789), v64(v, 4242)};
        break;
    default: fill_peer(s, v); break;
    }
}

static void fill(sample_t *s, uint8_t type, int v) {
    memset(s, 0, sizeof *s);
    wire_msg_t *m = &s->msg;
    m->type = type;
    const uint32_t N = WIRE_NAME_SIZE_MAX, D = WIRE_DETAIL_SIZE_MAX;
    switch (type) {
    case WIRE_MSG_CONFIRM:
        m->confirm = (wire_confirm_t){v64(v, 4), v64(v, 77), v64(v, 12), vflag(v), vflag(v)};
        break;
    case WIRE_MSG_NACK_PUBLISH:
        m->nack_publish = (wire_nack_publish_t){
            v64(v, 4), v64(v, 77), v64(v, 12),
            (uint16_t)(v == V_MAX ? WIRE_STATUS_COUNT - 1 : v == V_EMPTY ? 0 : WIRE_STATUS_TIMEOUT)};
        break;
    case WIRE_MSG_NOT_LEADER:
        m->not_leader = (wire_not_leader_t){v64(v, 4), v == V_MAX ? WIRE_NODE_NONE : v32(v, 2)};
        break;
    case WIRE_MSG_DELIVER:
        m->deliver = (wire_deliver_t){pick(v, 8, N, 2), v64(v, 31), v64(v, 770012),
                                      v64(v, 77), v64(v, 12), vflag(v), v32(v, 2),
                                      pick(v, 3, N, 1), pick(v, 5, N, 3),
                                      pick(v, 100, WIRE_BODY_SIZE_MAX, 4),
                                      pick(v, 30, WIRE_PROPERTIES_SIZE_MAX, 5), v32(v, 3)};
        break;
    case WIRE_MSG_REPLY:
        m->reply = (wire_reply_t){v64(v, 1), (uint16_t)(v == V_MAX ? WIRE_STATUS_PROTOCOL : 0),
                                  v64(v, 17), v32(v, 3), pick(v, 6, D, 1)};
        break;
    case WIRE_MSG_ERROR:
        m->error = (wire_error_t){v64(v, 1), (uint16_t)(v == V_EMPTY ? 0 : WIRE_STATUS_PROTOCOL),
                                  pick(v, 20, D, 2)};
        break;
    default: fill_request(s, v); break;
    }
}

/* ---- helpers ------------------------------------------------------------------ */

static uint8_t *frame_buf(void) {
    uint8_t *b = malloc(WIRE_MESSAGE_SIZE_MAX + 64);
    assert_non_null(b);
    return b;
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrite the length and CRC of a frame of `len` bytes so only the body
 * contents decide whether it decodes. */
static void reseal(uint8_t *f, size_t len) {
    put32(f + 4, (uint32_t)(len - WIRE_HEADER_SIZE));
    uint32_t crc = crc32c(f, 8);
    crc = crc32c_extend(crc, f + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
    put32(f + 8, crc);
}

/* Body builder: an independent statement of the layout. */
typedef struct tb {
    uint8_t b[8192];
    size_t len;
} tb_t;

static void tb_le(tb_t *t, uint64_t v, int size) {
    assert_true(t->len + (size_t)size <= sizeof t->b);
    for (int i = 0; i < size; i++) t->b[t->len++] = (uint8_t)(v >> (8 * i));
}
static void tb_str(tb_t *t, uint32_t len, uint8_t fillc) {
    tb_le(t, len, 4);
    assert_true(t->len + len <= sizeof t->b);
    memset(t->b + t->len, fillc, len);
    t->len += len;
}
/* Start a frame of `type`; the header is sealed by tb_seal. */
static void tb_start(tb_t *t, uint8_t type) {
    t->len = 0;
    tb_le(t, WIRE_MAGIC, 2);
    tb_le(t, WIRE_VERSION, 1);
    tb_le(t, type, 1);
    tb_le(t, 0, 4);
    tb_le(t, 0, 4);
}
static int tb_decode(tb_t *t) {
    reseal(t->b, t->len);
    wire_msg_t m;
    static wire_entry_t entries[WIRE_ENTRIES_MAX];
    return wire_decode(t->b, t->len, &m, entries, WIRE_ENTRIES_MAX);
}

static int encode_sample(const sample_t *s, uint8_t *buf) {
    int n = wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX);
    if (n < 0) fail_msg("encode %s: %s", wire_type_name(s->msg.type), wire_error_name(n));
    return n;
}

static int setup(void **state) {
    for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)(i * 31u + (i >> 8) + 7u);
    *state = NULL;
    return 0;
}

/* ---- CRC32C -------------------------------------------------------------------- */

/* The bitwise definition, to check the generated tables against. */
static uint32_t crc_ref(const uint8_t *p, size_t len) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static void test_crc32c_known_answer(void **state) {
    (void)state;
    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(NULL, 0), 0);
    /* RFC 3720 B.4: 32 bytes of zeros, and of 0xFF. */
    uint8_t z[32] = {0}, f[32];
    memset(f, 0xFF, sizeof f);
    assert_int_equal(crc32c(z, 32), 0x8A9136AAu);
    assert_int_equal(crc32c(f, 32), 0x62A8AB43u);
    /* Slice-by-8 vs bitwise at every length and alignment up to 300. */
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len <= 300; len++) {
            assert_int_equal(crc32c(blob + off, len), crc_ref(blob + off, len));
            size_t cut = len / 3;
            assert_int_equal(crc32c_extend(crc32c(blob + off, cut), blob + off + cut, len - cut),
                             crc_ref(blob + off, len));
        }
    }
}

static void test_crc32c_detects_change(void **state) {
    (void)state;
    uint8_t d[64];
    memcpy(d, blob, sizeof d);
    uint32_t good = crc32c(d, sizeof d);
    for (size_t bit = 0; bit < sizeof d * 8; bit++) {
        d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(crc32c(d, sizeof d), good);
        d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_not_equal(crc32c("123456780", 9), 0xE3069283u);
}

/* ---- round trips ---------------------------------------------------------------- */

static void roundtrip_one(const sample_t *s, uint8_t *buf, uint8_t *buf2, sample_t *out) {
    int n = encode_sample(s, buf);
    assert_int_equal(n, wire_encoded_size(&s->msg));
    assert_int_equal(wire_frame_size(buf, (size_t)n), n);
    int rc = wire_decode(buf, (size_t)n, &out->msg, out->entries, WIRE_ENTRIES_MAX);
    if (rc != 0) fail_msg("decode %s: %s", wire_type_name(s->msg.type), wire_error_name(rc));
    if (!wire_msg_equal(&s->msg, &out->msg)) fail_msg("mismatch %s", wire_type_name(s->msg.type));
    /* Canonical: re-encoding the decoded message gives the same bytes. */
    int n2 = wire_encode(&out->msg, buf2, WIRE_MESSAGE_SIZE_MAX);
    assert_int_equal(n2, n);
    assert_memory_equal(buf, buf2, (size_t)n);
}

static void test_roundtrip_every_type(void **state) {
    (void)state;
    uint8_t *buf = frame_buf(), *buf2 = frame_buf();
    sample_t *s = malloc(sizeof *s), *out = malloc(sizeof *out);
    assert_non_null(s);
    assert_non_null(out);
    for (size_t t = 0; t < TYPES_COUNT; t++) {
        for (int v = 0; v < VARIANTS; v++) {
            fill(s, all_types[t], v);
            roundtrip_one(s, buf, buf2, out);
        }
    }
    free(s), free(out), free(buf), free(buf2);
}

static void test_roundtrip_zero_copy(void **state) {
    (void)state;
    uint8_t *buf = frame_buf();
    sample_t s, out;
    fill(&s, WIRE_MSG_PUBLISH, V_TYPICAL);
    int n = encode_sample(&s, buf);
    assert_int_equal(wire_decode(buf, (size_t)n, &out.msg, NULL, 0), 0);
    const uint8_t *body = out.msg.publish.body.ptr;
    assert_true(body >= buf + WIRE_HEADER_SIZE && body + out.msg.publish.body.len <= buf + n);
    const uint8_t *props = out.msg.publish.properties.ptr;
    assert_true(props > body && props + out.msg.publish.properties.len == buf + n);
    /* An APPEND_ENTRIES heartbeat needs no entry storage. */
    fill(&s, WIRE_MSG_APPEND_ENTRIES, V_EMPTY);
    n = encode_sample(&s, buf);
    assert_int_equal(wire_decode(buf, (size_t)n, &out.msg, NULL, 0), 0);
    assert_int_equal(out.msg.append_entries.entry_count, 0);
    free(buf);
}

/* Three entries carrying a maximal payload each (a big replicated publish). */
static void test_roundtrip_max_payload_entries(void **state) {
    (void)state;
    uint8_t *buf = frame_buf(), *buf2 = frame_buf();
    sample_t *s = malloc(sizeof *s), *out = malloc(sizeof *out);
    fill(s, WIRE_MSG_APPEND_ENTRIES, V_TYPICAL);
    for (uint32_t i = 0; i < 3; i++) s->entries[i].payload = bytes_of(WIRE_ENTRY_PAYLOAD_SIZE_MAX, 0);
    roundtrip_one(s, buf, buf2, out);
    assert_int_equal(wire_encoded_size(&s->msg),
                     WIRE_HEADER_SIZE + 40 + 3 * wire_entry_encoded_size(&s->entries[0]));
    free(s), free(out), free(buf), free(buf2);
}

/* The layout pinned byte by byte (REQUEST_VOTE), so a change is deliberate. */
static void test_golden_bytes(void **state) {
    (void)state;
    wire_msg_t m = {.type = WIRE_MSG_REQUEST_VOTE};
    m.request_vote = (wire_request_vote_t){0x0102030405060708u, 0xA1A2A3A4u, 5, 6, 1};
    uint8_t buf[64];
    int n = wire_encode(&m, buf, sizeof buf);
    static const uint8_t want_head[8] = {'C', 'L', WIRE_VERSION, 1, 29, 0, 0, 0};
    static const uint8_t want_body[29] = {8, 7, 6, 5, 4, 3, 2, 1, 0xA4, 0xA3, 0xA2, 0xA1,
                                          5, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(n, 12 + 29);
    assert_memory_equal(buf, want_head, 8);
    assert_memory_equal(buf + 12, want_body, 29);
    /* The CRC covers header bytes [0, 8) followed by the body. */
    uint8_t all[37];
    memcpy(all, buf, 8), memcpy(all + 8, buf + 12, 29);
    assert_int_equal(get32(buf + 8), crc_ref(all, sizeof all));
}

static void test_encode_buffer_too_small(void **state) {
    (void)state;
    sample_t s;
    uint8_t buf[512];
    fill(&s, WIRE_MSG_DECLARE_QUEUE, V_TYPICAL);
    int n = wire_encoded_size(&s.msg);
    assert_true(n > 0 && (size_t)n <= sizeof buf);
    assert_int_equal(wire_encode(&s.msg, buf, (size_t)n - 1), WIRE_ENOBUFS);
    assert_int_equal(wire_encode(&s.msg, NULL, 0), WIRE_ENOBUFS);
    assert_int_equal(wire_encode(&s.msg, buf, (size_t)n), n);
}

/* ---- truncation, corruption, framing ------------------------------------------- */

static void test_truncated_every_prefix(void **state) {
    (void)state;
    uint8_t *buf = frame_buf(), *cut = frame_buf();
    sample_t *s = malloc(sizeof *s), *out = malloc(sizeof *out);
    for (size_t t = 0; t < TYPES_COUNT; t++) {
        for (int v = 0; v < VARIANTS; v++) {
            fill(s, all_types[t], v);
            int n = encode_sample(s, buf);
            /* Frame cut short: the header's length gives it away. */
            for (int len = 0; len < n; len++) {
                int rc = wire_decode(buf, (size_t)len, &out->msg, out->entries, WIRE_ENTRIES_MAX);
                assert_int_equal(rc, WIRE_ETRUNCATED);
            }
            if (v == V_MAX) continue; /* body cuts below are O(n^2) in CRC work */
            /* Body cut short but resealed: the field parser must notice. */
            for (int len = WIRE_HEADER_SIZE; len < n; len++) {
                memcpy(cut, buf, (size_t)len);
                reseal(cut, (size_t)len);
                int rc = wire_decode(cut, (size_t)len, &out->msg, out->entries, WIRE_ENTRIES_MAX);
                if (rc != WIRE_ETRUNCATED) {
                    fail_msg("%s cut at %d: %s", wire_type_name(all_types[t]), len,
                             wire_error_name(rc));
                }
            }
        }
    }
    free(s), free(out), free(buf), free(cut);
}

static void test_every_bit_flip_rejected(void **state) {
    (void)state;
    uint8_t buf[4096];
    sample_t s, out;
    for (size_t t = 0; t < TYPES_COUNT; t++) {
        fill(&s, all_types[t], V_TYPICAL);
        int n = wire_encode(&s.msg, buf, sizeof buf);
        assert_true(n > 0);
        for (int bit = 0; bit < n * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = wire_decode(buf, (size_t)n, &out.msg, out.entries, WIRE_ENTRIES_MAX);
            if (rc >= 0) fail_msg("%s: flip of bit %d accepted", wire_type_name(all_types[t]), bit);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* Body bits are caught by the CRC itself. */
        buf[n - 1] ^= 0x10;
        assert_int_equal(wire_decode(buf, (size_t)n, &out.msg, out.entries, 8), WIRE_ECRC);
    }
}

static void test_bad_magic_version_type(void **state) {
    (void)state;
    uint8_t buf[256];
    sample_t s, out;
    fill(&s, WIRE_MSG_ACK, V_TYPICAL);
    int n = encode_sample(&s, buf);
    assert_int_equal(wire_decode(buf, (size_t)n, &out.msg, NULL, 0), 0);
    buf[0] ^= 1;
    reseal(buf, (size_t)n);
    assert_int_equal(wire_decode(buf, (size_t)n, &out.msg, NULL, 0), WIRE_EMAGIC);
    assert_int_equal(wire_frame_size(buf, (size_t)n), WIRE_EMAGIC);
    buf[0] ^= 1;
    buf[2] = WIRE_VERSION + 1;
    reseal(buf, (size_t)n);
    assert_int_equal(wire_decode(buf, (size_t)n, &out.msg, NULL, 0), WIRE_EVERSION);
    assert_int_equal(wire_frame_size(buf, (size_t)n), WIRE_EVERSION);
    buf[2] = WIRE_VERSION;
    /* Every unknown type byte, resealed so only the type check can fire. */
    int unknown = 0;
    for (unsigned type = 0; type < 256; type++) {
        if (strcmp(wire_type_name(type), "UNKNOWN") != 0) continue;
        buf[3] = (uint8_t)type;
        reseal(buf, (size_t)n);
        assert_int_equal(wire_decode(buf, (size_t)n, &out.msg, NULL, 0), WIRE_ETYPE);
        unknown++;
    }
    assert_int_equal(unknown, 256 - (int)TYPES_COUNT);
    wire_msg_t bad = {.type = 99};
    assert_int_equal(wire_encode(&bad, buf, sizeof buf), WIRE_ETYPE);
    assert_int_equal(wire_encoded_size(&bad), WIRE_ETYPE);
}

static void test_trailing_garbage(void **state) {
    (void)state;
    uint8_t buf[256];
    sample_t s, out;
    fill(&s, WIRE_MSG_CANCEL, V_TYPICAL);
    int n = encode_sample(&s, buf);
    buf[n] = 0;
    /* A byte after the frame. */
    assert_int_equal(wire_decode(buf, (size_t)n + 1, &out.msg, NULL, 0), WIRE_ETRAILING);
    /* A byte after the last field, inside a resealed body. */
    reseal(buf, (size_t)n + 1);
    assert_int_equal(wire_decode(buf, (size_t)n + 1, &out.msg, NULL, 0), WIRE_ETRAILING);
}

static void test_frame_size(void **state) {
    (void)state;
    uint8_t buf[256];
    sample_t s;
    fill(&s, WIRE_MSG_HEARTBEAT, V_TYPICAL);
    int n = encode_sample(&s, buf);
    for (size_t len = 0; len < WIRE_HEADER_SIZE; len++) assert_int_equal(wire_frame_size(buf, len), 0);
    assert_int_equal(wire_frame_size(buf, WIRE_HEADER_SIZE), n);
    put32(buf + 4, WIRE_MESSAGE_SIZE_MAX);
    assert_int_equal(wire_frame_size(buf, WIRE_HEADER_SIZE), WIRE_ETOOLARGE);
    wire_msg_t m;
    assert_int_equal(wire_decode(buf, (size_t)n, &m, NULL, 0), WIRE_ETOOLARGE);
}

/* ---- limits ------------------------------------------------------------------- */

static void test_oversized_fields_encode(void **state) {
    (void)state;
    uint8_t *buf = frame_buf();
    sample_t *s = malloc(sizeof *s);
    fill(s, WIRE_MSG_DECLARE_QUEUE, V_TYPICAL);
    s->msg.declare_queue.name = bytes_of(WIRE_NAME_SIZE_MAX + 1, 0);
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_EOVERSIZE);
    fill(s, WIRE_MSG_DECLARE_QUEUE, V_TYPICAL);
    s->msg.declare_queue.dlq = bytes_of(WIRE_NAME_SIZE_MAX + 1, 0);
    assert_int_equal(wire_encoded_size(&s->msg), WIRE_EOVERSIZE);
    fill(s, WIRE_MSG_PUBLISH, V_TYPICAL);
    s->msg.publish.body = bytes_of(WIRE_BODY_SIZE_MAX + 1, 0);
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_EOVERSIZE);
    fill(s, WIRE_MSG_DELIVER, V_TYPICAL);
    s->msg.deliver.routing_key = bytes_of(WIRE_NAME_SIZE_MAX + 1, 0);
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_EOVERSIZE);
    fill(s, WIRE_MSG_ERROR, V_TYPICAL);
    s->msg.error.detail = bytes_of(WIRE_DETAIL_SIZE_MAX + 1, 0);
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_EOVERSIZE);
    fill(s, WIRE_MSG_INSTALL_SNAPSHOT, V_TYPICAL);
    s->msg.install_snapshot.data = bytes_of(WIRE_SNAPSHOT_CHUNK_MAX + 1, 0);
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_EOVERSIZE);
    fill(s, WIRE_MSG_APPEND_ENTRIES, V_TYPICAL);
    s->msg.append_entries.entries = s->entries;
    s->entries[1].payload = bytes_of(WIRE_ENTRY_PAYLOAD_SIZE_MAX + 1, 0);
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_EOVERSIZE);
    /* Each entry within limits, the frame over WIRE_MESSAGE_SIZE_MAX. */
    fill(s, WIRE_MSG_APPEND_ENTRIES, V_TYPICAL);
    s->msg.append_entries.entry_count = 4;
    for (uint32_t i = 0; i < 4; i++) {
        s->entries[i] = (wire_entry_t){6, 42 + i, 0, bytes_of(WIRE_ENTRY_PAYLOAD_SIZE_MAX, 0)};
    }
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_ETOOLARGE);
    assert_int_equal(wire_encoded_size(&s->msg), WIRE_ETOOLARGE);
    /* NULL bytes with a length is a caller bug the encoder refuses. */
    fill(s, WIRE_MSG_CANCEL, V_TYPICAL);
    s->msg.cancel.consumer_tag = (wire_bytes_t){NULL, 3};
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_EFIELD);
    free(s), free(buf);
}

static void test_oversized_fields_decode(void **state) {
    (void)state;
    tb_t t;
    /* DECLARE_EXCHANGE with a 255-byte name decodes; 256 does not. */
    for (uint32_t len = WIRE_NAME_SIZE_MAX; len <= WIRE_NAME_SIZE_MAX + 1; len++) {
        tb_start(&t, WIRE_MSG_DECLARE_EXCHANGE);
        tb_le(&t, 1, 8), tb_str(&t, len, 'x'), tb_le(&t, WIRE_EXCHANGE_FANOUT, 1), tb_le(&t, 0, 1);
        tb_le(&t, 0, 1), tb_le(&t, 0, 1); /* passive, internal */
        assert_int_equal(tb_decode(&t), len == WIRE_NAME_SIZE_MAX ? 0 : WIRE_EOVERSIZE);
    }
    /* ERROR detail just over its limit. */
    tb_start(&t, WIRE_MSG_ERROR);
    tb_le(&t, 1, 8), tb_le(&t, 0, 2), tb_str(&t, WIRE_DETAIL_SIZE_MAX + 1, 'd');
    assert_int_equal(tb_decode(&t), WIRE_EOVERSIZE);
    /* A PUBLISH whose body length claims more than the limit (bytes absent:
     * the limit check comes first, before any read). */
    tb_start(&t, WIRE_MSG_PUBLISH);
    tb_le(&t, 1, 8), tb_le(&t, 2, 8), tb_le(&t, 3, 8), tb_le(&t, 4, 8);
    tb_str(&t, 0, 0), tb_str(&t, 1, 'q'), tb_le(&t, 1, 1), tb_le(&t, WIRE_BODY_SIZE_MAX + 1, 4);
    assert_int_equal(tb_decode(&t), WIRE_EOVERSIZE);
    /* A length prefix of 0xFFFFFFFF must not wrap any bound check. */
    tb_start(&t, WIRE_MSG_CANCEL);
    tb_le(&t, 1, 8), tb_le(&t, UINT32_MAX, 4);
    assert_int_equal(tb_decode(&t), WIRE_EOVERSIZE);
    /* Snapshot chunk and entry payload over their limits. */
    tb_start(&t, WIRE_MSG_INSTALL_SNAPSHOT);
    tb_le(&t, 1, 8), tb_le(&t, 1, 4), tb_le(&t, 1, 8), tb_le(&t, 1, 8), tb_le(&t, 0, 8);
    tb_le(&t, 0, 1), tb_le(&t, WIRE_SNAPSHOT_CHUNK_MAX + 1, 4);
    assert_int_equal(tb_decode(&t), WIRE_EOVERSIZE);
    tb_start(&t, WIRE_MSG_APPEND_ENTRIES);
    tb_le(&t, 2, 8), tb_le(&t, 1, 4), tb_le(&t, 0, 8), tb_le(&t, 0, 8), tb_le(&t, 0, 8);
    tb_le(&t, 1, 4), tb_le(&t, 1, 8), tb_le(&t, 1, 8), tb_le(&t, 0, 1);
    tb_le(&t, WIRE_ENTRY_PAYLOAD_SIZE_MAX + 1, 4);
    assert_int_equal(tb_decode(&t), WIRE_EOVERSIZE);
}

/* Builds APPEND_ENTRIES (term 2, prev 0/0) with `count` declared entries of
 * which `present` are written, entry i = {term, index}. */
static void tb_append(tb_t *t, uint32_t count, uint32_t present, const uint64_t (*ti)[2]) {
    tb_start(t, WIRE_MSG_APPEND_ENTRIES);
    tb_le(t, 2, 8), tb_le(t, 1, 4), tb_le(t, 0, 8), tb_le(t, 0, 8), tb_le(t, 0, 8);
    tb_le(t, count, 4);
    for (uint32_t i = 0; i < present; i++) {
        tb_le(t, ti[i][0], 8), tb_le(t, ti[i][1], 8), tb_le(t, 0, 1), tb_str(t, 2, 'p');
    }
}

static void test_entries_count_limit(void **state) {
    (void)state;
    uint8_t *buf = frame_buf();
    sample_t *s = malloc(sizeof *s), *out = malloc(sizeof *out);
    /* Encode: one entry over the max. */
    fill(s, WIRE_MSG_APPEND_ENTRIES, V_MAX);
    s->msg.append_entries.prev_log_index = 0;
    s->msg.append_entries.prev_log_term = 0;
    s->msg.append_entries.entry_count = WIRE_ENTRIES_MAX + 1;
    for (uint32_t i = 0; i <= WIRE_ENTRIES_MAX; i++) {
        s->entries[i] = (wire_entry_t){1, 1 + i, 0, bytes_of(1, 0)};
    }
    assert_int_equal(wire_encode(&s->msg, buf, WIRE_MESSAGE_SIZE_MAX), WIRE_ETOOMANY);
    /* Decode: a count over the max is refused before any entry is read. */
    tb_t t;
    tb_append(&t, WIRE_ENTRIES_MAX + 1, 0, NULL);
    assert_int_equal(tb_decode(&t), WIRE_ETOOMANY);
    tb_append(&t, UINT32_MAX, 0, NULL);
    assert_int_equal(tb_decode(&t), WIRE_ETOOMANY);
    /* Decode: valid count, but more than the caller's storage. */
    fill(s, WIRE_MSG_APPEND_ENTRIES, V_TYPICAL); /* 3 entries */
    int n = encode_sample(s, buf);
    assert_int_equal(wire_decode(buf, (size_t)n, &out->msg, out->entries, 2), WIRE_ETOOMANY);
    assert_int_equal(wire_decode(buf, (size_t)n, &out->msg, NULL, 0), WIRE_ETOOMANY);
    assert_int_equal(wire_decode(buf, (size_t)n, &out->msg, out->entries, 3), 0);
    assert_true(out->msg.append_entries.entries == out->entries);
    free(s), free(out), free(buf);
}

static void test_entries_must_be_contiguous(void **state) {
    (void)state;
    tb_t t;
    static const uint64_t good[2][2] = {{1, 1}, {2, 2}};
    static const uint64_t gap[2][2] = {{1, 1}, {1, 3}};
    static const uint64_t back[2][2] = {{2, 1}, {1, 2}};
    static const uint64_t future[1][2] = {{3, 1}}; /* term 3 > message term 2 */
    tb_append(&t, 2, 2, good);
    assert_int_equal(tb_decode(&t), 0);
    tb_append(&t, 2, 2, gap);
    assert_int_equal(tb_decode(&t), WIRE_EFIELD);
    tb_append(&t, 2, 2, back);
    assert_int_equal(tb_decode(&t), WIRE_EFIELD);
    tb_append(&t, 1, 1, future);
    assert_int_equal(tb_decode(&t), WIRE_EFIELD);
    /* The encoder refuses the same batches. */
    uint8_t buf[1024];
    wire_entry_t e[2] = {{1, 1, 0, {NULL, 0}}, {1, 3, 0, {NULL, 0}}};
    wire_msg_t m = {.type = WIRE_MSG_APPEND_ENTRIES};
    m.append_entries = (wire_append_entries_t){2, 1, 0, 0, 0, 2, e};
    assert_int_equal(wire_encode(&m, buf, sizeof buf), WIRE_EFIELD);
    e[1].index = 2;
    assert_true(wire_encode(&m, buf, sizeof buf) > 0);
    /* Indexes would wrap past UINT64_MAX. */
    m.append_entries.prev_log_index = UINT64_MAX - 1;
    e[0].index = UINT64_MAX, e[1].index = 0;
    assert_int_equal(wire_encode(&m, buf, sizeof buf), WIRE_EFIELD);
    m.append_entries.entries = NULL;
    m.append_entries.prev_log_index = 0;
    assert_int_equal(wire_encode(&m, buf, sizeof buf), WIRE_EFIELD);
}

/* ---- flags and enums --------------------------------------------------------- */

/* Encode `s`, set body byte `off` to `val`, reseal, decode. */
static int decode_patched(const sample_t *s, size_t off, uint8_t val) {
    uint8_t buf[1024];
    wire_msg_t m;
    wire_entry_t entries[8];
    int n = wire_encode(&s->msg, buf, sizeof buf);
    assert_true(n > 0 && WIRE_HEADER_SIZE + off < (size_t)n);
    buf[WIRE_HEADER_SIZE + off] = val;
    reseal(buf, (size_t)n);
    return wire_decode(buf, (size_t)n, &m, entries, 8);
}

static void test_bad_flags(void **state) {
    (void)state;
    sample_t s;
    uint8_t buf[1024];
    fill(&s, WIRE_MSG_ACK, V_TYPICAL); /* tag u64, multiple at body offset 8 */
    assert_int_equal(decode_patched(&s, 8, 0), 0);
    assert_int_equal(decode_patched(&s, 8, 2), WIRE_EFLAG);
    assert_int_equal(decode_patched(&s, 8, 0xFF), WIRE_EFLAG);
    s.msg.ack.multiple = 2;
    assert_int_equal(wire_encode(&s.msg, buf, sizeof buf), WIRE_EFLAG);
    fill(&s, WIRE_MSG_REQUEST_VOTE, V_TYPICAL); /* pre_vote at 28 */
    assert_int_equal(decode_patched(&s, 28, 7), WIRE_EFLAG);
    s.msg.request_vote.pre_vote = 7;
    assert_int_equal(wire_encoded_size(&s.msg), WIRE_EFLAG);
    fill(&s, WIRE_MSG_PUBLISH, V_TYPICAL); /* ids 32, "exchange"(3) 7, key(5) 9 */
    assert_int_equal(decode_patched(&s, 48, 1), 0);
    assert_int_equal(decode_patched(&s, 48, 3), WIRE_EFLAG);
}

static void test_bad_enums(void **state) {
    (void)state;
    sample_t s;
    uint8_t buf[1024];
    /* DECLARE_EXCHANGE: id 8, name(4) 8, kind at 16. */
    fill(&s, WIRE_MSG_DECLARE_EXCHANGE, V_TYPICAL);
    assert_int_equal(decode_patched(&s, 16, WIRE_EXCHANGE_FANOUT), 0);
    assert_int_equal(decode_patched(&s, 16, 0), WIRE_EFIELD);
    assert_int_equal(decode_patched(&s, 16, 4), WIRE_EFIELD);
    s.msg.declare_exchange.kind = 0;
    assert_int_equal(wire_encode(&s.msg, buf, sizeof buf), WIRE_EFIELD);
    /* CONSUME: id 8, queue(5) 9, prefetch 4, ack_mode at 21. */
    fill(&s, WIRE_MSG_CONSUME, V_TYPICAL);
    assert_int_equal(decode_patched(&s, 21, WIRE_ACK_AUTO), 0);
    assert_int_equal(decode_patched(&s, 21, 3), WIRE_EFIELD);
    s.msg.consume.ack_mode = 0;
    assert_int_equal(wire_encode(&s.msg, buf, sizeof buf), WIRE_EFIELD);
    /* DECLARE_QUEUE: id 8, name(6) 10, durable 1, flags at 19 (u32). */
    fill(&s, WIRE_MSG_DECLARE_QUEUE, V_TYPICAL);
    assert_int_equal(decode_patched(&s, 19, WIRE_QUEUE_FLAGS_ALL), 0);
    assert_int_equal(decode_patched(&s, 19, 0x08), WIRE_EFIELD);
    assert_int_equal(decode_patched(&s, 22, 0x80), WIRE_EFIELD);
    s.msg.declare_queue.flags = 1u << 31;
    assert_int_equal(wire_encode(&s.msg, buf, sizeof buf), WIRE_EFIELD);
    /* REPLY: id 8, status u16 at 8. */
    fill(&s, WIRE_MSG_REPLY, V_TYPICAL);
    assert_int_equal(decode_patched(&s, 8, WIRE_STATUS_COUNT - 1), 0);
    assert_int_equal(decode_patched(&s, 8, WIRE_STATUS_COUNT), WIRE_EFIELD);
    assert_int_equal(decode_patched(&s, 9, 1), WIRE_EFIELD);
    s.msg.reply.status = WIRE_STATUS_COUNT;
    assert_int_equal(wire_encode(&s.msg, buf, sizeof buf), WIRE_EFIELD);
    fill(&s, WIRE_MSG_NACK_PUBLISH, V_TYPICAL);
    s.msg.nack_publish.reason = 0xFFFF;
    assert_int_equal(wire_encode(&s.msg, buf, sizeof buf), WIRE_EFIELD);
}

/* Independent list of every flag field: each must read back as 0 or 1. */
static int flags_ok(const wire_msg_t *m) {
    const uint8_t *f[3] = {NULL, NULL, NULL};
    switch (m->type) {
    case WIRE_MSG_REQUEST_VOTE: f[0] = &m->request_vote.pre_vote; break;
    case WIRE_MSG_VOTE_RESPONSE: f[0] = &m->vote_response.granted, f[1] = &m->vote_response.pre_vote; break;
    case WIRE_MSG_APPEND_RESPONSE: f[0] = &m->append_response.success; break;
    case WIRE_MSG_INSTALL_SNAPSHOT: f[0] = &m->install_snapshot.done; break;
    case WIRE_MSG_SNAPSHOT_RESPONSE: f[0] = &m->snapshot_response.success; break;
    case WIRE_MSG_DECLARE_QUEUE: f[0] = &m->declare_queue.durable; break;
    case WIRE_MSG_DECLARE_EXCHANGE:
        f[0] = &m->declare_exchange.durable, f[1] = &m->declare_exchange.passive;
        f[2] = &m->declare_exchange.internal;
        break;
    case WIRE_MSG_DELETE_EXCHANGE: f[0] = &m->delete_exchange.if_unused; break;
    case WIRE_MSG_CONSUME: f[0] = &m->consume.exclusive; break;
    case WIRE_MSG_PUBLISH: f[0] = &m->publish.persistent; break;
    case WIRE_MSG_ACK: f[0] = &m->ack.multiple; break;
    case WIRE_MSG_NACK: f[0] = &m->nack.multiple, f[1] = &m->nack.requeue; break;
    case WIRE_MSG_REJECT: f[0] = &m->reject.requeue; break;
    case WIRE_MSG_CONFIRM: f[0] = &m->confirm.duplicate; break;
    case WIRE_MSG_DELIVER: f[0] = &m->deliver.redelivered; break;
    default: break;
    }
    for (int i = 0; i < 3; i++) {
        if (f[i] != NULL && *f[i] > 1) return 0;
    }
    return 1;
}

/* Every body byte of every type set to a few values and resealed: whatever
 * still decodes must re-encode to the very same bytes (strict decoding keeps
 * the format canonical: no flag 2 read as true, no ignored bytes). */
static void test_mutated_bodies_stay_canonical(void **state) {
    (void)state;
    static const uint8_t values[] = {0, 1, 2, 0x7F, 0xFF};
    uint8_t buf[2048], again[2048];
    sample_t s, out;
    int decoded = 0, refused = 0;
    for (size_t t = 0; t < TYPES_COUNT; t++) {
        fill(&s, all_types[t], V_TYPICAL);
        int n = wire_encode(&s.msg, buf, sizeof buf);
        assert_true(n > 0);
        for (int off = WIRE_HEADER_SIZE; off < n; off++) {
            uint8_t keep = buf[off];
            for (size_t v = 0; v < sizeof values; v++) {
                buf[off] = values[v];
                reseal(buf, (size_t)n);
                if (wire_decode(buf, (size_t)n, &out.msg, out.entries, WIRE_ENTRIES_MAX) != 0) {
                    refused++;
                    continue;
                }
                decoded++;
                if (!flags_ok(&out.msg)) {
                    fail_msg("%s: byte %d = %u gives a flag > 1", wire_type_name(all_types[t]),
                             off, values[v]);
                }
                int n2 = wire_encode(&out.msg, again, sizeof again);
                if (n2 != n || memcmp(buf, again, (size_t)n) != 0) {
                    fail_msg("%s: byte %d = %u decodes but re-encodes as %s",
                             wire_type_name(all_types[t]), off, values[v],
                             n2 < 0 ? wire_error_name(n2) : "other bytes");
                }
            }
            buf[off] = keep;
        }
    }
    assert_true(decoded > 0 && refused > 0); /* both paths were exercised */
}

/* A message in read-only memory: encoding must only read it. */
static void test_encode_const_message(void **state) {
    (void)state;
    static const wire_msg_t m = {.type = WIRE_MSG_NACK, .nack = {77, 1, 0}};
    uint8_t buf[64];
    wire_msg_t out;
    int n = wire_encode(&m, buf, sizeof buf);
    assert_int_equal(n, WIRE_HEADER_SIZE + 18); /* tag, multiple, requeue, session */
    assert_int_equal(wire_decode(buf, (size_t)n, &out, NULL, 0), 0);
    assert_true(wire_msg_equal(&m, &out));
    buf[WIRE_HEADER_SIZE + 9] = 2; /* requeue = 2 */
    reseal(buf, (size_t)n);
    assert_int_equal(wire_decode(buf, (size_t)n, &out, NULL, 0), WIRE_EFLAG);
}

/* ---- equality and names ------------------------------------------------------- */

static void test_msg_equal_sees_differences(void **state) {
    (void)state;
    sample_t a, b;
    for (size_t t = 0; t < TYPES_COUNT; t++) {
        fill(&a, all_types[t], V_TYPICAL);
        fill(&b, all_types[t], V_TYPICAL);
        assert_true(wire_msg_equal(&a.msg, &b.msg));
        fill(&b, all_types[t], V_EMPTY);
        if (wire_msg_equal(&a.msg, &b.msg)) fail_msg("%s: equal", wire_type_name(all_types[t]));
    }
    fill(&a, WIRE_MSG_PUBLISH, V_TYPICAL);
    fill(&b, WIRE_MSG_PUBLISH, V_TYPICAL);
    b.msg.publish.body = bytes_of(a.msg.publish.body.len, 9); /* same length, other bytes */
    assert_false(wire_msg_equal(&a.msg, &b.msg));
    fill(&a, WIRE_MSG_APPEND_ENTRIES, V_TYPICAL);
    fill(&b, WIRE_MSG_APPEND_ENTRIES, V_TYPICAL);
    b.entries[2].type ^= 1;
    assert_false(wire_msg_equal(&a.msg, &b.msg));
    fill(&b, WIRE_MSG_ACK, V_TYPICAL);
    assert_false(wire_msg_equal(&a.msg, &b.msg));
}

static void test_names(void **state) {
    (void)state;
    for (size_t i = 0; i < TYPES_COUNT; i++) {
        const char *name = wire_type_name(all_types[i]);
        assert_string_not_equal(name, "UNKNOWN");
        for (size_t j = 0; j < i; j++) assert_string_not_equal(name, wire_type_name(all_types[j]));
    }
    assert_string_equal(wire_type_name(WIRE_MSG_APPEND_ENTRIES), "APPEND_ENTRIES");
    assert_string_equal(wire_type_name(0), "UNKNOWN");
    assert_string_equal(wire_type_name(200), "UNKNOWN");
    assert_string_equal(wire_error_name(WIRE_ECRC), "WIRE_ECRC");
    assert_string_equal(wire_error_name(WIRE_ETOOMANY), "WIRE_ETOOMANY");
    assert_string_equal(wire_error_name(IO_EMSGSIZE), "IO_EMSGSIZE");
    assert_string_equal(wire_error_name(0), "OK");
    assert_string_equal(wire_error_name(-100), "UNKNOWN");
    assert_string_equal(wire_error_name(5), "UNKNOWN");
    for (int e = WIRE_ETOOMANY; e <= WIRE_ENOBUFS; e++) {
        const char *name = wire_error_name(e);
        assert_memory_equal(name, "WIRE_E", 6);
    }
    assert_string_equal(wire_status_name(WIRE_STATUS_TIMEOUT), "TIMEOUT");
    assert_string_equal(wire_status_name(WIRE_STATUS_COUNT), "UNKNOWN");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_answer),
        cmocka_unit_test(test_crc32c_detects_change),
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_roundtrip_zero_copy),
        cmocka_unit_test(test_roundtrip_max_payload_entries),
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_encode_buffer_too_small),
        cmocka_unit_test(test_truncated_every_prefix),
        cmocka_unit_test(test_every_bit_flip_rejected),
        cmocka_unit_test(test_bad_magic_version_type),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_frame_size),
        cmocka_unit_test(test_oversized_fields_encode),
        cmocka_unit_test(test_oversized_fields_decode),
        cmocka_unit_test(test_entries_count_limit),
        cmocka_unit_test(test_entries_must_be_contiguous),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_bad_enums),
        cmocka_unit_test(test_mutated_bodies_stay_canonical),
        cmocka_unit_test(test_encode_const_message),
        cmocka_unit_test(test_msg_equal_sees_differences),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
