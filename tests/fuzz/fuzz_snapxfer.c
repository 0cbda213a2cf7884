/* fuzz_snapxfer.c — libFuzzer target for the InstallSnapshot stream payloads (snapxfer.h).
 *
 * The input goes to tn_snapchunk_decode and tn_snapack_decode. Whatever decodes is encoded again, and the
 * encoding must decode to the same fields and be no longer than the input (a non-minimal varint decodes,
 * so it may be shorter) — abort() otherwise. A chunk that decodes lies within its file (offset + len <=
 * total) and its bytes are the input's tail. Deterministic and leak-free.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "codec.h"
#include "snapxfer.h"
#include "tn_code.h"


static void check(int ok)
{
    if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tn_snapchunk c, c2;
    tn_snapack a, a2;
    tn_wr w;
    if (tn_snapchunk_decode(data, size, &c) == TN_SUCCESS) {
        check(c.offset <= c.total && c.len <= c.total - c.offset);
        check(c.len == 0 || (c.data >= data && c.data + c.len == data + size));
        tn_wr_init(&w);
        tn_snapchunk_encode(&c, &w);
        check(!w.oom);
        check(tn_snapchunk_decode(w.p, w.len, &c2) == TN_SUCCESS);
        check(c2.term == c.term && c2.index == c.index && c2.snap_term == c.snap_term && c2.total == c.total &&
              c2.offset == c.offset && c2.len == c.len);
        check(c.len == 0 || memcmp(c2.data, c.data, c.len) == 0);
        check(w.len <= size);
        tn_wr_free(&w);
    }
    if (tn_snapack_decode(data, size, &a) == TN_SUCCESS) {
        tn_wr_init(&w);
        tn_snapack_encode(&a, &w);
        check(!w.oom);
        check(tn_snapack_decode(w.p, w.len, &a2) == TN_SUCCESS);
        check(a2.term == a.term && a2.index == a.index && a2.snap_term == a.snap_term && a2.have == a.have);
        check(w.len <= size);
        tn_wr_free(&w);
    }
    return 0;
}
