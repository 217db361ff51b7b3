/* SPDX-License-Identifier: MIT */
/*
 * The MQTT fan-out hub: the state shared between the one upstream thread (the
 * printer session) and the client workers. Reports travel upstream -> clients as
 * reference-counted messages through each client's bounded queue plus a wake fd;
 * requests travel clients -> upstream through one bounded queue plus a wake fd, and
 * the printer's PUBACKs come back as per-client acks. No SSL* lives here: every
 * connection stays owned by its thread, and nothing here ever blocks on a client.
 */
#ifndef PP_MQTT_HUB_H
#define PP_MQTT_HUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/* An immutable report, shared by every client queue that holds it. */
struct mqtt_msg {
    atomic_uint refs;
    size_t pkt_len;          /* the QoS 0 PUBLISH packet, ready to write */
    const char *topic;       /* into pkt */
    size_t topic_len;
    const uint8_t *payload;  /* into pkt */
    size_t payload_len;
    uint8_t pkt[];
};

/* A QoS 0 PUBLISH packet for topic/payload with one reference, or NULL. */
struct mqtt_msg *mqtt_msg_new(const char *topic, size_t topic_len, const uint8_t *payload,
                              size_t payload_len);
void mqtt_msg_ref(struct mqtt_msg *m);
void mqtt_msg_unref(struct mqtt_msg *m);

/* An acknowledgement owed to a client once the printer acknowledged its request. */
struct mqtt_ack_out {
    uint8_t type;            /* MQTT_PUBACK (QoS 1) or MQTT_PUBREC (QoS 2) */
    uint16_t packet_id;
};

struct mqtt_sub {
    char *filter;            /* malloc'd, not NUL-terminated */
    size_t len;
    uint8_t qos;             /* granted */
};

/* One connected client as the hub sees it. All fields below lock need lock. */
struct mqtt_peer {
    unsigned long id;        /* the connection id: how acks find the client */
    int fd;                  /* the client socket: shut down on overflow, never read */
    int wake_fd;             /* eventfd: readable when there is work for the worker */
    pthread_mutex_t lock;
    struct mqtt_sub subs[PP_MQTT_MAX_SUBS];
    size_t nsubs;
    struct mqtt_msg *q[PP_MQTT_QUEUE_MSGS];  /* ring of outgoing reports */
    size_t q_head, q_count, q_bytes;
    struct mqtt_ack_out acks[PP_MQTT_CLIENT_ACKS];
    size_t a_head, a_count;
    bool overflow;           /* fell behind: the worker must close */
    size_t overflow_msgs, overflow_bytes;
    unsigned long taken_over_by;  /* a newer connection with this client id, 0: none */
    uint64_t dropped_acks;
    bool notify;             /* fan-out scratch: under hub lock */
    struct mqtt_peer *prev, *next;  /* hub list, under hub lock */
    /* The client's own id ("" when the proxy assigned one); set before mqtt_hub_add. */
    char client_id[PP_MQTT_MAX_CLIENT_ID + 1];
};

/* A client request waiting for (or in flight to) the printer. */
struct mqtt_req {
    unsigned long client_id;
    uint16_t client_pid;     /* the client's packet id, 0 for QoS 0 */
    uint8_t qos;             /* as the client sent it */
    int64_t queued_ms;
    uint8_t *payload;
    size_t payload_len;
};

struct mqtt_hub {
    pthread_mutex_t lock;
    pthread_cond_t empty;            /* peers list became empty */
    struct mqtt_peer *peers;
    size_t npeers;
    bool upstream_up;                /* printer session established */
    struct mqtt_msg *last;           /* the latest report, for new subscribers */
    /* requests: clients -> upstream */
    struct mqtt_req reqs[PP_MQTT_PENDING_REQUESTS];
    size_t r_head, r_count;
    int req_fd;                      /* eventfd: readable when a request was queued */
    char request_topic[PP_MQTT_MAX_TOPIC];
    char report_topic[PP_MQTT_MAX_TOPIC];
};

int mqtt_hub_init(struct mqtt_hub *h, const char *serial);
/* Only once no peer is left. */
void mqtt_hub_destroy(struct mqtt_hub *h);

