/* test_tree.c — the DtKV tree: every operation, every error code, ordering, expiry, determinism and
 * snapshot images (raftnet/sm/tree.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tree.h"

/* ---- helpers ------------------------------------------------------------------------------------ */

#define K(s) (s), strlen(s)

static tn_wctx cx(uint64_t index, int64_t time_ms, uint64_t owner)
{
    tn_wctx c = {index, time_ms, owner};
    return c;
}

static int put(tn_tree *t, uint64_t idx, const char *k, const char *v)
{
    tn_wctx c = cx(idx, (int64_t)idx * 10, 0);
    return tn_tree_put(t, &c, K(k), K(v));
}

static int mkd(tn_tree *t, uint64_t idx, const char *k)
{
    tn_wctx c = cx(idx, (int64_t)idx * 10, 0);
    return tn_tree_mkdir(t, &c, K(k));
}

static tn_tree_node_view get_ok(tn_tree *t, const char *k)
{
    tn_tree_node_view v;
    memset(&v, 0, sizeof v);
    assert_int_equal(tn_tree_get(t, K(k), &v), TN_SUCCESS);
    return v;
}

static int get_rc(tn_tree *t, const char *k)
{
    tn_tree_node_view v;
    return tn_tree_get(t, K(k), &v);
}

static void assert_value(tn_tree *t, const char *k, const char *val)
{
    tn_tree_node_view v = get_ok(t, k);
    assert_false(v.is_dir);
    assert_int_equal(v.value_len, strlen(val));
    assert_memory_equal(v.value, val, strlen(val));
    assert_int_equal(v.key_len, strlen(k));
    assert_memory_equal(v.key, k, strlen(k));
}

/* Serialises t into a malloc'd buffer. */
static uint8_t *image_of(const tn_tree *t, size_t *len)
{
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_tree_serialize(t, &w), TN_SUCCESS);
    return tn_wr_take(&w, len);
}

static void assert_same_image(const tn_tree *a, const tn_tree *b)
{
    size_t la, lb;
    uint8_t *ia = image_of(a, &la), *ib = image_of(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ia, ib, la);
    free(ia);
    free(ib);
}

/* Collects the keys a visitor sees, as one "k1|k2|..." string. */
typedef struct keys {
    char buf[8192];
    size_t len;
    int stop_after; /* return non-zero after this many (0 = never) */
    int seen;
} keys;

static int collect(void *arg, const tn_tree_node_view *v)
{
    keys *ks = arg;
    if (ks->len) ks->buf[ks->len++] = '|';
    assert_true(ks->len + v->key_len + 1 < sizeof ks->buf);
    memcpy(ks->buf + ks->len, v->key, v->key_len);
    ks->len += v->key_len;
    ks->buf[ks->len] = 0;
    ks->seen++;
    return ks->stop_after && ks->seen >= ks->stop_after;
}

static const char *list_str(tn_tree *t, const char *dir, const char *after, size_t limit, keys *ks)
{
    memset(ks, 0, sizeof *ks);
    int rc = tn_tree_list(t, dir, strlen(dir), after, after ? strlen(after) : 0, limit, collect, ks);
    assert_int_equal(rc, TN_SUCCESS);
    return ks->buf;
}

/* ---- root, keys, values ------------------------------------------------------------------------- */

static void test_root(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    assert_non_null(t);
    tn_tree_node_view v = get_ok(t, "");
    assert_true(v.is_dir);
    assert_int_equal(v.key_len, 0);
    assert_non_null(v.key);
    assert_null(v.value);
    assert_int_equal(tn_tree_count(t), 0);
    keys ks;
    assert_string_equal(list_str(t, "", NULL, 0, &ks), "");
    tn_wctx c = cx(1, 10, 0);
    assert_int_equal(tn_tree_remove(t, &c, "", 0), TN_INVALID_KEY);
    assert_int_equal(tn_tree_put(t, &c, "", 0, K("v")), TN_INVALID_KEY);
    assert_int_equal(tn_tree_mkdir(t, &c, "", 0), TN_INVALID_KEY);
    assert_int_equal(tn_tree_put_temp(t, &c, "", 0, K("v"), 100), TN_INVALID_KEY);
    assert_int_equal(tn_tree_update_ttl(t, &c, "", 0, 100), TN_INVALID_KEY);
    assert_int_equal(tn_tree_expire(t, &c, "", 0, 0), TN_INVALID_KEY);
    /* writes below the root touch it */
    assert_int_equal(put(t, 7, "a", "x"), TN_SUCCESS);
    v = get_ok(t, "");
    assert_int_equal(v.update_rev, 7);
    assert_int_equal(v.update_time, 70);
    assert_int_equal(v.create_rev, 0);
    assert_string_equal(list_str(t, "", NULL, 0, &ks), "a");
    tn_tree_free(t);
    tn_tree_free(NULL);
}

/* Records the last byte of each key visited (for keys too long to collect). */
typedef struct last_bytes {
    uint8_t last[8];
    int n;
} last_bytes;

static int collect_last(void *arg, const tn_tree_node_view *v)
{
    last_bytes *lb = arg;
    assert_true(lb->n < 8 && v->key_len > 0);
    lb->last[lb->n++] = v->key[v->key_len - 1];
    return 0;
}

static void test_key_rules(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    assert_int_equal(tn_tree_check_key(t, "", 0, 1), TN_SUCCESS);
    assert_int_equal(tn_tree_check_key(t, "", 0, 0), TN_INVALID_KEY);
    assert_int_equal(tn_tree_check_key(t, K("a.b.c"), 0), TN_SUCCESS);
    assert_int_equal(tn_tree_check_key(t, K(".a"), 0), TN_INVALID_KEY);
    assert_int_equal(tn_tree_check_key(t, K("a."), 0), TN_INVALID_KEY);
    assert_int_equal(tn_tree_check_key(t, K("a..b"), 0), TN_INVALID_KEY);
    assert_int_equal(tn_tree_check_key(t, K("."), 1), TN_INVALID_KEY);
    assert_int_equal(put(t, 1, "a..b", "v"), TN_INVALID_KEY);
    assert_int_equal(get_rc(t, ".a"), TN_INVALID_KEY);
    assert_int_equal(get_rc(t, "nope"), TN_NOT_FOUND);

    /* a key of exactly 8 KiB is fine, one byte more is not */
    size_t n = TN_TREE_MAX_KEY_DEFAULT;
    char *big = malloc(n + 2);
    memset(big, 'k', n + 1);
    big[n + 1] = 0;
    tn_wctx c = cx(2, 20, 0);
    assert_int_equal(tn_tree_check_key(t, big, n, 0), TN_SUCCESS);
    assert_int_equal(tn_tree_check_key(t, big, n + 1, 0), TN_KEY_TOO_LONG);
    assert_int_equal(tn_tree_put(t, &c, big, n, K("v")), TN_SUCCESS);
    assert_int_equal(tn_tree_put(t, &c, big, n + 1, K("v")), TN_KEY_TOO_LONG);
    assert_int_equal(tn_tree_mkdir(t, &c, big, n + 1), TN_KEY_TOO_LONG);
    tn_tree_node_view v;
    assert_int_equal(tn_tree_get(t, big, n, &v), TN_SUCCESS);
    assert_int_equal(v.key_len, n);
    assert_int_equal(tn_tree_get(t, big, n + 1, &v), TN_KEY_TOO_LONG);
    /* a long final segment (beyond the u16 shortcut) still orders and removes correctly */
    char *seg = malloc(70001);
    memset(seg, 's', 70000);
    seg[70000] = 0;
    tn_tree_limits lim = {100000, 0, 0};
    tn_tree *t2 = tn_tree_new(&lim);
    assert_int_equal(put(t2, 1, seg, "v"), TN_SUCCESS);
    seg[69999] = 'a';
    assert_int_equal(put(t2, 2, seg, "w"), TN_SUCCESS);
    last_bytes lb;
    memset(&lb, 0, sizeof lb);
    assert_int_equal(tn_tree_list(t2, "", 0, NULL, 0, 0, collect_last, &lb), TN_SUCCESS);
    assert_int_equal(lb.n, 2);
    assert_int_equal(lb.last[0], 'a'); /* "...sa" sorts before "...ss" */
    assert_int_equal(lb.last[1], 's');
    assert_int_equal(tn_tree_remove(t2, &c, seg, 70000), TN_SUCCESS);
    assert_int_equal(tn_tree_count(t2), 1);
    tn_tree_free(t2);
    free(seg);
    free(big);
    tn_tree_free(t);
}

