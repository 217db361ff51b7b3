/* SPDX-License-Identifier: MIT */
/*
 * The simulated printer's FTPS server, shared between its files: sim_ftp.c (the
 * service, TLS context, control loop and simple commands), sim_ftp_xfer.c (passive
 * data connections with TLS session reuse, and every command that moves data) and
 * sim_ftp_fs.c (pure helpers: virtual paths confined to the root, listing lines).
 */
#ifndef PP_SIM_FTP_H
#define PP_SIM_FTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ssl.h>

#include "../ftp_codec.h"
#include "../limits.h"
#include "../tls.h"
#include "sim.h"

/* Reply codes the codec does not name (RFC 959 / RFC 2228 / RFC 3659). */
#define SIM_FTP_225_DATA_OPEN_NO_XFER 225
#define SIM_FTP_452_NO_SPACE          452
#define SIM_FTP_521_NEED_PROT_P       521
#define SIM_FTP_534_DENIED            534

/* The only user a printer knows. */
#define SIM_FTP_USER "bblp"

struct ftp_sess {
    struct sim *sim;
    struct client *c;
    struct pp_conn *ctl;            /* the control connection (c->conn) */
    int cancel_fd;
    SSL_CTX *ctx;                   /* the FTP context: control and data share it */
    const char *root;               /* real path of the FTP root (no trailing '/') */
    char cwd[PP_SIM_FTP_VPATH_MAX];    /* virtual: always starts with '/' */
    bool user_ok;                   /* USER bblp seen */
    bool logged_in;
    int bad_logins;
    bool prot_private;              /* PROT P */
    uint64_t rest;                  /* REST offset for the next transfer */
    bool has_rnfr;
    char rnfr[PP_SIM_FTP_VPATH_MAX];
    bool quit;
    /* passive listener (PASV/EPSV), closed once a data connection was accepted */
    int pasv_fd;
    /* data connection of the running transfer */
    struct pp_conn data;            /* fd -1 when none */
    short data_events;              /* what its pending TLS handshake waits for */
    bool ctl_watch;                 /* poll control during a transfer */
    bool abor_seen;                 /* ABOR arrived during the last transfer */
    /* control input: raw bytes, then the codec's line splitter */
    uint8_t in[PP_SIM_FTP_CTL_BUF];
    size_t in_len, in_off;
    pp_ftp_lines lines;
    char linebuf[PP_FTP_LINE_BUF];
    pp_ftp_cmd cmd;
};

/* ---- sim_ftp.c ---------------------------------------------------------- */

/* One reply line "NNN text"; false when the control connection failed. */
bool ftp_reply(struct ftp_sess *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The virtual path of arg and its real path (symlinks resolved), which must exist
 * inside the root; st (optional) gets its stat. -1 with errno. */
int ftp_resolve_existing(struct ftp_sess *f, const char *arg, char *vpath, char *real,
                         struct stat *st);
/* For creating, replacing, renaming or removing: the parent must exist inside the
 * root and the name must be new or (a symlink to) something inside it. */
int ftp_resolve_new(struct ftp_sess *f, const char *arg, char *vpath, char *real);
/* "550 what: reason." from errno. */
void ftp_reply_errno(struct ftp_sess *f, const char *what);

/* ---- sim_ftp_xfer.c ---------------------------------------------------- */

void ftp_cmd_pasv(struct ftp_sess *f, bool extended);
void ftp_cmd_retr(struct ftp_sess *f, const char *arg);
/* STOR (append false) and APPE (append true). */
void ftp_cmd_stor(struct ftp_sess *f, const char *arg, bool append);
/* LIST, NLST and MLSD. */
enum ftp_list_kind { FTP_LIST, FTP_NLST, FTP_MLSD };
void ftp_cmd_list(struct ftp_sess *f, const char *arg, enum ftp_list_kind kind);
/* Close the passive listener and any data connection (session end). */
void ftp_data_cleanup(struct ftp_sess *f);
/* While a command is awaited: the fd (and *events) to poll beside the control
 * connection so the data connection is accepted and its TLS handshake runs before
 * the transfer command (curl starts it right after connecting); -1 for none. */
int ftp_data_idle_fd(struct ftp_sess *f, short *events);
/* That fd is ready: accept the connection, or take one handshake step. */
void ftp_data_idle_event(struct ftp_sess *f);

/* ---- sim_ftp_fs.c (pure) ----------------------------------------------- */

/*
 * Combine the virtual cwd and a client path into a normalised virtual path
 * ("/a/b", never ending in '/' except the root). 0, or -1 when the path climbs
 * above the root, is empty where one is needed, or does not fit in cap.
 */
int sim_ftp_vpath(const char *cwd, const char *arg, char *out, size_t cap);
/* "root" + vpath; -1 when it does not fit. */
int sim_ftp_real(const char *root, const char *vpath, char *out, size_t cap);
/* Is the resolved real path (realpath output) inside root (also realpath'd)? */
bool sim_ftp_inside(const char *root, const char *resolved);
/* Last component of a virtual path ("" for the root). */
const char *sim_ftp_basename(const char *vpath);
/* One `ls -l` style line (CRLF included) for LIST; -1 when it does not fit. */
int sim_ftp_format_list(char *buf, size_t cap, const char *name, const struct stat *st,
                        time_t now);
/* One RFC 3659 fact line "type=file;size=N;modify=YYYYMMDDHHMMSS; name" (CRLF included). */
int sim_ftp_format_mlsx(char *buf, size_t cap, const char *name, const struct stat *st);
/* "YYYYMMDDHHMMSS" in UTC (MDTM and MLSD). */
void sim_ftp_format_time(char *buf, size_t cap, time_t t);
/* A name we can put in a listing or a reply: no CR, LF or NUL. */
bool sim_ftp_name_ok(const char *name);

#endif
