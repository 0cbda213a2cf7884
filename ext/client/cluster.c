/* cluster.c — leader-seeking, retrying client of a raftnet cluster (contract: cluster.h). */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "cluster.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "clock.h"
#include "tn_code.h"
#include "envelope.h"
#include "tls.h"

#define DEFAULT_DEADLINE_MS 5000
#define DEFAULT_REQUEST_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 500
#define DEFAULT_CONNECT_WAIT_MS 50 /* how long an attempt waits for a member's connection to come up */

typedef struct member {
    char *url;
    nng_socket sock;
    atomic_int pipes; /* connections up now (pipe notifications) */
    /* Idle contexts, reused by later calls and closed only with the socket. nng 1.5.2 can panic when a
     * context is closed while another thread is still returning from nng_ctx_send on it, which a reply
     * completing on nng's threads makes possible; never closing a context mid-flight avoids that. */
    pthread_mutex_t ctx_mu;
    nng_ctx *idle;
    int n_idle, cap_idle;
} member;

struct tn_cluster {
    pthread_mutex_t mu; /* members[] growth, leader, rng, round robin */
    member *members[TN_CLUSTER_MAX_MEMBERS];
    int n_members;
    int leader; /* index or -1 */
    unsigned rr;
    uint64_t rng;
    uint64_t client_id;
    atomic_uint_fast64_t seq;
    uint8_t token[TN_ENV_MAX_TOKEN];
    size_t token_len;
    tn_tls_opts tls; /* strings sqlite3_malloc'd */
    int deadline_ms, request_timeout_ms, connect_wait_ms, stale_reads;
    atomic_int closing;
    struct tn_call *calls; /* calls started and not yet freed (list under mu) */
    int inflight;        /* their number (under mu) */
    pthread_cond_t idle; /* signalled when inflight drops to 0 */
};

/* ------------------------------------------------------------------ small helpers */

/* xorshift64*; caller holds mu. */
static uint64_t rng_next(tn_cluster *cl)
{
    cl->rng ^= cl->rng >> 12;
    cl->rng ^= cl->rng << 25;
    cl->rng ^= cl->rng >> 27;
    return cl->rng * 0x2545f4914f6cdd1dull;
}

static char *dup_str(const char *s)
{
    return s ? sqlite3_mprintf("%s", s) : NULL;
}

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    member *m = arg;
    if (ev == NNG_PIPE_EV_ADD_POST) atomic_fetch_add(&m->pipes, 1);
    else if (ev == NNG_PIPE_EV_REM_POST) atomic_fetch_sub(&m->pipes, 1);
}

/* A context of m's socket: an idle one, or a new one. 0 or an nng error. */
static int ctx_borrow(member *m, nng_ctx *out)
{
    pthread_mutex_lock(&m->ctx_mu);
    int have = m->n_idle > 0;
    if (have) *out = m->idle[--m->n_idle];
    pthread_mutex_unlock(&m->ctx_mu);
    return have ? 0 : nng_ctx_open(out, m->sock);
}

/* Gives back a context whose operations have all completed. */
static void ctx_return(member *m, nng_ctx ctx)
{
    pthread_mutex_lock(&m->ctx_mu);
    if (m->n_idle == m->cap_idle) {
        int cap = m->cap_idle ? m->cap_idle * 2 : 8;
        nng_ctx *idle = sqlite3_realloc64(m->idle, (sqlite3_uint64)cap * sizeof *idle);
        if (idle) {
            m->idle = idle;
            m->cap_idle = cap;
        }
    }
    int kept = m->n_idle < m->cap_idle;
    if (kept) m->idle[m->n_idle++] = ctx;
    pthread_mutex_unlock(&m->ctx_mu);
    if (!kept) nng_ctx_close(ctx); /* out of memory only */
}

static void member_free(member *m)
{
    if (!m) return;
    nng_close(m->sock); /* closes its contexts too */
    sqlite3_free(m->idle);
    pthread_mutex_destroy(&m->ctx_mu);
    sqlite3_free(m->url);
    sqlite3_free(m);
}

