/* kv_vtab.c — the `tarn_kv` virtual table: the DtKV tree in SQL (DESIGN §3, docs/sql.md).
 *
 * Schema (declared WITHOUT ROWID, the key is the primary key):
 *   key TEXT PRIMARY KEY, value BLOB, is_dir INTEGER, ttl_ms INTEGER, create_rev INTEGER,
 *   update_rev INTEGER, create_time INTEGER, update_time INTEGER, parent TEXT HIDDEN
 *
 * Query plans (idxNum; idxStr is the human-readable form EXPLAIN QUERY PLAN shows):
 *   KV_PLAN_SCAN    0  "scan"          whole tree in pre-order, fetched in pages
 *   KV_PLAN_KEY_EQ  1  "key=?"         argv[0] = key; one GET
 *   KV_PLAN_KEY_IN  2  "key IN (...)"  argv[0] = the whole IN list (sqlite3_vtab_in); one request, one GET op
 *                                      per value
 *   KV_PLAN_LIST    3  "parent=?"      argv[0] = directory; LIST in key order, fetched in pages; satisfies
 *                                      ORDER BY key ASC
 * Every other constraint is left to SQLite (no argvIndex, not omitted).
 *
 * Writes (xUpdate) are sent at once, each as one request, and are atomic on the engine:
 *   INSERT            create: PUT/MKDIR/PUT_TEMP/MKDIR_TEMP with cond ABSENT (REPLACE: no cond);
 *                     an existing key gives SQLITE_CONSTRAINT, so OR IGNORE / OR FAIL / OR ABORT behave as
 *                     on a native table (SQLITE_VTAB_CONSTRAINT_SUPPORT).
 *   UPDATE / DELETE   carry the update revision the statement read for that key (cond REV): the engine applies
 *                     them only if the node is unchanged, else the statement fails with SQLITE_BUSY naming the
 *                     key. UPDATE kv SET value=… WHERE key=… AND value=… is therefore a compare-and-set.
 * Until transactions land (issue 6) a write is applied when its statement executes; ROLLBACK does not undo it.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include <inttypes.h>
#include <string.h>

#include "client.h"
#include "conn.h"
#include "readset.h"
#include "tarn_ext.h"
#include "tn_code.h"
#include "vtab_args.h"
#include "wire.h"

enum { KV_PLAN_SCAN = 0, KV_PLAN_KEY_EQ = 1, KV_PLAN_KEY_IN = 2, KV_PLAN_LIST = 3 };
enum {
    KV_COL_KEY = 0, KV_COL_VALUE, KV_COL_IS_DIR, KV_COL_TTL_MS, KV_COL_CREATE_REV, KV_COL_UPDATE_REV,
    KV_COL_CREATE_TIME, KV_COL_UPDATE_TIME, KV_COL_PARENT, KV_NCOL
};

#define KV_PAGE 1000 /* entries per LIST/SCAN round trip */

static const char kv_schema[] =
    "CREATE TABLE x(key TEXT PRIMARY KEY, value BLOB, is_dir INTEGER, ttl_ms INTEGER, create_rev INTEGER, "
    "update_rev INTEGER, create_time INTEGER, update_time INTEGER, parent TEXT HIDDEN) WITHOUT ROWID";

typedef struct kv_vtab {
    sqlite3_vtab base;
    sqlite3 *db;
    tn_conn *conn;
    tn_client *client;
    int in_txn;          /* between xBegin and xSync/xCommit/xRollback: reads are remembered */
    tn_readset reads;    /* key -> revision the current transaction read */
    uint64_t next_req_id;
} kv_vtab;

typedef struct kv_cursor {
    sqlite3_vtab_cursor base;
    int plan;
    tn_wr resp_buf;      /* the current page's response bytes; resp points into it */
    tn_resp resp;
    int have_resp;
    size_t ri, ei;       /* current result / entry */
    int eof;
    int paged;           /* LIST/SCAN: another page may follow */
    char *dir;           /* LIST: the directory (sqlite3_malloc'd) */
    int dir_len;
} kv_cursor;

/* ---- helpers ------------------------------------------------------------------------------------ */

