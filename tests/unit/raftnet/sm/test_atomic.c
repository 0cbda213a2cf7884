/* test_atomic.c — the all-or-nothing apply of atomic requests mixing tree writes, KV_CHECK and collection
 * writes (raftnet/sm/atomic.h). The oracle for "unchanged" is the tree's deterministic image
 * (tn_tree_serialize) and tn_colls_serialize. */
#include "atomic.h"
#include "coll.h"
#include "test_tree_util.h"
#include "wire.h"

static void make_collection(tn_colls *colls)
{
    tn_coll_column cols[2] = {{.name = "id", .name_len = 2, .type = TN_T_INTEGER, .role = TN_R_PK},
                              {.name = "bal", .name_len = 3, .type = TN_T_INTEGER, .role = TN_R_PLAIN}};
    tn_coll_schema s = {.cols = cols, .n_cols = 2};
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    assert_int_equal(tn_coll_create_encode(&s, &p), TN_SUCCESS);
    tn_wctx c = wc(1, 0);
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
    uint8_t *timg = image_of(t, &tlen), *cimg = colls_image(colls, &clen);
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
    tn_wctx c = wc(20, 0);
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
    assert_image(t, timg, tlen);
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
    c = wc(21, 0);
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
        cmocka_unit_test(test_atomic_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
