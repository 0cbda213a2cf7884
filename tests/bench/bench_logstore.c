/* bench_logstore.c — log store append + sync throughput.
 *
 * Usage: bench_logstore [entries (100000)] [entry bytes (256)] [work dir (/tmp)] [modes (all)]
 *   modes: comma-separated subset of sync-each,group-64,disk-thread
 * Modes, each on a fresh log:
 *   sync-each   one tn_logstore_sync per entry (no group commit)
 *   group-64    one sync per 64 entries (group commit as the event loop would batch)
 *   disk-thread appends on this thread, a second thread syncs in a loop (each sync covers whatever was
 *               appended meanwhile): the daemon's layout
 * Prints entries/s and syncs/s for each. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "logstore.h"
#include "tn_code.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct disk_thread {
    tn_logstore *log;
    atomic_int stop;
    atomic_uint_fast64_t durable;
    uint64_t syncs;
} disk_thread;

static void *disk_main(void *arg)
{
    disk_thread *d = arg;
    while (!atomic_load(&d->stop)) {
        uint64_t dur = 0;
        if (tn_logstore_sync(d->log, &dur) != TN_SUCCESS) {
            fprintf(stderr, "sync failed\n");
            exit(1);
        }
        if (dur > atomic_load(&d->durable)) d->syncs++; /* count only syncs that made something durable */
        atomic_store(&d->durable, dur);
    }
    return NULL;
}

static int run(const char *root, const char *mode, uint64_t n, size_t size, int group)
{
    char dir[256], err[512];
    snprintf(dir, sizeof dir, "%s/tn-bench-logstore-XXXXXX", root);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    tn_logstore *log;
    if (tn_logstore_open(dir, NULL, &log, NULL, err, sizeof err) != TN_SUCCESS) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    uint8_t *data = malloc(size);
    memset(data, 'x', size);
    uint64_t syncs = 0;
    double t0 = now_s();
    if (group > 0) {
        for (uint64_t i = 1; i <= n; i++) {
            if (tn_logstore_append(log, i, 1, 0, data, size) != TN_SUCCESS) return 1;
            if (i % (uint64_t)group == 0 || i == n) {
                if (tn_logstore_sync(log, NULL) != TN_SUCCESS) return 1;
                syncs++;
            }
        }
    } else {
        disk_thread d = {.log = log};
        pthread_t th;
        pthread_create(&th, NULL, disk_main, &d);
        for (uint64_t i = 1; i <= n; i++)
            if (tn_logstore_append(log, i, 1, 0, data, size) != TN_SUCCESS) return 1;
        while (atomic_load(&d.durable) < n) usleep(50);
        atomic_store(&d.stop, 1);
        pthread_join(th, NULL);
        syncs = d.syncs;
    }
    double el = now_s() - t0;
    printf("%-12s %8" PRIu64 " entries x %zu B  %7.2f s  %10.0f entries/s  %8.0f syncs/s  (%" PRIu64
           " syncs, %.1f entries/sync)\n",
           mode, n, size, el, (double)n / el, (double)syncs / el, syncs, (double)n / (double)syncs);
    tn_logstore_close(log);
    free(data);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    size_t size = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 256;
    const char *root = argc > 3 ? argv[3] : "/tmp";
    const char *modes = argc > 4 ? argv[4] : "sync-each,group-64,disk-thread";
    if (n == 0) n = 1;
    if (strstr(modes, "sync-each") && run(root, "sync-each", n, size, 1)) return 1;
    if (strstr(modes, "group-64") && run(root, "group-64", n, size, 64)) return 1;
    if (strstr(modes, "disk-thread") && run(root, "disk-thread", n, size, 0)) return 1;
    return 0;
}