static void kv_set_error(kv_vtab *vt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_free(vt->base.zErrMsg);
    vt->base.zErrMsg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
}

/* Sends the request and decodes the response into *resp, which points into *buf. SQLITE_OK or an error
 * (with the vtab's message set). */
static int kv_call(kv_vtab *vt, tn_req *req, tn_wr *buf, tn_resp *resp)
{
    tn_wr reqb;
    int rc;
    tn_wr_init(&reqb);
    req->req_id = ++vt->next_req_id;
    req->client_id = tn_client_session(vt->client);
    rc = tn_req_encode(req, &reqb);
    tn_conn_count_request(vt->conn);
    if (rc == TN_SUCCESS) rc = tn_client_call(vt->client, &reqb, buf);
    tn_wr_free(&reqb);
    if (rc == TN_SUCCESS) rc = tn_resp_decode(buf->p, buf->len, resp);
    if (rc != TN_SUCCESS) {
        if (rc == TN_NOMEM) return SQLITE_NOMEM;
        kv_set_error(vt, "tarn: %s: request to %s failed", tn_code_name(rc), tn_client_target(vt->client));
        return rc == TN_TIMEOUT || rc == TN_UNAVAILABLE ? SQLITE_BUSY : SQLITE_ERROR;
    }
    if (resp->code != TN_SUCCESS) {
        kv_set_error(vt, "tarn: %s: %.*s", tn_code_name(resp->code), (int)resp->message_len, resp->message);
        tn_resp_clear(resp);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

/* Maps a per-op failure to an SQLite code and sets a message naming the DtKV code and the key. */
static int kv_op_error(kv_vtab *vt, int code, const uint8_t *key, size_t key_len)
{
    int klen = key_len > 200 ? 200 : (int)key_len;
    const char *more = key_len > 200 ? "…" : "";
    const char *why;
    int sqlite_rc = SQLITE_ERROR;
    switch (code) {
    case TN_VALUE_EXISTS: why = "already exists"; sqlite_rc = SQLITE_CONSTRAINT; break;
    case TN_DIR_EXISTS: why = "is a directory that already exists"; sqlite_rc = SQLITE_CONSTRAINT; break;
    case TN_HAS_CHILDREN: why = "is not empty"; sqlite_rc = SQLITE_CONSTRAINT; break;
    case TN_REVISION_MISMATCH: why = "changed since it was read"; sqlite_rc = SQLITE_BUSY; break;
    case TN_CAS_MISMATCH: why = "does not hold the expected value"; sqlite_rc = SQLITE_BUSY; break;
    case TN_NOT_FOUND: why = "does not exist"; break;
    case TN_PARENT_DIR_NOT_EXISTS: why = "has no parent directory"; break;
    case TN_PARENT_NOT_DIR: why = "has a parent that is not a directory"; break;
    case TN_INVALID_KEY: why = "is not a valid key"; break;
    case TN_INVALID_VALUE: why = "needs a non-empty value"; break;
    case TN_KEY_TOO_LONG: why = "is too long a key"; break;
    case TN_VALUE_TOO_LONG: why = "has too long a value"; break;
    case TN_NOT_OWNER: why = "is a temp node owned by another session"; sqlite_rc = SQLITE_PERM; break;
    case TN_NOT_TEMP_NODE: why = "is not a temp node"; break;
    case TN_IS_TEMP_NODE: why = "is a temp node (give ttl_ms to change it)"; break;
    case TN_INVALID_TTL: why = "was given an invalid ttl_ms"; break;
    case TN_UNDER_TEMP_DIR: why = "is under a temp directory (only temp nodes may go there)"; break;
    case TN_NOMEM: return SQLITE_NOMEM;
    default: why = "failed"; break;
    }
    kv_set_error(vt, "tarn: %s: '%.*s%s' %s", tn_code_name(code), klen, (const char *)key, more, why);
    return sqlite_rc;
}

static int bytes_are_text(const uint8_t *p, size_t n)
{
    /* Valid UTF-8 without NUL: returned as TEXT, else as BLOB (docs/sql.md, "value"). */
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len;
        if (c == 0) return 0;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) len = 2;
        else if ((c & 0xf0) == 0xe0) len = 3;
        else if ((c & 0xf8) == 0xf0) len = 4;
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80) return 0;
        if (len == 2 && c < 0xc2) return 0;
        i += len;
    }
    return 1;
}

