/* SPDX-License-Identifier: MIT */
/*
 * Data connections of the simulated FTPS server: the passive listener (PASV/EPSV),
 * TLS on the data connection with the printer's rule that it must resume the control
 * connection's session (522 otherwise), and the commands that move data (RETR, STOR,
 * APPE, LIST, NLST, MLSD). While a transfer runs the worker also watches the control
 * connection, so ABOR, a vanished client or a SIGUSR1 drop end it at once, and the
 * control connection never times out meanwhile.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "../log.h"
#include "../net.h"
#include "../util.h"
#include "sim_ftp.h"

#define SVC "ftp"
#define TELNET_MIN 0x80   /* IP/Synch bytes some clients put before ABOR */
#define ABOR_LEN 4

/* How a transfer ended; finish() turns it into the reply. */
enum xs {
    XS_OK,        /* 226 */
    XS_REPLIED,   /* refused before 150, reply already sent */
    XS_ABORTED,   /* ABOR on the control connection: 426, then 226 for the ABOR */
    XS_GONE,      /* control connection lost or the simulator stops: no reply */
    XS_NOCONN,    /* no data connection came: 425 */
    XS_TLS,       /* data TLS handshake failed: 522 */
    XS_REUSE,     /* data TLS did not resume the control session: 522 */
    XS_TIMEOUT,   /* the data connection stalled: 426 */
    XS_NET,       /* the data connection broke: 426 */
    XS_LOCAL,     /* file system error: 451 */
    XS_NOSPACE,   /* disk full: 452 */
};

/* ---- control connection during a transfer ----------------------------------- */

static bool has_abor(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;

        if (i > 0 && p[i - 1] != '\n') {
            continue;
        }
        while (j < n && p[j] >= TELNET_MIN) {
            j++;
        }
        if (j + ABOR_LEN < n && strncasecmp((const char *)p + j, "ABOR", ABOR_LEN) == 0 &&
            (p[j + ABOR_LEN] == '\r' || p[j + ABOR_LEN] == '\n')) {
            return true;
        }
    }
    return false;
}

/* Read what the client sent on the control connection; it is kept for the command
 * loop. XS_OK, XS_ABORTED or XS_GONE. */
static enum xs ctl_pump(struct ftp_sess *f)
{
    int r;

    if (f->in_off > 0) {
        memmove(f->in, f->in + f->in_off, f->in_len - f->in_off);
        f->in_len -= f->in_off;
        f->in_off = 0;
    }
    if (f->in_len == sizeof(f->in)) {
        f->ctl_watch = false; /* the client pipelines a lot: read it after the transfer */
        return XS_OK;
    }
    r = conn_read(f->ctl, f->in + f->in_len, sizeof(f->in) - f->in_len, 0, -1);
    if (r > 0) {
        f->in_len += (size_t)r;
        return has_abor(f->in, f->in_len) ? XS_ABORTED : XS_OK;
    }
    if (r == PP_IO_TIMEOUT) {
        return XS_OK; /* a partial record: nothing to see yet */
    }
    log_info(SVC, f->c->conn.id, "control connection lost during a transfer");
    return XS_GONE;
}

/*
 * Wait up to timeout_ms for fd (may be -1) to be ready for events, watching the
 * control connection and the service's cancel fd. XS_OK when fd is ready, XS_TIMEOUT
 * when it is not (yet), or what the control side reported.
 */
static enum xs xfer_poll(struct ftp_sess *f, int fd, short events, int timeout_ms)
{
    struct pollfd p[3] = {
        { .fd = fd, .events = events },
        { .fd = f->ctl_watch ? f->ctl->fd : -1, .events = POLLIN },
        { .fd = f->cancel_fd, .events = POLLIN },
    };
    int r;

