/*
 * tests/test_broker_log.c — the durable log, the durable term/vote and the
 * snapshot slots, driven through tests/support/testio (sim_disk underneath).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/log.h"
#include "broker/meta.h"
#include "broker/snapshot.h"
#include "broker/tokens.h"
#include "tests/support/testio.h"

#ifndef CRASH_SEEDS
#define CRASH_SEEDS 40
#endif

typedef struct fx {
    testio_t t;
    broker_log_t log;
    broker_log_config_t cfg;
    uint32_t log_flags;
    int log_error;
    broker_meta_t meta;
    uint32_t meta_flags;
    broker_snapshot_t snap;
    uint32_t snap_flags;
} fx_t;

static void on_done(void *node, uint64_t token, int64_t result) {
    fx_t *f = node;
    switch (broker_token_owner(token)) {
    case BROKER_TOKEN_LOG: {
        const broker_log_event_t ev =
            broker_log_on_disk_done(&f->log, token, result);
        f->log_flags |= ev.flags;
        if (ev.flags & BROKER_LOG_EV_ERROR) f->log_error = ev.error;
        break;
    }
    case BROKER_TOKEN_META:
        f->meta_flags |= broker_meta_on_disk_done(&f->meta, token, result).flags;
        break;
    case BROKER_TOKEN_SNAPSHOT:
        f->snap_flags |=
            broker_snapshot_on_disk_done(&f->snap, token, result).flags;
        break;
    default:
        fail_msg("unexpected token owner");
    }
}

static void run(fx_t *f) { testio_run_disk(&f->t, on_done, f); }

/* Deterministic payload of entry i (length varies with i). */
static size_t payload_of(uint64_t i, uint64_t salt, uint8_t *out) {
    const size_t len = (size_t)(i * 7 + salt) % 200 + 1;
    for (size_t k = 0; k < len; k++)
        out[k] = (uint8_t)((i * 31 + k * 17 + salt + 1) | 1);
    return len;
}

static void boot_log(fx_t *f, uint64_t base, uint64_t base_term) {
    assert_int_equal(broker_log_init(&f->log, &f->t.io, &f->cfg), 0);
    if (base) assert_int_equal(broker_log_set_base(&f->log, base, base_term), 0);
    f->log_flags = 0;
    const int rc = broker_log_recover(&f->log);
    assert_true(rc == 0 || rc == 1);
    if (rc == 0) {
        run(f);
        assert_true(f->log_flags & BROKER_LOG_EV_RECOVERED);
    }
    assert_true(broker_log_status(&f->log) == BROKER_LOG_OK ||
                broker_log_status(&f->log) == BROKER_LOG_CORRUPT);
    assert_true(broker_log_idle(&f->log));
}

static fx_t *fx_new(uint64_t seed, const sim_disk_config_t *dcfg,
                    uint64_t segment_size) {
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(testio_init(&f->t, seed, 1, dcfg), 0);
    broker_log_config_default(&f->cfg);
    if (segment_size) f->cfg.segment_size_max_bytes = segment_size;
    return f;
}

static void fx_free(fx_t *f) {
    broker_log_close(&f->log);
    broker_meta_close(&f->meta);
    broker_snapshot_close(&f->snap);
    testio_close(&f->t);
    free(f);
}

/* Crash the world and restart the log from disk. */
static void crash_and_recover(fx_t *f, uint64_t base, uint64_t base_term) {
    broker_log_close(&f->log);
    testio_crash(&f->t);
    boot_log(f, base, base_term);
}

static void append_range(fx_t *f, uint64_t from, uint64_t to, uint64_t term,
                         uint64_t salt) {
    uint8_t p[256];
    for (uint64_t i = from; i <= to; i++) {
        const size_t n = payload_of(i, salt, p);
        assert_int_equal(broker_log_append(&f->log, term, (uint8_t)(i & 7), p, n),
                         (int64_t)i);
    }
}

