/* readset.c — see readset.h. */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "readset.h"

#include <string.h>

struct tn_readset_slot {
    uint8_t *key; /* NULL = empty slot */
    size_t len;
    uint64_t hash;
    tn_read_info info;
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    /* FNV-1a, 64-bit: keys are short and this is not exposed to untrusted collision games beyond one
     * connection's own reads. */
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

void tn_readset_init(tn_readset *s) { memset(s, 0, sizeof *s); }

size_t tn_readset_count(const tn_readset *s) { return s->used; }

static struct tn_readset_slot *find_slot(struct tn_readset_slot *slots, size_t cap, uint64_t h,
                                         const void *key, size_t len)
{
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        struct tn_readset_slot *sl = &slots[i];
        if (!sl->key) return sl;
        if (sl->hash == h && sl->len == len && memcmp(sl->key, key, len) == 0) return sl;
    }
}

static int grow(tn_readset *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 64;
    struct tn_readset_slot *ns = sqlite3_malloc64(ncap * sizeof *ns);
    if (!ns) return SQLITE_NOMEM;
    memset(ns, 0, ncap * sizeof *ns);
    for (size_t i = 0; i < s->cap; i++) {
        struct tn_readset_slot *old = &s->slots[i];
        if (old->key) *find_slot(ns, ncap, old->hash, old->key, old->len) = *old;
    }
    sqlite3_free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    return SQLITE_OK;
}

int tn_readset_put(tn_readset *s, const void *key, size_t len, const tn_read_info *info)
{
    if ((s->used + 1) * 4 > s->cap * 3 && grow(s) != SQLITE_OK) return SQLITE_NOMEM;
    uint64_t h = hash_bytes(key, len);
    struct tn_readset_slot *sl = find_slot(s->slots, s->cap, h, key, len);
    if (!sl->key) {
        uint8_t *copy = sqlite3_malloc64(len ? len : 1);
        if (!copy) return SQLITE_NOMEM;
        memcpy(copy, key, len);
        sl->key = copy;
        sl->len = len;
        sl->hash = h;
        s->used++;
    }
    sl->info = *info;
    return SQLITE_OK;
}

const tn_read_info *tn_readset_get(const tn_readset *s, const void *key, size_t len)
{
    if (!s->cap) return NULL;
    struct tn_readset_slot *sl = find_slot(s->slots, s->cap, hash_bytes(key, len), key, len);
    return sl->key ? &sl->info : NULL;
}

void tn_readset_clear(tn_readset *s)
{
    for (size_t i = 0; i < s->cap; i++) sqlite3_free(s->slots[i].key);
    sqlite3_free(s->slots);
    memset(s, 0, sizeof *s);
}
