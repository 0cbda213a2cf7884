/* lincheck.c — Wing–Gong / Lowe linearizability search for per-key register histories (see lincheck.h).
 *
 * The history is partitioned by key (a register per key is independent, so the whole history is
 * linearizable iff every key's sub-history is). Per key, the ops become a time-ordered doubly linked list of
 * call and return events. The search walks the list from its head: a call event is a candidate to be
 * linearized next; reaching a return event means that op (not yet linearized) must come before anything
 * invoked later, so no later call may be tried — this is the standard pruning "only ops invoked before the
 * earliest pending completion". Linearizing an op unlinks its events (dancing links) and pushes it on an
 * explicit stack; being stuck pops the stack and tries the next candidate. A memo of configurations
 * (linearized ops, register value) skips those already explored (see lc_memo). A completed op that never
 * changes the register (read, failed CAS) is taken without branching as soon as it is possible.
 *
 * Real time: op A precedes op B only if A.complete < B.invoke; equal times count as concurrent (calls are
 * ordered before returns at the same instant), which never reports a false violation for an op sent in
 * the same tick another completed.
 *
 * Unknown-outcome ops have no return event: they may be linearized anywhere after their call, or never.
 * An unknown read constrains nothing and is dropped; an unknown write/CAS is tried only where it enables
 * the next op (lc_unknown_useful). Failed ops are dropped. The search succeeds once every completed op is
 * linearized.
 *
 * Cost: with a fresh value per write (recommended for simulator clients) a few hundred ops and ten clients
 * check in milliseconds, valid or not. Many equal values plus many unknown-outcome ops is the expensive
 * case (the search must try which timed-out write took effect where); max_steps bounds it.
 */
#include "lincheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LC_DEFAULT_STEPS 10000000ull
#define LC_MEMO_MAX_BYTES (512ull << 20) /* beyond this the search gives up rather than exhaust memory */

typedef struct lc_event {
    int prev, next;
    int op;       /* index into the key's op table */
    int is_call;
    int ret;      /* call events: index of the matching return event, -1 if the op has none */
} lc_event;

typedef struct lc_frame {
    int call;      /* the call event that was linearized */
    int forced;    /* taken without alternatives: on backtrack, keep backtracking */
    uint32_t rec;  /* memo record of the configuration it led to */
    int64_t saved; /* the register value before it */
} lc_frame;

/* The memo. A configuration is (completed ops linearized: cbits, register value, unknown-outcome ops
 * linearized: ubits). Configurations with the same (cbits, value) share a chain; one whose ubits is a
 * superset of a configuration already found to fail fails too (it can do nothing the other cannot: the
 * extra unknown ops need not have been linearized, and they constrain no one), so it is pruned. Only
 * failed ones prune by subset: an ancestor still being explored is reached again only with more ubits.
 * Record layout, in uint64 words: cbits[cwords], value, ubits[uwords], meta (next in chain + 1 in the low
 * 32 bits, LC_REC_FAILED). Slots of the open-addressing table hold a chain head (record index + 1). */
#define LC_REC_FAILED (1ull << 32)

typedef struct lc_memo {
    size_t cwords, uwords;
    uint64_t *recs;
    size_t nrecs, cap_recs;
    uint32_t *slots;  /* 0 = empty */
    size_t nslots;    /* power of two */
    size_t nchains;
    size_t bytes;
} lc_memo;

typedef struct lc_key_run {
    const lc_op **ops; /* this key's ops: completed ones first, then unknown ones (failed, unknown reads
                          dropped) */
    int n;
    int completed;     /* how many have outcome LC_OK (they must all be linearized) */
    lc_event *ev;      /* 0 = head sentinel, then 2 per op at most */
    int nev;
    lc_frame *stack;
    uint64_t *cbits, *ubits;
    lc_memo memo;
} lc_key_run;

static uint64_t lc_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t lc_hash(const uint64_t *cbits, size_t words, int64_t value)
{
    uint64_t h = lc_mix((uint64_t)value ^ 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < words; i++) h = lc_mix(h ^ cbits[i]) + i;
    return h;
}

static size_t lc_rec_words(const lc_memo *m) { return m->cwords + 1 + m->uwords + 1; }

static uint64_t *lc_rec(const lc_memo *m, size_t r) { return m->recs + r * lc_rec_words(m); }

