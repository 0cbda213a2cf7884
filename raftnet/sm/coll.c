/* coll.c — the collection store: collections, rows, index maintenance, conditional writes, the undo log
 * behind atomic batches and transactions, statistics and snapshots. See coll.h for the contract. */
#include <malloc.h>
#include <stdio.h>

#include "coll_int.h"

enum undo_kind { U_ROW_INS = 1, U_ROW_DEL, U_COLL_CREATE, U_COLL_DROP, U_REVS };

typedef struct undo {
    uint8_t kind;
    coll *c;
    crow *row;
    uint64_t last_write, last_remove; /* U_REVS: the values to restore */
} undo;

struct tn_colls {
    coll **v; /* sorted by name (memcmp, shorter first) */
    size_t n, cap;
    undo *u;
    size_t n_u, cap_u;
    int txn;
};

/* ---- collection objects -------------------------------------------------------------------------- */

static int name_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return (an > bn) - (an < bn);
}

static size_t crow_size(const coll *c, const crow *r)
{
    return malloc_usable_size((void *)(uintptr_t)r);
}

static void coll_free(coll *c)
{
    if (!c) return;
    /* rows are owned through the pk tree */
    if (c->pk.root) {
        bt_cur cur;
        tn_bt_first(&c->pk, &cur);
        while (bt_valid(&cur)) {
            crow *r = bt_get(&cur);
            tn_bt_next(&cur);
            free(r);
        }
    }
    tn_bt_destroy(&c->pk);
    for (size_t s = 0; c->slot_role && s < c->n_idx; s++) { /* roles are set only once built */
        if (c->otree && c->slot_role[s] == TN_R_ORDERED) tn_bt_destroy(&c->otree[s]);
        if (c->hash && c->slot_role[s] == TN_R_HASH) tn_hidx_destroy(&c->hash[s]);
    }
    free(c->otree);
    free(c->hash);
    free(c->distinct);
    free(c->nulls);
    free(c->slot_col);
    free(c->slot_role);
    free(c->col_slot);
    free(c->schema_mem);
    free(c->name);
    free(c);
}

/* A new empty collection with a copy of the (validated) schema; NULL on NOMEM. */
static coll *coll_new(const uint8_t *name, size_t name_len, const tn_coll_schema *s)
{
    coll *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->name = malloc(name_len ? name_len : 1);
    if (!c->name) goto fail;
    memcpy(c->name, name, name_len);
    c->name_len = name_len;
    if (tn_coll_schema_copy(s, &c->schema, &c->schema_mem) != TN_SUCCESS) goto fail;
    c->pk_col = tn_coll_schema_pk(s);
    c->n_idx = tn_coll_schema_n_idx(s);
    size_t ns = c->n_idx ? c->n_idx : 1;
    c->slot_col = calloc(ns, sizeof *c->slot_col);
    c->slot_role = calloc(ns, sizeof *c->slot_role);
    c->col_slot = calloc(s->n_cols, sizeof *c->col_slot);
    c->otree = calloc(ns, sizeof *c->otree);
    c->hash = calloc(ns, sizeof *c->hash);
    c->distinct = calloc(ns, sizeof *c->distinct);
    c->nulls = calloc(ns, sizeof *c->nulls);
    if (!c->slot_col || !c->slot_role || !c->col_slot || !c->otree || !c->hash || !c->distinct || !c->nulls)
        goto fail;
    size_t slot = 0;
    for (size_t k = 0; k < s->n_cols; k++) {
        c->col_slot[k] = -1;
        if (s->cols[k].role == TN_R_HASH || s->cols[k].role == TN_R_ORDERED) {
            c->col_slot[k] = (int)slot;
            c->slot_col[slot] = (uint32_t)k;
            c->slot_role[slot] = s->cols[k].role;
            if (s->cols[k].role == TN_R_HASH) c->n_hash++;
            slot++;
        }
    }
    /* slot_role doubles as "initialised" marker for coll_free: set roles only as structures exist */
    if (tn_bt_init(&c->pk, -1)) goto fail;
    size_t hslot = 0;
    for (size_t k = 0; k < c->n_idx; k++) {
        uint8_t role = c->slot_role[k];
        c->slot_role[k] = 0;
        if (role == TN_R_ORDERED ? tn_bt_init(&c->otree[k], (int)k)
                                 : tn_hidx_init(&c->hash[k], (int)k, (int)hslot++, c->n_idx))
            goto fail;
        c->slot_role[k] = role;
    }
    return c;
fail:
    coll_free(c);
    return NULL;
}

static crow *coll_get(const coll *c, const tn_val *pk)
{
    bt_cur cur;
    tn_bt_seek(&c->pk, pk, 0, &cur, NULL);
    if (!bt_valid(&cur)) return NULL;
    crow *r = bt_get(&cur);
    return tn_val_cmp(&r->pk, pk) == 0 ? r : NULL;
}

/* 1 if an ordered index holds a row (other than itself) with value v. */
static int otree_has_value(const bt *t, const tn_val *v)
{
    bt_cur cur;
    tn_bt_seek(t, v, 0, &cur, NULL);
    return bt_valid(&cur) && tn_val_cmp(bt_key(t, bt_get(&cur)), v) == 0;
}

