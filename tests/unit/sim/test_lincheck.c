/* test_lincheck.c — unit tests of the simulator's linearizability checker (tests/sim/lincheck.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../sim/lincheck.c"

#define HIST_MAX 4096

typedef struct hist {
    lc_op ops[HIST_MAX];
    size_t n;
    char why[512];
} hist;

static lc_op *add(hist *h, int client, uint64_t key, lc_kind kind, int64_t arg, int64_t arg2, int64_t result,
                  lc_outcome outcome, uint64_t invoke, uint64_t complete)
{
    assert_true(h->n < HIST_MAX);
    lc_op *op = &h->ops[h->n++];
    *op = (lc_op){ client, key, kind, arg, arg2, result, outcome, invoke, complete };
    return op;
}

static void wr(hist *h, int c, int64_t v, uint64_t inv, uint64_t comp)
{
    add(h, c, 1, LC_WRITE, v, 0, 0, LC_OK, inv, comp);
}
static void rd(hist *h, int c, int64_t seen, uint64_t inv, uint64_t comp)
{
    add(h, c, 1, LC_READ, 0, 0, seen, LC_OK, inv, comp);
}
static void cas(hist *h, int c, int64_t expect, int64_t val, int swapped, uint64_t inv, uint64_t comp)
{
    add(h, c, 1, LC_CAS, expect, val, swapped, LC_OK, inv, comp);
}

static lc_verdict check(hist *h, uint64_t max_steps)
{
    return lc_check(h->ops, h->n, 0, max_steps, h->why, sizeof h->why);
}

static hist *new_hist(void)
{
    hist *h = calloc(1, sizeof *h);
    assert_non_null(h);
    return h;
}

static void test_empty_history(void **state)
{
    hist *h = new_hist();
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    assert_int_equal(lc_check(NULL, 0, 0, 0, NULL, 0), LC_LINEARIZABLE);
    free(h);
}

static void test_sequential_valid(void **state)
{
    hist *h = new_hist();
    rd(h, 1, 0, 1, 2);
    wr(h, 1, 5, 3, 4);
    rd(h, 2, 5, 5, 6);
    wr(h, 2, 7, 7, 8);
    rd(h, 1, 7, 9, 10);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);
}

static void test_sequential_invalid(void **state)
{
    hist *h = new_hist();
    wr(h, 1, 5, 1, 2);
    rd(h, 2, 6, 3, 4);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    assert_non_null(strstr(h->why, "key 1"));
    assert_non_null(strstr(h->why, "client 2 read -> 6 [3..4]"));
    free(h);
}

static void test_overlapping_writes_reads_either(void **state)
{
    for (int seen = 1; seen <= 2; seen++) {
        hist *h = new_hist();
        wr(h, 1, 1, 10, 50);
        wr(h, 2, 2, 20, 60);
        rd(h, 3, seen, 30, 40);          /* inside both writes: either value (or 0) */
        rd(h, 3, seen, 70, 80);          /* after both: the last one linearized must stay */
        assert_int_equal(check(h, 0), LC_LINEARIZABLE);
        free(h);
    }
    /* after both writes completed, the register cannot flip back and forth */
    hist *h = new_hist();
    wr(h, 1, 1, 10, 50);
    wr(h, 2, 2, 20, 60);
    rd(h, 3, 1, 70, 80);
    rd(h, 3, 2, 90, 100);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    assert_non_null(strstr(h->why, "client 3 read -> 2 [90..100]"));
    free(h);
    /* a read concurrent with a write may still see the initial value */
    h = new_hist();
    wr(h, 1, 1, 10, 50);
    rd(h, 2, 0, 20, 30);
    rd(h, 2, 1, 60, 70);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);
}

static void test_stale_read_after_completed_write(void **state)
{
    hist *h = new_hist();
    wr(h, 1, 1, 1, 2);
    wr(h, 1, 2, 3, 4);
    rd(h, 2, 1, 5, 6);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    assert_non_null(strstr(h->why, "client 2 read -> 1 [5..6]"));
    free(h);
    /* the same read overlapping the second write is fine */
    h = new_hist();
    wr(h, 1, 1, 1, 2);
    wr(h, 1, 2, 3, 6);
    rd(h, 2, 1, 5, 7);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);
}

static void test_equal_times_are_concurrent(void **state)
{
    hist *h = new_hist();
    wr(h, 1, 1, 1, 5);
    rd(h, 2, 0, 5, 6);  /* invoked at the instant the write completed: may precede it */
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);
}

