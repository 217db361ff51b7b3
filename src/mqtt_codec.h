/* SPDX-License-Identifier: MIT */
/*
 * Pure MQTT 3.1 / 3.1.1 packet codec: framing, decoders, encoders, string and
 * topic validation, topic matching. No I/O and no allocation; decoded structs
 * point into the caller's packet buffer, so they live as long as that buffer.
 */
#ifndef PP_MQTT_CODEC_H
#define PP_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/* ---- results ----------------------------------------------------------- */
enum mqtt_result {
    MQTT_OK = 0,
    MQTT_INCOMPLETE,     /* not an error: more bytes are needed */
    MQTT_E_MALFORMED,    /* bytes do not form a valid packet */
    MQTT_E_TOO_BIG,      /* a PandaProxy limit from limits.h is exceeded */
    MQTT_E_PROTOCOL,     /* well formed, but breaks an MQTT rule */
    MQTT_E_VERSION,      /* CONNECT with a protocol level we do not speak */
    MQTT_E_CLIENT_ID,    /* CONNECT with a client id we must reject */
    MQTT_E_UTF8,         /* a string is not valid MQTT UTF-8 */
    MQTT_E_TOPIC         /* a topic name or filter breaks the wildcard rules */
};

const char *mqtt_strerror(int err);

/* ---- protocol numbers -------------------------------------------------- */
enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14
};

const char *mqtt_type_name(int type);

/* Fixed header: high nibble type, low nibble flags. */
#define MQTT_TYPE_SHIFT             4
#define MQTT_FLAGS_MASK             0x0F
#define MQTT_FLAGS_REQUIRED_0010    0x02  /* PUBREL, SUBSCRIBE, UNSUBSCRIBE */
#define MQTT_PUBLISH_DUP            0x08
#define MQTT_PUBLISH_QOS_MASK       0x06
#define MQTT_PUBLISH_QOS_SHIFT      1
#define MQTT_PUBLISH_RETAIN         0x01

/* CONNECT flags byte. */
#define MQTT_CONNECT_USERNAME       0x80
#define MQTT_CONNECT_PASSWORD       0x40
#define MQTT_CONNECT_WILL_RETAIN    0x20
#define MQTT_CONNECT_WILL_QOS_MASK  0x18
#define MQTT_CONNECT_WILL_QOS_SHIFT 3
#define MQTT_CONNECT_WILL           0x04
#define MQTT_CONNECT_CLEAN_SESSION  0x02
#define MQTT_CONNECT_RESERVED       0x01

/* CONNACK acknowledge flags and return codes. */
#define MQTT_CONNACK_SESSION_PRESENT     0x01
#define MQTT_CONNACK_ACCEPTED            0
#define MQTT_CONNACK_BAD_VERSION         1
#define MQTT_CONNACK_ID_REJECTED         2
#define MQTT_CONNACK_UNAVAILABLE         3
#define MQTT_CONNACK_BAD_CREDENTIALS     4
#define MQTT_CONNACK_NOT_AUTHORIZED      5

#define MQTT_SUBACK_FAILURE         0x80
#define MQTT_QOS_MAX                2

/* Protocol levels: 3.1 says "MQIsdp"/3, 3.1.1 says "MQTT"/4, 5.0 "MQTT"/5. */
#define MQTT_LEVEL_31               3
#define MQTT_LEVEL_311              4
#define MQTT_LEVEL_5                5

/* Wire limits set by the specification itself (limits.h holds our own). */
#define MQTT_VARINT_MAX_BYTES       4
#define MQTT_VARINT_MAX             268435455u
#define MQTT_FIXED_HEADER_MAX       (1 + MQTT_VARINT_MAX_BYTES)
#define MQTT_STRING_MAX             65535u

/* ---- framing ----------------------------------------------------------- */
struct mqtt_frame {
    uint8_t type;           /* enum mqtt_type */
    uint8_t flags;          /* low nibble of the first byte */
    size_t header_len;      /* 1 + remaining-length bytes */
    size_t remaining_len;
    size_t total_len;       /* header_len + remaining_len */
};

/*
 * Look at the bytes received so far. MQTT_OK: a whole packet of
 * out->total_len bytes starts at buf. MQTT_INCOMPLETE: read more; once the
 * header is complete out->total_len already says how much. Errors mean the
 * stream cannot be resynchronised and the connection must close. Type, flags
 * and the size limit are checked as early as the bytes allow.
 */
int mqtt_frame(const uint8_t *buf, size_t len, struct mqtt_frame *out);

/* Remaining-length varint. decode: *used = bytes consumed. encode: out needs
 * MQTT_VARINT_MAX_BYTES, returns bytes written or 0 if value is too large. */
int mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value, size_t *used);
size_t mqtt_varint_encode(uint32_t value, uint8_t *out);

/* ---- strings and topics ------------------------------------------------ */
struct mqtt_str {
    const char *ptr;        /* not NUL-terminated */
    size_t len;
};

/* Well-formed UTF-8 without U+0000, surrogates or overlong forms. */
int mqtt_utf8_check(const char *s, size_t len);
/* PUBLISH topic: 1..PP_MQTT_MAX_TOPIC bytes, valid UTF-8, no '+' or '#'. */
int mqtt_topic_name_check(const char *t, size_t len);
/* Subscription filter: '#' only as the whole last level, '+' a whole level. */
int mqtt_topic_filter_check(const char *f, size_t len);
/* Does a valid filter match a valid topic name? Safe on any input. */
bool mqtt_topic_match(const char *filter, size_t flen, const char *topic, size_t tlen);

