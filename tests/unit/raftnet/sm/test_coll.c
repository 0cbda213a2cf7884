/* test_coll.c — collections: values, schemas, index maintenance, executor, conditional writes,
 * transactions, snapshots, truncated payloads. The randomized differential test is test_coll_rand.c. */
#include <stdlib.h>

#include "test_coll_util.h"

static tn_colls *fresh_events(void)
{
    tn_colls *cs = tn_colls_new();
    assert_non_null(cs);
    assert_int_equal(ct_create(cs, "events", &ev_schema, 1, NULL, 0), TN_SUCCESS);
    return cs;
}

/* ---- values -------------------------------------------------------------------------------------- */

static void test_value_order(void **state)
{
    (void)state;
    tn_val null = N(), i3 = I(3), r3 = tn_val_real(3.0), r35 = tn_val_real(3.5), big = I(INT64_MAX);
    tn_val rbig = tn_val_real(9223372036854775807.0); /* = 2^63, above INT64_MAX */
    tn_val ta = T("a"), tab = T("ab"), tb = T("b"), ba = tn_val_blob("a", 1), b0 = tn_val_blob("", 0);
    assert_true(tn_val_cmp(&null, &i3) < 0);
    assert_int_equal(tn_val_cmp(&null, &null), 0);
    assert_int_equal(tn_val_cmp(&i3, &r3), 0);
    assert_true(tn_val_cmp(&i3, &r35) < 0);
    assert_true(tn_val_cmp(&r35, &i3) > 0);
    assert_true(tn_val_cmp(&big, &rbig) < 0); /* exact, not rounded to double */
    assert_true(tn_val_cmp(&rbig, &big) > 0);
    tn_val m1 = I(-1), rm05 = tn_val_real(-0.5);
    assert_true(tn_val_cmp(&m1, &rm05) < 0);
    assert_true(tn_val_cmp(&r35, &ta) < 0); /* numbers before text */
    assert_true(tn_val_cmp(&ta, &tab) < 0); /* shorter prefix first */
    assert_true(tn_val_cmp(&tab, &tb) < 0);
    assert_true(tn_val_cmp(&tb, &b0) < 0); /* text before blob */
    assert_true(tn_val_cmp(&b0, &ba) < 0);
    assert_true(tn_val_hash(&i3) == tn_val_hash(&r3));
    tn_val z = I(0), nz = tn_val_real(-0.0);
    assert_int_equal(tn_val_cmp(&z, &nz), 0);
    assert_true(tn_val_hash(&z) == tn_val_hash(&nz));

    /* encoding round trip, NaN rejected */
    tn_val all[] = {null, i3, r35, ta, ba, big, m1};
    tn_wr w;
    tn_wr_init(&w);
    for (size_t k = 0; k < 7; k++) tn_val_encode(&all[k], &w);
    tn_rd r;
    tn_rd_init(&r, w.p, w.len);
    for (size_t k = 0; k < 7; k++) {
        tn_val v;
        assert_int_equal(tn_val_decode(&r, 100, &v), 0);
        assert_int_equal(v.type, all[k].type);
        assert_int_equal(tn_val_cmp(&v, &all[k]), 0);
    }
    assert_int_equal(tn_rd_left(&r), 0);
    tn_wr_free(&w);
    tn_wr_init(&w);
    tn_val nan = tn_val_real(0.0 / 0.0);
    tn_val_encode(&nan, &w);
    tn_rd_init(&r, w.p, w.len);
    tn_val v;
    assert_int_equal(tn_val_decode(&r, 100, &v), -1);
    tn_wr_free(&w);
    char buf[64];
    tn_val_format(&ta, buf, sizeof buf);
    assert_string_equal(buf, "'a'");
    tn_val_format(&m1, buf, sizeof buf);
    assert_string_equal(buf, "-1");
}

/* ---- schemas ------------------------------------------------------------------------------------- */

