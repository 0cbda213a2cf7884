/* codec.h — bounded byte reader and growable byte writer used by every encoder/decoder in Tarn.
 *
 * Encoding primitives: u8, fixed little-endian u32/u64, unsigned LEB128 varints (at most 10 bytes),
 * zigzag signed varints, and length-prefixed byte strings (varint length, then bytes).
 *
 * Reader contract: a tn_rd never reads outside [p, p+len). The first failed read sets `err` and every
 * later read returns 0 / NULL without touching memory, so a decoder may read a whole structure and check
 * `err` once at the end. Byte strings returned by tn_rd_bytes point INTO the input (no copy, no ownership).
 *
 * Writer contract: a tn_wr owns its buffer (malloc'd). The first allocation failure sets `oom`; later
 * writes are ignored. The caller frees with tn_wr_free, or takes the buffer with tn_wr_take.
 *
 * Thread: any; a reader/writer must not be shared between threads without a lock.
 */
#ifndef TARN_CODEC_H
#define TARN_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct tn_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    int err; /* 0 while every read so far was in bounds and well formed */
} tn_rd;

typedef struct tn_wr {
    uint8_t *p;
    size_t len;
    size_t cap;
    int oom;
} tn_wr;

/* ---- raw byte helpers (no bounds: the caller owns a buffer of the right size) ------------------------ */
#define TN_VARINT_MAX 10u /* bytes of the longest varint (a u64) */

static inline uint32_t tn_get_le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t tn_get_le64(const uint8_t *b)
{
    return (uint64_t)tn_get_le32(b) | (uint64_t)tn_get_le32(b + 4) << 32;
}

static inline void tn_put_le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static inline void tn_put_le64(uint8_t *b, uint64_t v)
{
    tn_put_le32(b, (uint32_t)v);
    tn_put_le32(b + 4, (uint32_t)(v >> 32));
}

/* Writes v as an unsigned LEB128 varint at b (room for TN_VARINT_MAX bytes); returns the bytes written. */
static inline size_t tn_put_varint(uint8_t *b, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        b[n++] = c | (v ? 0x80 : 0);
    } while (v);
    return n;
}

/* ---- bounds-checked reader and growing writer ----------------------------------------------------- */
static inline void tn_rd_init(tn_rd *r, const void *p, size_t len)
{
    r->p = (const uint8_t *)p;
    r->len = len;
    r->off = 0;
    r->err = 0;
}

static inline size_t tn_rd_left(const tn_rd *r) { return r->err ? 0 : r->len - r->off; }

static inline uint8_t tn_rd_u8(tn_rd *r)
{
    if (r->err || r->off >= r->len) { r->err = 1; return 0; }
    return r->p[r->off++];
}

static inline uint32_t tn_rd_u32(tn_rd *r)
{
    if (r->err || r->len - r->off < 4) { r->err = 1; return 0; }
    const uint8_t *b = r->p + r->off;
    r->off += 4;
    return tn_get_le32(b);
}

static inline uint64_t tn_rd_u64(tn_rd *r)
{
    uint64_t lo = tn_rd_u32(r);
    uint64_t hi = tn_rd_u32(r);
    return lo | hi << 32;
}

static inline uint64_t tn_rd_varint(tn_rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->err || r->off >= r->len) { r->err = 1; return 0; }
        uint8_t b = r->p[r->off++];
        if (shift == 63 && (b & 0x7e)) { r->err = 1; return 0; } /* would overflow 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->err = 1;
    return 0;
}

static inline int64_t tn_rd_svarint(tn_rd *r)
{
    uint64_t u = tn_rd_varint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Reads a varint length, then that many bytes; *out_len receives the length. Fails (err=1, NULL) if
 * the length exceeds `max` or the bytes left. The result points into the input buffer. */
static inline const uint8_t *tn_rd_bytes(tn_rd *r, size_t max, size_t *out_len)
{
    uint64_t n = tn_rd_varint(r);
    *out_len = 0;
    if (r->err || n > max || n > r->len - r->off) { r->err = 1; return NULL; }
    const uint8_t *b = r->p + r->off;
    r->off += (size_t)n;
    *out_len = (size_t)n;
    return b;
}

/* Reads exactly n raw bytes (no length prefix). */
static inline const uint8_t *tn_rd_raw(tn_rd *r, size_t n)
{
    if (r->err || n > r->len - r->off) { r->err = 1; return NULL; }
    const uint8_t *b = r->p + r->off;
    r->off += n;
    return b;
}

static inline void tn_wr_init(tn_wr *w) { memset(w, 0, sizeof *w); }

static inline void tn_wr_free(tn_wr *w)
{
    free(w->p);
    memset(w, 0, sizeof *w);
}

/* Hands the buffer to the caller (who frees it with free()) and resets the writer. */
static inline uint8_t *tn_wr_take(tn_wr *w, size_t *len)
{
    uint8_t *p = w->p;
    *len = w->len;
    memset(w, 0, sizeof *w);
    return p;
}

/* Makes room for n more bytes; returns 0, or -1 (and sets oom) on allocation failure. */
static inline int tn_wr_reserve(tn_wr *w, size_t n)
{
    if (w->oom) return -1;
    if (w->cap - w->len >= n) return 0;
    size_t cap = w->cap ? w->cap : 64;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) { w->oom = 1; return -1; }
        cap *= 2;
    }
    uint8_t *p = (uint8_t *)realloc(w->p, cap);
    if (!p) { w->oom = 1; return -1; }
    w->p = p;
    w->cap = cap;
    return 0;
}

static inline void tn_wr_raw(tn_wr *w, const void *b, size_t n)
{
    if (n == 0 || tn_wr_reserve(w, n)) return;
    memcpy(w->p + w->len, b, n);
    w->len += n;
}

static inline void tn_wr_u8(tn_wr *w, uint8_t v) { tn_wr_raw(w, &v, 1); }

static inline void tn_wr_u32(tn_wr *w, uint32_t v)
{
    uint8_t b[4];
    tn_put_le32(b, v);
    tn_wr_raw(w, b, 4);
}

static inline void tn_wr_u64(tn_wr *w, uint64_t v)
{
    tn_wr_u32(w, (uint32_t)v);
    tn_wr_u32(w, (uint32_t)(v >> 32));
}

static inline void tn_wr_varint(tn_wr *w, uint64_t v)
{
    uint8_t b[TN_VARINT_MAX];
    tn_wr_raw(w, b, tn_put_varint(b, v));
}

static inline void tn_wr_svarint(tn_wr *w, int64_t v)
{
    tn_wr_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static inline void tn_wr_bytes(tn_wr *w, const void *b, size_t n)
{
    tn_wr_varint(w, n);
    tn_wr_raw(w, b, n);
}

/* Overwrites 4 bytes at `at` (used to patch a length or checksum written earlier). */
static inline void tn_wr_patch_u32(tn_wr *w, size_t at, uint32_t v)
{
    if (w->oom || at + 4 > w->len) return;
    tn_put_le32(w->p + at, v);
}

#endif
