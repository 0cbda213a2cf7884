/* test_coll_query.c — the collection executor (raftnet/sm/coll_query.c): access paths by pk, hash and
 * ordered indexes, prefixes, ORDER BY with LIMIT/OFFSET, index-value masks, intersections; each query's
 * rows and the plan it chose. */
#include "test_coll_util.h"

static void test_exec_pk_and_hash(void **state)
{
    (void)state;
    tn_colls *cs = sample();
    tn_coll_pred p = P_eq(COL_ID, I(7));
    tn_coll_query q = ct_select(&p, 1);
    expect_ids(cs, &q, IDS(7), "pk");
    p = P_eq(COL_ID, tn_val_real(7.0)); /* 7.0 = 7 */
    expect_ids(cs, &q, IDS(7), "pk");
    p = P_eq(COL_ID, I(99));
    expect_ids(cs, &q, NULL, 0, NULL);
    tn_val in[] = {I(9), I(3), N(), I(3), I(50), I(1)};
    p = P_in(COL_ID, in, 6);
    expect_ids(cs, &q, IDS(1, 3, 9), "pk");
    /* hash EQ / IN, results in pk order */
    p = P_eq(COL_KIND, T("k1"));
    expect_ids(cs, &q, IDS(1, 9, 13, 17), "hash"); /* 5 is NULL */
    tn_val kin[] = {T("k3"), T("k2"), T("zz")};
    p = P_in(COL_KIND, kin, 3);
    expect_ids(cs, &q, IDS(2, 3, 6, 7, 11, 14, 18, 19), "hash");
    p = P_null(COL_KIND, 1);
    expect_ids(cs, &q, IDS(5, 10, 15, 20), "hash");
    tn_val only_null[] = {N()};
    p = P_in(COL_KIND, only_null, 1);
    expect_ids(cs, &q, NULL, 0, "empty");
    tn_colls_free(cs);
}

static void test_exec_ordered(void **state)
{
    (void)state;
    tn_colls *cs = sample();
    tn_coll_pred p = P_eq(COL_NUM, I(2));
    tn_coll_query q = ct_select(&p, 1);
    /* num = id%6 except id 9, 18 NULL: num 2 -> 2, 8, 14, 20 */
    expect_ids(cs, &q, IDS(2, 8, 14, 20), "ordered");
    tn_val in[] = {I(5), I(0)};
    p = P_in(COL_NUM, in, 2); /* 0: 6, 12 ; 5: 5, 11, 17 (ordered by value then pk) */
    expect_ids(cs, &q, IDS(6, 12, 5, 11, 17), "ordered");
    /* closed range [4, 5] */
    p = P_range(COL_NUM, TN_BOUND_INCL, I(4), TN_BOUND_INCL, I(5));
    expect_ids(cs, &q, IDS(4, 10, 16, 5, 11, 17), NULL);
    /* half-open (4, 5] with a REAL bound */
    p = P_range(COL_NUM, TN_BOUND_EXCL, tn_val_real(4.0), TN_BOUND_INCL, I(5));
    expect_ids(cs, &q, IDS(5, 11, 17), NULL);
    /* open below: num < 1 skips NULLs */
    p = P_range(COL_NUM, TN_BOUND_NONE, N(), TN_BOUND_EXCL, I(1));
    expect_ids(cs, &q, IDS(6, 12), NULL);
    /* open above: num >= 5 */
    p = P_range(COL_NUM, TN_BOUND_INCL, I(5), TN_BOUND_NONE, N());
    expect_ids(cs, &q, IDS(5, 11, 17), NULL);
    /* empty: [3, 3) and inverted [5, 1] and a NULL bound */
    p = P_range(COL_NUM, TN_BOUND_INCL, I(3), TN_BOUND_EXCL, I(3));
    expect_ids(cs, &q, NULL, 0, "empty");
    p = P_range(COL_NUM, TN_BOUND_INCL, I(5), TN_BOUND_INCL, I(1));
    expect_ids(cs, &q, NULL, 0, "empty");
    p = P_range(COL_NUM, TN_BOUND_INCL, N(), TN_BOUND_NONE, N());
    expect_ids(cs, &q, NULL, 0, "empty");
    /* range on the pk */
    p = P_range(COL_ID, TN_BOUND_EXCL, I(17), TN_BOUND_NONE, N());
    expect_ids(cs, &q, IDS(18, 19, 20), "pk");
    /* a range on a hash column is refused */
    p = P_range(COL_KIND, TN_BOUND_INCL, T("a"), TN_BOUND_NONE, N());
    tn_coll_result res;
    uint8_t *buf;
    assert_int_equal(ct_query(cs, "events", &q, &res, &buf, NULL), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(res.message, "not supported"));
    tn_coll_result_clear(&res);
    free(buf);
    tn_colls_free(cs);
}