static void test_read_of_unwritten_value(void **state)
{
    hist *h = new_hist();
    wr(h, 1, 1, 1, 10);
    wr(h, 2, 2, 2, 11);
    rd(h, 3, 42, 3, 12);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    assert_non_null(strstr(h->why, "read -> 42"));
    free(h);
}

static void test_cas_rules(void **state)
{
    hist *h = new_hist();
    cas(h, 1, 0, 5, 1, 1, 2);      /* 0 -> 5 swapped */
    rd(h, 2, 5, 3, 4);
    cas(h, 1, 0, 6, 0, 5, 6);      /* expected 0 but holds 5: fails */
    rd(h, 2, 5, 7, 8);
    cas(h, 2, 5, 9, 1, 9, 10);
    rd(h, 1, 9, 11, 12);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);

    h = new_hist();
    cas(h, 1, 0, 5, 0, 1, 2);      /* register holds 0: must have swapped */
    assert_int_equal(check(h, 0), LC_VIOLATION);
    assert_non_null(strstr(h->why, "client 1 cas(0 -> 5) -> not swapped"));
    free(h);

    h = new_hist();
    cas(h, 1, 3, 5, 1, 1, 2);      /* register holds 0: cannot have swapped */
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);

    h = new_hist();
    cas(h, 1, 0, 5, 1, 1, 2);
    rd(h, 2, 0, 3, 4);             /* the swap is lost */
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);

    h = new_hist();                /* two concurrent CAS from the same value: only one may win */
    cas(h, 1, 0, 1, 1, 1, 10);
    cas(h, 2, 0, 2, 1, 2, 11);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);

    h = new_hist();
    cas(h, 1, 0, 1, 1, 1, 10);
    cas(h, 2, 0, 2, 0, 2, 11);
    rd(h, 3, 1, 12, 13);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);
}

static void test_unknown_outcomes(void **state)
{
    /* observed later: it took effect */
    hist *h = new_hist();
    add(h, 1, 1, LC_WRITE, 7, 0, 0, LC_UNKNOWN, 1, 0);
    rd(h, 2, 7, 100, 101);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);

    /* never observed: it need not take effect */
    h = new_hist();
    add(h, 1, 1, LC_WRITE, 7, 0, 0, LC_UNKNOWN, 1, 0);
    rd(h, 2, 0, 100, 101);
    wr(h, 2, 3, 102, 103);
    rd(h, 2, 3, 104, 105);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);

    /* takes effect late: between two later writes */
    h = new_hist();
    add(h, 1, 1, LC_WRITE, 7, 0, 0, LC_UNKNOWN, 1, 0);
    wr(h, 2, 3, 10, 11);
    rd(h, 2, 3, 12, 13);
    rd(h, 2, 7, 14, 15);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);

    /* cannot take effect twice: seen, overwritten, seen again */
    h = new_hist();
    add(h, 1, 1, LC_WRITE, 7, 0, 0, LC_UNKNOWN, 1, 0);
    rd(h, 2, 7, 10, 11);
    wr(h, 2, 3, 12, 13);
    rd(h, 2, 7, 14, 15);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);

    /* cannot take effect before it was invoked */
    h = new_hist();
    rd(h, 2, 7, 1, 2);
    add(h, 1, 1, LC_WRITE, 7, 0, 0, LC_UNKNOWN, 5, 0);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);

    /* unknown CAS: applies only if the expectation holds at its instant */
    h = new_hist();
    add(h, 1, 1, LC_CAS, 0, 4, 0, LC_UNKNOWN, 1, 0);
    rd(h, 2, 4, 10, 11);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);
    h = new_hist();
    wr(h, 2, 1, 1, 2);
    add(h, 1, 1, LC_CAS, 0, 4, 0, LC_UNKNOWN, 3, 0);
    rd(h, 2, 4, 10, 11);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);

    /* an unknown read constrains nothing */
    h = new_hist();
    add(h, 1, 1, LC_READ, 0, 0, 99, LC_UNKNOWN, 1, 0);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);
}

static void test_failed_ops_ignored(void **state)
{
    hist *h = new_hist();
    add(h, 1, 1, LC_WRITE, 9, 0, 0, LC_FAIL, 1, 2);
    add(h, 1, 1, LC_CAS, 0, 9, 1, LC_FAIL, 3, 4);
    add(h, 1, 1, LC_READ, 0, 0, 1234, LC_FAIL, 3, 4);
    rd(h, 2, 0, 5, 6);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    rd(h, 2, 9, 7, 8);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);
}

