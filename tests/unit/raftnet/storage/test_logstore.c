/* test_logstore.c — durable Raft log: append/sync/reopen, rolling, torn tails, corruption, truncation,
 * compaction, reset, write failures, concurrent sync. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
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

#include "crc32c.h"
#include "logstore.h"
#include "tn_code.h"

/* ---- helpers ------------------------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

typedef struct fixture {
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tn-logstore-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* Deterministic entry payload: length and bytes depend on the index. */
static size_t payload(uint64_t index, uint8_t *buf, size_t fixed)
{
    size_t n = fixed ? fixed : (size_t)(index * 7 % 50);
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(index * 31 + i);
    return n;
}

static void append_range(tn_logstore *log, uint64_t lo, uint64_t hi, uint64_t term, size_t fixed)
{
    uint8_t buf[4096];
    for (uint64_t i = lo; i <= hi; i++) {
        size_t n = payload(i, buf, fixed);
        assert_int_equal(tn_logstore_append(log, i, term, (uint8_t)(i % 3), buf, n), TN_SUCCESS);
    }
}

static void check_entry(tn_logstore *log, uint64_t index, uint64_t term, size_t fixed)
{
    uint8_t want[4096];
    size_t n = payload(index, want, fixed);
    uint64_t t = 0;
    uint8_t type = 0xff, *data = NULL;
    size_t len = 0;
    assert_int_equal(tn_logstore_read(log, index, &t, &type, &data, &len), TN_SUCCESS);
    assert_int_equal(t, term);
    assert_int_equal(type, index % 3);
    assert_int_equal(len, n);
    assert_memory_equal(data, want, n ? n : 0);
    free(data);
    assert_int_equal(tn_logstore_term_at(log, index, &t), TN_SUCCESS);
    assert_int_equal(t, term);
}

static tn_logstore *open_ok(const char *dir, const tn_logstore_opts *opts, tn_logstore_recovery *rec)
{
    tn_logstore *log = NULL;
    char err[512] = "";
    int rc = tn_logstore_open(dir, opts, &log, rec, err, sizeof err);
    if (rc != TN_SUCCESS) fail_msg("open failed: %s (%s)", tn_code_name(rc), err);
    assert_non_null(log);
    return log;
}

