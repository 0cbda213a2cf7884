/* tree_index.c — the indexes over the tree's nodes: the key hash table (lookup by full key), each
 * directory's children B+tree (cix_*) and the expiry treap of temp nodes. Layout: tree_int.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tree_int.h"

/* ---- hashing ------------------------------------------------------------------------------------ */

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t load_tail(const uint8_t *p, size_t n) /* n < 8 */
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Keyed multiply-fold hash; the seed is random per tree, so slots and priorities are not predictable. */
uint32_t tn_tree_key_hash(uint64_t seed, const uint8_t *p, size_t n)
{
    const uint64_t k1 = 0xa0761d6478bd642full, k2 = 0xe7037ed1a0b428dbull, k3 = 0x8ebc6af09c88c6e3ull;
    uint64_t h = seed ^ mix64((uint64_t)n ^ k1, k2);
    while (n >= 16) {
        h = mix64(load64(p) ^ k1 ^ seed, load64(p + 8) ^ h);
        p += 16;
        n -= 16;
    }
    uint64_t a, b;
    if (n >= 8) {
        a = load64(p);
        b = load_tail(p + 8, n - 8);
    } else {
        a = load_tail(p, n);
        b = 0;
    }
    h = mix64(a ^ k2 ^ seed, b ^ h ^ k3);
    h = mix64(h ^ k1, seed ^ k3);
    return (uint32_t)(h ^ (h >> 32));
}

/* ---- hash table --------------------------------------------------------------------------------- *
 * Linear probing over node pointers, with a parallel byte array of tags (7 bits of the hash, 0 = empty
 * slot): a probe reads the tag array and touches a node only when its tag matches, so missing keys
 * cost no node cache misses. */

static inline uint8_t tag_of(uint32_t h) { return (uint8_t)(0x80u | (h >> 25)); }

static tn_tree_node **tab_find(const tn_tree *t, const uint8_t *key, size_t len, uint32_t h)
{
    size_t i = h & t->mask;
    uint8_t tag = tag_of(h);
    for (; t->tags[i]; i = (i + 1) & t->mask) {
        if (t->tags[i] != tag) continue;
        tn_tree_node *n = t->slots[i];
        if (n->hash == h) {
            size_t kl;
            const uint8_t *k = node_key(n, &kl);
            if (kl == len && memcmp(k, key, len) == 0) return &t->slots[i];
        }
    }
    return NULL;
}

size_t tn_tree_tab_index_of(const tn_tree *t, const tn_tree_node *n)
{
    size_t i = n->hash & t->mask;
    while (!t->tags[i] || t->slots[i] != n) i = (i + 1) & t->mask;
    return i;
}

void tn_tree_tab_put(tn_tree_node **slots, uint8_t *tags, size_t mask, tn_tree_node *n)
{
    size_t i = n->hash & mask;
    while (tags[i]) i = (i + 1) & mask;
    slots[i] = n;
    tags[i] = tag_of(n->hash);
}

/* Makes room for `extra` more entries at a load factor <= 3/4. 0 or -1 (nothing changed). */
int tn_tree_tab_reserve(tn_tree *t, size_t extra)
{
    size_t cap = t->mask + 1;
    if ((t->used + extra) <= cap / 4 * 3) return 0;
    size_t ncap = cap;
    while ((t->used + extra) > ncap / 4 * 3) {
        if (ncap > SIZE_MAX / 2 / sizeof(tn_tree_node *)) return -1;
        ncap *= 2;
    }
    tn_tree_node **ns = tmalloc(t, ncap * sizeof *ns);
    uint8_t *ntags = tmalloc(t, ncap);
    if (!ns || !ntags) {
        tfree(t, ns);
        tfree(t, ntags);
        return -1;
    }
    memset(ntags, 0, ncap);
    for (size_t i = 0; i < cap; i++)
        if (t->tags[i]) tn_tree_tab_put(ns, ntags, ncap - 1, t->slots[i]);
    tfree(t, t->slots);
    tfree(t, t->tags);
    t->slots = ns;
    t->tags = ntags;
    t->mask = ncap - 1;
    return 0;
}

