/*
 * broker/wire.c — encoder and decoder of the wire format (see wire.h).
 *
 * Both directions run through ONE description of each message: a "visit"
 * function per type lists the fields in wire order, and the codec either
 * writes them (encode) or reads them (decode). Encode and decode therefore
 * cannot drift apart; the limits and flag/enum checks sit in the shared
 * primitives, so the encoder refuses exactly what the decoder would refuse.
 *
 * Encoding runs the visit twice: first with no output buffer, which validates
 * every field and counts bytes, then for real. Decoding never allocates:
 * strings point into the input and entries land in caller storage.
 */
#include "broker/wire.h"

#include <assert.h>

#include "broker/crc32c.h"

/* Byte offsets inside the header. */
enum {
    WIRE__OFF_MAGIC = 0,
    WIRE__OFF_VERSION = 2,
    WIRE__OFF_TYPE = 3,
    WIRE__OFF_LENGTH = 4,
    WIRE__OFF_CRC = 8,
};
#define WIRE__BODY_SIZE_MAX (WIRE_MESSAGE_SIZE_MAX - WIRE_HEADER_SIZE)

typedef struct wire__codec {
    int decoding;          /* 1: bytes -> struct, 0: struct -> bytes */
    int err;               /* first error; sticky, later steps do nothing */
    size_t pos;            /* body bytes consumed (decode) or produced */
    const uint8_t *in;     /* decode: the body */
    size_t in_len;         /* decode: its length */
    uint8_t *out;          /* encode: where the body goes; NULL = count only */
    wire_entry_t *entries; /* decode: caller storage for APPEND_ENTRIES */
    uint32_t entries_cap;  /* decode: its capacity */
} wire__codec_t;

/* ---- little-endian helpers ---------------------------------------------- */

static void wire__put_le(uint8_t *p, uint64_t v, unsigned size) {
    for (unsigned i = 0; i < size; i++) p[i] = (uint8_t)(v >> (8u * i));
}

static uint64_t wire__get_le(const uint8_t *p, unsigned size) {
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) v |= (uint64_t)p[i] << (8u * i);
    return v;
}

/* ---- codec primitives ----------------------------------------------------- */

static void wire__fail(wire__codec_t *c, int err) {
    assert(err < 0);
    if (c->err == 0) c->err = err;
}

/* Decode: the next `n` body bytes, or NULL (error recorded) when absent. */
static const uint8_t *wire__take(wire__codec_t *c, size_t n) {
    assert(c->decoding);
    assert(c->pos <= c->in_len);
    if (c->err != 0) return NULL;
    if (c->in_len - c->pos < n) {
        wire__fail(c, WIRE_ETRUNCATED);
        return NULL;
    }
    const uint8_t *p = c->in + c->pos;
    c->pos += n;
    return p;
}

/* Encode: room for the next `n` body bytes, or NULL when only counting (or
 * after an error). The counting pass sized the buffer, so no bound check. */
static uint8_t *wire__give(wire__codec_t *c, size_t n) {
    assert(!c->decoding);
    if (c->err != 0) return NULL;
    uint8_t *p = c->out != NULL ? c->out + c->pos : NULL;
    c->pos += n;
    return p;
}

/* One unsigned integer of `size` bytes; `v` points to a field of that size
 * converted through uint64_t by the typed wrappers below. */
static void wire__uint(wire__codec_t *c, uint64_t *v, unsigned size) {
    assert(size == 1 || size == 2 || size == 4 || size == 8);
    if (c->decoding) {
        const uint8_t *p = wire__take(c, size);
        if (p != NULL) *v = wire__get_le(p, size);
    } else {
        uint8_t *p = wire__give(c, size);
        if (p != NULL) wire__put_le(p, *v, size);
    }
}

static void wire__u8(wire__codec_t *c, uint8_t *v) {
    uint64_t x = *v;
    wire__uint(c, &x, 1);
    if (c->decoding) *v = (uint8_t)x;
}

static void wire__u16(wire__codec_t *c, uint16_t *v) {
    uint64_t x = *v;
    wire__uint(c, &x, 2);
    if (c->decoding) *v = (uint16_t)x;
}

static void wire__u32(wire__codec_t *c, uint32_t *v) {
    uint64_t x = *v;
    wire__uint(c, &x, 4);
    if (c->decoding) *v = (uint32_t)x;
}

static void wire__u64(wire__codec_t *c, uint64_t *v) { wire__uint(c, v, 8); }

/* The wrappers store into the field only when decoding: encode casts const
 * away to share the visitors, and must never write (the message may live in
 * read-only memory). */

/* A flag: exactly 0 or 1 both ways, so the encoding stays canonical. */
static void wire__flag(wire__codec_t *c, uint8_t *v) {
    wire__u8(c, v);
    if (c->err == 0 && *v > 1) wire__fail(c, WIRE_EFLAG);
}

/* A u8 enum whose valid values are [lo, hi]. */
static void wire__enum8(wire__codec_t *c, uint8_t *v, uint8_t lo, uint8_t hi) {
    assert(lo <= hi);
    wire__u8(c, v);
    if (c->err == 0 && (*v < lo || *v > hi)) wire__fail(c, WIRE_EFIELD);
}

