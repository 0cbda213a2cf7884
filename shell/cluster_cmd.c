/* cluster_cmd.c — local clusters (`tarn cluster start|stop|restart`) and administration of a running one
 * (`tarn status`, `tarn member`, `tarn leader transfer`, `tarn snapshot`). See tarn_cli.h.
 *
 * A local cluster lives in one directory D: D/node<N>/ holds node N's data, D/node<N>.log its stderr and
 * stdout, and D/cluster.conf describes it, one line each:
 *     token <T>                   (only when the cluster has a token)
 *     node <id> <pid> <url>
 * The nodes run in their own sessions (setsid), so they outlive the `tarn cluster start` that spawned them
 * and ignore a Ctrl-C aimed at the shell. `stop` sends SIGTERM to each recorded PID that is still a raftnet
 * process, then SIGKILL to those still alive after the timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cluster.h"
#include "clock.h"
#include "status.h"
#include "members.h"
#include "tarn_cli.h"
#include "tn_code.h"
#include "envelope.h"
#include "wire.h"

#define MAX_NODES 16
#define URL_CAP 128

typedef struct node_conf {
    int id;
    long pid;
    char url[URL_CAP];
} node_conf;

typedef struct cluster_conf {
    char token[TN_ENV_MAX_TOKEN + 1];
    int n;
    node_conf nodes[MAX_NODES];
} cluster_conf;

/* Options every admin command accepts. */
typedef struct common_opts {
    const char *cluster, *dir, *token;
    long timeout_ms;
} common_opts;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- cluster.conf ------------------------------------------------------------------------------- */

static int conf_path(const char *dir, char *out, size_t cap)
{
    int w = snprintf(out, cap, "%s/cluster.conf", dir);
    return w > 0 && (size_t)w < cap ? 0 : -1;
}

/* 0, or -1 with a message printed (unless quiet). */
static int conf_read(const char *dir, cluster_conf *c, int quiet)
{
    char path[PATH_MAX], line[512];
    memset(c, 0, sizeof *c);
    if (conf_path(dir, path, sizeof path) != 0) return cli_fail("directory name too long: %s", dir), -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!quiet) cli_fail("cannot read %s: %s (start a cluster with: tarn cluster start --dir %s)", path,
                             strerror(errno), dir);
        return -1;
    }
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        node_conf nc;
        memset(&nc, 0, sizeof nc);
        if (strncmp(line, "token ", 6) == 0 && strlen(line + 6) <= TN_ENV_MAX_TOKEN) {
            strcpy(c->token, line + 6);
        } else if (sscanf(line, "node %d %ld %127s", &nc.id, &nc.pid, nc.url) == 3 && c->n < MAX_NODES &&
                   nc.id > 0) {
            c->nodes[c->n++] = nc;
        } else {
            if (!quiet) cli_fail("%s:%d: cannot parse '%s'", path, lineno, line);
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 0 && c->n == 0) {
        if (!quiet) cli_fail("%s lists no nodes", path);
        rc = -1;
    }
    return rc;
}

static int conf_write(const char *dir, const cluster_conf *c)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    if (conf_path(dir, path, sizeof path) != 0) return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return cli_fail("cannot write %s: %s", tmp, strerror(errno)), -1;
    fprintf(f, "# tarn local cluster (written by tarn cluster start)\n");
    if (c->token[0]) fprintf(f, "token %s\n", c->token);
    for (int i = 0; i < c->n; i++) fprintf(f, "node %d %ld %s\n", c->nodes[i].id, c->nodes[i].pid, c->nodes[i].url);
    int bad = fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) return cli_fail("cannot write %s: %s", path, strerror(errno)), -1;
    return 0;
}

static char *conf_urls(const cluster_conf *c)
{
    size_t cap = (size_t)c->n * (URL_CAP + 1) + 1;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = 0;
    for (int i = 0; i < c->n; i++) {
        if (i) strcat(s, ",");
        strcat(s, c->nodes[i].url);
    }
    return s;
}