static void check_range(fx_t *f, uint64_t from, uint64_t to, uint64_t term,
                        uint64_t salt) {
    uint8_t p[256];
    for (uint64_t i = from; i <= to; i++) {
        const broker_log_entry_t *e = broker_log_entry(&f->log, i);
        assert_non_null(e);
        const size_t n = payload_of(i, salt, p);
        assert_int_equal(e->len, n);
        assert_memory_equal(e->payload, p, n);
        assert_int_equal(e->term, term);
        assert_int_equal(e->type, i & 7);
    }
}

static uint64_t count_segments(fx_t *f);

/* ---- log ---------------------------------------------------------------- */

static void test_roundtrip(void **state) {
    (void)state;
    fx_t *f = fx_new(1, NULL, 4096);
    boot_log(f, 0, 0);
    assert_int_equal(broker_log_last_index(&f->log), 0);
    append_range(f, 1, 300, 3, 0);
    assert_int_equal(broker_log_durable_index(&f->log), 0);
    assert_int_equal(broker_log_sync(&f->log), 0);
    run(f);
    assert_true(f->log_flags & BROKER_LOG_EV_DURABLE);
    assert_int_equal(broker_log_durable_index(&f->log), 300);
    assert_true(count_segments(f) > 3); /* rolled */
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    assert_int_equal(broker_log_last_index(&f->log), 300);
    assert_int_equal(broker_log_last_term(&f->log), 3);
    assert_int_equal(broker_log_durable_index(&f->log), 300);
    check_range(f, 1, 300, 3, 0);
    assert_int_equal(broker_log_term_at(&f->log, 0), 0);
    assert_null(broker_log_entry(&f->log, 301));
    /* Appends continue after recovery. */
    append_range(f, 301, 310, 4, 0);
    broker_log_sync(&f->log);
    run(f);
    crash_and_recover(f, 0, 0);
    check_range(f, 301, 310, 4, 0);
    fx_free(f);
}

static void test_unsynced_lost(void **state) {
    (void)state;
    fx_t *f = fx_new(2, NULL, 0);
    boot_log(f, 0, 0);
    append_range(f, 1, 10, 1, 0);
    broker_log_sync(&f->log);
    run(f);
    append_range(f, 11, 20, 1, 0);
    run(f); /* written, never fsynced */
    assert_int_equal(broker_log_durable_index(&f->log), 10);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    assert_int_equal(broker_log_last_index(&f->log), 10);
    check_range(f, 1, 10, 1, 0);
    append_range(f, 11, 12, 2, 5);
    broker_log_sync(&f->log);
    run(f);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_last_index(&f->log), 12);
    check_range(f, 11, 12, 2, 5);
    fx_free(f);
}

static void test_group_commit(void **state) {
    (void)state;
    fx_t *f = fx_new(3, NULL, 0);
    boot_log(f, 0, 0);
    const uint64_t fsyncs0 = sim_disk_stats(f->t.disk)->fsyncs;
    append_range(f, 1, 1, 1, 0);
    broker_log_sync(&f->log);
    testio_run_disk_n(&f->t, on_done, f, 1); /* the write; fsync pending */
    append_range(f, 2, 9, 1, 0);
    for (int i = 0; i < 8; i++) broker_log_sync(&f->log);
    run(f);
    assert_int_equal(broker_log_durable_index(&f->log), 9);
    /* one fsync for entry 1, one for everything that came meanwhile */
    assert_int_equal(sim_disk_stats(f->t.disk)->fsyncs - fsyncs0, 2);
    fx_free(f);
}

static void test_torn_tail_truncated(void **state) {
    (void)state;
    fx_t *f = fx_new(4, NULL, 0);
    boot_log(f, 0, 0);
    append_range(f, 1, 30, 1, 0);
    broker_log_sync(&f->log);
    run(f);
    /* A crash mid-write leaves half of the last record. */
    char name[32];
    broker_log_segment_name(name, sizeof name, 1);
    uint64_t size;
    assert_int_equal(sim_disk_size(f->t.disk, name, &size), 0);
    assert_int_equal(sim_disk_truncate(f->t.disk, name, size - 7), 0);
    assert_int_equal(sim_disk_fsync(f->t.disk, name), 0);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    assert_int_equal(broker_log_last_index(&f->log), 29);
    check_range(f, 1, 29, 1, 0);
    append_range(f, 30, 40, 2, 9);
    broker_log_sync(&f->log);
    run(f);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    assert_int_equal(broker_log_last_index(&f->log), 40);
    check_range(f, 1, 29, 1, 0);
    check_range(f, 30, 40, 2, 9);
    fx_free(f);
}

