/* logstore.c — segment-file Raft log with torn-tail recovery and group commit (see logstore.h). */
#include "logstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "crc32c.h"
#include "hardstate.h"
#include "tn_code.h"

#define SEG_MAGIC 0x474c4e54u  /* "TNLG" */
#define META_MAGIC 0x4d4c4e54u /* "TNLM" */
#define LOG_VERSION 1u
#define SEG_HDR 32
#define META_SIZE 36
#define META_FILE "log.meta"
#define REC_HDR 8    /* len + crc */
#define REC_FIXED 17 /* index + term + type */
#define NAME_LEN 48

typedef struct seg {
    uint64_t first; /* index in the name and header */
    uint64_t last;  /* last index stored, first - 1 when empty */
    uint64_t size;  /* logical size in bytes, including bytes still in the write buffer */
    int fd;
    int dirty; /* written since its last fdatasync (guarded by mu) */
    char name[NAME_LEN];
} seg;

typedef struct ent {
    uint64_t term;
    uint64_t off; /* file offset of the record in its segment */
    uint32_t reclen; /* the record's len field (17 + data length) */
    uint8_t type;
} ent;

struct tn_logstore {
    char *dir;
    int dirfd;
    tn_logstore_opts opts;

    /* Owner-thread state. segs/nsegs are also read by sync under mu, so the owner changes them under mu. */
    uint64_t gen, base_index, base_term;
    seg *segs;
    size_t nsegs, segcap;
    ent *ents; /* ents[i] describes index ents_first + i */
    size_t nents, entcap;
    uint64_t ents_first;
    uint64_t last_index, last_term;

    /* Shared with sync: guarded by mu. */
    pthread_mutex_t mu;
    uint8_t *buf; /* unwritten tail of the active (last) segment, starting at file offset buf_off */
    size_t buf_len, buf_cap;
    uint64_t buf_off;
    uint64_t appended_index; /* last index appended (target of the next sync) */
    uint64_t durable_index;
    int dir_dirty; /* a segment was created: the directory needs an fsync */
    int failed;
    /* tn_logstore_sync_upto: one caller syncs while the others wait on sync_cv for the durable index to
     * reach theirs (all woken at once when a sync ends, instead of taking turns on sync_mu). */
    int syncing;
    pthread_cond_t sync_cv;
    char err[512];

    /* Held for a whole sync, and by truncate/compact/reset so they never overlap one (lock order: sync_mu,
     * then mu). Also guards sync_fds. */
    pthread_mutex_t sync_mu;
    int *sync_fds;
    size_t sync_cap;
};

/* ---- small helpers ---------------------------------------------------------------------------- */

static void fmt_err(char *buf, size_t len, const char *fmt, va_list ap)
{
    if (buf && len) vsnprintf(buf, len, fmt, ap);
}

static void log_err(tn_logstore *log, const char *fmt, ...) /* caller holds mu or is single-threaded */
{
    va_list ap;
    va_start(ap, fmt);
    fmt_err(log->err, sizeof log->err, fmt, ap);
    va_end(ap);
}

static void ext_err(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fmt_err(buf, len, fmt, ap);
    va_end(ap);
}

static int io_pwrite(tn_logstore *log, int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = log->opts.io.pwrite_fn ? log->opts.io.pwrite_fn(log->opts.io.ctx, fd, p, n, (off_t)off)
                                           : pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int io_sync(tn_logstore *log, int fd, int is_dir)
{
    if (log->opts.io.sync_fn) return log->opts.io.sync_fn(log->opts.io.ctx, fd, is_dir);
    return is_dir ? fsync(fd) : fdatasync(fd);
}

static void seg_name(char *out, uint64_t first) { snprintf(out, NAME_LEN, "log-%020" PRIu64 ".seg", first); }

static void encode_seg_header(uint8_t *h, uint64_t gen, uint64_t first)
{
    memset(h, 0, SEG_HDR);
    tn_put_le32(h, SEG_MAGIC);
    tn_put_le32(h + 4, LOG_VERSION);
    tn_put_le64(h + 8, gen);
    tn_put_le64(h + 16, first);
    tn_put_le32(h + 24, tn_crc32c(0, h, 24));
}

static uint32_t record_crc(const uint8_t *rec, uint32_t len)
{
    uint32_t crc = tn_crc32c(0, rec, 4);
    return tn_crc32c(crc, rec + REC_HDR, len);
}

static int write_meta(tn_logstore *log, uint64_t gen, uint64_t base_index, uint64_t base_term)
{
    uint8_t m[META_SIZE];
    tn_put_le32(m, META_MAGIC);
    tn_put_le32(m + 4, LOG_VERSION);
    tn_put_le64(m + 8, gen);
    tn_put_le64(m + 16, base_index);
    tn_put_le64(m + 24, base_term);
    tn_put_le32(m + 32, tn_crc32c(0, m, 32));
    return tn_file_write_atomic(log->dir, META_FILE, m, sizeof m, log->err, sizeof log->err);
}

static int read_meta(tn_logstore *log, char *errbuf, size_t errlen)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = tn_file_read_all(log->dir, META_FILE, 4096, &b, &n, errbuf, errlen);
    if (rc == TN_NOT_FOUND) {
        log->gen = log->base_index = log->base_term = 0;
        return TN_SUCCESS;
    }
    if (rc != TN_SUCCESS) return rc;
    rc = TN_IO_ERROR;
    if (n != META_SIZE || tn_get_le32(b) != META_MAGIC) {
        ext_err(errbuf, errlen, "%s/%s: corrupt (size %zu or bad magic)", log->dir, META_FILE, n);
        goto done;
    }
    if (tn_get_le32(b + 32) != tn_crc32c(0, b, 32)) {
        ext_err(errbuf, errlen, "%s/%s: CRC mismatch", log->dir, META_FILE);
        goto done;
    }
    if (tn_get_le32(b + 4) != LOG_VERSION) {
        ext_err(errbuf, errlen, "%s/%s: unsupported version %u", log->dir, META_FILE, tn_get_le32(b + 4));
        goto done;
    }
    log->gen = tn_get_le64(b + 8);
    log->base_index = tn_get_le64(b + 16);
    log->base_term = tn_get_le64(b + 24);
    rc = TN_SUCCESS;
done:
    free(b);
    return rc;
}

