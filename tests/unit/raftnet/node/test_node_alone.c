/* test_node_alone.c — a raftnet node alone in the process (no transport, node.h "ALONE"): in memory, requests
 * through tn_node_submit, reads on the caller's thread, refusals of a bad config and of requests after stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "node.h"
#include "status.h"
#include "tn_code.h"
#include "wire.h"

typedef struct reply {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    tn_wr out;
} reply;

static void on_reply(void *arg, const uint8_t *resp, size_t len)
{
    reply *r = arg;
    pthread_mutex_lock(&r->mu);
    tn_wr_raw(&r->out, resp, len);
    r->done = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Submits one op and decodes the answer into *resp (caller clears it). */
static void submit1(tn_node *n, tn_op op, tn_resp *resp)
{
    tn_req req = {.req_id = 77, .n_ops = 1, .ops = &op};
    tn_wr reqb;
    reply r = {.done = 0};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    tn_wr_init(&r.out);
    tn_wr_init(&reqb);
    assert_int_equal(tn_req_encode(&req, &reqb), TN_SUCCESS);
    tn_node_submit(n, reqb.p, reqb.len, 5, on_reply, &r);
    pthread_mutex_lock(&r.mu);
    while (!r.done) pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(tn_resp_decode(r.out.p, r.out.len, resp), TN_SUCCESS);
    assert_int_equal(resp->req_id, 77);
    tn_wr_free(&reqb);
    tn_wr_free(&r.out);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
}

static tn_op kv(int opcode, const char *k, const char *v)
{
    tn_op op = {.opcode = (uint8_t)opcode, .key = (const uint8_t *)k, .key_len = strlen(k)};
    if (v) {
        op.value = (const uint8_t *)v;
        op.value_len = strlen(v);
    }
    return op;
}

static tn_node *start_alone(void)
{
    tn_node_config cfg;
    char err[256];
    tn_node *n;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = 1;
    assert_int_equal(tn_node_open(&cfg, &n, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_node_start(n, err, sizeof err), TN_SUCCESS);
    for (int i = 0; i < 5000 && !tn_node_local_ready(n); i++) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(tn_node_local_ready(n));
    return n;
}

static void test_in_memory_write_then_read(void **state)
{
    (void)state;
    tn_node *n = start_alone();
    tn_resp resp;
    submit1(n, kv(TN_OP_KV_PUT, "k", "hello"), &resp);
    assert_int_equal(resp.code, TN_SUCCESS);
    assert_int_equal(resp.results[0].code, TN_SUCCESS);
    uint64_t rev = resp.revision;
    tn_resp_clear(&resp);
    assert_true(rev >= 2); /* after the leader's no-op */
    assert_int_equal(tn_node_applied(n), rev);

    /* a linearizable read through the loop (ReadIndex on a single voter) */
    submit1(n, kv(TN_OP_KV_GET, "k", NULL), &resp);
    assert_int_equal(resp.code, TN_SUCCESS);
    assert_int_equal(resp.results[0].n_entries, 1);
    assert_int_equal(resp.results[0].entries[0].value_len, 5);
    assert_memory_equal(resp.results[0].entries[0].value, "hello", 5);
    assert_int_equal(resp.results[0].entries[0].update_rev, rev);
    tn_resp_clear(&resp);

    /* the same read on the caller's thread */
    tn_op get = kv(TN_OP_KV_GET, "k", NULL);
    tn_req req = {.req_id = 9, .n_ops = 1, .ops = &get};
    tn_wr out;
    int served = 0;
    tn_wr_init(&out);
    assert_int_equal(tn_node_read_local(n, &req, &out, &served), TN_SUCCESS);
    assert_int_equal(served, 1);
    assert_int_equal(tn_resp_decode(out.p, out.len, &resp), TN_SUCCESS);
    assert_int_equal(resp.results[0].n_entries, 1);
    assert_memory_equal(resp.results[0].entries[0].value, "hello", 5);
    tn_resp_clear(&resp);
    tn_wr_free(&out);

    /* temp nodes belong to the submitter's owner when the request has no client_id */
    tn_op t = kv(TN_OP_KV_PUT_TEMP, "t", "x");
    t.ttl_ms = 60000;
    submit1(n, t, &resp);
    assert_int_equal(resp.results[0].code, TN_SUCCESS);
    tn_resp_clear(&resp);
    submit1(n, kv(TN_OP_KV_GET, "t", NULL), &resp);
    assert_int_equal(resp.results[0].n_entries, 1);
    assert_int_equal(resp.results[0].entries[0].owner, 5);
    tn_resp_clear(&resp);

    /* membership changes make no sense alone; a snapshot needs a data directory */
    tn_admin a = {.kind = TN_ADMIN_ADD_VOTER, .node = 2, .url = "tcp://127.0.0.1:1", .url_len = 17};
    tn_wr ab;
    tn_wr_init(&ab);
    tn_admin_encode(&a, &ab);
    tn_op admin = {.opcode = TN_OP_ADMIN, .value = ab.p, .value_len = ab.len};
    submit1(n, admin, &resp);
    assert_int_equal(resp.code, TN_BAD_REQUEST);
    tn_resp_clear(&resp);
    ab.len = 0;
    a.kind = TN_ADMIN_SNAPSHOT;
    tn_admin_encode(&a, &ab);
    admin.value = ab.p;
    admin.value_len = ab.len;
    submit1(n, admin, &resp);
    assert_int_equal(resp.code, TN_BAD_REQUEST);
    tn_resp_clear(&resp);
    tn_wr_free(&ab);

    assert_int_equal(tn_node_stop(n), TN_SUCCESS);
    /* after stop, a request is answered at once */
    submit1(n, kv(TN_OP_KV_GET, "k", NULL), &resp);
    assert_int_equal(resp.code, TN_UNAVAILABLE);
    tn_resp_clear(&resp);
    tn_node_close(n);
}

static void test_alone_refuses_peers(void **state)
{
    (void)state;
    tn_node_config cfg;
    char err[256] = "";
    tn_node *n = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = 1;
    cfg.peers[0] = (tn_peer_addr){2, "tcp://127.0.0.1:1"};
    cfg.n_peers = 1;
    assert_int_equal(tn_node_open(&cfg, &n, err, sizeof err), TN_BAD_REQUEST);
    assert_null(n);
    assert_non_null(strstr(err, "alone"));
    /* a daemon (with a listen URL) still needs a data directory */
    cfg.n_peers = 0;
    cfg.listen_url = "tcp://127.0.0.1:1";
    assert_int_equal(tn_node_open(&cfg, &n, err, sizeof err), TN_BAD_REQUEST);
    assert_null(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_memory_write_then_read),
        cmocka_unit_test(test_alone_refuses_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
