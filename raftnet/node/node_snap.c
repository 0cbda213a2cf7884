/* node_snap.c — snapshots: the node's snapshot payloads, background (fork) and on-demand snapshots,
 * installing a snapshot from the leader, and InstallSnapshot streamed in chunks (SNAPSHOTS in node.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "logstore.h"
#include "node_int.h"
#include "sm.h"
#include "snapfile.h"
#include "snapxfer.h"
#include "tn_code.h"

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

int tn_node_conf_decode(const uint8_t *p, size_t len, tn_raft_conf *c)
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
int tn_node_image_load(tn_node *n, const uint8_t *p, size_t len)
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
    for (uint64_t i = 0; i < nu; i++) tn_node_set_url(n, tmp[i].id, tmp[i].url, strlen(tmp[i].url));
    return TN_SUCCESS;
}

/* ------------------------------------------------------------------------------------------------ */
/* snapshot streams to and from peers                                                                */

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
    tn_node_log(arg, "%s", line);
}

/* Returns 0 if the transfer runs (started, or continuing), -1 if the caller should send the whole Raft
 * message instead (the newest snapshot file is not the core's snapshot, or it cannot be read). */
int tn_node_send_snapshot_chunks(tn_node *n, const tn_raft_msg *m)
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
void tn_node_snapshot_send_tick(tn_node *n, int64_t now)
{
    if (!n->xfer) return;
    if (tn_raft_role_of(n->raft) != TN_LEADER) tn_snapxfer_cancel(n->xfer, 0);
    else tn_snapxfer_tick(n->xfer, now);
}

void tn_node_on_snapshot_ack(tn_node *n, uint64_t from, const uint8_t *p, size_t len)
{
    tn_snapack a;
    if (tn_snapack_decode(p, len, &a) != TN_SUCCESS) {
        tn_node_log(n, "dropping a malformed snapshot acknowledgement from %" PRIu64 " (%zu bytes)", from, len);
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
    if (!w.oom) tn_node_send_encoded(n, to, w.p, w.len);
    tn_wr_free(&w);
}

void tn_node_snapw_drop(tn_node *n, int keep_part)
{
    if (!n->snapw) return;
    if (keep_part) tn_snapwriter_close(n->snapw);
    else tn_snapwriter_abort(n->snapw);
    n->snapw = NULL;
}

void tn_node_on_snapshot_chunk(tn_node *n, uint64_t from, const uint8_t *p, size_t len)
{
    tn_snapchunk c;
    char err[512];
    if (tn_snapchunk_decode(p, len, &c) != TN_SUCCESS) {
        tn_node_log(n, "dropping a malformed snapshot chunk from %" PRIu64 " (%zu bytes)", from, len);
        return;
    }
    uint64_t term = c.term, index = c.index, sterm = c.snap_term, total = c.total;
    if (term < tn_raft_term(n->raft)) return; /* a deposed leader: its sender stops once it learns */
    if (index <= tn_raft_commit(n->raft)) {
        send_snapshot_ack(n, from, index, sterm, total); /* we already have that state: the sender is done */
        return;
    }
    if (n->snapw && (n->snapw_index != index || n->snapw_term != sterm || n->snapw_total != total))
        tn_node_snapw_drop(n, 1);
    if (!n->snapw) {
        tn_node_snapshot_poll(n, 1); /* one writer in the snapshot directory at a time */
        if (tn_snapwriter_begin(n->snap_dir, index, sterm, total, &n->snapw, err, sizeof err) != TN_SUCCESS) {
            tn_node_log(n, "error: snapshot transfer: %s", err);
            n->snapw = NULL;
            return;
        }
        n->snapw_index = index;
        n->snapw_term = sterm;
        n->snapw_total = total;
        if (tn_snapwriter_have(n->snapw))
            tn_node_log(n, "resuming snapshot %" PRIu64 " transfer at byte %" PRIu64, index,
                        tn_snapwriter_have(n->snapw));
    }
    /* BAD_REQUEST = a hole after a lost chunk: the ack below tells the sender where to continue. Every
     * write is fdatasync'd before it returns, so have() is durable when the ack leaves. */
    int rc = tn_snapwriter_write(n->snapw, c.offset, c.data, c.len, err, sizeof err);
    if (rc == TN_IO_ERROR) {
        tn_node_log(n, "error: snapshot transfer: %s", err);
        tn_node_snapw_drop(n, 0);
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
        tn_node_log(n, "error: snapshot transfer: %s", err);
        send_snapshot_ack(n, from, index, sterm, 0); /* the .part is gone: start over */
        return;
    }
    uint8_t *conf = NULL, *data = NULL;
    rc = tn_snapfile_load(n->snap_dir, &meta, &conf, &data, err, sizeof err);
    tn_raft_msg *m = NULL;
    if (rc == TN_SUCCESS && meta.index == index && meta.term == sterm)
        m = tn_raft_msg_alloc(0, 0, (size_t)meta.data_len);
    if (m && tn_node_conf_decode(conf, (size_t)meta.conf_len, &m->snap.conf) == TN_SUCCESS) {
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
        tn_node_log(n, "error: snapshot transfer: %s", err);
    }
    tn_raft_msg_free(m);
    free(conf);
    free(data);
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
        tn_node_set_fatal(n, err);
        return rc;
    }
    tn_node_log(n, "snapshot taken at index %" PRIu64 " term %" PRIu64 " (%zu bytes), log compacted", index, term, len);
    return TN_SUCCESS;
}