/* Crashes that keep or tear unsynced writes must never look like corruption
 * and must never lose synced entries. */
static void crash_modes(sim_disk_crash_mode_t mode) {
    for (uint64_t seed = 1; seed <= CRASH_SEEDS; seed++) {
        sim_disk_config_t dc;
        sim_disk_config_default(&dc);
        dc.crash_mode = mode;
        dc.crash_keep_probability = 0.5;
        fx_t *f = fx_new(seed, &dc, 2048);
        boot_log(f, 0, 0);
        append_range(f, 1, 25, 1, seed);
        broker_log_sync(&f->log);
        run(f);
        /* Several unsynced writes in flight-order, one per append. */
        for (uint64_t i = 26; i <= 60; i++) {
            append_range(f, i, i, 1, seed);
            run(f);
        }
        crash_and_recover(f, 0, 0);
        assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
        const uint64_t last = broker_log_last_index(&f->log);
        assert_true(last >= 25 && last <= 60);
        check_range(f, 1, last, 1, seed);
        /* The log stays usable and consistent across another restart. */
        append_range(f, last + 1, last + 5, 2, seed + 1);
        broker_log_sync(&f->log);
        run(f);
        crash_and_recover(f, 0, 0);
        assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
        assert_int_equal(broker_log_last_index(&f->log), last + 5);
        check_range(f, 1, last, 1, seed);
        check_range(f, last + 1, last + 5, 2, seed + 1);
        fx_free(f);
    }
}

static void test_torn_crash_mode(void **state) {
    (void)state;
    crash_modes(SIM_DISK_CRASH_TORN);
}

static void test_keep_crash_mode(void **state) {
    (void)state;
    crash_modes(SIM_DISK_CRASH_KEEP);
}

static void test_corruption_in_middle(void **state) {
    (void)state;
    fx_t *f = fx_new(5, NULL, 2048);
    boot_log(f, 0, 0);
    append_range(f, 1, 100, 1, 0);
    broker_log_sync(&f->log);
    run(f);
    /* Flip bits inside the first segment (not its last record). */
    char name[32];
    broker_log_segment_name(name, sizeof name, 1);
    assert_true(sim_disk_corrupt(f->t.disk, name, 300, 10, 3,
                                 &f->t.crash_prng) > 0);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_CORRUPT);
    const uint64_t last = broker_log_last_index(&f->log);
    assert_true(last < 100);
    check_range(f, 1, last, 1, 0); /* only verified entries are served */
    assert_null(broker_log_entry(&f->log, last + 1));
    assert_true(broker_log_repair_index(&f->log) >= 100);
    assert_string_equal(f->t.last_trace, "log.recovered");
    /* Repair from a "leader": the same entries again. */
    append_range(f, last + 1, 100, 1, 0);
    f->log_flags = 0;
    broker_log_sync(&f->log);
    run(f);
    assert_true(f->log_flags & BROKER_LOG_EV_REPAIRED);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    assert_int_equal(broker_log_last_index(&f->log), 100);
    check_range(f, 1, 100, 1, 0);
    fx_free(f);
}

