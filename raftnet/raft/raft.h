/* raft.h — the Raft consensus core as a pure state machine (no sockets, files, clocks, threads or
 * randomness inside).
 *
 * Inputs:  tn_raft_step (a received message), tn_raft_tick (one logical clock tick), tn_raft_propose /
 *          tn_raft_propose_conf (a client command / membership change), tn_raft_read_index (linearizable
 *          read request), tn_raft_transfer_leader, tn_raft_persisted ("durable up to (index, term)"),
 *          tn_raft_compact (the driver took a snapshot of its state machine), tn_raft_set_election_timeout.
 * Output:  tn_raft_ready_get fills a tn_raft_ready batch: hard state and entries to persist, a received
 *          snapshot to install, messages to send now, messages to send only once everything persisted so far
 *          is durable, committed entries to apply, read states that became safe, soft-state changes, and a
 *          flag asking the driver for a fresh randomized election timeout.
 *
 * Log: the core keeps the whole log after its latest snapshot in memory (entries own their data). On a
 * restart the driver re-creates the core from what is durable (tn_raft_restore): the snapshot metadata (and
 * data, which the core keeps to send to lagging followers), the hard state and the log entries after the
 * snapshot. This fits a segment-file log store: append(index, term, bytes) for rd.entries after truncating
 * from rd.truncate_from, sync, compact prefix after tn_raft_compact, read everything back at start-up.
 *
 * Membership: single-server changes, one at a time. A conf-change entry takes effect when it is APPLIED
 * (handed to the driver in rd.committed) on that node — the same rule on every node, including on restart
 * when committed entries are handed out again. A leader accepts a conf change only when it has committed an
 * entry of its current term and every earlier conf change in its log has been applied. A leader removed by
 * a change steps down when it applies the change.
 *
 * "Applied": the core treats an entry as applied as soon as it hands it out in rd.committed; the driver must
 * apply rd.snapshot (if any) then rd.committed in order before it serves rd.read_states of the same Ready,
 * and before it calls tn_raft_ready_get again.
 *
 * Ownership: everything a Ready points to (entries, snapshot data, the arrays) belongs to the core and stays
 * valid until the next call into the core with the same tn_raft, EXCEPT the messages: each tn_raft_msg* in
 * rd.msgs / rd.msgs_after_persist is handed to the driver, who frees it with tn_raft_msg_free (and the arrays
 * themselves stay with the core). Messages passed to tn_raft_step stay owned by the caller.
 *
 * Thread: none inside; one tn_raft must be used by one thread at a time.
 */
#ifndef TARN_RAFT_H
#define TARN_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define TN_RAFT_MAX_NODES 16

typedef enum tn_raft_entry_type {
    TN_ENTRY_NORMAL = 0,
    TN_ENTRY_CONF = 1, /* data: tn_raft_conf_change encoded by tn_raft_conf_encode */
    TN_ENTRY_NOOP = 2  /* appended by a new leader to commit an entry of its term */
} tn_raft_entry_type;

typedef struct tn_raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type;
    uint32_t len;
    uint8_t *data;
} tn_raft_entry;

typedef enum tn_raft_role {
    TN_FOLLOWER = 0,
    TN_PRE_CANDIDATE = 1,
    TN_CANDIDATE = 2,
    TN_LEADER = 3
} tn_raft_role;

typedef enum tn_raft_conf_op {
    TN_CONF_ADD_VOTER = 1,  /* also used to promote a learner */
    TN_CONF_REMOVE = 2,     /* removes a voter or a learner */
    TN_CONF_ADD_LEARNER = 3,
    TN_CONF_PROMOTE = 4     /* learner -> voter (fails if not a learner) */
} tn_raft_conf_op;

typedef struct tn_raft_conf_change {
    uint8_t op;
    uint64_t node;
} tn_raft_conf_change;

typedef struct tn_raft_conf {
    uint64_t voters[TN_RAFT_MAX_NODES];
    uint32_t n_voters;
    uint64_t learners[TN_RAFT_MAX_NODES];
    uint32_t n_learners;
} tn_raft_conf;

