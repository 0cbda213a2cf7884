/* test_hardstate.c — atomic save/load of term/vote/commit, defaults, corruption detection. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hardstate.h"
#include "tn_code.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    char *dir = malloc(64);
    snprintf(dir, 64, "/tmp/tn-hardstate-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    nftw(*state, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return 0;
}

static void file_path(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void test_absent_gives_defaults(void **state)
{
    const char *dir = *state;
    tn_hardstate hs = {7, 7, 7};
    int found = 1;
    char err[256] = "";
    assert_int_equal(tn_hardstate_load(dir, &hs, &found, err, sizeof err), TN_SUCCESS);
    assert_int_equal(found, 0);
    assert_int_equal(hs.term, 0);
    assert_int_equal(hs.vote, 0);
    assert_int_equal(hs.commit, 0);
}

static void test_save_load_replace(void **state)
{
    const char *dir = *state;
    char err[256] = "";
    tn_hardstate a = {.term = 5, .vote = 2, .commit = 1234567890123ull}, b;
    int found = 0;
    assert_int_equal(tn_hardstate_save(dir, &a, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_hardstate_load(dir, &b, &found, err, sizeof err), TN_SUCCESS);
    assert_int_equal(found, 1);
    assert_memory_equal(&a, &b, sizeof a);
    /* Replacing it many times leaves exactly the last one and no temp file. */
    for (uint64_t t = 6; t < 20; t++) {
        a.term = t;
        a.vote = t % 3;
        a.commit = t * 10;
        assert_int_equal(tn_hardstate_save(dir, &a, err, sizeof err), TN_SUCCESS);
    }
    assert_int_equal(tn_hardstate_load(dir, &b, NULL, err, sizeof err), TN_SUCCESS);
    assert_int_equal(b.term, 19);
    assert_int_equal(b.vote, 1);
    assert_int_equal(b.commit, 190);
    char tmp[128];
    file_path(tmp, sizeof tmp, dir, "hardstate.tmp");
    assert_int_equal(access(tmp, F_OK), -1);
    /* A stray temp file from a crash mid-save does not affect load. */
    FILE *f = fopen(tmp, "wb");
    fputs("half-written", f);
    fclose(f);
    assert_int_equal(tn_hardstate_load(dir, &b, NULL, err, sizeof err), TN_SUCCESS);
    assert_int_equal(b.term, 19);
}

static void test_corruption_detected(void **state)
{
    const char *dir = *state;
    char err[256] = "", path[128];
    tn_hardstate a = {.term = 3, .vote = 1, .commit = 9}, b;
    assert_int_equal(tn_hardstate_save(dir, &a, err, sizeof err), TN_SUCCESS);
    file_path(path, sizeof path, dir, TN_HARDSTATE_FILE);
    uint8_t buf[64];
    FILE *f = fopen(path, "rb");
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_int_equal(n, 36);
    /* Flip each byte in turn: every single-byte change is detected and names the file. */
    for (size_t i = 0; i < n; i++) {
        uint8_t c[64];
        memcpy(c, buf, n);
        c[i] ^= 0x20;
        f = fopen(path, "wb");
        fwrite(c, 1, n, f);
        fclose(f);
        b.term = 77;
        err[0] = '\0';
        assert_int_equal(tn_hardstate_load(dir, &b, NULL, err, sizeof err), TN_IO_ERROR);
        assert_non_null(strstr(err, path));
        assert_int_equal(b.term, 0);
        if (i >= 8) assert_non_null(strstr(err, "CRC mismatch"));
    }
    /* Truncated file. */
    f = fopen(path, "wb");
    fwrite(buf, 1, 20, f);
    fclose(f);
    assert_int_equal(tn_hardstate_load(dir, &b, NULL, err, sizeof err), TN_IO_ERROR);
    assert_non_null(strstr(err, "corrupt"));
    /* Saving over a corrupt file repairs it. */
    assert_int_equal(tn_hardstate_save(dir, &a, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_hardstate_load(dir, &b, NULL, err, sizeof err), TN_SUCCESS);
    assert_memory_equal(&a, &b, sizeof a);
}

static void test_save_into_missing_dir_fails(void **state)
{
    const char *dir = *state;
    char err[256] = "", sub[128];
    snprintf(sub, sizeof sub, "%s/does/not/exist", dir);
    tn_hardstate a = {1, 1, 1};
    assert_int_equal(tn_hardstate_save(sub, &a, err, sizeof err), TN_IO_ERROR);
    assert_non_null(strstr(err, sub));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_absent_gives_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_into_missing_dir_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
