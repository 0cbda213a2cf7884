/* conn.h — per-connection state of the extension: the clients its tables share, and the default cluster.
 *
 * sqlite3_tarn_init runs once per database connection and creates one tn_conn, handed to every module and
 * function of that connection as user data and freed by SQLite when the connection closes (after every
 * table of it has been disconnected). Tables of one connection that name the same target share one client,
 * hence one session: temp nodes belong to the connection, as docs/design.md §2 says.
 *
 * Thread: the connection's thread (SQLite serialises calls on one connection).
 */
#ifndef TARN_CONN_H
#define TARN_CONN_H

#include <stdint.h>

#include "client.h"

typedef struct tn_conn tn_conn;

/* NULL when out of memory. The new state has one reference. */
tn_conn *tn_conn_new(void);
/* Adds a reference: each module registration that is handed the state holds one, so it is freed only when
 * SQLite has destroyed every module of the connection (modules go after all their tables). */
void tn_conn_retain(tn_conn *conn);
/* Drops a reference (signature of an SQLite destructor); the last one frees. */
void tn_conn_free(void *conn);

/* A client for the target: cluster URLs (non-NULL, non-empty) or else the embedded engine `engine`.
 * Reference-counted: release with tn_conn_release. A client stays open until the connection closes, even
 * once no table uses it, so an embedded engine's store lives as long as some connection names it.
 * SQLITE_OK, or an SQLite error and *errmsg. */
int tn_conn_client(tn_conn *conn, const char *cluster, const char *engine, tn_client **out, char **errmsg);
/* The same with the table's cluster options (token=, timeout_ms=, stale reads); opts NULL = defaults.
 * A cluster client is shared only by tables that name the same URLs with the same options. When no token
 * is given, $TARN_TOKEN (if set) is used, so `tarn sql` and tests need not repeat it in every table. */
int tn_conn_client_opts(tn_conn *conn, const char *cluster, const char *engine, const tn_client_opts *opts,
                        tn_client **out, char **errmsg);
void tn_conn_release(tn_conn *conn, tn_client *client);

/* Counts requests sent by this connection (exposed as tarn_request_count(), so tests can assert that an IN
 * list or a batch travels in one round trip). */
void tn_conn_count_request(tn_conn *conn);
int64_t tn_conn_request_count(const tn_conn *conn);

/* The connection-wide default cluster: set by tarn_connect(), else $TARN_CLUSTER, else NULL (embedded). */
const char *tn_conn_default_cluster(const tn_conn *conn);
/* Copies urls (NULL or "" clears). SQLITE_OK or SQLITE_NOMEM. */
int tn_conn_set_default_cluster(tn_conn *conn, const char *urls);
/* The default cluster token: $TARN_TOKEN, or NULL. */
const char *tn_conn_default_token(const tn_conn *conn);

#endif
