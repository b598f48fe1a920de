/*
 * tests/fuzz/fuzz_log.c — recovery of the durable log from arbitrary bytes.
 *
 * The input becomes one or two segment files on a sim_disk (raw, or a set of
 * valid records built from the input and then damaged: bit flips, a cut).
 * Recovery must never crash, and every entry it serves must be a verified
 * record: its exact encoding must occur in the files we wrote, with index
 * contiguity and monotonic terms. Then the log must still append, sync and
 * recover its own entries.
 *
 * Fuzz builds do not compile the tests/support sources, so the fake world is
 * included directly.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/log.h"
#include "broker/tokens.h"
#include "tests/support/testio.c"

#define FUZZ_FILE_MAX (256u * 1024u)

typedef struct fuzz_world {
    testio_t t;
    broker_log_t log;
    uint8_t *files[2];
    size_t sizes[2];
} fuzz_world_t;

static void fuzz_done(void *node, uint64_t token, int64_t result) {
    fuzz_world_t *w = node;
    if (broker_token_owner(token) == BROKER_TOKEN_LOG)
        (void)broker_log_on_disk_done(&w->log, token, result);
}

static int fuzz_boot(fuzz_world_t *w, uint64_t base, uint64_t base_term) {
    if (broker_log_init(&w->log, &w->t.io, NULL) != 0) abort();
    if (base) broker_log_set_base(&w->log, base, base_term);
    const int rc = broker_log_recover(&w->log);
    if (rc < 0) return rc;
    testio_run_disk(&w->t, fuzz_done, w);
    return 0;
}

static int fuzz_found(const fuzz_world_t *w, const uint8_t *rec, size_t n) {
    for (int f = 0; f < 2; f++) {
        if (w->files[f] == NULL || w->sizes[f] < n) continue;
        for (size_t off = 0; off + n <= w->sizes[f]; off++)
            if (memcmp(w->files[f] + off, rec, n) == 0) return 1;
    }
    return 0;
}

/* Every served entry is a record we wrote, in sequence. */
static void fuzz_check(const fuzz_world_t *w) {
    const broker_log_t *log = &w->log;
    const broker_log_status_t st = broker_log_status(log);
    if (st == BROKER_LOG_RECOVERING || st == BROKER_LOG_INIT) abort();
    uint64_t prev_term = broker_log_term_at(log, broker_log_base_index(log));
    static uint8_t rec[BROKER_LOG_RECORD_SIZE_MAX];
    for (uint64_t i = broker_log_base_index(log) + 1;
         i <= broker_log_last_index(log); i++) {
        const broker_log_entry_t *e = broker_log_entry(log, i);
        if (e == NULL || e->term < prev_term) abort();
        prev_term = e->term;
        const int64_t n = broker_log_record_encode(rec, sizeof rec, e->term, i,
                                                   e->type, e->payload, e->len);
        if (n <= 0 || !fuzz_found(w, rec, (size_t)n)) abort();
    }
}

/* Build valid records from the input, then damage them. */
static size_t fuzz_synth(const uint8_t *in, size_t len, uint8_t *out,
                         size_t cap, uint64_t first) {
    size_t pos = 0, at = 0;
    uint64_t term = 1;
    for (uint64_t idx = first; at + 2 <= len && idx < first + 200; idx++) {
        term += in[at] & 1;
        const size_t plen = in[at + 1] % 64;
        at += 2;
        const size_t take = plen <= len - at ? plen : len - at;
        const int64_t n = broker_log_record_encode(out + pos, cap - pos, term,
                                                   idx, in[at - 2] >> 4,
                                                   in + at, take);
        if (n <= 0) break;
        pos += (size_t)n;
        at += take;
    }
    /* Damage: the last input bytes pick bit flips and a cut. */
    if (len >= 4 && pos > 0) {
        if (in[len - 1] & 1) out[(in[len - 2] * 131u + in[len - 3]) % pos] ^=
                                 (uint8_t)(1u << (in[len - 4] & 7));
        if (in[len - 1] & 2) pos -= (in[len - 2] % 32) < pos ? in[len - 2] % 32 : 0;
        if (in[len - 1] & 4) memset(out + (in[len - 3] * 7u) % pos, 0,
                                     pos - (in[len - 3] * 7u) % pos < 40
                                         ? pos - (in[len - 3] * 7u) % pos
                                         : 40);
    }
    return pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4 || size > FUZZ_FILE_MAX) return 0;
    const uint8_t mode = data[0];
    const uint64_t base = mode >> 6; /* 0..3 */
    const uint64_t base_term = data[1] & 3;
    const uint64_t second_first = 2 + data[2] % 64; /* never "log-1" twice */
    data += 3;
    size -= 3;
    fuzz_world_t *w = calloc(1, sizeof *w);
    if (w == NULL || testio_init(&w->t, 1, 1, NULL) != 0) abort();
    const size_t split = (mode & 1) ? size / 2 : size;
    const uint8_t *part[2] = {data, data + split};
    const size_t plen[2] = {split, size - split};
    const uint64_t first[2] = {1, second_first};
    for (int f = 0; f < 2; f++) {
        if (f == 1 && !(mode & 1)) break;
        w->files[f] = malloc(FUZZ_FILE_MAX * 2);
        if (w->files[f] == NULL) abort();
        if (mode & 2) {
            w->sizes[f] = fuzz_synth(part[f], plen[f], w->files[f],
                                     FUZZ_FILE_MAX * 2, first[f]);
        } else {
            memcpy(w->files[f], part[f], plen[f]);
            w->sizes[f] = plen[f];
        }
        char name[32];
        broker_log_segment_name(name, sizeof name, first[f]);
        if (w->sizes[f] > 0 &&
            sim_disk_write(w->t.disk, name, 0, w->files[f], w->sizes[f]) < 0)
            abort();
        sim_disk_fsync(w->t.disk, name);
    }
    if (fuzz_boot(w, base, base_term) == 0 &&
        broker_log_status(&w->log) != BROKER_LOG_FAILED) {
        fuzz_check(w);
        /* The log keeps working after whatever it recovered. */
        const uint64_t last = broker_log_last_index(&w->log);
        const uint64_t term = broker_log_last_term(&w->log) + 1;
        const uint8_t p[3] = {7, 8, 9};
        if (broker_log_append(&w->log, term, 1, p, 3) != (int64_t)last + 1)
            abort();
        broker_log_sync(&w->log);
        testio_run_disk(&w->t, fuzz_done, w);
        if (broker_log_durable_index(&w->log) != last + 1) abort();
        broker_log_close(&w->log);
        testio_crash(&w->t);
        if (fuzz_boot(w, base, base_term) != 0) abort();
        const broker_log_entry_t *e = broker_log_entry(&w->log, last + 1);
        if (broker_log_last_index(&w->log) != last + 1 || e == NULL ||
            e->term != term || e->len != 3 || memcmp(e->payload, p, 3) != 0)
            abort();
    }
    broker_log_close(&w->log);
    testio_close(&w->t);
    free(w->files[0]);
    free(w->files[1]);
    free(w);
    return 0;
}