/* A status code (u16, wire_status_t). */
static void wire__status(wire__codec_t *c, uint16_t *v) {
    wire__u16(c, v);
    if (c->err == 0 && *v >= WIRE_STATUS_COUNT) wire__fail(c, WIRE_EFIELD);
}

/* A string or blob of at most `max` bytes: u32 length + bytes. */
static void wire__bytes(wire__codec_t *c, wire_bytes_t *b, uint32_t max) {
    assert(max <= WIRE__BODY_SIZE_MAX);
    if (!c->decoding && b->len > 0 && b->ptr == NULL) wire__fail(c, WIRE_EFIELD);
    uint32_t n = b->len;
    wire__u32(c, &n);
    if (c->err == 0 && n > max) wire__fail(c, WIRE_EOVERSIZE);
    if (c->err != 0) return;
    if (c->decoding) {
        const uint8_t *p = wire__take(c, n);
        if (p == NULL) return;
        b->ptr = p;
        b->len = n;
    } else {
        uint8_t *p = wire__give(c, n);
        if (p != NULL && n > 0) memcpy(p, b->ptr, n);
    }
}

#define WIRE__NAME(c, b) wire__bytes((c), (b), WIRE_NAME_SIZE_MAX)

/* ---- message visitors (field order = wire order = struct order) ------------ */

static void wire__request_vote(wire__codec_t *c, wire_request_vote_t *m) {
    wire__u64(c, &m->term);
    wire__u32(c, &m->candidate_id);
    wire__u64(c, &m->last_log_index);
    wire__u64(c, &m->last_log_term);
    wire__flag(c, &m->pre_vote);
}

static void wire__vote_response(wire__codec_t *c, wire_vote_response_t *m) {
    wire__u64(c, &m->term);
    wire__u32(c, &m->voter_id);
    wire__flag(c, &m->granted);
    wire__flag(c, &m->pre_vote);
}

/* One entry, checked against its expected index and the previous term. */
static void wire__entry(wire__codec_t *c, wire_entry_t *e, uint64_t index,
                        uint64_t prev_term, uint64_t term) {
    wire__u64(c, &e->term);
    wire__u64(c, &e->index);
    wire__u8(c, &e->type);
    wire__bytes(c, &e->payload, WIRE_ENTRY_PAYLOAD_SIZE_MAX);
    if (c->err != 0) return;
    if (e->index != index || e->term < prev_term || e->term > term) {
        wire__fail(c, WIRE_EFIELD);
    }
}

static void wire__entries(wire__codec_t *c, wire_append_entries_t *m) {
    wire__u32(c, &m->entry_count);
    if (c->err != 0) return;
    uint32_t count = m->entry_count;
    if (count > WIRE_ENTRIES_MAX) wire__fail(c, WIRE_ETOOMANY);
    if (c->decoding && count > c->entries_cap) wire__fail(c, WIRE_ETOOMANY);
    if (!c->decoding && count > 0 && m->entries == NULL) wire__fail(c, WIRE_EFIELD);
    /* Indexes prev+1 .. prev+count must not wrap around. */
    if (m->prev_log_index > UINT64_MAX - count) wire__fail(c, WIRE_EFIELD);
    if (c->err != 0) return;
    if (c->decoding) m->entries = c->entries;
    wire_entry_t *entries = (wire_entry_t *)m->entries; /* read-only if encoding */
    uint64_t prev_term = m->prev_log_term;
    for (uint32_t i = 0; i < count && c->err == 0; i++) {
        assert(i < WIRE_ENTRIES_MAX);
        wire__entry(c, &entries[i], m->prev_log_index + 1 + i, prev_term, m->term);
        prev_term = entries[i].term;
    }
}

static void wire__append_entries(wire__codec_t *c, wire_append_entries_t *m) {
    wire__u64(c, &m->term);
    wire__u32(c, &m->leader_id);
    wire__u64(c, &m->prev_log_index);
    wire__u64(c, &m->prev_log_term);
    wire__u64(c, &m->leader_commit);
    wire__entries(c, m);
}

static void wire__append_response(wire__codec_t *c, wire_append_response_t *m) {
    wire__u64(c, &m->term);
    wire__u32(c, &m->follower_id);
    wire__flag(c, &m->success);
    wire__u64(c, &m->match_index);
    wire__u64(c, &m->conflict_index);
    wire__u64(c, &m->conflict_term);
}

static void wire__install_snapshot(wire__codec_t *c, wire_install_snapshot_t *m) {
    wire__u64(c, &m->term);
    wire__u32(c, &m->leader_id);
    wire__u64(c, &m->last_included_index);
    wire__u64(c, &m->last_included_term);
    wire__u64(c, &m->offset);
    wire__flag(c, &m->done);
    wire__bytes(c, &m->data, WIRE_SNAPSHOT_CHUNK_MAX);
}

