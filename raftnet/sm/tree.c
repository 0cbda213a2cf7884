/* tree.c — the DtKV hierarchical store (contract: tree.h): nodes (encoding, construction, linking),
 * life cycle, key rules, writes and reads. The layout and the file map are in tree_int.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tree_int.h"

#include "clock.h"

#define LIMIT_CAP ((size_t)1 << 30)

/* ---- node decoding ------------------------------------------------------------------------------ */

void tn_tree_node_decode(const tn_tree_node *n, node_info *ni)
{
    if (is_dir(n)) {
        const tn_dir *d = dir_of(n);
        ni->key = n->data + sizeof(tn_dir);
        ni->key_len = d->key_len;
        ni->value = NULL;
        ni->value_len = 0;
        ni->create_rev = d->create_rev;
        ni->update_rev = d->update_rev;
        ni->create_time = d->create_time;
        ni->update_time = d->update_time;
        ni->temp = d->temp;
        return;
    }
    ni->temp = value_temp(n);
    const uint8_t *base = n->data + (ni->temp ? sizeof(tn_temp *) : 0);
    const uint8_t *p = base;
    ni->key_len = (size_t)get_varint(&p);
    ni->value_len = (size_t)get_varint(&p);
    ni->create_rev = get_varint(&p);
    ni->create_time = unzz(get_varint(&p));
    if (n->flags & NF_SAME) {
        ni->update_rev = ni->create_rev;
        ni->update_time = ni->create_time;
    } else {
        ni->update_rev = ni->create_rev + get_varint(&p);
        ni->update_time = (int64_t)((uint64_t)ni->create_time + (uint64_t)unzz(get_varint(&p)));
    }
    ni->key = base + n->meta_len;
    ni->value = ni->key + ni->key_len;
}

static void node_view(const tn_tree_node *n, tn_tree_node_view *v)
{
    static const uint8_t empty_key[1] = {0};
    node_info ni;
    tn_tree_node_decode(n, &ni);
    v->key = ni.key_len ? ni.key : empty_key;
    v->key_len = ni.key_len;
    v->value = ni.value;
    v->value_len = ni.value_len;
    v->is_dir = is_dir(n) ? 1 : 0;
    v->create_rev = ni.create_rev;
    v->update_rev = ni.update_rev;
    v->create_time = ni.create_time;
    v->update_time = ni.update_time;
    v->owner = ni.temp ? ni.temp->owner : 0;
    v->ttl_ms = ni.temp ? ni.temp->ttl_ms : 0;
    v->expire_at = ni.temp ? ni.temp->expire_at : 0;
}

/* ---- node construction -------------------------------------------------------------------------- */

static void node_init_header(tn_tree_node *n, uint32_t hash, uint8_t flags, const uint8_t *key, size_t klen)
{
    size_t sl = seg_len_of(key, klen);
    n->hash = hash;
    n->flags = flags;
    n->meta_len = 0;
    n->seg_len = sl < SEG_LEN_FAR ? (uint16_t)sl : (uint16_t)SEG_LEN_FAR;
}

/* Encodes a value node's varint meta into b (>= 60 bytes); *same says whether the update fields
 * equal the create fields (and were left out). Returns the length. */
static size_t encode_meta(uint8_t *b, size_t klen, size_t vlen, uint64_t crev, int64_t ctime, uint64_t urev,
                          int64_t utime, int *same)
{
    size_t m = 0;
    *same = crev == urev && ctime == utime;
    m += tn_put_varint(b + m, klen);
    m += tn_put_varint(b + m, vlen);
    m += tn_put_varint(b + m, crev);
    m += tn_put_varint(b + m, zz(ctime));
    if (!*same) {
        m += tn_put_varint(b + m, urev - crev);
        m += tn_put_varint(b + m, zz((int64_t)((uint64_t)utime - (uint64_t)ctime)));
    }
    return m;
}

