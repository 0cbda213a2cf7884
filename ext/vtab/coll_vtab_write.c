/* coll_vtab_write.c — writes of the `tarn` virtual table (xUpdate): rows converted, packed (rowpack.h)
 * and appended to the connection's transaction buffer (txn.h), which xSync commits (vtab_base.h).
 *
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
 *   Savepoints (xSavepoint/xRelease/xRollbackTo, vtab_base.c) mark the buffer: statement rollback and
 *   ROLLBACK TO drop the right ops. UPDATE/DELETE … RETURNING are not available on virtual tables (SQLite
 *   limitation).
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "coll_vtab_int.h"

#include <string.h>

#include "sql_code.h"
#include "tn_code.h"

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
    int rc = tn_collvt_query(vt, &q, &buf, &resp, &res);
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
        int rc = tn_collvt_to_val(cols[c], tn_collvt_affinity(vt->schema.cols[c].type), a, &vt->row_vals[c]);
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
    int rc = tn_collvt_to_val(old, tn_collvt_affinity(vt->schema.cols[vt->pk_col].type), a, &pk);
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
    int rc = tn_collvt_to_val(old, tn_collvt_affinity(vt->schema.cols[vt->pk_col].type), a, &old_pk);
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

int tn_collvt_update(sqlite3_vtab *base, int argc, sqlite3_value **argv, sqlite3_int64 *rowid)
{
    coll_vtab *vt = (coll_vtab *)base;
    arena a = {0};
    int rc;
    (void)rowid;
    if (argc == 1) rc = do_delete(vt, argv[0], &a);
    else if (sqlite3_value_type(argv[0]) == SQLITE_NULL) rc = do_insert(vt, argv + 2, &a);
    else rc = do_update(vt, argv[0], argv + 2, &a);
    tn_collvt_arena_free(&a);
    return rc;
}

