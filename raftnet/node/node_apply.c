/* node_apply.c — applying committed entries (state machine commands, member URLs, conf changes) and the
 * table of client requests waiting for them. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "clock.h"
#include "node_int.h"
#include "sm.h"
#include "tn_code.h"

/* ------------------------------------------------------------------------------------------------ */
/* waiters                                                                                           */

void tn_node_waiter_add(tn_node *n, waiter *w)
{
    w->deadline_ms = tn_mono_ms() + n->cfg.request_timeout_ms;
    w->next = n->waiters;
    n->waiters = w;
}

void tn_node_waiter_free(waiter *w)
{
    if (w->kind == W_READ) tn_req_clear(&w->req);
    free(w);
}

/* ------------------------------------------------------------------------------------------------ */
/* applying                                                                                          */

/* client_id and seq of the request inside a command; 0/0 if none or undecodable. */
static void peek_session(const uint8_t *data, size_t len, uint64_t *cid, uint64_t *seq)
{
    tn_cmd cmd;
    tn_req_head h = {0};
    if (tn_cmd_decode(data, len, &cmd) == TN_SUCCESS) tn_req_peek(cmd.req, cmd.req_len, &h);
    *cid = h.client_id;
    *seq = h.seq;
}

static void answer_write_waiters(tn_node *n, const tn_raft_entry *e, const uint8_t *resp, size_t resp_len)
{
    uint64_t cid, seq;
    peek_session(e->data, e->len, &cid, &seq);
    for (waiter **pp = &n->waiters; *pp;) {
        waiter *w = *pp;
        int match = 0, lost = 0;
        if (w->kind == W_WRITE) {
            if (w->client_id) match = cid == w->client_id && seq == w->seq;
            else if (w->index == e->index) {
                match = w->term == e->term;
                lost = !match;
            }
        } else if (w->kind == W_ADMIN && w->index == e->index) {
            match = w->term == e->term;
            lost = !match;
        }
        if (!match && !lost) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (lost) {
            tn_node_reply_error(n, w->p, w->req_id, TN_UNAVAILABLE, "the entry was replaced by a new leader; retry");
        } else if (w->kind == W_ADMIN) {
            tn_wr out;
            tn_wr_init(&out);
            tn_resp_error(&out, w->req_id, TN_SUCCESS, NULL, "membership change applied");
            tn_node_reply_bytes(w->p, out.p, out.len);
            tn_wr_free(&out);
        } else if (resp_len) {
            tn_wr out;
            tn_wr_init(&out);
            if (tn_resp_rewrite(resp, resp_len, w->req_id, tn_node_forward_hint(n), &out) == TN_SUCCESS && !out.oom)
                tn_node_reply_bytes(w->p, out.p, out.len);
            else
                tn_node_reply_error(n, w->p, w->req_id, TN_INTERNAL, "could not build the response");
            tn_wr_free(&out);
        } else {
            tn_node_reply_error(n, w->p, w->req_id, TN_BAD_REQUEST, "command could not be applied");
        }
        tn_node_waiter_free(w);
    }
}

static void apply_member_url(tn_node *n, const uint8_t *p, size_t len)
{
    tn_rd r;
    tn_rd_init(&r, p, len);
    tn_rd_raw(&r, 3);
    uint64_t id = tn_rd_varint(&r);
    size_t ul;
    const uint8_t *u = tn_rd_bytes(&r, MAX_URL - 1, &ul);
    if (r.err || !id) return;
    if (tn_node_set_url(n, id, (const char *)u, ul) == TN_SUCCESS) {
        tn_node_log(n, "member %" PRIu64 " is at %.*s", id, (int)ul, (const char *)u);
        tn_node_update_peers(n);
    }
}

void tn_node_apply_entry(tn_node *n, const tn_raft_entry *e)
{
    if (e->type == TN_ENTRY_CONF) {
        tn_raft_conf_change cc;
        if (tn_raft_conf_decode(e->data, e->len, &cc) == 0) {
            static const char *const ops[] = {"?", "add voter", "remove", "add learner", "promote"};
            tn_node_log(n, "membership: %s %" PRIu64 " applied at %" PRIu64, ops[cc.op <= 4 ? cc.op : 0],
                        cc.node, e->index);
        }
        tn_node_update_peers(n);
        answer_write_waiters(n, e, NULL, 0);
        return;
    }
    if (e->type != TN_ENTRY_NORMAL) {
        answer_write_waiters(n, e, NULL, 0);
        return;
    }
    if (e->len >= 3 && e->data[0] == 'T' && e->data[1] == 'U' && e->data[2] == 1) {
        apply_member_url(n, e->data, e->len);
        return;
    }
    tn_wr out;
    tn_wr_init(&out);
    pthread_rwlock_wrlock(&n->sm_lock);
    int rc = tn_sm_apply(n->sm, e->index, e->data, e->len, &out);
    atomic_store(&n->applied_rev, tn_sm_applied(n->sm));
    pthread_rwlock_unlock(&n->sm_lock);
    if (rc == TN_NOMEM || rc == TN_INTERNAL || out.oom) {
        tn_wr_free(&out);
        tn_node_set_fatal(n, rc == TN_INTERNAL ? "the state machine is inconsistent (failed rollback)"
                                               : "out of memory while applying");
        return;
    }
    answer_write_waiters(n, e, out.p, out.len);
    tn_wr_free(&out);
}

