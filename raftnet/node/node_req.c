/* node_req.c — client requests on the node: replies, STATUS, ADMIN (membership, leader transfer,
 * snapshot), writes proposed as commands, reads (stale, or linearizable through ReadIndex). See CLIENT
 * REQUESTS in node.h. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "node_int.h"
#include "sm.h"
#include "status.h"
#include "tn_code.h"

/* ------------------------------------------------------------------------------------------------ */
/* replies                                                                                           */

void tn_node_reply_bytes(reply_to p, const void *b, size_t len)
{
    if (p.fn) p.fn(p.arg, b, len);
    else tn_pending_reply(p.p, b, len);
}

void tn_node_reply_error(tn_node *n, reply_to p, uint64_t req_id, int code, const char *msg)
{
    tn_wr w;
    tn_wr_init(&w);
    const char *hint = NULL;
    if (code == TN_NOT_LEADER) {
        uint64_t l = tn_raft_leader(n->raft);
        if (l) hint = tn_node_url_of(n, l);
    }
    tn_resp_error(&w, req_id, code, hint, msg);
    if (!w.oom) tn_node_reply_bytes(p, w.p, w.len);
    tn_wr_free(&w);
}

/* The leader's URL when this node is a follower that knows it: put in the answers to requests it forwarded,
 * so the client sends the next one to the leader directly (one hop and one commit notification less). */
const char *tn_node_forward_hint(tn_node *n)
{
    uint64_t l = tn_raft_leader(n->raft);
    if (tn_raft_role_of(n->raft) == TN_LEADER || !l || l == n->cfg.id) return NULL;
    return tn_node_url_of(n, l);
}
/* ------------------------------------------------------------------------------------------------ */
/* reads                                                                                             */

static void serve_read(tn_node *n, reply_to p, const tn_req *req)
{
    tn_wr out, hinted;
    tn_wr_init(&out);
    tn_wr_init(&hinted);
    int rc = tn_sm_read(n->sm, req, &out);
    /* a linearizable read answered by a follower went through the leader: name it (stale reads stay here) */
    const char *hint = req->read_mode == TN_READ_STALE ? NULL : tn_node_forward_hint(n);
    if (rc == TN_SUCCESS && !out.oom && hint) {
        rc = tn_resp_rewrite(out.p, out.len, req->req_id, hint, &hinted);
        if (rc == TN_SUCCESS) {
            tn_wr_free(&out);
            out = hinted;
            tn_wr_init(&hinted);
        }
    }
    if (rc == TN_SUCCESS && !out.oom) tn_node_reply_bytes(p, out.p, out.len);
    else tn_node_reply_error(n, p, req->req_id, rc == TN_SUCCESS ? TN_NOMEM : rc, "read failed");
    tn_wr_free(&out);
    tn_wr_free(&hinted);
}