tn_tree_node *tn_tree_build_value(tn_tree *t, uint32_t hash, const uint8_t *key, size_t klen,
                                  const uint8_t *val, size_t vlen, uint64_t crev, int64_t ctime, uint64_t urev,
                                  int64_t utime, tn_temp *temp)
{
    uint8_t meta[60];
    int same;
    size_t m = encode_meta(meta, klen, vlen, crev, ctime, urev, utime, &same);
    size_t tsz = temp ? sizeof(tn_temp *) : 0;
    tn_tree_node *n = tmalloc(t, sizeof(tn_tree_node) + tsz + m + klen + vlen);
    if (!n) return NULL;
    node_init_header(n, hash, (uint8_t)((temp ? NF_TEMP : 0) | (same ? NF_SAME : 0)), key, klen);
    n->meta_len = (uint8_t)m;
    uint8_t *p = n->data;
    if (temp) {
        memcpy(p, &temp, sizeof temp);
        p += tsz;
    }
    memcpy(p, meta, m);
    p += m;
    if (klen) memcpy(p, key, klen);
    memcpy(p + klen, val, vlen);
    return n;
}

/* Rewrites value node n (decoded in ni) in place with a new value and update fields, when the new
 * encoding fits its allocation without wasting much of it and `val` does not point into the node.
 * Returns 1 if done (nothing else to fix: same address, key and order), 0 if the caller must rebuild. */
static int rewrite_in_place(tn_tree_node *n, const node_info *ni, const uint8_t *val, size_t vlen,
                            const tn_wctx *ctx)
{
    uint8_t meta[60];
    int same;
    size_t m = encode_meta(meta, ni->key_len, vlen, ni->create_rev, ni->create_time, ctx->index, ctx->time_ms,
                           &same);
    size_t tsz = ni->temp ? sizeof(tn_temp *) : 0;
    size_t need = sizeof(tn_tree_node) + tsz + m + ni->key_len + vlen, have = malloc_usable_size(n);
    uintptr_t v = (uintptr_t)val, lo = (uintptr_t)n;
    if (need > have || have - need > 32 || (v >= lo && v < lo + have)) return 0;
    uint8_t *p = n->data + tsz;
    memmove(p + m, ni->key, ni->key_len); /* the key shifts when the meta changes length */
    memcpy(p, meta, m);
    memcpy(p + m + ni->key_len, val, vlen);
    n->meta_len = (uint8_t)m;
    n->flags = (uint8_t)((n->flags & ~NF_SAME) | (same ? NF_SAME : 0));
    return 1;
}

tn_tree_node *tn_tree_build_dir(tn_tree *t, uint32_t hash, const uint8_t *key, size_t klen, uint64_t crev,
                                int64_t ctime, uint64_t urev, int64_t utime, tn_temp *temp)
{
    tn_tree_node *n = tmalloc(t, sizeof(tn_tree_node) + sizeof(tn_dir) + klen);
    if (!n) return NULL;
    node_init_header(n, hash, (uint8_t)(NF_DIR | (temp ? NF_TEMP : 0)), key, klen);
    tn_dir *d = dir_of(n);
    memset(d, 0, sizeof *d);
    d->temp = temp;
    d->create_rev = crev;
    d->update_rev = urev;
    d->create_time = ctime;
    d->update_time = utime;
    d->key_len = (uint32_t)klen;
    if (klen) memcpy(n->data + sizeof(tn_dir), key, klen);
    return n;
}

tn_temp *tn_tree_new_temp(tn_tree *t, uint64_t owner, int64_t ttl, int64_t expire_at)
{
    tn_temp *tp = tmalloc(t, sizeof *tp);
    if (!tp) return NULL;
    memset(tp, 0, sizeof *tp);
    tp->owner = owner;
    tp->ttl_ms = ttl;
    tp->expire_at = expire_at;
    return tp;
}

static void free_node(tn_tree *t, tn_tree_node *n)
{
    tfree(t, node_temp(n));
    tfree(t, n);
}

/* Links a freshly built node under dir `parent`. TN_SUCCESS, or TN_NOMEM with nothing changed (the
 * hash table may have grown, which is not a change of state). */
