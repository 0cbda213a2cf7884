/* driver.h — the Raft test driver: N tn_raft nodes in one process with an emulated network and emulated
 * stable storage, plus the invariant checks. Test code (tests/raft/), shared by the cmocka rules
 * (tests/unit/raftnet/raft/test_raft.c), the scenario files (tests/raft/script.h), the fault simulator
 * (tests/sim, tarn-sim) and bench_raft. It uses only the public API of raftnet/raft/raft.h and links only
 * tn_raft, so the simulator still proves that the core needs nothing else.
 *
 * Nodes are numbered 1..n (their Raft ids). Each node's Readys are handled the way docs/raft.md §1 says a
 * driver must: a fresh election timeout when asked, the snapshot / truncation / entries / hard state written
 * in that order, rd.msgs sent at once, rd.msgs_after_persist held until everything written so far is durable,
 * committed entries and read states handed to the hooks, tn_raft_persisted once a sync completes.
 *
 * Two ways to run a cluster (tn_rt_opts.timed):
 *   step mode (timed = 0): no clock. Sent messages wait in a FIFO queue until the caller delivers them
 *     (tn_rt_settle: every message, round by round, until the network is quiet; tn_rt_deliver / tn_rt_drop:
 *     only those matching a filter — reordering and delaying are choosing what to deliver when). Ticks and
 *     syncs happen when the caller asks. Election timeouts are fixed: election_ticks + id, so node 1 times
 *     out first. Used by test_raft, the scenario files and bench_raft.
 *   timed mode (timed = 1): simulated time in microseconds and one event queue (tn_rt_at / tn_rt_next /
 *     tn_rt_dispatch) that the caller runs and may add its own events to. Every node ticks on its own
 *     clock, messages are lost, duplicated and delayed at random, an fsync takes a random time, election
 *     timeouts are random; all randomness comes from one seeded PRNG, so a run is a function of the seed.
 *     Used by tarn-sim.
 *
 * Stable storage (tn_rt_opts.disk): each node has a durable image (hard state, snapshot, log) and a queue of
 * writes not yet synced. TN_RT_DISK_NONE keeps nothing: a Ready's writes count as durable as soon as it is
 * handled (no restart possible; the cheapest, for bench_raft). AUTO syncs after every Ready; MANUAL syncs
 * when tn_rt_sync is called (so a test decides when a vote or an append becomes durable); TIMED (timed mode)
 * takes a random latency per fsync. A crash keeps none, all or (at random) a prefix of the unsynced writes,
 * like an ordered file system; a failed sync makes the node fail-stop.
 *
 * Invariants (tn_rt_opts.check; driver_check.c): election safety, log matching, leader completeness, commit
 * agreement, state-machine safety (same entry applied at each index), commit/applied monotonic per
 * incarnation, applied <= committed, committed entries handed out in order, and no stale read among the
 * reads requested through tn_rt_read_index. The first violation is kept (tn_rt_failed / tn_rt_why); the
 * driver carries on, the caller decides when to stop. Step mode checks a node each time tn_rt_drain handles
 * it; in timed mode the caller calls tn_rt_check after its events.
 *
 * Ownership: the driver owns its nodes, messages in flight and disk images; tn_rt_free releases all.
 * Pointers it returns (tn_rt_raft, tn_rt_stats_of, tn_rt_queued_at) stay valid until the next call that
 * changes that node or the queue. Out of memory ends the process (exit 2: test code). Thread: none; one thread
 * at a time per tn_rt.
 */
#ifndef TARN_RAFT_DRIVER_H
#define TARN_RAFT_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "raft.h"

#define TN_RT_MAX_NODES TN_RAFT_MAX_NODES

/* --- randomness: xoshiro256** seeded through splitmix64 ------------------------------------------ */

typedef struct tn_rt_rng {
    uint64_t s[4];
} tn_rt_rng;

void tn_rt_rng_seed(tn_rt_rng *g, uint64_t seed);
uint64_t tn_rt_rng_next(tn_rt_rng *g);
/* Uniform in [0, n) (n > 0). */
uint64_t tn_rt_rng_below(tn_rt_rng *g, uint64_t n);
/* 1 with probability per_mille / 1000. */
int tn_rt_rng_chance(tn_rt_rng *g, unsigned per_mille);

/* --- options and hooks --------------------------------------------------------------------------- */

typedef enum tn_rt_disk {
    TN_RT_DISK_NONE = 0,
    TN_RT_DISK_AUTO = 1,
    TN_RT_DISK_MANUAL = 2,
    TN_RT_DISK_TIMED = 3
} tn_rt_disk;

