/* logstore_int.h — internals shared by logstore.c and logstore_recover.c (not a public contract: use
 * logstore.h, which also describes the files on disk and the threads). */
#ifndef TARN_LOGSTORE_INT_H
#define TARN_LOGSTORE_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "logstore.h"

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

/* ---- logstore.c: helpers recovery shares ------------------------------------------------------ */

/* fdatasync of a segment (is_dir = 0) or fsync of the directory, through opts.io. 0 or -1 + errno. */
int tn_logstore_io_sync(tn_logstore *log, int fd, int is_dir);
void tn_logstore_seg_name(char *out, uint64_t first); /* out has NAME_LEN bytes */
/* CRC-32C of a record: its len field and the len bytes after the CRC field. */
uint32_t tn_logstore_record_crc(const uint8_t *rec, uint32_t len);
/* Room for `more` entries in log->ents / one more segment in log->segs: 0 or -1 (NOMEM). */
int tn_logstore_ents_reserve(tn_logstore *log, size_t more);
int tn_logstore_segs_reserve(tn_logstore *log);
/* unlinkat of a segment (ENOENT is fine): 0, or -1 with the message in log->err. */
int tn_logstore_unlink_seg(tn_logstore *log, const char *name);

#endif