static void wire__snapshot_response(wire__codec_t *c, wire_snapshot_response_t *m) {
    wire__u64(c, &m->term);
    wire__u32(c, &m->follower_id);
    wire__u64(c, &m->last_included_index);
    wire__u64(c, &m->next_offset);
    wire__flag(c, &m->success);
}

static void wire__timeout_now(wire__codec_t *c, wire_timeout_now_t *m) {
    wire__u64(c, &m->term);
    wire__u32(c, &m->leader_id);
}

static void wire__declare_queue(wire__codec_t *c, wire_declare_queue_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->name);
    wire__flag(c, &m->durable);
    wire__u32(c, &m->flags);
    if (c->err == 0 && (m->flags & ~WIRE_QUEUE_FLAGS_ALL) != 0) {
        wire__fail(c, WIRE_EFIELD);
    }
    wire__u32(c, &m->delivery_limit);
    WIRE__NAME(c, &m->dlq);
}

static void wire__declare_exchange(wire__codec_t *c, wire_declare_exchange_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->name);
    wire__enum8(c, &m->kind, WIRE_EXCHANGE_DIRECT, WIRE_EXCHANGE_TOPIC);
    wire__flag(c, &m->durable);
    wire__flag(c, &m->passive);
    wire__flag(c, &m->internal);
}

static void wire__delete_exchange(wire__codec_t *c, wire_delete_exchange_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->name);
    wire__flag(c, &m->if_unused);
}

static void wire__bind(wire__codec_t *c, wire_bind_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->exchange);
    WIRE__NAME(c, &m->queue);
    WIRE__NAME(c, &m->routing_key);
}

static void wire__publish(wire__codec_t *c, wire_publish_t *m) {
    wire__u64(c, &m->request_id);
    wire__u64(c, &m->producer_id);
    wire__u64(c, &m->sequence);
    wire__u64(c, &m->message_id);
    WIRE__NAME(c, &m->exchange);
    WIRE__NAME(c, &m->routing_key);
    wire__flag(c, &m->persistent);
    wire__bytes(c, &m->body, WIRE_BODY_SIZE_MAX);
    wire__flag(c, &m->mandatory);
    wire__bytes(c, &m->properties, WIRE_PROPERTIES_SIZE_MAX);
}

static void wire__get(wire__codec_t *c, wire_get_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->queue);
    wire__enum8(c, &m->ack_mode, WIRE_ACK_MANUAL, WIRE_ACK_AUTO);
}

static void wire__purge_queue(wire__codec_t *c, wire_purge_queue_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->queue);
}

static void wire__delete_queue(wire__codec_t *c, wire_delete_queue_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->queue);
    wire__flag(c, &m->if_unused);
    wire__flag(c, &m->if_empty);
}

static void wire__consume(wire__codec_t *c, wire_consume_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->queue);
    wire__u32(c, &m->prefetch);
    wire__enum8(c, &m->ack_mode, WIRE_ACK_MANUAL, WIRE_ACK_AUTO);
    WIRE__NAME(c, &m->consumer_tag);
    wire__flag(c, &m->exclusive);
}

static void wire__cancel(wire__codec_t *c, wire_cancel_t *m) {
    wire__u64(c, &m->request_id);
    WIRE__NAME(c, &m->consumer_tag);
}

static void wire__ack(wire__codec_t *c, wire_ack_t *m) {
    wire__u64(c, &m->delivery_tag);
    wire__flag(c, &m->multiple);
    wire__u64(c, &m->session_id);
}

static void wire__nack(wire__codec_t *c, wire_nack_t *m) {
    wire__u64(c, &m->delivery_tag);
    wire__flag(c, &m->multiple);
    wire__flag(c, &m->requeue);
    wire__u64(c, &m->session_id);
}

static void wire__reject(wire__codec_t *c, wire_reject_t *m) {
    wire__u64(c, &m->delivery_tag);
    wire__flag(c, &m->requeue);
    wire__u64(c, &m->session_id);
}

static void wire__heartbeat(wire__codec_t *c, wire_heartbeat_t *m) {
    wire__u64(c, &m->session_id);
    wire__u64(c, &m->timestamp_ns);
    wire__u64(c, &m->owner);
}

static void wire__confirm(wire__codec_t *c, wire_confirm_t *m) {
    wire__u64(c, &m->request_id);
    wire__u64(c, &m->producer_id);
    wire__u64(c, &m->sequence);
    wire__flag(c, &m->duplicate);
    wire__flag(c, &m->unroutable);
}

static void wire__nack_publish(wire__codec_t *c, wire_nack_publish_t *m) {
    wire__u64(c, &m->request_id);
    wire__u64(c, &m->producer_id);
    wire__u64(c, &m->sequence);
    wire__status(c, &m->reason);
}

static void wire__not_leader(wire__codec_t *c, wire_not_leader_t *m) {
    wire__u64(c, &m->request_id);
    wire__u32(c, &m->leader_hint);
}