void tn_tree_tab_delete(tn_tree *t, const tn_tree_node *n)
{
    size_t i = tn_tree_tab_index_of(t, n), j = i;
    for (;;) {
        j = (j + 1) & t->mask;
        if (!t->tags[j]) break;
        tn_tree_node *m = t->slots[j];
        size_t home = m->hash & t->mask;
        /* m may move back to i only if its home is not in the cyclic range (i, j]. */
        int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            t->slots[i] = m;
            t->tags[i] = t->tags[j];
            i = j;
        }
    }
    t->slots[i] = NULL;
    t->tags[i] = 0;
    t->used--;
}

/* ---- lookup ------------------------------------------------------------------------------------- */

/* Node at key or NULL; *hash receives the key's hash (reused when the key is then created). */
tn_tree_node *tn_tree_find_h(const tn_tree *t, const uint8_t *key, size_t len, uint32_t *hash)
{
    if (len == 0) return t->root;
    uint32_t h = tn_tree_key_hash(t->seed, key, len);
    if (hash) *hash = h;
    tn_tree_node **s = tab_find(t, key, len, h);
    return s ? *s : NULL;
}

tn_tree_node *tn_tree_find(const tn_tree *t, const uint8_t *key, size_t len)
{
    return tn_tree_find_h(t, key, len, NULL);
}

tn_tree_node *tn_tree_parent_of(const tn_tree *t, const uint8_t *key, size_t len)
{
    const uint8_t *dot = memrchr(key, '.', len);
    return dot ? tn_tree_find(t, key, (size_t)(dot - key)) : t->root;
}

/* ---- children index: a B+tree per directory ------------------------------------------------------ *
 * Leaves hold (prefix, node) entries, where prefix is the first 8 bytes of the child's last segment,
 * big-endian and zero-padded: most comparisons are decided by the prefix alone, without touching the
 * child node (a cache miss). Equal prefixes fall back to comparing the full segments. Leaves are
 * doubly linked for in-order listing. Inner nodes hold separators: sep[i] (i >= 1) is a private copy
 * of the smallest segment child i had when it was split off, so child i holds the segments s with
 * sep[i] <= s < sep[i+1]. Being copies, separators never dangle when nodes are removed or rebuilt.
 * Deletes only merge (never allocate); an insert allocates everything it may need before it changes
 * anything, so a NOMEM leaves the index untouched. */
#define CIX_MIN (CIX_MAX / 4) /* CIX_MAX, cix_hdr and cix_leaf: tree_int.h */
#define CIX_MAX_HEIGHT 64

typedef struct cix_key {
    uint32_t len;
    uint8_t b[];
} cix_key;

typedef struct cix_inner {
    cix_hdr h;
    uint64_t pfx[CIX_MAX];  /* pfx[i], i >= 1: prefix of sep[i] */
    cix_key *sep[CIX_MAX];  /* sep[0] unused */
    void *child[CIX_MAX];
} cix_inner;

typedef struct skey {
    const uint8_t *s;
    size_t len;
    uint64_t pfx;
} skey;

static inline uint64_t seg_prefix(const uint8_t *s, size_t len)
{
    uint64_t v = 0;
    size_t n = len < 8 ? len : 8;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)s[i] << (56 - 8 * i);
    return v;
}

static inline void skey_of_seg(skey *k, const uint8_t *s, size_t len)
{
    k->s = s;
    k->len = len;
    k->pfx = seg_prefix(s, len);
}

static inline void skey_of_node(skey *k, const tn_tree_node *n)
{
    size_t l;
    const uint8_t *s = node_seg(n, &l);
    skey_of_seg(k, s, l);
}

static inline int cmp_entry(const skey *k, uint64_t pfx, const tn_tree_node *n)
{
    if (k->pfx != pfx) return k->pfx < pfx ? -1 : 1;
    size_t l;
    const uint8_t *s = node_seg(n, &l);
    return bytes_cmp(k->s, k->len, s, l);
}

