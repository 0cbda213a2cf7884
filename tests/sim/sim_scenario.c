/* sim_scenario.c — the simulator's faults: the random nemesis, the named regression scenarios (scripted fault
 * schedules for the failure modes Jepsen found in real systems) and the end-of-run verdicts. See sim.h. */
#include "sim_int.h"

#include <inttypes.h>
#include <string.h>

#include "tn_code.h"

int tn_sim_scenario_id(const char *name)
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

/* 1 if node id is a voter or a learner in the configuration of r */
static int is_member(tn_raft *r, int id)
{
    const tn_raft_conf *c = tn_raft_conf_of(r);
    int member = tn_raft_is_voter(r, (uint64_t)id);
    for (uint32_t k = 0; k < c->n_learners; k++)
        if (c->learners[k] == (uint64_t)id) member = 1;
    return member;
}

/* ---------------------------------------------------------------------------------------------- */
/* nemesis                                                                                         */

void tn_sim_nemesis(sim *s)
{
    tn_rt *c = s->c;
    unsigned pick = (unsigned)tn_rt_rng_below(s->g, 100);
    if (pick < 20) {
        /* partition: a random subset on one side; sometimes only one direction is cut */
        uint64_t mask = tn_rt_rng_below(s->g, (1ull << s->n) - 1) + 1;
        int asym = tn_rt_rng_chance(s->g, 300);
        tn_rt_partition(c, mask, asym);
        tn_rt_at(c, tn_sim_now(s) + 100000 + tn_rt_rng_below(s->g, 600000), EV_HEAL);
    } else if (pick < 35) {
        int i = (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
        if (!tn_rt_up(c, i + 1)) return;
        tn_rt_crash(c, i + 1, TN_RT_KEEP_RANDOM);
        tn_rt_restart_at(c, i + 1, tn_sim_now(s) + 20000 + tn_rt_rng_below(s->g, 400000));
    } else if (pick < 40) {
        /* crash the leader specifically */
        int ld = tn_rt_leader(c);
        if (!ld) return;
        tn_rt_crash(c, ld, TN_RT_KEEP_RANDOM);
        tn_rt_restart_at(c, ld, tn_sim_now(s) + 20000 + tn_rt_rng_below(s->g, 300000));
    } else if (pick < 45) {
        int i = (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
        if (tn_rt_up(c, i + 1)) tn_rt_fail_next_sync(c, i + 1, 1);
    } else if (pick < 52) {
        int i = (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
        tn_sim_set_slow(s, i, !s->nodes[i].slow_disk);
    } else if (pick < 60) {
        unsigned loss = (unsigned)tn_rt_rng_below(s->g, 200);
        unsigned dup = (unsigned)tn_rt_rng_below(s->g, 100);
        uint64_t delay = 1000 + tn_rt_rng_below(s->g, tn_rt_rng_chance(s->g, 200) ? 60000 : 8000);
        tn_sim_set_net(s, loss, dup, delay);
    } else if (pick < 72) {
        /* membership change through the leader */
        int ld = tn_rt_leader(c);
        if (!ld) return;
        tn_raft *r = tn_rt_raft(c, ld);
        const tn_raft_conf *conf = tn_raft_conf_of(r);
        tn_raft_conf_change cc = {0};
        int target = 1 + (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
        int v = tn_raft_is_voter(r, (uint64_t)target), l = 0;
        for (uint32_t k = 0; k < conf->n_learners; k++)
            if (conf->learners[k] == (uint64_t)target) l = 1;
        if (l) cc.op = TN_CONF_PROMOTE;
        else if (!v) cc.op = TN_CONF_ADD_LEARNER;
        else if (conf->n_voters > (uint32_t)(s->n > 3 ? 3 : 2)) cc.op = TN_CONF_REMOVE;
        else return;
        cc.node = (uint64_t)target;
        int rc = tn_raft_propose_conf(r, &cc, NULL);
        tn_rt_trace(c, TN_RT_TR_CONF, ld, cc.op, 0, cc.node, (uint64_t)rc, 0);
        tn_rt_process(c, ld);
    } else if (pick < 80) {
        int ld = tn_rt_leader(c);
        if (!ld) return;
        int target = 1 + (int)tn_rt_rng_below(s->g, (uint64_t)s->n);
        int rc = tn_raft_transfer_leader(tn_rt_raft(c, ld), (uint64_t)target);
        tn_rt_trace(c, TN_RT_TR_XFER, ld, 0, 0, (uint64_t)target, (uint64_t)rc, 0);
        tn_rt_process(c, ld);
    } else if (pick < 90) {
        tn_rt_heal(c);
        tn_sim_set_net(s, 10, 10, 3000);
    }
    /* else: quiet period */
}

/* ---------------------------------------------------------------------------------------------- */
/* scenarios: scripted fault schedules                                                             */

void tn_sim_script_at(sim *s, uint64_t t, int step)
{
    tn_rt_event *e = tn_rt_at(s->c, t, EV_SCRIPT);
    e->a = step;
}

static void forced_read(sim *s, int ci, int i, uint64_t key) { tn_sim_forced_op(s, ci, i, LC_READ, key, 0); }

/* Proposes a scripted write to the scratch register (no client waits for it) on node id. */
static uint64_t scratch_write(sim *s, int id, int64_t value)
{
    cmd cm = {CMD_WRITE, NKEYS, NCLIENTS, 0, 0, 0};
    cm.req_id = ++s->next_req;
    cm.arg = value;
    uint8_t b[40];
    size_t n = tn_sim_cmd_encode(&cm, b);
    uint64_t idx = 0;
    tn_raft_propose(tn_rt_raft(s->c, id), b, n, &idx, NULL);
    return idx;
}

void tn_sim_on_script(sim *s, int step)
{
    tn_rt *c = s->c;
    uint64_t now = tn_sim_now(s);
    int ld = tn_rt_leader(c); /* node id, 0 if none */
    switch (s->scen) {
    case SC_DEPOSED_READ:
    case SC_DEPOSED_LEASE:
        /* step 0: isolate the leader; step 1: a read to the deposed leader (it must not answer with an
         * old value: with ReadIndex the quorum round cannot complete; with a lease, the lease has run out
         * before anyone else can be elected). */
        if (step == 0) {
            if (!ld) { tn_sim_script_at(s, now + 50000, 0); return; }
            s->scen_node = ld;
            tn_rt_isolate(c, ld);
            s->scen_x = 1;
            tn_sim_script_at(s, now + 1000, 1);
            tn_sim_script_at(s, now + 600000, 2);
        } else if (step == 1) {
            forced_read(s, 0, s->scen_node - 1, 0);
        } else if (step == 2) {
            forced_read(s, 1, s->scen_node - 1, 0);
            tn_sim_script_at(s, now + 300000, 3);
        } else if (step == 3) {
            tn_rt_heal(c);
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
            if (!ld) { tn_sim_script_at(s, now + 50000, 0); return; }
            s->scen_node = ld;
            int f1 = ld % s->n, f2 = (ld + 1) % s->n; /* 0-based */
            s->scen_x = (uint64_t)f1;
            tn_rt_isolate(c, f2 + 1);
            tn_sim_set_slow(s, ld - 1, 2);
            tn_rt_fail_next_sync(c, ld, 1);
            tn_sim_forced_op(s, 0, ld - 1, LC_WRITE, 0, 777);
            tn_sim_script_at(s, now + 400000, 1);
        } else if (step == 1) {
            tn_rt_heal(c);
            tn_rt_isolate(c, (int)s->scen_x + 1);
            tn_sim_set_slow(s, s->scen_node - 1, 0);
            tn_sim_script_at(s, now + 600000, 2);
        } else if (step == 2) {
            tn_rt_heal(c);
            tn_sim_forced_op(s, 1, (int)s->scen_x, LC_READ, 0, 0);
        }
        break;
    case SC_VOTE_CRASH:
        /* 3 nodes, pre-vote and check-quorum on. The leader L (term t) is cut off; both followers have a
         * slow disk (30-50 ms per fsync). One of them wins term t+1 with the other's vote; at that instant the
         * voter crashes without its pending writes and restarts, and the winner is cut off while L and the
         * voter reconnect. If the vote grant went out before the vote was durable
         * (--mutate skip_vote_persist), the voter may vote again in term t+1: two leaders in one term. */
        if (step == 0) {
            if (!ld) { tn_sim_script_at(s, now + 50000, 0); return; }
            s->f8_x = ld - 1;
            s->f8_a = tn_raft_term(tn_rt_raft(c, ld));
            for (int i = 0; i < s->n; i++)
                if (i != s->f8_x) tn_sim_set_slow(s, i, 3);
            tn_rt_isolate(c, s->f8_x + 1);
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
            if (!ld) { tn_sim_script_at(s, now + 50000, 0); return; }
            int x = ld - 1, y = (x + 1) % s->n;
            s->f8_x = x;
            s->f8_y = y;
            tn_rt_partition(c, (1ull << x) | (1ull << y), 0);
            s->f8_a = scratch_write(s, ld, 4242);
            tn_rt_process(c, ld);
            s->f8_phase = 1;
        } else if (step == 1) {
            tn_rt_partition(c, 1ull << s->f8_z, 0);
            s->f8_phase = 3;
        } else if (step == 2) {
            tn_rt_heal(c);
        }
        break;
    case SC_TRUNCATE:
        /* step 0: cut the leader off (its new entries stay uncommitted in its log); step 1: heal — the
         * old leader must truncate its uncommitted suffix and converge. */
        if (step == 0) {
            if (!ld) { tn_sim_script_at(s, now + 50000, 0); return; }
            s->scen_node = ld;
            tn_rt_isolate(c, ld);
            /* give it something uncommitted to hold */
            for (int k = 0; k < 3; k++) scratch_write(s, ld, -1 - k);
            tn_rt_process(c, ld);
            tn_sim_script_at(s, now + 700000, 1);
        } else if (step == 1) {
            tn_rt_heal(c);
        }
        break;
    case SC_CONF_CRASH:
        /* the leader proposes a membership change and crashes right away; then the same again for the
         * new leader with a promotion. Safety must hold and the cluster must converge on one config. */
        if (step == 0 || step == 2) {
            if (!ld) { tn_sim_script_at(s, now + 50000, step); return; }
            tn_raft_conf_change cc = {0};
            if (step == 0) {
                cc.op = TN_CONF_REMOVE;
                cc.node = (uint64_t)(ld % s->n + 1);
            } else {
                cc.op = TN_CONF_ADD_LEARNER;
                cc.node = s->scen_x;
            }
            int rc = tn_raft_propose_conf(tn_rt_raft(c, ld), &cc, NULL);
            if (rc != TN_SUCCESS) { tn_sim_script_at(s, now + 50000, step); return; }
            if (step == 0) s->scen_x = cc.node;
            tn_rt_trace(c, TN_RT_TR_CONF, ld, cc.op, 0, cc.node, (uint64_t)rc, 0);
            tn_rt_process(c, ld);
            /* deliver the appends that are in flight, but crash before the entry is committed */
            tn_sim_script_at(s, now + 300, 100 + ld - 1);
            tn_sim_script_at(s, now + 500000, step + 1);
        } else if (step == 1) {
            tn_sim_script_at(s, now + 1000, 2);
        } else if (step == 3) {
            /* promote it back */
            if (!ld) { tn_sim_script_at(s, now + 50000, 3); return; }
            tn_raft_conf_change cc = {TN_CONF_PROMOTE, s->scen_x};
            if (tn_raft_propose_conf(tn_rt_raft(c, ld), &cc, NULL) != TN_SUCCESS) {
                tn_sim_script_at(s, now + 50000, 3);
                return;
            }
            tn_rt_process(c, ld);
        } else if (step >= 100) {
            int i = step - 100;
            tn_rt_crash(c, i + 1, TN_RT_KEEP_RANDOM);
            tn_rt_restart_at(c, i + 1, now + 100000);
        }
        break;
    default:
        break;
    }
}

/* Called after every step that touched node id: scenario phases that react the instant a state is reached. */
void tn_sim_scenario_watch(sim *s, int id)
{
    tn_rt *c = s->c;
    tn_raft *r = tn_rt_raft(c, id);
    uint64_t now = tn_sim_now(s);
    if (s->scen == SC_VOTE_CRASH && s->f8_phase == 1 && r && id - 1 != s->f8_x &&
        tn_raft_role_of(r) == TN_LEADER && tn_raft_term(r) > s->f8_a) {
        /* X won with the vote of Y: Y crashes before its (slow) fsync and restarts at once; X is cut off,
         * the old leader and Y can talk. A vote that was sent before it was durable is now forgotten. */
        int x = id - 1, y = 3 - s->f8_x - x;
        s->f8_phase = 2;
        tn_rt_crash(c, y + 1, TN_RT_KEEP_NONE);
        tn_sim_set_slow(s, y, 0);
        tn_rt_restart_at(c, y + 1, now + 5000);
        tn_rt_heal(c);
        tn_rt_isolate(c, x + 1);
        return;
    }
    if (s->scen != SC_FIGURE8 || !r) return;
    int i = id - 1;
    if (s->f8_phase == 1 && i != s->f8_x && i != s->f8_y && tn_raft_role_of(r) == TN_LEADER) {
        s->f8_z = i;
        tn_rt_isolate(c, id); /* its appends in flight are dropped at delivery */
        s->f8_phase = 2;
        tn_sim_script_at(s, now + 300000, 1);
    } else if (s->f8_phase == 3 && (i == s->f8_x || i == s->f8_y) && tn_raft_role_of(r) == TN_LEADER && s->f8_a &&
               tn_raft_commit(r) >= s->f8_a) {
        s->f8_phase = 4;
        tn_rt_trace(c, TN_RT_TR_NOTE, id, 8, 0, s->f8_a, tn_raft_commit(r), 0);
        tn_rt_crash(c, s->f8_x + 1, TN_RT_KEEP_NONE);
        tn_rt_crash(c, s->f8_y + 1, TN_RT_KEEP_NONE);
        for (int k = 0; k < 2; k++) tn_rt_restart_at(c, (k ? s->f8_y : s->f8_x) + 1, now + 800000);
        tn_sim_script_at(s, now + 100000, 2);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* verdicts                                                                                        */

/* After the quiet period (no faults, all nodes restarted, disks fast) the cluster must have a leader and
 * every member must have caught up with what was committed before it: a stuck follower or a lost
 * acknowledgement that is never repaired shows up here. */
void tn_sim_check_liveness(sim *s)
{
    tn_rt *c = s->c;
    int ld = tn_rt_leader(c);
    if (!ld) {
        tn_rt_fail(c, "liveness: no leader at the end of the quiet period");
        return;
    }
    for (int id = 1; id <= s->n; id++) {
        if (!is_member(tn_rt_raft(c, ld), id)) continue;
        tn_raft *r = tn_rt_raft(c, id);
        if (!r) {
            tn_rt_fail(c, "liveness: member n%d is still down at the end", id);
            return;
        }
        if (tn_raft_applied(r) < s->commit_at_quiet) {
            tn_rt_fail(c, "liveness: n%d applied only %" PRIu64 " by the end, %" PRIu64 " was committed when the "
                       "faults stopped", id, tn_raft_applied(r), s->commit_at_quiet);
            return;
        }
    }
}

/* Post-run checks specific to a scenario (beyond the invariants and linearizability). */
void tn_sim_scenario_verdict(sim *s)
{
    tn_rt *c = s->c;
    if (tn_rt_failed(c)) return;
    switch (s->scen) {
    case SC_DEPOSED_READ:
    case SC_DEPOSED_LEASE:
        /* checked as the reads are served (sim.c, sm_read) and by linearizability */
        break;
    case SC_TRUNCATE:
        if (tn_rt_stats_of(c, s->scen_node)->truncations == 0)
            tn_rt_fail(c, "scenario truncate_uncommitted: the deposed leader n%d never truncated its "
                       "uncommitted suffix", s->scen_node);
        break;
    case SC_FAILED_WRITE:
        break;
    case SC_CONF_CRASH: {
        /* every live member (per the leader's configuration) converges on the leader's configuration; a
         * node whose removal it never received legitimately keeps its old view (it is no member) */
        int ld = tn_rt_leader(c);
        if (!ld) break;
        const tn_raft_conf *ref = tn_raft_conf_of(tn_rt_raft(c, ld));
        for (int id = 1; id <= s->n; id++) {
            tn_raft *r = tn_rt_raft(c, id);
            if (!r || !is_member(tn_rt_raft(c, ld), id)) continue;
            const tn_raft_conf *cf = tn_raft_conf_of(r);
            if (cf->n_voters != ref->n_voters || cf->n_learners != ref->n_learners)
                tn_rt_fail(c, "scenario conf_change_leader_crash: member n%d ended with %u voters / %u learners, "
                           "the leader n%d with %u / %u", id, cf->n_voters, cf->n_learners, ld,
                           ref->n_voters, ref->n_learners);
        }
        break;
    }
    default:
        break;
    }
}
