/* driver.c — the Raft test driver: nodes and their Ready loop, emulated disks, the network, the event queue
 * of timed mode. See driver.h; the invariant checks and the trace are in driver_check.c. */
#include "driver_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tn_code.h"

static void oom(void)
{
    fprintf(stderr, "raft test driver: out of memory\n");
    exit(2);
}

/* ---------------------------------------------------------------------------------------------- */
/* PRNG                                                                                            */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tn_rt_rng_seed(tn_rt_rng *g, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) g->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tn_rt_rng_next(tn_rt_rng *g)
{
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t tn_rt_rng_below(tn_rt_rng *g, uint64_t n) { return tn_rt_rng_next(g) % n; }
int tn_rt_rng_chance(tn_rt_rng *g, unsigned per_mille) { return tn_rt_rng_below(g, 1000) < per_mille; }

/* ---------------------------------------------------------------------------------------------- */
/* helpers                                                                                         */

void *tn_rt_grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    uint8_t *n = realloc(p, c * elem);
    if (!n) oom();
    memset(n + *cap * elem, 0, (c - *cap) * elem);
    *cap = c;
    return n;
}

uint64_t tn_rt_hash(uint8_t type, const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ type;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

tn_rt_node *tn_rt_node_of(tn_rt *c, int id)
{
    if (id < 1 || id > c->n) {
        fprintf(stderr, "raft test driver: no node %d\n", id);
        abort();
    }
    return &c->nodes[id - 1];
}

static void free_ents(tn_raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) free(e[i].data);
    free(e);
}

static tn_raft_entry *copy_ents(const tn_raft_entry *src, size_t n)
{
    tn_raft_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e) oom();
    for (size_t i = 0; i < n; i++) {
        e[i] = src[i];
        e[i].data = NULL;
        if (src[i].len) {
            e[i].data = malloc(src[i].len);
            if (!e[i].data) oom();
            memcpy(e[i].data, src[i].data, src[i].len);
        }
    }
    return e;
}

static uint8_t *copy_bytes(const void *p, size_t n)
{
    if (!n) return NULL;
    uint8_t *b = malloc(n);
    if (!b) oom();
    memcpy(b, p, n);
    return b;
}

/* ---------------------------------------------------------------------------------------------- */
/* event queue (binary heap on (t, seq))                                                          */

static int ev_less(const tn_rt_event *a, const tn_rt_event *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

tn_rt_event *tn_rt_at(tn_rt *c, uint64_t at, int type)
{
    if (c->n_ev == c->cap_ev) {
        size_t cap = c->cap_ev ? c->cap_ev * 2 : 1024;
        tn_rt_event *h = realloc(c->heap, cap * sizeof *h);
        if (!h) oom();
        c->heap = h;
        c->cap_ev = cap;
    }
    size_t i = c->n_ev++;
    tn_rt_event e = {0};
    e.t = at;
    e.seq = c->seq++;
    e.type = type;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&e, &c->heap[p])) break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = e;
    /* a stable pointer: callers fill fields right away, before any other push/pop */
    return &c->heap[i];
}

int tn_rt_next(tn_rt *c, tn_rt_event *out)
{
    if (!c->n_ev) return 0;
    tn_rt_event top = c->heap[0];
    tn_rt_event last = c->heap[--c->n_ev];
    size_t n = c->n_ev, i = 0;
    *out = top;
    if (n == 0) return 1;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= n) break;
        if (k + 1 < n && ev_less(&c->heap[k + 1], &c->heap[k])) k++;
        if (!ev_less(&c->heap[k], &last)) break;
        c->heap[i] = c->heap[k];
        i = k;
    }
    c->heap[i] = last;
    return 1;
}

void tn_rt_discard(tn_rt *c, tn_rt_event *e)
{
    (void)c;
    if (e->type == TN_RT_EV_DELIVER) tn_raft_msg_free(e->p);
    e->p = NULL;
}

size_t tn_rt_pending(const tn_rt *c) { return c->n_ev; }
uint64_t tn_rt_now(const tn_rt *c) { return c->now; }
void tn_rt_set_now(tn_rt *c, uint64_t t) { c->now = t; }

void tn_rt_restart_at(tn_rt *c, int id, uint64_t t)
{
    tn_rt_event *e = tn_rt_at(c, t, TN_RT_EV_RESTART);
    e->a = id;
}

void tn_rt_set_tick(tn_rt *c, int id, uint64_t period_us) { tn_rt_node_of(c, id)->tick_us = period_us; }

