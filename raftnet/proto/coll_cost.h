/* coll_cost.h — the cost model shared by the server's query executor (sm/coll_query.c) and the client's
 * estimate for xBestIndex (proto/coll_plan.c), so that both price a plan the same way. Private to those two. */
#ifndef TARN_COLL_COST_H
#define TARN_COLL_COST_H

#include <math.h>

/* Cost model, in units of "one candidate row fetched and filtered": a row is a random access into a
 * large heap (cache and TLB miss), reading the next entry of a B+tree leaf or a hash bucket is
 * sequential, a seek is a descent, and a hash-set operation on a row pointer is cheap while the set fits
 * in cache (up to COST_SET_FIT entries) and as dear as a row beyond. Measured with
 * tests/bench/bench_coll.c at 1M rows: two ~2000-row candidate sets intersect 7x faster than filtering
 * one of them, two ~100000-row sets 2.5x slower. */
#ifndef COST_ROW /* overridable at compile time, for measuring */
#define COST_ROW 1.0
#endif
#ifndef COST_ENTRY
#define COST_ENTRY 0.05
#endif
#ifndef COST_SEEK
#define COST_SEEK 3.0
#endif
#ifndef COST_SET_CACHED
#define COST_SET_CACHED 0.05
#endif
#ifndef COST_SET
#define COST_SET 1.0
#endif
#ifndef COST_SET_FIT
#define COST_SET_FIT 32768.0
#endif
#ifndef COST_SORT
#define COST_SORT 0.08 /* per element per log2 */
#endif

/* Cost of sorting n candidate rows. */
static inline double tn_coll_sort_cost(double n) { return n > 1 ? n * log2(n) * COST_SORT : 0; }

#endif
