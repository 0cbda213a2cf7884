/* sim.h — deterministic fault simulator for the Raft core (test code: build/tarn-sim).
 *
 * One process, every node in memory, simulated time (microseconds) driven by an event queue, one seeded
 * PRNG: the Raft test driver (tests/raft/driver.h) in timed mode. A run is a pure function of (options,
 * seed): same seed, same trace, same verdict.
 * tn_sim_run() returns 0 when every invariant held and the client history is linearizable, 1 on a violation
 * (sim_result.why names the property; the trace tail is printed when opts.print_trace is set).
 */
#ifndef TARN_SIM_H
#define TARN_SIM_H

#include <stdint.h>
#include <stdio.h>

#include "raft.h"

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

int tn_sim_run(const sim_opts *o, uint64_t seed, sim_result *res);

/* Names of the scenarios tn_sim_run knows (NULL-terminated). */
extern const char *const tn_sim_scenarios[];

#endif
