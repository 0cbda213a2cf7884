/* coll_vtab_plan.c — the planner of the `tarn` virtual table: xBestIndex, and the plan it hands xFilter
 * (parsed back by tn_collvt_plan_parse and turned into a query by tn_collvt_build_query).
 *
 * ---- Query plans: idxNum and idxStr --------------------------------------------------------------------
 * idxStr is both what EXPLAIN QUERY PLAN shows and the plan xFilter executes; xFilter parses it back:
 *
 *   idxStr  := kind [term (" AND " term)*] [" ORDER BY " col (" ASC" | " DESC")] [" LIMIT"] [" OFFSET"]
 *   kind    := "pk" | "hash" | "ordered" | "scan"     (the access the server is expected to pick; a label)
 *   term    := col "=?" | col "IS ?" | col " IN ?" | col " IS NULL" | col " IS NOT NULL"
 *            | col ">?" | col ">=?" | col "<?" | col "<=?" | col " LIKE ?" | col " GLOB ?"
 *   e.g.  "pk id=?"   "hash event_type=? AND event_date=?"   "ordered event_date>=? ORDER BY event_date DESC LIMIT"
 *
 * Terms take argv[0..n) in order, then LIMIT's and OFFSET's values. Column names are identifiers (checked
 * when declaring), so the string parses unambiguously.
 * idxNum carries colUsed, which decides what travels: bit 0 = the payload (some plain column is used),
 * bit 1+s = the value of index slot s (s < 29), bit 30 = every slot >= 29. The pk always travels.
 *
 * Pushed: = / IN (one request, sqlite3_vtab_in) / IS / IS NULL on the pk and index columns; IS NOT NULL on
 * index columns; < <= > >= (BETWEEN comes as two) on the pk and ORDERED columns; LIKE 'ab%' (ASCII nocase
 * prefix) and GLOB 'ab*' (case-sensitive prefix) on TEXT pk / ORDERED TEXT columns — these two are not
 * omitted, SQLite re-checks them. Constraints with a non-BINARY collation are not pushed. ORDER BY the pk
 * or one ORDERED column (optionally followed by the pk in the same direction), either direction, is
 * consumed. LIMIT/OFFSET are pushed only when every constraint of aConstraint is consumed with omit and
 * the ORDER BY (if any) is consumed. Costs come from the server's statistics (STATS, cached per table,
 * refreshed after this connection commits or every TN_COLL_STATS_TTL_MS) via tn_coll_estimate.
 * A query is ONE request: the whole answer comes from one revision of the store.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "coll_vtab_int.h"

#include <ctype.h>
#include <string.h>

#include "clock.h"
#include "tn_code.h"

#define TN_COLL_STATS_TTL_MS 5000
#define DEFAULT_IN_SIZE 10 /* IN list length assumed when planning */

/* Statistics for planning; failures leave have_stats = 0 (planning falls back to guesses). */
static void refresh_stats(coll_vtab *vt)
{
    int64_t now = tn_mono_ms();
    uint64_t commits = tn_txn_commits(vt->vb.txn);
    if (vt->have_stats && now - vt->stats_ms < TN_COLL_STATS_TTL_MS && commits == vt->stats_commits) return;
    tn_coll_query q = {.kind = TN_QUERY_STATS, .order_col = TN_QUERY_NO_ORDER};
    tn_wr buf;
    tn_resp resp;
    tn_coll_result res;
    tn_wr_init(&buf);
    char *saved = vt->vb.base.zErrMsg; /* planning must not leave a stale message behind */
    vt->vb.base.zErrMsg = NULL;
    if (tn_collvt_query(vt, &q, &buf, &resp, &res) == SQLITE_OK) {
        tn_coll_stats_clear(&vt->stats);
        vt->stats = res.stats; /* take the array */
        res.stats.idx = NULL;
        res.stats.n_idx = 0;
        vt->have_stats = 1;
        vt->stats_ms = now;
        vt->stats_commits = commits;
        tn_coll_result_clear(&res);
        tn_resp_clear(&resp);
    }
    sqlite3_free(vt->vb.base.zErrMsg);
    vt->vb.base.zErrMsg = saved;
    tn_wr_free(&buf);
}

static int is_ident_char(int c) { return c == '_' || isalnum(c) || (c & 0x80); }

