/* test_keymap.c — the byte-keyed hash map (ext/txn/keymap.c): insert and look up across spaces, empty and
 * binary keys, growth past many rehashes, iteration, reset and clear, and out-of-memory failures that
 * leave the map as it was (SQLite's allocator is wrapped to fail on demand). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "keymap.h"

/* ---- an allocator that fails on demand ---------------------------------------------------------- */

static sqlite3_mem_methods real_mem;
static int allocs_left = -1; /* -1: never fail; n >= 0: fail every allocation after n more */

static int may_alloc(void)
{
    if (allocs_left < 0) return 1;
    if (allocs_left == 0) return 0;
    allocs_left--;
    return 1;
}

static void *failing_malloc(int n) { return may_alloc() ? real_mem.xMalloc(n) : NULL; }
static void *failing_realloc(void *p, int n) { return may_alloc() ? real_mem.xRealloc(p, n) : NULL; }

static void install_failing_allocator(void)
{
    sqlite3_mem_methods m;
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem), SQLITE_OK);
    m = real_mem;
    m.xMalloc = failing_malloc;
    m.xRealloc = failing_realloc;
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_MALLOC, &m), SQLITE_OK);
}

/* ---- helpers ------------------------------------------------------------------------------------ */

typedef struct val {
    uint64_t a;
    uint32_t b;
} val;

static val *put(tn_keymap *m, uint32_t space, const void *key, size_t len, int expect_created)
{
    void *v = NULL;
    int created = -1;
    assert_int_equal(tn_keymap_put(m, space, key, len, &v, &created), SQLITE_OK);
    assert_non_null(v);
    assert_int_equal(created, expect_created);
    return v;
}

static const val *get(const tn_keymap *m, uint32_t space, const char *key)
{
    return tn_keymap_get(m, space, key, strlen(key));
}

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_empty(void **state)
{
    tn_keymap m;
    size_t pos = 0;
    (void)state;
    tn_keymap_init(&m, sizeof(val));
    assert_int_equal(tn_keymap_count(&m), 0);
    assert_null(get(&m, 0, "a"));
    assert_null(tn_keymap_get(&m, 0, "", 0));
    assert_int_equal(tn_keymap_next(&m, &pos, NULL, NULL, NULL, NULL), 0);
    tn_keymap_reset(&m);
    tn_keymap_clear(&m);
    assert_int_equal(tn_keymap_count(&m), 0);
}

static void test_put_get_spaces_and_odd_keys(void **state)
{
    tn_keymap m;
    (void)state;
    tn_keymap_init(&m, sizeof(val));
    val *v = put(&m, 0, "alpha", 5, 1);
    assert_int_equal(v->a, 0); /* a new value is zeroed */
    assert_int_equal(v->b, 0);
    v->a = 11;
    v->b = 12;
    /* the same bytes in another space are another key */
    val *w = put(&m, 7, "alpha", 5, 1);
    w->a = 71;
    /* a prefix, an extension, the empty key, and keys with NUL bytes */
    put(&m, 0, "alph", 4, 1)->a = 4;
    put(&m, 0, "alphab", 6, 1)->a = 6;
    put(&m, 0, "", 0, 1)->a = 100;
    put(&m, 0, "a\0b", 3, 1)->a = 301;
    put(&m, 0, "a\0c", 3, 1)->a = 302;
    assert_int_equal(tn_keymap_count(&m), 7);

    assert_int_equal(get(&m, 0, "alpha")->a, 11);
    assert_int_equal(get(&m, 0, "alpha")->b, 12);
    assert_int_equal(get(&m, 7, "alpha")->a, 71);
    assert_null(get(&m, 1, "alpha"));
    assert_int_equal(get(&m, 0, "alph")->a, 4);
    assert_int_equal(get(&m, 0, "alphab")->a, 6);
    assert_null(get(&m, 0, "alp"));
    assert_int_equal(((const val *)tn_keymap_get(&m, 0, "", 0))->a, 100);
    assert_null(tn_keymap_get(&m, 3, "", 0));
    assert_int_equal(((const val *)tn_keymap_get(&m, 0, "a\0b", 3))->a, 301);
    assert_int_equal(((const val *)tn_keymap_get(&m, 0, "a\0c", 3))->a, 302);
    assert_null(tn_keymap_get(&m, 0, "a\0d", 3));
    assert_null(tn_keymap_get(&m, 0, "a", 1)); /* "a\0b" is not "a" */

    /* putting an existing key finds it: same value, not created, nothing added */
    v = put(&m, 0, "alpha", 5, 0);
    assert_int_equal(v->a, 11);
    assert_int_equal(tn_keymap_count(&m), 7);
    tn_keymap_clear(&m);
}

