/* coll_vtab.c — the `tarn` virtual table: a Cachalot-style typed collection in SQL (docs/design.md §2-3,
 * docs/sql-tarn-module.md).
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
 * ---- Query plans: idxNum and idxStr --------------------------------------------------------------------
 * idxStr is both what EXPLAIN QUERY PLAN shows and the plan xFilter executes; xFilter parses it back:
 *
 *   idxStr  := kind [term (" AND " term)*] [" ORDER BY " col (" ASC" | " DESC")] [" LIMIT"] [" OFFSET"]
 *   kind    := "pk" | "hash" | "ordered" | "scan"     (the access the server is expected to pick; a label)
 *   term    := col "=?" | col "IS ?" | col " IN ?" | col " IS NULL" | col " IS NOT NULL"
 *            | col ">?" | col ">=?" | col "<?" | col "<=?" | col " LIKE ?" | col " GLOB ?"
 *   e.g.  "pk id=?"   "hash event_type=? AND event_date=?"   "ordered event_date>=? ORDER BY event_date DESC LIMIT"
 *
 * Terms take argv[0..n) in order, then LIMIT's and OFFSET's values. Column names are identifiers (checked
 * when declaring), so the string parses unambiguously.
 * idxNum carries colUsed, which decides what travels: bit 0 = the payload (some plain column is used),
 * bit 1+s = the value of index slot s (s < 29), bit 30 = every slot >= 29. The pk always travels.
 *
 * Pushed: = / IN (one request, sqlite3_vtab_in) / IS / IS NULL on the pk and index columns; IS NOT NULL on
 * index columns; < <= > >= (BETWEEN comes as two) on the pk and ORDERED columns; LIKE 'ab%' (ASCII nocase
 * prefix) and GLOB 'ab*' (case-sensitive prefix) on TEXT pk / ORDERED TEXT columns — these two are not
 * omitted, SQLite re-checks them. Constraints with a non-BINARY collation are not pushed. ORDER BY the pk
 * or one ORDERED column (optionally followed by the pk in the same direction), either direction, is
 * consumed. LIMIT/OFFSET are pushed only when every constraint of aConstraint is consumed with omit and
 * the ORDER BY (if any) is consumed. Costs come from the server's statistics (STATS, cached per table,
 * refreshed after this connection commits or every TN_COLL_STATS_TTL_MS) via tn_coll_estimate.
 * A query is ONE request: the whole answer comes from one revision of the store.
 *
 * ---- Transactions (txn.h, docs/transactions.md) --------------------------------------------------------
 * xUpdate only appends row ops to the connection's transaction buffer (txn.h, shared with every `tarn`
 * and `tarn_kv` table of the same store); the commit point is xSync, which sends the buffer and the read
 * set as one atomic request. Reads inside a transaction (BEGIN … COMMIT, or a writing statement):
 *   - record what they read: a query that is only pk = / IN records each pk (revision, or absent);
 *     any other query records one RANGE_CHECK of its predicates at the answer's revision (phantoms);
 *   - when the transaction has buffered writes for this collection, see them (read-your-writes): the
 *     query goes without LIMIT/OFFSET and with every value, the buffered rows replace the store's and
 *     are filtered by the same predicates here, then ordered (ORDER BY, else pk) and limited here.
 * ---- Writes ---------------------------------------------------------------------------------------------
 *   INSERT            TN_ROW_INSERT: an existing key fails the commit with SQLITE_CONSTRAINT (ROW_EXISTS).
 *                     A key written earlier in the transaction fails at once. In an autocommit statement
 *                     the commit is the statement's end; inside BEGIN … COMMIT a key that exists in the
 *                     store is reported by COMMIT (use OR FAIL / OR ROLLBACK to be told at once).
 *   OR IGNORE         looks the key up at once (buffer, else one read): present -> SQLITE_CONSTRAINT so
 *                     SQLite skips the row (changes() = 0) and CHECK(rev) is buffered; absent -> CHECK(absent)
 *                     + INSERT, so a row that appears meanwhile fails the commit with SQLITE_BUSY.
 *   OR FAIL/ROLLBACK  look the key up at once like OR IGNORE and fail the statement there.
 *   OR REPLACE        TN_ROW_UPSERT.
 *   UPDATE / DELETE   carry the revision the statement's scan read (readset: encoded pk -> rev, kept from
 *                     xBegin to the end of the transaction): a row changed meanwhile fails the commit with
 *                     SQLITE_BUSY naming the row (UpdateIf / optimistic concurrency). A row this transaction
 *                     already changed is updated / deleted unconditionally (its earlier op carries the check).
 *   Savepoints (xSavepoint/xRelease/xRollbackTo) mark the buffer: statement rollback and ROLLBACK TO drop the
 *   right ops. UPDATE/DELETE … RETURNING are not available on virtual tables (SQLite limitation).
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "clock.h"
#include "coll_codec.h"
#include "conn.h"
#include "tarn_ext.h"
#include "readset.h"
#include "vtab_args.h"
#include "rowpack.h"
#include "sql_code.h"
#include "tn_code.h"
#include "txn.h"
#include "vtab_base.h"
#include "wire.h"

#define TN_COLL_STATS_TTL_MS 5000
#define DEFAULT_IN_SIZE 10 /* IN list length assumed when planning */


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

/* ---- table and cursor --------------------------------------------------------------------------- */

enum { AFF_BLOB = 0, AFF_TEXT, AFF_INTEGER, AFF_REAL };

typedef struct coll_vtab {
    tn_vtab_base vb; /* first: a sqlite3_vtab * is a coll_vtab * (client, buffer, read set; vtab_base.h) */
    uint32_t txn_coll;
    char *name;   /* collection name */
    char *table;  /* SQL table name */
    tn_coll_schema schema; /* column names sqlite3_malloc'd (one block per name) */
    size_t pk_col, n_idx, n_plain;
    int *slot_of;  /* per column: index slot or -1 */
    int *plain_of; /* per column: position among plain columns or -1 */
    size_t *plain_cols; /* plain position -> column */
    /* statistics for xBestIndex */
    tn_coll_stats stats;
    int have_stats;
    int64_t stats_ms;
    uint64_t stats_commits;
    /* write path scratch */
    tn_rowpack_scratch pack;
    tn_wr payload;
    tn_val *row_vals; /* n_cols */
    tn_val *idx_vals; /* n_idx */
    tn_val *plain_vals; /* n_plain */
} coll_vtab;

typedef struct coll_cursor {
    sqlite3_vtab_cursor base;
    tn_wr resp_buf;
    tn_resp resp;
    int have_resp;
    tn_coll_result res;
    int have_res;
    size_t i;
    int eof;
    int unpacked;
    tn_val *plain; /* n_plain, valid when unpacked */
    tn_rowpack_scratch scratch;
    /* Merged mode: the store's rows with the transaction's own writes laid over them (read-your-writes),
     * filtered, ordered and limited here. rows point into res or into own_bytes. */
    int mat;
    tn_coll_rrow *rows;
    uint8_t *own; /* per row: 1 = written by this transaction (no revision yet) */
    size_t n_rows, cap_rows;
    tn_wr own_bytes;
    tn_val *own_vals;
} coll_cursor;

static inline const tn_coll_rrow *cur_row(const coll_cursor *cur)
{
    return cur->mat ? &cur->rows[cur->i] : &cur->res.rows[cur->i];
}

static inline size_t cur_n_rows(const coll_cursor *cur) { return cur->mat ? cur->n_rows : cur->res.n_rows; }

static int col_affinity(int type)
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

/* ---- small arena: bytes of converted values that must live until a request is encoded ------------ */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(8) uint8_t data[];
} arena_block;

typedef struct arena {
    arena_block *head;
} arena;

