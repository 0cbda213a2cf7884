/* raft_int.h — internals shared by the files of the Raft core (not a public contract: use raft.h).
 *
 * The Raft core: election (pre-vote, check-quorum), replication with pipelining and flow control,
 * commit, ReadIndex and lease reads, snapshots, single-server membership change, leader transfer.
 * See raft.h for the contract and docs/raft.md for the rules and the message flow. The files:
 *   raft.c           the core state machine: roles and elections, message handling, conf changes, the
 *                    entry points (new/restore, tick, step, propose, transfer) and the Ready
 *   raft_log.c       the in-memory log: append, truncate, conflict search, stable (persisted) and
 *                    compaction
 *   raft_progress.c  membership and per-peer progress (match/next, probe/replicate/snapshot, inflight
 *                    window), commit by quorum, what the leader sends to each follower and its acks
 *   raft_read.c      ReadIndex (quorum rounds, batching) and lease reads
 *   raft_msg.c       message allocation and the binary codec
 */
#ifndef TARN_RAFT_INT_H
#define TARN_RAFT_INT_H

#include "raft.h"
#include "tn_code.h"

#include <stdlib.h>
#include <string.h>

#define MAX_INFLIGHT 256

enum { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

typedef struct inflight {
    uint64_t last;
    uint64_t bytes;
} inflight;

typedef struct progress {
    uint64_t id;
    int voter;
    uint64_t match, next;
    int state;
    int probe_sent;
    uint64_t pending_snap;
    uint32_t snap_elapsed;
    int recent_active;
    uint64_t read_acked;  /* highest read round this peer acked in this term */
    uint64_t lease_tick;  /* highest leader tick this peer echoed in this term (0 = none) */
    int vote;             /* -1 none, 0 rejected, 1 granted */
    inflight infl[MAX_INFLIGHT];
    uint32_t infl_start, infl_count;
    uint64_t infl_bytes;
    uint64_t commit_sent; /* highest commit index this peer can have learnt from our messages this term */
} progress;

typedef struct pending_read {
    uint64_t ctx;
    uint64_t index;
    uint64_t from;   /* requester; == id for a local request */
    uint64_t round;
} pending_read;

typedef struct msgvec {
    tn_raft_msg **v;
    size_t n, cap;
} msgvec;

struct tn_raft {
    tn_raft_config cfg;
    uint64_t id;
    uint64_t term, vote, leader;
    tn_raft_role role;

    /* log: ents[ents_start .. ents_n) hold indexes snap.index+1 .. */
    tn_raft_entry *ents;
    size_t ents_start, ents_n, ents_cap;
    tn_raft_snapshot_meta snap;
    uint8_t *snap_data;
    size_t snap_len;
    int snap_pending;       /* a received snapshot waits to be handed out */

    uint64_t commit, applied, stable;
    uint64_t persist_from;  /* first index not yet handed out for persistence */
    uint64_t trunc_pending; /* 0 or lowest truncation point since the last Ready */

    tn_raft_conf conf;
    uint64_t conf_applied_index;
    uint64_t pending_conf_index;

    progress *prs[TN_RAFT_MAX_NODES * 2];
    size_t n_prs;

    uint32_t election_elapsed, heartbeat_elapsed, rand_timeout;
    uint64_t since_leader_contact;
    uint64_t now;            /* ticks since creation */
    int need_timeout;
    int pending_bcast;       /* leader: new entries or commit to push out at the next Ready */
    int pending_bcast_empty;

    uint64_t transferee;
    uint32_t transfer_elapsed;
    int transfer_in_term;    /* a TimeoutNow went out in this term: no lease reads any more */

    pending_read *reads;     /* leader: waiting for the quorum round */
    size_t n_reads, cap_reads;
    uint64_t read_round;
    int read_round_sent;     /* a heartbeat carrying read_round has gone out (so a new read needs a new round) */
    int read_bcast_pending;  /* reads wait for a round: one broadcast in the next Ready serves them all */
    tn_raft_read_state *waits; /* confirmed, waiting for applied >= index */
    size_t n_waits, cap_waits;
    tn_raft_read_state *rs_out, *rs_handed;
    size_t n_rs_out, cap_rs_out, n_rs_handed, cap_rs_handed;