/* ---------------------------------------------------------------------------------------------- */
/* network                                                                                         */

/* Encodes and decodes m once (the daemon's path); the copy replaces it. NULL if it did not survive. */
static tn_raft_msg *through_codec(tn_rt *c, tn_raft_msg *m)
{
    c->wr.len = 0;
    if (tn_raft_msg_encode(m, &c->wr) != 0) oom();
    tn_raft_msg *d = NULL;
    if (tn_raft_msg_decode(c->wr.p, c->wr.len, &d) != 0) {
        tn_rt_fail(c, "message from n%" PRIu64 " to n%" PRIu64 " failed to decode", m->from, m->to);
        d = NULL;
    }
    tn_raft_msg_free(m);
    return d;
}

/* Sends m (taking it) from node `from`: the link is checked now and again at delivery. */
static void net_send(tn_rt *c, tn_raft_msg *m)
{
    int from = (int)m->from, to = (int)m->to;
    if (to < 1 || to > c->n || from < 1 || from > c->n) {
        tn_raft_msg_free(m);
        return;
    }
    tn_rt_trace(c, TN_RT_TR_SEND, from, to, m->type, m->term, m->index, m->n_entries);
    if (!c->link[from - 1][to - 1] || (c->o.timed && tn_rt_rng_chance(&c->g, c->loss_pm))) {
        tn_rt_trace(c, TN_RT_TR_DROP, from, to, m->type, 0, 0, 0);
        tn_raft_msg_free(m);
        return;
    }
    if (c->o.codec && !(m = through_codec(c, m))) return;
    if (!c->o.timed) {
        c->q = tn_rt_grow(c->q, &c->cap_q, c->nq + 1, sizeof *c->q);
        c->q[c->nq++] = (tn_rt_qmsg){from, to, m};
        return;
    }
    int copies = tn_rt_rng_chance(&c->g, c->dup_pm) ? 2 : 1;
    for (int k = 0; k < copies; k++) {
        tn_raft_msg *cp = k ? tn_raft_msg_dup(m) : m;
        if (!cp) oom();
        uint64_t delay = 200 + tn_rt_rng_below(&c->g, c->delay_max_us);
        tn_rt_event *e = tn_rt_at(c, c->now + delay, TN_RT_EV_DELIVER);
        e->a = from;
        e->b = to;
        e->p = cp;
    }
}

/* Steps m into its destination if that is up and the link is (still) up. 1 if stepped. */
static int net_arrive(tn_rt *c, int from, int to, const tn_raft_msg *m)
{
    tn_rt_node *nd = &c->nodes[to - 1];
    if (!nd->up || !c->link[from - 1][to - 1]) return 0;
    tn_rt_trace(c, TN_RT_TR_DELIVER, to, (int)m->from, m->type, m->term, m->index, m->reject);
    tn_raft_step(nd->r, m);
    c->delivered++;
    return 1;
}

static int filter_match(const tn_rt_filter *f, const tn_rt_qmsg *q)
{
    return !f || ((!f->from || f->from == q->from) && (!f->to || f->to == q->to) &&
                  (!f->type || f->type == q->m->type));
}

size_t tn_rt_deliver(tn_rt *c, const tn_rt_filter *f)
{
    size_t w = 0, taken = 0, n = c->nq;
    /* stepping produces no sends (Readys are handled later), so the queue can be compacted in place */
    for (size_t i = 0; i < n; i++) {
        tn_rt_qmsg q = c->q[i];
        if (!filter_match(f, &q)) {
            c->q[w++] = q;
            continue;
        }
        net_arrive(c, q.from, q.to, q.m);
        tn_raft_msg_free(q.m);
        taken++;
    }
    c->nq = w;
    return taken;
}

size_t tn_rt_drop(tn_rt *c, const tn_rt_filter *f)
{
    size_t w = 0, taken = 0;
    for (size_t i = 0; i < c->nq; i++) {
        if (!filter_match(f, &c->q[i])) {
            c->q[w++] = c->q[i];
            continue;
        }
        tn_rt_trace(c, TN_RT_TR_DROP, c->q[i].from, c->q[i].to, c->q[i].m->type, 0, 0, 0);
        tn_raft_msg_free(c->q[i].m);
        taken++;
    }
    c->nq = w;
    return taken;
}

