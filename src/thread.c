/* SPDX-License-Identifier: MIT */
/*
 * Threads start with all signals blocked so that only the main thread sees
 * SIGINT/SIGTERM/SIGHUP, and with a fixed stack so a thousand clients stay cheap.
 */
#include "autoconf.h"

#include "thread.h"

#include <signal.h>

#include "limits.h"

int thread_spawn(pthread_t *out, bool detached, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t tid;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, PP_THREAD_STACK_SIZE);
    if (detached) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&tid, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0 && out != NULL) {
        *out = tid;
    }
    return rc;
}
