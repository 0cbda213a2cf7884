/* driver_check.c — the Raft test driver's invariant checks, violations and trace (see driver.h). */
#include "driver_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tn_code.h"

/* ---------------------------------------------------------------------------------------------- */
/* violations                                                                                      */

void tn_rt_fail(tn_rt *c, const char *fmt, ...)
{
    if (c->violated) return;
    c->violated = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
}

int tn_rt_failed(const tn_rt *c) { return c->violated; }
const char *tn_rt_why(const tn_rt *c) { return c->why; }
uint64_t tn_rt_max_commit(const tn_rt *c) { return c->max_commit; }
uint64_t tn_rt_elections(const tn_rt *c) { return c->elections; }

/* ---------------------------------------------------------------------------------------------- */
/* invariants                                                                                      */

static void ensure_idx(tn_rt *c, uint64_t idx)
{
    if (idx < c->cap_idx) return;
    size_t c1 = c->cap_idx, c2 = c->cap_idx, c3 = c->cap_idx, c4 = c->cap_idx;
    c->c_term = tn_rt_grow(c->c_term, &c1, (size_t)idx + 1, sizeof(uint64_t));
    c->c_hash = tn_rt_grow(c->c_hash, &c2, (size_t)idx + 1, sizeof(uint64_t));
    c->c_seen = tn_rt_grow(c->c_seen, &c3, (size_t)idx + 1, sizeof(uint64_t));
    c->a_hash = tn_rt_grow(c->a_hash, &c4, (size_t)idx + 1, sizeof(uint64_t));
    c->cap_idx = c1;
}

/* Log matching: (index, term) identifies one entry content and one predecessor term cluster-wide. */
static void lm_check(tn_rt *c, int nd, uint64_t index, uint64_t term, uint64_t hash, uint64_t prev_term)
{
    if (c->lm_n * 2 >= c->lm_cap) {
        size_t cap = c->lm_cap ? c->lm_cap * 2 : 4096;
        tn_rt_lm_rec *t = calloc(cap, sizeof *t);
        if (!t) exit(2);
        for (size_t i = 0; i < c->lm_cap; i++) {
            if (!c->lm[i].index) continue;
            size_t h = (size_t)((c->lm[i].index * 0x9e3779b97f4a7c15ull) ^ c->lm[i].term) & (cap - 1);
            while (t[h].index) h = (h + 1) & (cap - 1);
            t[h] = c->lm[i];
        }
        free(c->lm);
        c->lm = t;
        c->lm_cap = cap;
    }
    size_t h = (size_t)((index * 0x9e3779b97f4a7c15ull) ^ term) & (c->lm_cap - 1);
    while (c->lm[h].index) {
        if (c->lm[h].index == index && c->lm[h].term == term) {
            if (c->lm[h].hash != hash || c->lm[h].prev_term != prev_term)
                tn_rt_fail(c, "log matching: n%d has a different entry at index %" PRIu64 " term %" PRIu64
                           " (content or previous term differs)", nd, index, term);
            return;
        }
        h = (h + 1) & (c->lm_cap - 1);
    }
    c->lm[h] = (tn_rt_lm_rec){index, term, hash, prev_term};
    c->lm_n++;
}

void tn_rt_check_append(tn_rt *c, tn_rt_node *nd, const tn_raft_entry *e)
{
    uint64_t pt = 0;
    tn_raft_term_at(nd->r, e->index - 1, &pt);
    lm_check(c, nd->id, e->index, e->term, tn_rt_hash(e->type, e->data, e->len), pt);
}

/* State-machine safety: every node applies the same entry at each index, and in log order. */
void tn_rt_check_apply(tn_rt *c, tn_rt_node *nd, const tn_raft_entry *e)
{
    if (e->index != nd->st.applied + 1)
        tn_rt_fail(c, "n%d was handed committed entry %" PRIu64 " after %" PRIu64, nd->id, e->index,
                   nd->st.applied);
    ensure_idx(c, e->index);
    uint64_t h = tn_rt_hash(e->type, e->data, e->len) ^ (e->term * 0x100000001b3ull);
    if (c->a_hash[e->index] && c->a_hash[e->index] != h)
        tn_rt_fail(c, "state machine safety: n%d applied a different entry at index %" PRIu64, nd->id, e->index);
    c->a_hash[e->index] = h;
}

int tn_rt_read_index(tn_rt *c, int id, uint64_t ctx)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    if (!nd->up) return TN_UNAVAILABLE;
    if (c->o.check) {
        c->rreq = tn_rt_grow(c->rreq, &c->cap_rreq, c->n_rreq + 1, sizeof *c->rreq);
        c->rreq[c->n_rreq++] = (tn_rt_read_req){ctx, c->max_commit};
    }
    return tn_raft_read_index(nd->r, ctx);
}

