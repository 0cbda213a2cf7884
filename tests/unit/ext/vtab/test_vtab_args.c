/* test_vtab_args.c — CREATE VIRTUAL TABLE argument parser (ext/vtab/vtab_args.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "vtab_args.h"

#define MAX_ARGS 4100

/* Splits `spec` on '|' into arguments (the test's stand-in for SQLite's top-level comma split) and
 * parses them for `mod`. Returns the rc; *out / *err as the parser left them. */
static int parse_split(const tn_va_module *mod, const char *spec, tn_vtab_args **out, char **err)
{
    static char buf[1 << 16];
    const char *argv[64];
    int argc = 0;
    assert_true(strlen(spec) < sizeof buf);
    strcpy(buf, spec);
    if (buf[0]) {
        char *p = buf;
        argv[argc++] = p;
        for (; *p; p++)
            if (*p == '|') {
                *p = 0;
                assert_true(argc < 64);
                argv[argc++] = p + 1;
            }
    }
    return tn_vtab_args_parse(mod, argc, argv, out, err);
}

/* Parses and expects success; returns the result (caller frees). */
static tn_vtab_args *ok(const tn_va_module *mod, const char *spec)
{
    tn_vtab_args *a = NULL;
    char *err = NULL;
    int rc = parse_split(mod, spec, &a, &err);
    if (rc != SQLITE_OK) print_error("unexpected error for [%s]: %s\n", spec, err ? err : "(null)");
    assert_int_equal(rc, SQLITE_OK);
    assert_null(err);
    assert_non_null(a);
    return a;
}

/* Parses and expects exactly `message`. */
static void fails(const tn_va_module *mod, const char *spec, const char *message)
{
    tn_vtab_args *a = (tn_vtab_args *)0x1;
    char *err = NULL;
    int rc = parse_split(mod, spec, &a, &err);
    assert_int_equal(rc, SQLITE_ERROR);
    assert_null(a);
    assert_non_null(err);
    if (strcmp(err, message) != 0) print_error("for [%s]\n  got      %s\n  expected %s\n", spec, err, message);
    assert_string_equal(err, message);
    sqlite3_free(err);
}

static const char *opt(const tn_vtab_args *a, const char *name)
{
    const tn_va_option *o = tn_vtab_args_option(a, name);
    return o ? o->value : NULL;
}

static void test_design_examples(void **state)
{
    tn_vtab_args *a = ok(&tn_va_module_tarn_kv,
                         "cluster='tcp://127.0.0.1:7001,tcp://127.0.0.1:7002'|data='/path'");
    assert_int_equal(a->noptions, 2);
    assert_int_equal(a->ncolumns, 0);
    assert_int_equal(a->pk, -1);
    assert_string_equal(opt(a, "cluster"), "tcp://127.0.0.1:7001,tcp://127.0.0.1:7002");
    assert_string_equal(opt(a, "DATA"), "/path");
    assert_null(opt(a, "timeout_ms"));
    tn_vtab_args_free(a);

    a = ok(&tn_va_module_tarn,
           "id INTEGER PRIMARY KEY|event_type TEXT INDEXED|event_date TEXT ORDERED|value_date TEXT ORDERED|"
           "version INTEGER|body JSON|compress=lz4|cluster='tcp://h:1'|collection='events'");
    assert_int_equal(a->ncolumns, 6);
    assert_int_equal(a->pk, 0);
    const struct { const char *name; tn_col_type type; tn_col_role role; } want[] = {
        { "id", TN_COL_INTEGER, TN_COL_PRIMARY_KEY }, { "event_type", TN_COL_TEXT, TN_COL_INDEXED },
        { "event_date", TN_COL_TEXT, TN_COL_ORDERED }, { "value_date", TN_COL_TEXT, TN_COL_ORDERED },
        { "version", TN_COL_INTEGER, TN_COL_PLAIN },   { "body", TN_COL_JSON, TN_COL_PLAIN },
    };
    for (int i = 0; i < 6; i++) {
        assert_string_equal(a->columns[i].name, want[i].name);
        assert_int_equal(a->columns[i].type, want[i].type);
        assert_int_equal(a->columns[i].role, want[i].role);
    }
    assert_int_equal(a->noptions, 3);
    assert_string_equal(a->options[0].spec->name, "compress");
    assert_string_equal(a->options[0].value, "lz4");
    assert_int_equal(a->options[0].ival, 1);
    assert_string_equal(opt(a, "cluster"), "tcp://h:1");
    assert_string_equal(opt(a, "collection"), "events");
    tn_vtab_args_free(a);
}

