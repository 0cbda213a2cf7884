/* transport.c — nng listener, pending client requests, pipelined ordered peer messages (see transport.h).
 *
 * Locks (always taken in this order, never held across a call into user code except in_mu):
 *   set_mu   serializes tn_transport_set_peers / close of the peer set
 *   in_mu    receive-side ordering state; held while on_peer runs (that is what serializes on_peer)
 *   peers_mu the peer array (lookup by send_peer)
 *   peer->mu one peer's queue, window and counters
 *   slot->mu one receive context's state (WAIT -> SEND hand-over between tn_pending_reply and close)
 * nng never runs an aio callback inline from the call that starts the operation (it dispatches to its task
 * queue), so starting an operation while holding peer->mu or slot->mu cannot deadlock with the callback.
 */
#include "transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "clock.h"
#include "tls.h"
#include "tn_code.h"

#define DEFAULT_CONTEXTS 128u
#define DEFAULT_WINDOW 16u
#define DEFAULT_QUEUE 4096u
#define DEFAULT_PEER_TIMEOUT_MS 2000
#define REPLY_SEND_TIMEOUT_MS 10000 /* a reply stuck this long behind a dead connection is dropped */
#define IN_HOLD_MAX 256u            /* peer messages held back waiting for a predecessor, per sender */
#define MAX_WINDOW 64u              /* peer_window is capped here... */
#define SEQ_SPAN_MAX (IN_HOLD_MAX - 1) /* ...and a sender never runs more than this far ahead of its oldest
                                        * unacknowledged message, so a receiver never holds more than
                                        * IN_HOLD_MAX - 1 and never has to skip a gap that may still fill */
#define IN_SENDERS_MAX 1024u        /* senders whose order is tracked; beyond: delivered unordered */
#define LOG_EVERY 1000u             /* after the first 10, log one of every LOG_EVERY rejections */

/* ------------------------------------------------------------------ helpers */

/* ------------------------------------------------------------------ structures */

enum slot_state { SLOT_IDLE, SLOT_RECV, SLOT_WAIT, SLOT_SEND };

/* A receive context of the listener. While it waits for the owner's answer it is the tn_pending. */
struct tn_pending {
    tn_transport *t;
    nng_ctx ctx;
    nng_aio *aio;
    pthread_mutex_t mu;
    int state;    /* slot_state; changed under mu or by the callback while no operation is running */
    nng_msg *req; /* the request held while SLOT_WAIT (on_client's bytes point into it) */
};

typedef struct out_item {
    nng_msg *msg;
    uint64_t seq;
    size_t low_at; /* offset of `low` in the message body */
} out_item;

typedef struct peer_out peer_out;

typedef struct out_slot {
    peer_out *peer;
    nng_ctx ctx;
    nng_aio *aio;
    int busy;      /* a message is in flight on this context */
    int recving;   /* its request left; waiting for the ack */
    uint64_t seq;  /* of the message in flight */
} out_slot;

struct peer_out {
    tn_transport *t;
    uint64_t id;
    char *url;
    nng_socket sock;
    int sock_open;
    pthread_mutex_t mu;
    int closing;
    uint64_t stream;   /* random per queue: the receiver resets its ordering state on a new stream */
    uint64_t next_seq; /* next seq to assign (starts at 1) */
    out_item *queue;   /* ring of q_cap */
    size_t q_head, q_len, q_cap;
    out_slot *slots;
    unsigned n_slots;
    uint64_t seq_span; /* see SEQ_SPAN_MAX */
    tn_peer_stats st;
};

typedef struct in_held {
    uint64_t seq;
    nng_msg *msg;
    const uint8_t *payload;
    size_t len;
} in_held;

/* Receive-side ordering state for one sender. */
typedef struct peer_in {
    uint64_t from, stream, next;
    in_held *held; /* sorted by seq, at most IN_HOLD_MAX */
    size_t n_held;
} peer_in;

struct tn_transport {
    tn_transport_opts o;
    uint8_t *token;
    char *listen_url;
    nng_socket sock;
    int sock_open;
    struct tn_pending *slots;
    unsigned n_slots;
    atomic_int closing;

    pthread_mutex_t set_mu, in_mu, peers_mu;
    peer_out **peers;
    size_t n_peers;
    peer_in *ins;
    size_t n_ins;

