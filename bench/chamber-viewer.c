/* SPDX-License-Identifier: MIT */
/*
 * Benchmark client for bench/chamber: many chamber camera viewers in one process.
 *
 * The Python viewers this replaces spent more CPU decrypting than the proxy spent
 * encrypting, on the same two cores, so their queueing dominated the latency they
 * reported. Here one thread serves every connection with poll() and non-blocking
 * OpenSSL, the payload is decrypted into a scratch buffer and never copied again.
 *
 * Per frame, against the send time the simulator put in header bytes 8..15
 * (CLOCK_REALTIME microseconds, little-endian), two latencies:
 * - arrival: when the frame's last byte reached this socket (the kernel's receive
 *   timestamp, SO_TIMESTAMPNS, of the last segment read). It leaves out the time this
 *   process takes to decrypt the other viewers' frames first, which with 50 viewers
 *   in one process is milliseconds and is not the proxy's doing.
 * - read: when the frame was decrypted here (what an application would see).
 * Also counter gaps (bytes 4..7). Frames read inside [--start, --end) (epoch seconds)
 * are counted. Output, one line each:
 *   viewer I FRAMES MISSED         per connection
 *   arrival US US ...              every counted latency, microseconds, sorted
 *   read US US ...
 *
 * Usage: chamber-viewer --port P --viewers N --start EPOCH --end EPOCH [--host H] [--sni S]
 * The access code comes from $PP_CODE (never argv).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define HDR_LEN      16
#define AUTH_LEN     80
#define MAX_FRAME    (4u * 1024 * 1024)
#define SCRATCH      (256 * 1024)

struct view {
    int fd;
    SSL *ssl;
    uint8_t hdr[HDR_LEN];
    size_t hdr_got;
    uint32_t body_left;           /* 0: reading a header */
    uint32_t counter;
    uint64_t sent_us;
    bool have_counter;
    uint32_t last_counter;
    unsigned long frames, missed;
    uint64_t rx_us;               /* kernel receive time of the last segment read */
};

struct lats {
    uint32_t *v;
    size_t n, cap;
};

static uint8_t scratch[SCRATCH];
static BIO_METHOD *ts_method;

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int lats_add(struct lats *l, uint32_t us)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        uint32_t *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL) {
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = us;
    return 0;
}

/* ---- a socket BIO that keeps the kernel's receive timestamp --------------- */

static int ts_read(BIO *b, char *buf, int len)
{
    struct view *v = BIO_get_data(b);
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(struct timespec))];
    } cbuf;
    struct iovec iov = { .iov_base = buf, .iov_len = (size_t)len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cbuf,
                        .msg_controllen = sizeof(cbuf) };
    ssize_t r = recvmsg(v->fd, &m, 0);

    BIO_clear_retry_flags(b);
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            BIO_set_retry_read(b);
        }
        return -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;

            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            v->rx_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        }
    }
    return (int)r;
}

static int ts_write(BIO *b, const char *buf, int len)
{
    struct view *v = BIO_get_data(b);
    ssize_t r = send(v->fd, buf, (size_t)len, MSG_NOSIGNAL);

    BIO_clear_retry_flags(b);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        BIO_set_retry_write(b);
    }
    return (int)r;
}

static long ts_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int ts_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO *ts_bio(struct view *v)
{
    BIO *b;

    if (ts_method == NULL) {
        ts_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ts-socket");
        if (ts_method == NULL || BIO_meth_set_read(ts_method, ts_read) != 1 ||
            BIO_meth_set_write(ts_method, ts_write) != 1 ||
            BIO_meth_set_ctrl(ts_method, ts_ctrl) != 1 ||
            BIO_meth_set_create(ts_method, ts_create) != 1) {
            return NULL;
        }
    }
    b = BIO_new(ts_method);
    if (b != NULL) {
        BIO_set_data(b, v);
    }
    return b;
}

/* ---- viewers -------------------------------------------------------------- */

static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
    int fd, one = 1;

    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    }
    return fd;
}

/* Connect, handshake and authenticate (blocking), then switch to non-blocking. */
static int view_open(struct view *v, SSL_CTX *ctx, const char *host, const char *port,
                     const char *sni, const char *code)
{
    uint8_t auth[AUTH_LEN] = { 0x40, 0, 0, 0, 0, 0x30, 0, 0 };

    memset(v, 0, sizeof(*v));
    v->fd = tcp_connect(host, port);
    if (v->fd < 0) {
        return -1;
    }
    v->ssl = SSL_new(ctx);
    BIO *b = ts_bio(v);
    if (v->ssl == NULL || b == NULL) {
        return -1;
    }
    SSL_set_bio(v->ssl, b, b);
    SSL_set_tlsext_host_name(v->ssl, sni);
    if (SSL_connect(v->ssl) != 1) {
        return -1;
    }
    memcpy(auth + 16, "bblp", 4);
    memcpy(auth + 48, code, strnlen(code, 32));
    if (SSL_write(v->ssl, auth, sizeof(auth)) != (int)sizeof(auth)) {
        return -1;
    }
    return fcntl(v->fd, F_SETFL, fcntl(v->fd, F_GETFL) | O_NONBLOCK);
}