static void *arena_alloc(arena *a, size_t n)
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

static void arena_free(arena *a)
{
    while (a->head) {
        arena_block *b = a->head;
        a->head = b->next;
        sqlite3_free(b);
    }
}

static int arena_copy(arena *a, const void *p, size_t n, const uint8_t **out)
{
    uint8_t *d = arena_alloc(a, n ? n : 1);
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
static int to_val(sqlite3_value *v, int aff, arena *a, tn_val *out)
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
        if (arena_copy(a, sqlite3_value_blob(v), n, &p)) return SQLITE_NOMEM;
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
    int rc = !s ? SQLITE_NOMEM : arena_copy(a, s, n, &p);
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
static int coll_query(coll_vtab *vt, const tn_coll_query *q, tn_wr *buf, tn_resp *resp, tn_coll_result *res)
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

/* Statistics for planning; failures leave have_stats = 0 (planning falls back to guesses). */
static void refresh_stats(coll_vtab *vt)
{
    int64_t now = tn_mono_ms();
    uint64_t commits = tn_txn_commits(vt->vb.txn);
    if (vt->have_stats && now - vt->stats_ms < TN_COLL_STATS_TTL_MS && commits == vt->stats_commits) return;
    tn_coll_query q = {.kind = TN_QUERY_STATS, .order_col = TN_QUERY_NO_ORDER};
    tn_wr buf;
    tn_resp resp;
    tn_coll_result res;
    tn_wr_init(&buf);
    char *saved = vt->vb.base.zErrMsg; /* planning must not leave a stale message behind */
    vt->vb.base.zErrMsg = NULL;
    if (coll_query(vt, &q, &buf, &resp, &res) == SQLITE_OK) {
        tn_coll_stats_clear(&vt->stats);
        vt->stats = res.stats; /* take the array */
        res.stats.idx = NULL;
        res.stats.n_idx = 0;
        vt->have_stats = 1;
        vt->stats_ms = now;
        vt->stats_commits = commits;
        tn_coll_result_clear(&res);
        tn_resp_clear(&resp);
    }
    sqlite3_free(vt->vb.base.zErrMsg);
    vt->vb.base.zErrMsg = saved;
    tn_wr_free(&buf);
}

/* ---- declaration -------------------------------------------------------------------------------- */

static int is_ident_char(int c) { return c == '_' || isalnum(c) || (c & 0x80); }

typedef struct decl {
    char *collection, *cluster, *engine, *token, *data_dir;
    int timeout_ms;
    int stale_reads;
    int compress;
    size_t n_cols;
    tn_coll_column *cols; /* names sqlite3_malloc'd */
} decl;

static void decl_free(decl *d)
{
    sqlite3_free(d->collection);
    sqlite3_free(d->cluster);
    sqlite3_free(d->engine);
    sqlite3_free(d->data_dir);
    sqlite3_free(d->token);
    for (size_t i = 0; i < d->n_cols; i++) sqlite3_free((char *)d->cols[i].name);
    sqlite3_free(d->cols);
    memset(d, 0, sizeof *d);
}

static char *dup_option(const tn_vtab_args *args, const char *name, int *nomem)
{
    const tn_va_option *o = tn_vtab_args_option(args, name);
    if (!o) return NULL;
    char *copy = sqlite3_mprintf("%s", o->value);
    if (!copy) *nomem = 1;
    return copy;
}

/* The declaration, parsed by vtab_args.c (which names the argument in every error) and turned into a
 * collection schema plus the connection options. */
static int parse_decl(int argc, const char *const *argv, decl *d, char **err)
{
    tn_vtab_args *args = NULL;
    int nomem = 0;
    memset(d, 0, sizeof *d);
    int rc = tn_vtab_args_parse(&tn_va_module_tarn, argc - 3, argv + 3, &args, err);
    if (rc != SQLITE_OK) return rc;
    d->collection = dup_option(args, "collection", &nomem);
    d->cluster = dup_option(args, "cluster", &nomem);
    d->engine = dup_option(args, "engine", &nomem);
    d->data_dir = dup_option(args, "data", &nomem);
    d->token = dup_option(args, "token", &nomem);
    const tn_va_option *timeout = tn_vtab_args_option(args, "timeout_ms");
    d->timeout_ms = timeout ? (int)timeout->ival : 0;
    const tn_va_option *stale = tn_vtab_args_option(args, "stale");
    d->stale_reads = stale ? (int)stale->ival : 0;
    const tn_va_option *compress = tn_vtab_args_option(args, "compress");
    d->compress = compress && sqlite3_stricmp(compress->value, "lz4") == 0 ? TN_COMPRESS_LZ4 : TN_COMPRESS_NONE;
    d->cols = sqlite3_malloc64((size_t)args->ncolumns * sizeof *d->cols);
    if (nomem || !d->cols) goto nomem;
    memset(d->cols, 0, (size_t)args->ncolumns * sizeof *d->cols);
    for (int i = 0; i < args->ncolumns; i++) {
        const tn_va_column *c = &args->columns[i];
        tn_coll_column *col = &d->cols[d->n_cols];
        col->name = sqlite3_mprintf("%s", c->name);
        if (!col->name) goto nomem;
        d->n_cols++;
        col->name_len = strlen(col->name);
        switch (c->type) {
        case TN_COL_INTEGER: col->type = TN_T_INTEGER; break;
        case TN_COL_REAL: col->type = TN_T_REAL; break;
        case TN_COL_TEXT: col->type = TN_T_TEXT; break;
        case TN_COL_BLOB: col->type = TN_T_BLOB; break;
        case TN_COL_JSON: col->type = TN_T_JSON; break;
        }
        switch (c->role) {
        case TN_COL_PLAIN: col->role = TN_R_PLAIN; break;
        case TN_COL_PRIMARY_KEY: col->role = TN_R_PK; break;
        case TN_COL_INDEXED: col->role = TN_R_HASH; break;
        case TN_COL_ORDERED: col->role = TN_R_ORDERED; break;
        }
    }
    tn_vtab_args_free(args);
    return SQLITE_OK;
nomem:
    tn_vtab_args_free(args);
    decl_free(d);
    return SQLITE_NOMEM;
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
    decl d;
    coll_vtab *vt = NULL;
    sqlite3_str *sql = NULL;
    char msg[256];
    int rc = parse_decl(argc, argv, &d, err);
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
    decl_free(&d);
    *out = &vt->vb.base;
    return SQLITE_OK;
fail:
    if (sql) sqlite3_free(sqlite3_str_finish(sql));
    vtab_free(vt);
    decl_free(&d);
    return rc;
}

static int coll_disconnect(sqlite3_vtab *base)
{
    vtab_free((coll_vtab *)base);
    return SQLITE_OK;
}

/* ---- planning ----------------------------------------------------------------------------------- */

enum {
    T_EQ = 1, T_IN, T_IS, T_ISNULL, T_NOTNULL, T_GT, T_GE, T_LT, T_LE, T_LIKE, T_GLOB,
};

static const char *term_text(int op)
{
    switch (op) {
    case T_EQ: return "=?";
    case T_IN: return " IN ?";
    case T_IS: return " IS ?";
    case T_ISNULL: return " IS NULL";
    case T_NOTNULL: return " IS NOT NULL";
    case T_GT: return ">?";
    case T_GE: return ">=?";
    case T_LT: return "<?";
    case T_LE: return "<=?";
    case T_LIKE: return " LIKE ?";
    case T_GLOB: return " GLOB ?";
    default: return "?";
    }
}

typedef struct plan_term {
    int col;
    int op;
} plan_term;

typedef struct plan {
    int n;
    plan_term t[TN_COLL_MAX_PREDS];
    int order_col; /* -1 none */
    int desc;
    int limit, offset;
} plan;

/* Prefix of a LIKE (nocase) or GLOB pattern before its first wildcard: its length in bytes. */
static size_t pattern_prefix(const unsigned char *p, size_t n, int glob)
{
    size_t i = 0;
    for (; i < n; i++) {
        unsigned char c = p[i];
        if (glob ? (c == '*' || c == '?' || c == '[') : (c == '%' || c == '_')) break;
    }
    return i;
}

static int find_col(const coll_vtab *vt, const char *name, size_t n)
{
    for (size_t c = 0; c < vt->schema.n_cols; c++)
        if (vt->schema.cols[c].name_len == n && sqlite3_strnicmp(vt->schema.cols[c].name, name, (int)n) == 0)
            return (int)c;
    return -1;
}

/* Next whitespace-separated word of s (at *pos); NULL at the end. */
static const char *next_word(const char *s, size_t *pos, size_t *len)
{
    size_t i = *pos;
    while (s[i] && isspace((unsigned char)s[i])) i++;
    if (!s[i]) return NULL;
    size_t start = i;
    while (s[i] && !isspace((unsigned char)s[i])) i++;
    *pos = i;
    *len = i - start;
    return s + start;
}

static int word_is(const char *w, size_t n, const char *lit)
{
    return w && strlen(lit) == n && sqlite3_strnicmp(w, lit, (int)n) == 0;
}

/* Parses an idxStr written by coll_best_index (grammar at the top). 0 or -1. */
static int plan_parse(const coll_vtab *vt, const char *s, plan *p)
{
    size_t pos = 0, n;
    const char *w;
    memset(p, 0, sizeof *p);
    p->order_col = -1;
    if (!s || !next_word(s, &pos, &n)) return -1; /* kind */
    int expect_term = 1;
    while ((w = next_word(s, &pos, &n)) != NULL) {
        size_t save = pos, n2 = 0;
        const char *w2 = next_word(s, &save, &n2);
        if (word_is(w, n, "ORDER") && word_is(w2, n2, "BY")) {
            pos = save;
            w = next_word(s, &pos, &n);
            if (!w || (p->order_col = find_col(vt, w, n)) < 0) return -1;
            w = next_word(s, &pos, &n);
            if (word_is(w, n, "DESC")) p->desc = 1;
            else if (!word_is(w, n, "ASC")) return -1;
            expect_term = 0;
            continue;
        }
        if (word_is(w, n, "LIMIT") && (!w2 || word_is(w2, n2, "OFFSET"))) { p->limit = 1; expect_term = 0; continue; }
        if (word_is(w, n, "OFFSET") && !w2) { p->offset = 1; continue; }
        if (word_is(w, n, "AND") && !expect_term) { expect_term = 1; continue; }
        if (!expect_term || p->n >= (int)TN_COLL_MAX_PREDS) return -1;
        /* A term: the name runs to the first non-identifier character. */
        size_t k = 0;
        while (k < n && is_ident_char((unsigned char)w[k])) k++;
        int col = find_col(vt, w, k);
        int op = 0;
        if (col < 0) return -1;
        if (k < n) {
            const char *o = w + k;
            size_t on = n - k;
            if (on == 2 && !memcmp(o, "=?", 2)) op = T_EQ;
            else if (on == 2 && !memcmp(o, ">?", 2)) op = T_GT;
            else if (on == 3 && !memcmp(o, ">=?", 3)) op = T_GE;
            else if (on == 2 && !memcmp(o, "<?", 2)) op = T_LT;
            else if (on == 3 && !memcmp(o, "<=?", 3)) op = T_LE;
            else return -1;
        } else {
            w = next_word(s, &pos, &n);
            w2 = next_word(s, &pos, &n2);
            if (word_is(w, n, "IN") && word_is(w2, n2, "?")) op = T_IN;
            else if (word_is(w, n, "LIKE") && word_is(w2, n2, "?")) op = T_LIKE;
            else if (word_is(w, n, "GLOB") && word_is(w2, n2, "?")) op = T_GLOB;
            else if (word_is(w, n, "IS") && word_is(w2, n2, "?")) op = T_IS;
            else if (word_is(w, n, "IS") && word_is(w2, n2, "NULL")) op = T_ISNULL;
            else if (word_is(w, n, "IS") && word_is(w2, n2, "NOT")) {
                w = next_word(s, &pos, &n);
                if (!word_is(w, n, "NULL")) return -1;
                op = T_NOTNULL;
            } else return -1;
        }
        p->t[p->n].col = col;
        p->t[p->n].op = op;
        p->n++;
        expect_term = 0;
    }
    return expect_term && p->n ? -1 : 0;
}

static int is_index_col(const coll_vtab *vt, int col)
{
    int r = vt->schema.cols[col].role;
    return r == TN_R_PK || r == TN_R_HASH || r == TN_R_ORDERED;
}

static int is_ordered_col(const coll_vtab *vt, int col)
{
    int r = vt->schema.cols[col].role;
    return r == TN_R_PK || r == TN_R_ORDERED;
}

static int coll_best_index(sqlite3_vtab *base, sqlite3_index_info *info)
{
    coll_vtab *vt = (coll_vtab *)base;
    int argc = 0, limit_i = -1, offset_i = -1;
    plan p;
    tn_coll_pred_shape shapes[TN_COLL_MAX_PREDS];
    int best_rank = 0, best_col = -1; /* for the label: 4 pk eq, 3 index eq, 2 range/prefix, 1 other */

    memset(&p, 0, sizeof p);
    p.order_col = -1;
    refresh_stats(vt);
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable) continue;
        if (c->op == SQLITE_INDEX_CONSTRAINT_LIMIT) { limit_i = i; continue; }
        if (c->op == SQLITE_INDEX_CONSTRAINT_OFFSET) { offset_i = i; continue; }
        int col = c->iColumn;
        if (col < 0 || (size_t)col >= vt->schema.n_cols || p.n >= (int)TN_COLL_MAX_PREDS) continue;
        const char *coll = sqlite3_vtab_collation(info, i);
        int binary = !coll || sqlite3_stricmp(coll, "BINARY") == 0;
        int is_text = vt->schema.cols[col].type == TN_T_TEXT;
        int op = 0, rank = 1;
        switch (c->op) {
        case SQLITE_INDEX_CONSTRAINT_EQ:
            if (!is_index_col(vt, col) || !binary) break;
            op = sqlite3_vtab_in(info, i, -1) ? T_IN : T_EQ;
            rank = (size_t)col == vt->pk_col ? 4 : 3;
            break;
        case SQLITE_INDEX_CONSTRAINT_IS:
            if (!is_index_col(vt, col) || !binary) break;
            op = T_IS;
            rank = (size_t)col == vt->pk_col ? 4 : 3;
            break;
        case SQLITE_INDEX_CONSTRAINT_ISNULL:
            if (is_index_col(vt, col) && (size_t)col != vt->pk_col) op = T_ISNULL, rank = 3;
            break;
        case SQLITE_INDEX_CONSTRAINT_ISNOTNULL:
            if (is_index_col(vt, col) && (size_t)col != vt->pk_col) op = T_NOTNULL;
            break;
        case SQLITE_INDEX_CONSTRAINT_GT: if (is_ordered_col(vt, col) && binary) op = T_GT, rank = 2; break;
        case SQLITE_INDEX_CONSTRAINT_GE: if (is_ordered_col(vt, col) && binary) op = T_GE, rank = 2; break;
        case SQLITE_INDEX_CONSTRAINT_LT: if (is_ordered_col(vt, col) && binary) op = T_LT, rank = 2; break;
        case SQLITE_INDEX_CONSTRAINT_LE: if (is_ordered_col(vt, col) && binary) op = T_LE, rank = 2; break;
        case SQLITE_INDEX_CONSTRAINT_LIKE:
        case SQLITE_INDEX_CONSTRAINT_GLOB: {
            if (!is_ordered_col(vt, col) || !is_text) break;
            int glob = c->op == SQLITE_INDEX_CONSTRAINT_GLOB;
            sqlite3_value *rhs = NULL;
            if (sqlite3_vtab_rhs_value(info, i, &rhs) == SQLITE_OK && rhs) {
                /* Known pattern: push only when it has a literal prefix. */
                if (sqlite3_value_type(rhs) != SQLITE_TEXT) break;
                if (pattern_prefix(sqlite3_value_text(rhs), (size_t)sqlite3_value_bytes(rhs), glob) == 0) break;
            }
            op = glob ? T_GLOB : T_LIKE;
            rank = 2;
            break;
        }
        default:
            break;
        }
        if (!op) continue;
        info->aConstraintUsage[i].argvIndex = ++argc;
        info->aConstraintUsage[i].omit = op != T_LIKE && op != T_GLOB;
        if (op == T_IN) sqlite3_vtab_in(info, i, 1);
        shapes[p.n].column = (uint32_t)col;
        shapes[p.n].n_in = 0;
        shapes[p.n].has_lo = shapes[p.n].has_hi = 0;
        switch (op) {
        case T_EQ: case T_IS: shapes[p.n].op = TN_PRED_EQ; break;
        case T_IN: shapes[p.n].op = TN_PRED_IN; shapes[p.n].n_in = DEFAULT_IN_SIZE; break;
        case T_ISNULL: shapes[p.n].op = TN_PRED_IS_NULL; break;
        case T_NOTNULL: shapes[p.n].op = TN_PRED_NOT_NULL; break;
        case T_GT: case T_GE: shapes[p.n].op = TN_PRED_RANGE; shapes[p.n].has_lo = 1; break;
        case T_LT: case T_LE: shapes[p.n].op = TN_PRED_RANGE; shapes[p.n].has_hi = 1; break;
        default: shapes[p.n].op = TN_PRED_PREFIX; break;
        }
        p.t[p.n].col = col;
        p.t[p.n].op = op;
        p.n++;
        if (rank > best_rank) {
            best_rank = rank;
            best_col = col;
        }
    }

    /* ORDER BY: the pk, or one ORDERED column optionally followed by the pk in the same direction. */
    if (info->nOrderBy >= 1) {
        int c0 = info->aOrderBy[0].iColumn, d0 = info->aOrderBy[0].desc;
        int ok = 0;
        if (c0 >= 0 && (size_t)c0 == vt->pk_col) ok = 1;
        else if (c0 >= 0 && is_ordered_col(vt, c0))
            ok = info->nOrderBy == 1 || (info->nOrderBy == 2 && info->aOrderBy[1].iColumn >= 0 &&
                                         (size_t)info->aOrderBy[1].iColumn == vt->pk_col &&
                                         info->aOrderBy[1].desc == d0);
        if (ok) {
            p.order_col = c0;
            p.desc = d0;
            info->orderByConsumed = 1;
        }
    }

    /* LIMIT/OFFSET only when nothing is left for SQLite to filter and the order is ours. */
    int all_consumed = 1;
    for (int i = 0; i < info->nConstraint; i++) {
        int op = info->aConstraint[i].op;
        if (op == SQLITE_INDEX_CONSTRAINT_LIMIT || op == SQLITE_INDEX_CONSTRAINT_OFFSET) continue;
        if (info->aConstraintUsage[i].argvIndex <= 0 || !info->aConstraintUsage[i].omit) all_consumed = 0;
    }
    uint64_t limit_hint = 0;
    if (limit_i >= 0 && all_consumed && (info->nOrderBy == 0 || info->orderByConsumed)) {
        int offset_ok = 1;
        for (int i = 0; i < info->nConstraint; i++)
            if (info->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_OFFSET && i != offset_i) offset_ok = 0;
        if (offset_ok) {
            info->aConstraintUsage[limit_i].argvIndex = ++argc;
            info->aConstraintUsage[limit_i].omit = 1;
            p.limit = 1;
            if (offset_i >= 0) {
                info->aConstraintUsage[offset_i].argvIndex = ++argc;
                info->aConstraintUsage[offset_i].omit = 1;
                p.offset = 1;
            }
            sqlite3_value *lv = NULL;
            if (sqlite3_vtab_rhs_value(info, limit_i, &lv) == SQLITE_OK && lv && sqlite3_value_int64(lv) > 0)
                limit_hint = (uint64_t)sqlite3_value_int64(lv);
        }
    }

    /* Costs from the server's statistics. */
    double rows = 1000, cost = 1000;
    if (vt->have_stats &&
        tn_coll_estimate(&vt->schema, &vt->stats, shapes, (size_t)p.n, p.order_col < 0 ? TN_QUERY_NO_ORDER : p.order_col,
                         limit_hint, &rows, &cost) == TN_SUCCESS) {
        /* estimates in hand */
    } else {
        for (int k = 0; k < p.n; k++) {
            rows /= p.t[k].op == T_EQ || p.t[k].op == T_IN || p.t[k].op == T_IS ? 10 : 3;
        }
        cost = rows;
    }
    for (int k = 0; k < p.n; k++) {
        if ((size_t)p.t[k].col == vt->pk_col && (p.t[k].op == T_EQ || p.t[k].op == T_IS)) {
            info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
            rows = 1;
            cost = 1;
        }
    }
    if (rows < 1) rows = 1;
    info->estimatedRows = (sqlite3_int64)rows;
    info->estimatedCost = 20.0 + cost + rows * 0.1; /* a round trip, the server's work, the transfer */

    /* colUsed -> what travels. */
    int want = 0;
    uint64_t used = info->colUsed;
    for (size_t c = 0; c < vt->schema.n_cols; c++) {
        int is_used = c >= 63 ? (used >> 63) & 1 : (used >> c) & 1;
        if (!is_used) continue;
        if (vt->plain_of[c] >= 0) want |= 1;
        else if (vt->slot_of[c] >= 0) want |= vt->slot_of[c] < 29 ? 1 << (1 + vt->slot_of[c]) : 1 << 30;
    }
    info->idxNum = want;

    /* idxStr: the label and the terms. */
    const char *kind = "scan";
    if (best_col >= 0) {
        kind = (size_t)best_col == vt->pk_col ? "pk"
               : vt->schema.cols[best_col].role == TN_R_HASH ? "hash" : "ordered";
    } else if (p.order_col >= 0) {
        kind = (size_t)p.order_col == vt->pk_col ? "pk" : "ordered";
    }
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendall(s, kind);
    for (int k = 0; k < p.n; k++)
        sqlite3_str_appendf(s, "%s%s%s", k ? " AND " : " ", vt->schema.cols[p.t[k].col].name, term_text(p.t[k].op));
    if (p.order_col >= 0)
        sqlite3_str_appendf(s, " ORDER BY %s %s", vt->schema.cols[p.order_col].name, p.desc ? "DESC" : "ASC");
    if (p.limit) sqlite3_str_appendall(s, " LIMIT");
    if (p.offset) sqlite3_str_appendall(s, " OFFSET");
    info->idxStr = sqlite3_str_finish(s);
    if (!info->idxStr) return SQLITE_NOMEM;
    info->needToFreeIdxStr = 1;
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
    uint8_t kb[32];
    tn_wr w;
    tn_wr_init(&w);
    tn_val_encode(&row->pk, &w);
    if (w.oom) return SQLITE_NOMEM;
    tn_read_info info = {.rev = row->rev};
    int rc = tn_readset_put(&vt->vb.reads, w.p, w.len, &info);
    (void)kb;
    tn_wr_free(&w);
    return rc;
}

