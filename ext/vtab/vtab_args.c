/* vtab_args.c — CREATE VIRTUAL TABLE argument parser (see vtab_args.h for the accepted forms). */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "vtab_args.h"

#include <stdarg.h>
#include <string.h>

#include "coll_codec.h"

_Static_assert((int)TN_COL_INTEGER == TN_T_INTEGER && (int)TN_COL_REAL == TN_T_REAL &&
                   (int)TN_COL_TEXT == TN_T_TEXT && (int)TN_COL_BLOB == TN_T_BLOB &&
                   (int)TN_COL_JSON == TN_T_JSON,
               "tn_col_type must match coll_codec.h's tn_ctype");
_Static_assert((int)TN_COL_PLAIN == TN_R_PLAIN && (int)TN_COL_PRIMARY_KEY == TN_R_PK &&
                   (int)TN_COL_INDEXED == TN_R_HASH && (int)TN_COL_ORDERED == TN_R_ORDERED,
               "tn_col_role must match coll_codec.h's tn_crole");

#define VA_SHOW_MAX 80 /* bytes of an argument or name quoted in a message before "..." */
#define VA_TYPES "INTEGER, REAL, TEXT, BLOB or JSON"
#define VA_ROLES "PRIMARY KEY, INDEXED or ORDERED"

/* ---- module descriptions ----------------------------------------------------------------------- */

static const char *const va_compress_choices[] = { "none", "lz4", NULL };

#define VA_COMMON_OPTIONS                                                   \
    { "cluster", TN_VA_STRING, 0, 0, NULL },                                \
    { "engine", TN_VA_STRING, 0, 0, NULL },                                 \
    { "data", TN_VA_STRING, 0, 0, NULL },                                   \
    { "timeout_ms", TN_VA_INT, 1, 3600000, NULL },                          \
    { "token", TN_VA_STRING, 0, 0, NULL },                                  \
    { "lease_read", TN_VA_BOOL, 0, 1, NULL },                               \
    { "stale", TN_VA_BOOL, 0, 1, NULL }

static const tn_va_option_spec va_tarn_options[] = {
    VA_COMMON_OPTIONS,
    { "collection", TN_VA_STRING, 0, 0, NULL },
    { "compress", TN_VA_ENUM, 0, 0, va_compress_choices },
    { "compress_min", TN_VA_INT, 0, 16777216, NULL },
};

static const tn_va_option_spec va_tarn_kv_options[] = { VA_COMMON_OPTIONS };

const tn_va_module tn_va_module_tarn = {
    "tarn", va_tarn_options, (int)(sizeof va_tarn_options / sizeof va_tarn_options[0]), TN_VA_COLUMNS_REQUIRED
};
const tn_va_module tn_va_module_tarn_kv = {
    "tarn_kv", va_tarn_kv_options, (int)(sizeof va_tarn_kv_options / sizeof va_tarn_kv_options[0]),
    TN_VA_COLUMNS_NONE
};

/* ---- small helpers ----------------------------------------------------------------------------- */

static int va_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int va_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int va_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int va_digit(int c) { return c >= '0' && c <= '9'; }
/* Bytes >= 0x80 are identifier characters, as in SQLite (UTF-8 names). */
static int va_ident_start(int c) { return va_alpha(c) || c == '_' || c >= 0x80; }
static int va_ident_char(int c) { return va_ident_start(c) || va_digit(c) || c == '$'; }

/* ASCII case-insensitive: is p[0..n) equal to the NUL-terminated word? */
static int va_ieq(const char *p, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n; i++)
        if (word[i] == 0 || va_lower((unsigned char)p[i]) != va_lower((unsigned char)word[i])) return 0;
    return word[i] == 0;
}

static int va_ieq_str(const char *a, const char *b) { return va_ieq(a, strlen(a), b); }

/* Copies p[0..n) into buf for a message, cut at VA_SHOW_MAX bytes (not inside a UTF-8 sequence). */
static const char *va_show(const char *p, size_t n, char *buf, size_t cap)
{
    size_t keep = n;
    int cut = 0;
    if (keep > VA_SHOW_MAX) {
        keep = VA_SHOW_MAX;
        while (keep > 0 && ((unsigned char)p[keep] & 0xc0) == 0x80) keep--;
        cut = 1;
    }
    if (keep + 4 > cap) keep = cap > 4 ? cap - 4 : 0;
    memcpy(buf, p, keep);
    if (cut) memcpy(buf + keep, "...", 3), keep += 3;
    buf[keep] = 0;
    return buf;
}

