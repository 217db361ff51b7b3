/* SPDX-License-Identifier: MIT */
/*
 * The FTPS service: the proxy greets and authenticates each client itself, then
 * gives it one of --ftp-max-sessions printer control sessions and relays commands
 * and replies line by line, stepping in for data-channel setup (PASV/EPSV/PORT/EPRT,
 * PBSZ/PROT) so that the printer always sees passive mode with TLS session reuse.
 */
#include "autoconf.h"

#include "svc_ftp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ftp_codec.h"
#include "ftp_ctl.h"
#include "ftp_data.h"
#include "ftp_session.h"
#include "limits.h"
#include "log.h"
#include "net.h"
#include "upstream.h"
#include "util.h"

#define FTP_USER "bblp"

/* Telnet "interrupt process" / "synch" bytes some clients put before ABOR. */
#define TELNET_IAC 0xff
#define TELNET_IP  0xf4
#define TELNET_DM  0xf2

/* up_login_once: worth another attempt. */
#define UP_RETRY 1

/* What a command makes the session do next. */
enum step { STEP_NEXT, STEP_END };

/* ---- service-wide state -------------------------------------------------- */

void ftp_track(struct ftp_session *s, enum ftp_fd_slot slot, int fd)
{
    pthread_mutex_lock(&s->fs->lock);
    s->fds[slot] = fd;
    pthread_mutex_unlock(&s->fs->lock);
}

static int ftp_start(struct service *svc, char *err, size_t errlen)
{
    struct ftp_svc *fs = calloc(1, sizeof(*fs));

    if (fs == NULL || pipe2(fs->slots, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "ftp: cannot create the session slots: %s", strerror(errno));
        free(fs);
        return -1;
    }
    for (int i = 0; i < svc->cfg->ftp_max_sessions; i++) {
        (void)!write(fs->slots[1], "s", 1);
    }
    pthread_mutex_init(&fs->lock, NULL);
    pthread_cond_init(&fs->idle, NULL);
    svc->priv = fs;
    return 0;
}

static void ftp_stop(struct service *svc)
{
    struct ftp_svc *fs = svc->priv;

    if (fs == NULL) {
        return;
    }
    /* Wake every session blocked on a socket the runtime does not know about. */
    pthread_mutex_lock(&fs->lock);
    for (struct ftp_session *s = fs->sessions; s != NULL; s = s->next) {
        for (int i = 0; i < FTP_FD_COUNT; i++) {
            conn_abort_fd(s->fds[i]);
        }
    }
    while (fs->active > 0) {
        pthread_cond_wait(&fs->idle, &fs->lock);
    }
    pthread_mutex_unlock(&fs->lock);
    /* A worker whose handshake finished just now may still enter serve: fs stays
     * until every worker has gone (their sockets are shut down already). */
    pthread_mutex_lock(&svc->lock);
    while (svc->nclients > 0) {
        pthread_cond_wait(&svc->idle, &svc->lock);
    }
    pthread_mutex_unlock(&svc->lock);
    close(fs->slots[0]);
    close(fs->slots[1]);
    pthread_mutex_destroy(&fs->lock);
    pthread_cond_destroy(&fs->idle);
    free(fs);
    svc->priv = NULL;
}

/*
 * Take a printer session slot, waiting up to PP_FTP_SLOT_WAIT_MS. A client that
 * hangs up while waiting gives up its place. true when a slot is held.
 */
