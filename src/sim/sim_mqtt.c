/* SPDX-License-Identifier: MIT */
/*
 * The simulated printer's MQTT broker (port 8883): MQTT 3.1/3.1.1 over TLS with
 * bblp/access code, a single topic pair device/<SN>/report and device/<SN>/request,
 * and the printer's quirks: a subscription that reaches the request topic (such as
 * `#`) gets the client disconnected. Each client worker owns its SSL* and waits on
 * its socket, its eventfd (a report was posted) and the service's cancel fd.
 */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../log.h"
#include "../mqtt_codec.h"
#include "../util.h"
#include "sim.h"
#include "sim_printer.h"

#define BBLP_USER        "bblp"
#define TOPIC_MAX        (PP_SERIAL_MAX + 32)
#define SMALL_PACKET_MAX 8          /* CONNACK, PUBACK, PINGRESP ... */
#define CLIENT_ID_LOGGED 64

/* One client's session, owned by its worker thread. */
struct mq {
    struct sim *s;
    struct sim_printer *p;
    struct client *c;
    uint8_t *in;                    /* received bytes not yet parsed */
    size_t in_len;
    bool connected;                 /* CONNECT accepted */
    bool subscribed;                /* to the report topic */
    int keepalive_s;
    int64_t last_rx_ms;
    unsigned long skipped;          /* reports lost because the client fell behind */
    struct sim_sub sub;
    char report[TOPIC_MAX];
    char request[TOPIC_MAX];
};

enum step { STEP_CONTINUE = 0, STEP_CLOSE = 1 };

static unsigned long id(const struct mq *m)
{
    return m->c->conn.id;
}

static int send_small(struct mq *m, const uint8_t *pkt, size_t n)
{
    return n > 0 ? conn_write(&m->c->conn, pkt, n) : -1;
}

static int send_ack(struct mq *m, uint8_t type, uint16_t packet_id)
{
    uint8_t pkt[SMALL_PACKET_MAX];

    return send_small(m, pkt, mqtt_encode_ack(pkt, sizeof(pkt), type, packet_id));
}

static int send_publish(struct mq *m, const char *json, size_t len)
{
    struct mqtt_publish pub = {
        .topic = { m->report, strlen(m->report) },
        .payload = (const uint8_t *)json,
        .payload_len = len,
    };
    size_t n = mqtt_publish_size(&pub);
    uint8_t *pkt = n > 0 ? malloc(n) : NULL;
    int rc;

    if (pkt == NULL) {
        log_warn("mqtt", id(m), "cannot encode a %zu-byte report: skipped", len);
        return 0;
    }
    n = mqtt_encode_publish(pkt, n, &pub);
    rc = n > 0 ? conn_write(&m->c->conn, pkt, n) : -1;
    free(pkt);
    if (rc == 0) {
        atomic_fetch_add(&m->s->messages, 1);
        sim_status_changed(m->s);
    }
    return rc;
}

/* Send every report posted since the last call. */
static int deliver(struct mq *m)
{
    unsigned long before = m->skipped;
    size_t len;
    char *json;

    while (m->subscribed && (json = sim_printer_next(m->p, &m->sub, &len, &m->skipped)) != NULL) {
        int rc = send_publish(m, json, len);

        free(json);
        if (rc != 0) {
            return -1;
        }
    }
    if (m->skipped != before) {
        log_warn("mqtt", id(m), "client fell behind: %lu reports skipped", m->skipped - before);
    }
    return 0;
}

/* ---- packets ------------------------------------------------------------- */

static bool credentials_ok(const struct mq *m, const struct mqtt_connect *cn)
{
    char code[PP_ACCESS_CODE_MAX + 1];
    bool ok;

    if (!cn->has_username || !cn->has_password || cn->username.len != strlen(BBLP_USER) ||
        memcmp(cn->username.ptr, BBLP_USER, cn->username.len) != 0 ||
        cn->password_len >= sizeof(code)) {
        return false;
    }
    memcpy(code, cn->password, cn->password_len);
    code[cn->password_len] = '\0';
    ok = strlen(code) == cn->password_len && pp_secret_equal(code, m->s->cfg.access_code);
    pp_wipe(code, sizeof(code));
    return ok;
}

