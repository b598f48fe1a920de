/* tests/test_sim_disk.c — the virtual disk: durability model, crash modes,
 * faults, limits and argument checking. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/disk.h"

/* ---- helpers --------------------------------------------------------- */

static sim_disk_t *disk_new_mode(sim_disk_crash_mode_t mode, double keep_p,
                                 uint32_t sector_size_bytes) {
    sim_disk_config_t cfg;
    sim_disk_config_default(&cfg);
    cfg.crash_mode = mode;
    cfg.crash_keep_probability = keep_p;
    cfg.sector_size_bytes = sector_size_bytes;
    sim_disk_t *d = NULL;
    assert_int_equal(sim_disk_new(&cfg, &d), 0);
    assert_non_null(d);
    return d;
}

static sim_disk_t *disk_new_default(void) {
    return disk_new_mode(SIM_DISK_CRASH_LOSE, 0.5, 0);
}

/* Byte patterns that differ at every position, so each byte read back is
 * unambiguously "old" or "new". */
static uint8_t old_byte(uint64_t pos) { return (uint8_t)(pos * 7u + 1u); }
static uint8_t new_byte(uint64_t pos) { return (uint8_t)~old_byte(pos); }

static void fill(uint8_t *buf, uint64_t offset, size_t len,
                 uint8_t (*f)(uint64_t)) {
    for (size_t i = 0; i < len; i++) buf[i] = f(offset + i);
}

/* Write `len` bytes of pattern `f` at `offset`. */
static void put(sim_disk_t *d, const char *name, uint64_t offset, size_t len,
                uint8_t (*f)(uint64_t)) {
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    fill(buf, offset, len, f);
    assert_int_equal(sim_disk_write(d, name, offset, buf, len), (int64_t)len);
    free(buf);
}

static uint64_t size_of(sim_disk_t *d, const char *name) {
    uint64_t size = UINT64_MAX;
    assert_int_equal(sim_disk_size(d, name, &size), 0);
    return size;
}

/* Read the whole file into a new buffer (caller frees). */
static uint8_t *slurp(sim_disk_t *d, const char *name, uint64_t *size) {
    *size = size_of(d, name);
    uint8_t *buf = malloc(*size + 1);
    assert_non_null(buf);
    assert_int_equal(sim_disk_read(d, name, 0, buf, (size_t)*size),
                     (int64_t)*size);
    return buf;
}

/* 1 if every byte of [from, to) of buf matches `f`. */
static int all_match(const uint8_t *buf, uint64_t from, uint64_t to,
                     uint8_t (*f)(uint64_t)) {
    for (uint64_t i = from; i < to; i++)
        if (buf[i] != f(i)) return 0;
    return 1;
}

/* ---- basic I/O ------------------------------------------------------- */

static void test_write_read_round_trip(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    const uint8_t msg[] = "hello, disk";
    assert_int_equal(sim_disk_write(d, "log", 0, msg, sizeof msg), sizeof msg);
    uint8_t buf[64];
    memset(buf, 0xEE, sizeof buf);
    assert_int_equal(sim_disk_read(d, "log", 0, buf, sizeof buf), sizeof msg);
    assert_memory_equal(buf, msg, sizeof msg);
    /* short read at the end, 0 past it */
    assert_int_equal(sim_disk_read(d, "log", 7, buf, sizeof buf), sizeof msg - 7);
    assert_memory_equal(buf, msg + 7, sizeof msg - 7);
    assert_int_equal(sim_disk_read(d, "log", sizeof msg, buf, 4), 0);
    assert_int_equal(sim_disk_read(d, "log", 1000, buf, 4), 0);
    /* a write past the end leaves a zero-filled gap */
    assert_int_equal(sim_disk_write(d, "log", 100, msg, 2), 2);
    assert_int_equal(size_of(d, "log"), 102);
    assert_int_equal(sim_disk_read(d, "log", 90, buf, 12), 12);
    for (int i = 0; i < 10; i++) assert_int_equal(buf[i], 0);
    assert_memory_equal(buf + 10, msg, 2);
    /* overwrite in the middle */
    assert_int_equal(sim_disk_write(d, "log", 1, (const uint8_t *)"EL", 2), 2);
    assert_int_equal(sim_disk_read(d, "log", 0, buf, 5), 5);
    assert_memory_equal(buf, "hELlo", 5);
    const sim_disk_stats_t *st = sim_disk_stats(d);
    assert_int_equal(st->writes, 3);
    assert_int_equal(st->bytes_written, sizeof msg + 4);
    assert_int_equal(st->used_bytes, 102);
    assert_int_equal(sim_disk_read(d, "missing", 0, buf, 4), IO_ENOENT);
    uint64_t size = 0;
    assert_int_equal(sim_disk_size(d, "missing", &size), IO_ENOENT);
    assert_int_equal(sim_disk_fsync(d, "missing"), IO_ENOENT);
    assert_int_equal(sim_disk_truncate(d, "missing", 3), IO_ENOENT);
    sim_disk_free(d);
}

