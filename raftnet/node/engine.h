/* engine.h — the embedded engine: a Tarn store inside the calling process, reached only through the wire
 * protocol (request bytes in, response bytes out), exactly as a remote cluster is. It IS a raftnet node
 * (node.h) running alone: one voter, no transport, the daemon's loop thread, log store, snapshots, sessions
 * and TTL expiry — one code path for embedded and clustered.
 *
 * Engines are named. tn_engine_open returns the process's engine of that name, creating it on first use,
 * so every connection of the process that names the same engine shares one store; the last tn_engine_close
 * destroys it. This process-wide registry is the one deliberate global in Tarn: sharing across connections
 * is the engine's purpose. It is guarded by its own mutex.
 *
 * Writes go to the node (tn_node_submit: run on the caller's thread under the node's loop lock), which proposes
 * them as commands (wire.h TN_KIND_CMD: the request bytes plus the leader's timestamp and the owner: the
 * request's client_id, else the caller's session) and answers once they are applied; revisions are Raft indexes
 * (the first write after an open follows the leader's no-op entry). A request carrying (client_id, seq) is
 * applied at most once, as in a cluster. Reads run on the caller's thread under a shared lock on the state
 * machine and see every write that returned before they started (linearizable within the process).
 *
 * The node (as leader) expires due temp nodes every 50 ms by proposing KV_EXPIRE commands carrying the
 * node's create revision, so a temp node is gone within about 60 ms of its TTL.
 *
 * Thread: every function may be called from any thread; tn_engine_call runs concurrently with itself.
 */
#ifndef TARN_ENGINE_H
#define TARN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define TN_ENGINE_SNAPSHOT_EVERY 100000 /* persistent engines: snapshot + log compaction period (writes) */

typedef struct tn_engine tn_engine;

/* Opens (or attaches to) the engine `name` (NUL-terminated, any bytes). Returns SUCCESS and *out, or NOMEM.
 * Each successful open must be matched by one tn_engine_close. */
int tn_engine_open(const char *name, tn_engine **out);
void tn_engine_close(tn_engine *e);

/* Like tn_engine_open, but the engine is PERSISTENT when data_dir is not NULL: its node keeps the daemon's
 * data directory layout (node.h: hardstate, log/, snap/; the log directory is flock'ed, so a second process
 * gets a clear error) and a write returns only once its entry is durable (the disk thread's fdatasync;
 * concurrent writers share syncs — group commit); every TN_ENGINE_SNAPSHOT_EVERY entries a fork()ed child
 * saves the state to data_dir/snap and the log is compacted. Opening recovers: the newest snapshot, then the
 * log after it (a torn tail is cut, corruption refuses to open). A log write or sync failure stops the node
 * (fail-stop): that write and every later request get IO_ERROR; reopen after fixing the disk. Reads see only
 * applied, hence durable, writes. In memory (data_dir NULL) nothing touches the disk.
 * An engine name is bound to its data_dir while open: opening it with another one is BAD_REQUEST.
 * Results: SUCCESS, NOMEM, BAD_REQUEST, IO_ERROR (err, if given, names the file and offset).
 * tn_engine_open(name, out) == tn_engine_open_dir(name, NULL, out, NULL, 0). */
int tn_engine_open_dir(const char *name, const char *data_dir, tn_engine **out, char *err, size_t errlen);

/* Persistent engines: snapshot + log compaction now (on the node's loop thread; returns once the snapshot
 * file is durable). SUCCESS, IO_ERROR, BAD_REQUEST (in-memory engine). */
int tn_engine_snapshot(tn_engine *e);

/* A new session id, unique within the engine (never 0): the owner of temp nodes a client creates. */
uint64_t tn_engine_new_session(tn_engine *e);

/* Executes one encoded request on behalf of session `session` and appends the encoded response to out.
 * Returns SUCCESS when a response was produced (the response carries per-op and overall codes, including
 * BAD_REQUEST for undecodable bytes), NOMEM otherwise. */
int tn_engine_call(tn_engine *e, uint64_t session, const void *req, size_t len, tn_wr *out);

/* Index of the last applied write (the store's revision). */
uint64_t tn_engine_revision(tn_engine *e);

/* First log index the engine's Raft core still holds in memory (tests: the log is compacted). */
uint64_t tn_engine_log_first_index(tn_engine *e);

#endif
