/* test_cluster_client.c — the client library (ext/client/cluster.h) against fake members over real nng.
 *
 * A fake member is a node transport (raftnet/net/transport.h) whose handler plays a role: LEADER answers,
 * FOLLOWER answers NOT_LEADER (with or without a leader hint; stale reads it answers itself), SILENT
 * never answers. Checked: leader discovery from any subset of the URLs (hints add members), redirects,
 * retry after a timeout with the very same bytes (same client_id and seq), a fresh seq for the next
 * write, the total deadline and its exact message, stale-read routing, concurrent calls from several
 * threads on one client, the cluster token, TLS, and argument errors.
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
#include <sqlite3.h>

#include <nng/nng.h>

#include "cluster.h"
#include "helper_net.h"
#include "transport.h"
#include "wire.h"

enum role { LEADER, FOLLOWER, SILENT, FORWARDER };

#define MAX_SEEN 256

typedef struct fake {
    tn_transport *t;
    char url[64];
    int id;
    int role;
    const char *hint; /* FOLLOWER, FORWARDER: leader URL to hint, or NULL */
    pthread_mutex_t mu;
    int drop_first;   /* LEADER: leave this many requests unanswered first */
    int batch;        /* LEADER: hold requests until this many wait, then answer them all */
    tn_pending *held[MAX_SEEN];
    uint64_t held_req_id[MAX_SEEN];
    int n_held;
    int calls;
    int stale_answered;
    tn_wr seen[MAX_SEEN]; /* copies of the requests received */
    int n_seen;
} fake;

static void reply(tn_pending *p, uint64_t req_id, int code, const char *hint, const char *msg)
{
    tn_wr w;
    tn_wr_init(&w);
    tn_resp_error(&w, req_id, code, hint, msg);
    tn_pending_reply(p, w.p, w.len);
    tn_wr_free(&w);
}

static void fake_on_client(void *arg, tn_pending *p, const uint8_t *bytes, size_t len)
{
    fake *f = arg;
    char msg[32];
    tn_req r;
    int decoded = tn_req_decode(bytes, len, &r) == TN_SUCCESS;
    int stale_read = decoded && r.read_mode == TN_READ_STALE && !tn_req_is_write(&r);
    uint64_t req_id = decoded ? r.req_id : 0;
    if (decoded) tn_req_clear(&r);
    snprintf(msg, sizeof msg, "member %d", f->id);

    pthread_mutex_lock(&f->mu);
    f->calls++;
    if (f->n_seen < MAX_SEEN) {
        tn_wr_init(&f->seen[f->n_seen]);
        tn_wr_raw(&f->seen[f->n_seen++], bytes, len);
    }
    int hold = f->role == SILENT || (f->role == LEADER && f->drop_first > 0);
    if (f->role == LEADER && f->drop_first > 0) f->drop_first--;
    if (f->role == FOLLOWER && stale_read) f->stale_answered++;
    pthread_mutex_unlock(&f->mu);

    if (hold) return; /* never answered: the transport drops it at close */
    if (f->role == LEADER && f->batch > 0) {
        int n = 0;
        pthread_mutex_lock(&f->mu);
        f->held[f->n_held] = p;
        f->held_req_id[f->n_held++] = req_id;
        if (f->n_held == f->batch) {
            n = f->n_held;
            f->n_held = 0;
        }
        pthread_mutex_unlock(&f->mu);
        for (int i = 0; i < n; i++) reply(f->held[i], f->held_req_id[i], TN_SUCCESS, NULL, msg);
        return;
    }
    if (!decoded) reply(p, req_id, TN_BAD_REQUEST, NULL, "bad request");
    else if (f->role == LEADER || stale_read) reply(p, req_id, TN_SUCCESS, NULL, msg);
    else if (f->role == FORWARDER) reply(p, req_id, TN_SUCCESS, f->hint, msg); /* answered, names the leader */
    else reply(p, req_id, TN_NOT_LEADER, f->hint, "not the leader");
}