    msgvec out, out_after, handed, handed_after;
    tn_raft_hard_state last_hs;
    tn_raft_role last_role;
    uint64_t last_leader;
    int oom;
};

/* ---- reading the log (log layout: raft_log.c) --------------------------------------------------- */

static inline uint64_t last_index(const tn_raft *r) { return r->snap.index + (r->ents_n - r->ents_start); }

static inline tn_raft_entry *entry_at(const tn_raft *r, uint64_t i)
{
    if (i <= r->snap.index || i > last_index(r)) return NULL;
    return &r->ents[r->ents_start + (size_t)(i - r->snap.index - 1)];
}

static inline int term_at(const tn_raft *r, uint64_t i, uint64_t *t)
{
    if (i == r->snap.index) { *t = r->snap.term; return 0; }
    tn_raft_entry *e = entry_at(r, i);
    if (!e) { *t = 0; return -1; }
    *t = e->term;
    return 0;
}

static inline int match_term(const tn_raft *r, uint64_t i, uint64_t t)
{
    uint64_t x;
    return term_at(r, i, &x) == 0 && x == t;
}

static inline uint64_t last_term(const tn_raft *r)
{
    uint64_t t;
    term_at(r, last_index(r), &t);
    return t;
}

static inline size_t quorum(const tn_raft *r) { return r->conf.n_voters / 2 + 1; }

/* ---- raft.c: messages out ----------------------------------------------------------------------- */

/* Queues m (taking it; freed on OOM). Responses that promise durability wait for persistence. */
void tn_raft_send(tn_raft *r, tn_raft_msg *m);
/* An empty message of `type` to `to`; NULL (and r->oom) when out of memory. */
tn_raft_msg *tn_raft_new_msg(tn_raft *r, uint8_t type, uint64_t to);

/* ---- raft_log.c --------------------------------------------------------------------------------- */

/* Appends one entry (data copied) at last_index + 1. 0, or -1 with r->oom set. */
int tn_raft_log_append(tn_raft *r, uint64_t term, uint8_t type, const void *data, size_t len);
void tn_raft_log_truncate(tn_raft *r, uint64_t from); /* drops indexes >= from (from > commit) */
void tn_raft_log_free_all(tn_raft *r);
uint64_t tn_raft_find_conflict_by_term(const tn_raft *r, uint64_t i, uint64_t t);

/* ---- raft_progress.c ---------------------------------------------------------------------------- */

int tn_raft_conf_has(const uint64_t *v, uint32_t n, uint64_t id);
void tn_raft_conf_del(uint64_t *v, uint32_t *n, uint64_t id);
progress *tn_raft_pr_get(const tn_raft *r, uint64_t id); /* NULL if not a member */
void tn_raft_pr_reset(tn_raft *r, progress *p);
/* Rebuilds the progress set from r->conf. 0, or -1 with r->oom set. */
int tn_raft_sync_progress(tn_raft *r);
/* The quorum-th largest over the voters of match (which 0), read_acked (1) or lease_tick (2). */
uint64_t tn_raft_quorum_value(const tn_raft *r, int which, uint64_t self_val);
int tn_raft_maybe_commit(tn_raft *r); /* 1 if the commit index advanced */
int tn_raft_infl_full(const tn_raft *r, const progress *p);
int tn_raft_send_append(tn_raft *r, progress *p, int send_if_empty);
void tn_raft_flush_appends(tn_raft *r, int send_empty);
void tn_raft_bcast_heartbeat(tn_raft *r);
void tn_raft_leader_append_resp(tn_raft *r, progress *p, const tn_raft_msg *m);

/* ---- raft_read.c -------------------------------------------------------------------------------- */

void tn_raft_rs_push(tn_raft *r, tn_raft_read_state **v, size_t *n, size_t *cap, uint64_t ctx, uint64_t idx,
                     int ok);
void tn_raft_read_refuse(tn_raft *r, uint64_t from, uint64_t ctx);
void tn_raft_refuse_all_reads(tn_raft *r);
void tn_raft_confirm_reads(tn_raft *r);
int tn_raft_committed_in_term(const tn_raft *r);
void tn_raft_leader_read(tn_raft *r, uint64_t from, uint64_t ctx);

#endif