static void test_value_limits(void **state)
{
    (void)state;
    tn_tree_limits lim = {0, 16, 0};
    tn_tree *t = tn_tree_new(&lim);
    tn_wctx c = cx(1, 10, 0);
    assert_int_equal(tn_tree_put(t, &c, K("a"), "0123456789abcdef", 16), TN_SUCCESS);
    assert_int_equal(tn_tree_put(t, &c, K("b"), "0123456789abcdefg", 17), TN_VALUE_TOO_LONG);
    assert_int_equal(tn_tree_put(t, &c, K("b"), "", 0), TN_INVALID_VALUE);
    assert_int_equal(tn_tree_put(t, &c, K("b"), NULL, 3), TN_INVALID_VALUE);
    assert_int_equal(tn_tree_put_temp(t, &c, K("b"), "0123456789abcdefg", 17, 10), TN_VALUE_TOO_LONG);
    assert_int_equal(tn_tree_cas(t, &c, K("a"), "0123456789abcdef", 16, "0123456789abcdefg", 17),
                     TN_VALUE_TOO_LONG);
    assert_int_equal(get_rc(t, "b"), TN_NOT_FOUND);
    assert_int_equal(tn_tree_count(t), 1);
    tn_tree_free(t);

    /* the real 1 MiB default */
    t = tn_tree_new(NULL);
    size_t n = TN_TREE_MAX_VALUE_DEFAULT;
    uint8_t *big = malloc(n + 1);
    memset(big, 'v', n + 1);
    big[n - 1] = 'z';
    assert_int_equal(tn_tree_put(t, &c, K("big"), big, n), TN_SUCCESS);
    assert_int_equal(tn_tree_put(t, &c, K("big2"), big, n + 1), TN_VALUE_TOO_LONG);
    tn_tree_node_view v = get_ok(t, "big");
    assert_int_equal(v.value_len, n);
    assert_memory_equal(v.value, big, n);
    free(big);
    tn_tree_free(t);
}

/* ---- put / mkdir / remove ----------------------------------------------------------------------- */

static void test_put_overwrite(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    assert_int_equal(put(t, 5, "k", "one"), TN_SUCCESS);
    tn_tree_node_view v = get_ok(t, "k");
    assert_int_equal(v.create_rev, 5);
    assert_int_equal(v.update_rev, 5);
    assert_int_equal(v.create_time, 50);
    assert_int_equal(v.update_time, 50);
    assert_int_equal(v.owner, 0);
    assert_int_equal(v.ttl_ms, 0);
    assert_value(t, "k", "one");
    assert_int_equal(put(t, 9, "k", "a longer value than before"), TN_SUCCESS_OVERWRITE);
    v = get_ok(t, "k");
    assert_int_equal(v.create_rev, 5);
    assert_int_equal(v.create_time, 50);
    assert_int_equal(v.update_rev, 9);
    assert_int_equal(v.update_time, 90);
    assert_value(t, "k", "a longer value than before");
    /* times and revisions are kept losslessly, even odd ones (negative times, update < create) */
    tn_wctx c = cx(UINT64_MAX, INT64_MIN, 0);
    assert_int_equal(tn_tree_put(t, &c, K("k"), K("x")), TN_SUCCESS_OVERWRITE);
    v = get_ok(t, "k");
    assert_true(v.update_rev == UINT64_MAX);
    assert_true(v.update_time == INT64_MIN);
    assert_int_equal(v.create_rev, 5);
    c = cx(3, -7, 0);
    assert_int_equal(tn_tree_put(t, &c, K("k"), K("y")), TN_SUCCESS_OVERWRITE);
    v = get_ok(t, "k");
    assert_int_equal(v.update_rev, 3);
    assert_int_equal(v.update_time, -7);
    assert_int_equal(tn_tree_count(t), 1);
    tn_tree_free(t);
}

static void test_parent_rules(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    assert_int_equal(put(t, 1, "a.b", "v"), TN_PARENT_DIR_NOT_EXISTS);
    assert_int_equal(mkd(t, 1, "a.b"), TN_PARENT_DIR_NOT_EXISTS);
    assert_int_equal(put(t, 1, "a", "v"), TN_SUCCESS);
    assert_int_equal(put(t, 2, "a.b", "v"), TN_PARENT_NOT_DIR);
    assert_int_equal(mkd(t, 2, "a.b"), TN_PARENT_NOT_DIR);
    assert_int_equal(put(t, 2, "a.b.c", "v"), TN_PARENT_DIR_NOT_EXISTS);
    assert_int_equal(mkd(t, 3, "a"), TN_VALUE_EXISTS);
    assert_int_equal(mkd(t, 3, "d"), TN_SUCCESS);
    assert_int_equal(mkd(t, 4, "d"), TN_DIR_EXISTS);
    assert_int_equal(put(t, 4, "d", "v"), TN_DIR_EXISTS);
    tn_tree_node_view v = get_ok(t, "d");
    assert_true(v.is_dir);
    assert_null(v.value);
    assert_int_equal(v.create_rev, 3);
    assert_int_equal(tn_tree_count(t), 2);
    keys ks;
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_list(t, K("a"), NULL, 0, 0, collect, &ks), TN_PARENT_NOT_DIR);
    assert_int_equal(tn_tree_list(t, K("zz"), NULL, 0, 0, collect, &ks), TN_NOT_FOUND);
    assert_int_equal(tn_tree_list(t, K("a..b"), NULL, 0, 0, collect, &ks), TN_INVALID_KEY);
    tn_tree_free(t);
}

