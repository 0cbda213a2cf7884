/* coll.h — the server side of Cachalot-style typed collections: the store of rows with hash and ordered
 * (counted B+tree) indexes, statistics, the query executor, conditional writes, multi-op transactions and
 * a deterministic snapshot image. The model, the payload formats and the client's codecs are in
 * proto/coll_codec.h; this store decodes what those encode.
 *
 * Not thread-safe: the state machine (sm.c) owns a tn_colls and serialises every call.
 */
#ifndef TARN_COLL_H
#define TARN_COLL_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "coll_codec.h"
#include "tn_code.h"
#include "tree.h" /* tn_wctx */

/* ---- the store (server side) --------------------------------------------------------------------- */
typedef struct tn_colls tn_colls;

tn_colls *tn_colls_new(void); /* NULL when out of memory */
void tn_colls_free(tn_colls *c); /* NULL is a no-op; an open transaction is discarded (rolled back) */

/* Applies one write payload to collection `name`; appends a wresult to out. Returns the overall code
 * (the same as in the wresult): SUCCESS / SUCCESS_OVERWRITE, a row/collection error, CLIENT_REQ_ERROR
 * (malformed payload: nothing applied), NOMEM (nothing applied — also when out ran out of memory, in
 * which case out->oom is set and its content is not a valid wresult). */
int tn_colls_write(tn_colls *c, const tn_wctx *ctx, const void *name, size_t name_len, const void *payload,
                   size_t len, tn_wr *out);

/* Answers one query payload; appends a qresult (with `revision`, the state's applied index) to out.
 * Returns its code: SUCCESS, NO_SUCH_COLLECTION, CLIENT_REQ_ERROR (malformed / unsupported predicate),
 * NOMEM. plan (may be NULL) receives the access path chosen, a static string: "pk", "hash",
 * "ordered", "intersect", "order-walk", "scan", "empty" (for tests and EXPLAIN). */
int tn_colls_read(const tn_colls *c, uint64_t revision, const void *name, size_t name_len,
                  const void *payload, size_t len, tn_wr *out, const char **plan);

/* Multi-op transactions (one Raft entry with several COLL_WRITE ops, maybe mixed with tree ops): begin,
 * then tn_colls_write calls, then commit (keep) or rollback (undo every write since begin, including
 * created/dropped collections). Not nestable: begin while open returns INTERNAL. */
int tn_colls_txn_begin(tn_colls *c);
void tn_colls_txn_commit(tn_colls *c);
void tn_colls_txn_rollback(tn_colls *c);

/* Appends a deterministic image of every collection. SUCCESS, NOMEM, INTERNAL (transaction open). */
int tn_colls_serialize(const tn_colls *c, tn_wr *w);
/* Replaces the content with the image (indexes rebuilt). CLIENT_REQ_ERROR (malformed) or NOMEM leave
 * c unchanged. */
int tn_colls_deserialize(tn_colls *c, const void *image, size_t len);

/* Introspection for tests, benchmarks and the state machine. */
size_t tn_colls_count(const tn_colls *c);                 /* number of collections */
size_t tn_colls_memory(const tn_colls *c);                /* heap bytes (approximate, all structures) */
/* Row count of a collection, or -1 if absent. */
int64_t tn_colls_rows(const tn_colls *c, const void *name, size_t name_len);
/* Statistics of a collection (st->idx malloc'd; free with tn_coll_stats_clear, coll_codec.h). SUCCESS,
 * NO_SUCH_COLLECTION, NOMEM. */
int tn_colls_stats(const tn_colls *c, const void *name, size_t name_len, tn_coll_stats *st);
/* Verifies every internal invariant (tree order, counts and minima, leaf links, hash buckets and row
 * positions, statistics recomputed from scratch). 0 if all hold, else a non-zero code locating the
 * failure. O(n); for tests. */
int tn_colls_check(const tn_colls *c);

#endif