static bool slot_take(struct ftp_session *s)
{
    int64_t deadline = pp_now_ms() + PP_FTP_SLOT_WAIT_MS;
    bool logged = false;

    for (;;) {
        char b;
        if (read(s->fs->slots[0], &b, 1) == 1) {
            return true;
        }
        if (!logged) {
            log_info(s->svc->name, s->c->conn.id,
                     "all %d printer sessions in use; waiting for one to end",
                     s->cfg->ftp_max_sessions);
            logged = true;
        }
        int64_t left = deadline - pp_now_ms();
        if (left <= 0) {
            return false;
        }
        struct pollfd p[3] = {
            { .fd = s->fs->slots[0], .events = POLLIN },
            { .fd = s->cancel_fd, .events = POLLIN },
            { .fd = s->c->conn.fd, .events = POLLRDHUP },
        };
        if (poll(p, 3, (int)left) < 0 && errno != EINTR) {
            return false;
        }
        if ((p[1].revents & POLLIN) || (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            return false;
        }
    }
}

static void slot_give(struct ftp_session *s)
{
    /* A printer counts a session as ended a moment after its socket closed: the
     * next session waits that moment out instead of being refused. */
    (void)pp_sleep(PP_FTP_SLOT_GRACE_MS, s->cancel_fd);
    (void)!write(s->fs->slots[1], "s", 1);
}

/* ---- small helpers -------------------------------------------------------- */

static int reply(struct ftp_session *s, int code, const char *text)
{
    return ftp_ctl_reply(&s->c->conn, code, "%s", text);
}

static void close_fd_tracked(struct ftp_session *s, int *fd, enum ftp_fd_slot slot)
{
    if (*fd >= 0) {
        ftp_track(s, slot, -1);
        close(*fd);
        *fd = -1;
    }
}

void ftp_data_reset(struct ftp_session *s)
{
    close_fd_tracked(s, &s->listen_fd, FTP_FD_LISTEN);
    close_fd_tracked(s, &s->up_data_fd, FTP_FD_UPDATA);
    s->mode = FTP_DATA_NONE;
}

void ftp_close_data(struct ftp_session *s, struct pp_conn *d, enum ftp_fd_slot slot,
                    bool graceful)
{
    if (d->fd >= 0 || d->ssl != NULL) {
        ftp_track(s, slot, -1);
        conn_close(d, graceful);
    }
}

/* Send a command to the printer and read its final reply into r. */
static int up_command(struct ftp_session *s, const char *line, struct ftp_reply *r,
                      int timeout_ms)
{
    int code;

    if (ftp_ctl_send(&s->upconn, line) != 0) {
        return PP_IO_ERR;
    }
    do {
        code = ftp_ctl_read_reply(&s->up, NULL, r, timeout_ms, s->cancel_fd);
    } while (code >= PP_FTP_CODE_MIN && code < 200);
    return code;
}

/* ---- login ---------------------------------------------------------------- */

/* Open the printer control session and wait for its greeting. */
static int up_open(struct ftp_session *s, struct ftp_reply *rp)
{
    char err[512];
    enum upstream_result ur;
    int code;

    ur = upstream_connect(s->cfg, PP_SVC_FTP, &s->upconn, s->svc->name, s->cancel_fd, err,
                          sizeof(err));
    if (ur != UP_OK) {
        log_warn(s->svc->name, s->c->conn.id, "printer unavailable: %s", err);
        return ur == UP_NET || ur == UP_TLS ? UP_RETRY : -1;
    }
    ftp_track(s, FTP_FD_UPCTL, s->upconn.fd);
    ftp_data_no_auto_retry(s->upconn.ssl);
    ftp_ctl_init(&s->up, &s->upconn);
    do {
        code = ftp_ctl_read_reply(&s->up, NULL, rp, PP_FTP_REPLY_MS, s->cancel_fd);
    } while (code >= PP_FTP_CODE_MIN && code < 200);
    if (code != PP_FTP_220_READY) {
        log_warn(s->svc->name, s->c->conn.id, "printer greeting was %d, not 220", code);
        /* A printer still counting a session that just ended hangs up or says 421. */
        return code == PP_IO_CANCEL ? -1 : UP_RETRY;
    }
    return 0;
}

/* Log in with the configured code. 0, UP_RETRY or -1. */
static int up_login_once(struct ftp_session *s, struct ftp_reply *rp)
{
    char pass[PP_ACCESS_CODE_MAX + 8];
    int code = up_open(s, rp);

    if (code != 0) {
        return code;
    }
    code = up_command(s, "USER " FTP_USER, rp, PP_FTP_REPLY_MS);
    if (code == PP_FTP_331_NEED_PASSWORD) {
        snprintf(pass, sizeof(pass), "PASS %s", s->cfg->access_code);
        code = up_command(s, pass, rp, PP_FTP_REPLY_MS);
        pp_wipe(pass, sizeof(pass));
    }
    if (code != PP_FTP_230_LOGGED_IN) {
        log_warn(s->svc->name, s->c->conn.id,
                 "the printer refused the login (%d): check the access code", code);
        return code == PP_FTP_421_UNAVAILABLE ? UP_RETRY : -1;
    }
    /* Data connections are always protected towards the printer. */
    if (up_command(s, "PBSZ 0", rp, PP_FTP_REPLY_MS) != PP_FTP_200_OK ||
        up_command(s, "PROT P", rp, PP_FTP_REPLY_MS) != PP_FTP_200_OK) {
        log_warn(s->svc->name, s->c->conn.id, "the printer refused PBSZ/PROT P");
    }
    return 0;
}

/* The printer session, retried briefly: a printer may still count a session that
 * has just closed and refuse the next one for a moment. */
static int up_login(struct ftp_session *s)
{
    struct ftp_reply *rp = malloc(sizeof(*rp));
    int r = -1;

    for (int attempt = 1; rp != NULL && attempt <= PP_FTP_LOGIN_ATTEMPTS; attempt++) {
        r = up_login_once(s, rp);
        if (r != UP_RETRY) {
            break;
        }
        ftp_track(s, FTP_FD_UPCTL, -1);
        conn_close(&s->upconn, false);
        if (!pp_sleep((int64_t)attempt * PP_FTP_LOGIN_RETRY_MS, s->cancel_fd)) {
            break;
        }
    }
    free(rp);
    return r == 0 ? 0 : -1;
}

static void up_logout(struct ftp_session *s, bool send_quit)
{
    if (s->upconn.fd < 0 && s->upconn.ssl == NULL) {
        return;
    }
    if (send_quit && !s->quit_sent && !s->upconn.failed && ftp_ctl_send(&s->upconn, "QUIT") == 0) {
        (void)ftp_ctl_read_reply(&s->up, NULL, NULL, PP_FTP_QUIT_MS, s->cancel_fd);
    }
    /* Let the printer close first, so it has counted the session as ended before
     * the slot goes to the next client. */
    int64_t deadline = pp_now_ms() + PP_FTP_QUIT_MS;
    while (!s->upconn.failed) {
        char junk[PP_FTP_LINE_BUF];
        int64_t left = deadline - pp_now_ms();
        int r = left > 0 ? conn_read(&s->upconn, junk, sizeof(junk), (int)left, s->cancel_fd) :
                           PP_IO_TIMEOUT;
        if (r <= 0 && (r != PP_IO_TIMEOUT || left <= 0)) {
            break;
        }
    }
    ftp_track(s, FTP_FD_UPCTL, -1);
    conn_close(&s->upconn, true);
}

static const char feat_reply[] =
    "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n PBSZ\r\n PROT\r\n"
    " REST STREAM\r\n SIZE\r\n211 End\r\n";

/* PBSZ and PROT: answered by the proxy on both sides of the login. */
static int data_protection(struct ftp_session *s, const pp_ftp_cmd *cmd)
{
    if (strcmp(cmd->verb, "PBSZ") == 0) {
        return reply(s, PP_FTP_200_OK, "PBSZ=0");
    }
    if (strcasecmp(cmd->arg, "P") == 0) {
        s->prot_p = true;
        return reply(s, PP_FTP_200_OK, "PROT now Private.");
    }
    if (strcasecmp(cmd->arg, "C") == 0) {
        return reply(s, 536, "Only PROT P is supported: the printer requires protected data.");
    }
    return reply(s, PP_FTP_504_BAD_PARAM, "PROT level not supported.");
}

/* The client's PASS: constant-time check; nothing reaches the printer before it. */
static bool check_pass(struct ftp_session *s, bool user_ok, pp_ftp_cmd *cmd)
{
    bool code_ok = pp_secret_equal(cmd->arg, s->cfg->access_code);

    pp_wipe(cmd->arg, sizeof(cmd->arg));
    return user_ok && code_ok;
}

/*
 * Before login: USER/PASS checked here; a handful of harmless commands answered
 * here. Returns 1 once logged in, 0 to keep reading, -1 to end the session.
 */
static int prelogin_command(struct ftp_session *s, pp_ftp_cmd *cmd, bool *user_ok,
                            bool *user_seen, int *fails)
{
    if (strcmp(cmd->verb, "USER") == 0) {
        *user_seen = true;
        *user_ok = strcmp(cmd->arg, FTP_USER) == 0;
        return reply(s, PP_FTP_331_NEED_PASSWORD, "Please specify the password.");
    }
    if (strcmp(cmd->verb, "PASS") == 0) {
        if (!*user_seen) {
            pp_wipe(cmd->arg, sizeof(cmd->arg));
            return reply(s, PP_FTP_503_BAD_SEQUENCE, "Login with USER first.");
        }
        if (check_pass(s, *user_ok, cmd)) {
            service_auth_ok(s->c);
            return 1;
        }
        *user_seen = *user_ok = false;
        service_auth_failed(s->c, "wrong FTP user or access code");
        if (reply(s, PP_FTP_530_NOT_LOGGED_IN, "Login incorrect.") != 0 ||
            ++*fails >= PP_FTP_LOGIN_TRIES) {
            return -1;
        }
        return 0;
    }
    if (strcmp(cmd->verb, "PBSZ") == 0 || strcmp(cmd->verb, "PROT") == 0) {
        return data_protection(s, cmd);
    }
    if (strcmp(cmd->verb, "FEAT") == 0) {
        return conn_write(&s->c->conn, feat_reply, sizeof(feat_reply) - 1);
    }
    if (strcmp(cmd->verb, "SYST") == 0) {
        return reply(s, PP_FTP_215_SYSTEM, "UNIX Type: L8");
    }
    if (strcmp(cmd->verb, "OPTS") == 0 || strcmp(cmd->verb, "NOOP") == 0) {
        return reply(s, PP_FTP_200_OK, "OK.");
    }
    if (strcmp(cmd->verb, "QUIT") == 0) {
        (void)reply(s, PP_FTP_221_BYE, "Goodbye.");
        return -1;
    }
    return reply(s, PP_FTP_530_NOT_LOGGED_IN, "Please login with USER and PASS.");
}

/* Skip the Telnet IP/Synch prefix some clients send before ABOR. */
static const char *skip_telnet(const char *line, size_t *len)
{
    while (*len > 0 && ((unsigned char)*line == TELNET_IAC || (unsigned char)*line == TELNET_IP ||
                        (unsigned char)*line == TELNET_DM)) {
        line++;
        (*len)--;
    }
    return line;
}

int ftp_read_command(struct ftp_session *s, pp_ftp_cmd *cmd, int timeout_ms)
{
    const char *line;
    size_t len;
    int r = ftp_ctl_read_line(&s->cl, &line, &len, timeout_ms, s->cancel_fd);

    if (r == FTP_LINE_TOOLONG) {
        return reply(s, PP_FTP_500_SYNTAX, "Command line too long.") == 0 ? FTP_CMD_SKIP : PP_IO_ERR;
    }
    if (r == FTP_LINE_BAD) {
        return reply(s, PP_FTP_500_SYNTAX, "Bad command line.") == 0 ? FTP_CMD_SKIP : PP_IO_ERR;
    }
    if (r != FTP_LINE_OK) {
        return r;
    }
    line = skip_telnet(line, &len);
    if (memchr(line, '\r', len) != NULL || pp_ftp_parse_command(line, len, cmd) != PP_FTP_OK) {
        return reply(s, PP_FTP_500_SYNTAX, "Unknown command.") == 0 ? FTP_CMD_SKIP : PP_IO_ERR;
    }
    return FTP_CMD_OK;
}

/* Greeting, USER/PASS, slot, printer login. true when the session may proceed. */
static bool login(struct ftp_session *s)
{
    bool user_ok = false, user_seen = false;
    int fails = 0;
    pp_ftp_cmd *cmd = malloc(sizeof(*cmd));

    if (cmd == NULL || reply(s, PP_FTP_220_READY, "PandaProxy FTP ready.") != 0) {
        free(cmd);
        return false;
    }
    for (;;) {
        int64_t left = s->c->start_ms + PP_AUTH_TIMEOUT_MS - pp_now_ms();
        int r = ftp_read_command(s, cmd, left > 0 ? (int)left : 0);
        if (r == PP_IO_TIMEOUT) {
            (void)reply(s, PP_FTP_421_UNAVAILABLE, "Login timeout.");
        }
        if (r == FTP_CMD_SKIP) {
            continue;
        }
        if (r != FTP_CMD_OK) {
            break;
        }
        r = prelogin_command(s, cmd, &user_ok, &user_seen, &fails);
        if (r < 0) {
            break;
        }
        if (r == 1) {
            pp_wipe(cmd, sizeof(*cmd));
            free(cmd);
            return true;
        }
    }
    pp_wipe(cmd, sizeof(*cmd));
    free(cmd);
    return false;
}

/* ---- data channel setup ----------------------------------------------------- */

/* Ask the printer for passive mode and connect to it (its own address, whatever
 * address its 227 names). 0, or -1 with a reply already sent to the client. */
static int up_passive(struct ftp_session *s)
{
    struct ftp_reply *r = malloc(sizeof(*r));
    char err[256];
    uint16_t port = 0;
    int code;

    if (r == NULL) {
        return -1;
    }
    code = up_command(s, "PASV", r, PP_FTP_REPLY_MS);
    if (code == PP_FTP_227_PASSIVE) {
        pp_ftp_ipv4_port hp;
        if (pp_ftp_parse_227(r->last, strlen(r->last), &hp) == PP_FTP_OK) {
            port = hp.port;
        }
    } else if (code >= 400 && code < 600) {
        code = up_command(s, "EPSV", r, PP_FTP_REPLY_MS);
        if (code == PP_FTP_229_EXT_PASSIVE) {
            (void)pp_ftp_parse_229(r->last, strlen(r->last), &port);
        }
    }
    free(r);
    if (code < 0) {
        return -2; /* printer control lost */
    }
    if (port == 0) {
        (void)reply(s, PP_FTP_425_NO_DATA_CONN, "The printer refused passive mode.");
        return -1;
    }
    s->up_data_fd = net_connect(s->cfg->printer_host, port, PP_CONNECT_TIMEOUT_MS, s->cancel_fd,
                                err, sizeof(err));
    if (s->up_data_fd < 0) {
        log_warn(s->svc->name, s->c->conn.id, "printer data port %u: %s", port, err);
        (void)reply(s, PP_FTP_425_NO_DATA_CONN, "Cannot reach the printer's data port.");
        return -1;
    }
    ftp_track(s, FTP_FD_UPDATA, s->up_data_fd);
    return 0;
}

/* The IPv4 address a PASV reply names: --ftp-pasv-address or the one the client reached. */
static int pasv_reply_addr(struct ftp_session *s, uint8_t ip[4])
{
    const struct sockaddr_storage *l = &s->c->local;

    if (s->cfg->ftp_pasv_address[0] != '\0') {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        if (getaddrinfo(s->cfg->ftp_pasv_address, NULL, &hints, &res) != 0 || res == NULL) {
            log_warn(s->svc->name, s->c->conn.id, "cannot resolve --ftp-pasv-address %s",
                     s->cfg->ftp_pasv_address);
            return -1;
        }
        memcpy(ip, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
        freeaddrinfo(res);
        return 0;
    }
    if (l->ss_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)l)->sin_addr, 4);
        return 0;
    }
    if (l->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)l)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(ip, &a->s6_addr[12], 4);
            return 0;
        }
    }
    return -1;
}