    do {
        r = poll(p, PP_ARRAY_LEN(p), timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return XS_NET;
    }
    if (p[2].revents != 0) {
        return XS_GONE;
    }
    if (p[1].revents != 0) {
        enum xs st = ctl_pump(f);
        if (st != XS_OK) {
            return st;
        }
    }
    return (fd >= 0 && p[0].revents != 0) ? XS_OK : XS_TIMEOUT;
}

/* Wait until fd is ready or the deadline passes, control events ending the wait. */
static enum xs xfer_wait(struct ftp_sess *f, int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - pp_now_ms();
        enum xs st;

        if (left <= 0) {
            return XS_TIMEOUT;
        }
        st = xfer_poll(f, fd, events, (int)left);
        if (st != XS_TIMEOUT) {
            return st;
        }
    }
}

/* Between chunks: notice ABOR or a drop even while the data socket is always ready. */
static enum xs xfer_check(struct ftp_sess *f)
{
    enum xs st = xfer_poll(f, -1, 0, 0);

    return st == XS_TIMEOUT ? XS_OK : st;
}

static void xfer_begin(struct ftp_sess *f)
{
    f->abor_seen = false;
    f->ctl_watch = true;
    net_set_nonblock(f->ctl->fd, true);
}

/* ---- data connection ---------------------------------------------------------- */

static void pasv_close(struct ftp_sess *f)
{
    if (f->pasv_fd >= 0) {
        close(f->pasv_fd);
        f->pasv_fd = -1;
    }
}

void ftp_cmd_pasv(struct ftp_sess *f, bool extended)
{
    char host[PP_ADDRSTR_MAX], err[256], line[PP_FTP_MAX_LINE];
    pp_ftp_ipv4_port hp;
    size_t len = 0;
    pp_ftp_err e;
    int fd;

    ftp_data_cleanup(f); /* a new PASV replaces an unused listener or data connection */
    /* Listen where the client reached us, on a free port: it is the address the
     * reply announces, so it must be one the client can reach. */
    net_host_str((struct sockaddr *)&f->c->local, host, sizeof(host));
    if (!extended && inet_pton(AF_INET, host, hp.ip) != 1) {
        ftp_reply(f, PP_FTP_522_BAD_PROTOCOL, "PASV needs IPv4; use EPSV.");
        return;
    }
    fd = net_listen(host, 0, 1, err, sizeof(err));
    if (fd < 0 || net_set_nonblock(fd, true) != 0) {
        log_warn(SVC, f->c->conn.id, "passive listener: %s", err);
        if (fd >= 0) {
            close(fd);
        }
        ftp_reply(f, PP_FTP_425_NO_DATA_CONN, "Cannot open a passive port.");
        return;
    }
    hp.port = (uint16_t)net_local_port(fd);
    e = extended ? pp_ftp_format_229(line, sizeof(line), hp.port, &len)
                 : pp_ftp_format_227(line, sizeof(line), &hp, &len);
    if (e != PP_FTP_OK) {
        close(fd);
        ftp_reply(f, PP_FTP_425_NO_DATA_CONN, "Cannot announce the passive port.");
        return;
    }
    f->pasv_fd = fd;
    if (conn_write(f->ctl, line, len) != 0) {
        f->quit = true;
    }
}

/* Accept one pending connection on the passive port and set up its TLS (server side,
 * not yet handshaken). XS_OK, XS_TIMEOUT (nothing acceptable yet) or XS_NOCONN. */
static enum xs accept_one(struct ftp_sess *f)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[PP_ADDRSTR_MAX];
    SSL *ssl;
    int fd = accept4(f->pasv_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0) {
        return (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) ? XS_TIMEOUT
                                                                           : XS_NOCONN;
    }
    net_host_str((struct sockaddr *)&ss, host, sizeof(host));
    if (strcmp(host, f->c->peer_host) != 0) {
        /* Only the control connection's host may take its data connection. */
        log_warn(SVC, f->c->conn.id, "data connection from %s refused", host);
        close(fd);
        return XS_TIMEOUT;
    }
    pasv_close(f);
    conn_init(&f->data, fd, SVC, f->c->conn.id);
    ssl = SSL_new(f->ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        f->data.failed = true;
        return XS_OK; /* reported as a TLS failure by data_handshake */
    }
    f->data.ssl = ssl;
    SSL_set_accept_state(ssl);
    /* Nothing may follow the handshake on a data connection: a TLS 1.3 ticket there
     * turns a client's close into a reset that truncates its upload. */
    SSL_set_num_tickets(ssl, 0);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return XS_OK;
}

