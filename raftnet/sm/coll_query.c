/* coll_query.c — predicates, the query executor (access path choice from exact counts, intersection,
 * ordered walks with early stop), STATS / SCHEMA answers, and the RANGE_CHECK helper. The
 * client-side estimate for xBestIndex is proto/coll_plan.c; both price plans with coll_cost.h. See coll.h. */
#include <math.h>
#include <stdio.h>

#include "coll_int.h"

#include "coll_cost.h"


static const char *pred_op_name(int op)
{
    switch (op) {
    case TN_PRED_EQ: return "=";
    case TN_PRED_IN: return "IN";
    case TN_PRED_IS_NULL: return "IS NULL";
    case TN_PRED_NOT_NULL: return "IS NOT NULL";
    case TN_PRED_RANGE: return "a range";
    case TN_PRED_PREFIX: return "a prefix match";
    }
    return "?";
}

int tn_coll_preds_check(const coll *c, const tn_coll_pred *p, size_t n, char *msg, size_t cap)
{
    for (size_t k = 0; k < n; k++) {
        if (!tn_coll_pred_supported(&c->schema, p[k].column, p[k].op)) {
            if (p[k].column >= c->schema.n_cols)
                snprintf(msg, cap, "predicate %zu: no column %u", k + 1, p[k].column);
            else
                snprintf(msg, cap, "predicate %zu: %s on column '%.*s' (%s) is not supported", k + 1,
                         pred_op_name(p[k].op), (int)c->schema.cols[p[k].column].name_len,
                         c->schema.cols[p[k].column].name, tn_coll_role_name(c->schema.cols[p[k].column].role));
            return TN_CLIENT_REQ_ERROR;
        }
    }
    return TN_SUCCESS;
}

/* ---- normalised predicates ----------------------------------------------------------------------- */

typedef struct interval {
    tn_val lo, hi;
    uint8_t lo_kind, hi_kind; /* lo NONE = just after NULL (ranges skip NULLs); hi NONE = the end */
} interval;

typedef struct qpred {
    const tn_coll_pred *p;
    int slot; /* -1 = pk */
    int role;
    int empty;       /* matches nothing */
    tn_val *vals;    /* EQ/IN: sorted, distinct, no NULL */
    size_t n_vals;
    interval *iv;    /* access intervals on a B+tree, in ascending order */
    size_t n_iv;
    bt_cur *iv_start, *iv_end; /* per interval, from counting (valid for the whole read) */
    size_t *iv_span;
    uint8_t *buf;    /* prefix bounds */
    size_t count;    /* exact number of candidates this predicate yields as an access path */
    int usable;      /* may drive access */
} qpred;

static int val_qsort_cmp(const void *a, const void *b) { return tn_val_cmp(a, b); }

static const tn_val *row_val(const crow *r, int slot) { return slot < 0 ? &r->pk : &r->idx[slot]; }

static int ascii_upper(int ch) { return ch >= 'a' && ch <= 'z' ? ch - 32 : ch; }

static int match(const qpred *q, const crow *r)
{
    const tn_val *v = row_val(r, q->slot);
    const tn_coll_pred *p = q->p;
    switch (p->op) {
    case TN_PRED_EQ:
    case TN_PRED_IN: {
        if (v->type == TN_V_NULL) return 0;
        size_t lo = 0, hi = q->n_vals;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int c = tn_val_cmp(&q->vals[mid], v);
            if (c == 0) return 1;
            if (c < 0) lo = mid + 1;
            else hi = mid;
        }
        return 0;
    }
    case TN_PRED_IS_NULL: return v->type == TN_V_NULL;
    case TN_PRED_NOT_NULL: return v->type != TN_V_NULL;
    case TN_PRED_RANGE:
        if (v->type == TN_V_NULL) return 0;
        if (p->lo_kind) {
            int c = tn_val_cmp(v, &p->lo);
            if (c < 0 || (c == 0 && p->lo_kind == TN_BOUND_EXCL)) return 0;
        }
        if (p->hi_kind) {
            int c = tn_val_cmp(v, &p->hi);
            if (c > 0 || (c == 0 && p->hi_kind == TN_BOUND_EXCL)) return 0;
        }
        return 1;
    case TN_PRED_PREFIX:
        if (v->type != TN_V_TEXT || v->n < p->prefix_len) return 0;
        if (!p->nocase) return memcmp(v->u.p, p->prefix, p->prefix_len) == 0;
        for (size_t k = 0; k < p->prefix_len; k++)
            if (ascii_upper(v->u.p[k]) != ascii_upper(p->prefix[k])) return 0;
        return 1;
    }
    return 0;
}