typedef struct tn_rt tn_rt;

/* One trace record (see the trace section for the kinds). */
typedef struct tn_rt_trace_rec {
    uint64_t t;
    uint8_t kind, node, a, b;
    uint64_t x, y, z;
} tn_rt_trace_rec;


/* What the caller plugs in as the state machine; every hook may be NULL. `id` is the node. */
typedef struct tn_rt_hooks {
    void *ctx;
    /* a committed entry, in log order (also conf changes and no-ops) */
    void (*apply)(void *ctx, tn_rt *c, int id, const tn_raft_entry *e);
    /* a read state; without this hook read states are recorded in tn_rt_stats.reads */
    void (*read)(void *ctx, tn_rt *c, int id, const tn_raft_read_state *rs);
    /* load the state machine from snapshot data (len 0: empty state): at every boot and when a snapshot
     * from the leader is installed */
    void (*restore)(void *ctx, tn_rt *c, int id, const uint8_t *data, size_t len);
    /* the state machine's bytes for automatic compaction (tn_rt_opts.compact_every) */
    const void *(*snapshot)(void *ctx, tn_rt *c, int id, size_t *len);
    /* the node crashed: forget volatile state (pending requests...) */
    void (*crash)(void *ctx, tn_rt *c, int id);
    /* prints trace records of the caller's own kinds (>= TN_RT_TR_USER) */
    void (*print)(void *ctx, FILE *f, const tn_rt_trace_rec *t);
} tn_rt_hooks;

typedef struct tn_rt_opts {
    int n;                  /* nodes 1..n, n <= TN_RT_MAX_NODES */
    tn_raft_config cfg;     /* template for every node (id is set per node); conf with no voters: all n */
    int timed;              /* see the top of this file */
    tn_rt_disk disk;
    int codec;              /* every message is encoded and decoded once on its way (as the daemon's are) */
    int check;              /* run the invariant checks */
    int trace;              /* keep the trace ring (tn_rt_trace_tail) */
    int verbose;            /* also print every trace record as it happens, to out */
    FILE *out;
    uint64_t seed;          /* the PRNG (timed mode and crash prefixes) */
    uint64_t compact_every; /* with hooks.snapshot: compact when applied - snapshot index reaches this */
    /* timed mode: an fsync takes disk_min_us + rand(disk_spread_us) (plus the node's extra delay);
     * a node whose sync failed restarts after failstop_min_us + rand(failstop_spread_us) (both 0: stays
     * down until tn_rt_restart) */
    uint64_t disk_min_us, disk_spread_us;
    uint64_t failstop_min_us, failstop_spread_us;
    tn_rt_hooks hooks;
} tn_rt_opts;

/* Creates the cluster; nodes are not running until tn_rt_start (or tn_rt_boot_state) boots them, so the
 * caller may adjust tn_rt_cfg and tick periods first. NULL on a bad option. */
tn_rt *tn_rt_new(const tn_rt_opts *o);
/* Boots every node not booted yet as a fresh node (tn_raft_new). 0, or -1 if a config was refused. */
int tn_rt_start(tn_rt *c);
void tn_rt_free(tn_rt *c);

/* Node `id`'s configuration (before it boots; a restart uses it again). */
tn_raft_config *tn_rt_cfg(tn_rt *c, int id);
int tn_rt_n(const tn_rt *c);
tn_rt_rng *tn_rt_rng_of(tn_rt *c);
/* The node's core, NULL while it is down. Tests call the core directly (propose, read_index, ...) and then
 * tn_rt_process (or tn_rt_drain / tn_rt_settle) to handle what it produced. */
tn_raft *tn_rt_raft(tn_rt *c, int id);
int tn_rt_up(const tn_rt *c, int id);

typedef struct tn_rt_stats {
    uint64_t applied;        /* last committed index handed out (the snapshot index right after a boot) */
    uint64_t applied_conf;   /* index of the last conf change handed out, 0 if none */
    uint64_t truncations;    /* Readys with truncate_from, over all incarnations */
    uint64_t snapshots;      /* snapshots received from a leader and installed */
    const tn_raft_read_state *reads; /* read states handed out, when there is no read hook */
    size_t n_reads;
} tn_rt_stats;

const tn_rt_stats *tn_rt_stats_of(const tn_rt *c, int id);
/* The up leader with the highest term, 0 if none. */
int tn_rt_leader(const tn_rt *c);

/* --- the node loop ------------------------------------------------------------------------------- */