static void fake_start(fake *f, int id, int role, const char *token, const tn_tls_opts *tls)
{
    char err[256];
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->id = id;
    f->role = role;
    assert_non_null(tn_test_url(f->url, sizeof f->url, tls ? "tls+tcp" : "tcp"));
    tn_transport_opts o;
    memset(&o, 0, sizeof o);
    o.self_id = (uint64_t)id;
    o.listen_url = f->url;
    o.on_client = fake_on_client;
    o.arg = f;
    if (token) {
        o.token = (const uint8_t *)token;
        o.token_len = strlen(token);
    }
    if (tls) o.tls = *tls;
    int rc = tn_transport_open(&o, &f->t, err, sizeof err);
    if (rc != TN_SUCCESS) fail_msg("fake member: %s", err);
}

static void fake_stop(fake *f)
{
    tn_transport_close(f->t);
    for (int i = 0; i < f->n_seen; i++) tn_wr_free(&f->seen[i]);
    pthread_mutex_destroy(&f->mu);
}

static int fake_calls(fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->calls;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static tn_cluster *open_cluster(const char *urls, int deadline_ms, int timeout_ms, int stale)
{
    tn_cluster *cl = NULL;
    char *err = NULL;
    /* A member's connection gets the whole attempt to come up, so which member answers does not depend
     * on how fast the machine is. */
    tn_cluster_opts o = {.deadline_ms = deadline_ms, .request_timeout_ms = timeout_ms, .connect_wait_ms = timeout_ms,
                         .stale_reads = stale};
    int rc = tn_cluster_open(urls, &o, &cl, &err);
    if (rc != TN_SUCCESS) fail_msg("tn_cluster_open(%s): %s", urls, err ? err : "?");
    assert_null(err);
    return cl;
}

/* Builds a one-op request: a GET (read) or a PUT (write). */
static void make_req(tn_req *r, tn_op *op, int write, int read_mode, uint64_t req_id)
{
    memset(r, 0, sizeof *r);
    memset(op, 0, sizeof *op);
    op->opcode = write ? TN_OP_KV_PUT : TN_OP_KV_GET;
    op->key = (const uint8_t *)"users.alice";
    op->key_len = 11;
    if (write) {
        op->value = (const uint8_t *)"admin";
        op->value_len = 5;
    }
    r->req_id = req_id;
    r->read_mode = (uint8_t)read_mode;
    r->n_ops = 1;
    r->ops = op;
}

/* Calls and returns the answering member's id (from "member N"), or -1 with the call's code in *rc. */
static int call_who(tn_cluster *cl, int write, int read_mode, int *rc_out)
{
    tn_req r;
    tn_op op;
    tn_wr resp;
    tn_resp d;
    char *err = NULL;
    int who = -1;
    make_req(&r, &op, write, read_mode, 42);
    tn_wr_init(&resp);
    int rc = tn_cluster_call_req(cl, &r, &resp, &err);
    if (rc_out) *rc_out = rc;
    if (rc == TN_SUCCESS) {
        assert_null(err);
        assert_int_equal(tn_resp_decode(resp.p, resp.len, &d), TN_SUCCESS);
        assert_int_equal(d.req_id, 42);
        if (d.code == TN_SUCCESS && d.message_len > 7 && memcmp(d.message, "member ", 7) == 0)
            who = atoi((const char *)d.message + 7);
        tn_resp_clear(&d);
    }
    sqlite3_free(err);
    tn_wr_free(&resp);
    return who;
}

static void free_urls(char **urls, int n)
{
    for (int i = 0; i < n; i++) sqlite3_free(urls[i]);
}

/* ---------------------------------------------------------------- tests */

static void test_discovery_from_any_subset(void **state)
{
    fake l, f, s;
    char urls[256];
    fake_start(&l, 1, LEADER, NULL, NULL);
    fake_start(&f, 2, FOLLOWER, NULL, NULL);
    fake_start(&s, 3, SILENT, NULL, NULL);
    f.hint = l.url;

    /* Only the follower is given: its hint leads to the leader, which becomes a member. */
    tn_cluster *cl = open_cluster(f.url, 2000, 200, 0);
    int rc;
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    char *list[4];
    int leader = -2;
    int n = tn_cluster_members(cl, list, 4, &leader);
    assert_int_equal(n, 2);
    assert_string_equal(list[0], f.url);
    assert_string_equal(list[1], l.url);
    assert_int_equal(leader, 1);
    free_urls(list, n);
    int f_calls = fake_calls(&f);
    assert_int_equal(f_calls, 1);
    /* Known leader: the next calls go straight to it. */
    assert_int_equal(call_who(cl, 0, 0, &rc), 1);
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    assert_int_equal(fake_calls(&f), f_calls);
    tn_cluster_close(cl);

    /* A silent member first: its attempt times out, then the follower redirects to the leader. */
    snprintf(urls, sizeof urls, "%s, %s", s.url, f.url);
    cl = open_cluster(urls, 2000, 100, 0);
    long long t0 = tn_test_now_ms();
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    assert_true(tn_test_now_ms() - t0 < 1500);
    tn_cluster_close(cl);

    /* All three, leader last. */
    snprintf(urls, sizeof urls, "%s,%s,%s", f.url, s.url, l.url);
    cl = open_cluster(urls, 2000, 100, 0);
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    n = tn_cluster_members(cl, NULL, 0, &leader);
    assert_int_equal(n, 3); /* the hint named a known member: nothing added */
    assert_int_equal(leader, 2);
    tn_cluster_close(cl);

    fake_stop(&s);
    fake_stop(&f);
    fake_stop(&l);
}

/* A follower that answers a request itself (it forwarded it) and names the leader in the hint: the answer is
 * kept, and the next call goes to the leader. */
static void test_answer_with_hint_moves_to_leader(void **state)
{
    fake l, f;
    fake_start(&l, 1, LEADER, NULL, NULL);
    fake_start(&f, 2, FORWARDER, NULL, NULL);
    f.hint = l.url;
    tn_cluster *cl = open_cluster(f.url, 2000, 200, 0);
    int rc;
    assert_int_equal(call_who(cl, 1, 0, &rc), 2); /* the forwarder's own answer counts */
    assert_int_equal(fake_calls(&f), 1);
    int leader = -2;
    char *list[4];
    int n = tn_cluster_members(cl, list, 4, &leader);
    assert_int_equal(n, 2);
    assert_string_equal(list[1], l.url);
    assert_int_equal(leader, 1);
    free_urls(list, n);
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    assert_int_equal(call_who(cl, 0, 0, &rc), 1);
    assert_int_equal(fake_calls(&f), 1);
    tn_cluster_close(cl);
    fake_stop(&f);
    fake_stop(&l);
}

static void test_redirect_without_hint(void **state)
{
    fake l, f;
    char urls[256];
    fake_start(&l, 1, LEADER, NULL, NULL);
    fake_start(&f, 2, FOLLOWER, NULL, NULL); /* no hint: the client tries the next member */
    snprintf(urls, sizeof urls, "%s,%s", f.url, l.url);
    tn_cluster *cl = open_cluster(urls, 2000, 200, 0);
    int rc;
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    assert_int_equal(fake_calls(&f), 1);
    assert_int_equal(fake_calls(&l), 1);
    tn_cluster_close(cl);
    fake_stop(&f);
    fake_stop(&l);
}

static void decode_session(const tn_wr *w, uint64_t *client_id, uint64_t *seq)
{
    tn_req r;
    assert_int_equal(tn_req_decode(w->p, w->len, &r), TN_SUCCESS);
    *client_id = r.client_id;
    *seq = r.seq;
    tn_req_clear(&r);
}

static void test_retry_keeps_seq(void **state)
{
    fake l;
    fake_start(&l, 1, LEADER, NULL, NULL);
    l.drop_first = 1; /* the first attempt gets no answer */
    tn_cluster *cl = open_cluster(l.url, 3000, 150, 0);
    int rc;
    long long t0 = tn_test_now_ms();
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    assert_true(tn_test_now_ms() - t0 >= 150); /* it did wait for the first attempt to time out */
    pthread_mutex_lock(&l.mu);
    assert_int_equal(l.n_seen, 2);
    /* The retry is byte for byte the same request: same client_id, same seq. */
    assert_int_equal(l.seen[0].len, l.seen[1].len);
    assert_memory_equal(l.seen[0].p, l.seen[1].p, l.seen[0].len);
    uint64_t cid, seq;
    decode_session(&l.seen[1], &cid, &seq);
    pthread_mutex_unlock(&l.mu);
    assert_int_not_equal(cid, 0);
    assert_int_equal(cid, tn_cluster_client_id(cl));
    assert_int_equal(seq, 1);

    /* The next write gets the next seq; a read carries the session but no seq. */
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    assert_int_equal(call_who(cl, 0, 0, &rc), 1);
    pthread_mutex_lock(&l.mu);
    assert_int_equal(l.n_seen, 4);
    uint64_t cid2, seq2, cid3, seq3;
    decode_session(&l.seen[2], &cid2, &seq2);
    decode_session(&l.seen[3], &cid3, &seq3);
    pthread_mutex_unlock(&l.mu);
    assert_int_equal(cid2, cid);
    assert_int_equal(seq2, 2);
    assert_int_equal(cid3, cid);
    assert_int_equal(seq3, 0);
    assert_int_equal(tn_cluster_next_seq(cl), 3);

    /* Two clients have different session ids. */
    tn_cluster *other = open_cluster(l.url, 1000, 100, 0);
    assert_int_not_equal(tn_cluster_client_id(other), tn_cluster_client_id(cl));
    /* (a call first: nng 1.5.2 leaks a connection closed in the middle of its handshake) */
    assert_int_equal(call_who(other, 0, 0, &rc), 1);
    tn_cluster_close(other);
    tn_cluster_close(cl);
    fake_stop(&l);
}

static void test_deadline_message(void **state)
{
    fake s;
    char dead[64], urls[256], want[512];
    fake_start(&s, 1, SILENT, NULL, NULL);
    assert_non_null(tn_test_url(dead, sizeof dead, "tcp")); /* nobody listens there */
    snprintf(urls, sizeof urls, "%s,%s", s.url, dead);
    tn_cluster *cl = open_cluster(urls, 300, 100, 0);
    tn_req r;
    tn_op op;
    tn_wr resp;
    char *err = NULL;
    make_req(&r, &op, 1, 0, 9);
    tn_wr_init(&resp);
    long long t0 = tn_test_now_ms();
    int rc = tn_cluster_call_req(cl, &r, &resp, &err);
    long long took = tn_test_now_ms() - t0;
    assert_int_equal(rc, TN_UNAVAILABLE);
    assert_int_equal(resp.len, 0);
    assert_true(took >= 300);
    assert_true(took < 800);
    snprintf(want, sizeof want, "tarn: no leader reachable after 300 ms (tried %s, %s)", s.url, dead);
    assert_non_null(err);
    assert_string_equal(err, want);
    sqlite3_free(err);
    assert_true(fake_calls(&s) >= 1);
    tn_wr_free(&resp);
    tn_cluster_close(cl);
    fake_stop(&s);
}

static void test_stale_reads_any_member(void **state)
{
    fake l, f;
    char urls[256];
    fake_start(&l, 1, LEADER, NULL, NULL);
    fake_start(&f, 2, FOLLOWER, NULL, NULL);
    f.hint = l.url;
    snprintf(urls, sizeof urls, "%s,%s", f.url, l.url);
    tn_cluster *cl = open_cluster(urls, 2000, 200, 1);
    int rc, by_f = 0, by_l = 0;
    for (int i = 0; i < 6; i++) {
        int who = call_who(cl, 0, TN_READ_STALE, &rc);
        by_f += who == 2;
        by_l += who == 1;
    }
    assert_int_equal(by_f + by_l, 6);
    assert_true(by_f >= 1); /* stale reads were spread over the members */
    assert_true(by_l >= 1);
    /* Linearizable reads and writes always end at the leader. */
    for (int i = 0; i < 3; i++) assert_int_equal(call_who(cl, 0, TN_READ_LINEARIZABLE, &rc), 1);
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    tn_cluster_close(cl);

    /* Without the option, a stale read goes to the (known) leader like any other request. */
    cl = open_cluster(urls, 2000, 200, 0);
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    pthread_mutex_lock(&f.mu);
    int f_stale = f.stale_answered;
    pthread_mutex_unlock(&f.mu);
    for (int i = 0; i < 4; i++) assert_int_equal(call_who(cl, 0, TN_READ_STALE, &rc), 1);
    tn_cluster_close(cl);
    pthread_mutex_lock(&f.mu);
    assert_int_equal(f.stale_answered, f_stale);
    pthread_mutex_unlock(&f.mu);
    fake_stop(&f);
    fake_stop(&l);
}

typedef struct call_job {
    tn_cluster *cl;
    int ok, bad;
} call_job;

static void *call_thread(void *arg)
{
    call_job *j = arg;
    for (int i = 0; i < 25; i++) {
        tn_req r;
        tn_op op;
        tn_wr resp;
        tn_resp d;
        make_req(&r, &op, i % 2, 0, (uint64_t)i + 1);
        tn_wr_init(&resp);
        if (tn_cluster_call_req(j->cl, &r, &resp, NULL) == TN_SUCCESS &&
            tn_resp_decode(resp.p, resp.len, &d) == TN_SUCCESS) {
            if (d.code == TN_SUCCESS && d.req_id == (uint64_t)i + 1) j->ok++;
            else j->bad++;
            tn_resp_clear(&d);
        } else {
            j->bad++;
        }
        tn_wr_free(&resp);
    }
    return NULL;
}

static void test_concurrent_calls(void **state)
{
    fake l, f;
    char urls[256];
    fake_start(&l, 1, LEADER, NULL, NULL);
    fake_start(&f, 2, FOLLOWER, NULL, NULL);
    f.hint = l.url;
    snprintf(urls, sizeof urls, "%s,%s", f.url, l.url);
    tn_cluster *cl = open_cluster(urls, 3000, 1000, 0);
    pthread_t th[4];
    call_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (call_job){cl, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, call_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(jobs[i].bad, 0);
        assert_int_equal(jobs[i].ok, 25);
    }
    assert_int_equal(fake_calls(&l), 100);
    /* 4 x 12 writes from 4 threads: 48 distinct seqs, 1..48. */
    assert_int_equal(tn_cluster_next_seq(cl), 49);
    tn_cluster_close(cl);
    fake_stop(&f);
    fake_stop(&l);
}

typedef struct async_state {
    pthread_mutex_t mu;
    int done, ok, unavailable, other;
    uint8_t seen_id[256];
} async_state;

static void async_done(void *arg, int rc, const uint8_t *resp, size_t len, const char *errmsg)
{
    async_state *a = arg;
    tn_resp d;
    pthread_mutex_lock(&a->mu);
    a->done++;
    if (rc == TN_SUCCESS && tn_resp_decode(resp, len, &d) == TN_SUCCESS) {
        if (d.code == TN_SUCCESS && d.req_id < 256 && !a->seen_id[d.req_id]) {
            a->seen_id[d.req_id] = 1;
            a->ok++;
        } else {
            a->other++;
        }
        tn_resp_clear(&d);
    } else if (rc == TN_UNAVAILABLE && errmsg && strncmp(errmsg, "tarn: ", 6) == 0) {
        a->unavailable++;
    } else {
        a->other++;
    }
    pthread_mutex_unlock(&a->mu);
}

static int async_count(async_state *a)
{
    pthread_mutex_lock(&a->mu);
    int n = a->done;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static void start_async(tn_cluster *cl, async_state *a, int n)
{
    for (int i = 0; i < n; i++) {
        tn_req r;
        tn_op op;
        tn_wr w;
        make_req(&r, &op, 0, 0, (uint64_t)i);
        r.client_id = tn_cluster_client_id(cl);
        tn_wr_init(&w);
        assert_int_equal(tn_req_encode(&r, &w), TN_SUCCESS);
        assert_int_equal(tn_cluster_call_async(cl, &w, async_done, a), TN_SUCCESS);
        tn_wr_free(&w);
    }
}

static void test_async_many_in_flight(void **state)
{
    fake l, f;
    char urls[256];
    fake_start(&l, 1, LEADER, NULL, NULL);
    fake_start(&f, 2, FOLLOWER, NULL, NULL);
    f.hint = l.url;
    snprintf(urls, sizeof urls, "%s,%s", f.url, l.url);
    tn_cluster *cl = open_cluster(urls, 5000, 3000, 0);
    int rc;
    assert_int_equal(call_who(cl, 0, 0, &rc), 1); /* learn the leader */
    /* The leader answers nothing until 100 requests wait: only calls really in flight at once finish. */
    pthread_mutex_lock(&l.mu);
    l.batch = 100;
    pthread_mutex_unlock(&l.mu);
    async_state a;
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.mu, NULL);
    start_async(cl, &a, 100); /* from this one thread, without waiting */
    for (int i = 0; i < 2500 && async_count(&a) < 100; i++) usleep(2000);
    pthread_mutex_lock(&a.mu);
    assert_int_equal(a.done, 100);
    assert_int_equal(a.ok, 100);
    assert_int_equal(a.other, 0);
    pthread_mutex_unlock(&a.mu);
    tn_cluster_close(cl);
    pthread_mutex_destroy(&a.mu);
    fake_stop(&f);
    fake_stop(&l);
}

static void test_async_close_with_calls_running(void **state)
{
    fake s;
    fake_start(&s, 1, SILENT, NULL, NULL);
    tn_cluster *cl = open_cluster(s.url, 5000, 2000, 0);
    int rc;
    (void)rc;
    async_state a;
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.mu, NULL);
    start_async(cl, &a, 20);
    for (int i = 0; i < 1000 && fake_calls(&s) < 20; i++) usleep(2000);
    assert_int_equal(fake_calls(&s), 20); /* all twenty wait for an answer */
    long long t0 = tn_test_now_ms();
    tn_cluster_close(cl); /* waits for the twenty callbacks */
    assert_true(tn_test_now_ms() - t0 < 1500);
    assert_int_equal(a.done, 20);
    assert_int_equal(a.unavailable, 20);
    pthread_mutex_destroy(&a.mu);
    fake_stop(&s);
}