static inline int cmp_sep(const skey *k, uint64_t pfx, const cix_key *sep)
{
    if (k->pfx != pfx) return k->pfx < pfx ? -1 : 1;
    return bytes_cmp(k->s, k->len, sep->b, sep->len);
}

/* First index in a[0..n) whose value is >= key (branch-free: the compares are unpredictable). */
static inline int pfx_lower(const uint64_t *a, int n, uint64_t key)
{
    if (n == 0) return 0;
    const uint64_t *b = a;
    while (n > 1) {
        int half = n >> 1;
        b += b[half] < key ? half : 0;
        n -= half;
    }
    return (int)(b - a) + (*b < key);
}

/* Child of `in` whose range holds k: the last i with sep[i] <= k, or 0. The prefix order agrees with
 * the full order, so only separators with k's exact prefix need a full compare. */
static int inner_pick(const cix_inner *in, const skey *k)
{
    int j = 1 + pfx_lower(in->pfx + 1, in->h.n - 1, k->pfx);
    while (j < in->h.n && in->pfx[j] == k->pfx && cmp_sep(k, in->pfx[j], in->sep[j]) >= 0) j++;
    return j - 1;
}

/* First entry >= k (strict = 0) or > k (strict = 1). */
static int leaf_bound(const cix_leaf *lf, const skey *k, int strict)
{
    int i = pfx_lower(lf->pfx, lf->h.n, k->pfx);
    while (i < lf->h.n && lf->pfx[i] == k->pfx) {
        int c = cmp_entry(k, lf->pfx[i], lf->node[i]);
        if (c < 0 || (!strict && c == 0)) break;
        i++;
    }
    return i;
}

cix_leaf *tn_tree_cix_leftmost(void *n)
{
    while (n && !((cix_hdr *)n)->leaf) n = ((cix_inner *)n)->child[0];
    return n;
}

/* Asks for the header and the prefix array of a B-tree node at once, so the binary search that follows
 * waits for one memory round trip instead of one per cache line it touches. */
static inline void prefetch_cix(const void *n)
{
    const char *p = n;
    for (size_t off = 0; off < offsetof(cix_leaf, node); off += 64) __builtin_prefetch(p + off);
}

/* Descends to the leaf for k, recording the inner nodes and the child index taken in each. */
static cix_leaf *cix_descend(void *root, const skey *k, cix_inner **path, int *idx, int *depth)
{
    int d = 0;
    void *cur = root;
    while (!((cix_hdr *)cur)->leaf) {
        cix_inner *in = cur;
        int i = inner_pick(in, k);
        if (path) {
            path[d] = in;
            idx[d] = i;
        }
        d++;
        cur = in->child[i];
        prefetch_cix(cur);
    }
    if (depth) *depth = d;
    return cur;
}

/* Leaf and position of the first child whose segment is > seg (root non-NULL). */
cix_leaf *tn_tree_cix_after(void *root, const uint8_t *seg, size_t len, int *pos)
{
    skey k;
    skey_of_seg(&k, seg, len);
    cix_leaf *lf = cix_descend(root, &k, NULL, NULL, NULL);
    *pos = leaf_bound(lf, &k, 1);
    return lf;
}

/* Slot holding node x (which must be in the index). */
tn_tree_node **tn_tree_cix_slot(void *root, const tn_tree_node *x)
{
    skey k;
    skey_of_node(&k, x);
    cix_leaf *lf = cix_descend(root, &k, NULL, NULL, NULL);
    int pos = leaf_bound(lf, &k, 0);
    return &lf->node[pos];
}

/* Points *slot at a copy of n's segment, reusing the old copy's memory when it fits. 0 or -1. */
static int sep_set(tn_tree *t, cix_key **slot, uint64_t *pfx, const tn_tree_node *n)
{
    size_t l;
    const uint8_t *s = node_seg(n, &l);
    cix_key *k = *slot;
    if (malloc_usable_size(k) < sizeof *k + l) {
        if (!(k = tmalloc(t, sizeof *k + l))) return -1;
        tfree(t, *slot);
        *slot = k;
    }
    k->len = (uint32_t)l;
    memcpy(k->b, s, l);
    *pfx = seg_prefix(s, l);
    return 0;
}

