/* SPDX-License-Identifier: MIT */
/*
 * TLS connections: a socket plus its SSL*, owned by exactly one thread, with reads
 * that respect a cancel fd and deadlines, and closes that always send close_notify.
 * Also the server context shared by every listener (swappable on SIGHUP).
 */
#ifndef PP_TLS_H
#define PP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct pp_conn {
    int fd;
    SSL *ssl;
    const char *svc;      /* for log lines */
    unsigned long id;     /* connection id for log lines */
    uint64_t rx, tx;      /* application bytes */
    bool failed;          /* a fatal error: no close_notify may follow */
};

enum pp_io {
    PP_IO_EOF = 0,        /* orderly end (close_notify or TCP FIN) */
    PP_IO_ERR = -1,
    PP_IO_TIMEOUT = -2,
    PP_IO_CANCEL = -3,
};

void conn_init(struct pp_conn *c, int fd, const char *svc, unsigned long id);
/*
 * Run the handshake (server or client side of c->ssl) until deadline_ms (monotonic),
 * aborting when cancel_fd is readable. 0 on success; the socket stays blocking.
 */
int conn_handshake(struct pp_conn *c, int64_t deadline_ms, int cancel_fd);
/* Bytes read (> 0), or an enum pp_io value. timeout_ms < 0 waits forever. */
int conn_read(struct pp_conn *c, void *buf, size_t len, int timeout_ms, int cancel_fd);
/* Read exactly len bytes before the deadline: 0, or a negative enum pp_io value (an
 * orderly end before len bytes is PP_IO_ERR). */
int conn_read_full(struct pp_conn *c, void *buf, size_t len, int64_t deadline_ms, int cancel_fd);
/* Write all of buf (one SSL_write: records of at most 16 KiB); 0 or -1. */
int conn_write(struct pp_conn *c, const void *buf, size_t len);
/* Data buffered inside TLS that poll() cannot see. */
bool conn_pending(const struct pp_conn *c);
/* close_notify (when graceful and the session is healthy), then free and close. */
void conn_close(struct pp_conn *c, bool graceful);
/* Shut the socket down from another thread so a blocked owner wakes up. */
void conn_abort_fd(int fd);

/* Server context shared by all listeners; install takes ownership. */
void tls_server_ctx_install(SSL_CTX *ctx);
/* A reference the caller frees with SSL_CTX_free, or NULL before install. */
SSL_CTX *tls_server_ctx_acquire(void);
/* A new server-side SSL for fd from the current context, or NULL. */
SSL *tls_server_ssl_new(int fd);
/* Common hardening for both roles: TLS 1.2+, no compression, no renegotiation. */
void tls_ctx_harden(SSL_CTX *ctx);

#endif
