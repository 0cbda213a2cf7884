/* keymap.h — a hash map keyed by bytes, with a fixed-size value per key: the one map behind the read set
 * (readset.h) and the transaction buffer's row states and first-read set (txn.c).
 *
 * Keys are (space, bytes) pairs: `space` is a small number that lets one map hold the keys of several
 * tables without building composite keys (txn.c uses the table id); maps with one kind of key pass 0.
 * Bytes may be empty and may hold NULs. Values are val_size bytes (0 for a set), zeroed when a key is
 * inserted; the map hands out pointers to them.
 *
 * Open addressing with linear probing, load factor at most 3/4, FNV-1a hashes (keys come from one
 * connection's own reads and writes, not from untrusted peers). Entries are never removed one by one:
 * tn_keymap_reset empties the map and keeps its memory, tn_keymap_clear frees it. Iteration (tn_keymap_next)
 * is in slot order.
 *
 * Ownership: the map copies every key; key and value pointers it returns point into the map and are valid
 * until the next tn_keymap_put, tn_keymap_reset or tn_keymap_clear. Memory via sqlite3_malloc.
 * Failure: tn_keymap_put returns SQLITE_NOMEM and leaves the map as it was.
 * Thread: the owner's (a connection's) thread; no shared state.
 */
#ifndef TARN_KEYMAP_H
#define TARN_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tn_keymap {
    uint8_t *slots;   /* cap slots of `stride` bytes: a slot head, then the value */
    size_t stride;
    size_t val_size;
    size_t cap;       /* a power of two, or 0 */
    size_t used;
    uint8_t *keys;    /* every key's bytes, back to back */
    size_t keys_len, keys_cap;
} tn_keymap;

/* An empty map whose values are val_size bytes. Allocates nothing. */
void tn_keymap_init(tn_keymap *m, size_t val_size);

/* The value of (space, key), or NULL when absent. */
void *tn_keymap_get(const tn_keymap *m, uint32_t space, const void *key, size_t len);

/* Finds (space, key), inserting it with a zeroed value when absent. *val (may be NULL) is set to its value,
 * *created (may be NULL) to 1 when it was inserted. SQLITE_OK or SQLITE_NOMEM. */
int tn_keymap_put(tn_keymap *m, uint32_t space, const void *key, size_t len, void **val, int *created);

/* Number of keys. */
size_t tn_keymap_count(const tn_keymap *m);

/* Iteration: start with *pos = 0; each call returns 1 and the next entry (any pointer may be NULL), or 0
 * after the last. The map must not change during an iteration. */
int tn_keymap_next(const tn_keymap *m, size_t *pos, uint32_t *space, const uint8_t **key, size_t *len,
                   void **val);

/* Empties the map and keeps its memory for reuse. */
void tn_keymap_reset(tn_keymap *m);
/* Empties the map and frees its memory; the map stays usable (same val_size). */
void tn_keymap_clear(tn_keymap *m);

#endif