/* Background snapshots: a fork()ed child serializes the state as of the fork (copy-on-write) into a
 * snapshot file and exits, so writes go on meanwhile. The child touches only the state machine, the URL
 * map and the snapshot directory (no locks, no transport). The loop polls for its exit
 * (snapshot_poll), reads the file back and compacts. */
void tn_node_start_background_snapshot(tn_node *n)
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
        tn_node_log(n, "error: fork for a snapshot failed: %s", strerror(errno));
        return;
    }
    n->snap_child = pid;
    n->snap_child_index = applied;
    n->snap_child_term = term;
}

/* Reaps the snapshot child if it exited (block = wait for it). */
void tn_node_snapshot_poll(tn_node *n, int block)
{
    int status = 0;
    if (!n->snap_child) return;
    pid_t r = waitpid(n->snap_child, &status, block ? 0 : WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) return;
    n->snap_child = 0;
    if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        tn_node_log(n, "error: background snapshot at %" PRIu64 " failed", n->snap_child_index);
        return;
    }
    tn_snap_meta meta;
    uint8_t *conf = NULL, *data = NULL;
    char err[512];
    if (tn_snapfile_load(n->snap_dir, &meta, &conf, &data, err, sizeof err) != TN_SUCCESS) {
        tn_node_log(n, "error: reading back the snapshot: %s", err);
        return;
    }
    if (meta.index == n->snap_child_index && meta.term == n->snap_child_term && meta.index > n->last_snap_index)
        compact_to(n, meta.index, meta.term, data, (size_t)meta.data_len);
    free(conf);
    free(data);
}

int tn_node_take_snapshot(tn_node *n)
{
    if (!n->cfg.data_dir) return TN_BAD_REQUEST; /* in memory: nothing to save to */
    tn_node_snapshot_poll(n, 1); /* never two writers in the snapshot directory */
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
        if (rc != TN_SUCCESS) tn_node_log(n, "error: snapshot: %s", err);
    }
    if (rc == TN_SUCCESS) rc = compact_to(n, applied, term, data.p, data.len);
    tn_wr_free(&data);
    tn_wr_free(&conf);
    return rc;
}

void tn_node_install_snapshot(tn_node *n, const tn_raft_ready *rd)
{
    char err[512];
    int rc = TN_SUCCESS;
    tn_node_snapshot_poll(n, 1);
    if (n->chunk_installed_index != rd->snapshot.index) {
        tn_wr conf;
        tn_wr_init(&conf);
        conf_encode(&rd->snapshot.conf, &conf);
        rc = tn_snapfile_save(n->snap_dir, rd->snapshot.index, rd->snapshot.term, conf.p, conf.len,
                              rd->snapshot_data, rd->snapshot_len, err, sizeof err);
        tn_wr_free(&conf);
    }
    if (rc != TN_SUCCESS) {
        tn_node_set_fatal(n, err);
        return;
    }
    rc = tn_logstore_reset(n->log, rd->snapshot.index, rd->snapshot.term);
    if (rc != TN_SUCCESS) {
        tn_logstore_errmsg(n->log, err, sizeof err);
        tn_node_set_fatal(n, err);
        return;
    }
    pthread_rwlock_wrlock(&n->sm_lock);
    rc = tn_node_image_load(n, rd->snapshot_data, rd->snapshot_len);
    atomic_store(&n->applied_rev, tn_sm_applied(n->sm));
    pthread_rwlock_unlock(&n->sm_lock);
    if (rc != TN_SUCCESS) {
        tn_node_set_fatal(n, "received snapshot does not decode");
        return;
    }
    n->last_snap_index = rd->snapshot.index;
    tn_node_update_peers(n);
    tn_node_log(n, "installed snapshot index %" PRIu64 " term %" PRIu64 " (%zu bytes) from the leader",
                rd->snapshot.index, rd->snapshot.term, rd->snapshot_len);
    tn_raft_persisted(n->raft, rd->snapshot.index, rd->snapshot.term);
}

