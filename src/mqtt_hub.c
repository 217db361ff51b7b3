/* SPDX-License-Identifier: MIT */
/* The MQTT fan-out hub: shared reports, per-client queues, the request queue. */
#include "autoconf.h"

#include "mqtt_hub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqtt_codec.h"
#include "util.h"

/* ---- messages --------------------------------------------------------- */

struct mqtt_msg *mqtt_msg_new(const char *topic, size_t topic_len, const uint8_t *payload,
                              size_t payload_len)
{
    struct mqtt_publish p = {
        .topic = { topic, topic_len },
        .payload = payload,
        .payload_len = payload_len,
    };
    size_t n = mqtt_publish_size(&p);
    struct mqtt_msg *m;
    size_t off;

    if (n == 0) {
        return NULL;
    }
    m = malloc(sizeof(*m) + n);
    if (m == NULL) {
        return NULL;
    }
    if (mqtt_encode_publish(m->pkt, n, &p) != n) {
        free(m);
        return NULL;
    }
    atomic_init(&m->refs, 1);
    m->pkt_len = n;
    /* The packet ends with topic (2-byte length first) then payload. */
    off = n - payload_len - topic_len;
    m->topic = (const char *)m->pkt + off;
    m->topic_len = topic_len;
    m->payload = m->pkt + n - payload_len;
    m->payload_len = payload_len;
    return m;
}

void mqtt_msg_ref(struct mqtt_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void mqtt_msg_unref(struct mqtt_msg *m)
{
    if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        free(m);
    }
}

/* ---- wake fds --------------------------------------------------------- */

static void wake(int fd)
{
    uint64_t one = 1;

    /* Non-blocking: a counter that is already set is wake enough. */
    (void)!write(fd, &one, sizeof(one));
}

static void drain(int fd)
{
    uint64_t v;

    (void)!read(fd, &v, sizeof(v));
}

/* ---- hub -------------------------------------------------------------- */

int mqtt_hub_init(struct mqtt_hub *h, const char *serial)
{
    memset(h, 0, sizeof(*h));
    h->req_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->req_fd < 0) {
        return -1;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->empty, NULL);
    snprintf(h->request_topic, sizeof(h->request_topic), "device/%s/request", serial);
    snprintf(h->report_topic, sizeof(h->report_topic), "device/%s/report", serial);
    return 0;
}

void mqtt_hub_destroy(struct mqtt_hub *h)
{
    struct mqtt_req r;

    while (mqtt_hub_next_request(h, &r)) {
        free(r.payload);
    }
    mqtt_msg_unref(h->last);
    h->last = NULL;
    close(h->req_fd);
    h->req_fd = -1;
    pthread_cond_destroy(&h->empty);
    pthread_mutex_destroy(&h->lock);
}

/* ---- peers ------------------------------------------------------------ */