static void test_large_file_grows(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    /* many appends: buffers grow geometrically, content stays exact */
    const size_t chunk = 1000, count = 300;
    for (size_t i = 0; i < count; i++) put(d, "big", i * chunk, chunk, old_byte);
    assert_int_equal(sim_disk_fsync(d, "big"), 0);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "big", &size);
    assert_int_equal(size, chunk * count);
    assert_true(all_match(buf, 0, size, old_byte));
    free(buf);
    sim_disk_free(d);
}

/* ---- durability ------------------------------------------------------ */

static void test_synced_data_survives_crash(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    sim_prng_t prng;
    sim_prng_init(&prng, 1, 2);
    put(d, "a", 0, 5000, old_byte);
    assert_int_equal(sim_disk_fsync(d, "a"), 0);
    sim_disk_crash(d, &prng);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "a", &size);
    assert_int_equal(size, 5000);
    assert_true(all_match(buf, 0, size, old_byte));
    free(buf);
    const sim_disk_stats_t *st = sim_disk_stats(d);
    assert_int_equal(st->crashes, 1);
    assert_int_equal(st->writes_lost, 0);
    assert_int_equal(st->fsyncs, 1);
    sim_disk_free(d);
}

static void test_unsynced_lost_under_lose(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    sim_prng_t prng;
    sim_prng_init(&prng, 1, 2);
    put(d, "a", 0, 1000, old_byte);
    assert_int_equal(sim_disk_fsync(d, "a"), 0);
    put(d, "a", 500, 1000, new_byte); /* overwrite + extend, unsynced */
    put(d, "b", 0, 10, new_byte);     /* a new file with unsynced data */
    assert_int_equal(size_of(d, "a"), 1500);
    sim_disk_crash(d, &prng);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "a", &size);
    assert_int_equal(size, 1000);
    assert_true(all_match(buf, 0, 1000, old_byte));
    free(buf);
    /* creation is durable, the bytes are not */
    assert_int_equal(size_of(d, "b"), 0);
    const sim_disk_stats_t *st = sim_disk_stats(d);
    assert_int_equal(st->writes_lost, 2);
    assert_int_equal(st->writes_kept, 0);
    assert_int_equal(st->used_bytes, 1000);
    /* a second crash with nothing pending changes nothing */
    sim_disk_crash(d, &prng);
    assert_int_equal(size_of(d, "a"), 1000);
    assert_int_equal(st->crashes, 2);
    sim_disk_free(d);
}

/* N pending writes of `len` bytes each in distinct regions over a synced
 * "old" file; after a crash count regions that are whole "new", checking
 * that each one is entirely old or entirely new. */
static uint64_t keep_round(double keep_p, uint64_t seed, size_t n, size_t len) {
    sim_disk_t *d = disk_new_mode(SIM_DISK_CRASH_KEEP, keep_p, 512);
    put(d, "f", 0, n * len, old_byte);
    assert_int_equal(sim_disk_fsync(d, "f"), 0);
    for (size_t i = 0; i < n; i++) put(d, "f", i * len, len, new_byte);
    sim_prng_t prng;
    sim_prng_init(&prng, seed, 7);
    sim_disk_crash(d, &prng);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "f", &size);
    assert_int_equal(size, n * len);
    uint64_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const uint64_t from = i * len, to = from + len;
        const int is_new = all_match(buf, from, to, new_byte);
        const int is_old = all_match(buf, from, to, old_byte);
        assert_true(is_new || is_old); /* never partly applied */
        kept += (uint64_t)is_new;
    }
    free(buf);
    assert_int_equal(sim_disk_stats(d)->writes_kept, kept);
    assert_int_equal(sim_disk_stats(d)->writes_lost, n - kept);
    sim_disk_free(d);
    return kept;
}

static void test_keep_share_and_whole_writes(void **state) {
    (void)state;
    /* 400 writes of 700 bytes (each crossing sector boundaries). Binomial
     * sd is 10 at p=0.5 and ~8.7 at p=0.25: +-50 is about 5-6 sd. */
    const uint64_t half = keep_round(0.5, 11, 400, 700);
    assert_in_range(half, 150, 250);
    const uint64_t quarter = keep_round(0.25, 12, 400, 700);
    assert_in_range(quarter, 50, 150);
    /* the extremes are exact */
    assert_int_equal(keep_round(0.0, 13, 50, 700), 0);
    assert_int_equal(keep_round(1.0, 14, 50, 700), 50);
}

