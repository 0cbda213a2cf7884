/* tls.c — TLS configuration of nng dialers and listeners from PEM files (see tls.h). */
#include "tls.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/supplemental/tls/tls.h>

#include "tn_code.h"

int tn_url_is_tls(const char *url) { return url && strncmp(url, "tls+tcp://", 10) == 0; }

/* Reads a whole file into a NUL-terminated malloc'd buffer (for PEM); NULL on error. */
static char *read_text_file(const char *path)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) goto fail;
    long n = ftell(f);
    if (n < 0 || n > (16L << 20) || fseek(f, 0, SEEK_SET) != 0) goto fail;
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) goto fail;
    buf[n] = 0;
    fclose(f);
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

/* Host part of scheme://host:port (brackets of an IPv6 literal removed), into out. */
static int url_host(const char *url, char *out, size_t out_len)
{
    const char *h = strstr(url, "://");
    if (!h) return -1;
    h += 3;
    const char *end;
    if (*h == '[') {
        h++;
        end = strchr(h, ']');
    } else {
        end = strrchr(h, ':');
    }
    if (!end || end == h || (size_t)(end - h) >= out_len) return -1;
    memcpy(out, h, (size_t)(end - h));
    out[end - h] = 0;
    return 0;
}

/* Loads cert+key (both or neither) and/or the CA into cfg. */
static int tls_load(nng_tls_config *cfg, const tn_tls_opts *tls, char *err, size_t err_len)
{
    int rc = TN_BAD_REQUEST;
    char *cert = NULL, *key = NULL, *ca = NULL;
    int rv;
    if (tls->cert_file && tls->key_file) {
        cert = read_text_file(tls->cert_file);
        key = read_text_file(tls->key_file);
        if (!cert || !key) {
            tn_errf(err, err_len, "cannot read TLS %s file '%s'", cert ? "key" : "certificate",
                    cert ? tls->key_file : tls->cert_file);
            goto fail;
        }
        if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
            tn_errf(err, err_len, "bad TLS certificate/key '%s'/'%s': %s", tls->cert_file, tls->key_file,
                    nng_strerror(rv));
            goto fail;
        }
    }
    if (tls->ca_file) {
        if (!(ca = read_text_file(tls->ca_file))) {
            tn_errf(err, err_len, "cannot read TLS CA file '%s'", tls->ca_file);
            goto fail;
        }
        if ((rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0) {
            tn_errf(err, err_len, "bad TLS CA file '%s': %s", tls->ca_file, nng_strerror(rv));
            goto fail;
        }
    }
    rc = TN_SUCCESS;
fail:
    free(cert);
    free(key);
    free(ca);
    return rc;
}

int tn_tls_setup_dialer(nng_dialer d, const char *url, const tn_tls_opts *tls, char *err, size_t err_len)
{
    nng_tls_config *cfg = NULL;
    char host[256];
    int rc = TN_BAD_REQUEST, rv;
    if (!tn_url_is_tls(url)) return TN_SUCCESS;
    if (!tls || !tls->ca_file) {
        tn_errf(err, err_len, "%s: a tls+tcp:// URL needs a CA file to verify the server", url);
        goto fail;
    }
    if ((tls->cert_file != NULL) != (tls->key_file != NULL)) {
        tn_errf(err, err_len, "TLS needs both a certificate and a key file, or neither");
        goto fail;
    }
    if (url_host(url, host, sizeof host) != 0) {
        tn_errf(err, err_len, "%s: cannot find the host name in the URL", url);
        goto fail;
    }
    if (nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT) != 0) {
        rc = TN_NOMEM;
        tn_errf(err, err_len, "out of memory");
        goto fail;
    }
    if ((rc = tls_load(cfg, tls, err, err_len)) != TN_SUCCESS) goto fail;
    rc = TN_BAD_REQUEST;
    if ((rv = nng_tls_config_server_name(cfg, host)) != 0 ||
        (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
        (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg)) != 0) {
        tn_errf(err, err_len, "%s: TLS setup failed: %s", url, nng_strerror(rv));
        goto fail;
    }
    rc = TN_SUCCESS;
fail:
    if (cfg) nng_tls_config_free(cfg); /* the dialer holds its own reference */
    return rc;
}

int tn_tls_setup_listener(nng_listener l, const char *url, const tn_tls_opts *tls, char *err, size_t err_len)
{
    nng_tls_config *cfg = NULL;
    int rc = TN_BAD_REQUEST, rv;
    if (!tn_url_is_tls(url)) return TN_SUCCESS;
    if (!tls->cert_file || !tls->key_file) {
        tn_errf(err, err_len, "%s: listening on tls+tcp:// needs a certificate and a key file", url);
        goto fail;
    }
    if (tls->require_client_cert && !tls->ca_file) {
        tn_errf(err, err_len, "requiring client certificates needs a CA file");
        goto fail;
    }
    if (nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER) != 0) {
        rc = TN_NOMEM;
        tn_errf(err, err_len, "out of memory");
        goto fail;
    }
    if ((rc = tls_load(cfg, tls, err, err_len)) != TN_SUCCESS) goto fail;
    rc = TN_BAD_REQUEST;
    nng_tls_auth_mode mode = tls->require_client_cert ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE;
    if ((rv = nng_tls_config_auth_mode(cfg, mode)) != 0 ||
        (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg)) != 0) {
        tn_errf(err, err_len, "%s: TLS setup failed: %s", url, nng_strerror(rv));
        goto fail;
    }
    rc = TN_SUCCESS;
fail:
    if (cfg) nng_tls_config_free(cfg);
    return rc;
}