static enum step on_connect(struct mq *m, const uint8_t *pkt, size_t len)
{
    struct mqtt_connect cn;
    uint8_t out[SMALL_PACKET_MAX];
    int r = mqtt_decode_connect(pkt, len, &cn);

    if (m->connected) {
        log_info("mqtt", id(m), "second CONNECT: closing");
        return STEP_CLOSE;
    }
    if (r != MQTT_OK) {
        int code = mqtt_connack_code(r);

        log_info("mqtt", id(m), "bad CONNECT from %s: %s", m->c->peer_str, mqtt_strerror(r));
        if (code >= 0) {
            (void)send_small(m, out, mqtt_encode_connack(out, sizeof(out), false, (uint8_t)code));
        }
        return STEP_CLOSE;
    }
    if (!credentials_ok(m, &cn)) {
        /* A printer answers "not authorized" (5) and closes, without any delay. */
        log_warn("mqtt", id(m), "wrong user or access code from %s: CONNACK 5", m->c->peer_str);
        (void)send_small(m, out, mqtt_encode_connack(out, sizeof(out), false,
                                                      MQTT_CONNACK_NOT_AUTHORIZED));
        return STEP_CLOSE;
    }
    if (send_small(m, out, mqtt_encode_connack(out, sizeof(out), false,
                                                MQTT_CONNACK_ACCEPTED)) != 0) {
        return STEP_CLOSE;
    }
    m->connected = true;
    m->keepalive_s = cn.keepalive;
    log_info("mqtt", id(m), "client '%.*s' connected (MQTT %s, keepalive %d s)",
             (int)(cn.client_id.len > CLIENT_ID_LOGGED ? CLIENT_ID_LOGGED : cn.client_id.len),
             cn.client_id.ptr, cn.level == MQTT_LEVEL_31 ? "3.1" : "3.1.1", m->keepalive_s);
    return STEP_CONTINUE;
}

static bool matches(struct mqtt_str f, const char *topic)
{
    return mqtt_topic_match(f.ptr, f.len, topic, strlen(topic));
}

static enum step on_subscribe(struct mq *m, const uint8_t *pkt, size_t len)
{
    struct mqtt_subscribe sub;
    uint8_t codes[PP_MQTT_MAX_SUBS];
    uint8_t out[SMALL_PACKET_MAX + PP_MQTT_MAX_SUBS];
    bool want = false;

    if (mqtt_decode_subscribe(pkt, len, &sub) != MQTT_OK) {
        log_info("mqtt", id(m), "malformed SUBSCRIBE: closing");
        return STEP_CLOSE;
    }
    for (size_t i = 0; i < sub.count; i++) {
        if (matches(sub.filters[i], m->request)) {
            /* What printers do to a client that would read everyone's commands. */
            log_warn("mqtt", id(m), "client subscribed to '%.*s', which covers %s: disconnecting",
                     (int)sub.filters[i].len, sub.filters[i].ptr, m->request);
            return STEP_CLOSE;
        }
        codes[i] = matches(sub.filters[i], m->report) ? 0 : MQTT_SUBACK_FAILURE;
        want = want || codes[i] == 0;
        log_info("mqtt", id(m), "subscribe '%.*s': %s", (int)sub.filters[i].len,
                 sub.filters[i].ptr, codes[i] == 0 ? "granted" : "refused (no such topic)");
    }
    if (want && !m->subscribed) {
        sim_printer_subscribe(m->p, &m->sub);
        m->subscribed = true;
    }
    if (send_small(m, out, mqtt_encode_suback(out, sizeof(out), sub.packet_id, codes,
                                               sub.count)) != 0) {
        return STEP_CLOSE;
    }
    return STEP_CONTINUE;
}

static enum step on_unsubscribe(struct mq *m, const uint8_t *pkt, size_t len)
{
    struct mqtt_unsubscribe un;

    if (mqtt_decode_unsubscribe(pkt, len, &un) != MQTT_OK) {
        log_info("mqtt", id(m), "malformed UNSUBSCRIBE: closing");
        return STEP_CLOSE;
    }
    for (size_t i = 0; i < un.count; i++) {
        if (m->subscribed && matches(un.filters[i], m->report)) {
            sim_printer_unsubscribe(m->p, &m->sub);
            m->subscribed = false;
        }
    }
    return send_ack(m, MQTT_UNSUBACK, un.packet_id) == 0 ? STEP_CONTINUE : STEP_CLOSE;
}

