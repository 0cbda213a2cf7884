/* test_tree.c — the DtKV tree (raftnet/sm/tree.h): keys and values, put / mkdir / remove, compare-and-set,
 * listing order and paging, the children index under churn, memory, determinism and snapshot images. Temp
 * nodes and expiry are test_tree_temp.c, the undo log test_tree_txn.c. */
#include "test_tree_util.h"

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
        cmocka_unit_test(test_list_order_and_paging),
        cmocka_unit_test(test_big_directory),
        cmocka_unit_test(test_index_churn),
        cmocka_unit_test(test_memory_target),
        cmocka_unit_test(test_determinism_and_round_trip),
        cmocka_unit_test(test_malformed_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
