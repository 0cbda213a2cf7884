/* test_coll_util.h — helpers shared by the collection tests (test_coll*.c): a reference schema, one-call
 * writes and queries through the real payload codec, and the small stores the tests start from. Everything
 * goes through coll.h's public API. */
#ifndef TARN_TEST_COLL_UTIL_H
#define TARN_TEST_COLL_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coll.h"

/* events(id INTEGER PK, kind TEXT INDEXED, date TEXT ORDERED, num INTEGER ORDERED, body JSON)
 * columns 0..4; index slots: kind 0 (hash), date 1 (ordered), num 2 (ordered). */
enum { COL_ID = 0, COL_KIND = 1, COL_DATE = 2, COL_NUM = 3, COL_BODY = 4 };
enum { SLOT_KIND = 0, SLOT_DATE = 1, SLOT_NUM = 2, N_SLOTS = 3 };

static tn_coll_column ev_cols[] = {
    {"id", 2, TN_T_INTEGER, TN_R_PK},       {"kind", 4, TN_T_TEXT, TN_R_HASH},
    {"date", 4, TN_T_TEXT, TN_R_ORDERED},   {"num", 3, TN_T_INTEGER, TN_R_ORDERED},
    {"body", 4, TN_T_JSON, TN_R_PLAIN},
};
static const tn_coll_schema ev_schema = {5, ev_cols, TN_COMPRESS_LZ4};

static inline int ct_create(tn_colls *cs, const char *name, const tn_coll_schema *s, uint64_t rev, char *msg,
                            size_t cap)
{
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    assert_int_equal(tn_coll_create_encode(s, &p), TN_SUCCESS);
    tn_wctx ctx = {rev, 1000, 0};
    int rc = tn_colls_write(cs, &ctx, name, strlen(name), p.p, p.len, &out);
    tn_coll_write_result wr;
    assert_int_equal(tn_coll_write_result_decode(out.p, out.len, &wr), TN_SUCCESS);
    assert_int_equal(wr.code, rc);
    if (msg) snprintf(msg, cap, "%.*s", (int)wr.message_len, wr.message);
    tn_coll_write_result_clear(&wr);
    tn_wr_free(&p);
    tn_wr_free(&out);
    return rc;
}

/* A decoded write result, copied out of the payload. */
typedef struct ct_wres {
    int code;
    char msg[400];
    size_t failed, n;
    tn_coll_op_result ops[256];
} ct_wres;

/* Applies a batch (at most 256 ops); fills *wr. Returns the overall code. */
static inline int ct_rows(tn_colls *cs, const char *name, uint64_t rev, const tn_coll_row_op *ops, size_t n,
                          int atomic, ct_wres *wr)
{
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    assert_int_equal(tn_coll_rows_encode(ops, n, atomic, &p), TN_SUCCESS);
    tn_wctx ctx = {rev, 1000, 0};
    int rc = tn_colls_write(cs, &ctx, name, strlen(name), p.p, p.len, &out);
    tn_coll_write_result d;
    assert_int_equal(tn_coll_write_result_decode(out.p, out.len, &d), TN_SUCCESS);
    assert_int_equal(d.code, rc);
    assert_true(d.n_ops <= 256);
    wr->code = d.code;
    snprintf(wr->msg, sizeof wr->msg, "%.*s", (int)d.message_len, d.message);
    wr->failed = d.failed_op;
    wr->n = d.n_ops;
    if (d.n_ops) memcpy(wr->ops, d.ops, d.n_ops * sizeof *d.ops);
    tn_coll_write_result_clear(&d);
    tn_wr_free(&p);
    tn_wr_free(&out);
    return rc;
}

static inline tn_coll_row_op ct_row(int mode, tn_val pk, const tn_val *idx, const char *payload)
{
    tn_coll_row_op op;
    memset(&op, 0, sizeof op);
    op.mode = (uint8_t)mode;
    op.pk = pk;
    op.idx = idx;
    op.n_idx = N_SLOTS;
    op.payload = (const uint8_t *)payload;
    op.payload_len = payload ? strlen(payload) : 0;
    return op;
}

/* One-op write of an events row; returns the op's code. */
static inline int ct_put(tn_colls *cs, uint64_t rev, int mode, int64_t id, tn_val kind, tn_val date, tn_val num,
                         const char *payload, int *affected)
{
    tn_val idx[N_SLOTS] = {kind, date, num};
    tn_coll_row_op op = ct_row(mode, tn_val_int(id), idx, payload);
    ct_wres wr;
    int rc = ct_rows(cs, "events", rev, &op, 1, 0, &wr);
    assert_int_equal(wr.n, 1);
    if (affected) *affected = wr.ops[0].affected;
    assert_int_equal(wr.ops[0].code, rc);
    return rc;
}

