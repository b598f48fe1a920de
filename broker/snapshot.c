/*
 * broker/snapshot.c — two-slot snapshot files.
 */
#include "broker/snapshot.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/crc32c.h"
#include "broker/tokens.h"

#define SNAP__MAGIC 0x50534c43u /* "CLSP" */

enum { SNAP__INIT = 0, SNAP__LOADING, SNAP__READY, SNAP__FAILED };
enum { SNAP__READ = 1, SNAP__WRITE, SNAP__FSYNC };

static const char *const snap__names[2] = {"snap-a", "snap-b"};

static void snap__put(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t snap__get(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

int64_t broker_snapshot_encode(uint8_t *out, size_t cap, uint64_t seq,
                               uint64_t index, uint64_t term,
                               const uint8_t *data, size_t len) {
    if (out == NULL || len > BROKER_SNAPSHOT_DATA_MAX ||
        (data == NULL && len > 0) || cap < BROKER_SNAPSHOT_HEADER_SIZE + len)
        return IO_EINVAL;
    snap__put(out, SNAP__MAGIC, 4);
    snap__put(out + 8, seq, 8);
    snap__put(out + 16, index, 8);
    snap__put(out + 24, term, 8);
    snap__put(out + 32, len, 4);
    if (len) memcpy(out + BROKER_SNAPSHOT_HEADER_SIZE, data, len);
    snap__put(out + 36, crc32c(data, len), 4);
    snap__put(out + 4, crc32c(out + 8, BROKER_SNAPSHOT_HEADER_SIZE - 8), 4);
    assert(snap__get(out + 32, 4) == len);
    return (int64_t)(BROKER_SNAPSHOT_HEADER_SIZE + len);
}

int broker_snapshot_decode(const uint8_t *buf, size_t len, uint64_t *seq,
                           uint64_t *index, uint64_t *term,
                           const uint8_t **data, size_t *data_len) {
    if (buf == NULL || len < BROKER_SNAPSHOT_HEADER_SIZE) return -1;
    if (snap__get(buf, 4) != SNAP__MAGIC) return -1;
    if (snap__get(buf + 4, 4) !=
        crc32c(buf + 8, BROKER_SNAPSHOT_HEADER_SIZE - 8))
        return -1;
    const uint64_t dlen = snap__get(buf + 32, 4);
    if (dlen > BROKER_SNAPSHOT_DATA_MAX ||
        dlen > len - BROKER_SNAPSHOT_HEADER_SIZE)
        return -1;
    const uint8_t *d = buf + BROKER_SNAPSHOT_HEADER_SIZE;
    if (snap__get(buf + 36, 4) != crc32c(d, (size_t)dlen)) return -1;
    *seq = snap__get(buf + 8, 8);
    *index = snap__get(buf + 16, 8);
    *term = snap__get(buf + 24, 8);
    *data = d;
    *data_len = (size_t)dlen;
    return 0;
}

int broker_snapshot_init(broker_snapshot_t *s, const io_t *io) {
    if (s == NULL || io == NULL || io->methods == NULL) return IO_EINVAL;
    memset(s, 0, sizeof *s);
    s->io = io;
    s->newest_slot = 1; /* the first save goes to slot a */
    assert(s->state == SNAP__INIT);
    return 0;
}

void broker_snapshot_close(broker_snapshot_t *s) {
    if (s == NULL) return;
    free(s->data);
    free(s->slot_buf[0]);
    free(s->slot_buf[1]);
    memset(s, 0, sizeof *s);
}

static int snap__track(broker_snapshot_t *s, uint64_t token, uint8_t kind,
                       uint8_t slot) {
    assert(s->ops_count < BROKER_SNAPSHOT_OPS_MAX);
    broker_snapshot__op_t *op =
        &s->ops[(s->ops_head + s->ops_count) % BROKER_SNAPSHOT_OPS_MAX];
    op->token = token;
    op->kind = kind;
    op->slot = slot;
    s->ops_count++;
    return 0;
}

static uint64_t snap__token(broker_snapshot_t *s) {
    return broker_token_make(BROKER_TOKEN_SNAPSHOT, ++s->token_seq);
}

int broker_snapshot_load(broker_snapshot_t *s) {
    if (s == NULL || s->state != SNAP__INIT) return IO_EINVAL;
    for (uint8_t i = 0; i < 2; i++) {
        uint64_t size = 0;
        if (io_disk_size(s->io, snap__names[i], &size) != 0) size = 0;
        if (size > BROKER_SNAPSHOT_HEADER_SIZE + BROKER_SNAPSHOT_DATA_MAX)
            size = BROKER_SNAPSHOT_HEADER_SIZE + BROKER_SNAPSHOT_DATA_MAX;
        s->slot_cap[i] = (size_t)size;
        s->slot_result[i] = 0;
        if (size == 0) continue;
        s->slot_buf[i] = malloc((size_t)size);
        if (s->slot_buf[i] == NULL) return IO_ENOMEM;
        const uint64_t token = snap__token(s);
        const int rc = io_disk_read(s->io, snap__names[i], 0, s->slot_buf[i],
                                    (size_t)size, token);
        if (rc < 0) {
            s->state = SNAP__FAILED;
            s->error = rc;
            return rc;
        }
        snap__track(s, token, SNAP__READ, i);
    }
    if (s->ops_count == 0) {
        s->state = SNAP__READY; /* nothing on disk: no snapshot */
        return 1;
    }
    s->state = SNAP__LOADING;
    return 0;
}

/* Pick the newest valid slot; keep its data. */
static void snap__load_done(broker_snapshot_t *s) {
    int pick = -1;
    uint64_t seq[2] = {0, 0}, index[2] = {0, 0}, term[2] = {0, 0};
    const uint8_t *data[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        if (s->slot_result[i] <= 0 || s->slot_buf[i] == NULL) continue;
        if (broker_snapshot_decode(s->slot_buf[i], (size_t)s->slot_result[i],
                                   &seq[i], &index[i], &term[i], &data[i],
                                   &len[i]) != 0)
            continue;
        if (pick < 0 || seq[i] > seq[pick]) pick = i;
    }
    if (pick >= 0) {
        s->data = malloc(len[pick] ? len[pick] : 1);
        if (s->data == NULL) {
            s->state = SNAP__FAILED;
            s->error = IO_ENOMEM;
            return;
        }
        if (len[pick]) memcpy(s->data, data[pick], len[pick]);
        s->len = len[pick];
        s->seq = seq[pick];
        s->index = index[pick];
        s->term = term[pick];
        s->newest_slot = (uint8_t)pick;
    }
    for (int i = 0; i < 2; i++) {
        free(s->slot_buf[i]);
        s->slot_buf[i] = NULL;
    }
    s->state = SNAP__READY;
}

void broker_snapshot_loaded(const broker_snapshot_t *s, uint64_t *index,
                            uint64_t *term, const uint8_t **data, size_t *len) {
    assert(s != NULL && s->state == SNAP__READY);
    *index = s->index;
    *term = s->term;
    *data = s->data;
    *len = s->len;
}

int broker_snapshot_write(broker_snapshot_t *s, uint64_t index, uint64_t term,
                          const uint8_t *data, size_t len) {
    if (s == NULL) return IO_EINVAL;
    if (s->state == SNAP__FAILED) return s->error;
    if (s->state != SNAP__READY || len > BROKER_SNAPSHOT_DATA_MAX ||
        (data == NULL && len > 0) || index == 0 || index < s->index)
        return IO_EINVAL;
    if (s->saving) return IO_ENOMEM;
    const size_t size = BROKER_SNAPSHOT_HEADER_SIZE + len;
    uint8_t *buf = malloc(size);
    if (buf == NULL) return IO_ENOMEM;
    broker_snapshot_encode(buf, size, s->seq + 1, index, term, data, len);
    const uint8_t slot = (uint8_t)(s->newest_slot ^ 1);
    uint64_t token = snap__token(s);
    int rc = io_disk_write(s->io, snap__names[slot], 0, buf, size, token);
    free(buf);
    if (rc == 0) {
        snap__track(s, token, SNAP__WRITE, slot);
        token = snap__token(s);
        rc = io_disk_fsync(s->io, snap__names[slot], token);
        if (rc == 0) snap__track(s, token, SNAP__FSYNC, slot);
    }
    if (rc < 0) {
        s->state = SNAP__FAILED;
        s->error = rc;
        return rc;
    }
    s->saving = 1;
    s->save_index = index;
    s->save_term = term;
    return 0;
}

broker_snapshot_event_t broker_snapshot_on_disk_done(broker_snapshot_t *s,
                                                     uint64_t token,
                                                     int64_t result) {
    broker_snapshot_event_t ev = {0, 0, 0, 0};
    assert(s != NULL);
    assert(broker_token_owner(token) == BROKER_TOKEN_SNAPSHOT);
    if (s->state != SNAP__FAILED &&
        (s->ops_count == 0 || s->ops[s->ops_head].token != token)) {
        s->state = SNAP__FAILED;
        s->error = IO_EINVAL;
    }
    if (s->state != SNAP__FAILED) {
        const broker_snapshot__op_t op = s->ops[s->ops_head];
        s->ops_head = (s->ops_head + 1) % BROKER_SNAPSHOT_OPS_MAX;
        s->ops_count--;
        if (op.kind == SNAP__READ) {
            s->slot_result[op.slot] = result;
            if (s->ops_count == 0) {
                snap__load_done(s);
                ev.flags = BROKER_SNAPSHOT_EV_LOADED;
            }
        } else if (result < 0) {
            s->state = SNAP__FAILED;
            s->error = (int)result;
        } else if (op.kind == SNAP__FSYNC) {
            s->seq++;
            s->index = s->save_index;
            s->term = s->save_term;
            s->newest_slot = op.slot;
            s->saving = 0;
            ev.flags = BROKER_SNAPSHOT_EV_SAVED;
        }
    }
    if (s->state == SNAP__FAILED) {
        ev.flags = BROKER_SNAPSHOT_EV_ERROR;
        ev.error = s->error;
    }
    ev.index = s->index;
    ev.term = s->term;
    return ev;
}
