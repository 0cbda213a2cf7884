/* client.c — targets behind tn_client (see client.h): the embedded engine, or a raftnet cluster through
 * ext/client/cluster.h. */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "client.h"

#include <string.h>

#include "cluster.h"
#include "engine.h"
#include "sql_code.h"
#include "tn_code.h"
#include "wire.h"

struct tn_client {
    tn_engine *engine;   /* embedded target, or NULL */
    tn_cluster *cluster; /* cluster target, or NULL */
    int stale_reads;
    uint64_t session;
    char *target;
    char *last_error; /* sqlite3_malloc'd, or NULL */
};

int tn_client_open_embedded(const char *engine_name, const char *data_dir, tn_client **out, char **errmsg)
{
    char why[512] = "";
    int rc = SQLITE_NOMEM;
    tn_client *c = sqlite3_malloc(sizeof *c);
    *out = NULL;
    if (!c) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->target = data_dir ? sqlite3_mprintf("embedded engine '%s' (data '%s')", engine_name, data_dir)
                         : sqlite3_mprintf("embedded engine '%s'", engine_name);
    if (!c->target) goto fail;
    int erc = tn_engine_open_dir(engine_name, data_dir, &c->engine, why, sizeof why);
    if (erc != TN_SUCCESS) {
        rc = tn_code_to_sqlite(erc);
        *errmsg = sqlite3_mprintf("tarn: %s: cannot open %s%s%s", tn_code_name(erc), c->target,
                                  why[0] ? ": " : "", why);
        goto fail;
    }
    c->session = tn_engine_new_session(c->engine);
    *out = c;
    return SQLITE_OK;
fail:
    sqlite3_free(c->target);
    sqlite3_free(c);
    if (rc == SQLITE_NOMEM && !*errmsg) *errmsg = sqlite3_mprintf("tarn: out of memory opening embedded engine");
    return rc;
}

int tn_client_open_cluster(const char *urls, const tn_client_opts *opts, tn_client **out, char **errmsg)
{
    tn_cluster_opts co;
    char *why = NULL;
    int rc = SQLITE_NOMEM;
    tn_client *c = sqlite3_malloc(sizeof *c);
    *out = NULL;
    if (!c) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    memset(&co, 0, sizeof co);
    if (opts) {
        if (opts->token && opts->token[0]) {
            co.token = (const uint8_t *)opts->token;
            co.token_len = strlen(opts->token);
        }
        co.deadline_ms = opts->timeout_ms;
        /* One attempt may not use the whole deadline, or a dead first member would leave no time for the
         * others; a short deadline still gets at least one full attempt. */
        if (opts->timeout_ms > 0 && opts->timeout_ms < 1000) co.request_timeout_ms = opts->timeout_ms;
        co.stale_reads = opts->stale_reads;
        c->stale_reads = opts->stale_reads;
    }
    c->target = sqlite3_mprintf("cluster '%s'", urls);
    if (!c->target) goto fail;
    int code = tn_cluster_open(urls, &co, &c->cluster, &why);
    if (code != TN_SUCCESS) {
        rc = tn_code_to_sqlite(code);
        goto fail;
    }
    c->session = tn_cluster_client_id(c->cluster);
    *out = c;
    return SQLITE_OK;
fail:
    if (why) *errmsg = why;
    else *errmsg = sqlite3_mprintf("tarn: out of memory opening cluster '%s'", urls);
    sqlite3_free(c->target);
    sqlite3_free(c);
    return rc;
}

void tn_client_close(tn_client *c)
{
    if (!c) return;
    tn_engine_close(c->engine);
    tn_cluster_close(c->cluster);
    sqlite3_free(c->target);
    sqlite3_free(c->last_error);
    sqlite3_free(c);
}

/* Cluster path. Callers encode requests with seq 0; a write gets the session's next seq here, so a
 * retry inside tn_cluster_call re-sends the same (client_id, seq) and is applied at most once. A read
 * becomes a stale read when the client was opened with stale_reads. Requests that need neither change
 * travel as they are. */
static int cluster_call(tn_client *c, const tn_wr *req, tn_wr *resp)
{
    tn_req r;
    tn_wr again;
    char *err = NULL;
    int rc = tn_req_decode(req->p, req->len, &r);
    if (rc != TN_SUCCESS) return rc;
    int is_write = tn_req_is_write(&r);
    int needs_seq = is_write && r.seq == 0;
    int make_stale = !is_write && c->stale_reads && r.read_mode != TN_READ_STALE;
    tn_wr_init(&again);
    if (needs_seq || make_stale || r.client_id == 0) {
        if (needs_seq) r.seq = tn_cluster_next_seq(c->cluster);
        if (make_stale) r.read_mode = TN_READ_STALE;
        if (r.client_id == 0) r.client_id = c->session;
        rc = tn_req_encode(&r, &again);
        tn_req_clear(&r);
        if (rc != TN_SUCCESS) goto done;
        rc = tn_cluster_call(c->cluster, &again, resp, &err);
    } else {
        tn_req_clear(&r);
        rc = tn_cluster_call(c->cluster, req, resp, &err);
    }
    if (rc == TN_SUCCESS && resp->oom) rc = TN_NOMEM;
done:
    tn_wr_free(&again);
    if (err) {
        c->last_error = err;
    }
    return rc;
}

int tn_client_call(tn_client *c, const tn_wr *req, tn_wr *resp)
{
    sqlite3_free(c->last_error);
    c->last_error = NULL;
    if (req->oom) return TN_NOMEM;
    if (c->cluster) return cluster_call(c, req, resp);
    int rc = tn_engine_call(c->engine, c->session, req->p, req->len, resp);
    if (rc == TN_SUCCESS && resp->oom) rc = TN_NOMEM;
    return rc;
}

const char *tn_client_last_error(const tn_client *c) { return c->last_error; }

uint64_t tn_client_session(const tn_client *c) { return c->session; }

const char *tn_client_target(const tn_client *c) { return c->target; }
