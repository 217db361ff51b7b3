/* SPDX-License-Identifier: MIT */
/*
 * The printer trust policy. The pin is written with an exclusive link so that the
 * services and probes racing to be first agree on one fingerprint.
 */
#include "autoconf.h"

#include "trust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include "log.h"
#include "tls.h"
#include "util.h"

#define PIN_PREFIX  "sha256:"
#define PIN_HEX_LEN (2 * 32)
#define PIN_FILE_MAX 256

void trust_pin_path(const struct pp_config *cfg, char *out, size_t len)
{
    snprintf(out, len, "%s/%s.printer-pin", cfg->state_dir, cfg->serial);
}

SSL_CTX *trust_client_ctx_new(const struct pp_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    (void)cfg;
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create a TLS client context");
        return NULL;
    }
    tls_ctx_harden(ctx);
    /* The chain is checked after the handshake by trust_check_ssl, with a message
     * that says what changed; printers present self-made certificates. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    return ctx;
}

static int fingerprint_hex(X509 *x, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (X509_digest(x, EVP_sha256(), md, &n) != 1 || len < 2 * (size_t)n + 1) {
        return -1;
    }
    for (unsigned int i = 0; i < n; i++) {
        snprintf(out + 2 * i, len - 2 * i, "%02x", md[i]);
    }
    return 0;
}

static enum trust_result check_pin(const struct pp_config *cfg, X509 *leaf, char *err,
                                   size_t errlen)
{
    char path[PP_PATH_MAX + 64];
    char fp[PIN_HEX_LEN + 1];
    char line[PIN_FILE_MAX];
    char *stored = NULL;

    if (fingerprint_hex(leaf, fp, sizeof(fp)) != 0) {
        snprintf(err, errlen, "cannot fingerprint the printer certificate");
        return TRUST_ERROR;
    }
    trust_pin_path(cfg, path, sizeof(path));
    for (int attempt = 0; attempt < 2; attempt++) {
        if (pp_read_file(path, &stored, NULL, PIN_FILE_MAX) == 0) {
            const char *hex = stored;
            size_t n;

            if (strncmp(hex, PIN_PREFIX, strlen(PIN_PREFIX)) == 0) {
                hex += strlen(PIN_PREFIX);
            }
            n = strspn(hex, "0123456789abcdefABCDEF");
            enum trust_result r =
                (n == PIN_HEX_LEN && strncasecmp(hex, fp, PIN_HEX_LEN) == 0) ? TRUST_OK
                                                                              : TRUST_REFUSED;
            if (r == TRUST_REFUSED) {
                snprintf(err, errlen,
                         "printer certificate changed: pinned sha256 %.*s..., the printer now "
                         "presents %.16s...; if the printer was replaced or reset, delete %s "
                         "(or use --printer-ca) and restart", 16, hex, fp, path);
            }
            free(stored);
            return r;
        }
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot read the printer pin %s: %s", path, strerror(errno));
            return TRUST_ERROR;
        }
        snprintf(line, sizeof(line), "%s%s\n", PIN_PREFIX, fp);
        if (pp_mkdir_p(cfg->state_dir, 0700) == 0 &&
            pp_write_file_atomic(path, line, strlen(line), 0600, true) == 0) {
            log_info(NULL, 0, "trusting the printer on first use: pinned sha256:%s in %s", fp,
                     path);
            return TRUST_OK;
        }
        if (errno != EEXIST) {
            snprintf(err, errlen, "cannot write the printer pin %s: %s", path, strerror(errno));
            return TRUST_ERROR;
        }
        /* Someone else pinned first: compare against theirs. */
    }
    snprintf(err, errlen, "cannot settle the printer pin %s", path);
    return TRUST_ERROR;
}

static enum trust_result check_ca(const struct pp_config *cfg, X509 *leaf, STACK_OF(X509) *chain,
                                  char *err, size_t errlen)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    enum trust_result r = TRUST_REFUSED;
    char cn[256] = "";

    if (store == NULL || vctx == NULL ||
        X509_STORE_load_file(store, cfg->printer_ca) != 1) {
        snprintf(err, errlen, "cannot load --printer-ca %s", cfg->printer_ca);
        r = TRUST_ERROR;
        goto out;
    }
    if (X509_STORE_CTX_init(vctx, store, leaf, chain) != 1) {
        snprintf(err, errlen, "cannot set up certificate verification");
        r = TRUST_ERROR;
        goto out;
    }
    if (X509_verify_cert(vctx) != 1) {
        snprintf(err, errlen, "printer certificate is not signed by --printer-ca %s: %s",
                 cfg->printer_ca,
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
        goto out;
    }
    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
    if (strcmp(cn, cfg->serial) != 0) {
        snprintf(err, errlen,
                 "printer certificate is for CN=%s, not the serial %s: check --serial-number",
                 cn, cfg->serial);
        goto out;
    }
    r = TRUST_OK;
out:
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return r;
}

enum trust_result trust_check_cert(const struct pp_config *cfg, X509 *leaf,
                                   STACK_OF(X509) *chain, char *err, size_t errlen)
{
    if (cfg->insecure_printer) {
        return TRUST_OK;
    }
    if (leaf == NULL) {
        snprintf(err, errlen, "the printer presented no certificate");
        return TRUST_REFUSED;
    }
    if (cfg->printer_ca[0]) {
        return check_ca(cfg, leaf, chain, err, errlen);
    }
    return check_pin(cfg, leaf, err, errlen);
}

enum trust_result trust_check_ssl(const struct pp_config *cfg, SSL *ssl, char *err,
                                  size_t errlen)
{
    return trust_check_cert(cfg, SSL_get0_peer_certificate(ssl), SSL_get_peer_cert_chain(ssl),
                            err, errlen);
}