/* Repeated overwrites (in place when the node has room, rebuilt otherwise) keep every field right. */
static void test_overwrite_churn(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    assert_int_equal(mkd(t, 1, "d"), TN_SUCCESS);
    assert_int_equal(put(t, 2, "d.k", "aaaa"), TN_SUCCESS);
    assert_int_equal(put(t, 3, "d.j", "other"), TN_SUCCESS);
    uint64_t revs[] = {4, 1000000, 1000001, 5000000000ull, 5000000001ull, UINT64_MAX / 3};
    char val[32];
    for (int r = 0; r < 60; r++) {
        uint64_t rev = revs[r % 6] + (uint64_t)r;
        int64_t time = (r % 3 == 0) ? -(int64_t)r * 1000 : (int64_t)(rev % 1000000007u) * 7;
        int vl = sprintf(val, "%.*s", 3 + r % 9, "0123456789abcdef");
        val[0] = (char)('A' + r % 26);
        tn_wctx c = cx(rev, time, 0);
        assert_int_equal(tn_tree_put(t, &c, K("d.k"), val, (size_t)vl), TN_SUCCESS_OVERWRITE);
        tn_tree_node_view v = get_ok(t, "d.k");
        assert_int_equal(v.create_rev, 2);
        assert_int_equal(v.create_time, 20);
        assert_true(v.update_rev == rev);
        assert_true(v.update_time == time);
        assert_value(t, "d.k", val);
        assert_true(get_ok(t, "d").update_rev == rev);
    }
    /* a value that points into the node being overwritten */
    tn_tree_node_view v = get_ok(t, "d.k");
    char expect[32];
    memcpy(expect, v.value, v.value_len);
    expect[v.value_len] = 0;
    tn_wctx c = cx(100, 1000, 0);
    assert_int_equal(tn_tree_put(t, &c, K("d.k"), v.value, v.value_len), TN_SUCCESS_OVERWRITE);
    assert_value(t, "d.k", expect);
    v = get_ok(t, "d.k");
    assert_int_equal(tn_tree_put(t, &c, K("d.k"), v.value + 1, v.value_len - 1), TN_SUCCESS_OVERWRITE);
    assert_value(t, "d.k", expect + 1);
    v = get_ok(t, "d.k");
    assert_int_equal(tn_tree_cas(t, &c, K("d.k"), v.value, v.value_len, K("final")), TN_SUCCESS_OVERWRITE);
    assert_value(t, "d.k", "final");
    assert_value(t, "d.j", "other");
    /* temp heartbeats: update_ttl over and over, expiry order follows */
    tn_wctx o = cx(200, 0, 5);
    assert_int_equal(tn_tree_put_temp(t, &o, K("d.t1"), K("x"), 100), TN_SUCCESS);
    assert_int_equal(tn_tree_put_temp(t, &o, K("d.t2"), K("y"), 150), TN_SUCCESS);
    for (int r = 1; r <= 40; r++) {
        o = cx(200 + (uint64_t)r, (int64_t)r * 100, 5);
        const char *k = r % 2 ? "d.t1" : "d.t2";
        assert_int_equal(tn_tree_update_ttl(t, &o, K(k), 100), TN_SUCCESS);
        v = get_ok(t, k);
        assert_int_equal(v.expire_at, r * 100 + 100);
        assert_int_equal(v.update_rev, 200 + (uint64_t)r);
        assert_int_equal(v.create_rev, 200);
        keys ks;
        memset(&ks, 0, sizeof ks);
        assert_int_equal(tn_tree_due(t, INT64_MAX, 0, collect, &ks), TN_SUCCESS);
        assert_string_equal(ks.buf, r % 2 ? "d.t2|d.t1" : "d.t1|d.t2");
    }
    assert_value(t, "d.t1", "x");
    assert_int_equal(tn_tree_put_temp(t, &o, K("d.t1"), K("longer value now"), 5), TN_SUCCESS_OVERWRITE);
    assert_value(t, "d.t1", "longer value now");
    assert_int_equal(get_ok(t, "d.t1").expire_at, 4005);
    assert_int_equal(tn_tree_count(t), 5);
    tn_tree_free(t);
}

static void test_remove(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    tn_wctx c = cx(10, 100, 0);
    assert_int_equal(tn_tree_remove(t, &c, K("x")), TN_NOT_FOUND);
    assert_int_equal(mkd(t, 1, "d"), TN_SUCCESS);
    assert_int_equal(put(t, 2, "d.x", "v"), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(t, &c, K("d")), TN_HAS_CHILDREN);
    assert_int_equal(tn_tree_count(t), 2);
    assert_int_equal(tn_tree_remove(t, &c, K("d.x")), TN_SUCCESS);
    assert_int_equal(get_rc(t, "d.x"), TN_NOT_FOUND);
    tn_tree_node_view v = get_ok(t, "d");
    assert_int_equal(v.update_rev, 10);
    assert_int_equal(v.update_time, 100);
    assert_int_equal(v.create_rev, 1);
    assert_int_equal(get_ok(t, "").update_rev, 10);
    c.index = 11;
    assert_int_equal(tn_tree_remove(t, &c, K("d")), TN_SUCCESS);
    assert_int_equal(tn_tree_count(t), 0);
    assert_int_equal(get_ok(t, "").update_rev, 11);
    /* re-creation after removal works and is a fresh node */
    assert_int_equal(put(t, 12, "d", "again"), TN_SUCCESS);
    assert_int_equal(get_ok(t, "d").create_rev, 12);
    tn_tree_free(t);
}

static void test_deep_paths_and_ancestors(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    char key[1024] = "";
    size_t len = 0;
    enum { DEPTH = 150 };
    for (int i = 0; i < DEPTH; i++) {
        len += (size_t)sprintf(key + len, "%sd%d", i ? "." : "", i);
        assert_int_equal(mkd(t, (uint64_t)i + 1, key), TN_SUCCESS);
    }
    strcpy(key + len, ".leaf");
    assert_int_equal(put(t, 1000, key, "v"), TN_SUCCESS);
    assert_int_equal(tn_tree_count(t), DEPTH + 1);
    /* every ancestor (and the root) got update_rev 1000; create fields kept */
    char anc[1024];
    size_t alen = 0;
    for (int i = 0; i < DEPTH; i++) {
        alen += (size_t)sprintf(anc + alen, "%sd%d", i ? "." : "", i);
        tn_tree_node_view v = get_ok(t, anc);
        assert_int_equal(v.update_rev, 1000);
        assert_int_equal(v.update_time, 10000);
        assert_int_equal(v.create_rev, (uint64_t)i + 1);
    }
    assert_int_equal(get_ok(t, "").update_rev, 1000);
    /* a failed write changes nothing at all */
    size_t l0;
    uint8_t *before = image_of(t, &l0);
    assert_int_equal(put(t, 2000, "d0.d1", "v"), TN_DIR_EXISTS);
    assert_int_equal(put(t, 2000, "d0.nope.x", "v"), TN_PARENT_DIR_NOT_EXISTS);
    assert_int_equal(mkd(t, 2000, "d0"), TN_DIR_EXISTS);
    tn_wctx c = cx(2000, 1, 0);
    assert_int_equal(tn_tree_remove(t, &c, K("d0")), TN_HAS_CHILDREN);
    size_t l1;
    uint8_t *after = image_of(t, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, after, l0);
    free(before);
    free(after);
    /* remove the leaf: the ancestors record the removal */
    c = cx(3000, 30000, 0);
    assert_int_equal(tn_tree_remove(t, &c, key, strlen(key)), TN_SUCCESS);
    assert_int_equal(get_ok(t, "d0").update_rev, 3000);
    assert_int_equal(get_ok(t, "d0.d1.d2").update_time, 30000);
    /* and tear down bottom-up */
    for (int i = DEPTH - 1; i >= 0; i--) {
        key[len] = 0;
        c.index++;
        assert_int_equal(tn_tree_remove(t, &c, key, len), TN_SUCCESS);
        char *dot = strrchr(key, '.');
        len = dot ? (size_t)(dot - key) : 0;
    }
    assert_int_equal(tn_tree_count(t), 0);
    tn_tree_free(t);
}

/* ---- compare-and-set ---------------------------------------------------------------------------- */

