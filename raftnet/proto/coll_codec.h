/* coll_codec.h — Cachalot-style typed collections, the half both sides share: values, schemas, predicates,
 * the write/query payload codecs and result decoders, and the client's planning help. The server-side
 * store (rows, hash and ordered indexes, statistics, executor, snapshot) is sm/coll.h.
 *
 * ---- Model --------------------------------------------------------------------------------------
 * A collection is a named set of rows with a schema: columns (name, declared type, role). Exactly one
 * column is the primary key (INTEGER or TEXT). Columns with role HASH ("INDEXED" in SQL) or ORDERED are
 * index columns; numbered in declaration order they form the *index slots* 0..n_idx-1. A stored row is
 * { pk, one value per index slot (extracted by the client), opaque payload bytes (the plain columns packed
 * and maybe LZ4-compressed by the client; never parsed here), revision (index of its last change) }.
 *
 * Values are SQLite's dynamic types (tn_val). Ordering is SQLite's for the BINARY collation:
 * NULL < INTEGER/REAL (numeric, mixed int/real compared exactly) < TEXT (memcmp, shorter prefix first)
 * < BLOB (memcmp). NaN is rejected. NULL is a valid indexed value (indexes keep NULL rows).
 *
 * ---- Where things travel --------------------------------------------------------------------------
 * Writes: wire op TN_OP_COLL_WRITE, key = collection name, value = a write payload built with
 *   tn_coll_create_encode / tn_coll_drop_encode / tn_coll_rows_encode. The state machine calls
 *   tn_colls_write(), whose result payload (append to the wire result blob) the client decodes with
 *   tn_coll_write_result_decode().
 * Reads: wire op TN_OP_COLL_READ, value = a query payload from tn_coll_query_encode(). The state machine
 *   calls tn_colls_read(); the client decodes the blob with tn_coll_result_decode().
 *
 * ---- Payload formats (varint = unsigned LEB128, svarint = zigzag, bytes = varint length + bytes) ------
 *   val      := type:u8 [INT: svarint | REAL: u64 LE IEEE bits | TEXT/BLOB: bytes]       (NULL: nothing)
 *   schema   := "TS" version:u8(=1) compress:u8 n_cols:varint (name:bytes type:u8 role:u8)*
 *   write    := kind:u8 ...
 *     kind CREATE(1): schema          kind DROP(2): (nothing)
 *     kind ROWS(3):   flags:u8 (bit0 atomic) n_ops:varint rowop*
 *   rowop    := mode:u8 ...
 *     INSERT(1) | INSERT_OR_IGNORE(2) | UPSERT(3): pk:val n_idx:varint val* payload:bytes
 *     UPDATE(4):       old_pk:val expect_rev:varint pk:val n_idx:varint val* payload:bytes
 *     DELETE(5):       pk:val expect_rev:varint
 *     CHECK(6):        pk:val expect_rev:varint
 *     RANGE_CHECK(7):  n_preds:varint pred* expect_rev:varint
 *   wresult  := code:varint message:bytes failed_op:varint (0 none, else position+1)
 *               n_ops:varint (code:varint rev:varint affected:u8)*
 *   query    := kind:u8 ...
 *     SELECT(1): n_preds:varint pred* order_col:varint (0 none, else column+1) order_desc:u8
 *                flags:u8 (bit0 limit, bit1 offset) [limit:varint] [offset:varint]
 *                want_payload:u8 idx_mask:varint (bit s = return the value of index slot s)
 *     STATS(2), SCHEMA(3): nothing more
 *   pred     := column:varint op:u8 ...
 *     EQ(1): val   IN(2): n:varint val*   IS_NULL(3)   NOT_NULL(4)
 *     RANGE(5): lo_kind:u8 [val] hi_kind:u8 [val]        (kind: 0 none, 1 exclusive, 2 inclusive)
 *     PREFIX(6): nocase:u8 prefix:bytes
 *   qresult  := code:varint message:bytes kind:u8 revision:varint ... (only when code == SUCCESS:)
 *     SELECT: want_payload:u8 idx_mask:varint n_rows:varint
 *             (pk:val rev:varint val-per-set-bit-of-mask [payload:bytes])*
 *     STATS:  rows:varint n_idx:varint (column:varint role:u8 rows:varint distinct:varint nulls:varint)*
 *     SCHEMA: schema
 *   snapshot := "TNCL" version:u8(=1) n_colls:varint (name:bytes schema last_write:varint
 *               last_remove:varint n_rows:varint (pk:val rev:varint val*n_idx payload:bytes)*)*
 *               collections in name order (memcmp), rows in pk order: same state => same bytes.
 *
 * ---- Semantics -------------------------------------------------------------------------------------
 * Predicates name a *schema column position* (0-based); it must be the pk or an index column.
 *   EQ value   — SQL "=": EQ NULL matches nothing (use IS_NULL). IN ignores NULL items; duplicates are
 *                harmless (one request for a whole IN list).
 *   RANGE      — pk or ORDERED columns only; NULL never satisfies a range (SQL). lo > hi is empty.
 *   PREFIX     — pk or ORDERED columns only; matches TEXT values starting with the prefix bytes (GLOB
 *                'p*'), or, with nocase, ASCII-case-insensitively (LIKE 'p%'). Non-TEXT values never
 *                match, so the client should push it only for TEXT columns.
 *   IS_NULL / NOT_NULL on an index column (pk is never NULL).
 * Order: order_col (pk or ORDERED column) ASC/DESC; ties broken by pk in the same direction; NULLs first
 *   ascending, last descending (SQLite). Without order_col the order is unspecified but deterministic.
 * Limit/offset apply only when their flag is set, after filtering and ordering.
 * The executor picks the cheapest path from exact counts (counted B+tree ranks, hash bucket sizes): pk
 *   lookup/range, one index (hash EQ/IN, ordered EQ/IN/range/prefix), an intersection of the two most
 *   selective index candidate sets (when the cost model says it pays), a walk of the ORDER BY index that
 *   stops at offset+limit, or a full scan in pk order. Every predicate is always re-checked on each
 *   candidate, so the access path can only change speed, never the answer.
 *
 * Write row ops (ctx->index, which must be >= 1, becomes the revision of every row written):
 *   INSERT            — ROW_EXISTS if the pk exists.
 *   INSERT_OR_IGNORE  — existing pk: SUCCESS, affected 0, rev = the existing row's revision.
 *   UPSERT            — insert (SUCCESS) or replace (SUCCESS_OVERWRITE).
 *   UPDATE            — row old_pk must exist (NOT_FOUND) with rev == expect_rev (REVISION_MISMATCH);
 *                       expect_rev 0 = any revision. If pk != old_pk it is delete old + insert new,
 *                       atomically; ROW_EXISTS if the new pk exists.
 *   DELETE            — expect_rev 0: unconditional (missing row: SUCCESS, affected 0); else like UPDATE.
 *   CHECK             — expect_rev 0: the pk must be absent (else REVISION_MISMATCH); else present
 *                       (NOT_FOUND) at exactly that revision (REVISION_MISMATCH). Changes nothing.
 *   RANGE_CHECK       — phantom check: TXN_CONFLICT if, since revision expect_rev, any row matching the
 *                       predicates was inserted or changed, or any row of the collection at all was
 *                       updated or deleted (the collection keeps last_write / last_remove revisions; a
 *                       removed or moved row could have been in the range, so removals are checked
 *                       coarsely: safe, may report conflicts that a finer rule would not). A
 *                       collection created after expect_rev (dropped and re-created) conflicts too.
 * Batch: ops apply in order, and CHECK / RANGE_CHECK see the effects of earlier ops of the same batch
 *   (and of earlier writes in the same transaction), so a transaction puts its checks first. Without
 *   the atomic flag each op stands alone; the overall code is the first failure's code, else
 *   SUCCESS_OVERWRITE if some op replaced a row, else SUCCESS. With it, the first failure rolls back
 *   every op of the batch; that op reports its code, every other op reports TXN_CONFLICT / affected 0.
 *   The message names the first failing op: "row 3 (pk 42): REVISION_MISMATCH: expected revision 7,
 *   the row is at revision 9". Malformed batches (bad shape, wrong pk type, wrong number of index
 *   values, unsupported RANGE_CHECK predicate) are refused whole with CLIENT_REQ_ERROR, n_ops 0.
 * CREATE: creates, or attaches when the stored schema is identical (SUCCESS_OVERWRITE); a different
 *   schema gives COLLECTION_EXISTS with a message naming the first difference. DROP: NO_SUCH_COLLECTION
 *   if absent.
 * Transactions spanning several ops of one request: tn_colls_txn_begin / _commit / _rollback (an undo
 *   log); without an open transaction each tn_colls_write commits on its own.
 *
 * Ownership: tn_colls owns copies of everything written to it. Decoded client structures (tn_coll_result,
 * tn_coll_write_result, tn_coll_schema from decode) point INTO the decoded buffer, which must outlive
 * them; their arrays are freed by the matching _clear function.
 * Errors: functions return a tn_code. Malformed payloads give CLIENT_REQ_ERROR and change nothing.
 * NOMEM rolls the write back.
 * Determinism: no clocks, no randomness, no iteration in pointer order.
 * Thread: tn_colls is not thread-safe: the caller holds an rwlock (reads concurrent, one writer). The
 * encoders/decoders and tn_coll_estimate have no shared state.
 */