    atomic_uint_fast64_t client_msgs, peer_msgs, peer_dups, peer_held, unauthorized, malformed;
};

/* ------------------------------------------------------------------ logging */

static TN_PRINTF(2, 3) void tlog(tn_transport *t, const char *fmt, ...)
{
    char line[512];
    if (!t->o.on_log) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    t->o.on_log(t->o.arg, line);
}

static int log_this_one(uint64_t count) { return count <= 10 || count % LOG_EVERY == 0; }

static int token_ok(const tn_transport *t, const tn_env *env)
{
    if (t->o.token_len == 0) return 1;
    return env->token_len == t->o.token_len && memcmp(env->token, t->token, env->token_len) == 0;
}

/* ------------------------------------------------------------------ receive side */

static void slot_rearm_locked(struct tn_pending *s)
{
    if (atomic_load(&s->t->closing)) {
        s->state = SLOT_IDLE;
        return;
    }
    s->state = SLOT_RECV;
    nng_aio_set_timeout(s->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(s->ctx, s->aio);
}

static void slot_rearm(struct tn_pending *s)
{
    pthread_mutex_lock(&s->mu);
    slot_rearm_locked(s);
    pthread_mutex_unlock(&s->mu);
}

/* Sends bytes as the reply of slot s (state RECV/WAIT -> SEND), or re-arms the receive when that is not
 * possible. Caller holds s->mu. Returns a tn_code. */
static int slot_send_locked(struct tn_pending *s, const void *bytes, size_t len)
{
    nng_msg *m = NULL;
    if (atomic_load(&s->t->closing)) {
        s->state = SLOT_IDLE;
        return TN_UNAVAILABLE;
    }
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, bytes, len) != 0) {
        if (m) nng_msg_free(m);
        slot_rearm_locked(s);
        return TN_NOMEM;
    }
    s->state = SLOT_SEND;
    nng_aio_set_msg(s->aio, m);
    nng_aio_set_timeout(s->aio, REPLY_SEND_TIMEOUT_MS);
    nng_ctx_send(s->ctx, s->aio);
    return TN_SUCCESS;
}

