/* sm.c — the state machine: command decoding, conditions, dispatch to the tree, responses (see sm.h). */
#include "sm.h"

#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "snapshot.h"

#define SM_IMAGE_MAGIC 0x4d53544eu /* "TNSM" little-endian */
#define SM_IMAGE_VERSION 1
#define SM_SCAN_PAGE_MAX 100000u   /* upper bound on entries one LIST/SCAN op returns */

struct tn_sm {
    tn_tree *tree;
    tn_colls *colls;
    tn_tree_limits limits;
    uint64_t applied;
};

tn_sm *tn_sm_new(const tn_tree_limits *limits)
{
    tn_sm *sm = calloc(1, sizeof *sm);
    if (!sm) return NULL;
    if (limits) sm->limits = *limits;
    sm->tree = tn_tree_new(limits);
    sm->colls = tn_colls_new();
    if (!sm->tree || !sm->colls) {
        tn_sm_free(sm);
        return NULL;
    }
    return sm;
}

void tn_sm_free(tn_sm *sm)
{
    if (!sm) return;
    tn_tree_free(sm->tree);
    tn_colls_free(sm->colls);
    free(sm);
}

uint64_t tn_sm_applied(const tn_sm *sm) { return sm->applied; }

const tn_tree *tn_sm_tree(const tn_sm *sm) { return sm->tree; }

static void view_to_entry(const tn_node_view *v, tn_entry *e, int with_value)
{
    memset(e, 0, sizeof *e);
    e->key = v->key;
    e->key_len = v->key_len;
    e->is_dir = v->is_dir;
    if (with_value && !v->is_dir) {
        e->value = v->value;
        e->value_len = v->value_len;
    }
    e->create_rev = v->create_rev;
    e->update_rev = v->update_rev;
    e->create_time = v->create_time;
    e->update_time = v->update_time;
    e->ttl_ms = v->ttl_ms;
    e->owner = v->owner;
}

static void emit_node(tn_resp_builder *b, const tn_node_view *v)
{
    tn_entry e;
    view_to_entry(v, &e, 1);
    tn_resp_entry(b, &e);
}

