/* coll_vtab.c — the `tarn` virtual table: a Cachalot-style typed collection in SQL (docs/design.md §2-3,
 * docs/sql.md).
 *
 *   CREATE VIRTUAL TABLE events USING tarn(id INTEGER PRIMARY KEY, event_type TEXT INDEXED,
 *       event_date TEXT ORDERED, version INTEGER, body JSON, compress=lz4, collection='events');
 *
 * Declaring. Exactly one single-column PRIMARY KEY (INTEGER or TEXT); INDEXED (hash) and ORDERED columns;
 * plain columns; JSON (plain, TEXT to SQLite). Options: collection (default: the table name), compress
 * (lz4 | none), cluster, engine. xCreate and xConnect both send CREATE_COLLECTION: it creates the
 * collection or attaches when the stored schema is identical; a different schema fails with the server's
 * message naming the difference. DROP TABLE only detaches (xDestroy = xDisconnect); the data goes with
 * tarn_drop_collection('name' [, 'engine-or-cluster-urls']).
 * SQLite sees "CREATE TABLE x(<columns with their affinity types>, PRIMARY KEY(pk)) WITHOUT ROWID".
 *
 * Values. Column affinity is applied as a native table would — INTEGER (numeric, exact reals become
 * integers), REAL, TEXT (JSON too), BLOB (none) — to stored values and to constraint values in xFilter, so
 * `id = '5'` finds row 5. The INTEGER primary key must hold an integer and a TEXT one text (like a rowid
 * alias): anything else is SQLITE_MISMATCH.
 *
 * The module is split along its seams; coll_vtab_int.h is the contract between the files:
 *   coll_vtab.c        this file: the module and its slots, connect/create, the cursor (xOpen … xColumn),
 *                      value conversion and requests used by the others, tarn_drop_collection()
 *   coll_vtab_decl.c   the CREATE VIRTUAL TABLE declaration -> a collection schema and options
 *   coll_vtab_plan.c   xBestIndex and the plan it hands xFilter (its idxNum / idxStr encoding is documented
 *                      at the top of that file)
 *   coll_vtab_merge.c  reads inside a transaction: read-your-writes merging and the read set
 *   coll_vtab_write.c  xUpdate: INSERT / UPDATE / DELETE appended to the transaction buffer
 * What `tarn` shares with `tarn_kv` (client, transaction slots, the request call) is vtab_base.c.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include <string.h>

#include "client.h"
#include "coll_vtab_int.h"
#include "conn.h"
#include "sql_code.h"
#include "tarn_ext.h"
#include "tn_code.h"

/* ---- per-connection module context -------------------------------------------------------------- */

typedef struct coll_ctx {
    int refs;
    tn_conn *conn;
    tn_txn_registry *txns; /* one transaction per client of this connection, shared with tarn_kv */
    /* Clients (and so embedded engines) live as long as the connection: conn.c keeps them even when no
     * table uses them, so a schema reset that disconnects every table does not drop an in-memory store. */
} coll_ctx;

static void coll_ctx_free(void *p)
{
    coll_ctx *ctx = p;
    if (!ctx || --ctx->refs > 0) return;
    tn_txn_registry_unref(ctx->txns);
    tn_conn_free(ctx->conn);
    sqlite3_free(ctx);
}

int tn_collvt_affinity(int type)
{
    switch (type) {
    case TN_T_INTEGER: return AFF_INTEGER;
    case TN_T_REAL: return AFF_REAL;
    case TN_T_TEXT:
    case TN_T_JSON: return AFF_TEXT;
    default: return AFF_BLOB;
    }
}

static const char *sql_type(int type)
{
    switch (type) {
    case TN_T_INTEGER: return "INTEGER";
    case TN_T_REAL: return "REAL";
    case TN_T_BLOB: return "BLOB";
    default: return "TEXT";
    }
}

/* ---- small arena (coll_vtab_int.h) ------------------------------------------------------------------- */

