/* kv_vtab.c — the `tarn_kv` virtual table: the DtKV tree in SQL (docs/design.md §3, docs/sql.md).
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
 * Writes (xUpdate) are appended to the connection's transaction buffer (txn.h), shared with every `tarn`
 * and `tarn_kv` table of the same store, and committed in xSync as ONE atomic request (an autocommit
 * statement is a one-statement transaction). See docs/transactions.md.
 *   INSERT            create: PUT/PUT_TEMP with cond ABSENT (REPLACE: no cond): an existing key fails the
 *                     commit with SQLITE_CONSTRAINT; a key this transaction already wrote fails at once.
 *                     OR IGNORE / OR FAIL / OR ROLLBACK and directories (MKDIR/MKDIR_TEMP) look the key up
 *                     at once (the transaction's writes, else one GET recorded in the read set), so they
 *                     behave as on a native table (SQLITE_VTAB_CONSTRAINT_SUPPORT).
 *   UPDATE / DELETE   carry the update revision the statement read for that key (cond REV): the commit
 *                     applies them only if the node is unchanged, else COMMIT fails with SQLITE_BUSY naming
 *                     the key. UPDATE kv SET value=… WHERE key=… AND value=… is therefore a compare-and-set.
 *                     A node this transaction wrote itself is changed unconditionally (its earlier op and
 *                     the read set carry the checks).
 * Reads inside a transaction (BEGIN … COMMIT, or a writing statement) merge the transaction's own writes
 * (read-your-writes: point gets, IN lists, directory lists and scans; rows written by the transaction show
 * NULL revisions and times until they commit) and record what they read: keys with their revision or
 * "absent", and for a list or scan the directory's (root's) update revision, which moves whenever anything
 * below it changes (phantom protection, coarse). The commit validates all of it (KV_CHECK ops).
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include <inttypes.h>
#include <string.h>

#include "client.h"
#include "conn.h"
#include "readset.h"
#include "sql_code.h"
#include "tarn_ext.h"
#include "tn_code.h"
#include "txn.h"
#include "vtab_args.h"
#include "vtab_base.h"
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

/* The tree has no schema of its own: a tarn_kv table is the shared base alone (client, transaction buffer,
 * read set; vtab_base.h). */
typedef struct kv_vtab {
    tn_vtab_base vb; /* first: a sqlite3_vtab * is a kv_vtab * */
} kv_vtab;

/* A row of a materialised answer: an entry whose bytes live in the cursor's arena. */
typedef struct kv_row {
    tn_entry e;
    int own; /* written by this transaction (not in the store yet): no revisions */
} kv_row;

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
    /* Materialised mode (reads merged with the transaction's writes, or recorded in its read set). */
    int mat;
    kv_row *rows;
    size_t n_rows, cap_rows, mi;
    tn_wr bytes;         /* keys and values of rows; entries point into it only after finish_rows */
} kv_cursor;

/* ---- helpers ------------------------------------------------------------------------------------ */

/* Maps a per-op failure to an SQLite code (tn_code_to_sqlite) and sets a message naming the DtKV code and
 * the key. */
