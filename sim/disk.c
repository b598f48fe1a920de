/*
 * sim/disk.c — the virtual disk of one simulated host (see sim/disk.h).
 *
 * Every file keeps two images of the same capacity: `durable` (what survives
 * power loss) and `view` (what reads see). Writes and truncates change the
 * view and are queued as pending operations (a ring, oldest first) holding a
 * private copy of the written bytes. The invariant that ties them together:
 *
 *     view == durable with every pending operation applied in order.
 *
 * fsync applies the queue to `durable` (cost: the pending bytes, not the
 * file size); a crash copies `durable` over `view`, replays the survivors the
 * crash mode picks and makes the result durable. Both images are always
 * reserved to the largest extent any queued operation reaches, so fsync,
 * write-back and crash never allocate and therefore never fail.
 *
 * Files live in an array of pointers sorted by name (byte order), which makes
 * listing and crashing iterate in a deterministic order.
 */
#include "sim/disk.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIM_DISK__CAPACITY_MIN_BYTES 256u /* first allocation of an image */
#define SIM_DISK__OPS_CAPACITY_MIN 8u     /* first allocation of a queue */
#define SIM_DISK__SECTOR_SIZE_MIN 64u
#define SIM_DISK__SECTOR_SIZE_MAX 65536u

typedef struct sim_disk__image {
    uint8_t *bytes;
    uint64_t size_bytes;
    uint64_t capacity_bytes;
} sim_disk__image_t;

/* One pending (unsynced) operation. A truncate has bytes == NULL, len == 0
 * and keeps its new size in `offset`. */
typedef struct sim_disk__op {
    uint64_t offset;
    uint8_t *bytes; /* owned copy of the written bytes */
    size_t len;
    int is_truncate;
} sim_disk__op_t;

typedef struct sim_disk__file {
    char name[IO_FILE_NAME_MAX + 1];
    sim_disk__image_t durable;
    sim_disk__image_t view;
    sim_disk__op_t *ops; /* ring of pending operations */
    uint32_t ops_head, ops_count, ops_capacity;
    uint64_t pending_bytes; /* sum of len over the queue */
} sim_disk__file_t;

typedef struct sim_disk__read_error {
    char name[IO_FILE_NAME_MAX + 1];
    uint64_t offset;
    uint64_t len;
} sim_disk__read_error_t;

struct sim_disk {
    sim_disk_config_t config;
    sim_disk_stats_t stats;
    uint32_t file_count;
    sim_disk__file_t *files[IO_FILES_MAX]; /* sorted by name */
    uint32_t read_error_count;
    sim_disk__read_error_t read_errors[SIM_DISK_READ_ERRORS_MAX];
};

/* ---- configuration --------------------------------------------------- */

void sim_disk_config_default(sim_disk_config_t *cfg) {
    assert(cfg != NULL);
    memset(cfg, 0, sizeof *cfg);
    cfg->sector_size_bytes = SIM_DISK_SECTOR_SIZE_DEFAULT;
    cfg->capacity_bytes = 0;
    cfg->crash_mode = SIM_DISK_CRASH_LOSE;
    cfg->crash_keep_probability = 0.5;
    cfg->read_latency = (sim_dist_t){SIM_DIST_CONST, 10000, 0};
    cfg->write_latency = (sim_dist_t){SIM_DIST_UNIFORM, 20000, 10000};
    cfg->fsync_latency = (sim_dist_t){SIM_DIST_EXPONENTIAL, 1000000, 200000};
    assert(sim_disk_config_check(cfg) == 0);
}

int sim_disk_config_check(const sim_disk_config_t *cfg) {
    if (cfg == NULL) return IO_EINVAL;
    const uint32_t sector = cfg->sector_size_bytes;
    if (sector != 0) { /* 0 selects the default */
        if ((sector & (sector - 1)) != 0) return IO_EINVAL;
        if (sector < SIM_DISK__SECTOR_SIZE_MIN) return IO_EINVAL;
        if (sector > SIM_DISK__SECTOR_SIZE_MAX) return IO_EINVAL;
    }
    if (cfg->crash_mode != SIM_DISK_CRASH_LOSE &&
        cfg->crash_mode != SIM_DISK_CRASH_KEEP &&
        cfg->crash_mode != SIM_DISK_CRASH_TORN)
        return IO_EINVAL;
    /* Written so that NaN fails: every comparison with NaN is false. */
    const double p = cfg->crash_keep_probability;
    if (!(p >= 0.0 && p <= 1.0)) return IO_EINVAL;
    if (sim_dist_check(&cfg->read_latency) != 0) return IO_EINVAL;
    if (sim_dist_check(&cfg->write_latency) != 0) return IO_EINVAL;
    if (sim_dist_check(&cfg->fsync_latency) != 0) return IO_EINVAL;
    return 0;
}

