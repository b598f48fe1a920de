/*
 * reports/format.c — aligned text tables and JSON literals for the report
 * queries.
 *
 * Why a table buffer: columns are aligned to their widest cell, so a table
 * is collected first and printed once. Cells come from scenario files and
 * the simulator, so control characters are replaced before printing (a
 * stored escape sequence must never drive the user's terminal).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reports/report_internal.h"

void report__table_init(report__table_t *t, const char *align,
                        const char *const *headers)
{
    assert(t != NULL && align != NULL && headers != NULL);
    size_t count = strlen(align);
    assert(count > 0 && count <= REPORT__TABLE_COLUMNS_MAX);
    memset(t, 0, sizeof *t);
    t->column_count = count;
    for (size_t c = 0; c < count; c++) {
        t->headers[c] = headers[c];
        t->right_align[c] = align[c] == 'r';
    }
}

/* Copy `s`, replacing control characters: newline and tab by a space,
 * anything else below 0x20 (and DEL) by '?'. UTF-8 bytes pass through. */
static char *report__clean_copy(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\t' || c == '\r') {
            c = ' ';
        } else if (c < 0x20 || c == 0x7f) {
            c = '?';
        }
        copy[i] = (char)c;
    }
    copy[len] = '\0';
    return copy;
}

int report__table_add(report__table_t *t, const char *const *cells)
{
    assert(t != NULL && cells != NULL);
    assert(t->column_count > 0);
    if (t->row_count >= REPORT__TABLE_ROWS_MAX) {
        return REPORT_EINVAL;
    }
    if (t->row_count == t->row_capacity) {
        size_t capacity = t->row_capacity ? t->row_capacity * 2 : 16;
        char **grown = realloc(t->cells,
                               capacity * t->column_count * sizeof *grown);
        if (grown == NULL) {
            return REPORT_ENOMEM;
        }
        t->cells = grown;
        t->row_capacity = capacity;
    }
    char **row = t->cells + t->row_count * t->column_count;
    for (size_t c = 0; c < t->column_count; c++) {
        row[c] = report__clean_copy(cells[c] != NULL ? cells[c] : "");
        if (row[c] == NULL) {
            for (size_t k = 0; k < c; k++) {
                free(row[k]);
            }
            return REPORT_ENOMEM;
        }
    }
    t->row_count++;
    return 0;
}

/* Display width in terminal columns: UTF-8 continuation bytes take none. */
static size_t report__width(const char *s)
{
    size_t width = 0;
    for (; *s != '\0'; s++) {
        width += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return width;
}

/* Bytes of `s` that fit in `columns` display columns, cut on a character
 * boundary. */
static size_t report__fit_bytes(const char *s, size_t columns)
{
    size_t used = 0;
    size_t i = 0;
    for (; s[i] != '\0'; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (used == columns) {
                break;
            }
            used++;
        }
    }
    return i;
}

/* A cell padded to `width`; the last cell of a line is never cut (it holds
 * free text) and, left-aligned, never padded (no trailing blanks). */
static void report__print_cell(FILE *out, const char *s, size_t width,
                               int right, int last)
{
    assert(out != NULL && s != NULL);
    assert(width <= REPORT__CELL_WIDTH_MAX);
    size_t w = report__width(s);
    if (w > width && !last) { /* only when wider than the cap */
        size_t keep = report__fit_bytes(s, width - 3);
        fprintf(out, "%.*s...", (int)keep, s);
    } else if (w >= width || (last && !right)) {
        fputs(s, out);
    } else if (right) {
        fprintf(out, "%*s%s", (int)(width - w), "", s);
    } else {
        fprintf(out, "%s%*s", s, (int)(width - w), "");
    }
}

void report__table_print(const report__table_t *t, FILE *out,
                         const char *indent)
{
    assert(t != NULL && out != NULL);
    assert(t->column_count > 0);
    size_t widths[REPORT__TABLE_COLUMNS_MAX];
    for (size_t c = 0; c < t->column_count; c++) {
        widths[c] = report__width(t->headers[c]);
        for (size_t r = 0; r < t->row_count; r++) {
            size_t w = report__width(t->cells[r * t->column_count + c]);
            widths[c] = w > widths[c] ? w : widths[c];
        }
        if (widths[c] > REPORT__CELL_WIDTH_MAX) {
            widths[c] = REPORT__CELL_WIDTH_MAX;
        }
    }
    for (size_t r = 0; r <= t->row_count; r++) { /* row 0 = header */
        const char *const *cells = r == 0 ? t->headers
            : (const char *const *)t->cells + (r - 1) * t->column_count;
        /* Stop after the last non-empty cell: no trailing blanks. */
        size_t end = t->column_count;
        while (end > 1 && cells[end - 1][0] == '\0') {
            end--;
        }
        fputs(indent != NULL ? indent : "", out);
        for (size_t c = 0; c < end; c++) {
            int last = c + 1 == end;
            report__print_cell(out, cells[c], widths[c], t->right_align[c],
                               last);
            fputs(last ? "\n" : "  ", out);
        }
    }
}

void report__table_free(report__table_t *t)
{
    assert(t != NULL);
    for (size_t i = 0; i < t->row_count * t->column_count; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* Length of the valid UTF-8 sequence at `s` (1..4), or 0 if invalid
 * (bad lead byte, bad continuation, overlong, surrogate, above U+10FFFF). */
static size_t report__utf8_length(const unsigned char *s)
{
    assert(s != NULL);
    assert(s[0] >= 0x80);
    size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || s[0] > 0xF4) {
        return 0;
    }
    uint32_t cp = s[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0; /* also stops at the terminating NUL */
        }
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return n;
}

/* Stored text is whatever the scenario gave; the JSON we print must stay
 * valid, so control characters are escaped and invalid UTF-8 bytes become
 * U+FFFD. */
void report__json_string(FILE *out, const char *s)
{
    assert(out != NULL);
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    while (*p != '\0') {
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = report__utf8_length(p);
            if (n == 0) {
                fputs("\\ufffd", out);
                p++;
            } else {
                fwrite(p, 1, n, out);
                p += n;
            }
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                fprintf(out, "\\u%04x", c);
            } else {
                fputc(c, out);
            }
        }
        p++;
    }
    fputc('"', out);
}

void report__json_double(FILE *out, double value)
{
    assert(out != NULL);
    if (!isfinite(value)) {
        fputs("null", out);
        return;
    }
    fprintf(out, "%.15g", value);
}

void report__format_seconds(char *buf, size_t size, int64_t ns)
{
    assert(buf != NULL && size > 0);
    const char *sign = ns < 0 ? "-" : "";
    uint64_t magnitude = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    uint64_t ms = magnitude / 1000000u;
    snprintf(buf, size, "%s%llu.%03llus", sign,
             (unsigned long long)(ms / 1000u),
             (unsigned long long)(ms % 1000u));
}