size_t tn_rt_queued(const tn_rt *c) { return c->nq; }
const tn_raft_msg *tn_rt_queued_at(const tn_rt *c, size_t i) { return i < c->nq ? c->q[i].m : NULL; }
uint64_t tn_rt_delivered(const tn_rt *c) { return c->delivered; }

void tn_rt_link(tn_rt *c, int from, int to, int up)
{
    tn_rt_node_of(c, from);
    tn_rt_node_of(c, to);
    c->link[from - 1][to - 1] = up;
}

void tn_rt_isolate(tn_rt *c, int id)
{
    tn_rt_node_of(c, id);
    for (int j = 0; j < c->n; j++)
        if (j != id - 1) c->link[id - 1][j] = c->link[j][id - 1] = 0;
    tn_rt_trace(c, TN_RT_TR_PART, 0, 0, 0, 1ull << (id - 1), 0, 0);
}

void tn_rt_connect(tn_rt *c, int id)
{
    tn_rt_node_of(c, id);
    for (int j = 0; j < c->n; j++) c->link[id - 1][j] = c->link[j][id - 1] = 1;
    tn_rt_trace(c, TN_RT_TR_CONNECT, id, 0, 0, 0, 0, 0);
}

void tn_rt_partition(tn_rt *c, uint64_t mask, int asym)
{
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->n; j++) {
            int si = (mask >> i) & 1, sj = (mask >> j) & 1;
            c->link[i][j] = (si == sj) || (asym && si && !sj);
        }
    tn_rt_trace(c, TN_RT_TR_PART, 0, asym, 0, mask, 0, 0);
}

void tn_rt_heal(tn_rt *c)
{
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->n; j++) c->link[i][j] = 1;
    tn_rt_trace(c, TN_RT_TR_HEAL, 0, 0, 0, 0, 0, 0);
}

void tn_rt_set_net(tn_rt *c, unsigned loss_pm, unsigned dup_pm, uint64_t delay_max_us)
{
    c->loss_pm = loss_pm;
    c->dup_pm = dup_pm;
    c->delay_max_us = delay_max_us;
}

/* ---------------------------------------------------------------------------------------------- */
/* disk                                                                                            */

static void op_free(tn_rt_op *op)
{
    free_ents(op->ents, op->n);
    free(op->snap_data);
}

static void disk_push(tn_rt_node *nd, tn_rt_op *op)
{
    nd->ops = tn_rt_grow(nd->ops, &nd->cap_ops, nd->n_ops + 1, sizeof *nd->ops);
    op->seq = ++nd->op_seq;
    nd->ops[nd->n_ops++] = *op;
}

static void image_truncate(tn_rt_node *nd, uint64_t from)
{
    uint64_t base = nd->d_snap.index;
    while (nd->d_n && base + nd->d_n >= from) {
        nd->d_n--;
        free(nd->d_ents[nd->d_n].data);
    }
}

/* Applies a synced operation to the durable image (ownership of op's buffers moves to the image). */
static void image_apply(tn_rt_node *nd, tn_rt_op *op)
{
    switch (op->kind) {
    case TN_RT_OP_HS:
        nd->d_hs = op->hs;
        break;
    case TN_RT_OP_TRUNC:
        image_truncate(nd, op->trunc_from);
        break;
    case TN_RT_OP_APPEND:
        if (op->n) image_truncate(nd, op->ents[0].index);
        nd->d_ents = tn_rt_grow(nd->d_ents, &nd->d_cap, nd->d_n + op->n, sizeof *nd->d_ents);
        for (size_t i = 0; i < op->n; i++) nd->d_ents[nd->d_n++] = op->ents[i];
        free(op->ents);
        op->ents = NULL;
        op->n = 0;
        break;
    case TN_RT_OP_SNAP: {
        /* a snapshot (received or taken): drop the log up to it, keep later entries that follow on */
        uint64_t base = nd->d_snap.index;
        size_t keep_from = 0;
        int keeps = 0;
        for (size_t i = 0; i < nd->d_n; i++) {
            if (base + 1 + i == op->snap.index && nd->d_ents[i].term == op->snap.term) {
                keep_from = i + 1;
                keeps = 1;
            }
        }
        if (!keeps) keep_from = nd->d_n;
        for (size_t i = 0; i < keep_from; i++) free(nd->d_ents[i].data);
        memmove(nd->d_ents, nd->d_ents + keep_from, (nd->d_n - keep_from) * sizeof *nd->d_ents);
        nd->d_n -= keep_from;
        nd->d_snap = op->snap;
        free(nd->d_snap_data);
        nd->d_snap_data = op->snap_data;
        nd->d_snap_len = op->snap_len;
        op->snap_data = NULL;
        break;
    }
    }
    op_free(op);
}