/* Opens a member's socket and starts its dialer (non-blocking: it connects and reconnects by itself). */
static int member_new(tn_cluster *cl, const char *url, size_t url_len, member **out, char **errmsg)
{
    int rc = TN_NOMEM, rv;
    char err[256] = "";
    nng_dialer d;
    member *m = sqlite3_malloc(sizeof *m);
    *out = NULL;
    if (!m) goto fail;
    memset(m, 0, sizeof *m);
    atomic_init(&m->pipes, 0);
    pthread_mutex_init(&m->ctx_mu, NULL);
    m->url = sqlite3_mprintf("%.*s", (int)url_len, url);
    if (!m->url) goto fail;
    if ((rv = nng_req0_open(&m->sock)) != 0) {
        sqlite3_free(m->url);
        pthread_mutex_destroy(&m->ctx_mu);
        sqlite3_free(m);
        m = NULL;
        goto fail;
    }
    nng_socket_set_size(m->sock, NNG_OPT_RECVMAXSZ, TN_TRANSPORT_MAX_MESSAGE);
    /* We retry ourselves (elsewhere, with the deadline): no blind resend to the same member. */
    nng_socket_set_ms(m->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_pipe_notify(m->sock, NNG_PIPE_EV_ADD_POST, pipe_event, m);
    nng_pipe_notify(m->sock, NNG_PIPE_EV_REM_POST, pipe_event, m);
    rc = TN_BAD_REQUEST;
    if (strncmp(m->url, "tcp://", 6) != 0 && !tn_url_is_tls(m->url)) {
        snprintf(err, sizeof err, "'%s' is not a tcp:// or tls+tcp:// URL", m->url);
        goto fail;
    }
    if ((rv = nng_dialer_create(&d, m->sock, m->url)) != 0) {
        snprintf(err, sizeof err, "cannot use '%s': %s", m->url, nng_strerror(rv));
        goto fail;
    }
    if ((rc = tn_tls_setup_dialer(d, m->url, &cl->tls, err, sizeof err)) != TN_SUCCESS) goto fail;
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 10);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 500);
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        rc = TN_BAD_REQUEST;
        snprintf(err, sizeof err, "cannot dial '%s': %s", m->url, nng_strerror(rv));
        goto fail;
    }
    *out = m;
    return TN_SUCCESS;
fail:
    if (errmsg) *errmsg = sqlite3_mprintf("tarn: %s", err[0] ? err : "out of memory");
    member_free(m);
    return rc;
}

/* Index of the member with this URL, adding it if it is new and there is room; -1 otherwise. */
static int member_find_or_add(tn_cluster *cl, const uint8_t *url, size_t len)
{
    int idx = -1;
    pthread_mutex_lock(&cl->mu);
    for (int i = 0; i < cl->n_members && idx < 0; i++)
        if (strlen(cl->members[i]->url) == len && memcmp(cl->members[i]->url, url, len) == 0) idx = i;
    if (idx < 0 && cl->n_members < TN_CLUSTER_MAX_MEMBERS) {
        member *m;
        if (member_new(cl, (const char *)url, len, &m, NULL) == TN_SUCCESS) {
            idx = cl->n_members;
            cl->members[cl->n_members++] = m;
        }
    }
    pthread_mutex_unlock(&cl->mu);
    return idx;
}

/* ------------------------------------------------------------------ open / close */

