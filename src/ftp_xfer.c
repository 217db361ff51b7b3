/* SPDX-License-Identifier: MIT */
/*
 * One FTP transfer through the proxy: the printer's data connection (TLS resuming
 * its control session), the client's data connection (accepted or connected, TLS
 * without tickets), the byte pump between them while both control connections are
 * watched, and the ending: the printer's final reply reaches the client only after
 * the client's data connection is completely written and closed.
 */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftp_data.h"
#include "ftp_session.h"
#include "limits.h"
#include "log.h"
#include "net.h"
#include "util.h"

#include <openssl/err.h>

enum xfer_end {
    X_DONE,         /* the source ended the data (close_notify or FIN) */
    X_CLIENT_DATA,  /* the client's data connection failed or closed early */
    X_PRINTER_DATA, /* the printer's data connection failed or closed early */
    X_ABORT,        /* the client sent ABOR */
    X_CLIENT_GONE,  /* the client's control connection ended */
    X_UP_GONE,      /* the printer's control connection ended */
    X_STALL,        /* nothing moved for PP_FTP_DATA_STALL_MS */
    X_CANCEL        /* the service is stopping */
};

struct xfer {
    bool upload;
    struct pp_conn *src, *dst;
    struct ftp_reply final;   /* the printer's reply that ends the transfer */
    bool have_final;
    pp_ftp_cmd cmd;           /* a client command read during the transfer */
    char buf[PP_FTP_DATA_CHUNK]; /* records read from src ... */
    size_t pending;           /* ... not yet accepted by dst */
    int src_end;              /* how src ended (X_DONE or a failure) once it has, else -1 */
};

static bool client_side(const struct xfer *x, const struct pp_conn *c)
{
    return x->upload ? c == x->src : c == x->dst;
}

/* Open the client's side: accept (passive) or connect (active), then TLS. */
static int open_client_data(struct ftp_session *s)
{
    int64_t deadline = pp_now_ms() + PP_FTP_DATA_ACCEPT_MS;
    int fd;

    if (s->mode == FTP_DATA_PASV) {
        fd = ftp_data_accept(s->listen_fd, s->c->peer_host, deadline, s->cancel_fd,
                             s->svc->name, s->c->conn.id);
        ftp_track(s, FTP_FD_LISTEN, -1);
        close(s->listen_fd);
        s->listen_fd = -1;
    } else {
        char host[PP_ADDRSTR_MAX], err[256];
        int port = ntohs(s->active.ss_family == AF_INET ?
                         ((struct sockaddr_in *)&s->active)->sin_port :
                         ((struct sockaddr_in6 *)&s->active)->sin6_port);
        net_host_str((struct sockaddr *)&s->active, host, sizeof(host));
        fd = net_connect(host, port, PP_CONNECT_TIMEOUT_MS, s->cancel_fd, err, sizeof(err));
        if (fd < 0) {
            log_info(s->svc->name, s->c->conn.id, "active data connection: %s", err);
        }
    }
    if (fd < 0) {
        return -1;
    }
    ftp_track(s, FTP_FD_CLDATA, fd);
    if (ftp_data_client_tls(&s->cldata, fd, s->svc->name, deadline, s->cancel_fd) != 0) {
        log_info(s->svc->name, s->c->conn.id, "client data TLS handshake failed");
        return -1;
    }
    return 0;
}

/* A command from the client while data flows: ABOR ends it, NOOP is answered. */
static int client_command(struct ftp_session *s, struct xfer *x)
{
    int r = ftp_read_command(s, &x->cmd, PP_FTP_ABOR_REPLY_MS);

    if (r == FTP_CMD_SKIP) {
        return -1;
    }
    if (r != FTP_CMD_OK) {
        return X_CLIENT_GONE;
    }
    if (strcmp(x->cmd.verb, "ABOR") == 0) {
        return X_ABORT;
    }
    if (strcmp(x->cmd.verb, "NOOP") == 0) {
        r = ftp_ctl_reply(&s->c->conn, PP_FTP_200_OK, "NOOP ok.");
    } else {
        r = ftp_ctl_reply(&s->c->conn, PP_FTP_503_BAD_SEQUENCE,
                          "A transfer is in progress; wait for it or send ABOR.");
    }
    return r == 0 ? -1 : X_CLIENT_GONE;
}

static enum xfer_end side_failed(const struct xfer *x, const struct pp_conn *c)
{
    return client_side(x, c) ? X_CLIENT_DATA : X_PRINTER_DATA;
}

/*
 * Write what is pending to dst without blocking (the socket is non-blocking so
 * an ABOR or a hang-up is seen while a slow reader holds the data back).
 * -1 to go on, or how the transfer ended.
 */
