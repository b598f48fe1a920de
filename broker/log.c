/*
 * broker/log.c — the durable append-only Raft log (see log.h for the format
 * and the durability argument).
 *
 * Structure: every disk operation is first queued (FIFO `queued`) and then
 * issued by log__pump while fewer than BROKER_LOG_DISK_OPS_MAX are in flight
 * (ring `inflight`). Appends coalesce into the queued write at the tail, so
 * writes batch naturally while the disk is busy. Completions arrive in issue
 * order and are matched against the head of `inflight`.
 */
#include "broker/log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/crc32c.h"
#include "broker/tokens.h"

enum {
    LOG__OP_NOP = 0,
    LOG__OP_WRITE,
    LOG__OP_READ,
    LOG__OP_FSYNC,
    LOG__OP_TRUNCATE,
    LOG__OP_REMOVE,
};

struct broker_log__op {
    uint8_t kind;
    uint8_t is_sync; /* a group-commit fsync */
    uint64_t seg_first; /* the file, by first index */
    uint64_t offset;    /* write/read offset, truncate size */
    uint8_t *buf;       /* write: owned; read: into the recovery buffer */
    size_t len, cap;
    uint64_t from_index, to_index; /* write: records in buf */
    uint64_t target; /* fsync: durable_index once it completes */
    uint64_t token;
};

enum { LOG__MODE_LOAD = 0, LOG__MODE_SHADOW = 1 };

typedef struct log__found {
    uint64_t first;
    uint64_t size_bytes;
} log__found_t;

struct broker_log__recovery {
    log__found_t found[BROKER_LOG_SEGMENTS_MAX];
    uint32_t count;
    uint32_t cur;          /* segment being read */
    uint32_t last_nonempty; /* index in found[] (count if none) */
    uint8_t *buf;
    uint64_t buf_len;   /* bytes valid after short reads */
    uint32_t chunks_left;
    int read_error;
    int mode;
    int corrupt;
    uint64_t seen_max; /* highest index seen in damaged/shadowed data */
    int done;          /* all segments parsed, cleanup queued */
};

/* ---- little-endian helpers ------------------------------------------- */

static void log__put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void log__put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t log__get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t log__get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ---- record codec ---------------------------------------------------- */

static uint32_t log__record_crc(const uint8_t *rec, size_t payload_len) {
    uint32_t crc = crc32c(rec, 4);
    return crc32c_extend(crc, rec + 8,
                         BROKER_LOG_RECORD_HEADER_SIZE - 8 + payload_len);
}

int64_t broker_log_record_encode(uint8_t *out, size_t out_cap, uint64_t term,
                                 uint64_t index, uint8_t type,
                                 const uint8_t *payload, size_t len) {
    if (out == NULL || len > BROKER_LOG_RECORD_PAYLOAD_MAX ||
        (payload == NULL && len > 0) ||
        out_cap < BROKER_LOG_RECORD_HEADER_SIZE + len)
        return IO_EINVAL;
    log__put32(out, (uint32_t)len);
    log__put64(out + 8, term);
    log__put64(out + 16, index);
    out[24] = type;
    if (len > 0) memcpy(out + BROKER_LOG_RECORD_HEADER_SIZE, payload, len);
    log__put32(out + 4, log__record_crc(out, len));
    assert(log__get32(out) == len);
    return (int64_t)(BROKER_LOG_RECORD_HEADER_SIZE + len);
}

int64_t broker_log_record_decode(const uint8_t *buf, size_t len,
                                 uint64_t *term, uint64_t *index,
                                 uint8_t *type, const uint8_t **payload,
                                 uint32_t *payload_len) {
    if (buf == NULL) return IO_EINVAL;
    if (len < BROKER_LOG_RECORD_HEADER_SIZE) return 0;
    const uint32_t plen = log__get32(buf);
    if (plen > BROKER_LOG_RECORD_PAYLOAD_MAX) return IO_EINVAL;
    const size_t size = BROKER_LOG_RECORD_HEADER_SIZE + (size_t)plen;
    if (len < size) return 0;
    if (log__get32(buf + 4) != log__record_crc(buf, plen)) return IO_EINVAL;
    const uint64_t idx = log__get64(buf + 16);
    if (idx == 0) return IO_EINVAL; /* index 0 is never an entry */
    if (term) *term = log__get64(buf + 8);
    if (index) *index = idx;
    if (type) *type = buf[24];
    if (payload) *payload = buf + BROKER_LOG_RECORD_HEADER_SIZE;
    if (payload_len) *payload_len = plen;
    return (int64_t)size;
}

void broker_log_segment_name(char *out, size_t cap, uint64_t first_index) {
    assert(out != NULL && cap >= 25);
    snprintf(out, cap, BROKER_LOG_SEGMENT_NAME_PREFIX "%020llu",
             (unsigned long long)first_index);
}