static void unlink_slots(coll *c, crow *r, size_t upto)
{
    for (size_t s = 0; s < upto; s++) {
        const tn_val *v = &r->idx[s];
        if (c->slot_role[s] == TN_R_ORDERED) {
            tn_bt_delete(&c->otree[s], r);
            if (!otree_has_value(&c->otree[s], v)) c->distinct[s]--;
        } else {
            tn_hidx_delete(&c->hash[s], r);
        }
        if (v->type == TN_V_NULL) c->nulls[s]--;
    }
}

/* Puts r into the pk tree and every index; all or nothing. 0 or -1 (NOMEM). */
static int coll_link(coll *c, crow *r)
{
    if (tn_bt_insert(&c->pk, r)) return -1;
    for (size_t s = 0; s < c->n_idx; s++) {
        const tn_val *v = &r->idx[s];
        int fail;
        if (c->slot_role[s] == TN_R_ORDERED) {
            int had = otree_has_value(&c->otree[s], v);
            fail = tn_bt_insert(&c->otree[s], r);
            if (!fail && !had) c->distinct[s]++;
        } else {
            fail = tn_hidx_insert(&c->hash[s], r);
        }
        if (fail) {
            unlink_slots(c, r, s);
            tn_bt_delete(&c->pk, r);
            return -1;
        }
        if (v->type == TN_V_NULL) c->nulls[s]++;
    }
    return 0;
}

static void coll_unlink(coll *c, crow *r)
{
    unlink_slots(c, r, c->n_idx);
    tn_bt_delete(&c->pk, r);
}

static uint64_t slot_distinct(const coll *c, size_t s)
{
    return c->slot_role[s] == TN_R_HASH ? c->hash[s].used : c->distinct[s];
}

/* One allocation holding the row and copies of all its bytes. NULL on NOMEM. */
static crow *row_new(const coll *c, const tn_val *pk, const tn_val *idx, const uint8_t *payload,
                     size_t payload_len, uint64_t rev)
{
    size_t head = sizeof(crow) + c->n_idx * sizeof(tn_val) + c->n_hash * sizeof(uint32_t);
    size_t bytes = payload_len;
    if (pk->type == TN_V_TEXT || pk->type == TN_V_BLOB) bytes += pk->n;
    for (size_t s = 0; s < c->n_idx; s++)
        if (idx[s].type == TN_V_TEXT || idx[s].type == TN_V_BLOB) bytes += idx[s].n;
    crow *r = malloc(head + bytes);
    if (!r) return NULL;
    uint8_t *p = (uint8_t *)r + head;
    r->rev = rev;
    r->pk = *pk;
    if (pk->type == TN_V_TEXT || pk->type == TN_V_BLOB) {
        if (pk->n) memcpy(p, pk->u.p, pk->n);
        r->pk.u.p = p;
        p += pk->n;
    }
    for (size_t s = 0; s < c->n_idx; s++) {
        r->idx[s] = idx[s];
        if (idx[s].type == TN_V_TEXT || idx[s].type == TN_V_BLOB) {
            if (idx[s].n) memcpy(p, idx[s].u.p, idx[s].n);
            r->idx[s].u.p = p;
            p += idx[s].n;
        }
    }
    if (payload_len) memcpy(p, payload, payload_len);
    r->payload = p;
    r->payload_len = (uint32_t)payload_len;
    memset(crow_hpos(r, c->n_idx), 0, c->n_hash * sizeof(uint32_t));
    return r;
}

/* ---- the store and its undo log ------------------------------------------------------------------- */

tn_colls *tn_colls_new(void) { return calloc(1, sizeof(tn_colls)); }

