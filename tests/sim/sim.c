/* sim.c — the simulated cluster: nodes with simulated disks, a lossy network, clients, a nemesis, the
 * invariant checks and the trace. See sim.h. */
#include "sim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "lincheck.h"
#include "tn_code.h"

/* ---------------------------------------------------------------------------------------------- */
/* PRNG                                                                                            */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng *g, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) g->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sim_rng_next(sim_rng *g)
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

uint64_t sim_rng_below(sim_rng *g, uint64_t n) { return sim_rng_next(g) % n; }
int sim_rng_chance(sim_rng *g, unsigned per_mille) { return sim_rng_below(g, 1000) < per_mille; }

const char *const sim_scenarios[] = {"deposed_leader_read", "deposed_leader_lease_read", "failed_write_leader",
                                     "truncate_uncommitted", "conf_change_leader_crash", "figure8", "vote_lost_on_crash", NULL};

/* ---------------------------------------------------------------------------------------------- */
/* types                                                                                           */

#define MAXN 7
#define NKEYS 3
#define NCLIENTS 4
#define TICK_US 10000
#define ELECTION_TICKS 10
#define HEARTBEAT_TICKS 3
#define LEASE_DRIFT 4
#define CLIENT_TIMEOUT_US 400000
#define TRACE_N 2048
#define COMPACT_EVERY 48

enum {
    EV_TICK = 1,
    EV_DELIVER,
    EV_SYNC_DONE,
    EV_CLIENT_NEXT,
    EV_CLIENT_TIMEOUT,
    EV_REQ_ARRIVE,
    EV_RESP_ARRIVE,
    EV_NEMESIS,
    EV_RESTART,
    EV_HEAL,
    EV_SCRIPT
};

typedef struct event {
    uint64_t t, seq;
    int type;
    int a, b;
    uint64_t x, y;
    void *p;
    size_t len;
} event;

/* disk operations, applied in order to the synced image when an fsync covering them completes */
enum { OP_HS = 1, OP_TRUNC, OP_APPEND, OP_SNAP };

typedef struct disk_op {
    int kind;
    uint64_t seq;
    tn_raft_hard_state hs;
    uint64_t trunc_from;
    tn_raft_entry *ents; /* deep copies */
    size_t n;
    tn_raft_snapshot_meta snap;
    uint8_t *snap_data;
    size_t snap_len;
} disk_op;

typedef struct held_msg {
    uint64_t need_seq;
    tn_raft_msg *m;
} held_msg;

/* kv[NKEYS] is a scratch register the clients never touch: scripted writes go there. The session table
 * (last request applied per client, and its result) makes a command apply at most once even when the
 * network duplicates a forwarded proposal; it is part of the snapshot like everything else. */
typedef struct sm_state {
    int64_t kv[NKEYS + 1];
    uint64_t last_req[NCLIENTS + 1];
    int64_t last_res[NCLIENTS + 1];
} sm_state;

enum { SC_NONE = 0, SC_DEPOSED_READ, SC_DEPOSED_LEASE, SC_FAILED_WRITE, SC_TRUNCATE, SC_CONF_CRASH,
       SC_FIGURE8, SC_VOTE_CRASH };

enum { CMD_WRITE = 0, CMD_READ = 1, CMD_CAS = 2 };

typedef struct pending_req {
    uint64_t req_id;
    int client;
    int kind;
} pending_req;

typedef struct node {
    int id;
    int up;
    uint64_t epoch;
    tn_raft *r;
    uint64_t tick_us;
    /* synced image */
    tn_raft_hard_state d_hs;
    tn_raft_snapshot_meta d_snap;
    uint8_t *d_snap_data;
    size_t d_snap_len;
    tn_raft_entry *d_ents;
    size_t d_n, d_cap;
    /* written, not yet synced */
    disk_op *ops;
    size_t n_ops, cap_ops;
    uint64_t op_seq, synced_seq;
    int sync_busy;
    uint64_t sync_target;
    int slow_disk;
    int fail_next_sync;
    held_msg *held;
    size_t n_held, cap_held;
    /* state machine */
    sm_state sm;
    pending_req *reqs;
    size_t n_reqs, cap_reqs;
    /* invariant baselines for this incarnation */
    uint64_t seen_commit, seen_applied, checked_commit;
    uint64_t last_leader_term;
    uint64_t truncations;
} node;

typedef struct client {
    int busy;
    int proc;         /* lincheck client id: a fresh one after an unknown outcome */
    uint64_t req_id;
    size_t op;        /* index into the history */
    int target;       /* node it believes is leader (1-based) */
    int64_t last_seen[NKEYS];
    uint64_t counter;
} client;

typedef struct trace_rec {
    uint64_t t;
    uint8_t kind, node, a, b;
    uint64_t x, y, z;
} trace_rec;

enum { TR_SEND = 1, TR_DROP, TR_DELIVER, TR_ROLE, TR_COMMIT, TR_CRASH, TR_RESTART, TR_PART, TR_HEAL,
       TR_CONF, TR_XFER, TR_REQ, TR_RESP, TR_SYNC, TR_DISKFAIL, TR_TRUNC, TR_SNAP, TR_NOTE };

typedef struct kv_rec {
    uint64_t index, term;
    uint64_t hash, prev_term;
} kv_rec;

typedef struct sim {
    const sim_opts *o;
    sim_rng g;
    uint64_t now, seq, steps;
    event *heap;
    size_t n_ev, cap_ev;
    int n;
    node nodes[MAXN];
    tn_raft_config cfg[MAXN];
    int link[MAXN][MAXN]; /* 1 = messages from i to j get through */
    unsigned loss_pm, dup_pm;
    uint64_t delay_max_us;
    client clients[NCLIENTS];
    int next_proc;
    uint64_t next_req;
    lc_op *hist;
    size_t n_hist, cap_hist;
    /* invariants */
    uint64_t *leader_of;    /* by term */
    size_t cap_terms;
    uint64_t *c_term, *c_hash, *c_seen, *a_hash; /* by index: committed term/hash/seen-in-term, applied hash */
    size_t cap_idx;
    uint64_t max_commit;
    uint64_t commit_at_quiet;
    int protected_cfg; /* pre-vote and check-quorum both on */
    kv_rec *lm;            /* log matching table: open addressing on (index, term) */
    size_t lm_cap, lm_n;
    uint64_t elections;
    char why[512];
    int violated;
    trace_rec trace[TRACE_N];
    uint64_t n_trace;
    int lease;
    /* scenario bookkeeping */
    int scen;
    int scen_node;
    uint64_t scen_x;
    int f8_x, f8_y, f8_z, f8_phase;
    uint64_t f8_a;
    tn_wr wr;
} sim;

/* ---------------------------------------------------------------------------------------------- */
/* trace and violations                                                                            */

static void sim_print_rec(FILE *f, const trace_rec *t)
{
    double ms = (double)t->t / 1000.0;
    switch (t->kind) {
    case TR_SEND: fprintf(f, "%10.3f n%d -> n%d %s term=%" PRIu64 " idx=%" PRIu64 " n=%" PRIu64 "\n", ms,
                          t->node, t->a, tn_raft_msg_type_name(t->b), t->x, t->y, t->z); break;
    case TR_DROP: fprintf(f, "%10.3f n%d -> n%d %s DROPPED\n", ms, t->node, t->a, tn_raft_msg_type_name(t->b)); break;
    case TR_DELIVER: fprintf(f, "%10.3f n%d <- n%d %s term=%" PRIu64 " idx=%" PRIu64 " rej=%" PRIu64 "\n", ms,
                             t->node, t->a, tn_raft_msg_type_name(t->b), t->x, t->y, t->z); break;
    case TR_ROLE: fprintf(f, "%10.3f n%d becomes %s term=%" PRIu64 " leader=%" PRIu64 "\n", ms, t->node,
                          tn_raft_role_name((tn_raft_role)t->a), t->x, t->y); break;
    case TR_COMMIT: fprintf(f, "%10.3f n%d commit=%" PRIu64 " applied=%" PRIu64 " last=%" PRIu64 "\n", ms,
                            t->node, t->x, t->y, t->z); break;
    case TR_CRASH: fprintf(f, "%10.3f n%d CRASH (kept %" PRIu64 " of %" PRIu64 " unsynced writes)\n", ms,
                           t->node, t->x, t->y); break;
    case TR_RESTART: fprintf(f, "%10.3f n%d RESTART term=%" PRIu64 " commit=%" PRIu64 " last=%" PRIu64 "\n",
                             ms, t->node, t->x, t->y, t->z); break;
    case TR_PART: fprintf(f, "%10.3f PARTITION mask=%" PRIx64 " asym=%d\n", ms, t->x, t->a); break;
    case TR_HEAL: fprintf(f, "%10.3f HEAL\n", ms); break;
    case TR_CONF: fprintf(f, "%10.3f n%d propose conf op=%d node=%" PRIu64 " rc=%" PRIu64 "\n", ms, t->node,
                          t->a, t->x, t->y); break;
    case TR_XFER: fprintf(f, "%10.3f n%d transfer leadership to n%" PRIu64 " rc=%" PRIu64 "\n", ms, t->node,
                          t->x, t->y); break;
    case TR_REQ: fprintf(f, "%10.3f client%d -> n%d req=%" PRIu64 " kind=%d key=%" PRIu64 " arg=%" PRId64 "\n",
                         ms, t->a, t->node, t->x, t->b, t->y, (int64_t)t->z); break;
    case TR_RESP: fprintf(f, "%10.3f client%d <- req=%" PRIu64 " outcome=%d result=%" PRId64 "\n", ms, t->a,
                          t->x, t->b, (int64_t)t->y); break;
    case TR_SYNC: fprintf(f, "%10.3f n%d fsync done (seq %" PRIu64 ") durable last=%" PRIu64 "\n", ms,
                          t->node, t->x, t->y); break;
    case TR_DISKFAIL: fprintf(f, "%10.3f n%d DISK WRITE FAILED -> crash\n", ms, t->node); break;
    case TR_TRUNC: fprintf(f, "%10.3f n%d truncates log from %" PRIu64 "\n", ms, t->node, t->x); break;
    case TR_SNAP: fprintf(f, "%10.3f n%d snapshot at %" PRIu64 " (%s)\n", ms, t->node, t->x,
                          t->a ? "installed" : "compacted"); break;
    case TR_NOTE: fprintf(f, "%10.3f note %d %" PRIu64 " %" PRIu64 "\n", ms, t->a, t->x, t->y); break;
    default: break;
    }
}

