/* sql_code.h — the one mapping from Tarn result codes (tn_code.h) to SQLite result codes.
 *
 * Every place of the extension that turns a Tarn code into what SQLite reports uses tn_code_to_sqlite, so
 * one failure gives one SQLite code through every table and every path (a read, a write, the commit). The
 * table is the one docs/sql.md promises users:
 *
 *   SUCCESS, SUCCESS_OVERWRITE                                  SQLITE_OK
 *   ROW_EXISTS, VALUE_EXISTS, DIR_EXISTS, HAS_CHILDREN          SQLITE_CONSTRAINT  (retrying does not help)
 *   REVISION_MISMATCH, TXN_CONFLICT, CAS_MISMATCH               SQLITE_BUSY        (a conflict: retry)
 *   NOT_LEADER, UNAVAILABLE, TIMEOUT                            SQLITE_BUSY        (the store is not reachable now)
 *   NOT_OWNER                                                   SQLITE_PERM
 *   TOO_LARGE                                                   SQLITE_TOOBIG
 *   NOMEM                                                       SQLITE_NOMEM
 *   anything else (NOT_FOUND, INVALID_KEY, NO_SUCH_COLLECTION…) SQLITE_ERROR
 *
 * What the code does not know is which operation failed; callers that do may say more, and only this: a
 * read check or a conditional write whose row changed or disappeared since the transaction read it is a
 * conflict, SQLITE_BUSY, whatever code the store gave (txn.c, docs/transactions.md).
 *
 * Thread: any; no state.
 */
#ifndef TARN_SQL_CODE_H
#define TARN_SQL_CODE_H

/* The SQLite primary result code for tn_code `code` (the table above). */
int tn_code_to_sqlite(int code);

/* What a failed DtKV tree op says about its key, for messages of the form "tarn: CODE: 'key' <reason>"
 * ("already exists", "is not empty"...; "failed" for a code with no reason of its own). A static string.
 * Both tarn_kv's statements and the commit of a transaction word their errors with it. */
const char *tn_kv_code_reason(int code);

#endif
