/*
 * runtime/outbuf.c — coalesced output for one libuv stream (see the header).
 */
#include "runtime/outbuf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io.h"

size_t rt_outbuf_pending_bytes(const rt_outbuf_t *b) {
    assert(b != NULL);
    return b->fill != NULL ? b->fill->len : 0;
}

/* Make room for `need` more bytes: allocate or double (by whole doublings,
 * so growth is amortised). Returns 0 or IO_ENOMEM (the chunk unchanged). */
static int rt_outbuf__reserve(rt_outbuf_t *b, size_t need) {
    assert(b != NULL);
    const size_t used = b->fill != NULL ? b->fill->len : 0;
    const size_t cap = b->fill != NULL ? b->fill->cap : 0;
    if (need > SIZE_MAX / 2 - used) return IO_ENOMEM;
    if (used + need <= cap) return 0;
    size_t next = cap > 0 ? cap : RT_OUTBUF_CHUNK_BYTES_MIN;
    while (next < used + need) next *= 2; /* <= log2(SIZE_MAX) rounds */
    rt_outbuf_chunk_t *c = realloc(b->fill, sizeof(*c) + next);
    if (c == NULL) return IO_ENOMEM;
    if (b->fill == NULL) c->len = 0;
    c->cap = next;
    b->fill = c;
    assert(c->len + need <= c->cap);
    return 0;
}

int rt_outbuf_append(rt_outbuf_t *b, const uint8_t *head, size_t head_len,
                     const uint8_t *body, size_t body_len) {
    assert(b != NULL);
    assert(head != NULL || head_len == 0);
    assert(body != NULL || body_len == 0);
    if (head_len + body_len == 0) return 0;
    if (rt_outbuf__reserve(b, head_len + body_len) != 0) return IO_ENOMEM;
    rt_outbuf_chunk_t *c = b->fill;
    if (head_len > 0) memcpy(c->bytes + c->len, head, head_len);
    c->len += head_len;
    if (body_len > 0) memcpy(c->bytes + c->len, body, body_len);
    c->len += body_len;
    return 0;
}

int rt_outbuf_flush(rt_outbuf_t *b, uv_stream_t *stream, void *owner,
                    uv_write_cb cb, size_t *handed_bytes) {
    assert(b != NULL && stream != NULL && cb != NULL);
    assert(handed_bytes != NULL);
    *handed_bytes = 0;
    rt_outbuf_chunk_t *c = b->fill;
    if (c == NULL || c->len == 0) return 0;
    assert(c->len <= UINT32_MAX); /* uv_buf_t lengths are unsigned int */
    b->fill = NULL;
    c->owner = owner;
    uv_buf_t buf = uv_buf_init((char *)c->bytes, (unsigned)c->len);
    const int rc = uv_write(&c->req, stream, &buf, 1, cb);
    if (rc != 0) {
        free(c);
        return rc;
    }
    *handed_bytes = buf.len;
    return 0;
}

void rt_outbuf_discard(rt_outbuf_t *b) {
    assert(b != NULL);
    free(b->fill);
    b->fill = NULL;
}

void rt_outbuf_chunk_free(rt_outbuf_chunk_t *chunk) { free(chunk); }
