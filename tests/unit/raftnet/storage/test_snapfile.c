/* test_snapfile.c — snapshot files: save/load, keep-newest, corruption, chunked transfer with resume. */
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
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

#include "snapfile.h"
#include "tn_code.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

typedef struct fixture {
    char root[64];
    char src[96]; /* sender's snapshot dir */
    char dst[96]; /* receiver's snapshot dir */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/tn-snapfile-XXXXXX");
    if (!mkdtemp(f->root)) return -1;
    snprintf(f->src, sizeof f->src, "%s/src", f->root);
    snprintf(f->dst, sizeof f->dst, "%s/dst/snap", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nftw(f->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static uint8_t *make_image(size_t n, unsigned seed)
{
    uint8_t *b = malloc(n ? n : 1);
    srand(seed);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rand();
    return b;
}

/* Number of files in dir whose name ends with ext. */
static int count_ext(const char *dir, const char *ext)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), e = strlen(ext);
        if (l > e && strcmp(de->d_name + l - e, ext) == 0) n++;
    }
    closedir(d);
    return n;
}

static void snap_path(char *out, size_t n, const char *dir, uint64_t index, uint64_t term, const char *ext)
{
    snprintf(out, n, "%s/snap-%020" PRIu64 "-%020" PRIu64 ".%s", dir, index, term, ext);
}

static void test_save_load(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    tn_snap_meta m;
    uint8_t *conf, *data;
    assert_int_equal(tn_snapfile_load(f->src, &m, &conf, &data, err, sizeof err), TN_NOT_FOUND);
    uint8_t *img = make_image(100000, 1);
    const char cfg[] = "voters=1,2,3";
    assert_int_equal(tn_snapfile_save(f->src, 50, 3, cfg, sizeof cfg, img, 100000, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_snapfile_load(f->src, &m, &conf, &data, err, sizeof err), TN_SUCCESS);
    assert_int_equal(m.index, 50);
    assert_int_equal(m.term, 3);
    assert_int_equal(m.conf_len, sizeof cfg);
    assert_int_equal(m.data_len, 100000);
    assert_int_equal(m.file_size, TN_SNAP_OVERHEAD + sizeof cfg + 100000);
    assert_memory_equal(conf, cfg, sizeof cfg);
    assert_memory_equal(data, img, 100000);
    free(conf);
    free(data);

    /* A newer one replaces it; only the newest stays. Empty conf and image are fine. */
    assert_int_equal(tn_snapfile_save(f->src, 80, 4, NULL, 0, NULL, 0, err, sizeof err), TN_SUCCESS);
    assert_int_equal(count_ext(f->src, ".snap"), 1);
    assert_int_equal(count_ext(f->src, ".tmp"), 0);
    assert_int_equal(tn_snapfile_load(f->src, &m, &conf, &data, err, sizeof err), TN_SUCCESS);
    assert_int_equal(m.index, 80);
    assert_int_equal(m.conf_len, 0);
    assert_int_equal(m.data_len, 0);
    assert_non_null(conf);
    assert_non_null(data);
    free(conf);
    free(data);
    /* An older leftover (crash before deletion) is never preferred, and the next save deletes it. */
    assert_int_equal(tn_snapfile_save(f->root, 10, 1, "c", 1, img, 10, err, sizeof err), TN_SUCCESS);
    char from[256], to[256];
    snap_path(from, sizeof from, f->root, 10, 1, "snap");
    snap_path(to, sizeof to, f->src, 10, 1, "snap");
    assert_int_equal(rename(from, to), 0);
    assert_int_equal(tn_snapfile_load(f->src, &m, &conf, &data, err, sizeof err), TN_SUCCESS);
    assert_int_equal(m.index, 80);
    free(conf);
    free(data);
    assert_int_equal(tn_snapfile_save(f->src, 90, 4, "c", 1, img, 1000, err, sizeof err), TN_SUCCESS);
    assert_int_equal(count_ext(f->src, ".snap"), 1);
    free(img);
}

static void test_corruption_detected(void **state)
{
    fixture *f = *state;
    char err[512] = "", path[256];
    uint8_t *img = make_image(5000, 2);
    assert_int_equal(tn_snapfile_save(f->src, 7, 2, "cfg", 3, img, 5000, err, sizeof err), TN_SUCCESS);
    snap_path(path, sizeof path, f->src, 7, 2, "snap");
    FILE *fp = fopen(path, "rb");
    uint8_t orig[8192];
    size_t n = fread(orig, 1, sizeof orig, fp);
    fclose(fp);
    assert_int_equal(n, TN_SNAP_OVERHEAD + 3 + 5000);
    size_t spots[] = {2, 10, 45, 50, 1000, n - 1};
    for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
        uint8_t c[8192];
        memcpy(c, orig, n);
        c[spots[k]] ^= 0x04;
        fp = fopen(path, "wb");
        fwrite(c, 1, n, fp);
        fclose(fp);
        tn_snap_meta m;
        uint8_t *conf = (uint8_t *)1, *data = (uint8_t *)1;
        err[0] = '\0';
        assert_int_equal(tn_snapfile_load(f->src, &m, &conf, &data, err, sizeof err), TN_IO_ERROR);
        assert_null(conf);
        assert_null(data);
        assert_non_null(strstr(err, path));
        if (spots[k] >= TN_SNAP_HEADER_SIZE) assert_non_null(strstr(err, "CRC mismatch"));
    }
    /* Truncated file. */
    fp = fopen(path, "wb");
    fwrite(orig, 1, n - 100, fp);
    fclose(fp);
    tn_snap_meta m;
    uint8_t *conf, *data;
    assert_int_equal(tn_snapfile_load(f->src, &m, &conf, &data, err, sizeof err), TN_IO_ERROR);
    assert_non_null(strstr(err, path));
    free(img);
}

