/* wire.h — Tarn's versioned binary request/response protocol (client <-> node), see docs/protocol.md.
 *
 * Every message starts with a 4-byte header: 'T' 'N' <version> <kind>. Version is TN_WIRE_VERSION; a
 * message of another version is rejected with BAD_REQUEST (the response still says which version the node
 * speaks). Integers are unsigned LEB128 varints unless stated; byte strings are varint length + bytes.
 *
 *   request  := hdr(kind=REQ) flags:u8 req_id client_id seq read_mode:u8 n_ops op*
 *   op       := opcode:u8 fields-of-opcode (see the table in wire.c and docs/protocol.md)
 *   response := hdr(kind=RESP) req_id code:varint revision leader_hint:bytes message:bytes n_results result*
 *   result   := code:varint n_entries:u32 entry* blob:bytes   (blob: opaque payload of COLL ops, else empty)
 *   entry    := key:bytes flags:u8 [value:bytes] create_rev update_rev create_time:svarint
 *               update_time:svarint [ttl_ms:svarint owner]        (value if flags&HAS_VALUE, ttl if TEMP)
 *
 * A command (what the Raft log carries and the state machine applies) is a request plus what the leader
 * adds: cmd := 'T' 'C' <version> <kind=CMD> time_ms:svarint owner:varint request-bytes. The same request bytes the
 * client sent are embedded unchanged.
 *
 * Decoding is zero-copy: tn_req / tn_resp fields point INTO the input buffer, which must outlive them. The
 * decoders allocate only the op / result / entry arrays (malloc), released by tn_req_clear / tn_resp_clear.
 * They never read outside the input, reject trailing bytes, unknown opcodes, counts above the limits below
 * and any field out of range, and return BAD_REQUEST (or NOMEM). On failure nothing needs freeing.
 *
 * Thread: any; no shared state.
 */
#ifndef TARN_WIRE_H
#define TARN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "tn_code.h"

#define TN_WIRE_VERSION 1
#define TN_WIRE_MAX_MESSAGE (64u * 1024u * 1024u) /* whole message */
#define TN_WIRE_MAX_OPS 100000u                    /* ops per request */
#define TN_WIRE_MAX_ENTRIES 10000000u              /* entries per result */
#define TN_WIRE_MAX_KEY (64u * 1024u)              /* hard cap; the tree enforces its own, smaller limit */
#define TN_WIRE_MAX_VALUE (16u * 1024u * 1024u)    /* hard cap; the tree enforces its own limit */

enum tn_wire_kind { TN_KIND_REQ = 1, TN_KIND_RESP = 2, TN_KIND_CMD = 3 };

/* Request flags. */
#define TN_REQF_ATOMIC 0x01 /* all ops succeed or none is applied (transactions); else each op stands alone */

/* Read modes. */
enum tn_read_mode { TN_READ_LINEARIZABLE = 0, TN_READ_STALE = 1 };

/* Opcodes. Reads are < 32; writes >= 32 (a request with any write op is a write request). */
enum tn_opcode {
    TN_OP_KV_GET = 1,     /* key */
    TN_OP_KV_LIST = 2,    /* key (the directory), after:bytes (empty = from start), limit */
    TN_OP_KV_SCAN = 3,    /* whole tree in pre-order: after:bytes (empty = from start), limit */
    TN_OP_COLL_READ = 4,  /* key = collection name, value = query payload (encoded by coll_codec.h) */
    TN_OP_STATUS = 5,     /* no fields; answered by the node itself: result blob = status.h payload */
    TN_OP_KV_PUT = 32,    /* key value cond */
    TN_OP_KV_MKDIR = 33,  /* key cond */
    TN_OP_KV_REMOVE = 34, /* key cond */
    TN_OP_KV_CAS = 35,    /* key has_expect:u8 [expect] has_value:u8 [value] */
    TN_OP_KV_PUT_TEMP = 36,   /* key value ttl_ms:svarint cond */
    TN_OP_KV_MKDIR_TEMP = 37, /* key ttl_ms:svarint cond */
    TN_OP_KV_UPDATE_TTL = 38, /* key ttl_ms:svarint cond */
    TN_OP_KV_EXPIRE = 39,     /* key expect_rev */
    TN_OP_COLL_WRITE = 40,    /* key = collection name, value = write payload (encoded by coll_codec.h) */
    TN_OP_KV_CHECK = 41,      /* key cond: validates only (a transaction's read set): cond ABSENT = key must
                                 not exist, REV = node must exist at that update_rev; changes nothing. Valid
                                 in atomic requests (raftnet/sm/atomic.h); a write opcode so it is ordered in
                                 the log with the writes it guards */
    TN_OP_ADMIN = 45,         /* value = admin payload (status.h: membership, leader transfer, snapshot);
                                 handled by the node, never applied by the state machine */
};

