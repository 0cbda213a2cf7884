/* envelope.c — the nng message envelope around client requests and peer messages (see envelope.h). */
#include "envelope.h"

#include <string.h>

#include "tn_code.h"

int tn_env_encode_client(tn_wr *w, const void *token, size_t token_len, const void *payload, size_t len)
{
    if (token_len > TN_ENV_MAX_TOKEN || len > TN_WIRE_MAX_MESSAGE) return TN_TOO_LARGE;
    tn_wr_u8(w, TN_ENV_MAGIC0);
    tn_wr_u8(w, TN_ENV_MAGIC1);
    tn_wr_u8(w, TN_ENV_VERSION);
    tn_wr_u8(w, TN_ENV_CLIENT);
    tn_wr_bytes(w, token, token_len);
    tn_wr_raw(w, payload, len);
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

int tn_env_encode_peer(tn_wr *w, const void *token, size_t token_len, uint64_t from_id, uint64_t stream,
                       uint64_t seq, uint64_t low, const void *payload, size_t len, size_t *low_at)
{
    if (token_len > TN_ENV_MAX_TOKEN || len > TN_WIRE_MAX_MESSAGE) return TN_TOO_LARGE;
    tn_wr_u8(w, TN_ENV_MAGIC0);
    tn_wr_u8(w, TN_ENV_MAGIC1);
    tn_wr_u8(w, TN_ENV_VERSION);
    tn_wr_u8(w, TN_ENV_PEER);
    tn_wr_bytes(w, token, token_len);
    tn_wr_u64(w, from_id);
    tn_wr_u64(w, stream);
    tn_wr_u64(w, seq);
    *low_at = w->len;
    tn_wr_u64(w, low);
    tn_wr_raw(w, payload, len);
    return w->oom ? TN_NOMEM : TN_SUCCESS;
}

int tn_env_decode(const void *buf, size_t len, tn_env *env)
{
    tn_rd r;
    memset(env, 0, sizeof *env);
    tn_rd_init(&r, buf, len);
    uint8_t m0 = tn_rd_u8(&r), m1 = tn_rd_u8(&r), ver = tn_rd_u8(&r);
    env->kind = tn_rd_u8(&r);
    env->token = tn_rd_bytes(&r, TN_ENV_MAX_TOKEN, &env->token_len);
    if (env->token_len == 0) env->token = NULL;
    if (env->kind == TN_ENV_PEER) {
        env->from_id = tn_rd_u64(&r);
        env->stream = tn_rd_u64(&r);
        env->seq = tn_rd_u64(&r);
        env->low = tn_rd_u64(&r);
    }
    if (r.err || m0 != TN_ENV_MAGIC0 || m1 != TN_ENV_MAGIC1 || ver != TN_ENV_VERSION) goto fail;
    if (env->kind != TN_ENV_CLIENT && env->kind != TN_ENV_PEER) goto fail;
    if (env->kind == TN_ENV_PEER && env->low > env->seq) goto fail;
    env->payload_len = tn_rd_left(&r);
    if (env->payload_len > TN_WIRE_MAX_MESSAGE) goto fail;
    env->payload = r.p + r.off;
    return TN_SUCCESS;
fail:
    memset(env, 0, sizeof *env);
    return TN_BAD_REQUEST;
}

