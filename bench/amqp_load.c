/*
 * bench/amqp_load.c — an AMQP 0-9-1 load generator (librabbitmq).
 *
 * Measures what a careful producer and consumer see on any AMQP 0-9-1
 * broker (chaoslab's front end, RabbitMQ): declare one durable queue (a
 * quorum queue with --quorum), publish N persistent messages with publisher
 * confirms keeping at most W unconfirmed, then consume them all with manual
 * acks. Every body carries its sequence number, so the consumer counts
 * distinct messages (duplicates are reported, not counted twice).
 *
 * Output is key=value lines (publish_msgs_per_sec=..., consume_msgs_per_sec=...)
 * for bench/run_amqp.sh. Exit 0 only when every message was confirmed (none
 * nacked) and every message was consumed; 1 otherwise; 2 on bad usage.
 * Every wait is bounded by --timeout-s of no progress.
 *
 * This is a benchmark, not a test: it is never registered with ctest.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOAD_MESSAGES_MAX 100000000u
#define LOAD_SIZE_MIN_BYTES 8u /* room for the sequence number */
#define LOAD_SIZE_MAX_BYTES (1u << 20)
#define LOAD_WINDOW_MAX 65536u
#define LOAD_PREFETCH_MAX 65535u
#define LOAD_TIMEOUT_S_MAX 3600u
#define LOAD_NAME_MAX 200u
#define LOAD_DRAIN_FRAMES_MAX 4096u /* frames read per drain before publishing again */
#define LOAD_POLL_MS 200u           /* one blocking wait; the idle timeout is checked between */
#define LOAD_FRAME_MAX_BYTES 131072
#define LOAD_CH_PUB 1
#define LOAD_CH_SUB 2

enum { LOAD_TAG_OPEN = 0, LOAD_TAG_ACKED = 1, LOAD_TAG_NACKED = 2 };

typedef struct load_opts {
    const char *host, *queue, *user, *pass, *vhost;
    int port;
    uint32_t messages, size_bytes, window, prefetch, ack_every, timeout_s;
    int quorum, keep_queue;
} load_opts_t;

typedef struct load_ctx {
    load_opts_t opt;
    amqp_connection_state_t conn;
    uint8_t *tag_state;  /* [messages + 1]: LOAD_TAG_* per publish delivery tag */
    uint8_t *seen;       /* [messages]: consumed at least once, by sequence */
    uint8_t *body;       /* [size_bytes]: the publish buffer */
    uint64_t published, acked, nacked, lowest_open; /* lowest_open: first tag not confirmed */
    uint64_t consumed_unique, consumed_total, duplicates, bad_bodies;
    double publish_s, consume_s;
    char consumer_tag[256];
} load_ctx_t;

static double load__now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load__fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("amqp_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static void load__usage(FILE *out) {
    fputs("usage: amqp_load --host H --port P [--queue Q] [--messages N] [--size BYTES]\n"
          "                 [--window W] [--prefetch P] [--ack-every K] [--quorum]\n"
          "                 [--user U --pass P] [--vhost V] [--timeout-s S] [--keep-queue]\n"
          "Publishes N persistent messages with publisher confirms (at most W\n"
          "unconfirmed), then consumes them all with manual acks; prints\n"
          "publish_msgs_per_sec= and consume_msgs_per_sec=. Exit 1 if a message\n"
          "was not confirmed or not consumed, 2 on bad usage.\n",
          out);
}

/* Parses a decimal in [lo, hi] into *out; returns 0 or -1 (message printed). */
static int load__u32(const char *flag, const char *v, uint32_t lo, uint32_t hi, uint32_t *out) {
    assert(flag != NULL);
    assert(out != NULL);
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (v[0] == '\0' || v[0] == '-' || *end != '\0' || x < lo || x > hi)
        return load__fail("%s wants an integer in %" PRIu32 "..%" PRIu32 ", not '%s'", flag, lo,
                          hi, v);
    *out = (uint32_t)x;
    return 0;
}

