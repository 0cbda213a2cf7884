/* helper_net.h — small network helpers for unit tests (linked into every unit test program).
 *
 * tn_test_free_port: a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back,
 *   close), or -1. Another process may take it before the caller binds it; tests accept that tiny risk.
 * tn_test_url: "tcp://127.0.0.1:<free port>" (scheme given) into buf; returns buf, or NULL.
 * tn_test_make_certs: creates in dir a throwaway CA (ca.pem), a server cert for CN=127.0.0.1
 *   (server.pem/server.key) and a client cert (client.pem/client.key) signed by it, and an unrelated CA
 *   (other-ca.pem). Returns 0, or -1 if /usr/bin/openssl is missing or fails.
 * tn_test_tmpdir / tn_test_rmdir: mkdtemp under /tmp, and rm -rf of such a directory.
 */
#ifndef TARN_HELPER_NET_H
#define TARN_HELPER_NET_H

#include <stddef.h>

int tn_test_free_port(void);
char *tn_test_url(char *buf, size_t len, const char *scheme);
int tn_test_make_certs(const char *dir);
int tn_test_tmpdir(char *buf, size_t len);
void tn_test_rmdir(const char *dir);
/* Monotonic milliseconds. */
long long tn_test_now_ms(void);

#endif
