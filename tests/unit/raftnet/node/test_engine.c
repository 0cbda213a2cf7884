/* test_engine.c — the embedded engine (raftnet/node/engine.h) in memory: sharing by name, sessions
 * (exactly-once retries), TTL expiry, concurrent callers, the in-memory Raft log staying bounded. With a data
 * directory: test_engine_persist.c. */
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
#include "tn_code.h"
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
    /* revisions are Raft indexes: index 1 is the no-op the node appended when it became leader */
    assert_int_equal(tn_engine_revision(a), 2);
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

#define WRITERS 4
#define WRITES_PER_WRITER 500

/* A writer thread's record. cmocka's asserts are not thread-safe: the thread only records, the main thread
 * asserts after the join. */
typedef struct writer_arg {
    tn_engine *e;
    int id;
    int acked;     /* writes answered SUCCESS with an op result SUCCESS */
    int failed_at; /* the first write that was not, or -1 */
    int failed_rc; /* its first non-success code: of encode, call, decode, the response or the op */
} writer_arg;

/* The code of one put of k through the engine: the first step that did not succeed, else the op's code. */
static int writer_put(tn_engine *e, uint64_t session, const char *k)
{
    tn_op op = op_kv(TN_OP_KV_PUT, k, "v");
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr reqb, out;
    tn_resp resp;
    tn_wr_init(&reqb);
    tn_wr_init(&out);
    int rc = tn_req_encode(&req, &reqb);
    if (rc != TN_SUCCESS) goto done;
    rc = tn_engine_call(e, session, reqb.p, reqb.len, &out);
    if (rc != TN_SUCCESS) goto done;
    rc = tn_resp_decode(out.p, out.len, &resp);
    if (rc != TN_SUCCESS) goto done;
    rc = resp.code != TN_SUCCESS ? resp.code : resp.n_results != 1 ? TN_CLIENT_REQ_ERROR : resp.results[0].code;
    tn_resp_clear(&resp);
done:
    tn_wr_free(&reqb);
    tn_wr_free(&out);
    return rc;
}

static void *writer(void *p)
{
    writer_arg *a = p;
    char k[32];
    uint64_t s = tn_engine_new_session(a->e);
    for (int i = 0; i < WRITES_PER_WRITER; i++) {
        snprintf(k, sizeof k, "w%d-%d", a->id, i);
        int rc = writer_put(a->e, s, k);
        if (rc == TN_SUCCESS) {
            a->acked++;
        } else if (a->failed_at < 0) {
            a->failed_at = i;
            a->failed_rc = rc;
        }
    }
    return NULL;
}

static void test_concurrent_writers_get_consecutive_revisions(void **state)
{
    (void)state;
    tn_engine *e;
    assert_int_equal(tn_engine_open("t-conc", &e), TN_SUCCESS);
    pthread_t th[WRITERS];
    writer_arg args[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (writer_arg){.e = e, .id = i, .failed_at = -1};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < WRITERS; i++) {
        if (args[i].failed_at >= 0)
            print_message("writer %d: write %d failed with %s\n", i, args[i].failed_at,
                          tn_code_name(args[i].failed_rc));
        assert_int_equal(args[i].failed_at, -1);
        assert_int_equal(args[i].acked, WRITES_PER_WRITER);
    }
    /* after the leader's no-op at index 1 */
    assert_int_equal(tn_engine_revision(e), 1 + WRITERS * WRITES_PER_WRITER);
    int found;
    for (int i = 0; i < WRITERS; i++) {
        char k[32];
        snprintf(k, sizeof k, "w%d-%d", i, WRITES_PER_WRITER - 1);
        assert_int_equal(call1(e, 1, op_kv(TN_OP_KV_GET, k, NULL), &found), TN_SUCCESS);
        assert_true(found);
    }
    tn_engine_close(e);
}