static int match_all(const qpred *q, size_t n, const crow *r)
{
    for (size_t k = 0; k < n; k++)
        if (!match(&q[k], r)) return 0;
    return 1;
}

static const bt *qpred_tree(const coll *c, const qpred *q)
{
    return q->slot < 0 ? &c->pk : &c->otree[q->slot];
}

/* The span of an interval on a tree: *start is its first entry, *end the position just after its last
 * (bt_prev from *end reaches the last entry); returns the number of entries. On the pk tree a point
 * interval needs a single descent (keys are unique). */
static size_t interval_span(const bt *t, const interval *iv, bt_cur *start, bt_cur *end)
{
    size_t r0, r1;
    tn_val null = tn_val_null();
    if (t->slot < 0 && iv->lo_kind == TN_BOUND_INCL && iv->hi_kind == TN_BOUND_INCL &&
        tn_val_cmp(&iv->lo, &iv->hi) == 0) {
        tn_bt_seek(t, &iv->lo, 0, start, NULL);
        *end = *start;
        if (!bt_valid(start) || tn_val_cmp(&bt_get(start)->pk, &iv->lo) != 0) return 0;
        tn_bt_next(end);
        return 1;
    }
    if (iv->lo_kind == TN_BOUND_NONE) tn_bt_seek(t, &null, 1, start, &r0);
    else tn_bt_seek(t, &iv->lo, iv->lo_kind == TN_BOUND_EXCL, start, &r0);
    if (iv->hi_kind == TN_BOUND_NONE) {
        tn_bt_end(t, end);
        r1 = t->count;
    } else {
        tn_bt_seek(t, &iv->hi, iv->hi_kind == TN_BOUND_INCL, end, &r1);
    }
    return r1 > r0 ? r1 - r0 : 0;
}

static void qpreds_free(qpred *q, size_t n)
{
    if (!q) return;
    for (size_t k = 0; k < n; k++) {
        free(q[k].vals);
        free(q[k].iv);
        free(q[k].iv_start);
        free(q[k].buf);
    }
    free(q);
}

/* Normalises the predicates and counts each one's candidates exactly. *all_empty set when one of them
 * can match nothing. TN_SUCCESS or TN_NOMEM. */
