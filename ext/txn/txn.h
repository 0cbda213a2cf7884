/* txn.h — the client-side transaction of Tarn's tables: write buffer, read set and commit.
 *
 * What it owns. Writes to `tarn` (collection) and `tarn_kv` (tree) tables are not sent when they are
 * made: they are appended to the tn_txn of the client (target) the table uses — collection writes as
 * coll_codec.h row ops, tree writes as wire ops — in statement order. One tn_txn exists per (SQLite connection,
 * tn_client): every table of the connection that talks to the same store shares it, so a transaction
 * touching several tables of both kinds commits as ONE request. The read set remembers what the
 * transaction read from the store: tree keys with the update revision seen (or "absent"), directories
 * listed (their update revision: it moves whenever anything below changes), collection rows by pk with
 * their revision (or "absent") and range queries (RANGE_CHECK with the revision of the answer).
 *
 * Commit (tn_txn_commit, called from the first xSync of any participating table) sends one request with
 * flag TN_REQF_ATOMIC, applied all-or-nothing by the state machine (raftnet/sm/atomic.h):
 *   KV_CHECK per tree read, then the tree writes in order, then per collection one TN_OP_COLL_WRITE
 *   (more when above TN_COLL_MAX_ROW_OPS row ops) whose atomic ROWS payload holds the collection's read
 *   checks (CHECK / RANGE_CHECK) first, then its buffered row ops in order.
 * Checks go first because they must see the store as it was read, not the transaction's own writes.
 * A transaction that wrote nothing sends nothing (see docs/transactions.md: read-only transactions).
 *
 * Table ids. A collection gets an id from tn_txn_collection; tree tables all share TN_TXN_KV.
 *
 * Registry. tn_txn_registry maps a tn_client to its tn_txn (reference-counted: each table holding the
 * buffer holds one reference). The registry itself is reference-counted and shared by the `tarn` and
 * `tarn_kv` modules of one connection (created by tn_coll_register); it holds a reference to the tn_conn.
 *
 * Row state. Per (table, key) the buffer tracks what the buffered ops did (present / absent, written or
 * only checked) and which op wrote it last, so reads can merge the buffered rows (read-your-writes) and
 * INSERT OR IGNORE / OR FAIL can decide without a read when the row was touched earlier.
 *
 * Savepoints. tn_txn_savepoint(n) marks the buffer; tn_txn_rollback_to(n) drops every write appended
 * after mark n; tn_txn_release_savepoint(n) forgets marks >= n. Levels are SQLite's (xSavepoint's
 * iSavepoint), shared by every table of the buffer. Reads are never dropped (a read that no longer
 * matters can only cause a spurious conflict, never a lost one).
 *
 * Errors: functions return tn_code values unless stated; tn_txn_commit returns an SQLite code and a
 * message. Memory via sqlite3_malloc / malloc (codec buffers).
 * Thread: the connection's thread.
 */
#ifndef TARN_TXN_H
#define TARN_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "coll_codec.h"
#include "conn.h"
#include "wire.h"

#define TN_TXN_KV UINT32_MAX /* table id of the tree (tarn_kv tables) */

typedef struct tn_txn tn_txn;

typedef struct tn_txn_registry {
    int refs;
    tn_conn *conn; /* retained */
    struct tn_txn *head;
} tn_txn_registry;

/* A registry holding one reference (and one on conn), or NULL (out of memory). */
tn_txn_registry *tn_txn_registry_new(tn_conn *conn);
void tn_txn_registry_retain(tn_txn_registry *reg);
/* Drops a reference (signature of an SQLite destructor); the last frees every buffer still registered. */
void tn_txn_registry_unref(void *reg);

/* The buffer of `client` (created on first use). SUCCESS or NOMEM. */
int tn_txn_acquire(tn_txn_registry *reg, tn_client *client, tn_txn **out);
void tn_txn_release(tn_txn_registry *reg, tn_txn *t);

/* Id of collection `name` inside this buffer (registered on first use); pk_name is used in messages.
 * SUCCESS or NOMEM. */
int tn_txn_collection(tn_txn *t, const char *name, const char *pk_name, uint32_t *id);

enum tn_txn_row_state {
    TN_TXN_ROW_UNKNOWN = 0, /* not touched by this transaction */
    TN_TXN_ROW_PRESENT = 1, /* exists once the buffer is applied */
    TN_TXN_ROW_ABSENT = 2,  /* does not exist once the buffer is applied */
};
/* State of row pk of collection coll after the buffered ops; *written (may be NULL) is set to 1 when a
 * buffered op changes the row (insert, upsert, update, delete), 0 when it is only checked or untouched. */
int tn_txn_row_state(const tn_txn *t, uint32_t coll, const tn_val *pk, int *written);

/* Appends one row op of collection coll. SUCCESS, NOMEM, TOO_LARGE (the buffer would exceed what one
 * request may carry), CLIENT_REQ_ERROR (op above coll_codec.h limits). */
