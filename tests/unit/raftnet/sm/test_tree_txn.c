/* test_tree_txn.c — the tree's undo log (tn_tree_txn_*, raftnet/tree.h) and the all-or-nothing apply of
 * atomic requests mixing tree writes, KV_CHECK and collection writes (raftnet/atomic.h). The oracle for
 * "unchanged" is the tree's deterministic image (tn_tree_serialize) and tn_colls_serialize. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atomic.h"
#include "coll.h"
#include "tree.h"
#include "wire.h"

#define K(s) (const uint8_t *)(s), strlen(s)

static tn_wctx cx(uint64_t index, uint64_t owner)
{
    tn_wctx c = {index, (int64_t)index * 10, owner};
    return c;
}

static uint8_t *image(const tn_tree *t, size_t *len)
{
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_tree_serialize(t, &w), TN_SUCCESS);
    return tn_wr_take(&w, len);
}

static void assert_same_image(const tn_tree *t, const uint8_t *img, size_t len)
{
    size_t n;
    uint8_t *now = image(t, &n);
    assert_int_equal(n, len);
    assert_memory_equal(now, img, len);
    free(now);
}

static tn_tree *sample_tree(void)
{
    tn_tree *t = tn_tree_new(NULL);
    assert_non_null(t);
    tn_wctx c = cx(1, 0);
    assert_int_equal(tn_tree_mkdir(t, &c, K("users")), TN_SUCCESS);
    c = cx(2, 0);
    assert_int_equal(tn_tree_put(t, &c, K("users.alice"), K("admin")), TN_SUCCESS);
    c = cx(3, 0);
    assert_int_equal(tn_tree_put(t, &c, K("users.bob"), K("guest")), TN_SUCCESS);
    c = cx(4, 9);
    assert_int_equal(tn_tree_put_temp(t, &c, K("lock"), K("me"), 5000), TN_SUCCESS);
    c = cx(5, 9);
    assert_int_equal(tn_tree_mkdir_temp(t, &c, K("sess"), 7000), TN_SUCCESS);
    c = cx(6, 9);
    assert_int_equal(tn_tree_put_temp(t, &c, K("sess.a"), K("x"), 3000), TN_SUCCESS);
    return t;
}

/* Every kind of write inside a transaction, then rollback: byte-identical image, same count. */
static void test_rollback_every_write(void **state)
{
    (void)state;
    tn_tree *t = sample_tree();
    size_t len, count = tn_tree_count(t);
    uint8_t *before = image(t, &len);
    assert_int_equal(tn_tree_txn_begin(t), TN_SUCCESS);
    assert_int_equal(tn_tree_txn_begin(t), TN_INTERNAL);
    assert_true(tn_tree_txn_open(t));
    tn_wctx c = cx(10, 9);
    assert_int_equal(tn_tree_put(t, &c, K("users.alice"), K("root-with-a-much-longer-value")), TN_SUCCESS_OVERWRITE);
    assert_int_equal(tn_tree_put(t, &c, K("users.carol"), K("new")), TN_SUCCESS);
    assert_int_equal(tn_tree_mkdir(t, &c, K("users.dir")), TN_SUCCESS);
    assert_int_equal(tn_tree_put(t, &c, K("users.dir.x"), K("deep")), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(t, &c, K("users.bob")), TN_SUCCESS);
    assert_int_equal(tn_tree_cas(t, &c, K("users.carol"), K("new"), K("newer")), TN_SUCCESS_OVERWRITE);
    assert_int_equal(tn_tree_cas(t, &c, K("users.alice"), K("root-with-a-much-longer-value"), NULL, 0), TN_SUCCESS);
    assert_int_equal(tn_tree_put(t, &c, K("users.alice"), K("back")), TN_SUCCESS); /* re-created: new create_rev */
    assert_int_equal(tn_tree_put_temp(t, &c, K("lock"), K("me2"), 9000), TN_SUCCESS_OVERWRITE);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("sess"), 99000), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(t, &c, K("sess.a")), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(t, &c, K("sess")), TN_SUCCESS);
    assert_int_equal(tn_tree_mkdir(t, &c, K("sess")), TN_SUCCESS); /* a plain dir where a temp one was */
    assert_int_equal(tn_tree_put(t, &c, K("users"), K("x")), TN_DIR_EXISTS); /* a failed write: harmless */
    assert_int_not_equal(tn_tree_count(t), 0);
    assert_int_equal(tn_tree_txn_rollback(t), TN_SUCCESS);
    assert_false(tn_tree_txn_open(t));
    assert_int_equal(tn_tree_count(t), count);
    assert_same_image(t, before, len);
    /* Expiry order survived: the due list is the same as without the transaction. */
    tn_wctx e = cx(11, 0);
    e.time_ms = 40 + 5000;
    tn_tree_node_view v;
    assert_int_equal(tn_tree_get(t, K("lock"), &v), TN_SUCCESS);
    assert_int_equal(tn_tree_expire(t, &e, K("lock"), v.create_rev), TN_SUCCESS);
    free(before);
    tn_tree_free(t);
}