static void tr(sim *s, int kind, int nd, int a, int b, uint64_t x, uint64_t y, uint64_t z)
{
    trace_rec *t = &s->trace[s->n_trace++ % TRACE_N];
    *t = (trace_rec){s->now, (uint8_t)kind, (uint8_t)nd, (uint8_t)a, (uint8_t)b, x, y, z};
    if (s->o->verbose) sim_print_rec(s->o->out, t);
}

static void violation(sim *s, const char *fmt, ...)
{
    if (s->violated) return;
    s->violated = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------------- */
/* event queue (binary heap on (t, seq))                                                          */

static int ev_less(const event *a, const event *b) { return a->t < b->t || (a->t == b->t && a->seq < b->seq); }

static event *ev_push(sim *s, uint64_t at, int type)
{
    if (s->n_ev == s->cap_ev) {
        size_t cap = s->cap_ev ? s->cap_ev * 2 : 1024;
        event *h = realloc(s->heap, cap * sizeof *h);
        if (!h) { fprintf(stderr, "tarn-sim: out of memory\n"); exit(2); }
        s->heap = h;
        s->cap_ev = cap;
    }
    size_t i = s->n_ev++;
    event e = {0};
    e.t = at;
    e.seq = s->seq++;
    e.type = type;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&e, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
    /* return a stable pointer: callers fill fields right away, before any other push/pop */
    return &s->heap[i];
}

static event ev_pop(sim *s)
{
    event top = s->heap[0];
    event last = s->heap[--s->n_ev];
    size_t n = s->n_ev, i = 0;
    if (n == 0) return top;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ev_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!ev_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    s->heap[i] = last;
    return top;
}

/* ---------------------------------------------------------------------------------------------- */
/* helpers                                                                                         */

static uint64_t hash_bytes(uint8_t type, const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ type;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ull; }
    return h;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    uint8_t *n = realloc(p, c * elem);
    if (!n) { fprintf(stderr, "tarn-sim: out of memory\n"); exit(2); }
    memset(n + *cap * elem, 0, (c - *cap) * elem);
    *cap = c;
    return n;
}

static void ensure_idx(sim *s, uint64_t idx)
{
    if (idx < s->cap_idx) return;
    size_t c1 = s->cap_idx, c2 = s->cap_idx, c3 = s->cap_idx, c4 = s->cap_idx;
    s->c_term = grow(s->c_term, &c1, (size_t)idx + 1, sizeof(uint64_t));
    s->c_hash = grow(s->c_hash, &c2, (size_t)idx + 1, sizeof(uint64_t));
    s->c_seen = grow(s->c_seen, &c3, (size_t)idx + 1, sizeof(uint64_t));
    s->a_hash = grow(s->a_hash, &c4, (size_t)idx + 1, sizeof(uint64_t));
    s->cap_idx = c1;
}

static void free_ents(tn_raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) free(e[i].data);
    free(e);
}

static tn_raft_entry *copy_ents(const tn_raft_entry *src, size_t n)
{
    tn_raft_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e) exit(2);
    for (size_t i = 0; i < n; i++) {
        e[i] = src[i];
        e[i].data = NULL;
        if (src[i].len) {
            e[i].data = malloc(src[i].len);
            if (!e[i].data) exit(2);
            memcpy(e[i].data, src[i].data, src[i].len);
        }
    }
    return e;
}

/* ---------------------------------------------------------------------------------------------- */
/* invariants                                                                                      */

/* Log matching: (index, term) identifies one entry content and one predecessor term cluster-wide. */
static void lm_check(sim *s, int nd, uint64_t index, uint64_t term, uint64_t hash, uint64_t prev_term)
{
    if (s->lm_n * 2 >= s->lm_cap) {
        size_t cap = s->lm_cap ? s->lm_cap * 2 : 4096;
        kv_rec *t = calloc(cap, sizeof *t);
        if (!t) exit(2);
        for (size_t i = 0; i < s->lm_cap; i++) {
            if (!s->lm[i].index) continue;
            size_t h = (size_t)((s->lm[i].index * 0x9e3779b97f4a7c15ull) ^ s->lm[i].term) & (cap - 1);
            while (t[h].index) h = (h + 1) & (cap - 1);
            t[h] = s->lm[i];
        }
        free(s->lm);
        s->lm = t;
        s->lm_cap = cap;
    }
    size_t h = (size_t)((index * 0x9e3779b97f4a7c15ull) ^ term) & (s->lm_cap - 1);
    while (s->lm[h].index) {
        if (s->lm[h].index == index && s->lm[h].term == term) {
            if (s->lm[h].hash != hash || s->lm[h].prev_term != prev_term)
                violation(s, "log matching: n%d has a different entry at index %" PRIu64 " term %" PRIu64
                          " (content or previous term differs)", nd, index, term);
            return;
        }
        h = (h + 1) & (s->lm_cap - 1);
    }
    s->lm[h] = (kv_rec){index, term, hash, prev_term};
    s->lm_n++;
}

static void check_leader_has_committed(sim *s, node *nd, uint64_t from, uint64_t to)
{
    tn_raft *r = nd->r;
    uint64_t lt = tn_raft_term(r);
    uint64_t first = tn_raft_snapshot_of(r)->index;
    if (from <= first) from = first + 1;
    for (uint64_t i = from; i <= to && i < s->cap_idx; i++) {
        if (!s->c_term[i] || s->c_seen[i] >= lt) continue;
        uint64_t t;
        if (tn_raft_term_at(r, i, &t) != 0 || t != s->c_term[i]) {
            violation(s, "leader completeness: leader n%d of term %" PRIu64 " lacks committed entry %" PRIu64
                      " (term %" PRIu64 ")", nd->id, lt, i, s->c_term[i]);
            return;
        }
    }
}