/* Builds the query for the plan and argv; *empty = 1 when no row can match (no request needed). */
static int build_query(coll_vtab *vt, const plan *p, int idx_num, int argc, sqlite3_value **argv, arena *a,
                       tn_coll_pred *preds, tn_coll_query *q, int *empty)
{
    int ai = 0, rc;
    size_t np = 0;
    *empty = 0;
    memset(q, 0, sizeof *q);
    q->kind = TN_QUERY_SELECT;
    q->order_col = p->order_col < 0 ? TN_QUERY_NO_ORDER : p->order_col;
    q->order_desc = (uint8_t)p->desc;
    q->want_payload = (uint8_t)(idx_num & 1);
    for (size_t s = 0; s < vt->n_idx; s++)
        if (s < 29 ? (idx_num >> (1 + s)) & 1 : (idx_num >> 30) & 1) q->idx_mask |= 1ull << s;
    if (argc < p->n + p->limit + p->offset) return SQLITE_ERROR;

    for (int k = 0; k < p->n; k++) {
        const plan_term *t = &p->t[k];
        sqlite3_value *v = argv[ai++];
        int aff = col_affinity(vt->schema.cols[t->col].type);
        tn_coll_pred *pr = &preds[np];
        memset(pr, 0, sizeof *pr);
        pr->column = (uint32_t)t->col;
        switch (t->op) {
        case T_EQ:
        case T_IS:
            if (sqlite3_value_type(v) == SQLITE_NULL) {
                /* = NULL matches nothing; the pk is never NULL */
                if (t->op == T_EQ || (size_t)t->col == vt->pk_col) { *empty = 1; return SQLITE_OK; }
                pr->op = TN_PRED_IS_NULL;
                break;
            }
            pr->op = TN_PRED_EQ;
            if ((rc = to_val(v, aff, a, &pr->v))) return rc;
            break;
        case T_IN: {
            size_t cap = 16, n = 0;
            tn_val *vals = arena_alloc(a, cap * sizeof *vals);
            sqlite3_value *item = NULL;
            if (!vals) return SQLITE_NOMEM;
            for (rc = sqlite3_vtab_in_first(v, &item); rc == SQLITE_OK && item; rc = sqlite3_vtab_in_next(v, &item)) {
                if (sqlite3_value_type(item) == SQLITE_NULL) continue; /* x IN (NULL) never matches */
                if (n == cap) {
                    tn_val *grown = arena_alloc(a, cap * 2 * sizeof *grown);
                    if (!grown) return SQLITE_NOMEM;
                    memcpy(grown, vals, n * sizeof *vals);
                    vals = grown;
                    cap *= 2;
                }
                if ((rc = to_val(item, aff, a, &vals[n]))) return rc;
                n++;
            }
            if (rc != SQLITE_OK && rc != SQLITE_DONE) return rc;
            if (n == 0) { *empty = 1; return SQLITE_OK; }
            pr->op = TN_PRED_IN;
            pr->in = vals;
            pr->n_in = n;
            break;
        }
        case T_ISNULL: pr->op = TN_PRED_IS_NULL; break;
        case T_NOTNULL: pr->op = TN_PRED_NOT_NULL; break;
        case T_GT: case T_GE: case T_LT: case T_LE: {
            tn_val b;
            if (sqlite3_value_type(v) == SQLITE_NULL) { *empty = 1; return SQLITE_OK; }
            if ((rc = to_val(v, aff, a, &b))) return rc;
            pr->op = TN_PRED_RANGE;
            if (t->op == T_GT || t->op == T_GE) {
                pr->lo_kind = t->op == T_GT ? TN_BOUND_EXCL : TN_BOUND_INCL;
                pr->lo = b;
            } else {
                pr->hi_kind = t->op == T_LT ? TN_BOUND_EXCL : TN_BOUND_INCL;
                pr->hi = b;
            }
            break;
        }
        case T_LIKE:
        case T_GLOB: {
            if (sqlite3_value_type(v) == SQLITE_NULL) { *empty = 1; return SQLITE_OK; }
            if (sqlite3_value_type(v) != SQLITE_TEXT) continue; /* SQLite checks it */
            const unsigned char *pat = sqlite3_value_text(v);
            size_t n = pattern_prefix(pat, (size_t)sqlite3_value_bytes(v), t->op == T_GLOB);
            if (n == 0) continue;
            const uint8_t *copy;
            if (arena_copy(a, pat, n, &copy)) return SQLITE_NOMEM;
            pr->op = TN_PRED_PREFIX;
            pr->prefix = copy;
            pr->prefix_len = n;
            pr->nocase = t->op == T_LIKE;
            break;
        }
        default:
            return SQLITE_ERROR;
        }
        np++;
    }
    if (p->limit) {
        sqlite3_int64 l = sqlite3_value_int64(argv[ai++]);
        if (l >= 0) {
            q->has_limit = 1;
            q->limit = (uint64_t)l;
        }
    }
    if (p->offset) {
        sqlite3_int64 o = sqlite3_value_int64(argv[ai++]);
        if (o > 0) {
            q->has_offset = 1;
            q->offset = (uint64_t)o;
        }
    }
    if (q->has_limit && q->limit == 0) *empty = 1;
    q->preds = preds;
    q->n_preds = np;
    return SQLITE_OK;
}

