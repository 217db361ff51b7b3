/* SPDX-License-Identifier: MIT */
/* Connections to the printer, with the trust policy applied to every one. */
#include "autoconf.h"

#include "upstream.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "limits.h"
#include "log.h"
#include "net.h"
#include "service.h"
#include "trust.h"
#include "util.h"

static SSL_CTX *client_ctx;

int upstream_init(const struct pp_config *cfg, char *err, size_t errlen)
{
    client_ctx = trust_client_ctx_new(cfg, err, errlen);
    return client_ctx ? 0 : -1;
}

void upstream_cleanup(void)
{
    SSL_CTX_free(client_ctx);
    client_ctx = NULL;
}

SSL_CTX *upstream_ctx(void)
{
    return client_ctx;
}

enum upstream_result upstream_connect_port(const struct pp_config *cfg, int port,
                                           SSL_SESSION *reuse, struct pp_conn *out,
                                           const char *svc, int cancel_fd, char *err,
                                           size_t errlen)
{
    int64_t deadline = pp_now_ms() + PP_HANDSHAKE_TIMEOUT_MS;
    enum trust_result t;
    int fd, r;

    conn_init(out, -1, svc, service_next_id());
    fd = net_connect(cfg->printer_host, port, PP_CONNECT_TIMEOUT_MS, cancel_fd, err, errlen);
    if (fd < 0) {
        return strcmp(err, "cancelled") == 0 ? UP_CANCEL : UP_NET;
    }
    out->fd = fd;
    net_set_timeouts(fd, 0, PP_SEND_TIMEOUT_MS);
    out->ssl = SSL_new(client_ctx);
    if (out->ssl == NULL || SSL_set_fd(out->ssl, fd) != 1) {
        snprintf(err, errlen, "cannot create a TLS session");
        conn_close(out, false);
        return UP_TLS;
    }
    SSL_set_connect_state(out->ssl);
    /* Printers' certificates carry the serial; official clients send it as SNI. */
    SSL_set_tlsext_host_name(out->ssl, cfg->serial);
    if (reuse != NULL) {
        SSL_set_session(out->ssl, reuse);
    }
    r = conn_handshake(out, deadline, cancel_fd);
    if (r != 0) {
        unsigned long e = ERR_peek_error();
        char why[160] = "";
        if (e) {
            ERR_error_string_n(e, why, sizeof(why));
        }
        snprintf(err, errlen, "TLS handshake with %s port %d failed%s%s", cfg->printer_host,
                 port, r == PP_IO_TIMEOUT ? ": timed out" : why[0] ? ": " : "", why);
        ERR_clear_error();
        conn_close(out, false);
        return r == PP_IO_CANCEL ? UP_CANCEL : UP_TLS;
    }
    t = trust_check_ssl(cfg, out->ssl, err, errlen);
    if (t != TRUST_OK) {
        conn_close(out, true);
        return UP_TRUST;
    }
    log_debug(svc, out->id, "connected to printer %s port %d (%s%s)", cfg->printer_host, port,
              SSL_get_version(out->ssl), SSL_session_reused(out->ssl) ? ", resumed" : "");
    return UP_OK;
}

enum upstream_result upstream_connect(const struct pp_config *cfg, enum pp_svc kind,
                                      struct pp_conn *out, const char *svc, int cancel_fd,
                                      char *err, size_t errlen)
{
    return upstream_connect_port(cfg, cfg->printer_ports[kind], NULL, out, svc, cancel_fd, err,
                                 errlen);
}
