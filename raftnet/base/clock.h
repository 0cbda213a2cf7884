/* clock.h — the process's clocks and its source of randomness, in one place.
 *
 * Monotonic time is for timeouts, deadlines and measuring; wall time only for what is recorded (a
 * leader's command timestamp, log lines). tn_random_u64 is for identifiers and seeds that must differ
 * between processes (client ids, stream numbers, tree hash seeds), not for cryptography; it never fails
 * (without getrandom it mixes the clock, the pid and an address) and never returns 0.
 *
 * Thread: any; no state.
 */
#ifndef TARN_CLOCK_H
#define TARN_CLOCK_H

#include <stdint.h>

int64_t tn_mono_ms(void);  /* CLOCK_MONOTONIC in milliseconds */
int64_t tn_mono_ns(void);  /* CLOCK_MONOTONIC in nanoseconds */
int64_t tn_wall_ms(void);  /* CLOCK_REALTIME in milliseconds since the epoch */
uint64_t tn_random_u64(void);

#endif
