/* SPDX-License-Identifier: MIT */
/* Control-connection line and reply I/O on top of the pure FTP codec. */
#include "autoconf.h"

#include "ftp_ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

void ftp_ctl_init(struct ftp_ctl *t, struct pp_conn *conn)
{
    t->conn = conn;
    t->in_off = t->in_len = 0;
    (void)pp_ftp_lines_init(&t->lines, t->line, sizeof(t->line));
}

bool ftp_ctl_buffered(const struct ftp_ctl *t)
{
    return t->in_off < t->in_len || conn_pending(t->conn);
}

int ftp_ctl_read_line(struct ftp_ctl *t, const char **line, size_t *len, int timeout_ms,
                      int cancel_fd)
{
    int64_t deadline = timeout_ms < 0 ? -1 : pp_now_ms() + timeout_ms;

    for (;;) {
        while (t->in_off < t->in_len) {
            size_t used = 0;
            pp_ftp_err e = pp_ftp_lines_feed(&t->lines, t->in + t->in_off,
                                             t->in_len - t->in_off, &used, line, len);
            t->in_off += used;
            if (e == PP_FTP_OK) {
                return FTP_LINE_OK;
            }
            if (e == PP_FTP_ETOOLONG) {
                return FTP_LINE_TOOLONG;
            }
            if (e == PP_FTP_ENUL) {
                return FTP_LINE_BAD;
            }
        }
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - pp_now_ms();
            if (left <= 0) {
                return PP_IO_TIMEOUT;
            }
            wait = (int)left;
        }
        int r = conn_read(t->conn, t->in, sizeof(t->in), wait, cancel_fd);
        if (r == PP_IO_TIMEOUT && (deadline < 0 || pp_now_ms() < deadline)) {
            continue; /* a TLS record that carried no data (e.g. a session ticket) */
        }
        if (r <= 0) {
            return r;
        }
        t->in_off = 0;
        t->in_len = (size_t)r;
    }
}

int ftp_ctl_poll_in(struct ftp_ctl *t)
{
    int r;

    if (t->in_off < t->in_len) {
        return 1;
    }
    r = conn_read(t->conn, t->in, sizeof(t->in), 0, -1);
    if (r > 0) {
        t->in_off = 0;
        t->in_len = (size_t)r;
        return 1;
    }
    return r;
}

/* Batches forwarded lines so a long multi-line reply is a few TLS records. */
struct fwd_buf {
    struct pp_conn *conn;
    char *buf;
    size_t len;
    bool failed;
};

static void fwd_flush(struct fwd_buf *f)
{
    if (f->conn != NULL && f->len > 0 && !f->failed && conn_write(f->conn, f->buf, f->len) != 0) {
        f->failed = true;
    }
    f->len = 0;
}

static void fwd_line(struct fwd_buf *f, const char *line, size_t len)
{
    if (f->conn == NULL) {
        return;
    }
    if (f->len + len + 2 > PP_IO_CHUNK) {
        fwd_flush(f);
    }
    memcpy(f->buf + f->len, line, len);
    f->len += len;
    f->buf[f->len++] = '\r';
    f->buf[f->len++] = '\n';
}

static void capture_line(struct ftp_reply *out, const char *line, size_t len)
{
    if (out == NULL || out->raw_len + len + 2 > sizeof(out->raw)) {
        return;
    }
    memcpy(out->raw + out->raw_len, line, len);
    out->raw_len += len;
    out->raw[out->raw_len++] = '\r';
    out->raw[out->raw_len++] = '\n';
}

int ftp_ctl_read_reply(struct ftp_ctl *t, struct pp_conn *fwd, struct ftp_reply *out,
                       int timeout_ms, int cancel_fd)
{
    struct fwd_buf f = { .conn = fwd, .buf = t->fwd };
    int64_t deadline = pp_now_ms() + timeout_ms;
    pp_ftp_reply_asm a;

    pp_ftp_reply_init(&a);
    if (out != NULL) {
        out->code = 0;
        out->raw_len = 0;
        out->last[0] = '\0';
    }
    for (;;) {
        const char *line;
        size_t len;
        int64_t left = deadline - pp_now_ms();
        int r = ftp_ctl_read_line(t, &line, &len, left > 0 ? (int)left : 0, cancel_fd);

        if (r != FTP_LINE_OK) {
            fwd_flush(&f);
            return r <= 0 ? r : FTP_REPLY_BAD;
        }
        pp_ftp_err e = pp_ftp_reply_feed(&a, line, len);
        if (e != PP_FTP_OK && e != PP_FTP_ENEED) {
            fwd_flush(&f);
            return FTP_REPLY_BAD;
        }
        fwd_line(&f, line, len);
        capture_line(out, line, len);
        if (e == PP_FTP_OK) {
            fwd_flush(&f);
            if (out != NULL) {
                out->code = a.code;
                snprintf(out->last, sizeof(out->last), "%s", len > 4 ? line + 4 : "");
            }
            return f.failed ? PP_IO_ERR : a.code;
        }
    }
}

int ftp_ctl_send(struct pp_conn *c, const char *line)
{
    char buf[PP_FTP_MAX_LINE + 2];
    int n = snprintf(buf, sizeof(buf), "%s\r\n", line);
    int r;

    if (n < 0 || (size_t)n >= sizeof(buf)) {
        return -1;
    }
    r = conn_write(c, buf, (size_t)n);
    pp_wipe(buf, sizeof(buf)); /* may have carried the access code */
    return r;
}

int ftp_ctl_reply(struct pp_conn *c, int code, const char *fmt, ...)
{
    char text[PP_FTP_MAX_LINE];
    char buf[PP_FTP_MAX_LINE + 8];
    size_t n;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    text[strcspn(text, "\r\n")] = '\0';
    if (pp_ftp_format_reply(buf, sizeof(buf), code, text, &n) != PP_FTP_OK) {
        return -1;
    }
    return conn_write(c, buf, n);
}