static void image_clear(tn_rt_node *nd)
{
    free_ents(nd->d_ents, nd->d_n);
    free(nd->d_snap_data);
    nd->d_ents = NULL;
    nd->d_n = nd->d_cap = 0;
    nd->d_snap_data = NULL;
    nd->d_snap_len = 0;
    memset(&nd->d_hs, 0, sizeof nd->d_hs);
    memset(&nd->d_snap, 0, sizeof nd->d_snap);
}

uint64_t tn_rt_durable_last(const tn_rt *c, int id)
{
    const tn_rt_node *nd = &c->nodes[id - 1];
    return nd->d_snap.index + nd->d_n;
}

/* The writes up to `target` reached the disk: the image takes them, the messages that waited for them go,
 * and the core hears how far its log is durable. */
static void disk_synced(tn_rt *c, tn_rt_node *nd, uint64_t target)
{
    size_t k = 0;
    while (k < nd->n_ops && nd->ops[k].seq <= target) {
        image_apply(nd, &nd->ops[k]);
        k++;
    }
    memmove(nd->ops, nd->ops + k, (nd->n_ops - k) * sizeof *nd->ops);
    nd->n_ops -= k;
    nd->synced_seq = target;
    uint64_t last = nd->d_snap.index + nd->d_n;
    uint64_t lt = nd->d_n ? nd->d_ents[nd->d_n - 1].term : nd->d_snap.term;
    tn_rt_trace(c, TN_RT_TR_SYNC, nd->id, 0, 0, nd->synced_seq, last, 0);
    size_t w = 0;
    for (size_t i = 0; i < nd->n_held; i++) {
        if (nd->held[i].need_seq <= nd->synced_seq) net_send(c, nd->held[i].m);
        else nd->held[w++] = nd->held[i];
    }
    nd->n_held = w;
    if (last) tn_raft_persisted(nd->r, last, lt);
}

/* A sync failed: the page cache can no longer be trusted; fail-stop like a real server must. */
static void disk_failed(tn_rt *c, tn_rt_node *nd)
{
    tn_rt_trace(c, TN_RT_TR_DISKFAIL, nd->id, 0, 0, 0, 0, 0);
    tn_rt_crash(c, nd->id, TN_RT_KEEP_NONE);
    if (c->o.timed && (c->o.failstop_min_us || c->o.failstop_spread_us)) {
        uint64_t spread = c->o.failstop_spread_us ? tn_rt_rng_below(&c->g, c->o.failstop_spread_us) : 0;
        tn_rt_restart_at(c, nd->id, c->now + c->o.failstop_min_us + spread);
    }
}

static void sync_start(tn_rt *c, tn_rt_node *nd)
{
    if (nd->sync_busy || nd->n_ops == 0) return;
    nd->sync_busy = 1;
    nd->sync_target = nd->op_seq;
    uint64_t lat = c->o.disk_min_us + (c->o.disk_spread_us ? tn_rt_rng_below(&c->g, c->o.disk_spread_us) : 0);
    if (nd->slow_min || nd->slow_spread)
        lat += nd->slow_min + (nd->slow_spread ? tn_rt_rng_below(&c->g, nd->slow_spread) : 0);
    tn_rt_event *e = tn_rt_at(c, c->now + lat, TN_RT_EV_SYNC);
    e->a = nd->id;
    e->x = nd->epoch;
}

static void on_sync_done(tn_rt *c, tn_rt_node *nd)
{
    nd->sync_busy = 0;
    if (nd->fail_next_sync) {
        disk_failed(c, nd);
        return;
    }
    disk_synced(c, nd, nd->sync_target);
    tn_rt_process(c, nd->id);
    if (nd->up) sync_start(c, nd);
}

void tn_rt_sync(tn_rt *c, int id)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    if (!nd->up || nd->n_ops == 0) return;
    if (nd->fail_next_sync) {
        disk_failed(c, nd);
        return;
    }
    disk_synced(c, nd, nd->op_seq);
    tn_rt_process(c, id);
}