static int qpreds_prepare(const coll *c, const tn_coll_pred *p, size_t n, qpred **out, int *all_empty)
{
    *all_empty = 0;
    qpred *q = calloc(n ? n : 1, sizeof *q);
    if (!q) return TN_NOMEM;
    for (size_t k = 0; k < n; k++) {
        qpred *x = &q[k];
        x->p = &p[k];
        x->slot = c->col_slot[p[k].column];
        x->role = x->slot < 0 ? TN_R_PK : c->slot_role[x->slot];
        switch (p[k].op) {
        case TN_PRED_EQ:
        case TN_PRED_IN: {
            size_t m = p[k].op == TN_PRED_EQ ? 1 : p[k].n_in;
            const tn_val *src = p[k].op == TN_PRED_EQ ? &p[k].v : p[k].in;
            x->vals = malloc((m ? m : 1) * sizeof *x->vals);
            if (!x->vals) goto nomem;
            for (size_t j = 0; j < m; j++)
                if (src[j].type != TN_V_NULL) x->vals[x->n_vals++] = src[j]; /* x = NULL is never true */
            qsort(x->vals, x->n_vals, sizeof *x->vals, val_qsort_cmp);
            size_t d = 0;
            for (size_t j = 0; j < x->n_vals; j++)
                if (d == 0 || tn_val_cmp(&x->vals[d - 1], &x->vals[j]) != 0) x->vals[d++] = x->vals[j];
            x->n_vals = d;
            if (d == 0) x->empty = 1;
            if (x->role != TN_R_HASH && d) {
                x->iv = calloc(d, sizeof *x->iv);
                if (!x->iv) goto nomem;
                for (size_t j = 0; j < d; j++) {
                    x->iv[j].lo = x->iv[j].hi = x->vals[j];
                    x->iv[j].lo_kind = x->iv[j].hi_kind = TN_BOUND_INCL;
                }
                x->n_iv = d;
            }
            x->usable = 1;
            break;
        }
        case TN_PRED_IS_NULL:
            if (x->role != TN_R_HASH) {
                x->iv = calloc(1, sizeof *x->iv);
                if (!x->iv) goto nomem;
                x->iv[0].lo_kind = x->iv[0].hi_kind = TN_BOUND_INCL; /* [NULL, NULL] */
                x->n_iv = 1;
            }
            x->usable = 1;
            break;
        case TN_PRED_NOT_NULL: break; /* filter only */
        case TN_PRED_RANGE: {
            interval iv = {p[k].lo, p[k].hi, p[k].lo_kind, p[k].hi_kind};
            if ((iv.lo_kind && iv.lo.type == TN_V_NULL) || (iv.hi_kind && iv.hi.type == TN_V_NULL)) {
                x->empty = 1; /* x > NULL is never true */
            } else if (iv.lo_kind && iv.hi_kind) {
                int cmp = tn_val_cmp(&iv.lo, &iv.hi);
                if (cmp > 0 || (cmp == 0 && (iv.lo_kind == TN_BOUND_EXCL || iv.hi_kind == TN_BOUND_EXCL)))
                    x->empty = 1;
            }
            x->iv = malloc(sizeof *x->iv);
            if (!x->iv) goto nomem;
            x->iv[0] = iv;
            x->n_iv = 1;
            x->usable = 1;
            break;
        }
        case TN_PRED_PREFIX: {
            /* Case-insensitive: in binary order every case variant of the prefix lies between the
             * upper-cased prefix and the lower-cased one; scan that span and filter. */
            size_t pl = p[k].prefix_len;
            x->buf = malloc(2 * pl + 1);
            if (!x->buf) goto nomem;
            uint8_t *lo = x->buf, *hi = x->buf + pl;
            for (size_t j = 0; j < pl; j++) {
                uint8_t ch = p[k].prefix[j];
                lo[j] = p[k].nocase && ch >= 'a' && ch <= 'z' ? (uint8_t)(ch - 32) : ch;
                hi[j] = p[k].nocase && ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + 32) : ch;
            }
            size_t hl = pl; /* successor of hi: drop trailing 0xff, increment the last byte */
            while (hl && hi[hl - 1] == 0xff) hl--;
            x->iv = calloc(1, sizeof *x->iv);
            if (!x->iv) goto nomem;
            x->iv[0].lo = tn_val_text(lo, pl);
            x->iv[0].lo_kind = TN_BOUND_INCL;
            if (hl) {
                hi[hl - 1]++;
                x->iv[0].hi = tn_val_text(hi, hl);
            } else {
                x->iv[0].hi = tn_val_blob(hi, 0); /* every TEXT sorts before the empty BLOB */
            }
            x->iv[0].hi_kind = TN_BOUND_EXCL;
            x->n_iv = 1;
            x->usable = 1;
            break;
        }
        }
        if (x->empty) *all_empty = 1;
        /* exact candidate count */
        if (!x->usable || x->empty) continue;
        if (x->role == TN_R_HASH) {
            const hidx *h = &c->hash[x->slot];
            if (p[k].op == TN_PRED_IS_NULL) {
                tn_val null = tn_val_null();
                const hentry *e = tn_hidx_find(h, &null);
                x->count = e ? e->n : 0;
            } else {
                for (size_t j = 0; j < x->n_vals; j++) {
                    const hentry *e = tn_hidx_find(h, &x->vals[j]);
                    x->count += e ? e->n : 0;
                }
            }
        } else {
            const bt *t = qpred_tree(c, x);
            /* one block: start cursors, end cursors, spans */
            x->iv_start = malloc(x->n_iv * (2 * sizeof(bt_cur) + sizeof(size_t)));
            if (!x->iv_start) goto nomem;
            x->iv_end = x->iv_start + x->n_iv;
            x->iv_span = (size_t *)(void *)(x->iv_end + x->n_iv);
            for (size_t j = 0; j < x->n_iv; j++) {
                x->iv_span[j] = interval_span(t, &x->iv[j], &x->iv_start[j], &x->iv_end[j]);
                x->count += x->iv_span[j];
            }
        }
        if (x->count == 0) *all_empty = 1;
    }
    *out = q;
    return TN_SUCCESS;
nomem:
    qpreds_free(q, n);
    return TN_NOMEM;
}

/* ---- row vectors and the pointer set used by intersection ------------------------------------------ */

typedef struct rvec {
    crow **v;
    size_t n, cap;
    int oom;
} rvec;

