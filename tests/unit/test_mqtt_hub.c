/* SPDX-License-Identifier: MIT */
/* Unit tests for the MQTT fan-out hub: shared messages, per-client queues, requests. */
#include <check.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "src/mqtt_codec.h"
#include "src/mqtt_hub.h"
#include "unit.h"

#define SN "01P00A391800001"
#define REPORT "device/" SN "/report"

static bool readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) == 1;
}

static struct mqtt_msg *msg(const char *payload)
{
    return mqtt_msg_new(REPORT, strlen(REPORT), (const uint8_t *)payload, strlen(payload));
}

START_TEST(test_msg_is_a_qos0_publish)
{
    struct mqtt_msg *m = msg("{\"a\":1}");
    struct mqtt_publish p;

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(mqtt_decode_publish(m->pkt, m->pkt_len, &p), MQTT_OK);
    ck_assert_uint_eq(p.qos, 0);
    ck_assert_uint_eq(p.topic.len, strlen(REPORT));
    ck_assert_mem_eq(m->topic, REPORT, m->topic_len);
    ck_assert_mem_eq(m->payload, "{\"a\":1}", m->payload_len);
    ck_assert_ptr_eq(p.payload, m->payload);
    mqtt_msg_unref(m);
}
END_TEST

START_TEST(test_fanout_matches_filters_and_shares_one_message)
{
    struct mqtt_hub h;
    struct mqtt_peer *a, *b, *c;
    struct mqtt_msg *m, *got[4];
    struct mqtt_ack_out acks[PP_MQTT_CLIENT_ACKS];
    uint8_t qos[4];
    size_t nacks;
    bool of;

    ck_assert_int_eq(mqtt_hub_init(&h, SN), 0);
    a = mqtt_peer_new(1, -1);
    b = mqtt_peer_new(2, -1);
    c = mqtt_peer_new(3, -1);
    mqtt_hub_add(&h, a);
    mqtt_hub_add(&h, b);
    mqtt_hub_add(&h, c);
    ck_assert_uint_eq(mqtt_peer_subscribe(a, "#", 1, 0), 0);
    ck_assert_uint_eq(mqtt_peer_subscribe(b, "device/+/report", 15, 2), 1); /* 2 -> 1 */
    ck_assert_uint_eq(mqtt_peer_subscribe(c, "device/+/request", 16, 0), 0);
    m = msg("x");
    ck_assert_uint_eq(mqtt_hub_publish(&h, m), 2);
    ck_assert(readable(a->wake_fd));
    ck_assert(readable(b->wake_fd));
    ck_assert(!readable(c->wake_fd));
    ck_assert_uint_eq(mqtt_peer_take(a, got, qos, 4, acks, &nacks, &of), 1);
    ck_assert_ptr_eq(got[0], m); /* the same bytes, not a copy */
    ck_assert_uint_eq(qos[0], 0);
    mqtt_msg_unref(got[0]);
    ck_assert_uint_eq(mqtt_peer_take(b, got, qos, 4, acks, &nacks, &of), 1);
    ck_assert_uint_eq(qos[0], 1);
    mqtt_msg_unref(got[0]);
    ck_assert_uint_eq(mqtt_peer_take(c, got, qos, 4, acks, &nacks, &of), 0);
    ck_assert_uint_eq(atomic_load(&m->refs), 2); /* ours and the hub's latest report */
    mqtt_hub_forget_last(&h);
    ck_assert_uint_eq(atomic_load(&m->refs), 1);
    mqtt_msg_unref(m);
    mqtt_hub_remove(&h, a);
    mqtt_hub_remove(&h, b);
    mqtt_hub_remove(&h, c);
    ck_assert(mqtt_hub_wait_empty(&h, 0));
    mqtt_hub_destroy(&h);
}
END_TEST

START_TEST(test_unsubscribe_drops_queued_and_future)
{
    struct mqtt_hub h;
    struct mqtt_peer *a;
    struct mqtt_msg *m, *got[4];
    struct mqtt_ack_out acks[PP_MQTT_CLIENT_ACKS];
    uint8_t qos[4];
    size_t nacks;
    bool of;

    ck_assert_int_eq(mqtt_hub_init(&h, SN), 0);
    a = mqtt_peer_new(1, -1);
    mqtt_hub_add(&h, a);
    mqtt_peer_subscribe(a, REPORT, strlen(REPORT), 0);
    mqtt_peer_subscribe(a, REPORT, strlen(REPORT), 1); /* replaces, does not add */
    ck_assert_uint_eq(a->nsubs, 1);
    m = msg("x");
    ck_assert_uint_eq(mqtt_hub_publish(&h, m), 1);
    mqtt_peer_unsubscribe(a, REPORT, strlen(REPORT));
    ck_assert_uint_eq(mqtt_hub_publish(&h, m), 0);
    ck_assert_uint_eq(mqtt_peer_take(a, got, qos, 4, acks, &nacks, &of), 0);
    mqtt_msg_unref(m);
    mqtt_hub_remove(&h, a);
    mqtt_hub_destroy(&h);
}
END_TEST