char *cli_cluster_urls(const char *cluster_opt, const char *dir_opt)
{
    if (cluster_opt && cluster_opt[0]) {
        char *s = strdup(cluster_opt);
        if (!s) cli_fail("out of memory");
        return s;
    }
    if (dir_opt) {
        cluster_conf c;
        if (conf_read(dir_opt, &c, 0) != 0) return NULL;
        if (!getenv("TARN_TOKEN") && c.token[0]) setenv("TARN_TOKEN", c.token, 1);
        char *s = conf_urls(&c);
        if (!s) cli_fail("out of memory");
        return s;
    }
    const char *env = getenv("TARN_CLUSTER");
    if (env && env[0]) {
        char *s = strdup(env);
        if (!s) cli_fail("out of memory");
        return s;
    }
    cli_fail("no cluster given: use --cluster URLS, --dir DIR or set TARN_CLUSTER");
    return NULL;
}

/* ---- processes ---------------------------------------------------------------------------------- */

/* 1 if pid is a live (not zombie) raftnet process. Checking the program name keeps a recycled PID safe. */
static int raftnet_alive(long pid)
{
    char path[64], buf[512];
    if (pid <= 0) return 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *close_paren = strrchr(buf, ')');
    if (!strstr(buf, "(raftnet)") || !close_paren || close_paren[1] != ' ' || close_paren[2] == 'Z') return 0;
    return 1;
}

/* Starts node nc with its data in dir/node<id> and its output appended to dir/node<id>.log. */
static long spawn_node(const char *raftnet, const char *dir, const node_conf *nc, const char *peers,
                       const char *token)
{
    char data[PATH_MAX], log[PATH_MAX], id[24];
    snprintf(data, sizeof data, "%s/node%d", dir, nc->id);
    snprintf(log, sizeof log, "%s/node%d.log", dir, nc->id);
    snprintf(id, sizeof id, "%d", nc->id);
    if (mkdir(data, 0755) != 0 && errno != EEXIST) return cli_fail("cannot create %s: %s", data, strerror(errno)), -1;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return cli_fail("cannot open %s: %s", log, strerror(errno)), -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return cli_fail("fork: %s", strerror(errno)), -1;
    }
    if (pid == 0) {
        setsid();
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0) dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        const char *args[16];
        int k = 0;
        args[k++] = raftnet;
        args[k++] = "--id";
        args[k++] = id;
        args[k++] = "--listen";
        args[k++] = nc->url;
        args[k++] = "--peers";
        args[k++] = peers;
        args[k++] = "--data";
        args[k++] = data;
        if (token && token[0]) {
            args[k++] = "--cluster-token";
            args[k++] = token;
        }
        args[k] = NULL;
        execv(raftnet, (char *const *)args);
        dprintf(2, "tarn: cannot run %s: %s\n", raftnet, strerror(errno));
        _exit(127);
    }
    close(fd);
    return pid;
}

/* The last non-empty line of a node's log, to explain why it stopped. */
static void log_tail(const char *dir, int id, char *out, size_t cap)
{
    char path[PATH_MAX], line[512];
    snprintf(path, sizeof path, "%s/node%d.log", dir, id);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) snprintf(out, cap, "%s", line);
    }
    fclose(f);
}

/* Free loopback ports: all bound at once (so they differ), then released for the nodes to take. */
static int free_ports(int n, int *ports)
{
    int fds[MAX_NODES], rc = 0;
    for (int i = 0; i < n; i++) fds[i] = -1;
    for (int i = 0; i < n && rc == 0; i++) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
            rc = -1;
        else ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    return rc;
}

