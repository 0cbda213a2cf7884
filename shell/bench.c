/* bench.c — `tarn bench`: N concurrent clients issue one kind of operation (or a mix) against a cluster
 * or the embedded engine for a fixed time, then throughput and latency percentiles are printed.
 *
 * Each client has its own target: its own tn_cluster (own sockets, own session) or its own session on the
 * process's embedded engine "bench". Against a cluster, put/get/cas clients are event-driven (each answer
 * sends that client's next request from nng's callback, one request in flight per client, like wrk);
 * txn and mix clients, and every embedded client, are threads. Keys are "bench.<zero-padded number>" of exactly
 * --key-size bytes, drawn uniformly from --keys; values are --value-size bytes. get, cas, txn and mix first
 * load every key (batched puts), so reads find data. Operations:
 *   put   KV_PUT of a random key (unconditional)
 *   get   KV_GET of a random key (linearizable, or stale with --stale)
 *   cas   KV_CAS expecting the loaded value and writing it back (always succeeds unless a put changed it)
 *   txn   read two keys, then one request writing both, each on the revision read (optimistic; a
 *         REVISION_MISMATCH counts as a conflict, not an error). The write is flagged ATOMIC when the store
 *         accepts atomic KV requests (probed once before the run; the report says which: "txn_atomic"),
 *         else it is sent unflagged and each write is checked on its own.
 *   mix   50% get, 30% put, 10% cas, 10% txn
 * Latency is measured per operation from before the request is encoded to after the answer is decoded.
 * Bounded: the run stops at --seconds; a call in flight then ends by its own deadline (--timeout-ms).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "cluster.h"
#include "clock.h"
#include "engine.h"
#include "tarn_cli.h"
#include "tn_code.h"
#include "wire.h"

#define LOAD_BATCH 256
#define KEY_PREFIX "bench."

enum bench_op { OP_PUT, OP_GET, OP_CAS, OP_TXN, OP_MIX };
static const char *const op_names[] = {"put", "get", "cas", "txn", "mix"};

typedef struct bench_cfg {
    const char *urls; /* NULL: embedded */
    const char *data_dir; /* embedded: persistent engine in this directory (NULL: in memory) */
    const char *token;
    int clients;
    double seconds;
    int op;
    int key_size, value_size;
    long keys;
    int stale, json;
    int timeout_ms;
    int txn_atomic; /* the store takes TN_REQF_ATOMIC requests of KV writes (probed by load) */
} bench_cfg;

typedef struct target {
    tn_cluster *cl;
    tn_engine *engine;
    uint64_t session;
    uint64_t next_req;
} target;

typedef struct worker {
    const bench_cfg *cfg;
    const uint8_t *value;
    pthread_t thread;
    target t;
    uint64_t rng;
    long long end_ns;
    uint64_t *lat_ns;
    size_t n_lat, cap_lat;
    uint64_t errors, conflicts, misses;
    char *first_error; /* malloc'd */
    int open_failed;
    /* event-driven mode (see run_async) */
    struct async_run *run;
    tn_wr req_buf;
    long long t0;
    atomic_int issuing; /* ISSUE_* */
    int finished;       /* set by the last answer's callback */
    int has_thread;
} worker;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void make_key(const bench_cfg *cfg, long i, char *out)
{
    int digits = cfg->key_size - (int)strlen(KEY_PREFIX);
    snprintf(out, (size_t)cfg->key_size + 1, KEY_PREFIX "%0*ld", digits, i);
}

/* ---- targets ---- */

static int target_open(const bench_cfg *cfg, target *t, char **err)
{
    memset(t, 0, sizeof *t);
    if (!cfg->urls) {
        char msg[512] = "";
        int rc = tn_engine_open_dir("bench", cfg->data_dir, &t->engine, msg, sizeof msg);
        if (rc != TN_SUCCESS) {
            *err = sqlite3_mprintf("cannot open the embedded engine: %s", msg[0] ? msg : tn_code_name(rc));
            return -1;
        }
        t->session = tn_engine_new_session(t->engine);
        return 0;
    }
    tn_cluster_opts co;
    memset(&co, 0, sizeof co);
    if (cfg->token && cfg->token[0]) {
        co.token = (const uint8_t *)cfg->token;
        co.token_len = strlen(cfg->token);
    }
    co.deadline_ms = cfg->timeout_ms;
    co.stale_reads = cfg->stale;
    return tn_cluster_open(cfg->urls, &co, &t->cl, err) == TN_SUCCESS ? 0 : -1;
}