START_TEST(test_overflow_by_count_marks_the_peer_only)
{
    struct mqtt_hub h;
    struct mqtt_peer *slow, *fast;
    struct mqtt_msg *m, *got[PP_MQTT_TAKE_BATCH];
    struct mqtt_ack_out acks[PP_MQTT_CLIENT_ACKS];
    uint8_t qos[PP_MQTT_TAKE_BATCH];
    size_t nacks, msgs, bytes;
    bool of;

    ck_assert_int_eq(mqtt_hub_init(&h, SN), 0);
    slow = mqtt_peer_new(1, -1);
    fast = mqtt_peer_new(2, -1);
    mqtt_hub_add(&h, slow);
    mqtt_hub_add(&h, fast);
    mqtt_peer_subscribe(slow, "#", 1, 0);
    mqtt_peer_subscribe(fast, "#", 1, 0);
    m = msg("x");
    for (int i = 0; i < PP_MQTT_QUEUE_MSGS + 5; i++) {
        mqtt_hub_publish(&h, m);
        size_t n = mqtt_peer_take(fast, got, qos, PP_MQTT_TAKE_BATCH, acks, &nacks, &of);
        ck_assert_uint_eq(n, 1);
        ck_assert(!of);
        mqtt_msg_unref(got[0]);
    }
    ck_assert(mqtt_peer_overflowed(slow, &msgs, &bytes));
    ck_assert_uint_eq(msgs, PP_MQTT_QUEUE_MSGS);
    ck_assert_uint_eq(bytes, PP_MQTT_QUEUE_MSGS * m->pkt_len);
    ck_assert(!mqtt_peer_overflowed(fast, &msgs, &bytes));
    (void)mqtt_peer_take(slow, got, qos, PP_MQTT_TAKE_BATCH, acks, &nacks, &of);
    ck_assert(of);
    for (size_t i = 0; i < PP_MQTT_TAKE_BATCH; i++) {
        mqtt_msg_unref(got[i]);
    }
    mqtt_hub_remove(&h, slow); /* frees what is still queued */
    mqtt_hub_remove(&h, fast);
    mqtt_hub_forget_last(&h);
    ck_assert_uint_eq(atomic_load(&m->refs), 1);
    mqtt_msg_unref(m);
    mqtt_hub_destroy(&h);
}
END_TEST

START_TEST(test_overflow_by_bytes)
{
    struct mqtt_hub h;
    struct mqtt_peer *p;
    size_t big = PP_MQTT_QUEUE_BYTES / 8, msgs, bytes, fits;
    uint8_t *payload = calloc(1, big);
    struct mqtt_msg *m;

    ck_assert_int_eq(mqtt_hub_init(&h, SN), 0);
    p = mqtt_peer_new(1, -1);
    mqtt_hub_add(&h, p);
    mqtt_peer_subscribe(p, "#", 1, 0);
    m = mqtt_msg_new(REPORT, strlen(REPORT), payload, big);
    ck_assert_ptr_nonnull(m);
    fits = PP_MQTT_QUEUE_BYTES / m->pkt_len; /* 7: each packet is big + its header */
    for (size_t i = 0; i < fits; i++) {
        ck_assert_uint_eq(mqtt_hub_publish(&h, m), 1);
    }
    ck_assert(!mqtt_peer_overflowed(p, &msgs, &bytes));
    ck_assert_uint_eq(mqtt_hub_publish(&h, m), 0);
    ck_assert(mqtt_peer_overflowed(p, &msgs, &bytes));
    ck_assert_uint_eq(msgs, fits);
    ck_assert_uint_le(bytes, PP_MQTT_QUEUE_BYTES);
    mqtt_msg_unref(m);
    mqtt_hub_remove(&h, p);
    mqtt_hub_destroy(&h);
    free(payload);
}
END_TEST