int tn_rt_set_disk(tn_rt *c, tn_rt_disk disk)
{
    int from = c->o.disk;
    if ((from != TN_RT_DISK_AUTO && from != TN_RT_DISK_MANUAL) ||
        (disk != TN_RT_DISK_AUTO && disk != TN_RT_DISK_MANUAL))
        return -1;
    c->o.disk = disk;
    if (disk == TN_RT_DISK_AUTO)
        for (int id = 1; id <= c->n; id++) tn_rt_sync(c, id);
    return 0;
}

void tn_rt_fail_next_sync(tn_rt *c, int id, int on) { tn_rt_node_of(c, id)->fail_next_sync = on; }

void tn_rt_set_disk_delay(tn_rt *c, int id, uint64_t min_us, uint64_t spread_us)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    nd->slow_min = min_us;
    nd->slow_spread = spread_us;
}

/* ---------------------------------------------------------------------------------------------- */
/* the Ready loop                                                                                  */

static void send_or_hold(tn_rt *c, tn_rt_node *nd, tn_raft_msg *m)
{
    if (nd->synced_seq >= nd->op_seq) {
        net_send(c, m);
        return;
    }
    nd->held = tn_rt_grow(nd->held, &nd->cap_held, nd->n_held + 1, sizeof *nd->held);
    nd->held[nd->n_held++] = (tn_rt_held){nd->op_seq, m};
}

static void push_snapshot(tn_rt_node *nd, const tn_raft_snapshot_meta *meta, const void *data, size_t len)
{
    tn_rt_op op = {0};
    op.kind = TN_RT_OP_SNAP;
    op.snap = *meta;
    op.snap_data = copy_bytes(data, len);
    op.snap_len = len;
    disk_push(nd, &op);
}

static void handle_ready(tn_rt *c, tn_rt_node *nd, tn_raft_ready *rd)
{
    tn_raft *r = nd->r;
    int disk = c->o.disk != TN_RT_DISK_NONE;
    const tn_rt_hooks *h = &c->o.hooks;
    if (rd->need_election_timeout) {
        uint32_t base = nd->cfg.election_ticks;
        tn_raft_set_election_timeout(r, c->o.timed ? base + (uint32_t)tn_rt_rng_below(&c->g, base)
                                                   : base + (uint32_t)nd->id); /* node 1 first */
    }
    if (rd->has_snapshot) {
        if (disk) {
            push_snapshot(nd, &rd->snapshot, rd->snapshot_data, rd->snapshot_len);
            /* a received snapshot replaces the log: the image keeps nothing after it */
            tn_rt_op t = {0};
            t.kind = TN_RT_OP_TRUNC;
            t.trunc_from = rd->snapshot.index + 1;
            disk_push(nd, &t);
        }
        nd->st.snapshots++;
        nd->st.applied = rd->snapshot.index;
        if (h->restore) h->restore(h->ctx, c, nd->id, rd->snapshot_data, rd->snapshot_len);
        tn_rt_trace(c, TN_RT_TR_SNAP, nd->id, 1, 0, rd->snapshot.index, 0, 0);
    }
    if (rd->truncate_from) {
        if (disk) {
            tn_rt_op op = {0};
            op.kind = TN_RT_OP_TRUNC;
            op.trunc_from = rd->truncate_from;
            disk_push(nd, &op);
        }
        nd->st.truncations++;
        tn_rt_trace(c, TN_RT_TR_TRUNC, nd->id, 0, 0, rd->truncate_from, 0, 0);
    }
    if (rd->n_entries) {
        if (c->o.check)
            for (size_t i = 0; i < rd->n_entries; i++) tn_rt_check_append(c, nd, &rd->entries[i]);
        if (disk) {
            tn_rt_op op = {0};
            op.kind = TN_RT_OP_APPEND;
            op.ents = copy_ents(rd->entries, rd->n_entries);
            op.n = rd->n_entries;
            disk_push(nd, &op);
        }
    }
    if (rd->hs_changed && disk) {
        tn_rt_op op = {0};
        op.kind = TN_RT_OP_HS;
        op.hs = rd->hs;
        disk_push(nd, &op);
    }
    for (size_t i = 0; i < rd->n_msgs; i++) net_send(c, rd->msgs[i]);
    for (size_t i = 0; i < rd->n_msgs_after_persist; i++) send_or_hold(c, nd, rd->msgs_after_persist[i]);
    for (size_t i = 0; i < rd->n_committed; i++) {
        const tn_raft_entry *e = &rd->committed[i];
        if (c->o.check) tn_rt_check_apply(c, nd, e);
        nd->st.applied = e->index;
        if (e->type == TN_ENTRY_CONF) nd->st.applied_conf = e->index;
        if (h->apply) h->apply(h->ctx, c, nd->id, e);
    }
    for (size_t i = 0; i < rd->n_read_states; i++) {
        if (c->n_rreq) tn_rt_check_read(c, nd, &rd->read_states[i]);
        if (h->read) {
            h->read(h->ctx, c, nd->id, &rd->read_states[i]);
            continue;
        }
        nd->reads = tn_rt_grow(nd->reads, &nd->cap_reads, nd->st.n_reads + 1, sizeof *nd->reads);
        nd->reads[nd->st.n_reads++] = rd->read_states[i];
        nd->st.reads = nd->reads;
    }
    if (rd->soft_changed) tn_rt_trace(c, TN_RT_TR_ROLE, nd->id, rd->role, 0, tn_raft_term(r), rd->leader, 0);
    if (rd->n_committed)
        tn_rt_trace(c, TN_RT_TR_COMMIT, nd->id, 0, 0, tn_raft_commit(r), tn_raft_applied(r),
                    tn_raft_last_index(r));
    if (c->o.compact_every && h->snapshot) {
        uint64_t applied = tn_raft_applied(r);
        if (applied >= tn_raft_snapshot_of(r)->index + c->o.compact_every) {
            size_t len = 0;
            const void *data = h->snapshot(h->ctx, c, nd->id, &len);
            tn_rt_compact(c, nd->id, data, len);
        }
    }
    switch (c->o.disk) {
    case TN_RT_DISK_NONE: {
        uint64_t last = tn_raft_last_index(r), t = 0;
        tn_raft_term_at(r, last, &t);
        if (last) tn_raft_persisted(r, last, t);
        break;
    }
    case TN_RT_DISK_AUTO:
        if (nd->n_ops == 0) break;
        if (nd->fail_next_sync) disk_failed(c, nd);
        else disk_synced(c, nd, nd->op_seq);
        break;
    case TN_RT_DISK_MANUAL:
        break;
    case TN_RT_DISK_TIMED:
        sync_start(c, nd);
        break;
    }
}