/* Waits until some member says it leads. 0, or -1 with a message (a node died, or the time ran out). */
static int wait_for_leader(const char *dir, const cluster_conf *c, const char *urls, long wait_ms, int own_children)
{
    long long until = tn_mono_ms() + wait_ms;
    char *why = NULL;
    for (;;) {
        if (own_children) {
            for (int i = 0; i < c->n; i++) {
                int status;
                if (c->nodes[i].pid > 0 && waitpid((pid_t)c->nodes[i].pid, &status, WNOHANG) == (pid_t)c->nodes[i].pid) {
                    char tail[512];
                    log_tail(dir, c->nodes[i].id, tail, sizeof tail);
                    return cli_fail("node %d exited at start-up (%s/node%d.log: %s)", c->nodes[i].id, dir,
                                    c->nodes[i].id, tail[0] ? tail : "empty"), -1;
                }
            }
        }
        tn_member_status *m = NULL;
        int n = 0, leader = -1;
        if (tn_member_status_fetch(urls, getenv("TARN_TOKEN"), 500, &m, &n, &why) == SQLITE_OK) {
            for (int i = 0; i < n; i++)
                if (m[i].is_leader) leader = i;
            if (leader >= 0) fprintf(stderr, "tarn: leader is node %llu (%s)\n", (unsigned long long)m[leader].id, m[leader].url);
            tn_member_status_free(m, n);
        }
        sqlite3_free(why);
        why = NULL;
        if (leader >= 0) return 0;
        if (tn_mono_ms() >= until) return cli_fail("no leader elected within %ld ms (logs: %s/node*.log)", wait_ms, dir), -1;
        sleep_ms(100);
    }
}

static int stop_nodes(cluster_conf *c, long timeout_ms, int only_id)
{
    int left = 0;
    for (int i = 0; i < c->n; i++) {
        if (only_id && c->nodes[i].id != only_id) continue;
        if (raftnet_alive(c->nodes[i].pid)) kill((pid_t)c->nodes[i].pid, SIGTERM);
    }
    long long until = tn_mono_ms() + timeout_ms;
    for (;;) {
        left = 0;
        for (int i = 0; i < c->n; i++) {
            if (only_id && c->nodes[i].id != only_id) continue;
            /* Our own children (start failed half-way) must be reaped to stop looking alive. */
            waitpid((pid_t)c->nodes[i].pid, NULL, WNOHANG);
            if (raftnet_alive(c->nodes[i].pid)) left++;
        }
        if (left == 0 || tn_mono_ms() >= until) break;
        sleep_ms(50);
    }
    for (int i = 0; i < c->n && left; i++) {
        if (only_id && c->nodes[i].id != only_id) continue;
        if (raftnet_alive(c->nodes[i].pid)) {
            fprintf(stderr, "tarn: node %d (pid %ld) ignored SIGTERM for %ld ms: SIGKILL\n", c->nodes[i].id,
                    c->nodes[i].pid, timeout_ms);
            kill((pid_t)c->nodes[i].pid, SIGKILL);
            waitpid((pid_t)c->nodes[i].pid, NULL, 0);
        }
    }
    return left;
}