START_TEST(test_acks_reach_the_right_client)
{
    struct mqtt_hub h;
    struct mqtt_peer *a, *b;
    struct mqtt_msg *got[1];
    struct mqtt_ack_out acks[PP_MQTT_CLIENT_ACKS];
    uint8_t qos[1];
    size_t nacks;
    bool of;

    ck_assert_int_eq(mqtt_hub_init(&h, SN), 0);
    a = mqtt_peer_new(10, -1);
    b = mqtt_peer_new(11, -1);
    mqtt_hub_add(&h, a);
    mqtt_hub_add(&h, b);
    mqtt_hub_ack(&h, 11, MQTT_PUBACK, 7);
    mqtt_hub_ack(&h, 99, MQTT_PUBACK, 8); /* gone: dropped */
    ck_assert(!readable(a->wake_fd));
    ck_assert(readable(b->wake_fd));
    mqtt_peer_take(b, got, qos, 1, acks, &nacks, &of);
    ck_assert_uint_eq(nacks, 1);
    ck_assert_uint_eq(acks[0].type, MQTT_PUBACK);
    ck_assert_uint_eq(acks[0].packet_id, 7);
    mqtt_peer_drain_wake(b);
    ck_assert(!readable(b->wake_fd));
    mqtt_hub_remove(&h, a);
    mqtt_hub_remove(&h, b);
    mqtt_hub_destroy(&h);
}
END_TEST

START_TEST(test_a_reused_client_id_takes_the_older_peer_over)
{
    struct mqtt_hub h;
    struct mqtt_peer *old, *anon1, *anon2, *again, *third;
    struct mqtt_msg *m, *got[2];
    struct mqtt_ack_out acks[PP_MQTT_CLIENT_ACKS];
    uint8_t qos[2];
    size_t nacks;
    bool closing;

    ck_assert_int_eq(mqtt_hub_init(&h, SN), 0);
    old = mqtt_peer_new(20, -1);
    anon1 = mqtt_peer_new(21, -1);
    anon2 = mqtt_peer_new(22, -1);
    mqtt_peer_set_client_id(old, "ha");
    mqtt_peer_set_client_id(anon1, ""); /* ids the proxy assigned never collide */
    mqtt_peer_set_client_id(anon2, "");
    ck_assert_uint_eq(mqtt_hub_add(&h, old), 0);
    ck_assert_uint_eq(mqtt_hub_add(&h, anon1), 0);
    ck_assert_uint_eq(mqtt_hub_add(&h, anon2), 0);
    mqtt_peer_subscribe(old, "#", 1, 0);
    again = mqtt_peer_new(23, -1);
    mqtt_peer_set_client_id(again, "ha");
    mqtt_peer_subscribe(again, "#", 1, 0);
    ck_assert_uint_eq(mqtt_hub_add(&h, again), 20);
    ck_assert_uint_eq(mqtt_peer_taken_over(old), 23);
    ck_assert_uint_eq(mqtt_peer_taken_over(again), 0);
    ck_assert_uint_eq(mqtt_peer_taken_over(anon1), 0);
    ck_assert(readable(old->wake_fd));
    /* The old peer gets nothing more and its worker is told to close. */
    m = msg("{}");
    ck_assert_uint_eq(mqtt_hub_publish(&h, m), 1);
    mqtt_msg_unref(m);
    ck_assert_uint_eq(mqtt_peer_take(old, got, qos, 2, acks, &nacks, &closing), 0);
    ck_assert(closing);
    ck_assert_uint_eq(mqtt_peer_take(again, got, qos, 2, acks, &nacks, &closing), 1);
    ck_assert(!closing);
    mqtt_msg_unref(got[0]);
    /* A third connection with the id takes over the live one, not the closing one. */
    third = mqtt_peer_new(24, -1);
    mqtt_peer_set_client_id(third, "ha");
    ck_assert_uint_eq(mqtt_hub_add(&h, third), 23);
    ck_assert_uint_eq(mqtt_peer_taken_over(old), 23);
    mqtt_hub_remove(&h, old);
    mqtt_hub_remove(&h, anon1);
    mqtt_hub_remove(&h, anon2);
    mqtt_hub_remove(&h, again);
    mqtt_hub_remove(&h, third);
    mqtt_hub_destroy(&h);
}
END_TEST

