/* script.c — the Raft scenario interpreter (see script.h).
 *
 * A scenario is a text file, one command per line; `#` starts a comment, blank lines are ignored. It runs a
 * cluster of the Raft test driver in step mode: no clock, sent messages wait in a queue until delivered,
 * election timeouts are fixed (election + id: node 1 times out first). After every command each node's
 * Readys are handled, so what a node sends is queued and what it committed is applied. Every message goes
 * through the codec. The driver's invariant checks run all along.
 *
 * Words used below: N, A, B are node ids; NODES is `all` or a comma list (1,2,3); FILTER selects queued
 * messages: an optional `A>B` (either side may be `*`) then an optional message type (app, app-resp, vote,
 * vote-resp, prevote, prevote-resp, hb, hb-resp, snap, read, read-resp, prop, timeout-now). A command that
 * calls the core may end with `=> CODE` (a result code name such as NOT_LEADER); without it the call must
 * succeed.
 *
 * Setting up (first command: nodes)
 *   nodes N [key=value...]   N nodes, booted fresh. Keys: voters=1,2,3 learners=4 (initial configuration;
 *                            default: all voters), election=10 heartbeat=2 inflight=4 batch=64 (entries per
 *                            message) msgbytes=0 inflightbytes=0 prevote=1 checkquorum=1 lease=0 drift=3,
 *                            disk=auto|manual|none (auto: durable after every Ready; manual: only at
 *                            `sync`), mutate=NAME (a tn_raft_mutations rule breaker, for checking the checker)
 *   restore N [log=T,TxK,...] [term=T] [vote=V] [commit=C]
 *                            node N restarts from this durable state: entries of terms T (K of them with
 *                            TxK) from index 1, empty data; hard state term/vote/commit
 * Time and network
 *   tick NODES [xK] [hold]   K times (default 1): a tick on each listed node, then settle (hold: don't)
 *   elect N                  tick everyone out of the start-up lease, then N until it leads (settling)
 *   settle                   deliver every message, round by round, until none is left
 *   deliver [FILTER]         step the matching queued messages into their nodes, in send order
 *   drop [FILTER]            discard the matching queued messages
 *   isolate N | connect N    cut every link of N / bring them all back
 *   cut A B | cut A>B        cut both directions / one direction; link A B | link A>B: the reverse
 *   partition 1 2 | 3 4 5    links inside each group up, across down (every node in some group)
 *   heal                     every link up
 * Clients, admin, faults
 *   propose N DATA [xK]      K proposals of DATA on N (a follower forwards them)
 *   conf N OP ID             membership change on N: add-voter, add-learner, promote, remove
 *   transfer N TO            leader transfer
 *   read N CTX               ReadIndex request with context CTX
 *   compact N [=> fail]      N snapshots its state machine at its applied index
 *   crash N [keep]           N crashes; its unsynced writes are lost (keep: they reached the disk)
 *   restart N                N restarts from its disk
 *   sync NODES               manual disk: everything written so far becomes durable
 *   fail-sync N              N's next sync fails: it crashes instead (fail-stop)
 *   disk auto|manual         from now on, writes are durable after every Ready / only at `sync`
 * Expectations
 *   expect FIELD NODES OP V  OP: = != < <= > >=; V a number or @N (the same field of node N). FIELD: term,
 *                            commit, applied, last, first, stable, snapshot (index), lead (the leader it
 *                            knows), voters, learners (counts in its configuration), truncations, snapshots
 *                            (installed), reads (read states received), state (its state machine: a hash of
 *                            the normal entries it applied), durable (last index on its disk)
 *   expect role NODES ROLE   follower, pre-candidate, candidate, leader or down
 *   expect leader N|none     the up leader of the highest term
 *   expect member N ID voter|learner|none    in N's configuration
 *   expect entry N IDX term=T [data=D] | expect entry N IDX none
 *   expect read N CTX ok|refused|none [index=I]
 *   expect msgs [FILTER] [reject=R] [index=I] [hint=H] [term=T] [entries=K] [commit=C] OP V
 *                            how many queued messages match
 *   expect violation [WORD]  the invariant checks found a violation (whose text contains WORD)
 *   expect ok                no violation so far
 *   print | trace [K]        show the nodes / the last K trace records (debugging)
 *
 * The trace's clock is the script's line number (line 12 shows as 12.000), so a failure's trace tail points
 * back into the file.
 */
#include "script.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "tn_code.h"

#define MAXTOK 32

/* the interpreter's own trace records */
enum {
    TR_LINK = TN_RT_TR_USER, /* a = up, b = both directions, x = from, y = to */
    TR_GROUPS                /* x: 4 bits per node (node 1 lowest), its group in a partition */
};

/* the scenarios' state machine: how many normal entries a node applied and a hash of their data */
typedef struct sc_sm {
    uint64_t count, hash;
} sc_sm;

typedef struct sc {
    const char *name;
    int line;
    FILE *out;
    int verbose;
    char *err;
    size_t errlen;
    tn_rt *c;
    sc_sm sm[TN_RT_MAX_NODES + 1];
    int violation_seen; /* an `expect violation` accepted the current violation */
    char *tok[MAXTOK];
    int ntok;
} sc;

