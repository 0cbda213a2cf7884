/* driver_int.h — what the files of the Raft test driver share (driver.c: nodes, disks, network, events;
 * driver_check.c: invariants and the trace). Not for users of the driver: they have driver.h. */
#ifndef TARN_RAFT_DRIVER_INT_H
#define TARN_RAFT_DRIVER_INT_H

#include "codec.h"
#include "driver.h"

#define TN_RT_TRACE_N 2048

/* disk operations, applied in order to the durable image when a sync covering them completes */
enum { TN_RT_OP_HS = 1, TN_RT_OP_TRUNC, TN_RT_OP_APPEND, TN_RT_OP_SNAP };

typedef struct tn_rt_op {
    int kind;
    uint64_t seq;
    tn_raft_hard_state hs;
    uint64_t trunc_from;
    tn_raft_entry *ents; /* deep copies */
    size_t n;
    tn_raft_snapshot_meta snap;
    uint8_t *snap_data;
    size_t snap_len;
} tn_rt_op;

typedef struct tn_rt_held {
    uint64_t need_seq; /* sent once the writes up to this sequence number are durable */
    tn_raft_msg *m;
} tn_rt_held;

typedef struct tn_rt_node {
    int id;
    int up, booted;
    uint64_t epoch;      /* incarnation; events of an earlier one are ignored */
    tn_raft *r;
    tn_raft_config cfg;
    uint64_t tick_us;
    /* durable image */
    tn_raft_hard_state d_hs;
    tn_raft_snapshot_meta d_snap;
    uint8_t *d_snap_data;
    size_t d_snap_len;
    tn_raft_entry *d_ents;
    size_t d_n, d_cap;
    /* written, not yet synced */
    tn_rt_op *ops;
    size_t n_ops, cap_ops;
    uint64_t op_seq, synced_seq;
    int sync_busy;
    uint64_t sync_target;
    uint64_t slow_min, slow_spread;
    int fail_next_sync;
    tn_rt_held *held;
    size_t n_held, cap_held;
    tn_rt_stats st;
    tn_raft_read_state *reads; /* st.reads */
    size_t cap_reads;
    /* invariant baselines for this incarnation */
    uint64_t seen_commit, seen_applied, checked_commit;
    uint64_t last_leader_term;
} tn_rt_node;

typedef struct tn_rt_qmsg {
    int from, to;
    tn_raft_msg *m;
} tn_rt_qmsg;

/* a read requested through tn_rt_read_index: its answer must not be older than this commit index */
typedef struct tn_rt_read_req {
    uint64_t ctx, min_index;
} tn_rt_read_req;

typedef struct tn_rt_lm_rec {
    uint64_t index, term;
    uint64_t hash, prev_term;
} tn_rt_lm_rec;

struct tn_rt {
    tn_rt_opts o;
    tn_rt_rng g;
    int n;
    tn_rt_node nodes[TN_RT_MAX_NODES];
    int link[TN_RT_MAX_NODES][TN_RT_MAX_NODES]; /* 1 = messages from i+1 to j+1 get through */
    /* timed mode */
    uint64_t now, seq;
    tn_rt_event *heap;
    size_t n_ev, cap_ev;
    unsigned loss_pm, dup_pm;
    uint64_t delay_max_us;
    /* step mode */
    tn_rt_qmsg *q, *q2;
    size_t nq, cap_q, cap_q2;
    uint64_t delivered;
    tn_wr wr;
    /* invariants */
    uint64_t *leader_of;                         /* by term */
    size_t cap_terms;
    uint64_t *c_term, *c_hash, *c_seen, *a_hash; /* by index: committed term/hash/seen-in-term, applied hash */
    size_t cap_idx;
    uint64_t max_commit;
    tn_rt_lm_rec *lm;                            /* log matching table: open addressing on (index, term) */
    size_t lm_cap, lm_n;
    uint64_t elections;
    tn_rt_read_req *rreq;
    size_t n_rreq, cap_rreq;
    char why[512];
    int violated;
    tn_rt_trace_rec trace[TN_RT_TRACE_N];
    uint64_t n_trace;
};

/* driver.c */
void *tn_rt_grow(void *p, size_t *cap, size_t need, size_t elem);
uint64_t tn_rt_hash(uint8_t type, const uint8_t *p, size_t n);
tn_rt_node *tn_rt_node_of(tn_rt *c, int id);

/* driver_check.c: called from the Ready loop */
void tn_rt_check_append(tn_rt *c, tn_rt_node *nd, const tn_raft_entry *e);
void tn_rt_check_apply(tn_rt *c, tn_rt_node *nd, const tn_raft_entry *e);
void tn_rt_check_read(tn_rt *c, tn_rt_node *nd, const tn_raft_read_state *rs);
void tn_rt_check_free(tn_rt *c);

#endif
