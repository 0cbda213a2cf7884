/* test_engine_persist.c — the embedded engine (raftnet/node/engine.h) in its persistent form
 * (tn_engine_open_dir): writes survive a close/reopen through the log, through a snapshot plus the log after
 * it, also when written concurrently; a corrupt log refuses to open; the data directory is locked while
 * open. The in-memory form is test_engine.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "engine.h"
#include "helper_net.h"
#include "tn_code.h"
#include "wire.h"

static int call_put(tn_engine *e, const char *k, const char *v)
{
    tn_op op = {.opcode = TN_OP_KV_PUT, .key = (const uint8_t *)k, .key_len = strlen(k),
                .value = (const uint8_t *)v, .value_len = strlen(v)};
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr rb, out;
    tn_resp r;
    tn_wr_init(&rb);
    tn_wr_init(&out);
    assert_int_equal(tn_req_encode(&req, &rb), TN_SUCCESS);
    assert_int_equal(tn_engine_call(e, 1, rb.p, rb.len, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &r), TN_SUCCESS);
    int code = r.code == TN_SUCCESS ? r.results[0].code : r.code;
    if (code == TN_SUCCESS_OVERWRITE) code = TN_SUCCESS; /* a put over an existing value */
    tn_resp_clear(&r);
    tn_wr_free(&rb);
    tn_wr_free(&out);
    return code;
}

/* Returns the value of k (malloc'd) or NULL when absent. */
static char *call_get(tn_engine *e, const char *k)
{
    tn_op op = {.opcode = TN_OP_KV_GET, .key = (const uint8_t *)k, .key_len = strlen(k)};
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr rb, out;
    tn_resp r;
    char *v = NULL;
    tn_wr_init(&rb);
    tn_wr_init(&out);
    assert_int_equal(tn_req_encode(&req, &rb), TN_SUCCESS);
    assert_int_equal(tn_engine_call(e, 1, rb.p, rb.len, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &r), TN_SUCCESS);
    if (r.results[0].code == TN_SUCCESS) {
        v = calloc(1, r.results[0].entries[0].value_len + 1);
        memcpy(v, r.results[0].entries[0].value, r.results[0].entries[0].value_len);
    }
    tn_resp_clear(&r);
    tn_wr_free(&rb);
    tn_wr_free(&out);
    return v;
}

static void expect(tn_engine *e, const char *k, const char *v)
{
    char *got = call_get(e, k);
    if (!v) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, v);
    free(got);
}

