/* raft_progress.c — membership and per-peer progress (match/next, probe/replicate/snapshot, the inflight
 * window), commit by quorum, and replication: what the leader sends to each follower and how it takes
 * their acknowledgements. See raft_int.h. */
#include "raft_int.h"

/* ---------------------------------------------------------------------------------------------- */
/* membership and progress                                                                         */

int tn_raft_conf_has(const uint64_t *v, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == id) return 1;
    return 0;
}

void tn_raft_conf_del(uint64_t *v, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++)
        if (v[i] == id) { v[i] = v[--*n]; return; }
}

int tn_raft_is_voter(const tn_raft *r, uint64_t id)
{
    return tn_raft_conf_has(r->conf.voters, r->conf.n_voters, id);
}

progress *tn_raft_pr_get(const tn_raft *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i]->id == id) return r->prs[i];
    return NULL;
}

void tn_raft_pr_reset(tn_raft *r, progress *p)
{
    p->match = 0;
    p->commit_sent = 0;
    p->next = last_index(r) + 1;
    p->state = PR_PROBE;
    p->probe_sent = 0;
    p->pending_snap = 0;
    p->infl_start = p->infl_count = 0;
    p->infl_bytes = 0;
    p->recent_active = 0;
    p->read_acked = 0;
    p->lease_tick = 0;
    p->vote = -1;
}

/* Rebuilds the progress set from r->conf (keeps existing entries of members). */
int tn_raft_sync_progress(tn_raft *r)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = r->prs[i];
        int v = tn_raft_conf_has(r->conf.voters, r->conf.n_voters, p->id);
        int l = tn_raft_conf_has(r->conf.learners, r->conf.n_learners, p->id);
        if (!v && !l) { free(p); continue; }
        p->voter = v;
        r->prs[w++] = p;
    }
    r->n_prs = w;
    for (int pass = 0; pass < 2; pass++) {
        const uint64_t *ids = pass ? r->conf.learners : r->conf.voters;
        uint32_t n = pass ? r->conf.n_learners : r->conf.n_voters;
        for (uint32_t i = 0; i < n; i++) {
            if (tn_raft_pr_get(r, ids[i])) continue;
            progress *p = calloc(1, sizeof *p);
            if (!p) { r->oom = 1; return -1; }
            p->id = ids[i];
            p->voter = !pass;
            tn_raft_pr_reset(r, p);
            if (r->role == TN_LEADER && p->id == r->id) p->match = r->stable;
            r->prs[r->n_prs++] = p;
        }
    }
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The value that a quorum of voters has reached: the quorum-th largest. self_val stands for this node. */
uint64_t tn_raft_quorum_value(const tn_raft *r, int which, uint64_t self_val)
{
    uint64_t vals[TN_RAFT_MAX_NODES];
    size_t n = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        const progress *p = r->prs[i];
        if (!p->voter) continue;
        uint64_t v = which == 0 ? p->match : which == 1 ? p->read_acked : p->lease_tick;
        vals[n++] = p->id == r->id ? self_val : v;
    }
    if (n == 0) return 0;
    qsort(vals, n, sizeof vals[0], cmp_desc);
    return vals[quorum(r) - 1];
}

