/* coll_vtab_int.h — private contract between the files of the `tarn` virtual table (coll_vtab.c and its
 * seams: coll_vtab_decl.c, coll_vtab_plan.c, coll_vtab_merge.c, coll_vtab_write.c). Not for other modules.
 *
 * The table (coll_vtab) embeds the shared base (vtab_base.h) first; the cursor (coll_cursor) holds one
 * answer, either as the store sent it or merged with the transaction's own rows (coll_vtab_merge.c).
 * Cross-file functions carry the tn_collvt_ prefix. Memory via sqlite3_malloc; SQLite codes unless stated.
 * Thread: the connection's thread.
 */
#ifndef TARN_COLL_VTAB_INT_H
#define TARN_COLL_VTAB_INT_H

#include <sqlite3ext.h>
#include <stddef.h>
#include <stdint.h>

#include "coll_codec.h"
#include "rowpack.h"
#include "txn.h"
#include "vtab_base.h"
#include "wire.h"

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

/* ---- small arena: bytes of converted values that must live until a request is encoded ------------ */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(8) uint8_t data[];
} arena_block;

typedef struct arena {
    arena_block *head;
} arena;

void *tn_collvt_arena_alloc(arena *a, size_t n); /* 8-byte aligned; NULL when out of memory */
void tn_collvt_arena_free(arena *a);
/* Copies n bytes into a; *out points at the copy. SQLITE_OK or SQLITE_NOMEM. */
int tn_collvt_arena_copy(arena *a, const void *p, size_t n, const uint8_t **out);

/* ---- values and requests (coll_vtab.c) ---------------------------------------------------------- */

/* The affinity (AFF_*) of a column type (TN_T_*). */
int tn_collvt_affinity(int type);
/* Converts v as a column of affinity aff would store / compare it; TEXT/BLOB bytes are copied into a.
 * SQLITE_OK or SQLITE_NOMEM. */
int tn_collvt_to_val(sqlite3_value *v, int aff, arena *a, tn_val *out);
/* Runs query q; on SQLITE_OK *res is decoded (pointing into *buf) and successful, and the caller clears
 * resp and res and frees buf. Otherwise an SQLite code with the table's message set. */
int tn_collvt_query(coll_vtab *vt, const tn_coll_query *q, tn_wr *buf, tn_resp *resp, tn_coll_result *res);

/* ---- declaration (coll_vtab_decl.c) -------------------------------------------------------------- */

typedef struct coll_decl {
    char *collection, *cluster, *engine, *token, *data_dir;
    int timeout_ms;
    int stale_reads;
    int compress;
    size_t n_cols;
    tn_coll_column *cols; /* names sqlite3_malloc'd */
} coll_decl;

/* Parses the CREATE VIRTUAL TABLE arguments (argv as xCreate/xConnect get them) into *d. SQLITE_OK, or an
 * SQLite code and *err naming the argument. On SQLITE_OK the caller frees d with tn_collvt_decl_free. */
int tn_collvt_decl_parse(int argc, const char *const *argv, coll_decl *d, char **err);
void tn_collvt_decl_free(coll_decl *d);

/* ---- planning (coll_vtab_plan.c) ---------------------------------------------------------------- */

enum {
    T_EQ = 1, T_IN, T_IS, T_ISNULL, T_NOTNULL, T_GT, T_GE, T_LT, T_LE, T_LIKE, T_GLOB,
};

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

/* xBestIndex. */
int tn_collvt_best_index(sqlite3_vtab *base, sqlite3_index_info *info);
/* Parses an idxStr written by tn_collvt_best_index (grammar in coll_vtab_plan.c). 0 or -1. */
int tn_collvt_plan_parse(const coll_vtab *vt, const char *s, plan *p);
/* Builds the query for plan p, idxNum and xFilter's argv (preds: room for TN_COLL_MAX_PREDS; values copied
 * into a); *empty = 1 when no row can match (no request needed). SQLITE_OK, SQLITE_NOMEM, or SQLITE_ERROR
 * when argv does not fit the plan. */
int tn_collvt_build_query(coll_vtab *vt, const plan *p, int idx_num, int argc, sqlite3_value **argv, arena *a,
                          tn_coll_pred *preds, tn_coll_query *q, int *empty);

/* ---- read-your-writes and the read set (coll_vtab_merge.c) -------------------------------------- */

/* Merges the store's answer (cur->res, fetched as q without limit/offset) with the transaction's own rows
 * of this collection, then orders and applies orig's limit/offset as the server would have. */
int tn_collvt_merge_own(coll_cursor *cur, coll_vtab *vt, const tn_coll_query *q, const tn_coll_query *orig);
/* Records in the transaction's read set what answer res to query q read. */
int tn_collvt_record_reads(coll_vtab *vt, const tn_coll_query *q, const tn_coll_result *res);

/* ---- writes (coll_vtab_write.c) ----------------------------------------------------------------- */

/* xUpdate. */
int tn_collvt_update(sqlite3_vtab *base, int argc, sqlite3_value **argv, sqlite3_int64 *rowid);

#endif
