/* node_int.h — private to raftnet/node/node*.c: the node's state and the functions its files share.
 * node.h is the contract for everyone else; nothing outside raftnet/node/node*.c includes this header.
 *
 * The files of the node, by concern:
 *   node.c          lifecycle (open, start, stop, close), the public getters, helpers every file uses
 *   node_recover.c  recovery from the data directory (hard state, snapshot, log)
 *   node_loop.c     the event queue, the loop and disk threads, the Ready loop, periodic work
 *   node_send.c     sending Raft messages to peers, holding them until durable, append-ack coalescing
 *   node_apply.c    applying committed entries, the table of waiting requests
 *   node_snap.c     snapshot payloads, taking/installing snapshots, InstallSnapshot in chunks
 *   node_req.c      client and admin requests, reads, replies
 *   node_submit.c   in-process requests (tn_node_submit, tn_node_read_local)
 *
 * Unless a prototype says otherwise every function below runs on the loop thread, or for a node alone on
 * a caller holding loop_mu (see THREADS in node.h).
 */
#ifndef TARN_NODE_INT_H
#define TARN_NODE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "logstore.h"
#include "node.h"
#include "raft.h"
#include "sm.h"
#include "snapfile.h"
#include "snapxfer.h"
#include "status.h"
#include "transport.h"
#include "wire.h"

#define EXPIRY_EVERY_MS 50
#define EXPIRY_BATCH 256
#define MAX_URL 1024
#define READ_BATCH_BYTES (64u << 20)
/* Peer payloads are Raft messages (first byte = TN_RAFT_MSG_VERSION) or snapshot chunks and their
 * acknowledgements (this byte, snapxfer.h). */
#define CHUNK_MAGIC TN_SNAPXFER_MAGIC
/* In-memory nodes (no data_dir) compact the core's log behind the applied index this often. */
#define MEM_COMPACT_EVERY 512

/* Where a client's answer goes: a transport request (p), or an in-process callback (fn, tn_node_submit). */
typedef struct reply_to {
    tn_pending *p;
    tn_node_reply_fn fn;
    void *arg;
} reply_to;

enum ev_kind { EV_PEER = 1, EV_CLIENT = 2, EV_SYNCED = 3 };

typedef struct event {
    struct event *next;
    int kind;
    uint64_t from;
    uint8_t *data; /* EV_PEER: owned copy */
    const uint8_t *req; /* EV_CLIENT: owned by the transport (or the submitter) until the reply */
    size_t len;
    reply_to p;
    uint64_t owner; /* EV_CLIENT: owner of a write whose request has no client_id (tn_node_submit) */
    uint64_t gen; /* EV_SYNCED */
    int rc;
} event;

enum waiter_kind { W_WRITE = 1, W_READ = 2, W_ADMIN = 3 };

typedef struct waiter {
    struct waiter *next;
    int kind;
    reply_to p;
    uint64_t req_id;
    uint64_t client_id, seq; /* W_WRITE with a session */
    uint64_t index, term;    /* W_WRITE without a session (leader), W_ADMIN */
    uint64_t ctx;            /* W_READ */
    tn_req req;              /* W_READ: decoded request (points into the pending's bytes) */
    int64_t deadline_ms;
} waiter;

typedef struct held_msg {
    uint64_t gen;
    uint8_t *buf;
    size_t len;
    uint64_t to;
    uint64_t ack_term;  /* a successful APP_RESP of this term (0 = any other message): see release_held */
    uint64_t ack_index; /* its index (the end of the prefix it acknowledges) */
} held_msg;

typedef struct member_url {
    uint64_t id;
    char url[MAX_URL];
    uint64_t match; /* on the leader: highest index this member acknowledged in the current term */
} member_url;

struct tn_node {
    tn_node_config cfg;
    char log_dir[4096], snap_dir[4096];
    tn_raft_config rcfg;
    tn_raft *raft;
    tn_sm *sm;
    tn_logstore *log;
    tn_transport *tr;
    unsigned rng;

    member_url urls[TN_STATUS_MAX_MEMBERS];
    size_t n_urls;

    /* Held by whoever runs the node: the loop thread while it handles inputs and ticks, or a caller of
     * tn_node_submit on a node alone. Everything below marked loop-only is guarded by it. Order: loop_mu
     * before mu. */
    pthread_mutex_t loop_mu;

    /* queue (mutex mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    event *q_head, *q_tail;
    int stopping;

    /* disk thread (mutex dmu) */
    pthread_mutex_t dmu;
    pthread_cond_t dcv;
    uint64_t want_gen;  /* highest write generation the loop asked to make durable */
    int disk_stop;
    pthread_t disk_thread, loop_thread;
    int threads_started;

