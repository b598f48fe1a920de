/* broker/table.c — growth and ordering of the broker's sorted tables. */
#include "broker/table.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker/io.h"

int broker_table_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem,
                      uint32_t max) {
    assert(arr != NULL && cap != NULL);
    assert(need <= max);
    if (need <= *cap) return 0;
    uint32_t n = *cap ? *cap : 8;
    while (n < need) n *= 2;
    if (n > max) n = max;
    void *p = realloc(*arr, (size_t)n * elem);
    if (p == NULL) return IO_ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

int broker_name_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    const size_t n = alen < blen ? alen : blen;
    const int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}
