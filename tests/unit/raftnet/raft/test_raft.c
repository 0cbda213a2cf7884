/* test_raft.c — unit tests of the Raft core's rules (raftnet/raft/raft.h) that need a look inside one node's
 * Ready, the message codec and config validation; single-node cases drive one tn_raft by hand. Cluster cases
 * run on the Raft test driver (tests/raft/driver.h) in step mode: every write counts as durable once its Ready
 * is handled, and the driver's invariant checks run after each Ready. Elections, replication and flow control,
 * ReadIndex and lease reads, leader transfer, membership and snapshots are covered by the scenario files in
 * tests/raft/testdata (ctest raft.scenarios). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver.h"
#include "raft.h"
#include "tn_code.h"

static tn_raft_config cfg_for(uint64_t id, int n)
{
    tn_raft_config c;
    memset(&c, 0, sizeof c);
    c.id = id;
    for (int i = 1; i <= n; i++) c.conf.voters[c.conf.n_voters++] = (uint64_t)i;
    c.election_ticks = 10;
    c.heartbeat_ticks = 2;
    c.max_inflight_msgs = 4;
    c.max_entries_per_msg = 64;
    c.pre_vote = 1;
    c.check_quorum = 1;
    return c;
}

/* n nodes configured as `over` (default: cfg_for, all n voters), not booted. */
static tn_rt *cluster_new(int n, const tn_raft_config *over)
{
    tn_rt_opts o;
    memset(&o, 0, sizeof o);
    o.n = n;
    o.cfg = over ? *over : cfg_for(1, n);
    o.disk = TN_RT_DISK_NONE;
    o.check = 1;
    o.trace = 1;
    tn_rt *c = tn_rt_new(&o);
    assert_non_null(c);
    return c;
}

/* n fresh nodes, running. */
static tn_rt *cluster(int n, const tn_raft_config *over)
{
    tn_rt *c = cluster_new(n, over);
    assert_int_equal(tn_rt_start(c), 0);
    return c;
}

/* Fails the test on an invariant violation, with the end of the trace. */
static void no_violation(tn_rt *c)
{
    if (!tn_rt_failed(c)) return;
    tn_rt_trace_tail(c, stderr, 40);
    fail_msg("invariant violated: %s", tn_rt_why(c));
}

static void done(tn_rt *c)
{
    no_violation(c);
    tn_rt_free(c);
}

static tn_raft *R(tn_rt *c, int i) { return tn_rt_raft(c, i); }

/* Delivers queued messages (and the ones they cause) until the network is quiet. */
static void settle(tn_rt *c)
{
    if (tn_rt_settle(c) != 0) fail_msg("network did not settle");
    no_violation(c);
}

static void tick_all(tn_rt *c, int ticks)
{
    for (int k = 0; k < ticks; k++) {
        for (int i = 1; i <= tn_rt_n(c); i++) tn_rt_tick(c, i);
        settle(c);
    }
}

/* Elects node `who` (1: its timeout, 11 ticks, is the shortest): first every node ticks out of its start-up
 * lease (10 ticks, so nobody campaigns yet), then `who` times out. */
static void elect(tn_rt *c, int who)
{
    assert_int_equal(tn_rt_elect(c, who), 0);
    no_violation(c);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_vote_grant_waits_for_persist(void **state)
{
    (void)state;
    tn_raft_config c = cfg_for(2, 3);
    c.check_quorum = 0;
    c.pre_vote = 0;
    tn_raft *r = tn_raft_new(&c);
    tn_raft_msg *m = tn_raft_msg_alloc(0, 0, 0);
    m->type = TN_MSG_VOTE;
    m->from = 1;
    m->to = 2;
    m->term = 5;
    assert_int_equal(tn_raft_step(r, m), 0);
    tn_raft_ready rd;
    tn_raft_ready_get(r, &rd);
    assert_true(rd.hs_changed);
    assert_int_equal(rd.hs.term, 5);
    assert_int_equal(rd.hs.vote, 1);
    assert_int_equal(rd.n_msgs, 0);                 /* nothing may leave before the vote is durable */
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0]->type, TN_MSG_VOTE_RESP);
    assert_int_equal(rd.msgs_after_persist[0]->reject, 0);
    tn_raft_msg_free(rd.msgs_after_persist[0]);
    /* a second candidate in the same term is refused */
    m->from = 3;
    tn_raft_step(r, m);
    tn_raft_ready_get(r, &rd);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0]->reject, 1);
    tn_raft_msg_free(rd.msgs_after_persist[0]);
    tn_raft_msg_free(m);
    tn_raft_free(r);
}