static void test_keep_replays_in_order(void **state) {
    (void)state;
    /* Two overlapping writes both kept: the later one wins, as issued. */
    sim_disk_t *d = disk_new_mode(SIM_DISK_CRASH_KEEP, 1.0, 512);
    put(d, "f", 0, 100, old_byte);
    put(d, "f", 0, 100, new_byte);
    sim_prng_t prng;
    sim_prng_init(&prng, 3, 3);
    sim_disk_crash(d, &prng);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "f", &size);
    assert_int_equal(size, 100);
    assert_true(all_match(buf, 0, 100, new_byte));
    free(buf);
    sim_disk_free(d);
}

static void test_torn_aligned_sectors(void **state) {
    (void)state;
    const uint32_t sector = 512;
    const size_t sectors = 64, per_write = 4; /* 16 writes of 4 sectors */
    sim_disk_t *d = disk_new_mode(SIM_DISK_CRASH_TORN, 0.5, sector);
    put(d, "f", 0, sectors * sector, old_byte);
    assert_int_equal(sim_disk_fsync(d, "f"), 0);
    for (size_t w = 0; w < sectors / per_write; w++)
        put(d, "f", w * per_write * sector, per_write * sector, new_byte);
    sim_prng_t prng;
    sim_prng_init(&prng, 99, 5);
    sim_disk_crash(d, &prng);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "f", &size);
    assert_int_equal(size, sectors * sector);
    uint64_t kept = 0, lost = 0;
    for (size_t s = 0; s < sectors; s++) {
        const uint64_t from = s * sector, to = from + sector;
        const int is_new = all_match(buf, from, to, new_byte);
        const int is_old = all_match(buf, from, to, old_byte);
        assert_true(is_new || is_old); /* tears only at sector boundaries */
        kept += (uint64_t)is_new;
        lost += (uint64_t)is_old;
    }
    free(buf);
    assert_true(kept > 0); /* 2^-64 chance each to fail */
    assert_true(lost > 0);
    /* at least one write was torn (kept partly): not all-or-nothing */
    const sim_disk_stats_t *st = sim_disk_stats(d);
    assert_int_equal(st->sectors_torn_kept, kept);
    assert_int_equal(st->sectors_torn_lost, lost);
    assert_true(st->writes_kept + st->writes_lost < sectors / per_write);
    sim_disk_free(d);
}

static void test_torn_unaligned_write(void **state) {
    (void)state;
    /* A write at 100..1700 with 512-byte sectors tears into the pieces
     * [100,512) [512,1024) [1024,1536) [1536,1700). Over many seeds each
     * piece must be all-old or all-new and both outcomes must show up. */
    const uint64_t off = 100, end = 1700, bounds[] = {100, 512, 1024, 1536, 1700};
    uint64_t seen_new[4] = {0}, seen_old[4] = {0};
    for (uint64_t seed = 0; seed < 64; seed++) {
        sim_disk_t *d = disk_new_mode(SIM_DISK_CRASH_TORN, 0.5, 512);
        put(d, "f", 0, 2048, old_byte);
        assert_int_equal(sim_disk_fsync(d, "f"), 0);
        put(d, "f", off, end - off, new_byte);
        sim_prng_t prng;
        sim_prng_init(&prng, seed, 9);
        sim_disk_crash(d, &prng);
        uint64_t size = 0;
        uint8_t *buf = slurp(d, "f", &size);
        assert_int_equal(size, 2048);
        assert_true(all_match(buf, 0, off, old_byte));
        assert_true(all_match(buf, end, 2048, old_byte));
        for (int p = 0; p < 4; p++) {
            const int is_new = all_match(buf, bounds[p], bounds[p + 1], new_byte);
            const int is_old = all_match(buf, bounds[p], bounds[p + 1], old_byte);
            assert_true(is_new || is_old);
            seen_new[p] += (uint64_t)is_new;
            seen_old[p] += (uint64_t)is_old;
        }
        assert_int_equal(sim_disk_stats(d)->sectors_torn_kept +
                             sim_disk_stats(d)->sectors_torn_lost,
                         4);
        free(buf);
        sim_disk_free(d);
    }
    for (int p = 0; p < 4; p++) {
        assert_true(seen_new[p] > 0);
        assert_true(seen_old[p] > 0);
    }
}

static void test_torn_extends_file(void **state) {
    (void)state;
    /* A torn append that is kept whole grows the file, piece by piece. */
    sim_disk_t *d = disk_new_mode(SIM_DISK_CRASH_TORN, 1.0, 64);
    put(d, "f", 0, 128, new_byte);
    sim_prng_t prng;
    sim_prng_init(&prng, 1, 1);
    sim_disk_crash(d, &prng);
    assert_int_equal(size_of(d, "f"), 128);
    assert_int_equal(sim_disk_stats(d)->writes_kept, 1);
    assert_int_equal(sim_disk_stats(d)->sectors_torn_kept, 2);
    sim_disk_free(d);
}

