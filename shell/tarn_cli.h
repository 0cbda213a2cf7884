/* tarn_cli.h — what the pieces of the `tarn` command-line tool share.
 *
 *   tarn.c         main: dispatch, `tarn version`, `tarn sql`, `tarn help`
 *   cluster_cmd.c  `tarn cluster start|stop|restart`, `tarn status`, `tarn member …`, `tarn leader transfer`,
 *                  `tarn snapshot` (local clusters are described by DIR/cluster.conf)
 *   bench.c        `tarn bench`
 *
 * Every command returns the process exit status: 0 on success, 1 on failure (one line on stderr, starting
 * with "tarn: "), 2 on a usage error. Thread: the main thread (bench starts its own workers).
 */
#ifndef TARN_CLI_H
#define TARN_CLI_H

#include <stddef.h>

/* Prints "tarn: <message>\n" on stderr and returns 1 (so `return cli_fail(...)`). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same for usage errors: returns 2. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Path of a program next to this executable (build/tarn -> build/<name>) into out. 0, or -1. */
int cli_sibling_path(const char *name, char *out, size_t cap);

/* The member URLs to use: --cluster URLS, else the URLs in DIR/cluster.conf (--dir), else $TARN_CLUSTER.
 * Returns a malloc'd comma-separated list (caller frees), or NULL with a message printed. */
char *cli_cluster_urls(const char *cluster_opt, const char *dir_opt);

/* Parses a positive decimal integer option value; -1 if it is not one (or above max). */
long cli_parse_long(const char *s, long max);

int cmd_cluster(int argc, char **argv); /* argv[0] = "start" | "stop" | "restart" */
int cmd_status(int argc, char **argv);
int cmd_member(int argc, char **argv);
int cmd_leader(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
