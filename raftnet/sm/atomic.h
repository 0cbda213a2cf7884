/* atomic.h — all-or-nothing apply of one atomic request (TN_REQF_ATOMIC): a transaction's commit.
 *
 * One Raft entry may carry tree writes (PUT, MKDIR, REMOVE, CAS, PUT_TEMP, MKDIR_TEMP, UPDATE_TTL, each
 * with its cond), tree read validations (KV_CHECK: cond ABSENT or REV on a key; a directory's update_rev
 * changes whenever anything below it changes, so a REV check on a directory also guards its listing
 * against phantoms) and collection writes (COLL_WRITE, whose ROWS payloads carry CHECK / RANGE_CHECK row
 * ops). Ops apply in request order and each sees the effects of the earlier ones. The first failing op
 * stops the request: every change made so far (tree: tn_tree_txn_*, collections: tn_colls_txn_*) is
 * undone, so no replica ever shows part of it.
 *
 * Response (appended to out, same shape as a non-atomic one): overall code SUCCESS and one result per
 * op. On success each op reports its own code; tree writes other than REMOVE carry the node as it is
 * now, COLL_WRITE ops carry their wresult blob. On failure the failing op reports its own code (and its
 * blob for COLL_WRITE, which names the row), every other op reports TXN_CONFLICT without entries.
 * A request holding an op that may not be part of a transaction (reads, EXPIRE, ADMIN, STATUS) is
 * refused whole with BAD_REQUEST before anything is applied.
 *
 * Returns SUCCESS (a response was written, whatever it says), NOMEM (out ran out of memory; nothing was
 * applied), or INTERNAL when a rollback could not restore the tree (allocation failure while rebuilding
 * a node): the state is then inconsistent and the caller must stop the state machine.
 * Thread: the state machine's writer (the caller holds its lock).
 */
#ifndef TARN_ATOMIC_H
#define TARN_ATOMIC_H

#include "coll.h"
#include "tree.h"
#include "wire.h"

int tn_atomic_apply(tn_tree *tree, tn_colls *colls, const tn_wctx *ctx, const tn_req *req, tn_wr *out);

/* Applies one tree op (PUT, MKDIR, REMOVE, CAS, PUT_TEMP, MKDIR_TEMP, UPDATE_TTL, EXPIRE, KV_CHECK) after
 * checking its cond (ABSENT: VALUE_EXISTS / DIR_EXISTS when the key exists; REV: NOT_FOUND or
 * REVISION_MISMATCH unless the node's update_rev equals cond_rev), in one step, so a conditional write is
 * atomic. Returns the op's tn_code; CLIENT_REQ_ERROR for any other opcode. Used for atomic requests above
 * and, one op at a time, for ordinary ones by sm.c. */
int tn_tree_apply_op(tn_tree *tree, const tn_wctx *ctx, const tn_op *op);

#endif
