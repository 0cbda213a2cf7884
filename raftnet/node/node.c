/* node.c — one Raft node: recovery, the loop thread, the disk thread, client requests (see node.h). */
#include "node.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "hardstate.h"
#include "logstore.h"
#include "sm.h"
#include "snapfile.h"
#include "snapxfer.h"
#include "status.h"
#include "tn_code.h"
#include "tree.h"
#include "wire.h"

#define EXPIRY_EVERY_MS 50
#define EXPIRY_BATCH 256
#define MAX_URL 1024
#define READ_BATCH_BYTES (64u << 20)
/* Peer payloads are Raft messages (first byte = TN_RAFT_MSG_VERSION) or snapshot chunks and their
 * acknowledgements (this byte, snapxfer.h). */
#define CHUNK_MAGIC TN_SNAPXFER_MAGIC
/* In-memory nodes (no data_dir) compact the core's log behind the applied index this often. */
#define MEM_COMPACT_EVERY 512

/* Where a client's answer goes: a transport request (p), or an in-process callback (fn, tn_node_submit). */
typedef struct reply_to {
    tn_pending *p;
    tn_node_reply_fn fn;
    void *arg;
} reply_to;

enum ev_kind { EV_PEER = 1, EV_CLIENT = 2, EV_SYNCED = 3 };

typedef struct event {
    struct event *next;
    int kind;
    uint64_t from;
    uint8_t *data; /* EV_PEER: owned copy */
    const uint8_t *req; /* EV_CLIENT: owned by the transport (or the submitter) until the reply */
    size_t len;
    reply_to p;
    uint64_t owner; /* EV_CLIENT: owner of a write whose request has no client_id (tn_node_submit) */
    uint64_t gen; /* EV_SYNCED */
    int rc;
} event;

enum waiter_kind { W_WRITE = 1, W_READ = 2, W_ADMIN = 3 };

typedef struct waiter {
    struct waiter *next;
    int kind;
    reply_to p;
    uint64_t req_id;
    uint64_t client_id, seq; /* W_WRITE with a session */
    uint64_t index, term;    /* W_WRITE without a session (leader), W_ADMIN */
    uint64_t ctx;            /* W_READ */
    tn_req req;              /* W_READ: decoded request (points into the pending's bytes) */
    int64_t deadline_ms;
} waiter;

typedef struct held_msg {
    uint64_t gen;
    uint8_t *buf;
    size_t len;
    uint64_t to;
    uint64_t ack_term;  /* a successful APP_RESP of this term (0 = any other message): see release_held */
    uint64_t ack_index; /* its index (the end of the prefix it acknowledges) */
} held_msg;

typedef struct member_url {
    uint64_t id;
    char url[MAX_URL];
    uint64_t match; /* on the leader: highest index this member acknowledged in the current term */
} member_url;

struct tn_node {
    tn_node_config cfg;
    char log_dir[4096], snap_dir[4096];
    tn_raft_config rcfg;
    tn_raft *raft;
    tn_sm *sm;
    tn_logstore *log;
    tn_transport *tr;
    unsigned rng;

    member_url urls[TN_STATUS_MAX_MEMBERS];
    size_t n_urls;

    /* Held by whoever runs the node: the loop thread while it handles inputs and ticks, or a caller of
     * tn_node_submit on a node alone. Everything below marked loop-only is guarded by it. Order: loop_mu
     * before mu. */
    pthread_mutex_t loop_mu;

    /* queue (mutex mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    event *q_head, *q_tail;
    int stopping;

    /* disk thread (mutex dmu) */
    pthread_mutex_t dmu;
    pthread_cond_t dcv;
    uint64_t want_gen;  /* highest write generation the loop asked to make durable */
    int disk_stop;
    pthread_t disk_thread, loop_thread;
    int threads_started;

    /* loop-only state */
    int caller_syncs;    /* a tn_node_submit caller (node alone) will sync what it appends itself */
    uint64_t write_gen;  /* bumped on every append */
    uint64_t synced_gen; /* every write of a generation <= this is durable */
    held_msg *held;
    size_t n_held, cap_held;
    uint64_t saved_term, saved_vote;
    waiter *waiters;
    uint64_t next_ctx;
    int64_t last_cmd_time;
    uint64_t expiry_wait_index; /* don't scan for due temp nodes before this is applied */
    uint64_t last_snap_index;
    pid_t snap_child;               /* background snapshot writer (fork), 0 = none */
    uint64_t snap_child_index, snap_child_term;
    tn_snapwriter *snapw;           /* InstallSnapshot being received in chunks */
    uint64_t snapw_index, snapw_term, snapw_total;
    uint64_t chunk_installed_index;  /* snapshot file already installed by the chunk receiver */
    tn_snapxfer *xfer;              /* InstallSnapshot streams this node sends (created on first use) */
    tn_raft_role role;
    uint64_t leader;
    /* Read by any thread (tn_node_read_local, tn_node_applied): sm_lock guards the state machine against
     * the loop's applies; applied_rev and local_ready are copies the loop keeps up to date. */
    pthread_rwlock_t sm_lock;
    _Atomic uint64_t applied_rev;
    _Atomic uint64_t log_first;
    atomic_int local_ready;
    int fatal;
    void (*on_fatal)(void *);
    void *on_fatal_arg;
};

static void snapshot_poll(tn_node *n, int block);

/* ------------------------------------------------------------------------------------------------ */
/* small helpers                                                                                     */

static void nlog(tn_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void nlog(tn_node *n, const char *fmt, ...)
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

static const char *url_of(const tn_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_urls; i++)
        if (n->urls[i].id == id) return n->urls[i].url;
    return NULL;
}

static int set_url(tn_node *n, uint64_t id, const char *url, size_t len)
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

static void update_transport_peers(tn_node *n)
{
    if (!n->tr) return;
    tn_peer_addr addrs[TN_STATUS_MAX_MEMBERS];
    size_t k = 0;
    for (size_t i = 0; i < n->n_urls; i++)
        if (n->urls[i].id != n->cfg.id) addrs[k++] = (tn_peer_addr){n->urls[i].id, n->urls[i].url};
    int rc = tn_transport_set_peers(n->tr, addrs, k);
    if (rc != TN_SUCCESS) nlog(n, "error: cannot set transport peers: %s", tn_code_name(rc));
}

static void set_fatal(tn_node *n, const char *what)
{
    if (n->fatal) return;
    n->fatal = 1;
    nlog(n, "fatal: %s; stopping (restart recovers from disk)", what);
    atomic_store(&n->local_ready, 0); /* callers' reads go to the loop, which answers them with the failure */
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    pthread_mutex_unlock(&n->mu);
    if (n->on_fatal) n->on_fatal(n->on_fatal_arg);
}

/* ------------------------------------------------------------------------------------------------ */
/* snapshot payloads                                                                                 */

static void conf_encode(const tn_raft_conf *c, tn_wr *w)
{
    tn_wr_raw(w, "NC", 2);
    tn_wr_u8(w, 1);
    tn_wr_varint(w, c->n_voters);
    for (uint32_t i = 0; i < c->n_voters; i++) tn_wr_varint(w, c->voters[i]);
    tn_wr_varint(w, c->n_learners);
    for (uint32_t i = 0; i < c->n_learners; i++) tn_wr_varint(w, c->learners[i]);
}

static int conf_decode(const uint8_t *p, size_t len, tn_raft_conf *c)
{
    tn_rd r;
    memset(c, 0, sizeof *c);
    tn_rd_init(&r, p, len);
    const uint8_t *m = tn_rd_raw(&r, 2);
    uint8_t v = tn_rd_u8(&r);
    if (r.err || memcmp(m, "NC", 2) || v != 1) return TN_BAD_REQUEST;
    uint64_t nv = tn_rd_varint(&r);
    if (nv > TN_RAFT_MAX_NODES) return TN_BAD_REQUEST;
    for (uint64_t i = 0; i < nv; i++) c->voters[i] = tn_rd_varint(&r);
    c->n_voters = (uint32_t)nv;
    uint64_t nl = tn_rd_varint(&r);
    if (nl > TN_RAFT_MAX_NODES) return TN_BAD_REQUEST;
    for (uint64_t i = 0; i < nl; i++) c->learners[i] = tn_rd_varint(&r);
    c->n_learners = (uint32_t)nl;
    return r.err || tn_rd_left(&r) ? TN_BAD_REQUEST : TN_SUCCESS;
}

/* The node's snapshot data: member URLs then the state machine image. */
static int node_image_save(tn_node *n, tn_wr *w)
{
    tn_wr_raw(w, "NS", 2);
    tn_wr_u8(w, 1);
    tn_wr_varint(w, n->n_urls);
    for (size_t i = 0; i < n->n_urls; i++) {
        tn_wr_varint(w, n->urls[i].id);
        tn_wr_bytes(w, n->urls[i].url, strlen(n->urls[i].url));
    }
    int rc = tn_sm_snapshot_save(n->sm, w);
    return rc == TN_SUCCESS && w->oom ? TN_NOMEM : rc;
}

