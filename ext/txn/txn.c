/* txn.c — the transaction write buffer, read set and commit (see txn.h).
 *
 * Layout. `log` holds the buffered writes in order, each as  table:u32 len:u32 op-bytes. For a collection
 * op-bytes is exactly one coll_codec.h `rowop` (encoded with tn_coll_rows_encode and stripped of the 3-byte ROWS
 * header), so the commit only concatenates bytes; for the tree (table TN_TXN_KV) it is
 *   kvop := opcode:u8 cond:u8 cond_rev:varint ttl_ms:svarint key:bytes has_value:u8 [value:bytes]
 * A savepoint mark is a length of `log`; rolling back truncates it and rebuilds the row-state map from
 * what is left (rare: statement failures and ROLLBACK TO).
 * The row-state map (`rows`, a keymap.h map keyed by (table, key bytes)) remembers per key what the
 * buffered ops did and the log offset of the last op that wrote it.
 * The read set: `rlog` holds one check op per read (same entry format as `log`; tree checks are kvops
 * with opcode KV_CHECK), `rseen` (a keymap.h set keyed by (table, key bytes)) makes the first read of a
 * key win.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "txn.h"

#include <string.h>

#include "keymap.h"
#include "sql_code.h"
#include "tn_code.h"
#include "wire.h"

#define ROWS_HEADER 3 /* kind:u8 flags:u8 n_ops:varint(=1) of a one-op rows payload */
#define NO_OFF UINT32_MAX

typedef struct txn_coll {
    char *name;
    char *pk_name;
    size_t n_ops; /* buffered write ops of this collection */
    size_t n_reads; /* read checks of this collection */
} txn_coll;

/* The value of a key in the row-state map. */
typedef struct row_state {
    uint32_t last_off; /* log offset of the entry that last wrote the key, NO_OFF if none */
    uint8_t state, written;
} row_state;

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
    size_t n_ops, n_kv_ops;
    tn_wr scratch;

    tn_keymap rows;   /* (table, key) -> row_state */

    tn_wr rlog;       /* read checks */
    size_t n_reads, n_kv_reads;
    tn_keymap rseen;  /* (table, key) read so far: the first read of a key wins */

    size_t *marks;
    int n_marks, cap_marks;

    /* A commit that failed with SQLITE_BUSY leaves SQLite's transaction open (COMMIT may be retried), but
     * the buffered ops are gone: every later commit of this transaction repeats the failure until it is
     * rolled back, so a retried COMMIT can never "succeed" with nothing. */
    int failed_rc;
    char *failed_msg;
    int active; /* tn_txn_set_active */
};

/* ---- registry ----------------------------------------------------------------------------------- */

tn_txn_registry *tn_txn_registry_new(tn_conn *conn)
{
    tn_txn_registry *reg = sqlite3_malloc(sizeof *reg);
    if (!reg) return NULL;
    memset(reg, 0, sizeof *reg);
    reg->refs = 1;
    tn_conn_retain(conn);
    reg->conn = conn;
    return reg;
}

void tn_txn_registry_retain(tn_txn_registry *reg) { reg->refs++; }

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
    tn_wr_free(&t->rlog);
    tn_keymap_clear(&t->rseen);
    tn_keymap_clear(&t->rows);
    sqlite3_free(t->marks);
    sqlite3_free(t);
}

void tn_txn_registry_unref(void *p)
{
    tn_txn_registry *reg = p;
    if (!reg || --reg->refs > 0) return;
    while (reg->head) {
        tn_txn *t = reg->head;
        reg->head = t->next;
        txn_free(t);
    }
    tn_conn_free(reg->conn);
    sqlite3_free(reg);
}

int tn_txn_acquire(tn_txn_registry *reg, tn_client *client, tn_txn **out)
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
    t->conn = reg->conn;
    t->client = client;
    tn_keymap_init(&t->rows, sizeof(row_state));
    tn_keymap_init(&t->rseen, 0);
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

static const row_state *map_get(const tn_txn *t, uint32_t table, const uint8_t *k, size_t n)
{
    return tn_keymap_get(&t->rows, table, k, n);
}

/* written: 1 for a change; a check (0) never overrides what a change recorded. state 0: keep the state
 * (a change that does not decide presence, e.g. a TTL update). at: log offset of the writing entry. */
