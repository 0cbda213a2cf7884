/* test_raft.c — unit tests of the Raft core's rules (raftnet/raft.h), on a tiny in-test network where the
 * test decides which messages arrive and when writes become durable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft.h"
#include "tn_code.h"

#define N 5
#define QCAP 4096

typedef struct net {
    int n;
    tn_raft *r[N + 1];               /* 1-based */
    tn_raft_msg *q[QCAP];
    size_t nq;
    int cut[N + 1][N + 1];           /* 1 = drop from i to j */
    int auto_persist;                /* report durability right after each Ready */
    uint64_t applied_conf[N + 1];
    tn_raft_read_state reads[N + 1][16];
    size_t n_reads[N + 1];
    int got_snapshot[N + 1];
    size_t truncations[N + 1];
    uint64_t last_committed[N + 1];
} net;

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

static void net_init(net *nt, int n, const tn_raft_config *over)
{
    memset(nt, 0, sizeof *nt);
    nt->n = n;
    nt->auto_persist = 1;
    for (int i = 1; i <= n; i++) {
        tn_raft_config c = over ? *over : cfg_for((uint64_t)i, n);
        c.id = (uint64_t)i;
        nt->r[i] = tn_raft_new(&c);
        assert_non_null(nt->r[i]);
    }
}

static void net_free(net *nt)
{
    for (size_t i = 0; i < nt->nq; i++) tn_raft_msg_free(nt->q[i]);
    for (int i = 1; i <= nt->n; i++) tn_raft_free(nt->r[i]);
}

static void enqueue(net *nt, tn_raft_msg *m)
{
    assert_true(nt->nq < QCAP);
    nt->q[nt->nq++] = m;
}

/* Collects node i's Ready: queues its messages, records what the tests look at, and (auto_persist)
 * reports everything durable at once. */
static void drain(net *nt, int i)
{
    tn_raft *r = nt->r[i];
    while (tn_raft_has_ready(r)) {
        tn_raft_ready rd;
        tn_raft_ready_get(r, &rd);
        if (rd.need_election_timeout) tn_raft_set_election_timeout(r, 10 + (uint32_t)i); /* distinct */
        if (rd.has_snapshot) nt->got_snapshot[i]++;
        if (rd.truncate_from) nt->truncations[i]++;
        for (size_t k = 0; k < rd.n_msgs; k++) enqueue(nt, rd.msgs[k]);
        for (size_t k = 0; k < rd.n_msgs_after_persist; k++) enqueue(nt, rd.msgs_after_persist[k]);
        for (size_t k = 0; k < rd.n_committed; k++) {
            assert_true(rd.committed[k].index == nt->last_committed[i] + 1 || nt->got_snapshot[i]);
            nt->last_committed[i] = rd.committed[k].index;
            if (rd.committed[k].type == TN_ENTRY_CONF) nt->applied_conf[i] = rd.committed[k].index;
        }
        for (size_t k = 0; k < rd.n_read_states && nt->n_reads[i] < 16; k++)
            nt->reads[i][nt->n_reads[i]++] = rd.read_states[k];
        if (nt->auto_persist) {
            uint64_t last = tn_raft_last_index(r), t = 0;
            tn_raft_term_at(r, last, &t);
            tn_raft_persisted(r, last, t);
        }
    }
}

/* Delivers queued messages (and the ones they cause) until the network is quiet. */
static void settle(net *nt)
{
    for (int round = 0; round < 1000; round++) {
        for (int i = 1; i <= nt->n; i++) drain(nt, i);
        if (nt->nq == 0) return;
        size_t n = nt->nq;
        tn_raft_msg *batch[QCAP];
        memcpy(batch, nt->q, n * sizeof *batch);
        nt->nq = 0;
        for (size_t k = 0; k < n; k++) {
            tn_raft_msg *m = batch[k];
            int to = (int)m->to, from = (int)m->from;
            if (to >= 1 && to <= nt->n && !nt->cut[from][to]) tn_raft_step(nt->r[to], m);
            tn_raft_msg_free(m);
        }
    }
    fail_msg("network did not settle");
}

