/* SPDX-License-Identifier: MIT */
/*
 * "TLS floor" sender for bench/chamber: the least a user-space TLS server can do to
 * send chamber camera frames to N viewers, with no proxy around it.
 *
 * It does per frame and viewer what the proxy's viewer threads do (src/svc_chamber.c,
 * src/tls.c, src/identity.c): TLS 1.3 with the proxy's cipher preference
 * (AES-128-GCM first), blocking sockets with TCP_NODELAY, TCP_CORK set around two
 * SSL_write calls, the 16-byte header alone in its record and then the payload. It
 * has no printer connection, no frame queue, no auth check and no logging: the
 * payload is one static buffer, and the header is the simulator's (bytes 0..3
 * payload length, 4..7 frame counter, 8..15 CLOCK_REALTIME microseconds, all
 * little-endian), stamped once per frame just before the senders are woken, so the
 * viewer (bench/chamber-viewer.c) measures what it does for the simulator: from
 * "frame available" to "last byte at the viewer's socket".
 *
 * Sending model (--threads T): a ticker thread stamps the header every 1000/F ms
 * (whole ms, like the simulator) and wakes T sender threads through one eventfd
 * each; sender i serves viewers i, i+T, ... in turn. T = 0 (the default) is one
 * thread per viewer, as in the proxy. A sender still busy when a tick comes sends
 * only the newest frame (the viewers count the gap).
 *
 * Two knobs for experiments, off the proxy's path: --cork 0 leaves TCP_CORK out,
 * --sndbuf BYTES sets SO_SNDBUF (the proxy leaves it to the kernel's autotuning).
 *
 * Usage: chamber-floor --viewers N [--fps F] [--size BYTES] [--threads T] [--cork 0|1]
 *                      [--sndbuf BYTES]
 * Prints "port P" once listening on 127.0.0.1, accepts N viewers (each sends its
 * 80-byte auth packet, not checked), streams, and exits once every viewer is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define HDR_LEN        16
#define AUTH_LEN       80
#define SEND_TIMEOUT_S 10
#define MAX_VIEWERS    4096

/* The proxy's server preference (src/identity.c). */
static const char suites_tls13[] =
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";

struct viewer {
    int fd;
    SSL *ssl;
    bool gone;
};

struct sender {
    pthread_t tid;
    int wake;                     /* eventfd: a new frame */
    int first, step;              /* viewers first, first + step, ... */
};