static int slot_send(struct tn_pending *s, const void *bytes, size_t len)
{
    pthread_mutex_lock(&s->mu);
    int rc = slot_send_locked(s, bytes, len);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void slot_send_ack(struct tn_pending *s, uint8_t status)
{
    uint8_t ack[TN_ACK_SIZE] = {TN_ENV_MAGIC0, TN_ACK_MAGIC1, TN_ENV_VERSION, status};
    slot_send(s, ack, sizeof ack);
}

static void slot_send_error(struct tn_pending *s, uint64_t req_id, int code, const char *message)
{
    tn_wr w;
    tn_wr_init(&w);
    if (tn_resp_error(&w, req_id, code, NULL, message) == TN_SUCCESS)
        slot_send(s, w.p, w.len);
    else
        slot_rearm(s);
    tn_wr_free(&w);
}

static void deliver_peer(tn_transport *t, uint64_t from, const uint8_t *p, size_t len)
{
    atomic_fetch_add(&t->peer_msgs, 1);
    if (t->o.on_peer) t->o.on_peer(t->o.arg, from, p, len);
}

static void held_free(peer_in *pi)
{
    for (size_t i = 0; i < pi->n_held; i++) nng_msg_free(pi->held[i].msg);
    pi->n_held = 0;
}

/* Delivers held[0] and removes it. */
static void held_pop_deliver(tn_transport *t, peer_in *pi)
{
    in_held h = pi->held[0];
    memmove(pi->held, pi->held + 1, (pi->n_held - 1) * sizeof *pi->held);
    pi->n_held--;
    deliver_peer(t, pi->from, h.payload, h.len);
    nng_msg_free(h.msg);
}

/* Delivers held messages that are next in line. */
static void held_drain(tn_transport *t, peer_in *pi)
{
    while (pi->n_held && pi->held[0].seq == pi->next) {
        pi->next++;
        held_pop_deliver(t, pi);
    }
}

static peer_in *peer_in_find(tn_transport *t, uint64_t from)
{
    for (size_t i = 0; i < t->n_ins; i++)
        if (t->ins[i].from == from) return &t->ins[i];
    if (t->n_ins >= IN_SENDERS_MAX) return NULL;
    in_held *held = malloc(IN_HOLD_MAX * sizeof *held);
    peer_in *ins = held ? realloc(t->ins, (t->n_ins + 1) * sizeof *ins) : NULL;
    if (!ins) {
        free(held);
        return NULL;
    }
    t->ins = ins;
    peer_in *pi = &t->ins[t->n_ins++];
    memset(pi, 0, sizeof *pi);
    pi->from = from;
    pi->held = held;
    pi->stream = 0; /* streams are random and nonzero: the first message always resets */
    return pi;
}

/* Orders and delivers one PEER message; takes ownership of msg. */
static void peer_accept(tn_transport *t, const tn_env *env, nng_msg *msg)
{
    pthread_mutex_lock(&t->in_mu);
    peer_in *pi = peer_in_find(t, env->from_id);
    if (!pi) { /* untracked sender (limit or no memory): deliver as it comes */
        deliver_peer(t, env->from_id, env->payload, env->payload_len);
        nng_msg_free(msg);
        goto done;
    }
    if (pi->stream != env->stream) { /* new sender instance or new queue: start over from its `low` */
        held_free(pi);
        pi->stream = env->stream;
        pi->next = env->low;
    }
    /* The sender gave up everything below `low`: what we hold below it goes now, the rest never comes. */
    while (pi->n_held && pi->held[0].seq < env->low) held_pop_deliver(t, pi);
    if (env->low > pi->next) pi->next = env->low;
    held_drain(t, pi);
    for (;;) {
        int dup = env->seq < pi->next;
        for (size_t i = 0; i < pi->n_held && !dup; i++) dup = pi->held[i].seq == env->seq;
        if (dup) {
            atomic_fetch_add(&t->peer_dups, 1);
            nng_msg_free(msg);
            goto done;
        }
        if (env->seq == pi->next) {
            pi->next++;
            deliver_peer(t, pi->from, env->payload, env->payload_len);
            nng_msg_free(msg);
            held_drain(t, pi);
            goto done;
        }
        if (pi->n_held < IN_HOLD_MAX) break;
        /* Too far ahead (not a sender of ours, see SEQ_SPAN_MAX): stop waiting for the gap. */
        pi->next = pi->held[0].seq + 1;
        held_pop_deliver(t, pi);
        held_drain(t, pi);
    }
    size_t at = pi->n_held;
    while (at > 0 && pi->held[at - 1].seq > env->seq) at--;
    memmove(pi->held + at + 1, pi->held + at, (pi->n_held - at) * sizeof *pi->held);
    pi->held[at] = (in_held){env->seq, msg, env->payload, env->payload_len};
    atomic_fetch_add(&t->peer_held, 1);
    pi->n_held++;
done:
    pthread_mutex_unlock(&t->in_mu);
}

static void slot_cb(void *arg)
{
    struct tn_pending *s = arg;
    tn_transport *t = s->t;
    int rv = nng_aio_result(s->aio);
    tn_env env;

    if (s->state == SLOT_SEND) {
        if (rv != 0) {
            nng_msg *m = nng_aio_get_msg(s->aio);
            nng_aio_set_msg(s->aio, NULL);
            if (m) nng_msg_free(m);
        }
        slot_rearm(s);
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || atomic_load(&t->closing)) return;
        slot_rearm(s);
        return;
    }
    nng_msg *msg = nng_aio_get_msg(s->aio);
    nng_aio_set_msg(s->aio, NULL);
    if (tn_env_decode(nng_msg_body(msg), nng_msg_len(msg), &env) != TN_SUCCESS) {
        uint64_t n = atomic_fetch_add(&t->malformed, 1) + 1;
        if (log_this_one(n)) tlog(t, "transport: dropped a malformed message of %zu bytes (%llu so far)",
                                  nng_msg_len(msg), (unsigned long long)n);
        nng_msg_free(msg);
        slot_rearm(s);
        return;
    }
    if (!token_ok(t, &env)) {
        uint64_t n = atomic_fetch_add(&t->unauthorized, 1) + 1;
        if (log_this_one(n)) tlog(t, "transport: rejected a %s message with a wrong cluster token (%llu so far)",
                                  env.kind == TN_ENV_PEER ? "peer" : "client", (unsigned long long)n);
        if (env.kind == TN_ENV_PEER) {
            nng_msg_free(msg);
            slot_send_ack(s, TN_ACK_UNAUTHORIZED);
        } else {
            uint64_t req_id = tn_req_peek_id(env.payload, env.payload_len);
            nng_msg_free(msg);
            slot_send_error(s, req_id, TN_UNAUTHORIZED, "tarn: wrong or missing cluster token");
        }
        return;
    }
    if (env.kind == TN_ENV_PEER) {
        peer_accept(t, &env, msg);
        slot_send_ack(s, TN_ACK_OK);
        return;
    }
    if (!t->o.on_client) {
        uint64_t req_id = tn_req_peek_id(env.payload, env.payload_len);
        nng_msg_free(msg);
        slot_send_error(s, req_id, TN_UNAVAILABLE, "tarn: this endpoint takes no client requests");
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->state = SLOT_WAIT;
    s->req = msg;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&t->client_msgs, 1);
    t->o.on_client(t->o.arg, s, env.payload, env.payload_len);
}