static enum step cmd_passive(struct ftp_session *s, bool extended)
{
    char host[PP_ADDRSTR_MAX], err[256], buf[PP_FTP_MAX_LINE];
    pp_ftp_ipv4_port hp = { .port = 0 };
    size_t n;
    int r;

    ftp_data_reset(s);
    if (!extended && pasv_reply_addr(s, hp.ip) != 0) {
        (void)reply(s, PP_FTP_425_NO_DATA_CONN, "PASV needs IPv4 here; use EPSV.");
        return STEP_NEXT;
    }
    r = up_passive(s);
    if (r == -2) {
        return STEP_END;
    }
    if (r != 0) {
        return STEP_NEXT;
    }
    net_host_str((struct sockaddr *)&s->c->local, host, sizeof(host));
    s->listen_fd = ftp_data_listen(host, s->cfg->ftp_data_lo, s->cfg->ftp_data_hi,
                                   &s->fs->port_cursor, &s->data_port, err, sizeof(err));
    if (s->listen_fd < 0) {
        log_warn(s->svc->name, s->c->conn.id, "%s", err);
        ftp_data_reset(s);
        (void)reply(s, PP_FTP_425_NO_DATA_CONN, "No free data port; try again.");
        return STEP_NEXT;
    }
    ftp_track(s, FTP_FD_LISTEN, s->listen_fd);
    s->mode = FTP_DATA_PASV;
    hp.port = (uint16_t)s->data_port;
    if (extended) {
        (void)pp_ftp_format_229(buf, sizeof(buf), hp.port, &n);
    } else {
        (void)pp_ftp_format_227(buf, sizeof(buf), &hp, &n);
    }
    return conn_write(&s->c->conn, buf, n) == 0 ? STEP_NEXT : STEP_END;
}