static void target_close(target *t)
{
    tn_cluster_close(t->cl);
    tn_engine_close(t->engine);
}

/* One request; the response bytes go to resp. A tn_code (SUCCESS: an answer arrived). */
static int target_call(target *t, tn_req *req, tn_wr *resp, char **err)
{
    req->req_id = ++t->next_req;
    if (t->cl) return tn_cluster_call_req(t->cl, req, resp, err);
    tn_wr w;
    tn_wr_init(&w);
    req->client_id = t->session;
    int rc = tn_req_encode(req, &w);
    if (rc == TN_SUCCESS) rc = tn_engine_call(t->engine, t->session, w.p, w.len, resp);
    tn_wr_free(&w);
    return rc;
}

/* ---- operations ---- */

enum outcome { OK, CONFLICT, FAILED };

/* Sends req and classifies the answer. With entries_out, the decoded response stays in *r for the caller
 * (who clears it) when the outcome is OK. */
static int classify(worker *w, int rc, const uint8_t *resp, size_t len, const char *errmsg, tn_resp *r, int keep);

static int run(worker *w, tn_req *req, tn_wr *resp, tn_resp *r, int keep)
{
    char *err = NULL;
    resp->len = 0;
    int rc = target_call(&w->t, req, resp, &err);
    int o = classify(w, rc, resp->p, resp->len, err, r, keep);
    sqlite3_free(err);
    return o;
}

/* The outcome of one answer (rc and response bytes, or errmsg). With keep, the decoded response stays in
 * *r for the caller (who clears it) when the outcome is OK. */
static int classify(worker *w, int rc, const uint8_t *resp, size_t len, const char *errmsg, tn_resp *r, int keep)
{
    char *err = errmsg ? sqlite3_mprintf("%s", errmsg) : NULL;
    if (rc == TN_SUCCESS && tn_resp_decode(resp, len, r) != TN_SUCCESS) rc = TN_BAD_REQUEST;
    else if (rc == TN_SUCCESS) {
        int worst = r->code;
        for (size_t i = 0; i < r->n_results && worst == TN_SUCCESS; i++)
            if (!tn_code_ok(r->results[i].code) && r->results[i].code != TN_NOT_FOUND) worst = r->results[i].code;
        for (size_t i = 0; i < r->n_results; i++)
            if (r->results[i].code == TN_NOT_FOUND) w->misses++;
        if (worst == TN_SUCCESS) {
            if (!keep) tn_resp_clear(r);
            return OK;
        }
        if (worst == TN_REVISION_MISMATCH || worst == TN_TXN_CONFLICT || worst == TN_CAS_MISMATCH) {
            tn_resp_clear(r);
            return CONFLICT;
        }
        if (!w->first_error && !err && r->message_len)
            err = sqlite3_mprintf("%s: %.*s", tn_code_name(worst), (int)r->message_len, (const char *)r->message);
        tn_resp_clear(r);
        rc = worst;
    }
    if (!w->first_error)
        w->first_error = strdup(err ? err : tn_code_name(rc));
    sqlite3_free(err);
    return FAILED;
}

/* Fills req (ops[0], key in k1) with one put, get or cas of a random key. */
static void simple_op(worker *w, int op, tn_op *ops, char *k1, tn_req *req)
{
    const bench_cfg *cfg = w->cfg;
    memset(ops, 0, 2 * sizeof *ops);
    memset(req, 0, sizeof *req);
    make_key(cfg, (long)(rng_next(&w->rng) % (uint64_t)cfg->keys), k1);
    ops[0].key = (const uint8_t *)k1;
    ops[0].key_len = (size_t)cfg->key_size;
    req->ops = ops;
    req->n_ops = 1;
    switch (op) {
    case OP_PUT:
        ops[0].opcode = TN_OP_KV_PUT;
        ops[0].value = w->value;
        ops[0].value_len = (size_t)cfg->value_size;
        break;
    case OP_GET:
        ops[0].opcode = TN_OP_KV_GET;
        req->read_mode = cfg->stale ? TN_READ_STALE : TN_READ_LINEARIZABLE;
        break;
    default: /* OP_CAS */
        ops[0].opcode = TN_OP_KV_CAS;
        ops[0].expect = w->value;
        ops[0].expect_len = (size_t)cfg->value_size;
        ops[0].value = w->value;
        ops[0].value_len = (size_t)cfg->value_size;
        break;
    }
}

