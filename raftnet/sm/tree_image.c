/* tree_image.c — the tree's snapshot image: tn_tree_serialize / tn_tree_deserialize (contract: tree.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tree_int.h"

/* ---- snapshot ----------------------------------------------------------------------------------- *
 * Image (all integers little-endian / varints from codec.h):
 *   "TNTR" u8 version=1
 *   root: varint create_rev, varint update_rev, svarint create_time, svarint update_time
 *   varint count
 *   count x node, in tn_tree_walk order:
 *     u8 flags (1 = dir, 2 = temp)
 *     varint shared (bytes shared with the previous node's key), bytes suffix
 *     [bytes value]                                  -- values only
 *     varint create_rev, varint update_rev, svarint create_time, svarint update_time
 *     [varint owner, svarint ttl_ms, svarint expire_at] -- temp only
 *   nothing after the last node.
 */
#define IMG_VERSION 1
enum { IMG_DIR = 1, IMG_TEMP = 2 };

typedef struct ser_ctx {
    tn_wr *w;
    const uint8_t *prev;
    size_t prev_len;
} ser_ctx;

static int ser_visit(void *arg, const tn_tree_node_view *v)
{
    ser_ctx *sc = arg;
    tn_wr *w = sc->w;
    size_t shared = 0, lim = v->key_len < sc->prev_len ? v->key_len : sc->prev_len;
    while (shared < lim && v->key[shared] == sc->prev[shared]) shared++;
    int temp = v->expire_at != 0 || v->ttl_ms != 0;
    tn_wr_u8(w, (uint8_t)((v->is_dir ? IMG_DIR : 0) | (temp ? IMG_TEMP : 0)));
    tn_wr_varint(w, shared);
    tn_wr_bytes(w, v->key + shared, v->key_len - shared);
    if (!v->is_dir) tn_wr_bytes(w, v->value, v->value_len);
    tn_wr_varint(w, v->create_rev);
    tn_wr_varint(w, v->update_rev);
    tn_wr_svarint(w, v->create_time);
    tn_wr_svarint(w, v->update_time);
    if (temp) {
        tn_wr_varint(w, v->owner);
        tn_wr_svarint(w, v->ttl_ms);
        tn_wr_svarint(w, v->expire_at);
    }
    sc->prev = v->key;
    sc->prev_len = v->key_len;
    return w->oom;
}