/* ---- connect / disconnect ----------------------------------------------------------------------- */

static const char *kv_option(const tn_vtab_args *args, const char *name)
{
    const tn_va_option *o = tn_vtab_args_option(args, name);
    return o ? o->value : NULL;
}

/* xCreate and xConnect: the table holds no schema of its own (the tree is the data), so both attach. */
static int kv_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    tn_conn *conn = aux;
    tn_vtab_args *args = NULL;
    kv_vtab *vt = NULL;
    int rc;

    rc = tn_vtab_args_parse(&tn_va_module_tarn_kv, argc - 3, argv + 3, &args, err);
    if (rc != SQLITE_OK) return rc;
    const char *cluster = kv_option(args, "cluster");
    const char *engine = kv_option(args, "engine");
    if (kv_option(args, "data")) {
        *err = sqlite3_mprintf("tarn_kv: option 'data': persistence arrives with the raftnet node; this build "
                               "keeps the embedded engine in memory only");
        rc = SQLITE_ERROR;
        goto fail;
    }
    if (!cluster) cluster = tn_conn_default_cluster(conn);

    rc = sqlite3_declare_vtab(db, kv_schema);
    if (rc != SQLITE_OK) goto fail;
    vt = sqlite3_malloc(sizeof *vt);
    if (!vt) { rc = SQLITE_NOMEM; goto fail; }
    memset(vt, 0, sizeof *vt);
    vt->db = db;
    vt->conn = conn;
    tn_readset_init(&vt->reads);
    rc = tn_conn_client(conn, cluster, engine ? engine : "default", &vt->client, err);
    if (rc != SQLITE_OK) goto fail;
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    tn_vtab_args_free(args);
    *out = &vt->base;
    return SQLITE_OK;
fail:
    sqlite3_free(vt);
    tn_vtab_args_free(args);
    return rc;
}

static int kv_disconnect(sqlite3_vtab *base)
{
    kv_vtab *vt = (kv_vtab *)base;
    tn_readset_clear(&vt->reads);
    tn_conn_release(vt->conn, vt->client);
    sqlite3_free(vt);
    return SQLITE_OK;
}

/* ---- planning ----------------------------------------------------------------------------------- */

static int kv_best_index(sqlite3_vtab *base, sqlite3_index_info *info)
{
    int key_eq = -1, key_in = -1, parent_eq = -1;
    (void)base;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
        if (c->iColumn == KV_COL_KEY) {
            if (sqlite3_vtab_in(info, i, -1)) key_in = i;
            else key_eq = i;
        } else if (c->iColumn == KV_COL_PARENT) {
            parent_eq = i;
        }
    }
    if (key_eq >= 0) {
        info->idxNum = KV_PLAN_KEY_EQ;
        info->idxStr = "key=?";
        info->aConstraintUsage[key_eq].argvIndex = 1;
        info->aConstraintUsage[key_eq].omit = 1;
        info->estimatedCost = 1;
        info->estimatedRows = 1;
        info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
    } else if (key_in >= 0) {
        sqlite3_vtab_in(info, key_in, 1);
        info->idxNum = KV_PLAN_KEY_IN;
        info->idxStr = "key IN (...)";
        info->aConstraintUsage[key_in].argvIndex = 1;
        info->aConstraintUsage[key_in].omit = 1;
        info->estimatedCost = 10;
        info->estimatedRows = 10;
    } else if (parent_eq >= 0) {
        info->idxNum = KV_PLAN_LIST;
        info->idxStr = "parent=?";
        info->aConstraintUsage[parent_eq].argvIndex = 1;
        info->aConstraintUsage[parent_eq].omit = 1;
        info->estimatedCost = 100;
        info->estimatedRows = 100;
        /* Children come in key order, which is the order of their full keys too. */
        if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == KV_COL_KEY && !info->aOrderBy[0].desc)
            info->orderByConsumed = 1;
    } else {
        info->idxNum = KV_PLAN_SCAN;
        info->idxStr = "scan";
        info->estimatedCost = 1e6;
        info->estimatedRows = 1e6;
    }
    return SQLITE_OK;
}