static void test_survives_reopen(void **state)
{
    (void)state;
    char dir[64], ddir[96], err[256];
    tn_engine *e;
    assert_int_equal(tn_test_tmpdir(dir, sizeof dir), 0);
    snprintf(ddir, sizeof ddir, "%s/data", dir);
    assert_int_equal(tn_engine_open_dir("persist", ddir, &e, err, sizeof err), TN_SUCCESS);
    assert_int_equal(call_put(e, "a", "1"), TN_SUCCESS);
    assert_int_equal(call_put(e, "b", "2"), TN_SUCCESS);
    uint64_t rev = tn_engine_revision(e);
    /* the same name with another directory (or in memory) is refused while it is open */
    tn_engine *other;
    assert_int_equal(tn_engine_open("persist", &other), TN_BAD_REQUEST);
    tn_engine_close(e);

    assert_int_equal(tn_engine_open_dir("persist", ddir, &e, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_engine_revision(e), rev);
    expect(e, "a", "1");
    expect(e, "b", "2");
    /* snapshot, then more writes: the next open loads the snapshot and replays the rest */
    assert_int_equal(tn_engine_snapshot(e), TN_SUCCESS);
    assert_int_equal(call_put(e, "c", "3"), TN_SUCCESS);
    assert_int_equal(call_put(e, "a", "10"), TN_SUCCESS);
    rev = tn_engine_revision(e);
    tn_engine_close(e);

    assert_int_equal(tn_engine_open_dir("persist", ddir, &e, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_engine_revision(e), rev);
    expect(e, "a", "10");
    expect(e, "b", "2");
    expect(e, "c", "3");
    assert_int_equal(call_put(e, "d", "4"), TN_SUCCESS);
    tn_engine_close(e);

    /* an in-memory engine of the same name starts empty */
    assert_int_equal(tn_engine_open("persist", &e), TN_SUCCESS);
    expect(e, "a", NULL);
    assert_int_equal(tn_engine_snapshot(e), TN_BAD_REQUEST);
    tn_engine_close(e);
    tn_test_rmdir(dir);
}

static void test_corrupt_log_refuses_to_open(void **state)
{
    (void)state;
    char dir[64], ddir[96], seg[160], err[256];
    tn_engine *e;
    assert_int_equal(tn_test_tmpdir(dir, sizeof dir), 0);
    snprintf(ddir, sizeof ddir, "%s/data", dir);
    assert_int_equal(tn_engine_open_dir("corrupt", ddir, &e, err, sizeof err), TN_SUCCESS);
    for (int i = 0; i < 5; i++) assert_int_equal(call_put(e, "k", "some value"), TN_SUCCESS);
    tn_engine_close(e);
    snprintf(seg, sizeof seg, "%s/log/log-00000000000000000001.seg", ddir);
    FILE *f = fopen(seg, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 32 + 20, SEEK_SET), 0); /* inside the first record, valid ones follow */
    int c = fgetc(f);
    assert_int_equal(fseek(f, 32 + 20, SEEK_SET), 0);
    fputc(c ^ 0xff, f);
    fclose(f);
    assert_int_equal(tn_engine_open_dir("corrupt", ddir, &e, err, sizeof err), TN_IO_ERROR);
    assert_null(e);
    assert_non_null(strstr(err, "log-00000000000000000001.seg"));
    assert_non_null(strstr(err, "offset"));
    tn_test_rmdir(dir);
}

typedef struct writer_arg {
    tn_engine *e;
    int id;
} writer_arg;

/* Puts w<id>-0..99 (value = key). No cmocka asserts off the main thread: returns non-NULL on a failure. */
static void *writer(void *p)
{
    writer_arg *a = p;
    char k[32];
    void *failed = NULL;
    for (int i = 0; i < 100 && !failed; i++) {
        snprintf(k, sizeof k, "w%d-%d", a->id, i);
        tn_op op = {.opcode = TN_OP_KV_PUT, .key = (const uint8_t *)k, .key_len = strlen(k),
                    .value = (const uint8_t *)k, .value_len = strlen(k)};
        tn_req req = {.n_ops = 1, .ops = &op};
        tn_wr rb, out;
        tn_resp r;
        tn_wr_init(&rb);
        tn_wr_init(&out);
        if (tn_req_encode(&req, &rb) != TN_SUCCESS || tn_engine_call(a->e, 1, rb.p, rb.len, &out) != TN_SUCCESS ||
            tn_resp_decode(out.p, out.len, &r) != TN_SUCCESS) {
            failed = p;
        } else {
            if (r.code != TN_SUCCESS || !tn_code_ok(r.results[0].code)) failed = p;
            tn_resp_clear(&r);
        }
        tn_wr_free(&rb);
        tn_wr_free(&out);
    }
    return failed;
}

/* Concurrent writers share syncs; every acknowledged write is there after a reopen. */
static void test_concurrent_writes_survive_reopen(void **state)
{
    (void)state;
    char dir[64], ddir[96], err[256], k[32];
    tn_engine *e;
    assert_int_equal(tn_test_tmpdir(dir, sizeof dir), 0);
    snprintf(ddir, sizeof ddir, "%s/data", dir);
    assert_int_equal(tn_engine_open_dir("conc", ddir, &e, err, sizeof err), TN_SUCCESS);
    pthread_t th[4];
    writer_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (writer_arg){e, i};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *failed = NULL;
        pthread_join(th[i], &failed);
        assert_null(failed);
    }
    uint64_t rev = tn_engine_revision(e);
    tn_engine_close(e);
    assert_int_equal(tn_engine_open_dir("conc", ddir, &e, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_engine_revision(e), rev);
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 100; i++) {
            snprintf(k, sizeof k, "w%d-%d", t, i);
            expect(e, k, k);
        }
    tn_engine_close(e);
    tn_test_rmdir(dir);
}

static void test_data_dir_is_locked_while_open(void **state)
{
    (void)state;
    char dir[64], ddir[96], err[256];
    tn_engine *e, *other = NULL;
    assert_int_equal(tn_test_tmpdir(dir, sizeof dir), 0);
    snprintf(ddir, sizeof ddir, "%s/data", dir);
    assert_int_equal(tn_engine_open_dir("lock-a", ddir, &e, err, sizeof err), TN_SUCCESS);
    assert_int_equal(call_put(e, "k", "v"), TN_SUCCESS);
    /* another engine (as another process would) cannot use the same directory */
    assert_int_equal(tn_engine_open_dir("lock-b", ddir, &other, err, sizeof err), TN_IO_ERROR);
    assert_null(other);
    assert_non_null(strstr(err, "locked"));
    tn_engine_close(e);
    /* once closed it can */
    assert_int_equal(tn_engine_open_dir("lock-b", ddir, &other, err, sizeof err), TN_SUCCESS);
    expect(other, "k", "v");
    tn_engine_close(other);
    tn_test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_survives_reopen),
        cmocka_unit_test(test_corrupt_log_refuses_to_open),
        cmocka_unit_test(test_data_dir_is_locked_while_open),
        cmocka_unit_test(test_concurrent_writes_survive_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
