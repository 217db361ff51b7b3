/* SPDX-License-Identifier: MIT */
/* Socket plumbing shared by every service, the upstream connector and the simulator. */
#include "autoconf.h"

#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int net_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0) {
        return -1;
    }
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl);
}

void net_tune(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

void net_set_timeouts(int fd, int rcv_ms, int snd_ms)
{
    struct timeval tv;

    if (rcv_ms > 0) {
        tv.tv_sec = rcv_ms / 1000;
        tv.tv_usec = (rcv_ms % 1000) * 1000;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    if (snd_ms > 0) {
        tv.tv_sec = snd_ms / 1000;
        tv.tv_usec = (snd_ms % 1000) * 1000;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
}

int net_listen(const char *addr, int port, int backlog, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1, zero = 0;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof(*s4);
    } else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*s6);
    } else {
        snprintf(err, errlen, "'%s' is not an IP address", addr);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) {
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s port %d: %s%s", addr, port, strerror(e),
                 e == EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" :
                 e == EADDRINUSE ? " (another program uses this port)" : "");
        close(fd);
        return -1;
    }
    return fd;
}

int net_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return -1;
}

void net_host_str(const struct sockaddr *sa, char *buf, size_t len)
{
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
        }
    } else {
        snprintf(buf, len, "?");
    }
}

void net_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    int port = 0;
    bool v6 = false;

    net_host_str(sa, host, sizeof(host));
    if (sa->sa_family == AF_INET) {
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        v6 = strchr(host, ':') != NULL;
    }
    snprintf(buf, len, v6 ? "[%s]:%d" : "%s:%d", host, port);
}

int net_wait(int fd, short events, int timeout_ms, int cancel_fd)
{
    struct pollfd p[2] = {
        { .fd = fd, .events = events },
        { .fd = cancel_fd, .events = POLLIN },
    };
    int r;

    do {
        r = poll(p, cancel_fd >= 0 ? 2 : 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return -1;
    }
    if (r == 0) {
        return 0;
    }
    if (cancel_fd >= 0 && (p[1].revents & POLLIN)) {
        return -2;
    }
    return 1;
}

int net_wait_readable(int fd, int timeout_ms, int cancel_fd)
{
    return net_wait(fd, POLLIN, timeout_ms, cancel_fd);
}

/* Non-blocking connect bounded by deadline; 0 connected, -1 failed (errno), -2 cancelled. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int cancel_fd, int *out)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r, soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (fd < 0) {
        return -1;
    }
    net_set_nonblock(fd, true);
    r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r != 0 && errno != EINPROGRESS) {
        goto fail;
    }
    if (r != 0) {
        struct pollfd p[2] = {
            { .fd = fd, .events = POLLOUT },
            { .fd = cancel_fd, .events = POLLIN },
        };
        int64_t left = deadline - pp_now_ms();

        do {
            r = poll(p, cancel_fd >= 0 ? 2 : 1, left > 0 ? (int)left : 0);
        } while (r < 0 && errno == EINTR);
        if (r > 0 && cancel_fd >= 0 && (p[1].revents & POLLIN)) {
            close(fd);
            return -2;
        }
        if (r == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
            goto fail;
        }
        if (soerr != 0) {
            errno = soerr;
            goto fail;
        }
    }
    net_set_nonblock(fd, false);
    net_tune(fd);
    *out = fd;
    return 0;
fail:
    r = errno;
    close(fd);
    errno = r;
    return -1;
}

int net_connect(const char *host, int port, int timeout_ms, int cancel_fd, char *err,
                size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    int64_t deadline = pp_now_ms() + timeout_ms;
    int gai, fd = -1, last = ECONNREFUSED;

    if (errlen > 0) {
        err[0] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    snprintf(portstr, sizeof(portstr), "%d", port);
    gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int r = connect_one(ai, deadline, cancel_fd, &fd);
        if (r == 0) {
            break;
        }
        if (r == -2) {
            snprintf(err, errlen, "cancelled");
            break;
        }
        last = errno;
    }
    freeaddrinfo(res);
    if (fd < 0 && strcmp(err, "cancelled") != 0) {
        snprintf(err, errlen, "cannot connect to %s port %d: %s", host, port, strerror(last));
    }
    return fd;
}
