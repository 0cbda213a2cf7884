/* coll_vtab_merge.c — reads of the `tarn` virtual table inside a transaction: the transaction's buffered
 * rows merged into an answer (read-your-writes) and what the answer read recorded in the read set.
 *
 * ---- Transactions (txn.h, docs/transactions.md) --------------------------------------------------------
 * xUpdate only appends row ops to the connection's transaction buffer (txn.h, shared with every `tarn`
 * and `tarn_kv` table of the same store); the commit point is xSync, which sends the buffer and the read
 * set as one atomic request. Reads inside a transaction (BEGIN … COMMIT, or a writing statement):
 *   - record what they read: a query that is only pk = / IN records each pk (revision, or absent);
 *     any other query records one RANGE_CHECK of its predicates at the answer's revision (phantoms);
 *   - when the transaction has buffered writes for this collection, see them (read-your-writes): the
 *     query goes without LIMIT/OFFSET and with every value, the buffered rows replace the store's and
 *     are filtered by the same predicates here, then ordered (ORDER BY, else pk) and limited here.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "coll_vtab_int.h"

#include <ctype.h>
#include <string.h>

#include "tn_code.h"

/* Value of schema column col in row (pk or index slot). */
static const tn_val *row_col(const coll_vtab *vt, const tn_coll_rrow *row, uint32_t col)
{
    if (col == vt->pk_col) return &row->pk;
    int slot = vt->slot_of[col];
    return slot >= 0 ? &row->idx[slot] : NULL;
}

static int prefix_match(const tn_val *v, const tn_coll_pred *pr)
{
    if (v->type != TN_V_TEXT || v->n < pr->prefix_len) return 0;
    for (size_t k = 0; k < pr->prefix_len; k++) {
        int a = v->u.p[k], b = pr->prefix[k];
        if (pr->nocase) {
            a = a < 128 ? tolower(a) : a;
            b = b < 128 ? tolower(b) : b;
        }
        if (a != b) return 0;
    }
    return 1;
}

/* Whether a row satisfies every predicate of q (the server's semantics, coll_codec.h). */
static int row_matches(const coll_vtab *vt, const tn_coll_rrow *row, const tn_coll_query *q)
{
    for (size_t k = 0; k < q->n_preds; k++) {
        const tn_coll_pred *pr = &q->preds[k];
        const tn_val *v = row_col(vt, row, pr->column);
        if (!v) return 0;
        int null = v->type == TN_V_NULL, ok = 0;
        switch (pr->op) {
        case TN_PRED_EQ: ok = !null && tn_val_cmp(v, &pr->v) == 0; break;
        case TN_PRED_IN:
            for (size_t n = 0; n < pr->n_in && !ok && !null; n++) ok = tn_val_cmp(v, &pr->in[n]) == 0;
            break;
        case TN_PRED_IS_NULL: ok = null; break;
        case TN_PRED_NOT_NULL: ok = !null; break;
        case TN_PRED_RANGE:
            ok = !null;
            if (ok && pr->lo_kind) {
                int c = tn_val_cmp(v, &pr->lo);
                ok = pr->lo_kind == TN_BOUND_EXCL ? c > 0 : c >= 0;
            }
            if (ok && pr->hi_kind) {
                int c = tn_val_cmp(v, &pr->hi);
                ok = pr->hi_kind == TN_BOUND_EXCL ? c < 0 : c <= 0;
            }
            break;
        case TN_PRED_PREFIX: ok = prefix_match(v, pr); break;
        default: ok = 0; break;
        }
        if (!ok) return 0;
    }
    return 1;
}

static int push_row(coll_cursor *cur, const tn_coll_rrow *row, int own)
{
    if (cur->n_rows == cur->cap_rows) {
        size_t cap = cur->cap_rows ? cur->cap_rows * 2 : 16;
        tn_coll_rrow *rows = sqlite3_realloc64(cur->rows, cap * sizeof *rows);
        if (!rows) return SQLITE_NOMEM;
        cur->rows = rows;
        uint8_t *o = sqlite3_realloc64(cur->own, cap);
        if (!o) return SQLITE_NOMEM;
        cur->own = o;
        cur->cap_rows = cap;
    }
    cur->rows[cur->n_rows] = *row;
    cur->own[cur->n_rows] = (uint8_t)own;
    cur->n_rows++;
    return SQLITE_OK;
}

