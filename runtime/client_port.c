/*
 * runtime/client_port.c — the wire client protocol over TCP (see the header).
 *
 * Connections live in an array sorted by address. Addresses only grow (the
 * runtime never reuses one), so a new connection is appended and the node's
 * sends find theirs by binary search.
 */
#include "runtime/client_port.h"

#include <assert.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/wire.h"
#include "runtime/errors.h"
#include "runtime/outbuf.h"

#define RT_CLIENT__IN_CAP_MIN (64u * 1024u)
/* One whole frame plus one read chunk: the most a connection ever buffers. */
#define RT_CLIENT__IN_CAP_MAX (WIRE_MESSAGE_SIZE_MAX + RT_CLIENT_READ_CHUNK_BYTES)
#define RT_CLIENT__PORT_TEXT_MAX (RT_HOST_MAX + 16u)
#define RT_CLIENT_REFUSE_LOG_EVERY 100u /* log the 1st, 101st, ... refusal */

typedef enum rt_client__state {
    RT_CLIENT__NEW = 0,
    RT_CLIENT__RUNNING = 1,
    RT_CLIENT__STOPPED = 2,
} rt_client__state_t;

typedef struct rt_client__conn {
    uv_tcp_t tcp;
    rt_client_port_t *port;
    io_addr_t addr;
    uint8_t closing;
    uint8_t notify;       /* call closed_fn when the close completes */
    uint8_t authed;       /* the token preamble passed (or none is needed) */
    uint8_t opened;       /* a first whole frame arrived: logged in */
    uint8_t paused;       /* reading stopped: too much unsent output */
    uint8_t reading;      /* uv_read_start is in effect */
    uint64_t accepted_ns; /* handshake timeout from here */
    uint64_t active_ns;   /* last frame in or write progress: idle timeout */
    uint64_t partial_ns;  /* when the buffered partial frame began */
    uint8_t *in;          /* received bytes not yet delivered */
    size_t in_have, in_cap;
    size_t out_bytes;     /* handed to uv_write, not yet written */
    rt_outbuf_t out;      /* frames of this loop turn, not yet written */
    uint8_t dirty;        /* out has bytes for the next flush */
} rt_client__conn_t;

struct rt_client_port {
    uv_loop_t *loop;
    rt_io_t *io;
    rt_client__state_t state;
    struct sockaddr_storage addr;
    uint32_t conns_max;
    size_t out_bytes_max;
    char token[RT_CLIENT_TOKEN_MAX];
    uint32_t token_len;   /* 0 = no authentication */
    uint64_t handshake_ns, idle_ns, frame_ns;
    uv_timer_t sweep_timer;
    uint8_t sweep_open;
    uint8_t trim_wanted;  /* a connection closed since the last sweep */
    rt_client_closed_fn closed_fn;
    void *closed_arg;
    uv_tcp_t listener;
    uint8_t listener_open;
    /* one write per connection per loop turn: a zero-delay timer flushes
     * every dirty connection's out */
    uv_timer_t flush_timer;
    uint8_t flush_open;
    uint32_t dirty_count;
    int bound_port;
    rt_client__conn_t **conns; /* conns_max slots, sorted by addr */
    uint32_t conns_count;
    uint32_t pending;          /* open handles (listener + conns) */
    uint8_t free_requested;
    rt_client_port_stats_t stats;
};

/* ---- address ------------------------------------------------------------ */

/* rt_parse_addr wants a port 1..65535; a client port may ask for port 0
 * (the kernel picks one), which tests and `cluster` use. */
static int rt_client__parse(const char *text, struct sockaddr_storage *out) {
    if (text == NULL) return RT_EADDR;
    const size_t len = strlen(text);
    if (len < 2 || len > RT_CLIENT__PORT_TEXT_MAX) return RT_EADDR;
    if (strcmp(text + len - 2, ":0") != 0) return rt_parse_addr(text, out);
    char buf[RT_CLIENT__PORT_TEXT_MAX + 1];
    snprintf(buf, sizeof buf, "%.*s:1", (int)(len - 2), text);
    const int rc = rt_parse_addr(buf, out);
    if (rc != 0) return rc;
    if (out->ss_family == AF_INET6) ((struct sockaddr_in6 *)out)->sin6_port = 0;
    else ((struct sockaddr_in *)out)->sin_port = 0;
    return 0;
}

