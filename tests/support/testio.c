/*
 * tests/support/testio.c — see testio.h.
 */
#include "tests/support/testio.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum {
    TESTIO__WRITE = 1,
    TESTIO__READ,
    TESTIO__FSYNC,
    TESTIO__TRUNCATE,
    TESTIO__REMOVE,
};

static uint64_t testio__now(void *ctx) { return ((testio_t *)ctx)->now_ns; }

static uint64_t testio__random(void *ctx) {
    return sim_prng_next(&((testio_t *)ctx)->prng);
}

static int testio__send(void *ctx, io_addr_t dest, const uint8_t *bytes,
                        size_t len) {
    testio_t *t = ctx;
    if (len > IO_MESSAGE_SIZE_MAX) return IO_EMSGSIZE;
    if (t->msg_count >= TESTIO_MESSAGES_MAX) return IO_ENOMEM;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) return IO_ENOMEM;
    if (len) memcpy(copy, bytes, len);
    testio_message_t *m =
        &t->msgs[(t->msg_head + t->msg_count) % TESTIO_MESSAGES_MAX];
    m->dest = dest;
    m->bytes = copy;
    m->len = len;
    t->msg_count++;
    return 0;
}

static int testio__timer_set(void *ctx, uint64_t deadline_ns, uint64_t token) {
    testio_t *t = ctx;
    testio__timer_t *free_slot = NULL;
    for (uint32_t i = 0; i < TESTIO_TIMERS_MAX; i++) {
        testio__timer_t *tm = &t->timers[i];
        if (tm->armed && tm->token == token) {
            tm->deadline_ns = deadline_ns;
            return 0;
        }
        if (!tm->armed && free_slot == NULL) free_slot = tm;
    }
    if (free_slot == NULL) return IO_ENOMEM;
    free_slot->armed = 1;
    free_slot->token = token;
    free_slot->deadline_ns = deadline_ns;
    return 0;
}

static int testio__timer_cancel(void *ctx, uint64_t token) {
    testio_t *t = ctx;
    for (uint32_t i = 0; i < TESTIO_TIMERS_MAX; i++)
        if (t->timers[i].armed && t->timers[i].token == token)
            t->timers[i].armed = 0;
    return 0;
}

static int testio__queue(testio_t *t, int kind, const char *name,
                         uint64_t offset, const uint8_t *wbytes,
                         uint8_t *rbuf, size_t len, uint64_t token) {
    if (name == NULL || name[0] == '\0') return IO_EINVAL;
    if (strlen(name) > IO_FILE_NAME_MAX) return IO_ENAMETOOLONG;
    if (t->op_count >= TESTIO_DISK_OPS_MAX) return IO_ENOMEM;
    testio__disk_op_t *op =
        &t->ops[(t->op_head + t->op_count) % TESTIO_DISK_OPS_MAX];
    memset(op, 0, sizeof *op);
    if (wbytes != NULL) {
        op->write_bytes = malloc(len ? len : 1);
        if (op->write_bytes == NULL) return IO_ENOMEM;
        if (len) memcpy(op->write_bytes, wbytes, len);
    }
    op->kind = kind;
    strcpy(op->name, name);
    op->offset = offset;
    op->read_buf = rbuf;
    op->len = len;
    op->token = token;
    t->op_count++;
    return 0;
}