static tn_raft_msg *vote_req(uint64_t from, uint64_t to, uint64_t term, uint64_t idx, uint64_t lt, int force)
{
    tn_raft_msg *m = tn_raft_msg_alloc(0, 0, 0);
    m->type = TN_MSG_VOTE;
    m->from = from;
    m->to = to;
    m->term = term;
    m->index = idx;
    m->log_term = lt;
    m->force = (uint8_t)force;
    return m;
}

static void test_lease_guard_and_forced_vote(void **state)
{
    (void)state;
    tn_rt *c = cluster(3, NULL);
    elect(c, 1);
    /* node 2 just heard from the leader: a higher-term vote request is ignored (no term change) ... */
    uint64_t term = tn_raft_term(R(c, 2));
    tn_raft_msg *m = vote_req(3, 2, term + 1, tn_raft_last_index(R(c, 2)), term, 0);
    tn_raft_step(R(c, 2), m);
    assert_int_equal(tn_raft_term(R(c, 2)), term);
    assert_int_equal(tn_raft_leader(R(c, 2)), 1);
    /* ... unless it comes from a leader transfer */
    m->force = 1;
    tn_raft_step(R(c, 2), m);
    assert_int_equal(tn_raft_term(R(c, 2)), term + 1);
    tn_raft_ready rd;
    tn_raft_ready_get(R(c, 2), &rd); /* by hand: the vote and its grant, before any driver handles them */
    assert_int_equal(rd.hs.vote, 3);
    for (size_t i = 0; i < rd.n_msgs; i++) tn_raft_msg_free(rd.msgs[i]);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0]->reject, 0);
    tn_raft_msg_free(rd.msgs_after_persist[0]);
    tn_raft_msg_free(m);
    tn_rt_free(c);
}

static void test_rejected_vote_keeps_election_timer(void **state)
{
    (void)state;
    /* a candidate with a stale log moves us to its term but must not reset our election timer,
     * otherwise it could keep the up-to-date nodes from ever campaigning */
    tn_raft_config c = cfg_for(2, 3);
    c.pre_vote = 0;
    c.check_quorum = 0;
    tn_raft_entry e[1] = {{1, 1, TN_ENTRY_NORMAL, 0, NULL}};
    tn_raft_hard_state hs = {1, 0, 1};
    tn_raft_snapshot_meta none = {0};
    tn_raft *r = tn_raft_restore(&c, &hs, &none, NULL, 0, e, 1);
    tn_raft_set_election_timeout(r, 10);
    for (int k = 0; k < 8; k++) tn_raft_tick(r);
    tn_raft_msg *m = vote_req(3, 2, 5, 0, 0, 0); /* empty log: stale */
    tn_raft_step(r, m);
    assert_int_equal(tn_raft_term(r), 5);
    tn_raft_tick(r);
    tn_raft_tick(r); /* the 10th tick since the timer started: campaign */
    assert_int_equal(tn_raft_role_of(r), TN_CANDIDATE);
    assert_int_equal(tn_raft_term(r), 6);
    tn_raft_ready rd;
    tn_raft_ready_get(r, &rd);
    for (size_t i = 0; i < rd.n_msgs; i++) tn_raft_msg_free(rd.msgs[i]);
    for (size_t i = 0; i < rd.n_msgs_after_persist; i++) tn_raft_msg_free(rd.msgs_after_persist[i]);
    tn_raft_msg_free(m);
    tn_raft_free(r);
}