static int ents_reserve(tn_logstore *log, size_t more)
{
    if (log->entcap - log->nents >= more) return 0;
    size_t cap = log->entcap ? log->entcap : 1024;
    while (cap - log->nents < more) cap *= 2;
    ent *e = realloc(log->ents, cap * sizeof *e);
    if (!e) return -1;
    log->ents = e;
    log->entcap = cap;
    return 0;
}

static int segs_reserve(tn_logstore *log)
{
    if (log->nsegs < log->segcap) return 0;
    size_t cap = log->segcap ? log->segcap * 2 : 8;
    seg *s = realloc(log->segs, cap * sizeof *s);
    if (!s) return -1;
    log->segs = s;
    log->segcap = cap;
    return 0;
}

static int unlink_seg(tn_logstore *log, const char *name)
{
    if (unlinkat(log->dirfd, name, 0) != 0 && errno != ENOENT) {
        log_err(log, "%s/%s: unlink: %s", log->dir, name, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- recovery ----------------------------------------------------------------------------------- */

typedef struct found_seg {
    uint64_t first;
    char name[NAME_LEN];
} found_seg;

static int cmp_found(const void *a, const void *b)
{
    uint64_t x = ((const found_seg *)a)->first, y = ((const found_seg *)b)->first;
    return x < y ? -1 : x > y;
}

static int read_file(int fd, uint8_t **out, size_t *out_len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        errno = ENOMEM;
        return -1;
    }
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = EIO;
            free(b);
            return -1;
        }
        got += (size_t)r;
    }
    *out = b;
    *out_len = n;
    return 0;
}

/* 1 when a well-formed record with a correct CRC and an index in [lo, hi] starts at off. */
static int valid_record_at(const uint8_t *b, size_t n, size_t off, uint64_t lo, uint64_t hi)
{
    if (n - off < REC_HDR + REC_FIXED) return 0;
    uint32_t len = tn_get_le32(b + off);
    if (len < REC_FIXED || len > n - off - REC_HDR) return 0;
    uint64_t idx = tn_get_le64(b + off + REC_HDR);
    if (idx < lo || idx > hi) return 0;
    return record_crc(b + off, len) == tn_get_le32(b + off + 4);
}

/* Scans one segment file (already opened, header verified) and appends its records to log->ents.
 * expected: the index the first record must carry. prev_term: term floor. For the last segment a torn tail
 * is truncated (and reported); elsewhere any defect is an error. */
static int scan_segment(tn_logstore *log, seg *s, int is_last, uint64_t *prev_term, tn_logstore_recovery *rec,
                        char *errbuf, size_t errlen)
{
    uint8_t *b = NULL;
    size_t n = 0, off = SEG_HDR;
    int rc = TN_IO_ERROR;
    uint64_t expected = s->first;
    const char *what = NULL;
    if (read_file(s->fd, &b, &n) != 0) {
        ext_err(errbuf, errlen, "%s/%s: read: %s", log->dir, s->name, strerror(errno));
        return TN_IO_ERROR;
    }
    while (off < n) {
        size_t left = n - off;
        if (left < REC_HDR + REC_FIXED) {
            what = "short record";
            break;
        }
        uint32_t len = tn_get_le32(b + off);
        if (len < REC_FIXED) {
            what = "bad record length";
            break;
        }
        if (len > left - REC_HDR) {
            what = "short record";
            break;
        }
        if (record_crc(b + off, len) != tn_get_le32(b + off + 4)) {
            what = "bad CRC";
            break;
        }
        uint64_t idx = tn_get_le64(b + off + REC_HDR), term = tn_get_le64(b + off + REC_HDR + 8);
        if (idx != expected) {
            ext_err(errbuf, errlen, "%s/%s: index %" PRIu64 " where %" PRIu64 " was expected at offset %zu",
                    log->dir, s->name, idx, expected, off);
            goto done;
        }
        if (term < *prev_term) {
            ext_err(errbuf, errlen, "%s/%s: term goes backwards (%" PRIu64 " after %" PRIu64 ") at offset %zu",
                    log->dir, s->name, term, *prev_term, off);
            goto done;
        }
        if (ents_reserve(log, 1) != 0) {
            rc = TN_NOMEM;
            ext_err(errbuf, errlen, "out of memory");
            goto done;
        }
        ent *e = &log->ents[log->nents++];
        e->term = term;
        e->off = off;
        e->reclen = len;
        e->type = b[off + REC_HDR + 16];
        *prev_term = term;
        expected++;
        off += REC_HDR + len;
    }
    if (what) {
        /* A defect. It is a torn tail only in the last segment and only if no valid record follows it. */
        int later_valid = 0;
        if (is_last) {
            uint64_t hi = expected + (n - off) / (REC_HDR + REC_FIXED) + 1;
            for (size_t p = off + 1; p < n && !later_valid; p++) later_valid = valid_record_at(b, n, p, expected, hi);
        }
        if (!is_last || later_valid) {
            ext_err(errbuf, errlen, "%s/%s: %s at offset %zu", log->dir, s->name, what, off);
            goto done;
        }
        if (ftruncate(s->fd, (off_t)off) != 0 || io_sync(log, s->fd, 0) != 0) {
            ext_err(errbuf, errlen, "%s/%s: truncating torn tail: %s", log->dir, s->name, strerror(errno));
            goto done;
        }
        if (rec) {
            rec->dropped_bytes += n - off;
            snprintf(rec->torn_file, sizeof rec->torn_file, "%s", s->name);
        }
        n = off;
    }
    s->size = n;
    s->last = expected - 1;
    rc = TN_SUCCESS;
done:
    free(b);
    return rc;
}