static void test_growth_and_iteration(void **state)
{
    enum { N = 20000 };
    tn_keymap m;
    char key[32];
    (void)state;
    tn_keymap_init(&m, sizeof(val));
    for (uint32_t i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key.%u", i);
        val *v = put(&m, i % 3, key, (size_t)n, 1);
        v->a = (uint64_t)i * 1000003u;
        v->b = i;
    }
    assert_int_equal(tn_keymap_count(&m), N);
    assert_true(m.cap >= N * 4 / 3); /* the load factor stays at most 3/4 */
    for (uint32_t i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key.%u", i);
        const val *v = get(&m, i % 3, key);
        assert_non_null(v);
        assert_int_equal(v->a, (uint64_t)i * 1000003u);
        assert_null(get(&m, (i + 1) % 3, key));
    }
    /* iteration visits every entry once, with its space, key and value */
    uint8_t *seen = calloc(N, 1);
    size_t pos = 0, len, visits = 0;
    uint32_t space;
    const uint8_t *k;
    void *vp;
    while (tn_keymap_next(&m, &pos, &space, &k, &len, &vp)) {
        const val *v = vp;
        assert_true(v->b < N);
        assert_int_equal(seen[v->b], 0);
        seen[v->b] = 1;
        int n = snprintf(key, sizeof key, "key.%u", v->b);
        assert_int_equal(len, (size_t)n);
        assert_memory_equal(k, key, len);
        assert_int_equal(space, v->b % 3);
        visits++;
    }
    assert_int_equal(visits, N);
    free(seen);
    tn_keymap_clear(&m);
}

static void test_reset_and_clear(void **state)
{
    tn_keymap m;
    (void)state;
    tn_keymap_init(&m, sizeof(val));
    for (int i = 0; i < 100; i++) put(&m, 0, &i, sizeof i, 1)->a = (uint64_t)i;
    size_t cap = m.cap;
    tn_keymap_reset(&m);
    assert_int_equal(tn_keymap_count(&m), 0);
    assert_int_equal(m.cap, cap); /* memory kept */
    for (int i = 0; i < 100; i++) assert_null(tn_keymap_get(&m, 0, &i, sizeof i));
    int k = 5;
    val *v = put(&m, 0, &k, sizeof k, 1);
    assert_int_equal(v->a, 0); /* zeroed again, not the old value */
    tn_keymap_clear(&m);
    assert_int_equal(tn_keymap_count(&m), 0);
    assert_null(m.slots);
    assert_int_equal(m.val_size, sizeof(val)); /* usable again after clear */
    put(&m, 0, &k, sizeof k, 1)->a = 9;
    assert_int_equal(((const val *)tn_keymap_get(&m, 0, &k, sizeof k))->a, 9);
    tn_keymap_clear(&m);
}

static void test_set_without_values(void **state)
{
    tn_keymap m;
    int created;
    (void)state;
    memset(&m, 0, sizeof m); /* a zeroed map is an empty set */
    assert_int_equal(tn_keymap_put(&m, 2, "x", 1, NULL, &created), SQLITE_OK);
    assert_int_equal(created, 1);
    assert_int_equal(tn_keymap_put(&m, 2, "x", 1, NULL, &created), SQLITE_OK);
    assert_int_equal(created, 0);
    assert_non_null(tn_keymap_get(&m, 2, "x", 1));
    assert_null(tn_keymap_get(&m, 0, "x", 1));
    assert_int_equal(tn_keymap_count(&m), 1);
    tn_keymap_clear(&m);
}

static void test_out_of_memory_leaves_the_map_unchanged(void **state)
{
    tn_keymap m;
    char key[16];
    void *v;
    (void)state;
    tn_keymap_init(&m, sizeof(val));
    /* the first insert cannot allocate its slots */
    allocs_left = 0;
    assert_int_equal(tn_keymap_put(&m, 0, "a", 1, &v, NULL), SQLITE_NOMEM);
    allocs_left = -1;
    assert_int_equal(tn_keymap_count(&m), 0);
    assert_null(get(&m, 0, "a"));

    /* fill up to the growth threshold of the first table, then fail the growth */
    size_t i = 0;
    for (;; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        put(&m, 0, key, strlen(key), 1)->a = i;
        if ((tn_keymap_count(&m) + 1) * 4 > m.cap * 3) break;
    }
    size_t count = tn_keymap_count(&m), cap = m.cap;
    allocs_left = 0;
    assert_int_equal(tn_keymap_put(&m, 0, "new", 3, &v, NULL), SQLITE_NOMEM);
    allocs_left = -1;
    assert_int_equal(tn_keymap_count(&m), count);
    assert_int_equal(m.cap, cap);
    assert_null(get(&m, 0, "new"));
    for (size_t j = 0; j <= i; j++) {
        snprintf(key, sizeof key, "k%zu", j);
        assert_int_equal(get(&m, 0, key)->a, j);
    }

    /* room in the table but not in the key bytes: a key longer than what is left */
    tn_keymap_reset(&m);
    size_t long_len = m.keys_cap + 1;
    char *long_key = malloc(long_len);
    memset(long_key, 'z', long_len);
    allocs_left = 0;
    assert_int_equal(tn_keymap_put(&m, 0, long_key, long_len, &v, NULL), SQLITE_NOMEM);
    allocs_left = -1;
    assert_int_equal(tn_keymap_count(&m), 0);
    assert_null(tn_keymap_get(&m, 0, long_key, long_len));
    put(&m, 0, long_key, long_len, 1)->a = 42; /* and it works once memory is back */
    assert_int_equal(((const val *)tn_keymap_get(&m, 0, long_key, long_len))->a, 42);
    free(long_key);
    tn_keymap_clear(&m);
}

int main(void)
{
    install_failing_allocator();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_put_get_spaces_and_odd_keys),
        cmocka_unit_test(test_growth_and_iteration),
        cmocka_unit_test(test_reset_and_clear),
        cmocka_unit_test(test_set_without_values),
        cmocka_unit_test(test_out_of_memory_leaves_the_map_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
