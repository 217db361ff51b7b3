/* SPDX-License-Identifier: MIT */
/* Time, cancellable sleeps, constant-time compares and atomic file writes. */
#include "autoconf.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

int64_t pp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool pp_sleep(int64_t ms, int cancel_fd)
{
    int64_t end = pp_now_ms() + ms;

    for (;;) {
        int64_t left = end - pp_now_ms();
        struct pollfd p = { .fd = cancel_fd, .events = POLLIN };
        int r;

        if (left <= 0) {
            return true;
        }
        r = poll(&p, cancel_fd >= 0 ? 1 : 0, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0) {
            return false;
        }
    }
}

bool pp_secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    /* Compare against b's length so the time does not reveal a prefix match. */
    unsigned char diff = (unsigned char)(la != lb);
    char *tmp = calloc(lb + 1, 1);

    if (tmp == NULL) {
        return false;
    }
    memcpy(tmp, a, la < lb ? la : lb);
    diff |= (unsigned char)(CRYPTO_memcmp(tmp, b, lb) != 0);
    pp_wipe(tmp, lb + 1);
    free(tmp);
    return diff == 0;
}

void pp_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

int pp_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         bool exclusive)
{
    char tmp[PATH_MAX];
    int fd;
    int rc = -1;
    int saved;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.XXXXXX", path, (long)getpid()) >=
        sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        return -1;
    }
    if (fchmod(fd, (mode_t)mode) != 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
        goto out;
    }
    /* link() fails with EEXIST when another writer won the race; rename() replaces. */
    rc = exclusive ? link(tmp, path) : rename(tmp, path);
out:
    saved = errno;
    close(fd);
    unlink(tmp);
    errno = saved;
    return rc;
}

int pp_read_file(const char *path, char **out, size_t *len, size_t max)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL) {
        return -1;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        errno = ENOMEM;
        return -1;
    }
    n = fread(buf, 1, max, f);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        errno = EIO;
        return -1;
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    if (len) {
        *len = n;
    }
    return 0;
}

int pp_mkdir_p(const char *path, unsigned mode)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST) {
        return -1;
    }
    return 0;
}