int tn_pending_reply(tn_pending *p, const void *resp, size_t len)
{
    int rc;
    tn_wr w;
    tn_wr_init(&w);
    pthread_mutex_lock(&p->mu);
    if (p->state != SLOT_WAIT) {
        pthread_mutex_unlock(&p->mu);
        return atomic_load(&p->t->closing) ? TN_UNAVAILABLE : TN_INTERNAL;
    }
    if (len > TN_WIRE_MAX_MESSAGE) { /* answer TOO_LARGE instead, echoing the request's req_id */
        tn_env env;
        uint64_t req_id = 0;
        if (tn_env_decode(nng_msg_body(p->req), nng_msg_len(p->req), &env) == TN_SUCCESS)
            req_id = tn_req_peek_id(env.payload, env.payload_len);
        tn_resp_error(&w, req_id, TN_TOO_LARGE, NULL, "tarn: response above the message size limit");
        resp = w.oom ? NULL : w.p;
        len = w.len;
    }
    nng_msg_free(p->req);
    p->req = NULL;
    if (!resp) {
        slot_rearm_locked(p);
        rc = TN_NOMEM;
    } else {
        rc = slot_send_locked(p, resp, len);
        if (rc == TN_SUCCESS && w.p) rc = TN_TOO_LARGE;
    }
    pthread_mutex_unlock(&p->mu);
    tn_wr_free(&w);
    return rc;
}

/* ------------------------------------------------------------------ send side */

static void peer_pump(peer_out *p);

static void out_cb(void *arg)
{
    out_slot *s = arg;
    peer_out *p = s->peer;
    int rv = nng_aio_result(s->aio);
    nng_msg *m = nng_aio_get_msg(s->aio);
    nng_aio_set_msg(s->aio, NULL);
    int outcome = 0; /* 0 failed, 1 acked, 2 rejected */

    if (!s->recving) {
        if (rv != 0) { /* the request never left: it is still ours */
            if (m) nng_msg_free(m);
            goto done;
        }
        s->recving = 1;
        nng_aio_set_timeout(s->aio, p->t->o.peer_timeout_ms);
        nng_ctx_recv(s->ctx, s->aio);
        return;
    }
    if (rv == 0 && m) {
        const uint8_t *b = nng_msg_body(m);
        if (nng_msg_len(m) == TN_ACK_SIZE && b[0] == TN_ENV_MAGIC0 && b[1] == TN_ACK_MAGIC1 && b[2] == TN_ENV_VERSION)
            outcome = b[3] == TN_ACK_OK ? 1 : b[3] == TN_ACK_UNAUTHORIZED ? 2 : 0;
    }
    if (m) nng_msg_free(m);
done:
    pthread_mutex_lock(&p->mu);
    s->busy = 0;
    s->recving = 0;
    p->st.inflight--;
    if (outcome == 1) p->st.acked++;
    else if (outcome == 2) p->st.rejected++;
    else p->st.failed++;
    uint64_t rejected = p->st.rejected;
    pthread_mutex_unlock(&p->mu);
    if (outcome == 2 && log_this_one(rejected))
        tlog(p->t, "transport: peer %llu (%s) rejected our cluster token (%llu so far)", (unsigned long long)p->id,
             p->url, (unsigned long long)rejected);
    peer_pump(p);
}

