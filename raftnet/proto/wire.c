/* wire.c — Tarn's client <-> node protocol: request, response and command codecs (contract: wire.h,
 * format: docs/protocol.md).
 *
 * Design rules kept throughout:
 * - Decoders accept only what the encoders can produce (canonical up to varint padding), so that
 *   decode -> encode -> decode is the identity on the decoded structures; the fuzz target checks it.
 * - Every count read from the wire is checked against the bytes that are left before anything is
 *   allocated: an element needs at least MIN_*_SIZE bytes, so a lying count fails without a big malloc.
 * - Encoders validate the structure they are given (fields an opcode cannot carry must be empty) and
 *   leave the writer as it was on failure (except for its sticky `oom` flag).
 */
#include "wire.h"

#include <limits.h>
#include <string.h>

/* ---- limits that are not in wire.h (documented in docs/protocol.md) ---- */
#define WIRE_MAX_TEXT 4096u                   /* leader_hint and message of a response */
#define WIRE_MAX_COLL_PAYLOAD TN_WIRE_MAX_MESSAGE /* COLL_* payloads: opaque, bounded by the message */
#define WIRE_MAX_BLOB TN_WIRE_MAX_MESSAGE
#define WIRE_MAX_RESULTS TN_WIRE_MAX_OPS      /* at most one result per op */
#define WIRE_MAX_CODE 0x7fffffffu             /* a code must fit an int */
#define WIRE_HDR_SIZE 4u
/* The largest command header (magic, version, kind, time_ms, owner): a command may exceed the request
 * limit by this much, because it embeds a request of up to TN_WIRE_MAX_MESSAGE bytes. */
#define WIRE_MAX_CMD_HDR (WIRE_HDR_SIZE + 10u + 10u)
/* The largest response header before the result count: hdr, req_id, code, revision, hint, message. */
#define WIRE_MAX_RESP_HDR (WIRE_HDR_SIZE + 10u + 5u + 10u + 2u * (2u + WIRE_MAX_TEXT))

/* Smallest possible encodings, used to bound counts before allocating. */
#define MIN_OP_SIZE 1u     /* STATUS is the opcode alone; every other op is at least 2 bytes */
#define MIN_RESULT_SIZE 6u /* code + u32 count + empty blob */
#define MIN_ENTRY_SIZE 6u  /* empty key + flags + 2 revs + 2 times */

#define MAGIC0 'T'
#define MAGIC_MSG 'N'
#define MAGIC_CMD 'C'

#define ENTRY_IS_DIR 0x01
#define ENTRY_HAS_VALUE 0x02
#define ENTRY_TEMP 0x04
#define ENTRY_KNOWN_FLAGS (ENTRY_IS_DIR | ENTRY_HAS_VALUE | ENTRY_TEMP)

/* ---- the op table: which fields each opcode carries, in this order on the wire ---- */
enum {
    F_KEY = 0x01,        /* key:bytes */
    F_VALUE = 0x02,      /* value:bytes (always present) */
    F_CAS = 0x04,        /* has_expect:u8 [expect:bytes] has_value:u8 [value:bytes] */
    F_RANGE = 0x08,      /* after:bytes limit:varint */
    F_TTL = 0x10,        /* ttl_ms:svarint */
    F_COND = 0x20,       /* cond := kind:u8 [rev:varint if kind == REV] */
    F_EXPECT_REV = 0x40, /* expect_rev:varint */
    F_COLL = 0x80,       /* value is an opaque collection payload (bounded by the message, not the value cap) */
    F_NONE = 0x100,      /* a known opcode that carries no field */
};