static cix_key *sep_copy(tn_tree *t, const tn_tree_node *n, uint64_t *pfx)
{
    size_t l;
    const uint8_t *s = node_seg(n, &l);
    cix_key *k = tmalloc(t, sizeof *k + l);
    if (!k) return NULL;
    k->len = (uint32_t)l;
    memcpy(k->b, s, l);
    *pfx = seg_prefix(s, l);
    return k;
}

/* Inserts x (absent). 0, or -1 on allocation failure with the index unchanged. */
int tn_tree_cix_insert(tn_tree *t, void **rootp, tn_tree_node *x)
{
    skey k;
    skey_of_node(&k, x);
    if (!*rootp) {
        cix_leaf *lf = tmalloc(t, sizeof *lf);
        if (!lf) return -1;
        lf->h.n = 1;
        lf->h.leaf = 1;
        lf->prev = lf->next = NULL;
        lf->pfx[0] = k.pfx;
        lf->node[0] = x;
        *rootp = lf;
        return 0;
    }
    cix_inner *path[CIX_MAX_HEIGHT];
    int idx[CIX_MAX_HEIGHT], depth;
    cix_leaf *lf = cix_descend(*rootp, &k, path, idx, &depth);
    int pos = leaf_bound(lf, &k, 0);
    if (lf->h.n < CIX_MAX) {
        memmove(&lf->pfx[pos + 1], &lf->pfx[pos], (size_t)(lf->h.n - pos) * sizeof lf->pfx[0]);
        memmove(&lf->node[pos + 1], &lf->node[pos], (size_t)(lf->h.n - pos) * sizeof lf->node[0]);
        lf->pfx[pos] = k.pfx;
        lf->node[pos] = x;
        lf->h.n++;
        return 0;
    }
    /* the leaf splits; so does each full inner node above it, and the root may grow */
    uint64_t pf[CIX_MAX + 1];
    tn_tree_node *nd[CIX_MAX + 1];
    for (int i = 0, j = 0; i <= CIX_MAX; i++) {
        if (i == pos) {
            pf[i] = k.pfx;
            nd[i] = x;
        } else {
            pf[i] = lf->pfx[j];
            nd[i] = lf->node[j++];
        }
    }
    /* A full leaf first tries to shed entries to a sibling with room (keeps leaves ~80% full instead
     * of ~70%); only the separator between the two changes. */
    if (depth > 0) {
        cix_inner *p = path[depth - 1];
        int i = idx[depth - 1];
        cix_leaf *left = i > 0 ? p->child[i - 1] : NULL, *right = i + 1 < p->h.n ? p->child[i + 1] : NULL;
        if (left && left->h.n < CIX_MAX) {
            int m = (CIX_MAX - left->h.n + 1) / 2; /* entries moving left */
            if (sep_set(t, &p->sep[i], &p->pfx[i], nd[m])) return -1;
            memcpy(&left->pfx[left->h.n], pf, (size_t)m * sizeof pf[0]);
            memcpy(&left->node[left->h.n], nd, (size_t)m * sizeof nd[0]);
            left->h.n = (uint16_t)(left->h.n + m);
            lf->h.n = (uint16_t)(CIX_MAX + 1 - m);
            memcpy(lf->pfx, pf + m, lf->h.n * sizeof pf[0]);
            memcpy(lf->node, nd + m, lf->h.n * sizeof nd[0]);
            return 0;
        }
        if (right && right->h.n < CIX_MAX) {
            int m = (CIX_MAX - right->h.n + 1) / 2; /* entries moving right */
            int keep = CIX_MAX + 1 - m;
            if (sep_set(t, &p->sep[i + 1], &p->pfx[i + 1], nd[keep])) return -1;
            memmove(&right->pfx[m], right->pfx, right->h.n * sizeof pf[0]);
            memmove(&right->node[m], right->node, right->h.n * sizeof nd[0]);
            memcpy(right->pfx, pf + keep, (size_t)m * sizeof pf[0]);
            memcpy(right->node, nd + keep, (size_t)m * sizeof nd[0]);
            right->h.n = (uint16_t)(right->h.n + m);
            lf->h.n = (uint16_t)keep;
            memcpy(lf->pfx, pf, (size_t)keep * sizeof pf[0]);
            memcpy(lf->node, nd, (size_t)keep * sizeof nd[0]);
            return 0;
        }
    }
    /* appending past the last leaf keeps the left leaf full (sequential keys fill leaves) */
    int split = (pos == CIX_MAX && !lf->next) ? CIX_MAX : (CIX_MAX + 1) / 2;
    int full = 0;
    while (full < depth && path[depth - 1 - full]->h.n == CIX_MAX) full++;
    int n_inner = full + (full == depth);
    cix_inner *spare[CIX_MAX_HEIGHT + 1];
    int got = 0;
    uint64_t up_pfx;
    cix_key *up_sep = sep_copy(t, nd[split], &up_pfx);
    cix_leaf *nl = tmalloc(t, sizeof *nl);
    if (!up_sep || !nl) goto nomem;
    for (; got < n_inner; got++)
        if (!(spare[got] = tmalloc(t, sizeof(cix_inner)))) goto nomem;

    lf->h.n = (uint16_t)split;
    memcpy(lf->pfx, pf, (size_t)split * sizeof pf[0]);
    memcpy(lf->node, nd, (size_t)split * sizeof nd[0]);
    nl->h.n = (uint16_t)(CIX_MAX + 1 - split);
    nl->h.leaf = 1;
    memcpy(nl->pfx, pf + split, nl->h.n * sizeof pf[0]);
    memcpy(nl->node, nd + split, nl->h.n * sizeof nd[0]);
    nl->prev = lf;
    nl->next = lf->next;
    if (lf->next) lf->next->prev = nl;
    lf->next = nl;

    void *right = nl;
    int s = 0;
    for (int level = depth - 1;; level--) {
        if (level < 0) {
            cix_inner *r = spare[s++];
            r->h.n = 2;
            r->h.leaf = 0;
            r->child[0] = *rootp;
            r->child[1] = right;
            r->pfx[1] = up_pfx;
            r->sep[1] = up_sep;
            *rootp = r;
            break;
        }
        cix_inner *in = path[level];
        int at = idx[level] + 1;
        if (in->h.n < CIX_MAX) {
            int m = in->h.n - at;
            memmove(&in->child[at + 1], &in->child[at], (size_t)m * sizeof in->child[0]);
            memmove(&in->pfx[at + 1], &in->pfx[at], (size_t)m * sizeof in->pfx[0]);
            memmove(&in->sep[at + 1], &in->sep[at], (size_t)m * sizeof in->sep[0]);
            in->child[at] = right;
            in->pfx[at] = up_pfx;
            in->sep[at] = up_sep;
            in->h.n++;
            break;
        }
        void *ch[CIX_MAX + 1];
        uint64_t ip[CIX_MAX + 1];
        cix_key *is[CIX_MAX + 1];
        for (int i = 0, j = 0; i <= CIX_MAX; i++) {
            if (i == at) {
                ch[i] = right;
                ip[i] = up_pfx;
                is[i] = up_sep;
            } else {
                ch[i] = in->child[j];
                ip[i] = in->pfx[j];
                is[i] = in->sep[j++];
            }
        }
        int h = (CIX_MAX + 1) / 2;
        cix_inner *rn = spare[s++];
        rn->h.leaf = 0;
        rn->h.n = (uint16_t)(CIX_MAX + 1 - h);
        in->h.n = (uint16_t)h;
        memcpy(in->child, ch, (size_t)h * sizeof ch[0]);
        memcpy(in->pfx, ip, (size_t)h * sizeof ip[0]);
        memcpy(in->sep, is, (size_t)h * sizeof is[0]);
        memcpy(rn->child, ch + h, rn->h.n * sizeof ch[0]);
        memcpy(rn->pfx, ip + h, rn->h.n * sizeof ip[0]);
        memcpy(rn->sep, is + h, rn->h.n * sizeof is[0]);
        up_pfx = ip[h]; /* rn's first separator moves up */
        up_sep = is[h];
        rn->sep[0] = NULL;
        right = rn;
    }
    return 0;
nomem:
    while (got) tfree(t, spare[--got]);
    tfree(t, nl);
    tfree(t, up_sep);
    return -1;
}

