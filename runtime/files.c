/*
 * runtime/files.c — the node's disk: real files in the data dir.
 *
 * The core sees a serial device: operations complete in issue order, so an
 * fsync's completion covers every write issued before it. We get that by
 * running ONE work item at a time on libuv's thread pool (uv_queue_work):
 * it takes every operation queued when it starts (a batch) and runs them one
 * after another in issue order; its completion delivers their results in
 * the same order and starts the next batch with whatever was issued
 * meanwhile. So a burst of writes plus one fdatasync costs one thread hop,
 * not one per operation. Writes that continue each other in one file (the
 * log's appends) are joined into one pwritev; each still gets its own
 * result. Each operation is a short sequence
 * of plain syscalls (openat, pwrite/pread loops, fdatasync, ftruncate,
 * unlinkat, directory fsync), which keeps a multi-syscall operation such as
 * "create, write, make the creation durable" in one work item.
 *
 * Memory rule: the worker thread never touches caller memory. Writes copy
 * the bytes at issue; reads land in our own buffer and are copied into the
 * caller's buffer on the loop thread, only if the node is still alive (a
 * halted node has freed its buffers). The fd cache is touched only by the
 * worker while an operation runs, and by the loop thread once none can run.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/lock.h"

#define RT__IO_RETRY_MAX 1024u /* EINTR/short-transfer rounds per syscall loop */
#define RT__WRITEV_OPS_MAX 64u /* contiguous writes joined in one pwritev */

int rt__disk_name_check(const char *name) {
    if (name == NULL) return IO_EINVAL;
    size_t len = strnlen(name, IO_FILE_NAME_MAX + 1);
    if (len == 0) return IO_EINVAL;
    if (len > IO_FILE_NAME_MAX) return IO_ENAMETOOLONG;
    /* One flat namespace inside the data dir: nothing may climb out of it,
     * and the lock file is the runtime's, not the core's. */
    if (strchr(name, '/') != NULL || strstr(name, "..") != NULL) return IO_EINVAL;
    if (strcmp(name, ".") == 0 || strcmp(name, RT_LOCK_FILE_NAME) == 0) {
        return IO_EINVAL;
    }
    return 0;
}

static int64_t rt__errno_to_io(int err) {
    if (err == ENOSPC || err == EDQUOT) return IO_ENOSPC;
    if (err == ENOENT) return IO_ENOENT;
    return IO_EIO;
}

/* ---- worker side: fd cache and syscalls --------------------------------- */

static void rt__fd_drop(rt_io_t *io, const char *name) {
    for (uint32_t i = 0; i < RT_FD_CACHE_MAX; i++) {
        if (io->fds[i].fd >= 0 && strcmp(io->fds[i].name, name) == 0) {
            close(io->fds[i].fd);
            io->fds[i].fd = -1;
        }
    }
}

/* An open fd for `name`, from the cache or opened now (evicting the least
 * recently used). With `create`, a missing file is created and *created set
 * so the caller makes the directory entry durable. Returns fd or -errno. */
static int rt__fd_get(rt_io_t *io, const char *name, int create, int *created) {
    assert(io->dir_fd >= 0);
    *created = 0;
    uint32_t victim = 0;
    for (uint32_t i = 0; i < RT_FD_CACHE_MAX; i++) {
        rt__fd_slot_t *s = &io->fds[i];
        if (s->fd >= 0 && strcmp(s->name, name) == 0) {
            s->used = ++io->fd_clock;
            return s->fd;
        }
        if (s->fd < 0 || (io->fds[victim].fd >= 0 && s->used < io->fds[victim].used)) {
            victim = i;
        }
    }
    int fd = openat(io->dir_fd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        fd = openat(io->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) *created = 1;
    }
    if (fd < 0) return -errno;
    rt__fd_slot_t *s = &io->fds[victim];
    if (s->fd >= 0) close(s->fd);
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->fd = fd;
    s->used = ++io->fd_clock;
    return fd;
}

