/* test_node.c — raftnet/node/node.h in one process: three nodes elect, replicate, answer linearizable and
 * stale reads, dedupe a retried write, report STATUS, stop cleanly and recover from their data directories;
 * bad configurations and corrupt state refuse to open with a message. (A node alone: test_node_alone.c.
 * Multi-process faults: tests/python/test_cluster.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "helper_net.h"
#include "node.h"
#include "status.h"
#include "tn_code.h"
#include "transport.h"
#include "wire.h"

#define N 3

typedef struct cluster {
    char dir[64];
    char data[N][128];
    char url[N][64];
    tn_node_config cfg[N];
    tn_node *node[N];
} cluster;

static void cluster_open(cluster *c, int fresh)
{
    char err[512];
    if (fresh) {
        assert_int_equal(tn_test_tmpdir(c->dir, sizeof c->dir), 0);
        for (int i = 0; i < N; i++) {
            assert_non_null(tn_test_url(c->url[i], sizeof c->url[i], "tcp"));
            snprintf(c->data[i], sizeof c->data[i], "%s/n%d", c->dir, i + 1);
        }
    }
    for (int i = 0; i < N; i++) {
        tn_node_config *cfg = &c->cfg[i];
        memset(cfg, 0, sizeof *cfg);
        cfg->id = (uint64_t)i + 1;
        cfg->listen_url = c->url[i];
        cfg->data_dir = c->data[i];
        cfg->election_ticks = 10;
        cfg->heartbeat_ticks = 2;
        for (int k = 0; k < N; k++) cfg->peers[k] = (tn_peer_addr){(uint64_t)k + 1, c->url[k]};
        cfg->n_peers = N;
        assert_int_equal(tn_node_open(cfg, &c->node[i], err, sizeof err), TN_SUCCESS);
        assert_int_equal(tn_node_start(c->node[i], err, sizeof err), TN_SUCCESS);
    }
}

static void cluster_stop(cluster *c)
{
    for (int i = 0; i < N; i++) {
        assert_int_equal(tn_node_stop(c->node[i]), TN_SUCCESS);
        tn_node_close(c->node[i]);
        c->node[i] = NULL;
    }
}

/* One request to url; the decoded response goes to *resp (its bytes to *buf: nng_free(*buf, *blen)).
 * 0, or -1 when no answer came. */
static int call(const char *url, const tn_req *req, tn_resp *resp, void **buf, size_t *blen)
{
    nng_socket s;
    tn_wr rb, env;
    int rc = -1;
    tn_wr_init(&rb);
    tn_wr_init(&env);
    assert_int_equal(tn_req_encode(req, &rb), TN_SUCCESS);
    assert_int_equal(tn_env_encode_client(&env, NULL, 0, rb.p, rb.len), TN_SUCCESS);
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 1000);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 6000);
    if (nng_dial(s, url, NULL, 0) == 0 && nng_send(s, env.p, env.len, 0) == 0 &&
        nng_recv(s, buf, blen, NNG_FLAG_ALLOC) == 0) {
        assert_int_equal(tn_resp_decode(*buf, *blen, resp), TN_SUCCESS);
        rc = 0;
    }
    nng_close(s);
    tn_wr_free(&rb);
    tn_wr_free(&env);
    return rc;
}

/* Sends req to node i until it is not answered NOT_LEADER/TIMEOUT/UNAVAILABLE (bounded); returns the
 * overall code and the first result's code and revision. */