typedef struct tn_raft_hard_state {
    uint64_t term;
    uint64_t vote;   /* 0 = none */
    uint64_t commit;
} tn_raft_hard_state;

typedef struct tn_raft_snapshot_meta {
    uint64_t index;  /* 0 = no snapshot */
    uint64_t term;
    tn_raft_conf conf;
} tn_raft_snapshot_meta;

/* Deliberate rule breakers, used only by the simulator to show that it catches bugs. All off (0) in real
 * use; the daemon never sets them. */
typedef struct tn_raft_mutations {
    int commit_old_term;      /* commit an entry of an earlier term by counting replicas */
    int skip_vote_persist;    /* send vote grants before the vote is durable */
    int no_log_check_vote;    /* grant votes without the up-to-date log check */
    int read_without_quorum;  /* serve ReadIndex without the heartbeat quorum round */
    int ack_before_persist;   /* follower acknowledges appends before they are durable */
    int count_unpersisted;    /* leader counts its own entries before they are durable */
} tn_raft_mutations;

typedef struct tn_raft_config {
    uint64_t id;                   /* this node, != 0 */
    tn_raft_conf conf;             /* initial membership when there is no snapshot */
    uint32_t election_ticks;       /* base election timeout; the randomized one is in [base, 2*base) */
    uint32_t heartbeat_ticks;      /* < election_ticks */
    uint32_t max_inflight_msgs;    /* append messages in flight per follower (pipelining), >= 1 */
    uint64_t max_inflight_bytes;   /* bytes of entry data in flight per follower, 0 = unlimited */
    uint32_t max_entries_per_msg;  /* batching bound, >= 1 */
    uint64_t max_bytes_per_msg;    /* batching bound (at least one entry always goes), 0 = unlimited */
    int pre_vote;
    int check_quorum;
    int lease_read;                /* only honoured with check_quorum */
    uint32_t lease_drift_ticks;    /* lease = election_ticks - drift since the last quorum-acked round */
    tn_raft_mutations mutate;
} tn_raft_config;

typedef enum tn_raft_msg_type {
    TN_MSG_PROP = 1,          /* follower -> leader: forwarded proposal (entries) */
    TN_MSG_PREVOTE = 2,
    TN_MSG_PREVOTE_RESP = 3,
    TN_MSG_VOTE = 4,
    TN_MSG_VOTE_RESP = 5,
    TN_MSG_APP = 6,           /* index/log_term = previous entry; entries; commit */
    TN_MSG_APP_RESP = 7,      /* index = match (or the rejected index), reject + hint */
    TN_MSG_HB = 8,            /* commit; ctx = read round; index = leader tick (lease) */
    TN_MSG_HB_RESP = 9,       /* echoes ctx and index */
    TN_MSG_SNAP = 10,         /* snapshot meta + data */
    TN_MSG_READ = 11,         /* follower -> leader: forwarded read request (ctx) */
    TN_MSG_READ_RESP = 12,    /* leader -> follower: read index for ctx (reject = 1: refused) */
    TN_MSG_TIMEOUT_NOW = 13   /* leader -> transferee: campaign now */
} tn_raft_msg_type;

#define TN_RAFT_MSG_TYPE_MAX 13

typedef struct tn_raft_msg {
    uint8_t type;
    uint8_t reject;
    uint8_t force;          /* vote requested by a leader transfer (ignores the leader lease) */
    uint64_t from, to, term;
    uint64_t log_term;
    uint64_t index;
    uint64_t commit;
    uint64_t reject_hint;
    uint64_t ctx;
    size_t n_entries;
    tn_raft_entry *entries; /* entry data points into `buf` */
    tn_raft_snapshot_meta snap;
    const uint8_t *snap_data;
    size_t snap_len;
    void *buf;              /* owns the entries array, the entry data and the snapshot data */
} tn_raft_msg;

