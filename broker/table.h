/*
 * broker/table.h — helpers for the sorted, bounded arrays the state machine
 * and the sessions keep (deterministic order, no hashing).
 */
#ifndef CHAOSLAB_BROKER_TABLE_H
#define CHAOSLAB_BROKER_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* Grow *arr (capacity *cap elements of `elem` bytes) so it holds `need`
 * elements; need <= max (asserted). Doubles from 8, never past max. Returns 0
 * or IO_ENOMEM (the array is unchanged). */
int broker_table_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem,
                      uint32_t max);

/* Byte-wise order of two names (shorter prefix first): <0, 0, >0. */
int broker_name_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
