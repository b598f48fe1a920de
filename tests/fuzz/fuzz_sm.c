/*
 * tests/fuzz/fuzz_sm.c — the replicated state machine and the sessions under
 * arbitrary input. Must never crash, leak or trip a sanitizer; the
 * invariants checked here abort on violation (a finding):
 *   - a snapshot round trip keeps the digest;
 *   - a second machine fed the same command bytes has the same digest.
 *
 * Input: byte 0 picks the mode.
 *   mode 0: records, each `op` then arguments:
 *     op 0: u16 length + raw bytes, applied as a command;
 *     op 1: 6 bytes turned into a well-formed command over a tiny alphabet
 *           of names (reaches deep states quickly);
 *     op 2: 3 bytes driving the sessions (open, consume, dispatch, ack,
 *           nack, tick, close), whose commands are applied at once;
 *     op 3: snapshot round trip + replica digest check.
 *   mode 1: the rest restored as a snapshot as is;
 *   mode 2: the same, with its trailing checksum recomputed so the content
 *           checks are what decides.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/session.h"
#include "broker/sm.h"

#define FUZZ_STEPS_MAX 4096u

typedef struct fuzz {
    broker_sm_t sm, twin; /* twin applies the same bytes: must agree */
    broker_sessions_t s;
    uint64_t index;
    uint8_t buf[1024];
    broker_delivery_t dv[32];
    broker_session_cmd_t cmds[SESSION_INFLIGHT_MAX];
} fuzz_t;

static void fuzz_apply(fuzz_t *f, const uint8_t *b, size_t len) {
    broker_sm_result_t r1, r2;
    f->index++;
    int rc1 = broker_sm_apply(&f->sm, f->index, b, len, &r1);
    int rc2 = broker_sm_apply(&f->twin, f->index, b, len, &r2);
    if (rc1 != rc2 || r1.status != r2.status)
        abort();
}

static void fuzz_commit(fuzz_t *f, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        broker_sm_cmd_t c;
        size_t len;
        broker_session_cmd_to_sm(&f->cmds[i], &c);
        if (broker_sm_cmd_encode(&c, f->buf, sizeof f->buf, &len) != 0)
            abort(); /* sessions must only produce valid commands */
        fuzz_apply(f, f->buf, len);
    }
}

static const char *const fuzz_names[] = {"a", "b", "dl", "", "a.b", "x"};
static const char *const fuzz_keys[] = {"a", "#", "*.b", "a.b", "", "b"};

static void fuzz_structured(fuzz_t *f, const uint8_t *a) {
    static const uint8_t body[] = "payload";
    broker_sm_cmd_t c;
    memset(&c, 0, sizeof c);
    c.type = (uint8_t)(a[0] % SM_CMD_PURGE_READY + 1); /* PURGE_READY: keep none */
    c.queue = broker_sm_str(fuzz_names[a[1] % 6]);
    c.exchange = broker_sm_str(a[2] & 1 ? "" : fuzz_names[(a[2] >> 1) % 6]);
    c.key = broker_sm_str(fuzz_keys[a[3] % 6]);
    c.dlq = broker_sm_str(a[4] & 1 ? "dl" : "");
    c.exchange_type = (uint8_t)(a[4] % 3 + 1) | (a[0] & 0x80u); /* maybe internal */
    c.destination = broker_sm_str(fuzz_names[(a[3] >> 3) % 6]);
    c.queue_props = (uint8_t)((a[4] >> 2) & BROKER_QUEUE_PROPS_ALL);
    c.owner = a[1] % 3;
    c.delivery_limit = a[5] % 4;
    c.max_messages = a[5] >> 4;
    c.producer_id = a[3] % 3;
    c.sequence = a[5] % 16;
    c.message_id = a[5] % 32;
    c.persistent = a[2] >> 7;
    c.body = body;
    c.body_len = a[1] % 8;
    size_t len;
    if (broker_sm_cmd_encode(&c, f->buf, sizeof f->buf, &len) == 0)
        fuzz_apply(f, f->buf, len);
}

