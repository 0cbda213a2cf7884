/* status_vtab.c — tarn_status(), the members' STATUS as a table (see status_vtab.h). */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "status_vtab.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "tn_code.h"
#include "wire.h"


/* ---- tarn_status() ------------------------------------------------------------------------------ */

enum {
    ST_ID, ST_URL, ST_ROLE, ST_TERM, ST_COMMIT, ST_APPLIED, ST_LAG, ST_LEADER, ST_CLUSTER, ST_TIMEOUT
};
#define ST_HAS_CLUSTER 1
#define ST_HAS_TIMEOUT 2

typedef struct st_vtab {
    sqlite3_vtab base;
    tn_conn *conn;
} st_vtab;

typedef struct st_cursor {
    sqlite3_vtab_cursor base;
    tn_member_status *m;
    int n, i;
} st_cursor;

static int st_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(id INTEGER, url TEXT, role TEXT, term INTEGER, "
                                      "commit_index INTEGER, applied_index INTEGER, lag INTEGER, leader INTEGER, "
                                      "cluster TEXT HIDDEN, timeout_ms INTEGER HIDDEN)");
    if (rc != SQLITE_OK) return rc;
    st_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt) return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    vt->conn = aux;
    /* It reaches the network: not from a crafted schema's views or triggers (docs/design.md §3). */
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    *out = &vt->base;
    return SQLITE_OK;
}

static int st_disconnect(sqlite3_vtab *base)
{
    sqlite3_free(base);
    return SQLITE_OK;
}

static int st_best_index(sqlite3_vtab *base, sqlite3_index_info *info)
{
    int at[2] = {-1, -1};
    (void)base;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn != ST_CLUSTER && c->iColumn != ST_TIMEOUT) continue;
        /* A hidden argument that cannot be used here makes this plan impossible. */
        if (!c->usable || c->op != SQLITE_INDEX_CONSTRAINT_EQ) return SQLITE_CONSTRAINT;
        at[c->iColumn - ST_CLUSTER] = i;
    }
    int argv_index = 1;
    info->idxNum = 0;
    for (int k = 0; k < 2; k++) {
        if (at[k] < 0) continue;
        info->aConstraintUsage[at[k]].argvIndex = argv_index++;
        info->aConstraintUsage[at[k]].omit = 1;
        info->idxNum |= k == 0 ? ST_HAS_CLUSTER : ST_HAS_TIMEOUT;
    }
    info->estimatedCost = 1000;
    info->estimatedRows = 3;
    return SQLITE_OK;
}

static int st_open(sqlite3_vtab *base, sqlite3_vtab_cursor **out)
{
    (void)base;
    st_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static int st_close(sqlite3_vtab_cursor *cur)
{
    st_cursor *c = (st_cursor *)cur;
    tn_member_status_free(c->m, c->n);
    sqlite3_free(c);
    return SQLITE_OK;
}

static int st_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc, sqlite3_value **argv)
{
    st_cursor *c = (st_cursor *)cur;
    st_vtab *vt = (st_vtab *)cur->pVtab;
    char *err = NULL;
    int k = 0;
    (void)idx_str;
    (void)argc;
    const char *urls = NULL;
    int timeout_ms = TN_STATUS_TIMEOUT_MS_DEFAULT;
    if (idx_num & ST_HAS_CLUSTER) urls = (const char *)sqlite3_value_text(argv[k++]);
    else urls = tn_conn_default_cluster(vt->conn);
    if (idx_num & ST_HAS_TIMEOUT) {
        sqlite3_int64 t = sqlite3_value_int64(argv[k++]);
        if (t < 1 || t > 3600000) {
            sqlite3_free(vt->base.zErrMsg);
            vt->base.zErrMsg = sqlite3_mprintf("tarn_status: timeout_ms must be in 1..3600000");
            return SQLITE_ERROR;
        }
        timeout_ms = (int)t;
    }
    tn_member_status_free(c->m, c->n);
    c->m = NULL;
    c->n = c->i = 0;
    if (!urls || !urls[0]) {
        sqlite3_free(vt->base.zErrMsg);
        vt->base.zErrMsg = sqlite3_mprintf("tarn_status: no cluster given: pass the URLs "
                                           "(tarn_status('tcp://…')), or set tarn_connect() / TARN_CLUSTER");
        return SQLITE_ERROR;
    }
    int rc = tn_member_status_fetch(urls, tn_conn_default_token(vt->conn), timeout_ms, &c->m, &c->n, &err);
    if (rc != SQLITE_OK && err) {
        sqlite3_free(vt->base.zErrMsg);
        vt->base.zErrMsg = sqlite3_mprintf("tarn_status: %s", err);
    }
    sqlite3_free(err);
    return rc;
}

static int st_next(sqlite3_vtab_cursor *cur)
{
    ((st_cursor *)cur)->i++;
    return SQLITE_OK;
}

static int st_eof(sqlite3_vtab_cursor *cur)
{
    st_cursor *c = (st_cursor *)cur;
    return c->i >= c->n;
}

static int st_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    st_cursor *c = (st_cursor *)cur;
    const tn_member_status *m = &c->m[c->i];
    const tn_status *s = &m->status;
    switch (col) {
    case ST_ID:
        if (m->id) sqlite3_result_int64(ctx, (sqlite3_int64)m->id);
        break;
    case ST_URL: sqlite3_result_text(ctx, m->url, -1, SQLITE_TRANSIENT); break;
    case ST_ROLE: sqlite3_result_text(ctx, tn_member_role_name(m), -1, SQLITE_STATIC); break;
    case ST_TERM:
        if (m->answered) sqlite3_result_int64(ctx, (sqlite3_int64)s->term);
        break;
    case ST_COMMIT:
        if (m->answered) sqlite3_result_int64(ctx, (sqlite3_int64)s->commit);
        break;
    case ST_APPLIED:
        if (m->answered) sqlite3_result_int64(ctx, (sqlite3_int64)s->applied);
        break;
    case ST_LAG:
        if (m->lag >= 0) sqlite3_result_int64(ctx, m->lag);
        break;
    case ST_LEADER: sqlite3_result_int(ctx, m->is_leader); break;
    default: break; /* hidden arguments read back as NULL */
    }
    return SQLITE_OK;
}

static int st_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = ((st_cursor *)cur)->i + 1;
    return SQLITE_OK;
}

static sqlite3_module st_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: SELECT … FROM tarn_status(…) */
    .xConnect = st_connect,
    .xBestIndex = st_best_index,
    .xDisconnect = st_disconnect,
    .xDestroy = st_disconnect,
    .xOpen = st_open,
    .xClose = st_close,
    .xFilter = st_filter,
    .xNext = st_next,
    .xEof = st_eof,
    .xColumn = st_column,
    .xRowid = st_rowid,
};

int tn_status_register(sqlite3 *db, tn_conn *conn)
{
    tn_conn_retain(conn);
    return sqlite3_create_module_v2(db, "tarn_status", &st_module, conn, tn_conn_free);
}
