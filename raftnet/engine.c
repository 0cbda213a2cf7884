/* engine.c — the embedded engine (see engine.h). */
#include "engine.h"
#include "hardstate.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logstore.h"
#include "sm.h"
#include "snapfile.h"
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

    /* persistent engines only (data_dir != NULL); owner calls on log are made under the write lock */
    char *data_dir;
    char *snap_dir;
    tn_logstore *log;
    uint64_t snap_index;
    int failed; /* a log write or sync failed: every later call gets IO_ERROR (guarded by lock) */

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

/* Persistent engines: writes the state machine image as a snapshot file at the last applied index and
 * drops the log up to it. Caller holds the write lock. A failure only logs nothing and keeps the log
 * (the snapshot is an optimisation), except a failed compaction, which fails the engine. */
static int snapshot_locked(tn_engine *e)
{
    uint64_t index = e->next_index;
    if (!e->log || index <= e->snap_index) return TN_SUCCESS;
    tn_wr img;
    tn_wr_init(&img);
    int rc = tn_sm_snapshot_save(e->sm, &img);
    /* everything up to index must be durable before the log may lose it */
    if (rc == TN_SUCCESS) rc = tn_logstore_sync(e->log, NULL);
    if (rc == TN_SUCCESS)
        rc = tn_snapfile_save(e->snap_dir, index, 1, NULL, 0, img.p, img.len, NULL, 0);
    if (rc == TN_SUCCESS) {
        rc = tn_logstore_compact(e->log, index);
        if (rc != TN_SUCCESS) e->failed = 1;
        else e->snap_index = index;
    }
    tn_wr_free(&img);
    return rc;
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
    if (rc == TN_SUCCESS) {
        uint64_t index = ++e->next_index;
        rc = tn_sm_apply(e->sm, index, cmd.p, cmd.len, out);
        if (rc == TN_INTERNAL) e->failed = 1; /* a failed rollback: the state can no longer be trusted */
        /* The log gets the command whatever its outcome (a rejected command is consumed by the state
         * machine too), so replaying the log rebuilds exactly this state. */
        if (e->log && rc != TN_NOMEM &&
            tn_logstore_append(e->log, index, 1, 0 /* TN_ENTRY_NORMAL */, cmd.p, cmd.len) != TN_SUCCESS)
            e->failed = 1;
        if (e->log && !e->failed && index - e->snap_index >= TN_ENGINE_SNAPSHOT_EVERY)
            snapshot_locked(e);
    }
    tn_wr_free(&cmd);
    return rc;
}

/* Makes every write appended so far durable (group commit: concurrent callers share fsyncs). Called
 * without the lock. 0, or -1 after marking the engine failed. */
static int sync_log(tn_engine *e)
{
    if (!e->log) return 0;
    if (tn_logstore_sync(e->log, NULL) == TN_SUCCESS) return 0;
    pthread_rwlock_wrlock(&e->lock);
    e->failed = 1;
    pthread_rwlock_unlock(&e->lock);
    return -1;
}

/* Expires what is due now, as one command (see tn_sm_expiry_request). */
static void expire_due(tn_engine *e)
{
    tn_wr reqb, resp;
    tn_wr_init(&reqb);
    tn_wr_init(&resp);
    pthread_rwlock_rdlock(&e->lock);
    int rc = tn_sm_expiry_request(e->sm, wall_ms(), EXPIRY_BATCH, &reqb);
    pthread_rwlock_unlock(&e->lock);
    if (rc == TN_SUCCESS) {
        pthread_rwlock_wrlock(&e->lock);
        if (!e->failed) apply_locked(e, 0, reqb.p, reqb.len, &resp);
        pthread_rwlock_unlock(&e->lock);
        sync_log(e);
    }
    tn_wr_free(&reqb);
    tn_wr_free(&resp);
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
    if (e->log && !e->failed) tn_logstore_sync(e->log, NULL);
    tn_logstore_close(e->log);
    tn_sm_free(e->sm);
    free(e->name);
    free(e->data_dir);
    free(e->snap_dir);
    free(e);
}