int tn_tree_link_new(tn_tree *t, tn_tree_node *parent, tn_tree_node *n)
{
    if (tn_tree_tab_reserve(t, 1) || tn_tree_cix_insert(t, &dir_of(parent)->children, n)) return TN_NOMEM;
    tn_tree_tab_put(t->slots, t->tags, t->mask, n);
    t->used++;
    if (is_dir(n)) dir_of(n)->parent = parent;
    tn_temp *tp = node_temp(n);
    if (tp) {
        tp->node = n;
        tn_tree_tt_insert(t, tp);
    }
    t->count++;
    return TN_SUCCESS;
}

/* Swaps a rebuilt value node in for `old` (same key) and frees `old`. The temp record, if any, is
 * shared and must already be referenced by `nw`; the caller handles its place in the expiry treap. */
static void replace_value(tn_tree *t, tn_tree_node *parent, tn_tree_node *old, tn_tree_node *nw)
{
    t->slots[tn_tree_tab_index_of(t, old)] = nw;
    *tn_tree_cix_slot(dir_of(parent)->children, old) = nw;
    tn_temp *tp = value_temp(nw);
    if (tp) tp->node = nw;
    tfree(t, old); /* not free_node: the temp record lives on */
}

static void touch_ancestors(tn_tree_node *dir, const tn_wctx *ctx)
{
    while (dir) {
        tn_dir *d = dir_of(dir);
        d->update_rev = ctx->index;
        d->update_time = ctx->time_ms;
        dir = d->parent;
    }
}

static void drop_node(tn_tree *t, tn_tree_node *n, int maintain)
{
    if (maintain) {
        tn_tree_tab_delete(t, n);
        tn_temp *tp = node_temp(n);
        if (tp) tn_tree_tt_remove(t, tp);
    }
    free_node(t, n);
}

/* Frees n (already unlinked from its parent's index) and its whole subtree; with `maintain`, also
 * removes each node from the table and the expiry treap. Allocates nothing: directories waiting to be
 * emptied are chained through their (no longer needed) parent pointers. */
size_t tn_tree_destroy(tn_tree *t, tn_tree_node *n, int maintain)
{
    if (!is_dir(n)) {
        drop_node(t, n, maintain);
        return 1;
    }
    size_t freed = 0;
    dir_of(n)->parent = NULL;
    tn_tree_node *work = n;
    while (work) {
        tn_tree_node *d = work;
        work = dir_of(d)->parent;
        for (cix_leaf *lf = tn_tree_cix_leftmost(dir_of(d)->children); lf; lf = lf->next) {
            for (int i = 0; i < lf->h.n; i++) {
                tn_tree_node *c = lf->node[i];
                if (is_dir(c)) {
                    dir_of(c)->parent = work;
                    work = c;
                } else {
                    drop_node(t, c, maintain);
                    freed++;
                }
            }
        }
        tn_tree_cix_free(t, dir_of(d)->children);
        dir_of(d)->children = NULL;
        if (d != t->root) drop_node(t, d, maintain);
        freed++;
    }
    return freed;
}
/* ---- life cycle --------------------------------------------------------------------------------- */

static uint64_t fresh_seed(void)
{
    return mix64(tn_random_u64() ^ 0x9e3779b97f4a7c15ull, 0xd6e8feb86659fd93ull) | 1;
}

