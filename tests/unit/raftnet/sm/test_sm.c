/* test_sm.c — the state machine: commands in, responses out; conditions; determinism; snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sm.h"
#include "wire.h"

/* Encodes a one-op (or n-op) request as a command and applies it at `index`; decodes the response into
 * *resp (pointing into *buf, which the caller frees). */
static void apply_ops(tn_sm *sm, uint64_t index, int64_t time_ms, uint64_t owner, tn_op *ops, size_t n,
                      uint8_t flags, tn_wr *buf, tn_resp *resp)
{
    tn_req req = {.flags = flags, .req_id = index, .client_id = owner, .n_ops = n, .ops = ops};
    tn_wr reqb, cmd;
    tn_wr_init(&reqb);
    tn_wr_init(&cmd);
    assert_int_equal(tn_req_encode(&req, &reqb), TN_SUCCESS);
    assert_int_equal(tn_cmd_encode(time_ms, owner, reqb.p, reqb.len, &cmd), TN_SUCCESS);
    tn_wr_init(buf);
    assert_int_equal(tn_sm_apply(sm, index, cmd.p, cmd.len, buf), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(buf->p, buf->len, resp), TN_SUCCESS);
    tn_wr_free(&reqb);
    tn_wr_free(&cmd);
}

static int apply1(tn_sm *sm, uint64_t index, tn_op op)
{
    tn_wr buf;
    tn_resp resp;
    apply_ops(sm, index, 1000 + (int64_t)index, 7, &op, 1, 0, &buf, &resp);
    assert_int_equal(resp.n_results, 1);
    int code = resp.results[0].code;
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    return code;
}

static tn_op put_op(const char *k, const char *v)
{
    tn_op op = {.opcode = TN_OP_KV_PUT, .key = (const uint8_t *)k, .key_len = strlen(k),
                .value = (const uint8_t *)v, .value_len = strlen(v)};
    return op;
}

static tn_op key_op(int opcode, const char *k)
{
    tn_op op = {.opcode = (uint8_t)opcode, .key = (const uint8_t *)k, .key_len = strlen(k)};
    return op;
}

/* Reads one key through tn_sm_read; returns the result code and fills *rev. */
static int get_rev(const tn_sm *sm, const char *k, uint64_t *rev, char *value, size_t cap)
{
    tn_op op = key_op(TN_OP_KV_GET, k);
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr buf;
    tn_resp resp;
    tn_wr_init(&buf);
    assert_int_equal(tn_sm_read(sm, &req, &buf), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(buf.p, buf.len, &resp), TN_SUCCESS);
    int code = resp.results[0].code;
    if (code == TN_SUCCESS) {
        assert_int_equal(resp.results[0].n_entries, 1);
        *rev = resp.results[0].entries[0].update_rev;
        if (value) {
            size_t n = resp.results[0].entries[0].value_len;
            assert_true(n < cap);
            memcpy(value, resp.results[0].entries[0].value, n);
            value[n] = 0;
        }
    }
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    return code;
}

static void test_put_get_revision_and_time_from_command(void **state)
{
    (void)state;
    tn_sm *sm = tn_sm_new(NULL);
    assert_non_null(sm);
    tn_wr buf;
    tn_resp resp;
    tn_op op = put_op("a", "1");
    apply_ops(sm, 5, 123456, 9, &op, 1, 0, &buf, &resp);
    assert_int_equal(resp.results[0].code, TN_SUCCESS);
    assert_int_equal(resp.results[0].n_entries, 1);
    assert_int_equal(resp.results[0].entries[0].create_rev, 5);
    assert_int_equal(resp.results[0].entries[0].create_time, 123456);
    assert_int_equal(resp.revision, 5);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    assert_int_equal(tn_sm_applied(sm), 5);
    uint64_t rev = 0;
    char v[16];
    assert_int_equal(get_rev(sm, "a", &rev, v, sizeof v), TN_SUCCESS);
    assert_int_equal(rev, 5);
    assert_string_equal(v, "1");
    /* an index that does not advance is refused */
    tn_wr cmd, reqb;
    tn_req req = {.n_ops = 1, .ops = &op};
    tn_wr_init(&reqb);
    tn_wr_init(&cmd);
    tn_wr_init(&buf);
    tn_req_encode(&req, &reqb);
    tn_cmd_encode(1, 1, reqb.p, reqb.len, &cmd);
    assert_int_equal(tn_sm_apply(sm, 5, cmd.p, cmd.len, &buf), TN_INTERNAL);
    tn_wr_free(&reqb);
    tn_wr_free(&cmd);
    tn_wr_free(&buf);
    tn_sm_free(sm);
}

