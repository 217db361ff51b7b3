/* SPDX-License-Identifier: MIT */
/*
 * MQTT 3.1 / 3.1.1 codec: every length read from the wire is checked against
 * the bytes actually present before use; encoders size the packet first and
 * then write it through a bounds-checked writer.
 */
#include "mqtt_codec.h"

#include <string.h>

#define BYTE_BITS           8
#define BYTE_MASK           0xFFu
#define VARINT_CONTINUE     0x80u
#define VARINT_DIGIT_MASK   0x7Fu
#define VARINT_DIGIT_BITS   7
#define U16_LEN             2
#define ACK_REMAINING       2   /* packet id only */
#define CONNACK_REMAINING   2   /* ack flags + return code */
#define CONNACK_RESERVED    0xFEu
#define SUB_QOS_RESERVED    0xFCu
#define TYPE_COUNT          16
#define ANY_LENGTH          SIZE_MAX

static const char PROTO_NAME_311[] = "MQTT";
static const char PROTO_NAME_31[] = "MQIsdp";

/* ---- tables ------------------------------------------------------------ */

/* Per type: the flags nibble required and the exact remaining length, where
 * the specification fixes them. PUBLISH flags are checked separately. */
struct type_rule {
    bool valid;
    uint8_t flags;
    size_t remaining;
};

static const struct type_rule TYPE_RULES[TYPE_COUNT] = {
    [MQTT_CONNECT] = { true, 0, ANY_LENGTH },
    [MQTT_CONNACK] = { true, 0, CONNACK_REMAINING },
    [MQTT_PUBLISH] = { true, 0, ANY_LENGTH },
    [MQTT_PUBACK] = { true, 0, ACK_REMAINING },
    [MQTT_PUBREC] = { true, 0, ACK_REMAINING },
    [MQTT_PUBREL] = { true, MQTT_FLAGS_REQUIRED_0010, ACK_REMAINING },
    [MQTT_PUBCOMP] = { true, 0, ACK_REMAINING },
    [MQTT_SUBSCRIBE] = { true, MQTT_FLAGS_REQUIRED_0010, ANY_LENGTH },
    [MQTT_SUBACK] = { true, 0, ANY_LENGTH },
    [MQTT_UNSUBSCRIBE] = { true, MQTT_FLAGS_REQUIRED_0010, ANY_LENGTH },
    [MQTT_UNSUBACK] = { true, 0, ACK_REMAINING },
    [MQTT_PINGREQ] = { true, 0, 0 },
    [MQTT_PINGRESP] = { true, 0, 0 },
    [MQTT_DISCONNECT] = { true, 0, 0 },
};

static const char *const TYPE_NAMES[TYPE_COUNT] = {
    [MQTT_CONNECT] = "CONNECT", [MQTT_CONNACK] = "CONNACK",
    [MQTT_PUBLISH] = "PUBLISH", [MQTT_PUBACK] = "PUBACK",
    [MQTT_PUBREC] = "PUBREC", [MQTT_PUBREL] = "PUBREL",
    [MQTT_PUBCOMP] = "PUBCOMP", [MQTT_SUBSCRIBE] = "SUBSCRIBE",
    [MQTT_SUBACK] = "SUBACK", [MQTT_UNSUBSCRIBE] = "UNSUBSCRIBE",
    [MQTT_UNSUBACK] = "UNSUBACK", [MQTT_PINGREQ] = "PINGREQ",
    [MQTT_PINGRESP] = "PINGRESP", [MQTT_DISCONNECT] = "DISCONNECT",
};

const char *mqtt_strerror(int err)
{
    switch (err) {
    case MQTT_OK: return "ok";
    case MQTT_INCOMPLETE: return "incomplete packet";
    case MQTT_E_MALFORMED: return "malformed packet";
    case MQTT_E_TOO_BIG: return "packet or field exceeds limit";
    case MQTT_E_PROTOCOL: return "MQTT protocol violation";
    case MQTT_E_VERSION: return "unsupported MQTT protocol version";
    case MQTT_E_CLIENT_ID: return "client identifier rejected";
    case MQTT_E_UTF8: return "invalid UTF-8 string";
    case MQTT_E_TOPIC: return "invalid topic name or filter";
    default: return "unknown MQTT codec error";
    }
}

const char *mqtt_type_name(int type)
{
    if (type < 0 || type >= TYPE_COUNT || TYPE_NAMES[type] == NULL) {
        return "RESERVED";
    }
    return TYPE_NAMES[type];
}

/* ---- framing ----------------------------------------------------------- */

int mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value, size_t *used)
{
    uint32_t v = 0;

    for (size_t i = 0; i < MQTT_VARINT_MAX_BYTES; i++) {
        if (i >= len) {
            return MQTT_INCOMPLETE;
        }
        v |= (uint32_t)(buf[i] & VARINT_DIGIT_MASK) << (VARINT_DIGIT_BITS * i);
        if ((buf[i] & VARINT_CONTINUE) == 0) {
            *value = v;
            *used = i + 1;
            return MQTT_OK;
        }
    }
    /* The fourth byte still announced a fifth. */
    return MQTT_E_MALFORMED;
}

size_t mqtt_varint_encode(uint32_t value, uint8_t *out)
{
    size_t n = 0;

    if (value > MQTT_VARINT_MAX) {
        return 0;
    }
    do {
        uint8_t digit = (uint8_t)(value & VARINT_DIGIT_MASK);
        value >>= VARINT_DIGIT_BITS;
        if (value != 0) {
            digit |= VARINT_CONTINUE;
        }
        out[n++] = digit;
    } while (value != 0);
    return n;
}

static size_t varint_len(size_t value)
{
    size_t n = 1;

    while (value > VARINT_DIGIT_MASK) {
        value >>= VARINT_DIGIT_BITS;
        n++;
    }
    return n;
}

static int check_first_byte(uint8_t b)
{
    uint8_t type = (uint8_t)(b >> MQTT_TYPE_SHIFT);
    uint8_t flags = (uint8_t)(b & MQTT_FLAGS_MASK);

    if (!TYPE_RULES[type].valid) {
        return MQTT_E_MALFORMED;
    }
    if (type == MQTT_PUBLISH) {
        uint8_t qos = (uint8_t)((flags & MQTT_PUBLISH_QOS_MASK) >> MQTT_PUBLISH_QOS_SHIFT);
        return qos > MQTT_QOS_MAX ? MQTT_E_MALFORMED : MQTT_OK;
    }
    return flags == TYPE_RULES[type].flags ? MQTT_OK : MQTT_E_MALFORMED;
}

int mqtt_frame(const uint8_t *buf, size_t len, struct mqtt_frame *out)
{
    uint32_t rem = 0;
    size_t used = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len == 0) {
        return MQTT_INCOMPLETE;
    }
    rc = check_first_byte(buf[0]);
    if (rc != MQTT_OK) {
        return rc;
    }
    out->type = (uint8_t)(buf[0] >> MQTT_TYPE_SHIFT);
    out->flags = (uint8_t)(buf[0] & MQTT_FLAGS_MASK);
    rc = mqtt_varint_decode(buf + 1, len - 1, &rem, &used);
    if (rc != MQTT_OK) {
        return rc;
    }
    out->header_len = 1 + used;
    out->remaining_len = rem;
    out->total_len = out->header_len + rem;
    if (TYPE_RULES[out->type].remaining != ANY_LENGTH &&
        TYPE_RULES[out->type].remaining != rem) {
        return MQTT_E_MALFORMED;
    }
    if (out->total_len > PP_MQTT_MAX_PACKET) {
        return MQTT_E_TOO_BIG;
    }
    return len >= out->total_len ? MQTT_OK : MQTT_INCOMPLETE;
}

/* ---- strings and topics ------------------------------------------------ */

#define UTF8_CONT_MASK      0xC0u
#define UTF8_CONT_TAG       0x80u
#define UTF8_CONT_MAX       0xBFu
#define UTF8_MIN_LEAD2      0xC2u   /* C0/C1 only start overlong forms */
#define UTF8_MIN_LEAD3      0xE0u
#define UTF8_MIN_LEAD4      0xF0u
#define UTF8_MAX_LEAD4      0xF4u   /* above U+10FFFF beyond this */
#define UTF8_ASCII_END      0x80u
#define UTF8_E0_MIN_CONT    0xA0u   /* lower would be overlong */
#define UTF8_SURROGATE_LEAD 0xEDu
#define UTF8_ED_MAX_CONT    0x9Fu   /* higher would be a surrogate */
#define UTF8_F0_MIN_CONT    0x90u   /* lower would be overlong */
#define UTF8_F4_MAX_CONT    0x8Fu   /* higher would exceed U+10FFFF */

static bool is_cont(uint8_t b)
{
    return (b & UTF8_CONT_MASK) == UTF8_CONT_TAG;
}