static void test_token(void **state)
{
    fake l;
    fake_start(&l, 1, LEADER, "tok", NULL);
    tn_cluster *cl = NULL;
    char *err = NULL;
    tn_cluster_opts o = {.token = (const uint8_t *)"bad", .token_len = 3, .deadline_ms = 1000};
    assert_int_equal(tn_cluster_open(l.url, &o, &cl, &err), TN_SUCCESS);
    int rc;
    tn_req r;
    tn_op op;
    tn_wr resp;
    tn_resp d;
    make_req(&r, &op, 1, 0, 5);
    tn_wr_init(&resp);
    /* A definitive answer: no retry, the code tells the caller. */
    assert_int_equal(tn_cluster_call_req(cl, &r, &resp, &err), TN_SUCCESS);
    assert_int_equal(tn_resp_decode(resp.p, resp.len, &d), TN_SUCCESS);
    assert_int_equal(d.code, TN_UNAUTHORIZED);
    tn_resp_clear(&d);
    tn_wr_free(&resp);
    assert_int_equal(fake_calls(&l), 0);
    tn_cluster_close(cl);
    o.token = (const uint8_t *)"tok";
    assert_int_equal(tn_cluster_open(l.url, &o, &cl, &err), TN_SUCCESS);
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    tn_cluster_close(cl);
    fake_stop(&l);
}

