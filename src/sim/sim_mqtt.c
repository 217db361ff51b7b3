/* SPDX-License-Identifier: MIT */
/* The simulated printer MQTT broker. Placeholder: closes every connection. */
#include "autoconf.h"

#include "../log.h"
#include "sim.h"

static void mqtt_serve(struct service *svc, struct client *c)
{
    (void)svc;
    log_warn("mqtt", c->conn.id, "MQTT is not simulated yet");
}

const struct service_ops sim_mqtt_ops = {
    .serve = mqtt_serve,
};
