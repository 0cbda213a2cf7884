/* coll_int.h — internals shared by coll*.c (not a public contract: use coll.h).
 *
 * Rows are one malloc each: the crow header, the index values, the hash-bucket positions, then every
 * byte the row owns (pk bytes, index value bytes, payload). Index structures hold crow pointers only.
 *
 * Ordered indexes (and the pk index) are counted B+trees of row pointers ordered by (value, pk): inner
 * nodes keep, per child, its minimum row and its entry count, so the rank of any position and therefore
 * the exact number of rows in any range is O(log n). Leaves are doubly linked for scans both ways.
 * Next to each row pointer a node keeps an order-preserving 64-bit prefix of its key, so a descent
 * compares integers and only dereferences rows on prefix ties.
 * Deletion merges a node into a sibling when both fit in one; an insert never fails halfway (the nodes a
 * split may need are allocated before anything changes).
 *
 * Hash indexes are open-addressing tables (linear probing, backward-shift deletion) of
 * value -> bucket of row pointers; each row records its position in each bucket so removal is O(1).
 */
#ifndef TARN_COLL_INT_H
#define TARN_COLL_INT_H

#include "coll.h"

typedef struct crow {
    tn_val pk;
    uint64_t rev;
    const uint8_t *payload;
    uint32_t payload_len;
    tn_val idx[]; /* n_idx values, then uint32_t hpos[n_hash] */
} crow;

static inline uint32_t *crow_hpos(const crow *r, size_t n_idx)
{
    return (uint32_t *)(void *)((uint8_t *)(uintptr_t)r + sizeof(crow) + n_idx * sizeof(tn_val));
}

/* ---- counted B+tree ------------------------------------------------------------------------------ */
#ifndef BT_FAN /* overridable at compile time to measure other fanouts */
#define BT_FAN 64
#endif
#define BT_MAX_HEIGHT 16

typedef struct bt_leaf {
    uint16_t n;
    uint8_t leaf; /* 1 */
    struct bt_leaf *prev, *next;
    uint64_t k[BT_FAN]; /* bt_prefix of each entry's key */
    crow *e[BT_FAN];
} bt_leaf;

typedef struct bt_inner {
    uint16_t n;
    uint8_t leaf; /* 0 */
    uint32_t cnt[BT_FAN];
    void *child[BT_FAN];
    crow *min[BT_FAN];  /* first row of each child's subtree */
    uint64_t mk[BT_FAN]; /* its bt_prefix */
} bt_inner;

typedef struct bt {
    void *root;   /* a bt_leaf (maybe empty) or a bt_inner */
    int slot;     /* index slot whose value orders the tree; -1 = the pk tree */
    int height;   /* 1 = the root is a leaf */
    size_t count;
    size_t n_leaves, n_inners;
} bt;

typedef struct bt_cur {
    bt_leaf *leaf;
    int pos; /* valid when leaf && pos < leaf->n */
} bt_cur;

int tn_bt_init(bt *t, int slot); /* 0 or -1 (NOMEM) */
void tn_bt_destroy(bt *t);       /* frees nodes, not rows */
int tn_bt_insert(bt *t, crow *r); /* 0, or -1 on NOMEM (tree unchanged) */
int tn_bt_delete(bt *t, crow *r); /* 1 removed, 0 not found */
/* Positions at the first entry whose value is >= v (strict=0) or > v (strict=1); *rank (may be NULL)
 * receives the number of entries before that position. */
void tn_bt_seek(const bt *t, const tn_val *v, int strict, bt_cur *c, size_t *rank);
void tn_bt_first(const bt *t, bt_cur *c);
void tn_bt_last(const bt *t, bt_cur *c); /* invalid cursor when empty */
void tn_bt_end(const bt *t, bt_cur *c);  /* the position after the last entry (bt_prev reaches the last) */
static inline int bt_valid(const bt_cur *c) { return c->leaf && c->pos < c->leaf->n; }
static inline crow *bt_get(const bt_cur *c) { return c->leaf->e[c->pos]; }
void tn_bt_next(bt_cur *c);
void tn_bt_prev(bt_cur *c);
static inline const tn_val *bt_key(const bt *t, const crow *r) { return t->slot < 0 ? &r->pk : &r->idx[t->slot]; }
/* Checks every structural invariant (counts, mins, order, links); 0 ok, else the line that failed. */
int tn_bt_check(const bt *t);

/* ---- hash index ---------------------------------------------------------------------------------- */
typedef struct hentry {
    tn_val v; /* points at the value of some row in the bucket; type 0xff = empty slot */
    uint32_t n, cap; /* cap 0: the single row is in r.one */
    union {
        crow *one;
        crow **many;
    } r;
} hentry;

typedef struct hidx {
    hentry *t;
    size_t cap, used; /* cap is a power of two */
    int slot;         /* index slot */
    int hslot;        /* position in crow_hpos */
    size_t n_idx;     /* of the collection (to find hpos) */
} hidx;

#define HENTRY_EMPTY 0xff

int tn_hidx_init(hidx *h, int slot, int hslot, size_t n_idx);
void tn_hidx_destroy(hidx *h);
int tn_hidx_insert(hidx *h, crow *r); /* 0 or -1 (NOMEM, unchanged) */
void tn_hidx_delete(hidx *h, crow *r);
const hentry *tn_hidx_find(const hidx *h, const tn_val *v);
static inline crow *hentry_row(const hentry *e, size_t i) { return e->cap ? e->r.many[i] : e->r.one; }

/* ---- collections --------------------------------------------------------------------------------- */
typedef struct coll {
    uint8_t *name;
    size_t name_len;
    tn_coll_schema schema; /* owned: cols and names in one allocation (schema_mem) */
    void *schema_mem;
    size_t n_idx, n_hash;
    uint32_t *slot_col;  /* column of each slot */
    uint8_t *slot_role;  /* TN_R_HASH / TN_R_ORDERED */
    int *col_slot;       /* slot of each column or -1 */
    size_t pk_col;
    bt pk;
    bt *otree;   /* per slot (ordered slots only initialised) */
    hidx *hash;  /* per slot (hash slots only initialised) */
    uint64_t *distinct, *nulls; /* per slot, maintained incrementally (hash distinct = used) */
    uint64_t last_write, last_remove;
} coll;

/* Executor (coll_query.c). Decodes and runs one query payload against c. */
int tn_coll_query_run(const coll *c, uint64_t revision, tn_rd *r, tn_wr *out, char *msg, size_t cap,
                      const char **plan);
/* Validates predicates against c; CLIENT_REQ_ERROR with a message if one is unsupported. */
int tn_coll_preds_check(const coll *c, const tn_coll_pred *p, size_t n, char *msg, size_t cap);
/* RANGE_CHECK helper: 1 if any row matching the predicates has rev > rev. -1 NOMEM. */
int tn_coll_any_newer(const coll *c, const tn_coll_pred *p, size_t n, uint64_t rev);

#endif
