/*
 * broker/crc32c.h — CRC32C (Castagnoli), the checksum of the wire format and
 * of the durable log.
 *
 * Software only (table-driven, slice-by-8), so the result never depends on
 * the CPU: the simulator and the real runtime compute identical checksums.
 * The tables are `static const`; there is no state and nothing to init.
 *
 * Conventions are zlib's crc32(): the value passed in and returned is a
 * finished CRC (initial value and final xor already applied), so
 *     crc32c(ab) == crc32c_extend(crc32c(a), b)
 * and the CRC of the empty string is 0. Known answer:
 *     crc32c("123456789", 9) == 0xE3069283.
 */
#ifndef CHAOSLAB_BROKER_CRC32C_H
#define CHAOSLAB_BROKER_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of `len` bytes at `data` (may be NULL only when len == 0). The caller
 * keeps ownership of `data`; it is only read. Never fails. */
uint32_t crc32c(const void *data, size_t len);

/* Continue `crc` (a finished CRC32C of the bytes before, 0 for none) over `len`
 * more bytes at `data` (NULL allowed only when len == 0). Never fails. */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len);

#endif /* CHAOSLAB_BROKER_CRC32C_H */