void *tn_collvt_arena_alloc(arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7; /* keep every allocation 8-byte aligned (tn_val arrays live here too) */
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 4000 ? n : 4000;
        arena_block *b = sqlite3_malloc64(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

void tn_collvt_arena_free(arena *a)
{
    while (a->head) {
        arena_block *b = a->head;
        a->head = b->next;
        sqlite3_free(b);
    }
}

int tn_collvt_arena_copy(arena *a, const void *p, size_t n, const uint8_t **out)
{
    uint8_t *d = tn_collvt_arena_alloc(a, n ? n : 1);
    if (!d) return SQLITE_NOMEM;
    if (n) memcpy(d, p, n);
    *out = d;
    return SQLITE_OK;
}

/* ---- affinity: sqlite3_value -> tn_val as a column of that type would store / compare it -------------- */

static int real_as_int(double r, int64_t *out)
{
    if (!(r > -9223372036854775808.0 && r < 9223372036854775808.0)) return 0;
    int64_t i = (int64_t)r;
    if ((double)i != r || i == INT64_MIN || i == INT64_MAX) return 0;
    *out = i;
    return 1;
}

/* Converts v under affinity aff; TEXT/BLOB bytes are copied into a. SQLITE_OK or SQLITE_NOMEM. */
int tn_collvt_to_val(sqlite3_value *v, int aff, arena *a, tn_val *out)
{
    int t = sqlite3_value_type(v);
    int64_t i;
    if (t == SQLITE_TEXT && (aff == AFF_INTEGER || aff == AFF_REAL)) {
        /* Numeric affinity on text: convert when it looks like a number (SQLite's own rules). */
        sqlite3_value *dup = sqlite3_value_dup(v);
        if (!dup) return SQLITE_NOMEM;
        int nt = sqlite3_value_numeric_type(dup);
        if (nt == SQLITE_INTEGER) {
            i = sqlite3_value_int64(dup);
            *out = aff == AFF_REAL ? tn_val_real((double)i) : tn_val_int(i);
        } else if (nt == SQLITE_FLOAT) {
            double r = sqlite3_value_double(dup);
            *out = aff == AFF_INTEGER && real_as_int(r, &i) ? tn_val_int(i) : tn_val_real(r);
        }
        sqlite3_value_free(dup);
        if (nt == SQLITE_INTEGER || nt == SQLITE_FLOAT) return SQLITE_OK;
    }
    switch (t) {
    case SQLITE_NULL:
        *out = tn_val_null();
        return SQLITE_OK;
    case SQLITE_INTEGER:
        i = sqlite3_value_int64(v);
        if (aff == AFF_REAL) *out = tn_val_real((double)i);
        else if (aff != AFF_TEXT) *out = tn_val_int(i);
        else break;
        return SQLITE_OK;
    case SQLITE_FLOAT: {
        double r = sqlite3_value_double(v);
        if (aff == AFF_INTEGER && real_as_int(r, &i)) *out = tn_val_int(i);
        else if (aff != AFF_TEXT) *out = tn_val_real(r);
        else break;
        return SQLITE_OK;
    }
    case SQLITE_BLOB: {
        const uint8_t *p;
        size_t n = (size_t)sqlite3_value_bytes(v);
        if (tn_collvt_arena_copy(a, sqlite3_value_blob(v), n, &p)) return SQLITE_NOMEM;
        *out = tn_val_blob(p, n);
        return SQLITE_OK;
    }
    default:
        break; /* TEXT, or a number under TEXT affinity */
    }
    /* Text, or a number rendered as text exactly as SQLite renders it (on a copy: v stays as it is). */
    sqlite3_value *dup = t == SQLITE_TEXT ? NULL : sqlite3_value_dup(v);
    sqlite3_value *src = dup ? dup : v;
    if (t != SQLITE_TEXT && !dup) return SQLITE_NOMEM;
    const unsigned char *s = sqlite3_value_text(src);
    size_t n = (size_t)sqlite3_value_bytes(src);
    const uint8_t *p;
    int rc = !s ? SQLITE_NOMEM : tn_collvt_arena_copy(a, s, n, &p);
    if (dup) sqlite3_value_free(dup);
    if (rc) return rc;
    *out = tn_val_text(p, n);
    return SQLITE_OK;
}

static void result_val(sqlite3_context *ctx, const tn_val *v)
{
    switch (v->type) {
    case TN_V_INT: sqlite3_result_int64(ctx, v->u.i); break;
    case TN_V_REAL: sqlite3_result_double(ctx, v->u.r); break;
    case TN_V_TEXT: sqlite3_result_text(ctx, (const char *)v->u.p, (int)v->n, SQLITE_TRANSIENT); break;
    case TN_V_BLOB: sqlite3_result_blob(ctx, v->u.p, (int)v->n, SQLITE_TRANSIENT); break;
    default: sqlite3_result_null(ctx); break;
    }
}

/* ---- requests ----------------------------------------------------------------------------------- */

/* One request with one op; decodes the response into *resp (pointing into *buf). SQLITE_OK, or an error
 * with the vtab message set. */
static int coll_call(coll_vtab *vt, tn_op *op, tn_wr *buf, tn_resp *resp)
{
    tn_req req = {.n_ops = 1, .ops = op};
    int rc = tn_vtab_call(&vt->vb, &req, buf, resp);
    if (rc == SQLITE_OK && resp->n_results != 1) {
        tn_vtab_error(&vt->vb, "tarn: INTERNAL: %u results for one op from %s", (unsigned)resp->n_results,
                      tn_client_target(vt->vb.client));
        tn_resp_clear(resp);
        rc = SQLITE_ERROR;
    }
    return rc;
}

/* Runs query q; on SQLITE_OK *res is decoded (pointing into *buf) and successful, and the caller clears
 * resp and res and frees buf. */
int tn_collvt_query(coll_vtab *vt, const tn_coll_query *q, tn_wr *buf, tn_resp *resp, tn_coll_result *res)
{
    tn_wr qb;
    tn_wr_init(&qb);
    int code = tn_coll_query_encode(q, &qb);
    if (code != TN_SUCCESS || qb.oom) {
        tn_wr_free(&qb);
        if (code == TN_CLIENT_REQ_ERROR) {
            tn_vtab_error(&vt->vb, "tarn: CLIENT_REQ_ERROR: query on '%s' is above the limits (at most %u IN values)",
                          vt->name, TN_COLL_MAX_IN);
            return tn_code_to_sqlite(TN_TOO_LARGE); /* the query is too large to send */
        }
        return SQLITE_NOMEM;
    }
    tn_op op = {.opcode = TN_OP_COLL_READ, .key = (const uint8_t *)vt->name, .key_len = strlen(vt->name),
                .value = qb.p, .value_len = qb.len};
    int rc = coll_call(vt, &op, buf, resp);
    tn_wr_free(&qb);
    if (rc != SQLITE_OK) return rc;
    const tn_result *r = &resp->results[0];
    memset(res, 0, sizeof *res);
    code = tn_coll_result_decode(r->blob, r->blob_len, res);
    if (code != TN_SUCCESS) {
        tn_resp_clear(resp);
        if (code == TN_NOMEM) return SQLITE_NOMEM;
        tn_vtab_error(&vt->vb, "tarn: %s: malformed answer from %s (op code %s)", tn_code_name(code),
                      tn_client_target(vt->vb.client), tn_code_name(r->code));
        return tn_code_to_sqlite(code);
    }
    if (res->code != TN_SUCCESS) {
        if (res->code == TN_NO_SUCH_COLLECTION)
            tn_vtab_error(&vt->vb, "tarn: NO_SUCH_COLLECTION: collection '%s' does not exist (dropped?)", vt->name);
        else
            tn_vtab_error(&vt->vb, "tarn: %s: %.*s", tn_code_name(res->code), (int)res->message_len, res->message);
        rc = tn_code_to_sqlite(res->code);
        tn_coll_result_clear(res);
        tn_resp_clear(resp);
        return rc;
    }
    return SQLITE_OK;
}

/* ---- connect / disconnect ----------------------------------------------------------------------- */

static void vtab_free(coll_vtab *vt)
{
    if (!vt) return;
    tn_vtab_base_close(&vt->vb);
    for (size_t i = 0; i < vt->schema.n_cols; i++) sqlite3_free((char *)vt->schema.cols[i].name);
    sqlite3_free(vt->schema.cols);
    tn_coll_stats_clear(&vt->stats);
    tn_rowpack_scratch_free(&vt->pack);
    tn_wr_free(&vt->payload);
    sqlite3_free(vt->slot_of);
    sqlite3_free(vt->plain_of);
    sqlite3_free(vt->plain_cols);
    sqlite3_free(vt->row_vals);
    sqlite3_free(vt->idx_vals);
    sqlite3_free(vt->plain_vals);
    sqlite3_free(vt->name);
    sqlite3_free(vt->table);
    sqlite3_free(vt);
}

/* Sends CREATE_COLLECTION: creates, or attaches to an identical stored schema. */
static int create_collection(coll_vtab *vt, char **err)
{
    tn_wr payload, buf;
    tn_resp resp;
    int rc;
    tn_wr_init(&payload);
    tn_wr_init(&buf);
    int code = tn_coll_create_encode(&vt->schema, &payload);
    if (code != TN_SUCCESS || payload.oom) {
        tn_wr_free(&payload);
        return SQLITE_NOMEM;
    }
    tn_op op = {.opcode = TN_OP_COLL_WRITE, .key = (const uint8_t *)vt->name, .key_len = strlen(vt->name),
                .value = payload.p, .value_len = payload.len};
    rc = coll_call(vt, &op, &buf, &resp);
    tn_wr_free(&payload);
    if (rc != SQLITE_OK) {
        *err = sqlite3_mprintf("%s", vt->vb.base.zErrMsg ? vt->vb.base.zErrMsg : "tarn: request failed");
        tn_wr_free(&buf);
        return rc;
    }
    const tn_result *r = &resp.results[0];
    if (!tn_code_ok(r->code)) {
        tn_coll_write_result wr;
        memset(&wr, 0, sizeof wr);
        if (r->blob_len && tn_coll_write_result_decode(r->blob, r->blob_len, &wr) == TN_SUCCESS && wr.message_len)
            *err = sqlite3_mprintf("tarn: %s: collection '%s': %.*s", tn_code_name(r->code), vt->name,
                                   (int)wr.message_len, wr.message);
        else
            *err = sqlite3_mprintf("tarn: %s: collection '%s' could not be created", tn_code_name(r->code),
                                   vt->name);
        tn_coll_write_result_clear(&wr);
        rc = tn_code_to_sqlite(r->code);
    }
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    return rc;
}

static int coll_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                        char **err)
{
    coll_ctx *ctx = aux;
    coll_decl d;
    coll_vtab *vt = NULL;
    sqlite3_str *sql = NULL;
    char msg[256];
    int rc = tn_collvt_decl_parse(argc, argv, &d, err);
    if (rc != SQLITE_OK) goto fail;

    vt = sqlite3_malloc(sizeof *vt);
    if (!vt) { rc = SQLITE_NOMEM; goto fail; }
    memset(vt, 0, sizeof *vt);
    tn_vtab_base_init(&vt->vb, db, ctx->txns);
    tn_rowpack_scratch_init(&vt->pack);
    tn_wr_init(&vt->payload);
    vt->table = sqlite3_mprintf("%s", argv[2]);
    vt->name = d.collection ? d.collection : sqlite3_mprintf("%s", argv[2]);
    d.collection = NULL;
    vt->schema.cols = d.cols;
    vt->schema.n_cols = d.n_cols;
    vt->schema.compress = (uint8_t)d.compress;
    d.cols = NULL;
    d.n_cols = 0;
    if (!vt->table || !vt->name) { rc = SQLITE_NOMEM; goto fail; }
    if (strlen(vt->name) > TN_COLL_MAX_NAME) {
        *err = sqlite3_mprintf("tarn: option collection: name longer than %u bytes", TN_COLL_MAX_NAME);
        rc = SQLITE_ERROR;
        goto fail;
    }
    if (tn_coll_schema_validate(&vt->schema, msg, sizeof msg) != TN_SUCCESS) {
        *err = sqlite3_mprintf("tarn: %s", msg);
        rc = SQLITE_ERROR;
        goto fail;
    }
    size_t nc = vt->schema.n_cols;
    vt->pk_col = tn_coll_schema_pk(&vt->schema);
    vt->n_idx = tn_coll_schema_n_idx(&vt->schema);
    vt->slot_of = sqlite3_malloc64(nc * sizeof *vt->slot_of);
    vt->plain_of = sqlite3_malloc64(nc * sizeof *vt->plain_of);
    vt->plain_cols = sqlite3_malloc64(nc * sizeof *vt->plain_cols);
    vt->row_vals = sqlite3_malloc64(nc * sizeof *vt->row_vals);
    vt->idx_vals = sqlite3_malloc64((vt->n_idx + 1) * sizeof *vt->idx_vals);
    vt->plain_vals = sqlite3_malloc64(nc * sizeof *vt->plain_vals);
    if (!vt->slot_of || !vt->plain_of || !vt->plain_cols || !vt->row_vals || !vt->idx_vals || !vt->plain_vals) {
        rc = SQLITE_NOMEM;
        goto fail;
    }
    for (size_t c = 0; c < nc; c++) {
        vt->slot_of[c] = tn_coll_schema_slot(&vt->schema, c);
        vt->plain_of[c] = -1;
        if (vt->schema.cols[c].role == TN_R_PLAIN) {
            vt->plain_of[c] = (int)vt->n_plain;
            vt->plain_cols[vt->n_plain++] = c;
        }
    }

    /* The SQLite view of the table. */
    sql = sqlite3_str_new(db);
    sqlite3_str_appendall(sql, "CREATE TABLE x(");
    for (size_t c = 0; c < nc; c++)
        sqlite3_str_appendf(sql, "\"%w\" %s, ", vt->schema.cols[c].name, sql_type(vt->schema.cols[c].type));
    sqlite3_str_appendf(sql, "PRIMARY KEY(\"%w\")) WITHOUT ROWID", vt->schema.cols[vt->pk_col].name);
    char *ddl = sqlite3_str_finish(sql);
    sql = NULL;
    if (!ddl) { rc = SQLITE_NOMEM; goto fail; }
    rc = sqlite3_declare_vtab(db, ddl);
    sqlite3_free(ddl);
    if (rc != SQLITE_OK) {
        *err = sqlite3_mprintf("tarn: could not declare the table: %s", sqlite3_errmsg(db));
        goto fail;
    }

    tn_vtab_target target = {.cluster = d.cluster, .engine = d.engine, .data_dir = d.data_dir, .token = d.token,
                             .timeout_ms = d.timeout_ms, .stale_reads = d.stale_reads};
    rc = tn_vtab_base_open(&vt->vb, "tarn", &target, err);
    if (rc != SQLITE_OK) goto fail;
    if (tn_txn_collection(vt->vb.txn, vt->name, vt->schema.cols[vt->pk_col].name, &vt->txn_coll) != TN_SUCCESS) {
        rc = SQLITE_NOMEM;
        goto fail;
    }
    rc = create_collection(vt, err);
    if (rc != SQLITE_OK) goto fail;
    sqlite3_free(vt->vb.base.zErrMsg);
    vt->vb.base.zErrMsg = NULL;
    tn_collvt_decl_free(&d);
    *out = &vt->vb.base;
    return SQLITE_OK;
fail:
    if (sql) sqlite3_free(sqlite3_str_finish(sql));
    vtab_free(vt);
    tn_collvt_decl_free(&d);
    return rc;
}

static int coll_disconnect(sqlite3_vtab *base)
{
    vtab_free((coll_vtab *)base);
    return SQLITE_OK;
}

/* ---- cursor ------------------------------------------------------------------------------------- */

static int coll_open(sqlite3_vtab *base, sqlite3_vtab_cursor **out)
{
    coll_vtab *vt = (coll_vtab *)base;
    coll_cursor *cur = sqlite3_malloc(sizeof *cur);
    if (!cur) return SQLITE_NOMEM;
    memset(cur, 0, sizeof *cur);
    cur->plain = sqlite3_malloc64((vt->n_plain + 1) * sizeof *cur->plain);
    if (!cur->plain) {
        sqlite3_free(cur);
        return SQLITE_NOMEM;
    }
    tn_wr_init(&cur->resp_buf);
    tn_rowpack_scratch_init(&cur->scratch);
    cur->eof = 1;
    *out = &cur->base;
    return SQLITE_OK;
}

static void cursor_reset(coll_cursor *cur)
{
    if (cur->have_res) tn_coll_result_clear(&cur->res);
    if (cur->have_resp) tn_resp_clear(&cur->resp);
    cur->have_res = cur->have_resp = 0;
    tn_wr_free(&cur->resp_buf);
    cur->i = 0;
    cur->eof = 1;
    cur->unpacked = 0;
    cur->mat = 0;
    cur->n_rows = 0;
    tn_wr_free(&cur->own_bytes);
    sqlite3_free(cur->own_vals);
    cur->own_vals = NULL;
}

static int coll_close(sqlite3_vtab_cursor *base)
{
    coll_cursor *cur = (coll_cursor *)base;
    cursor_reset(cur);
    sqlite3_free(cur->rows);
    sqlite3_free(cur->own);
    tn_rowpack_scratch_free(&cur->scratch);
    sqlite3_free(cur->plain);
    sqlite3_free(cur);
    return SQLITE_OK;
}

/* Inside a write transaction, remembers the revision of the row the cursor is on (UpdateIf). */
static int remember_row(coll_cursor *cur)
{
    coll_vtab *vt = (coll_vtab *)cur->base.pVtab;
    if (!tn_vtab_recording(&vt->vb) || cur->eof) return SQLITE_OK;
    if (cur->mat && cur->own[cur->i]) return SQLITE_OK; /* the transaction's own row: no revision */
    const tn_coll_rrow *row = cur_row(cur);
    tn_wr w;
    tn_wr_init(&w);
    tn_val_encode(&row->pk, &w);
    if (w.oom) return SQLITE_NOMEM;
    tn_read_info info = {.rev = row->rev};
    int rc = tn_readset_put(&vt->vb.reads, w.p, w.len, &info);
    tn_wr_free(&w);
    return rc;
}

static int coll_filter(sqlite3_vtab_cursor *base, int idx_num, const char *idx_str, int argc,
                       sqlite3_value **argv)
{
    coll_cursor *cur = (coll_cursor *)base;
    coll_vtab *vt = (coll_vtab *)base->pVtab;
    plan p;
    arena a = {0};
    tn_coll_pred preds[TN_COLL_MAX_PREDS];
    tn_coll_query q;
    int empty = 0, rc;

    cursor_reset(cur);
    if (tn_collvt_plan_parse(vt, idx_str, &p) != 0) {
        tn_vtab_error(&vt->vb, "tarn: INTERNAL: cannot parse plan '%s'", idx_str ? idx_str : "(null)");
        return SQLITE_ERROR;
    }
    int overlay = tn_txn_table_pending(vt->vb.txn, vt->txn_coll) > 0;
    int rec = tn_vtab_filter_start(&vt->vb, overlay);
    rc = tn_collvt_build_query(vt, &p, idx_num, argc, argv, &a, preds, &q, &empty);
    if (rc == SQLITE_OK && !empty) {
        tn_coll_query sent = q;
        if (overlay) {
            /* The server cannot know the transaction's rows: fetch every candidate with every value, then
             * merge, order and limit here. */
            sent.has_limit = sent.has_offset = 0;
            sent.want_payload = 1;
            sent.idx_mask = vt->n_idx >= 64 ? ~0ull : (1ull << vt->n_idx) - 1;
        }
        rc = tn_collvt_query(vt, &sent, &cur->resp_buf, &cur->resp, &cur->res);
        if (rc == SQLITE_OK) {
            cur->have_resp = cur->have_res = 1;
            if (rec) rc = tn_collvt_record_reads(vt, &q, &cur->res);
            if (rc == SQLITE_OK && overlay) {
                cur->mat = 1;
                rc = tn_collvt_merge_own(cur, vt, &sent, &q);
            }
            if (rc == SQLITE_OK) {
                cur->eof = cur_n_rows(cur) == 0;
                rc = remember_row(cur);
            }
        }
    } else if (rc == SQLITE_ERROR) {
        tn_vtab_error(&vt->vb, "tarn: INTERNAL: plan '%s' does not match its %d arguments", idx_str, argc);
    }
    tn_collvt_arena_free(&a);
    return rc;
}

static int coll_next(sqlite3_vtab_cursor *base)
{
    coll_cursor *cur = (coll_cursor *)base;
    cur->i++;
    cur->unpacked = 0;
    cur->eof = cur->i >= cur_n_rows(cur);
    return remember_row(cur);
}

static int coll_eof(sqlite3_vtab_cursor *base) { return ((coll_cursor *)base)->eof; }

static int coll_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int col)
{
    coll_cursor *cur = (coll_cursor *)base;
    coll_vtab *vt = (coll_vtab *)base->pVtab;
    const tn_coll_rrow *row = cur_row(cur);
    if ((size_t)col == vt->pk_col) {
        result_val(ctx, &row->pk);
        return SQLITE_OK;
    }
    if (col < 0 || (size_t)col >= vt->schema.n_cols) return SQLITE_OK;
    int slot = vt->slot_of[col];
    if (slot >= 0) {
        if (cur->mat ? (size_t)slot < vt->n_idx
                     : (size_t)slot < cur->res.n_idx_vals && (cur->res.idx_mask >> slot) & 1)
            result_val(ctx, &row->idx[slot]);
        else sqlite3_result_null(ctx);
        return SQLITE_OK;
    }
    if (!cur->unpacked) {
        if (!row->payload) {
            sqlite3_result_null(ctx);
            return SQLITE_OK;
        }
        int code = tn_rowpack_decode(row->payload, row->payload_len, vt->n_plain, cur->plain, &cur->scratch);
        if (code != TN_SUCCESS) {
            if (code == TN_NOMEM) return SQLITE_NOMEM;
            char pk[80];
            tn_val_format(&row->pk, pk, sizeof pk);
            tn_vtab_error(&vt->vb, "tarn: corrupt row payload in '%s' (row %s=%s)", vt->name,
                          vt->schema.cols[vt->pk_col].name, pk);
            sqlite3_result_error(ctx, vt->vb.base.zErrMsg, -1);
            return SQLITE_CORRUPT_VTAB;
        }
        cur->unpacked = 1;
    }
    result_val(ctx, &cur->plain[vt->plain_of[col]]);
    return SQLITE_OK;
}

