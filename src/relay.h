/* SPDX-License-Identifier: MIT */
/*
 * A byte pump between two TLS connections owned by the calling thread, and the
 * generic "one upstream per client" service built on it.
 */
#ifndef PP_RELAY_H
#define PP_RELAY_H

#include "service.h"
#include "tls.h"

/* Copy both ways until either side ends, idle_ms passes (<0: never) or cancel fires. */
void relay_pump(struct pp_conn *a, struct pp_conn *b, int idle_ms, int cancel_fd);

/* serve hook: connect the client to the same service on the printer and pump. */
void relay_serve(struct service *svc, struct client *c);

#endif
