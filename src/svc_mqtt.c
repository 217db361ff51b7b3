/* SPDX-License-Identifier: MIT */
/*
 * The mqtt service: one MQTT session with the printer, shared by many clients.
 *
 * The upstream thread owns the printer connection: it connects (with backoff),
 * subscribes only to device/<SN>/report, asks for a pushall after every connect,
 * hands every report to the hub (which queues it by reference for each matching
 * client) and forwards the clients' requests from the hub's queue. Each client
 * worker owns its client connection: it authenticates the CONNECT, keeps the
 * client's filters, writes what the hub queued for it and answers pings.
 */
#include "autoconf.h"

#include "svc_mqtt.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "backoff.h"
#include "buf.h"
#include "limits.h"
#include "log.h"
#include "mqtt_codec.h"
#include "mqtt_hub.h"
#include "thread.h"
#include "upstream.h"
#include "util.h"

#define MQTT_USER              "bblp"
#define PUSHALL_PAYLOAD        "{\"pushing\":{\"sequence_id\":\"0\",\"command\":\"pushall\"}}"
#define CLIENT_ID_RANDOM_BYTES 4
#define READ_BUF_MAX           (PP_MQTT_MAX_PACKET + 2 * PP_IO_CHUNK)
#define UPSTREAM_TICK_MS       1000
#define STOP_WAIT_MS           10000
#define ACK_BUF                8     /* room for any ack, ping or CONNACK packet */

struct mqtt_svc {
    struct mqtt_hub hub;
    struct service *svc;
    pthread_t upstream;
    bool upstream_started;
};

/* ======================================================================
 * Reading whole packets
 * ==================================================================== */

/*
 * Read what is available (waiting up to timeout_ms) into b, making room for at least
 * chunk bytes. >0, or an enum pp_io.
 */
static int read_some(struct pp_conn *c, struct buf *b, size_t chunk, int timeout_ms,
                     int cancel_fd)
{
    int r;

    if (buf_reserve(b, chunk) != 0) {
        return PP_IO_ERR;
    }
    r = conn_read(c, buf_tail(b), buf_room(b), timeout_ms, cancel_fd);
    if (r > 0) {
        b->len += (size_t)r;
    }
    return r;
}

/*
 * Wait until b starts with a whole packet (fr describes it) or deadline_ms passes.
 * 1: packet, 0: EOF/timeout/cancel (why tells), -1: malformed stream (err tells).
 */
static int read_packet(struct pp_conn *c, struct buf *b, size_t chunk, struct mqtt_frame *fr,
                       int64_t deadline_ms, int cancel_fd, int *why)
{
    for (;;) {
        int rc = mqtt_frame(b->data, b->len, fr);
        int64_t left;
        int r;

        if (rc == MQTT_OK) {
            return 1;
        }
        if (rc != MQTT_INCOMPLETE) {
            *why = rc;
            return -1;
        }
        left = deadline_ms - pp_now_ms();
        if (left <= 0) {
            *why = PP_IO_TIMEOUT;
            return 0;
        }
        r = read_some(c, b, chunk, (int)left, cancel_fd);
        if (r <= 0) {
            *why = r;
            return 0;
        }
    }
}

static const char *io_str(int r)
{
    switch (r) {
    case PP_IO_EOF: return "connection closed";
    case PP_IO_TIMEOUT: return "timed out";
    case PP_IO_CANCEL: return "stopping";
    default: return "connection error";
    }
}

static int send_ack(struct pp_conn *c, uint8_t type, uint16_t pid)
{
    uint8_t pkt[ACK_BUF];
    size_t n = mqtt_encode_ack(pkt, sizeof(pkt), type, pid);

    return n == 0 ? -1 : conn_write(c, pkt, n);
}

static int send_empty(struct pp_conn *c, uint8_t type)
{
    uint8_t pkt[ACK_BUF];
    size_t n = mqtt_encode_empty(pkt, sizeof(pkt), type);

    return n == 0 ? -1 : conn_write(c, pkt, n);
}

static uint16_t next_packet_id(uint16_t *pid)
{
    *pid = (uint16_t)(*pid + 1);
    if (*pid == 0) {
        *pid = 1;
    }
    return *pid;
}

/* ======================================================================
 * Upstream: the printer session
 * ==================================================================== */

struct inflight {
    uint16_t pid;              /* upstream packet id */
    unsigned long client_id;
    uint16_t client_pid;
    uint8_t client_qos;
    int64_t sent_ms;
};

struct upstream {
    struct mqtt_svc *ms;
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
        .username = { MQTT_USER, strlen(MQTT_USER) },
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
    int r = read_packet(&u->conn, &u->rx, PP_IO_CHUNK, &fr,
                        pp_now_ms() + PP_MQTT_CONNECT_TIMEOUT_MS, service_cancel_fd(u->svc),
                        &why);