void tn_rt_process(tn_rt *c, int id)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    for (int guard = 0; guard < 64 && nd->up && tn_raft_has_ready(nd->r); guard++) {
        tn_raft_ready rd;
        tn_raft_ready_get(nd->r, &rd);
        handle_ready(c, nd, &rd);
    }
}

void tn_rt_drain(tn_rt *c)
{
    for (int id = 1; id <= c->n; id++) {
        if (!c->nodes[id - 1].up) continue;
        tn_rt_process(c, id);
        if (c->o.check) tn_rt_check(c, id);
    }
}

int tn_rt_settle(tn_rt *c)
{
    for (int round = 0; round < 1000; round++) {
        tn_rt_drain(c);
        if (c->nq == 0) return 0;
        tn_rt_deliver(c, NULL);
    }
    return -1;
}

int tn_rt_compact(tn_rt *c, int id, const void *data, size_t len)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    if (!nd->up) return -1;
    uint64_t applied = tn_raft_applied(nd->r);
    if (tn_raft_compact(nd->r, applied, data, len) != 0) return -1;
    if (c->o.disk != TN_RT_DISK_NONE) push_snapshot(nd, tn_raft_snapshot_of(nd->r), data, len);
    tn_rt_trace(c, TN_RT_TR_SNAP, id, 0, 0, applied, 0, 0);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* nodes: boot, crash, ticks                                                                       */

static int node_boot(tn_rt *c, tn_rt_node *nd, int fresh)
{
    if (fresh) {
        nd->r = tn_raft_new(&nd->cfg);
    } else {
        nd->r = tn_raft_restore(&nd->cfg, &nd->d_hs, &nd->d_snap, nd->d_snap_data, nd->d_snap_len, nd->d_ents,
                                nd->d_n);
    }
    if (!nd->r) {
        if (fresh) tn_rt_fail(c, "n%d refused its configuration", nd->id);
        else tn_rt_fail(c, "n%d could not be restored from its durable state", nd->id);
        return -1;
    }
    nd->up = nd->booted = 1;
    nd->epoch++;
    const tn_rt_hooks *h = &c->o.hooks;
    if (h->restore) h->restore(h->ctx, c, nd->id, nd->d_snap_data, nd->d_snap_len);
    nd->st.applied = tn_raft_snapshot_of(nd->r)->index;
    nd->seen_commit = nd->seen_applied = 0;
    nd->checked_commit = tn_raft_snapshot_of(nd->r)->index;
    nd->last_leader_term = 0;
    nd->synced_seq = nd->op_seq;
    if (c->o.timed && nd->tick_us) {
        tn_rt_event *e = tn_rt_at(c, c->now + tn_rt_rng_below(&c->g, nd->tick_us) + 1, TN_RT_EV_TICK);
        e->a = nd->id;
        e->x = nd->epoch;
    }
    if (!fresh)
        tn_rt_trace(c, TN_RT_TR_RESTART, nd->id, 0, 0, nd->d_hs.term, nd->d_hs.commit, nd->d_snap.index + nd->d_n);
    tn_rt_process(c, nd->id);
    return 0;
}

