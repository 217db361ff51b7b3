/* SPDX-License-Identifier: MIT */
/* Listener and worker threads, the connection registry and login throttling. */
#include "autoconf.h"

#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "limits.h"
#include "log.h"
#include "thread.h"
#include "util.h"

#define LISTEN_BACKLOG 64

static atomic_ulong next_conn_id = 1;

unsigned long service_next_id(void)
{
    return atomic_fetch_add(&next_conn_id, 1);
}

int service_cancel_fd(const struct service *svc)
{
    return svc->stop_pipe[0];
}

bool service_stopping(const struct service *svc)
{
    struct pollfd p = { .fd = svc->stop_pipe[0], .events = POLLIN };

    return poll(&p, 1, 0) > 0;
}

int service_client_count(struct service *svc)
{
    int n;

    pthread_mutex_lock(&svc->lock);
    n = svc->nclients;
    pthread_mutex_unlock(&svc->lock);
    return n;
}

uint64_t service_total_count(struct service *svc)
{
    uint64_t n;

    pthread_mutex_lock(&svc->lock);
    n = svc->total_clients;
    pthread_mutex_unlock(&svc->lock);
    return n;
}

void service_drop_all(struct service *svc)
{
    pthread_mutex_lock(&svc->lock);
    for (struct client *c = svc->clients; c != NULL; c = c->next) {
        conn_abort_fd(c->conn.fd);
    }
    pthread_mutex_unlock(&svc->lock);
}

/* ---- failed-login throttling ------------------------------------------ */

struct authfail_slot {
    char host[PP_ADDRSTR_MAX];
    unsigned failures;
    int64_t last_ms;
};

static pthread_mutex_t authfail_lock = PTHREAD_MUTEX_INITIALIZER;
static struct authfail_slot authfail[PP_AUTHFAIL_SLOTS];

/* The slot for host (or the oldest one, recycled); caller holds the lock. */
static struct authfail_slot *authfail_slot(const char *host, bool create)
{
    struct authfail_slot *oldest = &authfail[0];
    int64_t now = pp_now_ms();

    for (size_t i = 0; i < PP_AUTHFAIL_SLOTS; i++) {
        struct authfail_slot *s = &authfail[i];
        if (s->host[0] && now - s->last_ms > PP_AUTHFAIL_FORGET_MS) {
            memset(s, 0, sizeof(*s));
        }
        if (s->host[0] && strcmp(s->host, host) == 0) {
            return s;
        }
        if (s->last_ms < oldest->last_ms) {
            oldest = s;
        }
    }
    if (!create) {
        return NULL;
    }
    memset(oldest, 0, sizeof(*oldest));
    snprintf(oldest->host, sizeof(oldest->host), "%s", host);
    return oldest;
}

static int64_t delay_for(unsigned failures)
{
    int64_t d = (int64_t)failures * PP_AUTHFAIL_STEP_MS;

    return d > PP_AUTHFAIL_MAX_DELAY_MS ? PP_AUTHFAIL_MAX_DELAY_MS : d;
}

int64_t authfail_delay_ms(const char *host)
{
    struct authfail_slot *s;
    int64_t d = 0;

    pthread_mutex_lock(&authfail_lock);
    s = authfail_slot(host, false);
    if (s != NULL) {
        d = delay_for(s->failures);
    }
    pthread_mutex_unlock(&authfail_lock);
    return d;
}

int64_t authfail_note(const char *host)
{
    struct authfail_slot *s;
    int64_t d;

    pthread_mutex_lock(&authfail_lock);
    s = authfail_slot(host, true);
    s->failures++;
    s->last_ms = pp_now_ms();
    d = delay_for(s->failures);
    pthread_mutex_unlock(&authfail_lock);
    return d;
}

int64_t authfail_lockout_left_ms(const char *host)
{
    struct authfail_slot *s;
    int64_t left = 0;

    pthread_mutex_lock(&authfail_lock);
    s = authfail_slot(host, false);
    if (s != NULL) {
        left = s->last_ms + delay_for(s->failures) - pp_now_ms();
    }
    pthread_mutex_unlock(&authfail_lock);
    return left > 0 ? left : 0;
}

void authfail_forget(const char *host)
{
    struct authfail_slot *s;

    pthread_mutex_lock(&authfail_lock);
    s = authfail_slot(host, false);
    if (s != NULL) {
        memset(s, 0, sizeof(*s));
    }
    pthread_mutex_unlock(&authfail_lock);
}