/* Parse "log-" + exactly 20 digits. Returns 0 and *first, or -1. */
static int log__parse_name(const char *name, uint64_t *first) {
    const size_t plen = sizeof(BROKER_LOG_SEGMENT_NAME_PREFIX) - 1;
    if (strncmp(name, BROKER_LOG_SEGMENT_NAME_PREFIX, plen) != 0) return -1;
    if (strlen(name) != plen + 20) return -1;
    uint64_t v = 0;
    for (size_t i = plen; i < plen + 20; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        const uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (v == 0) return -1;
    *first = v;
    return 0;
}

/* ---- configuration, init --------------------------------------------- */

void broker_log_config_default(broker_log_config_t *cfg) {
    assert(cfg != NULL);
    memset(cfg, 0, sizeof *cfg);
    cfg->segment_size_max_bytes = BROKER_LOG_SEGMENT_SIZE_DEFAULT;
    cfg->memory_bytes_max = BROKER_LOG_MEMORY_BYTES_DEFAULT;
    cfg->entries_max = BROKER_LOG_ENTRIES_IN_MEMORY_MAX;
    cfg->sector_size_bytes = 512;
}

static int log__config_fill(broker_log_config_t *out,
                            const broker_log_config_t *in) {
    broker_log_config_default(out);
    if (in == NULL) return 0;
    if (in->segment_size_max_bytes > BROKER_LOG_SEGMENT_SIZE_MAX ||
        in->entries_max > BROKER_LOG_ENTRIES_IN_MEMORY_MAX)
        return IO_EINVAL;
    if (in->sector_size_bytes != 0 &&
        (in->sector_size_bytes & (in->sector_size_bytes - 1)) != 0)
        return IO_EINVAL;
    if (in->segment_size_max_bytes)
        out->segment_size_max_bytes = in->segment_size_max_bytes;
    if (in->memory_bytes_max) out->memory_bytes_max = in->memory_bytes_max;
    if (in->entries_max) out->entries_max = in->entries_max;
    if (in->sector_size_bytes) out->sector_size_bytes = in->sector_size_bytes;
    return 0;
}

int broker_log_init(broker_log_t *log, const io_t *io,
                    const broker_log_config_t *cfg) {
    if (log == NULL || io == NULL || io->methods == NULL) return IO_EINVAL;
    memset(log, 0, sizeof *log);
    if (log__config_fill(&log->cfg, cfg) != 0) return IO_EINVAL;
    log->io = io;
    log->ring_cap = 16;
    log->ring = calloc(log->ring_cap, sizeof *log->ring);
    log->queued = calloc(BROKER_LOG_OPS_QUEUED_MAX, sizeof *log->queued);
    log->inflight = calloc(BROKER_LOG_DISK_OPS_MAX, sizeof *log->inflight);
    if (!log->ring || !log->queued || !log->inflight) {
        broker_log_close(log);
        return IO_ENOMEM;
    }
    log->status = BROKER_LOG_INIT;
    assert(log->last_index == 0 && log->seg_count == 0);
    return 0;
}

static void log__free_entries(broker_log_t *log) {
    for (uint64_t i = log->base_index + 1; i <= log->last_index; i++) {
        broker_log_entry_t *e =
            &log->ring[(log->ring_head + (i - log->base_index - 1)) &
                       (log->ring_cap - 1)];
        free(e->payload);
        e->payload = NULL;
    }
}

void broker_log_close(broker_log_t *log) {
    if (log == NULL) return;
    if (log->ring) log__free_entries(log);
    for (uint32_t i = 0; log->queued && i < log->queued_count; i++)
        if (log->queued[(log->queued_head + i) % BROKER_LOG_OPS_QUEUED_MAX]
                .kind == LOG__OP_WRITE)
            free(log->queued[(log->queued_head + i) % BROKER_LOG_OPS_QUEUED_MAX]
                     .buf);
    if (log->rec) free(log->rec->buf);
    free(log->rec);
    free(log->ring);
    free(log->queued);
    free(log->inflight);
    memset(log, 0, sizeof *log);
}

int broker_log_set_base(broker_log_t *log, uint64_t index, uint64_t term) {
    if (log == NULL || log->status != BROKER_LOG_INIT) return IO_EINVAL;
    assert(log->last_index == log->base_index);
    log->base_index = log->last_index = log->durable_index = index;
    log->base_term = log->last_term = term;
    return 0;
}

/* ---- entries ------------------------------------------------------------ */

static broker_log_entry_t *log__entry(const broker_log_t *log, uint64_t i) {
    assert(i > log->base_index && i <= log->last_index);
    return &log->ring[(log->ring_head + (i - log->base_index - 1)) &
                      (log->ring_cap - 1)];
}

static int log__ring_grow(broker_log_t *log) {
    const uint64_t count = log->last_index - log->base_index;
    if (count < log->ring_cap) return 0;
    if (count >= log->cfg.entries_max) return IO_ENOMEM;
    const uint32_t cap = log->ring_cap * 2;
    broker_log_entry_t *r = calloc(cap, sizeof *r);
    if (r == NULL) return IO_ENOMEM;
    for (uint64_t k = 0; k < count; k++)
        r[k] = log->ring[(log->ring_head + k) & (log->ring_cap - 1)];
    free(log->ring);
    log->ring = r;
    log->ring_cap = cap;
    log->ring_head = 0;
    assert(count < cap);
    return 0;
}

/* Add entry last_index+1 (payload copied). */
static int log__push_entry(broker_log_t *log, uint64_t term, uint8_t type,
                           const uint8_t *payload, uint32_t len,
                           uint32_t end_offset) {
    if (log->memory_bytes + len > log->cfg.memory_bytes_max) return IO_ENOMEM;
    if (log__ring_grow(log) != 0) return IO_ENOMEM;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) return IO_ENOMEM;
    if (len) memcpy(copy, payload, len);
    log->last_index++;
    broker_log_entry_t *e = log__entry(log, log->last_index);
    e->term = term;
    e->type = type;
    e->payload = copy;
    e->len = len;
    e->end_offset = end_offset;
    log->last_term = term;
    log->memory_bytes += len;
    assert(log->last_index - log->base_index <= log->ring_cap);
    return 0;
}

/* Free entries > index. */
static void log__drop_after(broker_log_t *log, uint64_t index) {
    assert(index >= log->base_index);
    while (log->last_index > index) {
        broker_log_entry_t *e = log__entry(log, log->last_index);
        log->memory_bytes -= e->len;
        free(e->payload);
        e->payload = NULL;
        log->last_index--;
    }
    log->last_term = index > log->base_index ? log__entry(log, index)->term
                                             : log->base_term;
    assert(log->last_index == index);
}

