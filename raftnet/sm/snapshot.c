/* snapshot.c — framing of snapshot images (contract: snapshot.h). */
#include "snapshot.h"

#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

#define STORED_BIT 0x80000000u

static void patch_u64(tn_wr *w, size_t at, uint64_t v)
{
    tn_wr_patch_u32(w, at, (uint32_t)v);
    tn_wr_patch_u32(w, at + 4, (uint32_t)(v >> 32));
}

/* Writes the LZ4 chunks of raw after w->len. Returns 0, or -1 on allocation failure. */
static int write_chunks(const uint8_t *raw, size_t raw_len, tn_wr *w)
{
    for (size_t off = 0; off < raw_len;) {
        size_t n = raw_len - off < TN_SNAPSHOT_CHUNK ? raw_len - off : TN_SNAPSHOT_CHUNK;
        int bound = LZ4_compressBound((int)n);
        size_t word_at = w->len;
        if (tn_wr_reserve(w, 4 + (size_t)bound)) return -1;
        int c = LZ4_compress_default((const char *)raw + off, (char *)w->p + word_at + 4, (int)n, bound);
        w->len += 4;
        if (c > 0 && (size_t)c < n) {
            w->len += (size_t)c;
            tn_wr_patch_u32(w, word_at, (uint32_t)c);
        } else {
            memcpy(w->p + w->len, raw + off, n);
            w->len += n;
            tn_wr_patch_u32(w, word_at, STORED_BIT | (uint32_t)n);
        }
        off += n;
    }
    return 0;
}

int tn_snapshot_pack(const void *raw, size_t raw_len, tn_wr *out)
{
    const uint8_t *r = raw;
    size_t start = out->len;
    tn_wr_raw(out, "TNSP", 4);
    tn_wr_u8(out, TN_SNAPSHOT_VERSION);
    tn_wr_u8(out, 1);
    tn_wr_u64(out, raw_len);
    tn_wr_u64(out, 0); /* payload length, patched below */
    tn_wr_u32(out, 0); /* crc, patched below */
    if (out->oom) return TN_NOMEM;
    size_t payload_at = out->len;
    if (write_chunks(r, raw_len, out)) return TN_NOMEM;
    if (out->len - payload_at >= raw_len) { /* LZ4 did not help: store the image as is */
        out->len = payload_at;
        out->p[start + 5] = 0;
        tn_wr_raw(out, r, raw_len);
        if (out->oom) return TN_NOMEM;
    }
    size_t payload_len = out->len - payload_at;
    patch_u64(out, start + 14, payload_len);
    uint32_t crc = tn_crc32c(0, out->p + start, 22);
    crc = tn_crc32c(crc, out->p + payload_at, payload_len);
    tn_wr_patch_u32(out, start + 22, crc);
    return TN_SUCCESS;
}

/* Decodes the LZ4 chunk sequence of p[0..n) into dst[0..raw_len). 0 or -1. */
static int read_chunks(const uint8_t *p, size_t n, uint8_t *dst, size_t raw_len)
{
    tn_rd rd;
    tn_rd_init(&rd, p, n);
    for (size_t off = 0; off < raw_len;) {
        size_t want = raw_len - off < TN_SNAPSHOT_CHUNK ? raw_len - off : TN_SNAPSHOT_CHUNK;
        uint32_t word = tn_rd_u32(&rd);
        size_t clen = word & ~STORED_BIT;
        const uint8_t *c = tn_rd_raw(&rd, clen);
        if (!c) return -1;
        if (word & STORED_BIT) {
            if (clen != want) return -1;
            memcpy(dst + off, c, want);
        } else {
            if (clen == 0 || clen > (size_t)LZ4_compressBound((int)want)) return -1;
            int got = LZ4_decompress_safe((const char *)c, (char *)dst + off, (int)clen, (int)want);
            if (got < 0 || (size_t)got != want) return -1;
        }
        off += want;
    }
    return tn_rd_left(&rd) == 0 && !rd.err ? 0 : -1;
}

int tn_snapshot_unpack(const void *img, size_t len, uint8_t **raw, size_t *raw_len)
{
    *raw = NULL;
    *raw_len = 0;
    tn_rd r;
    tn_rd_init(&r, img, len);
    const uint8_t *magic = tn_rd_raw(&r, 4);
    uint8_t version = tn_rd_u8(&r), flags = tn_rd_u8(&r);
    uint64_t rlen = tn_rd_u64(&r), plen = tn_rd_u64(&r);
    uint32_t crc = tn_rd_u32(&r);
    if (r.err || memcmp(magic, "TNSP", 4) != 0 || version != TN_SNAPSHOT_VERSION || flags > 1)
        return TN_CLIENT_REQ_ERROR;
    if (plen != tn_rd_left(&r)) return TN_CLIENT_REQ_ERROR;
    const uint8_t *payload = (const uint8_t *)img + TN_SNAPSHOT_HEADER;
    uint32_t got = tn_crc32c(tn_crc32c(0, img, 22), payload, (size_t)plen);
    if (got != crc) return TN_CLIENT_REQ_ERROR;
    if (flags == 0 && rlen != plen) return TN_CLIENT_REQ_ERROR;
    if (flags == 1) {
        /* every chunk costs at least 5 bytes and LZ4 expands at most ~255x: reject absurd raw lengths
         * before allocating for them */
        uint64_t chunks = rlen / TN_SNAPSHOT_CHUNK + (rlen % TN_SNAPSHOT_CHUNK != 0);
        if (chunks > plen / 5 || rlen / 256 > plen) return TN_CLIENT_REQ_ERROR;
    }
    if (rlen > SIZE_MAX - 1) return TN_TOO_LARGE;
    uint8_t *out = malloc(rlen ? (size_t)rlen : 1);
    if (!out) return TN_NOMEM;
    if (flags == 0) {
        if (rlen) memcpy(out, payload, (size_t)rlen);
    } else if (read_chunks(payload, (size_t)plen, out, (size_t)rlen)) {
        free(out);
        return TN_CLIENT_REQ_ERROR;
    }
    *raw = out;
    *raw_len = (size_t)rlen;
    return TN_SUCCESS;
}