static void rvec_push(rvec *rv, crow *r)
{
    if (rv->oom) return;
    if (rv->n == rv->cap) {
        size_t nc = rv->cap ? rv->cap * 2 : 64;
        crow **nv = realloc(rv->v, nc * sizeof *nv);
        if (!nv) {
            rv->oom = 1;
            return;
        }
        rv->v = nv;
        rv->cap = nc;
    }
    rv->v[rv->n++] = r;
}

typedef struct order_key {
    int slot; /* -1 pk */
    int desc;
} order_key;

static int row_order_cmp(const void *a, const void *b, void *arg)
{
    const order_key *ok = arg;
    const crow *x = *(crow *const *)a, *y = *(crow *const *)b;
    int c = ok->slot < 0 ? 0 : tn_val_cmp(&x->idx[ok->slot], &y->idx[ok->slot]);
    if (!c) c = tn_val_cmp(&x->pk, &y->pk);
    return ok->desc ? -c : c;
}

static uint64_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* Appends every candidate of access predicate q (unfiltered) to rv, in index order (ascending, or
 * descending when desc) for tree predicates, bucket order for hash ones. Stops once `stop` rows passing
 * `filter` (all predicates) have been appended, when filter is non-NULL. */
static void collect(const coll *c, const qpred *q, int desc, const qpred *filter, size_t n_filter, size_t stop,
                    rvec *rv)
{
    if (q->role == TN_R_HASH) {
        const hidx *h = &c->hash[q->slot];
        tn_val null = tn_val_null();
        size_t nv = q->p->op == TN_PRED_IS_NULL ? 1 : q->n_vals;
        for (size_t j = 0; j < nv; j++) {
            const hentry *e = tn_hidx_find(h, q->p->op == TN_PRED_IS_NULL ? &null : &q->vals[j]);
            if (!e) continue;
            for (size_t i = 0; i < e->n; i++) {
                crow *r = hentry_row(e, i);
                if (!filter || match_all(filter, n_filter, r)) rvec_push(rv, r);
            }
        }
        return;
    }
    for (size_t jj = 0; jj < q->n_iv; jj++) {
        size_t j = desc ? q->n_iv - 1 - jj : jj;
        size_t span = q->iv_span[j];
        bt_cur cur = q->iv_start[j];
        int back = desc && span > 1;
        if (back) {
            cur = q->iv_end[j];
            tn_bt_prev(&cur);
        }
        for (size_t i = 0; i < span && bt_valid(&cur); i++) {
            crow *r = bt_get(&cur);
            if (!filter || match_all(filter, n_filter, r)) {
                rvec_push(rv, r);
                if (filter && rv->n >= stop) return;
            }
            if (back) tn_bt_prev(&cur);
            else tn_bt_next(&cur);
        }
    }
}

/* Rows of `a` that are also in `b` (by identity), filtered. */
static int intersect(const coll *c, const qpred *qa, const qpred *qb, const qpred *q, size_t n, rvec *out)
{
    rvec a = {0}, b = {0};
    collect(c, qa, 0, NULL, 0, 0, &a);
    collect(c, qb, 0, NULL, 0, 0, &b);
    size_t cap = 16;
    while (cap < a.n * 2) cap *= 2;
    crow **set = calloc(cap, sizeof *set);
    int rc = TN_SUCCESS;
    if (a.oom || b.oom || !set) {
        rc = TN_NOMEM;
        goto done;
    }
    for (size_t k = 0; k < a.n; k++) {
        size_t i = ptr_hash(a.v[k]) & (cap - 1);
        while (set[i] && set[i] != a.v[k]) i = (i + 1) & (cap - 1);
        set[i] = a.v[k];
    }
    for (size_t k = 0; k < b.n; k++) {
        size_t i = ptr_hash(b.v[k]) & (cap - 1);
        while (set[i] && set[i] != b.v[k]) i = (i + 1) & (cap - 1);
        if (set[i] && match_all(q, n, b.v[k])) rvec_push(out, b.v[k]);
    }
    if (out->oom) rc = TN_NOMEM;
done:
    free(set);
    free(a.v);
    free(b.v);
    return rc;
}

/* ---- planning and execution ---------------------------------------------------------------------- */

enum plan_kind { P_EMPTY, P_SCAN, P_SINGLE, P_INTERSECT, P_WALK };