static int do_op(worker *w, int op, tn_wr *resp)
{
    const bench_cfg *cfg = w->cfg;
    char k1[64], k2[64];
    tn_op ops[2];
    tn_req req;
    tn_resp r;
    simple_op(w, op == OP_TXN ? OP_GET : op, ops, k1, &req);
    if (op != OP_TXN) return run(w, &req, resp, &r, 0);
    /* txn: read two keys (linearizably), then write both on the revisions read */
    req.read_mode = TN_READ_LINEARIZABLE;
    {
        long a = (long)(rng_next(&w->rng) % (uint64_t)cfg->keys);
        make_key(cfg, a, k2);
        if (strcmp(k1, k2) == 0) make_key(cfg, (a + 1) % cfg->keys, k2);
        ops[0].opcode = ops[1].opcode = TN_OP_KV_GET;
        ops[1].key = (const uint8_t *)k2;
        ops[1].key_len = (size_t)cfg->key_size;
        req.n_ops = 2;
        int o = run(w, &req, resp, &r, 1);
        if (o != OK) return o;
        uint64_t rev[2] = {0, 0};
        for (size_t i = 0; i < 2 && i < r.n_results; i++)
            if (r.results[i].code == TN_SUCCESS && r.results[i].n_entries == 1) rev[i] = r.results[i].entries[0].update_rev;
        tn_resp_clear(&r);
        memset(&req, 0, sizeof req);
        req.ops = ops;
        req.n_ops = 2;
        req.flags = cfg->txn_atomic ? TN_REQF_ATOMIC : 0;
        for (int i = 0; i < 2; i++) {
            ops[i].opcode = TN_OP_KV_PUT;
            ops[i].value = w->value;
            ops[i].value_len = (size_t)cfg->value_size;
            ops[i].cond = rev[i] ? TN_COND_REV : TN_COND_ABSENT;
            ops[i].cond_rev = rev[i];
        }
        return run(w, &req, resp, &r, 0);
    }
}

static int pick_op(worker *w)
{
    if (w->cfg->op != OP_MIX) return w->cfg->op;
    uint64_t p = rng_next(&w->rng) % 100;
    return p < 50 ? OP_GET : p < 80 ? OP_PUT : p < 90 ? OP_CAS : OP_TXN;
}

/* Counts one finished operation. -1 when the latency array cannot grow (the client stops). */
static int record(worker *w, int outcome, long long ns)
{
    if (outcome == FAILED) {
        w->errors++;
        return 0;
    }
    if (outcome == CONFLICT) w->conflicts++;
    if (w->n_lat == w->cap_lat) {
        size_t cap = w->cap_lat ? w->cap_lat * 2 : 4096;
        uint64_t *grown = realloc(w->lat_ns, cap * sizeof *grown);
        if (!grown) return -1;
        w->lat_ns = grown;
        w->cap_lat = cap;
    }
    w->lat_ns[w->n_lat++] = (uint64_t)ns;
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    tn_wr resp;
    tn_wr_init(&resp);
    while (tn_mono_ns() < w->end_ns) {
        int op = pick_op(w);
        long long t0 = tn_mono_ns();
        int o = do_op(w, op, &resp);
        if (record(w, o, tn_mono_ns() - t0) != 0) break;
    }
    tn_wr_free(&resp);
    return NULL;
}

/* ---- event-driven clients ----
 * put, get and cas against a cluster are single requests, so a client needs no thread of its own: each
 * answer (on an nng thread) records the operation and sends the client's next one, as a load generator
 * like wrk does. Every client still has its own connections and session, and one operation in flight. */

enum { ISSUE_IDLE, ISSUE_BUSY, ISSUE_AGAIN };

typedef struct async_run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running; /* clients whose last operation has not finished */
} async_run;

static void async_issue(worker *w);

static void async_stop(worker *w)
{
    async_run *ar = w->run;
    pthread_mutex_lock(&ar->mu);
    if (--ar->running == 0) pthread_cond_signal(&ar->cv);
    pthread_mutex_unlock(&ar->mu);
}