/* ---- peers (client workers) ------------------------------------------- */
struct mqtt_peer *mqtt_peer_new(unsigned long id, int fd);
/* The id the client chose (truncated to the limit); "" for one the proxy assigned. */
void mqtt_peer_set_client_id(struct mqtt_peer *p, const char *client_id);
/*
 * Link p. MQTT 3.1.1 section 3.1.4: a client id already in use by another peer means
 * that client reconnected (Home Assistant after a network blip), so the older peer is
 * taken over: marked, its socket shut down and its worker woken to close. Returns the
 * connection id of the peer taken over, 0 if none. Ids the proxy assigned never match.
 */
unsigned long mqtt_hub_add(struct mqtt_hub *h, struct mqtt_peer *p);
/* Unlink (after which no one else touches p) and free p with its queue. */
void mqtt_hub_remove(struct mqtt_hub *h, struct mqtt_peer *p);
/* Wait (bounded) until every peer left; false on timeout. */
bool mqtt_hub_wait_empty(struct mqtt_hub *h, int64_t timeout_ms);

/* Add or replace a filter; returns the granted QoS or MQTT_SUBACK_FAILURE. */
uint8_t mqtt_peer_subscribe(struct mqtt_peer *p, const char *filter, size_t len, uint8_t qos);
/*
 * mqtt_peer_subscribe for a linked peer, which also queues the latest report if the new
 * filter is the first of the peer's to match it: a new subscriber sees the printer's
 * state at once instead of at the next report.
 */
uint8_t mqtt_hub_subscribe(struct mqtt_hub *h, struct mqtt_peer *p, const char *filter,
                           size_t len, uint8_t qos);
void mqtt_peer_unsubscribe(struct mqtt_peer *p, const char *filter, size_t len);
/* Empty the wake fd (the worker, after poll said it is readable). */
void mqtt_peer_drain_wake(struct mqtt_peer *p);

/*
 * Take what is queued for the worker: up to max messages (each with its granted QoS,
 * the caller now owns the reference) and every pending ack. Returns the message count.
 * *closing: the worker must close (the client fell behind or was taken over).
 */
size_t mqtt_peer_take(struct mqtt_peer *p, struct mqtt_msg **msgs, uint8_t *qos, size_t max,
                      struct mqtt_ack_out *acks, size_t *nacks, bool *closing);

/* ---- fan-out (upstream thread) ---------------------------------------- */
/*
 * Queue m for every peer whose filters match its topic. Never blocks: a peer whose
 * queue is full is marked overflowed, its socket shut down and its worker woken.
 * Returns the number of peers that received it.
 */
size_t mqtt_hub_publish(struct mqtt_hub *h, struct mqtt_msg *m);
/* Did the peer fall behind? With the queue it had then. */
bool mqtt_peer_overflowed(struct mqtt_peer *p, size_t *msgs, size_t *bytes);
/* The connection that took this peer's client id over, 0 if none. */
unsigned long mqtt_peer_taken_over(struct mqtt_peer *p);
/* Forget the latest report (the printer session ended: it may be stale). */
void mqtt_hub_forget_last(struct mqtt_hub *h);
/* Hand an ack to client id (dropped if it is gone). */
void mqtt_hub_ack(struct mqtt_hub *h, unsigned long client_id, uint8_t type, uint16_t pid);

/* ---- requests (client workers -> upstream) ----------------------------- */
/* Copy a request into the queue; false when it is full (the caller logs). */
bool mqtt_hub_request(struct mqtt_hub *h, unsigned long client_id, uint16_t client_pid,
                      uint8_t qos, const uint8_t *payload, size_t len);
/* The oldest request (ownership moves to the caller; free payload), false if none. */
bool mqtt_hub_next_request(struct mqtt_hub *h, struct mqtt_req *out);
/* Drop requests older than max_age_ms; returns how many were dropped. */
size_t mqtt_hub_expire_requests(struct mqtt_hub *h, int64_t now_ms, int64_t max_age_ms);
/* Milliseconds until the oldest request expires (-1 if none). */
int64_t mqtt_hub_next_expiry(struct mqtt_hub *h, int64_t now_ms, int64_t max_age_ms);
void mqtt_hub_drain_req_wake(struct mqtt_hub *h);
void mqtt_hub_set_upstream(struct mqtt_hub *h, bool up);
bool mqtt_hub_upstream(struct mqtt_hub *h);

#endif
