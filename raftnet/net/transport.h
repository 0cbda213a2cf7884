/* transport.h — the raftnet node's network edge: one nng listener for clients and peers, and pipelined,
 * asynchronous sending of Raft messages to peers.
 *
 * Envelope. Every message a node receives is an envelope (tn_env_*, below):
 *   env       := 'T' 'E' version:u8 kind:u8 token:bytes body
 *   CLIENT    body := payload (a wire.h request, to the end of the message)
 *   PEER      body := from_id:u64 stream:u64 seq:u64 low:u64 payload (a Raft message, to the end)
 * (u64 = fixed little-endian, bytes = varint length + bytes, see codec.h.) The reply to a CLIENT envelope
 * is the bare wire.h response; the reply to a PEER envelope is an ack: 'T' 'A' version:u8 status:u8.
 * stream/seq/low let the receiver hand Raft messages to on_peer in the order the sender queued them even
 * though several travel at once on different nng contexts (see "Ordering" below).
 *
 * Node side (tn_transport):
 *   - A rep0 socket listens on opts.listen_url (tcp:// or tls+tcp://) with opts.n_contexts contexts, each
 *     with its own aio: that many requests can be in flight at once (more wait, with TCP back-pressure).
 *   - A message whose token differs from the configured one (when token_len > 0) is never delivered:
 *     CLIENT gets a wire.h UNAUTHORIZED response, PEER a rejected ack; it is counted and logged.
 *     A malformed envelope is dropped (no reply; the sender times out), counted and logged.
 *   - CLIENT payloads go to on_client with a tn_pending; the owner answers exactly once, later, from any
 *     thread, with tn_pending_reply. The context stays busy until then.
 *   - PEER payloads go to on_peer and are acked at once (the ack carries nothing but the token verdict).
 *   - tn_transport_send_peer queues a Raft message for a peer and returns at once. Per peer: one req0
 *     socket dialed to its URL (reconnecting by itself), a window of opts.peer_window contexts in flight,
 *     a queue of at most opts.peer_queue_max messages; above that, messages are dropped and counted
 *     (Raft tolerates loss). A message not acked within opts.peer_timeout_ms is given up (counted).
 *
 * Ordering. nng completes the contexts' receives on its own worker threads, so two messages that arrived
 * in order could reach user code out of order. The sender numbers its messages (seq, per peer and stream;
 * stream is random per sending queue) and tells the lowest seq it still has in flight (low); the receiver
 * delivers in seq order, buffers a message that overtook a predecessor, drops duplicates, and skips a gap
 * once the sender says (low) that the missing message was given up. A sender never runs more than
 * 4 x peer_window messages ahead of its oldest unacknowledged one, which bounds what a receiver holds.
 * Result: per (sender, receiver) pair, on_peer sees messages in send order, with losses but no
 * reordering or duplication. (A message that overtook one the sender later gives up waits for the
 * sender's next message, whose `low` releases it: with Raft's steady heartbeats that is a short delay,
 * and only after a loss.)
 *
 * Threads. on_client, on_peer and on_log run on nng's worker threads. on_peer calls are serialized (one
 * at a time per transport); on_client calls may run concurrently on several threads. All three must be
 * quick (hand the message to the owner's loop) and must not call tn_transport_close. tn_pending_reply
 * and tn_transport_send_peer/set_peers/stats may be called from any thread, also from inside callbacks.
 *
 * Shutdown. tn_transport_close stops receiving, cancels every operation, waits for running callbacks to
 * return, and frees everything. Client requests still waiting for tn_pending_reply are DROPPED, not
 * answered (the socket is closing, so an answer could not leave anyway); their senders see the
 * connection close and retry elsewhere, which the exactly-once session makes safe. A tn_pending_reply
 * racing with close returns TN_UNAVAILABLE; after close has returned, no tn_pending may be used. Queued
 * peer messages are dropped.
 *
 * Ownership. Callers keep their buffers: every function copies what it needs. Request bytes passed to
 * on_client stay valid until tn_pending_reply is called on that pending (or close); bytes passed to
 * on_peer only during the call.
 *
 * Errors. Functions return tn_code values (tn_code.h). tn_transport_open also writes a one-line reason.
 */
#ifndef TARN_TRANSPORT_H
#define TARN_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "codec.h"
#include "envelope.h"
#include "tls.h"
#include "wire.h"

/* ---- node transport ---- */
typedef struct tn_transport tn_transport;
typedef struct tn_pending tn_pending;

