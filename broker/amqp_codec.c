/*
 * broker/amqp_codec.c -- AMQP 0-9-1 wire codec (see amqp_codec.h).
 *
 * All integers are big endian (network order). Every read checks the
 * remaining length first; the reader's error is sticky so a decoder can read
 * a whole argument list and check once.
 */
#include "broker/amqp_codec.h"

#include <assert.h>
#include <string.h>

amqp_bytes_t amqp_cstr(const char *s) {
    amqp_bytes_t b = {(const uint8_t *)s, s ? strlen(s) : 0};
    return b;
}

int amqp_bytes_eq(amqp_bytes_t b, const char *s) {
    assert(s != NULL);
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* ---- reader ---------------------------------------------------------- */

void amqp_rd_init(amqp_rd_t *r, const uint8_t *p, size_t len) {
    assert(r != NULL);
    assert(p != NULL || len == 0);
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->err = 0;
}

/* Returns a pointer to n readable bytes and advances, or NULL (err set). */
static const uint8_t *amqp__rd_take(amqp_rd_t *r, size_t n) {
    assert(r->pos <= r->len);
    if (r->err || n > r->len - r->pos) {
        r->err = AMQP_E_SYNTAX;
        return NULL;
    }
    /* NULL + 0 is undefined behaviour, so an empty buffer yields a dummy. */
    static const uint8_t empty[1] = {0};
    const uint8_t *q = r->p ? r->p + r->pos : empty;
    r->pos += n;
    return q;
}

uint8_t amqp_rd_u8(amqp_rd_t *r) {
    const uint8_t *q = amqp__rd_take(r, 1);
    return q ? q[0] : 0;
}

uint16_t amqp_rd_u16(amqp_rd_t *r) {
    const uint8_t *q = amqp__rd_take(r, 2);
    return q ? (uint16_t)((q[0] << 8) | q[1]) : 0;
}

uint32_t amqp_rd_u32(amqp_rd_t *r) {
    const uint8_t *q = amqp__rd_take(r, 4);
    if (!q) return 0;
    return ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) |
           ((uint32_t)q[2] << 8) | (uint32_t)q[3];
}

uint64_t amqp_rd_u64(amqp_rd_t *r) {
    uint64_t hi = amqp_rd_u32(r);
    uint64_t lo = amqp_rd_u32(r);
    return (hi << 32) | lo;
}

amqp_bytes_t amqp_rd_bytes(amqp_rd_t *r, size_t n) {
    amqp_bytes_t b = {NULL, 0};
    const uint8_t *q = amqp__rd_take(r, n);
    if (q && n > 0) {
        b.ptr = q;
        b.len = n;
    }
    return b;
}

amqp_bytes_t amqp_rd_shortstr(amqp_rd_t *r) {
    uint8_t n = amqp_rd_u8(r);
    return amqp_rd_bytes(r, n);
}

amqp_bytes_t amqp_rd_longstr(amqp_rd_t *r) {
    uint32_t n = amqp_rd_u32(r);
    return amqp_rd_bytes(r, n);
}

amqp_table_t amqp_rd_table(amqp_rd_t *r) {
    amqp_bytes_t b = amqp_rd_longstr(r);
    amqp_table_t t = {b.ptr, b.len};
    if (!r->err && amqp_table_validate(t, 0, 1) != 0) {
        r->err = AMQP_E_SYNTAX;
        t.ptr = NULL;
        t.len = 0;
    }
    return t;
}

/* ---- writer ---------------------------------------------------------- */

void amqp_wr_init(amqp_wr_t *w, uint8_t *p, size_t cap) {
    assert(w != NULL);
    assert(p != NULL || cap == 0);
    w->p = p;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
}

void amqp_wr_bytes(amqp_wr_t *w, const void *p, size_t n) {
    assert(w->len <= w->cap);
    if (w->err) return;
    if (n > w->cap - w->len) {
        w->err = AMQP_E_NOSPACE;
        return;
    }
    if (n) memcpy(w->p + w->len, p, n);
    w->len += n;
}

