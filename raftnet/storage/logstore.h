/* logstore.h — the durable Raft log: a directory of CRC-protected segment files.
 *
 * ON DISK (all integers little-endian)
 *   <dir>/log-<first index, 20 digits>.seg   segment: 32-byte header, then records
 *       header: magic "TNLG" u32, version u32 (1), generation u64, first index u64,
 *               CRC-32C u32 over the 24 bytes before it, zero u32
 *       record: len u32 (= 17 + data length), CRC-32C u32 over (the 4 len bytes + the len bytes that
 *               follow the CRC), index u64, term u64, type u8, data[len - 17]
 *   <dir>/log.meta   base: magic "TNLM" u32, version u32, generation u64, base index u64, base term u64,
 *               CRC-32C u32. Written atomically (tmp + fdatasync + rename + directory fsync).
 * The base is the snapshot point: entries <= base index are compacted away (not readable), term_at(base)
 * answers the base term, and the first readable index is base + 1. No log.meta = base (0, 0).
 *
 * LOCKING: open takes an exclusive flock on the directory, held until close: a second open of the same log
 * (another process, or another instance in this one) fails with IO_ERROR ("in use ... (locked)").
 *
 * RECOVERY (tn_logstore_open) scans every segment and verifies every record:
 *   - A torn tail of the LAST segment is truncated: a short record, a bad length or a bad CRC that is NOT
 *     followed by any valid record later in the file (zero fill and appended garbage included). The number
 *     of dropped bytes and the file are reported in tn_logstore_recovery. A last segment whose header was
 *     torn (crash right after creating it; shorter than a header or all zeros) is removed and reported.
 *   - Anything else is an error that stops open with a message naming the file and byte offset, e.g.
 *     "<dir>/log-00000000000000000001.seg: bad CRC at offset 4096": a bad record followed by a valid one,
 *     a bad record in a non-last segment, non-consecutive indices, a term that goes backwards, a gap
 *     between segments, a bad header. Nothing is ever dropped silently.
 *   - Segments of an older generation (left by a reset interrupted by a crash) and segments whose entries
 *     are all <= base (left by an interrupted compaction) are deleted and counted.
 *
 * CRASH-SAFETY RULES
 *   - append writes only (write buffer + pwrite, no fsync); tn_logstore_sync makes every entry appended
 *     before it durable (fdatasync of each segment written since the last sync, fsync of the directory
 *     when a segment was created) and advances the durable index. One sync covers any number of appends.
 *   - Rolling to a new segment fdatasyncs the full one first (on the owner thread, once per segment_size
 *     bytes), so only the last segment can ever hold unsynced bytes: that is why a defect in any other
 *     segment is corruption, not a torn write. Open fdatasyncs the last segment, because what it found
 *     there (possibly written by a killed process, still only in the page cache) is then reported durable.
 *   - truncate_suffix is durable when it returns: later segments are unlinked one by one newest first,
 *     each followed by a directory fsync, then the segment holding `from` is ftruncate'd and fdatasync'd.
 *     So no re-appended (overwriting) entry can reach the disk before the removal of the entries it
 *     replaces: a crash can never resurrect a truncated entry after a newer one, and never leaves a gap.
 *     (Truncation is rare — a follower's conflict — so its fsyncs do not matter for throughput.)
 *   - compact writes log.meta durably first, then unlinks whole segments (open finishes an interrupted one).
 *   - reset bumps the generation in log.meta durably first, then unlinks every segment; segments of an
 *     older generation are ignored and deleted by open, so a crash mid-reset never mixes old entries into
 *     the new log. After a crash BEFORE the new log.meta is durable the old log is intact: the daemon, which
 *     installs the snapshot file first, must then compare the snapshot with the log and call reset again
 *     unless term_at(snapshot index) == snapshot term (the Raft rule for keeping a log suffix).
 *   - Fail-stop: after any failed write, fdatasync, fsync, ftruncate or unlink the log refuses every
 *     mutating call (append, sync, truncate_suffix, compact, reset) with TN_IO_ERROR. After a failed fsync
 *     the kernel may have dropped the dirty pages, so retrying would be lying about durability; the
 *     daemon must stop and recover from disk on restart.
 *
 * INVARIANTS checked by append (TN_BAD_REQUEST when violated): index == last_index + 1; term >= the term
 *   of the previous entry (or the base term). TN_TOO_LARGE when len > opts.max_entry_size.
 *
 * THREADS. One "owner" thread (the event loop) makes every call EXCEPT tn_logstore_sync and
 *   tn_logstore_durable_index, which may run on another thread (the disk thread) concurrently with owner
 *   calls. Owner calls never overlap each other. tn_logstore_sync holds an internal mutex only while it
 *   moves the write buffer to the kernel, not during fdatasync, so appends proceed during a sync.
 *   truncate_suffix, compact and reset wait for a running sync to finish (they block the owner thread).
 *   close must not overlap a sync. Concurrent syncs from several threads are serialized internally.
 *
 * MEMORY. An in-memory index of 24 bytes per entry (term, file offset, record length, type) for every
 *   entry in the segment files, plus the write buffer (opts.write_buffer, grown for a larger entry).
 *   Entry data is not cached: reads pread from the segment (normally the page cache) or copy from the
 *   write buffer; every read re-checks the record CRC. Open reads one segment at a time into memory
 *   (peak = the largest segment).
 *
 * RESULTS are tn_code values (raftnet/base/tn_code.h). On failure a message is available from
 * tn_logstore_errmsg (open writes it to its errbuf).
 */
