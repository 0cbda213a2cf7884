/* test_coll_value.c — collection values and schemas (raftnet/proto/coll_value.c): SQLite's ordering across
 * types, hashing consistent with it, value encoding (NaN refused), formatting; schema validation with its
 * reasons, the difference message between a declared and a stored schema, schema encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "coll_codec.h"

/* The reference schema of the collection tests (sm/test_coll_util.h), restated here for this layer:
 * events(id INTEGER PK, kind TEXT INDEXED, date TEXT ORDERED, num INTEGER ORDERED, body JSON), index slots
 * kind 0, date 1, num 2. */
enum { COL_ID = 0, COL_KIND = 1, COL_DATE = 2, COL_NUM = 3, COL_BODY = 4 };
enum { SLOT_NUM = 2 };

static tn_coll_column ev_cols[] = {
    {"id", 2, TN_T_INTEGER, TN_R_PK},       {"kind", 4, TN_T_TEXT, TN_R_HASH},
    {"date", 4, TN_T_TEXT, TN_R_ORDERED},   {"num", 3, TN_T_INTEGER, TN_R_ORDERED},
    {"body", 4, TN_T_JSON, TN_R_PLAIN},
};
static const tn_coll_schema ev_schema = {5, ev_cols, TN_COMPRESS_LZ4};

static tn_val T(const char *s) { return tn_val_text(s, strlen(s)); }
#define I(x) tn_val_int(x)
#define N() tn_val_null()

/* ---- values -------------------------------------------------------------------------------------- */

static void test_value_order(void **state)
{
    (void)state;
    tn_val null = N(), i3 = I(3), r3 = tn_val_real(3.0), r35 = tn_val_real(3.5), big = I(INT64_MAX);
    tn_val rbig = tn_val_real(9223372036854775807.0); /* = 2^63, above INT64_MAX */
    tn_val ta = T("a"), tab = T("ab"), tb = T("b"), ba = tn_val_blob("a", 1), b0 = tn_val_blob("", 0);
    assert_true(tn_val_cmp(&null, &i3) < 0);
    assert_int_equal(tn_val_cmp(&null, &null), 0);
    assert_int_equal(tn_val_cmp(&i3, &r3), 0);
    assert_true(tn_val_cmp(&i3, &r35) < 0);
    assert_true(tn_val_cmp(&r35, &i3) > 0);
    assert_true(tn_val_cmp(&big, &rbig) < 0); /* exact, not rounded to double */
    assert_true(tn_val_cmp(&rbig, &big) > 0);
    tn_val m1 = I(-1), rm05 = tn_val_real(-0.5);
    assert_true(tn_val_cmp(&m1, &rm05) < 0);
    assert_true(tn_val_cmp(&r35, &ta) < 0); /* numbers before text */
    assert_true(tn_val_cmp(&ta, &tab) < 0); /* shorter prefix first */
    assert_true(tn_val_cmp(&tab, &tb) < 0);
    assert_true(tn_val_cmp(&tb, &b0) < 0); /* text before blob */
    assert_true(tn_val_cmp(&b0, &ba) < 0);
    assert_true(tn_val_hash(&i3) == tn_val_hash(&r3));
    tn_val z = I(0), nz = tn_val_real(-0.0);
    assert_int_equal(tn_val_cmp(&z, &nz), 0);
    assert_true(tn_val_hash(&z) == tn_val_hash(&nz));

    /* encoding round trip, NaN rejected */
    tn_val all[] = {null, i3, r35, ta, ba, big, m1};
    tn_wr w;
    tn_wr_init(&w);
    for (size_t k = 0; k < 7; k++) tn_val_encode(&all[k], &w);
    tn_rd r;
    tn_rd_init(&r, w.p, w.len);
    for (size_t k = 0; k < 7; k++) {
        tn_val v;
        assert_int_equal(tn_val_decode(&r, 100, &v), 0);
        assert_int_equal(v.type, all[k].type);
        assert_int_equal(tn_val_cmp(&v, &all[k]), 0);
    }
    assert_int_equal(tn_rd_left(&r), 0);
    tn_wr_free(&w);
    tn_wr_init(&w);
    tn_val nan = tn_val_real(0.0 / 0.0);
    tn_val_encode(&nan, &w);
    tn_rd_init(&r, w.p, w.len);
    tn_val v;
    assert_int_equal(tn_val_decode(&r, 100, &v), -1);
    tn_wr_free(&w);
    char buf[64];
    tn_val_format(&ta, buf, sizeof buf);
    assert_string_equal(buf, "'a'");
    tn_val_format(&m1, buf, sizeof buf);
    assert_string_equal(buf, "-1");
}