static int flush_pending(struct xfer *x)
{
    int r, e;

    if (x->pending == 0) {
        return -1;
    }
    ERR_clear_error();
    r = SSL_write(x->dst->ssl, x->buf, (int)x->pending);
    if (r > 0) {
        x->dst->tx += (uint64_t)r;
        x->pending = 0;
        return -1;
    }
    e = SSL_get_error(x->dst->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        return -1; /* retried with the same buffer when poll says writable */
    }
    x->dst->failed = true;
    return side_failed(x, x->dst);
}

/*
 * One SSL_read on a data connection whose socket is non-blocking: bytes (> 0),
 * PP_IO_TIMEOUT when nothing is there now, PP_IO_EOF or PP_IO_ERR. Unlike
 * conn_read it never polls first: with read-ahead, whole records may wait inside
 * OpenSSL where poll() cannot see them (SSL_has_pending tells).
 */
static int data_read(struct pp_conn *c, void *buf, size_t len)
{
    int n, e;

    ERR_clear_error();
    n = SSL_read(c->ssl, buf, (int)len);
    if (n > 0) {
        c->rx += (uint64_t)n;
        return n;
    }
    e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return PP_IO_TIMEOUT;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        return PP_IO_EOF;
    }
    c->failed = true;
    return e == SSL_ERROR_SYSCALL && n == 0 && ERR_peek_error() == 0 ? PP_IO_EOF : PP_IO_ERR;
}

/* Read what src has now (several records at once) and pass it on. */
static int fill_pending(struct xfer *x)
{
    while (x->pending < sizeof(x->buf)) {
        int n = data_read(x->src, x->buf + x->pending, sizeof(x->buf) - x->pending);
        if (n == PP_IO_TIMEOUT) {
            break;
        }
        if (n <= 0) {
            /* Bytes read before the end still go out first. */
            x->src_end = n == PP_IO_EOF ? X_DONE : side_failed(x, x->src);
            break;
        }
        x->pending += (size_t)n;
    }
    return flush_pending(x);
}

/* The destination spoke: a TLS post-handshake message, or it closed early. */
static int check_dst(struct xfer *x)
{
    char junk[PP_FTP_LINE_BUF];
    int n;

    do {
        n = data_read(x->dst, junk, sizeof(junk));
    } while (n > 0);
    if (n == PP_IO_EOF || n == PP_IO_ERR) {
        return side_failed(x, x->dst);
    }
    return -1;
}

/* One round of the pump: -1 to go on, or how the transfer ended. */
static int pump_round(struct ftp_session *s, struct xfer *x)
{
    struct pollfd p[5] = {
        { .fd = x->pending || x->src_end >= 0 ? -1 : x->src->fd, .events = POLLIN },
        { .fd = x->dst->fd, .events = (short)(x->pending ? POLLOUT | POLLIN : POLLIN) },
        { .fd = x->have_final ? -1 : s->upconn.fd, .events = POLLIN },
        { .fd = s->c->conn.fd, .events = POLLIN },
        { .fd = s->cancel_fd, .events = POLLIN },
    };
    bool src_ready = !x->pending && x->src_end < 0 && SSL_has_pending(x->src->ssl);
    bool up_ready = !x->have_final && ftp_ctl_buffered(&s->up);
    bool cl_ready = ftp_ctl_buffered(&s->cl);
    int r;

    if (!src_ready && !up_ready && !cl_ready) {
        r = poll(p, 5, PP_FTP_DATA_STALL_MS);
        if (r < 0) {
            return errno == EINTR ? -1 : X_STALL;
        }
        if (r == 0) {
            return X_STALL;
        }
        if (p[4].revents & POLLIN) {
            return X_CANCEL;
        }
    }
    if (x->pending && p[1].revents != 0 && (r = flush_pending(x)) >= 0) {
        return r;
    }
    if (!x->pending && x->src_end < 0 && (src_ready || p[0].revents != 0) &&
        (r = fill_pending(x)) >= 0) {
        return r;
    }
    if (!x->pending && x->src_end >= 0) {
        return x->src_end;
    }
    /* Read what dst sends even while a write waits: left unread, a printer's
     * post-handshake tickets turn our close into a reset that cuts the upload. */
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && (r = check_dst(x)) >= 0) {
        return r;
    }
    if (up_ready || p[2].revents != 0) {
        /* Usually 226 racing the data's end, or 426/451: keep it for later. */
        r = ftp_ctl_poll_in(&s->up);
        if (r != PP_IO_TIMEOUT && (r <= 0 || ftp_ctl_read_reply(&s->up, NULL, &x->final,
                                                                PP_FTP_ABOR_REPLY_MS,
                                                                s->cancel_fd) < 0)) {
            return X_UP_GONE;
        }
        x->have_final = r != PP_IO_TIMEOUT;
    }
    if (cl_ready || p[3].revents != 0) {
        r = ftp_ctl_poll_in(&s->cl);
        if (r == PP_IO_TIMEOUT) {
            return -1;
        }
        return r <= 0 ? X_CLIENT_GONE : client_command(s, x);
    }
    return -1;
}

