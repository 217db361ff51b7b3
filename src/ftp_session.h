/* SPDX-License-Identifier: MIT */
/*
 * One client's FTP session as the proxy sees it: the client's control connection,
 * its own printer control connection, and the data connections of the transfer
 * in progress. Shared by svc_ftp.c (login, commands) and ftp_xfer.c (transfers);
 * every connection here is owned by the session's worker thread.
 */
#ifndef PP_FTP_SESSION_H
#define PP_FTP_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "ftp_ctl.h"
#include "service.h"
#include "tls.h"

/* Sockets stop() must be able to wake (the client's control socket is the runtime's). */
enum ftp_fd_slot { FTP_FD_UPCTL, FTP_FD_UPDATA, FTP_FD_CLDATA, FTP_FD_LISTEN, FTP_FD_COUNT };

enum ftp_data_mode { FTP_DATA_NONE, FTP_DATA_PASV, FTP_DATA_ACTIVE };

struct ftp_session;

/* Service-wide state (svc->priv). */
struct ftp_svc {
    int slots[2];                 /* a pipe holding one byte per free printer session */
    atomic_uint port_cursor;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct ftp_session *sessions; /* under lock */
    int active;                   /* serve calls running, under lock */
};

struct ftp_session {
    struct service *svc;
    struct client *c;
    const struct pp_config *cfg;
    struct ftp_svc *fs;
    int cancel_fd;
    struct ftp_ctl cl, up;
    struct pp_conn upconn;
    bool prot_p;
    bool quit_sent;                    /* the client's QUIT went to the printer */
    enum ftp_data_mode mode;
    int listen_fd;                     /* passive listener for the next transfer */
    int data_port;
    struct sockaddr_storage active;    /* PORT/EPRT target */
    int up_data_fd;                    /* TCP to the printer's passive port */
    struct pp_conn cldata, updata;
    int fds[FTP_FD_COUNT];             /* under fs->lock, for stop() */
    struct ftp_session *prev, *next;
};

/* Record (fd >= 0) or forget (-1) a socket stop() may shut down. */
void ftp_track(struct ftp_session *s, enum ftp_fd_slot slot, int fd);
/* Close the passive listener / printer data socket of a pending transfer. */
void ftp_data_reset(struct ftp_session *s);
/* Close a data connection (tracked in slot); graceful sends close_notify. */
void ftp_close_data(struct ftp_session *s, struct pp_conn *d, enum ftp_fd_slot slot,
                    bool graceful);

/* ftp_read_command results besides the enum pp_io values (which end the session). */
#define FTP_CMD_OK   1   /* cmd holds a valid command */
#define FTP_CMD_SKIP 2   /* a bad line, already answered with 500 */

/* Read and parse one client command. */
int ftp_read_command(struct ftp_session *s, pp_ftp_cmd *cmd, int timeout_ms);

/* Run a transfer command (line as the client sent it). 0 keeps the session, -1 ends it. */
int ftp_xfer_run(struct ftp_session *s, const char *line, bool upload);

#endif