/* ---- read-your-writes and the read set ---------------------------------------------------------- */

/* Value of schema column col in row (pk or index slot). */
static const tn_val *row_col(const coll_vtab *vt, const tn_coll_rrow *row, uint32_t col)
{
    if (col == vt->pk_col) return &row->pk;
    int slot = vt->slot_of[col];
    return slot >= 0 ? &row->idx[slot] : NULL;
}

static int prefix_match(const tn_val *v, const tn_coll_pred *pr)
{
    if (v->type != TN_V_TEXT || v->n < pr->prefix_len) return 0;
    for (size_t k = 0; k < pr->prefix_len; k++) {
        int a = v->u.p[k], b = pr->prefix[k];
        if (pr->nocase) {
            a = a < 128 ? tolower(a) : a;
            b = b < 128 ? tolower(b) : b;
        }
        if (a != b) return 0;
    }
    return 1;
}

/* Whether a row satisfies every predicate of q (the server's semantics, coll.h). */
static int row_matches(const coll_vtab *vt, const tn_coll_rrow *row, const tn_coll_query *q)
{
    for (size_t k = 0; k < q->n_preds; k++) {
        const tn_coll_pred *pr = &q->preds[k];
        const tn_val *v = row_col(vt, row, pr->column);
        if (!v) return 0;
        int null = v->type == TN_V_NULL, ok = 0;
        switch (pr->op) {
        case TN_PRED_EQ: ok = !null && tn_val_cmp(v, &pr->v) == 0; break;
        case TN_PRED_IN:
            for (size_t n = 0; n < pr->n_in && !ok && !null; n++) ok = tn_val_cmp(v, &pr->in[n]) == 0;
            break;
        case TN_PRED_IS_NULL: ok = null; break;
        case TN_PRED_NOT_NULL: ok = !null; break;
        case TN_PRED_RANGE:
            ok = !null;
            if (ok && pr->lo_kind) {
                int c = tn_val_cmp(v, &pr->lo);
                ok = pr->lo_kind == TN_BOUND_EXCL ? c > 0 : c >= 0;
            }
            if (ok && pr->hi_kind) {
                int c = tn_val_cmp(v, &pr->hi);
                ok = pr->hi_kind == TN_BOUND_EXCL ? c < 0 : c <= 0;
            }
            break;
        case TN_PRED_PREFIX: ok = prefix_match(v, pr); break;
        default: ok = 0; break;
        }
        if (!ok) return 0;
    }
    return 1;
}

