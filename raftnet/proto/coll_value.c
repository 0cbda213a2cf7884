/* coll_value.c — SQLite-like values (ordering, hashing, encoding) and collection schemas (validation,
 * difference message, encoding). See coll_codec.h. */
#include <math.h>
#include <stdio.h>

#include "coll_codec.h"

/* ---- values -------------------------------------------------------------------------------------- */

static int type_class(int t)
{
    switch (t) {
    case TN_V_NULL: return 0;
    case TN_V_INT:
    case TN_V_REAL: return 1;
    case TN_V_TEXT: return 2;
    default: return 3;
    }
}

/* Exact comparison of an int64 with a (non-NaN) double, without rounding the integer. */
static int cmp_int_real(int64_t i, double r)
{
    if (r < -9223372036854775808.0) return 1;
    if (r >= 9223372036854775808.0) return -1;
    int64_t t = (int64_t)r; /* truncated toward zero, exact since |r| < 2^63 */
    if (i < t) return -1;
    if (i > t) return 1;
    double dt = (double)t; /* exact: t is r without its fraction */
    if (r > dt) return -1;
    if (r < dt) return 1;
    return 0;
}

int tn_val_cmp(const tn_val *a, const tn_val *b)
{
    int ca = type_class(a->type), cb = type_class(b->type);
    if (ca != cb) return ca < cb ? -1 : 1;
    switch (ca) {
    case 0: return 0;
    case 1:
        if (a->type == TN_V_INT && b->type == TN_V_INT) return (a->u.i > b->u.i) - (a->u.i < b->u.i);
        if (a->type == TN_V_REAL && b->type == TN_V_REAL) return (a->u.r > b->u.r) - (a->u.r < b->u.r);
        if (a->type == TN_V_INT) return cmp_int_real(a->u.i, b->u.r);
        return -cmp_int_real(b->u.i, a->u.r);
    default: {
        size_t n = a->n < b->n ? a->n : b->n;
        int c = n ? memcmp(a->u.p, b->u.p, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return (a->n > b->n) - (a->n < b->n);
    }
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t tn_val_hash(const tn_val *v)
{
    switch (v->type) {
    case TN_V_NULL: return 0x6e756c6cULL;
    case TN_V_INT: return mix64((uint64_t)v->u.i);
    case TN_V_REAL: {
        double r = v->u.r;
        /* integral doubles in int64 range hash as the integer they equal */
        if (r >= -9223372036854775808.0 && r < 9223372036854775808.0 && r == (double)(int64_t)r)
            return mix64((uint64_t)(int64_t)r);
        uint64_t bits;
        memcpy(&bits, &r, sizeof bits);
        return mix64(bits ^ 0x5245414cULL);
    }
    default: {
        uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)v->type;
        for (uint32_t k = 0; k < v->n; k++) h = (h ^ v->u.p[k]) * 0x100000001b3ULL;
        return mix64(h);
    }
    }
}

void tn_val_encode(const tn_val *v, tn_wr *w)
{
    tn_wr_u8(w, v->type);
    switch (v->type) {
    case TN_V_INT: tn_wr_svarint(w, v->u.i); break;
    case TN_V_REAL: {
        uint64_t bits;
        memcpy(&bits, &v->u.r, sizeof bits);
        tn_wr_u64(w, bits);
        break;
    }
    case TN_V_TEXT:
    case TN_V_BLOB: tn_wr_bytes(w, v->u.p, v->n); break;
    default: break;
    }
}

int tn_val_decode(tn_rd *r, size_t max_bytes, tn_val *out)
{
    memset(out, 0, sizeof *out);
    uint8_t t = tn_rd_u8(r);
    if (r->err) return -1;
    out->type = t;
    switch (t) {
    case TN_V_NULL: break;
    case TN_V_INT: out->u.i = tn_rd_svarint(r); break;
    case TN_V_REAL: {
        uint64_t bits = tn_rd_u64(r);
        memcpy(&out->u.r, &bits, sizeof bits);
        if (!r->err && isnan(out->u.r)) r->err = 1;
        break;
    }
    case TN_V_TEXT:
    case TN_V_BLOB: {
        size_t n;
        if (max_bytes > UINT32_MAX) max_bytes = UINT32_MAX;
        out->u.p = tn_rd_bytes(r, max_bytes, &n);
        out->n = (uint32_t)n;
        break;
    }
    default: r->err = 1; break;
    }
    return r->err ? -1 : 0;
}

void tn_val_format(const tn_val *v, char *buf, size_t cap)
{
    if (!cap) return;
    buf[0] = 0;
    switch (v->type) {
    case TN_V_NULL: snprintf(buf, cap, "NULL"); break;
    case TN_V_INT: snprintf(buf, cap, "%lld", (long long)v->u.i); break;
    case TN_V_REAL: snprintf(buf, cap, "%.17g", v->u.r); break;
    case TN_V_TEXT: {
        int n = v->n > 64 ? 64 : (int)v->n;
        snprintf(buf, cap, "'%.*s%s'", n, (const char *)v->u.p, v->n > 64 ? "..." : "");
        break;
    }
    default: {
        size_t o = 0;
        o += (size_t)snprintf(buf + o, cap - o, "x'");
        for (uint32_t k = 0; k < v->n && k < 32 && o + 3 < cap; k++)
            o += (size_t)snprintf(buf + o, cap - o, "%02x", v->u.p[k]);
        if (o < cap) snprintf(buf + o, cap - o, "%s'", v->n > 32 ? "..." : "");
        break;
    }
    }
}

/* ---- schema -------------------------------------------------------------------------------------- */

const char *tn_coll_type_name(int type)
{
    switch (type) {
    case TN_T_INTEGER: return "INTEGER";
    case TN_T_REAL: return "REAL";
    case TN_T_TEXT: return "TEXT";
    case TN_T_BLOB: return "BLOB";
    case TN_T_JSON: return "JSON";
    }
    return "UNKNOWN";
}

const char *tn_coll_role_name(int role)
{
    switch (role) {
    case TN_R_PLAIN: return "PLAIN";
    case TN_R_PK: return "PRIMARY KEY";
    case TN_R_HASH: return "INDEXED";
    case TN_R_ORDERED: return "ORDERED";
    }
    return "UNKNOWN";
}

static int ascii_lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

static int name_eq_nocase(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn) return 0;
    for (size_t k = 0; k < an; k++)
        if (ascii_lower((unsigned char)a[k]) != ascii_lower((unsigned char)b[k])) return 0;
    return 1;
}

int tn_coll_schema_validate(const tn_coll_schema *s, char *msg, size_t cap)
{
    size_t n_pk = 0, n_idx = 0;
    if (s->n_cols == 0 || s->n_cols > TN_COLL_MAX_COLS) {
        snprintf(msg, cap, "a collection needs 1 to %u columns, got %zu", TN_COLL_MAX_COLS, s->n_cols);
        return TN_CLIENT_REQ_ERROR;
    }
    if (s->compress > TN_COMPRESS_LZ4) {
        snprintf(msg, cap, "unknown compression %u", s->compress);
        return TN_CLIENT_REQ_ERROR;
    }
    for (size_t k = 0; k < s->n_cols; k++) {
        const tn_coll_column *c = &s->cols[k];
        int nl = c->name_len > 64 ? 64 : (int)c->name_len;
        if (c->name_len == 0 || c->name_len > TN_COLL_MAX_COL_NAME || !c->name) {
            snprintf(msg, cap, "column %zu: name must be 1 to %u bytes", k + 1, TN_COLL_MAX_COL_NAME);
            return TN_CLIENT_REQ_ERROR;
        }
        if (c->type < TN_T_INTEGER || c->type > TN_T_JSON) {
            snprintf(msg, cap, "column %zu: '%.*s' has an unknown type %u", k + 1, nl, c->name, c->type);
            return TN_CLIENT_REQ_ERROR;
        }
        if (c->role > TN_R_ORDERED) {
            snprintf(msg, cap, "column %zu: '%.*s' has an unknown role %u", k + 1, nl, c->name, c->role);
            return TN_CLIENT_REQ_ERROR;
        }
        if (c->role == TN_R_PK) {
            n_pk++;
            if (c->type != TN_T_INTEGER && c->type != TN_T_TEXT) {
                snprintf(msg, cap, "column %zu: primary key '%.*s' must be INTEGER or TEXT, not %s", k + 1, nl,
                         c->name, tn_coll_type_name(c->type));
                return TN_CLIENT_REQ_ERROR;
            }
        }
        if (c->role == TN_R_HASH || c->role == TN_R_ORDERED) {
            n_idx++;
            if (c->type == TN_T_JSON) {
                snprintf(msg, cap, "column %zu: JSON column '%.*s' cannot be indexed", k + 1, nl, c->name);
                return TN_CLIENT_REQ_ERROR;
            }
        }
        for (size_t j = 0; j < k; j++) {
            if (name_eq_nocase(s->cols[j].name, s->cols[j].name_len, c->name, c->name_len)) {
                snprintf(msg, cap, "column %zu: duplicate column name '%.*s'", k + 1, nl, c->name);
                return TN_CLIENT_REQ_ERROR;
            }
        }
    }
    if (n_pk != 1) {
        snprintf(msg, cap, "a collection needs exactly one PRIMARY KEY column, got %zu", n_pk);
        return TN_CLIENT_REQ_ERROR;
    }
    if (n_idx > TN_COLL_MAX_INDEXES) {
        snprintf(msg, cap, "at most %u indexed columns, got %zu", TN_COLL_MAX_INDEXES, n_idx);
        return TN_CLIENT_REQ_ERROR;
    }
    if (cap) msg[0] = 0;
    return TN_SUCCESS;
}

int tn_coll_schema_diff(const tn_coll_schema *here, const tn_coll_schema *stored, char *msg, size_t cap)
{
    size_t n = here->n_cols < stored->n_cols ? here->n_cols : stored->n_cols;
    for (size_t k = 0; k < n; k++) {
        const tn_coll_column *a = &here->cols[k], *b = &stored->cols[k];
        int al = a->name_len > 64 ? 64 : (int)a->name_len, bl = b->name_len > 64 ? 64 : (int)b->name_len;
        if (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len)) {
            snprintf(msg, cap, "column %zu: '%.*s' here but '%.*s' in the stored collection", k + 1, al, a->name,
                     bl, b->name);
            return 1;
        }
        if (a->type != b->type) {
            snprintf(msg, cap, "column %zu: '%.*s' is %s here but %s in the stored collection", k + 1, al,
                     a->name, tn_coll_type_name(a->type), tn_coll_type_name(b->type));
            return 1;
        }
        if (a->role != b->role) {
            snprintf(msg, cap, "column %zu: '%.*s' is %s here but %s in the stored collection", k + 1, al,
                     a->name, tn_coll_role_name(a->role), tn_coll_role_name(b->role));
            return 1;
        }
    }
    if (here->n_cols != stored->n_cols) {
        snprintf(msg, cap, "%zu columns here but %zu in the stored collection", here->n_cols, stored->n_cols);
        return 1;
    }
    if (here->compress != stored->compress) {
        snprintf(msg, cap, "compress=%s here but compress=%s in the stored collection",
                 here->compress ? "lz4" : "none", stored->compress ? "lz4" : "none");
        return 1;
    }
    if (cap) msg[0] = 0;
    return 0;
}

