/* SPDX-License-Identifier: MIT */
/*
 * The simulated printer's implicit-FTPS server: its own TLS context (so data
 * connections can resume the control connection's session, as the printer demands),
 * the per-session control loop, login and every command that moves no data.
 * Transfers live in sim_ftp_xfer.c, path and listing helpers in sim_ftp_fs.c.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../identity.h"
#include "../log.h"
#include "../net.h"
#include "../util.h"
#include "sim_ftp.h"

#define SVC "ftp"
#define STOP_POLL_MS 10

/* Any stable bytes: sessions are only resumed by this server's own connections. */
static const unsigned char session_id_ctx[] = "pandaproxy-sim-ftp";

/* Directories a printer's storage shows; created at start so clients find them. */
static const char *const printer_dirs[] = { "cache", "model", "timelapse" };

/* One FTP service per simulator process: its TLS context and the real root. */
static struct {
    SSL_CTX *ctx;
    char root[PP_PATH_MAX];
} ftp_state;

/* ---- replies ---------------------------------------------------------------- */

bool ftp_reply(struct ftp_sess *f, int code, const char *fmt, ...)
{
    char text[PP_SIM_FTP_REPLY_MAX];
    char line[PP_SIM_FTP_REPLY_MAX + 8];
    size_t len;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (pp_ftp_format_reply(line, sizeof(line), code, text, &len) != PP_FTP_OK) {
        /* A name with CR/LF would inject a line: say less instead. */
        (void)pp_ftp_format_reply(line, sizeof(line), code, "(reply text withheld)", &len);
    }
    if (conn_write(f->ctl, line, len) != 0) {
        f->quit = true;
        return false;
    }
    return true;
}

/* Lines of a multi-line reply, each given without CRLF; the last one is "NNN text". */
static void reply_lines(struct ftp_sess *f, const char *const *lines, size_t n)
{
    char buf[PP_SIM_FTP_REPLY_MAX];
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + len, sizeof(buf) - len, "%s\r\n", lines[i]);
        if (w < 0 || (size_t)w >= sizeof(buf) - len) {
            break;
        }
        len += (size_t)w;
    }
    if (conn_write(f->ctl, buf, len) != 0) {
        f->quit = true;
    }
}

/* ---- paths ------------------------------------------------------------------ */

int ftp_resolve_existing(struct ftp_sess *f, const char *arg, char *vpath, char *real,
                         struct stat *st)
{
    char resolved[PATH_MAX];

    if (sim_ftp_vpath(f->cwd, arg, vpath, PP_SIM_FTP_VPATH_MAX) != 0 ||
        sim_ftp_real(f->root, vpath, real, PP_PATH_MAX) != 0) {
        errno = EACCES;
        return -1;
    }
    if (realpath(real, resolved) == NULL) {
        return -1;
    }
    if (!sim_ftp_inside(f->root, resolved) || strlen(resolved) >= PP_PATH_MAX) {
        errno = EACCES; /* a symlink out of the root */
        return -1;
    }
    snprintf(real, PP_PATH_MAX, "%s", resolved);
    return st ? stat(real, st) : 0;
}

int ftp_resolve_new(struct ftp_sess *f, const char *arg, char *vpath, char *real)
{
    char parent[PP_PATH_MAX], resolved[PATH_MAX];
    struct stat st;
    char *slash;

    if (sim_ftp_vpath(f->cwd, arg, vpath, PP_SIM_FTP_VPATH_MAX) != 0 ||
        strcmp(vpath, "/") == 0 || sim_ftp_real(f->root, vpath, real, PP_PATH_MAX) != 0) {
        errno = EACCES;
        return -1;
    }
    snprintf(parent, sizeof(parent), "%s", real);
    slash = strrchr(parent, '/');
    *slash = '\0';
    if (realpath(parent, resolved) == NULL) {
        return -1;
    }
    if (!sim_ftp_inside(f->root, resolved)) {
        errno = EACCES;
        return -1;
    }
    if (lstat(real, &st) == 0 && S_ISLNK(st.st_mode) &&
        (realpath(real, resolved) == NULL || !sim_ftp_inside(f->root, resolved))) {
        errno = EACCES;
        return -1;
    }
    return 0;
}