int tn_cluster_open(const char *urls, const tn_cluster_opts *opts, tn_cluster **out, char **errmsg)
{
    static const tn_cluster_opts defaults;
    int rc = TN_NOMEM;
    tn_cluster *cl = sqlite3_malloc(sizeof *cl);
    *out = NULL;
    if (!opts) opts = &defaults;
    if (!cl) goto nomem;
    memset(cl, 0, sizeof *cl);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->idle, NULL);
    atomic_init(&cl->closing, 0);
    cl->leader = -1;
    cl->rng = tn_random_u64();
    cl->client_id = tn_random_u64();
    atomic_init(&cl->seq, 0);
    cl->deadline_ms = opts->deadline_ms > 0 ? opts->deadline_ms : DEFAULT_DEADLINE_MS;
    cl->request_timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
    cl->connect_wait_ms = opts->connect_wait_ms > 0 ? opts->connect_wait_ms : DEFAULT_CONNECT_WAIT_MS;
    cl->stale_reads = opts->stale_reads;
    if (opts->token_len > TN_ENV_MAX_TOKEN) {
        rc = TN_BAD_REQUEST;
        *errmsg = sqlite3_mprintf("tarn: cluster token longer than %u bytes", TN_ENV_MAX_TOKEN);
        goto fail;
    }
    if (opts->token_len) memcpy(cl->token, opts->token, opts->token_len);
    cl->token_len = opts->token_len;
    if ((opts->tls_ca_file && !(cl->tls.ca_file = dup_str(opts->tls_ca_file))) ||
        (opts->tls_cert_file && !(cl->tls.cert_file = dup_str(opts->tls_cert_file))) ||
        (opts->tls_key_file && !(cl->tls.key_file = dup_str(opts->tls_key_file))))
        goto nomem;
    const char *p = urls ? urls : "";
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        size_t len = (size_t)(end - p);
        while (len && p[len - 1] == ' ') len--;
        if (len) {
            if (cl->n_members == TN_CLUSTER_MAX_MEMBERS) {
                rc = TN_BAD_REQUEST;
                *errmsg = sqlite3_mprintf("tarn: more than %d cluster members given", TN_CLUSTER_MAX_MEMBERS);
                goto fail;
            }
            member *m;
            if ((rc = member_new(cl, p, len, &m, errmsg)) != TN_SUCCESS) goto fail;
            cl->members[cl->n_members++] = m;
        }
        p = end;
    }
    if (cl->n_members == 0) {
        rc = TN_BAD_REQUEST;
        *errmsg = sqlite3_mprintf("tarn: no cluster member URL given (expected 'tcp://host:port,…')");
        goto fail;
    }
    *out = cl;
    return TN_SUCCESS;
nomem:
    *errmsg = sqlite3_mprintf("tarn: out of memory opening the cluster client");
fail:
    tn_cluster_close(cl);
    return rc;
}

static void cancel_calls_locked(tn_cluster *cl);

void tn_cluster_close(tn_cluster *cl)
{
    if (!cl) return;
    /* Calls still running (async ones) fail their attempt when their socket closes, see `closing` and
     * finish; wait for them before freeing what they use. */
    atomic_store(&cl->closing, 1);
    /* Sockets are closed only after every call is gone, including threads still returning from an nng
     * call that started an operation: nng 1.5.2 panics when a socket closes under such a thread. Calls
     * notice `closing` at their next step; cancelling their operations brings that step on now. */
    pthread_mutex_lock(&cl->mu);
    while (cl->inflight > 0) {
        cancel_calls_locked(cl);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 10 * 1000000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&cl->idle, &cl->mu, &until);
    }
    pthread_mutex_unlock(&cl->mu);
    for (int i = 0; i < cl->n_members; i++) member_free(cl->members[i]);
    pthread_cond_destroy(&cl->idle);
    sqlite3_free((char *)cl->tls.ca_file);
    sqlite3_free((char *)cl->tls.cert_file);
    sqlite3_free((char *)cl->tls.key_file);
    pthread_mutex_destroy(&cl->mu);
    sqlite3_free(cl);
}

uint64_t tn_cluster_client_id(const tn_cluster *cl) { return cl->client_id; }

uint64_t tn_cluster_next_seq(tn_cluster *cl) { return atomic_fetch_add(&cl->seq, 1) + 1; }

int tn_cluster_members(tn_cluster *cl, char **urls, int max, int *leader)
{
    pthread_mutex_lock(&cl->mu);
    int n = cl->n_members;
    for (int i = 0; urls && i < n && i < max; i++) urls[i] = sqlite3_mprintf("%s", cl->members[i]->url);
    if (leader) *leader = cl->leader;
    pthread_mutex_unlock(&cl->mu);
    return n;
}

/* ------------------------------------------------------------------ calls */

static member *member_at(tn_cluster *cl, int i)
{
    pthread_mutex_lock(&cl->mu);
    member *m = i < cl->n_members ? cl->members[i] : NULL;
    pthread_mutex_unlock(&cl->mu);
    return m;
}