int tn_txn_add(tn_txn *t, uint32_t coll, const tn_coll_row_op *op);

/* Appends one tree write (PUT, MKDIR, REMOVE, PUT_TEMP, MKDIR_TEMP, UPDATE_TTL with its cond).
 * SUCCESS, NOMEM, TOO_LARGE, CLIENT_REQ_ERROR (another opcode). */
int tn_txn_kv_add(tn_txn *t, const tn_op *op);

/* Buffered state of tree key: TN_TXN_ROW_UNKNOWN (not written by the transaction), ABSENT (removed) or
 * PRESENT with *is_dir, *value (NULL for a directory; points into the buffer, valid until the next
 * change of the buffer), *ttl_ms (0 unless temp). Pointers may be NULL. */
int tn_txn_kv_state(const tn_txn *t, const uint8_t *key, size_t key_len, int *is_dir, const uint8_t **value,
                    size_t *value_len, int64_t *ttl_ms);

/* Calls cb for every key of table `table` (a collection id or TN_TXN_KV) WRITTEN by the buffered ops,
 * with its final state: key is the encoded pk (collections) or the tree key; op/op_len the last op that
 * wrote it when PRESENT (a coll_codec.h rowop of mode INSERT/UPSERT/UPDATE, or a tree op as stored: decode it
 * with tn_txn_kv_decode), NULL when ABSENT. Pointers are valid until the next change of the buffer.
 * Stops when cb returns non-zero and returns that value; else 0. */
typedef int (*tn_txn_row_cb)(void *arg, const uint8_t *key, size_t key_len, int state, const uint8_t *op,
                             size_t op_len);
int tn_txn_each_written(const tn_txn *t, uint32_t table, tn_txn_row_cb cb, void *arg);

/* Decodes a tree op as stored in the buffer (fields point into op). SUCCESS or INTERNAL. */
int tn_txn_kv_decode(const uint8_t *op, size_t len, tn_op *out);

/* Buffered write ops of one table (a collection id or TN_TXN_KV); 0 means reads need no merging. */
size_t tn_txn_table_pending(const tn_txn *t, uint32_t table);

/* ---- read set ---- */
/* Records that the transaction read `key` of `table` (encoded pk for a collection, tree key or
 * directory for TN_TXN_KV) at revision rev (0 = it was absent). The first read of a key wins: a key
 * read twice at different revisions fails the commit, as it should. SUCCESS or NOMEM. */
int tn_txn_read(tn_txn *t, uint32_t table, const uint8_t *key, size_t key_len, uint64_t rev);
/* Records a range read of collection coll: the rows matching preds as of revision `revision`.
 * SUCCESS, NOMEM, CLIENT_REQ_ERROR (preds above the limits). */
int tn_txn_read_range(tn_txn *t, uint32_t coll, const tn_coll_pred *preds, size_t n_preds, uint64_t revision);
size_t tn_txn_reads(const tn_txn *t);  /* entries of the read set */
void tn_txn_reads_clear(tn_txn *t);

size_t tn_txn_pending(const tn_txn *t);     /* buffered write ops, all tables */
size_t tn_txn_bytes(const tn_txn *t);       /* buffered bytes */
uint64_t tn_txn_commits(const tn_txn *t);   /* successful commits that wrote something, so far */

/* Savepoints (see top). SUCCESS or NOMEM. */
int tn_txn_savepoint(tn_txn *t, int level);
void tn_txn_release_savepoint(tn_txn *t, int level);
int tn_txn_rollback_to(tn_txn *t, int level);

/* Sends everything buffered (with the read checks) as one atomic request and empties the buffer and the
 * read set (whatever the outcome). After a failure every later tn_txn_commit repeats it until
 * tn_txn_clear (SQLite keeps a transaction open when COMMIT returns SQLITE_BUSY; the user must roll it
 * back). Returns SQLITE_OK (nothing written is SQLITE_OK too, and sends nothing), SQLITE_BUSY (a row or
 * key read or written changed since it was read, TXN_CONFLICT, store unreachable), SQLITE_CONSTRAINT
 * (ROW_EXISTS, VALUE_EXISTS, HAS_CHILDREN…), SQLITE_NOMEM, SQLITE_TOOBIG (TOO_LARGE) or SQLITE_ERROR; on
 * failure *errmsg is an sqlite3_mprintf'd message naming the first conflicting row or key
 * ("tarn: REVISION_MISMATCH: row id=7 of 'events' changed since it was read"). */
int tn_txn_commit(tn_txn *t, char **errmsg);
/* A table of this buffer got xBegin: the statement (or BEGIN … COMMIT) is a write transaction, so every
 * table of the buffer records its reads, even one the statement only reads. Until tn_txn_clear. */
void tn_txn_set_active(tn_txn *t);
int tn_txn_active(const tn_txn *t);

/* Drops everything buffered, the read set, every savepoint mark, a remembered failure and the active
 * flag. */
void tn_txn_clear(tn_txn *t);

#endif