static int count_segments(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '^log-.*\\.seg$'", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

static void seg_path(char *out, size_t len, const char *dir, uint64_t first)
{
    snprintf(out, len, "%s/log-%020" PRIu64 ".seg", dir, first);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
}

/* First index of the newest segment file in dir. */
static uint64_t last_segment_first(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep '^log-.*\\.seg$' | sort | tail -1", dir);
    FILE *p = popen(cmd, "r");
    uint64_t first = 0;
    assert_non_null(p);
    assert_int_equal(fscanf(p, "log-%" SCNu64, &first), 1);
    pclose(p);
    return first;
}

#define HDR 32
#define RECSZ(n) (8 + 17 + (n))

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_append_sync_reopen(void **state)
{
    fixture *f = *state;
    tn_logstore_recovery rec;
    tn_logstore *log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(tn_logstore_first_index(log), 1);
    assert_int_equal(tn_logstore_last_index(log), 0);
    uint64_t t = 99;
    assert_int_equal(tn_logstore_term_at(log, 0, &t), TN_SUCCESS);
    assert_int_equal(t, 0);
    append_range(log, 1, 500, 1, 0);
    append_range(log, 501, 1000, 3, 0);
    assert_int_equal(tn_logstore_durable_index(log), 0);
    uint64_t durable = 0;
    assert_int_equal(tn_logstore_sync(log, &durable), TN_SUCCESS);
    assert_int_equal(durable, 1000);
    for (uint64_t i = 1; i <= 1000; i++) check_entry(log, i, i <= 500 ? 1 : 3, 0);
    assert_int_equal(tn_logstore_last_term(log), 3);
    tn_logstore_close(log);

    log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(rec.dropped_bytes, 0);
    assert_int_equal(rec.removed_segments, 0);
    assert_string_equal(rec.torn_file, "");
    assert_int_equal(rec.first_index, 1);
    assert_int_equal(rec.last_index, 1000);
    assert_int_equal(tn_logstore_last_index(log), 1000);
    assert_int_equal(tn_logstore_durable_index(log), 1000);
    for (uint64_t i = 1; i <= 1000; i++) check_entry(log, i, i <= 500 ? 1 : 3, 0);
    uint8_t *data = NULL;
    size_t len = 0;
    uint8_t type;
    assert_int_equal(tn_logstore_read(log, 1001, &t, &type, &data, &len), TN_NOT_FOUND);
    assert_int_equal(tn_logstore_read(log, 0, &t, &type, &data, &len), TN_NOT_FOUND);
    assert_int_equal(tn_logstore_term_at(log, 1001, &t), TN_NOT_FOUND);
    /* Appending continues after reopen. */
    append_range(log, 1001, 1010, 4, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore_close(log);
    log = open_ok(f->dir, NULL, NULL);
    for (uint64_t i = 995; i <= 1010; i++) check_entry(log, i, i <= 1000 ? 3 : 4, 0);
    tn_logstore_close(log);
}

static void test_append_batch_replaces_conflicts(void **state)
{
    fixture *f = *state;
    tn_logstore *log = open_ok(f->dir, NULL, NULL);
    tn_log_entry es[10];
    for (int i = 0; i < 10; i++)
        es[i] = (tn_log_entry){.index = (uint64_t)i + 1, .term = 1, .type = 1, .data = (const uint8_t *)"old", .len = 3};
    size_t done = 0;
    assert_int_equal(tn_logstore_append_batch(log, es, 10, &done), TN_SUCCESS);
    assert_int_equal(done, 10);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    /* A leader of term 2 overwrites 6.. with 3 entries: 9 and 10 must disappear too. */
    for (int i = 0; i < 3; i++)
        es[i] = (tn_log_entry){.index = (uint64_t)i + 6, .term = 2, .type = 2, .data = (const uint8_t *)"new!", .len = 4};
    assert_int_equal(tn_logstore_append_batch(log, es, 3, &done), TN_SUCCESS);
    assert_int_equal(done, 3);
    assert_int_equal(tn_logstore_last_index(log), 8);
    /* A gap inside a batch stops at the bad entry. */
    es[0] = (tn_log_entry){.index = 9, .term = 2};
    es[1] = (tn_log_entry){.index = 11, .term = 2};
    assert_int_equal(tn_logstore_append_batch(log, es, 2, &done), TN_BAD_REQUEST);
    assert_int_equal(done, 1);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore_close(log);
    log = open_ok(f->dir, NULL, NULL);
    assert_int_equal(tn_logstore_last_index(log), 9);
    tn_log_batch b;
    assert_int_equal(tn_logstore_read_batch(log, 1, 9, SIZE_MAX, &b), TN_SUCCESS);
    assert_int_equal(b.count, 9);
    assert_int_equal(b.entries[4].term, 1);
    assert_memory_equal(b.entries[4].data, "old", 3);
    assert_int_equal(b.entries[5].term, 2);
    assert_int_equal(b.entries[5].type, 2);
    assert_int_equal(b.entries[5].len, 4);
    assert_memory_equal(b.entries[7].data, "new!", 4);
    assert_int_equal(b.entries[8].len, 0);
    tn_log_batch_free(&b);
    assert_int_equal(tn_logstore_compact(log, 5), TN_SUCCESS);
    es[0] = (tn_log_entry){.index = 5, .term = 2};
    assert_int_equal(tn_logstore_append_batch(log, es, 1, &done), TN_BAD_REQUEST);
    assert_int_equal(done, 0);
    tn_logstore_close(log);
}

static void test_read_batch(void **state)
{
    fixture *f = *state;
    tn_logstore_opts o = {.write_buffer = 100};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    append_range(log, 1, 20, 2, 10); /* every entry 10 data bytes; some still buffered */
    tn_log_batch b;
    assert_int_equal(tn_logstore_read_batch(log, 3, 12, 45, &b), TN_SUCCESS);
    assert_int_equal(b.count, 4); /* 4 * 10 <= 45 < 5 * 10 */
    assert_int_equal(b.bytes, 40);
    for (size_t j = 0; j < b.count; j++) {
        uint8_t want[16];
        payload(3 + j, want, 10);
        assert_int_equal(b.entries[j].index, 3 + j);
        assert_int_equal(b.entries[j].term, 2);
        assert_int_equal(b.entries[j].type, (3 + j) % 3);
        assert_int_equal(b.entries[j].len, 10);
        assert_memory_equal(b.entries[j].data, want, 10);
    }
    tn_log_batch_free(&b);
    /* Always at least one entry, even above max_bytes; hi is clamped to last_index. */
    assert_int_equal(tn_logstore_read_batch(log, 19, 1000, 1, &b), TN_SUCCESS);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.entries[0].index, 19);
    tn_log_batch_free(&b);
    assert_int_equal(tn_logstore_read_batch(log, 15, 1000, 1 << 20, &b), TN_SUCCESS);
    assert_int_equal(b.count, 6);
    assert_int_equal(b.entries[5].index, 20);
    tn_log_batch_free(&b);
    assert_int_equal(tn_logstore_read_batch(log, 21, 30, 100, &b), TN_NOT_FOUND);
    assert_int_equal(tn_logstore_read_batch(log, 0, 3, 100, &b), TN_NOT_FOUND);
    tn_logstore_close(log);
}

static void test_segment_rolling(void **state)
{
    fixture *f = *state;
    tn_logstore_opts o = {.segment_size = 1024, .write_buffer = 300};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    append_range(log, 1, 400, 5, 0);
    /* One entry larger than a whole segment still fits (alone) in a segment. */
    uint8_t big[3000];
    memset(big, 0xab, sizeof big);
    assert_int_equal(tn_logstore_append(log, 401, 5, 1, big, sizeof big), TN_SUCCESS);
    assert_int_equal(tn_logstore_append(log, 402, 6, 1, big, 10), TN_SUCCESS);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore_close(log);
    int nseg = count_segments(f->dir);
    assert_true(nseg > 10);
    log = open_ok(f->dir, &o, NULL);
    assert_int_equal(tn_logstore_last_index(log), 402);
    for (uint64_t i = 1; i <= 400; i++) check_entry(log, i, 5, 0);
    uint64_t t;
    uint8_t type, *data;
    size_t len;
    assert_int_equal(tn_logstore_read(log, 401, &t, &type, &data, &len), TN_SUCCESS);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(data, big, sizeof big);
    free(data);
    tn_log_batch b;
    assert_int_equal(tn_logstore_read_batch(log, 1, 402, SIZE_MAX, &b), TN_SUCCESS);
    assert_int_equal(b.count, 402);
    tn_log_batch_free(&b);
    tn_logstore_close(log);
    assert_int_equal(count_segments(f->dir), nseg);
}

/* Builds 2+ segments of fixed-size records; returns the path of the last segment and its first index. */
static void build_fixed(const char *dir, uint64_t n, size_t dlen, char *last_path, size_t plen)
{
    tn_logstore_opts o = {.segment_size = 2048};
    tn_logstore *log = open_ok(dir, &o, NULL);
    append_range(log, 1, n, 1, dlen);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore_close(log);
    seg_path(last_path, plen, dir, last_segment_first(dir));
}

static void test_torn_tail_every_offset(void **state)
{
    fixture *f = *state;
    const uint64_t n = 100;
    const size_t dlen = 40, rs = RECSZ(40);
    char path[128];
    build_fixed(f->dir, n, dlen, path, sizeof path);
    assert_true(count_segments(f->dir) >= 2);
    size_t flen;
    uint8_t *orig = slurp(path, &flen);
    size_t last_off = flen - rs;
    const char *base = strrchr(path, '/') + 1;

    for (size_t cut = last_off; cut < flen; cut++) {
        spit(path, orig, cut);
        tn_logstore_recovery rec;
        tn_logstore *log = open_ok(f->dir, NULL, &rec);
        assert_int_equal(tn_logstore_last_index(log), n - 1);
        assert_int_equal(rec.last_index, n - 1);
        assert_int_equal(rec.dropped_bytes, cut - last_off);
        if (cut > last_off) assert_string_equal(rec.torn_file, base);
        check_entry(log, n - 1, 1, dlen);
        /* The log continues correctly after the cut. */
        append_range(log, n, n, 2, dlen);
        assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
        tn_logstore_close(log);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal((size_t)st.st_size, flen);
    }

    /* Bad CRC in the very last record (complete length): torn, dropped. */
    uint8_t *bad = malloc(flen + 4096);
    memcpy(bad, orig, flen);
    bad[flen - 3] ^= 0x40;
    spit(path, bad, flen);
    tn_logstore_recovery rec;
    tn_logstore *log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(tn_logstore_last_index(log), n - 1);
    assert_int_equal(rec.dropped_bytes, rs);
    tn_logstore_close(log);

    /* Zero-filled tail after the intact log. */
    memcpy(bad, orig, flen);
    memset(bad + flen, 0, 4096);
    spit(path, bad, flen + 4096);
    log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(tn_logstore_last_index(log), n);
    assert_int_equal(rec.dropped_bytes, 4096);
    check_entry(log, n, 1, dlen);
    tn_logstore_close(log);

    /* Zero fill over the last record and beyond (a partially allocated write). */
    memcpy(bad, orig, flen);
    memset(bad + last_off + 5, 0, flen - last_off - 5 + 100);
    spit(path, bad, flen + 100);
    log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(tn_logstore_last_index(log), n - 1);
    assert_int_equal(rec.dropped_bytes, rs + 100);
    tn_logstore_close(log);

    /* Garbage appended. */
    memcpy(bad, orig, flen);
    srand(7);
    for (size_t i = 0; i < 777; i++) bad[flen + i] = (uint8_t)rand();
    spit(path, bad, flen + 777);
    log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(tn_logstore_last_index(log), n);
    assert_int_equal(rec.dropped_bytes, 777);
    check_entry(log, n, 1, dlen);
    tn_logstore_close(log);
    free(bad);
    free(orig);
}

static void expect_open_error(const char *dir, const char *want1, const char *want2)
{
    tn_logstore *log = (tn_logstore *)1;
    char err[512] = "";
    assert_int_equal(tn_logstore_open(dir, NULL, &log, NULL, err, sizeof err), TN_IO_ERROR);
    assert_null(log);
    if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
        fail_msg("error '%s' lacks '%s' / '%s'", err, want1, want2 ? want2 : "");
}

static void test_corrupt_middle_last_segment(void **state)
{
    fixture *f = *state;
    const size_t dlen = 40, rs = RECSZ(40);
    char path[128];
    build_fixed(f->dir, 100, dlen, path, sizeof path);
    size_t flen;
    uint8_t *orig = slurp(path, &flen);
    size_t nrec = (flen - HDR) / rs;
    assert_true(nrec >= 4);
    const char *base = strrchr(path, '/') + 1;
    char want[160];

    /* A data byte, the CRC, the index and the length of the 2nd record from the end, and the first record. */
    size_t offs[] = {flen - 2 * rs, flen - 2 * rs, flen - 2 * rs, flen - 2 * rs, HDR};
    size_t within[] = {30, 5, 9, 0, 20};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        uint8_t *b = malloc(flen);
        memcpy(b, orig, flen);
        b[offs[k] + within[k]] ^= 0x01;
        spit(path, b, flen);
        snprintf(want, sizeof want, "%s: ", base);
        char at[64];
        snprintf(at, sizeof at, "at offset %zu", offs[k]);
        expect_open_error(f->dir, want, at);
        if (within[k] == 30 || within[k] == 20) {
            snprintf(want, sizeof want, "%s: bad CRC at offset %zu", base, offs[k]);
            expect_open_error(f->dir, want, NULL);
        }
        free(b);
    }
    /* Restored, it opens again. */
    spit(path, orig, flen);
    tn_logstore *log = open_ok(f->dir, NULL, NULL);
    assert_int_equal(tn_logstore_last_index(log), 100);
    tn_logstore_close(log);
    free(orig);
}