void tn_coll_schema_encode(const tn_coll_schema *s, tn_wr *w)
{
    tn_wr_u8(w, 'T');
    tn_wr_u8(w, 'S');
    tn_wr_u8(w, 1);
    tn_wr_u8(w, s->compress);
    tn_wr_varint(w, s->n_cols);
    for (size_t k = 0; k < s->n_cols; k++) {
        tn_wr_bytes(w, s->cols[k].name, s->cols[k].name_len);
        tn_wr_u8(w, s->cols[k].type);
        tn_wr_u8(w, s->cols[k].role);
    }
}

int tn_coll_schema_decode(tn_rd *r, tn_coll_schema *s)
{
    char msg[160];
    return tn_coll_schema_decode_msg(r, s, msg, sizeof msg);
}

int tn_coll_schema_decode_msg(tn_rd *r, tn_coll_schema *s, char *msg, size_t cap)
{
    memset(s, 0, sizeof *s);
    snprintf(msg, cap, "malformed schema");
    uint8_t m0 = tn_rd_u8(r), m1 = tn_rd_u8(r), ver = tn_rd_u8(r);
    s->compress = tn_rd_u8(r);
    uint64_t n = tn_rd_varint(r);
    if (r->err || m0 != 'T' || m1 != 'S' || ver != 1 || n == 0 || n > TN_COLL_MAX_COLS || n > tn_rd_left(r) / 3) {
        r->err = 1;
        return TN_CLIENT_REQ_ERROR;
    }
    s->cols = calloc((size_t)n, sizeof *s->cols);
    if (!s->cols) return TN_NOMEM;
    s->n_cols = (size_t)n;
    for (size_t k = 0; k < s->n_cols; k++) {
        s->cols[k].name = (const char *)tn_rd_bytes(r, TN_COLL_MAX_COL_NAME, &s->cols[k].name_len);
        s->cols[k].type = tn_rd_u8(r);
        s->cols[k].role = tn_rd_u8(r);
    }
    if (r->err || tn_coll_schema_validate(s, msg, cap) != TN_SUCCESS) {
        if (r->err) snprintf(msg, cap, "malformed schema");
        r->err = 1;
        tn_coll_schema_clear(s);
        return TN_CLIENT_REQ_ERROR;
    }
    return TN_SUCCESS;
}

