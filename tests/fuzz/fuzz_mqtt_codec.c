/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the MQTT codec: frames the input as a stream, runs
 * every decoder on every packet, re-encodes what decoded and checks that the
 * same body comes back, and checks topic validation and matching invariants.
 */
#include <stdlib.h>
#include <string.h>

#include "src/mqtt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok) {
        abort();
    }
}

/* Encoded packet must frame as one packet of the same type whose body
 * equals the original's. */
static void same_body(const uint8_t *orig, const struct mqtt_frame *fr,
                      const uint8_t *enc, size_t enc_len)
{
    struct mqtt_frame ef;

    require(enc_len > 0);
    require(mqtt_frame(enc, enc_len, &ef) == MQTT_OK);
    require(ef.total_len == enc_len);
    require(ef.type == fr->type);
    require(ef.remaining_len == fr->remaining_len);
    require(memcmp(enc + ef.header_len, orig + fr->header_len, fr->remaining_len) == 0);
}

/* Encode into a buffer of exactly the needed size so overruns are caught. */
static uint8_t *out_buf(size_t total)
{
    uint8_t *b = malloc(total == 0 ? 1 : total);

    require(b != NULL);
    return b;
}

static void rt_connect(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    struct mqtt_connect c;
    int rc = mqtt_decode_connect(pkt, fr->total_len, &c);

    (void)mqtt_connack_code(rc);
    if (rc != MQTT_OK) {
        return;
    }
    require(c.level == MQTT_LEVEL_31 || c.level == MQTT_LEVEL_311);
    require(c.client_id.len <= PP_MQTT_MAX_CLIENT_ID);
    if (c.level != MQTT_LEVEL_311 || c.will || !c.clean_session) {
        return;
    }
    struct mqtt_connect_params p = {
        .client_id = c.client_id,
        .username = c.username,
        .password = c.has_password ? c.password : NULL,
        .password_len = c.password_len,
        .keepalive = c.keepalive,
    };
    uint8_t *b = out_buf(fr->total_len);
    size_t n = mqtt_encode_connect(b, fr->total_len, &p);
    same_body(pkt, fr, b, n);
    free(b);
}

static void rt_connack(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    struct mqtt_connack c;
    uint8_t b[MQTT_FIXED_HEADER_MAX + 2];

    if (mqtt_decode_connack(pkt, fr->total_len, &c) == MQTT_OK) {
        same_body(pkt, fr, b, mqtt_encode_connack(b, sizeof(b), c.session_present, c.code));
    }
}

static void rt_publish(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    struct mqtt_publish p;

    if (mqtt_decode_publish(pkt, fr->total_len, &p) != MQTT_OK) {
        return;
    }
    require(p.payload >= pkt && p.payload + p.payload_len == pkt + fr->total_len);
    require(p.qos == 0 || p.packet_id != 0);
    size_t need = mqtt_publish_size(&p);
    require(need > 0 && need <= fr->total_len);
    uint8_t *b = out_buf(need);
    require(mqtt_encode_publish(b, need - 1, &p) == 0);
    size_t n = mqtt_encode_publish(b, need, &p);
    require(n == need);
    same_body(pkt, fr, b, n);
    /* The encoder drops DUP at QoS 0; everything else in the flags stays. */
    uint8_t want = fr->flags;
    if (p.qos == 0) {
        want &= (uint8_t)~MQTT_PUBLISH_DUP;
    }
    require((b[0] & MQTT_FLAGS_MASK) == want);
    free(b);
}

static void rt_ack(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    struct mqtt_ack a;
    uint8_t b[MQTT_FIXED_HEADER_MAX + 2];

    if (mqtt_decode_ack(pkt, fr->total_len, &a) == MQTT_OK) {
        require(a.packet_id != 0);
        same_body(pkt, fr, b, mqtt_encode_ack(b, sizeof(b), a.type, a.packet_id));
    }
}

static void rt_subscribe(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    struct mqtt_subscribe s;

    if (mqtt_decode_subscribe(pkt, fr->total_len, &s) != MQTT_OK) {
        return;
    }
    require(s.count >= 1 && s.count <= PP_MQTT_MAX_SUBS);
    uint8_t *b = out_buf(fr->total_len);
    size_t n = mqtt_encode_subscribe(b, fr->total_len, s.packet_id, s.filters, s.qos, s.count);
    same_body(pkt, fr, b, n);
    free(b);
}

static void rt_suback(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    struct mqtt_suback s;

    if (mqtt_decode_suback(pkt, fr->total_len, &s) != MQTT_OK) {
        return;
    }
    uint8_t *b = out_buf(fr->total_len);
    same_body(pkt, fr, b, mqtt_encode_suback(b, fr->total_len, s.packet_id, s.codes, s.count));
    free(b);
}

static void rt_unsubscribe(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    struct mqtt_unsubscribe u;

    if (mqtt_decode_unsubscribe(pkt, fr->total_len, &u) != MQTT_OK) {
        return;
    }
    require(u.count >= 1 && u.count <= PP_MQTT_MAX_SUBS);
    uint8_t *b = out_buf(fr->total_len);
    same_body(pkt, fr, b, mqtt_encode_unsubscribe(b, fr->total_len, u.packet_id,
                                                  u.filters, u.count));
    free(b);
}