static void test_truncate_crash_restores_size(void **state) {
    (void)state;
    /* Even with every write kept, a pending truncate is lost. */
    sim_disk_t *d = disk_new_mode(SIM_DISK_CRASH_KEEP, 1.0, 512);
    sim_prng_t prng;
    sim_prng_init(&prng, 5, 5);
    put(d, "f", 0, 1000, old_byte);
    assert_int_equal(sim_disk_fsync(d, "f"), 0);
    assert_int_equal(sim_disk_truncate(d, "f", 10), 0);
    assert_int_equal(size_of(d, "f"), 10);
    assert_int_equal(sim_disk_stats(d)->used_bytes, 10);
    sim_disk_crash(d, &prng);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "f", &size);
    assert_int_equal(size, 1000);
    assert_true(all_match(buf, 0, size, old_byte));
    free(buf);
    assert_int_equal(sim_disk_stats(d)->used_bytes, 1000);
    /* synced truncates stick; growth zero-fills */
    assert_int_equal(sim_disk_truncate(d, "f", 10), 0);
    assert_int_equal(sim_disk_truncate(d, "f", 20), 0);
    assert_int_equal(sim_disk_fsync(d, "f"), 0);
    sim_disk_crash(d, &prng);
    buf = slurp(d, "f", &size);
    assert_int_equal(size, 20);
    assert_true(all_match(buf, 0, 10, old_byte));
    for (int i = 10; i < 20; i++) assert_int_equal(buf[i], 0);
    free(buf);
    assert_int_equal(sim_disk_stats(d)->truncates, 3);
    assert_int_equal(sim_disk_truncate(d, "f", SIM_DISK_FILE_SIZE_MAX + 1),
                     IO_EINVAL);
    sim_disk_free(d);
}

static void test_write_back_bounds_pending(void **state) {
    (void)state;
    /* Past SIM_DISK_PENDING_WRITES_MAX the oldest writes become durable on
     * their own; a LOSE crash then keeps exactly those. */
    sim_disk_t *d = disk_new_default();
    const size_t extra = 10, n = SIM_DISK_PENDING_WRITES_MAX + extra;
    for (size_t i = 0; i < n; i++) put(d, "f", i * 4, 4, new_byte);
    sim_prng_t prng;
    sim_prng_init(&prng, 1, 1);
    sim_disk_crash(d, &prng);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "f", &size);
    assert_int_equal(size, extra * 4);
    assert_true(all_match(buf, 0, size, new_byte));
    free(buf);
    assert_int_equal(sim_disk_stats(d)->writes_lost, SIM_DISK_PENDING_WRITES_MAX);

    /* The byte bound: three writes of half the limit keep two pending. */
    const size_t half = (size_t)(SIM_DISK_PENDING_BYTES_MAX / 2);
    for (size_t i = 0; i < 3; i++) put(d, "g", i * half, half, old_byte);
    sim_disk_crash(d, &prng);
    assert_int_equal(size_of(d, "g"), half);
    sim_disk_free(d);
}

/* ---- faults ---------------------------------------------------------- */

static int count_bit_diffs(const uint8_t *a, uint64_t from, uint64_t to,
                           uint8_t (*f)(uint64_t)) {
    int diffs = 0;
    for (uint64_t i = from; i < to; i++)
        diffs += __builtin_popcount((unsigned)(a[i] ^ f(i)));
    return diffs;
}

static void test_corruption_visible_and_counted(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    sim_prng_t prng;
    sim_prng_init(&prng, 42, 1);
    put(d, "f", 0, 4096, old_byte);
    assert_int_equal(sim_disk_fsync(d, "f"), 0);
    assert_int_equal(sim_disk_corrupt(d, "f", 100, 8, 1, &prng), 1);
    uint64_t size = 0;
    uint8_t *buf = slurp(d, "f", &size);
    assert_int_equal(count_bit_diffs(buf, 0, 100, old_byte), 0);
    assert_int_equal(count_bit_diffs(buf, 100, 108, old_byte), 1);
    assert_int_equal(count_bit_diffs(buf, 108, size, old_byte), 0);
    free(buf);
    assert_int_equal(sim_disk_stats(d)->bits_corrupted, 1);
    /* in the durable image too: a crash (which restores the durable image
     * because something is pending) does not heal it */
    put(d, "f", 4096, 10, old_byte);
    sim_disk_crash(d, &prng);
    buf = slurp(d, "f", &size);
    assert_int_equal(count_bit_diffs(buf, 0, size, old_byte), 1);
    free(buf);
    /* and not in a pending write either: fsync keeps the damage */
    put(d, "f", 200, 16, old_byte);
    assert_int_equal(sim_disk_corrupt(d, "f", 200, 16, 1, &prng), 1);
    assert_int_equal(sim_disk_fsync(d, "f"), 0);
    put(d, "f", 4096, 10, old_byte); /* pending, so the crash restores */
    sim_disk_crash(d, &prng);
    buf = slurp(d, "f", &size);
    assert_int_equal(count_bit_diffs(buf, 200, 216, old_byte), 1);
    free(buf);
    /* clamped to the file; nothing to flip past the end */
    assert_int_equal(sim_disk_corrupt(d, "f", 4090, 1000, 3, &prng), 3);
    assert_int_equal(sim_disk_corrupt(d, "f", 5000, 10, 3, &prng), 0);
    assert_int_equal(sim_disk_stats(d)->bits_corrupted, 5);
    assert_int_equal(size_of(d, "f"), 4096);
    /* bad input */
    assert_int_equal(sim_disk_corrupt(d, "nope", 0, 10, 1, &prng), IO_ENOENT);
    assert_int_equal(sim_disk_corrupt(d, "", 0, 10, 1, &prng), IO_EINVAL);
    sim_disk_free(d);
}

