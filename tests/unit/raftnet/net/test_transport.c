/* test_transport.c — the node transport (raftnet/net/transport.h) over real nng on 127.0.0.1.
 *
 * Client side: 200 requests in flight at once, answered late and in reverse order from another thread;
 * token mismatch answered UNAUTHORIZED and never delivered; malformed envelopes dropped while the
 * server keeps working; close with requests still pending. Peer side: two transports stream messages to
 * each other, in order, with more than one in flight; a full queue drops instead of blocking; token
 * mismatch rejected; peers changed at run time. TLS: a round trip with the right CA, none with a wrong one.
 * The envelope codec itself (proto/envelope.h) is test_envelope.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "helper_net.h"
#include "transport.h"
#include "wire.h"

#define MAX_PENDING 512
#define MAX_FROM 4

/* ---------------------------------------------------------------- a test node */

typedef struct node {
    tn_transport *t;
    char url[64];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* client requests waiting for an answer */
    tn_pending *pend[MAX_PENDING];
    uint64_t pend_req_id[MAX_PENDING];
    size_t n_pend;
    uint64_t client_calls;
    int answer_inline; /* answer inside on_client instead of queueing */
    int bad_requests;  /* requests that did not decode */
    /* peer messages: payload = u32 index, expected 0, 1, 2, ... per sender */
    uint64_t peer_from[MAX_FROM];
    uint32_t peer_next[MAX_FROM];
    uint64_t peer_count[MAX_FROM];
    int peer_out_of_order;
    uint32_t peer_log[64]; /* payload indexes in delivery order (first 64) */
    int n_peer_log;
    int logs;
} node;

static void answer(tn_pending *p, uint64_t req_id, int *failures)
{
    char msg[64];
    tn_wr w;
    tn_wr_init(&w);
    snprintf(msg, sizeof msg, "echo %llu", (unsigned long long)req_id);
    if (tn_resp_error(&w, req_id, TN_SUCCESS, NULL, msg) != TN_SUCCESS || tn_pending_reply(p, w.p, w.len) != TN_SUCCESS)
        (*failures)++;
    tn_wr_free(&w);
}

static void on_client(void *arg, tn_pending *p, const uint8_t *req, size_t len)
{
    node *n = arg;
    tn_req r;
    uint64_t req_id = 0;
    int failures = 0;
    pthread_mutex_lock(&n->mu);
    if (tn_req_decode(req, len, &r) == TN_SUCCESS) {
        req_id = r.req_id;
        tn_req_clear(&r);
    } else {
        n->bad_requests++;
    }
    n->client_calls++;
    if (!n->answer_inline && n->n_pend < MAX_PENDING) {
        n->pend[n->n_pend] = p;
        n->pend_req_id[n->n_pend++] = req_id;
        pthread_cond_broadcast(&n->cv);
        p = NULL;
    }
    pthread_mutex_unlock(&n->mu);
    if (p) answer(p, req_id, &failures);
    if (failures) {
        pthread_mutex_lock(&n->mu);
        n->bad_requests += failures;
        pthread_mutex_unlock(&n->mu);
    }
}

static void on_peer(void *arg, uint64_t from, const uint8_t *msg, size_t len)
{
    node *n = arg;
    pthread_mutex_lock(&n->mu);
    int i = 0;
    while (i < MAX_FROM && n->peer_from[i] && n->peer_from[i] != from) i++;
    if (i < MAX_FROM && len == 4) {
        n->peer_from[i] = from;
        uint32_t idx = (uint32_t)msg[0] | (uint32_t)msg[1] << 8 | (uint32_t)msg[2] << 16 | (uint32_t)msg[3] << 24;
        if (idx != n->peer_next[i]) n->peer_out_of_order++;
        if (n->n_peer_log < 64) n->peer_log[n->n_peer_log++] = idx;
        n->peer_next[i] = idx + 1;
        n->peer_count[i]++;
        pthread_cond_broadcast(&n->cv);
    } else {
        n->peer_out_of_order++;
    }
    pthread_mutex_unlock(&n->mu);
}

static void on_log(void *arg, const char *line)
{
    node *n = arg;
    pthread_mutex_lock(&n->mu);
    n->logs++;
    pthread_mutex_unlock(&n->mu);
    (void)line;
}

static uint64_t peer_count_from(node *n, uint64_t from)
{
    uint64_t c = 0;
    pthread_mutex_lock(&n->mu);
    for (int i = 0; i < MAX_FROM; i++)
        if (n->peer_from[i] == from) c = n->peer_count[i];
    pthread_mutex_unlock(&n->mu);
    return c;
}