static void test_vote_refused_to_stale_log(void **state)
{
    (void)state;
    tn_raft_config c = cfg_for(2, 3);
    c.check_quorum = 0;
    tn_raft_entry ents[2] = {{1, 1, TN_ENTRY_NORMAL, 0, NULL}, {2, 2, TN_ENTRY_NORMAL, 0, NULL}};
    tn_raft_hard_state hs = {2, 0, 0};
    tn_raft_snapshot_meta none = {0};
    tn_raft *r = tn_raft_restore(&c, &hs, &none, NULL, 0, ents, 2);
    assert_non_null(r);
    tn_raft_msg *m = tn_raft_msg_alloc(0, 0, 0);
    m->type = TN_MSG_VOTE;
    m->from = 1;
    m->to = 2;
    m->term = 3;
    m->index = 5;     /* longer log ... */
    m->log_term = 1;  /* ... but older last term: not up to date */
    tn_raft_step(r, m);
    tn_raft_ready rd;
    tn_raft_ready_get(r, &rd);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0]->reject, 1);
    tn_raft_msg_free(rd.msgs_after_persist[0]);
    tn_raft_msg_free(m);
    tn_raft_free(r);
}

static void test_leader_counts_itself_only_when_durable(void **state)
{
    (void)state;
    tn_raft_config c = cfg_for(1, 1);
    tn_raft *r = tn_raft_new(&c);
    tn_raft_ready rd;
    for (int k = 0; k < 12 && tn_raft_role_of(r) != TN_LEADER; k++) {
        tn_raft_tick(r);
        tn_raft_ready_get(r, &rd);
    }
    assert_int_equal(tn_raft_role_of(r), TN_LEADER);
    tn_raft_ready_get(r, &rd);
    assert_int_equal(tn_raft_commit(r), 0); /* the no-op is not durable yet */
    tn_raft_persisted(r, 1, tn_raft_term(r));
    assert_int_equal(tn_raft_commit(r), 1);
    uint64_t idx = 0;
    assert_int_equal(tn_raft_propose(r, "x", 1, &idx, NULL), TN_SUCCESS);
    assert_int_equal(idx, 2);
    tn_raft_ready_get(r, &rd);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(tn_raft_commit(r), 1);
    tn_raft_persisted(r, 2, 99); /* wrong term: ignored */
    assert_int_equal(tn_raft_commit(r), 1);
    tn_raft_persisted(r, 2, tn_raft_term(r));
    assert_int_equal(tn_raft_commit(r), 2);
    tn_raft_ready_get(r, &rd);
    assert_int_equal(rd.n_committed, 1);
    assert_int_equal(rd.committed[0].index, 2);
    assert_memory_equal(rd.committed[0].data, "x", 1);
    tn_raft_free(r);
}

