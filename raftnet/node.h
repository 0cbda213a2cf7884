/* node.h — one Raft node of a Tarn cluster (the `raftnet` daemon's engine room).
 *
 * THREADS
 *   - The LOOP thread owns everything that matters: the Raft core, the state machine, the log store (it is
 *     the log store's "owner thread"), the snapshot files, the hard-state file and the table of waiting
 *     client requests. Inputs reach it through one queue (mutex + condvar): peer messages and client
 *     requests (pushed by the transport's callbacks on nng threads), "durable up to N" from the disk thread,
 *     and stop. Between inputs it ticks the core every tick_ms and, on the leader, proposes TTL expiries.
 *   - The DISK thread runs tn_logstore_sync whenever the loop appended something since the last sync
 *     (group commit: one fdatasync covers every entry appended before it) and posts the result back.
 *   - nng's threads run the transport callbacks, which only copy and enqueue.
 *
 * DURABILITY RULES (the etcd-style Ready contract, raft.h)
 *   - rd.entries are appended (pwrite, no fsync) and a sync is requested; msgs_after_persist (votes, append
 *     acks) are held until every write made so far is durable; then tn_raft_persisted is called.
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

typedef struct tn_node_config {
    uint64_t id;
    const char *listen_url;
    tn_peer_addr peers[TN_RAFT_MAX_NODES]; /* initial members (id -> url), may include this node */
    size_t n_peers;
    const char *data_dir;
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

/* Starts listening and the loop and disk threads. SUCCESS, UNAVAILABLE (cannot listen), ... + err. */
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

#endif