__attribute__((format(printf, 2, 3))) static int fail(sc *s, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(s->err, s->errlen, "%s:%d: %s", s->name, s->line, msg);
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* driver hooks: the state machine                                                                 */

static void sm_apply(void *ctx, tn_rt *c, int id, const tn_raft_entry *e)
{
    (void)c;
    sc *s = ctx;
    if (e->type != TN_ENTRY_NORMAL) return;
    sc_sm *m = &s->sm[id];
    m->count++;
    uint64_t h = m->hash ^ 1469598103934665603ull;
    for (uint32_t i = 0; i < e->len; i++) h = (h ^ e->data[i]) * 1099511628211ull;
    m->hash = (h * 31) ^ e->len;
}

static void print_rec(void *ctx, FILE *f, const tn_rt_trace_rec *t)
{
    (void)ctx;
    double ms = (double)t->t / 1000.0;
    if (t->kind == TR_LINK) {
        fprintf(f, "%10.3f %s n%" PRIu64 " %s n%" PRIu64 "\n", ms, t->a ? "LINK" : "CUT", t->x,
                t->b ? "<->" : "->", t->y);
    } else if (t->kind == TR_GROUPS) {
        fprintf(f, "%10.3f PARTITION", ms);
        for (unsigned g = 1; g < 16; g++) {
            int any = 0;
            for (unsigned id = 1; id <= 16; id++) {
                if (((t->x >> (4 * (id - 1))) & 15) != g) continue;
                fprintf(f, "%s %u", !any && g > 1 ? " |" : "", id);
                any = 1;
            }
        }
        fputc('\n', f);
    }
}

static void sm_restore(void *ctx, tn_rt *c, int id, const uint8_t *data, size_t len)
{
    (void)c;
    sc *s = ctx;
    memset(&s->sm[id], 0, sizeof s->sm[id]);
    if (len == sizeof s->sm[id]) memcpy(&s->sm[id], data, len);
}

/* ---------------------------------------------------------------------------------------------- */
/* parsing helpers                                                                                 */

static int parse_u64(const char *t, uint64_t *v)
{
    if (!t || !isdigit((unsigned char)*t)) return -1;
    char *end;
    *v = strtoull(t, &end, 10);
    return *end ? -1 : 0;
}

static int node_arg(sc *s, const char *t, int *id)
{
    uint64_t v;
    if (parse_u64(t, &v) != 0 || v < 1 || v > (uint64_t)tn_rt_n(s->c)) return fail(s, "bad node '%s'", t ? t : "");
    *id = (int)v;
    return 0;
}

/* NODES: `all` or a comma list; sets a mask (bit id). */
static int nodes_arg(sc *s, const char *t, uint32_t *mask)
{
    *mask = 0;
    if (!t) return fail(s, "missing node list");
    if (!strcmp(t, "all")) {
        for (int i = 1; i <= tn_rt_n(s->c); i++) *mask |= 1u << i;
        return 0;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", t);
    for (char *p = strtok(buf, ","); p; p = strtok(NULL, ",")) {
        int id;
        if (node_arg(s, p, &id) != 0) return -1;
        *mask |= 1u << id;
    }
    return 0;
}

/* A comma list of ids into conf arrays (voters=1,2,3). */
static int id_list(sc *s, const char *t, uint64_t *ids, uint32_t *n)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", t);
    *n = 0;
    for (char *p = strtok(buf, ","); p; p = strtok(NULL, ",")) {
        uint64_t v;
        if (parse_u64(p, &v) != 0 || v == 0 || *n >= TN_RT_MAX_NODES) return fail(s, "bad id list '%s'", t);
        ids[(*n)++] = v;
    }
    return 0;
}

static int msg_type(const char *t)
{
    for (int k = 1; k <= TN_RAFT_MSG_TYPE_MAX; k++) {
        const char *n = tn_raft_msg_type_name(k);
        size_t i = 0;
        for (; n[i] && t[i]; i++) {
            char a = (char)toupper((unsigned char)t[i]);
            if (a == '-') a = '_';
            if (a != n[i]) break;
        }
        if (!n[i] && !t[i]) return k;
    }
    return 0;
}

/* FILTER from tokens [*i, end): optional A>B, optional type. */
static int filter_arg(sc *s, int *i, int end, tn_rt_filter *f)
{
    memset(f, 0, sizeof *f);
    if (*i < end && strchr(s->tok[*i], '>')) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", s->tok[*i]);
        char *gt = strchr(buf, '>');
        *gt = 0;
        if (strcmp(buf, "*") && node_arg(s, buf, &f->from) != 0) return -1;
        if (strcmp(gt + 1, "*") && node_arg(s, gt + 1, &f->to) != 0) return -1;
        (*i)++;
    }
    if (*i < end && (f->type = msg_type(s->tok[*i])) != 0) (*i)++;
    return 0;
}

static int code_by_name(const char *t)
{
    for (int k = 0; k < 256; k++) {
        const char *n = tn_code_name(k);
        if (n && !strcmp(n, t)) return k;
    }
    return -1;
}

/* The expected result of a core call: `=> CODE` at the end of the line (removed), else TN_SUCCESS. */
static int expected_code(sc *s, int *code)
{
    *code = TN_SUCCESS;
    if (s->ntok >= 2 && !strcmp(s->tok[s->ntok - 2], "=>")) {
        *code = code_by_name(s->tok[s->ntok - 1]);
        if (*code < 0) return fail(s, "unknown result code '%s'", s->tok[s->ntok - 1]);
        s->ntok -= 2;
    }
    return 0;
}

static int check_code(sc *s, int want, int got, const char *what)
{
    if (want == got) return 0;
    return fail(s, "%s returned %s, expected %s", what, tn_code_name(got), tn_code_name(want));
}

static tn_raft *up_node(sc *s, int id)
{
    tn_raft *r = tn_rt_raft(s->c, id);
    if (!r) fail(s, "node %d is down", id);
    return r;
}

/* ---------------------------------------------------------------------------------------------- */
/* set-up                                                                                          */

