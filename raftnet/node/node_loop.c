/* node_loop.c — the node's threads: the event queue filled by the transport and the disk thread, the
 * loop thread that drains it, the Ready loop (the etcd-style contract of raft.h: append, persist hard
 * state, send, apply) and the periodic work on ticks (see THREADS and DURABILITY RULES in node.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "hardstate.h"
#include "logstore.h"
#include "node_int.h"
#include "sm.h"
#include "tn_code.h"

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

void tn_node_on_peer(void *arg, uint64_t from, const uint8_t *msg, size_t len)
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

void tn_node_on_client(void *arg, tn_pending *p, const uint8_t *req, size_t len)
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

void tn_node_on_tlog(void *arg, const char *line)
{
    tn_node *n = arg;
    tn_node_log(n, "transport: %s", line);
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
/* the Ready loop                                                                                    */

static void on_soft_change(tn_node *n, tn_raft_role role, uint64_t leader)
{
    uint64_t term = tn_raft_term(n->raft);
    if (role != n->role) {
        if (role == TN_LEADER) tn_node_log(n, "became leader term %" PRIu64, term);
        else if (role == TN_CANDIDATE) tn_node_log(n, "election: campaigning in term %" PRIu64, term);
        else if (role == TN_PRE_CANDIDATE) tn_node_log(n, "election: pre-vote for term %" PRIu64, term + 1);
        else if (n->role == TN_LEADER) tn_node_log(n, "stepped down in term %" PRIu64, term);
    }
    if (leader != n->leader && leader && leader != n->cfg.id)
        tn_node_log(n, "following leader %" PRIu64 " term %" PRIu64, leader, term);
    if (role == TN_LEADER && n->role != TN_LEADER)
        for (size_t i = 0; i < n->n_urls; i++) n->urls[i].match = 0;
    n->role = role;
    n->leader = leader;
}