static unsigned op_fields(int opcode)
{
    switch (opcode) {
    case TN_OP_KV_GET: return F_KEY;
    case TN_OP_KV_LIST: return F_KEY | F_RANGE;
    case TN_OP_KV_SCAN: return F_RANGE;
    case TN_OP_COLL_READ: return F_KEY | F_VALUE | F_COLL;
    case TN_OP_KV_PUT: return F_KEY | F_VALUE | F_COND;
    case TN_OP_KV_MKDIR: return F_KEY | F_COND;
    case TN_OP_KV_REMOVE: return F_KEY | F_COND;
    case TN_OP_KV_CAS: return F_KEY | F_CAS;
    case TN_OP_KV_PUT_TEMP: return F_KEY | F_VALUE | F_TTL | F_COND;
    case TN_OP_KV_MKDIR_TEMP: return F_KEY | F_TTL | F_COND;
    case TN_OP_KV_UPDATE_TTL: return F_KEY | F_TTL | F_COND;
    case TN_OP_KV_EXPIRE: return F_KEY | F_EXPECT_REV;
    case TN_OP_COLL_WRITE: return F_KEY | F_VALUE | F_COLL;
    case TN_OP_KV_CHECK: return F_KEY | F_COND;
    case TN_OP_STATUS: return F_NONE;
    case TN_OP_ADMIN: return F_VALUE | F_COLL;
    }
    return 0; /* unknown opcode */
}

static size_t value_cap(unsigned fields)
{
    return (fields & F_COLL) ? WIRE_MAX_COLL_PAYLOAD : TN_WIRE_MAX_VALUE;
}

/* A byte-string field given to an encoder: NULL with a non-zero length is a caller bug. */
static int bytes_ok(const uint8_t *p, size_t len) { return p != NULL || len == 0; }

static void write_header(tn_wr *w, char magic, uint8_t kind)
{
    uint8_t h[WIRE_HDR_SIZE] = {MAGIC0, (uint8_t)magic, TN_WIRE_VERSION, kind};
    tn_wr_raw(w, h, sizeof h);
}

/* Reads and checks the 4-byte header. Returns 0 or -1 (wrong magic, version or kind). */
static int read_header(tn_rd *r, char magic, uint8_t kind)
{
    const uint8_t *h = tn_rd_raw(r, WIRE_HDR_SIZE);
    if (!h || h[0] != MAGIC0 || h[1] != (uint8_t)magic || h[2] != TN_WIRE_VERSION || h[3] != kind) return -1;
    return 0;
}

/* ======================================== requests ======================================== */

/* Checks that an op given to the encoder carries only fields its opcode has, and within the caps.
 * Returns SUCCESS, BAD_REQUEST (malformed structure) or TOO_LARGE (a key or value above its cap). */
static int op_check(const tn_op *op)
{
    unsigned f = op_fields(op->opcode);
    if (f == 0) return TN_BAD_REQUEST;
    if (!bytes_ok(op->key, op->key_len) || !bytes_ok(op->value, op->value_len) ||
        !bytes_ok(op->expect, op->expect_len) || !bytes_ok(op->after, op->after_len))
        return TN_BAD_REQUEST;
    if (!(f & F_KEY) && op->key_len != 0) return TN_BAD_REQUEST;
    if (!(f & (F_VALUE | F_CAS)) && op->value != NULL) return TN_BAD_REQUEST;
    if (!(f & F_CAS) && op->expect != NULL) return TN_BAD_REQUEST;
    if (!(f & F_RANGE) && (op->after_len != 0 || op->limit != 0)) return TN_BAD_REQUEST;
    if (!(f & F_TTL) && op->ttl_ms != 0) return TN_BAD_REQUEST;
    if (!(f & F_EXPECT_REV) && op->expect_rev != 0) return TN_BAD_REQUEST;
    if (f & F_COND) {
        if (op->cond > TN_COND_REV) return TN_BAD_REQUEST;
        if (op->cond != TN_COND_REV && op->cond_rev != 0) return TN_BAD_REQUEST;
    } else if (op->cond != TN_COND_NONE || op->cond_rev != 0) {
        return TN_BAD_REQUEST; /* a condition this op cannot carry would be silently dropped */
    }
    if (op->key_len > TN_WIRE_MAX_KEY || op->after_len > TN_WIRE_MAX_KEY) return TN_TOO_LARGE;
    if (op->value_len > value_cap(f) || op->expect_len > TN_WIRE_MAX_VALUE) return TN_TOO_LARGE;
    return TN_SUCCESS;
}