static void wire__deliver(wire__codec_t *c, wire_deliver_t *m) {
    WIRE__NAME(c, &m->consumer_tag);
    wire__u64(c, &m->delivery_tag);
    wire__u64(c, &m->message_id);
    wire__u64(c, &m->producer_id);
    wire__u64(c, &m->sequence);
    wire__flag(c, &m->redelivered);
    wire__u32(c, &m->delivery_count);
    WIRE__NAME(c, &m->exchange);
    WIRE__NAME(c, &m->routing_key);
    wire__bytes(c, &m->body, WIRE_BODY_SIZE_MAX);
    wire__bytes(c, &m->properties, WIRE_PROPERTIES_SIZE_MAX);
    wire__u32(c, &m->message_count);
}

static void wire__reply(wire__codec_t *c, wire_reply_t *m) {
    wire__u64(c, &m->request_id);
    wire__status(c, &m->status);
    wire__u64(c, &m->count);
    wire__u32(c, &m->consumers);
    wire__bytes(c, &m->detail, WIRE_DETAIL_SIZE_MAX);
}

static void wire__error(wire__codec_t *c, wire_error_t *m) {
    wire__u64(c, &m->request_id);
    wire__status(c, &m->status);
    wire__bytes(c, &m->detail, WIRE_DETAIL_SIZE_MAX);
}

/* The body of `m` according to m->type; WIRE_ETYPE for an unknown type. */
static void wire__visit(wire__codec_t *c, wire_msg_t *m) {
    assert(c->err == 0 && c->pos == 0);
    switch (m->type) {
    case WIRE_MSG_REQUEST_VOTE: wire__request_vote(c, &m->request_vote); break;
    case WIRE_MSG_VOTE_RESPONSE: wire__vote_response(c, &m->vote_response); break;
    case WIRE_MSG_APPEND_ENTRIES: wire__append_entries(c, &m->append_entries); break;
    case WIRE_MSG_APPEND_RESPONSE: wire__append_response(c, &m->append_response); break;
    case WIRE_MSG_INSTALL_SNAPSHOT: wire__install_snapshot(c, &m->install_snapshot); break;
    case WIRE_MSG_SNAPSHOT_RESPONSE: wire__snapshot_response(c, &m->snapshot_response); break;
    case WIRE_MSG_TIMEOUT_NOW: wire__timeout_now(c, &m->timeout_now); break;
    case WIRE_MSG_DECLARE_QUEUE: wire__declare_queue(c, &m->declare_queue); break;
    case WIRE_MSG_DECLARE_EXCHANGE: wire__declare_exchange(c, &m->declare_exchange); break;
    case WIRE_MSG_BIND: wire__bind(c, &m->bind); break;
    case WIRE_MSG_PUBLISH: wire__publish(c, &m->publish); break;
    case WIRE_MSG_CONSUME: wire__consume(c, &m->consume); break;
    case WIRE_MSG_CANCEL: wire__cancel(c, &m->cancel); break;
    case WIRE_MSG_ACK: wire__ack(c, &m->ack); break;
    case WIRE_MSG_NACK: wire__nack(c, &m->nack); break;
    case WIRE_MSG_REJECT: wire__reject(c, &m->reject); break;
    case WIRE_MSG_HEARTBEAT: wire__heartbeat(c, &m->heartbeat); break;
    case WIRE_MSG_GET: wire__get(c, &m->get); break;
    case WIRE_MSG_PURGE_QUEUE: wire__purge_queue(c, &m->purge_queue); break;
    case WIRE_MSG_DELETE_QUEUE: wire__delete_queue(c, &m->delete_queue); break;
    case WIRE_MSG_DELETE_EXCHANGE: wire__delete_exchange(c, &m->delete_exchange); break;
    case WIRE_MSG_UNBIND: wire__bind(c, &m->unbind); break;
    case WIRE_MSG_EXCHANGE_BIND:
    case WIRE_MSG_EXCHANGE_UNBIND: wire__bind(c, &m->exchange_bind); break;
    case WIRE_MSG_CONFIRM: wire__confirm(c, &m->confirm); break;
    case WIRE_MSG_NACK_PUBLISH: wire__nack_publish(c, &m->nack_publish); break;
    case WIRE_MSG_NOT_LEADER: wire__not_leader(c, &m->not_leader); break;
    case WIRE_MSG_DELIVER: wire__deliver(c, &m->deliver); break;
    case WIRE_MSG_REPLY: wire__reply(c, &m->reply); break;
    case WIRE_MSG_ERROR: wire__error(c, &m->error); break;
    default: wire__fail(c, WIRE_ETYPE); break;
    }
}

/* ---- encode ------------------------------------------------------------------ */

int wire_encoded_size(const wire_msg_t *msg) {
    assert(msg != NULL);
    wire__codec_t c = {0};
    /* Counting pass: `out` is NULL. The cast drops const for the shared
     * visitors, which never store into the message when encoding. */
    wire__visit(&c, (wire_msg_t *)msg);
    if (c.err != 0) return c.err;
    if (c.pos > WIRE__BODY_SIZE_MAX) return WIRE_ETOOLARGE;
    assert(c.pos + WIRE_HEADER_SIZE <= WIRE_MESSAGE_SIZE_MAX);
    return (int)(c.pos + WIRE_HEADER_SIZE);
}

