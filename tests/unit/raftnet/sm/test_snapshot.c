/* test_snapshot.c — snapshot framing (raftnet/sm/snapshot.h): round trips, corruption, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"
#include "snapshot.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(rng_next(&seed) >> 56);
}

static void fill_text(uint8_t *p, size_t n)
{
    static const char words[] = "users.alice.name=admin;users.bob.role=ops;locks.job.owner=42;";
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)words[(i * 7 + i / 61) % (sizeof words - 1)];
}

/* Packs raw (after `prefix` unrelated bytes already in the writer), unpacks, compares. Returns the
 * frame length. */
static size_t round_trip(const uint8_t *raw, size_t n, size_t prefix)
{
    tn_wr w;
    tn_wr_init(&w);
    for (size_t i = 0; i < prefix; i++) tn_wr_u8(&w, 0xEE);
    assert_int_equal(tn_snapshot_pack(raw, n, &w), TN_SUCCESS);
    assert_false(w.oom);
    for (size_t i = 0; i < prefix; i++) assert_int_equal(w.p[i], 0xEE);
    uint8_t *out = NULL;
    size_t out_len = 123;
    assert_int_equal(tn_snapshot_unpack(w.p + prefix, w.len - prefix, &out, &out_len), TN_SUCCESS);
    assert_non_null(out);
    assert_int_equal(out_len, n);
    if (n) assert_memory_equal(out, raw, n);
    free(out);
    size_t frame = w.len - prefix;
    tn_wr_free(&w);
    return frame;
}

static void test_round_trips(void **state)
{
    (void)state;
    /* empty */
    assert_int_equal(round_trip(NULL, 0, 0), TN_SNAPSHOT_HEADER);
    /* small */
    const uint8_t small[] = "hello, snapshot";
    assert_int_equal(round_trip(small, sizeof small, 3), TN_SNAPSHOT_HEADER + sizeof small); /* stored */
    /* incompressible: stored, frame = header + raw */
    size_t n = 300000;
    uint8_t *rnd = malloc(n);
    fill_random(rnd, n, 7);
    assert_int_equal(round_trip(rnd, n, 0), TN_SNAPSHOT_HEADER + n);
    free(rnd);
    /* compressible: LZ4 makes it much smaller */
    n = 1 << 20;
    uint8_t *txt = malloc(n);
    fill_text(txt, n);
    assert_true(round_trip(txt, n, 0) < n / 4);
    free(txt);
}

static void test_ten_megabytes_mixed(void **state)
{
    (void)state;
    /* 10 MB across three chunks: text, random (a stored chunk inside an LZ4 frame), text */
    size_t n = 10u * 1000 * 1000;
    uint8_t *raw = malloc(n);
    fill_text(raw, n);
    fill_random(raw + TN_SNAPSHOT_CHUNK, TN_SNAPSHOT_CHUNK, 99);
    size_t frame = round_trip(raw, n, 0);
    assert_true(frame < n);
    assert_true(frame > TN_SNAPSHOT_CHUNK); /* the random chunk is stored as is */
    free(raw);
}

static void pack(const uint8_t *raw, size_t n, uint8_t **img, size_t *len)
{
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_snapshot_pack(raw, n, &w), TN_SUCCESS);
    *img = tn_wr_take(&w, len);
}

static void expect_reject(const uint8_t *img, size_t len)
{
    uint8_t *out = (uint8_t *)1;
    size_t out_len = 99;
    assert_int_equal(tn_snapshot_unpack(img, len, &out, &out_len), TN_CLIENT_REQ_ERROR);
    assert_null(out);
    assert_int_equal(out_len, 0);
}

static void check_corruption(const uint8_t *raw, size_t n)
{
    uint8_t *img;
    size_t len;
    pack(raw, n, &img, &len);
    uint8_t *bad = malloc(len + 1);
    /* every byte, two different flips */
    for (size_t i = 0; i < len; i++) {
        for (int f = 0; f < 2; f++) {
            memcpy(bad, img, len);
            bad[i] ^= f ? 0x80 : 0x01;
            expect_reject(bad, len);
        }
    }
    /* every truncation, and one byte too many */
    for (size_t cut = 0; cut < len; cut++) expect_reject(img, cut);
    memcpy(bad, img, len);
    bad[len] = 0;
    expect_reject(bad, len + 1);
    free(bad);
    free(img);
}

static void test_corruption_detected(void **state)
{
    (void)state;
    uint8_t txt[600];
    fill_text(txt, sizeof txt);
    check_corruption(txt, sizeof txt); /* LZ4 frame */
    uint8_t rnd[64];
    fill_random(rnd, sizeof rnd, 3);
    check_corruption(rnd, sizeof rnd); /* stored frame */
    check_corruption(NULL, 0);         /* empty frame */
}

static void test_bad_header_fields(void **state)
{
    (void)state;
    uint8_t txt[600];
    fill_text(txt, sizeof txt);
    uint8_t *img;
    size_t len;
    pack(txt, sizeof txt, &img, &len);
    assert_int_equal(img[5], 1); /* compressible text is LZ4 */
    /* a header rewritten consistently (CRC recomputed) is still checked field by field */
    struct { size_t at; uint8_t v; } edits[] = {
        {0, 'X'},          /* magic */
        {4, 2},            /* version */
        {4, 0},            /* version */
        {5, 2},            /* unknown flags */
        {5, 0},            /* stored, but raw_len != payload_len */
        {6, 0x01},         /* raw_len wrong: LZ4 yields another size */
        {13, 0x10},        /* raw_len absurd */
    };
    for (size_t e = 0; e < sizeof edits / sizeof *edits; e++) {
        uint8_t *bad = malloc(len);
        memcpy(bad, img, len);
        bad[edits[e].at] = edits[e].v;
        uint32_t crc = tn_crc32c(tn_crc32c(0, bad, 22), bad + TN_SNAPSHOT_HEADER, len - TN_SNAPSHOT_HEADER);
        bad[22] = (uint8_t)crc;
        bad[23] = (uint8_t)(crc >> 8);
        bad[24] = (uint8_t)(crc >> 16);
        bad[25] = (uint8_t)(crc >> 24);
        expect_reject(bad, len);
        free(bad);
    }
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_ten_megabytes_mixed),
        cmocka_unit_test(test_corruption_detected),
        cmocka_unit_test(test_bad_header_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
