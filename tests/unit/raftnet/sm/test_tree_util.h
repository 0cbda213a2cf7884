/* test_tree_util.h — helpers shared by the tree tests (test_tree*.c) and the atomic-apply test
 * (test_atomic.c): write contexts, one-call writes and reads, deterministic images, listings as strings, a
 * small sample tree. Only tree.h's public API. */
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

static inline tn_wctx cx(uint64_t index, int64_t time_ms, uint64_t owner)
{
    tn_wctx c = {index, time_ms, owner};
    return c;
}

/* The write context of log index `index` at time index * 10 ms, for `owner`. */
static inline tn_wctx wc(uint64_t index, uint64_t owner)
{
    return cx(index, (int64_t)index * 10, owner);
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

static inline int put(tn_tree *t, uint64_t idx, const char *k, const char *v)
{
    tn_wctx c = cx(idx, (int64_t)idx * 10, 0);
    return tn_tree_put(t, &c, K(k), K(v));
}

static inline int mkd(tn_tree *t, uint64_t idx, const char *k)
{
    tn_wctx c = cx(idx, (int64_t)idx * 10, 0);
    return tn_tree_mkdir(t, &c, K(k));
}

static inline tn_tree_node_view get_ok(tn_tree *t, const char *k)
{
    tn_tree_node_view v;
    memset(&v, 0, sizeof v);
    assert_int_equal(tn_tree_get(t, K(k), &v), TN_SUCCESS);
    return v;
}

static inline int get_rc(tn_tree *t, const char *k)
{
    tn_tree_node_view v;
    return tn_tree_get(t, K(k), &v);
}

static inline void assert_value(tn_tree *t, const char *k, const char *val)
{
    tn_tree_node_view v = get_ok(t, k);
    assert_false(v.is_dir);
    assert_int_equal(v.value_len, strlen(val));
    assert_memory_equal(v.value, val, strlen(val));
    assert_int_equal(v.key_len, strlen(k));
    assert_memory_equal(v.key, k, strlen(k));
}

static inline void assert_same_image(const tn_tree *a, const tn_tree *b)
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

static inline int collect(void *arg, const tn_tree_node_view *v)
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

static inline const char *list_str(tn_tree *t, const char *dir, const char *after, size_t limit, keys *ks)
{
    memset(ks, 0, sizeof *ks);
    int rc = tn_tree_list(t, dir, strlen(dir), after, after ? strlen(after) : 0, limit, collect, ks);
    assert_int_equal(rc, TN_SUCCESS);
    return ks->buf;
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