void tn_rt_crash(tn_rt *c, int id, int keep_mode)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    if (!nd->up) return;
    /* a prefix of the unsynced writes may have reached the disk anyway */
    size_t keep = 0;
    if (keep_mode == TN_RT_KEEP_RANDOM && nd->n_ops) keep = (size_t)tn_rt_rng_below(&c->g, nd->n_ops + 1);
    if (keep_mode == TN_RT_KEEP_ALL) keep = nd->n_ops;
    for (size_t i = 0; i < nd->n_ops; i++) {
        if (i < keep) image_apply(nd, &nd->ops[i]);
        else op_free(&nd->ops[i]);
    }
    tn_rt_trace(c, TN_RT_TR_CRASH, nd->id, 0, 0, keep, nd->n_ops, 0);
    nd->n_ops = 0;
    nd->synced_seq = nd->op_seq;
    for (size_t i = 0; i < nd->n_held; i++) tn_raft_msg_free(nd->held[i].m);
    nd->n_held = 0;
    const tn_rt_hooks *h = &c->o.hooks;
    if (h->crash) h->crash(h->ctx, c, id);
    tn_raft_free(nd->r);
    nd->r = NULL;
    nd->up = 0;
    nd->epoch++;
    nd->sync_busy = 0;
    nd->fail_next_sync = 0;
}

int tn_rt_restart(tn_rt *c, int id)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    if (nd->up || c->o.disk == TN_RT_DISK_NONE) return -1;
    return node_boot(c, nd, 0);
}

int tn_rt_boot_state(tn_rt *c, int id, const tn_raft_hard_state *hs, const tn_raft_snapshot_meta *snap,
                     const uint8_t *snap_data, size_t snap_len, const tn_raft_entry *ents, size_t n)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    tn_rt_crash(c, id, TN_RT_KEEP_NONE);
    image_clear(nd);
    if (hs) nd->d_hs = *hs;
    if (snap) nd->d_snap = *snap;
    nd->d_snap_data = copy_bytes(snap_data, snap_len);
    nd->d_snap_len = snap_len;
    nd->d_ents = copy_ents(ents, n);
    nd->d_n = nd->d_cap = n;
    return node_boot(c, nd, 0);
}

void tn_rt_tick(tn_rt *c, int id)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    if (!nd->up) return;
    tn_raft_tick(nd->r);
    tn_rt_process(c, id);
}

int tn_rt_dispatch(tn_rt *c, tn_rt_event *e)
{
    switch (e->type) {
    case TN_RT_EV_TICK: {
        tn_rt_node *nd = tn_rt_node_of(c, e->a);
        if (!nd->up || nd->epoch != e->x) return 0;
        tn_rt_tick(c, e->a);
        tn_rt_event *n = tn_rt_at(c, c->now + nd->tick_us, TN_RT_EV_TICK);
        n->a = e->a;
        n->x = nd->epoch;
        return e->a;
    }
    case TN_RT_EV_DELIVER: {
        int touched = 0;
        if (net_arrive(c, e->a, e->b, e->p)) {
            tn_rt_process(c, e->b);
            touched = e->b;
        }
        tn_rt_discard(c, e);
        return touched;
    }
    case TN_RT_EV_SYNC: {
        tn_rt_node *nd = tn_rt_node_of(c, e->a);
        if (!nd->up || nd->epoch != e->x) return 0;
        on_sync_done(c, nd);
        return nd->up ? e->a : 0;
    }
    case TN_RT_EV_RESTART: {
        tn_rt_node *nd = tn_rt_node_of(c, e->a);
        if (!nd->up) node_boot(c, nd, 0);
        return nd->up ? e->a : 0;
    }
    default:
        return 0;
    }
}