static void test_no_arguments(void **state)
{
    tn_vtab_args *a = NULL;
    char *err = (char *)0x1;
    assert_int_equal(tn_vtab_args_parse(&tn_va_module_tarn_kv, 0, NULL, &a, &err), SQLITE_OK);
    assert_null(err);
    assert_non_null(a);
    assert_int_equal(a->noptions + a->ncolumns, 0);
    assert_int_equal(a->pk, -1);
    tn_vtab_args_free(a);
    tn_vtab_args_free(NULL);
    /* tarn needs columns */
    fails(&tn_va_module_tarn, "", "tarn: no columns declared (need at least one, e.g. id INTEGER PRIMARY KEY)");
    fails(&tn_va_module_tarn, "cluster=x", "tarn: no columns declared (need at least one, e.g. id INTEGER PRIMARY KEY)");
}

static void test_option_value_forms(void **state)
{
    tn_vtab_args *a = ok(&tn_va_module_tarn_kv, "cluster = 'a b'|data=\"/x y\"|token=bare-word_1.2:3/4|"
                                               "timeout_ms =  250 ");
    assert_string_equal(opt(a, "cluster"), "a b");
    assert_string_equal(opt(a, "data"), "/x y");
    assert_string_equal(opt(a, "token"), "bare-word_1.2:3/4");
    assert_string_equal(opt(a, "timeout_ms"), "250");
    assert_int_equal(tn_vtab_args_option(a, "timeout_ms")->ival, 250);
    tn_vtab_args_free(a);

    /* escaped quotes, the other quote inside, commas and '=' inside quotes */
    a = ok(&tn_va_module_tarn_kv, "cluster='it''s'|data=\"say \"\"hi\"\"\"|token='a=b,c\"d'");
    assert_string_equal(opt(a, "cluster"), "it's");
    assert_string_equal(opt(a, "data"), "say \"hi\"");
    assert_string_equal(opt(a, "token"), "a=b,c\"d");
    tn_vtab_args_free(a);

    /* names are case-insensitive; stored lower-case */
    a = ok(&tn_va_module_tarn_kv, "CLUSTER=x|TimeOut_MS='7'|\"data\"=y");
    assert_string_equal(a->options[0].spec->name, "cluster");
    assert_int_equal(tn_vtab_args_option(a, "TIMEOUT_ms")->ival, 7);
    assert_string_equal(opt(a, "data"), "y");
    tn_vtab_args_free(a);

    /* whitespace of every kind around the parts */
    a = ok(&tn_va_module_tarn_kv, "\t cluster\n=\r\n'x' \t");
    assert_string_equal(opt(a, "cluster"), "x");
    tn_vtab_args_free(a);
}

/* SQLite keeps a comment that sits inside an argument in the argument's text. */
static void test_comments(void **state)
{
    tn_vtab_args *a = ok(&tn_va_module_tarn, "id /* the key, really */ INTEGER PRIMARY KEY|"
                                             "t TEXT -- trailing\n INDEXED|"
                                             "cluster = /* here */ 'x' -- done|"
                                             "data=tcp://h/p/*c*/|token=a-b|collection=c--x|"
                                             "compress=lz4 /* unterminated");
    assert_int_equal(a->ncolumns, 2);
    assert_int_equal(a->columns[0].role, TN_COL_PRIMARY_KEY);
    assert_int_equal(a->columns[1].role, TN_COL_INDEXED);
    assert_string_equal(opt(a, "cluster"), "x");
    assert_string_equal(opt(a, "data"), "tcp://h/p");
    assert_string_equal(opt(a, "token"), "a-b");
    assert_string_equal(opt(a, "collection"), "c");
    assert_string_equal(opt(a, "compress"), "lz4");
    tn_vtab_args_free(a);
    /* inside quotes a comment is text */
    a = ok(&tn_va_module_tarn_kv, "cluster='a /* b */ -- c'");
    assert_string_equal(opt(a, "cluster"), "a /* b */ -- c");
    tn_vtab_args_free(a);
    fails(&tn_va_module_tarn_kv, "/* only a comment */", "tarn_kv: argument 1 '/* only a comment */': empty argument");
    fails(&tn_va_module_tarn_kv, "cluster=/* nothing */", "tarn_kv: option 'cluster': missing value");
    fails(&tn_va_module_tarn_kv, "cluster=a /* x */ b",
          "tarn_kv: argument 1 'cluster=a /* x */ b': a value with spaces must be quoted");
}

