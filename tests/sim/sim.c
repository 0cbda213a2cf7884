/* sim.c — one simulated run: the cluster (the Raft test driver in timed mode: nodes with simulated disks, a
 * lossy network, one clock), the replicated register map, the clients and their history, the event loop.
 * The nemesis and the named scenarios are in sim_scenario.c. See sim.h. */
#include "sim_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tn_code.h"

const char *const tn_sim_scenarios[] = {"deposed_leader_read", "deposed_leader_lease_read", "failed_write_leader",
                                        "truncate_uncommitted", "conf_change_leader_crash", "figure8",
                                        "vote_lost_on_crash", NULL};

uint64_t tn_sim_now(sim *s) { return tn_rt_now(s->c); }

void tn_sim_set_net(sim *s, unsigned loss_pm, unsigned dup_pm, uint64_t delay_max_us)
{
    s->loss_pm = loss_pm;
    s->delay_max_us = delay_max_us;
    tn_rt_set_net(s->c, loss_pm, dup_pm, delay_max_us);
}

/* Disk speed of node i (0-based): 0 normal, 1 slow (+5-45 ms per fsync), 2 very slow (+100-200 ms),
 * 3 a little slow (+30-50 ms). */
void tn_sim_set_slow(sim *s, int i, int level)
{
    static const uint64_t extra[4][2] = {{0, 0}, {5000, 40000}, {100000, 100000}, {30000, 20000}};
    s->nodes[i].slow_disk = level;
    tn_rt_set_disk_delay(s->c, i + 1, extra[level][0], extra[level][1]);
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

/* ---------------------------------------------------------------------------------------------- */
/* trace records of client traffic                                                                */

static void print_client_rec(void *ctx, FILE *f, const tn_rt_trace_rec *t)
{
    (void)ctx;
    double ms = (double)t->t / 1000.0;
    if (t->kind == TR_REQ)
        fprintf(f, "%10.3f client%d -> n%d req=%" PRIu64 " kind=%d key=%" PRIu64 " arg=%" PRId64 "\n", ms, t->a,
                t->node, t->x, t->b, t->y, (int64_t)t->z);
    else if (t->kind == TR_RESP)
        fprintf(f, "%10.3f client%d <- req=%" PRIu64 " outcome=%d result=%" PRId64 "\n", ms, t->a, t->x, t->b,
                (int64_t)t->y);
}

/* ---------------------------------------------------------------------------------------------- */
/* state machine                                                                                   */

size_t tn_sim_cmd_encode(const cmd *c, uint8_t *b)
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
static void respond(sim *s, int id, int client_i, uint64_t req_id, lc_outcome outcome, int64_t result)
{
    if (tn_rt_rng_chance(s->g, s->loss_pm)) return;
    tn_rt_event *e = tn_rt_at(s->c, tn_sim_now(s) + 200 + tn_rt_rng_below(s->g, s->delay_max_us), EV_RESP_ARRIVE);
    e->a = client_i;
    e->b = (int)outcome;
    e->x = req_id;
    e->y = (uint64_t)result;
    e->len = tn_raft_leader(tn_rt_raft(s->c, id)); /* leader hint */
}

static pending_req *req_find(sim_node *nd, uint64_t id, size_t *at)
{
    for (size_t i = 0; i < nd->n_reqs; i++)
        if (nd->reqs[i].req_id == id) {
            *at = i;
            return &nd->reqs[i];
        }
    return NULL;
}

static void req_del(sim_node *nd, size_t at) { nd->reqs[at] = nd->reqs[--nd->n_reqs]; }

/* driver hook: a committed entry (the driver has checked it against what other nodes applied there) */
static void sm_apply(void *ctx, tn_rt *c, int id, const tn_raft_entry *e)
{
    sim *s = ctx;
    sim_node *nd = &s->nodes[id - 1];
    if (e->type != TN_ENTRY_NORMAL) return;
    cmd cm;
    if (cmd_decode(e->data, e->len, &cm) != 0) {
        tn_rt_fail(c, "n%d applied an undecodable command at %" PRIu64, id, e->index);
        return;
    }
    int64_t result = 0;
    if (cm.req_id < nd->sm.last_req[cm.client]) return; /* stale duplicate of a superseded request */
    if (cm.req_id == nd->sm.last_req[cm.client]) {
        result = nd->sm.last_res[cm.client]; /* duplicate: answer with the first result, change nothing */
    } else if (cm.kind == CMD_WRITE) {
        nd->sm.kv[cm.key] = cm.arg;
    } else if (cm.kind == CMD_CAS) {
        if (nd->sm.kv[cm.key] == cm.arg) {
            nd->sm.kv[cm.key] = cm.arg2;
            result = 1;
        }
    }
    if (cm.req_id > nd->sm.last_req[cm.client]) {
        nd->sm.last_req[cm.client] = cm.req_id;
        nd->sm.last_res[cm.client] = result;
    }
    size_t at;
    pending_req *pr = req_find(nd, cm.req_id, &at);
    if (pr) {
        respond(s, id, pr->client, cm.req_id, LC_OK, result);
        req_del(nd, at);
    }
}

/* driver hook: a read state — answer the client waiting for it */
static void sm_read(void *ctx, tn_rt *c, int id, const tn_raft_read_state *rs)
{
    sim *s = ctx;
    sim_node *nd = &s->nodes[id - 1];
    size_t at;
    pending_req *pr = req_find(nd, rs->ctx, &at);
    if (!pr) return;
    if (rs->ok) {
        /* the key travels in the pending record's kind field's high bits */
        int key = pr->kind >> 4;
        if ((s->scen == SC_DEPOSED_READ || s->scen == SC_DEPOSED_LEASE) && id == s->scen_node && s->scen_x) {
            tn_raft *r = tn_rt_raft(c, id);
            for (int k = 1; k <= s->n; k++) {
                tn_raft *o = tn_rt_raft(c, k);
                if (k != id && o && tn_raft_role_of(o) == TN_LEADER && tn_raft_term(o) > tn_raft_term(r))
                    tn_rt_fail(c, "deposed leader n%d served a read while n%d leads term %" PRIu64, id, k,
                               tn_raft_term(o));
            }
        }
        respond(s, id, pr->client, rs->ctx, LC_OK, nd->sm.kv[key]);
    } else {
        respond(s, id, pr->client, rs->ctx, LC_FAIL, 0);
    }
    req_del(nd, at);
}

/* driver hook: boot or snapshot install */
static void sm_restore(void *ctx, tn_rt *c, int id, const uint8_t *data, size_t len)
{
    (void)c;
    sim *s = ctx;
    sim_node *nd = &s->nodes[id - 1];
    memset(&nd->sm, 0, sizeof nd->sm);
    if (len == sizeof nd->sm) memcpy(&nd->sm, data, len);
}

/* driver hook: compaction snapshots the register map */
static const void *sm_snapshot(void *ctx, tn_rt *c, int id, size_t *len)
{
    (void)c;
    sim *s = ctx;
    *len = sizeof s->nodes[id - 1].sm;
    return &s->nodes[id - 1].sm;
}

/* driver hook: a crashed node forgets the requests it was to answer */
static void sm_crash(void *ctx, tn_rt *c, int id)
{
    (void)c;
    sim *s = ctx;
    s->nodes[id - 1].n_reqs = 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* clients                                                                                         */

static void hist_record_done(sim *s, size_t op, lc_outcome outcome, int64_t result)
{
    lc_op *h = &s->hist[op];
    h->outcome = outcome;
    h->result = result;
    h->complete = tn_sim_now(s);
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
    uint64_t key = tn_rt_rng_below(s->g, NKEYS);
    unsigned pick = (unsigned)tn_rt_rng_below(s->g, 100);
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
    h->invoke = tn_sim_now(s);
    h->complete = 0;
    if (c->target < 1 || c->target > s->n) c->target = 1 + (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
    tn_rt_event *e = tn_rt_at(s->c, tn_sim_now(s) + 200 + tn_rt_rng_below(s->g, s->delay_max_us), EV_REQ_ARRIVE);
    e->a = ci;
    e->b = c->target - 1;
    e->x = c->req_id;
    e->y = c->op;
    tn_rt_trace(s->c, TR_REQ, c->target, ci, kind, c->req_id, key, (uint64_t)h->arg);
    e = tn_rt_at(s->c, tn_sim_now(s) + CLIENT_TIMEOUT_US, EV_CLIENT_TIMEOUT);
    e->a = ci;
    e->x = c->req_id;
}

static void client_schedule(sim *s, int ci)
{
    if (s->scen && ci < 2) return; /* scenario clients 0 and 1 only send scripted reads */
    tn_rt_event *e = tn_rt_at(s->c, tn_sim_now(s) + 1000 + tn_rt_rng_below(s->g, 40000), EV_CLIENT_NEXT);
    e->a = ci;
}

/* Sends a scripted client op straight to node i (0-based, bypassing leader discovery). */
void tn_sim_forced_op(sim *s, int ci, int i, lc_kind kind, uint64_t key, int64_t value)
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

static void on_request(sim *s, int ci, int id, uint64_t req_id, size_t op)
{
    tn_raft *r = tn_rt_raft(s->c, id);
    if (!r) return;
    sim_node *nd = &s->nodes[id - 1];
    const lc_op *h = &s->hist[op];
    if (h->kind == LC_READ) {
        int rc = tn_raft_read_index(r, req_id);
        if (rc != TN_SUCCESS) {
            respond(s, id, ci, req_id, LC_FAIL, 0);
            return;
        }
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
        size_t n = tn_sim_cmd_encode(&c, b);
        int rc = tn_raft_propose(r, b, n, NULL, NULL);
        if (rc != TN_SUCCESS) {
            respond(s, id, ci, req_id, LC_FAIL, 0);
            return;
        }
        nd->reqs = grow(nd->reqs, &nd->cap_reqs, nd->n_reqs + 1, sizeof *nd->reqs);
        nd->reqs[nd->n_reqs++] = (pending_req){req_id, ci, c.kind};
    }
    tn_rt_process(s->c, id);
}

static void on_response(sim *s, int ci, uint64_t req_id, lc_outcome outcome, int64_t result, uint64_t hint)
{
    client *c = &s->clients[ci];
    if (!c->busy || c->req_id != req_id) return; /* late answer to an op already timed out */
    lc_op *h = &s->hist[c->op];
    hist_record_done(s, c->op, outcome, result);
    tn_rt_trace(s->c, TR_RESP, 0, ci, outcome, req_id, (uint64_t)result, 0);
    if (outcome == LC_OK && h->kind == LC_READ) c->last_seen[h->key] = result;
    if (outcome == LC_OK && h->kind != LC_READ)
        c->last_seen[h->key] = h->kind == LC_WRITE ? h->arg : (result ? h->arg2 : c->last_seen[h->key]);
    if (outcome == LC_FAIL) {
        if (hint >= 1 && hint <= (uint64_t)s->n) c->target = (int)hint;
        else c->target = 1 + (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
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
        hist_record_done(s, c->op, LC_FAIL, 0); /* a read has no effect: drop it */
    } else {
        hist_record_done(s, c->op, LC_UNKNOWN, 0);
        c->proc = s->next_proc++;  /* the unknown op may still take effect: a new process continues */
    }
    tn_rt_trace(s->c, TR_RESP, 0, ci, h->outcome, req_id, 0, 1);
    c->target = 1 + (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
    c->busy = 0;
    client_schedule(s, ci);
}

/* ---------------------------------------------------------------------------------------------- */
/* a run                                                                                           */

/* The last quarter of a random run: no new faults, every link healed, every disk fast, every node
 * restarted; what is committed now must reach every member (checked at the end). */
static void quiet_period(sim *s)
{
    s->commit_at_quiet = tn_rt_max_commit(s->c);
    tn_rt_heal(s->c);
    tn_sim_set_net(s, 0, 0, 2000);
    for (int i = 0; i < s->n; i++) {
        tn_sim_set_slow(s, i, 0);
        tn_rt_fail_next_sync(s->c, i + 1, 0);
        if (!tn_rt_up(s->c, i + 1)) tn_rt_restart_at(s->c, i + 1, tn_sim_now(s) + 1000);
    }
}

/* Creates the cluster: per-seed protocol options, per-node batching and clock speed, then boots it. */
static void sim_setup(sim *s, uint64_t seed)
{
    const sim_opts *o = s->o;
    tn_rt_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.n = s->n = o->nodes;
    ro.timed = 1;
    ro.disk = TN_RT_DISK_TIMED;
    ro.codec = 1;
    ro.check = 1;
    ro.trace = 1;
    ro.verbose = o->verbose;
    ro.out = o->out;
    ro.seed = seed;
    ro.compact_every = COMPACT_EVERY;
    ro.disk_min_us = 100;
    ro.disk_spread_us = 1500;
    ro.failstop_min_us = 50000;
    ro.failstop_spread_us = 200000;
    ro.hooks = (tn_rt_hooks){.ctx = s, .apply = sm_apply, .read = sm_read, .restore = sm_restore,
                             .snapshot = sm_snapshot, .crash = sm_crash, .print = print_client_rec};
    s->scen = tn_sim_scenario_id(o->scenario);
    /* the scenarios that fix the cluster size do so before the cluster exists */
    if (s->scen == SC_FAILED_WRITE || s->scen == SC_VOTE_CRASH) ro.n = s->n = 3;
    if (s->scen == SC_FIGURE8) ro.n = s->n = 5;
    s->c = tn_rt_new(&ro);
    if (!s->c) exit(2);
    s->g = tn_rt_rng_of(s->c);
    /* per-seed protocol options: check-quorum on in 3 of 4 runs, pre-vote in 4 of 5, lease reads (which
     * need check-quorum) in a third of those */
    int check_quorum = !tn_rt_rng_chance(s->g, 250);
    int pre_vote = !tn_rt_rng_chance(s->g, 200);
    s->lease = o->lease_read >= 0 ? o->lease_read : (int)tn_rt_rng_below(s->g, 3) == 0;
    if (s->lease) check_quorum = 1;
    int one_by_one = 0;
    s->protected_cfg = pre_vote && check_quorum;
    switch (s->scen) {
    case SC_DEPOSED_LEASE: s->lease = 1; check_quorum = 1; break;
    case SC_DEPOSED_READ: s->lease = 0; check_quorum = 0; break; /* the deposed leader keeps believing */
    case SC_FAILED_WRITE: s->lease = 0; break;
    case SC_FIGURE8: s->lease = 0; one_by_one = 1; pre_vote = 1; check_quorum = 1; break;
    case SC_VOTE_CRASH: s->lease = 0; pre_vote = 1; check_quorum = 1; break;
    default: break;
    }
    tn_sim_set_net(s, 10, 10, 3000);
    s->next_proc = NCLIENTS;
    for (int i = 0; i < s->n; i++) {
        tn_raft_config *c = tn_rt_cfg(s->c, i + 1);
        c->election_ticks = ELECTION_TICKS;
        c->heartbeat_ticks = HEARTBEAT_TICKS;
        c->max_inflight_msgs = 1 + (uint32_t)tn_rt_rng_below(s->g, 8);
        c->max_inflight_bytes = tn_rt_rng_chance(s->g, 500) ? 512 : 0;
        c->max_entries_per_msg = 1 + (uint32_t)tn_rt_rng_below(s->g, 16);
        c->max_bytes_per_msg = tn_rt_rng_chance(s->g, 500) ? 128 : 0;
        if (one_by_one) c->max_inflight_msgs = c->max_entries_per_msg = 1;
        c->pre_vote = pre_vote;
        c->check_quorum = check_quorum;
        c->lease_read = s->lease;
        c->lease_drift_ticks = LEASE_DRIFT;
        c->mutate = o->mutate;
        /* clocks tick at different speeds: +-10% */
        tn_rt_set_tick(s->c, i + 1, TICK_US * (900 + tn_rt_rng_below(s->g, 201)) / 1000);
    }
    tn_rt_start(s->c);
}

static void sim_free(sim *s)
{
    tn_rt_free(s->c);
    for (int i = 0; i < s->n; i++) free(s->nodes[i].reqs);
    free(s->hist);
}

static void print_history(sim *s, FILE *f)
{
    static const char *const kinds[] = {"write", "read", "cas"};
    for (size_t i = 0; i < s->n_hist; i++) {
        const lc_op *h = &s->hist[i];
        fprintf(f, "op %zu: client %d key %" PRIu64 " %s arg=%" PRId64 " arg2=%" PRId64 " -> %" PRId64
                " outcome=%d [%" PRIu64 "..%" PRIu64 "]\n", i, h->client, h->key, kinds[h->kind], h->arg,
                h->arg2, h->result, (int)h->outcome, h->invoke, h->complete);
    }
}

int tn_sim_run(const sim_opts *o, uint64_t seed, sim_result *res)
{
    sim *s = calloc(1, sizeof *s);
    if (!s) exit(2);
    memset(res, 0, sizeof *res);
    s->o = o;
    sim_setup(s, seed);
    tn_rt *c = s->c;
    for (int ci = 0; ci < NCLIENTS; ci++) {
        s->clients[ci].proc = ci;
        s->clients[ci].target = 1 + (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
        client_schedule(s, ci);
    }
    if (s->scen == SC_NONE) {
        if (o->faults) tn_rt_at(c, 200000 + tn_rt_rng_below(s->g, 200000), EV_NEMESIS);
    } else {
        tn_sim_script_at(s, 400000, 0);
    }
    uint64_t end = o->duration_us;
    uint64_t quiet = end - end / 4; /* the last quarter has no new faults: let the cluster heal */
    while (tn_rt_pending(c) && !tn_rt_failed(c)) {
        tn_rt_event e;
        tn_rt_next(c, &e);
        if (e.t > end) {
            tn_rt_discard(c, &e);
            break;
        }
        tn_rt_set_now(c, e.t);
        s->steps++;
        if (o->max_steps && s->steps > o->max_steps) {
            tn_rt_discard(c, &e);
            break;
        }
        int touched = 0;
        switch (e.type) {
        case EV_CLIENT_NEXT:
            if (e.t < end - CLIENT_TIMEOUT_US) client_next(s, e.a);
            break;
        case EV_CLIENT_TIMEOUT:
            on_client_timeout(s, e.a, e.x);
            break;
        case EV_REQ_ARRIVE:
            on_request(s, e.a, e.b + 1, e.x, (size_t)e.y);
            touched = tn_rt_up(c, e.b + 1) ? e.b + 1 : 0;
            break;
        case EV_RESP_ARRIVE:
            on_response(s, e.a, e.x, (lc_outcome)e.b, (int64_t)e.y, (uint64_t)e.len);
            break;
        case EV_NEMESIS:
            if (e.t < quiet) {
                tn_sim_nemesis(s);
                tn_rt_at(c, e.t + 50000 + tn_rt_rng_below(s->g, 250000), EV_NEMESIS);
            } else {
                quiet_period(s);
            }
            break;
        case EV_HEAL:
            tn_rt_heal(c);
            break;
        case EV_SCRIPT:
            tn_sim_on_script(s, e.a);
            break;
        default:
            touched = tn_rt_dispatch(c, &e); /* deliveries, ticks, fsyncs, restarts */
            break;
        }
        if (touched && tn_rt_up(c, touched)) tn_rt_check(c, touched);
        if (touched && s->scen) tn_sim_scenario_watch(s, touched);
        if (e.type == EV_NEMESIS || e.type == EV_SCRIPT)
            for (int i = 1; i <= s->n; i++) tn_rt_check(c, i);
    }
    /* close the history: ops still waiting have an unknown outcome */
    for (int ci = 0; ci < NCLIENTS; ci++) {
        client *cl = &s->clients[ci];
        if (!cl->busy) continue;
        lc_op *h = &s->hist[cl->op];
        h->outcome = h->kind == LC_READ ? LC_FAIL : LC_UNKNOWN;
        h->complete = tn_sim_now(s) + 1;
    }
    tn_sim_scenario_verdict(s);
    /* without pre-vote and check-quorum a removed server may legitimately disrupt elections forever
     * (Raft thesis 4.2.3), so liveness is only required of the recommended configuration */
    if (s->scen == SC_NONE && o->faults && !tn_rt_failed(c) && o->duration_us >= 2000000 && s->protected_cfg &&
        (!o->max_steps || s->steps <= o->max_steps))
        tn_sim_check_liveness(s);
    res->lincheck = LC_LINEARIZABLE;
    if (!tn_rt_failed(c) && s->n_hist) {
        char why[256] = "";
        lc_verdict v = lc_check(s->hist, s->n_hist, 0, 0, why, sizeof why);
        res->lincheck = v;
        if (v == LC_VIOLATION) tn_rt_fail(c, "linearizability: %s", why);
    }
    res->violated = tn_rt_failed(c);
    snprintf(res->why, sizeof res->why, "%s", tn_rt_why(c));
    res->steps = s->steps;
    res->nodes = s->n;
    res->ops = s->n_hist;
    res->commits = tn_rt_max_commit(c);
    res->elections = tn_rt_elections(c);
    if (res->violated && o->print_trace && !o->verbose) tn_rt_trace_tail(c, o->out, 60);
    if (res->violated && o->verbose) print_history(s, o->out);
    sim_free(s);
    free(s);
    return res->violated;
}