#ifndef TARN_COLL_CODEC_H
#define TARN_COLL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "tn_code.h"

/* ---- limits ------------------------------------------------------------------------------------ */
#define TN_COLL_MAX_NAME 1024u               /* collection name bytes */
#define TN_COLL_MAX_COL_NAME 255u            /* column name bytes */
#define TN_COLL_MAX_COLS 2000u               /* columns per schema (SQLite's default maximum) */
#define TN_COLL_MAX_INDEXES 64u              /* index slots per schema (idx_mask is 64 bits) */
#define TN_COLL_MAX_INDEX_VALUE (64u * 1024u) /* bytes of one pk / index TEXT or BLOB value */
#define TN_COLL_MAX_PAYLOAD (16u * 1024u * 1024u)
#define TN_COLL_MAX_PREDS 64u
#define TN_COLL_MAX_IN 100000u               /* values of one IN list */
#define TN_COLL_MAX_ROW_OPS 100000u

/* ---- values ------------------------------------------------------------------------------------ */
enum tn_vtype { TN_V_NULL = 0, TN_V_INT = 1, TN_V_REAL = 2, TN_V_TEXT = 3, TN_V_BLOB = 4 };

typedef struct tn_val {
    union {
        int64_t i;        /* TN_V_INT */
        double r;         /* TN_V_REAL (never NaN) */
        const uint8_t *p; /* TN_V_TEXT / TN_V_BLOB bytes (not NUL-terminated) */
    } u;
    uint32_t n;   /* TEXT/BLOB length */
    uint8_t type; /* tn_vtype */
} tn_val;