static int member_count(tn_cluster *cl)
{
    pthread_mutex_lock(&cl->mu);
    int n = cl->n_members;
    pthread_mutex_unlock(&cl->mu);
    return n;
}

/* Members are tried in turn; one without a connection gets connect_wait_ms for its dialer to connect. */
static int next_member(tn_cluster *cl, int from) { return (from + 1) % member_count(cl); }

/* First target: the believed leader, else (or for a stale read) the members in turn, call after call. */
static int first_target(tn_cluster *cl, int any_member)
{
    pthread_mutex_lock(&cl->mu);
    int leader = cl->leader;
    int start = (int)(cl->rr++ % (unsigned)cl->n_members);
    pthread_mutex_unlock(&cl->mu);
    return leader >= 0 && !any_member ? leader : start;
}

static void set_leader(tn_cluster *cl, int idx)
{
    pthread_mutex_lock(&cl->mu);
    cl->leader = idx;
    pthread_mutex_unlock(&cl->mu);
}

static void forget_leader(tn_cluster *cl, int idx)
{
    pthread_mutex_lock(&cl->mu);
    if (cl->leader == idx) cl->leader = -1;
    pthread_mutex_unlock(&cl->mu);
}

/* ------------------------------------------------------------------ one call: a state machine
 *
 * attempt:  CONNECT (poll, 1 ms steps, until the member has a connection or connect_wait_ms pass)
 *        -> SEND -> RECV (both within the attempt's timeout) -> a real answer ends the call;
 *           NOT_LEADER / UNAVAILABLE / TIMEOUT answers and failures pick the next target;
 *        -> SLEEP (backoff) after a round of members without an answer -> next attempt.
 * Every step after the first runs in a callback (of `aio` or `timer`) on an nng thread. */

enum call_phase { PH_CONNECT, PH_SEND, PH_RECV, PH_SLEEP };

typedef struct tn_call {
    tn_cluster *cl;
    tn_wr env; /* the envelope: every attempt sends these bytes */
    int any_member;
    int64_t deadline, attempt_until, connect_until;
    int target, backoff, since_sleep, redirects;
    uint8_t tried[TN_CLUSTER_MAX_MEMBERS];
    int tried_order[TN_CLUSTER_MAX_MEMBERS], n_tried;
    int phase;
    nng_aio *aio;   /* send / receive */
    nng_aio *timer; /* nng_sleep_aio: nng 1.5.2 does not clear an aio's sleep state, so an operation on
                     * an aio that once slept reports its timeout as success: keep them apart */
    nng_ctx ctx;
    member *ctx_of; /* the member whose context `ctx` is borrowed, or NULL */
    struct tn_call *next, **pprev; /* in cl->calls */
    atomic_int refs; /* 1 until finished, +1 while a thread is inside an nng call that starts an op */
    tn_cluster_done_fn done;
    void *arg;
} tn_call;

static void call_attempt(tn_call *c);

/* Drops a reference; the last one frees the call. The last touch of cl is the in-flight count, so that
 * tn_cluster_close can wait for it. */
static void call_unref(tn_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1) return;
    tn_cluster *cl = c->cl;
    if (c->ctx_of) ctx_return(c->ctx_of, c->ctx);
    tn_wr_free(&c->env);
    pthread_mutex_lock(&cl->mu);
    *c->pprev = c->next; /* off the list first: close cancels the aios of the calls on it */
    if (c->next) c->next->pprev = c->pprev;
    if (--cl->inflight == 0) pthread_cond_broadcast(&cl->idle);
    pthread_mutex_unlock(&cl->mu); /* cl may be gone from here on */
    nng_aio_reap(c->aio); /* we may be inside its callback: freed by nng in the background */
    nng_aio_reap(c->timer);
    sqlite3_free(c);
}

/* Starting an nng operation: the operation may complete, and the whole call finish on nng's threads,
 * before the starting function returns here; the reference keeps the call (and so the cluster and its
 * sockets, which close waits for) alive until it has. */
static void start_ctx_send(tn_call *c)
{
    atomic_fetch_add(&c->refs, 1);
    nng_ctx_send(c->ctx, c->aio);
    call_unref(c);
}