/* Commit keeps the writes: the image equals the one of the same writes made without a transaction. */
static void test_commit_keeps(void **state)
{
    (void)state;
    tn_tree *a = sample_tree(), *b = sample_tree();
    tn_wctx c = cx(10, 9);
    assert_int_equal(tn_tree_txn_begin(a), TN_SUCCESS);
    assert_int_equal(tn_tree_put(a, &c, K("users.zed"), K("z")), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(a, &c, K("users.bob")), TN_SUCCESS);
    tn_tree_txn_commit(a);
    assert_int_equal(tn_tree_put(b, &c, K("users.zed"), K("z")), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(b, &c, K("users.bob")), TN_SUCCESS);
    size_t len;
    uint8_t *img = image(b, &len);
    assert_same_image(a, img, len);
    free(img);
    tn_tree_txn_commit(a); /* no transaction: no-op */
    assert_int_equal(tn_tree_txn_rollback(a), TN_SUCCESS);
    tn_tree_free(a);
    tn_tree_free(b);
}

/* Random writes on a small key space, rolled back: always the image at begin. */
static void test_random_rollback(void **state)
{
    (void)state;
    static const char *keys[] = {"a", "a.b", "a.c", "a.b.c", "d", "d.e", "f"};
    uint64_t seed = 12345;
    for (int round = 0; round < 300; round++) {
        tn_tree *t = tn_tree_new(NULL);
        uint64_t idx = 1;
        for (int phase = 0; phase < 2; phase++) {
            size_t len = 0;
            uint8_t *before = phase ? image(t, &len) : NULL;
            if (phase) assert_int_equal(tn_tree_txn_begin(t), TN_SUCCESS);
            for (int i = 0; i < 12; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                const char *k = keys[(seed >> 33) % 7];
                int what = (int)((seed >> 20) % 6);
                char val[16];
                snprintf(val, sizeof val, "v%llu", (unsigned long long)(seed >> 50));
                tn_wctx c = cx(idx++, 1);
                switch (what) {
                case 0: tn_tree_put(t, &c, K(k), K(val)); break;
                case 1: tn_tree_mkdir(t, &c, K(k)); break;
                case 2: tn_tree_remove(t, &c, K(k)); break;
                case 3: tn_tree_put_temp(t, &c, K(k), K(val), 100); break;
                case 4: tn_tree_mkdir_temp(t, &c, K(k), 100); break;
                default: tn_tree_update_ttl(t, &c, K(k), 200); break;
                }
            }
            if (phase) {
                assert_int_equal(tn_tree_txn_rollback(t), TN_SUCCESS);
                assert_same_image(t, before, len);
                free(before);
            }
        }
        tn_tree_free(t);
    }
}

/* ---- atomic requests ---------------------------------------------------------------------------- */

static void make_collection(tn_colls *colls)
{
    tn_coll_column cols[2] = {{.name = "id", .name_len = 2, .type = TN_T_INTEGER, .role = TN_R_PK},
                              {.name = "bal", .name_len = 3, .type = TN_T_INTEGER, .role = TN_R_PLAIN}};
    tn_coll_schema s = {.cols = cols, .n_cols = 2};
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    assert_int_equal(tn_coll_create_encode(&s, &p), TN_SUCCESS);
    tn_wctx c = cx(1, 0);
    assert_true(tn_code_ok(tn_colls_write(colls, &c, K("acc"), p.p, p.len, &out)));
    tn_wr_free(&p);
    tn_wr_free(&out);
}

static void rows_payload(tn_wr *w, int64_t id, uint8_t mode, uint64_t rev)
{
    tn_coll_row_op op = {.mode = mode, .pk = tn_val_int(id), .expect_rev = rev, .payload = (const uint8_t *)"p",
                         .payload_len = 1};
    tn_wr_init(w);
    assert_int_equal(tn_coll_rows_encode(&op, 1, 1, w), TN_SUCCESS);
}

static uint8_t *colls_image(const tn_colls *c, size_t *len)
{
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_colls_serialize(c, &w), TN_SUCCESS);
    return tn_wr_take(&w, len);
}

