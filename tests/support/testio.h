/*
 * tests/support/testio.h — a hand-driven fake world for broker unit tests.
 *
 * testio_t owns an io_t whose methods record what the node does, and lets
 * the test decide when the world answers:
 *   - send: messages are copied into a FIFO; testio_pop_message takes them;
 *   - timers: a table; set now_ns and call testio_fire_timers;
 *   - random_u64: a sim_prng stream of the seed (deterministic);
 *   - disk: a sim_disk. A disk op is only queued when issued; it executes on
 *     the sim_disk and completes (in issue order) when the test calls
 *     testio_run_disk / testio_run_disk_n. testio_crash drops every queued op
 *     (never executed) and applies the sim_disk crash mode to executed but
 *     unsynced writes, so a test can crash between a write and its fsync.
 *     list/size are synchronous and see the executed (volatile) view.
 *
 * Nothing here is global; a test may run several testio_t side by side.
 */
#ifndef CHAOSLAB_TESTS_SUPPORT_TESTIO_H
#define CHAOSLAB_TESTS_SUPPORT_TESTIO_H

#include <stddef.h>
#include <stdint.h>

#include "broker/io.h"
#include "sim/disk.h"
#include "sim/prng.h"

#define TESTIO_MESSAGES_MAX 4096u
#define TESTIO_TIMERS_MAX 256u
#define TESTIO_DISK_OPS_MAX 8192u
#define TESTIO_RUN_STEPS_MAX 1000000u /* bound on one testio_run_disk */

typedef struct testio_message {
    io_addr_t dest;
    uint8_t *bytes; /* malloc'd; owned by whoever popped it (free()) */
    size_t len;
} testio_message_t;

typedef struct testio__timer {
    uint64_t token, deadline_ns;
    int armed;
} testio__timer_t;

typedef struct testio__disk_op {
    int kind;
    char name[IO_FILE_NAME_MAX + 1];
    uint64_t offset;
    uint8_t *write_bytes; /* owned copy */
    uint8_t *read_buf;    /* the node's buffer */
    size_t len;
    uint64_t token;
} testio__disk_op_t;

typedef void (*testio_disk_done_fn)(void *node, uint64_t token,
                                    int64_t result);
typedef void (*testio_timer_fn)(void *node, uint64_t token);

typedef struct testio {
    io_t io; /* hand &t->io to the module under test */
    sim_disk_t *disk;
    sim_prng_t prng;       /* random_u64 */
    sim_prng_t crash_prng; /* sim_disk_crash / corruption draws */
    uint64_t now_ns;       /* set it freely (keep it monotonic) */
    testio_message_t msgs[TESTIO_MESSAGES_MAX];
    uint32_t msg_head, msg_count;
    testio__timer_t timers[TESTIO_TIMERS_MAX];
    testio__disk_op_t *ops;
    uint32_t op_head, op_count;
    /* Fault injection: when non-zero, the next executed disk op is skipped
     * and completes with this (negative) result. */
    int64_t fail_next_result;
    uint64_t traces;           /* trace events seen */
    char last_trace[64];       /* name of the last one */
    char last_trace_detail[128];
} testio_t;

/* Create a world for node `self` with a fresh disk (cfg NULL = defaults).
 * Returns 0, IO_EINVAL or IO_ENOMEM. */
int testio_init(testio_t *t, uint64_t seed, io_addr_t self,
                const sim_disk_config_t *cfg);
/* Free the disk, queued ops and unread messages. */
void testio_close(testio_t *t);

/* Pop the oldest sent message: 1 and *out (caller frees out->bytes), or 0. */
int testio_pop_message(testio_t *t, testio_message_t *out);
size_t testio_message_count(const testio_t *t);

/* 1 and *deadline_ns when `token` is armed, else 0. */
int testio_timer_armed(const testio_t *t, uint64_t token,
                       uint64_t *deadline_ns);
/* Fire every armed timer with deadline <= now_ns, earliest first (ties by
 * token), disarming each before calling fn. Returns how many fired. */
size_t testio_fire_timers(testio_t *t, testio_timer_fn fn, void *node);

/* Execute and complete queued disk ops in order, including ops issued by fn
 * meanwhile, until none is left (or `max` ops for the _n form). Returns the
 * number completed. */
size_t testio_run_disk(testio_t *t, testio_disk_done_fn fn, void *node);
size_t testio_run_disk_n(testio_t *t, testio_disk_done_fn fn, void *node,
                         size_t max);
size_t testio_disk_pending(const testio_t *t);

/* Power loss: drop queued ops, timers and messages; crash the sim_disk with
 * its configured crash mode. The disk (and its contents) stays. */
void testio_crash(testio_t *t);

#endif
