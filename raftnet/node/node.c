/* node.c — one Raft node (node.h): its lifecycle, the public getters and the helpers every part of it
 * uses. The rest lives in node_*.c (node_int.h lists them). */
#include "node.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "hardstate.h"
#include "logstore.h"
#include "node_int.h"
#include "sm.h"
#include "tn_code.h"

/* ------------------------------------------------------------------------------------------------ */
/* small helpers                                                                                     */

void tn_node_log(tn_node *n, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* embedded in someone's process (no listen URL): only errors, not routine events */
    if (!n->cfg.listen_url && strncmp(line, "error", 5) != 0 && strncmp(line, "fatal", 5) != 0) return;
    fprintf(stderr, "raftnet[%" PRIu64 "]: %s\n", n->cfg.id, line);
}

const char *tn_node_url_of(const tn_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_urls; i++)
        if (n->urls[i].id == id) return n->urls[i].url;
    return NULL;
}

int tn_node_set_url(tn_node *n, uint64_t id, const char *url, size_t len)
{
    if (len >= MAX_URL || id == 0) return TN_BAD_REQUEST;
    member_url *m = NULL;
    for (size_t i = 0; i < n->n_urls; i++)
        if (n->urls[i].id == id) m = &n->urls[i];
    if (!m) {
        if (n->n_urls == TN_STATUS_MAX_MEMBERS) return TN_TOO_LARGE;
        m = &n->urls[n->n_urls++];
        m->id = id;
    }
    memcpy(m->url, url, len);
    m->url[len] = 0;
    return TN_SUCCESS;
}

void tn_node_update_peers(tn_node *n)
{
    if (!n->tr) return;
    tn_peer_addr addrs[TN_STATUS_MAX_MEMBERS];
    size_t k = 0;
    for (size_t i = 0; i < n->n_urls; i++)
        if (n->urls[i].id != n->cfg.id) addrs[k++] = (tn_peer_addr){n->urls[i].id, n->urls[i].url};
    int rc = tn_transport_set_peers(n->tr, addrs, k);
    if (rc != TN_SUCCESS) tn_node_log(n, "error: cannot set transport peers: %s", tn_code_name(rc));
}

void tn_node_set_fatal(tn_node *n, const char *what)
{
    if (n->fatal) return;
    n->fatal = 1;
    tn_node_log(n, "fatal: %s; stopping (restart recovers from disk)", what);
    atomic_store(&n->local_ready, 0); /* callers' reads go to the loop, which answers them with the failure */
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    pthread_mutex_unlock(&n->mu);
    if (n->on_fatal) n->on_fatal(n->on_fatal_arg);
}

/* ------------------------------------------------------------------------------------------------ */
/* lifecycle                                                                                         */

static void conf_from_peers(const tn_node_config *cfg, tn_raft_conf *c)
{
    memset(c, 0, sizeof *c);
    if (!cfg->listen_url) { /* alone: the only voter */
        c->voters[c->n_voters++] = cfg->id;
        return;
    }
    for (size_t i = 0; i < cfg->n_peers && c->n_voters < TN_RAFT_MAX_NODES; i++) {
        if (cfg->learner && cfg->peers[i].id == cfg->id) continue;
        c->voters[c->n_voters++] = cfg->peers[i].id;
    }
}