int sim_disk_configure(sim_disk_t *d, const sim_disk_config_t *cfg) {
    assert(d != NULL);
    if (sim_disk_config_check(cfg) != 0) return IO_EINVAL;
    d->config = *cfg;
    if (d->config.sector_size_bytes == 0)
        d->config.sector_size_bytes = SIM_DISK_SECTOR_SIZE_DEFAULT;
    assert(d->config.sector_size_bytes >= SIM_DISK__SECTOR_SIZE_MIN);
    return 0;
}

const sim_disk_config_t *sim_disk_get_config(const sim_disk_t *d) {
    assert(d != NULL);
    return &d->config;
}

const sim_disk_stats_t *sim_disk_stats(const sim_disk_t *d) {
    assert(d != NULL);
    return &d->stats;
}

/* ---- names and lookup ------------------------------------------------ */

/* 0 if `name` is a usable file name. "." and ".." are refused because the
 * real runtime maps names onto a directory, and both implementations of the
 * seam must accept the same names. */
static int sim_disk__name_check(const char *name) {
    if (name == NULL) return IO_EINVAL;
    const size_t len = strnlen(name, IO_FILE_NAME_MAX + 1);
    if (len == 0) return IO_EINVAL;
    if (len > IO_FILE_NAME_MAX) return IO_ENAMETOOLONG;
    if (memchr(name, '/', len) != NULL) return IO_EINVAL;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return IO_EINVAL;
    return 0;
}

/* Binary search. Returns the index of `name`, or -1 and sets *insert_at to
 * where it would go. strcmp compares as unsigned char: byte order. */
static int32_t sim_disk__find(const sim_disk_t *d, const char *name,
                              uint32_t *insert_at) {
    assert(d->file_count <= IO_FILES_MAX);
    uint32_t lo = 0, hi = d->file_count;
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(d->files[mid]->name, name);
        if (c == 0) return (int32_t)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    assert(lo <= d->file_count);
    if (insert_at != NULL) *insert_at = lo;
    return -1;
}

static sim_disk__file_t *sim_disk__lookup(const sim_disk_t *d,
                                          const char *name) {
    const int32_t i = sim_disk__find(d, name, NULL);
    return i < 0 ? NULL : d->files[i];
}

/* ---- images ---------------------------------------------------------- */

/* Grow `img` to hold at least `need` bytes (doubling, so appends are
 * amortised O(1)). Returns 0 or IO_ENOMEM with `img` unchanged. */
static int sim_disk__image_reserve(sim_disk__image_t *img, uint64_t need) {
    assert(need <= SIM_DISK_FILE_SIZE_MAX);
    if (need <= img->capacity_bytes) return 0;
    uint64_t cap = img->capacity_bytes;
    if (cap < SIM_DISK__CAPACITY_MIN_BYTES) cap = SIM_DISK__CAPACITY_MIN_BYTES;
    while (cap < need) cap *= 2; /* at most 33 rounds: need <= 2^32 */
    if (cap > SIM_DISK_FILE_SIZE_MAX) cap = SIM_DISK_FILE_SIZE_MAX;
    if (cap > SIZE_MAX) return IO_ENOMEM;
    uint8_t *bytes = realloc(img->bytes, (size_t)cap);
    if (bytes == NULL) return IO_ENOMEM;
    img->bytes = bytes;
    img->capacity_bytes = cap;
    assert(img->size_bytes <= img->capacity_bytes);
    return 0;
}

/* Write into an image reserved beforehand; a gap past the end reads as
 * zeros, like a sparse file. */