static void op_write(tn_wr *w, const tn_op *op)
{
    unsigned f = op_fields(op->opcode);
    tn_wr_u8(w, op->opcode);
    if (f & F_KEY) tn_wr_bytes(w, op->key, op->key_len);
    if (f & F_VALUE) tn_wr_bytes(w, op->value, op->value_len);
    if (f & F_CAS) {
        tn_wr_u8(w, op->expect != NULL);
        if (op->expect) tn_wr_bytes(w, op->expect, op->expect_len);
        tn_wr_u8(w, op->value != NULL);
        if (op->value) tn_wr_bytes(w, op->value, op->value_len);
    }
    if (f & F_RANGE) {
        tn_wr_bytes(w, op->after, op->after_len);
        tn_wr_varint(w, op->limit);
    }
    if (f & F_TTL) tn_wr_svarint(w, op->ttl_ms);
    if (f & F_COND) {
        tn_wr_u8(w, op->cond);
        if (op->cond == TN_COND_REV) tn_wr_varint(w, op->cond_rev);
    }
    if (f & F_EXPECT_REV) tn_wr_varint(w, op->expect_rev);
}

int tn_req_encode(const tn_req *req, tn_wr *w)
{
    size_t start = w->len;
    int rc = TN_SUCCESS;
    if (w->oom) return TN_NOMEM;
    if ((req->flags & ~TN_REQF_ATOMIC) != 0 || req->read_mode > TN_READ_STALE) { rc = TN_BAD_REQUEST; goto fail; }
    if (req->n_ops > 0 && req->ops == NULL) { rc = TN_BAD_REQUEST; goto fail; }
    if (req->n_ops > TN_WIRE_MAX_OPS) { rc = TN_TOO_LARGE; goto fail; }
    for (size_t i = 0; i < req->n_ops; i++) {
        rc = op_check(&req->ops[i]);
        if (rc != TN_SUCCESS) goto fail;
    }
    write_header(w, MAGIC_MSG, TN_KIND_REQ);
    tn_wr_u8(w, req->flags);
    tn_wr_varint(w, req->req_id);
    tn_wr_varint(w, req->client_id);
    tn_wr_varint(w, req->seq);
    tn_wr_u8(w, req->read_mode);
    tn_wr_varint(w, req->n_ops);
    for (size_t i = 0; i < req->n_ops; i++) {
        op_write(w, &req->ops[i]);
        /* stop early rather than buffer far more than could ever be sent */
        if (w->len - start > TN_WIRE_MAX_MESSAGE) { rc = TN_TOO_LARGE; goto fail; }
        if (w->oom) { rc = TN_NOMEM; goto fail; }
    }
    if (w->oom) { rc = TN_NOMEM; goto fail; }
    return TN_SUCCESS;
fail:
    if (w->oom) rc = TN_NOMEM;
    if (w->len > start) w->len = start;
    return rc;
}

/* Reads one op; returns 0 or -1 (malformed). */
static int op_read(tn_rd *r, tn_op *op)
{
    memset(op, 0, sizeof *op);
    op->opcode = tn_rd_u8(r);
    unsigned f = op_fields(op->opcode);
    if (r->err || f == 0) return -1;
    if (f & F_KEY) op->key = tn_rd_bytes(r, TN_WIRE_MAX_KEY, &op->key_len);
    if (f & F_VALUE) op->value = tn_rd_bytes(r, value_cap(f), &op->value_len);
    if (f & F_CAS) {
        uint8_t has_expect = tn_rd_u8(r);
        if (has_expect > 1) return -1;
        if (has_expect) op->expect = tn_rd_bytes(r, TN_WIRE_MAX_VALUE, &op->expect_len);
        uint8_t has_value = tn_rd_u8(r);
        if (has_value > 1) return -1;
        if (has_value) op->value = tn_rd_bytes(r, TN_WIRE_MAX_VALUE, &op->value_len);
    }
    if (f & F_RANGE) {
        op->after = tn_rd_bytes(r, TN_WIRE_MAX_KEY, &op->after_len);
        if (op->after_len == 0) op->after = NULL; /* empty = from the start */
        op->limit = tn_rd_varint(r);
    }
    if (f & F_TTL) op->ttl_ms = tn_rd_svarint(r);
    if (f & F_COND) {
        op->cond = tn_rd_u8(r);
        if (op->cond > TN_COND_REV) return -1;
        if (op->cond == TN_COND_REV) op->cond_rev = tn_rd_varint(r);
    }
    if (f & F_EXPECT_REV) op->expect_rev = tn_rd_varint(r);
    return r->err ? -1 : 0;
}

