/* sim_int.h — what the files of tarn-sim share: the run's state (sim.c: clients, state machine, the event
 * loop; sim_scenario.c: the nemesis, the named regression scenarios and the end-of-run verdicts). The nodes,
 * their disks, the network, the clock and the invariant checks are the Raft test driver's (tests/raft). */
#ifndef TARN_SIM_INT_H
#define TARN_SIM_INT_H

#include "driver.h"
#include "lincheck.h"
#include "sim.h"

#define MAXN 7
#define NKEYS 3
#define NCLIENTS 4
#define TICK_US 10000
#define ELECTION_TICKS 10
#define HEARTBEAT_TICKS 3
#define LEASE_DRIFT 4
#define CLIENT_TIMEOUT_US 400000
#define COMPACT_EVERY 48

/* the simulator's own events, after the driver's (deliver, tick, sync, restart) */
enum {
    EV_CLIENT_NEXT = TN_RT_EV_USER,
    EV_CLIENT_TIMEOUT,
    EV_REQ_ARRIVE,
    EV_RESP_ARRIVE,
    EV_NEMESIS,
    EV_HEAL,
    EV_SCRIPT
};

/* the simulator's own trace records */
enum { TR_REQ = TN_RT_TR_USER, TR_RESP };

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

typedef struct cmd {
    uint8_t kind;
    uint8_t key;
    uint8_t client;
    uint64_t req_id;
    int64_t arg, arg2;
} cmd;

typedef struct pending_req {
    uint64_t req_id;
    int client;
    int kind;
} pending_req;

/* The simulator's side of a node (the driver has the rest): its state machine, the client requests it
 * answers once they are applied or read, and how slow its disk is. */
typedef struct sim_node {
    sm_state sm;
    pending_req *reqs;
    size_t n_reqs, cap_reqs;
    int slow_disk;
} sim_node;

typedef struct client {
    int busy;
    int proc;         /* lincheck client id: a fresh one after an unknown outcome */
    uint64_t req_id;
    size_t op;        /* index into the history */
    int target;       /* node it believes is leader (1-based) */
    int64_t last_seen[NKEYS];
    uint64_t counter;
} client;

typedef struct sim {
    const sim_opts *o;
    tn_rt *c;
    tn_rt_rng *g;
    uint64_t steps;
    int n;
    sim_node nodes[MAXN];
    unsigned loss_pm;       /* the network's quality, for client traffic too */
    uint64_t delay_max_us;
    client clients[NCLIENTS];
    int next_proc;
    uint64_t next_req;
    lc_op *hist;
    size_t n_hist, cap_hist;
    uint64_t commit_at_quiet;
    int protected_cfg;      /* pre-vote and check-quorum both on */
    int lease;
    /* scenario bookkeeping */
    int scen;
    int scen_node;
    uint64_t scen_x;
    int f8_x, f8_y, f8_z, f8_phase;
    uint64_t f8_a;
} sim;

/* sim.c */
uint64_t tn_sim_now(sim *s);
void tn_sim_set_net(sim *s, unsigned loss_pm, unsigned dup_pm, uint64_t delay_max_us);
void tn_sim_set_slow(sim *s, int i, int level);
size_t tn_sim_cmd_encode(const cmd *c, uint8_t *b);
void tn_sim_forced_op(sim *s, int ci, int i, lc_kind kind, uint64_t key, int64_t value);

/* sim_scenario.c */
int tn_sim_scenario_id(const char *name);
void tn_sim_nemesis(sim *s);
void tn_sim_script_at(sim *s, uint64_t t, int step);
void tn_sim_on_script(sim *s, int step);
void tn_sim_scenario_watch(sim *s, int id);
void tn_sim_check_liveness(sim *s);
void tn_sim_scenario_verdict(sim *s);

#endif
