/* keymap.c — see keymap.h. */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "keymap.h"

#include <string.h>

/* The head of a slot; the value follows it. */
typedef struct km_head {
    uint64_t hash;
    size_t key_off, key_len; /* the key's bytes in m->keys */
    uint32_t space;
    uint32_t used;
} km_head;

#define KM_FIRST_CAP 64

static km_head *slot_at(const uint8_t *slots, size_t stride, size_t i) { return (km_head *)(slots + i * stride); }

static void *value_of(km_head *h) { return (uint8_t *)h + sizeof *h; }

static uint64_t hash_key(uint32_t space, const void *key, size_t len)
{
    /* FNV-1a, 64-bit, its offset basis mixed with the space. */
    const uint8_t *b = key;
    uint64_t h = 1469598103934665603ull ^ space;
    for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

void tn_keymap_init(tn_keymap *m, size_t val_size)
{
    memset(m, 0, sizeof *m);
    m->val_size = val_size;
    m->stride = sizeof(km_head) + ((val_size + 7) & ~(size_t)7); /* keep every slot 8-byte aligned */
}

size_t tn_keymap_count(const tn_keymap *m) { return m->used; }

/* The slot holding (space, key), or the empty slot where it would go. cap must be non-zero. */
static km_head *find_slot(const tn_keymap *m, const uint8_t *slots, size_t cap, uint64_t h, uint32_t space,
                          const void *key, size_t len)
{
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        km_head *s = slot_at(slots, m->stride, i);
        if (!s->used) return s;
        if (s->hash == h && s->space == space && s->key_len == len &&
            (len == 0 || memcmp(m->keys + s->key_off, key, len) == 0))
            return s;
    }
}

static int grow(tn_keymap *m)
{
    size_t cap = m->cap ? m->cap * 2 : KM_FIRST_CAP;
    uint8_t *slots = sqlite3_malloc64(cap * m->stride);
    if (!slots) return SQLITE_NOMEM;
    memset(slots, 0, cap * m->stride);
    for (size_t i = 0; i < m->cap; i++) {
        km_head *old = slot_at(m->slots, m->stride, i);
        if (!old->used) continue;
        for (size_t j = old->hash & (cap - 1);; j = (j + 1) & (cap - 1)) {
            km_head *s = slot_at(slots, m->stride, j);
            if (!s->used) {
                memcpy(s, old, m->stride);
                break;
            }
        }
    }
    sqlite3_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return SQLITE_OK;
}

/* Room for len more key bytes. */
static int keys_reserve(tn_keymap *m, size_t len)
{
    if (m->keys_cap - m->keys_len >= len) return SQLITE_OK;
    size_t cap = m->keys_cap ? m->keys_cap : 256;
    while (cap - m->keys_len < len) cap *= 2;
    uint8_t *keys = sqlite3_realloc64(m->keys, cap);
    if (!keys) return SQLITE_NOMEM;
    m->keys = keys;
    m->keys_cap = cap;
    return SQLITE_OK;
}

void *tn_keymap_get(const tn_keymap *m, uint32_t space, const void *key, size_t len)
{
    if (!m->used) return NULL;
    km_head *s = find_slot(m, m->slots, m->cap, hash_key(space, key, len), space, key, len);
    return s->used ? value_of(s) : NULL;
}

int tn_keymap_put(tn_keymap *m, uint32_t space, const void *key, size_t len, void **val, int *created)
{
    if (!m->stride) tn_keymap_init(m, m->val_size); /* a zeroed map is an empty set */
    if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != SQLITE_OK) return SQLITE_NOMEM;
    uint64_t h = hash_key(space, key, len);
    km_head *s = find_slot(m, m->slots, m->cap, h, space, key, len);
    int fresh = !s->used;
    if (fresh) {
        if (keys_reserve(m, len) != SQLITE_OK) return SQLITE_NOMEM;
        if (len) memcpy(m->keys + m->keys_len, key, len);
        s->hash = h;
        s->key_off = m->keys_len;
        s->key_len = len;
        s->space = space;
        s->used = 1;
        memset(value_of(s), 0, m->stride - sizeof *s);
        m->keys_len += len;
        m->used++;
    }
    if (val) *val = value_of(s);
    if (created) *created = fresh;
    return SQLITE_OK;
}

int tn_keymap_next(const tn_keymap *m, size_t *pos, uint32_t *space, const uint8_t **key, size_t *len,
                   void **val)
{
    for (; *pos < m->cap; (*pos)++) {
        km_head *s = slot_at(m->slots, m->stride, *pos);
        if (!s->used) continue;
        if (space) *space = s->space;
        if (key) *key = m->keys ? m->keys + s->key_off : (const uint8_t *)""; /* only empty keys so far */
        if (len) *len = s->key_len;
        if (val) *val = value_of(s);
        (*pos)++;
        return 1;
    }
    return 0;
}

void tn_keymap_reset(tn_keymap *m)
{
    if (m->slots) memset(m->slots, 0, m->cap * m->stride);
    m->used = 0;
    m->keys_len = 0;
}

void tn_keymap_clear(tn_keymap *m)
{
    sqlite3_free(m->slots);
    sqlite3_free(m->keys);
    tn_keymap_init(m, m->val_size);
}