typedef struct node_cfg {
    uint64_t id;
    const char *token;
    const tn_tls_opts *tls;
    const char *scheme;
    unsigned n_contexts, window, queue_max;
    int listen;
    int peer_timeout_ms; /* 0: 1000 */
} node_cfg;

static void node_start(node *n, const node_cfg *c)
{
    char err[256];
    memset(n, 0, sizeof *n);
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    tn_transport_opts o;
    memset(&o, 0, sizeof o);
    o.self_id = c->id;
    if (c->listen) {
        assert_non_null(tn_test_url(n->url, sizeof n->url, c->scheme ? c->scheme : "tcp"));
        o.listen_url = n->url;
    }
    if (c->token) {
        o.token = (const uint8_t *)c->token;
        o.token_len = strlen(c->token);
    }
    if (c->tls) o.tls = *c->tls;
    o.n_contexts = c->n_contexts;
    o.peer_window = c->window;
    o.peer_queue_max = c->queue_max;
    o.peer_timeout_ms = c->peer_timeout_ms ? c->peer_timeout_ms : 1000;
    o.on_client = on_client;
    o.on_peer = on_peer;
    o.on_log = on_log;
    o.arg = n;
    int rc = tn_transport_open(&o, &n->t, err, sizeof err);
    if (rc != TN_SUCCESS) fail_msg("tn_transport_open: %s (%s)", err, tn_code_name(rc));
}

static void node_stop(node *n)
{
    tn_transport_close(n->t);
    n->t = NULL;
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
}

/* Waits (bounded) until pred(n) holds; returns whether it did. */
static int wait_for(node *n, int (*pred)(node *, uint64_t), uint64_t arg, int timeout_ms)
{
    long long until = tn_test_now_ms() + timeout_ms;
    int ok;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        ok = pred(n, arg);
        pthread_mutex_unlock(&n->mu);
        if (ok || tn_test_now_ms() >= until) return ok;
        nng_msleep(2);
    }
}

static int has_pending(node *n, uint64_t want) { return n->n_pend >= want; }

/* ---------------------------------------------------------------- a raw nng client */

static void encode_get(uint64_t req_id, const char *token, tn_wr *env)
{
    tn_op op;
    tn_req r;
    tn_wr w;
    memset(&op, 0, sizeof op);
    memset(&r, 0, sizeof r);
    op.opcode = TN_OP_KV_GET;
    op.key = (const uint8_t *)"k";
    op.key_len = 1;
    r.req_id = req_id;
    r.n_ops = 1;
    r.ops = &op;
    tn_wr_init(&w);
    assert_int_equal(tn_req_encode(&r, &w), TN_SUCCESS);
    tn_wr_init(env);
    assert_int_equal(tn_env_encode_client(env, token, token ? strlen(token) : 0, w.p, w.len), TN_SUCCESS);
    tn_wr_free(&w);
}

static nng_socket client_socket(const char *url, const tn_tls_opts *tls)
{
    nng_socket s;
    nng_dialer d;
    char err[256];
    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(nng_dialer_create(&d, s, url), 0);
    if (tls) assert_int_equal(tn_tls_setup_dialer(d, url, tls, err, sizeof err), TN_SUCCESS);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 10);
    assert_int_equal(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
    return s;
}

/* One exchange on a fresh context: 0 and *reply, or the nng error. */
static int raw_call(nng_socket s, const void *bytes, size_t len, int timeout_ms, nng_msg **reply)
{
    nng_ctx ctx;
    nng_aio *aio;
    nng_msg *m;
    *reply = NULL;
    assert_int_equal(nng_ctx_open(&ctx, s), 0);
    assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
    assert_int_equal(nng_msg_alloc(&m, 0), 0);
    assert_int_equal(nng_msg_append(m, bytes, len), 0);
    nng_aio_set_timeout(aio, timeout_ms);
    nng_aio_set_msg(aio, m);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    int rv = nng_aio_result(aio);
    if (rv != 0) {
        nng_msg_free(m);
    } else {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
        if (rv == 0) *reply = nng_aio_get_msg(aio);
    }
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return rv;
}

/* Sends a GET and checks the echo answer. */
static void check_echo_call(nng_socket s, uint64_t req_id, const char *token)
{
    tn_wr env;
    nng_msg *reply;
    tn_resp resp;
    char want[64];
    encode_get(req_id, token, &env);
    assert_int_equal(raw_call(s, env.p, env.len, 5000, &reply), 0);
    assert_int_equal(tn_resp_decode(nng_msg_body(reply), nng_msg_len(reply), &resp), TN_SUCCESS);
    assert_int_equal(resp.code, TN_SUCCESS);
    assert_int_equal(resp.req_id, req_id);
    snprintf(want, sizeof want, "echo %llu", (unsigned long long)req_id);
    assert_int_equal(resp.message_len, strlen(want));
    assert_memory_equal(resp.message, want, strlen(want));
    tn_resp_clear(&resp);
    nng_msg_free(reply);
    tn_wr_free(&env);
}