/* ---- lifetime ----------------------------------------------------------- */

static void rt_client__release_if_done(rt_client_port_t *p) {
    assert(p != NULL);
    if (!p->free_requested || p->pending > 0) return;
    assert(p->conns_count == 0);
    free(p->conns);
    free(p);
}

int rt_client_port_new(uv_loop_t *loop, rt_io_t *io,
                       const rt_client_port_config_t *cfg,
                       rt_client_port_t **out) {
    if (loop == NULL || io == NULL || cfg == NULL || out == NULL) return IO_EINVAL;
    if (cfg->conns_max > RT_CLIENT_CONNS_MAX) return IO_EINVAL;
    if (cfg->token != NULL && strlen(cfg->token) >= RT_CLIENT_TOKEN_MAX) return IO_EINVAL;
    if (cfg->handshake_timeout_ms > RT_CLIENT_TIMEOUT_MS_MAX ||
        cfg->idle_timeout_ms > RT_CLIENT_TIMEOUT_MS_MAX ||
        cfg->frame_timeout_ms > RT_CLIENT_TIMEOUT_MS_MAX)
        return IO_EINVAL;
    rt_client_port_t *p = calloc(1, sizeof *p);
    if (p == NULL) return IO_ENOMEM;
    const int rc = rt_client__parse(cfg->listen, &p->addr);
    if (rc != 0) {
        free(p);
        return rc;
    }
    p->loop = loop;
    p->io = io;
    p->conns_max = cfg->conns_max ? cfg->conns_max : RT_CLIENT_CONNS_DEFAULT;
    p->out_bytes_max = cfg->out_bytes_max ? cfg->out_bytes_max : RT_CLIENT_OUT_BYTES_DEFAULT;
    p->closed_fn = cfg->closed_fn;
    p->closed_arg = cfg->closed_arg;
    if (cfg->token != NULL) {
        p->token_len = (uint32_t)strlen(cfg->token);
        memcpy(p->token, cfg->token, p->token_len);
    }
    p->handshake_ns = (uint64_t)(cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms
                                                           : RT_CLIENT_HANDSHAKE_TIMEOUT_MS_DEFAULT) *
                      1000000u;
    p->idle_ns = (uint64_t)(cfg->idle_timeout_ms ? cfg->idle_timeout_ms
                                                 : RT_CLIENT_IDLE_TIMEOUT_MS_DEFAULT) *
                 1000000u;
    p->frame_ns = (uint64_t)(cfg->frame_timeout_ms ? cfg->frame_timeout_ms
                                                   : RT_CLIENT_FRAME_TIMEOUT_MS_DEFAULT) *
                  1000000u;
    p->conns = calloc(p->conns_max, sizeof *p->conns);
    if (p->conns == NULL) {
        free(p);
        return IO_ENOMEM;
    }
    assert(p->state == RT_CLIENT__NEW);
    *out = p;
    return 0;
}

/* ---- connection table --------------------------------------------------- */