static void test_cas(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    tn_wctx c = cx(1, 10, 0);
    assert_int_equal(tn_tree_cas(t, &c, K("k"), NULL, 0, NULL, 0), TN_INVALID_VALUE);
    assert_int_equal(tn_tree_cas(t, &c, K("k..x"), NULL, 0, K("v")), TN_INVALID_KEY);
    /* expect absent: creates */
    assert_int_equal(tn_tree_cas(t, &c, K("k"), NULL, 0, K("v1")), TN_SUCCESS);
    assert_value(t, "k", "v1");
    assert_int_equal(get_ok(t, "k").create_rev, 1);
    c.index = 2;
    assert_int_equal(tn_tree_cas(t, &c, K("k"), NULL, 0, K("v2")), TN_CAS_MISMATCH);
    assert_int_equal(tn_tree_cas(t, &c, K("k"), K("wrong"), K("v2")), TN_CAS_MISMATCH);
    assert_int_equal(tn_tree_cas(t, &c, K("k"), K("v"), K("v2")), TN_CAS_MISMATCH); /* prefix only */
    assert_int_equal(tn_tree_cas(t, &c, K("k"), K("v1"), K("v2")), TN_SUCCESS_OVERWRITE);
    tn_tree_node_view v = get_ok(t, "k");
    assert_int_equal(v.create_rev, 1);
    assert_int_equal(v.update_rev, 2);
    assert_value(t, "k", "v2");
    /* delete on match */
    c.index = 3;
    assert_int_equal(tn_tree_cas(t, &c, K("k"), K("v1"), NULL, 0), TN_CAS_MISMATCH);
    assert_int_equal(tn_tree_cas(t, &c, K("k"), K("v2"), NULL, 0), TN_SUCCESS);
    assert_int_equal(get_rc(t, "k"), TN_NOT_FOUND);
    assert_int_equal(get_ok(t, "").update_rev, 3);
    assert_int_equal(tn_tree_cas(t, &c, K("k"), K("v2"), NULL, 0), TN_CAS_MISMATCH);
    assert_int_equal(tn_tree_cas(t, &c, K("k"), K("v2"), K("v3")), TN_CAS_MISMATCH);
    /* directories, temp nodes, parents */
    assert_int_equal(mkd(t, 4, "d"), TN_SUCCESS);
    assert_int_equal(tn_tree_cas(t, &c, K("d"), NULL, 0, K("v")), TN_DIR_EXISTS);
    assert_int_equal(tn_tree_cas(t, &c, K("d"), K("x"), NULL, 0), TN_DIR_EXISTS);
    assert_int_equal(tn_tree_cas(t, &c, K("q.r"), NULL, 0, K("v")), TN_PARENT_DIR_NOT_EXISTS);
    c = cx(5, 50, 9);
    assert_int_equal(tn_tree_put_temp(t, &c, K("tmp"), K("t"), 1000), TN_SUCCESS);
    assert_int_equal(tn_tree_cas(t, &c, K("tmp"), K("t"), K("u")), TN_IS_TEMP_NODE);
    assert_int_equal(tn_tree_mkdir_temp(t, &c, K("td"), 1000), TN_SUCCESS);
    assert_int_equal(tn_tree_cas(t, &c, K("td.x"), NULL, 0, K("v")), TN_UNDER_TEMP_DIR);
    assert_int_equal(tn_tree_count(t), 3);
    tn_tree_free(t);
}

/* ---- temp nodes --------------------------------------------------------------------------------- */

static void test_temp_nodes(void **state)
{
    (void)state;
    tn_tree_limits lim = {0, 0, 100000};
    tn_tree *t = tn_tree_new(&lim);
    tn_wctx c1 = cx(1, 1000, 1), c2 = cx(2, 2000, 2);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("t"), K("v"), 0), TN_INVALID_TTL);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("t"), K("v"), -5), TN_INVALID_TTL);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("t"), K("v"), 100001), TN_INVALID_TTL);
    assert_int_equal(tn_tree_mkdir_temp(t, &c1, K("td"), 0), TN_INVALID_TTL);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("t"), K("v"), 100000), TN_SUCCESS);
    tn_tree_node_view v = get_ok(t, "t");
    assert_int_equal(v.owner, 1);
    assert_int_equal(v.ttl_ms, 100000);
    assert_int_equal(v.expire_at, 101000);
    assert_int_equal(v.create_rev, 1);
    assert_false(v.is_dir);
    /* plain writes over a temp node */
    assert_int_equal(put(t, 3, "t", "x"), TN_IS_TEMP_NODE);
    /* another owner */
    assert_int_equal(tn_tree_put_temp(t, &c2, K("t"), K("x"), 10), TN_NOT_OWNER);
    assert_int_equal(tn_tree_remove(t, &c2, K("t")), TN_NOT_OWNER);
    assert_int_equal(tn_tree_update_ttl(t, &c2, K("t"), 10), TN_NOT_OWNER);
    /* the owner updates value and TTL */
    c1 = cx(4, 4000, 1);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("t"), K("new value"), 50), TN_SUCCESS_OVERWRITE);
    v = get_ok(t, "t");
    assert_int_equal(v.ttl_ms, 50);
    assert_int_equal(v.expire_at, 4050);
    assert_int_equal(v.create_rev, 1);
    assert_int_equal(v.update_rev, 4);
    assert_value(t, "t", "new value");
    /* temp ops over plain nodes */
    assert_int_equal(put(t, 5, "p", "plain"), TN_SUCCESS);
    assert_int_equal(mkd(t, 6, "pd"), TN_SUCCESS);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("p"), K("x"), 10), TN_NOT_TEMP_NODE);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("pd"), K("x"), 10), TN_NOT_TEMP_NODE);
    assert_int_equal(tn_tree_mkdir_temp(t, &c1, K("p"), 10), TN_NOT_TEMP_NODE);
    assert_int_equal(tn_tree_mkdir_temp(t, &c1, K("pd"), 10), TN_NOT_TEMP_NODE);
    assert_int_equal(tn_tree_mkdir_temp(t, &c2, K("t"), 10), TN_NOT_OWNER);
    assert_int_equal(tn_tree_mkdir_temp(t, &c1, K("t"), 10), TN_VALUE_EXISTS);
    /* temp directories */
    assert_int_equal(tn_tree_mkdir_temp(t, &c1, K("td"), 1000), TN_SUCCESS);
    v = get_ok(t, "td");
    assert_true(v.is_dir);
    assert_int_equal(v.owner, 1);
    assert_int_equal(v.expire_at, 5000);
    assert_int_equal(tn_tree_mkdir_temp(t, &c1, K("td"), 5), TN_DIR_EXISTS);
    assert_int_equal(get_ok(t, "td").expire_at, 5000); /* not refreshed */
    assert_int_equal(tn_tree_mkdir_temp(t, &c2, K("td"), 5), TN_NOT_OWNER);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("td"), K("x"), 5), TN_DIR_EXISTS);
    assert_int_equal(mkd(t, 7, "td"), TN_DIR_EXISTS);
    assert_int_equal(put(t, 7, "td", "x"), TN_DIR_EXISTS);
    /* children of a temp dir: only temp nodes of its owner */
    assert_int_equal(tn_tree_put_temp(t, &c1, K("td.a"), K("x"), 10), TN_SUCCESS);
    assert_int_equal(tn_tree_put_temp(t, &c2, K("td.b"), K("x"), 10), TN_NOT_OWNER);
    assert_int_equal(tn_tree_mkdir_temp(t, &c2, K("td.b"), 10), TN_NOT_OWNER);
    assert_int_equal(put(t, 8, "td.b", "x"), TN_UNDER_TEMP_DIR);
    assert_int_equal(mkd(t, 8, "td.b"), TN_UNDER_TEMP_DIR);
    assert_int_equal(tn_tree_mkdir_temp(t, &c1, K("td.sub"), 10), TN_SUCCESS);
    assert_int_equal(put(t, 9, "td.sub.deep", "x"), TN_UNDER_TEMP_DIR);
    assert_int_equal(tn_tree_put_temp(t, &c1, K("td.sub.deep"), K("x"), 10), TN_SUCCESS);
    /* an expiry beyond the int64 range saturates */
    tn_wctx late = cx(10, INT64_MAX - 5, 1);
    assert_int_equal(tn_tree_put_temp(t, &late, K("late"), K("x"), 100), TN_SUCCESS);
    assert_true(get_ok(t, "late").expire_at == INT64_MAX);
    assert_int_equal(tn_tree_update_ttl(t, &late, K("late"), 100000), TN_SUCCESS);
    assert_true(get_ok(t, "late").expire_at == INT64_MAX);
    assert_int_equal(tn_tree_remove(t, &late, K("late")), TN_SUCCESS);
    /* temp nodes under a plain directory are fine for anyone */
    assert_int_equal(tn_tree_put_temp(t, &c2, K("pd.lock"), K("me"), 10), TN_SUCCESS);
    /* removal by the owner; a temp dir with children is still HAS_CHILDREN */
    assert_int_equal(tn_tree_remove(t, &c1, K("td")), TN_HAS_CHILDREN);
    assert_int_equal(tn_tree_remove(t, &c2, K("td")), TN_NOT_OWNER);
    assert_int_equal(tn_tree_remove(t, &c1, K("td.a")), TN_SUCCESS);
    assert_int_equal(tn_tree_count(t), 7);
    tn_tree_free(t);
}