static int testio__write(void *ctx, const char *name, uint64_t offset,
                         const uint8_t *bytes, size_t len, uint64_t token) {
    if (bytes == NULL && len > 0) return IO_EINVAL;
    static const uint8_t empty[1] = {0};
    return testio__queue(ctx, TESTIO__WRITE, name, offset,
                         bytes ? bytes : empty, NULL, len, token);
}
static int testio__read(void *ctx, const char *name, uint64_t offset,
                        uint8_t *buf, size_t len, uint64_t token) {
    if (buf == NULL && len > 0) return IO_EINVAL;
    return testio__queue(ctx, TESTIO__READ, name, offset, NULL, buf, len,
                         token);
}
static int testio__fsync(void *ctx, const char *name, uint64_t token) {
    return testio__queue(ctx, TESTIO__FSYNC, name, 0, NULL, NULL, 0, token);
}
static int testio__truncate(void *ctx, const char *name, uint64_t size_bytes,
                            uint64_t token) {
    return testio__queue(ctx, TESTIO__TRUNCATE, name, size_bytes, NULL, NULL,
                         0, token);
}
static int testio__remove(void *ctx, const char *name, uint64_t token) {
    return testio__queue(ctx, TESTIO__REMOVE, name, 0, NULL, NULL, 0, token);
}
static int testio__size(void *ctx, const char *name, uint64_t *size_bytes) {
    return sim_disk_size(((testio_t *)ctx)->disk, name, size_bytes);
}
static int testio__list(void *ctx, io_list_cb cb, void *arg) {
    return sim_disk_list(((testio_t *)ctx)->disk, cb, arg);
}

static void testio__trace(void *ctx, const io_trace_event_t *ev) {
    testio_t *t = ctx;
    t->traces++;
    strncpy(t->last_trace, ev->name ? ev->name : "", sizeof t->last_trace - 1);
    t->last_trace[sizeof t->last_trace - 1] = '\0';
    strncpy(t->last_trace_detail, ev->detail ? ev->detail : "",
            sizeof t->last_trace_detail - 1);
    t->last_trace_detail[sizeof t->last_trace_detail - 1] = '\0';
}

static const io_methods_t testio__methods = {
    .now_ns = testio__now,
    .random_u64 = testio__random,
    .send = testio__send,
    .timer_set = testio__timer_set,
    .timer_cancel = testio__timer_cancel,
    .disk_write = testio__write,
    .disk_read = testio__read,
    .disk_fsync = testio__fsync,
    .disk_truncate = testio__truncate,
    .disk_remove = testio__remove,
    .disk_size = testio__size,
    .disk_list = testio__list,
    .trace = testio__trace,
};

int testio_init(testio_t *t, uint64_t seed, io_addr_t self,
                const sim_disk_config_t *cfg) {
    if (t == NULL) return IO_EINVAL;
    memset(t, 0, sizeof *t);
    sim_disk_config_t def;
    if (cfg == NULL) {
        sim_disk_config_default(&def);
        cfg = &def;
    }
    const int rc = sim_disk_new(cfg, &t->disk);
    if (rc != 0) return rc;
    t->ops = calloc(TESTIO_DISK_OPS_MAX, sizeof *t->ops);
    if (t->ops == NULL) {
        sim_disk_free(t->disk);
        t->disk = NULL;
        return IO_ENOMEM;
    }
    sim_prng_init(&t->prng, seed, SIM_STREAM_HOST_BASE + self);
    sim_prng_init(&t->crash_prng, seed, SIM_STREAM_DISK_BASE + self);
    t->io.methods = &testio__methods;
    t->io.ctx = t;
    t->io.self = self;
    return 0;
}

static void testio__drop_ops(testio_t *t) {
    for (uint32_t i = 0; i < t->op_count; i++)
        free(t->ops[(t->op_head + i) % TESTIO_DISK_OPS_MAX].write_bytes);
    t->op_head = t->op_count = 0;
}

static void testio__drop_messages(testio_t *t) {
    for (uint32_t i = 0; i < t->msg_count; i++)
        free(t->msgs[(t->msg_head + i) % TESTIO_MESSAGES_MAX].bytes);
    t->msg_head = t->msg_count = 0;
}

void testio_close(testio_t *t) {
    if (t == NULL) return;
    if (t->ops) testio__drop_ops(t);
    testio__drop_messages(t);
    free(t->ops);
    if (t->disk) sim_disk_free(t->disk);
    memset(t, 0, sizeof *t);
}