static inline tn_val tn_val_null(void) { tn_val v = {.type = TN_V_NULL}; return v; }
static inline tn_val tn_val_int(int64_t i) { tn_val v = {.u.i = i, .type = TN_V_INT}; return v; }
static inline tn_val tn_val_real(double r) { tn_val v = {.u.r = r, .type = TN_V_REAL}; return v; }
static inline tn_val tn_val_text(const void *p, size_t n)
{
    tn_val v = {.u.p = (const uint8_t *)p, .n = (uint32_t)n, .type = TN_V_TEXT};
    return v;
}
static inline tn_val tn_val_blob(const void *p, size_t n)
{
    tn_val v = {.u.p = (const uint8_t *)p, .n = (uint32_t)n, .type = TN_V_BLOB};
    return v;
}

/* <0, 0, >0 by SQLite's BINARY ordering (see top). */
int tn_val_cmp(const tn_val *a, const tn_val *b);
/* Hash consistent with tn_val_cmp (equal values hash equal: 3 and 3.0 too). Deterministic. */
uint64_t tn_val_hash(const tn_val *v);
void tn_val_encode(const tn_val *v, tn_wr *w);
/* Reads one value (bytes point into the reader's buffer). 0 on success, -1 on malformed input (bad type,
 * NaN, TEXT/BLOB longer than max_bytes) — and the reader's err is set. */
