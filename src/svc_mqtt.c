/* SPDX-License-Identifier: MIT */
/*
 * The mqtt service: one MQTT session with the printer, shared by many clients.
 *
 * The upstream thread (mqtt_upstream.c) owns the printer session and hands reports
 * to the hub (mqtt_hub.c), which queues them by reference for each matching client.
 * Each client worker here owns its client connection: it authenticates the CONNECT,
 * keeps the client's filters, writes what the hub queued for it, answers pings and
 * hands requests for the printer to the hub.
 */
#include "autoconf.h"

#include "svc_mqtt.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "limits.h"
#include "log.h"
#include "mqtt_codec.h"
#include "mqtt_hub.h"
#include "mqtt_io.h"
#include "mqtt_upstream.h"
#include "thread.h"
#include "util.h"

#define STOP_WAIT_MS           10000

struct mqtt_svc {
    struct mqtt_hub hub;
    struct mqtt_upstream_ctx up;
    pthread_t upstream;
    bool upstream_started;
};

/* ======================================================================
 * Client workers
 * ==================================================================== */

struct session {
    struct service *svc;
    struct client *c;
    struct mqtt_hub *hub;
    struct mqtt_peer *peer;
    struct buf rx;
    struct buf tx;
    int64_t keepalive_ms;        /* 0: none */
    int64_t last_rx_ms;
    uint16_t next_pid;
    uint64_t delivered, dropped_publishes;
    bool id_assigned;            /* the client sent an empty id */
    char client_id[PP_MQTT_MAX_CLIENT_ID + 1];
};

static int send_connack(struct session *s, uint8_t code)
{
    uint8_t pkt[MQTT_IO_SMALL_PACKET];
    size_t n = mqtt_encode_connack(pkt, sizeof(pkt), false, code);

    return conn_write(&s->c->conn, pkt, n);
}

static bool credentials_ok(const struct pp_config *cfg, const struct mqtt_connect *m)
{
    char pw[PP_ACCESS_CODE_MAX + 1];
    bool user_ok, ok;

    if (!m->has_username || !m->has_password || m->password_len >= sizeof(pw)) {
        return false;
    }
    user_ok = m->username.len == strlen(MQTT_IO_USER) &&
              memcmp(m->username.ptr, MQTT_IO_USER, m->username.len) == 0;
    memcpy(pw, m->password, m->password_len);
    pw[m->password_len] = '\0';
    ok = pp_secret_equal(pw, cfg->access_code);
    pp_wipe(pw, sizeof(pw));
    return ok && user_ok;
}

/* Read and judge the CONNECT. true: the client is in and CONNACK 0 was sent. */
static bool client_connect(struct session *s)
{
    struct client *c = s->c;
    struct mqtt_frame fr;
    struct mqtt_connect m;
    int why = 0, rc, r;

    r = mqtt_read_packet(&c->conn, &s->rx, PP_MQTT_CLIENT_READ_CHUNK, &fr,
                    pp_now_ms() + PP_MQTT_CONNECT_TIMEOUT_MS, service_cancel_fd(s->svc), &why);
    if (r <= 0) {
        log_info(s->svc->name, c->conn.id, "no CONNECT from %s: %s", c->peer_str,
                 r == 0 ? mqtt_io_str(why) : mqtt_strerror(why));
        return false;
    }
    if (fr.type != MQTT_CONNECT) {
        log_info(s->svc->name, c->conn.id, "first packet from %s is %s, not CONNECT", c->peer_str,
                 mqtt_type_name(fr.type));
        return false;
    }
    rc = mqtt_decode_connect(s->rx.data, fr.total_len, &m);
    /* An empty id is always welcome: the proxy keeps no session state to resume. */
    if (rc == MQTT_E_CLIENT_ID && m.client_id.len == 0) {
        rc = MQTT_OK;
    }
    if (rc != MQTT_OK) {
        int code = mqtt_connack_code(rc);
        if (rc == MQTT_E_VERSION) {
            log_warn(s->svc->name, c->conn.id,
                     "%s speaks MQTT protocol level %u; only 3.1 and 3.1.1 are supported: refused",
                     c->peer_str, m.level);
        } else {
            log_info(s->svc->name, c->conn.id, "bad CONNECT from %s: %s", c->peer_str,
                     mqtt_strerror(rc));
        }
        if (code > 0) {
            (void)send_connack(s, (uint8_t)code);
        }
        return false;
    }
    if (!credentials_ok(s->svc->cfg, &m)) {
        service_auth_failed(c, "wrong MQTT username or access code");
        (void)send_connack(s, MQTT_CONNACK_NOT_AUTHORIZED);
        return false;
    }
    service_auth_ok(c);
    if (m.client_id.len > 0) {
        snprintf(s->client_id, sizeof(s->client_id), "%.*s", (int)m.client_id.len,
                 m.client_id.ptr);
    } else {
        snprintf(s->client_id, sizeof(s->client_id), "pandaproxy-client-%lu", c->conn.id);
        s->id_assigned = true;
    }
    s->keepalive_ms = (int64_t)m.keepalive * 1000;
    buf_consume(&s->rx, fr.total_len);
    if (send_connack(s, MQTT_CONNACK_ACCEPTED) != 0) {
        return false;
    }
    log_info(s->svc->name, c->conn.id, "client \"%s\" connected (MQTT %s, keepalive %u s%s)",
             s->client_id, m.level == MQTT_LEVEL_31 ? "3.1" : "3.1.1", m.keepalive,
             m.will ? ", will ignored" : "");
    return true;
}

