/* SPDX-License-Identifier: MIT */
/*
 * Draws the simulator's camera frames (seven-segment frame counter plus a bar
 * that moves every frame, so a viewer sees the stream is live) and encodes
 * them with libjpeg; pads with COM segments when asked for a fixed size.
 */
#include "jpeg_frame.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>      /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define RGB             3
#define SOI_LEN         2           /* FF D8 */
#define MARKER          0xFFu
#define M_SOI           0xD8u
#define M_APP0          0xE0u
#define M_COM           0xFEu
#define SEG_HDR         4           /* marker (2) + length (2) */
#define SEG_LEN_MAX     0xFFFFu     /* the length field counts itself */
#define COM_MAX_TOTAL   (2 + SEG_LEN_MAX)
#define MAX_DIGITS      10          /* "4294967295" */
#define BAR_STEPS       32          /* frames for the bar to cross the image */
#define FILLER_TEXT     "PandaProxy simulator padding. "

/* Seven-segment digits: bit 0..6 = segments a (top), b, c, d (bottom), e, f, g
 * (middle), clockwise from the top. */
static const uint8_t seg_digits[10] = {
    0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F,
};

enum { SEG_A, SEG_B, SEG_C, SEG_D, SEG_E, SEG_F, SEG_G, SEG_COUNT };

typedef struct {
    uint8_t *px;
    unsigned w, h;
} canvas;

typedef struct {
    uint8_t r, g, b;
} color;

static const color bg_top = { 24, 32, 48 };
static const color digit_fg = { 255, 214, 64 };
static const color bar_fg = { 64, 200, 255 };

const char *pp_jpeg_strerror(pp_jpeg_err err)
{
    switch (err) {
    case PP_JPEG_OK:     return "success";
    case PP_JPEG_EINVAL: return "invalid frame options";
    case PP_JPEG_ENOMEM: return "out of memory";
    case PP_JPEG_ELIB:   return "JPEG encoder failed";
    }
    return "unknown error";
}

/* ---- drawing ------------------------------------------------------------ */

static void fill_rect(canvas *c, long x, long y, long w, long h, color col)
{
    long x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    long x1 = x + w > (long)c->w ? (long)c->w : x + w;
    long y1 = y + h > (long)c->h ? (long)c->h : y + h;

    for (long yy = y0; yy < y1; yy++) {
        uint8_t *p = c->px + ((size_t)yy * c->w + (size_t)x0) * RGB;
        for (long xx = x0; xx < x1; xx++) {
            *p++ = col.r;
            *p++ = col.g;
            *p++ = col.b;
        }
    }
}

/* A vertical gradient, so the image is not flat and compresses like a photo
 * a little more than a solid colour would. */
static void draw_background(canvas *c)
{
    for (unsigned y = 0; y < c->h; y++) {
        color col = bg_top;
        col.b = (uint8_t)(bg_top.b + (y * 64u) / c->h);
        fill_rect(c, 0, y, c->w, 1, col);
    }
}

static void draw_bar(canvas *c, uint32_t counter)
{
    long bw = c->w / 16 + 1;
    long x = (long)((uint64_t)(counter % BAR_STEPS) * c->w / BAR_STEPS);

    fill_rect(c, x, 0, bw, c->h, bar_fg);
}

/* Digit cell at (x, y), w x h, stroke t. */
static void draw_digit(canvas *c, long x, long y, long w, long h, long t, unsigned d)
{
    const long half = h / 2;
    const long r[SEG_COUNT][4] = {
        [SEG_A] = { x, y, w, t },
        [SEG_B] = { x + w - t, y, t, half },
        [SEG_C] = { x + w - t, y + half, t, h - half },
        [SEG_D] = { x, y + h - t, w, t },
        [SEG_E] = { x, y + half, t, h - half },
        [SEG_F] = { x, y, t, half },
        [SEG_G] = { x, y + half - t / 2, w, t },
    };

    for (unsigned s = 0; s < SEG_COUNT; s++) {
        if (seg_digits[d] & (1u << s)) {
            fill_rect(c, r[s][0], r[s][1], r[s][2], r[s][3], digit_fg);
        }
    }
}

