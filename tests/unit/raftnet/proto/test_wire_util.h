/* test_wire_util.h — helpers shared by the wire protocol tests (test_wire*.c): field-by-field comparisons,
 * builders of requests, responses and commands of every shape, hand-made raw headers, and the check that
 * decodes any bytes with every decoder and round-trips whatever decodes. Only wire.h's public API. */
#ifndef TARN_TEST_WIRE_UTIL_H
#define TARN_TEST_WIRE_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

/* ---------------------------------------------------------------- comparison helpers */

static inline void assert_bytes_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    assert_int_equal(alen, blen);
    if (alen) assert_memory_equal(a, b, alen);
}

/* Same presence (NULL or not) and same bytes. */
static inline void assert_opt_bytes_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    assert_int_equal(a == NULL, b == NULL);
    assert_bytes_equal(a, alen, b, blen);
}

static inline void assert_op_equal(const tn_op *a, const tn_op *b)
{
    assert_int_equal(a->opcode, b->opcode);
    assert_int_equal(a->cond, b->cond);
    assert_true(a->cond_rev == b->cond_rev);
    assert_bytes_equal(a->key, a->key_len, b->key, b->key_len);
    assert_bytes_equal(a->value, a->value_len, b->value, b->value_len);
    if (a->opcode == TN_OP_KV_CAS) {
        assert_opt_bytes_equal(a->value, a->value_len, b->value, b->value_len);
        assert_opt_bytes_equal(a->expect, a->expect_len, b->expect, b->expect_len);
    } else {
        assert_null(b->expect);
    }
    assert_bytes_equal(a->after, a->after_len, b->after, b->after_len);
    assert_true(a->limit == b->limit);
    assert_true(a->ttl_ms == b->ttl_ms);
    assert_true(a->expect_rev == b->expect_rev);
}

static inline void assert_req_equal(const tn_req *a, const tn_req *b)
{
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->read_mode, b->read_mode);
    assert_true(a->req_id == b->req_id);
    assert_true(a->client_id == b->client_id);
    assert_true(a->seq == b->seq);
    assert_int_equal(a->n_ops, b->n_ops);
    for (size_t i = 0; i < a->n_ops; i++) assert_op_equal(&a->ops[i], &b->ops[i]);
}

static inline void assert_entry_equal(const tn_entry *a, const tn_entry *b)
{
    assert_bytes_equal(a->key, a->key_len, b->key, b->key_len);
    assert_int_equal(!!a->is_dir, !!b->is_dir);
    if (a->is_dir) assert_null(b->value);
    else assert_opt_bytes_equal(a->value, a->value_len, b->value, b->value_len);
    assert_true(a->create_rev == b->create_rev);
    assert_true(a->update_rev == b->update_rev);
    assert_true(a->create_time == b->create_time);
    assert_true(a->update_time == b->update_time);
    assert_true(a->ttl_ms == b->ttl_ms);
    assert_true(a->owner == b->owner);
}

static inline void assert_resp_equal(const tn_resp *a, const tn_resp *b)
{
    assert_true(a->req_id == b->req_id);
    assert_int_equal(a->code, b->code);
    assert_true(a->revision == b->revision);
    assert_bytes_equal(a->leader_hint, a->leader_hint_len, b->leader_hint, b->leader_hint_len);
    assert_bytes_equal(a->message, a->message_len, b->message, b->message_len);
    assert_int_equal(a->n_results, b->n_results);
    for (size_t i = 0; i < a->n_results; i++) {
        const tn_result *x = &a->results[i], *y = &b->results[i];
        assert_int_equal(x->code, y->code);
        assert_int_equal(x->n_entries, y->n_entries);
        for (size_t j = 0; j < x->n_entries; j++) assert_entry_equal(&x->entries[j], &y->entries[j]);
        assert_bytes_equal(x->blob, x->blob_len, y->blob, y->blob_len);
    }
}

/* ---------------------------------------------------------------- builders */

#define B(s) ((const uint8_t *)(s)), (sizeof(s) - 1) /* pointer, length of a string literal */

static inline tn_op op_key(uint8_t opcode, const char *key)
{
    tn_op op;
    memset(&op, 0, sizeof op);
    op.opcode = opcode;
    op.key = (const uint8_t *)key;
    op.key_len = strlen(key);
    return op;
}

static inline void set_value(tn_op *op, const char *v)
{
    op->value = (const uint8_t *)v;
    op->value_len = v ? strlen(v) : 0;
}

static inline tn_req make_req(tn_op *ops, size_t n)
{
    tn_req r;
    memset(&r, 0, sizeof r);
    r.req_id = 42;
    r.client_id = 7;
    r.seq = 3;
    r.ops = ops;
    r.n_ops = n;
    return r;
}