static int call_until(cluster *c, int i, const tn_req *req, int *op_code, uint64_t *rev, char *val, size_t cap)
{
    long long deadline = tn_test_now_ms() + 15000;
    int code = TN_TIMEOUT;
    while (tn_test_now_ms() < deadline) {
        tn_resp r;
        void *buf;
        size_t blen;
        if (call(c->url[i], req, &r, &buf, &blen) != 0) continue;
        code = r.code;
        if (code == TN_SUCCESS) {
            if (op_code) *op_code = r.n_results ? r.results[0].code : -1;
            if (rev) *rev = r.revision;
            if (val && r.n_results && r.results[0].n_entries) {
                const tn_entry *e = &r.results[0].entries[0];
                size_t n = e->value_len < cap - 1 ? e->value_len : cap - 1;
                memcpy(val, e->value, n);
                val[n] = 0;
            }
        }
        tn_resp_clear(&r);
        nng_free(buf, blen);
        if (code != TN_NOT_LEADER && code != TN_TIMEOUT && code != TN_UNAVAILABLE) break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return code;
}

static int put(cluster *c, int i, const char *k, const char *v, uint64_t client, uint64_t seq, uint64_t *rev)
{
    tn_op op = {.opcode = TN_OP_KV_PUT, .key = (const uint8_t *)k, .key_len = strlen(k),
                .value = (const uint8_t *)v, .value_len = strlen(v)};
    tn_req req = {.req_id = seq, .client_id = client, .seq = seq, .n_ops = 1, .ops = &op};
    int op_code = -1;
    assert_int_equal(call_until(c, i, &req, &op_code, rev, NULL, 0), TN_SUCCESS);
    return op_code;
}

static void expect_get(cluster *c, int i, const char *k, const char *v, int stale)
{
    tn_op op = {.opcode = TN_OP_KV_GET, .key = (const uint8_t *)k, .key_len = strlen(k)};
    tn_req req = {.req_id = 7, .read_mode = stale ? TN_READ_STALE : TN_READ_LINEARIZABLE, .n_ops = 1, .ops = &op};
    char val[64] = "";
    int op_code = -1;
    assert_int_equal(call_until(c, i, &req, &op_code, NULL, val, sizeof val), TN_SUCCESS);
    assert_int_equal(op_code, TN_SUCCESS);
    assert_string_equal(val, v);
}

static void status_of(cluster *c, int i, uint8_t *role, uint64_t *applied, size_t *members)
{
    tn_op op = {.opcode = TN_OP_STATUS};
    tn_req req = {.req_id = 9, .n_ops = 1, .ops = &op};
    tn_resp r;
    void *buf;
    size_t blen;
    tn_status st;
    assert_int_equal(call(c->url[i], &req, &r, &buf, &blen), 0);
    assert_int_equal(r.code, TN_SUCCESS);
    assert_int_equal(r.n_results, 1);
    assert_int_equal(tn_status_decode(r.results[0].blob, r.results[0].blob_len, &st), TN_SUCCESS);
    assert_int_equal(st.id, (uint64_t)i + 1);
    *role = st.role;
    *applied = st.applied;
    *members = st.n_members;
    tn_resp_clear(&r);
    nng_free(buf, blen);
}

static void test_three_nodes(void **state)
{
    (void)state;
    cluster c;
    memset(&c, 0, sizeof c);
    cluster_open(&c, 1);
    uint64_t rev1 = 0, rev2 = 0;
    assert_true(tn_code_ok(put(&c, 0, "a", "1", 77, 1, &rev1)));
    /* the same (client, seq) again, through another member: not applied again, same answer */
    assert_true(tn_code_ok(put(&c, 1, "a", "1", 77, 1, &rev2)));
    assert_int_equal(rev2, rev1);
    assert_true(tn_code_ok(put(&c, 2, "b", "2", 77, 2, NULL)));
    for (int i = 0; i < N; i++) {
        expect_get(&c, i, "a", "1", 0);
        expect_get(&c, i, "b", "2", 0);
    }
    int leaders = 0;
    for (int i = 0; i < N; i++) {
        uint8_t role;
        uint64_t applied;
        size_t members;
        status_of(&c, i, &role, &applied, &members);
        leaders += role == 3;
        assert_int_equal(members, N);
    }
    assert_int_equal(leaders, 1);
    cluster_stop(&c);

    /* everything comes back from the data directories */
    cluster_open(&c, 0);
    for (int i = 0; i < N; i++) expect_get(&c, i, "b", "2", 0);
    assert_true(tn_code_ok(put(&c, 0, "c", "3", 78, 1, NULL)));
    expect_get(&c, 0, "c", "3", 0);
    cluster_stop(&c);
    tn_test_rmdir(c.dir);
}

static void test_open_refuses_bad_config_and_corrupt_state(void **state)
{
    (void)state;
    char dir[64], url[64], err[512], path[160];
    tn_node *n = NULL;
    assert_int_equal(tn_test_tmpdir(dir, sizeof dir), 0);
    assert_non_null(tn_test_url(url, sizeof url, "tcp"));
    tn_node_config cfg = {.id = 1, .listen_url = url, .data_dir = dir, .election_ticks = 5, .heartbeat_ticks = 5};
    cfg.peers[0] = (tn_peer_addr){1, url};
    cfg.n_peers = 1;
    assert_int_equal(tn_node_open(&cfg, &n, err, sizeof err), TN_BAD_REQUEST);
    assert_null(n);
    assert_non_null(strstr(err, "heartbeat"));

    /* a hardstate file with a bad CRC: refused, naming the file */
    snprintf(path, sizeof path, "%s/hardstate", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 36; i++) fputc(i, f);
    fclose(f);
    cfg.heartbeat_ticks = 1;
    assert_int_equal(tn_node_open(&cfg, &n, err, sizeof err), TN_IO_ERROR);
    assert_null(n);
    assert_non_null(strstr(err, "hardstate"));

    /* open + close without start is fine (nothing leaks) */
    remove(path);
    assert_int_equal(tn_node_open(&cfg, &n, err, sizeof err), TN_SUCCESS);
    tn_node_close(n);
    tn_test_rmdir(dir);
}

/* A hang (seen once in ~20 runs inside nng_close of a node's listener, with three transports in one
 * process) must fail the test, not block the suite. */
static void on_alarm(int sig)
{
    static const char msg[] = "test_node: watchdog: no progress for 120 s (hang)\n";
    (void)sig;
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes),
        cmocka_unit_test(test_open_refuses_bad_config_and_corrupt_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