int testio_pop_message(testio_t *t, testio_message_t *out) {
    assert(t != NULL && out != NULL);
    if (t->msg_count == 0) return 0;
    *out = t->msgs[t->msg_head];
    t->msg_head = (t->msg_head + 1) % TESTIO_MESSAGES_MAX;
    t->msg_count--;
    return 1;
}

size_t testio_message_count(const testio_t *t) { return t->msg_count; }

int testio_timer_armed(const testio_t *t, uint64_t token,
                       uint64_t *deadline_ns) {
    for (uint32_t i = 0; i < TESTIO_TIMERS_MAX; i++) {
        if (t->timers[i].armed && t->timers[i].token == token) {
            if (deadline_ns) *deadline_ns = t->timers[i].deadline_ns;
            return 1;
        }
    }
    return 0;
}

size_t testio_fire_timers(testio_t *t, testio_timer_fn fn, void *node) {
    assert(t != NULL && fn != NULL);
    size_t fired = 0;
    /* Each round fires the earliest due timer; fn may re-arm (a new deadline
     * in the past fires in a later round), so bound the rounds. */
    for (uint32_t round = 0; round < 16u * TESTIO_TIMERS_MAX; round++) {
        testio__timer_t *best = NULL;
        for (uint32_t i = 0; i < TESTIO_TIMERS_MAX; i++) {
            testio__timer_t *tm = &t->timers[i];
            if (!tm->armed || tm->deadline_ns > t->now_ns) continue;
            if (best == NULL || tm->deadline_ns < best->deadline_ns ||
                (tm->deadline_ns == best->deadline_ns &&
                 tm->token < best->token))
                best = tm;
        }
        if (best == NULL) break;
        best->armed = 0;
        fn(node, best->token);
        fired++;
    }
    return fired;
}

static int64_t testio__execute(testio_t *t, testio__disk_op_t *op) {
    switch (op->kind) {
    case TESTIO__WRITE:
        return sim_disk_write(t->disk, op->name, op->offset, op->write_bytes,
                              op->len);
    case TESTIO__READ:
        return sim_disk_read(t->disk, op->name, op->offset, op->read_buf,
                             op->len);
    case TESTIO__FSYNC:
        return sim_disk_fsync(t->disk, op->name);
    case TESTIO__TRUNCATE:
        return sim_disk_truncate(t->disk, op->name, op->offset);
    case TESTIO__REMOVE:
        return sim_disk_remove(t->disk, op->name);
    default:
        assert(0 && "bad disk op");
        return IO_EINVAL;
    }
}

size_t testio_run_disk_n(testio_t *t, testio_disk_done_fn fn, void *node,
                         size_t max) {
    assert(t != NULL && fn != NULL);
    size_t done = 0;
    while (t->op_count > 0 && done < max && done < TESTIO_RUN_STEPS_MAX) {
        testio__disk_op_t op = t->ops[t->op_head];
        t->op_head = (t->op_head + 1) % TESTIO_DISK_OPS_MAX;
        t->op_count--;
        int64_t result;
        if (t->fail_next_result != 0) {
            result = t->fail_next_result;
            t->fail_next_result = 0;
        } else {
            result = testio__execute(t, &op);
        }
        free(op.write_bytes);
        fn(node, op.token, result);
        done++;
    }
    return done;
}

size_t testio_run_disk(testio_t *t, testio_disk_done_fn fn, void *node) {
    return testio_run_disk_n(t, fn, node, TESTIO_RUN_STEPS_MAX);
}

size_t testio_disk_pending(const testio_t *t) { return t->op_count; }

void testio_crash(testio_t *t) {
    assert(t != NULL && t->disk != NULL);
    testio__drop_ops(t);
    testio__drop_messages(t);
    memset(t->timers, 0, sizeof t->timers);
    t->fail_next_result = 0;
    sim_disk_crash(t->disk, &t->crash_prng);
}
