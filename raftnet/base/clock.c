/* clock.c — clocks and randomness (see clock.h). */
#include "clock.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t tn_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t tn_mono_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000; }
int64_t tn_wall_ms(void) { return clock_ns(CLOCK_REALTIME) / 1000000; }

/* splitmix64's finaliser: spreads the fallback's few varying bits over the whole word. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t tn_random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = mix((uint64_t)clock_ns(CLOCK_MONOTONIC) ^ (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)&v);
    return v ? v : 0x9e3779b97f4a7c15ull;
}
