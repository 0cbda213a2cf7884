/* status.c — status and admin payloads (see status.h). */
#include "status.h"

#include "tn_code.h"

void tn_status_encode(const tn_status *s, tn_wr *w)
{
    tn_wr_raw(w, "TS", 2);
    tn_wr_u8(w, 1);
    tn_wr_varint(w, s->id);
    tn_wr_bytes(w, s->url, s->url_len);
    tn_wr_u8(w, s->role);
    tn_wr_varint(w, s->term);
    tn_wr_varint(w, s->leader);
    tn_wr_bytes(w, s->leader_url, s->leader_url_len);
    tn_wr_varint(w, s->commit);
    tn_wr_varint(w, s->applied);
    tn_wr_varint(w, s->last_index);
    tn_wr_varint(w, s->snapshot_index);
    size_t n = s->n_members < TN_STATUS_MAX_MEMBERS ? s->n_members : TN_STATUS_MAX_MEMBERS;
    tn_wr_varint(w, n);
    for (size_t i = 0; i < n; i++) {
        tn_wr_varint(w, s->members[i].id);
        tn_wr_bytes(w, s->members[i].url, s->members[i].url_len);
        tn_wr_u8(w, s->members[i].voter ? 1 : 0);
        tn_wr_varint(w, s->members[i].match);
    }
}

static int read_magic(tn_rd *r, char second)
{
    const uint8_t *m = tn_rd_raw(r, 3);
    return m && m[0] == 'T' && m[1] == (uint8_t)second && m[2] == 1 ? 0 : -1;
}

int tn_status_decode(const void *buf, size_t len, tn_status *s)
{
    tn_rd r;
    size_t n;
    tn_rd_init(&r, buf, len);
    memset(s, 0, sizeof *s);
    if (read_magic(&r, 'S') != 0) return TN_BAD_REQUEST;
    s->id = tn_rd_varint(&r);
    s->url = (const char *)tn_rd_bytes(&r, TN_STATUS_MAX_URL, &s->url_len);
    s->role = tn_rd_u8(&r);
    s->term = tn_rd_varint(&r);
    s->leader = tn_rd_varint(&r);
    s->leader_url = (const char *)tn_rd_bytes(&r, TN_STATUS_MAX_URL, &s->leader_url_len);
    s->commit = tn_rd_varint(&r);
    s->applied = tn_rd_varint(&r);
    s->last_index = tn_rd_varint(&r);
    s->snapshot_index = tn_rd_varint(&r);
    n = (size_t)tn_rd_varint(&r);
    if (r.err || s->role > 3 || n > TN_STATUS_MAX_MEMBERS) return TN_BAD_REQUEST;
    for (size_t i = 0; i < n; i++) {
        tn_status_member *m = &s->members[i];
        m->id = tn_rd_varint(&r);
        m->url = (const char *)tn_rd_bytes(&r, TN_STATUS_MAX_URL, &m->url_len);
        uint8_t voter = tn_rd_u8(&r);
        m->match = tn_rd_varint(&r);
        if (r.err || voter > 1) return TN_BAD_REQUEST;
        m->voter = voter;
    }
    s->n_members = n;
    return r.err || tn_rd_left(&r) != 0 ? TN_BAD_REQUEST : TN_SUCCESS;
}

void tn_admin_encode(const tn_admin *a, tn_wr *w)
{
    tn_wr_raw(w, "TA", 2);
    tn_wr_u8(w, 1);
    tn_wr_u8(w, a->kind);
    tn_wr_varint(w, a->node);
    tn_wr_bytes(w, a->url, a->url_len);
}

int tn_admin_decode(const void *buf, size_t len, tn_admin *a)
{
    tn_rd r;
    tn_rd_init(&r, buf, len);
    memset(a, 0, sizeof *a);
    if (read_magic(&r, 'A') != 0) return TN_BAD_REQUEST;
    a->kind = tn_rd_u8(&r);
    a->node = tn_rd_varint(&r);
    a->url = (const char *)tn_rd_bytes(&r, TN_STATUS_MAX_URL, &a->url_len);
    if (r.err || tn_rd_left(&r) != 0 || a->kind < TN_ADMIN_ADD_VOTER || a->kind > TN_ADMIN_SNAPSHOT)
        return TN_BAD_REQUEST;
    return TN_SUCCESS;
}