static void tick_node(net *nt, int i, int ticks)
{
    for (int k = 0; k < ticks; k++) {
        tn_raft_tick(nt->r[i]);
        settle(nt);
    }
}

static void tick_all(net *nt, int ticks)
{
    for (int k = 0; k < ticks; k++) {
        for (int i = 1; i <= nt->n; i++) tn_raft_tick(nt->r[i]);
        settle(nt);
    }
}

static void isolate(net *nt, int i, int on)
{
    for (int j = 1; j <= nt->n; j++)
        if (j != i) nt->cut[i][j] = nt->cut[j][i] = on;
}

static int leader_of(net *nt)
{
    int found = 0;
    for (int i = 1; i <= nt->n; i++)
        if (tn_raft_role_of(nt->r[i]) == TN_LEADER) found = i;
    return found;
}

/* Elects node `who` (1: its randomized timeout, 11 ticks, is the shortest): first every node ticks out of
 * its start-up lease (10 ticks, so nobody campaigns yet), then `who` times out. */
static void elect(net *nt, int who)
{
    for (int i = 1; i <= nt->n; i++) drain(nt, i);
    for (int k = 0; k < 10 && !leader_of(nt); k++) tick_all(nt, 1);
    for (int k = 0; k < 40 && tn_raft_role_of(nt->r[who]) != TN_LEADER; k++) tick_node(nt, who, 1);
    assert_int_equal(tn_raft_role_of(nt->r[who]), TN_LEADER);
    settle(nt);
}

static void propose(net *nt, int i, const char *s)
{
    assert_int_equal(tn_raft_propose(nt->r[i], s, strlen(s), NULL, NULL), TN_SUCCESS);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_election_prevote_and_terms(void **state)
{
    (void)state;
    net nt;
    net_init(&nt, 3, NULL);
    drain(&nt, 1);
    /* the others are still in their start-up lease: node 1's pre-vote is ignored, nobody's term moves */
    for (int k = 0; k < 9; k++) tick_node(&nt, 1, 1);
    assert_int_equal(tn_raft_term(nt.r[2]), 0);
    for (int k = 0; k < 12; k++) {
        tn_raft_tick(nt.r[2]);
        tn_raft_tick(nt.r[3]);
    }
    settle(&nt);
    /* node 2 or 3 may have campaigned too; make node 1 campaign now that leases ran out */
    int ld = leader_of(&nt);
    if (!ld) {
        tick_node(&nt, 1, 20);
        ld = leader_of(&nt);
    }
    assert_true(ld >= 1);
    uint64_t term = tn_raft_term(nt.r[ld]);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(tn_raft_term(nt.r[i]), term);
        assert_int_equal(tn_raft_leader(nt.r[i]), (uint64_t)ld);
    }
    /* the new leader's no-op commits everywhere */
    for (int i = 1; i <= 3; i++) assert_true(tn_raft_commit(nt.r[i]) >= 1);
    net_free(&nt);
}

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
    net nt;
    net_init(&nt, 3, NULL);
    elect(&nt, 1);
    /* node 2 just heard from the leader: a higher-term vote request is ignored (no term change) ... */
    uint64_t term = tn_raft_term(nt.r[2]);
    tn_raft_msg *m = vote_req(3, 2, term + 1, tn_raft_last_index(nt.r[2]), term, 0);
    tn_raft_step(nt.r[2], m);
    assert_int_equal(tn_raft_term(nt.r[2]), term);
    assert_int_equal(tn_raft_leader(nt.r[2]), 1);
    /* ... unless it comes from a leader transfer */
    m->force = 1;
    tn_raft_step(nt.r[2], m);
    assert_int_equal(tn_raft_term(nt.r[2]), term + 1);
    tn_raft_ready rd;
    tn_raft_ready_get(nt.r[2], &rd);
    assert_int_equal(rd.hs.vote, 3);
    for (size_t i = 0; i < rd.n_msgs; i++) tn_raft_msg_free(rd.msgs[i]);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0]->reject, 0);
    tn_raft_msg_free(rd.msgs_after_persist[0]);
    tn_raft_msg_free(m);
    net_free(&nt);
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
    net nt;
    memset(&nt, 0, sizeof nt);
    nt.n = 3;
    nt.auto_persist = 1;
    tn_raft_entry ents[2] = {{1, 1, TN_ENTRY_NORMAL, 0, NULL}, {1, 2, TN_ENTRY_NORMAL, 0, NULL}};
    tn_raft_snapshot_meta none = {0};
    for (int i = 1; i <= 3; i++) {
        tn_raft_config c = cfg_for((uint64_t)i, 3);
        c.max_entries_per_msg = 1;
        c.max_inflight_msgs = 1;
        tn_raft_hard_state hs = {1, 0, 1};
        nt.r[i] = tn_raft_restore(&c, &hs, &none, NULL, 0, ents, i == 1 ? 2 : 1);
        assert_non_null(nt.r[i]);
    }
    /* node 1 holds entry 2 (term 1) that nobody else has; it becomes leader of term 2 */
    nt.cut[1][3] = nt.cut[3][1] = 0;
    tick_all(&nt, 1);
    elect(&nt, 1);
    /* Step by hand: leader appends no-op 3 (term 2). Deliver only node 2's first append (entry 2, term 1). */
    assert_int_equal(tn_raft_term(nt.r[1]), 2);
    assert_true(tn_raft_commit(nt.r[1]) >= 1);
    /* after settling everything is committed including the no-op */
    settle(&nt);
    assert_int_equal(tn_raft_commit(nt.r[1]), 3);
    net_free(&nt);

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