/* Encodes req, decodes it, compares; returns the encoded bytes (caller frees). */
static inline uint8_t *roundtrip_req(const tn_req *req, size_t *len)
{
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_req_encode(req, &w), TN_SUCCESS);
    tn_req got;
    assert_int_equal(tn_req_decode(w.p, w.len, &got), TN_SUCCESS);
    assert_req_equal(req, &got);
    assert_int_equal(tn_req_is_write(&got), tn_req_is_write(req));
    tn_req_clear(&got);
    return tn_wr_take(&w, len);
}

/* A request with one op of every opcode, each with non-trivial fields. */
static inline uint8_t *sample_req(size_t *len)
{
    tn_op ops[16];
    size_t n = 0;
    ops[n++] = op_key(TN_OP_KV_GET, "users.alice");
    ops[n] = op_key(TN_OP_KV_LIST, "users");
    ops[n].after = (const uint8_t *)"users.bob";
    ops[n].after_len = 9;
    ops[n++].limit = 100;
    ops[n] = op_key(TN_OP_KV_SCAN, "");
    ops[n++].limit = 5;
    ops[n] = op_key(TN_OP_COLL_READ, "events");
    set_value(&ops[n++], "query-payload");
    ops[n] = op_key(TN_OP_KV_PUT, "users.alice");
    set_value(&ops[n], "admin");
    ops[n++].cond = TN_COND_ABSENT;
    ops[n] = op_key(TN_OP_KV_MKDIR, "users");
    ops[n++].cond = TN_COND_NONE;
    ops[n] = op_key(TN_OP_KV_REMOVE, "users.bob");
    ops[n].cond = TN_COND_REV;
    ops[n++].cond_rev = 1234;
    ops[n] = op_key(TN_OP_KV_CAS, "k");
    ops[n].expect = (const uint8_t *)"v1";
    ops[n].expect_len = 2;
    set_value(&ops[n++], "v2");
    ops[n] = op_key(TN_OP_KV_PUT_TEMP, "locks.job");
    set_value(&ops[n], "me");
    ops[n].ttl_ms = 5000;
    ops[n++].cond = TN_COND_ABSENT;
    ops[n] = op_key(TN_OP_KV_MKDIR_TEMP, "sessions.s1");
    ops[n++].ttl_ms = 30000;
    ops[n] = op_key(TN_OP_KV_UPDATE_TTL, "locks.job");
    ops[n].ttl_ms = 10000;
    ops[n].cond = TN_COND_REV;
    ops[n++].cond_rev = 77;
    ops[n] = op_key(TN_OP_KV_EXPIRE, "locks.job");
    ops[n++].expect_rev = 77;
    ops[n] = op_key(TN_OP_COLL_WRITE, "events");
    set_value(&ops[n++], "row-bytes");
    tn_req req = make_req(ops, n);
    req.flags = TN_REQF_ATOMIC;
    return roundtrip_req(&req, len);
}

/* A response with several results, entries of every shape and a blob. */
static inline uint8_t *sample_resp(size_t *len)
{
    tn_wr w;
    tn_wr_init(&w);
    tn_resp_builder b;
    tn_resp_begin(&b, &w, 42, TN_SUCCESS, 99, "tcp://127.0.0.1:7001", "fine");
    tn_resp_result_begin(&b, TN_SUCCESS);
    tn_entry e;
    memset(&e, 0, sizeof e);
    e.key = (const uint8_t *)"users";
    e.key_len = 5;
    e.is_dir = 1;
    e.create_rev = 1;
    e.update_rev = 2;
    e.create_time = 1700000000000;
    e.update_time = 1700000000001;
    tn_resp_entry(&b, &e);
    e.key = (const uint8_t *)"users.alice";
    e.key_len = 11;
    e.is_dir = 0;
    e.value = (const uint8_t *)"admin";
    e.value_len = 5;
    tn_resp_entry(&b, &e);
    e.ttl_ms = 5000;
    e.owner = 12;
    tn_resp_entry(&b, &e);
    tn_resp_result_begin(&b, TN_NOT_FOUND);
    tn_resp_result_begin(&b, TN_SUCCESS);
    tn_resp_blob(&b, "coll-result", 11);
    assert_int_equal(tn_resp_finish(&b), TN_SUCCESS);
    return tn_wr_take(&w, len);
}

static inline uint8_t *sample_cmd(size_t *len)
{
    size_t rlen;
    uint8_t *req = sample_req(&rlen);
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_cmd_encode(1700000000000, 12, req, rlen, &w), TN_SUCCESS);
    free(req);
    return tn_wr_take(&w, len);
}

