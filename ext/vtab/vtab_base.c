/* vtab_base.c — the part of `tarn_kv` and `tarn` that is the same for both (see vtab_base.h). */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "vtab_base.h"

#include <stdarg.h>
#include <string.h>

#include "sql_code.h"
#include "tn_code.h"

void tn_vtab_base_init(tn_vtab_base *vb, sqlite3 *db, tn_txn_registry *reg)
{
    memset(vb, 0, sizeof *vb);
    vb->db = db;
    vb->reg = reg;
    vb->conn = reg->conn;
    tn_readset_init(&vb->reads);
}

int tn_vtab_base_open(tn_vtab_base *vb, const char *module, const tn_vtab_target *t, char **err)
{
    const char *cluster = t->cluster, *engine = t->engine;
    if (t->data_dir && cluster) {
        *err = sqlite3_mprintf("%s: options 'data' and 'cluster' exclude each other (a cluster keeps its data "
                               "on its members)", module);
        return SQLITE_ERROR;
    }
    /* A persistent engine is named by its directory unless engine= names it. */
    if (t->data_dir && !engine) engine = t->data_dir;
    /* An explicit engine= names the embedded engine; otherwise the connection default (tarn_connect,
     * TARN_CLUSTER) applies. */
    if (!cluster && !engine) cluster = tn_conn_default_cluster(vb->conn);
    tn_client_opts opts = {.token = t->token, .timeout_ms = t->timeout_ms, .stale_reads = t->stale_reads,
                           .data_dir = t->data_dir};
    int rc = tn_conn_client_opts(vb->conn, cluster, engine ? engine : "default", &opts, &vb->client, err);
    if (rc != SQLITE_OK) return rc;
    if (tn_txn_acquire(vb->reg, vb->client, &vb->txn) != TN_SUCCESS) return SQLITE_NOMEM;
    sqlite3_vtab_config(vb->db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    /* It reaches the network: not from a crafted schema's views or triggers (docs/sql.md). */
    sqlite3_vtab_config(vb->db, SQLITE_VTAB_DIRECTONLY);
    return SQLITE_OK;
}

void tn_vtab_base_close(tn_vtab_base *vb)
{
    tn_readset_clear(&vb->reads);
    if (vb->txn) tn_txn_release(vb->reg, vb->txn);
    if (vb->client) tn_conn_release(vb->conn, vb->client);
    vb->txn = NULL;
    vb->client = NULL;
    sqlite3_free(vb->base.zErrMsg);
    vb->base.zErrMsg = NULL;
}

void tn_vtab_error(tn_vtab_base *vb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_free(vb->base.zErrMsg);
    vb->base.zErrMsg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
}

int tn_vtab_call(tn_vtab_base *vb, tn_req *req, tn_wr *buf, tn_resp *resp)
{
    tn_wr reqb;
    int rc;
    tn_wr_init(&reqb);
    req->req_id = ++vb->next_req_id;
    req->client_id = tn_client_session(vb->client);
    rc = tn_req_encode(req, &reqb);
    tn_conn_count_request(vb->conn);
    if (rc == TN_SUCCESS) rc = tn_client_call(vb->client, &reqb, buf);
    tn_wr_free(&reqb);
    if (rc == TN_SUCCESS) rc = tn_resp_decode(buf->p, buf->len, resp);
    if (rc != TN_SUCCESS) {
        if (rc == TN_NOMEM) return SQLITE_NOMEM;
        const char *why = tn_client_last_error(vb->client);
        if (why) tn_vtab_error(vb, "%s", why);
        else tn_vtab_error(vb, "tarn: %s: request to %s failed", tn_code_name(rc), tn_client_target(vb->client));
        return tn_code_to_sqlite(rc);
    }
    if (resp->code != TN_SUCCESS) {
        /* Read the code before clearing: tn_resp_clear zeroes the response. */
        int code = resp->code;
        tn_vtab_error(vb, "tarn: %s: %.*s", tn_code_name(code), (int)resp->message_len, resp->message);
        tn_resp_clear(resp);
        return tn_code_to_sqlite(code);
    }
    return SQLITE_OK;
}

int tn_vtab_recording(const tn_vtab_base *vb)
{
    return vb->in_txn || tn_txn_active(vb->txn) || !sqlite3_get_autocommit(vb->db);
}

int tn_vtab_filter_start(tn_vtab_base *vb, int overlay)
{
    int recording = tn_vtab_recording(vb);
    if (!recording && !overlay && tn_txn_reads(vb->txn) && !tn_txn_pending(vb->txn))
        tn_txn_reads_clear(vb->txn); /* left by a read-only transaction that has ended */
    return recording;
}

int tn_vtab_buffered(tn_vtab_base *vb, int code, const char *fmt, ...)
{
    int rc = tn_code_to_sqlite(code);
    if (rc == SQLITE_OK || rc == SQLITE_NOMEM) return rc;
    if (code == TN_TOO_LARGE) {
        tn_vtab_error(vb, "tarn: TOO_LARGE: the transaction's buffered writes (%llu ops, %llu bytes) would exceed "
                      "the %u-byte request limit; commit in smaller transactions",
                      (unsigned long long)tn_txn_pending(vb->txn), (unsigned long long)tn_txn_bytes(vb->txn),
                      TN_WIRE_MAX_MESSAGE);
        return rc;
    }
    va_list ap;
    va_start(ap, fmt);
    char *what = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    tn_vtab_error(vb, "tarn: %s: %s rejected", tn_code_name(code), what ? what : "write");
    sqlite3_free(what);
    return rc;
}

int tn_vtab_read_noted(tn_vtab_base *vb, int code, const char *table)
{
    int rc = tn_code_to_sqlite(code);
    if (rc == SQLITE_OK || rc == SQLITE_NOMEM) return rc;
    if (table)
        tn_vtab_error(vb, "tarn: %s: the transaction's read set of '%s' cannot grow (request limit)",
                      tn_code_name(code), table);
    else
        tn_vtab_error(vb, "tarn: %s: the transaction's read set cannot grow (request limit)", tn_code_name(code));
    return rc;
}

/* ---- transaction slots (docs/transactions.md) ---------------------------------------------------- */

int tn_vtab_xbegin(sqlite3_vtab *base)
{
    tn_vtab_base *vb = (tn_vtab_base *)base;
    tn_readset_clear(&vb->reads);
    vb->in_txn = 1;
    tn_txn_set_active(vb->txn);
    return SQLITE_OK;
}

/* The commit point: everything buffered by every table sharing the client goes as one atomic request. */
int tn_vtab_xsync(sqlite3_vtab *base)
{
    tn_vtab_base *vb = (tn_vtab_base *)base;
    char *msg = NULL;
    int rc = tn_txn_commit(vb->txn, &msg);
    sqlite3_free(vb->base.zErrMsg);
    vb->base.zErrMsg = rc != SQLITE_OK ? msg : NULL;
    if (rc == SQLITE_OK) sqlite3_free(msg);
    return rc;
}

/* xCommit and xRollback: SQLite ignores what they return, and after xSync nothing is left to send. After
 * a failed xSync SQLite rolls back; after a successful one SQLite may still fail its own commit and roll
 * back, but a committed Raft entry cannot be undone (docs/transactions.md). Either way: drop the buffer. */
int tn_vtab_xend(sqlite3_vtab *base)
{
    tn_vtab_base *vb = (tn_vtab_base *)base;
    tn_txn_clear(vb->txn);
    tn_readset_clear(&vb->reads);
    vb->in_txn = 0;
    return SQLITE_OK;
}

int tn_vtab_xsavepoint(sqlite3_vtab *base, int level)
{
    tn_vtab_base *vb = (tn_vtab_base *)base;
    return tn_code_to_sqlite(tn_txn_savepoint(vb->txn, level));
}

int tn_vtab_xrelease(sqlite3_vtab *base, int level)
{
    tn_vtab_base *vb = (tn_vtab_base *)base;
    tn_txn_release_savepoint(vb->txn, level);
    return SQLITE_OK;
}

int tn_vtab_xrollback_to(sqlite3_vtab *base, int level)
{
    tn_vtab_base *vb = (tn_vtab_base *)base;
    return tn_code_to_sqlite(tn_txn_rollback_to(vb->txn, level));
}
