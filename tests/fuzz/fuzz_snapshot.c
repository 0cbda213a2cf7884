/* fuzz_snapshot — state images from disk or from a leader: the LZ4+CRC frame (snapshot.h), the tree image
 * (tn_tree_deserialize) and the whole state-machine image (tn_sm_snapshot_load). Bad input is refused and
 * leaves the target unchanged; nothing crashes or leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sm.h"
#include "snapshot.h"
#include "tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    if (tn_snapshot_unpack(data, size, &raw, &raw_len) == TN_SUCCESS) free(raw);

    tn_tree *t = tn_tree_new(NULL);
    if (t) {
        tn_wctx ctx = {.index = 1, .time_ms = 1};
        tn_tree_put(t, &ctx, "a", 1, "v", 1);
        tn_wr before, after;
        tn_wr_init(&before);
        tn_wr_init(&after);
        tn_tree_serialize(t, &before);
        if (tn_tree_deserialize(t, data, size) != TN_SUCCESS) {
            tn_tree_serialize(t, &after);
            if (after.len != before.len || memcmp(after.p, before.p, before.len) != 0) abort();
        }
        tn_wr_free(&before);
        tn_wr_free(&after);
        tn_tree_free(t);
    }

    tn_sm *sm = tn_sm_new(NULL);
    if (sm) {
        tn_sm_snapshot_load(sm, data, size);
        tn_sm_free(sm);
    }
    return 0;
}