/* Condition attached to a write op (cond := kind:u8 [rev]); checked atomically by the state machine. */
enum tn_cond_kind {
    TN_COND_NONE = 0,   /* unconditional */
    TN_COND_ABSENT = 1, /* key must not exist (SQL INSERT): else VALUE_EXISTS / DIR_EXISTS */
    TN_COND_REV = 2,    /* node must exist with update_rev == rev: else REVISION_MISMATCH / NOT_FOUND */
};

static inline int tn_op_is_write(int opcode) { return opcode >= 32; }

typedef struct tn_op {
    uint8_t opcode;
    uint8_t cond;     /* tn_cond_kind */
    uint64_t cond_rev;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value; /* PUT/PUT_TEMP/CAS new value; NULL when absent */
    size_t value_len;
    const uint8_t *expect; /* CAS expected value; NULL = expect absent */
    size_t expect_len;
    const uint8_t *after; /* LIST/SCAN: resume strictly after this full key; NULL = from start */
    size_t after_len;
    uint64_t limit;     /* LIST/SCAN: 0 = no limit */
    int64_t ttl_ms;     /* *_TEMP, UPDATE_TTL */
    uint64_t expect_rev; /* EXPIRE */
} tn_op;

typedef struct tn_req {
    uint8_t flags;     /* TN_REQF_* */
    uint8_t read_mode; /* tn_read_mode */
    uint64_t req_id;   /* echoed in the response */
    uint64_t client_id; /* session; 0 = none */
    uint64_t seq;       /* per-session write sequence for exactly-once; 0 = none */
    size_t n_ops;
    tn_op *ops; /* malloc'd by the decoder, or caller-owned when encoding */
} tn_req;

typedef struct tn_entry {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value; /* NULL for a directory or when the value was not asked for */
    size_t value_len;
    int is_dir;
    uint64_t create_rev, update_rev;
    int64_t create_time, update_time;
    int64_t ttl_ms; /* 0 unless temp */
    uint64_t owner; /* 0 unless temp */
} tn_entry;

typedef struct tn_result {
    int code;
    size_t n_entries;
    tn_entry *entries;
    const uint8_t *blob; /* opaque result payload of COLL ops; NULL/0 otherwise */
    size_t blob_len;
} tn_result;

typedef struct tn_resp {
    uint64_t req_id;
    int code;           /* overall: SUCCESS, or why the request as a whole failed (NOT_LEADER, BAD_REQUEST…) */
    uint64_t revision;  /* the store revision the answer reflects (reads) or the commit index (writes) */
    const uint8_t *leader_hint; /* URL of the leader when code == NOT_LEADER; may be empty */
    size_t leader_hint_len;
    const uint8_t *message; /* human-readable detail; may be empty */
    size_t message_len;
    size_t n_results;
    tn_result *results;
} tn_resp;

typedef struct tn_cmd {
    int64_t time_ms;
    uint64_t owner;
    const uint8_t *req; /* embedded request bytes */
    size_t req_len;
} tn_cmd;

/* ---- requests ---- */
/* Appends the encoded request to w. Returns SUCCESS, NOMEM, TOO_LARGE (above TN_WIRE_MAX_MESSAGE), or
 * BAD_REQUEST for a malformed structure (unknown opcode, a field the opcode cannot carry, NULL with a
 * non-zero length). */