static void test_exec_prefix(void **state)
{
    (void)state;
    tn_colls *cs = fresh_events();
    const char *dates[] = {"Apple", "apricot", "APx", "banana", "ap", "a", "Ap\xff", "ap\xff\xff", "b"};
    for (int k = 0; k < 9; k++)
        assert_int_equal(ct_put(cs, (uint64_t)(10 + k), TN_ROW_INSERT, k + 1, N(), T(dates[k]), I(k), "", NULL),
                         TN_SUCCESS);
    assert_int_equal(ct_put(cs, 30, TN_ROW_INSERT, 20, N(), tn_val_blob("ap", 2), I(0), "", NULL), TN_SUCCESS);
    assert_int_equal(ct_put(cs, 31, TN_ROW_INSERT, 21, N(), I(12), I(0), "", NULL), TN_SUCCESS);
    tn_coll_pred p = P_prefix(COL_DATE, "ap", 0); /* GLOB 'ap*': case-sensitive, TEXT only */
    tn_coll_query q = ct_select(&p, 1);
    q.order_col = COL_ID;
    expect_ids(cs, &q, IDS(2, 5, 8), NULL);
    p = P_prefix(COL_DATE, "ap", 1); /* LIKE 'ap%' */
    expect_ids(cs, &q, IDS(1, 2, 3, 5, 7, 8), NULL);
    p = P_prefix(COL_DATE, "AP", 1);
    expect_ids(cs, &q, IDS(1, 2, 3, 5, 7, 8), NULL);
    p = P_prefix(COL_DATE, "ap\xff", 0); /* successor needs carrying past 0xff */
    expect_ids(cs, &q, IDS(8), NULL);
    p = P_prefix(COL_DATE, "", 0); /* every TEXT value */
    expect_ids(cs, &q, IDS(1, 2, 3, 4, 5, 6, 7, 8, 9), NULL);
    /* prefix on the pk of a TEXT-pk collection */
    tn_coll_column tc[2] = {{"name", 4, TN_T_TEXT, TN_R_PK}, {"v", 1, TN_T_BLOB, TN_R_PLAIN}};
    tn_coll_schema ts = {2, tc, 0};
    assert_int_equal(ct_create(cs, "names", &ts, 40, NULL, 0), TN_SUCCESS);
    const char *names[] = {"bob", "Bobby", "alice", "BOB", "bo"};
    tn_coll_row_op ops[5];
    for (int k = 0; k < 5; k++) {
        memset(&ops[k], 0, sizeof ops[k]);
        ops[k].mode = TN_ROW_INSERT;
        ops[k].pk = T(names[k]);
    }
    ct_wres wr;
    assert_int_equal(ct_rows(cs, "names", 41, ops, 5, 1, &wr), TN_SUCCESS);
    tn_coll_pred np = P_prefix(0, "bob", 1);
    tn_coll_query nq = ct_select(&np, 1);
    nq.idx_mask = 0;
    nq.order_col = 0;
    nq.order_desc = 1;
    tn_coll_result res;
    uint8_t *buf;
    assert_int_equal(ct_query(cs, "names", &nq, &res, &buf, NULL), TN_SUCCESS);
    assert_int_equal(res.n_rows, 3);
    assert_memory_equal(res.rows[0].pk.u.p, "bob", 3);
    assert_memory_equal(res.rows[1].pk.u.p, "Bobby", 5);
    assert_memory_equal(res.rows[2].pk.u.p, "BOB", 3);
    tn_coll_result_clear(&res);
    free(buf);
    /* text pk type is enforced */
    ops[0].pk = I(5);
    assert_int_equal(ct_rows(cs, "names", 42, ops, 1, 0, &wr), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(wr.msg, "must be TEXT"));
    tn_colls_free(cs);
}