typedef struct va_cur {
    const char *s;
    size_t len;
    size_t pos;
} va_cur;

static int va_peek(const va_cur *c) { return c->pos < c->len ? (unsigned char)c->s[c->pos] : -1; }
static int va_at_end(const va_cur *c) { return c->pos >= c->len; }
static int va_comment_at(const va_cur *c, size_t pos)
{
    if (pos + 1 >= c->len) return 0;
    return (c->s[pos] == '/' && c->s[pos + 1] == '*') || (c->s[pos] == '-' && c->s[pos + 1] == '-');
}

/* Skips whitespace and SQL comments: SQLite keeps a comment that sits inside an argument in its text. An
 * unterminated block comment runs to the end, as in SQLite. */
static void va_skip_ws(va_cur *c)
{
    for (;;) {
        while (c->pos < c->len && va_space((unsigned char)c->s[c->pos])) c->pos++;
        if (!va_comment_at(c, c->pos)) return;
        if (c->s[c->pos] == '-') {
            while (c->pos < c->len && c->s[c->pos] != '\n') c->pos++;
            continue;
        }
        size_t p = c->pos + 2;
        while (p + 1 < c->len && !(c->s[p] == '*' && c->s[p + 1] == '/')) p++;
        c->pos = p + 1 < c->len ? p + 2 : c->len;
    }
}

/* Reads a run of identifier characters (a keyword: type name, constraint). Returns its length. */
static size_t va_word(va_cur *c, const char **w)
{
    *w = c->s + c->pos;
    size_t start = c->pos;
    while (c->pos < c->len && va_ident_char((unsigned char)c->s[c->pos])) c->pos++;
    return c->pos - start;
}

/* ---- parse context and errors ------------------------------------------------------------------ */

typedef struct va_ctx {
    const tn_va_module *mod;
    int argno;         /* 1-based number of the argument being parsed */
    const char *arg;
    size_t arg_len;
    char **err;
    tn_vtab_args *res;
    int indexed;       /* INDEXED + ORDERED columns so far */
} va_ctx;