static int lc_memo_grow(lc_memo *m)
{
    size_t nslots = m->nslots ? m->nslots * 2 : 1024;
    if (m->bytes + nslots * sizeof(uint32_t) > LC_MEMO_MAX_BYTES || nslots > UINT32_MAX) return -1;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return -1;
    for (size_t s = 0; s < m->nslots; s++) {
        if (!m->slots[s]) continue;
        const uint64_t *p = lc_rec(m, m->slots[s] - 1);
        size_t i = lc_hash(p, m->cwords, (int64_t)p[m->cwords]) & (nslots - 1);
        while (slots[i]) i = (i + 1) & (nslots - 1);
        slots[i] = m->slots[s];
    }
    m->bytes = m->bytes - m->nslots * sizeof(uint32_t) + nslots * sizeof(uint32_t);
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
    return 0;
}

static int lc_subset(const uint64_t *a, const uint64_t *b, size_t words)
{
    for (size_t i = 0; i < words; i++)
        if (a[i] & ~b[i]) return 0;
    return 1;
}

/* Records the configuration (cbits, value, ubits) unless it was seen or is dominated by a failed one.
 * Returns 1 and sets *rec if recorded, 0 if it need not be explored, -1 on the memory limit. */
static int lc_memo_add(lc_memo *m, const uint64_t *cbits, int64_t value, const uint64_t *ubits,
                       uint32_t *rec)
{
    if ((m->nchains + 1) * 2 > m->nslots && lc_memo_grow(m) != 0) return -1;
    size_t i = lc_hash(cbits, m->cwords, value) & (m->nslots - 1);
    uint32_t head = 0;
    while (m->slots[i]) {
        const uint64_t *p = lc_rec(m, m->slots[i] - 1);
        if ((int64_t)p[m->cwords] == value && memcmp(p, cbits, m->cwords * sizeof *cbits) == 0) {
            head = m->slots[i];
            break;
        }
        i = (i + 1) & (m->nslots - 1);
    }
    for (uint32_t r = head; r; r = (uint32_t)lc_rec(m, r - 1)[m->cwords + 1 + m->uwords]) {
        const uint64_t *p = lc_rec(m, r - 1);
        const uint64_t *u = p + m->cwords + 1;
        int failed = (p[m->cwords + 1 + m->uwords] & LC_REC_FAILED) != 0;
        if (failed ? lc_subset(u, ubits, m->uwords) : memcmp(u, ubits, m->uwords * sizeof *u) == 0) return 0;
    }
    if (m->nrecs == m->cap_recs) {
        size_t cap = m->cap_recs ? m->cap_recs * 2 : 1024;
        size_t add = (cap - m->cap_recs) * lc_rec_words(m) * sizeof(uint64_t);
        if (m->bytes + add > LC_MEMO_MAX_BYTES || cap >= UINT32_MAX) return -1;
        uint64_t *recs = realloc(m->recs, cap * lc_rec_words(m) * sizeof(uint64_t));
        if (!recs) return -1;
        m->recs = recs;
        m->cap_recs = cap;
        m->bytes += add;
    }
    uint64_t *p = lc_rec(m, m->nrecs);
    memcpy(p, cbits, m->cwords * sizeof *cbits);
    p[m->cwords] = (uint64_t)value;
    memcpy(p + m->cwords + 1, ubits, m->uwords * sizeof *ubits);
    p[m->cwords + 1 + m->uwords] = head;
    m->slots[i] = (uint32_t)(++m->nrecs);
    if (!head) m->nchains++;
    *rec = (uint32_t)(m->nrecs - 1);
    return 1;
}

static void lc_memo_mark_failed(lc_memo *m, uint32_t rec)
{
    lc_rec(m, rec)[m->cwords + 1 + m->uwords] |= LC_REC_FAILED;
}