/* ---------------------------------------------------------------- 200 in flight */

#define CLIENT_THREADS 4
#define PER_THREAD 50

typedef struct client_job {
    const char *url;
    int thread;
    int ok;
    int failures;
} client_job;

static void *client_thread(void *arg)
{
    client_job *j = arg;
    nng_socket s;
    nng_dialer d;
    nng_ctx ctx[PER_THREAD];
    nng_aio *aio[PER_THREAD];
    if (nng_req0_open(&s) != 0 || nng_dialer_create(&d, s, j->url) != 0 || nng_dialer_start(d, 0) != 0) {
        j->failures++;
        return NULL;
    }
    for (int i = 0; i < PER_THREAD; i++) {
        tn_wr env;
        nng_msg *m;
        nng_ctx_open(&ctx[i], s);
        nng_aio_alloc(&aio[i], NULL, NULL);
        encode_get((uint64_t)j->thread * 1000 + (uint64_t)i, NULL, &env);
        nng_msg_alloc(&m, 0);
        nng_msg_append(m, env.p, env.len);
        tn_wr_free(&env);
        nng_aio_set_timeout(aio[i], 10000);
        nng_aio_set_msg(aio[i], m);
        nng_ctx_send(ctx[i], aio[i]);
        nng_aio_wait(aio[i]);
        if (nng_aio_result(aio[i]) != 0) {
            nng_msg_free(m);
            j->failures++;
        }
    }
    for (int i = 0; i < PER_THREAD; i++) nng_ctx_recv(ctx[i], aio[i]); /* all 50 wait at once */
    for (int i = 0; i < PER_THREAD; i++) {
        nng_aio_wait(aio[i]);
        tn_resp r;
        uint64_t want = (uint64_t)j->thread * 1000 + (uint64_t)i;
        if (nng_aio_result(aio[i]) == 0) {
            nng_msg *m = nng_aio_get_msg(aio[i]);
            if (tn_resp_decode(nng_msg_body(m), nng_msg_len(m), &r) == TN_SUCCESS) {
                char msg[64];
                snprintf(msg, sizeof msg, "echo %llu", (unsigned long long)want);
                if (r.req_id == want && r.code == TN_SUCCESS && r.message_len == strlen(msg) &&
                    memcmp(r.message, msg, r.message_len) == 0)
                    j->ok++;
                else
                    j->failures++;
                tn_resp_clear(&r);
            } else {
                j->failures++;
            }
            nng_msg_free(m);
        } else {
            j->failures++;
        }
        nng_aio_free(aio[i]);
        nng_ctx_close(ctx[i]);
    }
    nng_close(s);
    return NULL;
}

static void test_many_in_flight(void **state)
{
    node srv;
    node_cfg c = {.id = 1, .listen = 1, .n_contexts = 256};
    node_start(&srv, &c);
    pthread_t th[CLIENT_THREADS];
    client_job jobs[CLIENT_THREADS];
    for (int i = 0; i < CLIENT_THREADS; i++) {
        jobs[i] = (client_job){.url = srv.url, .thread = i + 1};
        assert_int_equal(pthread_create(&th[i], NULL, client_thread, &jobs[i]), 0);
    }
    /* The server holds every request unanswered until all 200 are pending at once... */
    int all = wait_for(&srv, has_pending, CLIENT_THREADS * PER_THREAD, 10000);
    /* ...then answers them from this (another) thread, last first. */
    int failures = 0;
    pthread_mutex_lock(&srv.mu);
    size_t n = srv.n_pend;
    srv.n_pend = 0;
    pthread_mutex_unlock(&srv.mu);
    for (size_t i = n; i-- > 0;) answer(srv.pend[i], srv.pend_req_id[i], &failures);
    for (int i = 0; i < CLIENT_THREADS; i++) pthread_join(th[i], NULL);
    assert_true(all);
    assert_int_equal(n, CLIENT_THREADS * PER_THREAD);
    assert_int_equal(failures, 0);
    assert_int_equal(srv.bad_requests, 0);
    for (int i = 0; i < CLIENT_THREADS; i++) {
        assert_int_equal(jobs[i].failures, 0);
        assert_int_equal(jobs[i].ok, PER_THREAD);
    }
    tn_transport_stats st;
    tn_transport_stats_get(srv.t, &st);
    assert_int_equal(st.client_msgs, CLIENT_THREADS * PER_THREAD);
    node_stop(&srv);
}