typedef struct plan {
    int kind;
    int a, b;       /* predicate indexes (SINGLE: a; INTERSECT: a, b) */
    int walk_pred;  /* WALK: predicate on the order column restricting the walk, or -1 */
    double cost;
} qplan;


/* Chooses the cheapest plan. order_slot: -2 none, -1 pk, else the ordered slot. want: offset+limit or
 * SIZE_MAX. */
static qplan choose(const coll *c, const qpred *q, size_t n, int order_slot, size_t want)
{
    double N = (double)c->pk.count;
    qplan best = {P_SCAN, -1, -1, -1, 0};
    /* expected output, assuming independent predicates */
    double est = N;
    for (size_t k = 0; k < n; k++)
        if (q[k].usable && N > 0) est *= (double)q[k].count / N;
    if (est < 1) est = 1;

    /* full scan in pk order: ordered already when ORDER BY pk (either way) or no ORDER BY */
    int scan_ordered = order_slot == -2 || order_slot == -1;
    double visits = N;
    if (scan_ordered && want != SIZE_MAX && est > 0) visits = fmin(N, (double)want * N / est);
    best.cost = visits * (COST_ENTRY + COST_ROW) + (scan_ordered ? 0 : tn_coll_sort_cost(est));

    /* the two most selective access predicates */
    int m1 = -1, m2 = -1;
    for (size_t k = 0; k < n; k++) {
        if (!q[k].usable) continue;
        if (m1 < 0 || q[k].count < q[m1].count) {
            m2 = m1;
            m1 = (int)k;
        } else if (m2 < 0 || q[k].count < q[m2].count) {
            m2 = (int)k;
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (!q[k].usable) continue;
        double cnt = (double)q[k].count;
        double seeks = (double)(q[k].role == TN_R_HASH ? q[k].n_vals : q[k].n_iv);
        int natural = q[k].role != TN_R_HASH && ((order_slot == -2 && q[k].slot >= -1) || order_slot == q[k].slot);
        double v = cnt;
        if (natural && want != SIZE_MAX && est > 0) v = fmin(cnt, (double)want * cnt / est);
        double cost = seeks * COST_SEEK + v * (COST_ENTRY + COST_ROW) + (natural ? 0 : tn_coll_sort_cost(est));
        if (cost < best.cost) {
            best.kind = natural && order_slot != -2 ? P_WALK : P_SINGLE;
            best.a = (int)k;
            best.walk_pred = best.kind == P_WALK ? (int)k : -1;
            best.cost = cost;
        }
    }
    if (m1 >= 0 && m2 >= 0) {
        double ca = (double)q[m1].count, cb = (double)q[m2].count;
        double both = N > 0 ? ca * cb / N : 0;
        double seeks = (double)(q[m1].n_iv + q[m1].n_vals + q[m2].n_iv + q[m2].n_vals);
        double set_op = 2 * ca <= COST_SET_FIT ? COST_SET_CACHED : COST_SET;
        double cost = seeks * COST_SEEK + (ca + cb) * (COST_ENTRY + set_op) + both * COST_ROW + tn_coll_sort_cost(both);
        if (cost < best.cost) {
            best.kind = P_INTERSECT;
            best.a = m1;
            best.b = m2;
            best.cost = cost;
        }
    }
    /* walk the whole ORDER BY index, stopping at want: only when no predicate is on that column (one
     * that is would make the restricted walk above strictly better, and the early-stop estimate assumes
     * matches spread evenly along the walk) */
    int pred_on_order = 0;
    for (size_t k = 0; k < n; k++) pred_on_order |= q[k].usable && q[k].slot == order_slot;
    if (order_slot >= 0 && !pred_on_order) {
        double cnt = N;
        double v = want != SIZE_MAX && est > 0 ? fmin(cnt, (double)want * cnt / est) : cnt;
        double cost = v * (COST_ENTRY + COST_ROW);
        if (cost < best.cost) {
            best.kind = P_WALK;
            best.a = -1;
            best.walk_pred = -1;
            best.cost = cost;
        }
    }
    return best;
}

static const char *plan_name(const qpred *q, const qplan *pl)
{
    switch (pl->kind) {
    case P_EMPTY: return "empty";
    case P_SCAN: return "scan";
    case P_INTERSECT: return "intersect";
    case P_WALK: return "order-walk";
    default: break;
    }
    const qpred *x = &q[pl->a];
    if (x->role == TN_R_PK) return "pk";
    return x->role == TN_R_HASH ? "hash" : "ordered";
}

/* Runs the query: rows in final order, at most `want` of them (offset not yet removed). */
static int execute(const coll *c, const tn_coll_pred *preds, size_t n, int order_slot, int desc, size_t want,
                   rvec *out, const char **plan_out)
{
    qpred *q = NULL;
    int empty;
    int rc = qpreds_prepare(c, preds, n, &q, &empty);
    if (rc != TN_SUCCESS) return rc;
    qplan pl = {P_EMPTY, -1, -1, -1, 0};
    if (!empty && want > 0) pl = choose(c, q, n, order_slot, want);
    if (plan_out) *plan_out = plan_name(q, &pl);
    order_key ok = {order_slot == -2 ? -1 : order_slot, order_slot == -2 ? 0 : desc};
    int need_sort = 0;
    switch (pl.kind) {
    case P_EMPTY: break;
    case P_SCAN: {
        bt_cur cur;
        int rev = order_slot == -1 && desc;
        if (rev) tn_bt_last(&c->pk, &cur);
        else tn_bt_first(&c->pk, &cur);
        int stop_early = order_slot == -2 || order_slot == -1;
        for (; bt_valid(&cur); rev ? tn_bt_prev(&cur) : tn_bt_next(&cur)) {
            crow *r = bt_get(&cur);
            if (!match_all(q, n, r)) continue;
            rvec_push(out, r);
            if (stop_early && out->n >= want) break;
        }
        need_sort = !stop_early;
        break;
    }
    case P_WALK:
        if (pl.walk_pred >= 0) {
            collect(c, &q[pl.walk_pred], desc, q, n, want, out);
        } else {
            qpred all = {.slot = order_slot, .role = TN_R_ORDERED, .n_iv = 1};
            interval iv = {.lo_kind = TN_BOUND_INCL}; /* [NULL, end): every row, NULLs included */
            bt_cur s0, e0;
            size_t span = interval_span(qpred_tree(c, &all), &iv, &s0, &e0);
            all.iv = &iv;
            all.iv_start = &s0;
            all.iv_end = &e0;
            all.iv_span = &span;
            collect(c, &all, desc, q, n, want, out);
        }
        break;
    case P_SINGLE: {
        const qpred *x = &q[pl.a];
        int natural = x->role != TN_R_HASH && order_slot == -2;
        if (natural) {
            collect(c, x, 0, q, n, want, out);
        } else {
            collect(c, x, 0, q, n, SIZE_MAX, out);
            need_sort = 1;
        }
        break;
    }
    case P_INTERSECT:
        rc = intersect(c, &q[pl.a], &q[pl.b], q, n, out);
        need_sort = 1;
        break;
    }
    if (rc == TN_SUCCESS && out->oom) rc = TN_NOMEM;
    if (rc == TN_SUCCESS && need_sort) {
        if (out->n > 1) qsort_r(out->v, out->n, sizeof *out->v, row_order_cmp, &ok);
        if (out->n > want) out->n = want;
    }
    qpreds_free(q, n);
    return rc;
}

int tn_coll_any_newer(const coll *c, const tn_coll_pred *p, size_t n, uint64_t rev)
{
    rvec rows = {0};
    int rc = execute(c, p, n, -2, 0, SIZE_MAX, &rows, NULL);
    int any = 0;
    if (rc != TN_SUCCESS) any = -1;
    for (size_t k = 0; any == 0 && k < rows.n; k++)
        if (rows.v[k]->rev > rev) any = 1;
    free(rows.v);
    return any;
}

/* ---- query entry point --------------------------------------------------------------------------- */

static void qheader(tn_wr *out, int code, const char *msg, uint8_t kind, uint64_t revision)
{
    tn_wr_varint(out, (uint64_t)code);
    tn_wr_bytes(out, msg, strlen(msg));
    tn_wr_u8(out, kind);
    tn_wr_varint(out, revision);
}

int tn_coll_query_run(const coll *c, uint64_t revision, tn_rd *r, tn_wr *out, char *msg, size_t cap,
                      const char **plan)
{
    int rc = TN_CLIENT_REQ_ERROR;
    tn_coll_pred *preds = NULL;
    void *pmem = NULL;
    rvec rows = {0};
    uint8_t kind = tn_rd_u8(r);
    msg[0] = 0;
    if (r->err) {
        snprintf(msg, cap, "empty query payload");
        goto fail;
    }
    if (kind == TN_QUERY_STATS || kind == TN_QUERY_SCHEMA) {
        if (tn_rd_left(r)) {
            snprintf(msg, cap, "trailing bytes after the query");
            goto fail;
        }
        qheader(out, TN_SUCCESS, "", kind, revision);
        if (kind == TN_QUERY_SCHEMA) {
            tn_coll_schema_encode(&c->schema, out);
        } else {
            tn_wr_varint(out, c->pk.count);
            tn_wr_varint(out, c->n_idx);
            for (size_t s = 0; s < c->n_idx; s++) {
                tn_wr_varint(out, c->slot_col[s]);
                tn_wr_u8(out, c->slot_role[s]);
                tn_wr_varint(out, c->pk.count);
                tn_wr_varint(out, c->slot_role[s] == TN_R_HASH ? c->hash[s].used : c->distinct[s]);
                tn_wr_varint(out, c->nulls[s]);
            }
        }
        if (plan) *plan = "none";
        return out->oom ? TN_NOMEM : TN_SUCCESS;
    }
    if (kind != TN_QUERY_SELECT) {
        snprintf(msg, cap, "unknown query kind %u", kind);
        goto fail;
    }
    uint64_t np = tn_rd_varint(r);
    if (r->err || np > TN_COLL_MAX_PREDS) {
        snprintf(msg, cap, "malformed query: predicate count");
        goto fail;
    }
    rc = tn_coll_preds_decode(r, (size_t)np, &preds, &pmem);
    if (rc != TN_SUCCESS) {
        snprintf(msg, cap, rc == TN_NOMEM ? "out of memory" : "malformed query: predicates");
        goto fail;
    }
    rc = TN_CLIENT_REQ_ERROR;
    uint64_t order = tn_rd_varint(r);
    uint8_t desc = tn_rd_u8(r);
    uint8_t flags = tn_rd_u8(r);
    uint64_t limit = (flags & 1) ? tn_rd_varint(r) : 0;
    uint64_t offset = (flags & 2) ? tn_rd_varint(r) : 0;
    uint8_t want_payload = tn_rd_u8(r);
    uint64_t mask = tn_rd_varint(r);
    if (r->err || tn_rd_left(r) || desc > 1 || flags > 3 || want_payload > 1) {
        snprintf(msg, cap, "malformed query");
        goto fail;
    }
    if (c->n_idx < 64 && (mask >> c->n_idx)) {
        snprintf(msg, cap, "column mask names index slot beyond %zu", c->n_idx);
        goto fail;
    }
    if (tn_coll_preds_check(c, preds, (size_t)np, msg, cap) != TN_SUCCESS) goto fail;
    int order_slot = -2;
    if (order) {
        if (!tn_coll_order_supported(&c->schema, order - 1)) {
            snprintf(msg, cap, "ORDER BY column %llu is neither the primary key nor ORDERED",
                     (unsigned long long)order - 1);
            goto fail;
        }
        order_slot = c->col_slot[order - 1]; /* -1 for the pk */
    }
    size_t want = SIZE_MAX;
    if (flags & 1) {
        uint64_t w = limit + offset;
        if (w < limit || w > SIZE_MAX) w = SIZE_MAX;
        want = (size_t)w;
    }
    rc = execute(c, preds, (size_t)np, order_slot, desc, want, &rows, plan);
    if (rc != TN_SUCCESS) {
        snprintf(msg, cap, "out of memory");
        goto fail;
    }
    size_t first = offset < rows.n ? (size_t)offset : rows.n;
    qheader(out, TN_SUCCESS, "", kind, revision);
    tn_wr_u8(out, want_payload);
    tn_wr_varint(out, mask);
    tn_wr_varint(out, rows.n - first);
    for (size_t k = first; k < rows.n; k++) {
        const crow *row = rows.v[k];
        tn_val_encode(&row->pk, out);
        tn_wr_varint(out, row->rev);
        for (size_t s = 0; s < c->n_idx && s < 64; s++)
            if (mask >> s & 1) tn_val_encode(&row->idx[s], out);
        if (want_payload) tn_wr_bytes(out, row->payload, row->payload_len);
    }
    free(rows.v);
    tn_coll_preds_free(pmem);
    return out->oom ? TN_NOMEM : TN_SUCCESS;
fail:
    free(rows.v);
    tn_coll_preds_free(pmem);
    qheader(out, rc, msg, kind, revision);
    return rc;
}
