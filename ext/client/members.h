/* members.h — asking every member of a cluster for its state (TN_OP_STATUS); tarn_status() (vtab/) and
 * `tarn status` (shell/) are built on it.
 *
 * tn_member_status_fetch sends one STATUS request to each given URL at the same time (one tn_cluster per
 * member, asynchronous calls) and waits for all of them, each bounded by timeout_ms. Members that the
 * answering nodes list but that were not given are asked in a second round, so any subset of the URLs
 * shows the whole membership. A member that does not answer in time gets answered = 0 and a reason.
 * The leader is the answering member that says it leads with the highest term; lag is the leader's
 * last_index minus how far the member's log is known to match it: the larger of the leader's match index
 * for it and the member's own applied index (0 for the leader, -1 unknown).
 *
 * Ownership: *out is an array of *n entries allocated with sqlite3_malloc, released with
 * tn_member_status_free (status strings point into each entry's private buffer).
 * Errors: SQLITE_OK, SQLITE_ERROR (no or bad URLs, with *errmsg) or SQLITE_NOMEM.
 * Thread: any; no shared state. Blocks for at most about 2 * timeout_ms.
 */
#ifndef TARN_MEMBERS_H
#define TARN_MEMBERS_H

#include <stdint.h>

#include "codec.h"
#include "status.h"

/* The wait for each member when the caller passes timeout_ms <= 0. */
#define TN_STATUS_TIMEOUT_MS_DEFAULT 1000

typedef struct tn_member_status {
    char *url;        /* the URL asked */
    int answered;     /* 1: status below is valid */
    char *error;      /* !answered: why (sqlite3_malloc'd), may be NULL */
    int refused;      /* !answered because the member answered with an error (e.g. UNAUTHORIZED) */
    tn_status status; /* answered: the member's own view; strings point into buf */
    uint64_t id;      /* the member's id (its own, or from another member's list); 0 = unknown */
    int voter;        /* 1 voter, 0 learner, -1 unknown */
    int is_leader;    /* 1 for the cluster's leader */
    int64_t lag;      /* entries behind the leader; -1 unknown */
    tn_wr buf;        /* private: the response bytes */
} tn_member_status;

int tn_member_status_fetch(const char *urls, const char *token, int timeout_ms, tn_member_status **out,
                           int *n, char **errmsg);
void tn_member_status_free(tn_member_status *m, int n);
/* "leader", "follower", "candidate", "pre-candidate", "learner" (a non-voting follower) or "unreachable". */
const char *tn_member_role_name(const tn_member_status *m);

#endif