/* Moves queued messages into free window slots. Called without p->mu. */
static void peer_pump(peer_out *p)
{
    for (;;) {
        pthread_mutex_lock(&p->mu);
        out_slot *s = NULL;
        if (!p->closing && p->q_len > 0) {
            /* Acks come back as soon as a message arrives, also one the receiver must hold back because
             * an older one is late; so the in-flight count alone does not bound how many it holds. The
             * distance from the oldest unacknowledged message does. */
            uint64_t oldest = p->queue[p->q_head].seq;
            for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].busy && p->slots[i].seq < oldest) oldest = p->slots[i].seq;
            if (p->queue[p->q_head].seq - oldest < p->seq_span) {
                for (unsigned i = 0; i < p->n_slots && !s; i++)
                    if (!p->slots[i].busy) s = &p->slots[i];
            }
        }
        if (!s) {
            pthread_mutex_unlock(&p->mu);
            return;
        }
        out_item it = p->queue[p->q_head];
        p->q_head = (p->q_head + 1) % p->q_cap;
        p->q_len--;
        s->busy = 1;
        s->recving = 0;
        s->seq = it.seq;
        uint64_t low = it.seq;
        for (unsigned i = 0; i < p->n_slots; i++)
            if (p->slots[i].busy && p->slots[i].seq < low) low = p->slots[i].seq;
        uint8_t *body = nng_msg_body(it.msg);
        for (int i = 0; i < 8; i++) body[it.low_at + (size_t)i] = (uint8_t)(low >> (8 * i));
        p->st.queued = p->q_len;
        p->st.inflight++;
        if (p->st.inflight > p->st.max_inflight) p->st.max_inflight = p->st.inflight;
        p->st.sent++;
        nng_aio_set_msg(s->aio, it.msg);
        nng_aio_set_timeout(s->aio, p->t->o.peer_timeout_ms);
        nng_ctx_send(s->ctx, s->aio);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Stops and frees a peer (it must already be unreachable from t->peers). */
static void peer_out_free(peer_out *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->closing = 1;
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_slots; i++)
        if (p->slots[i].aio) nng_aio_stop(p->slots[i].aio);
    /* A callback may have started an operation on an already stopped aio: such a message stays in it. */
    for (unsigned i = 0; i < p->n_slots; i++) {
        if (!p->slots[i].aio) continue;
        nng_msg *m = nng_aio_get_msg(p->slots[i].aio);
        if (m) nng_msg_free(m);
        nng_aio_free(p->slots[i].aio);
    }
    if (p->sock_open) nng_close(p->sock);
    for (size_t i = 0; i < p->q_len; i++) nng_msg_free(p->queue[(p->q_head + i) % p->q_cap].msg);
    free(p->queue);
    free(p->slots);
    free(p->url);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static int peer_out_new(tn_transport *t, uint64_t id, const char *url, peer_out **out, char *err, size_t err_len)
{
    int rc = TN_NOMEM, rv;
    nng_dialer d;
    peer_out *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p) goto fail;
    pthread_mutex_init(&p->mu, NULL);
    p->t = t;
    p->id = id;
    p->stream = tn_random_u64();
    p->next_seq = 1;
    p->q_cap = t->o.peer_queue_max;
    p->n_slots = t->o.peer_window;
    p->seq_span = 4u * p->n_slots < SEQ_SPAN_MAX ? 4u * p->n_slots : SEQ_SPAN_MAX;
    p->url = strdup(url);
    p->queue = calloc(p->q_cap, sizeof *p->queue);
    p->slots = calloc(p->n_slots, sizeof *p->slots);
    if (!p->url || !p->queue || !p->slots) goto fail;
    if ((rv = nng_req0_open(&p->sock)) != 0) goto nng_fail;
    p->sock_open = 1;
    nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ, 64);
    nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    for (unsigned i = 0; i < p->n_slots; i++) {
        out_slot *s = &p->slots[i];
        s->peer = p;
        if ((rv = nng_ctx_open(&s->ctx, p->sock)) != 0) goto nng_fail;
        if ((rv = nng_aio_alloc(&s->aio, out_cb, s)) != 0) goto nng_fail;
    }
    if ((rv = nng_dialer_create(&d, p->sock, url)) != 0) {
        rc = TN_BAD_REQUEST;
        tn_errf(err, err_len, "peer %llu: cannot dial '%s': %s", (unsigned long long)id, url, nng_strerror(rv));
        goto fail;
    }
    if ((rc = tn_tls_setup_dialer(d, url, &t->o.tls, err, err_len)) != TN_SUCCESS) goto fail;
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 20);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 1000);
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) goto nng_fail;
    *out = p;
    return TN_SUCCESS;
