/* SPDX-License-Identifier: MIT */
/*
 * Whether to trust the printer: trust on first use (a SHA-256 pin in the state dir),
 * a CA file plus CN = serial (--printer-ca), or nothing (--insecure-printer).
 */
#ifndef PP_TRUST_H
#define PP_TRUST_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"

enum trust_result {
    TRUST_OK = 0,
    TRUST_REFUSED = -1,   /* certificate does not satisfy the policy */
    TRUST_ERROR = -2      /* could not check (I/O) */
};

/* Client context for printer connections (TLS 1.2+, policy checked after handshake). */
SSL_CTX *trust_client_ctx_new(const struct pp_config *cfg, char *err, size_t errlen);
/* Check a connected SSL's peer against the policy; err says what and how to fix. */
enum trust_result trust_check_ssl(const struct pp_config *cfg, SSL *ssl, char *err,
                                  size_t errlen);
/* Same for a leaf plus optional chain (the RTSPS path gets these from GStreamer). */
enum trust_result trust_check_cert(const struct pp_config *cfg, X509 *leaf,
                                   STACK_OF(X509) *chain, char *err, size_t errlen);
/* Path of the pin file for cfg's serial. */
void trust_pin_path(const struct pp_config *cfg, char *out, size_t len);

#endif
