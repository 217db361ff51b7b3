/* SPDX-License-Identifier: MIT */
/*
 * The simulated printer behind the MQTT broker: its state (print job, temperatures,
 * light), the JSON reports it publishes and the requests it answers. Reports go into a
 * bounded ring that every subscribed client worker reads at its own pace; posting a
 * report wakes the subscribers through their eventfd. One mutex guards it all.
 */
#ifndef PP_SIM_PRINTER_H
#define PP_SIM_PRINTER_H

#include <stddef.h>
#include <stdint.h>

#include "sim.h"

#define SIM_MQTT_RING           64          /* reports kept for slow subscribers */
#define SIM_MQTT_TICK_MS        1000        /* one push_status per second */
#define SIM_MQTT_MAX_IN         (256 * 1024) /* largest packet a client may send */
#define SIM_MQTT_KEEPALIVE_NUM  3           /* close after 1.5 x keepalive of silence */
#define SIM_MQTT_KEEPALIVE_DEN  2

struct sim_printer;

/* A client worker that receives reports. Owned by the worker, linked while subscribed. */
struct sim_sub {
    int wake_fd;                /* eventfd (non-blocking): written on every post */
    uint64_t cursor;            /* sequence of the next report to send */
    unsigned long conn_id;
    struct sim_sub *prev, *next;
};

/* State plus the ticker thread that advances it and posts push_status every second;
 * the thread stops when cancel_fd becomes readable. NULL with err on failure. */
struct sim_printer *sim_printer_start(struct sim *s, int cancel_fd, char *err, size_t errlen);
/* Join the ticker, wait until every attached worker detached, free the reports. */
void sim_printer_stop(struct sim_printer *p);

/* A worker uses p between attach and detach (stop waits for it). */
void sim_printer_attach(struct sim_printer *p);
void sim_printer_detach(struct sim_printer *p);

/* Start (or stop) receiving reports posted from now on. */
void sim_printer_subscribe(struct sim_printer *p, struct sim_sub *sub);
void sim_printer_unsubscribe(struct sim_printer *p, struct sim_sub *sub);
/* The next report for sub (malloc'd JSON, *len bytes, caller frees) or NULL when none is
 * waiting. A subscriber more than SIM_MQTT_RING reports behind skips the oldest ones and
 * *skipped grows by their number. */
char *sim_printer_next(struct sim_printer *p, struct sim_sub *sub, size_t *len,
                       unsigned long *skipped);

/* A PUBLISH on device/<SN>/request: answer it (on the report ring) or log and ignore. */
void sim_printer_request(struct sim_printer *p, const uint8_t *json, size_t len,
                         unsigned long conn_id);

#endif
