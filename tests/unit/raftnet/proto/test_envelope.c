/* test_envelope.c — the envelope of every message a node receives (raftnet/proto/envelope.h): CLIENT and
 * PEER round trips, rejection of every truncated header, bad magic, version and kind, an impossible `low`,
 * an oversized token. The transport that sends and receives envelopes is net/test_transport.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

static void test_envelope_codec(void **state)
{
    tn_wr w;
    tn_env e;
    size_t low_at;
    tn_wr_init(&w);
    assert_int_equal(tn_env_encode_client(&w, "tok", 3, "payload", 7), TN_SUCCESS);
    assert_int_equal(tn_env_decode(w.p, w.len, &e), TN_SUCCESS);
    assert_int_equal(e.kind, TN_ENV_CLIENT);
    assert_int_equal(e.token_len, 3);
    assert_memory_equal(e.token, "tok", 3);
    assert_int_equal(e.payload_len, 7);
    assert_memory_equal(e.payload, "payload", 7);
    /* every strict prefix of the header is rejected (the payload may be cut anywhere) */
    for (size_t cut = 0; cut < 8; cut++) assert_int_equal(tn_env_decode(w.p, cut, &e), TN_BAD_REQUEST);
    w.p[0] = 'X';
    assert_int_equal(tn_env_decode(w.p, w.len, &e), TN_BAD_REQUEST);
    w.p[0] = 'T';
    w.p[2] = TN_ENV_VERSION + 1;
    assert_int_equal(tn_env_decode(w.p, w.len, &e), TN_BAD_REQUEST);
    w.p[2] = TN_ENV_VERSION;
    w.p[3] = 9;
    assert_int_equal(tn_env_decode(w.p, w.len, &e), TN_BAD_REQUEST);
    tn_wr_free(&w);

    tn_wr_init(&w);
    assert_int_equal(tn_env_encode_peer(&w, NULL, 0, 7, 99, 5, 3, "raft", 4, &low_at), TN_SUCCESS);
    assert_int_equal(tn_env_decode(w.p, w.len, &e), TN_SUCCESS);
    assert_int_equal(e.kind, TN_ENV_PEER);
    assert_null(e.token);
    assert_int_equal(e.from_id, 7);
    assert_int_equal(e.stream, 99);
    assert_int_equal(e.seq, 5);
    assert_int_equal(e.low, 3);
    assert_int_equal(e.payload_len, 4);
    assert_int_equal(w.p[low_at], 3);
    for (size_t cut = 0; cut < w.len - 4; cut++) assert_int_equal(tn_env_decode(w.p, cut, &e), TN_BAD_REQUEST);
    w.p[low_at] = 6; /* low above seq: impossible */
    assert_int_equal(tn_env_decode(w.p, w.len, &e), TN_BAD_REQUEST);
    tn_wr_free(&w);

    uint8_t big[TN_ENV_MAX_TOKEN + 1] = {0};
    tn_wr_init(&w);
    assert_int_equal(tn_env_encode_client(&w, big, sizeof big, "x", 1), TN_TOO_LARGE);
    tn_wr_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
