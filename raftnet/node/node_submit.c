/* node_submit.c — in-process requests (tn_node_submit, tn_node_read_local): a node alone runs them on the
 * caller's thread under the loop lock (ALONE in node.h); with a transport they go through the queue. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "logstore.h"
#include "node_int.h"
#include "sm.h"
#include "tn_code.h"

/* ------------------------------------------------------------------------------------------------ */
/* in-process requests                                                                               */

void tn_node_submit(tn_node *n, const void *req, size_t len, uint64_t owner, tn_node_reply_fn done, void *arg)
{
    reply_to rt = {NULL, done, arg};
    event *e = calloc(1, sizeof *e);
    if (!e) {
        tn_node_reply_error(n, rt, tn_req_peek_id(req, len), TN_NOMEM, "node out of memory");
        return;
    }
    e->kind = EV_CLIENT;
    e->p = rt;
    e->req = req;
    e->len = len;
    e->owner = owner;
    if (!n->tr) {
        /* Alone: run the request on the caller's thread (no thread hop: an in-memory write is applied and
         * answered before this returns; a persistent one when the disk thread reports its sync). */
        pthread_mutex_lock(&n->loop_mu);
        pthread_mutex_lock(&n->mu);
        int stopping = n->stopping;
        pthread_mutex_unlock(&n->mu);
        if (!stopping) {
            free(e);
            n->caller_syncs = 1;
            tn_node_handle_client(n, rt, owner, req, len);
            tn_node_process_ready(n);
            n->caller_syncs = 0;
            uint64_t gen = n->write_gen;
            int need_sync = n->log && n->synced_gen < gen;
            uint64_t upto = need_sync ? tn_logstore_last_index(n->log) : 0;
            pthread_mutex_unlock(&n->loop_mu);
            if (need_sync) {
                /* Sync here rather than through the disk thread and the loop (two thread hops per write);
                 * concurrent callers share fdatasyncs inside the log store (group commit): one whose
                 * entries a sync covered while it waited does not sync again. */
                event synced = {.kind = EV_SYNCED, .gen = gen, .rc = tn_logstore_sync_upto(n->log, upto, NULL)};
                pthread_mutex_lock(&n->loop_mu);
                pthread_mutex_lock(&n->mu);
                stopping = n->stopping;
                pthread_mutex_unlock(&n->mu);
                if (!stopping && !n->fatal) {
                    tn_node_on_synced(n, &synced);
                    tn_node_process_ready(n);
                }
                pthread_mutex_unlock(&n->loop_mu);
            }
            return;
        }
        pthread_mutex_unlock(&n->loop_mu);
    }
    pthread_mutex_lock(&n->mu);
    if (n->stopping) {
        /* the loop is gone or going: nobody would answer (fatal is set before stopping, under mu) */
        int fatal = n->fatal;
        pthread_mutex_unlock(&n->mu);
        free(e);
        tn_node_reply_error(n, rt, tn_req_peek_id(req, len), fatal ? TN_IO_ERROR : TN_UNAVAILABLE,
                            fatal ? "the node stopped on a fatal error (see stderr); reopen it" : "node is stopping");
        return;
    }
    if (n->q_tail) n->q_tail->next = e;
    else n->q_head = e;
    n->q_tail = e;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

int tn_node_read_local(tn_node *n, const tn_req *req, tn_wr *out, int *served)
{
    *served = 0;
    if (!atomic_load(&n->local_ready)) return TN_SUCCESS;
    pthread_rwlock_rdlock(&n->sm_lock);
    int rc = tn_sm_read(n->sm, req, out);
    pthread_rwlock_unlock(&n->sm_lock);
    *served = 1;
    return rc;
}

int tn_node_local_ready(tn_node *n) { return atomic_load(&n->local_ready); }

