/* rowpack.c — see rowpack.h. */
#include "rowpack.h"

#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#include "tn_code.h"

void tn_rowpack_scratch_init(tn_rowpack_scratch *s) { memset(s, 0, sizeof *s); }

void tn_rowpack_scratch_free(tn_rowpack_scratch *s)
{
    tn_wr_free(&s->raw);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

int tn_rowpack_encode(const tn_val *vals, size_t n, int compress, tn_rowpack_scratch *s, tn_wr *out)
{
    tn_wr *raw = &s->raw;
    raw->len = 0;
    raw->oom = 0;
    tn_wr_varint(raw, n);
    for (size_t i = 0; i < n; i++) tn_val_encode(&vals[i], raw);
    if (raw->oom) return TN_NOMEM;
    if (raw->len > TN_COLL_MAX_PAYLOAD) return TN_TOO_LARGE;

    if (compress && raw->len >= TN_ROWPACK_LZ4_THRESHOLD) {
        int bound = LZ4_compressBound((int)raw->len);
        size_t start = out->len;
        tn_wr_u8(out, TN_ROWPACK_LZ4);
        tn_wr_varint(out, raw->len);
        if (tn_wr_reserve(out, (size_t)bound)) return TN_NOMEM;
        int clen = LZ4_compress_default((const char *)raw->p, (char *)out->p + out->len, (int)raw->len, bound);
        if (clen > 0 && (size_t)clen + (out->len - start) < raw->len + 1) {
            out->len += (size_t)clen;
            return TN_SUCCESS;
        }
        out->len = start; /* LZ4 did not pay: store raw */
    }
    tn_wr_u8(out, TN_ROWPACK_RAW);
    tn_wr_raw(out, raw->p, raw->len);
    return out->oom ? TN_NOMEM : TN_SUCCESS;
}

static int decode_values(const uint8_t *p, size_t len, size_t n, tn_val *out)
{
    tn_rd r;
    tn_rd_init(&r, p, len);
    uint64_t count = tn_rd_varint(&r);
    if (r.err || count != n) return TN_CLIENT_REQ_ERROR;
    for (size_t i = 0; i < n; i++)
        if (tn_val_decode(&r, TN_COLL_MAX_PAYLOAD, &out[i]) != 0) return TN_CLIENT_REQ_ERROR;
    if (r.err || tn_rd_left(&r) != 0) return TN_CLIENT_REQ_ERROR;
    return TN_SUCCESS;
}

int tn_rowpack_decode(const uint8_t *p, size_t len, size_t n, tn_val *out, tn_rowpack_scratch *s)
{
    tn_rd r;
    tn_rd_init(&r, p, len);
    uint8_t flag = tn_rd_u8(&r);
    if (r.err) return TN_CLIENT_REQ_ERROR;
    if (flag == TN_ROWPACK_RAW) return decode_values(p + 1, len - 1, n, out);
    if (flag != TN_ROWPACK_LZ4) return TN_CLIENT_REQ_ERROR;

    uint64_t raw_len = tn_rd_varint(&r);
    if (r.err || raw_len == 0 || raw_len > TN_COLL_MAX_PAYLOAD) return TN_CLIENT_REQ_ERROR;
    size_t clen = tn_rd_left(&r);
    if (clen == 0 || clen > (size_t)INT32_MAX) return TN_CLIENT_REQ_ERROR;
    if (s->cap < raw_len) {
        uint8_t *b = realloc(s->buf, (size_t)raw_len);
        if (!b) return TN_NOMEM;
        s->buf = b;
        s->cap = (size_t)raw_len;
    }
    int got = LZ4_decompress_safe((const char *)p + r.off, (char *)s->buf, (int)clen, (int)raw_len);
    if (got < 0 || (uint64_t)got != raw_len) return TN_CLIENT_REQ_ERROR;
    return decode_values(s->buf, (size_t)raw_len, n, out);
}