static void sim_disk__image_write(sim_disk__image_t *img, uint64_t offset,
                                  const uint8_t *bytes, size_t len) {
    assert(offset + len <= img->capacity_bytes);
    assert(len == 0 || bytes != NULL);
    if (offset > img->size_bytes)
        memset(img->bytes + img->size_bytes, 0,
               (size_t)(offset - img->size_bytes));
    if (len > 0) memcpy(img->bytes + offset, bytes, len);
    if (offset + len > img->size_bytes) img->size_bytes = offset + len;
}

static void sim_disk__image_truncate(sim_disk__image_t *img, uint64_t size) {
    assert(size <= img->capacity_bytes);
    assert(img->size_bytes <= img->capacity_bytes);
    if (size > img->size_bytes)
        memset(img->bytes + img->size_bytes, 0,
               (size_t)(size - img->size_bytes));
    img->size_bytes = size;
}

static void sim_disk__image_apply(sim_disk__image_t *img,
                                  const sim_disk__op_t *op) {
    assert(op != NULL);
    if (op->is_truncate) sim_disk__image_truncate(img, op->offset);
    else sim_disk__image_write(img, op->offset, op->bytes, op->len);
}

/* ---- files and their pending queues ---------------------------------- */

#ifndef NDEBUG /* only assertions call it */
static int sim_disk__file_check(const sim_disk__file_t *f) {
    return f->view.size_bytes <= f->view.capacity_bytes &&
           f->durable.size_bytes <= f->durable.capacity_bytes &&
           f->ops_count <= f->ops_capacity &&
           f->ops_count <= SIM_DISK_PENDING_WRITES_MAX &&
           (f->ops_count == 0 || f->ops_head < f->ops_capacity) &&
           f->name[0] != '\0';
}
#endif

static sim_disk__op_t *sim_disk__op_at(sim_disk__file_t *f, uint32_t i) {
    assert(i < f->ops_count);
    assert(f->ops_capacity > 0);
    return &f->ops[(f->ops_head + i) % f->ops_capacity];
}

/* Make room for one more queued operation (growing the ring in order).
 * Returns 0 or IO_ENOMEM with the queue unchanged. At the limit nothing is
 * allocated: the caller writes back the oldest entry instead. */
static int sim_disk__ops_reserve(sim_disk__file_t *f) {
    assert(sim_disk__file_check(f));
    if (f->ops_count < f->ops_capacity) return 0;
    if (f->ops_capacity >= SIM_DISK_PENDING_WRITES_MAX) return 0;
    uint32_t cap = f->ops_capacity == 0 ? SIM_DISK__OPS_CAPACITY_MIN
                                        : f->ops_capacity * 2;
    if (cap > SIM_DISK_PENDING_WRITES_MAX) cap = SIM_DISK_PENDING_WRITES_MAX;
    sim_disk__op_t *ops = malloc((size_t)cap * sizeof *ops);
    if (ops == NULL) return IO_ENOMEM;
    for (uint32_t i = 0; i < f->ops_count; i++) ops[i] = *sim_disk__op_at(f, i);
    free(f->ops);
    f->ops = ops;
    f->ops_capacity = cap;
    f->ops_head = 0;
    assert(f->ops_count < f->ops_capacity);
    return 0;
}

/* Drop the oldest queued operation; with `make_durable` apply it to the
 * durable image first (fsync, write-back). */
static void sim_disk__ops_pop(sim_disk__file_t *f, int make_durable) {
    assert(f->ops_count > 0);
    sim_disk__op_t *op = sim_disk__op_at(f, 0);
    if (make_durable) sim_disk__image_apply(&f->durable, op);
    assert(f->pending_bytes >= op->len);
    f->pending_bytes -= op->len;
    free(op->bytes);
    op->bytes = NULL;
    f->ops_head = (f->ops_head + 1) % f->ops_capacity;
    f->ops_count--;
}

/* Keep the queue within its limits before `len` more bytes join it: the
 * oldest entries become durable, as an OS flushes dirty pages by itself. */
static void sim_disk__ops_write_back(sim_disk__file_t *f, size_t len) {
    assert(sim_disk__file_check(f));
    while (f->ops_count > 0 &&
           (f->ops_count >= SIM_DISK_PENDING_WRITES_MAX ||
            f->pending_bytes + len > SIM_DISK_PENDING_BYTES_MAX))
        sim_disk__ops_pop(f, 1);
    assert(f->ops_count < f->ops_capacity);
}

