/* SPDX-License-Identifier: MIT */
/*
 * The rtsp service. For now a plain relay: one printer connection per client.
 */
#include "autoconf.h"

#include "svc_rtsp.h"

#include "relay.h"

const struct service_ops svc_rtsp_ops = {
    .serve = relay_serve,
};
