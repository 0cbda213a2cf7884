/* tree.h — the DtKV hierarchical store: the heart of Tarn's state machine.
 *
 * Keys are '.'-separated paths ("users.alice.name"); the empty key is the root directory, which always
 * exists. A node is a value or a directory. Rules (docs/design.md §2): key <= limits.max_key bytes (8 KiB),
 * value <= limits.max_value (1 MiB), no leading/trailing '.', no empty segment, value non-empty; the parent
 * must exist and be a directory. Every node records create/update revision and time; both come from the
 * tn_wctx of the command that made the change — never from a clock — so that applying the same commands
 * gives byte-identical state on every replica. A write to a node also sets the update revision and time of
 * each of its ancestors (directories), as DtKV does.
 *
 * Temp nodes / temp directories carry a TTL and an owner (the client session id in tn_wctx.owner). Only the
 * owner may change or remove them. Their expiry instant is ctx.time_ms + ttl_ms of the command that set the
 * TTL. Expiry is itself a command (tn_tree_expire) carrying the revision the expirer saw, so every replica
 * expires the same node at the same point of the log. An expiring temp directory takes its subtree with it.
 *
 * Ownership: the tree owns copies of every key and value given to it. tn_tree_node_view fields point INTO the
 * tree and stay valid only until the next write to the tree (callers hold the engine's lock).
 *
 * Complexity: get is O(1) expected (hash of the full key); list of one directory walks that directory's
 * children in key order (bytewise memcmp of the child's own segment) in O(log n + k).
 *
 * Thread: not thread-safe. One writer at a time; concurrent readers only with no writer (the caller's
 * rwlock). Every function returns a tn_code (see tn_code.h); TN_NOMEM on allocation failure leaves the
 * tree unchanged.
 */
#ifndef TARN_TREE_H
#define TARN_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "tn_code.h"

#define TN_TREE_MAX_KEY_DEFAULT (8u * 1024u)
#define TN_TREE_MAX_VALUE_DEFAULT (1024u * 1024u)
#define TN_TREE_MAX_TTL_MS_DEFAULT (100LL * 365 * 24 * 3600 * 1000)

typedef struct tn_tree tn_tree;

typedef struct tn_tree_limits {
    size_t max_key;     /* bytes, inclusive; 0 means TN_TREE_MAX_KEY_DEFAULT */
    size_t max_value;   /* bytes, inclusive; 0 means TN_TREE_MAX_VALUE_DEFAULT */
    int64_t max_ttl_ms; /* inclusive; 0 means TN_TREE_MAX_TTL_MS_DEFAULT */
} tn_tree_limits;

/* Context of one write: everything that would otherwise come from the environment. */
typedef struct tn_wctx {
    uint64_t index;  /* revision: the Raft index (or engine sequence) of the command; strictly increasing */
    int64_t time_ms; /* the leader's timestamp stored in the command (ms since the epoch) */
    uint64_t owner;  /* the client session issuing the command; 0 = none (system) */
} tn_wctx;

typedef struct tn_tree_node_view {
    const uint8_t *key; /* full path; for the root, key_len == 0 */
    size_t key_len;
    const uint8_t *value; /* NULL for a directory */
    size_t value_len;
    int is_dir;
    uint64_t create_rev, update_rev;
    int64_t create_time, update_time;
    uint64_t owner;    /* 0 unless temp */
    int64_t ttl_ms;    /* 0 unless temp */
    int64_t expire_at; /* ms since the epoch; 0 unless temp */
} tn_tree_node_view;

/* Returns a new tree holding only the root directory, or NULL when out of memory. limits may be NULL. */
tn_tree *tn_tree_new(const tn_tree_limits *limits);
void tn_tree_free(tn_tree *t); /* NULL is a no-op */

/* Number of nodes, root excluded. */
size_t tn_tree_count(const tn_tree *t);

/* ---- writes: each returns a tn_code; on any failure the tree is unchanged ---------------------- */

/* Creates or overwrites a value. SUCCESS (created) or SUCCESS_OVERWRITE. A directory at key gives
 * DIR_EXISTS; a temp node at key gives IS_TEMP_NODE (use tn_tree_put_temp); a plain node under a temp
 * directory gives UNDER_TEMP_DIR. */
int tn_tree_put(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, const void *value,
                size_t value_len);

/* Creates a directory. DIR_EXISTS if one is there, VALUE_EXISTS if a value is there. */
int tn_tree_mkdir(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len);

/* Removes a value or an empty directory. NOT_FOUND, HAS_CHILDREN, NOT_OWNER (temp node of another
 * session). The root cannot be removed (INVALID_KEY). */
int tn_tree_remove(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len);

/* Compare-and-set. expect == NULL: the key must be absent. new_value == NULL: delete on match.
 * CAS_MISMATCH when the expectation fails; DIR_EXISTS when key is a directory. */