/* Loads a node image (URLs merged into the map, state machine replaced). */
static int node_image_load(tn_node *n, const uint8_t *p, size_t len)
{
    tn_rd r;
    tn_rd_init(&r, p, len);
    const uint8_t *m = tn_rd_raw(&r, 2);
    uint8_t v = tn_rd_u8(&r);
    uint64_t nu = tn_rd_varint(&r);
    if (r.err || memcmp(m, "NS", 2) || v != 1 || nu > TN_STATUS_MAX_MEMBERS) return TN_BAD_REQUEST;
    member_url tmp[TN_STATUS_MAX_MEMBERS];
    for (uint64_t i = 0; i < nu; i++) {
        size_t ul;
        tmp[i].id = tn_rd_varint(&r);
        const uint8_t *u = tn_rd_bytes(&r, MAX_URL - 1, &ul);
        if (r.err) return TN_BAD_REQUEST;
        memcpy(tmp[i].url, u, ul);
        tmp[i].url[ul] = 0;
    }
    if (r.err) return TN_BAD_REQUEST;
    int rc = tn_sm_snapshot_load(n->sm, p + r.off, len - r.off);
    if (rc != TN_SUCCESS) return rc;
    for (uint64_t i = 0; i < nu; i++) set_url(n, tmp[i].id, tmp[i].url, strlen(tmp[i].url));
    return TN_SUCCESS;
}

/* ------------------------------------------------------------------------------------------------ */
/* recovery                                                                                          */

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
    uint8_t *snap_conf = NULL, *snap_data = NULL;
    tn_raft_entry *ents = NULL;
    size_t n_ents = 0;
    tn_log_batch batch = {0};
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
        if (set_url(n, cfg->peers[i].id, cfg->peers[i].url, strlen(cfg->peers[i].url)) != TN_SUCCESS) {
            snprintf(err, errlen, "bad --peers entry for id %" PRIu64, cfg->peers[i].id);
            goto fail;
        }
    if (!url_of(n, cfg->id) && cfg->listen_url) set_url(n, cfg->id, cfg->listen_url, strlen(cfg->listen_url));
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

    tn_hardstate hs = {0};
    int found_hs = 0;
    if (!cfg->data_dir) { /* in memory: nothing to recover */
        n->raft = tn_raft_new(&n->rcfg);
        goto created;
    }
    rc = tn_hardstate_load(cfg->data_dir, &hs, &found_hs, err, errlen);
    if (rc != TN_SUCCESS) goto fail;

    tn_snap_meta sm_meta;
    tn_raft_snapshot_meta snap = {0};
    size_t snap_len = 0;
    rc = tn_snapfile_load(n->snap_dir, &sm_meta, &snap_conf, &snap_data, err, errlen);
    if (rc == TN_SUCCESS) {
        snap.index = sm_meta.index;
        snap.term = sm_meta.term;
        snap_len = (size_t)sm_meta.data_len;
        rc = conf_decode(snap_conf, (size_t)sm_meta.conf_len, &snap.conf);
        if (rc == TN_SUCCESS) rc = node_image_load(n, snap_data, snap_len);
        if (rc != TN_SUCCESS) {
            snprintf(err, errlen, "%s: snapshot at %" PRIu64 " does not decode (%s)", n->snap_dir, snap.index,
                     tn_code_name(rc));
            rc = TN_IO_ERROR;
            goto fail;
        }
        nlog(n, "loaded snapshot index %" PRIu64 " term %" PRIu64 " (%zu bytes)", snap.index, snap.term, snap_len);
    } else if (rc != TN_NOT_FOUND) {
        goto fail;
    }
    n->last_snap_index = snap.index;

    tn_logstore_recovery rec;
    rc = tn_logstore_open(n->log_dir, NULL, &n->log, &rec, err, errlen);
    if (rc != TN_SUCCESS) goto fail;
    if (rec.dropped_bytes)
        nlog(n, "repaired torn log tail: dropped %" PRIu64 " bytes at the end of %s", rec.dropped_bytes,
             rec.torn_file);
    if (rec.removed_segments) nlog(n, "removed %u stale log segment(s)", rec.removed_segments);

    if (snap.index) {
        uint64_t t = 0;
        uint64_t base = tn_logstore_first_index(n->log) - 1;
        if (base < snap.index) {
            if (tn_logstore_term_at(n->log, snap.index, &t) == TN_SUCCESS && t == snap.term)
                rc = tn_logstore_compact(n->log, snap.index);
            else
                rc = tn_logstore_reset(n->log, snap.index, snap.term);
            if (rc != TN_SUCCESS) {
                tn_logstore_errmsg(n->log, err, errlen);
                goto fail;
            }
        } else if (base > snap.index) {
            rc = TN_IO_ERROR;
            snprintf(err, errlen, "%s: log starts after the snapshot (%" PRIu64 " > %" PRIu64 ")", n->log_dir,
                     base, snap.index);
            goto fail;
        }
    }
    uint64_t first = tn_logstore_first_index(n->log), last = tn_logstore_last_index(n->log);
    if (last >= first) {
        n_ents = (size_t)(last - first + 1);
        ents = calloc(n_ents, sizeof *ents);
        if (!ents) { rc = TN_NOMEM; goto fail; }
        size_t k = 0;
        for (uint64_t lo = first; lo <= last;) {
            rc = tn_logstore_read_batch(n->log, lo, last, READ_BATCH_BYTES, &batch);
            if (rc != TN_SUCCESS) {
                tn_logstore_errmsg(n->log, err, errlen);
                goto fail;
            }
            for (size_t i = 0; i < batch.count; i++, k++) {
                const tn_log_entry *le = &batch.entries[i];
                ents[k].index = le->index;
                ents[k].term = le->term;
                ents[k].type = le->type;
                ents[k].len = (uint32_t)le->len;
                ents[k].data = malloc(le->len ? le->len : 1);
                if (!ents[k].data) { rc = TN_NOMEM; goto fail; }
                if (le->len) memcpy(ents[k].data, le->data, le->len);
            }
            lo += batch.count;
            tn_log_batch_free(&batch);
        }
    }
    if (!found_hs && !snap.index && !n_ents) {
        n->raft = tn_raft_new(&n->rcfg);
    } else {
        tn_raft_hard_state rhs = {hs.term, hs.vote, hs.commit};
        if (rhs.commit < snap.index) rhs.commit = snap.index;
        if (rhs.commit > last) rhs.commit = last;
        n->raft = tn_raft_restore(&n->rcfg, &rhs, &snap, snap_data, snap_len, ents, n_ents);
        nlog(n, "restored: term %" PRIu64 " vote %" PRIu64 " snapshot %" PRIu64 " log %" PRIu64 "..%" PRIu64,
             hs.term, hs.vote, snap.index, first, last);
    }
created:
    if (!n->raft) {
        rc = TN_IO_ERROR;
        snprintf(err, errlen, "%s: durable state is inconsistent (the Raft core refused it)",
                 cfg->data_dir ? cfg->data_dir : "(in memory)");
        goto fail;
    }
    n->saved_term = hs.term;
    n->saved_vote = hs.vote;
    tn_raft_set_election_timeout(n->raft, n->cfg.election_ticks + (uint32_t)(rand_r(&n->rng) % n->cfg.election_ticks));
    rc = TN_SUCCESS;
    *out = n;
    n = NULL;
fail:
    for (size_t i = 0; ents && i < n_ents; i++) free(ents[i].data);
    free(ents);
    tn_log_batch_free(&batch);
    free(snap_conf);
    free(snap_data);
    if (n) tn_node_close(n);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* queue                                                                                             */

