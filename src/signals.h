/* SPDX-License-Identifier: MIT */
/*
 * Signals as data: handlers only write the signal number to a self-pipe, which the main
 * thread polls and reads. SIGPIPE is ignored (a closed peer is an error return).
 */
#ifndef PP_SIGNALS_H
#define PP_SIGNALS_H

#include <stddef.h>

int signals_install(const int *sigs, size_t n);
/* Readable when a signal arrived. */
int signals_fd(void);
/* The next pending signal number, or 0 when none is pending. */
int signals_next(void);

#endif