static uint32_t since(uint64_t t, uint64_t sent)
{
    return t > sent ? (uint32_t)(t - sent) : 0;
}

static void frame_done(struct view *v, uint64_t start_us, uint64_t end_us, struct lats l[2])
{
    uint64_t t = now_us();

    if (t < start_us || t >= end_us) {
        return;
    }
    if (v->have_counter && v->counter > v->last_counter + 1) {
        v->missed += v->counter - v->last_counter - 1;
    }
    v->have_counter = true;
    v->last_counter = v->counter;
    v->frames++;
    (void)lats_add(&l[0], since(v->rx_us ? v->rx_us : t, v->sent_us));
    (void)lats_add(&l[1], since(t, v->sent_us));
}

/* Read all that is readable now. 0 ok, -1 the connection failed. */
static int view_read(struct view *v, uint64_t start_us, uint64_t end_us, struct lats l[2])
{
    for (;;) {
        int r, e;

        ERR_clear_error();
        if (v->body_left == 0) {
            r = SSL_read(v->ssl, v->hdr + v->hdr_got, (int)(HDR_LEN - v->hdr_got));
        } else {
            r = SSL_read(v->ssl, scratch, v->body_left < SCRATCH ? (int)v->body_left : SCRATCH);
        }
        if (r <= 0) {
            e = SSL_get_error(v->ssl, r);
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        if (v->body_left == 0) {
            v->hdr_got += (size_t)r;
            if (v->hdr_got == HDR_LEN) {
                v->hdr_got = 0;
                v->body_left = le32(v->hdr);
                v->counter = le32(v->hdr + 4);
                v->sent_us = le64(v->hdr + 8);
                if (v->body_left == 0 || v->body_left > MAX_FRAME) {
                    return -1;
                }
            }
        } else {
            v->body_left -= (uint32_t)r;
            if (v->body_left == 0) {
                frame_done(v, start_us, end_us, l);
            }
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = NULL, *sni = "camera", *code = getenv("PP_CODE");
    double start = 0, end = 0;
    int n = 1, failed = 0;
    struct lats l[2] = { { 0 }, { 0 } };
    struct view *vs;
    struct pollfd *p;
    SSL_CTX *ctx;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0) {
            host = argv[i + 1];
        } else if (strcmp(argv[i], "--sni") == 0) {
            sni = argv[i + 1];
        } else if (strcmp(argv[i], "--port") == 0) {
            port = argv[i + 1];
        } else if (strcmp(argv[i], "--viewers") == 0) {
            n = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--start") == 0) {
            start = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--end") == 0) {
            end = atof(argv[i + 1]);
        }
    }
    if (port == NULL || code == NULL || n < 1 || end <= start) {
        fprintf(stderr, "usage: PP_CODE=... %s --port P --viewers N --start T --end T\n",
                argv[0]);
        return 2;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    vs = calloc((size_t)n, sizeof(*vs));
    p = calloc((size_t)n, sizeof(*p));
    if (ctx == NULL || vs == NULL || p == NULL) {
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    for (int i = 0; i < n; i++) {
        if (view_open(&vs[i], ctx, host, port, sni, code) != 0) {
            fprintf(stderr, "viewer %d: cannot connect and authenticate\n", i);
            return 1;
        }
        p[i] = (struct pollfd){ .fd = vs[i].fd, .events = POLLIN };
    }
    uint64_t start_us = (uint64_t)(start * 1e6), end_us = (uint64_t)(end * 1e6);
    while (now_us() < end_us) {
        int64_t left_ms = (int64_t)(end_us - now_us()) / 1000 + 1;
        int r = poll(p, (nfds_t)n, (int)left_ms);

        if (r < 0 && errno != EINTR) {
            return 1;
        }
        for (int i = 0; i < n && r > 0; i++) {
            /* SSL_pending never matters here: each call reads until WANT_READ. */
            if (p[i].revents != 0 && p[i].fd >= 0 && view_read(&vs[i], start_us, end_us, l) != 0) {
                fprintf(stderr, "viewer %d: connection lost\n", i);
                p[i].fd = -1;
                failed++;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        printf("viewer %d %lu %lu\n", i, vs[i].frames, vs[i].missed);
    }
    for (int k = 0; k < 2; k++) {
        qsort(l[k].v, l[k].n, sizeof(*l[k].v), cmp_u32);
        printf("%s", k == 0 ? "arrival" : "read");
        for (size_t i = 0; i < l[k].n; i++) {
            printf(" %u", l[k].v[i]);
        }
        printf("\n");
    }
    return failed ? 1 : 0;
}