static enum step on_publish(struct mq *m, const uint8_t *pkt, size_t len)
{
    struct mqtt_publish pub;

    if (mqtt_decode_publish(pkt, len, &pub) != MQTT_OK) {
        log_info("mqtt", id(m), "malformed PUBLISH: closing");
        return STEP_CLOSE;
    }
    if (pub.qos == 1 && send_ack(m, MQTT_PUBACK, pub.packet_id) != 0) {
        return STEP_CLOSE;
    }
    if (pub.qos == 2 && send_ack(m, MQTT_PUBREC, pub.packet_id) != 0) {
        return STEP_CLOSE;
    }
    if (pub.topic.len == strlen(m->request) &&
        memcmp(pub.topic.ptr, m->request, pub.topic.len) == 0) {
        sim_printer_request(m->p, pub.payload, pub.payload_len, id(m));
    } else {
        log_info("mqtt", id(m), "PUBLISH to '%.*s' ignored (only %s is read)",
                 (int)pub.topic.len, pub.topic.ptr, m->request);
    }
    return STEP_CONTINUE;
}

static enum step on_packet(struct mq *m, const struct mqtt_frame *f)
{
    const uint8_t *pkt = m->in;
    size_t len = f->total_len;
    struct mqtt_ack ack;
    uint8_t out[SMALL_PACKET_MAX];

    if (!m->connected && f->type != MQTT_CONNECT) {
        log_info("mqtt", id(m), "%s before CONNECT: closing", mqtt_type_name(f->type));
        return STEP_CLOSE;
    }
    switch (f->type) {
    case MQTT_CONNECT:
        return on_connect(m, pkt, len);
    case MQTT_SUBSCRIBE:
        return on_subscribe(m, pkt, len);
    case MQTT_UNSUBSCRIBE:
        return on_unsubscribe(m, pkt, len);
    case MQTT_PUBLISH:
        return on_publish(m, pkt, len);
    case MQTT_PUBREL:
        if (mqtt_decode_ack(pkt, len, &ack) != MQTT_OK) {
            return STEP_CLOSE;
        }
        return send_ack(m, MQTT_PUBCOMP, ack.packet_id) == 0 ? STEP_CONTINUE : STEP_CLOSE;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
        return STEP_CONTINUE; /* we only publish at QoS 0 */
    case MQTT_PINGREQ:
        return send_small(m, out, mqtt_encode_empty(out, sizeof(out), MQTT_PINGRESP)) == 0
                   ? STEP_CONTINUE
                   : STEP_CLOSE;
    case MQTT_DISCONNECT:
        log_info("mqtt", id(m), "client sent DISCONNECT");
        return STEP_CLOSE;
    default:
        log_info("mqtt", id(m), "unexpected %s from a client: closing", mqtt_type_name(f->type));
        return STEP_CLOSE;
    }
}

/* Handle every whole packet in the input buffer. */
static enum step drain_input(struct mq *m)
{
    for (;;) {
        struct mqtt_frame f;
        int r = mqtt_frame(m->in, m->in_len, &f);
        enum step st;

        if (r == MQTT_INCOMPLETE && f.total_len <= SIM_MQTT_MAX_IN) {
            return STEP_CONTINUE;
        }
        if (r != MQTT_OK && r != MQTT_INCOMPLETE) {
            log_info("mqtt", id(m), "bad packet: %s: closing", mqtt_strerror(r));
            return STEP_CLOSE;
        }
        if (f.total_len > SIM_MQTT_MAX_IN) {
            log_info("mqtt", id(m), "%zu-byte packet is over the simulator's limit: closing",
                     f.total_len);
            return STEP_CLOSE;
        }
        st = on_packet(m, &f);
        memmove(m->in, m->in + f.total_len, m->in_len - f.total_len);
        m->in_len -= f.total_len;
        if (st != STEP_CONTINUE) {
            return st;
        }
    }
}

/* ---- the session loop ----------------------------------------------------- */

