/* bench_sm — apply throughput of the state machine on its real input: 1M PUT commands (16-byte keys,
 * 100-byte values) pre-encoded as the bytes a Raft entry carries, applied with tn_sm_apply on one core
 * (decode command + request, condition check, tree write, response encoding), then 1M GETs through
 * tn_sm_read. Usage: bench_sm [count]. Prints ops/s of thread CPU time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sm.h"
#include "wire.h"

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    tn_wr cmds;
    size_t *offs = malloc((n + 1) * sizeof *offs);
    char key[17], value[101];
    tn_wr_init(&cmds);
    memset(value, 'v', 100);
    value[100] = 0;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(key, sizeof key, "k%015llu", (unsigned long long)(x % 1000000000000000ull));
        tn_op op = {.opcode = TN_OP_KV_PUT, .key = (const uint8_t *)key, .key_len = 16,
                    .value = (const uint8_t *)value, .value_len = 100};
        tn_req req = {.req_id = i, .client_id = 1, .seq = i + 1, .n_ops = 1, .ops = &op};
        tn_wr reqb;
        tn_wr_init(&reqb);
        tn_req_encode(&req, &reqb);
        offs[i] = cmds.len;
        tn_cmd_encode(1700000000000 + (int64_t)i, 1, reqb.p, reqb.len, &cmds);
        tn_wr_free(&reqb);
    }
    offs[n] = cmds.len;
    tn_sm *sm = tn_sm_new(NULL);
    tn_wr out;
    tn_wr_init(&out);
    double t0 = cpu_seconds();
    for (size_t i = 0; i < n; i++) {
        out.len = 0;
        if (tn_sm_apply(sm, i + 1, cmds.p + offs[i], offs[i + 1] - offs[i], &out) != 0) {
            fprintf(stderr, "apply failed at %zu\n", i);
            return 1;
        }
    }
    double t1 = cpu_seconds();
    printf("apply PUT commands  %zu in %.3f s CPU: %.0f commands/s\n", n, t1 - t0, n / (t1 - t0));

    x = 88172645463325252ull;
    double t2 = cpu_seconds();
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(key, sizeof key, "k%015llu", (unsigned long long)(x % 1000000000000000ull));
        tn_op op = {.opcode = TN_OP_KV_GET, .key = (const uint8_t *)key, .key_len = 16};
        tn_req req = {.n_ops = 1, .ops = &op};
        out.len = 0;
        tn_sm_read(sm, &req, &out);
    }
    double t3 = cpu_seconds();
    printf("read GET requests   %zu in %.3f s CPU: %.0f reads/s\n", n, t3 - t2, n / (t3 - t2));
    tn_wr_free(&out);
    tn_wr_free(&cmds);
    free(offs);
    tn_sm_free(sm);
    return 0;
}
