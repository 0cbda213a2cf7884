/* test_engine.c — the embedded engine: sharing by name, sessions, expiry timer, concurrent callers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "engine.h"
#include "wire.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One op through the engine; returns the op's result code and, for gets, whether an entry came back. */
static int call1(tn_engine *e, uint64_t session, tn_op op, int *found)
{
    tn_req req = {.client_id = session, .n_ops = 1, .ops = &op};
    tn_wr reqb, out;
    tn_resp resp;
    tn_wr_init(&reqb);
    tn_wr_init(&out);
    assert_int_equal(tn_req_encode(&req, &reqb), TN_SUCCESS);
    assert_int_equal(tn_engine_call(e, session, reqb.p, reqb.len, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.code, TN_SUCCESS);
    int code = resp.results[0].code;
    if (found) *found = resp.results[0].n_entries == 1;
    tn_resp_clear(&resp);
    tn_wr_free(&reqb);
    tn_wr_free(&out);
    return code;
}

static tn_op op_kv(int opcode, const char *k, const char *v)
{
    tn_op op = {.opcode = (uint8_t)opcode, .key = (const uint8_t *)k, .key_len = strlen(k)};
    if (v) {
        op.value = (const uint8_t *)v;
        op.value_len = strlen(v);
    }
    return op;
}

static void test_same_name_shares_store(void **state)
{
    (void)state;
    tn_engine *a, *b, *c;
    assert_int_equal(tn_engine_open("t-share", &a), TN_SUCCESS);
    assert_int_equal(tn_engine_open("t-share", &b), TN_SUCCESS);
    assert_int_equal(tn_engine_open("t-other", &c), TN_SUCCESS);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    uint64_t s1 = tn_engine_new_session(a), s2 = tn_engine_new_session(a);
    assert_int_not_equal(s1, 0);
    assert_int_not_equal(s1, s2);
    int found;
    assert_int_equal(call1(a, s1, op_kv(TN_OP_KV_PUT, "x", "1"), NULL), TN_SUCCESS);
    assert_int_equal(call1(b, s2, op_kv(TN_OP_KV_GET, "x", NULL), &found), TN_SUCCESS);
    assert_true(found);
    assert_int_equal(call1(c, 1, op_kv(TN_OP_KV_GET, "x", NULL), &found), TN_NOT_FOUND);
    assert_int_equal(tn_engine_revision(a), 1);
    tn_engine_close(a);
    tn_engine_close(b);
    tn_engine_close(c);
    /* all references gone: a new open starts from an empty store */
    assert_int_equal(tn_engine_open("t-share", &a), TN_SUCCESS);
    assert_int_equal(call1(a, 1, op_kv(TN_OP_KV_GET, "x", NULL), &found), TN_NOT_FOUND);
    tn_engine_close(a);
}

static void test_garbage_request_gets_error_response(void **state)
{
    (void)state;
    tn_engine *e;
    assert_int_equal(tn_engine_open("t-garbage", &e), TN_SUCCESS);
    tn_wr out;
    tn_resp resp;
    tn_wr_init(&out);
    const uint8_t junk[] = {1, 2, 3, 4, 5};
    assert_int_equal(tn_engine_call(e, 1, junk, sizeof junk, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.code, TN_BAD_REQUEST);
    tn_resp_clear(&resp);
    tn_wr_free(&out);
    assert_int_equal(tn_engine_revision(e), 0);
    tn_engine_close(e);
}

static void test_temp_node_expires_near_its_ttl(void **state)
{
    (void)state;
    tn_engine *e;
    assert_int_equal(tn_engine_open("t-expiry", &e), TN_SUCCESS);
    uint64_t s = tn_engine_new_session(e);
    assert_int_equal(call1(e, s, op_kv(TN_OP_KV_MKDIR_TEMP, "tdir", NULL), NULL), TN_INVALID_TTL);
    tn_op dir = op_kv(TN_OP_KV_MKDIR_TEMP, "tdir", NULL);
    dir.ttl_ms = 150;
    assert_int_equal(call1(e, s, dir, NULL), TN_SUCCESS);
    tn_op child = op_kv(TN_OP_KV_PUT_TEMP, "tdir.c", "v");
    child.ttl_ms = 60000;
    assert_int_equal(call1(e, s, child, NULL), TN_SUCCESS);
    int64_t start = now_ms();
    int found = 1;
    while (found && now_ms() - start < 3000) {
        int code = call1(e, s, op_kv(TN_OP_KV_GET, "tdir.c", NULL), &found);
        assert_int_equal(code == TN_SUCCESS, found);
        if (found) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    int64_t gone = now_ms() - start;
    assert_false(found);
    assert_true(gone >= 140);
    assert_true(gone < 150 + 100); /* within ~100 ms of the TTL */
    assert_int_equal(call1(e, s, op_kv(TN_OP_KV_GET, "tdir", NULL), &found), TN_NOT_FOUND);
    tn_engine_close(e);
}

typedef struct writer_arg {
    tn_engine *e;
    int id;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    char k[32];
    uint64_t s = tn_engine_new_session(a->e);
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof k, "w%d-%d", a->id, i);
        tn_op op = op_kv(TN_OP_KV_PUT, k, "v");
        tn_req req = {.n_ops = 1, .ops = &op};
        tn_wr reqb, out;
        tn_wr_init(&reqb);
        tn_wr_init(&out);
        tn_req_encode(&req, &reqb);
        tn_engine_call(a->e, s, reqb.p, reqb.len, &out);
        tn_wr_free(&reqb);
        tn_wr_free(&out);
    }
    return NULL;
}

static void test_concurrent_writers_get_consecutive_revisions(void **state)
{
    (void)state;
    tn_engine *e;
    assert_int_equal(tn_engine_open("t-conc", &e), TN_SUCCESS);
    pthread_t th[4];
    writer_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (writer_arg){e, i};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    assert_int_equal(tn_engine_revision(e), 2000);
    int found;
    assert_int_equal(call1(e, 1, op_kv(TN_OP_KV_GET, "w3-499", NULL), &found), TN_SUCCESS);
    assert_true(found);
    tn_engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_name_shares_store),
        cmocka_unit_test(test_garbage_request_gets_error_response),
        cmocka_unit_test(test_temp_node_expires_near_its_ttl),
        cmocka_unit_test(test_concurrent_writers_get_consecutive_revisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