static int coll_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
    (void)base;
    *rowid = 0; /* WITHOUT ROWID: SQLite never asks */
    return SQLITE_OK;
}

static sqlite3_module coll_module = {
    .iVersion = 3,                       /* savepoints (xSavepoint, xRelease, xRollbackTo) */
    .xCreate = coll_connect,             /* CREATE VIRTUAL TABLE: create the collection or attach to it */
    .xConnect = coll_connect,            /* the same: the stored schema must match the declaration */
    .xBestIndex = tn_collvt_best_index,  /* coll_vtab_plan.c: pushdown, costs, idxNum/idxStr */
    .xDisconnect = coll_disconnect,
    .xDestroy = coll_disconnect,         /* DROP TABLE detaches; tarn_drop_collection() deletes the data */
    .xOpen = coll_open,
    .xClose = coll_close,
    .xFilter = coll_filter,              /* one request per query (merged with the buffer in a transaction) */
    .xNext = coll_next,
    .xEof = coll_eof,
    .xColumn = coll_column,              /* plain columns unpacked from the payload on first use */
    .xRowid = coll_rowid,                /* WITHOUT ROWID: never called */
    .xUpdate = tn_collvt_update,         /* coll_vtab_write.c: appends to the transaction buffer */
    .xBegin = tn_vtab_xbegin,            /* vtab_base.c, shared with tarn_kv: */
    .xSync = tn_vtab_xsync,              /*   the commit point: one atomic request */
    .xCommit = tn_vtab_xend,             /*   return value ignored by SQLite: only drops the buffer */
    .xRollback = tn_vtab_xend,
    .xSavepoint = tn_vtab_xsavepoint,    /*   marks in the buffer */
    .xRelease = tn_vtab_xrelease,
    .xRollbackTo = tn_vtab_xrollback_to,
    .xFindFunction = NULL,               /* no overloaded functions */
    .xRename = NULL,                     /* ALTER TABLE RENAME renames the SQL table only */
};