tn_tree *tn_tree_new(const tn_tree_limits *limits)
{
    tn_tree *t = malloc(sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->mem = malloc_usable_size(t);
    if (limits) t->lim = *limits;
    if (!t->lim.max_key) t->lim.max_key = TN_TREE_MAX_KEY_DEFAULT;
    if (!t->lim.max_value) t->lim.max_value = TN_TREE_MAX_VALUE_DEFAULT;
    if (t->lim.max_ttl_ms <= 0) t->lim.max_ttl_ms = TN_TREE_MAX_TTL_MS_DEFAULT;
    if (t->lim.max_key > LIMIT_CAP) t->lim.max_key = LIMIT_CAP;
    if (t->lim.max_value > LIMIT_CAP) t->lim.max_value = LIMIT_CAP;
    t->seed = fresh_seed();
    size_t cap = 16;
    t->slots = tmalloc(t, cap * sizeof *t->slots);
    t->tags = tmalloc(t, cap);
    if (!t->slots || !t->tags) goto fail;
    memset(t->tags, 0, cap);
    t->mask = cap - 1;
    t->root = tn_tree_build_dir(t, 0, NULL, 0, 0, 0, 0, 0, NULL);
    if (!t->root) goto fail;
    return t;
fail:
    free(t->slots);
    free(t->tags);
    free(t);
    return NULL;
}

void tn_tree_free(tn_tree *t)
{
    if (!t) return;
    tn_tree_undo_free(t->undo);
    tn_tree_destroy(t, t->root, 0);
    free(t->root);
    free(t->slots);
    free(t->tags);
    free(t);
}

size_t tn_tree_count(const tn_tree *t) { return t->count; }

size_t tn_tree_memory(const tn_tree *t) { return t->mem; }

/* ---- checks ------------------------------------------------------------------------------------- */

int tn_tree_check_key(const tn_tree *t, const void *key, size_t key_len, int allow_root)
{
    const uint8_t *k = key;
    if (key_len == 0) return allow_root ? TN_SUCCESS : TN_INVALID_KEY;
    if (key_len > t->lim.max_key) return TN_KEY_TOO_LONG;
    if (!k || k[0] == '.' || k[key_len - 1] == '.') return TN_INVALID_KEY;
    if (memmem(k, key_len, "..", 2)) return TN_INVALID_KEY;
    return TN_SUCCESS;
}

static int check_value(const tn_tree *t, const void *v, size_t n)
{
    if (!v || n == 0) return TN_INVALID_VALUE;
    if (n > t->lim.max_value) return TN_VALUE_TOO_LONG;
    return TN_SUCCESS;
}

/* Expiry instant; saturates instead of overflowing for absurd timestamps (ttl > 0 is checked). */
static int64_t expiry_of(const tn_wctx *ctx, int64_t ttl)
{
    return ctx->time_ms > INT64_MAX - ttl ? INT64_MAX : ctx->time_ms + ttl;
}

int tn_tree_check_ttl(const tn_tree *t, int64_t ttl)
{
    return ttl <= 0 || ttl > t->lim.max_ttl_ms ? TN_INVALID_TTL : TN_SUCCESS;
}

/* Parent of a key about to be created: must exist and be a directory. */
static int parent_for_create(const tn_tree *t, const uint8_t *key, size_t len, tn_tree_node **out)
{
    tn_tree_node *p = tn_tree_parent_of(t, key, len);
    if (!p) return TN_PARENT_DIR_NOT_EXISTS;
    if (!is_dir(p)) return TN_PARENT_NOT_DIR;
    *out = p;
    return TN_SUCCESS;
}

/* ---- writes ------------------------------------------------------------------------------------- */

/* Creates a node at a key known to be absent, under a checked parent. */
static int create_node(tn_tree *t, const tn_wctx *ctx, tn_tree_node *parent, uint32_t h, const uint8_t *key,
                       size_t klen, const uint8_t *val, size_t vlen, int dir, int temp, int64_t ttl)
{
    tn_temp *tp = NULL;
    tn_tree_node *n = NULL;
    if (temp && !(tp = tn_tree_new_temp(t, ctx->owner, ttl, expiry_of(ctx, ttl)))) goto fail;
    n = dir ? tn_tree_build_dir(t, h, key, klen, ctx->index, ctx->time_ms, ctx->index, ctx->time_ms, tp)
            : tn_tree_build_value(t, h, key, klen, val, vlen, ctx->index, ctx->time_ms, ctx->index, ctx->time_ms,
                                  tp);
    if (!n || tn_tree_link_new(t, parent, n)) goto fail;
    touch_ancestors(parent, ctx);
    return TN_SUCCESS;
fail:
    if (n) tfree(t, n);
    tfree(t, tp);
    return TN_NOMEM;
}

/* Rebuilds value node `old` with a new value (NULL = keep) and update fields from ctx. */
static int rewrite_value(tn_tree *t, const tn_wctx *ctx, tn_tree_node *old, const uint8_t *val, size_t vlen)
{
    node_info ni;
    tn_tree_node_decode(old, &ni);
    if (!val) {
        val = ni.value;
        vlen = ni.value_len;
    }
    tn_tree_node *parent = tn_tree_parent_of(t, ni.key, ni.key_len);
    if (!rewrite_in_place(old, &ni, val, vlen, ctx)) {
        tn_tree_node *nw = tn_tree_build_value(t, old->hash, ni.key, ni.key_len, val, vlen, ni.create_rev,
                                               ni.create_time, ctx->index, ctx->time_ms, ni.temp);
        if (!nw) return TN_NOMEM;
        replace_value(t, parent, old, nw);
    }
    touch_ancestors(parent, ctx);
    return TN_SUCCESS;
}

/* Sets a temp node's ttl/expiry (re-placing it in the expiry treap) and, for a value, a new value. */
static int retime_temp(tn_tree *t, const tn_wctx *ctx, tn_tree_node *n, const uint8_t *val, size_t vlen,
                       int64_t ttl)
{
    tn_temp *tp = node_temp(n);
    if (is_dir(n)) {
        tn_tree_tt_remove(t, tp);
        tp->ttl_ms = ttl;
        tp->expire_at = expiry_of(ctx, ttl);
        tn_tree_tt_insert(t, tp);
        tn_dir *d = dir_of(n);
        d->update_rev = ctx->index;
        d->update_time = ctx->time_ms;
        touch_ancestors(d->parent, ctx);
        return TN_SUCCESS;
    }
    node_info ni;
    tn_tree_node_decode(n, &ni);
    if (!val) {
        val = ni.value;
        vlen = ni.value_len;
    }
    tn_tree_node *parent = tn_tree_parent_of(t, ni.key, ni.key_len);
    tn_tree_tt_remove(t, tp); /* cannot fail; its place depends on expire_at, which changes below */
    if (!rewrite_in_place(n, &ni, val, vlen, ctx)) {
        tn_tree_node *nw = tn_tree_build_value(t, n->hash, ni.key, ni.key_len, val, vlen, ni.create_rev,
                                               ni.create_time, ctx->index, ctx->time_ms, tp);
        if (!nw) {
            tn_tree_tt_insert(t, tp); /* put it back: nothing changed */
            return TN_NOMEM;
        }
        replace_value(t, parent, n, nw);
    }
    tp->ttl_ms = ttl;
    tp->expire_at = expiry_of(ctx, ttl);
    tn_tree_tt_insert(t, tp);
    touch_ancestors(parent, ctx);
    return TN_SUCCESS;
}

/* Unlinks and frees n with its subtree; returns the number of nodes removed. */
static size_t remove_node(tn_tree *t, const tn_wctx *ctx, tn_tree_node *n, tn_tree_node *parent)
{
    tn_tree_cix_remove(t, &dir_of(parent)->children, n);
    size_t freed = tn_tree_destroy(t, n, 1);
    t->count -= freed;
    touch_ancestors(parent, ctx);
    return freed;
}

int tn_tree_put(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, const void *value,
                size_t value_len)
{
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = tn_tree_undo_note(t, key, key_len))) return rc;
    if ((rc = check_value(t, value, value_len))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = tn_tree_find_h(t, key, key_len, &h);
    if (n) {
        if (is_dir(n)) return TN_DIR_EXISTS;
        if (n->flags & NF_TEMP) return TN_IS_TEMP_NODE;
        rc = rewrite_value(t, ctx, n, value, value_len);
        return rc ? rc : TN_SUCCESS_OVERWRITE;
    }
    tn_tree_node *parent;
    if ((rc = parent_for_create(t, key, key_len, &parent))) return rc;
    if (parent->flags & NF_TEMP) return TN_UNDER_TEMP_DIR;
    return create_node(t, ctx, parent, h, key, key_len, value, value_len, 0, 0, 0);
}