static void test_schema_validation(void **state)
{
    (void)state;
    char msg[200];
    assert_int_equal(tn_coll_schema_validate(&ev_schema, msg, sizeof msg), TN_SUCCESS);
    tn_coll_column c[3];
    tn_coll_schema s = {3, c, 0};

    memcpy(c, ev_cols, sizeof c);
    c[0].role = TN_R_PLAIN; /* no pk */
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(msg, "exactly one PRIMARY KEY"));

    memcpy(c, ev_cols, sizeof c);
    c[1].role = TN_R_PK; /* two pks */
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);

    memcpy(c, ev_cols, sizeof c);
    c[0].type = TN_T_REAL;
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(msg, "must be INTEGER or TEXT"));

    memcpy(c, ev_cols, sizeof c);
    c[2].type = TN_T_JSON; /* ORDERED JSON */
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(msg, "cannot be indexed"));

    memcpy(c, ev_cols, sizeof c);
    c[2].name = "KIND"; /* duplicate, case-insensitively */
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(msg, "duplicate"));

    memcpy(c, ev_cols, sizeof c);
    c[1].name_len = 0;
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);

    memcpy(c, ev_cols, sizeof c);
    c[1].type = 9;
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);

    /* the difference message */
    tn_coll_column d[5];
    memcpy(d, ev_cols, sizeof d);
    d[3].role = TN_R_HASH;
    tn_coll_schema here = {5, (tn_coll_column[]){ev_cols[0], ev_cols[1],
                                                 {"event_date", 10, TN_T_TEXT, TN_R_ORDERED}, ev_cols[3],
                                                 ev_cols[4]}, TN_COMPRESS_LZ4};
    tn_coll_schema stored = {5, (tn_coll_column[]){ev_cols[0], ev_cols[1],
                                                   {"event_date", 10, TN_T_TEXT, TN_R_HASH}, ev_cols[3],
                                                   ev_cols[4]}, TN_COMPRESS_LZ4};
    assert_int_equal(tn_coll_schema_diff(&here, &stored, msg, sizeof msg), 1);
    assert_string_equal(msg, "column 3: 'event_date' is ORDERED here but INDEXED in the stored collection");
    assert_int_equal(tn_coll_schema_diff(&here, &here, msg, sizeof msg), 0);
    tn_coll_schema fewer = {4, here.cols, TN_COMPRESS_LZ4};
    assert_int_equal(tn_coll_schema_diff(&fewer, &here, msg, sizeof msg), 1);
    assert_string_equal(msg, "4 columns here but 5 in the stored collection");
    tn_coll_schema nocomp = {5, here.cols, TN_COMPRESS_NONE};
    assert_int_equal(tn_coll_schema_diff(&nocomp, &here, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "compress"));
    tn_coll_schema typed = {5, (tn_coll_column[]){ev_cols[0], ev_cols[1],
                                                  {"event_date", 10, TN_T_INTEGER, TN_R_ORDERED}, ev_cols[3],
                                                  ev_cols[4]}, TN_COMPRESS_LZ4};
    assert_int_equal(tn_coll_schema_diff(&typed, &here, msg, sizeof msg), 1);
    assert_string_equal(msg, "column 3: 'event_date' is INTEGER here but TEXT in the stored collection");

    /* encode/decode round trip */
    tn_wr w;
    tn_wr_init(&w);
    tn_coll_schema_encode(&ev_schema, &w);
    tn_rd r;
    tn_rd_init(&r, w.p, w.len);
    tn_coll_schema back;
    assert_int_equal(tn_coll_schema_decode(&r, &back), TN_SUCCESS);
    assert_int_equal(tn_coll_schema_diff(&back, &ev_schema, msg, sizeof msg), 0);
    assert_int_equal(tn_coll_schema_pk(&back), 0);
    assert_int_equal(tn_coll_schema_slot(&back, COL_NUM), SLOT_NUM);
    assert_int_equal(tn_coll_schema_slot(&back, COL_BODY), -1);
    assert_int_equal(tn_coll_schema_slot(&back, COL_ID), -1);
    assert_int_equal(tn_coll_schema_n_idx(&back), 3);
    tn_coll_schema_clear(&back);
    tn_wr_free(&w);
}

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

static size_t ids_where(tn_colls *cs, tn_coll_pred p, int64_t *ids, size_t cap)
{
    tn_coll_query q = ct_select(&p, 1);
    q.order_col = COL_ID;
    tn_coll_result res;
    uint8_t *buf;
    assert_int_equal(ct_query(cs, "events", &q, &res, &buf, NULL), TN_SUCCESS);
    size_t n = ct_ids(&res, ids, cap);
    tn_coll_result_clear(&res);
    free(buf);
    return n;
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

/* ---- executor ------------------------------------------------------------------------------------ */

/* 20 rows: id 1..20, kind k{id%4} (id%5==0: NULL), date "2026-01-%02d" by id%10 (id%7==0: NULL),
 * num id%6 (id%9==0: NULL). */
static tn_colls *sample(void)
{
    tn_colls *cs = fresh_events();
    static char kinds[4][4] = {"k0", "k1", "k2", "k3"};
    for (int id = 1; id <= 20; id++) {
        char date[16];
        snprintf(date, sizeof date, "2026-01-%02d", id % 10);
        tn_val kind = id % 5 ? T(kinds[id % 4]) : N();
        tn_val d = id % 7 ? T(date) : N();
        tn_val num = id % 9 ? I(id % 6) : N();
        assert_int_equal(ct_put(cs, (uint64_t)(100 + id), TN_ROW_INSERT, id, kind, d, num, "pp", NULL),
                         TN_SUCCESS);
    }
    return cs;
}

/* Runs q and compares the ids with expect (in order). */
static void expect_ids(tn_colls *cs, const tn_coll_query *q, const int64_t *expect, size_t n, const char *plan_want)
{
    tn_coll_result res;
    uint8_t *buf;
    const char *plan = NULL;
    assert_int_equal(ct_query(cs, "events", q, &res, &buf, &plan), TN_SUCCESS);
    int64_t ids[64];
    size_t got = ct_ids(&res, ids, 64);
    if (got != n) fprintf(stderr, "got %zu rows, want %zu (plan %s)\n", got, n, plan);
    assert_int_equal(got, n);
    for (size_t k = 0; k < n; k++) {
        if (ids[k] != expect[k]) fprintf(stderr, "row %zu: got %lld want %lld (plan %s)\n", k, (long long)ids[k], (long long)expect[k], plan);
        assert_int_equal(ids[k], expect[k]);
    }
    if (plan_want) assert_string_equal(plan, plan_want);
    tn_coll_result_clear(&res);
    free(buf);
}

#define IDS(...) (const int64_t[]){__VA_ARGS__}, sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)

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
        cmocka_unit_test(test_value_order),       cmocka_unit_test(test_schema_validation),
        cmocka_unit_test(test_create_attach_drop), cmocka_unit_test(test_index_maintenance),
        cmocka_unit_test(test_index_bulk),        cmocka_unit_test(test_exec_pk_and_hash),
        cmocka_unit_test(test_exec_ordered),      cmocka_unit_test(test_exec_prefix),
        cmocka_unit_test(test_exec_order_limit),  cmocka_unit_test(test_exec_masks),
        cmocka_unit_test(test_exec_intersection), cmocka_unit_test(test_conditional_writes),
        cmocka_unit_test(test_atomic_batch),      cmocka_unit_test(test_range_check),
        cmocka_unit_test(test_transactions),      cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_truncations),       cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