static int kv_op_error(kv_vtab *vt, int code, const uint8_t *key, size_t key_len)
{
    int klen = key_len > 200 ? 200 : (int)key_len;
    const char *more = key_len > 200 ? "…" : "";
    if (code == TN_NOMEM) return SQLITE_NOMEM;
    const char *why = tn_kv_code_reason(code);
    tn_vtab_error(&vt->vb, "tarn: %s: '%.*s%s' %s", tn_code_name(code), klen, (const char *)key, more, why);
    return tn_code_to_sqlite(code);
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

static void kv_vtab_free(kv_vtab *vt)
{
    if (!vt) return;
    tn_vtab_base_close(&vt->vb);
    sqlite3_free(vt);
}

/* xCreate and xConnect: the table holds no schema of its own (the tree is the data), so both attach. */
static int kv_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    tn_txn_registry *reg = aux;
    tn_vtab_args *args = NULL;
    kv_vtab *vt = NULL;
    int rc;

    rc = tn_vtab_args_parse(&tn_va_module_tarn_kv, argc - 3, argv + 3, &args, err);
    if (rc != SQLITE_OK) return rc;
    const tn_va_option *timeout = tn_vtab_args_option(args, "timeout_ms");
    const tn_va_option *stale = tn_vtab_args_option(args, "stale");
    tn_vtab_target target = {.cluster = kv_option(args, "cluster"), .engine = kv_option(args, "engine"),
                             .data_dir = kv_option(args, "data"), .token = kv_option(args, "token"),
                             .timeout_ms = timeout ? (int)timeout->ival : 0,
                             .stale_reads = stale ? (int)stale->ival : 0};

    rc = sqlite3_declare_vtab(db, kv_schema);
    if (rc != SQLITE_OK) goto fail;
    vt = sqlite3_malloc(sizeof *vt);
    if (!vt) { rc = SQLITE_NOMEM; goto fail; }
    tn_vtab_base_init(&vt->vb, db, reg);
    rc = tn_vtab_base_open(&vt->vb, "tarn_kv", &target, err);
    if (rc != SQLITE_OK) goto fail;
    tn_vtab_args_free(args);
    *out = &vt->vb.base;
    return SQLITE_OK;
fail:
    kv_vtab_free(vt);
    tn_vtab_args_free(args);
    return rc;
}

