/* raft_read.c — linearizable reads: ReadIndex (quorum heartbeat rounds, batched) and lease reads.
 * See raft_int.h. */
#include "raft_int.h"

/* ---------------------------------------------------------------------------------------------- */
/* reads                                                                                           */

void tn_raft_rs_push(tn_raft *r, tn_raft_read_state **v, size_t *n, size_t *cap, uint64_t ctx, uint64_t idx,
                     int ok)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        tn_raft_read_state *x = realloc(*v, c * sizeof *x);
        if (!x) { r->oom = 1; return; }
        *v = x;
        *cap = c;
    }
    (*v)[(*n)++] = (tn_raft_read_state){ctx, idx, ok};
}

/* A read for ctx is safe at index: local ones wait for apply, remote ones are answered. */
static void read_ready(tn_raft *r, uint64_t from, uint64_t ctx, uint64_t index)
{
    if (from == r->id) {
        tn_raft_rs_push(r, &r->waits, &r->n_waits, &r->cap_waits, ctx, index, 1);
        return;
    }
    tn_raft_msg *m = tn_raft_new_msg(r, TN_MSG_READ_RESP, from);
    if (!m) return;
    m->ctx = ctx;
    m->index = index;
    tn_raft_send(r, m);
}

void tn_raft_read_refuse(tn_raft *r, uint64_t from, uint64_t ctx)
{
    if (from == r->id || from == 0) {
        tn_raft_rs_push(r, &r->rs_out, &r->n_rs_out, &r->cap_rs_out, ctx, 0, 0);
        return;
    }
    tn_raft_msg *m = tn_raft_new_msg(r, TN_MSG_READ_RESP, from);
    if (!m) return;
    m->ctx = ctx;
    m->reject = 1;
    tn_raft_send(r, m);
}

void tn_raft_refuse_all_reads(tn_raft *r)
{
    for (size_t i = 0; i < r->n_reads; i++) tn_raft_read_refuse(r, r->reads[i].from, r->reads[i].ctx);
    r->n_reads = 0;
}

void tn_raft_confirm_reads(tn_raft *r)
{
    uint64_t acked = tn_raft_quorum_value(r, 1, r->read_round);
    size_t k = 0;
    while (k < r->n_reads && (r->reads[k].round <= acked || r->cfg.mutate.read_without_quorum)) {
        read_ready(r, r->reads[k].from, r->reads[k].ctx, r->reads[k].index);
        k++;
    }
    if (k) {
        memmove(r->reads, r->reads + k, (r->n_reads - k) * sizeof *r->reads);
        r->n_reads -= k;
    }
}

int tn_raft_committed_in_term(const tn_raft *r)
{
    uint64_t t;
    return term_at(r, r->commit, &t) == 0 && t == r->term;
}

static int lease_valid(const tn_raft *r)
{
    if (!r->cfg.lease_read || !r->cfg.check_quorum || r->transfer_in_term) return 0;
    uint64_t start = tn_raft_quorum_value(r, 2, r->now);
    if (start == 0) return 0;
    uint64_t lease = r->cfg.election_ticks > r->cfg.lease_drift_ticks
                         ? r->cfg.election_ticks - r->cfg.lease_drift_ticks : 0;
    return r->now - start < lease;
}

void tn_raft_leader_read(tn_raft *r, uint64_t from, uint64_t ctx)
{
    if (!tn_raft_committed_in_term(r)) { tn_raft_read_refuse(r, from, ctx); return; }
    if (lease_valid(r)) { read_ready(r, from, ctx, r->commit); return; }
    if (r->n_reads == r->cap_reads) {
        size_t c = r->cap_reads ? r->cap_reads * 2 : 16;
        pending_read *x = realloc(r->reads, c * sizeof *x);
        if (!x) { r->oom = 1; tn_raft_read_refuse(r, from, ctx); return; }
        r->reads = x;
        r->cap_reads = c;
    }
    /* Reads that arrive before the round's heartbeat has gone out share that round: the broadcast happens
     * once, when the Ready is collected, and its acks confirm all of them (ReadIndex batching). A round
     * whose heartbeat already went out cannot confirm a read that arrived after it: open a new one. */
    if (r->read_round_sent || r->read_round == 0) {
        r->read_round++;
        r->read_round_sent = 0;
    }
    r->reads[r->n_reads++] = (pending_read){ctx, r->commit, from, r->read_round};
    tn_raft_confirm_reads(r); /* a single voter, or the mutation */
    if (r->n_reads) r->read_bcast_pending = 1;
}

int tn_raft_read_index(tn_raft *r, uint64_t ctx)
{
    if (r->role == TN_LEADER) {
        tn_raft_leader_read(r, r->id, ctx);
        return TN_SUCCESS;
    }
    if (!r->leader) return TN_NOT_LEADER;
    tn_raft_msg *m = tn_raft_new_msg(r, TN_MSG_READ, r->leader);
    if (!m) return TN_NOMEM;
    m->ctx = ctx;
    tn_raft_send(r, m);
    return TN_SUCCESS;
}
