/* SPDX-License-Identifier: MIT */
/*
 * The chamber camera service (TLS :6000): many viewers, one printer connection.
 *
 * Each client's worker checks the 80-byte auth packet and then becomes a viewer.
 * One upstream thread (started by the first viewer, kept --camera-linger seconds
 * after the last one leaves) reads frames from the printer into a single
 * latest-frame slot: an immutable, reference-counted buffer that viewers share
 * without copying. A viewer sends the newest frame it has not sent yet, header
 * and JPEG as two TLS writes like the printer; a slow viewer simply skips frames.
 */
#include "autoconf.h"

#include "svc_chamber.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/err.h>

#include "backoff.h"
#include "chamber_codec.h"
#include "detect.h"
#include "limits.h"
#include "log.h"
#include "net.h"
#include "thread.h"
#include "upstream.h"
#include "util.h"

#define CHAMBER_USER "bblp"

/* One frame as the printer sent it; immutable once published. */
struct frame {
    atomic_int refs;
    int64_t t_ms;                         /* monotonic receive time */
    uint32_t len;                         /* JPEG bytes */
    uint8_t hdr[PP_CHAMBER_HEADER_LEN];
    uint8_t data[];
};

/*
 * The publisher hands each viewer a reference in its own slot, replacing (and
 * dropping) one the viewer has not taken yet: taking needs no lock, so 50 viewers
 * woken by the same frame do not queue on ch->lock.
 */
struct viewer {
    _Atomic(struct frame *) slot;         /* newest frame not sent yet, or NULL */
    int wake;                             /* eventfd: the slot became non-empty */
    struct viewer *prev, *next;           /* under ch->lock */
};

struct chamber {
    struct service *svc;
    pthread_mutex_t lock;                 /* everything below */
    struct frame *latest;
    struct viewer *viewers;
    int nviewers;
    int64_t idle_since_ms;                /* when nviewers last dropped to 0 */
    bool up_running;                      /* the upstream thread is alive */
    bool up_joinable;                     /* a thread (alive or finished) awaits join */
    bool stopping;
    pthread_t up_tid;
    int up_wake[2];                       /* viewer count changed */
    /* Workers inside serve (under svc->lock), so stop frees only when all left. */
    int users;
    pthread_cond_t users_cv;
};

/* Why an upstream session ended, which decides the pause before the next one. */
enum up_end {
    END_IDLE,          /* no viewers for the linger time: closed on purpose */
    END_CANCEL,        /* service stopping */
    END_RETRY,         /* network error, stall, corrupt stream: backoff */
    END_RETRY_SLOW,    /* access code or certificate refused: retrying soon will not help */
};

/* ---- frames ------------------------------------------------------------- */

static void frame_unref(struct frame *f)
{
    if (f != NULL && atomic_fetch_sub(&f->refs, 1) == 1) {
        free(f);
    }
}

static void wake_fd(int fd)
{
    (void)!write(fd, "w", 1);
}

static void wake_event(int fd)
{
    uint64_t one = 1;

    (void)!write(fd, &one, sizeof(one));
}

/* Put a reference to f in v's slot; wake v unless a frame was already waiting. */
static void viewer_offer(struct viewer *v, struct frame *f)
{
    struct frame *old;

    atomic_fetch_add(&f->refs, 1);
    old = atomic_exchange(&v->slot, f);
    if (old != NULL) {
        frame_unref(old); /* skipped: the viewer was still sending an older one */
    } else {
        wake_event(v->wake);
    }
}

