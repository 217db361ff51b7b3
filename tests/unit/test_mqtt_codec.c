/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the MQTT codec: packets written as hex, decoded, checked
 * field by field, and re-encoded to the same bytes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "src/mqtt_codec.h"
#include "unit.h"

#define PKT_MAX 4096

/* client id "abc", user "bblp", password "1234", keepalive 60, clean */
#define CONNECT_311 \
    "10 1B 00 04 4D 51 54 54 04 C2 00 3C 00 03 61 62 63 00 04 62 62 6C 70" \
    " 00 04 31 32 33 34"

/* ---- helpers ----------------------------------------------------------- */

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Hex digits with optional spaces into out; aborts the test on bad input. */
static size_t hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;

    while (*s != '\0') {
        if (*s == ' ') {
            s++;
            continue;
        }
        int hi = hex_nibble(s[0]);
        int lo = s[1] == '\0' ? -1 : hex_nibble(s[1]);
        ck_assert_msg(hi >= 0 && lo >= 0, "bad hex near '%s'", s);
        ck_assert_uint_lt(n, cap);
        out[n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    return n;
}

static uint8_t g_pkt[PKT_MAX];
static uint8_t g_out[PKT_MAX];

static size_t pkt(const char *s)
{
    return hex(s, g_pkt, sizeof(g_pkt));
}

static int frame_hex(const char *s, struct mqtt_frame *fr)
{
    size_t n = pkt(s);
    return mqtt_frame(g_pkt, n, fr);
}

static void assert_bytes(const uint8_t *got, size_t got_len, const char *want_hex)
{
    uint8_t want[PKT_MAX];
    size_t want_len = hex(want_hex, want, sizeof(want));

    ck_assert_uint_eq(got_len, want_len);
    ck_assert_mem_eq(got, want, want_len);
}

static bool str_eq(struct mqtt_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* ---- framing ----------------------------------------------------------- */

struct rl_case {
    const char *hex;
    int rc;
    uint32_t remaining;
    size_t header_len;
};

static const struct rl_case RL_CASES[] = {
    { "30 00", MQTT_INCOMPLETE, 0, 2 },
    { "30 7F", MQTT_INCOMPLETE, 127, 2 },
    { "30 80 01", MQTT_INCOMPLETE, 128, 3 },
    { "30 FF 7F", MQTT_INCOMPLETE, 16383, 3 },
    { "30 80 80 01", MQTT_INCOMPLETE, 16384, 4 },
    { "30 FC FF 7F", MQTT_INCOMPLETE, 2097148, 4 },  /* total == limit */
    { "30 FD FF 7F", MQTT_E_TOO_BIG, 2097149, 4 },
    { "30 FF FF 7F", MQTT_E_TOO_BIG, 2097151, 4 },
    { "30 80 80 80 01", MQTT_E_TOO_BIG, 2097152, 5 },
    { "30 FF FF FF 7F", MQTT_E_TOO_BIG, 268435455, 5 },
};

START_TEST(test_remaining_length_boundaries)
{
    const struct rl_case *c = &RL_CASES[_i];
    struct mqtt_frame fr;

    /* "30 00" is a whole packet only if it carries a topic; framing does
     * not look inside, so it is complete. */
    int rc = frame_hex(c->hex, &fr);
    if (c->remaining == 0) {
        ck_assert_int_eq(rc, MQTT_OK);
    } else {
        ck_assert_int_eq(rc, c->rc);
    }
    ck_assert_uint_eq(fr.remaining_len, c->remaining);
    ck_assert_uint_eq(fr.header_len, c->header_len);
    ck_assert_uint_eq(fr.total_len, c->header_len + c->remaining);
}
END_TEST

START_TEST(test_varint_round_trip)
{
    static const uint32_t values[] = { 0, 127, 128, 16383, 16384, 2097151,
                                       2097152, 268435455 };
    static const size_t lens[] = { 1, 1, 2, 2, 3, 3, 4, 4 };
    uint8_t buf[MQTT_VARINT_MAX_BYTES];

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        uint32_t v = 0;
        size_t used = 0;
        size_t n = mqtt_varint_encode(values[i], buf);
        ck_assert_uint_eq(n, lens[i]);
        ck_assert_int_eq(mqtt_varint_decode(buf, n, &v, &used), MQTT_OK);
        ck_assert_uint_eq(v, values[i]);
        ck_assert_uint_eq(used, n);
        ck_assert_int_eq(mqtt_varint_decode(buf, n - 1, &v, &used), MQTT_INCOMPLETE);
    }
    ck_assert_uint_eq(mqtt_varint_encode(MQTT_VARINT_MAX + 1, buf), 0);
}
END_TEST

START_TEST(test_varint_five_bytes_rejected)
{
    struct mqtt_frame fr;

    ck_assert_int_eq(frame_hex("30 FF FF FF FF", &fr), MQTT_E_MALFORMED);
    ck_assert_int_eq(frame_hex("30 80 80 80 80 01", &fr), MQTT_E_MALFORMED);
    ck_assert_int_eq(frame_hex("30 FF FF FF", &fr), MQTT_INCOMPLETE);
}
END_TEST

START_TEST(test_truncated_is_incomplete)
{
    static const char *const packets[] = {
        CONNECT_311,
        "32 0D 00 03 61 2F 62 00 07 68 65 6C 6C 6F 21",
        "82 0E 00 0A 00 03 61 2F 23 01 00 03 62 2F 2B 02",
        "20 02 00 00",
    };
    struct mqtt_frame fr;

    for (size_t i = 0; i < sizeof(packets) / sizeof(packets[0]); i++) {
        size_t n = pkt(packets[i]);
        struct mqtt_publish pub;
        for (size_t k = 0; k < n; k++) {
            ck_assert_int_eq(mqtt_frame(g_pkt, k, &fr), MQTT_INCOMPLETE);
            /* A decoder handed a short packet says the same. */
            ck_assert_int_eq(mqtt_decode_publish(g_pkt, k, &pub), MQTT_INCOMPLETE);
        }
        ck_assert_int_eq(mqtt_frame(g_pkt, n, &fr), MQTT_OK);
        ck_assert_uint_eq(fr.total_len, n);
    }
}
END_TEST

START_TEST(test_two_packets_in_one_buffer)
{
    struct mqtt_frame fr;
    size_t n = pkt("C0 00 30 05 00 03 61 2F 62 D0");

    ck_assert_int_eq(mqtt_frame(g_pkt, n, &fr), MQTT_OK);
    ck_assert_uint_eq(fr.type, MQTT_PINGREQ);
    ck_assert_uint_eq(fr.total_len, 2);
    ck_assert_int_eq(mqtt_frame(g_pkt + 2, n - 2, &fr), MQTT_OK);
    ck_assert_uint_eq(fr.type, MQTT_PUBLISH);
    ck_assert_uint_eq(fr.total_len, 7);
    ck_assert_int_eq(mqtt_frame(g_pkt + 9, n - 9, &fr), MQTT_INCOMPLETE);
}
END_TEST

START_TEST(test_oversize_too_big)
{
    struct mqtt_frame fr;
    struct mqtt_publish pub;
    size_t payload_max = PP_MQTT_MAX_PACKET - 4 - 2 - 1;   /* header, len, "t" */
    uint8_t *payload = calloc(1, payload_max + 1);
    uint8_t *buf = malloc(PP_MQTT_MAX_PACKET + 16);

    ck_assert_ptr_nonnull(payload);
    ck_assert_ptr_nonnull(buf);
    memset(&pub, 0, sizeof(pub));
    pub.topic = (struct mqtt_str){ "t", 1 };
    pub.payload = payload;
    pub.payload_len = payload_max;
    ck_assert_uint_eq(mqtt_publish_size(&pub), PP_MQTT_MAX_PACKET);
    size_t n = mqtt_encode_publish(buf, PP_MQTT_MAX_PACKET, &pub);
    ck_assert_uint_eq(n, PP_MQTT_MAX_PACKET);
    ck_assert_int_eq(mqtt_frame(buf, n, &fr), MQTT_OK);
    ck_assert_int_eq(mqtt_decode_publish(buf, n, &pub), MQTT_OK);
    ck_assert_uint_eq(pub.payload_len, payload_max);

    pub.payload = payload;
    pub.payload_len = payload_max + 1;
    ck_assert_uint_eq(mqtt_publish_size(&pub), 0);
    ck_assert_uint_eq(mqtt_encode_publish(buf, PP_MQTT_MAX_PACKET + 16, &pub), 0);
    /* Too big is known from the header alone. */
    ck_assert_int_eq(frame_hex("30 FD FF 7F 00", &fr), MQTT_E_TOO_BIG);
    free(payload);
    free(buf);
}
END_TEST

START_TEST(test_reserved_types)
{
    struct mqtt_frame fr;

    ck_assert_int_eq(frame_hex("00 00", &fr), MQTT_E_MALFORMED);
    ck_assert_int_eq(frame_hex("F0 00", &fr), MQTT_E_MALFORMED);
    ck_assert_int_eq(frame_hex("00", &fr), MQTT_E_MALFORMED);
    ck_assert_int_eq(frame_hex("", &fr), MQTT_INCOMPLETE);
}
END_TEST

struct flag_case {
    const char *hex;
    int rc;
};

static const struct flag_case FLAG_CASES[] = {
    { "62 02 00 01", MQTT_OK },            /* PUBREL 0010 */
    { "60 02 00 01", MQTT_E_MALFORMED },
    { "82 05 00 01 00 00 00", MQTT_OK },   /* framing ignores the body */
    { "80 05 00 01 00 00 00", MQTT_E_MALFORMED },
    { "83 05 00 01 00 00 00", MQTT_E_MALFORMED },
    { "A2 02 00 01", MQTT_OK },
    { "A0 02 00 01", MQTT_E_MALFORMED },
    { "36 05 00 01 61 00 01", MQTT_E_MALFORMED },   /* QoS 3 */
    { "37", MQTT_E_MALFORMED },
    { "3D 05 00 01 61 00 01", MQTT_OK },   /* dup, QoS 2, retain */
    { "11 00", MQTT_E_MALFORMED },
    { "21 02 00 00", MQTT_E_MALFORMED },
    { "42 02 00 01", MQTT_E_MALFORMED },
    { "B2 02 00 01", MQTT_E_MALFORMED },
    { "C1 00", MQTT_E_MALFORMED },
    { "D8 00", MQTT_E_MALFORMED },
    { "E2 00", MQTT_E_MALFORMED },
    /* Fixed remaining lengths. */
    { "E0 01 00", MQTT_E_MALFORMED },
    { "C0 01 00", MQTT_E_MALFORMED },
    { "20 03 00 00 00", MQTT_E_MALFORMED },
    { "40 03 00 01 00", MQTT_E_MALFORMED },
    { "40 01 00", MQTT_E_MALFORMED },
};

START_TEST(test_fixed_header_flags)
{
    const struct flag_case *c = &FLAG_CASES[_i];
    struct mqtt_frame fr;

    ck_assert_msg(frame_hex(c->hex, &fr) == c->rc, "%s: got %d want %d", c->hex,
                  frame_hex(c->hex, &fr), c->rc);
}
END_TEST

/* ---- CONNECT / CONNACK ------------------------------------------------- */

START_TEST(test_connect_311_round_trip)
{
    struct mqtt_connect c;
    size_t n = pkt(CONNECT_311);

    ck_assert_int_eq(mqtt_decode_connect(g_pkt, n, &c), MQTT_OK);
    ck_assert_uint_eq(c.level, MQTT_LEVEL_311);
    ck_assert(c.clean_session);
    ck_assert(!c.will);
    ck_assert_uint_eq(c.keepalive, 60);
    ck_assert(str_eq(c.client_id, "abc"));
    ck_assert(c.has_username && str_eq(c.username, "bblp"));
    ck_assert(c.has_password);
    ck_assert_uint_eq(c.password_len, 4);
    ck_assert_mem_eq(c.password, "1234", 4);

    struct mqtt_connect_params p = {
        .client_id = c.client_id, .username = c.username,
        .password = c.password, .password_len = c.password_len,
        .keepalive = c.keepalive,
    };
    size_t m = mqtt_encode_connect(g_out, sizeof(g_out), &p);
    assert_bytes(g_out, m, CONNECT_311);
    ck_assert_uint_eq(mqtt_encode_connect(g_out, n - 1, &p), 0);
}
END_TEST

START_TEST(test_connect_encode_minimal)
{
    struct mqtt_connect_params p = { .client_id = { "x", 1 }, .keepalive = 30 };
    uint8_t pw[] = { 1, 2 };
    size_t n = mqtt_encode_connect(g_out, sizeof(g_out), &p);

    assert_bytes(g_out, n, "10 0D 00 04 4D 51 54 54 04 02 00 1E 00 01 78");
    p.password = pw;
    p.password_len = sizeof(pw);
    /* A password needs a username. */
    ck_assert_uint_eq(mqtt_encode_connect(g_out, sizeof(g_out), &p), 0);
}
END_TEST

START_TEST(test_connect_mqtt5_detected)
{
    struct mqtt_connect c;
    size_t n = pkt("10 10 00 04 4D 51 54 54 05 02 00 3C 00 00 03 61 62 63");
    int rc = mqtt_decode_connect(g_pkt, n, &c);

    ck_assert_int_eq(rc, MQTT_E_VERSION);
    ck_assert_uint_eq(c.level, MQTT_LEVEL_5);
    ck_assert_int_eq(mqtt_connack_code(rc), MQTT_CONNACK_BAD_VERSION);
}
END_TEST

START_TEST(test_connect_mqisdp_accepted)
{
    struct mqtt_connect c;
    size_t n = pkt("10 13 00 06 4D 51 49 73 64 70 03 02 00 3C 00 05 68 65 6C 6C 6F");

    ck_assert_int_eq(mqtt_decode_connect(g_pkt, n, &c), MQTT_OK);
    ck_assert_uint_eq(c.level, MQTT_LEVEL_31);
    ck_assert(str_eq(c.client_id, "hello"));
    /* Name and level must agree. */
    n = pkt("10 13 00 06 4D 51 49 73 64 70 04 02 00 3C 00 05 68 65 6C 6C 6F");
    ck_assert_int_eq(mqtt_decode_connect(g_pkt, n, &c), MQTT_E_VERSION);
    n = pkt("10 0C 00 04 4D 51 54 54 03 02 00 3C 00 00");
    ck_assert_int_eq(mqtt_decode_connect(g_pkt, n, &c), MQTT_E_VERSION);
}
END_TEST

START_TEST(test_connect_empty_client_id)
{
    struct mqtt_connect c;
    size_t n = pkt("10 0C 00 04 4D 51 54 54 04 02 00 3C 00 00");

    ck_assert_int_eq(mqtt_decode_connect(g_pkt, n, &c), MQTT_OK);
    ck_assert_uint_eq(c.client_id.len, 0);
    /* Without a clean session the server cannot invent an identity. */
    n = pkt("10 0C 00 04 4D 51 54 54 04 00 00 3C 00 00");
    int rc = mqtt_decode_connect(g_pkt, n, &c);
    ck_assert_int_eq(rc, MQTT_E_CLIENT_ID);
    ck_assert_int_eq(mqtt_connack_code(rc), MQTT_CONNACK_ID_REJECTED);
}
END_TEST

START_TEST(test_connect_client_id_too_long)
{
    struct mqtt_connect c;
    size_t id_len = PP_MQTT_MAX_CLIENT_ID + 1;
    size_t rem = 10 + 2 + id_len;
    size_t n = 0;

    g_pkt[n++] = MQTT_CONNECT << MQTT_TYPE_SHIFT;
    n += mqtt_varint_encode((uint32_t)rem, g_pkt + n);
    n += hex("00 04 4D 51 54 54 04 02 00 3C", g_pkt + n, sizeof(g_pkt) - n);
    g_pkt[n++] = (uint8_t)(id_len >> 8);
    g_pkt[n++] = (uint8_t)(id_len & 0xFF);
    memset(g_pkt + n, 'a', id_len);
    n += id_len;
    ck_assert_int_eq(mqtt_decode_connect(g_pkt, n, &c), MQTT_E_CLIENT_ID);
}
END_TEST

START_TEST(test_connect_with_will)
{
    struct mqtt_connect c;
    size_t n = pkt("10 17 00 04 4D 51 54 54 04 2E 00 3C 00 01 63 00 03 61 2F 62"
                   " 00 03 62 79 65");

    ck_assert_int_eq(mqtt_decode_connect(g_pkt, n, &c), MQTT_OK);
    ck_assert(c.will && c.will_retain);
    ck_assert_uint_eq(c.will_qos, 1);
    ck_assert(str_eq(c.will_topic, "a/b"));
    ck_assert_uint_eq(c.will_message_len, 3);
    ck_assert_mem_eq(c.will_message, "bye", 3);
    ck_assert(!c.has_username && !c.has_password);
    /* A will topic is a topic name: no wildcards. */
    n = pkt("10 17 00 04 4D 51 54 54 04 0E 00 3C 00 01 63 00 03 61 2F 23"
            " 00 03 62 79 65");
    ck_assert_int_eq(mqtt_decode_connect(g_pkt, n, &c), MQTT_E_TOPIC);
}
END_TEST

struct connect_case {
    const char *hex;
    int rc;
};

static const struct connect_case BAD_CONNECTS[] = {
    /* reserved flag bit */
    { "10 0D 00 04 4D 51 54 54 04 03 00 3C 00 01 61", MQTT_E_MALFORMED },
    /* will QoS without will */
    { "10 0D 00 04 4D 51 54 54 04 0A 00 3C 00 01 61", MQTT_E_MALFORMED },
    /* will retain without will */
    { "10 0D 00 04 4D 51 54 54 04 22 00 3C 00 01 61", MQTT_E_MALFORMED },
    /* will QoS 3 */
    { "10 0D 00 04 4D 51 54 54 04 1E 00 3C 00 01 61", MQTT_E_MALFORMED },
    /* password without username */
    { "10 11 00 04 4D 51 54 54 04 42 00 3C 00 01 61 00 02 70 77", MQTT_E_PROTOCOL },
    /* unknown protocol name */
    { "10 0D 00 04 4D 51 54 58 04 02 00 3C 00 01 61", MQTT_E_PROTOCOL },
    /* trailing byte */
    { "10 0E 00 04 4D 51 54 54 04 02 00 3C 00 01 61 00", MQTT_E_MALFORMED },
    /* username flag but no username */
    { "10 0D 00 04 4D 51 54 54 04 82 00 3C 00 01 61", MQTT_E_MALFORMED },
    /* client id length beyond the packet */
    { "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 05 61", MQTT_E_MALFORMED },
    /* cut before keepalive */
    { "10 08 00 04 4D 51 54 54 04 02", MQTT_E_MALFORMED },
    /* client id with an overlong NUL */
    { "10 0E 00 04 4D 51 54 54 04 02 00 3C 00 02 C0 80", MQTT_E_UTF8 },
    /* username with a surrogate */
    { "10 12 00 04 4D 51 54 54 04 82 00 3C 00 01 61 00 03 ED A0 80", MQTT_E_UTF8 },
};

START_TEST(test_connect_rejects)
{
    const struct connect_case *c = &BAD_CONNECTS[_i];
    struct mqtt_connect con;
    size_t n = pkt(c->hex);
    int rc = mqtt_decode_connect(g_pkt, n, &con);

    ck_assert_msg(rc == c->rc, "%s: got %s", c->hex, mqtt_strerror(rc));
    ck_assert_int_eq(mqtt_connack_code(rc), -1);
}
END_TEST

START_TEST(test_connack_round_trip)
{
    struct mqtt_connack ca;
    size_t n = pkt("20 02 01 05");

    ck_assert_int_eq(mqtt_decode_connack(g_pkt, n, &ca), MQTT_OK);
    ck_assert(ca.session_present);
    ck_assert_uint_eq(ca.code, MQTT_CONNACK_NOT_AUTHORIZED);
    n = mqtt_encode_connack(g_out, sizeof(g_out), true, MQTT_CONNACK_NOT_AUTHORIZED);
    assert_bytes(g_out, n, "20 02 01 05");
    n = mqtt_encode_connack(g_out, sizeof(g_out), false, MQTT_CONNACK_ACCEPTED);
    assert_bytes(g_out, n, "20 02 00 00");
    n = pkt("20 02 02 00");
    ck_assert_int_eq(mqtt_decode_connack(g_pkt, n, &ca), MQTT_E_MALFORMED);
    ck_assert_uint_eq(mqtt_encode_connack(g_out, 3, false, 0), 0);
}
END_TEST

/* ---- PUBLISH ----------------------------------------------------------- */

START_TEST(test_publish_qos0_round_trip)
{
    struct mqtt_publish p;
    const char *want = "30 0B 00 03 61 2F 62 68 65 6C 6C 6F 21";
    size_t n = pkt(want);

    ck_assert_int_eq(mqtt_decode_publish(g_pkt, n, &p), MQTT_OK);
    ck_assert(str_eq(p.topic, "a/b"));
    ck_assert_uint_eq(p.qos, 0);
    ck_assert_uint_eq(p.packet_id, 0);
    ck_assert(!p.retain && !p.dup);
    ck_assert_uint_eq(p.payload_len, 6);
    ck_assert_mem_eq(p.payload, "hello!", 6);
    ck_assert_uint_eq(mqtt_publish_size(&p), n);
    assert_bytes(g_out, mqtt_encode_publish(g_out, sizeof(g_out), &p), want);
    memset(g_out, 0xAA, sizeof(g_out));
    ck_assert_uint_eq(mqtt_encode_publish(g_out, n - 1, &p), 0);
    ck_assert_uint_eq(g_out[0], 0xAA);
}
END_TEST

START_TEST(test_publish_qos1_and_flags)
{
    struct mqtt_publish p;
    const char *want = "3B 0D 00 03 61 2F 62 00 07 68 65 6C 6C 6F 21";
    size_t n = pkt(want);

    ck_assert_int_eq(mqtt_decode_publish(g_pkt, n, &p), MQTT_OK);
    ck_assert_uint_eq(p.qos, 1);
    ck_assert_uint_eq(p.packet_id, 7);
    ck_assert(p.retain && p.dup);
    ck_assert_uint_eq(p.payload_len, 6);
    assert_bytes(g_out, mqtt_encode_publish(g_out, sizeof(g_out), &p), want);
    /* dup is meaningless at QoS 0 and is not sent. */
    p.qos = 0;
    assert_bytes(g_out, mqtt_encode_publish(g_out, sizeof(g_out), &p),
                 "31 0B 00 03 61 2F 62 68 65 6C 6C 6F 21");
}
END_TEST

START_TEST(test_publish_empty_payload)
{
    struct mqtt_publish p;
    size_t n = pkt("34 07 00 03 61 2F 62 FF FF");

    ck_assert_int_eq(mqtt_decode_publish(g_pkt, n, &p), MQTT_OK);
    ck_assert_uint_eq(p.qos, 2);
    ck_assert_uint_eq(p.packet_id, 0xFFFF);
    ck_assert_uint_eq(p.payload_len, 0);
    assert_bytes(g_out, mqtt_encode_publish(g_out, sizeof(g_out), &p),
                 "34 07 00 03 61 2F 62 FF FF");
}
END_TEST

static const struct connect_case BAD_PUBLISHES[] = {
    { "32 07 00 03 61 2F 62 00 00", MQTT_E_PROTOCOL },  /* QoS 1, packet id 0 */
    { "34 07 00 03 61 2F 62 00 00", MQTT_E_PROTOCOL },  /* QoS 2, packet id 0 */
    { "32 06 00 03 61 2F 62 00", MQTT_E_MALFORMED },    /* half a packet id */
    { "30 05 00 03 61 2F 2B", MQTT_E_TOPIC },
    { "30 05 00 03 61 2F 23", MQTT_E_TOPIC },
    { "30 03 00 00 41", MQTT_E_TOPIC },                /* empty topic */
    { "30 05 00 03 ED A0 80", MQTT_E_UTF8 },           /* surrogate */
    { "30 04 00 02 C0 AF", MQTT_E_UTF8 },              /* overlong '/' */
    { "30 03 00 01 00", MQTT_E_UTF8 },                 /* NUL */
    { "30 03 00 05 61", MQTT_E_MALFORMED },            /* length past the end */
    { "30 01 00", MQTT_E_MALFORMED },
    { "30 00", MQTT_E_MALFORMED },
};

START_TEST(test_publish_rejects)
{
    const struct connect_case *c = &BAD_PUBLISHES[_i];
    struct mqtt_publish p;
    size_t n = pkt(c->hex);
    int rc = mqtt_decode_publish(g_pkt, n, &p);

    ck_assert_msg(rc == c->rc, "%s: got %s", c->hex, mqtt_strerror(rc));
}
END_TEST

START_TEST(test_publish_encode_rejects)
{
    struct mqtt_publish p = { .topic = { "a/b", 3 }, .qos = 1 };

    ck_assert_uint_eq(mqtt_publish_size(&p), 0);   /* packet id 0 */
    p.packet_id = 1;
    ck_assert_uint_eq(mqtt_publish_size(&p), 9);
    p.qos = 3;
    ck_assert_uint_eq(mqtt_encode_publish(g_out, sizeof(g_out), &p), 0);
    p.qos = 0;
    p.topic = (struct mqtt_str){ "a/+", 3 };
    ck_assert_uint_eq(mqtt_encode_publish(g_out, sizeof(g_out), &p), 0);
}
END_TEST

/* ---- acks and empty packets ------------------------------------------- */

static const char *const ACKS[] = {
    "40 02 12 34", "50 02 12 34", "62 02 12 34", "70 02 12 34", "B0 02 12 34",
};

START_TEST(test_ack_round_trip)
{
    struct mqtt_ack a;
    size_t n = pkt(ACKS[_i]);

    ck_assert_int_eq(mqtt_decode_ack(g_pkt, n, &a), MQTT_OK);
    ck_assert_uint_eq(a.type, g_pkt[0] >> MQTT_TYPE_SHIFT);
    ck_assert_uint_eq(a.packet_id, 0x1234);
    assert_bytes(g_out, mqtt_encode_ack(g_out, sizeof(g_out), a.type, a.packet_id),
                 ACKS[_i]);
    ck_assert_uint_eq(mqtt_encode_ack(g_out, 3, a.type, a.packet_id), 0);
    ck_assert_uint_eq(mqtt_encode_ack(g_out, sizeof(g_out), a.type, 0), 0);
    g_pkt[2] = 0;
    g_pkt[3] = 0;
    ck_assert_int_eq(mqtt_decode_ack(g_pkt, n, &a), MQTT_E_PROTOCOL);
}
END_TEST

START_TEST(test_empty_packets)
{
    static const struct { const char *hex; uint8_t type; } cases[] = {
        { "C0 00", MQTT_PINGREQ }, { "D0 00", MQTT_PINGRESP },
        { "E0 00", MQTT_DISCONNECT },
    };
    uint8_t type;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = pkt(cases[i].hex);
        ck_assert_int_eq(mqtt_decode_empty(g_pkt, n, &type), MQTT_OK);
        ck_assert_uint_eq(type, cases[i].type);
        assert_bytes(g_out, mqtt_encode_empty(g_out, sizeof(g_out), type), cases[i].hex);
        ck_assert_uint_eq(mqtt_encode_empty(g_out, 1, type), 0);
    }
    ck_assert_int_eq(mqtt_decode_empty(g_pkt, pkt("E0 01 00"), &type), MQTT_E_MALFORMED);
    ck_assert_uint_eq(mqtt_encode_empty(g_out, sizeof(g_out), MQTT_PUBACK), 0);
    ck_assert_uint_eq(mqtt_encode_ack(g_out, sizeof(g_out), MQTT_PINGREQ, 1), 0);
}
END_TEST