/* ---------------------------------------------------------------- token */


static void test_token_mismatch(void **state)
{
    node srv;
    node_cfg c = {.id = 1, .listen = 1, .token = "s3cret"};
    node_start(&srv, &c);
    srv.answer_inline = 1;
    nng_socket s = client_socket(srv.url, NULL);
    const char *bad[] = {"wrong!", NULL, "s3cre"};
    for (int i = 0; i < 3; i++) {
        tn_wr env;
        nng_msg *reply;
        tn_resp r;
        encode_get(40 + (uint64_t)i, bad[i], &env);
        assert_int_equal(raw_call(s, env.p, env.len, 5000, &reply), 0);
        assert_int_equal(tn_resp_decode(nng_msg_body(reply), nng_msg_len(reply), &r), TN_SUCCESS);
        assert_int_equal(r.code, TN_UNAUTHORIZED);
        assert_int_equal(r.req_id, 40 + (uint64_t)i);
        tn_resp_clear(&r);
        nng_msg_free(reply);
        tn_wr_free(&env);
    }
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.client_calls, 0); /* never delivered */
    assert_true(srv.logs >= 1);
    pthread_mutex_unlock(&srv.mu);
    check_echo_call(s, 77, "s3cret");
    tn_transport_stats st;
    tn_transport_stats_get(srv.t, &st);
    assert_int_equal(st.unauthorized, 3);
    assert_int_equal(st.client_msgs, 1);
    nng_close(s);

    /* A peer with the wrong token: rejected ack, nothing delivered. */
    node other;
    node_cfg oc = {.id = 2, .token = "nope"};
    node_start(&other, &oc);
    tn_peer_addr pa = {1, srv.url};
    assert_int_equal(tn_transport_set_peers(other.t, &pa, 1), TN_SUCCESS);
    uint8_t zero[4] = {0};
    assert_int_equal(tn_transport_send_peer(other.t, 1, zero, 4), TN_SUCCESS);
    tn_peer_stats ps = {0};
    for (int i = 0; i < 2500 && ps.rejected == 0; i++) {
        nng_msleep(2);
        tn_transport_peer_stats(other.t, 1, &ps);
    }
    assert_int_equal(ps.rejected, 1);
    assert_int_equal(ps.acked, 0);
    assert_int_equal(peer_count_from(&srv, 2), 0);
    tn_transport_stats_get(srv.t, &st);
    assert_int_equal(st.unauthorized, 4);
    assert_int_equal(st.peer_msgs, 0);
    node_stop(&other);
    node_stop(&srv);
}

/* ---------------------------------------------------------------- malformed */

static void test_malformed_dropped(void **state)
{
    node srv;
    node_cfg c = {.id = 1, .listen = 1, .n_contexts = 4};
    node_start(&srv, &c);
    srv.answer_inline = 1;
    nng_socket s = client_socket(srv.url, NULL);
    nng_msg *reply;
    tn_wr env;
    encode_get(1, NULL, &env);
    const uint8_t garbage[] = "hello, node";
    uint8_t wrong_version[64];
    memcpy(wrong_version, env.p, env.len);
    wrong_version[2] = 0x7f;
    /* Nothing comes back for these: the server drops them. More of them than it has contexts. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(raw_call(s, garbage, sizeof garbage, 100, &reply), NNG_ETIMEDOUT);
        assert_int_equal(raw_call(s, env.p, 3, 100, &reply), NNG_ETIMEDOUT); /* truncated header */
        assert_int_equal(raw_call(s, wrong_version, env.len, 100, &reply), NNG_ETIMEDOUT);
    }
    tn_wr_free(&env);
    tn_transport_stats st;
    tn_transport_stats_get(srv.t, &st);
    assert_int_equal(st.malformed, 9);
    assert_int_equal(st.client_msgs, 0);
    /* A request that is a valid envelope but not a valid wire request still reaches the owner (its
     * business to answer BAD_REQUEST); and the server still works. */
    const uint8_t not_a_request[] = {'T', 'E', TN_ENV_VERSION, TN_ENV_CLIENT, 0, 'x', 'y'};
    assert_int_equal(raw_call(s, not_a_request, sizeof not_a_request, 5000, &reply), 0);
    nng_msg_free(reply);
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.bad_requests, 1);
    pthread_mutex_unlock(&srv.mu);
    check_echo_call(s, 5, NULL);
    check_echo_call(s, 6, NULL);
    pthread_mutex_lock(&srv.mu);
    assert_true(srv.logs >= 9);
    pthread_mutex_unlock(&srv.mu);
    nng_close(s);
    node_stop(&srv);
}