/* Removes child i of `in`; the separator that goes with it is freed unless keep_sep (it moved). */
static void inner_remove_at(tn_tree *t, cix_inner *in, int i, int keep_sep)
{
    int s = i > 0 ? i : 1; /* removing child 0 makes child 1 the first: its separator goes */
    if (s < in->h.n && !keep_sep) tfree(t, in->sep[s]);
    memmove(&in->child[i], &in->child[i + 1], (size_t)(in->h.n - i - 1) * sizeof in->child[0]);
    if (s < in->h.n) {
        memmove(&in->pfx[s], &in->pfx[s + 1], (size_t)(in->h.n - s - 1) * sizeof in->pfx[0]);
        memmove(&in->sep[s], &in->sep[s + 1], (size_t)(in->h.n - s - 1) * sizeof in->sep[0]);
    }
    in->h.n--;
}

static void leaf_unlink(cix_leaf *lf)
{
    if (lf->prev) lf->prev->next = lf->next;
    if (lf->next) lf->next->prev = lf->prev;
}

/* Appends src's entries to dst (adjacent leaves, dst first) and unlinks src. */
static void leaf_merge(cix_leaf *dst, cix_leaf *src)
{
    memcpy(&dst->pfx[dst->h.n], src->pfx, src->h.n * sizeof src->pfx[0]);
    memcpy(&dst->node[dst->h.n], src->node, src->h.n * sizeof src->node[0]);
    dst->h.n = (uint16_t)(dst->h.n + src->h.n);
    leaf_unlink(src);
}

