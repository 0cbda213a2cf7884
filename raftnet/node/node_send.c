/* node_send.c — Raft messages to peers: messages that must wait for a sync are held until it completes,
 * then released with superseded append acknowledgements dropped (DURABILITY RULES in node.h). */
#include <inttypes.h>
#include <stdlib.h>

#include "node_int.h"
#include "tn_code.h"

/* ------------------------------------------------------------------------------------------------ */
/* sending                                                                                           */

void tn_node_send_encoded(tn_node *n, uint64_t to, const uint8_t *b, size_t len)
{
    if (!n->tr) return; /* a node without a transport has no peers */
    int rc = tn_transport_send_peer(n->tr, to, b, len);
    (void)rc; /* loss is tolerated by Raft; unknown peers are members without a URL yet */
}

void tn_node_send_msg(tn_node *n, tn_raft_msg *m, int after_persist)
{
    tn_wr w;
    tn_wr_init(&w);
    if (m->type == TN_MSG_SNAP) {
        if (tn_node_send_snapshot_chunks(n, m) == 0) goto done;
        tn_node_log(n, "sending snapshot %" PRIu64 " (%zu bytes) to %" PRIu64 " in one message", m->snap.index,
                    m->snap_len, m->to);
    }
    if (tn_raft_msg_encode(m, &w) == 0 && !w.oom) {
        if (after_persist && n->synced_gen < n->write_gen) {
            if (n->n_held == n->cap_held) {
                size_t cap = n->cap_held ? n->cap_held * 2 : 64;
                held_msg *h = realloc(n->held, cap * sizeof *h);
                if (!h) goto done;
                n->held = h;
                n->cap_held = cap;
            }
            size_t len;
            uint8_t *buf = tn_wr_take(&w, &len);
            uint64_t ack_term = m->type == TN_MSG_APP_RESP && !m->reject ? m->term : 0;
            n->held[n->n_held++] = (held_msg){n->write_gen, buf, len, m->to, ack_term, m->index};
        } else {
            tn_node_send_encoded(n, m->to, w.p, w.len);
        }
    }
done:
    tn_wr_free(&w);
    tn_raft_msg_free(m);
}

/* A successful append acknowledgement is superseded by a later one of the same term to the same leader that
 * acknowledges at least as long a prefix (the leader takes the highest): of the acknowledgements one sync
 * releases, only the last goes out. Under load that halves the follower's messages. (A later one may
 * acknowledge less — an answer to a commit-only append anchored lower — and then both go.) */
static int superseded(const tn_node *n, size_t i)
{
    const held_msg *h = &n->held[i];
    if (!h->ack_term) return 0;
    for (size_t j = i + 1; j < n->n_held; j++) {
        const held_msg *later = &n->held[j];
        if (later->gen > n->synced_gen) break; /* held entries are in generation order */
        if (later->to == h->to && later->ack_term == h->ack_term && later->ack_index >= h->ack_index) return 1;
    }
    return 0;
}

void tn_node_release_held(tn_node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_held; i++) {
        held_msg *h = &n->held[i];
        if (h->gen <= n->synced_gen) {
            if (!superseded(n, i)) tn_node_send_encoded(n, h->to, h->buf, h->len);
            free(h->buf);
        } else {
            n->held[k++] = *h;
        }
    }
    n->n_held = k;
}

