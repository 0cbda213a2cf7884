/* tls.h — TLS for nng dialers and listeners, configured from PEM files; shared by the node's transport and
 * the cluster client. Functions return tn_code values and write a one-line reason to err[err_len]. Any
 * thread; the nng objects passed in must not be started yet.
 */
#ifndef TARN_TLS_H
#define TARN_TLS_H

#include <stddef.h>

#include <nng/nng.h>

/* TLS files (PEM). Used only for tls+tcp:// URLs; ignored for tcp://. */
typedef struct tn_tls_opts {
    const char *cert_file; /* own certificate: required to listen on tls+tcp; optional when dialing */
    const char *key_file;  /* its private key (unencrypted) */
    const char *ca_file;   /* CA that signed the other side: required to dial tls+tcp */
    int require_client_cert; /* listener: reject connections without a certificate signed by ca_file */
} tn_tls_opts;

/* Configures TLS on a dialer that is not started yet when url is tls+tcp:// (no-op for other URLs):
 * verifies the server against tls->ca_file (required), presents cert/key when both are given, and checks
 * the server name against the URL's host. SUCCESS or BAD_REQUEST/NOMEM with a reason in err. */
int tn_tls_setup_dialer(nng_dialer d, const char *url, const tn_tls_opts *tls, char *err, size_t err_len);
/* 1 if url starts with "tls+tcp://". */
int tn_url_is_tls(const char *url);

/* Configures TLS on a listener that is not started yet when url is tls+tcp:// (no-op for other URLs):
 * presents tls->cert_file/key_file (required), and with require_client_cert verifies clients against
 * tls->ca_file. SUCCESS or BAD_REQUEST/NOMEM with a reason in err. */
int tn_tls_setup_listener(nng_listener l, const char *url, const tn_tls_opts *tls, char *err, size_t err_len);

#endif
