/* SPDX-License-Identifier: MIT */
/*
 * The mqtt service. For now a plain relay: one printer connection per client.
 */
#include "autoconf.h"

#include "svc_mqtt.h"

#include "relay.h"

const struct service_ops svc_mqtt_ops = {
    .serve = relay_serve,
};