static void test_exec_order_limit(void **state)
{
    (void)state;
    tn_colls *cs = sample();
    tn_coll_query q = ct_select(NULL, 0);
    /* ORDER BY num ASC: NULLs first (9, 18), then (value, pk) */
    q.order_col = COL_NUM;
    q.has_limit = 1;
    q.limit = 5;
    expect_ids(cs, &q, IDS(9, 18, 6, 12, 1), NULL);
    /* DESC: NULLs last; ties by pk descending */
    q.order_desc = 1;
    q.limit = 4;
    expect_ids(cs, &q, IDS(17, 11, 5, 16), "order-walk");
    q.has_offset = 1;
    q.offset = 18;
    expect_ids(cs, &q, IDS(18, 9), NULL);
    q.offset = 25; /* beyond the end */
    expect_ids(cs, &q, NULL, 0, NULL);
    q.offset = 0;
    q.limit = 0;
    expect_ids(cs, &q, NULL, 0, "empty");
    /* ORDER BY pk DESC with a hash predicate */
    tn_coll_pred p = P_eq(COL_KIND, T("k2"));
    q = ct_select(&p, 1);
    q.order_col = COL_ID;
    q.order_desc = 1;
    expect_ids(cs, &q, IDS(18, 14, 6, 2), "hash");
    /* ORDER BY date with a range on num and LIMIT/OFFSET */
    tn_coll_pred p2 = P_range(COL_NUM, TN_BOUND_INCL, I(1), TN_BOUND_INCL, I(3));
    q = ct_select(&p2, 1);
    q.order_col = COL_DATE;
    /* rows num in 1..3: 1,2,3,7,8,13,14,15,19,20 ; dates id%10, NULL for 7, 14 */
    expect_ids(cs, &q, IDS(7, 14, 20, 1, 2, 3, 13, 15, 8, 19), NULL);
    q.has_limit = 1;
    q.limit = 3;
    q.has_offset = 1;
    q.offset = 2;
    expect_ids(cs, &q, IDS(20, 1, 2), NULL);
    /* offset without limit */
    q.has_limit = 0;
    q.offset = 8;
    expect_ids(cs, &q, IDS(8, 19), NULL);
    /* ORDER BY on a hash column is refused */
    q.order_col = COL_KIND;
    tn_coll_result res;
    uint8_t *buf;
    assert_int_equal(ct_query(cs, "events", &q, &res, &buf, NULL), TN_CLIENT_REQ_ERROR);
    tn_coll_result_clear(&res);
    free(buf);
    tn_colls_free(cs);
}

static void test_exec_masks(void **state)
{
    (void)state;
    tn_colls *cs = sample();
    tn_coll_pred p = P_eq(COL_ID, I(4));
    tn_coll_query q = ct_select(&p, 1);
    q.idx_mask = 1u << SLOT_NUM;
    q.want_payload = 0;
    tn_coll_result res;
    uint8_t *buf;
    assert_int_equal(ct_query(cs, "events", &q, &res, &buf, NULL), TN_SUCCESS);
    assert_int_equal(res.n_rows, 1);
    assert_int_equal(res.n_idx_vals, 3);
    assert_int_equal(res.rows[0].rev, 104);
    assert_int_equal(res.rows[0].idx[SLOT_NUM].type, TN_V_INT);
    assert_int_equal(res.rows[0].idx[SLOT_NUM].u.i, 4);
    assert_int_equal(res.rows[0].idx[SLOT_KIND].type, TN_V_NULL); /* not requested */
    assert_null(res.rows[0].payload);
    size_t small = 0;
    (void)small;
    tn_coll_result_clear(&res);
    free(buf);
    q.idx_mask = 1u << SLOT_KIND;
    q.want_payload = 1;
    assert_int_equal(ct_query(cs, "events", &q, &res, &buf, NULL), TN_SUCCESS);
    assert_int_equal(res.n_idx_vals, 1);
    assert_memory_equal(res.rows[0].idx[0].u.p, "k0", 2);
    assert_int_equal(res.rows[0].payload_len, 2);
    assert_memory_equal(res.rows[0].payload, "pp", 2);
    tn_coll_result_clear(&res);
    free(buf);
    q.idx_mask = 1u << 5; /* beyond the slots */
    assert_int_equal(ct_query(cs, "events", &q, &res, &buf, NULL), TN_CLIENT_REQ_ERROR);
    tn_coll_result_clear(&res);
    free(buf);
    /* STATS */
    tn_coll_query sq = {.kind = TN_QUERY_STATS};
    assert_int_equal(ct_query(cs, "events", &sq, &res, &buf, NULL), TN_SUCCESS);
    assert_int_equal(res.stats.rows, 20);
    assert_int_equal(res.stats.n_idx, 3);
    assert_int_equal(res.stats.idx[SLOT_KIND].distinct, 5); /* k0..k3 and NULL */
    assert_int_equal(res.stats.idx[SLOT_KIND].nulls, 4);
    assert_int_equal(res.stats.idx[SLOT_DATE].nulls, 2);
    assert_int_equal(res.stats.idx[SLOT_NUM].distinct, 7);
    /* estimates from the stats: an EQ on kind is more selective than a range on num */
    double er1, c1, er2, c2;
    tn_coll_pred_shape s1 = {COL_KIND, TN_PRED_EQ, 0, 0, 0}, s2 = {COL_NUM, TN_PRED_RANGE, 0, 1, 0};
    assert_int_equal(tn_coll_estimate(&ev_schema, &res.stats, &s1, 1, TN_QUERY_NO_ORDER, 0, &er1, &c1), TN_SUCCESS);
    assert_int_equal(tn_coll_estimate(&ev_schema, &res.stats, &s2, 1, TN_QUERY_NO_ORDER, 0, &er2, &c2), TN_SUCCESS);
    assert_true(er1 < er2 && c1 < c2);
    tn_coll_pred_shape s3 = {COL_ID, TN_PRED_EQ, 0, 0, 0};
    assert_int_equal(tn_coll_estimate(&ev_schema, &res.stats, &s3, 1, TN_QUERY_NO_ORDER, 0, &er2, &c2), TN_SUCCESS);
    assert_true(er2 <= 1.0 && c2 < c1);
    tn_coll_pred_shape bad = {COL_KIND, TN_PRED_RANGE, 0, 1, 1};
    assert_int_equal(tn_coll_estimate(&ev_schema, &res.stats, &bad, 1, TN_QUERY_NO_ORDER, 0, &er2, &c2),
                     TN_CLIENT_REQ_ERROR);
    assert_false(tn_coll_pred_supported(&ev_schema, COL_BODY, TN_PRED_EQ));
    assert_true(tn_coll_pred_supported(&ev_schema, COL_DATE, TN_PRED_PREFIX));
    assert_false(tn_coll_order_supported(&ev_schema, COL_KIND));
    tn_coll_result_clear(&res);
    free(buf);
    tn_colls_free(cs);
}