int tn_rt_leader(const tn_rt *c)
{
    const tn_rt_node *best = NULL;
    for (int i = 0; i < c->n; i++) {
        const tn_rt_node *nd = &c->nodes[i];
        if (!nd->up || tn_raft_role_of(nd->r) != TN_LEADER) continue;
        if (!best || tn_raft_term(nd->r) > tn_raft_term(best->r)) best = nd;
    }
    return best ? best->id : 0;
}

int tn_rt_elect(tn_rt *c, int who)
{
    tn_rt_node *nd = tn_rt_node_of(c, who);
    tn_rt_drain(c);
    uint32_t lease = nd->cfg.election_ticks;
    for (uint32_t k = 0; k < lease && !tn_rt_leader(c); k++) {
        for (int i = 1; i <= c->n; i++) tn_rt_tick(c, i);
        if (tn_rt_settle(c) != 0) return -1;
    }
    for (uint32_t k = 0; k < 4 * lease && nd->up && tn_raft_role_of(nd->r) != TN_LEADER; k++) {
        tn_rt_tick(c, who);
        if (tn_rt_settle(c) != 0) return -1;
    }
    if (!nd->up || tn_raft_role_of(nd->r) != TN_LEADER) return -1;
    return tn_rt_settle(c);
}

/* ---------------------------------------------------------------------------------------------- */
/* the cluster                                                                                     */

tn_rt *tn_rt_new(const tn_rt_opts *o)
{
    if (o->n < 1 || o->n > TN_RT_MAX_NODES) return NULL;
    if (o->timed && o->disk != TN_RT_DISK_TIMED && o->disk != TN_RT_DISK_NONE) return NULL;
    if (!o->timed && o->disk == TN_RT_DISK_TIMED) return NULL;
    tn_rt *c = calloc(1, sizeof *c);
    if (!c) oom();
    c->o = *o;
    if (!c->o.out) c->o.out = stdout;
    c->n = o->n;
    tn_rt_rng_seed(&c->g, o->seed);
    tn_wr_init(&c->wr);
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->n; j++) c->link[i][j] = 1;
    for (int i = 0; i < c->n; i++) {
        tn_rt_node *nd = &c->nodes[i];
        nd->id = i + 1;
        nd->cfg = o->cfg;
        nd->cfg.id = (uint64_t)i + 1;
        if (nd->cfg.conf.n_voters == 0)
            for (int j = 0; j < c->n; j++) nd->cfg.conf.voters[nd->cfg.conf.n_voters++] = (uint64_t)j + 1;
    }
    return c;
}

int tn_rt_start(tn_rt *c)
{
    for (int i = 0; i < c->n; i++)
        if (!c->nodes[i].booted && node_boot(c, &c->nodes[i], 1) != 0) return -1;
    return 0;
}

tn_raft_config *tn_rt_cfg(tn_rt *c, int id) { return &tn_rt_node_of(c, id)->cfg; }
int tn_rt_n(const tn_rt *c) { return c->n; }
tn_rt_rng *tn_rt_rng_of(tn_rt *c) { return &c->g; }

tn_raft *tn_rt_raft(tn_rt *c, int id)
{
    tn_rt_node *nd = tn_rt_node_of(c, id);
    return nd->up ? nd->r : NULL;
}

int tn_rt_up(const tn_rt *c, int id) { return id >= 1 && id <= c->n && c->nodes[id - 1].up; }

const tn_rt_stats *tn_rt_stats_of(const tn_rt *c, int id) { return &c->nodes[id - 1].st; }

void tn_rt_free(tn_rt *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n_ev; i++) tn_rt_discard(c, &c->heap[i]);
    free(c->heap);
    for (size_t i = 0; i < c->nq; i++) tn_raft_msg_free(c->q[i].m);
    free(c->q);
    for (int i = 0; i < c->n; i++) {
        tn_rt_node *nd = &c->nodes[i];
        tn_raft_free(nd->r);
        for (size_t k = 0; k < nd->n_held; k++) tn_raft_msg_free(nd->held[k].m);
        for (size_t k = 0; k < nd->n_ops; k++) op_free(&nd->ops[k]);
        free(nd->ops);
        free(nd->held);
        free(nd->reads);
        image_clear(nd);
    }
    tn_rt_check_free(c);
    tn_wr_free(&c->wr);
    free(c);
}