static void push(tn_node *n, event *e)
{
    pthread_mutex_lock(&n->mu);
    if (n->q_tail) n->q_tail->next = e;
    else n->q_head = e;
    n->q_tail = e;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void on_peer(void *arg, uint64_t from, const uint8_t *msg, size_t len)
{
    tn_node *n = arg;
    event *e = calloc(1, sizeof *e);
    if (!e) return;
    e->data = malloc(len ? len : 1);
    if (!e->data) {
        free(e);
        return;
    }
    memcpy(e->data, msg, len);
    e->kind = EV_PEER;
    e->from = from;
    e->len = len;
    push(n, e);
}

static void on_client(void *arg, tn_pending *p, const uint8_t *req, size_t len)
{
    tn_node *n = arg;
    event *e = calloc(1, sizeof *e);
    if (!e) {
        tn_wr w;
        tn_wr_init(&w);
        tn_resp_error(&w, 0, TN_NOMEM, NULL, "node out of memory");
        tn_pending_reply(p, w.p, w.len);
        tn_wr_free(&w);
        return;
    }
    e->kind = EV_CLIENT;
    e->p = (reply_to){p, NULL, NULL};
    e->req = req;
    e->len = len;
    push(n, e);
}

static void on_tlog(void *arg, const char *line)
{
    tn_node *n = arg;
    nlog(n, "transport: %s", line);
}

/* ------------------------------------------------------------------------------------------------ */
/* disk thread                                                                                       */

static void *disk_main(void *arg)
{
    tn_node *n = arg;
    uint64_t done = 0;
    for (;;) {
        pthread_mutex_lock(&n->dmu);
        while (!n->disk_stop && n->want_gen == done) pthread_cond_wait(&n->dcv, &n->dmu);
        if (n->disk_stop) {
            pthread_mutex_unlock(&n->dmu);
            break;
        }
        uint64_t gen = n->want_gen;
        pthread_mutex_unlock(&n->dmu);
        int rc = tn_logstore_sync(n->log, NULL);
        done = gen;
        event *e = calloc(1, sizeof *e);
        if (!e) continue; /* the next sync reports a higher generation */
        e->kind = EV_SYNCED;
        e->gen = gen;
        e->rc = rc;
        push(n, e);
        if (rc != TN_SUCCESS) break;
    }
    return NULL;
}

static void request_sync(tn_node *n)
{
    pthread_mutex_lock(&n->dmu);
    n->want_gen = n->write_gen;
    pthread_cond_signal(&n->dcv);
    pthread_mutex_unlock(&n->dmu);
}

/* ------------------------------------------------------------------------------------------------ */
/* replies                                                                                           */

static void reply_bytes(reply_to p, const void *b, size_t len)
{
    if (p.fn) p.fn(p.arg, b, len);
    else tn_pending_reply(p.p, b, len);
}

static void reply_error(tn_node *n, reply_to p, uint64_t req_id, int code, const char *msg)
{
    tn_wr w;
    tn_wr_init(&w);
    const char *hint = NULL;
    if (code == TN_NOT_LEADER) {
        uint64_t l = tn_raft_leader(n->raft);
        if (l) hint = url_of(n, l);
    }
    tn_resp_error(&w, req_id, code, hint, msg);
    if (!w.oom) reply_bytes(p, w.p, w.len);
    tn_wr_free(&w);
}

static void waiter_add(tn_node *n, waiter *w)
{
    w->deadline_ms = tn_mono_ms() + n->cfg.request_timeout_ms;
    w->next = n->waiters;
    n->waiters = w;
}

static void waiter_free(waiter *w)
{
    if (w->kind == W_READ) tn_req_clear(&w->req);
    free(w);
}

/* ------------------------------------------------------------------------------------------------ */
/* sending                                                                                           */

static void send_encoded(tn_node *n, uint64_t to, const uint8_t *b, size_t len)
{
    if (!n->tr) return; /* a node without a transport has no peers */
    int rc = tn_transport_send_peer(n->tr, to, b, len);
    (void)rc; /* loss is tolerated by Raft; unknown peers are members without a URL yet */
}

/* InstallSnapshot in chunks (snapxfer.h): the snapshot FILE (snapfile.h) travels in chunks of at most
 * 1 MiB, a window of them in flight per peer, each acknowledged by the receiver with the number of leading
 * bytes it holds durably; a restarted transfer continues from there instead of byte 0. The receiver writes
 * them with a tn_snapwriter and, once complete and verified, steps the equivalent TN_MSG_SNAP into its core. */
static int xfer_send(void *arg, uint64_t to, const uint8_t *payload, size_t len)
{
    tn_node *n = arg;
    return n->tr ? tn_transport_send_peer(n->tr, to, payload, len) : TN_UNAVAILABLE;
}

static void xfer_log(void *arg, const char *line)
{
    nlog(arg, "%s", line);
}

/* Returns 0 if the transfer runs (started, or continuing), -1 if the caller should send the whole Raft
 * message instead (the newest snapshot file is not the core's snapshot, or it cannot be read). */
static int send_snapshot_chunks(tn_node *n, const tn_raft_msg *m)
{
    if (!n->xfer) {
        tn_snapxfer_opts o = {0};
        o.send = xfer_send;
        o.log = xfer_log;
        o.arg = n;
        n->xfer = tn_snapxfer_new(&o);
        if (!n->xfer) return -1;
    }
    int rc = tn_snapxfer_start(n->xfer, n->snap_dir, m->to, m->term, m->snap.index, m->snap.term, tn_mono_ms());
    return rc == TN_SUCCESS ? 0 : -1;
}

/* Loop tick: stalled transfers ask again; a node that is not the leader sends none. */
static void snapshot_send_tick(tn_node *n, int64_t now)
{
    if (!n->xfer) return;
    if (tn_raft_role_of(n->raft) != TN_LEADER) tn_snapxfer_cancel(n->xfer, 0);
    else tn_snapxfer_tick(n->xfer, now);
}

static void on_snapshot_ack(tn_node *n, uint64_t from, const uint8_t *p, size_t len)
{
    tn_snapack a;
    if (tn_snapack_decode(p, len, &a) != TN_SUCCESS) {
        nlog(n, "dropping a malformed snapshot acknowledgement from %" PRIu64 " (%zu bytes)", from, len);
        return;
    }
    if (n->xfer && tn_raft_role_of(n->raft) == TN_LEADER) tn_snapxfer_on_ack(n->xfer, from, &a, tn_mono_ms());
}

/* Tells the sender how many leading bytes of snapshot (index, sterm) this node holds durably. */
static void send_snapshot_ack(tn_node *n, uint64_t to, uint64_t index, uint64_t sterm, uint64_t have)
{
    tn_snapack a = {tn_raft_term(n->raft), index, sterm, have};
    tn_wr w;
    tn_wr_init(&w);
    tn_snapack_encode(&a, &w);
    if (!w.oom) send_encoded(n, to, w.p, w.len);
    tn_wr_free(&w);
}

static void snapw_drop(tn_node *n, int keep_part)
{
    if (!n->snapw) return;
    if (keep_part) tn_snapwriter_close(n->snapw);
    else tn_snapwriter_abort(n->snapw);
    n->snapw = NULL;
}

static void on_snapshot_chunk(tn_node *n, uint64_t from, const uint8_t *p, size_t len)
{
    tn_snapchunk c;
    char err[512];
    if (tn_snapchunk_decode(p, len, &c) != TN_SUCCESS) {
        nlog(n, "dropping a malformed snapshot chunk from %" PRIu64 " (%zu bytes)", from, len);
        return;
    }
    uint64_t term = c.term, index = c.index, sterm = c.snap_term, total = c.total;
    if (term < tn_raft_term(n->raft)) return; /* a deposed leader: its sender stops once it learns */
    if (index <= tn_raft_commit(n->raft)) {
        send_snapshot_ack(n, from, index, sterm, total); /* we already have that state: the sender is done */
        return;
    }
    if (n->snapw && (n->snapw_index != index || n->snapw_term != sterm || n->snapw_total != total))
        snapw_drop(n, 1);
    if (!n->snapw) {
        snapshot_poll(n, 1); /* one writer in the snapshot directory at a time */
        if (tn_snapwriter_begin(n->snap_dir, index, sterm, total, &n->snapw, err, sizeof err) != TN_SUCCESS) {
            nlog(n, "error: snapshot transfer: %s", err);
            n->snapw = NULL;
            return;
        }
        n->snapw_index = index;
        n->snapw_term = sterm;
        n->snapw_total = total;
        if (tn_snapwriter_have(n->snapw))
            nlog(n, "resuming snapshot %" PRIu64 " transfer at byte %" PRIu64, index, tn_snapwriter_have(n->snapw));
    }
    /* BAD_REQUEST = a hole after a lost chunk: the ack below tells the sender where to continue. Every
     * write is fdatasync'd before it returns, so have() is durable when the ack leaves. */
    int rc = tn_snapwriter_write(n->snapw, c.offset, c.data, c.len, err, sizeof err);
    if (rc == TN_IO_ERROR) {
        nlog(n, "error: snapshot transfer: %s", err);
        snapw_drop(n, 0);
        return;
    }
    if (tn_snapwriter_have(n->snapw) < total) {
        send_snapshot_ack(n, from, index, sterm, tn_snapwriter_have(n->snapw));
        return;
    }
    tn_snap_meta meta;
    tn_snapwriter *w = n->snapw;
    n->snapw = NULL;
    if (tn_snapwriter_finish(w, &meta, err, sizeof err) != TN_SUCCESS) {
        nlog(n, "error: snapshot transfer: %s", err);
        send_snapshot_ack(n, from, index, sterm, 0); /* the .part is gone: start over */
        return;
    }
    uint8_t *conf = NULL, *data = NULL;
    rc = tn_snapfile_load(n->snap_dir, &meta, &conf, &data, err, sizeof err);
    tn_raft_msg *m = NULL;
    if (rc == TN_SUCCESS && meta.index == index && meta.term == sterm)
        m = tn_raft_msg_alloc(0, 0, (size_t)meta.data_len);
    if (m && conf_decode(conf, (size_t)meta.conf_len, &m->snap.conf) == TN_SUCCESS) {
        m->type = TN_MSG_SNAP;
        m->from = from;
        m->to = n->cfg.id;
        m->term = term;
        m->snap.index = index;
        m->snap.term = sterm;
        if (meta.data_len) memcpy((uint8_t *)m->snap_data, data, (size_t)meta.data_len);
        n->chunk_installed_index = index;
        tn_raft_step(n->raft, m);
        send_snapshot_ack(n, from, index, sterm, total);
    } else if (rc != TN_SUCCESS) {
        nlog(n, "error: snapshot transfer: %s", err);
    }
    tn_raft_msg_free(m);
    free(conf);
    free(data);
}

static void send_msg(tn_node *n, tn_raft_msg *m, int after_persist)
{
    tn_wr w;
    tn_wr_init(&w);
    if (m->type == TN_MSG_SNAP) {
        if (send_snapshot_chunks(n, m) == 0) goto done;
        nlog(n, "sending snapshot %" PRIu64 " (%zu bytes) to %" PRIu64 " in one message", m->snap.index,
             m->snap_len, m->to);
    }
    if (tn_raft_msg_encode(m, &w) == 0 && !w.oom) {
        if (after_persist && n->synced_gen < n->write_gen) {
            if (n->n_held == n->cap_held) {
                size_t cap = n->cap_held ? n->cap_held * 2 : 64;
                held_msg *h = realloc(n->held, cap * sizeof *h);
                if (!h) goto done;
                n->held = h;
                n->cap_held = cap;
            }
            size_t len;
            uint8_t *buf = tn_wr_take(&w, &len);
            uint64_t ack_term = m->type == TN_MSG_APP_RESP && !m->reject ? m->term : 0;
            n->held[n->n_held++] = (held_msg){n->write_gen, buf, len, m->to, ack_term, m->index};
        } else {
            send_encoded(n, m->to, w.p, w.len);
        }
    }
done:
    tn_wr_free(&w);
    tn_raft_msg_free(m);
}

/* A successful append acknowledgement is superseded by a later one of the same term to the same leader that
 * acknowledges at least as long a prefix (the leader takes the highest): of the acknowledgements one sync
 * releases, only the last goes out. Under load that halves the follower's messages. (A later one may
 * acknowledge less — an answer to a commit-only append anchored lower — and then both go.) */
static int superseded(const tn_node *n, size_t i)
{
    const held_msg *h = &n->held[i];
    if (!h->ack_term) return 0;
    for (size_t j = i + 1; j < n->n_held; j++) {
        const held_msg *later = &n->held[j];
        if (later->gen > n->synced_gen) break; /* held entries are in generation order */
        if (later->to == h->to && later->ack_term == h->ack_term && later->ack_index >= h->ack_index) return 1;
    }
    return 0;
}

static void release_held(tn_node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_held; i++) {
        held_msg *h = &n->held[i];
        if (h->gen <= n->synced_gen) {
            if (!superseded(n, i)) send_encoded(n, h->to, h->buf, h->len);
            free(h->buf);
        } else {
            n->held[k++] = *h;
        }
    }
    n->n_held = k;
}

