/* client.h — how the extension reaches a Tarn store: encoded requests in, encoded responses out.
 *
 * A tn_client is bound to one target and one session (the owner of the temp nodes it creates). Targets:
 *   - an embedded engine in this process, by name (tn_client_open_embedded);
 *   - a cluster of raftnet members (tn_client_open_cluster) — arrives with the raftnet daemon; until then
 *     opening one fails with a message saying so.
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

/* SQLITE_OK and *out, or an SQLite error code and *errmsg. */
int tn_client_open_embedded(const char *engine_name, tn_client **out, char **errmsg);
int tn_client_open_cluster(const char *urls, tn_client **out, char **errmsg);
void tn_client_close(tn_client *c);

/* Sends req (encoded request) and appends the encoded response to resp. Returns a tn_code: SUCCESS when a
 * response arrived (its own codes say what happened), or UNAVAILABLE / TIMEOUT / NOMEM. */
int tn_client_call(tn_client *c, const tn_wr *req, tn_wr *resp);

/* The session id requests carry as client_id. */
uint64_t tn_client_session(const tn_client *c);
/* A short description of the target for messages ("embedded engine 'default'"). */
const char *tn_client_target(const tn_client *c);

#endif