static size_t coll_find_pos(const tn_colls *cs, const uint8_t *name, size_t len, int *found)
{
    size_t lo = 0, hi = cs->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (name_cmp(cs->v[mid]->name, cs->v[mid]->name_len, name, len) < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = lo < cs->n && name_cmp(cs->v[lo]->name, cs->v[lo]->name_len, name, len) == 0;
    return lo;
}

static coll *coll_find(const tn_colls *cs, const void *name, size_t len)
{
    int found;
    size_t pos = coll_find_pos(cs, name, len, &found);
    return found ? cs->v[pos] : NULL;
}

static int colls_insert(tn_colls *cs, coll *c)
{
    int found;
    size_t pos = coll_find_pos(cs, c->name, c->name_len, &found);
    if (cs->n == cs->cap) {
        size_t ncap = cs->cap ? cs->cap * 2 : 8;
        coll **nv = realloc(cs->v, ncap * sizeof *nv);
        if (!nv) return -1;
        cs->v = nv;
        cs->cap = ncap;
    }
    memmove(&cs->v[pos + 1], &cs->v[pos], (cs->n - pos) * sizeof *cs->v);
    cs->v[pos] = c;
    cs->n++;
    return 0;
}

static void colls_remove(tn_colls *cs, coll *c)
{
    int found;
    size_t pos = coll_find_pos(cs, c->name, c->name_len, &found);
    if (!found) return;
    memmove(&cs->v[pos], &cs->v[pos + 1], (cs->n - pos - 1) * sizeof *cs->v);
    cs->n--;
}

static int undo_push(tn_colls *cs, uint8_t kind, coll *c, crow *row)
{
    if (cs->n_u == cs->cap_u) {
        size_t ncap = cs->cap_u ? cs->cap_u * 2 : 64;
        undo *nu = realloc(cs->u, ncap * sizeof *nu);
        if (!nu) return -1;
        cs->u = nu;
        cs->cap_u = ncap;
    }
    undo *u = &cs->u[cs->n_u++];
    u->kind = kind;
    u->c = c;
    u->row = row;
    u->last_write = c ? c->last_write : 0;
    u->last_remove = c ? c->last_remove : 0;
    return 0;
}

/* Undoes every entry after `mark`, newest first. Re-linking a row may need B-tree nodes; if memory runs
 * out here the replica can no longer be trusted, so it stops rather than diverge silently. */
static void rollback_to(tn_colls *cs, size_t mark)
{
    while (cs->n_u > mark) {
        undo *u = &cs->u[--cs->n_u];
        switch (u->kind) {
        case U_ROW_INS:
            coll_unlink(u->c, u->row);
            free(u->row);
            break;
        case U_ROW_DEL:
            if (coll_link(u->c, u->row)) {
                fprintf(stderr, "tarn: coll: out of memory while rolling back; stopping\n");
                abort();
            }
            break;
        case U_COLL_CREATE:
            colls_remove(cs, u->c);
            coll_free(u->c);
            break;
        case U_COLL_DROP:
            if (colls_insert(cs, u->c)) {
                fprintf(stderr, "tarn: coll: out of memory while rolling back; stopping\n");
                abort();
            }
            break;
        case U_REVS:
            u->c->last_write = u->last_write;
            u->c->last_remove = u->last_remove;
            break;
        }
    }
}

static void commit_all(tn_colls *cs)
{
    for (size_t k = 0; k < cs->n_u; k++) {
        undo *u = &cs->u[k];
        if (u->kind == U_ROW_DEL) free(u->row);
        else if (u->kind == U_COLL_DROP) coll_free(u->c);
    }
    cs->n_u = 0;
    if (cs->cap_u > 4096) { /* do not keep a huge log around after a big batch */
        free(cs->u);
        cs->u = NULL;
        cs->cap_u = 0;
    }
}

void tn_colls_free(tn_colls *cs)
{
    if (!cs) return;
    rollback_to(cs, 0);
    free(cs->u);
    for (size_t k = 0; k < cs->n; k++) coll_free(cs->v[k]);
    free(cs->v);
    free(cs);
}

int tn_colls_txn_begin(tn_colls *cs)
{
    if (cs->txn) return TN_INTERNAL;
    cs->txn = 1;
    return TN_SUCCESS;
}

void tn_colls_txn_commit(tn_colls *cs)
{
    cs->txn = 0;
    commit_all(cs);
}

void tn_colls_txn_rollback(tn_colls *cs)
{
    cs->txn = 0;
    rollback_to(cs, 0);
}

/* ---- writes -------------------------------------------------------------------------------------- */

typedef struct wbatch {
    int atomic;
    size_t n;
    tn_coll_row_op *ops;
    tn_val *vals;
    void **pred_mem; /* per op, RANGE_CHECK predicates */
} wbatch;

static void wbatch_clear(wbatch *b)
{
    if (b->pred_mem)
        for (size_t k = 0; k < b->n; k++) tn_coll_preds_free(b->pred_mem[k]);
    free(b->pred_mem);
    free(b->ops);
    free(b->vals);
    memset(b, 0, sizeof *b);
}

static int pk_ok(const coll *c, const tn_val *pk)
{
    uint8_t t = c->schema.cols[c->pk_col].type;
    return t == TN_T_INTEGER ? pk->type == TN_V_INT : pk->type == TN_V_TEXT;
}

/* Decodes and shape-checks every row op against the collection before anything is applied. */
static int rows_decode(const coll *c, tn_rd *r, wbatch *b, char *msg, size_t cap)
{
    int rc = TN_CLIENT_REQ_ERROR;
    b->atomic = tn_rd_u8(r) & 1;
    uint64_t n = tn_rd_varint(r);
    if (r->err || n > TN_COLL_MAX_ROW_OPS || n > tn_rd_left(r) / 2) {
        snprintf(msg, cap, "malformed row batch header");
        goto fail;
    }
    b->n = (size_t)n;
    b->ops = calloc(b->n ? b->n : 1, sizeof *b->ops);
    b->pred_mem = calloc(b->n ? b->n : 1, sizeof *b->pred_mem);
    size_t *val_at = calloc(b->n ? b->n : 1, sizeof *val_at);
    size_t n_vals = 0, cap_vals = 0;
    if (!b->ops || !b->pred_mem || !val_at) {
        free(val_at);
        rc = TN_NOMEM;
        goto fail;
    }
    for (size_t k = 0; k < b->n; k++) {
        tn_coll_row_op *op = &b->ops[k];
        op->mode = tn_rd_u8(r);
        switch (op->mode) {
        case TN_ROW_UPDATE:
            tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &op->old_pk);
            op->expect_rev = tn_rd_varint(r);
            /* fall through */
        case TN_ROW_INSERT:
        case TN_ROW_INSERT_OR_IGNORE:
        case TN_ROW_UPSERT: {
            tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &op->pk);
            uint64_t ni = tn_rd_varint(r);
            if (r->err) break;
            if (ni != c->n_idx) {
                snprintf(msg, cap, "row %zu: %llu index values given, the collection has %zu", k + 1,
                         (unsigned long long)ni, c->n_idx);
                r->err = 1;
                break;
            }
            if (n_vals + ni > cap_vals) {
                size_t nc = cap_vals ? cap_vals * 2 : 64;
                while (nc < n_vals + ni) nc *= 2;
                tn_val *nv = realloc(b->vals, nc * sizeof *nv);
                if (!nv) {
                    free(val_at);
                    rc = TN_NOMEM;
                    goto fail;
                }
                b->vals = nv;
                cap_vals = nc;
            }
            val_at[k] = n_vals;
            for (uint64_t s = 0; s < ni; s++) tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &b->vals[n_vals++]);
            op->n_idx = (size_t)ni;
            op->payload = tn_rd_bytes(r, TN_COLL_MAX_PAYLOAD, &op->payload_len);
            break;
        }
        case TN_ROW_DELETE:
        case TN_ROW_CHECK:
            tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &op->pk);
            op->expect_rev = tn_rd_varint(r);
            break;
        case TN_ROW_RANGE_CHECK: {
            uint64_t np = tn_rd_varint(r);
            if (r->err || np > TN_COLL_MAX_PREDS) {
                r->err = 1;
                break;
            }
            tn_coll_pred *preds = NULL;
            int prc = tn_coll_preds_decode(r, (size_t)np, &preds, &b->pred_mem[k]);
            if (prc == TN_NOMEM) {
                free(val_at);
                rc = TN_NOMEM;
                goto fail;
            }
            if (prc != TN_SUCCESS) break;
            op->preds = preds;
            op->n_preds = (size_t)np;
            op->expect_rev = tn_rd_varint(r);
            if (!r->err && tn_coll_preds_check(c, preds, (size_t)np, msg, cap) != TN_SUCCESS) {
                free(val_at);
                goto fail;
            }
            break;
        }
        default: r->err = 1; break;
        }
        if (r->err) {
            if (!msg[0]) snprintf(msg, cap, "row op %zu is malformed", k + 1);
            free(val_at);
            goto fail;
        }
        int has_pk = op->mode != TN_ROW_RANGE_CHECK;
        if ((has_pk && !pk_ok(c, &op->pk)) || (op->mode == TN_ROW_UPDATE && !pk_ok(c, &op->old_pk))) {
            snprintf(msg, cap, "row %zu: the primary key '%.*s' must be %s", k + 1,
                     (int)c->schema.cols[c->pk_col].name_len, c->schema.cols[c->pk_col].name,
                     tn_coll_type_name(c->schema.cols[c->pk_col].type));
            free(val_at);
            goto fail;
        }
    }
    if (tn_rd_left(r) != 0) {
        snprintf(msg, cap, "trailing bytes after the row batch");
        free(val_at);
        goto fail;
    }
    for (size_t k = 0; k < b->n; k++)
        if (b->ops[k].n_idx) b->ops[k].idx = &b->vals[val_at[k]];
    free(val_at);
    return TN_SUCCESS;
