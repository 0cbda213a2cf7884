/* txn.c — the transaction write buffer (see txn.h).
 *
 * Layout. `log` holds the buffered ops in order, each as  coll:u32 len:u32 rowop-bytes  where rowop-bytes is
 * exactly one coll.h `rowop` (encoded with tn_coll_rows_encode and stripped of the 3-byte ROWS header), so
 * the commit only concatenates bytes. A savepoint mark is a length of `log`; rolling back truncates it and
 * rebuilds the row-state map from what is left (rare: statement failures and ROLLBACK TO).
 * The row-state map is open addressing keyed by (collection id, encoded pk); key bytes live in `keys`.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "txn.h"

#include <string.h>

#include "tn_code.h"
#include "wire.h"

#define ROWS_HEADER 3 /* kind:u8 flags:u8 n_ops:varint(=1) of a one-op rows payload */

typedef struct txn_coll {
    char *name;
    char *pk_name;
    size_t n_ops; /* buffered ops of this collection */
} txn_coll;

typedef struct row_slot {
    uint64_t hash;
    uint32_t key_off, key_len;
    uint32_t coll;
    uint8_t used, state, written;
} row_slot;

struct tn_txn {
    struct tn_txn *next;
    int refs;
    tn_conn *conn;
    tn_client *client;
    uint64_t next_req_id;
    uint64_t commits;

    txn_coll *colls;
    uint32_t n_colls, cap_colls;

    tn_wr log;
    size_t n_ops;
    tn_wr scratch;

    row_slot *slots;
    size_t cap_slots, used_slots;
    tn_wr keys;

    size_t *marks;
    int n_marks, cap_marks;

    /* A commit that failed with SQLITE_BUSY leaves SQLite's transaction open (COMMIT may be retried), but
     * the buffered ops are gone: every later commit of this transaction repeats the failure until it is
     * rolled back, so a retried COMMIT can never "succeed" with nothing. */
    int failed_rc;
    char *failed_msg;
};

/* ---- registry ----------------------------------------------------------------------------------- */

void tn_txn_registry_init(tn_txn_registry *reg) { reg->head = NULL; }

static void txn_free(tn_txn *t)
{
    tn_txn_clear(t);
    for (uint32_t i = 0; i < t->n_colls; i++) {
        sqlite3_free(t->colls[i].name);
        sqlite3_free(t->colls[i].pk_name);
    }
    sqlite3_free(t->colls);
    tn_wr_free(&t->log);
    tn_wr_free(&t->scratch);
    tn_wr_free(&t->keys);
    sqlite3_free(t->slots);
    sqlite3_free(t->marks);
    sqlite3_free(t);
}

void tn_txn_registry_clear(tn_txn_registry *reg)
{
    while (reg->head) {
        tn_txn *t = reg->head;
        reg->head = t->next;
        txn_free(t);
    }
}

int tn_txn_acquire(tn_txn_registry *reg, tn_conn *conn, tn_client *client, tn_txn **out)
{
    for (tn_txn *t = reg->head; t; t = t->next) {
        if (t->client == client) {
            t->refs++;
            *out = t;
            return TN_SUCCESS;
        }
    }
    tn_txn *t = sqlite3_malloc(sizeof *t);
    if (!t) return TN_NOMEM;
    memset(t, 0, sizeof *t);
    t->refs = 1;
    t->conn = conn;
    t->client = client;
    t->next = reg->head;
    reg->head = t;
    *out = t;
    return TN_SUCCESS;
}