static int map_note(tn_txn *t, uint32_t table, const uint8_t *k, size_t n, uint8_t state, uint8_t written,
                    uint32_t at)
{
    void *val;
    int created;
    if (tn_keymap_put(&t->rows, table, k, n, &val, &created) != SQLITE_OK) return TN_NOMEM;
    row_state *s = val;
    if (created) {
        s->state = TN_TXN_ROW_UNKNOWN;
        s->written = 0;
        s->last_off = NO_OFF;
    }
    if (state && (written || !s->written)) s->state = state;
    if (written && state) s->last_off = state == TN_TXN_ROW_PRESENT ? at : NO_OFF;
    s->written |= written;
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

/* Records what one encoded rowop (at log offset `at`) does to the row map. */
static int map_apply(tn_txn *t, uint32_t coll, const uint8_t *op, size_t len, uint32_t at)
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
        return k1 ? map_note(t, coll, k1, n1, TN_TXN_ROW_PRESENT, 1, at) : TN_INTERNAL;
    case TN_ROW_UPDATE: {
        k1 = read_key(&r, &n1);
        (void)tn_rd_varint(&r);
        k2 = read_key(&r, &n2);
        if (!k1 || !k2) return TN_INTERNAL;
        int rc = map_note(t, coll, k1, n1, TN_TXN_ROW_ABSENT, 1, at);
        return rc ? rc : map_note(t, coll, k2, n2, TN_TXN_ROW_PRESENT, 1, at);
    }
    case TN_ROW_DELETE:
        k1 = read_key(&r, &n1);
        return k1 ? map_note(t, coll, k1, n1, TN_TXN_ROW_ABSENT, 1, at) : TN_INTERNAL;
    case TN_ROW_CHECK: {
        k1 = read_key(&r, &n1);
        uint64_t rev = tn_rd_varint(&r);
        if (!k1 || r.err) return TN_INTERNAL;
        return map_note(t, coll, k1, n1, rev ? TN_TXN_ROW_PRESENT : TN_TXN_ROW_ABSENT, 0, at);
    }
    default:
        return TN_SUCCESS; /* RANGE_CHECK: no single row */
    }
}

int tn_txn_kv_decode(const uint8_t *op, size_t len, tn_op *out)
{
    tn_rd r;
    memset(out, 0, sizeof *out);
    tn_rd_init(&r, op, len);
    out->opcode = tn_rd_u8(&r);
    out->cond = tn_rd_u8(&r);
    out->cond_rev = tn_rd_varint(&r);
    out->ttl_ms = tn_rd_svarint(&r);
    out->key = tn_rd_bytes(&r, TN_WIRE_MAX_KEY, &out->key_len);
    if (tn_rd_u8(&r)) out->value = tn_rd_bytes(&r, TN_WIRE_MAX_VALUE, &out->value_len);
    return r.err || tn_rd_left(&r) ? TN_INTERNAL : TN_SUCCESS;
}

static int kv_map_apply(tn_txn *t, const uint8_t *op, size_t len, uint32_t at)
{
    tn_op o;
    if (tn_txn_kv_decode(op, len, &o) != TN_SUCCESS) return TN_INTERNAL;
    switch (o.opcode) {
    case TN_OP_KV_PUT:
    case TN_OP_KV_PUT_TEMP:
    case TN_OP_KV_MKDIR:
    case TN_OP_KV_MKDIR_TEMP:
        return map_note(t, TN_TXN_KV, o.key, o.key_len, TN_TXN_ROW_PRESENT, 1, at);
    case TN_OP_KV_REMOVE:
        return map_note(t, TN_TXN_KV, o.key, o.key_len, TN_TXN_ROW_ABSENT, 1, at);
    default:
        return map_note(t, TN_TXN_KV, o.key, o.key_len, 0, 1, at); /* TTL update: presence unchanged */
    }
}

int tn_txn_row_state(const tn_txn *t, uint32_t coll, const tn_val *pk, int *written)
{
    tn_wr w;
    int state = TN_TXN_ROW_UNKNOWN;
    if (written) *written = 0;
    if (!tn_keymap_count(&t->rows)) return state;
    tn_wr_init(&w);
    tn_val_encode(pk, &w);
    if (!w.oom) {
        const row_state *s = map_get(t, coll, w.p, w.len);
        if (s) {
            state = s->state;
            if (written) *written = s->written;
        }
    }
    tn_wr_free(&w);
    return state;
}