fail:
    wbatch_clear(b);
    return rc;
}

typedef struct opres {
    int code;
    uint64_t rev;
    int affected;
} opres;

static void describe_failure(char *msg, size_t cap, size_t k, const tn_val *pk, int code, const char *detail)
{
    char pks[96];
    if (pk) {
        tn_val_format(pk, pks, sizeof pks);
        snprintf(msg, cap, "row %zu (pk %s): %s%s%s", k + 1, pks, tn_code_name(code), detail[0] ? ": " : "",
                 detail);
    } else {
        snprintf(msg, cap, "row %zu: %s%s%s", k + 1, tn_code_name(code), detail[0] ? ": " : "", detail);
    }
}

/* Replaces `old` (or inserts when NULL) by a new row; records undo entries. SUCCESS or NOMEM. */
static int put_row(tn_colls *cs, coll *c, crow *old, const tn_coll_row_op *op, uint64_t rev)
{
    crow *nr = row_new(c, &op->pk, op->idx, op->payload, op->payload_len, rev);
    if (!nr) return TN_NOMEM;
    if (old) {
        if (undo_push(cs, U_ROW_DEL, c, old)) goto nomem;
        coll_unlink(c, old);
        c->last_remove = rev;
    }
    if (undo_push(cs, U_ROW_INS, c, nr)) goto nomem;
    if (coll_link(c, nr)) {
        cs->n_u--; /* the U_ROW_INS entry: nr is not linked */
        goto nomem;
    }
    c->last_write = rev;
    return TN_SUCCESS;
nomem:
    free(nr);
    return TN_NOMEM; /* the caller rolls back to its mark (re-links old) */
}

