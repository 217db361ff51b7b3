/* SPDX-License-Identifier: MIT */
/* Exponential reconnect backoff with jitter: 1 s doubling to 30 s. */
#ifndef PP_BACKOFF_H
#define PP_BACKOFF_H

#include <stdbool.h>

struct backoff {
    unsigned next_ms;
    unsigned initial_ms;
    unsigned max_ms;
};

void backoff_init(struct backoff *b, unsigned initial_ms, unsigned max_ms);
void backoff_reset(struct backoff *b);
/* The delay to wait now (jittered +-20%); the following one doubles. */
unsigned backoff_next(struct backoff *b);
/* Wait the next delay; false when cancel_fd fired first. */
bool backoff_wait(struct backoff *b, int cancel_fd);

#endif