/* ---------------------------------------------------------------- close with pending requests */

static void test_close_with_pending(void **state)
{
    node srv;
    node_cfg c = {.id = 1, .listen = 1, .n_contexts = 16};
    node_start(&srv, &c);
    nng_socket s = client_socket(srv.url, NULL);
    nng_ctx ctx[10];
    nng_aio *aio[10];
    for (int i = 0; i < 10; i++) {
        tn_wr env;
        nng_msg *m;
        encode_get((uint64_t)i + 1, NULL, &env);
        assert_int_equal(nng_ctx_open(&ctx[i], s), 0);
        assert_int_equal(nng_aio_alloc(&aio[i], NULL, NULL), 0);
        assert_int_equal(nng_msg_alloc(&m, 0), 0);
        nng_msg_append(m, env.p, env.len);
        tn_wr_free(&env);
        nng_aio_set_msg(aio[i], m);
        nng_aio_set_timeout(aio[i], 500);
        nng_ctx_send(ctx[i], aio[i]);
        nng_aio_wait(aio[i]);
        assert_int_equal(nng_aio_result(aio[i]), 0);
        nng_ctx_recv(ctx[i], aio[i]);
    }
    assert_true(wait_for(&srv, has_pending, 10, 5000));
    /* Answer one so that the pool holds a mix of states, then close with nine unanswered. */
    int failures = 0;
    answer(srv.pend[0], srv.pend_req_id[0], &failures);
    assert_int_equal(failures, 0);
    long long t0 = tn_test_now_ms();
    node_stop(&srv); /* ASan/LSan: the held requests are freed, no callback runs after this */
    assert_true(tn_test_now_ms() - t0 < 2000);
    int answered = 0;
    for (int i = 0; i < 10; i++) {
        nng_aio_wait(aio[i]);
        if (nng_aio_result(aio[i]) == 0) {
            answered++;
            nng_msg_free(nng_aio_get_msg(aio[i]));
        }
        nng_aio_free(aio[i]);
        nng_ctx_close(ctx[i]);
    }
    assert_int_equal(answered, 1); /* the nine others were dropped: the client timed out */
    nng_close(s);
}

/* ---------------------------------------------------------------- peers */

static int got_from(node *n, uint64_t want_packed)
{
    uint64_t from = want_packed >> 32, want = want_packed & 0xffffffffu;
    for (int i = 0; i < MAX_FROM; i++)
        if (n->peer_from[i] == from) return n->peer_count[i] >= want;
    return 0;
}

typedef struct sender_job {
    tn_transport *t;
    uint64_t to;
    uint32_t n;
    int failures;
} sender_job;

static void *sender_thread(void *arg)
{
    sender_job *j = arg;
    for (uint32_t i = 0; i < j->n; i++) {
        uint8_t b[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};
        if (tn_transport_send_peer(j->t, j->to, b, 4) != TN_SUCCESS) j->failures++;
    }
    return NULL;
}

#define PEER_MSGS 3000u