static void test_open_errors(void **state)
{
    tn_cluster *cl = NULL;
    char *err = NULL;
    assert_int_equal(tn_cluster_open("", NULL, &cl, &err), TN_BAD_REQUEST);
    assert_null(cl);
    assert_non_null(strstr(err, "no cluster member URL"));
    sqlite3_free(err);
    err = NULL;
    assert_int_equal(tn_cluster_open(" , ", NULL, &cl, &err), TN_BAD_REQUEST);
    sqlite3_free(err);
    err = NULL;
    assert_int_equal(tn_cluster_open("tcp://127.0.0.1:1,http://x:2", NULL, &cl, &err), TN_BAD_REQUEST);
    assert_non_null(strstr(err, "'http://x:2'"));
    sqlite3_free(err);
    err = NULL;
    assert_int_equal(tn_cluster_open("tls+tcp://127.0.0.1:1", NULL, &cl, &err), TN_BAD_REQUEST);
    assert_non_null(strstr(err, "CA file"));
    sqlite3_free(err);
    err = NULL;
    /* a request that is not a request */
    assert_int_equal(tn_cluster_open("tcp://127.0.0.1:1", NULL, &cl, &err), TN_SUCCESS);
    tn_wr junk, resp;
    tn_wr_init(&junk);
    tn_wr_init(&resp);
    tn_wr_raw(&junk, "junk", 4);
    assert_int_equal(tn_cluster_call(cl, &junk, &resp, &err), TN_BAD_REQUEST);
    assert_non_null(err);
    sqlite3_free(err);
    tn_wr_free(&junk);
    tn_cluster_close(cl);
}

