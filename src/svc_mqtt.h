/* SPDX-License-Identifier: MIT */
/* The mqtt service. */
#ifndef PP_SVC_MQTT_H
#define PP_SVC_MQTT_H

#include "service.h"

extern const struct service_ops svc_mqtt_ops;

#endif
