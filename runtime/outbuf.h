/*
 * runtime/outbuf.h — coalesced output for one libuv stream.
 *
 * Writing every message with its own uv_write costs one write(2) per
 * message. Instead a connection appends its frames to a "fill" chunk during
 * a loop turn and hands the whole chunk to uv_write once (the owner decides
 * when: typically from a zero-delay timer that runs on the next loop turn,
 * before the loop can block again). The chunk carries its own uv_write_t, so
 * handing it over costs no copy and completion frees it.
 *
 * Ownership: the rt_outbuf_t owns its fill chunk until rt_outbuf_flush hands
 * it to libuv; from then on the write callback owns it and must call
 * rt_outbuf_chunk_free. Limits (how many bytes a connection may queue) stay
 * with the owner: rt_outbuf_pending_bytes says how much is not yet handed
 * over.
 */
#ifndef CHAOSLAB_RUNTIME_OUTBUF_H
#define CHAOSLAB_RUNTIME_OUTBUF_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define RT_OUTBUF_CHUNK_BYTES_MIN (16u * 1024u)  /* first allocation */
#define RT_OUTBUF_FLUSH_BYTES (256u * 1024u)     /* flush at once past this */

typedef struct rt_outbuf_chunk {
    uv_write_t req;  /* first: the write callback casts req back */
    void *owner;     /* the connection, for the write callback */
    size_t len;      /* bytes used */
    size_t cap;      /* bytes allocated in bytes[] */
    uint8_t bytes[];
} rt_outbuf_chunk_t;

typedef struct rt_outbuf {
    rt_outbuf_chunk_t *fill; /* owned; NULL when nothing is pending */
} rt_outbuf_t;

/* Bytes appended and not yet handed to uv_write. */
size_t rt_outbuf_pending_bytes(const rt_outbuf_t *b);

/* Append head[0..head_len) then body[0..body_len) (either may be empty).
 * Returns 0, or IO_ENOMEM (nothing appended). */
int rt_outbuf_append(rt_outbuf_t *b, const uint8_t *head, size_t head_len,
                     const uint8_t *body, size_t body_len);

/* Hand the pending bytes to uv_write on `stream` as one write; `cb` gets
 * the chunk (cast the uv_write_t) with `owner` set and must free it with
 * rt_outbuf_chunk_free. Returns 0 with *handed_bytes (0 when nothing was
 * pending: no write, no callback), or libuv's negative error after which
 * the bytes are dropped and no callback fires. */
int rt_outbuf_flush(rt_outbuf_t *b, uv_stream_t *stream, void *owner,
                    uv_write_cb cb, size_t *handed_bytes);

/* Drop the pending bytes (the connection is gone). Idempotent. */
void rt_outbuf_discard(rt_outbuf_t *b);

/* Free a chunk whose write completed. NULL is fine. */
void rt_outbuf_chunk_free(rt_outbuf_chunk_t *chunk);

#endif