int tn_node_open(const tn_node_config *cfg, tn_node **out, char *err, size_t errlen)
{
    tn_node *n = calloc(1, sizeof *n);
    int rc = TN_NOMEM;
    *out = NULL;
    if (!n) goto fail;
    n->cfg = *cfg;
    if (!n->cfg.tick_ms) n->cfg.tick_ms = 10;
    if (!n->cfg.election_ticks) n->cfg.election_ticks = 30;
    if (!n->cfg.heartbeat_ticks) n->cfg.heartbeat_ticks = 3;
    if (!n->cfg.snapshot_entries) n->cfg.snapshot_entries = 100000;
    if (!n->cfg.request_timeout_ms) n->cfg.request_timeout_ms = 5000;
    /* One append in flight per follower by default: every peer message costs two nng messages (it and its
     * transport ack) and several thread wake-ups on both sides, far more than the bytes; waiting for the
     * answer before sending the next append makes each one carry everything proposed meanwhile, which cut
     * the followers' CPU per write by about a third at 64 clients (docs/benchmarks.md). */
    if (!n->cfg.max_inflight) n->cfg.max_inflight = 1;
    n->rng = (unsigned)(cfg->id * 2654435761u) ^ (unsigned)tn_wall_ms() ^ (unsigned)getpid();
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->dmu, NULL);
    pthread_mutex_init(&n->loop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&n->dcv, NULL);
    pthread_rwlockattr_t la;
    pthread_rwlockattr_init(&la);
    /* callers' reads must not starve the loop's applies */
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&n->sm_lock, &la);
    pthread_rwlockattr_destroy(&la);

    rc = TN_BAD_REQUEST;
    if (!cfg->id || (cfg->listen_url && !cfg->data_dir)) {
        snprintf(err, errlen, "--id, --listen and --data are required");
        goto fail;
    }
    if (!cfg->listen_url &&
        (cfg->learner || cfg->n_peers > 1 || (cfg->n_peers == 1 && cfg->peers[0].id != cfg->id))) {
        snprintf(err, errlen, "a node without a listen URL runs alone: it can have no peers");
        goto fail;
    }
    if (n->cfg.heartbeat_ticks >= n->cfg.election_ticks) {
        snprintf(err, errlen, "--heartbeat-ticks must be below --election-ticks");
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_peers; i++)
        if (tn_node_set_url(n, cfg->peers[i].id, cfg->peers[i].url, strlen(cfg->peers[i].url)) != TN_SUCCESS) {
            snprintf(err, errlen, "bad --peers entry for id %" PRIu64, cfg->peers[i].id);
            goto fail;
        }
    if (!tn_node_url_of(n, cfg->id) && cfg->listen_url)
        tn_node_set_url(n, cfg->id, cfg->listen_url, strlen(cfg->listen_url));
    if (cfg->data_dir) {
        snprintf(n->log_dir, sizeof n->log_dir, "%s/log", cfg->data_dir);
        snprintf(n->snap_dir, sizeof n->snap_dir, "%s/snap", cfg->data_dir);
    }
    rc = TN_IO_ERROR;
    if (cfg->data_dir && (tn_mkdir_p(cfg->data_dir) != 0 || tn_mkdir_p(n->snap_dir) != 0)) {
        snprintf(err, errlen, "%s: cannot create: %s", cfg->data_dir, strerror(errno));
        goto fail;
    }

    rc = TN_NOMEM;
    n->sm = tn_sm_new(NULL);
    if (!n->sm) goto fail;

    tn_raft_config *rc_ = &n->rcfg;
    rc_->id = cfg->id;
    conf_from_peers(cfg, &rc_->conf);
    rc_->election_ticks = n->cfg.election_ticks;
    rc_->heartbeat_ticks = n->cfg.heartbeat_ticks;
    rc_->max_inflight_msgs = n->cfg.max_inflight;
    rc_->max_inflight_bytes = 32u << 20;
    rc_->max_entries_per_msg = 4096;
    rc_->max_bytes_per_msg = 1u << 20;
    rc_->pre_vote = 1;
    rc_->check_quorum = 1;

    rc = tn_node_recover(n, err, errlen);
    if (rc != TN_SUCCESS) goto fail;
    tn_raft_set_election_timeout(n->raft, n->cfg.election_ticks + (uint32_t)(rand_r(&n->rng) % n->cfg.election_ticks));
    rc = TN_SUCCESS;
    *out = n;
    n = NULL;
fail:
    if (n) tn_node_close(n);
    return rc;
}