static void start_ctx_recv(tn_call *c)
{
    atomic_fetch_add(&c->refs, 1);
    nng_ctx_recv(c->ctx, c->aio);
    call_unref(c);
}

static void start_sleep(tn_call *c, int ms)
{
    atomic_fetch_add(&c->refs, 1);
    nng_sleep_aio(ms, c->timer);
    call_unref(c);
}

/* Reports the outcome exactly once; the call is freed when the last reference goes. */
static void call_finish(tn_call *c, int rc, const uint8_t *resp, size_t len, const char *errmsg)
{
    c->done(c->arg, rc, resp, len, errmsg);
    call_unref(c);
}

static void call_give_up(tn_call *c)
{
    tn_cluster *cl = c->cl;
    char *list = sqlite3_mprintf("%s", "");
    for (int i = 0; i < c->n_tried && list; i++) {
        char *more = sqlite3_mprintf("%s%s%s", list, i ? ", " : "", member_at(cl, c->tried_order[i])->url);
        sqlite3_free(list);
        list = more;
    }
    char *msg = list ? sqlite3_mprintf("tarn: no leader reachable after %d ms (tried %s)", cl->deadline_ms, list)
                     : NULL;
    sqlite3_free(list);
    call_finish(c, msg ? TN_UNAVAILABLE : TN_NOMEM, NULL, 0, msg ? msg : "tarn: out of memory");
    sqlite3_free(msg);
}

/* After an attempt that got no real answer: pick what comes next (at once, or after a backoff). */
static void call_next(tn_call *c, int redirected)
{
    tn_cluster *cl = c->cl;
    int n = member_count(cl);
    /* Follow a redirect at once (unless hints go round in circles); after a whole round of members
     * without an answer, back off. */
    if (redirected && ++c->redirects <= n) {
        call_attempt(c);
        return;
    }
    if (redirected) c->redirects = 0, c->since_sleep = n;
    else c->since_sleep++;
    if (c->since_sleep < n) {
        call_attempt(c);
        return;
    }
    c->since_sleep = 0;
    pthread_mutex_lock(&cl->mu);
    int ms = c->backoff / 2 + (int)(rng_next(cl) % (uint64_t)(c->backoff / 2 + 1)); /* jitter: [b/2, b] */
    pthread_mutex_unlock(&cl->mu);
    c->backoff = c->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff * 2;
    int64_t left = c->deadline - tn_mono_ms();
    if (ms > left) ms = (int)(left > 0 ? left : 0);
    c->phase = PH_SLEEP;
    start_sleep(c, ms);
}

static void call_failed(tn_call *c)
{
    forget_leader(c->cl, c->target);
    c->target = next_member(c->cl, c->target);
    call_next(c, 0);
}

static void call_send(tn_call *c)
{
    member *m = member_at(c->cl, c->target);
    nng_msg *msg = NULL;
    int64_t left = c->attempt_until - tn_mono_ms();
    if (left <= 0 || ctx_borrow(m, &c->ctx) != 0) {
        call_failed(c);
        return;
    }
    c->ctx_of = m;
    if (nng_msg_alloc(&msg, c->env.len) != 0) {
        call_finish(c, TN_NOMEM, NULL, 0, "tarn: out of memory");
        return;
    }
    memcpy(nng_msg_body(msg), c->env.p, c->env.len);
    c->phase = PH_SEND;
    nng_aio_set_msg(c->aio, msg);
    nng_aio_set_timeout(c->aio, (nng_duration)left);
    start_ctx_send(c);
}