static void test_corruption_in_last_segment(void **state) {
    (void)state;
    fx_t *f = fx_new(6, NULL, 0);
    boot_log(f, 0, 0);
    append_range(f, 1, 50, 1, 0);
    broker_log_sync(&f->log);
    run(f);
    char name[32];
    broker_log_segment_name(name, sizeof name, 1);
    /* A bad record followed by valid data is not a torn tail. */
    assert_true(sim_disk_corrupt(f->t.disk, name, 1000, 4, 2,
                                 &f->t.crash_prng) > 0);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_CORRUPT);
    const uint64_t last = broker_log_last_index(&f->log);
    assert_true(last > 0 && last < 50);
    check_range(f, 1, last, 1, 0);
    assert_true(broker_log_repair_index(&f->log) >= 50);
    /* Still corrupt after another restart with no repair. */
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_CORRUPT);
    assert_int_equal(broker_log_last_index(&f->log), last);
    fx_free(f);
}

static void test_truncate_after_survives(void **state) {
    (void)state;
    fx_t *f = fx_new(7, NULL, 1024);
    boot_log(f, 0, 0);
    append_range(f, 1, 60, 1, 0);
    broker_log_sync(&f->log);
    run(f);
    assert_int_equal(broker_log_truncate_after(&f->log, 12), 0);
    assert_int_equal(broker_log_last_index(&f->log), 12);
    assert_int_equal(broker_log_durable_index(&f->log), 12);
    assert_null(broker_log_entry(&f->log, 13));
    append_range(f, 13, 15, 2, 7);
    broker_log_sync(&f->log);
    run(f);
    assert_int_equal(broker_log_durable_index(&f->log), 15);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    assert_int_equal(broker_log_last_index(&f->log), 15);
    check_range(f, 1, 12, 1, 0);
    check_range(f, 13, 15, 2, 7);
    /* A truncation with no append after it. */
    assert_int_equal(broker_log_truncate_after(&f->log, 5), 0);
    run(f);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_last_index(&f->log), 5);
    check_range(f, 1, 5, 1, 0);
    /* Truncating unsynced, unwritten entries. */
    append_range(f, 6, 9, 3, 1);
    assert_int_equal(broker_log_truncate_after(&f->log, 7), 0);
    append_range(f, 8, 8, 4, 2);
    broker_log_sync(&f->log);
    run(f);
    crash_and_recover(f, 0, 0);
    assert_int_equal(broker_log_last_index(&f->log), 8);
    check_range(f, 6, 7, 3, 1);
    check_range(f, 8, 8, 4, 2);
    fx_free(f);
}

static int seg_count_cb(void *arg, const char *name, uint64_t size) {
    (void)size;
    if (strncmp(name, "log-", 4) == 0) (*(uint64_t *)arg)++;
    return 0;
}

static uint64_t count_segments(fx_t *f) {
    uint64_t n = 0;
    sim_disk_list(f->t.disk, seg_count_cb, &n);
    return n;
}

static void test_compaction_bounds_disk(void **state) {
    (void)state;
    fx_t *f = fx_new(8, NULL, 4096);
    boot_log(f, 0, 0);
    uint64_t max_used = 0, snap_index = 0, snap_term = 0;
    for (uint64_t i = 1; i <= 5000; i++) {
        append_range(f, i, i, 1 + i / 1000, 0);
        if (i % 100 == 0) {
            broker_log_sync(&f->log);
            run(f);
            snap_index = i - 50;
            snap_term = broker_log_term_at(&f->log, snap_index);
            assert_int_equal(broker_log_compact(&f->log, snap_index, snap_term),
                             0);
            run(f);
            assert_int_equal(broker_log_base_index(&f->log), snap_index);
            assert_null(broker_log_entry(&f->log, snap_index));
            const uint64_t used = sim_disk_stats(f->t.disk)->used_bytes;
            if (used > max_used) max_used = used;
        }
    }
    /* ~150 live entries of <= 226 bytes: a few 4 KiB segments at most. */
    assert_true(max_used < 16 * 4096);
    assert_true(count_segments(f) <= 10);
    crash_and_recover(f, snap_index, snap_term);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    assert_int_equal(broker_log_base_index(&f->log), snap_index);
    assert_int_equal(broker_log_last_index(&f->log), 5000);
    check_range(f, snap_index + 1, 4999, 5, 0);
    check_range(f, 5000, 5000, 6, 0);
    fx_free(f);
}