static void test_peers_ordered_pipelined(void **state)
{
    node a, b;
    /* A generous ack timeout: on an overloaded machine a message given up would be (legitimately) lost,
     * and this test counts every message. */
    node_cfg ca = {.id = 1, .listen = 1, .window = 16, .queue_max = 8192, .peer_timeout_ms = 20000};
    node_cfg cb = {.id = 2, .listen = 1, .window = 16, .queue_max = 8192, .peer_timeout_ms = 20000};
    node_start(&a, &ca);
    node_start(&b, &cb);
    tn_peer_addr peers[2] = {{1, a.url}, {2, b.url}};
    assert_int_equal(tn_transport_set_peers(a.t, peers, 2), TN_SUCCESS); /* self (1) is ignored */
    assert_int_equal(tn_transport_set_peers(b.t, peers, 2), TN_SUCCESS);
    uint8_t x[4] = {0};
    assert_int_equal(tn_transport_send_peer(a.t, 1, x, 4), TN_NOT_FOUND);
    assert_int_equal(tn_transport_send_peer(a.t, 9, x, 4), TN_NOT_FOUND);

    /* Both directions at once, each from its own thread. */
    sender_job ja = {a.t, 2, PEER_MSGS, 0}, jb = {b.t, 1, PEER_MSGS, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, sender_thread, &ja), 0);
    assert_int_equal(pthread_create(&tb, NULL, sender_thread, &jb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(ja.failures, 0);
    assert_int_equal(jb.failures, 0);
    int b_got = wait_for(&b, got_from, (1ull << 32) | PEER_MSGS, 30000);
    int a_got = wait_for(&a, got_from, (2ull << 32) | PEER_MSGS, 30000);
    if (!a_got || !b_got) {
        tn_peer_stats sa, sb;
        tn_transport_peer_stats(a.t, 2, &sa);
        tn_transport_peer_stats(b.t, 1, &sb);
        print_message("a->b: sent %llu acked %llu failed %llu, b got %llu; b->a: sent %llu acked %llu failed %llu, "
                      "a got %llu\n", (unsigned long long)sa.sent, (unsigned long long)sa.acked,
                      (unsigned long long)sa.failed, (unsigned long long)peer_count_from(&b, 1),
                      (unsigned long long)sb.sent, (unsigned long long)sb.acked, (unsigned long long)sb.failed,
                      (unsigned long long)peer_count_from(&a, 2));
    }
    assert_true(b_got);
    assert_true(a_got);
    pthread_mutex_lock(&a.mu);
    assert_int_equal(a.peer_out_of_order, 0);
    pthread_mutex_unlock(&a.mu);
    pthread_mutex_lock(&b.mu);
    assert_int_equal(b.peer_out_of_order, 0);
    pthread_mutex_unlock(&b.mu);
    assert_int_equal(peer_count_from(&b, 1), PEER_MSGS);
    assert_int_equal(peer_count_from(&a, 2), PEER_MSGS);

    tn_peer_stats ps;
    assert_int_equal(tn_transport_peer_stats(a.t, 2, &ps), TN_SUCCESS);
    assert_int_equal(ps.sent, PEER_MSGS);
    assert_int_equal(ps.dropped, 0);
    assert_true(ps.max_inflight > 1); /* the window really pipelines */
    assert_true(ps.max_inflight <= 16);
    print_message("peer a->b: max in flight %llu of window 16\n", (unsigned long long)ps.max_inflight);
    for (int i = 0; i < 1000 && ps.acked < PEER_MSGS; i++) {
        nng_msleep(2);
        tn_transport_peer_stats(a.t, 2, &ps);
    }
    assert_int_equal(ps.acked, PEER_MSGS);
    assert_int_equal(ps.failed, 0);
    tn_transport_stats st;
    tn_transport_stats_get(a.t, &st);
    assert_int_equal(st.peer_dups, 0);
    tn_transport_stats_get(b.t, &st);
    assert_int_equal(st.peer_msgs, PEER_MSGS);
    assert_int_equal(st.peer_dups, 0);
    print_message("peer a->b: %llu of %u messages overtook a predecessor and were put back in order\n",
                  (unsigned long long)st.peer_held, PEER_MSGS);

    /* Membership change: peer 2 moves to a new node c; a keeps sending. */
    node c3;
    node_cfg cc = {.id = 2, .listen = 1};
    node_start(&c3, &cc);
    tn_peer_addr moved[2] = {{1, a.url}, {2, c3.url}};
    assert_int_equal(tn_transport_set_peers(a.t, moved, 2), TN_SUCCESS);
    sender_job jc = {a.t, 2, 100, 0};
    sender_thread(&jc);
    assert_int_equal(jc.failures, 0);
    assert_true(wait_for(&c3, got_from, (1ull << 32) | 100, 10000));
    pthread_mutex_lock(&c3.mu);
    assert_int_equal(c3.peer_out_of_order, 0);
    pthread_mutex_unlock(&c3.mu);
    assert_int_equal(peer_count_from(&b, 1), PEER_MSGS); /* nothing more to the old address */
    /* Removing every peer. */
    assert_int_equal(tn_transport_set_peers(a.t, NULL, 0), TN_SUCCESS);
    assert_int_equal(tn_transport_send_peer(a.t, 2, x, 4), TN_NOT_FOUND);
    tn_peer_addr dup[2] = {{3, a.url}, {3, b.url}};
    assert_int_equal(tn_transport_set_peers(a.t, dup, 2), TN_BAD_REQUEST);
    node_stop(&c3);
    node_stop(&a);
    node_stop(&b);
}

/* Sends one crafted PEER envelope (payload: u32 seq - 1) and checks the ack. */
static void send_crafted(nng_socket s, uint64_t stream, uint64_t seq, uint64_t low)
{
    tn_wr w;
    size_t low_at;
    nng_msg *reply;
    uint32_t idx = (uint32_t)(seq - 1);
    uint8_t b[4] = {(uint8_t)idx, (uint8_t)(idx >> 8), (uint8_t)(idx >> 16), (uint8_t)(idx >> 24)};
    tn_wr_init(&w);
    assert_int_equal(tn_env_encode_peer(&w, NULL, 0, 7, stream, seq, low, b, 4, &low_at), TN_SUCCESS);
    assert_int_equal(raw_call(s, w.p, w.len, 5000, &reply), 0);
    assert_int_equal(nng_msg_len(reply), TN_ACK_SIZE);
    assert_int_equal(((uint8_t *)nng_msg_body(reply))[3], TN_ACK_OK);
    nng_msg_free(reply);
    tn_wr_free(&w);
}

/* The receiver's ordering rules, driven message by message. */
static void test_peer_ordering_rules(void **state)
{
    node n;
    node_cfg c = {.id = 1, .listen = 1};
    node_start(&n, &c);
    nng_socket s = client_socket(n.url, NULL);
    send_crafted(s, 100, 2, 1); /* overtook seq 1: held */
    pthread_mutex_lock(&n.mu);
    assert_int_equal(n.n_peer_log, 0);
    pthread_mutex_unlock(&n.mu);
    send_crafted(s, 100, 1, 1); /* the gap fills: 1 then 2 */
    send_crafted(s, 100, 2, 1); /* duplicate: dropped */
    send_crafted(s, 100, 4, 3); /* 3 still in flight: held */
    send_crafted(s, 100, 5, 5); /* the sender gave 3 and 4 up... but 4 arrived: 4, then 5 */
    send_crafted(s, 100, 3, 3); /* 3 after all, too late: dropped */
    send_crafted(s, 200, 10, 10); /* a new stream (sender restarted): starts over at its low */
    send_crafted(s, 200, 11, 10);
    tn_transport_stats st;
    tn_transport_stats_get(n.t, &st);
    assert_int_equal(st.peer_msgs, 6);
    assert_int_equal(st.peer_dups, 2);
    assert_int_equal(st.peer_held, 2);
    const uint32_t want[] = {0, 1, 3, 4, 9, 10};
    pthread_mutex_lock(&n.mu);
    assert_int_equal(n.n_peer_log, 6);
    assert_memory_equal(n.peer_log, want, sizeof want);
    pthread_mutex_unlock(&n.mu);
    nng_close(s);
    node_stop(&n);
}

static void test_queue_bound_drops(void **state)
{
    node a;
    char dead[64];
    node_cfg ca = {.id = 1, .window = 2, .queue_max = 8};
    node_start(&a, &ca);
    assert_non_null(tn_test_url(dead, sizeof dead, "tcp")); /* nobody listens there */
    tn_peer_addr pa = {2, dead};
    assert_int_equal(tn_transport_set_peers(a.t, &pa, 1), TN_SUCCESS);
    int ok = 0, dropped = 0;
    uint8_t big[64 * 1024] = {0};
    long long t0 = tn_test_now_ms();
    for (int i = 0; i < 1000; i++) {
        int rc = tn_transport_send_peer(a.t, 2, big, sizeof big);
        if (rc == TN_SUCCESS) ok++;
        else if (rc == TN_UNAVAILABLE) dropped++;
    }
    long long took = tn_test_now_ms() - t0;
    assert_true(took < 1000); /* never blocked on the dead peer */
    assert_int_equal(ok + dropped, 1000);
    assert_true(ok <= 8 + 2); /* queue plus window */
    assert_true(ok >= 8);
    tn_peer_stats ps;
    assert_int_equal(tn_transport_peer_stats(a.t, 2, &ps), TN_SUCCESS);
    assert_int_equal(ps.dropped, (uint64_t)dropped);
    assert_true(ps.queued <= 8);
    node_stop(&a); /* queued messages are freed (LSan) */
}

/* ---------------------------------------------------------------- TLS */

static void test_tls(void **state)
{
    char dir[64], ca[128], cert[128], key[128], ccert[128], ckey[128], other[128];
    if (access("/usr/bin/openssl", X_OK) != 0) {
        print_message("openssl not found at /usr/bin/openssl: TLS test skipped\n");
        skip();
    }
    assert_int_equal(tn_test_tmpdir(dir, sizeof dir), 0);
    assert_int_equal(tn_test_make_certs(dir), 0);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(ccert, sizeof ccert, "%s/client.pem", dir);
    snprintf(ckey, sizeof ckey, "%s/client.key", dir);
    snprintf(other, sizeof other, "%s/other-ca.pem", dir);

    /* Two nodes on tls+tcp:// with mutual authentication; peers dial with the CA and their own cert. */
    tn_tls_opts tls = {.cert_file = cert, .key_file = key, .ca_file = ca, .require_client_cert = 1};
    node a, b;
    node_cfg ca_cfg = {.id = 1, .listen = 1, .scheme = "tls+tcp", .tls = &tls};
    node_cfg cb_cfg = {.id = 2, .listen = 1, .scheme = "tls+tcp", .tls = &tls};
    node_start(&a, &ca_cfg);
    node_start(&b, &cb_cfg);
    a.answer_inline = 1;
    tn_peer_addr peers[2] = {{1, a.url}, {2, b.url}};
    assert_int_equal(tn_transport_set_peers(b.t, peers, 2), TN_SUCCESS);
    sender_job jb = {b.t, 1, 50, 0};
    sender_thread(&jb);
    assert_int_equal(jb.failures, 0);
    assert_true(wait_for(&a, got_from, (2ull << 32) | 50, 10000));

    /* A client with the right CA and a client certificate: round trip works. */
    tn_tls_opts good = {.ca_file = ca, .cert_file = ccert, .key_file = ckey};
    nng_socket s = client_socket(a.url, &good);
    check_echo_call(s, 11, NULL);
    nng_close(s);

    /* A client trusting another CA never gets through: the handshake fails, so no connection ever takes the
     * request and the send times out (a connection that took it and then failed would say otherwise). */
    tn_wr env;
    nng_msg *reply;
    tn_tls_opts wrong = {.ca_file = other, .cert_file = ccert, .key_file = ckey};
    encode_get(12, NULL, &env);
    s = client_socket(a.url, &wrong);
    assert_int_equal(raw_call(s, env.p, env.len, 300, &reply), NNG_ETIMEDOUT);
    assert_null(reply);
    nng_close(s);
    /* Nor does a client without a certificate, since this listener requires one. */
    tn_tls_opts nocert = {.ca_file = ca};
    s = client_socket(a.url, &nocert);
    assert_int_equal(raw_call(s, env.p, env.len, 300, &reply), NNG_ETIMEDOUT);
    assert_null(reply);
    nng_close(s);
    /* A plain tcp:// client cannot talk to a tls+tcp:// listener either. */
    char plain[80];
    snprintf(plain, sizeof plain, "tcp://%.60s", a.url + strlen("tls+tcp://"));
    s = client_socket(plain, NULL);
    assert_int_equal(raw_call(s, env.p, env.len, 300, &reply), NNG_ETIMEDOUT);
    assert_null(reply);
    nng_close(s);
    tn_wr_free(&env);
    /* none of them reached the node: the one call it served is the good client's */
    pthread_mutex_lock(&a.mu);
    assert_int_equal(a.client_calls, 1);
    assert_int_equal(a.bad_requests, 0);
    pthread_mutex_unlock(&a.mu);

    /* Misconfiguration is refused up front with a reason. */
    char err[256];
    tn_transport *t = NULL;
    tn_tls_opts nokey = {.cert_file = cert};
    char url[64];
    assert_non_null(tn_test_url(url, sizeof url, "tls+tcp"));
    tn_transport_opts o = {.self_id = 5, .listen_url = url, .tls = nokey};
    assert_int_equal(tn_transport_open(&o, &t, err, sizeof err), TN_BAD_REQUEST);
    assert_null(t);
    assert_non_null(strstr(err, "certificate and a key"));
    tn_tls_opts missing = {.cert_file = "/nonexistent.pem", .key_file = key};
    o.tls = missing;
    assert_int_equal(tn_transport_open(&o, &t, err, sizeof err), TN_BAD_REQUEST);
    assert_non_null(strstr(err, "/nonexistent.pem"));

    node_stop(&a);
    node_stop(&b);
    tn_test_rmdir(dir);
}

static void test_listen_errors(void **state)
{
    char err[256];
    tn_transport *t = NULL;
    node srv;
    node_cfg c = {.id = 1, .listen = 1};
    node_start(&srv, &c);
    tn_transport_opts o = {.self_id = 2, .listen_url = srv.url}; /* address in use */
    assert_int_equal(tn_transport_open(&o, &t, err, sizeof err), TN_UNAVAILABLE);
    assert_null(t);
    assert_non_null(strstr(err, srv.url));
    o.listen_url = "bogus://x";
    assert_int_equal(tn_transport_open(&o, &t, err, sizeof err), TN_BAD_REQUEST);
    assert_null(t);
    assert_non_null(strstr(err, "cannot listen on 'bogus://x'"));
    node_stop(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_in_flight),
        cmocka_unit_test(test_token_mismatch),
        cmocka_unit_test(test_malformed_dropped),
        cmocka_unit_test(test_close_with_pending),
        cmocka_unit_test(test_peers_ordered_pipelined),
        cmocka_unit_test(test_peer_ordering_rules),
        cmocka_unit_test(test_queue_bound_drops),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_listen_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* nng frees closed sockets on a background reaper; nng_fini waits for it and releases nng's global
     * state, so that LeakSanitizer sees only what we leaked ourselves. */
    nng_fini();
    return failed;
}