static int cluster_start(int argc, char **argv)
{
    const char *dir = NULL, *token = getenv("TARN_TOKEN");
    long nodes = 3, base_port = 0, wait_ms = 15000;
    char raftnet[PATH_MAX];
    cluster_conf c;
    int ports[MAX_NODES];
    for (int i = 0; i < argc; i += 2) { /* every option takes a value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--nodes") == 0 && v) {
            nodes = cli_parse_long(v, MAX_NODES);
            if (nodes < 1) return cli_usage("--nodes: '%s' is not a number in 1..%d", v, MAX_NODES);
        } else if (strcmp(argv[i], "--dir") == 0 && v) {
            dir = v;
        } else if (strcmp(argv[i], "--base-port") == 0 && v) {
            base_port = cli_parse_long(v, 65535 - MAX_NODES);
            if (base_port < 1) return cli_usage("--base-port: '%s' is not a port", v);
        } else if (strcmp(argv[i], "--token") == 0 && v) {
            token = v;
        } else if (strcmp(argv[i], "--wait-ms") == 0 && v) {
            wait_ms = cli_parse_long(v, 3600000);
            if (wait_ms < 1) return cli_usage("--wait-ms: '%s' is not a number of milliseconds", v);
        } else {
            return cli_usage("cluster start: unexpected argument '%s'", argv[i]);
        }
    }
    if (!dir) return cli_usage("cluster start: --dir D is required");
    if (token && strlen(token) > TN_ENV_MAX_TOKEN) return cli_usage("--token: longer than %d bytes", TN_ENV_MAX_TOKEN);
    if (cli_sibling_path("raftnet", raftnet, sizeof raftnet) != 0 || access(raftnet, X_OK) != 0)
        return cli_fail("cannot find the raftnet daemon next to this program (%s): build it first", raftnet);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return cli_fail("cannot create %s: %s", dir, strerror(errno));
    {
        char path[PATH_MAX];
        cluster_conf old;
        /* A cluster.conf left by a stopped cluster is simply replaced; one whose nodes run is not. */
        if (conf_path(dir, path, sizeof path) == 0 && access(path, F_OK) == 0 && conf_read(dir, &old, 1) == 0) {
            for (int i = 0; i < old.n; i++)
                if (raftnet_alive(old.nodes[i].pid))
                    return cli_fail("a cluster is already running in %s (node %d, pid %ld): tarn cluster stop --dir %s",
                                    dir, old.nodes[i].id, old.nodes[i].pid, dir);
        }
    }
    if (base_port == 0 && free_ports((int)nodes, ports) != 0) return cli_fail("cannot find free loopback ports");
    memset(&c, 0, sizeof c);
    if (token) snprintf(c.token, sizeof c.token, "%s", token);
    c.n = (int)nodes;
    char peers[MAX_NODES * (URL_CAP + 8)] = "";
    for (int i = 0; i < c.n; i++) {
        c.nodes[i].id = i + 1;
        snprintf(c.nodes[i].url, URL_CAP, "tcp://127.0.0.1:%d", base_port ? (int)base_port + i : ports[i]);
        size_t at = strlen(peers);
        snprintf(peers + at, sizeof peers - at, "%s%d=%s", i ? "," : "", c.nodes[i].id, c.nodes[i].url);
    }
    for (int i = 0; i < c.n; i++) {
        c.nodes[i].pid = spawn_node(raftnet, dir, &c.nodes[i], peers, c.token);
        if (c.nodes[i].pid < 0) {
            stop_nodes(&c, 2000, 0);
            return 1;
        }
    }
    if (conf_write(dir, &c) != 0) {
        stop_nodes(&c, 2000, 0);
        return 1;
    }
    char *urls = conf_urls(&c);
    if (!urls) {
        stop_nodes(&c, 2000, 0);
        return cli_fail("out of memory");
    }
    if (c.token[0]) setenv("TARN_TOKEN", c.token, 1);
    if (wait_for_leader(dir, &c, urls, wait_ms, 1) != 0) {
        stop_nodes(&c, 2000, 0);
        free(urls);
        return 1;
    }
    printf("%s\n", urls);
    free(urls);
    return 0;
}

