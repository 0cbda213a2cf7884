/* snapxfer.h — the sending side of InstallSnapshot in chunks: per-peer transfer state with a window of
 * chunks in flight, driven by the receiver's acknowledgements, resumable from what the receiver holds.
 * Also the codec of the two peer payloads involved (both start with TN_SNAPXFER_MAGIC, which no Raft
 * message starts with):
 *
 *   chunk:  0xC7 'S' 1 term snap_index snap_term total offset (varints) bytes…   (sender -> receiver)
 *   ack:    0xC7 'A' 1 term snap_index snap_term have (varints)                  (receiver -> sender)
 *
 * A chunk carries bytes [offset, offset + len) of the snapshot FILE (snapfile.h; total = its size). A chunk
 * without bytes is a probe: "where do you stand?". The receiver answers every chunk with an ack telling
 * how many leading bytes of that snapshot it holds durably (tn_snapwriter_have: fdatasync'd before the
 * ack leaves), or have = total once the snapshot is installed (or it already has that state).
 *
 * SENDER STATE MACHINE (one transfer per peer):
 *   start    a new transfer opens the newest snapshot file and sends a probe at offset 0 (PROBING). The
 *            same snapshot requested again while running only refreshes the request time; a different
 *            (newer) snapshot replaces the transfer.
 *   ack      PROBING: continue at the receiver's `have` (logged "resuming snapshot N to M at offset X"
 *            when > 0). SENDING: `have` moves the acknowledged offset; chunks are sent while fewer than
 *            `window` chunks' worth of bytes are unacknowledged. An ack that does not advance while
 *            bytes past it are in flight means the receiver refused a chunk after a hole (a lost chunk):
 *            sending goes back to `have`, once until the next advance. An ack below the acknowledged
 *            offset means the receiver lost its partial file: sending restarts there. have = total ends
 *            the transfer (the receiver's Raft core reports the install to ours with an append response);
 *            for stall_ms afterwards a request for the same snapshot (the core had not heard yet) sends
 *            nothing, later it starts a new transfer, whose probe the receiver answers with have = total.
 *   tick     no advance for stall_ms: back to PROBING at the acknowledged offset (a probe every stall_ms
 *            until the receiver answers, e.g. after it restarted). A transfer the core has not asked for
 *            in abandon_ms (the peer was removed, or the core gave up) is dropped.
 * The Raft core itself times PR_SNAPSHOT out and asks again (TN_MSG_SNAP); that lands in start() for a
 * running transfer, so it never restarts the stream from byte 0.
 *
 * OWNERSHIP: the tn_snapxfer owns its transfers (each holds an open tn_snapreader, which keeps reading its
 * file even if a newer snapshot unlinks it). Payloads passed to send() are valid only during the call.
 * RESULTS: tn_code values. THREADS: none of its own; one thread at a time (the node's loop thread).
 * Callbacks run synchronously inside the calls.
 */
#ifndef TARN_SNAPXFER_H
#define TARN_SNAPXFER_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define TN_SNAPXFER_MAGIC 0xC7
#define TN_SNAPXFER_VERSION 1
#define TN_SNAPXFER_CHUNK_DEFAULT (1u << 20)
#define TN_SNAPXFER_WINDOW_DEFAULT 4u
#define TN_SNAPXFER_STALL_MS_DEFAULT 3000
#define TN_SNAPXFER_ABANDON_MS_DEFAULT 30000

/* ---- payloads ---------------------------------------------------------------------------------- */

typedef struct tn_snapchunk {
    uint64_t term;      /* sender's Raft term */
    uint64_t index;     /* snapshot index */
    uint64_t snap_term; /* snapshot term */
    uint64_t total;     /* file size */
    uint64_t offset;
    const uint8_t *data; /* decode: points into the input */
    size_t len;          /* 0 = probe */
} tn_snapchunk;

typedef struct tn_snapack {
    uint64_t term; /* receiver's Raft term */
    uint64_t index, snap_term;
    uint64_t have; /* leading bytes held durably; total = installed */
} tn_snapack;

/* Appends the payload to w (check w->oom). */
void tn_snapchunk_encode(const tn_snapchunk *c, tn_wr *w);
void tn_snapack_encode(const tn_snapack *a, tn_wr *w);

/* SUCCESS, or BAD_REQUEST: wrong magic/kind/version, truncated, offset + len beyond total (chunk),
 * trailing bytes (ack). */
int tn_snapchunk_decode(const void *p, size_t len, tn_snapchunk *c);
int tn_snapack_decode(const void *p, size_t len, tn_snapack *a);

/* ---- sender ------------------------------------------------------------------------------------ */

/* Hands one payload to the network. 0 if queued, nonzero if refused (the transfer retries on a tick). */
typedef int (*tn_snapxfer_send_fn)(void *arg, uint64_t to, const uint8_t *payload, size_t len);
/* One log line, no newline. */
typedef void (*tn_snapxfer_log_fn)(void *arg, const char *line);

typedef struct tn_snapxfer_opts {
    size_t chunk;       /* bytes per chunk; 0 = TN_SNAPXFER_CHUNK_DEFAULT */
    uint32_t window;    /* chunks unacknowledged per peer; 0 = TN_SNAPXFER_WINDOW_DEFAULT */
    int64_t stall_ms;   /* 0 = TN_SNAPXFER_STALL_MS_DEFAULT */
    int64_t abandon_ms; /* 0 = TN_SNAPXFER_ABANDON_MS_DEFAULT */
    tn_snapxfer_send_fn send; /* required */
    tn_snapxfer_log_fn log;   /* NULL: silent */
    void *arg;
} tn_snapxfer_opts;

typedef struct tn_snapxfer tn_snapxfer;

/* NULL on out of memory or without opts->send. */
tn_snapxfer *tn_snapxfer_new(const tn_snapxfer_opts *opts);
void tn_snapxfer_free(tn_snapxfer *x); /* NULL: no-op */

/* The core asks to send snapshot (index, snap_term) to `to`; term = our Raft term. SUCCESS (running, or
 * started with a probe); NOT_FOUND when the newest file in snap_dir is not that snapshot (the caller sends
 * the plain Raft message instead); IO_ERROR (unreadable file); NOMEM. */
int tn_snapxfer_start(tn_snapxfer *x, const char *snap_dir, uint64_t to, uint64_t term, uint64_t index,
                      uint64_t snap_term, int64_t now_ms);

/* An ack from peer `from`. Acks for no transfer or another snapshot, or claiming more than the file, are
 * ignored. */
void tn_snapxfer_on_ack(tn_snapxfer *x, uint64_t from, const tn_snapack *a, int64_t now_ms);

/* Periodic work (stalls, abandoned transfers, sends a refused send() left pending). */
void tn_snapxfer_tick(tn_snapxfer *x, int64_t now_ms);

/* Drops the transfer to `to` (0 = all), e.g. when this node stops being the leader. */
void tn_snapxfer_cancel(tn_snapxfer *x, uint64_t to);

typedef struct tn_snapxfer_info {
    uint64_t index, snap_term, total;
    uint64_t acked; /* the receiver holds [0, acked) */
    uint64_t next;  /* next byte to send */
    int probing;
    int done;       /* delivered (kept for stall_ms, then forgotten) */
} tn_snapxfer_info;

/* SUCCESS with *info filled, or NOT_FOUND (no transfer to `to`). */
int tn_snapxfer_info_of(const tn_snapxfer *x, uint64_t to, tn_snapxfer_info *info);

#endif