static void sim_disk__ops_push(sim_disk__file_t *f, sim_disk__op_t op) {
    assert(f->ops_count < f->ops_capacity);
    assert(op.is_truncate || op.len > 0);
    f->ops[(f->ops_head + f->ops_count) % f->ops_capacity] = op;
    f->ops_count++;
    f->pending_bytes += op.len;
}

static void sim_disk__file_free(sim_disk__file_t *f) {
    if (f == NULL) return;
    while (f->ops_count > 0) sim_disk__ops_pop(f, 0);
    free(f->ops);
    free(f->durable.bytes);
    free(f->view.bytes);
    free(f);
}

/* Reserve both images to `need` bytes: a crash or fsync may later need any
 * extent the view ever reached, in either image. */
static int sim_disk__file_reserve(sim_disk__file_t *f, uint64_t need) {
    assert(need <= SIM_DISK_FILE_SIZE_MAX);
    int rc = sim_disk__image_reserve(&f->view, need);
    if (rc == 0) rc = sim_disk__image_reserve(&f->durable, need);
    assert(rc != 0 || f->durable.capacity_bytes >= need);
    return rc;
}

/* Find `name`, or allocate a new unlinked file for it in *created (the
 * caller links it with sim_disk__link or frees it). Fails with IO_ENOSPC
 * when IO_FILES_MAX files exist (out of inodes), or IO_ENOMEM. */
static int sim_disk__open(sim_disk_t *d, const char *name,
                          sim_disk__file_t **out, int *created) {
    *created = 0;
    *out = sim_disk__lookup(d, name);
    if (*out != NULL) return 0;
    if (d->file_count >= IO_FILES_MAX) return IO_ENOSPC;
    sim_disk__file_t *f = calloc(1, sizeof *f);
    if (f == NULL) return IO_ENOMEM;
    memcpy(f->name, name, strlen(name) + 1);
    *out = f;
    *created = 1;
    assert(sim_disk__file_check(f));
    return 0;
}

static void sim_disk__link(sim_disk_t *d, sim_disk__file_t *f) {
    uint32_t at = 0;
    const int32_t found = sim_disk__find(d, f->name, &at);
    assert(found < 0);
    (void)found;
    assert(d->file_count < IO_FILES_MAX);
    memmove(&d->files[at + 1], &d->files[at],
            (d->file_count - at) * sizeof d->files[0]);
    d->files[at] = f;
    d->file_count++;
}

/* ---- lifecycle ------------------------------------------------------- */

int sim_disk_new(const sim_disk_config_t *cfg, sim_disk_t **out) {
    assert(out != NULL);
    *out = NULL;
    if (sim_disk_config_check(cfg) != 0) return IO_EINVAL;
    sim_disk_t *d = calloc(1, sizeof *d);
    if (d == NULL) return IO_ENOMEM;
    const int rc = sim_disk_configure(d, cfg);
    assert(rc == 0);
    (void)rc;
    *out = d;
    return 0;
}

void sim_disk_free(sim_disk_t *d) {
    if (d == NULL) return;
    assert(d->file_count <= IO_FILES_MAX);
    for (uint32_t i = 0; i < d->file_count; i++) sim_disk__file_free(d->files[i]);
    free(d);
}

/* ---- file operations ------------------------------------------------- */

/* Would growing the sum of file sizes by `growth` overflow the capacity? */
static int sim_disk__full(const sim_disk_t *d, uint64_t growth) {
    if (d->config.capacity_bytes == 0 || growth == 0) return 0;
    return d->stats.used_bytes + growth > d->config.capacity_bytes ||
           d->stats.used_bytes + growth < d->stats.used_bytes;
}

/* Write `len` bytes at `offset` of `name`, creating the file if missing (the
 * creation is durable at once, the bytes are not). The bytes are copied.
 * Returns len, or IO_EINVAL (bad arguments, or the file would pass
 * SIM_DISK_FILE_SIZE_MAX), IO_ENAMETOOLONG, IO_ENOSPC (capacity or
 * IO_FILES_MAX reached), IO_ENOMEM. On error nothing changed. */
