/* tarn_ext.h — what the extension's entry point (tarn.c) registers on each connection. */
#ifndef TARN_EXT_H
#define TARN_EXT_H

#include <sqlite3ext.h>

#include "conn.h"

#define TARN_VERSION "0.1.0"

/* Registers the tarn_kv module on db; it keeps a reference to conn (tn_conn_retain) that SQLite drops when
 * it destroys the module. Returns an SQLite code. */
int tn_kv_register(sqlite3 *db, tn_conn *conn);

/* Registers the tarn (collection) module and tarn_drop_collection(); keeps a reference to conn. */
int tn_coll_register(sqlite3 *db, tn_conn *conn);

#endif
