/* snapfile.h — the latest Raft snapshot on disk: an opaque image plus its metadata, CRC-protected,
 * installed atomically, with a chunked writer (receiving InstallSnapshot, resumable) and a chunked reader
 * (sending it).
 *
 * FILE: <dir>/snap-<index, 20 digits>-<term, 20 digits>.snap, all integers little-endian:
 *   header (48 bytes): magic "TNSN" u32, version u32 (1), index u64, term u64, conf_len u32, zero u32,
 *                      data_len u64, CRC-32C u32 over the 40 bytes before it, zero u32
 *   conf_len bytes of configuration blob, data_len bytes of image (opaque: the state machine's bytes,
 *   already LZ4-packed by its producer), then CRC-32C u32 over everything before it (header+conf+data).
 * The file is self-describing, so InstallSnapshot transfers THE WHOLE FILE as its byte stream: the reader
 * serves file bytes, the writer receives them, and finish() checks the header and the end-to-end CRC.
 * total_size of a transfer = tn_snap_meta.file_size = 48 + conf_len + data_len + 4.
 *
 * ATOMICITY: a snapshot is written under a temporary name (.tmp for save, .part for a transfer),
 * fdatasync'd, renamed to .snap and the directory fsync'd. Only then are older files deleted: every .snap,
 * .part and .tmp whose index is below the new one. Loading picks the .snap with the highest (index, term);
 * if that one is corrupt, load fails with a message naming it (never a silent fallback to an older one,
 * whose log may already be compacted).
 *
 * RESUME: the writer for (index, term) reuses an existing <name>.part: tn_snapwriter_have() says how many
 * bytes it already holds durably (each write is fdatasync'd before it returns), so after a restart or a
 * timeout the sender continues from there. If a crash left garbage at the end of a .part, finish() fails
 * the CRC check, deletes the .part and the transfer starts over — nothing bad is ever installed.
 *
 * RESULTS: tn_code values. Messages go to errbuf (may be NULL) and name the file.
 * THREADS: no shared state besides the directory. One writer per directory at a time (a save and a
 * transfer must not overlap); readers may run at any time — an open reader keeps reading its file even if
 * a newer snapshot replaces (unlinks) it.
 */
#ifndef TARN_SNAPFILE_H
#define TARN_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

#define TN_SNAP_HEADER_SIZE 48
#define TN_SNAP_OVERHEAD (TN_SNAP_HEADER_SIZE + 4)

typedef struct tn_snap_meta {
    uint64_t index;     /* last log index the image includes */
    uint64_t term;      /* its term */
    uint64_t conf_len;  /* bytes of configuration blob */
    uint64_t data_len;  /* bytes of image */
    uint64_t file_size; /* whole file = TN_SNAP_OVERHEAD + conf_len + data_len (the transfer size) */
} tn_snap_meta;

/* Writes a complete snapshot (creating dir if needed) and installs it atomically, then deletes older
 * ones. conf_len must fit in u32. SUCCESS, BAD_REQUEST (conf too large), IO_ERROR, NOMEM. */
int tn_snapfile_save(const char *dir, uint64_t index, uint64_t term, const void *conf, size_t conf_len,
                     const void *data, size_t data_len, char *errbuf, size_t errlen);

/* Loads the newest snapshot, verifying header and CRC. *conf and *data are malloc'd copies (caller frees;
 * non-NULL on success even when empty). NOT_FOUND when the directory holds no .snap (or does not exist);
 * IO_ERROR naming the file when it is corrupt ("<dir>/snap-…snap: CRC mismatch"); NOMEM. */
int tn_snapfile_load(const char *dir, tn_snap_meta *meta, uint8_t **conf, uint8_t **data, char *errbuf,
                     size_t errlen);

/* ---- chunked writer (receiving side) ------------------------------------------------------------- */

typedef struct tn_snapwriter tn_snapwriter;

/* Starts (or resumes) receiving the snapshot (index, term) whose file is total_size bytes. An existing
 * .part for the same (index, term) is resumed if it is not longer than total_size (else restarted);
 * .part files for other snapshots are deleted. *out owns the writer: end it with finish, abort or close.
 * SUCCESS, BAD_REQUEST (total_size below the minimum), IO_ERROR, NOMEM. */
int tn_snapwriter_begin(const char *dir, uint64_t index, uint64_t term, uint64_t total_size,
                        tn_snapwriter **out, char *errbuf, size_t errlen);

/* Bytes already held durably: the offset the sender must continue from. */
uint64_t tn_snapwriter_have(const tn_snapwriter *w);

/* Writes bytes [offset, offset+n) of the file and fdatasyncs them. Bytes below have() are skipped
 * (a resent chunk is harmless); offset > have() (a hole) or offset+n > total_size is BAD_REQUEST (the
 * writer is unchanged: the sender should restart from have()). IO_ERROR on a failed write/sync (the
 * durable count is then unchanged; the caller may abort). */
int tn_snapwriter_write(tn_snapwriter *w, uint64_t offset, const void *p, size_t n, char *errbuf,
                        size_t errlen);

/* Verifies that all total_size bytes arrived, that the header matches (index, term) and the sizes, and
 * the CRC; then installs the snapshot atomically and deletes older files. *meta (may be NULL) describes
 * it. Always frees the writer. On a verification failure the .part is deleted (IO_ERROR "… CRC mismatch");
 * BAD_REQUEST when bytes are still missing (the .part is kept: begin again to resume). */
int tn_snapwriter_finish(tn_snapwriter *w, tn_snap_meta *meta, char *errbuf, size_t errlen);

/* Deletes the .part file and frees the writer. NULL is a no-op. */
void tn_snapwriter_abort(tn_snapwriter *w);

/* Frees the writer and keeps the .part for a later resume (what a crash leaves behind). NULL: no-op. */
void tn_snapwriter_close(tn_snapwriter *w);

/* ---- chunked reader (sending side) --------------------------------------------------------------- */

typedef struct tn_snapreader tn_snapreader;

/* Opens the newest .snap for sending; *meta describes it (header checked, CRC left to the receiver).
 * NOT_FOUND when there is none; IO_ERROR (bad header) naming the file; NOMEM. */
int tn_snapreader_open(const char *dir, tn_snapreader **out, tn_snap_meta *meta, char *errbuf, size_t errlen);

/* Copies up to max bytes of the file from offset into buf; *got = bytes copied (0 at or past the end).
 * SUCCESS or IO_ERROR. */
int tn_snapreader_read(tn_snapreader *r, uint64_t offset, void *buf, size_t max, size_t *got);

void tn_snapreader_close(tn_snapreader *r);

#endif