/* PORT/EPRT: only to the client's own address (no FTP bounce). */
static enum step cmd_active(struct ftp_session *s, const pp_ftp_cmd *cmd, bool extended)
{
    char want[PP_ADDRSTR_MAX];
    struct sockaddr_storage ss;
    int r;

    memset(&ss, 0, sizeof(ss));
    ftp_data_reset(s);
    if (!extended) {
        pp_ftp_ipv4_port hp;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        if (pp_ftp_parse_port(cmd->arg, cmd->arg_len, &hp) != PP_FTP_OK) {
            (void)reply(s, PP_FTP_501_BAD_ARGS, "Bad PORT argument.");
            return STEP_NEXT;
        }
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, hp.ip, 4);
        s4->sin_port = htons(hp.port);
    } else {
        pp_ftp_eprt e;
        if (pp_ftp_parse_eprt(cmd->arg, cmd->arg_len, &e) != PP_FTP_OK) {
            (void)reply(s, PP_FTP_501_BAD_ARGS, "Bad EPRT argument.");
            return STEP_NEXT;
        }
        if (e.family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            memcpy(&s4->sin_addr, e.addr, 4);
            s4->sin_port = htons(e.port);
        } else {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            memcpy(&s6->sin6_addr, e.addr, 16);
            s6->sin6_port = htons(e.port);
        }
    }
    net_host_str((struct sockaddr *)&ss, want, sizeof(want));
    if (strcmp(want, s->c->peer_host) != 0) {
        log_warn(s->svc->name, s->c->conn.id, "refused %s to %s (client is %s)", cmd->verb, want,
                 s->c->peer_host);
        (void)reply(s, extended ? PP_FTP_504_BAD_PARAM : PP_FTP_500_SYNTAX,
                    "Data connections go only to your own address.");
        return STEP_NEXT;
    }
    r = up_passive(s);
    if (r == -2) {
        return STEP_END;
    }
    if (r != 0) {
        return STEP_NEXT;
    }
    s->active = ss;
    s->mode = FTP_DATA_ACTIVE;
    return reply(s, PP_FTP_200_OK, extended ? "EPRT command successful." :
                                              "PORT command successful.") == 0 ? STEP_NEXT :
                                                                                 STEP_END;
}