static void test_update_ttl(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    tn_wctx c = cx(1, 1000, 3);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("x"), 10), TN_NOT_FOUND);
    assert_int_equal(put(t, 2, "p", "v"), TN_SUCCESS);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("p"), 10), TN_NOT_TEMP_NODE);
    assert_int_equal(mkd(t, 3, "d"), TN_SUCCESS);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("d"), 10), TN_NOT_TEMP_NODE);
    c = cx(4, 4000, 3);
    assert_int_equal(tn_tree_put_temp(t, &c, K("d.t"), K("v"), 100), TN_SUCCESS);
    assert_int_equal(tn_tree_mkdir_temp(t, &c, K("td"), 100), TN_SUCCESS);
    tn_wctx other = cx(5, 5000, 4);
    assert_int_equal(tn_tree_update_ttl(t, &other, K("d.t"), 10), TN_NOT_OWNER);
    c = cx(6, 6000, 3);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("d.t"), 0), TN_INVALID_TTL);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("d.t"), TN_TREE_MAX_TTL_MS_DEFAULT + 1), TN_INVALID_TTL);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("d.t"), 777), TN_SUCCESS);
    tn_tree_node_view v = get_ok(t, "d.t");
    assert_int_equal(v.ttl_ms, 777);
    assert_int_equal(v.expire_at, 6777);
    assert_int_equal(v.update_rev, 6);
    assert_int_equal(v.update_time, 6000);
    assert_int_equal(v.create_rev, 4);
    assert_value(t, "d.t", "v");
    assert_int_equal(get_ok(t, "d").update_rev, 6);
    assert_int_equal(get_ok(t, "").update_rev, 6);
    c = cx(7, 7000, 3);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("td"), 1), TN_SUCCESS);
    v = get_ok(t, "td");
    assert_int_equal(v.expire_at, 7001);
    assert_int_equal(v.update_rev, 7);
    assert_int_equal(v.create_rev, 4);
    /* due order follows the new expiry */
    keys ks;
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(t, 10000, 0, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "d.t|td");
    tn_tree_free(t);
}

static void test_expire(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    tn_wctx c = cx(1, 1000, 5);
    assert_int_equal(tn_tree_expire(t, &c, K("x"), 1), TN_NOT_FOUND);
    assert_int_equal(put(t, 1, "p", "v"), TN_SUCCESS);
    assert_int_equal(tn_tree_expire(t, &c, K("p"), 1), TN_NOT_TEMP_NODE);
    assert_int_equal(mkd(t, 2, "base"), TN_SUCCESS);
    c = cx(10, 1000, 5);
    assert_int_equal(tn_tree_mkdir_temp(t, &c, K("base.td"), 500), TN_SUCCESS);
    c.index = 11;
    assert_int_equal(tn_tree_put_temp(t, &c, K("base.td.a"), K("1"), 100000), TN_SUCCESS);
    c.index = 12;
    assert_int_equal(tn_tree_mkdir_temp(t, &c, K("base.td.sub"), 100000), TN_SUCCESS);
    for (int i = 0; i < 50; i++) {
        char k[64];
        sprintf(k, "base.td.sub.n%02d", i);
        c.index = 13 + (uint64_t)i;
        assert_int_equal(tn_tree_put_temp(t, &c, K(k), K("x"), 100000), TN_SUCCESS);
    }
    assert_int_equal(tn_tree_count(t), 2 + 3 + 50);
    /* not yet: the dir expires at 1500 */
    tn_wctx e = cx(100, 1499, 0);
    assert_int_equal(tn_tree_expire(t, &e, K("base.td"), 10), TN_NOT_EXPIRED);
    e.time_ms = 1500;
    assert_int_equal(tn_tree_expire(t, &e, K("base.td"), 9), TN_TTL_INDEX_MISMATCH);
    keys ks;
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(t, 1500, 0, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "base.td");
    /* the whole subtree goes, whatever the owner of the expirer */
    assert_int_equal(tn_tree_expire(t, &e, K("base.td"), 10), TN_SUCCESS);
    assert_int_equal(tn_tree_count(t), 2);
    assert_int_equal(get_rc(t, "base.td"), TN_NOT_FOUND);
    assert_int_equal(get_rc(t, "base.td.a"), TN_NOT_FOUND);
    assert_int_equal(get_rc(t, "base.td.sub.n07"), TN_NOT_FOUND);
    assert_int_equal(get_ok(t, "base").update_rev, 100);
    assert_int_equal(get_ok(t, "base").update_time, 1500);
    assert_int_equal(get_ok(t, "").update_rev, 100);
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(t, INT64_MAX, 0, collect, &ks), TN_SUCCESS);
    assert_int_equal(ks.seen, 0);
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_walk(t, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "base|p");

    /* TTL_INDEX_MISMATCH after re-creation */
    c = cx(200, 2000, 5);
    assert_int_equal(tn_tree_put_temp(t, &c, K("lock"), K("a"), 10), TN_SUCCESS);
    c = cx(201, 2001, 5);
    assert_int_equal(tn_tree_remove(t, &c, K("lock")), TN_SUCCESS);
    c = cx(202, 2002, 5);
    assert_int_equal(tn_tree_put_temp(t, &c, K("lock"), K("b"), 10), TN_SUCCESS);
    e = cx(203, 5000, 0);
    assert_int_equal(tn_tree_expire(t, &e, K("lock"), 200), TN_TTL_INDEX_MISMATCH);
    assert_value(t, "lock", "b");
    assert_int_equal(tn_tree_expire(t, &e, K("lock"), 202), TN_SUCCESS);
    assert_int_equal(get_rc(t, "lock"), TN_NOT_FOUND);
    assert_int_equal(tn_tree_count(t), 2);
    tn_tree_free(t);
}

/* due() must visit in (expire_at, key) order */
typedef struct due_check {
    int64_t prev_exp;
    uint8_t prev_key[64];
    size_t prev_len;
    int n;
} due_check;

static int check_due(void *arg, const tn_tree_node_view *v)
{
    due_check *dc = arg;
    if (dc->n) {
        assert_true(dc->prev_exp <= v->expire_at);
        if (dc->prev_exp == v->expire_at) {
            size_t m = dc->prev_len < v->key_len ? dc->prev_len : v->key_len;
            int c = memcmp(dc->prev_key, v->key, m);
            assert_true(c < 0 || (c == 0 && dc->prev_len < v->key_len));
        }
    }
    assert_true(v->key_len < sizeof dc->prev_key);
    memcpy(dc->prev_key, v->key, v->key_len);
    dc->prev_len = v->key_len;
    dc->prev_exp = v->expire_at;
    dc->n++;
    return 0;
}

static void test_due_order(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    /* expire_at: c=150, a=200, b=200 (tie: key order), d=300, e=400 */
    struct { const char *k; int64_t time, ttl; } in[] = {
        {"e", 100, 300}, {"b", 100, 100}, {"d", 200, 100}, {"a", 150, 50}, {"c", 50, 100}};
    for (size_t i = 0; i < 5; i++) {
        tn_wctx c = cx(i + 1, in[i].time, 1);
        assert_int_equal(tn_tree_put_temp(t, &c, K(in[i].k), K("v"), in[i].ttl), TN_SUCCESS);
    }
    assert_int_equal(put(t, 9, "plain", "v"), TN_SUCCESS);
    keys ks;
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(t, 1000, 0, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "c|a|b|d|e");
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(t, 299, 0, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "c|a|b");
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(t, 1000, 2, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "c|a");
    memset(&ks, 0, sizeof ks);
    ks.stop_after = 3;
    assert_int_equal(tn_tree_due(t, 1000, 0, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "c|a|b");
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(t, 149, 0, collect, &ks), TN_SUCCESS);
    assert_int_equal(ks.seen, 0);
    /* many temp nodes: due() returns them sorted by expiry then key */
    for (int i = 0; i < 300; i++) {
        char k[32];
        sprintf(k, "m%03d", (i * 7919) % 300);
        tn_wctx c = cx(100 + (uint64_t)i, 0, 1);
        assert_int_equal(tn_tree_put_temp(t, &c, K(k), K("v"), 1 + (i * 37) % 50), TN_SUCCESS);
    }
    due_check st;
    memset(&st, 0, sizeof st);
    assert_int_equal(tn_tree_due(t, 60, 0, check_due, &st), TN_SUCCESS);
    assert_int_equal(st.n, 300);
    tn_tree_free(t);
}