static void lc_memo_free(lc_memo *m)
{
    free(m->recs);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* Applies op to the register value `cur`. Returns 1 and sets *next if the op may take effect now with the
 * result it reported; 0 if it may not (or, for an unknown op, if taking effect would change nothing). */
static int lc_apply(const lc_op *op, int64_t cur, int64_t *next)
{
    *next = cur;
    switch (op->kind) {
    case LC_WRITE:
        *next = op->arg;
        return op->outcome == LC_OK || op->arg != cur;
    case LC_READ:
        return op->result == cur;
    case LC_CAS:
        if (op->outcome == LC_UNKNOWN) {
            if (cur != op->arg || op->arg2 == cur) return 0;
            *next = op->arg2;
            return 1;
        }
        if (op->result != 0) {
            if (cur != op->arg) return 0;
            *next = op->arg2;
            return 1;
        }
        return cur != op->arg;
    }
    return 0;
}

/* True for a completed op that leaves the register unchanged wherever it is linearized. */
static int lc_is_pure(const lc_op *op)
{
    if (op->outcome != LC_OK) return 0;
    return op->kind == LC_READ || (op->kind == LC_CAS && (op->result == 0 || op->arg == op->arg2));
}

static const char *lc_kind_name(lc_kind k)
{
    return k == LC_WRITE ? "write" : k == LC_READ ? "read" : k == LC_CAS ? "cas" : "?";
}

static void lc_describe(const lc_op *op, char *buf, size_t len)
{
    char res[48];
    if (op->outcome == LC_UNKNOWN) snprintf(res, sizeof res, "unknown");
    else if (op->kind == LC_WRITE) snprintf(res, sizeof res, "ok");
    else if (op->kind == LC_CAS) snprintf(res, sizeof res, "%s", op->result ? "swapped" : "not swapped");
    else snprintf(res, sizeof res, "%" PRId64, op->result);
    char args[64];
    if (op->kind == LC_WRITE) snprintf(args, sizeof args, "(%" PRId64 ")", op->arg);
    else if (op->kind == LC_CAS) snprintf(args, sizeof args, "(%" PRId64 " -> %" PRId64 ")", op->arg, op->arg2);
    else args[0] = 0;
    if (op->outcome == LC_UNKNOWN)
        snprintf(buf, len, "client %d %s%s -> %s [%" PRIu64 "..?]", op->client, lc_kind_name(op->kind), args,
                 res, op->invoke);
    else
        snprintf(buf, len, "client %d %s%s -> %s [%" PRIu64 "..%" PRIu64 "]", op->client,
                 lc_kind_name(op->kind), args, res, op->invoke, op->complete);
}

typedef struct lc_ev_sort {
    uint64_t time;
    int is_call;
    int op;
} lc_ev_sort;

static int lc_ev_cmp(const void *a, const void *b)
{
    const lc_ev_sort *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    if (x->is_call != y->is_call) return x->is_call ? -1 : 1; /* equal times: concurrent */
    return x->op < y->op ? -1 : x->op > y->op;
}

static void lc_unlink(lc_event *ev, int e)
{
    ev[ev[e].prev].next = ev[e].next;
    ev[ev[e].next].prev = ev[e].prev;
}

static void lc_relink(lc_event *ev, int e)
{
    ev[ev[e].prev].next = e;
    ev[ev[e].next].prev = e;
}

/* Builds the event list. The list is circular through the sentinel 0. Returns 0, or -1 on allocation. */
static int lc_build_events(lc_key_run *k)
{
    lc_ev_sort *tmp = malloc(sizeof *tmp * (size_t)(2 * k->n + 1));
    k->ev = malloc(sizeof *k->ev * (size_t)(2 * k->n + 1));
    int *call_of = malloc(sizeof *call_of * (size_t)(k->n + 1));
    if (!tmp || !k->ev || !call_of) goto fail;
    int m = 0;
    for (int i = 0; i < k->n; i++) {
        const lc_op *op = k->ops[i];
        tmp[m++] = (lc_ev_sort){ op->invoke, 1, i };
        if (op->outcome == LC_OK) {
            uint64_t done = op->complete < op->invoke ? op->invoke : op->complete;
            tmp[m++] = (lc_ev_sort){ done, 0, i };
        }
    }
    qsort(tmp, (size_t)m, sizeof *tmp, lc_ev_cmp);
    k->nev = m + 1;
    k->ev[0] = (lc_event){ m, m ? 1 : 0, -1, 0, -1 };
    for (int i = 0; i < m; i++) {
        int e = i + 1;
        k->ev[e] = (lc_event){ e - 1, e == m ? 0 : e + 1, tmp[i].op, tmp[i].is_call, -1 };
        if (tmp[i].is_call) call_of[tmp[i].op] = e;
        else k->ev[call_of[tmp[i].op]].ret = e;
    }
    free(tmp);
    free(call_of);
    return 0;
fail:
    free(tmp);
    free(call_of);
    return -1;
}

static void lc_flip(lc_key_run *k, int op)
{
    if (op < k->completed) k->cbits[op / 64] ^= 1ull << (op % 64);
    else k->ubits[(op - k->completed) / 64] ^= 1ull << ((op - k->completed) % 64);
}

/* Linearizes the op of call event e (register goes from `state` to `next`) unless the resulting
 * configuration need not be explored. Returns 1 if done, 0 if not needed, -1 on the memory limit. */
static int lc_linearize(lc_key_run *k, int e, int64_t state, int64_t next, int forced, int *depth,
                        int *remaining)
{
    lc_event *ev = k->ev;
    int op = ev[e].op;
    uint32_t rec = 0;
    lc_flip(k, op);
    int added = lc_memo_add(&k->memo, k->cbits, next, k->ubits, &rec);
    if (added <= 0) {
        lc_flip(k, op);
        return added;
    }
    k->stack[(*depth)++] = (lc_frame){ e, forced, rec, state };
    lc_unlink(ev, e);
    if (ev[e].ret >= 0) { lc_unlink(ev, ev[e].ret); (*remaining)--; }
    return 1;
}

/* An unknown-outcome op U (call event e, register state -> next) is worth linearizing now only if it is
 * the first of the identical pending unknown ops (they are interchangeable: all stay available forever) and
 * it enables something: a completed op in the window that is impossible now but possible after U, or an
 * unknown CAS that would then change the register. Why this loses nothing: in a valid order, an unknown op
 * followed by a write can be dropped (it is overwritten), one at the end can be dropped, and one followed
 * by an op that was possible without it either makes U a no-op or that op leaves the register as it was
 * (a read, a failed CAS), so U can move after it; repeating, every unknown op left sits right before an op
 * it enables. */
static int lc_unknown_useful(const lc_key_run *k, int e, int64_t state, int64_t next)
{
    const lc_event *ev = k->ev;
    const lc_op *u = k->ops[ev[e].op];
    for (int x = ev[0].next; x != e; x = ev[x].next) {
        const lc_op *o = k->ops[ev[x].op];
        if (ev[x].is_call && o->outcome == LC_UNKNOWN && o->kind == u->kind && o->arg == u->arg &&
            (u->kind != LC_CAS || o->arg2 == u->arg2))
            return 0;
    }
    for (int x = ev[0].next; x != 0 && ev[x].is_call; x = ev[x].next) {
        if (x == e) continue;
        const lc_op *o = k->ops[ev[x].op];
        int64_t ignored;
        if (o->outcome == LC_OK) {
            if (!lc_apply(o, state, &ignored) && lc_apply(o, next, &ignored)) return 1;
        } else if (o->kind == LC_CAS && o->arg == next && o->arg2 != next) {
            return 1;
        }
    }
    return 0;
}

static int lc_completed_first(const void *a, const void *b)
{
    const lc_op *x = *(const lc_op *const *)a, *y = *(const lc_op *const *)b;
    int xo = x->outcome == LC_OK, yo = y->outcome == LC_OK;
    if (xo != yo) return yo - xo;
    if (x->invoke != y->invoke) return x->invoke < y->invoke ? -1 : 1;
    return x < y ? -1 : x > y;
}

static lc_verdict lc_check_key(lc_key_run *k, int64_t initial, uint64_t max_steps, char *why, size_t why_len)
{
    lc_verdict verdict = LC_GAVE_UP;
    uint64_t steps = 0;
    qsort(k->ops, (size_t)k->n, sizeof *k->ops, lc_completed_first);
    k->memo.cwords = ((size_t)k->completed + 63) / 64;
    k->memo.uwords = ((size_t)(k->n - k->completed) + 63) / 64;
    k->cbits = calloc(k->memo.cwords + 1, sizeof *k->cbits);
    k->ubits = calloc(k->memo.uwords + 1, sizeof *k->ubits);
    k->stack = malloc(sizeof *k->stack * (size_t)(k->n + 1));
    if (!k->cbits || !k->ubits || !k->stack || lc_build_events(k) != 0) goto done;

    lc_event *ev = k->ev;
    int64_t state = initial;
    int depth = 0;
    int remaining = k->completed;
    int best_depth = -1, best_op = -1;
    int64_t best_state = initial;
    int e;
new_config:
    if (remaining == 0) { verdict = LC_LINEARIZABLE; goto done; }
    /* A completed op that never changes the register wherever it is placed (a read, a failed CAS) and is
     * possible now can always go first: any linearization placing it later stays valid with it moved
     * here. So take it without branching; if that fails, this configuration fails. (A write of the
     * current value does not qualify: later in the order it may be what sets the register.) */
    for (e = ev[0].next; e != 0 && ev[e].is_call; e = ev[e].next) {
        const lc_op *op = k->ops[ev[e].op];
        int64_t next;
        if (!lc_is_pure(op) || !lc_apply(op, state, &next)) continue;
        if (++steps > max_steps) goto done;
        int added = lc_linearize(k, e, state, next, 1, &depth, &remaining);
        if (added < 0) goto done;
        if (added == 0) goto backtrack;
        goto new_config;
    }
    e = ev[0].next;
    for (;;) {
        if (e != 0 && ev[e].is_call) {
            if (++steps > max_steps) goto done;
            int64_t next;
            const lc_op *op = k->ops[ev[e].op];
            if (lc_apply(op, state, &next) &&
                (op->outcome == LC_OK || lc_unknown_useful(k, e, state, next))) {
                int added = lc_linearize(k, e, state, next, 0, &depth, &remaining);
                if (added < 0) goto done;
                if (added) { state = next; goto new_config; }
            }
            e = ev[e].next;
            continue;
        }
        /* A pending completion (or the end of the list): nothing invoked later may go first. */
        if (depth > best_depth) {
            best_depth = depth;
            best_op = e != 0 ? ev[e].op : -1;
            best_state = state;
        }
    backtrack:
        for (;;) {
            if (depth == 0) { verdict = LC_VIOLATION; goto report; }
            lc_frame f = k->stack[--depth];
            lc_memo_mark_failed(&k->memo, f.rec);
            lc_flip(k, ev[f.call].op);
            state = f.saved;
            if (ev[f.call].ret >= 0) { lc_relink(ev, ev[f.call].ret); remaining++; }
            lc_relink(ev, f.call);
            e = ev[f.call].next;
            if (!f.forced) break;
        }
    }
report:
    if (why && why_len) {
        char desc[256];
        if (best_op >= 0) lc_describe(k->ops[best_op], desc, sizeof desc);
        else snprintf(desc, sizeof desc, "?");
        snprintf(why, why_len,
                 "key %" PRIu64 ": not linearizable: after at most %d of %d ops, %s cannot be placed "
                 "(register holds %" PRId64 ")",
                 k->ops[0]->key, best_depth, k->n, desc, best_state);
    }
done:
    if (verdict == LC_GAVE_UP && why && why_len && why[0] == 0)
        snprintf(why, why_len, "key %" PRIu64 ": gave up after %" PRIu64 " steps (%d ops, %zu configurations)",
                 k->ops[0]->key, steps, k->n, k->memo.nrecs);
    free(k->ev);
    free(k->stack);
    free(k->cbits);
    free(k->ubits);
    lc_memo_free(&k->memo);
    k->ev = NULL;
    k->stack = NULL;
    k->cbits = k->ubits = NULL;
    return verdict;
}

static int lc_ptr_cmp(const void *a, const void *b)
{
    const lc_op *x = *(const lc_op *const *)a, *y = *(const lc_op *const *)b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    if (x->invoke != y->invoke) return x->invoke < y->invoke ? -1 : 1;
    return x < y ? -1 : x > y;
}

lc_verdict lc_check(const lc_op *ops, size_t n, int64_t initial, uint64_t max_steps, char *why,
                    size_t why_len)
{
    if (why && why_len) why[0] = 0;
    if (max_steps == 0) max_steps = LC_DEFAULT_STEPS;
    if (n > (size_t)INT32_MAX / 4) return LC_GAVE_UP;
    const lc_op **kept = malloc(sizeof *kept * (n ? n : 1));
    if (!kept) return LC_GAVE_UP;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const lc_op *op = &ops[i];
        if (op->outcome == LC_FAIL) continue;
        if (op->outcome == LC_UNKNOWN && op->kind == LC_READ) continue;
        if (op->outcome != LC_OK && op->outcome != LC_UNKNOWN) continue;
        kept[m++] = op;
    }
    qsort(kept, m, sizeof *kept, lc_ptr_cmp);
    lc_verdict overall = LC_LINEARIZABLE;
    for (size_t start = 0; start < m;) {
        size_t end = start;
        lc_key_run k;
        memset(&k, 0, sizeof k);
        k.ops = kept + start;
        while (end < m && kept[end]->key == kept[start]->key) {
            if (kept[end]->outcome == LC_OK) k.completed++;
            end++;
        }
        k.n = (int)(end - start);
        lc_verdict v = lc_check_key(&k, initial, max_steps, why, why_len);
        if (v == LC_VIOLATION) { overall = LC_VIOLATION; break; }
        if (v == LC_GAVE_UP) overall = LC_GAVE_UP; /* keep going: another key may still prove a violation */
        start = end;
    }
    free(kept);
    return overall;
}
