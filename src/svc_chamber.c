/* SPDX-License-Identifier: MIT */
/*
 * The chamber service. For now a plain relay: one printer connection per client.
 */
#include "autoconf.h"

#include "svc_chamber.h"

#include "relay.h"

const struct service_ops svc_chamber_ops = {
    .serve = relay_serve,
};
