/* SPDX-License-Identifier: MIT */
/* The chamber camera service: many viewers share one printer connection. */
#ifndef PP_SVC_CHAMBER_H
#define PP_SVC_CHAMBER_H

#include <stdint.h>

#include "limits.h"
#include "service.h"
#include "tls.h"

extern const struct service_ops svc_chamber_ops;

/* End a printer camera connection: close_notify, read what is in flight (bounded by
 * PP_CHAMBER_DRAIN_MS) so the socket ends with FIN, then close. Detection's probes too. */
void chamber_upstream_close(struct pp_conn *up);
/* Read a 16-byte frame header: 1, PP_IO_EOF when the printer ended the connection
 * before it (what a wrong access code looks like), or another enum pp_io value. */
int chamber_read_header(struct pp_conn *up, uint8_t hdr[PP_CHAMBER_HEADER_LEN],
                        int64_t deadline_ms, int cancel_fd);

#endif
