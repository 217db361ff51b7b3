/* SPDX-License-Identifier: MIT */
/*
 * A bounded, growable byte buffer: every protocol reader keeps its bytes in one, so
 * no input can make a buffer grow past the limit its owner chose.
 */
#ifndef PP_BUF_H
#define PP_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len;   /* bytes held */
    size_t cap;   /* bytes allocated */
    size_t max;   /* cap never grows past this */
};

/* Returns 0, or -1 (ENOMEM) */
int buf_init(struct buf *b, size_t initial, size_t max);
void buf_free(struct buf *b);
/* Make room for n more bytes; -1 with errno EMSGSIZE past max, ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n);
/* Drop the first n bytes (n > len drops all). */
void buf_consume(struct buf *b, size_t n);
/* Free space after the data (after buf_reserve). */
static inline uint8_t *buf_tail(struct buf *b)
{
    return b->data + b->len;
}
static inline size_t buf_room(const struct buf *b)
{
    return b->cap - b->len;
}
static inline void buf_clear(struct buf *b)
{
    b->len = 0;
}

#endif
