/* SPDX-License-Identifier: MIT */
/* Thread creation with a bounded stack and every signal blocked. */
#ifndef PP_THREAD_H
#define PP_THREAD_H

#include <pthread.h>
#include <stdbool.h>

/* Start fn(arg); detached threads need no join. 0 or an errno value. */
int thread_spawn(pthread_t *out, bool detached, void *(*fn)(void *), void *arg);

#endif