/* ---- cursor ------------------------------------------------------------------------------------- */

static int kv_open(sqlite3_vtab *base, sqlite3_vtab_cursor **out)
{
    kv_cursor *cur = sqlite3_malloc(sizeof *cur);
    (void)base;
    if (!cur) return SQLITE_NOMEM;
    memset(cur, 0, sizeof *cur);
    tn_wr_init(&cur->resp_buf);
    *out = &cur->base;
    return SQLITE_OK;
}

static void kv_cursor_reset(kv_cursor *cur)
{
    if (cur->have_resp) tn_resp_clear(&cur->resp);
    cur->have_resp = 0;
    tn_wr_free(&cur->resp_buf);
    cur->ri = cur->ei = 0;
    cur->eof = 1;
}

static int kv_close(sqlite3_vtab_cursor *base)
{
    kv_cursor *cur = (kv_cursor *)base;
    kv_cursor_reset(cur);
    sqlite3_free(cur->dir);
    sqlite3_free(cur);
    return SQLITE_OK;
}

static const tn_entry *kv_current(const kv_cursor *cur)
{
    return &cur->resp.results[cur->ri].entries[cur->ei];
}

/* Remembers the revision of the row the cursor is on, for the conditional write that may follow. */
static int kv_remember(kv_cursor *cur)
{
    kv_vtab *vt = (kv_vtab *)cur->base.pVtab;
    if (!vt->in_txn) return SQLITE_OK;
    const tn_entry *e = kv_current(cur);
    tn_read_info info = {.rev = e->update_rev, .ttl_ms = e->ttl_ms, .is_dir = e->is_dir};
    return tn_readset_put(&vt->reads, e->key, e->key_len, &info);
}

/* Moves to the first entry at or after (ri, ei) in the current page, skipping results without entries. */
static void kv_settle(kv_cursor *cur)
{
    while (cur->ri < cur->resp.n_results && cur->ei >= cur->resp.results[cur->ri].n_entries) {
        cur->ri++;
        cur->ei = 0;
    }
    cur->eof = cur->ri >= cur->resp.n_results;
}

/* Fetches one page. after/after_len: resume point for LIST/SCAN (NULL = start). */
static int kv_fetch_page(kv_cursor *cur, const uint8_t *after, size_t after_len)
{
    kv_vtab *vt = (kv_vtab *)cur->base.pVtab;
    tn_op op = {.opcode = cur->plan == KV_PLAN_LIST ? TN_OP_KV_LIST : TN_OP_KV_SCAN, .limit = KV_PAGE,
                .after = after, .after_len = after_len};
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr buf;
    tn_resp resp;
    if (cur->plan == KV_PLAN_LIST) {
        op.key = (const uint8_t *)cur->dir;
        op.key_len = (size_t)cur->dir_len;
    }
    tn_wr_init(&buf);
    int rc = kv_call(vt, &req, &buf, &resp);
    if (rc != SQLITE_OK) {
        tn_wr_free(&buf);
        return rc;
    }
    kv_cursor_reset(cur);
    cur->resp_buf = buf;
    cur->resp = resp;
    cur->have_resp = 1;
    int code = resp.n_results ? resp.results[0].code : TN_INTERNAL;
    if (code == TN_NOT_FOUND || code == TN_PARENT_NOT_DIR || code == TN_INVALID_KEY) {
        cur->eof = 1; /* `parent = 'x'` for a missing or non-directory x: no rows, as SQL expects */
        return SQLITE_OK;
    }
    if (code != TN_SUCCESS) return kv_op_error(vt, code, op.key, op.key_len);
    cur->paged = resp.results[0].n_entries == KV_PAGE;
    kv_settle(cur);
    return cur->eof ? SQLITE_OK : kv_remember(cur);
}