static void test_compact_discards_conflicting_log(void **state) {
    (void)state;
    fx_t *f = fx_new(9, NULL, 1024);
    boot_log(f, 0, 0);
    append_range(f, 1, 40, 1, 0);
    broker_log_sync(&f->log);
    run(f);
    /* A leader's snapshot at (30, 5) replaces our log. */
    assert_int_equal(broker_log_compact(&f->log, 30, 5), 0);
    assert_int_equal(broker_log_last_index(&f->log), 30);
    assert_int_equal(broker_log_last_term(&f->log), 5);
    run(f);
    append_range(f, 31, 33, 5, 3);
    broker_log_sync(&f->log);
    run(f);
    crash_and_recover(f, 30, 5);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_OK);
    assert_int_equal(broker_log_last_index(&f->log), 33);
    check_range(f, 31, 33, 5, 3);
    fx_free(f);
}

static void test_write_error_fails_log(void **state) {
    (void)state;
    fx_t *f = fx_new(10, NULL, 0);
    boot_log(f, 0, 0);
    append_range(f, 1, 1, 1, 0);
    f->t.fail_next_result = IO_ENOSPC;
    broker_log_sync(&f->log);
    run(f);
    assert_true(f->log_flags & BROKER_LOG_EV_ERROR);
    assert_int_equal(f->log_error, IO_ENOSPC);
    assert_int_equal(broker_log_status(&f->log), BROKER_LOG_FAILED);
    assert_int_equal(broker_log_durable_index(&f->log), 0);
    uint8_t p[4] = {1, 2, 3, 4};
    assert_int_equal(broker_log_append(&f->log, 1, 0, p, 4), IO_ENOSPC);
    fx_free(f);
}

static void test_log_bad_arguments(void **state) {
    (void)state;
    fx_t *f = fx_new(11, NULL, 0);
    broker_log_config_t bad;
    broker_log_config_default(&bad);
    bad.segment_size_max_bytes = BROKER_LOG_SEGMENT_SIZE_MAX + 1;
    assert_int_equal(broker_log_init(&f->log, &f->t.io, &bad), IO_EINVAL);
    assert_int_equal(broker_log_init(&f->log, &f->t.io, &f->cfg), 0);
    uint8_t p[8] = {0};
    /* Before recovery nothing is accepted. */
    assert_int_equal(broker_log_append(&f->log, 1, 0, p, 8), IO_EINVAL);
    broker_log_close(&f->log);
    boot_log(f, 0, 0);
    assert_int_equal(broker_log_recover(&f->log), IO_EINVAL);
    assert_int_equal(broker_log_set_base(&f->log, 5, 1), IO_EINVAL);
    assert_int_equal(broker_log_append(&f->log, 0, 0, p, 8), IO_EINVAL);
    assert_int_equal(broker_log_append(&f->log, 2, 0, p, 8), 1);
    assert_int_equal(broker_log_append(&f->log, 1, 0, p, 8), IO_EINVAL);
    assert_int_equal(broker_log_append(&f->log, 2, 0, NULL, 8), IO_EINVAL);
    uint8_t *big = calloc(1, BROKER_LOG_RECORD_PAYLOAD_MAX + 1);
    assert_int_equal(
        broker_log_append(&f->log, 2, 0, big, BROKER_LOG_RECORD_PAYLOAD_MAX + 1),
        IO_EINVAL);
    /* The biggest record is accepted. */
    assert_int_equal(
        broker_log_append(&f->log, 2, 0, big, BROKER_LOG_RECORD_PAYLOAD_MAX), 2);
    free(big);
    assert_int_equal(broker_log_compact(&f->log, 1, 2), 0);
    assert_int_equal(broker_log_truncate_after(&f->log, 0), IO_EINVAL);
    run(f);
    fx_free(f);
    /* Memory limit: the caller is pushed back, not crashed. */
    f = fx_new(12, NULL, 0);
    f->cfg.entries_max = 4;
    boot_log(f, 0, 0);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(broker_log_append(&f->log, 1, 0, p, 8), i);
    assert_int_equal(broker_log_append(&f->log, 1, 0, p, 8), IO_ENOMEM);
    assert_int_equal(broker_log_compact(&f->log, 2, 1), 0);
    assert_int_equal(broker_log_append(&f->log, 1, 0, p, 8), 5);
    run(f);
    fx_free(f);
}