int tn_node_start(tn_node *n, char *err, size_t errlen)
{
    if (!n->cfg.listen_url) {
        /* alone: campaign at the first tick instead of after an election timeout (it wins at once) */
        tn_raft_set_election_timeout(n->raft, 1);
        tn_raft_tick(n->raft);
        return tn_node_start_threads(n, err, errlen);
    }
    tn_transport_opts o = {0};
    o.self_id = n->cfg.id;
    o.listen_url = n->cfg.listen_url;
    o.token = n->cfg.token;
    o.token_len = n->cfg.token_len;
    o.tls = n->cfg.tls;
    o.on_client = tn_node_on_client;
    o.on_peer = tn_node_on_peer;
    o.on_log = tn_node_on_tlog;
    o.arg = n;
    int rc = tn_transport_open(&o, &n->tr, err, errlen);
    if (rc != TN_SUCCESS) return rc;
    tn_node_update_peers(n);
    /* read before the loop starts: from then on the core is the loop's */
    const tn_raft_conf *c = tn_raft_conf_of(n->raft);
    uint32_t voters = c->n_voters, learners = c->n_learners;
    uint64_t term = tn_raft_term(n->raft), last = tn_raft_last_index(n->raft);
    rc = tn_node_start_threads(n, err, errlen);
    if (rc != TN_SUCCESS) return rc;
    tn_node_log(n, "listening on %s, %u voter(s), %u learner(s), term %" PRIu64 ", last index %" PRIu64,
                n->cfg.listen_url, voters, learners, term, last);
    return TN_SUCCESS;
}

int tn_node_failed(tn_node *n) { return n->fatal; }

void tn_node_on_fatal(tn_node *n, void (*fn)(void *arg), void *arg)
{
    n->on_fatal = fn;
    n->on_fatal_arg = arg;
}

int tn_node_stop(tn_node *n)
{
    if (!n->threads_started) return n->fatal ? TN_IO_ERROR : TN_SUCCESS;
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->loop_thread, NULL);
    /* No more loop: make the log durable first (so nothing below can put it at risk), then close the
     * transport (drops unanswered requests; clients retry elsewhere; events it still queues are freed by
     * tn_node_close). */
    tn_node_stop_disk_thread(n);
    n->threads_started = 0;
    tn_node_snapshot_poll(n, 1);
    if (!n->fatal && n->log && tn_logstore_sync(n->log, NULL) != TN_SUCCESS) n->fatal = 1;
    tn_transport_close(n->tr);
    n->tr = NULL;
    tn_node_log(n, "stopped%s", n->fatal ? " after a fatal error" : " cleanly");
    return n->fatal ? TN_IO_ERROR : TN_SUCCESS;
}

void tn_node_close(tn_node *n)
{
    if (!n) return;
    if (n->threads_started) tn_node_stop(n);
    tn_transport_close(n->tr);
    for (event *e = n->q_head; e;) {
        event *next = e->next;
        free(e->data);
        free(e);
        e = next;
    }
    for (waiter *w = n->waiters; w;) {
        waiter *next = w->next;
        tn_node_waiter_free(w);
        w = next;
    }
    for (size_t i = 0; i < n->n_held; i++) free(n->held[i].buf);
    free(n->held);
    tn_node_snapw_drop(n, 1);
    tn_snapxfer_free(n->xfer);
    tn_logstore_close(n->log);
    tn_raft_free(n->raft);
    tn_sm_free(n->sm);
    pthread_mutex_destroy(&n->mu);
    pthread_mutex_destroy(&n->dmu);
    pthread_cond_destroy(&n->cv);
    pthread_cond_destroy(&n->dcv);
    pthread_rwlock_destroy(&n->sm_lock);
    pthread_mutex_destroy(&n->loop_mu);
    free(n);
}

/* ------------------------------------------------------------------------------------------------ */
/* getters (any thread)                                                                              */

uint64_t tn_node_applied(tn_node *n) { return atomic_load(&n->applied_rev); }

uint64_t tn_node_log_first_index(tn_node *n) { return atomic_load(&n->log_first); }