int tn_txn_kv_state(const tn_txn *t, const uint8_t *key, size_t key_len, int *is_dir, const uint8_t **value,
                    size_t *value_len, int64_t *ttl_ms)
{
    const row_state *s = map_get(t, TN_TXN_KV, key, key_len);
    if (!s || !s->written || s->state == TN_TXN_ROW_UNKNOWN) return TN_TXN_ROW_UNKNOWN;
    if (s->state == TN_TXN_ROW_ABSENT || s->last_off == NO_OFF) return s->state;
    tn_rd r;
    tn_op o;
    tn_rd_init(&r, t->log.p + s->last_off, t->log.len - s->last_off);
    (void)tn_rd_u32(&r);
    uint32_t len = tn_rd_u32(&r);
    const uint8_t *op = tn_rd_raw(&r, len);
    if (r.err || tn_txn_kv_decode(op, len, &o) != TN_SUCCESS) return TN_TXN_ROW_UNKNOWN;
    int dir = o.opcode == TN_OP_KV_MKDIR || o.opcode == TN_OP_KV_MKDIR_TEMP;
    if (is_dir) *is_dir = dir;
    if (value) *value = dir ? NULL : o.value;
    if (value_len) *value_len = dir ? 0 : o.value_len;
    if (ttl_ms) *ttl_ms = o.opcode == TN_OP_KV_PUT_TEMP || o.opcode == TN_OP_KV_MKDIR_TEMP ? o.ttl_ms : 0;
    return TN_TXN_ROW_PRESENT;
}

int tn_txn_each_written(const tn_txn *t, uint32_t table, tn_txn_row_cb cb, void *arg)
{
    size_t pos = 0, key_len;
    uint32_t space;
    const uint8_t *key;
    void *val;
    while (tn_keymap_next(&t->rows, &pos, &space, &key, &key_len, &val)) {
        const row_state *s = val;
        if (space != table || !s->written || s->state == TN_TXN_ROW_UNKNOWN) continue;
        const uint8_t *op = NULL;
        uint32_t len = 0;
        if (s->state == TN_TXN_ROW_PRESENT && s->last_off != NO_OFF) {
            tn_rd r;
            tn_rd_init(&r, t->log.p + s->last_off, t->log.len - s->last_off);
            (void)tn_rd_u32(&r);
            len = tn_rd_u32(&r);
            op = tn_rd_raw(&r, len);
            if (r.err) op = NULL;
        }
        int rc = cb(arg, key, key_len, op ? s->state : TN_TXN_ROW_ABSENT, op, len);
        if (rc) return rc;
    }
    return 0;
}

size_t tn_txn_table_pending(const tn_txn *t, uint32_t table)
{
    if (table == TN_TXN_KV) return t->n_kv_ops;
    return table < t->n_colls ? t->colls[table].n_ops : 0;
}

/* ---- buffer ------------------------------------------------------------------------------------- */

size_t tn_txn_pending(const tn_txn *t) { return t->n_ops; }
size_t tn_txn_bytes(const tn_txn *t) { return t->log.len + t->rlog.len; }
uint64_t tn_txn_commits(const tn_txn *t) { return t->commits; }

/* Appends table/len/bytes to w unless the request would grow too large. SUCCESS, TOO_LARGE, NOMEM. */
static int append_entry(tn_txn *t, tn_wr *w, uint32_t table, const uint8_t *p, size_t len, size_t *at)
{
    /* Keep room for the request's own framing: fail here rather than at commit. */
    if (t->log.len + t->rlog.len + len + 8 > TN_WIRE_MAX_MESSAGE - 64 * 1024) return TN_TOO_LARGE;
    *at = w->len;
    tn_wr_u32(w, table);
    tn_wr_u32(w, (uint32_t)len);
    tn_wr_raw(w, p, len);
    if (w->oom) {
        w->oom = 0;
        w->len = *at;
        return TN_NOMEM;
    }
    return TN_SUCCESS;
}

/* Encodes one row op into t->scratch; on SUCCESS op and len is the rowop without the ROWS header. */
static int encode_rowop(tn_txn *t, const tn_coll_row_op *op, const uint8_t **out, size_t *len)
{
    t->scratch.len = 0;
    t->scratch.oom = 0;
    int rc = tn_coll_rows_encode(op, 1, 0, &t->scratch);
    if (rc != TN_SUCCESS) return rc;
    if (t->scratch.oom) return TN_NOMEM;
    if (t->scratch.len < ROWS_HEADER || t->scratch.p[0] != TN_CWRITE_ROWS || t->scratch.p[2] != 1)
        return TN_INTERNAL;
    *out = t->scratch.p + ROWS_HEADER;
    *len = t->scratch.len - ROWS_HEADER;
    return TN_SUCCESS;
}