static enum xs accept_data(struct ftp_sess *f)
{
    int64_t deadline = pp_now_ms() + PP_FTP_DATA_ACCEPT_MS;

    for (;;) {
        enum xs st = xfer_wait(f, f->pasv_fd, POLLIN, deadline);

        if (st != XS_OK) {
            return st == XS_TIMEOUT ? XS_NOCONN : st;
        }
        st = accept_one(f);
        if (st != XS_TIMEOUT) {
            return st;
        }
    }
}

/* One handshake step: 1 done, 0 wants *events, -1 failed. */
static int handshake_step(struct ftp_sess *f, short *events)
{
    int r, e;

    if (f->data.failed || f->data.ssl == NULL) {
        return -1;
    }
    ERR_clear_error();
    r = SSL_do_handshake(f->data.ssl);
    if (r == 1) {
        return 1;
    }
    e = SSL_get_error(f->data.ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        log_ssl_errors(LOG_LVL_INFO, SVC, f->c->conn.id, "data TLS handshake");
        f->data.failed = true;
        return -1;
    }
    *events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    return 0;
}

static enum xs data_handshake(struct ftp_sess *f)
{
    int64_t deadline = pp_now_ms() + PP_HANDSHAKE_TIMEOUT_MS;

    for (;;) {
        short events = 0;
        int r = handshake_step(f, &events);
        enum xs st;

        if (r < 0) {
            return XS_TLS;
        }
        if (r == 1) {
            break;
        }
        st = xfer_wait(f, f->data.fd, events, deadline);
        if (st != XS_OK) {
            f->data.failed = true;
            return st == XS_TIMEOUT ? XS_TLS : st;
        }
    }
    if (!SSL_session_reused(f->data.ssl)) {
        log_info(SVC, f->c->conn.id,
                 "data connection did not resume the control TLS session: refused");
        return XS_REUSE;
    }
    return XS_OK;
}

int ftp_data_idle_fd(struct ftp_sess *f, short *events)
{
    if (f->data.fd < 0) {
        *events = POLLIN;
        return f->pasv_fd;
    }
    if (f->data.ssl == NULL || f->data.failed || SSL_is_init_finished(f->data.ssl)) {
        return -1;
    }
    *events = f->data_events;
    return f->data.fd;
}

void ftp_data_idle_event(struct ftp_sess *f)
{
    short events = POLLIN;

    if (f->data.fd < 0) {
        enum xs st = accept_one(f);

        if (st == XS_NOCONN) {
            pasv_close(f); /* do not spin on a failing accept: the transfer gets 425 */
        }
        if (st != XS_OK || f->data.fd < 0) {
            return;
        }
    }
    if (handshake_step(f, &events) == 0) {
        f->data_events = events;
    }
}

/* Refusals before 150, then 150, the data connection and its TLS handshake (which
 * may have run already while the command was awaited). */
static enum xs data_open(struct ftp_sess *f, const char *what)
{
    enum xs st;

    if (!f->prot_private) {
        ftp_reply(f, SIM_FTP_521_NEED_PROT_P, "Data connections must be encrypted (PROT P).");
        return XS_REPLIED;
    }
    if (f->pasv_fd < 0 && f->data.fd < 0) {
        ftp_reply(f, PP_FTP_425_NO_DATA_CONN, "Use PASV or EPSV first.");
        return XS_REPLIED;
    }
    if (!ftp_reply(f, PP_FTP_150_OPENING_DATA, "%s", what)) {
        return XS_GONE;
    }
    xfer_begin(f);
    if (f->data.fd < 0) {
        st = accept_data(f);
        if (st != XS_OK) {
            return st;
        }
    }
    return data_handshake(f);
}

/* One SSL call on the non-blocking data socket, waiting as it asks. */
static enum xs data_wait_for(struct ftp_sess *f, int r, int64_t deadline)
{
    int e = SSL_get_error(f->data.ssl, r);

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return xfer_wait(f, f->data.fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
    }
    f->data.failed = true;
    return XS_NET;
}

