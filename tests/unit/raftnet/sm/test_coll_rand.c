/* test_coll_rand.c — randomized differential test of the collection executor and writes against a
 * brute-force model: random rows (NULLs, duplicates, mixed types), random upserts / updates that move
 * the pk / deletes, and thousands of random queries compared with a filter over every row. On a mismatch
 * it prints the seed and the query number; TARN_COLL_SEED=<seed>:<rows>:<queries> replays that run. */
#include <stdlib.h>

#include "test_coll_util.h"

typedef struct prng {
    uint64_t s;
} prng;

static uint64_t rnd(prng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static int rn(prng *r, int n) { return (int)(rnd(r) % (uint64_t)n); }

static const char *texts[] = {"", "a", "ab", "AB", "Ab", "abc", "abd", "b", "ba", "B", "a\xff", "a\xff\xff", "z"};
enum { N_TEXTS = sizeof texts / sizeof texts[0] };

static tn_val rand_val(prng *r, int kind)
{
    int x = rn(r, 10);
    if (x == 0) return N();
    switch (kind) {
    case 0: /* kind (hash): text k0..k5, sometimes the INT 3 or REAL 3.0 */
        if (x == 1) return rn(r, 2) ? I(3) : tn_val_real(3.0);
        {
            static const char *k[] = {"k0", "k1", "k2", "k3", "k4", "k5"};
            return T(k[rn(r, 6)]);
        }
    case 1: /* date (ordered): mostly text with case variants, some numbers */
        if (x == 1) return I(rn(r, 5));
        if (x == 2) return tn_val_real(rn(r, 5) + 0.5);
        return T(texts[rn(r, N_TEXTS)]);
    default: /* num (ordered): ints and reals, a text */
        if (x == 1) return T("n");
        if (x == 2) return tn_val_real(rn(r, 11) - 5 + 0.5);
        return I(rn(r, 11) - 5);
    }
}

typedef struct mrow {
    int present;
    uint64_t rev;
    tn_val v[N_SLOTS]; /* TEXT bytes point at static strings */
} mrow;

typedef struct model {
    int nid;
    mrow *rows;
} model;

/* ---- reference semantics (independent of the executor) --------------------------------------------- */

static const tn_val *mval(const model *m, int id, uint32_t col, tn_val *tmp)
{
    if (col == COL_ID) {
        *tmp = I(id);
        return tmp;
    }
    return &m->rows[id].v[col == COL_KIND ? SLOT_KIND : col == COL_DATE ? SLOT_DATE : SLOT_NUM];
}

static int ref_match(const tn_coll_pred *p, const tn_val *v)
{
    switch (p->op) {
    case TN_PRED_EQ: return v->type != TN_V_NULL && p->v.type != TN_V_NULL && tn_val_cmp(v, &p->v) == 0;
    case TN_PRED_IN:
        if (v->type == TN_V_NULL) return 0;
        for (size_t k = 0; k < p->n_in; k++)
            if (p->in[k].type != TN_V_NULL && tn_val_cmp(v, &p->in[k]) == 0) return 1;
        return 0;
    case TN_PRED_IS_NULL: return v->type == TN_V_NULL;
    case TN_PRED_NOT_NULL: return v->type != TN_V_NULL;
    case TN_PRED_RANGE:
        if (v->type == TN_V_NULL) return 0;
        if (p->lo_kind) {
            if (p->lo.type == TN_V_NULL) return 0;
            int c = tn_val_cmp(v, &p->lo);
            if (c < 0 || (c == 0 && p->lo_kind == TN_BOUND_EXCL)) return 0;
        }
        if (p->hi_kind) {
            if (p->hi.type == TN_V_NULL) return 0;
            int c = tn_val_cmp(v, &p->hi);
            if (c > 0 || (c == 0 && p->hi_kind == TN_BOUND_EXCL)) return 0;
        }
        return 1;
    case TN_PRED_PREFIX:
        if (v->type != TN_V_TEXT || v->n < p->prefix_len) return 0;
        for (size_t k = 0; k < p->prefix_len; k++) {
            int a = v->u.p[k], b = p->prefix[k];
            if (p->nocase) {
                if (a >= 'A' && a <= 'Z') a += 32;
                if (b >= 'A' && b <= 'Z') b += 32;
            }
            if (a != b) return 0;
        }
        return 1;
    }
    return 0;
}

typedef struct ref_order {
    const model *m;
    int col; /* -1 none */
    int desc;
} ref_order;

static int ref_cmp(const void *a, const void *b, void *arg)
{
    const ref_order *o = arg;
    int x = *(const int *)a, y = *(const int *)b;
    int c = 0;
    if (o->col >= 0) {
        tn_val t1, t2;
        c = tn_val_cmp(mval(o->m, x, (uint32_t)o->col, &t1), mval(o->m, y, (uint32_t)o->col, &t2));
    }
    if (!c) c = (x > y) - (x < y);
    return o->desc ? -c : c;
}

/* ---- random predicates ----------------------------------------------------------------------------- */

typedef struct qbuf {
    tn_coll_pred preds[3];
    tn_val in[3][6];
} qbuf;

static tn_val rand_for_col(prng *r, uint32_t col)
{
    if (col == COL_ID) return rn(r, 8) ? I(rn(r, 3000)) : tn_val_real(rn(r, 300) + (rn(r, 2) ? 0.5 : 0.0));
    return rand_val(r, col == COL_KIND ? 0 : col == COL_DATE ? 1 : 2);
}

static void rand_pred(prng *r, qbuf *qb, int k, int nid)
{
    static const uint32_t cols[] = {COL_ID, COL_KIND, COL_DATE, COL_NUM};
    tn_coll_pred *p = &qb->preds[k];
    memset(p, 0, sizeof *p);
    for (;;) {
        p->column = cols[rn(r, 4)];
        p->op = (uint8_t)(1 + rn(r, 6));
        if (tn_coll_pred_supported(&ev_schema, p->column, p->op)) break;
    }
    switch (p->op) {
    case TN_PRED_EQ:
        p->v = rand_for_col(r, p->column);
        if (p->column == COL_ID) p->v = I(rn(r, nid));
        break;
    case TN_PRED_IN: {
        int n = rn(r, 6);
        for (int j = 0; j < n; j++) qb->in[k][j] = p->column == COL_ID ? I(rn(r, nid + 3)) : rand_for_col(r, p->column);
        p->in = qb->in[k];
        p->n_in = (size_t)n;
        break;
    }
    case TN_PRED_RANGE:
        p->lo_kind = (uint8_t)rn(r, 3);
        p->hi_kind = (uint8_t)rn(r, 3);
        p->lo = p->column == COL_ID ? I(rn(r, nid)) : rand_for_col(r, p->column);
        p->hi = p->column == COL_ID ? I(rn(r, nid)) : rand_for_col(r, p->column);
        if (!p->lo_kind) p->lo = N();
        if (!p->hi_kind) p->hi = N();
        break;
    case TN_PRED_PREFIX: {
        const char *t = texts[rn(r, N_TEXTS)];
        p->prefix = (const uint8_t *)t;
        p->prefix_len = strlen(t) > 0 ? (size_t)rn(r, (int)strlen(t) + 1) : 0;
        p->nocase = (uint8_t)rn(r, 2);
        break;
    }
    default: break;
    }
}

/* ---- the run ------------------------------------------------------------------------------------- */

static int plan_index(const char *plan)
{
    static const char *names[] = {"pk", "hash", "ordered", "intersect", "order-walk", "scan", "empty"};
    for (int k = 0; k < 7; k++)
        if (!strcmp(plan, names[k])) return k;
    return -1;
}

/* On a mismatch: the seed and shape of the run, in the form TARN_COLL_SEED replays. */
#define CHECK_SEED(cond, seed, qn)                                                                            \
    do {                                                                                                      \
        if (!(cond)) {                                                                                        \
            fprintf(stderr, "mismatch: seed %llu query %d: %s (replay: TARN_COLL_SEED=%llu:%d:%d)\n",       \
                    (unsigned long long)(seed), (qn), #cond, (unsigned long long)(seed), nid, n_queries);     \
            fail();                                                                                           \
        }                                                                                                     \
    } while (0)

static void run_seed(uint64_t seed, int nid, int n_queries, int plans_seen[7])
{
    prng r = {seed};
    model m = {nid, calloc((size_t)nid, sizeof(mrow))};
    tn_colls *cs = tn_colls_new();
    assert_int_equal(ct_create(cs, "events", &ev_schema, 1, NULL, 0), TN_SUCCESS);
    uint64_t rev = 2;
    int *expect = malloc((size_t)nid * sizeof *expect);
    ct_wres wr;

    for (int qn = 0; qn < n_queries; qn++) {
        /* a few writes between queries (more at the start to fill the table) */
        int writes = qn == 0 ? nid : rn(&r, 4);
        for (int w = 0; w < writes; w++) {
            int id = rn(&r, nid), op = qn == 0 ? 0 : rn(&r, 10);
            tn_val idx[N_SLOTS] = {rand_val(&r, 0), rand_val(&r, 1), rand_val(&r, 2)};
            tn_coll_row_op o = ct_row(TN_ROW_UPSERT, I(id), idx, "p");
            int want;
            if (op < 6) { /* upsert */
                want = m.rows[id].present ? TN_SUCCESS_OVERWRITE : TN_SUCCESS;
            } else if (op < 8) { /* update, maybe moving the pk */
                int to = rn(&r, 3) ? id : rn(&r, nid);
                o.mode = TN_ROW_UPDATE;
                o.old_pk = I(id);
                o.pk = I(to);
                o.expect_rev = rn(&r, 4) ? m.rows[id].rev : m.rows[id].rev + 1;
                if (!m.rows[id].present) want = TN_NOT_FOUND;
                else if (o.expect_rev != m.rows[id].rev) want = TN_REVISION_MISMATCH;
                else if (to != id && m.rows[to].present) want = TN_ROW_EXISTS;
                else want = TN_SUCCESS;
                if (want == TN_SUCCESS && to != id) m.rows[id].present = 0;
                id = to;
            } else { /* delete */
                o = (tn_coll_row_op){.mode = TN_ROW_DELETE, .pk = I(id), .expect_rev = 0};
                want = TN_SUCCESS;
            }
            int got = ct_rows(cs, "events", rev, &o, 1, rn(&r, 2), &wr);
            CHECK_SEED(got == want, seed, qn);
            if (tn_code_ok(want)) {
                if (o.mode == TN_ROW_DELETE) {
                    m.rows[id].present = 0;
                } else {
                    m.rows[id].present = 1;
                    m.rows[id].rev = rev;
                    memcpy(m.rows[id].v, idx, sizeof idx);
                }
            }
            rev++;
        }
        if (qn % 97 == 0) CHECK_SEED(tn_colls_check(cs) == 0, seed, qn);
        if (qn % 500 == 250) { /* continue on a store rebuilt from a snapshot */
            tn_wr img;
            tn_wr_init(&img);
            assert_int_equal(tn_colls_serialize(cs, &img), TN_SUCCESS);
            tn_colls *cs2 = tn_colls_new();
            assert_int_equal(tn_colls_deserialize(cs2, img.p, img.len), TN_SUCCESS);
            tn_wr img2;
            tn_wr_init(&img2);
            assert_int_equal(tn_colls_serialize(cs2, &img2), TN_SUCCESS);
            CHECK_SEED(img.len == img2.len && memcmp(img.p, img2.p, img.len) == 0, seed, qn);
            tn_wr_free(&img);
            tn_wr_free(&img2);
            tn_colls_free(cs);
            cs = cs2;
        }

        /* a random query */
        qbuf qb;
        int np = rn(&r, 4);
        for (int k = 0; k < np; k++) rand_pred(&r, &qb, k, nid);
        tn_coll_query q = ct_select(qb.preds, (size_t)np);
        static const int32_t orders[] = {TN_QUERY_NO_ORDER, COL_ID, COL_DATE, COL_NUM};
        q.order_col = orders[rn(&r, 4)];
        q.order_desc = (uint8_t)rn(&r, 2);
        q.has_limit = rn(&r, 3) == 0;
        q.limit = (uint64_t)rn(&r, 12);
        q.has_offset = rn(&r, 4) == 0;
        q.offset = (uint64_t)rn(&r, 8);
        q.idx_mask = (uint64_t)rn(&r, 8);
        q.want_payload = (uint8_t)rn(&r, 2);

        /* brute force */
        size_t ne = 0;
        for (int id = 0; id < nid; id++) {
            if (!m.rows[id].present) continue;
            int ok = 1;
            for (int k = 0; k < np && ok; k++) {
                tn_val tmp;
                ok = ref_match(&qb.preds[k], mval(&m, id, qb.preds[k].column, &tmp));
            }
            if (ok) expect[ne++] = id;
        }
        ref_order ro = {&m, q.order_col == TN_QUERY_NO_ORDER ? -1 : q.order_col, q.order_desc};
        if (q.order_col != TN_QUERY_NO_ORDER) qsort_r(expect, ne, sizeof *expect, ref_cmp, &ro);
        size_t total = ne;
        size_t first = q.has_offset ? (q.offset < ne ? (size_t)q.offset : ne) : 0;
        size_t last = q.has_limit ? (first + q.limit < ne ? first + (size_t)q.limit : ne) : ne;

        tn_coll_result res;
        uint8_t *buf;
        const char *plan = NULL;
        assert_int_equal(ct_query(cs, "events", &q, &res, &buf, &plan), TN_SUCCESS);
        int pi = plan_index(plan);
        CHECK_SEED(pi >= 0, seed, qn);
        plans_seen[pi]++;
        CHECK_SEED(res.n_rows == last - first, seed, qn);
        for (size_t k = 0; k < res.n_rows; k++) {
            const tn_coll_rrow *row = &res.rows[k];
            CHECK_SEED(row->pk.type == TN_V_INT, seed, qn);
            int id = (int)row->pk.u.i;
            CHECK_SEED(id >= 0 && id < nid && m.rows[id].present, seed, qn);
            if (q.order_col != TN_QUERY_NO_ORDER) {
                CHECK_SEED(id == expect[first + k], seed, qn);
            } else {
                /* unordered: each row must match, no duplicates */
                int found = 0;
                for (size_t j = 0; j < total; j++) found |= expect[j] == id;
                CHECK_SEED(found, seed, qn);
                for (size_t j = 0; j < k; j++) CHECK_SEED(res.rows[j].pk.u.i != id, seed, qn);
            }
            CHECK_SEED(row->rev == m.rows[id].rev, seed, qn);
            for (int s = 0; s < N_SLOTS; s++) {
                if (!(q.idx_mask >> s & 1)) continue;
                CHECK_SEED(row->idx[s].type == m.rows[id].v[s].type &&
                               tn_val_cmp(&row->idx[s], &m.rows[id].v[s]) == 0, seed, qn);
            }
            CHECK_SEED(q.want_payload ? row->payload_len == 1 && row->payload[0] == 'p' : row->payload == NULL,
                       seed, qn);
        }
        tn_coll_result_clear(&res);
        free(buf);
    }
    CHECK_SEED(tn_colls_check(cs) == 0, seed, n_queries);
    free(expect);
    free(m.rows);
    tn_colls_free(cs);
}

static void test_differential(void **state)
{
    (void)state;
    int plans_seen[7] = {0};
    const char *env = getenv("TARN_COLL_SEED");
    if (env) { /* seed[:rows[:queries]] */
        char *end;
        unsigned long long seed = strtoull(env, &end, 10);
        int nid = *end == ':' ? (int)strtol(end + 1, &end, 10) : 300;
        int nq = *end == ':' ? (int)strtol(end + 1, &end, 10) : 2000;
        run_seed(seed, nid > 0 ? nid : 300, nq > 0 ? nq : 2000, plans_seen);
        return;
    }
    run_seed(1, 300, 2000, plans_seen);
    run_seed(2, 3000, 1000, plans_seen);
    run_seed(0xC0FFEE, 60, 2500, plans_seen);
    /* every access path was exercised */
    for (int k = 0; k < 7; k++) {
        if (!plans_seen[k]) fprintf(stderr, "plan %d never chosen\n", k);
        assert_true(plans_seen[k] > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_differential)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