int tn_tree_mkdir(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len)
{
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = tn_tree_undo_note(t, key, key_len))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = tn_tree_find_h(t, key, key_len, &h);
    if (n) return is_dir(n) ? TN_DIR_EXISTS : TN_VALUE_EXISTS;
    tn_tree_node *parent;
    if ((rc = parent_for_create(t, key, key_len, &parent))) return rc;
    if (parent->flags & NF_TEMP) return TN_UNDER_TEMP_DIR;
    return create_node(t, ctx, parent, h, key, key_len, NULL, 0, 1, 0, 0);
}

int tn_tree_remove(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len)
{
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = tn_tree_undo_note(t, key, key_len))) return rc;
    tn_tree_node *n = tn_tree_find(t, key, key_len);
    if (!n) return TN_NOT_FOUND;
    tn_temp *tp = node_temp(n);
    if (tp && tp->owner != ctx->owner) return TN_NOT_OWNER;
    if (is_dir(n) && dir_of(n)->children) return TN_HAS_CHILDREN;
    remove_node(t, ctx, n, tn_tree_parent_of(t, key, key_len));
    return TN_SUCCESS;
}

int tn_tree_cas(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, const void *expect,
                size_t expect_len, const void *new_value, size_t new_len)
{
    int want_absent = !expect || expect_len == 0;
    int del = !new_value || new_len == 0;
    if (want_absent && del) return TN_INVALID_VALUE;
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = tn_tree_undo_note(t, key, key_len))) return rc;
    if (!del && (rc = check_value(t, new_value, new_len))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = tn_tree_find_h(t, key, key_len, &h);
    if (n && is_dir(n)) return TN_DIR_EXISTS;
    if (n && (n->flags & NF_TEMP)) return TN_IS_TEMP_NODE;
    if (want_absent) {
        if (n) return TN_CAS_MISMATCH;
        tn_tree_node *parent;
        if ((rc = parent_for_create(t, key, key_len, &parent))) return rc;
        if (parent->flags & NF_TEMP) return TN_UNDER_TEMP_DIR;
        return create_node(t, ctx, parent, h, key, key_len, new_value, new_len, 0, 0, 0);
    }
    if (!n) return TN_CAS_MISMATCH;
    node_info ni;
    tn_tree_node_decode(n, &ni);
    if (ni.value_len != expect_len || memcmp(ni.value, expect, expect_len) != 0) return TN_CAS_MISMATCH;
    if (del) {
        remove_node(t, ctx, n, tn_tree_parent_of(t, key, key_len));
        return TN_SUCCESS;
    }
    rc = rewrite_value(t, ctx, n, new_value, new_len);
    return rc ? rc : TN_SUCCESS_OVERWRITE;
}