void amqp_wr_u8(amqp_wr_t *w, uint8_t v) { amqp_wr_bytes(w, &v, 1); }

void amqp_wr_u16(amqp_wr_t *w, uint16_t v) {
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    amqp_wr_bytes(w, b, 2);
}

void amqp_wr_u32(amqp_wr_t *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    amqp_wr_bytes(w, b, 4);
}

void amqp_wr_u64(amqp_wr_t *w, uint64_t v) {
    amqp_wr_u32(w, (uint32_t)(v >> 32));
    amqp_wr_u32(w, (uint32_t)v);
}

void amqp_wr_shortstr(amqp_wr_t *w, amqp_bytes_t s) {
    if (s.len > AMQP_SHORTSTR_SIZE_MAX) {
        if (!w->err) w->err = AMQP_E_SYNTAX;
        return;
    }
    amqp_wr_u8(w, (uint8_t)s.len);
    amqp_wr_bytes(w, s.ptr, s.len);
}

void amqp_wr_longstr(amqp_wr_t *w, amqp_bytes_t s) {
    if (s.len > UINT32_MAX) {
        if (!w->err) w->err = AMQP_E_SYNTAX;
        return;
    }
    amqp_wr_u32(w, (uint32_t)s.len);
    amqp_wr_bytes(w, s.ptr, s.len);
}

void amqp_wr_table(amqp_wr_t *w, amqp_table_t t) {
    amqp_bytes_t b = {t.ptr, t.len};
    amqp_wr_longstr(w, b);
}

/* ---- field tables ---------------------------------------------------- */

/* Read one value of `kind`. Nested tables/arrays are returned unvalidated;
 * the validator recurses on them. Returns 0 or AMQP_E_SYNTAX. */
static int amqp__rd_field(amqp_rd_t *r, uint8_t kind, amqp_field_t *f) {
    f->kind = kind;
    switch (kind) {
    case 't': f->v.u = amqp_rd_u8(r) ? 1 : 0; break;
    case 'b': f->v.i = (int8_t)amqp_rd_u8(r); break;
    case 'B': f->v.u = amqp_rd_u8(r); break;
    case 's': f->v.i = (int16_t)amqp_rd_u16(r); break;
    case 'u': f->v.u = amqp_rd_u16(r); break;
    case 'I': f->v.i = (int32_t)amqp_rd_u32(r); break;
    case 'i': f->v.u = amqp_rd_u32(r); break;
    case 'l': f->v.i = (int64_t)amqp_rd_u64(r); break;
    case 'L': f->v.u = amqp_rd_u64(r); break;
    case 'T': f->v.u = amqp_rd_u64(r); break;
    case 'f': {
        uint32_t bits = amqp_rd_u32(r);
        memcpy(&f->v.f32, &bits, sizeof bits);
        break;
    }
    case 'd': {
        uint64_t bits = amqp_rd_u64(r);
        memcpy(&f->v.f64, &bits, sizeof bits);
        break;
    }
    case 'D':
        f->v.decimal.scale = amqp_rd_u8(r);
        f->v.decimal.value = amqp_rd_u32(r);
        break;
    case 'S':
    case 'x': f->v.bytes = amqp_rd_longstr(r); break;
    case 'A':
    case 'F': {
        amqp_bytes_t b = amqp_rd_longstr(r);
        f->v.table.ptr = b.ptr;
        f->v.table.len = b.len;
        break;
    }
    case 'V': break;
    default: r->err = AMQP_E_SYNTAX; break;
    }
    return r->err ? AMQP_E_SYNTAX : 0;
}

int amqp_table_validate(amqp_table_t t, int is_array, unsigned depth) {
    assert(t.ptr != NULL || t.len == 0);
    assert(depth >= 1);
    if (depth > AMQP_TABLE_DEPTH_MAX) return AMQP_E_DEPTH;
    amqp_table_iter_t it;
    amqp_table_iter_init(&it, t, is_array);
    /* Every entry consumes >= 1 byte, so t.len bounds the loop. */
    for (size_t i = 0; i <= t.len; i++) {
        amqp_bytes_t key;
        amqp_field_t val;
        int rc = amqp_table_next(&it, &key, &val);
        if (rc <= 0) return rc;
        if (val.kind == 'F' || val.kind == 'A') {
            rc = amqp_table_validate(val.v.table, val.kind == 'A', depth + 1);
            if (rc != 0) return rc;
        }
    }
    return AMQP_E_SYNTAX; /* unreachable: the loop bound is generous */
}