static int client_on_subscribe(struct session *s, const uint8_t *pkt, size_t len)
{
    struct mqtt_subscribe sub;
    uint8_t codes[PP_MQTT_MAX_SUBS];
    uint8_t out[PP_MQTT_MAX_SUBS + 8];
    size_t n;

    if (mqtt_decode_subscribe(pkt, len, &sub) != MQTT_OK) {
        return -1;
    }
    for (size_t i = 0; i < sub.count; i++) {
        codes[i] = mqtt_hub_subscribe(s->hub, s->peer, sub.filters[i].ptr, sub.filters[i].len,
                                      sub.qos[i]);
        log_debug(s->svc->name, s->c->conn.id, "subscribed to %.*s (QoS %u granted %u)",
                  (int)sub.filters[i].len, sub.filters[i].ptr, sub.qos[i], codes[i]);
    }
    n = mqtt_encode_suback(out, sizeof(out), sub.packet_id, codes, sub.count);
    return n == 0 ? -1 : conn_write(&s->c->conn, out, n);
}

static int client_on_unsubscribe(struct session *s, const uint8_t *pkt, size_t len)
{
    struct mqtt_unsubscribe un;

    if (mqtt_decode_unsubscribe(pkt, len, &un) != MQTT_OK) {
        return -1;
    }
    for (size_t i = 0; i < un.count; i++) {
        mqtt_peer_unsubscribe(s->peer, un.filters[i].ptr, un.filters[i].len);
    }
    return mqtt_send_ack(&s->c->conn, MQTT_UNSUBACK, un.packet_id);
}

static int client_on_publish(struct session *s, const uint8_t *pkt, size_t len)
{
    struct mqtt_publish p;
    unsigned long id = s->c->conn.id;

    if (mqtt_decode_publish(pkt, len, &p) != MQTT_OK) {
        return -1;
    }
    if (p.topic.len != strlen(s->hub->request_topic) ||
        memcmp(p.topic.ptr, s->hub->request_topic, p.topic.len) != 0) {
        /* The printer would drop the client; the proxy just drops the message. */
        if (s->dropped_publishes++ == 0) {
            log_info(s->svc->name, id, "dropped a publish to %.*s: only %s is forwarded",
                     (int)p.topic.len, p.topic.ptr, s->hub->request_topic);
        }
        if (p.qos > 0) {
            return mqtt_send_ack(&s->c->conn, p.qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p.packet_id);
        }
        return 0;
    }
    if (!mqtt_hub_upstream(s->hub)) {
        log_info(s->svc->name, id, "printer unavailable: request held for up to %d s",
                 PP_MQTT_PENDING_MS / 1000);
    }
    if (!mqtt_hub_request(s->hub, id, p.packet_id, p.qos, p.payload, p.payload_len)) {
        log_warn(s->svc->name, id, "request dropped: %d requests already wait for the printer",
                 PP_MQTT_PENDING_REQUESTS);
    }
    return 0;
}

static int client_on_packet(struct session *s, const struct mqtt_frame *fr, bool *done)
{
    const uint8_t *pkt = s->rx.data;
    struct mqtt_ack ack;
    uint8_t type;

    switch (fr->type) {
    case MQTT_SUBSCRIBE:
        return client_on_subscribe(s, pkt, fr->total_len);
    case MQTT_UNSUBSCRIBE:
        return client_on_unsubscribe(s, pkt, fr->total_len);
    case MQTT_PUBLISH:
        return client_on_publish(s, pkt, fr->total_len);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
        /* The client acknowledging a report: nothing is ever resent. */
        return mqtt_decode_ack(pkt, fr->total_len, &ack) == MQTT_OK ? 0 : -1;
    case MQTT_PUBREL:
        if (mqtt_decode_ack(pkt, fr->total_len, &ack) != MQTT_OK) {
            return -1;
        }
        return mqtt_send_ack(&s->c->conn, MQTT_PUBCOMP, ack.packet_id);
    case MQTT_PINGREQ:
        if (mqtt_decode_empty(pkt, fr->total_len, &type) != MQTT_OK) {
            return -1;
        }
        return mqtt_send_empty(&s->c->conn, MQTT_PINGRESP);
    case MQTT_DISCONNECT:
        *done = true;
        return 0;
    default:
        log_info(s->svc->name, s->c->conn.id, "unexpected %s from the client: closing",
                 mqtt_type_name(fr->type));
        return -1;
    }
}

