/* tarn — Tarn's command-line tool.
 *
 *   tarn version          print the version
 *   tarn sql [ARGS...]    run the sqlite3 shell with the Tarn extension loaded (ARGS go to sqlite3);
 *                         TARN_CLUSTER in the environment presets the connection's default cluster
 *   tarn help             this text
 *
 * Cluster administration (cluster start/stop, status, member, leader transfer, snapshot) and `tarn bench`
 * arrive with the raftnet daemon. Errors are one line on stderr and a non-zero exit.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tarn_ext.h"

static void usage(FILE *to)
{
    fprintf(to, "usage: tarn version | tarn sql [sqlite3 args...] | tarn help\n");
}

/* The extension lives next to this binary (build/tarn and build/tarn.so). */
static int extension_path(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return -1;
    *slash = 0;
    int w = snprintf(out, cap, "%s/tarn", self);
    return w > 0 && (size_t)w < cap ? 0 : -1;
}

static int cmd_sql(int argc, char **argv)
{
    char ext[PATH_MAX], load[PATH_MAX + 16];
    if (extension_path(ext, sizeof ext) != 0) {
        fprintf(stderr, "tarn: cannot locate the extension next to this program\n");
        return 1;
    }
    snprintf(load, sizeof load, ".load %s", ext);
    char **args = calloc((size_t)argc + 4, sizeof *args);
    if (!args) {
        fprintf(stderr, "tarn: out of memory\n");
        return 1;
    }
    int k = 0;
    args[k++] = "sqlite3";
    args[k++] = "-cmd";
    args[k++] = load;
    for (int i = 0; i < argc; i++) args[k++] = argv[i];
    args[k] = NULL;
    execvp("sqlite3", args);
    fprintf(stderr, "tarn: cannot run sqlite3: %s (apt-get install sqlite3)\n", strerror(errno));
    free(args);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0) {
        printf("tarn %s\n", TARN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "sql") == 0) return cmd_sql(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tarn: unknown command '%s' (try: tarn help)\n", cmd);
    return 2;
}