/* ------------------------------------------------------------------------------------------------ */
/* applying                                                                                          */

/* client_id and seq of the request inside a command; 0/0 if none or undecodable. */
static void peek_session(const uint8_t *data, size_t len, uint64_t *cid, uint64_t *seq)
{
    tn_cmd cmd;
    tn_req_head h = {0};
    if (tn_cmd_decode(data, len, &cmd) == TN_SUCCESS) tn_req_peek(cmd.req, cmd.req_len, &h);
    *cid = h.client_id;
    *seq = h.seq;
}

/* The req_id of an encoded request (0 if it does not get that far), for answers given without decoding it. */
static uint64_t peek_req_id(const uint8_t *b, size_t len)
{
    tn_req_head h;
    tn_req_peek(b, len, &h);
    return h.req_id;
}

/* The leader's URL when this node is a follower that knows it: put in the answers to requests it forwarded,
 * so the client sends the next one to the leader directly (one hop and one commit notification less). */
static const char *forward_hint(tn_node *n)
{
    uint64_t l = tn_raft_leader(n->raft);
    if (tn_raft_role_of(n->raft) == TN_LEADER || !l || l == n->cfg.id) return NULL;
    return url_of(n, l);
}

static void answer_write_waiters(tn_node *n, const tn_raft_entry *e, const uint8_t *resp, size_t resp_len)
{
    uint64_t cid, seq;
    peek_session(e->data, e->len, &cid, &seq);
    for (waiter **pp = &n->waiters; *pp;) {
        waiter *w = *pp;
        int match = 0, lost = 0;
        if (w->kind == W_WRITE) {
            if (w->client_id) match = cid == w->client_id && seq == w->seq;
            else if (w->index == e->index) {
                match = w->term == e->term;
                lost = !match;
            }
        } else if (w->kind == W_ADMIN && w->index == e->index) {
            match = w->term == e->term;
            lost = !match;
        }
        if (!match && !lost) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (lost) {
            reply_error(n, w->p, w->req_id, TN_UNAVAILABLE, "the entry was replaced by a new leader; retry");
        } else if (w->kind == W_ADMIN) {
            tn_wr out;
            tn_wr_init(&out);
            tn_resp_error(&out, w->req_id, TN_SUCCESS, NULL, "membership change applied");
            reply_bytes(w->p, out.p, out.len);
            tn_wr_free(&out);
        } else if (resp_len) {
            tn_wr out;
            tn_wr_init(&out);
            if (tn_resp_rewrite(resp, resp_len, w->req_id, forward_hint(n), &out) == TN_SUCCESS && !out.oom)
                reply_bytes(w->p, out.p, out.len);
            else
                reply_error(n, w->p, w->req_id, TN_INTERNAL, "could not build the response");
            tn_wr_free(&out);
        } else {
            reply_error(n, w->p, w->req_id, TN_BAD_REQUEST, "command could not be applied");
        }
        waiter_free(w);
    }
}

static void apply_member_url(tn_node *n, const uint8_t *p, size_t len)
{
    tn_rd r;
    tn_rd_init(&r, p, len);
    tn_rd_raw(&r, 3);
    uint64_t id = tn_rd_varint(&r);
    size_t ul;
    const uint8_t *u = tn_rd_bytes(&r, MAX_URL - 1, &ul);
    if (r.err || !id) return;
    if (set_url(n, id, (const char *)u, ul) == TN_SUCCESS) {
        nlog(n, "member %" PRIu64 " is at %.*s", id, (int)ul, (const char *)u);
        update_transport_peers(n);
    }
}

static void apply_entry(tn_node *n, const tn_raft_entry *e)
{
    if (e->type == TN_ENTRY_CONF) {
        tn_raft_conf_change cc;
        if (tn_raft_conf_decode(e->data, e->len, &cc) == 0) {
            static const char *const ops[] = {"?", "add voter", "remove", "add learner", "promote"};
            nlog(n, "membership: %s %" PRIu64 " applied at %" PRIu64, ops[cc.op <= 4 ? cc.op : 0], cc.node,
                 e->index);
        }
        update_transport_peers(n);
        answer_write_waiters(n, e, NULL, 0);
        return;
    }
    if (e->type != TN_ENTRY_NORMAL) {
        answer_write_waiters(n, e, NULL, 0);
        return;
    }
    if (e->len >= 3 && e->data[0] == 'T' && e->data[1] == 'U' && e->data[2] == 1) {
        apply_member_url(n, e->data, e->len);
        return;
    }
    tn_wr out;
    tn_wr_init(&out);
    pthread_rwlock_wrlock(&n->sm_lock);
    int rc = tn_sm_apply(n->sm, e->index, e->data, e->len, &out);
    atomic_store(&n->applied_rev, tn_sm_applied(n->sm));
    pthread_rwlock_unlock(&n->sm_lock);
    if (rc == TN_NOMEM || rc == TN_INTERNAL || out.oom) {
        tn_wr_free(&out);
        set_fatal(n, rc == TN_INTERNAL ? "the state machine is inconsistent (failed rollback)"
                                       : "out of memory while applying");
        return;
    }
    answer_write_waiters(n, e, out.p, out.len);
    tn_wr_free(&out);
}

/* ------------------------------------------------------------------------------------------------ */
/* snapshots                                                                                         */

/* After a snapshot FILE at (index, term) is durable: hand the image to the core and compact the log. */
static int compact_to(tn_node *n, uint64_t index, uint64_t term, const uint8_t *data, size_t len)
{
    char err[512];
    if (tn_raft_compact(n->raft, index, data, len) != 0)
        return TN_UNAVAILABLE; /* e.g. a conf change applied later than index: next time */
    n->last_snap_index = index;
    int rc = tn_logstore_compact(n->log, index);
    if (rc != TN_SUCCESS) {
        tn_logstore_errmsg(n->log, err, sizeof err);
        set_fatal(n, err);
        return rc;
    }
    nlog(n, "snapshot taken at index %" PRIu64 " term %" PRIu64 " (%zu bytes), log compacted", index, term, len);
    return TN_SUCCESS;
}

/* Background snapshots: a fork()ed child serializes the state as of the fork (copy-on-write) into a
 * snapshot file and exits, so writes go on meanwhile. The child touches only the state machine, the URL
 * map and the snapshot directory (no locks, no transport). The loop polls for its exit
 * (snapshot_poll), reads the file back and compacts. */