nng_fail:
    rc = rv == NNG_ENOMEM ? TN_NOMEM : TN_BAD_REQUEST;
    tn_errf(err, err_len, "peer %llu (%s): %s", (unsigned long long)id, url, nng_strerror(rv));
fail:
    if (rc == TN_NOMEM && err && !*err) tn_errf(err, err_len, "out of memory");
    peer_out_free(p);
    return rc;
}

static peer_out *peer_find(tn_transport *t, uint64_t id)
{
    for (size_t i = 0; i < t->n_peers; i++)
        if (t->peers[i]->id == id) return t->peers[i];
    return NULL;
}

int tn_transport_set_peers(tn_transport *t, const tn_peer_addr *peers, size_t n)
{
    int rc = TN_NOMEM;
    char err[256] = "";
    peer_out **next = calloc(n ? n : 1, sizeof *next);
    size_t n_next = 0;
    peer_out **old = NULL;
    size_t n_old = 0;
    if (!next) return TN_NOMEM;
    pthread_mutex_lock(&t->set_mu);
    for (size_t i = 0; i < n; i++) {
        if (!peers[i].url) { rc = TN_BAD_REQUEST; goto fail; }
        for (size_t j = 0; j < i; j++)
            if (peers[j].id == peers[i].id) { rc = TN_BAD_REQUEST; goto fail; }
    }
    /* Create what is new first, so that a failure leaves the old set untouched. Only set_peers changes
     * t->peers and we hold set_mu, so reading it here without peers_mu is safe. */
    for (size_t i = 0; i < n; i++) {
        if (peers[i].id == t->o.self_id) continue;
        peer_out *cur = peer_find(t, peers[i].id);
        if (cur && strcmp(cur->url, peers[i].url) == 0) {
            next[n_next++] = cur;
            continue;
        }
        peer_out *p;
        if ((rc = peer_out_new(t, peers[i].id, peers[i].url, &p, err, sizeof err)) != TN_SUCCESS) {
            tlog(t, "transport: %s", err);
            goto fail;
        }
        next[n_next++] = p;
    }
    pthread_mutex_lock(&t->peers_mu);
    old = t->peers;
    n_old = t->n_peers;
    t->peers = next;
    t->n_peers = n_next;
    pthread_mutex_unlock(&t->peers_mu);
    for (size_t i = 0; i < n_old; i++) {
        int kept = 0;
        for (size_t j = 0; j < n_next && !kept; j++) kept = next[j] == old[i];
        if (!kept) peer_out_free(old[i]);
    }
    free(old);
    pthread_mutex_unlock(&t->set_mu);
    return TN_SUCCESS;
fail:
    for (size_t i = 0; i < n_next; i++) {
        int existing = 0;
        for (size_t j = 0; j < t->n_peers && !existing; j++) existing = t->peers[j] == next[i];
        if (!existing) peer_out_free(next[i]);
    }
    free(next);
    pthread_mutex_unlock(&t->set_mu);
    return rc;
}

