/* bench_coll.c — collection store micro-benchmarks (run by hand on a Release build):
 *   build/bench_coll [rows]      (default 1000000)
 * Schema: id INTEGER PK, cat TEXT INDEXED (rows/50 distinct values: ~50 rows each), ts INTEGER ORDERED
 * (random), grp INTEGER INDEXED (10 values), payload 32 bytes. Every query goes through the real payload
 * encoder, tn_colls_read and the result decoder, as the state machine and the client would. Times are
 * process CPU time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coll.h"

/* CPU time of this process: the figures stay meaningful on a shared, busy machine. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 42;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static tn_coll_column cols[] = {
    {"id", 2, TN_T_INTEGER, TN_R_PK},
    {"cat", 3, TN_T_TEXT, TN_R_HASH},
    {"ts", 2, TN_T_INTEGER, TN_R_ORDERED},
    {"grp", 3, TN_T_INTEGER, TN_R_HASH},
    {"body", 4, TN_T_BLOB, TN_R_PLAIN},
};

/* Runs one query; returns the number of rows. */
static size_t run_query(tn_colls *cs, const tn_coll_query *q, const char **plan)
{
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    if (tn_coll_query_encode(q, &p) != TN_SUCCESS) abort();
    int rc = tn_colls_read(cs, 1, "t", 1, p.p, p.len, &out, plan);
    tn_coll_result res;
    if (rc != TN_SUCCESS || tn_coll_result_decode(out.p, out.len, &res) != TN_SUCCESS) abort();
    size_t n = res.n_rows;
    tn_coll_result_clear(&res);
    tn_wr_free(&p);
    tn_wr_free(&out);
    return n;
}

static tn_coll_query select_q(const tn_coll_pred *p, size_t n)
{
    tn_coll_query q;
    memset(&q, 0, sizeof q);
    q.kind = TN_QUERY_SELECT;
    q.preds = p;
    q.n_preds = n;
    q.order_col = TN_QUERY_NO_ORDER;
    q.idx_mask = 0x7;
    q.want_payload = 1;
    return q;
}