void ftp_reply_errno(struct ftp_sess *f, const char *what)
{
    const char *why = errno == ENOENT ? "No such file or directory"
                      : errno == ENOTEMPTY || errno == EEXIST ? "Directory not empty or exists"
                      : errno == ENOTDIR ? "Not a directory"
                      : errno == EISDIR ? "Is a directory"
                      : "Permission denied";

    ftp_reply(f, PP_FTP_550_UNAVAILABLE, "%s: %s.", what, why);
}

/* ---- login ------------------------------------------------------------------ */

static void cmd_user(struct ftp_sess *f, const char *arg)
{
    if (f->logged_in) {
        ftp_reply(f, PP_FTP_530_NOT_LOGGED_IN, "Can't change to another user.");
        return;
    }
    f->user_ok = strcmp(arg, SIM_FTP_USER) == 0;
    ftp_reply(f, PP_FTP_331_NEED_PASSWORD, "Please specify the password.");
}

static void cmd_pass(struct ftp_sess *f, char *arg)
{
    bool ok = f->user_ok && pp_secret_equal(arg, f->sim->cfg.access_code);

    pp_wipe(arg, strlen(arg));
    if (f->logged_in) {
        ftp_reply(f, PP_FTP_230_LOGGED_IN, "Already logged in.");
        return;
    }
    if (!ok) {
        service_auth_failed(f->c, f->user_ok ? "wrong access code" : "wrong user");
        f->user_ok = false;
        ftp_reply(f, PP_FTP_530_NOT_LOGGED_IN, "Login incorrect.");
        if (++f->bad_logins >= PP_SIM_FTP_MAX_BAD_LOGINS) {
            f->quit = true;
        }
        return;
    }
    service_auth_ok(f->c);
    f->logged_in = true;
    log_info(SVC, f->c->conn.id, "%s logged in", SIM_FTP_USER);
    ftp_reply(f, PP_FTP_230_LOGGED_IN, "Login successful.");
}

/* ---- simple commands ------------------------------------------------------- */

static void cmd_feat(struct ftp_sess *f)
{
    static const char *const lines[] = {
        "211-Features:", " EPSV", " MDTM", " MLST type*;size*;modify*;perm*;", " PASV",
        " PBSZ", " PROT", " REST STREAM", " SIZE", " TVFS", " UTF8", "211 End",
    };

    reply_lines(f, lines, PP_ARRAY_LEN(lines));
}

static void quote_path(char *out, size_t cap, const char *vpath)
{
    size_t j = 0;

    /* RFC 959: a '"' inside the quoted path name is doubled. */
    for (size_t i = 0; vpath[i] != '\0' && j + 3 < cap; i++) {
        if (vpath[i] == '"') {
            out[j++] = '"';
        }
        out[j++] = vpath[i];
    }
    out[j] = '\0';
}

static void cmd_pwd(struct ftp_sess *f)
{
    char q[2 * PP_SIM_FTP_VPATH_MAX];

    quote_path(q, sizeof(q), f->cwd);
    ftp_reply(f, PP_FTP_257_PATH_CREATED, "\"%s\" is the current directory", q);
}

static void cmd_cwd(struct ftp_sess *f, const char *arg)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX];
    struct stat st;

    if (ftp_resolve_existing(f, arg, vpath, real, &st) != 0) {
        ftp_reply_errno(f, "Failed to change directory");
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        ftp_reply(f, PP_FTP_550_UNAVAILABLE, "Failed to change directory: not a directory.");
        return;
    }
    snprintf(f->cwd, sizeof(f->cwd), "%s", vpath);
    ftp_reply(f, PP_FTP_250_FILE_OK, "Directory successfully changed.");
}

static void cmd_type(struct ftp_sess *f, const char *arg)
{
    /* Like the printer: no ASCII conversion either way. */
    if (strcasecmp(arg, "I") == 0 || strcasecmp(arg, "L 8") == 0) {
        ftp_reply(f, PP_FTP_200_OK, "Switching to Binary mode.");
    } else if (strcasecmp(arg, "A") == 0 || strcasecmp(arg, "A N") == 0) {
        ftp_reply(f, PP_FTP_200_OK, "Switching to ASCII mode.");
    } else {
        ftp_reply(f, PP_FTP_504_BAD_PARAM, "Unrecognised TYPE command.");
    }
}