static int cmd_nodes(sc *s)
{
    if (s->c) return fail(s, "nodes given twice");
    uint64_t n;
    if (s->ntok < 2 || parse_u64(s->tok[1], &n) != 0 || n < 1 || n > TN_RT_MAX_NODES)
        return fail(s, "nodes wants a count of 1..%d", TN_RT_MAX_NODES);
    tn_rt_opts o;
    memset(&o, 0, sizeof o);
    o.n = (int)n;
    o.disk = TN_RT_DISK_AUTO;
    o.codec = 1;
    o.check = 1;
    o.trace = 1;
    o.verbose = s->verbose;
    o.out = s->out;
    o.hooks.ctx = s;
    o.hooks.apply = sm_apply;
    o.hooks.restore = sm_restore;
    o.hooks.print = print_rec;
    tn_raft_config *c = &o.cfg;
    c->election_ticks = 10;
    c->heartbeat_ticks = 2;
    c->max_inflight_msgs = 4;
    c->max_entries_per_msg = 64;
    c->pre_vote = 1;
    c->check_quorum = 1;
    c->lease_drift_ticks = 3;
    for (int i = 2; i < s->ntok; i++) {
        char *k = s->tok[i], *v = strchr(k, '=');
        if (!v) return fail(s, "nodes: expected key=value, got '%s'", k);
        *v++ = 0;
        uint64_t x = 0;
        int num = parse_u64(v, &x) == 0;
        if (!strcmp(k, "voters")) {
            if (id_list(s, v, c->conf.voters, &c->conf.n_voters) != 0) return -1;
        } else if (!strcmp(k, "learners")) {
            if (id_list(s, v, c->conf.learners, &c->conf.n_learners) != 0) return -1;
        } else if (!strcmp(k, "disk")) {
            if (!strcmp(v, "auto")) o.disk = TN_RT_DISK_AUTO;
            else if (!strcmp(v, "manual")) o.disk = TN_RT_DISK_MANUAL;
            else if (!strcmp(v, "none")) o.disk = TN_RT_DISK_NONE;
            else return fail(s, "disk is auto, manual or none");
        } else if (!strcmp(k, "mutate")) {
            tn_raft_mutations *m = &c->mutate;
            if (!strcmp(v, "commit_old_term")) m->commit_old_term = 1;
            else if (!strcmp(v, "skip_vote_persist")) m->skip_vote_persist = 1;
            else if (!strcmp(v, "no_log_check_vote")) m->no_log_check_vote = 1;
            else if (!strcmp(v, "read_without_quorum")) m->read_without_quorum = 1;
            else if (!strcmp(v, "ack_before_persist")) m->ack_before_persist = 1;
            else if (!strcmp(v, "count_unpersisted")) m->count_unpersisted = 1;
            else return fail(s, "unknown mutation '%s'", v);
        } else if (!num) {
            return fail(s, "nodes: %s wants a number", k);
        } else if (!strcmp(k, "election")) c->election_ticks = (uint32_t)x;
        else if (!strcmp(k, "heartbeat")) c->heartbeat_ticks = (uint32_t)x;
        else if (!strcmp(k, "inflight")) c->max_inflight_msgs = (uint32_t)x;
        else if (!strcmp(k, "inflightbytes")) c->max_inflight_bytes = x;
        else if (!strcmp(k, "batch")) c->max_entries_per_msg = (uint32_t)x;
        else if (!strcmp(k, "msgbytes")) c->max_bytes_per_msg = x;
        else if (!strcmp(k, "prevote")) c->pre_vote = x != 0;
        else if (!strcmp(k, "checkquorum")) c->check_quorum = x != 0;
        else if (!strcmp(k, "lease")) c->lease_read = x != 0;
        else if (!strcmp(k, "drift")) c->lease_drift_ticks = (uint32_t)x;
        else return fail(s, "nodes: unknown key '%s'", k);
    }
    s->c = tn_rt_new(&o);
    if (!s->c) return fail(s, "bad cluster options");
    tn_rt_set_now(s->c, (uint64_t)s->line * 1000);
    if (tn_rt_start(s->c) != 0) return fail(s, "the core refused the configuration");
    return 0;
}

static int cmd_restore(sc *s)
{
    int id;
    if (node_arg(s, s->ntok > 1 ? s->tok[1] : NULL, &id) != 0) return -1;
    tn_raft_hard_state hs = {0};
    tn_raft_entry *ents = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    for (int i = 2; i < s->ntok; i++) {
        char *k = s->tok[i], *v = strchr(k, '=');
        if (!v) {
            fail(s, "restore: expected key=value, got '%s'", k);
            goto fail;
        }
        *v++ = 0;
        if (!strcmp(k, "log")) {
            for (char *p = strtok(v, ","); p; p = strtok(NULL, ",")) {
                uint64_t t, times = 1;
                char *x = strchr(p, 'x');
                if (x) *x = 0;
                if (parse_u64(p, &t) != 0 || (x && parse_u64(x + 1, &times) != 0)) {
                    fail(s, "restore: bad log item");
                    goto fail;
                }
                for (uint64_t j = 0; j < times; j++) {
                    if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        tn_raft_entry *g = realloc(ents, cap * sizeof *g);
                        if (!g) {
                            fail(s, "out of memory");
                            goto fail;
                        }
                        ents = g;
                    }
                    ents[n] = (tn_raft_entry){t, n + 1, TN_ENTRY_NORMAL, 0, NULL};
                    n++;
                }
            }
            continue;
        }
        uint64_t x;
        if (parse_u64(v, &x) != 0) {
            fail(s, "restore: %s wants a number", k);
            goto fail;
        }
        if (!strcmp(k, "term")) hs.term = x;
        else if (!strcmp(k, "vote")) hs.vote = x;
        else if (!strcmp(k, "commit")) hs.commit = x;
        else {
            fail(s, "restore: unknown key '%s'", k);
            goto fail;
        }
    }
    tn_raft_snapshot_meta none = {0};
    if (tn_rt_boot_state(s->c, id, &hs, &none, NULL, 0, ents, n) != 0) {
        fail(s, "the core refused node %d's state", id);
        goto fail;
    }
    rc = 0;