/* Length of the sequence starting at s[0], or 0 if it is not allowed. */
static size_t utf8_seq(const uint8_t *s, size_t avail)
{
    uint8_t lead = s[0];
    size_t need;
    uint8_t lo = UTF8_CONT_TAG;
    uint8_t hi = UTF8_CONT_MAX;

    if (lead < UTF8_ASCII_END) {
        return lead == 0 ? 0 : 1;
    }
    if (lead < UTF8_MIN_LEAD2 || lead > UTF8_MAX_LEAD4) {
        return 0;
    }
    need = lead < UTF8_MIN_LEAD3 ? 2 : (lead < UTF8_MIN_LEAD4 ? 3 : 4);
    if (need > avail) {
        return 0;
    }
    if (lead == UTF8_MIN_LEAD3) {
        lo = UTF8_E0_MIN_CONT;
    } else if (lead == UTF8_SURROGATE_LEAD) {
        hi = UTF8_ED_MAX_CONT;
    } else if (lead == UTF8_MIN_LEAD4) {
        lo = UTF8_F0_MIN_CONT;
    } else if (lead == UTF8_MAX_LEAD4) {
        hi = UTF8_F4_MAX_CONT;
    }
    if (s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if (!is_cont(s[i])) {
            return 0;
        }
    }
    return need;
}

int mqtt_utf8_check(const char *s, size_t len)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0) {
            return MQTT_E_UTF8;
        }
        i += n;
    }
    return MQTT_OK;
}

static int topic_common_check(const char *t, size_t len)
{
    if (len == 0) {
        return MQTT_E_TOPIC;
    }
    if (len > PP_MQTT_MAX_TOPIC) {
        return MQTT_E_TOO_BIG;
    }
    return mqtt_utf8_check(t, len);
}

int mqtt_topic_name_check(const char *t, size_t len)
{
    int rc = topic_common_check(t, len);

    if (rc != MQTT_OK) {
        return rc;
    }
    if (memchr(t, '+', len) != NULL || memchr(t, '#', len) != NULL) {
        return MQTT_E_TOPIC;
    }
    return MQTT_OK;
}

int mqtt_topic_filter_check(const char *f, size_t len)
{
    int rc = topic_common_check(f, len);

    if (rc != MQTT_OK) {
        return rc;
    }
    for (size_t i = 0; i < len; i++) {
        bool starts_level = i == 0 || f[i - 1] == '/';
        bool ends_level = i + 1 == len || f[i + 1] == '/';
        if (f[i] == '+' && !(starts_level && ends_level)) {
            return MQTT_E_TOPIC;
        }
        if (f[i] == '#' && !(starts_level && i + 1 == len)) {
            return MQTT_E_TOPIC;
        }
    }
    return MQTT_OK;
}

/* Index of the '/' ending the level starting at pos, or len. */
static size_t level_end(const char *s, size_t len, size_t pos)
{
    while (pos < len && s[pos] != '/') {
        pos++;
    }
    return pos;
}

static bool level_is(const char *s, size_t start, size_t end, char c)
{
    return end - start == 1 && s[start] == c;
}

static bool level_equal(const char *a, size_t as, size_t ae,
                        const char *b, size_t bs, size_t be)
{
    if (ae - as != be - bs) {
        return false;
    }
    return ae == as || memcmp(a + as, b + bs, ae - as) == 0;
}

bool mqtt_topic_match(const char *filter, size_t flen, const char *topic, size_t tlen)
{
    size_t f = 0;
    size_t t = 0;
    bool f_more = true;
    bool t_more = true;

    /* $-topics are reserved for the broker: a leading wildcard skips them. */
    if (tlen > 0 && topic[0] == '$' && flen > 0 &&
        (filter[0] == '+' || filter[0] == '#')) {
        return false;
    }
    while (f_more) {
        size_t fe = level_end(filter, flen, f);
        /* '#' also matches the parent level: "a/#" matches "a". */
        if (level_is(filter, f, fe, '#')) {
            return true;
        }
        if (!t_more) {
            return false;
        }
        size_t te = level_end(topic, tlen, t);
        if (!level_is(filter, f, fe, '+') &&
            !level_equal(filter, f, fe, topic, t, te)) {
            return false;
        }
        f_more = fe < flen;
        t_more = te < tlen;
        f = fe + 1;
        t = te + 1;
    }
    return !t_more;
}

/* ---- reader ------------------------------------------------------------ */

