/* SPDX-License-Identifier: MIT */
/*
 * Which camera the printer has (--camera auto): probes of the chamber port and the
 * RTSPS port in parallel, the serial-number hint when neither answers, background
 * re-probing, switching the camera service over, and the camera services' health.
 */
#ifndef PP_DETECT_H
#define PP_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "service.h"

/* The camera a serial number suggests when no probe answered (a guess). */
enum pp_camera_mode detect_camera_hint(const char *serial);

/*
 * Probe both camera ports of cfg's printer in parallel (at most PP_DETECT_TIMEOUT_MS),
 * closing each probe cleanly. Returns the camera that answered, or PP_CAMERA_AUTO when
 * neither did; why says what each port did.
 */
enum pp_camera_mode detect_probe(const struct pp_config *cfg, int cancel_fd, char *why,
                                 size_t whylen);

/* Where the camera services live: detection starts and stops them there. */
struct detect_services {
    struct service *chamber;
    struct service *rtsp;
    const struct service_ops *chamber_ops;
    const struct service_ops *rtsp_ops;
};

/*
 * --camera auto: probe (cancelled early by cancel_fd), start the camera service that
 * answered or the hinted one, and keep probing in the background while guessing.
 * -1 with err when the service cannot start (port in use).
 */
int detect_start(const struct pp_config *cfg, const struct detect_services *ds, int cancel_fd,
                 char *err, size_t errlen);
/* Stop background probing (before the daemon stops the services). */
void detect_stop(void);

/* Camera services report their printer connection: only after failing for
 * --camera-redetect seconds (default 300) does detection probe again. */
void detect_camera_ok(enum pp_svc kind);
void detect_camera_failed(enum pp_svc kind);

/* The MQTT service passes the report's ipcam.rtsp_url here: "disable" means an RTSPS
 * printer with "LAN Only Liveview" off, which is logged once with the fix. */
void detect_note_rtsp_url(const char *url);
/* Find ipcam.rtsp_url in a raw JSON report (no full parse) and note it. */
void detect_scan_report(const uint8_t *payload, size_t len);

#endif