static void test_tls_cluster(void **state)
{
    char dir[64], ca[128], cert[128], key[128], other[128];
    if (access("/usr/bin/openssl", X_OK) != 0) {
        print_message("openssl not found at /usr/bin/openssl: TLS test skipped\n");
        skip();
    }
    assert_int_equal(tn_test_tmpdir(dir, sizeof dir), 0);
    assert_int_equal(tn_test_make_certs(dir), 0);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(other, sizeof other, "%s/other-ca.pem", dir);
    tn_tls_opts tls = {.cert_file = cert, .key_file = key, .ca_file = ca};
    fake l;
    fake_start(&l, 1, LEADER, NULL, &tls);
    tn_cluster *cl = NULL;
    char *err = NULL;
    tn_cluster_opts o = {.tls_ca_file = ca, .deadline_ms = 3000};
    assert_int_equal(tn_cluster_open(l.url, &o, &cl, &err), TN_SUCCESS);
    int rc;
    assert_int_equal(call_who(cl, 1, 0, &rc), 1);
    tn_cluster_close(cl);
    int good_calls = fake_calls(&l);
    assert_true(good_calls >= 1);
    o.tls_ca_file = other;
    o.deadline_ms = 300;
    o.request_timeout_ms = 100;
    assert_int_equal(tn_cluster_open(l.url, &o, &cl, &err), TN_SUCCESS);
    assert_int_equal(call_who(cl, 1, 0, &rc), -1);
    assert_int_equal(rc, TN_UNAVAILABLE);
    tn_cluster_close(cl);
    assert_int_equal(fake_calls(&l), good_calls); /* the handshake failed: nothing arrived */
    fake_stop(&l);
    tn_test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_from_any_subset),
        cmocka_unit_test(test_answer_with_hint_moves_to_leader),
        cmocka_unit_test(test_redirect_without_hint),
        cmocka_unit_test(test_retry_keeps_seq),
        cmocka_unit_test(test_deadline_message),
        cmocka_unit_test(test_stale_reads_any_member),
        cmocka_unit_test(test_concurrent_calls),
        cmocka_unit_test(test_async_many_in_flight),
        cmocka_unit_test(test_async_close_with_calls_running),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_tls_cluster),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* nng frees closed sockets on a background reaper; nng_fini waits for it and releases nng's global
     * state, so that LeakSanitizer sees only what we leaked ourselves. */
    nng_fini();
    return failed;
}