static int load__flag_value(load_opts_t *o, const char *flag, const char *v) {
    uint32_t port = 0;
    if (strlen(v) > LOAD_NAME_MAX) return load__fail("%s value too long", flag);
    if (strcmp(flag, "--host") == 0) o->host = v;
    else if (strcmp(flag, "--queue") == 0) o->queue = v;
    else if (strcmp(flag, "--user") == 0) o->user = v;
    else if (strcmp(flag, "--pass") == 0) o->pass = v;
    else if (strcmp(flag, "--vhost") == 0) o->vhost = v;
    else if (strcmp(flag, "--port") == 0) {
        if (load__u32(flag, v, 1, 65535, &port) != 0) return -1;
        o->port = (int)port;
    } else if (strcmp(flag, "--messages") == 0)
        return load__u32(flag, v, 1, LOAD_MESSAGES_MAX, &o->messages);
    else if (strcmp(flag, "--size") == 0)
        return load__u32(flag, v, LOAD_SIZE_MIN_BYTES, LOAD_SIZE_MAX_BYTES, &o->size_bytes);
    else if (strcmp(flag, "--window") == 0)
        return load__u32(flag, v, 1, LOAD_WINDOW_MAX, &o->window);
    else if (strcmp(flag, "--prefetch") == 0)
        return load__u32(flag, v, 1, LOAD_PREFETCH_MAX, &o->prefetch);
    else if (strcmp(flag, "--ack-every") == 0)
        return load__u32(flag, v, 1, LOAD_PREFETCH_MAX, &o->ack_every);
    else if (strcmp(flag, "--timeout-s") == 0)
        return load__u32(flag, v, 1, LOAD_TIMEOUT_S_MAX, &o->timeout_s);
    else return load__fail("unknown flag '%s'", flag);
    return 0;
}

/* Fills *o from argv; returns 0, or -1 after printing why. */
static int load__parse(int argc, char **argv, load_opts_t *o) {
    assert(argc >= 1);
    assert(o != NULL);
    *o = (load_opts_t){.host = "127.0.0.1", .queue = "amqp_load", .user = "guest",
                       .pass = "guest", .vhost = "/", .port = 0, .messages = 50000,
                       .size_bytes = 256, .window = 128, .prefetch = 256, .ack_every = 0,
                       .timeout_s = 60};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--quorum") == 0) o->quorum = 1;
        else if (strcmp(flag, "--keep-queue") == 0) o->keep_queue = 1;
        else if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            load__usage(stdout);
            exit(0);
        } else if (i + 1 >= argc) return load__fail("%s needs a value", flag);
        else if (load__flag_value(o, flag, argv[++i]) != 0) return -1;
    }
    if (o->port == 0) return load__fail("--port is required");
    /* Ack in batches well below the prefetch so the broker never stalls on it. */
    if (o->ack_every == 0) o->ack_every = o->prefetch >= 4 ? o->prefetch / 4 : 1;
    if (o->ack_every > o->prefetch) return load__fail("--ack-every must be <= --prefetch");
    return 0;
}