static bool cork = true;           /* --cork 0: no TCP_CORK */
static int sndbuf;                 /* --sndbuf: SO_SNDBUF, 0 the kernel's autotuning */
static struct viewer *viewers;
static int nviewers;
static atomic_int alive;
static uint8_t *payload;
static uint32_t payload_len;
static pthread_mutex_t hdr_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t hdr_cur[HDR_LEN];   /* under hdr_lock */

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* A throwaway P-256 key (the proxy's key type) and a self-signed certificate. */
static SSL_CTX *server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();

    if (ctx == NULL || key == NULL || x == NULL) {
        return NULL;
    }
    /* tls_ctx_harden + identity_server_ctx */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"chamber-floor", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (X509_set_pubkey(x, key) != 1 || X509_sign(x, key, EVP_sha256()) == 0 ||
        SSL_CTX_set_ciphersuites(ctx, suites_tls13) != 1 ||
        SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        return NULL;
    }
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

static int listen_local(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(fd, MAX_VIEWERS) != 0 || getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Accept, tune the socket as the proxy does (net_tune, net_set_timeouts), handshake,
 * read the auth packet. */
static int viewer_accept(struct viewer *v, int lfd, SSL_CTX *ctx)
{
    struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };
    uint8_t auth[AUTH_LEN];
    int one = 1, got = 0;

    v->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (v->fd < 0) {
        return -1;
    }
    (void)setsockopt(v->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(v->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void)setsockopt(v->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (sndbuf > 0) {
        (void)setsockopt(v->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    v->ssl = SSL_new(ctx);
    if (v->ssl == NULL || SSL_set_fd(v->ssl, v->fd) != 1 || SSL_accept(v->ssl) != 1) {
        return -1;
    }
    while (got < AUTH_LEN) {
        int r = SSL_read(v->ssl, auth + got, AUTH_LEN - got);

        if (r <= 0) {
            return -1;
        }
        got += r;
    }
    return 0;
}

/* One frame to one viewer, as svc_chamber.c's viewer_send does (conn_write each). */
static bool tls_write(SSL *ssl, const void *buf, int len)
{
    ERR_clear_error();
    return SSL_write(ssl, buf, len) == len;
}

static int viewer_send(struct viewer *v, const uint8_t *hdr)
{
    int on = 1, off = 0, r;

    if (cork) {
        (void)setsockopt(v->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
    }
    r = tls_write(v->ssl, hdr, HDR_LEN) && tls_write(v->ssl, payload, (int)payload_len) ? 0 : -1;
    if (cork) {
        (void)setsockopt(v->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
    }
    return r;
}

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    uint8_t hdr[HDR_LEN];
    uint64_t n;

    while (atomic_load(&alive) > 0 && read(s->wake, &n, sizeof(n)) == (ssize_t)sizeof(n)) {
        pthread_mutex_lock(&hdr_lock);
        memcpy(hdr, hdr_cur, HDR_LEN);
        pthread_mutex_unlock(&hdr_lock);
        for (int i = s->first; i < nviewers; i += s->step) {
            struct viewer *v = &viewers[i];

            if (!v->gone && viewer_send(v, hdr) != 0) {
                v->gone = true;
                atomic_fetch_sub(&alive, 1);
            }
        }
    }
    return NULL;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int main(int argc, char **argv)
{
    double fps = 30;
    long size = 204800;
    int nthreads = 0, lfd, port = 0;
    struct sender *ss;
    SSL_CTX *ctx;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--viewers") == 0) {
            nviewers = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--fps") == 0) {
            fps = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--size") == 0) {
            size = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--threads") == 0) {
            nthreads = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--cork") == 0) {
            cork = atoi(argv[i + 1]) != 0;
        } else if (strcmp(argv[i], "--sndbuf") == 0) {
            sndbuf = atoi(argv[i + 1]);
        }
    }
    if (nviewers < 1 || nviewers > MAX_VIEWERS || fps <= 0 || fps > 1000 || size < 1 ||
        size > 64L * 1024 * 1024 || nthreads < 0) {
        fprintf(stderr, "usage: %s --viewers N [--fps F] [--size BYTES] [--threads T]\n",
                argv[0]);
        return 2;
    }
    if (nthreads == 0 || nthreads > nviewers) {
        nthreads = nviewers;
    }
    signal(SIGPIPE, SIG_IGN);
    payload_len = (uint32_t)size;
    payload = malloc(payload_len);
    viewers = calloc((size_t)nviewers, sizeof(*viewers));
    ss = calloc((size_t)nthreads, sizeof(*ss));
    ctx = server_ctx();
    lfd = listen_local(&port);
    if (payload == NULL || viewers == NULL || ss == NULL || ctx == NULL || lfd < 0) {
        fprintf(stderr, "chamber-floor: cannot set up\n");
        return 1;
    }
    for (uint32_t i = 0; i < payload_len; i++) {
        payload[i] = (uint8_t)(i * 131u + 7u);
    }
    printf("port %d\n", port);
    fflush(stdout);
    for (int i = 0; i < nviewers; i++) {
        if (viewer_accept(&viewers[i], lfd, ctx) != 0) {
            fprintf(stderr, "chamber-floor: viewer %d failed to connect\n", i);
            return 1;
        }
    }
    close(lfd);
    atomic_store(&alive, nviewers);
    for (int i = 0; i < nthreads; i++) {
        ss[i] = (struct sender){ .wake = eventfd(0, EFD_CLOEXEC), .first = i,
                                 .step = nthreads };
        if (ss[i].wake < 0 || pthread_create(&ss[i].tid, NULL, sender_main, &ss[i]) != 0) {
            fprintf(stderr, "chamber-floor: cannot start sender %d\n", i);
            return 1;
        }
    }
    /* The ticker: the simulator's schedule (whole-ms period, no burst after a delay). */
    int64_t period = (int64_t)(1000.0 / fps), next = mono_ms();
    uint32_t counter = 0;
    while (atomic_load(&alive) > 0) {
        uint64_t one = 1;

        pthread_mutex_lock(&hdr_lock);
        put_le(hdr_cur, payload_len, 4);
        put_le(hdr_cur + 4, counter++, 4);
        put_le(hdr_cur + 8, now_us(), 8);
        pthread_mutex_unlock(&hdr_lock);
        for (int i = 0; i < nthreads; i++) {
            (void)!write(ss[i].wake, &one, sizeof(one));
        }
        next += period;
        if (next < mono_ms()) {
            next = mono_ms();
        }
        sleep_ms(next - mono_ms());
    }
    /* Wake the senders so they see alive == 0 and return. */
    for (int i = 0; i < nthreads; i++) {
        uint64_t one = 1;

        (void)!write(ss[i].wake, &one, sizeof(one));
        pthread_join(ss[i].tid, NULL);
    }
    return 0;
}