static void async_done(void *arg, int rc, const uint8_t *resp, size_t len, const char *errmsg)
{
    worker *w = arg;
    long long t1 = tn_mono_ns();
    tn_resp r;
    int o = classify(w, rc, resp, len, rc == TN_SUCCESS ? NULL : errmsg, &r, 0);
    w->finished = record(w, o, t1 - w->t0) != 0 || t1 >= w->end_ns;
    /* Answered while async_issue is still inside tn_cluster_call_async (on this or another thread): it
     * goes on (next operation or stop) when it sees ISSUE_AGAIN; otherwise this callback does. Only one
     * of the two touches w afterwards, so the last async_stop is the last touch of w. */
    int expected = ISSUE_BUSY;
    if (atomic_compare_exchange_strong(&w->issuing, &expected, ISSUE_AGAIN)) return;
    if (w->finished) async_stop(w);
    else async_issue(w);
}

/* Sends the client's next operation; loops instead of recursing when calls end at once. */
static void async_issue(worker *w)
{
    for (;;) {
        char k1[64];
        tn_op ops[2];
        tn_req req;
        simple_op(w, w->cfg->op, ops, k1, &req);
        req.req_id = ++w->t.next_req;
        w->req_buf.len = 0;
        int rc = tn_cluster_req_encode(w->t.cl, &req, &w->req_buf);
        w->t0 = tn_mono_ns();
        atomic_store(&w->issuing, ISSUE_BUSY);
        if (rc == TN_SUCCESS) rc = tn_cluster_call_async(w->t.cl, &w->req_buf, async_done, w);
        if (rc != TN_SUCCESS) {
            atomic_store(&w->issuing, ISSUE_IDLE);
            if (!w->first_error) w->first_error = strdup(tn_code_name(rc));
            if (record(w, FAILED, 0) != 0 || tn_mono_ns() >= w->end_ns) {
                async_stop(w);
                return;
            }
            continue;
        }
        int expected = ISSUE_BUSY;
        if (atomic_compare_exchange_strong(&w->issuing, &expected, ISSUE_IDLE)) return; /* callback goes on */
        atomic_store(&w->issuing, ISSUE_IDLE);                                          /* ISSUE_AGAIN: we do */
        if (w->finished) {
            async_stop(w);
            return;
        }
    }
}

/* Runs the clients event-driven until end; returns when every one has finished. */
static void run_async(worker *w, int n, long long end)
{
    async_run ar;
    pthread_mutex_init(&ar.mu, NULL);
    pthread_cond_init(&ar.cv, NULL);
    ar.running = n;
    for (int i = 0; i < n; i++) {
        w[i].run = &ar;
        w[i].end_ns = end;
        tn_wr_init(&w[i].req_buf);
    }
    for (int i = 0; i < n; i++) async_issue(&w[i]);
    pthread_mutex_lock(&ar.mu);
    while (ar.running > 0) pthread_cond_wait(&ar.cv, &ar.mu);
    pthread_mutex_unlock(&ar.mu);
    for (int i = 0; i < n; i++) tn_wr_free(&w[i].req_buf);
    pthread_mutex_destroy(&ar.mu);
    pthread_cond_destroy(&ar.cv);
}

/* ops[0..n) = puts of keys first..first+n-1 with `value`; the keys are written to keys[k * 64]. */
static void fill_puts(const bench_cfg *cfg, const uint8_t *value, long first, size_t n, tn_op *ops, char *keys)
{
    memset(ops, 0, n * sizeof *ops);
    for (size_t k = 0; k < n; k++) {
        make_key(cfg, first + (long)k, keys + k * 64);
        ops[k].opcode = TN_OP_KV_PUT;
        ops[k].key = (const uint8_t *)keys + k * 64;
        ops[k].key_len = (size_t)cfg->key_size;
        ops[k].value = value;
        ops[k].value_len = (size_t)cfg->value_size;
    }
}

/* mkdir bench, then (unless only puts run) every key in batches, through t (which the caller keeps open
 * for the run: the last close of the embedded engine would drop its store). 0, or -1 with a message. */
