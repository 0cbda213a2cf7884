/* tree.c — the DtKV hierarchical store (contract: tree.h).
 *
 * Layout, chosen for <= 64 bytes of overhead per node (measured: bench_tree):
 *  - One malloc per node: an 8-byte header (32-bit hash, flags, length of the last key segment)
 *    followed by the node's own data.
 *      value node: [tn_temp * if temp] [varint meta] [key] [value]
 *          meta = key_len, value_len, create_rev, create_time and, only when they differ from the
 *          create fields, update_rev and update_time as deltas. Lossless; a value node is rebuilt
 *          (new allocation swapped in) whenever one of its fields changes.
 *      directory:  [tn_dir] [key] — fixed-width fields, updated in place, because every write below a
 *          directory touches its update_rev/update_time. Directories keep a parent pointer so walking
 *          the ancestors costs no hash lookups; value nodes find their parent by a lookup of the key
 *          prefix.
 *  - Temp nodes have a separate tn_temp record (owner, ttl, expiry, links of the expiry treap ordered
 *    by (expire_at, key)), so only they pay for the expiry index.
 *  - Lookup by full key: open-addressing hash table of node pointers plus one tag byte per slot
 *    (linear probing, backward-shift deletion). The root is not in the table.
 *  - Children of a directory: a B+tree per directory (cix_*, below) whose leaves keep an 8-byte prefix
 *    of each child's segment next to the pointer, so ordering rarely touches the child nodes.
 *  The hash is keyed by a per-tree random seed, so neither the table nor the expiry treap can be steered by
 *  chosen keys. No layout detail is observable (every output is in key order), so the state and
 *  tn_tree_serialize stay deterministic.
 *
 * Every write checks everything and allocates everything it needs before it mutates anything, so a
 * failure (including NOMEM) leaves the tree as it was. Deletes never allocate.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tree.h"

#include <malloc.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"

enum { NF_DIR = 1, NF_TEMP = 2, NF_SAME = 4 /* value node: update fields equal the create fields */ };
#define SEG_LEN_FAR 0xFFFFu /* segment too long for the u16: recompute with memrchr */
#define LIMIT_CAP ((size_t)1 << 30)

typedef struct tn_tree_node tn_tree_node;
typedef struct tn_temp tn_temp;

struct tn_tree_node {
    uint32_t hash; /* keyed hash of the full key; also the node's expiry-treap priority */
    uint8_t flags;
    uint8_t meta_len; /* value node: bytes of varint meta */
    uint16_t seg_len; /* length of the key's last segment, or SEG_LEN_FAR */
    uint8_t data[];
};

typedef struct tn_dir {
    void *children;  /* root of the children index (cix_*), NULL when empty */
    tn_tree_node *parent; /* NULL for the root */
    tn_temp *temp;
    uint64_t create_rev, update_rev;
    int64_t create_time, update_time;
    uint32_t key_len;
} tn_dir;

struct tn_temp {
    tn_temp *left, *right; /* expiry treap ordered by (expire_at, key) */
    tn_tree_node *node;
    uint64_t owner;
    int64_t ttl_ms, expire_at;
};

struct tn_tree {
    tn_tree_limits lim;
    uint64_t seed;
    tn_tree_node **slots; /* hash table, power-of-two size */
    uint8_t *tags;   /* per slot: 0 = empty, else tag_of(hash) */
    size_t mask;
    size_t used;
    tn_tree_node *root;
    tn_temp *temps; /* expiry treap root */
    size_t count;   /* nodes, root excluded */
    size_t mem;     /* malloc_usable_size of every allocation we own */
    struct tree_undo *undo; /* open transaction's undo log (tn_tree_txn_begin), else NULL */
};

static void undo_free(struct tree_undo *u);

/* Decoded fields of any node. */
typedef struct node_info {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    uint64_t create_rev, update_rev;
    int64_t create_time, update_time;
    tn_temp *temp;
} node_info;

