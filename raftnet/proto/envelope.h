/* envelope.h — the envelope of every message a raftnet node receives over nng (client requests and peer
 * Raft messages), and the ack a peer message gets back. Shared by the node's transport (net/transport.c)
 * and the cluster client (ext/client/cluster.c).
 *
 *   env       := 'T' 'E' version:u8 kind:u8 token:bytes body
 *   CLIENT    body := payload (a wire.h request, to the end of the message)
 *   PEER      body := from_id:u64 stream:u64 seq:u64 low:u64 payload (a Raft message, to the end)
 *   ack       := 'T' 'A' version:u8 status:u8
 * (u64 = fixed little-endian, bytes = varint length + bytes, see codec.h.) The reply to a CLIENT envelope
 * is the bare wire.h response. stream/seq/low are the transport's ordering fields (net/transport.h).
 *
 * Pure functions, any thread; decoding is zero-copy (tn_env points into the input).
 */
#ifndef TARN_ENVELOPE_H
#define TARN_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "wire.h"

#define TN_ENV_MAGIC0 'T'
#define TN_ENV_MAGIC1 'E'
#define TN_ACK_MAGIC1 'A'
#define TN_ENV_VERSION 1
#define TN_ENV_MAX_TOKEN 256u
enum tn_env_kind { TN_ENV_CLIENT = 1, TN_ENV_PEER = 2 };
enum tn_ack_status { TN_ACK_OK = 0, TN_ACK_UNAUTHORIZED = 1 };
/* Largest envelope header: magic, version, kind, token (varint + bytes), from/stream/seq/low. */
#define TN_ENV_MAX_HEADER (4u + 2u + TN_ENV_MAX_TOKEN + 32u)
/* Largest message a transport or the cluster client accepts (NNG_OPT_RECVMAXSZ); payloads (wire.h
 * requests/responses and Raft messages) are limited to TN_WIRE_MAX_MESSAGE. */
#define TN_TRANSPORT_MAX_MESSAGE (TN_WIRE_MAX_MESSAGE + TN_ENV_MAX_HEADER)
#define TN_ACK_SIZE 4u

typedef struct tn_env {
    uint8_t kind; /* tn_env_kind */
    const uint8_t *token; /* into the input; NULL when empty */
    size_t token_len;
    uint64_t from_id, stream, seq, low; /* PEER only */
    const uint8_t *payload; /* into the input */
    size_t payload_len;
} tn_env;

/* Appends a CLIENT envelope around payload. SUCCESS, NOMEM, TOO_LARGE (token or payload too long). */
int tn_env_encode_client(tn_wr *w, const void *token, size_t token_len, const void *payload, size_t len);
/* Appends a PEER envelope. *low_at receives the offset of the `low` field (patched when the message
 * actually leaves). SUCCESS, NOMEM, TOO_LARGE. */
int tn_env_encode_peer(tn_wr *w, const void *token, size_t token_len, uint64_t from_id, uint64_t stream,
                       uint64_t seq, uint64_t low, const void *payload, size_t len, size_t *low_at);
/* Decodes an envelope (zero-copy: env points into buf). SUCCESS or BAD_REQUEST (bad magic, version,
 * kind, token above TN_ENV_MAX_TOKEN, truncated header, payload above TN_WIRE_MAX_MESSAGE). */
int tn_env_decode(const void *buf, size_t len, tn_env *env);

#endif
