/* SPDX-License-Identifier: MIT */
/* TLS I/O on blocking sockets with poll()-based deadlines and cancellation. */
#include "autoconf.h"

#include "tls.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net.h"
#include "util.h"

static pthread_mutex_t server_ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *server_ctx;

void conn_init(struct pp_conn *c, int fd, const char *svc, unsigned long id)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->svc = svc;
    c->id = id;
}

void tls_ctx_harden(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
}

void tls_server_ctx_install(SSL_CTX *ctx)
{
    SSL_CTX *old;

    pthread_mutex_lock(&server_ctx_lock);
    old = server_ctx;
    server_ctx = ctx;
    pthread_mutex_unlock(&server_ctx_lock);
    SSL_CTX_free(old);
}

SSL_CTX *tls_server_ctx_acquire(void)
{
    SSL_CTX *ctx;

    pthread_mutex_lock(&server_ctx_lock);
    ctx = server_ctx;
    if (ctx != NULL) {
        SSL_CTX_up_ref(ctx);
    }
    pthread_mutex_unlock(&server_ctx_lock);
    return ctx;
}

SSL *tls_server_ssl_new(int fd)
{
    SSL_CTX *ctx = tls_server_ctx_acquire();
    SSL *ssl;

    if (ctx == NULL) {
        return NULL;
    }
    ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);
    if (ssl != NULL && SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (ssl != NULL) {
        SSL_set_accept_state(ssl);
    }
    return ssl;
}

/* net_wait in enum pp_io terms: 1 ready, or PP_IO_TIMEOUT/CANCEL/ERR. */
static int wait_fd(int fd, short events, int timeout_ms, int cancel_fd)
{
    switch (net_wait(fd, events, timeout_ms, cancel_fd)) {
    case 1:
        return 1;
    case 0:
        return PP_IO_TIMEOUT;
    case -2:
        return PP_IO_CANCEL;
    default:
        return PP_IO_ERR;
    }
}

int conn_handshake(struct pp_conn *c, int64_t deadline_ms, int cancel_fd)
{
    int rc = PP_IO_ERR;

    net_set_nonblock(c->fd, true);
    for (;;) {
        int r, e, w;
        int64_t left;

        ERR_clear_error();
        r = SSL_do_handshake(c->ssl);
        if (r == 1) {
            rc = 0;
            break;
        }
        e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            break;
        }
        left = deadline_ms - pp_now_ms();
        if (left <= 0) {
            rc = PP_IO_TIMEOUT;
            break;
        }
        w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, (int)left, cancel_fd);
        if (w != 1) {
            rc = w;
            break;
        }
    }
    net_set_nonblock(c->fd, false);
    if (rc != 0) {
        c->failed = true;
    }
    return rc;
}

bool conn_pending(const struct pp_conn *c)
{
    return c->ssl != NULL && SSL_pending(c->ssl) > 0;
}

/* Milliseconds left until deadline_ms (-1: none), never negative. */
static int ms_left(int64_t deadline_ms)
{
    int64_t left;

    if (deadline_ms < 0) {
        return -1;
    }
    left = deadline_ms - pp_now_ms();
    return left < 0 ? 0 : (int)(left > INT32_MAX ? INT32_MAX : left);
}

/*
 * The socket stays blocking (conn_write relies on its send timeout), so SSL_read runs
 * with it switched to non-blocking: a readable socket may hold only a record that is
 * not application data (a TLS 1.3 session ticket) or part of a record, and a blocking
 * SSL_read would then wait for the peer past the deadline and the cancel fd. A relay
 * stuck that way never forwards the other side's data, which the peer waits for.
 */
int conn_read(struct pp_conn *c, void *buf, size_t len, int timeout_ms, int cancel_fd)
{
    int64_t deadline_ms = timeout_ms < 0 ? -1 : pp_now_ms() + timeout_ms;
    short want = POLLIN;

    for (;;) {
        int r, e;

        if (!conn_pending(c)) {
            int w = wait_fd(c->fd, want, ms_left(deadline_ms), cancel_fd);
            if (w != 1) {
                return w;
            }
        }
        ERR_clear_error();
        net_set_nonblock(c->fd, true);
        r = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
        net_set_nonblock(c->fd, false);
        if (r > 0) {
            c->rx += (uint64_t)r;
            return r;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            return PP_IO_EOF;
        }
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && r == 0) {
            c->failed = true; /* no close_notify came: do not send one into a dead socket */
            return PP_IO_EOF;
        }
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            /* No application data yet: wait again within the same deadline. */
            if (deadline_ms >= 0 && pp_now_ms() >= deadline_ms) {
                return PP_IO_TIMEOUT;
            }
            want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            continue;
        }
        c->failed = true;
        return PP_IO_ERR;
    }
}

int conn_read_full(struct pp_conn *c, void *buf, size_t len, int64_t deadline_ms, int cancel_fd)
{
    size_t got = 0;

    while (got < len) {
        int64_t left = deadline_ms - pp_now_ms();
        int r;

        if (left <= 0) {
            return PP_IO_TIMEOUT;
        }
        r = conn_read(c, (char *)buf + got, len - got, (int)left, cancel_fd);
        if (r <= 0) {
            /* PP_IO_EOF is 0, which would read as success: an early end is an error. */
            return r == PP_IO_EOF ? PP_IO_ERR : r;
        }
        got += (size_t)r;
    }
    return 0;
}

int conn_write(struct pp_conn *c, const void *buf, size_t len)
{
    int r;

    if (len == 0) {
        return 0;
    }
    ERR_clear_error();
    r = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (r <= 0 || (size_t)r != len) {
        c->failed = true;
        return -1;
    }
    c->tx += (uint64_t)r;
    return 0;
}

void conn_close(struct pp_conn *c, bool graceful)
{
    if (c->ssl != NULL) {
        if (graceful && !c->failed && SSL_is_init_finished(c->ssl)) {
            /* Bounded: the peer may have stopped reading. */
            net_set_timeouts(c->fd, 0, 1000);
            ERR_clear_error();
            (void)SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    ERR_clear_error();
}

void conn_abort_fd(int fd)
{
    if (fd >= 0) {
        (void)shutdown(fd, SHUT_RDWR);
    }
}