static void test_no_commit_of_old_term_by_counting(void **state)
{
    (void)state;
    tn_raft_entry ents[2] = {{1, 1, TN_ENTRY_NORMAL, 0, NULL}, {1, 2, TN_ENTRY_NORMAL, 0, NULL}};
    tn_raft_snapshot_meta none = {0};
    tn_raft_config cc = cfg_for(1, 3);
    cc.max_entries_per_msg = 1;
    cc.max_inflight_msgs = 1;
    tn_rt *c = cluster_new(3, &cc);
    for (int i = 1; i <= 3; i++) {
        tn_raft_hard_state hs = {1, 0, 1};
        assert_int_equal(tn_rt_boot_state(c, i, &hs, &none, NULL, 0, ents, i == 1 ? 2 : 1), 0);
    }
    /* node 1 holds entry 2 (term 1) that nobody else has; it becomes leader of term 2 */
    tick_all(c, 1);
    elect(c, 1);
    /* Step by hand: leader appends no-op 3 (term 2). Deliver only node 2's first append (entry 2, term 1). */
    assert_int_equal(tn_raft_term(R(c, 1)), 2);
    assert_true(tn_raft_commit(R(c, 1)) >= 1);
    /* after settling everything is committed including the no-op */
    settle(c);
    assert_int_equal(tn_raft_commit(R(c, 1)), 3);
    done(c);

    /* Now the precise rule on one leader: entry 2 of term 1 replicated to a majority must not commit
     * before an entry of the current term does. */
    tn_raft_config c1 = cfg_for(1, 3);
    c1.max_entries_per_msg = 1;
    c1.max_inflight_msgs = 1;
    tn_raft_hard_state hs1 = {1, 0, 1};
    tn_raft *l = tn_raft_restore(&c1, &hs1, &none, NULL, 0, ents, 2);
    tn_raft_ready rd;
    for (int k = 0; k < 40 && tn_raft_role_of(l) != TN_LEADER; k++) {
        tn_raft_tick(l);
        tn_raft_ready_get(l, &rd);
        for (size_t i = 0; i < rd.n_msgs; i++) {
            tn_raft_msg *m = rd.msgs[i];
            if (m->type == TN_MSG_PREVOTE || m->type == TN_MSG_VOTE) {
                tn_raft_msg *g = tn_raft_msg_alloc(0, 0, 0);
                g->type = m->type == TN_MSG_PREVOTE ? TN_MSG_PREVOTE_RESP : TN_MSG_VOTE_RESP;
                g->from = m->to;
                g->to = 1;
                g->term = m->term;
                tn_raft_step(l, g);
                tn_raft_msg_free(g);
            }
            tn_raft_msg_free(m);
        }
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++) {
            tn_raft_msg *m = rd.msgs_after_persist[i];
            if (m->type == TN_MSG_VOTE) {
                tn_raft_msg *g = tn_raft_msg_alloc(0, 0, 0);
                g->type = TN_MSG_VOTE_RESP;
                g->from = m->to;
                g->to = 1;
                g->term = m->term;
                tn_raft_step(l, g);
                tn_raft_msg_free(g);
            }
            tn_raft_msg_free(m);
        }
    }
    assert_int_equal(tn_raft_role_of(l), TN_LEADER);
    assert_int_equal(tn_raft_term(l), 2);
    tn_raft_ready_get(l, &rd);
    for (size_t i = 0; i < rd.n_msgs; i++) tn_raft_msg_free(rd.msgs[i]);
    tn_raft_persisted(l, 3, 2);
    /* follower 2 acknowledges entry 2 (term 1) only */
    tn_raft_msg *ack = tn_raft_msg_alloc(0, 0, 0);
    ack->type = TN_MSG_APP_RESP;
    ack->from = 2;
    ack->to = 1;
    ack->term = 2;
    ack->index = 2;
    tn_raft_step(l, ack);
    assert_int_equal(tn_raft_commit(l), 1); /* majority holds entry 2, but it is of term 1 */
    ack->index = 3;
    tn_raft_step(l, ack);
    assert_int_equal(tn_raft_commit(l), 3); /* the no-op of term 2 commits, and entry 2 with it */
    tn_raft_msg_free(ack);
    tn_raft_ready_get(l, &rd);
    for (size_t i = 0; i < rd.n_msgs; i++) tn_raft_msg_free(rd.msgs[i]);
    tn_raft_free(l);
}

