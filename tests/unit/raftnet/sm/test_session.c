/* test_session.c — the exactly-once session table (raftnet/sm/session.h) and its use by the state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "session.h"
#include "sm.h"
#include "tn_code.h"
#include "wire.h"

static void test_dedupe(void **state)
{
    (void)state;
    tn_sessions *s = tn_sessions_new(0);
    const uint8_t *resp;
    size_t len;
    assert_non_null(s);
    assert_int_equal(tn_sessions_check(s, 7, 1, &resp, &len), TN_SESSION_NEW);
    assert_int_equal(tn_sessions_record(s, 7, 1, 1000, "r1", 2), TN_SUCCESS);
    assert_int_equal(tn_sessions_check(s, 7, 1, &resp, &len), TN_SESSION_RETRY);
    assert_int_equal(len, 2);
    assert_memory_equal(resp, "r1", 2);
    assert_int_equal(tn_sessions_check(s, 7, 2, &resp, &len), TN_SESSION_NEW);
    assert_int_equal(tn_sessions_check(s, 8, 1, &resp, &len), TN_SESSION_NEW);
    assert_int_equal(tn_sessions_record(s, 7, 2, 1001, "r2!", 3), TN_SUCCESS);
    assert_int_equal(tn_sessions_check(s, 7, 1, &resp, &len), TN_SESSION_STALE);
    assert_int_equal(tn_sessions_check(s, 7, 2, &resp, &len), TN_SESSION_RETRY);
    assert_memory_equal(resp, "r2!", 3);
    assert_int_equal(tn_sessions_count(s), 1);
    tn_sessions_free(s);
}

static void test_expiry_is_by_command_time(void **state)
{
    (void)state;
    tn_sessions *s = tn_sessions_new(10000);
    const uint8_t *resp;
    size_t len;
    assert_int_equal(tn_sessions_touch(s, 0), 0);
    assert_int_equal(tn_sessions_record(s, 1, 1, 0, "a", 1), TN_SUCCESS);
    assert_int_equal(tn_sessions_record(s, 2, 1, 50000, "b", 1), TN_SUCCESS);
    /* not yet a sweep point (the first sweep at 0 scheduled the next at TN_SESSION_SWEEP_MS) */
    assert_int_equal(tn_sessions_touch(s, 30000), 0);
    assert_int_equal(tn_sessions_count(s), 2);
    /* at the sweep point, session 1 (idle 60 s > 10 s) goes, session 2 (idle 10 s, not more) stays */
    assert_int_equal(tn_sessions_touch(s, TN_SESSION_SWEEP_MS), 1);
    assert_int_equal(tn_sessions_count(s), 1);
    assert_int_equal(tn_sessions_check(s, 1, 1, &resp, &len), TN_SESSION_NEW);
    assert_int_equal(tn_sessions_check(s, 2, 1, &resp, &len), TN_SESSION_RETRY);
    tn_sessions_free(s);

    /* command times are whatever the log carries: extremes must not overflow (UBSan watches) */
    s = tn_sessions_new(0);
    assert_int_equal(tn_sessions_record(s, 3, 1, INT64_MIN, "c", 1), TN_SUCCESS);
    assert_int_equal(tn_sessions_touch(s, INT64_MIN), 0);
    assert_int_equal(tn_sessions_touch(s, INT64_MAX), 1);
    assert_int_equal(tn_sessions_touch(s, INT64_MAX), 0); /* the next sweep (saturated) finds nothing */
    assert_int_equal(tn_sessions_count(s), 0);
    tn_sessions_free(s);
}

static void test_image_round_trip(void **state)
{
    (void)state;
    tn_sessions *a = tn_sessions_new(0), *b = tn_sessions_new(0);
    tn_wr w1, w2;
    tn_wr_init(&w1);
    tn_wr_init(&w2);
    for (uint64_t c = 50; c > 0; c--) {
        char r[16];
        int n = snprintf(r, sizeof r, "resp%llu", (unsigned long long)c);
        assert_int_equal(tn_sessions_record(a, c * 3, c, (int64_t)c * 10, r, (size_t)n), TN_SUCCESS);
    }
    tn_sessions_touch(a, 5);
    assert_int_equal(tn_sessions_serialize(a, &w1), TN_SUCCESS);
    assert_int_equal(tn_sessions_deserialize(b, w1.p, w1.len), TN_SUCCESS);
    assert_int_equal(tn_sessions_serialize(b, &w2), TN_SUCCESS);
    assert_int_equal(w1.len, w2.len);
    assert_memory_equal(w1.p, w2.p, w1.len);
    const uint8_t *resp;
    size_t len;
    assert_int_equal(tn_sessions_check(b, 30, 10, &resp, &len), TN_SESSION_RETRY);
    assert_int_equal(len, 6);
    assert_memory_equal(resp, "resp10", 6);
    /* every truncation is refused and leaves b unchanged */
    for (size_t cut = 0; cut < w1.len; cut++) assert_int_not_equal(tn_sessions_deserialize(b, w1.p, cut), TN_SUCCESS);
    assert_int_equal(tn_sessions_count(b), 50);
    tn_wr_free(&w1);
    tn_wr_free(&w2);
    tn_sessions_free(a);
    tn_sessions_free(b);
}

