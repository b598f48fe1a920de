/*
 * sim/heap.h — binary min-heap of events ordered by (time_ns, seq)
 * (internal). Events are stored by value so the hot path allocates nothing
 * once the array has grown; seq is unique, so the order is total and never
 * depends on pointers.
 */
#ifndef CHAOSLAB_SIM_HEAP_H
#define CHAOSLAB_SIM_HEAP_H

#include <assert.h>
#include <stdlib.h>

#include "sim/kernel_internal.h"

#define SIM__HEAP_CAPACITY_MIN 256u

static inline int sim__event_before(const sim__event_t *a,
                                    const sim__event_t *b) {
    if (a->time_ns != b->time_ns) return a->time_ns < b->time_ns;
    return a->seq < b->seq;
}

/* Grow to hold at least one more item. 0 or IO_ENOMEM. */
static inline int sim__heap_reserve(sim__heap_t *hp) {
    if (hp->count < hp->capacity) return 0;
    uint64_t cap = hp->capacity ? (uint64_t)hp->capacity * 2u
                                : SIM__HEAP_CAPACITY_MIN;
    if (cap > UINT32_MAX) return IO_ENOMEM;
    sim__event_t *items = realloc(hp->items, (size_t)cap * sizeof(*items));
    if (items == NULL) return IO_ENOMEM;
    hp->items = items;
    hp->capacity = (uint32_t)cap;
    return 0;
}

/* Insert `ev` (space reserved by the caller). Hole-based sift-up: one copy
 * per level instead of a swap. */
static inline void sim__heap_push(sim__heap_t *hp, const sim__event_t *ev) {
    assert(hp->count < hp->capacity);
    uint32_t i = hp->count++;
    sim__event_t *items = hp->items;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!sim__event_before(ev, &items[parent])) break;
        items[i] = items[parent];
        i = parent;
    }
    items[i] = *ev;
}

/* Remove the minimum into *out. The heap must not be empty. */
static inline void sim__heap_pop(sim__heap_t *hp, sim__event_t *out) {
    assert(hp->count > 0);
    sim__event_t *items = hp->items;
    *out = items[0];
    uint32_t n = --hp->count;
    if (n == 0) return;
    const sim__event_t last = items[n];
    uint32_t i = 0;
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && sim__event_before(&items[child + 1], &items[child]))
            child++;
        if (!sim__event_before(&items[child], &last)) break;
        items[i] = items[child];
        i = child;
    }
    items[i] = last;
}

static inline const sim__event_t *sim__heap_top(const sim__heap_t *hp) {
    return hp->count ? &hp->items[0] : NULL;
}

#endif