static void test_latent_read_errors(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    put(d, "a", 0, 2000, old_byte);
    put(d, "b", 0, 2000, old_byte);
    assert_int_equal(sim_disk_add_read_error(d, "a", 1000, 10), 0);
    uint8_t buf[64];
    assert_int_equal(sim_disk_read(d, "a", 936, buf, 64), 64); /* ends at 1000 */
    assert_int_equal(sim_disk_read(d, "a", 1010, buf, 64), 64);
    assert_int_equal(sim_disk_read(d, "a", 990, buf, 11), IO_EIO);
    assert_int_equal(sim_disk_read(d, "a", 1009, buf, 1), IO_EIO);
    assert_int_equal(sim_disk_read(d, "a", 1005, buf, 64), IO_EIO);
    assert_int_equal(sim_disk_read(d, "b", 1000, buf, 64), 64); /* other file */
    assert_int_equal(sim_disk_stats(d)->read_errors, 3);
    /* writes are not affected */
    assert_int_equal(sim_disk_write(d, "a", 1000, buf, 10), 10);
    sim_disk_clear_read_errors(d);
    assert_int_equal(sim_disk_read(d, "a", 990, buf, 64), 64);
    assert_int_equal(sim_disk_stats(d)->read_errors, 3);
    /* bad input and the limit */
    assert_int_equal(sim_disk_add_read_error(d, "a", 0, 0), IO_EINVAL);
    assert_int_equal(sim_disk_add_read_error(d, "a", UINT64_MAX, 2), IO_EINVAL);
    assert_int_equal(sim_disk_add_read_error(d, NULL, 0, 1), IO_EINVAL);
    for (uint32_t i = 0; i < SIM_DISK_READ_ERRORS_MAX; i++)
        assert_int_equal(sim_disk_add_read_error(d, "b", i * 10, 1), 0);
    assert_int_equal(sim_disk_add_read_error(d, "b", 5000, 1), IO_ENOMEM);
    assert_int_equal(sim_disk_read(d, "b", 5, buf, 5), 5); /* between ranges */
    assert_int_equal(sim_disk_read(d, "b", 5, buf, 6), IO_EIO);
    sim_disk_free(d);
}

static void test_enospc_changes_nothing(void **state) {
    (void)state;
    sim_disk_config_t cfg;
    sim_disk_config_default(&cfg);
    cfg.capacity_bytes = 1000;
    sim_disk_t *d = NULL;
    assert_int_equal(sim_disk_new(&cfg, &d), 0);
    put(d, "a", 0, 800, old_byte);
    uint8_t big[300];
    fill(big, 0, sizeof big, new_byte);
    assert_int_equal(sim_disk_write(d, "a", 800, big, 300), IO_ENOSPC);
    assert_int_equal(sim_disk_write(d, "a", 750, big, 251), IO_ENOSPC);
    assert_int_equal(sim_disk_write(d, "new", 0, big, 201), IO_ENOSPC);
    assert_int_equal(sim_disk_truncate(d, "a", 1001), IO_ENOSPC);
    uint64_t size = 0;
    assert_int_equal(sim_disk_size(d, "new", &size), IO_ENOENT);
    uint8_t *buf = slurp(d, "a", &size);
    assert_int_equal(size, 800);
    assert_true(all_match(buf, 0, size, old_byte));
    free(buf);
    const sim_disk_stats_t *st = sim_disk_stats(d);
    assert_int_equal(st->enospc, 4);
    assert_int_equal(st->used_bytes, 800);
    assert_int_equal(st->writes, 1);
    /* overwriting in place and filling exactly to capacity are fine */
    assert_int_equal(sim_disk_write(d, "a", 0, big, 300), 300);
    assert_int_equal(sim_disk_write(d, "new", 0, big, 200), 200);
    assert_int_equal(st->used_bytes, 1000);
    /* freeing space makes room again */
    assert_int_equal(sim_disk_truncate(d, "a", 500), 0);
    assert_int_equal(sim_disk_write(d, "new", 200, big, 300), 300);
    sim_disk_free(d);
}

/* ---- metadata -------------------------------------------------------- */