static void test_option_kinds(void **state)
{
    tn_vtab_args *a = ok(&tn_va_module_tarn_kv, "timeout_ms=1|lease_read=ON");
    assert_int_equal(tn_vtab_args_option(a, "timeout_ms")->ival, 1);
    assert_string_equal(opt(a, "lease_read"), "1");
    tn_vtab_args_free(a);
    a = ok(&tn_va_module_tarn_kv, "timeout_ms=+3600000|lease_read='false'");
    assert_int_equal(tn_vtab_args_option(a, "timeout_ms")->ival, 3600000);
    assert_string_equal(opt(a, "lease_read"), "0");
    assert_int_equal(tn_vtab_args_option(a, "lease_read")->ival, 0);
    tn_vtab_args_free(a);
    const char *yes[] = { "1", "true", "YES", "on" }, *no[] = { "0", "False", "no", "OFF" };
    for (int i = 0; i < 4; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "lease_read=%s", yes[i]);
        a = ok(&tn_va_module_tarn_kv, spec);
        assert_int_equal(tn_vtab_args_option(a, "lease_read")->ival, 1);
        tn_vtab_args_free(a);
        snprintf(spec, sizeof spec, "lease_read=%s", no[i]);
        a = ok(&tn_va_module_tarn_kv, spec);
        assert_int_equal(tn_vtab_args_option(a, "lease_read")->ival, 0);
        tn_vtab_args_free(a);
    }
    a = ok(&tn_va_module_tarn, "id TEXT PRIMARY KEY|compress='NONE'|compress_min=0");
    assert_string_equal(opt(a, "compress"), "none");
    assert_int_equal(tn_vtab_args_option(a, "compress")->ival, 0);
    assert_int_equal(tn_vtab_args_option(a, "compress_min")->ival, 0);
    tn_vtab_args_free(a);

    fails(&tn_va_module_tarn_kv, "timeout_ms=-5", "tarn_kv: option 'timeout_ms': '-5' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn, "timeout_ms='-5'", "tarn: option 'timeout_ms': '-5' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn_kv, "timeout_ms=0", "tarn_kv: option 'timeout_ms': '0' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn_kv, "timeout_ms=3600001",
          "tarn_kv: option 'timeout_ms': '3600001' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn_kv, "timeout_ms=12ms", "tarn_kv: option 'timeout_ms': '12ms' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn_kv, "timeout_ms=1.5", "tarn_kv: option 'timeout_ms': '1.5' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn_kv, "timeout_ms=-", "tarn_kv: option 'timeout_ms': '-' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn_kv, "timeout_ms=99999999999999999999999",
          "tarn_kv: option 'timeout_ms': '99999999999999999999999' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn_kv, "timeout_ms=-9223372036854775808",
          "tarn_kv: option 'timeout_ms': '-9223372036854775808' is not an integer in 1..3600000");
    fails(&tn_va_module_tarn, "id INTEGER PRIMARY KEY|compress=zstd",
          "tarn: option 'compress': 'zstd' is not one of none, lz4");
    fails(&tn_va_module_tarn_kv, "lease_read=maybe",
          "tarn_kv: option 'lease_read': 'maybe' is not a boolean (on/off, true/false, yes/no, 1/0)");
}

static void test_int_limits(void **state)
{
    static const char *const none[] = { NULL };
    const tn_va_option_spec specs[] = {
        { "n", TN_VA_INT, INT64_MIN, INT64_MAX, NULL },
        { "e", TN_VA_ENUM, 0, 0, none },
    };
    const tn_va_module mod = { "m", specs, 2, TN_VA_COLUMNS_NONE };
    tn_vtab_args *a = ok(&mod, "n=-9223372036854775808");
    assert_true(tn_vtab_args_option(a, "n")->ival == INT64_MIN);
    tn_vtab_args_free(a);
    a = ok(&mod, "n=9223372036854775807");
    assert_true(tn_vtab_args_option(a, "n")->ival == INT64_MAX);
    tn_vtab_args_free(a);
    fails(&mod, "n=9223372036854775808",
          "m: option 'n': '9223372036854775808' is not an integer in -9223372036854775808..9223372036854775807");
    fails(&mod, "n=-9223372036854775809",
          "m: option 'n': '-9223372036854775809' is not an integer in -9223372036854775808..9223372036854775807");
    fails(&mod, "e=x", "m: option 'e': 'x' is not one of ");
}

