/* members.c — every member's STATUS in one pass (see members.h). */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "members.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "tn_code.h"
#include "wire.h"

#define ROLE_LEADER 3 /* tn_raft_role numbering, see status.h */

/* ---- fetching ----------------------------------------------------------------------------------- */

typedef struct probe_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
} probe_wait;

typedef struct probe {
    tn_member_status *m;
    tn_cluster *cl;
    probe_wait *wait;
    int rc;
} probe;

static void probe_done(void *arg, int rc, const uint8_t *resp, size_t len, const char *errmsg)
{
    probe *p = arg;
    pthread_mutex_lock(&p->wait->mu);
    p->rc = rc;
    if (rc == TN_SUCCESS) tn_wr_raw(&p->m->buf, resp, len);
    else p->m->error = sqlite3_mprintf("%s", errmsg ? errmsg : tn_code_name(rc));
    p->wait->pending--;
    pthread_cond_broadcast(&p->wait->cv);
    pthread_mutex_unlock(&p->wait->mu);
}

/* Decodes m->buf (a wire response to one STATUS op) into m->status. */
static void probe_decode(tn_member_status *m)
{
    tn_resp resp;
    if (m->buf.oom) {
        m->error = sqlite3_mprintf("out of memory");
        return;
    }
    if (tn_resp_decode(m->buf.p, m->buf.len, &resp) != TN_SUCCESS) {
        m->error = sqlite3_mprintf("undecodable answer");
        return;
    }
    if (resp.code != TN_SUCCESS || resp.n_results < 1 || resp.results[0].code != TN_SUCCESS) {
        int code = resp.code != TN_SUCCESS ? resp.code : resp.n_results < 1 ? TN_BAD_REQUEST : resp.results[0].code;
        m->refused = 1;
        m->error = sqlite3_mprintf("%s: %.*s", tn_code_name(code), (int)resp.message_len, resp.message);
    } else if (tn_status_decode(resp.results[0].blob, resp.results[0].blob_len, &m->status) != TN_SUCCESS) {
        m->error = sqlite3_mprintf("undecodable status");
    } else {
        m->answered = 1;
        m->id = m->status.id;
    }
    tn_resp_clear(&resp);
}

/* Asks m[0..n) at once and waits for every answer (each call ends by its deadline). */
static int probe_all(tn_member_status *m, int n, const char *token, int timeout_ms)
{
    probe *probes = NULL;
    probe_wait wait;
    tn_wr req;
    tn_op op[1];
    tn_req r;
    int rc = SQLITE_NOMEM;
    tn_cluster_opts co;

    if (n == 0) return SQLITE_OK;
    memset(&co, 0, sizeof co);
    if (token && token[0]) {
        co.token = (const uint8_t *)token;
        co.token_len = strlen(token);
    }
    co.deadline_ms = timeout_ms;
    co.request_timeout_ms = timeout_ms;
    memset(op, 0, sizeof op);
    op[0].opcode = TN_OP_STATUS;
    memset(&r, 0, sizeof r);
    r.req_id = 1;
    r.n_ops = 1;
    r.ops = op;
    tn_wr_init(&req);
    pthread_mutex_init(&wait.mu, NULL);
    pthread_cond_init(&wait.cv, NULL);
    wait.pending = 0;
    if (tn_req_encode(&r, &req) != TN_SUCCESS) goto done;
    probes = sqlite3_malloc64(sizeof *probes * (size_t)n);
    if (!probes) goto done;
    memset(probes, 0, sizeof *probes * (size_t)n);
    for (int i = 0; i < n; i++) {
        char *why = NULL;
        probes[i].m = &m[i];
        probes[i].wait = &wait;
        int code = tn_cluster_open(m[i].url, &co, &probes[i].cl, &why);
        if (code != TN_SUCCESS) {
            m[i].error = why;
            continue;
        }
        pthread_mutex_lock(&wait.mu);
        wait.pending++;
        pthread_mutex_unlock(&wait.mu);
        code = tn_cluster_call_async(probes[i].cl, &req, probe_done, &probes[i]);
        if (code != TN_SUCCESS) {
            pthread_mutex_lock(&wait.mu);
            wait.pending--;
            pthread_mutex_unlock(&wait.mu);
            m[i].error = sqlite3_mprintf("%s", tn_code_name(code));
        }
    }
    pthread_mutex_lock(&wait.mu);
    while (wait.pending > 0) pthread_cond_wait(&wait.cv, &wait.mu);
    pthread_mutex_unlock(&wait.mu);
    for (int i = 0; i < n; i++) {
        if (probes[i].cl && probes[i].rc == TN_SUCCESS && !m[i].error) probe_decode(&m[i]);
        tn_cluster_close(probes[i].cl);
    }
    rc = SQLITE_OK;
done:
    sqlite3_free(probes);
    tn_wr_free(&req);
    pthread_cond_destroy(&wait.cv);
    pthread_mutex_destroy(&wait.mu);
    return rc;
}

static int has_url(const tn_member_status *m, int n, const char *url, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(m[i].url) == len && memcmp(m[i].url, url, len) == 0) return 1;
    return 0;
}

