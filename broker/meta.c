/*
 * broker/meta.c — durable term and vote in two alternating slots.
 */
#include "broker/meta.h"

#include <assert.h>
#include <string.h>

#include "broker/crc32c.h"
#include "broker/tokens.h"

#define META__MAGIC 0x544d4c43u /* "CLMT" */

enum { META__INIT = 0, META__LOADING, META__READY, META__FAILED };
enum { META__READ = 1, META__WRITE, META__FSYNC };

static const char *const meta__names[2] = {"meta-a", "meta-b"};

static void meta__put(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t meta__get(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void broker_meta_slot_encode(uint8_t out[BROKER_META_SLOT_SIZE], uint64_t seq,
                             uint64_t term, uint32_t vote) {
    assert(out != NULL);
    memset(out, 0, BROKER_META_SLOT_SIZE);
    meta__put(out, META__MAGIC, 4);
    meta__put(out + 8, seq, 8);
    meta__put(out + 16, term, 8);
    meta__put(out + 24, vote, 4);
    meta__put(out + 4, crc32c(out + 8, BROKER_META_SLOT_SIZE - 8), 4);
    assert(meta__get(out, 4) == META__MAGIC);
}

int broker_meta_slot_decode(const uint8_t *buf, size_t len, uint64_t *seq,
                            uint64_t *term, uint32_t *vote) {
    if (buf == NULL || len < BROKER_META_SLOT_SIZE) return -1;
    if (meta__get(buf, 4) != META__MAGIC) return -1;
    if (meta__get(buf + 4, 4) != crc32c(buf + 8, BROKER_META_SLOT_SIZE - 8))
        return -1;
    if (meta__get(buf + 28, 4) != 0) return -1;
    *seq = meta__get(buf + 8, 8);
    *term = meta__get(buf + 16, 8);
    *vote = (uint32_t)meta__get(buf + 24, 4);
    return 0;
}

int broker_meta_init(broker_meta_t *m, const io_t *io) {
    if (m == NULL || io == NULL || io->methods == NULL) return IO_EINVAL;
    memset(m, 0, sizeof *m);
    m->io = io;
    m->vote = BROKER_META_VOTE_NONE;
    m->newest_slot = 1; /* the first save goes to slot a */
    assert(m->state == META__INIT);
    return 0;
}

void broker_meta_close(broker_meta_t *m) {
    if (m != NULL) memset(m, 0, sizeof *m);
}

static int meta__issue(broker_meta_t *m, uint8_t kind, uint8_t slot) {
    assert(m->ops_count < BROKER_META_OPS_MAX && slot < 2);
    const uint64_t token = broker_token_make(BROKER_TOKEN_META, ++m->token_seq);
    int rc;
    if (kind == META__READ) {
        rc = io_disk_read(m->io, meta__names[slot], 0, m->slots[slot],
                          BROKER_META_SLOT_SIZE, token);
    } else if (kind == META__WRITE) {
        uint8_t buf[BROKER_META_SLOT_SIZE];
        broker_meta_slot_encode(buf, m->seq + 1, m->save_term, m->save_vote);
        rc = io_disk_write(m->io, meta__names[slot], 0, buf, sizeof buf, token);
    } else {
        rc = io_disk_fsync(m->io, meta__names[slot], token);
    }
    if (rc < 0) return rc;
    broker_meta__op_t *op =
        &m->ops[(m->ops_head + m->ops_count) % BROKER_META_OPS_MAX];
    op->token = token;
    op->kind = kind;
    op->slot = slot;
    m->ops_count++;
    return 0;
}

int broker_meta_load(broker_meta_t *m) {
    if (m == NULL || m->state != META__INIT) return IO_EINVAL;
    for (uint8_t i = 0; i < 2; i++) {
        const int rc = meta__issue(m, META__READ, i);
        if (rc < 0) {
            m->state = META__FAILED;
            m->error = rc;
            return rc;
        }
    }
    m->state = META__LOADING;
    assert(m->ops_count == 2);
    return 0;
}

/* Start the write + fsync of the waiting request into the older slot. */
static int meta__start_save(broker_meta_t *m) {
    assert(!m->saving && m->pending);
    m->pending = 0;
    m->saving = 1;
    m->save_term = m->pending_term;
    m->save_vote = m->pending_vote;
    const uint8_t slot = (uint8_t)(m->newest_slot ^ 1);
    int rc = meta__issue(m, META__WRITE, slot);
    if (rc == 0) rc = meta__issue(m, META__FSYNC, slot);
    return rc;
}

int broker_meta_save(broker_meta_t *m, uint64_t term, uint32_t vote) {
    if (m == NULL) return IO_EINVAL;
    if (m->state == META__FAILED) return m->error;
    if (m->state != META__READY) return IO_EINVAL;
    const uint64_t floor =
        m->pending ? m->pending_term : (m->saving ? m->save_term : m->term);
    if (term < floor) return IO_EINVAL;
    m->pending = 1;
    m->pending_term = term;
    m->pending_vote = vote;
    if (m->saving) return 0;
    const int rc = meta__start_save(m);
    if (rc < 0) {
        m->state = META__FAILED;
        m->error = rc;
    }
    return rc;
}

static broker_meta_event_t meta__event(const broker_meta_t *m, uint32_t flags) {
    broker_meta_event_t ev = {flags, 0, m->term, m->vote};
    if (m->state == META__FAILED) {
        ev.flags = BROKER_META_EV_ERROR;
        ev.error = m->error;
    }
    return ev;
}

static uint32_t meta__load_done(broker_meta_t *m) {
    int valid[2] = {0, 0};
    uint64_t seq[2] = {0, 0}, term[2] = {0, 0};
    uint32_t vote[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        valid[i] = m->slot_result[i] >= (int64_t)BROKER_META_SLOT_SIZE &&
                   broker_meta_slot_decode(m->slots[i], BROKER_META_SLOT_SIZE,
                                           &seq[i], &term[i], &vote[i]) == 0;
    const int exists0 = m->slot_result[0] > 0, exists1 = m->slot_result[1] > 0;
    if (!valid[0] && !valid[1] && exists0 && exists1) {
        m->state = META__FAILED; /* both damaged: never guess a term */
        m->error = IO_EIO;
        return 0;
    }
    int pick = -1;
    if (valid[0]) pick = 0;
    if (valid[1] && (pick < 0 || seq[1] > seq[0])) pick = 1;
    if (pick >= 0) {
        m->seq = seq[pick];
        m->term = term[pick];
        m->vote = vote[pick];
        m->newest_slot = (uint8_t)pick;
    }
    m->state = META__READY;
    return BROKER_META_EV_LOADED;
}

broker_meta_event_t broker_meta_on_disk_done(broker_meta_t *m, uint64_t token,
                                             int64_t result) {
    assert(m != NULL);
    assert(broker_token_owner(token) == BROKER_TOKEN_META);
    if (m->state == META__FAILED) return meta__event(m, 0);
    if (m->ops_count == 0 || m->ops[m->ops_head].token != token) {
        m->state = META__FAILED;
        m->error = IO_EINVAL;
        return meta__event(m, 0);
    }
    const broker_meta__op_t op = m->ops[m->ops_head];
    m->ops_head = (m->ops_head + 1) % BROKER_META_OPS_MAX;
    m->ops_count--;
    uint32_t flags = 0;
    if (op.kind == META__READ) {
        m->slot_result[op.slot] = result == IO_ENOENT ? 0 : result;
        if (result < 0 && result != IO_ENOENT) m->slot_result[op.slot] = 1;
        if (m->ops_count == 0) flags = meta__load_done(m);
    } else if (result < 0 ||
               (op.kind == META__WRITE && result != BROKER_META_SLOT_SIZE)) {
        m->state = META__FAILED;
        m->error = result < 0 ? (int)result : IO_EIO;
    } else if (op.kind == META__FSYNC) {
        m->seq++;
        m->term = m->save_term;
        m->vote = m->save_vote;
        m->newest_slot = op.slot;
        m->saving = 0;
        flags = BROKER_META_EV_SAVED;
        if (m->pending) {
            const int rc = meta__start_save(m);
            if (rc < 0) {
                m->state = META__FAILED;
                m->error = rc;
            }
        }
    }
    return meta__event(m, flags);
}

uint64_t broker_meta_term(const broker_meta_t *m) { return m->term; }
uint32_t broker_meta_vote(const broker_meta_t *m) { return m->vote; }
int broker_meta_busy(const broker_meta_t *m) {
    return m->saving || m->pending;
}
