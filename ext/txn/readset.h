/* readset.h — a set of keys read: key bytes -> the revision seen and a few facts about the row. A table
 * keeps one per transaction so that its conditional writes carry the revision they read (never an
 * unconditional write after a read).
 *
 * A tn_keymap (keymap.h) with tn_read_info values; keys are copied. Memory via sqlite3_malloc.
 * Failure: tn_readset_put returns SQLITE_NOMEM and leaves the set as it was.
 * Thread: the owning connection's thread.
 */
#ifndef TARN_READSET_H
#define TARN_READSET_H

#include <stddef.h>
#include <stdint.h>

#include "keymap.h"

typedef struct tn_read_info {
    uint64_t rev;    /* update revision when read */
    int64_t ttl_ms;  /* 0 unless temp */
    int is_dir;
} tn_read_info;

typedef struct tn_readset {
    tn_keymap map; /* key -> tn_read_info */
} tn_readset;

void tn_readset_init(tn_readset *s);
/* Inserts or replaces. SQLITE_OK or SQLITE_NOMEM. */
int tn_readset_put(tn_readset *s, const void *key, size_t len, const tn_read_info *info);
/* Pointer into the set (valid until the next put/clear), or NULL. */
const tn_read_info *tn_readset_get(const tn_readset *s, const void *key, size_t len);
size_t tn_readset_count(const tn_readset *s);
/* Empties the set and frees its memory. */
void tn_readset_clear(tn_readset *s);

#endif