/* Header check: 0 ok, 1 torn (only meaningful for the last file), -1 corrupt. */
static int check_header(const uint8_t *h, size_t have, uint64_t *gen, uint64_t *first)
{
    if (have < SEG_HDR) return 1;
    int zero = 1;
    for (size_t i = 0; i < SEG_HDR; i++) zero &= h[i] == 0;
    if (zero) return 1;
    if (tn_get_le32(h) != SEG_MAGIC || tn_get_le32(h + 24) != tn_crc32c(0, h, 24) || tn_get_le32(h + 4) != LOG_VERSION) return -1;
    *gen = tn_get_le64(h + 8);
    *first = tn_get_le64(h + 16);
    return 0;
}

static int all_zero_from(int fd, size_t from)
{
    uint8_t *b = NULL;
    size_t n = 0;
    if (read_file(fd, &b, &n) != 0) return 0;
    int zero = 1;
    for (size_t i = from; i < n && zero; i++) zero = b[i] == 0;
    free(b);
    return zero;
}

static void close_segs(tn_logstore *log)
{
    for (size_t i = 0; i < log->nsegs; i++)
        if (log->segs[i].fd >= 0) close(log->segs[i].fd);
    log->nsegs = 0;
}

static int recover(tn_logstore *log, tn_logstore_recovery *rec, char *errbuf, size_t errlen)
{
    found_seg *found = NULL;
    size_t nfound = 0, capfound = 0;
    int rc = TN_IO_ERROR;
    DIR *d = NULL;
    int dfd = dup(log->dirfd);
    if (dfd < 0 || !(d = fdopendir(dfd))) {
        if (dfd >= 0) close(dfd);
        ext_err(errbuf, errlen, "%s: opendir: %s", log->dir, strerror(errno));
        return TN_IO_ERROR;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        char canon[NAME_LEN];
        if (strlen(de->d_name) != 28 || sscanf(de->d_name, "log-%20" SCNu64, &first) != 1) continue;
        seg_name(canon, first);
        if (strcmp(canon, de->d_name) != 0) continue;
        if (first == 0) {
            ext_err(errbuf, errlen, "%s/%s: index 0 is not a valid first index", log->dir, de->d_name);
            goto done;
        }
        if (nfound == capfound) {
            capfound = capfound ? capfound * 2 : 16;
            found_seg *f = realloc(found, capfound * sizeof *f);
            if (!f) {
                rc = TN_NOMEM;
                ext_err(errbuf, errlen, "out of memory");
                goto done;
            }
            found = f;
        }
        found[nfound].first = first;
        memcpy(found[nfound].name, canon, NAME_LEN);
        nfound++;
    }
    if (nfound) qsort(found, nfound, sizeof *found, cmp_found);

    /* Open and check headers; drop stale generations and a torn newest file. */
    for (size_t i = 0; i < nfound; i++) {
        uint8_t h[SEG_HDR];
        uint64_t gen = 0, first = 0;
        int fd = openat(log->dirfd, found[i].name, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            ext_err(errbuf, errlen, "%s/%s: open: %s", log->dir, found[i].name, strerror(errno));
            goto done;
        }
        ssize_t got = pread(fd, h, SEG_HDR, 0);
        if (got < 0) {
            ext_err(errbuf, errlen, "%s/%s: read: %s", log->dir, found[i].name, strerror(errno));
            close(fd);
            goto done;
        }
        int hc = check_header(h, (size_t)got, &gen, &first);
        int is_last = i + 1 == nfound;
        if (hc == 1 && is_last && all_zero_from(fd, 0 + (size_t)got)) {
            struct stat st;
            if (rec && fstat(fd, &st) == 0) {
                rec->dropped_bytes += (uint64_t)st.st_size;
                snprintf(rec->torn_file, sizeof rec->torn_file, "%s", found[i].name);
            }
            close(fd);
            if (unlink_seg(log, found[i].name) != 0) {
                ext_err(errbuf, errlen, "%s", log->err);
                goto done;
            }
            if (rec) rec->removed_segments++;
            log->dir_dirty = 1;
            continue;
        }
        if (hc != 0) {
            ext_err(errbuf, errlen, "%s/%s: bad segment header at offset 0", log->dir, found[i].name);
            close(fd);
            goto done;
        }
        if (gen != log->gen) {
            close(fd);
            if (gen > log->gen) {
                ext_err(errbuf, errlen, "%s/%s: generation %" PRIu64 " newer than %s (%" PRIu64 ")", log->dir,
                        found[i].name, gen, META_FILE, log->gen);
                goto done;
            }
            if (unlink_seg(log, found[i].name) != 0) {
                ext_err(errbuf, errlen, "%s", log->err);
                goto done;
            }
            if (rec) rec->removed_segments++;
            log->dir_dirty = 1;
            continue;
        }
        if (first != found[i].first) {
            ext_err(errbuf, errlen, "%s/%s: header says first index %" PRIu64 " at offset 16", log->dir,
                    found[i].name, first);
            close(fd);
            goto done;
        }
        if (segs_reserve(log) != 0) {
            close(fd);
            rc = TN_NOMEM;
            ext_err(errbuf, errlen, "out of memory");
            goto done;
        }
        seg *s = &log->segs[log->nsegs++];
        memset(s, 0, sizeof *s);
        s->fd = fd;
        s->first = first;
        s->last = first - 1;
        s->size = SEG_HDR;
        snprintf(s->name, NAME_LEN, "%s", found[i].name);
    }

    /* Segments whose successor starts at or below base + 1 hold only compacted entries. */
    size_t keep_from = 0;
    while (keep_from + 1 < log->nsegs && log->segs[keep_from + 1].first <= log->base_index + 1) {
        close(log->segs[keep_from].fd);
        log->segs[keep_from].fd = -1;
        if (unlink_seg(log, log->segs[keep_from].name) != 0) {
            ext_err(errbuf, errlen, "%s", log->err);
            goto done;
        }
        if (rec) rec->removed_segments++;
        log->dir_dirty = 1;
        keep_from++;
    }
    if (keep_from) memmove(log->segs, log->segs + keep_from, (log->nsegs - keep_from) * sizeof *log->segs);
    log->nsegs -= keep_from;

    if (log->nsegs > 0 && log->segs[0].first > log->base_index + 1) {
        ext_err(errbuf, errlen, "%s/%s: gap: log base is %" PRIu64 " but the first segment starts at %" PRIu64,
                log->dir, log->segs[0].name, log->base_index, log->segs[0].first);
        goto done;
    }

    log->ents_first = log->nsegs ? log->segs[0].first : log->base_index + 1;
    uint64_t prev_term = 0;
    for (size_t i = 0; i < log->nsegs; i++) {
        seg *s = &log->segs[i];
        if (i > 0 && s->first != log->segs[i - 1].last + 1) {
            ext_err(errbuf, errlen, "%s/%s: gap: previous segment %s ends at index %" PRIu64 " but this one starts at %"
                    PRIu64, log->dir, s->name, log->segs[i - 1].name, log->segs[i - 1].last, s->first);
            goto done;
        }
        rc = scan_segment(log, s, i + 1 == log->nsegs, &prev_term, rec, errbuf, errlen);
        if (rc != TN_SUCCESS) goto done;
        rc = TN_IO_ERROR;
    }

    uint64_t phys_last = log->nsegs ? log->segs[log->nsegs - 1].last : log->base_index;
    if (phys_last < log->base_index) {
        /* Everything on disk is at or below the base (the tail after a compaction point was torn off):
         * the log is empty at the base. */
        for (size_t i = 0; i < log->nsegs; i++) {
            close(log->segs[i].fd);
            log->segs[i].fd = -1;
            if (unlink_seg(log, log->segs[i].name) != 0) {
                ext_err(errbuf, errlen, "%s", log->err);
                goto done;
            }
            if (rec) rec->removed_segments++;
        }
        log->dir_dirty = 1;
        log->nsegs = 0;
        log->nents = 0;
        log->ents_first = log->base_index + 1;
        phys_last = log->base_index;
    }
    log->last_index = phys_last;
    if (phys_last > log->base_index) {
        log->last_term = log->ents[phys_last - log->ents_first].term;
        uint64_t first_visible_term = log->ents[log->base_index + 1 - log->ents_first].term;
        if (first_visible_term < log->base_term) {
            seg *s = &log->segs[0];
            ext_err(errbuf, errlen, "%s/%s: term %" PRIu64 " of index %" PRIu64 " is below the base term %" PRIu64,
                    log->dir, s->name, first_visible_term, log->base_index + 1, log->base_term);
            goto done;
        }
    } else {
        log->last_term = log->base_term;
    }
    /* The last segment may hold bytes a killed process wrote but never synced (they survive in the page
     * cache). They are about to count as durable, so make them so. Older segments were synced when the
     * log rolled past them. */
    if (log->nsegs > 0 && io_sync(log, log->segs[log->nsegs - 1].fd, 0) != 0) {
        ext_err(errbuf, errlen, "%s/%s: fdatasync: %s", log->dir, log->segs[log->nsegs - 1].name, strerror(errno));
        goto done;
    }
    if (log->dir_dirty) {
        if (io_sync(log, log->dirfd, 1) != 0) {
            ext_err(errbuf, errlen, "%s: fsync directory: %s", log->dir, strerror(errno));
            goto done;
        }
        log->dir_dirty = 0;
    }
    rc = TN_SUCCESS;
done:
    free(found);
    closedir(d);
    return rc;
}