static int cluster_stop(int argc, char **argv)
{
    const char *dir = NULL;
    long timeout_ms = 5000;
    cluster_conf c;
    for (int i = 0; i < argc; i += 2) { /* every option takes a value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--dir") == 0 && v) dir = v;
        else if (strcmp(argv[i], "--timeout-ms") == 0 && v) {
            timeout_ms = cli_parse_long(v, 3600000);
            if (timeout_ms < 1) return cli_usage("--timeout-ms: '%s' is not a number of milliseconds", v);
        } else return cli_usage("cluster stop: unexpected argument '%s'", argv[i]);
    }
    if (!dir) return cli_usage("cluster stop: --dir D is required");
    if (conf_read(dir, &c, 0) != 0) return 1;
    int running = 0;
    for (int i = 0; i < c.n; i++) running += raftnet_alive(c.nodes[i].pid);
    stop_nodes(&c, timeout_ms, 0);
    fprintf(stderr, "tarn: stopped %d node%s in %s\n", running, running == 1 ? "" : "s", dir);
    return 0;
}

/* tarn cluster restart ID --dir D: starts node ID again with its recorded URL and data. */
static int cluster_restart(int argc, char **argv)
{
    const char *dir = NULL;
    long id = -1, wait_ms = 15000;
    cluster_conf c;
    char raftnet[PATH_MAX];
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--dir") == 0 && v) dir = v, i++;
        else if (strcmp(argv[i], "--wait-ms") == 0 && v) wait_ms = cli_parse_long(v, 3600000), i++;
        else if (id < 0 && (id = cli_parse_long(argv[i], 1000000)) > 0) continue;
        else return cli_usage("cluster restart: unexpected argument '%s'", argv[i]);
    }
    if (!dir || id <= 0) return cli_usage("cluster restart: need ID and --dir D");
    if (wait_ms < 1) return cli_usage("--wait-ms: not a number of milliseconds");
    if (conf_read(dir, &c, 0) != 0) return 1;
    if (cli_sibling_path("raftnet", raftnet, sizeof raftnet) != 0 || access(raftnet, X_OK) != 0)
        return cli_fail("cannot find the raftnet daemon next to this program (%s)", raftnet);
    int at = -1;
    char peers[MAX_NODES * (URL_CAP + 8)] = "";
    for (int i = 0; i < c.n; i++) {
        if (c.nodes[i].id == id) at = i;
        size_t len = strlen(peers);
        snprintf(peers + len, sizeof peers - len, "%s%d=%s", i ? "," : "", c.nodes[i].id, c.nodes[i].url);
    }
    if (at < 0) return cli_fail("no node %ld in %s/cluster.conf", id, dir);
    if (raftnet_alive(c.nodes[at].pid)) return cli_fail("node %ld is running (pid %ld)", id, c.nodes[at].pid);
    c.nodes[at].pid = spawn_node(raftnet, dir, &c.nodes[at], peers, c.token);
    if (c.nodes[at].pid < 0 || conf_write(dir, &c) != 0) return 1;
    /* Wait until the node itself answers STATUS (it may take a moment to replay its log). */
    long long until = tn_mono_ms() + wait_ms;
    for (;;) {
        int status;
        if (waitpid((pid_t)c.nodes[at].pid, &status, WNOHANG) == (pid_t)c.nodes[at].pid) {
            char tail[512];
            log_tail(dir, (int)id, tail, sizeof tail);
            return cli_fail("node %ld exited at start-up (%s)", id, tail[0] ? tail : "empty log");
        }
        tn_member_status *m = NULL;
        int n = 0, up = 0;
        char *why = NULL;
        if (tn_member_status_fetch(c.nodes[at].url, c.token[0] ? c.token : getenv("TARN_TOKEN"), 300, &m, &n,
                                   &why) == SQLITE_OK)
            up = n > 0 && m[0].answered;
        tn_member_status_free(m, n);
        sqlite3_free(why);
        if (up) break;
        if (tn_mono_ms() >= until) return cli_fail("node %ld did not answer within %ld ms", id, wait_ms);
        sleep_ms(100);
    }
    printf("%s\n", c.nodes[at].url);
    return 0;
}

int cmd_cluster(int argc, char **argv)
{
    if (argc < 1) return cli_usage("cluster: expected start, stop or restart");
    if (strcmp(argv[0], "start") == 0) return cluster_start(argc - 1, argv + 1);
    if (strcmp(argv[0], "stop") == 0) return cluster_stop(argc - 1, argv + 1);
    if (strcmp(argv[0], "restart") == 0) return cluster_restart(argc - 1, argv + 1);
    return cli_usage("cluster: unknown subcommand '%s' (start, stop, restart)", argv[0]);
}

/* ---- administration ----------------------------------------------------------------------------- */

/* Splits argv into common options and positional arguments (pos must hold argc entries). Returns the
 * number of positionals, or -1 after a usage message. */
static int parse_common(int argc, char **argv, common_opts *o, char **pos, const char *const *flags, int *flag_set)
{
    int n = 0;
    memset(o, 0, sizeof *o);
    o->timeout_ms = 5000;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int matched = 0;
        for (int f = 0; flags && flags[f]; f++)
            if (strcmp(argv[i], flags[f]) == 0) flag_set[f] = matched = 1;
        if (matched) continue;
        if (strcmp(argv[i], "--cluster") == 0 && v) o->cluster = v, i++;
        else if (strcmp(argv[i], "--dir") == 0 && v) o->dir = v, i++;
        else if (strcmp(argv[i], "--token") == 0 && v) o->token = v, i++;
        else if (strcmp(argv[i], "--timeout-ms") == 0 && v) {
            o->timeout_ms = cli_parse_long(v, 3600000);
            if (o->timeout_ms < 1) return cli_usage("--timeout-ms: '%s' is not a number of milliseconds", v), -1;
            i++;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            return cli_usage("unknown option '%s'", argv[i]), -1;
        } else {
            pos[n++] = argv[i];
        }
    }
    if (o->token) setenv("TARN_TOKEN", o->token, 1);
    return n;
}

