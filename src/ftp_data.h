/* SPDX-License-Identifier: MIT */
/*
 * FTP data connections: the passive-port pool (--ftp-data-ports), accepting and
 * connecting client-side data sockets, the TLS settings data connections need on
 * each side (no session tickets towards clients; control-session reuse towards
 * the printer).
 */
#ifndef PP_FTP_DATA_H
#define PP_FTP_DATA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "config.h"
#include "tls.h"

/*
 * Listen on host at the first free port of lo..hi, starting at a rotating cursor so
 * concurrent sessions spread out. Busy ports are skipped. fd or -1 (err says why).
 */
int ftp_data_listen(const char *host, int lo, int hi, atomic_uint *cursor, int *port,
                    char *err, size_t errlen);
/*
 * Accept one connection on lfd from peer_host before deadline_ms; connections from
 * other addresses are refused (and logged) without ending the wait. fd or -1.
 */
int ftp_data_accept(int lfd, const char *peer_host, int64_t deadline_ms, int cancel_fd,
                    const char *svc, unsigned long id);
/*
 * A read woken by poll() must not block when the record was not application data
 * (TLS 1.3 tickets the printer sends after the handshake): SSL_read then reports
 * "want read" instead of waiting on the blocking socket for the next record.
 */
void ftp_data_no_auto_retry(SSL *ssl);
/* Client side, TLS server role: accept handshake with tickets disabled. 0 or -1. */
int ftp_data_client_tls(struct pp_conn *c, int fd, const char *svc, int64_t deadline_ms,
                        int cancel_fd);
/*
 * Printer side, TLS client role on an already connected fd, resuming the control
 * connection's session (printers demand it), trust policy applied. 0 or -1.
 */
int ftp_data_printer_tls(const struct pp_config *cfg, struct pp_conn *c, int fd, SSL *control,
                         const char *svc, int cancel_fd, char *err, size_t errlen);

#endif
