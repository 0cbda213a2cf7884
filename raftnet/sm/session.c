/* session.c — exactly-once session table (see session.h). A sorted array keyed by client id: lookups are
 * a binary search and the image comes out in client order for free. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "tn_code.h"

typedef struct session {
    uint64_t client;
    uint64_t seq;
    int64_t time_ms;
    uint8_t *resp; /* NULL when the response was too large to keep */
    size_t resp_len;
} session;

struct tn_sessions {
    session *v;
    size_t n, cap;
    int64_t idle_ms;
    int64_t next_sweep; /* command time of the next sweep; 0 = at the first command */
};

tn_sessions *tn_sessions_new(int64_t idle_ms)
{
    tn_sessions *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->idle_ms = idle_ms > 0 ? idle_ms : TN_SESSION_IDLE_MS;
    return s;
}

static void clear_all(session *v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i].resp);
}

void tn_sessions_free(tn_sessions *s)
{
    if (!s) return;
    clear_all(s->v, s->n);
    free(s->v);
    free(s);
}

/* Index of client, or the insertion point with *found = 0. */
static size_t find(const tn_sessions *s, uint64_t client, int *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid].client < client) lo = mid + 1;
        else hi = mid;
    }
    *found = lo < s->n && s->v[lo].client == client;
    return lo;
}

int tn_sessions_check(const tn_sessions *s, uint64_t client, uint64_t seq, const uint8_t **resp, size_t *len)
{
    int found;
    size_t i = find(s, client, &found);
    *resp = NULL;
    *len = 0;
    if (!found || seq > s->v[i].seq) return TN_SESSION_NEW;
    if (seq < s->v[i].seq || !s->v[i].resp) return TN_SESSION_STALE;
    *resp = s->v[i].resp;
    *len = s->v[i].resp_len;
    return TN_SESSION_RETRY;
}

int tn_sessions_record(tn_sessions *s, uint64_t client, uint64_t seq, int64_t time_ms, const void *resp,
                       size_t len)
{
    uint8_t *copy = NULL;
    if (len <= TN_SESSION_MAX_RESP) {
        copy = malloc(len ? len : 1);
        if (!copy) return TN_NOMEM;
        if (len) memcpy(copy, resp, len);
    }
    int found;
    size_t i = find(s, client, &found);
    if (!found) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            session *v = realloc(s->v, cap * sizeof *v);
            if (!v) {
                free(copy);
                return TN_NOMEM;
            }
            s->v = v;
            s->cap = cap;
        }
        memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
        s->n++;
        memset(&s->v[i], 0, sizeof s->v[i]);
        s->v[i].client = client;
    }
    free(s->v[i].resp);
    s->v[i].seq = seq;
    s->v[i].time_ms = time_ms;
    s->v[i].resp = copy;
    s->v[i].resp_len = copy ? len : 0;
    return TN_SUCCESS;
}

size_t tn_sessions_touch(tn_sessions *s, int64_t time_ms)
{
    if (time_ms < s->next_sweep) return 0;
    /* saturating arithmetic: command times are whatever the log says, extremes included */
    s->next_sweep = time_ms > INT64_MAX - TN_SESSION_SWEEP_MS ? INT64_MAX : time_ms + TN_SESSION_SWEEP_MS;
    if (time_ms < INT64_MIN + s->idle_ms) return 0; /* nothing can be idle for longer than that */
    int64_t idle_before = time_ms - s->idle_ms;
    size_t w = 0, dropped = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].time_ms < idle_before) {
            free(s->v[i].resp);
            dropped++;
        } else {
            s->v[w++] = s->v[i];
        }
    }
    s->n = w;
    return dropped;
}

size_t tn_sessions_count(const tn_sessions *s) { return s->n; }

#define IMG_VERSION 1

int tn_sessions_serialize(const tn_sessions *s, tn_wr *w)
{
    tn_wr_raw(w, "SE", 2);
    tn_wr_u8(w, IMG_VERSION);
    tn_wr_varint(w, (uint64_t)s->idle_ms);
    tn_wr_svarint(w, s->next_sweep);
    tn_wr_varint(w, s->n);
    for (size_t i = 0; i < s->n; i++) {
        const session *e = &s->v[i];
        tn_wr_varint(w, e->client);
        tn_wr_varint(w, e->seq);
        tn_wr_svarint(w, e->time_ms);
        tn_wr_u8(w, e->resp ? 1 : 0);
        tn_wr_bytes(w, e->resp, e->resp_len);
    }
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

int tn_sessions_deserialize(tn_sessions *s, const void *img, size_t len)
{
    tn_rd r;
    session *v = NULL;
    size_t n = 0;
    int rc = TN_CLIENT_REQ_ERROR;
    tn_rd_init(&r, img, len);
    const uint8_t *magic = tn_rd_raw(&r, 2);
    uint8_t version = tn_rd_u8(&r);
    uint64_t idle = tn_rd_varint(&r);
    int64_t next_sweep = tn_rd_svarint(&r);
    uint64_t count = tn_rd_varint(&r);
    if (r.err || memcmp(magic, "SE", 2) != 0 || version != IMG_VERSION || idle == 0 || idle > INT64_MAX ||
        count > tn_rd_left(&r) / 5)
        goto fail;
    v = calloc(count ? count : 1, sizeof *v);
    if (!v) { rc = TN_NOMEM; goto fail; }
    for (n = 0; n < count; n++) {
        session *e = &v[n];
        e->client = tn_rd_varint(&r);
        e->seq = tn_rd_varint(&r);
        e->time_ms = tn_rd_svarint(&r);
        uint8_t has = tn_rd_u8(&r);
        size_t rl;
        const uint8_t *rp = tn_rd_bytes(&r, TN_SESSION_MAX_RESP, &rl);
        if (r.err || has > 1 || (!has && rl) || (n && e->client <= v[n - 1].client)) goto fail;
        if (has) {
            e->resp = malloc(rl ? rl : 1);
            if (!e->resp) { rc = TN_NOMEM; goto fail; }
            if (rl) memcpy(e->resp, rp, rl);
            e->resp_len = rl;
        }
    }
    if (tn_rd_left(&r) != 0) goto fail;
    clear_all(s->v, s->n);
    free(s->v);
    s->v = v;
    s->n = s->cap = count;
    if (s->cap == 0) {
        free(v);
        s->v = NULL;
    }
    s->idle_ms = (int64_t)idle;
    s->next_sweep = next_sweep;
    return TN_SUCCESS;
fail:
    if (v) clear_all(v, n);
    free(v);
    return rc;
}
