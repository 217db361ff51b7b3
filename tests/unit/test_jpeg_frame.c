/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the simulator's JPEG frames: each frame decodes with libjpeg
 * without warnings, has the asked size and JFIF markers, shows its counter,
 * and pads to an exact byte count.
 */
#include "src/sim/jpeg_frame.h"

#include <check.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "unit.h"

typedef struct {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    jmp_buf jb;
    uint8_t *px;
} dec_ctx;

typedef struct {
    unsigned w, h, comps;
    long warnings;
    uint8_t *px;        /* RGB, malloc'd */
} decoded;

static void dec_error(j_common_ptr cinfo)
{
    dec_ctx *x = cinfo->client_data;

    longjmp(x->jb, 1);
}

static void dec_quiet(j_common_ptr cinfo)
{
    (void)cinfo;
}

static bool dec_run(dec_ctx *x, const uint8_t *jpg, size_t len, decoded *d)
{
    if (setjmp(x->jb) != 0) {
        return false;
    }
    jpeg_create_decompress(&x->cinfo);
    x->cinfo.client_data = x;
    jpeg_mem_src(&x->cinfo, jpg, (unsigned long)len);
    jpeg_read_header(&x->cinfo, TRUE);
    x->cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&x->cinfo);
    d->w = x->cinfo.output_width;
    d->h = x->cinfo.output_height;
    d->comps = (unsigned)x->cinfo.output_components;
    x->px = malloc((size_t)d->w * d->h * d->comps);
    ck_assert_ptr_nonnull(x->px);
    while (x->cinfo.output_scanline < x->cinfo.output_height) {
        JSAMPROW row = x->px + (size_t)x->cinfo.output_scanline * d->w * d->comps;
        jpeg_read_scanlines(&x->cinfo, &row, 1);
    }
    jpeg_finish_decompress(&x->cinfo);
    d->warnings = x->jerr.num_warnings;
    return true;
}

static bool decode(const uint8_t *jpg, size_t len, decoded *d)
{
    dec_ctx *x = calloc(1, sizeof(*x));
    bool ok;

    ck_assert_ptr_nonnull(x);
    x->cinfo.err = jpeg_std_error(&x->jerr);
    x->jerr.error_exit = dec_error;
    x->jerr.output_message = dec_quiet;
    x->cinfo.client_data = x;
    ok = dec_run(x, jpg, len, d);
    jpeg_destroy_decompress(&x->cinfo);
    d->px = ok ? x->px : NULL;
    if (!ok) {
        free(x->px);
    }
    free(x);
    return ok;
}

static uint8_t *render(unsigned w, unsigned h, size_t pad, uint32_t counter, size_t *len)
{
    pp_jpeg_opts o = { .width = w, .height = h, .quality = 0, .pad_to = pad };
    uint8_t *jpg = NULL;

    ck_assert_int_eq(pp_jpeg_frame_render(&o, counter, &jpg, len), PP_JPEG_OK);
    ck_assert_ptr_nonnull(jpg);
    return jpg;
}

static void assert_markers(const uint8_t *j, size_t n)
{
    static const uint8_t head[] = { 0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0 };

    ck_assert_uint_gt(n, sizeof(head) + 2);
    ck_assert_mem_eq(j, head, sizeof(head));
    ck_assert_uint_eq(j[n - 2], 0xFF);
    ck_assert_uint_eq(j[n - 1], 0xD9);
}

static void assert_decodes(const uint8_t *j, size_t n, unsigned w, unsigned h)
{
    decoded d;

    ck_assert(decode(j, n, &d));
    ck_assert_uint_eq(d.w, w);
    ck_assert_uint_eq(d.h, h);
    ck_assert_uint_eq(d.comps, 3);
    ck_assert_int_eq(d.warnings, 0);
    free(d.px);
}

/* Walks the segments from APP0 up to the first non-COM marker; counts COM
 * segments and FF fill bytes. */
