/* vtab_args.h — parser of CREATE VIRTUAL TABLE arguments for Tarn's modules (tarn, tarn_kv).
 *
 * SQLite hands xCreate/xConnect argv[3..argc-1]: each module argument as the raw text between top-level
 * commas, outer whitespace trimmed, quotes kept as written. tn_vtab_args_parse() takes those arguments and
 * a description of what the module accepts (tn_va_module) and returns the options and column declarations
 * they hold, or an error message naming the argument and the reason, ready for *pzErr.
 *
 * Accepted argument forms
 *   option:   name = value        spaces around '=' optional; names case-insensitive (stored lower-case).
 *             value: '...' ('' is a quote inside), "..." ("" likewise), or a bare word / number with no
 *             spaces or quotes (tcp://127.0.0.1:7001 is fine bare: SQLite has already split on commas, so a
 *             list of URLs must be quoted). An empty value is an error. The value is checked against the
 *             option's kind:
 *               TN_VA_STRING  any non-empty text
 *               TN_VA_INT     optional sign and decimal digits, within [min, max] (e.g. '-5' is rejected
 *                             for 1..3600000); quoted numbers are accepted
 *               TN_VA_ENUM    one of the choices, case-insensitive; the stored value is the choice as
 *                             spelled in the description
 *               TN_VA_BOOL    1/0, true/false, yes/no, on/off (case-insensitive); stored as "1" / "0"
 *   column:   name TYPE [PRIMARY KEY | INDEXED | ORDERED]          (only if the module allows columns)
 *             name: a bare identifier (letters, digits, '_', '$', any byte >= 0x80; not starting with a
 *             digit or '$'), or quoted as "..." ("" escapes), [...] or `...` (`` escapes); case is kept,
 *             duplicates are found case-insensitively (as SQLite compares column names). At most 255
 *             bytes; at most 2000 columns, 64 of them INDEXED/ORDERED (raftnet/proto/coll_codec.h's limits).
 *             TYPE, case-insensitive:
 *               INTEGER:  INTEGER, INT, BIGINT, SMALLINT, TINYINT, MEDIUMINT, BOOLEAN, BOOL
 *               REAL:     REAL, DOUBLE, DOUBLE PRECISION, FLOAT
 *               TEXT:     TEXT, VARCHAR, CHAR, CHARACTER, NVARCHAR, NCHAR, STRING, CLOB
 *               BLOB:     BLOB, BYTES
 *               JSON:     JSON
 *             a size such as VARCHAR(255) or CHAR(8) is accepted and ignored.
 *             At most one role per column. The PRIMARY KEY must be INTEGER or TEXT; a JSON column cannot
 *             have a role (it is payload, read with json_extract). At most one PRIMARY KEY in the table;
 *             if any column is declared, exactly one must be the PRIMARY KEY.
 *
 * Whitespace is any of space, \t, \n, \r, \f, \v; SQL comments (slash-star ... star-slash, and -- to the end
 * of the line) count as whitespace, since SQLite keeps a comment that sits inside an argument in its text.
 *
 * Error messages (module name first, then the cause), e.g.
 *   tarn: argument 3 'event_date TEXT SORTED': unknown constraint 'SORTED' (expected PRIMARY KEY, INDEXED or
 *   ORDERED)                                       [argument numbers count module arguments from 1]
 *   tarn_kv: unknown option 'clustr'
 *   tarn: option 'timeout_ms': '-5' is not an integer in 1..3600000
 *   tarn: duplicate option 'cluster'     tarn: duplicate column 'id'     tarn: two primary keys: 'id' and 'code'
 *   tarn: no PRIMARY KEY column          tarn: column 'body' is JSON and cannot be INDEXED
 *   tarn: column 'score' is REAL: a PRIMARY KEY must be INTEGER or TEXT
 *   tarn: argument 1 'cluster='abc': unterminated quote
 *   tarn: no columns declared (need at least one, e.g. id INTEGER PRIMARY KEY)
 * Long arguments are shown truncated ("...") in messages.
 *
 * Ownership: the caller owns the tn_va_module (it must outlive the result: options point at its specs).
 * On success *out is a new tn_vtab_args, released with tn_vtab_args_free(); every string in it is
 * NUL-terminated and owned by it. On failure *out is NULL and *err (if err is not NULL) is a message
 * allocated with sqlite3_mprintf — the caller frees it with sqlite3_free or hands it to SQLite as *pzErr;
 * *err is NULL after SQLITE_NOMEM if even the message could not be allocated.
 * Memory: sqlite3_malloc / sqlite3_free only.
 * Thread: any; no shared state (the module descriptions below are read-only).
 */