/* ---- open / close ------------------------------------------------------------------------------- */

int tn_logstore_open(const char *dir, const tn_logstore_opts *opts, tn_logstore **out,
                     tn_logstore_recovery *rec, char *errbuf, size_t errlen)
{
    int rc = TN_IO_ERROR;
    *out = NULL;
    if (rec) memset(rec, 0, sizeof *rec);
    if (errbuf && errlen) errbuf[0] = '\0';
    tn_logstore *log = calloc(1, sizeof *log);
    if (!log) return TN_NOMEM;
    log->dirfd = -1;
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->sync_mu, NULL);
    pthread_cond_init(&log->sync_cv, NULL);
    if (opts) log->opts = *opts;
    if (!log->opts.segment_size) log->opts.segment_size = 64u << 20;
    if (!log->opts.write_buffer) log->opts.write_buffer = 256u << 10;
    if (!log->opts.max_entry_size) log->opts.max_entry_size = 64u << 20;
    if (log->opts.segment_size < SEG_HDR + REC_HDR + REC_FIXED || log->opts.max_entry_size > (1u << 30)) {
        ext_err(errbuf, errlen, "%s: bad options (segment_size %" PRIu64 ", max_entry_size %zu)", dir,
                log->opts.segment_size, log->opts.max_entry_size);
        rc = TN_BAD_REQUEST;
        goto fail;
    }
    log->dir = strdup(dir);
    if (!log->dir) {
        rc = TN_NOMEM;
        goto fail;
    }
    if (tn_mkdir_p(dir) != 0) {
        ext_err(errbuf, errlen, "%s: mkdir: %s", dir, strerror(errno));
        goto fail;
    }
    log->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dirfd < 0) {
        ext_err(errbuf, errlen, "%s: open: %s", dir, strerror(errno));
        goto fail;
    }
    /* One writer per log: a second process (or a second open in this one) would interleave appends and
     * corrupt it. The lock lives as long as dirfd (released by close, and by the kernel if we die). */
    if (flock(log->dirfd, LOCK_EX | LOCK_NB) != 0) {
        ext_err(errbuf, errlen, "%s: %s", dir,
                errno == EWOULDBLOCK ? "the log is in use by another process or instance (locked)" : strerror(errno));
        goto fail;
    }
    rc = read_meta(log, errbuf, errlen);
    if (rc != TN_SUCCESS) goto fail;
    rc = recover(log, rec, errbuf, errlen);
    if (rc != TN_SUCCESS) goto fail;
    log->buf_off = log->nsegs ? log->segs[log->nsegs - 1].size : 0;
    log->appended_index = log->last_index;
    log->durable_index = log->last_index; /* everything found on disk after recovery counts as durable */
    if (rec) {
        rec->first_index = log->base_index + 1;
        rec->last_index = log->last_index;
    }
    *out = log;
    return TN_SUCCESS;