/* Loads the newest snapshot and replays the log after it. SUCCESS, IO_ERROR (message in err), NOMEM. */
static int engine_recover(tn_engine *e, char *err, size_t errlen)
{
    size_t dl = strlen(e->data_dir);
    char *log_dir = malloc(dl + 5);
    e->snap_dir = malloc(dl + 6);
    if (!log_dir || !e->snap_dir) {
        free(log_dir);
        return TN_NOMEM;
    }
    snprintf(log_dir, dl + 5, "%s/log", e->data_dir);
    snprintf(e->snap_dir, dl + 6, "%s/snap", e->data_dir);
    int rc = TN_IO_ERROR;
    tn_snap_meta meta = {0};
    uint8_t *conf = NULL, *img = NULL;
    tn_log_batch batch = {0};
    if (tn_mkdir_p(e->data_dir) != 0) {
        snprintf(err, errlen, "%s: cannot create: %s", e->data_dir, strerror(errno));
        goto done;
    }
    rc = tn_snapfile_load(e->snap_dir, &meta, &conf, &img, err, errlen);
    if (rc == TN_SUCCESS) {
        rc = tn_sm_snapshot_load(e->sm, img, (size_t)meta.data_len);
        if (rc != TN_SUCCESS) {
            snprintf(err, errlen, "%s: snapshot %" PRIu64 " does not decode", e->snap_dir, meta.index);
            rc = TN_IO_ERROR;
            goto done;
        }
        e->snap_index = meta.index;
    } else if (rc != TN_NOT_FOUND) {
        goto done;
    }
    rc = tn_logstore_open(log_dir, NULL, &e->log, NULL, err, errlen);
    if (rc != TN_SUCCESS) goto done;
    uint64_t first = tn_logstore_first_index(e->log), last = tn_logstore_last_index(e->log);
    if (e->snap_index >= first) { /* the compaction after the snapshot did not finish */
        rc = e->snap_index <= last ? tn_logstore_compact(e->log, e->snap_index)
                                   : tn_logstore_reset(e->log, e->snap_index, 1);
        if (rc != TN_SUCCESS) {
            tn_logstore_errmsg(e->log, err, errlen);
            goto done;
        }
        first = tn_logstore_first_index(e->log);
        last = tn_logstore_last_index(e->log);
    } else if (first > e->snap_index + 1) {
        rc = TN_IO_ERROR;
        snprintf(err, errlen, "%s: log starts at %" PRIu64 " but the snapshot ends at %" PRIu64, log_dir, first,
                 e->snap_index);
        goto done;
    }
    e->next_index = e->snap_index;
    for (uint64_t lo = first; lo <= last;) {
        rc = tn_logstore_read_batch(e->log, lo, last, 64u << 20, &batch);
        if (rc != TN_SUCCESS) {
            tn_logstore_errmsg(e->log, err, errlen);
            goto done;
        }
        for (size_t i = 0; i < batch.count; i++) {
            tn_wr out;
            tn_wr_init(&out);
            rc = tn_sm_apply(e->sm, batch.entries[i].index, batch.entries[i].data, batch.entries[i].len, &out);
            tn_wr_free(&out);
            if (rc == TN_NOMEM) goto done;
            e->next_index = batch.entries[i].index;
            tn_cmd cmd; /* command times never go back, also across a restart */
            if (tn_cmd_decode(batch.entries[i].data, batch.entries[i].len, &cmd) == TN_SUCCESS &&
                cmd.time_ms > e->last_time_ms)
                e->last_time_ms = cmd.time_ms;
        }
        lo += batch.count;
        tn_log_batch_free(&batch);
    }
    rc = TN_SUCCESS;
done:
    tn_log_batch_free(&batch);
    free(conf);
    free(img);
    free(log_dir);
    return rc;
}

static tn_engine *engine_create(const char *name, const char *data_dir, int *rc, char *err, size_t errlen)
{
    tn_engine *e = calloc(1, sizeof *e);
    *rc = TN_NOMEM;
    if (!e) return NULL;
    e->name = strdup(name);
    e->sm = tn_sm_new(NULL);
    /* Session ids must not repeat across restarts of a persistent engine (the session table survives):
     * start from the clock. */
    e->next_session = data_dir ? ((uint64_t)wall_ms() << 16) | 1 : 1;
    pthread_rwlock_init(&e->lock, NULL);
    pthread_mutex_init(&e->session_mu, NULL);
    pthread_mutex_init(&e->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!e->name || !e->sm) goto fail;
    if (data_dir) {
        e->data_dir = strdup(data_dir);
        if (!e->data_dir) goto fail;
        *rc = engine_recover(e, err, errlen);
        if (*rc != TN_SUCCESS) goto fail;
    }
    *rc = TN_NOMEM;
    if (pthread_create(&e->expiry_thread, NULL, expiry_main, e) != 0) goto fail;
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

int tn_engine_snapshot(tn_engine *e)
{
    if (!e->log) return TN_BAD_REQUEST;
    pthread_rwlock_wrlock(&e->lock);
    int rc = e->failed ? TN_IO_ERROR : snapshot_locked(e);
    pthread_rwlock_unlock(&e->lock);
    return rc;
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
        size_t at = out->len;
        pthread_rwlock_wrlock(&e->lock);
        int failed = e->failed;
        if (!failed) rc = apply_locked(e, session, req_bytes, len, out);
        pthread_rwlock_unlock(&e->lock);
        /* persistent: answer only once the write is durable; if it cannot be made durable, the engine
         * fail-stops and the caller gets IO_ERROR instead of the result */
        if (failed || sync_log(e) != 0) {
            out->len = at;
            rc = tn_resp_error(out, req.req_id, TN_IO_ERROR, NULL,
                               "the engine has failed (log write/sync or rollback error); reopen it");
        }
    } else {
        pthread_rwlock_rdlock(&e->lock);
        rc = tn_sm_read(e->sm, &req, out);
        pthread_rwlock_unlock(&e->lock);
    }
    tn_req_clear(&req);
    return rc;
}