static void test_conditions(void **state)
{
    (void)state;
    tn_sm *sm = tn_sm_new(NULL);
    tn_op op = put_op("k", "v1");
    op.cond = TN_COND_ABSENT;
    assert_int_equal(apply1(sm, 1, op), TN_SUCCESS);
    assert_int_equal(apply1(sm, 2, op), TN_VALUE_EXISTS); /* INSERT of an existing key */
    tn_op mk = key_op(TN_OP_KV_MKDIR, "d");
    assert_int_equal(apply1(sm, 3, mk), TN_SUCCESS);
    tn_op over_dir = put_op("d", "x");
    over_dir.cond = TN_COND_ABSENT;
    assert_int_equal(apply1(sm, 4, over_dir), TN_DIR_EXISTS);

    uint64_t rev;
    assert_int_equal(get_rev(sm, "k", &rev, NULL, 0), TN_SUCCESS);
    assert_int_equal(rev, 1);
    tn_op upd = put_op("k", "v2");
    upd.cond = TN_COND_REV;
    upd.cond_rev = rev;
    assert_int_equal(apply1(sm, 5, upd), TN_SUCCESS_OVERWRITE);
    /* the same conditional write again: the revision moved on, so it must fail and change nothing */
    upd.value = (const uint8_t *)"v3";
    assert_int_equal(apply1(sm, 6, upd), TN_REVISION_MISMATCH);
    char v[16];
    assert_int_equal(get_rev(sm, "k", &rev, v, sizeof v), TN_SUCCESS);
    assert_string_equal(v, "v2");
    assert_int_equal(rev, 5);
    tn_op del = key_op(TN_OP_KV_REMOVE, "k");
    del.cond = TN_COND_REV;
    del.cond_rev = 1;
    assert_int_equal(apply1(sm, 7, del), TN_REVISION_MISMATCH);
    del.cond_rev = 5;
    assert_int_equal(apply1(sm, 8, del), TN_SUCCESS);
    assert_int_equal(apply1(sm, 9, del), TN_NOT_FOUND);
    tn_sm_free(sm);
}

static void test_batch_results_are_independent(void **state)
{
    (void)state;
    tn_sm *sm = tn_sm_new(NULL);
    tn_op ops[3] = {put_op("a", "1"), put_op("no.parent", "2"), put_op("b", "3")};
    tn_wr buf;
    tn_resp resp;
    apply_ops(sm, 1, 1, 1, ops, 3, 0, &buf, &resp);
    assert_int_equal(resp.n_results, 3);
    assert_int_equal(resp.results[0].code, TN_SUCCESS);
    assert_int_equal(resp.results[1].code, TN_PARENT_DIR_NOT_EXISTS);
    assert_int_equal(resp.results[2].code, TN_SUCCESS);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);

    /* batch get: one request, one result per key */
    tn_op gets[3] = {key_op(TN_OP_KV_GET, "a"), key_op(TN_OP_KV_GET, "zz"), key_op(TN_OP_KV_GET, "b")};
    tn_req req = {.n_ops = 3, .ops = gets};
    tn_wr_init(&buf);
    assert_int_equal(tn_sm_read(sm, &req, &buf), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(buf.p, buf.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.n_results, 3);
    assert_int_equal(resp.results[0].code, TN_SUCCESS);
    assert_int_equal(resp.results[1].code, TN_NOT_FOUND);
    assert_int_equal(resp.results[2].n_entries, 1);
    assert_memory_equal(resp.results[2].entries[0].value, "3", 1);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);

    /* a write op inside a read request is refused */
    tn_op w = put_op("c", "1");
    req.ops = &w;
    req.n_ops = 1;
    tn_wr_init(&buf);
    assert_int_equal(tn_sm_read(sm, &req, &buf), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(buf.p, buf.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.code, TN_BAD_REQUEST);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    tn_sm_free(sm);
}