static void test_option_errors(void **state)
{
    fails(&tn_va_module_tarn_kv, "clustr='x'", "tarn_kv: unknown option 'clustr'");
    fails(&tn_va_module_tarn_kv, "cluster=a|CLUSTER=b", "tarn_kv: duplicate option 'cluster'");
    fails(&tn_va_module_tarn, "id TEXT PRIMARY KEY|cluster='a'|cluster='a'", "tarn: duplicate option 'cluster'");
    fails(&tn_va_module_tarn_kv, "cluster='abc", "tarn_kv: argument 1 'cluster='abc': unterminated quote");
    fails(&tn_va_module_tarn_kv, "data=x|cluster=\"abc", "tarn_kv: argument 2 'cluster=\"abc': unterminated quote");
    fails(&tn_va_module_tarn_kv, "cluster='a''", "tarn_kv: argument 1 'cluster='a''': unterminated quote");
    fails(&tn_va_module_tarn_kv, "cluster=", "tarn_kv: option 'cluster': missing value");
    fails(&tn_va_module_tarn_kv, "cluster=  ", "tarn_kv: option 'cluster': missing value");
    fails(&tn_va_module_tarn_kv, "cluster=''", "tarn_kv: option 'cluster': empty value");
    fails(&tn_va_module_tarn_kv, "cluster='a' b",
          "tarn_kv: argument 1 'cluster='a' b': unexpected text after the quoted value");
    fails(&tn_va_module_tarn_kv, "cluster=a b", "tarn_kv: argument 1 'cluster=a b': a value with spaces must be quoted");
    fails(&tn_va_module_tarn_kv, "cluster=it's", "tarn_kv: argument 1 'cluster=it's': stray quote in an unquoted value");
    fails(&tn_va_module_tarn_kv, "=x", "tarn_kv: argument 1 '=x': expected option=value");
    fails(&tn_va_module_tarn_kv, "'cluster'=x", "tarn_kv: argument 1 ''cluster'=x': expected option=value");
    fails(&tn_va_module_tarn_kv, "cluster",
          "tarn_kv: argument 1 'cluster': expected option=value (tarn_kv declares its own columns)");
    fails(&tn_va_module_tarn_kv, "key TEXT PRIMARY KEY",
          "tarn_kv: argument 1 'key TEXT PRIMARY KEY': expected option=value (tarn_kv declares its own columns)");
}

static void test_empty_arguments(void **state)
{
    fails(&tn_va_module_tarn_kv, "cluster=x|", "tarn_kv: argument 2 '': empty argument");
    fails(&tn_va_module_tarn_kv, " \t ", "tarn_kv: argument 1 ' \t ': empty argument");
    const char *argv[] = { "cluster=x", NULL };
    tn_vtab_args *a = NULL;
    char *err = NULL;
    assert_int_equal(tn_vtab_args_parse(&tn_va_module_tarn_kv, 2, argv, &a, &err), SQLITE_ERROR);
    assert_null(a);
    assert_string_equal(err, "tarn_kv: argument 2 '': empty argument");
    sqlite3_free(err);
    /* err may be NULL: the verdict still comes back */
    assert_int_equal(tn_vtab_args_parse(&tn_va_module_tarn_kv, 2, argv, &a, NULL), SQLITE_ERROR);
    assert_null(a);
}

static void test_column_forms(void **state)
{
    tn_vtab_args *a = ok(&tn_va_module_tarn,
                         "\"my id\" int primary key|[odd name] varchar(255) indexed|`back``tick` Double Precision|"
                         "\"q\"\"uote\" CHAR ( 8 ) ORDERED|x$1 BIGINT|raw bytes|n nvarchar(10, 2)|"
                         "  spaced\t TEXT \n");
    const struct { const char *name; tn_col_type type; tn_col_role role; } want[] = {
        { "my id", TN_COL_INTEGER, TN_COL_PRIMARY_KEY }, { "odd name", TN_COL_TEXT, TN_COL_INDEXED },
        { "back`tick", TN_COL_REAL, TN_COL_PLAIN },      { "q\"uote", TN_COL_TEXT, TN_COL_ORDERED },
        { "x$1", TN_COL_INTEGER, TN_COL_PLAIN },         { "raw", TN_COL_BLOB, TN_COL_PLAIN },
        { "n", TN_COL_TEXT, TN_COL_PLAIN },              { "spaced", TN_COL_TEXT, TN_COL_PLAIN },
    };
    assert_int_equal(a->ncolumns, 8);
    assert_int_equal(a->pk, 0);
    assert_int_equal(a->noptions, 0);
    for (int i = 0; i < 8; i++) {
        assert_string_equal(a->columns[i].name, want[i].name);
        assert_int_equal(a->columns[i].type, want[i].type);
        assert_int_equal(a->columns[i].role, want[i].role);
    }
    tn_vtab_args_free(a);

    /* a column may be named like an option; the PRIMARY KEY need not come first */
    a = ok(&tn_va_module_tarn, "compress TEXT|cluster=c|code TEXT PRIMARY KEY");
    assert_int_equal(a->pk, 1);   /* an index into columns, not arguments */
    assert_string_equal(a->columns[0].name, "compress");
    assert_string_equal(opt(a, "cluster"), "c");
    tn_vtab_args_free(a);
}