static void test_multi_key_independent(void **state)
{
    hist *h = new_hist();
    /* the same values on two keys; each key alone is linearizable, merged into one register it is not */
    add(h, 1, 1, LC_WRITE, 1, 0, 0, LC_OK, 1, 2);
    add(h, 2, 2, LC_WRITE, 2, 0, 0, LC_OK, 3, 4);
    add(h, 1, 1, LC_READ, 0, 0, 1, LC_OK, 5, 6);
    add(h, 2, 2, LC_READ, 0, 0, 2, LC_OK, 5, 6);
    add(h, 3, 3, LC_READ, 0, 0, 0, LC_OK, 7, 8);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    add(h, 3, 2, LC_READ, 0, 0, 1, LC_OK, 9, 10);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    assert_non_null(strstr(h->why, "key 2:"));
    free(h);
}

static void test_tricky_reordering(void **state)
{
    /* the write invoked first must be linearized last */
    hist *h = new_hist();
    wr(h, 1, 1, 0, 100);
    wr(h, 2, 2, 10, 20);
    rd(h, 3, 1, 30, 40);
    rd(h, 3, 1, 110, 120);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    free(h);

    /* a chain of CAS, all concurrent, invoked in the reverse of the only valid order, plus a failed CAS
     * that must sit between two specific links and reads pinning intermediate values */
    h = new_hist();
    cas(h, 1, 3, 4, 1, 1, 200);
    cas(h, 2, 2, 3, 1, 2, 200);
    cas(h, 3, 1, 2, 1, 3, 200);
    cas(h, 4, 0, 1, 1, 4, 200);
    cas(h, 5, 2, 9, 0, 5, 200);   /* must not see 2: before 1->2 or after 2->3 */
    rd(h, 6, 2, 6, 200);
    rd(h, 7, 4, 201, 202);
    assert_int_equal(check(h, 0), LC_LINEARIZABLE);
    /* ...and a read of 3 that must precede the read of 2 in real time makes it impossible */
    h->n = 0;
    cas(h, 1, 3, 4, 1, 1, 200);
    cas(h, 2, 2, 3, 1, 2, 200);
    cas(h, 3, 1, 2, 1, 3, 200);
    cas(h, 4, 0, 1, 1, 4, 200);
    rd(h, 6, 3, 6, 50);
    rd(h, 7, 2, 60, 70);
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);
}

/* Many concurrent writes of distinct values followed by a read of a value nobody wrote: the search has to
 * explore every order of the writes before it can say no, which a tiny step budget does not allow. */
static void test_step_limit_gives_up(void **state)
{
    hist *h = new_hist();
    for (int c = 0; c < 12; c++) wr(h, c, c + 1, 1 + (uint64_t)c, 100);
    rd(h, 99, 1000, 101, 102);
    assert_int_equal(check(h, 50), LC_GAVE_UP);
    assert_non_null(strstr(h->why, "key 1: gave up after 51 steps"));
    assert_int_equal(check(h, 0), LC_VIOLATION);
    free(h);
}

/* --- randomized: histories generated from a real register are linearizable ------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t rng_below(uint64_t *s, uint64_t n) { return rng_next(s) % n; }

typedef struct gen_op {
    lc_op op;
    uint64_t at;     /* linearization point, strictly inside the interval */
    int effective;   /* unknown/failed ops: whether it took effect */
} gen_op;