static enum xs data_write(struct ftp_sess *f, const uint8_t *buf, size_t len)
{
    int64_t deadline = pp_now_ms() + PP_SIM_FTP_DATA_IDLE_MS;
    size_t off = 0;

    while (off < len) {
        size_t n = len - off > PP_SIM_FTP_IO_CHUNK ? PP_SIM_FTP_IO_CHUNK : len - off;
        int r;

        ERR_clear_error();
        r = SSL_write(f->data.ssl, buf + off, (int)n);
        if (r > 0) {
            off += (size_t)r;
            f->data.tx += (uint64_t)r;
            deadline = pp_now_ms() + PP_SIM_FTP_DATA_IDLE_MS;
            continue;
        }
        enum xs st = data_wait_for(f, r, deadline);
        if (st != XS_OK) {
            return st;
        }
    }
    return xfer_check(f);
}

/* *got = 0 at the end of the upload, with or without the client's close_notify. */
static enum xs data_read(struct ftp_sess *f, uint8_t *buf, size_t cap, size_t *got)
{
    int64_t deadline = pp_now_ms() + PP_SIM_FTP_DATA_IDLE_MS;

    for (;;) {
        int r, e;
        enum xs st;

        ERR_clear_error();
        r = SSL_read(f->data.ssl, buf, (int)cap);
        if (r > 0) {
            *got = (size_t)r;
            f->data.rx += (uint64_t)r;
            return xfer_check(f);
        }
        e = SSL_get_error(f->data.ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare TCP close. */
            *got = 0;
            return XS_OK;
        }
        if (e == SSL_ERROR_SYSCALL && r == 0 && ERR_peek_error() == 0) {
            /* Closed without close_notify: some clients end uploads like that. */
            f->data.failed = true;
            *got = 0;
            return XS_OK;
        }
        st = data_wait_for(f, r, deadline);
        if (st != XS_OK) {
            return st;
        }
    }
}

/* After a transfer: close_notify (answering the client's after an upload), FIN, then
 * let the client close first so nothing it still reads is cut by a reset. Bounded. */
static void data_close_graceful(struct ftp_sess *f)
{
    int64_t deadline = pp_now_ms() + PP_SIM_FTP_LINGER_MS;
    uint8_t sink[512];

    while (!f->data.failed) {
        int r;

        ERR_clear_error();
        r = SSL_shutdown(f->data.ssl);
        if (r >= 0 || data_wait_for(f, r, deadline) != XS_OK) {
            break;
        }
    }
    (void)shutdown(f->data.fd, SHUT_WR);
    while (xfer_wait(f, f->data.fd, POLLIN, deadline) == XS_OK) {
        ssize_t n = recv(f->data.fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            break;
        }
    }
    f->data.failed = true; /* close_notify was already sent */
}

/* Close the data connection and the listener, restore the control socket, reply. */
static void finish(struct ftp_sess *f, enum xs st, const char *ok)
{
    if (f->data.fd >= 0) {
        if (st == XS_OK) {
            data_close_graceful(f);
        }
        conn_close(&f->data, false);
    }
    conn_init(&f->data, -1, SVC, f->c->conn.id);
    pasv_close(f);
    f->ctl_watch = false;
    net_set_nonblock(f->ctl->fd, false);
    f->rest = 0;
    switch (st) {
    case XS_OK:
        ftp_reply(f, PP_FTP_226_TRANSFER_DONE, "%s", ok);
        break;
    case XS_REPLIED:
        break;
    case XS_ABORTED:
        f->abor_seen = true;
        ftp_reply(f, PP_FTP_426_CONN_CLOSED, "Transfer aborted.");
        break;
    case XS_GONE:
        f->quit = true;
        break;
    case XS_NOCONN:
        ftp_reply(f, PP_FTP_425_NO_DATA_CONN, "Failed to establish connection.");
        break;
    case XS_TLS:
        ftp_reply(f, PP_FTP_522_BAD_PROTOCOL, "SSL connection failed.");
        break;
    case XS_REUSE:
        ftp_reply(f, PP_FTP_522_BAD_PROTOCOL, "SSL connection failed: session reuse required");
        break;
    case XS_TIMEOUT:
        ftp_reply(f, PP_FTP_426_CONN_CLOSED, "Data connection timed out.");
        break;
    case XS_NET:
        ftp_reply(f, PP_FTP_426_CONN_CLOSED, "Failure on the data connection.");
        break;
    case XS_LOCAL:
        ftp_reply(f, PP_FTP_451_LOCAL_ERROR, "Local error.");
        break;
    case XS_NOSPACE:
        ftp_reply(f, SIM_FTP_452_NO_SPACE, "Not enough storage space.");
        break;
    }
}