static int apply_op(tn_colls *cs, coll *c, const tn_wctx *ctx, const tn_coll_row_op *op, opres *res,
                    char *detail, size_t dcap)
{
    uint64_t rev = ctx->index;
    crow *cur;
    detail[0] = 0;
    res->rev = 0;
    res->affected = 0;
    switch (op->mode) {
    case TN_ROW_INSERT:
    case TN_ROW_INSERT_OR_IGNORE:
    case TN_ROW_UPSERT:
        cur = coll_get(c, &op->pk);
        if (cur && op->mode == TN_ROW_INSERT) {
            snprintf(detail, dcap, "a row with this primary key exists (revision %llu)",
                     (unsigned long long)cur->rev);
            return TN_ROW_EXISTS;
        }
        if (cur && op->mode == TN_ROW_INSERT_OR_IGNORE) {
            res->rev = cur->rev;
            return TN_SUCCESS;
        }
        if (put_row(cs, c, cur, op, rev)) return TN_NOMEM;
        res->rev = rev;
        res->affected = 1;
        return cur ? TN_SUCCESS_OVERWRITE : TN_SUCCESS;
    case TN_ROW_UPDATE:
    case TN_ROW_DELETE:
        cur = coll_get(c, op->mode == TN_ROW_UPDATE ? &op->old_pk : &op->pk);
        if (!cur) {
            if (op->mode == TN_ROW_DELETE && op->expect_rev == 0) return TN_SUCCESS;
            snprintf(detail, dcap, "no such row");
            return TN_NOT_FOUND;
        }
        if (op->expect_rev && cur->rev != op->expect_rev) {
            snprintf(detail, dcap, "expected revision %llu, the row is at revision %llu",
                     (unsigned long long)op->expect_rev, (unsigned long long)cur->rev);
            res->rev = cur->rev;
            return TN_REVISION_MISMATCH;
        }
        if (op->mode == TN_ROW_UPDATE) {
            if (tn_val_cmp(&op->pk, &op->old_pk) != 0 && coll_get(c, &op->pk)) {
                snprintf(detail, dcap, "the new primary key is taken by another row");
                return TN_ROW_EXISTS;
            }
            if (put_row(cs, c, cur, op, rev)) return TN_NOMEM;
        } else {
            if (undo_push(cs, U_ROW_DEL, c, cur)) return TN_NOMEM;
            coll_unlink(c, cur);
            c->last_write = c->last_remove = rev;
        }
        res->rev = rev;
        res->affected = 1;
        return TN_SUCCESS;
    case TN_ROW_CHECK:
        cur = coll_get(c, &op->pk);
        if (op->expect_rev == 0) {
            if (!cur) return TN_SUCCESS;
            res->rev = cur->rev;
            snprintf(detail, dcap, "expected no row, found one at revision %llu", (unsigned long long)cur->rev);
            return TN_REVISION_MISMATCH;
        }
        if (!cur) {
            snprintf(detail, dcap, "the row read at revision %llu is gone", (unsigned long long)op->expect_rev);
            return TN_NOT_FOUND;
        }
        res->rev = cur->rev;
        if (cur->rev != op->expect_rev) {
            snprintf(detail, dcap, "expected revision %llu, the row is at revision %llu",
                     (unsigned long long)op->expect_rev, (unsigned long long)cur->rev);
            return TN_REVISION_MISMATCH;
        }
        return TN_SUCCESS;
    case TN_ROW_RANGE_CHECK: {
        if (c->last_write <= op->expect_rev) return TN_SUCCESS;
        if (c->last_remove > op->expect_rev) {
            snprintf(detail, dcap, "rows of the collection were updated or deleted at revision %llu, after %llu",
                     (unsigned long long)c->last_remove, (unsigned long long)op->expect_rev);
            return TN_TXN_CONFLICT;
        }
        int any = tn_coll_any_newer(c, op->preds, op->n_preds, op->expect_rev);
        if (any < 0) return TN_NOMEM;
        if (any) {
            snprintf(detail, dcap, "a row in the range read was written after revision %llu",
                     (unsigned long long)op->expect_rev);
            return TN_TXN_CONFLICT;
        }
        return TN_SUCCESS;
    }
    }
    return TN_INTERNAL;
}

static void wresult_encode(tn_wr *out, int code, const char *msg, size_t failed, const opres *res, size_t n)
{
    tn_wr_varint(out, (uint64_t)code);
    tn_wr_bytes(out, msg, strlen(msg));
    tn_wr_varint(out, failed);
    tn_wr_varint(out, n);
    for (size_t k = 0; k < n; k++) {
        tn_wr_varint(out, (uint64_t)res[k].code);
        tn_wr_varint(out, res[k].rev);
        tn_wr_u8(out, (uint8_t)res[k].affected);
    }
}