static int push_row(coll_cursor *cur, const tn_coll_rrow *row, int own)
{
    if (cur->n_rows == cur->cap_rows) {
        size_t cap = cur->cap_rows ? cur->cap_rows * 2 : 16;
        tn_coll_rrow *rows = sqlite3_realloc64(cur->rows, cap * sizeof *rows);
        if (!rows) return SQLITE_NOMEM;
        cur->rows = rows;
        uint8_t *o = sqlite3_realloc64(cur->own, cap);
        if (!o) return SQLITE_NOMEM;
        cur->own = o;
        cur->cap_rows = cap;
    }
    cur->rows[cur->n_rows] = *row;
    cur->own[cur->n_rows] = (uint8_t)own;
    cur->n_rows++;
    return SQLITE_OK;
}

typedef struct own_arg {
    coll_cursor *cur;
    tn_wr *offs; /* u32 offset of each copied op in cur->own_bytes */
} own_arg;

static int collect_own(void *p, const uint8_t *key, size_t key_len, int state, const uint8_t *op, size_t op_len)
{
    own_arg *a = p;
    (void)key;
    (void)key_len;
    if (state != TN_TXN_ROW_PRESENT || !op) return 0;
    tn_wr_u32(a->offs, (uint32_t)a->cur->own_bytes.len);
    tn_wr_u32(&a->cur->own_bytes, (uint32_t)op_len);
    tn_wr_raw(&a->cur->own_bytes, op, op_len);
    return a->offs->oom || a->cur->own_bytes.oom;
}

