/* engine.c — the embedded engine (see engine.h). */
#include "engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sm.h"
#include "tn_code.h"
#include "wire.h"

#define EXPIRY_BATCH 256

struct tn_engine {
    char *name;
    int refs;                 /* guarded by the registry mutex */
    struct tn_engine *next;   /* registry list */

    pthread_rwlock_t lock;    /* writers: apply; readers: read requests */
    tn_sm *sm;
    uint64_t next_index;      /* guarded by lock (write) */
    int64_t last_time_ms;     /* commands never go back in time, whatever the wall clock does */

    pthread_mutex_t session_mu;
    uint64_t next_session;

    pthread_t expiry_thread;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stopping;
};

/* The process-wide registry (see engine.h for why this global exists). */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static tn_engine *registry_head;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Applies one request as the next command. Caller holds the write lock. */
static int apply_locked(tn_engine *e, uint64_t session, const void *req, size_t len, tn_wr *out)
{
    tn_wr cmd;
    int64_t now = wall_ms();
    if (now < e->last_time_ms) now = e->last_time_ms;
    e->last_time_ms = now;
    tn_wr_init(&cmd);
    int rc = tn_cmd_encode(now, session, req, len, &cmd);
    if (rc == TN_SUCCESS) rc = tn_sm_apply(e->sm, ++e->next_index, cmd.p, cmd.len, out);
    tn_wr_free(&cmd);
    return rc;
}

typedef struct due_list {
    size_t n;
    struct { uint8_t *key; size_t len; uint64_t rev; } items[EXPIRY_BATCH];
} due_list;

static int collect_due(void *arg, const tn_node_view *v)
{
    due_list *d = arg;
    if (d->n == EXPIRY_BATCH) return 1;
    uint8_t *k = malloc(v->key_len ? v->key_len : 1);
    if (!k) return 1;
    memcpy(k, v->key, v->key_len);
    d->items[d->n].key = k;
    d->items[d->n].len = v->key_len;
    d->items[d->n].rev = v->create_rev;
    d->n++;
    return 0;
}

/* Expires what is due now: one EXPIRE command per node, each carrying the create revision seen. A node
 * re-created or refreshed in between makes the command fail harmlessly (TTL_INDEX_MISMATCH/NOT_EXPIRED). */
static void expire_due(tn_engine *e)
{
    due_list *d = calloc(1, sizeof *d);
    if (!d) return;
    int64_t now = wall_ms();
    pthread_rwlock_rdlock(&e->lock);
    tn_tree_due(tn_sm_tree(e->sm), now, EXPIRY_BATCH, collect_due, d);
    pthread_rwlock_unlock(&e->lock);

    for (size_t i = 0; i < d->n; i++) {
        tn_op op = {.opcode = TN_OP_KV_EXPIRE, .key = d->items[i].key, .key_len = d->items[i].len,
                    .expect_rev = d->items[i].rev};
        tn_req req = {.n_ops = 1, .ops = &op};
        tn_wr reqb, resp;
        tn_wr_init(&reqb);
        tn_wr_init(&resp);
        if (tn_req_encode(&req, &reqb) == TN_SUCCESS) {
            pthread_rwlock_wrlock(&e->lock);
            apply_locked(e, 0, reqb.p, reqb.len, &resp);
            pthread_rwlock_unlock(&e->lock);
        }
        tn_wr_free(&reqb);
        tn_wr_free(&resp);
        free(d->items[i].key);
    }
    free(d);
}

static void *expiry_main(void *arg)
{
    tn_engine *e = arg;
    pthread_mutex_lock(&e->stop_mu);
    while (!e->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += TN_ENGINE_EXPIRY_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&e->stop_cv, &e->stop_mu, &until);
        if (e->stopping) break;
        if (rc == ETIMEDOUT) {
            pthread_mutex_unlock(&e->stop_mu);
            expire_due(e);
            pthread_mutex_lock(&e->stop_mu);
        }
    }
    pthread_mutex_unlock(&e->stop_mu);
    return NULL;
}

static void engine_destroy(tn_engine *e)
{
    pthread_rwlock_destroy(&e->lock);
    pthread_mutex_destroy(&e->session_mu);
    pthread_mutex_destroy(&e->stop_mu);
    pthread_cond_destroy(&e->stop_cv);
    tn_sm_free(e->sm);
    free(e->name);
    free(e);
}

static tn_engine *engine_create(const char *name)
{
    tn_engine *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->name = strdup(name);
    e->sm = tn_sm_new(NULL);
    e->next_session = 1;
    pthread_rwlock_init(&e->lock, NULL);
    pthread_mutex_init(&e->session_mu, NULL);
    pthread_mutex_init(&e->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!e->name || !e->sm) goto fail;
    if (pthread_create(&e->expiry_thread, NULL, expiry_main, e) != 0) goto fail;
    return e;
fail:
    engine_destroy(e);
    return NULL;
}

int tn_engine_open(const char *name, tn_engine **out)
{
    tn_engine *e;
    pthread_mutex_lock(&registry_mu);
    for (e = registry_head; e; e = e->next)
        if (strcmp(e->name, name) == 0) break;
    if (!e) {
        e = engine_create(name);
        if (e) {
            e->next = registry_head;
            registry_head = e;
        }
    }
    if (e) e->refs++;
    pthread_mutex_unlock(&registry_mu);
    *out = e;
    return e ? TN_SUCCESS : TN_NOMEM;
}

void tn_engine_close(tn_engine *e)
{
    if (!e) return;
    pthread_mutex_lock(&registry_mu);
    int last = --e->refs == 0;
    if (last) {
        for (tn_engine **pp = &registry_head; *pp; pp = &(*pp)->next) {
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        }
    }
    pthread_mutex_unlock(&registry_mu);
    if (!last) return;
    pthread_mutex_lock(&e->stop_mu);
    e->stopping = 1;
    pthread_cond_signal(&e->stop_cv);
    pthread_mutex_unlock(&e->stop_mu);
    pthread_join(e->expiry_thread, NULL);
    engine_destroy(e);
}

uint64_t tn_engine_new_session(tn_engine *e)
{
    pthread_mutex_lock(&e->session_mu);
    uint64_t s = e->next_session++;
    pthread_mutex_unlock(&e->session_mu);
    return s;
}

uint64_t tn_engine_revision(tn_engine *e)
{
    pthread_rwlock_rdlock(&e->lock);
    uint64_t r = tn_sm_applied(e->sm);
    pthread_rwlock_unlock(&e->lock);
    return r;
}

int tn_engine_call(tn_engine *e, uint64_t session, const void *req_bytes, size_t len, tn_wr *out)
{
    tn_req req;
    int rc = tn_req_decode(req_bytes, len, &req);
    if (rc != TN_SUCCESS) return tn_resp_error(out, 0, rc, NULL, "request could not be decoded");
    if (tn_req_is_write(&req)) {
        pthread_rwlock_wrlock(&e->lock);
        rc = apply_locked(e, session, req_bytes, len, out);
        pthread_rwlock_unlock(&e->lock);
    } else {
        pthread_rwlock_rdlock(&e->lock);
        rc = tn_sm_read(e->sm, &req, out);
        pthread_rwlock_unlock(&e->lock);
    }
    tn_req_clear(&req);
    return rc;
}