static void test_list_and_scan_paging(void **state)
{
    (void)state;
    tn_sm *sm = tn_sm_new(NULL);
    uint64_t idx = 1;
    assert_int_equal(apply1(sm, idx++, key_op(TN_OP_KV_MKDIR, "d")), TN_SUCCESS);
    char k[32];
    for (int i = 0; i < 25; i++) {
        snprintf(k, sizeof k, "d.k%02d", i);
        assert_int_equal(apply1(sm, idx++, put_op(k, "v")), TN_SUCCESS);
    }
    /* list in pages of 10 using `after` */
    int seen = 0;
    char after[32] = "";
    for (int page = 0; page < 4; page++) {
        tn_op op = key_op(TN_OP_KV_LIST, "d");
        op.limit = 10;
        if (after[0]) {
            op.after = (const uint8_t *)after;
            op.after_len = strlen(after);
        }
        tn_req req = {.n_ops = 1, .ops = &op};
        tn_wr buf;
        tn_resp resp;
        tn_wr_init(&buf);
        assert_int_equal(tn_sm_read(sm, &req, &buf), TN_SUCCESS);
        assert_int_equal(tn_resp_decode(buf.p, buf.len, &resp), TN_SUCCESS);
        assert_int_equal(resp.results[0].code, TN_SUCCESS);
        size_t n = resp.results[0].n_entries;
        for (size_t i = 0; i < n; i++) {
            snprintf(k, sizeof k, "d.k%02d", seen);
            assert_int_equal(resp.results[0].entries[i].key_len, strlen(k));
            assert_memory_equal(resp.results[0].entries[i].key, k, strlen(k));
            seen++;
        }
        if (n) {
            memcpy(after, resp.results[0].entries[n - 1].key, resp.results[0].entries[n - 1].key_len);
            after[resp.results[0].entries[n - 1].key_len] = 0;
        }
        tn_resp_clear(&resp);
        tn_wr_free(&buf);
    }
    assert_int_equal(seen, 25);

    /* scan of everything: the directory first, then its children */
    tn_op scan = {.opcode = TN_OP_KV_SCAN};
    tn_req req = {.n_ops = 1, .ops = &scan};
    tn_wr buf;
    tn_resp resp;
    tn_wr_init(&buf);
    assert_int_equal(tn_sm_read(sm, &req, &buf), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(buf.p, buf.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.results[0].n_entries, 26);
    assert_int_equal(resp.results[0].entries[0].is_dir, 1);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);

    /* list of a value / a missing dir */
    tn_op bad = key_op(TN_OP_KV_LIST, "d.k00");
    req.ops = &bad;
    tn_wr_init(&buf);
    tn_sm_read(sm, &req, &buf);
    assert_int_equal(tn_resp_decode(buf.p, buf.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.results[0].code, TN_PARENT_NOT_DIR);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    tn_sm_free(sm);
}

/* Two state machines fed the same commands have byte-identical snapshots; a snapshot loads back into an
 * equal state; a damaged image is refused and changes nothing. */
static void test_determinism_and_snapshot(void **state)
{
    (void)state;
    tn_sm *a = tn_sm_new(NULL), *b = tn_sm_new(NULL);
    uint64_t seed = 12345;
    char k[32], v[32];
    assert_int_equal(apply1(a, 1, key_op(TN_OP_KV_MKDIR, "d")), apply1(b, 1, key_op(TN_OP_KV_MKDIR, "d")));
    for (uint64_t i = 2; i < 400; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(seed >> 33);
        snprintf(k, sizeof k, "d.k%u", r % 50);
        snprintf(v, sizeof v, "v%u", r % 1000);
        tn_op op = (r % 4 == 0) ? key_op(TN_OP_KV_REMOVE, k) : put_op(k, v);
        if (r % 7 == 0) {
            op.opcode = TN_OP_KV_PUT_TEMP;
            op.ttl_ms = 1000;
        }
        assert_int_equal(apply1(a, i, op), apply1(b, i, op));
    }
    tn_wr ia, ib;
    tn_wr_init(&ia);
    tn_wr_init(&ib);
    assert_int_equal(tn_sm_snapshot_save(a, &ia), TN_SUCCESS);
    assert_int_equal(tn_sm_snapshot_save(b, &ib), TN_SUCCESS);
    assert_int_equal(ia.len, ib.len);
    assert_memory_equal(ia.p, ib.p, ia.len);

    tn_sm *c = tn_sm_new(NULL);
    assert_int_equal(tn_sm_snapshot_load(c, ia.p, ia.len), TN_SUCCESS);
    assert_int_equal(tn_sm_applied(c), tn_sm_applied(a));
    tn_wr ic;
    tn_wr_init(&ic);
    assert_int_equal(tn_sm_snapshot_save(c, &ic), TN_SUCCESS);
    assert_int_equal(ic.len, ia.len);
    assert_memory_equal(ic.p, ia.p, ia.len);

    /* damage: every truncation and a flipped byte are refused, c keeps its state */
    for (size_t cut = 0; cut < ia.len; cut += 7)
        assert_int_not_equal(tn_sm_snapshot_load(c, ia.p, cut), TN_SUCCESS);
    ia.p[ia.len / 2] ^= 0x40;
    assert_int_not_equal(tn_sm_snapshot_load(c, ia.p, ia.len), TN_SUCCESS);
    tn_wr_free(&ic);
    tn_wr_init(&ic);
    assert_int_equal(tn_sm_snapshot_save(c, &ic), TN_SUCCESS);
    assert_memory_equal(ic.p, ib.p, ib.len);

    tn_wr_free(&ia);
    tn_wr_free(&ib);
    tn_wr_free(&ic);
    tn_sm_free(a);
    tn_sm_free(b);
    tn_sm_free(c);
}

static void test_garbage_command_is_consumed(void **state)
{
    (void)state;
    tn_sm *sm = tn_sm_new(NULL);
    tn_wr out;
    tn_wr_init(&out);
    const uint8_t junk[] = {'T', 'C', 1, 0xff, 0xff};
    assert_int_equal(tn_sm_apply(sm, 1, junk, sizeof junk, &out), TN_BAD_REQUEST);
    assert_int_equal(tn_sm_applied(sm), 1); /* every replica skips it the same way */
    assert_int_equal(apply1(sm, 2, put_op("a", "b")), TN_SUCCESS);
    tn_wr_free(&out);
    tn_sm_free(sm);
}

/* An atomic request applies tree writes all or nothing (raftnet/sm/atomic.h): a failing op undoes the others. */
static void test_atomic_tree_ops_all_or_nothing(void **state)
{
    (void)state;
    tn_sm *sm = tn_sm_new(NULL);
    tn_op ops[2] = {put_op("a", "1"), put_op("b", "2")};
    ops[1].cond = TN_COND_REV; /* b does not exist: NOT_FOUND */
    ops[1].cond_rev = 99;
    tn_wr buf;
    tn_resp resp;
    apply_ops(sm, 1, 1, 1, ops, 2, TN_REQF_ATOMIC, &buf, &resp);
    assert_int_equal(resp.code, TN_SUCCESS);
    assert_int_equal(resp.results[0].code, TN_TXN_CONFLICT);
    assert_int_equal(resp.results[1].code, TN_NOT_FOUND);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    uint64_t rev;
    assert_int_equal(get_rev(sm, "a", &rev, NULL, 0), TN_NOT_FOUND); /* nothing applied */
    ops[1].cond = TN_COND_NONE;
    ops[1].cond_rev = 0;
    apply_ops(sm, 2, 2, 1, ops, 2, TN_REQF_ATOMIC, &buf, &resp);
    assert_int_equal(resp.results[0].code, TN_SUCCESS);
    assert_int_equal(resp.results[1].code, TN_SUCCESS);
    tn_resp_clear(&resp);
    tn_wr_free(&buf);
    assert_int_equal(get_rev(sm, "a", &rev, NULL, 0), TN_SUCCESS);
    assert_int_equal(rev, 2);
    assert_int_equal(get_rev(sm, "b", &rev, NULL, 0), TN_SUCCESS);
    tn_sm_free(sm);
}

/* The expiry request names exactly the due temp nodes with their create revision; applied, it removes them,
 * and a node re-created meanwhile is left alone. */
static void test_expiry_request(void **state)
{
    (void)state;
    tn_sm *sm = tn_sm_new(NULL);
    tn_op t1 = put_op("t1", "v");
    t1.opcode = TN_OP_KV_PUT_TEMP;
    t1.ttl_ms = 100; /* command time of index 1 is 1001: due at 1101 */
    assert_int_equal(apply1(sm, 1, t1), TN_SUCCESS);
    tn_op t2 = put_op("t2", "v");
    t2.opcode = TN_OP_KV_PUT_TEMP;
    t2.ttl_ms = 5000;
    assert_int_equal(apply1(sm, 2, t2), TN_SUCCESS);
    tn_wr req;
    tn_wr_init(&req);
    assert_int_equal(tn_sm_expiry_request(sm, 1100, 10, &req), TN_NOT_FOUND);
    assert_int_equal(tn_sm_expiry_request(sm, 1101, 10, &req), TN_SUCCESS);
    tn_req decoded;
    assert_int_equal(tn_req_decode(req.p, req.len, &decoded), TN_SUCCESS);
    assert_int_equal(decoded.n_ops, 1);
    assert_int_equal(decoded.ops[0].opcode, TN_OP_KV_EXPIRE);
    assert_int_equal(decoded.ops[0].expect_rev, 1);
    assert_memory_equal(decoded.ops[0].key, "t1", 2);
    /* t1 is re-created before the request is applied: the old expiry must not touch the new node */
    assert_int_equal(apply1(sm, 3, key_op(TN_OP_KV_REMOVE, "t1")), TN_SUCCESS);
    t1.ttl_ms = 60000;
    assert_int_equal(apply1(sm, 4, t1), TN_SUCCESS);
    assert_int_equal(apply1(sm, 5, decoded.ops[0]), TN_TTL_INDEX_MISMATCH);
    uint64_t rev;
    assert_int_equal(get_rev(sm, "t1", &rev, NULL, 0), TN_SUCCESS);
    tn_req_clear(&decoded);
    tn_wr_free(&req);
    tn_sm_free(sm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expiry_request),
        cmocka_unit_test(test_put_get_revision_and_time_from_command),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_batch_results_are_independent),
        cmocka_unit_test(test_list_and_scan_paging),
        cmocka_unit_test(test_determinism_and_snapshot),
        cmocka_unit_test(test_garbage_command_is_consumed),
        cmocka_unit_test(test_atomic_tree_ops_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