void amqp_table_iter_init(amqp_table_iter_t *it, amqp_table_t t, int is_array) {
    assert(it != NULL);
    amqp_rd_init(&it->r, t.ptr, t.len);
    it->is_array = is_array;
}

int amqp_table_next(amqp_table_iter_t *it, amqp_bytes_t *key, amqp_field_t *val) {
    assert(it != NULL && val != NULL);
    if (it->r.err) return AMQP_E_SYNTAX;
    if (it->r.pos == it->r.len) return 0;
    amqp_bytes_t k = {NULL, 0};
    if (!it->is_array) k = amqp_rd_shortstr(&it->r);
    if (key) *key = k;
    uint8_t kind = amqp_rd_u8(&it->r);
    if (it->r.err) return AMQP_E_SYNTAX;
    if (amqp__rd_field(&it->r, kind, val) != 0) return AMQP_E_SYNTAX;
    return 1;
}

int amqp_table_get(amqp_table_t t, const char *key, amqp_field_t *val) {
    assert(key != NULL && val != NULL);
    amqp_table_iter_t it;
    amqp_table_iter_init(&it, t, 0);
    for (size_t i = 0; i <= t.len; i++) {
        amqp_bytes_t k;
        int rc = amqp_table_next(&it, &k, val);
        if (rc <= 0) return rc;
        if (amqp_bytes_eq(k, key)) return 1;
    }
    return AMQP_E_SYNTAX;
}

size_t amqp_wr_table_begin(amqp_wr_t *w) {
    assert(w != NULL);
    size_t mark = w->len;
    amqp_wr_u32(w, 0);
    return mark;
}

void amqp_wr_table_end(amqp_wr_t *w, size_t mark) {
    assert(w != NULL);
    if (w->err) return;
    assert(mark + 4 <= w->len);
    size_t n = w->len - mark - 4;
    if (n > UINT32_MAX) {
        w->err = AMQP_E_SYNTAX;
        return;
    }
    w->p[mark] = (uint8_t)(n >> 24);
    w->p[mark + 1] = (uint8_t)(n >> 16);
    w->p[mark + 2] = (uint8_t)(n >> 8);
    w->p[mark + 3] = (uint8_t)n;
}

void amqp_wr_field(amqp_wr_t *w, const amqp_field_t *f) {
    assert(w != NULL && f != NULL);
    amqp_wr_u8(w, f->kind);
    switch (f->kind) {
    case 't': amqp_wr_u8(w, f->v.u ? 1 : 0); break;
    case 'b': amqp_wr_u8(w, (uint8_t)f->v.i); break;
    case 'B': amqp_wr_u8(w, (uint8_t)f->v.u); break;
    case 's': amqp_wr_u16(w, (uint16_t)f->v.i); break;
    case 'u': amqp_wr_u16(w, (uint16_t)f->v.u); break;
    case 'I': amqp_wr_u32(w, (uint32_t)f->v.i); break;
    case 'i': amqp_wr_u32(w, (uint32_t)f->v.u); break;
    case 'l': amqp_wr_u64(w, (uint64_t)f->v.i); break;
    case 'L':
    case 'T': amqp_wr_u64(w, f->v.u); break;
    case 'f': {
        uint32_t bits;
        memcpy(&bits, &f->v.f32, sizeof bits);
        amqp_wr_u32(w, bits);
        break;
    }
    case 'd': {
        uint64_t bits;
        memcpy(&bits, &f->v.f64, sizeof bits);
        amqp_wr_u64(w, bits);
        break;
    }
    case 'D':
        amqp_wr_u8(w, f->v.decimal.scale);
        amqp_wr_u32(w, f->v.decimal.value);
        break;
    case 'S':
    case 'x': amqp_wr_longstr(w, f->v.bytes); break;
    case 'A':
    case 'F': amqp_wr_table(w, f->v.table); break;
    case 'V': break;
    default:
        if (!w->err) w->err = AMQP_E_SYNTAX;
        break;
    }
}