/* Handles every Ready node `id` has (bounded: 64 per call). */
void tn_rt_process(tn_rt *c, int id);
/* tn_rt_process for every up node in id order, then (check) the invariants of each. */
void tn_rt_drain(tn_rt *c);
/* One tick of node id's clock, then its Readys. */
void tn_rt_tick(tn_rt *c, int id);
/* tn_raft_read_index on node id, remembering the highest commit index any node has reached (check on):
 * a read state that answers ctx with ok and a lower index is a violation (a stale read). Returns what
 * tn_raft_read_index returned, or TN_UNAVAILABLE if the node is down. */
int tn_rt_read_index(tn_rt *c, int id, uint64_t ctx);
/* Compacts node id's log at its applied index with this state (tn_raft_compact) and writes the snapshot
 * to its disk. 0, or -1 if the core refused. */
int tn_rt_compact(tn_rt *c, int id, const void *data, size_t len);
/* Step mode: elects `who` the way a test does with fixed timeouts: every node ticks until a leader exists
 * or the start-up lease (election_ticks) is over, then only `who` ticks until it leads; the network is
 * settled after each tick. 0 if `who` leads, -1 if not. */
int tn_rt_elect(tn_rt *c, int who);

/* --- stable storage ------------------------------------------------------------------------------ */

/* Replaces node id's durable image with this state (copied) and (re)boots it from there
 * (tn_raft_restore). For tests that need a given log. 0, or -1 if the core refused the state. */
int tn_rt_boot_state(tn_rt *c, int id, const tn_raft_hard_state *hs, const tn_raft_snapshot_meta *snap,
                     const uint8_t *snap_data, size_t snap_len, const tn_raft_entry *ents, size_t n);

enum { TN_RT_KEEP_NONE = 0, TN_RT_KEEP_RANDOM = 1, TN_RT_KEEP_ALL = 2 };
/* Crashes node id: its core, held messages and volatile state are lost; of its unsynced writes it keeps
 * none, a random prefix, or all (TN_RT_KEEP_*). No-op if it is down. */
void tn_rt_crash(tn_rt *c, int id, int keep);
/* Restarts a crashed node from its durable image (not with TN_RT_DISK_NONE). 0, or -1 (still up, no
 * image, or the core refused the image: a violation is recorded). */
int tn_rt_restart(tn_rt *c, int id);
/* MANUAL / AUTO disk: makes everything node id wrote so far durable (or fail-stops it, see
 * tn_rt_fail_next_sync), then handles its Readys. No-op if nothing is pending. */
void tn_rt_sync(tn_rt *c, int id);
/* Switches a step-mode cluster between TN_RT_DISK_AUTO and TN_RT_DISK_MANUAL (switching to AUTO syncs
 * what is pending). 0, or -1 for any other change. */
int tn_rt_set_disk(tn_rt *c, tn_rt_disk disk);
/* The node's next sync fails: it crashes (fail-stop) instead of reporting durability. */
void tn_rt_fail_next_sync(tn_rt *c, int id, int on);
/* Timed disk: every fsync of node id takes min_us + rand(spread_us) more (0, 0: back to normal). */
void tn_rt_set_disk_delay(tn_rt *c, int id, uint64_t min_us, uint64_t spread_us);
/* Durable log length of node id (snapshot index + entries in the image). */
uint64_t tn_rt_durable_last(const tn_rt *c, int id);

/* --- network ------------------------------------------------------------------------------------- */

/* Links are directed; a message gets through only if its link is up when sent and when delivered. */
void tn_rt_link(tn_rt *c, int from, int to, int up);
/* Cuts every link to and from id (traced). */
void tn_rt_isolate(tn_rt *c, int id);
/* Brings every link to and from id back up (traced). */
void tn_rt_connect(tn_rt *c, int id);
/* Bit i-1 of mask is node i: links inside each side are up, across down; with asym, messages from the
 * masked side to the other still pass. Traced. */
void tn_rt_partition(tn_rt *c, uint64_t mask, int asym);
/* Every link up (traced). */
void tn_rt_heal(tn_rt *c);
/* Timed mode: per-message loss and duplication (per mille) and delay (200 us + rand(delay_max_us)). */
void tn_rt_set_net(tn_rt *c, unsigned loss_pm, unsigned dup_pm, uint64_t delay_max_us);

/* Step mode: a filter on queued messages; 0 fields match anything. */
typedef struct tn_rt_filter {
    int from, to;
    int type;    /* TN_MSG_* */
} tn_rt_filter;

