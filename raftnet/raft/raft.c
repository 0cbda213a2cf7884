/* raft.c — the Raft core's state machine: roles and elections, message handling, conf changes, and the
 * entry points (new/restore, tick, step, propose, transfer) and the Ready. The other parts and the state
 * they share: raft_int.h; the contract: raft.h. */
#include "raft_int.h"

/* ---------------------------------------------------------------------------------------------- */
/* messages out                                                                                    */

static int vec_push(tn_raft *r, msgvec *v, tn_raft_msg *m)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        tn_raft_msg **n = realloc(v->v, cap * sizeof *n);
        if (!n) { r->oom = 1; tn_raft_msg_free(m); return -1; }
        v->v = n;
        v->cap = cap;
    }
    v->v[v->n++] = m;
    return 0;
}

/* Queues m. Responses that promise durability (vote grants, append acks, a candidate's own vote) wait
 * until the driver has made everything persisted so far durable. */
void tn_raft_send(tn_raft *r, tn_raft_msg *m)
{
    m->from = r->id;
    if (m->type != TN_MSG_PREVOTE && m->type != TN_MSG_PREVOTE_RESP && m->type != TN_MSG_PROP &&
        m->type != TN_MSG_READ && m->type != TN_MSG_VOTE_RESP)
        m->term = r->term;
    int after = 0;
    if (m->type == TN_MSG_VOTE) after = 1;
    if (m->type == TN_MSG_VOTE_RESP && !r->cfg.mutate.skip_vote_persist) after = 1;
    if (m->type == TN_MSG_APP_RESP && !r->cfg.mutate.ack_before_persist) after = 1;
    vec_push(r, after ? &r->out_after : &r->out, m);
}

tn_raft_msg *tn_raft_new_msg(tn_raft *r, uint8_t type, uint64_t to)
{
    tn_raft_msg *m = tn_raft_msg_alloc(0, 0, 0);
    if (!m) { r->oom = 1; return NULL; }
    m->type = type;
    m->to = to;
    return m;
}

static void send_simple(tn_raft *r, uint8_t type, uint64_t to, uint64_t index, int reject, uint64_t hint,
                        uint64_t log_term)
{
    tn_raft_msg *m = tn_raft_new_msg(r, type, to);
    if (!m) return;
    m->index = index;
    m->reject = (uint8_t)reject;
    m->reject_hint = hint;
    m->log_term = log_term;
    tn_raft_send(r, m);
}

/* ---------------------------------------------------------------------------------------------- */
/* roles                                                                                           */

static void reset(tn_raft *r, uint64_t term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = 0;
    }
    r->leader = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->need_timeout = 1;
    r->transferee = 0;
    r->transfer_in_term = 0;
    tn_raft_refuse_all_reads(r);
    r->read_round_sent = 1; /* the next read opens a fresh round */
    r->read_bcast_pending = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        tn_raft_pr_reset(r, r->prs[i]);
        if (r->prs[i]->id == r->id) r->prs[i]->match = r->stable;
    }
    r->pending_bcast = r->pending_bcast_empty = 0;
}

static void become_follower(tn_raft *r, uint64_t term, uint64_t leader)
{
    reset(r, term);
    r->role = TN_FOLLOWER;
    r->leader = leader;
}

static int promotable(const tn_raft *r) { return tn_raft_is_voter(r, r->id) && !r->snap_pending; }

static void become_leader(tn_raft *r)
{
    reset(r, r->term);
    r->role = TN_LEADER;
    r->leader = r->id;
    r->pending_conf_index = last_index(r);
    tn_raft_log_append(r, r->term, TN_ENTRY_NOOP, NULL, 0);
    progress *self = tn_raft_pr_get(r, r->id);
    if (self) {
        self->recent_active = 1;
        if (r->cfg.mutate.count_unpersisted) self->match = last_index(r);
    }
    r->pending_bcast = 1;
    r->pending_bcast_empty = 1;
}