int tn_txn_add(tn_txn *t, uint32_t coll, const tn_coll_row_op *op)
{
    const uint8_t *bytes;
    size_t len, at;
    if (coll >= t->n_colls) return TN_INTERNAL;
    int rc = encode_rowop(t, op, &bytes, &len);
    if (rc != TN_SUCCESS) return rc;
    if ((rc = append_entry(t, &t->log, coll, bytes, len, &at)) != TN_SUCCESS) return rc;
    rc = map_apply(t, coll, t->log.p + at + 8, len, (uint32_t)at);
    if (rc != TN_SUCCESS) {
        t->log.len = at;
        return rc;
    }
    t->n_ops++;
    t->colls[coll].n_ops++;
    return TN_SUCCESS;
}

static void kvop_encode(const tn_op *op, tn_wr *w)
{
    tn_wr_u8(w, op->opcode);
    tn_wr_u8(w, op->cond);
    tn_wr_varint(w, op->cond_rev);
    tn_wr_svarint(w, op->ttl_ms);
    tn_wr_bytes(w, op->key, op->key_len);
    tn_wr_u8(w, op->value ? 1 : 0);
    if (op->value) tn_wr_bytes(w, op->value, op->value_len);
}

int tn_txn_kv_add(tn_txn *t, const tn_op *op)
{
    size_t at;
    switch (op->opcode) {
    case TN_OP_KV_PUT: case TN_OP_KV_MKDIR: case TN_OP_KV_REMOVE: case TN_OP_KV_PUT_TEMP:
    case TN_OP_KV_MKDIR_TEMP: case TN_OP_KV_UPDATE_TTL:
        break;
    default:
        return TN_CLIENT_REQ_ERROR;
    }
    if (op->key_len > TN_WIRE_MAX_KEY || op->value_len > TN_WIRE_MAX_VALUE) return TN_TOO_LARGE;
    t->scratch.len = 0;
    t->scratch.oom = 0;
    kvop_encode(op, &t->scratch);
    if (t->scratch.oom) return TN_NOMEM;
    int rc = append_entry(t, &t->log, TN_TXN_KV, t->scratch.p, t->scratch.len, &at);
    if (rc != TN_SUCCESS) return rc;
    rc = kv_map_apply(t, t->log.p + at + 8, t->scratch.len, (uint32_t)at);
    if (rc != TN_SUCCESS) {
        t->log.len = at;
        return rc;
    }
    t->n_ops++;
    t->n_kv_ops++;
    return TN_SUCCESS;
}

/* ---- read set ----------------------------------------------------------------------------------- */

size_t tn_txn_reads(const tn_txn *t) { return t->n_reads; }

/* 1 if table+key was read before (or on NOMEM, -1); else records it. */
static int seen_before(tn_txn *t, uint32_t table, const uint8_t *key, size_t len)
{
    int created;
    if (tn_keymap_put(&t->rseen, table, key, len, NULL, &created) != SQLITE_OK) return -1;
    return !created;
}

int tn_txn_read(tn_txn *t, uint32_t table, const uint8_t *key, size_t key_len, uint64_t rev)
{
    size_t at;
    int seen = seen_before(t, table, key, key_len);
    if (seen < 0) return TN_NOMEM;
    if (seen) return TN_SUCCESS;
    int rc;
    if (table == TN_TXN_KV) {
        /* The root always exists (its revision may be 0): always a REV check. */
        int rev_check = rev || key_len == 0;
        tn_op op = {.opcode = TN_OP_KV_CHECK, .cond = rev_check ? TN_COND_REV : TN_COND_ABSENT, .cond_rev = rev,
                    .key = key, .key_len = key_len};
        t->scratch.len = 0;
        t->scratch.oom = 0;
        kvop_encode(&op, &t->scratch);
        if (t->scratch.oom) return TN_NOMEM;
        rc = append_entry(t, &t->rlog, table, t->scratch.p, t->scratch.len, &at);
        if (rc == TN_SUCCESS) t->n_kv_reads++;
    } else {
        if (table >= t->n_colls) return TN_INTERNAL;
        tn_rd r;
        tn_val pk;
        tn_rd_init(&r, key, key_len);
        if (tn_val_decode(&r, TN_COLL_MAX_INDEX_VALUE, &pk) != 0) return TN_INTERNAL;
        tn_coll_row_op op = {.mode = TN_ROW_CHECK, .pk = pk, .expect_rev = rev};
        const uint8_t *bytes;
        size_t len;
        if ((rc = encode_rowop(t, &op, &bytes, &len)) != TN_SUCCESS) return rc;
        rc = append_entry(t, &t->rlog, table, bytes, len, &at);
        if (rc == TN_SUCCESS) t->colls[table].n_reads++;
    }
    if (rc == TN_SUCCESS) t->n_reads++;
    return rc;
}