static int load(bench_cfg *cfg, const uint8_t *value, target *t)
{
    worker w;
    tn_wr resp;
    tn_resp r;
    char *err = NULL;
    int rc = -1;
    memset(&w, 0, sizeof w);
    w.cfg = cfg;
    w.t = *t;
    tn_wr_init(&resp);
    tn_op op;
    tn_req req;
    memset(&op, 0, sizeof op);
    memset(&req, 0, sizeof req);
    op.opcode = TN_OP_KV_MKDIR;
    op.key = (const uint8_t *)"bench";
    op.key_len = 5;
    req.ops = &op;
    req.n_ops = 1;
    resp.len = 0;
    int code = target_call(&w.t, &req, &resp, &err);
    if (code == TN_SUCCESS && tn_resp_decode(resp.p, resp.len, &r) == TN_SUCCESS) {
        int c = r.code != TN_SUCCESS ? r.code : r.n_results ? r.results[0].code : TN_BAD_REQUEST;
        tn_resp_clear(&r);
        if (!tn_code_ok(c) && c != TN_DIR_EXISTS) {
            cli_fail("bench: mkdir 'bench': %s", tn_code_name(c));
            goto done;
        }
    } else {
        cli_fail("bench: %s", err ? err : tn_code_name(code));
        goto done;
    }
    if (cfg->op == OP_TXN || cfg->op == OP_MIX) {
        /* Does the store take atomic KV requests? An atomic put of keys 0 and 1 tells (they are loaded
         * anyway). Two ops: a one-op request may be applied as a plain one whatever its flag says. */
        char k[2 * 64];
        tn_op two[2];
        fill_puts(cfg, value, 0, 2, two, k);
        memset(&req, 0, sizeof req);
        req.flags = TN_REQF_ATOMIC;
        req.ops = two;
        req.n_ops = 2;
        resp.len = 0;
        code = target_call(&w.t, &req, &resp, &err);
        if (code != TN_SUCCESS || tn_resp_decode(resp.p, resp.len, &r) != TN_SUCCESS) {
            cli_fail("bench: %s", err ? err : tn_code_name(code));
            goto done;
        }
        cfg->txn_atomic = r.code == TN_SUCCESS && r.n_results == 2 && tn_code_ok(r.results[0].code) &&
                          tn_code_ok(r.results[1].code);
        tn_resp_clear(&r);
    }
    if (cfg->op != OP_PUT) {
        tn_op *ops = calloc(LOAD_BATCH, sizeof *ops);
        char *keys = calloc(LOAD_BATCH, 64);
        if (!ops || !keys) {
            free(ops);
            free(keys);
            cli_fail("out of memory");
            goto done;
        }
        for (long i = 0; i < cfg->keys;) {
            size_t n = cfg->keys - i < LOAD_BATCH ? (size_t)(cfg->keys - i) : LOAD_BATCH;
            fill_puts(cfg, value, i, n, ops, keys);
            i += (long)n;
            memset(&req, 0, sizeof req);
            req.ops = ops;
            req.n_ops = n;
            if (run(&w, &req, &resp, &r, 0) != OK) {
                cli_fail("bench: loading keys: %s", w.first_error ? w.first_error : "failed");
                free(ops);
                free(keys);
                goto done;
            }
        }
        free(ops);
        free(keys);
    }
    rc = 0;
done:
    sqlite3_free(err);
    free(w.first_error);
    tn_wr_free(&resp);
    t->next_req = w.t.next_req;
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0) return 0;
    size_t i = (size_t)(p / 100.0 * (double)n);
    if (i >= n) i = n - 1;
    return (double)v[i] / 1e6;
}