/* Common part of put_temp / mkdir_temp for an absent key. */
static int create_temp(tn_tree *t, const tn_wctx *ctx, uint32_t h, const uint8_t *key, size_t key_len,
                       const void *value, size_t value_len, int dir, int64_t ttl)
{
    tn_tree_node *parent;
    int rc = parent_for_create(t, key, key_len, &parent);
    if (rc) return rc;
    tn_temp *ptp = node_temp(parent);
    if (ptp && ptp->owner != ctx->owner) return TN_NOT_OWNER;
    return create_node(t, ctx, parent, h, key, key_len, value, value_len, dir, 1, ttl);
}

int tn_tree_put_temp(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, const void *value,
                     size_t value_len, int64_t ttl_ms)
{
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = tn_tree_undo_note(t, key, key_len))) return rc;
    if ((rc = check_value(t, value, value_len))) return rc;
    if ((rc = tn_tree_check_ttl(t, ttl_ms))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = tn_tree_find_h(t, key, key_len, &h);
    if (!n) return create_temp(t, ctx, h, key, key_len, value, value_len, 0, ttl_ms);
    tn_temp *tp = node_temp(n);
    if (!tp) return TN_NOT_TEMP_NODE;
    if (tp->owner != ctx->owner) return TN_NOT_OWNER;
    if (is_dir(n)) return TN_DIR_EXISTS;
    rc = retime_temp(t, ctx, n, value, value_len, ttl_ms);
    return rc ? rc : TN_SUCCESS_OVERWRITE;
}