static void test_follower_ack_waits_and_truncates_conflict(void **state)
{
    (void)state;
    tn_raft_config c = cfg_for(2, 3);
    tn_raft_entry ents[3] = {{1, 1, TN_ENTRY_NORMAL, 0, NULL}, {1, 2, TN_ENTRY_NORMAL, 0, NULL},
                             {1, 3, TN_ENTRY_NORMAL, 0, NULL}};
    tn_raft_hard_state hs = {1, 0, 1};
    tn_raft_snapshot_meta none = {0};
    tn_raft *r = tn_raft_restore(&c, &hs, &none, NULL, 0, ents, 3);
    assert_non_null(r);
    tn_raft_msg *m = tn_raft_msg_alloc(1, 1, 0);
    m->type = TN_MSG_APP;
    m->from = 1;
    m->to = 2;
    m->term = 2;
    m->index = 1;
    m->log_term = 1;
    m->commit = 1;
    m->entries[0] = (tn_raft_entry){2, 2, TN_ENTRY_NORMAL, 1, (uint8_t *)m->buf + sizeof(tn_raft_entry)};
    m->entries[0].data[0] = 'z';
    tn_raft_step(r, m);
    tn_raft_ready rd;
    tn_raft_ready_get(r, &rd);
    assert_int_equal(rd.truncate_from, 2);           /* uncommitted suffix 2..3 of term 1 replaced */
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].term, 2);
    assert_int_equal(rd.n_msgs, 0);
    assert_int_equal(rd.n_msgs_after_persist, 1);    /* the ack promises durability */
    assert_int_equal(rd.msgs_after_persist[0]->type, TN_MSG_APP_RESP);
    assert_int_equal(rd.msgs_after_persist[0]->index, 2);
    tn_raft_msg_free(rd.msgs_after_persist[0]);
    assert_int_equal(tn_raft_last_index(r), 2);
    assert_int_equal(tn_raft_stable_index(r), 1);    /* truncation pulled the durable mark back */
    /* mismatch: a hint lets the leader skip back fast */
    m->index = 7;
    m->log_term = 2;
    m->n_entries = 0;
    tn_raft_step(r, m);
    tn_raft_ready_get(r, &rd);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0]->reject, 1);
    assert_int_equal(rd.msgs_after_persist[0]->reject_hint, 2);
    tn_raft_msg_free(rd.msgs_after_persist[0]);
    tn_raft_msg_free(m);
    tn_raft_free(r);
}

static void test_forwarding(void **state)
{
    (void)state;
    tn_rt *c = cluster(3, NULL);
    assert_int_equal(tn_raft_propose(R(c, 2), "p", 1, NULL, NULL), TN_NOT_LEADER);
    assert_int_equal(tn_raft_read_index(R(c, 2), 3), TN_NOT_LEADER);
    tick_all(c, 1);
    elect(c, 1);
    uint64_t before = tn_raft_last_index(R(c, 1));
    uint64_t idx = 99;
    assert_int_equal(tn_raft_propose(R(c, 3), "fwd", 3, &idx, NULL), TN_SUCCESS);
    assert_int_equal(idx, 0); /* forwarded: the index is not known here */
    settle(c);
    assert_int_equal(tn_raft_last_index(R(c, 1)), before + 1);
    const tn_raft_entry *e = tn_raft_entry_at(R(c, 3), before + 1);
    assert_non_null(e);
    assert_int_equal(e->len, 3);
    assert_memory_equal(e->data, "fwd", 3);
    done(c);
}

static void test_msg_codec(void **state)
{
    (void)state;
    tn_raft_msg *m = tn_raft_msg_alloc(2, 5, 3);
    m->type = TN_MSG_APP;
    m->from = 1;
    m->to = 2;
    m->term = 7;
    m->index = 10;
    m->log_term = 6;
    m->commit = 9;
    m->ctx = 0xdeadbeef;
    m->reject = 1;
    m->force = 1;
    uint8_t *d = (uint8_t *)m->buf + 2 * sizeof(tn_raft_entry);
    memcpy(d, "hello", 5);
    m->entries[0] = (tn_raft_entry){7, 11, TN_ENTRY_NORMAL, 2, d};
    m->entries[1] = (tn_raft_entry){7, 12, TN_ENTRY_CONF, 3, d + 2};
    m->snap.index = 4;
    m->snap.term = 2;
    m->snap.conf.n_voters = 2;
    m->snap.conf.voters[0] = 1;
    m->snap.conf.voters[1] = 2;
    memcpy((uint8_t *)m->snap_data, "abc", 3);
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_raft_msg_encode(m, &w), 0);
    tn_raft_msg *o = NULL;
    assert_int_equal(tn_raft_msg_decode(w.p, w.len, &o), 0);
    assert_int_equal(o->type, TN_MSG_APP);
    assert_int_equal(o->term, 7);
    assert_int_equal(o->ctx, 0xdeadbeef);
    assert_int_equal(o->reject, 1);
    assert_int_equal(o->force, 1);
    assert_int_equal(o->n_entries, 2);
    assert_int_equal(o->entries[1].index, 12);
    assert_int_equal(o->entries[1].type, TN_ENTRY_CONF);
    assert_memory_equal(o->entries[1].data, "llo", 3);
    assert_int_equal(o->snap.conf.voters[1], 2);
    assert_int_equal(o->snap_len, 3);
    assert_memory_equal(o->snap_data, "abc", 3);
    tn_raft_msg *dup = tn_raft_msg_dup(o);
    assert_memory_equal(dup->entries[0].data, "he", 2);
    tn_raft_msg_free(dup);
    tn_raft_msg_free(o);
    /* every truncation fails cleanly; so do trailing bytes and a bad version */
    for (size_t n = 0; n < w.len; n++) {
        assert_int_equal(tn_raft_msg_decode(w.p, n, &o), -1);
        assert_null(o);
    }
    uint8_t *longer = malloc(w.len + 1);
    memcpy(longer, w.p, w.len);
    longer[w.len] = 0;
    assert_int_equal(tn_raft_msg_decode(longer, w.len + 1, &o), -1);
    longer[0] = 99;
    assert_int_equal(tn_raft_msg_decode(longer, w.len, &o), -1);
    free(longer);
    /* entries of an append must follow its index */
    m->entries[1].index = 14;
    w.len = 0;
    tn_raft_msg_encode(m, &w);
    assert_int_equal(tn_raft_msg_decode(w.p, w.len, &o), -1);
    tn_wr_free(&w);
    tn_raft_msg_free(m);
    /* conf-change payload */
    uint8_t b[11];
    tn_raft_conf_change cc = {TN_CONF_PROMOTE, 300}, out;
    size_t n = tn_raft_conf_encode(&cc, b);
    assert_int_equal(tn_raft_conf_decode(b, n, &out), 0);
    assert_int_equal(out.op, TN_CONF_PROMOTE);
    assert_int_equal(out.node, 300);
    assert_int_equal(tn_raft_conf_decode(b, n - 1, &out), -1);
}

