/* fuzz_wire.c — libFuzzer target for the client <-> node wire protocol (raftnet/proto/wire.h).
 *
 * Feeds the input to tn_req_decode, tn_resp_decode and tn_cmd_decode. Whatever decodes is encoded
 * again and decoded again, and the two decoded structures must be equal (abort() otherwise): the
 * decoders accept only what the encoders can write. A decoded command's embedded request goes through
 * the same round trip. Deterministic (no clocks, no randomness) and leak-free.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"


static void check(int ok)
{
    if (!ok) abort();
}

static int bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* present-or-absent matters (CAS value/expect, entry value) */
static int opt_bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return (a == NULL) == (b == NULL) && bytes_eq(a, alen, b, blen);
}

static int op_eq(const tn_op *a, const tn_op *b)
{
    return a->opcode == b->opcode && a->cond == b->cond && a->cond_rev == b->cond_rev &&
           bytes_eq(a->key, a->key_len, b->key, b->key_len) &&
           opt_bytes_eq(a->value, a->value_len, b->value, b->value_len) &&
           opt_bytes_eq(a->expect, a->expect_len, b->expect, b->expect_len) &&
           opt_bytes_eq(a->after, a->after_len, b->after, b->after_len) && a->limit == b->limit &&
           a->ttl_ms == b->ttl_ms && a->expect_rev == b->expect_rev;
}

static int req_eq(const tn_req *a, const tn_req *b)
{
    if (a->flags != b->flags || a->read_mode != b->read_mode || a->req_id != b->req_id ||
        a->client_id != b->client_id || a->seq != b->seq || a->n_ops != b->n_ops)
        return 0;
    for (size_t i = 0; i < a->n_ops; i++)
        if (!op_eq(&a->ops[i], &b->ops[i])) return 0;
    return 1;
}

static int entry_eq(const tn_entry *a, const tn_entry *b)
{
    return bytes_eq(a->key, a->key_len, b->key, b->key_len) &&
           opt_bytes_eq(a->value, a->value_len, b->value, b->value_len) && a->is_dir == b->is_dir &&
           a->create_rev == b->create_rev && a->update_rev == b->update_rev &&
           a->create_time == b->create_time && a->update_time == b->update_time && a->ttl_ms == b->ttl_ms &&
           a->owner == b->owner;
}

static int resp_eq(const tn_resp *a, const tn_resp *b)
{
    if (a->req_id != b->req_id || a->code != b->code || a->revision != b->revision ||
        !bytes_eq(a->leader_hint, a->leader_hint_len, b->leader_hint, b->leader_hint_len) ||
        !bytes_eq(a->message, a->message_len, b->message, b->message_len) || a->n_results != b->n_results)
        return 0;
    for (size_t i = 0; i < a->n_results; i++) {
        const tn_result *x = &a->results[i], *y = &b->results[i];
        if (x->code != y->code || x->n_entries != y->n_entries ||
            !opt_bytes_eq(x->blob, x->blob_len, y->blob, y->blob_len))
            return 0;
        for (size_t j = 0; j < x->n_entries; j++)
            if (!entry_eq(&x->entries[j], &y->entries[j])) return 0;
    }
    return 1;
}

static void req_roundtrip(const uint8_t *data, size_t size)
{
    tn_req a, b;
    int rc = tn_req_decode(data, size, &a);
    check(rc == TN_SUCCESS || rc == TN_BAD_REQUEST || rc == TN_NOMEM);
    if (rc != TN_SUCCESS) {
        check(a.ops == NULL && a.n_ops == 0);
        return;
    }
    tn_wr w;
    tn_wr_init(&w);
    check(tn_req_encode(&a, &w) == TN_SUCCESS);
    check(w.len <= size); /* re-encoding is canonical: never longer than the input */
    check(tn_req_decode(w.p, w.len, &b) == TN_SUCCESS);
    check(req_eq(&a, &b));
    int any_write = 0;
    for (size_t i = 0; i < a.n_ops; i++) any_write |= a.ops[i].opcode >= 32;
    check(tn_req_is_write(&a) == any_write);
    tn_req_clear(&b);
    tn_req_clear(&a);
    tn_wr_free(&w);
}

/* NUL-terminated copy of a decoded text field (the builder takes C strings). */
static char *text_dup(const uint8_t *p, size_t len)
{
    char *s = (char *)malloc(len + 1);
    if (!s) abort();
    if (len) memcpy(s, p, len);
    s[len] = 0;
    return s;
}

static void resp_roundtrip(const uint8_t *data, size_t size)
{
    tn_resp a, b;
    int rc = tn_resp_decode(data, size, &a);
    check(rc == TN_SUCCESS || rc == TN_BAD_REQUEST || rc == TN_NOMEM);
    if (rc != TN_SUCCESS) {
        check(a.results == NULL && a.n_results == 0);
        return;
    }
    char *hint = text_dup(a.leader_hint, a.leader_hint_len);
    char *msg = text_dup(a.message, a.message_len);
    tn_wr w;
    tn_wr_init(&w);
    tn_resp_builder bld;
    tn_resp_begin(&bld, &w, a.req_id, a.code, a.revision, hint, msg);
    for (size_t i = 0; i < a.n_results; i++) {
        tn_resp_result_begin(&bld, a.results[i].code);
        for (size_t j = 0; j < a.results[i].n_entries; j++) tn_resp_entry(&bld, &a.results[i].entries[j]);
        if (a.results[i].blob) tn_resp_blob(&bld, a.results[i].blob, a.results[i].blob_len);
    }
    check(tn_resp_finish(&bld) == TN_SUCCESS);
    check(tn_resp_decode(w.p, w.len, &b) == TN_SUCCESS);
    check(resp_eq(&a, &b));
    tn_resp_clear(&b);
    tn_resp_clear(&a);
    tn_wr_free(&w);
    free(hint);
    free(msg);
}

static void cmd_roundtrip(const uint8_t *data, size_t size)
{
    tn_cmd a, b;
    int rc = tn_cmd_decode(data, size, &a);
    check(rc == TN_SUCCESS || rc == TN_BAD_REQUEST);
    if (rc != TN_SUCCESS) {
        check(a.req == NULL && a.req_len == 0);
        return;
    }
    check(a.req_len > 0 && a.req >= data && a.req + a.req_len == data + size);
    tn_wr w;
    tn_wr_init(&w);
    check(tn_cmd_encode(a.time_ms, a.owner, a.req, a.req_len, &w) == TN_SUCCESS);
    check(tn_cmd_decode(w.p, w.len, &b) == TN_SUCCESS);
    check(a.time_ms == b.time_ms && a.owner == b.owner && bytes_eq(a.req, a.req_len, b.req, b.req_len));
    tn_wr_free(&w);
    req_roundtrip(a.req, a.req_len); /* what the state machine does next */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    req_roundtrip(data, size);
    resp_roundtrip(data, size);
    cmd_roundtrip(data, size);
    return 0;
}