int64_t sim_disk_write(sim_disk_t *d, const char *name, uint64_t offset,
                       const uint8_t *bytes, size_t len) {
    assert(d != NULL);
    int rc = sim_disk__name_check(name);
    if (rc != 0) return rc;
    if (len > 0 && bytes == NULL) return IO_EINVAL;
    if (offset > SIM_DISK_FILE_SIZE_MAX ||
        len > SIM_DISK_FILE_SIZE_MAX - offset)
        return IO_EINVAL;

    sim_disk__file_t *f = sim_disk__lookup(d, name);
    int created = 0;
    const uint64_t old_size = f != NULL ? f->view.size_bytes : 0;
    const uint64_t end = len == 0 ? old_size : offset + len;
    const uint64_t new_size = end > old_size ? end : old_size;
    if (sim_disk__full(d, new_size - old_size)) {
        d->stats.enospc++;
        return IO_ENOSPC;
    }
    rc = sim_disk__open(d, name, &f, &created);
    if (rc == IO_ENOSPC) d->stats.enospc++;
    if (rc != 0) return rc;

    sim_disk__op_t op = {offset, NULL, len, 0};
    if (len > 0) {
        op.bytes = malloc(len);
        rc = op.bytes == NULL ? IO_ENOMEM : 0;
        if (rc == 0) rc = sim_disk__file_reserve(f, new_size);
        if (rc == 0) rc = sim_disk__ops_reserve(f);
        if (rc != 0) {
            free(op.bytes);
            if (created) sim_disk__file_free(f);
            return rc;
        }
        memcpy(op.bytes, bytes, len);
        sim_disk__ops_write_back(f, len);
        sim_disk__image_write(&f->view, offset, bytes, len);
        sim_disk__ops_push(f, op);
    }
    if (created) sim_disk__link(d, f);
    assert(f->view.size_bytes == new_size);
    assert(sim_disk__file_check(f));
    d->stats.used_bytes += new_size - old_size;
    d->stats.writes++;
    d->stats.bytes_written += len;
    return (int64_t)len;
}

/* Does any latent error range of `name` overlap [offset, offset + len)? */
static int sim_disk__read_error_hit(const sim_disk_t *d, const char *name,
                                    uint64_t offset, uint64_t len) {
    assert(d->read_error_count <= SIM_DISK_READ_ERRORS_MAX);
    assert(len > 0);
    for (uint32_t i = 0; i < d->read_error_count; i++) {
        const sim_disk__read_error_t *e = &d->read_errors[i];
        if (strcmp(e->name, name) != 0) continue;
        if (offset < e->offset + e->len && e->offset < offset + len) return 1;
    }
    return 0;
}

/* Read up to `len` bytes at `offset` of `name` from the volatile view into
 * `buf` (caller-owned). Returns bytes read (short at the end, 0 past it),
 * IO_ENOENT, IO_EIO (a latent error overlaps the bytes that would be read),
 * IO_EINVAL or IO_ENAMETOOLONG. */
int64_t sim_disk_read(sim_disk_t *d, const char *name, uint64_t offset,
                      uint8_t *buf, size_t len) {
    assert(d != NULL);
    const int rc = sim_disk__name_check(name);
    if (rc != 0) return rc;
    if (len > 0 && buf == NULL) return IO_EINVAL;
    const sim_disk__file_t *f = sim_disk__lookup(d, name);
    if (f == NULL) return IO_ENOENT;
    const uint64_t size = f->view.size_bytes;
    uint64_t n = offset >= size ? 0 : size - offset;
    if (n > len) n = len;
    if (n > 0 && sim_disk__read_error_hit(d, name, offset, n)) {
        d->stats.read_errors++;
        return IO_EIO;
    }
    if (n > 0) memcpy(buf, f->view.bytes + offset, (size_t)n);
    assert(n <= len);
    assert(n == 0 || offset + n <= f->view.size_bytes);
    d->stats.reads++;
    d->stats.bytes_read += n;
    return (int64_t)n;
}

/* Make every pending write and truncate of `name` durable. Returns 0,
 * IO_ENOENT, IO_EINVAL or IO_ENAMETOOLONG. Never allocates. */