static void start_background_snapshot(tn_node *n)
{
    uint64_t applied = tn_raft_applied(n->raft), term = 0;
    if (n->snap_child || applied <= n->last_snap_index || tn_raft_term_at(n->raft, applied, &term) != 0) return;
    tn_wr conf;
    tn_wr_init(&conf);
    conf_encode(tn_raft_conf_of(n->raft), &conf);
    if (conf.oom) {
        tn_wr_free(&conf);
        return;
    }
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        tn_wr data;
        char err[512];
        tn_wr_init(&data);
        int rc = node_image_save(n, &data);
        if (rc == TN_SUCCESS)
            rc = tn_snapfile_save(n->snap_dir, applied, term, conf.p, conf.len, data.p, data.len, err, sizeof err);
        if (rc != TN_SUCCESS) fprintf(stderr, "raftnet[%" PRIu64 "]: error: background snapshot: %s\n", n->cfg.id,
                                      rc == TN_NOMEM ? "out of memory" : err);
        _exit(rc == TN_SUCCESS ? 0 : 1);
    }
    tn_wr_free(&conf);
    if (pid < 0) {
        nlog(n, "error: fork for a snapshot failed: %s", strerror(errno));
        return;
    }
    n->snap_child = pid;
    n->snap_child_index = applied;
    n->snap_child_term = term;
}

/* Reaps the snapshot child if it exited (block = wait for it). */
static void snapshot_poll(tn_node *n, int block)
{
    int status = 0;
    if (!n->snap_child) return;
    pid_t r = waitpid(n->snap_child, &status, block ? 0 : WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) return;
    n->snap_child = 0;
    if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        nlog(n, "error: background snapshot at %" PRIu64 " failed", n->snap_child_index);
        return;
    }
    tn_snap_meta meta;
    uint8_t *conf = NULL, *data = NULL;
    char err[512];
    if (tn_snapfile_load(n->snap_dir, &meta, &conf, &data, err, sizeof err) != TN_SUCCESS) {
        nlog(n, "error: reading back the snapshot: %s", err);
        return;
    }
    if (meta.index == n->snap_child_index && meta.term == n->snap_child_term && meta.index > n->last_snap_index)
        compact_to(n, meta.index, meta.term, data, (size_t)meta.data_len);
    free(conf);
    free(data);
}

static int take_snapshot(tn_node *n)
{
    if (!n->cfg.data_dir) return TN_BAD_REQUEST; /* in memory: nothing to save to */
    snapshot_poll(n, 1); /* never two writers in the snapshot directory */
    uint64_t applied = tn_raft_applied(n->raft);
    uint64_t term = 0;
    if (applied <= n->last_snap_index) return TN_SUCCESS;
    if (tn_raft_term_at(n->raft, applied, &term) != 0) return TN_INTERNAL;
    tn_wr data, conf;
    tn_wr_init(&data);
    tn_wr_init(&conf);
    char err[512];
    int rc = node_image_save(n, &data);
    conf_encode(tn_raft_conf_of(n->raft), &conf);
    if (rc == TN_SUCCESS && conf.oom) rc = TN_NOMEM;
    if (rc == TN_SUCCESS) {
        rc = tn_snapfile_save(n->snap_dir, applied, term, conf.p, conf.len, data.p, data.len, err, sizeof err);
        if (rc != TN_SUCCESS) nlog(n, "error: snapshot: %s", err);
    }
    if (rc == TN_SUCCESS) rc = compact_to(n, applied, term, data.p, data.len);
    tn_wr_free(&data);
    tn_wr_free(&conf);
    return rc;
}

static void install_snapshot(tn_node *n, const tn_raft_ready *rd)
{
    char err[512];
    int rc = TN_SUCCESS;
    snapshot_poll(n, 1);
    if (n->chunk_installed_index != rd->snapshot.index) {
        tn_wr conf;
        tn_wr_init(&conf);
        conf_encode(&rd->snapshot.conf, &conf);
        rc = tn_snapfile_save(n->snap_dir, rd->snapshot.index, rd->snapshot.term, conf.p, conf.len,
                              rd->snapshot_data, rd->snapshot_len, err, sizeof err);
        tn_wr_free(&conf);
    }
    if (rc != TN_SUCCESS) {
        set_fatal(n, err);
        return;
    }
    rc = tn_logstore_reset(n->log, rd->snapshot.index, rd->snapshot.term);
    if (rc != TN_SUCCESS) {
        tn_logstore_errmsg(n->log, err, sizeof err);
        set_fatal(n, err);
        return;
    }
    pthread_rwlock_wrlock(&n->sm_lock);
    rc = node_image_load(n, rd->snapshot_data, rd->snapshot_len);
    atomic_store(&n->applied_rev, tn_sm_applied(n->sm));
    pthread_rwlock_unlock(&n->sm_lock);
    if (rc != TN_SUCCESS) {
        set_fatal(n, "received snapshot does not decode");
        return;
    }
    n->last_snap_index = rd->snapshot.index;
    update_transport_peers(n);
    nlog(n, "installed snapshot index %" PRIu64 " term %" PRIu64 " (%zu bytes) from the leader",
         rd->snapshot.index, rd->snapshot.term, rd->snapshot_len);
    tn_raft_persisted(n->raft, rd->snapshot.index, rd->snapshot.term);
}

/* ------------------------------------------------------------------------------------------------ */
/* reads                                                                                             */

static void serve_read(tn_node *n, reply_to p, const tn_req *req)
{
    tn_wr out, hinted;
    tn_wr_init(&out);
    tn_wr_init(&hinted);
    int rc = tn_sm_read(n->sm, req, &out);
    /* a linearizable read answered by a follower went through the leader: name it (stale reads stay here) */
    const char *hint = req->read_mode == TN_READ_STALE ? NULL : forward_hint(n);
    if (rc == TN_SUCCESS && !out.oom && hint) {
        rc = tn_resp_rewrite(out.p, out.len, req->req_id, hint, &hinted);
        if (rc == TN_SUCCESS) {
            tn_wr_free(&out);
            out = hinted;
            tn_wr_init(&hinted);
        }
    }
    if (rc == TN_SUCCESS && !out.oom) reply_bytes(p, out.p, out.len);
    else reply_error(n, p, req->req_id, rc == TN_SUCCESS ? TN_NOMEM : rc, "read failed");
    tn_wr_free(&out);
    tn_wr_free(&hinted);
}

