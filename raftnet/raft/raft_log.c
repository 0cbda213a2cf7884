/* raft_log.c — the core's in-memory log (the entries after the latest snapshot): append, truncate,
 * conflict search, the stable (persisted) index and compaction. See raft_int.h. */
#include "raft_int.h"

/* ---------------------------------------------------------------------------------------------- */
/* log                                                                                             */

int tn_raft_log_append(tn_raft *r, uint64_t term, uint8_t type, const void *data, size_t len)
{
    if (r->ents_n == r->ents_cap) {
        if (r->ents_start > r->ents_cap / 2) {
            memmove(r->ents, r->ents + r->ents_start, (r->ents_n - r->ents_start) * sizeof *r->ents);
            r->ents_n -= r->ents_start;
            r->ents_start = 0;
        } else {
            size_t cap = r->ents_cap ? r->ents_cap * 2 : 64;
            tn_raft_entry *n = realloc(r->ents, cap * sizeof *n);
            if (!n) { r->oom = 1; return -1; }
            r->ents = n;
            r->ents_cap = cap;
        }
    }
    tn_raft_entry *e = &r->ents[r->ents_n];
    e->term = term;
    e->index = last_index(r) + 1;
    e->type = type;
    e->len = (uint32_t)len;
    e->data = NULL;
    if (len) {
        e->data = malloc(len);
        if (!e->data) { r->oom = 1; return -1; }
        memcpy(e->data, data, len);
    }
    r->ents_n++;
    return 0;
}

/* Drops entries with index >= from (from > commit). */
void tn_raft_log_truncate(tn_raft *r, uint64_t from)
{
    while (last_index(r) >= from && r->ents_n > r->ents_start) {
        r->ents_n--;
        free(r->ents[r->ents_n].data);
    }
    if (from < r->persist_from) {
        r->persist_from = from;
        if (!r->trunc_pending || from < r->trunc_pending) r->trunc_pending = from;
    }
    if (r->stable >= from) r->stable = from - 1;
}

void tn_raft_log_free_all(tn_raft *r)
{
    for (size_t i = r->ents_start; i < r->ents_n; i++) free(r->ents[i].data);
    r->ents_start = r->ents_n = 0;
}

/* Largest index <= i whose term is <= t (first guess for where two logs agree). */
uint64_t tn_raft_find_conflict_by_term(const tn_raft *r, uint64_t i, uint64_t t)
{
    if (i > last_index(r)) i = last_index(r);
    for (;;) {
        uint64_t x;
        if (term_at(r, i, &x) != 0) return i;  /* compacted: cannot look further */
        if (x <= t) return i;
        if (i == 0) return 0;
        i--;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* stable and compacted                                                                            */

void tn_raft_persisted(tn_raft *r, uint64_t index, uint64_t term)
{
    if (index <= r->stable || index > last_index(r)) return;
    if (!match_term(r, index, term)) return;
    r->stable = index;
    if (r->role == TN_LEADER) {
        progress *self = tn_raft_pr_get(r, r->id);
        if (self && index > self->match) self->match = index;
        if (tn_raft_maybe_commit(r)) r->pending_bcast = r->pending_bcast_empty = 1;
    }
}

int tn_raft_compact(tn_raft *r, uint64_t index, const void *data, size_t len)
{
    if (index > r->applied || index <= r->snap.index || index < r->conf_applied_index) return -1;
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) return -1;
        memcpy(copy, data, len);
    }
    uint64_t t;
    term_at(r, index, &t);
    size_t drop = (size_t)(index - r->snap.index);
    for (size_t i = 0; i < drop; i++) free(r->ents[r->ents_start + i].data);
    r->ents_start += drop;
    r->snap.index = index;
    r->snap.term = t;
    r->snap.conf = r->conf;
    free(r->snap_data);
    r->snap_data = copy;
    r->snap_len = len;
    return 0;
}