int tn_tree_serialize(const tn_tree *t, tn_wr *w)
{
    const tn_dir *r = dir_of(t->root);
    tn_wr_raw(w, "TNTR", 4);
    tn_wr_u8(w, IMG_VERSION);
    tn_wr_varint(w, r->create_rev);
    tn_wr_varint(w, r->update_rev);
    tn_wr_svarint(w, r->create_time);
    tn_wr_svarint(w, r->update_time);
    tn_wr_varint(w, t->count);
    ser_ctx sc = {w, NULL, 0};
    int rc = tn_tree_walk(t, ser_visit, &sc);
    if (rc) return rc;
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

/* Reads one node of an image into nt. Returns SUCCESS, CLIENT_REQ_ERROR or NOMEM. */
static int deser_node(tn_tree *nt, tn_rd *r, uint8_t *keybuf, size_t *key_len)
{
    uint8_t fl = tn_rd_u8(r);
    size_t shared = (size_t)tn_rd_varint(r), slen = 0, vlen = 0;
    const uint8_t *suffix = tn_rd_bytes(r, nt->lim.max_key, &slen);
    if (r->err || (fl & ~(IMG_DIR | IMG_TEMP)) || shared > *key_len || slen > nt->lim.max_key - shared)
        return TN_CLIENT_REQ_ERROR;
    memcpy(keybuf + shared, suffix, slen);
    size_t klen = shared + slen;
    *key_len = klen;
    const uint8_t *val = NULL;
    if (!(fl & IMG_DIR)) {
        val = tn_rd_bytes(r, nt->lim.max_value, &vlen);
        if (!val || vlen == 0) return TN_CLIENT_REQ_ERROR;
    }
    uint64_t crev = tn_rd_varint(r), urev = tn_rd_varint(r);
    int64_t ctime = tn_rd_svarint(r), utime = tn_rd_svarint(r);
    uint64_t owner = 0;
    int64_t ttl = 0, exp = 0;
    if (fl & IMG_TEMP) {
        owner = tn_rd_varint(r);
        ttl = tn_rd_svarint(r);
        exp = tn_rd_svarint(r);
        if (tn_tree_check_ttl(nt, ttl)) return TN_CLIENT_REQ_ERROR;
    }
    if (r->err || tn_tree_check_key(nt, keybuf, klen, 0)) return TN_CLIENT_REQ_ERROR;
    tn_tree_node *parent = tn_tree_parent_of(nt, keybuf, klen);
    if (!parent || !is_dir(parent) || tn_tree_find(nt, keybuf, klen)) return TN_CLIENT_REQ_ERROR;
    tn_temp *ptp = node_temp(parent);
    /* a temp directory holds only temp nodes of its owner (what the write rules allow) */
    if (ptp && (!(fl & IMG_TEMP) || owner != ptp->owner)) return TN_CLIENT_REQ_ERROR;
    tn_temp *tp = NULL;
    tn_tree_node *n = NULL;
    if ((fl & IMG_TEMP) && !(tp = tn_tree_new_temp(nt, owner, ttl, exp))) goto nomem;
    uint32_t h = tn_tree_key_hash(nt->seed, keybuf, klen);
    n = (fl & IMG_DIR) ? tn_tree_build_dir(nt, h, keybuf, klen, crev, ctime, urev, utime, tp)
                       : tn_tree_build_value(nt, h, keybuf, klen, val, vlen, crev, ctime, urev, utime, tp);
    if (!n || tn_tree_link_new(nt, parent, n)) goto nomem;
    return TN_SUCCESS;
nomem:
    if (n) tfree(nt, n);
    tfree(nt, tp);
    return TN_NOMEM;
}

int tn_tree_deserialize(tn_tree *t, const void *image, size_t len)
{
    tn_tree *nt = tn_tree_new(&t->lim);
    uint8_t *keybuf = NULL;
    int rc = TN_NOMEM;
    if (!nt || !(keybuf = malloc(t->lim.max_key + 1))) goto done;
    tn_rd r;
    tn_rd_init(&r, image, len);
    rc = TN_CLIENT_REQ_ERROR;
    const uint8_t *magic = tn_rd_raw(&r, 4);
    if (!magic || memcmp(magic, "TNTR", 4) != 0 || tn_rd_u8(&r) != IMG_VERSION) goto done;
    tn_dir *root = dir_of(nt->root);
    root->create_rev = tn_rd_varint(&r);
    root->update_rev = tn_rd_varint(&r);
    root->create_time = tn_rd_svarint(&r);
    root->update_time = tn_rd_svarint(&r);
    uint64_t count = tn_rd_varint(&r);
    if (r.err || count > tn_rd_left(&r) / 7) goto done; /* a node takes >= 7 bytes */
    rc = TN_NOMEM;
    if (tn_tree_tab_reserve(nt, (size_t)count)) goto done;
    size_t key_len = 0;
    for (uint64_t i = 0; i < count; i++)
        if ((rc = deser_node(nt, &r, keybuf, &key_len))) goto done;
    rc = TN_CLIENT_REQ_ERROR;
    if (tn_rd_left(&r) != 0) goto done;
    /* success: swap contents so the old state is freed with nt */
    tn_tree tmp = *t;
    *t = *nt;
    *nt = tmp;
    rc = TN_SUCCESS;
done:
    free(keybuf);
    tn_tree_free(nt);
    return rc;
}
