/*
 * runtime/peers.c — TCP links between the nodes of a cluster.
 *
 * Every node listens on its own peer port and keeps ONE outbound connection
 * to every other node; it sends only on its outbound links and receives only
 * on the links others opened to it. So each direction of a pair is one TCP
 * stream: messages from A to B arrive in order, and a broken link is simply
 * re-dialed with exponential backoff. To the core a link that is down is
 * message loss (send returns 0), exactly like a partition in the simulator.
 *
 * Wire format (big-endian):
 *   hello, once per connection, dialer -> listener: magic u32, from u32, to u32
 *   frame, repeated:                                length u32, bytes[length]
 * A frame longer than IO_MESSAGE_SIZE_MAX, a bad hello, or any byte sent back
 * on an outbound link is a protocol error: that connection is closed.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

#define RT__LISTEN_BACKLOG 64
#define RT__KEEPALIVE_S 10u /* idle seconds before TCP keepalive probes */

static void rt__put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t rt__get_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* ---- connections -------------------------------------------------------- */

static rt__conn_t *rt__conn_new(rt_io_t *io, int outbound, int32_t peer_id) {
    assert(io != NULL);
    assert(io->state == RT__RUNNING);
    rt__conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    if (uv_tcp_init(io->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    io->pending++;
    c->io = io;
    c->tcp.data = c;
    c->connect_req.data = c;
    c->outbound = (uint8_t)outbound;
    c->peer_id = peer_id;
    c->stage = outbound ? RT__STAGE_HEADER : RT__STAGE_HANDSHAKE;
    return c;
}

static void rt__conn_closed(uv_handle_t *handle) {
    rt__conn_t *c = handle->data;
    assert(c != NULL && c->closing);
    rt_io_t *io = c->io;
    free(c->frame);
    free(c);
    rt__pending_done(io);
}

/* Close one connection and unhook it from the io. Idempotent. */
static void rt__conn_close(rt__conn_t *c) {
    assert(c != NULL);
    rt_io_t *io = c->io;
    if (c->closing) return;
    c->closing = 1;
    if (!c->outbound) {
        if (c->prev != NULL) c->prev->next = c->next;
        else io->inbound = c->next;
        if (c->next != NULL) c->next->prev = c->prev;
        assert(io->inbound_count > 0);
        io->inbound_count--;
        if (c->peer_id >= 0 && io->peers[c->peer_id].in == c) {
            io->peers[c->peer_id].in = NULL;
        }
    }
    uv_close((uv_handle_t *)&c->tcp, rt__conn_closed);
}

static void rt__retry_cb(uv_timer_t *handle);

/* The outbound link to `p` is gone (or never came up): drop it and dial
 * again after the current backoff, which then doubles up to the cap. */
static void rt__peer_lost(rt__peer_t *p) {
    rt_io_t *io = p->io;
    assert(io != NULL);
    rt_outbuf_discard(&p->outbuf); /* frames for the dead link are lost */
    if (p->out != NULL) {
        rt__conn_close(p->out);
        p->out = NULL;
    }
    if (p->connected) {
        io->stats.disconnects++;
        rt_log_write(&io->log, RT_LOG_INFO, "link to peer %u lost", p->id);
    }
    p->connected = 0;
    if (io->state != RT__RUNNING || !p->retry_timer_open) return;
    uv_timer_start(&p->retry_timer, rt__retry_cb, p->backoff_ms, 0);
    uint64_t next = (uint64_t)p->backoff_ms * 2;
    p->backoff_ms = next > io->backoff_max_ms ? io->backoff_max_ms : (uint32_t)next;
}

/* A connection failed: outbound ones re-dial, inbound ones just close. */
static void rt__conn_lost(rt__conn_t *c) {
    assert(c != NULL);
    rt_io_t *io = c->io;
    if (c->outbound && c->peer_id >= 0 && io->peers[c->peer_id].out == c) {
        rt__peer_lost(&io->peers[c->peer_id]);
    } else {
        rt__conn_close(c);
    }
}

/* ---- writing ------------------------------------------------------------ */

/* Frames are appended to the peer's outbuf and written once per loop turn
 * (rt__flush_cb), so a burst of messages to one peer costs one write(2). */

static void rt__write_cb(uv_write_t *req, int status) {
    rt_outbuf_chunk_t *chunk = (rt_outbuf_chunk_t *)req;
    rt__peer_t *p = chunk->owner;
    assert(p != NULL);
    assert(p->queued_bytes >= chunk->len);
    p->queued_bytes -= chunk->len;
    rt__conn_t *c = req->handle->data;
    if (status < 0 && status != UV_ECANCELED && c == p->out && !c->closing) {
        rt_log_write(&p->io->log, RT_LOG_DEBUG, "write to peer %u: %s", p->id,
                     uv_strerror(status));
        rt__peer_lost(p);
    }
    rt_outbuf_chunk_free(chunk);
}

/* Hand p's pending bytes to libuv as one write; a failure tears the link
 * down (its frames are lost, like any frame on a broken link). */
static void rt__peer_flush(rt__peer_t *p) {
    assert(p != NULL);
    if (rt_outbuf_pending_bytes(&p->outbuf) == 0) return;
    if (p->out == NULL || p->out->closing) {
        rt_outbuf_discard(&p->outbuf);
        return;
    }
    size_t handed = 0;
    int rc = rt_outbuf_flush(&p->outbuf, (uv_stream_t *)&p->out->tcp, p,
                             rt__write_cb, &handed);
    if (rc != 0) {
        rt__peer_lost(p);
        return;
    }
    p->queued_bytes += handed;
}

static void rt__flush_cb(uv_timer_t *handle) {
    rt_io_t *io = handle->data;
    assert(io != NULL && io->flush_timer_open);
    assert(io->peers_count <= RT_PEERS_MAX);
    for (uint32_t i = 0; i < io->peers_count; i++) rt__peer_flush(&io->peers[i]);
}

/* Queue `head` + `body` on p's outbound link; written on the next loop
 * turn, or at once when the pending bytes pass RT_OUTBUF_FLUSH_BYTES.
 * Returns 0 or IO_ENOMEM (queue limit or no memory: nothing queued). */
static int rt__peer_write(rt__peer_t *p, const uint8_t *head, size_t head_len,
                          const uint8_t *body, size_t body_len) {
    assert(p->out != NULL);
    assert(head_len + body_len > 0);
    rt_io_t *io = p->io;
    size_t size = head_len + body_len;
    size_t pending = rt_outbuf_pending_bytes(&p->outbuf);
    if (p->queued_bytes + pending + size > RT_PEER_QUEUE_BYTES_MAX) return IO_ENOMEM;
    if (rt_outbuf_append(&p->outbuf, head, head_len, body, body_len) != 0) {
        return IO_ENOMEM;
    }
    if (pending + size >= RT_OUTBUF_FLUSH_BYTES) {
        rt__peer_flush(p);
    } else if (io->flush_timer_open &&
               !uv_is_active((uv_handle_t *)&io->flush_timer)) {
        /* A zero delay runs on the next loop turn, never inside this call. */
        uv_timer_start(&io->flush_timer, rt__flush_cb, 0, 0);
    }
    return 0;
}

int rt__peers_send(rt_io_t *io, io_addr_t dest, const uint8_t *bytes,
                   size_t len) {
    assert(dest < io->peers_count && dest != io->node_id);
    assert(len <= IO_MESSAGE_SIZE_MAX);
    rt__peer_t *p = &io->peers[dest];
    if (!p->connected) {
        io->stats.frames_dropped_down++;
        return 0; /* a link that is down is message loss, not an error */
    }
    uint8_t head[RT__FRAME_HEADER_BYTES];
    rt__put_be32(head, (uint32_t)len);
    int rc = rt__peer_write(p, head, sizeof(head), bytes, len);
    if (rc == IO_ENOMEM) {
        io->stats.frames_dropped_overflow++;
        return rc;
    }
    io->stats.frames_sent++;
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

static void rt__alloc_cb(uv_handle_t *handle, size_t hint, uv_buf_t *buf) {
    rt__conn_t *c = handle->data;
    assert(c != NULL);
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void rt__deliver(rt__conn_t *c, const uint8_t *bytes, uint32_t len) {
    rt_io_t *io = c->io;
    assert(c->peer_id >= 0);
    assert(len <= IO_MESSAGE_SIZE_MAX);
    if (!rt__node_live(io)) return;
    io->stats.frames_received++;
    rt__dispatch_begin(io);
    io->program->handler->on_message(io->node, (io_addr_t)c->peer_id, bytes, len);
    rt__dispatch_end(io);
}

static void rt__reject(rt__conn_t *c, const char *why) {
    rt_io_t *io = c->io;
    io->stats.frames_rejected++;
    rt_log_write(&io->log, RT_LOG_WARN, "closing link from peer %d: %s",
                 (int)c->peer_id, why);
    rt__conn_close(c);
}

/* The 12-byte hello arrived: check it names a real peer dialing us. */
static void rt__conn_hello(rt__conn_t *c) {
    rt_io_t *io = c->io;
    assert(!c->outbound && c->hdr_have == RT__HANDSHAKE_BYTES);
    uint32_t magic = rt__get_be32(c->hdr);
    uint32_t from = rt__get_be32(c->hdr + 4);
    uint32_t to = rt__get_be32(c->hdr + 8);
    if (magic != RT__HANDSHAKE_MAGIC || from >= io->peers_count ||
        from == io->node_id || to != io->node_id) {
        rt__reject(c, "bad hello");
        return;
    }
    rt__peer_t *p = &io->peers[from];
    /* The peer re-dialed: its old link is dead even if we missed the FIN. */
    if (p->in != NULL && p->in != c) rt__conn_close(p->in);
    p->in = c;
    c->peer_id = (int32_t)from;
    c->stage = RT__STAGE_HEADER;
    c->hdr_have = 0;
    rt_log_write(&io->log, RT_LOG_DEBUG, "peer %u dialed in", from);
}

/* A frame length arrived. Returns bytes of `data` consumed by a frame that
 * was wholly inside it (delivered without a copy), else 0. */
static size_t rt__conn_header(rt__conn_t *c, const uint8_t *data, size_t avail) {
    uint32_t len = rt__get_be32(c->hdr);
    c->hdr_have = 0;
    if (len > IO_MESSAGE_SIZE_MAX) {
        rt__reject(c, "frame too large");
        return 0;
    }
    if (len <= avail) { /* common case: the whole frame is in this read */
        rt__deliver(c, len > 0 ? data : c->hdr, len);
        return len;
    }
    c->frame = malloc(len);
    if (c->frame == NULL) {
        rt__reject(c, "out of memory for a frame");
        return 0;
    }
    c->frame_len = len;
    c->frame_have = 0;
    c->stage = RT__STAGE_BODY;
    return 0;
}

static size_t rt__take(uint8_t *dst, uint32_t *have, uint32_t want,
                       const uint8_t *src, size_t avail) {
    assert(*have < want);
    size_t n = want - *have;
    if (n > avail) n = avail;
    memcpy(dst + *have, src, n);
    *have += (uint32_t)n;
    return n;
}

/* Parse `n` bytes; every turn consumes at least one byte, so n bounds it. */
static void rt__conn_feed(rt__conn_t *c, const uint8_t *data, size_t n) {
    rt_io_t *io = c->io;
    size_t pos = 0;
    while (pos < n) {
        if (c->closing || io->state != RT__RUNNING) return;
        if (c->stage == RT__STAGE_HANDSHAKE) {
            pos += rt__take(c->hdr, &c->hdr_have, RT__HANDSHAKE_BYTES,
                            data + pos, n - pos);
            if (c->hdr_have == RT__HANDSHAKE_BYTES) rt__conn_hello(c);
        } else if (c->stage == RT__STAGE_HEADER) {
            pos += rt__take(c->hdr, &c->hdr_have, RT__FRAME_HEADER_BYTES,
                            data + pos, n - pos);
            if (c->hdr_have == RT__FRAME_HEADER_BYTES) {
                pos += rt__conn_header(c, data + pos, n - pos);
            }
        } else {
            assert(c->stage == RT__STAGE_BODY && c->frame != NULL);
            pos += rt__take(c->frame, &c->frame_have, c->frame_len, data + pos,
                            n - pos);
            if (c->frame_have == c->frame_len) {
                uint8_t *frame = c->frame;
                c->frame = NULL; /* a stop inside delivery must not free it */
                c->stage = RT__STAGE_HEADER;
                rt__deliver(c, frame, c->frame_len);
                free(frame);
            }
        }
    }
}

static void rt__read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    rt__conn_t *c = stream->data;
    assert(c != NULL);
    if (c->closing || nread == 0) return;
    if (nread < 0) {
        if (c->peer_id >= 0 && nread != UV_EOF) {
            rt_log_write(&c->io->log, RT_LOG_DEBUG, "link with peer %d: %s",
                         (int)c->peer_id, uv_strerror((int)nread));
        }
        rt__conn_lost(c);
        return;
    }
    if (c->outbound) { /* listeners never talk back on our link */
        c->io->stats.frames_rejected++;
        rt__conn_lost(c);
        return;
    }
    rt__conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- dialing ------------------------------------------------------------ */

static void rt__connect_cb(uv_connect_t *req, int status) {
    rt__conn_t *c = req->data;
    assert(c != NULL && c->outbound);
    if (status == UV_ECANCELED || c->closing) return;
    rt_io_t *io = c->io;
    rt__peer_t *p = &io->peers[c->peer_id];
    assert(p->out == c);
    if (status < 0) {
        rt_log_write(&io->log, RT_LOG_DEBUG, "dial peer %u: %s (retry in %u ms)",
                     p->id, uv_strerror(status), p->backoff_ms);
        rt__peer_lost(p);
        return;
    }
    uint8_t hello[RT__HANDSHAKE_BYTES];
    rt__put_be32(hello, RT__HANDSHAKE_MAGIC);
    rt__put_be32(hello + 4, io->node_id);
    rt__put_be32(hello + 8, p->id);
    if (uv_read_start((uv_stream_t *)&c->tcp, rt__alloc_cb, rt__read_cb) != 0 ||
        rt__peer_write(p, hello, sizeof(hello), NULL, 0) != 0) {
        rt__peer_lost(p);
        return;
    }
    rt__peer_flush(p); /* the hello goes out first, alone */
    if (p->out != c) return; /* the flush failed: the link is already lost */
    p->connected = 1;
    p->backoff_ms = io->backoff_min_ms;
    io->stats.connects++;
    rt_log_write(&io->log, RT_LOG_INFO, "link to peer %u up", p->id);
}

static void rt__peer_dial(rt__peer_t *p) {
    rt_io_t *io = p->io;
    assert(p->out == NULL && !p->connected);
    assert(io->state == RT__RUNNING);
    rt__conn_t *c = rt__conn_new(io, 1, (int32_t)p->id);
    if (c == NULL) {
        rt__peer_lost(p);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    /* A peer that vanished without a FIN is noticed by keepalive. */
    uv_tcp_keepalive(&c->tcp, 1, RT__KEEPALIVE_S);
    p->out = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp,
                            (const struct sockaddr *)&p->addr, rt__connect_cb);
    if (rc != 0) {
        rt_log_write(&io->log, RT_LOG_DEBUG, "dial peer %u: %s", p->id,
                     uv_strerror(rc));
        rt__peer_lost(p);
    }
}

static void rt__retry_cb(uv_timer_t *handle) {
    rt__peer_t *p = handle->data;
    assert(p != NULL);
    if (p->io->state != RT__RUNNING || p->out != NULL) return;
    rt__peer_dial(p);
}

/* ---- listening ---------------------------------------------------------- */

static void rt__accept_cb(uv_stream_t *server, int status) {
    rt_io_t *io = server->data;
    assert(io != NULL);
    if (status < 0 || io->state != RT__RUNNING) return;
    rt__conn_t *c = rt__conn_new(io, 0, -1);
    if (c == NULL) return;
    /* Link first so rt__conn_close's unlink is valid on every path. */
    c->next = io->inbound;
    if (io->inbound != NULL) io->inbound->prev = c;
    io->inbound = c;
    io->inbound_count++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        io->inbound_count > RT_INBOUND_MAX) {
        rt__conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, RT__KEEPALIVE_S);
    if (uv_read_start((uv_stream_t *)&c->tcp, rt__alloc_cb, rt__read_cb) != 0) {
        rt__conn_close(c);
    }
}

static int rt__listen_addr(const rt_io_t *io, struct sockaddr_storage *out) {
    const struct sockaddr_storage *own = &io->peers[io->node_id].addr;
    int port = own->ss_family == AF_INET6
                   ? ntohs(((const struct sockaddr_in6 *)own)->sin6_port)
                   : ntohs(((const struct sockaddr_in *)own)->sin_port);
    assert(port > 0);
    const char *host = io->listen_host;
    memset(out, 0, sizeof(*out));
    if (strchr(host, ':') != NULL) {
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0 ? 0 : RT_EADDR;
    }
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    return uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0 ? 0 : RT_EADDR;
}

static int rt__listen(rt_io_t *io) {
    struct sockaddr_storage addr;
    int rc = rt__listen_addr(io, &addr);
    if (rc != 0) return rc;
    if (uv_tcp_init(io->loop, &io->listener) != 0) return RT_EBIND;
    io->listener.data = io;
    io->listener_open = 1;
    io->pending++;
    rc = uv_tcp_bind(&io->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&io->listener, RT__LISTEN_BACKLOG,
                       rt__accept_cb);
    }
    if (rc != 0) {
        rt_log_write(&io->log, RT_LOG_ERROR, "listen on %s: %s", io->listen_host,
                     uv_strerror(rc));
        return RT_EBIND;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&io->listener, (struct sockaddr *)&bound, &len) == 0) {
        io->listen_port = bound.ss_family == AF_INET6
                              ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                              : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    return 0;
}

int rt__peers_start(rt_io_t *io) {
    assert(io->state == RT__RUNNING);
    assert(io->peers_count <= RT_PEERS_MAX);
    int rc = rt__listen(io);
    if (rc != 0) return rc;
    if (uv_timer_init(io->loop, &io->flush_timer) != 0) return RT_EBIND;
    io->flush_timer.data = io;
    io->flush_timer_open = 1;
    io->pending++;
    for (uint32_t i = 0; i < io->peers_count; i++) {
        rt__peer_t *p = &io->peers[i];
        if (i == io->node_id) continue;
        if (uv_timer_init(io->loop, &p->retry_timer) != 0) return RT_EBIND;
        p->retry_timer.data = p;
        p->retry_timer_open = 1;
        io->pending++;
        p->backoff_ms = io->backoff_min_ms;
        rt__peer_dial(p);
    }
    return 0;
}

static void rt__close_io_handle(rt_io_t *io, uv_handle_t *h, uint8_t *open) {
    if (!*open) return;
    *open = 0;
    h->data = io;
    uv_close(h, rt__handle_closed);
}

void rt__peers_stop(rt_io_t *io) {
    assert(io->state != RT__RUNNING);
    rt__close_io_handle(io, (uv_handle_t *)&io->listener, &io->listener_open);
    /* Unwritten frames die with their links (as queued writes do). */
    rt__close_io_handle(io, (uv_handle_t *)&io->flush_timer,
                        &io->flush_timer_open);
    for (uint32_t i = 0; i < io->peers_count; i++) {
        rt__peer_t *p = &io->peers[i];
        rt__close_io_handle(io, (uv_handle_t *)&p->retry_timer,
                            &p->retry_timer_open);
        rt_outbuf_discard(&p->outbuf);
        if (p->out != NULL) rt__conn_close(p->out);
        p->out = NULL;
        p->connected = 0;
    }
    /* Each close unlinks the head, so this runs inbound_count times. */
    for (uint32_t n = 0; n <= RT_INBOUND_MAX && io->inbound != NULL; n++) {
        rt__conn_close(io->inbound);
    }
    assert(io->inbound == NULL && io->inbound_count == 0);
}