#ifndef TARN_LOGSTORE_H
#define TARN_LOGSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tn_logstore tn_logstore;

/* Fault-injection hooks (tests, simulator). NULL members mean the real system call. */
typedef struct tn_logstore_io {
    /* pwrite(2) replacement: bytes written (short writes are retried) or -1 with errno set. */
    ssize_t (*pwrite_fn)(void *ctx, int fd, const void *buf, size_t n, off_t off);
    /* fdatasync(2) of a segment (is_dir = 0) or fsync(2) of the directory (is_dir = 1): 0 or -1 + errno. */
    int (*sync_fn)(void *ctx, int fd, int is_dir);
    void *ctx;
} tn_logstore_io;

typedef struct tn_logstore_opts {
    uint64_t segment_size;   /* roll to a new segment above this many bytes; 0 = 64 MiB */
    size_t write_buffer;     /* bytes buffered before a pwrite; 0 = 256 KiB */
    size_t max_entry_size;   /* largest data accepted by append; 0 = 64 MiB */
    tn_logstore_io io;
} tn_logstore_opts;

/* What open found and repaired (all zero for a clean log). */
typedef struct tn_logstore_recovery {
    uint64_t dropped_bytes;    /* bytes of torn tail cut from the last segment */
    char torn_file[48];        /* that segment's file name, "" when none */
    uint32_t removed_segments; /* stale (older generation / compacted) or header-torn segments deleted */
    uint64_t first_index;      /* first readable index after open */
    uint64_t last_index;       /* last index after open (first_index - 1 when empty) */
} tn_logstore_recovery;

/* One entry as returned by reads. `data` points into memory owned by the batch (see read_batch). */
typedef struct tn_log_entry {
    uint64_t index;
    uint64_t term;
    uint8_t type;
    const uint8_t *data;
    size_t len;
} tn_log_entry;

/* Result of tn_logstore_read_batch: entries[0..count) with data in one arena. Free with
 * tn_log_batch_free (frees both arrays; the struct itself is the caller's). */
typedef struct tn_log_batch {
    tn_log_entry *entries;
    size_t count;
    uint8_t *arena;
    size_t bytes; /* total data bytes */
} tn_log_batch;

/* Opens (creating `dir` and its parents if needed) and recovers the log (see RECOVERY). opts may be NULL
 * (defaults); it is copied. rec may be NULL. On success *out owns the log (free with tn_logstore_close).
 * Failures: IO_ERROR (corruption or system error; errbuf names file and offset), NOMEM, BAD_REQUEST (bad
 * options). *out is NULL on failure. Owner thread. */
int tn_logstore_open(const char *dir, const tn_logstore_opts *opts, tn_logstore **out,
                     tn_logstore_recovery *rec, char *errbuf, size_t errlen);

/* Hands buffered bytes to the kernel (best effort, no fsync) and frees everything. Call tn_logstore_sync
 * first if the entries must be durable. Must not overlap a sync. NULL is a no-op. */
void tn_logstore_close(tn_logstore *log);

/* Appends one entry; `data` (len bytes, may be NULL when len == 0) is copied. Not durable until a sync
 * returns. SUCCESS; BAD_REQUEST (index != last_index + 1, or term below the previous term); TOO_LARGE;
 * IO_ERROR (a write failed now or earlier: the log is failed); NOMEM. Owner thread. */
int tn_logstore_append(tn_logstore *log, uint64_t index, uint64_t term, uint8_t type, const void *data,
                       size_t len);