fail:
    tn_logstore_close(log);
    return rc;
}

static int flush_locked(tn_logstore *log);

void tn_logstore_close(tn_logstore *log)
{
    if (!log) return;
    pthread_mutex_lock(&log->mu);
    if (!log->failed && log->buf_len) flush_locked(log);
    pthread_mutex_unlock(&log->mu);
    close_segs(log);
    if (log->dirfd >= 0) close(log->dirfd);
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->sync_mu);
    pthread_cond_destroy(&log->sync_cv);
    free(log->segs);
    free(log->ents);
    free(log->buf);
    free(log->sync_fds);
    free(log->dir);
    free(log);
}

/* ---- writing -------------------------------------------------------------------------------------- */

/* Writes the buffer to the active segment. Caller holds mu. On failure the log is failed. */
static int flush_locked(tn_logstore *log)
{
    if (log->buf_len == 0) return TN_SUCCESS;
    seg *s = &log->segs[log->nsegs - 1];
    if (io_pwrite(log, s->fd, log->buf, log->buf_len, log->buf_off) != 0) {
        log_err(log, "%s/%s: write at offset %" PRIu64 ": %s", log->dir, s->name, log->buf_off, strerror(errno));
        log->failed = 1;
        return TN_IO_ERROR;
    }
    log->buf_off += log->buf_len;
    log->buf_len = 0;
    return TN_SUCCESS;
}

/* Creates a new segment starting at `first` as the active one. Caller holds mu; buffer already flushed. */
static int new_segment_locked(tn_logstore *log, uint64_t first)
{
    uint8_t h[SEG_HDR];
    char name[NAME_LEN];
    seg_name(name, first);
    if (segs_reserve(log) != 0) {
        log_err(log, "out of memory");
        return TN_NOMEM;
    }
    int fd = openat(log->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_err(log, "%s/%s: create: %s", log->dir, name, strerror(errno));
        log->failed = 1;
        return TN_IO_ERROR;
    }
    encode_seg_header(h, log->gen, first);
    if (io_pwrite(log, fd, h, SEG_HDR, 0) != 0) {
        log_err(log, "%s/%s: write header: %s", log->dir, name, strerror(errno));
        log->failed = 1;
        close(fd);
        return TN_IO_ERROR;
    }
    seg *s = &log->segs[log->nsegs++];
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->first = first;
    s->last = first - 1;
    s->size = SEG_HDR;
    s->dirty = 1;
    snprintf(s->name, NAME_LEN, "%s", name);
    log->buf_off = SEG_HDR;
    log->buf_len = 0;
    log->dir_dirty = 1;
    return TN_SUCCESS;
}