/* ---- schemas ------------------------------------------------------------------------------------- */

static void test_schema_validation(void **state)
{
    (void)state;
    char msg[200];
    assert_int_equal(tn_coll_schema_validate(&ev_schema, msg, sizeof msg), TN_SUCCESS);
    tn_coll_column c[3];
    tn_coll_schema s = {3, c, 0};

    memcpy(c, ev_cols, sizeof c);
    c[0].role = TN_R_PLAIN; /* no pk */
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(msg, "exactly one PRIMARY KEY"));

    memcpy(c, ev_cols, sizeof c);
    c[1].role = TN_R_PK; /* two pks */
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);

    memcpy(c, ev_cols, sizeof c);
    c[0].type = TN_T_REAL;
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(msg, "must be INTEGER or TEXT"));

    memcpy(c, ev_cols, sizeof c);
    c[2].type = TN_T_JSON; /* ORDERED JSON */
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(msg, "cannot be indexed"));

    memcpy(c, ev_cols, sizeof c);
    c[2].name = "KIND"; /* duplicate, case-insensitively */
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);
    assert_non_null(strstr(msg, "duplicate"));

    memcpy(c, ev_cols, sizeof c);
    c[1].name_len = 0;
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);

    memcpy(c, ev_cols, sizeof c);
    c[1].type = 9;
    assert_int_equal(tn_coll_schema_validate(&s, msg, sizeof msg), TN_CLIENT_REQ_ERROR);

    /* the difference message */
    tn_coll_column d[5];
    memcpy(d, ev_cols, sizeof d);
    d[3].role = TN_R_HASH;
    tn_coll_schema here = {5, (tn_coll_column[]){ev_cols[0], ev_cols[1],
                                                 {"event_date", 10, TN_T_TEXT, TN_R_ORDERED}, ev_cols[3],
                                                 ev_cols[4]}, TN_COMPRESS_LZ4};
    tn_coll_schema stored = {5, (tn_coll_column[]){ev_cols[0], ev_cols[1],
                                                   {"event_date", 10, TN_T_TEXT, TN_R_HASH}, ev_cols[3],
                                                   ev_cols[4]}, TN_COMPRESS_LZ4};
    assert_int_equal(tn_coll_schema_diff(&here, &stored, msg, sizeof msg), 1);
    assert_string_equal(msg, "column 3: 'event_date' is ORDERED here but INDEXED in the stored collection");
    assert_int_equal(tn_coll_schema_diff(&here, &here, msg, sizeof msg), 0);
    tn_coll_schema fewer = {4, here.cols, TN_COMPRESS_LZ4};
    assert_int_equal(tn_coll_schema_diff(&fewer, &here, msg, sizeof msg), 1);
    assert_string_equal(msg, "4 columns here but 5 in the stored collection");
    tn_coll_schema nocomp = {5, here.cols, TN_COMPRESS_NONE};
    assert_int_equal(tn_coll_schema_diff(&nocomp, &here, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "compress"));
    tn_coll_schema typed = {5, (tn_coll_column[]){ev_cols[0], ev_cols[1],
                                                  {"event_date", 10, TN_T_INTEGER, TN_R_ORDERED}, ev_cols[3],
                                                  ev_cols[4]}, TN_COMPRESS_LZ4};
    assert_int_equal(tn_coll_schema_diff(&typed, &here, msg, sizeof msg), 1);
    assert_string_equal(msg, "column 3: 'event_date' is INTEGER here but TEXT in the stored collection");

    /* encode/decode round trip */
    tn_wr w;
    tn_wr_init(&w);
    tn_coll_schema_encode(&ev_schema, &w);
    tn_rd r;
    tn_rd_init(&r, w.p, w.len);
    tn_coll_schema back;
    assert_int_equal(tn_coll_schema_decode(&r, &back), TN_SUCCESS);
    assert_int_equal(tn_coll_schema_diff(&back, &ev_schema, msg, sizeof msg), 0);
    assert_int_equal(tn_coll_schema_pk(&back), 0);
    assert_int_equal(tn_coll_schema_slot(&back, COL_NUM), SLOT_NUM);
    assert_int_equal(tn_coll_schema_slot(&back, COL_BODY), -1);
    assert_int_equal(tn_coll_schema_slot(&back, COL_ID), -1);
    assert_int_equal(tn_coll_schema_n_idx(&back), 3);
    tn_coll_schema_clear(&back);
    tn_wr_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_order),
        cmocka_unit_test(test_schema_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