/* Free entries <= upto (upto <= last). */
static void log__drop_upto(broker_log_t *log, uint64_t upto, uint64_t term) {
    assert(upto <= log->last_index && upto >= log->base_index);
    while (log->base_index < upto) {
        broker_log_entry_t *e = log__entry(log, log->base_index + 1);
        log->memory_bytes -= e->len;
        free(e->payload);
        e->payload = NULL;
        log->ring_head = (log->ring_head + 1) & (log->ring_cap - 1);
        log->base_index++;
    }
    log->base_term = term;
    assert(log->base_index == upto);
}

/* ---- operation queue ---------------------------------------------------- */

static broker_log__op_t *log__queue_at(broker_log_t *log, uint32_t k) {
    assert(k < log->queued_count);
    return &log->queued[(log->queued_head + k) % BROKER_LOG_OPS_QUEUED_MAX];
}

static broker_log__op_t *log__push(broker_log_t *log, uint8_t kind,
                                   uint64_t seg_first) {
    if (log->queued_count >= BROKER_LOG_OPS_QUEUED_MAX) return NULL;
    log->queued_count++;
    broker_log__op_t *op = log__queue_at(log, log->queued_count - 1);
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->seg_first = seg_first;
    assert(log->queued_count <= BROKER_LOG_OPS_QUEUED_MAX);
    return op;
}

static int log__queue_room(const broker_log_t *log, uint32_t n) {
    return log->queued_count + n <= BROKER_LOG_OPS_QUEUED_MAX;
}

static void log__fail(broker_log_t *log, int error) {
    assert(error < 0);
    if (log->status != BROKER_LOG_FAILED) {
        log->status = BROKER_LOG_FAILED;
        log->error = error;
        io_trace(log->io, "log.failed", NULL);
    }
}

static int log__issue(broker_log_t *log, broker_log__op_t *op) {
    char name[32];
    broker_log_segment_name(name, sizeof name, op->seg_first);
    const io_t *io = log->io;
    switch (op->kind) {
    case LOG__OP_WRITE:
        return io_disk_write(io, name, op->offset, op->buf, op->len, op->token);
    case LOG__OP_READ:
        return io_disk_read(io, name, op->offset, op->buf, op->len, op->token);
    case LOG__OP_FSYNC:
        return io_disk_fsync(io, name, op->token);
    case LOG__OP_TRUNCATE:
        return io_disk_truncate(io, name, op->offset, op->token);
    case LOG__OP_REMOVE:
        return io_disk_remove(io, name, op->token);
    default:
        assert(0 && "bad op kind");
        return IO_EINVAL;
    }
}

static void log__sync_push(broker_log_t *log);

/* Issue queued operations while slots are free. */
static void log__pump(broker_log_t *log) {
    assert(log->inflight_count <= BROKER_LOG_DISK_OPS_MAX);
    for (uint32_t guard = 0; guard < 2 * BROKER_LOG_OPS_QUEUED_MAX; guard++) {
        if (log->status == BROKER_LOG_FAILED) return;
        if (log->queued_count == 0 && log->sync_wanted &&
            log->sync_inflight == 0 && log->status != BROKER_LOG_RECOVERING)
            log__sync_push(log);
        if (log->queued_count == 0 ||
            log->inflight_count >= BROKER_LOG_DISK_OPS_MAX)
            return;
        broker_log__op_t op = *log__queue_at(log, 0);
        log->queued_head = (log->queued_head + 1) % BROKER_LOG_OPS_QUEUED_MAX;
        log->queued_count--;
        if (op.kind == LOG__OP_NOP) continue;
        op.token = broker_token_make(BROKER_TOKEN_LOG, ++log->token_seq);
        const int rc = log__issue(log, &op);
        if (op.kind == LOG__OP_WRITE) {
            free(op.buf); /* io copies written bytes */
            op.buf = NULL;
        }
        if (rc < 0) {
            log__fail(log, rc);
            return;
        }
        if (op.is_sync) log->sync_inflight++;
        log->inflight[(log->inflight_head + log->inflight_count) %
                      BROKER_LOG_DISK_OPS_MAX] = op;
        log->inflight_count++;
    }
}

/* Group commit: one fsync per dirty segment; the last carries the target. */
static void log__sync_push(broker_log_t *log) {
    assert(log->queued_count == 0);
    log->sync_wanted = 0;
    broker_log__op_t *last = NULL;
    for (uint32_t i = 0; i < log->seg_count; i++) {
        if (!log->segs[i].dirty) continue;
        broker_log__op_t *op =
            log__push(log, LOG__OP_FSYNC, log->segs[i].first_index);
        assert(op != NULL); /* the queue was empty */
        op->is_sync = 1;
        log->segs[i].dirty = 0;
        last = op;
    }
    if (last) last->target = log->last_index;
}

/* ---- segments ----------------------------------------------------------- */

static broker_log_segment_t *log__active(broker_log_t *log) {
    if (log->seg_count == 0) return NULL;
    broker_log_segment_t *s = &log->segs[log->seg_count - 1];
    return s->sealed ? NULL : s;
}

/* Index of the segment holding `index` (largest first <= index), or -1. */
static int log__seg_of(const broker_log_t *log, uint64_t index) {
    int k = -1;
    for (uint32_t i = 0; i < log->seg_count; i++)
        if (log->segs[i].first_index <= index) k = (int)i;
    return k;
}

/* Drop segment i from the table (the caller queued its removal). */
static void log__seg_forget(broker_log_t *log, uint32_t i) {
    assert(i < log->seg_count);
    memmove(&log->segs[i], &log->segs[i + 1],
            (log->seg_count - i - 1) * sizeof log->segs[0]);
    log->seg_count--;
}

/* Neutralise queued writes to `seg_first` (its file is being removed). */
static void log__cancel_writes(broker_log_t *log, uint64_t seg_first) {
    for (uint32_t k = 0; k < log->queued_count; k++) {
        broker_log__op_t *op = log__queue_at(log, k);
        if (op->kind == LOG__OP_WRITE && op->seg_first == seg_first) {
            free(op->buf);
            op->buf = NULL;
            op->kind = LOG__OP_NOP;
        }
    }
}

