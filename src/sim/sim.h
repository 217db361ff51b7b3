/* SPDX-License-Identifier: MIT */
/*
 * The printer simulator's shared state: the model, its options, the running services
 * and the counters tests read. Each simulated service lives in its own sim_*.c and
 * plugs into the same service runtime as the daemon.
 */
#ifndef PP_SIM_H
#define PP_SIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../config.h"
#include "../service.h"

/* Connection limits a real printer is reported to enforce. */
#define SIM_DEFAULT_LIMIT_MQTT    4
#define SIM_DEFAULT_LIMIT_FTP     2
#define SIM_DEFAULT_LIMIT_CHAMBER 1
#define SIM_DEFAULT_LIMIT_RTSP    2
#define SIM_DEFAULT_FPS           1.0
#define SIM_DEFAULT_VIDEO         "640x360@15"

struct sim_model {
    const char *name;        /* --model value */
    const char *product;     /* product name in get_version answers */
    const char *serial_hint; /* serial prefix of this model */
    bool rtsp_camera;        /* RTSPS on 322 instead of the chamber stream on 6000 */
};

struct sim {
    struct pp_config cfg;                 /* serial, access code, bind, ports, state dir */
    struct pp_config svc_cfg[PP_SVC_COUNT]; /* per-service copies: max_clients = limit */
    const struct sim_model *model;
    char ftp_root[PP_PATH_MAX];
    double fps;                           /* chamber frames per second */
    unsigned frame_size;                  /* pad JPEG frames to this size (0: natural) */
    unsigned width, height;               /* camera picture */
    unsigned video_fps;                   /* RTSPS frame rate */
    int pushall_interval_s;               /* 0: answer every pushall */
    int stall_after_s;                    /* 0: never stall the camera */
    int limits[PP_SVC_COUNT];
    bool enabled[PP_SVC_COUNT];
    struct service svc[PP_SVC_COUNT];
    void *rtsp;                           /* sim_rtsp state */
    void *mqtt;                           /* sim_mqtt state (struct sim_printer) */
    atomic_int rtsp_port;                 /* bound RTSPS port once serving, else 0: the
                                             MQTT report's ipcam.rtsp_url shows it */
    /* counters (tests read them from the status file) */
    atomic_ulong pushalls;                /* pushall requests received */
    atomic_ulong pushalls_ignored;        /* ... ignored by --pushall-interval */
    atomic_ulong messages;                /* MQTT publishes sent to clients */
    atomic_ulong frames;                  /* chamber frames sent */
    atomic_ulong rtsp_current, rtsp_total;/* RTSPS counts (own server, not the runtime) */
    atomic_ulong rtsp_keepalives;         /* RTSPS keepalive requests within a session */
    atomic_ulong status_gen;              /* bumped when something changed */
};

/* The one simulator instance (services reach it through svc->priv too). */
extern struct sim *sim_instance;

/* Service hooks, one file each. */
extern const struct service_ops sim_mqtt_ops;
extern const struct service_ops sim_ftp_ops;
extern const struct service_ops sim_chamber_ops;
/* RTSPS runs its own server (gst-rtsp-server); 0 or -1 with err. */
int sim_rtsp_start(struct sim *s, char *err, size_t errlen);
void sim_rtsp_stop(struct sim *s);
/* Drop every RTSPS viewer (SIGUSR1). */
void sim_rtsp_drop_all(struct sim *s);

/* Note a change so the status file is rewritten. */
void sim_status_changed(struct sim *s);

#endif