static const char *term_text(int op)
{
    switch (op) {
    case T_EQ: return "=?";
    case T_IN: return " IN ?";
    case T_IS: return " IS ?";
    case T_ISNULL: return " IS NULL";
    case T_NOTNULL: return " IS NOT NULL";
    case T_GT: return ">?";
    case T_GE: return ">=?";
    case T_LT: return "<?";
    case T_LE: return "<=?";
    case T_LIKE: return " LIKE ?";
    case T_GLOB: return " GLOB ?";
    default: return "?";
    }
}

/* Prefix of a LIKE (nocase) or GLOB pattern before its first wildcard: its length in bytes. */
static size_t pattern_prefix(const unsigned char *p, size_t n, int glob)
{
    size_t i = 0;
    for (; i < n; i++) {
        unsigned char c = p[i];
        if (glob ? (c == '*' || c == '?' || c == '[') : (c == '%' || c == '_')) break;
    }
    return i;
}

static int find_col(const coll_vtab *vt, const char *name, size_t n)
{
    for (size_t c = 0; c < vt->schema.n_cols; c++)
        if (vt->schema.cols[c].name_len == n && sqlite3_strnicmp(vt->schema.cols[c].name, name, (int)n) == 0)
            return (int)c;
    return -1;
}

/* Next whitespace-separated word of s (at *pos); NULL at the end. */
static const char *next_word(const char *s, size_t *pos, size_t *len)
{
    size_t i = *pos;
    while (s[i] && isspace((unsigned char)s[i])) i++;
    if (!s[i]) return NULL;
    size_t start = i;
    while (s[i] && !isspace((unsigned char)s[i])) i++;
    *pos = i;
    *len = i - start;
    return s + start;
}

static int word_is(const char *w, size_t n, const char *lit)
{
    return w && strlen(lit) == n && sqlite3_strnicmp(w, lit, (int)n) == 0;
}

/* Parses an idxStr written by tn_collvt_best_index (grammar at the top). 0 or -1. */
int tn_collvt_plan_parse(const coll_vtab *vt, const char *s, plan *p)
{
    size_t pos = 0, n;
    const char *w;
    memset(p, 0, sizeof *p);
    p->order_col = -1;
    if (!s || !next_word(s, &pos, &n)) return -1; /* kind */
    int expect_term = 1;
    while ((w = next_word(s, &pos, &n)) != NULL) {
        size_t save = pos, n2 = 0;
        const char *w2 = next_word(s, &save, &n2);
        if (word_is(w, n, "ORDER") && word_is(w2, n2, "BY")) {
            pos = save;
            w = next_word(s, &pos, &n);
            if (!w || (p->order_col = find_col(vt, w, n)) < 0) return -1;
            w = next_word(s, &pos, &n);
            if (word_is(w, n, "DESC")) p->desc = 1;
            else if (!word_is(w, n, "ASC")) return -1;
            expect_term = 0;
            continue;
        }
        if (word_is(w, n, "LIMIT") && (!w2 || word_is(w2, n2, "OFFSET"))) { p->limit = 1; expect_term = 0; continue; }
        if (word_is(w, n, "OFFSET") && !w2) { p->offset = 1; continue; }
        if (word_is(w, n, "AND") && !expect_term) { expect_term = 1; continue; }
        if (!expect_term || p->n >= (int)TN_COLL_MAX_PREDS) return -1;
        /* A term: the name runs to the first non-identifier character. */
        size_t k = 0;
        while (k < n && is_ident_char((unsigned char)w[k])) k++;
        int col = find_col(vt, w, k);
        int op = 0;
        if (col < 0) return -1;
        if (k < n) {
            const char *o = w + k;
            size_t on = n - k;
            if (on == 2 && !memcmp(o, "=?", 2)) op = T_EQ;
            else if (on == 2 && !memcmp(o, ">?", 2)) op = T_GT;
            else if (on == 3 && !memcmp(o, ">=?", 3)) op = T_GE;
            else if (on == 2 && !memcmp(o, "<?", 2)) op = T_LT;
            else if (on == 3 && !memcmp(o, "<=?", 3)) op = T_LE;
            else return -1;
        } else {
            w = next_word(s, &pos, &n);
            w2 = next_word(s, &pos, &n2);
            if (word_is(w, n, "IN") && word_is(w2, n2, "?")) op = T_IN;
            else if (word_is(w, n, "LIKE") && word_is(w2, n2, "?")) op = T_LIKE;
            else if (word_is(w, n, "GLOB") && word_is(w2, n2, "?")) op = T_GLOB;
            else if (word_is(w, n, "IS") && word_is(w2, n2, "?")) op = T_IS;
            else if (word_is(w, n, "IS") && word_is(w2, n2, "NULL")) op = T_ISNULL;
            else if (word_is(w, n, "IS") && word_is(w2, n2, "NOT")) {
                w = next_word(s, &pos, &n);
                if (!word_is(w, n, "NULL")) return -1;
                op = T_NOTNULL;
            } else return -1;
        }
        p->t[p->n].col = col;
        p->t[p->n].op = op;
        p->n++;
        expect_term = 0;
    }
    return expect_term && p->n ? -1 : 0;
}