int wire_encode(const wire_msg_t *msg, uint8_t *buf, size_t cap) {
    assert(msg != NULL);
    assert(buf != NULL || cap == 0);
    int size = wire_encoded_size(msg);
    if (size < 0) return size;
    if ((size_t)size > cap) return WIRE_ENOBUFS;
    wire__codec_t c = {0};
    c.out = buf + WIRE_HEADER_SIZE;
    wire__visit(&c, (wire_msg_t *)msg);
    /* Pair assertion with the counting pass: same checks, same size. */
    assert(c.err == 0);
    assert(c.pos + WIRE_HEADER_SIZE == (size_t)size);
    wire__put_le(buf + WIRE__OFF_MAGIC, WIRE_MAGIC, 2);
    buf[WIRE__OFF_VERSION] = (uint8_t)WIRE_VERSION;
    buf[WIRE__OFF_TYPE] = msg->type;
    wire__put_le(buf + WIRE__OFF_LENGTH, c.pos, 4);
    uint32_t crc = crc32c(buf, WIRE__OFF_CRC);
    crc = crc32c_extend(crc, buf + WIRE_HEADER_SIZE, c.pos);
    wire__put_le(buf + WIRE__OFF_CRC, crc, 4);
    return size;
}

/* ---- decode ------------------------------------------------------------------ */

/* Checks the parts of a header that need no body: magic, version, declared
 * length. `bytes` holds at least WIRE_HEADER_SIZE bytes. */
static int wire__check_header(const uint8_t *bytes, uint32_t *body_len) {
    assert(bytes != NULL && body_len != NULL);
    if (wire__get_le(bytes + WIRE__OFF_MAGIC, 2) != WIRE_MAGIC) return WIRE_EMAGIC;
    if (bytes[WIRE__OFF_VERSION] != WIRE_VERSION) return WIRE_EVERSION;
    *body_len = (uint32_t)wire__get_le(bytes + WIRE__OFF_LENGTH, 4);
    if (*body_len > WIRE__BODY_SIZE_MAX) return WIRE_ETOOLARGE;
    return 0;
}

int wire_frame_size(const uint8_t *bytes, size_t len) {
    assert(bytes != NULL || len == 0);
    if (len < WIRE_HEADER_SIZE) return 0;
    uint32_t body_len = 0;
    int err = wire__check_header(bytes, &body_len);
    if (err != 0) return err;
    assert(body_len <= WIRE__BODY_SIZE_MAX);
    return (int)(WIRE_HEADER_SIZE + body_len);
}

static int wire__type_known(unsigned type) {
    return type <= WIRE_MSG_ERROR && strcmp(wire_type_name(type), "UNKNOWN") != 0;
}

int wire_decode(const uint8_t *bytes, size_t len, wire_msg_t *msg,
                wire_entry_t *entries, uint32_t entries_cap) {
    assert(bytes != NULL || len == 0);
    assert(msg != NULL);
    assert(entries != NULL || entries_cap == 0);
    memset(msg, 0, sizeof *msg);
    if (len < WIRE_HEADER_SIZE) return WIRE_ETRUNCATED;
    uint32_t body_len = 0;
    int err = wire__check_header(bytes, &body_len);
    if (err != 0) return err;
    if (len - WIRE_HEADER_SIZE < body_len) return WIRE_ETRUNCATED;
    if (len - WIRE_HEADER_SIZE > body_len) return WIRE_ETRAILING;
    if (!wire__type_known(bytes[WIRE__OFF_TYPE])) return WIRE_ETYPE;
    uint32_t crc = crc32c(bytes, WIRE__OFF_CRC);
    crc = crc32c_extend(crc, bytes + WIRE_HEADER_SIZE, body_len);
    if (crc != (uint32_t)wire__get_le(bytes + WIRE__OFF_CRC, 4)) return WIRE_ECRC;

    wire__codec_t c = {0};
    c.decoding = 1;
    c.in = bytes + WIRE_HEADER_SIZE;
    c.in_len = body_len;
    c.entries = entries;
    c.entries_cap = entries_cap;
    msg->type = bytes[WIRE__OFF_TYPE];
    wire__visit(&c, msg);
    if (c.err != 0) return c.err;
    assert(c.pos <= body_len);
    if (c.pos != body_len) return WIRE_ETRAILING;
    return 0;
}

/* ---- equality ------------------------------------------------------------------ */

static int wire__bytes_eq(wire_bytes_t a, wire_bytes_t b) {
    if (a.len != b.len) return 0;
    return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
}

static int wire__entries_eq(const wire_append_entries_t *a,
                            const wire_append_entries_t *b) {
    if (a->entry_count != b->entry_count) return 0;
    assert(a->entry_count <= WIRE_ENTRIES_MAX);
    for (uint32_t i = 0; i < a->entry_count; i++) {
        const wire_entry_t *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type ||
            !wire__bytes_eq(x->payload, y->payload)) {
            return 0;
        }
    }
    return 1;
}

/* Peer messages. Written field by field (not via the visitor) on purpose:
 * an independent listing, so a field the visitor forgets shows up as a
 * round-trip mismatch in the tests. */
