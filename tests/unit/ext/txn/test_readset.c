/* test_readset.c — the read set of a table's transaction (ext/txn/readset.c): key bytes -> the revision
 * read, TTL and kind. Insert and replace, binary and empty keys, many keys, clear and reuse, and an
 * allocation failure that leaves the set as it was (SQLite's allocator is wrapped to fail on demand). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "readset.h"

static sqlite3_mem_methods real_mem;
static int fail_allocs; /* 1: every SQLite allocation fails */

static void *failing_malloc(int n) { return fail_allocs ? NULL : real_mem.xMalloc(n); }
static void *failing_realloc(void *p, int n) { return fail_allocs ? NULL : real_mem.xRealloc(p, n); }

static void install_failing_allocator(void)
{
    sqlite3_mem_methods m;
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem), SQLITE_OK);
    m = real_mem;
    m.xMalloc = failing_malloc;
    m.xRealloc = failing_realloc;
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_MALLOC, &m), SQLITE_OK);
}

static void put(tn_readset *s, const char *key, uint64_t rev, int64_t ttl_ms, int is_dir)
{
    tn_read_info info = {.rev = rev, .ttl_ms = ttl_ms, .is_dir = is_dir};
    assert_int_equal(tn_readset_put(s, key, strlen(key), &info), SQLITE_OK);
}

static const tn_read_info *get(const tn_readset *s, const char *key)
{
    return tn_readset_get(s, key, strlen(key));
}

static void test_put_get_replace(void **state)
{
    tn_readset s;
    (void)state;
    tn_readset_init(&s);
    assert_int_equal(tn_readset_count(&s), 0);
    assert_null(get(&s, "users.ann"));

    put(&s, "users.ann", 17, 0, 0);
    put(&s, "users", 9, 0, 1);
    put(&s, "locks.job", 21, 5000, 0);
    assert_int_equal(tn_readset_count(&s), 3);
    const tn_read_info *r = get(&s, "users.ann");
    assert_non_null(r);
    assert_int_equal(r->rev, 17);
    assert_int_equal(r->ttl_ms, 0);
    assert_int_equal(r->is_dir, 0);
    r = get(&s, "users");
    assert_int_equal(r->rev, 9);
    assert_int_equal(r->is_dir, 1);
    r = get(&s, "locks.job");
    assert_int_equal(r->rev, 21);
    assert_int_equal(r->ttl_ms, 5000);
    assert_null(get(&s, "users.an"));   /* a prefix is another key */
    assert_null(get(&s, "users.anne")); /* so is an extension */

    /* a second put of a key replaces what it recorded (rev 0: the transaction's own row) */
    put(&s, "users.ann", 0, 0, 0);
    assert_int_equal(tn_readset_count(&s), 3);
    assert_int_equal(get(&s, "users.ann")->rev, 0);
    assert_int_equal(get(&s, "users")->rev, 9); /* the others are untouched */
    tn_readset_clear(&s);
}

static void test_binary_and_empty_keys(void **state)
{
    tn_readset s;
    /* collection tables key the set by encoded primary keys: bytes with NULs */
    const uint8_t pk1[] = {1, 0, 0, 0}, pk2[] = {1, 0, 0, 1}, pk3[] = {1, 0};
    tn_read_info a = {.rev = 1}, b = {.rev = 2}, c = {.rev = 3}, root = {.rev = 4, .is_dir = 1};
    (void)state;
    tn_readset_init(&s);
    assert_int_equal(tn_readset_put(&s, pk1, sizeof pk1, &a), SQLITE_OK);
    assert_int_equal(tn_readset_put(&s, pk2, sizeof pk2, &b), SQLITE_OK);
    assert_int_equal(tn_readset_put(&s, pk3, sizeof pk3, &c), SQLITE_OK);
    assert_int_equal(tn_readset_put(&s, "", 0, &root), SQLITE_OK); /* the tree's root is the empty key */
    assert_int_equal(tn_readset_count(&s), 4);
    assert_int_equal(tn_readset_get(&s, pk1, sizeof pk1)->rev, 1);
    assert_int_equal(tn_readset_get(&s, pk2, sizeof pk2)->rev, 2);
    assert_int_equal(tn_readset_get(&s, pk3, sizeof pk3)->rev, 3);
    assert_int_equal(tn_readset_get(&s, "", 0)->rev, 4);
    assert_int_equal(tn_readset_get(&s, "", 0)->is_dir, 1);
    assert_null(tn_readset_get(&s, pk1, 3));
    tn_readset_clear(&s);
}

static void test_many_keys(void **state)
{
    enum { N = 5000 };
    tn_readset s;
    char key[32];
    (void)state;
    tn_readset_init(&s);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put(&s, key, (uint64_t)i + 1, i % 7 ? 0 : i, i % 2);
    }
    assert_int_equal(tn_readset_count(&s), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        const tn_read_info *r = get(&s, key);
        assert_non_null(r);
        assert_int_equal(r->rev, (uint64_t)i + 1);
        assert_int_equal(r->ttl_ms, i % 7 ? 0 : i);
        assert_int_equal(r->is_dir, i % 2);
    }
    assert_null(get(&s, "k5000"));
    tn_readset_clear(&s);
}

static void test_clear_and_reuse(void **state)
{
    tn_readset s;
    (void)state;
    tn_readset_init(&s);
    put(&s, "a", 1, 0, 0);
    put(&s, "b", 2, 0, 0);
    tn_readset_clear(&s);
    assert_int_equal(tn_readset_count(&s), 0);
    assert_null(get(&s, "a"));
    tn_readset_clear(&s); /* twice is fine (xBegin and xCommit both clear) */
    put(&s, "a", 10, 0, 0);
    assert_int_equal(tn_readset_count(&s), 1);
    assert_int_equal(get(&s, "a")->rev, 10);
    assert_null(get(&s, "b"));
    tn_readset_clear(&s);
}

static void test_out_of_memory_leaves_the_set_unchanged(void **state)
{
    tn_readset s;
    tn_read_info info = {.rev = 5};
    (void)state;
    tn_readset_init(&s);
    fail_allocs = 1;
    assert_int_equal(tn_readset_put(&s, "a", 1, &info), SQLITE_NOMEM);
    fail_allocs = 0;
    assert_int_equal(tn_readset_count(&s), 0);
    assert_null(get(&s, "a"));
    put(&s, "a", 1, 0, 0);
    /* replacing an existing key needs no memory */
    fail_allocs = 1;
    assert_int_equal(tn_readset_put(&s, "a", 1, &info), SQLITE_OK);
    /* a new key longer than the room left for key bytes does */
    char big[4096];
    memset(big, 'x', sizeof big);
    assert_int_equal(tn_readset_put(&s, big, sizeof big, &info), SQLITE_NOMEM);
    fail_allocs = 0;
    assert_int_equal(tn_readset_count(&s), 1);
    assert_int_equal(get(&s, "a")->rev, 5);
    assert_null(tn_readset_get(&s, big, sizeof big));
    tn_readset_clear(&s);
}

int main(void)
{
    install_failing_allocator();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_binary_and_empty_keys),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_clear_and_reuse),
        cmocka_unit_test(test_out_of_memory_leaves_the_set_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