    /* loop-only state */
    int caller_syncs;    /* a tn_node_submit caller (node alone) will sync what it appends itself */
    uint64_t write_gen;  /* bumped on every append */
    uint64_t synced_gen; /* every write of a generation <= this is durable */
    held_msg *held;
    size_t n_held, cap_held;
    uint64_t saved_term, saved_vote;
    waiter *waiters;
    uint64_t next_ctx;
    int64_t last_cmd_time;
    uint64_t expiry_wait_index; /* don't scan for due temp nodes before this is applied */
    uint64_t last_snap_index;
    pid_t snap_child;               /* background snapshot writer (fork), 0 = none */
    uint64_t snap_child_index, snap_child_term;
    tn_snapwriter *snapw;           /* InstallSnapshot being received in chunks */
    uint64_t snapw_index, snapw_term, snapw_total;
    uint64_t chunk_installed_index;  /* snapshot file already installed by the chunk receiver */
    tn_snapxfer *xfer;              /* InstallSnapshot streams this node sends (created on first use) */
    tn_raft_role role;
    uint64_t leader;
    /* Read by any thread (tn_node_read_local, tn_node_applied): sm_lock guards the state machine against
     * the loop's applies; applied_rev and local_ready are copies the loop keeps up to date. */
    pthread_rwlock_t sm_lock;
    _Atomic uint64_t applied_rev;
    _Atomic uint64_t log_first;
    atomic_int local_ready;
    /* Set by the loop (or tn_node_stop) on a fatal error, read by any thread (tn_node_failed, tn_node_submit
     * while the loop is stopping): atomic. */
    atomic_int fatal;
    void (*on_fatal)(void *);
    void *on_fatal_arg;
};

/* node.c: helpers */
void tn_node_log(tn_node *n, const char *fmt, ...) TN_PRINTF(2, 3);
const char *tn_node_url_of(const tn_node *n, uint64_t id);
int tn_node_set_url(tn_node *n, uint64_t id, const char *url, size_t len);
void tn_node_update_peers(tn_node *n);
void tn_node_set_fatal(tn_node *n, const char *what);

/* node_recover.c: creates n->raft from n->cfg.data_dir (or afresh in memory) and sets the saved hard state;
 * n->cfg, n->rcfg, the directories and n->sm are ready. SUCCESS, IO_ERROR, NOMEM + err. */
int tn_node_recover(tn_node *n, char *err, size_t errlen);

/* node_loop.c */
int tn_node_start_threads(tn_node *n, char *err, size_t errlen);
void tn_node_stop_disk_thread(tn_node *n);
void tn_node_process_ready(tn_node *n);
void tn_node_on_synced(tn_node *n, const event *e);
/* transport callbacks (nng threads): copy and enqueue */
void tn_node_on_peer(void *arg, uint64_t from, const uint8_t *msg, size_t len);
void tn_node_on_client(void *arg, tn_pending *p, const uint8_t *req, size_t len);
void tn_node_on_tlog(void *arg, const char *line);

/* node_send.c */
void tn_node_send_encoded(tn_node *n, uint64_t to, const uint8_t *b, size_t len);
void tn_node_send_msg(tn_node *n, tn_raft_msg *m, int after_persist);
void tn_node_release_held(tn_node *n);

/* node_apply.c */
void tn_node_waiter_add(tn_node *n, waiter *w);
void tn_node_waiter_free(waiter *w);
void tn_node_apply_entry(tn_node *n, const tn_raft_entry *e);

/* node_snap.c */
int tn_node_conf_decode(const uint8_t *p, size_t len, tn_raft_conf *c);
int tn_node_image_load(tn_node *n, const uint8_t *p, size_t len);
int tn_node_send_snapshot_chunks(tn_node *n, const tn_raft_msg *m);
void tn_node_snapshot_send_tick(tn_node *n, int64_t now);
void tn_node_on_snapshot_ack(tn_node *n, uint64_t from, const uint8_t *p, size_t len);
void tn_node_on_snapshot_chunk(tn_node *n, uint64_t from, const uint8_t *p, size_t len);
void tn_node_snapw_drop(tn_node *n, int keep_part);
void tn_node_start_background_snapshot(tn_node *n);
void tn_node_snapshot_poll(tn_node *n, int block);
int tn_node_take_snapshot(tn_node *n);
void tn_node_install_snapshot(tn_node *n, const tn_raft_ready *rd);

/* node_req.c */
void tn_node_reply_bytes(reply_to p, const void *b, size_t len);
void tn_node_reply_error(tn_node *n, reply_to p, uint64_t req_id, int code, const char *msg);
const char *tn_node_forward_hint(tn_node *n);
void tn_node_handle_read_state(tn_node *n, const tn_raft_read_state *rs);
void tn_node_handle_client(tn_node *n, reply_to p, uint64_t owner, const uint8_t *bytes, size_t len);

#endif