static int gen_at_cmp(const void *a, const void *b)
{
    const gen_op *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* Generates a history of `per_client` ops for each of `clients` clients on `keys` keys into h; every op
 * takes effect at a random instant inside its interval, results computed from a real register.
 * domain > 0: values are drawn from 0..domain-1 (many equal values: the hard case for the search);
 * domain == 0: every write writes a fresh value and CAS expects one written earlier (as the simulator's
 * clients do). unknown_pct: share of ops whose outcome is unknown. */
static void gen_history(hist *h, uint64_t *rng, int clients, int per_client, int keys, int domain,
                        int unknown_pct)
{
    int64_t fresh = 1;
    int n = clients * per_client;
    assert_true(n <= HIST_MAX);
    gen_op *g = calloc((size_t)n, sizeof *g);
    assert_non_null(g);
    int m = 0;
    for (int c = 0; c < clients; c++) {
        uint64_t t = 1 + rng_below(rng, 20);
        for (int i = 0; i < per_client; i++) {
            gen_op *x = &g[m++];
            uint64_t len = 2 + rng_below(rng, 60);
            x->op.client = c;
            x->op.key = 1 + rng_below(rng, (uint64_t)keys);
            x->op.invoke = t;
            x->op.complete = t + len;
            x->at = t + 1 + rng_below(rng, len - 1);   /* in (invoke, complete) */
            uint64_t k = rng_below(rng, 10);
            x->op.kind = k < 4 ? LC_READ : k < 7 ? LC_WRITE : LC_CAS;
            if (domain > 0) {
                x->op.arg = (int64_t)rng_below(rng, (uint64_t)domain);
                x->op.arg2 = (int64_t)rng_below(rng, (uint64_t)domain);
            } else {
                x->op.arg = x->op.kind == LC_CAS ? (int64_t)rng_below(rng, (uint64_t)fresh) : fresh++;
                x->op.arg2 = fresh++;
            }
            uint64_t o = rng_below(rng, 100);
            x->op.outcome = o < 5 ? LC_FAIL : o < 5 + (uint64_t)unknown_pct ? LC_UNKNOWN : LC_OK;
            x->effective = x->op.outcome == LC_OK || (x->op.outcome == LC_UNKNOWN && rng_below(rng, 2));
            t = x->op.complete + rng_below(rng, 10);
        }
    }
    qsort(g, (size_t)m, sizeof *g, gen_at_cmp);
    int64_t reg[64] = { 0 };
    for (int i = 0; i < m; i++) {
        lc_op *op = &g[i].op;
        int64_t *r = &reg[op->key];
        if (op->outcome == LC_FAIL) { op->result = 777; continue; }   /* garbage: must be ignored */
        if (!g[i].effective) { op->result = 0; continue; }
        switch (op->kind) {
        case LC_WRITE: *r = op->arg; break;
        case LC_READ: op->result = *r; break;
        case LC_CAS:
            op->result = *r == op->arg;
            if (op->result) *r = op->arg2;
            break;
        }
        if (op->outcome == LC_UNKNOWN) op->complete = 0;
    }
    /* shuffle so the checker cannot rely on input order */
    for (int i = m - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint64_t)i + 1);
        gen_op tmp = g[i];
        g[i] = g[j];
        g[j] = tmp;
    }
    h->n = 0;
    for (int i = 0; i < m; i++) h->ops[h->n++] = g[i].op;
    free(g);
}

static void test_random_histories(void **state)
{
    uint64_t rng = 0x2545f4914f6cdd1dull;
    hist *h = new_hist();
    int rejected = 0;
    for (int round = 0; round < 60; round++) {
        int clients = 2 + (int)rng_below(&rng, 9);            /* 2..10 concurrent clients */
        int per_client = 5 + (int)rng_below(&rng, 30);
        int keys = 1 + (int)rng_below(&rng, 3);
        int small_domain = round % 2 == 0;   /* alternate: many equal values / fresh values */
        gen_history(h, &rng, clients, per_client, keys, small_domain ? 6 : 0, small_domain ? 3 : 8);
        lc_verdict v = check(h, 0);
        if (v != LC_LINEARIZABLE) print_error("round %d: %s\n", round, h->why);
        assert_int_equal(v, LC_LINEARIZABLE);

        /* change one completed read to a value nobody ever wrote */
        size_t reads[HIST_MAX];
        size_t nreads = 0;
        for (size_t i = 0; i < h->n; i++)
            if (h->ops[i].kind == LC_READ && h->ops[i].outcome == LC_OK) reads[nreads++] = i;
        if (nreads == 0) continue;
        lc_op *victim = &h->ops[reads[rng_below(&rng, nreads)]];
        victim->result = -1000 - round;
        v = check(h, 0);
        assert_int_equal(v, LC_VIOLATION);
        char expect[64];
        snprintf(expect, sizeof expect, "key %" PRIu64 ":", victim->key);
        assert_non_null(strstr(h->why, expect));
        rejected++;
    }
    assert_true(rejected > 40);
    free(h);
}

/* Reference: tries every order of the ops (exponential; tiny histories only). Unknown ops may be
 * placed anywhere after their invoke or left out; completed ops must all be placed. */