int cmd_status(int argc, char **argv)
{
    common_opts o;
    char *pos[64];
    if (argc > 64) return cli_usage("status: too many arguments");
    int np = parse_common(argc, argv, &o, pos, NULL, NULL);
    if (np < 0) return 2;
    if (np > 0) return cli_usage("status: unexpected argument '%s'", pos[0]);
    if (o.timeout_ms == 5000) o.timeout_ms = 1000;
    char *urls = cli_cluster_urls(o.cluster, o.dir);
    if (!urls) return 1;
    tn_member_status *m = NULL;
    int n = 0, leader = -1;
    char *why = NULL;
    int rc = tn_member_status_fetch(urls, getenv("TARN_TOKEN"), (int)o.timeout_ms, &m, &n, &why);
    free(urls);
    if (rc != SQLITE_OK) {
        cli_fail("%s", why ? why : "out of memory");
        sqlite3_free(why);
        return 1;
    }
    printf("%-4s %-26s %-12s %6s %10s %10s %6s %s\n", "ID", "URL", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "LEADER");
    for (int i = 0; i < n; i++) {
        char id[24] = "-", term[24] = "-", commit[24] = "-", applied[24] = "-", lag[24] = "-";
        if (m[i].id) snprintf(id, sizeof id, "%llu", (unsigned long long)m[i].id);
        if (m[i].answered) {
            snprintf(term, sizeof term, "%llu", (unsigned long long)m[i].status.term);
            snprintf(commit, sizeof commit, "%llu", (unsigned long long)m[i].status.commit);
            snprintf(applied, sizeof applied, "%llu", (unsigned long long)m[i].status.applied);
        }
        if (m[i].lag >= 0) snprintf(lag, sizeof lag, "%lld", (long long)m[i].lag);
        if (m[i].is_leader) leader = i;
        printf("%-4s %-26s %-12s %6s %10s %10s %6s %s\n", id, m[i].url, tn_member_role_name(&m[i]), term, commit,
               applied, lag, m[i].is_leader ? "*" : "");
    }
    /* A member that answered with an error (a wrong token, say) explains more than "unreachable". */
    const tn_member_status *refused = NULL;
    for (int i = 0; i < n && !refused; i++)
        if (m[i].refused && m[i].error) refused = &m[i];
    if (leader < 0 && refused) cli_fail("no leader among the members that answered (%s: %s)", refused->url, refused->error);
    else if (leader < 0) cli_fail("no leader among the members that answered");
    tn_member_status_free(m, n);
    return leader < 0 ? 1 : 0;
}

/* Sends one ADMIN op to the leader (the client library finds it). 0, or 1 with a message. */
static int admin_call(const common_opts *o, const tn_admin *a, const char *what)
{
    char *urls = cli_cluster_urls(o->cluster, o->dir);
    if (!urls) return 1;
    tn_cluster *cl = NULL;
    tn_cluster_opts co;
    char *err = NULL;
    tn_wr payload, resp;
    tn_resp r;
    int have_resp = 0, rc = 1;
    const char *token = getenv("TARN_TOKEN");
    memset(&co, 0, sizeof co);
    if (token && token[0]) {
        co.token = (const uint8_t *)token;
        co.token_len = strlen(token);
    }
    co.deadline_ms = (int)o->timeout_ms;
    tn_wr_init(&payload);
    tn_wr_init(&resp);
    if (tn_cluster_open(urls, &co, &cl, &err) != TN_SUCCESS) {
        cli_fail("%s", err ? err : "out of memory");
        goto done;
    }
    tn_admin_encode(a, &payload);
    tn_op op;
    memset(&op, 0, sizeof op);
    op.opcode = TN_OP_ADMIN;
    op.value = payload.p;
    op.value_len = payload.len;
    tn_req req;
    memset(&req, 0, sizeof req);
    req.req_id = 1;
    req.n_ops = 1;
    req.ops = &op;
    int code = payload.oom ? TN_NOMEM : tn_cluster_call_req(cl, &req, &resp, &err);
    if (code != TN_SUCCESS) {
        cli_fail("%s: %s", what, err ? err : tn_code_name(code));
        goto done;
    }
    if (tn_resp_decode(resp.p, resp.len, &r) != TN_SUCCESS) {
        cli_fail("%s: undecodable answer", what);
        goto done;
    }
    have_resp = 1;
    /* The node answers ADMIN with an overall code and a message, and possibly one result. */
    int op_code = r.code != TN_SUCCESS ? r.code : r.n_results >= 1 ? r.results[0].code : TN_SUCCESS;
    if (!tn_code_ok(op_code)) {
        cli_fail("%s: %s%s%.*s", what, tn_code_name(op_code), r.message_len ? ": " : "", (int)r.message_len,
                 (const char *)r.message);
        goto done;
    }
    if (r.message_len) printf("%s: ok (%.*s)\n", what, (int)r.message_len, (const char *)r.message);
    else printf("%s: ok\n", what);
    rc = 0;
done:
    if (have_resp) tn_resp_clear(&r);
    sqlite3_free(err);
    tn_cluster_close(cl);
    tn_wr_free(&payload);
    tn_wr_free(&resp);
    free(urls);
    return rc;
}