/* A mixed request whose last op fails: nothing of it stays, the failing op is named, the rest conflict. */
static void test_atomic_all_or_nothing(void **state)
{
    (void)state;
    tn_tree *t = sample_tree();
    tn_colls *colls = tn_colls_new();
    make_collection(colls);
    size_t tlen, clen;
    uint8_t *timg = image(t, &tlen), *cimg = colls_image(colls, &clen);
    tn_tree_node_view alice;
    assert_int_equal(tn_tree_get(t, K("users.alice"), &alice), TN_SUCCESS);

    tn_wr rows;
    rows_payload(&rows, 1, TN_ROW_INSERT, 0);
    tn_op ops[5];
    memset(ops, 0, sizeof ops);
    ops[0] = (tn_op){.opcode = TN_OP_KV_CHECK, .key = K("users.alice"), .cond = TN_COND_REV,
                     .cond_rev = alice.update_rev};
    ops[1] = (tn_op){.opcode = TN_OP_KV_PUT, .key = K("users.carol"), .value = K("c"), .cond = TN_COND_ABSENT};
    ops[2] = (tn_op){.opcode = TN_OP_COLL_WRITE, .key = K("acc"), .value = rows.p, .value_len = rows.len};
    ops[3] = (tn_op){.opcode = TN_OP_KV_REMOVE, .key = K("users.bob")};
    ops[4] = (tn_op){.opcode = TN_OP_KV_CHECK, .key = K("users.bob"), .cond = TN_COND_REV, .cond_rev = 3};
    tn_req req = {.flags = TN_REQF_ATOMIC, .req_id = 5, .n_ops = 5, .ops = ops};
    tn_wctx c = cx(20, 0);
    tn_wr out;
    tn_wr_init(&out);
    assert_int_equal(tn_atomic_apply(t, colls, &c, &req, &out), TN_SUCCESS);
    tn_resp resp;
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.code, TN_SUCCESS);
    assert_int_equal(resp.n_results, 5);
    for (int i = 0; i < 4; i++) assert_int_equal(resp.results[i].code, TN_TXN_CONFLICT);
    assert_int_equal(resp.results[4].code, TN_NOT_FOUND); /* bob was removed by op 3 of the same request */
    tn_resp_clear(&resp);
    assert_same_image(t, timg, tlen);
    size_t n;
    uint8_t *cnow = colls_image(colls, &n);
    assert_int_equal(n, clen);
    assert_memory_equal(cnow, cimg, clen);
    free(cnow);

    /* Without the failing check it all applies. */
    req.n_ops = 4;
    out.len = 0;
    assert_int_equal(tn_atomic_apply(t, colls, &c, &req, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    for (int i = 0; i < 4; i++) assert_true(tn_code_ok(resp.results[i].code));
    assert_int_equal(resp.results[1].n_entries, 1); /* the node as written */
    assert_int_equal(resp.results[1].entries[0].update_rev, 20);
    tn_resp_clear(&resp);
    tn_tree_node_view v;
    assert_int_equal(tn_tree_get(t, K("users.carol"), &v), TN_SUCCESS);
    assert_int_equal(tn_tree_get(t, K("users.bob"), &v), TN_NOT_FOUND);
    assert_int_equal(tn_colls_rows(colls, K("acc")), 1);
    assert_false(tn_tree_txn_open(t));

    /* A stale read of the directory (its update_rev moved) fails a KV_CHECK: phantom guard for a listing. */
    tn_op chk = {.opcode = TN_OP_KV_CHECK, .key = K("users"), .cond = TN_COND_REV, .cond_rev = 3};
    tn_op put = {.opcode = TN_OP_KV_PUT, .key = K("other"), .value = K("o")};
    tn_op two[2] = {put, chk};
    tn_req r2 = {.flags = TN_REQF_ATOMIC, .req_id = 6, .n_ops = 2, .ops = two};
    out.len = 0;
    c = cx(21, 0);
    assert_int_equal(tn_atomic_apply(t, colls, &c, &r2, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.results[1].code, TN_REVISION_MISMATCH);
    tn_resp_clear(&resp);
    assert_int_equal(tn_tree_get(t, K("other"), &v), TN_NOT_FOUND);

    /* A read or an EXPIRE cannot be part of a transaction: refused whole. */
    tn_op bad[2] = {put, {.opcode = TN_OP_KV_EXPIRE, .key = K("lock"), .expect_rev = 4}};
    r2.ops = bad;
    out.len = 0;
    assert_int_equal(tn_atomic_apply(t, colls, &c, &r2, &out), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.code, TN_BAD_REQUEST);
    tn_resp_clear(&resp);
    assert_int_equal(tn_tree_get(t, K("other"), &v), TN_NOT_FOUND);

    tn_wr_free(&out);
    tn_wr_free(&rows);
    free(timg);
    free(cimg);
    tn_colls_free(colls);
    tn_tree_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollback_every_write),
        cmocka_unit_test(test_commit_keeps),
        cmocka_unit_test(test_random_rollback),
        cmocka_unit_test(test_atomic_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