int tn_val_decode(tn_rd *r, size_t max_bytes, tn_val *out);
/* Writes a short human form ("42", "'abc'", "x'00ff'", "NULL") for messages; always NUL-terminates. */
void tn_val_format(const tn_val *v, char *buf, size_t cap);

/* ---- schema ------------------------------------------------------------------------------------ */
enum tn_ctype { TN_T_INTEGER = 1, TN_T_REAL = 2, TN_T_TEXT = 3, TN_T_BLOB = 4, TN_T_JSON = 5 };
enum tn_crole { TN_R_PLAIN = 0, TN_R_PK = 1, TN_R_HASH = 2, TN_R_ORDERED = 3 };
enum tn_coll_compress { TN_COMPRESS_NONE = 0, TN_COMPRESS_LZ4 = 1 };

typedef struct tn_coll_column {
    const char *name; /* not necessarily NUL-terminated */
    size_t name_len;
    uint8_t type; /* tn_ctype */
    uint8_t role; /* tn_crole */
} tn_coll_column;

typedef struct tn_coll_schema {
    size_t n_cols;
    tn_coll_column *cols; /* caller-owned when encoding; malloc'd by tn_coll_schema_decode */
    uint8_t compress;     /* tn_coll_compress: recorded only, the client compresses */
} tn_coll_schema;

/* "INTEGER"... and "PRIMARY KEY", "INDEXED", "ORDERED", "PLAIN". */
const char *tn_coll_type_name(int type);
const char *tn_coll_role_name(int role);

/* SUCCESS, or CLIENT_REQ_ERROR with a message: no/several PKs, PK not INTEGER/TEXT, index on JSON, empty
 * or duplicate (ASCII case-insensitive) names, unknown type/role, too many columns/indexes. */
int tn_coll_schema_validate(const tn_coll_schema *s, char *msg, size_t msg_cap);
/* 0 if identical (names compared exactly), else 1 and a message naming the first difference, e.g.
 * "column 3: 'event_date' is ORDERED here but INDEXED in the stored collection". */
int tn_coll_schema_diff(const tn_coll_schema *here, const tn_coll_schema *stored, char *msg, size_t cap);
void tn_coll_schema_encode(const tn_coll_schema *s, tn_wr *w);
/* Decodes (names point into the reader's buffer; cols malloc'd). Validates. SUCCESS, CLIENT_REQ_ERROR,
 * NOMEM. Release with tn_coll_schema_clear. */
int tn_coll_schema_decode(tn_rd *r, tn_coll_schema *s);
void tn_coll_schema_clear(tn_coll_schema *s);
/* Position of the PK column. */
size_t tn_coll_schema_pk(const tn_coll_schema *s);
/* Index slot of column `col` (HASH or ORDERED), or -1 (PK, PLAIN, out of range). */
int tn_coll_schema_slot(const tn_coll_schema *s, size_t col);
/* Number of index slots. */
size_t tn_coll_schema_n_idx(const tn_coll_schema *s);

/* ---- predicates and queries ---------------------------------------------------------------------- */
enum tn_coll_pred_op {
    TN_PRED_EQ = 1, TN_PRED_IN = 2, TN_PRED_IS_NULL = 3, TN_PRED_NOT_NULL = 4, TN_PRED_RANGE = 5,
    TN_PRED_PREFIX = 6,
};
enum tn_coll_bound { TN_BOUND_NONE = 0, TN_BOUND_EXCL = 1, TN_BOUND_INCL = 2 };

