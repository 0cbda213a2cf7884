/* bench_tree.c — throughput and memory of the DtKV tree (raftnet/sm/tree.h) on one core.
 *
 *   build/bench_tree [count] [--warm]   (default 1,000,000; build with -DCMAKE_BUILD_TYPE=Release)
 *
 * --warm pre-faults the heap (glibc: one big block allocated, touched and freed, kept by the allocator)
 * so the figures show the tree's own cost without the kernel's first-touch page faults, which are
 * expensive in VMs; a long-running server mostly reuses memory it already has.
 *
 * Puts `count` 16-byte keys with 100-byte values into one directory (the root), in a random key order,
 * then overwrites them all, then gets them all in a different random order, then lists the directory.
 * Prints operations per second and the heap bytes per node beyond key + value (tn_tree_memory, i.e.
 * malloc_usable_size of every allocation plus the hash table; glibc's 8-byte chunk header per
 * allocation is not included in that figure and is printed separately). */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tree.h"

#define KEY_LEN 16
#define VALUE_LEN 100

/* CPU time of this thread: on a shared machine, wall time mostly measures the neighbours. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int count_visit(void *arg, const tn_tree_node_view *v)
{
    size_t *n = arg;
    *n += v->value_len ? 1 : 0;
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    int warm = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--warm") == 0) warm = 1;
        else n = strtoull(argv[i], NULL, 10);
    }
    if (n == 0) {
        fprintf(stderr, "usage: %s [count] [--warm]\n", argv[0]);
        return 2;
    }
    if (warm) {
        size_t big = n * 400;
        mallopt(M_MMAP_THRESHOLD, 1 << 30);
        mallopt(M_TRIM_THRESHOLD, -1);
        mallopt(M_TOP_PAD, 64 << 20);
        char *b = malloc(big);
        if (b) memset(b, 1, big);
        free(b);
    }
    char *keys = malloc(n * (KEY_LEN + 1));
    uint8_t value[VALUE_LEN];
    if (!keys) return 1;
    for (size_t i = 0; i < n; i++)
        snprintf(keys + i * (KEY_LEN + 1), KEY_LEN + 1, "%016llx", (unsigned long long)splitmix(i));
    for (size_t i = 0; i < VALUE_LEN; i++) value[i] = (uint8_t)('a' + i % 26);

    tn_tree *t = tn_tree_new(NULL);
    if (!t) return 1;
    size_t mem0 = tn_tree_memory(t);
    tn_wctx ctx = {1, 1700000000000LL, 0};

    double w0 = wall_s();
    double t0 = now_s();
    for (size_t i = 0; i < n; i++, ctx.index++, ctx.time_ms++) {
        if (tn_tree_put(t, &ctx, keys + i * (KEY_LEN + 1), KEY_LEN, value, VALUE_LEN) != TN_SUCCESS) {
            fprintf(stderr, "put %zu failed\n", i);
            return 1;
        }
    }
    double t_put = now_s() - t0, w_put = wall_s() - w0;
    size_t mem = tn_tree_memory(t) - mem0;

    /* a permutation different from the insertion order: i -> i * p mod n, p prime, not dividing n */
    size_t p = 1000003;
    while (n % p == 0) p += 2;
    w0 = wall_s();
    t0 = now_s();
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        tn_tree_node_view v;
        size_t j = (size_t)(((unsigned __int128)i * p) % n);
        if (tn_tree_get(t, keys + j * (KEY_LEN + 1), KEY_LEN, &v) == TN_SUCCESS) found += v.value_len == VALUE_LEN;
    }
    double t_get = now_s() - t0, w_get = wall_s() - w0;
    if (found != n) {
        fprintf(stderr, "get found %zu of %zu\n", found, n);
        return 1;
    }

    value[0] = 'Z';
    t0 = now_s();
    for (size_t i = 0; i < n; i++, ctx.index++) {
        size_t j = (size_t)(((unsigned __int128)i * p) % n);
        if (tn_tree_put(t, &ctx, keys + j * (KEY_LEN + 1), KEY_LEN, value, VALUE_LEN) != TN_SUCCESS_OVERWRITE)
            return 1;
    }
    double t_over = now_s() - t0;

    t0 = now_s();
    size_t listed = 0;
    tn_tree_list(t, "", 0, NULL, 0, 0, count_visit, &listed);
    double t_list = now_s() - t0;

    printf("nodes              %zu (16 B keys, 100 B values, one directory)%s\n", n,
           warm ? ", warm heap" : "");
    printf("(ops per second of thread CPU time; wall-clock figure in brackets)\n");
    printf("put (create)       %.0f ops/s  [%.0f]\n", (double)n / t_put, (double)n / w_put);
    printf("put (overwrite)    %.0f ops/s\n", (double)n / t_over);
    printf("get                %.0f ops/s  [%.0f]\n", (double)n / t_get, (double)n / w_get);
    printf("list (in order)    %.0f nodes/s (%zu listed)\n", (double)listed / t_list, listed);
    printf("bytes/node         %.1f beyond key+value (usable sizes + table); +8 B malloc chunk header "
           "-> %.1f\n", (double)mem / (double)n - KEY_LEN - VALUE_LEN,
           (double)mem / (double)n - KEY_LEN - VALUE_LEN + 8);
    tn_tree_free(t);
    free(keys);
    return 0;
}