static int client_process(struct session *s, bool *done)
{
    while (!*done) {
        struct mqtt_frame fr;
        int rc = mqtt_frame(s->rx.data, s->rx.len, &fr);

        if (rc == MQTT_INCOMPLETE) {
            return 0;
        }
        if (rc != MQTT_OK) {
            log_info(s->svc->name, s->c->conn.id, "bad packet from the client: %s",
                     mqtt_strerror(rc));
            return -1;
        }
        if (client_on_packet(s, &fr, done) != 0) {
            return -1;
        }
        buf_consume(&s->rx, fr.total_len);
    }
    return 0;
}

static int deliver_msg(struct session *s, struct mqtt_msg *m, uint8_t qos)
{
    struct mqtt_publish p = {
        .topic = { m->topic, m->topic_len },
        .payload = m->payload,
        .payload_len = m->payload_len,
        .qos = qos,
    };
    size_t n;

    if (qos == 0) {
        return conn_write(&s->c->conn, m->pkt, m->pkt_len); /* the shared packet as is */
    }
    p.packet_id = mqtt_next_packet_id(&s->next_pid);
    n = mqtt_publish_size(&p);
    buf_clear(&s->tx);
    if (n == 0 || buf_reserve(&s->tx, n) != 0) {
        return -1;
    }
    return conn_write(&s->c->conn, s->tx.data, mqtt_encode_publish(s->tx.data, n, &p));
}

/* Write what the hub queued for this client. -1 when the client must go. */
static int client_deliver(struct session *s)
{
    struct mqtt_msg *msgs[PP_MQTT_TAKE_BATCH];
    uint8_t qos[PP_MQTT_TAKE_BATCH];
    struct mqtt_ack_out acks[PP_MQTT_CLIENT_ACKS];
    size_t n, nacks;
    bool closing;

    do {
        int rc = 0;
        n = mqtt_peer_take(s->peer, msgs, qos, PP_MQTT_TAKE_BATCH, acks, &nacks, &closing);
        for (size_t i = 0; i < nacks && rc == 0 && !closing; i++) {
            rc = mqtt_send_ack(&s->c->conn, acks[i].type, acks[i].packet_id);
        }
        for (size_t i = 0; i < n; i++) {
            if (rc == 0 && !closing) {
                rc = deliver_msg(s, msgs[i], qos[i]);
                s->delivered += rc == 0;
            }
            mqtt_msg_unref(msgs[i]);
        }
        if (closing) {
            return -1;
        }
        if (rc != 0) {
            return -1;
        }
    } while (n == PP_MQTT_TAKE_BATCH);
    return 0;
}

/* Milliseconds the client may stay silent (1.5 x keepalive), -1 without keepalive. */
static int keepalive_left(const struct session *s, int64_t now)
{
    int64_t left;

    if (s->keepalive_ms == 0) {
        return -1;
    }
    left = s->last_rx_ms + s->keepalive_ms * 3 / 2 - now;
    return left < 0 ? 0 : (int)left;
}

static void client_loop(struct session *s)
{
    struct pp_conn *cn = &s->c->conn;
    int cancel = service_cancel_fd(s->svc);
    bool done = false;

    s->last_rx_ms = pp_now_ms();
    while (!done) {
        struct pollfd p[3] = {
            { .fd = cn->fd, .events = POLLIN },
            { .fd = s->peer->wake_fd, .events = POLLIN },
            { .fd = cancel, .events = POLLIN },
        };
        int left = keepalive_left(s, pp_now_ms());
        int r;

        /* Checked here too: a stream of reports keeps poll from ever timing out. */
        if (left == 0) {
            log_info(s->svc->name, cn->id,
                     "client \"%s\" silent for 1.5 x keepalive (%lld s): closing", s->client_id,
                     (long long)(s->keepalive_ms / 1000));
            return;
        }
        r = conn_pending(cn) ? 1 : poll(p, 3, left);
        if (r < 0 && errno != EINTR) {
            return;
        }
        if (p[2].revents & POLLIN) {
            return;
        }
        if (p[1].revents & POLLIN) {
            mqtt_peer_drain_wake(s->peer);
            if (client_deliver(s) != 0) {
                return;
            }
        }
        if (conn_pending(cn) || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int rr = mqtt_read_some(cn, &s->rx, PP_MQTT_CLIENT_READ_CHUNK, 0, -1);
            if (rr <= 0 && rr != PP_IO_TIMEOUT) {
                if (rr != PP_IO_EOF) {
                    log_debug(s->svc->name, cn->id, "client \"%s\": %s", s->client_id,
                              mqtt_io_str(rr));
                }
                return;
            }
            if (rr > 0) {
                s->last_rx_ms = pp_now_ms();
            }
            if (client_process(s, &done) != 0) {
                return;
            }
        }
    }
}