int tn_transport_send_peer(tn_transport *t, uint64_t peer_id, const void *msg, size_t len)
{
    int rc;
    size_t low_at = 0;
    nng_msg *m = NULL;
    tn_wr w;
    tn_wr_init(&w);
    if (len > TN_WIRE_MAX_MESSAGE) return TN_TOO_LARGE;
    /* Cheap refusal first: a full queue (peer down) must not cost a copy of every message. */
    pthread_mutex_lock(&t->peers_mu);
    peer_out *pre = peer_find(t, peer_id);
    rc = pre ? TN_SUCCESS : TN_NOT_FOUND;
    if (pre) {
        pthread_mutex_lock(&pre->mu);
        if (pre->closing || pre->q_len >= pre->q_cap) {
            pre->st.dropped++;
            rc = TN_UNAVAILABLE;
        }
        pthread_mutex_unlock(&pre->mu);
    }
    pthread_mutex_unlock(&t->peers_mu);
    if (rc != TN_SUCCESS) return rc;
    /* Header only; the payload is copied once, straight into the nng message. seq/low are patched. */
    if ((rc = tn_env_encode_peer(&w, t->token, t->o.token_len, t->o.self_id, 0, 0, 0, NULL, 0, &low_at)) != TN_SUCCESS)
        goto fail;
    rc = TN_NOMEM;
    if (nng_msg_alloc(&m, w.len + len) != 0) goto fail;
    memcpy(nng_msg_body(m), w.p, w.len);
    if (len) memcpy((uint8_t *)nng_msg_body(m) + w.len, msg, len);

    pthread_mutex_lock(&t->peers_mu);
    peer_out *p = peer_find(t, peer_id);
    if (!p) {
        pthread_mutex_unlock(&t->peers_mu);
        rc = TN_NOT_FOUND;
        goto fail;
    }
    pthread_mutex_lock(&p->mu);
    if (p->closing || p->q_len >= p->q_cap) {
        p->st.dropped++;
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&t->peers_mu);
        rc = TN_UNAVAILABLE;
        goto fail;
    }
    uint64_t seq = p->next_seq++;
    uint8_t *body = nng_msg_body(m);
    size_t seq_at = low_at - 8, stream_at = low_at - 16;
    for (int i = 0; i < 8; i++) {
        body[seq_at + (size_t)i] = (uint8_t)(seq >> (8 * i));
        body[stream_at + (size_t)i] = (uint8_t)(p->stream >> (8 * i));
    }
    p->queue[(p->q_head + p->q_len) % p->q_cap] = (out_item){m, seq, low_at};
    p->q_len++;
    p->st.queued = p->q_len;
    m = NULL;
    pthread_mutex_unlock(&p->mu);
    /* Pumping under peers_mu keeps p alive: set_peers frees a peer only after unlinking it under peers_mu. */
    peer_pump(p);
    pthread_mutex_unlock(&t->peers_mu);
    rc = TN_SUCCESS;
fail:
    if (m) nng_msg_free(m);
    tn_wr_free(&w);
    return rc;
}

int tn_transport_peer_stats(tn_transport *t, uint64_t peer_id, tn_peer_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&t->peers_mu);
    peer_out *p = peer_find(t, peer_id);
    if (p) {
        pthread_mutex_lock(&p->mu);
        *out = p->st;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&t->peers_mu);
    return p ? TN_SUCCESS : TN_NOT_FOUND;
}

void tn_transport_stats_get(tn_transport *t, tn_transport_stats *out)
{
    out->client_msgs = atomic_load(&t->client_msgs);
    out->peer_msgs = atomic_load(&t->peer_msgs);
    out->peer_dups = atomic_load(&t->peer_dups);
    out->peer_held = atomic_load(&t->peer_held);
    out->unauthorized = atomic_load(&t->unauthorized);
    out->malformed = atomic_load(&t->malformed);
}

/* ------------------------------------------------------------------ open / close */