static int64_t rt_client__find(const rt_client_port_t *p, io_addr_t addr) {
    uint32_t lo = 0, hi = p->conns_count;
    while (lo < hi) { /* bounded: log2(conns_max) rounds */
        const uint32_t mid = lo + (hi - lo) / 2;
        if (p->conns[mid]->addr < addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo < p->conns_count && p->conns[lo]->addr == addr) return lo;
    return -1;
}

static void rt_client__forget(rt_client_port_t *p, const rt_client__conn_t *c) {
    const int64_t i = rt_client__find(p, c->addr);
    assert(i >= 0);
    if (i < 0) return;
    memmove(&p->conns[i], &p->conns[i + 1],
            (p->conns_count - (uint32_t)i - 1) * sizeof p->conns[0]);
    p->conns_count--;
}

/* ---- closing ------------------------------------------------------------ */

static void rt_client__conn_closed(uv_handle_t *h) {
    rt_client__conn_t *c = h->data;
    rt_client_port_t *p = c->port;
    assert(p->pending > 0);
    /* Here no handler of the node is running: telling it is safe. */
    if (c->notify && p->state == RT_CLIENT__RUNNING && p->closed_fn != NULL)
        p->closed_fn(p->closed_arg, c->addr);
    rt_outbuf_discard(&c->out);
    free(c->in);
    free(c);
    p->trim_wanted = 1;
    p->pending--;
    rt_client__release_if_done(p);
}

/* Forget the connection now (later sends to it are lost) and close it. */
static void rt_client__close(rt_client__conn_t *c, int notify) {
    assert(c != NULL);
    if (c->closing) return;
    c->closing = 1;
    c->notify = (uint8_t)notify;
    rt_outbuf_discard(&c->out); /* unsent replies die with the socket */
    if (c->dirty) {
        c->dirty = 0;
        assert(c->port->dirty_count > 0);
        c->port->dirty_count--;
    }
    rt_client__forget(c->port, c);
    c->port->stats.closed++;
    uv_close((uv_handle_t *)&c->tcp, rt_client__conn_closed);
}

/* ---- output ------------------------------------------------------------- */

static void rt_client__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void rt_client__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Bytes of c's output not yet written to the socket. */
static size_t rt_client__unsent(const rt_client__conn_t *c) {
    return c->out_bytes + rt_outbuf_pending_bytes(&c->out);
}

/* Backpressure: read while the unsent output is small, stop past
 * RT_CLIENT_OUT_PAUSE_BYTES (the client is not reading its replies, so what
 * it sends must wait), read again below RT_CLIENT_OUT_RESUME_BYTES. */
static void rt_client__update_reading(rt_client__conn_t *c) {
    if (c->closing) return;
    const size_t unsent = rt_client__unsent(c);
    if (!c->paused && unsent > RT_CLIENT_OUT_PAUSE_BYTES) {
        c->paused = 1;
        c->port->stats.pauses++;
    } else if (c->paused && unsent < RT_CLIENT_OUT_RESUME_BYTES) {
        c->paused = 0;
    }
    if (c->paused && c->reading) {
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (!c->paused && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, rt_client__alloc, rt_client__read) != 0) {
            rt_client__close(c, 1);
            return;
        }
        c->reading = 1;
    }
}

static void rt_client__write_done(uv_write_t *req, int status) {
    rt_outbuf_chunk_t *chunk = (rt_outbuf_chunk_t *)req;
    rt_client__conn_t *c = chunk->owner;
    assert(c != NULL);
    assert(c->out_bytes >= chunk->len);
    c->out_bytes -= chunk->len;
    rt_outbuf_chunk_free(chunk);
    if (status != 0 && status != UV_ECANCELED) {
        rt_client__close(c, 1); /* EPIPE, ECONNRESET: this connection only */
        return;
    }
    if (c->closing) return;
    c->active_ns = uv_hrtime(); /* the client reads: not idle */
    rt_client__update_reading(c);
}

/* Hand c's pending frames to libuv as one write. A failure closes the
 * connection (the client is gone: lost messages). */
static void rt_client__flush_conn(rt_client__conn_t *c) {
    rt_client_port_t *p = c->port;
    assert(!c->closing);
    if (c->dirty) {
        c->dirty = 0;
        assert(p->dirty_count > 0);
        p->dirty_count--;
    }
    size_t handed = 0;
    if (rt_outbuf_flush(&c->out, (uv_stream_t *)&c->tcp, c, rt_client__write_done,
                        &handed) != 0) {
        rt_client__close(c, 1);
        return;
    }
    c->out_bytes += handed;
}

static void rt_client__flush_cb(uv_timer_t *t) {
    rt_client_port_t *p = t->data;
    assert(p != NULL && p->flush_open);
    /* Backwards: a failed flush closes its conn, which shifts only the
     * entries after it (already done). Bounded by conns_count. */
    for (uint32_t i = p->conns_count; i > 0 && p->dirty_count > 0; i--) {
        rt_client__conn_t *c = p->conns[i - 1];
        if (c->dirty) rt_client__flush_conn(c);
    }
    assert(p->dirty_count == 0);
}