static void test_fast_backoff_converges(void **state)
{
    (void)state;
    /* follower 2 has 50 entries of term 1 that the leader does not have; the leader's log is 30 of
     * term 1 and 30 of term 3: the leader must find the match point in a few round trips */
    tn_raft_entry le[60], fe[50];
    for (int i = 0; i < 60; i++) le[i] = (tn_raft_entry){i < 30 ? 1u : 3u, (uint64_t)i + 1, 0, 0, NULL};
    for (int i = 0; i < 50; i++) fe[i] = (tn_raft_entry){i < 30 ? 1u : 2u, (uint64_t)i + 1, 0, 0, NULL};
    tn_raft_snapshot_meta none = {0};
    net nt;
    memset(&nt, 0, sizeof nt);
    nt.n = 3;
    nt.auto_persist = 1;
    for (int i = 1; i <= 3; i++) {
        tn_raft_config c = cfg_for((uint64_t)i, 3);
        tn_raft_hard_state hs = {3, 0, 10};
        nt.r[i] = tn_raft_restore(&c, &hs, &none, NULL, 0, i == 2 ? fe : le, i == 2 ? 50 : 60);
        assert_non_null(nt.r[i]);
    }
    tick_all(&nt, 1);
    elect(&nt, 1);
    settle(&nt);
    assert_int_equal(tn_raft_last_index(nt.r[2]), 61);
    uint64_t t;
    tn_raft_term_at(nt.r[2], 40, &t);
    assert_int_equal(t, 3);
    assert_int_equal(tn_raft_commit(nt.r[2]), 61);
    assert_true(nt.truncations[2] >= 1);
    net_free(&nt);
}

static void test_pipelining_and_flow_control(void **state)
{
    (void)state;
    tn_raft_config c = cfg_for(1, 3);
    c.max_inflight_msgs = 2;
    c.max_entries_per_msg = 1;
    net nt;
    net_init(&nt, 3, &c);
    tick_all(&nt, 1);
    elect(&nt, 1);
    /* replicate state reached; now 5 proposals with acks withheld: at most 2 appends per follower */
    for (int k = 0; k < 5; k++) propose(&nt, 1, "abc");
    tn_raft_ready rd;
    tn_raft_ready_get(nt.r[1], &rd);
    int per[4] = {0};
    for (size_t k = 0; k < rd.n_msgs; k++) {
        if (rd.msgs[k]->type == TN_MSG_APP && rd.msgs[k]->n_entries) per[rd.msgs[k]->to]++;
        tn_raft_msg_free(rd.msgs[k]);
    }
    assert_int_equal(per[2], 2);
    assert_int_equal(per[3], 2);
    net_free(&nt);
}

