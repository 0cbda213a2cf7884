/* test_crc32c.c — CRC-32C (raftnet/base/crc32c.h) against known answers: the standard check value, the
 * RFC 3720 (iSCSI) appendix B.4 vectors, split updates equal to one pass, and every alignment and short
 * length (where a table-driven or hardware path switches between its block loop and its byte tail)
 * against a bit-at-a-time reference written here from the definition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crc32c.h"

/* The definition: reflected CRC-32 with the Castagnoli polynomial (0x1EDC6F41, reversed 0x82F63B78), initial
 * value and final XOR all ones; continuing from `crc` undoes the final XOR first, as tn_crc32c does. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* Deterministic filler (xorshift), so a failure replays. */
static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        p[i] = (uint8_t)(seed >> 24);
    }
}

static void test_check_value(void **state)
{
    (void)state;
    /* the catalogued check value of CRC-32C: the CRC of the ASCII digits "123456789" */
    assert_int_equal(tn_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc_ref(0, (const uint8_t *)"123456789", 9), 0xE3069283u);
    /* nothing hashed: the CRC of no bytes is 0, and an empty update leaves any CRC as it was */
    assert_int_equal(tn_crc32c(0, "", 0), 0);
    assert_int_equal(tn_crc32c(0xE3069283u, "x", 0), 0xE3069283u);
}

/* RFC 3720 appendix B.4: 32-byte buffers and one 48-byte iSCSI read PDU. */
static void test_rfc3720_vectors(void **state)
{
    (void)state;
    uint8_t b[48];
    memset(b, 0x00, 32);
    assert_int_equal(tn_crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xFF, 32);
    assert_int_equal(tn_crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
    assert_int_equal(tn_crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
    assert_int_equal(tn_crc32c(0, b, 32), 0x113FDB5Cu);
    static const uint8_t read_pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
        0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    assert_int_equal(tn_crc32c(0, read_pdu, sizeof read_pdu), 0xD9963A56u);
    /* the reference agrees on the same vectors, so it can judge the cases below */
    assert_int_equal(crc_ref(0, read_pdu, sizeof read_pdu), 0xD9963A56u);
    assert_int_equal(crc_ref(0, b, 32), 0x113FDB5Cu);
}

static void test_split_updates_equal_one_pass(void **state)
{
    (void)state;
    enum { N = 300 };
    uint8_t b[N];
    fill(b, N, 11);
    uint32_t whole = tn_crc32c(0, b, N);
    assert_int_equal(whole, crc_ref(0, b, N));
    /* every split point, in two pieces */
    for (size_t i = 0; i <= N; i++) assert_int_equal(tn_crc32c(tn_crc32c(0, b, i), b + i, N - i), whole);
    /* three pieces, around the 8-byte blocks */
    for (size_t i = 0; i <= 24; i++)
        for (size_t j = i; j <= i + 24; j++)
            assert_int_equal(tn_crc32c(tn_crc32c(tn_crc32c(0, b, i), b + i, j - i), b + j, N - j), whole);
    /* one byte at a time */
    uint32_t crc = 0;
    for (size_t i = 0; i < N; i++) crc = tn_crc32c(crc, b + i, 1);
    assert_int_equal(crc, whole);
    /* "123456789" in two pieces still gives the check value */
    assert_int_equal(tn_crc32c(tn_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

/* Every start alignment 0..63 and length 0..64, from a zero and a running CRC, against the reference. */
static void test_every_alignment_and_short_length(void **state)
{
    (void)state;
    /* uint64_t storage: offset 0 is 8-byte aligned, so offsets 0..63 cover every alignment */
    uint64_t store[(64 + 64) / 8 + 1];
    uint8_t *b = (uint8_t *)store;
    fill(b, sizeof store, 23);
    for (size_t off = 0; off < 64; off++)
        for (size_t len = 0; len <= 64; len++) {
            assert_int_equal(tn_crc32c(0, b + off, len), crc_ref(0, b + off, len));
            assert_int_equal(tn_crc32c(0x9E3779B9u, b + off, len), crc_ref(0x9E3779B9u, b + off, len));
        }
}

/* Longer buffers at a few alignments: block sizes a faster implementation might switch on. */
static void test_long_buffers(void **state)
{
    (void)state;
    static const size_t lens[] = {65, 127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025, 4095, 4096, 4097,
                                  65536 + 3};
    size_t max = 65536 + 3 + 8;
    uint8_t *b = malloc(max);
    assert_non_null(b);
    fill(b, max, 37);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (size_t off = 0; off < 8; off += 3)
            assert_int_equal(tn_crc32c(0, b + off, lens[i]), crc_ref(0, b + off, lens[i]));
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_rfc3720_vectors),
        cmocka_unit_test(test_split_updates_equal_one_pass),
        cmocka_unit_test(test_every_alignment_and_short_length),
        cmocka_unit_test(test_long_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
