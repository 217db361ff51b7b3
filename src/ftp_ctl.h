/* SPDX-License-Identifier: MIT */
/*
 * FTP control-connection I/O over a pp_conn: reading command lines and whole
 * (multi-line) replies with the pure codec, forwarding or capturing replies, and
 * writing the proxy's own replies. The connection's owner thread uses it alone.
 */
#ifndef PP_FTP_CTL_H
#define PP_FTP_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "ftp_codec.h"
#include "limits.h"
#include "tls.h"

/* ftp_ctl_read_line results besides the enum pp_io values. */
#define FTP_LINE_OK      1
#define FTP_LINE_TOOLONG 2   /* answer 500; the rest of that line is dropped */
#define FTP_LINE_BAD     3   /* NUL inside the line */

/* ftp_ctl_read_reply result when the peer does not speak FTP replies. */
#define FTP_REPLY_BAD    (-10)

struct ftp_ctl {
    struct pp_conn *conn;
    pp_ftp_lines lines;
    char line[PP_FTP_LINE_BUF];
    char in[PP_IO_CHUNK];          /* read from TLS, not split yet */
    size_t in_off, in_len;
    char fwd[PP_IO_CHUNK];         /* reply lines being forwarded, batched */
};

/* Captured reply: its raw lines (CRLF-terminated) and the last line's text. */
struct ftp_reply {
    int code;
    char raw[PP_FTP_REPLY_CAPTURE];
    size_t raw_len;
    char last[PP_FTP_LINE_BUF];    /* text of the final line, after "NNN " */
};

void ftp_ctl_init(struct ftp_ctl *t, struct pp_conn *conn);
/* Bytes are waiting that poll() on the socket cannot see. */
bool ftp_ctl_buffered(const struct ftp_ctl *t);
/*
 * After poll() said readable: take what TLS has without blocking. 1 = bytes are
 * buffered, PP_IO_TIMEOUT = the record carried no data (a ticket, a key update),
 * or PP_IO_EOF / PP_IO_ERR.
 */
int ftp_ctl_poll_in(struct ftp_ctl *t);
/* One line without its terminator: FTP_LINE_* or an enum pp_io value. */
int ftp_ctl_read_line(struct ftp_ctl *t, const char **line, size_t *len, int timeout_ms,
                      int cancel_fd);
/*
 * One complete reply. Each line goes to fwd when not NULL (as it arrives, so long
 * listings are not held) and into out when not NULL (truncated to its capacity).
 * Returns the reply code, an enum pp_io value or FTP_REPLY_BAD.
 */
int ftp_ctl_read_reply(struct ftp_ctl *t, struct pp_conn *fwd, struct ftp_reply *out,
                       int timeout_ms, int cancel_fd);
/* Send "line\r\n". 0 or -1. */
int ftp_ctl_send(struct pp_conn *c, const char *line);
/* Send "NNN text\r\n" built from a format. 0 or -1. */
int ftp_ctl_reply(struct pp_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