void service_auth_failed(struct client *c, const char *what)
{
    int64_t delay = authfail_note(c->peer_host);

    log_warn(c->svc->name, c->conn.id, "authentication failed from %s: %s (answer delayed %lld ms)",
             c->peer_host, what, (long long)delay);
    pp_sleep(delay, service_cancel_fd(c->svc));
}

void service_auth_ok(struct client *c)
{
    authfail_forget(c->peer_host);
}

/* ---- registry ----------------------------------------------------------- */

static void registry_add(struct service *svc, struct client *c)
{
    c->prev = NULL;
    c->next = svc->clients;
    if (svc->clients) {
        svc->clients->prev = c;
    }
    svc->clients = c;
    svc->nclients++;
    svc->total_clients++;
}

static void registry_remove(struct service *svc, struct client *c)
{
    pthread_mutex_lock(&svc->lock);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        svc->clients = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    svc->nclients--;
    if (svc->nclients == 0) {
        pthread_cond_broadcast(&svc->idle);
    }
    pthread_mutex_unlock(&svc->lock);
}

/* ---- worker --------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct client *c = arg;
    struct service *svc = c->svc;
    int64_t dur;

    log_info(svc->name, c->conn.id, "connection from %s", c->peer_str);
    net_tune(c->conn.fd);
    net_set_timeouts(c->conn.fd, 0, PP_SEND_TIMEOUT_MS);
    if (!svc->ops->raw) {
        c->conn.ssl = tls_server_ssl_new(c->conn.fd);
        if (c->conn.ssl == NULL) {
            log_ssl_errors(LOG_LVL_ERROR, svc->name, c->conn.id, "cannot create a TLS session");
            goto done;
        }
        int r = conn_handshake(&c->conn, c->start_ms + PP_HANDSHAKE_TIMEOUT_MS,
                               service_cancel_fd(svc));
        if (r != 0) {
            log_ssl_errors(LOG_LVL_DEBUG, svc->name, c->conn.id, "TLS handshake");
            log_info(svc->name, c->conn.id, "TLS handshake with %s failed%s", c->peer_str,
                     r == PP_IO_TIMEOUT ? ": timed out" : r == PP_IO_CANCEL ? ": stopping" : "");
            goto done;
        }
    }
    svc->ops->serve(svc, c);
done:
    dur = pp_now_ms() - c->start_ms;
    log_info(svc->name, c->conn.id, "closed %s after %lld.%01lld s, %llu bytes in, %llu bytes out",
             c->peer_str, (long long)(dur / 1000), (long long)(dur % 1000 / 100),
             (unsigned long long)c->conn.rx, (unsigned long long)c->conn.tx);
    conn_close(&c->conn, true);
    /* Free this thread's OpenSSL state (its DRBGs) now: once the client is off the
     * registry, service_stop may return and the process exit before a detached thread's
     * own exit handlers ran, which leaks them (and fails sanitizer builds). */
    OPENSSL_thread_stop();
    registry_remove(svc, c);
    free(c);
    return NULL;
}

/* ---- listener ------------------------------------------------------------ */

static void refuse(struct service *svc, int fd, const char *peer)
{
    log_warn(svc->name, 0, "refusing %s: %d clients connected (--max-clients %d)", peer,
             svc->cfg->max_clients, svc->cfg->max_clients);
    close(fd);
}

static void accept_one(struct service *svc)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char peer[PP_ADDRSTR_MAX];
    struct client *c;
    int fd;

    fd = accept4(svc->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log_warn(svc->name, 0, "accept: %s; pausing %d ms", strerror(errno),
                     PP_ACCEPT_BACKOFF_MS);
            pp_sleep(PP_ACCEPT_BACKOFF_MS, service_cancel_fd(svc));
        }
        return;
    }
    net_sockaddr_str((struct sockaddr *)&ss, peer, sizeof(peer));
    pthread_mutex_lock(&svc->lock);
    if (svc->nclients >= svc->cfg->max_clients) {
        pthread_mutex_unlock(&svc->lock);
        refuse(svc, fd, peer);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        pthread_mutex_unlock(&svc->lock);
        close(fd);
        return;
    }
    c->svc = svc;
    c->start_ms = pp_now_ms();
    conn_init(&c->conn, fd, svc->name, service_next_id());
    memcpy(&c->peer, &ss, sizeof(ss));
    sl = sizeof(c->local);
    getsockname(fd, (struct sockaddr *)&c->local, &sl);
    snprintf(c->peer_str, sizeof(c->peer_str), "%s", peer);
    net_host_str((struct sockaddr *)&ss, c->peer_host, sizeof(c->peer_host));
    registry_add(svc, c);
    pthread_mutex_unlock(&svc->lock);
    if (thread_spawn(NULL, true, worker_main, c) != 0) {
        log_error(svc->name, c->conn.id, "cannot start a worker thread for %s", peer);
        close(fd);
        c->conn.fd = -1;
        registry_remove(svc, c);
        free(c);
    }
}