int rt_client_port_send(void *port, io_addr_t dest, const uint8_t *bytes,
                        size_t len) {
    rt_client_port_t *p = port;
    assert(p != NULL);
    if (bytes == NULL && len > 0) return IO_EINVAL;
    if (len > IO_MESSAGE_SIZE_MAX) return IO_EMSGSIZE;
    const int64_t i = rt_client__find(p, dest);
    if (i < 0 || p->state != RT_CLIENT__RUNNING) return IO_EUNREACH;
    rt_client__conn_t *c = p->conns[i];
    assert(!c->closing);
    const size_t pending = rt_outbuf_pending_bytes(&c->out);
    if (c->out_bytes + pending + len > p->out_bytes_max) {
        p->stats.overflow_closes++;
        rt_client__close(c, 1);
        return IO_ENOMEM;
    }
    if (rt_outbuf_append(&c->out, bytes, len, NULL, 0) != 0) return IO_ENOMEM;
    p->stats.frames_out++;
    if (!c->paused && rt_client__unsent(c) > RT_CLIENT_OUT_PAUSE_BYTES)
        rt_client__update_reading(c);
    if (pending + len >= RT_OUTBUF_FLUSH_BYTES) {
        rt_client__flush_conn(c); /* a big burst: do not wait for the turn */
        return 0;
    }
    if (!c->dirty && len > 0) {
        c->dirty = 1;
        p->dirty_count++;
        /* A zero delay runs on the next loop turn, never inside this call. */
        if (!uv_is_active((uv_handle_t *)&p->flush_timer))
            uv_timer_start(&p->flush_timer, rt_client__flush_cb, 0, 0);
    }
    return 0;
}

/* ---- input -------------------------------------------------------------- */

static void rt_client__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    rt_client__conn_t *c = h->data;
    (void)suggested;
    if (c->in_cap - c->in_have < RT_CLIENT_READ_CHUNK_BYTES && c->in_cap < RT_CLIENT__IN_CAP_MAX) {
        size_t cap = c->in_cap ? c->in_cap * 2 : RT_CLIENT__IN_CAP_MIN;
        if (cap > RT_CLIENT__IN_CAP_MAX) cap = RT_CLIENT__IN_CAP_MAX;
        uint8_t *in = realloc(c->in, cap);
        if (in != NULL) {
            c->in = in;
            c->in_cap = cap;
        }
    }
    size_t room = c->in_cap - c->in_have;
    if (room > RT_CLIENT_READ_CHUNK_BYTES) room = RT_CLIENT_READ_CHUNK_BYTES;
    /* room 0 (no memory) makes libuv report UV_ENOBUFS: the conn closes. */
    *buf = uv_buf_init(room ? (char *)c->in + c->in_have : NULL, (unsigned)room);
}

/* Constant-time comparison: how long a guess matched must not show. */
static bool rt_client__token_eq(const char *a, const uint8_t *b, uint32_t len) {
    uint8_t diff = 0;
    for (uint32_t i = 0; i < len; i++) diff |= (uint8_t)((uint8_t)a[i] ^ b[i]);
    return diff == 0;
}

static uint32_t rt_client__le32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The token preamble. Returns the bytes it took (0 = wait for more), or -1
 * after refusing the connection. */
static int64_t rt_client__auth(rt_client__conn_t *c) {
    rt_client_port_t *p = c->port;
    if (c->in_have < RT_CLIENT_AUTH_HEADER_BYTES) return 0;
    const uint32_t len = rt_client__le32(c->in + 4);
    if (rt_client__le32(c->in) != RT_CLIENT_AUTH_MAGIC || len != p->token_len) {
        p->stats.auth_refused++;
        rt_client__close(c, 0); /* the node never heard of it */
        return -1;
    }
    if (c->in_have < RT_CLIENT_AUTH_HEADER_BYTES + len) return 0;
    if (!rt_client__token_eq(p->token, c->in + RT_CLIENT_AUTH_HEADER_BYTES, len)) {
        p->stats.auth_refused++;
        rt_client__close(c, 0);
        return -1;
    }
    c->authed = 1;
    return (int64_t)(RT_CLIENT_AUTH_HEADER_BYTES + len);
}

/* Deliver every whole frame buffered; keep the partial tail. Returns 0, or
 * -1 after closing the connection (bad header, refused token, node gone). */