int tn_raft_maybe_commit(tn_raft *r)
{
    progress *self = tn_raft_pr_get(r, r->id);
    uint64_t self_match = self ? self->match : 0;
    uint64_t q = tn_raft_quorum_value(r, 0, self_match);
    if (q <= r->commit) return 0;
    uint64_t t;
    if (term_at(r, q, &t) != 0) return 0;
    if (t != r->term && !r->cfg.mutate.commit_old_term) return 0;
    r->commit = q;
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* replication: flow control and what goes to each follower                                        */

int tn_raft_infl_full(const tn_raft *r, const progress *p)
{
    if (p->infl_count >= r->cfg.max_inflight_msgs) return 1;
    if (r->cfg.max_inflight_bytes && p->infl_count && p->infl_bytes >= r->cfg.max_inflight_bytes) return 1;
    return 0;
}

static void infl_add(progress *p, uint64_t last, uint64_t bytes)
{
    p->infl[(p->infl_start + p->infl_count) % MAX_INFLIGHT] = (inflight){last, bytes};
    p->infl_count++;
    p->infl_bytes += bytes;
}

static void infl_free_to(progress *p, uint64_t idx)
{
    while (p->infl_count && p->infl[p->infl_start].last <= idx) {
        p->infl_bytes -= p->infl[p->infl_start].bytes;
        p->infl_start = (p->infl_start + 1) % MAX_INFLIGHT;
        p->infl_count--;
    }
}

static void infl_reset(progress *p)
{
    p->infl_start = p->infl_count = 0;
    p->infl_bytes = 0;
}

static void send_snapshot(tn_raft *r, progress *p)
{
    if (!r->snap.index) return;
    tn_raft_msg *m = tn_raft_msg_alloc(0, 0, r->snap_len);
    if (!m) { r->oom = 1; return; }
    m->type = TN_MSG_SNAP;
    m->to = p->id;
    m->snap = r->snap;
    if (r->snap_len) memcpy((uint8_t *)m->snap_data, r->snap_data, r->snap_len);
    p->state = PR_SNAPSHOT;
    p->pending_snap = r->snap.index;
    p->snap_elapsed = 0;
    infl_reset(p);
    tn_raft_send(r, m);
}

/* Sends one append to p if flow control allows. send_if_empty: 0 = only with entries; 1 = also without
 * (to carry the commit index); 2 = also without, anchored at next-1 so that the answer re-synchronises
 * match after a lost acknowledgement. Returns 1 if a message went out. */
int tn_raft_send_append(tn_raft *r, progress *p, int send_if_empty)
{
    if (p->id == r->id) return 0;
    if (p->state == PR_SNAPSHOT) return 0;
    if (p->state == PR_PROBE && p->probe_sent) return 0;
    if (p->state == PR_REPLICATE && tn_raft_infl_full(r, p)) return 0;
    uint64_t last = last_index(r);
    uint64_t prev = p->next - 1, prev_term;
    if (term_at(r, prev, &prev_term) != 0) {
        send_snapshot(r, p);
        return 1;
    }
    size_t n = 0, bytes = 0;
    uint64_t budget = r->cfg.max_bytes_per_msg;
    while (p->next + n <= last && n < r->cfg.max_entries_per_msg) {
        const tn_raft_entry *e = entry_at(r, p->next + n);
        if (n > 0 && budget && bytes + e->len > budget) break;
        bytes += e->len;
        n++;
    }
    if (n == 0 && !send_if_empty) return 0;
    if (n == 0 && send_if_empty == 1 && p->state == PR_REPLICATE && p->match < prev) {
        /* Commit-only update while appends are in flight: anchor it at what the peer is known to hold,
         * so it cannot be rejected just because an earlier append has not arrived yet. */
        prev = p->match;
        if (term_at(r, prev, &prev_term) != 0) return 0;
    }
    tn_raft_msg *m = tn_raft_msg_alloc(n, bytes, 0);
    if (!m) { r->oom = 1; return 0; }
    m->type = TN_MSG_APP;
    m->to = p->id;
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->commit;
    /* the peer takes min(commit, last index of this message) if it accepts the message */
    uint64_t learnt = prev + n < r->commit ? prev + n : r->commit;
    if (learnt > p->commit_sent) p->commit_sent = learnt;
    uint8_t *d = (uint8_t *)m->buf + n * sizeof(tn_raft_entry);
    for (size_t i = 0; i < n; i++) {
        const tn_raft_entry *e = entry_at(r, p->next + i);
        m->entries[i] = *e;
        m->entries[i].data = d;
        if (e->len) memcpy(d, e->data, e->len);
        d += e->len;
    }
    if (n) {
        if (p->state == PR_REPLICATE) {
            p->next += n;
            infl_add(p, p->next - 1, bytes);
        } else {
            p->probe_sent = 1;
        }
    } else if (p->state == PR_PROBE) {
        p->probe_sent = 1;
    }
    tn_raft_send(r, m);
    return 1;
}

void tn_raft_flush_appends(tn_raft *r, int send_empty)
{
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = r->prs[i];
        if (p->id == r->id) continue;
        int first = 1;
        while (tn_raft_send_append(r, p, first && send_empty)) {
            first = 0;
            if (p->state != PR_REPLICATE) break;
            if (p->next > last_index(r)) break;
        }
    }
}