static void mqtt_serve(struct service *svc, struct client *c)
{
    struct mqtt_svc *ms = svc->priv;
    struct session s = { .svc = svc, .c = c, .hub = &ms->hub };
    size_t qmsgs, qbytes;
    unsigned long other;

    if (buf_init(&s.rx, PP_MQTT_CLIENT_READ_CHUNK, MQTT_IO_READ_MAX) != 0 ||
        buf_init(&s.tx, PP_MQTT_CLIENT_READ_CHUNK, MQTT_IO_READ_MAX) != 0) {
        goto out;
    }
    /* Many mostly idle clients: let OpenSSL free its record buffers between writes. */
    SSL_set_mode(c->conn.ssl, SSL_MODE_RELEASE_BUFFERS);
    if (!client_connect(&s)) {
        goto out;
    }
    s.peer = mqtt_peer_new(c->conn.id, c->conn.fd);
    if (s.peer == NULL) {
        log_error(svc->name, c->conn.id, "out of memory for a client");
        goto out;
    }
    mqtt_peer_set_client_id(s.peer, s.id_assigned ? "" : s.client_id);
    other = mqtt_hub_add(&ms->hub, s.peer);
    if (other != 0) {
        log_info(svc->name, c->conn.id,
                 "client \"%s\" connected again as connection %lu: closing its connection %lu",
                 s.client_id, c->conn.id, other);
    }
    client_loop(&s);
    other = mqtt_peer_taken_over(s.peer);
    if (other != 0) {
        log_info(svc->name, c->conn.id, "client \"%s\" taken over by connection %lu: closed",
                 s.client_id, other);
        c->conn.failed = true; /* its socket is shut down: no close_notify */
    } else if (mqtt_peer_overflowed(s.peer, &qmsgs, &qbytes)) {
        log_warn(svc->name, c->conn.id,
                 "client \"%s\" fell behind (%zu reports, %zu bytes queued): disconnected",
                 s.client_id, qmsgs, qbytes);
        c->conn.failed = true; /* its socket is shut down: no close_notify */
    }
    if (s.peer->dropped_acks > 0) {
        log_warn(svc->name, c->conn.id, "%llu acknowledgements could not be queued",
                 (unsigned long long)s.peer->dropped_acks);
    }
    mqtt_hub_remove(&ms->hub, s.peer);
    log_info(svc->name, c->conn.id, "client \"%s\" gone: %llu reports delivered%s",
             s.client_id, (unsigned long long)s.delivered,
             s.dropped_publishes ? ", publishes to other topics dropped" : "");
out:
    buf_free(&s.rx);
    buf_free(&s.tx);
}

/* ======================================================================
 * Service hooks
 * ==================================================================== */

static int mqtt_start(struct service *svc, char *err, size_t errlen)
{
    struct mqtt_svc *ms = calloc(1, sizeof(*ms));

    if (ms == NULL || mqtt_hub_init(&ms->hub, svc->cfg->serial) != 0) {
        snprintf(err, errlen, "mqtt: out of memory or file descriptors");
        free(ms);
        return -1;
    }
    ms->up.svc = svc;
    ms->up.hub = &ms->hub;
    svc->priv = ms;
    if (thread_spawn(&ms->upstream, false, mqtt_upstream_main, &ms->up) != 0) {
        snprintf(err, errlen, "mqtt: cannot start the printer session thread");
        mqtt_hub_destroy(&ms->hub);
        free(ms);
        svc->priv = NULL;
        return -1;
    }
    ms->upstream_started = true;
    return 0;
}

static void mqtt_stop(struct service *svc)
{
    struct mqtt_svc *ms = svc->priv;
    int64_t end = pp_now_ms() + STOP_WAIT_MS;

    if (ms == NULL) {
        return;
    }
    if (ms->upstream_started) {
        pthread_join(ms->upstream, NULL);
    }
    /* Workers (even ones still in their handshake) use the hub until they return. */
    while (service_client_count(svc) > 0 && pp_now_ms() < end) {
        pp_sleep(10, -1);
    }
    if (service_client_count(svc) > 0 || !mqtt_hub_wait_empty(&ms->hub, 0)) {
        log_warn(svc->name, 0, "clients still running at stop: hub left allocated");
        return;
    }
    mqtt_hub_destroy(&ms->hub);
    free(ms);
    svc->priv = NULL;
}

const struct service_ops svc_mqtt_ops = {
    .start = mqtt_start,
    .serve = mqtt_serve,
    .stop = mqtt_stop,
};
