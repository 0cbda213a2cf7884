/* tree_undo.c — the tree's transactions: the undo log and rollback (contract: tree.h; layout: tree_int.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tree_int.h"

/* ---- transactions: undo log ---------------------------------------------------------------------- *
 * Before each write inside a transaction, the images of the written key and of every existing ancestor
 * (the ancestors' update fields are touched) are appended to the log: present or not, dir or value,
 * value bytes, create/update fields, temp record. Rollback replays the images in reverse, so each one
 * restores the state the node had just before the write that recorded it; a node created later in the
 * transaction is gone again by the time an older image of its parent is restored. Directories that
 * exist in both states are restored in place (their children stay); value nodes are rebuilt. */
typedef struct undo_rec {
    size_t key_off, key_len, val_off, val_len;
    uint8_t present, dir, temp;
    uint64_t crev, urev;
    int64_t ctime, utime;
    uint64_t owner;
    int64_t ttl, expire_at;
} undo_rec;

typedef struct tree_undo {
    undo_rec *recs;
    size_t n, cap;
    uint8_t *bytes;
    size_t len, bcap;
} tree_undo;

static int undo_bytes(tree_undo *u, const uint8_t *p, size_t n, size_t *off)
{
    if (u->len + n > u->bcap) {
        size_t cap = u->bcap ? u->bcap : 256;
        while (cap < u->len + n) cap *= 2;
        uint8_t *nb = realloc(u->bytes, cap);
        if (!nb) return -1;
        u->bytes = nb;
        u->bcap = cap;
    }
    *off = u->len;
    if (n) memcpy(u->bytes + u->len, p, n);
    u->len += n;
    return 0;
}

/* Appends the image of the node at key (present or not). 0 or -1 (NOMEM). */
static int undo_image(tree_undo *u, const tn_tree_node *n, const uint8_t *key, size_t klen)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 16;
        undo_rec *nr = realloc(u->recs, cap * sizeof *nr);
        if (!nr) return -1;
        u->recs = nr;
        u->cap = cap;
    }
    undo_rec r;
    memset(&r, 0, sizeof r);
    r.key_len = klen;
    if (undo_bytes(u, key, klen, &r.key_off)) return -1;
    if (n) {
        node_info ni;
        tn_tree_node_decode(n, &ni);
        r.present = 1;
        r.dir = is_dir(n) ? 1 : 0;
        r.crev = ni.create_rev;
        r.urev = ni.update_rev;
        r.ctime = ni.create_time;
        r.utime = ni.update_time;
        if (ni.temp) {
            r.temp = 1;
            r.owner = ni.temp->owner;
            r.ttl = ni.temp->ttl_ms;
            r.expire_at = ni.temp->expire_at;
        }
        if (!r.dir) {
            r.val_len = ni.value_len;
            if (undo_bytes(u, ni.value, ni.value_len, &r.val_off)) return -1;
        }
    }
    u->recs[u->n++] = r;
    return 0;
}

/* Records key and its existing ancestors (no-op without a transaction). SUCCESS or NOMEM. */
int tn_tree_undo_note(tn_tree *t, const uint8_t *key, size_t klen)
{
    tree_undo *u = t->undo;
    if (!u) return TN_SUCCESS;
    if (undo_image(u, tn_tree_find(t, key, klen), key, klen)) return TN_NOMEM;
    size_t len = klen;
    while (len > 0) {
        const uint8_t *dot = memrchr(key, '.', len);
        len = dot ? (size_t)(dot - key) : 0;
        tn_tree_node *a = tn_tree_find(t, key, len);
        if (a && undo_image(u, a, key, len)) return TN_NOMEM;
    }
    return TN_SUCCESS;
}

static int undo_restore(tn_tree *t, const tree_undo *u, const undo_rec *r)
{
    const uint8_t *key = u->bytes + r->key_off;
    uint32_t h = 0;
    tn_tree_node *cur = tn_tree_find_h(t, key, r->key_len, &h);
    if (r->key_len && !cur) h = tn_tree_key_hash(t->seed, key, r->key_len);
    if (cur && r->present && r->dir && is_dir(cur)) {
        tn_dir *d = dir_of(cur);
        d->create_rev = r->crev;
        d->update_rev = r->urev;
        d->create_time = r->ctime;
        d->update_time = r->utime;
        if (d->temp && r->temp) {
            tn_tree_tt_remove(t, d->temp);
            d->temp->owner = r->owner;
            d->temp->ttl_ms = r->ttl;
            d->temp->expire_at = r->expire_at;
            tn_tree_tt_insert(t, d->temp);
        }
        return TN_SUCCESS;
    }
    if (r->key_len == 0) return TN_INTERNAL; /* the root is always a directory */
    tn_tree_node *parent = tn_tree_parent_of(t, key, r->key_len);
    if (cur) {
        if (!parent || (is_dir(cur) && dir_of(cur)->children)) return TN_INTERNAL;
        tn_tree_cix_remove(t, &dir_of(parent)->children, cur);
        t->count -= tn_tree_destroy(t, cur, 1);
    }
    if (!r->present) return TN_SUCCESS;
    if (!parent || !is_dir(parent)) return TN_INTERNAL;
    tn_temp *tp = NULL;
    if (r->temp && !(tp = tn_tree_new_temp(t, r->owner, r->ttl, r->expire_at))) return TN_NOMEM;
    tn_tree_node *n = r->dir ? tn_tree_build_dir(t, h, key, r->key_len, r->crev, r->ctime, r->urev, r->utime, tp)
                             : tn_tree_build_value(t, h, key, r->key_len, u->bytes + r->val_off, r->val_len,
                                                   r->crev, r->ctime, r->urev, r->utime, tp);
    if (!n || tn_tree_link_new(t, parent, n)) {
        if (n) tfree(t, n);
        tfree(t, tp);
        return TN_NOMEM;
    }
    return TN_SUCCESS;
}

void tn_tree_undo_free(tree_undo *u)
{
    if (!u) return;
    free(u->recs);
    free(u->bytes);
    free(u);
}

int tn_tree_txn_begin(tn_tree *t)
{
    if (t->undo) return TN_INTERNAL;
    t->undo = calloc(1, sizeof *t->undo);
    return t->undo ? TN_SUCCESS : TN_NOMEM;
}

void tn_tree_txn_commit(tn_tree *t)
{
    tn_tree_undo_free(t->undo);
    t->undo = NULL;
}

int tn_tree_txn_rollback(tn_tree *t)
{
    tree_undo *u = t->undo;
    int rc = TN_SUCCESS;
    if (!u) return TN_SUCCESS;
    t->undo = NULL; /* the restores below must not log themselves */
    for (size_t i = u->n; i-- > 0 && rc == TN_SUCCESS;) rc = undo_restore(t, u, &u->recs[i]);
    tn_tree_undo_free(u);
    return rc;
}

int tn_tree_txn_open(const tn_tree *t) { return t->undo != NULL; }
