/* raft_msg.c — Raft message allocation and the versioned, bounds-checked binary codec. */
#include "raft.h"

#include <stdlib.h>
#include <string.h>

tn_raft_msg *tn_raft_msg_alloc(size_t n_entries, size_t data_bytes, size_t snap_len)
{
    tn_raft_msg *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    size_t ents_bytes = n_entries * sizeof(tn_raft_entry);
    size_t total = ents_bytes + data_bytes + snap_len;
    /* Always a real block, even for an empty message, so callers may do pointer arithmetic on buf
     * (offset 0 from NULL is undefined behaviour). */
    m->buf = malloc(total ? total : 1);
    if (!m->buf) { free(m); return NULL; }
    m->entries = n_entries ? (tn_raft_entry *)m->buf : NULL;
    m->n_entries = n_entries;
    if (snap_len) m->snap_data = (uint8_t *)m->buf + ents_bytes + data_bytes;
    m->snap_len = snap_len;
    return m;
}

void tn_raft_msg_free(tn_raft_msg *m)
{
    if (!m) return;
    free(m->buf);
    free(m);
}

tn_raft_msg *tn_raft_msg_dup(const tn_raft_msg *m)
{
    size_t data = 0;
    for (size_t i = 0; i < m->n_entries; i++) data += m->entries[i].len;
    tn_raft_msg *d = tn_raft_msg_alloc(m->n_entries, data, m->snap_len);
    if (!d) return NULL;
    tn_raft_entry *ents = d->entries;
    const uint8_t *snap = d->snap_data;
    void *buf = d->buf;
    *d = *m;
    d->entries = ents;
    d->snap_data = snap;
    d->buf = buf;
    uint8_t *p = (uint8_t *)buf + m->n_entries * sizeof(tn_raft_entry);
    for (size_t i = 0; i < m->n_entries; i++) {
        ents[i] = m->entries[i];
        ents[i].data = p;
        if (m->entries[i].len) memcpy(p, m->entries[i].data, m->entries[i].len);
        p += m->entries[i].len;
    }
    if (m->snap_len) memcpy((uint8_t *)snap, m->snap_data, m->snap_len);
    return d;
}

static void wr_conf(tn_wr *w, const tn_raft_conf *c)
{
    tn_wr_varint(w, c->n_voters);
    for (uint32_t i = 0; i < c->n_voters; i++) tn_wr_varint(w, c->voters[i]);
    tn_wr_varint(w, c->n_learners);
    for (uint32_t i = 0; i < c->n_learners; i++) tn_wr_varint(w, c->learners[i]);
}

static void rd_conf(tn_rd *r, tn_raft_conf *c)
{
    memset(c, 0, sizeof *c);
    uint64_t nv = tn_rd_varint(r);
    if (nv > TN_RAFT_MAX_NODES) { r->err = 1; return; }
    c->n_voters = (uint32_t)nv;
    for (uint32_t i = 0; i < c->n_voters; i++) c->voters[i] = tn_rd_varint(r);
    uint64_t nl = tn_rd_varint(r);
    if (nl > TN_RAFT_MAX_NODES) { r->err = 1; return; }
    c->n_learners = (uint32_t)nl;
    for (uint32_t i = 0; i < c->n_learners; i++) c->learners[i] = tn_rd_varint(r);
}

int tn_raft_msg_encode(const tn_raft_msg *m, tn_wr *w)
{
    tn_wr_u8(w, TN_RAFT_MSG_VERSION);
    tn_wr_u8(w, m->type);
    tn_wr_u8(w, (uint8_t)((m->reject ? 1 : 0) | (m->force ? 2 : 0)));
    tn_wr_varint(w, m->from);
    tn_wr_varint(w, m->to);
    tn_wr_varint(w, m->term);
    tn_wr_varint(w, m->log_term);
    tn_wr_varint(w, m->index);
    tn_wr_varint(w, m->commit);
    tn_wr_varint(w, m->reject_hint);
    tn_wr_varint(w, m->ctx);
    tn_wr_varint(w, m->n_entries);
    for (size_t i = 0; i < m->n_entries; i++) {
        const tn_raft_entry *e = &m->entries[i];
        tn_wr_varint(w, e->term);
        tn_wr_varint(w, e->index);
        tn_wr_u8(w, e->type);
        tn_wr_bytes(w, e->data, e->len);
    }
    tn_wr_varint(w, m->snap.index);
    if (m->snap.index) {
        tn_wr_varint(w, m->snap.term);
        wr_conf(w, &m->snap.conf);
        tn_wr_bytes(w, m->snap_data, m->snap_len);
    }
    return w->oom ? -1 : 0;
}

