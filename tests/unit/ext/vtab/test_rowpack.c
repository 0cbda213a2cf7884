/* test_rowpack.c — row payload packing (ext/vtab/rowpack.c): round trips of every value type, NULLs, the
 * LZ4 threshold (compression happens at and above it when it pays, never below it or when not asked for),
 * the size limit, and corrupt or truncated payloads rejected without reading outside the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>

#include "codec.h"
#include "coll_codec.h"
#include "rowpack.h"
#include "tn_code.h"

#define MAXV 64

/* Encodes vals into a fresh buffer. Returns the rowpack code; *out owns the payload. */
static int pack(const tn_val *vals, size_t n, int compress, tn_wr *out)
{
    tn_rowpack_scratch s;
    tn_rowpack_scratch_init(&s);
    tn_wr_init(out);
    int rc = tn_rowpack_encode(vals, n, compress, &s, out);
    tn_rowpack_scratch_free(&s);
    return rc;
}

/* Length of the raw `values` encoding of vals (n:varint val*n), which the threshold applies to. */
static size_t raw_len(const tn_val *vals, size_t n)
{
    tn_wr w;
    tn_wr_init(&w);
    tn_wr_varint(&w, n);
    for (size_t i = 0; i < n; i++) tn_val_encode(&vals[i], &w);
    size_t len = w.len;
    tn_wr_free(&w);
    return len;
}

static void assert_same_val(const tn_val *a, const tn_val *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case TN_V_INT: assert_true(a->u.i == b->u.i); break;
    case TN_V_REAL: assert_memory_equal(&a->u.r, &b->u.r, sizeof a->u.r); break; /* bit for bit: -0.0 too */
    case TN_V_TEXT:
    case TN_V_BLOB:
        assert_int_equal(a->n, b->n);
        if (a->n) assert_memory_equal(a->u.p, b->u.p, a->n);
        break;
    default: break;
    }
}

/* Packs vals, checks the flag, decodes them back and compares. Returns the payload length. */
static size_t round_trip(const tn_val *vals, size_t n, int compress, int expect_flag)
{
    tn_wr out;
    tn_val back[MAXV];
    tn_rowpack_scratch s;
    assert_true(n <= MAXV);
    assert_int_equal(pack(vals, n, compress, &out), TN_SUCCESS);
    assert_true(out.len >= 1);
    assert_int_equal(out.p[0], expect_flag);
    tn_rowpack_scratch_init(&s);
    memset(back, 0xa5, sizeof back);
    assert_int_equal(tn_rowpack_decode(out.p, out.len, n, back, &s), TN_SUCCESS);
    for (size_t i = 0; i < n; i++) {
        assert_same_val(&vals[i], &back[i]);
        /* TEXT/BLOB bytes point into the payload (raw) or into the scratch buffer (LZ4) */
        if ((back[i].type == TN_V_TEXT || back[i].type == TN_V_BLOB) && back[i].n) {
            const uint8_t *lo = expect_flag == TN_ROWPACK_RAW ? out.p : s.buf;
            size_t span = expect_flag == TN_ROWPACK_RAW ? out.len : s.cap;
            assert_true(back[i].u.p >= lo && back[i].u.p + back[i].n <= lo + span);
        }
    }
    /* a different number of values is not this payload */
    assert_int_equal(tn_rowpack_decode(out.p, out.len, n + 1, back, &s), TN_CLIENT_REQ_ERROR);
    if (n) assert_int_equal(tn_rowpack_decode(out.p, out.len, n - 1, back, &s), TN_CLIENT_REQ_ERROR);
    size_t len = out.len;
    tn_rowpack_scratch_free(&s);
    tn_wr_free(&out);
    return len;
}

/* ---- round trips --------------------------------------------------------------------------------- */