static void test_read_index(void **state)
{
    (void)state;
    net nt;
    net_init(&nt, 3, NULL);
    tick_all(&nt, 1);
    elect(&nt, 1);
    propose(&nt, 1, "a");
    settle(&nt);
    /* leader: queued until a heartbeat round is acknowledged by a quorum */
    isolate(&nt, 1, 1);
    assert_int_equal(tn_raft_read_index(nt.r[1], 7), TN_SUCCESS);
    settle(&nt);
    assert_int_equal(nt.n_reads[1], 0);
    isolate(&nt, 1, 0);
    assert_int_equal(tn_raft_read_index(nt.r[1], 8), TN_SUCCESS);
    settle(&nt);
    assert_int_equal(nt.n_reads[1], 2); /* the later round confirms both */
    assert_int_equal(nt.reads[1][0].ctx, 7);
    assert_int_equal(nt.reads[1][1].ctx, 8);
    assert_true(nt.reads[1][0].ok);
    assert_int_equal(nt.reads[1][0].index, tn_raft_commit(nt.r[1]));
    /* follower: forwarded to the leader, answered once applied */
    assert_int_equal(tn_raft_read_index(nt.r[2], 9), TN_SUCCESS);
    settle(&nt);
    assert_int_equal(nt.n_reads[2], 1);
    assert_int_equal(nt.reads[2][0].ctx, 9);
    assert_true(nt.reads[2][0].ok);
    assert_true(nt.reads[2][0].index <= tn_raft_applied(nt.r[2]));
    net_free(&nt);
}

static void test_read_refused_before_commit_in_term(void **state)
{
    (void)state;
    net nt;
    net_init(&nt, 3, NULL);
    tick_all(&nt, 1);
    /* elect node 1 but keep its no-op from committing: cut it off right after it wins */
    for (int i = 1; i <= 3; i++) drain(&nt, i);
    for (int k = 0; k < 9; k++) tick_all(&nt, 1);
    for (int k = 0; k < 40 && tn_raft_role_of(nt.r[1]) != TN_LEADER; k++) {
        tn_raft_tick(nt.r[1]);
        for (int round = 0; round < 10; round++) {
            for (int i = 1; i <= 3; i++) drain(&nt, i);
            if (tn_raft_role_of(nt.r[1]) == TN_LEADER) break;
            size_t n = nt.nq;
            tn_raft_msg *batch[QCAP];
            memcpy(batch, nt.q, n * sizeof *batch);
            nt.nq = 0;
            for (size_t j = 0; j < n; j++) {
                tn_raft_step(nt.r[batch[j]->to], batch[j]);
                tn_raft_msg_free(batch[j]);
            }
        }
    }
    assert_int_equal(tn_raft_role_of(nt.r[1]), TN_LEADER);
    isolate(&nt, 1, 1);
    assert_int_equal(tn_raft_read_index(nt.r[1], 5), TN_SUCCESS);
    settle(&nt);
    assert_int_equal(nt.n_reads[1], 1);
    assert_false(nt.reads[1][0].ok);
    net_free(&nt);
}

static void test_lease_read(void **state)
{
    (void)state;
    tn_raft_config c = cfg_for(1, 3);
    c.lease_read = 1;
    c.lease_drift_ticks = 3;
    net nt;
    net_init(&nt, 3, &c);
    tick_all(&nt, 1);
    elect(&nt, 1);
    tick_node(&nt, 1, 2); /* a heartbeat round establishes the lease */
    isolate(&nt, 1, 1);
    assert_int_equal(tn_raft_read_index(nt.r[1], 1), TN_SUCCESS);
    drain(&nt, 1);
    assert_int_equal(nt.n_reads[1], 1); /* served from the lease, no round trip */
    assert_true(nt.reads[1][0].ok);
    for (int k = 0; k < 8; k++) tn_raft_tick(nt.r[1]); /* lease (10 - 3 ticks) runs out */
    settle(&nt);
    assert_int_equal(tn_raft_read_index(nt.r[1], 2), TN_SUCCESS);
    settle(&nt);
    assert_int_equal(nt.n_reads[1], 1); /* now it needs a quorum round it cannot get */
    net_free(&nt);
}