static void count_padding(const uint8_t *j, size_t n, unsigned *coms, unsigned *fills)
{
    size_t i = 2;

    *coms = 0;
    *fills = 0;
    i += 2 + ((size_t)j[4] << 8 | j[5]);     /* skip APP0 */
    for (;;) {
        ck_assert_uint_lt(i + 1, n);
        ck_assert_uint_eq(j[i], 0xFF);
        if (j[i + 1] == 0xFF) {
            (*fills)++;
            i++;
            continue;
        }
        if (j[i + 1] != 0xFE) {
            return;
        }
        (*coms)++;
        i += 2 + ((size_t)j[i + 2] << 8 | j[i + 3]);
    }
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(frame_basic)
{
    size_t n;
    uint8_t *j = render(640, 480, 0, 42, &n);
    unsigned coms, fills;

    assert_markers(j, n);
    assert_decodes(j, n, 640, 480);
    count_padding(j, n, &coms, &fills);
    ck_assert_uint_eq(coms, 0);
    ck_assert_uint_eq(fills, 0);
    free(j);
}
END_TEST

START_TEST(frame_sizes)
{
    const unsigned dims[][2] = {
        { PP_JPEG_MIN_DIM, PP_JPEG_MIN_DIM }, { 17, 33 }, { 1920, 1080 }, { 1280, 720 },
        { 100, 2000 },
    };

    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
        size_t n;
        uint8_t *j = render(dims[i][0], dims[i][1], 0, UINT32_MAX, &n);
        assert_markers(j, n);
        assert_decodes(j, n, dims[i][0], dims[i][1]);
        free(j);
    }
}
END_TEST

START_TEST(frame_deterministic_and_moving)
{
    size_t n1, n2, n3;
    uint8_t *a = render(320, 240, 0, 7, &n1);
    uint8_t *b = render(320, 240, 0, 7, &n2);
    uint8_t *c = render(320, 240, 0, 8, &n3);

    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(a, b, n1);
    ck_assert(n1 != n3 || memcmp(a, c, n1) != 0);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* "8" lights the middle segment, which sits at the image centre; "1" lights
 * only the right-hand segments, leaving the centre dark. */
START_TEST(frame_shows_counter)
{
    const unsigned w = 320, h = 240;
    size_t n;
    decoded d;
    const uint8_t *p;
    uint8_t *j = render(w, h, 0, 8, &n);

    ck_assert(decode(j, n, &d));
    p = d.px + ((size_t)(h / 2) * w + w / 2) * 3;
    ck_assert_uint_gt(p[0], 200);
    ck_assert_uint_gt(p[1], 160);
    ck_assert_uint_lt(p[2], 140);
    free(d.px);
    free(j);

    j = render(w, h, 0, 1, &n);
    ck_assert(decode(j, n, &d));
    p = d.px + ((size_t)(h / 2) * w + w / 2) * 3;
    ck_assert_uint_lt(p[0], 100);
    free(d.px);
    free(j);
}
END_TEST

START_TEST(frame_pad_exact)
{
    size_t natural, n;
    uint8_t *j = render(320, 240, 0, 5, &natural);
    /* 1..3 need fill bytes; 4 is the smallest COM; around 65537 the split into
     * several segments must not leave a remainder below 4 */
    const size_t extras[] = { 1, 2, 3, 4, 5, 6, 7, 100, 65535, 65536, 65537, 65538, 65539,
                              65540, 65541, 65542, 131074, 131075, 200000 };

    free(j);
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        j = render(320, 240, natural + extras[i], 5, &n);
        ck_assert_msg(n == natural + extras[i], "extra %zu gave %zu", extras[i], n - natural);
        assert_markers(j, n);
        assert_decodes(j, n, 320, 240);
        free(j);
    }
}
END_TEST

START_TEST(frame_pad_200k)
{
    const size_t target = 200 * 1024;
    size_t n;
    unsigned coms, fills;
    uint8_t *j = render(640, 480, target, 123, &n);

    ck_assert_uint_eq(n, target);
    assert_markers(j, n);
    assert_decodes(j, n, 640, 480);
    count_padding(j, n, &coms, &fills);
    ck_assert_uint_ge(coms, 3);     /* > 3 * 65537 bytes of filler needed */
    ck_assert_uint_eq(fills, 0);
    free(j);
}
END_TEST

START_TEST(frame_pad_fill_bytes)
{
    size_t natural, n;
    unsigned coms, fills;
    uint8_t *j = render(64, 64, 0, 9, &natural);

    free(j);
    j = render(64, 64, natural + 3, 9, &n);
    count_padding(j, n, &coms, &fills);
    ck_assert_uint_eq(coms, 0);
    ck_assert_uint_eq(fills, 3);
    free(j);
}
END_TEST

