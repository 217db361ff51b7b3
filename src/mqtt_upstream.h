/* SPDX-License-Identifier: MIT */
/* The printer side of the mqtt service: the thread that owns the printer session. */
#ifndef PP_MQTT_UPSTREAM_H
#define PP_MQTT_UPSTREAM_H

#include "mqtt_hub.h"
#include "service.h"

struct mqtt_upstream_ctx {
    struct service *svc;
    struct mqtt_hub *hub;
};

/* Thread body (arg: a struct mqtt_upstream_ctx that outlives it); ends when svc stops. */
void *mqtt_upstream_main(void *arg);

#endif
