/* SPDX-License-Identifier: MIT */
/*
 * The simulated chamber camera (A1/P1 port 6000): checks the 80-byte auth packet,
 * then sends JPEG frames at --fps, each as a 16-byte header in its own TLS record
 * followed by the JPEG in separate records, as the printer does.
 *
 * Header bytes 4..7 carry the frame counter and 8..15 the send time (CLOCK_REALTIME,
 * microseconds, little-endian): the simulator's own choice, so tests can spot gaps
 * and benchmarks can measure added latency. A real printer's bytes there differ.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../chamber_codec.h"
#include "../log.h"
#include "../util.h"
#include "jpeg_frame.h"
#include "sim.h"

#define SIM_HDR_TIME_OFF 8
#define SIM_BBLP_USER    "bblp"

static uint64_t realtime_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool check_auth(struct sim *s, struct client *c)
{
    uint8_t pkt[PP_CHAMBER_AUTH_LEN];
    pp_chamber_auth auth;
    pp_chamber_err e;
    bool ok;
    int r = conn_read_full(&c->conn, pkt, sizeof(pkt), c->start_ms + PP_AUTH_TIMEOUT_MS,
                           service_cancel_fd(c->svc));

    if (r != 0) {
        log_info("chamber", c->conn.id, "no auth packet from %s", c->peer_str);
        return false;
    }
    e = pp_chamber_auth_parse(pkt, &auth);
    if (e != PP_CHAMBER_OK) {
        log_info("chamber", c->conn.id, "bad auth packet: %s", pp_chamber_strerror(e));
        return false;
    }
    ok = strcmp(auth.user, SIM_BBLP_USER) == 0 && pp_secret_equal(auth.code, s->cfg.access_code);
    pp_chamber_auth_wipe(&auth);
    if (!ok) {
        /* The printer just closes, without a frame. */
        log_info("chamber", c->conn.id, "wrong user or access code: closing");
    }
    return ok;
}

static int send_frame(struct sim *s, struct client *c, uint32_t counter)
{
    pp_jpeg_opts o = { .width = s->width, .height = s->height, .quality = 0,
                       .pad_to = s->frame_size };
    uint8_t hdr[PP_CHAMBER_HEADER_LEN];
    uint8_t *jpg = NULL;
    size_t len = 0;
    uint64_t now;
    int rc;

    if (pp_jpeg_frame_render(&o, counter, &jpg, &len) != PP_JPEG_OK) {
        log_error("chamber", c->conn.id, "cannot render a frame");
        return -1;
    }
    pp_chamber_header_encode(hdr, (uint32_t)len, counter);
    now = realtime_us();
    for (int i = 0; i < 8; i++) {
        hdr[SIM_HDR_TIME_OFF + i] = (uint8_t)(now >> (8 * i));
    }
    /* Two writes, two records: clients depend on the header arriving alone. */
    rc = conn_write(&c->conn, hdr, sizeof(hdr)) == 0 && conn_write(&c->conn, jpg, len) == 0 ? 0
                                                                                            : -1;
    free(jpg);
    return rc;
}

static void chamber_serve(struct service *svc, struct client *c)
{
    struct sim *s = svc->priv;
    int64_t period = (int64_t)(1000.0 / s->fps);
    int64_t next = pp_now_ms();
    int64_t stall_at = s->stall_after_s > 0 ? pp_now_ms() + s->stall_after_s * 1000LL : 0;

    if (!check_auth(s, c)) {
        return;
    }
    log_info("chamber", c->conn.id, "streaming to %s at %.1f fps", c->peer_str, s->fps);
    for (;;) {
        uint32_t n;

        if (stall_at && pp_now_ms() >= stall_at) {
            log_info("chamber", c->conn.id, "stalling (--stall-after): no more frames");
            /* Keep the socket open and silent until the client or a signal ends it. */
            char sink[256];
            while (conn_read(&c->conn, sink, sizeof(sink), -1, service_cancel_fd(svc)) > 0) {
            }
            return;
        }
        n = (uint32_t)atomic_fetch_add(&s->frames, 1);
        if (send_frame(s, c, n) != 0) {
            return;
        }
        sim_status_changed(s);
        next += period;
        if (next < pp_now_ms()) {
            next = pp_now_ms(); /* fell behind: do not burst */
        }
        /* Wake on a client close too, so SIGUSR1 and disconnects end the loop at once. */
        if (net_wait_readable(c->conn.fd, (int)(next - pp_now_ms()), service_cancel_fd(svc)) != 0) {
            char sink[256];
            int r = conn_read(&c->conn, sink, sizeof(sink), 0, -1);
            if (r <= 0 && r != PP_IO_TIMEOUT) {
                return;
            }
            if (!pp_sleep(next - pp_now_ms(), service_cancel_fd(svc))) {
                return;
            }
        }
    }
}

const struct service_ops sim_chamber_ops = {
    .serve = chamber_serve,
};
