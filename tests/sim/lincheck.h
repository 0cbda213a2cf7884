/* lincheck.h — linearizability checker for per-key register / CAS histories (test code, tests/sim/).
 *
 * Each key is an independent register holding an int64 (the initial value is given; use 0 for "absent").
 * The history is the list of client operations the simulator recorded; the checker decides whether there is
 * a total order of them, consistent with real time (an op that completed before another was invoked comes
 * first) and with the register's sequential semantics, in which every op takes effect at one instant
 * between its invoke and its completion.
 *
 * Outcomes:
 *   LC_OK       the op completed and its result is known (read: `result` holds the value read;
 *               cas: `result` is 1 if it swapped, 0 if the expectation failed; write: ignored)
 *   LC_FAIL     the op definitely did not take effect (e.g. rejected before it was proposed)
 *   LC_UNKNOWN  the outcome is unknown (timeout): it may have taken effect at any instant after invoke, or
 *               never; `complete` is ignored.
 */
#ifndef TARN_LINCHECK_H
#define TARN_LINCHECK_H
#include <stddef.h>
#include <stdint.h>

typedef enum lc_kind { LC_WRITE = 0, LC_READ = 1, LC_CAS = 2 } lc_kind;
typedef enum lc_outcome { LC_OK = 0, LC_FAIL = 1, LC_UNKNOWN = 2 } lc_outcome;

typedef struct lc_op {
    int client;        /* who issued it (ops of one client never overlap in time) */
    uint64_t key;
    lc_kind kind;
    int64_t arg;       /* write: value written; cas: expected value */
    int64_t arg2;      /* cas: new value */
    int64_t result;    /* see outcomes */
    lc_outcome outcome;
    uint64_t invoke;   /* simulated time the client sent it */
    uint64_t complete; /* simulated time the client saw the answer (> invoke) */
} lc_op;

typedef enum lc_verdict { LC_LINEARIZABLE = 1, LC_VIOLATION = 0, LC_GAVE_UP = -1 } lc_verdict;

/* Checks the whole history (ops of all keys, any order). initial: each key's value before any op.
 * max_steps bounds the search per key (0 = a default of 10 million); when exceeded, LC_GAVE_UP.
 * On LC_VIOLATION, why (if not NULL) receives a one-line explanation naming the key and the ops involved.
 * Returns the verdict; never allocates more than O(ops) memory besides the search's memo; -1 (LC_GAVE_UP)
 * also on allocation failure. Thread: any; no shared state. */
lc_verdict lc_check(const lc_op *ops, size_t n, int64_t initial, uint64_t max_steps, char *why,
                    size_t why_len);
#endif