/* Start a new segment at `first`: fsync the previous one (so crash damage can
 * only sit in the last segment) and remove every stale file that would sort
 * at or after it (so name order stays creation order). */
static int log__roll(broker_log_t *log, uint64_t first) {
    if (log->seg_count >= BROKER_LOG_SEGMENTS_MAX) return IO_ENOMEM;
    if (!log__queue_room(log, 2 + log->stale_count + log->seg_count))
        return IO_ENOMEM;
    if (log->seg_count > 0 && log->segs[log->seg_count - 1].dirty) {
        broker_log_segment_t *prev = &log->segs[log->seg_count - 1];
        broker_log__op_t *op = log__push(log, LOG__OP_FSYNC, prev->first_index);
        op->target = first - 1;
        prev->dirty = 0;
    }
    while (log->seg_count > 0 &&
           log->segs[log->seg_count - 1].first_index >= first) {
        const uint64_t f = log->segs[log->seg_count - 1].first_index;
        log__cancel_writes(log, f);
        log__push(log, LOG__OP_REMOVE, f);
        log__seg_forget(log, log->seg_count - 1);
    }
    for (uint32_t i = 0; i < log->stale_count; i++)
        log__push(log, LOG__OP_REMOVE, log->stale[i]);
    log->stale_count = 0;
    broker_log_segment_t *s = &log->segs[log->seg_count++];
    memset(s, 0, sizeof *s);
    s->first_index = first;
    assert(log->seg_count <= BROKER_LOG_SEGMENTS_MAX);
    return 0;
}

/* Queue the bytes of record `index` for segment `s` (coalescing). */
static int log__queue_write(broker_log_t *log, broker_log_segment_t *s,
                            uint64_t index, const uint8_t *rec, size_t size) {
    broker_log__op_t *tail =
        log->queued_count ? log__queue_at(log, log->queued_count - 1) : NULL;
    if (tail && tail->kind == LOG__OP_WRITE &&
        tail->seg_first == s->first_index &&
        tail->offset + tail->len == s->size_bytes &&
        tail->len + size <= BROKER_LOG_WRITE_BATCH_BYTES_MAX) {
        if (tail->len + size > tail->cap) {
            size_t cap = tail->cap * 2;
            if (cap < tail->len + size) cap = tail->len + size;
            uint8_t *b = realloc(tail->buf, cap);
            if (b == NULL) return IO_ENOMEM;
            tail->buf = b;
            tail->cap = cap;
        }
        memcpy(tail->buf + tail->len, rec, size);
        tail->len += size;
        tail->to_index = index;
        return 0;
    }
    uint8_t *b = malloc(size);
    if (b == NULL) return IO_ENOMEM;
    broker_log__op_t *op = log__push(log, LOG__OP_WRITE, s->first_index);
    if (op == NULL) {
        free(b);
        return IO_ENOMEM;
    }
    memcpy(b, rec, size);
    op->buf = b;
    op->len = op->cap = size;
    op->offset = s->size_bytes;
    op->from_index = op->to_index = index;
    return 0;
}

/* ---- append, sync ------------------------------------------------------- */

static int log__writable(const broker_log_t *log) {
    if (log->status == BROKER_LOG_FAILED) return log->error;
    if (log->status != BROKER_LOG_OK && log->status != BROKER_LOG_CORRUPT)
        return IO_EINVAL;
    return 0;
}

int64_t broker_log_append(broker_log_t *log, uint64_t term, uint8_t type,
                          const uint8_t *payload, size_t len) {
    if (log == NULL) return IO_EINVAL;
    int rc = log__writable(log);
    if (rc != 0) return rc;
    if (len > BROKER_LOG_RECORD_PAYLOAD_MAX || (payload == NULL && len > 0) ||
        term < log->last_term || term == 0)
        return IO_EINVAL;
    if (log->memory_bytes + len > log->cfg.memory_bytes_max ||
        log->last_index - log->base_index >= log->cfg.entries_max ||
        !log__queue_room(log, 3 + log->stale_count + log->seg_count))
        return IO_ENOMEM;
    const uint64_t index = log->last_index + 1;
    const size_t size = BROKER_LOG_RECORD_HEADER_SIZE + len;
    broker_log_segment_t *s = log__active(log);
    if (s == NULL || (s->size_bytes > 0 &&
                      s->size_bytes + size > log->cfg.segment_size_max_bytes)) {
        rc = log__roll(log, index);
        if (rc != 0) return rc;
        s = &log->segs[log->seg_count - 1];
    }
    uint8_t *rec = malloc(size);
    if (rec == NULL) return IO_ENOMEM;
    broker_log_record_encode(rec, size, term, index, type, payload, len);
    rc = log__queue_write(log, s, index, rec, size);
    free(rec);
    if (rc != 0) return rc;
    s->size_bytes += size;
    s->dirty = 1;
    rc = log__push_entry(log, term, type, payload, (uint32_t)len,
                         (uint32_t)s->size_bytes);
    assert(rc == 0); /* limits were checked above */
    (void)rc;
    log__pump(log);
    assert(log->last_index == index);
    return (int64_t)index;
}

int broker_log_sync(broker_log_t *log) {
    if (log == NULL) return IO_EINVAL;
    const int rc = log__writable(log);
    if (rc != 0) return rc;
    log->sync_wanted = 1;
    log__pump(log);
    return 0;
}

/* ---- truncate, compact -------------------------------------------------- */

static void log__clamp_targets(broker_log_t *log, uint64_t index) {
    for (uint32_t k = 0; k < log->queued_count; k++) {
        broker_log__op_t *op = log__queue_at(log, k);
        if (op->target > index) op->target = index;
    }
    for (uint32_t k = 0; k < log->inflight_count; k++) {
        broker_log__op_t *op = &log->inflight[(log->inflight_head + k) %
                                              BROKER_LOG_DISK_OPS_MAX];
        if (op->target > index) op->target = index;
    }
    if (log->durable_index > index) log->durable_index = index;
}