/* Checks an op's condition against the current tree. SUCCESS when it holds. */
static int check_cond(const tn_tree *tree, const tn_op *op)
{
    tn_node_view v;
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

static int apply_op(tn_sm *sm, const tn_wctx *ctx, const tn_op *op, tn_wr *blob)
{
    if (op->opcode == TN_OP_COLL_WRITE)
        return tn_colls_write(sm->colls, ctx, op->key, op->key_len, op->value, op->value_len, blob);
    int rc = check_cond(sm->tree, op);
    if (rc != TN_SUCCESS) return rc;
    switch (op->opcode) {
    case TN_OP_KV_PUT:
        return tn_tree_put(sm->tree, ctx, op->key, op->key_len, op->value, op->value_len);
    case TN_OP_KV_MKDIR:
        return tn_tree_mkdir(sm->tree, ctx, op->key, op->key_len);
    case TN_OP_KV_REMOVE:
        return tn_tree_remove(sm->tree, ctx, op->key, op->key_len);
    case TN_OP_KV_CAS:
        return tn_tree_cas(sm->tree, ctx, op->key, op->key_len, op->expect, op->expect_len, op->value,
                           op->value_len);
    case TN_OP_KV_PUT_TEMP:
        return tn_tree_put_temp(sm->tree, ctx, op->key, op->key_len, op->value, op->value_len, op->ttl_ms);
    case TN_OP_KV_MKDIR_TEMP:
        return tn_tree_mkdir_temp(sm->tree, ctx, op->key, op->key_len, op->ttl_ms);
    case TN_OP_KV_UPDATE_TTL:
        return tn_tree_update_ttl(sm->tree, ctx, op->key, op->key_len, op->ttl_ms);
    case TN_OP_KV_EXPIRE:
        return tn_tree_expire(sm->tree, ctx, op->key, op->key_len, op->expect_rev);
    default:
        return TN_CLIENT_REQ_ERROR;
    }
}

/* All-or-nothing request (a transaction's commit): every op applies or none does. Collections have an
 * undo log (tn_colls_txn_*); the tree has none yet, so an atomic request may only hold collection writes
 * for now — anything else is refused as a whole, before anything is applied. On failure the failing op
 * reports its own code and blob (naming the row), every other op TXN_CONFLICT. */
static int apply_atomic(tn_sm *sm, const tn_wctx *ctx, const tn_req *req, tn_wr *out)
{
    tn_resp_builder b;
    tn_wr *blobs = NULL;
    int *codes = NULL;
    size_t failed = req->n_ops;
    int rc;

    for (size_t i = 0; i < req->n_ops; i++)
        if (req->ops[i].opcode != TN_OP_COLL_WRITE)
            return tn_resp_error(out, req->req_id, TN_BAD_REQUEST, NULL,
                                 "atomic requests may hold only collection writes in this version");
    blobs = calloc(req->n_ops, sizeof *blobs);
    codes = calloc(req->n_ops, sizeof *codes);
    if (!blobs || !codes) { rc = TN_NOMEM; goto done; }
    rc = tn_colls_txn_begin(sm->colls);
    if (rc != TN_SUCCESS) goto done;
    for (size_t i = 0; i < req->n_ops && failed == req->n_ops; i++) {
        const tn_op *op = &req->ops[i];
        codes[i] = tn_colls_write(sm->colls, ctx, op->key, op->key_len, op->value, op->value_len, &blobs[i]);
        if (!tn_code_ok(codes[i]) || blobs[i].oom) failed = i;
    }
    if (failed < req->n_ops) tn_colls_txn_rollback(sm->colls);
    else tn_colls_txn_commit(sm->colls);

    tn_resp_begin(&b, out, req->req_id, TN_SUCCESS, ctx->index, NULL, NULL);
    for (size_t i = 0; i < req->n_ops; i++) {
        int failed_here = failed < req->n_ops;
        tn_resp_result_begin(&b, !failed_here ? codes[i] : i == failed ? codes[i] : TN_TXN_CONFLICT);
        if (!failed_here || i == failed) tn_resp_blob(&b, blobs[i].p, blobs[i].len);
    }
    rc = tn_resp_finish(&b);
done:
    if (blobs)
        for (size_t i = 0; i < req->n_ops; i++) tn_wr_free(&blobs[i]);
    free(blobs);
    free(codes);
    return rc;
}

int tn_sm_apply(tn_sm *sm, uint64_t index, const void *cmd_bytes, size_t len, tn_wr *out)
{
    tn_cmd cmd;
    tn_req req;
    tn_resp_builder b;
    int rc;

    if (index <= sm->applied) return TN_INTERNAL;
    sm->applied = index;
    rc = tn_cmd_decode(cmd_bytes, len, &cmd);
    if (rc != TN_SUCCESS) return rc;
    rc = tn_req_decode(cmd.req, cmd.req_len, &req);
    if (rc != TN_SUCCESS) return rc;
    if (req.flags & TN_REQF_ATOMIC && req.n_ops > 1) {
        tn_wctx actx = {.index = index, .time_ms = cmd.time_ms, .owner = cmd.owner};
        rc = apply_atomic(sm, &actx, &req, out);
        tn_req_clear(&req);
        return rc;
    }

    tn_wctx ctx = {.index = index, .time_ms = cmd.time_ms, .owner = cmd.owner};
    /* A result's blob is copied into the response only when the next result begins, so op i's blob must
     * survive op i+1's apply: alternate two buffers. */
    tn_wr blobs[2];
    tn_wr_init(&blobs[0]);
    tn_wr_init(&blobs[1]);
    tn_resp_begin(&b, out, req.req_id, TN_SUCCESS, index, NULL, NULL);
    for (size_t i = 0; i < req.n_ops; i++) {
        const tn_op *op = &req.ops[i];
        if (!tn_op_is_write(op->opcode)) {
            tn_resp_result_begin(&b, TN_BAD_REQUEST);
            continue;
        }
        tn_wr *blob = &blobs[i & 1];
        blob->len = 0;
        int orc = apply_op(sm, &ctx, op, blob);
        tn_resp_result_begin(&b, orc);
        if (op->opcode == TN_OP_COLL_WRITE) {
            tn_resp_blob(&b, blob->p, blob->len);
        } else if (tn_code_ok(orc) && op->opcode != TN_OP_KV_REMOVE && op->opcode != TN_OP_KV_EXPIRE) {
            tn_node_view v;
            if (tn_tree_get(sm->tree, op->key, op->key_len, &v) == TN_SUCCESS) emit_node(&b, &v);
        }
    }
    tn_req_clear(&req);
    rc = tn_resp_finish(&b); /* copies the last blob: free it only after */
    tn_wr_free(&blobs[0]);
    tn_wr_free(&blobs[1]);
    return rc;
}

typedef struct visit_state {
    tn_resp_builder *b;
    int with_value;
    size_t emitted;
} visit_state;

static int visit_emit(void *arg, const tn_node_view *v)
{
    visit_state *st = arg;
    tn_entry e;
    view_to_entry(v, &e, st->with_value);
    tn_resp_entry(st->b, &e);
    st->emitted++;
    return st->b->w->oom;
}

/* Pre-order walk that resumes strictly after `after` and stops after `limit` entries. */
typedef struct scan_state {
    visit_state vs;
    const uint8_t *after;
    size_t after_len;
    int passed; /* 1 once the walk is past `after` */
    size_t limit;
} scan_state;

static int visit_scan(void *arg, const tn_node_view *v)
{
    scan_state *st = arg;
    if (!st->passed) {
        if (v->key_len == st->after_len && memcmp(v->key, st->after, v->key_len) == 0) st->passed = 1;
        return 0;
    }
    if (st->limit && st->vs.emitted >= st->limit) return 1;
    return visit_emit(&st->vs, v);
}

static void read_op(const tn_sm *sm, tn_resp_builder *b, const tn_op *op, tn_wr *blob)
{
    tn_node_view v;
    int rc;
    size_t limit = op->limit && op->limit < SM_SCAN_PAGE_MAX ? (size_t)op->limit : SM_SCAN_PAGE_MAX;

    switch (op->opcode) {
    case TN_OP_KV_GET:
        rc = tn_tree_get(sm->tree, op->key, op->key_len, &v);
        tn_resp_result_begin(b, rc);
        if (rc == TN_SUCCESS) emit_node(b, &v);
        return;
    case TN_OP_KV_LIST: {
        visit_state st = {.b = b, .with_value = 1};
        /* The result code is only known after the walk; entries are emitted as they come, so the code is
         * decided first from the directory lookup. */
        rc = op->key_len == 0 ? TN_SUCCESS : tn_tree_get(sm->tree, op->key, op->key_len, &v);
        if (rc == TN_SUCCESS && op->key_len && !v.is_dir) rc = TN_PARENT_NOT_DIR;
        tn_resp_result_begin(b, rc);
        if (rc == TN_SUCCESS)
            tn_tree_list(sm->tree, op->key, op->key_len, op->after, op->after_len, limit, visit_emit, &st);
        return;
    }
    case TN_OP_KV_SCAN: {
        scan_state st = {.vs = {.b = b, .with_value = 1}, .after = op->after, .after_len = op->after_len,
                         .passed = op->after == NULL, .limit = limit};
        tn_resp_result_begin(b, TN_SUCCESS);
        tn_tree_walk(sm->tree, visit_scan, &st);
        return;
    }
    case TN_OP_COLL_READ:
        blob->len = 0;
        rc = tn_colls_read(sm->colls, sm->applied, op->key, op->key_len, op->value, op->value_len, blob, NULL);
        tn_resp_result_begin(b, rc);
        tn_resp_blob(b, blob->p, blob->len);
        return;
    default:
        tn_resp_result_begin(b, TN_BAD_REQUEST);
        return;
    }
}

int tn_sm_read(const tn_sm *sm, const tn_req *req, tn_wr *out)
{
    tn_resp_builder b;
    if (tn_req_is_write(req)) return tn_resp_error(out, req->req_id, TN_BAD_REQUEST, NULL, "write in a read request");
    tn_wr blobs[2]; /* alternating, see tn_sm_apply */
    tn_wr_init(&blobs[0]);
    tn_wr_init(&blobs[1]);
    tn_resp_begin(&b, out, req->req_id, TN_SUCCESS, sm->applied, NULL, NULL);
    for (size_t i = 0; i < req->n_ops; i++) read_op(sm, &b, &req->ops[i], &blobs[i & 1]);
    int rc = tn_resp_finish(&b);
    tn_wr_free(&blobs[0]);
    tn_wr_free(&blobs[1]);
    return rc;
}

int tn_sm_snapshot_save(const tn_sm *sm, tn_wr *out)
{
    tn_wr raw;
    int rc;
    tn_wr_init(&raw);
    tn_wr_u32(&raw, SM_IMAGE_MAGIC);
    tn_wr_u8(&raw, SM_IMAGE_VERSION);
    tn_wr_varint(&raw, sm->applied);
    size_t tree_at = raw.len;
    tn_wr_u64(&raw, 0); /* tree image length, patched below */
    rc = tn_tree_serialize(sm->tree, &raw);
    if (rc != TN_SUCCESS) goto done;
    if (raw.oom) { rc = TN_NOMEM; goto done; }
    uint64_t tree_len = raw.len - tree_at - 8;
    tn_wr_patch_u32(&raw, tree_at, (uint32_t)tree_len);
    tn_wr_patch_u32(&raw, tree_at + 4, (uint32_t)(tree_len >> 32));
    rc = tn_colls_serialize(sm->colls, &raw); /* the rest of the image */
    if (rc != TN_SUCCESS) goto done;
    if (raw.oom) { rc = TN_NOMEM; goto done; }
    rc = tn_snapshot_pack(raw.p, raw.len, out);
done:
    tn_wr_free(&raw);
    return rc;
}

int tn_sm_snapshot_load(tn_sm *sm, const void *img, size_t len)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    tn_tree *tree = NULL;
    tn_colls *colls = NULL;
    int rc = tn_snapshot_unpack(img, len, &raw, &raw_len);
    if (rc != TN_SUCCESS) return rc;

    tn_rd r;
    tn_rd_init(&r, raw, raw_len);
    uint32_t magic = tn_rd_u32(&r);
    uint8_t version = tn_rd_u8(&r);
    uint64_t applied = tn_rd_varint(&r);
    uint64_t tree_len = tn_rd_u64(&r);
    if (r.err || magic != SM_IMAGE_MAGIC || version != SM_IMAGE_VERSION || tree_len > tn_rd_left(&r)) {
        rc = TN_CLIENT_REQ_ERROR;
        goto fail;
    }
    tree = tn_tree_new(&sm->limits);
    colls = tn_colls_new();
    if (!tree || !colls) { rc = TN_NOMEM; goto fail; }
    rc = tn_tree_deserialize(tree, raw + r.off, (size_t)tree_len);
    if (rc != TN_SUCCESS) goto fail;
    rc = tn_colls_deserialize(colls, raw + r.off + tree_len, raw_len - r.off - (size_t)tree_len);
    if (rc != TN_SUCCESS) goto fail;
    tn_tree_free(sm->tree);
    tn_colls_free(sm->colls);
    sm->tree = tree;
    sm->colls = colls;
    sm->applied = applied;
    free(raw);
    return TN_SUCCESS;
fail:
    tn_tree_free(tree);
    tn_colls_free(colls);
    free(raw);
    return rc;
}
