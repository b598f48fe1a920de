/*
 * runtime/lock.h — exclusive lock on a node's data dir.
 *
 * Two broker processes writing one data dir would corrupt its log, so the CLI
 * takes this lock before it opens anything else there. The lock is an
 * exclusive flock(2) on "<dir>/LOCK"; the kernel drops it when the process
 * dies, so a crash never leaves a stale lock. The file also holds the pid of
 * the holder, only to name it in the error message.
 */
#ifndef CHAOSLAB_RUNTIME_LOCK_H
#define CHAOSLAB_RUNTIME_LOCK_H

#define RT_LOCK_FILE_NAME "LOCK"
#define RT_LOCK_PATH_MAX 4096u /* bytes of "<dir>/LOCK", excluding NUL */
#define RT_LOCK_MESSAGE_MAX 256u

typedef struct rt_lock {
    int fd;           /* -1 when not held */
    long holder_pid;  /* on RT_ELOCKED: pid stored by the holder, 0 unknown */
    char message[RT_LOCK_MESSAGE_MAX]; /* on failure: why, for the user */
} rt_lock_t;

/* Create `dir` if missing (one level, mode 0755) and take the lock. The
 * caller owns `lock` and must call rt_lock_release() after a success.
 * Returns 0; RT_ELOCKED if another open file description holds it (another
 * process, or a second rt_lock_data_dir in this one) with holder_pid set
 * when known; RT_EDIR if the dir or lock file cannot be created; IO_EINVAL
 * for a NULL/empty/too long dir. On failure lock->message says why and
 * lock->fd is -1. */
int rt_lock_data_dir(const char *dir, rt_lock_t *lock);

/* Drop the lock (closing the descriptor releases the flock). The LOCK file
 * stays: unlinking it would let a racing process lock an orphaned inode.
 * Safe on a released or failed lock. */
void rt_lock_release(rt_lock_t *lock);

#endif