int tn_logstore_append(tn_logstore *log, uint64_t index, uint64_t term, uint8_t type, const void *data,
                       size_t len)
{
    int rc;
    uint32_t reclen = (uint32_t)(REC_FIXED + len);
    size_t total = REC_HDR + (size_t)reclen;
    pthread_mutex_lock(&log->mu);
    if (log->failed) {
        rc = TN_IO_ERROR; /* fail-stop: the message of the first failure stays */
        goto out;
    }
    if (len > log->opts.max_entry_size) {
        log_err(log, "entry %" PRIu64 ": %zu bytes exceeds the limit %zu", index, len, log->opts.max_entry_size);
        rc = TN_TOO_LARGE;
        goto out;
    }
    if (index != log->last_index + 1 || term < log->last_term) {
        log_err(log, "append of index %" PRIu64 " term %" PRIu64 " after index %" PRIu64 " term %" PRIu64, index,
                term, log->last_index, log->last_term);
        rc = TN_BAD_REQUEST;
        goto out;
    }
    if (ents_reserve(log, 1) != 0) {
        rc = TN_NOMEM;
        goto out;
    }
    seg *s = log->nsegs ? &log->segs[log->nsegs - 1] : NULL;
    if (!s || (s->last >= s->first && s->size + total > log->opts.segment_size)) {
        rc = flush_locked(log);
        if (rc != TN_SUCCESS) goto out;
        if (s) {
            /* Sync the full segment (even if a concurrent sync is on it: it may not have finished) before starting the next one, so that only the LAST segment can ever
             * hold unsynced bytes: a torn record can then only be in the last segment, and recovery can
             * treat a bad record anywhere else as corruption. One fdatasync per segment size of log. */
            if (io_sync(log, s->fd, 0) != 0) {
                log_err(log, "%s/%s: fdatasync: %s", log->dir, s->name, strerror(errno));
                log->failed = 1;
                rc = TN_IO_ERROR;
                goto out;
            }
            s->dirty = 0;
        }
        rc = new_segment_locked(log, index);
        if (rc != TN_SUCCESS) goto out;
        s = &log->segs[log->nsegs - 1];
        if (log->nents == 0) log->ents_first = index;
    }
    if (log->buf_cap - log->buf_len < total) {
        size_t cap = log->buf_cap ? log->buf_cap : 4096;
        while (cap - log->buf_len < total) cap *= 2;
        uint8_t *nb = realloc(log->buf, cap);
        if (!nb) {
            log_err(log, "out of memory");
            rc = TN_NOMEM;
            goto out;
        }
        log->buf = nb;
        log->buf_cap = cap;
    }
    uint8_t *r = log->buf + log->buf_len;
    tn_put_le32(r, reclen);
    tn_put_le64(r + REC_HDR, index);
    tn_put_le64(r + REC_HDR + 8, term);
    r[REC_HDR + 16] = type;
    if (len) memcpy(r + REC_HDR + REC_FIXED, data, len);
    tn_put_le32(r + 4, record_crc(r, reclen));
    log->buf_len += total;

    ent *e = &log->ents[log->nents++];
    e->term = term;
    e->off = s->size;
    e->reclen = reclen;
    e->type = type;
    s->size += total;
    s->last = index;
    s->dirty = 1;
    log->last_index = index;
    log->last_term = term;
    log->appended_index = index;
    rc = TN_SUCCESS;
    if (log->buf_len >= log->opts.write_buffer) {
        /* The entry is recorded either way; a failed write fails the whole log (fail-stop). */
        rc = flush_locked(log);
    }
out:
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int tn_logstore_append_batch(tn_logstore *log, const tn_log_entry *entries, size_t n, size_t *appended)
{
    int rc = TN_SUCCESS;
    size_t done = 0;
    if (n > 0 && entries[0].index <= log->last_index) {
        if (entries[0].index <= log->base_index) {
            pthread_mutex_lock(&log->mu);
            log_err(log, "append of index %" PRIu64 ": at or below the compacted base %" PRIu64, entries[0].index,
                    log->base_index);
            pthread_mutex_unlock(&log->mu);
            rc = TN_BAD_REQUEST;
            goto out;
        }
        rc = tn_logstore_truncate_suffix(log, entries[0].index);
        if (rc != TN_SUCCESS) goto out;
    }
    for (; done < n; done++) {
        const tn_log_entry *e = &entries[done];
        rc = tn_logstore_append(log, e->index, e->term, e->type, e->data, e->len);
        if (rc != TN_SUCCESS) break;
    }
out:
    if (appended) *appended = done;
    return rc;
}

static int sync_now(tn_logstore *log);

int tn_logstore_sync(tn_logstore *log, uint64_t *durable_index)
{
    int rc = sync_now(log);
    if (durable_index) *durable_index = tn_logstore_durable_index(log);
    return rc;
}

int tn_logstore_sync_upto(tn_logstore *log, uint64_t index, uint64_t *durable_index)
{
    int rc = TN_SUCCESS;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        if (log->failed) {
            rc = TN_IO_ERROR;
            break;
        }
        if (log->durable_index >= index) break;
        if (log->syncing) {
            pthread_cond_wait(&log->sync_cv, &log->mu);
            continue;
        }
        log->syncing = 1;
        pthread_mutex_unlock(&log->mu);
        rc = sync_now(log); /* covers everything appended before the call, so `index` too */
        pthread_mutex_lock(&log->mu);
        log->syncing = 0;
        pthread_cond_broadcast(&log->sync_cv);
        break; /* also for an index never appended (a caller's bug): one sync, never a loop of them */
    }
    if (durable_index) *durable_index = log->durable_index;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* One sync of everything appended so far (see tn_logstore_sync); wakes the sync_upto waiters after. */
static int sync_now(tn_logstore *log)
{
    int rc = TN_SUCCESS;
    size_t nfds = 0;
    pthread_mutex_lock(&log->sync_mu);
    pthread_mutex_lock(&log->mu);
    if (log->failed) {
        rc = TN_IO_ERROR;
        goto unlock_mu;
    }
    rc = flush_locked(log);
    if (rc != TN_SUCCESS) goto unlock_mu;
    if (log->sync_cap < log->nsegs) {
        int *f = realloc(log->sync_fds, log->nsegs * sizeof *f);
        if (!f) {
            log_err(log, "out of memory");
            rc = TN_NOMEM;
            goto unlock_mu;
        }
        log->sync_fds = f;
        log->sync_cap = log->nsegs;
    }
    for (size_t i = 0; i < log->nsegs; i++) {
        if (log->segs[i].dirty) {
            log->sync_fds[nfds++] = log->segs[i].fd;
            log->segs[i].dirty = 0;
        }
    }
    uint64_t target = log->appended_index;
    int dir = log->dir_dirty;
    log->dir_dirty = 0;
    pthread_mutex_unlock(&log->mu);

    /* The fds stay open: only truncate/compact/reset/close close segments, and they hold sync_mu. */
    int err = 0, which = -1;
    for (size_t i = 0; i < nfds && !err; i++) {
        if (io_sync(log, log->sync_fds[i], 0) != 0) {
            err = errno;
            which = (int)i;
        }
    }
    if (!err && dir && io_sync(log, log->dirfd, 1) != 0) err = errno;

    pthread_mutex_lock(&log->mu);
    if (err) {
        if (which >= 0)
            log_err(log, "%s: fdatasync of a segment failed: %s", log->dir, strerror(err));
        else
            log_err(log, "%s: fsync of the directory failed: %s", log->dir, strerror(err));
        log->failed = 1;
        rc = TN_IO_ERROR;
    } else if (target > log->durable_index) {
        log->durable_index = target;
    }
unlock_mu:
    pthread_cond_broadcast(&log->sync_cv); /* a sync_upto waiter may be covered now (or see `failed`) */
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->sync_mu);
    return rc;
}

uint64_t tn_logstore_durable_index(tn_logstore *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t d = log->durable_index;
    pthread_mutex_unlock(&log->mu);
    return d;
}

