/* status.h — payloads of the node-level ops TN_OP_STATUS (answer) and TN_OP_ADMIN (request), see wire.h.
 *
 *   status  := "TS" version:u8(=1) id:varint url:bytes role:u8 term:varint leader:varint
 *              leader_url:bytes commit:varint applied:varint last_index:varint snapshot_index:varint
 *              n_members:varint (id:varint url:bytes voter:u8 match:varint)*
 *              (match: the member's replicated index as this node knows it — meaningful on the leader,
 *               0 elsewhere; lag = the leader's last_index - match)
 *   admin   := "TA" version:u8(=1) kind:u8 node:varint url:bytes
 *
 * Roles use tn_raft_role's numbers (0 follower, 1 pre-candidate, 2 candidate, 3 leader).
 * Decoders are zero-copy (strings point into the buffer), bounds-checked, and reject trailing bytes; they
 * return SUCCESS, BAD_REQUEST or NOMEM. Thread: any.
 */
#ifndef TARN_STATUS_H
#define TARN_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define TN_STATUS_MAX_MEMBERS 64u
#define TN_STATUS_MAX_URL 1024u

typedef struct tn_status_member {
    uint64_t id;
    const char *url; /* not NUL-terminated */
    size_t url_len;
    int voter;
    uint64_t match;
} tn_status_member;

typedef struct tn_status {
    uint64_t id;
    const char *url;
    size_t url_len;
    uint8_t role;
    uint64_t term, leader;
    const char *leader_url;
    size_t leader_url_len;
    uint64_t commit, applied, last_index, snapshot_index;
    size_t n_members;
    tn_status_member members[TN_STATUS_MAX_MEMBERS];
} tn_status;

enum tn_admin_kind {
    TN_ADMIN_ADD_VOTER = 1,   /* node + url */
    TN_ADMIN_ADD_LEARNER = 2, /* node + url */
    TN_ADMIN_REMOVE = 3,      /* node */
    TN_ADMIN_PROMOTE = 4,     /* node (a learner) */
    TN_ADMIN_TRANSFER = 5,    /* node: the new leader */
    TN_ADMIN_SNAPSHOT = 6,    /* take a snapshot now (node, url unused) */
};

typedef struct tn_admin {
    uint8_t kind;
    uint64_t node;
    const char *url;
    size_t url_len;
} tn_admin;

void tn_status_encode(const tn_status *s, tn_wr *w);
int tn_status_decode(const void *buf, size_t len, tn_status *s);
void tn_admin_encode(const tn_admin *a, tn_wr *w);
int tn_admin_decode(const void *buf, size_t len, tn_admin *a);

#endif