void tn_txn_release(tn_txn_registry *reg, tn_txn *t)
{
    if (!t || --t->refs > 0) return;
    for (tn_txn **pp = &reg->head; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    txn_free(t);
}

int tn_txn_collection(tn_txn *t, const char *name, const char *pk_name, uint32_t *id)
{
    for (uint32_t i = 0; i < t->n_colls; i++) {
        if (strcmp(t->colls[i].name, name) == 0) {
            char *pk = sqlite3_mprintf("%s", pk_name);
            if (!pk) return TN_NOMEM;
            sqlite3_free(t->colls[i].pk_name);
            t->colls[i].pk_name = pk;
            *id = i;
            return TN_SUCCESS;
        }
    }
    if (t->n_colls == t->cap_colls) {
        uint32_t cap = t->cap_colls ? t->cap_colls * 2 : 4;
        txn_coll *grown = sqlite3_realloc64(t->colls, cap * sizeof *grown);
        if (!grown) return TN_NOMEM;
        t->colls = grown;
        t->cap_colls = cap;
    }
    txn_coll *c = &t->colls[t->n_colls];
    memset(c, 0, sizeof *c);
    c->name = sqlite3_mprintf("%s", name);
    c->pk_name = sqlite3_mprintf("%s", pk_name);
    if (!c->name || !c->pk_name) {
        sqlite3_free(c->name);
        sqlite3_free(c->pk_name);
        return TN_NOMEM;
    }
    *id = t->n_colls++;
    return TN_SUCCESS;
}

/* ---- row-state map ------------------------------------------------------------------------------ */

static uint64_t key_hash(uint32_t coll, const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ coll;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static row_slot *map_find(row_slot *slots, size_t cap, const tn_wr *keys, uint64_t h, uint32_t coll,
                          const uint8_t *k, size_t n)
{
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        row_slot *s = &slots[i];
        if (!s->used) return s;
        if (s->hash == h && s->coll == coll && s->key_len == n && memcmp(keys->p + s->key_off, k, n) == 0)
            return s;
    }
}

static int map_grow(tn_txn *t)
{
    size_t cap = t->cap_slots ? t->cap_slots * 2 : 64;
    row_slot *slots = sqlite3_malloc64(cap * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0, cap * sizeof *slots);
    for (size_t i = 0; i < t->cap_slots; i++) {
        row_slot *old = &t->slots[i];
        if (!old->used) continue;
        for (size_t j = old->hash & (cap - 1);; j = (j + 1) & (cap - 1)) {
            if (!slots[j].used) {
                slots[j] = *old;
                break;
            }
        }
    }
    sqlite3_free(t->slots);
    t->slots = slots;
    t->cap_slots = cap;
    return 0;
}

/* written: 1 for a change; a check (0) never overrides what a change recorded. */
static int map_note(tn_txn *t, uint32_t coll, const uint8_t *k, size_t n, uint8_t state, uint8_t written)
{
    if ((t->used_slots + 1) * 4 > t->cap_slots * 3 && map_grow(t)) return TN_NOMEM;
    uint64_t h = key_hash(coll, k, n);
    row_slot *s = map_find(t->slots, t->cap_slots, &t->keys, h, coll, k, n);
    if (s->used) {
        if (written || !s->written) s->state = state;
        s->written |= written;
        return TN_SUCCESS;
    }
    size_t off = t->keys.len;
    tn_wr_raw(&t->keys, k, n);
    if (t->keys.oom) return TN_NOMEM;
    s->used = 1;
    s->hash = h;
    s->coll = coll;
    s->key_off = (uint32_t)off;
    s->key_len = (uint32_t)n;
    s->state = state;
    s->written = written;
    t->used_slots++;
    return TN_SUCCESS;
}

/* Reads one value from r and returns its canonical encoding (a slice of the input: values are encoded
 * canonically by tn_val_encode, so the bytes read are the key). */
static const uint8_t *read_key(tn_rd *r, size_t *n)
{
    size_t start = r->off;
    tn_val v;
    if (tn_val_decode(r, TN_COLL_MAX_INDEX_VALUE, &v) != 0) return NULL;
    *n = r->off - start;
    return r->p + start;
}

/* Records what one encoded rowop does to the row map. */
static int map_apply(tn_txn *t, uint32_t coll, const uint8_t *op, size_t len)
{
    tn_rd r;
    size_t n1 = 0, n2 = 0;
    const uint8_t *k1, *k2;
    tn_rd_init(&r, op, len);
    uint8_t mode = tn_rd_u8(&r);
    switch (mode) {
    case TN_ROW_INSERT:
    case TN_ROW_INSERT_OR_IGNORE:
    case TN_ROW_UPSERT:
        k1 = read_key(&r, &n1);
        return k1 ? map_note(t, coll, k1, n1, TN_TXN_ROW_PRESENT, 1) : TN_INTERNAL;
    case TN_ROW_UPDATE: {
        k1 = read_key(&r, &n1);
        (void)tn_rd_varint(&r);
        k2 = read_key(&r, &n2);
        if (!k1 || !k2) return TN_INTERNAL;
        int rc = map_note(t, coll, k1, n1, TN_TXN_ROW_ABSENT, 1);
        return rc ? rc : map_note(t, coll, k2, n2, TN_TXN_ROW_PRESENT, 1);
    }
    case TN_ROW_DELETE:
        k1 = read_key(&r, &n1);
        return k1 ? map_note(t, coll, k1, n1, TN_TXN_ROW_ABSENT, 1) : TN_INTERNAL;
    case TN_ROW_CHECK: {
        k1 = read_key(&r, &n1);
        uint64_t rev = tn_rd_varint(&r);
        if (!k1 || r.err) return TN_INTERNAL;
        return map_note(t, coll, k1, n1, rev ? TN_TXN_ROW_PRESENT : TN_TXN_ROW_ABSENT, 0);
    }
    default:
        return TN_SUCCESS; /* RANGE_CHECK: no single row */
    }
}

int tn_txn_row_state(const tn_txn *t, uint32_t coll, const tn_val *pk, int *written)
{
    tn_wr w;
    int state = TN_TXN_ROW_UNKNOWN;
    if (written) *written = 0;
    if (!t->used_slots) return state;
    tn_wr_init(&w);
    tn_val_encode(pk, &w);
    if (!w.oom) {
        uint64_t h = key_hash(coll, w.p, w.len);
        const row_slot *s = map_find(t->slots, t->cap_slots, &t->keys, h, coll, w.p, w.len);
        if (s->used) {
            state = s->state;
            if (written) *written = s->written;
        }
    }
    tn_wr_free(&w);
    return state;
}

/* ---- buffer ------------------------------------------------------------------------------------- */

size_t tn_txn_pending(const tn_txn *t) { return t->n_ops; }
size_t tn_txn_bytes(const tn_txn *t) { return t->log.len; }
uint64_t tn_txn_commits(const tn_txn *t) { return t->commits; }

int tn_txn_add(tn_txn *t, uint32_t coll, const tn_coll_row_op *op)
{
    t->scratch.len = 0;
    t->scratch.oom = 0;
    int rc = tn_coll_rows_encode(op, 1, 0, &t->scratch);
    if (rc != TN_SUCCESS) return rc;
    if (t->scratch.oom) return TN_NOMEM;
    if (t->scratch.len < ROWS_HEADER || t->scratch.p[0] != TN_CWRITE_ROWS || t->scratch.p[2] != 1)
        return TN_INTERNAL;
    size_t len = t->scratch.len - ROWS_HEADER;
    /* Keep room for the request's own framing: fail here rather than at commit. */
    if (t->log.len + len + 8 > TN_WIRE_MAX_MESSAGE - 64 * 1024) return TN_TOO_LARGE;
    size_t at = t->log.len;
    tn_wr_u32(&t->log, coll);
    tn_wr_u32(&t->log, (uint32_t)len);
    tn_wr_raw(&t->log, t->scratch.p + ROWS_HEADER, len);
    if (t->log.oom) {
        t->log.oom = 0;
        t->log.len = at;
        return TN_NOMEM;
    }
    rc = map_apply(t, coll, t->scratch.p + ROWS_HEADER, len);
    if (rc != TN_SUCCESS) {
        t->log.len = at;
        return rc;
    }
    t->n_ops++;
    t->colls[coll].n_ops++;
    return TN_SUCCESS;
}

static void drop_ops(tn_txn *t);

void tn_txn_clear(tn_txn *t)
{
    t->failed_rc = SQLITE_OK;
    sqlite3_free(t->failed_msg);
    t->failed_msg = NULL;
    drop_ops(t);
}

static void drop_ops(tn_txn *t)
{
    t->log.len = 0;
    t->log.oom = 0;
    t->n_ops = 0;
    for (uint32_t i = 0; i < t->n_colls; i++) t->colls[i].n_ops = 0;
    if (t->slots) memset(t->slots, 0, t->cap_slots * sizeof *t->slots);
    t->used_slots = 0;
    t->keys.len = 0;
    t->keys.oom = 0;
    t->n_marks = 0;
    /* A large transaction's memory is given back; small buffers are kept for the next one. */
    if (t->log.cap > (1u << 20)) tn_wr_free(&t->log);
    if (t->keys.cap > (1u << 20)) tn_wr_free(&t->keys);
    if (t->cap_slots > 4096) {
        sqlite3_free(t->slots);
        t->slots = NULL;
        t->cap_slots = 0;
    }
}

/* Iterates log entries: returns 1 and the entry at *off (advancing it), 0 at the end. */
static int log_next(const tn_txn *t, size_t *off, uint32_t *coll, const uint8_t **op, size_t *len)
{
    if (*off >= t->log.len) return 0;
    tn_rd r;
    tn_rd_init(&r, t->log.p + *off, t->log.len - *off);
    *coll = tn_rd_u32(&r);
    *len = tn_rd_u32(&r);
    *op = tn_rd_raw(&r, *len);
    if (r.err) return 0;
    *off += r.off;
    return 1;
}

/* Rebuilds n_ops and the row map from the log (after a truncation). */
static int rebuild(tn_txn *t)
{
    size_t off = 0, len;
    uint32_t coll;
    const uint8_t *op;
    if (t->slots) memset(t->slots, 0, t->cap_slots * sizeof *t->slots);
    t->used_slots = 0;
    t->keys.len = 0;
    t->n_ops = 0;
    for (uint32_t i = 0; i < t->n_colls; i++) t->colls[i].n_ops = 0;
    while (log_next(t, &off, &coll, &op, &len)) {
        int rc = map_apply(t, coll, op, len);
        if (rc != TN_SUCCESS) return rc;
        t->n_ops++;
        t->colls[coll].n_ops++;
    }
    return TN_SUCCESS;
}

int tn_txn_savepoint(tn_txn *t, int level)
{
    if (level < 0) return TN_SUCCESS;
    if (level < t->n_marks) {
        t->n_marks = level + 1; /* this level exists (set by another table): keep it, forget deeper ones */
        return TN_SUCCESS;
    }
    if (level >= t->cap_marks) {
        int cap = level + 8;
        size_t *grown = sqlite3_realloc64(t->marks, (size_t)cap * sizeof *grown);
        if (!grown) return TN_NOMEM;
        t->marks = grown;
        t->cap_marks = cap;
    }
    while (t->n_marks <= level) t->marks[t->n_marks++] = t->log.len;
    return TN_SUCCESS;
}

void tn_txn_release_savepoint(tn_txn *t, int level)
{
    if (level >= 0 && level < t->n_marks) t->n_marks = level;
}

int tn_txn_rollback_to(tn_txn *t, int level)
{
    if (level < 0 || level >= t->n_marks) return TN_SUCCESS;
    t->n_marks = level + 1;
    if (t->marks[level] >= t->log.len) return TN_SUCCESS;
    t->log.len = t->marks[level];
    return rebuild(t);
}

/* ---- commit ------------------------------------------------------------------------------------- */

typedef struct chunk {
    uint32_t coll;
    size_t first; /* index of its first op among the collection's ops */
    size_t count;
    tn_wr payload;
} chunk;

/* Message for a failed row op: mode and pk are decoded from the buffered bytes. */
static char *row_message(const tn_txn *t, uint32_t coll, size_t op_index, int code, const char *server_msg,
                         size_t server_len, int *sqlite_rc)
{
    size_t off = 0, len, seen = 0;
    uint32_t c;
    const uint8_t *op = NULL;
    int found = 0;
    while (log_next(t, &off, &c, &op, &len)) {
        if (c != coll) continue;
        if (seen++ == op_index) {
            found = 1;
            break;
        }
    }
    const txn_coll *tc = &t->colls[coll];
    char pk[128] = "?";
    uint8_t mode = 0;
    uint64_t rev = 0;
    if (found) {
        tn_rd r;
        tn_val v;
        tn_rd_init(&r, op, len);
        mode = tn_rd_u8(&r);
        if (mode != TN_ROW_RANGE_CHECK && tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &v) == 0) {
            if (mode >= TN_ROW_UPDATE) rev = tn_rd_varint(&r);
            /* An UPDATE that moves the key fails ROW_EXISTS on its new key. */
            if (mode == TN_ROW_UPDATE && code == TN_ROW_EXISTS) tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &v);
            tn_val_format(&v, pk, sizeof pk);
        }
    }
    const char *why;
    switch (code) {
    case TN_ROW_EXISTS:
        *sqlite_rc = SQLITE_CONSTRAINT;
        why = "already exists";
        break;
    case TN_REVISION_MISMATCH:
        *sqlite_rc = SQLITE_BUSY;
        why = mode == TN_ROW_CHECK && rev == 0 ? "was added since it was read" : "changed since it was read";
        break;
    case TN_NOT_FOUND:
        *sqlite_rc = SQLITE_BUSY;
        why = "was deleted since it was read";
        break;
    case TN_TXN_CONFLICT:
        *sqlite_rc = SQLITE_BUSY;
        why = "conflicts with a concurrent change";
        break;
    case TN_NOMEM:
        *sqlite_rc = SQLITE_NOMEM;
        why = "could not be written (out of memory)";
        break;
    default:
        *sqlite_rc = SQLITE_ERROR;
        return sqlite3_mprintf("tarn: %s: '%s': %.*s", tn_code_name(code), tc->name, (int)server_len,
                               server_msg ? server_msg : "");
    }
    return sqlite3_mprintf("tarn: %s: row %s=%s of '%s' %s", tn_code_name(code), tc->pk_name, pk, tc->name,
                           why);
}

