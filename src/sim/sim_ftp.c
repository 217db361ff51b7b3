/* SPDX-License-Identifier: MIT */
/* The simulated printer FTPS server. Placeholder: closes every connection. */
#include "autoconf.h"

#include "../log.h"
#include "sim.h"

static void ftp_serve(struct service *svc, struct client *c)
{
    (void)svc;
    log_warn("ftp", c->conn.id, "FTPS is not simulated yet");
}

const struct service_ops sim_ftp_ops = {
    .serve = ftp_serve,
};