struct mqtt_peer *mqtt_peer_new(unsigned long id, int fd)
{
    struct mqtt_peer *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wake_fd < 0) {
        free(p);
        return NULL;
    }
    p->id = id;
    p->fd = fd;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void peer_free(struct mqtt_peer *p)
{
    while (p->q_count > 0) {
        mqtt_msg_unref(p->q[p->q_head]);
        p->q_head = (p->q_head + 1) % PP_MQTT_QUEUE_MSGS;
        p->q_count--;
    }
    for (size_t i = 0; i < p->nsubs; i++) {
        free(p->subs[i].filter);
    }
    close(p->wake_fd);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void mqtt_peer_set_client_id(struct mqtt_peer *p, const char *client_id)
{
    snprintf(p->client_id, sizeof(p->client_id), "%s", client_id);
}

/* Under the hub lock: mark the live peer using p's client id, if any. */
static unsigned long take_over(struct mqtt_hub *h, const struct mqtt_peer *p)
{
    if (p->client_id[0] == '\0') {
        return 0;
    }
    for (struct mqtt_peer *o = h->peers; o != NULL; o = o->next) {
        unsigned long id = 0;

        pthread_mutex_lock(&o->lock);
        if (o->taken_over_by == 0 && strcmp(o->client_id, p->client_id) == 0) {
            o->taken_over_by = p->id;
            id = o->id;
            /* Its worker may sit in a write to a client that is gone (a network blip). */
            (void)shutdown(o->fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&o->lock);
        if (id != 0) {
            wake(o->wake_fd);
            return id; /* earlier adds left at most one live peer per id */
        }
    }
    return 0;
}

unsigned long mqtt_hub_add(struct mqtt_hub *h, struct mqtt_peer *p)
{
    unsigned long old;

    pthread_mutex_lock(&h->lock);
    old = take_over(h, p);
    p->prev = NULL;
    p->next = h->peers;
    if (h->peers != NULL) {
        h->peers->prev = p;
    }
    h->peers = p;
    h->npeers++;
    pthread_mutex_unlock(&h->lock);
    return old;
}

void mqtt_hub_remove(struct mqtt_hub *h, struct mqtt_peer *p)
{
    pthread_mutex_lock(&h->lock);
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        h->peers = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    h->npeers--;
    if (h->npeers == 0) {
        pthread_cond_broadcast(&h->empty);
    }
    pthread_mutex_unlock(&h->lock);
    peer_free(p);
}

bool mqtt_hub_wait_empty(struct mqtt_hub *h, int64_t timeout_ms)
{
    int64_t end = pp_now_ms() + timeout_ms;
    bool ok;

    pthread_mutex_lock(&h->lock);
    while (h->npeers > 0 && pp_now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->empty, &h->lock, &ts);
    }
    ok = h->npeers == 0;
    pthread_mutex_unlock(&h->lock);
    return ok;
}

uint8_t mqtt_peer_subscribe(struct mqtt_peer *p, const char *filter, size_t len, uint8_t qos)
{
    uint8_t granted = qos > 1 ? 1 : qos; /* the proxy delivers at most QoS 1 */
    uint8_t result = granted;
    char *copy;

    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nsubs; i++) {
        if (p->subs[i].len == len && memcmp(p->subs[i].filter, filter, len) == 0) {
            p->subs[i].qos = granted;
            goto out;
        }
    }
    copy = p->nsubs < PP_MQTT_MAX_SUBS ? malloc(len ? len : 1) : NULL;
    if (copy == NULL) {
        result = MQTT_SUBACK_FAILURE;
        goto out;
    }
    memcpy(copy, filter, len);
    p->subs[p->nsubs].filter = copy;
    p->subs[p->nsubs].len = len;
    p->subs[p->nsubs].qos = granted;
    p->nsubs++;
out:
    pthread_mutex_unlock(&p->lock);
    return result;
}

