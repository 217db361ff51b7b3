/* SPDX-License-Identifier: MIT */
/*
 * Test-pattern JPEG frames for the printer simulator's chamber camera: a big
 * frame counter and a moving bar, encoded as baseline JFIF, optionally padded
 * to a fixed size for benchmarks.
 */
#ifndef PP_SIM_JPEG_FRAME_H
#define PP_SIM_JPEG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "../limits.h"

/* Image size bounds: below 16 px the digits are unreadable; 4096 px keeps the
 * RGB scratch buffer under 48 MiB. */
#define PP_JPEG_MIN_DIM          16u
#define PP_JPEG_MAX_DIM          4096u
#define PP_JPEG_DEFAULT_QUALITY  80u
#define PP_JPEG_MAX_QUALITY      100u

/* Padding never exceeds what the chamber stream may carry in one frame. */
#define PP_JPEG_MAX_PAD          ((size_t)PP_CHAMBER_MAX_FRAME)

typedef struct {
    unsigned width;      /* PP_JPEG_MIN_DIM..PP_JPEG_MAX_DIM */
    unsigned height;     /* PP_JPEG_MIN_DIM..PP_JPEG_MAX_DIM */
    unsigned quality;    /* 1..100; 0 means PP_JPEG_DEFAULT_QUALITY */
    size_t pad_to;       /* 0: natural size; else exact total size, filled
                            with COM segments after APP0 (ignored when the
                            natural size is already larger) */
} pp_jpeg_opts;

typedef enum {
    PP_JPEG_OK = 0,
    PP_JPEG_EINVAL,      /* bad size, quality or padding target */
    PP_JPEG_ENOMEM,      /* allocation failed */
    PP_JPEG_ELIB         /* libjpeg reported an error or odd output */
} pp_jpeg_err;

const char *pp_jpeg_strerror(pp_jpeg_err err);

/* Renders frame number `counter` into a malloc'd buffer (*out, free() it) of
 * *out_len bytes. The file starts FF D8 FF E0 (JFIF APP0) and ends FF D9. The
 * same options and counter always give the same bytes. */
pp_jpeg_err pp_jpeg_frame_render(const pp_jpeg_opts *opts, uint32_t counter, uint8_t **out,
                                 size_t *out_len);

#endif