int tn_txn_read_range(tn_txn *t, uint32_t coll, const tn_coll_pred *preds, size_t n_preds, uint64_t revision)
{
    size_t at, len;
    const uint8_t *bytes;
    if (coll >= t->n_colls) return TN_INTERNAL;
    tn_coll_row_op op = {.mode = TN_ROW_RANGE_CHECK, .preds = preds, .n_preds = n_preds, .expect_rev = revision};
    int rc = encode_rowop(t, &op, &bytes, &len);
    if (rc != TN_SUCCESS) return rc;
    /* The same query at the same revision is checked once (a statement may run it for every outer row);
     * range keys live in their own id space (high bit) so they never meet a pk. */
    int seen = seen_before(t, coll | 0x80000000u, bytes, len);
    if (seen < 0) return TN_NOMEM;
    if (seen) return TN_SUCCESS;
    rc = append_entry(t, &t->rlog, coll, bytes, len, &at);
    if (rc == TN_SUCCESS) {
        t->colls[coll].n_reads++;
        t->n_reads++;
    }
    return rc;
}

void tn_txn_reads_clear(tn_txn *t)
{
    t->rlog.len = 0;
    t->rlog.oom = 0;
    t->n_reads = t->n_kv_reads = 0;
    for (uint32_t i = 0; i < t->n_colls; i++) t->colls[i].n_reads = 0;
    tn_keymap_clear(&t->rseen);
}

/* ---- savepoints ------------------------------------------------------------------------------------ */

static void drop_ops(tn_txn *t)
{
    t->log.len = 0;
    t->log.oom = 0;
    t->n_ops = t->n_kv_ops = 0;
    for (uint32_t i = 0; i < t->n_colls; i++) t->colls[i].n_ops = 0;
    tn_keymap_reset(&t->rows);
    t->n_marks = 0;
}

void tn_txn_set_active(tn_txn *t) { t->active = 1; }
int tn_txn_active(const tn_txn *t) { return t->active; }

void tn_txn_clear(tn_txn *t)
{
    t->active = 0;
    drop_ops(t);
    tn_txn_reads_clear(t);
    t->failed_rc = SQLITE_OK;
    sqlite3_free(t->failed_msg);
    t->failed_msg = NULL;
}

/* Next entry of log w at *off: its table, op bytes and length. 0 at the end. */
static int log_next(const tn_wr *w, size_t *off, uint32_t *table, const uint8_t **op, size_t *len)
{
    if (*off >= w->len) return 0;
    tn_rd r;
    tn_rd_init(&r, w->p + *off, w->len - *off);
    *table = tn_rd_u32(&r);
    *len = tn_rd_u32(&r);
    *op = tn_rd_raw(&r, *len);
    if (r.err) return 0;
    *off += r.off;
    return 1;
}