typedef struct listing {
    char names[8][IO_FILE_NAME_MAX + 1];
    uint64_t sizes[8];
    int count;
    int stop_at; /* return 7 at this index, -1 never */
} listing_t;

static int list_cb(void *arg, const char *name, uint64_t size_bytes) {
    listing_t *l = arg;
    assert_true(l->count < 8);
    snprintf(l->names[l->count], sizeof l->names[0], "%s", name);
    l->sizes[l->count] = size_bytes;
    l->count++;
    return l->count - 1 == l->stop_at ? 7 : 0;
}

static void test_list_order(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    const char *names[] = {"b", "\xc3\xa9t\xc3\xa9", "a", "B", "ab", "a0"};
    for (size_t i = 0; i < 6; i++) put(d, names[i], 0, i + 1, old_byte);
    listing_t l = {.stop_at = -1};
    assert_int_equal(sim_disk_list(d, list_cb, &l), 0);
    assert_int_equal(l.count, 6);
    const char *want[] = {"B", "a", "a0", "ab", "b", "\xc3\xa9t\xc3\xa9"};
    const uint64_t want_size[] = {4, 3, 6, 5, 1, 2};
    for (int i = 0; i < 6; i++) {
        assert_string_equal(l.names[i], want[i]);
        assert_int_equal(l.sizes[i], want_size[i]);
    }
    listing_t early = {.stop_at = 1};
    assert_int_equal(sim_disk_list(d, list_cb, &early), 7);
    assert_int_equal(early.count, 2);
    assert_int_equal(sim_disk_list(d, NULL, NULL), IO_EINVAL);
    sim_disk_free(d);
}

typedef struct remover {
    sim_disk_t *disk;
    char seen[8];
    int count;
} remover_t;

static int remove_next_cb(void *arg, const char *name, uint64_t size_bytes) {
    (void)size_bytes;
    remover_t *r = arg;
    assert_true(r->count < 7);
    r->seen[r->count++] = name[0];
    /* removing the current and a later file mid-walk must not derail it */
    if (strcmp(name, "a") == 0) {
        assert_int_equal(sim_disk_remove(r->disk, "a"), 0);
        assert_int_equal(sim_disk_remove(r->disk, "b"), 0);
    }
    return 0;
}

static void test_list_tolerates_removal(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    put(d, "a", 0, 1, old_byte);
    put(d, "b", 0, 1, old_byte);
    put(d, "c", 0, 1, old_byte);
    remover_t r = {.disk = d};
    assert_int_equal(sim_disk_list(d, remove_next_cb, &r), 0);
    assert_int_equal(r.count, 2);
    assert_memory_equal(r.seen, "ac", 2);
    listing_t l = {.stop_at = -1};
    assert_int_equal(sim_disk_list(d, list_cb, &l), 0);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.names[0], "c");
    sim_disk_free(d);
}

static void test_remove(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    sim_prng_t prng;
    sim_prng_init(&prng, 1, 1);
    put(d, "a", 0, 100, old_byte);
    put(d, "b", 0, 50, old_byte);
    assert_int_equal(sim_disk_stats(d)->used_bytes, 150);
    assert_int_equal(sim_disk_remove(d, "a"), 0);
    uint64_t size = 0;
    assert_int_equal(sim_disk_size(d, "a", &size), IO_ENOENT);
    assert_int_equal(sim_disk_remove(d, "a"), IO_ENOENT);
    assert_int_equal(sim_disk_stats(d)->used_bytes, 50);
    assert_int_equal(sim_disk_stats(d)->removes, 1);
    /* removal is durable at once: a crash does not bring it back */
    sim_disk_crash(d, &prng);
    assert_int_equal(sim_disk_size(d, "a", &size), IO_ENOENT);
    assert_int_equal(size_of(d, "b"), 0);
    /* the name is free for a new file */
    put(d, "a", 0, 3, new_byte);
    assert_int_equal(size_of(d, "a"), 3);
    assert_int_equal(sim_disk_remove(d, "x/y"), IO_EINVAL);
    sim_disk_free(d);
}

static void test_files_max(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    char name[32];
    for (uint32_t i = 0; i < IO_FILES_MAX; i++) {
        snprintf(name, sizeof name, "f%05u", (unsigned)i);
        assert_int_equal(sim_disk_write(d, name, 0, (const uint8_t *)"x", 1), 1);
    }
    assert_int_equal(sim_disk_write(d, "one-too-many", 0, (const uint8_t *)"x", 1),
                     IO_ENOSPC);
    uint64_t size = 0;
    assert_int_equal(sim_disk_size(d, "one-too-many", &size), IO_ENOENT);
    /* existing files still take writes */
    assert_int_equal(sim_disk_write(d, "f00000", 1, (const uint8_t *)"y", 1), 1);
    assert_int_equal(sim_disk_remove(d, "f00007"), 0);
    assert_int_equal(sim_disk_write(d, "one-too-many", 0, (const uint8_t *)"x", 1),
                     1);
    sim_disk_free(d);
}

