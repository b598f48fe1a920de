/*
 * tests/fuzz/fuzz_wire.c — libFuzzer target for broker/wire.c.
 *
 * Each input is tried twice:
 *   1. as a raw frame, exactly as a peer or client could send it (exercises
 *      the header checks and the CRC);
 *   2. as (type byte, body): the harness wraps the body in a correct header
 *      and CRC, so the fuzzer reaches the field parser instead of spending
 *      its time guessing checksums.
 * Whenever a frame decodes, the round trip must hold: re-encoding gives the
 * very same bytes (the format is canonical), and decoding those gives an
 * equal message. Any mismatch aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/crc32c.h"
#include "broker/wire.h"

/* Inputs longer than this are cut: a frame cannot be longer anyway. */
#define FUZZ_INPUT_SIZE_MAX (WIRE_MESSAGE_SIZE_MAX + 16u)

typedef struct fuzz_ctx {
    wire_entry_t entries[WIRE_ENTRIES_MAX];
    wire_entry_t entries2[WIRE_ENTRIES_MAX];
    uint8_t frame[FUZZ_INPUT_SIZE_MAX + WIRE_HEADER_SIZE];
    uint8_t again[WIRE_MESSAGE_SIZE_MAX];
} fuzz_ctx_t;

static void fuzz_die(const char *what, int rc) {
    fprintf(stderr, "fuzz_wire: %s (%s)\n", what, wire_error_name(rc));
    abort();
}

/* Decode `bytes`; if that succeeds, check the round trip. */
static void fuzz_one(fuzz_ctx_t *f, const uint8_t *bytes, size_t len) {
    wire_msg_t msg, msg2;
    int rc = wire_decode(bytes, len, &msg, f->entries, WIRE_ENTRIES_MAX);
    if (rc > 0) fuzz_die("decode returned a positive value", rc);
    if (rc < 0) {
        if (strcmp(wire_error_name(rc), "UNKNOWN") == 0) fuzz_die("unnamed error", rc);
        return;
    }
    int size = wire_encoded_size(&msg);
    if (size < 0 || (size_t)size != len) fuzz_die("encoded size differs from input", size);
    int n = wire_encode(&msg, f->again, sizeof f->again);
    if (n != size) fuzz_die("re-encode failed", n);
    if (memcmp(bytes, f->again, len) != 0) fuzz_die("re-encoded bytes differ", 0);
    rc = wire_decode(f->again, (size_t)n, &msg2, f->entries2, WIRE_ENTRIES_MAX);
    if (rc != 0) fuzz_die("re-encoded frame does not decode", rc);
    if (!wire_msg_equal(&msg, &msg2)) fuzz_die("decoded messages differ", 0);
    if (wire_frame_size(bytes, len) != (int)len) fuzz_die("frame size differs", 0);
}

/* Wrap data[1..] as the body of a frame of type data[0], correctly sealed. */
static size_t fuzz_seal(fuzz_ctx_t *f, const uint8_t *data, size_t len) {
    size_t body_len = len - 1;
    uint8_t *h = f->frame;
    h[0] = (uint8_t)(WIRE_MAGIC & 0xFFu);
    h[1] = (uint8_t)(WIRE_MAGIC >> 8);
    h[2] = (uint8_t)WIRE_VERSION;
    h[3] = data[0];
    for (int i = 0; i < 4; i++) h[4 + i] = (uint8_t)(body_len >> (8 * i));
    memcpy(h + WIRE_HEADER_SIZE, data + 1, body_len);
    uint32_t crc = crc32c_extend(crc32c(h, 8), h + WIRE_HEADER_SIZE, body_len);
    for (int i = 0; i < 4; i++) h[8 + i] = (uint8_t)(crc >> (8 * i));
    return WIRE_HEADER_SIZE + body_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    /* The harness's own scratch space: allocated once, reused (libFuzzer
     * runs inputs one at a time in this process). */
    static fuzz_ctx_t *f;
    if (f == NULL) {
        f = calloc(1, sizeof *f);
        if (f == NULL) abort();
    }
    if (len > FUZZ_INPUT_SIZE_MAX) len = FUZZ_INPUT_SIZE_MAX;
    fuzz_one(f, data, len);
    if (len >= 1) {
        /* An exact-size heap copy, so ASan sees any read past the frame. */
        size_t n = fuzz_seal(f, data, len);
        uint8_t *exact = malloc(n);
        if (exact == NULL) abort();
        memcpy(exact, f->frame, n);
        fuzz_one(f, exact, n);
        free(exact);
    }
    return 0;
}