START_TEST(test_wrong_decoder)
{
    struct mqtt_publish p;
    struct mqtt_ack a;
    struct mqtt_connect c;
    uint8_t type;

    ck_assert_int_eq(mqtt_decode_publish(g_pkt, pkt("40 02 00 01"), &p), MQTT_E_PROTOCOL);
    ck_assert_int_eq(mqtt_decode_ack(g_pkt, pkt("C0 00"), &a), MQTT_E_PROTOCOL);
    ck_assert_int_eq(mqtt_decode_empty(g_pkt, pkt("40 02 00 01"), &type), MQTT_E_PROTOCOL);
    ck_assert_int_eq(mqtt_decode_connect(g_pkt, pkt("20 02 00 00"), &c), MQTT_E_PROTOCOL);
    /* A decoder takes exactly one packet. */
    ck_assert_int_eq(mqtt_decode_ack(g_pkt, pkt("40 02 00 01 C0"), &a), MQTT_E_MALFORMED);
}
END_TEST

/* ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE ---------------------------------- */

#define SUBSCRIBE_2 "82 0E 00 0A 00 03 61 2F 23 01 00 03 62 2F 2B 02"

START_TEST(test_subscribe_round_trip)
{
    struct mqtt_subscribe s;
    size_t n = pkt(SUBSCRIBE_2);

    ck_assert_int_eq(mqtt_decode_subscribe(g_pkt, n, &s), MQTT_OK);
    ck_assert_uint_eq(s.packet_id, 10);
    ck_assert_uint_eq(s.count, 2);
    ck_assert(str_eq(s.filters[0], "a/#"));
    ck_assert(str_eq(s.filters[1], "b/+"));
    ck_assert_uint_eq(s.qos[0], 1);
    ck_assert_uint_eq(s.qos[1], 2);
    n = mqtt_encode_subscribe(g_out, sizeof(g_out), s.packet_id, s.filters, s.qos, s.count);
    assert_bytes(g_out, n, SUBSCRIBE_2);
    ck_assert_uint_eq(mqtt_encode_subscribe(g_out, n - 1, s.packet_id, s.filters,
                                            s.qos, s.count), 0);
}
END_TEST