static void fuzz_session_op(fuzz_t *f, const uint8_t *a, uint64_t now_ns) {
    uint64_t sid = a[1] % 4;
    uint32_t n = 0, nd = 0;
    const char *q = fuzz_names[a[2] % 6];
    char tag[2] = {(char)('a' + a[2] % 4), 0};
    switch (a[0] % 8) {
    case 0: (void)broker_sessions_open_session(&f->s, sid, a[2] * 1000u, now_ns); break;
    case 1:
        (void)broker_sessions_consume(&f->s, &f->sm, sid, tag, 1, q, strlen(q),
                                      a[2] % 3, a[2] >> 7);
        break;
    case 2:
        (void)broker_sessions_dispatch(&f->s, &f->sm, now_ns, f->dv, 32, f->cmds,
                                       SESSION_INFLIGHT_MAX, &nd, &n);
        break;
    case 3:
        (void)broker_sessions_ack(&f->s, sid, a[2] % 16, a[2] >> 7, f->cmds,
                                  SESSION_INFLIGHT_MAX, &n);
        break;
    case 4:
        (void)broker_sessions_nack(&f->s, sid, a[2] % 16, (a[2] >> 6) & 1,
                                   a[2] >> 7, f->cmds, SESSION_INFLIGHT_MAX, &n);
        break;
    case 5: (void)broker_sessions_tick(&f->s, now_ns, f->cmds, a[2] % 4, &n); break;
    case 6:
        (void)broker_sessions_close_session(&f->s, sid, f->cmds,
                                            SESSION_INFLIGHT_MAX, &n);
        break;
    default: (void)broker_sessions_cancel(&f->s, sid, tag, 1); break;
    }
    fuzz_commit(f, n);
}

static void fuzz_check(fuzz_t *f) {
    uint64_t d = broker_sm_digest(&f->sm);
    if (d != broker_sm_digest(&f->twin) || !broker_sm_check(&f->sm))
        abort();
    size_t size = broker_sm_snapshot_size(&f->sm);
    uint8_t *snap = malloc(size);
    if (snap == NULL)
        return;
    if (broker_sm_snapshot_serialize(&f->sm, snap, size) != (int64_t)size)
        abort();
    broker_sm_t r;
    broker_sm_init(&r, &f->sm.config);
    if (broker_sm_restore(&r, snap, size) != 0 || broker_sm_digest(&r) != d)
        abort();
    broker_sm_close(&r);
    free(snap);
}

static void fuzz_records(const uint8_t *data, size_t size) {
    fuzz_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return;
    broker_sm_config_t cfg = {.dedup = size > 0 && (data[0] & 1)};
    broker_sm_init(&f->sm, &cfg);
    broker_sm_init(&f->twin, &cfg);
    broker_sessions_init(&f->s, NULL, 1);
    size_t pos = 1;
    uint64_t now_ns = 0;
    for (uint32_t step = 0; step < FUZZ_STEPS_MAX && pos < size; step++) {
        uint8_t op = data[pos++] % 4;
        now_ns += 1000u;
        if (op == 0 && size - pos >= 2) {
            size_t len = data[pos] | (size_t)data[pos + 1] << 8;
            pos += 2;
            if (len > size - pos)
                len = size - pos;
            fuzz_apply(f, data + pos, len);
            pos += len;
        } else if (op == 1 && size - pos >= 6) {
            fuzz_structured(f, data + pos);
            pos += 6;
        } else if (op == 2 && size - pos >= 3) {
            fuzz_session_op(f, data + pos, now_ns);
            pos += 3;
        } else if (op == 3) {
            fuzz_check(f);
        } else {
            break;
        }
    }
    fuzz_check(f);
    broker_sessions_close(&f->s);
    broker_sm_close(&f->sm);
    broker_sm_close(&f->twin);
    free(f);
}

static void fuzz_restore(const uint8_t *data, size_t size, int fix_sum) {
    uint8_t *b = malloc(size ? size : 1);
    if (b == NULL)
        return;
    if (size > 0)
        memcpy(b, data, size);
    if (fix_sum && size >= 16) {
        uint64_t h = 0xcbf29ce484222325ull; /* the snapshot's FNV-1a */
        for (size_t i = 0; i < size - 8; i++)
            h = (h ^ b[i]) * 0x100000001b3ull;
        for (int i = 0; i < 8; i++)
            b[size - 8 + i] = (uint8_t)(h >> (8 * i));
    }
    broker_sm_t sm;
    broker_sm_init(&sm, NULL);
    if (broker_sm_restore(&sm, b, size) == 0) {
        if (!broker_sm_check(&sm))
            abort(); /* restore let an inconsistent state through */
        /* accepted snapshots are canonical: re-serialize to the same bytes */
        size_t n = broker_sm_snapshot_size(&sm);
        uint8_t *again = malloc(n);
        if (again != NULL) {
            if (n != size ||
                broker_sm_snapshot_serialize(&sm, again, n) != (int64_t)n ||
                memcmp(again, b, n) != 0)
                abort();
            free(again);
        }
    }
    broker_sm_close(&sm);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_records(data, size); break;
    case 1: fuzz_restore(data + 1, size - 1, 0); break;
    default: fuzz_restore(data + 1, size - 1, 1); break;
    }
    return 0;
}