struct reader {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static size_t rd_left(const struct reader *r)
{
    return r->len - r->off;
}

static int rd_u8(struct reader *r, uint8_t *v)
{
    if (rd_left(r) < 1) {
        return MQTT_E_MALFORMED;
    }
    *v = r->p[r->off++];
    return MQTT_OK;
}

static int rd_u16(struct reader *r, uint16_t *v)
{
    if (rd_left(r) < U16_LEN) {
        return MQTT_E_MALFORMED;
    }
    *v = (uint16_t)((r->p[r->off] << BYTE_BITS) | r->p[r->off + 1]);
    r->off += U16_LEN;
    return MQTT_OK;
}

/* Length-prefixed binary data. */
static int rd_bin(struct reader *r, const uint8_t **ptr, size_t *len)
{
    uint16_t n;

    if (rd_u16(r, &n) != MQTT_OK || rd_left(r) < n) {
        return MQTT_E_MALFORMED;
    }
    *ptr = r->p + r->off;
    *len = n;
    r->off += n;
    return MQTT_OK;
}

/* Length-prefixed UTF-8 string. */
static int rd_str(struct reader *r, struct mqtt_str *s)
{
    const uint8_t *p;
    size_t n;

    if (rd_bin(r, &p, &n) != MQTT_OK) {
        return MQTT_E_MALFORMED;
    }
    s->ptr = (const char *)p;
    s->len = n;
    return mqtt_utf8_check(s->ptr, n);
}

static int rd_packet_id(struct reader *r, uint16_t *id)
{
    if (rd_u16(r, id) != MQTT_OK) {
        return MQTT_E_MALFORMED;
    }
    return *id == 0 ? MQTT_E_PROTOCOL : MQTT_OK;
}

/* Frame pkt, insist it is exactly one packet, and give a reader over its
 * variable header and payload. */
static int open_packet(const uint8_t *pkt, size_t len, struct mqtt_frame *fr,
                       struct reader *r)
{
    int rc = mqtt_frame(pkt, len, fr);

    if (rc != MQTT_OK) {
        return rc;
    }
    if (fr->total_len != len) {
        return MQTT_E_MALFORMED;
    }
    r->p = pkt + fr->header_len;
    r->len = fr->remaining_len;
    r->off = 0;
    return MQTT_OK;
}

static int open_typed(const uint8_t *pkt, size_t len, uint8_t type,
                      struct mqtt_frame *fr, struct reader *r)
{
    int rc = open_packet(pkt, len, fr, r);