int main(int argc, char **argv)
{
    size_t nrows = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    size_t ncat = nrows / 50 ? nrows / 50 : 1;
    tn_colls *cs = tn_colls_new();
    tn_coll_schema s = {5, cols, TN_COMPRESS_NONE};
    tn_wr p, out;
    tn_wr_init(&p);
    tn_wr_init(&out);
    tn_coll_create_encode(&s, &p);
    tn_wctx ctx = {1, 0, 0};
    if (tn_colls_write(cs, &ctx, "t", 1, p.p, p.len, &out) != TN_SUCCESS) abort();
    tn_wr_free(&p);
    tn_wr_free(&out);

    /* ---- insert ---- */
    enum { BATCH = 1000 };
    static tn_coll_row_op ops[BATCH];
    static tn_val idx[BATCH][3];
    static char cats[BATCH][16];
    uint8_t body[32];
    memset(body, 'b', sizeof body);
    double t0 = now_s();
    for (size_t base = 0; base < nrows; base += BATCH) {
        size_t n = nrows - base < BATCH ? nrows - base : BATCH;
        for (size_t k = 0; k < n; k++) {
            uint64_t id = base + k;
            int cl = snprintf(cats[k], sizeof cats[k], "c%llu", (unsigned long long)(rnd() % ncat));
            idx[k][0] = tn_val_text(cats[k], (size_t)cl);
            idx[k][1] = tn_val_int((int64_t)(rnd() % 1000000000));
            idx[k][2] = tn_val_int((int64_t)(id % 10));
            memset(&ops[k], 0, sizeof ops[k]);
            ops[k].mode = TN_ROW_INSERT;
            ops[k].pk = tn_val_int((int64_t)id);
            ops[k].idx = idx[k];
            ops[k].n_idx = 3;
            ops[k].payload = body;
            ops[k].payload_len = sizeof body;
        }
        tn_wr_init(&p);
        tn_wr_init(&out);
        tn_coll_rows_encode(ops, n, 0, &p);
        ctx.index++;
        if (tn_colls_write(cs, &ctx, "t", 1, p.p, p.len, &out) != TN_SUCCESS) abort();
        tn_wr_free(&p);
        tn_wr_free(&out);
    }
    double t1 = now_s();
    printf("insert %zu rows (3 indexes: hash cat, ordered ts, hash grp; batches of %d): %.2f s, %.0f rows/s\n",
           nrows, BATCH, t1 - t0, (double)nrows / (t1 - t0));
    size_t mem = tn_colls_memory(cs);
    printf("memory: %.1f MiB, %.1f bytes/row (32-byte payload, ~7-byte cat text)\n", (double)mem / 1048576.0,
           (double)mem / (double)nrows);

    /* ---- point lookups ---- */
    const char *plan = "";
    size_t total = 0;
    int iters = 200000;
    t0 = now_s();
    for (int k = 0; k < iters; k++) {
        tn_coll_pred pr = {.column = 0, .op = TN_PRED_EQ, .v = tn_val_int((int64_t)(rnd() % nrows))};
        tn_coll_query q = select_q(&pr, 1);
        total += run_query(cs, &q, &plan);
    }
    t1 = now_s();
    printf("pk point lookup: %.2f us/query (%s, %zu rows)\n", (t1 - t0) * 1e6 / iters, plan, total);

    /* ---- indexed EQ (~50 rows) ---- */
    iters = 20000;
    total = 0;
    t0 = now_s();
    for (int k = 0; k < iters; k++) {
        char cat[16];
        int cl = snprintf(cat, sizeof cat, "c%llu", (unsigned long long)(rnd() % ncat));
        tn_coll_pred pr = {.column = 1, .op = TN_PRED_EQ, .v = tn_val_text(cat, (size_t)cl)};
        tn_coll_query q = select_q(&pr, 1);
        total += run_query(cs, &q, &plan);
    }
    t1 = now_s();
    printf("hash EQ: %.2f us/query, %.1f rows/query (%s)\n", (t1 - t0) * 1e6 / iters, (double)total / iters, plan);

    /* ---- range + ORDER BY + LIMIT 10 ---- */
    iters = 100000;
    total = 0;
    t0 = now_s();
    for (int k = 0; k < iters; k++) {
        tn_coll_pred pr = {.column = 2, .op = TN_PRED_RANGE, .lo_kind = TN_BOUND_INCL,
                           .lo = tn_val_int((int64_t)(rnd() % 1000000000))};
        tn_coll_query q = select_q(&pr, 1);
        q.order_col = 2;
        q.order_desc = (uint8_t)(k & 1);
        q.has_limit = 1;
        q.limit = 10;
        total += run_query(cs, &q, &plan);
    }
    t1 = now_s();
    printf("ts >= x ORDER BY ts (ASC/DESC) LIMIT 10: %.2f us/query, %.1f rows/query (%s)\n",
           (t1 - t0) * 1e6 / iters, (double)total / iters, plan);

    /* ---- pk IN (100 keys) ---- */
    iters = 10000;
    total = 0;
    tn_val in[100];
    t0 = now_s();
    for (int k = 0; k < iters; k++) {
        for (int j = 0; j < 100; j++) in[j] = tn_val_int((int64_t)(rnd() % nrows));
        tn_coll_pred pr = {.column = 0, .op = TN_PRED_IN, .in = in, .n_in = 100};
        tn_coll_query q = select_q(&pr, 1);
        total += run_query(cs, &q, &plan);
    }
    t1 = now_s();
    printf("pk IN (100 keys): %.2f us/query, %.1f rows/query (%s)\n", (t1 - t0) * 1e6 / iters,
           (double)total / iters, plan);

    /* ---- two indexed predicates: grp = g AND ts < 10% (intersection vs one index + filter) ---- */
    iters = 100;
    for (int variant = 0; variant < 2; variant++) {
        total = 0;
        t0 = now_s();
        for (int k = 0; k < iters; k++) {
            tn_coll_pred pr[2] = {
                {.column = 3, .op = TN_PRED_EQ, .v = tn_val_int(k % 10)},
                {.column = 2, .op = TN_PRED_RANGE, .hi_kind = TN_BOUND_EXCL, .hi = tn_val_int(100000000)},
            };
            /* variant 1: a NOT NULL filter instead of the range: only the hash index can drive it */
            if (variant) pr[1] = (tn_coll_pred){.column = 2, .op = TN_PRED_NOT_NULL};
            tn_coll_query q = select_q(pr, 2);
            q.idx_mask = 0;
            q.want_payload = 0;
            total += run_query(cs, &q, &plan);
        }
        t1 = now_s();
        printf("grp = g AND %s: %.1f us/query, %.0f rows/query (%s)\n",
               variant ? "ts IS NOT NULL (10% x 100%)" : "ts < 1e8 (10% x 10%)", (t1 - t0) * 1e6 / iters,
               (double)total / iters, plan);
    }

    /* ---- two small candidate sets: cat IN (40 values) AND ts < 0.2% (~2000 x ~2000, overlap ~4) ---- */
    iters = 1000;
    total = 0;
    t0 = now_s();
    for (int k = 0; k < iters; k++) {
        char cb[40][16];
        tn_val cv[40];
        for (int j = 0; j < 40; j++) {
            int cl = snprintf(cb[j], sizeof cb[j], "c%llu", (unsigned long long)(rnd() % ncat));
            cv[j] = tn_val_text(cb[j], (size_t)cl);
        }
        int64_t lo = (int64_t)(rnd() % 990000000);
        tn_coll_pred pr[2] = {
            {.column = 1, .op = TN_PRED_IN, .in = cv, .n_in = 40},
            {.column = 2, .op = TN_PRED_RANGE, .lo_kind = TN_BOUND_INCL, .lo = tn_val_int(lo),
             .hi_kind = TN_BOUND_EXCL, .hi = tn_val_int(lo + 2000000)},
        };
        tn_coll_query q = select_q(pr, 2);
        total += run_query(cs, &q, &plan);
    }
    t1 = now_s();
    printf("cat IN (40 values) AND ts in a 0.2%% range: %.1f us/query, %.1f rows/query (%s)\n",
           (t1 - t0) * 1e6 / iters, (double)total / iters, plan);

    /* ---- snapshot ---- */
    tn_wr img;
    tn_wr_init(&img);
    t0 = now_s();
    tn_colls_serialize(cs, &img);
    t1 = now_s();
    const char *dump = getenv("TARN_BENCH_DUMP"); /* write the image for profiling the loader */
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (f) {
            fwrite(img.p, 1, img.len, f);
            fclose(f);
        }
    }
    tn_colls *cs2 = tn_colls_new();
    double t2 = now_s();
    if (tn_colls_deserialize(cs2, img.p, img.len) != TN_SUCCESS) abort();
    double t3 = now_s();
    printf("snapshot: serialize %.2f s (%.1f MiB), load + rebuild indexes %.2f s\n", t1 - t0,
           (double)img.len / 1048576.0, t3 - t2);
    tn_wr_free(&img);
    tn_colls_free(cs2);
    tn_colls_free(cs);
    return 0;
}