static int kv_disconnect(sqlite3_vtab *base)
{
    kv_vtab_free((kv_vtab *)base);
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
    tn_wr_init(&cur->bytes);
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

static void kv_rows_reset(kv_cursor *cur)
{
    cur->mat = 0;
    cur->n_rows = cur->mi = 0;
    cur->bytes.len = 0;
    cur->bytes.oom = 0;
}

static int kv_close(sqlite3_vtab_cursor *base)
{
    kv_cursor *cur = (kv_cursor *)base;
    kv_cursor_reset(cur);
    sqlite3_free(cur->rows);
    tn_wr_free(&cur->bytes);
    sqlite3_free(cur->dir);
    sqlite3_free(cur);
    return SQLITE_OK;
}

static const tn_entry *kv_current(const kv_cursor *cur)
{
    if (cur->mat) return &cur->rows[cur->mi].e;
    return &cur->resp.results[cur->ri].entries[cur->ei];
}

/* Remembers the row the cursor is on, for the conditional write that may follow (rev 0 = own row). */
static int kv_remember(kv_cursor *cur)
{
    kv_vtab *vt = (kv_vtab *)cur->base.pVtab;
    if (!tn_vtab_recording(&vt->vb)) return SQLITE_OK;
    const tn_entry *e = kv_current(cur);
    int own = cur->mat && cur->rows[cur->mi].own;
    tn_read_info info = {.rev = own ? 0 : e->update_rev, .ttl_ms = e->ttl_ms, .is_dir = e->is_dir};
    return tn_readset_put(&vt->vb.reads, e->key, e->key_len, &info);
}

/* Records a read of key at rev (0 = absent) in the transaction's read set. */
static int kv_note_read(kv_vtab *vt, const uint8_t *key, size_t len, uint64_t rev)
{
    if (!tn_vtab_recording(&vt->vb)) return SQLITE_OK;
    return tn_vtab_read_noted(&vt->vb, tn_txn_read(vt->vb.txn, TN_TXN_KV, key, len, rev), NULL);
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
    int rc = tn_vtab_call(&vt->vb, &req, &buf, &resp);
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

/* ---- materialised answers ----------------------------------------------------------------------- */

/* Appends a row; its key/value are copied into cur->bytes and stored as offsets until kv_rows_finish. */
static int kv_rows_add(kv_cursor *cur, const tn_entry *e, int own)
{
    if (cur->n_rows == cur->cap_rows) {
        size_t cap = cur->cap_rows ? cur->cap_rows * 2 : 16;
        kv_row *grown = sqlite3_realloc64(cur->rows, cap * sizeof *grown);
        if (!grown) return SQLITE_NOMEM;
        cur->rows = grown;
        cur->cap_rows = cap;
    }
    kv_row *r = &cur->rows[cur->n_rows];
    r->e = *e;
    r->own = own;
    r->e.key = (const uint8_t *)(uintptr_t)cur->bytes.len;
    tn_wr_raw(&cur->bytes, e->key, e->key_len);
    if (e->value) {
        r->e.value = (const uint8_t *)(uintptr_t)cur->bytes.len;
        tn_wr_raw(&cur->bytes, e->value, e->value_len);
    } else {
        r->e.value = NULL;
        r->e.value_len = (size_t)-1; /* marks "no value" until finish */
    }
    if (cur->bytes.oom) return SQLITE_NOMEM;
    cur->n_rows++;
    return SQLITE_OK;
}

static void kv_rows_finish(kv_cursor *cur)
{
    for (size_t i = 0; i < cur->n_rows; i++) {
        tn_entry *e = &cur->rows[i].e;
        e->key = cur->bytes.p + (uintptr_t)e->key;
        if (e->value_len == (size_t)-1) {
            e->value = NULL;
            e->value_len = 0;
        } else {
            e->value = cur->bytes.p + (uintptr_t)e->value;
        }
    }
}

/* Pre-order of the tree: keys compared segment by segment (bytewise, a shorter segment first when one
 * is a prefix of the other), a directory before its subtree. */
static int cmp_preorder(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t i = 0, j = 0;
    while (i < an && j < bn) {
        size_t si = i, sj = j;
        while (i < an && a[i] != '.') i++;
        while (j < bn && b[j] != '.') j++;
        size_t la = i - si, lb = j - sj;
        int c = memcmp(a + si, b + sj, la < lb ? la : lb);
        if (c) return c;
        if (la != lb) return la < lb ? -1 : 1;
        if (i < an) i++;
        if (j < bn) j++;
    }
    return (i < an) - (j < bn);
}

static int cmp_rows(const void *x, const void *y)
{
    const tn_entry *a = &((const kv_row *)x)->e, *b = &((const kv_row *)y)->e;
    return cmp_preorder(a->key, a->key_len, b->key, b->key_len);
}

/* The store's rows followed by the transaction's own PRESENT rows of the answer. */
typedef struct overlay_arg {
    kv_cursor *cur;
    int plan;
    const uint8_t *dir;
    size_t dir_len;
    int rc;
} overlay_arg;

static int parent_is(const uint8_t *key, size_t len, const uint8_t *dir, size_t dir_len)
{
    size_t cut = len;
    while (cut > 0 && key[cut - 1] != '.') cut--;
    size_t plen = cut ? cut - 1 : 0;
    return plen == dir_len && memcmp(key, dir, dir_len) == 0;
}

static int overlay_add(void *p, const uint8_t *key, size_t key_len, int state, const uint8_t *op, size_t op_len)
{
    overlay_arg *a = p;
    if (state != TN_TXN_ROW_PRESENT) return 0;
    if (a->plan == KV_PLAN_LIST && !parent_is(key, key_len, a->dir, a->dir_len)) return 0;
    tn_op o;
    if (tn_txn_kv_decode(op, op_len, &o) != TN_SUCCESS) return 0;
    tn_entry e;
    memset(&e, 0, sizeof e);
    e.key = key;
    e.key_len = key_len;
    e.is_dir = o.opcode == TN_OP_KV_MKDIR || o.opcode == TN_OP_KV_MKDIR_TEMP;
    if (!e.is_dir) {
        e.value = o.value;
        e.value_len = o.value_len;
    }
    if (o.opcode == TN_OP_KV_PUT_TEMP || o.opcode == TN_OP_KV_MKDIR_TEMP) e.ttl_ms = o.ttl_ms;
    a->rc = kv_rows_add(a->cur, &e, 1);
    return a->rc != SQLITE_OK;
}

/* Adds one store entry unless the transaction wrote its key (then the buffer decides). */
static int kv_add_store_entry(kv_cursor *cur, kv_vtab *vt, const tn_entry *e, int overlay)
{
    if (overlay && tn_txn_kv_state(vt->vb.txn, e->key, e->key_len, NULL, NULL, NULL, NULL) != TN_TXN_ROW_UNKNOWN)
        return SQLITE_OK;
    return kv_rows_add(cur, e, 0);
}

/* LIST / SCAN, fully fetched: one request with GET(dir or root) + the first page (one revision), then
 * further pages. The directory's revision goes to the read set: any change below it moves it. */
static int kv_materialize_walk(kv_cursor *cur, kv_vtab *vt, int overlay)
{
    const uint8_t *dir = cur->plan == KV_PLAN_LIST ? (const uint8_t *)cur->dir : (const uint8_t *)"";
    size_t dir_len = cur->plan == KV_PLAN_LIST ? (size_t)cur->dir_len : 0;
    uint8_t *after = NULL;
    size_t after_len = 0;
    int rc = SQLITE_OK, first = 1;
    for (;;) {
        tn_op ops[2];
        memset(ops, 0, sizeof ops);
        ops[0].opcode = TN_OP_KV_GET;
        ops[0].key = dir;
        ops[0].key_len = dir_len;
        tn_op *walk = &ops[first ? 1 : 0];
        walk->opcode = cur->plan == KV_PLAN_LIST ? TN_OP_KV_LIST : TN_OP_KV_SCAN;
        walk->key = cur->plan == KV_PLAN_LIST ? dir : NULL;
        walk->key_len = cur->plan == KV_PLAN_LIST ? dir_len : 0;
        walk->limit = KV_PAGE;
        walk->after = after;
        walk->after_len = after_len;
        tn_req req = {.n_ops = first ? 2 : 1, .ops = ops};
        tn_wr buf;
        tn_resp resp;
        tn_wr_init(&buf);
        rc = tn_vtab_call(&vt->vb, &req, &buf, &resp);
        if (rc != SQLITE_OK) {
            tn_wr_free(&buf);
            break;
        }
        int done = 1;
        if (resp.n_results != req.n_ops) {
            rc = SQLITE_ERROR;
            tn_vtab_error(&vt->vb, "tarn: INTERNAL: malformed answer");
        } else {
            if (first) {
                const tn_result *g = &resp.results[0];
                uint64_t rev = g->code == TN_SUCCESS && g->n_entries ? g->entries[0].update_rev : 0;
                if (g->code == TN_SUCCESS || g->code == TN_NOT_FOUND) rc = kv_note_read(vt, dir, dir_len, rev);
            }
            const tn_result *w = &resp.results[first ? 1 : 0];
            if (rc == SQLITE_OK && w->code == TN_SUCCESS) {
                for (size_t i = 0; i < w->n_entries && rc == SQLITE_OK; i++)
                    rc = kv_add_store_entry(cur, vt, &w->entries[i], overlay);
                if (rc == SQLITE_OK && w->n_entries == KV_PAGE) {
                    const tn_entry *last = &w->entries[w->n_entries - 1];
                    sqlite3_free(after);
                    after = sqlite3_malloc64(last->key_len ? last->key_len : 1);
                    if (!after) rc = SQLITE_NOMEM;
                    else {
                        memcpy(after, last->key, last->key_len);
                        after_len = last->key_len;
                        done = 0;
                    }
                }
            } else if (rc == SQLITE_OK && w->code != TN_NOT_FOUND && w->code != TN_PARENT_NOT_DIR &&
                       w->code != TN_INVALID_KEY) {
                rc = kv_op_error(vt, w->code, dir, dir_len);
            }
        }
        tn_resp_clear(&resp);
        tn_wr_free(&buf);
        first = 0;
        if (rc != SQLITE_OK || done) break;
    }
    sqlite3_free(after);
    if (rc == SQLITE_OK && overlay) {
        overlay_arg a = {.cur = cur, .plan = cur->plan, .dir = dir, .dir_len = dir_len, .rc = SQLITE_OK};
        tn_txn_each_written(vt->vb.txn, TN_TXN_KV, overlay_add, &a);
        rc = a.rc;
    }
    return rc;
}

/* KEY_EQ / KEY_IN: one request with one GET per key not decided by the transaction's own writes. */
static int kv_materialize_keys(kv_cursor *cur, kv_vtab *vt, int idx_num, sqlite3_value *arg, int overlay)
{
    size_t n = 0, cap = 0;
    tn_op *ops = NULL;
    tn_wr keys;
    sqlite3_value *v = NULL;
    int rc;
    tn_wr_init(&keys);
    if (idx_num == KV_PLAN_KEY_IN) {
        rc = sqlite3_vtab_in_first(arg, &v);
    } else {
        v = arg;
        rc = SQLITE_OK;
    }
    while (rc == SQLITE_OK && v) {
        if (sqlite3_value_type(v) != SQLITE_NULL) {
            const unsigned char *k = sqlite3_value_text(v);
            size_t klen = (size_t)sqlite3_value_bytes(v);
            int is_dir = 0;
            const uint8_t *val = NULL;
            size_t vlen = 0;
            int64_t ttl = 0;
            int st = overlay ? tn_txn_kv_state(vt->vb.txn, k, klen, &is_dir, &val, &vlen, &ttl) : TN_TXN_ROW_UNKNOWN;
            if (st == TN_TXN_ROW_PRESENT) {
                tn_entry e;
                memset(&e, 0, sizeof e);
                e.key = k;
                e.key_len = klen;
                e.is_dir = is_dir;
                e.value = val;
                e.value_len = vlen;
                e.ttl_ms = ttl;
                rc = kv_rows_add(cur, &e, 1);
                if (rc) break;
            } else if (st == TN_TXN_ROW_UNKNOWN) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 8;
                    tn_op *grown = sqlite3_realloc64(ops, cap * sizeof *ops);
                    if (!grown) { rc = SQLITE_NOMEM; break; }
                    ops = grown;
                }
                memset(&ops[n], 0, sizeof ops[n]);
                ops[n].opcode = TN_OP_KV_GET;
                ops[n].key_len = klen;
                ops[n].cond_rev = keys.len; /* offset into `keys` until the buffer stops moving */
                tn_wr_raw(&keys, k, klen);
                if (keys.oom) { rc = SQLITE_NOMEM; break; }
                n++;
            }
        }
        if (idx_num != KV_PLAN_KEY_IN) break;
        rc = sqlite3_vtab_in_next(arg, &v);
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
        rc = tn_vtab_call(&vt->vb, &req, &buf, &resp);
        if (rc == SQLITE_OK) {
            for (size_t i = 0; i < resp.n_results && i < n && rc == SQLITE_OK; i++) {
                const tn_result *r = &resp.results[i];
                if (r->code == TN_SUCCESS && r->n_entries) {
                    rc = kv_note_read(vt, ops[i].key, ops[i].key_len, r->entries[0].update_rev);
                    if (rc == SQLITE_OK) rc = kv_rows_add(cur, &r->entries[0], 0);
                } else if (r->code == TN_NOT_FOUND) {
                    rc = kv_note_read(vt, ops[i].key, ops[i].key_len, 0);
                }
            }
            tn_resp_clear(&resp);
        }
        tn_wr_free(&buf);
    }
    tn_wr_free(&keys);
    sqlite3_free(ops);
    return rc;
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
    kv_rows_reset(cur);
    cur->plan = idx_num;
    cur->paged = 0;
    int overlay = tn_txn_table_pending(vt->vb.txn, TN_TXN_KV) > 0;
    int recording = tn_vtab_filter_start(&vt->vb, overlay);

    if (idx_num == KV_PLAN_LIST) {
        sqlite3_free(cur->dir);
        cur->dir = NULL;
        if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return SQLITE_OK;
        const unsigned char *d = sqlite3_value_text(argv[0]);
        cur->dir_len = sqlite3_value_bytes(argv[0]);
        cur->dir = sqlite3_malloc(cur->dir_len + 1);
        if (!cur->dir || !d) return SQLITE_NOMEM;
        memcpy(cur->dir, d, (size_t)cur->dir_len + 1);
        if (!recording && !overlay) return kv_fetch_page(cur, NULL, 0);
    } else if (idx_num == KV_PLAN_SCAN) {
        if (!recording && !overlay) return kv_fetch_page(cur, NULL, 0);
    }
    cur->mat = 1;
    if (idx_num == KV_PLAN_LIST || idx_num == KV_PLAN_SCAN) rc = kv_materialize_walk(cur, vt, overlay);
    else rc = kv_materialize_keys(cur, vt, idx_num, argv[0], overlay);
    if (rc != SQLITE_OK) return rc;
    kv_rows_finish(cur);
    if ((idx_num == KV_PLAN_LIST || idx_num == KV_PLAN_SCAN) && overlay && cur->n_rows > 1)
        qsort(cur->rows, cur->n_rows, sizeof *cur->rows, cmp_rows);
    cur->mi = 0;
    cur->eof = cur->n_rows == 0;
    return cur->eof ? SQLITE_OK : kv_remember(cur);
}