/* Checks the reply of the last synchronous call; returns 0 or -1. */
static int load__rpc_ok(load_ctx_t *c, const char *what) {
    assert(c->conn != NULL);
    assert(what != NULL);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        return load__fail("%s: %s", what, amqp_error_string2(r.library_error));
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *m = r.reply.decoded;
        return load__fail("%s: channel closed by the server: %u %.*s", what, m->reply_code,
                          (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *m = r.reply.decoded;
        return load__fail("%s: connection closed by the server: %u %.*s", what, m->reply_code,
                          (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    }
    return load__fail("%s: failed (reply type %d)", what, (int)r.reply_type);
}

static int load__connect(load_ctx_t *c) {
    assert(c->conn == NULL);
    c->conn = amqp_new_connection();
    if (c->conn == NULL) return load__fail("out of memory");
    amqp_socket_t *sock = amqp_tcp_socket_new(c->conn);
    if (sock == NULL) return load__fail("cannot create a socket");
    struct timeval tv = {.tv_sec = (time_t)c->opt.timeout_s, .tv_usec = 0};
    int rc = amqp_socket_open_noblock(sock, c->opt.host, c->opt.port, &tv);
    if (rc != AMQP_STATUS_OK)
        return load__fail("connect %s:%d: %s", c->opt.host, c->opt.port, amqp_error_string2(rc));
    /* Bounds every synchronous call (declare, qos, cancel...). */
    amqp_set_rpc_timeout(c->conn, &tv);
    amqp_set_handshake_timeout(c->conn, &tv);
    amqp_rpc_reply_t r = amqp_login(c->conn, c->opt.vhost, 0, LOAD_FRAME_MAX_BYTES, 0,
                                    AMQP_SASL_METHOD_PLAIN, c->opt.user, c->opt.pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) return load__fail("login failed");
    amqp_channel_open(c->conn, LOAD_CH_PUB);
    if (load__rpc_ok(c, "channel.open 1") != 0) return -1;
    amqp_channel_open(c->conn, LOAD_CH_SUB);
    return load__rpc_ok(c, "channel.open 2");
}

/* Declares the durable queue (quorum with --quorum) and empties it, so the
 * consumer counts only this run's messages. */
static int load__declare(load_ctx_t *c) {
    assert(c->conn != NULL);
    assert(c->opt.queue != NULL);
    amqp_table_entry_t arg = {.key = amqp_cstring_bytes("x-queue-type"),
                              .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                        .value.bytes = amqp_cstring_bytes("quorum")}};
    amqp_table_t args = {.num_entries = c->opt.quorum ? 1 : 0, .entries = &arg};
    amqp_queue_declare(c->conn, LOAD_CH_PUB, amqp_cstring_bytes(c->opt.queue), 0, 1, 0, 0,
                       args);
    if (load__rpc_ok(c, "queue.declare") != 0) return -1;
    amqp_queue_purge(c->conn, LOAD_CH_PUB, amqp_cstring_bytes(c->opt.queue));
    if (load__rpc_ok(c, "queue.purge") != 0) return -1;
    amqp_confirm_select(c->conn, LOAD_CH_PUB);
    return load__rpc_ok(c, "confirm.select");
}

static void load__mark(load_ctx_t *c, uint64_t tag, int positive) {
    assert(tag >= 1 && tag <= c->published);
    if (c->tag_state[tag] != LOAD_TAG_OPEN) return; /* a repeated confirm counts once */
    c->tag_state[tag] = positive ? LOAD_TAG_ACKED : LOAD_TAG_NACKED;
    if (positive) c->acked++;
    else c->nacked++;
}

/* One basic.ack / basic.nack from the broker: `multiple` covers every open
 * tag <= tag. A tag we never published is a broker bug: an error. */
static int load__confirm(load_ctx_t *c, uint64_t tag, int multiple, int positive) {
    assert(c->lowest_open >= 1);
    assert(c->acked + c->nacked <= c->published);
    if (multiple && tag == 0) tag = c->published; /* "all outstanding" */
    if (tag == 0 || tag > c->published)
        return load__fail("confirm for delivery tag %" PRIu64 " never published (%" PRIu64
                          " published)",
                          tag, c->published);
    if (multiple) {
        for (uint64_t t = c->lowest_open; t <= tag; t++) load__mark(c, t, positive);
    } else {
        load__mark(c, tag, positive);
    }
    while (c->lowest_open <= c->published && c->tag_state[c->lowest_open] != LOAD_TAG_OPEN)
        c->lowest_open++;
    return 0;
}

/* Handles one frame read outside an RPC; returns 0, or -1 when the broker
 * closed the channel or connection. Content frames (returns) are ignored. */
static int load__on_frame(load_ctx_t *c, const amqp_frame_t *f) {
    assert(c != NULL);
    assert(f != NULL);
    if (f->frame_type != AMQP_FRAME_METHOD) return 0;
    const amqp_method_t *m = &f->payload.method;
    if (m->id == AMQP_BASIC_ACK_METHOD) {
        const amqp_basic_ack_t *a = m->decoded;
        return load__confirm(c, a->delivery_tag, a->multiple, 1);
    }
    if (m->id == AMQP_BASIC_NACK_METHOD) {
        const amqp_basic_nack_t *n = m->decoded;
        return load__confirm(c, n->delivery_tag, n->multiple, 0);
    }
    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *x = m->decoded;
        return load__fail("channel %u closed by the server: %u %.*s", f->channel, x->reply_code,
                          (int)x->reply_text.len, (const char *)x->reply_text.bytes);
    }
    if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *x = m->decoded;
        return load__fail("connection closed by the server: %u %.*s", x->reply_code,
                          (int)x->reply_text.len, (const char *)x->reply_text.bytes);
    }
    return 0; /* basic.return and anything else: not ours to count */
}