static int kv_filter(sqlite3_vtab_cursor *base, int idx_num, const char *idx_str, int argc,
                     sqlite3_value **argv)
{
    kv_cursor *cur = (kv_cursor *)base;
    kv_vtab *vt = (kv_vtab *)base->pVtab;
    int rc;
    (void)idx_str;
    (void)argc;
    kv_cursor_reset(cur);
    cur->plan = idx_num;
    cur->paged = 0;

    if (idx_num == KV_PLAN_LIST) {
        sqlite3_free(cur->dir);
        cur->dir = NULL;
        if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return SQLITE_OK;
        const unsigned char *d = sqlite3_value_text(argv[0]);
        cur->dir_len = sqlite3_value_bytes(argv[0]);
        cur->dir = sqlite3_malloc(cur->dir_len + 1);
        if (!cur->dir || !d) return SQLITE_NOMEM;
        memcpy(cur->dir, d, (size_t)cur->dir_len + 1);
        return kv_fetch_page(cur, NULL, 0);
    }
    if (idx_num == KV_PLAN_SCAN) return kv_fetch_page(cur, NULL, 0);

    /* KEY_EQ / KEY_IN: one request with one GET per key. The IN list's values are only valid until the next
     * one is fetched, so the keys are copied into one buffer and the ops point into it afterwards. */
    size_t n = 0, cap = 0;
    tn_op *ops = NULL;
    tn_wr keys;
    sqlite3_value *v = NULL;
    tn_wr_init(&keys);
    if (idx_num == KV_PLAN_KEY_IN) {
        rc = sqlite3_vtab_in_first(argv[0], &v);
    } else {
        v = argv[0];
        rc = SQLITE_OK;
    }
    while (rc == SQLITE_OK && v) {
        if (sqlite3_value_type(v) != SQLITE_NULL) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                tn_op *grown = sqlite3_realloc64(ops, cap * sizeof *ops);
                if (!grown) { rc = SQLITE_NOMEM; break; }
                ops = grown;
            }
            const unsigned char *k = sqlite3_value_text(v);
            size_t klen = (size_t)sqlite3_value_bytes(v);
            memset(&ops[n], 0, sizeof ops[n]);
            ops[n].opcode = TN_OP_KV_GET;
            ops[n].key_len = klen;
            ops[n].cond_rev = keys.len; /* offset into `keys` until the buffer stops moving */
            tn_wr_raw(&keys, k, klen);
            if (keys.oom) { rc = SQLITE_NOMEM; break; }
            n++;
        }
        if (idx_num != KV_PLAN_KEY_IN) break;
        rc = sqlite3_vtab_in_next(argv[0], &v);
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
    if (rc == SQLITE_OK && n > 0) {
        for (size_t i = 0; i < n; i++) {
            ops[i].key = keys.p + ops[i].cond_rev;
            ops[i].cond_rev = 0;
        }
        tn_req req = {.n_ops = n, .ops = ops};
        tn_wr buf;
        tn_resp resp;
        tn_wr_init(&buf);
        rc = kv_call(vt, &req, &buf, &resp);
        if (rc == SQLITE_OK) {
            cur->resp_buf = buf;
            cur->resp = resp;
            cur->have_resp = 1;
            kv_settle(cur);
            if (!cur->eof) rc = kv_remember(cur);
        } else {
            tn_wr_free(&buf);
        }
    }
    tn_wr_free(&keys);
    sqlite3_free(ops);
    return rc;
}

static int kv_next(sqlite3_vtab_cursor *base)
{
    kv_cursor *cur = (kv_cursor *)base;
    cur->ei++;
    kv_settle(cur);
    if (cur->eof && cur->paged) {
        /* Resume after the last key of this page; copy it first, the page is about to be freed. */
        const tn_result *r = &cur->resp.results[0];
        const tn_entry *last = &r->entries[r->n_entries - 1];
        uint8_t *after = sqlite3_malloc64(last->key_len ? last->key_len : 1);
        if (!after) return SQLITE_NOMEM;
        memcpy(after, last->key, last->key_len);
        int rc = kv_fetch_page(cur, after, last->key_len);
        sqlite3_free(after);
        return rc;
    }
    return cur->eof ? SQLITE_OK : kv_remember(cur);
}

static int kv_eof(sqlite3_vtab_cursor *base) { return ((kv_cursor *)base)->eof; }