static int kv_next(sqlite3_vtab_cursor *base)
{
    kv_cursor *cur = (kv_cursor *)base;
    if (cur->mat) {
        cur->mi++;
        cur->eof = cur->mi >= cur->n_rows;
        return cur->eof ? SQLITE_OK : kv_remember(cur);
    }
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
    int own = cur->mat && cur->rows[cur->mi].own;
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
    /* A row written by this transaction has no revision or time yet: NULL until it commits. */
    case KV_COL_CREATE_REV: if (!own) sqlite3_result_int64(ctx, (sqlite3_int64)e->create_rev); break;
    case KV_COL_UPDATE_REV: if (!own) sqlite3_result_int64(ctx, (sqlite3_int64)e->update_rev); break;
    case KV_COL_CREATE_TIME: if (!own) sqlite3_result_int64(ctx, e->create_time); break;
    case KV_COL_UPDATE_TIME: if (!own) sqlite3_result_int64(ctx, e->update_time); break;
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

/* ---- writes: appended to the transaction buffer (committed in xSync) ----------------------------- */

static int kv_buffer(kv_vtab *vt, const tn_op *op)
{
    return tn_vtab_buffered(&vt->vb, tn_txn_kv_add(vt->vb.txn, op), "write of '%.*s'", (int)op->key_len, op->key);
}

/* The node at key as this transaction sees it: its own writes, else one GET (recorded in the read set).
 * *exists, *is_dir. */
static int kv_lookup(kv_vtab *vt, const uint8_t *key, size_t len, int *exists, int *is_dir)
{
    int st = tn_txn_kv_state(vt->vb.txn, key, len, is_dir, NULL, NULL, NULL);
    if (st != TN_TXN_ROW_UNKNOWN) {
        *exists = st == TN_TXN_ROW_PRESENT;
        return SQLITE_OK;
    }
    tn_op op = {.opcode = TN_OP_KV_GET, .key = key, .key_len = len};
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr buf;
    tn_resp resp;
    tn_wr_init(&buf);
    int rc = tn_vtab_call(&vt->vb, &req, &buf, &resp);
    if (rc == SQLITE_OK) {
        const tn_result *r = resp.n_results ? &resp.results[0] : NULL;
        *exists = r && r->code == TN_SUCCESS && r->n_entries;
        *is_dir = *exists ? r->entries[0].is_dir : 0;
        if (r && (r->code == TN_SUCCESS || r->code == TN_NOT_FOUND)) {
            int code = tn_txn_read(vt->vb.txn, TN_TXN_KV, key, len, *exists ? r->entries[0].update_rev : 0);
            rc = tn_vtab_read_noted(&vt->vb, code, NULL);
        } else if (r) {
            rc = kv_op_error(vt, r->code, key, len);
        }
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
        tn_vtab_error(&vt->vb, "tarn: INVALID_KEY: key may not be NULL");
        return SQLITE_CONSTRAINT;
    }
    for (int c = KV_COL_CREATE_REV; c <= KV_COL_UPDATE_TIME; c++) {
        if (value_is_set(col[c])) {
            tn_vtab_error(&vt->vb, "tarn: column %s is read-only",
                          (const char *[]){"create_rev", "update_rev", "create_time", "update_time"}
                              [c - KV_COL_CREATE_REV]);
            return SQLITE_CONSTRAINT;
        }
    }
    op.key = sqlite3_value_text(col[KV_COL_KEY]);
    op.key_len = (size_t)sqlite3_value_bytes(col[KV_COL_KEY]);
    int is_dir = value_is_set(col[KV_COL_IS_DIR]) && sqlite3_value_int(col[KV_COL_IS_DIR]) != 0;
    int temp = value_is_set(col[KV_COL_TTL_MS]);
    int conflict = sqlite3_vtab_on_conflict(vt->vb.db);
    int replace = conflict == SQLITE_REPLACE;
    if (temp) op.ttl_ms = sqlite3_value_int64(col[KV_COL_TTL_MS]);
    if (is_dir) {
        if (value_is_set(col[KV_COL_VALUE])) {
            tn_vtab_error(&vt->vb, "tarn: INVALID_VALUE: directory '%s' cannot have a value", op.key);
            return SQLITE_CONSTRAINT;
        }
        op.opcode = temp ? TN_OP_KV_MKDIR_TEMP : TN_OP_KV_MKDIR;
    } else {
        if (!value_is_set(col[KV_COL_VALUE])) {
            tn_vtab_error(&vt->vb, "tarn: INVALID_VALUE: '%s' needs a value (or is_dir = 1)", op.key);
            return SQLITE_CONSTRAINT;
        }
        op.value = sqlite3_value_type(col[KV_COL_VALUE]) == SQLITE_BLOB ? sqlite3_value_blob(col[KV_COL_VALUE])
                                                                        : sqlite3_value_text(col[KV_COL_VALUE]);
        op.value_len = (size_t)sqlite3_value_bytes(col[KV_COL_VALUE]);
        if (!op.value) op.value = (const uint8_t *)""; /* zero-length blob: let the engine say INVALID_VALUE */
        op.opcode = temp ? TN_OP_KV_PUT_TEMP : TN_OP_KV_PUT;
        op.cond = replace ? TN_COND_NONE : TN_COND_ABSENT;
    }
    int exists = 0, node_dir = 0, rc;
    if (conflict == SQLITE_ABORT && !is_dir) {
        /* The commit checks ABSENT; a key this transaction already wrote fails now. */
        if (tn_txn_kv_state(vt->vb.txn, op.key, op.key_len, NULL, NULL, NULL, NULL) == TN_TXN_ROW_PRESENT)
            return kv_op_error(vt, TN_VALUE_EXISTS, op.key, op.key_len);
        return kv_buffer(vt, &op);
    }
    /* Directories (mkdir has no ABSENT cond of its own), IGNORE, FAIL, ROLLBACK, REPLACE of a directory:
     * decide now from what the transaction sees (the read is validated at commit). */
    if (!replace || is_dir) {
        if ((rc = kv_lookup(vt, op.key, op.key_len, &exists, &node_dir))) return rc;
        if (exists) {
            if (replace && node_dir) return SQLITE_OK; /* REPLACE of an existing directory: nothing to do */
            if (replace) return kv_op_error(vt, TN_VALUE_EXISTS, op.key, op.key_len);
            return kv_op_error(vt, node_dir ? TN_DIR_EXISTS : TN_VALUE_EXISTS, op.key, op.key_len);
        }
    }
    return kv_buffer(vt, &op);
}

static const tn_read_info *kv_read_of(kv_vtab *vt, sqlite3_value *key)
{
    return tn_readset_get(&vt->vb.reads, sqlite3_value_text(key), (size_t)sqlite3_value_bytes(key));
}

static int kv_delete(kv_vtab *vt, sqlite3_value *key)
{
    tn_op op;
    memset(&op, 0, sizeof op);
    op.opcode = TN_OP_KV_REMOVE;
    op.key = sqlite3_value_text(key);
    op.key_len = (size_t)sqlite3_value_bytes(key);
    const tn_read_info *seen = kv_read_of(vt, key);
    if (seen && seen->rev) {
        op.cond = TN_COND_REV; /* unchanged since this statement read it */
        op.cond_rev = seen->rev;
    }
    return kv_buffer(vt, &op);
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
        tn_vtab_error(&vt->vb, "tarn: key cannot be changed by UPDATE (delete and insert instead)");
        return SQLITE_CONSTRAINT;
    }
    if (!seen) {
        tn_vtab_error(&vt->vb, "tarn: INTERNAL: no read revision for '%s'", op.key);
        return SQLITE_ERROR;
    }
    int new_dir = value_is_set(col[KV_COL_IS_DIR]) && sqlite3_value_int(col[KV_COL_IS_DIR]) != 0;
    if (new_dir != seen->is_dir) {
        tn_vtab_error(&vt->vb, "tarn: is_dir of '%s' cannot be changed by UPDATE", op.key);
        return SQLITE_CONSTRAINT;
    }
    /* A row this transaction wrote (rev 0) is changed whatever its revision: its earlier op carries the
     * checks against what was read. */
    op.cond = seen->rev ? TN_COND_REV : TN_COND_NONE;
    op.cond_rev = seen->rev;
    int64_t new_ttl = value_is_set(col[KV_COL_TTL_MS]) ? sqlite3_value_int64(col[KV_COL_TTL_MS]) : 0;
    int value_changed = !sqlite3_value_nochange(col[KV_COL_VALUE]);
    if (value_changed) {
        if (seen->is_dir) {
            if (value_is_set(col[KV_COL_VALUE])) {
                tn_vtab_error(&vt->vb, "tarn: INVALID_VALUE: directory '%s' cannot have a value", op.key);
                return SQLITE_CONSTRAINT;
            }
        } else {
            if (!value_is_set(col[KV_COL_VALUE])) {
                tn_vtab_error(&vt->vb, "tarn: INVALID_VALUE: '%s' cannot be set to NULL (DELETE it instead)", op.key);
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
            return kv_buffer(vt, &op);
        }
    }
    if (new_ttl != seen->ttl_ms) {
        if (!new_ttl) {
            tn_vtab_error(&vt->vb, "tarn: NOT_TEMP_NODE: ttl_ms of '%s' cannot be cleared", op.key);
            return SQLITE_CONSTRAINT;
        }
        op.opcode = TN_OP_KV_UPDATE_TTL;
        op.ttl_ms = new_ttl;
        return kv_buffer(vt, &op);
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

static sqlite3_module kv_module = {
    .iVersion = 3,                       /* savepoints (xSavepoint, xRelease, xRollbackTo) */
    .xCreate = kv_connect,               /* the tree is the data: creating only attaches */
    .xConnect = kv_connect,
    .xBestIndex = kv_best_index,         /* the KV_PLAN_* plans above */
    .xDisconnect = kv_disconnect,
    .xDestroy = kv_disconnect,           /* DROP TABLE detaches; the tree stays */
    .xOpen = kv_open,
    .xClose = kv_close,
    .xFilter = kv_filter,                /* paged, or materialised and merged with the buffer in a transaction */
    .xNext = kv_next,
    .xEof = kv_eof,
    .xColumn = kv_column,
    .xRowid = kv_rowid,                  /* WITHOUT ROWID: never called */
    .xUpdate = kv_update,                /* appends to the transaction buffer */
    .xBegin = tn_vtab_xbegin,            /* vtab_base.c, shared with tarn: */
    .xSync = tn_vtab_xsync,              /*   the commit point: one atomic request */
    .xCommit = tn_vtab_xend,             /*   return value ignored by SQLite: only drops the buffer */
    .xRollback = tn_vtab_xend,
    .xSavepoint = tn_vtab_xsavepoint,    /*   marks in the buffer */
    .xRelease = tn_vtab_xrelease,
    .xRollbackTo = tn_vtab_xrollback_to,
    .xFindFunction = NULL,               /* no overloaded functions */
    .xRename = NULL,                     /* ALTER TABLE RENAME renames the SQL table only */
};

int tn_kv_register(sqlite3 *db, tn_txn_registry *reg)
{
    tn_txn_registry_retain(reg);
    return sqlite3_create_module_v2(db, "tarn_kv", &kv_module, reg, tn_txn_registry_unref);
}
