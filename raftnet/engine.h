/* engine.h — the embedded engine: a Tarn store inside the calling process, reached only through the wire
 * protocol (request bytes in, response bytes out), exactly as a remote cluster is.
 *
 * Engines are named. tn_engine_open returns the process's engine of that name, creating it on first use,
 * so every connection of the process that names the same engine shares one store; the last tn_engine_close
 * destroys it. This process-wide registry is the one deliberate global in Tarn: sharing across connections
 * is the engine's purpose. It is guarded by its own mutex.
 *
 * Writes are turned into commands (wire.h TN_KIND_CMD: the request bytes plus the engine's timestamp and the
 * caller's session as owner) and applied in order with consecutive indexes — the same bytes a Raft entry
 * will carry. Reads run under a shared lock and see every write that returned before they started
 * (linearizable within the process).
 *
 * A timer thread per engine expires due temp nodes by issuing KV_EXPIRE commands carrying the node's create
 * revision, so a temp node is gone within about TN_ENGINE_EXPIRY_TICK_MS of its TTL.
 *
 * Thread: every function may be called from any thread; tn_engine_call runs concurrently with itself.
 */
#ifndef TARN_ENGINE_H
#define TARN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define TN_ENGINE_EXPIRY_TICK_MS 20
#define TN_ENGINE_SNAPSHOT_EVERY 100000 /* persistent engines: snapshot + log compaction period (writes) */

typedef struct tn_engine tn_engine;

/* Opens (or attaches to) the engine `name` (NUL-terminated, any bytes). Returns SUCCESS and *out, or NOMEM.
 * Each successful open must be matched by one tn_engine_close. */
int tn_engine_open(const char *name, tn_engine **out);
void tn_engine_close(tn_engine *e);

/* Like tn_engine_open, but the engine is PERSISTENT when data_dir is not NULL: every write command is
 * appended to a segment log in data_dir/log (raftnet/logstore.h) and tn_engine_call returns only once it is
 * durable (fdatasync; concurrent writers share syncs — group commit); every TN_ENGINE_SNAPSHOT_EVERY writes
 * the state is saved to data_dir/snap (raftnet/snapfile.h) and the log compacted. Opening recovers: the
 * newest snapshot, then the log after it (a torn tail is cut, corruption refuses to open). The log's
 * entries are the same command bytes a Raft log carries (term 1). A write whose log write or sync fails
 * gets IO_ERROR and the engine refuses every later write (fail-stop: reopen after fixing the disk).
 * Reads may see a write a moment before its caller gets the answer (before it is durable).
 * An engine name is bound to its data_dir while open: opening it with another one is BAD_REQUEST.
 * Results: SUCCESS, NOMEM, BAD_REQUEST, IO_ERROR (err, if given, names the file and offset).
 * tn_engine_open(name, out) == tn_engine_open_dir(name, NULL, out, NULL, 0). */
int tn_engine_open_dir(const char *name, const char *data_dir, tn_engine **out, char *err, size_t errlen);

/* Persistent engines: snapshot + log compaction now. SUCCESS, IO_ERROR, BAD_REQUEST (in-memory engine). */
int tn_engine_snapshot(tn_engine *e);

/* A new session id, unique within the engine (never 0): the owner of temp nodes a client creates. */
uint64_t tn_engine_new_session(tn_engine *e);

/* Executes one encoded request on behalf of session `session` and appends the encoded response to out.
 * Returns SUCCESS when a response was produced (the response carries per-op and overall codes, including
 * BAD_REQUEST for undecodable bytes), NOMEM otherwise. */
int tn_engine_call(tn_engine *e, uint64_t session, const void *req, size_t len, tn_wr *out);

/* Index of the last applied write (the store's revision). */
uint64_t tn_engine_revision(tn_engine *e);

#endif