static void send_heartbeat(tn_raft *r, progress *p, uint64_t ctx)
{
    tn_raft_msg *m = tn_raft_new_msg(r, TN_MSG_HB, p->id);
    if (!m) return;
    m->commit = p->match < r->commit ? p->match : r->commit;
    if (m->commit > p->commit_sent) p->commit_sent = m->commit;
    m->ctx = ctx;
    m->index = r->now;
    tn_raft_send(r, m);
}

void tn_raft_bcast_heartbeat(tn_raft *r)
{
    for (size_t i = 0; i < r->n_prs; i++)
        if (r->prs[i]->id != r->id) send_heartbeat(r, r->prs[i], r->read_round);
    /* Acks of this broadcast confirm every read queued with round <= read_round so far; a read arriving
     * from now on must wait for a later broadcast. */
    r->read_round_sent = 1;
    r->read_bcast_pending = 0;
}

void tn_raft_leader_append_resp(tn_raft *r, progress *p, const tn_raft_msg *m)
{
    if (m->reject) {
        if (p->state == PR_SNAPSHOT) return;
        uint64_t hint = m->reject_hint;
        if (m->log_term > 0) hint = tn_raft_find_conflict_by_term(r, m->reject_hint, m->log_term);
        if (p->state == PR_REPLICATE) {
            if (m->index <= p->match) return; /* stale */
            p->state = PR_PROBE;
            p->next = p->match + 1;
            infl_reset(p);
        } else {
            if (p->next - 1 != m->index) return; /* stale */
            uint64_t n = m->index < hint + 1 ? m->index : hint + 1;
            if (n < 1) n = 1;
            p->next = n;
        }
        if (p->next < p->match + 1) p->next = p->match + 1;
        p->probe_sent = 0;
        tn_raft_send_append(r, p, 1);
        return;
    }
    int was_paused = (p->state == PR_PROBE && p->probe_sent) || p->state == PR_SNAPSHOT ||
                     (p->state == PR_REPLICATE && tn_raft_infl_full(r, p));
    int changed = 0;
    if (m->index > p->match) {
        p->match = m->index;
        changed = 1;
    }
    if (p->next < m->index + 1) p->next = m->index + 1;
    p->probe_sent = 0;
    if (p->state == PR_SNAPSHOT && p->match >= p->pending_snap) {
        p->state = PR_PROBE;
        p->next = p->match + 1;
    }
    if (p->state == PR_PROBE && p->match + 1 == p->next && changed) {
        p->state = PR_REPLICATE;
        infl_reset(p);
    } else if (p->state == PR_PROBE && m->index == p->next - 1 && p->match == m->index) {
        p->state = PR_REPLICATE;
        infl_reset(p);
    }
    if (p->state == PR_REPLICATE) infl_free_to(p, m->index);
    if (changed && tn_raft_maybe_commit(r)) {
        r->pending_bcast = r->pending_bcast_empty = 1;
    }
    if (r->transferee == p->id && p->match == last_index(r)) {
        tn_raft_msg *t = tn_raft_new_msg(r, TN_MSG_TIMEOUT_NOW, p->id);
        if (t) tn_raft_send(r, t);
        r->transfer_in_term = 1;
    }
    int sent = 0;
    while (tn_raft_send_append(r, p, 0)) {
        sent = 1;
        if (p->state != PR_REPLICATE || p->next > last_index(r)) break;
    }
    /* A peer that just caught up after a pause, or whose entries were committed (by other acks) before its
     * own ack came, learns the commit index now, not at the next heartbeat: a write forwarded by it or a
     * ReadIndex read on it waits for exactly that. */
    uint64_t can_learn = p->match < r->commit ? p->match : r->commit;
    if (!sent && changed && (was_paused || can_learn > p->commit_sent)) tn_raft_send_append(r, p, 1);
}
