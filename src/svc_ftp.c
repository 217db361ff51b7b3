/* SPDX-License-Identifier: MIT */
/*
 * The ftp service. For now a plain relay: one printer connection per client.
 */
#include "autoconf.h"

#include "svc_ftp.h"

#include "relay.h"

const struct service_ops svc_ftp_ops = {
    .serve = relay_serve,
};