/* ---- command loop ------------------------------------------------------------ */

static bool is_verb(const pp_ftp_cmd *cmd, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcmp(cmd->verb, *list) == 0) {
            return true;
        }
    }
    return false;
}

static const char *const download_verbs[] = { "RETR", "LIST", "NLST", "MLSD", NULL };
static const char *const upload_verbs[] = { "STOR", "STOU", "APPE", NULL };

/* Forward a command and relay the printer's replies until a final one. */
static enum step relay_command(struct ftp_session *s, const char *line)
{
    int code;

    if (ftp_ctl_send(&s->upconn, line) != 0) {
        (void)reply(s, PP_FTP_421_UNAVAILABLE, "Connection to the printer lost.");
        return STEP_END;
    }
    do {
        code = ftp_ctl_read_reply(&s->up, &s->c->conn, NULL, PP_FTP_REPLY_MS, s->cancel_fd);
    } while (code >= PP_FTP_CODE_MIN && code < 200);
    if (code < 0) {
        if (code != PP_IO_CANCEL) {
            (void)reply(s, PP_FTP_421_UNAVAILABLE, code == PP_IO_TIMEOUT ?
                        "The printer did not answer." : "Connection to the printer lost.");
        }
        return STEP_END;
    }
    return code == PP_FTP_421_UNAVAILABLE ? STEP_END : STEP_NEXT;
}