static void test_type_synonyms(void **state)
{
    const struct { const char *text; tn_col_type type; } types[] = {
        { "INTEGER", TN_COL_INTEGER }, { "int", TN_COL_INTEGER },      { "BigInt", TN_COL_INTEGER },
        { "SMALLINT", TN_COL_INTEGER }, { "tinyint", TN_COL_INTEGER }, { "MEDIUMINT", TN_COL_INTEGER },
        { "boolean", TN_COL_INTEGER }, { "BOOL", TN_COL_INTEGER },     { "REAL", TN_COL_REAL },
        { "double", TN_COL_REAL },     { "DOUBLE PRECISION", TN_COL_REAL }, { "Float", TN_COL_REAL },
        { "TEXT", TN_COL_TEXT },       { "varchar", TN_COL_TEXT },     { "VARCHAR(20)", TN_COL_TEXT },
        { "CHAR(1)", TN_COL_TEXT },    { "character", TN_COL_TEXT },   { "NVARCHAR", TN_COL_TEXT },
        { "nchar", TN_COL_TEXT },      { "STRING", TN_COL_TEXT },      { "clob", TN_COL_TEXT },
        { "BLOB", TN_COL_BLOB },       { "bytes", TN_COL_BLOB },       { "json", TN_COL_JSON },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char spec[128];
        snprintf(spec, sizeof spec, "id INTEGER PRIMARY KEY|c %s", types[i].text);
        tn_vtab_args *a = ok(&tn_va_module_tarn, spec);
        assert_int_equal(a->columns[1].type, types[i].type);
        assert_int_equal(a->columns[1].role, TN_COL_PLAIN);
        tn_vtab_args_free(a);
    }
    /* both key types */
    tn_vtab_args *a = ok(&tn_va_module_tarn, "k varchar(64) PRIMARY KEY");
    assert_int_equal(a->columns[0].type, TN_COL_TEXT);
    assert_int_equal(a->columns[0].role, TN_COL_PRIMARY_KEY);
    tn_vtab_args_free(a);
    assert_string_equal(tn_col_type_name(TN_COL_JSON), "JSON");
    assert_string_equal(tn_col_role_name(TN_COL_ORDERED), "ORDERED");
    assert_string_equal(tn_col_role_name(TN_COL_PLAIN), "");
}