/* Sends the sender's newest snapshot to the receiver in chunks of `chunk` bytes from offset `from`,
 * stopping after `max_chunks` chunks (0 = all). Returns the next offset. */
static uint64_t send_chunks(tn_snapreader *r, tn_snapwriter *w, uint64_t from, size_t chunk, int max_chunks)
{
    uint8_t buf[8192];
    char err[512];
    uint64_t off = from, had = tn_snapwriter_have(w);
    for (int c = 0; max_chunks == 0 || c < max_chunks; c++) {
        size_t got = 0;
        assert_int_equal(tn_snapreader_read(r, off, buf, chunk, &got), TN_SUCCESS);
        if (got == 0) break;
        int rc = tn_snapwriter_write(w, off, buf, got, err, sizeof err);
        if (rc != TN_SUCCESS) fail_msg("write: %s", err);
        off += got;
        assert_int_equal(tn_snapwriter_have(w), off > had ? off : had); /* resent bytes are skipped */
    }
    return off;
}

static void test_chunked_transfer_with_resume(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    const size_t img_len = 300000;
    uint8_t *img = make_image(img_len, 3);
    const char cfg[] = "1,2,3;learners=4";
    assert_int_equal(tn_snapfile_save(f->src, 1000, 9, cfg, sizeof cfg, img, img_len, err, sizeof err), TN_SUCCESS);
    tn_snapreader *r;
    tn_snap_meta sm;
    assert_int_equal(tn_snapreader_open(f->src, &r, &sm, err, sizeof err), TN_SUCCESS);
    assert_int_equal(sm.index, 1000);
    assert_int_equal(sm.file_size, TN_SNAP_OVERHEAD + sizeof cfg + img_len);

    /* The receiver already has an older snapshot. */
    assert_int_equal(tn_snapfile_save(f->dst, 500, 8, "old", 3, img, 100, err, sizeof err), TN_SUCCESS);

    tn_snapwriter *w;
    assert_int_equal(tn_snapwriter_begin(f->dst, 1000, 9, sm.file_size, &w, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_snapwriter_have(w), 0);
    uint64_t off = send_chunks(r, w, 0, 7000, 10);
    assert_int_equal(off, 70000);
    /* A hole is refused, a chunk past the end too, and the writer is unchanged. */
    uint8_t junk[16] = {0};
    assert_int_equal(tn_snapwriter_write(w, off + 1, junk, 16, err, sizeof err), TN_BAD_REQUEST);
    assert_int_equal(tn_snapwriter_write(w, sm.file_size - 8, junk, 16, err, sizeof err), TN_BAD_REQUEST);
    assert_int_equal(tn_snapwriter_have(w), 70000);
    /* Not finished: finish says incomplete and keeps the .part. */
    assert_int_equal(tn_snapwriter_finish(w, NULL, err, sizeof err), TN_BAD_REQUEST);
    assert_non_null(strstr(err, "incomplete"));
    assert_int_equal(count_ext(f->dst, ".part"), 1);

    /* "Crash": reopen; the writer reports what it has, the sender resumes from there. A resent overlapping
     * chunk is harmless. */
    assert_int_equal(tn_snapwriter_begin(f->dst, 1000, 9, sm.file_size, &w, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_snapwriter_have(w), 70000);
    off = send_chunks(r, w, 65000, 4096, 5);
    tn_snapwriter_close(w); /* closed without finish, as a crash would */
    assert_int_equal(tn_snapwriter_begin(f->dst, 1000, 9, sm.file_size, &w, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_snapwriter_have(w), off);
    off = send_chunks(r, w, tn_snapwriter_have(w), 8192, 0);
    assert_int_equal(off, sm.file_size);
    tn_snap_meta got;
    assert_int_equal(tn_snapwriter_finish(w, &got, err, sizeof err), TN_SUCCESS);
    assert_int_equal(got.index, 1000);
    assert_int_equal(got.term, 9);
    assert_int_equal(count_ext(f->dst, ".part"), 0);
    assert_int_equal(count_ext(f->dst, ".snap"), 1); /* the older one is gone */

    tn_snap_meta m;
    uint8_t *conf, *data;
    assert_int_equal(tn_snapfile_load(f->dst, &m, &conf, &data, err, sizeof err), TN_SUCCESS);
    assert_int_equal(m.index, 1000);
    assert_int_equal(m.term, 9);
    assert_memory_equal(conf, cfg, sizeof cfg);
    assert_int_equal(m.data_len, img_len);
    assert_memory_equal(data, img, img_len);
    free(conf);
    free(data);

    /* The reader keeps serving its file even after a newer snapshot replaced it. */
    assert_int_equal(tn_snapfile_save(f->src, 2000, 9, NULL, 0, img, 10, err, sizeof err), TN_SUCCESS);
    uint8_t head[TN_SNAP_HEADER_SIZE];
    size_t n;
    assert_int_equal(tn_snapreader_read(r, 0, head, sizeof head, &n), TN_SUCCESS);
    assert_int_equal(n, sizeof head);
    assert_int_equal(head[8] | head[9] << 8, 1000);
    assert_int_equal(tn_snapreader_read(r, sm.file_size, head, sizeof head, &n), TN_SUCCESS);
    assert_int_equal(n, 0);
    tn_snapreader_close(r);
    free(img);
}

static void test_transfer_crc_mismatch(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    uint8_t *img = make_image(20000, 4);
    assert_int_equal(tn_snapfile_save(f->src, 30, 2, "c", 1, img, 20000, err, sizeof err), TN_SUCCESS);
    tn_snapreader *r;
    tn_snap_meta sm;
    assert_int_equal(tn_snapreader_open(f->src, &r, &sm, err, sizeof err), TN_SUCCESS);
    tn_snapwriter *w;
    assert_int_equal(tn_snapwriter_begin(f->dst, 30, 2, sm.file_size, &w, err, sizeof err), TN_SUCCESS);
    uint8_t buf[4096];
    for (uint64_t off = 0; off < sm.file_size;) {
        size_t got;
        assert_int_equal(tn_snapreader_read(r, off, buf, sizeof buf, &got), TN_SUCCESS);
        if (off == 8192) buf[100] ^= 1; /* damaged in transit */
        assert_int_equal(tn_snapwriter_write(w, off, buf, got, err, sizeof err), TN_SUCCESS);
        off += got;
    }
    assert_int_equal(tn_snapwriter_finish(w, NULL, err, sizeof err), TN_IO_ERROR);
    assert_non_null(strstr(err, "CRC mismatch"));
    assert_non_null(strstr(err, "snap-00000000000000000030-00000000000000000002.part"));
    assert_int_equal(count_ext(f->dst, ".part"), 0);
    assert_int_equal(count_ext(f->dst, ".snap"), 0);
    tn_snap_meta m;
    uint8_t *conf, *data;
    assert_int_equal(tn_snapfile_load(f->dst, &m, &conf, &data, err, sizeof err), TN_NOT_FOUND);

    /* A transfer whose header disagrees with begin()'s (index, term) is refused too. */
    assert_int_equal(tn_snapwriter_begin(f->dst, 31, 2, sm.file_size, &w, err, sizeof err), TN_SUCCESS);
    for (uint64_t off = 0; off < sm.file_size;) {
        size_t got;
        assert_int_equal(tn_snapreader_read(r, off, buf, sizeof buf, &got), TN_SUCCESS);
        assert_int_equal(tn_snapwriter_write(w, off, buf, got, err, sizeof err), TN_SUCCESS);
        off += got;
    }
    assert_int_equal(tn_snapwriter_finish(w, NULL, err, sizeof err), TN_IO_ERROR);
    assert_non_null(strstr(err, "does not match"));

    /* abort removes the temp file; begin for another snapshot drops a stale .part. */
    assert_int_equal(tn_snapwriter_begin(f->dst, 40, 3, 100, &w, err, sizeof err), TN_SUCCESS);
    assert_int_equal(tn_snapwriter_write(w, 0, buf, 50, err, sizeof err), TN_SUCCESS);
    tn_snapwriter_close(w);
    assert_int_equal(count_ext(f->dst, ".part"), 1);
    assert_int_equal(tn_snapwriter_begin(f->dst, 41, 3, 100, &w, err, sizeof err), TN_SUCCESS);
    assert_int_equal(count_ext(f->dst, ".part"), 1);
    assert_int_equal(tn_snapwriter_have(w), 0);
    tn_snapwriter_abort(w);
    assert_int_equal(count_ext(f->dst, ".part"), 0);
    assert_int_equal(tn_snapwriter_begin(f->dst, 41, 3, 10, &w, err, sizeof err), TN_BAD_REQUEST);
    tn_snapreader_close(r);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_transfer_with_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer_crc_mismatch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