/* A reply arrived from the target: end the call or choose where to go next. */
static void call_reply(tn_call *c, nng_msg *reply)
{
    tn_cluster *cl = c->cl;
    tn_resp_head head;
    tn_resp_peek(nng_msg_body(reply), nng_msg_len(reply), &head); /* zeroed when malformed */
    int code = head.code;
    const uint8_t *hint = head.leader_hint;
    size_t hint_len = head.leader_hint_len;
    if (code != TN_NOT_LEADER && code != TN_UNAVAILABLE && code != TN_TIMEOUT) {
        /* A real answer (also a malformed one: the caller's decoder reports it). A follower that forwarded
         * the request names the leader in the hint: the next call goes there directly. */
        if (!c->any_member) {
            int leader = hint_len > 0 ? member_find_or_add(cl, hint, hint_len) : -1;
            set_leader(cl, leader >= 0 ? leader : c->target);
        }
        call_finish(c, TN_SUCCESS, nng_msg_body(reply), nng_msg_len(reply), NULL);
        nng_msg_free(reply);
        return;
    }
    forget_leader(cl, c->target);
    int next = -1;
    if (code == TN_NOT_LEADER && hint_len > 0) next = member_find_or_add(cl, hint, hint_len);
    nng_msg_free(reply);
    if (next >= 0 && next != c->target) {
        set_leader(cl, next);
        c->target = next;
        call_next(c, 1);
    } else {
        c->target = next_member(cl, c->target);
        call_next(c, 0);
    }
}

static void call_cb(void *arg)
{
    tn_call *c = arg;
    int rv = nng_aio_result(c->aio);
    switch (c->phase) {
    case PH_SLEEP:
        call_attempt(c);
        return;
    case PH_CONNECT:
        if (atomic_load(&member_at(c->cl, c->target)->pipes) > 0) call_send(c);
        else if (tn_mono_ms() >= c->connect_until || atomic_load(&c->cl->closing)) call_failed(c);
        else start_sleep(c, 1);
        return;
    case PH_SEND:
        if (rv != 0) {
            nng_msg *m = nng_aio_get_msg(c->aio);
            nng_aio_set_msg(c->aio, NULL);
            if (m) nng_msg_free(m);
            break;
        }
        if (atomic_load(&c->cl->closing)) {
            rv = NNG_ECLOSED;
            break;
        }
        int64_t left = c->attempt_until - tn_mono_ms();
        c->phase = PH_RECV;
        nng_aio_set_timeout(c->aio, (nng_duration)(left > 1 ? left : 1));
        start_ctx_recv(c);
        return;
    case PH_RECV:
        if (rv != 0) break;
        nng_msg *reply = nng_aio_get_msg(c->aio);
        nng_aio_set_msg(c->aio, NULL);
        if (!reply) {
            rv = NNG_ETIMEDOUT;
            break;
        }
        ctx_return(c->ctx_of, c->ctx);
        c->ctx_of = NULL;
        call_reply(c, reply);
        return;
    }
    /* send or receive failed: timeout, connection lost, socket closed */
    ctx_return(c->ctx_of, c->ctx);
    c->ctx_of = NULL;
    if (rv == NNG_ENOMEM) call_finish(c, TN_NOMEM, NULL, 0, "tarn: out of memory");
    else call_failed(c);
}

static void call_attempt(tn_call *c)
{
    tn_cluster *cl = c->cl;
    int64_t now = tn_mono_ms(), left = c->deadline - now;
    if (atomic_load(&cl->closing)) {
        call_finish(c, TN_UNAVAILABLE, NULL, 0, "tarn: the cluster client is closing");
        return;
    }
    if (left <= 0) {
        call_give_up(c);
        return;
    }
    if (!c->tried[c->target]) {
        c->tried[c->target] = 1;
        c->tried_order[c->n_tried++] = c->target;
    }
    c->attempt_until = now + (cl->request_timeout_ms < left ? cl->request_timeout_ms : left);
    /* Send only over a connection that is up: a request queued for a connection that comes up after we
     * gave up would still reach the member and run a second time (harmless, but wasted). */
    if (atomic_load(&member_at(cl, c->target)->pipes) > 0) {
        call_send(c);
        return;
    }
    int64_t wait = c->attempt_until - now < cl->connect_wait_ms ? c->attempt_until - now : cl->connect_wait_ms;
    c->connect_until = now + wait;
    c->phase = PH_CONNECT;
    start_sleep(c, 1);
}

/* Cancels whatever the running calls wait for (caller holds mu; nng completes cancelled operations on
 * its own threads, so no callback runs inside this). */
static void cancel_calls_locked(tn_cluster *cl)
{
    for (tn_call *c = cl->calls; c; c = c->next) {
        nng_aio_cancel(c->aio);
        nng_aio_cancel(c->timer);
    }
}