typedef struct tn_coll_pred {
    uint32_t column; /* schema column position: pk or an index column */
    uint8_t op;      /* tn_coll_pred_op */
    tn_val v;        /* EQ */
    const tn_val *in; /* IN */
    size_t n_in;
    uint8_t lo_kind, hi_kind; /* RANGE: tn_coll_bound */
    tn_val lo, hi;
    const uint8_t *prefix; /* PREFIX */
    size_t prefix_len;
    uint8_t nocase;
} tn_coll_pred;

enum tn_coll_query_kind { TN_QUERY_SELECT = 1, TN_QUERY_STATS = 2, TN_QUERY_SCHEMA = 3 };
#define TN_QUERY_NO_ORDER (-1)

typedef struct tn_coll_query {
    uint8_t kind; /* tn_coll_query_kind */
    const tn_coll_pred *preds;
    size_t n_preds;
    int32_t order_col; /* schema column position (pk or ORDERED), or TN_QUERY_NO_ORDER */
    uint8_t order_desc;
    uint8_t has_limit, has_offset;
    uint64_t limit, offset;
    uint8_t want_payload;
    uint64_t idx_mask; /* bit s: return the value of index slot s */
} tn_coll_query;

/* Appends a query payload. SUCCESS, CLIENT_REQ_ERROR (counts above the limits), NOMEM. */
int tn_coll_query_encode(const tn_coll_query *q, tn_wr *w);

/* ---- write payloads (client side) ----------------------------------------------------------------- */
enum tn_coll_write_kind { TN_CWRITE_CREATE = 1, TN_CWRITE_DROP = 2, TN_CWRITE_ROWS = 3 };
enum tn_coll_row_mode {
    TN_ROW_INSERT = 1, TN_ROW_INSERT_OR_IGNORE = 2, TN_ROW_UPSERT = 3, TN_ROW_UPDATE = 4,
    TN_ROW_DELETE = 5, TN_ROW_CHECK = 6, TN_ROW_RANGE_CHECK = 7,
};

typedef struct tn_coll_row_op {
    uint8_t mode;        /* tn_coll_row_mode */
    tn_val pk;           /* INSERT, UPSERT, UPDATE: the (new) pk; DELETE/CHECK: the pk */
    tn_val old_pk;       /* UPDATE: pk of the row to update */
    uint64_t expect_rev; /* UPDATE, DELETE, CHECK, RANGE_CHECK */
    const tn_val *idx;   /* INSERT, UPSERT, UPDATE: one value per index slot */
    size_t n_idx;
    const uint8_t *payload;
    size_t payload_len;
    const tn_coll_pred *preds; /* RANGE_CHECK */
    size_t n_preds;
} tn_coll_row_op;

int tn_coll_create_encode(const tn_coll_schema *s, tn_wr *w); /* SUCCESS, CLIENT_REQ_ERROR, NOMEM */
int tn_coll_drop_encode(tn_wr *w);
int tn_coll_rows_encode(const tn_coll_row_op *ops, size_t n_ops, int atomic, tn_wr *w);

/* ---- results (client side) ----------------------------------------------------------------------- */
typedef struct tn_coll_op_result {
    int code;
    uint64_t rev; /* the row's revision after the op (0 when none) */
    int affected; /* 0 or 1 */
} tn_coll_op_result;

typedef struct tn_coll_write_result {
    int code;
    const char *message; /* into the buffer; not NUL-terminated */
    size_t message_len;
    size_t failed_op; /* position+1 of the first failing op, 0 = none */
    size_t n_ops;
    tn_coll_op_result *ops; /* malloc'd */
} tn_coll_write_result;

/* SUCCESS (the payload decoded; see res->code for the outcome), CLIENT_REQ_ERROR, NOMEM. */
int tn_coll_write_result_decode(const void *buf, size_t len, tn_coll_write_result *res);
void tn_coll_write_result_clear(tn_coll_write_result *res);