static int wire__peer_eq(const wire_msg_t *a, const wire_msg_t *b) {
    switch (a->type) {
    case WIRE_MSG_REQUEST_VOTE: {
        const wire_request_vote_t *x = &a->request_vote, *y = &b->request_vote;
        return x->term == y->term && x->candidate_id == y->candidate_id &&
               x->last_log_index == y->last_log_index &&
               x->last_log_term == y->last_log_term && x->pre_vote == y->pre_vote;
    }
    case WIRE_MSG_VOTE_RESPONSE: {
        const wire_vote_response_t *x = &a->vote_response, *y = &b->vote_response;
        return x->term == y->term && x->voter_id == y->voter_id &&
               x->granted == y->granted && x->pre_vote == y->pre_vote;
    }
    case WIRE_MSG_APPEND_ENTRIES: {
        const wire_append_entries_t *x = &a->append_entries, *y = &b->append_entries;
        return x->term == y->term && x->leader_id == y->leader_id &&
               x->prev_log_index == y->prev_log_index &&
               x->prev_log_term == y->prev_log_term &&
               x->leader_commit == y->leader_commit && wire__entries_eq(x, y);
    }
    case WIRE_MSG_APPEND_RESPONSE: {
        const wire_append_response_t *x = &a->append_response, *y = &b->append_response;
        return x->term == y->term && x->follower_id == y->follower_id &&
               x->success == y->success && x->match_index == y->match_index &&
               x->conflict_index == y->conflict_index &&
               x->conflict_term == y->conflict_term;
    }
    case WIRE_MSG_INSTALL_SNAPSHOT: {
        const wire_install_snapshot_t *x = &a->install_snapshot, *y = &b->install_snapshot;
        return x->term == y->term && x->leader_id == y->leader_id &&
               x->last_included_index == y->last_included_index &&
               x->last_included_term == y->last_included_term &&
               x->offset == y->offset && x->done == y->done &&
               wire__bytes_eq(x->data, y->data);
    }
    case WIRE_MSG_SNAPSHOT_RESPONSE: {
        const wire_snapshot_response_t *x = &a->snapshot_response, *y = &b->snapshot_response;
        return x->term == y->term && x->follower_id == y->follower_id &&
               x->last_included_index == y->last_included_index &&
               x->next_offset == y->next_offset && x->success == y->success;
    }
    case WIRE_MSG_TIMEOUT_NOW:
        return a->timeout_now.term == b->timeout_now.term &&
               a->timeout_now.leader_id == b->timeout_now.leader_id;
    default: return -1; /* not a peer message */
    }
}

/* Client -> node messages. */
static int wire__request_eq(const wire_msg_t *a, const wire_msg_t *b) {
    switch (a->type) {
    case WIRE_MSG_DECLARE_QUEUE: {
        const wire_declare_queue_t *x = &a->declare_queue, *y = &b->declare_queue;
        return x->request_id == y->request_id && wire__bytes_eq(x->name, y->name) &&
               x->durable == y->durable && x->flags == y->flags &&
               x->delivery_limit == y->delivery_limit && wire__bytes_eq(x->dlq, y->dlq);
    }
    case WIRE_MSG_DECLARE_EXCHANGE: {
        const wire_declare_exchange_t *x = &a->declare_exchange, *y = &b->declare_exchange;
        return x->request_id == y->request_id && wire__bytes_eq(x->name, y->name) &&
               x->kind == y->kind && x->durable == y->durable && x->passive == y->passive &&
               x->internal == y->internal;
    }
    case WIRE_MSG_DELETE_EXCHANGE:
        return a->delete_exchange.request_id == b->delete_exchange.request_id &&
               wire__bytes_eq(a->delete_exchange.name, b->delete_exchange.name) &&
               a->delete_exchange.if_unused == b->delete_exchange.if_unused;
    case WIRE_MSG_BIND:
    case WIRE_MSG_UNBIND:
    case WIRE_MSG_EXCHANGE_BIND:
    case WIRE_MSG_EXCHANGE_UNBIND: {
        const wire_bind_t *x = &a->bind, *y = &b->bind;
        return x->request_id == y->request_id &&
               wire__bytes_eq(x->exchange, y->exchange) &&
               wire__bytes_eq(x->queue, y->queue) &&
               wire__bytes_eq(x->routing_key, y->routing_key);
    }
    case WIRE_MSG_PUBLISH: {
        const wire_publish_t *x = &a->publish, *y = &b->publish;
        return x->request_id == y->request_id && x->producer_id == y->producer_id &&
               x->sequence == y->sequence && x->message_id == y->message_id &&
               wire__bytes_eq(x->exchange, y->exchange) &&
               wire__bytes_eq(x->routing_key, y->routing_key) &&
               x->persistent == y->persistent && wire__bytes_eq(x->body, y->body) &&
               x->mandatory == y->mandatory && wire__bytes_eq(x->properties, y->properties);
    }
    case WIRE_MSG_GET:
        return a->get.request_id == b->get.request_id &&
               wire__bytes_eq(a->get.queue, b->get.queue) && a->get.ack_mode == b->get.ack_mode;
    case WIRE_MSG_PURGE_QUEUE:
        return a->purge_queue.request_id == b->purge_queue.request_id &&
               wire__bytes_eq(a->purge_queue.queue, b->purge_queue.queue);
    case WIRE_MSG_DELETE_QUEUE:
        return a->delete_queue.request_id == b->delete_queue.request_id &&
               wire__bytes_eq(a->delete_queue.queue, b->delete_queue.queue) &&
               a->delete_queue.if_unused == b->delete_queue.if_unused &&
               a->delete_queue.if_empty == b->delete_queue.if_empty;
    case WIRE_MSG_CONSUME: {
        const wire_consume_t *x = &a->consume, *y = &b->consume;
        return x->request_id == y->request_id && wire__bytes_eq(x->queue, y->queue) &&
               x->prefetch == y->prefetch && x->ack_mode == y->ack_mode &&
               wire__bytes_eq(x->consumer_tag, y->consumer_tag) && x->exclusive == y->exclusive;
    }
    case WIRE_MSG_CANCEL:
        return a->cancel.request_id == b->cancel.request_id &&
               wire__bytes_eq(a->cancel.consumer_tag, b->cancel.consumer_tag);
    case WIRE_MSG_ACK:
        return a->ack.delivery_tag == b->ack.delivery_tag &&
               a->ack.multiple == b->ack.multiple && a->ack.session_id == b->ack.session_id;
    case WIRE_MSG_NACK:
        return a->nack.delivery_tag == b->nack.delivery_tag &&
               a->nack.multiple == b->nack.multiple && a->nack.requeue == b->nack.requeue &&
               a->nack.session_id == b->nack.session_id;
    case WIRE_MSG_REJECT:
        return a->reject.delivery_tag == b->reject.delivery_tag &&
               a->reject.requeue == b->reject.requeue &&
               a->reject.session_id == b->reject.session_id;
    case WIRE_MSG_HEARTBEAT:
        return a->heartbeat.session_id == b->heartbeat.session_id &&
               a->heartbeat.timestamp_ns == b->heartbeat.timestamp_ns &&
               a->heartbeat.owner == b->heartbeat.owner;
    default: return -1;
    }
}

