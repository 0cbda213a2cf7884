/* rowpack.h — packing of a collection row's plain columns into the opaque payload the server stores.
 *
 * The client extracts the primary key and the index values itself (they travel as typed values next to
 * the payload); everything else — the plain and JSON columns, in schema order — is packed here:
 *
 *   payload := flag:u8 body
 *     flag TN_ROWPACK_RAW (0): body = values
 *     flag TN_ROWPACK_LZ4 (1): body = raw_len:varint lz4-block   (the LZ4 block decompresses to `values`)
 *   values  := n:varint val*n                  (val as coll_codec.h tn_val_encode)
 *
 * Compression is used only when the collection is declared compress=lz4, the raw `values` are at least
 * TN_ROWPACK_LZ4_THRESHOLD bytes, and the compressed block is smaller than the raw bytes; otherwise the row
 * is stored raw (the flag says which, so both kinds coexist in one collection).
 *
 * Decoding checks every bound: a truncated, oversized or otherwise corrupt payload gives CLIENT_REQ_ERROR,
 * never a read outside the input.
 *
 * Ownership: decoded TEXT/BLOB values point into the payload (raw) or into the caller's scratch buffer
 * (LZ4), which must outlive them. Memory via malloc (scratch freed by tn_rowpack_scratch_free).
 * Thread: any; no shared state.
 */
#ifndef TARN_ROWPACK_H
#define TARN_ROWPACK_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "coll_codec.h"

#define TN_ROWPACK_RAW 0
#define TN_ROWPACK_LZ4 1
#define TN_ROWPACK_LZ4_THRESHOLD 64u

typedef struct tn_rowpack_scratch {
    tn_wr raw;  /* encoder: the raw values before compression */
    uint8_t *buf; /* decoder: decompressed bytes */
    size_t cap;
} tn_rowpack_scratch;

void tn_rowpack_scratch_init(tn_rowpack_scratch *s);
void tn_rowpack_scratch_free(tn_rowpack_scratch *s);

/* Appends the payload of n values to out. compress: 1 to allow LZ4 (see the rule above).
 * SUCCESS, NOMEM, or TOO_LARGE (payload above TN_COLL_MAX_PAYLOAD). */
int tn_rowpack_encode(const tn_val *vals, size_t n, int compress, tn_rowpack_scratch *s, tn_wr *out);

/* Decodes a payload holding exactly n values into out[0..n). SUCCESS, CLIENT_REQ_ERROR (corrupt, or a
 * different number of values), NOMEM. */
int tn_rowpack_decode(const uint8_t *p, size_t len, size_t n, tn_val *out, tn_rowpack_scratch *s);

#endif
