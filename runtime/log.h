/*
 * runtime/log.h — leveled logging to stderr for the real runtime.
 *
 * Only the runtime and the CLI log; the broker core reports through
 * io_trace(), which the runtime prints here at debug level. A log is a small
 * caller-owned struct (no global logger), so two nodes in one process keep
 * their own levels and tags.
 */
#ifndef CHAOSLAB_RUNTIME_LOG_H
#define CHAOSLAB_RUNTIME_LOG_H

#include <stdio.h>

typedef enum rt_log_level {
    RT_LOG_ERROR = 0,
    RT_LOG_WARN = 1,
    RT_LOG_INFO = 2,
    RT_LOG_DEBUG = 3,
} rt_log_level_t;

#define RT_LOG_LINE_MAX 1024u /* bytes per line; longer lines are cut */
#define RT_LOG_TAG_MAX 31u    /* bytes of the tag, excluding NUL */

typedef struct rt_log {
    rt_log_level_t level;      /* lines above this level are skipped */
    FILE *out;                 /* not owned; NULL means stderr */
    char tag[RT_LOG_TAG_MAX + 1]; /* e.g. "node 2"; may be empty */
} rt_log_t;

/* Set up `log`. `out` is borrowed (NULL = stderr); `tag` is copied and cut
 * to RT_LOG_TAG_MAX bytes (NULL = no tag). Never fails. */
void rt_log_init(rt_log_t *log, rt_log_level_t level, FILE *out,
                 const char *tag);

/* Parse "error", "warn", "info" or "debug". Returns 0, or IO_EINVAL and
 * leaves *out untouched. */
int rt_log_level_parse(const char *text, rt_log_level_t *out);

/* The lower-case name of a level ("?" for a value out of range). */
const char *rt_log_level_name(rt_log_level_t level);

/* 1 if a line at `level` would be printed. */
int rt_log_enabled(const rt_log_t *log, rt_log_level_t level);

/* Print one line "chaoslab[tag] level: message" if `level` is enabled. The
 * line is written with one stdio call so lines of two nodes never interleave
 * within a line. Never fails (output errors are ignored: logging must not
 * take a node down). */
void rt_log_write(const rt_log_t *log, rt_log_level_t level, const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));

#endif