/* Linearizable reads: an answer must reflect every entry committed before the read was requested. */
void tn_rt_check_read(tn_rt *c, tn_rt_node *nd, const tn_raft_read_state *rs)
{
    for (size_t i = 0; i < c->n_rreq; i++) {
        if (c->rreq[i].ctx != rs->ctx) continue;
        if (rs->ok && rs->index < c->rreq[i].min_index)
            tn_rt_fail(c, "stale read: n%d answered read %" PRIu64 " at index %" PRIu64 ", but %" PRIu64
                       " was committed before it was asked", nd->id, rs->ctx, rs->index, c->rreq[i].min_index);
        c->rreq[i] = c->rreq[--c->n_rreq];
        return;
    }
}

static void check_leader_has_committed(tn_rt *c, tn_rt_node *nd, uint64_t from, uint64_t to)
{
    tn_raft *r = nd->r;
    uint64_t lt = tn_raft_term(r);
    uint64_t first = tn_raft_snapshot_of(r)->index;
    if (from <= first) from = first + 1;
    for (uint64_t i = from; i <= to && i < c->cap_idx; i++) {
        if (!c->c_term[i] || c->c_seen[i] >= lt) continue;
        uint64_t t;
        if (tn_raft_term_at(r, i, &t) != 0 || t != c->c_term[i]) {
            tn_rt_fail(c, "leader completeness: leader n%d of term %" PRIu64 " lacks committed entry %" PRIu64
                       " (term %" PRIu64 ")", nd->id, lt, i, c->c_term[i]);
            return;
        }
    }
}

void tn_rt_check(tn_rt *c, int id)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    if (!nd->up) return;
    tn_raft *r = nd->r;
    uint64_t commit = tn_raft_commit(r), applied = tn_raft_applied(r), term = tn_raft_term(r);
    if (commit < nd->seen_commit)
        tn_rt_fail(c, "commit index went backwards on n%d: %" PRIu64 " -> %" PRIu64, nd->id, nd->seen_commit,
                   commit);
    if (applied < nd->seen_applied)
        tn_rt_fail(c, "applied index went backwards on n%d: %" PRIu64 " -> %" PRIu64, nd->id, nd->seen_applied,
                   applied);
    if (applied > commit)
        tn_rt_fail(c, "applied > committed on n%d: %" PRIu64 " > %" PRIu64, nd->id, applied, commit);
    nd->seen_commit = commit;
    nd->seen_applied = applied;
    if (tn_raft_role_of(r) == TN_LEADER) {
        ensure_idx(c, 0);
        if (term >= c->cap_terms)
            c->leader_of = tn_rt_grow(c->leader_of, &c->cap_terms, (size_t)term + 1, sizeof(uint64_t));
        if (c->leader_of[term] && c->leader_of[term] != (uint64_t)nd->id)
            tn_rt_fail(c, "election safety: two leaders in term %" PRIu64 ": n%" PRIu64 " and n%d", term,
                       c->leader_of[term], nd->id);
        if (!c->leader_of[term]) {
            c->leader_of[term] = (uint64_t)nd->id;
            c->elections++;
        }
        if (nd->last_leader_term != term) {
            nd->last_leader_term = term;
            check_leader_has_committed(c, nd, 1, c->max_commit);
        }
    }
    if (commit > nd->checked_commit) {
        uint64_t first = tn_raft_snapshot_of(r)->index;
        ensure_idx(c, commit);
        for (uint64_t i = nd->checked_commit + 1; i <= commit; i++) {
            if (i <= first) continue;
            const tn_raft_entry *e = tn_raft_entry_at(r, i);
            if (!e) continue;
            uint64_t h = tn_rt_hash(e->type, e->data, e->len);
            if (!c->c_term[i]) {
                c->c_term[i] = e->term;
                c->c_hash[i] = h;
                c->c_seen[i] = term;
                /* every current leader of a later term must already hold it */
                for (int k = 0; k < c->n; k++) {
                    tn_rt_node *o = &c->nodes[k];
                    if (!o->up || tn_raft_role_of(o->r) != TN_LEADER || tn_raft_term(o->r) <= term) continue;
                    check_leader_has_committed(c, o, i, i);
                }
            } else if (c->c_term[i] != e->term || c->c_hash[i] != h) {
                tn_rt_fail(c, "committed entries differ at index %" PRIu64 ": n%d has term %" PRIu64
                           ", committed earlier with term %" PRIu64, i, nd->id, e->term, c->c_term[i]);
            }
        }
        nd->checked_commit = commit;
        if (commit > c->max_commit) c->max_commit = commit;
    }
}

void tn_rt_check_free(tn_rt *c)
{
    free(c->leader_of);
    free(c->c_term);
    free(c->c_hash);
    free(c->c_seen);
    free(c->a_hash);
    free(c->lm);
    free(c->rreq);
}

/* ---------------------------------------------------------------------------------------------- */
/* trace                                                                                           */