int tn_req_decode(const void *buf, size_t len, tn_req *req)
{
    tn_rd r;
    int rc = TN_BAD_REQUEST;
    memset(req, 0, sizeof *req);
    if (buf == NULL || len > TN_WIRE_MAX_MESSAGE) goto fail;
    tn_rd_init(&r, buf, len);
    if (read_header(&r, MAGIC_MSG, TN_KIND_REQ) != 0) goto fail;
    req->flags = tn_rd_u8(&r);
    req->req_id = tn_rd_varint(&r);
    req->client_id = tn_rd_varint(&r);
    req->seq = tn_rd_varint(&r);
    req->read_mode = tn_rd_u8(&r);
    uint64_t n = tn_rd_varint(&r);
    if (r.err || (req->flags & ~TN_REQF_ATOMIC) != 0 || req->read_mode > TN_READ_STALE) goto fail;
    if (n > TN_WIRE_MAX_OPS || n > tn_rd_left(&r) / MIN_OP_SIZE) goto fail;
    if (n > 0) {
        req->ops = (tn_op *)calloc((size_t)n, sizeof *req->ops);
        if (!req->ops) { rc = TN_NOMEM; goto fail; }
    }
    req->n_ops = (size_t)n;
    for (size_t i = 0; i < req->n_ops; i++)
        if (op_read(&r, &req->ops[i]) != 0) goto fail;
    if (r.err || tn_rd_left(&r) != 0) goto fail; /* trailing bytes */
    return TN_SUCCESS;
fail:
    tn_req_clear(req);
    return rc;
}

void tn_req_clear(tn_req *req)
{
    if (!req) return;
    free(req->ops);
    memset(req, 0, sizeof *req);
}

int tn_req_is_write(const tn_req *req)
{
    for (size_t i = 0; i < req->n_ops; i++)
        if (tn_op_is_write(req->ops[i].opcode)) return 1;
    return 0;
}

/* ======================================== responses ======================================== */

/* Builder state lives in `in_result` because wire.h's builder has no error field:
 *   0 = no result open, 1 = a result is open, < 0 = failed with code -in_result (sticky). */
#define RB_IDLE 0
#define RB_OPEN 1

static void rb_fail(tn_resp_builder *b, int code)
{
    if (b->in_result >= 0) b->in_result = -code;
}

static uint64_t code_to_wire(int code)
{
    return code < 0 ? (uint64_t)TN_INTERNAL : (uint64_t)code; /* a negative code is a caller bug */
}

/* Length of s capped at WIRE_MAX_TEXT, cut back to a UTF-8 character boundary when it had to be cut. */
static size_t text_len(const char *s)
{
    if (!s) return 0;
    size_t n = strnlen(s, WIRE_MAX_TEXT + 1);
    if (n <= WIRE_MAX_TEXT) return n;
    n = WIRE_MAX_TEXT;
    while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80) n--;
    return n;
}

/* Bytes written since the result count placeholder plus an upper bound of the header before it. When
 * the writer started empty, w->len is the exact message size, so the smaller of the two is used. */
static size_t rb_size_bound(const tn_resp_builder *b)
{
    size_t tail = b->w->len - b->results_at + WIRE_MAX_RESP_HDR;
    return b->w->len < tail ? b->w->len : tail;
}

static void rb_close_result(tn_resp_builder *b)
{
    if (b->in_result != RB_OPEN) return;
    tn_wr_patch_u32(b->w, b->entries_at, b->n_entries);
    if (b->blob_len > 0 && rb_size_bound(b) + 10 + b->blob_len > TN_WIRE_MAX_MESSAGE) {
        rb_fail(b, TN_TOO_LARGE);
    } else {
        tn_wr_bytes(b->w, b->blob, b->blob_len);
        b->in_result = RB_IDLE;
    }
    b->blob = NULL;
    b->blob_len = 0;
    b->n_entries = 0;
}

void tn_resp_begin(tn_resp_builder *b, tn_wr *w, uint64_t req_id, int code, uint64_t revision,
                   const char *leader_hint, const char *message)
{
    memset(b, 0, sizeof *b);
    b->w = w;
    write_header(w, MAGIC_MSG, TN_KIND_RESP);
    tn_wr_varint(w, req_id);
    tn_wr_varint(w, code_to_wire(code));
    tn_wr_varint(w, revision);
    tn_wr_bytes(w, leader_hint, text_len(leader_hint));
    tn_wr_bytes(w, message, text_len(message));
    b->results_at = w->len;
    tn_wr_u32(w, 0);
    b->in_result = RB_IDLE;
}

