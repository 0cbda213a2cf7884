/* snapfile.c — snapshot files: atomic save/load, resumable chunked writer, chunked reader (see snapfile.h). */
#include "snapfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "crc32c.h"
#include "hardstate.h"
#include "tn_code.h"

#define SNAP_MAGIC 0x4e534e54u /* "TNSN" */
#define SNAP_VERSION 1u
#define HDR TN_SNAP_HEADER_SIZE
#define NAME_LEN 64
#define PATH_LEN 4096

struct tn_snapwriter {
    char *dir;
    char part[PATH_LEN];
    char name[NAME_LEN]; /* final .snap name */
    int fd;
    uint64_t index, term, total, have;
};

struct tn_snapreader {
    int fd;
    uint64_t size;
};

static void snap_name(char *out, uint64_t index, uint64_t term, const char *ext)
{
    snprintf(out, NAME_LEN, "snap-%020" PRIu64 "-%020" PRIu64 ".%s", index, term, ext);
}

/* Parses "snap-<20>-<20>.<ext>"; returns 1 and fills index/term/ext (snap, part or tmp) on a match. */
static int parse_name(const char *name, uint64_t *index, uint64_t *term, char ext[8])
{
    char canon[NAME_LEN];
    if (sscanf(name, "snap-%20" SCNu64 "-%20" SCNu64 ".%7s", index, term, ext) != 3) return 0;
    snap_name(canon, *index, *term, ext);
    return strcmp(canon, name) == 0 &&
           (strcmp(ext, "snap") == 0 || strcmp(ext, "part") == 0 || strcmp(ext, "tmp") == 0);
}

static void encode_header(uint8_t *h, uint64_t index, uint64_t term, uint32_t conf_len, uint64_t data_len)
{
    memset(h, 0, HDR);
    tn_put_le32(h, SNAP_MAGIC);
    tn_put_le32(h + 4, SNAP_VERSION);
    tn_put_le64(h + 8, index);
    tn_put_le64(h + 16, term);
    tn_put_le32(h + 24, conf_len);
    tn_put_le64(h + 32, data_len);
    tn_put_le32(h + 40, tn_crc32c(0, h, 40));
}

/* Checks a header; fills meta. 0 ok, -1 bad. */
static int decode_header(const uint8_t *h, tn_snap_meta *meta)
{
    if (tn_get_le32(h) != SNAP_MAGIC || tn_get_le32(h + 40) != tn_crc32c(0, h, 40) || tn_get_le32(h + 4) != SNAP_VERSION) return -1;
    meta->index = tn_get_le64(h + 8);
    meta->term = tn_get_le64(h + 16);
    meta->conf_len = tn_get_le32(h + 24);
    meta->data_len = tn_get_le64(h + 32);
    if (meta->data_len > UINT64_MAX - TN_SNAP_OVERHEAD - meta->conf_len) return -1;
    meta->file_size = TN_SNAP_OVERHEAD + meta->conf_len + meta->data_len;
    return 0;
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int pread_all(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = pread(fd, b, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = EIO; /* shorter than expected */
            return -1;
        }
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Finds the newest .snap in dir. 1 found (name filled), 0 none, -1 error (errno). */
static int find_latest(const char *dir, char *name, uint64_t *index, uint64_t *term)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t i, t;
        char ext[8];
        if (!parse_name(de->d_name, &i, &t, ext) || strcmp(ext, "snap") != 0) continue;
        if (!found || i > *index || (i == *index && t > *term)) {
            *index = i;
            *term = t;
            snap_name(name, i, t, "snap");
            found = 1;
        }
    }
    closedir(d);
    return found;
}

/* After installing `keep` at `index`: delete every snapshot file (any ext) with a lower index.
 * Best effort: a leftover is deleted next time and never chosen over the newer one. */
static void delete_older(const char *dir, uint64_t index, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    int removed = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t i, t;
        char ext[8], path[PATH_LEN];
        if (!parse_name(de->d_name, &i, &t, ext) || strcmp(de->d_name, keep) == 0) continue;
        if (i >= index) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) == 0) removed = 1;
    }
    closedir(d);
    if (removed) tn_dir_fsync(dir);
}

/* Renames tmp_path to dir/name durably and deletes older snapshots. */
static int install(const char *dir, const char *tmp_path, const char *name, uint64_t index, char *errbuf,
                   size_t errlen)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (rename(tmp_path, path) != 0) {
        tn_errf(errbuf, errlen, "%s: rename: %s", path, strerror(errno));
        return TN_IO_ERROR;
    }
    if (tn_dir_fsync(dir) != 0) {
        tn_errf(errbuf, errlen, "%s: fsync directory: %s", dir, strerror(errno));
        return TN_IO_ERROR;
    }
    delete_older(dir, index, name);
    return TN_SUCCESS;
}