void tn_node_process_ready(tn_node *n)
{
    tn_raft *r = n->raft;
    for (int guard = 0; guard < 1000 && !n->fatal && tn_raft_has_ready(r); guard++) {
        tn_raft_ready rd;
        tn_raft_ready_get(r, &rd);
        if (rd.need_election_timeout)
            tn_raft_set_election_timeout(
                r, n->cfg.election_ticks + (uint32_t)(rand_r(&n->rng) % n->cfg.election_ticks));
        if (rd.has_snapshot) tn_node_install_snapshot(n, &rd);
        if (rd.truncate_from && n->log && (!rd.n_entries || rd.truncate_from < rd.entries[0].index)) {
            int rc = tn_logstore_truncate_suffix(n->log, rd.truncate_from);
            if (rc != TN_SUCCESS) {
                char err[512];
                tn_logstore_errmsg(n->log, err, sizeof err);
                tn_node_set_fatal(n, err);
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
                tn_node_set_fatal(n, "out of memory appending");
            } else {
                for (size_t i = 0; i < rd.n_entries; i++)
                    le[i] = (tn_log_entry){rd.entries[i].index, rd.entries[i].term, rd.entries[i].type,
                                           rd.entries[i].data, rd.entries[i].len};
                int rc = tn_logstore_append_batch(n->log, le, rd.n_entries, NULL);
                if (le != stack) free(le);
                if (rc != TN_SUCCESS) {
                    char err[512];
                    tn_logstore_errmsg(n->log, err, sizeof err);
                    tn_node_set_fatal(n, err);
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
                tn_node_set_fatal(n, err);
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
            else tn_node_send_msg(n, m, 0);
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++) {
            if (n->fatal) tn_raft_msg_free(rd.msgs_after_persist[i]);
            else tn_node_send_msg(n, rd.msgs_after_persist[i], 1);
        }
        if (!n->fatal)
            for (size_t i = 0; i < rd.n_committed; i++) tn_node_apply_entry(n, &rd.committed[i]);
        for (size_t i = 0; i < n_later; i++) {
            if (n->fatal) tn_raft_msg_free(later[i]);
            else tn_node_send_msg(n, later[i], 0);
        }
        if (n->fatal) return;
        for (size_t i = 0; i < rd.n_read_states; i++) tn_node_handle_read_state(n, &rd.read_states[i]);
        if (rd.soft_changed) on_soft_change(n, rd.role, rd.leader);
        if (rd.n_committed && n->cfg.data_dir && tn_raft_applied(r) >= n->last_snap_index + n->cfg.snapshot_entries)
            tn_node_start_background_snapshot(n);
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

void tn_node_on_synced(tn_node *n, const event *e)
{
    if (e->rc != TN_SUCCESS) {
        char err[512];
        tn_logstore_errmsg(n->log, err, sizeof err);
        tn_node_set_fatal(n, err);
        return;
    }
    if (e->gen > n->synced_gen) n->synced_gen = e->gen;
    tn_node_release_held(n);
    uint64_t d = tn_logstore_durable_index(n->log);
    uint64_t t = 0;
    if (d && d >= tn_raft_first_index(n->raft) && tn_raft_term_at(n->raft, d, &t) == 0)
        tn_raft_persisted(n->raft, d, t);
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
        tn_node_reply_error(n, w->p, w->req_id, TN_TIMEOUT,
                            "no answer within the deadline; retry (sessions make it safe)");
        tn_node_waiter_free(w);
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
        tn_node_reply_error(n, w->p, w->req_id, code, msg);
        tn_node_waiter_free(w);
    }
    pthread_mutex_lock(&n->mu);
    event *keep = NULL, **tail = &keep;
    for (event *e = n->q_head; e;) {
        event *next = e->next;
        if (e->kind == EV_CLIENT && e->p.fn) {
            tn_node_reply_error(n, e->p, tn_req_peek_id(e->req, e->len), code, msg);
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
    tn_node_process_ready(n);
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
                    tn_node_on_snapshot_ack(n, e->from, e->data, e->len);
                } else if (e->kind == EV_PEER && e->len >= 1 && e->data[0] == CHUNK_MAGIC) {
                    tn_node_on_snapshot_chunk(n, e->from, e->data, e->len);
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
                    tn_node_handle_client(n, e->p, e->owner, e->req, e->len);
                } else if (e->kind == EV_SYNCED) {
                    tn_node_on_synced(n, e);
                }
            } else if (e->kind == EV_CLIENT) {
                tn_node_reply_error(n, e->p, 0, TN_UNAVAILABLE, "node is stopping");
            }
            free(e->data);
            free(e);
        }
        /* one Ready for the whole batch of inputs: proposals made meanwhile go out (and to disk) together */
        tn_node_process_ready(n);
        int64_t now = tn_mono_ms();
        if (now >= next_tick && !n->fatal) {
            for (int k = 0; k < 5 && now >= next_tick; k++) {
                tn_raft_tick(n->raft);
                next_tick += n->cfg.tick_ms;
            }
            if (now >= next_tick) next_tick = now + n->cfg.tick_ms;
            expire_waiters(n, now);
            tn_node_snapshot_poll(n, 0);
            tn_node_snapshot_send_tick(n, now);
            if (now >= next_expiry) {
                propose_expiries(n);
                next_expiry = now + EXPIRY_EVERY_MS;
            }
            tn_node_process_ready(n);
        }
        pthread_mutex_unlock(&n->loop_mu);
    }
    return NULL;
}

void tn_node_stop_disk_thread(tn_node *n)
{
    if (!n->log) return; /* in memory: there is none */
    pthread_mutex_lock(&n->dmu);
    n->disk_stop = 1;
    pthread_cond_signal(&n->dcv);
    pthread_mutex_unlock(&n->dmu);
    pthread_join(n->disk_thread, NULL);
}

/* The disk thread (when there is a log store) and the loop thread. SUCCESS or NOMEM + err. */
int tn_node_start_threads(tn_node *n, char *err, size_t errlen)
{
    if (n->log && pthread_create(&n->disk_thread, NULL, disk_main, n) != 0) {
        snprintf(err, errlen, "cannot start the disk thread");
        return TN_NOMEM;
    }
    if (pthread_create(&n->loop_thread, NULL, loop_main, n) != 0) {
        tn_node_stop_disk_thread(n);
        snprintf(err, errlen, "cannot start the loop thread");
        return TN_NOMEM;
    }
    n->threads_started = 1;
    return TN_SUCCESS;
}