static int is_index_col(const coll_vtab *vt, int col)
{
    int r = vt->schema.cols[col].role;
    return r == TN_R_PK || r == TN_R_HASH || r == TN_R_ORDERED;
}

static int is_ordered_col(const coll_vtab *vt, int col)
{
    int r = vt->schema.cols[col].role;
    return r == TN_R_PK || r == TN_R_ORDERED;
}

int tn_collvt_best_index(sqlite3_vtab *base, sqlite3_index_info *info)
{
    coll_vtab *vt = (coll_vtab *)base;
    int argc = 0, limit_i = -1, offset_i = -1;
    plan p;
    tn_coll_pred_shape shapes[TN_COLL_MAX_PREDS];
    int best_rank = 0, best_col = -1; /* for the label: 4 pk eq, 3 index eq, 2 range/prefix, 1 other */

    memset(&p, 0, sizeof p);
    p.order_col = -1;
    refresh_stats(vt);
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable) continue;
        if (c->op == SQLITE_INDEX_CONSTRAINT_LIMIT) { limit_i = i; continue; }
        if (c->op == SQLITE_INDEX_CONSTRAINT_OFFSET) { offset_i = i; continue; }
        int col = c->iColumn;
        if (col < 0 || (size_t)col >= vt->schema.n_cols || p.n >= (int)TN_COLL_MAX_PREDS) continue;
        const char *coll = sqlite3_vtab_collation(info, i);
        int binary = !coll || sqlite3_stricmp(coll, "BINARY") == 0;
        int is_text = vt->schema.cols[col].type == TN_T_TEXT;
        int op = 0, rank = 1;
        switch (c->op) {
        case SQLITE_INDEX_CONSTRAINT_EQ:
            if (!is_index_col(vt, col) || !binary) break;
            op = sqlite3_vtab_in(info, i, -1) ? T_IN : T_EQ;
            rank = (size_t)col == vt->pk_col ? 4 : 3;
            break;
        case SQLITE_INDEX_CONSTRAINT_IS:
            if (!is_index_col(vt, col) || !binary) break;
            op = T_IS;
            rank = (size_t)col == vt->pk_col ? 4 : 3;
            break;
        case SQLITE_INDEX_CONSTRAINT_ISNULL:
            if (is_index_col(vt, col) && (size_t)col != vt->pk_col) op = T_ISNULL, rank = 3;
            break;
        case SQLITE_INDEX_CONSTRAINT_ISNOTNULL:
            if (is_index_col(vt, col) && (size_t)col != vt->pk_col) op = T_NOTNULL;
            break;
        case SQLITE_INDEX_CONSTRAINT_GT: if (is_ordered_col(vt, col) && binary) op = T_GT, rank = 2; break;
        case SQLITE_INDEX_CONSTRAINT_GE: if (is_ordered_col(vt, col) && binary) op = T_GE, rank = 2; break;
        case SQLITE_INDEX_CONSTRAINT_LT: if (is_ordered_col(vt, col) && binary) op = T_LT, rank = 2; break;
        case SQLITE_INDEX_CONSTRAINT_LE: if (is_ordered_col(vt, col) && binary) op = T_LE, rank = 2; break;
        case SQLITE_INDEX_CONSTRAINT_LIKE:
        case SQLITE_INDEX_CONSTRAINT_GLOB: {
            if (!is_ordered_col(vt, col) || !is_text) break;
            int glob = c->op == SQLITE_INDEX_CONSTRAINT_GLOB;
            sqlite3_value *rhs = NULL;
            if (sqlite3_vtab_rhs_value(info, i, &rhs) == SQLITE_OK && rhs) {
                /* Known pattern: push only when it has a literal prefix. */
                if (sqlite3_value_type(rhs) != SQLITE_TEXT) break;
                if (pattern_prefix(sqlite3_value_text(rhs), (size_t)sqlite3_value_bytes(rhs), glob) == 0) break;
            }
            op = glob ? T_GLOB : T_LIKE;
            rank = 2;
            break;
        }
        default:
            break;
        }
        if (!op) continue;
        info->aConstraintUsage[i].argvIndex = ++argc;
        info->aConstraintUsage[i].omit = op != T_LIKE && op != T_GLOB;
        if (op == T_IN) sqlite3_vtab_in(info, i, 1);
        shapes[p.n].column = (uint32_t)col;
        shapes[p.n].n_in = 0;
        shapes[p.n].has_lo = shapes[p.n].has_hi = 0;
        switch (op) {
        case T_EQ: case T_IS: shapes[p.n].op = TN_PRED_EQ; break;
        case T_IN: shapes[p.n].op = TN_PRED_IN; shapes[p.n].n_in = DEFAULT_IN_SIZE; break;
        case T_ISNULL: shapes[p.n].op = TN_PRED_IS_NULL; break;
        case T_NOTNULL: shapes[p.n].op = TN_PRED_NOT_NULL; break;
        case T_GT: case T_GE: shapes[p.n].op = TN_PRED_RANGE; shapes[p.n].has_lo = 1; break;
        case T_LT: case T_LE: shapes[p.n].op = TN_PRED_RANGE; shapes[p.n].has_hi = 1; break;
        default: shapes[p.n].op = TN_PRED_PREFIX; break;
        }
        p.t[p.n].col = col;
        p.t[p.n].op = op;
        p.n++;
        if (rank > best_rank) {
            best_rank = rank;
            best_col = col;
        }
    }

    /* ORDER BY: the pk, or one ORDERED column optionally followed by the pk in the same direction. */
    if (info->nOrderBy >= 1) {
        int c0 = info->aOrderBy[0].iColumn, d0 = info->aOrderBy[0].desc;
        int ok = 0;
        if (c0 >= 0 && (size_t)c0 == vt->pk_col) ok = 1;
        else if (c0 >= 0 && is_ordered_col(vt, c0))
            ok = info->nOrderBy == 1 || (info->nOrderBy == 2 && info->aOrderBy[1].iColumn >= 0 &&
                                         (size_t)info->aOrderBy[1].iColumn == vt->pk_col &&
                                         info->aOrderBy[1].desc == d0);
        if (ok) {
            p.order_col = c0;
            p.desc = d0;
            info->orderByConsumed = 1;
        }
    }

    /* LIMIT/OFFSET only when nothing is left for SQLite to filter and the order is ours. */
    int all_consumed = 1;
    for (int i = 0; i < info->nConstraint; i++) {
        int op = info->aConstraint[i].op;
        if (op == SQLITE_INDEX_CONSTRAINT_LIMIT || op == SQLITE_INDEX_CONSTRAINT_OFFSET) continue;
        if (info->aConstraintUsage[i].argvIndex <= 0 || !info->aConstraintUsage[i].omit) all_consumed = 0;
    }
    uint64_t limit_hint = 0;
    if (limit_i >= 0 && all_consumed && (info->nOrderBy == 0 || info->orderByConsumed)) {
        int offset_ok = 1;
        for (int i = 0; i < info->nConstraint; i++)
            if (info->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_OFFSET && i != offset_i) offset_ok = 0;
        if (offset_ok) {
            info->aConstraintUsage[limit_i].argvIndex = ++argc;
            info->aConstraintUsage[limit_i].omit = 1;
            p.limit = 1;
            if (offset_i >= 0) {
                info->aConstraintUsage[offset_i].argvIndex = ++argc;
                info->aConstraintUsage[offset_i].omit = 1;
                p.offset = 1;
            }
            sqlite3_value *lv = NULL;
            if (sqlite3_vtab_rhs_value(info, limit_i, &lv) == SQLITE_OK && lv && sqlite3_value_int64(lv) > 0)
                limit_hint = (uint64_t)sqlite3_value_int64(lv);
        }
    }

    /* Costs from the server's statistics. */
    double rows = 1000, cost = 1000;
    if (vt->have_stats &&
        tn_coll_estimate(&vt->schema, &vt->stats, shapes, (size_t)p.n, p.order_col < 0 ? TN_QUERY_NO_ORDER : p.order_col,
                         limit_hint, &rows, &cost) == TN_SUCCESS) {
        /* estimates in hand */
    } else {
        for (int k = 0; k < p.n; k++) {
            rows /= p.t[k].op == T_EQ || p.t[k].op == T_IN || p.t[k].op == T_IS ? 10 : 3;
        }
        cost = rows;
    }
    for (int k = 0; k < p.n; k++) {
        if ((size_t)p.t[k].col == vt->pk_col && (p.t[k].op == T_EQ || p.t[k].op == T_IS)) {
            info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
            rows = 1;
            cost = 1;
        }
    }
    if (rows < 1) rows = 1;
    info->estimatedRows = (sqlite3_int64)rows;
    info->estimatedCost = 20.0 + cost + rows * 0.1; /* a round trip, the server's work, the transfer */

    /* colUsed -> what travels. */
    int want = 0;
    uint64_t used = info->colUsed;
    for (size_t c = 0; c < vt->schema.n_cols; c++) {
        int is_used = c >= 63 ? (used >> 63) & 1 : (used >> c) & 1;
        if (!is_used) continue;
        if (vt->plain_of[c] >= 0) want |= 1;
        else if (vt->slot_of[c] >= 0) want |= vt->slot_of[c] < 29 ? 1 << (1 + vt->slot_of[c]) : 1 << 30;
    }
    info->idxNum = want;

    /* idxStr: the label and the terms. */
    const char *kind = "scan";
    if (best_col >= 0) {
        kind = (size_t)best_col == vt->pk_col ? "pk"
               : vt->schema.cols[best_col].role == TN_R_HASH ? "hash" : "ordered";
    } else if (p.order_col >= 0) {
        kind = (size_t)p.order_col == vt->pk_col ? "pk" : "ordered";
    }
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendall(s, kind);
    for (int k = 0; k < p.n; k++)
        sqlite3_str_appendf(s, "%s%s%s", k ? " AND " : " ", vt->schema.cols[p.t[k].col].name, term_text(p.t[k].op));
    if (p.order_col >= 0)
        sqlite3_str_appendf(s, " ORDER BY %s %s", vt->schema.cols[p.order_col].name, p.desc ? "DESC" : "ASC");
    if (p.limit) sqlite3_str_appendall(s, " LIMIT");
    if (p.offset) sqlite3_str_appendall(s, " OFFSET");
    info->idxStr = sqlite3_str_finish(s);
    if (!info->idxStr) return SQLITE_NOMEM;
    info->needToFreeIdxStr = 1;
    return SQLITE_OK;
}