static void test_record_codec(void **state) {
    (void)state;
    uint8_t buf[64], pl[5] = {1, 2, 3, 4, 5};
    assert_int_equal(broker_log_record_encode(buf, sizeof buf, 7, 9, 2, pl, 5),
                     30);
    uint64_t term, index;
    uint8_t type;
    const uint8_t *p;
    uint32_t n;
    assert_int_equal(
        broker_log_record_decode(buf, 30, &term, &index, &type, &p, &n), 30);
    assert_int_equal(term, 7);
    assert_int_equal(index, 9);
    assert_int_equal(type, 2);
    assert_int_equal(n, 5);
    assert_int_equal(broker_log_record_decode(buf, 29, NULL, NULL, NULL, NULL,
                                              NULL),
                     0);
    buf[27] ^= 1;
    assert_int_equal(broker_log_record_decode(buf, 30, NULL, NULL, NULL, NULL,
                                              NULL),
                     IO_EINVAL);
    assert_int_equal(broker_log_record_encode(buf, 10, 7, 9, 2, pl, 5),
                     IO_EINVAL);
    memset(buf, 0xff, sizeof buf); /* absurd length */
    assert_int_equal(broker_log_record_decode(buf, sizeof buf, NULL, NULL,
                                              NULL, NULL, NULL),
                     IO_EINVAL);
}

/* ---- meta --------------------------------------------------------------- */

static void meta_boot(fx_t *f) {
    broker_meta_close(&f->meta);
    assert_int_equal(broker_meta_init(&f->meta, &f->t.io), 0);
    f->meta_flags = 0;
    assert_int_equal(broker_meta_load(&f->meta), 0);
    run(f);
}

static void test_meta_save_load(void **state) {
    (void)state;
    fx_t *f = fx_new(20, NULL, 0);
    meta_boot(f);
    assert_true(f->meta_flags & BROKER_META_EV_LOADED);
    assert_int_equal(broker_meta_term(&f->meta), 0);
    assert_int_equal(broker_meta_vote(&f->meta), BROKER_META_VOTE_NONE);
    assert_int_equal(broker_meta_save(&f->meta, 3, 2), 0);
    assert_int_equal(broker_meta_term(&f->meta), 0); /* not durable yet */
    assert_int_equal(broker_meta_save(&f->meta, 4, 1), 0); /* waits */
    run(f);
    assert_true(f->meta_flags & BROKER_META_EV_SAVED);
    assert_int_equal(broker_meta_term(&f->meta), 4);
    assert_int_equal(broker_meta_vote(&f->meta), 1);
    assert_false(broker_meta_busy(&f->meta));
    testio_crash(&f->t);
    meta_boot(f);
    assert_int_equal(broker_meta_term(&f->meta), 4);
    assert_int_equal(broker_meta_vote(&f->meta), 1);
    /* An unsynced save is lost by a crash: the old value stays. */
    assert_int_equal(broker_meta_save(&f->meta, 9, 9), 0);
    testio_crash(&f->t);
    meta_boot(f);
    assert_int_equal(broker_meta_term(&f->meta), 4);
    fx_free(f);
}

