/* tarn — Tarn's command-line tool (see tarn_cli.h for how it is split).
 *
 *   tarn version                      print the version
 *   tarn sql [--cluster URLS | --dir D] [--token T] [sqlite3 args...]
 *                                     the sqlite3 shell with the extension loaded and TARN_CLUSTER preset
 *   tarn cluster start|stop|restart   a local cluster of raftnet processes (cluster_cmd.c)
 *   tarn status | member | leader transfer | snapshot   administration of a running cluster
 *   tarn bench                        throughput and latency (bench.c)
 *   tarn help                         this text
 *
 * Errors are one line on stderr and a non-zero exit (1: failure, 2: usage).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tarn_cli.h"
#include "version.h"

static const char usage_text[] =
    "usage:\n"
    "  tarn version\n"
    "  tarn sql [--cluster URLS | --dir D] [--token T] [sqlite3 args...]\n"
    "  tarn cluster start --nodes N --dir D [--base-port P] [--token T] [--wait-ms MS]\n"
    "  tarn cluster stop --dir D [--timeout-ms MS]\n"
    "  tarn cluster restart ID --dir D        (start node ID of a local cluster again)\n"
    "  tarn status [--cluster URLS | --dir D] [--timeout-ms MS]\n"
    "  tarn member add ID URL [--learner] | member remove ID | member promote ID   [--cluster URLS | --dir D]\n"
    "  tarn leader transfer ID [--cluster URLS | --dir D]\n"
    "  tarn snapshot [--cluster URLS | --dir D]\n"
    "  tarn bench (--cluster URLS | --dir D | --embedded [--data DIR]) [--clients N] [--seconds S]\n"
    "             [--op put|get|cas|txn|mix] [--key-size 16] [--value-size 256] [--keys 100000]\n"
    "             [--stale] [--json]\n"
    "Without --cluster/--dir, commands use $TARN_CLUSTER; the cluster token comes from --token or $TARN_TOKEN.\n";

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tarn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tarn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try: tarn help)\n", stderr);
    va_end(ap);
    return 2;
}

long cli_parse_long(const char *s, long max)
{
    char *end;
    if (!s || !*s) return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > max) return -1;
    return v;
}

int cli_sibling_path(const char *name, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return -1;
    *slash = 0;
    int w = snprintf(out, cap, "%s/%s", self, name);
    return w > 0 && (size_t)w < cap ? 0 : -1;
}

/* tarn sql: options of its own first, the rest goes to sqlite3. */
static int cmd_sql(int argc, char **argv)
{
    char ext[PATH_MAX], load[PATH_MAX + 16];
    const char *cluster = NULL, *dir = NULL;
    int i = 0;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--cluster") == 0 && i + 1 < argc) cluster = argv[++i];
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) setenv("TARN_TOKEN", argv[++i], 1);
        else break;
    }
    if (cluster || dir) {
        char *urls = cli_cluster_urls(cluster, dir);
        if (!urls) return 1;
        setenv("TARN_CLUSTER", urls, 1);
        free(urls);
    }
    if (cli_sibling_path("tarn", ext, sizeof ext) != 0)
        return cli_fail("cannot locate the extension next to this program");
    snprintf(load, sizeof load, ".load %s", ext);
    char **args = calloc((size_t)(argc - i) + 4, sizeof *args);
    if (!args) return cli_fail("out of memory");
    int k = 0;
    args[k++] = "sqlite3";
    args[k++] = "-cmd";
    args[k++] = load;
    for (; i < argc; i++) args[k++] = argv[i];
    args[k] = NULL;
    execvp("sqlite3", args);
    int err = errno;
    free(args);
    return cli_fail("cannot run sqlite3: %s (apt-get install sqlite3)", strerror(err));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0) {
        printf("tarn %s\n", TARN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "sql") == 0) return cmd_sql(argc - 2, argv + 2);
    if (strcmp(cmd, "cluster") == 0) return cmd_cluster(argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0) return cmd_status(argc - 2, argv + 2);
    if (strcmp(cmd, "member") == 0) return cmd_member(argc - 2, argv + 2);
    if (strcmp(cmd, "leader") == 0) return cmd_leader(argc - 2, argv + 2);
    if (strcmp(cmd, "snapshot") == 0) return cmd_snapshot(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    return cli_usage("unknown command '%s'", cmd);
}
