/* runtime/lock.c — data dir lock (see lock.h). */
#include "runtime/lock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/io.h"
#include "runtime/errors.h"

#define RT__PID_TEXT_MAX 32u

/* Read the pid the holder wrote; 0 when the file holds none (the holder may
 * be between open and write). */
static long rt__lock_read_pid(int fd) {
    assert(fd >= 0);
    char text[RT__PID_TEXT_MAX];
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    if (n <= 0) return 0;
    text[n] = '\0';
    char *end = NULL;
    long pid = strtol(text, &end, 10);
    if (end == text || pid <= 0) return 0;
    return pid;
}

static int rt__lock_fail(rt_lock_t *lock, int fd, int code) {
    assert(code < 0);
    if (fd >= 0) close(fd);
    lock->fd = -1;
    return code;
}

int rt_lock_data_dir(const char *dir, rt_lock_t *lock) {
    assert(lock != NULL);
    memset(lock, 0, sizeof(*lock));
    lock->fd = -1;
    if (dir == NULL || dir[0] == '\0' ||
        strlen(dir) + sizeof("/" RT_LOCK_FILE_NAME) > RT_LOCK_PATH_MAX) {
        snprintf(lock->message, sizeof(lock->message), "bad data dir name");
        return IO_EINVAL;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(lock->message, sizeof(lock->message),
                 "cannot create data dir %.160s: %s", dir, strerror(errno));
        return RT_EDIR;
    }
    char path[RT_LOCK_PATH_MAX + 1];
    snprintf(path, sizeof(path), "%s/%s", dir, RT_LOCK_FILE_NAME);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(lock->message, sizeof(lock->message), "cannot open %.160s: %s",
                 path, strerror(errno));
        return RT_EDIR;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err != EWOULDBLOCK) {
            snprintf(lock->message, sizeof(lock->message),
                     "cannot lock %.160s: %s", path, strerror(err));
            return rt__lock_fail(lock, fd, RT_EDIR);
        }
        lock->holder_pid = rt__lock_read_pid(fd);
        if (lock->holder_pid > 0) {
            snprintf(lock->message, sizeof(lock->message),
                     "data dir %.160s is in use by process %ld", dir,
                     lock->holder_pid);
        } else {
            snprintf(lock->message, sizeof(lock->message),
                     "data dir %.160s is in use by another process", dir);
        }
        return rt__lock_fail(lock, fd, RT_ELOCKED);
    }
    /* We hold it: record our pid for the next contender's message. */
    char text[RT__PID_TEXT_MAX];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        /* The lock itself holds; only the pid hint is missing. */
        snprintf(lock->message, sizeof(lock->message),
                 "locked, but could not record the pid");
    }
    lock->fd = fd;
    return 0;
}

void rt_lock_release(rt_lock_t *lock) {
    assert(lock != NULL);
    if (lock->fd < 0) return;
    close(lock->fd);
    lock->fd = -1;
}