static enum step dispatch(struct ftp_session *s, pp_ftp_cmd *cmd, const char *line)
{
    if (strcmp(cmd->verb, "USER") == 0) {
        return reply(s, PP_FTP_530_NOT_LOGGED_IN, "Can't change to another user.") == 0 ?
               STEP_NEXT : STEP_END;
    }
    if (strcmp(cmd->verb, "PASS") == 0) {
        pp_wipe(cmd->arg, sizeof(cmd->arg));
        return reply(s, PP_FTP_230_LOGGED_IN, "Already logged in.") == 0 ? STEP_NEXT : STEP_END;
    }
    if (strcmp(cmd->verb, "PBSZ") == 0 || strcmp(cmd->verb, "PROT") == 0) {
        return data_protection(s, cmd) == 0 ? STEP_NEXT : STEP_END;
    }
    if (strcmp(cmd->verb, "AUTH") == 0 || strcmp(cmd->verb, "CCC") == 0) {
        return reply(s, 534, "Implicit TLS is in use.") == 0 ? STEP_NEXT : STEP_END;
    }
    if (strcmp(cmd->verb, "PASV") == 0) {
        return cmd_passive(s, false);
    }
    if (strcmp(cmd->verb, "EPSV") == 0) {
        if (strcasecmp(cmd->arg, "ALL") == 0) {
            return reply(s, PP_FTP_200_OK, "EPSV ALL ok.") == 0 ? STEP_NEXT : STEP_END;
        }
        return cmd_passive(s, true);
    }
    if (strcmp(cmd->verb, "PORT") == 0 || strcmp(cmd->verb, "EPRT") == 0) {
        return cmd_active(s, cmd, cmd->verb[0] == 'E');
    }
    if (is_verb(cmd, download_verbs) || is_verb(cmd, upload_verbs)) {
        return ftp_xfer_run(s, line, is_verb(cmd, upload_verbs)) == 0 ? STEP_NEXT : STEP_END;
    }
    if (strcmp(cmd->verb, "QUIT") == 0) {
        s->quit_sent = true;
        (void)relay_command(s, line);
        return STEP_END;
    }
    return relay_command(s, line);
}

