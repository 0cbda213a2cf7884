/* test_wire_resp.c — responses of the client <-> node wire protocol (raftnet/proto/wire.h): every shape
 * round-trips through the builder and the decoder, text bounds and result codes, builder errors and
 * TOO_LARGE, the rewrite of a cached answer for a retry, and rejection of hand-made responses that lie or
 * carry out-of-range fields. Requests, commands and the fuzz corpus are test_wire.c. */
#include "test_wire_util.h"

/* ---------------------------------------------------------------- responses */

static void test_resp_shapes(void **state)
{
    (void)state;
    /* no results */
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_resp_error(&w, 9, TN_NOT_LEADER, "tcp://10.0.0.2:7001", "not the leader"), TN_SUCCESS);
    tn_resp resp;
    assert_int_equal(tn_resp_decode(w.p, w.len, &resp), TN_SUCCESS);
    assert_true(resp.req_id == 9);
    assert_int_equal(resp.code, TN_NOT_LEADER);
    assert_true(resp.revision == 0);
    assert_bytes_equal(resp.leader_hint, resp.leader_hint_len, B("tcp://10.0.0.2:7001"));
    assert_bytes_equal(resp.message, resp.message_len, B("not the leader"));
    assert_int_equal(resp.n_results, 0);
    assert_null(resp.results);
    tn_resp_clear(&resp);
    tn_wr_free(&w);

    /* NULL hint and message */
    tn_wr_init(&w);
    assert_int_equal(tn_resp_error(&w, UINT64_MAX, TN_BAD_REQUEST, NULL, NULL), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(w.p, w.len, &resp), TN_SUCCESS);
    assert_true(resp.req_id == UINT64_MAX);
    assert_int_equal(resp.leader_hint_len, 0);
    assert_int_equal(resp.message_len, 0);
    tn_resp_clear(&resp);
    tn_wr_free(&w);

    /* the sample: 3 results, entries of every shape, a blob */
    size_t len;
    uint8_t *buf = sample_resp(&len);
    assert_int_equal(tn_resp_decode(buf, len, &resp), TN_SUCCESS);
    assert_true(resp.revision == 99);
    assert_int_equal(resp.n_results, 3);
    const tn_result *r0 = &resp.results[0];
    assert_int_equal(r0->code, TN_SUCCESS);
    assert_int_equal(r0->n_entries, 3);
    assert_true(r0->entries[0].is_dir);
    assert_null(r0->entries[0].value);
    assert_true(r0->entries[0].create_time == 1700000000000);
    assert_bytes_equal(r0->entries[1].value, r0->entries[1].value_len, B("admin"));
    assert_true(r0->entries[1].ttl_ms == 0 && r0->entries[1].owner == 0);
    assert_true(r0->entries[2].ttl_ms == 5000 && r0->entries[2].owner == 12);
    assert_null(r0->blob);
    assert_int_equal(resp.results[1].code, TN_NOT_FOUND);
    assert_int_equal(resp.results[1].n_entries, 0);
    assert_null(resp.results[1].entries);
    assert_bytes_equal(resp.results[2].blob, resp.results[2].blob_len, B("coll-result"));
    tn_resp_clear(&resp);
    assert_null(resp.results);
    free(buf);
}