static int listen_start(tn_transport *t, char *err, size_t err_len)
{
    int rc, rv;
    nng_listener l;
    if ((rv = nng_rep0_open(&t->sock)) != 0) goto nng_fail;
    t->sock_open = 1;
    nng_socket_set_size(t->sock, NNG_OPT_RECVMAXSZ, TN_TRANSPORT_MAX_MESSAGE);
    t->slots = calloc(t->o.n_contexts, sizeof *t->slots);
    if (!t->slots) {
        tn_errf(err, err_len, "out of memory");
        return TN_NOMEM;
    }
    for (unsigned i = 0; i < t->o.n_contexts; i++) {
        struct tn_pending *s = &t->slots[i];
        s->t = t;
        pthread_mutex_init(&s->mu, NULL);
        t->n_slots = i + 1;
        if ((rv = nng_ctx_open(&s->ctx, t->sock)) != 0) goto nng_fail;
        if ((rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0) goto nng_fail;
    }
    if ((rv = nng_listener_create(&l, t->sock, t->listen_url)) != 0) {
        tn_errf(err, err_len, "cannot listen on '%s': %s", t->listen_url, nng_strerror(rv));
        return TN_BAD_REQUEST;
    }
    if ((rc = tn_tls_setup_listener(l, t->listen_url, &t->o.tls, err, err_len)) != TN_SUCCESS) return rc;
    if ((rv = nng_listener_start(l, 0)) != 0) {
        tn_errf(err, err_len, "cannot listen on '%s': %s", t->listen_url, nng_strerror(rv));
        return TN_UNAVAILABLE;
    }
    for (unsigned i = 0; i < t->n_slots; i++) slot_rearm(&t->slots[i]);
    return TN_SUCCESS;
nng_fail:
    tn_errf(err, err_len, "cannot set up the listener: %s", nng_strerror(rv));
    return rv == NNG_ENOMEM ? TN_NOMEM : TN_UNAVAILABLE;
}

int tn_transport_open(const tn_transport_opts *opts, tn_transport **out, char *err, size_t err_len)
{
    int rc = TN_NOMEM;
    tn_transport *t = calloc(1, sizeof *t);
    *out = NULL;
    if (err && err_len) err[0] = 0;
    if (!t) goto fail;
    t->o = *opts;
    pthread_mutex_init(&t->set_mu, NULL);
    pthread_mutex_init(&t->in_mu, NULL);
    pthread_mutex_init(&t->peers_mu, NULL);
    atomic_init(&t->closing, 0);
    if (!t->o.n_contexts) t->o.n_contexts = DEFAULT_CONTEXTS;
    if (!t->o.peer_window) t->o.peer_window = DEFAULT_WINDOW;
    if (t->o.peer_window > MAX_WINDOW) t->o.peer_window = MAX_WINDOW;
    if (!t->o.peer_queue_max) t->o.peer_queue_max = DEFAULT_QUEUE;
    if (t->o.peer_timeout_ms <= 0) t->o.peer_timeout_ms = DEFAULT_PEER_TIMEOUT_MS;
    t->o.listen_url = NULL;
    t->o.token = NULL;
    if (opts->token_len > TN_ENV_MAX_TOKEN) {
        rc = TN_BAD_REQUEST;
        tn_errf(err, err_len, "cluster token longer than %u bytes", TN_ENV_MAX_TOKEN);
        goto fail;
    }
    if (opts->token_len) {
        if (!(t->token = malloc(opts->token_len))) goto fail;
        memcpy(t->token, opts->token, opts->token_len);
    }
    if (opts->listen_url) {
        if (!(t->listen_url = strdup(opts->listen_url))) goto fail;
        if ((rc = listen_start(t, err, err_len)) != TN_SUCCESS) goto fail;
    }
    *out = t;
    return TN_SUCCESS;
fail:
    if (rc == TN_NOMEM && err && err_len && !err[0]) tn_errf(err, err_len, "out of memory");
    tn_transport_close(t);
    return rc;
}

void tn_transport_close(tn_transport *t)
{
    if (!t) return;
    atomic_store(&t->closing, 1);
    /* Barrier: a tn_pending_reply that saw closing == 0 has issued its send before we stop the aio. */
    for (unsigned i = 0; i < t->n_slots; i++) {
        pthread_mutex_lock(&t->slots[i].mu);
        pthread_mutex_unlock(&t->slots[i].mu);
    }
    for (unsigned i = 0; i < t->n_slots; i++)
        if (t->slots[i].aio) nng_aio_stop(t->slots[i].aio);
    if (t->sock_open) nng_close(t->sock);
    for (unsigned i = 0; i < t->n_slots; i++) {
        struct tn_pending *s = &t->slots[i];
        if (s->aio) {
            nng_msg *m = nng_aio_get_msg(s->aio);
            if (m) nng_msg_free(m);
            nng_aio_free(s->aio);
        }
        if (s->req) nng_msg_free(s->req); /* never answered: dropped (see transport.h) */
        pthread_mutex_destroy(&s->mu);
    }
    free(t->slots);
    for (size_t i = 0; i < t->n_peers; i++) peer_out_free(t->peers[i]);
    free(t->peers);
    for (size_t i = 0; i < t->n_ins; i++) {
        held_free(&t->ins[i]);
        free(t->ins[i].held);
    }
    free(t->ins);
    pthread_mutex_destroy(&t->set_mu);
    pthread_mutex_destroy(&t->in_mu);
    pthread_mutex_destroy(&t->peers_mu);
    free(t->token);
    free(t->listen_url);
    free(t);
}