/* Cut queued writes so they hold no record > index. */
static void log__trim_writes(broker_log_t *log, uint64_t index) {
    for (uint32_t k = 0; k < log->queued_count; k++) {
        broker_log__op_t *op = log__queue_at(log, k);
        if (op->kind != LOG__OP_WRITE || op->to_index <= index) continue;
        if (op->from_index > index) {
            free(op->buf);
            op->buf = NULL;
            op->kind = LOG__OP_NOP;
            continue;
        }
        const uint64_t end = log__entry(log, index)->end_offset;
        assert(end > op->offset && end - op->offset <= op->len);
        op->len = (size_t)(end - op->offset);
        op->to_index = index;
    }
}

/* Queue removal of every segment from position i on (descending, so a crash
 * in between leaves a contiguous prefix). */
static void log__remove_segs_from(broker_log_t *log, uint32_t i) {
    while (log->seg_count > i) {
        const uint64_t f = log->segs[log->seg_count - 1].first_index;
        log__cancel_writes(log, f);
        broker_log__op_t *op = log__push(log, LOG__OP_REMOVE, f);
        assert(op != NULL);
        (void)op;
        log__seg_forget(log, log->seg_count - 1);
    }
}

int broker_log_truncate_after(broker_log_t *log, uint64_t index) {
    if (log == NULL) return IO_EINVAL;
    const int rc = log__writable(log);
    if (rc != 0) return rc;
    if (index < log->base_index) return IO_EINVAL;
    if (index >= log->last_index) return 0;
    if (!log__queue_room(log, log->seg_count + 2)) return IO_ENOMEM;
    log__trim_writes(log, index);
    log__clamp_targets(log, index);
    const int k = index > log->base_index ? log__seg_of(log, index) : -1;
    if (k < 0) {
        log__remove_segs_from(log, 0);
    } else {
        log__remove_segs_from(log, (uint32_t)k + 1);
        broker_log_segment_t *s = &log->segs[k];
        s->size_bytes = log__entry(log, index)->end_offset;
        broker_log__op_t *t = log__push(log, LOG__OP_TRUNCATE, s->first_index);
        t->offset = s->size_bytes;
        broker_log__op_t *f = log__push(log, LOG__OP_FSYNC, s->first_index);
        f->target = index;
        s->dirty = 0;
    }
    log__drop_after(log, index);
    log__pump(log);
    assert(log->last_index == index);
    return 0;
}

int broker_log_compact(broker_log_t *log, uint64_t upto_index,
                       uint64_t upto_term) {
    if (log == NULL) return IO_EINVAL;
    const int rc = log__writable(log);
    if (rc != 0) return rc;
    if (upto_index <= log->base_index) return 0;
    if (!log__queue_room(log, log->seg_count + 1)) return IO_ENOMEM;
    if (upto_index <= log->last_index &&
        broker_log_term_at(log, upto_index) == upto_term) {
        /* Remove leading segments whose entries are all <= upto. */
        while (log->seg_count > 0) {
            const int whole =
                log->seg_count > 1 ? log->segs[1].first_index <= upto_index + 1
                                   : log->last_index <= upto_index;
            if (!whole) break;
            log__cancel_writes(log, log->segs[0].first_index);
            log__push(log, LOG__OP_REMOVE, log->segs[0].first_index);
            log__seg_forget(log, 0);
        }
        log__drop_upto(log, upto_index, upto_term);
    } else {
        /* The snapshot replaces the log (InstallSnapshot past or against
         * our entries): discard everything. */
        if (upto_index < log->last_index) log__trim_writes(log, upto_index);
        log__clamp_targets(log, upto_index);
        log__remove_segs_from(log, 0);
        log__free_entries(log);
        log->memory_bytes = 0;
        log->ring_head = 0;
        log->base_index = log->last_index = upto_index;
        log->base_term = log->last_term = upto_term;
    }
    if (log->durable_index < log->base_index)
        log->durable_index = log->base_index; /* the snapshot is durable */
    log__pump(log);
    assert(log->base_index == upto_index);
    return 0;
}

/* ---- queries ------------------------------------------------------------ */

uint64_t broker_log_last_index(const broker_log_t *log) {
    return log->last_index;
}
uint64_t broker_log_last_term(const broker_log_t *log) {
    return log->last_term;
}
uint64_t broker_log_base_index(const broker_log_t *log) {
    return log->base_index;
}
uint64_t broker_log_durable_index(const broker_log_t *log) {
    return log->durable_index;
}
uint64_t broker_log_term_at(const broker_log_t *log, uint64_t index) {
    if (index == log->base_index) return log->base_term;
    if (index < log->base_index || index > log->last_index) return 0;
    return log__entry(log, index)->term;
}
const broker_log_entry_t *broker_log_entry(const broker_log_t *log,
                                           uint64_t index) {
    if (index <= log->base_index || index > log->last_index) return NULL;
    return log__entry(log, index);
}
broker_log_status_t broker_log_status(const broker_log_t *log) {
    return log->status;
}
uint64_t broker_log_repair_index(const broker_log_t *log) {
    return log->status == BROKER_LOG_CORRUPT ? log->repair_index : 0;
}
int broker_log_idle(const broker_log_t *log) {
    return log->queued_count == 0 && log->inflight_count == 0;
}

/* ---- recovery ----------------------------------------------------------- */

static int log__list_cb(void *arg, const char *name, uint64_t size_bytes) {
    broker_log__recovery_t *rec = arg;
    uint64_t first;
    if (log__parse_name(name, &first) != 0) return 0; /* not a segment */
    if (rec->count >= BROKER_LOG_SEGMENTS_MAX) return 1;
    rec->found[rec->count].first = first;
    rec->found[rec->count].size_bytes = size_bytes;
    rec->count++;
    return 0;
}