static void test_resp_entries_roundtrip(void **state)
{
    (void)state;
    const uint64_t u[] = {0, 1, 128, (uint64_t)1 << 63, UINT64_MAX};
    const int64_t s[] = {0, -1, 1, INT64_MIN, INT64_MAX};
    static const uint8_t empty[1] = {0};
    enum { N = 300 };
    tn_entry *es = calloc(N, sizeof *es);
    char (*keys)[32] = calloc(N, 32);
    assert_non_null(es);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 32, "k.%d", i);
        es[i].key = (const uint8_t *)keys[i];
        es[i].key_len = strlen(keys[i]);
        es[i].is_dir = i % 7 == 0;
        if (!es[i].is_dir) {
            if (i % 3 == 1) { es[i].value = empty; es[i].value_len = 0; }   /* present, empty */
            else if (i % 3 == 2) { es[i].value = (const uint8_t *)keys[i]; es[i].value_len = 2; }
            /* i % 3 == 0: value not asked for (NULL) */
        }
        es[i].create_rev = u[i % 5];
        es[i].update_rev = u[(i + 1) % 5];
        es[i].create_time = s[i % 5];
        es[i].update_time = s[(i + 2) % 5];
        if (i % 4 == 0) { es[i].ttl_ms = s[(i / 4) % 5] ? s[(i / 4) % 5] : 1; es[i].owner = u[(i / 4) % 5]; }
    }
    tn_wr w;
    tn_wr_init(&w);
    tn_resp_builder b;
    tn_resp_begin(&b, &w, 5, TN_SUCCESS, UINT64_MAX, "", "");
    size_t per[] = {0, 1, N - 1};
    size_t at = 0;
    for (int r = 0; r < 3; r++) {
        tn_resp_result_begin(&b, r == 1 ? TN_CAS_MISMATCH : TN_SUCCESS);
        for (size_t j = 0; j < per[r]; j++) tn_resp_entry(&b, &es[at++]);
        if (r == 2) tn_resp_blob(&b, "b", 1);
    }
    assert_int_equal(tn_resp_finish(&b), TN_SUCCESS);
    tn_resp resp;
    assert_int_equal(tn_resp_decode(w.p, w.len, &resp), TN_SUCCESS);
    assert_true(resp.revision == UINT64_MAX);
    assert_int_equal(resp.n_results, 3);
    assert_int_equal(resp.results[1].code, TN_CAS_MISMATCH);
    at = 0;
    for (int r = 0; r < 3; r++) {
        assert_int_equal(resp.results[r].n_entries, per[r]);
        for (size_t j = 0; j < per[r]; j++) assert_entry_equal(&es[at++], &resp.results[r].entries[j]);
    }
    assert_bytes_equal(resp.results[2].blob, resp.results[2].blob_len, B("b"));
    tn_resp_clear(&resp);
    tn_wr_free(&w);
    free(es);
    free(keys);
}

static void test_resp_text_bounds_and_codes(void **state)
{
    (void)state;
    char *longmsg = malloc(10000);
    assert_non_null(longmsg);
    memset(longmsg, 'm', 9999);
    longmsg[9999] = 0;
    /* a 2-byte UTF-8 character straddling the 4096-byte cut is dropped whole */
    longmsg[4095] = (char)0xc3;
    longmsg[4096] = (char)0xa9;
    tn_wr w;
    tn_wr_init(&w);
    tn_wr_u8(&w, 0x11); /* the builder appends */
    assert_int_equal(tn_resp_error(&w, 1, -5, longmsg, longmsg), TN_SUCCESS);
    tn_resp resp;
    assert_int_equal(tn_resp_decode(w.p + 1, w.len - 1, &resp), TN_SUCCESS);
    assert_int_equal(resp.code, TN_INTERNAL); /* negative code is a caller bug, reported as such */
    assert_int_equal(resp.message_len, 4095);
    assert_int_equal(resp.leader_hint_len, 4095);
    tn_resp_clear(&resp);
    w.len = 1;
    longmsg[4095] = 'm';
    longmsg[4096] = 'm';
    assert_int_equal(tn_resp_error(&w, 1, TN_INTERNAL, NULL, longmsg), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(w.p + 1, w.len - 1, &resp), TN_SUCCESS);
    assert_int_equal(resp.message_len, 4096);
    tn_resp_clear(&resp);
    tn_wr_free(&w);
    free(longmsg);

    /* codes travel as varints: any int >= 0 survives, including codes this build does not name */
    const int codes[] = {0, 1, 63, 64, 127, 128, 78, 1000, 0x7fffffff};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        tn_wr_init(&w);
        tn_resp_builder b;
        tn_resp_begin(&b, &w, 1, codes[i], 0, NULL, NULL);
        tn_resp_result_begin(&b, codes[i]);
        assert_int_equal(tn_resp_finish(&b), TN_SUCCESS);
        assert_int_equal(tn_resp_decode(w.p, w.len, &resp), TN_SUCCESS);
        assert_int_equal(resp.code, codes[i]);
        assert_int_equal(resp.results[0].code, codes[i]);
        tn_resp_clear(&resp);
        tn_wr_free(&w);
    }
}