static int rt_client__deliver_frames(rt_client__conn_t *c) {
    rt_client_port_t *p = c->port;
    size_t off = 0;
    if (!c->authed) {
        const int64_t took = rt_client__auth(c);
        if (took < 0) return -1;
        if (took == 0) return 0;
        off = (size_t)took;
    }
    /* Bounded: each round consumes >= WIRE_HEADER_SIZE bytes of in_have. */
    while (!c->closing && c->in_have - off >= WIRE_HEADER_SIZE) {
        const int size = wire_frame_size(c->in + off, c->in_have - off);
        if (size < 0) {
            p->stats.bad_frames++;
            rt_client__close(c, 1);
            return -1;
        }
        assert(size >= (int)WIRE_HEADER_SIZE);
        if ((size_t)size > c->in_have - off) break; /* wait for the rest */
        const int rc = rt_io_client_deliver(p->io, c->addr, c->in + off, (size_t)size);
        p->stats.frames_in++;
        c->opened = 1;
        c->active_ns = uv_hrtime();
        c->partial_ns = c->active_ns; /* what is left began now */
        off += (size_t)size;
        if (rc == IO_ECANCELED) {
            rt_client__close(c, 0); /* the node stopped */
            return -1;
        }
    }
    if (c->closing) return -1;
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_have - off);
        c->in_have -= off;
    }
    if (c->in_have == 0 && c->in_cap > 0) {
        /* Nothing buffered: give the buffer back, so an idle connection
         * costs no buffer and a big frame's memory goes once it is done. */
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    return 0;
}

static void rt_client__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    rt_client__conn_t *c = s->data;
    (void)buf;
    if (c->closing) return;
    if (nread < 0) { /* EOF, reset, or UV_ENOBUFS */
        rt_client__close(c, 1);
        return;
    }
    assert((size_t)nread <= c->in_cap - c->in_have);
    if (c->in_have == 0 && nread > 0) c->partial_ns = uv_hrtime();
    c->in_have += (size_t)nread;
    (void)rt_client__deliver_frames(c);
}

/* ---- listening ---------------------------------------------------------- */

static void rt_client__refused_closed(uv_handle_t *h) {
    rt_client_port_t *p = h->data;
    free(h);
    p->pending--;
    rt_client__release_if_done(p);
}

/* Accept, say why (a wire ERROR, best effort: one non-blocking write into an
 * empty socket buffer) and close: the client learns the port is full. */
static void rt_client__refuse(rt_client_port_t *p, uv_stream_t *server) {
    uv_tcp_t *t = malloc(sizeof *t);
    if (t == NULL || uv_tcp_init(p->loop, t) != 0) {
        free(t);
        return;
    }
    t->data = p;
    p->pending++;
    if (uv_accept(server, (uv_stream_t *)t) == 0) {
        wire_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_MSG_ERROR;
        m.error.status = WIRE_STATUS_RESOURCE_LIMIT;
        m.error.detail = wire_str("connection limit reached");
        uint8_t frame[128];
        const int n = wire_encode(&m, frame, sizeof frame);
        if (n > 0) {
            uv_buf_t b = uv_buf_init((char *)frame, (unsigned)n);
            (void)uv_try_write((uv_stream_t *)t, &b, 1);
        }
    }
    if (p->stats.refused_full++ % RT_CLIENT_REFUSE_LOG_EVERY == 0)
        fprintf(stderr, "chaoslab[client port %d] refused a connection: %u connections is the "
                        "limit (refused so far: %llu)\n",
                p->bound_port, p->conns_max, (unsigned long long)p->stats.refused_full);
    uv_close((uv_handle_t *)t, rt_client__refused_closed);
}

