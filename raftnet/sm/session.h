/* session.h — the exactly-once session table of the state machine.
 *
 * Every write request carries (client_id, seq). Per client the table keeps the highest seq applied, the
 * encoded response it produced and the COMMAND time of its last write. A write whose seq equals the last
 * one is a retry: the state machine must not apply it again and answers with the stored response. A seq
 * below the last one is a stale duplicate (the client has moved on): it is refused, not applied.
 *
 * Expiry is deterministic: it depends only on command times (the leader's clock, carried in each entry),
 * never on a local clock. tn_sessions_touch() sweeps at most once per TN_SESSION_SWEEP_MS of command time
 * and drops sessions idle for longer than the table's idle limit; the sweep point is part of the image, so
 * every replica (also one restored from a snapshot) expires the same sessions at the same entry.
 *
 * Image: "SE" version:u8(=1) idle_ms:varint next_sweep:svarint n:varint
 *        (client:varint seq:varint time:svarint resp:bytes)* in increasing client order (same state =>
 *        same bytes).
 *
 * Ownership: the table owns copies of the responses. Thread: none inside; one thread at a time.
 * Results: tn_code values.
 */
#ifndef TARN_SESSION_H
#define TARN_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define TN_SESSION_IDLE_MS (10 * 60 * 1000) /* default idle limit: 10 minutes of command time */
#define TN_SESSION_SWEEP_MS (60 * 1000)
#define TN_SESSION_MAX_RESP (16u << 20)     /* larger responses are not cached (a retry gets an error) */

typedef struct tn_sessions tn_sessions;

enum tn_session_verdict {
    TN_SESSION_NEW = 0,   /* seq above the last: apply it */
    TN_SESSION_RETRY = 1, /* seq == last: answer with the stored response, apply nothing */
    TN_SESSION_STALE = 2  /* seq below the last (or response not cached): refuse, apply nothing */
};

/* idle_ms <= 0 selects TN_SESSION_IDLE_MS. NULL on allocation failure. */
tn_sessions *tn_sessions_new(int64_t idle_ms);
void tn_sessions_free(tn_sessions *s);

/* Classifies (client, seq). On TN_SESSION_RETRY *resp and *len point to the stored response (owned by the
 * table, valid until the next mutating call). */
int tn_sessions_check(const tn_sessions *s, uint64_t client, uint64_t seq, const uint8_t **resp, size_t *len);

/* Records that (client, seq) was applied at command time time_ms with response resp (copied).
 * SUCCESS or NOMEM (the table is unchanged). */
int tn_sessions_record(tn_sessions *s, uint64_t client, uint64_t seq, int64_t time_ms, const void *resp,
                       size_t len);

/* Called with every applied command's time: sweeps idle sessions when a sweep is due. Returns the number
 * of sessions dropped. */
size_t tn_sessions_touch(tn_sessions *s, int64_t time_ms);

size_t tn_sessions_count(const tn_sessions *s);

/* Appends the image (see above). SUCCESS or NOMEM. */
int tn_sessions_serialize(const tn_sessions *s, tn_wr *w);
/* Replaces the content with an image; on failure (CLIENT_REQ_ERROR, NOMEM) s is unchanged. */
int tn_sessions_deserialize(tn_sessions *s, const void *img, size_t len);

#endif