static void test_resp_builder_errors(void **state)
{
    (void)state;
    tn_wr w;
    tn_resp_builder b;
    tn_entry e;
    memset(&e, 0, sizeof e);
    e.key = (const uint8_t *)"k";
    e.key_len = 1;

    /* an entry outside a result is a caller bug */
    tn_wr_init(&w);
    tn_resp_begin(&b, &w, 1, TN_SUCCESS, 0, NULL, NULL);
    tn_resp_entry(&b, &e);
    tn_resp_result_begin(&b, TN_SUCCESS); /* the error is sticky */
    assert_int_equal(tn_resp_finish(&b), TN_INTERNAL);
    tn_wr_free(&w);

    /* a blob outside a result too */
    tn_wr_init(&w);
    tn_resp_begin(&b, &w, 1, TN_SUCCESS, 0, NULL, NULL);
    tn_resp_blob(&b, "x", 1);
    assert_int_equal(tn_resp_finish(&b), TN_INTERNAL);
    tn_wr_free(&w);

    /* key and value above the caps */
    uint8_t *big = calloc(1, TN_WIRE_MAX_VALUE + 1);
    assert_non_null(big);
    tn_wr_init(&w);
    tn_resp_begin(&b, &w, 1, TN_SUCCESS, 0, NULL, NULL);
    tn_resp_result_begin(&b, TN_SUCCESS);
    e.key = big;
    e.key_len = TN_WIRE_MAX_KEY + 1;
    tn_resp_entry(&b, &e);
    assert_int_equal(tn_resp_finish(&b), TN_TOO_LARGE);
    tn_wr_free(&w);

    tn_wr_init(&w);
    tn_resp_begin(&b, &w, 1, TN_SUCCESS, 0, NULL, NULL);
    tn_resp_result_begin(&b, TN_SUCCESS);
    e.key_len = TN_WIRE_MAX_KEY;
    e.value = big;
    e.value_len = TN_WIRE_MAX_VALUE + 1;
    tn_resp_entry(&b, &e);
    assert_int_equal(tn_resp_finish(&b), TN_TOO_LARGE);
    tn_wr_free(&w);

    /* the largest entry fits */
    tn_wr_init(&w);
    tn_resp_begin(&b, &w, 1, TN_SUCCESS, 0, NULL, NULL);
    tn_resp_result_begin(&b, TN_SUCCESS);
    e.value_len = TN_WIRE_MAX_VALUE;
    tn_resp_entry(&b, &e);
    assert_int_equal(tn_resp_finish(&b), TN_SUCCESS);
    tn_resp resp;
    assert_int_equal(tn_resp_decode(w.p, w.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.results[0].entries[0].value_len, TN_WIRE_MAX_VALUE);
    tn_resp_clear(&resp);
    tn_wr_free(&w);

    /* five 16 MiB entries: each fits, the message does not */
    tn_wr_init(&w);
    tn_resp_begin(&b, &w, 1, TN_SUCCESS, 0, NULL, NULL);
    tn_resp_result_begin(&b, TN_SUCCESS);
    for (int i = 0; i < 5; i++) tn_resp_entry(&b, &e);
    assert_int_equal(tn_resp_finish(&b), TN_TOO_LARGE);
    assert_true(w.len < (size_t)TN_WIRE_MAX_MESSAGE + TN_WIRE_MAX_VALUE + 64); /* stopped growing */
    tn_wr_free(&w);
    free(big);

    /* a blob that would push the message over the limit */
    uint8_t *huge = calloc(1, TN_WIRE_MAX_MESSAGE);
    assert_non_null(huge);
    tn_wr_init(&w);
    tn_resp_begin(&b, &w, 1, TN_SUCCESS, 0, NULL, NULL);
    tn_resp_result_begin(&b, TN_SUCCESS);
    tn_resp_blob(&b, huge, TN_WIRE_MAX_MESSAGE);
    assert_int_equal(tn_resp_finish(&b), TN_TOO_LARGE);
    tn_wr_free(&w);
    free(huge);
}

/* One result holding one entry with the given flags byte and tail. */
static int decode_entry_case(uint8_t flags, const uint8_t *tail, size_t tail_len)
{
    tn_wr w;
    tn_wr_init(&w);
    resp_prefix(&w, "");
    tn_wr_u32(&w, 1);
    tn_wr_varint(&w, 0);
    tn_wr_u32(&w, 1);
    tn_wr_bytes(&w, "k", 1);
    tn_wr_u8(&w, flags);
    tn_wr_raw(&w, tail, tail_len);
    tn_wr_bytes(&w, "", 0); /* blob */
    int rc = decode_resp_rc(&w);
    tn_wr_free(&w);
    return rc;
}

static void test_resp_rewrite(void **state)
{
    (void)state;
    tn_wr orig, out;
    tn_wr_init(&orig);
    tn_wr_init(&out);
    tn_resp_builder b;
    tn_resp_begin(&b, &orig, 7, TN_SUCCESS, 42, NULL, "done");
    tn_resp_result_begin(&b, TN_SUCCESS);
    tn_resp_blob(&b, "xyz", 3);
    assert_int_equal(tn_resp_finish(&b), TN_SUCCESS);

    assert_int_equal(tn_resp_rewrite(orig.p, orig.len, 99, "tcp://127.0.0.1:7001", &out), TN_SUCCESS);
    tn_resp r;
    assert_int_equal(tn_resp_decode(out.p, out.len, &r), TN_SUCCESS);
    assert_int_equal(r.req_id, 99);
    assert_int_equal(r.code, TN_SUCCESS);
    assert_int_equal(r.revision, 42);
    assert_int_equal(r.leader_hint_len, strlen("tcp://127.0.0.1:7001"));
    assert_memory_equal(r.leader_hint, "tcp://127.0.0.1:7001", r.leader_hint_len);
    assert_int_equal(r.message_len, 4);
    assert_memory_equal(r.message, "done", 4);
    assert_int_equal(r.n_results, 1);
    assert_int_equal(r.results[0].blob_len, 3);
    tn_resp_clear(&r);

    /* and back to no hint: the original bytes again */
    tn_wr back;
    tn_wr_init(&back);
    assert_int_equal(tn_resp_rewrite(out.p, out.len, 7, NULL, &back), TN_SUCCESS);
    assert_int_equal(back.len, orig.len);
    assert_memory_equal(back.p, orig.p, orig.len);

    /* a truncated header and a request are refused, and nothing is appended */
    size_t before = back.len;
    assert_int_equal(tn_resp_rewrite(orig.p, 5, 1, NULL, &back), TN_BAD_REQUEST);
    tn_wr req;
    tn_wr_init(&req);
    tn_op op = {.opcode = TN_OP_KV_GET, .key = (const uint8_t *)"a", .key_len = 1};
    tn_req q = {.req_id = 1, .ops = &op, .n_ops = 1};
    assert_int_equal(tn_req_encode(&q, &req), TN_SUCCESS);
    assert_int_equal(tn_resp_rewrite(req.p, req.len, 1, NULL, &back), TN_BAD_REQUEST);
    assert_int_equal(back.len, before);
    tn_wr_free(&req);
    tn_wr_free(&back);
    tn_wr_free(&orig);
    tn_wr_free(&out);
}

static void test_resp_decoder_rejects(void **state)
{
    (void)state;
    tn_wr w;
    /* baseline */
    tn_wr_init(&w);
    resp_prefix(&w, "tcp://x");
    tn_wr_u32(&w, 0);
    assert_int_equal(decode_resp_rc(&w), TN_SUCCESS);
    tn_wr_u8(&w, 0); /* trailing */
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    w.len--;
    w.p[2] = TN_WIRE_VERSION + 1;
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    w.p[2] = TN_WIRE_VERSION;
    w.p[3] = TN_KIND_REQ;
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    tn_wr_free(&w);

    /* a NUL inside a text field cannot come from the builder */
    tn_wr_init(&w);
    const uint8_t h[] = {'T', 'N', TN_WIRE_VERSION, TN_KIND_RESP, 1, 0, 0, 3, 'a', 0, 'b', 0, 0, 0, 0, 0};
    tn_wr_raw(&w, h, sizeof h);
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    w.p[9] = 'x';
    assert_int_equal(decode_resp_rc(&w), TN_SUCCESS);
    tn_wr_free(&w);

    /* text above 4 KiB */
    char *text = malloc(4098);
    assert_non_null(text);
    memset(text, 'a', 4097);
    text[4097] = 0;
    tn_wr_init(&w);
    resp_prefix(&w, text);
    tn_wr_u32(&w, 0);
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    tn_wr_free(&w);
    text[4096] = 0;
    tn_wr_init(&w);
    resp_prefix(&w, text);
    tn_wr_u32(&w, 0);
    assert_int_equal(decode_resp_rc(&w), TN_SUCCESS);
    tn_wr_free(&w);
    free(text);

    /* code above INT_MAX */
    tn_wr_init(&w);
    const uint8_t hc[] = {'T', 'N', TN_WIRE_VERSION, TN_KIND_RESP, 1, 0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0, 0, 0, 0, 0};
    tn_wr_raw(&w, hc, sizeof hc);
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    w.p[9] = 0x07; /* 0x7fffffff */
    w.p[5] = w.p[6] = w.p[7] = w.p[8] = 0xff;
    assert_int_equal(decode_resp_rc(&w), TN_SUCCESS);
    tn_wr_free(&w);

    /* result count that lies, and above the limit */
    tn_wr_init(&w);
    resp_prefix(&w, "");
    tn_wr_u32(&w, 100000);
    tn_wr_varint(&w, 0);
    tn_wr_u32(&w, 0);
    tn_wr_u8(&w, 0);
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    w.len = 0;
    resp_prefix(&w, "");
    tn_wr_u32(&w, UINT32_MAX);
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    tn_wr_free(&w);

    /* entry count that lies */
    tn_wr_init(&w);
    resp_prefix(&w, "");
    tn_wr_u32(&w, 1);
    tn_wr_varint(&w, 0);
    tn_wr_u32(&w, 0x7fffffff);
    for (int i = 0; i < 12; i++) tn_wr_u8(&w, 0);
    assert_int_equal(decode_resp_rc(&w), TN_BAD_REQUEST);
    tn_wr_free(&w);

    /* entry flags */
    const uint8_t revs_times[] = {1, 2, 3, 4};
    const uint8_t val_revs_times[] = {1, 'v', 1, 2, 3, 4};
    const uint8_t revs_times_temp[] = {1, 2, 3, 4, 10, 7};
    assert_int_equal(decode_entry_case(0, revs_times, 4), TN_SUCCESS);
    assert_int_equal(decode_entry_case(0x01, revs_times, 4), TN_SUCCESS);
    assert_int_equal(decode_entry_case(0x02, val_revs_times, 6), TN_SUCCESS);
    assert_int_equal(decode_entry_case(0x04, revs_times_temp, 6), TN_SUCCESS);
    assert_int_equal(decode_entry_case(0x03, val_revs_times, 6), TN_BAD_REQUEST); /* dir with a value */
    assert_int_equal(decode_entry_case(0x08, revs_times, 4), TN_BAD_REQUEST);     /* unknown bit */
    assert_int_equal(decode_entry_case(0x80, revs_times, 4), TN_BAD_REQUEST);
    assert_int_equal(decode_entry_case(0x04, revs_times, 4), TN_BAD_REQUEST);     /* temp without ttl */
    assert_int_equal(decode_entry_case(0x02, revs_times, 4), TN_BAD_REQUEST);     /* value missing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_shapes),
        cmocka_unit_test(test_resp_entries_roundtrip),
        cmocka_unit_test(test_resp_text_bounds_and_codes),
        cmocka_unit_test(test_resp_builder_errors),
        cmocka_unit_test(test_resp_rewrite),
        cmocka_unit_test(test_resp_decoder_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