static void test_every_type_round_trips(void **state)
{
    static const uint8_t bin[] = {0, 1, 2, 0xff, 0x80, 0, 0x7f};
    (void)state;
    tn_val vals[] = {
        tn_val_null(),
        tn_val_int(0),
        tn_val_int(1),
        tn_val_int(-1),
        tn_val_int(INT64_MAX),
        tn_val_int(INT64_MIN),
        tn_val_int((int64_t)1 << 40),
        tn_val_real(0.0),
        tn_val_real(-0.0),
        tn_val_real(1.5),
        tn_val_real(-1e300),
        tn_val_real(DBL_MIN),
        tn_val_real(INFINITY),
        tn_val_text("", 0),
        tn_val_text("hello", 5),
        tn_val_text("h\xc3\xa9llo \xe2\x82\xac", 11), /* UTF-8 */
        tn_val_text("a\0b", 3),                     /* a NUL inside text */
        tn_val_blob("", 0),
        tn_val_blob(bin, sizeof bin),
        tn_val_null(),
    };
    size_t n = sizeof vals / sizeof vals[0];
    /* raw: no compression asked for */
    size_t len = round_trip(vals, n, 0, TN_ROWPACK_RAW);
    assert_int_equal(len, 1 + raw_len(vals, n)); /* flag + the values as they are */
    /* one of each type alone */
    for (size_t i = 0; i < n; i++) round_trip(&vals[i], 1, 0, TN_ROWPACK_RAW);
    /* no values at all (a table with only key and index columns) */
    assert_int_equal(round_trip(vals, 0, 1, TN_ROWPACK_RAW), 2);
}

static void test_nulls_only(void **state)
{
    tn_val vals[MAXV];
    (void)state;
    for (size_t i = 0; i < MAXV; i++) vals[i] = tn_val_null();
    /* 64 NULLs: 1 + 64 raw bytes, at the threshold and very compressible */
    assert_int_equal(raw_len(vals, MAXV), 65);
    size_t len = round_trip(vals, MAXV, 1, TN_ROWPACK_LZ4);
    assert_true(len < 1 + 65);
    round_trip(vals, MAXV, 0, TN_ROWPACK_RAW);
}

/* ---- the LZ4 threshold --------------------------------------------------------------------------- */

static void test_lz4_threshold(void **state)
{
    char text[1024];
    (void)state;
    memset(text, 'a', sizeof text);
    /* one TEXT value of length L encodes as count(1) + type(1) + len(1) + L = L + 3 raw bytes */
    tn_val below = tn_val_text(text, TN_ROWPACK_LZ4_THRESHOLD - 4);
    tn_val at = tn_val_text(text, TN_ROWPACK_LZ4_THRESHOLD - 3);
    assert_int_equal(raw_len(&below, 1), TN_ROWPACK_LZ4_THRESHOLD - 1);
    assert_int_equal(raw_len(&at, 1), TN_ROWPACK_LZ4_THRESHOLD);

    /* below the threshold: raw even though it would compress */
    size_t len = round_trip(&below, 1, 1, TN_ROWPACK_RAW);
    assert_int_equal(len, 1 + TN_ROWPACK_LZ4_THRESHOLD - 1);
    /* at the threshold: compressed, and actually smaller than the raw payload */
    len = round_trip(&at, 1, 1, TN_ROWPACK_LZ4);
    assert_true(len < 1 + TN_ROWPACK_LZ4_THRESHOLD);
    /* well above: much smaller */
    tn_val big = tn_val_text(text, sizeof text);
    len = round_trip(&big, 1, 1, TN_ROWPACK_LZ4);
    assert_true(len < raw_len(&big, 1) / 4);
    /* not asked for (compress=none): raw whatever the size */
    len = round_trip(&big, 1, 0, TN_ROWPACK_RAW);
    assert_int_equal(len, 1 + raw_len(&big, 1));
}

static void test_lz4_only_when_it_pays(void **state)
{
    uint8_t noise[4096];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    (void)state;
    for (size_t i = 0; i < sizeof noise; i++) { /* xorshift: incompressible bytes */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise[i] = (uint8_t)x;
    }
    tn_val v = tn_val_blob(noise, sizeof noise);
    size_t len = round_trip(&v, 1, 1, TN_ROWPACK_RAW);
    assert_int_equal(len, 1 + raw_len(&v, 1));
    /* several values, some compressible: one compressed payload, every value back */
    char text[300];
    memset(text, 'q', sizeof text);
    tn_val mixed[] = {tn_val_int(7), tn_val_text(text, sizeof text), tn_val_null(), tn_val_blob(noise, 100),
                      tn_val_real(2.25), tn_val_text(text, 10)};
    round_trip(mixed, sizeof mixed / sizeof mixed[0], 1, TN_ROWPACK_LZ4);
}