int tn_req_encode(const tn_req *req, tn_wr *w);
/* Decodes buf into *req. SUCCESS, BAD_REQUEST or NOMEM. On success release with tn_req_clear. */
int tn_req_decode(const void *buf, size_t len, tn_req *req);
void tn_req_clear(tn_req *req);
/* 1 if any op of the request is a write. */
int tn_req_is_write(const tn_req *req);

/* ---- responses: built incrementally by the server ----
 * Counts are written as fixed u32 placeholders and patched, so results and entries can be streamed. */
typedef struct tn_resp_builder {
    tn_wr *w;
    size_t results_at, entries_at; /* offsets of the u32 count placeholders */
    uint32_t n_results, n_entries;
    int in_result; /* 1 inside a result; a negative value is a sticky error code returned by tn_resp_finish */
    const uint8_t *blob;
    size_t blob_len;
} tn_resp_builder;

/* Starts a response in w (appending). leader_hint/message may be NULL. */
void tn_resp_begin(tn_resp_builder *b, tn_wr *w, uint64_t req_id, int code, uint64_t revision,
                   const char *leader_hint, const char *message);
/* Starts one result; its entries follow with tn_resp_entry. */
void tn_resp_result_begin(tn_resp_builder *b, int code);
void tn_resp_entry(tn_resp_builder *b, const tn_entry *e);
/* Sets the current result's blob (at most one per result; written when the result is closed). The bytes
 * are copied into w when the result is closed, so they must stay valid until the next result_begin/finish. */
void tn_resp_blob(tn_resp_builder *b, const void *blob, size_t len);
/* Patches the counts. Returns SUCCESS, NOMEM (writer ran out of memory) or TOO_LARGE. */
int tn_resp_finish(tn_resp_builder *b);
/* Builds a complete response with no results (errors). */
int tn_resp_error(tn_wr *w, uint64_t req_id, int code, const char *leader_hint, const char *message);

/* Copies a complete response into out with its req_id and leader_hint replaced (leader_hint NULL = empty):
 * a node that answers a request it forwarded names the leader, so the client can go there next time.
 * SUCCESS, NOMEM, or BAD_REQUEST when the header cannot be read (nothing appended then). */
int tn_resp_rewrite(const void *resp, size_t len, uint64_t req_id, const char *leader_hint, tn_wr *out);

/* The fixed head of a request or response, read without decoding the rest: for answering a request that
 * cannot be handled (echoing its req_id), matching a command to its session, routing a call by read mode,
 * following a response's leader hint. The magic and kind are checked, the version is not (an answer to a
 * message of another version still names its req_id). SUCCESS, or BAD_REQUEST (truncated, not a
 * request / response) with *h zeroed. leader_hint points into buf. */
typedef struct tn_req_head {
    uint8_t flags;
    uint64_t req_id, client_id, seq;
    uint8_t read_mode;
} tn_req_head;
int tn_req_peek(const void *buf, size_t len, tn_req_head *h);
/* The req_id of a request, 0 if its head cannot be read: for an error answer that must echo it. */
uint64_t tn_req_peek_id(const void *buf, size_t len);

typedef struct tn_resp_head {
    uint64_t req_id;
    int code;
    uint64_t revision;
    const uint8_t *leader_hint;
    size_t leader_hint_len;
} tn_resp_head;
int tn_resp_peek(const void *buf, size_t len, tn_resp_head *h);

int tn_resp_decode(const void *buf, size_t len, tn_resp *resp);
void tn_resp_clear(tn_resp *resp);

/* ---- commands ---- */
/* SUCCESS, NOMEM, TOO_LARGE, or BAD_REQUEST (empty request). */
int tn_cmd_encode(int64_t time_ms, uint64_t owner, const void *req, size_t req_len, tn_wr *w);
/* Decodes the command header; cmd->req points into buf. The embedded request is decoded separately. */
int tn_cmd_decode(const void *buf, size_t len, tn_cmd *cmd);

#endif
