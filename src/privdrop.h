/* SPDX-License-Identifier: MIT */
/* Dropping root: --user NAME, keeping only CAP_NET_BIND_SERVICE. */
#ifndef PP_PRIVDROP_H
#define PP_PRIVDROP_H

#include <stddef.h>

/*
 * Give the state directory and its files to user, then switch to that user and its
 * group for good, keeping CAP_NET_BIND_SERVICE (when built with libcap) so camera
 * services started later can still bind ports below 1024. Must run before any thread
 * starts: capabilities are per thread and new threads inherit the caller's.
 */
int privdrop(const char *user, const char *state_dir, char *err, size_t errlen);

#endif
