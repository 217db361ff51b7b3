/* SPDX-License-Identifier: MIT */
/* The simulated RTSPS camera. Placeholder until the GStreamer server lands. */
#include "autoconf.h"

#include <stdio.h>

#include "sim.h"

int sim_rtsp_start(struct sim *s, char *err, size_t errlen)
{
    (void)s;
    snprintf(err, errlen, "the RTSPS camera is not simulated yet");
    return -1;
}

void sim_rtsp_stop(struct sim *s)
{
    (void)s;
}

void sim_rtsp_drop_all(struct sim *s)
{
    (void)s;
}