static void drain_fd(int fd)
{
    char buf[64];

    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

/* Make f the latest frame and offer it to every viewer. */
static void publish(struct chamber *ch, struct frame *f)
{
    struct frame *old;

    pthread_mutex_lock(&ch->lock);
    old = ch->latest;
    ch->latest = f;
    for (struct viewer *v = ch->viewers; v != NULL; v = v->next) {
        viewer_offer(v, f);
    }
    pthread_mutex_unlock(&ch->lock);
    frame_unref(old);
}

static void release_latest(struct chamber *ch)
{
    struct frame *old;

    pthread_mutex_lock(&ch->lock);
    old = ch->latest;
    ch->latest = NULL;
    pthread_mutex_unlock(&ch->lock);
    frame_unref(old);
}

/* ---- the printer connection ------------------------------------------- */

void chamber_upstream_close(struct pp_conn *up)
{
    /* Send close_notify, then read what is still in flight until the printer
     * closes too, so the socket ends with FIN rather than a reset and the
     * printer frees its camera slot at once. */
    if (up->ssl != NULL && !up->failed && SSL_is_init_finished(up->ssl)) {
        int64_t end = pp_now_ms() + PP_CHAMBER_DRAIN_MS;
        char sink[PP_IO_CHUNK];

        net_set_timeouts(up->fd, 0, PP_CHAMBER_DRAIN_MS);
        ERR_clear_error();
        if (SSL_shutdown(up->ssl) >= 0) {
            while (pp_now_ms() < end &&
                   conn_read(up, sink, sizeof(sink), (int)(end - pp_now_ms()), -1) > 0) {
            }
        }
    }
    /* close_notify went out above: a second SSL_shutdown would wait for the peer's. */
    conn_close(up, false);
}

int chamber_read_header(struct pp_conn *up, uint8_t hdr[PP_CHAMBER_HEADER_LEN],
                        int64_t deadline_ms, int cancel_fd)
{
    int64_t left = deadline_ms - pp_now_ms();
    int r = conn_read(up, hdr, 1, left > 0 ? (int)left : 0, cancel_fd);

    if (r <= 0) {
        return r; /* PP_IO_EOF: ended before the header */
    }
    r = conn_read_full(up, hdr + 1, PP_CHAMBER_HEADER_LEN - 1, deadline_ms, cancel_fd);
    return r == 0 ? 1 : r;
}

/* When the upstream should close for lack of viewers (0: viewers present). */
static int64_t linger_deadline(struct chamber *ch)
{
    int64_t d = 0;

    pthread_mutex_lock(&ch->lock);
    if (ch->nviewers == 0) {
        d = ch->idle_since_ms + (int64_t)ch->svc->cfg->camera_linger_s * 1000;
    }
    pthread_mutex_unlock(&ch->lock);
    return d;
}

static enum upstream_result up_open(struct chamber *ch, struct pp_conn *up)
{
    const struct pp_config *cfg = ch->svc->cfg;
    uint8_t pkt[PP_CHAMBER_AUTH_LEN];
    char err[512];
    enum upstream_result r;
    int w;

    r = upstream_connect(cfg, PP_SVC_CHAMBER, up, ch->svc->name, service_cancel_fd(ch->svc),
                         err, sizeof(err));
    if (r == UP_TRUST) {
        log_error(ch->svc->name, up->id, "%s; retrying in %d s", err,
                  PP_BACKOFF_AUTH_FAIL_MS / 1000);
    } else if (r != UP_OK && r != UP_CANCEL) {
        log_warn(ch->svc->name, up->id, "printer camera unavailable: %s", err);
    }
    if (r != UP_OK) {
        return r;
    }
    if (pp_chamber_auth_encode(pkt, CHAMBER_USER, cfg->access_code) != PP_CHAMBER_OK) {
        log_error(ch->svc->name, up->id, "the access code is too long for the camera's "
                  "auth packet (%d characters at most)", PP_CHAMBER_AUTH_STR_MAX);
        chamber_upstream_close(up);
        return UP_TRUST;
    }
    w = conn_write(up, pkt, sizeof(pkt));
    pp_wipe(pkt, sizeof(pkt));
    if (w != 0) {
        log_warn(ch->svc->name, up->id, "cannot send the auth packet to the printer");
        conn_close(up, false);
        return UP_NET;
    }
    return UP_OK;
}

/*
 * Wait for the next header's first byte: 1 readable, or the session's end. Wakes
 * when viewers come and go, so the linger time is honoured to the second.
 */
static int up_wait(struct chamber *ch, struct pp_conn *up, int64_t stall_at, enum up_end *end)
{
    for (;;) {
        int64_t linger = linger_deadline(ch);
        int64_t until = linger != 0 && linger < stall_at ? linger : stall_at;
        int64_t left = until - pp_now_ms();
        struct pollfd p[3] = {
            { .fd = up->fd, .events = POLLIN },
            { .fd = ch->up_wake[0], .events = POLLIN },
            { .fd = service_cancel_fd(ch->svc), .events = POLLIN },
        };
        int r;

        if (conn_pending(up)) {
            return 1;
        }
        if (left <= 0) {
            *end = linger != 0 && linger <= stall_at ? END_IDLE : END_RETRY;
            return 0;
        }
        r = poll(p, 3, (int)left);
        if (r < 0 && errno != EINTR) {
            *end = END_RETRY;
            return 0;
        }
        if (p[2].revents & POLLIN) {
            *end = END_CANCEL;
            return 0;
        }
        if (p[1].revents & POLLIN) {
            drain_fd(ch->up_wake[0]);
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            return 1;
        }
    }
}

/* Read one frame; NULL with *end set when the session must end. */
static struct frame *up_read_frame(struct chamber *ch, struct pp_conn *up, bool first,
                                   enum up_end *end)
{
    const char *name = ch->svc->name;
    int cancel = service_cancel_fd(ch->svc);
    uint8_t hdr[PP_CHAMBER_HEADER_LEN];
    struct frame *f;
    pp_chamber_err e;
    uint32_t len;
    int r;

    r = chamber_read_header(up, hdr, pp_now_ms() + PP_CHAMBER_STALL_MS, cancel);
    if (r != 1) {
        *end = r == PP_IO_CANCEL ? END_CANCEL : END_RETRY;
        if (r == PP_IO_EOF && first) {
            /* What the printer does with a wrong access code. */
            log_error(name, up->id, "the printer closed the camera connection right after the "
                      "auth packet without a frame: the access code is probably wrong; "
                      "retrying in %d s", PP_BACKOFF_AUTH_FAIL_MS / 1000);
            *end = END_RETRY_SLOW;
        } else if (r != PP_IO_CANCEL) {
            log_warn(name, up->id, "printer camera connection lost%s",
                     r == PP_IO_TIMEOUT ? " (stalled inside a frame header)" : "");
        }
        return NULL;
    }
    e = pp_chamber_header_parse(hdr, &len);
    if (e != PP_CHAMBER_OK) {
        log_warn(name, up->id, "corrupt camera stream from the printer (%s): reconnecting",
                 pp_chamber_strerror(e));
        *end = END_RETRY;
        return NULL;
    }
    f = malloc(sizeof(*f) + len);
    if (f == NULL) {
        log_error(name, up->id, "out of memory for a %u-byte frame", (unsigned)len);
        *end = END_RETRY;
        return NULL;
    }
    atomic_init(&f->refs, 1);
    memcpy(f->hdr, hdr, sizeof(hdr));
    f->len = len;
    r = conn_read_full(up, f->data, len, pp_now_ms() + PP_CHAMBER_STALL_MS, cancel);
    if (r != 0) {
        if (r != PP_IO_CANCEL) {
            log_warn(name, up->id, "printer camera connection lost inside a %u-byte frame",
                     (unsigned)len);
        }
        *end = r == PP_IO_CANCEL ? END_CANCEL : END_RETRY;
        free(f);
        return NULL;
    }
    f->t_ms = pp_now_ms();
    if (first && !pp_chamber_is_jpeg(f->data, len)) {
        log_warn(name, up->id, "the printer's first frame is not a JPEG; relaying it anyway");
    }
    return f;
}

/* One printer connection from connect to its end. *streamed: a frame arrived. */
static enum up_end up_session(struct chamber *ch, bool *streamed)
{
    struct pp_conn up;
    enum upstream_result r = up_open(ch, &up);
    enum up_end end = END_RETRY;
    int64_t last = pp_now_ms();
    uint64_t frames = 0;

    *streamed = false;
    if (r != UP_OK) {
        detect_camera_failed(PP_SVC_CHAMBER);
        return r == UP_CANCEL ? END_CANCEL : r == UP_TRUST ? END_RETRY_SLOW : END_RETRY;
    }
    log_info(ch->svc->name, up.id, "connected to the printer's camera");
    for (;;) {
        struct frame *f;

        if (up_wait(ch, &up, last + PP_CHAMBER_STALL_MS, &end) != 1) {
            if (end == END_RETRY) {
                log_warn(ch->svc->name, up.id, "no frame from the printer for %d s: "
                         "reconnecting", PP_CHAMBER_STALL_MS / 1000);
            }
            break;
        }
        f = up_read_frame(ch, &up, frames == 0, &end);
        if (f == NULL) {
            break;
        }
        if (frames++ == 0) {
            log_info(ch->svc->name, up.id, "streaming (first frame %u bytes)", (unsigned)f->len);
            detect_camera_ok(PP_SVC_CHAMBER);
            *streamed = true;
        }
        last = f->t_ms;
        publish(ch, f);
    }
    if (end == END_IDLE) {
        log_info(ch->svc->name, up.id, "no viewer for %d s: closing the printer connection "
                 "(%llu frames)", ch->svc->cfg->camera_linger_s, (unsigned long long)frames);
    } else if (end != END_CANCEL) {
        detect_camera_failed(PP_SVC_CHAMBER);
    }
    chamber_upstream_close(&up);
    return end;
}

/* Exit when no viewer is left and the linger time passed (under ch->lock). */
static bool up_should_exit(struct chamber *ch)
{
    if (ch->stopping) {
        return true;
    }
    return ch->nviewers == 0 &&
           pp_now_ms() >= ch->idle_since_ms + (int64_t)ch->svc->cfg->camera_linger_s * 1000;
}

static void *upstream_main(void *arg)
{
    struct chamber *ch = arg;
    int cancel = service_cancel_fd(ch->svc);
    struct backoff b;

    backoff_init(&b, PP_BACKOFF_INITIAL_MS, PP_BACKOFF_MAX_MS);
    for (;;) {
        enum up_end end;
        bool streamed, go_on;

        pthread_mutex_lock(&ch->lock);
        if (up_should_exit(ch)) {
            /* Marked under the lock: the next viewer starts a fresh thread. */
            ch->up_running = false;
            pthread_mutex_unlock(&ch->lock);
            return NULL;
        }
        pthread_mutex_unlock(&ch->lock);
        end = up_session(ch, &streamed);
        if (streamed) {
            backoff_reset(&b);
        }
        switch (end) {
        case END_CANCEL:
            go_on = false;
            break;
        case END_IDLE:
            release_latest(ch); /* nobody watches: do not hold a frame (up to 4 MB) */
            go_on = true;
            break;
        case END_RETRY_SLOW:
            go_on = pp_sleep(PP_BACKOFF_AUTH_FAIL_MS, cancel);
            break;
        default:
            go_on = backoff_wait(&b, cancel);
            break;
        }
        if (!go_on) {
            pthread_mutex_lock(&ch->lock);
            ch->up_running = false;
            pthread_mutex_unlock(&ch->lock);
            return NULL;
        }
    }
}

/* ---- viewers ------------------------------------------------------------ */

/* Validate the auth packet: 0 when the client may watch. Logs one line otherwise. */
static int viewer_auth(struct service *svc, struct client *c)
{
    int cancel = service_cancel_fd(svc);
    uint8_t pkt[PP_CHAMBER_AUTH_LEN];
    pp_chamber_auth auth;
    pp_chamber_err e;
    char extra;
    bool ok;
    int r = conn_read_full(&c->conn, pkt, sizeof(pkt), c->start_ms + PP_AUTH_TIMEOUT_MS, cancel);

    if (r == PP_IO_TIMEOUT) {
        log_info(svc->name, c->conn.id, "no auth packet from %s within %d s: closing",
                 c->peer_str, PP_AUTH_TIMEOUT_MS / 1000);
        return -1;
    }
    if (r != 0) {
        if (r != PP_IO_CANCEL) {
            log_info(svc->name, c->conn.id, "%s closed before sending a whole auth packet",
                     c->peer_str);
        }
        return -1;
    }
    e = pp_chamber_auth_parse(pkt, &auth);
    pp_wipe(pkt, sizeof(pkt));
    if (e != PP_CHAMBER_OK) {
        log_info(svc->name, c->conn.id, "garbled auth packet from %s (%s): closing", c->peer_str,
                 pp_chamber_strerror(e));
        return -1;
    }
    /* Both compared in constant time, and both always compared. */
    ok = pp_secret_equal(auth.user, CHAMBER_USER);
    ok = pp_secret_equal(auth.code, svc->cfg->access_code) && ok;
    pp_chamber_auth_wipe(&auth);
    if (!ok) {
        service_auth_failed(c, "wrong user or access code");
        return -1;
    }
    /* Real clients send exactly 80 bytes and then only read. */
    if (conn_read(&c->conn, &extra, 1, 0, -1) > 0) {
        log_info(svc->name, c->conn.id, "auth packet from %s longer than %d bytes: closing",
                 c->peer_str, PP_CHAMBER_AUTH_LEN);
        return -1;
    }
    service_auth_ok(c);
    return 0;
}

/* Start the upstream thread unless one is alive (under ch->lock). */
static void ensure_upstream(struct chamber *ch)
{
    if (ch->up_running || ch->stopping) {
        wake_fd(ch->up_wake[1]);
        return;
    }
    if (ch->up_joinable) {
        /* It marked itself done and holds nothing: this returns at once. */
        pthread_join(ch->up_tid, NULL);
        ch->up_joinable = false;
    }
    drain_fd(ch->up_wake[0]);
    if (thread_spawn(&ch->up_tid, false, upstream_main, ch) != 0) {
        log_error(ch->svc->name, 0, "cannot start the camera upstream thread");
        return;
    }
    ch->up_running = ch->up_joinable = true;
}

static int viewer_add(struct chamber *ch, struct viewer *v)
{
    memset(v, 0, sizeof(*v));
    atomic_init(&v->slot, NULL);
    v->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (v->wake < 0) {
        return -1;
    }
    pthread_mutex_lock(&ch->lock);
    /* A fresh frame goes out at once; a stale one waits for the next. */
    if (ch->latest != NULL && pp_now_ms() - ch->latest->t_ms < PP_CHAMBER_FRESH_MS) {
        viewer_offer(v, ch->latest);
    }
    v->next = ch->viewers;
    if (ch->viewers != NULL) {
        ch->viewers->prev = v;
    }
    ch->viewers = v;
    ch->nviewers++;
    ensure_upstream(ch);
    pthread_mutex_unlock(&ch->lock);
    return 0;
}

static void viewer_remove(struct chamber *ch, struct viewer *v)
{
    pthread_mutex_lock(&ch->lock);
    if (v->prev != NULL) {
        v->prev->next = v->next;
    } else {
        ch->viewers = v->next;
    }
    if (v->next != NULL) {
        v->next->prev = v->prev;
    }
    if (--ch->nviewers == 0) {
        ch->idle_since_ms = pp_now_ms();
        wake_fd(ch->up_wake[1]);
    }
    pthread_mutex_unlock(&ch->lock);
    /* Unlinked: the publisher cannot offer it anything any more. */
    frame_unref(atomic_exchange(&v->slot, NULL));
    close(v->wake);
}

/* The newest frame v has not sent, with a reference, or NULL. */
static struct frame *viewer_take(struct viewer *v)
{
    return atomic_exchange(&v->slot, NULL);
}

/* Read and drop what the client sends; false once it is gone. */
static bool viewer_drain_client(struct client *c)
{
    char sink[256];

    do {
        int r = conn_read(&c->conn, sink, sizeof(sink), 0, -1);
        if (r == PP_IO_TIMEOUT) {
            return true;
        }
        if (r <= 0) {
            return false;
        }
    } while (conn_pending(&c->conn));
    return true;
}

/* One frame: two writes, two TLS records, as clients expect the header alone. */
static int viewer_send(struct client *c, const struct frame *f)
{
    int on = 1, off = 0;
    int r;

    /* Corked, the ~13 records of a frame leave in a few large TCP segments instead of
     * one push each (record boundaries are unchanged; uncorking flushes at once). A
     * user-space buffer gathering the records into one write() measured no better:
     * the copy into it costs what the saved write() calls did. */
    (void)setsockopt(c->conn.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
    r = conn_write(&c->conn, f->hdr, sizeof(f->hdr)) == 0 &&
                conn_write(&c->conn, f->data, f->len) == 0
            ? 0
            : -1;
    (void)setsockopt(c->conn.fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
    return r;
}

static void viewer_loop(struct chamber *ch, struct viewer *v, struct client *c)
{
    int cancel = service_cancel_fd(ch->svc);
    uint64_t sent = 0;

    for (;;) {
        struct frame *f = viewer_take(v);
        struct pollfd p[3] = {
            { .fd = c->conn.fd, .events = POLLIN },
            { .fd = v->wake, .events = POLLIN },
            { .fd = cancel, .events = POLLIN },
        };
        int r;

        if (f != NULL) {
            r = viewer_send(c, f);
            frame_unref(f);
            if (r != 0) {
                log_info(ch->svc->name, c->conn.id, "cannot send to %s (stopped reading?): "
                         "closing after %llu frames", c->peer_str, (unsigned long long)sent);
                return;
            }
            sent++;
            continue;
        }
        if (conn_pending(&c->conn)) {
            if (!viewer_drain_client(c)) {
                return;
            }
            continue;
        }
        r = poll(p, 3, -1);
        if (r < 0 && errno != EINTR) {
            return;
        }
        if (p[2].revents & POLLIN) {
            return;
        }
        if (p[1].revents & POLLIN) {
            uint64_t n;

            (void)!read(v->wake, &n, sizeof(n)); /* the slot is looked at next */
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !viewer_drain_client(c)) {
            log_debug(ch->svc->name, c->conn.id, "viewer left after %llu frames",
                      (unsigned long long)sent);
            return;
        }
    }
}

/* ---- service hooks ------------------------------------------------------ */

static struct chamber *chamber_enter(struct service *svc)
{
    struct chamber *ch;

    pthread_mutex_lock(&svc->lock);
    ch = svc->priv;
    if (ch != NULL) {
        ch->users++;
    }
    pthread_mutex_unlock(&svc->lock);
    return ch;
}

static void chamber_leave(struct service *svc, struct chamber *ch)
{
    pthread_mutex_lock(&svc->lock);
    if (--ch->users == 0) {
        pthread_cond_broadcast(&ch->users_cv);
    }
    pthread_mutex_unlock(&svc->lock);
}

static void chamber_serve(struct service *svc, struct client *c)
{
    struct chamber *ch = chamber_enter(svc);
    struct viewer v;

    if (ch == NULL) {
        return;
    }
    if (viewer_auth(svc, c) == 0) {
        if (viewer_add(ch, &v) == 0) {
            log_info(svc->name, c->conn.id, "viewer %s authenticated", c->peer_str);
            viewer_loop(ch, &v, c);
            viewer_remove(ch, &v);
        } else {
            log_error(svc->name, c->conn.id, "cannot create a wake-up eventfd: %s",
                      strerror(errno));
        }
    }
    chamber_leave(svc, ch);
}

static int chamber_start(struct service *svc, char *err, size_t errlen)
{
    struct chamber *ch = calloc(1, sizeof(*ch));

    if (ch == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (pipe2(ch->up_wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        free(ch);
        return -1;
    }
    ch->svc = svc;
    ch->idle_since_ms = pp_now_ms();
    pthread_mutex_init(&ch->lock, NULL);
    pthread_cond_init(&ch->users_cv, NULL);
    svc->priv = ch;
    return 0;
}

static void chamber_stop(struct service *svc)
{
    struct chamber *ch;
    bool join;

    pthread_mutex_lock(&svc->lock);
    ch = svc->priv;
    svc->priv = NULL; /* a worker that finishes its handshake now finds nothing */
    pthread_mutex_unlock(&svc->lock);
    if (ch == NULL) {
        return;
    }
    pthread_mutex_lock(&ch->lock);
    ch->stopping = true;
    join = ch->up_joinable;
    pthread_mutex_unlock(&ch->lock);
    if (join) {
        pthread_join(ch->up_tid, NULL);
    }
    pthread_mutex_lock(&svc->lock);
    while (ch->users > 0) {
        pthread_cond_wait(&ch->users_cv, &svc->lock);
    }
    pthread_mutex_unlock(&svc->lock);
    frame_unref(ch->latest);
    close(ch->up_wake[0]);
    close(ch->up_wake[1]);
    pthread_cond_destroy(&ch->users_cv);
    pthread_mutex_destroy(&ch->lock);
    free(ch);
}

const struct service_ops svc_chamber_ops = {
    .start = chamber_start,
    .serve = chamber_serve,
    .stop = chamber_stop,
};