static const struct connect_case BAD_SUBSCRIBES[] = {
    { "82 08 00 0A 00 03 61 2F 23 41", MQTT_E_MALFORMED },  /* reserved QoS bits */
    { "82 08 00 0A 00 03 61 2F 23 03", MQTT_E_MALFORMED },  /* QoS 3 */
    { "82 07 00 0A 00 03 61 2F 23", MQTT_E_MALFORMED },     /* QoS missing */
    { "82 08 00 00 00 03 61 2F 23 00", MQTT_E_PROTOCOL },   /* packet id 0 */
    { "82 02 00 0A", MQTT_E_PROTOCOL },                     /* no filters */
    { "82 0A 00 0A 00 05 61 2F 23 2F 62 00", MQTT_E_TOPIC }, /* a/#/b */
    { "82 07 00 0A 00 02 61 2B 00", MQTT_E_TOPIC },         /* a+ */
    { "82 05 00 0A 00 00 00", MQTT_E_TOPIC },               /* empty filter */
    { "82 06 00 0A 00 01 FF 00", MQTT_E_UTF8 },
};

START_TEST(test_subscribe_rejects)
{
    const struct connect_case *c = &BAD_SUBSCRIBES[_i];
    struct mqtt_subscribe s;
    size_t n = pkt(c->hex);
    int rc = mqtt_decode_subscribe(g_pkt, n, &s);

    ck_assert_msg(rc == c->rc, "%s: got %s", c->hex, mqtt_strerror(rc));
}
END_TEST