static void campaign(tn_raft *r, int pre, int force)
{
    if (!promotable(r)) return;
    uint64_t vote_term;
    if (pre) {
        r->role = TN_PRE_CANDIDATE;
        r->leader = 0;
        tn_raft_refuse_all_reads(r);
        vote_term = r->term + 1;
        r->need_timeout = 1;
        for (size_t i = 0; i < r->n_prs; i++) r->prs[i]->vote = -1;
    } else {
        reset(r, r->term + 1);
        r->role = TN_CANDIDATE;
        r->vote = r->id;
        vote_term = r->term;
    }
    progress *self = tn_raft_pr_get(r, r->id);
    self->vote = 1;
    if (quorum(r) == 1) {
        if (pre) campaign(r, 0, force);
        else become_leader(r);
        return;
    }
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = r->prs[i];
        if (!p->voter || p->id == r->id) continue;
        tn_raft_msg *m = tn_raft_new_msg(r, pre ? TN_MSG_PREVOTE : TN_MSG_VOTE, p->id);
        if (!m) return;
        m->term = vote_term;
        m->index = last_index(r);
        m->log_term = last_term(r);
        m->force = (uint8_t)force;
        tn_raft_send(r, m);
    }
}

static void tally(tn_raft *r, const tn_raft_msg *m)
{
    progress *p = tn_raft_pr_get(r, m->from);
    if (!p || !p->voter) return;
    if (p->vote == -1) p->vote = m->reject ? 0 : 1;
    size_t yes = 0, no = 0;
    for (size_t i = 0; i < r->n_prs; i++) {
        if (!r->prs[i]->voter) continue;
        if (r->prs[i]->vote == 1) yes++;
        if (r->prs[i]->vote == 0) no++;
    }
    if (yes >= quorum(r)) {
        if (r->role == TN_PRE_CANDIDATE) campaign(r, 0, 0);
        else become_leader(r);
    } else if (no >= quorum(r)) {
        become_follower(r, r->term, 0);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* conf changes                                                                                    */

static void apply_conf(tn_raft *r, const tn_raft_entry *e)
{
    tn_raft_conf_change cc;
    r->conf_applied_index = e->index;
    if (tn_raft_conf_decode(e->data, e->len, &cc) != 0) return;
    tn_raft_conf *c = &r->conf;
    switch (cc.op) {
    case TN_CONF_ADD_VOTER:
    case TN_CONF_PROMOTE:
        if (cc.op == TN_CONF_PROMOTE && !tn_raft_conf_has(c->learners, c->n_learners, cc.node)) break;
        tn_raft_conf_del(c->learners, &c->n_learners, cc.node);
        if (!tn_raft_conf_has(c->voters, c->n_voters, cc.node) && c->n_voters < TN_RAFT_MAX_NODES)
            c->voters[c->n_voters++] = cc.node;
        break;
    case TN_CONF_REMOVE:
        if (c->n_voters == 1 && c->voters[0] == cc.node) break; /* never remove the last voter */
        tn_raft_conf_del(c->voters, &c->n_voters, cc.node);
        tn_raft_conf_del(c->learners, &c->n_learners, cc.node);
        break;
    case TN_CONF_ADD_LEARNER:
        if (tn_raft_conf_has(c->voters, c->n_voters, cc.node)) break;
        if (!tn_raft_conf_has(c->learners, c->n_learners, cc.node) && c->n_learners < TN_RAFT_MAX_NODES)
            c->learners[c->n_learners++] = cc.node;
        break;
    }
    tn_raft_sync_progress(r);
    if (r->role == TN_LEADER) {
        if (!tn_raft_is_voter(r, r->id)) {
            become_follower(r, r->term, 0); /* removed (or demoted) leader steps down */
            return;
        }
        tn_raft_maybe_commit(r);
        r->pending_bcast = r->pending_bcast_empty = 1; /* probe new members at once */
        tn_raft_confirm_reads(r);
    }
    if (r->transferee && !tn_raft_pr_get(r, r->transferee)) r->transferee = 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* message handling                                                                                */

static int log_up_to_date(const tn_raft *r, uint64_t idx, uint64_t t)
{
    uint64_t lt = last_term(r);
    return t > lt || (t == lt && idx >= last_index(r));
}

static void handle_vote(tn_raft *r, const tn_raft_msg *m)
{
    int pre = m->type == TN_MSG_PREVOTE;
    int can = r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
    tn_raft_msg *resp = tn_raft_new_msg(r, pre ? TN_MSG_PREVOTE_RESP : TN_MSG_VOTE_RESP, m->from);
    if (!resp) return;
    if (can && (r->cfg.mutate.no_log_check_vote || log_up_to_date(r, m->index, m->log_term))) {
        resp->term = m->term;
        if (!pre) {
            r->election_elapsed = 0;
            r->vote = m->from;
        }
    } else {
        resp->term = r->term;
        resp->reject = 1;
    }
    tn_raft_send(r, resp);
}

static void handle_append(tn_raft *r, const tn_raft_msg *m)
{
    if (m->index < r->commit) {
        send_simple(r, TN_MSG_APP_RESP, m->from, r->commit, 0, 0, 0);
        return;
    }
    if (!match_term(r, m->index, m->log_term)) {
        uint64_t hint = m->index < last_index(r) ? m->index : last_index(r);
        hint = tn_raft_find_conflict_by_term(r, hint, m->log_term);
        uint64_t ht;
        term_at(r, hint, &ht);
        send_simple(r, TN_MSG_APP_RESP, m->from, m->index, 1, hint, ht);
        return;
    }
    uint64_t last_new = m->index + m->n_entries;
    size_t i = 0;
    for (; i < m->n_entries; i++) {
        const tn_raft_entry *e = &m->entries[i];
        if (!match_term(r, e->index, e->term)) break;
    }
    if (i < m->n_entries) {
        uint64_t from = m->entries[i].index;
        if (from <= r->commit) return; /* would rewrite a committed entry: a bug elsewhere; refuse */
        if (from <= last_index(r)) tn_raft_log_truncate(r, from);
        for (; i < m->n_entries; i++) {
            const tn_raft_entry *e = &m->entries[i];
            if (tn_raft_log_append(r, e->term, e->type, e->data, e->len) != 0) return;
        }
    }
    uint64_t c = m->commit < last_new ? m->commit : last_new;
    if (c > r->commit) r->commit = c;
    send_simple(r, TN_MSG_APP_RESP, m->from, last_new, 0, 0, 0);
}

static void handle_heartbeat(tn_raft *r, const tn_raft_msg *m)
{
    if (m->commit > r->commit && m->commit <= last_index(r)) r->commit = m->commit;
    tn_raft_msg *resp = tn_raft_new_msg(r, TN_MSG_HB_RESP, m->from);
    if (!resp) return;
    resp->ctx = m->ctx;
    resp->index = m->index;
    tn_raft_send(r, resp);
}

static void handle_snapshot(tn_raft *r, const tn_raft_msg *m)
{
    const tn_raft_snapshot_meta *s = &m->snap;
    if (s->index == 0 || s->conf.n_voters == 0) return; /* malformed: a snapshot always has voters */
    if (s->index <= r->commit) {
        send_simple(r, TN_MSG_APP_RESP, m->from, r->commit, 0, 0, 0);
        return;
    }
    if (match_term(r, s->index, s->term)) {
        r->commit = s->index;
        send_simple(r, TN_MSG_APP_RESP, m->from, s->index, 0, 0, 0);
        return;
    }
    uint8_t *copy = NULL;
    if (m->snap_len) {
        copy = malloc(m->snap_len);
        if (!copy) { r->oom = 1; return; }
        memcpy(copy, m->snap_data, m->snap_len);
    }
    tn_raft_log_free_all(r);
    free(r->snap_data);
    r->snap_data = copy;
    r->snap_len = m->snap_len;
    r->snap = *s;
    r->snap_pending = 1;
    r->conf = s->conf;
    r->conf_applied_index = s->index;
    tn_raft_sync_progress(r);
    r->commit = s->index;
    if (r->stable >= s->index) r->stable = s->index - 1;
    r->persist_from = s->index + 1;
    r->trunc_pending = 0;
    send_simple(r, TN_MSG_APP_RESP, m->from, s->index, 0, 0, 0);
}

static void step_leader(tn_raft *r, const tn_raft_msg *m)
{
    if (m->type == TN_MSG_PROP) {
        if (r->transferee) return;
        for (size_t i = 0; i < m->n_entries; i++) {
            if (m->entries[i].type != TN_ENTRY_NORMAL) continue;
            if (tn_raft_log_append(r, r->term, TN_ENTRY_NORMAL, m->entries[i].data, m->entries[i].len) != 0)
                return;
        }
        if (r->cfg.mutate.count_unpersisted) {
            progress *self = tn_raft_pr_get(r, r->id);
            if (self) self->match = last_index(r);
        }
        r->pending_bcast = 1;
        return;
    }
    if (m->type == TN_MSG_READ) {
        tn_raft_leader_read(r, m->from, m->ctx);
        return;
    }
    progress *p = tn_raft_pr_get(r, m->from);
    if (!p) return;
    p->recent_active = 1;
    switch (m->type) {
    case TN_MSG_APP_RESP:
        tn_raft_leader_append_resp(r, p, m);
        break;
    case TN_MSG_HB_RESP:
        if (m->ctx > p->read_acked) p->read_acked = m->ctx;
        if (m->index > p->lease_tick) p->lease_tick = m->index;
        p->probe_sent = 0;
        if (p->state == PR_SNAPSHOT) break;
        /* an acknowledgement may have been lost: free one in-flight slot so the window cannot stay
         * closed forever, and let the peer re-state where it is */
        if (p->state == PR_REPLICATE && tn_raft_infl_full(r, p)) {
            p->infl_bytes -= p->infl[p->infl_start].bytes;
            p->infl_start = (p->infl_start + 1) % MAX_INFLIGHT;
            p->infl_count--;
        }
        if (p->match < last_index(r)) tn_raft_send_append(r, p, 2);
        if (r->n_reads) tn_raft_confirm_reads(r);
        break;
    default:
        break;
    }
}

int tn_raft_step(tn_raft *r, const tn_raft_msg *m)
{
    if (!m || m->type < 1 || m->type > TN_RAFT_MSG_TYPE_MAX) return -1;
    if (m->to != r->id || m->from == 0 || m->from == r->id) return -1;
    if (m->type == TN_MSG_PROP || m->type == TN_MSG_READ) {
        /* local-ish requests carry no term */
        if (r->role == TN_LEADER) step_leader(r, m);
        else if (m->type == TN_MSG_READ) tn_raft_read_refuse(r, m->from, m->ctx);
        return 0;
    }
    if (m->term > r->term) {
        if (m->type == TN_MSG_VOTE || m->type == TN_MSG_PREVOTE) {
            int in_lease = r->cfg.check_quorum && !m->force &&
                           (r->role == TN_LEADER || r->since_leader_contact < r->cfg.election_ticks);
            if (in_lease) return 0;
        }
        if (m->type == TN_MSG_PREVOTE) {
            /* no term change for a pre-vote */
        } else if (m->type == TN_MSG_PREVOTE_RESP && !m->reject) {
            /* a granted pre-vote carries the future term */
        } else if (m->type == TN_MSG_APP || m->type == TN_MSG_HB || m->type == TN_MSG_SNAP) {
            become_follower(r, m->term, m->from);
        } else if (m->type == TN_MSG_VOTE) {
            /* A vote request moves us to its term, but only a granted vote restarts the election timer
             * (Raft §5.2): a candidate with a stale log must not keep the up-to-date nodes from ever
             * timing out. */
            uint32_t elapsed = r->election_elapsed;
            become_follower(r, m->term, 0);
            r->election_elapsed = elapsed;
            r->need_timeout = 0;
        } else {
            become_follower(r, m->term, 0);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) && (m->type == TN_MSG_APP || m->type == TN_MSG_HB)) {
            send_simple(r, TN_MSG_APP_RESP, m->from, 0, 0, 0, 0); /* tells a stale leader our term */
        } else if (m->type == TN_MSG_PREVOTE) {
            tn_raft_msg *resp = tn_raft_new_msg(r, TN_MSG_PREVOTE_RESP, m->from);
            if (resp) {
                resp->term = r->term;
                resp->reject = 1;
                tn_raft_send(r, resp);
            }
        }
        return 0;
    }

    switch (m->type) {
    case TN_MSG_PREVOTE:
    case TN_MSG_VOTE:
        handle_vote(r, m);
        return 0;
    case TN_MSG_PREVOTE_RESP:
        if (r->role == TN_PRE_CANDIDATE) tally(r, m);
        return 0;
    case TN_MSG_VOTE_RESP:
        if (r->role == TN_CANDIDATE) tally(r, m);
        return 0;
    default:
        break;
    }

    if (r->role == TN_LEADER) {
        step_leader(r, m);
        return 0;
    }
    switch (m->type) {
    case TN_MSG_APP:
    case TN_MSG_HB:
    case TN_MSG_SNAP:
        if (r->role != TN_FOLLOWER) become_follower(r, m->term, m->from);
        r->leader = m->from;
        r->election_elapsed = 0;
        r->since_leader_contact = 0;
        if (m->type == TN_MSG_APP) handle_append(r, m);
        else if (m->type == TN_MSG_HB) handle_heartbeat(r, m);
        else handle_snapshot(r, m);
        break;
    case TN_MSG_READ_RESP:
        if (m->reject) tn_raft_rs_push(r, &r->rs_out, &r->n_rs_out, &r->cap_rs_out, m->ctx, 0, 0);
        else tn_raft_rs_push(r, &r->waits, &r->n_waits, &r->cap_waits, m->ctx, m->index, 1);
        break;
    case TN_MSG_TIMEOUT_NOW:
        if (r->role == TN_FOLLOWER) campaign(r, 0, 1);
        break;
    default:
        break;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* public API                                                                                      */

static int config_ok(const tn_raft_config *c)
{
    if (!c->id || !c->election_ticks || !c->heartbeat_ticks || c->heartbeat_ticks >= c->election_ticks)
        return 0;
    if (c->max_inflight_msgs < 1 || c->max_inflight_msgs > MAX_INFLIGHT || c->max_entries_per_msg < 1)
        return 0;
    if (c->conf.n_voters > TN_RAFT_MAX_NODES || c->conf.n_learners > TN_RAFT_MAX_NODES) return 0;
    return 1;
}

static tn_raft *raft_alloc(const tn_raft_config *cfg)
{
    if (!config_ok(cfg)) return NULL;
    tn_raft *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = *cfg;
    r->id = cfg->id;
    r->conf = cfg->conf;
    r->role = TN_FOLLOWER;
    r->rand_timeout = cfg->election_ticks;
    r->need_timeout = 1;
    r->persist_from = 1;
    r->last_role = TN_FOLLOWER;
    return r;
}

tn_raft *tn_raft_new(const tn_raft_config *cfg)
{
    tn_raft *r = raft_alloc(cfg);
    if (!r) return NULL;
    if (tn_raft_sync_progress(r) != 0) { tn_raft_free(r); return NULL; }
    return r;
}

tn_raft *tn_raft_restore(const tn_raft_config *cfg, const tn_raft_hard_state *hs,
                         const tn_raft_snapshot_meta *snap, const uint8_t *snap_data, size_t snap_len,
                         const tn_raft_entry *ents, size_t n)
{
    tn_raft *r = raft_alloc(cfg);
    if (!r) return NULL;
    if (snap && snap->index) {
        r->snap = *snap;
        r->conf = snap->conf;
        r->conf_applied_index = snap->index;
        if (snap_len) {
            r->snap_data = malloc(snap_len);
            if (!r->snap_data) goto fail;
            memcpy(r->snap_data, snap_data, snap_len);
            r->snap_len = snap_len;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (ents[i].index != last_index(r) + 1 || ents[i].term < last_term(r)) goto fail;
        if (tn_raft_log_append(r, ents[i].term, ents[i].type, ents[i].data, ents[i].len) != 0) goto fail;
    }
    r->term = hs->term;
    r->vote = hs->vote;
    r->commit = hs->commit > r->snap.index ? hs->commit : r->snap.index;
    if (r->commit > last_index(r)) r->commit = last_index(r); /* commit beyond what survived: re-learn */
    r->applied = r->snap.index;
    r->stable = last_index(r);
    r->persist_from = last_index(r) + 1;
    r->last_hs = (tn_raft_hard_state){r->term, r->vote, r->commit};
    if (tn_raft_sync_progress(r) != 0) goto fail;
    return r;
fail:
    tn_raft_free(r);
    return NULL;
}

void tn_raft_free(tn_raft *r)
{
    if (!r) return;
    tn_raft_log_free_all(r);
    free(r->ents);
    free(r->snap_data);
    for (size_t i = 0; i < r->n_prs; i++) free(r->prs[i]);
    msgvec *vs[4] = {&r->out, &r->out_after, &r->handed, &r->handed_after};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < vs[k]->n; i++) tn_raft_msg_free(vs[k]->v[i]);
    for (int k = 0; k < 4; k++) free(vs[k]->v);
    free(r->reads);
    free(r->waits);
    free(r->rs_out);
    free(r->rs_handed);
    free(r);
}

void tn_raft_set_election_timeout(tn_raft *r, uint32_t ticks)
{
    r->rand_timeout = ticks ? ticks : r->cfg.election_ticks;
}

void tn_raft_tick(tn_raft *r)
{
    r->now++;
    r->since_leader_contact++;
    if (r->role != TN_LEADER) {
        r->election_elapsed++;
        if (promotable(r) && r->election_elapsed >= r->rand_timeout) {
            r->election_elapsed = 0;
            campaign(r, r->cfg.pre_vote, 0);
        }
        return;
    }
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = r->prs[i];
        if (p->state == PR_SNAPSHOT && ++p->snap_elapsed >= r->cfg.election_ticks) {
            p->state = PR_PROBE; /* the snapshot was probably lost: probe again (resends it) */
            p->probe_sent = 0;
            p->next = p->match + 1;
            r->pending_bcast = 1;
        }
    }
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum) {
            size_t active = 0;
            for (size_t i = 0; i < r->n_prs; i++) {
                progress *p = r->prs[i];
                if (p->voter && (p->id == r->id || p->recent_active)) active++;
                if (p->id != r->id) p->recent_active = 0;
            }
            if (active < quorum(r)) {
                become_follower(r, r->term, 0);
                return;
            }
        }
        if (r->transferee) r->transferee = 0; /* transfer timed out */
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        tn_raft_bcast_heartbeat(r);
    }
}

int tn_raft_propose(tn_raft *r, const void *data, size_t len, uint64_t *index, uint64_t *term)
{
    if (index) *index = 0;
    if (term) *term = 0;
    if (len > TN_RAFT_MSG_MAX_DATA) return TN_TOO_LARGE;
    if (r->role == TN_LEADER) {
        if (r->transferee) return TN_NOT_LEADER;
        if (tn_raft_log_append(r, r->term, TN_ENTRY_NORMAL, data, len) != 0) return TN_NOMEM;
        progress *self = tn_raft_pr_get(r, r->id);
        if (self && r->cfg.mutate.count_unpersisted) self->match = last_index(r);
        r->pending_bcast = 1;
        if (index) *index = last_index(r);
        if (term) *term = r->term;
        return TN_SUCCESS;
    }
    if (!r->leader) return TN_NOT_LEADER;
    tn_raft_msg *m = tn_raft_msg_alloc(1, len, 0);
    if (!m) return TN_NOMEM;
    m->type = TN_MSG_PROP;
    m->to = r->leader;
    m->entries[0].type = TN_ENTRY_NORMAL;
    m->entries[0].len = (uint32_t)len;
    m->entries[0].data = (uint8_t *)m->buf + sizeof(tn_raft_entry);
    m->entries[0].term = m->entries[0].index = 0;
    if (len) memcpy(m->entries[0].data, data, len);
    tn_raft_send(r, m);
    return TN_SUCCESS;
}

int tn_raft_propose_conf(tn_raft *r, const tn_raft_conf_change *cc, uint64_t *index)
{
    if (index) *index = 0;
    if (r->role != TN_LEADER || r->transferee) return TN_NOT_LEADER;
    if (r->pending_conf_index > r->applied || !tn_raft_committed_in_term(r)) return TN_UNAVAILABLE;
    const tn_raft_conf *c = &r->conf;
    int v = tn_raft_conf_has(c->voters, c->n_voters, cc->node);
    int l = tn_raft_conf_has(c->learners, c->n_learners, cc->node);
    switch (cc->op) {
    case TN_CONF_ADD_VOTER: if (v || c->n_voters >= TN_RAFT_MAX_NODES) return TN_CLIENT_REQ_ERROR; break;
    case TN_CONF_PROMOTE: if (!l) return TN_CLIENT_REQ_ERROR; break;
    case TN_CONF_ADD_LEARNER: if (v || l || c->n_learners >= TN_RAFT_MAX_NODES) return TN_CLIENT_REQ_ERROR; break;
    case TN_CONF_REMOVE:
        if (!v && !l) return TN_CLIENT_REQ_ERROR;
        if (v && c->n_voters == 1) return TN_CLIENT_REQ_ERROR;
        break;
    default: return TN_CLIENT_REQ_ERROR;
    }
    if (cc->node == 0) return TN_CLIENT_REQ_ERROR;
    uint8_t buf[11];
    size_t n = tn_raft_conf_encode(cc, buf);
    if (tn_raft_log_append(r, r->term, TN_ENTRY_CONF, buf, n) != 0) return TN_NOMEM;
    r->pending_conf_index = last_index(r);
    r->pending_bcast = 1;
    if (index) *index = last_index(r);
    return TN_SUCCESS;
}

int tn_raft_transfer_leader(tn_raft *r, uint64_t to)
{
    if (r->role != TN_LEADER) return TN_NOT_LEADER;
    if (to == r->id || !tn_raft_is_voter(r, to)) return TN_CLIENT_REQ_ERROR;
    progress *p = tn_raft_pr_get(r, to);
    r->transferee = to;
    r->election_elapsed = 0;
    if (p->match == last_index(r)) {
        tn_raft_msg *t = tn_raft_new_msg(r, TN_MSG_TIMEOUT_NOW, to);
        if (t) tn_raft_send(r, t);
        r->transfer_in_term = 1;
    } else {
        tn_raft_send_append(r, p, 0);
    }
    return TN_SUCCESS;
}

int tn_raft_has_ready(const tn_raft *r)
{
    if (r->out.n || r->out_after.n || r->n_rs_out || r->snap_pending || r->need_timeout) return 1;
    if (r->role == TN_LEADER && (r->pending_bcast || r->read_bcast_pending)) return 1;
    if (r->persist_from <= last_index(r) || r->trunc_pending) return 1;
    uint64_t hi = r->commit < r->stable ? r->commit : r->stable;
    if (hi > r->applied) return 1;
    for (size_t i = 0; i < r->n_waits; i++)
        if (r->waits[i].index <= r->applied) return 1;
    if (r->term != r->last_hs.term || r->vote != r->last_hs.vote || r->commit != r->last_hs.commit) return 1;
    if (r->role != r->last_role || r->leader != r->last_leader) return 1;
    return 0;
}

void tn_raft_ready_get(tn_raft *r, tn_raft_ready *rd)
{
    memset(rd, 0, sizeof *rd);
    if (r->role == TN_LEADER && r->pending_bcast) {
        tn_raft_flush_appends(r, r->pending_bcast_empty);
        r->pending_bcast = r->pending_bcast_empty = 0;
    }
    if (r->role == TN_LEADER && r->read_bcast_pending) tn_raft_bcast_heartbeat(r);
    if (r->snap_pending) {
        rd->has_snapshot = 1;
        rd->snapshot = r->snap;
        rd->snapshot_data = r->snap_data;
        rd->snapshot_len = r->snap_len;
        r->snap_pending = 0;
        r->applied = r->snap.index;
    }
    rd->truncate_from = r->trunc_pending;
    r->trunc_pending = 0;
    if (r->persist_from <= last_index(r)) {
        rd->entries = entry_at(r, r->persist_from);
        rd->n_entries = (size_t)(last_index(r) - r->persist_from + 1);
        r->persist_from = last_index(r) + 1;
    }
    uint64_t hi = r->commit < r->stable ? r->commit : r->stable;
    if (hi > r->applied) {
        rd->committed = entry_at(r, r->applied + 1);
        rd->n_committed = (size_t)(hi - r->applied);
        for (size_t i = 0; i < rd->n_committed; i++) {
            r->applied = rd->committed[i].index;
            if (rd->committed[i].type == TN_ENTRY_CONF) apply_conf(r, &rd->committed[i]);
        }
        if (r->role == TN_LEADER && r->pending_bcast) {
            tn_raft_flush_appends(r, r->pending_bcast_empty);
            r->pending_bcast = r->pending_bcast_empty = 0;
        }
    }
    /* read states: refusals, then confirmed reads whose index has been applied (in order) */
    r->n_rs_handed = 0;
    {
        tn_raft_read_state *t = r->rs_handed;
        size_t c = r->cap_rs_handed;
        r->rs_handed = r->rs_out;
        r->cap_rs_handed = r->cap_rs_out;
        r->n_rs_handed = r->n_rs_out;
        r->rs_out = t;
        r->cap_rs_out = c;
        r->n_rs_out = 0;
    }
    size_t w = 0;
    for (size_t i = 0; i < r->n_waits; i++) {
        if (r->waits[i].index <= r->applied)
            tn_raft_rs_push(r, &r->rs_handed, &r->n_rs_handed, &r->cap_rs_handed, r->waits[i].ctx,
                            r->waits[i].index, 1);
        else
            r->waits[w++] = r->waits[i];
    }
    r->n_waits = w;
    rd->read_states = r->rs_handed;
    rd->n_read_states = r->n_rs_handed;

    tn_raft_hard_state hs = {r->term, r->vote, r->commit};
    if (memcmp(&hs, &r->last_hs, sizeof hs) != 0) {
        rd->hs_changed = 1;
        r->last_hs = hs;
    }
    rd->hs = hs;
    msgvec t = r->handed;
    r->handed = r->out;
    r->out = t;
    r->out.n = 0;
    t = r->handed_after;
    r->handed_after = r->out_after;
    r->out_after = t;
    r->out_after.n = 0;
    rd->msgs = r->handed.v;
    rd->n_msgs = r->handed.n;
    rd->msgs_after_persist = r->handed_after.v;
    rd->n_msgs_after_persist = r->handed_after.n;
    r->handed.n = 0;      /* the driver owns the messages now; the array stays ours */
    r->handed_after.n = 0;
    if (r->role != r->last_role || r->leader != r->last_leader) {
        rd->soft_changed = 1;
        r->last_role = r->role;
        r->last_leader = r->leader;
    }
    rd->role = r->role;
    rd->leader = r->leader;
    rd->need_election_timeout = r->need_timeout;
    r->need_timeout = 0;
}

tn_raft_role tn_raft_role_of(const tn_raft *r) { return r->role; }
uint64_t tn_raft_id(const tn_raft *r) { return r->id; }
uint64_t tn_raft_term(const tn_raft *r) { return r->term; }
uint64_t tn_raft_leader(const tn_raft *r) { return r->leader; }
uint64_t tn_raft_commit(const tn_raft *r) { return r->commit; }
uint64_t tn_raft_applied(const tn_raft *r) { return r->applied; }
uint64_t tn_raft_first_index(const tn_raft *r) { return r->snap.index + 1; }
uint64_t tn_raft_last_index(const tn_raft *r) { return last_index(r); }
uint64_t tn_raft_stable_index(const tn_raft *r) { return r->stable; }
int tn_raft_term_at(const tn_raft *r, uint64_t index, uint64_t *term) { return term_at(r, index, term); }
const tn_raft_entry *tn_raft_entry_at(const tn_raft *r, uint64_t index) { return entry_at(r, index); }
const tn_raft_conf *tn_raft_conf_of(const tn_raft *r) { return &r->conf; }
const tn_raft_snapshot_meta *tn_raft_snapshot_of(const tn_raft *r) { return &r->snap; }