/* Builds the query for the plan and argv; *empty = 1 when no row can match (no request needed). */
int tn_collvt_build_query(coll_vtab *vt, const plan *p, int idx_num, int argc, sqlite3_value **argv, arena *a,
                          tn_coll_pred *preds, tn_coll_query *q, int *empty)
{
    int ai = 0, rc;
    size_t np = 0;
    *empty = 0;
    memset(q, 0, sizeof *q);
    q->kind = TN_QUERY_SELECT;
    q->order_col = p->order_col < 0 ? TN_QUERY_NO_ORDER : p->order_col;
    q->order_desc = (uint8_t)p->desc;
    q->want_payload = (uint8_t)(idx_num & 1);
    for (size_t s = 0; s < vt->n_idx; s++)
        if (s < 29 ? (idx_num >> (1 + s)) & 1 : (idx_num >> 30) & 1) q->idx_mask |= 1ull << s;
    if (argc < p->n + p->limit + p->offset) return SQLITE_ERROR;

    for (int k = 0; k < p->n; k++) {
        const plan_term *t = &p->t[k];
        sqlite3_value *v = argv[ai++];
        int aff = tn_collvt_affinity(vt->schema.cols[t->col].type);
        tn_coll_pred *pr = &preds[np];
        memset(pr, 0, sizeof *pr);
        pr->column = (uint32_t)t->col;
        switch (t->op) {
        case T_EQ:
        case T_IS:
            if (sqlite3_value_type(v) == SQLITE_NULL) {
                /* = NULL matches nothing; the pk is never NULL */
                if (t->op == T_EQ || (size_t)t->col == vt->pk_col) { *empty = 1; return SQLITE_OK; }
                pr->op = TN_PRED_IS_NULL;
                break;
            }
            pr->op = TN_PRED_EQ;
            if ((rc = tn_collvt_to_val(v, aff, a, &pr->v))) return rc;
            break;
        case T_IN: {
            size_t cap = 16, n = 0;
            tn_val *vals = tn_collvt_arena_alloc(a, cap * sizeof *vals);
            sqlite3_value *item = NULL;
            if (!vals) return SQLITE_NOMEM;
            for (rc = sqlite3_vtab_in_first(v, &item); rc == SQLITE_OK && item; rc = sqlite3_vtab_in_next(v, &item)) {
                if (sqlite3_value_type(item) == SQLITE_NULL) continue; /* x IN (NULL) never matches */
                if (n == cap) {
                    tn_val *grown = tn_collvt_arena_alloc(a, cap * 2 * sizeof *grown);
                    if (!grown) return SQLITE_NOMEM;
                    memcpy(grown, vals, n * sizeof *vals);
                    vals = grown;
                    cap *= 2;
                }
                if ((rc = tn_collvt_to_val(item, aff, a, &vals[n]))) return rc;
                n++;
            }
            if (rc != SQLITE_OK && rc != SQLITE_DONE) return rc;
            if (n == 0) { *empty = 1; return SQLITE_OK; }
            pr->op = TN_PRED_IN;
            pr->in = vals;
            pr->n_in = n;
            break;
        }
        case T_ISNULL: pr->op = TN_PRED_IS_NULL; break;
        case T_NOTNULL: pr->op = TN_PRED_NOT_NULL; break;
        case T_GT: case T_GE: case T_LT: case T_LE: {
            tn_val b;
            if (sqlite3_value_type(v) == SQLITE_NULL) { *empty = 1; return SQLITE_OK; }
            if ((rc = tn_collvt_to_val(v, aff, a, &b))) return rc;
            pr->op = TN_PRED_RANGE;
            if (t->op == T_GT || t->op == T_GE) {
                pr->lo_kind = t->op == T_GT ? TN_BOUND_EXCL : TN_BOUND_INCL;
                pr->lo = b;
            } else {
                pr->hi_kind = t->op == T_LT ? TN_BOUND_EXCL : TN_BOUND_INCL;
                pr->hi = b;
            }
            break;
        }
        case T_LIKE:
        case T_GLOB: {
            if (sqlite3_value_type(v) == SQLITE_NULL) { *empty = 1; return SQLITE_OK; }
            if (sqlite3_value_type(v) != SQLITE_TEXT) continue; /* SQLite checks it */
            const unsigned char *pat = sqlite3_value_text(v);
            size_t n = pattern_prefix(pat, (size_t)sqlite3_value_bytes(v), t->op == T_GLOB);
            if (n == 0) continue;
            const uint8_t *copy;
            if (tn_collvt_arena_copy(a, pat, n, &copy)) return SQLITE_NOMEM;
            pr->op = TN_PRED_PREFIX;
            pr->prefix = copy;
            pr->prefix_len = n;
            pr->nocase = t->op == T_LIKE;
            break;
        }
        default:
            return SQLITE_ERROR;
        }
        np++;
    }
    if (p->limit) {
        sqlite3_int64 l = sqlite3_value_int64(argv[ai++]);
        if (l >= 0) {
            q->has_limit = 1;
            q->limit = (uint64_t)l;
        }
    }
    if (p->offset) {
        sqlite3_int64 o = sqlite3_value_int64(argv[ai++]);
        if (o > 0) {
            q->has_offset = 1;
            q->offset = (uint64_t)o;
        }
    }
    if (q->has_limit && q->limit == 0) *empty = 1;
    q->preds = preds;
    q->n_preds = np;
    return SQLITE_OK;
}

