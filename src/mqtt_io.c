/* SPDX-License-Identifier: MIT */
/* MQTT over a TLS connection: whole packets in, small control packets out. */
#include "autoconf.h"

#include "mqtt_io.h"

#include "limits.h"
#include "mqtt_codec.h"
#include "util.h"

/*
 * Read what is available (waiting up to timeout_ms) into b, making room for at least
 * chunk bytes. >0, or an enum pp_io.
 */
int mqtt_read_some(struct pp_conn *c, struct buf *b, size_t chunk, int timeout_ms,
                     int cancel_fd)
{
    int r;

    if (buf_reserve(b, chunk) != 0) {
        return PP_IO_ERR;
    }
    r = conn_read(c, buf_tail(b), buf_room(b), timeout_ms, cancel_fd);
    if (r > 0) {
        b->len += (size_t)r;
    }
    return r;
}

/*
 * Wait until b starts with a whole packet (fr describes it) or deadline_ms passes.
 * 1: packet, 0: EOF/timeout/cancel (why tells), -1: malformed stream (err tells).
 */
int mqtt_read_packet(struct pp_conn *c, struct buf *b, size_t chunk, struct mqtt_frame *fr,
                       int64_t deadline_ms, int cancel_fd, int *why)
{
    for (;;) {
        int rc = mqtt_frame(b->data, b->len, fr);
        int64_t left;
        int r;

        if (rc == MQTT_OK) {
            return 1;
        }
        if (rc != MQTT_INCOMPLETE) {
            *why = rc;
            return -1;
        }
        left = deadline_ms - pp_now_ms();
        if (left <= 0) {
            *why = PP_IO_TIMEOUT;
            return 0;
        }
        r = mqtt_read_some(c, b, chunk, (int)left, cancel_fd);
        if (r <= 0) {
            *why = r;
            return 0;
        }
    }
}

const char *mqtt_io_str(int r)
{
    switch (r) {
    case PP_IO_EOF: return "connection closed";
    case PP_IO_TIMEOUT: return "timed out";
    case PP_IO_CANCEL: return "stopping";
    default: return "connection error";
    }
}

int mqtt_send_ack(struct pp_conn *c, uint8_t type, uint16_t pid)
{
    uint8_t pkt[MQTT_IO_SMALL_PACKET];
    size_t n = mqtt_encode_ack(pkt, sizeof(pkt), type, pid);

    return n == 0 ? -1 : conn_write(c, pkt, n);
}

int mqtt_send_empty(struct pp_conn *c, uint8_t type)
{
    uint8_t pkt[MQTT_IO_SMALL_PACKET];
    size_t n = mqtt_encode_empty(pkt, sizeof(pkt), type);

    return n == 0 ? -1 : conn_write(c, pkt, n);
}

uint16_t mqtt_next_packet_id(uint16_t *pid)
{
    *pid = (uint16_t)(*pid + 1);
    if (*pid == 0) {
        *pid = 1;
    }
    return *pid;
}
