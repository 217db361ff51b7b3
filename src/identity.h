/* SPDX-License-Identifier: MIT */
/*
 * The proxy's own TLS identity: a small local CA (shared by every printer in a state
 * directory) and a server certificate per printer serial that the CA signs. Generated
 * with the OpenSSL API on first start, reused afterwards, renewed before expiry.
 */
#ifndef PP_IDENTITY_H
#define PP_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"

struct tls_identity {
    char ca_cert[PP_PATH_MAX];
    char ca_key[PP_PATH_MAX];
    char cert[PP_PATH_MAX];   /* server certificate followed by the CA */
    char key[PP_PATH_MAX];
    bool custom;              /* --cert/--key given: nothing generated */
};

void identity_paths(const struct pp_config *cfg, struct tls_identity *id);
/* Create the state dir, generate or renew what is missing or stale. */
int identity_ensure(const struct pp_config *cfg, struct tls_identity *id, char *err,
                    size_t errlen);
/* Only the CA (for --print-ca). */
int identity_ensure_ca(const struct pp_config *cfg, struct tls_identity *id, char *err,
                       size_t errlen);
/* -n: existing files readable and consistent; missing generated files are fine. */
int identity_check(const struct pp_config *cfg, char *err, size_t errlen);
/* A server SSL_CTX (TLS 1.2+) serving id's certificate chain and key. */
SSL_CTX *identity_server_ctx(const struct tls_identity *id, char *err, size_t errlen);
/* SHA-256 fingerprint "AA:BB:..." of the first certificate in a PEM file. */
int identity_fingerprint(const char *pem_path, char *out, size_t outlen);

#endif