START_TEST(test_subscribe_too_many_filters)
{
    static struct mqtt_str filters[PP_MQTT_MAX_SUBS + 1];
    static uint8_t qos[PP_MQTT_MAX_SUBS + 1];
    static struct mqtt_subscribe s;
    static struct mqtt_unsubscribe u;
    size_t n;

    for (size_t i = 0; i <= PP_MQTT_MAX_SUBS; i++) {
        filters[i] = (struct mqtt_str){ "x/+", 3 };
    }
    n = mqtt_encode_subscribe(g_out, sizeof(g_out), 1, filters, qos, PP_MQTT_MAX_SUBS);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(mqtt_decode_subscribe(g_out, n, &s), MQTT_OK);
    ck_assert_uint_eq(s.count, PP_MQTT_MAX_SUBS);
    ck_assert_uint_eq(mqtt_encode_subscribe(g_out, sizeof(g_out), 1, filters, qos,
                                            PP_MQTT_MAX_SUBS + 1), 0);
    /* Build one filter too many by hand: 6 bytes per filter. */
    n = 0;
    size_t rem = 2 + 6 * (PP_MQTT_MAX_SUBS + 1);
    g_pkt[n++] = MQTT_SUBSCRIBE << MQTT_TYPE_SHIFT | MQTT_FLAGS_REQUIRED_0010;
    n += mqtt_varint_encode((uint32_t)rem, g_pkt + n);
    n += hex("00 01", g_pkt + n, sizeof(g_pkt) - n);
    for (size_t i = 0; i <= PP_MQTT_MAX_SUBS; i++) {
        n += hex("00 03 78 2F 2B 00", g_pkt + n, sizeof(g_pkt) - n);
    }
    ck_assert_int_eq(mqtt_decode_subscribe(g_pkt, n, &s), MQTT_E_TOO_BIG);
    /* The same filters, without QoS bytes, as an UNSUBSCRIBE. */
    n = mqtt_encode_unsubscribe(g_out, sizeof(g_out), 1, filters, PP_MQTT_MAX_SUBS);
    ck_assert_int_eq(mqtt_decode_unsubscribe(g_out, n, &u), MQTT_OK);
    ck_assert_uint_eq(u.count, PP_MQTT_MAX_SUBS);
}
END_TEST