/* The state machine applies a retried (client, seq) once and answers it with the original response. */
static void encode_put(tn_wr *cmd, uint64_t req_id, uint64_t client, uint64_t seq, const char *k, const char *v,
                       int64_t t)
{
    tn_op op = {.opcode = TN_OP_KV_PUT, .key = (const uint8_t *)k, .key_len = strlen(k),
                .value = (const uint8_t *)v, .value_len = strlen(v)};
    tn_req req = {.req_id = req_id, .client_id = client, .seq = seq, .n_ops = 1, .ops = &op};
    tn_wr rb;
    tn_wr_init(&rb);
    assert_int_equal(tn_req_encode(&req, &rb), TN_SUCCESS);
    assert_int_equal(tn_cmd_encode(t, client, rb.p, rb.len, cmd), TN_SUCCESS);
    tn_wr_free(&rb);
}

static uint64_t get_rev(tn_sm *sm, const char *k, char *val, size_t cap)
{
    tn_op op = {.opcode = TN_OP_KV_GET, .key = (const uint8_t *)k, .key_len = strlen(k)};
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr out;
    tn_resp r;
    tn_wr_init(&out);
    assert_int_equal(tn_sm_read(sm, &req, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &r), TN_SUCCESS);
    assert_int_equal(r.results[0].code, TN_SUCCESS);
    uint64_t rev = r.results[0].entries[0].update_rev;
    size_t n = r.results[0].entries[0].value_len < cap - 1 ? r.results[0].entries[0].value_len : cap - 1;
    memcpy(val, r.results[0].entries[0].value, n);
    val[n] = 0;
    tn_resp_clear(&r);
    tn_wr_free(&out);
    return rev;
}

static void test_sm_retry_applied_once(void **state)
{
    (void)state;
    tn_sm *sm = tn_sm_new(NULL);
    tn_wr c1, c2, o1, o2, o3, img;
    tn_resp r1, r2, r3;
    char val[32];
    tn_wr_init(&c1); tn_wr_init(&c2); tn_wr_init(&o1); tn_wr_init(&o2); tn_wr_init(&o3); tn_wr_init(&img);
    encode_put(&c1, 11, 99, 1, "k", "first", 1000);
    encode_put(&c2, 12, 99, 1, "k", "second", 2000); /* same (client, seq), other bytes */
    assert_int_equal(tn_sm_apply(sm, 1, c1.p, c1.len, &o1), TN_SUCCESS);
    assert_int_equal(tn_sm_apply(sm, 2, c2.p, c2.len, &o2), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(o1.p, o1.len, &r1), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(o2.p, o2.len, &r2), TN_SUCCESS);
    assert_int_equal(r2.req_id, 12);      /* the retry's own req_id */
    assert_int_equal(r2.revision, r1.revision); /* but the original result */
    assert_int_equal(get_rev(sm, "k", val, sizeof val), 1);
    assert_string_equal(val, "first");
    assert_int_equal(tn_sm_session_count(sm), 1);
    /* the session table survives a snapshot: a retry after a restore is still deduplicated */
    assert_int_equal(tn_sm_snapshot_save(sm, &img), TN_SUCCESS);
    tn_sm *sm2 = tn_sm_new(NULL);
    assert_int_equal(tn_sm_snapshot_load(sm2, img.p, img.len), TN_SUCCESS);
    assert_int_equal(tn_sm_apply(sm2, 3, c2.p, c2.len, &o3), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(o3.p, o3.len, &r3), TN_SUCCESS);
    assert_int_equal(r3.revision, r1.revision);
    assert_int_equal(get_rev(sm2, "k", val, sizeof val), 1);
    assert_string_equal(val, "first");
    tn_resp_clear(&r1); tn_resp_clear(&r2); tn_resp_clear(&r3);
    tn_wr_free(&c1); tn_wr_free(&c2); tn_wr_free(&o1); tn_wr_free(&o2); tn_wr_free(&o3); tn_wr_free(&img);
    tn_sm_free(sm);
    tn_sm_free(sm2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_expiry_is_by_command_time),
        cmocka_unit_test(test_image_round_trip),
        cmocka_unit_test(test_sm_retry_applied_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