typedef struct tn_raft_read_state {
    uint64_t ctx;
    uint64_t index;  /* serve once the applied index reaches it (it already has when handed out) */
    int ok;          /* 0: refused (no leader / not committed in term / transfer); retry */
} tn_raft_read_state;

typedef struct tn_raft_ready {
    int hs_changed;
    tn_raft_hard_state hs;
    uint64_t truncate_from;       /* != 0: drop the persisted log from this index on, before appending */
    const tn_raft_entry *entries; /* to append (then persist) */
    size_t n_entries;
    int has_snapshot;             /* received snapshot: persist it (replacing the log) and install it */
    tn_raft_snapshot_meta snapshot;
    const uint8_t *snapshot_data;
    size_t snapshot_len;
    tn_raft_msg **msgs;           /* may go out now */
    size_t n_msgs;
    tn_raft_msg **msgs_after_persist; /* only after this and all earlier Readys' writes are durable */
    size_t n_msgs_after_persist;
    const tn_raft_entry *committed; /* apply in order */
    size_t n_committed;
    const tn_raft_read_state *read_states;
    size_t n_read_states;
    int soft_changed;
    tn_raft_role role;
    uint64_t leader;
    int need_election_timeout;    /* call tn_raft_set_election_timeout with a fresh random value */
} tn_raft_ready;

typedef struct tn_raft tn_raft;

/* Validates cfg and creates a fresh node (term 0, empty log). NULL on a bad config or out of memory. */
tn_raft *tn_raft_new(const tn_raft_config *cfg);

/* Creates a node from durable state after a restart: hs, the snapshot (meta.index 0 = none; data is copied)
 * and the log entries after the snapshot (copied; contiguous, starting at meta.index + 1). The membership is
 * the snapshot's if there is one, else cfg->conf; committed conf changes are re-applied as they are handed
 * out again. All given entries count as durable. NULL on inconsistent input or out of memory. */
tn_raft *tn_raft_restore(const tn_raft_config *cfg, const tn_raft_hard_state *hs,
                         const tn_raft_snapshot_meta *snap, const uint8_t *snap_data, size_t snap_len,
                         const tn_raft_entry *ents, size_t n);

void tn_raft_free(tn_raft *r);

/* Sets the randomized election timeout (ticks, should be in [election_ticks, 2*election_ticks)). */
void tn_raft_set_election_timeout(tn_raft *r, uint32_t ticks);

void tn_raft_tick(tn_raft *r);

/* Feeds a received message. Returns 0, or -1 if it was malformed for its type (dropped). */
int tn_raft_step(tn_raft *r, const tn_raft_msg *m);

/* Proposes a command. On the leader: appends it and returns TN_SUCCESS with *index and *term set (either may be
 * NULL). On a follower that knows a leader: forwards it and returns TN_SUCCESS with *index = 0. Otherwise
 * TN_NOT_LEADER (no leader known, or a transfer is in progress), TN_TOO_LARGE, or TN_NOMEM. */
int tn_raft_propose(tn_raft *r, const void *data, size_t len, uint64_t *index, uint64_t *term);

/* Proposes a membership change (leader only; not forwarded). TN_SUCCESS, TN_NOT_LEADER, TN_UNAVAILABLE
 * (another change is pending or nothing committed in this term yet), TN_CLIENT_REQ_ERROR (change makes no
 * sense: removing the last voter, promoting a non-learner, ...), TN_NOMEM. */
int tn_raft_propose_conf(tn_raft *r, const tn_raft_conf_change *cc, uint64_t *index);

/* Requests a linearizable read; the answer comes later as a tn_raft_read_state with this ctx (ctx must be
 * unique cluster-wide while in flight, and != 0). Returns TN_SUCCESS if queued or forwarded, TN_NOT_LEADER
 * if no leader is known (no read state will follow). */
int tn_raft_read_index(tn_raft *r, uint64_t ctx);

/* Leader only: starts a transfer to `to`. TN_SUCCESS, TN_NOT_LEADER, TN_CLIENT_REQ_ERROR (not a voter). */
int tn_raft_transfer_leader(tn_raft *r, uint64_t to);