int sim_disk_fsync(sim_disk_t *d, const char *name) {
    assert(d != NULL);
    const int rc = sim_disk__name_check(name);
    if (rc != 0) return rc;
    sim_disk__file_t *f = sim_disk__lookup(d, name);
    if (f == NULL) return IO_ENOENT;
    while (f->ops_count > 0) sim_disk__ops_pop(f, 1);
    assert(f->pending_bytes == 0);
    assert(f->durable.size_bytes == f->view.size_bytes);
    d->stats.fsyncs++;
    return 0;
}

/* Set the size of `name` in the volatile view (zero-filling when growing).
 * Returns 0, IO_ENOENT, IO_ENOSPC (growth past the capacity), IO_EINVAL
 * (bad name or size above SIM_DISK_FILE_SIZE_MAX), IO_ENAMETOOLONG or
 * IO_ENOMEM. On error nothing changed. */
int sim_disk_truncate(sim_disk_t *d, const char *name, uint64_t size_bytes) {
    assert(d != NULL);
    int rc = sim_disk__name_check(name);
    if (rc != 0) return rc;
    if (size_bytes > SIM_DISK_FILE_SIZE_MAX) return IO_EINVAL;
    sim_disk__file_t *f = sim_disk__lookup(d, name);
    if (f == NULL) return IO_ENOENT;
    const uint64_t old_size = f->view.size_bytes;
    if (size_bytes > old_size && sim_disk__full(d, size_bytes - old_size)) {
        d->stats.enospc++;
        return IO_ENOSPC;
    }
    if (size_bytes != old_size) { /* same size: nothing to remember */
        rc = sim_disk__file_reserve(f, size_bytes);
        if (rc == 0) rc = sim_disk__ops_reserve(f);
        if (rc != 0) return rc;
        sim_disk__ops_write_back(f, 0);
        sim_disk__image_truncate(&f->view, size_bytes);
        sim_disk__ops_push(f, (sim_disk__op_t){size_bytes, NULL, 0, 1});
    }
    d->stats.used_bytes = d->stats.used_bytes - old_size + size_bytes;
    d->stats.truncates++;
    assert(f->view.size_bytes == size_bytes);
    assert(sim_disk__file_check(f));
    return 0;
}

/* Remove `name` and everything pending on it, durably at once. Latent read
 * errors registered for the name stay until cleared. Returns 0, IO_ENOENT,
 * IO_EINVAL or IO_ENAMETOOLONG. */
int sim_disk_remove(sim_disk_t *d, const char *name) {
    assert(d != NULL);
    const int rc = sim_disk__name_check(name);
    if (rc != 0) return rc;
    const int32_t i = sim_disk__find(d, name, NULL);
    if (i < 0) return IO_ENOENT;
    sim_disk__file_t *f = d->files[i];
    assert(d->stats.used_bytes >= f->view.size_bytes);
    d->stats.used_bytes -= f->view.size_bytes;
    memmove(&d->files[i], &d->files[i + 1],
            (d->file_count - (uint32_t)i - 1) * sizeof d->files[0]);
    d->file_count--;
    sim_disk__file_free(f);
    d->stats.removes++;
    return 0;
}

/* Size of `name` in the volatile view: 0 and *size_bytes, or IO_ENOENT,
 * IO_EINVAL, IO_ENAMETOOLONG. */
int sim_disk_size(const sim_disk_t *d, const char *name, uint64_t *size_bytes) {
    assert(d != NULL);
    const int rc = sim_disk__name_check(name);
    if (rc != 0) return rc;
    if (size_bytes == NULL) return IO_EINVAL;
    const sim_disk__file_t *f = sim_disk__lookup(d, name);
    if (f == NULL) return IO_ENOENT;
    *size_bytes = f->view.size_bytes;
    return 0;
}

/* Call `cb` once per file in ascending byte order of names, with the
 * volatile size. Each step searches for the first name after the previous
 * one, so a callback that creates or removes files never derails the walk.
 * Returns 0, the first non-zero value of `cb`, or IO_EINVAL (cb NULL). */
