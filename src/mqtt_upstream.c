/* SPDX-License-Identifier: MIT */
/*
 * The printer side of the mqtt service: the one MQTT session with the printer, owned
 * by one thread. It connects with backoff (plain 3.1.1 client, level 4, no bridge
 * bit, client id pandaproxy-<SN>-<random>, keepalive 60), subscribes only to
 * device/<SN>/report, sends one pushall after every connect, hands every report to
 * the hub and forwards the clients' requests from the hub's queue, acknowledging
 * QoS 1 requests to their clients only when the printer acknowledged them.
 */
#include "autoconf.h"

#include "mqtt_upstream.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "backoff.h"
#include "buf.h"
#include "detect.h"
#include "limits.h"
#include "log.h"
#include "mqtt_codec.h"
#include "mqtt_io.h"
#include "upstream.h"
#include "util.h"

#define PUSHALL_PAYLOAD        "{\"pushing\":{\"sequence_id\":\"0\",\"command\":\"pushall\"}}"
#define CLIENT_ID_RANDOM_BYTES 4
#define UPSTREAM_TICK_MS       1000

struct inflight {
    uint16_t pid;              /* upstream packet id */
    unsigned long client_id;
    uint16_t client_pid;
    uint8_t client_qos;
    int64_t sent_ms;
};

struct upstream {
    struct service *svc;
    struct mqtt_hub *hub;
    struct pp_conn conn;
    unsigned long id;
    struct buf rx;
    struct buf tx;
    uint16_t next_pid;
    struct inflight inflight[PP_MQTT_UPSTREAM_INFLIGHT];
    size_t ninflight;
    int64_t last_rx_ms, last_tx_ms;
    uint64_t reports, requests;
    char client_id[PP_MQTT_MAX_CLIENT_ID];
};

static int up_write(struct upstream *u, const uint8_t *pkt, size_t len)
{
    if (len == 0 || conn_write(&u->conn, pkt, len) != 0) {
        return -1;
    }
    u->last_tx_ms = pp_now_ms();
    return 0;
}

static int up_send_connect(struct upstream *u)
{
    const struct pp_config *cfg = u->svc->cfg;
    struct mqtt_connect_params p = {
        .client_id = { u->client_id, strlen(u->client_id) },
        .username = { MQTT_IO_USER, strlen(MQTT_IO_USER) },
        .password = (const uint8_t *)cfg->access_code,
        .password_len = strlen(cfg->access_code),
        .keepalive = PP_MQTT_UPSTREAM_KEEPALIVE_S,
    };
    uint8_t pkt[PP_MQTT_MAX_CLIENT_ID + PP_ACCESS_CODE_MAX + 64];
    size_t n = mqtt_encode_connect(pkt, sizeof(pkt), &p);
    int r = up_write(u, pkt, n);

    pp_wipe(pkt, sizeof(pkt));
    return r;
}

/* CONNACK: 0 accepted, >0 the printer's refusal code, -1 no answer. */
static int up_wait_connack(struct upstream *u)
{
    struct mqtt_frame fr;
    struct mqtt_connack ca;
    int why = 0;
    int r = mqtt_read_packet(&u->conn, &u->rx, PP_IO_CHUNK, &fr,
                        pp_now_ms() + PP_MQTT_CONNECT_TIMEOUT_MS, service_cancel_fd(u->svc),
                        &why);

    if (r <= 0) {
        log_warn(u->svc->name, u->id, "printer did not answer CONNECT: %s",
                 r == 0 ? mqtt_io_str(why) : mqtt_strerror(why));
        return -1;
    }
    if (mqtt_decode_connack(u->rx.data, fr.total_len, &ca) != MQTT_OK) {
        log_warn(u->svc->name, u->id, "printer answered CONNECT with a %s packet",
                 mqtt_type_name(fr.type));
        return -1;
    }
    buf_consume(&u->rx, fr.total_len);
    return ca.code;
}

static int up_send_subscribe(struct upstream *u)
{
    struct mqtt_str f = { u->hub->report_topic, strlen(u->hub->report_topic) };
    uint8_t qos = 0;
    uint8_t pkt[PP_MQTT_MAX_TOPIC + 16];
    uint16_t pid = mqtt_next_packet_id(&u->next_pid);

    return up_write(u, pkt, mqtt_encode_subscribe(pkt, sizeof(pkt), pid, &f, &qos, 1));
}