/* Reads confirms: waits up to LOAD_POLL_MS for the first frame, then takes
 * whatever is already buffered. Returns 0 (maybe nothing read) or -1. */
static int load__read_confirms(load_ctx_t *c) {
    assert(c->conn != NULL);
    struct timeval wait = {.tv_sec = 0, .tv_usec = (suseconds_t)LOAD_POLL_MS * 1000};
    for (uint32_t i = 0; i < LOAD_DRAIN_FRAMES_MAX; i++) {
        struct timeval zero = {0, 0};
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(c->conn, &f, i == 0 ? &wait : &zero);
        if (rc == AMQP_STATUS_TIMEOUT) break;
        if (rc != AMQP_STATUS_OK)
            return load__fail("reading confirms: %s", amqp_error_string2(rc));
        if (load__on_frame(c, &f) != 0) return -1;
    }
    amqp_maybe_release_buffers(c->conn);
    return 0;
}

static int load__publish_one(load_ctx_t *c) {
    assert(c->published < c->opt.messages);
    assert(c->published - (c->acked + c->nacked) < c->opt.window);
    uint64_t seq = c->published;
    for (int b = 0; b < 8; b++) c->body[b] = (uint8_t)(seq >> (56 - 8 * b));
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT};
    amqp_bytes_t body = {.len = c->opt.size_bytes, .bytes = c->body};
    int rc = amqp_basic_publish(c->conn, LOAD_CH_PUB, amqp_empty_bytes,
                                amqp_cstring_bytes(c->opt.queue), 0, 0, &props, body);
    if (rc != AMQP_STATUS_OK) return load__fail("basic.publish: %s", amqp_error_string2(rc));
    c->published++;
    return 0;
}

/* Publishes every message, keeping at most `window` unconfirmed, until all
 * are confirmed or nothing moved for timeout_s. */
static int load__publish_all(load_ctx_t *c) {
    assert(c->published == 0);
    assert(c->lowest_open == 1);
    const uint64_t n = c->opt.messages;
    double t0 = load__now_s(), last_progress = t0;
    while (c->acked + c->nacked < n) {
        uint64_t before = c->acked + c->nacked;
        while (c->published < n && c->published - (c->acked + c->nacked) < c->opt.window)
            if (load__publish_one(c) != 0) return -1;
        if (load__read_confirms(c) != 0) return -1;
        double now = load__now_s();
        if (c->acked + c->nacked != before) last_progress = now;
        else if (now - last_progress > (double)c->opt.timeout_s)
            return load__fail("no confirm for %" PRIu32 " s (%" PRIu64 " of %" PRIu64
                              " confirmed)",
                              c->opt.timeout_s, c->acked + c->nacked, n);
    }
    c->publish_s = load__now_s() - t0;
    return 0;
}

