/* txn.h — the client-side transaction write buffer of Tarn's collection tables.
 *
 * What it owns. Writes to collection tables (xUpdate) are not sent when they are made: they are appended,
 * already encoded as coll.h row ops, to the tn_txn of the client (target) the table uses. One tn_txn exists
 * per (SQLite connection, tn_client): every table of the connection that talks to the same store shares it,
 * so a transaction touching several tables commits as ONE request. At the commit point (the first xSync of
 * any participating table, see coll_vtab.c) tn_txn_commit sends everything as one request with flag
 * TN_REQF_ATOMIC: one TN_OP_COLL_WRITE op per collection (more when a collection holds more than
 * TN_COLL_MAX_ROW_OPS rows), each rows payload marked atomic. The state machine applies all of it or none.
 *
 * Registry. tn_txn_registry maps a tn_client to its tn_txn (reference-counted: each table holding the
 * buffer holds one reference). It is a plain struct owned by whoever registers the modules (today the
 * collection module's context, one per connection), so there is no global state; the lead may move it into
 * tn_conn so that tarn_kv shares the same buffers.
 *
 * Row state. The buffer also tracks, per (collection, primary key), what the buffered ops did to the row
 * (present / absent, and whether it was written), so that INSERT OR IGNORE / OR FAIL can decide without a
 * read when the row was touched earlier in the transaction.
 *
 * Savepoints. tn_txn_savepoint(n) marks the buffer; tn_txn_rollback_to(n) drops everything appended after
 * mark n; tn_txn_release(n) forgets marks >= n. Levels are SQLite's (xSavepoint's iSavepoint), shared by
 * every table of the buffer: a mark that already exists is kept (another table set it first), missing
 * lower levels are filled with the current length.
 *
 * Errors: functions return tn_code values unless stated; tn_txn_commit returns an SQLite code and a message.
 * Memory via sqlite3_malloc / malloc (codec buffers).
 * Thread: the connection's thread.
 */
#ifndef TARN_TXN_H
#define TARN_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "coll.h"
#include "conn.h"

typedef struct tn_txn tn_txn;

typedef struct tn_txn_registry {
    struct tn_txn *head;
} tn_txn_registry;

void tn_txn_registry_init(tn_txn_registry *reg);
/* Frees every buffer still registered (normally none: tables release theirs on disconnect). */
void tn_txn_registry_clear(tn_txn_registry *reg);

/* The buffer of `client` (created on first use; conn is used to count requests). SUCCESS or NOMEM. */
int tn_txn_acquire(tn_txn_registry *reg, tn_conn *conn, tn_client *client, tn_txn **out);
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
 * request may carry), CLIENT_REQ_ERROR (op above coll.h limits). */
int tn_txn_add(tn_txn *t, uint32_t coll, const tn_coll_row_op *op);

size_t tn_txn_pending(const tn_txn *t);     /* buffered ops */
size_t tn_txn_bytes(const tn_txn *t);       /* buffered bytes */
uint64_t tn_txn_commits(const tn_txn *t);   /* successful commits that wrote something, so far */

/* Savepoints (see top). SUCCESS or NOMEM. */
int tn_txn_savepoint(tn_txn *t, int level);
void tn_txn_release_savepoint(tn_txn *t, int level);
int tn_txn_rollback_to(tn_txn *t, int level);

/* Sends everything buffered as one atomic request and empties the buffer (whatever the outcome). After a
 * failure every later tn_txn_commit repeats it until tn_txn_clear (SQLite keeps a transaction open when
 * COMMIT returns SQLITE_BUSY; the user must roll it back).
 * Returns SQLITE_OK (nothing buffered is SQLITE_OK too), SQLITE_BUSY (REVISION_MISMATCH, TXN_CONFLICT,
 * a row deleted since it was read, store unreachable), SQLITE_CONSTRAINT (ROW_EXISTS), SQLITE_NOMEM,
 * SQLITE_TOOBIG (TOO_LARGE) or SQLITE_ERROR; on failure *errmsg is an sqlite3_mprintf'd message naming
 * the row and collection ("tarn: REVISION_MISMATCH: row id=7 of 'events' changed since it was read"). */
int tn_txn_commit(tn_txn *t, char **errmsg);
/* Drops everything buffered and every savepoint mark. */
void tn_txn_clear(tn_txn *t);

#endif