    if (r <= 0) {
        log_warn(u->svc->name, u->id, "printer did not answer CONNECT: %s",
                 r == 0 ? io_str(why) : mqtt_strerror(why));
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

    return up_write(u, pkt, mqtt_encode_subscribe(pkt, sizeof(pkt), next_packet_id(&u->next_pid),
                                                  &f, &qos, 1));
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
        uint16_t pid = qos ? next_packet_id(&u->next_pid) : 0;
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
    if (p.qos == 1 && send_ack(&u->conn, MQTT_PUBACK, p.packet_id) != 0) {
        return -1;
    }
    if (p.qos == 2 && send_ack(&u->conn, MQTT_PUBREC, p.packet_id) != 0) {
        return -1;
    }
    m = mqtt_msg_new(p.topic.ptr, p.topic.len, p.payload, p.payload_len);
    if (m == NULL) {
        log_warn(u->svc->name, u->id, "cannot relay a %zu-byte report", p.payload_len);
        return 0;
    }
    u->reports++;
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
            return send_ack(&u->conn, MQTT_PUBCOMP, ack.packet_id);
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
        uint8_t pkt[ACK_BUF];
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
            int rr = read_some(&u->conn, &u->rx, PP_IO_CHUNK, 0, -1);
            if (rr <= 0 && rr != PP_IO_TIMEOUT) {
                log_warn(u->svc->name, u->id, "printer session lost: %s", io_str(rr));
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

static void *upstream_main(void *arg)
{
    struct mqtt_svc *ms = arg;
    struct upstream *u = calloc(1, sizeof(*u));
    uint8_t rnd[CLIENT_ID_RANDOM_BYTES] = { 0 };
    struct backoff b;

    if (u == NULL || buf_init(&u->rx, PP_MQTT_READ_INITIAL, READ_BUF_MAX) != 0 ||
        buf_init(&u->tx, PP_MQTT_READ_INITIAL, READ_BUF_MAX) != 0) {
        log_error(ms->svc->name, 0, "out of memory: no printer session");
        free(u);
        return NULL;
    }
    u->ms = ms;
    u->svc = ms->svc;
    u->hub = &ms->hub;
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
    char client_id[PP_MQTT_MAX_CLIENT_ID + 1];
};

static int send_connack(struct session *s, uint8_t code)
{
    uint8_t pkt[ACK_BUF];
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
    user_ok = m->username.len == strlen(MQTT_USER) &&
              memcmp(m->username.ptr, MQTT_USER, m->username.len) == 0;
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

    r = read_packet(&c->conn, &s->rx, PP_MQTT_CLIENT_READ_CHUNK, &fr,
                    pp_now_ms() + PP_MQTT_CONNECT_TIMEOUT_MS, service_cancel_fd(s->svc), &why);
    if (r <= 0) {
        log_info(s->svc->name, c->conn.id, "no CONNECT from %s: %s", c->peer_str,
                 r == 0 ? io_str(why) : mqtt_strerror(why));
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
        codes[i] = mqtt_peer_subscribe(s->peer, sub.filters[i].ptr, sub.filters[i].len,
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
    return send_ack(&s->c->conn, MQTT_UNSUBACK, un.packet_id);
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
            return send_ack(&s->c->conn, p.qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p.packet_id);
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
        return send_ack(&s->c->conn, MQTT_PUBCOMP, ack.packet_id);
    case MQTT_PINGREQ:
        if (mqtt_decode_empty(pkt, fr->total_len, &type) != MQTT_OK) {
            return -1;
        }
        return send_empty(&s->c->conn, MQTT_PINGRESP);
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
    p.packet_id = next_packet_id(&s->next_pid);
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
    bool overflow;

    do {
        int rc = 0;
        n = mqtt_peer_take(s->peer, msgs, qos, PP_MQTT_TAKE_BATCH, acks, &nacks, &overflow);
        for (size_t i = 0; i < nacks && rc == 0; i++) {
            rc = send_ack(&s->c->conn, acks[i].type, acks[i].packet_id);
        }
        for (size_t i = 0; i < n; i++) {
            if (rc == 0 && !overflow) {
                rc = deliver_msg(s, msgs[i], qos[i]);
                s->delivered += rc == 0;
            }
            mqtt_msg_unref(msgs[i]);
        }
        if (overflow) {
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
            int rr = read_some(cn, &s->rx, PP_MQTT_CLIENT_READ_CHUNK, 0, -1);
            if (rr <= 0 && rr != PP_IO_TIMEOUT) {
                if (rr != PP_IO_EOF) {
                    log_debug(s->svc->name, cn->id, "client \"%s\": %s", s->client_id,
                              io_str(rr));
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

    if (buf_init(&s.rx, PP_MQTT_CLIENT_READ_CHUNK, READ_BUF_MAX) != 0 ||
        buf_init(&s.tx, PP_MQTT_CLIENT_READ_CHUNK, READ_BUF_MAX) != 0) {
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
    mqtt_hub_add(&ms->hub, s.peer);
    client_loop(&s);
    if (mqtt_peer_overflowed(s.peer, &qmsgs, &qbytes)) {
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
    ms->svc = svc;
    svc->priv = ms;
    if (thread_spawn(&ms->upstream, false, upstream_main, ms) != 0) {
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