void amqp_wr_field_bool(amqp_wr_t *w, const char *key, int b) {
    amqp_field_t f = {.kind = 't', .v.u = b ? 1u : 0u};
    amqp_wr_shortstr(w, amqp_cstr(key));
    amqp_wr_field(w, &f);
}

void amqp_wr_field_str(amqp_wr_t *w, const char *key, const char *s) {
    amqp_field_t f = {.kind = 'S', .v.bytes = amqp_cstr(s)};
    amqp_wr_shortstr(w, amqp_cstr(key));
    amqp_wr_field(w, &f);
}

/* ---- frames ---------------------------------------------------------- */

int amqp_frame_parse(const uint8_t *buf, size_t len, uint32_t frame_max,
                     amqp_frame_t *out) {
    assert(buf != NULL || len == 0);
    assert(out != NULL);
    if (len < AMQP_FRAME_HEADER_SIZE) return 0;
    amqp_rd_t r;
    amqp_rd_init(&r, buf, len);
    uint8_t type = amqp_rd_u8(&r);
    uint16_t channel = amqp_rd_u16(&r);
    uint32_t size = amqp_rd_u32(&r);
    assert(r.err == 0);
    if (type != AMQP_FRAME_METHOD && type != AMQP_FRAME_HEADER &&
        type != AMQP_FRAME_BODY && type != AMQP_FRAME_HEARTBEAT)
        return AMQP_E_FRAME_TYPE;
    /* 64-bit sum: size near UINT32_MAX must not wrap. */
    uint64_t total = (uint64_t)size + AMQP_FRAME_OVERHEAD_SIZE;
    if (total > frame_max) return AMQP_E_FRAME_SIZE;
    if (len < total) return 0;
    if (buf[total - 1] != AMQP_FRAME_END) return AMQP_E_FRAME_END;
    out->type = type;
    out->channel = channel;
    out->size = size;
    out->payload = buf + AMQP_FRAME_HEADER_SIZE;
    return (int)total;
}

size_t amqp_wr_frame_begin(amqp_wr_t *w, uint8_t type, uint16_t channel) {
    assert(w != NULL);
    size_t mark = w->len;
    amqp_wr_u8(w, type);
    amqp_wr_u16(w, channel);
    amqp_wr_u32(w, 0);
    return mark;
}

void amqp_wr_frame_end(amqp_wr_t *w, size_t mark) {
    assert(w != NULL);
    if (w->err) return;
    assert(mark + AMQP_FRAME_HEADER_SIZE <= w->len);
    size_t n = w->len - mark - AMQP_FRAME_HEADER_SIZE;
    assert(n <= UINT32_MAX);
    w->p[mark + 3] = (uint8_t)(n >> 24);
    w->p[mark + 4] = (uint8_t)(n >> 16);
    w->p[mark + 5] = (uint8_t)(n >> 8);
    w->p[mark + 6] = (uint8_t)n;
    amqp_wr_u8(w, AMQP_FRAME_END);
}

/* ---- content header -------------------------------------------------- */