static void test_scratch_is_reused_and_grows(void **state)
{
    char small[100], large[5000];
    tn_rowpack_scratch s;
    tn_wr a, b;
    tn_val out;
    (void)state;
    memset(small, 's', sizeof small);
    memset(large, 'L', sizeof large);
    tn_val vs = tn_val_text(small, sizeof small), vl = tn_val_text(large, sizeof large);
    tn_rowpack_scratch_init(&s);
    tn_wr_init(&a);
    tn_wr_init(&b);
    /* one scratch for encoding both and decoding both, in either order */
    assert_int_equal(tn_rowpack_encode(&vs, 1, 1, &s, &a), TN_SUCCESS);
    assert_int_equal(tn_rowpack_encode(&vl, 1, 1, &s, &b), TN_SUCCESS);
    assert_int_equal(a.p[0], TN_ROWPACK_LZ4);
    assert_int_equal(b.p[0], TN_ROWPACK_LZ4);
    assert_int_equal(tn_rowpack_decode(a.p, a.len, 1, &out, &s), TN_SUCCESS);
    assert_same_val(&vs, &out);
    assert_int_equal(tn_rowpack_decode(b.p, b.len, 1, &out, &s), TN_SUCCESS);
    assert_same_val(&vl, &out);
    assert_true(s.cap >= raw_len(&vl, 1));
    assert_int_equal(tn_rowpack_decode(a.p, a.len, 1, &out, &s), TN_SUCCESS);
    assert_same_val(&vs, &out);
    /* encoding appends to what out already holds */
    size_t before = a.len;
    assert_int_equal(tn_rowpack_encode(&vs, 1, 0, &s, &a), TN_SUCCESS);
    assert_int_equal(a.p[before], TN_ROWPACK_RAW);
    assert_int_equal(tn_rowpack_decode(a.p + before, a.len - before, 1, &out, &s), TN_SUCCESS);
    assert_same_val(&vs, &out);
    tn_wr_free(&a);
    tn_wr_free(&b);
    tn_rowpack_scratch_free(&s);
}

/* ---- the size limit ------------------------------------------------------------------------------ */

static void test_payload_limit(void **state)
{
    /* one BLOB of L bytes: count(1) + type(1) + len varint(4 bytes for L >= 2^21) + L raw bytes */
    size_t max_blob = TN_COLL_MAX_PAYLOAD - 6;
    uint8_t *blob = calloc(1, max_blob + 1);
    tn_val v = tn_val_blob(blob, max_blob);
    tn_wr out;
    (void)state;
    assert_non_null(blob);
    assert_int_equal(raw_len(&v, 1), TN_COLL_MAX_PAYLOAD);
    assert_int_equal(pack(&v, 1, 0, &out), TN_SUCCESS);
    assert_int_equal(out.len, 1 + TN_COLL_MAX_PAYLOAD);
    tn_wr_free(&out);

    v = tn_val_blob(blob, max_blob + 1);
    tn_rowpack_scratch s;
    tn_rowpack_scratch_init(&s);
    tn_wr_init(&out);
    tn_wr_u8(&out, 0x77); /* what out held before stays as it was */
    assert_int_equal(tn_rowpack_encode(&v, 1, 1, &s, &out), TN_TOO_LARGE);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.p[0], 0x77);
    tn_wr_free(&out);
    tn_rowpack_scratch_free(&s);
    free(blob);
}

/* ---- corrupt input ------------------------------------------------------------------------------- */

/* Decodes a copy of p[0..len) in a buffer of exactly that size (so ASan catches any read past it). */
static int decode_exact(const uint8_t *p, size_t len, size_t n)
{
    uint8_t *copy = malloc(len ? len : 1);
    tn_val out[MAXV];
    tn_rowpack_scratch s;
    tn_rowpack_scratch_init(&s);
    if (len) memcpy(copy, p, len);
    int rc = tn_rowpack_decode(copy, len, n, out, &s);
    tn_rowpack_scratch_free(&s);
    free(copy);
    return rc;
}

static void test_truncated_payloads_rejected(void **state)
{
    char text[500];
    (void)state;
    memset(text, 't', sizeof text);
    tn_val vals[] = {tn_val_int(-123456789), tn_val_text(text, sizeof text), tn_val_real(3.5), tn_val_blob("xy", 2),
                     tn_val_null()};
    size_t n = sizeof vals / sizeof vals[0];
    for (int compress = 0; compress <= 1; compress++) {
        tn_wr out;
        assert_int_equal(pack(vals, n, compress, &out), TN_SUCCESS);
        assert_int_equal(out.p[0], compress ? TN_ROWPACK_LZ4 : TN_ROWPACK_RAW);
        assert_int_equal(decode_exact(out.p, out.len, n), TN_SUCCESS);
        for (size_t cut = 0; cut < out.len; cut++)
            assert_int_equal(decode_exact(out.p, cut, n), TN_CLIENT_REQ_ERROR);
        /* a trailing byte is corruption too */
        tn_wr_u8(&out, 0);
        assert_int_equal(decode_exact(out.p, out.len, n), TN_CLIENT_REQ_ERROR);
        tn_wr_free(&out);
    }
}

