/* SPDX-License-Identifier: MIT */
/* The daemon's life: identity, services, signals, orderly stop. And the one-shot actions. */
#ifndef PP_DAEMON_H
#define PP_DAEMON_H

#include "config.h"

/* Exit codes */
#define PP_EXIT_OK      0
#define PP_EXIT_FAILURE 1
#define PP_EXIT_CONFIG  2

int daemon_run(struct pp_config *cfg);
int daemon_print_ca(const struct pp_config *cfg);
int daemon_check_config(const struct pp_config *cfg);
int daemon_health(const struct pp_config *cfg);

#endif