/* Appends src's children to dst (adjacent inner nodes, dst first); `sep` is the parent's separator
 * between them, which becomes the separator of src's first child. */
static void inner_merge(cix_inner *dst, cix_inner *src, uint64_t pfx, cix_key *sep)
{
    int n = dst->h.n;
    memcpy(&dst->child[n], src->child, src->h.n * sizeof src->child[0]);
    memcpy(&dst->pfx[n], src->pfx, src->h.n * sizeof src->pfx[0]);
    memcpy(&dst->sep[n], src->sep, src->h.n * sizeof src->sep[0]);
    dst->pfx[n] = pfx;
    dst->sep[n] = sep;
    dst->h.n = (uint16_t)(n + src->h.n);
}

/* Removes node x (present). Never allocates. */
void tn_tree_cix_remove(tn_tree *t, void **rootp, const tn_tree_node *x)
{
    skey k;
    skey_of_node(&k, x);
    cix_inner *path[CIX_MAX_HEIGHT];
    int idx[CIX_MAX_HEIGHT], depth;
    cix_leaf *lf = cix_descend(*rootp, &k, path, idx, &depth);
    int pos = leaf_bound(lf, &k, 0);
    lf->h.n--;
    memmove(&lf->pfx[pos], &lf->pfx[pos + 1], (size_t)(lf->h.n - pos) * sizeof lf->pfx[0]);
    memmove(&lf->node[pos], &lf->node[pos + 1], (size_t)(lf->h.n - pos) * sizeof lf->node[0]);
    if (depth == 0) {
        if (lf->h.n == 0) {
            tfree(t, lf);
            *rootp = NULL;
        }
        return;
    }
    if (lf->h.n >= CIX_MIN) return;
    cix_inner *p = path[depth - 1];
    int i = idx[depth - 1];
    cix_leaf *left = i > 0 ? p->child[i - 1] : NULL, *right = i + 1 < p->h.n ? p->child[i + 1] : NULL;
    if (left && left->h.n + lf->h.n <= CIX_MAX) {
        leaf_merge(left, lf);
        tfree(t, lf);
        inner_remove_at(t, p, i, 0);
    } else if (right && lf->h.n + right->h.n <= CIX_MAX) {
        leaf_merge(lf, right);
        tfree(t, right);
        inner_remove_at(t, p, i + 1, 0);
    } else if (lf->h.n == 0) { /* an only child gone empty */
        leaf_unlink(lf);
        tfree(t, lf);
        inner_remove_at(t, p, i, 0);
    } else {
        return;
    }
    /* p lost a child: rebalance upward */
    for (int level = depth - 1;; level--) {
        cix_inner *in = path[level];
        if (level == 0) {
            if (in->h.n <= 1) {
                *rootp = in->h.n ? in->child[0] : NULL;
                tfree(t, in);
            }
            return;
        }
        if (in->h.n >= CIX_MIN) return;
        cix_inner *gp = path[level - 1];
        int j = idx[level - 1];
        cix_inner *l = j > 0 ? gp->child[j - 1] : NULL, *r = j + 1 < gp->h.n ? gp->child[j + 1] : NULL;
        if (in->h.n == 0) {
            tfree(t, in);
            inner_remove_at(t, gp, j, 0);
        } else if (l && l->h.n + in->h.n <= CIX_MAX) {
            inner_merge(l, in, gp->pfx[j], gp->sep[j]);
            tfree(t, in);
            inner_remove_at(t, gp, j, 1);
        } else if (r && in->h.n + r->h.n <= CIX_MAX) {
            inner_merge(in, r, gp->pfx[j + 1], gp->sep[j + 1]);
            tfree(t, r);
            inner_remove_at(t, gp, j + 1, 1);
        } else {
            return;
        }
    }
}