/* Two indexed predicates that each match many rows but together few: intersection is chosen and gives
 * the same rows as filtering. */
static void test_exec_intersection(void **state)
{
    (void)state;
    tn_colls *cs = fresh_events();
    enum { NR = 2000 };
    tn_coll_row_op ops[200];
    tn_val idx[200][N_SLOTS];
    ct_wres wr;
    uint64_t rev = 2;
    for (int base = 0; base < NR; base += 200) {
        for (int k = 0; k < 200; k++) {
            int id = base + k;
            /* kind 'a' for ids < 200, num 1 for ids in [190, 390): 10% each, overlap 10 rows */
            idx[k][0] = T(id < 200 ? "a" : "b");
            idx[k][1] = N();
            idx[k][2] = I(id >= 190 && id < 390 ? 1 : 2);
            ops[k] = ct_row(TN_ROW_INSERT, I(id), idx[k], NULL);
        }
        assert_int_equal(ct_rows(cs, "events", rev++, ops, 200, 1, &wr), TN_SUCCESS);
    }
    tn_coll_pred p[2] = {P_eq(COL_KIND, T("a")), P_eq(COL_NUM, I(1))};
    tn_coll_query q = ct_select(p, 2);
    expect_ids(cs, &q, IDS(190, 191, 192, 193, 194, 195, 196, 197, 198, 199), "intersect");
    /* one very selective predicate: the single index wins */
    tn_coll_pred p2[2] = {P_eq(COL_KIND, T("a")), P_eq(COL_NUM, I(7))};
    q = ct_select(p2, 2);
    expect_ids(cs, &q, NULL, 0, "empty");
    tn_val in[] = {I(5), I(195), I(995)};
    tn_coll_pred p3[2] = {P_eq(COL_KIND, T("a")), P_in(COL_ID, in, 3)};
    q = ct_select(p3, 2);
    expect_ids(cs, &q, IDS(5, 195), "pk");
    /* with ORDER BY num DESC LIMIT 3 the same predicates still give the right rows */
    q = ct_select(p, 2);
    q.order_col = COL_NUM;
    q.order_desc = 1;
    q.has_limit = 1;
    q.limit = 3;
    expect_ids(cs, &q, IDS(199, 198, 197), NULL);
    tn_colls_free(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_pk_and_hash), cmocka_unit_test(test_exec_ordered),
        cmocka_unit_test(test_exec_prefix),      cmocka_unit_test(test_exec_order_limit),
        cmocka_unit_test(test_exec_masks),       cmocka_unit_test(test_exec_intersection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