/* ---- argument checking ----------------------------------------------- */

static void test_bad_names(void **state) {
    (void)state;
    sim_disk_t *d = disk_new_default();
    char longest[IO_FILE_NAME_MAX + 1], too_long[IO_FILE_NAME_MAX + 2];
    memset(longest, 'n', IO_FILE_NAME_MAX);
    longest[IO_FILE_NAME_MAX] = '\0';
    memset(too_long, 'n', IO_FILE_NAME_MAX + 1);
    too_long[IO_FILE_NAME_MAX + 1] = '\0';
    const uint8_t b[1] = {1};
    uint8_t buf[4];
    uint64_t size = 0;
    assert_int_equal(sim_disk_write(d, longest, 0, b, 1), 1);
    assert_int_equal(sim_disk_write(d, too_long, 0, b, 1), IO_ENAMETOOLONG);
    assert_int_equal(sim_disk_read(d, too_long, 0, buf, 1), IO_ENAMETOOLONG);
    assert_int_equal(sim_disk_size(d, too_long, &size), IO_ENAMETOOLONG);
    const char *bad[] = {NULL, "", "a/b", "/", ".", ".."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sim_disk_write(d, bad[i], 0, b, 1), IO_EINVAL);
        assert_int_equal(sim_disk_read(d, bad[i], 0, buf, 1), IO_EINVAL);
        assert_int_equal(sim_disk_fsync(d, bad[i]), IO_EINVAL);
        assert_int_equal(sim_disk_truncate(d, bad[i], 0), IO_EINVAL);
        assert_int_equal(sim_disk_remove(d, bad[i]), IO_EINVAL);
        assert_int_equal(sim_disk_size(d, bad[i], &size), IO_EINVAL);
        assert_int_equal(sim_disk_add_read_error(d, bad[i], 0, 1), IO_EINVAL);
    }
    /* other bad arguments */
    assert_int_equal(sim_disk_write(d, "a", 0, NULL, 1), IO_EINVAL);
    assert_int_equal(sim_disk_write(d, "a", SIM_DISK_FILE_SIZE_MAX, b, 1),
                     IO_EINVAL);
    assert_int_equal(sim_disk_write(d, "a", UINT64_MAX, b, 1), IO_EINVAL);
    assert_int_equal(sim_disk_read(d, longest, 0, NULL, 1), IO_EINVAL);
    assert_int_equal(sim_disk_size(d, longest, NULL), IO_EINVAL);
    listing_t l = {.stop_at = -1};
    assert_int_equal(sim_disk_list(d, list_cb, &l), 0);
    assert_int_equal(l.count, 1); /* nothing bad got created */
    const sim_disk_stats_t *st = sim_disk_stats(d);
    assert_int_equal(st->writes, 1);
    assert_int_equal(st->used_bytes, 1);
    sim_disk_free(d);
}

