/* helper_net.c — see helper_net.h. No main, no cmocka: linked into every unit test program. */
#include "helper_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int tn_test_free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

char *tn_test_url(char *buf, size_t len, const char *scheme)
{
    int port = tn_test_free_port();
    if (port <= 0) return NULL;
    int n = snprintf(buf, len, "%s://127.0.0.1:%d", scheme, port);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

static int run(const char *dir, const char *cmd)
{
    char line[2048];
    snprintf(line, sizeof line, "cd '%s' && %s >/dev/null 2>&1", dir, cmd);
    return system(line) == 0 ? 0 : -1;
}

int tn_test_make_certs(const char *dir)
{
    static const char *const steps[] = {
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
        " -keyout ca.key -out ca.pem -subj /CN=tarn-test-ca",
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
        " -keyout other-ca.key -out other-ca.pem -subj /CN=tarn-other-ca",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key"
        " -out server.csr -subj /CN=127.0.0.1",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out server.pem",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key"
        " -out client.csr -subj /CN=tarn-client",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem",
    };
    if (access("/usr/bin/openssl", X_OK) != 0) return -1;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (run(dir, steps[i]) != 0) return -1;
    return 0;
}

int tn_test_tmpdir(char *buf, size_t len)
{
    if (snprintf(buf, len, "/tmp/tarn-test-XXXXXX") >= (int)len) return -1;
    return mkdtemp(buf) ? 0 : -1;
}

void tn_test_rmdir(const char *dir)
{
    char cmd[1024];
    if (strncmp(dir, "/tmp/tarn-test-", 15) != 0) return; /* only what tn_test_tmpdir made */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "helper_net: could not remove %s\n", dir);
}

long long tn_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
