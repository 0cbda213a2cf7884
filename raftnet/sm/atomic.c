/* atomic.c — all-or-nothing apply of an atomic request (see atomic.h). */
#include "atomic.h"

#include <stdlib.h>
#include <string.h>

static int allowed_in_txn(int opcode)
{
    switch (opcode) {
    case TN_OP_KV_PUT:
    case TN_OP_KV_MKDIR:
    case TN_OP_KV_REMOVE:
    case TN_OP_KV_CAS:
    case TN_OP_KV_PUT_TEMP:
    case TN_OP_KV_MKDIR_TEMP:
    case TN_OP_KV_UPDATE_TTL:
    case TN_OP_KV_CHECK:
    case TN_OP_COLL_WRITE:
        return 1;
    default:
        return 0;
    }
}

/* An op's condition against the tree as it is now. SUCCESS when it holds. */
static int check_cond(const tn_tree *tree, const tn_op *op)
{
    tn_tree_node_view v;
    int rc;
    switch (op->cond) {
    case TN_COND_NONE:
        return TN_SUCCESS;
    case TN_COND_ABSENT:
        rc = tn_tree_get(tree, op->key, op->key_len, &v);
        if (rc == TN_NOT_FOUND) return TN_SUCCESS;
        if (rc != TN_SUCCESS) return rc;
        return v.is_dir ? TN_DIR_EXISTS : TN_VALUE_EXISTS;
    case TN_COND_REV:
        rc = tn_tree_get(tree, op->key, op->key_len, &v);
        if (rc != TN_SUCCESS) return rc;
        return v.update_rev == op->cond_rev ? TN_SUCCESS : TN_REVISION_MISMATCH;
    default:
        return TN_CLIENT_REQ_ERROR;
    }
}

int tn_tree_apply_op(tn_tree *tree, const tn_wctx *ctx, const tn_op *op)
{
    int rc = check_cond(tree, op);
    if (rc != TN_SUCCESS) return rc;
    switch (op->opcode) {
    case TN_OP_KV_CHECK:
        return op->cond == TN_COND_NONE ? TN_CLIENT_REQ_ERROR : TN_SUCCESS;
    case TN_OP_KV_PUT:
        return tn_tree_put(tree, ctx, op->key, op->key_len, op->value, op->value_len);
    case TN_OP_KV_MKDIR:
        return tn_tree_mkdir(tree, ctx, op->key, op->key_len);
    case TN_OP_KV_REMOVE:
        return tn_tree_remove(tree, ctx, op->key, op->key_len);
    case TN_OP_KV_CAS:
        return tn_tree_cas(tree, ctx, op->key, op->key_len, op->expect, op->expect_len, op->value, op->value_len);
    case TN_OP_KV_PUT_TEMP:
        return tn_tree_put_temp(tree, ctx, op->key, op->key_len, op->value, op->value_len, op->ttl_ms);
    case TN_OP_KV_MKDIR_TEMP:
        return tn_tree_mkdir_temp(tree, ctx, op->key, op->key_len, op->ttl_ms);
    case TN_OP_KV_UPDATE_TTL:
        return tn_tree_update_ttl(tree, ctx, op->key, op->key_len, op->ttl_ms);
    case TN_OP_KV_EXPIRE:
        return tn_tree_expire(tree, ctx, op->key, op->key_len, op->expect_rev);
    default:
        return TN_CLIENT_REQ_ERROR;
    }
}

int tn_atomic_apply(tn_tree *tree, tn_colls *colls, const tn_wctx *ctx, const tn_req *req, tn_wr *out)
{
    tn_resp_builder b;
    tn_wr *blobs = NULL;
    int *codes = NULL;
    size_t n = req->n_ops, failed = req->n_ops;
    int rc, tree_open = 0, colls_open = 0;

    for (size_t i = 0; i < n; i++)
        if (!allowed_in_txn(req->ops[i].opcode))
            return tn_resp_error(out, req->req_id, TN_BAD_REQUEST, NULL,
                                 "an atomic request may hold only tree writes, KV_CHECK and collection writes");
    blobs = calloc(n ? n : 1, sizeof *blobs);
    codes = calloc(n ? n : 1, sizeof *codes);
    if (!blobs || !codes) { rc = TN_NOMEM; goto done; }
    if ((rc = tn_tree_txn_begin(tree)) != TN_SUCCESS) goto done;
    tree_open = 1;
    if ((rc = tn_colls_txn_begin(colls)) != TN_SUCCESS) goto done;
    colls_open = 1;
    for (size_t i = 0; i < n && failed == n; i++) {
        const tn_op *op = &req->ops[i];
        if (op->opcode == TN_OP_COLL_WRITE)
            codes[i] = tn_colls_write(colls, ctx, op->key, op->key_len, op->value, op->value_len, &blobs[i]);
        else
            codes[i] = tn_tree_apply_op(tree, ctx, op);
        if (!tn_code_ok(codes[i]) || blobs[i].oom) failed = i;
    }
    if (failed < n) {
        tn_colls_txn_rollback(colls);
        colls_open = 0;
        rc = tn_tree_txn_rollback(tree);
        tree_open = 0;
        if (rc != TN_SUCCESS) { rc = TN_INTERNAL; goto done; }
    }
    /* The response is built before the commit: running out of memory here can still undo everything. */
    size_t at = out->len;
    tn_resp_begin(&b, out, req->req_id, TN_SUCCESS, ctx->index, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        const tn_op *op = &req->ops[i];
        if (failed < n) {
            tn_resp_result_begin(&b, i == failed ? codes[i] : TN_TXN_CONFLICT);
            if (i == failed && op->opcode == TN_OP_COLL_WRITE) tn_resp_blob(&b, blobs[i].p, blobs[i].len);
            continue;
        }
        tn_resp_result_begin(&b, codes[i]);
        if (op->opcode == TN_OP_COLL_WRITE) {
            tn_resp_blob(&b, blobs[i].p, blobs[i].len);
        } else if (op->opcode != TN_OP_KV_REMOVE && op->opcode != TN_OP_KV_CHECK &&
                   !(op->opcode == TN_OP_KV_CAS && (!op->value || !op->value_len))) {
            tn_tree_node_view v;
            if (tn_tree_get(tree, op->key, op->key_len, &v) == TN_SUCCESS) {
                tn_entry e;
                memset(&e, 0, sizeof e);
                e.key = v.key;
                e.key_len = v.key_len;
                e.is_dir = v.is_dir;
                if (!v.is_dir) {
                    e.value = v.value;
                    e.value_len = v.value_len;
                }
                e.create_rev = v.create_rev;
                e.update_rev = v.update_rev;
                e.create_time = v.create_time;
                e.update_time = v.update_time;
                e.ttl_ms = v.ttl_ms;
                e.owner = v.owner;
                tn_resp_entry(&b, &e);
            }
        }
    }
    rc = tn_resp_finish(&b);
    if (rc != TN_SUCCESS && failed == n) {
        /* Cannot report the outcome: apply nothing. */
        out->len = at;
        tn_colls_txn_rollback(colls);
        colls_open = 0;
        int rrc = tn_tree_txn_rollback(tree);
        tree_open = 0;
        if (rrc != TN_SUCCESS) rc = TN_INTERNAL;
        goto done;
    }
done:
    if (colls_open) tn_colls_txn_commit(colls);
    if (tree_open) tn_tree_txn_commit(tree);
    if (blobs)
        for (size_t i = 0; i < n; i++) tn_wr_free(&blobs[i]);
    free(blobs);
    free(codes);
    return rc;
}
