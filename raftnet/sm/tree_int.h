/* tree_int.h — internals shared by tree*.c (not a public contract: use tree.h).
 *
 * The DtKV tree is four files:
 *   tree.c        nodes (encoding, construction, linking), life cycle, key rules, writes and reads
 *   tree_index.c  the indexes over the nodes: key hash table, each directory's children B+tree (cix_*),
 *                 the expiry treap
 *   tree_undo.c   transactions: the undo log and rollback
 *   tree_image.c  the snapshot image (serialize / deserialize)
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
 *  - Children of a directory: a B+tree per directory (cix_*, tree_index.c) whose leaves keep an 8-byte
 *    prefix of each child's segment next to the pointer, so ordering rarely touches the child nodes.
 *  The hash is keyed by a per-tree random seed, so neither the table nor the expiry treap can be steered by
 *  chosen keys. No layout detail is observable (every output is in key order), so the state and
 *  tn_tree_serialize stay deterministic.
 *
 * Every write checks everything and allocates everything it needs before it mutates anything, so a
 * failure (including NOMEM) leaves the tree as it was. Deletes never allocate.
 */
#ifndef TARN_TREE_INT_H
#define TARN_TREE_INT_H

#include <malloc.h>
#include <string.h>

#include "tree.h"

enum { NF_DIR = 1, NF_TEMP = 2, NF_SAME = 4 /* value node: update fields equal the create fields */ };
#define SEG_LEN_FAR 0xFFFFu /* segment too long for the u16: recompute with memrchr */

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

static inline void *tmalloc(tn_tree *t, size_t n)
{
    void *p = malloc(n);
    if (p) t->mem += malloc_usable_size(p);
    return p;
}

static inline void tfree(tn_tree *t, void *p)
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

static inline size_t seg_len_of(const uint8_t *key, size_t len)
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

/* ---- children index: a B+tree per directory (tree_index.c has the details) ----------------------- *
 * The leaves are shared: the readers and tn_tree_destroy walk a directory's children along them. */
#define CIX_MAX 32

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

/* ---- tree.c: nodes ------------------------------------------------------------------------------ */

void tn_tree_node_decode(const tn_tree_node *n, node_info *ni);
/* New nodes, not linked yet; NULL on NOMEM. `temp` (may be NULL) is referenced, not copied. */
tn_tree_node *tn_tree_build_value(tn_tree *t, uint32_t hash, const uint8_t *key, size_t klen,
                                  const uint8_t *val, size_t vlen, uint64_t crev, int64_t ctime, uint64_t urev,
                                  int64_t utime, tn_temp *temp);
tn_tree_node *tn_tree_build_dir(tn_tree *t, uint32_t hash, const uint8_t *key, size_t klen, uint64_t crev,
                                int64_t ctime, uint64_t urev, int64_t utime, tn_temp *temp);
tn_temp *tn_tree_new_temp(tn_tree *t, uint64_t owner, int64_t ttl, int64_t expire_at);
/* Links n under dir `parent` (table, children index, expiry treap, count). SUCCESS, or NOMEM with
 * nothing changed. */
int tn_tree_link_new(tn_tree *t, tn_tree_node *parent, tn_tree_node *n);
/* Frees n (already unlinked from its parent's index) and its subtree; with `maintain`, also takes each
 * node out of the table and the expiry treap. Returns the number of nodes freed. Never allocates. */
size_t tn_tree_destroy(tn_tree *t, tn_tree_node *n, int maintain);
/* SUCCESS or INVALID_TTL (not in (0, lim.max_ttl_ms]). */
int tn_tree_check_ttl(const tn_tree *t, int64_t ttl);

/* ---- tree_index.c: key hash table, children index, expiry treap --------------------------------- */

uint32_t tn_tree_key_hash(uint64_t seed, const uint8_t *p, size_t n);
/* Node at key (the root for the empty key) or NULL; find_h also gives the key's hash in *hash (may be
 * NULL; not set for the root). parent_of: the node of the key's parent (NULL if absent). */
tn_tree_node *tn_tree_find_h(const tn_tree *t, const uint8_t *key, size_t len, uint32_t *hash);
tn_tree_node *tn_tree_find(const tn_tree *t, const uint8_t *key, size_t len);
tn_tree_node *tn_tree_parent_of(const tn_tree *t, const uint8_t *key, size_t len);
/* The table: slot of a node in it, insertion into a table with room, growth for `extra` more entries
 * (0, or -1 with nothing changed), deletion. */
size_t tn_tree_tab_index_of(const tn_tree *t, const tn_tree_node *n);
void tn_tree_tab_put(tn_tree_node **slots, uint8_t *tags, size_t mask, tn_tree_node *n);
int tn_tree_tab_reserve(tn_tree *t, size_t extra);
void tn_tree_tab_delete(tn_tree *t, const tn_tree_node *n);
/* A directory's children index, rooted at *rootp (NULL when empty). insert: 0, or -1 on NOMEM with the
 * index unchanged; remove never allocates; free releases the index, not the nodes. */
int tn_tree_cix_insert(tn_tree *t, void **rootp, tn_tree_node *x);
void tn_tree_cix_remove(tn_tree *t, void **rootp, const tn_tree_node *x);
void tn_tree_cix_free(tn_tree *t, void *n);
tn_tree_node **tn_tree_cix_slot(void *root, const tn_tree_node *x);
cix_leaf *tn_tree_cix_leftmost(void *n); /* NULL when empty */
cix_leaf *tn_tree_cix_after(void *root, const uint8_t *seg, size_t len, int *pos);
/* The expiry treap, ordered by (expire_at, key). */
void tn_tree_tt_insert(tn_tree *t, tn_temp *x);
void tn_tree_tt_remove(tn_tree *t, tn_temp *x);

/* ---- tree_undo.c: transactions ------------------------------------------------------------------ */

/* Inside a transaction, records the images of key and its existing ancestors before a write (no-op
 * without one). SUCCESS or NOMEM. */
int tn_tree_undo_note(tn_tree *t, const uint8_t *key, size_t klen);
void tn_tree_undo_free(struct tree_undo *u); /* NULL is a no-op */

#endif
