/* bench_raft.c — CPU cost of the Raft core per committed entry: a 3-node cluster in one process, the
 * leader proposes batches, messages are handed over directly (or, with --codec, encoded and decoded),
 * writes count as durable at once. Prints committed entries per CPU second.
 *
 *   build/bench_raft [--entries N] [--batch B] [--size BYTES] [--codec]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "raft.h"
#include "tn_code.h"

#define NODES 3

typedef struct bench {
    tn_raft *r[NODES + 1];
    tn_raft_msg **q;
    size_t nq, cap;
    int codec;
    tn_wr wr;
    uint64_t applied[NODES + 1];
    uint64_t msgs;
} bench;

static void push(bench *b, tn_raft_msg *m)
{
    if (b->nq == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->q = realloc(b->q, b->cap * sizeof *b->q);
        if (!b->q) exit(1);
    }
    b->q[b->nq++] = m;
}

static void drain(bench *b, int i)
{
    tn_raft *r = b->r[i];
    while (tn_raft_has_ready(r)) {
        tn_raft_ready rd;
        tn_raft_ready_get(r, &rd);
        if (rd.need_election_timeout) tn_raft_set_election_timeout(r, 10 + (uint32_t)i);
        for (size_t k = 0; k < rd.n_msgs; k++) push(b, rd.msgs[k]);
        for (size_t k = 0; k < rd.n_msgs_after_persist; k++) push(b, rd.msgs_after_persist[k]);
        if (rd.n_committed) b->applied[i] = rd.committed[rd.n_committed - 1].index;
        uint64_t last = tn_raft_last_index(r), t = 0;
        if (rd.n_entries) {
            tn_raft_term_at(r, last, &t);
            tn_raft_persisted(r, last, t);
        }
    }
}

static void settle(bench *b)
{
    for (;;) {
        for (int i = 1; i <= NODES; i++) drain(b, i);
        if (!b->nq) return;
        size_t n = b->nq;
        tn_raft_msg **batch = malloc(n * sizeof *batch);
        if (!batch) exit(1);
        memcpy(batch, b->q, n * sizeof *batch);
        b->nq = 0;
        for (size_t k = 0; k < n; k++) {
            tn_raft_msg *m = batch[k];
            b->msgs++;
            if (b->codec) {
                b->wr.len = 0;
                tn_raft_msg *d = NULL;
                if (tn_raft_msg_encode(m, &b->wr) != 0 || tn_raft_msg_decode(b->wr.p, b->wr.len, &d) != 0) exit(1);
                tn_raft_step(b->r[d->to], d);
                tn_raft_msg_free(d);
            } else {
                tn_raft_step(b->r[m->to], m);
            }
            tn_raft_msg_free(m);
        }
        free(batch);
    }
}

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
    bench b;
    memset(&b, 0, sizeof b);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--entries") && i + 1 < argc) entries = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--codec")) b.codec = 1;
        else {
            fprintf(stderr, "usage: bench_raft [--entries N] [--batch B] [--size BYTES] [--codec]\n");
            return 2;
        }
    }
    if (batch < 1) batch = 1;
    for (int i = 1; i <= NODES; i++) {
        tn_raft_config c;
        memset(&c, 0, sizeof c);
        c.id = (uint64_t)i;
        for (int j = 1; j <= NODES; j++) c.conf.voters[c.conf.n_voters++] = (uint64_t)j;
        c.election_ticks = 10;
        c.heartbeat_ticks = 2;
        c.max_inflight_msgs = 8;
        c.max_entries_per_msg = 256;
        c.max_bytes_per_msg = 1 << 20;
        c.pre_vote = 1;
        c.check_quorum = 1;
        b.r[i] = tn_raft_new(&c);
        if (!b.r[i]) return 1;
    }
    for (int i = 1; i <= NODES; i++) drain(&b, i);
    for (int k = 0; k < 40 && tn_raft_role_of(b.r[1]) != TN_LEADER; k++) {
        for (int i = 1; i <= NODES; i++)
            if (i == 1 || k < 10) tn_raft_tick(b.r[i]);
        settle(&b);
    }
    if (tn_raft_role_of(b.r[1]) != TN_LEADER) {
        fprintf(stderr, "bench_raft: no leader\n");
        return 1;
    }
    uint8_t *payload = calloc(1, size ? size : 1);
    uint64_t start = tn_raft_commit(b.r[1]);
    uint64_t proposed = 0;
    double t0 = cpu_s();
    while (proposed < entries) {
        for (int k = 0; k < batch; k++) {
            memcpy(payload, &proposed, size < 8 ? size : 8);
            if (tn_raft_propose(b.r[1], payload, size, NULL, NULL) != TN_SUCCESS) return 1;
            proposed++;
        }
        settle(&b);
        /* keep the in-memory log short, as a daemon would by snapshotting */
        if ((proposed & 0xffff) < (uint64_t)batch)
            for (int i = 1; i <= NODES; i++) tn_raft_compact(b.r[i], tn_raft_applied(b.r[i]), "s", 1);
    }
    double t = cpu_s() - t0;
    uint64_t committed = tn_raft_commit(b.r[1]) - start;
    for (int i = 1; i <= NODES; i++)
        if (b.applied[i] != tn_raft_commit(b.r[1])) {
            fprintf(stderr, "bench_raft: node %d applied %" PRIu64 " of %" PRIu64 "\n", i, b.applied[i],
                    tn_raft_commit(b.r[1]));
            return 1;
        }
    printf("bench_raft: 3 nodes, batch %d, %zu-byte entries%s: %" PRIu64 " entries committed and applied "
           "on all nodes in %.3f CPU s = %.2f M entries/s (%" PRIu64 " messages, %.0f ns per entry)\n",
           batch, size, b.codec ? ", messages encoded+decoded" : "", committed, t, (double)committed / t / 1e6,
           b.msgs, t * 1e9 / (double)committed);
    free(payload);
    free(b.q);
    tn_wr_free(&b.wr);
    for (int i = 1; i <= NODES; i++) tn_raft_free(b.r[i]);
    return 0;
}
