/* tarn_ext.h — what the extension's entry point (tarn.c) registers on each connection. */
#ifndef TARN_EXT_H
#define TARN_EXT_H

#include <sqlite3ext.h>

#include "conn.h"
#include "txn.h"
#include "version.h"


/* Register the tarn_kv and tarn modules (and tarn_drop_collection) on db. Both modules share `txns`, the
 * connection's transaction registry, so writes to every Tarn table of one store commit as one atomic
 * request. Each registration keeps its own references (released when SQLite destroys it). Return an SQLite
 * code. */
/* The entry point SQLite calls on .load / sqlite3_load_extension (named after tarn.so); the only symbol
 * tarn.so exports. */
int sqlite3_tarn_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);

int tn_kv_register(sqlite3 *db, tn_txn_registry *txns);
int tn_coll_register(sqlite3 *db, tn_conn *conn, tn_txn_registry *txns);

#endif