static void cmd_prot(struct ftp_sess *f, const char *arg)
{
    if (strcasecmp(arg, "P") == 0) {
        f->prot_private = true;
        ftp_reply(f, PP_FTP_200_OK, "PROT now Private.");
    } else if (strcasecmp(arg, "C") == 0) {
        /* Accepted, but transfers are then refused with 521, as the printer does. */
        f->prot_private = false;
        ftp_reply(f, PP_FTP_200_OK, "PROT now Clear.");
    } else {
        ftp_reply(f, PP_FTP_504_BAD_PARAM, "PROT not supported.");
    }
}

static void cmd_size_mdtm(struct ftp_sess *f, const char *arg, bool size)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX], when[16];
    struct stat st;

    if (ftp_resolve_existing(f, arg, vpath, real, &st) != 0 || !S_ISREG(st.st_mode)) {
        ftp_reply(f, PP_FTP_550_UNAVAILABLE, "Could not get file %s.", size ? "size" : "time");
        return;
    }
    if (size) {
        ftp_reply(f, PP_FTP_213_FILE_STATUS, "%llu", (unsigned long long)st.st_size);
    } else {
        sim_ftp_format_time(when, sizeof(when), st.st_mtime);
        ftp_reply(f, PP_FTP_213_FILE_STATUS, "%s", when);
    }
}

static void cmd_mlst(struct ftp_sess *f, const char *arg)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX];
    char fact[PP_SIM_FTP_VPATH_MAX + 128];
    struct stat st;
    int n;

    if (ftp_resolve_existing(f, arg, vpath, real, &st) != 0 || !sim_ftp_name_ok(vpath)) {
        ftp_reply_errno(f, "Could not list");
        return;
    }
    fact[0] = ' ';
    n = sim_ftp_format_mlsx(fact + 1, sizeof(fact) - 1, vpath, &st);
    if (n < 2) {
        ftp_reply(f, PP_FTP_501_BAD_ARGS, "Path too long.");
        return;
    }
    fact[n - 1] = '\0'; /* drop CRLF: reply_lines adds it */
    {
        const char *const lines[] = { "250-Listing", fact, "250 End" };
        reply_lines(f, lines, PP_ARRAY_LEN(lines));
    }
}

static void cmd_rest(struct ftp_sess *f, const char *arg)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(arg, &end, 10);
    if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || v > (unsigned long long)INT64_MAX) {
        ftp_reply(f, PP_FTP_501_BAD_ARGS, "Bad REST offset.");
        return;
    }
    f->rest = v;
    ftp_reply(f, PP_FTP_350_PENDING, "Restart position accepted (%llu).", v);
}

/* ---- file system commands -------------------------------------------------- */

static void cmd_dele(struct ftp_sess *f, const char *arg)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX];
    struct stat st;

    if (ftp_resolve_new(f, arg, vpath, real) != 0 || lstat(real, &st) != 0) {
        ftp_reply_errno(f, "Delete operation failed");
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        ftp_reply_errno(f, "Delete operation failed");
        return;
    }
    if (unlink(real) != 0) {
        ftp_reply_errno(f, "Delete operation failed");
        return;
    }
    log_info(SVC, f->c->conn.id, "deleted %s", vpath);
    ftp_reply(f, PP_FTP_250_FILE_OK, "Delete operation successful.");
}

static void cmd_mkd(struct ftp_sess *f, const char *arg)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX], q[2 * PP_SIM_FTP_VPATH_MAX];

    if (ftp_resolve_new(f, arg, vpath, real) != 0 || mkdir(real, 0755) != 0) {
        ftp_reply_errno(f, "Create directory operation failed");
        return;
    }
    quote_path(q, sizeof(q), vpath);
    ftp_reply(f, PP_FTP_257_PATH_CREATED, "\"%s\" created", q);
}

static void cmd_rmd(struct ftp_sess *f, const char *arg)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX];

    if (ftp_resolve_new(f, arg, vpath, real) != 0 || rmdir(real) != 0) {
        ftp_reply_errno(f, "Remove directory operation failed");
        return;
    }
    ftp_reply(f, PP_FTP_250_FILE_OK, "Remove directory operation successful.");
}