/* Rebuild the command line from its parts (verb upper-cased, telnet bytes gone). */
static void command_line(const pp_ftp_cmd *cmd, char *out, size_t len)
{
    snprintf(out, len, "%s%s%s", cmd->verb, cmd->has_arg ? " " : "", cmd->arg);
}

/* Between commands: wait for the client, but notice the printer hanging up. */
static int wait_command(struct ftp_session *s)
{
    struct pollfd p[3] = {
        { .fd = s->c->conn.fd, .events = POLLIN },
        { .fd = s->upconn.fd, .events = POLLIN },
        { .fd = s->cancel_fd, .events = POLLIN },
    };
    int r;

    if (ftp_ctl_buffered(&s->cl)) {
        return 1;
    }
    do {
        r = poll(p, 3, PP_FTP_IDLE_MS);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        (void)reply(s, PP_FTP_421_UNAVAILABLE, "Idle timeout.");
        return -1;
    }
    if (r < 0 || (p[2].revents & POLLIN)) {
        return -1;
    }
    if (p[1].revents != 0 || ftp_ctl_buffered(&s->up)) {
        /* Unsolicited: the printer's own timeout notice, or it hung up. */
        int in = ftp_ctl_poll_in(&s->up);
        if (in == PP_IO_TIMEOUT) {
            return 0;
        }
        int code = in < 0 || in == PP_IO_EOF ? in : ftp_ctl_read_reply(&s->up, &s->c->conn, NULL, PP_FTP_ABOR_REPLY_MS,
                                      s->cancel_fd);
        if (code <= 0) {
            (void)reply(s, PP_FTP_421_UNAVAILABLE, "Connection to the printer lost.");
            return -1;
        }
        return code == PP_FTP_421_UNAVAILABLE ? -1 : 0;
    }
    return 1;
}

