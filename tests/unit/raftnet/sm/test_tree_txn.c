/* test_tree_txn.c — the tree's undo log (tn_tree_txn_*, raftnet/sm/tree.h): every kind of write rolled
 * back, commit, random rollbacks. The oracle for "unchanged" is the tree's deterministic image
 * (tn_tree_serialize). The all-or-nothing apply of atomic requests on top of it is test_atomic.c. */
#include "test_tree_util.h"

/* Every kind of write inside a transaction, then rollback: byte-identical image, same count. */
static void test_rollback_every_write(void **state)
{
    (void)state;
    tn_tree *t = sample_tree();
    size_t len, count = tn_tree_count(t);
    uint8_t *before = image_of(t, &len);
    assert_int_equal(tn_tree_txn_begin(t), TN_SUCCESS);
    assert_int_equal(tn_tree_txn_begin(t), TN_INTERNAL);
    assert_true(tn_tree_txn_open(t));
    tn_wctx c = wc(10, 9);
    assert_int_equal(tn_tree_put(t, &c, K("users.alice"), K("root-with-a-much-longer-value")), TN_SUCCESS_OVERWRITE);
    assert_int_equal(tn_tree_put(t, &c, K("users.carol"), K("new")), TN_SUCCESS);
    assert_int_equal(tn_tree_mkdir(t, &c, K("users.dir")), TN_SUCCESS);
    assert_int_equal(tn_tree_put(t, &c, K("users.dir.x"), K("deep")), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(t, &c, K("users.bob")), TN_SUCCESS);
    assert_int_equal(tn_tree_cas(t, &c, K("users.carol"), K("new"), K("newer")), TN_SUCCESS_OVERWRITE);
    assert_int_equal(tn_tree_cas(t, &c, K("users.alice"), K("root-with-a-much-longer-value"), NULL, 0), TN_SUCCESS);
    assert_int_equal(tn_tree_put(t, &c, K("users.alice"), K("back")), TN_SUCCESS); /* re-created: new create_rev */
    assert_int_equal(tn_tree_put_temp(t, &c, K("lock"), K("me2"), 9000), TN_SUCCESS_OVERWRITE);
    assert_int_equal(tn_tree_update_ttl(t, &c, K("sess"), 99000), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(t, &c, K("sess.a")), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(t, &c, K("sess")), TN_SUCCESS);
    assert_int_equal(tn_tree_mkdir(t, &c, K("sess")), TN_SUCCESS); /* a plain dir where a temp one was */
    assert_int_equal(tn_tree_put(t, &c, K("users"), K("x")), TN_DIR_EXISTS); /* a failed write: harmless */
    assert_int_not_equal(tn_tree_count(t), 0);
    assert_int_equal(tn_tree_txn_rollback(t), TN_SUCCESS);
    assert_false(tn_tree_txn_open(t));
    assert_int_equal(tn_tree_count(t), count);
    assert_image(t, before, len);
    /* Expiry order survived: the due list is the same as without the transaction. */
    tn_wctx e = wc(11, 0);
    e.time_ms = 40 + 5000;
    tn_tree_node_view v;
    assert_int_equal(tn_tree_get(t, K("lock"), &v), TN_SUCCESS);
    assert_int_equal(tn_tree_expire(t, &e, K("lock"), v.create_rev), TN_SUCCESS);
    free(before);
    tn_tree_free(t);
}

/* Commit keeps the writes: the image equals the one of the same writes made without a transaction. */
static void test_commit_keeps(void **state)
{
    (void)state;
    tn_tree *a = sample_tree(), *b = sample_tree();
    tn_wctx c = wc(10, 9);
    assert_int_equal(tn_tree_txn_begin(a), TN_SUCCESS);
    assert_int_equal(tn_tree_put(a, &c, K("users.zed"), K("z")), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(a, &c, K("users.bob")), TN_SUCCESS);
    tn_tree_txn_commit(a);
    assert_int_equal(tn_tree_put(b, &c, K("users.zed"), K("z")), TN_SUCCESS);
    assert_int_equal(tn_tree_remove(b, &c, K("users.bob")), TN_SUCCESS);
    size_t len;
    uint8_t *img = image_of(b, &len);
    assert_image(a, img, len);
    free(img);
    tn_tree_txn_commit(a); /* no transaction: no-op */
    assert_int_equal(tn_tree_txn_rollback(a), TN_SUCCESS);
    tn_tree_free(a);
    tn_tree_free(b);
}

/* Random writes on a small key space, rolled back: always the image at begin. */
static void test_random_rollback(void **state)
{
    (void)state;
    static const char *key_space[] = {"a", "a.b", "a.c", "a.b.c", "d", "d.e", "f"};
    uint64_t seed = 12345;
    for (int round = 0; round < 300; round++) {
        tn_tree *t = tn_tree_new(NULL);
        uint64_t idx = 1;
        for (int phase = 0; phase < 2; phase++) {
            size_t len = 0;
            uint8_t *before = phase ? image_of(t, &len) : NULL;
            if (phase) assert_int_equal(tn_tree_txn_begin(t), TN_SUCCESS);
            for (int i = 0; i < 12; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                const char *k = key_space[(seed >> 33) % 7];
                int what = (int)((seed >> 20) % 6);
                char val[16];
                snprintf(val, sizeof val, "v%llu", (unsigned long long)(seed >> 50));
                tn_wctx c = wc(idx++, 1);
                switch (what) {
                case 0: tn_tree_put(t, &c, K(k), K(val)); break;
                case 1: tn_tree_mkdir(t, &c, K(k)); break;
                case 2: tn_tree_remove(t, &c, K(k)); break;
                case 3: tn_tree_put_temp(t, &c, K(k), K(val), 100); break;
                case 4: tn_tree_mkdir_temp(t, &c, K(k), 100); break;
                default: tn_tree_update_ttl(t, &c, K(k), 200); break;
                }
            }
            if (phase) {
                assert_int_equal(tn_tree_txn_rollback(t), TN_SUCCESS);
                assert_image(t, before, len);
                free(before);
            }
        }
        tn_tree_free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollback_every_write),
        cmocka_unit_test(test_commit_keeps),
        cmocka_unit_test(test_random_rollback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