static void rt_empty(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    uint8_t type;
    uint8_t b[MQTT_FIXED_HEADER_MAX];

    if (mqtt_decode_empty(pkt, fr->total_len, &type) == MQTT_OK) {
        same_body(pkt, fr, b, mqtt_encode_empty(b, sizeof(b), type));
    }
}

/* Every decoder on the packet, whatever its type: a mismatch must be a
 * clean error, never a crash. */
static void all_decoders(const uint8_t *pkt, const struct mqtt_frame *fr)
{
    rt_connect(pkt, fr);
    rt_connack(pkt, fr);
    rt_publish(pkt, fr);
    rt_ack(pkt, fr);
    rt_subscribe(pkt, fr);
    rt_suback(pkt, fr);
    rt_unsubscribe(pkt, fr);
    rt_empty(pkt, fr);
    (void)mqtt_type_name(fr->type);
}

static void fuzz_stream(const uint8_t *data, size_t size)
{
    size_t off = 0;

    while (off < size) {
        struct mqtt_frame fr;
        int rc = mqtt_frame(data + off, size - off, &fr);
        (void)mqtt_strerror(rc);
        if (rc != MQTT_OK) {
            return;
        }
        require(fr.total_len >= 2 && fr.total_len <= size - off);
        /* A private copy of exact size, so reading past the packet trips ASan. */
        uint8_t *pkt = out_buf(fr.total_len);
        memcpy(pkt, data + off, fr.total_len);
        all_decoders(pkt, &fr);
        free(pkt);
        off += fr.total_len;
    }
}

static void fuzz_varint(const uint8_t *data, size_t size)
{
    uint32_t v;
    uint32_t v2;
    size_t used;
    size_t used2;
    uint8_t b[MQTT_VARINT_MAX_BYTES];

    if (mqtt_varint_decode(data, size, &v, &used) != MQTT_OK) {
        return;
    }
    size_t n = mqtt_varint_encode(v, b);
    require(n > 0 && n <= used);
    require(mqtt_varint_decode(b, n, &v2, &used2) == MQTT_OK);
    require(v2 == v && used2 == n);
}

/* Split the input into a filter and a topic at a point the first byte picks. */
static void fuzz_topics(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return;
    }
    size_t rest = size - 1;
    size_t flen = rest == 0 ? 0 : data[0] % (rest + 1);
    const char *f = (const char *)data + 1;
    const char *t = f + flen;
    size_t tlen = rest - flen;
    bool f_ok = mqtt_topic_filter_check(f, flen) == MQTT_OK;
    bool f_name = mqtt_topic_name_check(f, flen) == MQTT_OK;
    bool t_ok = mqtt_topic_name_check(t, tlen) == MQTT_OK;
    bool m = mqtt_topic_match(f, flen, t, tlen);

    (void)mqtt_utf8_check(f, rest);
    (void)mqtt_topic_match(t, tlen, f, flen);
    require(!f_name || f_ok);   /* every topic name is a valid filter */
    if (f_name && t_ok) {
        require(m == (flen == tlen && memcmp(f, t, flen) == 0));
    }
    if (t_ok) {
        require(mqtt_topic_match(t, tlen, t, tlen));
        bool dollar = t[0] == '$';
        require(mqtt_topic_match("#", 1, t, tlen) == !dollar);
    }
}

/* Build a PUBLISH from the input and check the size helper agrees. */
static void fuzz_encode_publish(const uint8_t *data, size_t size)
{
    enum { HEAD = 4 };

    if (size < HEAD) {
        return;
    }
    size_t tlen = data[0] % (size - HEAD + 1);
    struct mqtt_publish p = {
        .qos = (uint8_t)(data[1] & 3),
        .retain = (data[1] & 4) != 0,
        .dup = (data[1] & 8) != 0,
        .packet_id = (uint16_t)(data[2] << 8 | data[3]),
        .topic = { (const char *)data + HEAD, tlen },
        .payload = data + HEAD + tlen,
        .payload_len = size - HEAD - tlen,
    };
    size_t need = mqtt_publish_size(&p);
    if (need == 0) {
        return;
    }
    uint8_t *b = out_buf(need);
    struct mqtt_publish q;
    require(mqtt_encode_publish(b, need, &p) == need);
    require(mqtt_decode_publish(b, need, &q) == MQTT_OK);
    require(q.qos == p.qos && q.retain == p.retain && q.packet_id == (p.qos ? p.packet_id : 0));
    require(q.topic.len == tlen && memcmp(q.topic.ptr, p.topic.ptr, tlen) == 0);
    require(q.payload_len == p.payload_len);
    require(q.payload_len == 0 || memcmp(q.payload, p.payload, q.payload_len) == 0);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_stream(data, size);
    fuzz_varint(data, size);
    fuzz_topics(data, size);
    fuzz_encode_publish(data, size);
    return 0;
}