static int up_publish(struct upstream *u, const uint8_t *payload, size_t len, uint8_t qos,
                      uint16_t pid)
{
    struct mqtt_publish p = {
        .topic = { u->hub->request_topic, strlen(u->hub->request_topic) },
        .qos = qos,
        .packet_id = pid,
        .payload = payload,
        .payload_len = len,
    };
    size_t n = mqtt_publish_size(&p);

    buf_clear(&u->tx);
    if (n == 0 || buf_reserve(&u->tx, n) != 0) {
        return -1;
    }
    return up_write(u, u->tx.data, mqtt_encode_publish(u->tx.data, n, &p));
}

/* Send queued client requests while the in-flight window has room. */
static int up_forward_requests(struct upstream *u)
{
    struct mqtt_req r;

    while (u->ninflight < PP_MQTT_UPSTREAM_INFLIGHT && mqtt_hub_next_request(u->hub, &r)) {
        uint8_t qos = r.qos > 0 ? 1 : 0; /* QoS 2 goes upstream as 1: acked once */
        uint16_t pid = qos ? mqtt_next_packet_id(&u->next_pid) : 0;
        int rc = up_publish(u, r.payload, r.payload_len, qos, pid);

        free(r.payload);
        if (rc != 0) {
            log_warn(u->svc->name, u->id, "request from connection %lu lost: printer write failed",
                     r.client_id);
            return -1;
        }
        u->requests++;
        log_debug(u->svc->name, u->id, "forwarded a %zu-byte request from connection %lu (QoS %u)",
                  r.payload_len, r.client_id, r.qos);
        if (qos) {
            struct inflight *f = &u->inflight[u->ninflight++];
            f->pid = pid;
            f->client_id = r.client_id;
            f->client_pid = r.client_pid;
            f->client_qos = r.qos;
            f->sent_ms = pp_now_ms();
        }
    }
    return 0;
}

static void up_on_puback(struct upstream *u, uint16_t pid)
{
    for (size_t i = 0; i < u->ninflight; i++) {
        struct inflight *f = &u->inflight[i];
        if (f->pid != pid) {
            continue;
        }
        mqtt_hub_ack(u->hub, f->client_id, f->client_qos == 2 ? MQTT_PUBREC : MQTT_PUBACK,
                     f->client_pid);
        u->inflight[i] = u->inflight[--u->ninflight];
        return;
    }
    log_debug(u->svc->name, u->id, "PUBACK for unknown packet id %u", pid);
}

static void up_expire(struct upstream *u, int64_t now)
{
    size_t n = mqtt_hub_expire_requests(u->hub, now, PP_MQTT_PENDING_MS);

    if (n > 0) {
        log_warn(u->svc->name, u->id, "dropped %zu client request(s): printer unavailable for %d s",
                 n, PP_MQTT_PENDING_MS / 1000);
    }
    for (size_t i = 0; i < u->ninflight;) {
        if (now - u->inflight[i].sent_ms >= PP_MQTT_PENDING_MS) {
            log_warn(u->svc->name, u->id,
                     "printer never acknowledged a request from connection %lu",
                     u->inflight[i].client_id);
            u->inflight[i] = u->inflight[--u->ninflight];
        } else {
            i++;
        }
    }
}

static int up_on_publish(struct upstream *u, const uint8_t *pkt, size_t len)
{
    struct mqtt_publish p;
    struct mqtt_msg *m;

    if (mqtt_decode_publish(pkt, len, &p) != MQTT_OK) {
        return -1;
    }
    if (p.qos == 1 && mqtt_send_ack(&u->conn, MQTT_PUBACK, p.packet_id) != 0) {
        return -1;
    }
    if (p.qos == 2 && mqtt_send_ack(&u->conn, MQTT_PUBREC, p.packet_id) != 0) {
        return -1;
    }
    m = mqtt_msg_new(p.topic.ptr, p.topic.len, p.payload, p.payload_len);
    if (m == NULL) {
        log_warn(u->svc->name, u->id, "cannot relay a %zu-byte report", p.payload_len);
        return 0;
    }
    u->reports++;
    if (u->svc->cfg->services & PP_WANT_CAMERA) {
        detect_scan_report(p.payload, p.payload_len);
    }
    mqtt_hub_publish(u->hub, m);
    mqtt_msg_unref(m);
    return 0;
}