static void print_rec(const tn_rt *c, FILE *f, const tn_rt_trace_rec *t)
{
    double ms = (double)t->t / 1000.0;
    switch (t->kind) {
    case TN_RT_TR_SEND: fprintf(f, "%10.3f n%d -> n%d %s term=%" PRIu64 " idx=%" PRIu64 " n=%" PRIu64 "\n", ms,
                                t->node, t->a, tn_raft_msg_type_name(t->b), t->x, t->y, t->z); break;
    case TN_RT_TR_DROP: fprintf(f, "%10.3f n%d -> n%d %s DROPPED\n", ms, t->node, t->a,
                                tn_raft_msg_type_name(t->b)); break;
    case TN_RT_TR_DELIVER: fprintf(f, "%10.3f n%d <- n%d %s term=%" PRIu64 " idx=%" PRIu64 " rej=%" PRIu64 "\n",
                                   ms, t->node, t->a, tn_raft_msg_type_name(t->b), t->x, t->y, t->z); break;
    case TN_RT_TR_ROLE: fprintf(f, "%10.3f n%d becomes %s term=%" PRIu64 " leader=%" PRIu64 "\n", ms, t->node,
                                tn_raft_role_name((tn_raft_role)t->a), t->x, t->y); break;
    case TN_RT_TR_COMMIT: fprintf(f, "%10.3f n%d commit=%" PRIu64 " applied=%" PRIu64 " last=%" PRIu64 "\n", ms,
                                  t->node, t->x, t->y, t->z); break;
    case TN_RT_TR_CRASH: fprintf(f, "%10.3f n%d CRASH (kept %" PRIu64 " of %" PRIu64 " unsynced writes)\n", ms,
                                 t->node, t->x, t->y); break;
    case TN_RT_TR_RESTART: fprintf(f, "%10.3f n%d RESTART term=%" PRIu64 " commit=%" PRIu64 " last=%" PRIu64 "\n",
                                   ms, t->node, t->x, t->y, t->z); break;
    case TN_RT_TR_PART: fprintf(f, "%10.3f PARTITION mask=%" PRIx64 " asym=%d\n", ms, t->x, t->a); break;
    case TN_RT_TR_HEAL: fprintf(f, "%10.3f HEAL\n", ms); break;
    case TN_RT_TR_CONNECT: fprintf(f, "%10.3f n%d RECONNECTED\n", ms, t->node); break;
    case TN_RT_TR_CONF: fprintf(f, "%10.3f n%d propose conf op=%d node=%" PRIu64 " rc=%" PRIu64 "\n", ms, t->node,
                                t->a, t->x, t->y); break;
    case TN_RT_TR_XFER: fprintf(f, "%10.3f n%d transfer leadership to n%" PRIu64 " rc=%" PRIu64 "\n", ms, t->node,
                                t->x, t->y); break;
    case TN_RT_TR_SYNC: fprintf(f, "%10.3f n%d fsync done (seq %" PRIu64 ") durable last=%" PRIu64 "\n", ms,
                                t->node, t->x, t->y); break;
    case TN_RT_TR_DISKFAIL: fprintf(f, "%10.3f n%d DISK WRITE FAILED -> crash\n", ms, t->node); break;
    case TN_RT_TR_TRUNC: fprintf(f, "%10.3f n%d truncates log from %" PRIu64 "\n", ms, t->node, t->x); break;
    case TN_RT_TR_SNAP: fprintf(f, "%10.3f n%d snapshot at %" PRIu64 " (%s)\n", ms, t->node, t->x,
                                t->a ? "installed" : "compacted"); break;
    case TN_RT_TR_NOTE: fprintf(f, "%10.3f note %d %" PRIu64 " %" PRIu64 "\n", ms, t->a, t->x, t->y); break;
    default:
        if (t->kind >= TN_RT_TR_USER && c->o.hooks.print) c->o.hooks.print(c->o.hooks.ctx, f, t);
        break;
    }
}

void tn_rt_trace(tn_rt *c, int kind, int node, int a, int b, uint64_t x, uint64_t y, uint64_t z)
{
    if (!c->o.trace && !c->o.verbose) return;
    tn_rt_trace_rec *t = &c->trace[c->n_trace++ % TN_RT_TRACE_N];
    *t = (tn_rt_trace_rec){c->now, (uint8_t)kind, (uint8_t)node, (uint8_t)a, (uint8_t)b, x, y, z};
    if (c->o.verbose) print_rec(c, c->o.out, t);
}

void tn_rt_trace_tail(const tn_rt *c, FILE *f, size_t n)
{
    uint64_t start = c->n_trace > n ? c->n_trace - n : 0;
    if (c->n_trace > TN_RT_TRACE_N && start < c->n_trace - TN_RT_TRACE_N) start = c->n_trace - TN_RT_TRACE_N;
    for (uint64_t i = start; i < c->n_trace; i++) print_rec(c, f, &c->trace[i % TN_RT_TRACE_N]);
}
