/* client.c — targets behind tn_client (see client.h). */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "client.h"

#include <string.h>

#include "engine.h"
#include "tn_code.h"

struct tn_client {
    tn_engine *engine;
    uint64_t session;
    char *target;
};

int tn_client_open_embedded(const char *engine_name, tn_client **out, char **errmsg)
{
    tn_client *c = sqlite3_malloc(sizeof *c);
    *out = NULL;
    if (!c) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->target = sqlite3_mprintf("embedded engine '%s'", engine_name);
    if (!c->target || tn_engine_open(engine_name, &c->engine) != TN_SUCCESS) goto fail;
    c->session = tn_engine_new_session(c->engine);
    *out = c;
    return SQLITE_OK;
fail:
    sqlite3_free(c->target);
    sqlite3_free(c);
    *errmsg = sqlite3_mprintf("tarn: out of memory opening embedded engine '%s'", engine_name);
    return SQLITE_NOMEM;
}

int tn_client_open_cluster(const char *urls, tn_client **out, char **errmsg)
{
    *out = NULL;
    *errmsg = sqlite3_mprintf("tarn: cluster='%s': clusters are not supported by this build yet "
                              "(the raftnet daemon is not built); omit cluster= for the embedded engine",
                              urls);
    return SQLITE_ERROR;
}

void tn_client_close(tn_client *c)
{
    if (!c) return;
    tn_engine_close(c->engine);
    sqlite3_free(c->target);
    sqlite3_free(c);
}

int tn_client_call(tn_client *c, const tn_wr *req, tn_wr *resp)
{
    if (req->oom) return TN_NOMEM;
    int rc = tn_engine_call(c->engine, c->session, req->p, req->len, resp);
    if (rc == TN_SUCCESS && resp->oom) rc = TN_NOMEM;
    return rc;
}

uint64_t tn_client_session(const tn_client *c) { return c->session; }

const char *tn_client_target(const tn_client *c) { return c->target; }