/* Decodes a buffered INSERT/UPSERT/UPDATE row op into row (values point into op). 0 or -1. */
static int decode_own(const coll_vtab *vt, const uint8_t *op, size_t len, tn_val *idx, tn_coll_rrow *row)
{
    tn_rd r;
    tn_val old;
    tn_rd_init(&r, op, len);
    uint8_t mode = tn_rd_u8(&r);
    if (mode == TN_ROW_UPDATE) {
        if (tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &old)) return -1;
        (void)tn_rd_varint(&r);
    } else if (mode != TN_ROW_INSERT && mode != TN_ROW_UPSERT && mode != TN_ROW_INSERT_OR_IGNORE) {
        return -1;
    }
    memset(row, 0, sizeof *row);
    if (tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &row->pk)) return -1;
    uint64_t n = tn_rd_varint(&r);
    if (r.err || n != vt->n_idx) return -1;
    for (size_t k = 0; k < n; k++)
        if (tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &idx[k])) return -1;
    row->idx = idx;
    row->payload = tn_rd_bytes(&r, TN_COLL_MAX_PAYLOAD, &row->payload_len);
    if (!row->payload) row->payload = (const uint8_t *)"";
    return r.err ? -1 : 0;
}

typedef struct sort_ctx {
    const coll_vtab *vt;
    int order_col; /* -1: by pk */
    int desc;
} sort_ctx;

/* qsort_r is not portable C11: a small merge sort with an explicit context. */
static int row_cmp(const sort_ctx *sc, const tn_coll_rrow *a, const tn_coll_rrow *b)
{
    int c = 0;
    if (sc->order_col >= 0)
        c = tn_val_cmp(row_col(sc->vt, a, (uint32_t)sc->order_col), row_col(sc->vt, b, (uint32_t)sc->order_col));
    if (c == 0) c = tn_val_cmp(&a->pk, &b->pk);
    return sc->desc ? -c : c;
}

static int sort_rows(coll_cursor *cur, const sort_ctx *sc)
{
    size_t n = cur->n_rows;
    if (n < 2) return SQLITE_OK;
    tn_coll_rrow *tmp = sqlite3_malloc64(n * sizeof *tmp);
    uint8_t *otmp = sqlite3_malloc64(n);
    if (!tmp || !otmp) {
        sqlite3_free(tmp);
        sqlite3_free(otmp);
        return SQLITE_NOMEM;
    }
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid || j < hi) {
                int left = j >= hi || (i < mid && row_cmp(sc, &cur->rows[i], &cur->rows[j]) <= 0);
                size_t from = left ? i++ : j++;
                tmp[k] = cur->rows[from];
                otmp[k++] = cur->own[from];
            }
        }
        memcpy(cur->rows, tmp, n * sizeof *tmp);
        memcpy(cur->own, otmp, n);
    }
    sqlite3_free(tmp);
    sqlite3_free(otmp);
    return SQLITE_OK;
}

/* Merges the store's answer (cur->res, fetched without limit/offset) with the transaction's own rows of
 * this collection, then orders and applies limit/offset as the server would have. */
static int merge_own(coll_cursor *cur, coll_vtab *vt, const tn_coll_query *q, const tn_coll_query *orig)
{
    tn_wr offs;
    int rc = SQLITE_OK;
    tn_wr_init(&offs);
    cur->n_rows = 0;
    for (size_t k = 0; k < cur->res.n_rows && rc == SQLITE_OK; k++) {
        const tn_coll_rrow *row = &cur->res.rows[k];
        int written = 0;
        tn_txn_row_state(vt->vb.txn, vt->txn_coll, &row->pk, &written);
        if (!written) rc = push_row(cur, row, 0);
    }
    if (rc != SQLITE_OK) goto done;
    own_arg a = {.cur = cur, .offs = &offs};
    if (tn_txn_each_written(vt->vb.txn, vt->txn_coll, collect_own, &a) || offs.oom || cur->own_bytes.oom) {
        rc = SQLITE_NOMEM;
        goto done;
    }
    size_t n_own = offs.len / 4;
    if (n_own) {
        cur->own_vals = sqlite3_malloc64((n_own * vt->n_idx + 1) * sizeof *cur->own_vals);
        if (!cur->own_vals) { rc = SQLITE_NOMEM; goto done; }
    }
    for (size_t k = 0; k < n_own && rc == SQLITE_OK; k++) {
        tn_rd r;
        tn_rd_init(&r, offs.p + 4 * k, 4);
        uint32_t at = tn_rd_u32(&r);
        tn_rd_init(&r, cur->own_bytes.p + at, cur->own_bytes.len - at);
        uint32_t len = tn_rd_u32(&r);
        const uint8_t *op = tn_rd_raw(&r, len);
        tn_coll_rrow row;
        if (!op || decode_own(vt, op, len, cur->own_vals + k * vt->n_idx, &row)) continue;
        if (row_matches(vt, &row, q)) rc = push_row(cur, &row, 1);
    }
    if (rc != SQLITE_OK) goto done;
    sort_ctx sc = {.vt = vt, .order_col = orig->order_col == TN_QUERY_NO_ORDER ? -1 : orig->order_col,
                   .desc = orig->order_desc};
    if ((rc = sort_rows(cur, &sc)) != SQLITE_OK) goto done;
    size_t off = orig->has_offset ? (size_t)(orig->offset < cur->n_rows ? orig->offset : cur->n_rows) : 0;
    if (off) {
        memmove(cur->rows, cur->rows + off, (cur->n_rows - off) * sizeof *cur->rows);
        memmove(cur->own, cur->own + off, cur->n_rows - off);
        cur->n_rows -= off;
    }
    if (orig->has_limit && orig->limit < cur->n_rows) cur->n_rows = (size_t)orig->limit;
done:
    tn_wr_free(&offs);
    return rc;
}

/* Records what the answer read: each pk asked for (present at its revision, or absent) when the query
 * is nothing but pk = / IN, else one RANGE_CHECK of the predicates at the answer's revision. Rows the
 * transaction wrote itself were not read from the store. */