static void test_column_errors(void **state)
{
    const tn_va_module *t = &tn_va_module_tarn;
    fails(t, "id INTEGER PRIMARY KEY|event_type TEXT INDEXED|event_date TEXT SORTED",
          "tarn: argument 3 'event_date TEXT SORTED': unknown constraint 'SORTED' (expected PRIMARY KEY, INDEXED "
          "or ORDERED)");
    fails(t, "id INTEGER PRIMARY KEY|x TEXT|code TEXT PRIMARY KEY", "tarn: two primary keys: 'id' and 'code'");
    fails(t, "a INTEGER|b TEXT INDEXED", "tarn: no PRIMARY KEY column");
    fails(t, "id INTEGER PRIMARY KEY|body JSON INDEXED", "tarn: column 'body' is JSON and cannot be INDEXED");
    fails(t, "id INTEGER PRIMARY KEY|body JSON ORDERED", "tarn: column 'body' is JSON and cannot be ORDERED");
    fails(t, "body JSON PRIMARY KEY", "tarn: column 'body' is JSON and cannot be PRIMARY KEY");
    fails(t, "id INTEGER PRIMARY KEY|ID TEXT", "tarn: duplicate column 'ID'");
    fails(t, "\"id\" INTEGER PRIMARY KEY|[id] TEXT", "tarn: duplicate column 'id'");
    fails(t, "score REAL PRIMARY KEY", "tarn: column 'score' is REAL: a PRIMARY KEY must be INTEGER or TEXT");
    fails(t, "b BLOB PRIMARY KEY", "tarn: column 'b' is BLOB: a PRIMARY KEY must be INTEGER or TEXT");
    fails(t, "id", "tarn: column 'id' has no type (expected INTEGER, REAL, TEXT, BLOB or JSON)");
    fails(t, "id FOO", "tarn: argument 1 'id FOO': unknown type 'FOO' (expected INTEGER, REAL, TEXT, BLOB or JSON)");
    fails(t, "id (x)",
          "tarn: argument 1 'id (x)': expected a type after the column name (INTEGER, REAL, TEXT, BLOB or JSON)");
    fails(t, "id INTEGER PRIMARY", "tarn: argument 1 'id INTEGER PRIMARY': expected KEY after PRIMARY");
    fails(t, "id INTEGER PRIMARY INDEXED", "tarn: argument 1 'id INTEGER PRIMARY INDEXED': expected KEY after PRIMARY");
    fails(t, "id INTEGER PRIMARY KEY INDEXED", "tarn: column 'id' cannot be both PRIMARY KEY and INDEXED");
    fails(t, "id INTEGER PRIMARY KEY|t TEXT ORDERED INDEXED", "tarn: column 't' cannot be both ORDERED and INDEXED");
    fails(t, "id INTEGER PRIMARY KEY|t TEXT INDEXED indexed", "tarn: column 't' is INDEXED twice");
    fails(t, "id INTEGER PRIMARY KEY NOT NULL",
          "tarn: argument 1 'id INTEGER PRIMARY KEY NOT NULL': unknown constraint 'NOT' (expected PRIMARY KEY, "
          "INDEXED or ORDERED)");
    fails(t, "id VARCHAR(", "tarn: argument 1 'id VARCHAR(': bad type size (expected e.g. VARCHAR(255))");
    fails(t, "id VARCHAR(12", "tarn: argument 1 'id VARCHAR(12': bad type size (expected e.g. VARCHAR(255))");
    fails(t, "id VARCHAR(a)", "tarn: argument 1 'id VARCHAR(a)': bad type size (expected e.g. VARCHAR(255))");
    fails(t, "id INTEGER PRIMARY KEY ;", "tarn: argument 1 'id INTEGER PRIMARY KEY ;': unexpected ';'");
    fails(t, "\"\" TEXT PRIMARY KEY", "tarn: argument 1 '\"\" TEXT PRIMARY KEY': empty column name");
    fails(t, "[] TEXT PRIMARY KEY", "tarn: argument 1 '[] TEXT PRIMARY KEY': empty column name");
    fails(t, "\"abc TEXT PRIMARY KEY", "tarn: argument 1 '\"abc TEXT PRIMARY KEY': unterminated quote");
    fails(t, "`abc TEXT PRIMARY KEY", "tarn: argument 1 '`abc TEXT PRIMARY KEY': unterminated quote");
    fails(t, "[abc TEXT PRIMARY KEY", "tarn: argument 1 '[abc TEXT PRIMARY KEY': unterminated [");
    fails(t, "1abc TEXT", "tarn: argument 1 '1abc TEXT': expected a column declaration or option=value");
    fails(t, "$x TEXT", "tarn: argument 1 '$x TEXT': expected a column declaration or option=value");
    fails(t, "'id' TEXT", "tarn: argument 1 ''id' TEXT': expected a column declaration or option=value");
    /* the first bad argument is the one reported */
    fails(t, "clustr=x|id FOO", "tarn: unknown option 'clustr'");
    fails(t, "id FOO|clustr=x", "tarn: argument 1 'id FOO': unknown type 'FOO' (expected INTEGER, REAL, TEXT, BLOB or JSON)");
}

/* Arguments built one by one (more than parse_split handles). */
typedef struct argset {
    char *argv[MAX_ARGS];
    int argc;
} argset;

static void argset_add(argset *s, const char *fmt, ...)
{
    assert_true(s->argc < MAX_ARGS);
    va_list ap;
    va_start(ap, fmt);
    char *p = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    assert_non_null(p);
    s->argv[s->argc++] = p;
}

static int argset_parse(argset *s, const tn_va_module *mod, tn_vtab_args **out, char **err)
{
    return tn_vtab_args_parse(mod, s->argc, (const char *const *)s->argv, out, err);
}

static void argset_free(argset *s)
{
    for (int i = 0; i < s->argc; i++) sqlite3_free(s->argv[i]);
    s->argc = 0;
}

