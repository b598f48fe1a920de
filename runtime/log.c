/* runtime/log.c — leveled logging (see log.h). */
#include "runtime/log.h"

#include <assert.h>
#include <stdarg.h>
#include <string.h>

#include "broker/io.h"

static const char *const rt__log_names[] = {"error", "warn", "info", "debug"};
#define RT__LOG_LEVELS 4

void rt_log_init(rt_log_t *log, rt_log_level_t level, FILE *out,
                 const char *tag) {
    assert(log != NULL);
    assert((int)level >= 0 && (int)level < RT__LOG_LEVELS);
    memset(log, 0, sizeof(*log));
    log->level = level;
    log->out = out;
    if (tag != NULL) {
        size_t n = strnlen(tag, RT_LOG_TAG_MAX);
        memcpy(log->tag, tag, n);
        log->tag[n] = '\0';
    }
}

int rt_log_level_parse(const char *text, rt_log_level_t *out) {
    assert(out != NULL);
    if (text == NULL) return IO_EINVAL;
    for (int i = 0; i < RT__LOG_LEVELS; i++) {
        if (strcmp(text, rt__log_names[i]) == 0) {
            *out = (rt_log_level_t)i;
            return 0;
        }
    }
    return IO_EINVAL;
}

const char *rt_log_level_name(rt_log_level_t level) {
    if ((int)level < 0 || (int)level >= RT__LOG_LEVELS) return "?";
    return rt__log_names[level];
}

int rt_log_enabled(const rt_log_t *log, rt_log_level_t level) {
    assert(log != NULL);
    return (int)level <= (int)log->level;
}

void rt_log_write(const rt_log_t *log, rt_log_level_t level, const char *fmt,
                  ...) {
    assert(log != NULL);
    assert(fmt != NULL);
    if (!rt_log_enabled(log, level)) return;
    char line[RT_LOG_LINE_MAX];
    int used = snprintf(line, sizeof(line), "chaoslab[%s] %s: ", log->tag,
                        rt_log_level_name(level));
    if (used < 0) return;
    if ((size_t)used < sizeof(line)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + used, sizeof(line) - (size_t)used, fmt, ap);
        va_end(ap);
    }
    /* Keep room for the newline even when the message was cut. */
    size_t len = strnlen(line, sizeof(line) - 2);
    line[len] = '\n';
    line[len + 1] = '\0';
    FILE *out = log->out != NULL ? log->out : stderr;
    fputs(line, out);
    fflush(out);
}