int tn_cluster_call_async(tn_cluster *cl, const tn_wr *req, tn_cluster_done_fn done, void *arg)
{
    if (req->oom) return TN_NOMEM;
    tn_req_head head;
    if (tn_req_peek(req->p, req->len, &head) != TN_SUCCESS) return TN_BAD_REQUEST;
    int mode = head.read_mode;
    tn_call *c = sqlite3_malloc(sizeof *c);
    if (!c) return TN_NOMEM;
    memset(c, 0, sizeof *c);
    tn_wr_init(&c->env);
    int rc = tn_env_encode_client(&c->env, cl->token, cl->token_len, req->p, req->len);
    if (rc != TN_SUCCESS || nng_aio_alloc(&c->aio, call_cb, c) != 0 || nng_aio_alloc(&c->timer, call_cb, c) != 0) {
        if (c->aio) nng_aio_free(c->aio);
        tn_wr_free(&c->env);
        sqlite3_free(c);
        return rc != TN_SUCCESS ? rc : TN_NOMEM;
    }
    atomic_init(&c->refs, 1);
    c->cl = cl;
    c->done = done;
    c->arg = arg;
    c->any_member = cl->stale_reads && mode == TN_READ_STALE;
    c->deadline = tn_mono_ms() + cl->deadline_ms;
    c->backoff = BACKOFF_MIN_MS;
    c->target = first_target(cl, c->any_member);
    pthread_mutex_lock(&cl->mu);
    cl->inflight++;
    c->next = cl->calls;
    if (c->next) c->next->pprev = &c->next;
    c->pprev = &cl->calls;
    cl->calls = c;
    pthread_mutex_unlock(&cl->mu);
    call_attempt(c);
    return TN_SUCCESS;
}

/* ---- the synchronous call: the same machine, waited for */

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished;
    int rc;
    tn_wr *resp;
    char *errmsg;
} sync_wait;

static void sync_done(void *arg, int rc, const uint8_t *resp, size_t len, const char *errmsg)
{
    sync_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    if (rc == TN_SUCCESS) {
        tn_wr_raw(w->resp, resp, len);
        if (w->resp->oom) w->rc = TN_NOMEM;
    } else if (errmsg) {
        w->errmsg = sqlite3_mprintf("%s", errmsg);
    }
    w->finished = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int tn_cluster_call(tn_cluster *cl, const tn_wr *req, tn_wr *resp, char **errmsg)
{
    sync_wait w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.resp = resp;
    int rc = tn_cluster_call_async(cl, req, sync_done, &w);
    if (rc == TN_SUCCESS) {
        pthread_mutex_lock(&w.mu);
        while (!w.finished) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.rc;
    } else {
        w.errmsg = sqlite3_mprintf("tarn: %s", rc == TN_BAD_REQUEST ? "internal error: not an encoded request"
                                               : rc == TN_TOO_LARGE ? "request above the message size limit"
                                                                    : "out of memory");
    }
    if (rc == TN_NOMEM && !w.errmsg) w.errmsg = sqlite3_mprintf("tarn: out of memory");
    if (rc != TN_SUCCESS && errmsg) *errmsg = w.errmsg;
    else sqlite3_free(w.errmsg);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

int tn_cluster_req_encode(tn_cluster *cl, tn_req *req, tn_wr *w)
{
    req->client_id = cl->client_id;
    if (req->seq == 0 && tn_req_is_write(req)) req->seq = tn_cluster_next_seq(cl);
    return tn_req_encode(req, w);
}

int tn_cluster_call_req(tn_cluster *cl, tn_req *req, tn_wr *resp, char **errmsg)
{
    tn_wr w;
    tn_wr_init(&w);
    int rc = tn_cluster_req_encode(cl, req, &w);
    if (rc != TN_SUCCESS) {
        if (errmsg) *errmsg = sqlite3_mprintf("tarn: cannot encode the request: %s", tn_code_name(rc));
    } else {
        rc = tn_cluster_call(cl, &w, resp, errmsg);
    }
    tn_wr_free(&w);
    return rc;
}