int tn_tree_cas(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, const void *expect,
                size_t expect_len, const void *new_value, size_t new_len);

/* Creates or updates a temp value owned by ctx->owner, expiring at ctx->time_ms + ttl_ms. */
int tn_tree_put_temp(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, const void *value,
                     size_t value_len, int64_t ttl_ms);

/* Creates a temp directory owned by ctx->owner; its subtree goes when it expires. */
int tn_tree_mkdir_temp(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, int64_t ttl_ms);

/* Sets a temp node's TTL to ttl_ms from ctx->time_ms. NOT_TEMP_NODE, NOT_OWNER, INVALID_TTL. */
int tn_tree_update_ttl(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, int64_t ttl_ms);

/* Expires a temp node (and its subtree). expect_rev is the node's create revision as the expirer saw it:
 * TTL_INDEX_MISMATCH if the node now at key was created at another revision, NOT_EXPIRED if its expiry
 * instant is after ctx->time_ms, NOT_TEMP_NODE, NOT_FOUND. Ownership is not checked (the system expires). */
int tn_tree_expire(tn_tree *t, const tn_wctx *ctx, const void *key, size_t key_len, uint64_t expect_rev);

/* ---- transactions (undo log) -------------------------------------------------------------------
 * Between tn_tree_txn_begin and tn_tree_txn_commit / tn_tree_txn_rollback every write function above
 * first logs the prior image of its key and of the key's ancestors; rollback restores them all, so the
 * tree (values, directories, revisions, times, temp records and expiry order) is exactly as it was at
 * begin. Used by atomic requests (raftnet/sm/atomic.h). Not nestable. Inside a transaction
 * tn_tree_expire of a directory that still has children is refused with HAS_CHILDREN (its subtree is not
 * logged). Node views, counts and reads behave as usual while a transaction is open. Do not call
 * tn_tree_deserialize while one is open. */

/* SUCCESS, INTERNAL (already open) or NOMEM. */
int tn_tree_txn_begin(tn_tree *t);
/* Keeps every write since begin and drops the log. No-op without a transaction. */
void tn_tree_txn_commit(tn_tree *t);
/* Undoes every write since begin. SUCCESS; NOMEM or INTERNAL only if the tree could not be restored
 * (allocation failure while rebuilding a node): the tree is then inconsistent and the caller must stop
 * (a state machine must not diverge). No-op without a transaction. */
int tn_tree_txn_rollback(tn_tree *t);
/* 1 while a transaction is open. */
int tn_tree_txn_open(const tn_tree *t);

/* ---- reads -------------------------------------------------------------------------------------- */

/* Validates a key against the rules and limits without touching the tree: SUCCESS, INVALID_KEY,
 * KEY_TOO_LONG. allow_root says whether the empty key is acceptable. */
int tn_tree_check_key(const tn_tree *t, const void *key, size_t key_len, int allow_root);

/* SUCCESS and *out filled, NOT_FOUND, or a key error. */
int tn_tree_get(const tn_tree *t, const void *key, size_t key_len, tn_tree_node_view *out);

/* Calls cb for each child of directory `dir` in key order, starting strictly after the child whose full
 * key is `after` (NULL = from the first), stopping after `limit` children (0 = all) or when cb returns
 * non-zero. Returns SUCCESS, NOT_FOUND (no such node), PARENT_NOT_DIR (dir is a value), or a key error. */
typedef int (*tn_tree_visit)(void *arg, const tn_tree_node_view *node);
int tn_tree_list(const tn_tree *t, const void *dir, size_t dir_len, const void *after, size_t after_len,
                 size_t limit, tn_tree_visit cb, void *arg);

/* Depth-first pre-order walk of the whole tree (root excluded), children in key order: a directory comes
 * before its subtree. Stops when cb returns non-zero. */
int tn_tree_walk(const tn_tree *t, tn_tree_visit cb, void *arg);

/* Calls cb for every temp node whose expire_at <= now_ms, in expire_at order, at most `limit` (0 = all),
 * without changing anything: the caller issues tn_tree_expire commands for them. */
int tn_tree_due(const tn_tree *t, int64_t now_ms, size_t limit, tn_tree_visit cb, void *arg);

/* ---- snapshot ----------------------------------------------------------------------------------- */

/* Appends a deterministic serialisation of the whole tree to w (same state => same bytes). Raw, not
 * compressed: tn_snapshot_pack (snapshot.h) adds LZ4 and the checksum. SUCCESS or NOMEM. */
int tn_tree_serialize(const tn_tree *t, tn_wr *w);

/* Replaces the content of t with the image; on failure (CLIENT_REQ_ERROR for a malformed image, NOMEM) t is
 * unchanged. The decoder checks every bound. */
int tn_tree_deserialize(tn_tree *t, const void *image, size_t len);

/* Bytes of heap the tree uses (for the memory-per-node benchmark). */
size_t tn_tree_memory(const tn_tree *t);

#endif