/* Appends a member to ask; SQLITE_OK or SQLITE_NOMEM. */
static int add_member(tn_member_status **m, int *n, int *cap, const char *url, size_t len)
{
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        tn_member_status *grown = sqlite3_realloc64(*m, sizeof **m * (size_t)ncap);
        if (!grown) return SQLITE_NOMEM;
        *m = grown;
        *cap = ncap;
    }
    tn_member_status *e = &(*m)[*n];
    memset(e, 0, sizeof *e);
    tn_wr_init(&e->buf);
    e->voter = -1;
    e->lag = -1;
    e->url = sqlite3_mprintf("%.*s", (int)len, url);
    if (!e->url) return SQLITE_NOMEM;
    (*n)++;
    return SQLITE_OK;
}

/* Fills is_leader, lag, voter and the ids of silent members from the leader's (or anyone's) view. */
static void derive(tn_member_status *m, int n)
{
    int leader = -1;
    for (int i = 0; i < n; i++)
        if (m[i].answered && m[i].status.role == ROLE_LEADER &&
            (leader < 0 || m[i].status.term > m[leader].status.term))
            leader = i;
    if (leader >= 0) m[leader].is_leader = 1;
    for (int i = 0; i < n; i++) {
        /* The leader's member list is authoritative; otherwise any answering member's. */
        for (int j = -1; j < n; j++) {
            int src = j < 0 ? leader : j;
            if (src < 0 || !m[src].answered) continue;
            const tn_status *s = &m[src].status;
            for (size_t k = 0; k < s->n_members; k++) {
                const tn_status_member *mm = &s->members[k];
                int same = m[i].answered ? mm->id == m[i].id
                                         : strlen(m[i].url) == mm->url_len &&
                                               memcmp(m[i].url, mm->url, mm->url_len) == 0;
                if (!same) continue;
                if (m[i].id == 0) m[i].id = mm->id;
                if (m[i].voter < 0) m[i].voter = mm->voter;
                if (src == leader && m[i].lag < 0) {
                    /* A member's own applied index also proves how far its log matches the leader's, and
                     * it is fresher than the leader's match when a heartbeat has not reported back yet. */
                    uint64_t have = mm->match;
                    if (m[i].answered && m[i].status.applied > have) have = m[i].status.applied;
                    m[i].lag = s->last_index > have ? (int64_t)(s->last_index - have) : 0;
                }
            }
        }
        if (i == leader) m[i].lag = 0;
    }
}

int tn_member_status_fetch(const char *urls, const char *token, int timeout_ms, tn_member_status **out,
                           int *n, char **errmsg)
{
    tn_member_status *m = NULL;
    int count = 0, cap = 0, rc = SQLITE_OK;
    *out = NULL;
    *n = 0;
    if (timeout_ms <= 0) timeout_ms = TN_STATUS_TIMEOUT_MS_DEFAULT;
    for (const char *p = urls ? urls : ""; *p;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a && !has_url(m, count, a, (size_t)(b - a))) {
            rc = add_member(&m, &count, &cap, a, (size_t)(b - a));
            if (rc != SQLITE_OK) goto fail;
        }
        p = *end ? end + 1 : end;
    }
    if (count == 0) {
        *errmsg = sqlite3_mprintf("tarn: no cluster URLs given");
        rc = SQLITE_ERROR;
        goto fail;
    }
    rc = probe_all(m, count, token, timeout_ms);
    if (rc != SQLITE_OK) goto fail;
    /* Second round: members that the answers name but nobody asked. */
    int first_round = count;
    for (int i = 0; i < first_round; i++) {
        if (!m[i].answered) continue;
        /* m moves when it grows: index it afresh (the URLs themselves live in m[i].buf, which stays). */
        for (size_t k = 0; k < m[i].status.n_members; k++) {
            const char *url = m[i].status.members[k].url;
            size_t len = m[i].status.members[k].url_len;
            if (len == 0 || has_url(m, count, url, len)) continue;
            rc = add_member(&m, &count, &cap, url, len);
            if (rc != SQLITE_OK) goto fail;
        }
    }
    rc = probe_all(m + first_round, count - first_round, token, timeout_ms);
    if (rc != SQLITE_OK) goto fail;
    derive(m, count);
    *out = m;
    *n = count;
    return SQLITE_OK;
fail:
    tn_member_status_free(m, count);
    return rc;
}

void tn_member_status_free(tn_member_status *m, int n)
{
    if (!m) return;
    for (int i = 0; i < n; i++) {
        sqlite3_free(m[i].url);
        sqlite3_free(m[i].error);
        tn_wr_free(&m[i].buf);
    }
    sqlite3_free(m);
}

const char *tn_member_role_name(const tn_member_status *m)
{
    if (!m->answered) return "unreachable";
    switch (m->status.role) {
    case 0: return m->voter == 0 ? "learner" : "follower";
    case 1: return "pre-candidate";
    case 2: return "candidate";
    case ROLE_LEADER: return "leader";
    default: return "unknown";
    }
}