static int kv_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col)
{
    kv_cursor *cur = (kv_cursor *)base;
    const tn_entry *e = kv_current(cur);
    switch (col) {
    case KV_COL_KEY:
        sqlite3_result_text(ctx, (const char *)e->key, (int)e->key_len, SQLITE_TRANSIENT);
        break;
    case KV_COL_VALUE:
        /* An UPDATE that does not set value need not fetch it: leave it "unchanged". */
        if (sqlite3_vtab_nochange(ctx)) break;
        if (e->is_dir || !e->value) sqlite3_result_null(ctx);
        else if (bytes_are_text(e->value, e->value_len))
            sqlite3_result_text(ctx, (const char *)e->value, (int)e->value_len, SQLITE_TRANSIENT);
        else
            sqlite3_result_blob(ctx, e->value, (int)e->value_len, SQLITE_TRANSIENT);
        break;
    case KV_COL_IS_DIR: sqlite3_result_int(ctx, e->is_dir); break;
    case KV_COL_TTL_MS:
        if (e->ttl_ms) sqlite3_result_int64(ctx, e->ttl_ms);
        else sqlite3_result_null(ctx);
        break;
    case KV_COL_CREATE_REV: sqlite3_result_int64(ctx, (sqlite3_int64)e->create_rev); break;
    case KV_COL_UPDATE_REV: sqlite3_result_int64(ctx, (sqlite3_int64)e->update_rev); break;
    case KV_COL_CREATE_TIME: sqlite3_result_int64(ctx, e->create_time); break;
    case KV_COL_UPDATE_TIME: sqlite3_result_int64(ctx, e->update_time); break;
    case KV_COL_PARENT: {
        size_t cut = e->key_len;
        while (cut > 0 && e->key[cut - 1] != '.') cut--;
        sqlite3_result_text(ctx, (const char *)e->key, cut ? (int)cut - 1 : 0, SQLITE_TRANSIENT);
        break;
    }
    }
    return SQLITE_OK;
}

static int kv_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
    (void)base;
    *rowid = 0; /* WITHOUT ROWID: SQLite never asks */
    return SQLITE_OK;
}

/* ---- writes ------------------------------------------------------------------------------------- */

/* Sends one write op and checks its result. accept_code: a code treated as success (0 = none). */
static int kv_write(kv_vtab *vt, tn_op *op, int accept_code)
{
    tn_req req = {.n_ops = 1, .ops = op};
    tn_wr buf;
    tn_resp resp;
    tn_wr_init(&buf);
    int rc = kv_call(vt, &req, &buf, &resp);
    if (rc == SQLITE_OK) {
        int code = resp.n_results == 1 ? resp.results[0].code : TN_INTERNAL;
        if (!tn_code_ok(code) && code != accept_code) rc = kv_op_error(vt, code, op->key, op->key_len);
        tn_resp_clear(&resp);
    }
    tn_wr_free(&buf);
    return rc;
}

static int value_is_set(sqlite3_value *v) { return sqlite3_value_type(v) != SQLITE_NULL; }