/* Sets *err to "<module>: <message>" and returns SQLITE_ERROR (SQLITE_NOMEM if that fails). */
static TN_PRINTF(2, 3) int va_fail(va_ctx *x, const char *fmt, ...)
{
    if (!x->err) return SQLITE_ERROR;
    va_list ap;
    va_start(ap, fmt);
    char *msg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sqlite3_free(*x->err);
    *x->err = msg ? sqlite3_mprintf("%s: %s", x->mod->name, msg) : NULL;
    sqlite3_free(msg);
    return *x->err ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* Same, naming the argument: "<module>: argument N '<text>': <message>". */
static TN_PRINTF(2, 3) int va_fail_arg(va_ctx *x, const char *fmt, ...)
{
    if (!x->err) return SQLITE_ERROR;
    va_list ap;
    va_start(ap, fmt);
    char *msg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    char shown[VA_SHOW_MAX + 8];
    va_show(x->arg, x->arg_len, shown, sizeof shown);
    sqlite3_free(*x->err);
    *x->err = msg ? sqlite3_mprintf("%s: argument %d '%s': %s", x->mod->name, x->argno, shown, msg) : NULL;
    sqlite3_free(msg);
    return *x->err ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* Reads a quoted string whose opening quote is at the cursor, closing quote `close`; a doubled closing
 * quote stands for one when `doubling`. *out gets an unquoted sqlite3_malloc'd copy. */
static int va_quoted(va_ctx *x, va_cur *c, int close, int doubling, char **out, size_t *out_len)
{
    c->pos++; /* the opening quote */
    char *buf = sqlite3_malloc64(c->len - c->pos + 1);
    if (!buf) return SQLITE_NOMEM;
    size_t n = 0;
    for (;;) {
        if (va_at_end(c)) {
            sqlite3_free(buf);
            return close == ']' ? va_fail_arg(x, "unterminated [") : va_fail_arg(x, "unterminated quote");
        }
        int ch = (unsigned char)c->s[c->pos++];
        if (ch == close) {
            if (doubling && va_peek(c) == close) {
                c->pos++;
            } else {
                break;
            }
        }
        buf[n++] = (char)ch;
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return SQLITE_OK;
}

/* Reads a name (bare identifier or "..." [...] `...`) at the cursor. *out is NULL when no name starts
 * here (not an error by itself). */
static int va_name(va_ctx *x, va_cur *c, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int ch = va_peek(c);
    if (ch == '"') return va_quoted(x, c, '"', 1, out, out_len);
    if (ch == '`') return va_quoted(x, c, '`', 1, out, out_len);
    if (ch == '[') return va_quoted(x, c, ']', 0, out, out_len);
    if (ch < 0 || !va_ident_start(ch)) return SQLITE_OK;
    const char *w;
    size_t n = va_word(c, &w);
    char *buf = sqlite3_malloc64(n + 1);
    if (!buf) return SQLITE_NOMEM;
    memcpy(buf, w, n);
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return SQLITE_OK;
}

/* ---- options ----------------------------------------------------------------------------------- */

static int va_parse_int(const char *s, int64_t *v)
{
    size_t i = 0;
    int neg = 0;
    if (s[i] == '+' || s[i] == '-') neg = s[i++] == '-';
    if (!va_digit((unsigned char)s[i])) return 0;
    uint64_t acc = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; va_digit((unsigned char)s[i]); i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (acc > (limit - d) / 10) return 0;
        acc = acc * 10 + d;
    }
    if (s[i] != 0) return 0;
    *v = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    return 1;
}

/* Checks and converts opt->value for its spec's kind (value is replaced for ENUM and BOOL). */
static int va_check_value(va_ctx *x, tn_va_option *opt)
{
    const tn_va_option_spec *spec = opt->spec;
    char shown[VA_SHOW_MAX + 8];
    va_show(opt->value, strlen(opt->value), shown, sizeof shown);
    if (opt->value[0] == 0) return va_fail(x, "option '%s': empty value", spec->name);
    switch (spec->kind) {
    case TN_VA_STRING:
        return SQLITE_OK;
    case TN_VA_INT: {
        int64_t v = 0;
        if (!va_parse_int(opt->value, &v) || v < spec->min || v > spec->max)
            return va_fail(x, "option '%s': '%s' is not an integer in %lld..%lld", spec->name, shown,
                           (long long)spec->min, (long long)spec->max);
        opt->ival = v;
        return SQLITE_OK;
    }
    case TN_VA_ENUM: {
        for (int i = 0; spec->choices && spec->choices[i]; i++) {
            if (!va_ieq_str(opt->value, spec->choices[i])) continue;
            char *canon = sqlite3_mprintf("%s", spec->choices[i]);
            if (!canon) return SQLITE_NOMEM;
            sqlite3_free(opt->value);
            opt->value = canon;
            opt->ival = i;
            return SQLITE_OK;
        }
        char *list = sqlite3_mprintf("%s", "");
        for (int i = 0; list && spec->choices && spec->choices[i]; i++)
            list = sqlite3_mprintf("%z%s%s", list, i ? ", " : "", spec->choices[i]);
        if (!list) return SQLITE_NOMEM;
        int rc = va_fail(x, "option '%s': '%s' is not one of %s", spec->name, shown, list);
        sqlite3_free(list);
        return rc;
    }
    case TN_VA_BOOL: {
        static const char *const yes[] = { "1", "true", "yes", "on" };
        static const char *const no[] = { "0", "false", "no", "off" };
        int v = -1;
        for (int i = 0; i < 4; i++) {
            if (va_ieq_str(opt->value, yes[i])) v = 1;
            if (va_ieq_str(opt->value, no[i])) v = 0;
        }
        if (v < 0)
            return va_fail(x, "option '%s': '%s' is not a boolean (on/off, true/false, yes/no, 1/0)",
                           spec->name, shown);
        char *canon = sqlite3_mprintf("%d", v);
        if (!canon) return SQLITE_NOMEM;
        sqlite3_free(opt->value);
        opt->value = canon;
        opt->ival = v;
        return SQLITE_OK;
    }
    }
    return va_fail(x, "option '%s': bad description", spec->name);
}

/* The cursor is just past '='; name is the option's name as written. Takes ownership of nothing. */
static int va_option(va_ctx *x, va_cur *c, const char *name, size_t name_len)
{
    const tn_va_option_spec *spec = NULL;
    char shown[VA_SHOW_MAX + 8];
    for (int i = 0; i < x->mod->noptions && !spec; i++)
        if (va_ieq(name, name_len, x->mod->options[i].name)) spec = &x->mod->options[i];
    if (!spec) return va_fail(x, "unknown option '%s'", va_show(name, name_len, shown, sizeof shown));
    for (int i = 0; i < x->res->noptions; i++)
        if (x->res->options[i].spec == spec) return va_fail(x, "duplicate option '%s'", spec->name);

    char *value = NULL;
    size_t value_len = 0;
    int rc;
    va_skip_ws(c);
    int ch = va_peek(c);
    if (ch < 0) return va_fail(x, "option '%s': missing value", spec->name);
    if (ch == '\'' || ch == '"') {
        rc = va_quoted(x, c, ch, 1, &value, &value_len);
        if (rc != SQLITE_OK) return rc;
        va_skip_ws(c);
        if (!va_at_end(c)) {
            sqlite3_free(value);
            return va_fail_arg(x, "unexpected text after the quoted value");
        }
    } else {
        size_t start = c->pos;
        while (c->pos < c->len && !va_space((unsigned char)c->s[c->pos]) && !va_comment_at(c, c->pos)) {
            int b = (unsigned char)c->s[c->pos++];
            if (b == '\'' || b == '"') return va_fail_arg(x, "stray quote in an unquoted value");
        }
        value_len = c->pos - start;
        va_skip_ws(c);
        if (!va_at_end(c)) return va_fail_arg(x, "a value with spaces must be quoted");
        if (value_len == 0) return va_fail(x, "option '%s': missing value", spec->name);
        value = sqlite3_malloc64(value_len + 1);
        if (!value) return SQLITE_NOMEM;
        memcpy(value, c->s + start, value_len);
        value[value_len] = 0;
    }
    tn_va_option *opt = &x->res->options[x->res->noptions++];
    opt->spec = spec;
    opt->value = value;
    opt->ival = 0;
    return va_check_value(x, opt);
}

/* ---- columns ----------------------------------------------------------------------------------- */

typedef struct va_type_name {
    const char *name;
    tn_col_type type;
} va_type_name;

static const va_type_name va_types[] = {
    { "INTEGER", TN_COL_INTEGER }, { "INT", TN_COL_INTEGER },      { "BIGINT", TN_COL_INTEGER },
    { "SMALLINT", TN_COL_INTEGER }, { "TINYINT", TN_COL_INTEGER }, { "MEDIUMINT", TN_COL_INTEGER },
    { "BOOLEAN", TN_COL_INTEGER }, { "BOOL", TN_COL_INTEGER },     { "REAL", TN_COL_REAL },
    { "DOUBLE", TN_COL_REAL },     { "FLOAT", TN_COL_REAL },       { "TEXT", TN_COL_TEXT },
    { "VARCHAR", TN_COL_TEXT },    { "CHAR", TN_COL_TEXT },        { "CHARACTER", TN_COL_TEXT },
    { "NVARCHAR", TN_COL_TEXT },   { "NCHAR", TN_COL_TEXT },       { "STRING", TN_COL_TEXT },
    { "CLOB", TN_COL_TEXT },       { "BLOB", TN_COL_BLOB },        { "BYTES", TN_COL_BLOB },
    { "JSON", TN_COL_JSON },
};

const char *tn_col_type_name(tn_col_type type)
{
    switch (type) {
    case TN_COL_INTEGER: return "INTEGER";
    case TN_COL_REAL: return "REAL";
    case TN_COL_TEXT: return "TEXT";
    case TN_COL_BLOB: return "BLOB";
    case TN_COL_JSON: return "JSON";
    }
    return "?";
}

const char *tn_col_role_name(tn_col_role role)
{
    switch (role) {
    case TN_COL_PLAIN: return "";
    case TN_COL_PRIMARY_KEY: return "PRIMARY KEY";
    case TN_COL_INDEXED: return "INDEXED";
    case TN_COL_ORDERED: return "ORDERED";
    }
    return "?";
}

/* Skips an optional "(n)" or "(n, m)" after a type name. */
static int va_type_size(va_ctx *x, va_cur *c)
{
    va_skip_ws(c);
    if (va_peek(c) != '(') return SQLITE_OK;
    c->pos++;
    for (int part = 0; part < 2; part++) {
        va_skip_ws(c);
        if (!va_digit(va_peek(c))) break;
        while (va_digit(va_peek(c))) c->pos++;
        va_skip_ws(c);
        if (va_peek(c) == ',' && part == 0) c->pos++;
        else break;
    }
    va_skip_ws(c);
    if (va_peek(c) != ')') return va_fail_arg(x, "bad type size (expected e.g. VARCHAR(255))");
    c->pos++;
    return SQLITE_OK;
}

/* Parses "TYPE [role]" after the column name and checks the column against the table so far. Sets *type
 * and *role; the caller stores the column (and keeps ownership of name). */
static int va_column(va_ctx *x, va_cur *c, const char *name, size_t name_len, tn_col_type *type_out,
                     tn_col_role *role_out)
{
    tn_vtab_args *res = x->res;
    char shown[VA_SHOW_MAX + 8];
    if (x->mod->columns == TN_VA_COLUMNS_NONE)
        return va_fail_arg(x, "expected option=value (%s declares its own columns)", x->mod->name);
    if (name_len == 0) return va_fail_arg(x, "empty column name");
    if (name_len > TN_COLL_MAX_COL_NAME)
        return va_fail_arg(x, "column name longer than %u bytes", (unsigned)TN_COLL_MAX_COL_NAME);
    for (int i = 0; i < res->ncolumns; i++)
        if (va_ieq_str(res->columns[i].name, name)) return va_fail(x, "duplicate column '%s'", name);
    if (res->ncolumns >= (int)TN_COLL_MAX_COLS)
        return va_fail(x, "too many columns (at most %u)", (unsigned)TN_COLL_MAX_COLS);

    va_skip_ws(c);
    const char *w;
    size_t n = va_word(c, &w);
    if (n == 0) {
        if (va_at_end(c)) return va_fail(x, "column '%s' has no type (expected " VA_TYPES ")", name);
        return va_fail_arg(x, "expected a type after the column name (" VA_TYPES ")");
    }
    int type = -1;
    for (size_t i = 0; i < sizeof va_types / sizeof va_types[0] && type < 0; i++)
        if (va_ieq(w, n, va_types[i].name)) type = (int)va_types[i].type;
    if (type < 0)
        return va_fail_arg(x, "unknown type '%s' (expected " VA_TYPES ")", va_show(w, n, shown, sizeof shown));
    if (va_ieq(w, n, "DOUBLE")) { /* DOUBLE PRECISION */
        size_t save = c->pos;
        va_skip_ws(c);
        const char *w2;
        size_t n2 = va_word(c, &w2);
        if (!va_ieq(w2, n2, "PRECISION")) c->pos = save;
    }
    int rc = va_type_size(x, c);
    if (rc != SQLITE_OK) return rc;

    tn_col_role role = TN_COL_PLAIN;
    for (;;) {
        va_skip_ws(c);
        if (va_at_end(c)) break;
        n = va_word(c, &w);
        if (n == 0)
            return va_fail_arg(x, "unexpected '%s'", va_show(c->s + c->pos, c->len - c->pos, shown, sizeof shown));
        tn_col_role r;
        if (va_ieq(w, n, "PRIMARY")) {
            va_skip_ws(c);
            const char *w2;
            size_t n2 = va_word(c, &w2);
            if (!va_ieq(w2, n2, "KEY")) return va_fail_arg(x, "expected KEY after PRIMARY");
            r = TN_COL_PRIMARY_KEY;
        } else if (va_ieq(w, n, "INDEXED")) {
            r = TN_COL_INDEXED;
        } else if (va_ieq(w, n, "ORDERED")) {
            r = TN_COL_ORDERED;
        } else {
            return va_fail_arg(x, "unknown constraint '%s' (expected " VA_ROLES ")",
                               va_show(w, n, shown, sizeof shown));
        }
        if (role == r) return va_fail(x, "column '%s' is %s twice", name, tn_col_role_name(r));
        if (role != TN_COL_PLAIN)
            return va_fail(x, "column '%s' cannot be both %s and %s", name, tn_col_role_name(role),
                           tn_col_role_name(r));
        role = r;
    }
    if (type == TN_COL_JSON && role != TN_COL_PLAIN)
        return va_fail(x, "column '%s' is JSON and cannot be %s", name, tn_col_role_name(role));
    if (role == TN_COL_PRIMARY_KEY && type != TN_COL_INTEGER && type != TN_COL_TEXT)
        return va_fail(x, "column '%s' is %s: a PRIMARY KEY must be INTEGER or TEXT", name,
                       tn_col_type_name((tn_col_type)type));
    if (role == TN_COL_PRIMARY_KEY && res->pk >= 0)
        return va_fail(x, "two primary keys: '%s' and '%s'", res->columns[res->pk].name, name);
    if ((role == TN_COL_INDEXED || role == TN_COL_ORDERED) && ++x->indexed > (int)TN_COLL_MAX_INDEXES)
        return va_fail(x, "too many INDEXED and ORDERED columns (at most %u)", (unsigned)TN_COLL_MAX_INDEXES);
    *type_out = (tn_col_type)type;
    *role_out = role;
    return SQLITE_OK;
}

/* One argument: an option or a column declaration. */
static int va_argument(va_ctx *x)
{
    va_cur c = { x->arg, x->arg_len, 0 };
    va_skip_ws(&c);
    if (va_at_end(&c)) return va_fail_arg(x, "empty argument");
    char *name = NULL;
    size_t name_len = 0;
    int rc = va_name(x, &c, &name, &name_len);
    if (rc != SQLITE_OK) return rc;
    if (!name) {
        return x->mod->columns == TN_VA_COLUMNS_NONE
                   ? va_fail_arg(x, "expected option=value")
                   : va_fail_arg(x, "expected a column declaration or option=value");
    }
    va_skip_ws(&c);
    if (va_peek(&c) == '=') {
        c.pos++;
        rc = va_option(x, &c, name, name_len);
        sqlite3_free(name);
        return rc;
    }
    tn_col_type type = TN_COL_TEXT;
    tn_col_role role = TN_COL_PLAIN;
    rc = va_column(x, &c, name, name_len, &type, &role);
    if (rc != SQLITE_OK) {
        sqlite3_free(name);
        return rc;
    }
    tn_vtab_args *res = x->res;
    if (role == TN_COL_PRIMARY_KEY) res->pk = res->ncolumns;
    res->columns[res->ncolumns++] = (tn_va_column){ name, type, role };
    return SQLITE_OK;
}

/* ---- entry points ------------------------------------------------------------------------------ */

void tn_vtab_args_free(tn_vtab_args *args)
{
    if (!args) return;
    for (int i = 0; i < args->noptions; i++) sqlite3_free(args->options[i].value);
    for (int i = 0; i < args->ncolumns; i++) sqlite3_free(args->columns[i].name);
    sqlite3_free(args->options);
    sqlite3_free(args->columns);
    sqlite3_free(args);
}

int tn_vtab_args_parse(const tn_va_module *mod, int argc, const char *const *argv, tn_vtab_args **out,
                       char **err)
{
    int rc = SQLITE_NOMEM;
    va_ctx x;
    memset(&x, 0, sizeof x);
    x.mod = mod;
    x.err = err;
    *out = NULL;
    if (err) *err = NULL;
    if (argc < 0 || !argv) argc = 0;
    tn_vtab_args *res = sqlite3_malloc64(sizeof *res);
    if (!res) goto fail;
    memset(res, 0, sizeof *res);
    res->pk = -1;
    x.res = res;
    if (argc > 0) {
        res->options = sqlite3_malloc64((sqlite3_uint64)argc * sizeof *res->options);
        res->columns = sqlite3_malloc64((sqlite3_uint64)argc * sizeof *res->columns);
        if (!res->options || !res->columns) goto fail;
    }
    for (int i = 0; i < argc; i++) {
        x.argno = i + 1;
        x.arg = argv[i] ? argv[i] : "";
        x.arg_len = strlen(x.arg);
        rc = va_argument(&x);
        if (rc != SQLITE_OK) goto fail;
    }
    x.argno = 0;
    if (res->ncolumns == 0 && mod->columns == TN_VA_COLUMNS_REQUIRED) {
        rc = va_fail(&x, "no columns declared (need at least one, e.g. id INTEGER PRIMARY KEY)");
        goto fail;
    }
    if (res->ncolumns > 0 && res->pk < 0) {
        rc = va_fail(&x, "no PRIMARY KEY column");
        goto fail;
    }
    *out = res;
    return SQLITE_OK;
fail:
    tn_vtab_args_free(res);
    if (rc == SQLITE_NOMEM && err) {
        sqlite3_free(*err);
        *err = NULL;
    }
    return rc;
}

const tn_va_option *tn_vtab_args_option(const tn_vtab_args *args, const char *name)
{
    if (!args || !name) return NULL;
    for (int i = 0; i < args->noptions; i++)
        if (va_ieq_str(args->options[i].spec->name, name)) return &args->options[i];
    return NULL;
}