/* Rebuilds a decoded response with the builder, decodes the result and compares. */
static inline void reencode_resp_and_check(const tn_resp *resp)
{
    char *hint = calloc(1, resp->leader_hint_len + 1), *msg = calloc(1, resp->message_len + 1);
    assert_non_null(hint);
    assert_non_null(msg);
    if (resp->leader_hint_len) memcpy(hint, resp->leader_hint, resp->leader_hint_len);
    if (resp->message_len) memcpy(msg, resp->message, resp->message_len);
    tn_wr w;
    tn_wr_init(&w);
    tn_resp_builder b;
    tn_resp_begin(&b, &w, resp->req_id, resp->code, resp->revision, hint, msg);
    for (size_t i = 0; i < resp->n_results; i++) {
        tn_resp_result_begin(&b, resp->results[i].code);
        for (size_t j = 0; j < resp->results[i].n_entries; j++) tn_resp_entry(&b, &resp->results[i].entries[j]);
        tn_resp_blob(&b, resp->results[i].blob, resp->results[i].blob_len);
    }
    assert_int_equal(tn_resp_finish(&b), TN_SUCCESS);
    tn_resp again;
    assert_int_equal(tn_resp_decode(w.p, w.len, &again), TN_SUCCESS);
    assert_resp_equal(resp, &again);
    tn_resp_clear(&again);
    tn_wr_free(&w);
    free(hint);
    free(msg);
}

/* Decodes buf with all three decoders; for each success, re-encodes, decodes again and compares.
 * Returns how many decoders accepted the input. */
static inline int decode_all_and_check(const uint8_t *buf, size_t len)
{
    int accepted = 0;
    tn_req req;
    int rc = tn_req_decode(buf, len, &req);
    assert_true(rc == TN_SUCCESS || rc == TN_BAD_REQUEST);
    if (rc == TN_SUCCESS) {
        accepted++;
        size_t l2;
        uint8_t *again = roundtrip_req(&req, &l2);
        free(again);
        tn_req_clear(&req);
    } else {
        assert_null(req.ops);
        assert_int_equal(req.n_ops, 0);
    }
    tn_resp resp;
    rc = tn_resp_decode(buf, len, &resp);
    assert_true(rc == TN_SUCCESS || rc == TN_BAD_REQUEST);
    if (rc == TN_SUCCESS) {
        accepted++;
        reencode_resp_and_check(&resp);
        tn_resp_clear(&resp);
    } else {
        assert_null(resp.results);
        assert_int_equal(resp.n_results, 0);
    }
    tn_cmd cmd;
    rc = tn_cmd_decode(buf, len, &cmd);
    assert_true(rc == TN_SUCCESS || rc == TN_BAD_REQUEST);
    if (rc == TN_SUCCESS) {
        accepted++;
        assert_true(cmd.req_len > 0);
        assert_true(cmd.req >= buf && cmd.req + cmd.req_len == buf + len);
    } else {
        assert_null(cmd.req);
    }
    return accepted;
}

/* ---------------------------------------------------------------- raw messages */

/* Builds a raw request header (valid) into w, ready for n_ops and ops. */
static inline void raw_req_header(tn_wr *w)
{
    const uint8_t h[] = {'T', 'N', TN_WIRE_VERSION, TN_KIND_REQ};
    tn_wr_raw(w, h, sizeof h);
    tn_wr_u8(w, 0);       /* flags */
    tn_wr_varint(w, 1);   /* req_id */
    tn_wr_varint(w, 0);   /* client_id */
    tn_wr_varint(w, 0);   /* seq */
    tn_wr_u8(w, 0);       /* read_mode */
}

/* Hand-made responses that lie or carry out-of-range fields. */
static inline void resp_prefix(tn_wr *w, const char *hint)
{
    const uint8_t h[] = {'T', 'N', TN_WIRE_VERSION, TN_KIND_RESP};
    tn_wr_raw(w, h, sizeof h);
    tn_wr_varint(w, 1); /* req_id */
    tn_wr_varint(w, 0); /* code */
    tn_wr_varint(w, 0); /* revision */
    tn_wr_bytes(w, hint, strlen(hint));
    tn_wr_bytes(w, "", 0); /* message */
}

static inline int decode_resp_rc(const tn_wr *w)
{
    tn_resp resp;
    int rc = tn_resp_decode(w->p, w->len, &resp);
    if (rc == TN_SUCCESS) tn_resp_clear(&resp);
    else assert_null(resp.results);
    return rc;
}

#endif