/* Step mode: steps every queued message matching f (NULL: all), in send order, into its destination
 * (Readys are not handled: tn_rt_drain does that). Returns how many were taken from the queue. */
size_t tn_rt_deliver(tn_rt *c, const tn_rt_filter *f);
/* Step mode: discards the queued messages matching f (NULL: all); returns how many. */
size_t tn_rt_drop(tn_rt *c, const tn_rt_filter *f);
/* Step mode: drain, deliver everything queued, repeat until no message is left. 0, or -1 if the network
 * was still busy after 1000 rounds. */
int tn_rt_settle(tn_rt *c);
/* Step mode: the queue, in send order. */
size_t tn_rt_queued(const tn_rt *c);
const tn_raft_msg *tn_rt_queued_at(const tn_rt *c, size_t i);
/* Messages delivered (stepped into a node) so far. */
uint64_t tn_rt_delivered(const tn_rt *c);

/* --- timed mode: the clock and the event queue ---------------------------------------------------- */

/* Event types the driver handles itself in tn_rt_dispatch; the caller's own start at TN_RT_EV_USER. */
enum { TN_RT_EV_DELIVER = 1, TN_RT_EV_TICK, TN_RT_EV_SYNC, TN_RT_EV_RESTART, TN_RT_EV_USER = 16 };

typedef struct tn_rt_event {
    uint64_t t, seq;  /* ordered by time, then by scheduling order */
    int type;
    int a, b;
    uint64_t x, y;
    void *p;
    size_t len;
} tn_rt_event;

uint64_t tn_rt_now(const tn_rt *c);
void tn_rt_set_now(tn_rt *c, uint64_t t);
/* Schedules an event at time t; the caller fills a, b, x, y, p, len at once (the pointer is valid until
 * the next tn_rt_at or tn_rt_next). */
tn_rt_event *tn_rt_at(tn_rt *c, uint64_t t, int type);
/* Schedules a restart of node id at time t. */
void tn_rt_restart_at(tn_rt *c, int id, uint64_t t);
/* Sets node id's tick period (timed mode; before it boots). */
void tn_rt_set_tick(tn_rt *c, int id, uint64_t period_us);
size_t tn_rt_pending(const tn_rt *c);
/* Takes the earliest event (the clock is not moved: tn_rt_set_now). 1, or 0 if there is none. */
int tn_rt_next(tn_rt *c, tn_rt_event *e);
/* Runs a driver event (TN_RT_EV_*) at the current time. Returns the node it touched (handled a Ready
 * of), or 0. */
int tn_rt_dispatch(tn_rt *c, tn_rt_event *e);
/* Frees what an event taken but not dispatched holds. */
void tn_rt_discard(tn_rt *c, tn_rt_event *e);

/* --- invariants and failures --------------------------------------------------------------------- */

/* Checks node id now (no-op if down). */
void tn_rt_check(tn_rt *c, int id);
/* Records a violation (the first one is kept). */
void tn_rt_fail(tn_rt *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tn_rt_failed(const tn_rt *c);
const char *tn_rt_why(const tn_rt *c);
/* Highest commit index any node reached, and the number of distinct leader terms seen (check on). */
uint64_t tn_rt_max_commit(const tn_rt *c);
uint64_t tn_rt_elections(const tn_rt *c);

/* --- trace --------------------------------------------------------------------------------------- */

enum {
    TN_RT_TR_SEND = 1, TN_RT_TR_DROP, TN_RT_TR_DELIVER, TN_RT_TR_ROLE, TN_RT_TR_COMMIT, TN_RT_TR_CRASH,
    TN_RT_TR_RESTART, TN_RT_TR_PART, TN_RT_TR_HEAL, TN_RT_TR_CONNECT, TN_RT_TR_CONF, TN_RT_TR_XFER,
    TN_RT_TR_SYNC, TN_RT_TR_DISKFAIL, TN_RT_TR_TRUNC, TN_RT_TR_SNAP, TN_RT_TR_NOTE,
    TN_RT_TR_USER = 32
};

/* Appends a record (a ring of the last 2048). The driver records sends, drops, deliveries, role and commit
 * changes, crashes, restarts, links, syncs, truncations and snapshots; CONF (a = op, x = node, y = rc),
 * XFER (x = to, y = rc) and NOTE (a, x, y) are for the caller. */
void tn_rt_trace(tn_rt *c, int kind, int node, int a, int b, uint64_t x, uint64_t y, uint64_t z);
/* Prints the last n records. */
void tn_rt_trace_tail(const tn_rt *c, FILE *f, size_t n);

#endif