static void test_bad_config(void **state) {
    (void)state;
    sim_disk_config_t good;
    sim_disk_config_default(&good);
    assert_int_equal(sim_disk_config_check(&good), 0);
    assert_int_equal(good.sector_size_bytes, 512);
    assert_int_equal(good.capacity_bytes, 0);
    assert_int_equal(good.crash_mode, SIM_DISK_CRASH_LOSE);
    assert_true(good.crash_keep_probability == 0.5);
    assert_int_equal(good.read_latency.kind, SIM_DIST_CONST);
    assert_int_equal(good.read_latency.base_ns, 10000);
    assert_int_equal(good.write_latency.kind, SIM_DIST_UNIFORM);
    assert_int_equal(good.write_latency.base_ns, 20000);
    assert_int_equal(good.write_latency.spread_ns, 10000);
    assert_int_equal(good.fsync_latency.kind, SIM_DIST_EXPONENTIAL);
    assert_int_equal(good.fsync_latency.base_ns, 1000000);
    assert_int_equal(good.fsync_latency.spread_ns, 200000);
    assert_int_equal(sim_disk_config_check(NULL), IO_EINVAL);

    const uint32_t bad_sectors[] = {100, 32, 131072, 513, 1};
    for (size_t i = 0; i < sizeof bad_sectors / sizeof bad_sectors[0]; i++) {
        sim_disk_config_t c = good;
        c.sector_size_bytes = bad_sectors[i];
        assert_int_equal(sim_disk_config_check(&c), IO_EINVAL);
    }
    const uint32_t ok_sectors[] = {0, 64, 4096, 65536};
    for (size_t i = 0; i < sizeof ok_sectors / sizeof ok_sectors[0]; i++) {
        sim_disk_config_t c = good;
        c.sector_size_bytes = ok_sectors[i];
        assert_int_equal(sim_disk_config_check(&c), 0);
    }
    const double bad_p[] = {-0.1, 1.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_p / sizeof bad_p[0]; i++) {
        sim_disk_config_t c = good;
        c.crash_keep_probability = bad_p[i];
        assert_int_equal(sim_disk_config_check(&c), IO_EINVAL);
    }
    sim_disk_config_t c = good;
    c.crash_mode = (sim_disk_crash_mode_t)7;
    assert_int_equal(sim_disk_config_check(&c), IO_EINVAL);
    c = good;
    c.read_latency.kind = (sim_dist_kind_t)9;
    assert_int_equal(sim_disk_config_check(&c), IO_EINVAL);
    c = good;
    c.write_latency.base_ns = UINT64_MAX;
    assert_int_equal(sim_disk_config_check(&c), IO_EINVAL);
    c = good;
    c.fsync_latency.spread_ns = UINT64_MAX;
    assert_int_equal(sim_disk_config_check(&c), IO_EINVAL);

    /* new and configure refuse it and keep the old configuration */
    sim_disk_t *d = (sim_disk_t *)&c; /* must be overwritten with NULL */
    c = good;
    c.sector_size_bytes = 100;
    assert_int_equal(sim_disk_new(&c, &d), IO_EINVAL);
    assert_null(d);
    assert_int_equal(sim_disk_new(NULL, &d), IO_EINVAL);
    c = good;
    c.sector_size_bytes = 0; /* 0 means the default */
    assert_int_equal(sim_disk_new(&c, &d), 0);
    assert_int_equal(sim_disk_get_config(d)->sector_size_bytes, 512);
    c.crash_keep_probability = NAN;
    assert_int_equal(sim_disk_configure(d, &c), IO_EINVAL);
    assert_true(sim_disk_get_config(d)->crash_keep_probability == 0.5);
    c = good;
    c.crash_mode = SIM_DISK_CRASH_TORN;
    c.sector_size_bytes = 4096;
    assert_int_equal(sim_disk_configure(d, &c), 0);
    assert_int_equal(sim_disk_get_config(d)->crash_mode, SIM_DISK_CRASH_TORN);
    assert_int_equal(sim_disk_get_config(d)->sector_size_bytes, 4096);
    sim_disk_free(d);
    sim_disk_free(NULL);
}

/* ---- determinism ----------------------------------------------------- */

/* Run one fixed history under TORN, crash, corrupt, and return the
 * contents of the torn file (caller frees). */
static uint8_t *crash_outcome(uint64_t seed, uint64_t *size) {
    sim_disk_t *d = disk_new_mode(SIM_DISK_CRASH_TORN, 0.5, 64);
    put(d, "t", 0, 64 * 64, old_byte);
    assert_int_equal(sim_disk_fsync(d, "t"), 0);
    for (int i = 0; i < 16; i++) put(d, "t", (uint64_t)i * 256 + 30, 200, new_byte);
    put(d, "u", 0, 100, new_byte);
    sim_prng_t prng;
    sim_prng_init(&prng, seed, SIM_STREAM_DISK_BASE);
    sim_disk_crash(d, &prng);
    assert_int_equal(sim_disk_corrupt(d, "t", 0, 4096, 8, &prng), 8);
    uint64_t st = 0;
    uint8_t *t = slurp(d, "t", &st);
    *size = st;
    sim_disk_free(d);
    return t;
}

static void test_determinism(void **state) {
    (void)state;
    uint64_t sa = 0, sb = 0, sc = 0;
    uint8_t *a = crash_outcome(1234, &sa);
    uint8_t *b = crash_outcome(1234, &sb);
    uint8_t *c = crash_outcome(1235, &sc);
    assert_int_equal(sa, sb);
    assert_memory_equal(a, b, sa);
    /* 64 torn pieces and 8 flipped bits: a different seed differs */
    assert_true(sa != sc || memcmp(a, c, sa) != 0);
    free(a);
    free(b);
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read_round_trip),
        cmocka_unit_test(test_large_file_grows),
        cmocka_unit_test(test_synced_data_survives_crash),
        cmocka_unit_test(test_unsynced_lost_under_lose),
        cmocka_unit_test(test_keep_share_and_whole_writes),
        cmocka_unit_test(test_keep_replays_in_order),
        cmocka_unit_test(test_torn_aligned_sectors),
        cmocka_unit_test(test_torn_unaligned_write),
        cmocka_unit_test(test_torn_extends_file),
        cmocka_unit_test(test_truncate_crash_restores_size),
        cmocka_unit_test(test_write_back_bounds_pending),
        cmocka_unit_test(test_corruption_visible_and_counted),
        cmocka_unit_test(test_latent_read_errors),
        cmocka_unit_test(test_enospc_changes_nothing),
        cmocka_unit_test(test_list_order),
        cmocka_unit_test(test_list_tolerates_removal),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_files_max),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