void tn_node_handle_read_state(tn_node *n, const tn_raft_read_state *rs)
{
    for (waiter **pp = &n->waiters; *pp; pp = &(*pp)->next) {
        waiter *w = *pp;
        if (w->kind != W_READ || w->ctx != rs->ctx) continue;
        *pp = w->next;
        if (rs->ok) serve_read(n, w->p, &w->req);
        else tn_node_reply_error(n, w->p, w->req_id, TN_NOT_LEADER, "read refused (leader changing); retry");
        tn_node_waiter_free(w);
        return;
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* client requests                                                                                   */

static void answer_status(tn_node *n, reply_to p, uint64_t req_id)
{
    tn_status s;
    memset(&s, 0, sizeof s);
    const char *self = tn_node_url_of(n, n->cfg.id);
    s.id = n->cfg.id;
    s.url = self ? self : n->cfg.listen_url ? n->cfg.listen_url : "";
    s.url_len = strlen(s.url);
    s.role = (uint8_t)tn_raft_role_of(n->raft);
    s.term = tn_raft_term(n->raft);
    s.leader = tn_raft_leader(n->raft);
    const char *lu = s.leader ? tn_node_url_of(n, s.leader) : NULL;
    s.leader_url = lu ? lu : "";
    s.leader_url_len = strlen(s.leader_url);
    s.commit = tn_raft_commit(n->raft);
    s.applied = tn_raft_applied(n->raft);
    s.last_index = tn_raft_last_index(n->raft);
    s.snapshot_index = tn_raft_snapshot_of(n->raft)->index;
    const tn_raft_conf *c = tn_raft_conf_of(n->raft);
    for (uint32_t i = 0; i < c->n_voters + c->n_learners && s.n_members < TN_STATUS_MAX_MEMBERS; i++) {
        int voter = i < c->n_voters;
        uint64_t id = voter ? c->voters[i] : c->learners[i - c->n_voters];
        tn_status_member *m = &s.members[s.n_members++];
        const char *u = tn_node_url_of(n, id);
        m->id = id;
        m->url = u ? u : "";
        m->url_len = strlen(m->url);
        m->voter = voter;
        /* own entry: the durable index; others: what they acknowledged to this leader (0 elsewhere) */
        m->match = 0;
        if (id == n->cfg.id) m->match = tn_raft_stable_index(n->raft);
        else if (s.role == TN_LEADER)
            for (size_t k = 0; k < n->n_urls; k++)
                if (n->urls[k].id == id) m->match = n->urls[k].match;
    }
    tn_wr blob, out;
    tn_wr_init(&blob);
    tn_wr_init(&out);
    tn_status_encode(&s, &blob);
    tn_resp_builder b;
    tn_resp_begin(&b, &out, req_id, TN_SUCCESS, s.applied, NULL, NULL);
    tn_resp_result_begin(&b, TN_SUCCESS);
    tn_resp_blob(&b, blob.p, blob.len);
    if (tn_resp_finish(&b) == TN_SUCCESS && !blob.oom) tn_node_reply_bytes(p, out.p, out.len);
    else tn_node_reply_error(n, p, req_id, TN_NOMEM, "status");
    tn_wr_free(&blob);
    tn_wr_free(&out);
}

static void handle_admin(tn_node *n, reply_to p, const tn_req *req, const tn_op *op)
{
    tn_admin a;
    if (tn_admin_decode(op->value, op->value_len, &a) != TN_SUCCESS) {
        tn_node_reply_error(n, p, req->req_id, TN_BAD_REQUEST, "admin payload does not decode");
        return;
    }
    if (a.kind == TN_ADMIN_SNAPSHOT) {
        int rc = tn_node_take_snapshot(n);
        tn_node_reply_error(n, p, req->req_id, rc, rc == TN_SUCCESS ? "snapshot taken" : "snapshot failed");
        return;
    }
    if (!n->tr) {
        tn_node_reply_error(n, p, req->req_id, TN_BAD_REQUEST,
                            "this node runs alone (embedded): no membership to change");
        return;
    }
    if (tn_raft_role_of(n->raft) != TN_LEADER) {
        tn_node_reply_error(n, p, req->req_id, TN_NOT_LEADER, "admin requests go to the leader");
        return;
    }
    if (a.kind == TN_ADMIN_TRANSFER) {
        int rc = tn_raft_transfer_leader(n->raft, a.node);
        if (rc == TN_SUCCESS) tn_node_log(n, "leader transfer to %" PRIu64 " started", a.node);
        tn_node_reply_error(n, p, req->req_id, rc, rc == TN_SUCCESS ? "transfer started" : "transfer refused");
        return;
    }
    tn_raft_conf_change cc = {0, a.node};
    switch (a.kind) {
    case TN_ADMIN_ADD_VOTER: cc.op = TN_CONF_ADD_VOTER; break;
    case TN_ADMIN_ADD_LEARNER: cc.op = TN_CONF_ADD_LEARNER; break;
    case TN_ADMIN_REMOVE: cc.op = TN_CONF_REMOVE; break;
    case TN_ADMIN_PROMOTE: cc.op = TN_CONF_PROMOTE; break;
    default:
        tn_node_reply_error(n, p, req->req_id, TN_BAD_REQUEST, "unknown admin kind");
        return;
    }
    if ((a.kind == TN_ADMIN_ADD_VOTER || a.kind == TN_ADMIN_ADD_LEARNER)) {
        const char *known = tn_node_url_of(n, a.node);
        if (a.url_len == 0 && !known) {
            tn_node_reply_error(n, p, req->req_id, TN_BAD_REQUEST, "adding a member needs its URL");
            return;
        }
        if (a.url_len >= MAX_URL) {
            tn_node_reply_error(n, p, req->req_id, TN_BAD_REQUEST, "URL too long");
            return;
        }
        if (a.url_len && (!known || strlen(known) != a.url_len || memcmp(known, a.url, a.url_len) != 0)) {
            tn_wr w;
            tn_wr_init(&w);
            tn_wr_raw(&w, "TU", 2);
            tn_wr_u8(&w, 1);
            tn_wr_varint(&w, a.node);
            tn_wr_bytes(&w, a.url, a.url_len);
            int rc = w.oom ? TN_NOMEM : tn_raft_propose(n->raft, w.p, w.len, NULL, NULL);
            tn_wr_free(&w);
            if (rc != TN_SUCCESS) {
                tn_node_reply_error(n, p, req->req_id, rc, "could not replicate the member URL");
                return;
            }
        }
    }
    uint64_t index = 0;
    int rc = tn_raft_propose_conf(n->raft, &cc, &index);
    if (rc != TN_SUCCESS) {
        tn_node_reply_error(n, p, req->req_id, rc,
                            rc == TN_UNAVAILABLE ? "another change is pending; retry" : "refused");
        return;
    }
    waiter *w = calloc(1, sizeof *w);
    if (!w) {
        tn_node_reply_error(n, p, req->req_id, TN_NOMEM, "out of memory");
        return;
    }
    w->kind = W_ADMIN;
    w->p = p;
    w->req_id = req->req_id;
    w->index = index;
    w->term = tn_raft_term(n->raft);
    tn_node_waiter_add(n, w);
}

static void propose_write(tn_node *n, reply_to p, uint64_t owner, const tn_req *req, const uint8_t *bytes,
                          size_t len)
{
    if (tn_raft_role_of(n->raft) != TN_LEADER && (!req->client_id || !req->seq)) {
        tn_node_reply_error(n, p, req->req_id, TN_NOT_LEADER, "writes without a session must go to the leader");
        return;
    }
    int64_t now = tn_wall_ms();
    if (now < n->last_cmd_time) now = n->last_cmd_time;
    n->last_cmd_time = now;
    tn_wr cmd;
    tn_wr_init(&cmd);
    int rc = tn_cmd_encode(now, req->client_id ? req->client_id : owner, bytes, len, &cmd);
    uint64_t index = 0, term = 0;
    if (rc == TN_SUCCESS) rc = cmd.oom ? TN_NOMEM : tn_raft_propose(n->raft, cmd.p, cmd.len, &index, &term);
    tn_wr_free(&cmd);
    if (rc != TN_SUCCESS) {
        tn_node_reply_error(n, p, req->req_id, rc, rc == TN_NOT_LEADER ? "no leader known" : "proposal refused");
        return;
    }
    waiter *w = calloc(1, sizeof *w);
    if (!w) {
        tn_node_reply_error(n, p, req->req_id, TN_NOMEM, "out of memory");
        return;
    }
    w->kind = W_WRITE;
    w->p = p;
    w->req_id = req->req_id;
    w->client_id = req->seq ? req->client_id : 0;
    w->seq = req->seq;
    w->index = index;
    w->term = term;
    tn_node_waiter_add(n, w);
}

void tn_node_handle_client(tn_node *n, reply_to p, uint64_t owner, const uint8_t *bytes, size_t len)
{
    tn_req req;
    int rc = tn_req_decode(bytes, len, &req);
    if (rc != TN_SUCCESS) {
        tn_node_reply_error(n, p, 0, rc, "request could not be decoded");
        return;
    }
    /* STATUS: answered from the node's own view; ops after it (if any) are ignored. */
    if (req.n_ops && req.ops[0].opcode == TN_OP_STATUS) {
        answer_status(n, p, req.req_id);
        tn_req_clear(&req);
        return;
    }
    for (size_t i = 0; i < req.n_ops; i++) {
        if (req.ops[i].opcode == TN_OP_STATUS || req.ops[i].opcode == TN_OP_ADMIN) {
            if (req.n_ops != 1) tn_node_reply_error(n, p, req.req_id, TN_BAD_REQUEST, "STATUS/ADMIN must be alone");
            else handle_admin(n, p, &req, &req.ops[i]);
            tn_req_clear(&req);
            return;
        }
    }
    if (tn_req_is_write(&req)) {
        propose_write(n, p, owner, &req, bytes, len);
        tn_req_clear(&req);
        return;
    }
    if (req.read_mode == TN_READ_STALE) {
        serve_read(n, p, &req);
        tn_req_clear(&req);
        return;
    }
    uint64_t ctx = (n->cfg.id << 40) | (++n->next_ctx & ((1ull << 40) - 1));
    rc = tn_raft_read_index(n->raft, ctx);
    if (rc != TN_SUCCESS) {
        tn_node_reply_error(n, p, req.req_id, rc, "no leader known");
        tn_req_clear(&req);
        return;
    }
    waiter *w = calloc(1, sizeof *w);
    if (!w) {
        tn_node_reply_error(n, p, req.req_id, TN_NOMEM, "out of memory");
        tn_req_clear(&req);
        return;
    }
    w->kind = W_READ;
    w->p = p;
    w->req_id = req.req_id;
    w->ctx = ctx;
    w->req = req; /* the waiter owns the decoded ops now */
    tn_node_waiter_add(n, w);
}

