/* bench_raft.c — CPU cost of the Raft core per committed entry: a 3-node cluster in one process, the
 * leader proposes batches, messages are handed over directly (or, with --codec, encoded and decoded),
 * writes count as durable at once; the cluster is the Raft test driver's (tests/raft/driver.h). Prints
 * committed entries per CPU second.
 *
 *   build/bench_raft [--entries N] [--batch B] [--size BYTES] [--codec]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"
#include "raft.h"
#include "tn_code.h"

#define NODES 3

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    uint64_t entries = 2000000;
    int batch = 64;
    size_t size = 16;
    /* the Raft test driver in step mode: messages handed over by pointer (or through the codec), writes
     * durable as soon as a Ready is handled, no checks or trace (they would cost more than the core) */
    tn_rt_opts o;
    memset(&o, 0, sizeof o);
    o.n = NODES;
    o.disk = TN_RT_DISK_NONE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--entries") && i + 1 < argc) entries = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--codec")) o.codec = 1;
        else {
            fprintf(stderr, "usage: bench_raft [--entries N] [--batch B] [--size BYTES] [--codec]\n");
            return 2;
        }
    }
    if (batch < 1) batch = 1;
    o.cfg.election_ticks = 10;
    o.cfg.heartbeat_ticks = 2;
    o.cfg.max_inflight_msgs = 8;
    o.cfg.max_entries_per_msg = 256;
    o.cfg.max_bytes_per_msg = 1 << 20;
    o.cfg.pre_vote = 1;
    o.cfg.check_quorum = 1;
    tn_rt *c = tn_rt_new(&o);
    if (!c || tn_rt_start(c) != 0) return 1;
    if (tn_rt_elect(c, 1) != 0) {
        fprintf(stderr, "bench_raft: no leader\n");
        return 1;
    }
    tn_raft *leader = tn_rt_raft(c, 1);
    uint8_t *payload = calloc(1, size ? size : 1);
    uint64_t start = tn_raft_commit(leader);
    uint64_t proposed = 0;
    double t0 = cpu_s();
    while (proposed < entries) {
        for (int k = 0; k < batch; k++) {
            memcpy(payload, &proposed, size < 8 ? size : 8);
            if (tn_raft_propose(leader, payload, size, NULL, NULL) != TN_SUCCESS) return 1;
            proposed++;
        }
        if (tn_rt_settle(c) != 0) return 1;
        /* keep the in-memory log short, as a daemon would by snapshotting */
        if ((proposed & 0xffff) < (uint64_t)batch)
            for (int i = 1; i <= NODES; i++) tn_rt_compact(c, i, "s", 1);
    }
    double t = cpu_s() - t0;
    uint64_t committed = tn_raft_commit(leader) - start;
    for (int i = 1; i <= NODES; i++)
        if (tn_rt_stats_of(c, i)->applied != tn_raft_commit(leader)) {
            fprintf(stderr, "bench_raft: node %d applied %" PRIu64 " of %" PRIu64 "\n", i,
                    tn_rt_stats_of(c, i)->applied, tn_raft_commit(leader));
            return 1;
        }
    printf("bench_raft: 3 nodes, batch %d, %zu-byte entries%s: %" PRIu64 " entries committed and applied "
           "on all nodes in %.3f CPU s = %.2f M entries/s (%" PRIu64 " messages, %.0f ns per entry)\n",
           batch, size, o.codec ? ", messages encoded+decoded" : "", committed, t, (double)committed / t / 1e6,
           tn_rt_delivered(c), t * 1e9 / (double)committed);
    free(payload);
    tn_rt_free(c);
    return 0;
}