int tn_tree_mkdir_temp(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, int64_t ttl_ms)
{
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = tn_tree_undo_note(t, key, key_len))) return rc;
    if ((rc = tn_tree_check_ttl(t, ttl_ms))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = tn_tree_find_h(t, key, key_len, &h);
    if (!n) return create_temp(t, ctx, h, key, key_len, NULL, 0, 1, ttl_ms);
    tn_temp *tp = node_temp(n);
    if (!tp) return TN_NOT_TEMP_NODE;
    if (tp->owner != ctx->owner) return TN_NOT_OWNER;
    return is_dir(n) ? TN_DIR_EXISTS : TN_VALUE_EXISTS;
}

int tn_tree_update_ttl(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, int64_t ttl_ms)
{
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = tn_tree_undo_note(t, key, key_len))) return rc;
    if ((rc = tn_tree_check_ttl(t, ttl_ms))) return rc;
    tn_tree_node *n = tn_tree_find(t, key, key_len);
    if (!n) return TN_NOT_FOUND;
    tn_temp *tp = node_temp(n);
    if (!tp) return TN_NOT_TEMP_NODE;
    if (tp->owner != ctx->owner) return TN_NOT_OWNER;
    return retime_temp(t, ctx, n, NULL, 0, ttl_ms);
}

int tn_tree_expire(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, uint64_t expect_rev)
{
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = tn_tree_undo_note(t, key, key_len))) return rc;
    tn_tree_node *n = tn_tree_find(t, key, key_len);
    if (!n) return TN_NOT_FOUND;
    tn_temp *tp = node_temp(n);
    if (!tp) return TN_NOT_TEMP_NODE;
    node_info ni;
    tn_tree_node_decode(n, &ni);
    if (ni.create_rev != expect_rev) return TN_TTL_INDEX_MISMATCH;
    if (tp->expire_at > ctx->time_ms) return TN_NOT_EXPIRED;
    if (t->undo && is_dir(n) && dir_of(n)->children) return TN_HAS_CHILDREN; /* no subtree undo */
    remove_node(t, ctx, n, tn_tree_parent_of(t, key, key_len));
    return TN_SUCCESS;
}

/* ---- reads -------------------------------------------------------------------------------------- */

int tn_tree_get(const tn_tree *t, const void *key, size_t key_len, tn_tree_node_view *out)
{
    int rc = tn_tree_check_key(t, key, key_len, 1);
    if (rc) return rc;
    tn_tree_node *n = tn_tree_find(t, key, key_len);
    if (!n) return TN_NOT_FOUND;
    node_view(n, out);
    return TN_SUCCESS;
}

/* Growable stack for iterative traversals. */
typedef struct wframe {
    const cix_leaf *lf;
    int pos;
} wframe;

typedef struct wstack {
    wframe *v;
    size_t n, cap;
    wframe inl[32];
} wstack;

static void ws_init(wstack *s)
{
    s->v = s->inl;
    s->n = 0;
    s->cap = sizeof s->inl / sizeof s->inl[0];
}

static void ws_free(wstack *s)
{
    if (s->v != s->inl) free(s->v);
}

static int ws_push(wstack *s, const cix_leaf *lf, int pos)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap * 2;
        wframe *nv = malloc(ncap * sizeof *nv);
        if (!nv) return -1;
        memcpy(nv, s->v, s->n * sizeof *nv);
        if (s->v != s->inl) free(s->v);
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n].lf = lf;
    s->v[s->n].pos = pos;
    s->n++;
    return 0;
}