fail:
    free(ents);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* time and network                                                                                */

static int settle(sc *s)
{
    return tn_rt_settle(s->c) == 0 ? 0 : fail(s, "the network did not settle in 1000 rounds");
}

static int cmd_tick(sc *s)
{
    uint32_t mask;
    if (nodes_arg(s, s->ntok > 1 ? s->tok[1] : NULL, &mask) != 0) return -1;
    uint64_t times = 1;
    int hold = 0;
    for (int i = 2; i < s->ntok; i++) {
        if (!strcmp(s->tok[i], "hold")) hold = 1;
        else if (s->tok[i][0] != 'x' || parse_u64(s->tok[i] + 1, &times) != 0)
            return fail(s, "tick: bad '%s'", s->tok[i]);
    }
    for (uint64_t k = 0; k < times; k++) {
        for (int id = 1; id <= tn_rt_n(s->c); id++)
            if (mask & (1u << id)) tn_rt_tick(s->c, id);
        if (!hold && settle(s) != 0) return -1;
    }
    return 0;
}

static int cmd_elect(sc *s)
{
    int id;
    if (node_arg(s, s->ntok > 1 ? s->tok[1] : NULL, &id) != 0) return -1;
    return tn_rt_elect(s->c, id) == 0 ? 0 : fail(s, "node %d did not become leader", id);
}

static int cmd_deliver(sc *s, int drop)
{
    int i = 1;
    tn_rt_filter f;
    if (filter_arg(s, &i, s->ntok, &f) != 0) return -1;
    if (i != s->ntok) return fail(s, "bad filter word '%s'", s->tok[i]);
    if (drop) tn_rt_drop(s->c, &f);
    else tn_rt_deliver(s->c, &f);
    return 0;
}

/* A>B or A B */
static int pair_arg(sc *s, int *a, int *b, int *both)
{
    *both = 1;
    if (s->ntok == 2 && strchr(s->tok[1], '>')) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", s->tok[1]);
        char *gt = strchr(buf, '>');
        *gt = 0;
        *both = 0;
        if (node_arg(s, buf, a) != 0 || node_arg(s, gt + 1, b) != 0) return -1;
        return 0;
    }
    if (s->ntok != 3) return fail(s, "%s wants A B or A>B", s->tok[0]);
    return node_arg(s, s->tok[1], a) != 0 || node_arg(s, s->tok[2], b) != 0 ? -1 : 0;
}

static int cmd_link(sc *s, int up)
{
    int a, b, both;
    if (pair_arg(s, &a, &b, &both) != 0) return -1;
    tn_rt_link(s->c, a, b, up);
    if (both) tn_rt_link(s->c, b, a, up);
    tn_rt_trace(s->c, TR_LINK, 0, up, both, (uint64_t)a, (uint64_t)b, 0);
    return 0;
}