void mqtt_peer_unsubscribe(struct mqtt_peer *p, const char *filter, size_t len)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nsubs; i++) {
        if (p->subs[i].len == len && memcmp(p->subs[i].filter, filter, len) == 0) {
            free(p->subs[i].filter);
            p->subs[i] = p->subs[p->nsubs - 1];
            p->nsubs--;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

void mqtt_peer_drain_wake(struct mqtt_peer *p)
{
    drain(p->wake_fd);
}

size_t mqtt_peer_take(struct mqtt_peer *p, struct mqtt_msg **msgs, uint8_t *qos, size_t max,
                      struct mqtt_ack_out *acks, size_t *nacks, bool *closing)
{
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    while (n < max && p->q_count > 0) {
        struct mqtt_msg *m = p->q[p->q_head];
        /* The QoS is decided now, from the filters the client holds at delivery. */
        uint8_t best = 0;
        bool match = false;
        for (size_t i = 0; i < p->nsubs; i++) {
            if (mqtt_topic_match(p->subs[i].filter, p->subs[i].len, m->topic, m->topic_len)) {
                match = true;
                best = p->subs[i].qos > best ? p->subs[i].qos : best;
            }
        }
        p->q_head = (p->q_head + 1) % PP_MQTT_QUEUE_MSGS;
        p->q_count--;
        p->q_bytes -= m->pkt_len;
        if (!match) {
            mqtt_msg_unref(m); /* unsubscribed since it was queued */
            continue;
        }
        msgs[n] = m;
        qos[n] = best;
        n++;
    }
    *nacks = 0;
    while (p->a_count > 0) {
        acks[(*nacks)++] = p->acks[p->a_head];
        p->a_head = (p->a_head + 1) % PP_MQTT_CLIENT_ACKS;
        p->a_count--;
    }
    *closing = p->overflow || p->taken_over_by != 0;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* ---- fan-out ---------------------------------------------------------- */

static bool peer_matches(const struct mqtt_peer *p, const struct mqtt_msg *m)
{
    for (size_t i = 0; i < p->nsubs; i++) {
        if (mqtt_topic_match(p->subs[i].filter, p->subs[i].len, m->topic, m->topic_len)) {
            return true;
        }
    }
    return false;
}

/* Under p->lock. */
static bool peer_push(struct mqtt_peer *p, struct mqtt_msg *m)
{
    if (p->overflow || p->taken_over_by != 0) {
        return false;
    }
    if (p->q_count >= PP_MQTT_QUEUE_MSGS || p->q_bytes + m->pkt_len > PP_MQTT_QUEUE_BYTES) {
        p->overflow = true;
        p->overflow_msgs = p->q_count;
        p->overflow_bytes = p->q_bytes;
        /* Wake the worker even from inside a blocked SSL_write to a full socket. */
        (void)shutdown(p->fd, SHUT_RDWR);
        return false;
    }
    mqtt_msg_ref(m);
    p->q[(p->q_head + p->q_count) % PP_MQTT_QUEUE_MSGS] = m;
    p->q_count++;
    p->q_bytes += m->pkt_len;
    return true;
}

/*
 * Two passes under the hub lock: queue for everyone first, then wake, so a woken
 * worker that preempts this thread does not hold up the queueing for the others. A
 * peer whose queue was not empty already has a wake pending (its worker drains the
 * wake fd before it takes the queue), so it costs no system call.
 */
size_t mqtt_hub_publish(struct mqtt_hub *h, struct mqtt_msg *m)
{
    size_t n = 0;
    struct mqtt_msg *old;

    mqtt_msg_ref(m);
    pthread_mutex_lock(&h->lock);
    old = h->last;
    h->last = m;
    for (struct mqtt_peer *p = h->peers; p != NULL; p = p->next) {
        p->notify = false;
        pthread_mutex_lock(&p->lock);
        if (peer_matches(p, m)) {
            bool was_idle = p->q_count == 0;
            bool pushed = peer_push(p, m);
            p->notify = (pushed && was_idle) || p->overflow;
            n += pushed;
        }
        pthread_mutex_unlock(&p->lock);
    }
    for (struct mqtt_peer *p = h->peers; p != NULL; p = p->next) {
        if (p->notify) {
            wake(p->wake_fd);
        }
    }
    pthread_mutex_unlock(&h->lock);
    mqtt_msg_unref(old);
    return n;
}

uint8_t mqtt_hub_subscribe(struct mqtt_hub *h, struct mqtt_peer *p, const char *filter,
                           size_t len, uint8_t qos)
{
    uint8_t granted;
    bool had = false, notify = false;

    /* Under the hub lock, so no report slips in between the latest and this queue. */
    pthread_mutex_lock(&h->lock);
    if (h->last != NULL) {
        pthread_mutex_lock(&p->lock);
        had = peer_matches(p, h->last);
        pthread_mutex_unlock(&p->lock);
    }
    granted = mqtt_peer_subscribe(p, filter, len, qos);
    if (h->last != NULL && !had && granted != MQTT_SUBACK_FAILURE) {
        pthread_mutex_lock(&p->lock);
        if (peer_matches(p, h->last)) {
            bool was_idle = p->q_count == 0;
            notify = (peer_push(p, h->last) && was_idle) || p->overflow;
        }
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&h->lock);
    if (notify) {
        wake(p->wake_fd);
    }
    return granted;
}

void mqtt_hub_forget_last(struct mqtt_hub *h)
{
    struct mqtt_msg *old;

    pthread_mutex_lock(&h->lock);
    old = h->last;
    h->last = NULL;
    pthread_mutex_unlock(&h->lock);
    mqtt_msg_unref(old);
}

bool mqtt_peer_overflowed(struct mqtt_peer *p, size_t *msgs, size_t *bytes)
{
    bool o;

    pthread_mutex_lock(&p->lock);
    o = p->overflow;
    *msgs = p->overflow_msgs;
    *bytes = p->overflow_bytes;
    pthread_mutex_unlock(&p->lock);
    return o;
}

unsigned long mqtt_peer_taken_over(struct mqtt_peer *p)
{
    unsigned long id;

    pthread_mutex_lock(&p->lock);
    id = p->taken_over_by;
    pthread_mutex_unlock(&p->lock);
    return id;
}

void mqtt_hub_ack(struct mqtt_hub *h, unsigned long client_id, uint8_t type, uint16_t pid)
{
    pthread_mutex_lock(&h->lock);
    for (struct mqtt_peer *p = h->peers; p != NULL; p = p->next) {
        if (p->id != client_id) {
            continue;
        }
        pthread_mutex_lock(&p->lock);
        if (p->a_count < PP_MQTT_CLIENT_ACKS) {
            struct mqtt_ack_out *a = &p->acks[(p->a_head + p->a_count) % PP_MQTT_CLIENT_ACKS];
            a->type = type;
            a->packet_id = pid;
            p->a_count++;
        } else {
            p->dropped_acks++;
        }
        pthread_mutex_unlock(&p->lock);
        wake(p->wake_fd);
        break;
    }
    pthread_mutex_unlock(&h->lock);
}

/* ---- requests --------------------------------------------------------- */

bool mqtt_hub_request(struct mqtt_hub *h, unsigned long client_id, uint16_t client_pid,
                      uint8_t qos, const uint8_t *payload, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    bool ok = false;

    if (copy == NULL) {
        return false;
    }
    memcpy(copy, payload, len);
    pthread_mutex_lock(&h->lock);
    if (h->r_count < PP_MQTT_PENDING_REQUESTS) {
        struct mqtt_req *r = &h->reqs[(h->r_head + h->r_count) % PP_MQTT_PENDING_REQUESTS];
        r->client_id = client_id;
        r->client_pid = client_pid;
        r->qos = qos;
        r->queued_ms = pp_now_ms();
        r->payload = copy;
        r->payload_len = len;
        h->r_count++;
        ok = true;
    }
    pthread_mutex_unlock(&h->lock);
    if (ok) {
        wake(h->req_fd);
    } else {
        free(copy);
    }
    return ok;
}

bool mqtt_hub_next_request(struct mqtt_hub *h, struct mqtt_req *out)
{
    bool ok = false;

    pthread_mutex_lock(&h->lock);
    if (h->r_count > 0) {
        *out = h->reqs[h->r_head];
        h->r_head = (h->r_head + 1) % PP_MQTT_PENDING_REQUESTS;
        h->r_count--;
        ok = true;
    }
    pthread_mutex_unlock(&h->lock);
    return ok;
}

size_t mqtt_hub_expire_requests(struct mqtt_hub *h, int64_t now_ms, int64_t max_age_ms)
{
    size_t n = 0;

    pthread_mutex_lock(&h->lock);
    while (h->r_count > 0 && now_ms - h->reqs[h->r_head].queued_ms >= max_age_ms) {
        free(h->reqs[h->r_head].payload);
        h->r_head = (h->r_head + 1) % PP_MQTT_PENDING_REQUESTS;
        h->r_count--;
        n++;
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}

int64_t mqtt_hub_next_expiry(struct mqtt_hub *h, int64_t now_ms, int64_t max_age_ms)
{
    int64_t left = -1;

    pthread_mutex_lock(&h->lock);
    if (h->r_count > 0) {
        left = h->reqs[h->r_head].queued_ms + max_age_ms - now_ms;
        left = left < 0 ? 0 : left;
    }
    pthread_mutex_unlock(&h->lock);
    return left;
}

void mqtt_hub_drain_req_wake(struct mqtt_hub *h)
{
    drain(h->req_fd);
}

void mqtt_hub_set_upstream(struct mqtt_hub *h, bool up)
{
    pthread_mutex_lock(&h->lock);
    h->upstream_up = up;
    pthread_mutex_unlock(&h->lock);
}

bool mqtt_hub_upstream(struct mqtt_hub *h)
{
    bool up;

    pthread_mutex_lock(&h->lock);
    up = h->upstream_up;
    pthread_mutex_unlock(&h->lock);
    return up;
}