static int up_on_packet(struct upstream *u, const struct mqtt_frame *fr)
{
    const uint8_t *pkt = u->rx.data;
    struct mqtt_ack ack;
    struct mqtt_suback sa;

    switch (fr->type) {
    case MQTT_PUBLISH:
        return up_on_publish(u, pkt, fr->total_len);
    case MQTT_PUBACK:
        if (mqtt_decode_ack(pkt, fr->total_len, &ack) == MQTT_OK) {
            up_on_puback(u, ack.packet_id);
        }
        return 0;
    case MQTT_PUBREL:
        if (mqtt_decode_ack(pkt, fr->total_len, &ack) == MQTT_OK) {
            return mqtt_send_ack(&u->conn, MQTT_PUBCOMP, ack.packet_id);
        }
        return -1;
    case MQTT_SUBACK:
        if (mqtt_decode_suback(pkt, fr->total_len, &sa) == MQTT_OK && sa.count == 1 &&
            sa.codes[0] == MQTT_SUBACK_FAILURE) {
            log_error(u->svc->name, u->id, "printer refused the subscription to %s",
                      u->hub->report_topic);
        }
        return 0;
    case MQTT_PINGRESP:
        return 0;
    default:
        log_debug(u->svc->name, u->id, "ignoring %s from the printer", mqtt_type_name(fr->type));
        return 0;
    }
}

/* Handle every whole packet in rx; -1 when the session must end. */
static int up_process(struct upstream *u)
{
    for (;;) {
        struct mqtt_frame fr;
        int rc = mqtt_frame(u->rx.data, u->rx.len, &fr);

        if (rc == MQTT_INCOMPLETE) {
            return 0;
        }
        if (rc != MQTT_OK) {
            log_warn(u->svc->name, u->id, "bad packet from the printer: %s", mqtt_strerror(rc));
            return -1;
        }
        if (up_on_packet(u, &fr) != 0) {
            return -1;
        }
        buf_consume(&u->rx, fr.total_len);
    }
}

/* Keepalive: ping when idle, give up when the printer stays silent. */
static int up_keepalive(struct upstream *u, int64_t now)
{
    const int64_t ka = PP_MQTT_UPSTREAM_KEEPALIVE_S * 1000LL;

    if (now - u->last_rx_ms > ka) {
        log_warn(u->svc->name, u->id, "printer silent for %lld s: reconnecting",
                 (long long)((now - u->last_rx_ms) / 1000));
        return -1;
    }
    if (now - u->last_tx_ms >= ka / 2) {
        uint8_t pkt[MQTT_IO_SMALL_PACKET];
        return up_write(u, pkt, mqtt_encode_empty(pkt, sizeof(pkt), MQTT_PINGREQ));
    }
    return 0;
}

/* The established session: until the printer goes away or the service stops. */
static void up_session_loop(struct upstream *u)
{
    int cancel = service_cancel_fd(u->svc);

    for (;;) {
        struct pollfd p[3] = {
            { .fd = u->conn.fd, .events = POLLIN },
            { .fd = cancel, .events = POLLIN },
            { .fd = u->hub->req_fd, .events = POLLIN },
        };
        /* A full window leaves requests queued: do not spin on their wake fd. */
        nfds_t n = u->ninflight < PP_MQTT_UPSTREAM_INFLIGHT ? 3 : 2;
        int r = conn_pending(&u->conn) ? 1 : poll(p, n, UPSTREAM_TICK_MS);
        int64_t now;

        if (r < 0 && errno != EINTR) {
            return;
        }
        if (p[1].revents & POLLIN) {
            return;
        }
        if (conn_pending(&u->conn) || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int rr = mqtt_read_some(&u->conn, &u->rx, PP_IO_CHUNK, 0, -1);
            if (rr <= 0 && rr != PP_IO_TIMEOUT) {
                log_warn(u->svc->name, u->id, "printer session lost: %s", mqtt_io_str(rr));
                return;
            }
            if (rr > 0) {
                u->last_rx_ms = pp_now_ms();
            }
            if (up_process(u) != 0) {
                return;
            }
        }
        if (p[2].revents & POLLIN) {
            mqtt_hub_drain_req_wake(u->hub);
        }
        if (up_forward_requests(u) != 0) {
            return;
        }
        now = pp_now_ms();
        up_expire(u, now);
        if (up_keepalive(u, now) != 0) {
            return;
        }
    }
}

/* Drop what was in flight when the session ended: resending could repeat a command. */
static void up_session_end(struct upstream *u)
{
    if (u->ninflight > 0) {
        log_warn(u->svc->name, u->id,
                 "%zu request(s) unacknowledged when the printer session ended; not resent",
                 u->ninflight);
    }
    u->ninflight = 0;
    mqtt_hub_set_upstream(u->hub, false);
    mqtt_hub_forget_last(u->hub); /* not the printer's state any more once it is back */
    conn_close(&u->conn, true);
    buf_clear(&u->rx);
}

