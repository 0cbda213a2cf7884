/* node_recover.c — recovery of a node from its data directory: hard state, the newest snapshot file, the
 * segment log (torn tails repaired), handed to the Raft core (see DATA DIRECTORY in node.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hardstate.h"
#include "logstore.h"
#include "node_int.h"
#include "snapfile.h"
#include "tn_code.h"

/* Creates the core from what the data directory holds (nothing: a new node). */
int tn_node_recover(tn_node *n, char *err, size_t errlen)
{
    const tn_node_config *cfg = &n->cfg;
    uint8_t *snap_conf = NULL, *snap_data = NULL;
    tn_raft_entry *ents = NULL;
    size_t n_ents = 0;
    tn_log_batch batch = {0};
    int rc;
    tn_hardstate hs = {0};
    int found_hs = 0;
    if (!cfg->data_dir) { /* in memory: nothing to recover */
        n->raft = tn_raft_new(&n->rcfg);
        goto created;
    }
    rc = tn_hardstate_load(cfg->data_dir, &hs, &found_hs, err, errlen);
    if (rc != TN_SUCCESS) goto fail;

    tn_snap_meta sm_meta;
    tn_raft_snapshot_meta snap = {0};
    size_t snap_len = 0;
    rc = tn_snapfile_load(n->snap_dir, &sm_meta, &snap_conf, &snap_data, err, errlen);
    if (rc == TN_SUCCESS) {
        snap.index = sm_meta.index;
        snap.term = sm_meta.term;
        snap_len = (size_t)sm_meta.data_len;
        rc = tn_node_conf_decode(snap_conf, (size_t)sm_meta.conf_len, &snap.conf);
        if (rc == TN_SUCCESS) rc = tn_node_image_load(n, snap_data, snap_len);
        if (rc != TN_SUCCESS) {
            snprintf(err, errlen, "%s: snapshot at %" PRIu64 " does not decode (%s)", n->snap_dir, snap.index,
                     tn_code_name(rc));
            rc = TN_IO_ERROR;
            goto fail;
        }
        tn_node_log(n, "loaded snapshot index %" PRIu64 " term %" PRIu64 " (%zu bytes)", snap.index, snap.term,
                    snap_len);
    } else if (rc != TN_NOT_FOUND) {
        goto fail;
    }
    n->last_snap_index = snap.index;

    tn_logstore_recovery rec;
    rc = tn_logstore_open(n->log_dir, NULL, &n->log, &rec, err, errlen);
    if (rc != TN_SUCCESS) goto fail;
    if (rec.dropped_bytes)
        tn_node_log(n, "repaired torn log tail: dropped %" PRIu64 " bytes at the end of %s", rec.dropped_bytes,
                    rec.torn_file);
    if (rec.removed_segments) tn_node_log(n, "removed %u stale log segment(s)", rec.removed_segments);

    if (snap.index) {
        uint64_t t = 0;
        uint64_t base = tn_logstore_first_index(n->log) - 1;
        if (base < snap.index) {
            if (tn_logstore_term_at(n->log, snap.index, &t) == TN_SUCCESS && t == snap.term)
                rc = tn_logstore_compact(n->log, snap.index);
            else
                rc = tn_logstore_reset(n->log, snap.index, snap.term);
            if (rc != TN_SUCCESS) {
                tn_logstore_errmsg(n->log, err, errlen);
                goto fail;
            }
        } else if (base > snap.index) {
            rc = TN_IO_ERROR;
            snprintf(err, errlen, "%s: log starts after the snapshot (%" PRIu64 " > %" PRIu64 ")", n->log_dir,
                     base, snap.index);
            goto fail;
        }
    }
    uint64_t first = tn_logstore_first_index(n->log), last = tn_logstore_last_index(n->log);
    if (last >= first) {
        n_ents = (size_t)(last - first + 1);
        ents = calloc(n_ents, sizeof *ents);
        if (!ents) { rc = TN_NOMEM; goto fail; }
        size_t k = 0;
        for (uint64_t lo = first; lo <= last;) {
            rc = tn_logstore_read_batch(n->log, lo, last, READ_BATCH_BYTES, &batch);
            if (rc != TN_SUCCESS) {
                tn_logstore_errmsg(n->log, err, errlen);
                goto fail;
            }
            for (size_t i = 0; i < batch.count; i++, k++) {
                const tn_log_entry *le = &batch.entries[i];
                ents[k].index = le->index;
                ents[k].term = le->term;
                ents[k].type = le->type;
                ents[k].len = (uint32_t)le->len;
                ents[k].data = malloc(le->len ? le->len : 1);
                if (!ents[k].data) { rc = TN_NOMEM; goto fail; }
                if (le->len) memcpy(ents[k].data, le->data, le->len);
            }
            lo += batch.count;
            tn_log_batch_free(&batch);
        }
    }
    if (!found_hs && !snap.index && !n_ents) {
        n->raft = tn_raft_new(&n->rcfg);
    } else {
        tn_raft_hard_state rhs = {hs.term, hs.vote, hs.commit};
        if (rhs.commit < snap.index) rhs.commit = snap.index;
        if (rhs.commit > last) rhs.commit = last;
        n->raft = tn_raft_restore(&n->rcfg, &rhs, &snap, snap_data, snap_len, ents, n_ents);
        tn_node_log(n, "restored: term %" PRIu64 " vote %" PRIu64 " snapshot %" PRIu64 " log %" PRIu64 "..%" PRIu64,
                    hs.term, hs.vote, snap.index, first, last);
    }
created:
    if (!n->raft) {
        rc = TN_IO_ERROR;
        snprintf(err, errlen, "%s: durable state is inconsistent (the Raft core refused it)",
                 cfg->data_dir ? cfg->data_dir : "(in memory)");
        goto fail;
    }
    n->saved_term = hs.term;
    n->saved_vote = hs.vote;
    rc = TN_SUCCESS;
fail:
    for (size_t i = 0; ents && i < n_ents; i++) free(ents[i].data);
    free(ents);
    tn_log_batch_free(&batch);
    free(snap_conf);
    free(snap_data);
    return rc;
}