/* Node -> client messages. */
static int wire__answer_eq(const wire_msg_t *a, const wire_msg_t *b) {
    switch (a->type) {
    case WIRE_MSG_CONFIRM: {
        const wire_confirm_t *x = &a->confirm, *y = &b->confirm;
        return x->request_id == y->request_id && x->producer_id == y->producer_id &&
               x->sequence == y->sequence && x->duplicate == y->duplicate &&
               x->unroutable == y->unroutable;
    }
    case WIRE_MSG_NACK_PUBLISH: {
        const wire_nack_publish_t *x = &a->nack_publish, *y = &b->nack_publish;
        return x->request_id == y->request_id && x->producer_id == y->producer_id &&
               x->sequence == y->sequence && x->reason == y->reason;
    }
    case WIRE_MSG_NOT_LEADER:
        return a->not_leader.request_id == b->not_leader.request_id &&
               a->not_leader.leader_hint == b->not_leader.leader_hint;
    case WIRE_MSG_DELIVER: {
        const wire_deliver_t *x = &a->deliver, *y = &b->deliver;
        return wire__bytes_eq(x->consumer_tag, y->consumer_tag) &&
               x->delivery_tag == y->delivery_tag && x->message_id == y->message_id &&
               x->producer_id == y->producer_id && x->sequence == y->sequence &&
               x->redelivered == y->redelivered &&
               x->delivery_count == y->delivery_count &&
               wire__bytes_eq(x->exchange, y->exchange) &&
               wire__bytes_eq(x->routing_key, y->routing_key) &&
               wire__bytes_eq(x->body, y->body) &&
               wire__bytes_eq(x->properties, y->properties) &&
               x->message_count == y->message_count;
    }
    case WIRE_MSG_REPLY:
        return a->reply.request_id == b->reply.request_id &&
               a->reply.status == b->reply.status && a->reply.count == b->reply.count &&
               a->reply.consumers == b->reply.consumers &&
               wire__bytes_eq(a->reply.detail, b->reply.detail);
    case WIRE_MSG_ERROR:
        return a->error.request_id == b->error.request_id &&
               a->error.status == b->error.status &&
               wire__bytes_eq(a->error.detail, b->error.detail);
    default: return -1;
    }
}

int wire_msg_equal(const wire_msg_t *a, const wire_msg_t *b) {
    assert(a != NULL && b != NULL);
    if (a->type != b->type) return 0;
    int eq = wire__peer_eq(a, b);
    if (eq < 0) eq = wire__request_eq(a, b);
    if (eq < 0) eq = wire__answer_eq(a, b);
    assert(eq >= 0 && "wire_msg_equal: unknown message type");
    return eq > 0;
}

/* ---- names --------------------------------------------------------------------- */

