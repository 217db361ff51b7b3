/* SPDX-License-Identifier: MIT */
/* The self-pipe behind signals.h. */
#include "autoconf.h"

#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int saved = errno;

    (void)!write(sig_pipe[1], &b, 1);
    errno = saved;
}

int signals_install(const int *sigs, size_t n)
{
    struct sigaction sa;

    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < n; i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0) {
            return -1;
        }
    }
    return 0;
}

int signals_fd(void)
{
    return sig_pipe[0];
}

int signals_next(void)
{
    unsigned char b;

    return read(sig_pipe[0], &b, 1) == 1 ? b : 0;
}