static void test_meta_torn_slot_falls_back(void **state) {
    (void)state;
    fx_t *f = fx_new(21, NULL, 0);
    meta_boot(f);
    broker_meta_save(&f->meta, 1, 2);
    run(f);
    broker_meta_save(&f->meta, 2, 3);
    run(f);
    /* The newest save (slot b) is damaged. */
    assert_true(sim_disk_corrupt(f->t.disk, "meta-b", 0, 32, 2,
                                 &f->t.crash_prng) > 0);
    testio_crash(&f->t);
    meta_boot(f);
    assert_true(f->meta_flags & BROKER_META_EV_LOADED);
    assert_int_equal(broker_meta_term(&f->meta), 1);
    assert_int_equal(broker_meta_vote(&f->meta), 2);
    /* Next save overwrites the damaged slot, not the good one. */
    broker_meta_save(&f->meta, 5, 1);
    run(f);
    testio_crash(&f->t);
    meta_boot(f);
    assert_int_equal(broker_meta_term(&f->meta), 5);
    /* Both slots damaged: refuse to guess. */
    sim_disk_corrupt(f->t.disk, "meta-a", 0, 32, 2, &f->t.crash_prng);
    sim_disk_corrupt(f->t.disk, "meta-b", 0, 32, 2, &f->t.crash_prng);
    meta_boot(f);
    assert_true(f->meta_flags & BROKER_META_EV_ERROR);
    assert_int_equal(broker_meta_save(&f->meta, 6, 1), IO_EIO);
    fx_free(f);
}

static void test_meta_bad_arguments(void **state) {
    (void)state;
    fx_t *f = fx_new(22, NULL, 0);
    assert_int_equal(broker_meta_init(&f->meta, NULL), IO_EINVAL);
    assert_int_equal(broker_meta_init(&f->meta, &f->t.io), 0);
    assert_int_equal(broker_meta_save(&f->meta, 1, 1), IO_EINVAL); /* no load */
    meta_boot(f);
    assert_int_equal(broker_meta_load(&f->meta), IO_EINVAL);
    assert_int_equal(broker_meta_save(&f->meta, 5, 1), 0);
    assert_int_equal(broker_meta_save(&f->meta, 4, 1), IO_EINVAL);
    run(f);
    uint8_t slot[32];
    uint64_t seq, term;
    uint32_t vote;
    broker_meta_slot_encode(slot, 1, 2, 3);
    assert_int_equal(broker_meta_slot_decode(slot, 32, &seq, &term, &vote), 0);
    assert_int_equal(broker_meta_slot_decode(slot, 31, &seq, &term, &vote), -1);
    slot[20] ^= 4;
    assert_int_equal(broker_meta_slot_decode(slot, 32, &seq, &term, &vote), -1);
    fx_free(f);
}

/* ---- snapshot ----------------------------------------------------------- */

static void snap_boot(fx_t *f) {
    broker_snapshot_close(&f->snap);
    assert_int_equal(broker_snapshot_init(&f->snap, &f->t.io), 0);
    f->snap_flags = 0;
    const int rc = broker_snapshot_load(&f->snap);
    assert_true(rc == 0 || rc == 1);
    run(f);
}

static void snap_expect(fx_t *f, uint64_t index, uint64_t term,
                        const char *data) {
    uint64_t i, t;
    const uint8_t *d;
    size_t n;
    broker_snapshot_loaded(&f->snap, &i, &t, &d, &n);
    assert_int_equal(i, index);
    assert_int_equal(t, term);
    assert_int_equal(n, strlen(data));
    if (n) assert_memory_equal(d, data, n);
}

static void test_snapshot_newest_wins(void **state) {
    (void)state;
    fx_t *f = fx_new(30, NULL, 0);
    snap_boot(f);
    snap_expect(f, 0, 0, "");
    const char *v[3] = {"first snapshot", "second", "third one, longer data"};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(broker_snapshot_write(&f->snap, (uint64_t)(10 * (k + 1)),
                                               (uint64_t)(k + 1),
                                               (const uint8_t *)v[k],
                                               strlen(v[k])),
                         0);
        assert_int_equal(broker_snapshot_write(&f->snap, 99, 9,
                                               (const uint8_t *)"x", 1),
                         IO_ENOMEM); /* one at a time */
        run(f);
        assert_true(f->snap_flags & BROKER_SNAPSHOT_EV_SAVED);
    }
    testio_crash(&f->t);
    snap_boot(f);
    assert_true(f->snap_flags & BROKER_SNAPSHOT_EV_LOADED);
    snap_expect(f, 30, 3, v[2]);
    /* Torn newest: its data damaged -> the previous one wins. */
    assert_true(sim_disk_corrupt(f->t.disk, "snap-a", 45, 4, 1,
                                 &f->t.crash_prng) > 0);
    snap_boot(f);
    snap_expect(f, 20, 2, v[1]);
    /* An unsynced write never replaces the durable one. */
    broker_snapshot_write(&f->snap, 40, 4, (const uint8_t *)"zz", 2);
    testio_crash(&f->t);
    snap_boot(f);
    snap_expect(f, 20, 2, v[1]);
    fx_free(f);
}