static void test_limits(void **state)
{
    argset *s = calloc(1, sizeof *s);
    assert_non_null(s);
    tn_vtab_args *a = NULL;
    char *err = NULL;
    /* 2000 columns are fine, 2001 are not */
    argset_add(s, "id INTEGER PRIMARY KEY");
    for (int i = 1; i < 2000; i++) argset_add(s, "c%d TEXT", i);
    argset_add(s, "cluster=x");
    assert_int_equal(argset_parse(s, &tn_va_module_tarn, &a, &err), SQLITE_OK);
    assert_int_equal(a->ncolumns, 2000);
    assert_string_equal(a->columns[1999].name, "c1999");
    tn_vtab_args_free(a);
    argset_add(s, "c2000 TEXT");
    assert_int_equal(argset_parse(s, &tn_va_module_tarn, &a, &err), SQLITE_ERROR);
    assert_string_equal(err, "tarn: too many columns (at most 2000)");
    sqlite3_free(err);
    argset_free(s);

    /* 64 indexes are fine, 65 are not */
    argset_add(s, "id INTEGER PRIMARY KEY");
    for (int i = 0; i < 64; i++) argset_add(s, "i%d TEXT %s", i, i % 2 ? "INDEXED" : "ORDERED");
    assert_int_equal(argset_parse(s, &tn_va_module_tarn, &a, &err), SQLITE_OK);
    tn_vtab_args_free(a);
    argset_add(s, "extra INTEGER INDEXED");
    assert_int_equal(argset_parse(s, &tn_va_module_tarn, &a, &err), SQLITE_ERROR);
    assert_string_equal(err, "tarn: too many INDEXED and ORDERED columns (at most 64)");
    sqlite3_free(err);
    argset_free(s);

    /* column names up to 255 bytes */
    char name[300];
    memset(name, 'n', 255);
    name[255] = 0;
    argset_add(s, "%s TEXT PRIMARY KEY", name);
    assert_int_equal(argset_parse(s, &tn_va_module_tarn, &a, &err), SQLITE_OK);
    assert_int_equal(strlen(a->columns[0].name), 255);
    tn_vtab_args_free(a);
    argset_free(s);
    name[255] = 'n';
    name[256] = 0;
    argset_add(s, "\"%s\" TEXT PRIMARY KEY", name);
    assert_int_equal(argset_parse(s, &tn_va_module_tarn, &a, &err), SQLITE_ERROR);
    assert_non_null(strstr(err, "': column name longer than 255 bytes"));
    sqlite3_free(err);
    argset_free(s);
    free(s);
}

static void test_long_arguments(void **state)
{
    size_t n = 200000;
    char *value = malloc(n + 1);
    assert_non_null(value);
    for (size_t i = 0; i < n; i++) value[i] = (char)('a' + i % 26);
    value[n] = 0;
    argset s0 = { .argc = 0 };
    argset *s = &s0;
    argset_add(s, "cluster='%s'", value);
    argset_add(s, "data=%s", value);
    tn_vtab_args *a = NULL;
    char *err = NULL;
    assert_int_equal(argset_parse(s, &tn_va_module_tarn_kv, &a, &err), SQLITE_OK);
    assert_string_equal(opt(a, "cluster"), value);
    assert_string_equal(opt(a, "data"), value);
    tn_vtab_args_free(a);
    argset_free(s);

    /* a long bad argument is shown cut, not whole */
    argset_add(s, "cluster='%s", value);
    assert_int_equal(argset_parse(s, &tn_va_module_tarn_kv, &a, &err), SQLITE_ERROR);
    char expect[256];
    snprintf(expect, sizeof expect, "tarn_kv: argument 1 'cluster='%.71s...': unterminated quote", value);
    assert_string_equal(err, expect);
    sqlite3_free(err);
    argset_free(s);

    /* a long unknown option name and a long bad value too */
    argset_add(s, "%s=1", value);
    assert_int_equal(argset_parse(s, &tn_va_module_tarn_kv, &a, &err), SQLITE_ERROR);
    snprintf(expect, sizeof expect, "tarn_kv: unknown option '%.80s...'", value);
    assert_string_equal(err, expect);
    sqlite3_free(err);
    argset_free(s);
    argset_add(s, "timeout_ms=%s", value);
    assert_int_equal(argset_parse(s, &tn_va_module_tarn_kv, &a, &err), SQLITE_ERROR);
    snprintf(expect, sizeof expect, "tarn_kv: option 'timeout_ms': '%.80s...' is not an integer in 1..3600000",
             value);
    assert_string_equal(err, expect);
    sqlite3_free(err);
    argset_free(s);
    free(value);
}

