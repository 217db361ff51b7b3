/* SPDX-License-Identifier: MIT */
/*
 * The one way to reach the printer: resolve its name again, connect with a deadline,
 * TLS with SNI = serial, and the trust policy. Every service's upstream uses it.
 */
#ifndef PP_UPSTREAM_H
#define PP_UPSTREAM_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "config.h"
#include "tls.h"

enum upstream_result {
    UP_OK = 0,
    UP_NET = -1,     /* resolve/connect failed: printer off or unreachable */
    UP_TLS = -2,     /* handshake failed */
    UP_TRUST = -3,   /* certificate refused by the policy: retrying will not help */
    UP_CANCEL = -4   /* cancel_fd fired */
};

/* Build the shared client context (after config). 0 or -1. */
int upstream_init(const struct pp_config *cfg, char *err, size_t errlen);
void upstream_cleanup(void);
SSL_CTX *upstream_ctx(void);

/*
 * Connect to the printer's port for service kind (cfg->printer_ports). The result
 * is a connected, verified pp_conn labelled with svc/id for logs. reuse, when not
 * NULL, is offered for TLS session resumption (FTP data connections).
 */
enum upstream_result upstream_connect(const struct pp_config *cfg, enum pp_svc kind,
                                      struct pp_conn *out, const char *svc, int cancel_fd,
                                      char *err, size_t errlen);
enum upstream_result upstream_connect_port(const struct pp_config *cfg, int port,
                                           SSL_SESSION *reuse, struct pp_conn *out,
                                           const char *svc, int cancel_fd, char *err,
                                           size_t errlen);

#endif