static void test_snapshot_bad_arguments(void **state) {
    (void)state;
    fx_t *f = fx_new(31, NULL, 0);
    assert_int_equal(broker_snapshot_init(&f->snap, &f->t.io), 0);
    assert_int_equal(broker_snapshot_write(&f->snap, 1, 1, NULL, 0), IO_EINVAL);
    snap_boot(f);
    assert_int_equal(broker_snapshot_load(&f->snap), IO_EINVAL);
    assert_int_equal(broker_snapshot_write(&f->snap, 0, 1, NULL, 0), IO_EINVAL);
    assert_int_equal(broker_snapshot_write(&f->snap, 1, 1, NULL, 3), IO_EINVAL);
    assert_int_equal(broker_snapshot_write(&f->snap, 1, 1, (const uint8_t *)"a",
                                           BROKER_SNAPSHOT_DATA_MAX + 1),
                     IO_EINVAL);
    uint8_t junk[64];
    memset(junk, 0x5a, sizeof junk);
    uint64_t s, i, t;
    const uint8_t *d;
    size_t n;
    assert_int_equal(broker_snapshot_decode(junk, sizeof junk, &s, &i, &t, &d, &n),
                     -1);
    fx_free(f);
}

/* ---- testio itself ------------------------------------------------------ */

static uint64_t fired_token;
static void on_timer(void *node, uint64_t token) {
    (void)node;
    fired_token = token;
}

static void test_testio_world(void **state) {
    (void)state;
    fx_t *f = fx_new(40, NULL, 0);
    const uint8_t msg[3] = {1, 2, 3};
    assert_int_equal(io_send(&f->t.io, 7, msg, 3), 0);
    testio_message_t m;
    assert_int_equal(testio_pop_message(&f->t, &m), 1);
    assert_int_equal(m.dest, 7);
    assert_memory_equal(m.bytes, msg, 3);
    free(m.bytes);
    assert_int_equal(testio_pop_message(&f->t, &m), 0);
    assert_int_equal(io_send(&f->t.io, 7, msg, IO_MESSAGE_SIZE_MAX + 1),
                     IO_EMSGSIZE);
    io_timer_set(&f->t.io, 100, 5);
    assert_int_equal(testio_fire_timers(&f->t, on_timer, NULL), 0);
    f->t.now_ns = 100;
    assert_int_equal(testio_fire_timers(&f->t, on_timer, NULL), 1);
    assert_int_equal(fired_token, 5);
    assert_false(testio_timer_armed(&f->t, 5, NULL));
    fx_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_unsynced_lost),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_torn_tail_truncated),
        cmocka_unit_test(test_torn_crash_mode),
        cmocka_unit_test(test_keep_crash_mode),
        cmocka_unit_test(test_corruption_in_middle),
        cmocka_unit_test(test_corruption_in_last_segment),
        cmocka_unit_test(test_truncate_after_survives),
        cmocka_unit_test(test_compaction_bounds_disk),
        cmocka_unit_test(test_compact_discards_conflicting_log),
        cmocka_unit_test(test_write_error_fails_log),
        cmocka_unit_test(test_log_bad_arguments),
        cmocka_unit_test(test_record_codec),
        cmocka_unit_test(test_meta_save_load),
        cmocka_unit_test(test_meta_torn_slot_falls_back),
        cmocka_unit_test(test_meta_bad_arguments),
        cmocka_unit_test(test_snapshot_newest_wins),
        cmocka_unit_test(test_snapshot_bad_arguments),
        cmocka_unit_test(test_testio_world),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