/* The counter in decimal, centred, as large as fits: digits are h/2 wide with a
 * quarter-width gap, scaled down when the number is long. */
static void draw_counter(canvas *c, uint32_t counter)
{
    char txt[MAX_DIGITS + 1];
    int n = snprintf(txt, sizeof(txt), "%u", (unsigned)counter);
    long dh = c->h / 2, dw, gap, t, total, x;

    if (n <= 0 || n > MAX_DIGITS) {
        return;
    }
    dw = dh / 2;
    gap = dw / 4 + 1;
    total = n * dw + (n - 1) * gap;
    if (total > (long)c->w * 9 / 10) {
        dw = ((long)c->w * 9 / 10) / (n + (n - 1) / 4 + 1);
        dh = dw * 2;
        gap = dw / 4 + 1;
        total = n * dw + (n - 1) * gap;
    }
    if (dh > (long)c->h / 2) {
        dh = (long)c->h / 2;
    }
    t = dh / 8 + 1;
    x = ((long)c->w - total) / 2;
    for (int i = 0; i < n; i++) {
        draw_digit(c, x + i * (dw + gap), ((long)c->h - dh) / 2, dw, dh, t,
                   (unsigned)(txt[i] - '0'));
    }
}

/* ---- encoding ----------------------------------------------------------- */

/* Everything libjpeg touches lives behind a pointer, so nothing the function
 * containing setjmp() owns changes between setjmp and longjmp. */
typedef struct {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    jmp_buf jb;
    unsigned char *mem;
    unsigned long mem_len;
} enc_ctx;

static void on_jpeg_error(j_common_ptr cinfo)
{
    enc_ctx *x = cinfo->client_data;

    longjmp(x->jb, 1);
}

/* libjpeg prints warnings to stderr by default; the simulator stays quiet. */
static void on_jpeg_message(j_common_ptr cinfo)
{
    (void)cinfo;
}

static bool encode_rgb(enc_ctx *x, const canvas *c, int quality)
{
    if (setjmp(x->jb) != 0) {
        return false;
    }
    jpeg_create_compress(&x->cinfo);
    x->cinfo.client_data = x;
    jpeg_mem_dest(&x->cinfo, &x->mem, &x->mem_len);
    x->cinfo.image_width = c->w;
    x->cinfo.image_height = c->h;
    x->cinfo.input_components = RGB;
    x->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&x->cinfo);
    jpeg_set_quality(&x->cinfo, quality, TRUE);
    x->cinfo.write_JFIF_header = TRUE;
    jpeg_start_compress(&x->cinfo, TRUE);
    while (x->cinfo.next_scanline < x->cinfo.image_height) {
        JSAMPROW row = c->px + (size_t)x->cinfo.next_scanline * c->w * RGB;
        jpeg_write_scanlines(&x->cinfo, &row, 1);
    }
    jpeg_finish_compress(&x->cinfo);
    return true;
}

static pp_jpeg_err encode(const canvas *c, int quality, uint8_t **out, size_t *out_len)
{
    enc_ctx *x = calloc(1, sizeof(*x));
    bool ok;

    if (x == NULL) {
        return PP_JPEG_ENOMEM;
    }
    x->cinfo.err = jpeg_std_error(&x->jerr);
    x->jerr.error_exit = on_jpeg_error;
    x->jerr.output_message = on_jpeg_message;
    x->cinfo.client_data = x;
    ok = encode_rgb(x, c, quality);
    jpeg_destroy_compress(&x->cinfo);
    if (!ok) {
        free(x->mem);
        free(x);
        return PP_JPEG_ELIB;
    }
    *out = x->mem;
    *out_len = x->mem_len;
    free(x);
    return PP_JPEG_OK;
}

/* ---- padding ------------------------------------------------------------ */