START_TEST(test_suback_round_trip)
{
    struct mqtt_suback s;
    const char *want = "90 05 00 0A 01 02 80";
    size_t n = pkt(want);

    ck_assert_int_eq(mqtt_decode_suback(g_pkt, n, &s), MQTT_OK);
    ck_assert_uint_eq(s.packet_id, 10);
    ck_assert_uint_eq(s.count, 3);
    ck_assert_uint_eq(s.codes[2], MQTT_SUBACK_FAILURE);
    assert_bytes(g_out, mqtt_encode_suback(g_out, sizeof(g_out), s.packet_id, s.codes,
                                           s.count), want);
    ck_assert_int_eq(mqtt_decode_suback(g_pkt, pkt("90 03 00 0A 03"), &s), MQTT_E_MALFORMED);
    ck_assert_int_eq(mqtt_decode_suback(g_pkt, pkt("90 02 00 0A"), &s), MQTT_E_PROTOCOL);
    uint8_t bad = 0x81;
    ck_assert_uint_eq(mqtt_encode_suback(g_out, sizeof(g_out), 1, &bad, 1), 0);
}
END_TEST

START_TEST(test_unsubscribe_round_trip)
{
    struct mqtt_unsubscribe u;
    struct mqtt_ack a;
    const char *want = "A2 0C 00 0B 00 03 61 2F 23 00 03 62 2F 2B";
    size_t n = pkt(want);

    ck_assert_int_eq(mqtt_decode_unsubscribe(g_pkt, n, &u), MQTT_OK);
    ck_assert_uint_eq(u.packet_id, 11);
    ck_assert_uint_eq(u.count, 2);
    ck_assert(str_eq(u.filters[0], "a/#"));
    ck_assert(str_eq(u.filters[1], "b/+"));
    assert_bytes(g_out, mqtt_encode_unsubscribe(g_out, sizeof(g_out), u.packet_id,
                                                u.filters, u.count), want);
    ck_assert_int_eq(mqtt_decode_unsubscribe(g_pkt, pkt("A2 02 00 0B"), &u), MQTT_E_PROTOCOL);
    ck_assert_int_eq(mqtt_decode_unsubscribe(g_pkt, pkt("A2 05 00 0B 00 01 23 00"), &u),
                     MQTT_E_MALFORMED);
    n = mqtt_encode_ack(g_out, sizeof(g_out), MQTT_UNSUBACK, 11);
    assert_bytes(g_out, n, "B0 02 00 0B");
    ck_assert_int_eq(mqtt_decode_ack(g_out, n, &a), MQTT_OK);
    ck_assert_uint_eq(a.type, MQTT_UNSUBACK);
}
END_TEST

