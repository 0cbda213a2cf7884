/* fuzz_coll — collection payload decoders (raftnet/sm/coll.h): write and query payloads applied to a small
 * store, result decoders, and snapshot images. Nothing may crash or leak; a write that fails must leave the
 * store's image unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "coll.h"

static void setup(tn_colls *c)
{
    tn_coll_column cols[3] = {
        {.name = "id", .name_len = 2, .type = TN_T_INTEGER, .role = TN_R_PK},
        {.name = "k", .name_len = 1, .type = TN_T_TEXT, .role = TN_R_ORDERED},
        {.name = "h", .name_len = 1, .type = TN_T_INTEGER, .role = TN_R_HASH},
    };
    tn_coll_schema s = {.n_cols = 3, .cols = cols};
    tn_wr w, out;
    tn_wr_init(&w);
    tn_wr_init(&out);
    tn_coll_create_encode(&s, &w);
    tn_wctx ctx = {.index = 1, .time_ms = 1};
    tn_colls_write(c, &ctx, "t", 1, w.p, w.len, &out);
    for (int i = 0; i < 8; i++) {
        char key[4] = {'a', (char)('a' + i), 0, 0};
        tn_val idx[2] = {tn_val_text(key, 2), tn_val_int(i % 3)};
        tn_coll_row_op op = {.mode = TN_ROW_INSERT, .pk = tn_val_int(i), .idx = idx, .n_idx = 2,
                             .payload = (const uint8_t *)"p", .payload_len = 1};
        w.len = out.len = 0;
        tn_coll_rows_encode(&op, 1, 0, &w);
        ctx.index++;
        tn_colls_write(c, &ctx, "t", 1, w.p, w.len, &out);
    }
    tn_wr_free(&w);
    tn_wr_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tn_colls *c = tn_colls_new();
    if (!c) return 0;
    setup(c);
    tn_wr before, after, out;
    tn_wr_init(&before);
    tn_wr_init(&after);
    tn_wr_init(&out);
    tn_colls_serialize(c, &before);

    /* as a query */
    const char *plan = NULL;
    if (tn_colls_read(c, 9, "t", 1, data, size, &out, &plan) == TN_SUCCESS) {
        tn_coll_result res;
        if (tn_coll_result_decode(out.p, out.len, &res) != TN_SUCCESS) abort(); /* our own output decodes */
        tn_coll_result_clear(&res);
    }
    /* as a write: on failure the store must be unchanged */
    out.len = 0;
    tn_wctx ctx = {.index = 100, .time_ms = 100};
    int rc = tn_colls_write(c, &ctx, "t", 1, data, size, &out);
    if (rc == TN_CLIENT_REQ_ERROR) {
        tn_colls_serialize(c, &after);
        if (after.len != before.len || memcmp(after.p, before.p, before.len) != 0) abort();
    }
    /* as results and as a snapshot image */
    tn_coll_result res;
    if (tn_coll_result_decode(data, size, &res) == TN_SUCCESS) tn_coll_result_clear(&res);
    tn_coll_write_result wres;
    if (tn_coll_write_result_decode(data, size, &wres) == TN_SUCCESS) tn_coll_write_result_clear(&wres);
    tn_colls_deserialize(c, data, size);

    tn_wr_free(&before);
    tn_wr_free(&after);
    tn_wr_free(&out);
    tn_colls_free(c);
    return 0;
}