    if (rc != MQTT_OK) {
        return rc;
    }
    return fr->type == type ? MQTT_OK : MQTT_E_PROTOCOL;
}

static int rd_end(const struct reader *r)
{
    return rd_left(r) == 0 ? MQTT_OK : MQTT_E_MALFORMED;
}

/* ---- CONNECT ----------------------------------------------------------- */

static bool str_is(const struct mqtt_str *s, const char *lit)
{
    size_t n = strlen(lit);

    return s->len == n && memcmp(s->ptr, lit, n) == 0;
}

static int connect_protocol(struct reader *r, struct mqtt_connect *out)
{
    struct mqtt_str name;

    if (rd_str(r, &name) != MQTT_OK || rd_u8(r, &out->level) != MQTT_OK) {
        return MQTT_E_MALFORMED;
    }
    if (str_is(&name, PROTO_NAME_311)) {
        return out->level == MQTT_LEVEL_311 ? MQTT_OK : MQTT_E_VERSION;
    }
    if (str_is(&name, PROTO_NAME_31)) {
        return out->level == MQTT_LEVEL_31 ? MQTT_OK : MQTT_E_VERSION;
    }
    return MQTT_E_PROTOCOL;
}

static int connect_flags(uint8_t flags, struct mqtt_connect *out)
{
    if (flags & MQTT_CONNECT_RESERVED) {
        return MQTT_E_MALFORMED;
    }
    out->clean_session = (flags & MQTT_CONNECT_CLEAN_SESSION) != 0;
    out->will = (flags & MQTT_CONNECT_WILL) != 0;
    out->will_qos = (uint8_t)((flags & MQTT_CONNECT_WILL_QOS_MASK) >> MQTT_CONNECT_WILL_QOS_SHIFT);
    out->will_retain = (flags & MQTT_CONNECT_WILL_RETAIN) != 0;
    out->has_username = (flags & MQTT_CONNECT_USERNAME) != 0;
    out->has_password = (flags & MQTT_CONNECT_PASSWORD) != 0;
    if (out->will_qos > MQTT_QOS_MAX) {
        return MQTT_E_MALFORMED;
    }
    if (!out->will && (out->will_qos != 0 || out->will_retain)) {
        return MQTT_E_MALFORMED;
    }
    if (out->has_password && !out->has_username) {
        return MQTT_E_PROTOCOL;
    }
    return MQTT_OK;
}

/* Judge the client id last: CONNACK 2 is only right for an otherwise valid
 * CONNECT. An empty id asks the server to invent one, which 3.1.1 allows only
 * with a clean session. */
static int client_id_verdict(const struct mqtt_connect *c)
{
    if (c->client_id.len > PP_MQTT_MAX_CLIENT_ID) {
        return MQTT_E_CLIENT_ID;
    }
    if (c->client_id.len == 0 && !c->clean_session) {
        return MQTT_E_CLIENT_ID;
    }
    return MQTT_OK;
}

static int connect_payload(struct reader *r, struct mqtt_connect *out)
{
    int rc = rd_str(r, &out->client_id);

    if (rc != MQTT_OK) {
        return rc;
    }
    if (out->will) {
        rc = rd_str(r, &out->will_topic);
        if (rc != MQTT_OK) {
            return rc;
        }
        rc = mqtt_topic_name_check(out->will_topic.ptr, out->will_topic.len);
        if (rc != MQTT_OK) {
            return rc;
        }
        rc = rd_bin(r, &out->will_message, &out->will_message_len);
        if (rc != MQTT_OK) {
            return rc;
        }
    }
    if (out->has_username) {
        rc = rd_str(r, &out->username);
        if (rc != MQTT_OK) {
            return rc;
        }
    }
    if (out->has_password) {
        rc = rd_bin(r, &out->password, &out->password_len);
        if (rc != MQTT_OK) {
            return rc;
        }
    }
    return rd_end(r);
}

int mqtt_decode_connect(const uint8_t *pkt, size_t len, struct mqtt_connect *out)
{
    struct mqtt_frame fr;
    struct reader r;
    uint8_t flags;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = open_typed(pkt, len, MQTT_CONNECT, &fr, &r);
    if (rc != MQTT_OK) {
        return rc;
    }
    /* Stop at the level: later versions may lay out the rest differently. */
    rc = connect_protocol(&r, out);
    if (rc != MQTT_OK) {
        return rc;
    }
    if (rd_u8(&r, &flags) != MQTT_OK || rd_u16(&r, &out->keepalive) != MQTT_OK) {
        return MQTT_E_MALFORMED;
    }
    rc = connect_flags(flags, out);
    if (rc != MQTT_OK) {
        return rc;
    }
    rc = connect_payload(&r, out);
    if (rc != MQTT_OK) {
        return rc;
    }
    return client_id_verdict(out);
}

int mqtt_connack_code(int decode_err)
{
    switch (decode_err) {
    case MQTT_OK: return MQTT_CONNACK_ACCEPTED;
    case MQTT_E_VERSION: return MQTT_CONNACK_BAD_VERSION;
    case MQTT_E_CLIENT_ID: return MQTT_CONNACK_ID_REJECTED;
    default: return -1;
    }
}

/* ---- other decoders ---------------------------------------------------- */

int mqtt_decode_connack(const uint8_t *pkt, size_t len, struct mqtt_connack *out)
{
    struct mqtt_frame fr;
    struct reader r;
    uint8_t ack;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = open_typed(pkt, len, MQTT_CONNACK, &fr, &r);
    if (rc != MQTT_OK) {
        return rc;
    }
    if (rd_u8(&r, &ack) != MQTT_OK || rd_u8(&r, &out->code) != MQTT_OK) {
        return MQTT_E_MALFORMED;
    }
    if (ack & CONNACK_RESERVED) {
        return MQTT_E_MALFORMED;
    }
    out->session_present = (ack & MQTT_CONNACK_SESSION_PRESENT) != 0;
    return rd_end(&r);
}

int mqtt_decode_publish(const uint8_t *pkt, size_t len, struct mqtt_publish *out)
{
    struct mqtt_frame fr;
    struct reader r;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = open_typed(pkt, len, MQTT_PUBLISH, &fr, &r);
    if (rc != MQTT_OK) {
        return rc;
    }
    out->qos = (uint8_t)((fr.flags & MQTT_PUBLISH_QOS_MASK) >> MQTT_PUBLISH_QOS_SHIFT);
    out->retain = (fr.flags & MQTT_PUBLISH_RETAIN) != 0;
    out->dup = (fr.flags & MQTT_PUBLISH_DUP) != 0;
    rc = rd_str(&r, &out->topic);
    if (rc != MQTT_OK) {
        return rc;
    }
    rc = mqtt_topic_name_check(out->topic.ptr, out->topic.len);
    if (rc != MQTT_OK) {
        return rc;
    }
    if (out->qos > 0) {
        rc = rd_packet_id(&r, &out->packet_id);
        if (rc != MQTT_OK) {
            return rc;
        }
    }
    out->payload = r.p + r.off;
    out->payload_len = rd_left(&r);
    return MQTT_OK;
}

static bool is_ack_type(uint8_t type)
{
    return type == MQTT_PUBACK || type == MQTT_PUBREC || type == MQTT_PUBREL ||
           type == MQTT_PUBCOMP || type == MQTT_UNSUBACK;
}

int mqtt_decode_ack(const uint8_t *pkt, size_t len, struct mqtt_ack *out)
{
    struct mqtt_frame fr;
    struct reader r;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = open_packet(pkt, len, &fr, &r);
    if (rc != MQTT_OK) {
        return rc;
    }
    if (!is_ack_type(fr.type)) {
        return MQTT_E_PROTOCOL;
    }
    out->type = fr.type;
    rc = rd_packet_id(&r, &out->packet_id);
    if (rc != MQTT_OK) {
        return rc;
    }
    return rd_end(&r);
}

/* One filter of a SUBSCRIBE or UNSUBSCRIBE. */
static int rd_filter(struct reader *r, struct mqtt_str *f)
{
    int rc = rd_str(r, f);

    if (rc != MQTT_OK) {
        return rc;
    }
    return mqtt_topic_filter_check(f->ptr, f->len);
}

static int rd_requested_qos(struct reader *r, uint8_t *qos)
{
    if (rd_u8(r, qos) != MQTT_OK) {
        return MQTT_E_MALFORMED;
    }
    if ((*qos & SUB_QOS_RESERVED) != 0 || *qos > MQTT_QOS_MAX) {
        return MQTT_E_MALFORMED;
    }
    return MQTT_OK;
}

/*
 * The packet id and the filter list shared by SUBSCRIBE (qos != NULL: each filter is
 * followed by its requested QoS) and UNSUBSCRIBE (qos == NULL). At least one filter.
 */
static int decode_filter_list(const uint8_t *pkt, size_t len, uint8_t type, uint16_t *packet_id,
                              struct mqtt_str *filters, uint8_t *qos, size_t *count)
{
    struct mqtt_frame fr;
    struct reader r;
    int rc = open_typed(pkt, len, type, &fr, &r);