static int64_t rt__exec_write(int fd, const uint8_t *src, size_t len,
                              uint64_t offset) {
    size_t done = 0;
    for (uint32_t round = 0; done < len && round < RT__IO_RETRY_MAX; round++) {
        ssize_t n = pwrite(fd, src + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return rt__errno_to_io(errno);
        done += (size_t)n;
    }
    return done == len ? (int64_t)len : IO_EIO;
}

static int64_t rt__exec_read(int fd, uint8_t *dst, size_t len, uint64_t offset) {
    size_t done = 0;
    for (uint32_t round = 0; done < len && round < RT__IO_RETRY_MAX; round++) {
        ssize_t n = pread(fd, dst + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return rt__errno_to_io(errno);
        if (n == 0) break; /* end of file: a short read */
        done += (size_t)n;
    }
    return (int64_t)done;
}

static int64_t rt__exec_remove(rt_io_t *io, const char *name) {
    rt__fd_drop(io, name);
    if (unlinkat(io->dir_fd, name, 0) != 0) return rt__errno_to_io(errno);
    /* Removal is durable on completion (io.h): sync the directory. */
    return fsync(io->dir_fd) == 0 ? 0 : IO_EIO;
}

static int64_t rt__exec(rt_io_t *io, rt__disk_op_t *op) {
    assert(op != NULL && op->kind >= RT__DISK_WRITE && op->kind <= RT__DISK_REMOVE);
    if (op->kind == RT__DISK_REMOVE) return rt__exec_remove(io, op->name);
    int created = 0;
    int fd = rt__fd_get(io, op->name, op->kind == RT__DISK_WRITE, &created);
    if (fd < 0) return rt__errno_to_io(-fd);
    int64_t result = 0;
    switch (op->kind) {
    case RT__DISK_WRITE:
        result = rt__exec_write(fd, op->copy, op->len, op->offset);
        /* Creation is durable on completion (io.h): sync the directory. */
        if (result >= 0 && created && fsync(io->dir_fd) != 0) result = IO_EIO;
        break;
    case RT__DISK_READ:
        result = rt__exec_read(fd, op->copy, op->len, op->offset);
        break;
    case RT__DISK_FSYNC:
        result = fdatasync(fd) == 0 ? 0 : rt__errno_to_io(errno);
        break;
    default:
        assert(op->kind == RT__DISK_TRUNCATE);
        result = ftruncate(fd, (off_t)op->offset) == 0 ? 0 : rt__errno_to_io(errno);
        break;
    }
    return result;
}

/* How many operations from `op` on are writes to op's file, each starting
 * where the one before ended (at most RT__WRITEV_OPS_MAX). */
static uint32_t rt__write_run(const rt__disk_op_t *op) {
    assert(op != NULL && op->kind == RT__DISK_WRITE);
    uint32_t n = 1;
    const rt__disk_op_t *prev = op;
    const rt__disk_op_t *next = op->next;
    while (next != NULL && n < RT__WRITEV_OPS_MAX && next->kind == RT__DISK_WRITE &&
           next->offset == prev->offset + prev->len && strcmp(next->name, op->name) == 0) {
        prev = next;
        next = next->next;
        n++;
    }
    return n;
}

/* pwritev all of iov[0..count) at `offset`, across short writes. Returns
 * the bytes written; *err is 0, or the error that stopped it early. */
static size_t rt__exec_writev(int fd, struct iovec *iov, uint32_t count,
                              uint64_t offset, size_t total, int64_t *err) {
    assert(count > 0 && count <= RT__WRITEV_OPS_MAX);
    size_t done = 0;
    uint32_t first = 0;
    *err = 0;
    for (uint32_t round = 0; done < total && round < RT__IO_RETRY_MAX; round++) {
        ssize_t n = pwritev(fd, iov + first, (int)(count - first),
                            (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            *err = rt__errno_to_io(errno);
            return done;
        }
        done += (size_t)n;
        /* Skip what went out: whole iovecs, then part of the next. */
        size_t left = (size_t)n;
        while (first < count && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            first++;
        }
        if (first < count) {
            iov[first].iov_base = (uint8_t *)iov[first].iov_base + left;
            iov[first].iov_len -= left;
        }
    }
    if (done < total) *err = IO_EIO;
    return done;
}

/* Run `count` contiguous writes to one file (rt__write_run) as one
 * pwritev. Each op gets what it would have got alone: its length if all
 * its bytes went out, else the error; a directory-sync failure after a
 * creation is the creating (first) op's. */
static void rt__exec_write_run(rt_io_t *io, rt__disk_op_t *first, uint32_t count) {
    assert(count > 1 && count <= RT__WRITEV_OPS_MAX);
    struct iovec iov[RT__WRITEV_OPS_MAX];
    int created = 0;
    int fd = rt__fd_get(io, first->name, 1, &created);
    int64_t err = fd < 0 ? rt__errno_to_io(-fd) : 0;
    size_t total = 0, done = 0;
    rt__disk_op_t *op = first;
    for (uint32_t i = 0; i < count; i++, op = op->next) {
        assert(op != NULL && op->kind == RT__DISK_WRITE);
        iov[i].iov_base = op->copy;
        iov[i].iov_len = op->len;
        total += op->len;
    }
    if (fd >= 0) done = rt__exec_writev(fd, iov, count, first->offset, total, &err);
    size_t end = 0;
    op = first;
    for (uint32_t i = 0; i < count; i++, op = op->next) {
        end += op->len;
        op->result = fd >= 0 && end <= done ? (int64_t)op->len : err;
    }
    /* Creation is durable on completion (io.h): sync the directory. */
    if (created && first->result >= 0 && fsync(io->dir_fd) != 0) first->result = IO_EIO;
}

/* Run the batch in issue order. Every operation runs even after one fails,
 * exactly as if each had its own work item. */
static void rt__work_cb(uv_work_t *req) {
    rt__disk_op_t *op = req->data;
    assert(op != NULL && op->io != NULL);
    rt_io_t *io = op->io;
    for (uint32_t n = 0; op != NULL && n < RT_DISK_QUEUE_MAX;) {
        uint32_t run = op->kind == RT__DISK_WRITE ? rt__write_run(op) : 1;
        if (run == 1) {
            op->result = rt__exec(io, op);
            op = op->next;
        } else {
            rt__exec_write_run(io, op, run);
            for (uint32_t i = 0; i < run; i++) op = op->next;
        }
        n += run;
    }
    assert(op == NULL);
}

/* ---- loop side: the serial queue ----------------------------------------- */

static size_t rt__op_copy_bytes(const rt__disk_op_t *op) {
    return op->kind == RT__DISK_WRITE || op->kind == RT__DISK_READ ? op->len : 0;
}

static void rt__op_free(rt_io_t *io, rt__disk_op_t *op) {
    assert(io->disk_count > 0);
    assert(io->disk_bytes >= rt__op_copy_bytes(op));
    io->disk_count--;
    io->disk_bytes -= rt__op_copy_bytes(op);
    free(op);
}

static void rt__after_work_cb(uv_work_t *req, int status);

/* Start a work item for everything queued (the queue holds at most
 * RT_DISK_QUEUE_MAX operations, so a batch does too). */
static void rt__disk_kick(rt_io_t *io) {
    assert(io != NULL);
    if (io->disk_running != NULL || io->disk_head == NULL) return;
    if (io->state != RT__RUNNING) return;
    rt__disk_op_t *op = io->disk_head;
    io->disk_head = io->disk_tail = NULL;
    io->disk_running = op;
    io->disk_work.data = op;
    int rc = uv_queue_work(io->loop, &io->disk_work, rt__work_cb, rt__after_work_cb);
    assert(rc == 0); /* fails only for a NULL work_cb */
    (void)rc;
    io->pending++;
}

/* Deliver one finished operation (if the node still runs) and free it. */
static void rt__op_done(rt_io_t *io, rt__disk_op_t *op, int status) {
    assert(io != NULL && op != NULL);
    assert(op->io == io);
    if (status != 0 || !rt__node_live(io)) {
        rt__op_free(io, op); /* cancelled, or a halted node: drop it */
        return;
    }
    if (op->kind == RT__DISK_READ && op->result > 0) {
        memcpy(op->buf, op->copy, (size_t)op->result);
    }
    uint64_t token = op->token;
    int64_t result = op->result;
    rt__op_free(io, op);
    io->stats.disk_ops_done++;
    rt__dispatch_begin(io);
    io->program->handler->on_disk_done(io->node, token, result);
    rt__dispatch_end(io);
}

static void rt__after_work_cb(uv_work_t *req, int status) {
    rt__disk_op_t *op = req->data;
    rt_io_t *io = op->io;
    assert(io->disk_running == op);
    /* In issue order. disk_running stays set meanwhile, so operations the
     * handlers issue queue up for the next batch; a handler that stops the
     * node makes rt__op_done drop the rest. */
    for (uint32_t n = 0; op != NULL && n < RT_DISK_QUEUE_MAX; n++) {
        rt__disk_op_t *next = op->next;
        rt__op_done(io, op, status);
        op = next;
    }
    assert(op == NULL);
    io->disk_running = NULL;
    rt__disk_kick(io);
    rt__pending_done(io); /* last: it may free io */
}

int rt__disk_submit(rt_io_t *io, rt__disk_kind_t kind, const char *name,
                    uint64_t offset, uint8_t *buf, const uint8_t *src,
                    size_t len, uint64_t token) {
    assert(io != NULL);
    assert(kind >= RT__DISK_WRITE && kind <= RT__DISK_REMOVE);
    int rc = rt__disk_name_check(name);
    if (rc != 0) return rc;
    if (io->state != RT__RUNNING) return IO_ECANCELED;
    /* off_t is signed: the whole range must fit. */
    if (offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - offset) {
        return IO_EINVAL;
    }
    size_t copy = kind == RT__DISK_WRITE || kind == RT__DISK_READ ? len : 0;
    if (io->disk_count >= RT_DISK_QUEUE_MAX ||
        copy > RT_DISK_QUEUE_BYTES_MAX - io->disk_bytes) {
        return IO_ENOMEM;
    }
    rt__disk_op_t *op = malloc(sizeof(*op) + copy);
    if (op == NULL) return IO_ENOMEM;
    memset(op, 0, sizeof(*op));
    op->io = io;
    op->kind = (uint8_t)kind;
    snprintf(op->name, sizeof(op->name), "%s", name);
    op->offset = offset;
    op->buf = buf;
    op->len = len;
    op->token = token;
    if (kind == RT__DISK_WRITE && len > 0) memcpy(op->copy, src, len);
    if (io->disk_tail != NULL) io->disk_tail->next = op;
    else io->disk_head = op;
    io->disk_tail = op;
    io->disk_count++;
    io->disk_bytes += copy;
    rt__disk_kick(io);
    return 0;
}

int rt__disk_start(rt_io_t *io) {
    assert(io != NULL && io->dir_fd < 0);
    io->dir_fd = open(io->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (io->dir_fd < 0) {
        rt_log_write(&io->log, RT_LOG_ERROR, "data dir %s: %s", io->data_dir,
                     strerror(errno));
        return RT_EDIR;
    }
    return 0;
}

void rt__disk_stop(rt_io_t *io) {
    assert(io != NULL && io->state != RT__RUNNING);
    rt__disk_op_t *op = io->disk_head;
    io->disk_head = io->disk_tail = NULL;
    while (op != NULL) { /* bounded by RT_DISK_QUEUE_MAX */
        rt__disk_op_t *next = op->next;
        rt__op_free(io, op);
        op = next;
    }
    /* A queued-but-not-started batch is cancelled; a running one finishes
     * on its thread and its completions are dropped (after_work sees the
     * stop). */
    if (io->disk_running != NULL) uv_cancel((uv_req_t *)&io->disk_work);
}

void rt__disk_free(rt_io_t *io) {
    assert(io != NULL && io->disk_running == NULL && io->disk_head == NULL);
    for (uint32_t i = 0; i < RT_FD_CACHE_MAX; i++) {
        if (io->fds[i].fd >= 0) close(io->fds[i].fd);
        io->fds[i].fd = -1;
    }
    if (io->dir_fd >= 0) close(io->dir_fd);
    io->dir_fd = -1;
}

/* ---- synchronous metadata ------------------------------------------------ */

int rt__disk_size(void *ctx, const char *name, uint64_t *size_bytes) {
    rt_io_t *io = ctx;
    assert(io != NULL);
    if (size_bytes == NULL) return IO_EINVAL;
    int rc = rt__disk_name_check(name);
    if (rc != 0) return rc;
    if (io->dir_fd < 0) return IO_ECANCELED;
    struct stat st;
    if (fstatat(io->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return (int)rt__errno_to_io(errno);
    }
    if (!S_ISREG(st.st_mode)) return IO_ENOENT;
    *size_bytes = (uint64_t)st.st_size;
    return 0;
}

/* Byte order, not locale order: every node and the simulator must agree. */
static int rt__dirent_cmp(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

int rt__disk_list(void *ctx, io_list_cb cb, void *arg) {
    rt_io_t *io = ctx;
    assert(io != NULL);
    if (cb == NULL) return IO_EINVAL;
    if (io->dir_fd < 0) return IO_ECANCELED;
    struct dirent **names = NULL;
    int n = scandir(io->data_dir, &names, NULL, rt__dirent_cmp);
    if (n < 0) return IO_EIO;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        struct stat st;
        if (rc == 0 && rt__disk_name_check(name) == 0 &&
            fstatat(io->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode)) {
            rc = cb(arg, name, (uint64_t)st.st_size);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}