static void handle_read_state(tn_node *n, const tn_raft_read_state *rs)
{
    for (waiter **pp = &n->waiters; *pp; pp = &(*pp)->next) {
        waiter *w = *pp;
        if (w->kind != W_READ || w->ctx != rs->ctx) continue;
        *pp = w->next;
        if (rs->ok) serve_read(n, w->p, &w->req);
        else reply_error(n, w->p, w->req_id, TN_NOT_LEADER, "read refused (leader changing); retry");
        waiter_free(w);
        return;
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* the Ready loop                                                                                    */

static void on_soft_change(tn_node *n, tn_raft_role role, uint64_t leader)
{
    uint64_t term = tn_raft_term(n->raft);
    if (role != n->role) {
        if (role == TN_LEADER) nlog(n, "became leader term %" PRIu64, term);
        else if (role == TN_CANDIDATE) nlog(n, "election: campaigning in term %" PRIu64, term);
        else if (role == TN_PRE_CANDIDATE) nlog(n, "election: pre-vote for term %" PRIu64, term + 1);
        else if (n->role == TN_LEADER) nlog(n, "stepped down in term %" PRIu64, term);
    }
    if (leader != n->leader && leader && leader != n->cfg.id)
        nlog(n, "following leader %" PRIu64 " term %" PRIu64, leader, term);
    if (role == TN_LEADER && n->role != TN_LEADER)
        for (size_t i = 0; i < n->n_urls; i++) n->urls[i].match = 0;
    n->role = role;
    n->leader = leader;
}

static void process_ready(tn_node *n)
{
    tn_raft *r = n->raft;
    for (int guard = 0; guard < 1000 && !n->fatal && tn_raft_has_ready(r); guard++) {
        tn_raft_ready rd;
        tn_raft_ready_get(r, &rd);
        if (rd.need_election_timeout)
            tn_raft_set_election_timeout(
                r, n->cfg.election_ticks + (uint32_t)(rand_r(&n->rng) % n->cfg.election_ticks));
        if (rd.has_snapshot) install_snapshot(n, &rd);
        if (rd.truncate_from && n->log && (!rd.n_entries || rd.truncate_from < rd.entries[0].index)) {
            int rc = tn_logstore_truncate_suffix(n->log, rd.truncate_from);
            if (rc != TN_SUCCESS) {
                char err[512];
                tn_logstore_errmsg(n->log, err, sizeof err);
                set_fatal(n, err);
            }
        }
        if (rd.n_entries && !n->fatal && !n->log) {
            /* in memory: nothing to write, the entries are as durable as they will ever be */
            const tn_raft_entry *last = &rd.entries[rd.n_entries - 1];
            tn_raft_persisted(r, last->index, last->term);
        } else if (rd.n_entries && !n->fatal) {
            tn_log_entry stack[64];
            tn_log_entry *le = rd.n_entries <= 64 ? stack : malloc(rd.n_entries * sizeof *le);
            if (!le) {
                set_fatal(n, "out of memory appending");
            } else {
                for (size_t i = 0; i < rd.n_entries; i++)
                    le[i] = (tn_log_entry){rd.entries[i].index, rd.entries[i].term, rd.entries[i].type,
                                           rd.entries[i].data, rd.entries[i].len};
                int rc = tn_logstore_append_batch(n->log, le, rd.n_entries, NULL);
                if (le != stack) free(le);
                if (rc != TN_SUCCESS) {
                    char err[512];
                    tn_logstore_errmsg(n->log, err, sizeof err);
                    set_fatal(n, err);
                } else {
                    n->write_gen++;
                    if (!n->caller_syncs) request_sync(n);
                }
            }
        }
        if (rd.hs_changed && (rd.hs.term != n->saved_term || rd.hs.vote != n->saved_vote) && !n->fatal &&
            n->cfg.data_dir) {
            char err[512];
            tn_hardstate hs = {rd.hs.term, rd.hs.vote, rd.hs.commit};
            if (tn_hardstate_save(n->cfg.data_dir, &hs, err, sizeof err) != TN_SUCCESS) {
                set_fatal(n, err);
            } else {
                n->saved_term = rd.hs.term;
                n->saved_vote = rd.hs.vote;
            }
        }
        /* Order is latency: messages that carry entries or votes first (the next commit waits for them),
         * then the answers to clients whose entries are committed, then commit-index-only appends (only
         * followers' own readers wait for those). Any order is safe: this Ready's entries are already
         * written and its hard state saved. */
        tn_raft_msg *later[TN_RAFT_MAX_NODES];
        size_t n_later = 0;
        for (size_t i = 0; i < rd.n_msgs; i++) {
            tn_raft_msg *m = rd.msgs[i];
            if (n->fatal) tn_raft_msg_free(m);
            else if (m->type == TN_MSG_APP && m->n_entries == 0 && rd.n_committed && n_later < TN_RAFT_MAX_NODES)
                later[n_later++] = m;
            else send_msg(n, m, 0);
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++) {
            if (n->fatal) tn_raft_msg_free(rd.msgs_after_persist[i]);
            else send_msg(n, rd.msgs_after_persist[i], 1);
        }
        if (!n->fatal)
            for (size_t i = 0; i < rd.n_committed; i++) apply_entry(n, &rd.committed[i]);
        for (size_t i = 0; i < n_later; i++) {
            if (n->fatal) tn_raft_msg_free(later[i]);
            else send_msg(n, later[i], 0);
        }
        if (n->fatal) return;
        for (size_t i = 0; i < rd.n_read_states; i++) handle_read_state(n, &rd.read_states[i]);
        if (rd.soft_changed) on_soft_change(n, rd.role, rd.leader);
        if (rd.n_committed && n->cfg.data_dir && tn_raft_applied(r) >= n->last_snap_index + n->cfg.snapshot_entries)
            start_background_snapshot(n);
        if (rd.n_committed && !n->cfg.data_dir && tn_raft_applied(r) >= tn_raft_first_index(r) + MEM_COMPACT_EVERY)
            tn_raft_compact(r, tn_raft_applied(r), NULL, 0); /* no follower will ever need the image */
    }
    atomic_store(&n->log_first, tn_raft_first_index(r));
    /* A node alone (no transport) stays leader once elected: when it has applied an entry of its term, its
     * state holds every acknowledged write and reads may be served on the caller's thread. */
    uint64_t t = 0;
    if (!n->tr && !n->fatal && !atomic_load(&n->local_ready) && tn_raft_role_of(r) == TN_LEADER &&
        tn_raft_term_at(r, tn_raft_applied(r), &t) == 0 && t == tn_raft_term(r))
        atomic_store(&n->local_ready, 1);
}

static void on_synced(tn_node *n, const event *e)
{
    if (e->rc != TN_SUCCESS) {
        char err[512];
        tn_logstore_errmsg(n->log, err, sizeof err);
        set_fatal(n, err);
        return;
    }
    if (e->gen > n->synced_gen) n->synced_gen = e->gen;
    release_held(n);
    uint64_t d = tn_logstore_durable_index(n->log);
    uint64_t t = 0;
    if (d && d >= tn_raft_first_index(n->raft) && tn_raft_term_at(n->raft, d, &t) == 0)
        tn_raft_persisted(n->raft, d, t);
}

/* ------------------------------------------------------------------------------------------------ */
/* client requests                                                                                   */

static void answer_status(tn_node *n, reply_to p, uint64_t req_id)
{
    tn_status s;
    memset(&s, 0, sizeof s);
    const char *self = url_of(n, n->cfg.id);
    s.id = n->cfg.id;
    s.url = self ? self : n->cfg.listen_url ? n->cfg.listen_url : "";
    s.url_len = strlen(s.url);
    s.role = (uint8_t)tn_raft_role_of(n->raft);
    s.term = tn_raft_term(n->raft);
    s.leader = tn_raft_leader(n->raft);
    const char *lu = s.leader ? url_of(n, s.leader) : NULL;
    s.leader_url = lu ? lu : "";
    s.leader_url_len = strlen(s.leader_url);
    s.commit = tn_raft_commit(n->raft);
    s.applied = tn_raft_applied(n->raft);
    s.last_index = tn_raft_last_index(n->raft);
    s.snapshot_index = tn_raft_snapshot_of(n->raft)->index;
    const tn_raft_conf *c = tn_raft_conf_of(n->raft);
    for (uint32_t i = 0; i < c->n_voters + c->n_learners && s.n_members < TN_STATUS_MAX_MEMBERS; i++) {
        int voter = i < c->n_voters;
        uint64_t id = voter ? c->voters[i] : c->learners[i - c->n_voters];
        tn_status_member *m = &s.members[s.n_members++];
        const char *u = url_of(n, id);
        m->id = id;
        m->url = u ? u : "";
        m->url_len = strlen(m->url);
        m->voter = voter;
        /* own entry: the durable index; others: what they acknowledged to this leader (0 elsewhere) */
        m->match = 0;
        if (id == n->cfg.id) m->match = tn_raft_stable_index(n->raft);
        else if (s.role == TN_LEADER)
            for (size_t k = 0; k < n->n_urls; k++)
                if (n->urls[k].id == id) m->match = n->urls[k].match;
    }
    tn_wr blob, out;
    tn_wr_init(&blob);
    tn_wr_init(&out);
    tn_status_encode(&s, &blob);
    tn_resp_builder b;
    tn_resp_begin(&b, &out, req_id, TN_SUCCESS, s.applied, NULL, NULL);
    tn_resp_result_begin(&b, TN_SUCCESS);
    tn_resp_blob(&b, blob.p, blob.len);
    if (tn_resp_finish(&b) == TN_SUCCESS && !blob.oom) reply_bytes(p, out.p, out.len);
    else reply_error(n, p, req_id, TN_NOMEM, "status");
    tn_wr_free(&blob);
    tn_wr_free(&out);
}

static void reply_code(tn_node *n, reply_to p, uint64_t req_id, int code, const char *msg)
{
    reply_error(n, p, req_id, code, msg);
}

static void handle_admin(tn_node *n, reply_to p, const tn_req *req, const tn_op *op)
{
    tn_admin a;
    if (tn_admin_decode(op->value, op->value_len, &a) != TN_SUCCESS) {
        reply_code(n, p, req->req_id, TN_BAD_REQUEST, "admin payload does not decode");
        return;
    }
    if (a.kind == TN_ADMIN_SNAPSHOT) {
        int rc = take_snapshot(n);
        reply_code(n, p, req->req_id, rc, rc == TN_SUCCESS ? "snapshot taken" : "snapshot failed");
        return;
    }
    if (!n->tr) {
        reply_code(n, p, req->req_id, TN_BAD_REQUEST, "this node runs alone (embedded): no membership to change");
        return;
    }
    if (tn_raft_role_of(n->raft) != TN_LEADER) {
        reply_code(n, p, req->req_id, TN_NOT_LEADER, "admin requests go to the leader");
        return;
    }
    if (a.kind == TN_ADMIN_TRANSFER) {
        int rc = tn_raft_transfer_leader(n->raft, a.node);
        if (rc == TN_SUCCESS) nlog(n, "leader transfer to %" PRIu64 " started", a.node);
        reply_code(n, p, req->req_id, rc, rc == TN_SUCCESS ? "transfer started" : "transfer refused");
        return;
    }
    tn_raft_conf_change cc = {0, a.node};
    switch (a.kind) {
    case TN_ADMIN_ADD_VOTER: cc.op = TN_CONF_ADD_VOTER; break;
    case TN_ADMIN_ADD_LEARNER: cc.op = TN_CONF_ADD_LEARNER; break;
    case TN_ADMIN_REMOVE: cc.op = TN_CONF_REMOVE; break;
    case TN_ADMIN_PROMOTE: cc.op = TN_CONF_PROMOTE; break;
    default:
        reply_code(n, p, req->req_id, TN_BAD_REQUEST, "unknown admin kind");
        return;
    }
    if ((a.kind == TN_ADMIN_ADD_VOTER || a.kind == TN_ADMIN_ADD_LEARNER)) {
        const char *known = url_of(n, a.node);
        if (a.url_len == 0 && !known) {
            reply_code(n, p, req->req_id, TN_BAD_REQUEST, "adding a member needs its URL");
            return;
        }
        if (a.url_len >= MAX_URL) {
            reply_code(n, p, req->req_id, TN_BAD_REQUEST, "URL too long");
            return;
        }
        if (a.url_len && (!known || strlen(known) != a.url_len || memcmp(known, a.url, a.url_len) != 0)) {
            tn_wr w;
            tn_wr_init(&w);
            tn_wr_raw(&w, "TU", 2);
            tn_wr_u8(&w, 1);
            tn_wr_varint(&w, a.node);
            tn_wr_bytes(&w, a.url, a.url_len);
            int rc = w.oom ? TN_NOMEM : tn_raft_propose(n->raft, w.p, w.len, NULL, NULL);
            tn_wr_free(&w);
            if (rc != TN_SUCCESS) {
                reply_code(n, p, req->req_id, rc, "could not replicate the member URL");
                return;
            }
        }
    }
    uint64_t index = 0;
    int rc = tn_raft_propose_conf(n->raft, &cc, &index);
    if (rc != TN_SUCCESS) {
        reply_code(n, p, req->req_id, rc, rc == TN_UNAVAILABLE ? "another change is pending; retry" : "refused");
        return;
    }
    waiter *w = calloc(1, sizeof *w);
    if (!w) {
        reply_code(n, p, req->req_id, TN_NOMEM, "out of memory");
        return;
    }
    w->kind = W_ADMIN;
    w->p = p;
    w->req_id = req->req_id;
    w->index = index;
    w->term = tn_raft_term(n->raft);
    waiter_add(n, w);
}

static void propose_write(tn_node *n, reply_to p, uint64_t owner, const tn_req *req, const uint8_t *bytes,
                          size_t len)
{
    if (tn_raft_role_of(n->raft) != TN_LEADER && (!req->client_id || !req->seq)) {
        reply_code(n, p, req->req_id, TN_NOT_LEADER, "writes without a session must go to the leader");
        return;
    }
    int64_t now = tn_wall_ms();
    if (now < n->last_cmd_time) now = n->last_cmd_time;
    n->last_cmd_time = now;
    tn_wr cmd;
    tn_wr_init(&cmd);
    int rc = tn_cmd_encode(now, req->client_id ? req->client_id : owner, bytes, len, &cmd);
    uint64_t index = 0, term = 0;
    if (rc == TN_SUCCESS) rc = cmd.oom ? TN_NOMEM : tn_raft_propose(n->raft, cmd.p, cmd.len, &index, &term);
    tn_wr_free(&cmd);
    if (rc != TN_SUCCESS) {
        reply_code(n, p, req->req_id, rc, rc == TN_NOT_LEADER ? "no leader known" : "proposal refused");
        return;
    }
    waiter *w = calloc(1, sizeof *w);
    if (!w) {
        reply_code(n, p, req->req_id, TN_NOMEM, "out of memory");
        return;
    }
    w->kind = W_WRITE;
    w->p = p;
    w->req_id = req->req_id;
    w->client_id = req->seq ? req->client_id : 0;
    w->seq = req->seq;
    w->index = index;
    w->term = term;
    waiter_add(n, w);
}

static void handle_client(tn_node *n, reply_to p, uint64_t owner, const uint8_t *bytes, size_t len)
{
    tn_req req;
    int rc = tn_req_decode(bytes, len, &req);
    if (rc != TN_SUCCESS) {
        reply_code(n, p, 0, rc, "request could not be decoded");
        return;
    }
    /* STATUS: answered from the node's own view; ops after it (if any) are ignored. */
    if (req.n_ops && req.ops[0].opcode == TN_OP_STATUS) {
        answer_status(n, p, req.req_id);
        tn_req_clear(&req);
        return;
    }
    for (size_t i = 0; i < req.n_ops; i++) {
        if (req.ops[i].opcode == TN_OP_STATUS || req.ops[i].opcode == TN_OP_ADMIN) {
            if (req.n_ops != 1) reply_code(n, p, req.req_id, TN_BAD_REQUEST, "STATUS/ADMIN must be alone");
            else handle_admin(n, p, &req, &req.ops[i]);
            tn_req_clear(&req);
            return;
        }
    }
    if (tn_req_is_write(&req)) {
        propose_write(n, p, owner, &req, bytes, len);
        tn_req_clear(&req);
        return;
    }
    if (req.read_mode == TN_READ_STALE) {
        serve_read(n, p, &req);
        tn_req_clear(&req);
        return;
    }
    uint64_t ctx = (n->cfg.id << 40) | (++n->next_ctx & ((1ull << 40) - 1));
    rc = tn_raft_read_index(n->raft, ctx);
    if (rc != TN_SUCCESS) {
        reply_code(n, p, req.req_id, rc, "no leader known");
        tn_req_clear(&req);
        return;
    }
    waiter *w = calloc(1, sizeof *w);
    if (!w) {
        reply_code(n, p, req.req_id, TN_NOMEM, "out of memory");
        tn_req_clear(&req);
        return;
    }
    w->kind = W_READ;
    w->p = p;
    w->req_id = req.req_id;
    w->ctx = ctx;
    w->req = req; /* the waiter owns the decoded ops now */
    waiter_add(n, w);
}

/* ------------------------------------------------------------------------------------------------ */
/* periodic work                                                                                     */

/* Leader only: proposes one KV_EXPIRE command for the temp nodes due now (tn_sm_expiry_request: each op
 * carries its node's create revision, so a node re-created in between is not touched). Waits until the
 * previous one is applied before scanning again. */
static void propose_expiries(tn_node *n)
{
    if (tn_raft_role_of(n->raft) != TN_LEADER || tn_raft_applied(n->raft) < n->expiry_wait_index) return;
    int64_t now = tn_wall_ms();
    if (now < n->last_cmd_time) now = n->last_cmd_time;
    tn_wr rb, cmd;
    tn_wr_init(&rb);
    tn_wr_init(&cmd);
    uint64_t index = 0;
    if (tn_sm_expiry_request(n->sm, now, EXPIRY_BATCH, &rb) == TN_SUCCESS &&
        tn_cmd_encode(now, 0, rb.p, rb.len, &cmd) == TN_SUCCESS && !cmd.oom &&
        tn_raft_propose(n->raft, cmd.p, cmd.len, &index, NULL) == TN_SUCCESS) {
        n->last_cmd_time = now;
        if (index > n->expiry_wait_index) n->expiry_wait_index = index;
    }
    tn_wr_free(&rb);
    tn_wr_free(&cmd);
}

static void expire_waiters(tn_node *n, int64_t now)
{
    for (waiter **pp = &n->waiters; *pp;) {
        waiter *w = *pp;
        if (w->deadline_ms > now) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        reply_code(n, w->p, w->req_id, TN_TIMEOUT, "no answer within the deadline; retry (sessions make it safe)");
        waiter_free(w);
    }
}

/* Follower progress as the leader sees it, for STATUS (the core does not expose its own table). */
static void note_match(tn_node *n, const tn_raft_msg *m)
{
    if (m->type != TN_MSG_APP_RESP || m->reject || tn_raft_role_of(n->raft) != TN_LEADER ||
        m->term != tn_raft_term(n->raft))
        return;
    for (size_t i = 0; i < n->n_urls; i++)
        if (n->urls[i].id == m->from && m->index > n->urls[i].match) n->urls[i].match = m->index;
}

/* When the loop ends (stop or fatal error), in-process callers are answered at once: nothing else would
 * wake them. Transport requests are left to the transport's close, as before. */
static void answer_local_requests(tn_node *n)
{
    int code = n->fatal ? TN_IO_ERROR : TN_UNAVAILABLE;
    const char *msg = n->fatal ? "the node stopped on a fatal error (see stderr); reopen it" : "node is stopping";
    for (waiter **pp = &n->waiters; *pp;) {
        waiter *w = *pp;
        if (!w->p.fn) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        reply_code(n, w->p, w->req_id, code, msg);
        waiter_free(w);
    }
    pthread_mutex_lock(&n->mu);
    event *keep = NULL, **tail = &keep;
    for (event *e = n->q_head; e;) {
        event *next = e->next;
        if (e->kind == EV_CLIENT && e->p.fn) {
            reply_code(n, e->p, peek_req_id(e->req, e->len), code, msg);
            free(e);
        } else {
            *tail = e;
            tail = &e->next;
        }
        e = next;
    }
    *tail = NULL;
    n->q_head = keep;
    n->q_tail = NULL;
    for (event *e = keep; e; e = e->next) n->q_tail = e;
    pthread_mutex_unlock(&n->mu);
}

static void *loop_main(void *arg)
{
    tn_node *n = arg;
    int64_t next_tick = tn_mono_ms() + n->cfg.tick_ms;
    int64_t next_expiry = tn_mono_ms() + EXPIRY_EVERY_MS;
    pthread_mutex_lock(&n->loop_mu);
    process_ready(n);
    pthread_mutex_unlock(&n->loop_mu);
    for (;;) {
        pthread_mutex_lock(&n->mu);
        while (!n->q_head && !n->stopping) {
            int64_t now = tn_mono_ms();
            if (now >= next_tick) break;
            struct timespec until = {(time_t)(next_tick / 1000), (long)(next_tick % 1000) * 1000000L};
            pthread_cond_timedwait(&n->cv, &n->mu, &until);
        }
        event *list = n->q_head;
        n->q_head = n->q_tail = NULL;
        int stop = n->stopping;
        pthread_mutex_unlock(&n->mu);
        pthread_mutex_lock(&n->loop_mu);
        if (stop) {
            /* events left in the list are freed by tn_node_stop after the transport is closed */
            pthread_mutex_lock(&n->mu);
            if (list) {
                event *t = list;
                while (t->next) t = t->next;
                t->next = n->q_head;
                n->q_head = list;
                if (!n->q_tail) n->q_tail = t;
            }
            pthread_mutex_unlock(&n->mu);
            answer_local_requests(n);
            pthread_mutex_unlock(&n->loop_mu);
            break;
        }
        while (list) {
            event *e = list;
            list = e->next;
            if (!n->fatal) {
                if (e->kind == EV_PEER && e->len >= 3 && e->data[0] == CHUNK_MAGIC && e->data[1] == 'A') {
                    on_snapshot_ack(n, e->from, e->data, e->len);
                } else if (e->kind == EV_PEER && e->len >= 1 && e->data[0] == CHUNK_MAGIC) {
                    on_snapshot_chunk(n, e->from, e->data, e->len);
                } else if (e->kind == EV_PEER) {
                    tn_raft_msg *m = NULL;
                    if (tn_raft_msg_decode(e->data, e->len, &m) == 0) {
                        if (m->to == n->cfg.id && m->from == e->from) {
                            tn_raft_step(n->raft, m);
                            note_match(n, m);
                        }
                        tn_raft_msg_free(m);
                    }
                } else if (e->kind == EV_CLIENT) {
                    handle_client(n, e->p, e->owner, e->req, e->len);
                } else if (e->kind == EV_SYNCED) {
                    on_synced(n, e);
                }
            } else if (e->kind == EV_CLIENT) {
                reply_code(n, e->p, 0, TN_UNAVAILABLE, "node is stopping");
            }
            free(e->data);
            free(e);
        }
        /* one Ready for the whole batch of inputs: proposals made meanwhile go out (and to disk) together */
        process_ready(n);
        int64_t now = tn_mono_ms();
        if (now >= next_tick && !n->fatal) {
            for (int k = 0; k < 5 && now >= next_tick; k++) {
                tn_raft_tick(n->raft);
                next_tick += n->cfg.tick_ms;
            }
            if (now >= next_tick) next_tick = now + n->cfg.tick_ms;
            expire_waiters(n, now);
            snapshot_poll(n, 0);
            snapshot_send_tick(n, now);
            if (now >= next_expiry) {
                propose_expiries(n);
                next_expiry = now + EXPIRY_EVERY_MS;
            }
            process_ready(n);
        }
        pthread_mutex_unlock(&n->loop_mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* lifecycle                                                                                         */

static void stop_disk_thread(tn_node *n)
{
    if (!n->log) return; /* in memory: there is none */
    pthread_mutex_lock(&n->dmu);
    n->disk_stop = 1;
    pthread_cond_signal(&n->dcv);
    pthread_mutex_unlock(&n->dmu);
    pthread_join(n->disk_thread, NULL);
}

/* The disk thread (when there is a log store) and the loop thread. SUCCESS or NOMEM + err. */
static int start_threads(tn_node *n, char *err, size_t errlen)
{
    if (n->log && pthread_create(&n->disk_thread, NULL, disk_main, n) != 0) {
        snprintf(err, errlen, "cannot start the disk thread");
        return TN_NOMEM;
    }
    if (pthread_create(&n->loop_thread, NULL, loop_main, n) != 0) {
        stop_disk_thread(n);
        snprintf(err, errlen, "cannot start the loop thread");
        return TN_NOMEM;
    }
    n->threads_started = 1;
    return TN_SUCCESS;
}

int tn_node_start(tn_node *n, char *err, size_t errlen)
{
    if (!n->cfg.listen_url) {
        /* alone: campaign at the first tick instead of after an election timeout (it wins at once) */
        tn_raft_set_election_timeout(n->raft, 1);
        tn_raft_tick(n->raft);
        return start_threads(n, err, errlen);
    }
    tn_transport_opts o = {0};
    o.self_id = n->cfg.id;
    o.listen_url = n->cfg.listen_url;
    o.token = n->cfg.token;
    o.token_len = n->cfg.token_len;
    o.tls = n->cfg.tls;
    o.on_client = on_client;
    o.on_peer = on_peer;
    o.on_log = on_tlog;
    o.arg = n;
    int rc = tn_transport_open(&o, &n->tr, err, errlen);
    if (rc != TN_SUCCESS) return rc;
    update_transport_peers(n);
    rc = start_threads(n, err, errlen);
    if (rc != TN_SUCCESS) return rc;
    const tn_raft_conf *c = tn_raft_conf_of(n->raft);
    nlog(n, "listening on %s, %u voter(s), %u learner(s), term %" PRIu64 ", last index %" PRIu64,
         n->cfg.listen_url, c->n_voters, c->n_learners, tn_raft_term(n->raft), tn_raft_last_index(n->raft));
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
    stop_disk_thread(n);
    n->threads_started = 0;
    snapshot_poll(n, 1);
    if (!n->fatal && n->log && tn_logstore_sync(n->log, NULL) != TN_SUCCESS) n->fatal = 1;
    tn_transport_close(n->tr);
    n->tr = NULL;
    nlog(n, "stopped%s", n->fatal ? " after a fatal error" : " cleanly");
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
        waiter_free(w);
        w = next;
    }
    for (size_t i = 0; i < n->n_held; i++) free(n->held[i].buf);
    free(n->held);
    snapw_drop(n, 1);
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
/* in-process requests                                                                               */

void tn_node_submit(tn_node *n, const void *req, size_t len, uint64_t owner, tn_node_reply_fn done, void *arg)
{
    reply_to rt = {NULL, done, arg};
    event *e = calloc(1, sizeof *e);
    if (!e) {
        reply_code(n, rt, peek_req_id(req, len), TN_NOMEM, "node out of memory");
        return;
    }
    e->kind = EV_CLIENT;
    e->p = rt;
    e->req = req;
    e->len = len;
    e->owner = owner;
    if (!n->tr) {
        /* Alone: run the request on the caller's thread (no thread hop: an in-memory write is applied and
         * answered before this returns; a persistent one when the disk thread reports its sync). */
        pthread_mutex_lock(&n->loop_mu);
        pthread_mutex_lock(&n->mu);
        int stopping = n->stopping;
        pthread_mutex_unlock(&n->mu);
        if (!stopping) {
            free(e);
            n->caller_syncs = 1;
            handle_client(n, rt, owner, req, len);
            process_ready(n);
            n->caller_syncs = 0;
            uint64_t gen = n->write_gen;
            int need_sync = n->log && n->synced_gen < gen;
            uint64_t upto = need_sync ? tn_logstore_last_index(n->log) : 0;
            pthread_mutex_unlock(&n->loop_mu);
            if (need_sync) {
                /* Sync here rather than through the disk thread and the loop (two thread hops per write);
                 * concurrent callers share fdatasyncs inside the log store (group commit): one whose
                 * entries a sync covered while it waited does not sync again. */
                event synced = {.kind = EV_SYNCED, .gen = gen, .rc = tn_logstore_sync_upto(n->log, upto, NULL)};
                pthread_mutex_lock(&n->loop_mu);
                pthread_mutex_lock(&n->mu);
                stopping = n->stopping;
                pthread_mutex_unlock(&n->mu);
                if (!stopping && !n->fatal) {
                    on_synced(n, &synced);
                    process_ready(n);
                }
                pthread_mutex_unlock(&n->loop_mu);
            }
            return;
        }
        pthread_mutex_unlock(&n->loop_mu);
    }
    pthread_mutex_lock(&n->mu);
    if (n->stopping) {
        /* the loop is gone or going: nobody would answer (fatal is set before stopping, under mu) */
        int fatal = n->fatal;
        pthread_mutex_unlock(&n->mu);
        free(e);
        reply_code(n, rt, peek_req_id(req, len), fatal ? TN_IO_ERROR : TN_UNAVAILABLE,
                   fatal ? "the node stopped on a fatal error (see stderr); reopen it" : "node is stopping");
        return;
    }
    if (n->q_tail) n->q_tail->next = e;
    else n->q_head = e;
    n->q_tail = e;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

int tn_node_read_local(tn_node *n, const tn_req *req, tn_wr *out, int *served)
{
    *served = 0;
    if (!atomic_load(&n->local_ready)) return TN_SUCCESS;
    pthread_rwlock_rdlock(&n->sm_lock);
    int rc = tn_sm_read(n->sm, req, out);
    pthread_rwlock_unlock(&n->sm_lock);
    *served = 1;
    return rc;
}

int tn_node_local_ready(tn_node *n) { return atomic_load(&n->local_ready); }

uint64_t tn_node_applied(tn_node *n) { return atomic_load(&n->applied_rev); }

uint64_t tn_node_log_first_index(tn_node *n) { return atomic_load(&n->log_first); }
