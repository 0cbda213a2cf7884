/* coll_plan.c — client-side planning help for xBestIndex: which predicates and orders the server can
 * serve from an index, and the estimated rows and cost of the plan it would pick (coll_codec.h). */
#include <math.h>

#include "coll_codec.h"
#include "coll_cost.h"

int tn_coll_pred_supported(const tn_coll_schema *s, size_t col, int op)
{
    if (col >= s->n_cols) return 0;
    int role = s->cols[col].role;
    if (role == TN_R_PLAIN) return 0;
    switch (op) {
    case TN_PRED_EQ:
    case TN_PRED_IN: return 1;
    case TN_PRED_IS_NULL:
    case TN_PRED_NOT_NULL: return role != TN_R_PK;
    case TN_PRED_RANGE:
    case TN_PRED_PREFIX: return role == TN_R_PK || role == TN_R_ORDERED;
    }
    return 0;
}

int tn_coll_order_supported(const tn_coll_schema *s, size_t col)
{
    return col < s->n_cols && (s->cols[col].role == TN_R_PK || s->cols[col].role == TN_R_ORDERED);
}

/* ---- client-side estimate ------------------------------------------------------------------------ */

int tn_coll_estimate(const tn_coll_schema *s, const tn_coll_stats *st, const tn_coll_pred_shape *sh, size_t n,
                     int32_t order_col, uint64_t limit, double *est_rows, double *cost)
{
    double N = st ? (double)st->rows : 1000000.0;
    if (N < 1) N = 1;
    double est = N, best_access = N;
    int order_served = order_col == TN_QUERY_NO_ORDER;
    double order_cnt = N;
    for (size_t k = 0; k < n; k++) {
        if (!tn_coll_pred_supported(s, sh[k].column, sh[k].op)) return TN_CLIENT_REQ_ERROR;
        int slot = tn_coll_schema_slot(s, sh[k].column);
        double nulls = 0, distinct = N;
        if (slot >= 0 && st && (size_t)slot < st->n_idx) {
            nulls = (double)st->idx[slot].nulls;
            distinct = (double)st->idx[slot].distinct - (nulls > 0 ? 1 : 0);
            if (distinct < 1) distinct = 1;
        }
        double nonnull = N - nulls > 0 ? N - nulls : 0;
        double eq = slot < 0 ? 1 : nonnull / distinct;
        double cnt;
        switch (sh[k].op) {
        case TN_PRED_EQ: cnt = eq; break;
        case TN_PRED_IN: cnt = eq * (double)(sh[k].n_in ? sh[k].n_in : 1); break;
        case TN_PRED_IS_NULL: cnt = nulls; break;
        case TN_PRED_NOT_NULL: cnt = nonnull; break;
        case TN_PRED_RANGE: cnt = nonnull / (sh[k].has_lo && sh[k].has_hi ? 4.0 : 3.0); break;
        default: cnt = nonnull / 10.0; break; /* prefix */
        }
        if (cnt > N) cnt = N;
        est *= cnt / N;
        if (sh[k].op != TN_PRED_NOT_NULL && cnt < best_access) best_access = cnt;
        if (order_col >= 0 && (uint32_t)order_col == sh[k].column && sh[k].op != TN_PRED_NOT_NULL &&
            cnt < order_cnt)
            order_cnt = cnt;
    }
    if (est < 1) est = 1;
    if (best_access < 1) best_access = 1;
    double c1 = COST_SEEK + best_access * (COST_ENTRY + COST_ROW);
    if (!order_served) c1 += tn_coll_sort_cost(est);
    if (order_col >= 0 && tn_coll_order_supported(s, (size_t)order_col)) {
        double visits = limit ? fmin(order_cnt, (double)limit * order_cnt / est) : order_cnt;
        double c2 = COST_SEEK + visits * (COST_ENTRY + COST_ROW);
        if (c2 < c1) c1 = c2;
    }
    *est_rows = limit && (double)limit < est ? (double)limit : est;
    *cost = c1;
    return TN_SUCCESS;
}