static void cmd_rnfr(struct ftp_sess *f, const char *arg)
{
    char vpath[PP_SIM_FTP_VPATH_MAX], real[PP_PATH_MAX];
    struct stat st;

    f->has_rnfr = false;
    if (ftp_resolve_new(f, arg, vpath, real) != 0 || lstat(real, &st) != 0) {
        ftp_reply_errno(f, "RNFR command failed");
        return;
    }
    snprintf(f->rnfr, sizeof(f->rnfr), "%s", vpath);
    f->has_rnfr = true;
    ftp_reply(f, PP_FTP_350_PENDING, "Ready for RNTO.");
}

static void cmd_rnto(struct ftp_sess *f, const char *arg)
{
    char vfrom[PP_SIM_FTP_VPATH_MAX], from[PP_PATH_MAX];
    char vto[PP_SIM_FTP_VPATH_MAX], to[PP_PATH_MAX];

    if (!f->has_rnfr) {
        ftp_reply(f, PP_FTP_503_BAD_SEQUENCE, "RNFR required first.");
        return;
    }
    f->has_rnfr = false;
    /* Resolve the source again: it is absolute, so the cwd does not matter. */
    if (ftp_resolve_new(f, f->rnfr, vfrom, from) != 0 || ftp_resolve_new(f, arg, vto, to) != 0 ||
        rename(from, to) != 0) {
        ftp_reply_errno(f, "Rename failed");
        return;
    }
    log_info(SVC, f->c->conn.id, "renamed %s to %s", vfrom, vto);
    ftp_reply(f, PP_FTP_250_FILE_OK, "Rename successful.");
}

/* ---- dispatch --------------------------------------------------------------- */

