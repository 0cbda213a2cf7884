/* sim_main.c — command line of tarn-sim: seeds, configurations, mutations, scenarios. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tarn-sim [options]\n"
            "  --seed S            run one seed (replays exactly)\n"
            "  --seeds A-B         run seeds A..B (each with every --nodes size unless --nodes is given)\n"
            "  --nodes 3|5|7       cluster size (default: cycle 3, 5, 7 by seed)\n"
            "  --time MS           simulated milliseconds per run (default 3000)\n"
            "  --steps N           event budget per run (default 200000, 0 = unlimited)\n"
            "  --quick             the test-suite budget: random seeds 1-10000 (3000 ms each), then every\n"
            "                      scenario with seeds 1-100\n"
            "  --soak              the long run: random seeds 1-50000 (6000 ms each), then every scenario\n"
            "                      with seeds 1-2000\n"
            "  --scenario-seeds N  with --quick/--soak/--expect-violation: scenario seeds 1-N\n"
            "                      (--seeds/--time given with --quick/--soak override their defaults)\n"
            "  --lease 0|1         force lease reads off/on (default: chosen per seed)\n"
            "  --no-faults         no random faults (clients only)\n"
            "  --mutate NAME       break one rule in the core: commit_old_term, skip_vote_persist,\n"
            "                      no_log_check_vote, read_without_quorum, ack_before_persist, count_unpersisted\n"
            "  --expect-violation  exit 0 only if some run reports a violation (for --mutate); without\n"
            "                      --scenario it tries the random seeds, then every scenario; stops at the first\n"
            "  --scenario NAME     named regression scenario (or 'all'):\n");
    for (int i = 0; tn_sim_scenarios[i]; i++) fprintf(f, "                        %s\n", tn_sim_scenarios[i]);
    fprintf(f, "  -v                  print the whole trace\n"
               "  -q                  no progress on stderr\n");
}

static int set_mutation(tn_raft_mutations *m, const char *name)
{
    if (!strcmp(name, "commit_old_term")) m->commit_old_term = 1;
    else if (!strcmp(name, "skip_vote_persist")) m->skip_vote_persist = 1;
    else if (!strcmp(name, "no_log_check_vote")) m->no_log_check_vote = 1;
    else if (!strcmp(name, "read_without_quorum")) m->read_without_quorum = 1;
    else if (!strcmp(name, "ack_before_persist")) m->ack_before_persist = 1;
    else if (!strcmp(name, "count_unpersisted")) m->count_unpersisted = 1;
    else return -1;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    sim_opts o;
    memset(&o, 0, sizeof o);
    o.duration_us = 3000000;
    o.max_steps = 200000; /* a healthy 3 s run takes ~5000; a livelocked (mutated) core stops here */
    o.faults = 1;
    o.lease_read = -1;
    o.print_trace = 1;
    o.out = stdout;
    uint64_t a = 1, b = 1;
    int seeds_given = 0;
    int fixed_nodes = 0, expect = 0, quiet = 0, all_scen = 0, with_scen = 0;
    uint64_t scen_seeds = 0;
    int time_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--seed") && val) {
            a = b = strtoull(val, NULL, 10);
            seeds_given = 1;
            i++;
        } else if (!strcmp(arg, "--seeds") && val) {
            if (sscanf(val, "%" SCNu64 "-%" SCNu64, &a, &b) != 2 || b < a) {
                fprintf(stderr, "tarn-sim: --seeds wants A-B with A <= B\n");
                return 2;
            }
            seeds_given = 1;
            i++;
        } else if (!strcmp(arg, "--nodes") && val) {
            fixed_nodes = atoi(val);
            if (fixed_nodes != 3 && fixed_nodes != 5 && fixed_nodes != 7) {
                fprintf(stderr, "tarn-sim: --nodes must be 3, 5 or 7\n");
                return 2;
            }
            i++;
        } else if (!strcmp(arg, "--time") && val) {
            o.duration_us = strtoull(val, NULL, 10) * 1000;
            time_given = 1;
            i++;
        } else if (!strcmp(arg, "--steps") && val) {
            o.max_steps = strtoull(val, NULL, 10);
            i++;
        } else if (!strcmp(arg, "--quick")) {
            with_scen = 1;
        } else if (!strcmp(arg, "--soak")) {
            with_scen = 2;
        } else if (!strcmp(arg, "--scenario-seeds") && val) {
            scen_seeds = strtoull(val, NULL, 10);
            i++;
        } else if (!strcmp(arg, "--lease") && val) {
            o.lease_read = atoi(val) ? 1 : 0;
            i++;
        } else if (!strcmp(arg, "--no-faults")) {
            o.faults = 0;
        } else if (!strcmp(arg, "--mutate") && val) {
            if (set_mutation(&o.mutate, val) != 0) {
                fprintf(stderr, "tarn-sim: unknown mutation '%s'\n", val);
                return 2;
            }
            i++;
        } else if (!strcmp(arg, "--expect-violation")) {
            expect = 1;
        } else if (!strcmp(arg, "--scenario") && val) {
            if (!strcmp(val, "all")) {
                all_scen = 1;
            } else {
                int ok = 0;
                for (int k = 0; tn_sim_scenarios[k]; k++)
                    if (!strcmp(tn_sim_scenarios[k], val)) ok = 1;
                if (!ok) {
                    fprintf(stderr, "tarn-sim: unknown scenario '%s'\n", val);
                    usage(stderr);
                    return 2;
                }
                o.scenario = val;
            }
            i++;
        } else if (!strcmp(arg, "-v")) {
            o.verbose = 1;
        } else if (!strcmp(arg, "-q")) {
            quiet = 1;
        } else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tarn-sim: bad argument '%s'\n", arg);
            usage(stderr);
            return 2;
        }
    }
    /* --quick / --soak fill in whatever was not given explicitly */
    if (with_scen && !seeds_given) {
        a = 1;
        b = with_scen == 2 ? 50000 : 10000;
    }
    if (with_scen == 2 && !time_given) o.duration_us = 6000000;
    if (!scen_seeds) scen_seeds = with_scen == 2 ? 2000 : 100;
    if (expect && !seeds_given && !with_scen) {
        a = 1;
        b = 2000;
    }
    static const int sizes[3] = {3, 5, 7};
    uint64_t runs = 0, steps = 0, ops = 0, violations = 0, gave_up = 0;
    uint64_t first_bad = 0;
    double t0 = now_s(), last_progress = t0;
    /* the plan: a list of (scenario or NULL for random faults, first seed, last seed) */
    struct leg { const char *scenario; uint64_t a, b; } plan[16];
    int n_plan = 0;
    if (all_scen) {
        for (int k = 0; tn_sim_scenarios[k]; k++) plan[n_plan++] = (struct leg){tn_sim_scenarios[k], a, b};
    } else {
        plan[n_plan++] = (struct leg){o.scenario, a, b};
        if (!o.scenario && (with_scen || expect))
            for (int k = 0; tn_sim_scenarios[k]; k++) plan[n_plan++] = (struct leg){tn_sim_scenarios[k], 1, scen_seeds};
    }
    const char *bad_scen = NULL;
    for (int leg = 0; leg < n_plan && !(expect && violations); leg++) {
        o.scenario = plan[leg].scenario;
        for (uint64_t seed = plan[leg].a; seed <= plan[leg].b; seed++) {
            o.nodes = fixed_nodes ? fixed_nodes : sizes[seed % 3];
            sim_result res;
            tn_sim_run(&o, seed, &res);
            runs++;
            steps += res.steps;
            ops += res.ops;
            if (res.lincheck == -1) gave_up++;
            if (res.violated) {
                violations++;
                if (!first_bad) { first_bad = seed; bad_scen = o.scenario; }
                printf("FAIL seed %" PRIu64 " nodes %d%s%s%s: %s\n", seed, res.nodes,
                       o.scenario ? " scenario " : "", o.scenario ? o.scenario : "",
                       expect ? " (expected)" : "", res.why);
                fflush(stdout);
                if (expect) break; /* one is enough to show the mutation is caught */
            }
            double t = now_s();
            if (!quiet && t - last_progress > 5.0) {
                fprintf(stderr, "tarn-sim: %" PRIu64 " runs, %s seed %" PRIu64 ", %" PRIu64 " violations, %.0f s\n",
                        runs, o.scenario ? o.scenario : "random", seed, violations, t - t0);
                last_progress = t;
            }
        }
    }
    double el = now_s() - t0;
    printf("%" PRIu64 " runs, %" PRIu64 " steps, %" PRIu64 " client ops, %" PRIu64 " violations%s%s, %.1f s\n",
           runs, steps, ops, violations, gave_up ? ", lincheck gave up on " : "",
           gave_up ? "some histories" : "", el);
    if (gave_up) printf("(lincheck gave up on %" PRIu64 " histories)\n", gave_up);
    if (expect) {
        if (violations) {
            printf("mutation caught at seed %" PRIu64 "%s%s\n", first_bad, bad_scen ? " of scenario " : "",
                   bad_scen ? bad_scen : "");
            return 0;
        }
        printf("mutation NOT caught\n");
        return 1;
    }
    return violations ? 1 : 0;
}