/* One request with an explicit (client_id, seq); returns the op's result code. */
static int call_seq(tn_engine *e, uint64_t session, uint64_t seq, tn_op op)
{
    tn_req req = {.client_id = session, .seq = seq, .n_ops = 1, .ops = &op};
    tn_wr reqb, out;
    tn_resp resp;
    tn_wr_init(&reqb);
    tn_wr_init(&out);
    assert_int_equal(tn_req_encode(&req, &reqb), TN_SUCCESS);
    assert_int_equal(tn_engine_call(e, session, reqb.p, reqb.len, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    int code = resp.code == TN_SUCCESS ? resp.results[0].code : resp.code;
    tn_resp_clear(&resp);
    tn_wr_free(&reqb);
    tn_wr_free(&out);
    return code;
}

/* The value of k as a malloc'd string, or NULL when absent. */
static char *get_value(tn_engine *e, const char *k)
{
    tn_op op = op_kv(TN_OP_KV_GET, k, NULL);
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr reqb, out;
    tn_resp resp;
    char *v = NULL;
    tn_wr_init(&reqb);
    tn_wr_init(&out);
    assert_int_equal(tn_req_encode(&req, &reqb), TN_SUCCESS);
    assert_int_equal(tn_engine_call(e, 1, reqb.p, reqb.len, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    if (resp.results[0].code == TN_SUCCESS) v = strndup((const char *)resp.results[0].entries[0].value,
                                                        resp.results[0].entries[0].value_len);
    tn_resp_clear(&resp);
    tn_wr_free(&reqb);
    tn_wr_free(&out);
    return v;
}

static void test_retry_of_same_session_seq_is_applied_once(void **state)
{
    (void)state;
    tn_engine *e;
    assert_int_equal(tn_engine_open("t-once", &e), TN_SUCCESS);
    uint64_t s = tn_engine_new_session(e);
    /* a create fails on an existing key: a second application would return VALUE_EXISTS */
    tn_op create = op_kv(TN_OP_KV_PUT, "once", "v1");
    create.cond = TN_COND_ABSENT;
    assert_int_equal(call_seq(e, s, 1, create), TN_SUCCESS);
    assert_int_equal(call_seq(e, s, 1, create), TN_SUCCESS);
    /* the retry returns the first answer without applying its own bytes */
    assert_int_equal(call_seq(e, s, 2, op_kv(TN_OP_KV_PUT, "once", "v2")), TN_SUCCESS_OVERWRITE);
    assert_int_equal(call_seq(e, s, 2, op_kv(TN_OP_KV_PUT, "once", "v3")), TN_SUCCESS_OVERWRITE);
    char *v = get_value(e, "once");
    assert_non_null(v);
    assert_string_equal(v, "v2");
    free(v);
    /* an older sequence than the session's last is refused, not applied */
    assert_int_equal(call_seq(e, s, 1, op_kv(TN_OP_KV_PUT, "once", "v4")), TN_SESSION_EXPIRED);
    v = get_value(e, "once");
    assert_string_equal(v, "v2");
    free(v);
    /* another session's seq 1 is its own */
    assert_int_equal(call_seq(e, s + 1, 1, create), TN_VALUE_EXISTS);
    tn_engine_close(e);
}

static void test_in_memory_log_stays_bounded(void **state)
{
    (void)state;
    tn_engine *e;
    assert_int_equal(tn_engine_open("t-bounded", &e), TN_SUCCESS);
    uint64_t s = tn_engine_new_session(e);
    const int writes = 20000;
    for (int i = 0; i < writes; i++) {
        char k[32];
        snprintf(k, sizeof k, "b%d", i % 100);
        assert_true(tn_code_ok(call1(e, s, op_kv(TN_OP_KV_PUT, k, "value"), NULL)));
    }
    uint64_t rev = tn_engine_revision(e), first = tn_engine_log_first_index(e);
    assert_true(rev > (uint64_t)writes);
    /* the core holds only the entries since its last compaction (every 512), not all of them */
    assert_true(first > 1);
    assert_true(rev - first < 1024);
    char *v = get_value(e, "b99");
    assert_string_equal(v, "value");
    free(v);
    tn_engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_name_shares_store),
        cmocka_unit_test(test_garbage_request_gets_error_response),
        cmocka_unit_test(test_temp_node_expires_near_its_ttl),
        cmocka_unit_test(test_concurrent_writers_get_consecutive_revisions),
        cmocka_unit_test(test_retry_of_same_session_seq_is_applied_once),
        cmocka_unit_test(test_in_memory_log_stays_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
