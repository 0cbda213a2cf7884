/* crc32c.h — CRC-32C (Castagnoli), used by log records and snapshot images.
 * tn_crc32c(0, p, n) is the CRC of p[0..n); pass a previous result as `crc` to continue over more bytes.
 * Thread: any (the table is computed at compile time). */
#ifndef TARN_CRC32C_H
#define TARN_CRC32C_H
#include <stddef.h>
#include <stdint.h>
uint32_t tn_crc32c(uint32_t crc, const void *p, size_t n);
#endif