/* ---- ordering ----------------------------------------------------------------------------------- */

static void test_list_order_and_paging(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    const char *segs[] = {"b", "a", "ab", "a-b", "aa", "B", "a0", "\xff", "abc", "zz"};
    assert_int_equal(mkd(t, 1, "d"), TN_SUCCESS);
    for (size_t i = 0; i < sizeof segs / sizeof *segs; i++) {
        char k[32];
        sprintf(k, "d.%s", segs[i]);
        assert_int_equal(put(t, 2 + i, k, "v"), TN_SUCCESS);
    }
    assert_int_equal(mkd(t, 20, "d.a.x"), TN_PARENT_NOT_DIR);
    assert_int_equal(mkd(t, 20, "d.m"), TN_SUCCESS);
    assert_int_equal(put(t, 21, "d.m.inner", "v"), TN_SUCCESS);
    keys ks;
    const char *full = "d.B|d.a|d.a-b|d.a0|d.aa|d.ab|d.abc|d.b|d.m|d.zz|d.\xff";
    assert_string_equal(list_str(t, "d", NULL, 0, &ks), full);
    assert_int_equal(ks.seen, 11);
    /* paging: limit 3 pages chained with `after` give the full list */
    char acc[1024] = "";
    char after[64] = "";
    for (;;) {
        list_str(t, "d", after[0] ? after : NULL, 3, &ks);
        if (!ks.seen) break;
        assert_true(ks.seen <= 3);
        if (acc[0]) strcat(acc, "|");
        strcat(acc, ks.buf);
        const char *last = strrchr(ks.buf, '|');
        strcpy(after, last ? last + 1 : ks.buf);
    }
    assert_string_equal(acc, full);
    assert_string_equal(list_str(t, "d", "d.aa", 2, &ks), "d.ab|d.abc");
    assert_string_equal(list_str(t, "d", "d.ac", 0, &ks), "d.b|d.m|d.zz|d.\xff"); /* absent `after` */
    assert_string_equal(list_str(t, "d", "d.\xff", 0, &ks), "");
    assert_string_equal(list_str(t, "", NULL, 0, &ks), "d");
    assert_string_equal(list_str(t, "", "d", 0, &ks), "");
    assert_string_equal(list_str(t, "", "c", 0, &ks), "d");
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_list(t, K("d"), K("e.x"), 0, collect, &ks), TN_INVALID_KEY);
    assert_int_equal(tn_tree_list(t, K("d"), K("d."), 0, collect, &ks), TN_INVALID_KEY);
    ks.stop_after = 2;
    assert_int_equal(tn_tree_list(t, K("d"), NULL, 0, 0, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "d.B|d.a");
    /* walk: pre-order, children in key order */
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_walk(t, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "d|d.B|d.a|d.a-b|d.a0|d.aa|d.ab|d.abc|d.b|d.m|d.m.inner|d.zz|d.\xff");
    memset(&ks, 0, sizeof ks);
    ks.stop_after = 3;
    assert_int_equal(tn_tree_walk(t, collect, &ks), TN_SUCCESS);
    assert_string_equal(ks.buf, "d|d.B|d.a");
    tn_tree_free(t);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

typedef struct order_check {
    char prev[32];
    size_t prev_len;
    int n;
} order_check;

static int check_sorted(void *arg, const tn_tree_node_view *v)
{
    order_check *oc = arg;
    if (oc->n) {
        size_t m = oc->prev_len < v->key_len ? oc->prev_len : v->key_len;
        int c = memcmp(oc->prev, v->key, m);
        assert_true(c < 0 || (c == 0 && oc->prev_len < v->key_len));
    }
    assert_true(v->key_len <= sizeof oc->prev);
    memcpy(oc->prev, v->key, v->key_len);
    oc->prev_len = v->key_len;
    oc->n++;
    return 0;
}

static void test_big_directory(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    enum { N = 20000 };
    uint64_t s = 12345;
    char k[32];
    for (int i = 0; i < N; i++) {
        sprintf(k, "%016llx", (unsigned long long)rng_next(&s));
        assert_int_equal(put(t, (uint64_t)i + 1, k, "value"), TN_SUCCESS);
    }
    assert_int_equal(tn_tree_count(t), N);
    order_check oc;
    memset(&oc, 0, sizeof oc);
    assert_int_equal(tn_tree_list(t, "", 0, NULL, 0, 0, check_sorted, &oc), TN_SUCCESS);
    assert_int_equal(oc.n, N);
    /* remove every other key; the rest stays ordered and findable */
    s = 12345;
    for (int i = 0; i < N; i++) {
        sprintf(k, "%016llx", (unsigned long long)rng_next(&s));
        tn_wctx c = cx((uint64_t)N + (uint64_t)i + 1, 0, 0);
        if (i % 2) assert_int_equal(tn_tree_remove(t, &c, K(k)), TN_SUCCESS);
        else assert_int_equal(get_rc(t, k), TN_SUCCESS);
    }
    memset(&oc, 0, sizeof oc);
    assert_int_equal(tn_tree_walk(t, check_sorted, &oc), TN_SUCCESS);
    assert_int_equal(oc.n, N / 2);
    assert_int_equal(tn_tree_count(t), N / 2);
    tn_tree_free(t);
}

/* ---- the children index under churn, against a reference model -------------------------------- */

enum { STRESS_KEYS = 3000 };

typedef struct model_check {
    const uint8_t *present; /* present[i]: key "d.k%05d" % i exists */
    int next;               /* next index expected */
    int n;
} model_check;

static int check_model(void *arg, const tn_tree_node_view *v)
{
    model_check *mc = arg;
    while (mc->next < STRESS_KEYS && !mc->present[mc->next]) mc->next++;
    assert_true(mc->next < STRESS_KEYS);
    char k[32];
    int kl = sprintf(k, "d.k%05d", mc->next);
    assert_int_equal(v->key_len, (size_t)kl);
    assert_memory_equal(v->key, k, (size_t)kl);
    mc->next++;
    mc->n++;
    return 0;
}

static void verify_model(tn_tree *t, const uint8_t *present)
{
    int expect = 0;
    for (int i = 0; i < STRESS_KEYS; i++) expect += present[i];
    model_check mc = {present, 0, 0};
    assert_int_equal(tn_tree_list(t, K("d"), NULL, 0, 0, check_model, &mc), TN_SUCCESS);
    assert_int_equal(mc.n, expect);
    assert_int_equal(tn_tree_count(t), (size_t)expect + 1);
    /* paging from every present key lands on the next present key */
    for (int i = 0; i < STRESS_KEYS; i += 97) {
        char after[32];
        sprintf(after, "d.k%05d", i);
        model_check pc = {present, i + 1, 0};
        assert_int_equal(tn_tree_list(t, K("d"), K(after), 5, check_model, &pc), TN_SUCCESS);
        int left = 0;
        for (int j = i + 1; j < STRESS_KEYS && left < 5; j++) left += present[j];
        assert_int_equal(pc.n, left);
    }
}

static void set_key(tn_tree *t, uint8_t *present, int i, int on, uint64_t idx)
{
    char k[32];
    sprintf(k, "d.k%05d", i);
    tn_wctx c = cx(idx, 0, 0);
    if (on) assert_int_equal(tn_tree_put(t, &c, K(k), K("v")), present[i] ? TN_SUCCESS_OVERWRITE : TN_SUCCESS);
    else assert_int_equal(tn_tree_remove(t, &c, K(k)), present[i] ? TN_SUCCESS : TN_NOT_FOUND);
    present[i] = (uint8_t)on;
}

static void test_index_churn(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    uint8_t present[STRESS_KEYS];
    memset(present, 0, sizeof present);
    uint64_t idx = 1;
    assert_int_equal(mkd(t, idx++, "d"), TN_SUCCESS);
    /* ascending fill, descending drain */
    for (int i = 0; i < STRESS_KEYS; i++) set_key(t, present, i, 1, idx++);
    verify_model(t, present);
    for (int i = STRESS_KEYS - 1; i >= 0; i--) set_key(t, present, i, 0, idx++);
    verify_model(t, present);
    /* descending fill, ascending drain */
    for (int i = STRESS_KEYS - 1; i >= 0; i--) set_key(t, present, i, 1, idx++);
    verify_model(t, present);
    for (int i = 0; i < STRESS_KEYS; i++) set_key(t, present, i, 0, idx++);
    verify_model(t, present);
    /* random churn with phases biased to grow, shrink to nearly empty, and grow again */
    uint64_t s = 777;
    int bias[] = {80, 5, 70, 2, 50};
    for (size_t ph = 0; ph < sizeof bias / sizeof *bias; ph++) {
        for (int r = 0; r < 8000; r++) {
            int i = (int)(rng_next(&s) % STRESS_KEYS);
            set_key(t, present, i, (int)(rng_next(&s) % 100) < bias[ph], idx++);
        }
        verify_model(t, present);
    }
    /* every other key removed: many underfull leaves merge */
    for (int i = 0; i < STRESS_KEYS; i++) set_key(t, present, i, 1, idx++);
    for (int i = 0; i < STRESS_KEYS; i += 2) set_key(t, present, i, 0, idx++);
    verify_model(t, present);
    for (int i = 1; i < STRESS_KEYS; i += 2) set_key(t, present, i, 0, idx++);
    verify_model(t, present);
    tn_wctx c = cx(idx++, 0, 0);
    assert_int_equal(tn_tree_remove(t, &c, K("d")), TN_SUCCESS);
    assert_int_equal(tn_tree_count(t), 0);
    tn_tree_free(t);
}

/* Removing a big temp directory frees every node (LeakSanitizer checks) and the table stays usable. */
static void test_expire_big_subtree(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    tn_wctx c = cx(1, 0, 4);
    assert_int_equal(tn_tree_mkdir_temp(t, &c, K("td"), 10), TN_SUCCESS);
    char k[64];
    for (int i = 0; i < 40; i++) {
        sprintf(k, "td.sub%02d", i);
        c.index++;
        assert_int_equal(tn_tree_mkdir_temp(t, &c, K(k), 1000), TN_SUCCESS);
        for (int j = 0; j < 60; j++) {
            sprintf(k, "td.sub%02d.v%02d", i, j);
            c.index++;
            assert_int_equal(tn_tree_put_temp(t, &c, K(k), K("x"), 1000), TN_SUCCESS);
        }
    }
    assert_int_equal(put(t, c.index + 1, "other", "y"), TN_SUCCESS);
    assert_int_equal(tn_tree_count(t), 1 + 40 + 40 * 60 + 1);
    tn_wctx e = cx(c.index + 2, 10, 0);
    assert_int_equal(tn_tree_expire(t, &e, K("td"), 1), TN_SUCCESS);
    assert_int_equal(tn_tree_count(t), 1);
    assert_int_equal(get_rc(t, "td.sub07.v33"), TN_NOT_FOUND);
    assert_value(t, "other", "y");
    keys ks;
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(t, INT64_MAX, 0, collect, &ks), TN_SUCCESS);
    assert_int_equal(ks.seen, 0);
    for (int i = 0; i < 500; i++) {
        sprintf(k, "n%03d", i);
        assert_int_equal(put(t, e.index + 1 + (uint64_t)i, k, "z"), TN_SUCCESS);
    }
    assert_int_equal(tn_tree_count(t), 501);
    tn_tree_free(t);
}