/* ---- strings and topics ------------------------------------------------ */

struct utf8_case {
    const char *hex;
    bool ok;
};

static const struct utf8_case UTF8_CASES[] = {
    { "", true },
    { "61 62 63", true },
    { "C3 A9", true },              /* U+00E9 */
    { "E2 82 AC", true },           /* U+20AC */
    { "F0 9F 98 80", true },        /* U+1F600 */
    { "ED 9F BF", true },           /* U+D7FF, just below the surrogates */
    { "EE 80 80", true },           /* U+E000, just above */
    { "F4 8F BF BF", true },        /* U+10FFFF */
    { "EF BB BF", true },           /* BOM is a character like any other */
    { "00", false },                /* U+0000 */
    { "61 00 62", false },
    { "C0 80", false },             /* overlong U+0000 */
    { "C1 BF", false },             /* overlong */
    { "E0 80 80", false },          /* overlong */
    { "E0 9F BF", false },          /* overlong */
    { "F0 8F BF BF", false },       /* overlong */
    { "ED A0 80", false },          /* U+D800 */
    { "ED BF BF", false },          /* U+DFFF */
    { "F4 90 80 80", false },       /* above U+10FFFF */
    { "F5 80 80 80", false },
    { "FF", false },
    { "80", false },                /* lone continuation */
    { "E2 82", false },             /* truncated */
    { "E2 28 A1", false },          /* bad continuation */
    { "F0 9F 98 28", false },
};