static void test_config_and_restore_validation(void **state)
{
    (void)state;
    tn_raft_config c = cfg_for(1, 3);
    c.heartbeat_ticks = c.election_ticks;
    assert_null(tn_raft_new(&c));
    c = cfg_for(1, 3);
    c.max_inflight_msgs = 0;
    assert_null(tn_raft_new(&c));
    c = cfg_for(0, 3);
    c.id = 0;
    assert_null(tn_raft_new(&c));
    c = cfg_for(1, 3);
    tn_raft_entry gap[2] = {{1, 1, 0, 0, NULL}, {1, 3, 0, 0, NULL}};
    tn_raft_hard_state hs = {1, 0, 0};
    tn_raft_snapshot_meta none = {0};
    assert_null(tn_raft_restore(&c, &hs, &none, NULL, 0, gap, 2));
    tn_raft_entry back[2] = {{2, 1, 0, 0, NULL}, {1, 2, 0, 0, NULL}};
    assert_null(tn_raft_restore(&c, &hs, &none, NULL, 0, back, 2));
    /* a restored node hands its committed entries out again, then nothing more */
    tn_raft_entry ok[2] = {{1, 1, 0, 1, (uint8_t *)"a"}, {1, 2, 0, 1, (uint8_t *)"b"}};
    hs.commit = 2;
    tn_raft *r = tn_raft_restore(&c, &hs, &none, NULL, 0, ok, 2);
    assert_non_null(r);
    tn_raft_ready rd;
    tn_raft_ready_get(r, &rd);
    assert_int_equal(rd.n_committed, 2);
    assert_int_equal(rd.n_entries, 0);
    assert_false(rd.hs_changed);
    tn_raft_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vote_grant_waits_for_persist),
        cmocka_unit_test(test_vote_refused_to_stale_log),
        cmocka_unit_test(test_lease_guard_and_forced_vote),
        cmocka_unit_test(test_rejected_vote_keeps_election_timer),
        cmocka_unit_test(test_leader_counts_itself_only_when_durable),
        cmocka_unit_test(test_no_commit_of_old_term_by_counting),
        cmocka_unit_test(test_follower_ack_waits_and_truncates_conflict),
        cmocka_unit_test(test_forwarding),
        cmocka_unit_test(test_msg_codec),
        cmocka_unit_test(test_config_and_restore_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
