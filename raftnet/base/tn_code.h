/* tn_code.h — result codes shared by the tree, the collections, the wire protocol and the client.
 *
 * Codes 0..63 are DtKV's, with DtKV's names (they travel on the wire; never renumber one).
 * Codes 64.. are Tarn's own: collections, transactions, cluster and transport conditions.
 * tn_code_name() returns the stable upper-case name used in SQL error messages ("HAS_CHILDREN").
 */
#ifndef TARN_TN_CODE_H
#define TARN_TN_CODE_H

#include <stdarg.h>
#include <stddef.h>

/* Marks a printf-like function, so its callers' formats are checked and its own vsnprintf is not a
 * "non-literal format" (-Wformat=2). fmt_pos: the format's parameter position; args_pos: the first
 * variadic one, 0 for a va_list. */
#define TN_PRINTF(fmt_pos, args_pos) __attribute__((format(printf, fmt_pos, args_pos)))

#define TN_CODES(X)                                                                                 \
    X(SUCCESS, 0)                /* done */                                                         \
    X(NOT_FOUND, 1)              /* no node / row with that key */                                  \
    X(SUCCESS_OVERWRITE, 2)      /* put replaced an existing value (still a success) */            \
    X(DIR_EXISTS, 3)             /* a directory is where a value was to go (or mkdir of a dir) */   \
    X(VALUE_EXISTS, 4)           /* a value is where a directory was to go, or create of a value */ \
    X(PARENT_NOT_DIR, 5)         /* an ancestor of the key is a value */                            \
    X(INVALID_KEY, 6)            /* empty segment, leading/trailing '.', root where not allowed */  \
    X(INVALID_VALUE, 7)          /* empty value, or a value where none may be given */              \
    X(PARENT_DIR_NOT_EXISTS, 8)  /* the parent directory does not exist */                          \
    X(HAS_CHILDREN, 9)           /* remove of a non-empty directory */                              \
    X(KEY_TOO_LONG, 10)          /* key longer than the limit (8 KiB) */                            \
    X(VALUE_TOO_LONG, 11)        /* value longer than the limit (1 MiB by default) */              \
    X(CAS_MISMATCH, 13)          /* compare-and-set expectation did not hold */                     \
    X(CLIENT_REQ_ERROR, 14)      /* malformed request */                                            \
    X(NOT_OWNER, 15)             /* temp node owned by another session */                           \
    X(NOT_TEMP_NODE, 16)         /* update-TTL / expire of a node that is not temporary */          \
    X(IS_TEMP_NODE, 17)          /* plain put/mkdir over an existing temp node */                   \
    X(INVALID_TTL, 18)           /* TTL <= 0 or above the limit */                                  \
    X(NOT_EXPIRED, 19)           /* expiry command for a node whose TTL has not run out */          \
    X(TTL_INDEX_MISMATCH, 20)    /* expiry command for a node re-created since it was scheduled */  \
    X(UNDER_TEMP_DIR, 21)        /* a plain (non-temp) node may not be created in a temp directory */\
    X(NO_SUCH_COLLECTION, 64)    /* collection not declared */                                      \
    X(COLLECTION_EXISTS, 65)     /* declared with a different schema */                             \
    X(ROW_EXISTS, 66)            /* insert of an existing primary key */                            \
    X(REVISION_MISMATCH, 67)     /* row / node changed since the revision the client read */       \
    X(TXN_CONFLICT, 68)          /* transaction validation failed */                                \
    X(TOO_LARGE, 69)             /* request or entry above the size limit */                        \
    X(NOT_LEADER, 70)            /* this member is not the leader (hint may follow) */             \
    X(TIMEOUT, 71)               /* no answer within the deadline */                                \
    X(UNAVAILABLE, 72)           /* no member reachable / no quorum */                              \
    X(BAD_REQUEST, 73)           /* message could not be decoded, wrong version or type */          \
    X(NOMEM, 74)                 /* allocation failed */                                            \
    X(IO_ERROR, 75)              /* disk error */                                                   \
    X(UNAUTHORIZED, 76)          /* cluster token missing or wrong */                               \
    X(SESSION_EXPIRED, 77)       /* the client session is no longer known */                        \
    X(INTERNAL, 78)              /* bug: an invariant did not hold */

typedef enum tn_code {
#define TN_CODE_ENUM(name, num) TN_##name = num,
    TN_CODES(TN_CODE_ENUM)
#undef TN_CODE_ENUM
} tn_code;

/* Stable name of a code ("NOT_FOUND"); "UNKNOWN" for a number that is not a code. Never NULL. */
const char *tn_code_name(int code);

/* Formats a one-line reason into buf[cap] (always NUL-terminated, truncated if longer). A NULL buf or a
 * cap of 0 is a no-op, so callers pass their caller's optional error buffer straight through. */
void tn_errf(char *buf, size_t cap, const char *fmt, ...) TN_PRINTF(3, 4);
void tn_verrf(char *buf, size_t cap, const char *fmt, va_list ap) TN_PRINTF(3, 0);

/* 1 if `code` is a success (SUCCESS or SUCCESS_OVERWRITE). */
static inline int tn_code_ok(int code) { return code == TN_SUCCESS || code == TN_SUCCESS_OVERWRITE; }

#endif
