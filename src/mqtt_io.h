/* SPDX-License-Identifier: MIT */
/*
 * MQTT over a TLS connection owned by the calling thread: reading until a whole
 * packet is buffered, and writing the small control packets both roles need.
 */
#ifndef PP_MQTT_IO_H
#define PP_MQTT_IO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "limits.h"
#include "mqtt_codec.h"
#include "tls.h"

/* Room for any ack, ping or CONNACK packet. */
#define MQTT_IO_SMALL_PACKET 8
/* A reader's buffer: the largest packet plus what may follow it in the same read. */
#define MQTT_IO_READ_MAX     (PP_MQTT_MAX_PACKET + 2 * PP_IO_CHUNK)
/* The one user name the printer (and so the proxy) accepts. */
#define MQTT_IO_USER         "bblp"

/*
 * Read what is available (waiting up to timeout_ms) into b, making room for at least
 * chunk bytes. >0, or an enum pp_io.
 */
int mqtt_read_some(struct pp_conn *c, struct buf *b, size_t chunk, int timeout_ms,
                   int cancel_fd);
/*
 * Wait until b starts with a whole packet (fr describes it) or deadline_ms passes.
 * 1: packet, 0: EOF/timeout/cancel (*why: enum pp_io), -1: malformed stream (*why:
 * enum mqtt_result).
 */
int mqtt_read_packet(struct pp_conn *c, struct buf *b, size_t chunk, struct mqtt_frame *fr,
                     int64_t deadline_ms, int cancel_fd, int *why);
/* Words for an enum pp_io value in log lines. */
const char *mqtt_io_str(int r);
/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK; 0 or -1. */
int mqtt_send_ack(struct pp_conn *c, uint8_t type, uint16_t pid);
/* PINGREQ, PINGRESP, DISCONNECT; 0 or -1. */
int mqtt_send_empty(struct pp_conn *c, uint8_t type);
/* The next non-zero packet id after *pid. */
uint16_t mqtt_next_packet_id(uint16_t *pid);

#endif
