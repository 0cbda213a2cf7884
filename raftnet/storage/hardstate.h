/* hardstate.h — the Raft hard state (term, vote, commit) in one small file, replaced atomically.
 *
 * File: <dir>/hardstate (36 bytes): magic "TNHS" u32, version u32, term u64, vote u64, commit u64,
 * CRC-32C u32 over the 32 bytes before it. All integers little-endian.
 *
 * Saving writes <dir>/hardstate.tmp, fdatasyncs it, renames it over <dir>/hardstate and fsyncs the
 * directory, so after a crash the file holds either the old or the new state, never a mix. When
 * tn_hardstate_save returns TN_SUCCESS the new state is durable: the daemon must not send a message that
 * depends on a new term or vote (a vote grant, a message of the new term) before that.
 *
 * The same atomic-replace routine (tn_file_write_atomic) and a directory fsync (tn_dir_fsync) are exported
 * here because the log store (its base file) and the snapshot files use them too.
 *
 * Results: tn_code values (raftnet/base/tn_code.h). Error messages go to errbuf (always NUL-terminated when
 * errlen > 0; may be NULL/0) and name the file and the cause.
 * Thread: any; calls on the same directory must not overlap (no internal locking).
 */
#ifndef TARN_HARDSTATE_H
#define TARN_HARDSTATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tn_hardstate {
    uint64_t term;   /* current term */
    uint64_t vote;   /* member id voted for in `term`, 0 = none */
    uint64_t commit; /* highest index known committed */
} tn_hardstate;

#define TN_HARDSTATE_FILE "hardstate"

/* Loads <dir>/hardstate into *out. Absent file: *out = {0,0,0}, *found = 0 (found may be NULL), SUCCESS.
 * Present and valid: *found = 1, SUCCESS. Wrong size, bad magic/version or CRC mismatch: IO_ERROR with a
 * message naming the file ("<dir>/hardstate: CRC mismatch"); *out is zeroed. Read errors: IO_ERROR. */
int tn_hardstate_load(const char *dir, tn_hardstate *out, int *found, char *errbuf, size_t errlen);

/* Atomically replaces <dir>/hardstate with *hs and makes it durable (see above). IO_ERROR on any failure
 * (the previous file is then still intact, a stray hardstate.tmp may remain and is overwritten next time). */
int tn_hardstate_save(const char *dir, const tn_hardstate *hs, char *errbuf, size_t errlen);

/* Writes `len` bytes to <dir>/<name>.tmp, fdatasyncs, renames to <dir>/<name>, fsyncs <dir>.
 * SUCCESS or IO_ERROR (message names the file and errno text). */
int tn_file_write_atomic(const char *dir, const char *name, const void *data, size_t len, char *errbuf,
                         size_t errlen);

/* Reads all of <dir>/<name> into a malloc'd buffer (*out, caller frees; *out_len). NOT_FOUND when the file
 * is absent (ENOENT), IO_ERROR on other errors, NOMEM. `max` bounds the size (larger: IO_ERROR). */
int tn_file_read_all(const char *dir, const char *name, size_t max, uint8_t **out, size_t *out_len,
                     char *errbuf, size_t errlen);

/* fsync of a directory (makes creates, renames and unlinks in it durable). 0 or -1 with errno set. */
int tn_dir_fsync(const char *dir);

/* mkdir -p that is durable: every directory it creates is fsynced into its parent. Existing directories
 * are fine. 0, or -1 with errno set (ENAMETOOLONG above 4095 bytes). */
int tn_mkdir_p(const char *dir);

#endif