static void command_loop(struct ftp_session *s)
{
    pp_ftp_cmd *cmd = malloc(sizeof(*cmd));
    char *line = malloc(PP_FTP_MAX_LINE + PP_FTP_VERB_MAX + 2);

    while (cmd != NULL && line != NULL) {
        int w = wait_command(s);
        if (w < 0) {
            break;
        }
        if (w == 0) {
            continue;
        }
        int r = ftp_read_command(s, cmd, PP_FTP_IDLE_MS);
        if (r == FTP_CMD_SKIP) {
            continue;
        }
        if (r != FTP_CMD_OK) {
            break;
        }
        command_line(cmd, line, PP_FTP_MAX_LINE + PP_FTP_VERB_MAX + 2);
        log_debug(s->svc->name, s->c->conn.id, "client: %s", strcmp(cmd->verb, "PASS") == 0 ?
                  "PASS ****" : line);
        if (dispatch(s, cmd, line) == STEP_END) {
            break;
        }
    }
    free(cmd);
    free(line);
}

/* ---- serve -------------------------------------------------------------------- */

static void session_register(struct ftp_session *s, bool add)
{
    struct ftp_svc *fs = s->fs;

    pthread_mutex_lock(&fs->lock);
    if (add) {
        s->next = fs->sessions;
        if (fs->sessions != NULL) {
            fs->sessions->prev = s;
        }
        fs->sessions = s;
        fs->active++;
    } else {
        if (s->prev != NULL) {
            s->prev->next = s->next;
        } else {
            fs->sessions = s->next;
        }
        if (s->next != NULL) {
            s->next->prev = s->prev;
        }
        if (--fs->active == 0) {
            pthread_cond_broadcast(&fs->idle);
        }
    }
    pthread_mutex_unlock(&fs->lock);
}

static struct ftp_session *session_new(struct service *svc, struct client *c)
{
    struct ftp_session *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return NULL;
    }
    s->svc = svc;
    s->c = c;
    s->cfg = svc->cfg;
    s->fs = svc->priv;
    s->cancel_fd = service_cancel_fd(svc);
    s->listen_fd = s->up_data_fd = -1;
    conn_init(&s->upconn, -1, svc->name, 0);
    conn_init(&s->cldata, -1, svc->name, 0);
    conn_init(&s->updata, -1, svc->name, 0);
    for (int i = 0; i < FTP_FD_COUNT; i++) {
        s->fds[i] = -1;
    }
    ftp_ctl_init(&s->cl, &c->conn);
    if (c->conn.ssl != NULL) {
        ftp_data_no_auto_retry(c->conn.ssl);
    }
    return s;
}

static void ftp_serve(struct service *svc, struct client *c)
{
    struct ftp_session *s = session_new(svc, c);

    if (s == NULL) {
        return;
    }
    session_register(s, true);
    if (!login(s)) {
        goto out;
    }
    if (!slot_take(s)) {
        log_warn(svc->name, c->conn.id, "no printer session free within %d s",
                 PP_FTP_SLOT_WAIT_MS / 1000);
        (void)ftp_ctl_reply(&c->conn, PP_FTP_421_UNAVAILABLE,
                            "All %d printer FTP sessions are busy (--ftp-max-sessions); "
                            "try again later.", s->cfg->ftp_max_sessions);
        goto out;
    }
    if (up_login(s) != 0) {
        (void)reply(s, PP_FTP_421_UNAVAILABLE,
                    "The printer is not available (see the proxy's log).");
    } else {
        log_info(svc->name, c->conn.id, "logged in; printer session %lu opened", s->upconn.id);
        if (reply(s, PP_FTP_230_LOGGED_IN, "Login successful.") == 0) {
            command_loop(s);
        }
    }
    ftp_close_data(s, &s->cldata, FTP_FD_CLDATA, false);
    ftp_close_data(s, &s->updata, FTP_FD_UPDATA, false);
    ftp_data_reset(s);
    up_logout(s, true);
    slot_give(s);
out:
    session_register(s, false);
    pp_wipe(s, sizeof(*s));
    free(s);
}

const struct service_ops svc_ftp_ops = {
    .start = ftp_start,
    .serve = ftp_serve,
    .stop = ftp_stop,
};