void tn_resp_result_begin(tn_resp_builder *b, int code)
{
    rb_close_result(b);
    if (b->in_result < 0) return;
    if (b->n_results >= WIRE_MAX_RESULTS) { rb_fail(b, TN_TOO_LARGE); return; }
    tn_wr_varint(b->w, code_to_wire(code));
    b->entries_at = b->w->len;
    tn_wr_u32(b->w, 0);
    b->n_results++;
    b->n_entries = 0;
    b->in_result = RB_OPEN;
}

void tn_resp_entry(tn_resp_builder *b, const tn_entry *e)
{
    if (b->in_result != RB_OPEN) { rb_fail(b, TN_INTERNAL); return; } /* entry outside a result */
    if (!bytes_ok(e->key, e->key_len) || !bytes_ok(e->value, e->value_len)) { rb_fail(b, TN_INTERNAL); return; }
    if (e->key_len > TN_WIRE_MAX_KEY || e->value_len > TN_WIRE_MAX_VALUE || b->n_entries >= TN_WIRE_MAX_ENTRIES ||
        rb_size_bound(b) > TN_WIRE_MAX_MESSAGE) {
        rb_fail(b, TN_TOO_LARGE);
        return;
    }
    int has_value = !e->is_dir && e->value != NULL; /* a directory never carries a value */
    int temp = e->ttl_ms != 0 || e->owner != 0;
    uint8_t flags = (uint8_t)((e->is_dir ? ENTRY_IS_DIR : 0) | (has_value ? ENTRY_HAS_VALUE : 0) |
                              (temp ? ENTRY_TEMP : 0));
    tn_wr_bytes(b->w, e->key, e->key_len);
    tn_wr_u8(b->w, flags);
    if (has_value) tn_wr_bytes(b->w, e->value, e->value_len);
    tn_wr_varint(b->w, e->create_rev);
    tn_wr_varint(b->w, e->update_rev);
    tn_wr_svarint(b->w, e->create_time);
    tn_wr_svarint(b->w, e->update_time);
    if (temp) {
        tn_wr_svarint(b->w, e->ttl_ms);
        tn_wr_varint(b->w, e->owner);
    }
    b->n_entries++;
}

void tn_resp_blob(tn_resp_builder *b, const void *blob, size_t len)
{
    if (b->in_result != RB_OPEN) { rb_fail(b, TN_INTERNAL); return; }
    if (blob == NULL && len > 0) { rb_fail(b, TN_INTERNAL); return; }
    if (len > WIRE_MAX_BLOB) { rb_fail(b, TN_TOO_LARGE); return; }
    b->blob = (const uint8_t *)blob;
    b->blob_len = len;
}

int tn_resp_finish(tn_resp_builder *b)
{
    rb_close_result(b);
    if (b->w->oom) return TN_NOMEM;
    if (b->in_result < 0) return -b->in_result;
    tn_wr_patch_u32(b->w, b->results_at, b->n_results);
    if (rb_size_bound(b) > TN_WIRE_MAX_MESSAGE) { rb_fail(b, TN_TOO_LARGE); return TN_TOO_LARGE; }
    return TN_SUCCESS;
}

int tn_resp_error(tn_wr *w, uint64_t req_id, int code, const char *leader_hint, const char *message)
{
    tn_resp_builder b;
    tn_resp_begin(&b, w, req_id, code, 0, leader_hint, message);
    return tn_resp_finish(&b);
}

int tn_resp_rewrite(const void *resp, size_t len, uint64_t req_id, const char *leader_hint, tn_wr *out)
{
    tn_rd r;
    tn_rd_init(&r, resp, len);
    const uint8_t *hdr = tn_rd_raw(&r, 4);
    (void)tn_rd_varint(&r); /* req_id */
    uint64_t code = tn_rd_varint(&r);
    uint64_t revision = tn_rd_varint(&r);
    size_t old_hint_len;
    (void)tn_rd_bytes(&r, WIRE_MAX_TEXT, &old_hint_len);
    if (r.err || hdr[3] != TN_KIND_RESP) return TN_BAD_REQUEST;
    tn_wr_raw(out, hdr, 4);
    tn_wr_varint(out, req_id);
    tn_wr_varint(out, code);
    tn_wr_varint(out, revision);
    tn_wr_bytes(out, leader_hint, text_len(leader_hint));
    tn_wr_raw(out, (const uint8_t *)resp + r.off, len - r.off);
    return out->oom ? TN_NOMEM : TN_SUCCESS;
}