/* Counts one delivery by the sequence number in its body. */
static void load__count(load_ctx_t *c, const amqp_bytes_t *body) {
    assert(c->seen != NULL);
    c->consumed_total++;
    if (body->len != c->opt.size_bytes) {
        c->bad_bodies++;
        return;
    }
    const uint8_t *p = body->bytes;
    uint64_t seq = 0;
    for (int b = 0; b < 8; b++) seq = (seq << 8) | p[b];
    if (seq >= c->opt.messages) {
        c->bad_bodies++;
        return;
    }
    if (c->seen[seq]) {
        c->duplicates++;
        return;
    }
    c->seen[seq] = 1;
    c->consumed_unique++;
}

static int load__start_consumer(load_ctx_t *c) {
    assert(c->conn != NULL);
    assert(c->consumer_tag[0] == '\0');
    amqp_basic_qos(c->conn, LOAD_CH_SUB, 0, (uint16_t)c->opt.prefetch, 0);
    if (load__rpc_ok(c, "basic.qos") != 0) return -1;
    amqp_basic_consume_ok_t *ok =
        amqp_basic_consume(c->conn, LOAD_CH_SUB, amqp_cstring_bytes(c->opt.queue),
                           amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (load__rpc_ok(c, "basic.consume") != 0) return -1;
    if (ok == NULL || ok->consumer_tag.len >= sizeof c->consumer_tag)
        return load__fail("basic.consume: bad consumer tag");
    memcpy(c->consumer_tag, ok->consumer_tag.bytes, ok->consumer_tag.len);
    c->consumer_tag[ok->consumer_tag.len] = '\0';
    return 0;
}

/* Takes one delivery or one other frame. Returns 1 = delivery (tag in
 * *tag), 0 = nothing within LOAD_POLL_MS, -1 = error. */
static int load__next_delivery(load_ctx_t *c, uint64_t *tag) {
    assert(tag != NULL);
    amqp_envelope_t env;
    struct timeval wait = {.tv_sec = 0, .tv_usec = (suseconds_t)LOAD_POLL_MS * 1000};
    amqp_maybe_release_buffers(c->conn);
    amqp_rpc_reply_t r = amqp_consume_message(c->conn, &env, &wait, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        load__count(c, &env.message.body);
        *tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
        return 1;
    }
    if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION)
        return load__fail("consuming: unexpected reply %d", (int)r.reply_type);
    if (r.library_error == AMQP_STATUS_TIMEOUT) return 0;
    if (r.library_error != AMQP_STATUS_UNEXPECTED_STATE)
        return load__fail("consuming: %s", amqp_error_string2(r.library_error));
    amqp_frame_t f; /* a method other than basic.deliver: read and judge it */
    int rc = amqp_simple_wait_frame_noblock(c->conn, &f, &wait);
    if (rc == AMQP_STATUS_TIMEOUT) return 0;
    if (rc != AMQP_STATUS_OK) return load__fail("consuming: %s", amqp_error_string2(rc));
    return load__on_frame(c, &f) == 0 ? 0 : -1;
}

static int load__ack(load_ctx_t *c, uint64_t tag) {
    assert(tag > 0);
    int rc = amqp_basic_ack(c->conn, LOAD_CH_SUB, tag, 1);
    if (rc != AMQP_STATUS_OK) return load__fail("basic.ack: %s", amqp_error_string2(rc));
    return 0;
}

/* Consumes until every sequence number was seen, acking `ack_every`
 * deliveries at once (multiple=1); ends with basic.cancel, a round trip that
 * the broker answers after it took our last ack. */