int tn_logstore_failed(tn_logstore *log)
{
    pthread_mutex_lock(&log->mu);
    int f = log->failed;
    pthread_mutex_unlock(&log->mu);
    return f;
}

void tn_logstore_errmsg(tn_logstore *log, char *buf, size_t len)
{
    if (!buf || !len) return;
    pthread_mutex_lock(&log->mu);
    snprintf(buf, len, "%s", log->err);
    pthread_mutex_unlock(&log->mu);
}

/* Index of the segment holding `index` (which must be in [ents_first, last_index]). */
static size_t find_seg(const tn_logstore *log, uint64_t index)
{
    size_t lo = 0, hi = log->nsegs; /* invariant: segs[lo].first <= index < segs[hi].first */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid].first <= index)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int tn_logstore_truncate_suffix(tn_logstore *log, uint64_t from_index)
{
    int rc = TN_SUCCESS;
    if (from_index > log->last_index) return TN_SUCCESS;
    pthread_mutex_lock(&log->sync_mu);
    pthread_mutex_lock(&log->mu);
    if (from_index <= log->base_index) {
        log_err(log, "truncate_suffix(%" PRIu64 "): at or below the compacted base %" PRIu64, from_index,
                log->base_index);
        rc = TN_BAD_REQUEST;
        goto out;
    }
    if (log->failed) {
        rc = TN_IO_ERROR;
        goto out;
    }
    rc = flush_locked(log);
    if (rc != TN_SUCCESS) goto out;
    size_t k = find_seg(log, from_index);
    /* Newest first, one directory fsync each, so a crash leaves a consistent prefix. */
    while (log->nsegs > k + 1) {
        seg *s = &log->segs[log->nsegs - 1];
        close(s->fd);
        s->fd = -1;
        int bad = unlink_seg(log, s->name) != 0;
        if (!bad && io_sync(log, log->dirfd, 1) != 0) {
            bad = 1;
            log_err(log, "%s: fsync directory after removing %s: %s", log->dir, s->name, strerror(errno));
        }
        if (bad) {
            log->nsegs--;
            log->failed = 1;
            rc = TN_IO_ERROR;
            goto out;
        }
        log->nsegs--;
    }
    seg *s = &log->segs[k];
    uint64_t cut = log->ents[from_index - log->ents_first].off;
    if (ftruncate(s->fd, (off_t)cut) != 0 || io_sync(log, s->fd, 0) != 0) {
        log_err(log, "%s/%s: truncate at offset %" PRIu64 ": %s", log->dir, s->name, cut, strerror(errno));
        log->failed = 1;
        rc = TN_IO_ERROR;
        goto out;
    }
    s->size = cut;
    s->last = from_index - 1;
    log->buf_off = cut;
    log->buf_len = 0;
    log->nents = (size_t)(from_index - log->ents_first);
    log->last_index = from_index - 1;
    log->last_term = log->last_index > log->base_index ? log->ents[log->last_index - log->ents_first].term
                                                       : log->base_term;
    log->appended_index = log->last_index;
    if (log->durable_index > log->last_index) log->durable_index = log->last_index;
out:
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->sync_mu);
    return rc;
}

int tn_logstore_compact(tn_logstore *log, uint64_t upto_index)
{
    int rc = TN_SUCCESS;
    if (upto_index <= log->base_index) return TN_SUCCESS;
    pthread_mutex_lock(&log->sync_mu);
    pthread_mutex_lock(&log->mu);
    if (upto_index > log->last_index) {
        log_err(log, "compact(%" PRIu64 "): beyond the last index %" PRIu64, upto_index, log->last_index);
        rc = TN_BAD_REQUEST;
        goto out;
    }
    if (log->failed) {
        rc = TN_IO_ERROR;
        goto out;
    }
    uint64_t term = log->ents[upto_index - log->ents_first].term;
    /* The new base must be durable before any segment disappears. */
    if (write_meta(log, log->gen, upto_index, term) != TN_SUCCESS) {
        log->failed = 1;
        rc = TN_IO_ERROR;
        goto out;
    }
    log->base_index = upto_index;
    log->base_term = term;
    size_t drop = 0;
    while (drop + 1 < log->nsegs && log->segs[drop + 1].first <= upto_index + 1) {
        seg *s = &log->segs[drop];
        close(s->fd);
        s->fd = -1;
        if (unlink_seg(log, s->name) != 0) {
            /* The base is durable; open deletes the leftovers. Keep the in-memory view consistent. */
            log->failed = 1;
            rc = TN_IO_ERROR;
            drop++;
            break;
        }
        drop++;
    }
    if (drop) {
        uint64_t new_first = log->segs[drop].first;
        size_t shift = (size_t)(new_first - log->ents_first);
        memmove(log->ents, log->ents + shift, (log->nents - shift) * sizeof *log->ents);
        log->nents -= shift;
        log->ents_first = new_first;
        memmove(log->segs, log->segs + drop, (log->nsegs - drop) * sizeof *log->segs);
        log->nsegs -= drop;
        log->dir_dirty = 1; /* the unlinks become durable with the next sync (open redoes them anyway) */
    }
out:
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->sync_mu);
    return rc;
}

