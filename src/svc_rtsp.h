/* SPDX-License-Identifier: MIT */
/*
 * The RTSPS camera service. It runs gst-rtsp-server, which has its own listener and
 * threads: its ops set own_listener, so the runtime only calls start and stop.
 */
#ifndef PP_SVC_RTSP_H
#define PP_SVC_RTSP_H

#include "config.h"
#include "service.h"

extern const struct service_ops svc_rtsp_ops;

/* SIGHUP: serve the (renewed) certificate to new connections. */
void svc_rtsp_reload(const struct pp_config *cfg);

#endif
