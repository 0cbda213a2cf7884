/* bench_floor.c — what this machine charges for the two things every replicated write is made of, before
 * Raft does anything: an nng request/reply round trip on loopback, and a hand-off between two threads.
 *
 *   build/bench_floor [--seconds S] [--clients N,N,...]
 *
 * 1. Thread hop: two threads pass a token back and forth through a mutex + condvar (the way transport
 *    callbacks hand work to the node's loop); half a round trip is one hop.
 * 2. nng echo: a rep0 socket with 128 contexts answering from nng's callbacks (as raftnet's transport does)
 *    and N req0 clients, each a thread with its own socket and one 272-byte request in flight (the size of
 *    a `tarn bench` put). All in one process on 127.0.0.1: the figure is an upper bound for any request
 *    that crosses nng once each way on this machine, with both ends sharing its cores.
 * Figures go to docs/benchmarks.md. Bounded: each client count runs --seconds (default 3).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#define N_CTX 128
#define MAX_CLIENTS 256
#define REQ_BYTES 272

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- thread hop ---- */

typedef struct pingpong {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn; /* 0: main's, 1: the other thread's */
    long rounds;
} pingpong;

static void *pong_main(void *arg)
{
    pingpong *pp = arg;
    for (long i = 0; i < pp->rounds; i++) {
        pthread_mutex_lock(&pp->mu);
        while (pp->turn != 1) pthread_cond_wait(&pp->cv, &pp->mu);
        pp->turn = 0;
        pthread_cond_signal(&pp->cv);
        pthread_mutex_unlock(&pp->mu);
    }
    return NULL;
}

static void thread_hop(void)
{
    pingpong pp = {.turn = 0, .rounds = 50000};
    pthread_mutex_init(&pp.mu, NULL);
    pthread_cond_init(&pp.cv, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, pong_main, &pp) != 0) {
        fprintf(stderr, "bench_floor: cannot start a thread\n");
        exit(1);
    }
    double t0 = now_s();
    for (long i = 0; i < pp.rounds; i++) {
        pthread_mutex_lock(&pp.mu);
        pp.turn = 1;
        pthread_cond_signal(&pp.cv);
        while (pp.turn != 0) pthread_cond_wait(&pp.cv, &pp.mu);
        pthread_mutex_unlock(&pp.mu);
    }
    double us = (now_s() - t0) * 1e6 / (double)pp.rounds;
    pthread_join(t, NULL);
    printf("thread hop (mutex + condvar): round trip %.1f us, one hop %.1f us\n", us, us / 2);
    pthread_mutex_destroy(&pp.mu);
    pthread_cond_destroy(&pp.cv);
}

/* ---- nng echo ---- */

typedef struct echo_ctx {
    nng_aio *aio;
    nng_ctx ctx;
    int sending;
} echo_ctx;

static void echo_cb(void *arg)
{
    echo_ctx *c = arg;
    if (nng_aio_result(c->aio) != 0) {
        if (c->sending) { /* the reply was not sent: free it, keep serving */
            nng_msg *m = nng_aio_get_msg(c->aio);
            if (m) nng_msg_free(m);
        } else {
            return; /* closed */
        }
    } else if (!c->sending) {
        nng_aio_set_msg(c->aio, nng_aio_get_msg(c->aio)); /* echo the request back */
        c->sending = 1;
        nng_ctx_send(c->ctx, c->aio);
        return;
    }
    c->sending = 0;
    nng_ctx_recv(c->ctx, c->aio);
}

typedef struct client {
    pthread_t thread;
    const char *url;
    atomic_int *stop;
    long done;
    int failed;
} client;

static void *client_main(void *arg)
{
    client *cl = arg;
    nng_socket s;
    uint8_t body[REQ_BYTES];
    memset(body, 'v', sizeof body);
    if (nng_req0_open(&s) != 0 || nng_dial(s, cl->url, NULL, 0) != 0) {
        cl->failed = 1;
        return NULL;
    }
    while (!atomic_load(cl->stop)) {
        nng_msg *m;
        if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, body, sizeof body) != 0) break;
        if (nng_sendmsg(s, m, 0) != 0) {
            nng_msg_free(m);
            break;
        }
        if (nng_recvmsg(s, &m, 0) != 0) break;
        nng_msg_free(m);
        cl->done++;
    }
    nng_close(s);
    return NULL;
}

static int echo_run(const char *url, int n_clients, double seconds)
{
    client *cl = calloc((size_t)n_clients, sizeof *cl);
    atomic_int stop;
    atomic_init(&stop, 0);
    if (!cl) return -1;
    for (int i = 0; i < n_clients; i++) {
        cl[i].url = url;
        cl[i].stop = &stop;
        if (pthread_create(&cl[i].thread, NULL, client_main, &cl[i]) != 0) {
            atomic_store(&stop, 1);
            for (int k = 0; k < i; k++) pthread_join(cl[k].thread, NULL);
            free(cl);
            return -1;
        }
    }
    double t0 = now_s();
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    long total = 0;
    int failed = 0;
    for (int i = 0; i < n_clients; i++) {
        pthread_join(cl[i].thread, NULL);
        total += cl[i].done;
        failed |= cl[i].failed;
    }
    double elapsed = now_s() - t0;
    free(cl);
    if (failed) return -1;
    printf("nng req/rep echo, %3d client%s: %8.0f round trips/s\n", n_clients, n_clients == 1 ? " " : "s",
           (double)total / elapsed);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 3;
    const char *counts = "1,16,64";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
            counts = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_floor [--seconds S] [--clients N,N,...]\n");
            return 2;
        }
    }
    if (!(seconds > 0 && seconds <= 600)) {
        fprintf(stderr, "bench_floor: --seconds must be in (0, 600]\n");
        return 2;
    }
    thread_hop();

    nng_socket srv;
    nng_listener l;
    char url[64];
    echo_ctx ctx[N_CTX];
    memset(ctx, 0, sizeof ctx);
    if (nng_rep0_open(&srv) != 0) return 1;
    /* port 0: the kernel picks a free one; read it back for the clients */
    if (nng_listen(srv, "tcp://127.0.0.1:0", &l, 0) != 0) {
        fprintf(stderr, "bench_floor: cannot listen on 127.0.0.1\n");
        return 1;
    }
    int port = 0;
    if (nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0) return 1;
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    for (int i = 0; i < N_CTX; i++) {
        if (nng_aio_alloc(&ctx[i].aio, echo_cb, &ctx[i]) != 0 || nng_ctx_open(&ctx[i].ctx, srv) != 0) return 1;
        nng_ctx_recv(ctx[i].ctx, ctx[i].aio);
    }
    int rc = 0;
    for (const char *p = counts; *p && rc == 0;) {
        int n = atoi(p);
        if (n < 1 || n > MAX_CLIENTS) {
            fprintf(stderr, "bench_floor: client counts must be in 1..%d\n", MAX_CLIENTS);
            rc = 2;
            break;
        }
        if (echo_run(url, n, seconds) != 0) {
            fprintf(stderr, "bench_floor: a client could not connect or start\n");
            rc = 1;
        }
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    nng_close(srv);
    for (int i = 0; i < N_CTX; i++) nng_aio_free(ctx[i].aio);
    return rc;
}