static void test_corrupt_non_last_segment(void **state)
{
    fixture *f = *state;
    const size_t rs = RECSZ(40);
    char path[128], first[128];
    build_fixed(f->dir, 100, 40, path, sizeof path);
    seg_path(first, sizeof first, f->dir, 1);
    size_t flen;
    uint8_t *orig = slurp(first, &flen);
    char want[160];
    const char *base = strrchr(first, '/') + 1;

    /* The LAST record of a non-last segment: still corruption, not a torn tail. */
    size_t off = flen - rs;
    uint8_t *b = malloc(flen);
    memcpy(b, orig, flen);
    b[off + 40] ^= 0x80;
    spit(first, b, flen);
    snprintf(want, sizeof want, "%s: bad CRC at offset %zu", base, off);
    expect_open_error(f->dir, want, NULL);

    /* A record in the middle. */
    memcpy(b, orig, flen);
    off = HDR + 3 * rs;
    b[off + 27] ^= 0x10;
    spit(first, b, flen);
    snprintf(want, sizeof want, "%s: bad CRC at offset %zu", base, off);
    expect_open_error(f->dir, want, NULL);

    /* A truncated non-last segment (its tail missing) is an error too. */
    spit(first, orig, flen - 10);
    snprintf(want, sizeof want, "%s: short record at offset %zu", base, flen - rs);
    expect_open_error(f->dir, want, NULL);

    /* A missing middle segment is a gap. */
    spit(first, orig, flen);
    tn_logstore *log = open_ok(f->dir, NULL, NULL);
    tn_logstore_close(log);
    char second[128];
    seg_path(second, sizeof second, f->dir, (flen - HDR) / rs + 1);
    assert_int_equal(access(second, F_OK), 0);
    if (strcmp(second, path) != 0) {
        assert_int_equal(unlink(second), 0);
        expect_open_error(f->dir, "gap", NULL);
    }
    free(b);
    free(orig);
}

