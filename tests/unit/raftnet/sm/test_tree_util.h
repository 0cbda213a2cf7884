/* test_tree_util.h — helpers shared by the tree tests (test_tree*.c) and the atomic-apply test
 * (test_atomic.c): write contexts, deterministic images, a small sample tree. Only tree.h's public API. */
#ifndef TARN_TEST_TREE_UTIL_H
#define TARN_TEST_TREE_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tree.h"

#define K(s) (const uint8_t *)(s), strlen(s)

/* The write context of log index `index` at time index * 10 ms, for `owner`. */
static inline tn_wctx wc(uint64_t index, uint64_t owner)
{
    tn_wctx c = {index, (int64_t)index * 10, owner};
    return c;
}

/* Serialises t into a malloc'd buffer. */
static inline uint8_t *image_of(const tn_tree *t, size_t *len)
{
    tn_wr w;
    tn_wr_init(&w);
    assert_int_equal(tn_tree_serialize(t, &w), TN_SUCCESS);
    return tn_wr_take(&w, len);
}

/* t's image is byte for byte img[0..len). */
static inline void assert_image(const tn_tree *t, const uint8_t *img, size_t len)
{
    size_t n;
    uint8_t *now = image_of(t, &n);
    assert_int_equal(n, len);
    assert_memory_equal(now, img, len);
    free(now);
}

/* users/{alice,bob}, a temp value "lock" and a temp directory "sess" holding a temp value (owner 9). */
static inline tn_tree *sample_tree(void)
{
    tn_tree *t = tn_tree_new(NULL);
    assert_non_null(t);
    tn_wctx c = wc(1, 0);
    assert_int_equal(tn_tree_mkdir(t, &c, K("users")), TN_SUCCESS);
    c = wc(2, 0);
    assert_int_equal(tn_tree_put(t, &c, K("users.alice"), K("admin")), TN_SUCCESS);
    c = wc(3, 0);
    assert_int_equal(tn_tree_put(t, &c, K("users.bob"), K("guest")), TN_SUCCESS);
    c = wc(4, 9);
    assert_int_equal(tn_tree_put_temp(t, &c, K("lock"), K("me"), 5000), TN_SUCCESS);
    c = wc(5, 9);
    assert_int_equal(tn_tree_mkdir_temp(t, &c, K("sess"), 7000), TN_SUCCESS);
    c = wc(6, 9);
    assert_int_equal(tn_tree_put_temp(t, &c, K("sess.a"), K("x"), 3000), TN_SUCCESS);
    return t;
}

#endif
