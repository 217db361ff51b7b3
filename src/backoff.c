/* SPDX-License-Identifier: MIT */
/* Reconnect pacing shared by every upstream connection. */
#include "autoconf.h"

#include "backoff.h"

#include <openssl/rand.h>

#include "util.h"

#define JITTER_PCT 20

void backoff_init(struct backoff *b, unsigned initial_ms, unsigned max_ms)
{
    b->initial_ms = initial_ms;
    b->max_ms = max_ms;
    b->next_ms = initial_ms;
}

void backoff_reset(struct backoff *b)
{
    b->next_ms = b->initial_ms;
}

unsigned backoff_next(struct backoff *b)
{
    unsigned base = b->next_ms;
    unsigned span = base * 2 * JITTER_PCT / 100;
    unsigned r = 0;

    (void)RAND_bytes((unsigned char *)&r, sizeof(r));
    b->next_ms = base >= b->max_ms / 2 ? b->max_ms : base * 2;
    if (span == 0) {
        return base;
    }
    /* Jitter keeps several services (and several proxies) from reconnecting in step. */
    return base - span / 2 + r % (span + 1);
}

bool backoff_wait(struct backoff *b, int cancel_fd)
{
    return pp_sleep(backoff_next(b), cancel_fd);
}