int tn_tree_list(const tn_tree *t, const void *dir, size_t dir_len, const void *after, size_t after_len,
                 size_t limit, tn_tree_visit cb, void *arg)
{
    int rc = tn_tree_check_key(t, dir, dir_len, 1);
    if (rc) return rc;
    tn_tree_node *d = tn_tree_find(t, dir, dir_len);
    if (!d) return TN_NOT_FOUND;
    if (!is_dir(d)) return TN_PARENT_NOT_DIR;
    void *root = dir_of(d)->children;
    if (!root) return TN_SUCCESS;
    const cix_leaf *lf;
    int pos = 0;
    if (after && after_len) {
        const uint8_t *a = after;
        size_t skip = dir_len ? dir_len + 1 : 0;
        if (after_len <= skip || (dir_len && (memcmp(a, dir, dir_len) != 0 || a[dir_len] != '.')))
            return TN_INVALID_KEY;
        lf = tn_tree_cix_after(root, a + skip, after_len - skip, &pos);
    } else {
        lf = tn_tree_cix_leftmost(root);
    }
    size_t seen = 0;
    for (; lf; lf = lf->next, pos = 0) {
        for (; pos < lf->h.n; pos++) {
            if (limit && seen >= limit) return TN_SUCCESS;
            tn_tree_node_view v;
            node_view(lf->node[pos], &v);
            seen++;
            if (cb(arg, &v)) return TN_SUCCESS;
        }
    }
    return TN_SUCCESS;
}

int tn_tree_walk(const tn_tree *t, tn_tree_visit cb, void *arg)
{
    /* one frame per directory level being listed; a directory's frame goes on top of its parent's,
     * so its whole subtree comes before its later siblings: pre-order, children in key order */
    wstack s;
    ws_init(&s);
    int rc = TN_NOMEM;
    const cix_leaf *first = tn_tree_cix_leftmost(dir_of(t->root)->children);
    if (first && ws_push(&s, first, 0)) goto done;
    while (s.n) {
        wframe *f = &s.v[s.n - 1];
        if (f->pos == f->lf->h.n) {
            if (f->lf->next) {
                f->lf = f->lf->next;
                f->pos = 0;
            } else {
                s.n--;
            }
            continue;
        }
        tn_tree_node *n = f->lf->node[f->pos++];
        tn_tree_node_view v;
        node_view(n, &v);
        if (cb(arg, &v)) break;
        const cix_leaf *sub = is_dir(n) ? tn_tree_cix_leftmost(dir_of(n)->children) : NULL;
        if (sub && ws_push(&s, sub, 0)) goto done;
    }
    rc = TN_SUCCESS;
done:
    ws_free(&s);
    return rc;
}

/* In-order stack for the expiry treap. */
typedef struct tstack {
    const tn_temp **v;
    size_t n, cap;
    const tn_temp *inl[64];
} tstack;

static int ts_push_left(tstack *s, const tn_temp *x)
{
    for (; x; x = x->left) {
        if (s->n == s->cap) {
            size_t ncap = s->cap * 2;
            const tn_temp **nv = malloc(ncap * sizeof *nv);
            if (!nv) return -1;
            memcpy(nv, s->v, s->n * sizeof *nv);
            if (s->v != s->inl) free(s->v);
            s->v = nv;
            s->cap = ncap;
        }
        s->v[s->n++] = x;
    }
    return 0;
}

int tn_tree_due(const tn_tree *t, int64_t now_ms, size_t limit, tn_tree_visit cb, void *arg)
{
    tstack s;
    s.v = s.inl;
    s.n = 0;
    s.cap = sizeof s.inl / sizeof s.inl[0];
    int rc = TN_NOMEM;
    if (ts_push_left(&s, t->temps)) goto done;
    size_t seen = 0;
    while (s.n && (!limit || seen < limit)) {
        const tn_temp *x = s.v[--s.n];
        if (x->expire_at > now_ms) break;
        tn_tree_node_view v;
        node_view(x->node, &v);
        seen++;
        if (cb(arg, &v)) break;
        if (ts_push_left(&s, x->right)) goto done;
    }
    rc = TN_SUCCESS;
done:
    if (s.v != s.inl) free(s.v);
    return rc;
}