/* The driver's writes are durable up to (index, term) (entries, or the installed snapshot at that index).
 * Ignored if the entry at `index` no longer has that term (log replaced since). */
void tn_raft_persisted(tn_raft *r, uint64_t index, uint64_t term);

/* The driver took a snapshot of its state machine at `index` (<= applied): the core keeps a copy of `data`
 * (to send to lagging followers) and drops log entries up to index. 0, or -1 if index is beyond applied,
 * before a conf change applied later than index, not newer than the current snapshot, or no memory. */
int tn_raft_compact(tn_raft *r, uint64_t index, const void *data, size_t len);

/* 1 if there is anything in a Ready. */
int tn_raft_has_ready(const tn_raft *r);

/* Collects the Ready. The caller owns each message pointer in it afterwards. */
void tn_raft_ready_get(tn_raft *r, tn_raft_ready *rd);

/* --- read-only accessors (for the driver, tests and the simulator's invariant checks) ------------- */
tn_raft_role tn_raft_role_of(const tn_raft *r);
uint64_t tn_raft_id(const tn_raft *r);
uint64_t tn_raft_term(const tn_raft *r);
uint64_t tn_raft_leader(const tn_raft *r);
uint64_t tn_raft_commit(const tn_raft *r);
uint64_t tn_raft_applied(const tn_raft *r);
uint64_t tn_raft_first_index(const tn_raft *r); /* first index in memory (snapshot index + 1) */
uint64_t tn_raft_last_index(const tn_raft *r);
uint64_t tn_raft_stable_index(const tn_raft *r);
/* Term of the entry at index (the snapshot's term at its index; 0 at index 0); -1 if not available. */
int tn_raft_term_at(const tn_raft *r, uint64_t index, uint64_t *term);
const tn_raft_entry *tn_raft_entry_at(const tn_raft *r, uint64_t index); /* NULL if not in memory */
const tn_raft_conf *tn_raft_conf_of(const tn_raft *r);
const tn_raft_snapshot_meta *tn_raft_snapshot_of(const tn_raft *r);
int tn_raft_is_voter(const tn_raft *r, uint64_t id);

/* --- messages and conf-change payloads (raft_msg.c) ---------------------------------------------- */

/* Allocates a message with room for n entries holding data_bytes of entry data and snap_len of snapshot
 * data, all in one block (m->buf, never NULL, even for an empty message). NULL on out of memory. */
tn_raft_msg *tn_raft_msg_alloc(size_t n_entries, size_t data_bytes, size_t snap_len);
void tn_raft_msg_free(tn_raft_msg *m);
/* Deep copy. NULL on out of memory. */
tn_raft_msg *tn_raft_msg_dup(const tn_raft_msg *m);

#define TN_RAFT_MSG_VERSION 1
#define TN_RAFT_MSG_MAX_ENTRIES 100000
#define TN_RAFT_MSG_MAX_DATA (64u << 20)

/* Encodes m into w (version byte first). 0, or -1 on allocation failure. */
int tn_raft_msg_encode(const tn_raft_msg *m, tn_wr *w);
/* Decodes one message; *out is a new message (free with tn_raft_msg_free). 0, or -1 (TN_BAD_REQUEST
 * condition: truncated, trailing bytes, unknown version or type, limits exceeded) with *out = NULL. */
int tn_raft_msg_decode(const void *buf, size_t len, tn_raft_msg **out);

/* Conf-change payload of a TN_ENTRY_CONF entry: 1 byte op + varint node id; buf needs 11 bytes. Returns
 * the length written. decode returns 0, or -1 if malformed. */
size_t tn_raft_conf_encode(const tn_raft_conf_change *cc, uint8_t buf[11]);
int tn_raft_conf_decode(const void *buf, size_t len, tn_raft_conf_change *cc);

const char *tn_raft_msg_type_name(int type);
const char *tn_raft_role_name(tn_raft_role role);

#endif