static int kv_insert(kv_vtab *vt, sqlite3_value **col)
{
    tn_op op;
    memset(&op, 0, sizeof op);
    if (!value_is_set(col[KV_COL_KEY])) {
        kv_set_error(vt, "tarn: INVALID_KEY: key may not be NULL");
        return SQLITE_CONSTRAINT;
    }
    for (int c = KV_COL_CREATE_REV; c <= KV_COL_UPDATE_TIME; c++) {
        if (value_is_set(col[c])) {
            kv_set_error(vt, "tarn: column %s is read-only",
                         (const char *[]){"create_rev", "update_rev", "create_time", "update_time"}
                             [c - KV_COL_CREATE_REV]);
            return SQLITE_CONSTRAINT;
        }
    }
    op.key = sqlite3_value_text(col[KV_COL_KEY]);
    op.key_len = (size_t)sqlite3_value_bytes(col[KV_COL_KEY]);
    int is_dir = value_is_set(col[KV_COL_IS_DIR]) && sqlite3_value_int(col[KV_COL_IS_DIR]) != 0;
    int temp = value_is_set(col[KV_COL_TTL_MS]);
    int replace = sqlite3_vtab_on_conflict(vt->db) == SQLITE_REPLACE;
    if (temp) op.ttl_ms = sqlite3_value_int64(col[KV_COL_TTL_MS]);
    if (is_dir) {
        if (value_is_set(col[KV_COL_VALUE])) {
            kv_set_error(vt, "tarn: INVALID_VALUE: directory '%s' cannot have a value", op.key);
            return SQLITE_CONSTRAINT;
        }
        op.opcode = temp ? TN_OP_KV_MKDIR_TEMP : TN_OP_KV_MKDIR;
        /* mkdir fails on an existing node by itself; REPLACE of an existing directory is a no-op. */
        return kv_write(vt, &op, replace ? TN_DIR_EXISTS : 0);
    }
    if (!value_is_set(col[KV_COL_VALUE])) {
        kv_set_error(vt, "tarn: INVALID_VALUE: '%s' needs a value (or is_dir = 1)", op.key);
        return SQLITE_CONSTRAINT;
    }
    op.value = sqlite3_value_type(col[KV_COL_VALUE]) == SQLITE_BLOB ? sqlite3_value_blob(col[KV_COL_VALUE])
                                                                    : sqlite3_value_text(col[KV_COL_VALUE]);
    op.value_len = (size_t)sqlite3_value_bytes(col[KV_COL_VALUE]);
    if (!op.value) op.value = (const uint8_t *)""; /* zero-length blob: let the engine say INVALID_VALUE */
    op.opcode = temp ? TN_OP_KV_PUT_TEMP : TN_OP_KV_PUT;
    op.cond = replace ? TN_COND_NONE : TN_COND_ABSENT;
    return kv_write(vt, &op, 0);
}

static const tn_read_info *kv_read_of(kv_vtab *vt, sqlite3_value *key)
{
    return tn_readset_get(&vt->reads, sqlite3_value_text(key), (size_t)sqlite3_value_bytes(key));
}

static int kv_delete(kv_vtab *vt, sqlite3_value *key)
{
    tn_op op;
    memset(&op, 0, sizeof op);
    op.opcode = TN_OP_KV_REMOVE;
    op.key = sqlite3_value_text(key);
    op.key_len = (size_t)sqlite3_value_bytes(key);
    const tn_read_info *seen = kv_read_of(vt, key);
    if (seen) {
        op.cond = TN_COND_REV;
        op.cond_rev = seen->rev;
    }
    int rc = kv_write(vt, &op, 0);
    if (rc == SQLITE_ERROR && seen && strstr(vt->base.zErrMsg, "NOT_FOUND")) {
        /* Read, then gone before the delete: someone else changed it. */
        kv_op_error(vt, TN_REVISION_MISMATCH, op.key, op.key_len);
        rc = SQLITE_BUSY;
    }
    return rc;
}