static void test_forwarding(void **state)
{
    (void)state;
    net nt;
    net_init(&nt, 3, NULL);
    assert_int_equal(tn_raft_propose(nt.r[2], "p", 1, NULL, NULL), TN_NOT_LEADER);
    assert_int_equal(tn_raft_read_index(nt.r[2], 3), TN_NOT_LEADER);
    tick_all(&nt, 1);
    elect(&nt, 1);
    uint64_t before = tn_raft_last_index(nt.r[1]);
    uint64_t idx = 99;
    assert_int_equal(tn_raft_propose(nt.r[3], "fwd", 3, &idx, NULL), TN_SUCCESS);
    assert_int_equal(idx, 0); /* forwarded: the index is not known here */
    settle(&nt);
    assert_int_equal(tn_raft_last_index(nt.r[1]), before + 1);
    const tn_raft_entry *e = tn_raft_entry_at(nt.r[3], before + 1);
    assert_non_null(e);
    assert_int_equal(e->len, 3);
    assert_memory_equal(e->data, "fwd", 3);
    net_free(&nt);
}

static void test_check_quorum_steps_down(void **state)
{
    (void)state;
    net nt;
    net_init(&nt, 3, NULL);
    tick_all(&nt, 1);
    elect(&nt, 1);
    isolate(&nt, 1, 1);
    tick_node(&nt, 1, 25);
    assert_int_not_equal(tn_raft_role_of(nt.r[1]), TN_LEADER);
    net_free(&nt);
}

static void test_membership(void **state)
{
    (void)state;
    tn_raft_config c = cfg_for(1, 3);
    net nt;
    memset(&nt, 0, sizeof nt);
    nt.n = 4;
    nt.auto_persist = 1;
    for (int i = 1; i <= 4; i++) {
        c.id = (uint64_t)i;
        nt.r[i] = tn_raft_new(&c); /* node 4 starts outside the configuration */
    }
    tick_all(&nt, 1);
    elect(&nt, 1);
    tn_raft_conf_change cc = {TN_CONF_ADD_LEARNER, 4};
    assert_int_equal(tn_raft_propose_conf(nt.r[1], &cc, NULL), TN_SUCCESS);
    tn_raft_conf_change cc2 = {TN_CONF_REMOVE, 3};
    assert_int_equal(tn_raft_propose_conf(nt.r[1], &cc2, NULL), TN_UNAVAILABLE); /* one at a time */
    settle(&nt);
    assert_int_equal(tn_raft_conf_of(nt.r[1])->n_learners, 1);
    assert_false(tn_raft_is_voter(nt.r[1], 4));
    assert_int_equal(tn_raft_commit(nt.r[4]), tn_raft_commit(nt.r[1])); /* the learner gets the log */
    /* a learner does not count: with 2 and 3 cut off, nothing commits */
    isolate(&nt, 2, 1);
    isolate(&nt, 3, 1);
    nt.cut[1][4] = nt.cut[4][1] = 0;
    uint64_t commit = tn_raft_commit(nt.r[1]);
    propose(&nt, 1, "q");
    settle(&nt);
    assert_int_equal(tn_raft_commit(nt.r[1]), commit);
    isolate(&nt, 2, 0);
    isolate(&nt, 3, 0);
    tick_node(&nt, 1, 2); /* the next heartbeat round repairs the lost appends */
    assert_int_equal(tn_raft_commit(nt.r[1]), commit + 1);
    cc.op = TN_CONF_PROMOTE;
    assert_int_equal(tn_raft_propose_conf(nt.r[1], &cc, NULL), TN_SUCCESS);
    settle(&nt);
    assert_true(tn_raft_is_voter(nt.r[4], 4));
    assert_int_equal(tn_raft_conf_of(nt.r[2])->n_voters, 4);
    /* removing the leader: it steps down once the change is applied */
    cc.op = TN_CONF_REMOVE;
    cc.node = 1;
    assert_int_equal(tn_raft_propose_conf(nt.r[1], &cc, NULL), TN_SUCCESS);
    settle(&nt);
    assert_int_not_equal(tn_raft_role_of(nt.r[1]), TN_LEADER);
    assert_false(tn_raft_is_voter(nt.r[2], 1));
    /* invalid changes */
    tick_all(&nt, 30);
    int ld = leader_of(&nt);
    assert_true(ld >= 2);
    tn_raft_conf_change bad = {TN_CONF_PROMOTE, 2};
    assert_int_equal(tn_raft_propose_conf(nt.r[ld], &bad, NULL), TN_CLIENT_REQ_ERROR);
    net_free(&nt);
}