/* Appends a hand-made record with a CORRECT CRC to a segment file. */
static size_t craft_record(uint8_t *out, uint64_t index, uint64_t term, const char *data)
{
    size_t dlen = strlen(data);
    uint32_t len = (uint32_t)(17 + dlen);
    uint8_t *p = out;
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(len >> (8 * i));
    for (int i = 0; i < 8; i++) p[8 + i] = (uint8_t)(index >> (8 * i));
    for (int i = 0; i < 8; i++) p[16 + i] = (uint8_t)(term >> (8 * i));
    p[24] = 0;
    memcpy(p + 25, data, dlen);
    uint32_t crc = tn_crc32c(tn_crc32c(0, p, 4), p + 8, len);
    for (int i = 0; i < 4; i++) p[4 + i] = (uint8_t)(crc >> (8 * i));
    return 8 + len;
}

static void test_bad_index_and_term_sequences(void **state)
{
    fixture *f = *state;
    char path[128];
    build_fixed(f->dir, 30, 40, path, sizeof path);
    size_t flen;
    uint8_t *orig = slurp(path, &flen);
    uint8_t *b = malloc(flen + 256);
    const char *base = strrchr(path, '/') + 1;
    char want[200];

    /* A well-formed record that skips an index (31 missing). */
    memcpy(b, orig, flen);
    size_t n = craft_record(b + flen, 32, 1, "skip");
    spit(path, b, flen + n);
    snprintf(want, sizeof want, "%s: index 32 where 31 was expected at offset %zu", base, flen);
    expect_open_error(f->dir, want, NULL);

    /* A well-formed record whose term goes backwards. */
    memcpy(b, orig, flen);
    n = craft_record(b + flen, 31, 2, "up");
    n += craft_record(b + flen + n, 32, 1, "down");
    spit(path, b, flen + n);
    snprintf(want, sizeof want, "%s: term goes backwards (1 after 2) at offset %zu", base, flen + RECSZ(2));
    expect_open_error(f->dir, want, NULL);

    /* The same two records in order open fine: the crafted format is the real one. */
    memcpy(b, orig, flen);
    n = craft_record(b + flen, 31, 2, "up");
    n += craft_record(b + flen + n, 32, 3, "on");
    spit(path, b, flen + n);
    tn_logstore *log = open_ok(f->dir, NULL, NULL);
    assert_int_equal(tn_logstore_last_index(log), 32);
    uint64_t t;
    uint8_t type, *data;
    size_t len;
    assert_int_equal(tn_logstore_read(log, 32, &t, &type, &data, &len), TN_SUCCESS);
    assert_int_equal(t, 3);
    assert_int_equal(len, 2);
    assert_memory_equal(data, "on", 2);
    free(data);
    tn_logstore_close(log);
    free(b);
    free(orig);
}

