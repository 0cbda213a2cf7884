/* sm.h — Tarn's deterministic state machine: applies commands (wire.h TN_KIND_CMD bytes, the payload of a
 * Raft log entry) to the DtKV tree and the collections (coll.h), and answers read requests.
 *
 * Determinism: tn_sm_apply's effect depends only on the sm's state, the index and the command bytes (time
 * and owner come from the command). Applying the same sequence gives byte-identical tn_sm_serialize output.
 *
 * Conditions: every write op may carry a cond (wire.h tn_cond_kind). ABSENT fails with VALUE_EXISTS or
 * DIR_EXISTS when the key exists; REV fails with NOT_FOUND when the node is gone and REVISION_MISMATCH when
 * its update revision differs. The check and the write happen in the same apply, so a conditional write is
 * atomic. A non-atomic request's ops are independent (each gets its own result, as DtKV's batches). An
 * atomic request (TN_REQF_ATOMIC, a transaction's commit) applies all of its ops or none, tree and
 * collection writes and KV_CHECK validations alike (raftnet/sm/atomic.h, tn_atomic_apply). tn_sm_apply returns
 * INTERNAL if an atomic request's rollback failed: the state machine must not be used any more.
 *
 * Results: each write op's result carries, on success, one entry: the node as it is after the write (so the
 * client learns the new revision); a remove's result has no entry. Reads return entries as wire.h says.
 *
 * Ownership: the sm owns its tree and collections. Response bytes are appended to the caller's tn_wr.
 * Thread: not thread-safe; callers serialise writes and may run reads concurrently only with no writer.
 */
#ifndef TARN_SM_H
#define TARN_SM_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "tree.h"
#include "wire.h"

typedef struct tn_sm tn_sm;

/* NULL on allocation failure. limits may be NULL (defaults). */
tn_sm *tn_sm_new(const tn_tree_limits *limits);
void tn_sm_free(tn_sm *sm);

/* Index of the last applied command (0 for a new state machine). */
uint64_t tn_sm_applied(const tn_sm *sm);

/* Applies the command at `index` (must be > tn_sm_applied) and appends the encoded response to out.
 * Returns SUCCESS when the command was applied (whatever the per-op results), BAD_REQUEST when the bytes do
 * not decode (nothing applied, applied index still advances: a replicated entry is consumed either way so
 * every replica stays in step), NOMEM. */
int tn_sm_apply(tn_sm *sm, uint64_t index, const void *cmd, size_t len, tn_wr *out);

/* Answers a read-only request (every op < 32) from the current state; appends the response to out.
 * Returns SUCCESS, BAD_REQUEST (a write op in it) or NOMEM. */
int tn_sm_read(const tn_sm *sm, const tn_req *req, tn_wr *out);

/* Sessions (exactly-once, raftnet/sm/session.h): a command whose request carries client_id != 0 and seq != 0
 * is applied at most once per (client_id, seq). A retry (seq == the session's last) is not applied again
 * and gets the stored response (with the retry's req_id); an older seq gets SESSION_EXPIRED, not applied.
 * Sessions idle for 10 minutes of command time are dropped (deterministically); the table is part of the
 * snapshot image. */
size_t tn_sm_session_count(const tn_sm *sm);


/* Builds the expiry request for temp nodes due at now_ms: one KV_EXPIRE op per node (at most `limit`),
 * each carrying the node's create revision, in a plain (non-atomic) request appended to out — the bytes a
 * leader proposes / the embedded engine applies. A node re-created or refreshed before the request is
 * applied makes its op fail harmlessly (TTL_INDEX_MISMATCH / NOT_EXPIRED). Returns SUCCESS, NOT_FOUND
 * (nothing due) or NOMEM. Caller holds the read lock. */
int tn_sm_expiry_request(const tn_sm *sm, int64_t now_ms, size_t limit, tn_wr *out);

/* The read-only view the embedded engine's expiry timer needs. */
const tn_tree *tn_sm_tree(const tn_sm *sm);

/* Appends a packed (LZ4 + CRC) image of the whole state to out / replaces the state with one. Loading checks
 * every bound; on failure the sm is unchanged. */
int tn_sm_snapshot_save(const tn_sm *sm, tn_wr *out);
int tn_sm_snapshot_load(tn_sm *sm, const void *img, size_t len);

#endif
