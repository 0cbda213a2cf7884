/* vtab_base.h — what the two Tarn virtual tables share: `tarn_kv` (kv_vtab.c) and `tarn` (coll_vtab.c).
 *
 * What it owns. A table's struct embeds tn_vtab_base as its FIRST member, so the sqlite3_vtab * SQLite
 * hands to a module slot is also a tn_vtab_base * (and sqlite3_vtab is the first member of tn_vtab_base).
 * The base holds the table's client (taken from the connection's tn_conn), the transaction buffer of that
 * client (txn.h, shared with every Tarn table of the connection on the same store), the table's read set
 * and its request counter.
 *
 * Transactions (docs/transactions.md). Both modules use the tn_vtab_x* functions below as their xBegin,
 * xSync, xCommit, xRollback, xSavepoint, xRelease and xRollbackTo slots. SQLite 3.40 semantics they rely on:
 *   - xSync is the durable commit point: the first xSync of any table sharing a client sends that client's
 *     whole buffer (and read checks) as ONE atomic request (tn_txn_commit); a failure fails COMMIT before
 *     SQLite commits its own file;
 *   - the return values of xCommit and xRollback are ignored, so both only drop the buffer;
 *   - CREATE VIRTUAL TABLE calls xSync and xCommit without xBegin: with nothing buffered this is a no-op.
 * The read set (`reads`: encoded pk or tree key -> the revision this transaction read) lets UPDATE and
 * DELETE carry the revision of the row they read; it lives from xBegin to xCommit/xRollback.
 *
 * Requests. tn_vtab_call encodes a request, counts it (tarn_request_count()), sends it through the
 * client, decodes the answer and maps a failure to an SQLite code with a message in zErrMsg.
 *
 * Ownership: tn_vtab_base_open takes a client reference and a buffer reference; tn_vtab_base_close drops
 * both and frees the read set and zErrMsg (the table frees its own struct). Memory via sqlite3_malloc.
 * Errors: SQLite codes; messages in base.zErrMsg (sqlite3_mprintf'd) unless stated.
 * Thread: the connection's thread.
 */
#ifndef TARN_VTAB_BASE_H
#define TARN_VTAB_BASE_H

#include <sqlite3ext.h>
#include <stdint.h>

#include "client.h"
#include "conn.h"
#include "readset.h"
#include "tn_code.h"
#include "txn.h"
#include "wire.h"

typedef struct tn_vtab_base {
    sqlite3_vtab base; /* SQLite's part: first */
    sqlite3 *db;
    tn_conn *conn;
    tn_txn_registry *reg;
    tn_client *client;
    tn_txn *txn;       /* the connection's transaction buffer for this client (shared with other tables) */
    int in_txn;        /* between xBegin and xCommit/xRollback */
    tn_readset reads;  /* key -> revision this transaction read (0 = the row is the transaction's own) */
    uint64_t next_req_id;
} tn_vtab_base;

/* Where a table's store lives, from its CREATE VIRTUAL TABLE arguments; every field may be NULL / 0. */
typedef struct tn_vtab_target {
    const char *cluster;  /* cluster= */
    const char *engine;   /* engine= */
    const char *data_dir; /* data= (a persistent embedded engine, named by the directory unless engine=) */
    const char *token;    /* token= */
    int timeout_ms;       /* timeout_ms= (0 = the client's default) */
    int stale_reads;      /* stale= */
} tn_vtab_target;

/* Zeroes vb and sets its connection state; reg is not retained (the module's registration holds it). */
void tn_vtab_base_init(tn_vtab_base *vb, sqlite3 *db, tn_txn_registry *reg);

/* Opens the table's client for target t and acquires its transaction buffer; sets the table's vtab
 * options (constraint support, SQLITE_VTAB_DIRECTONLY). Call from xCreate/xConnect. The target rules:
 * data and cluster exclude each other; a data directory names the engine unless engine= does; without
 * cluster= and engine= the connection's default cluster (tarn_connect(), $TARN_CLUSTER) applies, else the
 * embedded engine 'default'. SQLITE_OK, or an SQLite code and *err (sqlite3_mprintf'd, prefixed with
 * `module`, e.g. "tarn_kv: ..."). */
int tn_vtab_base_open(tn_vtab_base *vb, const char *module, const tn_vtab_target *t, char **err);

/* Releases what tn_vtab_base_open took and frees the read set and the message. vb stays allocated. */
void tn_vtab_base_close(tn_vtab_base *vb);

/* Replaces the table's error message (sqlite3_mprintf format). */
void tn_vtab_error(tn_vtab_base *vb, const char *fmt, ...) TN_PRINTF(2, 3);

/* Sends req (its req_id and client_id are filled in here) and decodes the answer into *resp, which points
 * into *buf (the caller frees buf, and clears resp on SQLITE_OK). On SQLITE_OK the response's own code is
 * SUCCESS; per-op codes are the caller's to read. A failure to send or decode, or a response-level code,
 * gives tn_code_to_sqlite of that code (sql_code.h: e.g. the store unreachable SQLITE_BUSY, TOO_LARGE
 * SQLITE_TOOBIG) and a message naming the Tarn code. resp is cleared on failure. */
int tn_vtab_call(tn_vtab_base *vb, tn_req *req, tn_wr *buf, tn_resp *resp);

/* Whether this statement's reads belong to a transaction and are recorded in its read set: inside
 * BEGIN … COMMIT, or a statement that writes (xBegin was called on some table of the buffer). */
int tn_vtab_recording(const tn_vtab_base *vb);

/* Start of xFilter: returns tn_vtab_recording(vb), and drops a read set left behind by a read-only
 * transaction that has ended (nothing buffered, not recording, no merge of buffered rows (overlay = 0)). */
int tn_vtab_filter_start(tn_vtab_base *vb, int overlay);

/* tn_code_to_sqlite of what tn_txn_add / tn_txn_kv_add returned (`code`), with a message: TOO_LARGE
 * names the buffer's size and the request limit; any other failure says "<what> rejected", what being
 * formatted from fmt (sqlite3_mprintf). */
int tn_vtab_buffered(tn_vtab_base *vb, int code, const char *fmt, ...) TN_PRINTF(3, 4);

/* tn_code_to_sqlite of what tn_txn_read / tn_txn_read_range returned, with a message naming `table` (may
 * be NULL) when the read set cannot grow. */
int tn_vtab_read_noted(tn_vtab_base *vb, int code, const char *table);

/* Module slots (see the top). */
int tn_vtab_xbegin(sqlite3_vtab *base);
int tn_vtab_xsync(sqlite3_vtab *base);
int tn_vtab_xend(sqlite3_vtab *base); /* xCommit and xRollback */
int tn_vtab_xsavepoint(sqlite3_vtab *base, int level);
int tn_vtab_xrelease(sqlite3_vtab *base, int level);
int tn_vtab_xrollback_to(sqlite3_vtab *base, int level);

#endif
