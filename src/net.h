/* SPDX-License-Identifier: MIT */
/* Sockets: listening, connecting with a deadline, socket options, address text. */
#ifndef PP_NET_H
#define PP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PP_ADDRSTR_MAX 64 /* "[v6addr%scope]:65535" fits */

/* Bind and listen; port 0 picks a free port. Dual stack for "::". Returns fd or -1. */
int net_listen(const char *addr, int port, int backlog, char *err, size_t errlen);
/* Port a socket is bound to, or -1. */
int net_local_port(int fd);
/* "1.2.3.4:80" or "[::1]:80" */
void net_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Address only, no port, no brackets; IPv4-mapped IPv6 shown as IPv4. */
void net_host_str(const struct sockaddr *sa, char *buf, size_t len);
/*
 * Resolve host (again on every call) and connect to the first address that answers
 * within timeout_ms, aborting early when cancel_fd becomes readable. Returns a
 * blocking fd with TCP_NODELAY set, or -1 with a reason in err.
 */
int net_connect(const char *host, int port, int timeout_ms, int cancel_fd, char *err,
                size_t errlen);
/* TCP_NODELAY and keepalive: every socket of an interactive protocol. */
void net_tune(int fd);
/* SO_RCVTIMEO/SO_SNDTIMEO; 0 leaves one unchanged. */
void net_set_timeouts(int fd, int rcv_ms, int snd_ms);
int net_set_nonblock(int fd, bool on);
/* Wait for events on fd (1), timeout (0), cancel_fd readable (-2) or error (-1). */
int net_wait(int fd, short events, int timeout_ms, int cancel_fd);
int net_wait_readable(int fd, int timeout_ms, int cancel_fd);

#endif