/* ---- small helpers ------------------------------------------------------------------------------ */

static inline tn_dir *dir_of(const tn_tree_node *n) { return (tn_dir *)(void *)n->data; }
static inline int is_dir(const tn_tree_node *n) { return n->flags & NF_DIR; }

static void *tmalloc(tn_tree *t, size_t n)
{
    void *p = malloc(n);
    if (p) t->mem += malloc_usable_size(p);
    return p;
}

static void tfree(tn_tree *t, void *p)
{
    if (!p) return;
    t->mem -= malloc_usable_size(p);
    free(p);
}

/* Internal varints are ones we wrote ourselves: no bounds to check. */
static inline uint64_t get_varint(const uint8_t **pp)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
    }
    *pp = p;
    return v;
}

static inline uint64_t zz(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzz(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

static inline tn_temp *value_temp(const tn_tree_node *n)
{
    tn_temp *tp = NULL;
    if (n->flags & NF_TEMP) memcpy(&tp, n->data, sizeof tp);
    return tp;
}

static inline tn_temp *node_temp(const tn_tree_node *n) { return is_dir(n) ? dir_of(n)->temp : value_temp(n); }

static inline const uint8_t *node_key(const tn_tree_node *n, size_t *len)
{
    if (is_dir(n)) {
        *len = dir_of(n)->key_len;
        return n->data + sizeof(tn_dir);
    }
    const uint8_t *p = n->data + ((n->flags & NF_TEMP) ? sizeof(tn_temp *) : 0);
    const uint8_t *m = p;
    *len = (size_t)get_varint(&m);
    return p + n->meta_len;
}

static void node_decode(const tn_tree_node *n, node_info *ni)
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
    node_decode(n, &ni);
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

static size_t seg_len_of(const uint8_t *key, size_t len)
{
    if (len == 0) return 0;
    const uint8_t *dot = memrchr(key, '.', len);
    return dot ? len - (size_t)(dot - key) - 1 : len;
}

static inline const uint8_t *node_seg(const tn_tree_node *n, size_t *len)
{
    size_t kl;
    const uint8_t *k = node_key(n, &kl);
    size_t sl = n->seg_len != SEG_LEN_FAR ? n->seg_len : seg_len_of(k, kl);
    *len = sl;
    return k + kl - sl;
}

static inline int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* ---- hashing ------------------------------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

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
static uint32_t key_hash(uint64_t seed, const uint8_t *p, size_t n)
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

static size_t tab_index_of(const tn_tree *t, const tn_tree_node *n)
{
    size_t i = n->hash & t->mask;
    while (!t->tags[i] || t->slots[i] != n) i = (i + 1) & t->mask;
    return i;
}

static void tab_put(tn_tree_node **slots, uint8_t *tags, size_t mask, tn_tree_node *n)
{
    size_t i = n->hash & mask;
    while (tags[i]) i = (i + 1) & mask;
    slots[i] = n;
    tags[i] = tag_of(n->hash);
}

/* Makes room for `extra` more entries at a load factor <= 3/4. 0 or -1 (nothing changed). */
static int tab_reserve(tn_tree *t, size_t extra)
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
        if (t->tags[i]) tab_put(ns, ntags, ncap - 1, t->slots[i]);
    tfree(t, t->slots);
    tfree(t, t->tags);
    t->slots = ns;
    t->tags = ntags;
    t->mask = ncap - 1;
    return 0;
}

static void tab_delete(tn_tree *t, const tn_tree_node *n)
{
    size_t i = tab_index_of(t, n), j = i;
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
static tn_tree_node *find_h(const tn_tree *t, const uint8_t *key, size_t len, uint32_t *hash)
{
    if (len == 0) return t->root;
    uint32_t h = key_hash(t->seed, key, len);
    if (hash) *hash = h;
    tn_tree_node **s = tab_find(t, key, len, h);
    return s ? *s : NULL;
}

static tn_tree_node *find(const tn_tree *t, const uint8_t *key, size_t len) { return find_h(t, key, len, NULL); }

static tn_tree_node *parent_of(const tn_tree *t, const uint8_t *key, size_t len)
{
    const uint8_t *dot = memrchr(key, '.', len);
    return dot ? find(t, key, (size_t)(dot - key)) : t->root;
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
#define CIX_MAX 32
#define CIX_MIN (CIX_MAX / 4)
#define CIX_MAX_HEIGHT 64

typedef struct cix_hdr {
    uint16_t n; /* entries (leaf) or children (inner) */
    uint16_t leaf;
} cix_hdr;

typedef struct cix_leaf {
    cix_hdr h;
    struct cix_leaf *prev, *next;
    uint64_t pfx[CIX_MAX];
    tn_tree_node *node[CIX_MAX];
} cix_leaf;

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

static cix_leaf *cix_leftmost(void *n)
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

/* Slot holding node x (which must be in the index). */
static tn_tree_node **cix_slot(void *root, const tn_tree_node *x)
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
static int cix_insert(tn_tree *t, void **rootp, tn_tree_node *x)
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
static void cix_remove(tn_tree *t, void **rootp, const tn_tree_node *x)
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
static void cix_free(tn_tree *t, void *n)
{
    if (!n) return;
    if (!((cix_hdr *)n)->leaf) {
        cix_inner *in = n;
        for (int i = 0; i < in->h.n; i++) {
            if (i) tfree(t, in->sep[i]);
            cix_free(t, in->child[i]);
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

static void tt_insert(tn_tree *t, tn_temp *x)
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

static void tt_remove(tn_tree *t, tn_temp *x)
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

static tn_tree_node *build_value(tn_tree *t, uint32_t hash, const uint8_t *key, size_t klen, const uint8_t *val,
                            size_t vlen, uint64_t crev, int64_t ctime, uint64_t urev, int64_t utime,
                            tn_temp *temp)
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

static tn_tree_node *build_dir(tn_tree *t, uint32_t hash, const uint8_t *key, size_t klen, uint64_t crev,
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

static tn_temp *new_temp(tn_tree *t, uint64_t owner, int64_t ttl, int64_t expire_at)
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
static int link_new(tn_tree *t, tn_tree_node *parent, tn_tree_node *n)
{
    if (tab_reserve(t, 1) || cix_insert(t, &dir_of(parent)->children, n)) return TN_NOMEM;
    tab_put(t->slots, t->tags, t->mask, n);
    t->used++;
    if (is_dir(n)) dir_of(n)->parent = parent;
    tn_temp *tp = node_temp(n);
    if (tp) {
        tp->node = n;
        tt_insert(t, tp);
    }
    t->count++;
    return TN_SUCCESS;
}

/* Swaps a rebuilt value node in for `old` (same key) and frees `old`. The temp record, if any, is
 * shared and must already be referenced by `nw`; the caller handles its place in the expiry treap. */
static void replace_value(tn_tree *t, tn_tree_node *parent, tn_tree_node *old, tn_tree_node *nw)
{
    t->slots[tab_index_of(t, old)] = nw;
    *cix_slot(dir_of(parent)->children, old) = nw;
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
        tab_delete(t, n);
        tn_temp *tp = node_temp(n);
        if (tp) tt_remove(t, tp);
    }
    free_node(t, n);
}

/* Frees n (already unlinked from its parent's index) and its whole subtree; with `maintain`, also
 * removes each node from the table and the expiry treap. Allocates nothing: directories waiting to be
 * emptied are chained through their (no longer needed) parent pointers. */
static size_t destroy(tn_tree *t, tn_tree_node *n, int maintain)
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
        for (cix_leaf *lf = cix_leftmost(dir_of(d)->children); lf; lf = lf->next) {
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
        cix_free(t, dir_of(d)->children);
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
    t->root = build_dir(t, 0, NULL, 0, 0, 0, 0, 0, NULL);
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
    undo_free(t->undo);
    destroy(t, t->root, 0);
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

static int check_ttl(const tn_tree *t, int64_t ttl)
{
    return ttl <= 0 || ttl > t->lim.max_ttl_ms ? TN_INVALID_TTL : TN_SUCCESS;
}

/* Parent of a key about to be created: must exist and be a directory. */
static int parent_for_create(const tn_tree *t, const uint8_t *key, size_t len, tn_tree_node **out)
{
    tn_tree_node *p = parent_of(t, key, len);
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
    if (temp && !(tp = new_temp(t, ctx->owner, ttl, expiry_of(ctx, ttl)))) goto fail;
    n = dir ? build_dir(t, h, key, klen, ctx->index, ctx->time_ms, ctx->index, ctx->time_ms, tp)
            : build_value(t, h, key, klen, val, vlen, ctx->index, ctx->time_ms, ctx->index, ctx->time_ms, tp);
    if (!n || link_new(t, parent, n)) goto fail;
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
    node_decode(old, &ni);
    if (!val) {
        val = ni.value;
        vlen = ni.value_len;
    }
    tn_tree_node *parent = parent_of(t, ni.key, ni.key_len);
    if (!rewrite_in_place(old, &ni, val, vlen, ctx)) {
        tn_tree_node *nw = build_value(t, old->hash, ni.key, ni.key_len, val, vlen, ni.create_rev, ni.create_time,
                                  ctx->index, ctx->time_ms, ni.temp);
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
        tt_remove(t, tp);
        tp->ttl_ms = ttl;
        tp->expire_at = expiry_of(ctx, ttl);
        tt_insert(t, tp);
        tn_dir *d = dir_of(n);
        d->update_rev = ctx->index;
        d->update_time = ctx->time_ms;
        touch_ancestors(d->parent, ctx);
        return TN_SUCCESS;
    }
    node_info ni;
    node_decode(n, &ni);
    if (!val) {
        val = ni.value;
        vlen = ni.value_len;
    }
    tn_tree_node *parent = parent_of(t, ni.key, ni.key_len);
    tt_remove(t, tp); /* cannot fail; its place depends on expire_at, which changes below */
    if (!rewrite_in_place(n, &ni, val, vlen, ctx)) {
        tn_tree_node *nw = build_value(t, n->hash, ni.key, ni.key_len, val, vlen, ni.create_rev, ni.create_time,
                                  ctx->index, ctx->time_ms, tp);
        if (!nw) {
            tt_insert(t, tp); /* put it back: nothing changed */
            return TN_NOMEM;
        }
        replace_value(t, parent, n, nw);
    }
    tp->ttl_ms = ttl;
    tp->expire_at = expiry_of(ctx, ttl);
    tt_insert(t, tp);
    touch_ancestors(parent, ctx);
    return TN_SUCCESS;
}

/* Unlinks and frees n with its subtree; returns the number of nodes removed. */
static size_t remove_node(tn_tree *t, const tn_wctx *ctx, tn_tree_node *n, tn_tree_node *parent)
{
    cix_remove(t, &dir_of(parent)->children, n);
    size_t freed = destroy(t, n, 1);
    t->count -= freed;
    touch_ancestors(parent, ctx);
    return freed;
}

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
        node_decode(n, &ni);
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
static int undo_note(tn_tree *t, const uint8_t *key, size_t klen)
{
    tree_undo *u = t->undo;
    if (!u) return TN_SUCCESS;
    if (undo_image(u, find(t, key, klen), key, klen)) return TN_NOMEM;
    size_t len = klen;
    while (len > 0) {
        const uint8_t *dot = memrchr(key, '.', len);
        len = dot ? (size_t)(dot - key) : 0;
        tn_tree_node *a = find(t, key, len);
        if (a && undo_image(u, a, key, len)) return TN_NOMEM;
    }
    return TN_SUCCESS;
}

static int undo_restore(tn_tree *t, const tree_undo *u, const undo_rec *r)
{
    const uint8_t *key = u->bytes + r->key_off;
    uint32_t h = 0;
    tn_tree_node *cur = find_h(t, key, r->key_len, &h);
    if (r->key_len && !cur) h = key_hash(t->seed, key, r->key_len);
    if (cur && r->present && r->dir && is_dir(cur)) {
        tn_dir *d = dir_of(cur);
        d->create_rev = r->crev;
        d->update_rev = r->urev;
        d->create_time = r->ctime;
        d->update_time = r->utime;
        if (d->temp && r->temp) {
            tt_remove(t, d->temp);
            d->temp->owner = r->owner;
            d->temp->ttl_ms = r->ttl;
            d->temp->expire_at = r->expire_at;
            tt_insert(t, d->temp);
        }
        return TN_SUCCESS;
    }
    if (r->key_len == 0) return TN_INTERNAL; /* the root is always a directory */
    tn_tree_node *parent = parent_of(t, key, r->key_len);
    if (cur) {
        if (!parent || (is_dir(cur) && dir_of(cur)->children)) return TN_INTERNAL;
        cix_remove(t, &dir_of(parent)->children, cur);
        t->count -= destroy(t, cur, 1);
    }
    if (!r->present) return TN_SUCCESS;
    if (!parent || !is_dir(parent)) return TN_INTERNAL;
    tn_temp *tp = NULL;
    if (r->temp && !(tp = new_temp(t, r->owner, r->ttl, r->expire_at))) return TN_NOMEM;
    tn_tree_node *n = r->dir ? build_dir(t, h, key, r->key_len, r->crev, r->ctime, r->urev, r->utime, tp)
                        : build_value(t, h, key, r->key_len, u->bytes + r->val_off, r->val_len, r->crev,
                                      r->ctime, r->urev, r->utime, tp);
    if (!n || link_new(t, parent, n)) {
        if (n) tfree(t, n);
        tfree(t, tp);
        return TN_NOMEM;
    }
    return TN_SUCCESS;
}

static void undo_free(tree_undo *u)
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
    undo_free(t->undo);
    t->undo = NULL;
}

int tn_tree_txn_rollback(tn_tree *t)
{
    tree_undo *u = t->undo;
    int rc = TN_SUCCESS;
    if (!u) return TN_SUCCESS;
    t->undo = NULL; /* the restores below must not log themselves */
    for (size_t i = u->n; i-- > 0 && rc == TN_SUCCESS;) rc = undo_restore(t, u, &u->recs[i]);
    undo_free(u);
    return rc;
}

int tn_tree_txn_open(const tn_tree *t) { return t->undo != NULL; }

int tn_tree_put(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, const void *value,
                size_t value_len)
{
    int rc = tn_tree_check_key(t, key, key_len, 0);
    if (rc) return rc;
    if ((rc = undo_note(t, key, key_len))) return rc;
    if ((rc = check_value(t, value, value_len))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = find_h(t, key, key_len, &h);
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
    if ((rc = undo_note(t, key, key_len))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = find_h(t, key, key_len, &h);
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
    if ((rc = undo_note(t, key, key_len))) return rc;
    tn_tree_node *n = find(t, key, key_len);
    if (!n) return TN_NOT_FOUND;
    tn_temp *tp = node_temp(n);
    if (tp && tp->owner != ctx->owner) return TN_NOT_OWNER;
    if (is_dir(n) && dir_of(n)->children) return TN_HAS_CHILDREN;
    remove_node(t, ctx, n, parent_of(t, key, key_len));
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
    if ((rc = undo_note(t, key, key_len))) return rc;
    if (!del && (rc = check_value(t, new_value, new_len))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = find_h(t, key, key_len, &h);
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
    node_decode(n, &ni);
    if (ni.value_len != expect_len || memcmp(ni.value, expect, expect_len) != 0) return TN_CAS_MISMATCH;
    if (del) {
        remove_node(t, ctx, n, parent_of(t, key, key_len));
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
    if ((rc = undo_note(t, key, key_len))) return rc;
    if ((rc = check_value(t, value, value_len))) return rc;
    if ((rc = check_ttl(t, ttl_ms))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = find_h(t, key, key_len, &h);
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
    if ((rc = undo_note(t, key, key_len))) return rc;
    if ((rc = check_ttl(t, ttl_ms))) return rc;
    uint32_t h = 0;
    tn_tree_node *n = find_h(t, key, key_len, &h);
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
    if ((rc = undo_note(t, key, key_len))) return rc;
    if ((rc = check_ttl(t, ttl_ms))) return rc;
    tn_tree_node *n = find(t, key, key_len);
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
    if ((rc = undo_note(t, key, key_len))) return rc;
    tn_tree_node *n = find(t, key, key_len);
    if (!n) return TN_NOT_FOUND;
    tn_temp *tp = node_temp(n);
    if (!tp) return TN_NOT_TEMP_NODE;
    node_info ni;
    node_decode(n, &ni);
    if (ni.create_rev != expect_rev) return TN_TTL_INDEX_MISMATCH;
    if (tp->expire_at > ctx->time_ms) return TN_NOT_EXPIRED;
    if (t->undo && is_dir(n) && dir_of(n)->children) return TN_HAS_CHILDREN; /* no subtree undo */
    remove_node(t, ctx, n, parent_of(t, key, key_len));
    return TN_SUCCESS;
}

/* ---- reads -------------------------------------------------------------------------------------- */

int tn_tree_get(const tn_tree *t, const void *key, size_t key_len, tn_tree_node_view *out)
{
    int rc = tn_tree_check_key(t, key, key_len, 1);
    if (rc) return rc;
    tn_tree_node *n = find(t, key, key_len);
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
    tn_tree_node *d = find(t, dir, dir_len);
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
        skey k;
        skey_of_seg(&k, a + skip, after_len - skip);
        lf = cix_descend(root, &k, NULL, NULL, NULL);
        pos = leaf_bound(lf, &k, 1);
    } else {
        lf = cix_leftmost(root);
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
    const cix_leaf *first = cix_leftmost(dir_of(t->root)->children);
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
        const cix_leaf *sub = is_dir(n) ? cix_leftmost(dir_of(n)->children) : NULL;
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
        if (check_ttl(nt, ttl)) return TN_CLIENT_REQ_ERROR;
    }
    if (r->err || tn_tree_check_key(nt, keybuf, klen, 0)) return TN_CLIENT_REQ_ERROR;
    tn_tree_node *parent = parent_of(nt, keybuf, klen);
    if (!parent || !is_dir(parent) || find(nt, keybuf, klen)) return TN_CLIENT_REQ_ERROR;
    tn_temp *ptp = node_temp(parent);
    /* a temp directory holds only temp nodes of its owner (what the write rules allow) */
    if (ptp && (!(fl & IMG_TEMP) || owner != ptp->owner)) return TN_CLIENT_REQ_ERROR;
    tn_temp *tp = NULL;
    tn_tree_node *n = NULL;
    if ((fl & IMG_TEMP) && !(tp = new_temp(nt, owner, ttl, exp))) goto nomem;
    uint32_t h = key_hash(nt->seed, keybuf, klen);
    n = (fl & IMG_DIR) ? build_dir(nt, h, keybuf, klen, crev, ctime, urev, utime, tp)
                       : build_value(nt, h, keybuf, klen, val, vlen, crev, ctime, urev, utime, tp);
    if (!n || link_new(nt, parent, n)) goto nomem;
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
    if (tab_reserve(nt, (size_t)count)) goto done;
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