const char *wire_type_name(unsigned type) {
    switch (type) {
    case WIRE_MSG_REQUEST_VOTE: return "REQUEST_VOTE";
    case WIRE_MSG_VOTE_RESPONSE: return "VOTE_RESPONSE";
    case WIRE_MSG_APPEND_ENTRIES: return "APPEND_ENTRIES";
    case WIRE_MSG_APPEND_RESPONSE: return "APPEND_RESPONSE";
    case WIRE_MSG_INSTALL_SNAPSHOT: return "INSTALL_SNAPSHOT";
    case WIRE_MSG_SNAPSHOT_RESPONSE: return "SNAPSHOT_RESPONSE";
    case WIRE_MSG_TIMEOUT_NOW: return "TIMEOUT_NOW";
    case WIRE_MSG_DECLARE_QUEUE: return "DECLARE_QUEUE";
    case WIRE_MSG_DECLARE_EXCHANGE: return "DECLARE_EXCHANGE";
    case WIRE_MSG_BIND: return "BIND";
    case WIRE_MSG_PUBLISH: return "PUBLISH";
    case WIRE_MSG_CONSUME: return "CONSUME";
    case WIRE_MSG_CANCEL: return "CANCEL";
    case WIRE_MSG_ACK: return "ACK";
    case WIRE_MSG_NACK: return "NACK";
    case WIRE_MSG_REJECT: return "REJECT";
    case WIRE_MSG_HEARTBEAT: return "HEARTBEAT";
    case WIRE_MSG_GET: return "GET";
    case WIRE_MSG_PURGE_QUEUE: return "PURGE_QUEUE";
    case WIRE_MSG_DELETE_QUEUE: return "DELETE_QUEUE";
    case WIRE_MSG_DELETE_EXCHANGE: return "DELETE_EXCHANGE";
    case WIRE_MSG_UNBIND: return "UNBIND";
    case WIRE_MSG_EXCHANGE_BIND: return "EXCHANGE_BIND";
    case WIRE_MSG_EXCHANGE_UNBIND: return "EXCHANGE_UNBIND";
    case WIRE_MSG_CONFIRM: return "CONFIRM";
    case WIRE_MSG_NACK_PUBLISH: return "NACK_PUBLISH";
    case WIRE_MSG_NOT_LEADER: return "NOT_LEADER";
    case WIRE_MSG_DELIVER: return "DELIVER";
    case WIRE_MSG_REPLY: return "REPLY";
    case WIRE_MSG_ERROR: return "ERROR";
    default: return "UNKNOWN";
    }
}

const char *wire_error_name(int err) {
    switch (err) {
    case WIRE_OK: return "OK";
    case WIRE_ENOBUFS: return "WIRE_ENOBUFS";
    case WIRE_ETOOLARGE: return "WIRE_ETOOLARGE";
    case WIRE_EFIELD: return "WIRE_EFIELD";
    case WIRE_ETRUNCATED: return "WIRE_ETRUNCATED";
    case WIRE_EMAGIC: return "WIRE_EMAGIC";
    case WIRE_EVERSION: return "WIRE_EVERSION";
    case WIRE_ECRC: return "WIRE_ECRC";
    case WIRE_ETYPE: return "WIRE_ETYPE";
    case WIRE_EOVERSIZE: return "WIRE_EOVERSIZE";
    case WIRE_ETRAILING: return "WIRE_ETRAILING";
    case WIRE_EFLAG: return "WIRE_EFLAG";
    case WIRE_ETOOMANY: return "WIRE_ETOOMANY";
    case IO_EINVAL: return "IO_EINVAL";
    case IO_ENOENT: return "IO_ENOENT";
    case IO_EIO: return "IO_EIO";
    case IO_ENOSPC: return "IO_ENOSPC";
    case IO_EMSGSIZE: return "IO_EMSGSIZE";
    case IO_ENOMEM: return "IO_ENOMEM";
    case IO_EUNREACH: return "IO_EUNREACH";
    case IO_ECANCELED: return "IO_ECANCELED";
    case IO_ENAMETOOLONG: return "IO_ENAMETOOLONG";
    default: return "UNKNOWN";
    }
}

const char *wire_status_name(unsigned status) {
    switch (status) {
    case WIRE_STATUS_OK: return "OK";
    case WIRE_STATUS_NOT_FOUND: return "NOT_FOUND";
    case WIRE_STATUS_PRECONDITION_FAILED: return "PRECONDITION_FAILED";
    case WIRE_STATUS_INVALID: return "INVALID";
    case WIRE_STATUS_RESOURCE_LIMIT: return "RESOURCE_LIMIT";
    case WIRE_STATUS_NOT_LEADER: return "NOT_LEADER";
    case WIRE_STATUS_TIMEOUT: return "TIMEOUT";
    case WIRE_STATUS_UNROUTABLE: return "UNROUTABLE";
    case WIRE_STATUS_ACCESS_REFUSED: return "ACCESS_REFUSED";
    case WIRE_STATUS_INTERNAL: return "INTERNAL";
    case WIRE_STATUS_PROTOCOL: return "PROTOCOL";
    case WIRE_STATUS_EMPTY: return "EMPTY";
    case WIRE_STATUS_RESOURCE_LOCKED: return "RESOURCE_LOCKED";
    default: return "UNKNOWN";
    }
}