/* ---- tarn_drop_collection('name' [, 'engine-or-cluster-urls']) ------------------------------------ */

static void fn_drop_collection(sqlite3_context *fctx, int argc, sqlite3_value **argv)
{
    coll_ctx *ctx = sqlite3_user_data(fctx);
    const char *name = (const char *)sqlite3_value_text(argv[0]);
    const char *target = argc > 1 ? (const char *)sqlite3_value_text(argv[1]) : NULL;
    const char *cluster = NULL, *engine = "default";
    tn_client *client = NULL;
    char *err = NULL;
    tn_wr payload, reqb, respb;
    tn_resp resp;
    int have_resp = 0;
    tn_wr_init(&payload);
    tn_wr_init(&reqb);
    tn_wr_init(&respb);
    if (!name || !name[0]) {
        sqlite3_result_error(fctx, "tarn_drop_collection: a collection name is required", -1);
        return;
    }
    if (target && strstr(target, "://")) cluster = target;
    else if (target && target[0]) engine = target;
    else cluster = tn_conn_default_cluster(ctx->conn);
    if (tn_conn_client(ctx->conn, cluster, engine, &client, &err) != SQLITE_OK) {
        sqlite3_result_error(fctx, err ? err : "tarn: cannot reach the store", -1);
        goto done;
    }
    tn_coll_drop_encode(&payload);
    tn_op op = {.opcode = TN_OP_COLL_WRITE, .key = (const uint8_t *)name, .key_len = strlen(name),
                .value = payload.p, .value_len = payload.len};
    tn_req req = {.n_ops = 1, .ops = &op, .req_id = 1, .client_id = tn_client_session(client)};
    int code = payload.oom ? TN_NOMEM : tn_req_encode(&req, &reqb);
    tn_conn_count_request(ctx->conn);
    if (code == TN_SUCCESS) code = tn_client_call(client, &reqb, &respb);
    if (code == TN_SUCCESS) code = tn_resp_decode(respb.p, respb.len, &resp);
    if (code == TN_SUCCESS) {
        have_resp = 1;
        code = resp.code != TN_SUCCESS ? resp.code : resp.n_results == 1 ? resp.results[0].code : TN_INTERNAL;
    }
    if (code == TN_NOMEM) {
        sqlite3_result_error_nomem(fctx);
    } else if (code == TN_NO_SUCH_COLLECTION) {
        char *m = sqlite3_mprintf("tarn: NO_SUCH_COLLECTION: collection '%s' does not exist", name);
        sqlite3_result_error(fctx, m ? m : "tarn: NO_SUCH_COLLECTION", -1);
        sqlite3_free(m);
    } else if (!tn_code_ok(code)) {
        char *m = sqlite3_mprintf("tarn: %s: dropping collection '%s' failed", tn_code_name(code), name);
        sqlite3_result_error(fctx, m ? m : "tarn: drop failed", -1);
        sqlite3_result_error_code(fctx, tn_code_to_sqlite(code));
        sqlite3_free(m);
    } else {
        sqlite3_result_int(fctx, 1);
    }
done:
    if (have_resp) tn_resp_clear(&resp);
    if (client) tn_conn_release(ctx->conn, client);
    sqlite3_free(err);
    tn_wr_free(&payload);
    tn_wr_free(&reqb);
    tn_wr_free(&respb);
}

int tn_coll_register(sqlite3 *db, tn_conn *conn, tn_txn_registry *txns)
{
    coll_ctx *ctx = sqlite3_malloc(sizeof *ctx);
    if (!ctx) return SQLITE_NOMEM;
    memset(ctx, 0, sizeof *ctx);
    tn_conn_retain(conn);
    tn_txn_registry_retain(txns);
    ctx->conn = conn;
    ctx->refs = 3; /* the module and the two function registrations */
    ctx->txns = txns;
    int rc = sqlite3_create_module_v2(db, "tarn", &coll_module, ctx, coll_ctx_free);
    if (rc != SQLITE_OK) {
        /* SQLite has called the destructor once; drop the functions' references too. */
        ctx->refs = 1;
        coll_ctx_free(ctx);
        return rc;
    }
    rc = sqlite3_create_function_v2(db, "tarn_drop_collection", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, ctx,
                                    fn_drop_collection, NULL, NULL, coll_ctx_free);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function_v2(db, "tarn_drop_collection", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY, ctx,
                                        fn_drop_collection, NULL, NULL, coll_ctx_free);
    else
        coll_ctx_free(ctx); /* the second registration never happened */
    return rc;
}