static int log__all_zero(const uint8_t *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i] != 0) return 0;
    return 1;
}

/* Does the bad record at pos (valid data resumes at `end`) look like what a
 * lost or torn unsynced write leaves? Our files are append-only past their
 * durable end, so a lost write or a lost sector piece of one reads back as
 * zeros: a zero header, or a zero piece of the record between two sector
 * boundaries. Silent corruption flips bits; it does not zero whole pieces.
 * Pieces shorter than LOG__HOLE_PIECE_MIN are ignored: a few zero bytes are
 * too common in payloads to tell anything. */
#define LOG__HOLE_PIECE_MIN 8u
static int log__is_hole(const broker_log_t *log, const uint8_t *buf,
                        uint64_t pos, uint64_t end) {
    const uint64_t sector = log->cfg.sector_size_bytes;
    assert(pos < end && (sector & (sector - 1)) == 0);
    if (end - pos >= BROKER_LOG_RECORD_HEADER_SIZE &&
        log__all_zero(buf + pos, BROKER_LOG_RECORD_HEADER_SIZE))
        return 1;
    if (end - pos >= 4) { /* clamp to the record's own extent if plausible */
        const uint64_t plen = log__get32(buf + pos);
        if (plen <= BROKER_LOG_RECORD_PAYLOAD_MAX &&
            pos + BROKER_LOG_RECORD_HEADER_SIZE + plen < end)
            end = pos + BROKER_LOG_RECORD_HEADER_SIZE + plen;
    }
    for (uint64_t at = pos; at < end;) {
        uint64_t piece_end = (at / sector + 1) * sector;
        if (piece_end > end) piece_end = end;
        if (piece_end - at >= LOG__HOLE_PIECE_MIN &&
            log__all_zero(buf + at, piece_end - at))
            return 1;
        at = piece_end;
    }
    return 0;
}

/* First offset >= from holding a valid record with an index in
 * (after_index, after_index + window] and term >= after_term, or -1. Cheap
 * header checks first; the CRC only for plausible candidates. */
static int64_t log__resync(const uint8_t *buf, uint64_t len, uint64_t from,
                           uint64_t after_index, uint64_t after_term) {
    const uint64_t window = len / BROKER_LOG_RECORD_HEADER_SIZE + 1;
    for (uint64_t off = from; off + BROKER_LOG_RECORD_HEADER_SIZE <= len;
         off++) {
        const uint8_t *p = buf + off;
        const uint32_t plen = log__get32(p);
        if (plen > BROKER_LOG_RECORD_PAYLOAD_MAX ||
            off + BROKER_LOG_RECORD_HEADER_SIZE + plen > len)
            continue;
        const uint64_t idx = log__get64(p + 16);
        if (idx <= after_index || idx - after_index > window) continue;
        if (log__get64(p + 8) < after_term) continue;
        if (broker_log_record_decode(p, len - off, NULL, NULL, NULL, NULL,
                                     NULL) > 0)
            return (int64_t)off;
    }
    return -1;
}

/* Highest index of consecutive valid records from `off`. */
static uint64_t log__max_from(const uint8_t *buf, uint64_t len, uint64_t off) {
    uint64_t max = 0;
    for (uint32_t n = 0; off < len && n < BROKER_LOG_ENTRIES_IN_MEMORY_MAX;
         n++) {
        uint64_t idx;
        const int64_t sz = broker_log_record_decode(buf + off, len - off, NULL,
                                                    &idx, NULL, NULL, NULL);
        if (sz <= 0) break;
        if (idx > max) max = idx;
        off += (uint64_t)sz;
    }
    return max;
}

static void log__seen(broker_log__recovery_t *rec, uint64_t index) {
    if (index > rec->seen_max) rec->seen_max = index;
}

/* Corruption found while loading: keep the verified prefix, seal. */
static void log__mark_corrupt(broker_log_t *log, const char *why) {
    broker_log__recovery_t *rec = log->rec;
    if (!rec->corrupt) io_trace(log->io, "log.corrupt", why);
    rec->corrupt = 1;
    rec->mode = LOG__MODE_SHADOW;
    log__seen(rec, log->last_index + 1);
    if (log->seg_count > 0) log->segs[log->seg_count - 1].sealed = 1;
}

/* Entries >= first of older segments are superseded by a segment starting
 * at `first` (written after the older tail was abandoned). */
static void log__supersede(broker_log_t *log, uint64_t first) {
    assert(first <= log->last_index + 1);
    const uint64_t keep =
        first - 1 > log->base_index ? first - 1 : log->base_index;
    if (keep < log->last_index) log__drop_after(log, keep);
    /* Segments left without a live entry are removed at the next roll. */
    while (log->seg_count > 0 &&
           (keep == log->base_index ||
            log->segs[log->seg_count - 1].first_index > keep)) {
        assert(log->stale_count < BROKER_LOG_SEGMENTS_MAX);
        log->stale[log->stale_count++] =
            log->segs[log->seg_count - 1].first_index;
        log->seg_count--;
    }
    if (log->seg_count > 0) {
        broker_log_segment_t *s = &log->segs[log->seg_count - 1];
        s->size_bytes = log__entry(log, keep)->end_offset;
        s->sealed = 1;
    }
    assert(log->last_index == keep);
}