/* Connect, log in, subscribe, pushall. 0, or the delay to wait before trying again. */
static int up_establish(struct upstream *u, struct backoff *b)
{
    char err[512];
    enum upstream_result r;
    int code;

    u->id = 0;
    r = upstream_connect(u->svc->cfg, PP_SVC_MQTT, &u->conn, u->svc->name,
                         service_cancel_fd(u->svc), err, sizeof(err));
    if (r == UP_CANCEL) {
        return -1;
    }
    if (r != UP_OK) {
        log_warn(u->svc->name, u->id, "printer unavailable: %s", err);
        return (int)backoff_next(b);
    }
    u->id = u->conn.id;
    net_tune(u->conn.fd);
    u->last_rx_ms = u->last_tx_ms = pp_now_ms();
    if (up_send_connect(u) != 0) {
        log_warn(u->svc->name, u->id, "cannot send CONNECT to the printer");
        goto fail;
    }
    code = up_wait_connack(u);
    if (code > 0) {
        log_error(u->svc->name, u->id, "printer refused the MQTT login (CONNACK %d)%s", code,
                  code == MQTT_CONNACK_BAD_CREDENTIALS || code == MQTT_CONNACK_NOT_AUTHORIZED
                      ? ": check the access code" : "");
        up_session_end(u);
        return code == MQTT_CONNACK_BAD_CREDENTIALS || code == MQTT_CONNACK_NOT_AUTHORIZED
                   ? PP_BACKOFF_AUTH_FAIL_MS : (int)backoff_next(b);
    }
    if (code < 0 || up_send_subscribe(u) != 0 ||
        up_publish(u, (const uint8_t *)PUSHALL_PAYLOAD, strlen(PUSHALL_PAYLOAD), 0, 0) != 0) {
        goto fail;
    }
    backoff_reset(b);
    mqtt_hub_set_upstream(u->hub, true);
    log_info(u->svc->name, u->id, "printer session up as %s, subscribed to %s, pushall sent",
             u->client_id, u->hub->report_topic);
    return 0;
fail:
    up_session_end(u);
    return (int)backoff_next(b);
}

/* Wait delay_ms between sessions, expiring held requests. false when stopping. */
static bool up_pause(struct upstream *u, int delay_ms)
{
    int64_t end = pp_now_ms() + delay_ms;
    int cancel = service_cancel_fd(u->svc);

    for (;;) {
        int64_t now = pp_now_ms();
        int64_t left = end - now;
        int64_t exp = mqtt_hub_next_expiry(u->hub, now, PP_MQTT_PENDING_MS);
        struct pollfd p = { .fd = cancel, .events = POLLIN };

        up_expire(u, now);
        if (left <= 0) {
            return true;
        }
        if (exp >= 0 && exp < left) {
            left = exp + 1;
        }
        if (poll(&p, 1, (int)left) > 0 && (p.revents & POLLIN)) {
            return false;
        }
    }
}

void *mqtt_upstream_main(void *arg)
{
    struct mqtt_upstream_ctx *ctx = arg;
    struct upstream *u = calloc(1, sizeof(*u));
    uint8_t rnd[CLIENT_ID_RANDOM_BYTES] = { 0 };
    struct backoff b;

    if (u == NULL || buf_init(&u->rx, PP_MQTT_READ_INITIAL, MQTT_IO_READ_MAX) != 0 ||
        buf_init(&u->tx, PP_MQTT_READ_INITIAL, MQTT_IO_READ_MAX) != 0) {
        log_error(ctx->svc->name, 0, "out of memory: no printer session");
        free(u);
        return NULL;
    }
    u->svc = ctx->svc;
    u->hub = ctx->hub;
    u->conn.fd = -1;
    (void)RAND_bytes(rnd, sizeof(rnd));
    snprintf(u->client_id, sizeof(u->client_id), "pandaproxy-%s-%02x%02x%02x%02x",
             u->svc->cfg->serial, rnd[0], rnd[1], rnd[2], rnd[3]);
    backoff_init(&b, PP_BACKOFF_INITIAL_MS, PP_BACKOFF_MAX_MS);
    while (!service_stopping(u->svc)) {
        int delay = up_establish(u, &b);
        if (delay < 0) {
            break;
        }
        if (delay == 0) {
            up_session_loop(u);
            up_session_end(u);
            log_info(u->svc->name, u->id, "printer session ended: %llu reports, %llu requests",
                     (unsigned long long)u->reports, (unsigned long long)u->requests);
            delay = (int)backoff_next(&b);
        }
        if (!up_pause(u, delay)) {
            break;
        }
    }
    if (u->conn.fd >= 0) {
        up_session_end(u);
    }
    buf_free(&u->rx);
    buf_free(&u->tx);
    free(u);
    return NULL;
}