/* Frees the index structure (not the tn_nodes it points to). Recursion depth = index height. */
void tn_tree_cix_free(tn_tree *t, void *n)
{
    if (!n) return;
    if (!((cix_hdr *)n)->leaf) {
        cix_inner *in = n;
        for (int i = 0; i < in->h.n; i++) {
            if (i) tfree(t, in->sep[i]);
            tn_tree_cix_free(t, in->child[i]);
        }
    }
    tfree(t, n);
}

/* ---- expiry treap ------------------------------------------------------------------------------- */

static int tt_cmp(const tn_temp *a, const tn_temp *b)
{
    if (a->expire_at != b->expire_at) return a->expire_at < b->expire_at ? -1 : 1;
    size_t al, bl;
    const uint8_t *ak = node_key(a->node, &al), *bk = node_key(b->node, &bl);
    return bytes_cmp(ak, al, bk, bl);
}

void tn_tree_tt_insert(tn_tree *t, tn_temp *x)
{
    tn_temp **link = &t->temps;
    while (*link && (*link)->node->hash >= x->node->hash)
        link = tt_cmp(x, *link) < 0 ? &(*link)->left : &(*link)->right;
    tn_temp *s = *link, **l = &x->left, **r = &x->right;
    while (s) {
        if (tt_cmp(s, x) < 0) {
            *l = s;
            l = &s->right;
            s = s->right;
        } else {
            *r = s;
            r = &s->left;
            s = s->left;
        }
    }
    *l = *r = NULL;
    *link = x;
}

void tn_tree_tt_remove(tn_tree *t, tn_temp *x)
{
    tn_temp **link = &t->temps;
    while (*link != x) link = tt_cmp(x, *link) < 0 ? &(*link)->left : &(*link)->right;
    tn_temp *a = x->left, *b = x->right, *res = NULL, **out = &res;
    while (a && b) {
        if (a->node->hash >= b->node->hash) {
            *out = a;
            out = &a->right;
            a = a->right;
        } else {
            *out = b;
            out = &b->left;
            b = b->left;
        }
    }
    *out = a ? a : b;
    *link = res;
    x->left = x->right = NULL;
}
