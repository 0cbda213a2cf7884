/* sim.h — deterministic fault simulator for the Raft core (test code: build/tarn-sim).
 *
 * One process, every node in memory, simulated time (microseconds) driven by an event queue, one seeded
 * PRNG. A run is a pure function of (options, seed): same seed, same trace, same verdict.
 * sim_run() returns 0 when every invariant held and the client history is linearizable, 1 on a violation
 * (sim_result.why names the property; the trace tail is printed when opts.print_trace is set).
 */
#ifndef TARN_SIM_H
#define TARN_SIM_H

#include <stdint.h>
#include <stdio.h>

#include "raft.h"

/* xoshiro256** seeded through splitmix64. */
typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;

void sim_rng_seed(sim_rng *g, uint64_t seed);
uint64_t sim_rng_next(sim_rng *g);
/* Uniform in [0, n) (n > 0). */
uint64_t sim_rng_below(sim_rng *g, uint64_t n);
/* 1 with probability per_mille / 1000. */
int sim_rng_chance(sim_rng *g, unsigned per_mille);

typedef struct sim_opts {
    int nodes;                 /* 3, 5 or 7 */
    uint64_t duration_us;      /* simulated time per run */
    uint64_t max_steps;        /* event budget per run (0 = unlimited) */
    int faults;                /* inject random faults (0 in some scenarios) */
    int lease_read;            /* -1: chosen per seed, 0/1: forced */
    tn_raft_mutations mutate;
    const char *scenario;      /* NULL, or a named regression scenario */
    int verbose;               /* print the whole trace */
    int print_trace;           /* print the trace tail on failure */
    FILE *out;
} sim_opts;

typedef struct sim_result {
    int violated;
    char why[512];
    uint64_t steps;
    uint64_t ops;              /* client operations recorded */
    uint64_t commits;          /* highest commit index reached */
    uint64_t elections;        /* distinct leader terms */
    int lincheck;              /* lc_verdict */
    int nodes;                 /* cluster size actually run (scenarios may fix it) */
} sim_result;

int sim_run(const sim_opts *o, uint64_t seed, sim_result *res);

/* Names of the scenarios sim_run knows (NULL-terminated). */
extern const char *const sim_scenarios[];

#endif