static int brute_force(const lc_op **ops, int n, unsigned placed, int64_t value)
{
    int all = 1;
    for (int i = 0; i < n; i++)
        if (!(placed >> i & 1) && ops[i]->outcome == LC_OK) all = 0;
    if (all) return 1;
    for (int i = 0; i < n; i++) {
        if (placed >> i & 1) continue;
        int allowed = 1;   /* nothing unplaced may have completed before this one was invoked */
        for (int j = 0; j < n; j++)
            if (j != i && !(placed >> j & 1) && ops[j]->outcome == LC_OK && ops[j]->complete < ops[i]->invoke)
                allowed = 0;
        if (!allowed) continue;
        const lc_op *o = ops[i];
        int64_t next = value;
        int fits = 1;
        switch (o->kind) {
        case LC_WRITE: next = o->arg; break;
        case LC_READ: fits = o->outcome == LC_UNKNOWN || o->result == value; break;
        case LC_CAS:
            if (o->outcome == LC_UNKNOWN) next = value == o->arg ? o->arg2 : value;
            else if (o->result) { fits = value == o->arg; next = o->arg2; }
            else fits = value != o->arg;
            break;
        }
        if (fits && brute_force(ops, n, placed | 1u << i, next)) return 1;
    }
    return 0;
}

/* Small random histories, then random corruptions of them (a read's value, a CAS's result, an outcome
 * flipped between completed and unknown): the checker's verdict must equal the exhaustive search's. */
static void test_against_brute_force(void **state)
{
    uint64_t rng = 12345;
    hist *h = new_hist();
    int violations = 0, checked = 0;
    for (int round = 0; round < 1500; round++) {
        gen_history(h, &rng, 2 + (int)rng_below(&rng, 3), 2 + (int)rng_below(&rng, 3), 1,
                    round % 3 ? 4 : 0, 15);
        for (int mutation = 0; mutation < 3; mutation++) {
            if (mutation > 0) {
                lc_op *o = &h->ops[rng_below(&rng, h->n)];
                if (o->kind == LC_READ) o->result = (int64_t)rng_below(&rng, 5);
                else if (o->kind == LC_CAS && o->outcome == LC_OK) o->result = !o->result;
                else if (o->outcome == LC_OK) o->outcome = LC_UNKNOWN;
                else if (o->outcome == LC_UNKNOWN) { o->outcome = LC_OK; o->complete = o->invoke + 5; }
            }
            const lc_op *kept[16];
            int n = 0;
            for (size_t i = 0; i < h->n && n < 16; i++)
                if (h->ops[i].outcome != LC_FAIL) kept[n++] = &h->ops[i];
            if (n > 12) continue;
            int expect = brute_force(kept, n, 0, 0);
            lc_verdict v = check(h, 0);
            assert_int_equal(v, expect ? LC_LINEARIZABLE : LC_VIOLATION);
            violations += !expect;
            checked++;
        }
    }
    assert_true(violations > checked / 10 && violations < checked);   /* both verdicts well exercised */
    free(h);
}

/* The simulator's scale: one key, 10 clients, 300 ops, valid and with the last read corrupted (the
 * deepest search); fresh values with 10% unknown outcomes, then few values with 2%. */
static void test_random_large_single_key(void **state)
{
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    hist *h = new_hist();
    for (int round = 0; round < 4; round++) {
        gen_history(h, &rng, 10, 30, 1, round < 2 ? 0 : 6, round < 2 ? 10 : 2);
        assert_int_equal(check(h, 0), LC_LINEARIZABLE);
        size_t last_read = h->n;
        uint64_t latest = 0;
        for (size_t i = 0; i < h->n; i++)   /* corrupt the read invoked last: the deepest search */
            if (h->ops[i].kind == LC_READ && h->ops[i].outcome == LC_OK && h->ops[i].invoke >= latest) {
                latest = h->ops[i].invoke;
                last_read = i;
            }
        assert_true(last_read < h->n);
        h->ops[last_read].result = -5;
        assert_int_equal(check(h, 0), LC_VIOLATION);
    }
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_history),
        cmocka_unit_test(test_sequential_valid),
        cmocka_unit_test(test_sequential_invalid),
        cmocka_unit_test(test_overlapping_writes_reads_either),
        cmocka_unit_test(test_stale_read_after_completed_write),
        cmocka_unit_test(test_equal_times_are_concurrent),
        cmocka_unit_test(test_read_of_unwritten_value),
        cmocka_unit_test(test_cas_rules),
        cmocka_unit_test(test_unknown_outcomes),
        cmocka_unit_test(test_failed_ops_ignored),
        cmocka_unit_test(test_multi_key_independent),
        cmocka_unit_test(test_tricky_reordering),
        cmocka_unit_test(test_step_limit_gives_up),
        cmocka_unit_test(test_random_histories),
        cmocka_unit_test(test_against_brute_force),
        cmocka_unit_test(test_random_large_single_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