static int parse_id(const char *s, uint64_t *id)
{
    long v = cli_parse_long(s, 1000000000L);
    if (v < 1) return -1;
    *id = (uint64_t)v;
    return 0;
}

int cmd_member(int argc, char **argv)
{
    static const char *const flags[] = {"--learner", NULL};
    int flag_set[1] = {0};
    common_opts o;
    char *pos[64];
    char what[256];
    tn_admin a;
    if (argc > 64) return cli_usage("member: too many arguments");
    int np = parse_common(argc, argv, &o, pos, flags, flag_set);
    if (np < 0) return 2;
    memset(&a, 0, sizeof a);
    if (np == 3 && strcmp(pos[0], "add") == 0) {
        a.kind = flag_set[0] ? TN_ADMIN_ADD_LEARNER : TN_ADMIN_ADD_VOTER;
        a.url = pos[2];
        a.url_len = strlen(pos[2]);
    } else if (np == 2 && strcmp(pos[0], "remove") == 0) {
        a.kind = TN_ADMIN_REMOVE;
    } else if (np == 2 && strcmp(pos[0], "promote") == 0) {
        a.kind = TN_ADMIN_PROMOTE;
    } else {
        return cli_usage("member: expected 'add ID URL [--learner]', 'remove ID' or 'promote ID'");
    }
    if (parse_id(pos[1], &a.node) != 0) return cli_usage("member: '%s' is not a node id", pos[1]);
    snprintf(what, sizeof what, "member %s %s%s%s", pos[0], pos[1], np == 3 ? " " : "", np == 3 ? pos[2] : "");
    return admin_call(&o, &a, what);
}

int cmd_leader(int argc, char **argv)
{
    common_opts o;
    char *pos[64];
    char what[64];
    tn_admin a;
    if (argc > 64) return cli_usage("leader: too many arguments");
    int np = parse_common(argc, argv, &o, pos, NULL, NULL);
    if (np < 0) return 2;
    memset(&a, 0, sizeof a);
    if (np != 2 || strcmp(pos[0], "transfer") != 0) return cli_usage("leader: expected 'transfer ID'");
    if (parse_id(pos[1], &a.node) != 0) return cli_usage("leader transfer: '%s' is not a node id", pos[1]);
    a.kind = TN_ADMIN_TRANSFER;
    snprintf(what, sizeof what, "leader transfer %s", pos[1]);
    return admin_call(&o, &a, what);
}

int cmd_snapshot(int argc, char **argv)
{
    common_opts o;
    char *pos[64];
    tn_admin a;
    if (argc > 64) return cli_usage("snapshot: too many arguments");
    int np = parse_common(argc, argv, &o, pos, NULL, NULL);
    if (np < 0) return 2;
    if (np > 0) return cli_usage("snapshot: unexpected argument '%s'", pos[0]);
    memset(&a, 0, sizeof a);
    a.kind = TN_ADMIN_SNAPSHOT;
    return admin_call(&o, &a, "snapshot");
}