static int cmd_partition(sc *s)
{
    int group[TN_RT_MAX_NODES + 1] = {0}, g = 1;
    for (int i = 1; i < s->ntok; i++) {
        if (!strcmp(s->tok[i], "|")) {
            g++;
            continue;
        }
        int id;
        if (node_arg(s, s->tok[i], &id) != 0) return -1;
        group[id] = g;
    }
    int n = tn_rt_n(s->c);
    uint64_t groups = 0;
    if (g > 15) return fail(s, "partition: at most 15 groups");
    for (int a = 1; a <= n; a++) {
        if (!group[a]) return fail(s, "partition: node %d is in no group", a);
        for (int b = 1; b <= n; b++) tn_rt_link(s->c, a, b, group[a] == group[b]);
        groups |= (uint64_t)group[a] << (4 * (a - 1));
    }
    tn_rt_trace(s->c, TR_GROUPS, 0, 0, 0, groups, 0, 0);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* clients, admin, faults                                                                          */

static int cmd_propose(sc *s)
{
    int want, id;
    if (expected_code(s, &want) != 0) return -1;
    if (s->ntok < 3 || s->ntok > 4) return fail(s, "propose N DATA [xK]");
    if (node_arg(s, s->tok[1], &id) != 0) return -1;
    uint64_t times = 1;
    if (s->ntok == 4 && (s->tok[3][0] != 'x' || parse_u64(s->tok[3] + 1, &times) != 0))
        return fail(s, "propose: bad count '%s'", s->tok[3]);
    tn_raft *r = up_node(s, id);
    if (!r) return -1;
    for (uint64_t k = 0; k < times; k++) {
        int rc = tn_raft_propose(r, s->tok[2], strlen(s->tok[2]), NULL, NULL);
        if (check_code(s, want, rc, "propose") != 0) return -1;
    }
    return 0;
}

static int cmd_conf(sc *s)
{
    int want, id;
    uint64_t node;
    if (expected_code(s, &want) != 0) return -1;
    if (s->ntok != 4 || node_arg(s, s->tok[1], &id) != 0 || parse_u64(s->tok[3], &node) != 0)
        return fail(s, "conf N OP ID");
    tn_raft_conf_change cc = {0, node};
    const char *op = s->tok[2];
    if (!strcmp(op, "add-voter")) cc.op = TN_CONF_ADD_VOTER;
    else if (!strcmp(op, "add-learner")) cc.op = TN_CONF_ADD_LEARNER;
    else if (!strcmp(op, "promote")) cc.op = TN_CONF_PROMOTE;
    else if (!strcmp(op, "remove")) cc.op = TN_CONF_REMOVE;
    else return fail(s, "conf: unknown op '%s'", op);
    tn_raft *r = up_node(s, id);
    if (!r) return -1;
    int rc = tn_raft_propose_conf(r, &cc, NULL);
    tn_rt_trace(s->c, TN_RT_TR_CONF, id, cc.op, 0, node, (uint64_t)rc, 0);
    return check_code(s, want, rc, "conf");
}

static int cmd_transfer(sc *s)
{
    int want, id, to;
    if (expected_code(s, &want) != 0) return -1;
    if (s->ntok != 3 || node_arg(s, s->tok[1], &id) != 0 || node_arg(s, s->tok[2], &to) != 0)
        return fail(s, "transfer N TO");
    tn_raft *r = up_node(s, id);
    if (!r) return -1;
    int rc = tn_raft_transfer_leader(r, (uint64_t)to);
    tn_rt_trace(s->c, TN_RT_TR_XFER, id, 0, 0, (uint64_t)to, (uint64_t)rc, 0);
    return check_code(s, want, rc, "transfer");
}

static int cmd_read(sc *s)
{
    int want, id;
    uint64_t ctx;
    if (expected_code(s, &want) != 0) return -1;
    if (s->ntok != 3 || node_arg(s, s->tok[1], &id) != 0 || parse_u64(s->tok[2], &ctx) != 0 || !ctx)
        return fail(s, "read N CTX (CTX > 0)");
    tn_raft *r = up_node(s, id);
    if (!r) return -1;
    return check_code(s, want, tn_rt_read_index(s->c, id, ctx), "read");
}

static int cmd_compact(sc *s)
{
    int id, want_fail = 0;
    if (s->ntok == 4 && !strcmp(s->tok[2], "=>") && !strcmp(s->tok[3], "fail")) {
        want_fail = 1;
        s->ntok = 2;
    }
    if (s->ntok != 2 || node_arg(s, s->tok[1], &id) != 0) return fail(s, "compact N [=> fail]");
    if (!up_node(s, id)) return -1;
    int rc = tn_rt_compact(s->c, id, &s->sm[id], sizeof s->sm[id]);
    if (rc != 0 && !want_fail) return fail(s, "compact on node %d was refused", id);
    if (rc == 0 && want_fail) return fail(s, "compact on node %d succeeded", id);
    return 0;
}

static int cmd_crash(sc *s)
{
    int id;
    if (s->ntok < 2 || s->ntok > 3 || node_arg(s, s->tok[1], &id) != 0) return fail(s, "crash N [keep]");
    if (s->ntok == 3 && strcmp(s->tok[2], "keep")) return fail(s, "crash N [keep]");
    if (!up_node(s, id)) return -1;
    tn_rt_crash(s->c, id, s->ntok == 3 ? TN_RT_KEEP_ALL : TN_RT_KEEP_NONE);
    return 0;
}

static int cmd_restart(sc *s)
{
    int id;
    if (s->ntok != 2 || node_arg(s, s->tok[1], &id) != 0) return fail(s, "restart N");
    if (tn_rt_up(s->c, id)) return fail(s, "node %d is up", id);
    return tn_rt_restart(s->c, id) == 0 ? 0 : fail(s, "node %d could not restart", id);
}

static int cmd_sync(sc *s)
{
    uint32_t mask;
    if (nodes_arg(s, s->ntok > 1 ? s->tok[1] : NULL, &mask) != 0) return -1;
    for (int id = 1; id <= tn_rt_n(s->c); id++)
        if (mask & (1u << id)) tn_rt_sync(s->c, id);
    return 0;
}

static int cmd_disk(sc *s)
{
    tn_rt_disk d;
    if (s->ntok == 2 && !strcmp(s->tok[1], "auto")) d = TN_RT_DISK_AUTO;
    else if (s->ntok == 2 && !strcmp(s->tok[1], "manual")) d = TN_RT_DISK_MANUAL;
    else return fail(s, "disk auto|manual");
    return tn_rt_set_disk(s->c, d) == 0 ? 0 : fail(s, "the disk of a disk=none cluster cannot change");
}

static int cmd_fail_sync(sc *s)
{
    int id;
    if (s->ntok != 2 || node_arg(s, s->tok[1], &id) != 0) return fail(s, "fail-sync N");
    tn_rt_fail_next_sync(s->c, id, 1);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* expectations                                                                                    */

/* 0 and *v, or -1 (message set). */
static int field_of(sc *s, const char *f, int id, uint64_t *v)
{
    const tn_rt_stats *st = tn_rt_stats_of(s->c, id);
    if (!strcmp(f, "truncations")) { *v = st->truncations; return 0; }
    if (!strcmp(f, "snapshots")) { *v = st->snapshots; return 0; }
    if (!strcmp(f, "reads")) { *v = st->n_reads; return 0; }
    if (!strcmp(f, "durable")) { *v = tn_rt_durable_last(s->c, id); return 0; }
    if (!strcmp(f, "state")) { *v = s->sm[id].hash; return 0; }
    tn_raft *r = tn_rt_raft(s->c, id);
    const char *known[] = {"term", "commit", "applied", "last", "first", "stable", "snapshot", "lead",
                           "voters", "learners", NULL};
    int k = 0;
    while (known[k] && strcmp(known[k], f)) k++;
    if (!known[k]) return fail(s, "unknown field '%s'", f);
    if (!r) return fail(s, "node %d is down", id);
    switch (k) {
    case 0: *v = tn_raft_term(r); break;
    case 1: *v = tn_raft_commit(r); break;
    case 2: *v = tn_raft_applied(r); break;
    case 3: *v = tn_raft_last_index(r); break;
    case 4: *v = tn_raft_first_index(r); break;
    case 5: *v = tn_raft_stable_index(r); break;
    case 6: *v = tn_raft_snapshot_of(r)->index; break;
    case 7: *v = tn_raft_leader(r); break;
    case 8: *v = tn_raft_conf_of(r)->n_voters; break;
    default: *v = tn_raft_conf_of(r)->n_learners; break;
    }
    return 0;
}

/* 1 if `a OP b` holds, 0 if not, -1 for an unknown OP. */
static int compare(const char *op, uint64_t a, uint64_t b)
{
    if (!strcmp(op, "=")) return a == b;
    if (!strcmp(op, "!=")) return a != b;
    if (!strcmp(op, "<")) return a < b;
    if (!strcmp(op, "<=")) return a <= b;
    if (!strcmp(op, ">")) return a > b;
    if (!strcmp(op, ">=")) return a >= b;
    return -1;
}

/* expect FIELD NODES OP V */
static int expect_field(sc *s)
{
    if (s->ntok != 5) return fail(s, "expect FIELD NODES OP VALUE");
    const char *f = s->tok[1], *op = s->tok[3], *val = s->tok[4];
    uint32_t mask;
    if (nodes_arg(s, s->tok[2], &mask) != 0) return -1;
    uint64_t want;
    if (val[0] == '@') {
        int ref;
        if (node_arg(s, val + 1, &ref) != 0 || field_of(s, f, ref, &want) != 0) return -1;
    } else if (parse_u64(val, &want) != 0) {
        return fail(s, "bad value '%s'", val);
    }
    for (int id = 1; id <= tn_rt_n(s->c); id++) {
        if (!(mask & (1u << id))) continue;
        uint64_t got;
        if (field_of(s, f, id, &got) != 0) return -1;
        int ok = compare(op, got, want);
        if (ok < 0) return fail(s, "unknown comparison '%s'", op);
        if (!ok)
            return fail(s, "expected %s of node %d %s %" PRIu64 ", it is %" PRIu64, f, id, op, want, got);
    }
    return 0;
}

static int expect_role(sc *s)
{
    uint32_t mask;
    if (s->ntok != 4 || nodes_arg(s, s->tok[2], &mask) != 0) return fail(s, "expect role NODES ROLE");
    for (int id = 1; id <= tn_rt_n(s->c); id++) {
        if (!(mask & (1u << id))) continue;
        tn_raft *r = tn_rt_raft(s->c, id);
        const char *got = r ? tn_raft_role_name(tn_raft_role_of(r)) : "down";
        if (strcmp(got, s->tok[3])) return fail(s, "expected node %d to be %s, it is %s", id, s->tok[3], got);
    }
    return 0;
}

static int expect_leader(sc *s)
{
    int want = 0;
    if (s->ntok != 3) return fail(s, "expect leader N|none");
    if (strcmp(s->tok[2], "none") && node_arg(s, s->tok[2], &want) != 0) return -1;
    int got = tn_rt_leader(s->c);
    if (got != want) return fail(s, "expected leader %s, the leader is %d", s->tok[2], got);
    return 0;
}

static int expect_member(sc *s)
{
    int id;
    uint64_t who;
    if (s->ntok != 5 || node_arg(s, s->tok[2], &id) != 0 || parse_u64(s->tok[3], &who) != 0)
        return fail(s, "expect member N ID voter|learner|none");
    tn_raft *r = up_node(s, id);
    if (!r) return -1;
    const tn_raft_conf *c = tn_raft_conf_of(r);
    const char *got = "none";
    for (uint32_t k = 0; k < c->n_voters; k++)
        if (c->voters[k] == who) got = "voter";
    for (uint32_t k = 0; k < c->n_learners; k++)
        if (c->learners[k] == who) got = "learner";
    if (strcmp(got, s->tok[4]))
        return fail(s, "expected %" PRIu64 " to be %s in node %d's configuration, it is %s", who, s->tok[4], id,
                    got);
    return 0;
}

static int expect_entry(sc *s)
{
    int id;
    uint64_t idx;
    if (s->ntok < 5 || node_arg(s, s->tok[2], &id) != 0 || parse_u64(s->tok[3], &idx) != 0)
        return fail(s, "expect entry N IDX term=T [data=D] | none");
    tn_raft *r = up_node(s, id);
    if (!r) return -1;
    const tn_raft_entry *e = tn_raft_entry_at(r, idx);
    if (!strcmp(s->tok[4], "none")) return e ? fail(s, "node %d has an entry at %" PRIu64, id, idx) : 0;
    if (!e) return fail(s, "node %d has no entry at %" PRIu64, id, idx);
    for (int i = 4; i < s->ntok; i++) {
        uint64_t t;
        if (!strncmp(s->tok[i], "term=", 5) && parse_u64(s->tok[i] + 5, &t) == 0) {
            if (e->term != t)
                return fail(s, "entry %" PRIu64 " of node %d has term %" PRIu64 ", expected %" PRIu64, idx, id,
                            e->term, t);
        } else if (!strncmp(s->tok[i], "data=", 5)) {
            const char *d = s->tok[i] + 5;
            if (e->len != strlen(d) || memcmp(e->data, d, e->len))
                return fail(s, "entry %" PRIu64 " of node %d holds other data than '%s'", idx, id, d);
        } else {
            return fail(s, "expect entry: bad '%s'", s->tok[i]);
        }
    }
    return 0;
}

static int expect_read(sc *s)
{
    int id;
    uint64_t ctx, index = 0;
    if (s->ntok < 5 || node_arg(s, s->tok[2], &id) != 0 || parse_u64(s->tok[3], &ctx) != 0)
        return fail(s, "expect read N CTX ok|refused|none [index=I]");
    if (s->ntok == 6 && (strncmp(s->tok[5], "index=", 6) || parse_u64(s->tok[5] + 6, &index) != 0))
        return fail(s, "expect read: bad '%s'", s->tok[5]);
    const tn_rt_stats *st = tn_rt_stats_of(s->c, id);
    const tn_raft_read_state *rs = NULL;
    for (size_t i = 0; i < st->n_reads; i++)
        if (st->reads[i].ctx == ctx) rs = &st->reads[i];
    const char *got = !rs ? "none" : rs->ok ? "ok" : "refused";
    if (strcmp(got, s->tok[4]))
        return fail(s, "read %" PRIu64 " on node %d: expected %s, got %s", ctx, id, s->tok[4], got);
    if (rs && index && rs->index != index)
        return fail(s, "read %" PRIu64 " on node %d has index %" PRIu64 ", expected %" PRIu64, ctx, id, rs->index,
                    index);
    return 0;
}

static int expect_msgs(sc *s)
{
    if (s->ntok < 4) return fail(s, "expect msgs [FILTER] [key=value...] OP V");
    int i = 2, end = s->ntok - 2;
    tn_rt_filter f;
    if (filter_arg(s, &i, end, &f) != 0) return -1;
    /* further conditions on the message fields */
    struct { const char *key; uint64_t v; int on; } cond[] = {
        {"reject", 0, 0}, {"index", 0, 0}, {"hint", 0, 0}, {"term", 0, 0}, {"entries", 0, 0}, {"commit", 0, 0}};
    for (; i < end; i++) {
        char *v = strchr(s->tok[i], '=');
        size_t k = 0;
        if (v) {
            *v++ = 0;
            while (k < 6 && strcmp(cond[k].key, s->tok[i])) k++;
        }
        if (!v || k == 6 || parse_u64(v, &cond[k].v) != 0) return fail(s, "expect msgs: bad '%s'", s->tok[i]);
        cond[k].on = 1;
    }
    uint64_t want, got = 0;
    if (parse_u64(s->tok[s->ntok - 1], &want) != 0) return fail(s, "expect msgs: bad count");
    for (size_t k = 0; k < tn_rt_queued(s->c); k++) {
        const tn_raft_msg *m = tn_rt_queued_at(s->c, k);
        if ((f.from && (uint64_t)f.from != m->from) || (f.to && (uint64_t)f.to != m->to) ||
            (f.type && f.type != m->type))
            continue;
        uint64_t fields[6] = {m->reject, m->index, m->reject_hint, m->term, m->n_entries, m->commit};
        int ok = 1;
        for (int j = 0; j < 6; j++)
            if (cond[j].on && fields[j] != cond[j].v) ok = 0;
        got += (uint64_t)ok;
    }
    int ok = compare(s->tok[s->ntok - 2], got, want);
    if (ok < 0) return fail(s, "unknown comparison '%s'", s->tok[s->ntok - 2]);
    if (ok) return 0;
    return fail(s, "expected %s %" PRIu64 " such messages queued, there are %" PRIu64, s->tok[s->ntok - 2], want,
                got);
}

static int cmd_expect(sc *s)
{
    if (s->ntok < 2) return fail(s, "expect what?");
    const char *w = s->tok[1];
    if (!strcmp(w, "violation")) {
        if (!tn_rt_failed(s->c)) return fail(s, "expected an invariant violation, there is none");
        if (s->ntok > 2 && !strstr(tn_rt_why(s->c), s->tok[2]))
            return fail(s, "the violation is not about '%s': %s", s->tok[2], tn_rt_why(s->c));
        s->violation_seen = 1;
        if (s->verbose) fprintf(s->out, "  violation (expected): %s\n", tn_rt_why(s->c));
        return 0;
    }
    if (tn_rt_failed(s->c) && !s->violation_seen) return fail(s, "invariant violated: %s", tn_rt_why(s->c));
    if (!strcmp(w, "ok")) return 0;
    if (!strcmp(w, "role")) return expect_role(s);
    if (!strcmp(w, "leader")) return expect_leader(s);
    if (!strcmp(w, "member")) return expect_member(s);
    if (!strcmp(w, "entry")) return expect_entry(s);
    if (!strcmp(w, "read")) return expect_read(s);
    if (!strcmp(w, "msgs")) return expect_msgs(s);
    return expect_field(s);
}

static void print_nodes(sc *s)
{
    for (int id = 1; id <= tn_rt_n(s->c); id++) {
        tn_raft *r = tn_rt_raft(s->c, id);
        if (!r) {
            fprintf(s->out, "  n%d down (durable last %" PRIu64 ")\n", id, tn_rt_durable_last(s->c, id));
            continue;
        }
        fprintf(s->out, "  n%d %s term=%" PRIu64 " lead=%" PRIu64 " commit=%" PRIu64 " applied=%" PRIu64
                " last=%" PRIu64 " stable=%" PRIu64 " voters=%u learners=%u\n", id,
                tn_raft_role_name(tn_raft_role_of(r)), tn_raft_term(r), tn_raft_leader(r), tn_raft_commit(r),
                tn_raft_applied(r), tn_raft_last_index(r), tn_raft_stable_index(r), tn_raft_conf_of(r)->n_voters,
                tn_raft_conf_of(r)->n_learners);
    }
    for (size_t k = 0; k < tn_rt_queued(s->c); k++) {
        const tn_raft_msg *m = tn_rt_queued_at(s->c, k);
        fprintf(s->out, "  queued n%" PRIu64 " -> n%" PRIu64 " %s term=%" PRIu64 " idx=%" PRIu64 " n=%zu rej=%d\n",
                m->from, m->to, tn_raft_msg_type_name(m->type), m->term, m->index, m->n_entries, m->reject);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* the interpreter                                                                                 */

static int run_line(sc *s)
{
    const char *w = s->tok[0];
    if (!strcmp(w, "nodes")) return cmd_nodes(s);
    if (!s->c) return fail(s, "the first command must be 'nodes'");
    tn_rt_set_now(s->c, (uint64_t)s->line * 1000);
    int rc;
    if (!strcmp(w, "restore")) rc = cmd_restore(s);
    else if (!strcmp(w, "tick")) rc = cmd_tick(s);
    else if (!strcmp(w, "elect")) rc = cmd_elect(s);
    else if (!strcmp(w, "settle")) rc = settle(s);
    else if (!strcmp(w, "deliver")) rc = cmd_deliver(s, 0);
    else if (!strcmp(w, "drop")) rc = cmd_deliver(s, 1);
    else if (!strcmp(w, "isolate") || !strcmp(w, "connect")) {
        int id;
        rc = s->ntok == 2 && node_arg(s, s->tok[1], &id) == 0 ? 0 : fail(s, "%s N", w);
        if (rc == 0 && w[0] == 'i') tn_rt_isolate(s->c, id);
        else if (rc == 0) tn_rt_connect(s->c, id);
    } else if (!strcmp(w, "cut")) rc = cmd_link(s, 0);
    else if (!strcmp(w, "link")) rc = cmd_link(s, 1);
    else if (!strcmp(w, "partition")) rc = cmd_partition(s);
    else if (!strcmp(w, "heal")) {
        tn_rt_heal(s->c);
        rc = 0;
    } else if (!strcmp(w, "propose")) rc = cmd_propose(s);
    else if (!strcmp(w, "conf")) rc = cmd_conf(s);
    else if (!strcmp(w, "transfer")) rc = cmd_transfer(s);
    else if (!strcmp(w, "read")) rc = cmd_read(s);
    else if (!strcmp(w, "compact")) rc = cmd_compact(s);
    else if (!strcmp(w, "crash")) rc = cmd_crash(s);
    else if (!strcmp(w, "restart")) rc = cmd_restart(s);
    else if (!strcmp(w, "sync")) rc = cmd_sync(s);
    else if (!strcmp(w, "fail-sync")) rc = cmd_fail_sync(s);
    else if (!strcmp(w, "disk")) rc = cmd_disk(s);
    else if (!strcmp(w, "expect")) return cmd_expect(s);
    else if (!strcmp(w, "print")) {
        print_nodes(s);
        return 0;
    } else if (!strcmp(w, "trace")) {
        uint64_t k = 60;
        if (s->ntok > 1) parse_u64(s->tok[1], &k);
        tn_rt_trace_tail(s->c, s->out, (size_t)k);
        return 0;
    } else return fail(s, "unknown command '%s'", w);
    if (rc == 0) tn_rt_drain(s->c); /* what the command made the nodes produce is queued and applied */
    return rc;
}

int tn_rt_script_run(const char *name, const char *text, FILE *out, int verbose, char *err, size_t errlen)
{
    sc s;
    memset(&s, 0, sizeof s);
    s.name = name;
    s.out = out;
    s.verbose = verbose;
    s.err = err;
    s.errlen = errlen;
    err[0] = 0;
    int rc = 0;
    char *copy = strdup(text);
    if (!copy) {
        snprintf(err, errlen, "%s: out of memory", name);
        return 1;
    }
    char *save = NULL;
    s.line = 0;
    for (char *p = copy, *nl; p && !rc; p = nl) {
        nl = strchr(p, '\n');
        if (nl) *nl++ = 0;
        s.line++;
        char *hash = strchr(p, '#');
        if (hash) *hash = 0;
        s.ntok = 0;
        for (char *t = strtok_r(p, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
            if (s.ntok == MAXTOK) {
                rc = fail(&s, "too many words");
                break;
            }
            s.tok[s.ntok++] = t;
        }
        if (rc || !s.ntok) continue;
        if (verbose) {
            fprintf(out, "%s:%d:", name, s.line);
            for (int i = 0; i < s.ntok; i++) fprintf(out, " %s", s.tok[i]);
            fputc('\n', out);
        }
        rc = run_line(&s);
    }
    if (!rc && !s.c) rc = fail(&s, "no 'nodes' command");
    if (!rc && tn_rt_failed(s.c) && !s.violation_seen) {
        s.line++;
        rc = fail(&s, "invariant violated: %s", tn_rt_why(s.c));
    }
    if (rc && s.c && !verbose) tn_rt_trace_tail(s.c, out, 40);
    tn_rt_free(s.c);
    free(copy);
    return rc ? 1 : 0;
}

int tn_rt_script_file(const char *path, FILE *out, int verbose, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 1;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return 1;
    }
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *g = realloc(buf, cap);
            if (!g) goto fail;
            buf = g;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096) break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto fail;
    }
    buf[n] = 0;
    rc = tn_rt_script_run(name, buf, out, verbose, err, errlen);
fail:
    fclose(f);
    free(buf);
    return rc;
}