    if (rc == MQTT_OK) {
        rc = rd_packet_id(&r, packet_id);
    }
    while (rc == MQTT_OK && rd_left(&r) > 0) {
        if (*count == PP_MQTT_MAX_SUBS) {
            return MQTT_E_TOO_BIG;
        }
        rc = rd_filter(&r, &filters[*count]);
        if (rc == MQTT_OK && qos != NULL) {
            rc = rd_requested_qos(&r, &qos[*count]);
        }
        (*count)++;
    }
    if (rc == MQTT_OK && *count == 0) {
        return MQTT_E_PROTOCOL;
    }
    return rc;
}

int mqtt_decode_subscribe(const uint8_t *pkt, size_t len, struct mqtt_subscribe *out)
{
    memset(out, 0, sizeof(*out));
    return decode_filter_list(pkt, len, MQTT_SUBSCRIBE, &out->packet_id, out->filters, out->qos,
                              &out->count);
}

static bool suback_code_ok(uint8_t c)
{
    return c <= MQTT_QOS_MAX || c == MQTT_SUBACK_FAILURE;
}

int mqtt_decode_suback(const uint8_t *pkt, size_t len, struct mqtt_suback *out)
{
    struct mqtt_frame fr;
    struct reader r;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = open_typed(pkt, len, MQTT_SUBACK, &fr, &r);
    if (rc == MQTT_OK) {
        rc = rd_packet_id(&r, &out->packet_id);
    }
    if (rc != MQTT_OK) {
        return rc;
    }
    out->codes = r.p + r.off;
    out->count = rd_left(&r);
    if (out->count == 0) {
        return MQTT_E_PROTOCOL;
    }
    for (size_t i = 0; i < out->count; i++) {
        if (!suback_code_ok(out->codes[i])) {
            return MQTT_E_MALFORMED;
        }
    }
    return MQTT_OK;
}

int mqtt_decode_unsubscribe(const uint8_t *pkt, size_t len, struct mqtt_unsubscribe *out)
{
    memset(out, 0, sizeof(*out));
    return decode_filter_list(pkt, len, MQTT_UNSUBSCRIBE, &out->packet_id, out->filters, NULL,
                              &out->count);
}

static bool is_empty_type(uint8_t type)
{
    return type == MQTT_PINGREQ || type == MQTT_PINGRESP || type == MQTT_DISCONNECT;
}

int mqtt_decode_empty(const uint8_t *pkt, size_t len, uint8_t *type)
{
    struct mqtt_frame fr;
    struct reader r;
    int rc = open_packet(pkt, len, &fr, &r);

    *type = 0;
    if (rc != MQTT_OK) {
        return rc;
    }
    if (!is_empty_type(fr.type)) {
        return MQTT_E_PROTOCOL;
    }
    *type = fr.type;
    return rd_end(&r);
}

/* ---- writer ------------------------------------------------------------ */

struct writer {
    uint8_t *p;
    size_t cap;
    size_t off;
    bool overflow;
};

static void wr_bytes(struct writer *w, const void *src, size_t n)
{
    if (w->overflow || w->cap - w->off < n) {
        w->overflow = true;
        return;
    }
    if (n > 0) {
        memcpy(w->p + w->off, src, n);
    }
    w->off += n;
}

static void wr_u8(struct writer *w, uint8_t v)
{
    wr_bytes(w, &v, 1);
}

static void wr_u16(struct writer *w, uint16_t v)
{
    uint8_t b[U16_LEN] = { (uint8_t)(v >> BYTE_BITS), (uint8_t)(v & BYTE_MASK) };

    wr_bytes(w, b, sizeof(b));
}

static void wr_prefixed(struct writer *w, const void *src, size_t n)
{
    wr_u16(w, (uint16_t)n);
    wr_bytes(w, src, n);
}

/* Total packet size for a body of rem bytes, or 0 if over our limit. */
static size_t packet_size(size_t rem)
{
    if (rem > PP_MQTT_MAX_PACKET) {
        return 0;
    }
    size_t total = 1 + varint_len(rem) + rem;
    return total > PP_MQTT_MAX_PACKET ? 0 : total;
}

/* Start a packet whose body is rem bytes; false if it cannot fit. */
static bool wr_begin(struct writer *w, uint8_t *buf, size_t cap,
                     uint8_t type, uint8_t flags, size_t rem)
{
    uint8_t hdr[MQTT_FIXED_HEADER_MAX];
    size_t total = packet_size(rem);

    w->p = buf;
    w->cap = cap;
    w->off = 0;
    w->overflow = false;
    if (total == 0 || total > cap) {
        return false;
    }
    hdr[0] = (uint8_t)((type << MQTT_TYPE_SHIFT) | flags);
    size_t n = mqtt_varint_encode((uint32_t)rem, hdr + 1);
    wr_bytes(w, hdr, 1 + n);
    return true;
}

static size_t wr_finish(const struct writer *w)
{
    return w->overflow ? 0 : w->off;
}

static bool str_ok(const struct mqtt_str *s)
{
    return s->len <= MQTT_STRING_MAX && (s->len == 0 || s->ptr != NULL) &&
           mqtt_utf8_check(s->ptr, s->len) == MQTT_OK;
}

/* ---- encoders ---------------------------------------------------------- */

static bool connect_params_ok(const struct mqtt_connect_params *p)
{
    if (p->client_id.len > PP_MQTT_MAX_CLIENT_ID || !str_ok(&p->client_id)) {
        return false;
    }
    if (p->username.ptr != NULL && !str_ok(&p->username)) {
        return false;
    }
    if (p->password != NULL && (p->username.ptr == NULL || p->password_len > MQTT_STRING_MAX)) {
        return false;
    }
    return true;
}

size_t mqtt_encode_connect(uint8_t *buf, size_t cap, const struct mqtt_connect_params *p)
{
    struct writer w;
    uint8_t flags = MQTT_CONNECT_CLEAN_SESSION;
    size_t name_len = sizeof(PROTO_NAME_311) - 1;
    size_t rem;

    if (!connect_params_ok(p)) {
        return 0;
    }
    rem = U16_LEN + name_len + 1 + 1 + U16_LEN + U16_LEN + p->client_id.len;
    if (p->username.ptr != NULL) {
        flags |= MQTT_CONNECT_USERNAME;
        rem += U16_LEN + p->username.len;
    }
    if (p->password != NULL) {
        flags |= MQTT_CONNECT_PASSWORD;
        rem += U16_LEN + p->password_len;
    }
    if (!wr_begin(&w, buf, cap, MQTT_CONNECT, 0, rem)) {
        return 0;
    }
    wr_prefixed(&w, PROTO_NAME_311, name_len);
    wr_u8(&w, MQTT_LEVEL_311);
    wr_u8(&w, flags);
    wr_u16(&w, p->keepalive);
    wr_prefixed(&w, p->client_id.ptr, p->client_id.len);
    if (p->username.ptr != NULL) {
        wr_prefixed(&w, p->username.ptr, p->username.len);
    }
    if (p->password != NULL) {
        wr_prefixed(&w, p->password, p->password_len);
    }
    return wr_finish(&w);
}

size_t mqtt_encode_connack(uint8_t *buf, size_t cap, bool session_present, uint8_t code)
{
    struct writer w;

    if (!wr_begin(&w, buf, cap, MQTT_CONNACK, 0, CONNACK_REMAINING)) {
        return 0;
    }
    wr_u8(&w, session_present ? MQTT_CONNACK_SESSION_PRESENT : 0);
    wr_u8(&w, code);
    return wr_finish(&w);
}

static size_t publish_remaining(const struct mqtt_publish *p)
{
    if (p->qos > MQTT_QOS_MAX || (p->qos > 0 && p->packet_id == 0)) {
        return ANY_LENGTH;
    }
    if (mqtt_topic_name_check(p->topic.ptr, p->topic.len) != MQTT_OK) {
        return ANY_LENGTH;
    }
    if (p->payload_len > PP_MQTT_MAX_PACKET || (p->payload_len > 0 && p->payload == NULL)) {
        return ANY_LENGTH;
    }
    return U16_LEN + p->topic.len + (p->qos > 0 ? U16_LEN : 0) + p->payload_len;
}

size_t mqtt_publish_size(const struct mqtt_publish *p)
{
    size_t rem = publish_remaining(p);

    return rem == ANY_LENGTH ? 0 : packet_size(rem);
}

size_t mqtt_encode_publish(uint8_t *buf, size_t cap, const struct mqtt_publish *p)
{
    struct writer w;
    size_t rem = publish_remaining(p);
    uint8_t flags = (uint8_t)(p->qos << MQTT_PUBLISH_QOS_SHIFT);

    if (rem == ANY_LENGTH) {
        return 0;
    }
    if (p->retain) {
        flags |= MQTT_PUBLISH_RETAIN;
    }
    if (p->dup && p->qos > 0) {
        flags |= MQTT_PUBLISH_DUP;
    }
    if (!wr_begin(&w, buf, cap, MQTT_PUBLISH, flags, rem)) {
        return 0;
    }
    wr_prefixed(&w, p->topic.ptr, p->topic.len);
    if (p->qos > 0) {
        wr_u16(&w, p->packet_id);
    }
    wr_bytes(&w, p->payload, p->payload_len);
    return wr_finish(&w);
}

size_t mqtt_encode_ack(uint8_t *buf, size_t cap, uint8_t type, uint16_t packet_id)
{
    struct writer w;

    if (!is_ack_type(type) || packet_id == 0) {
        return 0;
    }
    if (!wr_begin(&w, buf, cap, type, TYPE_RULES[type].flags, ACK_REMAINING)) {
        return 0;
    }
    wr_u16(&w, packet_id);
    return wr_finish(&w);
}

/* Body size of a filter list, or ANY_LENGTH if a filter is invalid. */
static size_t filters_size(const struct mqtt_str *filters, size_t count, size_t per_filter)
{
    size_t rem = 0;

    if (filters == NULL || count == 0 || count > PP_MQTT_MAX_SUBS) {
        return ANY_LENGTH;
    }
    for (size_t i = 0; i < count; i++) {
        if (mqtt_topic_filter_check(filters[i].ptr, filters[i].len) != MQTT_OK) {
            return ANY_LENGTH;
        }
        rem += U16_LEN + filters[i].len + per_filter;
    }
    return rem;
}

size_t mqtt_encode_subscribe(uint8_t *buf, size_t cap, uint16_t packet_id,
                             const struct mqtt_str *filters, const uint8_t *qos,
                             size_t count)
{
    struct writer w;
    size_t rem = filters_size(filters, count, 1);

    if (rem == ANY_LENGTH || packet_id == 0 || qos == NULL) {
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        if (qos[i] > MQTT_QOS_MAX) {
            return 0;
        }
    }
    if (!wr_begin(&w, buf, cap, MQTT_SUBSCRIBE, MQTT_FLAGS_REQUIRED_0010, U16_LEN + rem)) {
        return 0;
    }
    wr_u16(&w, packet_id);
    for (size_t i = 0; i < count; i++) {
        wr_prefixed(&w, filters[i].ptr, filters[i].len);
        wr_u8(&w, qos[i]);
    }
    return wr_finish(&w);
}

size_t mqtt_encode_suback(uint8_t *buf, size_t cap, uint16_t packet_id,
                          const uint8_t *codes, size_t count)
{
    struct writer w;

    if (packet_id == 0 || codes == NULL || count == 0) {
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        if (!suback_code_ok(codes[i])) {
            return 0;
        }
    }
    if (!wr_begin(&w, buf, cap, MQTT_SUBACK, 0, U16_LEN + count)) {
        return 0;
    }
    wr_u16(&w, packet_id);
    wr_bytes(&w, codes, count);
    return wr_finish(&w);
}

size_t mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, uint16_t packet_id,
                               const struct mqtt_str *filters, size_t count)
{
    struct writer w;
    size_t rem = filters_size(filters, count, 0);

    if (rem == ANY_LENGTH || packet_id == 0) {
        return 0;
    }
    if (!wr_begin(&w, buf, cap, MQTT_UNSUBSCRIBE, MQTT_FLAGS_REQUIRED_0010, U16_LEN + rem)) {
        return 0;
    }
    wr_u16(&w, packet_id);
    for (size_t i = 0; i < count; i++) {
        wr_prefixed(&w, filters[i].ptr, filters[i].len);
    }
    return wr_finish(&w);
}

size_t mqtt_encode_empty(uint8_t *buf, size_t cap, uint8_t type)
{
    struct writer w;

    if (!is_empty_type(type) || !wr_begin(&w, buf, cap, type, 0, 0)) {
        return 0;
    }
    return wr_finish(&w);
}
