/* test_tree_temp.c — the DtKV tree's temp nodes (raftnet/sm/tree.h): owners and TTLs, UPDATE_TTL, expiry
 * commands checked against the create revision, the due list in expiry order, expiring a big subtree. */
#include "test_tree_util.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_temp_nodes),
        cmocka_unit_test(test_update_ttl),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_due_order),
        cmocka_unit_test(test_expire_big_subtree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
