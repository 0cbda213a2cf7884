/* test_coll.c — the collection store (raftnet/sm/coll.h): create/attach/drop, index maintenance,
 * conditional writes, atomic batches, transactions, snapshots, truncated and mutated payloads. The executor
 * is test_coll_query.c, the randomized differential test test_coll_rand.c, allocation failures
 * test_coll_fault.c; values and schemas (proto/coll_value.c) are proto/test_coll_value.c. */
#include <stdlib.h>

#include "test_coll_util.h"

static void test_create_attach_drop(void **state)
{
    (void)state;
    char msg[400];
    tn_colls *cs = fresh_events();
    assert_int_equal(ct_create(cs, "events", &ev_schema, 2, msg, sizeof msg), TN_SUCCESS_OVERWRITE);
    tn_coll_column d[5];
    memcpy(d, ev_cols, sizeof d);
    d[2].role = TN_R_HASH;
    tn_coll_schema other = {5, d, TN_COMPRESS_LZ4};
    assert_int_equal(ct_create(cs, "events", &other, 3, msg, sizeof msg), TN_COLLECTION_EXISTS);
    assert_string_equal(msg, "column 3: 'date' is INDEXED here but ORDERED in the stored collection");

    /* SCHEMA query returns the stored schema */
    tn_coll_query q = {.kind = TN_QUERY_SCHEMA};
    tn_coll_result res;
    uint8_t *buf;
    assert_int_equal(ct_query(cs, "events", &q, &res, &buf, NULL), TN_SUCCESS);
    assert_int_equal(res.kind, TN_QUERY_SCHEMA);
    assert_int_equal(res.revision, 77);
    assert_int_equal(tn_coll_schema_diff(&res.schema, &ev_schema, msg, sizeof msg), 0);
    tn_coll_result_clear(&res);
    free(buf);

    /* drop, then queries and writes fail with NO_SUCH_COLLECTION */
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    tn_coll_drop_encode(&p);
    tn_wctx ctx = {4, 0, 0};
    assert_int_equal(tn_colls_write(cs, &ctx, "events", 6, p.p, p.len, &out), TN_SUCCESS);
    assert_int_equal(tn_colls_count(cs), 0);
    out.len = 0;
    ctx.index = 5;
    assert_int_equal(tn_colls_write(cs, &ctx, "events", 6, p.p, p.len, &out), TN_NO_SUCH_COLLECTION);
    tn_wr_free(&p);
    tn_wr_free(&out);
    assert_int_equal(ct_query(cs, "events", &q, &res, &buf, NULL), TN_NO_SUCH_COLLECTION);
    assert_non_null(strstr(res.message, "no collection 'events'"));
    tn_coll_result_clear(&res);
    free(buf);
    /* invalid schema rejected with its reason */
    tn_coll_column bad[2] = {{"id", 2, TN_T_REAL, TN_R_PK}, {"x", 1, TN_T_TEXT, TN_R_PLAIN}};
    tn_wr_init(&p);
    tn_wr_init(&out);
    tn_wr_u8(&p, TN_CWRITE_CREATE);
    tn_coll_schema_encode(&(tn_coll_schema){2, bad, 0}, &p);
    ctx.index = 6;
    assert_int_equal(tn_colls_write(cs, &ctx, "t", 1, p.p, p.len, &out), TN_CLIENT_REQ_ERROR);
    tn_coll_write_result wr;
    assert_int_equal(tn_coll_write_result_decode(out.p, out.len, &wr), TN_SUCCESS);
    assert_non_null(strstr(wr.message, "must be INTEGER or TEXT"));
    tn_coll_write_result_clear(&wr);
    tn_wr_free(&p);
    tn_wr_free(&out);
    assert_int_equal(tn_colls_check(cs), 0);
    tn_colls_free(cs);
}

/* ---- index maintenance ----------------------------------------------------------------------------- */

static void expect_stats(tn_colls *cs, uint64_t rows, const uint64_t distinct[N_SLOTS], const uint64_t nulls[N_SLOTS])
{
    tn_coll_stats st;
    assert_int_equal(tn_colls_stats(cs, "events", 6, &st), TN_SUCCESS);
    assert_int_equal(st.rows, rows);
    assert_int_equal(st.n_idx, N_SLOTS);
    for (int s = 0; s < N_SLOTS; s++) {
        assert_int_equal(st.idx[s].rows, rows);
        assert_int_equal(st.idx[s].distinct, distinct[s]);
        assert_int_equal(st.idx[s].nulls, nulls[s]);
    }
    assert_int_equal(st.idx[SLOT_KIND].column, COL_KIND);
    assert_int_equal(st.idx[SLOT_KIND].role, TN_R_HASH);
    assert_int_equal(st.idx[SLOT_NUM].role, TN_R_ORDERED);
    tn_coll_stats_clear(&st);
    assert_int_equal(tn_colls_check(cs), 0);
}