static void test_corrupt_payloads_rejected(void **state)
{
    (void)state;
    /* an unknown flag, in front of otherwise valid raw values */
    const uint8_t bad_flag[] = {2, 1, TN_V_NULL};
    assert_int_equal(decode_exact(bad_flag, sizeof bad_flag, 1), TN_CLIENT_REQ_ERROR);
    const uint8_t good_raw[] = {TN_ROWPACK_RAW, 1, TN_V_NULL};
    assert_int_equal(decode_exact(good_raw, sizeof good_raw, 1), TN_SUCCESS);
    /* an unknown value type */
    const uint8_t bad_type[] = {TN_ROWPACK_RAW, 1, 9};
    assert_int_equal(decode_exact(bad_type, sizeof bad_type, 1), TN_CLIENT_REQ_ERROR);
    /* a NaN real (values never hold NaN) */
    uint8_t nan_real[3 + 8] = {TN_ROWPACK_RAW, 1, TN_V_REAL};
    double nan = NAN;
    uint64_t bits;
    memcpy(&bits, &nan, sizeof bits);
    tn_put_le64(nan_real + 3, bits);
    assert_int_equal(decode_exact(nan_real, sizeof nan_real, 1), TN_CLIENT_REQ_ERROR);
    /* a TEXT length beyond the payload */
    const uint8_t long_text[] = {TN_ROWPACK_RAW, 1, TN_V_TEXT, 100, 'a', 'b'};
    assert_int_equal(decode_exact(long_text, sizeof long_text, 1), TN_CLIENT_REQ_ERROR);
    /* a count that says more values than there are */
    const uint8_t short_count[] = {TN_ROWPACK_RAW, 2, TN_V_NULL};
    assert_int_equal(decode_exact(short_count, sizeof short_count, 2), TN_CLIENT_REQ_ERROR);

    /* LZ4 framing: a real compressed payload, then its header lies */
    char text[200];
    memset(text, 'c', sizeof text);
    tn_val v = tn_val_text(text, sizeof text);
    tn_wr out;
    assert_int_equal(pack(&v, 1, 1, &out), TN_SUCCESS);
    assert_int_equal(out.p[0], TN_ROWPACK_LZ4);
    size_t raw = raw_len(&v, 1); /* 204: a 2-byte varint after the flag */
    assert_true(raw >= 128 && raw < 16384);
    assert_int_equal(out.p[1], (uint8_t)(0x80 | (raw & 0x7f)));
    assert_int_equal(out.p[2], (uint8_t)(raw >> 7));
    const uint8_t *block = out.p + 3;
    size_t block_len = out.len - 3;
    tn_wr bad;
    for (int k = 0; k < 5; k++) {
        tn_wr_init(&bad);
        tn_wr_u8(&bad, TN_ROWPACK_LZ4);
        uint64_t claimed = k == 0 ? raw + 1 : k == 1 ? raw - 1 : k == 2 ? 0 : (uint64_t)TN_COLL_MAX_PAYLOAD + 1;
        tn_wr_varint(&bad, claimed);
        if (k != 4) tn_wr_raw(&bad, block, block_len);
        else { /* right size, no block at all */
            bad.len = 0;
            tn_wr_u8(&bad, TN_ROWPACK_LZ4);
            tn_wr_varint(&bad, raw);
        }
        assert_int_equal(decode_exact(bad.p, bad.len, 1), TN_CLIENT_REQ_ERROR);
        tn_wr_free(&bad);
    }
    /* a block that is not LZ4 at all */
    tn_wr_init(&bad);
    tn_wr_u8(&bad, TN_ROWPACK_LZ4);
    tn_wr_varint(&bad, raw);
    for (int i = 0; i < 16; i++) tn_wr_u8(&bad, 0xff);
    assert_int_equal(decode_exact(bad.p, bad.len, 1), TN_CLIENT_REQ_ERROR);
    tn_wr_free(&bad);
    tn_wr_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_nulls_only),
        cmocka_unit_test(test_lz4_threshold),
        cmocka_unit_test(test_lz4_only_when_it_pays),
        cmocka_unit_test(test_scratch_is_reused_and_grows),
        cmocka_unit_test(test_payload_limit),
        cmocka_unit_test(test_truncated_payloads_rejected),
        cmocka_unit_test(test_corrupt_payloads_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