static void write_com(uint8_t *p, size_t total)
{
    static const char filler[] = FILLER_TEXT;
    size_t len = total - 2;

    p[0] = MARKER;
    p[1] = M_COM;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    for (size_t i = 0; i < total - SEG_HDR; i++) {
        p[SEG_HDR + i] = (uint8_t)filler[i % (sizeof(filler) - 1)];
    }
}

/* Fills exactly `extra` bytes: COM segments of 4..65537 bytes, split so no
 * remainder below a segment's minimum is left; 1..3 bytes, too few for any
 * segment, become FF fill bytes, which JPEG allows before any marker. */
static void write_padding(uint8_t *p, size_t extra)
{
    while (extra >= SEG_HDR) {
        size_t seg = extra < COM_MAX_TOTAL ? extra : COM_MAX_TOTAL;
        if (extra - seg > 0 && extra - seg < SEG_HDR) {
            seg -= SEG_HDR;
        }
        write_com(p, seg);
        p += seg;
        extra -= seg;
    }
    memset(p, MARKER, extra);
}

/* Length of SOI + APP0, or 0 when the encoder's output does not start so. */
static size_t jfif_prefix_len(const uint8_t *j, size_t n)
{
    size_t app0;

    if (n < SOI_LEN + SEG_HDR || j[0] != MARKER || j[1] != M_SOI || j[2] != MARKER ||
        j[3] != M_APP0) {
        return 0;
    }
    app0 = 2 + ((size_t)j[4] << 8 | j[5]);
    return SOI_LEN + app0 <= n ? SOI_LEN + app0 : 0;
}

static pp_jpeg_err pad(uint8_t **jpg, size_t *len, size_t target)
{
    size_t head = jfif_prefix_len(*jpg, *len);
    uint8_t *p;

    if (head == 0) {
        return PP_JPEG_ELIB;
    }
    if (target <= *len) {
        return PP_JPEG_OK;
    }
    p = malloc(target);
    if (p == NULL) {
        return PP_JPEG_ENOMEM;
    }
    memcpy(p, *jpg, head);
    write_padding(p + head, target - *len);
    memcpy(p + head + (target - *len), *jpg + head, *len - head);
    free(*jpg);
    *jpg = p;
    *len = target;
    return PP_JPEG_OK;
}

/* ---- entry point -------------------------------------------------------- */

static bool opts_ok(const pp_jpeg_opts *o)
{
    return o->width >= PP_JPEG_MIN_DIM && o->width <= PP_JPEG_MAX_DIM &&
           o->height >= PP_JPEG_MIN_DIM && o->height <= PP_JPEG_MAX_DIM &&
           o->quality <= PP_JPEG_MAX_QUALITY && o->pad_to <= PP_JPEG_MAX_PAD;
}

pp_jpeg_err pp_jpeg_frame_render(const pp_jpeg_opts *opts, uint32_t counter, uint8_t **out,
                                 size_t *out_len)
{
    canvas c;
    uint8_t *jpg = NULL;
    size_t len = 0;
    pp_jpeg_err err;
    int quality;

    if (opts == NULL || out == NULL || out_len == NULL || !opts_ok(opts)) {
        return PP_JPEG_EINVAL;
    }
    quality = (int)(opts->quality == 0 ? PP_JPEG_DEFAULT_QUALITY : opts->quality);
    c.w = opts->width;
    c.h = opts->height;
    c.px = malloc((size_t)c.w * c.h * RGB);
    if (c.px == NULL) {
        return PP_JPEG_ENOMEM;
    }
    draw_background(&c);
    draw_bar(&c, counter);
    draw_counter(&c, counter);
    err = encode(&c, quality, &jpg, &len);
    free(c.px);
    if (err == PP_JPEG_OK) {
        err = pad(&jpg, &len, opts->pad_to);
    }
    if (err != PP_JPEG_OK) {
        free(jpg);
        return err;
    }
    *out = jpg;
    *out_len = len;
    return PP_JPEG_OK;
}
