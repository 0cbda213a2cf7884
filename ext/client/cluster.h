/* cluster.h — the client library: sends encoded wire.h requests to a raftnet cluster and returns the
 * encoded response, finding the leader, following redirects and retrying until a total deadline.
 *
 * Members. The URL list given to tn_cluster_open may be any subset of the cluster; a leader_hint naming
 * a member not in the list adds it (up to TN_CLUSTER_MAX_MEMBERS). Each member has its own req0 socket
 * with a dialer that reconnects by itself; every call opens its own nng context, so calls from several
 * threads proceed in parallel on one tn_cluster (e.g. `tarn bench` threads).
 *
 * Routing. A request goes to the member believed to be leader (the last one that answered anything but
 * NOT_LEADER), else to the members in turn. When opts.stale_reads is set, a request whose read_mode is
 * TN_READ_STALE goes to any member (round robin) instead. Every other routing choice — ReadIndex,
 * forwarding — is the node's business.
 *
 * Retries. On NOT_LEADER the call follows leader_hint at once (or tries the next member); on no answer
 * within request_timeout_ms (member dead or partitioned), no connection within connect_wait_ms (nothing is
 * sent then, so no stale copy reaches the member later), or an UNAVAILABLE/TIMEOUT answer it tries the next
 * member; after a round over all members it sleeps an exponential backoff with
 * jitter (10 ms doubling to 500 ms). The call gives up at deadline_ms after it started with
 * "tarn: no leader reachable after <deadline_ms> ms (tried <url>, <url>)" naming each member tried.
 * A retry re-sends the very same request bytes, so a write keeps its (client_id, seq): the node's
 * session table applies it at most once and returns its original result (docs/design.md §4, "Exactly once").
 *
 * Sessions. tn_cluster_client_id() is a random nonzero 64-bit id drawn at open; tn_cluster_next_seq()
 * returns 1, 2, 3 … (thread-safe). The caller puts them into each write request it encodes (or uses
 * tn_cluster_call_req, which does it).
 *
 * Ownership and memory. The caller owns the tn_cluster and closes it after every call has returned. The
 * library allocates with sqlite3_malloc. Error messages are sqlite3_mprintf'd into *errmsg (the caller
 * frees with sqlite3_free); *errmsg is set only when the function fails.
 *
 * Threads. Every function may be called from any thread; each call uses its own nng context and aio.
 * tn_cluster_close must not race other functions (it does wait for async calls still running).
 *
 * Known nng 1.5.2 issue: closing a socket while its connection handshake is in progress leaks that
 * connection's memory inside nng (~3 KB; LeakSanitizer reports it under nng_dialer_create). Opening and
 * immediately closing a tn_cluster can hit it; normal use (a call, then close) does not.
 */
#ifndef TARN_CLUSTER_H
#define TARN_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "wire.h"

#define TN_CLUSTER_MAX_MEMBERS 16

typedef struct tn_cluster tn_cluster;

typedef struct tn_cluster_opts {
    const uint8_t *token; /* cluster token sent with every request; NULL/0 = none */
    size_t token_len;
    const char *tls_ca_file;   /* needed for tls+tcp:// members: verifies them */
    const char *tls_cert_file; /* optional client certificate (with its key) */
    const char *tls_key_file;
    int deadline_ms;        /* total time of one call, retries included; 0 = 5000 */
    int request_timeout_ms; /* one attempt; 0 = 1000 (capped by what is left of the deadline) */
    int connect_wait_ms;    /* how long an attempt waits for a member with no connection up; 0 = 50 */
    int stale_reads;        /* route TN_READ_STALE requests to any member */
} tn_cluster_opts;

/* urls: comma-separated member URLs ("tcp://a:1,tls+tcp://b:2"); spaces around commas are ignored.
 * opts may be NULL (defaults). Returns SUCCESS and *out, or BAD_REQUEST (empty/bad URL, too many, TLS
 * misconfigured, token too long) / NOMEM with *errmsg. Does not wait for any connection. */
int tn_cluster_open(const char *urls, const tn_cluster_opts *opts, tn_cluster **out, char **errmsg);
void tn_cluster_close(tn_cluster *cl);

/* Sends req (one encoded wire.h request) and appends the encoded response to resp. Returns SUCCESS when
 * a member answered (the response's own code says what happened — any code but NOT_LEADER and
 * UNAVAILABLE/TIMEOUT ends the call), UNAVAILABLE after the deadline (with *errmsg as above), TOO_LARGE,
 * NOMEM, or BAD_REQUEST (req is not a request). errmsg may be NULL. */
int tn_cluster_call(tn_cluster *cl, const tn_wr *req, tn_wr *resp, char **errmsg);

/* Asynchronous call: the same routing, retries and deadline, without blocking the caller. done runs
 * exactly once, on an nng worker thread (or, rarely, inside this call), with rc and the response bytes
 * (valid only during the callback; SUCCESS: a member answered) or errmsg (rc != SUCCESS). done must not
 * call tn_cluster_close. Returns SUCCESS (done will run), or BAD_REQUEST / TOO_LARGE / NOMEM (done will
 * not run). Every call must have finished before tn_cluster_close, which waits for running ones. */
typedef void (*tn_cluster_done_fn)(void *arg, int rc, const uint8_t *resp, size_t len, const char *errmsg);
int tn_cluster_call_async(tn_cluster *cl, const tn_wr *req, tn_cluster_done_fn done, void *arg);

/* Fills req->client_id with the cluster's session and, for a write request with seq 0, a fresh seq, then
 * encodes it (appended to w): what tn_cluster_call_req sends, for callers of tn_cluster_call_async.
 * Returns tn_req_encode's result. */
int tn_cluster_req_encode(tn_cluster *cl, tn_req *req, tn_wr *w);

/* Convenience: tn_cluster_req_encode, then tn_cluster_call. Returns as tn_cluster_call (plus encoder
 * errors). */
int tn_cluster_call_req(tn_cluster *cl, tn_req *req, tn_wr *resp, char **errmsg);

uint64_t tn_cluster_client_id(const tn_cluster *cl);
uint64_t tn_cluster_next_seq(tn_cluster *cl);

/* Members known now (those given at open plus those learnt from hints), in order. Returns their number;
 * fills urls[0..min(n, max)) with sqlite3_mprintf'd copies (caller frees each with sqlite3_free) when
 * urls is not NULL. *leader (if not NULL) receives the index of the believed leader, or -1. */
int tn_cluster_members(tn_cluster *cl, char **urls, int max, int *leader);

#endif