static inline tn_val T(const char *s) { return tn_val_text(s, strlen(s)); }
#define I(x) tn_val_int(x)
#define N() tn_val_null()

/* Runs a query; res must be cleared by the caller, *buf freed by the caller. */
static inline int ct_query(const tn_colls *cs, const char *name, const tn_coll_query *q, tn_coll_result *res,
                           uint8_t **buf, const char **plan)
{
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    assert_int_equal(tn_coll_query_encode(q, &p), TN_SUCCESS);
    int rc = tn_colls_read(cs, 77, name, strlen(name), p.p, p.len, &out, plan);
    size_t len;
    *buf = tn_wr_take(&out, &len);
    assert_int_equal(tn_coll_result_decode(*buf, len, res), TN_SUCCESS);
    assert_int_equal(res->code, rc);
    tn_wr_free(&p);
    return rc;
}

static inline tn_coll_query ct_select(const tn_coll_pred *preds, size_t n)
{
    tn_coll_query q;
    memset(&q, 0, sizeof q);
    q.kind = TN_QUERY_SELECT;
    q.preds = preds;
    q.n_preds = n;
    q.order_col = TN_QUERY_NO_ORDER;
    q.idx_mask = (1u << N_SLOTS) - 1;
    q.want_payload = 1;
    return q;
}

static inline tn_coll_pred P_eq(uint32_t col, tn_val v)
{
    tn_coll_pred p;
    memset(&p, 0, sizeof p);
    p.column = col;
    p.op = TN_PRED_EQ;
    p.v = v;
    return p;
}

static inline tn_coll_pred P_in(uint32_t col, const tn_val *v, size_t n)
{
    tn_coll_pred p;
    memset(&p, 0, sizeof p);
    p.column = col;
    p.op = TN_PRED_IN;
    p.in = v;
    p.n_in = n;
    return p;
}

static inline tn_coll_pred P_range(uint32_t col, int lo_kind, tn_val lo, int hi_kind, tn_val hi)
{
    tn_coll_pred p;
    memset(&p, 0, sizeof p);
    p.column = col;
    p.op = TN_PRED_RANGE;
    p.lo_kind = (uint8_t)lo_kind;
    p.lo = lo;
    p.hi_kind = (uint8_t)hi_kind;
    p.hi = hi;
    return p;
}

static inline tn_coll_pred P_prefix(uint32_t col, const char *pfx, int nocase)
{
    tn_coll_pred p;
    memset(&p, 0, sizeof p);
    p.column = col;
    p.op = TN_PRED_PREFIX;
    p.prefix = (const uint8_t *)pfx;
    p.prefix_len = strlen(pfx);
    p.nocase = (uint8_t)nocase;
    return p;
}

static inline tn_coll_pred P_null(uint32_t col, int is_null)
{
    tn_coll_pred p;
    memset(&p, 0, sizeof p);
    p.column = col;
    p.op = is_null ? TN_PRED_IS_NULL : TN_PRED_NOT_NULL;
    return p;
}

/* Writes the ids of the result rows into ids (max cap); returns the row count. */
static inline size_t ct_ids(const tn_coll_result *res, int64_t *ids, size_t cap)
{
    for (size_t k = 0; k < res->n_rows && k < cap; k++) {
        assert_int_equal(res->rows[k].pk.type, TN_V_INT);
        ids[k] = res->rows[k].pk.u.i;
    }
    return res->n_rows;
}

/* ---- fixtures of test_coll.c and test_coll_query.c -------------------------------------------------- */

/* A store holding the empty events collection (created at revision 1). */
static inline tn_colls *fresh_events(void)
{
    tn_colls *cs = tn_colls_new();
    assert_non_null(cs);
    assert_int_equal(ct_create(cs, "events", &ev_schema, 1, NULL, 0), TN_SUCCESS);
    return cs;
}

/* 20 rows: id 1..20, kind k{id%4} (id%5==0: NULL), date "2026-01-%02d" by id%10 (id%7==0: NULL),
 * num id%6 (id%9==0: NULL). */
static inline tn_colls *sample(void)
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
static inline void expect_ids(tn_colls *cs, const tn_coll_query *q, const int64_t *expect, size_t n,
                              const char *plan_want)
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

/* The ids of the rows matching p, in pk order. */
static inline size_t ids_where(tn_colls *cs, tn_coll_pred p, int64_t *ids, size_t cap)
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

#endif