int tn_snapfile_save(const char *dir, uint64_t index, uint64_t term, const void *conf, size_t conf_len,
                     const void *data, size_t data_len, char *errbuf, size_t errlen)
{
    char name[NAME_LEN], tmp_name[NAME_LEN], tmp[PATH_LEN];
    uint8_t h[HDR], trailer[4];
    int fd = -1;
    if (conf_len > UINT32_MAX) {
        tn_errf(errbuf, errlen, "%s: configuration blob of %zu bytes is too large", dir, conf_len);
        return TN_BAD_REQUEST;
    }
    if (tn_mkdir_p(dir) != 0) {
        tn_errf(errbuf, errlen, "%s: mkdir: %s", dir, strerror(errno));
        return TN_IO_ERROR;
    }
    snap_name(name, index, term, "snap");
    snap_name(tmp_name, index, term, "tmp");
    snprintf(tmp, sizeof tmp, "%s/%s", dir, tmp_name);
    encode_header(h, index, term, (uint32_t)conf_len, data_len);
    uint32_t crc = tn_crc32c(0, h, HDR);
    if (conf_len) crc = tn_crc32c(crc, conf, conf_len);
    if (data_len) crc = tn_crc32c(crc, data, data_len);
    tn_put_le32(trailer, crc);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tn_errf(errbuf, errlen, "%s: create: %s", tmp, strerror(errno));
        goto fail;
    }
    if (pwrite_all(fd, h, HDR, 0) != 0 || (conf_len && pwrite_all(fd, conf, conf_len, HDR) != 0) ||
        (data_len && pwrite_all(fd, data, data_len, HDR + conf_len) != 0) ||
        pwrite_all(fd, trailer, 4, HDR + conf_len + data_len) != 0) {
        tn_errf(errbuf, errlen, "%s: write: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fdatasync(fd) != 0) {
        tn_errf(errbuf, errlen, "%s: fdatasync: %s", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (install(dir, tmp, name, index, errbuf, errlen) != TN_SUCCESS) goto fail;
    return TN_SUCCESS;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return TN_IO_ERROR;
}

int tn_snapfile_load(const char *dir, tn_snap_meta *meta, uint8_t **conf, uint8_t **data, char *errbuf,
                     size_t errlen)
{
    char name[NAME_LEN], path[PATH_LEN];
    uint64_t index = 0, term = 0;
    uint8_t h[HDR], trailer[4];
    int fd = -1, rc = TN_IO_ERROR;
    *conf = *data = NULL;
    memset(meta, 0, sizeof *meta);
    int f = find_latest(dir, name, &index, &term);
    if (f < 0) {
        tn_errf(errbuf, errlen, "%s: opendir: %s", dir, strerror(errno));
        return TN_IO_ERROR;
    }
    if (f == 0) return TN_NOT_FOUND;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        tn_errf(errbuf, errlen, "%s: open: %s", path, strerror(errno));
        goto fail;
    }
    tn_snap_meta m;
    if ((uint64_t)st.st_size < TN_SNAP_OVERHEAD || pread_all(fd, h, HDR, 0) != 0 || decode_header(h, &m) != 0) {
        tn_errf(errbuf, errlen, "%s: corrupt: bad header", path);
        goto fail;
    }
    if (m.index != index || m.term != term || m.file_size != (uint64_t)st.st_size) {
        tn_errf(errbuf, errlen, "%s: corrupt: header (index %" PRIu64 ", term %" PRIu64 ", %" PRIu64
                " bytes) does not match the file (%lld bytes)", path, m.index, m.term, m.file_size,
                (long long)st.st_size);
        goto fail;
    }
    if (m.conf_len > SIZE_MAX - 1 || m.data_len > SIZE_MAX - 1) {
        tn_errf(errbuf, errlen, "%s: too large to load", path);
        goto fail;
    }
    *conf = malloc(m.conf_len ? m.conf_len : 1);
    *data = malloc(m.data_len ? m.data_len : 1);
    if (!*conf || !*data) {
        rc = TN_NOMEM;
        tn_errf(errbuf, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (pread_all(fd, *conf, m.conf_len, HDR) != 0 || pread_all(fd, *data, m.data_len, HDR + m.conf_len) != 0 ||
        pread_all(fd, trailer, 4, HDR + m.conf_len + m.data_len) != 0) {
        tn_errf(errbuf, errlen, "%s: read: %s", path, strerror(errno));
        goto fail;
    }
    uint32_t crc = tn_crc32c(0, h, HDR);
    crc = tn_crc32c(crc, *conf, m.conf_len);
    crc = tn_crc32c(crc, *data, m.data_len);
    if (crc != tn_get_le32(trailer)) {
        tn_errf(errbuf, errlen, "%s: CRC mismatch", path);
        goto fail;
    }
    close(fd);
    *meta = m;
    return TN_SUCCESS;
fail:
    if (fd >= 0) close(fd);
    free(*conf);
    free(*data);
    *conf = *data = NULL;
    return rc;
}

/* ---- writer ------------------------------------------------------------------------------------------ */

/* Deletes .part files that belong to a different snapshot than `keep`. */
static void delete_other_parts(const char *dir, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t i, t;
        char ext[8], path[PATH_LEN];
        if (!parse_name(de->d_name, &i, &t, ext) || strcmp(ext, "part") != 0 || strcmp(de->d_name, keep) == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

int tn_snapwriter_begin(const char *dir, uint64_t index, uint64_t term, uint64_t total_size,
                        tn_snapwriter **out, char *errbuf, size_t errlen)
{
    char part_name[NAME_LEN];
    *out = NULL;
    if (total_size < TN_SNAP_OVERHEAD) {
        tn_errf(errbuf, errlen, "snapshot %" PRIu64 ": size %" PRIu64 " is below the minimum %d", index,
                total_size, TN_SNAP_OVERHEAD);
        return TN_BAD_REQUEST;
    }
    if (tn_mkdir_p(dir) != 0) {
        tn_errf(errbuf, errlen, "%s: mkdir: %s", dir, strerror(errno));
        return TN_IO_ERROR;
    }
    tn_snapwriter *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        tn_errf(errbuf, errlen, "out of memory");
        return TN_NOMEM;
    }
    w->fd = -1;
    w->index = index;
    w->term = term;
    w->total = total_size;
    snap_name(part_name, index, term, "part");
    snap_name(w->name, index, term, "snap");
    snprintf(w->part, sizeof w->part, "%s/%s", dir, part_name);
    delete_other_parts(dir, part_name);
    w->fd = open(w->part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (w->fd < 0 || fstat(w->fd, &st) != 0) {
        tn_errf(errbuf, errlen, "%s: open: %s", w->part, strerror(errno));
        goto fail;
    }
    w->have = (uint64_t)st.st_size;
    if (w->have > total_size) {
        /* Not the same transfer after all: start over. */
        if (ftruncate(w->fd, 0) != 0) {
            tn_errf(errbuf, errlen, "%s: truncate: %s", w->part, strerror(errno));
            goto fail;
        }
        w->have = 0;
    }
    if (w->have == 0 && tn_dir_fsync(dir) != 0) { /* the .part itself must survive a crash to resume */
        tn_errf(errbuf, errlen, "%s: fsync directory: %s", dir, strerror(errno));
        goto fail;
    }
    *out = w;
    return TN_SUCCESS;
fail:
    tn_snapwriter_close(w);
    return TN_IO_ERROR;
}

uint64_t tn_snapwriter_have(const tn_snapwriter *w) { return w->have; }

int tn_snapwriter_write(tn_snapwriter *w, uint64_t offset, const void *p, size_t n, char *errbuf, size_t errlen)
{
    const uint8_t *b = p;
    if (offset > w->have) {
        tn_errf(errbuf, errlen, "%s: chunk at offset %" PRIu64 " leaves a hole (have %" PRIu64 ")", w->part, offset,
                w->have);
        return TN_BAD_REQUEST;
    }
    if (n > w->total || offset > w->total - n) {
        tn_errf(errbuf, errlen, "%s: chunk [%" PRIu64 ", +%zu) beyond the size %" PRIu64, w->part, offset, n,
                w->total);
        return TN_BAD_REQUEST;
    }
    uint64_t skip = w->have - offset;
    if (skip >= n) return TN_SUCCESS; /* all of it is already here */
    b += skip;
    n -= (size_t)skip;
    if (pwrite_all(w->fd, b, n, w->have) != 0 || fdatasync(w->fd) != 0) {
        tn_errf(errbuf, errlen, "%s: write at offset %" PRIu64 ": %s", w->part, w->have, strerror(errno));
        return TN_IO_ERROR;
    }
    w->have += n;
    return TN_SUCCESS;
}

/* Checks the complete .part: header vs (index, term, total) and the CRC. */
static int verify_part(tn_snapwriter *w, tn_snap_meta *m, char *errbuf, size_t errlen)
{
    uint8_t h[HDR], trailer[4];
    if (pread_all(w->fd, h, HDR, 0) != 0 || decode_header(h, m) != 0) {
        tn_errf(errbuf, errlen, "%s: corrupt: bad header", w->part);
        return TN_IO_ERROR;
    }
    if (m->index != w->index || m->term != w->term || m->file_size != w->total) {
        tn_errf(errbuf, errlen, "%s: header (index %" PRIu64 ", term %" PRIu64 ", %" PRIu64 " bytes) does not match "
                "the transfer (index %" PRIu64 ", term %" PRIu64 ", %" PRIu64 " bytes)", w->part, m->index, m->term,
                m->file_size, w->index, w->term, w->total);
        return TN_IO_ERROR;
    }
    uint8_t *chunk = malloc(1 << 16);
    if (!chunk) return TN_NOMEM;
    uint32_t crc = 0;
    uint64_t body = w->total - 4;
    int rc = TN_SUCCESS;
    for (uint64_t off = 0; off < body;) {
        size_t k = body - off < (1u << 16) ? (size_t)(body - off) : (1u << 16);
        if (pread_all(w->fd, chunk, k, off) != 0) {
            tn_errf(errbuf, errlen, "%s: read: %s", w->part, strerror(errno));
            rc = TN_IO_ERROR;
            break;
        }
        crc = tn_crc32c(crc, chunk, k);
        off += k;
    }
    free(chunk);
    if (rc != TN_SUCCESS) return rc;
    if (pread_all(w->fd, trailer, 4, body) != 0 || tn_get_le32(trailer) != crc) {
        tn_errf(errbuf, errlen, "%s: CRC mismatch", w->part);
        return TN_IO_ERROR;
    }
    return TN_SUCCESS;
}

int tn_snapwriter_finish(tn_snapwriter *w, tn_snap_meta *meta, char *errbuf, size_t errlen)
{
    tn_snap_meta m;
    int rc;
    if (w->have != w->total) {
        tn_errf(errbuf, errlen, "%s: incomplete: %" PRIu64 " of %" PRIu64 " bytes", w->part, w->have, w->total);
        tn_snapwriter_close(w);
        return TN_BAD_REQUEST;
    }
    rc = verify_part(w, &m, errbuf, errlen);
    if (rc != TN_SUCCESS) {
        tn_snapwriter_abort(w);
        return rc;
    }
    close(w->fd);
    w->fd = -1;
    rc = install(w->dir, w->part, w->name, w->index, errbuf, errlen);
    if (rc == TN_SUCCESS && meta) *meta = m;
    tn_snapwriter_close(w);
    return rc;
}

void tn_snapwriter_abort(tn_snapwriter *w)
{
    if (!w) return;
    unlink(w->part);
    tn_snapwriter_close(w);
}

void tn_snapwriter_close(tn_snapwriter *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    free(w->dir);
    free(w);
}

/* ---- reader ------------------------------------------------------------------------------------------ */

int tn_snapreader_open(const char *dir, tn_snapreader **out, tn_snap_meta *meta, char *errbuf, size_t errlen)
{
    char name[NAME_LEN], path[PATH_LEN];
    uint64_t index = 0, term = 0;
    uint8_t h[HDR];
    *out = NULL;
    int f = find_latest(dir, name, &index, &term);
    if (f < 0) {
        tn_errf(errbuf, errlen, "%s: opendir: %s", dir, strerror(errno));
        return TN_IO_ERROR;
    }
    if (f == 0) return TN_NOT_FOUND;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tn_snapreader *r = calloc(1, sizeof *r);
    if (!r) return TN_NOMEM;
    struct stat st;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0 || fstat(r->fd, &st) != 0) {
        tn_errf(errbuf, errlen, "%s: open: %s", path, strerror(errno));
        goto fail;
    }
    if (pread_all(r->fd, h, HDR, 0) != 0 || decode_header(h, meta) != 0 || meta->index != index ||
        meta->term != term || meta->file_size != (uint64_t)st.st_size) {
        tn_errf(errbuf, errlen, "%s: corrupt: bad header or size", path);
        goto fail;
    }
    r->size = (uint64_t)st.st_size;
    *out = r;
    return TN_SUCCESS;
fail:
    tn_snapreader_close(r);
    return TN_IO_ERROR;
}

int tn_snapreader_read(tn_snapreader *r, uint64_t offset, void *buf, size_t max, size_t *got)
{
    *got = 0;
    if (offset >= r->size) return TN_SUCCESS;
    size_t n = r->size - offset < max ? (size_t)(r->size - offset) : max;
    if (pread_all(r->fd, buf, n, offset) != 0) return TN_IO_ERROR;
    *got = n;
    return TN_SUCCESS;
}

void tn_snapreader_close(tn_snapreader *r)
{
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    free(r);
}
