/* SPDX-License-Identifier: MIT */
/* The ftp service. */
#ifndef PP_SVC_FTP_H
#define PP_SVC_FTP_H

#include "service.h"

extern const struct service_ops svc_ftp_ops;

#endif