static void test_index_maintenance(void **state)
{
    (void)state;
    tn_colls *cs = fresh_events();
    int64_t ids[16];
    assert_int_equal(ct_put(cs, 10, TN_ROW_INSERT, 1, T("a"), T("2026-01-01"), I(5), "p1", NULL), TN_SUCCESS);
    assert_int_equal(ct_put(cs, 11, TN_ROW_INSERT, 2, T("a"), N(), I(5), "p2", NULL), TN_SUCCESS);
    assert_int_equal(ct_put(cs, 12, TN_ROW_INSERT, 3, N(), N(), N(), "p3", NULL), TN_SUCCESS);
    expect_stats(cs, 3, (uint64_t[]){2, 2, 2}, (uint64_t[]){1, 2, 1});

    /* NULL is a valid indexed value */
    assert_int_equal(ids_where(cs, P_null(COL_DATE, 1), ids, 16), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids_where(cs, P_null(COL_KIND, 1), ids, 16), 1);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids_where(cs, P_null(COL_KIND, 0), ids, 16), 2);
    /* col = NULL never matches */
    assert_int_equal(ids_where(cs, P_eq(COL_DATE, N()), ids, 16), 0);

    /* update changing index values */
    tn_val idx[N_SLOTS] = {T("b"), T("2026-02-02"), I(7)};
    tn_coll_row_op op = ct_row(TN_ROW_UPDATE, I(2), idx, "p2b");
    op.old_pk = I(2);
    op.expect_rev = 11;
    ct_wres wr;
    assert_int_equal(ct_rows(cs, "events", 13, &op, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(wr.ops[0].rev, 13);
    expect_stats(cs, 3, (uint64_t[]){3, 3, 3}, (uint64_t[]){1, 1, 1});
    assert_int_equal(ids_where(cs, P_eq(COL_KIND, T("a")), ids, 16), 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids_where(cs, P_eq(COL_KIND, T("b")), ids, 16), 1);
    assert_int_equal(ids_where(cs, P_eq(COL_NUM, I(7)), ids, 16), 1);
    assert_int_equal(ids[0], 2);

    /* update changing the pk: 2 -> 20, with the same index values as row 1 (duplicates) */
    tn_val idx2[N_SLOTS] = {T("a"), T("2026-01-01"), I(5)};
    op = ct_row(TN_ROW_UPDATE, I(20), idx2, "p20");
    op.old_pk = I(2);
    op.expect_rev = 13;
    assert_int_equal(ct_rows(cs, "events", 14, &op, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(tn_colls_rows(cs, "events", 6), 3);
    expect_stats(cs, 3, (uint64_t[]){2, 2, 2}, (uint64_t[]){1, 1, 1});
    assert_int_equal(ids_where(cs, P_eq(COL_ID, I(2)), ids, 16), 0);
    assert_int_equal(ids_where(cs, P_eq(COL_DATE, T("2026-01-01")), ids, 16), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 20);
    assert_int_equal(ids_where(cs, P_eq(COL_KIND, T("a")), ids, 16), 2);

    /* pk change onto an existing pk fails, nothing changes */
    op = ct_row(TN_ROW_UPDATE, I(1), idx2, "x");
    op.old_pk = I(20);
    op.expect_rev = 14;
    assert_int_equal(ct_rows(cs, "events", 15, &op, 1, 0, &wr), TN_ROW_EXISTS);
    assert_non_null(strstr(wr.msg, "row 1 (pk 1): ROW_EXISTS"));
    expect_stats(cs, 3, (uint64_t[]){2, 2, 2}, (uint64_t[]){1, 1, 1});

    /* delete */
    tn_coll_row_op del = {.mode = TN_ROW_DELETE, .pk = I(1), .expect_rev = 10};
    assert_int_equal(ct_rows(cs, "events", 16, &del, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(wr.ops[0].affected, 1);
    expect_stats(cs, 2, (uint64_t[]){2, 2, 2}, (uint64_t[]){1, 1, 1});
    assert_int_equal(ids_where(cs, P_eq(COL_KIND, T("a")), ids, 16), 1);
    assert_int_equal(ids[0], 20);
    del.pk = I(20);
    del.expect_rev = 0;
    assert_int_equal(ct_rows(cs, "events", 17, &del, 1, 0, &wr), TN_SUCCESS);
    del.pk = I(3);
    assert_int_equal(ct_rows(cs, "events", 18, &del, 1, 0, &wr), TN_SUCCESS);
    expect_stats(cs, 0, (uint64_t[]){0, 0, 0}, (uint64_t[]){0, 0, 0});
    /* unconditional delete of a missing row: success, nothing affected */
    assert_int_equal(ct_rows(cs, "events", 19, &del, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(wr.ops[0].affected, 0);
    tn_colls_free(cs);
}

/* Many rows with few distinct values exercise B+tree splits, merges and hash bucket growth. */
static void test_index_bulk(void **state)
{
    (void)state;
    tn_colls *cs = fresh_events();
    enum { NR = 3000 };
    uint64_t rev = 2;
    tn_coll_row_op ops[200];
    tn_val idx[200][N_SLOTS];
    char dates[200][16];
    ct_wres wr;
    for (int base = 0; base < NR; base += 200) {
        for (int k = 0; k < 200; k++) {
            int id = (base + k) * 7919 % NR; /* scrambled order */
            snprintf(dates[k], sizeof dates[k], "d%03d", id % 50);
            idx[k][0] = id % 3 ? T(id % 3 == 1 ? "x" : "y") : N();
            idx[k][1] = id % 11 ? T(dates[k]) : N();
            idx[k][2] = I(id % 13);
            ops[k] = ct_row(TN_ROW_INSERT, I(id), idx[k], "payload");
        }
        assert_int_equal(ct_rows(cs, "events", rev++, ops, 200, 1, &wr), TN_SUCCESS);
    }
    assert_int_equal(tn_colls_check(cs), 0);
    assert_int_equal(tn_colls_rows(cs, "events", 6), NR);
    /* delete two thirds in another scrambled order, checking invariants along the way */
    for (int base = 0; base < NR; base += 200) {
        int n = 0;
        for (int k = 0; k < 200; k++) {
            int id = (base + k) * 4099 % NR;
            if (id % 3 == 0) continue;
            ops[n++] = (tn_coll_row_op){.mode = TN_ROW_DELETE, .pk = I(id)};
        }
        assert_int_equal(ct_rows(cs, "events", rev++, ops, (size_t)n, 0, &wr), TN_SUCCESS);
        assert_int_equal(tn_colls_check(cs), 0);
    }
    assert_int_equal(tn_colls_rows(cs, "events", 6), NR / 3);
    tn_coll_stats st;
    assert_int_equal(tn_colls_stats(cs, "events", 6, &st), TN_SUCCESS);
    assert_int_equal(st.idx[SLOT_KIND].distinct, 1); /* only NULL kinds remain */
    assert_int_equal(st.idx[SLOT_KIND].nulls, NR / 3);
    tn_coll_stats_clear(&st);
    tn_colls_free(cs);
}

/* ---- conditional writes ---------------------------------------------------------------------------- */

static void test_conditional_writes(void **state)
{
    (void)state;
    tn_colls *cs = fresh_events();
    int aff;
    assert_int_equal(ct_put(cs, 10, TN_ROW_INSERT, 1, T("a"), N(), I(1), "v1", &aff), TN_SUCCESS);
    assert_int_equal(aff, 1);
    assert_int_equal(ct_put(cs, 11, TN_ROW_INSERT, 1, T("b"), N(), I(2), "v2", &aff), TN_ROW_EXISTS);
    assert_int_equal(aff, 0);
    /* OR IGNORE: success, nothing affected, the existing revision reported */
    tn_val idx[N_SLOTS] = {T("b"), N(), I(2)};
    tn_coll_row_op op = ct_row(TN_ROW_INSERT_OR_IGNORE, I(1), idx, "v2");
    ct_wres wr;
    assert_int_equal(ct_rows(cs, "events", 12, &op, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(wr.ops[0].affected, 0);
    assert_int_equal(wr.ops[0].rev, 10);
    op.pk = I(2);
    assert_int_equal(ct_rows(cs, "events", 13, &op, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(wr.ops[0].affected, 1);
    assert_int_equal(wr.ops[0].rev, 13);
    /* UPSERT: replace */
    op.mode = TN_ROW_UPSERT;
    op.pk = I(1);
    assert_int_equal(ct_rows(cs, "events", 14, &op, 1, 0, &wr), TN_SUCCESS_OVERWRITE);
    assert_int_equal(wr.ops[0].rev, 14);
    int64_t ids[4];
    assert_int_equal(ids_where(cs, P_eq(COL_KIND, T("a")), ids, 4), 0);
    /* UPDATE with a stale revision */
    op.mode = TN_ROW_UPDATE;
    op.old_pk = I(1);
    op.expect_rev = 10;
    assert_int_equal(ct_rows(cs, "events", 15, &op, 1, 0, &wr), TN_REVISION_MISMATCH);
    assert_string_equal(wr.msg, "row 1 (pk 1): REVISION_MISMATCH: expected revision 10, the row is at revision 14");
    assert_int_equal(wr.failed, 1);
    op.expect_rev = 14;
    assert_int_equal(ct_rows(cs, "events", 16, &op, 1, 0, &wr), TN_SUCCESS);
    op.old_pk = op.pk = I(9);
    assert_int_equal(ct_rows(cs, "events", 17, &op, 1, 0, &wr), TN_NOT_FOUND);
    /* DELETE with a stale revision, then the right one */
    tn_coll_row_op del = {.mode = TN_ROW_DELETE, .pk = I(1), .expect_rev = 14};
    assert_int_equal(ct_rows(cs, "events", 18, &del, 1, 0, &wr), TN_REVISION_MISMATCH);
    del.expect_rev = 16;
    assert_int_equal(ct_rows(cs, "events", 19, &del, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(ct_rows(cs, "events", 20, &del, 1, 0, &wr), TN_NOT_FOUND);
    /* CHECK */
    tn_coll_row_op chk = {.mode = TN_ROW_CHECK, .pk = I(2), .expect_rev = 13};
    assert_int_equal(ct_rows(cs, "events", 21, &chk, 1, 0, &wr), TN_SUCCESS);
    chk.expect_rev = 12;
    assert_int_equal(ct_rows(cs, "events", 22, &chk, 1, 0, &wr), TN_REVISION_MISMATCH);
    chk.expect_rev = 0; /* must be absent */
    assert_int_equal(ct_rows(cs, "events", 23, &chk, 1, 0, &wr), TN_REVISION_MISMATCH);
    chk.pk = I(1);
    assert_int_equal(ct_rows(cs, "events", 24, &chk, 1, 0, &wr), TN_SUCCESS);
    chk.expect_rev = 5;
    assert_int_equal(ct_rows(cs, "events", 25, &chk, 1, 0, &wr), TN_NOT_FOUND);
    assert_int_equal(tn_colls_check(cs), 0);
    /* wrong number of index values: the whole batch is malformed */
    tn_coll_row_op bad = ct_row(TN_ROW_INSERT, I(50), idx, "x");
    bad.n_idx = 2;
    assert_int_equal(ct_rows(cs, "events", 26, &bad, 1, 0, &wr), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(wr.msg, "2 index values given"));
    tn_colls_free(cs);
}

static void test_atomic_batch(void **state)
{
    (void)state;
    tn_colls *cs = fresh_events();
    assert_int_equal(ct_put(cs, 10, TN_ROW_INSERT, 3, T("a"), N(), I(1), "v", NULL), TN_SUCCESS);
    tn_val idx[N_SLOTS] = {T("z"), T("d"), I(9)};
    tn_coll_row_op ops[4] = {ct_row(TN_ROW_INSERT, I(1), idx, "x"), ct_row(TN_ROW_UPSERT, I(3), idx, "y"),
                             ct_row(TN_ROW_INSERT, I(3), idx, "z"), ct_row(TN_ROW_INSERT, I(4), idx, "w")};
    ct_wres wr;
    /* atomic: op 3 fails, nothing is applied */
    assert_int_equal(ct_rows(cs, "events", 11, ops, 4, 1, &wr), TN_ROW_EXISTS);
    assert_int_equal(wr.failed, 3);
    assert_non_null(strstr(wr.msg, "row 3 (pk 3): ROW_EXISTS"));
    assert_int_equal(wr.ops[2].code, TN_ROW_EXISTS);
    assert_int_equal(wr.ops[0].code, TN_TXN_CONFLICT);
    assert_int_equal(wr.ops[3].code, TN_TXN_CONFLICT);
    assert_int_equal(tn_colls_rows(cs, "events", 6), 1);
    int64_t ids[4];
    assert_int_equal(ids_where(cs, P_eq(COL_KIND, T("a")), ids, 4), 1); /* the upsert was undone */
    assert_int_equal(ids_where(cs, P_eq(COL_KIND, T("z")), ids, 4), 0);
    assert_int_equal(tn_colls_check(cs), 0);
    /* non-atomic: each op stands alone */
    assert_int_equal(ct_rows(cs, "events", 12, ops, 4, 0, &wr), TN_ROW_EXISTS);
    assert_int_equal(wr.ops[0].code, TN_SUCCESS);
    assert_int_equal(wr.ops[1].code, TN_SUCCESS_OVERWRITE);
    assert_int_equal(wr.ops[2].code, TN_ROW_EXISTS);
    assert_int_equal(wr.ops[3].code, TN_SUCCESS);
    assert_int_equal(tn_colls_rows(cs, "events", 6), 3);
    assert_int_equal(tn_colls_check(cs), 0);
    /* atomic success: delete + reinsert the same pk in one batch */
    tn_coll_row_op ops2[2] = {{.mode = TN_ROW_DELETE, .pk = I(1), .expect_rev = 12},
                              ct_row(TN_ROW_INSERT, I(1), idx, "again")};
    assert_int_equal(ct_rows(cs, "events", 13, ops2, 2, 1, &wr), TN_SUCCESS);
    assert_int_equal(wr.ops[1].rev, 13);
    assert_int_equal(tn_colls_check(cs), 0);
    tn_colls_free(cs);
}

static void test_range_check(void **state)
{
    (void)state;
    tn_colls *cs = sample(); /* revisions 101..120 */
    tn_coll_pred rp = P_range(COL_NUM, TN_BOUND_INCL, I(1), TN_BOUND_INCL, I(2));
    tn_coll_row_op rc = {.mode = TN_ROW_RANGE_CHECK, .preds = &rp, .n_preds = 1, .expect_rev = 120};
    ct_wres wr;
    assert_int_equal(ct_rows(cs, "events", 121, &rc, 1, 0, &wr), TN_SUCCESS);
    /* an insert outside the range does not conflict */
    assert_int_equal(ct_put(cs, 122, TN_ROW_INSERT, 30, N(), N(), I(5), "", NULL), TN_SUCCESS);
    assert_int_equal(ct_rows(cs, "events", 123, &rc, 1, 0, &wr), TN_SUCCESS);
    /* an insert inside it does */
    assert_int_equal(ct_put(cs, 124, TN_ROW_INSERT, 31, N(), N(), I(2), "", NULL), TN_SUCCESS);
    assert_int_equal(ct_rows(cs, "events", 125, &rc, 1, 0, &wr), TN_TXN_CONFLICT);
    rc.expect_rev = 124;
    assert_int_equal(ct_rows(cs, "events", 126, &rc, 1, 0, &wr), TN_SUCCESS);
    /* any delete conflicts (coarse rule: a removed row may have been in the range) */
    tn_coll_row_op del = {.mode = TN_ROW_DELETE, .pk = I(30)};
    assert_int_equal(ct_rows(cs, "events", 127, &del, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(ct_rows(cs, "events", 128, &rc, 1, 0, &wr), TN_TXN_CONFLICT);
    assert_non_null(strstr(wr.msg, "TXN_CONFLICT"));
    /* the whole collection (no predicates) */
    tn_coll_row_op all = {.mode = TN_ROW_RANGE_CHECK, .expect_rev = 127};
    assert_int_equal(ct_rows(cs, "events", 129, &all, 1, 0, &wr), TN_SUCCESS);
    all.expect_rev = 126;
    assert_int_equal(ct_rows(cs, "events", 130, &all, 1, 0, &wr), TN_TXN_CONFLICT);
    /* a range check on an unsupported predicate is a malformed batch */
    tn_coll_pred bp = P_range(COL_KIND, TN_BOUND_INCL, T("a"), TN_BOUND_NONE, N());
    tn_coll_row_op badrc = {.mode = TN_ROW_RANGE_CHECK, .preds = &bp, .n_preds = 1, .expect_rev = 1};
    assert_int_equal(ct_rows(cs, "events", 131, &badrc, 1, 0, &wr), TN_CLIENT_REQ_ERROR);
    tn_colls_free(cs);
}

static void test_transactions(void **state)
{
    (void)state;
    tn_colls *cs = sample();
    tn_wr before, after;
    tn_wr_init(&before);
    tn_wr_init(&after);
    assert_int_equal(tn_colls_serialize(cs, &before), TN_SUCCESS);
    assert_int_equal(tn_colls_txn_begin(cs), TN_SUCCESS);
    assert_int_equal(tn_colls_txn_begin(cs), TN_INTERNAL);
    ct_wres wr;
    tn_coll_row_op del = {.mode = TN_ROW_DELETE, .pk = I(4)};
    assert_int_equal(ct_rows(cs, "events", 200, &del, 1, 0, &wr), TN_SUCCESS);
    assert_int_equal(ct_put(cs, 201, TN_ROW_UPSERT, 5, T("new"), N(), I(1), "", NULL), TN_SUCCESS_OVERWRITE);
    assert_int_equal(ct_put(cs, 202, TN_ROW_INSERT, 50, T("new"), N(), I(1), "", NULL), TN_SUCCESS);
    assert_int_equal(ct_create(cs, "other", &ev_schema, 203, NULL, 0), TN_SUCCESS);
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    tn_coll_drop_encode(&p);
    tn_wctx ctx = {204, 0, 0};
    assert_int_equal(tn_colls_write(cs, &ctx, "events", 6, p.p, p.len, &out), TN_SUCCESS);
    assert_int_equal(tn_colls_count(cs), 1);
    assert_int_equal(tn_colls_serialize(cs, &after), TN_INTERNAL); /* not while a transaction is open */
    tn_colls_txn_rollback(cs);
    assert_int_equal(tn_colls_count(cs), 1);
    assert_int_equal(tn_colls_rows(cs, "events", 6), 20);
    assert_int_equal(tn_colls_check(cs), 0);
    assert_int_equal(tn_colls_serialize(cs, &after), TN_SUCCESS);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.p, after.p, before.len);
    /* commit keeps */
    assert_int_equal(tn_colls_txn_begin(cs), TN_SUCCESS);
    assert_int_equal(ct_rows(cs, "events", 210, &del, 1, 0, &wr), TN_SUCCESS);
    out.len = 0;
    ctx.index = 211;
    assert_int_equal(tn_colls_write(cs, &ctx, "events", 6, p.p, p.len, &out), TN_SUCCESS);
    tn_colls_txn_commit(cs);
    assert_int_equal(tn_colls_count(cs), 0);
    /* drop and re-create the same name in one transaction: rollback restores the old one, with its rows */
    assert_int_equal(ct_create(cs, "events", &ev_schema, 213, NULL, 0), TN_SUCCESS);
    assert_int_equal(ct_put(cs, 214, TN_ROW_INSERT, 1, T("old"), N(), I(1), "", NULL), TN_SUCCESS);
    assert_int_equal(tn_colls_txn_begin(cs), TN_SUCCESS);
    out.len = 0;
    ctx.index = 215;
    assert_int_equal(tn_colls_write(cs, &ctx, "events", 6, p.p, p.len, &out), TN_SUCCESS);
    tn_coll_column other_cols[2] = {{"k", 1, TN_T_TEXT, TN_R_PK}, {"v", 1, TN_T_BLOB, TN_R_PLAIN}};
    tn_coll_schema other = {2, other_cols, 0};
    assert_int_equal(ct_create(cs, "events", &other, 216, NULL, 0), TN_SUCCESS);
    tn_colls_txn_rollback(cs);
    assert_int_equal(tn_colls_rows(cs, "events", 6), 1);
    assert_int_equal(ct_create(cs, "events", &ev_schema, 217, NULL, 0), TN_SUCCESS_OVERWRITE);
    assert_int_equal(tn_colls_check(cs), 0);
    /* and committed: the new schema stays, and a range check from before the re-creation conflicts */
    assert_int_equal(tn_colls_txn_begin(cs), TN_SUCCESS);
    out.len = 0;
    ctx.index = 218;
    assert_int_equal(tn_colls_write(cs, &ctx, "events", 6, p.p, p.len, &out), TN_SUCCESS);
    assert_int_equal(ct_create(cs, "events", &other, 219, NULL, 0), TN_SUCCESS);
    tn_colls_txn_commit(cs);
    assert_int_equal(tn_colls_rows(cs, "events", 6), 0);
    tn_coll_row_op rc = {.mode = TN_ROW_RANGE_CHECK, .expect_rev = 217};
    assert_int_equal(ct_rows(cs, "events", 220, &rc, 1, 0, &wr), TN_TXN_CONFLICT);
    rc.expect_rev = 219;
    assert_int_equal(ct_rows(cs, "events", 221, &rc, 1, 0, &wr), TN_SUCCESS);
    /* free with an open transaction discards it */
    assert_int_equal(tn_colls_txn_begin(cs), TN_SUCCESS);
    assert_int_equal(ct_create(cs, "x", &ev_schema, 212, NULL, 0), TN_SUCCESS);
    tn_wr_free(&p);
    tn_wr_free(&out);
    tn_wr_free(&before);
    tn_wr_free(&after);
    tn_colls_free(cs);
}

/* ---- snapshots ----------------------------------------------------------------------------------- */

static void test_snapshot(void **state)
{
    (void)state;
    tn_colls *a = sample();
    assert_int_equal(ct_create(a, "aaa", &ev_schema, 300, NULL, 0), TN_SUCCESS);
    tn_wr s1, s2, s3;
    tn_wr_init(&s1);
    tn_wr_init(&s2);
    tn_wr_init(&s3);
    assert_int_equal(tn_colls_serialize(a, &s1), TN_SUCCESS);
    tn_colls *b = tn_colls_new();
    assert_int_equal(ct_create(b, "junk", &ev_schema, 1, NULL, 0), TN_SUCCESS);
    assert_int_equal(tn_colls_deserialize(b, s1.p, s1.len), TN_SUCCESS);
    assert_int_equal(tn_colls_count(b), 2);
    assert_int_equal(tn_colls_rows(b, "junk", 4), -1);
    assert_int_equal(tn_colls_check(b), 0);
    assert_int_equal(tn_colls_serialize(b, &s2), TN_SUCCESS);
    assert_int_equal(s1.len, s2.len);
    assert_memory_equal(s1.p, s2.p, s1.len);
    /* the restored store answers queries and keeps stats */
    tn_coll_pred p = P_eq(COL_KIND, T("k1"));
    tn_coll_query q = ct_select(&p, 1);
    expect_ids(b, &q, IDS(1, 9, 13, 17), "hash");

    /* same state reached by a different history => same bytes */
    tn_colls *c = fresh_events();
    assert_int_equal(ct_create(c, "aaa", &ev_schema, 300, NULL, 0), TN_SUCCESS);
    static char kinds[4][4] = {"k0", "k1", "k2", "k3"};
    for (int id = 20; id >= 1; id--) {
        char date[16];
        snprintf(date, sizeof date, "2026-01-%02d", id % 10);
        /* insert a wrong version first, then upsert the right one at the right revision */
        assert_int_equal(ct_put(c, (uint64_t)(50 + id), TN_ROW_INSERT, id, T("junk"), N(), I(0), "zz", NULL),
                         TN_SUCCESS);
        assert_int_equal(ct_put(c, (uint64_t)(100 + id), TN_ROW_UPSERT, id, id % 5 ? T(kinds[id % 4]) : N(),
                                id % 7 ? T(date) : N(), id % 9 ? I(id % 6) : N(), "pp", NULL),
                         TN_SUCCESS_OVERWRITE);
    }
    assert_int_equal(tn_colls_serialize(c, &s3), TN_SUCCESS);
    /* last_remove differs (upserts replaced rows) so compare after normalising: rows must match */
    tn_colls *d = tn_colls_new();
    assert_int_equal(tn_colls_deserialize(d, s3.p, s3.len), TN_SUCCESS);
    assert_int_equal(tn_colls_rows(d, "events", 6), 20);
    tn_colls_free(d);

    /* malformed images are refused and leave the store unchanged */
    for (size_t cut = 0; cut < s1.len; cut++) {
        assert_int_equal(tn_colls_deserialize(b, s1.p, cut), TN_CLIENT_REQ_ERROR);
    }
    uint8_t *dup = malloc(s1.len + 1);
    memcpy(dup, s1.p, s1.len);
    dup[s1.len] = 0;
    assert_int_equal(tn_colls_deserialize(b, dup, s1.len + 1), TN_CLIENT_REQ_ERROR); /* trailing byte */
    free(dup);
    assert_int_equal(tn_colls_count(b), 2);
    assert_int_equal(tn_colls_rows(b, "events", 6), 20);
    tn_wr_free(&s1);
    tn_wr_free(&s2);
    tn_wr_free(&s3);
    tn_colls_free(a);
    tn_colls_free(b);
    tn_colls_free(c);
}

/* ---- truncated payloads ---------------------------------------------------------------------------- */

static void test_truncations(void **state)
{
    (void)state;
    tn_colls *cs = sample();
    tn_wr snap;
    tn_wr_init(&snap);
    assert_int_equal(tn_colls_serialize(cs, &snap), TN_SUCCESS);

    /* a row batch of every op kind */
    tn_val idx[N_SLOTS] = {T("q"), T("2027"), tn_val_real(1.5)};
    tn_coll_pred rp = P_range(COL_NUM, TN_BOUND_INCL, I(1), TN_BOUND_EXCL, I(3));
    tn_val inv[] = {I(1), I(2)};
    tn_coll_pred rp2[2] = {P_in(COL_ID, inv, 2), P_prefix(COL_DATE, "20", 1)};
    /* checks first: they see the effects of earlier ops of the same batch */
    tn_coll_row_op ops[7] = {
        {.mode = TN_ROW_RANGE_CHECK, .preds = &rp, .n_preds = 1, .expect_rev = 500},
        {.mode = TN_ROW_RANGE_CHECK, .preds = rp2, .n_preds = 2, .expect_rev = 500},
        {.mode = TN_ROW_CHECK, .pk = I(4), .expect_rev = 104},
        ct_row(TN_ROW_INSERT, I(40), idx, "payload"),
        ct_row(TN_ROW_UPSERT, I(41), idx, ""),
        ct_row(TN_ROW_UPDATE, I(42), idx, "u"),
        {.mode = TN_ROW_DELETE, .pk = I(3), .expect_rev = 103},
    };
    ops[5].old_pk = I(5);
    ops[5].expect_rev = 105;
    tn_wr p;
    tn_wr_init(&p);
    assert_int_equal(tn_coll_rows_encode(ops, 7, 1, &p), TN_SUCCESS);
    for (size_t cut = 0; cut < p.len; cut++) {
        tn_wr out;
        tn_wr_init(&out);
        tn_wctx ctx = {1000 + cut, 0, 0};
        int rc = tn_colls_write(cs, &ctx, "events", 6, p.p, cut, &out);
        assert_int_equal(rc, TN_CLIENT_REQ_ERROR);
        tn_coll_write_result wr;
        assert_int_equal(tn_coll_write_result_decode(out.p, out.len, &wr), TN_SUCCESS);
        assert_int_equal(wr.code, TN_CLIENT_REQ_ERROR);
        tn_coll_write_result_clear(&wr);
        /* and the decoder refuses every truncation of a result */
        for (size_t c2 = 0; c2 < out.len; c2++)
            assert_int_equal(tn_coll_write_result_decode(out.p, c2, &wr), TN_CLIENT_REQ_ERROR);
        tn_wr_free(&out);
    }
    tn_wr snap2;
    tn_wr_init(&snap2);
    assert_int_equal(tn_colls_serialize(cs, &snap2), TN_SUCCESS);
    assert_int_equal(snap.len, snap2.len);
    assert_memory_equal(snap.p, snap2.p, snap.len); /* nothing was applied */
    tn_wr_free(&snap2);
    /* the full batch applies */
    tn_wr out;
    tn_wr_init(&out);
    tn_wctx ctx = {5000, 0, 0};
    assert_int_equal(tn_colls_write(cs, &ctx, "events", 6, p.p, p.len, &out), TN_SUCCESS);
    tn_wr_free(&out);
    tn_wr_free(&p);

    /* create payload */
    tn_wr_init(&p);
    assert_int_equal(tn_coll_create_encode(&ev_schema, &p), TN_SUCCESS);
    for (size_t cut = 0; cut < p.len; cut++) {
        tn_wr_init(&out);
        tn_wctx c2 = {6000 + cut, 0, 0};
        assert_int_equal(tn_colls_write(cs, &c2, "newc", 4, p.p, cut, &out), TN_CLIENT_REQ_ERROR);
        tn_wr_free(&out);
    }
    assert_int_equal(tn_colls_count(cs), 1);
    tn_wr_free(&p);

    /* query payload, and the truncations of its result */
    tn_coll_pred qp[3] = {P_in(COL_NUM, inv, 2), P_range(COL_DATE, TN_BOUND_EXCL, T("2026-01-01"), TN_BOUND_NONE, N()),
                          P_null(COL_KIND, 0)};
    tn_coll_query q = ct_select(qp, 3);
    q.order_col = COL_DATE;
    q.order_desc = 1;
    q.has_limit = q.has_offset = 1;
    q.limit = 5;
    q.offset = 1;
    tn_wr_init(&p);
    assert_int_equal(tn_coll_query_encode(&q, &p), TN_SUCCESS);
    for (size_t cut = 0; cut < p.len; cut++) {
        tn_wr_init(&out);
        assert_int_equal(tn_colls_read(cs, 1, "events", 6, p.p, cut, &out, NULL), TN_CLIENT_REQ_ERROR);
        tn_coll_result res;
        assert_int_equal(tn_coll_result_decode(out.p, out.len, &res), TN_SUCCESS);
        assert_int_equal(res.code, TN_CLIENT_REQ_ERROR);
        tn_coll_result_clear(&res);
        tn_wr_free(&out);
    }
    tn_wr_init(&out);
    assert_int_equal(tn_colls_read(cs, 1, "events", 6, p.p, p.len, &out, NULL), TN_SUCCESS);
    tn_coll_result res;
    assert_int_equal(tn_coll_result_decode(out.p, out.len, &res), TN_SUCCESS);
    assert_true(res.n_rows > 0);
    tn_coll_result_clear(&res);
    for (size_t cut = 0; cut < out.len; cut++)
        assert_int_equal(tn_coll_result_decode(out.p, cut, &res), TN_CLIENT_REQ_ERROR);
    tn_wr_free(&out);
    tn_wr_free(&p);
    /* stats and schema results */
    for (int kind = TN_QUERY_STATS; kind <= TN_QUERY_SCHEMA; kind++) {
        tn_coll_query sq = {.kind = (uint8_t)kind};
        tn_wr_init(&p);
        tn_wr_init(&out);
        assert_int_equal(tn_coll_query_encode(&sq, &p), TN_SUCCESS);
        assert_int_equal(tn_colls_read(cs, 1, "events", 6, p.p, p.len, &out, NULL), TN_SUCCESS);
        for (size_t cut = 0; cut < out.len; cut++)
            assert_int_equal(tn_coll_result_decode(out.p, cut, &res), TN_CLIENT_REQ_ERROR);
        tn_wr_free(&out);
        tn_wr_free(&p);
    }
    tn_wr_free(&snap);
    tn_colls_free(cs);
}

/* Random byte flips, insertions and cuts of valid payloads: every decoder must refuse or accept without
 * reading out of bounds, leaking or breaking an invariant (run under ASan/UBSan in CI). */
static uint64_t mut_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void mutate(uint64_t *seed, const uint8_t *src, size_t len, uint8_t *dst, size_t *out_len)
{
    memcpy(dst, src, len);
    size_t n = len;
    int edits = 1 + (int)(mut_rnd(seed) % 3);
    for (int e = 0; e < edits && n; e++) {
        size_t at = (size_t)(mut_rnd(seed) % n);
        switch (mut_rnd(seed) % 4) {
        case 0: dst[at] ^= (uint8_t)(1u << (mut_rnd(seed) % 8)); break;
        case 1: dst[at] = (uint8_t)mut_rnd(seed); break;
        case 2: dst[at] = (uint8_t)(mut_rnd(seed) % 2 ? 0xff : 0x00); break;
        default: n = at; break; /* cut */
        }
    }
    *out_len = n;
}

static void test_mutations(void **state)
{
    (void)state;
    tn_colls *cs = sample();
    uint64_t seed = 12345;
    tn_wr snap, rows, query, create, qres, wres;
    tn_wr_init(&snap);
    tn_wr_init(&rows);
    tn_wr_init(&query);
    tn_wr_init(&create);
    tn_wr_init(&qres);
    tn_wr_init(&wres);
    assert_int_equal(tn_colls_serialize(cs, &snap), TN_SUCCESS);
    tn_val idx[N_SLOTS] = {T("q"), T("2027"), tn_val_real(-2.5)};
    tn_val inv[] = {I(1), T("x"), tn_val_blob("\x01", 1)};
    tn_coll_pred rp[2] = {P_range(COL_NUM, TN_BOUND_INCL, I(1), TN_BOUND_EXCL, I(3)), P_in(COL_KIND, inv, 3)};
    tn_coll_row_op ops[4] = {
        {.mode = TN_ROW_RANGE_CHECK, .preds = rp, .n_preds = 2, .expect_rev = 500},
        ct_row(TN_ROW_UPSERT, I(41), idx, "abc"),
        ct_row(TN_ROW_UPDATE, I(42), idx, "u"),
        {.mode = TN_ROW_DELETE, .pk = I(3), .expect_rev = 0},
    };
    ops[2].old_pk = I(5);
    assert_int_equal(tn_coll_rows_encode(ops, 4, 1, &rows), TN_SUCCESS);
    tn_coll_pred qp[3] = {P_in(COL_NUM, inv, 3), P_prefix(COL_DATE, "20", 1), P_null(COL_KIND, 0)};
    tn_coll_query q = ct_select(qp, 3);
    q.order_col = COL_DATE;
    q.has_limit = 1;
    q.limit = 7;
    assert_int_equal(tn_coll_query_encode(&q, &query), TN_SUCCESS);
    assert_int_equal(tn_coll_create_encode(&ev_schema, &create), TN_SUCCESS);
    tn_coll_query all = ct_select(NULL, 0);
    tn_wr tmp;
    tn_wr_init(&tmp);
    assert_int_equal(tn_coll_query_encode(&all, &tmp), TN_SUCCESS);
    assert_int_equal(tn_colls_read(cs, 1, "events", 6, tmp.p, tmp.len, &qres, NULL), TN_SUCCESS);
    tn_wctx c0 = {900, 0, 0};
    tn_colls_write(cs, &c0, "events", 6, rows.p, rows.len, &wres);
    tn_wr_free(&tmp);

    const tn_wr *srcs[] = {&snap, &rows, &query, &create, &qres, &wres};
    size_t maxlen = 0;
    for (int k = 0; k < 6; k++) maxlen = srcs[k]->len > maxlen ? srcs[k]->len : maxlen;
    uint8_t *buf = malloc(maxlen);
    uint64_t rev = 1000;
    for (int iter = 0; iter < 3000; iter++) {
        int which = iter % 6;
        size_t n;
        mutate(&seed, srcs[which]->p, srcs[which]->len, buf, &n);
        tn_wr out;
        tn_wr_init(&out);
        tn_wctx ctx = {rev++, 0, 0};
        switch (which) {
        case 0: {
            tn_colls *x = tn_colls_new();
            if (tn_colls_deserialize(x, buf, n) == TN_SUCCESS) assert_int_equal(tn_colls_check(x), 0);
            tn_colls_free(x);
            break;
        }
        case 1:
        case 3: {
            int rc = tn_colls_write(cs, &ctx, which == 3 ? "zz" : "events", which == 3 ? 2 : 6, buf, n, &out);
            tn_coll_write_result wr;
            assert_int_equal(tn_coll_write_result_decode(out.p, out.len, &wr), TN_SUCCESS);
            assert_int_equal(wr.code, rc);
            tn_coll_write_result_clear(&wr);
            break;
        }
        case 2: {
            int rc = tn_colls_read(cs, 1, "events", 6, buf, n, &out, NULL);
            tn_coll_result res;
            assert_int_equal(tn_coll_result_decode(out.p, out.len, &res), TN_SUCCESS);
            assert_int_equal(res.code, rc);
            tn_coll_result_clear(&res);
            break;
        }
        case 4: {
            tn_coll_result res;
            if (tn_coll_result_decode(buf, n, &res) == TN_SUCCESS) tn_coll_result_clear(&res);
            break;
        }
        default: {
            tn_coll_write_result wr;
            if (tn_coll_write_result_decode(buf, n, &wr) == TN_SUCCESS) tn_coll_write_result_clear(&wr);
            break;
        }
        }
        tn_wr_free(&out);
        if (iter % 500 == 0) assert_int_equal(tn_colls_check(cs), 0);
    }
    assert_int_equal(tn_colls_check(cs), 0);
    free(buf);
    for (int k = 0; k < 6; k++) tn_wr_free((tn_wr *)srcs[k]);
    tn_colls_free(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_attach_drop), cmocka_unit_test(test_index_maintenance),
        cmocka_unit_test(test_index_bulk),         cmocka_unit_test(test_conditional_writes),
        cmocka_unit_test(test_atomic_batch),       cmocka_unit_test(test_range_check),
        cmocka_unit_test(test_transactions),       cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_truncations),        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
