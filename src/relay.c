/* SPDX-License-Identifier: MIT */
/* The generic TLS-to-TLS relay. */
#include "autoconf.h"

#include "relay.h"

#include <errno.h>
#include <poll.h>

#include "limits.h"
#include "log.h"
#include "upstream.h"

/* Move what is readable on from (including TLS-buffered bytes) to to; false at the end. */
static bool pump_once(struct pp_conn *from, struct pp_conn *to)
{
    char buf[PP_IO_CHUNK];

    do {
        int r = conn_read(from, buf, sizeof(buf), 0, -1);
        if (r == PP_IO_TIMEOUT) {
            return true;
        }
        if (r <= 0 || conn_write(to, buf, (size_t)r) != 0) {
            return false;
        }
    } while (conn_pending(from));
    return true;
}

void relay_pump(struct pp_conn *a, struct pp_conn *b, int idle_ms, int cancel_fd)
{
    for (;;) {
        struct pollfd p[3] = {
            { .fd = a->fd, .events = POLLIN },
            { .fd = b->fd, .events = POLLIN },
            { .fd = cancel_fd, .events = POLLIN },
        };
        int r;

        if (conn_pending(a) || conn_pending(b)) {
            r = 1;
            p[0].revents = conn_pending(a) ? POLLIN : 0;
            p[1].revents = conn_pending(b) ? POLLIN : 0;
        } else {
            r = poll(p, cancel_fd >= 0 ? 3 : 2, idle_ms);
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0 || (p[2].revents & POLLIN)) {
            return;
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !pump_once(a, b)) {
            return;
        }
        if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !pump_once(b, a)) {
            return;
        }
    }
}

void relay_serve(struct service *svc, struct client *c)
{
    struct pp_conn up;
    char err[512];
    enum upstream_result r;

    r = upstream_connect(svc->cfg, svc->kind, &up, svc->name, service_cancel_fd(svc), err,
                         sizeof(err));
    if (r == UP_TRUST) {
        /* Needs the user's action (see the message), unlike a printer that is away. */
        log_error(svc->name, c->conn.id, "printer refused: %s", err);
        return;
    }
    if (r != UP_OK) {
        log_warn(svc->name, c->conn.id, "printer unavailable: %s", err);
        return;
    }
    relay_pump(&c->conn, &up, -1, service_cancel_fd(svc));
    conn_close(&up, true);
}
