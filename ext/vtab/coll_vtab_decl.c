/* coll_vtab_decl.c — the declaration of a `tarn` table: CREATE VIRTUAL TABLE arguments -> a collection
 * schema and the connection options (see coll_vtab_int.h).
 *
 * Declaring. Exactly one single-column PRIMARY KEY (INTEGER or TEXT); INDEXED (hash) and ORDERED columns;
 * plain columns; JSON (plain, TEXT to SQLite). Options: collection (default: the table name), compress
 * (lz4 | none), cluster, engine, data, token, timeout_ms, stale. The syntax is checked by vtab_args.c (which
 * names the argument in every error); the schema's rules (one key, JSON not indexed…) by
 * tn_coll_schema_validate when the table connects.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "coll_vtab_int.h"

#include <string.h>

#include "vtab_args.h"

void tn_collvt_decl_free(coll_decl *d)
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
int tn_collvt_decl_parse(int argc, const char *const *argv, coll_decl *d, char **err)
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
    tn_collvt_decl_free(d);
    return SQLITE_NOMEM;
}

