/* engine.c — the embedded engine: a named, shared tn_node running alone in the process (see engine.h). */
#include "engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "node.h"
#include "status.h"
#include "tn_code.h"
#include "wire.h"

/* How long an open waits for the node to replay its log and win its election. */
#define OPEN_READY_TIMEOUT_MS 600000
/* Embedded callers do not retry: a write waits for its answer (the node alone always gets there). */
#define REQUEST_TIMEOUT_MS (24 * 3600 * 1000)

struct tn_engine {
    char *name;
    char *data_dir;         /* NULL = in memory */
    int refs;               /* guarded by the registry mutex */
    struct tn_engine *next; /* registry list */
    tn_node *node;

    pthread_mutex_t session_mu;
    uint64_t next_session;
};

/* The process-wide registry (see engine.h for why this global exists). */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static tn_engine *registry_head;

/* One request in flight: the loop's callback copies the response and wakes the caller. */
typedef struct call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    tn_wr *out;
} call;

static void call_done(void *arg, const uint8_t *resp, size_t len)
{
    call *c = arg;
    pthread_mutex_lock(&c->mu);
    tn_wr_raw(c->out, resp, len);
    c->done = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Submits req to the node and waits for the response (appended to out). SUCCESS or NOMEM. */
static int submit_wait(tn_engine *e, uint64_t owner, const void *req, size_t len, tn_wr *out)
{
    call c = {.out = out};
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    tn_node_submit(e->node, req, len, owner, call_done, &c);
    pthread_mutex_lock(&c.mu);
    while (!c.done) pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
    return out->oom ? TN_NOMEM : TN_SUCCESS;
}

static void engine_destroy(tn_engine *e)
{
    if (e->node) tn_node_stop(e->node);
    tn_node_close(e->node);
    pthread_mutex_destroy(&e->session_mu);
    free(e->name);
    free(e->data_dir);
    free(e);
}

static tn_engine *engine_create(const char *name, const char *data_dir, int *rc, char *err, size_t errlen)
{
    tn_engine *e = calloc(1, sizeof *e);
    *rc = TN_NOMEM;
    if (!e) return NULL;
    pthread_mutex_init(&e->session_mu, NULL);
    e->name = strdup(name);
    e->data_dir = data_dir ? strdup(data_dir) : NULL;
    /* Session ids must not repeat across restarts of a persistent engine (the session table survives):
     * start from the clock. */
    e->next_session = data_dir ? ((uint64_t)tn_wall_ms() << 16) | 1 : 1;
    if (!e->name || (data_dir && !e->data_dir)) goto fail;

    tn_node_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = 1;
    cfg.data_dir = e->data_dir;
    cfg.snapshot_entries = TN_ENGINE_SNAPSHOT_EVERY;
    cfg.request_timeout_ms = REQUEST_TIMEOUT_MS;
    *rc = tn_node_open(&cfg, &e->node, err, errlen);
    if (*rc != TN_SUCCESS) goto fail;
    *rc = tn_node_start(e->node, err, errlen);
    if (*rc != TN_SUCCESS) goto fail;
    /* The node replays its log and elects itself on its loop thread: wait until its state is current. */
    int64_t deadline = tn_mono_ms() + OPEN_READY_TIMEOUT_MS;
    while (!tn_node_local_ready(e->node)) {
        if (tn_node_failed(e->node) || tn_mono_ms() > deadline) {
            *rc = TN_IO_ERROR;
            snprintf(err, errlen, "%s: the node did not come up (see stderr)", data_dir ? data_dir : name);
            goto fail;
        }
        struct timespec ts = {0, 100 * 1000};
        nanosleep(&ts, NULL);
    }
    *rc = TN_SUCCESS;
    return e;
fail:
    engine_destroy(e);
    return NULL;
}

int tn_engine_open(const char *name, tn_engine **out) { return tn_engine_open_dir(name, NULL, out, NULL, 0); }

int tn_engine_open_dir(const char *name, const char *data_dir, tn_engine **out, char *err, size_t errlen)
{
    tn_engine *e;
    char dummy[8];
    int rc = TN_SUCCESS;
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    pthread_mutex_lock(&registry_mu);
    for (e = registry_head; e; e = e->next)
        if (strcmp(e->name, name) == 0) break;
    if (e && (data_dir ? !e->data_dir || strcmp(e->data_dir, data_dir) != 0 : e->data_dir != NULL)) {
        snprintf(err, errlen, "engine '%s' is already open with another data directory", name);
        e = NULL;
        rc = TN_BAD_REQUEST;
    } else if (!e) {
        e = engine_create(name, data_dir, &rc, err, errlen);
        if (e) {
            e->next = registry_head;
            registry_head = e;
        }
    }
    if (e) e->refs++;
    pthread_mutex_unlock(&registry_mu);
    *out = e;
    return e ? TN_SUCCESS : rc;
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
    if (last) engine_destroy(e);
}

int tn_engine_snapshot(tn_engine *e)
{
    if (!e->data_dir) return TN_BAD_REQUEST;
    tn_admin a;
    tn_wr admin, reqb, out;
    tn_resp resp;
    memset(&a, 0, sizeof a);
    a.kind = TN_ADMIN_SNAPSHOT;
    tn_wr_init(&admin);
    tn_wr_init(&reqb);
    tn_wr_init(&out);
    tn_admin_encode(&a, &admin);
    tn_op op = {.opcode = TN_OP_ADMIN, .value = admin.p, .value_len = admin.len};
    tn_req req = {.n_ops = 1, .ops = &op};
    int rc = admin.oom ? TN_NOMEM : tn_req_encode(&req, &reqb);
    if (rc == TN_SUCCESS) rc = reqb.oom ? TN_NOMEM : submit_wait(e, 0, reqb.p, reqb.len, &out);
    if (rc == TN_SUCCESS && tn_resp_decode(out.p, out.len, &resp) == TN_SUCCESS) {
        rc = resp.code;
        tn_resp_clear(&resp);
    } else if (rc == TN_SUCCESS) {
        rc = TN_INTERNAL;
    }
    tn_wr_free(&admin);
    tn_wr_free(&reqb);
    tn_wr_free(&out);
    return rc;
}

uint64_t tn_engine_new_session(tn_engine *e)
{
    pthread_mutex_lock(&e->session_mu);
    uint64_t s = e->next_session++;
    pthread_mutex_unlock(&e->session_mu);
    return s;
}

uint64_t tn_engine_revision(tn_engine *e) { return tn_node_applied(e->node); }

uint64_t tn_engine_log_first_index(tn_engine *e) { return tn_node_log_first_index(e->node); }

int tn_engine_call(tn_engine *e, uint64_t session, const void *req_bytes, size_t len, tn_wr *out)
{
    tn_req req;
    int rc = tn_req_decode(req_bytes, len, &req);
    if (rc != TN_SUCCESS) return tn_resp_error(out, 0, rc, NULL, "request could not be decoded");
    /* Reads on the caller's thread (the fast path); writes, STATUS and ADMIN through the node's loop. */
    int local = !tn_req_is_write(&req) && !(req.n_ops && req.ops[0].opcode == TN_OP_STATUS);
    if (local) {
        int served = 0;
        rc = tn_node_read_local(e->node, &req, out, &served);
        local = served;
    }
    tn_req_clear(&req);
    return local ? rc : submit_wait(e, session, req_bytes, len, out);
}