/* Magic and kind of a message head; the version is left to the full decoders. */
static int peek_header(tn_rd *r, uint8_t kind)
{
    const uint8_t *h = tn_rd_raw(r, WIRE_HDR_SIZE);
    return h && h[0] == MAGIC0 && h[1] == (uint8_t)MAGIC_MSG && h[3] == kind ? 0 : -1;
}

int tn_req_peek(const void *buf, size_t len, tn_req_head *h)
{
    tn_rd r;
    tn_rd_init(&r, buf, len);
    int bad = peek_header(&r, TN_KIND_REQ);
    h->flags = tn_rd_u8(&r);
    h->req_id = tn_rd_varint(&r);
    h->client_id = tn_rd_varint(&r);
    h->seq = tn_rd_varint(&r);
    h->read_mode = tn_rd_u8(&r);
    if (bad || r.err) {
        memset(h, 0, sizeof *h);
        return TN_BAD_REQUEST;
    }
    return TN_SUCCESS;
}

uint64_t tn_req_peek_id(const void *buf, size_t len)
{
    tn_req_head h;
    tn_req_peek(buf, len, &h);
    return h.req_id;
}

int tn_resp_peek(const void *buf, size_t len, tn_resp_head *h)
{
    tn_rd r;
    tn_rd_init(&r, buf, len);
    int bad = peek_header(&r, TN_KIND_RESP);
    h->req_id = tn_rd_varint(&r);
    uint64_t code = tn_rd_varint(&r);
    h->revision = tn_rd_varint(&r);
    h->leader_hint = tn_rd_bytes(&r, WIRE_MAX_TEXT, &h->leader_hint_len);
    if (bad || r.err || code > 0x7fffffff) {
        memset(h, 0, sizeof *h);
        return TN_BAD_REQUEST;
    }
    h->code = (int)code;
    return TN_SUCCESS;
}

/* Reads a response text field (leader_hint, message): bounded, and free of NUL bytes because the
 * builder takes C strings and could never have written one. */
static const uint8_t *text_read(tn_rd *r, size_t *len)
{
    const uint8_t *p = tn_rd_bytes(r, WIRE_MAX_TEXT, len);
    if (p && memchr(p, 0, *len) != NULL) r->err = 1;
    if (*len == 0) return NULL;
    return p;
}

static int code_read(tn_rd *r)
{
    uint64_t c = tn_rd_varint(r);
    if (c > WIRE_MAX_CODE) { r->err = 1; return 0; }
    return (int)c;
}

static int entry_read(tn_rd *r, tn_entry *e)
{
    memset(e, 0, sizeof *e);
    e->key = tn_rd_bytes(r, TN_WIRE_MAX_KEY, &e->key_len);
    uint8_t flags = tn_rd_u8(r);
    if (r->err || (flags & ~ENTRY_KNOWN_FLAGS) != 0) return -1;
    if ((flags & ENTRY_IS_DIR) && (flags & ENTRY_HAS_VALUE)) return -1;
    e->is_dir = (flags & ENTRY_IS_DIR) != 0;
    if (flags & ENTRY_HAS_VALUE) e->value = tn_rd_bytes(r, TN_WIRE_MAX_VALUE, &e->value_len);
    e->create_rev = tn_rd_varint(r);
    e->update_rev = tn_rd_varint(r);
    e->create_time = tn_rd_svarint(r);
    e->update_time = tn_rd_svarint(r);
    if (flags & ENTRY_TEMP) {
        e->ttl_ms = tn_rd_svarint(r);
        e->owner = tn_rd_varint(r);
    }
    return r->err ? -1 : 0;
}