static enum xfer_end pump(struct ftp_session *s, struct xfer *x)
{
    int r;

    net_set_nonblock(x->src->fd, true);
    net_set_nonblock(x->dst->fd, true);
    do {
        r = pump_round(s, x);
    } while (r < 0);
    /* Closing (close_notify) and later replies use blocking I/O with timeouts. */
    net_set_nonblock(x->src->fd, false);
    net_set_nonblock(x->dst->fd, false);
    return (enum xfer_end)r;
}

/* The printer's final reply for this transfer (held or read now); <0 if lost. */
static int final_reply(struct ftp_session *s, struct xfer *x, int timeout_ms)
{
    if (!x->have_final) {
        int code = ftp_ctl_read_reply(&s->up, NULL, &x->final, timeout_ms, s->cancel_fd);
        if (code < 0) {
            return code;
        }
        x->have_final = true;
    }
    return x->final.code;
}

static int forward_final(struct ftp_session *s, struct xfer *x)
{
    if (conn_write(&s->c->conn, x->final.raw, x->final.raw_len) != 0) {
        return -1;
    }
    return x->final.code == PP_FTP_421_UNAVAILABLE ? -1 : 0;
}

static void close_both(struct ftp_session *s)
{
    ftp_close_data(s, &s->cldata, FTP_FD_CLDATA, false);
    ftp_close_data(s, &s->updata, FTP_FD_UPDATA, false);
}

static int printer_lost(struct ftp_session *s)
{
    (void)ftp_ctl_reply(&s->c->conn, PP_FTP_426_CONN_CLOSED,
                        "Connection to the printer lost; transfer aborted.");
    return -1;
}

/* ABOR: both data connections go, then the transfer's reply and ABOR's reply. */
static int finish_abort(struct ftp_session *s, struct xfer *x)
{
    close_both(s);
    if (ftp_ctl_send(&s->upconn, "ABOR") != 0 ||
        final_reply(s, x, PP_FTP_ABOR_REPLY_MS) < 0 || forward_final(s, x) != 0) {
        return printer_lost(s);
    }
    x->have_final = false;
    if (final_reply(s, x, PP_FTP_ABOR_REPLY_MS) < 0) {
        return printer_lost(s);
    }
    return forward_final(s, x);
}

/*
 * close_notify to the printer, then read until it closes too: whatever it sent
 * (tickets) is consumed, so our close cannot become a reset that truncates the
 * file, and its end means it has read everything.
 */
static void end_upload_to_printer(struct ftp_session *s)
{
    struct pp_conn *d = &s->updata;
    int64_t deadline = pp_now_ms() + PP_FTP_DATA_STALL_MS;
    char junk[PP_FTP_LINE_BUF];

    if (!d->failed) {
        ERR_clear_error();
        if (SSL_shutdown(d->ssl) < 0) {
            d->failed = true;
        }
    }
    net_set_nonblock(d->fd, true);
    while (!d->failed) {
        int64_t left = deadline - pp_now_ms();
        int r = data_read(d, junk, sizeof(junk));
        if (r == PP_IO_EOF || r == PP_IO_ERR || left <= 0) {
            break;
        }
        if (r == PP_IO_TIMEOUT && !SSL_has_pending(d->ssl) &&
            net_wait_readable(d->fd, (int)left, s->cancel_fd) != 1) {
            break;
        }
    }
    ftp_close_data(s, d, FTP_FD_UPDATA, false);
}

static int finish_done(struct ftp_session *s, struct xfer *x)
{
    int code;

    if (x->upload) {
        /* The printer must see the end of the file before it can answer 226. */
        end_upload_to_printer(s);
        ftp_close_data(s, &s->cldata, FTP_FD_CLDATA, true);
    } else {
        /* Everything is written; close the way the printer closed (a missing
         * close_notify is passed on, so a cut-off download stays visible). */
        ftp_close_data(s, &s->cldata, FTP_FD_CLDATA, !s->updata.failed);
        ftp_close_data(s, &s->updata, FTP_FD_UPDATA, true);
    }
    /* After an upload the printer answers once the bytes still in flight reached
     * its storage: slow printers need the long wait. */
    code = final_reply(s, x, x->upload ? PP_FTP_DATA_STALL_MS : PP_FTP_REPLY_MS);
    if (code < 0) {
        return code == PP_IO_CANCEL ? -1 : printer_lost(s);
    }
    return forward_final(s, x);
}

