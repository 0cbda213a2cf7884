/* tarn.c — the extension's entry point: sqlite3_tarn_init registers Tarn's modules and functions on one
 * database connection (`.load ./build/tarn` in the shell, enable_load_extension + load_extension in
 * bindings). Each connection gets its own tn_conn (conn.h), freed by SQLite with the connection. */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include "tarn_ext.h"
#include "status_vtab.h"

#ifndef SQLITE_CORE
#include <pthread.h>

/* SQLITE_EXTENSION_INIT2 stores the API table in the global through which every file of the extension
 * calls SQLite. The entry point runs once per connection, on whatever thread opens it: storing the same
 * pointer again while another connection calls through it is still a data race, so it is stored once,
 * under a lock every load takes (which also orders that store before any use on another thread). */
static pthread_mutex_t api_mu = PTHREAD_MUTEX_INITIALIZER;
#endif

/* tarn_version(): the extension's version. */
static void fn_version(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    sqlite3_result_text(ctx, TARN_VERSION, -1, SQLITE_STATIC);
}

/* tarn_connect('urls'): sets the connection's default cluster for tables created or connected after it;
 * tarn_connect(NULL) or tarn_connect('') goes back to $TARN_CLUSTER / the embedded engine. Returns the
 * URLs now in force (NULL = embedded). */
static void fn_connect(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    tn_conn *conn = sqlite3_user_data(ctx);
    (void)argc;
    const char *urls = (const char *)sqlite3_value_text(argv[0]);
    if (tn_conn_set_default_cluster(conn, urls) != SQLITE_OK) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    const char *now = tn_conn_default_cluster(conn);
    if (now) sqlite3_result_text(ctx, now, -1, SQLITE_TRANSIENT);
    else sqlite3_result_null(ctx);
}

/* tarn_request_count(): requests this connection has sent to any Tarn store so far. */
static void fn_request_count(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    sqlite3_result_int64(ctx, tn_conn_request_count(sqlite3_user_data(ctx)));
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_tarn_init(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
#ifndef SQLITE_CORE
    pthread_mutex_lock(&api_mu);
    if (!sqlite3_api) SQLITE_EXTENSION_INIT2(api);
    pthread_mutex_unlock(&api_mu);
#endif
    if (sqlite3_libversion_number() < 3040000) {
        *err = sqlite3_mprintf("tarn: needs SQLite 3.40 or newer (this is %s)", sqlite3_libversion());
        return SQLITE_ERROR;
    }
    tn_conn *conn = tn_conn_new();
    if (!conn) return SQLITE_NOMEM;
    /* Every registration below holds a reference to conn and drops it when SQLite destroys it (on
     * failure, SQLite calls the destructor itself); ours is dropped at the end. */
    tn_conn_retain(conn);
    int rc = sqlite3_create_function_v2(db, "tarn_connect", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, conn,
                                        fn_connect, NULL, NULL, tn_conn_free);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "tarn_version", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC |
                                     SQLITE_INNOCUOUS, NULL, fn_version, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "tarn_request_count", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, conn,
                                     fn_request_count, NULL, NULL);
    if (rc == SQLITE_OK) {
        tn_txn_registry *txns = tn_txn_registry_new(conn);
        if (!txns) {
            rc = SQLITE_NOMEM;
        } else {
            rc = tn_kv_register(db, txns);
            if (rc == SQLITE_OK) rc = tn_coll_register(db, conn, txns);
            tn_txn_registry_unref(txns);
        }
    }
    if (rc == SQLITE_OK) rc = tn_status_register(db, conn);
    tn_conn_free(conn);
    return rc;
}
