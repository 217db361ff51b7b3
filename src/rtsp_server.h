/* SPDX-License-Identifier: MIT */
/*
 * The gst-rtsp-server runtime shared by the proxy's RTSPS service and the simulator's
 * RTSPS camera: GStreamer start-up on first use, one server on its own GMainContext in
 * its own thread, TLS from PEM files, basic auth with a constant-time check, a client
 * cap, client counters, session-pool cleanup and an orderly stop. HAVE_RTSP only.
 */
#ifndef PP_RTSP_SERVER_H
#define PP_RTSP_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

struct rtsp_server_opts {
    const char *name;              /* service name in log lines */
    const char *bind_addr;
    int port;                      /* 0: any free port */
    const char *cert_file;         /* PEM certificate (chain) */
    const char *key_file;          /* PEM private key */
    const char *user;              /* basic auth user (bblp) */
    const char *password;          /* the access code; copied, never logged */
    int max_clients;               /* connections above this get 503 */
    atomic_ulong *current;         /* optional: connections now (else internal) */
    atomic_ulong *total;           /* optional: connections ever (else internal) */
    atomic_ulong *keepalives;      /* optional: counts GET_PARAMETER and OPTIONS requests
                                      within a session (a viewer's keepalives) */
};

struct rtsp_server;

/* gst_init once per process, only when RTSPS actually runs. */
int rtsp_gst_init(char *err, size_t errlen);
/* At process exit, after every server is freed: stop and join the threads of
 * gst-rtsp-server's and GStreamer's pools and release GStreamer (gst_deinit), so none of
 * it runs or holds memory past exit. GStreamer cannot start again afterwards. Nothing
 * (with a warning) while a viewer connection is still closing. */
void rtsp_gst_shutdown(void);

/* A GStreamer element a pipeline needs, and the packages that provide it. */
struct rtsp_element_need {
    const char *element, *debian, *alpine;
};
/* 0 when every element is installed, else -1 with the package to install in err. */
int rtsp_need_elements(const struct rtsp_element_need *need, size_t n, char *err,
                       size_t errlen);

/* Configure a server (nothing bound yet). */
struct rtsp_server *rtsp_server_new(const struct rtsp_server_opts *o, char *err, size_t errlen);
/* Grant the authenticated viewer role on f, then mount it at path. */
void rtsp_server_mount(struct rtsp_server *rs, const char *path, GstRTSPMediaFactory *f);
/* Bind, log "listening on ADDR:PORT (NAME)", start the main-loop thread. */
int rtsp_server_start(struct rtsp_server *rs, char *err, size_t errlen);
/* Queue fn(data) on the server's thread (GSourceFunc semantics); notify frees data. */
void rtsp_server_invoke(struct rtsp_server *rs, GSourceFunc fn, gpointer data,
                        GDestroyNotify notify);
/* Add a periodic callback on the server's thread (before start). */
void rtsp_server_add_timer(struct rtsp_server *rs, unsigned period_ms, GSourceFunc fn,
                           gpointer data);
GstRTSPServer *rtsp_server_gst(struct rtsp_server *rs);
/* Close every client connection (fault injection). Thread-safe. */
void rtsp_server_drop_all(struct rtsp_server *rs);
/* Load a new certificate for new connections (SIGHUP). 0 or -1 with err. */
int rtsp_server_reload_cert(struct rtsp_server *rs, const char *cert_file, const char *key_file,
                            char *err, size_t errlen);
/* Stop accepting, close every client, stop the thread, release. NULL is fine. */
void rtsp_server_free(struct rtsp_server *rs);

#endif