void ftp_data_cleanup(struct ftp_sess *f)
{
    pasv_close(f);
    if (f->data.fd >= 0) {
        conn_close(&f->data, false);
    }
    conn_init(&f->data, -1, SVC, f->c->conn.id);
}

/* ---- RETR / STOR / APPE ------------------------------------------------------- */

static enum xs send_file(struct ftp_sess *f, int fd)
{
    uint8_t *buf = malloc(PP_SIM_FTP_IO_CHUNK);
    enum xs st = XS_OK;

    if (buf == NULL) {
        return XS_LOCAL;
    }
    while (st == XS_OK) {
        ssize_t n = read(fd, buf, PP_SIM_FTP_IO_CHUNK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            st = n < 0 ? XS_LOCAL : XS_OK;
            break;
        }
        st = data_write(f, buf, (size_t)n);
    }
    free(buf);
    return st;
}

static enum xs write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return errno == ENOSPC || errno == EDQUOT ? XS_NOSPACE : XS_LOCAL;
        }
        p += w;
        n -= (size_t)w;
    }
    return XS_OK;
}

static enum xs recv_file(struct ftp_sess *f, int fd)
{
    uint8_t *buf = malloc(PP_SIM_FTP_IO_CHUNK);
    enum xs st = XS_OK;

    if (buf == NULL) {
        return XS_LOCAL;
    }
    for (;;) {
        size_t got = 0;

        st = data_read(f, buf, PP_SIM_FTP_IO_CHUNK, &got);
        if (st != XS_OK || got == 0) {
            break;
        }
        /* Straight into the file, like the printer: an interrupted upload stays
         * visible as a partial file. */
        st = write_all(fd, buf, got);
        if (st != XS_OK) {
            break;
        }
    }
    free(buf);
    return st;
}

void ftp_cmd_retr(struct ftp_sess *f, const char *arg)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX];
    struct stat st;
    uint64_t rest = f->rest;
    enum xs xs;
    int fd;

    f->rest = 0;
    if (ftp_resolve_existing(f, arg, vpath, real, NULL) != 0) {
        ftp_reply_errno(f, "Failed to open file");
        return;
    }
    fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (rest > 0 && lseek(fd, (off_t)rest, SEEK_SET) < 0)) {
        if (fd >= 0) {
            close(fd);
        }
        ftp_reply(f, PP_FTP_550_UNAVAILABLE, "Failed to open file.");
        return;
    }
    xs = data_open(f, "Opening BINARY mode data connection.");
    if (xs == XS_OK) {
        xs = send_file(f, fd);
    }
    close(fd);
    log_info(SVC, f->c->conn.id, "RETR %s: %llu bytes%s", vpath,
             (unsigned long long)f->data.tx, xs == XS_OK ? "" : " (incomplete)");
    finish(f, xs, "Transfer complete.");
}

