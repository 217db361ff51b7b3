/* SPDX-License-Identifier: MIT */
/*
 * The service runtime every listener shares: a listener thread that accepts (with
 * backoff on EMFILE and a client cap), a worker thread per client that runs the TLS
 * handshake under a deadline and then the protocol's serve hook, a registry of live
 * connections so stop can wake every blocked thread, and failed-login throttling.
 */
#ifndef PP_SERVICE_H
#define PP_SERVICE_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "net.h"
#include "tls.h"

struct service;

struct client {
    struct service *svc;
    struct pp_conn conn;                /* owned by the worker thread */
    struct sockaddr_storage peer;
    struct sockaddr_storage local;      /* the address the client reached us on */
    char peer_str[PP_ADDRSTR_MAX];      /* "addr:port" */
    char peer_host[PP_ADDRSTR_MAX];     /* "addr" */
    int64_t start_ms;
    void *priv;                         /* protocol state */
    struct client *prev, *next;         /* registry, under svc->lock */
};

struct service_ops {
    /* Optional: after the listener is bound, before accepting (start upstream threads). */
    int (*start)(struct service *svc, char *err, size_t errlen);
    /* Required: runs in the client's worker thread after the TLS handshake. */
    void (*serve)(struct service *svc, struct client *c);
    /* Optional: after accepting stopped and every client socket was shut down. */
    void (*stop)(struct service *svc);
    /* Optional: skip the TLS handshake (serve does it itself). */
    bool raw;
    /* Optional: the service runs its own listener (gst-rtsp-server); the runtime only
     * calls start (which binds and logs "listening on") and stop; serve is unused. */
    bool own_listener;
};

struct service {
    enum pp_svc kind;
    const char *name;
    const struct pp_config *cfg;
    const struct service_ops *ops;
    void *priv;                          /* protocol state */
    int listen_fd;
    int port;                            /* bound port */
    int stop_pipe[2];                    /* readable once this service stops */
    pthread_t listener;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t idle;                 /* nclients reached 0 */
    struct client *clients;
    int nclients;
    uint64_t total_clients;
};

/* Bind, log "listening on ADDR:PORT (NAME)", run ops->start, start the listener. */
int service_start(struct service *svc, enum pp_svc kind, const struct pp_config *cfg,
                  const struct service_ops *ops, void *priv, char *err, size_t errlen);
/* Stop accepting, wake and wait for every client, run ops->stop. Idempotent. */
void service_stop(struct service *svc);
/* Readable once the service (or the daemon) is stopping: poll it beside sockets. */
int service_cancel_fd(const struct service *svc);
bool service_stopping(const struct service *svc);
int service_client_count(struct service *svc);
uint64_t service_total_count(struct service *svc);
/* Shut every client socket of the service down (fault injection; stop). */
void service_drop_all(struct service *svc);

/* A new connection id (for upstream connections too). */
unsigned long service_next_id(void);

/* Failed login from c's address: log, wait a delay that grows per failure. */
void service_auth_failed(struct client *c, const char *what);
void service_auth_ok(struct client *c);
/* Current throttle delay for an address (tests and logs). */
int64_t authfail_delay_ms(const char *host);
/*
 * For servers that must not sleep in a shared thread (RTSPS): note a failure (returns the
 * new delay), ask how long logins from host are still refused outright, forget host.
 */
int64_t authfail_note(const char *host);
int64_t authfail_lockout_left_ms(const char *host);
void authfail_forget(const char *host);

#endif