#ifndef TARN_VTAB_ARGS_H
#define TARN_VTAB_ARGS_H

#include <stdint.h>

typedef enum tn_va_kind { TN_VA_STRING, TN_VA_INT, TN_VA_ENUM, TN_VA_BOOL } tn_va_kind;

typedef struct tn_va_option_spec {
    const char *name;           /* lower-case */
    tn_va_kind kind;
    int64_t min, max;           /* TN_VA_INT: accepted range, inclusive */
    const char *const *choices; /* TN_VA_ENUM: NULL-terminated list */
} tn_va_option_spec;

typedef enum tn_va_columns {
    TN_VA_COLUMNS_NONE,     /* options only (tarn_kv): any column declaration is an error */
    TN_VA_COLUMNS_OPTIONAL, /* columns may be declared; none at all is fine (ncolumns == 0) */
    TN_VA_COLUMNS_REQUIRED  /* at least one column (and so a PRIMARY KEY) must be declared */
} tn_va_columns;

typedef struct tn_va_module {
    const char *name; /* the module name that starts every error message */
    const tn_va_option_spec *options;
    int noptions;
    tn_va_columns columns;
} tn_va_module;

/* Same numbers as raftnet/proto/coll_codec.h's tn_ctype / tn_crole (checked at compile time), so a column converts to
 * a tn_coll_column by assignment. */
typedef enum tn_col_type {
    TN_COL_INTEGER = 1, TN_COL_REAL = 2, TN_COL_TEXT = 3, TN_COL_BLOB = 4, TN_COL_JSON = 5
} tn_col_type;
typedef enum tn_col_role { TN_COL_PLAIN = 0, TN_COL_PRIMARY_KEY = 1, TN_COL_INDEXED = 2, TN_COL_ORDERED = 3 } tn_col_role;

typedef struct tn_va_column {
    char *name;        /* unquoted, case kept */
    tn_col_type type;
    tn_col_role role;
} tn_va_column;

typedef struct tn_va_option {
    const tn_va_option_spec *spec; /* points into the module description */
    char *value;                   /* unquoted; ENUM: the canonical choice; BOOL: "1" or "0" */
    int64_t ival;                  /* INT: the number; BOOL: 0/1; ENUM: index of the choice; STRING: 0 */
} tn_va_option;

typedef struct tn_vtab_args {
    tn_va_option *options;  /* in argument order */
    int noptions;
    tn_va_column *columns;  /* in declaration order */
    int ncolumns;
    int pk;                 /* index of the PRIMARY KEY column, -1 when no column is declared */
} tn_vtab_args;

/* The descriptions of Tarn's two modules.
 *   both:  cluster (string: comma-separated member URLs), engine (string: name of an embedded engine),
 *          data (string: directory of the embedded engine), timeout_ms (int 1..3600000), token (string:
 *          cluster token), lease_read (bool)
 *   tarn:  also collection (string), compress (enum none|lz4), compress_min (int 0..16777216: bytes below
 *          which a row is stored uncompressed); columns required (so exactly one PRIMARY KEY)
 *   tarn_kv: no columns. */
extern const tn_va_module tn_va_module_tarn;
extern const tn_va_module tn_va_module_tarn_kv;

/* Parses argv[0..argc-1] (the module arguments, i.e. SQLite's argv + 3 and argc - 3). argc 0 (no
 * parentheses, or empty ones) is valid. NULL entries in argv are treated as empty arguments (an error).
 * Returns SQLITE_OK and sets *out, or SQLITE_ERROR (bad arguments) / SQLITE_NOMEM, *out = NULL and *err
 * as described above. */
int tn_vtab_args_parse(const tn_va_module *mod, int argc, const char *const *argv, tn_vtab_args **out,
                       char **err);

/* Releases a result of tn_vtab_args_parse (NULL is fine). */
void tn_vtab_args_free(tn_vtab_args *args);

/* The option named `name` (case-insensitive), or NULL if it was not given. */
const tn_va_option *tn_vtab_args_option(const tn_vtab_args *args, const char *name);

/* The upper-case names used in messages: "INTEGER", ..., "PRIMARY KEY", "INDEXED", "ORDERED", "" (plain). */
const char *tn_col_type_name(tn_col_type type);
const char *tn_col_role_name(tn_col_role role);

#endif
