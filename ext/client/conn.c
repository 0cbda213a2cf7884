/* conn.c — per-connection state (see conn.h). */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "conn.h"

#include <stdlib.h>
#include <string.h>

typedef struct conn_client {
    char *target_key; /* "c:<urls>" or "e:<engine>" */
    tn_client *client;
    int refs;
    struct conn_client *next;
} conn_client;

struct tn_conn {
    int refs;
    conn_client *clients;
    char *default_cluster;
    int64_t requests;
};

tn_conn *tn_conn_new(void)
{
    tn_conn *c = sqlite3_malloc(sizeof *c);
    if (c) {
        memset(c, 0, sizeof *c);
        c->refs = 1;
    }
    return c;
}

void tn_conn_retain(tn_conn *conn) { conn->refs++; }

void tn_conn_free(void *p)
{
    tn_conn *c = p;
    if (!c || --c->refs > 0) return;
    /* Tables release their clients on disconnect; anything left is closed here. */
    while (c->clients) {
        conn_client *cc = c->clients;
        c->clients = cc->next;
        tn_client_close(cc->client);
        sqlite3_free(cc->target_key);
        sqlite3_free(cc);
    }
    sqlite3_free(c->default_cluster);
    sqlite3_free(c);
}

int tn_conn_client(tn_conn *conn, const char *cluster, const char *engine, tn_client **out, char **errmsg)
{
    return tn_conn_client_opts(conn, cluster, engine, NULL, out, errmsg);
}

int tn_conn_client_opts(tn_conn *conn, const char *cluster, const char *engine, const tn_client_opts *opts,
                        tn_client **out, char **errmsg)
{
    int use_cluster = cluster && cluster[0];
    tn_client_opts o;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    if (!o.token || !o.token[0]) o.token = tn_conn_default_token(conn);
    /* The options are part of the key: tables asking for another token or deadline get their own client. */
    char *key = use_cluster ? sqlite3_mprintf("c:%d:%d:%s:%s", o.timeout_ms, o.stale_reads,
                                              o.token ? o.token : "", cluster)
                            : sqlite3_mprintf("e:%s:%s", o.data_dir ? o.data_dir : "", engine);
    int rc;
    *out = NULL;
    if (!key) return SQLITE_NOMEM;
    for (conn_client *cc = conn->clients; cc; cc = cc->next) {
        if (strcmp(cc->target_key, key) == 0) {
            cc->refs++;
            *out = cc->client;
            sqlite3_free(key);
            return SQLITE_OK;
        }
    }
    conn_client *cc = sqlite3_malloc(sizeof *cc);
    if (!cc) {
        sqlite3_free(key);
        return SQLITE_NOMEM;
    }
    memset(cc, 0, sizeof *cc);
    rc = use_cluster ? tn_client_open_cluster(cluster, &o, &cc->client, errmsg)
                     : tn_client_open_embedded(engine, o.data_dir, &cc->client, errmsg);
    if (rc != SQLITE_OK) {
        sqlite3_free(key);
        sqlite3_free(cc);
        return rc;
    }
    cc->target_key = key;
    cc->refs = 1;
    cc->next = conn->clients;
    conn->clients = cc;
    *out = cc->client;
    return SQLITE_OK;
}

void tn_conn_release(tn_conn *conn, tn_client *client)
{
    /* The client stays open until the connection closes, even with no table using it: SQLite disconnects
     * every virtual table when it resets a schema (e.g. after a failed CREATE VIRTUAL TABLE), and closing
     * the last client of an embedded engine would silently drop its in-memory store. */
    for (conn_client *cc = conn->clients; cc; cc = cc->next) {
        if (cc->client == client) {
            cc->refs--;
            return;
        }
    }
}

const char *tn_conn_default_cluster(const tn_conn *conn)
{
    if (conn->default_cluster) return conn->default_cluster;
    const char *env = getenv("TARN_CLUSTER");
    return env && env[0] ? env : NULL;
}

int tn_conn_set_default_cluster(tn_conn *conn, const char *urls)
{
    char *copy = NULL;
    if (urls && urls[0]) {
        copy = sqlite3_mprintf("%s", urls);
        if (!copy) return SQLITE_NOMEM;
    }
    sqlite3_free(conn->default_cluster);
    conn->default_cluster = copy;
    return SQLITE_OK;
}

const char *tn_conn_default_token(const tn_conn *conn)
{
    (void)conn;
    const char *env = getenv("TARN_TOKEN");
    return env && env[0] ? env : NULL;
}

void tn_conn_count_request(tn_conn *conn) { conn->requests++; }

int64_t tn_conn_request_count(const tn_conn *conn) { return conn->requests; }
