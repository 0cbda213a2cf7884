/* logstore_recover.c — opening the segment log: log.meta, the segment scan and its repairs (see RECOVERY
 * in logstore.h). Appending, syncing, truncating, reading and compacting are in logstore.c. */
#include "logstore_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "crc32c.h"
#include "hardstate.h"
#include "tn_code.h"

/* ---- recovery ----------------------------------------------------------------------------------- */

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
        tn_errf(errbuf, errlen, "%s/%s: corrupt (size %zu or bad magic)", log->dir, META_FILE, n);
        goto done;
    }
    if (tn_get_le32(b + 32) != tn_crc32c(0, b, 32)) {
        tn_errf(errbuf, errlen, "%s/%s: CRC mismatch", log->dir, META_FILE);
        goto done;
    }
    if (tn_get_le32(b + 4) != LOG_VERSION) {
        tn_errf(errbuf, errlen, "%s/%s: unsupported version %u", log->dir, META_FILE, tn_get_le32(b + 4));
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
    return tn_logstore_record_crc(b + off, len) == tn_get_le32(b + off + 4);
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
        tn_errf(errbuf, errlen, "%s/%s: read: %s", log->dir, s->name, strerror(errno));
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
        if (tn_logstore_record_crc(b + off, len) != tn_get_le32(b + off + 4)) {
            what = "bad CRC";
            break;
        }
        uint64_t idx = tn_get_le64(b + off + REC_HDR), term = tn_get_le64(b + off + REC_HDR + 8);
        if (idx != expected) {
            tn_errf(errbuf, errlen, "%s/%s: index %" PRIu64 " where %" PRIu64 " was expected at offset %zu",
                    log->dir, s->name, idx, expected, off);
            goto done;
        }
        if (term < *prev_term) {
            tn_errf(errbuf, errlen, "%s/%s: term goes backwards (%" PRIu64 " after %" PRIu64 ") at offset %zu",
                    log->dir, s->name, term, *prev_term, off);
            goto done;
        }
        if (tn_logstore_ents_reserve(log, 1) != 0) {
            rc = TN_NOMEM;
            tn_errf(errbuf, errlen, "out of memory");
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
            tn_errf(errbuf, errlen, "%s/%s: %s at offset %zu", log->dir, s->name, what, off);
            goto done;
        }
        if (ftruncate(s->fd, (off_t)off) != 0 || tn_logstore_io_sync(log, s->fd, 0) != 0) {
            tn_errf(errbuf, errlen, "%s/%s: truncating torn tail: %s", log->dir, s->name, strerror(errno));
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

static int recover(tn_logstore *log, tn_logstore_recovery *rec, char *errbuf, size_t errlen)
{
    found_seg *found = NULL;
    size_t nfound = 0, capfound = 0;
    int rc = TN_IO_ERROR;
    DIR *d = NULL;
    int dfd = dup(log->dirfd);
    if (dfd < 0 || !(d = fdopendir(dfd))) {
        if (dfd >= 0) close(dfd);
        tn_errf(errbuf, errlen, "%s: opendir: %s", log->dir, strerror(errno));
        return TN_IO_ERROR;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        char canon[NAME_LEN];
        if (strlen(de->d_name) != 28 || sscanf(de->d_name, "log-%20" SCNu64, &first) != 1) continue;
        tn_logstore_seg_name(canon, first);
        if (strcmp(canon, de->d_name) != 0) continue;
        if (first == 0) {
            tn_errf(errbuf, errlen, "%s/%s: index 0 is not a valid first index", log->dir, de->d_name);
            goto done;
        }
        if (nfound == capfound) {
            capfound = capfound ? capfound * 2 : 16;
            found_seg *f = realloc(found, capfound * sizeof *f);
            if (!f) {
                rc = TN_NOMEM;
                tn_errf(errbuf, errlen, "out of memory");
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
            tn_errf(errbuf, errlen, "%s/%s: open: %s", log->dir, found[i].name, strerror(errno));
            goto done;
        }
        ssize_t got = pread(fd, h, SEG_HDR, 0);
        if (got < 0) {
            tn_errf(errbuf, errlen, "%s/%s: read: %s", log->dir, found[i].name, strerror(errno));
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
            if (tn_logstore_unlink_seg(log, found[i].name) != 0) {
                tn_errf(errbuf, errlen, "%s", log->err);
                goto done;
            }
            if (rec) rec->removed_segments++;
            log->dir_dirty = 1;
            continue;
        }
        if (hc != 0) {
            tn_errf(errbuf, errlen, "%s/%s: bad segment header at offset 0", log->dir, found[i].name);
            close(fd);
            goto done;
        }
        if (gen != log->gen) {
            close(fd);
            if (gen > log->gen) {
                tn_errf(errbuf, errlen, "%s/%s: generation %" PRIu64 " newer than %s (%" PRIu64 ")", log->dir,
                        found[i].name, gen, META_FILE, log->gen);
                goto done;
            }
            if (tn_logstore_unlink_seg(log, found[i].name) != 0) {
                tn_errf(errbuf, errlen, "%s", log->err);
                goto done;
            }
            if (rec) rec->removed_segments++;
            log->dir_dirty = 1;
            continue;
        }
        if (first != found[i].first) {
            tn_errf(errbuf, errlen, "%s/%s: header says first index %" PRIu64 " at offset 16", log->dir,
                    found[i].name, first);
            close(fd);
            goto done;
        }
        if (tn_logstore_segs_reserve(log) != 0) {
            close(fd);
            rc = TN_NOMEM;
            tn_errf(errbuf, errlen, "out of memory");
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
        if (tn_logstore_unlink_seg(log, log->segs[keep_from].name) != 0) {
            tn_errf(errbuf, errlen, "%s", log->err);
            goto done;
        }
        if (rec) rec->removed_segments++;
        log->dir_dirty = 1;
        keep_from++;
    }
    if (keep_from) memmove(log->segs, log->segs + keep_from, (log->nsegs - keep_from) * sizeof *log->segs);
    log->nsegs -= keep_from;

    if (log->nsegs > 0 && log->segs[0].first > log->base_index + 1) {
        tn_errf(errbuf, errlen, "%s/%s: gap: log base is %" PRIu64 " but the first segment starts at %" PRIu64,
                log->dir, log->segs[0].name, log->base_index, log->segs[0].first);
        goto done;
    }

    log->ents_first = log->nsegs ? log->segs[0].first : log->base_index + 1;
    uint64_t prev_term = 0;
    for (size_t i = 0; i < log->nsegs; i++) {
        seg *s = &log->segs[i];
        if (i > 0 && s->first != log->segs[i - 1].last + 1) {
            tn_errf(errbuf, errlen, "%s/%s: gap: previous segment %s ends at index %" PRIu64 " but this one starts at %"
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
            if (tn_logstore_unlink_seg(log, log->segs[i].name) != 0) {
                tn_errf(errbuf, errlen, "%s", log->err);
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
            tn_errf(errbuf, errlen, "%s/%s: term %" PRIu64 " of index %" PRIu64 " is below the base term %" PRIu64,
                    log->dir, s->name, first_visible_term, log->base_index + 1, log->base_term);
            goto done;
        }
    } else {
        log->last_term = log->base_term;
    }
    /* The last segment may hold bytes a killed process wrote but never synced (they survive in the page
     * cache). They are about to count as durable, so make them so. Older segments were synced when the
     * log rolled past them. */
    if (log->nsegs > 0 && tn_logstore_io_sync(log, log->segs[log->nsegs - 1].fd, 0) != 0) {
        tn_errf(errbuf, errlen, "%s/%s: fdatasync: %s", log->dir, log->segs[log->nsegs - 1].name, strerror(errno));
        goto done;
    }
    if (log->dir_dirty) {
        if (tn_logstore_io_sync(log, log->dirfd, 1) != 0) {
            tn_errf(errbuf, errlen, "%s: fsync directory: %s", log->dir, strerror(errno));
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

/* ---- open ------------------------------------------------------------------------------------- */

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
        tn_errf(errbuf, errlen, "%s: bad options (segment_size %" PRIu64 ", max_entry_size %zu)", dir,
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
        tn_errf(errbuf, errlen, "%s: mkdir: %s", dir, strerror(errno));
        goto fail;
    }
    log->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dirfd < 0) {
        tn_errf(errbuf, errlen, "%s: open: %s", dir, strerror(errno));
        goto fail;
    }
    /* One writer per log: a second process (or a second open in this one) would interleave appends and
     * corrupt it. The lock lives as long as dirfd (released by close, and by the kernel if we die). */
    if (flock(log->dirfd, LOCK_EX | LOCK_NB) != 0) {
        tn_errf(errbuf, errlen, "%s: %s", dir,
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