/* ---- memory ------------------------------------------------------------------------------------- */

static void test_memory_target(void **state)
{
    (void)state;
    tn_tree *t = tn_tree_new(NULL);
    size_t base = tn_tree_memory(t);
    assert_true(base > 0);
    enum { N = 20000 };
    char k[17], v[101];
    memset(v, 'v', 100);
    v[100] = 0;
    uint64_t s = 99;
    for (int i = 0; i < N; i++) {
        sprintf(k, "%016llx", (unsigned long long)rng_next(&s));
        assert_int_equal(put(t, (uint64_t)i + 1, k, v), TN_SUCCESS);
    }
    size_t per_node = (tn_tree_memory(t) - base) / N;
    print_message("tree memory: %zu bytes/node for 16 B key + 100 B value\n", per_node);
    assert_true(per_node >= 116);
    assert_true(per_node - 116 <= 64);
    /* removing everything gives the node memory back (the table keeps its size) */
    s = 99;
    for (int i = 0; i < N; i++) {
        sprintf(k, "%016llx", (unsigned long long)rng_next(&s));
        tn_wctx c = cx((uint64_t)N + (uint64_t)i + 1, 0, 0);
        assert_int_equal(tn_tree_remove(t, &c, K(k)), TN_SUCCESS);
    }
    assert_true(tn_tree_memory(t) - base <= 32768 * (sizeof(void *) + 1)); /* slots + tags */
    tn_tree_free(t);
}

/* ---- determinism and images --------------------------------------------------------------------- */

/* Applies one pseudo-random op to both trees and checks they answer alike; counts successes per op
 * kind in ok[10] (may be NULL). */
static void random_op(tn_tree *a, tn_tree *b, uint64_t *s, uint64_t idx, int *ok)
{
    static const char *segs[] = {"a", "b", "cc", "d"};
    char key[64];
    size_t len = 0;
    int depth = 1 + (int)(rng_next(s) % 3);
    for (int i = 0; i < depth; i++)
        len += (size_t)sprintf(key + len, "%s%s", i ? "." : "", segs[rng_next(s) % 4]);
    char val[32];
    int vlen = sprintf(val, "v%llu", (unsigned long long)(rng_next(s) % 50));
    tn_wctx c = cx(idx, (int64_t)idx * 3, 1 + rng_next(s) % 2);
    int64_t ttl = 1 + (int64_t)(rng_next(s) % 40);
    tn_tree_node_view v;
    int ra, rb;
    int kind = (int)(rng_next(s) % 10);
    switch (kind) {
    case 0:
    case 1:
        ra = tn_tree_put(a, &c, key, len, val, (size_t)vlen);
        rb = tn_tree_put(b, &c, key, len, val, (size_t)vlen);
        break;
    case 2:
        ra = tn_tree_mkdir(a, &c, key, len);
        rb = tn_tree_mkdir(b, &c, key, len);
        break;
    case 3:
        ra = tn_tree_remove(a, &c, key, len);
        rb = tn_tree_remove(b, &c, key, len);
        break;
    case 4: {
        const char *exp = rng_next(s) % 2 ? NULL : val;
        ra = tn_tree_cas(a, &c, key, len, exp, exp ? (size_t)vlen : 0, "n", 1);
        rb = tn_tree_cas(b, &c, key, len, exp, exp ? (size_t)vlen : 0, "n", 1);
        break;
    }
    case 5:
        ra = tn_tree_put_temp(a, &c, key, len, val, (size_t)vlen, ttl);
        rb = tn_tree_put_temp(b, &c, key, len, val, (size_t)vlen, ttl);
        break;
    case 6:
        ra = tn_tree_mkdir_temp(a, &c, key, len, ttl);
        rb = tn_tree_mkdir_temp(b, &c, key, len, ttl);
        break;
    case 7:
        ra = tn_tree_update_ttl(a, &c, key, len, ttl);
        rb = tn_tree_update_ttl(b, &c, key, len, ttl);
        break;
    default: {
        uint64_t rev = tn_tree_get(a, key, len, &v) == TN_SUCCESS ? v.create_rev : 0;
        ra = tn_tree_expire(a, &c, key, len, rev);
        rb = tn_tree_expire(b, &c, key, len, rev);
        break;
    }
    }
    assert_int_equal(ra, rb);
    if (ok && tn_code_ok(ra)) ok[kind]++;
}