/* Appends entries[0..n) in order (each entry's data is copied), the way a Raft core hands over "entries to
 * persist": when entries[0].index <= last_index, the suffix from entries[0].index is first dropped with
 * tn_logstore_truncate_suffix (a conflict; durable on return), so the batch replaces it. The entries must be
 * consecutive. *appended (may be NULL) = how many were appended before a failure (n on success). Results as
 * for append and truncate_suffix; BAD_REQUEST also when entries[0].index <= the base index. Owner thread. */
int tn_logstore_append_batch(tn_logstore *log, const tn_log_entry *entries, size_t n, size_t *appended);

/* Makes every entry appended before the call durable. *durable_index (may be NULL) receives the durable
 * index (every entry <= it is on disk). SUCCESS or IO_ERROR (the log is then failed). Any thread. */
int tn_logstore_sync(tn_logstore *log, uint64_t *durable_index);
/* Makes every entry up to `index` (appended before the call) durable, sharing syncs with concurrent
 * callers: if a sync is running, waits for it and returns if it covered `index`, else one of the waiters
 * runs the next sync for all of them (group commit for writers that each need their own entry durable).
 * Same results and threads as tn_logstore_sync. */
int tn_logstore_sync_upto(tn_logstore *log, uint64_t index, uint64_t *durable_index);

/* Highest index known durable (as of the last successful sync, lowered by truncate_suffix). Any thread. */
uint64_t tn_logstore_durable_index(tn_logstore *log);

/* 1 once a write/sync failed (fail-stop), else 0. Any thread. */
int tn_logstore_failed(tn_logstore *log);

/* Drops every entry >= from_index (durable on return, see CRASH-SAFETY). from_index > last_index: no-op
 * SUCCESS. from_index <= base index (compacted): BAD_REQUEST. IO_ERROR: the log is failed. Owner thread;
 * waits for a running sync. */
int tn_logstore_truncate_suffix(tn_logstore *log, uint64_t from_index);

/* Sets the base to (upto_index, term_at(upto_index)) durably and deletes whole segments whose entries are
 * all <= upto_index; entries above stay readable, entries <= upto_index no longer are. upto_index <= base:
 * no-op SUCCESS. upto_index > last_index: BAD_REQUEST (use reset). IO_ERROR. Owner thread; waits for a
 * running sync. */
int tn_logstore_compact(tn_logstore *log, uint64_t upto_index);

/* Discards the whole log and restarts it after a snapshot at (index, term): afterwards first_index =
 * index + 1, last_index = index, term_at(index) = term, durable index = index. Durable on return.
 * IO_ERROR. Owner thread; waits for a running sync. */
int tn_logstore_reset(tn_logstore *log, uint64_t index, uint64_t term);

/* First readable index (base + 1). Owner thread. */
uint64_t tn_logstore_first_index(const tn_logstore *log);
/* Last index (== base index when no entry is above the base). Owner thread. */
uint64_t tn_logstore_last_index(const tn_logstore *log);
/* Term of the last entry (the base term when empty). Owner thread. */
uint64_t tn_logstore_last_term(const tn_logstore *log);

/* *term = term of `index` for base_index <= index <= last_index (the base term for index == base;
 * 0 for index 0). SUCCESS or NOT_FOUND (compacted or beyond the end; compare with first_index to tell
 * which). Owner thread. */
int tn_logstore_term_at(const tn_logstore *log, uint64_t index, uint64_t *term);

/* Reads one entry: *term, *type, and a malloc'd COPY of the data in *data (caller frees; never NULL on
 * success, even for len 0) with *len. NOT_FOUND outside [first_index, last_index]; IO_ERROR on a read
 * error or a record whose CRC no longer matches (the log is not marked failed); NOMEM. Owner thread. */
int tn_logstore_read(tn_logstore *log, uint64_t index, uint64_t *term, uint8_t *type, uint8_t **data,
                     size_t *len);

/* Reads entries lo..hi INCLUSIVE, stopping before the entry that would take the data total above
 * max_bytes, but always at least one entry (so a single large entry still goes out). *out is filled
 * (zeroed first); free with tn_log_batch_free. NOT_FOUND when lo is outside [first_index, last_index] or
 * hi < lo; hi beyond last_index is clamped. IO_ERROR / NOMEM as for read. Owner thread. */
int tn_logstore_read_batch(tn_logstore *log, uint64_t lo, uint64_t hi, size_t max_bytes, tn_log_batch *out);

void tn_log_batch_free(tn_log_batch *b);

/* Copies the message of the last failure (any call) into buf. Any thread. */
void tn_logstore_errmsg(tn_logstore *log, char *buf, size_t len);

#endif