int tn_raft_msg_decode(const void *buf, size_t len, tn_raft_msg **out)
{
    tn_rd r;
    tn_raft_msg hdr;
    tn_raft_msg *m = NULL;
    *out = NULL;
    memset(&hdr, 0, sizeof hdr);
    tn_rd_init(&r, buf, len);
    if (tn_rd_u8(&r) != TN_RAFT_MSG_VERSION) goto fail;
    hdr.type = tn_rd_u8(&r);
    if (hdr.type < 1 || hdr.type > TN_RAFT_MSG_TYPE_MAX) goto fail;
    uint8_t flags = tn_rd_u8(&r);
    if (flags & ~3u) goto fail;
    hdr.reject = flags & 1;
    hdr.force = (flags >> 1) & 1;
    hdr.from = tn_rd_varint(&r);
    hdr.to = tn_rd_varint(&r);
    hdr.term = tn_rd_varint(&r);
    hdr.log_term = tn_rd_varint(&r);
    hdr.index = tn_rd_varint(&r);
    hdr.commit = tn_rd_varint(&r);
    hdr.reject_hint = tn_rd_varint(&r);
    hdr.ctx = tn_rd_varint(&r);
    uint64_t n = tn_rd_varint(&r);
    if (r.err || n > TN_RAFT_MSG_MAX_ENTRIES) goto fail;
    /* First pass: validate entries and measure their data, so the message is one allocation. */
    size_t ents_at = r.off, data_bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t l;
        tn_rd_varint(&r);
        tn_rd_varint(&r);
        if (tn_rd_u8(&r) > TN_ENTRY_NOOP) goto fail;
        tn_rd_bytes(&r, TN_RAFT_MSG_MAX_DATA, &l);
        if (r.err) goto fail;
        data_bytes += l;
        if (data_bytes > TN_RAFT_MSG_MAX_DATA) goto fail;
    }
    hdr.snap.index = tn_rd_varint(&r);
    const uint8_t *snap = NULL;
    size_t snap_len = 0;
    if (hdr.snap.index) {
        hdr.snap.term = tn_rd_varint(&r);
        rd_conf(&r, &hdr.snap.conf);
        snap = tn_rd_bytes(&r, TN_RAFT_MSG_MAX_DATA, &snap_len);
    }
    if (r.err || tn_rd_left(&r) != 0) goto fail;
    m = tn_raft_msg_alloc((size_t)n, data_bytes, snap_len);
    if (!m) goto fail;
    {
        tn_raft_entry *ents = m->entries;
        const uint8_t *sd = m->snap_data;
        void *b = m->buf;
        *m = hdr;
        m->entries = ents;
        m->n_entries = (size_t)n;
        m->buf = b;
        m->snap_data = sd;
        m->snap_len = snap_len;
        if (snap_len) memcpy((uint8_t *)sd, snap, snap_len);
        uint8_t *p = (uint8_t *)b + (size_t)n * sizeof(tn_raft_entry);
        tn_rd_init(&r, buf, len);
        r.off = ents_at;
        for (size_t i = 0; i < (size_t)n; i++) {
            size_t l;
            ents[i].term = tn_rd_varint(&r);
            ents[i].index = tn_rd_varint(&r);
            ents[i].type = tn_rd_u8(&r);
            const uint8_t *d = tn_rd_bytes(&r, TN_RAFT_MSG_MAX_DATA, &l);
            ents[i].len = (uint32_t)l;
            ents[i].data = p;
            if (l) memcpy(p, d, l);
            p += l;
        }
        if (r.err) goto fail;
    }
    /* Entries of one message must be contiguous and follow m->index (only APP and PROP carry any). */
    for (size_t i = 0; i < m->n_entries; i++) {
        if (m->type == TN_MSG_APP && m->entries[i].index != m->index + 1 + i) goto fail;
        if (m->type != TN_MSG_APP && m->type != TN_MSG_PROP) goto fail;
    }
    *out = m;
    return 0;
fail:
    tn_raft_msg_free(m);
    return -1;
}

size_t tn_raft_conf_encode(const tn_raft_conf_change *cc, uint8_t buf[11])
{
    buf[0] = cc->op;
    return 1 + tn_put_varint(buf + 1, cc->node);
}

int tn_raft_conf_decode(const void *buf, size_t len, tn_raft_conf_change *cc)
{
    tn_rd r;
    tn_rd_init(&r, buf, len);
    cc->op = tn_rd_u8(&r);
    cc->node = tn_rd_varint(&r);
    if (r.err || tn_rd_left(&r) || cc->op < TN_CONF_ADD_VOTER || cc->op > TN_CONF_PROMOTE || cc->node == 0)
        return -1;
    return 0;
}

const char *tn_raft_msg_type_name(int type)
{
    static const char *const names[] = {"?", "PROP", "PREVOTE", "PREVOTE_RESP", "VOTE", "VOTE_RESP",
                                        "APP", "APP_RESP", "HB", "HB_RESP", "SNAP", "READ", "READ_RESP",
                                        "TIMEOUT_NOW"};
    return (type >= 1 && type <= TN_RAFT_MSG_TYPE_MAX) ? names[type] : "?";
}

const char *tn_raft_role_name(tn_raft_role role)
{
    switch (role) {
    case TN_FOLLOWER: return "follower";
    case TN_PRE_CANDIDATE: return "pre-candidate";
    case TN_CANDIDATE: return "candidate";
    case TN_LEADER: return "leader";
    }
    return "?";
}