typedef void (*tn_on_client_fn)(void *arg, tn_pending *p, const uint8_t *req, size_t len);
typedef void (*tn_on_peer_fn)(void *arg, uint64_t from_id, const uint8_t *msg, size_t len);
/* One line, no trailing newline; the owner adds its own prefix/timestamp. */
typedef void (*tn_log_fn)(void *arg, const char *line);

typedef struct tn_transport_opts {
    uint64_t self_id;         /* sent as from_id on peer messages */
    const char *listen_url;   /* NULL: no listener (send-only, e.g. tests) */
    const uint8_t *token;     /* cluster token; token_len 0 = no token required */
    size_t token_len;         /* <= TN_ENV_MAX_TOKEN */
    tn_tls_opts tls;
    unsigned n_contexts;      /* receive contexts; 0 = 128 */
    unsigned peer_window;     /* in-flight messages per peer; 0 = 16, at most 64 */
    unsigned peer_queue_max;  /* queued (not yet in flight) messages per peer; 0 = 4096 */
    int peer_timeout_ms;      /* give up a peer message after this long; 0 = 2000 */
    tn_on_client_fn on_client; /* NULL: CLIENT envelopes are answered UNAVAILABLE */
    tn_on_peer_fn on_peer;     /* NULL: PEER payloads are acked and discarded */
    tn_log_fn on_log;          /* NULL: silent */
    void *arg;                 /* passed to the three callbacks */
} tn_transport_opts;

typedef struct tn_peer_addr {
    uint64_t id;
    const char *url;
} tn_peer_addr;

typedef struct tn_transport_stats {
    uint64_t client_msgs;   /* CLIENT envelopes delivered to on_client */
    uint64_t peer_msgs;     /* PEER payloads delivered to on_peer */
    uint64_t peer_dups;     /* PEER messages dropped as duplicates or late after a skipped gap */
    uint64_t peer_held;     /* PEER messages that overtook a predecessor and were held back to restore order */
    uint64_t unauthorized;  /* envelopes rejected for their token */
    uint64_t malformed;     /* envelopes dropped as undecodable */
} tn_transport_stats;

typedef struct tn_peer_stats {
    uint64_t queued;        /* messages waiting now */
    uint64_t inflight;      /* messages in flight now */
    uint64_t max_inflight;  /* most messages ever in flight at once */
    uint64_t sent;          /* messages handed to nng */
    uint64_t acked;         /* acks received (OK) */
    uint64_t rejected;      /* acks saying UNAUTHORIZED */
    uint64_t failed;        /* given up: send/ack error or timeout */
    uint64_t dropped;       /* refused by tn_transport_send_peer because the queue was full */
} tn_peer_stats;

/* Opens the transport and starts listening (if listen_url). On failure returns UNAVAILABLE (cannot
 * listen), BAD_REQUEST (bad option, unreadable TLS file), NOMEM, and writes a reason to err[err_len]. */
int tn_transport_open(const tn_transport_opts *opts, tn_transport **out, char *err, size_t err_len);

/* Replaces the peer set. Peers whose id and URL are unchanged keep their connection and queue; others
 * are closed (their queued messages dropped) or created. A peer with id == self_id is ignored.
 * SUCCESS, NOMEM, BAD_REQUEST (bad URL, duplicate id). May block briefly while removed peers stop. */
int tn_transport_set_peers(tn_transport *t, const tn_peer_addr *peers, size_t n);

/* Queues msg (copied) for peer_id; never blocks on the network. SUCCESS; NOT_FOUND (unknown peer);
 * UNAVAILABLE (queue full: dropped and counted); TOO_LARGE; NOMEM. */
int tn_transport_send_peer(tn_transport *t, uint64_t peer_id, const void *msg, size_t len);

/* Answers a CLIENT request with resp (copied; a wire.h response). Call exactly once per pending; p is
 * invalid afterwards. SUCCESS (handed to nng; delivery is not guaranteed), TOO_LARGE (the request is
 * answered with TOO_LARGE instead), NOMEM (dropped), UNAVAILABLE (transport closing: dropped). */
int tn_pending_reply(tn_pending *p, const void *resp, size_t len);

void tn_transport_stats_get(tn_transport *t, tn_transport_stats *out);
/* NOT_FOUND if peer_id is not configured. */
int tn_transport_peer_stats(tn_transport *t, uint64_t peer_id, tn_peer_stats *out);

/* See "Shutdown" above. NULL is a no-op. */
void tn_transport_close(tn_transport *t);

#endif