typedef struct own_arg {
    coll_cursor *cur;
    tn_wr *offs; /* u32 offset of each copied op in cur->own_bytes */
} own_arg;

static int collect_own(void *p, const uint8_t *key, size_t key_len, int state, const uint8_t *op, size_t op_len)
{
    own_arg *a = p;
    (void)key;
    (void)key_len;
    if (state != TN_TXN_ROW_PRESENT || !op) return 0;
    tn_wr_u32(a->offs, (uint32_t)a->cur->own_bytes.len);
    tn_wr_u32(&a->cur->own_bytes, (uint32_t)op_len);
    tn_wr_raw(&a->cur->own_bytes, op, op_len);
    return a->offs->oom || a->cur->own_bytes.oom;
}

/* Decodes a buffered INSERT/UPSERT/UPDATE row op into row (values point into op). 0 or -1. */
static int decode_own(const coll_vtab *vt, const uint8_t *op, size_t len, tn_val *idx, tn_coll_rrow *row)
{
    tn_rd r;
    tn_val old;
    tn_rd_init(&r, op, len);
    uint8_t mode = tn_rd_u8(&r);
    if (mode == TN_ROW_UPDATE) {
        if (tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &old)) return -1;
        (void)tn_rd_varint(&r);
    } else if (mode != TN_ROW_INSERT && mode != TN_ROW_UPSERT && mode != TN_ROW_INSERT_OR_IGNORE) {
        return -1;
    }
    memset(row, 0, sizeof *row);
    if (tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &row->pk)) return -1;
    uint64_t n = tn_rd_varint(&r);
    if (r.err || n != vt->n_idx) return -1;
    for (size_t k = 0; k < n; k++)
        if (tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &idx[k])) return -1;
    row->idx = idx;
    row->payload = tn_rd_bytes(&r, TN_COLL_MAX_PAYLOAD, &row->payload_len);
    if (!row->payload) row->payload = (const uint8_t *)"";
    return r.err ? -1 : 0;
}

typedef struct sort_ctx {
    const coll_vtab *vt;
    int order_col; /* -1: by pk */
    int desc;
} sort_ctx;

/* qsort_r is not portable C11: a small merge sort with an explicit context. */
static int row_cmp(const sort_ctx *sc, const tn_coll_rrow *a, const tn_coll_rrow *b)
{
    int c = 0;
    if (sc->order_col >= 0)
        c = tn_val_cmp(row_col(sc->vt, a, (uint32_t)sc->order_col), row_col(sc->vt, b, (uint32_t)sc->order_col));
    if (c == 0) c = tn_val_cmp(&a->pk, &b->pk);
    return sc->desc ? -c : c;
}

static int sort_rows(coll_cursor *cur, const sort_ctx *sc)
{
    size_t n = cur->n_rows;
    if (n < 2) return SQLITE_OK;
    tn_coll_rrow *tmp = sqlite3_malloc64(n * sizeof *tmp);
    uint8_t *otmp = sqlite3_malloc64(n);
    if (!tmp || !otmp) {
        sqlite3_free(tmp);
        sqlite3_free(otmp);
        return SQLITE_NOMEM;
    }
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid || j < hi) {
                int left = j >= hi || (i < mid && row_cmp(sc, &cur->rows[i], &cur->rows[j]) <= 0);
                size_t from = left ? i++ : j++;
                tmp[k] = cur->rows[from];
                otmp[k++] = cur->own[from];
            }
        }
        memcpy(cur->rows, tmp, n * sizeof *tmp);
        memcpy(cur->own, otmp, n);
    }
    sqlite3_free(tmp);
    sqlite3_free(otmp);
    return SQLITE_OK;
}

/* Merges the store's answer (cur->res, fetched without limit/offset) with the transaction's own rows of
 * this collection, then orders and applies limit/offset as the server would have. */
