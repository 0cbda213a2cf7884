/* snapshot.h — framing of snapshot images (tree images now, whole state-machine images later):
 * LZ4 compression plus a CRC-32C, with every bound checked on the way back.
 *
 * Frame (integers little-endian):
 *   off  0  "TNSP"          magic
 *   off  4  u8  version      TN_SNAPSHOT_VERSION (1)
 *   off  5  u8  flags        0 = stored (payload is the raw bytes), 1 = LZ4 chunks
 *   off  6  u64 raw_len      bytes of the original image
 *   off 14  u64 payload_len  bytes following the header; the frame ends exactly there
 *   off 22  u32 crc          CRC-32C over bytes [0, 22) of the header and then the payload, so a
 *                            flipped byte anywhere in the frame is detected
 *   off 26  payload
 * LZ4 payload: the raw image cut into chunks of TN_SNAPSHOT_CHUNK bytes (the last one shorter), each
 * encoded as u32 word + bytes: word bit 31 set = the chunk is stored (length = low 31 bits, must equal
 * the chunk's raw size), clear = an LZ4 block of that many bytes that must decompress to exactly the
 * chunk's raw size. Chunking keeps every LZ4 call far below its int limit, so images of any size work.
 * Pack stores the whole image (flags 0) when LZ4 does not make it smaller.
 *
 * Thread: any; no shared state.
 */
#ifndef TARN_SNAPSHOT_H
#define TARN_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "tn_code.h"

#define TN_SNAPSHOT_VERSION 1
#define TN_SNAPSHOT_HEADER 26
#define TN_SNAPSHOT_CHUNK (4u << 20)

/* Appends the framed image of raw[0..raw_len) to out (raw may be NULL when raw_len is 0).
 * SUCCESS, or NOMEM (out->oom set; out may then hold a partial frame — discard it). */
int tn_snapshot_pack(const void *raw, size_t raw_len, tn_wr *out);

/* Checks and decodes a frame that is exactly img[0..len). On SUCCESS *raw is a malloc'd buffer the
 * caller frees (non-NULL even when *raw_len is 0). CLIENT_REQ_ERROR for a bad magic, version, flags,
 * length, checksum or payload; TOO_LARGE when raw_len does not fit in memory; NOMEM. On failure *raw
 * is NULL and *raw_len 0. */
int tn_snapshot_unpack(const void *img, size_t len, uint8_t **raw, size_t *raw_len);

#endif
