/* main.c — the `raftnet` daemon: flags and config file, signals, one tn_node (node.h).
 *
 * Also a hidden debugging aid, `raftnet --client URL[,URL...] [opts] CMD ...`: sends one request with a
 * plain nng req0 socket and prints the answer (used by the cluster tests, see docs/operations.md):
 *   put KEY VALUE | get KEY | remove KEY | put-temp KEY VALUE TTL_MS | scan | status |
 *   admin add-voter ID URL | add-learner ID URL | remove ID | promote ID | transfer ID | snapshot
 *   options: --stale, --client-id N, --seq N, --cluster-token T, --timeout-ms N, --tls-ca/--tls-cert/--tls-key.
 *   Exit status: 0 success, 3 NOT_FOUND, 1 other errors (the code name is printed on stderr).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "node.h"
#include "clock.h"
#include "status.h"
#include "tn_code.h"
#include "transport.h"
#include "wire.h"

#define MAX_STR 4096

typedef struct opts {
    char listen[MAX_STR];
    char peers[MAX_STR * 4];
    char data[MAX_STR];
    char token[TN_ENV_MAX_TOKEN + 1];
    char token_file[MAX_STR];
    char tls_cert[MAX_STR], tls_key[MAX_STR], tls_ca[MAX_STR];
    uint64_t id;
    uint32_t tick_ms, election_ticks, heartbeat_ticks;
    uint64_t snapshot_entries;
    int learner;
    int request_timeout_ms;
    uint32_t max_inflight;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: raftnet --id N --listen URL --peers ID=URL,ID=URL,... --data DIR [options]\n"
            "  --config FILE              key = value lines with the same keys (# comments)\n"
            "  --cluster-token T | --cluster-token-file F\n"
            "  --tls-cert F --tls-key F --tls-ca F   (for tls+tcp:// URLs)\n"
            "  --tick-ms N (10)  --election-ticks N (30)  --heartbeat-ticks N (3)\n"
            "  --snapshot-entries N (100000)  --learner  --request-timeout-ms N (5000)\n"
            "  --max-inflight N (1)  append messages in flight per follower\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *out = v;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *v)
{
    size_t len = strlen(v);
    if (len >= cap) return -1;
    memcpy(dst, v, len + 1);
    return 0;
}

/* Applies one key/value (flag name without the dashes). 0, or -1 with a message in err. */
static int set_opt(opts *o, const char *key, const char *val, char *err, size_t errlen)
{
    uint64_t v = 0;
    int bad = 0;
    if (!strcmp(key, "learner")) {
        o->learner = !val || !strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes");
        return 0;
    }
    if (!val) {
        snprintf(err, errlen, "--%s needs a value", key);
        return -1;
    }
    if (!strcmp(key, "id")) bad = parse_u64(val, &o->id) || o->id == 0;
    else if (!strcmp(key, "listen")) bad = copy_str(o->listen, sizeof o->listen, val);
    else if (!strcmp(key, "peers")) bad = copy_str(o->peers, sizeof o->peers, val);
    else if (!strcmp(key, "data")) bad = copy_str(o->data, sizeof o->data, val);
    else if (!strcmp(key, "cluster-token")) bad = copy_str(o->token, sizeof o->token, val);
    else if (!strcmp(key, "cluster-token-file")) bad = copy_str(o->token_file, sizeof o->token_file, val);
    else if (!strcmp(key, "tls-cert")) bad = copy_str(o->tls_cert, sizeof o->tls_cert, val);
    else if (!strcmp(key, "tls-key")) bad = copy_str(o->tls_key, sizeof o->tls_key, val);
    else if (!strcmp(key, "tls-ca")) bad = copy_str(o->tls_ca, sizeof o->tls_ca, val);
    else if (!strcmp(key, "tick-ms")) { bad = parse_u64(val, &v) || !v || v > 10000; o->tick_ms = (uint32_t)v; }
    else if (!strcmp(key, "election-ticks")) { bad = parse_u64(val, &v) || v < 2 || v > 100000; o->election_ticks = (uint32_t)v; }
    else if (!strcmp(key, "heartbeat-ticks")) { bad = parse_u64(val, &v) || !v || v > 100000; o->heartbeat_ticks = (uint32_t)v; }
    else if (!strcmp(key, "snapshot-entries")) bad = parse_u64(val, &o->snapshot_entries) || !o->snapshot_entries;
    else if (!strcmp(key, "max-inflight")) { bad = parse_u64(val, &v) || !v || v > 256; o->max_inflight = (uint32_t)v; }
    else if (!strcmp(key, "request-timeout-ms")) { bad = parse_u64(val, &v) || !v || v > 600000; o->request_timeout_ms = (int)v; }
    else {
        snprintf(err, errlen, "unknown option --%s", key);
        return -1;
    }
    if (bad) snprintf(err, errlen, "bad value for --%s: '%s'", key, val);
    return bad ? -1 : 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

static int load_config(opts *o, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[MAX_STR * 4];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        char *key = s, *val = NULL;
        if (eq) {
            *eq = 0;
            val = trim(eq + 1);
        }
        key = trim(key);
        if (!strcmp(key, "config")) {
            snprintf(err, errlen, "%s:%d: nested config", path, lineno);
            rc = -1;
        } else if (set_opt(o, key, val, err, errlen) != 0) {
            char tmp[1024];
            snprintf(tmp, sizeof tmp, "%.200s:%d: %.700s", path, lineno, err);
            snprintf(err, errlen, "%s", tmp);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

/* Parses "1=url,2=url". Strings point into `buf` (modified). */
static int parse_peers(char *buf, tn_node_config *c, char *err, size_t errlen)
{
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (!*tok) continue;
        char *eq = strchr(tok, '=');
        uint64_t id;
        if (!eq) goto bad;
        *eq = 0;
        if (parse_u64(tok, &id) || !id || !eq[1]) goto bad;
        if (c->n_peers == TN_RAFT_MAX_NODES) {
            snprintf(err, errlen, "--peers: at most %d members", TN_RAFT_MAX_NODES);
            return -1;
        }
        for (size_t i = 0; i < c->n_peers; i++)
            if (c->peers[i].id == id) {
                snprintf(err, errlen, "--peers: id %" PRIu64 " listed twice", id);
                return -1;
            }
        c->peers[c->n_peers++] = (tn_peer_addr){id, eq + 1};
        continue;
    bad:
        snprintf(err, errlen, "--peers: expected ID=URL, got '%s'", tok);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* client mode                                                                                       */

typedef struct client {
    char *urls[16];
    int n_urls;
    const char *token;
    tn_tls_opts tls;
    int timeout_ms;
} client;

/* One round trip to url. 0 and the response bytes in *resp (nng_free with *resp_len), or -1. */
static int round_trip(const client *c, const char *url, const uint8_t *req, size_t len, int timeout_ms,
                      uint8_t **resp, size_t *resp_len)
{
    nng_socket s;
    nng_dialer d;
    char err[256];
    int ok = -1;
    tn_wr env;
    tn_wr_init(&env);
    if (nng_req0_open(&s) != 0) return -1;
    /* A dead node must cost little: the dial is synchronous (refused at once), sending waits at most 1 s
     * for the connection; only the answer may take up to timeout_ms. */
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms < 1000 ? timeout_ms : 1000);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, TN_TRANSPORT_MAX_MESSAGE);
    if (nng_dialer_create(&d, s, url) != 0) goto done;
    if (tn_tls_setup_dialer(d, url, &c->tls, err, sizeof err) != TN_SUCCESS) {
        fprintf(stderr, "client: %s\n", err);
        goto done;
    }
    if (nng_dialer_start(d, 0) != 0) goto done;
    size_t tl = c->token ? strlen(c->token) : 0;
    if (tn_env_encode_client(&env, c->token, tl, req, len) != TN_SUCCESS || env.oom) goto done;
    if (nng_send(s, env.p, env.len, 0) != 0) goto done;
    if (nng_recv(s, resp, resp_len, NNG_FLAG_ALLOC) != 0) goto done;
    ok = 0;
done:
    tn_wr_free(&env);
    nng_close(s);
    return ok;
}

static void print_entry(const tn_entry *e)
{
    printf("%.*s", (int)e->value_len, e->value ? (const char *)e->value : "");
    printf("\n");
    fprintf(stderr, "key=%.*s create_rev=%" PRIu64 " update_rev=%" PRIu64 "\n", (int)e->key_len,
            (const char *)e->key, e->create_rev, e->update_rev);
}

static void print_status(const tn_status *s)
{
    printf("id=%" PRIu64 " url=%.*s role=%s term=%" PRIu64 " leader=%" PRIu64 " leader_url=%.*s commit=%" PRIu64
           " applied=%" PRIu64 " last=%" PRIu64 " snapshot=%" PRIu64 "\n",
           s->id, (int)s->url_len, s->url, tn_raft_role_name((tn_raft_role)s->role), s->term, s->leader,
           (int)s->leader_url_len, s->leader_url, s->commit, s->applied, s->last_index, s->snapshot_index);
    for (size_t i = 0; i < s->n_members; i++)
        printf("member id=%" PRIu64 " url=%.*s %s match=%" PRIu64 "\n", s->members[i].id,
               (int)s->members[i].url_len, s->members[i].url, s->members[i].voter ? "voter" : "learner",
               s->members[i].match);
}

static int client_main(int argc, char **argv)
{
    client c = {0};
    c.timeout_ms = 10000;
    uint64_t client_id = 0, seq = 0;
    int stale = 0;
    char *urls = NULL;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--client") && v) { urls = argv[++i]; }
        else if (!strcmp(a, "--stale")) stale = 1;
        else if (!strcmp(a, "--client-id") && v) { parse_u64(v, &client_id); i++; }
        else if (!strcmp(a, "--seq") && v) { parse_u64(v, &seq); i++; }
        else if (!strcmp(a, "--cluster-token") && v) { c.token = v; i++; }
        else if (!strcmp(a, "--timeout-ms") && v) { c.timeout_ms = atoi(v); i++; }
        else if (!strcmp(a, "--tls-ca") && v) { c.tls.ca_file = v; i++; }
        else if (!strcmp(a, "--tls-cert") && v) { c.tls.cert_file = v; i++; }
        else if (!strcmp(a, "--tls-key") && v) { c.tls.key_file = v; i++; }
        else break;
    }
    if (!urls || i >= argc) {
        fprintf(stderr, "usage: raftnet --client URL[,URL...] [opts] put K V | get K | status | ...\n");
        return 2;
    }
    char *save = NULL;
    for (char *t = strtok_r(urls, ",", &save); t && c.n_urls < 16; t = strtok_r(NULL, ",", &save))
        c.urls[c.n_urls++] = t;
    const char *cmd = argv[i++];
    int nargs = argc - i;
    char **args = argv + i;

    if (!client_id) {
        client_id = tn_random_u64();
    }
    if (!seq) seq = 1;
    tn_op op = {0};
    tn_req req = {0};
    tn_wr admin;
    tn_wr_init(&admin);
    req.req_id = (uint64_t)tn_mono_ms();
    req.n_ops = 1;
    req.ops = &op;
    req.read_mode = stale ? TN_READ_STALE : TN_READ_LINEARIZABLE;
    if (!strcmp(cmd, "put") && nargs == 2) {
        op.opcode = TN_OP_KV_PUT;
        op.key = (const uint8_t *)args[0];
        op.key_len = strlen(args[0]);
        op.value = (const uint8_t *)args[1];
        op.value_len = strlen(args[1]);
    } else if (!strcmp(cmd, "put-temp") && nargs == 3) {
        op.opcode = TN_OP_KV_PUT_TEMP;
        op.key = (const uint8_t *)args[0];
        op.key_len = strlen(args[0]);
        op.value = (const uint8_t *)args[1];
        op.value_len = strlen(args[1]);
        op.ttl_ms = atoll(args[2]);
    } else if (!strcmp(cmd, "remove") && nargs == 1) {
        op.opcode = TN_OP_KV_REMOVE;
        op.key = (const uint8_t *)args[0];
        op.key_len = strlen(args[0]);
    } else if (!strcmp(cmd, "get") && nargs == 1) {
        op.opcode = TN_OP_KV_GET;
        op.key = (const uint8_t *)args[0];
        op.key_len = strlen(args[0]);
    } else if (!strcmp(cmd, "scan") && nargs == 0) {
        op.opcode = TN_OP_KV_SCAN;
    } else if (!strcmp(cmd, "status") && nargs == 0) {
        op.opcode = TN_OP_STATUS;
    } else if (!strcmp(cmd, "admin") && nargs >= 1) {
        tn_admin a = {0};
        uint64_t node = 0;
        if (nargs >= 2) parse_u64(args[1], &node);
        a.node = node;
        if (!strcmp(args[0], "add-voter") && nargs == 3) a.kind = TN_ADMIN_ADD_VOTER;
        else if (!strcmp(args[0], "add-learner") && nargs == 3) a.kind = TN_ADMIN_ADD_LEARNER;
        else if (!strcmp(args[0], "remove") && nargs == 2) a.kind = TN_ADMIN_REMOVE;
        else if (!strcmp(args[0], "promote") && nargs == 2) a.kind = TN_ADMIN_PROMOTE;
        else if (!strcmp(args[0], "transfer") && nargs == 2) a.kind = TN_ADMIN_TRANSFER;
        else if (!strcmp(args[0], "snapshot") && nargs == 1) a.kind = TN_ADMIN_SNAPSHOT;
        else {
            fprintf(stderr, "client: bad admin command\n");
            return 2;
        }
        if (nargs == 3) {
            a.url = args[2];
            a.url_len = strlen(args[2]);
        }
        tn_admin_encode(&a, &admin);
        op.opcode = TN_OP_ADMIN;
        op.value = admin.p;
        op.value_len = admin.len;
    } else {
        fprintf(stderr, "client: unknown command or wrong arguments: %s\n", cmd);
        return 2;
    }
    if (op.opcode == TN_OP_STATUS) req.read_mode = TN_READ_STALE; /* answered locally anyway */
    int is_write = tn_op_is_write(op.opcode) && op.opcode != TN_OP_ADMIN;
    if (is_write) {
        req.client_id = client_id;
        req.seq = seq;
    }
    tn_wr reqb;
    tn_wr_init(&reqb);
    if (tn_req_encode(&req, &reqb) != TN_SUCCESS || reqb.oom) {
        fprintf(stderr, "client: cannot encode the request\n");
        return 2;
    }
    /* STATUS and ADMIN SNAPSHOT talk to the first URL only; everything else follows the leader. */
    int pinned = op.opcode == TN_OP_STATUS;
    int64_t deadline = tn_mono_ms() + c.timeout_ms;
    int at = 0, rc = 1, last_code = TN_UNAVAILABLE;
    char hint[1024] = "";
    while (tn_mono_ms() < deadline) {
        const char *url = hint[0] && !pinned ? hint : c.urls[at];
        uint8_t *resp = NULL;
        size_t resp_len = 0;
        int left = (int)(deadline - tn_mono_ms());
        if (left < 50) left = 50;
        if (round_trip(&c, url, reqb.p, reqb.len, left < 6000 ? left : 6000, &resp, &resp_len) != 0) {
            hint[0] = 0;
            at = (at + 1) % c.n_urls;
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        tn_resp r;
        if (tn_resp_decode(resp, resp_len, &r) != TN_SUCCESS) {
            nng_free(resp, resp_len);
            fprintf(stderr, "client: undecodable response\n");
            break;
        }
        last_code = r.code;
        if (!pinned && (r.code == TN_NOT_LEADER || r.code == TN_TIMEOUT || r.code == TN_UNAVAILABLE)) {
            if (r.code == TN_NOT_LEADER && r.leader_hint_len && r.leader_hint_len < sizeof hint &&
                strncmp(hint, (const char *)r.leader_hint, r.leader_hint_len) != 0) {
                memcpy(hint, r.leader_hint, r.leader_hint_len);
                hint[r.leader_hint_len] = 0;
            } else {
                hint[0] = 0;
                at = (at + 1) % c.n_urls;
                struct timespec ts = {0, 50 * 1000000L};
                nanosleep(&ts, NULL);
            }
            tn_resp_clear(&r);
            nng_free(resp, resp_len);
            continue;
        }
        if (r.code != TN_SUCCESS) {
            fprintf(stderr, "%s %.*s\n", tn_code_name(r.code), (int)r.message_len, (const char *)r.message);
            rc = 1;
        } else if (op.opcode == TN_OP_STATUS) {
            tn_status st;
            if (r.n_results == 1 && tn_status_decode(r.results[0].blob, r.results[0].blob_len, &st) == TN_SUCCESS) {
                print_status(&st);
                rc = 0;
            }
        } else if (op.opcode == TN_OP_ADMIN) {
            printf("OK %.*s\n", (int)r.message_len, (const char *)r.message);
            rc = 0;
        } else if (r.n_results == 1) {
            int code = r.results[0].code;
            if (op.opcode == TN_OP_KV_GET && code == TN_SUCCESS && r.results[0].n_entries == 1) {
                print_entry(&r.results[0].entries[0]);
                fprintf(stderr, "revision=%" PRIu64 "\n", r.revision);
                rc = 0;
            } else if (op.opcode == TN_OP_KV_SCAN && code == TN_SUCCESS) {
                for (size_t k = 0; k < r.results[0].n_entries; k++) {
                    const tn_entry *e = &r.results[0].entries[k];
                    if (e->is_dir) continue;
                    printf("%.*s\t%.*s\n", (int)e->key_len, (const char *)e->key, (int)e->value_len,
                           e->value ? (const char *)e->value : "");
                }
                rc = 0;
            } else if (tn_code_ok(code)) {
                printf("OK rev=%" PRIu64 " %s\n", r.revision, tn_code_name(code));
                rc = 0;
            } else {
                fprintf(stderr, "%s\n", tn_code_name(code));
                printf("%s\n", tn_code_name(code));
                rc = code == TN_NOT_FOUND ? 3 : 1;
            }
        }
        tn_resp_clear(&r);
        nng_free(resp, resp_len);
        tn_wr_free(&reqb);
        tn_wr_free(&admin);
        return rc;
    }
    fprintf(stderr, "%s no answer within %d ms\n", tn_code_name(last_code), c.timeout_ms);
    tn_wr_free(&reqb);
    tn_wr_free(&admin);
    return 1;
}

/* ------------------------------------------------------------------------------------------------ */
/* daemon                                                                                            */

/* Shutdown watchdog: the log is durable before the transport closes, so if closing the network side ever
 * hangs, ending the process loses nothing. */
static void on_alarm(int sig)
{
    static const char msg[] = "raftnet: shutdown took too long (network close hung); exiting\n";
    (void)sig;
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static void wake_main(void *arg)
{
    (void)arg;
    kill(getpid(), SIGUSR1);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--client")) return client_main(argc, argv);

    opts o;
    memset(&o, 0, sizeof o);
    char err[1024] = "";
    /* --config first, so flags on the command line override the file */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "raftnet: --config needs a file\n");
                return 2;
            }
            if (load_config(&o, argv[i + 1], err, sizeof err) != 0) {
                fprintf(stderr, "raftnet: %s\n", err);
                return 2;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "raftnet: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        const char *val = NULL;
        if (strcmp(a, "--learner") != 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "raftnet: %s needs a value\n", a);
                return 2;
            }
            val = argv[++i];
        }
        if (set_opt(&o, a + 2, val, err, sizeof err) != 0) {
            fprintf(stderr, "raftnet: %s\n", err);
            return 2;
        }
    }
    if (!o.id || !o.listen[0] || !o.data[0]) {
        fprintf(stderr, "raftnet: --id, --listen and --data are required\n");
        usage(stderr);
        return 2;
    }
    tn_node_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = o.id;
    cfg.listen_url = o.listen;
    cfg.data_dir = o.data;
    if (o.peers[0] && parse_peers(o.peers, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "raftnet: %s\n", err);
        return 2;
    }
    if (!o.peers[0]) { /* a single-node cluster */
        cfg.peers[0] = (tn_peer_addr){o.id, o.listen};
        cfg.n_peers = 1;
    }
    int self_listed = 0;
    for (size_t i = 0; i < cfg.n_peers; i++) self_listed |= cfg.peers[i].id == o.id;
    if (!self_listed && !o.learner) {
        fprintf(stderr, "raftnet: --peers must list this node (id %" PRIu64 ") unless --learner\n", o.id);
        return 2;
    }
    char token_buf[TN_ENV_MAX_TOKEN + 2];
    if (o.token_file[0]) {
        FILE *f = fopen(o.token_file, "r");
        size_t got = f ? fread(token_buf, 1, sizeof token_buf - 1, f) : 0;
        if (f) fclose(f);
        if (!f) {
            fprintf(stderr, "raftnet: %s: %s\n", o.token_file, strerror(errno));
            return 2;
        }
        while (got && (token_buf[got - 1] == '\n' || token_buf[got - 1] == '\r')) got--;
        token_buf[got] = 0;
        if (got == 0 || got > TN_ENV_MAX_TOKEN) {
            fprintf(stderr, "raftnet: %s: token must be 1..%u bytes\n", o.token_file, TN_ENV_MAX_TOKEN);
            return 2;
        }
        cfg.token = (const uint8_t *)token_buf;
        cfg.token_len = got;
    } else if (o.token[0]) {
        cfg.token = (const uint8_t *)o.token;
        cfg.token_len = strlen(o.token);
    }
    cfg.tls.cert_file = o.tls_cert[0] ? o.tls_cert : NULL;
    cfg.tls.key_file = o.tls_key[0] ? o.tls_key : NULL;
    cfg.tls.ca_file = o.tls_ca[0] ? o.tls_ca : NULL;
    cfg.tick_ms = o.tick_ms;
    cfg.election_ticks = o.election_ticks;
    cfg.heartbeat_ticks = o.heartbeat_ticks;
    cfg.snapshot_entries = o.snapshot_entries;
    cfg.learner = o.learner;
    cfg.request_timeout_ms = o.request_timeout_ms;
    cfg.max_inflight = o.max_inflight;

    /* Signals are taken synchronously by this thread: block them before any other thread exists. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    tn_node *n = NULL;
    int rc = tn_node_open(&cfg, &n, err, sizeof err);
    if (rc != TN_SUCCESS) {
        fprintf(stderr, "raftnet[%" PRIu64 "]: cannot start: %s\n", o.id, err[0] ? err : tn_code_name(rc));
        return 1;
    }
    tn_node_on_fatal(n, wake_main, NULL);
    rc = tn_node_start(n, err, sizeof err);
    if (rc != TN_SUCCESS) {
        fprintf(stderr, "raftnet[%" PRIu64 "]: cannot start: %s\n", o.id, err[0] ? err : tn_code_name(rc));
        tn_node_close(n);
        return 1;
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) continue;
        if (sig != SIGUSR1) fprintf(stderr, "raftnet[%" PRIu64 "]: %s: shutting down\n", o.id, strsignal(sig));
        break;
    }
    signal(SIGALRM, on_alarm);
    alarm(20);
    rc = tn_node_stop(n);
    tn_node_close(n);
    return rc == TN_SUCCESS ? 0 : 1;
}