static int load__consume_all(load_ctx_t *c) {
    assert(c->consumed_unique == 0);
    assert(c->seen != NULL);
    double t0 = load__now_s(), last_progress = t0;
    if (load__start_consumer(c) != 0) return -1;
    uint64_t last_tag = 0, unacked = 0;
    while (c->consumed_unique < c->opt.messages) {
        uint64_t tag = 0;
        int got = load__next_delivery(c, &tag);
        if (got < 0) return -1;
        double now = load__now_s();
        if (got == 1) {
            last_tag = tag, unacked++, last_progress = now;
            if (unacked >= c->opt.ack_every && load__ack(c, last_tag) != 0) return -1;
            if (unacked >= c->opt.ack_every) unacked = 0;
        } else if (now - last_progress > (double)c->opt.timeout_s) {
            return load__fail("no delivery for %" PRIu32 " s (%" PRIu64 " of %" PRIu32
                              " consumed)",
                              c->opt.timeout_s, c->consumed_unique, c->opt.messages);
        }
    }
    if (unacked > 0 && load__ack(c, last_tag) != 0) return -1;
    amqp_basic_cancel(c->conn, LOAD_CH_SUB, amqp_cstring_bytes(c->consumer_tag));
    if (load__rpc_ok(c, "basic.cancel") != 0) return -1;
    c->consume_s = load__now_s() - t0;
    return 0;
}

static double load__rate(uint64_t n, double s) { return s > 0 ? (double)n / s : 0.0; }

static void load__report(const load_ctx_t *c) {
    assert(c != NULL);
    printf("messages=%" PRIu32 " size_bytes=%" PRIu32 " window=%" PRIu32 " prefetch=%" PRIu32
           " quorum=%d\n",
           c->opt.messages, c->opt.size_bytes, c->opt.window, c->opt.prefetch, c->opt.quorum);
    printf("published=%" PRIu64 " confirmed=%" PRIu64 " nacked=%" PRIu64 "\n", c->published,
           c->acked, c->nacked);
    printf("publish_seconds=%.3f\npublish_msgs_per_sec=%.0f\n", c->publish_s,
           load__rate(c->acked, c->publish_s));
    printf("consumed=%" PRIu64 " deliveries=%" PRIu64 " duplicates=%" PRIu64 " bad=%" PRIu64
           "\n",
           c->consumed_unique, c->consumed_total, c->duplicates, c->bad_bodies);
    printf("consume_seconds=%.3f\nconsume_msgs_per_sec=%.0f\n", c->consume_s,
           load__rate(c->consumed_unique, c->consume_s));
    fflush(stdout);
}

/* Runs both phases; returns 0 when all went through, -1 otherwise. */
static int load__run(load_ctx_t *c) {
    assert(c->opt.messages >= 1);
    assert(c->opt.size_bytes >= LOAD_SIZE_MIN_BYTES);
    c->tag_state = calloc((size_t)c->opt.messages + 1, 1);
    c->seen = calloc(c->opt.messages, 1);
    c->body = calloc(c->opt.size_bytes, 1);
    if (c->tag_state == NULL || c->seen == NULL || c->body == NULL)
        return load__fail("out of memory");
    for (uint32_t i = 8; i < c->opt.size_bytes; i++) c->body[i] = (uint8_t)('a' + i % 26);
    c->lowest_open = 1;
    if (load__connect(c) != 0 || load__declare(c) != 0) return -1;
    int rc = load__publish_all(c);
    if (rc == 0 && c->nacked > 0) rc = load__fail("%" PRIu64 " messages nacked", c->nacked);
    if (rc == 0) rc = load__consume_all(c);
    if (rc == 0 && !c->opt.keep_queue) {
        amqp_queue_delete(c->conn, LOAD_CH_PUB, amqp_cstring_bytes(c->opt.queue), 0, 0);
        if (load__rpc_ok(c, "queue.delete") != 0) rc = -1;
    }
    load__report(c);
    return rc;
}

static void load__close(load_ctx_t *c) {
    assert(c != NULL);
    if (c->conn != NULL) {
        amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c->conn);
    }
    free(c->tag_state);
    free(c->seen);
    free(c->body);
}

int main(int argc, char **argv) {
    load_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    if (load__parse(argc, argv, &ctx.opt) != 0) {
        load__usage(stderr);
        return 2;
    }
    int rc = load__run(&ctx);
    load__close(&ctx);
    if (rc == 0 && (ctx.acked != ctx.opt.messages || ctx.consumed_unique != ctx.opt.messages))
        rc = -1;
    return rc == 0 ? 0 : 1;
}