START_TEST(test_utf8)
{
    const struct utf8_case *c = &UTF8_CASES[_i];
    size_t n = pkt(c->hex);
    int rc = mqtt_utf8_check((const char *)g_pkt, n);

    ck_assert_msg((rc == MQTT_OK) == c->ok, "'%s' got %s", c->hex, mqtt_strerror(rc));
}
END_TEST

struct filter_case {
    const char *s;
    int filter_rc;
    int name_rc;
};

static const struct filter_case FILTER_CASES[] = {
    { "a/b", MQTT_OK, MQTT_OK },
    { "/", MQTT_OK, MQTT_OK },
    { "a//b", MQTT_OK, MQTT_OK },
    { "$SYS/x", MQTT_OK, MQTT_OK },
    { "#", MQTT_OK, MQTT_E_TOPIC },
    { "+", MQTT_OK, MQTT_E_TOPIC },
    { "a/#", MQTT_OK, MQTT_E_TOPIC },
    { "+/+", MQTT_OK, MQTT_E_TOPIC },
    { "/+", MQTT_OK, MQTT_E_TOPIC },
    { "+/a/#", MQTT_OK, MQTT_E_TOPIC },
    { "a/+/b", MQTT_OK, MQTT_E_TOPIC },
    { "/#", MQTT_OK, MQTT_E_TOPIC },
    { "", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "a#", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "a/#/b", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "#/", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "##", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "a+", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "+a", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "a/b+/c", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "a/++", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "+#", MQTT_E_TOPIC, MQTT_E_TOPIC },
    { "sport/tennis#", MQTT_E_TOPIC, MQTT_E_TOPIC },
};

START_TEST(test_topic_filters)
{
    const struct filter_case *c = &FILTER_CASES[_i];
    size_t n = strlen(c->s);

    ck_assert_msg(mqtt_topic_filter_check(c->s, n) == c->filter_rc, "filter '%s'", c->s);
    ck_assert_msg(mqtt_topic_name_check(c->s, n) == c->name_rc, "name '%s'", c->s);
}
END_TEST

START_TEST(test_topic_length_limit)
{
    static char t[PP_MQTT_MAX_TOPIC + 1];

    memset(t, 'a', sizeof(t));
    ck_assert_int_eq(mqtt_topic_name_check(t, PP_MQTT_MAX_TOPIC), MQTT_OK);
    ck_assert_int_eq(mqtt_topic_filter_check(t, PP_MQTT_MAX_TOPIC), MQTT_OK);
    ck_assert_int_eq(mqtt_topic_name_check(t, PP_MQTT_MAX_TOPIC + 1), MQTT_E_TOO_BIG);
    ck_assert_int_eq(mqtt_topic_filter_check(t, PP_MQTT_MAX_TOPIC + 1), MQTT_E_TOO_BIG);
}
END_TEST

