/* coll_codec.c — client-side payload encoders (schema, queries, row batches) and result decoders, so
 * that ext/ never writes collection bytes by hand. Formats: coll_codec.h. */
#include "coll_codec.h"

#include <stdlib.h>
#include <string.h>

static int check_val(const tn_val *v)
{
    if (v->type > TN_V_BLOB) return 0;
    if ((v->type == TN_V_TEXT || v->type == TN_V_BLOB) && (v->n > TN_COLL_MAX_INDEX_VALUE || (v->n && !v->u.p)))
        return 0;
    if (v->type == TN_V_REAL && v->u.r != v->u.r) return 0; /* NaN */
    return 1;
}

static int check_preds(const tn_coll_pred *p, size_t n)
{
    if (n > TN_COLL_MAX_PREDS || (n && !p)) return 0;
    for (size_t k = 0; k < n; k++) {
        switch (p[k].op) {
        case TN_PRED_EQ:
            if (!check_val(&p[k].v)) return 0;
            break;
        case TN_PRED_IN:
            if (p[k].n_in > TN_COLL_MAX_IN || (p[k].n_in && !p[k].in)) return 0;
            for (size_t j = 0; j < p[k].n_in; j++)
                if (!check_val(&p[k].in[j])) return 0;
            break;
        case TN_PRED_IS_NULL:
        case TN_PRED_NOT_NULL: break;
        case TN_PRED_RANGE:
            if (p[k].lo_kind > TN_BOUND_INCL || p[k].hi_kind > TN_BOUND_INCL) return 0;
            if ((p[k].lo_kind && !check_val(&p[k].lo)) || (p[k].hi_kind && !check_val(&p[k].hi))) return 0;
            break;
        case TN_PRED_PREFIX:
            if (p[k].prefix_len > TN_COLL_MAX_INDEX_VALUE || (p[k].prefix_len && !p[k].prefix)) return 0;
            break;
        default: return 0;
        }
    }
    return 1;
}

/* Appends one predicate (the pred format in coll_codec.h). */
static void pred_encode(const tn_coll_pred *p, tn_wr *w)
{
    tn_wr_varint(w, p->column);
    tn_wr_u8(w, p->op);
    switch (p->op) {
    case TN_PRED_EQ: tn_val_encode(&p->v, w); break;
    case TN_PRED_IN:
        tn_wr_varint(w, p->n_in);
        for (size_t k = 0; k < p->n_in; k++) tn_val_encode(&p->in[k], w);
        break;
    case TN_PRED_RANGE:
        tn_wr_u8(w, p->lo_kind);
        if (p->lo_kind) tn_val_encode(&p->lo, w);
        tn_wr_u8(w, p->hi_kind);
        if (p->hi_kind) tn_val_encode(&p->hi, w);
        break;
    case TN_PRED_PREFIX:
        tn_wr_u8(w, p->nocase ? 1 : 0);
        tn_wr_bytes(w, p->prefix, p->prefix_len);
        break;
    default: break;
    }
}