static void test_determinism_and_round_trip(void **state)
{
    (void)state;
    tn_tree *a = tn_tree_new(NULL), *b = tn_tree_new(NULL);
    uint64_t s = 0x5eed;
    int ok[10] = {0};
    for (uint64_t i = 1; i <= 3000; i++) random_op(a, b, &s, i, ok);
    for (int k = 0; k < 10; k++) assert_true(ok[k] > 0); /* every kind of op really happened */
    assert_int_equal(tn_tree_count(a), tn_tree_count(b));
    assert_true(tn_tree_count(a) > 10);
    assert_same_image(a, b);
    /* some temp nodes survived, so the image covers them */
    keys ks;
    memset(&ks, 0, sizeof ks);
    assert_int_equal(tn_tree_due(a, INT64_MAX, 0, collect, &ks), TN_SUCCESS);
    assert_true(ks.seen > 0);
    /* serialize -> deserialize -> serialize */
    size_t len;
    uint8_t *img = image_of(a, &len);
    tn_tree *c = tn_tree_new(NULL);
    assert_int_equal(put(c, 1, "junk", "to be replaced"), TN_SUCCESS);
    assert_int_equal(tn_tree_deserialize(c, img, len), TN_SUCCESS);
    assert_int_equal(tn_tree_count(c), tn_tree_count(a));
    assert_same_image(a, c);
    keys kc;
    memset(&kc, 0, sizeof kc);
    assert_int_equal(tn_tree_due(c, INT64_MAX, 0, collect, &kc), TN_SUCCESS);
    assert_string_equal(kc.buf, ks.buf);
    /* and the restored tree keeps evolving like the original */
    uint64_t s2 = 0xabc;
    for (uint64_t i = 3001; i <= 4000; i++) random_op(a, c, &s2, i, NULL);
    assert_same_image(a, c);
    free(img);
    tn_tree_free(a);
    tn_tree_free(b);
    tn_tree_free(c);
}

static void test_malformed_images(void **state)
{
    (void)state;
    tn_tree *src = tn_tree_new(NULL);
    tn_wctx c = cx(1, 100, 7);
    assert_int_equal(mkd(src, 1, "d"), TN_SUCCESS);
    assert_int_equal(put(src, 2, "d.x", "hello"), TN_SUCCESS);
    assert_int_equal(tn_tree_put_temp(src, &c, K("d.t"), K("tmp"), 50), TN_SUCCESS);
    assert_int_equal(tn_tree_mkdir_temp(src, &c, K("td"), 50), TN_SUCCESS);
    size_t len;
    uint8_t *img = image_of(src, &len);

    tn_tree *t = tn_tree_new(NULL);
    assert_int_equal(put(t, 1, "keep", "me"), TN_SUCCESS);
    size_t l0;
    uint8_t *before = image_of(t, &l0);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(tn_tree_deserialize(t, img, cut), TN_CLIENT_REQ_ERROR);
    /* a trailing byte, a bad magic, a bad version */
    uint8_t *bad = malloc(len + 1);
    memcpy(bad, img, len);
    bad[len] = 0;
    assert_int_equal(tn_tree_deserialize(t, bad, len + 1), TN_CLIENT_REQ_ERROR);
    bad[0] = 'X';
    assert_int_equal(tn_tree_deserialize(t, bad, len), TN_CLIENT_REQ_ERROR);
    memcpy(bad, img, len);
    bad[4] = 2;
    assert_int_equal(tn_tree_deserialize(t, bad, len), TN_CLIENT_REQ_ERROR);
    /* every single-byte change either fails cleanly or yields a consistent tree */
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, img, len);
        bad[i] ^= 0x41;
        tn_tree *u = tn_tree_new(NULL);
        int rc = tn_tree_deserialize(u, bad, len);
        assert_true(rc == TN_SUCCESS || rc == TN_CLIENT_REQ_ERROR);
        if (rc == TN_SUCCESS) { /* then it must re-serialise and walk cleanly */
            size_t ul;
            uint8_t *ui = image_of(u, &ul);
            free(ui);
        }
        tn_tree_free(u);
    }
    size_t l1;
    uint8_t *after = image_of(t, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, after, l0);
    assert_value(t, "keep", "me");
    /* structurally bad images: a node whose parent is missing, a duplicate key */
    tn_wr w;
    tn_wr_init(&w);
    tn_wr_raw(&w, "TNTR", 4);
    tn_wr_u8(&w, 1);
    for (int i = 0; i < 4; i++) tn_wr_varint(&w, 0);
    tn_wr_varint(&w, 1);
    tn_wr_u8(&w, 0);
    tn_wr_varint(&w, 0);
    tn_wr_bytes(&w, "a.b", 3);
    tn_wr_bytes(&w, "v", 1);
    for (int i = 0; i < 4; i++) tn_wr_varint(&w, 1);
    assert_int_equal(tn_tree_deserialize(t, w.p, w.len), TN_CLIENT_REQ_ERROR);
    tn_wr_free(&w);
    tn_wr_init(&w);
    tn_wr_raw(&w, "TNTR", 4);
    tn_wr_u8(&w, 1);
    for (int i = 0; i < 4; i++) tn_wr_varint(&w, 0);
    tn_wr_varint(&w, 2);
    for (int n = 0; n < 2; n++) {
        tn_wr_u8(&w, 0);
        tn_wr_varint(&w, n ? 1 : 0);
        tn_wr_bytes(&w, n ? "" : "a", n ? 0 : 1);
        tn_wr_bytes(&w, "v", 1);
        for (int i = 0; i < 4; i++) tn_wr_varint(&w, 1);
    }
    assert_int_equal(tn_tree_deserialize(t, w.p, w.len), TN_CLIENT_REQ_ERROR);
    w.p[9] = 1; /* count 1 would leave trailing bytes */
    assert_int_equal(tn_tree_deserialize(t, w.p, w.len), TN_CLIENT_REQ_ERROR);
    tn_wr_free(&w);
    assert_value(t, "keep", "me");
    assert_int_equal(tn_tree_count(t), 1);
    /* the good image still loads */
    assert_int_equal(tn_tree_deserialize(t, img, len), TN_SUCCESS);
    assert_same_image(t, src);
    free(bad);
    free(before);
    free(after);
    free(img);
    tn_tree_free(t);
    tn_tree_free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_key_rules),
        cmocka_unit_test(test_value_limits),
        cmocka_unit_test(test_put_overwrite),
        cmocka_unit_test(test_parent_rules),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_overwrite_churn),
        cmocka_unit_test(test_deep_paths_and_ancestors),
        cmocka_unit_test(test_cas),
        cmocka_unit_test(test_temp_nodes),
        cmocka_unit_test(test_update_ttl),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_due_order),
        cmocka_unit_test(test_list_order_and_paging),
        cmocka_unit_test(test_big_directory),
        cmocka_unit_test(test_index_churn),
        cmocka_unit_test(test_expire_big_subtree),
        cmocka_unit_test(test_memory_target),
        cmocka_unit_test(test_determinism_and_round_trip),
        cmocka_unit_test(test_malformed_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