int sim_disk_list(const sim_disk_t *d, io_list_cb cb, void *arg) {
    assert(d != NULL);
    if (cb == NULL) return IO_EINVAL;
    char last[IO_FILE_NAME_MAX + 1] = {0};
    uint32_t at = 0;
    /* Each round visits a distinct, larger name: at most IO_FILES_MAX plus
     * whatever the callback creates, which is itself bounded by it. */
    for (uint32_t round = 0; round < 2 * IO_FILES_MAX + 1; round++) {
        if (round > 0) {
            const int32_t i = sim_disk__find(d, last, &at);
            if (i >= 0) at = (uint32_t)i + 1;
        }
        if (at >= d->file_count) return 0;
        const sim_disk__file_t *f = d->files[at];
        memcpy(last, f->name, sizeof last);
        const int rc = cb(arg, last, f->view.size_bytes);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---- crash ----------------------------------------------------------- */

/* Replay one pending write sector piece by sector piece, each kept with the
 * configured probability (one draw per piece). */
static void sim_disk__crash_torn(sim_disk_t *d, sim_disk__file_t *f,
                                 const sim_disk__op_t *op, sim_prng_t *prng) {
    const uint64_t sector = d->config.sector_size_bytes;
    const uint64_t end = op->offset + op->len;
    assert(sector >= SIM_DISK__SECTOR_SIZE_MIN && (sector & (sector - 1)) == 0);
    assert(op->len > 0 && !op->is_truncate);
    uint64_t kept = 0, lost = 0;
    for (uint64_t at = op->offset; at < end;) {
        uint64_t piece_end = (at / sector + 1) * sector;
        if (piece_end > end) piece_end = end;
        if (sim_prng_chance(prng, d->config.crash_keep_probability)) {
            sim_disk__image_write(&f->view, at, op->bytes + (at - op->offset),
                                  (size_t)(piece_end - at));
            kept++;
        } else {
            lost++;
        }
        at = piece_end;
    }
    d->stats.sectors_torn_kept += kept;
    d->stats.sectors_torn_lost += lost;
    if (lost == 0) d->stats.writes_kept++;
    if (kept == 0) d->stats.writes_lost++;
}

static void sim_disk__crash_file(sim_disk_t *d, sim_disk__file_t *f,
                                 sim_prng_t *prng) {
    assert(sim_disk__file_check(f));
    if (f->ops_count == 0) return; /* view == durable already */
    assert(f->view.capacity_bytes >= f->durable.size_bytes);
    memcpy(f->view.bytes, f->durable.bytes, (size_t)f->durable.size_bytes);
    f->view.size_bytes = f->durable.size_bytes;
    for (uint32_t i = 0; i < f->ops_count; i++) {
        const sim_disk__op_t *op = sim_disk__op_at(f, i);
        if (op->is_truncate) continue; /* metadata change never reached disk */
        switch (d->config.crash_mode) {
        case SIM_DISK_CRASH_LOSE:
            d->stats.writes_lost++;
            break;
        case SIM_DISK_CRASH_KEEP:
            if (sim_prng_chance(prng, d->config.crash_keep_probability)) {
                sim_disk__image_apply(&f->view, op);
                d->stats.writes_kept++;
            } else {
                d->stats.writes_lost++;
            }
            break;
        case SIM_DISK_CRASH_TORN:
            sim_disk__crash_torn(d, f, op, prng);
            break;
        }
    }
    while (f->ops_count > 0) sim_disk__ops_pop(f, 0);
    /* What survived is now on the platter. */
    assert(f->durable.capacity_bytes >= f->view.size_bytes);
    memcpy(f->durable.bytes, f->view.bytes, (size_t)f->view.size_bytes);
    f->durable.size_bytes = f->view.size_bytes;
}

/* Power loss. Files are visited in name order and every random decision
 * draws exactly one value from `prng`, so the outcome depends only on the
 * disk's history and the stream. Never fails, never allocates. */
void sim_disk_crash(sim_disk_t *d, sim_prng_t *prng) {
    assert(d != NULL);
    assert(prng != NULL);
    uint64_t used = 0;
    for (uint32_t i = 0; i < d->file_count; i++) {
        sim_disk__crash_file(d, d->files[i], prng);
        used += d->files[i]->view.size_bytes;
    }
    d->stats.used_bytes = used;
    d->stats.crashes++;
}

/* ---- faults ---------------------------------------------------------- */

/* Register a latent error on [offset, offset + len) of `name`. The file need
 * not exist yet (a fault schedule may target a file the node creates
 * later). Returns 0, IO_EINVAL (len 0, range overflow, bad name),
 * IO_ENAMETOOLONG or IO_ENOMEM (SIM_DISK_READ_ERRORS_MAX reached). */
int sim_disk_add_read_error(sim_disk_t *d, const char *name, uint64_t offset,
                            uint64_t len) {
    assert(d != NULL);
    assert(d->read_error_count <= SIM_DISK_READ_ERRORS_MAX);
    const int rc = sim_disk__name_check(name);
    if (rc != 0) return rc;
    if (len == 0 || offset + len < offset) return IO_EINVAL;
    if (d->read_error_count >= SIM_DISK_READ_ERRORS_MAX) return IO_ENOMEM;
    sim_disk__read_error_t *e = &d->read_errors[d->read_error_count++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, strlen(name) + 1);
    e->offset = offset;
    e->len = len;
    return 0;
}

void sim_disk_clear_read_errors(sim_disk_t *d) {
    assert(d != NULL);
    assert(d->read_error_count <= SIM_DISK_READ_ERRORS_MAX);
    memset(d->read_errors, 0, sizeof d->read_errors);
    d->read_error_count = 0;
}

static void sim_disk__flip(sim_disk__image_t *img, uint64_t bit) {
    assert(img->size_bytes <= img->capacity_bytes);
    if (bit / 8 < img->size_bytes)
        img->bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* Flip the bit in every pending write that covers it too, so that an fsync
 * or a crash replays the damage instead of healing it (the view stays equal
 * to durable + pending). Bytes last set by a pending truncate's zero-fill
 * are the one exception: they come back clean. */
static void sim_disk__flip_pending(sim_disk__file_t *f, uint64_t bit) {
    const uint64_t byte = bit / 8;
    assert(f->ops_count <= SIM_DISK_PENDING_WRITES_MAX);
    for (uint32_t i = 0; i < f->ops_count; i++) {
        sim_disk__op_t *op = sim_disk__op_at(f, i);
        if (op->is_truncate || byte < op->offset || byte - op->offset >= op->len)
            continue;
        op->bytes[byte - op->offset] ^= (uint8_t)(1u << (bit % 8));
    }
}

/* Flip `bits` (at most SIM_DISK_CORRUPT_BITS_MAX) bits at positions drawn
 * uniformly (one draw each, so the same bit may be drawn twice and flip
 * back) in [offset, offset + len) clamped to the volatile size; the durable
 * image and pending writes get the same flips where they hold the byte.
 * Returns the number of flips, or IO_ENOENT / IO_EINVAL / IO_ENAMETOOLONG. */
int64_t sim_disk_corrupt(sim_disk_t *d, const char *name, uint64_t offset,
                         uint64_t len, uint32_t bits, sim_prng_t *prng) {
    assert(d != NULL);
    const int rc = sim_disk__name_check(name);
    if (rc != 0) return rc;
    if (prng == NULL) return IO_EINVAL;
    sim_disk__file_t *f = sim_disk__lookup(d, name);
    if (f == NULL) return IO_ENOENT;
    const uint64_t size = f->view.size_bytes;
    if (offset >= size || len == 0) return 0;
    const uint64_t span = len < size - offset ? len : size - offset;
    const uint64_t span_bits = span * 8; /* <= 2^35: exact in a double */
    if (bits > SIM_DISK_CORRUPT_BITS_MAX) bits = SIM_DISK_CORRUPT_BITS_MAX;
    for (uint32_t i = 0; i < bits; i++) {
        uint64_t bit = (uint64_t)floor(sim_prng_unit(prng) * (double)span_bits);
        if (bit >= span_bits) bit = span_bits - 1;
        sim_disk__flip(&f->view, offset * 8 + bit);
        sim_disk__flip(&f->durable, offset * 8 + bit);
        sim_disk__flip_pending(f, offset * 8 + bit);
    }
    assert(offset + span <= f->view.size_bytes);
    d->stats.bits_corrupted += bits;
    return (int64_t)bits;
}