static int kv_update_row(kv_vtab *vt, sqlite3_value *old_key, sqlite3_value **col)
{
    tn_op op;
    const tn_read_info *seen = kv_read_of(vt, old_key);
    memset(&op, 0, sizeof op);
    op.key = sqlite3_value_text(old_key);
    op.key_len = (size_t)sqlite3_value_bytes(old_key);
    if (sqlite3_value_bytes(col[KV_COL_KEY]) != (int)op.key_len ||
        memcmp(sqlite3_value_text(col[KV_COL_KEY]), op.key, op.key_len) != 0) {
        kv_set_error(vt, "tarn: key cannot be changed by UPDATE (delete and insert instead)");
        return SQLITE_CONSTRAINT;
    }
    if (!seen) {
        kv_set_error(vt, "tarn: INTERNAL: no read revision for '%s'", op.key);
        return SQLITE_ERROR;
    }
    int new_dir = value_is_set(col[KV_COL_IS_DIR]) && sqlite3_value_int(col[KV_COL_IS_DIR]) != 0;
    if (new_dir != seen->is_dir) {
        kv_set_error(vt, "tarn: is_dir of '%s' cannot be changed by UPDATE", op.key);
        return SQLITE_CONSTRAINT;
    }
    op.cond = TN_COND_REV;
    op.cond_rev = seen->rev;
    int64_t new_ttl = value_is_set(col[KV_COL_TTL_MS]) ? sqlite3_value_int64(col[KV_COL_TTL_MS]) : 0;
    int value_changed = !sqlite3_value_nochange(col[KV_COL_VALUE]);
    if (value_changed) {
        if (seen->is_dir) {
            if (value_is_set(col[KV_COL_VALUE])) {
                kv_set_error(vt, "tarn: INVALID_VALUE: directory '%s' cannot have a value", op.key);
                return SQLITE_CONSTRAINT;
            }
        } else {
            if (!value_is_set(col[KV_COL_VALUE])) {
                kv_set_error(vt, "tarn: INVALID_VALUE: '%s' cannot be set to NULL (DELETE it instead)", op.key);
                return SQLITE_CONSTRAINT;
            }
            op.value = sqlite3_value_type(col[KV_COL_VALUE]) == SQLITE_BLOB
                           ? sqlite3_value_blob(col[KV_COL_VALUE])
                           : sqlite3_value_text(col[KV_COL_VALUE]);
            op.value_len = (size_t)sqlite3_value_bytes(col[KV_COL_VALUE]);
            if (!op.value) op.value = (const uint8_t *)"";
            if (seen->ttl_ms || new_ttl) {
                op.opcode = TN_OP_KV_PUT_TEMP;
                op.ttl_ms = new_ttl ? new_ttl : seen->ttl_ms;
            } else {
                op.opcode = TN_OP_KV_PUT;
            }
            return kv_write(vt, &op, 0);
        }
    }
    if (new_ttl != seen->ttl_ms) {
        if (!new_ttl) {
            kv_set_error(vt, "tarn: NOT_TEMP_NODE: ttl_ms of '%s' cannot be cleared", op.key);
            return SQLITE_CONSTRAINT;
        }
        op.opcode = TN_OP_KV_UPDATE_TTL;
        op.ttl_ms = new_ttl;
        return kv_write(vt, &op, 0);
    }
    return SQLITE_OK; /* nothing that lives in the store changed */
}

static int kv_update(sqlite3_vtab *base, int argc, sqlite3_value **argv, sqlite3_int64 *rowid)
{
    kv_vtab *vt = (kv_vtab *)base;
    (void)rowid;
    if (argc == 1) return kv_delete(vt, argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return kv_insert(vt, argv + 2);
    return kv_update_row(vt, argv[0], argv + 2);
}

/* ---- transactions: only the read set's lifetime for now ----------------------------------------- */

static int kv_begin(sqlite3_vtab *base)
{
    kv_vtab *vt = (kv_vtab *)base;
    tn_readset_clear(&vt->reads);
    vt->in_txn = 1;
    return SQLITE_OK;
}

static int kv_end(sqlite3_vtab *base)
{
    kv_vtab *vt = (kv_vtab *)base;
    tn_readset_clear(&vt->reads);
    vt->in_txn = 0;
    return SQLITE_OK;
}

static int kv_sync(sqlite3_vtab *base)
{
    (void)base;
    return SQLITE_OK;
}

static sqlite3_module kv_module = {
    .iVersion = 3,
    .xCreate = kv_connect,
    .xConnect = kv_connect,
    .xBestIndex = kv_best_index,
    .xDisconnect = kv_disconnect,
    .xDestroy = kv_disconnect, /* DROP TABLE detaches; the tree stays */
    .xOpen = kv_open,
    .xClose = kv_close,
    .xFilter = kv_filter,
    .xNext = kv_next,
    .xEof = kv_eof,
    .xColumn = kv_column,
    .xRowid = kv_rowid,
    .xUpdate = kv_update,
    .xBegin = kv_begin,
    .xSync = kv_sync,
    .xCommit = kv_end,
    .xRollback = kv_end,
};

int tn_kv_register(sqlite3 *db, tn_conn *conn)
{
    tn_conn_retain(conn);
    return sqlite3_create_module_v2(db, "tarn_kv", &kv_module, conn, tn_conn_free);
}