int tn_coll_query_encode(const tn_coll_query *q, tn_wr *w)
{
    if (q->kind == TN_QUERY_STATS || q->kind == TN_QUERY_SCHEMA) {
        tn_wr_u8(w, q->kind);
        return w->oom ? TN_NOMEM : TN_SUCCESS;
    }
    if (q->kind != TN_QUERY_SELECT || !check_preds(q->preds, q->n_preds) || q->order_col < TN_QUERY_NO_ORDER)
        return TN_CLIENT_REQ_ERROR;
    tn_wr_u8(w, q->kind);
    tn_wr_varint(w, q->n_preds);
    for (size_t k = 0; k < q->n_preds; k++) pred_encode(&q->preds[k], w);
    tn_wr_varint(w, q->order_col == TN_QUERY_NO_ORDER ? 0 : (uint64_t)q->order_col + 1);
    tn_wr_u8(w, q->order_desc ? 1 : 0);
    tn_wr_u8(w, (uint8_t)((q->has_limit ? 1 : 0) | (q->has_offset ? 2 : 0)));
    if (q->has_limit) tn_wr_varint(w, q->limit);
    if (q->has_offset) tn_wr_varint(w, q->offset);
    tn_wr_u8(w, q->want_payload ? 1 : 0);
    tn_wr_varint(w, q->idx_mask);
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

int tn_coll_create_encode(const tn_coll_schema *s, tn_wr *w)
{
    char msg[160];
    if (tn_coll_schema_validate(s, msg, sizeof msg) != TN_SUCCESS) return TN_CLIENT_REQ_ERROR;
    tn_wr_u8(w, TN_CWRITE_CREATE);
    tn_coll_schema_encode(s, w);
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

int tn_coll_drop_encode(tn_wr *w)
{
    tn_wr_u8(w, TN_CWRITE_DROP);
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

static void row_body(const tn_coll_row_op *op, tn_wr *w)
{
    tn_val_encode(&op->pk, w);
    tn_wr_varint(w, op->n_idx);
    for (size_t s = 0; s < op->n_idx; s++) tn_val_encode(&op->idx[s], w);
    tn_wr_bytes(w, op->payload, op->payload_len);
}

int tn_coll_rows_encode(const tn_coll_row_op *ops, size_t n, int atomic, tn_wr *w)
{
    if (n > TN_COLL_MAX_ROW_OPS || (n && !ops)) return TN_CLIENT_REQ_ERROR;
    for (size_t k = 0; k < n; k++) {
        const tn_coll_row_op *op = &ops[k];
        int has_row = op->mode >= TN_ROW_INSERT && op->mode <= TN_ROW_UPDATE;
        if (op->mode < TN_ROW_INSERT || op->mode > TN_ROW_RANGE_CHECK) return TN_CLIENT_REQ_ERROR;
        if (op->mode != TN_ROW_RANGE_CHECK && !check_val(&op->pk)) return TN_CLIENT_REQ_ERROR;
        if (op->mode == TN_ROW_UPDATE && !check_val(&op->old_pk)) return TN_CLIENT_REQ_ERROR;
        if (has_row) {
            if (op->n_idx > TN_COLL_MAX_INDEXES || (op->n_idx && !op->idx)) return TN_CLIENT_REQ_ERROR;
            for (size_t s = 0; s < op->n_idx; s++)
                if (!check_val(&op->idx[s])) return TN_CLIENT_REQ_ERROR;
            if (op->payload_len > TN_COLL_MAX_PAYLOAD || (op->payload_len && !op->payload))
                return TN_CLIENT_REQ_ERROR;
        }
        if (op->mode == TN_ROW_RANGE_CHECK && !check_preds(op->preds, op->n_preds)) return TN_CLIENT_REQ_ERROR;
    }
    tn_wr_u8(w, TN_CWRITE_ROWS);
    tn_wr_u8(w, atomic ? 1 : 0);
    tn_wr_varint(w, n);
    for (size_t k = 0; k < n; k++) {
        const tn_coll_row_op *op = &ops[k];
        tn_wr_u8(w, op->mode);
        switch (op->mode) {
        case TN_ROW_UPDATE:
            tn_val_encode(&op->old_pk, w);
            tn_wr_varint(w, op->expect_rev);
            row_body(op, w);
            break;
        case TN_ROW_INSERT:
        case TN_ROW_INSERT_OR_IGNORE:
        case TN_ROW_UPSERT: row_body(op, w); break;
        case TN_ROW_DELETE:
        case TN_ROW_CHECK:
            tn_val_encode(&op->pk, w);
            tn_wr_varint(w, op->expect_rev);
            break;
        case TN_ROW_RANGE_CHECK:
            tn_wr_varint(w, op->n_preds);
            for (size_t j = 0; j < op->n_preds; j++) pred_encode(&op->preds[j], w);
            tn_wr_varint(w, op->expect_rev);
            break;
        }
    }
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

/* ---- result decoders ----------------------------------------------------------------------------- */

int tn_coll_write_result_decode(const void *buf, size_t len, tn_coll_write_result *res)
{
    tn_rd r;
    tn_rd_init(&r, buf, len);
    memset(res, 0, sizeof *res);
    uint64_t code = tn_rd_varint(&r);
    res->message = (const char *)tn_rd_bytes(&r, 64 * 1024, &res->message_len);
    uint64_t failed = tn_rd_varint(&r);
    uint64_t n = tn_rd_varint(&r);
    if (r.err || code > 0xffff || n > TN_COLL_MAX_ROW_OPS || n > tn_rd_left(&r) / 3 || failed > n) goto bad;
    res->code = (int)code;
    res->failed_op = (size_t)failed;
    res->n_ops = (size_t)n;
    res->ops = calloc(n ? (size_t)n : 1, sizeof *res->ops);
    if (!res->ops) {
        memset(res, 0, sizeof *res);
        return TN_NOMEM;
    }
    for (size_t k = 0; k < res->n_ops; k++) {
        uint64_t c = tn_rd_varint(&r);
        res->ops[k].code = c > 0xffff ? -1 : (int)c;
        res->ops[k].rev = tn_rd_varint(&r);
        uint8_t a = tn_rd_u8(&r);
        if (a > 1 || c > 0xffff) r.err = 1;
        res->ops[k].affected = a;
    }
    if (r.err || tn_rd_left(&r)) {
        tn_coll_write_result_clear(res);
        goto bad;
    }
    return TN_SUCCESS;
bad:
    memset(res, 0, sizeof *res);
    return TN_CLIENT_REQ_ERROR;
}

void tn_coll_write_result_clear(tn_coll_write_result *res)
{
    free(res->ops);
    memset(res, 0, sizeof *res);
}

int tn_coll_result_decode(const void *buf, size_t len, tn_coll_result *res)
{
    tn_rd r;
    int rc = TN_CLIENT_REQ_ERROR;
    tn_rd_init(&r, buf, len);
    memset(res, 0, sizeof *res);
    uint64_t code = tn_rd_varint(&r);
    res->message = (const char *)tn_rd_bytes(&r, 64 * 1024, &res->message_len);
    res->kind = tn_rd_u8(&r);
    res->revision = tn_rd_varint(&r);
    if (r.err || code > 0xffff) goto fail;
    res->code = (int)code;
    if (code != TN_SUCCESS) {
        if (tn_rd_left(&r)) goto fail;
        return TN_SUCCESS;
    }
    if (res->kind == TN_QUERY_SCHEMA) {
        rc = tn_coll_schema_decode(&r, &res->schema);
        if (rc != TN_SUCCESS) goto fail;
        rc = TN_CLIENT_REQ_ERROR;
    } else if (res->kind == TN_QUERY_STATS) {
        res->stats.rows = tn_rd_varint(&r);
        uint64_t n = tn_rd_varint(&r);
        if (r.err || n > TN_COLL_MAX_INDEXES || n > tn_rd_left(&r) / 5) goto fail;
        res->stats.n_idx = (size_t)n;
        res->stats.idx = calloc(n ? (size_t)n : 1, sizeof *res->stats.idx);
        if (!res->stats.idx) {
            rc = TN_NOMEM;
            goto fail;
        }
        for (size_t k = 0; k < res->stats.n_idx; k++) {
            tn_coll_index_stats *s = &res->stats.idx[k];
            uint64_t col = tn_rd_varint(&r);
            s->column = col > TN_COLL_MAX_COLS ? 0 : (uint32_t)col;
            s->role = tn_rd_u8(&r);
            s->rows = tn_rd_varint(&r);
            s->distinct = tn_rd_varint(&r);
            s->nulls = tn_rd_varint(&r);
            if (col >= TN_COLL_MAX_COLS || (s->role != TN_R_HASH && s->role != TN_R_ORDERED)) r.err = 1;
        }
    } else if (res->kind == TN_QUERY_SELECT) {
        res->want_payload = tn_rd_u8(&r);
        res->idx_mask = tn_rd_varint(&r);
        uint64_t n = tn_rd_varint(&r);
        if (r.err || res->want_payload > 1 || n > tn_rd_left(&r) / 2) goto fail;
        size_t nv = 0;
        for (size_t s = 0; s < 64; s++)
            if (res->idx_mask >> s & 1) nv = s + 1;
        res->n_idx_vals = nv;
        res->n_rows = (size_t)n;
        res->rows = calloc(n ? (size_t)n : 1, sizeof *res->rows);
        res->vals_ = calloc((n * nv) != 0 ? (size_t)(n * nv) : 1, sizeof *res->vals_);
        if (!res->rows || !res->vals_) {
            rc = TN_NOMEM;
            goto fail;
        }
        for (size_t k = 0; k < res->n_rows && !r.err; k++) {
            tn_coll_rrow *row = &res->rows[k];
            tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &row->pk);
            row->rev = tn_rd_varint(&r);
            row->idx = &res->vals_[k * nv];
            for (size_t s = 0; s < nv; s++)
                if (res->idx_mask >> s & 1) tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &row->idx[s]);
            if (res->want_payload) row->payload = tn_rd_bytes(&r, TN_COLL_MAX_PAYLOAD, &row->payload_len);
        }
    } else {
        goto fail;
    }
    if (r.err || tn_rd_left(&r)) goto fail;
    return TN_SUCCESS;
fail:
    tn_coll_result_clear(res);
    return rc;
}

void tn_coll_result_clear(tn_coll_result *res)
{
    free(res->rows);
    free(res->vals_);
    free(res->stats.idx);
    tn_coll_schema_clear(&res->schema);
    memset(res, 0, sizeof *res);
}

/* ---- predicate decoding -------------------------------------------------------------------------- */


int tn_coll_preds_decode(tn_rd *r, size_t n, tn_coll_pred **preds, void **mem)
{
    *preds = NULL;
    *mem = NULL;
    if (n > TN_COLL_MAX_PREDS || n > tn_rd_left(r) / 2) {
        r->err = 1;
        return TN_CLIENT_REQ_ERROR;
    }
    /* one block: the predicates, then every IN value (IN counts are bounded by the bytes left) */
    size_t left = tn_rd_left(r);
    size_t max_vals = left < (size_t)TN_COLL_MAX_IN * n ? left : (size_t)TN_COLL_MAX_IN * n;
    tn_coll_pred *p = calloc(n ? n : 1, sizeof *p);
    tn_val *vals = NULL;
    size_t used = 0, cap = 0;
    if (!p) return TN_NOMEM;
    for (size_t k = 0; k < n; k++) {
        uint64_t col = tn_rd_varint(r);
        p[k].column = col > UINT32_MAX ? UINT32_MAX : (uint32_t)col;
        p[k].op = tn_rd_u8(r);
        switch (p[k].op) {
        case TN_PRED_EQ: tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &p[k].v); break;
        case TN_PRED_IN: {
            uint64_t m = tn_rd_varint(r);
            if (r->err || m > TN_COLL_MAX_IN || m > tn_rd_left(r) || used + m > max_vals) {
                r->err = 1;
                break;
            }
            if (used + m > cap) {
                size_t nc = cap ? cap : 16;
                while (nc < used + m) nc *= 2;
                tn_val *nv = realloc(vals, nc * sizeof *nv);
                if (!nv) {
                    free(p);
                    free(vals);
                    return TN_NOMEM;
                }
                vals = nv;
                cap = nc;
            }
            p[k].n_in = (size_t)m;
            p[k].in = (const tn_val *)(uintptr_t)used; /* offset until the array stops moving */
            for (uint64_t j = 0; j < m; j++) tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &vals[used++]);
            break;
        }
        case TN_PRED_IS_NULL:
        case TN_PRED_NOT_NULL: break;
        case TN_PRED_RANGE:
            p[k].lo_kind = tn_rd_u8(r);
            if (p[k].lo_kind > TN_BOUND_INCL) r->err = 1;
            if (p[k].lo_kind) tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &p[k].lo);
            p[k].hi_kind = tn_rd_u8(r);
            if (p[k].hi_kind > TN_BOUND_INCL) r->err = 1;
            if (p[k].hi_kind) tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &p[k].hi);
            break;
        case TN_PRED_PREFIX: {
            uint8_t nc = tn_rd_u8(r);
            if (nc > 1) r->err = 1;
            p[k].nocase = nc;
            p[k].prefix = tn_rd_bytes(r, TN_COLL_MAX_INDEX_VALUE, &p[k].prefix_len);
            break;
        }
        default: r->err = 1; break;
        }
        if (r->err) break;
    }
    if (r->err) {
        free(p);
        free(vals);
        return TN_CLIENT_REQ_ERROR;
    }
    for (size_t k = 0; k < n; k++)
        if (p[k].op == TN_PRED_IN) p[k].in = p[k].n_in ? vals + (uintptr_t)p[k].in : NULL;
    /* ownership of vals rides along in *mem: a two-pointer block */
    void **block = malloc(2 * sizeof(void *));
    if (!block) {
        free(p);
        free(vals);
        return TN_NOMEM;
    }
    block[0] = p;
    block[1] = vals;
    *preds = p;
    *mem = block;
    return TN_SUCCESS;
}

void tn_coll_preds_free(void *mem)
{
    if (!mem) return;
    void **block = mem;
    free(block[0]);
    free(block[1]);
    free(block);
}

void tn_coll_stats_clear(tn_coll_stats *st)
{
    free(st->idx);
    memset(st, 0, sizeof *st);
}