static int finish(struct ftp_session *s, struct xfer *x, enum xfer_end end)
{
    switch (end) {
    case X_DONE:
        return finish_done(s, x);
    case X_ABORT:
        return finish_abort(s, x);
    case X_CLIENT_DATA:
        close_both(s);
        if (final_reply(s, x, PP_FTP_ABOR_REPLY_MS) < 0) {
            return printer_lost(s);
        }
        return ftp_ctl_reply(&s->c->conn, PP_FTP_426_CONN_CLOSED,
                             "Data connection closed; transfer aborted.");
    case X_PRINTER_DATA:
    case X_STALL:
        close_both(s);
        if (final_reply(s, x, PP_FTP_ABOR_REPLY_MS) < 0) {
            return printer_lost(s);
        }
        if (end == X_STALL || x->final.code < 400) {
            return ftp_ctl_reply(&s->c->conn, PP_FTP_426_CONN_CLOSED, "%s",
                                 end == X_STALL ? "Transfer stalled; aborted." :
                                 "The printer's data connection failed; transfer aborted.");
        }
        return forward_final(s, x);
    case X_UP_GONE:
        close_both(s);
        return printer_lost(s);
    case X_CLIENT_GONE:
    case X_CANCEL:
    default:
        close_both(s);
        return -1;
    }
}

static const char *end_name(enum xfer_end e)
{
    static const char *const names[] = { "done", "client data failed", "printer data failed",
                                         "aborted", "client gone", "printer gone", "stalled",
                                         "stopping" };
    return names[e];
}

/* After the printer's 1xx: its data TLS, then the client's data connection. */
static int open_both(struct ftp_session *s, bool *printer_failed)
{
    char err[512];
    int fd = s->up_data_fd;

    s->up_data_fd = -1; /* now owned by s->updata; still tracked in FTP_FD_UPDATA */
    if (ftp_data_printer_tls(s->cfg, &s->updata, fd, s->upconn.ssl, s->svc->name, s->cancel_fd,
                             err, sizeof(err)) != 0) {
        log_warn(s->svc->name, s->c->conn.id, "%s", err);
        *printer_failed = true;
        return -1;
    }
    *printer_failed = false;
    return open_client_data(s);
}

int ftp_xfer_run(struct ftp_session *s, const char *line, bool upload)
{
    struct xfer *x;
    bool printer_failed = false;
    int code, rc;

    if (s->mode == FTP_DATA_NONE) {
        return ftp_ctl_reply(&s->c->conn, PP_FTP_425_NO_DATA_CONN,
                             "Use PASV, EPSV, PORT or EPRT first.");
    }
    if (!s->prot_p) {
        ftp_data_reset(s);
        return ftp_ctl_reply(&s->c->conn, 521,
                             "Data connections must be protected: send PROT P first.");
    }
    if (ftp_ctl_send(&s->upconn, line) != 0) {
        return printer_lost(s);
    }
    /* The printer's 150 goes to the client at once: clients start data TLS on it. */
    code = ftp_ctl_read_reply(&s->up, &s->c->conn, NULL, PP_FTP_REPLY_MS, s->cancel_fd);
    if (code < 0) {
        return code == PP_IO_CANCEL ? -1 : printer_lost(s);
    }
    if (code >= 200) {
        ftp_data_reset(s);
        return code == PP_FTP_421_UNAVAILABLE ? -1 : 0;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        ftp_data_reset(s);
        return -1;
    }
    x->upload = upload;
    x->src_end = -1;
    if (open_both(s, &printer_failed) != 0) {
        close_both(s);
        ftp_data_reset(s);
        code = final_reply(s, x, PP_FTP_REPLY_MS);
        if (code < 0) {
            rc = printer_lost(s);
        } else if (printer_failed) {
            rc = forward_final(s, x);
        } else {
            rc = ftp_ctl_reply(&s->c->conn, PP_FTP_425_NO_DATA_CONN,
                               "Cannot open the data connection.");
        }
        free(x);
        return rc;
    }
    ftp_data_reset(s);
    x->src = upload ? &s->cldata : &s->updata;
    x->dst = upload ? &s->updata : &s->cldata;
    enum xfer_end end = pump(s, x);
    log_info(s->svc->name, s->c->conn.id, "%s: %s, %llu bytes", upload ? "upload" : "download",
             end_name(end), (unsigned long long)(upload ? s->updata.tx : s->cldata.tx));
    rc = finish(s, x, end);
    close_both(s);
    free(x);
    return rc;
}
