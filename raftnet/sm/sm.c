/* sm.c — the state machine: command decoding, conditions, dispatch to the tree, responses (see sm.h). */
#include "sm.h"

#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "coll.h"
#include "session.h"
#include "snapshot.h"

#define SM_IMAGE_MAGIC 0x4d53544eu /* "TNSM" little-endian */
#define SM_IMAGE_VERSION 2 /* 2: session table before the tree; 1 (no sessions) still loads */
#define SM_SCAN_PAGE_MAX 100000u   /* upper bound on entries one LIST/SCAN op returns */

struct tn_sm {
    tn_tree *tree;
    tn_colls *colls;
    tn_sessions *sessions;
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
    sm->sessions = tn_sessions_new(0);
    if (!sm->tree || !sm->colls || !sm->sessions) {
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
    tn_sessions_free(sm->sessions);
    free(sm);
}

uint64_t tn_sm_applied(const tn_sm *sm) { return sm->applied; }

const tn_tree *tn_sm_tree(const tn_sm *sm) { return sm->tree; }

size_t tn_sm_session_count(const tn_sm *sm) { return tn_sessions_count(sm->sessions); }

static void view_to_entry(const tn_tree_node_view *v, tn_entry *e, int with_value)
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

static void emit_node(tn_resp_builder *b, const tn_tree_node_view *v)
{
    tn_entry e;
    view_to_entry(v, &e, 1);
    tn_resp_entry(b, &e);
}

static int apply_op(tn_sm *sm, const tn_wctx *ctx, const tn_op *op, tn_wr *blob)
{
    if (op->opcode == TN_OP_COLL_WRITE)
        return tn_colls_write(sm->colls, ctx, op->key, op->key_len, op->value, op->value_len, blob);
    return tn_tree_apply_op(sm->tree, ctx, op);
}

static int apply_request(tn_sm *sm, uint64_t index, const tn_cmd *cmd_p, const tn_req *req_p, tn_wr *out);

int tn_sm_apply(tn_sm *sm, uint64_t index, const void *cmd_bytes, size_t len, tn_wr *out)
{
    tn_cmd cmd;
    tn_req req;
    int rc;

    if (index <= sm->applied) return TN_INTERNAL;
    sm->applied = index;
    rc = tn_cmd_decode(cmd_bytes, len, &cmd);
    if (rc != TN_SUCCESS) return rc;
    rc = tn_req_decode(cmd.req, cmd.req_len, &req);
    if (rc != TN_SUCCESS) return rc;
    tn_sessions_touch(sm->sessions, cmd.time_ms);
    if (req.client_id && req.seq) {
        const uint8_t *cached;
        size_t cached_len;
        int verdict = tn_sessions_check(sm->sessions, req.client_id, req.seq, &cached, &cached_len);
        if (verdict != TN_SESSION_NEW) {
            uint64_t req_id = req.req_id;
            tn_req_clear(&req);
            if (verdict == TN_SESSION_RETRY) return tn_resp_rewrite(cached, cached_len, req_id, NULL, out);
            return tn_resp_error(out, req_id, TN_SESSION_EXPIRED, NULL,
                                 "duplicate of a write older than the session's last one: not applied");
        }
        size_t at = out->len;
        rc = apply_request(sm, index, &cmd, &req, out);
        if (rc == TN_SUCCESS && !out->oom)
            rc = tn_sessions_record(sm->sessions, req.client_id, req.seq, cmd.time_ms, out->p + at, out->len - at);
        tn_req_clear(&req);
        return rc;
    }
    rc = apply_request(sm, index, &cmd, &req, out);
    tn_req_clear(&req);
    return rc;
}

/* Applies a decoded request (no session check); appends the response. */
static int apply_request(tn_sm *sm, uint64_t index, const tn_cmd *cmd_p, const tn_req *req_p, tn_wr *out)
{
    const tn_cmd cmd = *cmd_p;
    const tn_req req = *req_p;
    tn_resp_builder b;
    int rc;
    if (req.flags & TN_REQF_ATOMIC) {
        /* all or nothing, tree and collections alike (raftnet/sm/atomic.h); INTERNAL = a rollback failed and
         * this state machine must not be used any more */
        tn_wctx actx = {.index = index, .time_ms = cmd.time_ms, .owner = cmd.owner};
        return tn_atomic_apply(sm->tree, sm->colls, &actx, &req, out);
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
            tn_tree_node_view v;
            if (tn_tree_get(sm->tree, op->key, op->key_len, &v) == TN_SUCCESS) emit_node(&b, &v);
        }
    }
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

static int visit_emit(void *arg, const tn_tree_node_view *v)
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

static int visit_scan(void *arg, const tn_tree_node_view *v)
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
    tn_tree_node_view v;
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

/* A length-prefixed section of the image: a u64 placeholder patched with the section's length. */
static size_t section_begin(tn_wr *w)
{
    size_t at = w->len;
    tn_wr_u64(w, 0);
    return at;
}

static int section_end(tn_wr *w, size_t at)
{
    if (w->oom) return TN_NOMEM;
    uint64_t len = w->len - at - 8;
    tn_wr_patch_u32(w, at, (uint32_t)len);
    tn_wr_patch_u32(w, at + 4, (uint32_t)(len >> 32));
    return TN_SUCCESS;
}

int tn_sm_snapshot_save(const tn_sm *sm, tn_wr *out)
{
    tn_wr raw;
    int rc;
    tn_wr_init(&raw);
    tn_wr_u32(&raw, SM_IMAGE_MAGIC);
    tn_wr_u8(&raw, SM_IMAGE_VERSION);
    tn_wr_varint(&raw, sm->applied);
    size_t at = section_begin(&raw);
    rc = tn_sessions_serialize(sm->sessions, &raw);
    if (rc != TN_SUCCESS || (rc = section_end(&raw, at)) != TN_SUCCESS) goto done;
    at = section_begin(&raw);
    rc = tn_tree_serialize(sm->tree, &raw);
    if (rc != TN_SUCCESS || (rc = section_end(&raw, at)) != TN_SUCCESS) goto done;
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
    tn_sessions *sessions = NULL;
    int rc = tn_snapshot_unpack(img, len, &raw, &raw_len);
    if (rc != TN_SUCCESS) return rc;

    tn_rd r;
    tn_rd_init(&r, raw, raw_len);
    uint32_t magic = tn_rd_u32(&r);
    uint8_t version = tn_rd_u8(&r);
    uint64_t applied = tn_rd_varint(&r);
    uint64_t sess_len = version >= 2 ? tn_rd_u64(&r) : 0;
    const uint8_t *sess_img = sess_len <= tn_rd_left(&r) ? tn_rd_raw(&r, (size_t)sess_len) : NULL;
    uint64_t tree_len = tn_rd_u64(&r);
    if (r.err || magic != SM_IMAGE_MAGIC || version < 1 || version > SM_IMAGE_VERSION || tree_len > tn_rd_left(&r) ||
        (version >= 2 && !sess_img)) {
        rc = TN_CLIENT_REQ_ERROR;
        goto fail;
    }
    tree = tn_tree_new(&sm->limits);
    colls = tn_colls_new();
    sessions = tn_sessions_new(0);
    if (!tree || !colls || !sessions) { rc = TN_NOMEM; goto fail; }
    if (version >= 2) {
        rc = tn_sessions_deserialize(sessions, sess_img, (size_t)sess_len);
        if (rc != TN_SUCCESS) goto fail;
    }
    rc = tn_tree_deserialize(tree, raw + r.off, (size_t)tree_len);
    if (rc != TN_SUCCESS) goto fail;
    rc = tn_colls_deserialize(colls, raw + r.off + tree_len, raw_len - r.off - (size_t)tree_len);
    if (rc != TN_SUCCESS) goto fail;
    tn_tree_free(sm->tree);
    tn_colls_free(sm->colls);
    sm->tree = tree;
    sm->colls = colls;
    tn_sessions_free(sm->sessions);
    sm->sessions = sessions;
    sm->applied = applied;
    free(raw);
    return TN_SUCCESS;
fail:
    tn_tree_free(tree);
    tn_colls_free(colls);
    tn_sessions_free(sessions);
    free(raw);
    return rc;
}

typedef struct due_ops {
    tn_op *ops;
    size_t n, cap;
    int oom;
} due_ops;

static int collect_due(void *arg, const tn_tree_node_view *v)
{
    due_ops *d = arg;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        tn_op *ops = realloc(d->ops, cap * sizeof *ops);
        if (!ops) { d->oom = 1; return 1; }
        d->ops = ops;
        d->cap = cap;
    }
    /* The key points into the tree: valid while the caller holds the lock, and copied by the encoder. */
    tn_op op = {.opcode = TN_OP_KV_EXPIRE, .key = v->key, .key_len = v->key_len, .expect_rev = v->create_rev};
    d->ops[d->n++] = op;
    return 0;
}

int tn_sm_expiry_request(const tn_sm *sm, int64_t now_ms, size_t limit, tn_wr *out)
{
    due_ops d = {0};
    int rc;
    tn_tree_due(sm->tree, now_ms, limit, collect_due, &d);
    if (d.oom) {
        rc = TN_NOMEM;
    } else if (d.n == 0) {
        rc = TN_NOT_FOUND;
    } else {
        tn_req req = {.n_ops = d.n, .ops = d.ops};
        rc = tn_req_encode(&req, out);
    }
    free(d.ops);
    return rc;
}