static int result_read(tn_rd *r, tn_result *res)
{
    res->code = code_read(r);
    uint32_t n = tn_rd_u32(r);
    if (r->err || n > TN_WIRE_MAX_ENTRIES || n > tn_rd_left(r) / MIN_ENTRY_SIZE) return TN_BAD_REQUEST;
    if (n > 0) {
        res->entries = (tn_entry *)calloc(n, sizeof *res->entries);
        if (!res->entries) return TN_NOMEM;
    }
    res->n_entries = n;
    for (uint32_t i = 0; i < n; i++)
        if (entry_read(r, &res->entries[i]) != 0) return TN_BAD_REQUEST;
    res->blob = tn_rd_bytes(r, WIRE_MAX_BLOB, &res->blob_len);
    if (res->blob_len == 0) res->blob = NULL;
    return r->err ? TN_BAD_REQUEST : TN_SUCCESS;
}

int tn_resp_decode(const void *buf, size_t len, tn_resp *resp)
{
    tn_rd r;
    int rc = TN_BAD_REQUEST;
    memset(resp, 0, sizeof *resp);
    if (buf == NULL || len > TN_WIRE_MAX_MESSAGE) goto fail;
    tn_rd_init(&r, buf, len);
    if (read_header(&r, MAGIC_MSG, TN_KIND_RESP) != 0) goto fail;
    resp->req_id = tn_rd_varint(&r);
    resp->code = code_read(&r);
    resp->revision = tn_rd_varint(&r);
    resp->leader_hint = text_read(&r, &resp->leader_hint_len);
    resp->message = text_read(&r, &resp->message_len);
    uint32_t n = tn_rd_u32(&r);
    if (r.err || n > WIRE_MAX_RESULTS || n > tn_rd_left(&r) / MIN_RESULT_SIZE) goto fail;
    if (n > 0) {
        resp->results = (tn_result *)calloc(n, sizeof *resp->results);
        if (!resp->results) { rc = TN_NOMEM; goto fail; }
    }
    resp->n_results = n;
    for (uint32_t i = 0; i < n; i++) {
        rc = result_read(&r, &resp->results[i]);
        if (rc != TN_SUCCESS) goto fail;
    }
    rc = TN_BAD_REQUEST;
    if (r.err || tn_rd_left(&r) != 0) goto fail;
    return TN_SUCCESS;
fail:
    tn_resp_clear(resp);
    return rc;
}

void tn_resp_clear(tn_resp *resp)
{
    if (!resp) return;
    if (resp->results)
        for (size_t i = 0; i < resp->n_results; i++) free(resp->results[i].entries);
    free(resp->results);
    memset(resp, 0, sizeof *resp);
}

/* ======================================== commands ======================================== */

int tn_cmd_encode(int64_t time_ms, uint64_t owner, const void *req, size_t req_len, tn_wr *w)
{
    size_t start = w->len;
    if (w->oom) return TN_NOMEM;
    if (req == NULL || req_len == 0) return TN_BAD_REQUEST;
    if (req_len > TN_WIRE_MAX_MESSAGE) return TN_TOO_LARGE;
    write_header(w, MAGIC_CMD, TN_KIND_CMD);
    tn_wr_svarint(w, time_ms);
    tn_wr_varint(w, owner);
    tn_wr_raw(w, req, req_len);
    if (w->oom) {
        if (w->len > start) w->len = start;
        return TN_NOMEM;
    }
    return TN_SUCCESS;
}

int tn_cmd_decode(const void *buf, size_t len, tn_cmd *cmd)
{
    tn_rd r;
    memset(cmd, 0, sizeof *cmd);
    if (buf == NULL || len > TN_WIRE_MAX_MESSAGE + WIRE_MAX_CMD_HDR) goto fail;
    tn_rd_init(&r, buf, len);
    if (read_header(&r, MAGIC_CMD, TN_KIND_CMD) != 0) goto fail;
    int64_t time_ms = tn_rd_svarint(&r);
    uint64_t owner = tn_rd_varint(&r);
    size_t left = tn_rd_left(&r);
    if (r.err || left == 0 || left > TN_WIRE_MAX_MESSAGE) goto fail;
    cmd->time_ms = time_ms;
    cmd->owner = owner;
    cmd->req = r.p + r.off;
    cmd->req_len = left;
    return TN_SUCCESS;
fail:
    memset(cmd, 0, sizeof *cmd);
    return TN_BAD_REQUEST;
}