/* Verify one loaded record against the log; load it. 0 = ok, -1 = bad. */
static int log__load_record(broker_log_t *log, broker_log_segment_t *s,
                            uint64_t term, uint64_t idx, uint8_t type,
                            const uint8_t *payload, uint32_t plen,
                            uint64_t end) {
    if (idx <= log->base_index) {
        /* Compacted; a different term at the base means a snapshot
         * replaced this log: everything after the base is stale. */
        if (idx == log->base_index && term != log->base_term) return -2;
        return 0;
    }
    if (idx != log->last_index + 1) return -1;
    if (term < log->last_term) return -1;
    if (log__push_entry(log, term, type, payload, plen, (uint32_t)end) != 0)
        return -3;
    assert(s->first_index <= idx);
    s->size_bytes = end;
    return 0;
}

/* Parse the buffered segment rec->found[rec->cur]. */
static void log__parse_segment(broker_log_t *log) {
    broker_log__recovery_t *rec = log->rec;
    const log__found_t *fs = &rec->found[rec->cur];
    const uint8_t *buf = rec->buf;
    const uint64_t len = rec->buf_len;
    const int is_last = rec->cur >= rec->last_nonempty;
    if (rec->mode == LOG__MODE_SHADOW && fs->first <= log->last_index + 1 &&
        fs->first > log->base_index) {
        rec->mode = LOG__MODE_LOAD; /* a repair segment */
        log__supersede(log, fs->first);
    } else if (rec->mode == LOG__MODE_LOAD && fs->first <= log->last_index &&
               fs->first > log->base_index) {
        log__supersede(log, fs->first);
    }
    if (rec->mode == LOG__MODE_LOAD && fs->first > log->last_index + 1)
        log__mark_corrupt(log, "gap between segments");
    if (rec->mode == LOG__MODE_SHADOW) {
        log__seen(rec, log__max_from(buf, len, 0));
        if (fs->first > log->base_index)
            log->stale[log->stale_count++] = fs->first;
        return;
    }
    assert(log->seg_count < BROKER_LOG_SEGMENTS_MAX);
    broker_log_segment_t *s = &log->segs[log->seg_count++];
    memset(s, 0, sizeof *s);
    s->first_index = fs->first;
    uint64_t pos = 0, prev = 0, loaded = 0;
    while (pos < len) {
        uint64_t term = 0, idx = 0;
        uint8_t type = 0;
        const uint8_t *payload = NULL;
        uint32_t plen = 0;
        const int64_t sz = broker_log_record_decode(
            buf + pos, len - pos, &term, &idx, &type, &payload, &plen);
        int bad = sz <= 0;
        if (!bad && idx != (prev ? prev + 1 : fs->first)) bad = 1;
        if (!bad) {
            const int rc = log__load_record(log, s, term, idx, type, payload,
                                            plen, pos + (uint64_t)sz);
            if (rc == -3) {
                log__fail(log, IO_ENOMEM);
                return;
            }
            if (rc == -2) {
                /* Stale log behind a newer snapshot: not corruption. */
                rec->mode = LOG__MODE_SHADOW;
                log->stale[log->stale_count++] = s->first_index;
                log->seg_count--;
                return;
            }
            bad = rc != 0;
        }
        if (bad) {
            /* A CRC-valid record that breaks the sequence is never a torn
             * write: it is corruption wherever it sits. */
            const int crc_ok = sz > 0;
            const int64_t y = crc_ok ? -1
                                     : log__resync(buf, len, pos + 1,
                                                   log->last_index,
                                                   log->last_term);
            if (!crc_ok && is_last &&
                (y < 0 || log__is_hole(log, buf, pos, (uint64_t)y))) {
                /* Torn tail: make the cut durable before any new write. */
                broker_log__op_t *t =
                    log__push(log, LOG__OP_TRUNCATE, s->first_index);
                t->offset = pos;
                log__push(log, LOG__OP_FSYNC, s->first_index);
                io_trace(log->io, "log.torn_tail", NULL);
                break;
            }
            if (crc_ok) log__seen(rec, idx);
            if (y >= 0) log__seen(rec, log__max_from(buf, len, (uint64_t)y));
            log__mark_corrupt(log, crc_ok ? "record out of sequence"
                                          : "bad record before valid data");
            break;
        }
        prev = idx;
        loaded += idx > log->base_index;
        pos += (uint64_t)sz;
    }
    if (loaded == 0 && !s->sealed && s->first_index != log->last_index + 1) {
        /* Nothing live in it (all compacted): drop it now. */
        log__push(log, LOG__OP_REMOVE, s->first_index);
        log->seg_count--;
    }
}

/* Queue the reads of the next non-empty, uncompacted segment; or finish. */
static void log__recover_next(broker_log_t *log) {
    broker_log__recovery_t *rec = log->rec;
    for (; rec->cur < rec->count; rec->cur++) {
        const log__found_t *fs = &rec->found[rec->cur];
        const int compacted = rec->cur + 1 < rec->count &&
                              rec->found[rec->cur + 1].first <=
                                  log->base_index + 1;
        if (fs->size_bytes == 0 || compacted) {
            log__push(log, LOG__OP_REMOVE, fs->first);
            continue;
        }
        if (fs->size_bytes > BROKER_LOG_SEGMENT_FILE_SIZE_MAX) {
            if (rec->mode == LOG__MODE_LOAD)
                log__mark_corrupt(log, "segment too large");
            continue;
        }
        free(rec->buf);
        rec->buf = malloc(fs->size_bytes);
        if (rec->buf == NULL) {
            log__fail(log, IO_ENOMEM);
            return;
        }
        rec->buf_len = fs->size_bytes;
        rec->read_error = 0;
        rec->chunks_left = 0;
        for (uint64_t off = 0; off < fs->size_bytes;
             off += BROKER_LOG_READ_CHUNK_BYTES) {
            broker_log__op_t *op = log__push(log, LOG__OP_READ, fs->first);
            if (op == NULL) {
                log__fail(log, IO_ENOMEM);
                return;
            }
            op->offset = off;
            op->buf = rec->buf + off;
            op->len = fs->size_bytes - off < BROKER_LOG_READ_CHUNK_BYTES
                          ? (size_t)(fs->size_bytes - off)
                          : BROKER_LOG_READ_CHUNK_BYTES;
            rec->chunks_left++;
        }
        return; /* continue when the last chunk completes */
    }
    /* All parsed: make the recovered state durable, then report. */
    rec->done = 1;
    free(rec->buf);
    rec->buf = NULL;
    if (log->seg_count > 0) {
        broker_log__op_t *op = log__push(
            log, LOG__OP_FSYNC, log->segs[log->seg_count - 1].first_index);
        if (op == NULL) log__fail(log, IO_ENOMEM);
    }
}

