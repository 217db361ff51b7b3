/* SPDX-License-Identifier: MIT */
/* The bounded byte buffer. */
#include "autoconf.h"

#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int buf_init(struct buf *b, size_t initial, size_t max)
{
    memset(b, 0, sizeof(*b));
    if (initial > max) {
        initial = max;
    }
    b->max = max;
    if (initial > 0) {
        b->data = malloc(initial);
        if (b->data == NULL) {
            return -1;
        }
        b->cap = initial;
    }
    return 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int buf_reserve(struct buf *b, size_t n)
{
    size_t want;
    uint8_t *p;

    if (n <= b->cap - b->len) {
        return 0;
    }
    if (n > b->max - b->len) {
        errno = EMSGSIZE;
        return -1;
    }
    want = b->cap ? b->cap : 256;
    while (want - b->len < n) {
        want = (want > b->max / 2) ? b->max : want * 2;
    }
    p = realloc(b->data, want);
    if (p == NULL) {
        errno = ENOMEM;
        return -1;
    }
    b->data = p;
    b->cap = want;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (buf_reserve(b, n) != 0) {
        return -1;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
