/* readset.c — see readset.h. */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "readset.h"

#include <string.h>

void tn_readset_init(tn_readset *s) { tn_keymap_init(&s->map, sizeof(tn_read_info)); }

size_t tn_readset_count(const tn_readset *s) { return tn_keymap_count(&s->map); }

int tn_readset_put(tn_readset *s, const void *key, size_t len, const tn_read_info *info)
{
    void *val;
    if (tn_keymap_put(&s->map, 0, key, len, &val, NULL) != SQLITE_OK) return SQLITE_NOMEM;
    memcpy(val, info, sizeof *info);
    return SQLITE_OK;
}

const tn_read_info *tn_readset_get(const tn_readset *s, const void *key, size_t len)
{
    return tn_keymap_get(&s->map, 0, key, len);
}

void tn_readset_clear(tn_readset *s) { tn_keymap_clear(&s->map); }
