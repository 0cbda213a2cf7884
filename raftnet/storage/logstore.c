/* logstore.c — segment-file Raft log with torn-tail recovery and group commit (see logstore.h): append,
 * sync (group commit), truncate, compact, reset, reads and close. Opening and recovery are in
 * logstore_recover.c; the state both share is in logstore_int.h. */
#include "logstore_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "crc32c.h"
#include "hardstate.h"
#include "tn_code.h"

/* ---- small helpers ---------------------------------------------------------------------------- */

/* caller holds mu or is single-threaded */
static TN_PRINTF(2, 3) void log_err(tn_logstore *log, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tn_verrf(log->err, sizeof log->err, fmt, ap);
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

int tn_logstore_io_sync(tn_logstore *log, int fd, int is_dir)
{
    if (log->opts.io.sync_fn) return log->opts.io.sync_fn(log->opts.io.ctx, fd, is_dir);
    return is_dir ? fsync(fd) : fdatasync(fd);
}

void tn_logstore_seg_name(char *out, uint64_t first) { snprintf(out, NAME_LEN, "log-%020" PRIu64 ".seg", first); }

static void encode_seg_header(uint8_t *h, uint64_t gen, uint64_t first)
{
    memset(h, 0, SEG_HDR);
    tn_put_le32(h, SEG_MAGIC);
    tn_put_le32(h + 4, LOG_VERSION);
    tn_put_le64(h + 8, gen);
    tn_put_le64(h + 16, first);
    tn_put_le32(h + 24, tn_crc32c(0, h, 24));
}

uint32_t tn_logstore_record_crc(const uint8_t *rec, uint32_t len)
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

int tn_logstore_ents_reserve(tn_logstore *log, size_t more)
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

int tn_logstore_segs_reserve(tn_logstore *log)
{
    if (log->nsegs < log->segcap) return 0;
    size_t cap = log->segcap ? log->segcap * 2 : 8;
    seg *s = realloc(log->segs, cap * sizeof *s);
    if (!s) return -1;
    log->segs = s;
    log->segcap = cap;
    return 0;
}

int tn_logstore_unlink_seg(tn_logstore *log, const char *name)
{
    if (unlinkat(log->dirfd, name, 0) != 0 && errno != ENOENT) {
        log_err(log, "%s/%s: unlink: %s", log->dir, name, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- close ------------------------------------------------------------------------------------ */

static void close_segs(tn_logstore *log)
{
    for (size_t i = 0; i < log->nsegs; i++)
        if (log->segs[i].fd >= 0) close(log->segs[i].fd);
    log->nsegs = 0;
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
    tn_logstore_seg_name(name, first);
    if (tn_logstore_segs_reserve(log) != 0) {
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
    if (tn_logstore_ents_reserve(log, 1) != 0) {
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
            if (tn_logstore_io_sync(log, s->fd, 0) != 0) {
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
    tn_put_le32(r + 4, tn_logstore_record_crc(r, reclen));
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
        if (tn_logstore_io_sync(log, log->sync_fds[i], 0) != 0) {
            err = errno;
            which = (int)i;
        }
    }
    if (!err && dir && tn_logstore_io_sync(log, log->dirfd, 1) != 0) err = errno;

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
        int bad = tn_logstore_unlink_seg(log, s->name) != 0;
        if (!bad && tn_logstore_io_sync(log, log->dirfd, 1) != 0) {
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
    if (ftruncate(s->fd, (off_t)cut) != 0 || tn_logstore_io_sync(log, s->fd, 0) != 0) {
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
        if (tn_logstore_unlink_seg(log, s->name) != 0) {
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
        if (tn_logstore_unlink_seg(log, log->segs[i].name) != 0) rc = TN_IO_ERROR;
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
    if (tn_get_le32(rec) != e->reclen || tn_logstore_record_crc(rec, e->reclen) != tn_get_le32(rec + 4) ||
        tn_get_le64(rec + REC_HDR) != index) {
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