static void check_node(sim *s, node *nd)
{
    tn_raft *r = nd->r;
    uint64_t commit = tn_raft_commit(r), applied = tn_raft_applied(r), term = tn_raft_term(r);
    if (commit < nd->seen_commit)
        violation(s, "commit index went backwards on n%d: %" PRIu64 " -> %" PRIu64, nd->id, nd->seen_commit, commit);
    if (applied < nd->seen_applied)
        violation(s, "applied index went backwards on n%d: %" PRIu64 " -> %" PRIu64, nd->id, nd->seen_applied, applied);
    if (applied > commit)
        violation(s, "applied > committed on n%d: %" PRIu64 " > %" PRIu64, nd->id, applied, commit);
    nd->seen_commit = commit;
    nd->seen_applied = applied;
    if (tn_raft_role_of(r) == TN_LEADER) {
        ensure_idx(s, 0);
        if (term >= s->cap_terms) s->leader_of = grow(s->leader_of, &s->cap_terms, (size_t)term + 1, sizeof(uint64_t));
        if (s->leader_of[term] && s->leader_of[term] != (uint64_t)nd->id)
            violation(s, "election safety: two leaders in term %" PRIu64 ": n%" PRIu64 " and n%d", term,
                      s->leader_of[term], nd->id);
        if (!s->leader_of[term]) {
            s->leader_of[term] = (uint64_t)nd->id;
            s->elections++;
        }
        if (nd->last_leader_term != term) {
            nd->last_leader_term = term;
            check_leader_has_committed(s, nd, 1, s->max_commit);
        }
    }
    if (commit > nd->checked_commit) {
        uint64_t first = tn_raft_snapshot_of(r)->index;
        ensure_idx(s, commit);
        for (uint64_t i = nd->checked_commit + 1; i <= commit; i++) {
            if (i <= first) continue;
            const tn_raft_entry *e = tn_raft_entry_at(r, i);
            if (!e) continue;
            uint64_t h = hash_bytes(e->type, e->data, e->len);
            if (!s->c_term[i]) {
                s->c_term[i] = e->term;
                s->c_hash[i] = h;
                s->c_seen[i] = term;
                /* every current leader of a later term must already hold it */
                for (int k = 0; k < s->n; k++) {
                    node *o = &s->nodes[k];
                    if (!o->up || tn_raft_role_of(o->r) != TN_LEADER || tn_raft_term(o->r) <= term) continue;
                    check_leader_has_committed(s, o, i, i);
                }
            } else if (s->c_term[i] != e->term || s->c_hash[i] != h) {
                violation(s, "committed entries differ at index %" PRIu64 ": n%d has term %" PRIu64
                          ", committed earlier with term %" PRIu64, i, nd->id, e->term, s->c_term[i]);
            }
        }
        nd->checked_commit = commit;
        if (commit > s->max_commit) s->max_commit = commit;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* network                                                                                         */

static void net_send(sim *s, const tn_raft_msg *m)
{
    int from = (int)m->from - 1, to = (int)m->to - 1;
    if (to < 0 || to >= s->n) return;
    tr(s, TR_SEND, (int)m->from, (int)m->to, m->type, m->term, m->index, m->n_entries);
    if (!s->link[from][to] || sim_rng_chance(&s->g, s->loss_pm)) {
        tr(s, TR_DROP, (int)m->from, (int)m->to, m->type, 0, 0, 0);
        return;
    }
    s->wr.len = 0;
    if (tn_raft_msg_encode(m, &s->wr) != 0) exit(2);
    int copies = sim_rng_chance(&s->g, s->dup_pm) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        uint8_t *b = malloc(s->wr.len);
        if (!b) exit(2);
        memcpy(b, s->wr.p, s->wr.len);
        uint64_t delay = 200 + sim_rng_below(&s->g, s->delay_max_us);
        event *e = ev_push(s, s->now + delay, EV_DELIVER);
        e->a = from;
        e->b = to;
        e->p = b;
        e->len = s->wr.len;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* disk                                                                                            */

static void op_free(disk_op *op)
{
    free_ents(op->ents, op->n);
    free(op->snap_data);
}

static void disk_push(node *nd, disk_op *op)
{
    nd->ops = grow(nd->ops, &nd->cap_ops, nd->n_ops + 1, sizeof *nd->ops);
    op->seq = ++nd->op_seq;
    nd->ops[nd->n_ops++] = *op;
}

static void image_truncate(node *nd, uint64_t from)
{
    uint64_t base = nd->d_snap.index;
    while (nd->d_n && base + nd->d_n >= from) {
        nd->d_n--;
        free(nd->d_ents[nd->d_n].data);
    }
}

/* Applies a synced operation to the durable image (ownership of op's buffers moves to the image). */
static void image_apply(node *nd, disk_op *op)
{
    switch (op->kind) {
    case OP_HS:
        nd->d_hs = op->hs;
        break;
    case OP_TRUNC:
        image_truncate(nd, op->trunc_from);
        break;
    case OP_APPEND:
        if (op->n) image_truncate(nd, op->ents[0].index);
        nd->d_ents = grow(nd->d_ents, &nd->d_cap, nd->d_n + op->n, sizeof *nd->d_ents);
        for (size_t i = 0; i < op->n; i++) nd->d_ents[nd->d_n++] = op->ents[i];
        free(op->ents);
        op->ents = NULL;
        op->n = 0;
        break;
    case OP_SNAP: {
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

static void sim_start_sync(sim *s, node *nd)
{
    if (nd->sync_busy || nd->n_ops == 0) return;
    nd->sync_busy = 1;
    nd->sync_target = nd->op_seq;
    uint64_t lat = 100 + sim_rng_below(&s->g, 1500);
    if (nd->slow_disk == 1) lat += 5000 + sim_rng_below(&s->g, 40000);
    if (nd->slow_disk == 2) lat += 100000 + sim_rng_below(&s->g, 100000);
    if (nd->slow_disk == 3) lat += 30000 + sim_rng_below(&s->g, 20000);
    event *e = ev_push(s, s->now + lat, EV_SYNC_DONE);
    e->a = nd->id - 1;
    e->x = nd->epoch;
}

/* ---------------------------------------------------------------------------------------------- */
/* state machine and clients                                                                       */

typedef struct cmd {
    uint8_t kind;
    uint8_t key;
    uint8_t client;
    uint64_t req_id;
    int64_t arg, arg2;
} cmd;

static size_t cmd_encode(const cmd *c, uint8_t *b)
{
    b[0] = c->kind;
    b[1] = c->key;
    memcpy(b + 2, &c->req_id, 8);
    memcpy(b + 10, &c->arg, 8);
    memcpy(b + 18, &c->arg2, 8);
    b[26] = c->client;
    return 27;
}

static int cmd_decode(const uint8_t *b, size_t n, cmd *c)
{
    if (n != 27) return -1;
    c->client = b[26];
    c->kind = b[0];
    c->key = b[1];
    memcpy(&c->req_id, b + 2, 8);
    memcpy(&c->arg, b + 10, 8);
    memcpy(&c->arg2, b + 18, 8);
    return c->key <= NKEYS && c->client <= NCLIENTS ? 0 : -1;
}


/* the node answers a client: the response travels back (and may be lost) */
static void respond(sim *s, node *nd, int client_i, uint64_t req_id, lc_outcome outcome, int64_t result)
{
    if (sim_rng_chance(&s->g, s->loss_pm)) return;
    event *e = ev_push(s, s->now + 200 + sim_rng_below(&s->g, s->delay_max_us), EV_RESP_ARRIVE);
    e->a = client_i;
    e->b = (int)outcome;
    e->x = req_id;
    e->y = (uint64_t)result;
    e->len = tn_raft_leader(nd->r); /* leader hint */
}

static pending_req *req_find(node *nd, uint64_t id, size_t *at)
{
    for (size_t i = 0; i < nd->n_reqs; i++)
        if (nd->reqs[i].req_id == id) { *at = i; return &nd->reqs[i]; }
    return NULL;
}

static void req_del(node *nd, size_t at) { nd->reqs[at] = nd->reqs[--nd->n_reqs]; }

static void sm_apply(sim *s, node *nd, const tn_raft_entry *e)
{
    ensure_idx(s, e->index);
    uint64_t h = hash_bytes(e->type, e->data, e->len) ^ (e->term * 0x100000001b3ull);
    if (s->a_hash[e->index] && s->a_hash[e->index] != h)
        violation(s, "state machine safety: n%d applied a different entry at index %" PRIu64, nd->id, e->index);
    s->a_hash[e->index] = h;
    if (e->type != TN_ENTRY_NORMAL) return;
    cmd c;
    if (cmd_decode(e->data, e->len, &c) != 0) {
        violation(s, "n%d applied an undecodable command at %" PRIu64, nd->id, e->index);
        return;
    }
    int64_t result = 0;
    if (c.req_id < nd->sm.last_req[c.client]) return; /* stale duplicate of a superseded request */
    if (c.req_id == nd->sm.last_req[c.client]) {
        result = nd->sm.last_res[c.client]; /* duplicate: answer with the first result, change nothing */
    } else if (c.kind == CMD_WRITE) {
        nd->sm.kv[c.key] = c.arg;
    } else if (c.kind == CMD_CAS) {
        if (nd->sm.kv[c.key] == c.arg) { nd->sm.kv[c.key] = c.arg2; result = 1; }
    }
    if (c.req_id > nd->sm.last_req[c.client]) {
        nd->sm.last_req[c.client] = c.req_id;
        nd->sm.last_res[c.client] = result;
    }
    size_t at;
    pending_req *pr = req_find(nd, c.req_id, &at);
    if (pr) {
        respond(s, nd, pr->client, c.req_id, LC_OK, result);
        req_del(nd, at);
    }
}

static void sm_from_snapshot(node *nd, const uint8_t *data, size_t len)
{
    memset(&nd->sm, 0, sizeof nd->sm);
    if (len == sizeof nd->sm) memcpy(&nd->sm, data, len);
}

/* ---------------------------------------------------------------------------------------------- */
/* the driver loop for one node                                                                    */

static void deliver_or_hold(sim *s, node *nd, tn_raft_msg *m)
{
    if (nd->synced_seq >= nd->op_seq) {
        net_send(s, m);
        tn_raft_msg_free(m);
        return;
    }
    nd->held = grow(nd->held, &nd->cap_held, nd->n_held + 1, sizeof *nd->held);
    nd->held[nd->n_held++] = (held_msg){nd->op_seq, m};
}

static void process_ready(sim *s, node *nd)
{
    tn_raft *r = nd->r;
    for (int guard = 0; guard < 64 && tn_raft_has_ready(r); guard++) {
        tn_raft_ready rd;
        tn_raft_role old_role = tn_raft_role_of(r);
        (void)old_role;
        tn_raft_ready_get(r, &rd);
        if (rd.need_election_timeout)
            tn_raft_set_election_timeout(r, ELECTION_TICKS + (uint32_t)sim_rng_below(&s->g, ELECTION_TICKS));
        if (rd.has_snapshot) {
            disk_op op = {0};
            op.kind = OP_SNAP;
            op.snap = rd.snapshot;
            if (rd.snapshot_len) {
                op.snap_data = malloc(rd.snapshot_len);
                if (!op.snap_data) exit(2);
                memcpy(op.snap_data, rd.snapshot_data, rd.snapshot_len);
            }
            op.snap_len = rd.snapshot_len;
            disk_push(nd, &op);
            /* a received snapshot replaces the log: the image keeps nothing after it */
            disk_op t = {0};
            t.kind = OP_TRUNC;
            t.trunc_from = rd.snapshot.index + 1;
            disk_push(nd, &t);
            sm_from_snapshot(nd, rd.snapshot_data, rd.snapshot_len);
            tr(s, TR_SNAP, nd->id, 1, 0, rd.snapshot.index, 0, 0);
        }
        if (rd.truncate_from) {
            disk_op op = {0};
            op.kind = OP_TRUNC;
            op.trunc_from = rd.truncate_from;
            disk_push(nd, &op);
            nd->truncations++;
            tr(s, TR_TRUNC, nd->id, 0, 0, rd.truncate_from, 0, 0);
        }
        if (rd.n_entries) {
            for (size_t i = 0; i < rd.n_entries; i++) {
                const tn_raft_entry *e = &rd.entries[i];
                uint64_t pt = 0;
                tn_raft_term_at(r, e->index - 1, &pt);
                lm_check(s, nd->id, e->index, e->term, hash_bytes(e->type, e->data, e->len), pt);
            }
            disk_op op = {0};
            op.kind = OP_APPEND;
            op.ents = copy_ents(rd.entries, rd.n_entries);
            op.n = rd.n_entries;
            disk_push(nd, &op);
        }
        if (rd.hs_changed) {
            disk_op op = {0};
            op.kind = OP_HS;
            op.hs = rd.hs;
            disk_push(nd, &op);
        }
        for (size_t i = 0; i < rd.n_msgs; i++) {
            net_send(s, rd.msgs[i]);
            tn_raft_msg_free(rd.msgs[i]);
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++) deliver_or_hold(s, nd, rd.msgs_after_persist[i]);
        for (size_t i = 0; i < rd.n_committed; i++) sm_apply(s, nd, &rd.committed[i]);
        for (size_t i = 0; i < rd.n_read_states; i++) {
            const tn_raft_read_state *rs = &rd.read_states[i];
            size_t at;
            pending_req *pr = req_find(nd, rs->ctx, &at);
            if (!pr) continue;
            if (rs->ok) {
                cmd c = {0};
                (void)c;
                /* the key travels in the pending record's kind field's high bits */
                int key = pr->kind >> 4;
                if ((s->scen == SC_DEPOSED_READ || s->scen == SC_DEPOSED_LEASE) && nd->id == s->scen_node &&
                    s->scen_x) {
                    for (int k = 0; k < s->n; k++) {
                        node *o = &s->nodes[k];
                        if (o != nd && o->up && tn_raft_role_of(o->r) == TN_LEADER &&
                            tn_raft_term(o->r) > tn_raft_term(r))
                            violation(s, "deposed leader n%d served a read while n%d leads term %" PRIu64,
                                      nd->id, o->id, tn_raft_term(o->r));
                    }
                }
                respond(s, nd, pr->client, rs->ctx, LC_OK, nd->sm.kv[key]);
            } else {
                respond(s, nd, pr->client, rs->ctx, LC_FAIL, 0);
            }
            req_del(nd, at);
        }
        if (rd.soft_changed) tr(s, TR_ROLE, nd->id, rd.role, 0, tn_raft_term(r), rd.leader, 0);
        if (rd.n_committed) tr(s, TR_COMMIT, nd->id, 0, 0, tn_raft_commit(r), tn_raft_applied(r), tn_raft_last_index(r));
        /* compaction: snapshot the register map at the applied index */
        uint64_t applied = tn_raft_applied(r);
        if (applied >= tn_raft_snapshot_of(r)->index + COMPACT_EVERY &&
            tn_raft_compact(r, applied, &nd->sm, sizeof nd->sm) == 0) {
            disk_op op = {0};
            op.kind = OP_SNAP;
            op.snap = *tn_raft_snapshot_of(r);
            op.snap_data = malloc(sizeof nd->sm);
            if (!op.snap_data) exit(2);
            memcpy(op.snap_data, &nd->sm, sizeof nd->sm);
            op.snap_len = sizeof nd->sm;
            disk_push(nd, &op);
            tr(s, TR_SNAP, nd->id, 0, 0, applied, 0, 0);
        }
        sim_start_sync(s, nd);
    }
}

static void node_boot(sim *s, node *nd, int fresh)
{
    if (fresh) {
        nd->r = tn_raft_new(&s->cfg[nd->id - 1]);
    } else {
        nd->r = tn_raft_restore(&s->cfg[nd->id - 1], &nd->d_hs, &nd->d_snap, nd->d_snap_data, nd->d_snap_len,
                                nd->d_ents, nd->d_n);
    }
    if (!nd->r) {
        violation(s, "n%d could not be restored from its durable state", nd->id);
        return;
    }
    nd->up = 1;
    nd->epoch++;
    sm_from_snapshot(nd, nd->d_snap_data, nd->d_snap_len);
    nd->seen_commit = nd->seen_applied = 0;
    nd->checked_commit = tn_raft_snapshot_of(nd->r)->index;
    nd->last_leader_term = 0;
    nd->synced_seq = nd->op_seq;
    event *e = ev_push(s, s->now + sim_rng_below(&s->g, nd->tick_us) + 1, EV_TICK);
    e->a = nd->id - 1;
    e->x = nd->epoch;
    if (!fresh) tr(s, TR_RESTART, nd->id, 0, 0, nd->d_hs.term, nd->d_hs.commit, nd->d_snap.index + nd->d_n);
    process_ready(s, nd);
}

static void node_crash(sim *s, node *nd, int keep_prefix)
{
    if (!nd->up) return;
    /* a random prefix of the unsynced writes may have reached the disk anyway */
    size_t keep = keep_prefix && nd->n_ops ? (size_t)sim_rng_below(&s->g, nd->n_ops + 1) : 0;
    for (size_t i = 0; i < nd->n_ops; i++) {
        if (i < keep) image_apply(nd, &nd->ops[i]);
        else op_free(&nd->ops[i]);
    }
    tr(s, TR_CRASH, nd->id, 0, 0, keep, nd->n_ops, 0);
    nd->n_ops = 0;
    nd->synced_seq = nd->op_seq;
    for (size_t i = 0; i < nd->n_held; i++) tn_raft_msg_free(nd->held[i].m);
    nd->n_held = 0;
    nd->n_reqs = 0;
    tn_raft_free(nd->r);
    nd->r = NULL;
    nd->up = 0;
    nd->epoch++;
    nd->sync_busy = 0;
    nd->fail_next_sync = 0;
}

static void on_sync_done(sim *s, node *nd)
{
    nd->sync_busy = 0;
    if (nd->fail_next_sync) {
        /* fsync failed: the page cache can no longer be trusted; fail-stop like a real server must */
        tr(s, TR_DISKFAIL, nd->id, 0, 0, 0, 0, 0);
        node_crash(s, nd, 0);
        event *e = ev_push(s, s->now + 50000 + sim_rng_below(&s->g, 200000), EV_RESTART);
        e->a = nd->id - 1;
        return;
    }
    size_t k = 0;
    while (k < nd->n_ops && nd->ops[k].seq <= nd->sync_target) {
        image_apply(nd, &nd->ops[k]);
        k++;
    }
    memmove(nd->ops, nd->ops + k, (nd->n_ops - k) * sizeof *nd->ops);
    nd->n_ops -= k;
    nd->synced_seq = nd->sync_target;
    uint64_t last = nd->d_snap.index + nd->d_n;
    uint64_t lt = nd->d_n ? nd->d_ents[nd->d_n - 1].term : nd->d_snap.term;
    tr(s, TR_SYNC, nd->id, 0, 0, nd->synced_seq, last, 0);
    size_t w = 0;
    for (size_t i = 0; i < nd->n_held; i++) {
        if (nd->held[i].need_seq <= nd->synced_seq) {
            net_send(s, nd->held[i].m);
            tn_raft_msg_free(nd->held[i].m);
        } else {
            nd->held[w++] = nd->held[i];
        }
    }
    nd->n_held = w;
    if (last) tn_raft_persisted(nd->r, last, lt);
    process_ready(s, nd);
    sim_start_sync(s, nd);
}

/* ---------------------------------------------------------------------------------------------- */
/* clients                                                                                         */

static void hist_record_done(sim *s, uint64_t req_id, size_t op, lc_outcome outcome, int64_t result)
{
    lc_op *h = &s->hist[op];
    h->outcome = outcome;
    h->result = result;
    h->complete = s->now;
}

static void client_next(sim *s, int ci)
{
    client *c = &s->clients[ci];
    if (c->busy) return;
    s->hist = grow(s->hist, &s->cap_hist, s->n_hist + 1, sizeof *s->hist);
    lc_op *h = &s->hist[s->n_hist];
    c->op = s->n_hist++;
    c->busy = 1;
    c->req_id = ++s->next_req;
    uint64_t key = sim_rng_below(&s->g, NKEYS);
    unsigned pick = (unsigned)sim_rng_below(&s->g, 100);
    int kind = pick < 40 ? CMD_WRITE : pick < 80 ? CMD_READ : CMD_CAS;
    c->counter++;
    int64_t val = (int64_t)((uint64_t)(ci + 1) * 1000000 + c->counter);
    h->client = c->proc;
    h->key = key;
    h->kind = kind == CMD_WRITE ? LC_WRITE : kind == CMD_READ ? LC_READ : LC_CAS;
    h->arg = kind == CMD_CAS ? c->last_seen[key] : val;
    h->arg2 = kind == CMD_CAS ? val : 0;
    h->result = 0;
    h->outcome = LC_UNKNOWN;
    h->invoke = s->now;
    h->complete = 0;
    if (c->target < 1 || c->target > s->n) c->target = 1 + (int)sim_rng_below(&s->g, (uint64_t)s->n);
    event *e = ev_push(s, s->now + 200 + sim_rng_below(&s->g, s->delay_max_us), EV_REQ_ARRIVE);
    e->a = ci;
    e->b = c->target - 1;
    e->x = c->req_id;
    e->y = c->op;
    tr(s, TR_REQ, c->target, ci, kind, c->req_id, key, (uint64_t)h->arg);
    e = ev_push(s, s->now + CLIENT_TIMEOUT_US, EV_CLIENT_TIMEOUT);
    e->a = ci;
    e->x = c->req_id;
}

static void client_schedule(sim *s, int ci)
{
    if (s->scen && ci < 2) return; /* scenario clients 0 and 1 only send scripted reads */
    event *e = ev_push(s, s->now + 1000 + sim_rng_below(&s->g, 40000), EV_CLIENT_NEXT);
    e->a = ci;
}

static void on_request(sim *s, int ci, node *nd, uint64_t req_id, size_t op)
{
    if (!nd->up) return;
    const lc_op *h = &s->hist[op];
    if (h->kind == LC_READ) {
        int rc = tn_raft_read_index(nd->r, req_id);
        if (rc != TN_SUCCESS) { respond(s, nd, ci, req_id, LC_FAIL, 0); return; }
        nd->reqs = grow(nd->reqs, &nd->cap_reqs, nd->n_reqs + 1, sizeof *nd->reqs);
        nd->reqs[nd->n_reqs++] = (pending_req){req_id, ci, CMD_READ | (int)(h->key << 4)};
    } else {
        cmd c = {0};
        c.kind = h->kind == LC_WRITE ? CMD_WRITE : CMD_CAS;
        c.client = (uint8_t)ci;
        c.key = (uint8_t)h->key;
        c.req_id = req_id;
        c.arg = h->arg;
        c.arg2 = h->arg2;
        uint8_t b[40];
        size_t n = cmd_encode(&c, b);
        int rc = tn_raft_propose(nd->r, b, n, NULL, NULL);
        if (rc != TN_SUCCESS) { respond(s, nd, ci, req_id, LC_FAIL, 0); return; }
        nd->reqs = grow(nd->reqs, &nd->cap_reqs, nd->n_reqs + 1, sizeof *nd->reqs);
        nd->reqs[nd->n_reqs++] = (pending_req){req_id, ci, c.kind};
    }
    process_ready(s, nd);
}

static void on_response(sim *s, int ci, uint64_t req_id, lc_outcome outcome, int64_t result, uint64_t hint)
{
    client *c = &s->clients[ci];
    if (!c->busy || c->req_id != req_id) return; /* late answer to an op already timed out */
    lc_op *h = &s->hist[c->op];
    hist_record_done(s, req_id, c->op, outcome, result);
    tr(s, TR_RESP, 0, ci, outcome, req_id, (uint64_t)result, 0);
    if (outcome == LC_OK && h->kind == LC_READ) c->last_seen[h->key] = result;
    if (outcome == LC_OK && h->kind != LC_READ) c->last_seen[h->key] = h->kind == LC_WRITE ? h->arg : (result ? h->arg2 : c->last_seen[h->key]);
    if (outcome == LC_FAIL) {
        if (hint >= 1 && hint <= (uint64_t)s->n) c->target = (int)hint;
        else c->target = 1 + (int)sim_rng_below(&s->g, (uint64_t)s->n);
    }
    c->busy = 0;
    client_schedule(s, ci);
}

static void on_client_timeout(sim *s, int ci, uint64_t req_id)
{
    client *c = &s->clients[ci];
    if (!c->busy || c->req_id != req_id) return;
    lc_op *h = &s->hist[c->op];
    if (h->kind == LC_READ) {
        hist_record_done(s, req_id, c->op, LC_FAIL, 0); /* a read has no effect: drop it */
    } else {
        hist_record_done(s, req_id, c->op, LC_UNKNOWN, 0);
        c->proc = s->next_proc++;  /* the unknown op may still take effect: a new process continues */
    }
    tr(s, TR_RESP, 0, ci, h->outcome, req_id, 0, 1);
    c->target = 1 + (int)sim_rng_below(&s->g, (uint64_t)s->n);
    c->busy = 0;
    client_schedule(s, ci);
}

/* ---------------------------------------------------------------------------------------------- */
/* nemesis                                                                                         */

static node *find_leader(sim *s)
{
    node *best = NULL;
    for (int i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        if (!nd->up || tn_raft_role_of(nd->r) != TN_LEADER) continue;
        if (!best || tn_raft_term(nd->r) > tn_raft_term(best->r)) best = nd;
    }
    return best;
}

static void heal(sim *s)
{
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->n; j++) s->link[i][j] = 1;
    tr(s, TR_HEAL, 0, 0, 0, 0, 0, 0);
}

static void nemesis(sim *s)
{
    unsigned pick = (unsigned)sim_rng_below(&s->g, 100);
    if (pick < 20) {
        /* partition: a random subset on one side; sometimes only one direction is cut */
        uint64_t mask = sim_rng_below(&s->g, (1ull << s->n) - 1) + 1;
        int asym = sim_rng_chance(&s->g, 300);
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->n; j++) {
                int si = (mask >> i) & 1, sj = (mask >> j) & 1;
                s->link[i][j] = (si == sj) || (asym && si && !sj);
            }
        tr(s, TR_PART, 0, asym, 0, mask, 0, 0);
        event *e = ev_push(s, s->now + 100000 + sim_rng_below(&s->g, 600000), EV_HEAL);
        (void)e;
    } else if (pick < 35) {
        int i = (int)sim_rng_below(&s->g, (uint64_t)s->n);
        node *nd = &s->nodes[i];
        if (!nd->up) return;
        node_crash(s, nd, 1);
        event *e = ev_push(s, s->now + 20000 + sim_rng_below(&s->g, 400000), EV_RESTART);
        e->a = i;
    } else if (pick < 40) {
        /* crash the leader specifically */
        node *nd = find_leader(s);
        if (!nd) return;
        int i = nd->id - 1;
        node_crash(s, nd, 1);
        event *e = ev_push(s, s->now + 20000 + sim_rng_below(&s->g, 300000), EV_RESTART);
        e->a = i;
    } else if (pick < 45) {
        int i = (int)sim_rng_below(&s->g, (uint64_t)s->n);
        if (s->nodes[i].up) s->nodes[i].fail_next_sync = 1;
    } else if (pick < 52) {
        int i = (int)sim_rng_below(&s->g, (uint64_t)s->n);
        s->nodes[i].slow_disk = !s->nodes[i].slow_disk;
    } else if (pick < 60) {
        s->loss_pm = (unsigned)sim_rng_below(&s->g, 200);
        s->dup_pm = (unsigned)sim_rng_below(&s->g, 100);
        s->delay_max_us = 1000 + sim_rng_below(&s->g, sim_rng_chance(&s->g, 200) ? 60000 : 8000);
    } else if (pick < 72) {
        /* membership change through the leader */
        node *ld = find_leader(s);
        if (!ld) return;
        const tn_raft_conf *c = tn_raft_conf_of(ld->r);
        tn_raft_conf_change cc = {0};
        int target = 1 + (int)sim_rng_below(&s->g, (uint64_t)s->n);
        int v = tn_raft_is_voter(ld->r, (uint64_t)target), l = 0;
        for (uint32_t k = 0; k < c->n_learners; k++)
            if (c->learners[k] == (uint64_t)target) l = 1;
        if (l) cc.op = TN_CONF_PROMOTE;
        else if (!v) cc.op = TN_CONF_ADD_LEARNER;
        else if (c->n_voters > (uint32_t)(s->n > 3 ? 3 : 2)) cc.op = TN_CONF_REMOVE;
        else return;
        cc.node = (uint64_t)target;
        int rc = tn_raft_propose_conf(ld->r, &cc, NULL);
        tr(s, TR_CONF, ld->id, cc.op, 0, cc.node, (uint64_t)rc, 0);
        process_ready(s, ld);
    } else if (pick < 80) {
        node *ld = find_leader(s);
        if (!ld) return;
        int target = 1 + (int)sim_rng_below(&s->g, (uint64_t)s->n);
        int rc = tn_raft_transfer_leader(ld->r, (uint64_t)target);
        tr(s, TR_XFER, ld->id, 0, 0, (uint64_t)target, (uint64_t)rc, 0);
        process_ready(s, ld);
    } else if (pick < 90) {
        heal(s);
        s->loss_pm = 10;
        s->dup_pm = 10;
        s->delay_max_us = 3000;
    }
    /* else: quiet period */
}

/* ---------------------------------------------------------------------------------------------- */
/* scenarios: scripted fault schedules for the failure modes Jepsen found in real systems          */


static void isolate(sim *s, int i)
{
    for (int j = 0; j < s->n; j++)
        if (j != i) s->link[i][j] = s->link[j][i] = 0;
    tr(s, TR_PART, 0, 0, 0, 1ull << i, 0, 0);
}

static void script_at(sim *s, uint64_t t, int step)
{
    event *e = ev_push(s, t, EV_SCRIPT);
    e->a = step;
}

/* Sends a scripted client op straight to node i (bypassing leader discovery). */
static void forced_op(sim *s, int ci, int i, lc_kind kind, uint64_t key, int64_t value)
{
    client *c = &s->clients[ci];
    if (c->busy) return;
    c->target = i + 1;
    client_next(s, ci);
    /* client_next chose its own op: overwrite it (the request is read at arrival) */
    lc_op *h = &s->hist[c->op];
    h->kind = kind;
    h->key = key;
    h->arg = value;
    h->arg2 = 0;
}

static void forced_read(sim *s, int ci, int i, uint64_t key) { forced_op(s, ci, i, LC_READ, key, 0); }

static void on_script(sim *s, int step)
{
    node *ld = find_leader(s);
    switch (s->scen) {
    case SC_DEPOSED_READ:
    case SC_DEPOSED_LEASE:
        /* step 0: isolate the leader; step 1: a read to the deposed leader (it must not answer with an
         * old value: with ReadIndex the quorum round cannot complete; with a lease, the lease has run out
         * before anyone else can be elected). */
        if (step == 0) {
            if (!ld) { script_at(s, s->now + 50000, 0); return; }
            s->scen_node = ld->id;
            isolate(s, ld->id - 1);
            s->scen_x = 1;
            script_at(s, s->now + 1000, 1);
            script_at(s, s->now + 600000, 2);
        } else if (step == 1) {
            forced_read(s, 0, s->scen_node - 1, 0);
        } else if (step == 2) {
            forced_read(s, 1, s->scen_node - 1, 0);
            script_at(s, s->now + 300000, 3);
        } else if (step == 3) {
            heal(s);
            s->scen_x = 0;
        }
        break;
    case SC_FAILED_WRITE:
        /* 3 nodes. The leader L has a very slow disk whose next fsync fails; F2 is cut off, so L and F1
         * form the only majority. A client write reaches L, which replicates it to F1 in parallel with its
         * own (doomed) write. L must not count its own unsynced copy: the entry is NOT committed, the
         * client gets no acknowledgement. L's fsync fails -> L crashes and loses the entry. Then F1 is cut
         * off and L (restarted) and F2 elect a leader without the entry; had it been committed, it would
         * now be overwritten (caught by the commit/state-machine checks and by linearizability). */
        if (step == 0) {
            if (!ld) { script_at(s, s->now + 50000, 0); return; }
            s->scen_node = ld->id;
            int f1 = ld->id % s->n, f2 = (ld->id + 1) % s->n; /* 0-based */
            s->scen_x = (uint64_t)f1;
            isolate(s, f2);
            ld->slow_disk = 2;
            ld->fail_next_sync = 1;
            forced_op(s, 0, ld->id - 1, LC_WRITE, 0, 777);
            script_at(s, s->now + 400000, 1);
        } else if (step == 1) {
            heal(s);
            isolate(s, (int)s->scen_x);
            s->nodes[s->scen_node - 1].slow_disk = 0;
            script_at(s, s->now + 600000, 2);
        } else if (step == 2) {
            heal(s);
            forced_op(s, 1, (int)s->scen_x, LC_READ, 0, 0);
        }
        break;
    case SC_VOTE_CRASH:
        /* 3 nodes, pre-vote and check-quorum on. The leader L (term t) is cut off; both followers have a
         * slow disk (30-50 ms per fsync). One of them wins term t+1 with the other's vote; at that instant the voter
         * crashes without its pending writes and restarts, and the winner is cut off while L and the
         * voter reconnect. If the vote grant went out before the vote was durable
         * (--mutate skip_vote_persist), the voter may vote again in term t+1: two leaders in one term. */
        if (step == 0) {
            if (!ld) { script_at(s, s->now + 50000, 0); return; }
            s->f8_x = ld->id - 1;
            s->f8_a = tn_raft_term(ld->r);
            for (int i = 0; i < s->n; i++)
                if (i != s->f8_x) s->nodes[i].slow_disk = 3;
            isolate(s, s->f8_x);
            s->f8_phase = 1;
        }
        break;
    case SC_FIGURE8:
        /* Raft paper, figure 8, on 5 nodes with one entry per message and one message in flight:
         * step 0: leader X and one follower Y are cut off from the rest; X appends A (term t) which only Y
         *         gets. The other three elect Z (term t+1) which is cut off the moment it wins, with its
         *         no-op (term t+1, same index as A) only in its own log (watch phase 1).
         * step 1: X and Y rejoin the two others (Z stays cut off); X or Y wins term t+2 and replicates A.
         *         The moment that leader's commit index covers A, it and the other of X/Y crash (watch
         *         phase 3). A correct leader only commits A together with its own no-op of term t+2, so
         *         the survivors (Z and two others) elect one of the others and A survives. A leader that
         *         committed A by counting replicas of an old term (--mutate commit_old_term) lets Z win
         *         and overwrite A: committed entries differ. */
        if (step == 0) {
            if (!ld) { script_at(s, s->now + 50000, 0); return; }
            int x = ld->id - 1, y = (x + 1) % s->n;
            s->f8_x = x;
            s->f8_y = y;
            for (int i = 0; i < s->n; i++)
                for (int j = 0; j < s->n; j++) {
                    int si = (i == x || i == y), sj = (j == x || j == y);
                    s->link[i][j] = si == sj;
                }
            tr(s, TR_PART, 0, 0, 0, (1ull << x) | (1ull << y), 0, 0);
            cmd c = {CMD_WRITE, NKEYS, NCLIENTS, 0, 0, 0};
            c.req_id = ++s->next_req;
            c.arg = 4242;
            uint8_t b[40];
            size_t n = cmd_encode(&c, b);
            uint64_t idx = 0;
            tn_raft_propose(ld->r, b, n, &idx, NULL);
            s->f8_a = idx;
            process_ready(s, ld);
            s->f8_phase = 1;
        } else if (step == 1) {
            for (int i = 0; i < s->n; i++)
                for (int j = 0; j < s->n; j++) s->link[i][j] = (i != s->f8_z && j != s->f8_z) || i == j;
            tr(s, TR_PART, 0, 0, 0, 1ull << s->f8_z, 0, 0);
            s->f8_phase = 3;
        } else if (step == 2) {
            heal(s);
        }
        break;
    case SC_TRUNCATE:
        /* step 0: cut the leader off (its new entries stay uncommitted in its log); step 1: heal — the
         * old leader must truncate its uncommitted suffix and converge. */
        if (step == 0) {
            if (!ld) { script_at(s, s->now + 50000, 0); return; }
            s->scen_node = ld->id;
            isolate(s, ld->id - 1);
            /* give it something uncommitted to hold */
            for (int k = 0; k < 3; k++) {
                cmd c = {CMD_WRITE, NKEYS, NCLIENTS, 0, 0, 0};
                c.req_id = ++s->next_req;
                c.arg = -1 - k;
                uint8_t b[40];
                size_t n = cmd_encode(&c, b);
                tn_raft_propose(ld->r, b, n, NULL, NULL);
            }
            process_ready(s, ld);
            script_at(s, s->now + 700000, 1);
        } else if (step == 1) {
            heal(s);
        }
        break;
    case SC_CONF_CRASH:
        /* the leader proposes a membership change and crashes right away; then the same again for the
         * new leader with a promotion. Safety must hold and the cluster must converge on one config. */
        if (step == 0 || step == 2) {
            if (!ld) { script_at(s, s->now + 50000, step); return; }
            tn_raft_conf_change cc = {0};
            if (step == 0) {
                cc.op = TN_CONF_REMOVE;
                cc.node = (uint64_t)(ld->id % s->n + 1);
            } else {
                cc.op = TN_CONF_ADD_LEARNER;
                cc.node = s->scen_x;
            }
            int rc = tn_raft_propose_conf(ld->r, &cc, NULL);
            if (rc != TN_SUCCESS) { script_at(s, s->now + 50000, step); return; }
            if (step == 0) s->scen_x = cc.node;
            tr(s, TR_CONF, ld->id, cc.op, 0, cc.node, (uint64_t)rc, 0);
            process_ready(s, ld);
            /* deliver the appends that are in flight, but crash before the entry is committed */
            int i = ld->id - 1;
            event *e = ev_push(s, s->now + 300, EV_SCRIPT);
            e->a = 100 + i;
            script_at(s, s->now + 500000, step + 1);
        } else if (step == 1) {
            script_at(s, s->now + 1000, 2);
        } else if (step == 3) {
            /* promote it back */
            if (!ld) { script_at(s, s->now + 50000, 3); return; }
            tn_raft_conf_change cc = {TN_CONF_PROMOTE, s->scen_x};
            if (tn_raft_propose_conf(ld->r, &cc, NULL) != TN_SUCCESS) { script_at(s, s->now + 50000, 3); return; }
            process_ready(s, ld);
        } else if (step >= 100) {
            int i = step - 100;
            node_crash(s, &s->nodes[i], 1);
            event *e = ev_push(s, s->now + 100000, EV_RESTART);
            e->a = i;
        }
        break;
    default:
        break;
    }
}

/* Called after every step that touched node nd: scenario phases that react the instant a state is reached. */
static void scenario_watch(sim *s, node *nd)
{
    if (s->scen == SC_VOTE_CRASH && s->f8_phase == 1 && nd->up && nd->id - 1 != s->f8_x &&
        tn_raft_role_of(nd->r) == TN_LEADER && tn_raft_term(nd->r) > s->f8_a) {
        /* X won with the vote of Y: Y crashes before its (slow) fsync and restarts at once; X is cut off,
         * the old leader and Y can talk. A vote that was sent before it was durable is now forgotten. */
        int x = nd->id - 1, y = 3 - s->f8_x - x;
        s->f8_phase = 2;
        node_crash(s, &s->nodes[y], 0);
        s->nodes[y].slow_disk = 0;
        event *e = ev_push(s, s->now + 5000, EV_RESTART);
        e->a = y;
        heal(s);
        isolate(s, x);
        return;
    }
    if (s->scen != SC_FIGURE8 || !nd->up) return;
    int i = nd->id - 1;
    if (s->f8_phase == 1 && i != s->f8_x && i != s->f8_y && tn_raft_role_of(nd->r) == TN_LEADER) {
        s->f8_z = i;
        isolate(s, i); /* its appends in flight are dropped at delivery */
        s->f8_phase = 2;
        script_at(s, s->now + 300000, 1);
    } else if (s->f8_phase == 3 && (i == s->f8_x || i == s->f8_y) && tn_raft_role_of(nd->r) == TN_LEADER &&
               s->f8_a && tn_raft_commit(nd->r) >= s->f8_a) {
        s->f8_phase = 4;
        tr(s, TR_NOTE, nd->id, 8, 0, s->f8_a, tn_raft_commit(nd->r), 0);
        node_crash(s, &s->nodes[s->f8_x], 0);
        node_crash(s, &s->nodes[s->f8_y], 0);
        for (int k = 0; k < 2; k++) {
            event *e = ev_push(s, s->now + 800000, EV_RESTART);
            e->a = k ? s->f8_y : s->f8_x;
        }
        script_at(s, s->now + 100000, 2);
    }
}

static int scenario_id(const char *name)
{
    if (!name) return SC_NONE;
    if (!strcmp(name, "deposed_leader_read")) return SC_DEPOSED_READ;
    if (!strcmp(name, "deposed_leader_lease_read")) return SC_DEPOSED_LEASE;
    if (!strcmp(name, "failed_write_leader")) return SC_FAILED_WRITE;
    if (!strcmp(name, "truncate_uncommitted")) return SC_TRUNCATE;
    if (!strcmp(name, "conf_change_leader_crash")) return SC_CONF_CRASH;
    if (!strcmp(name, "figure8")) return SC_FIGURE8;
    if (!strcmp(name, "vote_lost_on_crash")) return SC_VOTE_CRASH;
    return -1;
}

/* After the quiet period (no faults, all nodes restarted, disks fast) the cluster must have a leader and
 * every member must have caught up with what was committed before it: a stuck follower or a lost
 * acknowledgement that is never repaired shows up here. */
static void check_liveness(sim *s)
{
    node *ld = find_leader(s);
    if (!ld) {
        violation(s, "liveness: no leader at the end of the quiet period");
        return;
    }
    for (int i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        const tn_raft_conf *c = tn_raft_conf_of(ld->r);
        int member = tn_raft_is_voter(ld->r, (uint64_t)nd->id);
        for (uint32_t k = 0; k < c->n_learners; k++)
            if (c->learners[k] == (uint64_t)nd->id) member = 1;
        if (!member) continue;
        if (!nd->up) {
            violation(s, "liveness: member n%d is still down at the end", nd->id);
            return;
        }
        if (tn_raft_applied(nd->r) < s->commit_at_quiet) {
            violation(s, "liveness: n%d applied only %" PRIu64 " by the end, %" PRIu64 " was committed when the "
                      "faults stopped", nd->id, tn_raft_applied(nd->r), s->commit_at_quiet);
            return;
        }
    }
}

/* Post-run checks specific to a scenario (beyond the invariants and linearizability). */
static void scenario_verdict(sim *s)
{
    if (s->violated) return;
    switch (s->scen) {
    case SC_DEPOSED_READ:
    case SC_DEPOSED_LEASE: {
        /* checked as the reads are served (see process_ready) and by linearizability */
        break;
    }
    case SC_TRUNCATE:
        if (s->nodes[s->scen_node - 1].truncations == 0)
            violation(s, "scenario truncate_uncommitted: the deposed leader n%d never truncated its "
                      "uncommitted suffix", s->scen_node);
        break;
    case SC_FAILED_WRITE:
        break;
    case SC_CONF_CRASH: {
        /* every live member (per the leader's configuration) converges on the leader's configuration; a
         * node whose removal it never received legitimately keeps its old view (it is no member) */
        node *ld = find_leader(s);
        if (!ld) break;
        const tn_raft_conf *ref = tn_raft_conf_of(ld->r);
        for (int i = 0; i < s->n; i++) {
            node *nd = &s->nodes[i];
            int member = tn_raft_is_voter(ld->r, (uint64_t)nd->id);
            for (uint32_t k = 0; k < ref->n_learners; k++)
                if (ref->learners[k] == (uint64_t)nd->id) member = 1;
            if (!nd->up || !member) continue;
            const tn_raft_conf *c = tn_raft_conf_of(nd->r);
            if (c->n_voters != ref->n_voters || c->n_learners != ref->n_learners)
                violation(s, "scenario conf_change_leader_crash: member n%d ended with %u voters / %u learners, "
                          "the leader n%d with %u / %u", nd->id, c->n_voters, c->n_learners, ld->id,
                          ref->n_voters, ref->n_learners);
        }
        break;
    }
    default:
        break;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* a run                                                                                           */

static void print_tail(sim *s, FILE *f, size_t n)
{
    uint64_t start = s->n_trace > n ? s->n_trace - n : 0;
    if (s->n_trace > TRACE_N && start < s->n_trace - TRACE_N) start = s->n_trace - TRACE_N;
    for (uint64_t i = start; i < s->n_trace; i++) sim_print_rec(f, &s->trace[i % TRACE_N]);
}

static void sim_free(sim *s)
{
    for (size_t i = 0; i < s->n_ev; i++)
        if (s->heap[i].type == EV_DELIVER) free(s->heap[i].p);
    free(s->heap);
    for (int i = 0; i < s->n; i++) {
        node *nd = &s->nodes[i];
        tn_raft_free(nd->r);
        for (size_t k = 0; k < nd->n_held; k++) tn_raft_msg_free(nd->held[k].m);
        for (size_t k = 0; k < nd->n_ops; k++) op_free(&nd->ops[k]);
        free(nd->ops);
        free(nd->held);
        free(nd->reqs);
        free_ents(nd->d_ents, nd->d_n);
        free(nd->d_snap_data);
    }
    free(s->hist);
    free(s->leader_of);
    free(s->c_term);
    free(s->c_hash);
    free(s->c_seen);
    free(s->a_hash);
    free(s->lm);
    tn_wr_free(&s->wr);
}

int sim_run(const sim_opts *o, uint64_t seed, sim_result *res)
{
    sim *s = calloc(1, sizeof *s);
    if (!s) exit(2);
    memset(res, 0, sizeof *res);
    s->o = o;
    s->n = o->nodes;
    sim_rng_seed(&s->g, seed);
    s->scen = scenario_id(o->scenario);
    /* per-seed protocol options: check-quorum on in 3 of 4 runs, pre-vote in 4 of 5, lease reads (which
     * need check-quorum) in a third of those */
    int check_quorum = !sim_rng_chance(&s->g, 250);
    int pre_vote = !sim_rng_chance(&s->g, 200);
    s->lease = o->lease_read >= 0 ? o->lease_read : (int)sim_rng_below(&s->g, 3) == 0;
    if (s->lease) check_quorum = 1;
    int one_by_one = 0;
    s->protected_cfg = pre_vote && check_quorum;
    switch (s->scen) {
    case SC_DEPOSED_LEASE: s->lease = 1; check_quorum = 1; break;
    case SC_DEPOSED_READ: s->lease = 0; check_quorum = 0; break; /* the deposed leader keeps believing */
    case SC_FAILED_WRITE: s->n = 3; s->lease = 0; break;
    case SC_FIGURE8: s->n = 5; s->lease = 0; one_by_one = 1; pre_vote = 1; check_quorum = 1; break;
    case SC_VOTE_CRASH: s->n = 3; s->lease = 0; pre_vote = 1; check_quorum = 1; break;
    default: break;
    }
    s->loss_pm = 10;
    s->dup_pm = 10;
    s->delay_max_us = 3000;
    s->next_proc = NCLIENTS;
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->n; j++) s->link[i][j] = 1;
    for (int i = 0; i < s->n; i++) {
        tn_raft_config *c = &s->cfg[i];
        memset(c, 0, sizeof *c);
        c->id = (uint64_t)i + 1;
        for (int j = 0; j < s->n; j++) c->conf.voters[c->conf.n_voters++] = (uint64_t)j + 1;
        c->election_ticks = ELECTION_TICKS;
        c->heartbeat_ticks = HEARTBEAT_TICKS;
        c->max_inflight_msgs = 1 + (uint32_t)sim_rng_below(&s->g, 8);
        c->max_inflight_bytes = sim_rng_chance(&s->g, 500) ? 512 : 0;
        c->max_entries_per_msg = 1 + (uint32_t)sim_rng_below(&s->g, 16);
        c->max_bytes_per_msg = sim_rng_chance(&s->g, 500) ? 128 : 0;
        if (one_by_one) c->max_inflight_msgs = c->max_entries_per_msg = 1;
        c->pre_vote = pre_vote;
        c->check_quorum = check_quorum;
        c->lease_read = s->lease;
        c->lease_drift_ticks = LEASE_DRIFT;
        c->mutate = o->mutate;
        node *nd = &s->nodes[i];
        nd->id = i + 1;
        /* clocks tick at different speeds: +-10% */
        nd->tick_us = TICK_US * (900 + sim_rng_below(&s->g, 201)) / 1000;
    }
    for (int i = 0; i < s->n; i++) node_boot(s, &s->nodes[i], 1);
    for (int ci = 0; ci < NCLIENTS; ci++) {
        s->clients[ci].proc = ci;
        s->clients[ci].target = 1 + (int)sim_rng_below(&s->g, (uint64_t)s->n);
        client_schedule(s, ci);
    }
    if (s->scen == SC_NONE) {
        if (o->faults) ev_push(s, 200000 + sim_rng_below(&s->g, 200000), EV_NEMESIS);
    } else {
        script_at(s, 400000, 0);
    }
    uint64_t end = o->duration_us;
    uint64_t quiet = end - end / 4; /* the last quarter has no new faults: let the cluster heal */
    while (s->n_ev && !s->violated) {
        event e = ev_pop(s);
        if (e.t > end) {
            if (e.type == EV_DELIVER) free(e.p);
            break;
        }
        s->now = e.t;
        s->steps++;
        if (o->max_steps && s->steps > o->max_steps) {
            if (e.type == EV_DELIVER) free(e.p);
            break;
        }
        node *touched = NULL;
        switch (e.type) {
        case EV_TICK: {
            node *nd = &s->nodes[e.a];
            if (!nd->up || nd->epoch != e.x) break;
            tn_raft_tick(nd->r);
            process_ready(s, nd);
            event *n = ev_push(s, s->now + nd->tick_us, EV_TICK);
            n->a = e.a;
            n->x = nd->epoch;
            touched = nd;
            break;
        }
        case EV_DELIVER: {
            node *nd = &s->nodes[e.b];
            if (nd->up && s->link[e.a][e.b]) {
                tn_raft_msg *m;
                if (tn_raft_msg_decode(e.p, e.len, &m) != 0) {
                    violation(s, "message from n%d to n%d failed to decode", e.a + 1, e.b + 1);
                } else {
                    tr(s, TR_DELIVER, nd->id, (int)m->from, m->type, m->term, m->index, m->reject);
                    tn_raft_step(nd->r, m);
                    tn_raft_msg_free(m);
                    process_ready(s, nd);
                    touched = nd;
                }
            }
            free(e.p);
            break;
        }
        case EV_SYNC_DONE: {
            node *nd = &s->nodes[e.a];
            if (!nd->up || nd->epoch != e.x) break;
            on_sync_done(s, nd);
            touched = nd->up ? nd : NULL;
            break;
        }
        case EV_CLIENT_NEXT:
            if (s->now < end - CLIENT_TIMEOUT_US) client_next(s, e.a);
            break;
        case EV_CLIENT_TIMEOUT:
            on_client_timeout(s, e.a, e.x);
            break;
        case EV_REQ_ARRIVE:
            on_request(s, e.a, &s->nodes[e.b], e.x, (size_t)e.y);
            touched = s->nodes[e.b].up ? &s->nodes[e.b] : NULL;
            break;
        case EV_RESP_ARRIVE:
            on_response(s, e.a, e.x, (lc_outcome)e.b, (int64_t)e.y, (uint64_t)e.len);
            break;
        case EV_NEMESIS:
            if (s->now < quiet) {
                nemesis(s);
                ev_push(s, s->now + 50000 + sim_rng_below(&s->g, 250000), EV_NEMESIS);
            } else {
                s->commit_at_quiet = s->max_commit;
                heal(s);
                s->loss_pm = 0;
                s->dup_pm = 0;
                s->delay_max_us = 2000;
                for (int i = 0; i < s->n; i++) {
                    s->nodes[i].slow_disk = 0;
                    s->nodes[i].fail_next_sync = 0;
                    if (!s->nodes[i].up) {
                        event *r = ev_push(s, s->now + 1000, EV_RESTART);
                        r->a = i;
                    }
                }
            }
            break;
        case EV_RESTART: {
            node *nd = &s->nodes[e.a];
            if (!nd->up) node_boot(s, nd, 0);
            touched = nd->up ? nd : NULL;
            break;
        }
        case EV_HEAL:
            heal(s);
            break;
        case EV_SCRIPT:
            on_script(s, e.a);
            break;
        default:
            break;
        }
        if (touched && touched->up) check_node(s, touched);
        if (touched && s->scen) scenario_watch(s, touched);
        if (e.type == EV_NEMESIS || e.type == EV_SCRIPT)
            for (int i = 0; i < s->n; i++)
                if (s->nodes[i].up) check_node(s, &s->nodes[i]);
    }
    /* close the history: ops still waiting have an unknown outcome */
    for (int ci = 0; ci < NCLIENTS; ci++) {
        client *c = &s->clients[ci];
        if (!c->busy) continue;
        lc_op *h = &s->hist[c->op];
        h->outcome = h->kind == LC_READ ? LC_FAIL : LC_UNKNOWN;
        h->complete = s->now + 1;
    }
    scenario_verdict(s);
    /* without pre-vote and check-quorum a removed server may legitimately disrupt elections forever
     * (Raft thesis 4.2.3), so liveness is only required of the recommended configuration */
    if (s->scen == SC_NONE && o->faults && !s->violated && o->duration_us >= 2000000 && s->protected_cfg &&
        (!o->max_steps || s->steps <= o->max_steps))
        check_liveness(s);
    res->lincheck = LC_LINEARIZABLE;
    if (!s->violated && s->n_hist) {
        char why[256] = "";
        lc_verdict v = lc_check(s->hist, s->n_hist, 0, 0, why, sizeof why);
        res->lincheck = v;
        if (v == LC_VIOLATION) violation(s, "linearizability: %s", why);
    }
    res->violated = s->violated;
    snprintf(res->why, sizeof res->why, "%s", s->why);
    res->steps = s->steps;
    res->nodes = s->n;
    res->ops = s->n_hist;
    res->commits = s->max_commit;
    res->elections = s->elections;
    if (s->violated && o->print_trace && !o->verbose) print_tail(s, o->out, 60);
    if (s->violated && o->verbose) {
        static const char *const kinds[] = {"write", "read", "cas"};
        for (size_t i = 0; i < s->n_hist; i++) {
            const lc_op *h = &s->hist[i];
            fprintf(o->out, "op %zu: client %d key %" PRIu64 " %s arg=%" PRId64 " arg2=%" PRId64 " -> %" PRId64
                    " outcome=%d [%" PRIu64 "..%" PRIu64 "]\n", i, h->client, h->key, kinds[h->kind], h->arg,
                    h->arg2, h->result, (int)h->outcome, h->invoke, h->complete);
        }
    }
    sim_free(s);
    free(s);
    return res->violated;
}
