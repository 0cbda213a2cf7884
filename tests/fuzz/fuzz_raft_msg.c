/* fuzz_raft_msg.c — libFuzzer target for the Raft message codec and the core's message handling.
 *
 * The input goes to tn_raft_msg_decode. Whatever decodes is encoded again and decoded again, and the two
 * decoded messages must be equal (abort() otherwise). The decoded message (addressed to node 2) is then
 * stepped into a follower and into a leader (a single voter with two learners, so that responses from
 * nodes 1 and 3 reach leader code paths), and their Readys are collected: none of it may crash, leak, or
 * break the core's own bounds. Deterministic and leak-free.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "codec.h"
#include "raft.h"


static void check(int ok)
{
    if (!ok) abort();
}

static int msg_eq(const tn_raft_msg *a, const tn_raft_msg *b)
{
    if (a->type != b->type || a->reject != b->reject || a->force != b->force || a->from != b->from ||
        a->to != b->to || a->term != b->term || a->log_term != b->log_term || a->index != b->index ||
        a->commit != b->commit || a->reject_hint != b->reject_hint || a->ctx != b->ctx ||
        a->n_entries != b->n_entries || a->snap.index != b->snap.index || a->snap_len != b->snap_len)
        return 0;
    for (size_t i = 0; i < a->n_entries; i++) {
        const tn_raft_entry *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type || x->len != y->len) return 0;
        if (x->len && memcmp(x->data, y->data, x->len) != 0) return 0;
    }
    if (a->snap.index) {
        if (a->snap.term != b->snap.term || memcmp(&a->snap.conf, &b->snap.conf, sizeof a->snap.conf) != 0)
            return 0;
        if (a->snap_len && memcmp(a->snap_data, b->snap_data, a->snap_len) != 0) return 0;
    }
    return 1;
}

static void drain(tn_raft *r)
{
    for (int guard = 0; guard < 8 && tn_raft_has_ready(r); guard++) {
        tn_raft_ready rd;
        tn_raft_ready_get(r, &rd);
        for (size_t i = 0; i < rd.n_msgs; i++) tn_raft_msg_free(rd.msgs[i]);
        for (size_t i = 0; i < rd.n_msgs_after_persist; i++) tn_raft_msg_free(rd.msgs_after_persist[i]);
        uint64_t last = tn_raft_last_index(r), t = 0;
        if (tn_raft_term_at(r, last, &t) == 0) tn_raft_persisted(r, last, t);
    }
}

static tn_raft *make_node(int leader)
{
    tn_raft_config c;
    memset(&c, 0, sizeof c);
    c.id = 2;
    c.election_ticks = 10;
    c.heartbeat_ticks = 2;
    c.max_inflight_msgs = 4;
    c.max_entries_per_msg = 8;
    c.pre_vote = 1;
    c.check_quorum = 1;
    c.lease_read = 1;
    c.lease_drift_ticks = 2;
    if (leader) {
        c.conf.voters[c.conf.n_voters++] = 2;
        c.conf.learners[c.conf.n_learners++] = 1;
        c.conf.learners[c.conf.n_learners++] = 3;
    } else {
        for (uint64_t i = 1; i <= 3; i++) c.conf.voters[c.conf.n_voters++] = i;
    }
    uint8_t a = 'a', b = 'b';
    tn_raft_entry ents[3] = {{1, 1, TN_ENTRY_NORMAL, 1, &a}, {1, 2, TN_ENTRY_NORMAL, 1, &b},
                             {2, 3, TN_ENTRY_NOOP, 0, NULL}};
    tn_raft_hard_state hs = {2, 0, 2};
    tn_raft_snapshot_meta none;
    memset(&none, 0, sizeof none);
    tn_raft *r = tn_raft_restore(&c, &hs, &none, NULL, 0, ents, 3);
    check(r != NULL);
    drain(r);
    if (leader) {
        for (int k = 0; k < 40 && tn_raft_role_of(r) != TN_LEADER; k++) {
            tn_raft_tick(r);
            drain(r);
        }
        check(tn_raft_role_of(r) == TN_LEADER);
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tn_raft_msg *m = NULL, *m2 = NULL;
    if (tn_raft_msg_decode(data, size, &m) != 0) {
        check(m == NULL);
        return 0;
    }
    tn_wr w;
    tn_wr_init(&w);
    check(tn_raft_msg_encode(m, &w) == 0);
    check(tn_raft_msg_decode(w.p, w.len, &m2) == 0);
    check(msg_eq(m, m2));
    tn_wr_free(&w);
    tn_raft_msg_free(m2);

    m->to = 2;
    for (int leader = 0; leader < 2; leader++) {
        tn_raft *r = make_node(leader);
        tn_raft_step(r, m);
        drain(r);
        tn_raft_tick(r);
        tn_raft_step(r, m); /* the same message again (duplicates happen) */
        drain(r);
        check(tn_raft_commit(r) <= tn_raft_last_index(r));
        check(tn_raft_applied(r) <= tn_raft_commit(r));
        tn_raft_free(r);
    }
    tn_raft_msg_free(m);
    return 0;
}