static void amqp__rd_props(amqp_rd_t *r, amqp_basic_props_t *pr) {
    uint16_t flags = amqp_rd_u16(r);
    /* Basic has 14 properties: one flag word; bit 0 (continuation) and bit 1
     * are never legitimately set for class basic. */
    if (flags & 0x3u) r->err = AMQP_E_SYNTAX;
    if (r->err) return;
    pr->flags = flags;
    if (flags & AMQP_PROP_CONTENT_TYPE) pr->content_type = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_CONTENT_ENCODING) pr->content_encoding = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_HEADERS) pr->headers = amqp_rd_table(r);
    if (flags & AMQP_PROP_DELIVERY_MODE) pr->delivery_mode = amqp_rd_u8(r);
    if (flags & AMQP_PROP_PRIORITY) pr->priority = amqp_rd_u8(r);
    if (flags & AMQP_PROP_CORRELATION_ID) pr->correlation_id = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_REPLY_TO) pr->reply_to = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_EXPIRATION) pr->expiration = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_MESSAGE_ID) pr->message_id = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_TIMESTAMP) pr->timestamp = amqp_rd_u64(r);
    if (flags & AMQP_PROP_TYPE) pr->type = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_USER_ID) pr->user_id = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_APP_ID) pr->app_id = amqp_rd_shortstr(r);
    if (flags & AMQP_PROP_CLUSTER_ID) pr->cluster_id = amqp_rd_shortstr(r);
}

int amqp_basic_props_decode(const uint8_t *p, size_t len, amqp_basic_props_t *out) {
    assert(p != NULL || len == 0);
    assert(out != NULL);
    memset(out, 0, sizeof *out);
    amqp_rd_t r;
    amqp_rd_init(&r, p, len);
    amqp__rd_props(&r, out);
    if (r.err || r.pos != r.len) return AMQP_E_SYNTAX;
    return 0;
}

int amqp_content_header_decode(const uint8_t *p, size_t len,
                               amqp_content_header_t *out) {
    assert(p != NULL || len == 0);
    assert(out != NULL);
    memset(out, 0, sizeof *out);
    amqp_rd_t r;
    amqp_rd_init(&r, p, len);
    out->class_id = amqp_rd_u16(&r);
    out->weight = amqp_rd_u16(&r);
    out->body_size = amqp_rd_u64(&r);
    amqp__rd_props(&r, &out->props);
    if (r.err || r.pos != r.len) return AMQP_E_SYNTAX;
    return 0;
}

void amqp_basic_props_encode(amqp_wr_t *w, const amqp_basic_props_t *pr) {
    assert(w != NULL && pr != NULL);
    uint16_t flags = (uint16_t)(pr->flags & ~0x3u);
    amqp_wr_u16(w, flags);
    if (flags & AMQP_PROP_CONTENT_TYPE) amqp_wr_shortstr(w, pr->content_type);
    if (flags & AMQP_PROP_CONTENT_ENCODING) amqp_wr_shortstr(w, pr->content_encoding);
    if (flags & AMQP_PROP_HEADERS) amqp_wr_table(w, pr->headers);
    if (flags & AMQP_PROP_DELIVERY_MODE) amqp_wr_u8(w, pr->delivery_mode);
    if (flags & AMQP_PROP_PRIORITY) amqp_wr_u8(w, pr->priority);
    if (flags & AMQP_PROP_CORRELATION_ID) amqp_wr_shortstr(w, pr->correlation_id);
    if (flags & AMQP_PROP_REPLY_TO) amqp_wr_shortstr(w, pr->reply_to);
    if (flags & AMQP_PROP_EXPIRATION) amqp_wr_shortstr(w, pr->expiration);
    if (flags & AMQP_PROP_MESSAGE_ID) amqp_wr_shortstr(w, pr->message_id);
    if (flags & AMQP_PROP_TIMESTAMP) amqp_wr_u64(w, pr->timestamp);
    if (flags & AMQP_PROP_TYPE) amqp_wr_shortstr(w, pr->type);
    if (flags & AMQP_PROP_USER_ID) amqp_wr_shortstr(w, pr->user_id);
    if (flags & AMQP_PROP_APP_ID) amqp_wr_shortstr(w, pr->app_id);
    if (flags & AMQP_PROP_CLUSTER_ID) amqp_wr_shortstr(w, pr->cluster_id);
}

void amqp_content_header_encode(amqp_wr_t *w, const amqp_content_header_t *h) {
    assert(w != NULL && h != NULL);
    amqp_wr_u16(w, h->class_id);
    amqp_wr_u16(w, h->weight);
    amqp_wr_u64(w, h->body_size);
    amqp_basic_props_encode(w, &h->props);
}