static broker_log_event_t log__recover_finish(broker_log_t *log) {
    broker_log_event_t ev = {0, 0, 0};
    broker_log__recovery_t *rec = log->rec;
    assert(rec != NULL && rec->done);
    if (rec->corrupt && log->last_index < rec->seen_max) {
        log->status = BROKER_LOG_CORRUPT;
        log->repair_index = rec->seen_max;
    } else {
        log->status = BROKER_LOG_OK;
    }
    log->durable_index = log->last_index;
    free(rec->buf);
    free(rec);
    log->rec = NULL;
    ev.flags = BROKER_LOG_EV_RECOVERED | BROKER_LOG_EV_DURABLE;
    ev.durable_index = log->durable_index;
    io_trace(log->io, "log.recovered",
             log->status == BROKER_LOG_CORRUPT ? "corrupt" : "ok");
    return ev;
}

int broker_log_recover(broker_log_t *log) {
    if (log == NULL || log->status != BROKER_LOG_INIT) return IO_EINVAL;
    broker_log__recovery_t *rec = calloc(1, sizeof *rec);
    if (rec == NULL) return IO_ENOMEM;
    if (io_disk_list(log->io, log__list_cb, rec) != 0) {
        free(rec);
        return IO_ENOMEM; /* more segments than we could ever have made */
    }
    rec->last_nonempty = rec->count;
    for (uint32_t i = 0; i < rec->count; i++)
        if (rec->found[i].size_bytes > 0) rec->last_nonempty = i;
    log->rec = rec;
    log->status = BROKER_LOG_RECOVERING;
    log__recover_next(log);
    if (log->status == BROKER_LOG_FAILED) return log->error;
    log__pump(log);
    if (log->status == BROKER_LOG_FAILED) return log->error;
    if (rec->done && broker_log_idle(log)) {
        log__recover_finish(log);
        return 1;
    }
    assert(log->inflight_count > 0);
    return 0;
}

/* ---- completions -------------------------------------------------------- */

static void log__read_done(broker_log_t *log, const broker_log__op_t *op,
                           int64_t result) {
    broker_log__recovery_t *rec = log->rec;
    assert(rec != NULL && rec->chunks_left > 0);
    if (result < 0) {
        rec->read_error = 1;
    } else if ((uint64_t)result < op->len) {
        const uint64_t end = op->offset + (uint64_t)result;
        if (end < rec->buf_len) rec->buf_len = end;
    }
    if (--rec->chunks_left > 0) return;
    if (rec->read_error) {
        if (rec->mode == LOG__MODE_LOAD) log__mark_corrupt(log, "read error");
    } else {
        log__parse_segment(log);
    }
    if (log->status == BROKER_LOG_FAILED) return;
    rec->cur++;
    log__recover_next(log);
}

broker_log_event_t broker_log_on_disk_done(broker_log_t *log, uint64_t token,
                                           int64_t result) {
    broker_log_event_t ev = {0, 0, 0};
    assert(log != NULL);
    assert(broker_token_owner(token) == BROKER_TOKEN_LOG);
    if (log->status == BROKER_LOG_FAILED) return ev;
    if (log->inflight_count == 0 ||
        log->inflight[log->inflight_head].token != token) {
        log__fail(log, IO_EINVAL); /* the world broke the issue order */
        ev.flags = BROKER_LOG_EV_ERROR;
        ev.error = IO_EINVAL;
        return ev;
    }
    const broker_log__op_t op = log->inflight[log->inflight_head];
    log->inflight_head = (log->inflight_head + 1) % BROKER_LOG_DISK_OPS_MAX;
    log->inflight_count--;
    if (op.is_sync) log->sync_inflight--;
    switch (op.kind) {
    case LOG__OP_READ:
        log__read_done(log, &op, result);
        break;
    case LOG__OP_WRITE:
        if (result != (int64_t)op.len)
            log__fail(log, result < 0 ? (int)result : IO_EIO);
        break;
    case LOG__OP_REMOVE:
        if (result < 0 && result != IO_ENOENT) log__fail(log, (int)result);
        break;
    default: /* fsync, truncate */
        if (result < 0) {
            log__fail(log, (int)result);
        } else if (op.kind == LOG__OP_FSYNC && op.target > log->durable_index &&
                   log->status != BROKER_LOG_RECOVERING) {
            log->durable_index = op.target;
            ev.flags |= BROKER_LOG_EV_DURABLE;
            if (log->status == BROKER_LOG_CORRUPT &&
                log->durable_index >= log->repair_index) {
                log->status = BROKER_LOG_OK;
                log->repair_index = 0;
                ev.flags |= BROKER_LOG_EV_REPAIRED;
                io_trace(log->io, "log.repaired", NULL);
            }
        }
        break;
    }
    if (log->status == BROKER_LOG_FAILED) {
        ev.flags = BROKER_LOG_EV_ERROR;
        ev.error = log->error;
        return ev;
    }
    log__pump(log);
    if (log->status == BROKER_LOG_FAILED) {
        ev.flags = BROKER_LOG_EV_ERROR;
        ev.error = log->error;
        return ev;
    }
    if (log->status == BROKER_LOG_RECOVERING && log->rec->done &&
        broker_log_idle(log))
        ev = log__recover_finish(log);
    ev.durable_index = log->durable_index;
    return ev;
}
