/* test_coll_fault.c — allocation-failure injection: the k-th allocation of one write fails, for every k
 * until the write gets through. A write that returns NOMEM must leave the store byte-for-byte as it was
 * (serialized image compared) with every invariant intact; no failure may be silently absorbed.
 *
 * The injection replaces malloc/calloc/realloc/free in this program (forwarding to glibc's __libc_*),
 * so it cannot run under AddressSanitizer or ThreadSanitizer, which own those symbols: there the test is
 * skipped. */
#include <stdlib.h>

#include "test_coll_util.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TN_FAULT_SKIP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TN_FAULT_SKIP 1
#endif
#endif

#ifndef TN_FAULT_SKIP
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

/* Test-only process state: the allocator hooks have no other way to reach it. */
static long fault_countdown = -1;
static int fault_hit;

static int fault_now(void)
{
    if (fault_countdown < 0) return 0;
    if (fault_countdown-- == 0) {
        fault_hit = 1;
        return 1;
    }
    return 0;
}

void *malloc(size_t n) { return fault_now() ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return fault_now() ? NULL : __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return fault_now() ? NULL : __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }

static uint64_t fault_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void image(tn_colls *cs, tn_wr *w)
{
    tn_wr_init(w);
    assert_int_equal(tn_colls_serialize(cs, w), TN_SUCCESS);
}

static void test_nomem_rolls_back(void **state)
{
    (void)state;
    tn_colls *cs = tn_colls_new();
    uint64_t seed = 7, rev = 1;
    long nomems = 0;
    static const char *hv[] = {"h0", "h1", "h2", "h3", "h4"};
    for (int step = 0; step < 150; step++) {
        tn_wr pay;
        tn_wr_init(&pay);
        uint64_t kind = step == 0 ? 0 : fault_rnd(&seed) % 25;
        if (kind == 0) {
            assert_int_equal(tn_coll_create_encode(&ev_schema, &pay), TN_SUCCESS);
        } else if (kind == 1 && step > 120) {
            assert_int_equal(tn_coll_drop_encode(&pay), TN_SUCCESS);
        } else {
            /* only ops that cannot fail, so a rollback happens only for the injected failure itself
             * (an allocation failing inside a rollback stops the process by design) */
            tn_coll_row_op ops[48];
            tn_val idx[48][N_SLOTS];
            int n = 1 + (int)(fault_rnd(&seed) % 48);
            for (int k = 0; k < n; k++) {
                int id = (int)(fault_rnd(&seed) % 400), m = (int)(fault_rnd(&seed) % 4);
                idx[k][0] = fault_rnd(&seed) % 5 ? T(hv[k % 5]) : N();
                idx[k][1] = fault_rnd(&seed) % 3 ? T(hv[(k + 2) % 5]) : N();
                idx[k][2] = I((int64_t)(fault_rnd(&seed) % 40));
                ops[k] = ct_row(m == 0 ? TN_ROW_INSERT_OR_IGNORE : m == 1 ? TN_ROW_DELETE : TN_ROW_UPSERT, I(id),
                                idx[k], "payload");
            }
            assert_int_equal(tn_coll_rows_encode(ops, (size_t)n, (int)(fault_rnd(&seed) % 2), &pay), TN_SUCCESS);
        }
        int txn = fault_rnd(&seed) % 4 == 0;
        for (long k = 0;; k++) {
            tn_wr before, out;
            image(cs, &before);
            if (txn) assert_int_equal(tn_colls_txn_begin(cs), TN_SUCCESS);
            tn_wr_init(&out);
            tn_wctx ctx = {rev, 0, 0};
            fault_hit = 0;
            fault_countdown = k;
            int rc = tn_colls_write(cs, &ctx, "events", 6, pay.p, pay.len, &out);
            fault_countdown = -1;
            if (txn) {
                if (rc == TN_NOMEM) tn_colls_txn_rollback(cs);
                else tn_colls_txn_commit(cs);
            }
            tn_wr_free(&out);
            assert_int_equal(tn_colls_check(cs), 0);
            if (rc == TN_NOMEM) {
                tn_wr after;
                image(cs, &after);
                assert_int_equal(after.len, before.len);
                assert_memory_equal(after.p, before.p, before.len);
                tn_wr_free(&after);
                tn_wr_free(&before);
                nomems++;
                continue;
            }
            tn_wr_free(&before);
            assert_false(fault_hit); /* an injected failure must surface as NOMEM */
            break;
        }
        rev++;
        tn_wr_free(&pay);
    }
    assert_true(nomems > 1000);
    tn_colls_free(cs);
}
#else
static void test_nomem_rolls_back(void **state)
{
    (void)state;
    skip();
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_nomem_rolls_back)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