static void *listener_main(void *arg)
{
    struct service *svc = arg;

    for (;;) {
        int r = net_wait_readable(svc->listen_fd, -1, service_cancel_fd(svc));
        if (r == -2) {
            break;
        }
        if (r == 1) {
            accept_one(svc);
        }
    }
    return NULL;
}

int service_start(struct service *svc, enum pp_svc kind, const struct pp_config *cfg,
                  const struct service_ops *ops, void *priv, char *err, size_t errlen)
{
    char where[PP_ADDRSTR_MAX];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    memset(svc, 0, sizeof(*svc));
    svc->kind = kind;
    svc->name = config_svc_name(kind);
    svc->cfg = cfg;
    svc->ops = ops;
    svc->priv = priv;
    svc->stop_pipe[0] = svc->stop_pipe[1] = -1;
    pthread_mutex_init(&svc->lock, NULL);
    pthread_cond_init(&svc->idle, NULL);
    svc->listen_fd = -1;
    if (pipe2(svc->stop_pipe, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    if (ops->own_listener) {
        if (ops->start(svc, err, errlen) != 0) {
            goto fail;
        }
        svc->running = true;
        return 0;
    }
    svc->listen_fd = net_listen(cfg->bind_addr, cfg->ports[kind], LISTEN_BACKLOG, err, errlen);
    if (svc->listen_fd < 0) {
        goto fail;
    }
    svc->port = net_local_port(svc->listen_fd);
    if (ops->start && ops->start(svc, err, errlen) != 0) {
        goto fail;
    }
    if (thread_spawn(&svc->listener, false, listener_main, svc) != 0) {
        snprintf(err, errlen, "cannot start the %s listener thread", svc->name);
        if (ops->stop) {
            ops->stop(svc);
        }
        goto fail;
    }
    svc->running = true;
    getsockname(svc->listen_fd, (struct sockaddr *)&ss, &sl);
    net_sockaddr_str((struct sockaddr *)&ss, where, sizeof(where));
    log_info(svc->name, 0, "listening on %s (%s)", where, svc->name);
    return 0;
fail:
    if (svc->listen_fd >= 0) {
        close(svc->listen_fd);
    }
    close(svc->stop_pipe[0]);
    close(svc->stop_pipe[1]);
    svc->listen_fd = svc->stop_pipe[0] = svc->stop_pipe[1] = -1;
    return -1;
}

void service_stop(struct service *svc)
{
    if (!svc->running) {
        return;
    }
    svc->running = false;
    (void)!write(svc->stop_pipe[1], "x", 1);
    if (svc->ops->own_listener) {
        svc->ops->stop(svc);
        close(svc->stop_pipe[0]);
        close(svc->stop_pipe[1]);
        svc->stop_pipe[0] = svc->stop_pipe[1] = -1;
        log_info(svc->name, 0, "stopped");
        return;
    }
    pthread_join(svc->listener, NULL);
    close(svc->listen_fd);
    svc->listen_fd = -1;
    service_drop_all(svc);
    if (svc->ops->stop) {
        svc->ops->stop(svc);
    }
    pthread_mutex_lock(&svc->lock);
    while (svc->nclients > 0) {
        pthread_cond_wait(&svc->idle, &svc->lock);
    }
    pthread_mutex_unlock(&svc->lock);
    close(svc->stop_pipe[0]);
    close(svc->stop_pipe[1]);
    svc->stop_pipe[0] = svc->stop_pipe[1] = -1;
    log_info(svc->name, 0, "stopped (%llu connections served)",
             (unsigned long long)svc->total_clients);
}
