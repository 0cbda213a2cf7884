/* fuzz_envelope — the envelope decoder (raftnet/proto/envelope.h): any input must decode cleanly or be
 * rejected; a decoded envelope re-encodes to bytes that decode to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tn_env env;
    if (tn_env_decode(data, size, &env) != TN_SUCCESS) return 0;
    tn_wr w;
    tn_wr_init(&w);
    size_t low_at;
    int rc = env.kind == TN_ENV_CLIENT
                 ? tn_env_encode_client(&w, env.token, env.token_len, env.payload, env.payload_len)
                 : tn_env_encode_peer(&w, env.token, env.token_len, env.from_id, env.stream, env.seq, env.low,
                                      env.payload, env.payload_len, &low_at);
    if (rc == TN_SUCCESS) {
        tn_env again;
        if (tn_env_decode(w.p, w.len, &again) != TN_SUCCESS || again.kind != env.kind ||
            again.token_len != env.token_len || again.payload_len != env.payload_len ||
            (env.token_len && memcmp(again.token, env.token, env.token_len) != 0) ||
            (env.payload_len && memcmp(again.payload, env.payload, env.payload_len) != 0) ||
            again.from_id != env.from_id || again.stream != env.stream || again.seq != env.seq ||
            again.low != env.low)
            abort();
        /* the patch point of `low` is where the decoder read it from */
        if (env.kind == TN_ENV_PEER && (low_at + 8 > w.len || w.p[low_at] != (uint8_t)env.low)) abort();
    }
    tn_wr_free(&w);
    return 0;
}