START_TEST(test_a_new_subscriber_gets_the_latest_report_at_once)
{
    struct mqtt_hub h;
    struct mqtt_peer *p, *q;
    struct mqtt_msg *a, *b, *got[2];
    struct mqtt_ack_out acks[PP_MQTT_CLIENT_ACKS];
    uint8_t qos[2];
    size_t nacks;
    bool closing;

    ck_assert_int_eq(mqtt_hub_init(&h, SN), 0);
    p = mqtt_peer_new(30, -1);
    mqtt_hub_add(&h, p);
    /* Nothing seen yet: nothing to give. */
    ck_assert_uint_eq(mqtt_hub_subscribe(&h, p, "device/+/request", 16, 0), 0);
    ck_assert(!readable(p->wake_fd));
    a = msg("{\"a\":1}");
    b = msg("{\"b\":2}");
    ck_assert_uint_eq(mqtt_hub_publish(&h, a), 0);
    ck_assert_uint_eq(mqtt_hub_publish(&h, b), 0);
    /* Only the latest, and only for the first filter that matches it. */
    ck_assert_uint_eq(mqtt_hub_subscribe(&h, p, REPORT, strlen(REPORT), 1), 1);
    ck_assert(readable(p->wake_fd));
    ck_assert_uint_eq(mqtt_hub_subscribe(&h, p, "#", 1, 0), 0);
    ck_assert_uint_eq(mqtt_peer_take(p, got, qos, 2, acks, &nacks, &closing), 1);
    ck_assert_ptr_eq(got[0], b);
    ck_assert_uint_eq(qos[0], 1);
    mqtt_msg_unref(got[0]);
    /* Once the printer session ended the latest report may be stale: none. */
    mqtt_hub_forget_last(&h);
    q = mqtt_peer_new(31, -1);
    mqtt_hub_add(&h, q);
    ck_assert_uint_eq(mqtt_hub_subscribe(&h, q, "#", 1, 0), 0);
    ck_assert_uint_eq(mqtt_peer_take(q, got, qos, 2, acks, &nacks, &closing), 0);
    mqtt_msg_unref(a);
    mqtt_msg_unref(b);
    mqtt_hub_remove(&h, p);
    mqtt_hub_remove(&h, q);
    mqtt_hub_destroy(&h);
}
END_TEST

START_TEST(test_request_queue_is_bounded_and_expires)
{
    struct mqtt_hub h;
    struct mqtt_req r;
    int i;

    ck_assert_int_eq(mqtt_hub_init(&h, SN), 0);
    ck_assert_str_eq(h.request_topic, "device/" SN "/request");
    for (i = 0; i < PP_MQTT_PENDING_REQUESTS; i++) {
        ck_assert(mqtt_hub_request(&h, 1, (uint16_t)(i + 1), 1, (const uint8_t *)"{}", 2));
    }
    ck_assert(!mqtt_hub_request(&h, 1, 999, 1, (const uint8_t *)"{}", 2));
    ck_assert(readable(h.req_fd));
    ck_assert(mqtt_hub_next_request(&h, &r));
    ck_assert_uint_eq(r.client_pid, 1); /* oldest first */
    ck_assert_mem_eq(r.payload, "{}", 2);
    free(r.payload);
    ck_assert_int_ge(mqtt_hub_next_expiry(&h, r.queued_ms, 10000), 0);
    ck_assert_uint_eq(mqtt_hub_expire_requests(&h, r.queued_ms, 10000), 0);
    ck_assert_uint_eq(mqtt_hub_expire_requests(&h, r.queued_ms + 60000, 10000),
                      PP_MQTT_PENDING_REQUESTS - 1);
    ck_assert(!mqtt_hub_next_request(&h, &r));
    ck_assert_int_eq(mqtt_hub_next_expiry(&h, 0, 10000), -1);
    mqtt_hub_request(&h, 1, 5, 0, (const uint8_t *)"{}", 2);
    mqtt_hub_destroy(&h); /* frees what is still queued */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mqtt_hub");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_msg_is_a_qos0_publish);
    tcase_add_test(tc, test_fanout_matches_filters_and_shares_one_message);
    tcase_add_test(tc, test_unsubscribe_drops_queued_and_future);
    tcase_add_test(tc, test_overflow_by_count_marks_the_peer_only);
    tcase_add_test(tc, test_overflow_by_bytes);
    tcase_add_test(tc, test_acks_reach_the_right_client);
    tcase_add_test(tc, test_a_reused_client_id_takes_the_older_peer_over);
    tcase_add_test(tc, test_a_new_subscriber_gets_the_latest_report_at_once);
    tcase_add_test(tc, test_request_queue_is_bounded_and_expires);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