static void test_torn_tail_below_compaction_point(void **state)
{
    /* compact() may run before the compacted entries were synced; if a crash then tears them off, the
     * log must come back empty at the base rather than with a hole. */
    fixture *f = *state;
    tn_logstore *log = open_ok(f->dir, NULL, NULL);
    append_range(log, 1, 20, 1, 40);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    assert_int_equal(tn_logstore_compact(log, 20), TN_SUCCESS);
    tn_logstore_close(log);
    char path[128];
    seg_path(path, sizeof path, f->dir, 1);
    assert_int_equal(truncate(path, HDR + 10 * RECSZ(40) + 7), 0); /* entries 11..20 torn off */
    tn_logstore_recovery rec;
    log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(rec.dropped_bytes, 7);
    assert_int_equal(tn_logstore_first_index(log), 21);
    assert_int_equal(tn_logstore_last_index(log), 20);
    assert_int_equal(tn_logstore_last_term(log), 1);
    append_range(log, 21, 22, 2, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore_close(log);
    log = open_ok(f->dir, NULL, NULL);
    assert_int_equal(tn_logstore_first_index(log), 21);
    check_entry(log, 22, 2, 0);
    tn_logstore_close(log);
}

static void test_torn_segment_header(void **state)
{
    fixture *f = *state;
    char path[128], extra[128];
    build_fixed(f->dir, 60, 40, path, sizeof path);
    /* A crash right after creating the next segment: empty or zero-filled file. */
    seg_path(extra, sizeof extra, f->dir, 61);
    spit(extra, (const uint8_t *)"", 0);
    tn_logstore_recovery rec;
    tn_logstore *log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(rec.removed_segments, 1);
    assert_int_equal(tn_logstore_last_index(log), 60);
    tn_logstore_close(log);
    assert_int_equal(access(extra, F_OK), -1);
    uint8_t zeros[100] = {0};
    spit(extra, zeros, sizeof zeros);
    log = open_ok(f->dir, NULL, &rec);
    assert_int_equal(rec.removed_segments, 1);
    assert_int_equal(rec.dropped_bytes, 100);
    tn_logstore_close(log);
    /* A garbage header on a non-last segment is an error naming it. */
    char first[128];
    seg_path(first, sizeof first, f->dir, 1);
    size_t flen;
    uint8_t *orig = slurp(first, &flen);
    orig[3] ^= 1;
    spit(first, orig, flen);
    expect_open_error(f->dir, "log-00000000000000000001.seg: bad segment header at offset 0", NULL);
    free(orig);
}

static void test_truncate_suffix(void **state)
{
    fixture *f = *state;
    tn_logstore_opts o = {.segment_size = 1024};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    append_range(log, 1, 200, 1, 0);
    uint64_t durable;
    assert_int_equal(tn_logstore_sync(log, &durable), TN_SUCCESS);
    assert_int_equal(durable, 200);
    int before = count_segments(f->dir);
    assert_int_equal(tn_logstore_truncate_suffix(log, 40), TN_SUCCESS);
    assert_true(count_segments(f->dir) < before);
    assert_int_equal(tn_logstore_last_index(log), 39);
    assert_int_equal(tn_logstore_durable_index(log), 39);
    uint64_t t;
    assert_int_equal(tn_logstore_term_at(log, 40, &t), TN_NOT_FOUND);
    /* Overwrite with a newer term; wrong index or older term refused. */
    assert_int_equal(tn_logstore_append(log, 41, 2, 0, "x", 1), TN_BAD_REQUEST);
    assert_int_equal(tn_logstore_append(log, 40, 0, 0, "x", 1), TN_BAD_REQUEST);
    append_range(log, 40, 120, 2, 0);
    assert_int_equal(tn_logstore_sync(log, &durable), TN_SUCCESS);
    assert_int_equal(durable, 120);
    tn_logstore_close(log);

    log = open_ok(f->dir, &o, NULL);
    assert_int_equal(tn_logstore_last_index(log), 120);
    for (uint64_t i = 1; i <= 120; i++) check_entry(log, i, i < 40 ? 1 : 2, 0);
    /* Truncation is durable on return: reopen without a sync. Unsynced-but-written entries after it
     * survive a process exit (page cache) and never sit behind resurrected older ones. */
    assert_int_equal(tn_logstore_truncate_suffix(log, 100), TN_SUCCESS);
    append_range(log, 100, 105, 3, 0);
    tn_logstore_close(log);
    log = open_ok(f->dir, &o, NULL);
    assert_int_equal(tn_logstore_last_index(log), 105);
    check_entry(log, 99, 2, 0);
    check_entry(log, 100, 3, 0);
    check_entry(log, 105, 3, 0);
    /* Truncating everything, and a no-op beyond the end. */
    assert_int_equal(tn_logstore_truncate_suffix(log, 500), TN_SUCCESS);
    assert_int_equal(tn_logstore_last_index(log), 105);
    assert_int_equal(tn_logstore_truncate_suffix(log, 1), TN_SUCCESS);
    assert_int_equal(tn_logstore_last_index(log), 0);
    assert_int_equal(tn_logstore_last_term(log), 0);
    append_range(log, 1, 5, 4, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore_close(log);
    log = open_ok(f->dir, &o, NULL);
    assert_int_equal(tn_logstore_last_index(log), 5);
    check_entry(log, 5, 4, 0);
    tn_logstore_close(log);
}

static void test_truncate_unsynced_tail(void **state)
{
    /* Truncate into entries still sitting in the write buffer. */
    fixture *f = *state;
    tn_logstore *log = open_ok(f->dir, NULL, NULL);
    append_range(log, 1, 10, 1, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    append_range(log, 11, 20, 1, 0);
    assert_int_equal(tn_logstore_truncate_suffix(log, 15), TN_SUCCESS);
    append_range(log, 15, 16, 2, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    check_entry(log, 14, 1, 0);
    check_entry(log, 16, 2, 0);
    tn_logstore_close(log);
    log = open_ok(f->dir, NULL, NULL);
    assert_int_equal(tn_logstore_last_index(log), 16);
    check_entry(log, 15, 2, 0);
    tn_logstore_close(log);
}

static void test_compact(void **state)
{
    fixture *f = *state;
    tn_logstore_opts o = {.segment_size = 1024};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    append_range(log, 1, 150, 1, 0);
    append_range(log, 151, 300, 2, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    int before = count_segments(f->dir);
    char first_seg[128], saved_path[128];
    seg_path(first_seg, sizeof first_seg, f->dir, 1);
    size_t saved_len;
    uint8_t *saved = slurp(first_seg, &saved_len);

    assert_int_equal(tn_logstore_compact(log, 301), TN_BAD_REQUEST);
    assert_int_equal(tn_logstore_compact(log, 160), TN_SUCCESS);
    int after = count_segments(f->dir);
    assert_true(after < before);
    assert_int_equal(access(first_seg, F_OK), -1);
    assert_int_equal(tn_logstore_first_index(log), 161);
    assert_int_equal(tn_logstore_last_index(log), 300);
    uint64_t t;
    assert_int_equal(tn_logstore_term_at(log, 160, &t), TN_SUCCESS);
    assert_int_equal(t, 2);
    assert_int_equal(tn_logstore_term_at(log, 159, &t), TN_NOT_FOUND);
    uint8_t type, *data;
    size_t len;
    assert_int_equal(tn_logstore_read(log, 160, &t, &type, &data, &len), TN_NOT_FOUND);
    tn_log_batch b;
    assert_int_equal(tn_logstore_read_batch(log, 160, 170, 1000, &b), TN_NOT_FOUND);
    for (uint64_t i = 161; i <= 300; i++) check_entry(log, i, 2, 0);
    assert_int_equal(tn_logstore_compact(log, 100), TN_SUCCESS); /* below the base: no-op */
    assert_int_equal(tn_logstore_truncate_suffix(log, 160), TN_BAD_REQUEST);
    append_range(log, 301, 310, 2, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore_close(log);

    /* An interrupted compaction leaves an old segment behind: open deletes it. */
    snprintf(saved_path, sizeof saved_path, "%s", first_seg);
    spit(saved_path, saved, saved_len);
    tn_logstore_recovery rec;
    log = open_ok(f->dir, &o, &rec);
    assert_int_equal(rec.removed_segments, 1);
    assert_int_equal(access(first_seg, F_OK), -1);
    assert_int_equal(tn_logstore_first_index(log), 161);
    assert_int_equal(rec.first_index, 161);
    assert_int_equal(tn_logstore_last_index(log), 310);
    assert_int_equal(tn_logstore_term_at(log, 160, &t), TN_SUCCESS);
    assert_int_equal(t, 2);
    for (uint64_t i = 161; i <= 310; i++) check_entry(log, i, 2, 0);
    /* Compacting up to the very last entry leaves an empty readable range. */
    assert_int_equal(tn_logstore_compact(log, 310), TN_SUCCESS);
    assert_int_equal(tn_logstore_first_index(log), 311);
    assert_int_equal(tn_logstore_last_index(log), 310);
    tn_logstore_close(log);
    log = open_ok(f->dir, &o, NULL);
    assert_int_equal(tn_logstore_first_index(log), 311);
    assert_int_equal(tn_logstore_last_index(log), 310);
    assert_int_equal(tn_logstore_last_term(log), 2);
    append_range(log, 311, 312, 3, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore_close(log);
    log = open_ok(f->dir, &o, NULL);
    check_entry(log, 312, 3, 0);
    tn_logstore_close(log);
    free(saved);
}

static void test_reset(void **state)
{
    fixture *f = *state;
    tn_logstore_opts o = {.segment_size = 1024};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    append_range(log, 1, 100, 1, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    char first_seg[128];
    seg_path(first_seg, sizeof first_seg, f->dir, 1);
    size_t saved_len;
    uint8_t *saved = slurp(first_seg, &saved_len);

    assert_int_equal(tn_logstore_reset(log, 1000, 7), TN_SUCCESS);
    assert_int_equal(count_segments(f->dir), 0);
    assert_int_equal(tn_logstore_first_index(log), 1001);
    assert_int_equal(tn_logstore_last_index(log), 1000);
    assert_int_equal(tn_logstore_last_term(log), 7);
    assert_int_equal(tn_logstore_durable_index(log), 1000);
    uint64_t t;
    assert_int_equal(tn_logstore_term_at(log, 1000, &t), TN_SUCCESS);
    assert_int_equal(t, 7);
    assert_int_equal(tn_logstore_term_at(log, 50, &t), TN_NOT_FOUND);
    assert_int_equal(tn_logstore_append(log, 1001, 6, 0, NULL, 0), TN_BAD_REQUEST);
    assert_int_equal(tn_logstore_append(log, 2, 7, 0, NULL, 0), TN_BAD_REQUEST);
    append_range(log, 1001, 1020, 7, 0);
    uint64_t durable;
    assert_int_equal(tn_logstore_sync(log, &durable), TN_SUCCESS);
    assert_int_equal(durable, 1020);
    tn_logstore_close(log);

    /* A crash mid-reset leaves old-generation segments: they are ignored and deleted. */
    spit(first_seg, saved, saved_len);
    tn_logstore_recovery rec;
    log = open_ok(f->dir, &o, &rec);
    assert_int_equal(rec.removed_segments, 1);
    assert_int_equal(tn_logstore_first_index(log), 1001);
    assert_int_equal(tn_logstore_last_index(log), 1020);
    for (uint64_t i = 1001; i <= 1020; i++) check_entry(log, i, 7, 0);
    /* Reset again (to a lower point, as when a snapshot from a new leader is older) with nothing synced. */
    assert_int_equal(tn_logstore_reset(log, 500, 9), TN_SUCCESS);
    tn_logstore_close(log);
    log = open_ok(f->dir, &o, NULL);
    assert_int_equal(tn_logstore_first_index(log), 501);
    assert_int_equal(tn_logstore_last_index(log), 500);
    assert_int_equal(tn_logstore_last_term(log), 9);
    append_range(log, 501, 502, 9, 0);
    tn_logstore_close(log);
    free(saved);
}

/* ---- failure injection ---------------------------------------------------------------------------- */

typedef struct faults {
    int writes_left; /* pwrites that succeed before failing with ENOSPC; -1 = never fail */
    int syncs_left;
    int writes, syncs;
} faults;

static ssize_t faulty_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    faults *ft = ctx;
    ft->writes++;
    if (ft->writes_left == 0) {
        errno = ENOSPC;
        return -1;
    }
    if (ft->writes_left > 0) ft->writes_left--;
    /* A short write first, to exercise the retry loop. */
    return pwrite(fd, buf, n > 3 ? n / 2 : n, off);
}

static int faulty_sync(void *ctx, int fd, int is_dir)
{
    faults *ft = ctx;
    ft->syncs++;
    if (ft->syncs_left == 0) {
        errno = EIO;
        return -1;
    }
    if (ft->syncs_left > 0) ft->syncs_left--;
    return is_dir ? fsync(fd) : fdatasync(fd);
}

static void test_write_failure_fail_stop(void **state)
{
    fixture *f = *state;
    faults ft = {.writes_left = -1, .syncs_left = -1};
    tn_logstore_opts o = {.write_buffer = 1, .io = {faulty_pwrite, faulty_sync, &ft}};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    append_range(log, 1, 10, 1, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    assert_true(ft.writes > 10);
    ft.writes_left = 0;
    assert_int_equal(tn_logstore_append(log, 11, 1, 0, "abc", 3), TN_IO_ERROR);
    assert_int_equal(tn_logstore_failed(log), 1);
    char msg[512];
    tn_logstore_errmsg(log, msg, sizeof msg);
    assert_non_null(strstr(msg, "No space left"));
    ft.writes_left = -1; /* the disk "recovers", the log must not */
    assert_int_equal(tn_logstore_append(log, 12, 1, 0, "abc", 3), TN_IO_ERROR);
    assert_int_equal(tn_logstore_append(log, 11, 1, 0, "abc", 3), TN_IO_ERROR);
    uint64_t durable = 0;
    assert_int_equal(tn_logstore_sync(log, &durable), TN_IO_ERROR);
    assert_int_equal(durable, 10);
    assert_int_equal(tn_logstore_truncate_suffix(log, 5), TN_IO_ERROR);
    assert_int_equal(tn_logstore_compact(log, 5), TN_IO_ERROR);
    assert_int_equal(tn_logstore_reset(log, 50, 1), TN_IO_ERROR);
    tn_logstore_close(log);
    log = open_ok(f->dir, NULL, NULL);
    assert_true(tn_logstore_last_index(log) >= 10);
    for (uint64_t i = 1; i <= 10; i++) check_entry(log, i, 1, 0);
    tn_logstore_close(log);
}

static void test_sync_failure_fail_stop(void **state)
{
    fixture *f = *state;
    faults ft = {.writes_left = -1, .syncs_left = -1};
    tn_logstore_opts o = {.io = {faulty_pwrite, faulty_sync, &ft}};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    append_range(log, 1, 10, 1, 0);
    uint64_t durable = 0;
    assert_int_equal(tn_logstore_sync(log, &durable), TN_SUCCESS);
    assert_int_equal(durable, 10);
    append_range(log, 11, 20, 1, 0);
    ft.syncs_left = 0;
    assert_int_equal(tn_logstore_sync(log, &durable), TN_IO_ERROR);
    assert_int_equal(durable, 10); /* never pretends */
    assert_int_equal(tn_logstore_durable_index(log), 10);
    ft.syncs_left = -1;
    assert_int_equal(tn_logstore_sync(log, &durable), TN_IO_ERROR);
    assert_int_equal(tn_logstore_append(log, 21, 1, 0, NULL, 0), TN_IO_ERROR);
    char msg[512];
    tn_logstore_errmsg(log, msg, sizeof msg);
    assert_non_null(strstr(msg, "fdatasync"));
    tn_logstore_close(log);
}

static void test_bad_requests(void **state)
{
    fixture *f = *state;
    tn_logstore_opts o = {.max_entry_size = 100};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    uint8_t big[101] = {0};
    assert_int_equal(tn_logstore_append(log, 1, 1, 0, big, 101), TN_TOO_LARGE);
    assert_int_equal(tn_logstore_append(log, 2, 1, 0, big, 1), TN_BAD_REQUEST);
    assert_int_equal(tn_logstore_append(log, 0, 1, 0, big, 1), TN_BAD_REQUEST);
    assert_int_equal(tn_logstore_append(log, 1, 3, 0, big, 100), TN_SUCCESS);
    assert_int_equal(tn_logstore_append(log, 2, 2, 0, big, 1), TN_BAD_REQUEST);
    assert_int_equal(tn_logstore_append(log, 1, 3, 0, big, 1), TN_BAD_REQUEST);
    assert_int_equal(tn_logstore_failed(log), 0);
    tn_logstore_close(log);
    /* A corrupt base file stops open. */
    char p[128];
    snprintf(p, sizeof p, "%s/log.meta", f->dir);
    spit(p, (const uint8_t *)"garbage-garbage-garbage-garbage-garbag", 36);
    expect_open_error(f->dir, "log.meta", "corrupt");
    /* open creates missing parent directories. */
    snprintf(p, sizeof p, "%s/a/b/c", f->dir);
    log = open_ok(p, NULL, NULL);
    tn_logstore_close(log);
}

/* ---- concurrent sync ------------------------------------------------------------------------------ */

typedef struct syncer {
    tn_logstore *log;
    atomic_int stop;
    int syncs, errors;
} syncer;

static void *sync_loop(void *arg)
{
    syncer *s = arg;
    while (!atomic_load(&s->stop)) {
        uint64_t d;
        if (tn_logstore_sync(s->log, &d) != TN_SUCCESS) s->errors++;
        s->syncs++;
        usleep(50); /* a real disk thread waits for work; this also lets the owner take the sync lock */
    }
    return NULL;
}

static void test_concurrent_sync(void **state)
{
    fixture *f = *state;
    tn_logstore_opts o = {.segment_size = 16384, .write_buffer = 512};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    syncer s = {.log = log};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sync_loop, &s), 0);
    uint64_t prev_durable = 0;
    int truncated = 0;
    for (uint64_t i = 1; i <= 5000; i++) {
        append_range(log, i, i, 1 + i / 1000, 0);
        if (i % 500 == 0) {
            /* Owner-side reads while the disk thread syncs. */
            check_entry(log, i - 1, 1 + (i - 1) / 1000, 0);
            uint64_t d = tn_logstore_durable_index(log);
            assert_true(d >= prev_durable && d <= i);
            prev_durable = d;
        }
        if (i == 3000 && !truncated) {
            truncated = 1;
            /* A conflict: drop 2990..3000 and write them again. */
            assert_int_equal(tn_logstore_truncate_suffix(log, 2990), TN_SUCCESS);
            assert_int_equal(tn_logstore_last_index(log), 2989);
            i = 2989;
            prev_durable = tn_logstore_durable_index(log);
            assert_true(prev_durable <= 2989);
        }
    }
    atomic_store(&s.stop, 1);
    pthread_join(th, NULL);
    assert_int_equal(s.errors, 0);
    uint64_t d;
    assert_int_equal(tn_logstore_sync(log, &d), TN_SUCCESS);
    assert_int_equal(d, 5000);
    tn_logstore_close(log);
    log = open_ok(f->dir, &o, NULL);
    assert_int_equal(tn_logstore_last_index(log), 5000);
    for (uint64_t i = 1; i <= 5000; i++) check_entry(log, i, 1 + i / 1000, 0);
    tn_logstore_close(log);
}

/* tn_logstore_sync_upto: callers waiting for the same data share one sync, each returns only once its index
 * is durable, and a failing sync fails every waiter (none is left waiting). */
typedef struct slow_sync {
    atomic_int calls;
    atomic_int fail;
} slow_sync;

static int slow_sync_fn(void *ctx, int fd, int is_dir)
{
    slow_sync *ss = ctx;
    if (!is_dir) atomic_fetch_add(&ss->calls, 1);
    usleep(20000); /* long enough for every waiter to arrive while it runs */
    if (atomic_load(&ss->fail)) {
        errno = EIO;
        return -1;
    }
    return is_dir ? fsync(fd) : fdatasync(fd);
}

typedef struct upto_arg {
    tn_logstore *log;
    uint64_t index;
    int rc;
    uint64_t durable;
} upto_arg;

static void *upto_main(void *arg)
{
    upto_arg *a = arg;
    a->rc = tn_logstore_sync_upto(a->log, a->index, &a->durable);
    return NULL;
}

static void run_upto_callers(tn_logstore *log, uint64_t first, upto_arg *args, int n)
{
    pthread_t th[8];
    for (int i = 0; i < n; i++) {
        args[i] = (upto_arg){.log = log, .index = first + (uint64_t)i};
        assert_int_equal(pthread_create(&th[i], NULL, upto_main, &args[i]), 0);
    }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

static void test_sync_upto_shared(void **state)
{
    fixture *f = *state;
    slow_sync ss;
    atomic_init(&ss.calls, 0);
    atomic_init(&ss.fail, 0);
    tn_logstore_opts o = {.io = {.sync_fn = slow_sync_fn, .ctx = &ss}};
    tn_logstore *log = open_ok(f->dir, &o, NULL);
    upto_arg args[8];

    append_range(log, 1, 8, 1, 0);
    run_upto_callers(log, 1, args, 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(args[i].rc, TN_SUCCESS);
        assert_true(args[i].durable >= args[i].index);
    }
    /* one sync covered all eight (each segment sync counts once; the log has one segment) */
    assert_int_equal(atomic_load(&ss.calls), 1);
    assert_int_equal(tn_logstore_durable_index(log), 8);

    /* already durable: no sync at all */
    uint64_t d = 0;
    assert_int_equal(tn_logstore_sync_upto(log, 5, &d), TN_SUCCESS);
    assert_int_equal(d, 8);
    assert_int_equal(atomic_load(&ss.calls), 1);

    /* a failing sync fails every waiter, and the log stays failed */
    append_range(log, 9, 16, 1, 0);
    atomic_store(&ss.fail, 1);
    run_upto_callers(log, 9, args, 8);
    for (int i = 0; i < 8; i++) assert_int_equal(args[i].rc, TN_IO_ERROR);
    assert_int_equal(tn_logstore_sync_upto(log, 16, NULL), TN_IO_ERROR);
    assert_true(tn_logstore_durable_index(log) < 9);
    tn_logstore_close(log);
}

/* A log is opened by one writer at a time: a second open fails with a clear message until the first closes. */
static void test_second_open_is_refused(void **state)
{
    fixture *f = *state;
    tn_logstore *log = open_ok(f->dir, NULL, NULL);
    append_range(log, 1, 10, 1, 0);
    assert_int_equal(tn_logstore_sync(log, NULL), TN_SUCCESS);
    tn_logstore *again = NULL;
    char err[256] = "";
    assert_int_equal(tn_logstore_open(f->dir, NULL, &again, NULL, err, sizeof err), TN_IO_ERROR);
    assert_null(again);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(tn_logstore_last_index(log), 10); /* the first one is untouched */
    tn_logstore_close(log);
    log = open_ok(f->dir, NULL, NULL);
    assert_int_equal(tn_logstore_last_index(log), 10);
    tn_logstore_close(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_second_open_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_sync_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_batch_replaces_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_rolling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_last_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_non_last_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_segment_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_index_and_term_sequences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_below_compaction_point, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_suffix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_unsynced_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_fail_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_fail_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_upto_shared, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