static void test_non_ascii(void **state)
{
    tn_vtab_args *a = ok(&tn_va_module_tarn, "pr\xc3\xa9nom TEXT PRIMARY KEY|\xe6\x97\xa5\xe6\x9c\xac INTEGER INDEXED|"
                                             "\xff\x80 BLOB|\"\xc3\x89t\xc3\xa9\" TEXT|\xc3\xa9t\xc3\xa9 TEXT|"
                                             "data='donn\xc3\xa9\x65s/\xe6\x97\xa5'|collection=caf\xc3\xa9");
    assert_int_equal(a->ncolumns, 5);
    assert_string_equal(a->columns[0].name, "pr\xc3\xa9nom");
    assert_string_equal(a->columns[1].name, "\xe6\x97\xa5\xe6\x9c\xac");
    assert_string_equal(a->columns[2].name, "\xff\x80");
    /* only ASCII letters fold: "Été" and "été" are different names, as in SQLite */
    assert_string_equal(a->columns[3].name, "\xc3\x89t\xc3\xa9");
    assert_string_equal(opt(a, "data"), "donn\xc3\xa9\x65s/\xe6\x97\xa5");
    assert_string_equal(opt(a, "collection"), "caf\xc3\xa9");
    tn_vtab_args_free(a);

    /* a cut message never splits a UTF-8 sequence: 79 ASCII bytes then 'é' (bytes 79 and 80) */
    char arg[200];
    memset(arg, 'x', 79);
    strcpy(arg + 79, "\xc3\xa9 TEXT SORTED");
    char *argv[] = { arg };
    char *err = NULL;
    assert_int_equal(tn_vtab_args_parse(&tn_va_module_tarn, 1, (const char *const *)argv, &a, &err), SQLITE_ERROR);
    char expect[300];
    snprintf(expect, sizeof expect,
             "tarn: argument 1 '%.79s...': unknown constraint 'SORTED' (expected PRIMARY KEY, INDEXED or ORDERED)",
             arg);
    assert_string_equal(err, expect);
    sqlite3_free(err);
    fails(&tn_va_module_tarn, "id INTEGER PRIMARY KEY|\xc3\xa9 TEXT \xc3\xa9",
          "tarn: argument 2 '\xc3\xa9 TEXT \xc3\xa9': unknown constraint '\xc3\xa9' (expected PRIMARY KEY, INDEXED or "
          "ORDERED)");
}

/* A module description made by the caller, with columns optional. */
static void test_custom_module(void **state)
{
    static const char *const modes[] = { "fast", "Safe", NULL };
    const tn_va_option_spec specs[] = {
        { "mode", TN_VA_ENUM, 0, 0, modes },
        { "n", TN_VA_INT, -10, 10, NULL },
    };
    const tn_va_module mod = { "m", specs, 2, TN_VA_COLUMNS_OPTIONAL };
    tn_vtab_args *a = ok(&mod, "mode=safe|n=-10");
    assert_int_equal(a->ncolumns, 0);
    assert_int_equal(a->pk, -1);
    assert_string_equal(opt(a, "mode"), "Safe");
    assert_int_equal(tn_vtab_args_option(a, "mode")->ival, 1);
    assert_ptr_equal(tn_vtab_args_option(a, "mode")->spec, &specs[0]);
    assert_int_equal(tn_vtab_args_option(a, "n")->ival, -10);
    assert_null(tn_vtab_args_option(a, "cluster"));
    assert_null(tn_vtab_args_option(NULL, "n"));
    tn_vtab_args_free(a);
    a = ok(&mod, "k TEXT PRIMARY KEY");
    assert_int_equal(a->pk, 0);
    tn_vtab_args_free(a);
    fails(&mod, "mode=slow", "m: option 'mode': 'slow' is not one of fast, Safe");
    fails(&mod, "k TEXT", "m: no PRIMARY KEY column");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_examples),
        cmocka_unit_test(test_no_arguments),
        cmocka_unit_test(test_option_value_forms),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_option_kinds),
        cmocka_unit_test(test_int_limits),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_empty_arguments),
        cmocka_unit_test(test_column_forms),
        cmocka_unit_test(test_type_synonyms),
        cmocka_unit_test(test_column_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_long_arguments),
        cmocka_unit_test(test_non_ascii),
        cmocka_unit_test(test_custom_module),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
