/* coll_index.c — the counted B+tree (ordered indexes, pk index) and the hash index. See coll_int.h. */
#include "coll_int.h"

/* ---- counted B+tree ------------------------------------------------------------------------------ */

/* Order-preserving 64-bit prefix of a value: prefix(a) < prefix(b) implies a < b, so most comparisons in
 * a node never touch the rows (each of which would be a cache miss). Equal prefixes fall back to the full
 * comparison. Bits 63..62: the type class (NULL, number, TEXT, BLOB); numbers: the order-preserving image
 * of their double (int64 -> double rounding is monotone); TEXT/BLOB: the first 7 bytes, then min(len, 7). */
static uint64_t bt_prefix(const tn_val *v)
{
    switch (v->type) {
    case TN_V_NULL: return 0;
    case TN_V_INT:
    case TN_V_REAL: {
        double d = v->type == TN_V_INT ? (double)v->u.i : v->u.r;
        if (d == 0) d = 0; /* -0.0 equals 0.0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        bits = bits >> 63 ? ~bits : bits | (1ULL << 63);
        return (1ULL << 62) | (bits >> 2);
    }
    default: {
        uint64_t b = 0;
        uint32_t n = v->n < 7 ? v->n : 7;
        for (uint32_t k = 0; k < 7; k++) b = b << 8 | (k < n ? v->u.p[k] : 0);
        return ((v->type == TN_V_TEXT ? 2ULL : 3ULL) << 62) | b << 3 | n;
    }
    }
}

static int row_cmp(const bt *t, const crow *a, const crow *b)
{
    int c = tn_val_cmp(bt_key(t, a), bt_key(t, b));
    if (c || t->slot < 0) return c;
    return tn_val_cmp(&a->pk, &b->pk);
}

/* Compares an entry (prefix ek, row e) with a probe row (prefix rk, row r). */
static inline int ent_cmp(const bt *t, uint64_t ek, const crow *e, uint64_t rk, const crow *r)
{
    if (ek != rk) return ek < rk ? -1 : 1;
    return row_cmp(t, e, r);
}

static inline int is_leaf(const void *node) { return ((const bt_leaf *)node)->leaf; }
static inline uint16_t node_n(const void *node) { return ((const bt_leaf *)node)->n; }

static crow *node_min(const void *node)
{
    if (is_leaf(node)) return ((const bt_leaf *)node)->e[0];
    return ((const bt_inner *)node)->min[0];
}

static uint64_t node_mink(const void *node)
{
    if (is_leaf(node)) return ((const bt_leaf *)node)->k[0];
    return ((const bt_inner *)node)->mk[0];
}

static size_t node_count(const void *node)
{
    if (is_leaf(node)) return ((const bt_leaf *)node)->n;
    const bt_inner *in = node;
    size_t s = 0;
    for (int k = 0; k < in->n; k++) s += in->cnt[k];
    return s;
}

int tn_bt_init(bt *t, int slot)
{
    memset(t, 0, sizeof *t);
    bt_leaf *l = calloc(1, sizeof *l);
    if (!l) return -1;
    l->leaf = 1;
    t->root = l;
    t->slot = slot;
    t->height = 1;
    t->n_leaves = 1;
    return 0;
}

static void free_node(void *node)
{
    if (!is_leaf(node)) {
        bt_inner *in = node;
        for (int k = 0; k < in->n; k++) free_node(in->child[k]);
    }
    free(node);
}

void tn_bt_destroy(bt *t)
{
    if (t->root) free_node(t->root);
    memset(t, 0, sizeof *t);
}

/* Index of the child of `in` whose subtree holds (or would hold) row r: the last child whose minimum is
 * <= r, or 0. */
static int inner_pick(const bt *t, const bt_inner *in, const crow *r, uint64_t rk)
{
    int lo = 1, hi = in->n; /* find the first i in [1,n) with min[i] > r */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ent_cmp(t, in->mk[mid], in->min[mid], rk, r) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo - 1;
}

/* First position in the leaf whose entry is >= r. */
static int leaf_lower(const bt *t, const bt_leaf *l, const crow *r, uint64_t rk)
{
    int lo = 0, hi = l->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ent_cmp(t, l->k[mid], l->e[mid], rk, r) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

#define MOVE(arr, dst, src, n) memmove(&(arr)[dst], &(arr)[src], (size_t)(n) * sizeof (arr)[0])

static void inner_set(bt_inner *P, int i, void *child)
{
    P->child[i] = child;
    P->cnt[i] = (uint32_t)node_count(child);
    P->min[i] = node_min(child);
    P->mk[i] = node_mink(child);
}

int tn_bt_insert(bt *t, crow *r)
{
    void *path[BT_MAX_HEIGHT];
    int idx[BT_MAX_HEIGHT];
    int h = t->height;
    if (h >= BT_MAX_HEIGHT) return -1;
    uint64_t rk = bt_prefix(bt_key(t, r));
    void *node = t->root;
    for (int l = 0; l < h - 1; l++) {
        path[l] = node;
        idx[l] = inner_pick(t, node, r, rk);
        node = ((bt_inner *)node)->child[idx[l]];
    }
    path[h - 1] = node;
    bt_leaf *leaf = node;
    int pos = leaf_lower(t, leaf, r, rk);

    /* Allocate every node the splits will need before changing anything. */
    bt_leaf *new_leaf = NULL;
    bt_inner *new_inner[BT_MAX_HEIGHT];
    int n_new_inner = 0;
    if (leaf->n == BT_FAN) {
        new_leaf = calloc(1, sizeof *new_leaf);
        if (!new_leaf) return -1;
        int l = h - 2;
        while (l >= 0 && node_n(path[l]) == BT_FAN) l--;
        int need = (h - 2) - l + (l < 0 ? 1 : 0); /* full inners split; a new root if all are full */
        for (int k = 0; k < need; k++) {
            new_inner[k] = calloc(1, sizeof(bt_inner));
            if (!new_inner[k]) {
                while (k-- > 0) free(new_inner[k]);
                free(new_leaf);
                return -1;
            }
            n_new_inner++;
        }
    }
    int used_inner = 0;

    /* Leaf level. */
    void *split = NULL; /* new right sibling of path[l+1], to insert into the parent */
    bt_leaf *dst = leaf;
    int p = pos;
    if (leaf->n == BT_FAN) {
        bt_leaf *R = new_leaf;
        R->leaf = 1;
        /* Appending at the end (ascending keys, e.g. snapshot load) leaves the left leaf full. */
        int keep = pos == BT_FAN ? BT_FAN : BT_FAN / 2;
        R->n = (uint16_t)(BT_FAN - keep);
        memcpy(R->e, &leaf->e[keep], (size_t)R->n * sizeof R->e[0]);
        memcpy(R->k, &leaf->k[keep], (size_t)R->n * sizeof R->k[0]);
        leaf->n = (uint16_t)keep;
        if (pos > keep || pos == BT_FAN) {
            dst = R;
            p = pos - keep;
        }
        R->next = leaf->next;
        R->prev = leaf;
        if (leaf->next) leaf->next->prev = R;
        leaf->next = R;
        t->n_leaves++;
        split = R;
    }
    MOVE(dst->e, p + 1, p, dst->n - p);
    MOVE(dst->k, p + 1, p, dst->n - p);
    dst->e[p] = r;
    dst->k[p] = rk;
    dst->n++;

    for (int l = h - 2; l >= 0; l--) {
        bt_inner *P = path[l];
        int i = idx[l];
        void *C = path[l + 1];
        if (!split) {
            P->cnt[i]++;
            P->min[i] = node_min(C);
            P->mk[i] = node_mink(C);
            continue;
        }
        inner_set(P, i, C);
        void *S = split;
        int at = i + 1;
        bt_inner *d = P;
        int q = at;
        split = NULL;
        if (P->n == BT_FAN) {
            bt_inner *R = new_inner[used_inner++];
            int keep = at == BT_FAN ? BT_FAN : BT_FAN / 2;
            R->n = (uint16_t)(BT_FAN - keep);
            memcpy(R->cnt, &P->cnt[keep], (size_t)R->n * sizeof P->cnt[0]);
            memcpy(R->child, &P->child[keep], (size_t)R->n * sizeof P->child[0]);
            memcpy(R->min, &P->min[keep], (size_t)R->n * sizeof P->min[0]);
            memcpy(R->mk, &P->mk[keep], (size_t)R->n * sizeof P->mk[0]);
            P->n = (uint16_t)keep;
            if (at > keep || at == BT_FAN) {
                d = R;
                q = at - keep;
            }
            t->n_inners++;
            split = R;
        }
        MOVE(d->cnt, q + 1, q, d->n - q);
        MOVE(d->child, q + 1, q, d->n - q);
        MOVE(d->min, q + 1, q, d->n - q);
        MOVE(d->mk, q + 1, q, d->n - q);
        d->n++;
        inner_set(d, q, S);
    }
    if (split) {
        bt_inner *root = new_inner[used_inner++];
        root->n = 2;
        inner_set(root, 0, t->root);
        inner_set(root, 1, split);
        t->root = root;
        t->height++;
        t->n_inners++;
    }
    while (used_inner < n_new_inner) free(new_inner[used_inner++]); /* not needed after all */
    t->count++;
    return 0;
}

/* Moves every entry of right into left (both children of P at a and a+1) and drops right from P. */
static void merge_children(bt *t, bt_inner *P, int a)
{
    void *L = P->child[a], *R = P->child[a + 1];
    if (is_leaf(L)) {
        bt_leaf *l = L, *r = R;
        memcpy(&l->e[l->n], r->e, (size_t)r->n * sizeof r->e[0]);
        memcpy(&l->k[l->n], r->k, (size_t)r->n * sizeof r->k[0]);
        l->n = (uint16_t)(l->n + r->n);
        l->next = r->next;
        if (r->next) r->next->prev = l;
        t->n_leaves--;
    } else {
        bt_inner *l = L, *r = R;
        memcpy(&l->cnt[l->n], r->cnt, (size_t)r->n * sizeof r->cnt[0]);
        memcpy(&l->child[l->n], r->child, (size_t)r->n * sizeof r->child[0]);
        memcpy(&l->min[l->n], r->min, (size_t)r->n * sizeof r->min[0]);
        memcpy(&l->mk[l->n], r->mk, (size_t)r->n * sizeof r->mk[0]);
        l->n = (uint16_t)(l->n + r->n);
        t->n_inners--;
    }
    free(R);
    P->cnt[a] += P->cnt[a + 1];
    int m = P->n - (a + 2);
    MOVE(P->cnt, a + 1, a + 2, m);
    MOVE(P->child, a + 1, a + 2, m);
    MOVE(P->min, a + 1, a + 2, m);
    MOVE(P->mk, a + 1, a + 2, m);
    P->n--;
}

int tn_bt_delete(bt *t, crow *r)
{
    void *path[BT_MAX_HEIGHT];
    int idx[BT_MAX_HEIGHT];
    int h = t->height;
    uint64_t rk = bt_prefix(bt_key(t, r));
    void *node = t->root;
    for (int l = 0; l < h - 1; l++) {
        bt_inner *in = node;
        path[l] = node;
        idx[l] = inner_pick(t, in, r, rk);
        node = in->child[idx[l]];
    }
    path[h - 1] = node;
    bt_leaf *leaf = node;
    int pos = leaf_lower(t, leaf, r, rk);
    if (pos >= leaf->n || leaf->e[pos] != r) return 0;
    MOVE(leaf->e, pos, pos + 1, leaf->n - pos - 1);
    MOVE(leaf->k, pos, pos + 1, leaf->n - pos - 1);
    leaf->n--;

    for (int l = h - 2; l >= 0; l--) {
        bt_inner *P = path[l];
        int i = idx[l];
        void *C = path[l + 1];
        P->cnt[i]--;
        if (node_n(C) == 0 && !(is_leaf(C) && t->n_leaves == 1)) {
            if (is_leaf(C)) {
                bt_leaf *c = C;
                if (c->prev) c->prev->next = c->next;
                if (c->next) c->next->prev = c->prev;
                t->n_leaves--;
            } else {
                t->n_inners--;
            }
            free(C);
            int m = P->n - (i + 1);
            MOVE(P->cnt, i, i + 1, m);
            MOVE(P->child, i, i + 1, m);
            MOVE(P->min, i, i + 1, m);
            MOVE(P->mk, i, i + 1, m);
            P->n--;
            continue;
        }
        if (node_n(C) == 0) continue; /* the last, empty leaf stays; the root collapses onto it below */
        P->min[i] = node_min(C);
        P->mk[i] = node_mink(C);
        if (node_n(C) < BT_FAN / 4 && P->n > 1) {
            int s = i + 1 < P->n ? i + 1 : i - 1;
            if (node_n(C) + node_n(P->child[s]) <= BT_FAN * 3 / 4) merge_children(t, P, i < s ? i : s);
        }
    }
    while (!is_leaf(t->root) && node_n(t->root) == 1) {
        bt_inner *old = t->root;
        t->root = old->child[0];
        free(old);
        t->n_inners--;
        t->height--;
    }
    t->count--;
    return 1;
}

/* before(e): e's key sorts before the seek target (v, with prefix vk). */
static inline int key_before(const bt *t, uint64_t ek, const crow *e, const tn_val *v, uint64_t vk, int strict)
{
    int c = ek != vk ? (ek < vk ? -1 : 1) : tn_val_cmp(bt_key(t, e), v);
    return strict ? c <= 0 : c < 0;
}

void tn_bt_seek(const bt *t, const tn_val *v, int strict, bt_cur *c, size_t *rank)
{
    size_t rk = 0;
    uint64_t vk = bt_prefix(v);
    void *node = t->root;
    while (!is_leaf(node)) {
        const bt_inner *in = node;
        int lo = 0, hi = in->n; /* count of mins that are before the target */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (key_before(t, in->mk[mid], in->min[mid], v, vk, strict)) lo = mid + 1;
            else hi = mid;
        }
        int ch = lo ? lo - 1 : 0;
        if (rank)
            for (int k = 0; k < ch; k++) rk += in->cnt[k];
        node = in->child[ch];
    }
    bt_leaf *leaf = node;
    int lo = 0, hi = leaf->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (key_before(t, leaf->k[mid], leaf->e[mid], v, vk, strict)) lo = mid + 1;
        else hi = mid;
    }
    rk += (size_t)lo;
    if (lo == leaf->n && leaf->next) {
        leaf = leaf->next;
        lo = 0;
    }
    c->leaf = leaf;
    c->pos = lo;
    if (rank) *rank = rk;
}

void tn_bt_first(const bt *t, bt_cur *c)
{
    void *node = t->root;
    while (!is_leaf(node)) node = ((bt_inner *)node)->child[0];
    c->leaf = node;
    c->pos = 0;
}

void tn_bt_end(const bt *t, bt_cur *c)
{
    void *node = t->root;
    while (!is_leaf(node)) node = ((bt_inner *)node)->child[((bt_inner *)node)->n - 1];
    c->leaf = node;
    c->pos = c->leaf->n;
}

void tn_bt_last(const bt *t, bt_cur *c)
{
    tn_bt_end(t, c);
    tn_bt_prev(c);
}

void tn_bt_next(bt_cur *c)
{
    if (!c->leaf || c->pos >= c->leaf->n) return;
    c->pos++;
    if (c->pos == c->leaf->n && c->leaf->next) {
        c->leaf = c->leaf->next;
        c->pos = 0;
    }
}

void tn_bt_prev(bt_cur *c)
{
    if (!c->leaf) return;
    if (c->pos > 0) {
        c->pos--;
        return;
    }
    c->leaf = c->leaf->prev;
    if (c->leaf) c->pos = c->leaf->n - 1;
}

/* Recursive invariant check; returns the entry count of the subtree or -1. */
static long check_node(const bt *t, const void *node, int depth, const crow **prev, const bt_leaf **prev_leaf,
                       int *bad)
{
    if (is_leaf(node)) {
        const bt_leaf *l = node;
        if (depth != t->height - 1) { *bad = __LINE__; return -1; }
        if (l->prev != *prev_leaf) { *bad = __LINE__; return -1; }
        if (*prev_leaf && (*prev_leaf)->next != l) { *bad = __LINE__; return -1; }
        if (l->n == 0 && t->count != 0) { *bad = __LINE__; return -1; }
        for (int k = 0; k < l->n; k++) {
            if (l->k[k] != bt_prefix(bt_key(t, l->e[k]))) { *bad = __LINE__; return -1; }
            if (*prev && row_cmp(t, *prev, l->e[k]) >= 0) { *bad = __LINE__; return -1; }
            *prev = l->e[k];
        }
        *prev_leaf = l;
        return l->n;
    }
    const bt_inner *in = node;
    if (in->n == 0 || (depth == 0 && in->n < 2)) { *bad = __LINE__; return -1; }
    long total = 0;
    for (int k = 0; k < in->n; k++) {
        if (node_min(in->child[k]) != in->min[k] || node_mink(in->child[k]) != in->mk[k]) {
            *bad = __LINE__;
            return -1;
        }
        long n = check_node(t, in->child[k], depth + 1, prev, prev_leaf, bad);
        if (n < 0) return -1;
        if ((long)in->cnt[k] != n) { *bad = __LINE__; return -1; }
        total += n;
    }
    return total;
}

int tn_bt_check(const bt *t)
{
    const crow *prev = NULL;
    const bt_leaf *prev_leaf = NULL;
    int bad = 0;
    long n = check_node(t, t->root, 0, &prev, &prev_leaf, &bad);
    if (n < 0) return bad;
    if ((size_t)n != t->count) return __LINE__;
    if (prev_leaf && prev_leaf->next) return __LINE__;
    return 0;
}

/* ---- hash index ---------------------------------------------------------------------------------- */

static void table_clear(hentry *t, size_t cap)
{
    for (size_t k = 0; k < cap; k++) {
        memset(&t[k], 0, sizeof t[k]);
        t[k].v.type = HENTRY_EMPTY;
    }
}

int tn_hidx_init(hidx *h, int slot, int hslot, size_t n_idx)
{
    memset(h, 0, sizeof *h);
    h->cap = 16;
    h->t = malloc(h->cap * sizeof *h->t);
    if (!h->t) return -1;
    table_clear(h->t, h->cap);
    h->slot = slot;
    h->hslot = hslot;
    h->n_idx = n_idx;
    return 0;
}

void tn_hidx_destroy(hidx *h)
{
    if (h->t) {
        for (size_t k = 0; k < h->cap; k++)
            if (h->t[k].v.type != HENTRY_EMPTY && h->t[k].cap) free(h->t[k].r.many);
    }
    free(h->t);
    memset(h, 0, sizeof *h);
}

static size_t probe(const hentry *t, size_t cap, const tn_val *v)
{
    size_t mask = cap - 1, i = (size_t)tn_val_hash(v) & mask;
    while (t[i].v.type != HENTRY_EMPTY && tn_val_cmp(&t[i].v, v) != 0) i = (i + 1) & mask;
    return i;
}

static int grow(hidx *h)
{
    size_t ncap = h->cap * 2;
    hentry *nt = malloc(ncap * sizeof *nt);
    if (!nt) return -1;
    table_clear(nt, ncap);
    for (size_t k = 0; k < h->cap; k++)
        if (h->t[k].v.type != HENTRY_EMPTY) nt[probe(nt, ncap, &h->t[k].v)] = h->t[k];
    free(h->t);
    h->t = nt;
    h->cap = ncap;
    return 0;
}

const hentry *tn_hidx_find(const hidx *h, const tn_val *v)
{
    size_t i = probe(h->t, h->cap, v);
    return h->t[i].v.type == HENTRY_EMPTY ? NULL : &h->t[i];
}

int tn_hidx_insert(hidx *h, crow *r)
{
    const tn_val *v = &r->idx[h->slot];
    if ((h->used + 1) * 4 > h->cap * 3 && grow(h)) return -1;
    size_t i = probe(h->t, h->cap, v);
    hentry *e = &h->t[i];
    uint32_t *hpos = crow_hpos(r, h->n_idx);
    if (e->v.type == HENTRY_EMPTY) {
        e->v = *v;
        e->n = 1;
        e->cap = 0;
        e->r.one = r;
        hpos[h->hslot] = 0;
        h->used++;
        return 0;
    }
    if (e->cap == 0) {
        crow **m = malloc(4 * sizeof *m);
        if (!m) return -1;
        m[0] = e->r.one;
        e->r.many = m;
        e->cap = 4;
    } else if (e->n == e->cap) {
        if (e->cap > UINT32_MAX / 2) return -1;
        crow **m = realloc(e->r.many, (size_t)e->cap * 2 * sizeof *m);
        if (!m) return -1;
        e->r.many = m;
        e->cap *= 2;
    }
    e->r.many[e->n] = r;
    hpos[h->hslot] = e->n;
    e->n++;
    return 0;
}

void tn_hidx_delete(hidx *h, crow *r)
{
    const tn_val *v = &r->idx[h->slot];
    size_t mask = h->cap - 1, i = probe(h->t, h->cap, v);
    hentry *e = &h->t[i];
    if (e->v.type == HENTRY_EMPTY) return;
    if (e->n > 1) {
        uint32_t pos = crow_hpos(r, h->n_idx)[h->hslot];
        crow *last = e->r.many[e->n - 1];
        e->r.many[pos] = last;
        crow_hpos(last, h->n_idx)[h->hslot] = pos;
        e->n--;
        if (e->n == 1) {
            crow *one = e->r.many[0];
            free(e->r.many);
            e->cap = 0;
            e->r.one = one;
        }
        /* the representative value may have pointed into r's bytes */
        e->v = hentry_row(e, 0)->idx[h->slot];
        return;
    }
    /* last row of the bucket: remove the entry with backward-shift deletion */
    size_t j = i;
    for (size_t k = (j + 1) & mask; h->t[k].v.type != HENTRY_EMPTY; k = (k + 1) & mask) {
        size_t home = (size_t)tn_val_hash(&h->t[k].v) & mask;
        /* may t[k] move to j? only if its home is not in the cyclic interval (j, k] */
        int in_between = j <= k ? (home > j && home <= k) : (home > j || home <= k);
        if (!in_between) {
            h->t[j] = h->t[k];
            j = k;
        }
    }
    memset(&h->t[j], 0, sizeof h->t[j]);
    h->t[j].v.type = HENTRY_EMPTY;
    h->used--;
}
