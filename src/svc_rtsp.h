/* SPDX-License-Identifier: MIT */
/*
 * The RTSPS camera service. Its code (rtsp_camera.c, rtsp_server.c) and GStreamer live in
 * the module rtsp.so, which svc_rtsp_ops loads with dlopen() the first time the service
 * starts: a daemon that never runs an RTSPS camera never maps GStreamer. The module runs
 * gst-rtsp-server, which has its own listener and threads: its ops set own_listener, so
 * the runtime only calls start and stop.
 */
#ifndef PP_SVC_RTSP_H
#define PP_SVC_RTSP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "service.h"

/* The module's file name, in PP_MODULEDIR or $PANDAPROXY_MODULE_DIR. */
#define PP_RTSP_MODULE_FILE  "rtsp.so"
#define PP_RTSP_MODULE_ABI   2

/* The one symbol the module exports. The first four fields identify the build: a module
 * from another version or configuration is refused, never called. */
struct pp_rtsp_module {
    unsigned abi;                        /* PP_RTSP_MODULE_ABI of the module's build */
    const char *version;                 /* PACKAGE_VERSION */
    size_t config_size;                  /* sizeof(struct pp_config) */
    size_t service_size;                 /* sizeof(struct service) */
    const struct service_ops *ops;
    void (*reload)(const struct pp_config *cfg);
    void (*shutdown)(void);              /* at exit, after the service stopped */
};

extern const struct service_ops svc_rtsp_ops;

/* The module's path ($PANDAPROXY_MODULE_DIR or PP_MODULEDIR); false when it does not
 * fit. HAVE_RTSP builds only: without RTSPS there is no module. */
bool svc_rtsp_module_path(char *buf, size_t n);

/* Load the module now (once per process): 0, or -1 with the cause and fix in err. */
int svc_rtsp_load(char *err, size_t errlen);

/* SIGHUP: serve the (renewed) certificate to new connections. */
void svc_rtsp_reload(const struct pp_config *cfg);

/* At daemon exit, after every service stopped: GStreamer's threads are joined and it is
 * released (nothing when the module never loaded). No RTSPS service can start after. */
void svc_rtsp_shutdown(void);

#endif
