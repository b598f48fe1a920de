/*
 * sim/disk.h — the virtual disk of one simulated host.
 *
 * A small file system: named files, write at offset, read, fsync, truncate,
 * size, remove, list. This module is a synchronous data structure; the kernel
 * (sim/sim.c) adds latency and turns calls into completions.
 *
 * Durability model: every file has a durable image and a volatile view.
 * Writes and truncates change the volatile view and are remembered as pending
 * until an fsync of that file makes the view durable. sim_disk_crash() rolls
 * each file back to its durable image and then, depending on the crash mode,
 * re-applies some pending writes whole (KEEP_SOME) or sector by sector (TORN).
 * File creation and removal are durable at once (journaled metadata).
 *
 * Faults: latent read errors on a byte range, silent corruption (bit flips
 * in the stored bytes, both images), full disk (writes past capacity fail
 * with IO_ENOSPC), and latency distributions the kernel samples.
 *
 * Errors are the IO_E* codes of broker/io.h.
 */
#ifndef CHAOSLAB_SIM_DISK_H
#define CHAOSLAB_SIM_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "broker/io.h"
#include "sim/prng.h"

#define SIM_DISK_SECTOR_SIZE_DEFAULT 512u
#define SIM_DISK_READ_ERRORS_MAX 64u        /* latent error ranges per disk */
#define SIM_DISK_FILE_SIZE_MAX (UINT64_C(1) << 32) /* 4 GiB per file */
/* Bounds on the unsynced writes remembered per file. Past either one the
 * oldest pending write or truncate is written back (made durable), as an OS
 * page cache flushes dirty pages on its own, so a node that never fsyncs
 * still uses bounded memory. */
#define SIM_DISK_PENDING_WRITES_MAX 4096u
#define SIM_DISK_PENDING_BYTES_MAX (UINT64_C(16) << 20) /* 16 MiB per file */
#define SIM_DISK_CORRUPT_BITS_MAX 65536u /* flips per sim_disk_corrupt call */

typedef enum sim_disk_crash_mode {
    SIM_DISK_CRASH_LOSE = 0, /* every unsynced write is lost */
    SIM_DISK_CRASH_KEEP = 1, /* each pending write kept whole w.p. keep_p */
    SIM_DISK_CRASH_TORN = 2, /* each sector of each pending write kept w.p. keep_p */
} sim_disk_crash_mode_t;

typedef struct sim_disk_config {
    uint32_t sector_size_bytes;  /* power of two, 0 = default (512) */
    uint64_t capacity_bytes;     /* sum of file sizes allowed; 0 = unlimited */
    sim_disk_crash_mode_t crash_mode;
    double crash_keep_probability; /* for KEEP and TORN, in [0, 1] */
    sim_dist_t read_latency;
    sim_dist_t write_latency;
    sim_dist_t fsync_latency;
} sim_disk_config_t;

typedef struct sim_disk_stats {
    uint64_t writes, reads, fsyncs, truncates, removes;
    uint64_t bytes_written, bytes_read;
    uint64_t read_errors;      /* reads failed by a latent error range */
    uint64_t enospc;           /* writes refused: disk full */
    uint64_t crashes;
    uint64_t writes_lost;      /* pending writes dropped whole by crashes */
    uint64_t writes_kept;      /* pending writes kept whole by crashes */
    uint64_t sectors_torn_kept, sectors_torn_lost;
    uint64_t bits_corrupted;
    uint64_t used_bytes;       /* current sum of file sizes */
} sim_disk_stats_t;

typedef struct sim_disk sim_disk_t;

/* Fill `cfg` with defaults: 512-byte sectors, unlimited, LOSE, latencies
 * write 20us+uniform 10us, fsync 1ms+exponential 200us, read 10us const. */
void sim_disk_config_default(sim_disk_config_t *cfg);

/* Validate a configuration: 0 or IO_EINVAL. */
int sim_disk_config_check(const sim_disk_config_t *cfg);

/* Create an empty disk. The caller owns *out and frees it with
 * sim_disk_free. Returns 0, IO_EINVAL (bad config) or IO_ENOMEM. */
int sim_disk_new(const sim_disk_config_t *cfg, sim_disk_t **out);
void sim_disk_free(sim_disk_t *d);

/* Replace the configuration (faults change at any virtual time). */
int sim_disk_configure(sim_disk_t *d, const sim_disk_config_t *cfg);
const sim_disk_config_t *sim_disk_get_config(const sim_disk_t *d);

/* File operations. `name` is 1..IO_FILE_NAME_MAX bytes. */
int64_t sim_disk_write(sim_disk_t *d, const char *name, uint64_t offset,
                       const uint8_t *bytes, size_t len);
int64_t sim_disk_read(sim_disk_t *d, const char *name, uint64_t offset,
                      uint8_t *buf, size_t len);
int sim_disk_fsync(sim_disk_t *d, const char *name);
int sim_disk_truncate(sim_disk_t *d, const char *name, uint64_t size_bytes);
int sim_disk_remove(sim_disk_t *d, const char *name);
int sim_disk_size(const sim_disk_t *d, const char *name, uint64_t *size_bytes);
int sim_disk_list(const sim_disk_t *d, io_list_cb cb, void *arg);

/* Power loss: apply the crash mode to every file, drawing from `prng`. */
void sim_disk_crash(sim_disk_t *d, sim_prng_t *prng);

/* Faults. A latent read error makes any read overlapping [offset, offset+len)
 * of `name` fail with IO_EIO until cleared. */
int sim_disk_add_read_error(sim_disk_t *d, const char *name, uint64_t offset,
                            uint64_t len);
void sim_disk_clear_read_errors(sim_disk_t *d);
/* Flip `bits` random bits inside [offset, offset+len) of `name` (clamped to the
 * file), in the durable and volatile images alike. `bits` is clamped to
 * SIM_DISK_CORRUPT_BITS_MAX. Returns bits flipped or IO_ENOENT. */
int64_t sim_disk_corrupt(sim_disk_t *d, const char *name, uint64_t offset,
                         uint64_t len, uint32_t bits, sim_prng_t *prng);

const sim_disk_stats_t *sim_disk_stats(const sim_disk_t *d);

#endif