/* Rebuilds the counts and the row map from the log (after a truncation). */
static int rebuild(tn_txn *t)
{
    size_t off = 0, len;
    uint32_t table;
    const uint8_t *op;
    tn_keymap_reset(&t->rows);
    t->n_ops = t->n_kv_ops = 0;
    for (uint32_t i = 0; i < t->n_colls; i++) t->colls[i].n_ops = 0;
    for (;;) {
        size_t at = off;
        if (!log_next(&t->log, &off, &table, &op, &len)) break;
        int rc = table == TN_TXN_KV ? kv_map_apply(t, op, len, (uint32_t)at) : map_apply(t, table, op, len, (uint32_t)at);
        if (rc != TN_SUCCESS) return rc;
        t->n_ops++;
        if (table == TN_TXN_KV) t->n_kv_ops++;
        else t->colls[table].n_ops++;
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
    size_t count;
    tn_wr payload;
    size_t *offs; /* offset of each row op in payload (for messages) */
} chunk;

/* Where each request op came from (for messages). */
typedef struct op_src {
    int chunk; /* index into chunks, or -1 for a tree op */
    const uint8_t *kvop;
    size_t kvop_len;
} op_src;

/* Message for a failed tree op. The code is mapped by tn_code_to_sqlite, except that a failed read check,
 * or a conditional op whose node is gone, is a conflict: SQLITE_BUSY (docs/transactions.md). */
static char *kv_message(const uint8_t *kvop, size_t len, int code, int *sqlite_rc)
{
    tn_op o;
    *sqlite_rc = tn_code_to_sqlite(code);
    if (tn_txn_kv_decode(kvop, len, &o) != TN_SUCCESS)
        return sqlite3_mprintf("tarn: %s: commit failed", tn_code_name(code));
    int klen = o.key_len > 200 ? 200 : (int)o.key_len;
    const char *why;
    if (o.opcode == TN_OP_KV_CHECK) {
        *sqlite_rc = SQLITE_BUSY;
        if (o.cond == TN_COND_ABSENT) why = "was created since it was read as absent";
        else if (code == TN_NOT_FOUND) why = "was deleted since it was read";
        else why = "changed since it was read";
    } else {
        why = tn_kv_code_reason(code);
        /* a conditional write whose node is gone: a conflict, like a failed read check */
        if (code == TN_NOT_FOUND && o.cond == TN_COND_REV) {
            why = "was deleted since it was read";
            *sqlite_rc = SQLITE_BUSY;
        }
    }
    return sqlite3_mprintf("tarn: %s: '%.*s%s' %s", tn_code_name(code), klen, (const char *)o.key,
                           o.key_len > 200 ? "…" : "", why);
}

/* Message for a failed row op (decoded from its bytes). The code is mapped by tn_code_to_sqlite, except
 * that a row read (CHECK) or updated/deleted (UpdateIf) that is gone since is a conflict: SQLITE_BUSY. */
static char *row_message(const tn_txn *t, uint32_t coll, const uint8_t *op, size_t len, int code,
                         const char *server_msg, size_t server_len, int *sqlite_rc)
{
    const txn_coll *tc = &t->colls[coll];
    char pk[128] = "?";
    uint8_t mode = 0;
    uint64_t rev = 0;
    if (op) {
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
    *sqlite_rc = tn_code_to_sqlite(code);
    switch (code) {
    case TN_ROW_EXISTS:
        why = "already exists";
        break;
    case TN_REVISION_MISMATCH:
        why = mode == TN_ROW_CHECK && rev == 0 ? "was added since it was read as absent" : "changed since it was read";
        break;
    case TN_NOT_FOUND:
        *sqlite_rc = SQLITE_BUSY;
        why = "was deleted since it was read";
        break;
    case TN_TXN_CONFLICT:
        if (mode == TN_ROW_RANGE_CHECK)
            return sqlite3_mprintf("tarn: TXN_CONFLICT: rows of '%s' read by a range query changed since they "
                                   "were read%s%.*s", tc->name, server_len ? " (" : "", (int)server_len,
                                   server_msg ? server_msg : "", server_len ? ")" : "");
        why = "conflicts with a concurrent change";
        break;
    case TN_NOMEM:
        why = "could not be written (out of memory)";
        break;
    default:
        return sqlite3_mprintf("tarn: %s: '%s': %.*s", tn_code_name(code), tc->name, (int)server_len,
                               server_msg ? server_msg : "");
    }
    return sqlite3_mprintf("tarn: %s: row %s=%s of '%s' %s", tn_code_name(code), tc->pk_name, pk, tc->name,
                           why);
}

static int chunk_add(chunk *ch, const uint8_t *op, size_t len)
{
    if (!ch->offs) {
        tn_wr_u8(&ch->payload, TN_CWRITE_ROWS);
        tn_wr_u8(&ch->payload, 1); /* atomic */
        tn_wr_varint(&ch->payload, ch->count);
        ch->offs = sqlite3_malloc64((ch->count + 1) * sizeof *ch->offs);
        if (!ch->offs) return -1;
        ch->count = 0;
    }
    ch->offs[ch->count++] = ch->payload.len;
    tn_wr_raw(&ch->payload, op, len);
    return ch->payload.oom ? -1 : 0;
}

int tn_txn_commit(tn_txn *t, char **errmsg)
{
    chunk *chunks = NULL;
    tn_op *ops = NULL;
    op_src *src = NULL;
    size_t n_chunks = 0, n_ops = 0, *base = NULL, *seen = NULL;
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
    if (t->n_ops == 0) goto done; /* read-only: nothing to commit (docs/transactions.md) */

    /* Chunks per collection: its read checks, then its writes. */
    base = sqlite3_malloc64((t->n_colls + 1) * sizeof *base * 2);
    if (!base) { rc = SQLITE_NOMEM; goto done; }
    seen = base + t->n_colls + 1;
    for (uint32_t c = 0; c < t->n_colls; c++) {
        size_t total = t->colls[c].n_ops + t->colls[c].n_reads;
        base[c] = n_chunks;
        seen[c] = 0;
        n_chunks += (total + TN_COLL_MAX_ROW_OPS - 1) / TN_COLL_MAX_ROW_OPS;
    }
    size_t max_ops = n_chunks + t->n_kv_reads + t->n_kv_ops;
    chunks = sqlite3_malloc64((n_chunks + 1) * sizeof *chunks);
    ops = sqlite3_malloc64((max_ops + 1) * sizeof *ops);
    src = sqlite3_malloc64((max_ops + 1) * sizeof *src);
    if (!chunks || !ops || !src) { rc = SQLITE_NOMEM; goto done; }
    memset(chunks, 0, (n_chunks + 1) * sizeof *chunks);
    memset(ops, 0, (max_ops + 1) * sizeof *ops);
    for (uint32_t c = 0; c < t->n_colls; c++) {
        size_t total = t->colls[c].n_ops + t->colls[c].n_reads;
        for (size_t k = base[c]; total > 0; k++) {
            chunks[k].coll = c;
            chunks[k].count = total > TN_COLL_MAX_ROW_OPS ? TN_COLL_MAX_ROW_OPS : total;
            total -= chunks[k].count;
        }
    }
    {
        const tn_wr *logs[2] = {&t->rlog, &t->log};
        size_t off, len;
        uint32_t table;
        const uint8_t *op;
        /* Tree checks, then tree writes, in order; collection ops into their chunks. */
        for (int l = 0; l < 2; l++) {
            off = 0;
            while (log_next(logs[l], &off, &table, &op, &len)) {
                if (table == TN_TXN_KV) {
                    tn_op *o = &ops[n_ops];
                    if (tn_txn_kv_decode(op, len, o) != TN_SUCCESS) { rc = SQLITE_ERROR; goto done; }
                    src[n_ops].chunk = -1;
                    src[n_ops].kvop = op;
                    src[n_ops].kvop_len = len;
                    n_ops++;
                    continue;
                }
                chunk *ch = &chunks[base[table] + seen[table]++ / TN_COLL_MAX_ROW_OPS];
                if (chunk_add(ch, op, len)) { rc = SQLITE_NOMEM; goto done; }
            }
        }
    }
    for (size_t k = 0; k < n_chunks; k++) {
        ops[n_ops].opcode = TN_OP_COLL_WRITE;
        ops[n_ops].key = (const uint8_t *)t->colls[chunks[k].coll].name;
        ops[n_ops].key_len = strlen(t->colls[chunks[k].coll].name);
        ops[n_ops].value = chunks[k].payload.p;
        ops[n_ops].value_len = chunks[k].payload.len;
        src[n_ops].chunk = (int)k;
        n_ops++;
    }
    tn_req req = {.flags = TN_REQF_ATOMIC, .req_id = ++t->next_req_id, .client_id = tn_client_session(t->client),
                  .n_ops = n_ops, .ops = ops};
    int code = tn_req_encode(&req, &reqb);
    if (code == TN_TOO_LARGE) {
        rc = SQLITE_TOOBIG;
        *errmsg = sqlite3_mprintf("tarn: TOO_LARGE: the transaction (%llu writes, %llu reads) exceeds the %u-byte "
                                  "request limit; commit it in smaller transactions",
                                  (unsigned long long)t->n_ops, (unsigned long long)t->n_reads, TN_WIRE_MAX_MESSAGE);
        goto done;
    }
    if (code != TN_SUCCESS) {
        rc = tn_code_to_sqlite(code);
        if (rc != SQLITE_NOMEM)
            *errmsg = sqlite3_mprintf("tarn: %s: the transaction could not be encoded", tn_code_name(code));
        goto done;
    }
    tn_conn_count_request(t->conn);
    code = tn_client_call(t->client, &reqb, &respb);
    if (code == TN_SUCCESS) code = tn_resp_decode(respb.p, respb.len, &resp);
    if (code != TN_SUCCESS) {
        /* No answer: whether the store applied the commit is unknown, which docs/transactions.md reports as
         * SQLITE_BUSY whatever the transport said (the commit's own TOO_LARGE was caught above). */
        rc = code == TN_NOMEM ? SQLITE_NOMEM : SQLITE_BUSY;
        const char *why = tn_client_last_error(t->client);
        if (why)
            *errmsg = sqlite3_mprintf("%s (commit: the transaction is rolled back; whether the store applied it "
                                      "is unknown)", why);
        else
            *errmsg = sqlite3_mprintf("tarn: %s: commit to %s failed (the transaction is rolled back; whether "
                                      "the store applied it is unknown)", tn_code_name(code),
                                      tn_client_target(t->client));
        goto done;
    }
    have_resp = 1;
    if (resp.code != TN_SUCCESS) {
        rc = tn_code_to_sqlite(resp.code);
        *errmsg = sqlite3_mprintf("tarn: %s: commit failed: %.*s", tn_code_name(resp.code),
                                  (int)resp.message_len, (const char *)resp.message);
        goto done;
    }
    if (resp.n_results != n_ops) {
        rc = SQLITE_ERROR;
        *errmsg = sqlite3_mprintf("tarn: INTERNAL: commit answered %llu results for %llu ops",
                                  (unsigned long long)resp.n_results, (unsigned long long)n_ops);
        goto done;
    }
    /* The failing op is the first that does not report TXN_CONFLICT (every other op of a failed atomic
     * request does); a RANGE_CHECK failure is itself a TXN_CONFLICT with a blob. */
    size_t bad = n_ops;
    for (size_t k = 0; k < n_ops && bad == n_ops; k++)
        if (!tn_code_ok(resp.results[k].code) &&
            (resp.results[k].code != TN_TXN_CONFLICT || resp.results[k].blob_len))
            bad = k;
    for (size_t k = 0; k < n_ops && bad == n_ops; k++)
        if (!tn_code_ok(resp.results[k].code)) bad = k;
    if (bad < n_ops) {
        const tn_result *res = &resp.results[bad];
        if (src[bad].chunk < 0) {
            *errmsg = kv_message(src[bad].kvop, src[bad].kvop_len, res->code, &rc);
            goto done;
        }
        chunk *ch = &chunks[src[bad].chunk];
        tn_coll_write_result wr;
        memset(&wr, 0, sizeof wr);
        if (res->blob_len && tn_coll_write_result_decode(res->blob, res->blob_len, &wr) == TN_SUCCESS &&
            wr.failed_op > 0 && wr.failed_op <= ch->count) {
            int op_code = wr.failed_op <= wr.n_ops ? wr.ops[wr.failed_op - 1].code : wr.code;
            size_t at = ch->offs[wr.failed_op - 1];
            size_t end = wr.failed_op < ch->count ? ch->offs[wr.failed_op] : ch->payload.len;
            *errmsg = row_message(t, ch->coll, ch->payload.p + at, end - at, op_code, wr.message, wr.message_len, &rc);
        } else {
            const char *m = wr.message ? wr.message : "";
            size_t ml = wr.message ? wr.message_len : 0;
            *errmsg = sqlite3_mprintf("tarn: %s: commit to '%s' failed%s%.*s", tn_code_name(res->code),
                                      t->colls[ch->coll].name, ml ? ": " : "", (int)ml, m);
            rc = tn_code_to_sqlite(res->code);
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
        for (size_t k = 0; k < n_chunks; k++) {
            tn_wr_free(&chunks[k].payload);
            sqlite3_free(chunks[k].offs);
        }
    sqlite3_free(chunks);
    sqlite3_free(ops);
    sqlite3_free(src);
    sqlite3_free(base);
    tn_wr_free(&reqb);
    tn_wr_free(&respb);
    drop_ops(t);
    tn_txn_reads_clear(t);
    if (rc != SQLITE_OK && rc != SQLITE_NOMEM) {
        t->failed_rc = rc;
        t->failed_msg = *errmsg ? sqlite3_mprintf("%s", *errmsg) : NULL;
    }
    return rc;
}