/* How long to wait for the next byte: the auth deadline before CONNECT, then 1.5 x the
 * client's keepalive (-1: forever); 0 when the deadline has passed. */
static int wait_ms(const struct mq *m)
{
    int64_t deadline;

    if (!m->connected) {
        deadline = m->c->start_ms + PP_AUTH_TIMEOUT_MS;
    } else if (m->keepalive_s > 0) {
        deadline = m->last_rx_ms +
                   (int64_t)m->keepalive_s * 1000 * SIM_MQTT_KEEPALIVE_NUM / SIM_MQTT_KEEPALIVE_DEN;
    } else {
        return -1;
    }
    deadline -= pp_now_ms();
    return deadline > 0 ? (int)deadline : 0;
}

static enum step read_more(struct mq *m)
{
    int r = conn_read(&m->c->conn, m->in + m->in_len, SIM_MQTT_MAX_IN - m->in_len, 0, -1);

    if (r == PP_IO_TIMEOUT) {
        return STEP_CONTINUE; /* a partial record or a TLS-only record */
    }
    if (r <= 0) {
        log_info("mqtt", id(m), "client %s", r == PP_IO_EOF ? "closed the connection"
                                                              : "connection failed");
        return STEP_CLOSE;
    }
    m->in_len += (size_t)r;
    m->last_rx_ms = pp_now_ms();
    return drain_input(m);
}

static void session(struct mq *m)
{
    int cancel = service_cancel_fd(m->c->svc);

    for (;;) {
        struct pollfd pf[3] = {
            { .fd = m->c->conn.fd, .events = POLLIN },
            { .fd = m->sub.wake_fd, .events = POLLIN },
            { .fd = cancel, .events = POLLIN },
        };
        int timeout = wait_ms(m);
        int r;

        if (timeout == 0) {
            log_info("mqtt", id(m), "%s: closing", m->connected ? "keepalive expired"
                                                                : "no CONNECT in time");
            return;
        }
        if (conn_pending(&m->c->conn)) {
            timeout = 0;
        }
        r = poll(pf, 3, timeout);
        if (r < 0 && errno != EINTR) {
            return;
        }
        if (pf[2].revents & POLLIN) {
            return;
        }
        if (pf[1].revents & POLLIN) {
            uint64_t n;
            (void)!read(m->sub.wake_fd, &n, sizeof(n));
        }
        if ((pf[0].revents & (POLLIN | POLLHUP | POLLERR)) || conn_pending(&m->c->conn)) {
            if (read_more(m) != STEP_CONTINUE) {
                return;
            }
        }
        if (deliver(m) != 0) {
            return;
        }
    }
}

static void mqtt_serve(struct service *svc, struct client *c)
{
    struct sim *s = svc->priv;
    struct mq m;

    memset(&m, 0, sizeof(m));
    m.s = s;
    m.p = s->mqtt;
    m.c = c;
    m.last_rx_ms = pp_now_ms();
    m.sub.conn_id = c->conn.id;
    snprintf(m.report, sizeof(m.report), "device/%s/report", s->cfg.serial);
    snprintf(m.request, sizeof(m.request), "device/%s/request", s->cfg.serial);
    sim_printer_attach(m.p);
    m.sub.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    m.in = malloc(SIM_MQTT_MAX_IN);
    if (m.sub.wake_fd >= 0 && m.in != NULL && !service_stopping(svc)) {
        session(&m);
    }
    if (m.subscribed) {
        sim_printer_unsubscribe(m.p, &m.sub);
    }
    if (m.sub.wake_fd >= 0) {
        close(m.sub.wake_fd);
    }
    free(m.in);
    sim_printer_detach(m.p);
}

static int mqtt_start(struct service *svc, char *err, size_t errlen)
{
    struct sim *s = svc->priv;

    s->mqtt = sim_printer_start(s, service_cancel_fd(svc), err, errlen);
    return s->mqtt != NULL ? 0 : -1;
}

static void mqtt_stop(struct service *svc)
{
    struct sim *s = svc->priv;

    sim_printer_stop(s->mqtt);
}

const struct service_ops sim_mqtt_ops = {
    .start = mqtt_start,
    .serve = mqtt_serve,
    .stop = mqtt_stop,
};
