/*
 * reports/report_internal.h — shared between the files of reports/ only.
 * Internal names use the `report__` prefix.
 */
#ifndef CHAOSLAB_REPORTS_REPORT_INTERNAL_H
#define CHAOSLAB_REPORTS_REPORT_INTERNAL_H

#include <sqlite3.h>
#include <stdarg.h>

#include "reports/report.h"

struct report_db {
    sqlite3 *sqlite;
    char errmsg[REPORT_ERRMSG_SIZE_MAX];
};

/* The schema text (schema.c). */
extern const char report__schema_sql[];

/* Format a message into db->errmsg. Returns `code` so callers can
 * `return report__fail(db, REPORT_EINVAL, "...")`. */
int report__fail(report_db_t *db, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Map an SQLite result code to a REPORT_E* code and record its message
 * prefixed by `what`. */
int report__sqlite_fail(report_db_t *db, int sqlite_rc, const char *what);

/* SQLite integers are signed: seeds keep their 64 bits by two's-complement
 * reinterpretation (without implementation-defined conversions). */
int64_t report__i64_from_bits(uint64_t bits);
uint64_t report__bits_from_i64(int64_t value);

/* ---- aligned text tables (format.c) ---- */

#define REPORT__TABLE_COLUMNS_MAX 12
#define REPORT__TABLE_ROWS_MAX 1000000
#define REPORT__CELL_WIDTH_MAX 64   /* wider cells are cut with "..." */

typedef struct report__table {
    size_t column_count;
    const char *headers[REPORT__TABLE_COLUMNS_MAX];
    int right_align[REPORT__TABLE_COLUMNS_MAX];
    char **cells;          /* row-major, owned; row_count * column_count */
    size_t row_count;
    size_t row_capacity;
} report__table_t;

/* `align` has one letter per column: 'l' left, 'r' right (numbers). Headers
 * are borrowed (string literals). */
void report__table_init(report__table_t *t, const char *align,
                        const char *const *headers);
/* Append one row; `cells` has column_count strings (NULL = ""), copied and
 * cleaned of control characters. Returns 0 or REPORT_ENOMEM/REPORT_EINVAL. */
int report__table_add(report__table_t *t, const char *const *cells);
/* Print header and rows, each line prefixed by `indent`. The last column
 * is never padded or cut (it holds free text). */
void report__table_print(const report__table_t *t, FILE *out,
                         const char *indent);
void report__table_free(report__table_t *t);

/* ---- JSON output helpers (format.c) ---- */

/* Print `s` as a JSON string literal; NULL prints null. */
void report__json_string(FILE *out, const char *s);
/* Print a finite double (15 significant digits); non-finite prints null. */
void report__json_double(FILE *out, double value);

/* Format nanoseconds as seconds with millisecond precision ("12.345s"). */
void report__format_seconds(char *buf, size_t size, int64_t ns);

#endif /* CHAOSLAB_REPORTS_REPORT_INTERNAL_H */
