/* node.h — one Raft node of a Tarn cluster (the `raftnet` daemon's engine room), or the same node alone
 * inside a process (the embedded engine, engine.h).
 *
 * ALONE (cfg.listen_url == NULL): no transport and no peers; the only voter is cfg.id. It campaigns at once
 *   on start and wins its own election. Requests come in through tn_node_submit (answered by a callback),
 *   which runs them on the CALLER's thread while holding the node's loop lock (the loop thread takes the
 *   same lock to handle its inputs and ticks), so a write costs no thread hop: with a data_dir the caller
 *   also syncs the log itself (outside the lock: concurrent callers share fdatasyncs) instead of waiting
 *   for the disk thread, which then only syncs what the loop appends (expiries). Once the node has
 *   applied an entry of its term (tn_node_local_ready) reads may be served on the caller's thread by
 *   tn_node_read_local, under a lock each apply takes for writing. It logs only errors.
 *   Without cfg.data_dir it keeps everything in memory: no log store, hard state or snapshot files;
 *   appended entries count as durable at once, and the core's log is compacted behind the applied index
 *   every 512 applied entries (no follower will ever need them). With a data_dir everything below holds.
 *
 * THREADS
 *   - The LOOP thread owns everything that matters: the Raft core, the state machine, the log store (it is the
 *     log store's "owner thread"), the snapshot files, the hard-state file and the table of waiting client
 *     requests (for a node ALONE: whoever holds the loop lock, see above). Inputs reach it through one queue
 *     (mutex + condvar): peer messages and client requests (pushed by the transport's callbacks on nng
 *     threads), "durable up to N" from the disk thread, and stop. Between inputs it ticks the core every
 *     tick_ms and, on the leader, proposes TTL expiries.
 *   - The DISK thread runs tn_logstore_sync whenever the loop appended something since the last sync
 *     (group commit: one fdatasync covers every entry appended before it) and posts the result back.
 *   - nng's threads run the transport callbacks, which only copy and enqueue.
 *
 * DURABILITY RULES (the etcd-style Ready contract, raft.h)
 *   - rd.entries are appended (pwrite, no fsync) and a sync is requested; msgs_after_persist (votes, append
 *     acks) are held until every write made so far is durable; then tn_raft_persisted is called. Of the
 *     successful append acks one sync releases to the same leader in the same term, only the last (the
 *     longest prefix) goes out.
 *   - Within a Ready: messages carrying entries or votes go out first, then committed entries are applied
 *     (client answers), then commit-index-only appends. One append is in flight per follower unless
 *     cfg.max_inflight says otherwise (fewer, larger appends: each message costs far more than its bytes).
 *   - Term and vote are saved with tn_hardstate_save (fsync'd, atomic) before any message of the same Ready
 *     leaves. A Ready that only moves the commit index does not rewrite the file: after a restart the
 *     commit index is learnt again from the leader.
 *   - A received snapshot is written as a snapshot file, the log is reset to it (durable on return), and the
 *     state machine is replaced, all before the next message goes out.
 *   - A client write is answered only once its entry is applied, which the core allows only after the entry
 *     is committed (fsynced on a majority) and durable locally.
 *
 * DATA DIRECTORY: <data>/hardstate, <data>/log/ (segment log, logstore.h), <data>/snap/ (snapfile.h).
 *   Snapshot file conf blob: "NC" 1 n_voters ids n_learners ids (varints). Snapshot data (also what the
 *   core sends in TN_MSG_SNAP): "NS" 1 n_urls (id url:bytes)* then the state machine image (sm.h).
 *
 * MEMBER URLS are replicated in the log: an ADMIN add-voter/add-learner first proposes a normal entry
 *   "TU" 1 id:varint url:bytes (applied by the node, not the state machine), then the conf change, so every
 *   member knows the URL of every other before the change takes effect. The map is part of the snapshot.
 *
 * CLIENT REQUESTS (wire.h; replies with tn_pending_reply from the loop thread):
 *   - STATUS: answered by the node (status.h); ADMIN: membership change, leader transfer, snapshot now.
 *   - writes: on the leader the request is wrapped in a command (leader wall-clock time, owner = client_id)
 *     and proposed; on a follower that knows the leader it is proposed too (the core forwards it). The
 *     answer is sent when the entry with that (client_id, seq) — or, without a session, that (index, term)
 *     on the leader — is applied. Sessions (sm.h) make retries exactly-once. No leader: NOT_LEADER with the
 *     leader's URL as hint when known. Writes without a session on a follower: NOT_LEADER + hint.
 *   - reads: LINEARIZABLE (default) via ReadIndex (followers forward it), served once applied >= index;
 *     STALE served at once from the local state (the response's revision says which state).
 *   - a request not answered within request_timeout_ms gets TIMEOUT.
 *
 * SNAPSHOTS are taken every snapshot_entries applied entries without stopping writes: the loop fork()s, the
 *   child serializes the copy-on-write state into a snapshot file and exits, the loop reaps it (polled
 *   every tick), reads the file back and compacts the core and the log store. ADMIN SNAPSHOT takes one
 *   synchronously on the loop thread (and answers when it is durable). InstallSnapshot: when the core emits
 *   TN_MSG_SNAP, the node streams its snapshot FILE in 1 MiB chunks instead of the Raft message (peer
 *   payloads starting with byte 0xC7, snapxfer.h): the receiver writes them with a tn_snapwriter and
 *   acknowledges each with how many leading bytes it holds durably; the sender keeps at most 4 chunks
 *   unacknowledged per peer and RESUMES every restarted transfer (stall, retry by the core, restart of
 *   either side: a new transfer begins with a probe the receiver answers with its offset) at the
 *   receiver's offset instead of byte 0. The receiver's .part survives its restart. Once complete the file
 *   is verified and the equivalent TN_MSG_SNAP is stepped into the receiver's core, whose append response
 *   ends PR_SNAPSHOT on the leader. If the file does not match the core's snapshot, the whole Raft message
 *   is sent instead (<= 64 MiB).
 *
 * Results are tn_code values; messages go to the caller's buffer or to stderr, one line per event:
 * "raftnet[<id>]: <event>".
 */