int tn_collvt_merge_own(coll_cursor *cur, coll_vtab *vt, const tn_coll_query *q, const tn_coll_query *orig)
{
    tn_wr offs;
    int rc = SQLITE_OK;
    tn_wr_init(&offs);
    cur->n_rows = 0;
    for (size_t k = 0; k < cur->res.n_rows && rc == SQLITE_OK; k++) {
        const tn_coll_rrow *row = &cur->res.rows[k];
        int written = 0;
        tn_txn_row_state(vt->vb.txn, vt->txn_coll, &row->pk, &written);
        if (!written) rc = push_row(cur, row, 0);
    }
    if (rc != SQLITE_OK) goto done;
    own_arg a = {.cur = cur, .offs = &offs};
    if (tn_txn_each_written(vt->vb.txn, vt->txn_coll, collect_own, &a) || offs.oom || cur->own_bytes.oom) {
        rc = SQLITE_NOMEM;
        goto done;
    }
    size_t n_own = offs.len / 4;
    if (n_own) {
        cur->own_vals = sqlite3_malloc64((n_own * vt->n_idx + 1) * sizeof *cur->own_vals);
        if (!cur->own_vals) { rc = SQLITE_NOMEM; goto done; }
    }
    for (size_t k = 0; k < n_own && rc == SQLITE_OK; k++) {
        tn_rd r;
        tn_rd_init(&r, offs.p + 4 * k, 4);
        uint32_t at = tn_rd_u32(&r);
        tn_rd_init(&r, cur->own_bytes.p + at, cur->own_bytes.len - at);
        uint32_t len = tn_rd_u32(&r);
        const uint8_t *op = tn_rd_raw(&r, len);
        tn_coll_rrow row;
        if (!op || decode_own(vt, op, len, cur->own_vals + k * vt->n_idx, &row)) continue;
        if (row_matches(vt, &row, q)) rc = push_row(cur, &row, 1);
    }
    if (rc != SQLITE_OK) goto done;
    sort_ctx sc = {.vt = vt, .order_col = orig->order_col == TN_QUERY_NO_ORDER ? -1 : orig->order_col,
                   .desc = orig->order_desc};
    if ((rc = sort_rows(cur, &sc)) != SQLITE_OK) goto done;
    size_t off = orig->has_offset ? (size_t)(orig->offset < cur->n_rows ? orig->offset : cur->n_rows) : 0;
    if (off) {
        memmove(cur->rows, cur->rows + off, (cur->n_rows - off) * sizeof *cur->rows);
        memmove(cur->own, cur->own + off, cur->n_rows - off);
        cur->n_rows -= off;
    }
    if (orig->has_limit && orig->limit < cur->n_rows) cur->n_rows = (size_t)orig->limit;
done:
    tn_wr_free(&offs);
    return rc;
}

/* Records what the answer read: each pk asked for (present at its revision, or absent) when the query
 * is nothing but pk = / IN, else one RANGE_CHECK of the predicates at the answer's revision. Rows the
 * transaction wrote itself were not read from the store. */
int tn_collvt_record_reads(coll_vtab *vt, const tn_coll_query *q, const tn_coll_result *res)
{
    const tn_coll_pred *pr = q->n_preds == 1 ? &q->preds[0] : NULL;
    int point = pr && pr->column == vt->pk_col && (pr->op == TN_PRED_EQ || pr->op == TN_PRED_IN) &&
                !q->has_limit && !q->has_offset;
    if (!point)
        return tn_vtab_read_noted(&vt->vb, tn_txn_read_range(vt->vb.txn, vt->txn_coll, q->preds, q->n_preds,
                                                             res->revision), vt->name);
    size_t n = pr->op == TN_PRED_EQ ? 1 : pr->n_in;
    const tn_val *vals = pr->op == TN_PRED_EQ ? &pr->v : pr->in;
    tn_wr w;
    tn_wr_init(&w);
    int rc = SQLITE_OK;
    for (size_t k = 0; k < n && rc == SQLITE_OK; k++) {
        int written = 0;
        tn_txn_row_state(vt->vb.txn, vt->txn_coll, &vals[k], &written);
        if (written) continue;
        uint64_t rev = 0;
        for (size_t j = 0; j < res->n_rows; j++)
            if (tn_val_cmp(&res->rows[j].pk, &vals[k]) == 0) rev = res->rows[j].rev;
        w.len = 0;
        tn_val_encode(&vals[k], &w);
        if (w.oom) rc = SQLITE_NOMEM;
        else rc = tn_vtab_read_noted(&vt->vb, tn_txn_read(vt->vb.txn, vt->txn_coll, w.p, w.len, rev), vt->name);
    }
    tn_wr_free(&w);
    return rc;
}