static void test_leader_transfer(void **state)
{
    (void)state;
    net nt;
    net_init(&nt, 3, NULL);
    tick_all(&nt, 1);
    elect(&nt, 1);
    propose(&nt, 1, "t");
    settle(&nt);
    assert_int_equal(tn_raft_transfer_leader(nt.r[1], 3), TN_SUCCESS);
    /* no proposals while the transfer runs */
    assert_int_equal(tn_raft_propose(nt.r[1], "no", 2, NULL, NULL), TN_NOT_LEADER);
    settle(&nt);
    assert_int_equal(tn_raft_role_of(nt.r[3]), TN_LEADER);
    assert_int_equal(tn_raft_leader(nt.r[1]), 3);
    assert_int_equal(tn_raft_transfer_leader(nt.r[1], 2), TN_NOT_LEADER);
    net_free(&nt);
}

static void test_snapshot_to_lagging_follower(void **state)
{
    (void)state;
    net nt;
    net_init(&nt, 3, NULL);
    tick_all(&nt, 1);
    elect(&nt, 1);
    isolate(&nt, 3, 1);
    for (int k = 0; k < 20; k++) propose(&nt, 1, "s");
    settle(&nt);
    uint64_t applied = tn_raft_applied(nt.r[1]);
    assert_true(applied >= 21);
    assert_int_equal(tn_raft_compact(nt.r[1], applied, "STATE", 5), 0);
    assert_int_equal(tn_raft_compact(nt.r[1], applied, "STATE", 5), -1); /* not newer */
    assert_int_equal(tn_raft_first_index(nt.r[1]), applied + 1);
    isolate(&nt, 3, 0);
    tick_node(&nt, 1, 3);
    settle(&nt);
    assert_int_equal(nt.got_snapshot[3], 1);
    assert_int_equal(tn_raft_snapshot_of(nt.r[3])->index, applied);
    assert_int_equal(tn_raft_commit(nt.r[3]), tn_raft_commit(nt.r[1]));
    propose(&nt, 1, "after");
    settle(&nt);
    assert_int_equal(tn_raft_last_index(nt.r[3]), tn_raft_last_index(nt.r[1]));
    assert_int_equal(tn_raft_applied(nt.r[3]), tn_raft_commit(nt.r[1]));
    net_free(&nt);
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
        cmocka_unit_test(test_election_prevote_and_terms),
        cmocka_unit_test(test_vote_grant_waits_for_persist),
        cmocka_unit_test(test_vote_refused_to_stale_log),
        cmocka_unit_test(test_lease_guard_and_forced_vote),
        cmocka_unit_test(test_rejected_vote_keeps_election_timer),
        cmocka_unit_test(test_leader_counts_itself_only_when_durable),
        cmocka_unit_test(test_no_commit_of_old_term_by_counting),
        cmocka_unit_test(test_follower_ack_waits_and_truncates_conflict),
        cmocka_unit_test(test_fast_backoff_converges),
        cmocka_unit_test(test_pipelining_and_flow_control),
        cmocka_unit_test(test_read_index),
        cmocka_unit_test(test_read_refused_before_commit_in_term),
        cmocka_unit_test(test_lease_read),
        cmocka_unit_test(test_forwarding),
        cmocka_unit_test(test_check_quorum_steps_down),
        cmocka_unit_test(test_membership),
        cmocka_unit_test(test_leader_transfer),
        cmocka_unit_test(test_snapshot_to_lagging_follower),
        cmocka_unit_test(test_msg_codec),
        cmocka_unit_test(test_config_and_restore_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