int cmd_bench(int argc, char **argv)
{
    bench_cfg cfg;
    const char *cluster = NULL, *dir = NULL;
    int embedded = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.clients = 1;
    cfg.seconds = 10;
    cfg.op = OP_PUT;
    cfg.key_size = 16;
    cfg.value_size = 256;
    cfg.keys = 100000;
    cfg.timeout_ms = 5000;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(a, "--stale") == 0) { cfg.stale = 1; continue; }
        if (strcmp(a, "--json") == 0) { cfg.json = 1; continue; }
        if (strcmp(a, "--embedded") == 0) { embedded = 1; continue; }
        if (!v) return cli_usage("bench: unexpected argument '%s'", a);
        i++;
        if (strcmp(a, "--cluster") == 0) cluster = v;
        else if (strcmp(a, "--dir") == 0) dir = v;
        else if (strcmp(a, "--data") == 0) cfg.data_dir = v;
        else if (strcmp(a, "--token") == 0) cfg.token = v;
        else if (strcmp(a, "--clients") == 0) {
            if ((n = cli_parse_long(v, 4096)) < 1) return cli_usage("--clients: '%s' is not a number in 1..4096", v);
            cfg.clients = (int)n;
        } else if (strcmp(a, "--seconds") == 0) {
            char *end;
            cfg.seconds = strtod(v, &end);
            if (*end || !(cfg.seconds > 0 && cfg.seconds <= 3600)) return cli_usage("--seconds: '%s' is not in (0, 3600]", v);
        } else if (strcmp(a, "--op") == 0) {
            cfg.op = -1;
            for (int k = 0; k < 5; k++)
                if (strcmp(v, op_names[k]) == 0) cfg.op = k;
            if (cfg.op < 0) return cli_usage("--op: '%s' is not put, get, cas, txn or mix", v);
        } else if (strcmp(a, "--key-size") == 0) {
            if ((n = cli_parse_long(v, 60)) < 8) return cli_usage("--key-size: '%s' is not in 8..60", v);
            cfg.key_size = (int)n;
        } else if (strcmp(a, "--value-size") == 0) {
            if ((n = cli_parse_long(v, 1 << 20)) < 1) return cli_usage("--value-size: '%s' is not in 1..1048576", v);
            cfg.value_size = (int)n;
        } else if (strcmp(a, "--keys") == 0) {
            if ((n = cli_parse_long(v, 100000000L)) < 2) return cli_usage("--keys: '%s' is not in 2..100000000", v);
            cfg.keys = n;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if ((n = cli_parse_long(v, 3600000)) < 1) return cli_usage("--timeout-ms: '%s' is not a number of ms", v);
            cfg.timeout_ms = (int)n;
        } else return cli_usage("bench: unknown option '%s'", a);
    }
    char digits[32];
    int need = snprintf(digits, sizeof digits, "%ld", cfg.keys - 1);
    if (cfg.key_size < (int)strlen(KEY_PREFIX) + need)
        return cli_usage("--key-size %d is too small for %ld keys (need %d)", cfg.key_size, cfg.keys,
                         (int)strlen(KEY_PREFIX) + need);
    if (cfg.data_dir && !embedded) return cli_usage("bench: --data DIR goes with --embedded");
    char *urls = NULL;
    if (!embedded) {
        urls = cli_cluster_urls(cluster, dir);
        if (!urls) return 1;
        cfg.urls = urls;
        if (!cfg.token) cfg.token = getenv("TARN_TOKEN");
    } else if (cluster || dir) {
        return cli_usage("bench: --embedded excludes --cluster/--dir");
    }

    int rc = 1;
    uint8_t *value = malloc((size_t)cfg.value_size);
    worker *w = calloc((size_t)cfg.clients, sizeof *w);
    uint64_t *all = NULL;
    int started = 0;
    long long start = 0, end = 0;
    target loader;
    memset(&loader, 0, sizeof loader);
    if (!value || !w) {
        cli_fail("out of memory");
        goto done;
    }
    uint64_t seed = (uint64_t)tn_mono_ns() | 1;
    for (int i = 0; i < cfg.value_size; i++) value[i] = (uint8_t)('a' + rng_next(&seed) % 26);
    {
        char *err = NULL;
        if (target_open(&cfg, &loader, &err) != 0) {
            cli_fail("%s", err ? err : "out of memory");
            sqlite3_free(err);
            goto done;
        }
    }
    if (load(&cfg, value, &loader) != 0) goto done;
    for (int i = 0; i < cfg.clients; i++) {
        char *err = NULL;
        w[i].cfg = &cfg;
        w[i].value = value;
        w[i].rng = seed ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL);
        if (target_open(&cfg, &w[i].t, &err) != 0) {
            cli_fail("%s", err ? err : "out of memory");
            sqlite3_free(err);
            w[i].open_failed = 1;
            goto join;
        }
    }
    start = tn_mono_ns();
    end = start + (long long)(cfg.seconds * 1e9);
    if (cfg.urls && cfg.op != OP_TXN && cfg.op != OP_MIX) {
        run_async(w, cfg.clients, end);
        started = cfg.clients;
        goto join;
    }
    for (int i = 0; i < cfg.clients; i++) {
        w[i].end_ns = end;
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            cli_fail("cannot start client thread %d", i);
            break;
        }
        w[i].has_thread = 1;
        started++;
    }
