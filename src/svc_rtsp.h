/* SPDX-License-Identifier: MIT */
/* The rtsp service. */
#ifndef PP_SVC_RTSP_H
#define PP_SVC_RTSP_H

#include "service.h"

extern const struct service_ops svc_rtsp_ops;

#endif