typedef struct tn_coll_rrow {
    tn_val pk;
    uint64_t rev;
    tn_val *idx; /* n_idx_vals values: slot s is at idx[s]; slots not in the mask are NULL */
    const uint8_t *payload; /* NULL unless want_payload */
    size_t payload_len;
} tn_coll_rrow;

typedef struct tn_coll_index_stats {
    uint32_t column; /* schema column position */
    uint8_t role;    /* TN_R_HASH or TN_R_ORDERED */
    uint64_t rows, distinct, nulls;
} tn_coll_index_stats;

typedef struct tn_coll_stats {
    uint64_t rows;
    size_t n_idx;
    tn_coll_index_stats *idx; /* one per index slot */
} tn_coll_stats;

typedef struct tn_coll_result {
    int code;
    const char *message;
    size_t message_len;
    uint8_t kind;      /* tn_coll_query_kind */
    uint64_t revision; /* the state the answer reflects */
    /* SELECT */
    uint8_t want_payload;
    uint64_t idx_mask;
    size_t n_idx_vals; /* highest mask bit + 1 */
    size_t n_rows;
    tn_coll_rrow *rows;
    /* STATS */
    tn_coll_stats stats;
    /* SCHEMA */
    tn_coll_schema schema;
    tn_val *vals_; /* storage behind rows[].idx */
} tn_coll_result;

int tn_coll_result_decode(const void *buf, size_t len, tn_coll_result *res);
/* Frees st->idx (NULL-safe) and zeroes st. */
void tn_coll_stats_clear(tn_coll_stats *st);
void tn_coll_result_clear(tn_coll_result *res);

/* ---- planning help for xBestIndex (client side, from decoded STATS) ---------------------------------- */
/* 1 if `op` may be pushed on column `col` of schema s (EQ/IN/IS_NULL on pk and every index column;
 * RANGE/PREFIX on pk and ORDERED columns; NOT_NULL on index columns), 0 if not. */
int tn_coll_pred_supported(const tn_coll_schema *s, size_t col, int op);
/* 1 if ORDER BY col can be served by an index walk (pk or ORDERED). */
int tn_coll_order_supported(const tn_coll_schema *s, size_t col);

typedef struct tn_coll_pred_shape {
    uint32_t column;
    uint8_t op;    /* tn_coll_pred_op */
    size_t n_in;   /* IN: number of values */
    uint8_t has_lo, has_hi; /* RANGE */
} tn_coll_pred_shape;

/* Estimated matching rows and a cost (in "row visits") of the plan the server would pick, from
 * statistics (equality: rows/distinct; range: a third of the rows per bound side, SQLite-like).
 * order_col: TN_QUERY_NO_ORDER or a column; limit: 0 = none. SUCCESS or CLIENT_REQ_ERROR (unsupported
 * shape). */
int tn_coll_estimate(const tn_coll_schema *s, const tn_coll_stats *st, const tn_coll_pred_shape *shapes,
                     size_t n, int32_t order_col, uint64_t limit, double *est_rows, double *cost);

/* ---- shared with the server's decoder --------------------------------------------------------------- */
/* tn_coll_schema_decode with the validation message written to msg[cap]. */
int tn_coll_schema_decode_msg(tn_rd *r, tn_coll_schema *s, char *msg, size_t cap);
/* Deep copy of src into dst, names and columns in one malloc'd block *mem (free(*mem) releases it).
 * SUCCESS or NOMEM. */
int tn_coll_schema_copy(const tn_coll_schema *src, tn_coll_schema *dst, void **mem);
/* Decodes n predicates (bounds checked; values point into r's buffer); preds malloc'd along with their IN
 * arrays in *mem. SUCCESS, CLIENT_REQ_ERROR (malformed), NOMEM. */
int tn_coll_preds_decode(tn_rd *r, size_t n, tn_coll_pred **preds, void **mem);
void tn_coll_preds_free(void *mem); /* the *mem of tn_coll_preds_decode; NULL is a no-op */

#endif
