/* client.h — how the extension reaches a Tarn store: encoded requests in, encoded responses out.
 *
 * A tn_client is bound to one target and one session (the owner of the temp nodes it creates). Targets:
 *   - an embedded engine in this process, by name (tn_client_open_embedded);
 *   - a cluster of raftnet members (tn_client_open_cluster), through the client library ext/client/cluster.h:
 *     leader discovery, redirects, retries until a total deadline, and an exactly-once session (the
 *     client fills the session's next seq into every write request that carries seq 0).
 * Nothing above this seam knows which kind it talks to.
 *
 * Ownership: the caller owns the client and closes it. Error messages are sqlite3_mprintf'd into *errmsg
 * (caller frees with sqlite3_free).
 * Thread: a client may be used by one thread at a time (a SQLite connection's thread).
 */
#ifndef TARN_CLIENT_H
#define TARN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct tn_client tn_client;

/* Options of a cluster client (the tables' cluster=, token=, timeout_ms= arguments). */
typedef struct tn_client_opts {
    const char *token; /* cluster token (NUL-terminated); NULL or "" = none */
    int timeout_ms;    /* total time of one call, retries included; 0 = 5000 */
    int stale_reads;   /* send reads as TN_READ_STALE to any member instead of linearizable via the leader */
    const char *data_dir; /* embedded engine only: persist in this directory (NULL = in memory) */
} tn_client_opts;

/* SQLITE_OK and *out, or an SQLite error code and *errmsg. */
/* data_dir: NULL for an in-memory engine, else the directory its log and snapshots live in (an engine
 * name is bound to one directory while open). */
int tn_client_open_embedded(const char *engine_name, const char *data_dir, tn_client **out, char **errmsg);
/* urls: comma-separated member URLs (any subset of the cluster). opts may be NULL (defaults). Does not
 * wait for a connection: an unreachable cluster shows on the first call. SQLITE_ERROR for bad URLs or
 * options, SQLITE_NOMEM. */
int tn_client_open_cluster(const char *urls, const tn_client_opts *opts, tn_client **out, char **errmsg);
void tn_client_close(tn_client *c);

/* Sends req (encoded request) and appends the encoded response to resp. Returns a tn_code: SUCCESS when a
 * response arrived (its own codes say what happened), or UNAVAILABLE / TIMEOUT / NOMEM. */
int tn_client_call(tn_client *c, const tn_wr *req, tn_wr *resp);

/* Why the last tn_client_call failed, in words ("tarn: no leader reachable after 5000 ms (tried tcp://…)"),
 * or NULL if it did not fail or has no more to say than its code. Valid until the next call or close. */
const char *tn_client_last_error(const tn_client *c);

/* The session id requests carry as client_id. */
uint64_t tn_client_session(const tn_client *c);
/* A short description of the target for messages ("embedded engine 'default'"). */
const char *tn_client_target(const tn_client *c);

#endif
