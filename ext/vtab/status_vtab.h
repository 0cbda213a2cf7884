/* status_vtab.h — tarn_status(), the table-valued function over every member's state (client/members.h). */
#ifndef TARN_STATUS_VTAB_H
#define TARN_STATUS_VTAB_H

#include <sqlite3ext.h>

#include "conn.h"
#include "members.h"

/* Registers the eponymous virtual table tarn_status (columns id, url, role, term, commit_index,
 * applied_index, lag, leader; hidden arguments cluster (default: the connection's default cluster) and
 * timeout_ms (default 1000)): SELECT * FROM tarn_status('tcp://…'). Keeps a reference to conn. */
int tn_status_register(sqlite3 *db, tn_conn *conn);

#endif