static rt_client__conn_t *rt_client__conn_new(rt_client_port_t *p) {
    rt_client__conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    if (uv_tcp_init(p->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->port = p;
    p->pending++;
    return c;
}

static void rt_client__on_connection(uv_stream_t *server, int status) {
    rt_client_port_t *p = server->data;
    assert(p != NULL && p->listener_open);
    if (status != 0 || p->state != RT_CLIENT__RUNNING) return;
    if (p->conns_count >= p->conns_max) {
        rt_client__refuse(p, server);
        return;
    }
    rt_client__conn_t *c = rt_client__conn_new(p);
    if (c == NULL) return;
    io_addr_t addr = 0;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        rt_io_client_open(p->io, &addr) != 0) {
        c->closing = 1; /* never in the table */
        uv_close((uv_handle_t *)&c->tcp, rt_client__conn_closed);
        return;
    }
    c->addr = addr;
    c->authed = p->token_len == 0;
    c->accepted_ns = c->active_ns = uv_hrtime();
    assert(p->conns_count == 0 || p->conns[p->conns_count - 1]->addr < addr);
    p->conns[p->conns_count++] = c;
    p->stats.accepted++;
    (void)uv_tcp_nodelay(&c->tcp, 1); /* replies are small and latency matters */
    rt_client__update_reading(c);
}

/* ---- timeouts ----------------------------------------------------------- */

/* Why c must go now, or NULL. */
static const char *rt_client__expired(const rt_client_port_t *p, const rt_client__conn_t *c,
                                      uint64_t now) {
    if (!c->opened && now - c->accepted_ns > p->handshake_ns) return "handshake";
    if (c->opened && now - c->active_ns > p->idle_ns) return "idle";
    if (c->in_have > 0 && now - c->partial_ns > p->frame_ns) return "partial frame";
    return NULL;
}

static void rt_client__sweep_cb(uv_timer_t *t) {
    rt_client_port_t *p = t->data;
    const uint64_t now = uv_hrtime();
    /* Backwards: a close shifts only the entries after it. */
    for (uint32_t i = p->conns_count; i > 0; i--) {
        rt_client__conn_t *c = p->conns[i - 1];
        if (rt_client__expired(p, c, now) == NULL) continue;
        p->stats.timeouts++;
        rt_client__close(c, 1);
    }
    if (p->trim_wanted) {
        /* Every connection that closed freed its buffers; hand the pages
         * back to the OS so a burst of connections does not pin RSS. */
        p->trim_wanted = 0;
        rt_trim_memory();
    }
}

int rt_client_port_start(rt_client_port_t *p) {
    assert(p != NULL);
    if (p->state != RT_CLIENT__NEW) return RT_ESTATE;
    p->state = RT_CLIENT__RUNNING;
    rt_ignore_sigpipe(); /* a write to a closed client fails with EPIPE instead */
    if (uv_timer_init(p->loop, &p->flush_timer) != 0) return RT_EBIND;
    p->flush_timer.data = p;
    p->flush_open = 1;
    p->pending++;
    if (uv_timer_init(p->loop, &p->sweep_timer) != 0) return RT_EBIND;
    p->sweep_timer.data = p;
    p->sweep_open = 1;
    p->pending++;
    (void)uv_timer_start(&p->sweep_timer, rt_client__sweep_cb, RT_CLIENT_SWEEP_MS,
                         RT_CLIENT_SWEEP_MS);
    if (uv_tcp_init(p->loop, &p->listener) != 0) return RT_EBIND;
    p->listener.data = p;
    p->listener_open = 1;
    p->pending++;
    if (uv_tcp_bind(&p->listener, (const struct sockaddr *)&p->addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&p->listener, RT_CLIENT_BACKLOG, rt_client__on_connection) != 0) {
        rt_client_port_stop(p);
        return RT_EBIND;
    }
    struct sockaddr_storage bound;
    int len = (int)sizeof bound;
    if (uv_tcp_getsockname(&p->listener, (struct sockaddr *)&bound, &len) == 0)
        p->bound_port = bound.ss_family == AF_INET6
                            ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    assert(p->bound_port > 0);
    return 0;
}

int rt_client_port_port(const rt_client_port_t *p) {
    assert(p != NULL);
    return p->bound_port;
}

uint32_t rt_client_port_conns(const rt_client_port_t *p) {
    assert(p != NULL);
    return p->conns_count;
}

void rt_client_port_stats(const rt_client_port_t *p, rt_client_port_stats_t *out) {
    assert(p != NULL && out != NULL);
    *out = p->stats;
}

static void rt_client__handle_closed(uv_handle_t *h) {
    rt_client_port_t *p = h->data;
    assert(p->pending > 0);
    p->pending--;
    rt_client__release_if_done(p);
}

void rt_client_port_stop(rt_client_port_t *p) {
    if (p == NULL || p->state == RT_CLIENT__STOPPED) return;
    p->state = RT_CLIENT__STOPPED;
    if (p->listener_open) {
        p->listener_open = 0;
        uv_close((uv_handle_t *)&p->listener, rt_client__handle_closed);
    }
    if (p->flush_open) {
        p->flush_open = 0;
        uv_close((uv_handle_t *)&p->flush_timer, rt_client__handle_closed);
    }
    if (p->sweep_open) {
        p->sweep_open = 0;
        uv_close((uv_handle_t *)&p->sweep_timer, rt_client__handle_closed);
    }
    /* Bounded: each close removes one entry from the table. */
    while (p->conns_count > 0) rt_client__close(p->conns[p->conns_count - 1], 0);
    assert(p->conns_count == 0);
}

void rt_client_port_free(rt_client_port_t *p) {
    if (p == NULL) return;
    rt_client_port_stop(p);
    p->free_requested = 1;
    rt_client__release_if_done(p);
}