/* Commands allowed before login. */
static bool pre_login(const char *verb)
{
    static const char *const ok[] = { "USER", "PASS", "QUIT", "SYST", "FEAT", "PBSZ", "PROT",
                                      "OPTS", "NOOP", "AUTH", "HELP" };

    for (size_t i = 0; i < PP_ARRAY_LEN(ok); i++) {
        if (strcmp(verb, ok[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Commands that need an argument. */
static bool needs_arg(const char *verb)
{
    static const char *const v[] = { "CWD", "SIZE", "MDTM", "RETR", "STOR", "APPE", "REST",
                                     "DELE", "MKD", "XMKD", "RMD", "XRMD", "RNFR", "RNTO",
                                     "TYPE", "PROT", "PBSZ", "OPTS", "USER" };

    for (size_t i = 0; i < PP_ARRAY_LEN(v); i++) {
        if (strcmp(verb, v[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool dispatch_session(struct ftp_sess *f, const char *v, char *a)
{
    if (strcmp(v, "USER") == 0) {
        cmd_user(f, a);
    } else if (strcmp(v, "PASS") == 0) {
        cmd_pass(f, a);
    } else if (strcmp(v, "QUIT") == 0) {
        ftp_reply(f, PP_FTP_221_BYE, "Goodbye.");
        f->quit = true;
    } else if (strcmp(v, "SYST") == 0) {
        ftp_reply(f, PP_FTP_215_SYSTEM, "UNIX Type: L8");
    } else if (strcmp(v, "FEAT") == 0) {
        cmd_feat(f);
    } else if (strcmp(v, "PBSZ") == 0) {
        ftp_reply(f, PP_FTP_200_OK, "PBSZ=0");
    } else if (strcmp(v, "PROT") == 0) {
        cmd_prot(f, a);
    } else if (strcmp(v, "OPTS") == 0) {
        if (strcasecmp(a, "UTF8 ON") == 0 || strcasecmp(a, "UTF8") == 0) {
            ftp_reply(f, PP_FTP_200_OK, "Always in UTF8 mode.");
        } else {
            ftp_reply(f, PP_FTP_501_BAD_ARGS, "Option not understood.");
        }
    } else if (strcmp(v, "NOOP") == 0) {
        ftp_reply(f, PP_FTP_200_OK, "NOOP ok.");
    } else if (strcmp(v, "AUTH") == 0) {
        /* Implicit TLS: the connection is already protected. */
        ftp_reply(f, SIM_FTP_534_DENIED, "Already using TLS.");
    } else if (strcmp(v, "HELP") == 0) {
        ftp_reply(f, PP_FTP_214_HELP, "Help OK.");
    } else {
        return false;
    }
    return true;
}

static bool dispatch_nav(struct ftp_sess *f, const char *v, char *a)
{
    if (strcmp(v, "PWD") == 0 || strcmp(v, "XPWD") == 0) {
        cmd_pwd(f);
    } else if (strcmp(v, "CWD") == 0 || strcmp(v, "XCWD") == 0) {
        cmd_cwd(f, a);
    } else if (strcmp(v, "CDUP") == 0 || strcmp(v, "XCUP") == 0) {
        cmd_cwd(f, "..");
    } else if (strcmp(v, "TYPE") == 0) {
        cmd_type(f, a);
    } else if (strcmp(v, "MODE") == 0 || strcmp(v, "STRU") == 0) {
        bool ok = strcasecmp(a, v[0] == 'M' ? "S" : "F") == 0;
        ftp_reply(f, ok ? PP_FTP_200_OK : PP_FTP_504_BAD_PARAM, ok ? "OK." : "Not supported.");
    } else if (strcmp(v, "SIZE") == 0) {
        cmd_size_mdtm(f, a, true);
    } else if (strcmp(v, "MDTM") == 0) {
        cmd_size_mdtm(f, a, false);
    } else if (strcmp(v, "MLST") == 0) {
        cmd_mlst(f, a);
    } else if (strcmp(v, "REST") == 0) {
        cmd_rest(f, a);
    } else if (strcmp(v, "STAT") == 0) {
        ftp_reply(f, PP_FTP_211_STATUS, "pandaproxy-sim FTPS, logged in as %s.", SIM_FTP_USER);
    } else if (strcmp(v, "ALLO") == 0) {
        ftp_reply(f, PP_FTP_202_NOT_IMPLEMENTED, "ALLO is obsolete.");
    } else if (strcmp(v, "ABOR") == 0) {
        if (f->abor_seen) {
            f->abor_seen = false;
            ftp_reply(f, PP_FTP_226_TRANSFER_DONE, "ABOR successful.");
        } else {
            ftp_reply(f, SIM_FTP_225_DATA_OPEN_NO_XFER, "No transfer to ABOR.");
        }
    } else {
        return false;
    }
    return true;
}

static bool dispatch_files(struct ftp_sess *f, const char *v, char *a)
{
    if (strcmp(v, "PASV") == 0) {
        ftp_cmd_pasv(f, false);
    } else if (strcmp(v, "EPSV") == 0) {
        if (strcasecmp(a, "ALL") == 0) {
            ftp_reply(f, PP_FTP_200_OK, "EPSV ALL ok.");
        } else {
            ftp_cmd_pasv(f, true);
        }
    } else if (strcmp(v, "PORT") == 0 || strcmp(v, "EPRT") == 0) {
        ftp_reply(f, PP_FTP_502_NOT_IMPLEMENTED, "Active mode is not supported; use PASV.");
    } else if (strcmp(v, "LIST") == 0) {
        ftp_cmd_list(f, a, FTP_LIST);
    } else if (strcmp(v, "NLST") == 0) {
        ftp_cmd_list(f, a, FTP_NLST);
    } else if (strcmp(v, "MLSD") == 0) {
        ftp_cmd_list(f, a, FTP_MLSD);
    } else if (strcmp(v, "RETR") == 0) {
        ftp_cmd_retr(f, a);
    } else if (strcmp(v, "STOR") == 0) {
        ftp_cmd_stor(f, a, false);
    } else if (strcmp(v, "APPE") == 0) {
        ftp_cmd_stor(f, a, true);
    } else if (strcmp(v, "DELE") == 0) {
        cmd_dele(f, a);
    } else if (strcmp(v, "MKD") == 0 || strcmp(v, "XMKD") == 0) {
        cmd_mkd(f, a);
    } else if (strcmp(v, "RMD") == 0 || strcmp(v, "XRMD") == 0) {
        cmd_rmd(f, a);
    } else if (strcmp(v, "RNFR") == 0) {
        cmd_rnfr(f, a);
    } else if (strcmp(v, "RNTO") == 0) {
        cmd_rnto(f, a);
    } else {
        return false;
    }
    return true;
}

static void dispatch(struct ftp_sess *f)
{
    const char *v = f->cmd.verb;
    char *a = f->cmd.arg;

    if (strcmp(v, "PASS") == 0) {
        log_debug(SVC, f->c->conn.id, "<- PASS ****");
    } else {
        log_debug(SVC, f->c->conn.id, "<- %s%s%s", v, f->cmd.has_arg ? " " : "", a);
    }
    if (strcmp(v, "RNTO") != 0 && strcmp(v, "RNFR") != 0) {
        f->has_rnfr = false;
    }
    if (!f->logged_in && !pre_login(v)) {
        ftp_reply(f, PP_FTP_530_NOT_LOGGED_IN, "Please login with USER and PASS.");
        return;
    }
    if (needs_arg(v) && a[0] == '\0') {
        ftp_reply(f, PP_FTP_501_BAD_ARGS, "%s needs an argument.", v);
        return;
    }
    if (!dispatch_session(f, v, a) && !dispatch_nav(f, v, a) && !dispatch_files(f, v, a)) {
        ftp_reply(f, PP_FTP_500_SYNTAX, "Unknown command.");
    }
}

/* ---- control loop ----------------------------------------------------------- */

/* Telnet IP/Synch bytes some clients put before ABOR. */
static const char *skip_telnet(const char *line, size_t *len)
{
    while (*len > 0 && (unsigned char)line[0] >= 0x80) {
        line++;
        (*len)--;
    }
    return line;
}

/* Read control bytes into f->in (a conn_read result), meanwhile accepting the data
 * connection and running its TLS handshake if the client already opened it. */
static int read_control(struct ftp_sess *f, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - pp_now_ms();
        short events = 0;
        int dfd = ftp_data_idle_fd(f, &events);
        struct pollfd p[3] = {
            { .fd = f->ctl->fd, .events = POLLIN },
            { .fd = dfd, .events = events },
            { .fd = f->cancel_fd, .events = POLLIN },
        };
        int r;

        if (left <= 0) {
            return PP_IO_TIMEOUT;
        }
        if (dfd < 0 || conn_pending(f->ctl)) {
            return conn_read(f->ctl, f->in, sizeof(f->in), (int)left, f->cancel_fd);
        }
        r = poll(p, PP_ARRAY_LEN(p), (int)left);
        if (r < 0 && errno != EINTR) {
            return PP_IO_ERR;
        }
        if (r > 0 && p[2].revents != 0) {
            return PP_IO_CANCEL;
        }
        if (r > 0 && p[1].revents != 0) {
            ftp_data_idle_event(f);
        }
        if (r > 0 && p[0].revents != 0) {
            return conn_read(f->ctl, f->in, sizeof(f->in), (int)left, f->cancel_fd);
        }
    }
}

/* The next command into f->cmd: 1, or 0 when the session ends. */
static int next_command(struct ftp_sess *f)
{
    for (;;) {
        while (f->in_off < f->in_len) {
            const char *line;
            size_t used = 0, len = 0;
            pp_ftp_err e = pp_ftp_lines_feed(&f->lines, f->in + f->in_off, f->in_len - f->in_off,
                                             &used, &line, &len);

            f->in_off += used;
            if (e == PP_FTP_OK) {
                line = skip_telnet(line, &len);
                e = pp_ftp_parse_command(line, len, &f->cmd);
                pp_wipe(f->linebuf, sizeof(f->linebuf)); /* it may hold the access code */
                if (e == PP_FTP_OK) {
                    return 1;
                }
                if (len == 0) {
                    continue; /* an empty line: ignore it like most servers */
                }
            }
            if (e != PP_FTP_ENEED && !ftp_reply(f, PP_FTP_500_SYNTAX, "%s.", pp_ftp_strerror(e))) {
                return 0;
            }
        }
        f->in_off = f->in_len = 0;
        {
            int64_t timeout = f->logged_in ? PP_FTP_IDLE_MS
                                           : f->c->start_ms + PP_AUTH_TIMEOUT_MS - pp_now_ms();
            int r = timeout > 0 ? read_control(f, pp_now_ms() + timeout) : PP_IO_TIMEOUT;

            if (r == PP_IO_TIMEOUT) {
                ftp_reply(f, PP_FTP_421_UNAVAILABLE, "Timeout.");
                log_info(SVC, f->c->conn.id, "%s: closing", f->logged_in ? "idle" : "no login");
                return 0;
            }
            if (r <= 0) {
                return 0;
            }
            f->in_len = (size_t)r;
        }
    }
}

static void session(struct ftp_sess *f)
{
    if (!ftp_reply(f, PP_FTP_220_READY, "Welcome to the simulated Bambu Lab printer.")) {
        return;
    }
    while (!f->quit && next_command(f) == 1) {
        dispatch(f);
        pp_wipe(&f->cmd, sizeof(f->cmd));
    }
}

static bool handshake(struct client *c)
{
    int r;

    c->conn.ssl = SSL_new(ftp_state.ctx);
    if (c->conn.ssl == NULL || SSL_set_fd(c->conn.ssl, c->conn.fd) != 1) {
        log_ssl_errors(LOG_LVL_ERROR, SVC, c->conn.id, "cannot create a TLS session");
        return false;
    }
    SSL_set_accept_state(c->conn.ssl);
    r = conn_handshake(&c->conn, c->start_ms + PP_HANDSHAKE_TIMEOUT_MS,
                       service_cancel_fd(c->svc));
    if (r != 0) {
        log_ssl_errors(LOG_LVL_DEBUG, SVC, c->conn.id, "TLS handshake");
        log_info(SVC, c->conn.id, "TLS handshake with %s failed", c->peer_str);
        return false;
    }
    return true;
}

static void ftp_serve(struct service *svc, struct client *c)
{
    struct ftp_sess *f;

    if (!handshake(c)) {
        return;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return;
    }
    f->sim = svc->priv;
    f->c = c;
    f->ctl = &c->conn;
    f->cancel_fd = service_cancel_fd(svc);
    f->ctx = ftp_state.ctx;
    f->root = ftp_state.root;
    f->pasv_fd = -1;
    conn_init(&f->data, -1, SVC, c->conn.id);
    snprintf(f->cwd, sizeof(f->cwd), "/");
    (void)pp_ftp_lines_init(&f->lines, f->linebuf, sizeof(f->linebuf));
    sim_status_changed(f->sim);
    session(f);
    ftp_data_cleanup(f);
    pp_wipe(f, sizeof(*f));
    free(f);
    sim_status_changed(svc->priv);
}

/* ---- service ---------------------------------------------------------------- */

static SSL_CTX *make_ctx(const struct pp_config *cfg, char *err, size_t errlen)
{
    struct tls_identity id;
    SSL_CTX *ctx;

    identity_paths(cfg, &id);
    ctx = identity_server_ctx(&id, err, errlen);
    if (ctx == NULL) {
        return NULL;
    }
    /* Session-id cache (TLS 1.2) and stateless tickets (TLS 1.2 and 1.3) both let a
     * data connection resume the control connection's session. */
    if (SSL_CTX_set_session_id_context(ctx, session_id_ctx, sizeof(session_id_ctx) - 1) != 1) {
        snprintf(err, errlen, "cannot set the TLS session id context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, PP_SIM_FTP_SESSION_CACHE);
    SSL_CTX_set_timeout(ctx, PP_SIM_FTP_SESSION_LIFE_S);
    return ctx;
}

static int ftp_start(struct service *svc, char *err, size_t errlen)
{
    struct sim *s = svc->priv;
    char path[PP_PATH_MAX + 16];

    for (size_t i = 0; i < PP_ARRAY_LEN(printer_dirs); i++) {
        snprintf(path, sizeof(path), "%s/%s", s->ftp_root, printer_dirs[i]);
        if (pp_mkdir_p(path, 0755) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (realpath(s->ftp_root, ftp_state.root) == NULL) {
        snprintf(err, errlen, "FTP root %s: %s", s->ftp_root, strerror(errno));
        return -1;
    }
    ftp_state.ctx = make_ctx(svc->cfg, err, errlen);
    if (ftp_state.ctx == NULL) {
        return -1;
    }
    log_info(SVC, 0, "serving %s", ftp_state.root);
    return 0;
}

static void ftp_stop(struct service *svc)
{
    /* Every client socket was shut down: wait for the workers to leave before the
     * context they read goes (their SSL objects hold references of their own). */
    while (service_client_count(svc) > 0) {
        pp_sleep(STOP_POLL_MS, -1);
    }
    SSL_CTX_free(ftp_state.ctx);
    ftp_state.ctx = NULL;
}

const struct service_ops sim_ftp_ops = {
    .start = ftp_start,
    .serve = ftp_serve,
    .stop = ftp_stop,
    /* serve runs the handshake with the FTP context, so data connections can resume. */
    .raw = true,
};