struct match_case {
    const char *filter;
    const char *topic;
    bool match;
};

static const struct match_case MATCH_CASES[] = {
    { "a/b", "a/b", true },
    { "a/b", "a/c", false },
    { "a/b", "a/b/c", false },
    { "a/b/c", "a/b", false },
    { "a/b", "A/b", false },
    { "#", "a", true },
    { "#", "a/b/c", true },
    { "#", "/", true },
    { "sport/#", "sport", true },
    { "sport/#", "sport/", true },
    { "sport/#", "sport/tennis/player1", true },
    { "sport/#", "sports", false },
    { "sport/tennis/#", "sport/tennis", true },
    { "sport/tennis/#", "sport", false },
    { "+", "a", true },
    { "+", "a/b", false },
    { "+", "/a", false },
    { "+", "", true },
    { "+/+", "/finance", true },
    { "/+", "/finance", true },
    { "sport/+", "sport", false },
    { "sport/+", "sport/", true },
    { "sport/+/player1", "sport/tennis/player1", true },
    { "sport/+/player1", "sport/tennis/player2", false },
    { "+/tennis/#", "sport/tennis/player1/ranking", true },
    { "a//b", "a//b", true },
    { "a/+/b", "a//b", true },
    { "a//b", "a/b", false },
    { "#", "$SYS/monitor", false },
    { "+/monitor", "$SYS/monitor", false },
    { "$SYS/#", "$SYS/monitor", true },
    { "$SYS/+", "$SYS/monitor", true },
    { "a/$x", "a/$x", true },
    { "+/$x", "a/$x", true },
    { "device/+/report", "device/01S00A000000000/report", true },
    { "device/+/report", "device/01S00A000000000/request", false },
    { "device/01S00A000000000/#", "device/01S00A000000000/report", true },
};

START_TEST(test_topic_match)
{
    const struct match_case *c = &MATCH_CASES[_i];
    bool got = mqtt_topic_match(c->filter, strlen(c->filter), c->topic, strlen(c->topic));

    ck_assert_msg(got == c->match, "'%s' vs '%s': got %d", c->filter, c->topic, got);
}
END_TEST

START_TEST(test_strerror_and_names)
{
    for (int e = MQTT_OK; e <= MQTT_E_TOPIC; e++) {
        ck_assert_ptr_nonnull(mqtt_strerror(e));
        ck_assert_str_ne(mqtt_strerror(e), mqtt_strerror(-1));
    }
    ck_assert_str_eq(mqtt_type_name(MQTT_PUBLISH), "PUBLISH");
    ck_assert_str_eq(mqtt_type_name(0), "RESERVED");
    ck_assert_str_eq(mqtt_type_name(15), "RESERVED");
    ck_assert_str_eq(mqtt_type_name(99), "RESERVED");
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *mqtt_codec_suite(void)
{
    Suite *s = suite_create("mqtt_codec");
    TCase *frame = tcase_create("framing");
    TCase *conn = tcase_create("connect");
    TCase *pub = tcase_create("publish");
    TCase *other = tcase_create("other packets");
    TCase *topics = tcase_create("strings and topics");

    tcase_add_loop_test(frame, test_remaining_length_boundaries, 0, N(RL_CASES));
    tcase_add_test(frame, test_varint_round_trip);
    tcase_add_test(frame, test_varint_five_bytes_rejected);
    tcase_add_test(frame, test_truncated_is_incomplete);
    tcase_add_test(frame, test_two_packets_in_one_buffer);
    tcase_add_test(frame, test_oversize_too_big);
    tcase_add_test(frame, test_reserved_types);
    tcase_add_loop_test(frame, test_fixed_header_flags, 0, N(FLAG_CASES));

    tcase_add_test(conn, test_connect_311_round_trip);
    tcase_add_test(conn, test_connect_encode_minimal);
    tcase_add_test(conn, test_connect_mqtt5_detected);
    tcase_add_test(conn, test_connect_mqisdp_accepted);
    tcase_add_test(conn, test_connect_empty_client_id);
    tcase_add_test(conn, test_connect_client_id_too_long);
    tcase_add_test(conn, test_connect_with_will);
    tcase_add_loop_test(conn, test_connect_rejects, 0, N(BAD_CONNECTS));
    tcase_add_test(conn, test_connack_round_trip);

    tcase_add_test(pub, test_publish_qos0_round_trip);
    tcase_add_test(pub, test_publish_qos1_and_flags);
    tcase_add_test(pub, test_publish_empty_payload);
    tcase_add_loop_test(pub, test_publish_rejects, 0, N(BAD_PUBLISHES));
    tcase_add_test(pub, test_publish_encode_rejects);

    tcase_add_loop_test(other, test_ack_round_trip, 0, N(ACKS));
    tcase_add_test(other, test_empty_packets);
    tcase_add_test(other, test_wrong_decoder);
    tcase_add_test(other, test_subscribe_round_trip);
    tcase_add_loop_test(other, test_subscribe_rejects, 0, N(BAD_SUBSCRIBES));
    tcase_add_test(other, test_subscribe_too_many_filters);
    tcase_add_test(other, test_suback_round_trip);
    tcase_add_test(other, test_unsubscribe_round_trip);

    tcase_add_loop_test(topics, test_utf8, 0, N(UTF8_CASES));
    tcase_add_loop_test(topics, test_topic_filters, 0, N(FILTER_CASES));
    tcase_add_test(topics, test_topic_length_limit);
    tcase_add_loop_test(topics, test_topic_match, 0, N(MATCH_CASES));
    tcase_add_test(topics, test_strerror_and_names);

    suite_add_tcase(s, frame);
    suite_add_tcase(s, conn);
    suite_add_tcase(s, pub);
    suite_add_tcase(s, other);
    suite_add_tcase(s, topics);
    return s;
}

int main(void)
{
    return unit_run(mqtt_codec_suite());
}