int tn_logstore_reset(tn_logstore *log, uint64_t index, uint64_t term)
{
    int rc = TN_SUCCESS;
    pthread_mutex_lock(&log->sync_mu);
    pthread_mutex_lock(&log->mu);
    if (log->failed) {
        rc = TN_IO_ERROR;
        goto out;
    }
    /* A new generation first: segments of the old one are dead from this moment on, even if unlinking
     * them is interrupted. */
    if (write_meta(log, log->gen + 1, index, term) != TN_SUCCESS) {
        log->failed = 1;
        rc = TN_IO_ERROR;
        goto out;
    }
    log->gen++;
    log->base_index = index;
    log->base_term = term;
    for (size_t i = 0; i < log->nsegs; i++) {
        close(log->segs[i].fd);
        log->segs[i].fd = -1;
        if (unlink_seg(log, log->segs[i].name) != 0) rc = TN_IO_ERROR;
    }
    log->nsegs = 0;
    log->nents = 0;
    log->ents_first = index + 1;
    log->last_index = index;
    log->last_term = term;
    log->appended_index = index;
    log->durable_index = index;
    log->buf_len = 0;
    log->buf_off = 0;
    log->dir_dirty = 1;
    if (rc != TN_SUCCESS) log->failed = 1;
out:
    pthread_mutex_unlock(&log->mu);
    pthread_mutex_unlock(&log->sync_mu);
    return rc;
}

/* ---- reading -------------------------------------------------------------------------------------- */

uint64_t tn_logstore_first_index(const tn_logstore *log) { return log->base_index + 1; }
uint64_t tn_logstore_last_index(const tn_logstore *log) { return log->last_index; }
uint64_t tn_logstore_last_term(const tn_logstore *log) { return log->last_term; }

int tn_logstore_term_at(const tn_logstore *log, uint64_t index, uint64_t *term)
{
    if (index == log->base_index) {
        *term = log->base_term;
        return TN_SUCCESS;
    }
    if (index < log->base_index || index > log->last_index) {
        *term = 0;
        return TN_NOT_FOUND;
    }
    *term = log->ents[index - log->ents_first].term;
    return TN_SUCCESS;
}

/* Copies the data of `index` into dst (ents[...].reclen - 17 bytes), checking the record CRC. Caller holds
 * mu (the write buffer may be flushed concurrently by sync otherwise). */
static int read_data_locked(tn_logstore *log, uint64_t index, uint8_t *dst)
{
    const ent *e = &log->ents[index - log->ents_first];
    size_t k = find_seg(log, index);
    seg *s = &log->segs[k];
    size_t total = REC_HDR + e->reclen;
    uint8_t small[256];
    uint8_t *rec = total <= sizeof small ? small : malloc(total);
    int rc = TN_IO_ERROR;
    if (!rec) return TN_NOMEM;
    if (k + 1 == log->nsegs && e->off >= log->buf_off) {
        memcpy(rec, log->buf + (e->off - log->buf_off), total);
    } else {
        size_t got = 0;
        while (got < total) {
            ssize_t r = pread(s->fd, rec + got, total - got, (off_t)(e->off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                log_err(log, "%s/%s: read at offset %" PRIu64 ": %s", log->dir, s->name, e->off,
                        r < 0 ? strerror(errno) : "unexpected end of file");
                goto done;
            }
            got += (size_t)r;
        }
    }
    if (tn_get_le32(rec) != e->reclen || record_crc(rec, e->reclen) != tn_get_le32(rec + 4) || tn_get_le64(rec + REC_HDR) != index) {
        log_err(log, "%s/%s: bad CRC at offset %" PRIu64 " (record changed on disk)", log->dir, s->name, e->off);
        goto done;
    }
    memcpy(dst, rec + REC_HDR + REC_FIXED, e->reclen - REC_FIXED);
    rc = TN_SUCCESS;
done:
    if (rec != small) free(rec);
    return rc;
}

int tn_logstore_read(tn_logstore *log, uint64_t index, uint64_t *term, uint8_t *type, uint8_t **data,
                     size_t *len)
{
    *data = NULL;
    *len = 0;
    if (index <= log->base_index || index > log->last_index) return TN_NOT_FOUND;
    const ent *e = &log->ents[index - log->ents_first];
    size_t n = e->reclen - REC_FIXED;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return TN_NOMEM;
    pthread_mutex_lock(&log->mu);
    int rc = read_data_locked(log, index, b);
    pthread_mutex_unlock(&log->mu);
    if (rc != TN_SUCCESS) {
        free(b);
        return rc;
    }
    *term = e->term;
    *type = e->type;
    *data = b;
    *len = n;
    return TN_SUCCESS;
}

int tn_logstore_read_batch(tn_logstore *log, uint64_t lo, uint64_t hi, size_t max_bytes, tn_log_batch *out)
{
    memset(out, 0, sizeof *out);
    if (lo <= log->base_index || lo > log->last_index || hi < lo) return TN_NOT_FOUND;
    if (hi > log->last_index) hi = log->last_index;
    size_t count = 0, bytes = 0;
    for (uint64_t i = lo; i <= hi; i++) {
        size_t n = log->ents[i - log->ents_first].reclen - REC_FIXED;
        if (count > 0 && bytes + n > max_bytes) break;
        bytes += n;
        count++;
    }
    out->entries = calloc(count, sizeof *out->entries);
    out->arena = malloc(bytes ? bytes : 1);
    if (!out->entries || !out->arena) {
        tn_log_batch_free(out);
        return TN_NOMEM;
    }
    int rc = TN_SUCCESS;
    size_t at = 0;
    pthread_mutex_lock(&log->mu);
    for (size_t j = 0; j < count && rc == TN_SUCCESS; j++) {
        uint64_t idx = lo + j;
        const ent *e = &log->ents[idx - log->ents_first];
        tn_log_entry *le = &out->entries[j];
        le->index = idx;
        le->term = e->term;
        le->type = e->type;
        le->len = e->reclen - REC_FIXED;
        le->data = out->arena + at;
        rc = read_data_locked(log, idx, out->arena + at);
        at += le->len;
    }
    pthread_mutex_unlock(&log->mu);
    if (rc != TN_SUCCESS) {
        tn_log_batch_free(out);
        return rc;
    }
    out->count = count;
    out->bytes = bytes;
    return TN_SUCCESS;
}

void tn_log_batch_free(tn_log_batch *b)
{
    if (!b) return;
    free(b->entries);
    free(b->arena);
    memset(b, 0, sizeof *b);
}