int tn_txn_commit(tn_txn *t, char **errmsg)
{
    chunk *chunks = NULL;
    tn_op *ops = NULL;
    size_t n_chunks = 0, *base = NULL, *seen = NULL;
    tn_wr reqb, respb;
    tn_resp resp;
    int have_resp = 0, rc = SQLITE_OK;
    tn_wr_init(&reqb);
    tn_wr_init(&respb);
    *errmsg = NULL;
    if (t->failed_rc != SQLITE_OK) {
        *errmsg = sqlite3_mprintf("%s (the transaction must be rolled back)",
                                  t->failed_msg ? t->failed_msg : "tarn: commit failed");
        return t->failed_rc;
    }
    if (t->n_ops == 0) goto done;

    base = sqlite3_malloc64((t->n_colls + 1) * sizeof *base * 2);
    if (!base) { rc = SQLITE_NOMEM; goto done; }
    seen = base + t->n_colls + 1;
    for (uint32_t c = 0; c < t->n_colls; c++) {
        base[c] = n_chunks;
        seen[c] = 0;
        n_chunks += (t->colls[c].n_ops + TN_COLL_MAX_ROW_OPS - 1) / TN_COLL_MAX_ROW_OPS;
    }
    chunks = sqlite3_malloc64(n_chunks * sizeof *chunks);
    ops = sqlite3_malloc64(n_chunks * sizeof *ops);
    if (!chunks || !ops) { rc = SQLITE_NOMEM; goto done; }
    memset(chunks, 0, n_chunks * sizeof *chunks);
    memset(ops, 0, n_chunks * sizeof *ops);
    for (uint32_t c = 0; c < t->n_colls; c++) {
        for (size_t first = 0, k = base[c]; first < t->colls[c].n_ops; first += TN_COLL_MAX_ROW_OPS, k++) {
            chunk *ch = &chunks[k];
            ch->coll = c;
            ch->first = first;
            ch->count = t->colls[c].n_ops - first;
            if (ch->count > TN_COLL_MAX_ROW_OPS) ch->count = TN_COLL_MAX_ROW_OPS;
            tn_wr_u8(&ch->payload, TN_CWRITE_ROWS);
            tn_wr_u8(&ch->payload, 1); /* atomic */
            tn_wr_varint(&ch->payload, ch->count);
        }
    }
    {
        size_t off = 0, len;
        uint32_t c;
        const uint8_t *op;
        while (log_next(t, &off, &c, &op, &len)) {
            chunk *ch = &chunks[base[c] + seen[c]++ / TN_COLL_MAX_ROW_OPS];
            tn_wr_raw(&ch->payload, op, len);
        }
    }
    for (size_t k = 0; k < n_chunks; k++) {
        if (chunks[k].payload.oom) { rc = SQLITE_NOMEM; goto done; }
        ops[k].opcode = TN_OP_COLL_WRITE;
        ops[k].key = (const uint8_t *)t->colls[chunks[k].coll].name;
        ops[k].key_len = strlen(t->colls[chunks[k].coll].name);
        ops[k].value = chunks[k].payload.p;
        ops[k].value_len = chunks[k].payload.len;
    }
    tn_req req = {.flags = TN_REQF_ATOMIC, .req_id = ++t->next_req_id, .client_id = tn_client_session(t->client),
                  .n_ops = n_chunks, .ops = ops};
    int code = tn_req_encode(&req, &reqb);
    for (size_t k = 0; k < n_chunks; k++) tn_wr_free(&chunks[k].payload); /* the request holds a copy */
    if (code == TN_TOO_LARGE) {
        rc = SQLITE_TOOBIG;
        *errmsg = sqlite3_mprintf("tarn: TOO_LARGE: the transaction (%llu row ops) exceeds the %u-byte request "
                                  "limit; commit it in smaller transactions", (unsigned long long)t->n_ops, TN_WIRE_MAX_MESSAGE);
        goto done;
    }
    if (code != TN_SUCCESS) { rc = SQLITE_NOMEM; goto done; }
    tn_conn_count_request(t->conn);
    code = tn_client_call(t->client, &reqb, &respb);
    if (code == TN_SUCCESS) code = tn_resp_decode(respb.p, respb.len, &resp);
    if (code != TN_SUCCESS) {
        rc = code == TN_NOMEM ? SQLITE_NOMEM : SQLITE_BUSY;
        *errmsg = sqlite3_mprintf("tarn: %s: commit to %s failed (the transaction is rolled back)",
                                  tn_code_name(code), tn_client_target(t->client));
        goto done;
    }
    have_resp = 1;
    if (resp.code != TN_SUCCESS) {
        rc = resp.code == TN_TOO_LARGE ? SQLITE_TOOBIG
             : resp.code == TN_NOT_LEADER || resp.code == TN_UNAVAILABLE || resp.code == TN_TIMEOUT ? SQLITE_BUSY
                                                                                                      : SQLITE_ERROR;
        *errmsg = sqlite3_mprintf("tarn: %s: commit failed: %.*s", tn_code_name(resp.code),
                                  (int)resp.message_len, (const char *)resp.message);
        goto done;
    }
    if (resp.n_results != n_chunks) {
        rc = SQLITE_ERROR;
        *errmsg = sqlite3_mprintf("tarn: INTERNAL: commit answered %llu results for %llu ops",
                                  (unsigned long long)resp.n_results, (unsigned long long)n_chunks);
        goto done;
    }
    /* The failing op is the first with its own outcome: every other op of an atomic request that failed
     * reports TXN_CONFLICT without a payload. */
    size_t bad = n_chunks;
    for (size_t k = 0; k < n_chunks && bad == n_chunks; k++)
        if (!tn_code_ok(resp.results[k].code) && resp.results[k].blob_len) bad = k;
    for (size_t k = 0; k < n_chunks && bad == n_chunks; k++)
        if (!tn_code_ok(resp.results[k].code)) bad = k;
    if (bad < n_chunks) {
        const tn_result *res = &resp.results[bad];
        tn_coll_write_result wr;
        memset(&wr, 0, sizeof wr);
        if (res->blob_len && tn_coll_write_result_decode(res->blob, res->blob_len, &wr) == TN_SUCCESS &&
            wr.failed_op > 0) {
            int op_code = wr.failed_op <= wr.n_ops ? wr.ops[wr.failed_op - 1].code : wr.code;
            *errmsg = row_message(t, chunks[bad].coll, chunks[bad].first + wr.failed_op - 1, op_code,
                                  wr.message, wr.message_len, &rc);
        } else {
            const char *m = wr.message ? wr.message : "";
            size_t ml = wr.message ? wr.message_len : 0;
            *errmsg = sqlite3_mprintf("tarn: %s: commit to '%s' failed%s%.*s", tn_code_name(res->code),
                                      t->colls[chunks[bad].coll].name, ml ? ": " : "", (int)ml, m);
            rc = res->code == TN_REVISION_MISMATCH || res->code == TN_TXN_CONFLICT ? SQLITE_BUSY
                 : res->code == TN_ROW_EXISTS                                      ? SQLITE_CONSTRAINT
                                                                                   : SQLITE_ERROR;
        }
        tn_coll_write_result_clear(&wr);
        goto done;
    }
    t->commits++;
done:
    if (rc != SQLITE_OK && !*errmsg && rc != SQLITE_NOMEM)
        *errmsg = sqlite3_mprintf("tarn: commit failed");
    if (have_resp) tn_resp_clear(&resp);
    if (chunks)
        for (size_t k = 0; k < n_chunks; k++) tn_wr_free(&chunks[k].payload);
    sqlite3_free(chunks);
    sqlite3_free(ops);
    sqlite3_free(base);
    tn_wr_free(&reqb);
    tn_wr_free(&respb);
    drop_ops(t);
    if (rc != SQLITE_OK && rc != SQLITE_NOMEM) {
        t->failed_rc = rc;
        t->failed_msg = *errmsg ? sqlite3_mprintf("%s", *errmsg) : NULL;
    }
    return rc;
}
