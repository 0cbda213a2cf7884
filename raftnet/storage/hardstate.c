/* hardstate.c — atomic small files and the Raft hard state (see hardstate.h). */
#include "hardstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "crc32c.h"
#include "tn_code.h"

#define HS_MAGIC 0x53484e54u /* "TNHS" */
#define HS_VERSION 1u
#define HS_SIZE 36

int tn_dir_fsync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tn_file_write_atomic(const char *dir, const char *name, const void *data, size_t len, char *errbuf,
                         size_t errlen)
{
    char tmp[4096], dst[4096];
    int fd = -1;
    if (snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) {
        tn_errf(errbuf, errlen, "%s/%s: path too long", dir, name);
        return TN_IO_ERROR;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tn_errf(errbuf, errlen, "%s: open: %s", tmp, strerror(errno));
        goto fail;
    }
    if (write_all(fd, data, len) != 0) {
        tn_errf(errbuf, errlen, "%s: write: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fdatasync(fd) != 0) {
        tn_errf(errbuf, errlen, "%s: fdatasync: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        tn_errf(errbuf, errlen, "%s: close: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, dst) != 0) {
        tn_errf(errbuf, errlen, "%s: rename: %s", dst, strerror(errno));
        goto fail;
    }
    if (tn_dir_fsync(dir) != 0) {
        tn_errf(errbuf, errlen, "%s: fsync directory: %s", dir, strerror(errno));
        return TN_IO_ERROR; /* renamed but maybe not durable: the caller must treat it as failed */
    }
    return TN_SUCCESS;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return TN_IO_ERROR;
}

int tn_file_read_all(const char *dir, const char *name, size_t max, uint8_t **out, size_t *out_len,
                     char *errbuf, size_t errlen)
{
    char path[4096];
    uint8_t *buf = NULL;
    int fd = -1, rc = TN_IO_ERROR;
    struct stat st;
    *out = NULL;
    *out_len = 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        tn_errf(errbuf, errlen, "%s/%s: path too long", dir, name);
        return TN_IO_ERROR;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return TN_NOT_FOUND;
        tn_errf(errbuf, errlen, "%s: open: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) != 0) {
        tn_errf(errbuf, errlen, "%s: stat: %s", path, strerror(errno));
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        tn_errf(errbuf, errlen, "%s: size %lld exceeds %zu", path, (long long)st.st_size, max);
        goto fail;
    }
    size_t n = (size_t)st.st_size, got = 0;
    buf = malloc(n ? n : 1);
    if (!buf) {
        rc = TN_NOMEM;
        tn_errf(errbuf, errlen, "%s: out of memory", path);
        goto fail;
    }
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            tn_errf(errbuf, errlen, "%s: read: %s", path, r < 0 ? strerror(errno) : "file shrank");
            goto fail;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *out_len = n;
    return TN_SUCCESS;
fail:
    if (fd >= 0) close(fd);
    free(buf);
    return rc;
}

int tn_hardstate_load(const char *dir, tn_hardstate *out, int *found, char *errbuf, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    if (found) *found = 0;
    int rc = tn_file_read_all(dir, TN_HARDSTATE_FILE, 4096, &buf, &len, errbuf, errlen);
    if (rc == TN_NOT_FOUND) return TN_SUCCESS;
    if (rc != TN_SUCCESS) return rc;
    rc = TN_IO_ERROR;
    if (len != HS_SIZE) {
        tn_errf(errbuf, errlen, "%s/%s: corrupt: size %zu, expected %d", dir, TN_HARDSTATE_FILE, len, HS_SIZE);
        goto done;
    }
    tn_rd r;
    tn_rd_init(&r, buf, len);
    uint32_t magic = tn_rd_u32(&r), version = tn_rd_u32(&r);
    tn_hardstate hs;
    hs.term = tn_rd_u64(&r);
    hs.vote = tn_rd_u64(&r);
    hs.commit = tn_rd_u64(&r);
    uint32_t crc = tn_rd_u32(&r);
    if (r.err || magic != HS_MAGIC) {
        tn_errf(errbuf, errlen, "%s/%s: corrupt: bad magic", dir, TN_HARDSTATE_FILE);
        goto done;
    }
    if (crc != tn_crc32c(0, buf, HS_SIZE - 4)) {
        tn_errf(errbuf, errlen, "%s/%s: CRC mismatch", dir, TN_HARDSTATE_FILE);
        goto done;
    }
    if (version != HS_VERSION) {
        tn_errf(errbuf, errlen, "%s/%s: unsupported version %u", dir, TN_HARDSTATE_FILE, version);
        goto done;
    }
    *out = hs;
    if (found) *found = 1;
    rc = TN_SUCCESS;
done:
    free(buf);
    return rc;
}

int tn_hardstate_save(const char *dir, const tn_hardstate *hs, char *errbuf, size_t errlen)
{
    uint8_t buf[HS_SIZE];
    tn_wr w;
    tn_wr_init(&w);
    tn_wr_u32(&w, HS_MAGIC);
    tn_wr_u32(&w, HS_VERSION);
    tn_wr_u64(&w, hs->term);
    tn_wr_u64(&w, hs->vote);
    tn_wr_u64(&w, hs->commit);
    if (w.oom || w.len != HS_SIZE - 4) {
        tn_wr_free(&w);
        tn_errf(errbuf, errlen, "%s/%s: out of memory", dir, TN_HARDSTATE_FILE);
        return TN_NOMEM;
    }
    memcpy(buf, w.p, w.len);
    tn_wr_free(&w);
    uint32_t crc = tn_crc32c(0, buf, HS_SIZE - 4);
    buf[32] = (uint8_t)crc;
    buf[33] = (uint8_t)(crc >> 8);
    buf[34] = (uint8_t)(crc >> 16);
    buf[35] = (uint8_t)(crc >> 24);
    return tn_file_write_atomic(dir, TN_HARDSTATE_FILE, buf, sizeof buf, errbuf, errlen);
}

int tn_mkdir_p(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) == 0) {
                /* A new directory entry: make it durable in its parent. */
                char *slash = strrchr(tmp, '/');
                if (slash == tmp) {
                    if (tn_dir_fsync("/") != 0) return -1;
                } else if (slash) {
                    *slash = '\0';
                    int bad = tn_dir_fsync(tmp) != 0;
                    *slash = '/';
                    if (bad) return -1;
                } else if (tn_dir_fsync(".") != 0) {
                    return -1;
                }
            } else if (errno != EEXIST) {
                return -1;
            }
            tmp[i] = c;
        }
    }
    return 0;
}