void tn_coll_schema_clear(tn_coll_schema *s)
{
    free(s->cols);
    memset(s, 0, sizeof *s);
}

size_t tn_coll_schema_pk(const tn_coll_schema *s)
{
    for (size_t k = 0; k < s->n_cols; k++)
        if (s->cols[k].role == TN_R_PK) return k;
    return 0;
}

int tn_coll_schema_slot(const tn_coll_schema *s, size_t col)
{
    if (col >= s->n_cols) return -1;
    int slot = 0;
    for (size_t k = 0; k < col; k++)
        if (s->cols[k].role == TN_R_HASH || s->cols[k].role == TN_R_ORDERED) slot++;
    return s->cols[col].role == TN_R_HASH || s->cols[col].role == TN_R_ORDERED ? slot : -1;
}

size_t tn_coll_schema_n_idx(const tn_coll_schema *s)
{
    size_t n = 0;
    for (size_t k = 0; k < s->n_cols; k++)
        if (s->cols[k].role == TN_R_HASH || s->cols[k].role == TN_R_ORDERED) n++;
    return n;
}

int tn_coll_schema_copy(const tn_coll_schema *src, tn_coll_schema *dst, void **mem)
{
    size_t bytes = src->n_cols * sizeof(tn_coll_column);
    for (size_t k = 0; k < src->n_cols; k++) bytes += src->cols[k].name_len;
    uint8_t *m = malloc(bytes ? bytes : 1);
    if (!m) return TN_NOMEM;
    tn_coll_column *cols = (tn_coll_column *)(void *)m;
    char *names = (char *)(m + src->n_cols * sizeof(tn_coll_column));
    for (size_t k = 0; k < src->n_cols; k++) {
        cols[k] = src->cols[k];
        memcpy(names, src->cols[k].name, src->cols[k].name_len);
        cols[k].name = names;
        names += src->cols[k].name_len;
    }
    dst->n_cols = src->n_cols;
    dst->cols = cols;
    dst->compress = src->compress;
    *mem = m;
    return TN_SUCCESS;
}
