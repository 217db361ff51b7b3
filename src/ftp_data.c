/* SPDX-License-Identifier: MIT */
/* FTP data sockets: port pool, accept with peer check, TLS setup on both sides. */
#include "autoconf.h"

#include "ftp_data.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "limits.h"
#include "log.h"
#include "net.h"
#include "service.h"
#include "trust.h"
#include "upstream.h"
#include "util.h"

int ftp_data_listen(const char *host, int lo, int hi, atomic_uint *cursor, int *port,
                    char *err, size_t errlen)
{
    unsigned n = (unsigned)(hi - lo + 1);
    unsigned start = atomic_fetch_add(cursor, 1);

    for (unsigned i = 0; i < n; i++) {
        int p = lo + (int)((start + i) % n);
        /* net_listen sets SO_REUSEADDR: a port whose last transfer sits in
         * TIME_WAIT is usable again at once; a port in use fails and is skipped. */
        int fd = net_listen(host, p, PP_FTP_DATA_BACKLOG, err, errlen);
        if (fd >= 0) {
            *port = p;
            return fd;
        }
    }
    snprintf(err, errlen, "no free data port in %d-%d on %s", lo, hi, host);
    return -1;
}

int ftp_data_accept(int lfd, const char *peer_host, int64_t deadline_ms, int cancel_fd,
                    const char *svc, unsigned long id)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[PP_ADDRSTR_MAX];
        int64_t left = deadline_ms - pp_now_ms();
        int fd;

        if (left <= 0 || net_wait_readable(lfd, (int)left, cancel_fd) != 1) {
            return -1;
        }
        fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        net_host_str((struct sockaddr *)&ss, host, sizeof(host));
        if (strcmp(host, peer_host) == 0) {
            return fd;
        }
        /* Someone else raced for the port: never hand them the client's file. */
        log_warn(svc, id, "refused a data connection from %s (client is %s)", host, peer_host);
        close(fd);
    }
}

void ftp_data_no_auto_retry(SSL *ssl)
{
    SSL_clear_mode(ssl, SSL_MODE_AUTO_RETRY);
}

/* Bulk transfer settings: several records per read() call, no blocking retries. */
static void ftp_data_bulk(SSL *ssl)
{
    ftp_data_no_auto_retry(ssl);
    SSL_set_read_ahead(ssl, 1);
    SSL_set_default_read_buffer_len(ssl, PP_FTP_DATA_CHUNK);
}

int ftp_data_client_tls(struct pp_conn *c, int fd, const char *svc, int64_t deadline_ms,
                        int cancel_fd)
{
    conn_init(c, fd, svc, service_next_id());
    net_tune(fd);
    net_set_timeouts(fd, 0, PP_SEND_TIMEOUT_MS);
    c->ssl = tls_server_ssl_new(fd);
    if (c->ssl == NULL) {
        return -1;
    }
    /* Anything the server writes after the handshake (TLS 1.3 tickets) turns a
     * client's close after an upload into a reset that truncates the file. */
    SSL_set_options(c->ssl, SSL_OP_NO_TICKET);
    SSL_set_num_tickets(c->ssl, 0);
    ftp_data_bulk(c->ssl);
    return conn_handshake(c, deadline_ms, cancel_fd) == 0 ? 0 : -1;
}

int ftp_data_printer_tls(const struct pp_config *cfg, struct pp_conn *c, int fd, SSL *control,
                         const char *svc, int cancel_fd, char *err, size_t errlen)
{
    int sndbuf = PP_FTP_PRINTER_SNDBUF;
    SSL_SESSION *sess;
    int r;

    conn_init(c, fd, svc, service_next_id());
    net_set_timeouts(fd, 0, PP_FTP_DATA_STALL_MS);
    /* Bound what sits in our kernel buffer for a printer that stores at tens of
     * kB/s, so its 226 follows our close within the reply timeout. */
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    c->ssl = SSL_new(upstream_ctx());
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        snprintf(err, errlen, "cannot create a TLS session");
        return -1;
    }
    SSL_set_connect_state(c->ssl);
    SSL_set_tlsext_host_name(c->ssl, cfg->serial);
    ftp_data_bulk(c->ssl);
    /* A copy: OpenSSL marks the session a connection resumed as not resumable
     * when that connection gets a new ticket or ends without close_notify, and
     * the control session must stay usable for every later transfer. */
    sess = SSL_get1_session(control);
    if (sess != NULL) {
        SSL_SESSION *copy = SSL_SESSION_dup(sess);
        SSL_SESSION_free(sess);
        if (copy != NULL) {
            SSL_set_session(c->ssl, copy);
            SSL_SESSION_free(copy);
        }
    }
    r = conn_handshake(c, pp_now_ms() + PP_HANDSHAKE_TIMEOUT_MS, cancel_fd);
    if (r != 0) {
        unsigned long e = ERR_peek_error();
        char why[160] = "";
        if (e != 0) {
            ERR_error_string_n(e, why, sizeof(why));
        }
        ERR_clear_error();
        snprintf(err, errlen, "TLS handshake on the printer's data port failed%s%s",
                 r == PP_IO_TIMEOUT ? ": timed out" : why[0] ? ": " : "", why);
        return -1;
    }
    if (trust_check_ssl(cfg, c->ssl, err, errlen) != TRUST_OK) {
        c->failed = true;
        return -1;
    }
    if (!SSL_session_reused(c->ssl)) {
        log_debug(svc, c->id, "printer data connection did not resume the control session");
    }
    return 0;
}