void ftp_cmd_stor(struct ftp_sess *f, const char *arg, bool append)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX];
    uint64_t rest = append ? 0 : f->rest;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
    enum xs xs;
    int fd;

    f->rest = 0;
    if (ftp_resolve_new(f, arg, vpath, real) != 0) {
        ftp_reply_errno(f, "Could not create file");
        return;
    }
    flags |= append ? O_APPEND : rest > 0 ? 0 : O_TRUNC;
    fd = open(real, flags, 0644);
    if (fd < 0 || (rest > 0 && lseek(fd, (off_t)rest, SEEK_SET) < 0)) {
        if (fd >= 0) {
            close(fd);
        }
        ftp_reply_errno(f, "Could not create file");
        return;
    }
    xs = data_open(f, "Ok to send data.");
    if (xs == XS_OK) {
        xs = recv_file(f, fd);
    }
    if (close(fd) != 0 && xs == XS_OK) {
        xs = XS_LOCAL;
    }
    log_info(SVC, f->c->conn.id, "%s %s: %llu bytes%s", append ? "APPE" : "STOR", vpath,
             (unsigned long long)f->data.rx, xs == XS_OK ? "" : " (incomplete)");
    finish(f, xs, "Transfer complete.");
}

/* ---- LIST / NLST / MLSD ------------------------------------------------------- */

struct listing {
    uint8_t *buf;
    size_t len;
    enum ftp_list_kind kind;
    time_t now;
};

static enum xs list_entry(struct ftp_sess *f, struct listing *l, const char *name,
                          const struct stat *st)
{
    char line[PP_SIM_FTP_VPATH_MAX + 256];
    int n;

    if (!sim_ftp_name_ok(name) || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) {
        return XS_OK;
    }
    if (l->kind == FTP_LIST) {
        n = sim_ftp_format_list(line, sizeof(line), name, st, l->now);
    } else if (l->kind == FTP_MLSD) {
        n = sim_ftp_format_mlsx(line, sizeof(line), name, st);
    } else {
        n = snprintf(line, sizeof(line), "%s\r\n", name);
        n = (n < 0 || (size_t)n >= sizeof(line)) ? -1 : n;
    }
    if (n < 0) {
        return XS_OK;
    }
    if (l->len + (size_t)n > PP_SIM_FTP_LIST_BUF) {
        enum xs s = data_write(f, l->buf, l->len);
        l->len = 0;
        if (s != XS_OK) {
            return s;
        }
    }
    memcpy(l->buf + l->len, line, (size_t)n);
    l->len += (size_t)n;
    return XS_OK;
}

static enum xs list_dir(struct ftp_sess *f, struct listing *l, DIR *d)
{
    struct dirent *de;
    enum xs st = XS_OK;

    while (st == XS_OK && (de = readdir(d)) != NULL) {
        struct stat sb;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;
        }
        st = list_entry(f, l, de->d_name, &sb);
    }
    return st;
}

/* "-la path" → "path": option words before the path are ignored, like most servers. */
static const char *skip_list_options(const char *arg)
{
    while (arg[0] == '-') {
        while (*arg != '\0' && *arg != ' ') {
            arg++;
        }
        while (*arg == ' ') {
            arg++;
        }
    }
    return arg;
}

void ftp_cmd_list(struct ftp_sess *f, const char *arg, enum ftp_list_kind kind)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX];
    struct listing l = { .kind = kind, .now = time(NULL) };
    struct stat sb;
    DIR *d = NULL;
    enum xs st;

    if (ftp_resolve_existing(f, skip_list_options(arg), vpath, real, &sb) != 0 ||
        (S_ISDIR(sb.st_mode) && (d = opendir(real)) == NULL)) {
        ftp_reply_errno(f, "Could not list");
        return;
    }
    if (kind == FTP_MLSD && d == NULL) {
        ftp_reply(f, PP_FTP_501_BAD_ARGS, "MLSD needs a directory.");
        return;
    }
    l.buf = malloc(PP_SIM_FTP_LIST_BUF);
    if (l.buf == NULL) {
        if (d != NULL) {
            closedir(d);
        }
        ftp_reply(f, PP_FTP_451_LOCAL_ERROR, "Out of memory.");
        return;
    }
    st = data_open(f, "Here comes the directory listing.");
    if (st == XS_OK) {
        st = d ? list_dir(f, &l, d) : list_entry(f, &l, sim_ftp_basename(vpath), &sb);
    }
    if (st == XS_OK && l.len > 0) {
        st = data_write(f, l.buf, l.len);
    }
    if (d != NULL) {
        closedir(d);
    }
    free(l.buf);
    finish(f, st, "Directory send OK.");
}