#ifndef TARN_NODE_H
#define TARN_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "transport.h"
#include "wire.h"

typedef struct tn_node_config {
    uint64_t id;
    const char *listen_url;                /* NULL = alone in the process (see ALONE above) */
    tn_peer_addr peers[TN_RAFT_MAX_NODES]; /* initial members (id -> url), may include this node */
    size_t n_peers;
    const char *data_dir;                  /* NULL = in memory (only without listen_url) */
    const uint8_t *token; /* cluster token; token_len 0 = none */
    size_t token_len;
    tn_tls_opts tls;
    uint32_t tick_ms;          /* 0 = 10 */
    uint32_t election_ticks;   /* 0 = 30 */
    uint32_t heartbeat_ticks;  /* 0 = 3 */
    uint64_t snapshot_entries; /* 0 = 100000 */
    int learner;               /* joining an existing cluster: peers are its current members */
    int request_timeout_ms;    /* 0 = 5000 */
    uint32_t max_inflight;     /* append messages in flight per follower; 0 = 1 (see node.c) */
} tn_node_config;

typedef struct tn_node tn_node;

/* Recovers the node from cfg->data_dir (hard state, snapshot, log; torn tails are repaired and logged) and
 * prepares it. Does not start threads or listen yet. SUCCESS, or IO_ERROR (corrupt/unreadable data: err
 * names the file and offset), BAD_REQUEST (bad config), NOMEM. cfg strings must outlive the node. */
int tn_node_open(const tn_node_config *cfg, tn_node **out, char *err, size_t errlen);

/* Starts listening and the loop and disk threads (alone: only the threads; in memory: no disk thread).
 * SUCCESS, UNAVAILABLE (cannot listen), ... + err. */
int tn_node_start(tn_node *n, char *err, size_t errlen);

/* Asks the loop to stop (any thread, not async-signal-safe) and waits for it: stops accepting, syncs the
 * log, closes the transport. Returns SUCCESS, or the fatal error that stopped the loop earlier. */
int tn_node_stop(tn_node *n);

/* 1 once the loop stopped by itself on a fatal error (disk failure). */
int tn_node_failed(tn_node *n);

/* Optional: called (from the loop thread) when the node stops on a fatal error, so main can wake up. */
void tn_node_on_fatal(tn_node *n, void (*fn)(void *arg), void *arg);

/* Frees everything (after stop, or instead of start). NULL is a no-op. */
void tn_node_close(tn_node *n);

/* In-process requests (any thread, after tn_node_start). req (an encoded wire request) must stay valid until
 * done is called. done is called exactly once with the encoded response, which it must copy, and must not call
 * into the node: usually on the caller's thread before tn_node_submit returns (a node alone runs the request
 * there, syncs and applies it; also a node stopping, or stopped on a fatal error: IO_ERROR), else on the
 * thread that applied it (another caller whose sync covered it, the loop) or the loop thread (a timeout). With
 * a transport the request always goes through the loop's queue. `owner` owns what a write creates (temp nodes)
 * when the request itself carries client_id 0; sessions (client_id, seq) work as over the network. Requests
 * still waiting when the loop stops get UNAVAILABLE (IO_ERROR after a fatal error). */
typedef void (*tn_node_reply_fn)(void *arg, const uint8_t *resp, size_t len);
void tn_node_submit(tn_node *n, const void *req, size_t len, uint64_t owner, tn_node_reply_fn done, void *arg);

/* A node alone: 1 once reads may be served on the caller's thread (it is leader and has applied an entry
 * of its term, so its state holds every write ever acknowledged); 0 before, after a fatal error, and
 * always for a node with a transport. Any thread. */
int tn_node_local_ready(tn_node *n);

/* Serves a read request (decoded, not a write) from the local state on the caller's thread if
 * tn_node_local_ready: *served = 1 and the result of tn_sm_read (response appended to out). Otherwise
 * *served = 0 and nothing is touched: submit it instead. Linearizable for a node alone. Any thread. */
int tn_node_read_local(tn_node *n, const tn_req *req, tn_wr *out, int *served);

/* The state machine's revision (index of the last applied command) and the first index the core still
 * holds in memory (its snapshot index + 1). Copies kept by the loop; any thread. */
uint64_t tn_node_applied(tn_node *n);
uint64_t tn_node_log_first_index(tn_node *n);

#endif
