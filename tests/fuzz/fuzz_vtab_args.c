/* fuzz_vtab_args.c — libFuzzer target for the CREATE VIRTUAL TABLE argument parser (ext/vtab/vtab_args.c).
 *
 * The input is split on '\n' into module arguments (NUL-terminated copies; an embedded NUL just ends that
 * argument early, as it would for SQLite), parsed with the `tarn` and the `tarn_kv` descriptions, and the
 * result is checked: on success every option is one the module accepts with a value of its kind, columns
 * are well formed, `tarn` has exactly one PRIMARY KEY and `tarn_kv` no columns; on failure the message
 * starts with the module name. Any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "fuzz.h"
#include "vtab_args.h"

#define FUZZ_MAX_ARGS 4096

static void check_result(const tn_va_module *mod, int rc, tn_vtab_args *a, char *err)
{
    if (rc != SQLITE_OK) {
        if (a) abort();
        if (rc != SQLITE_ERROR && rc != SQLITE_NOMEM) abort();
        if (rc == SQLITE_ERROR) {
            size_t n = strlen(mod->name);
            if (!err || strncmp(err, mod->name, n) != 0 || strncmp(err + n, ": ", 2) != 0) abort();
        }
        sqlite3_free(err);
        return;
    }
    if (!a || err) abort();
    for (int i = 0; i < a->noptions; i++) {
        const tn_va_option *o = &a->options[i];
        if (o->spec < mod->options || o->spec >= mod->options + mod->noptions) abort();
        if (!o->value || !o->value[0]) abort();
        if (tn_vtab_args_option(a, o->spec->name) != o) abort(); /* no duplicates */
        switch (o->spec->kind) {
        case TN_VA_STRING: break;
        case TN_VA_INT:
            if (o->ival < o->spec->min || o->ival > o->spec->max) abort();
            break;
        case TN_VA_ENUM:
            if (strcmp(o->value, o->spec->choices[o->ival]) != 0) abort();
            break;
        case TN_VA_BOOL:
            if (strcmp(o->value, o->ival ? "1" : "0") != 0) abort();
            break;
        }
    }
    int pks = 0;
    for (int i = 0; i < a->ncolumns; i++) {
        const tn_va_column *c = &a->columns[i];
        size_t n = strlen(c->name);
        if (n == 0 || n > 255) abort();
        if (c->type < TN_COL_INTEGER || c->type > TN_COL_JSON) abort();
        if (c->role == TN_COL_PRIMARY_KEY) {
            pks++;
            if (a->pk != i || (c->type != TN_COL_INTEGER && c->type != TN_COL_TEXT)) abort();
        }
        if (c->type == TN_COL_JSON && c->role != TN_COL_PLAIN) abort();
        for (int j = 0; j < i; j++)
            if (sqlite3_stricmp(a->columns[j].name, c->name) == 0) abort();
    }
    if (mod->columns == TN_VA_COLUMNS_NONE && a->ncolumns != 0) abort();
    if (mod->columns == TN_VA_COLUMNS_REQUIRED && pks != 1) abort();
    if (a->ncolumns > 0 && pks != 1) abort();
    tn_vtab_args_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char **argv = malloc(sizeof *argv * FUZZ_MAX_ARGS);
    int argc = 0;
    if (!argv) return 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && argc < FUZZ_MAX_ARGS; i++) {
        if (i < size && data[i] != '\n') continue;
        if (size == 0) break; /* no input: no arguments at all */
        char *arg = malloc(i - start + 1);
        if (!arg) goto out;
        memcpy(arg, data + start, i - start);
        arg[i - start] = 0;
        argv[argc++] = arg;
        start = i + 1;
    }
    const tn_va_module *mods[] = { &tn_va_module_tarn, &tn_va_module_tarn_kv };
    for (int m = 0; m < 2; m++) {
        tn_vtab_args *a = NULL;
        char *err = NULL;
        int rc = tn_vtab_args_parse(mods[m], argc, (const char *const *)argv, &a, &err);
        check_result(mods[m], rc, a, err);
    }
out:
    for (int i = 0; i < argc; i++) free(argv[i]);
    free(argv);
    return 0;
}