static int record_reads(coll_vtab *vt, const tn_coll_query *q, const tn_coll_result *res)
{
    const tn_coll_pred *pr = q->n_preds == 1 ? &q->preds[0] : NULL;
    int point = pr && pr->column == vt->pk_col && (pr->op == TN_PRED_EQ || pr->op == TN_PRED_IN) &&
                !q->has_limit && !q->has_offset;
    if (!point)
        return tn_vtab_read_noted(&vt->vb, tn_txn_read_range(vt->vb.txn, vt->txn_coll, q->preds, q->n_preds,
                                                             res->revision), vt->name);
    size_t n = pr->op == TN_PRED_EQ ? 1 : pr->n_in;
    const tn_val *vals = pr->op == TN_PRED_EQ ? &pr->v : pr->in;
    tn_wr w;
    tn_wr_init(&w);
    int rc = SQLITE_OK;
    for (size_t k = 0; k < n && rc == SQLITE_OK; k++) {
        int written = 0;
        tn_txn_row_state(vt->vb.txn, vt->txn_coll, &vals[k], &written);
        if (written) continue;
        uint64_t rev = 0;
        for (size_t j = 0; j < res->n_rows; j++)
            if (tn_val_cmp(&res->rows[j].pk, &vals[k]) == 0) rev = res->rows[j].rev;
        w.len = 0;
        tn_val_encode(&vals[k], &w);
        if (w.oom) rc = SQLITE_NOMEM;
        else rc = tn_vtab_read_noted(&vt->vb, tn_txn_read(vt->vb.txn, vt->txn_coll, w.p, w.len, rev), vt->name);
    }
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
    if (plan_parse(vt, idx_str, &p) != 0) {
        tn_vtab_error(&vt->vb, "tarn: INTERNAL: cannot parse plan '%s'", idx_str ? idx_str : "(null)");
        return SQLITE_ERROR;
    }
    int overlay = tn_txn_table_pending(vt->vb.txn, vt->txn_coll) > 0;
    int rec = tn_vtab_filter_start(&vt->vb, overlay);
    rc = build_query(vt, &p, idx_num, argc, argv, &a, preds, &q, &empty);
    if (rc == SQLITE_OK && !empty) {
        tn_coll_query sent = q;
        if (overlay) {
            /* The server cannot know the transaction's rows: fetch every candidate with every value, then
             * merge, order and limit here. */
            sent.has_limit = sent.has_offset = 0;
            sent.want_payload = 1;
            sent.idx_mask = vt->n_idx >= 64 ? ~0ull : (1ull << vt->n_idx) - 1;
        }
        rc = coll_query(vt, &sent, &cur->resp_buf, &cur->resp, &cur->res);
        if (rc == SQLITE_OK) {
            cur->have_resp = cur->have_res = 1;
            if (rec) rc = record_reads(vt, &q, &cur->res);
            if (rc == SQLITE_OK && overlay) {
                cur->mat = 1;
                rc = merge_own(cur, vt, &sent, &q);
            }
            if (rc == SQLITE_OK) {
                cur->eof = cur_n_rows(cur) == 0;
                rc = remember_row(cur);
            }
        }
    } else if (rc == SQLITE_ERROR) {
        tn_vtab_error(&vt->vb, "tarn: INTERNAL: plan '%s' does not match its %d arguments", idx_str, argc);
    }
    arena_free(&a);
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

/* ---- writes ------------------------------------------------------------------------------------- */

static char *pk_text(coll_vtab *vt, const tn_val *pk, char *buf, size_t cap)
{
    (void)vt;
    tn_val_format(pk, buf, cap);
    return buf;
}

/* Current revision of row pk in the store (0 = absent): one read. */
static int read_rev(coll_vtab *vt, const tn_val *pk, uint64_t *rev)
{
    tn_coll_pred pr = {.column = (uint32_t)vt->pk_col, .op = TN_PRED_EQ, .v = *pk};
    tn_coll_query q = {.kind = TN_QUERY_SELECT, .preds = &pr, .n_preds = 1, .order_col = TN_QUERY_NO_ORDER};
    tn_wr buf;
    tn_resp resp;
    tn_coll_result res;
    tn_wr_init(&buf);
    int rc = coll_query(vt, &q, &buf, &resp, &res);
    if (rc == SQLITE_OK) {
        *rev = res.n_rows ? res.rows[0].rev : 0;
        tn_coll_result_clear(&res);
        tn_resp_clear(&resp);
    }
    tn_wr_free(&buf);
    return rc;
}

/* Whether row pk exists once this transaction's buffered ops are applied. *rev: its store revision when
 * it had to be read (0 when known from the buffer or absent); *from_store: 1 when read. */
static int row_exists(coll_vtab *vt, const tn_val *pk, int *exists, uint64_t *rev, int *from_store)
{
    int state = tn_txn_row_state(vt->vb.txn, vt->txn_coll, pk, NULL);
    *rev = 0;
    *from_store = 0;
    if (state != TN_TXN_ROW_UNKNOWN) {
        *exists = state == TN_TXN_ROW_PRESENT;
        return SQLITE_OK;
    }
    int rc = read_rev(vt, pk, rev);
    *exists = *rev != 0;
    *from_store = 1;
    return rc;
}

static int add_op(coll_vtab *vt, const tn_coll_row_op *op)
{
    return tn_vtab_buffered(&vt->vb, tn_txn_add(vt->vb.txn, vt->txn_coll, op), "row op on '%s'", vt->name);
}

/* Converts the new row (argv[2..]) into vt->row_vals / idx_vals and packs the payload into vt->payload.
 * old_pk (UPDATE) stands in for a "nochange" pk. */
static int build_row(coll_vtab *vt, sqlite3_value **cols, const tn_val *old_pk, arena *a)
{
    const char *pkname = vt->schema.cols[vt->pk_col].name;
    for (size_t c = 0; c < vt->schema.n_cols; c++) {
        if (c == vt->pk_col && old_pk && sqlite3_value_nochange(cols[c])) {
            vt->row_vals[c] = *old_pk;
            continue;
        }
        int rc = to_val(cols[c], col_affinity(vt->schema.cols[c].type), a, &vt->row_vals[c]);
        if (rc) return rc;
        const tn_val *v = &vt->row_vals[c];
        if (vt->plain_of[c] < 0 && (v->type == TN_V_TEXT || v->type == TN_V_BLOB) && v->n > TN_COLL_MAX_INDEX_VALUE) {
            tn_vtab_error(&vt->vb, "tarn: TOO_LARGE: value of %s.%s is %u bytes; key and index values are limited "
                          "to %u", vt->table, vt->schema.cols[c].name, v->n, TN_COLL_MAX_INDEX_VALUE);
            return tn_code_to_sqlite(TN_TOO_LARGE);
        }
    }
    const tn_val *pk = &vt->row_vals[vt->pk_col];
    if (pk->type == TN_V_NULL) {
        tn_vtab_error(&vt->vb, "NOT NULL constraint failed: %s.%s", vt->table, pkname);
        return SQLITE_CONSTRAINT;
    }
    int want = vt->schema.cols[vt->pk_col].type == TN_T_INTEGER ? TN_V_INT : TN_V_TEXT;
    if (pk->type != want) {
        tn_vtab_error(&vt->vb, "tarn: datatype mismatch: %s.%s must be %s", vt->table, pkname,
                      want == TN_V_INT ? "an integer" : "text");
        return SQLITE_MISMATCH;
    }
    for (size_t c = 0; c < vt->schema.n_cols; c++) {
        if (vt->slot_of[c] >= 0) vt->idx_vals[vt->slot_of[c]] = vt->row_vals[c];
        else if (vt->plain_of[c] >= 0) vt->plain_vals[vt->plain_of[c]] = vt->row_vals[c];
    }
    vt->payload.len = 0;
    vt->payload.oom = 0;
    int code = tn_rowpack_encode(vt->plain_vals, vt->n_plain, vt->schema.compress == TN_COMPRESS_LZ4, &vt->pack,
                                 &vt->payload);
    if (code == TN_TOO_LARGE)
        tn_vtab_error(&vt->vb, "tarn: TOO_LARGE: row payload of '%s' above %u bytes", vt->name, TN_COLL_MAX_PAYLOAD);
    return tn_code_to_sqlite(code);
}

static int exists_error(coll_vtab *vt, const tn_val *pk)
{
    char buf[128];
    tn_vtab_error(&vt->vb, "tarn: ROW_EXISTS: row %s=%s of '%s' already exists", vt->schema.cols[vt->pk_col].name,
                  pk_text(vt, pk, buf, sizeof buf), vt->name);
    return tn_code_to_sqlite(TN_ROW_EXISTS);
}

static int do_insert(coll_vtab *vt, sqlite3_value **cols, arena *a)
{
    int rc = build_row(vt, cols, NULL, a);
    if (rc) return rc;
    const tn_val *pk = &vt->row_vals[vt->pk_col];
    tn_coll_row_op op = {.mode = TN_ROW_INSERT, .pk = *pk, .idx = vt->idx_vals, .n_idx = vt->n_idx,
                         .payload = vt->payload.p, .payload_len = vt->payload.len};
    int conflict = sqlite3_vtab_on_conflict(vt->vb.db);
    if (conflict == SQLITE_REPLACE) {
        op.mode = TN_ROW_UPSERT;
        return add_op(vt, &op);
    }
    if (conflict == SQLITE_ABORT) {
        /* Checked by the commit; a key written earlier in this transaction fails now. */
        if (tn_txn_row_state(vt->vb.txn, vt->txn_coll, pk, NULL) == TN_TXN_ROW_PRESENT) return exists_error(vt, pk);
        return add_op(vt, &op);
    }
    /* IGNORE, FAIL, ROLLBACK: decide now. */
    int exists, from_store;
    uint64_t rev;
    rc = row_exists(vt, pk, &exists, &rev, &from_store);
    if (rc) return rc;
    if (exists) {
        if (conflict == SQLITE_IGNORE && from_store) {
            /* The decision rests on this read: the commit re-checks it. */
            tn_coll_row_op check = {.mode = TN_ROW_CHECK, .pk = *pk, .expect_rev = rev};
            rc = add_op(vt, &check);
            if (rc) return rc;
        }
        return exists_error(vt, pk);
    }
    if (from_store) {
        tn_coll_row_op check = {.mode = TN_ROW_CHECK, .pk = *pk, .expect_rev = 0};
        rc = add_op(vt, &check);
        if (rc) return rc;
    }
    return add_op(vt, &op);
}

static int seen_rev(coll_vtab *vt, const tn_val *pk, uint64_t *rev)
{
    tn_wr w;
    tn_wr_init(&w);
    tn_val_encode(pk, &w);
    if (w.oom) return SQLITE_NOMEM;
    const tn_read_info *info = tn_readset_get(&vt->vb.reads, w.p, w.len);
    *rev = info ? info->rev : 0;
    tn_wr_free(&w);
    return SQLITE_OK;
}

static int do_delete(coll_vtab *vt, sqlite3_value *old, arena *a)
{
    tn_val pk;
    uint64_t rev;
    int written;
    int rc = to_val(old, col_affinity(vt->schema.cols[vt->pk_col].type), a, &pk);
    if (rc || (rc = seen_rev(vt, &pk, &rev))) return rc;
    /* A row this transaction already changed is deleted whatever its revision: the earlier op carries
     * the check against what was read. */
    tn_txn_row_state(vt->vb.txn, vt->txn_coll, &pk, &written);
    tn_coll_row_op op = {.mode = TN_ROW_DELETE, .pk = pk, .expect_rev = written ? 0 : rev};
    return add_op(vt, &op);
}

static int do_update(coll_vtab *vt, sqlite3_value *old, sqlite3_value **cols, arena *a)
{
    tn_val old_pk;
    uint64_t rev;
    int written;
    char buf[128];
    int rc = to_val(old, col_affinity(vt->schema.cols[vt->pk_col].type), a, &old_pk);
    if (rc || (rc = seen_rev(vt, &old_pk, &rev))) return rc;
    tn_txn_row_state(vt->vb.txn, vt->txn_coll, &old_pk, &written);
    /* A row this transaction already wrote is updated whatever its revision: its earlier op (and the read
     * set) carry the checks against what was read; the statement read the transaction's own image. */
    if (written) rev = 0;
    else if (!rev) {
        tn_vtab_error(&vt->vb, "tarn: INTERNAL: no read revision for row %s of '%s'",
                      pk_text(vt, &old_pk, buf, sizeof buf), vt->name);
        return SQLITE_ERROR;
    }
    rc = build_row(vt, cols, &old_pk, a);
    if (rc) return rc;
    const tn_val *pk = &vt->row_vals[vt->pk_col];
    if (tn_val_cmp(pk, &old_pk) != 0) {
        /* The key moves: the new key must be free (by the conflict clause). */
        int conflict = sqlite3_vtab_on_conflict(vt->vb.db);
        if (conflict == SQLITE_REPLACE) {
            tn_coll_row_op del = {.mode = TN_ROW_DELETE, .pk = *pk, .expect_rev = 0};
            rc = add_op(vt, &del);
            if (rc) return rc;
        } else if (conflict == SQLITE_ABORT) {
            if (tn_txn_row_state(vt->vb.txn, vt->txn_coll, pk, NULL) == TN_TXN_ROW_PRESENT) return exists_error(vt, pk);
        } else {
            int exists, from_store;
            uint64_t nrev;
            rc = row_exists(vt, pk, &exists, &nrev, &from_store);
            if (rc) return rc;
            if (exists) return exists_error(vt, pk);
            if (from_store) {
                tn_coll_row_op check = {.mode = TN_ROW_CHECK, .pk = *pk, .expect_rev = 0};
                if ((rc = add_op(vt, &check))) return rc;
            }
        }
    }
    tn_coll_row_op op = {.mode = TN_ROW_UPDATE, .old_pk = old_pk, .expect_rev = written ? 0 : rev, .pk = *pk, .idx = vt->idx_vals,
                         .n_idx = vt->n_idx, .payload = vt->payload.p, .payload_len = vt->payload.len};
    return add_op(vt, &op);
}

static int coll_update(sqlite3_vtab *base, int argc, sqlite3_value **argv, sqlite3_int64 *rowid)
{
    coll_vtab *vt = (coll_vtab *)base;
    arena a = {0};
    int rc;
    (void)rowid;
    if (argc == 1) rc = do_delete(vt, argv[0], &a);
    else if (sqlite3_value_type(argv[0]) == SQLITE_NULL) rc = do_insert(vt, argv + 2, &a);
    else rc = do_update(vt, argv[0], argv + 2, &a);
    arena_free(&a);
    return rc;
}

static sqlite3_module coll_module = {
    .iVersion = 3,
    .xCreate = coll_connect,
    .xConnect = coll_connect,
    .xBestIndex = coll_best_index,
    .xDisconnect = coll_disconnect,
    .xDestroy = coll_disconnect, /* DROP TABLE detaches; tarn_drop_collection() deletes the data */
    .xOpen = coll_open,
    .xClose = coll_close,
    .xFilter = coll_filter,
    .xNext = coll_next,
    .xEof = coll_eof,
    .xColumn = coll_column,
    .xRowid = coll_rowid,
    .xUpdate = coll_update,
    .xBegin = tn_vtab_xbegin,
    .xSync = tn_vtab_xsync,             /* the commit point (vtab_base.h) */
    .xCommit = tn_vtab_xend,
    .xRollback = tn_vtab_xend,
    .xSavepoint = tn_vtab_xsavepoint,
    .xRelease = tn_vtab_xrelease,
    .xRollbackTo = tn_vtab_xrollback_to,
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