join:
    for (int i = 0; i < started; i++)
        if (w[i].has_thread) pthread_join(w[i].thread, NULL);
    if (started < cfg.clients) goto done;
    double elapsed = (double)(tn_mono_ns() - start) / 1e9;
    size_t total = 0;
    uint64_t errors = 0, conflicts = 0, misses = 0;
    const char *first_error = NULL;
    for (int i = 0; i < cfg.clients; i++) {
        total += w[i].n_lat;
        errors += w[i].errors;
        conflicts += w[i].conflicts;
        misses += w[i].misses;
        if (!first_error && w[i].first_error) first_error = w[i].first_error;
    }
    all = malloc((total ? total : 1) * sizeof *all);
    if (!all) {
        cli_fail("out of memory");
        goto done;
    }
    size_t at = 0;
    for (int i = 0; i < cfg.clients; i++) {
        memcpy(all + at, w[i].lat_ns, w[i].n_lat * sizeof *all);
        at += w[i].n_lat;
    }
    qsort(all, total, sizeof *all, cmp_u64);
    double sum_ns = 0;
    for (size_t i = 0; i < total; i++) sum_ns += (double)all[i];
    double mean_ms = total ? sum_ns / (double)total / 1e6 : 0.0;
    double tput = (double)total / elapsed;
    const char *tgt = embedded ? "embedded" : "cluster";
    if (cfg.json) {
        printf("{\"target\":\"%s\",\"op\":\"%s\",\"clients\":%d,\"seconds\":%.3f,\"key_size\":%d,\"value_size\":%d,"
               "\"keys\":%ld,\"stale\":%s,\"txn_atomic\":%s,\"ops\":%zu,\"errors\":%" PRIu64 ",\"conflicts\":%" PRIu64
               ",\"misses\":%" PRIu64 ",\"throughput\":%.1f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
               "\"max_ms\":%.3f}\n",
               tgt, op_names[cfg.op], cfg.clients, elapsed, cfg.key_size, cfg.value_size, cfg.keys,
               cfg.stale ? "true" : "false", cfg.txn_atomic ? "true" : "false", total, errors, conflicts, misses, tput, mean_ms, pct_ms(all, total, 50),
               pct_ms(all, total, 99), pct_ms(all, total, 99.9), total ? (double)all[total - 1] / 1e6 : 0.0);
    } else {
        printf("tarn bench: %s %s%s%s, %d client%s, %.1f s, %d-byte keys, %d-byte values, %ld keys\n", tgt,
               op_names[cfg.op], cfg.stale ? " (stale reads)" : "",
               cfg.op == OP_TXN || cfg.op == OP_MIX ? (cfg.txn_atomic ? " (atomic txn)" : " (txn not atomic)") : "", cfg.clients, cfg.clients == 1 ? "" : "s",
               elapsed, cfg.key_size, cfg.value_size, cfg.keys);
        printf("  ops %zu   errors %" PRIu64 "   conflicts %" PRIu64 "   throughput %.1f ops/s\n", total, errors,
               conflicts, tput);
        printf("  latency ms: mean %.3f   p50 %.3f   p99 %.3f   p99.9 %.3f   max %.3f\n", mean_ms, pct_ms(all, total, 50),
               pct_ms(all, total, 99), pct_ms(all, total, 99.9), total ? (double)all[total - 1] / 1e6 : 0.0);
    }
    if (errors && first_error) fprintf(stderr, "tarn: bench: %" PRIu64 " operations failed; first: %s\n", errors, first_error);
    rc = total > 0 ? 0 : cli_fail("bench: no operation succeeded%s%s", first_error ? ": " : "", first_error ? first_error : "");
done:
    for (int i = 0; w && i < cfg.clients; i++) {
        if (!w[i].open_failed) target_close(&w[i].t);
        free(w[i].lat_ns);
        free(w[i].first_error);
    }
    target_close(&loader);
    free(all);
    free(w);
    free(value);
    free(urls);
    return rc;
}