static int write_rows(tn_colls *cs, coll *c, const tn_wctx *ctx, tn_rd *r, tn_wr *out, char *msg, size_t cap)
{
    wbatch b;
    memset(&b, 0, sizeof b);
    int rc = rows_decode(c, r, &b, msg, cap);
    if (rc != TN_SUCCESS) {
        wresult_encode(out, rc, msg, 0, NULL, 0);
        return rc;
    }
    opres *res = calloc(b.n ? b.n : 1, sizeof *res);
    if (!res) {
        wbatch_clear(&b);
        snprintf(msg, cap, "out of memory");
        wresult_encode(out, TN_NOMEM, msg, 0, NULL, 0);
        return TN_NOMEM;
    }
    size_t batch_mark = cs->n_u;
    int overall = TN_SUCCESS;
    size_t failed = 0;
    char detail[192];
    if (undo_push(cs, U_REVS, c, NULL)) {
        overall = TN_NOMEM;
        snprintf(msg, cap, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < b.n; k++) {
        size_t mark = cs->n_u;
        int code = apply_op(cs, c, ctx, &b.ops[k], &res[k], detail, sizeof detail);
        res[k].code = code;
        if (code == TN_SUCCESS_OVERWRITE && overall == TN_SUCCESS) overall = TN_SUCCESS_OVERWRITE;
        if (tn_code_ok(code)) continue;
        rollback_to(cs, mark);
        res[k].affected = 0;
        if (!failed) {
            failed = k + 1;
            overall = code;
            describe_failure(msg, cap, k, b.ops[k].mode == TN_ROW_RANGE_CHECK ? NULL : &b.ops[k].pk, code,
                             detail);
        }
        if (b.atomic || code == TN_NOMEM) break;
    }
    if (failed && (b.atomic || overall == TN_NOMEM)) {
        rollback_to(cs, batch_mark);
        for (size_t k = 0; k < b.n; k++) {
            if (k + 1 == failed) continue;
            res[k].code = TN_TXN_CONFLICT;
            res[k].rev = 0;
            res[k].affected = 0;
        }
    }
done:
    wresult_encode(out, overall, msg, failed, res, b.n);
    free(res);
    wbatch_clear(&b);
    return overall;
}

int tn_colls_write(tn_colls *cs, const tn_wctx *ctx, const void *name, size_t name_len, const void *payload,
                   size_t len, tn_wr *out)
{
    char msg[320] = "";
    int rc;
    size_t mark0 = cs->n_u;
    tn_rd r;
    tn_rd_init(&r, payload, len);
    uint8_t kind = tn_rd_u8(&r);
    coll *c = coll_find(cs, name, name_len);
    if (r.err || ctx->index == 0 || name_len == 0 || name_len > TN_COLL_MAX_NAME) {
        snprintf(msg, sizeof msg, "%s", r.err ? "empty write payload"
                                   : ctx->index == 0 ? "write without a revision" : "invalid collection name");
        rc = TN_CLIENT_REQ_ERROR;
        goto reply;
    }
    if (kind == TN_CWRITE_CREATE) {
        tn_coll_schema s;
        rc = tn_coll_schema_decode_msg(&r, &s, msg, sizeof msg);
        if (rc == TN_SUCCESS && tn_rd_left(&r)) {
            tn_coll_schema_clear(&s);
            snprintf(msg, sizeof msg, "trailing bytes after the schema");
            rc = TN_CLIENT_REQ_ERROR;
        }
        if (rc != TN_SUCCESS) goto reply;
        if (c) {
            if (tn_coll_schema_diff(&s, &c->schema, msg, sizeof msg)) rc = TN_COLLECTION_EXISTS;
            else rc = TN_SUCCESS_OVERWRITE; /* attached to the identical stored collection */
            tn_coll_schema_clear(&s);
            goto reply;
        }
        coll *nc = coll_new(name, name_len, &s);
        tn_coll_schema_clear(&s);
        if (!nc || undo_push(cs, U_COLL_CREATE, nc, NULL)) {
            coll_free(nc);
            rc = TN_NOMEM;
            goto reply;
        }
        if (colls_insert(cs, nc)) {
            cs->n_u--;
            coll_free(nc);
            rc = TN_NOMEM;
            goto reply;
        }
        nc->last_write = nc->last_remove = ctx->index; /* whatever was there before is gone */
        rc = TN_SUCCESS;
        goto reply;
    }
    if (kind != TN_CWRITE_DROP && kind != TN_CWRITE_ROWS) {
        snprintf(msg, sizeof msg, "unknown write kind %u", kind);
        rc = TN_CLIENT_REQ_ERROR;
        goto reply;
    }
    if (!c) {
        snprintf(msg, sizeof msg, "no collection '%.*s'", (int)(name_len > 128 ? 128 : name_len),
                 (const char *)name);
        rc = TN_NO_SUCH_COLLECTION;
        goto reply;
    }
    if (kind == TN_CWRITE_DROP) {
        if (tn_rd_left(&r)) {
            snprintf(msg, sizeof msg, "trailing bytes after DROP");
            rc = TN_CLIENT_REQ_ERROR;
            goto reply;
        }
        if (undo_push(cs, U_COLL_DROP, c, NULL)) {
            rc = TN_NOMEM;
            goto reply;
        }
        colls_remove(cs, c);
        rc = TN_SUCCESS;
        goto reply;
    }
    rc = write_rows(cs, c, ctx, &r, out, msg, sizeof msg);
    goto done;
reply:
    if (rc == TN_NOMEM && !msg[0]) snprintf(msg, sizeof msg, "out of memory");
    wresult_encode(out, rc, msg, 0, NULL, 0);
done:
    if (out->oom) { /* the caller cannot learn the outcome: undo it */
        rollback_to(cs, mark0);
        rc = TN_NOMEM;
    }
    if (!cs->txn) commit_all(cs);
    return rc;
}

/* ---- reads --------------------------------------------------------------------------------------- */

int tn_colls_read(const tn_colls *cs, uint64_t revision, const void *name, size_t name_len,
                  const void *payload, size_t len, tn_wr *out, const char **plan)
{
    char msg[320] = "";
    tn_rd r;
    tn_rd_init(&r, payload, len);
    if (plan) *plan = "none";
    const coll *c = coll_find(cs, name, name_len);
    if (!c) {
        uint8_t kind = len ? ((const uint8_t *)payload)[0] : 0;
        snprintf(msg, sizeof msg, "no collection '%.*s'", (int)(name_len > 128 ? 128 : name_len),
                 (const char *)name);
        tn_wr_varint(out, TN_NO_SUCH_COLLECTION);
        tn_wr_bytes(out, msg, strlen(msg));
        tn_wr_u8(out, kind);
        tn_wr_varint(out, revision);
        return TN_NO_SUCH_COLLECTION;
    }
    return tn_coll_query_run(c, revision, &r, out, msg, sizeof msg, plan);
}

/* ---- statistics and introspection ------------------------------------------------------------------ */

size_t tn_colls_count(const tn_colls *cs) { return cs->n; }

int64_t tn_colls_rows(const tn_colls *cs, const void *name, size_t name_len)
{
    const coll *c = coll_find(cs, name, name_len);
    return c ? (int64_t)c->pk.count : -1;
}

int tn_colls_stats(const tn_colls *cs, const void *name, size_t name_len, tn_coll_stats *st)
{
    memset(st, 0, sizeof *st);
    const coll *c = coll_find(cs, name, name_len);
    if (!c) return TN_NO_SUCH_COLLECTION;
    st->rows = c->pk.count;
    st->n_idx = c->n_idx;
    st->idx = calloc(c->n_idx ? c->n_idx : 1, sizeof *st->idx);
    if (!st->idx) return TN_NOMEM;
    for (size_t s = 0; s < c->n_idx; s++) {
        st->idx[s].column = c->slot_col[s];
        st->idx[s].role = c->slot_role[s];
        st->idx[s].rows = c->pk.count;
        st->idx[s].distinct = slot_distinct(c, s);
        st->idx[s].nulls = c->nulls[s];
    }
    return TN_SUCCESS;
}

int tn_colls_check(const tn_colls *cs)
{
    for (size_t k = 0; k < cs->n; k++) {
        const coll *c = cs->v[k];
        if (k && name_cmp(cs->v[k - 1]->name, cs->v[k - 1]->name_len, c->name, c->name_len) >= 0) return 1;
        int bad = tn_bt_check(&c->pk);
        if (bad) return 100000 + bad;
        for (size_t s = 0; s < c->n_idx; s++) {
            uint64_t nulls = 0, distinct = 0;
            if (c->slot_role[s] == TN_R_ORDERED) {
                const bt *t = &c->otree[s];
                if ((bad = tn_bt_check(t))) return 200000 + bad;
                if (t->count != c->pk.count) return 2;
                bt_cur cur;
                const crow *prev = NULL;
                for (tn_bt_first(t, &cur); bt_valid(&cur); tn_bt_next(&cur)) {
                    const crow *r = bt_get(&cur);
                    if (r->idx[s].type == TN_V_NULL) nulls++;
                    if (!prev || tn_val_cmp(&prev->idx[s], &r->idx[s]) != 0) distinct++;
                    prev = r;
                }
            } else {
                const hidx *h = &c->hash[s];
                size_t total = 0, used = 0;
                for (size_t i = 0; i < h->cap; i++) {
                    const hentry *e = &h->t[i];
                    if (e->v.type == HENTRY_EMPTY) continue;
                    used++;
                    if (tn_hidx_find(h, &e->v) != e) return 3;
                    for (size_t j = 0; j < e->n; j++) {
                        const crow *r = hentry_row(e, j);
                        if (tn_val_cmp(&r->idx[s], &e->v) != 0) return 4;
                        if (e->cap && crow_hpos(r, c->n_idx)[h->hslot] != j) return 5;
                        if (!coll_get(c, &r->pk)) return 6;
                        if (r->idx[s].type == TN_V_NULL) nulls++;
                    }
                    total += e->n;
                }
                if (used != h->used || total != c->pk.count) return 7;
                distinct = used;
            }
            if (nulls != c->nulls[s]) return 8;
            if (distinct != slot_distinct(c, s)) return 9;
        }
    }
    return 0;
}

size_t tn_colls_memory(const tn_colls *cs)
{
    size_t m = malloc_usable_size((void *)cs) + malloc_usable_size(cs->v) + malloc_usable_size(cs->u);
    for (size_t k = 0; k < cs->n; k++) {
        const coll *c = cs->v[k];
        m += sizeof *c + c->name_len + malloc_usable_size(c->schema_mem);
        bt_cur cur;
        for (tn_bt_first(&c->pk, &cur); bt_valid(&cur); tn_bt_next(&cur)) m += crow_size(c, bt_get(&cur));
        m += c->pk.n_leaves * sizeof(bt_leaf) + c->pk.n_inners * sizeof(bt_inner);
        for (size_t s = 0; s < c->n_idx; s++) {
            if (c->slot_role[s] == TN_R_ORDERED) {
                m += c->otree[s].n_leaves * sizeof(bt_leaf) + c->otree[s].n_inners * sizeof(bt_inner);
            } else {
                const hidx *h = &c->hash[s];
                m += h->cap * sizeof(hentry);
                for (size_t i = 0; i < h->cap; i++)
                    if (h->t[i].v.type != HENTRY_EMPTY && h->t[i].cap) m += malloc_usable_size(h->t[i].r.many);
            }
        }
    }
    return m;
}

/* ---- snapshot ------------------------------------------------------------------------------------ */

int tn_colls_serialize(const tn_colls *cs, tn_wr *w)
{
    if (cs->n_u || cs->txn) return TN_INTERNAL;
    tn_wr_raw(w, "TNCL", 4);
    tn_wr_u8(w, 1);
    tn_wr_varint(w, cs->n);
    for (size_t k = 0; k < cs->n; k++) {
        const coll *c = cs->v[k];
        tn_wr_bytes(w, c->name, c->name_len);
        tn_coll_schema_encode(&c->schema, w);
        tn_wr_varint(w, c->last_write);
        tn_wr_varint(w, c->last_remove);
        tn_wr_varint(w, c->pk.count);
        bt_cur cur;
        for (tn_bt_first(&c->pk, &cur); bt_valid(&cur); tn_bt_next(&cur)) {
            const crow *r = bt_get(&cur);
            tn_val_encode(&r->pk, w);
            tn_wr_varint(w, r->rev);
            for (size_t s = 0; s < c->n_idx; s++) tn_val_encode(&r->idx[s], w);
            tn_wr_bytes(w, r->payload, r->payload_len);
        }
        if (w->oom) return TN_NOMEM;
    }
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

static int slot_row_cmp(const void *a, const void *b, void *arg)
{
    size_t slot = *(const size_t *)arg;
    const crow *x = *(crow *const *)a, *y = *(crow *const *)b;
    int c = tn_val_cmp(&x->idx[slot], &y->idx[slot]);
    return c ? c : tn_val_cmp(&x->pk, &y->pk);
}

/* Builds every secondary index of a collection whose rows are all in the pk tree (snapshot load):
 * ordered indexes get their rows in index order, so each insert appends to a cached rightmost path and
 * leaves come out full; statistics are counted on the way. 0 or -1 (NOMEM; coll_free cleans up). */
static int build_indexes(coll *c)
{
    size_t n = c->pk.count;
    crow **v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return -1;
    bt_cur cur;
    size_t k = 0;
    for (tn_bt_first(&c->pk, &cur); bt_valid(&cur); tn_bt_next(&cur)) v[k++] = bt_get(&cur);
    for (size_t s = 0; s < c->n_idx; s++) {
        if (c->slot_role[s] == TN_R_ORDERED && n > 1) qsort_r(v, n, sizeof *v, slot_row_cmp, &s);
        for (k = 0; k < n; k++) {
            const tn_val *val = &v[k]->idx[s];
            if (c->slot_role[s] == TN_R_ORDERED) {
                if (tn_bt_insert(&c->otree[s], v[k])) goto nomem;
                if (k == 0 || tn_val_cmp(&v[k - 1]->idx[s], val) != 0) c->distinct[s]++;
            } else if (tn_hidx_insert(&c->hash[s], v[k])) {
                goto nomem;
            }
            if (val->type == TN_V_NULL) c->nulls[s]++;
        }
    }
    free(v);
    return 0;
nomem:
    free(v);
    return -1;
}

static int load_coll(tn_colls *dst, tn_rd *r)
{
    size_t name_len;
    const uint8_t *name = tn_rd_bytes(r, TN_COLL_MAX_NAME, &name_len);
    tn_coll_schema s;
    if (r->err || name_len == 0) return TN_CLIENT_REQ_ERROR;
    int rc = tn_coll_schema_decode(r, &s);
    if (rc != TN_SUCCESS) return rc;
    coll *c = coll_new(name, name_len, &s);
    tn_coll_schema_clear(&s);
    if (!c) return TN_NOMEM;
    tn_val *vals = calloc(c->n_idx ? c->n_idx : 1, sizeof *vals);
    if (!vals) {
        coll_free(c);
        return TN_NOMEM;
    }
    rc = TN_CLIENT_REQ_ERROR;
    c->last_write = tn_rd_varint(r);
    c->last_remove = tn_rd_varint(r);
    uint64_t n = tn_rd_varint(r);
    if (r->err || n > tn_rd_left(r) / 3 || coll_find(dst, name, name_len)) goto fail;
    if (dst->n && name_cmp(dst->v[dst->n - 1]->name, dst->v[dst->n - 1]->name_len, name, name_len) > 0) goto fail;
    const crow *prev = NULL;
    for (uint64_t k = 0; k < n; k++) {
        tn_val pk;
        size_t plen;
        tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &pk);
        uint64_t rev = tn_rd_varint(r);
        for (size_t s2 = 0; s2 < c->n_idx; s2++) tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &vals[s2]);
        const uint8_t *payload = tn_rd_bytes(r, TN_COLL_MAX_PAYLOAD, &plen);
        if (r->err || !pk_ok(c, &pk) || rev == 0) goto fail;
        if (prev && tn_val_cmp(&prev->pk, &pk) >= 0) goto fail; /* pk order, no duplicates */
        crow *row = row_new(c, &pk, vals, payload, plen, rev);
        if (!row) {
            rc = TN_NOMEM;
            goto fail;
        }
        if (tn_bt_insert(&c->pk, row)) { /* appends: rows come in pk order */
            free(row);
            rc = TN_NOMEM;
            goto fail;
        }
        prev = row;
    }
    if (build_indexes(c)) {
        rc = TN_NOMEM;
        goto fail;
    }
    if (colls_insert(dst, c)) {
        rc = TN_NOMEM;
        goto fail;
    }
    free(vals);
    return TN_SUCCESS;
fail:
    free(vals);
    coll_free(c);
    return rc;
}

int tn_colls_deserialize(tn_colls *cs, const void *image, size_t len)
{
    if (cs->n_u || cs->txn) return TN_INTERNAL;
    tn_rd r;
    tn_rd_init(&r, image, len);
    const uint8_t *magic = tn_rd_raw(&r, 4);
    uint8_t ver = tn_rd_u8(&r);
    uint64_t n = tn_rd_varint(&r);
    if (r.err || memcmp(magic, "TNCL", 4) || ver != 1 || n > tn_rd_left(&r)) return TN_CLIENT_REQ_ERROR;
    tn_colls *fresh = tn_colls_new();
    if (!fresh) return TN_NOMEM;
    int rc = TN_SUCCESS;
    for (uint64_t k = 0; k < n && rc == TN_SUCCESS; k++) rc = load_coll(fresh, &r);
    if (rc == TN_SUCCESS && tn_rd_left(&r)) rc = TN_CLIENT_REQ_ERROR;
    if (rc != TN_SUCCESS) {
        tn_colls_free(fresh);
        return rc;
    }
    /* swap contents: the old collections go with `fresh` */
    tn_colls tmp = *cs;
    *cs = *fresh;
    *fresh = tmp;
    tn_colls_free(fresh);
    return TN_SUCCESS;
}
