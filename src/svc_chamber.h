/* SPDX-License-Identifier: MIT */
/* The chamber service. */
#ifndef PP_SVC_CHAMBER_H
#define PP_SVC_CHAMBER_H

#include "service.h"

extern const struct service_ops svc_chamber_ops;

#endif