START_TEST(frame_pad_below_natural)
{
    size_t natural, n;
    uint8_t *j = render(320, 240, 0, 5, &natural);

    free(j);
    j = render(320, 240, natural - 1, 5, &n);
    ck_assert_uint_eq(n, natural);
    free(j);
    j = render(320, 240, 1, 5, &n);
    ck_assert_uint_eq(n, natural);
    free(j);
    j = render(320, 240, natural, 5, &n);
    ck_assert_uint_eq(n, natural);
    free(j);
}
END_TEST

START_TEST(frame_pad_max)
{
    size_t n;
    uint8_t *j = render(64, 48, PP_JPEG_MAX_PAD, 1, &n);

    ck_assert_uint_eq(n, PP_JPEG_MAX_PAD);
    assert_markers(j, n);
    assert_decodes(j, n, 64, 48);
    free(j);
}
END_TEST

START_TEST(frame_rejects_bad_options)
{
    pp_jpeg_opts o = { .width = 64, .height = 64, .quality = 90, .pad_to = 0 };
    uint8_t *j = (uint8_t *)"untouched";
    size_t n = 0;

    o.width = PP_JPEG_MIN_DIM - 1;
    ck_assert_int_eq(pp_jpeg_frame_render(&o, 0, &j, &n), PP_JPEG_EINVAL);
    o.width = PP_JPEG_MAX_DIM + 1;
    ck_assert_int_eq(pp_jpeg_frame_render(&o, 0, &j, &n), PP_JPEG_EINVAL);
    o.width = 64;
    o.height = 0;
    ck_assert_int_eq(pp_jpeg_frame_render(&o, 0, &j, &n), PP_JPEG_EINVAL);
    o.height = 64;
    o.quality = PP_JPEG_MAX_QUALITY + 1;
    ck_assert_int_eq(pp_jpeg_frame_render(&o, 0, &j, &n), PP_JPEG_EINVAL);
    o.quality = 1;
    o.pad_to = PP_JPEG_MAX_PAD + 1;
    ck_assert_int_eq(pp_jpeg_frame_render(&o, 0, &j, &n), PP_JPEG_EINVAL);
    ck_assert_int_eq(pp_jpeg_frame_render(NULL, 0, &j, &n), PP_JPEG_EINVAL);
    ck_assert_int_eq(pp_jpeg_frame_render(&o, 0, NULL, &n), PP_JPEG_EINVAL);
    ck_assert_int_eq(pp_jpeg_frame_render(&o, 0, &j, NULL), PP_JPEG_EINVAL);
    ck_assert_str_eq((const char *)j, "untouched");
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(frame_quality_range)
{
    pp_jpeg_opts o = { .width = 160, .height = 120, .quality = 1, .pad_to = 0 };
    uint8_t *lo = NULL, *hi = NULL;
    size_t nlo, nhi;

    ck_assert_int_eq(pp_jpeg_frame_render(&o, 3, &lo, &nlo), PP_JPEG_OK);
    o.quality = PP_JPEG_MAX_QUALITY;
    ck_assert_int_eq(pp_jpeg_frame_render(&o, 3, &hi, &nhi), PP_JPEG_OK);
    ck_assert_uint_lt(nlo, nhi);
    assert_decodes(lo, nlo, 160, 120);
    assert_decodes(hi, nhi, 160, 120);
    free(lo);
    free(hi);
}
END_TEST

START_TEST(strerror_all)
{
    for (int e = PP_JPEG_OK; e <= PP_JPEG_ELIB; e++) {
        ck_assert_str_ne(pp_jpeg_strerror((pp_jpeg_err)e), "unknown error");
    }
    ck_assert_str_eq(pp_jpeg_strerror((pp_jpeg_err)77), "unknown error");
}
END_TEST

static Suite *jpeg_suite(void)
{
    Suite *s = suite_create("jpeg_frame");
    TCase *t = tcase_create("render");

    tcase_set_timeout(t, 60);
    tcase_add_test(t, frame_basic);
    tcase_add_test(t, frame_sizes);
    tcase_add_test(t, frame_deterministic_and_moving);
    tcase_add_test(t, frame_shows_counter);
    tcase_add_test(t, frame_pad_exact);
    tcase_add_test(t, frame_pad_200k);
    tcase_add_test(t, frame_pad_fill_bytes);
    tcase_add_test(t, frame_pad_below_natural);
    tcase_add_test(t, frame_pad_max);
    tcase_add_test(t, frame_rejects_bad_options);
    tcase_add_test(t, frame_quality_range);
    tcase_add_test(t, strerror_all);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(jpeg_suite());
}