/* ---- decoders -----------------------------------------------------------
 * Each takes exactly one whole packet (the first total_len bytes given by
 * mqtt_frame) and fills a struct that points into it. A packet of another
 * type gives MQTT_E_PROTOCOL.
 */
struct mqtt_connect {
    uint8_t level;              /* set even when the result is MQTT_E_VERSION */
    bool clean_session;
    bool will;
    uint8_t will_qos;
    bool will_retain;
    bool has_username;
    bool has_password;
    uint16_t keepalive;         /* seconds */
    struct mqtt_str client_id;  /* may be empty */
    struct mqtt_str will_topic;
    const uint8_t *will_message;
    size_t will_message_len;
    struct mqtt_str username;
    const uint8_t *password;
    size_t password_len;
};

/* MQTT_E_VERSION and MQTT_E_CLIENT_ID are reported only after the rest of
 * the packet parsed (except levels we cannot parse, such as 5); see
 * mqtt_connack_code() for the answer a server sends. */
int mqtt_decode_connect(const uint8_t *pkt, size_t len, struct mqtt_connect *out);

/* CONNACK code a server answers a failed CONNECT with, or -1 when the
 * specification says to close without one. */
int mqtt_connack_code(int decode_err);

struct mqtt_connack {
    bool session_present;
    uint8_t code;               /* MQTT_CONNACK_* (unknown codes passed through) */
};
int mqtt_decode_connack(const uint8_t *pkt, size_t len, struct mqtt_connack *out);

struct mqtt_publish {
    struct mqtt_str topic;
    uint8_t qos;
    bool retain;
    bool dup;
    uint16_t packet_id;         /* 0 for QoS 0 */
    const uint8_t *payload;
    size_t payload_len;
};
int mqtt_decode_publish(const uint8_t *pkt, size_t len, struct mqtt_publish *out);

/* PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: just a non-zero packet id. */
struct mqtt_ack {
    uint8_t type;
    uint16_t packet_id;
};
int mqtt_decode_ack(const uint8_t *pkt, size_t len, struct mqtt_ack *out);

struct mqtt_subscribe {
    uint16_t packet_id;
    size_t count;               /* 1..PP_MQTT_MAX_SUBS */
    struct mqtt_str filters[PP_MQTT_MAX_SUBS];
    uint8_t qos[PP_MQTT_MAX_SUBS];
};
int mqtt_decode_subscribe(const uint8_t *pkt, size_t len, struct mqtt_subscribe *out);

struct mqtt_suback {
    uint16_t packet_id;
    size_t count;
    const uint8_t *codes;       /* 0..2 or MQTT_SUBACK_FAILURE */
};
int mqtt_decode_suback(const uint8_t *pkt, size_t len, struct mqtt_suback *out);

struct mqtt_unsubscribe {
    uint16_t packet_id;
    size_t count;               /* 1..PP_MQTT_MAX_SUBS */
    struct mqtt_str filters[PP_MQTT_MAX_SUBS];
};
int mqtt_decode_unsubscribe(const uint8_t *pkt, size_t len, struct mqtt_unsubscribe *out);

/* PINGREQ, PINGRESP, DISCONNECT; *type tells which. */
int mqtt_decode_empty(const uint8_t *pkt, size_t len, uint8_t *type);

/* ---- encoders -----------------------------------------------------------
 * All write into buf and return the number of bytes written. They return 0,
 * writing nothing, when cap is too small or an argument is invalid (bad
 * string, bad topic, packet id 0 where one is needed, packet larger than
 * PP_MQTT_MAX_PACKET).
 */
struct mqtt_connect_params {
    struct mqtt_str client_id;
    struct mqtt_str username;   /* ptr NULL: no username */
    const uint8_t *password;    /* NULL: no password (needs a username) */
    size_t password_len;
    uint16_t keepalive;
};
/* Always level 4, clean session, no will. */
size_t mqtt_encode_connect(uint8_t *buf, size_t cap, const struct mqtt_connect_params *p);
size_t mqtt_encode_connack(uint8_t *buf, size_t cap, bool session_present, uint8_t code);

/* Exact encoded size of a PUBLISH, 0 if it cannot be encoded. */
size_t mqtt_publish_size(const struct mqtt_publish *p);
/* dup is only honoured for QoS > 0. */
size_t mqtt_encode_publish(uint8_t *buf, size_t cap, const struct mqtt_publish *p);

/* type: MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP or MQTT_UNSUBACK. */
size_t mqtt_encode_ack(uint8_t *buf, size_t cap, uint8_t type, uint16_t packet_id);

size_t mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id,
                             const struct mqtt_str *filters, const uint8_t *qos,
                             size_t count);
size_t mqtt_encode_suback(uint8_t *buf, size_t cap, uint16_t packet_id,
                          const uint8_t *codes, size_t count);
size_t mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, uint16_t packet_id,
                               const struct mqtt_str *filters, size_t count);

/* type: MQTT_PINGREQ, MQTT_PINGRESP or MQTT_DISCONNECT. */
size_t mqtt_encode_empty(uint8_t *buf, size_t cap, uint8_t type);

#endif
