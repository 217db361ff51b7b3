/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the chamber camera codec: auth packet bytes and every way it
 * can be wrong, frame header bounds, and the JPEG sanity check.
 */
#include "src/chamber_codec.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* The packet a real client sends for user "bblp", code "12345678". */
static const uint8_t good_auth[PP_CHAMBER_AUTH_LEN] = {
    0x40, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00,
    0, 0, 0, 0, 0, 0, 0, 0,
    'b', 'b', 'l', 'p', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    '1', '2', '3', '4', '5', '6', '7', '8', 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static pp_chamber_err parse_mutated(size_t off, uint8_t val)
{
    uint8_t p[PP_CHAMBER_AUTH_LEN];
    pp_chamber_auth a;

    memcpy(p, good_auth, sizeof(p));
    p[off] = val;
    return pp_chamber_auth_parse(p, &a);
}

static void fill_field(uint8_t *p, size_t off, char c)
{
    memset(p + off, c, PP_CHAMBER_AUTH_FIELD_LEN);
}

/* ---- auth encode -------------------------------------------------------- */

START_TEST(auth_encode_bytes)
{
    uint8_t p[PP_CHAMBER_AUTH_LEN];

    memset(p, 0xAA, sizeof(p));
    ck_assert_int_eq(pp_chamber_auth_encode(p, "bblp", "12345678"), PP_CHAMBER_OK);
    ck_assert_mem_eq(p, good_auth, sizeof(good_auth));
}
END_TEST

START_TEST(auth_encode_lengths)
{
    uint8_t p[PP_CHAMBER_AUTH_LEN];
    char max[PP_CHAMBER_AUTH_STR_MAX + 1];
    char over[PP_CHAMBER_AUTH_STR_MAX + 2];
    pp_chamber_auth a;

    memset(max, 'm', sizeof(max) - 1);
    max[sizeof(max) - 1] = '\0';
    memset(over, 'o', sizeof(over) - 1);
    over[sizeof(over) - 1] = '\0';
    ck_assert_int_eq(pp_chamber_auth_encode(p, max, max), PP_CHAMBER_OK);
    ck_assert_int_eq(pp_chamber_auth_parse(p, &a), PP_CHAMBER_OK);
    ck_assert_str_eq(a.user, max);
    ck_assert_str_eq(a.code, max);
    ck_assert_int_eq(pp_chamber_auth_encode(p, over, "x"), PP_CHAMBER_ETOOLONG);
    ck_assert_int_eq(pp_chamber_auth_encode(p, "bblp", over), PP_CHAMBER_ETOOLONG);
    ck_assert_int_eq(pp_chamber_auth_encode(p, "", ""), PP_CHAMBER_OK);
    ck_assert_int_eq(pp_chamber_auth_parse(p, &a), PP_CHAMBER_OK);
    ck_assert_str_eq(a.user, "");
    ck_assert_int_eq(pp_chamber_auth_encode(NULL, "a", "b"), PP_CHAMBER_EINVAL);
    ck_assert_int_eq(pp_chamber_auth_encode(p, NULL, "b"), PP_CHAMBER_EINVAL);
    ck_assert_int_eq(pp_chamber_auth_encode(p, "a", NULL), PP_CHAMBER_EINVAL);
}
END_TEST

/* ---- auth parse --------------------------------------------------------- */

START_TEST(auth_parse_good)
{
    pp_chamber_auth a;

    ck_assert_int_eq(pp_chamber_auth_parse(good_auth, &a), PP_CHAMBER_OK);
    ck_assert_str_eq(a.user, "bblp");
    ck_assert_str_eq(a.code, "12345678");
    pp_chamber_auth_wipe(&a);
    ck_assert_str_eq(a.code, "");
    ck_assert_str_eq(a.user, "");
    pp_chamber_auth_wipe(NULL);
}
END_TEST

START_TEST(auth_parse_bad_magic)
{
    for (size_t off = 0; off < 4; off++) {
        ck_assert_int_eq(parse_mutated(off, 0x41), PP_CHAMBER_EMAGIC);
    }
    /* big-endian encoding of the same value is wrong too */
    uint8_t p[PP_CHAMBER_AUTH_LEN];
    pp_chamber_auth a;
    memcpy(p, good_auth, sizeof(p));
    p[0] = 0;
    p[3] = 0x40;
    ck_assert_int_eq(pp_chamber_auth_parse(p, &a), PP_CHAMBER_EMAGIC);
}
END_TEST

START_TEST(auth_parse_bad_type)
{
    ck_assert_int_eq(parse_mutated(4, 0x01), PP_CHAMBER_ETYPE);
    ck_assert_int_eq(parse_mutated(5, 0x31), PP_CHAMBER_ETYPE);
    ck_assert_int_eq(parse_mutated(6, 0x30), PP_CHAMBER_ETYPE);
    ck_assert_int_eq(parse_mutated(7, 0x01), PP_CHAMBER_ETYPE);
}
END_TEST

START_TEST(auth_parse_reserved_nonzero)
{
    for (size_t off = PP_CHAMBER_AUTH_ZERO_OFF;
         off < PP_CHAMBER_AUTH_ZERO_OFF + PP_CHAMBER_AUTH_ZERO_LEN; off++) {
        ck_assert_int_eq(parse_mutated(off, 0x01), PP_CHAMBER_ERESERVED);
        ck_assert_int_eq(parse_mutated(off, 0x80), PP_CHAMBER_ERESERVED);
    }
}
END_TEST

START_TEST(auth_parse_user_garbled)
{
    uint8_t p[PP_CHAMBER_AUTH_LEN];
    pp_chamber_auth a;

    memcpy(p, good_auth, sizeof(p));
    fill_field(p, PP_CHAMBER_AUTH_USER_OFF, 'u');       /* no NUL at all */
    ck_assert_int_eq(pp_chamber_auth_parse(p, &a), PP_CHAMBER_EUSER);
    /* junk after the terminating NUL, at each position of the padding */
    for (size_t off = PP_CHAMBER_AUTH_USER_OFF + 5; off < PP_CHAMBER_AUTH_CODE_OFF; off++) {
        ck_assert_int_eq(parse_mutated(off, 'x'), PP_CHAMBER_EUSER);
    }
    /* a NUL inside the name turns the rest into junk */
    ck_assert_int_eq(parse_mutated(PP_CHAMBER_AUTH_USER_OFF + 1, 0), PP_CHAMBER_EUSER);
    /* 31 characters and a final NUL is the longest valid field */
    memcpy(p, good_auth, sizeof(p));
    fill_field(p, PP_CHAMBER_AUTH_USER_OFF, 'u');
    p[PP_CHAMBER_AUTH_CODE_OFF - 1] = 0;
    ck_assert_int_eq(pp_chamber_auth_parse(p, &a), PP_CHAMBER_OK);
    ck_assert_uint_eq(strlen(a.user), PP_CHAMBER_AUTH_STR_MAX);
}
END_TEST

START_TEST(auth_parse_code_garbled)
{
    uint8_t p[PP_CHAMBER_AUTH_LEN];
    pp_chamber_auth a;

    memcpy(p, good_auth, sizeof(p));
    fill_field(p, PP_CHAMBER_AUTH_CODE_OFF, '9');
    ck_assert_int_eq(pp_chamber_auth_parse(p, &a), PP_CHAMBER_ECODE);
    for (size_t off = PP_CHAMBER_AUTH_CODE_OFF + 9; off < PP_CHAMBER_AUTH_LEN; off++) {
        ck_assert_int_eq(parse_mutated(off, 0xFF), PP_CHAMBER_ECODE);
    }
    ck_assert_int_eq(parse_mutated(PP_CHAMBER_AUTH_CODE_OFF + 3, 0), PP_CHAMBER_ECODE);
    memcpy(p, good_auth, sizeof(p));
    fill_field(p, PP_CHAMBER_AUTH_CODE_OFF, '9');
    p[PP_CHAMBER_AUTH_LEN - 1] = 0;
    ck_assert_int_eq(pp_chamber_auth_parse(p, &a), PP_CHAMBER_OK);
    ck_assert_uint_eq(strlen(a.code), PP_CHAMBER_AUTH_STR_MAX);
}
END_TEST

START_TEST(auth_parse_leaves_out_untouched_on_error)
{
    pp_chamber_auth a;

    memset(&a, 0x5A, sizeof(a));
    ck_assert_int_eq(parse_mutated(PP_CHAMBER_AUTH_LEN - 1, 1), PP_CHAMBER_ECODE);
    ck_assert_int_eq(parse_mutated(0, 0), PP_CHAMBER_EMAGIC);
    ck_assert_int_eq(pp_chamber_auth_parse(NULL, &a), PP_CHAMBER_EINVAL);
    ck_assert_int_eq(pp_chamber_auth_parse(good_auth, NULL), PP_CHAMBER_EINVAL);
    ck_assert_uint_eq((uint8_t)a.user[0], 0x5A);
}
END_TEST

START_TEST(auth_parse_does_not_judge_code)
{
    uint8_t p[PP_CHAMBER_AUTH_LEN];
    pp_chamber_auth a;

    ck_assert_int_eq(pp_chamber_auth_encode(p, "someone", "wrong"), PP_CHAMBER_OK);
    ck_assert_int_eq(pp_chamber_auth_parse(p, &a), PP_CHAMBER_OK);
    ck_assert_str_eq(a.user, "someone");
    ck_assert_str_eq(a.code, "wrong");
}
END_TEST

/* ---- frame header ------------------------------------------------------- */

static pp_chamber_err hdr_with_len(uint32_t v, uint32_t *out)
{
    uint8_t h[PP_CHAMBER_HEADER_LEN] = { 0 };

    h[0] = (uint8_t)v;
    h[1] = (uint8_t)(v >> 8);
    h[2] = (uint8_t)(v >> 16);
    h[3] = (uint8_t)(v >> 24);
    return pp_chamber_header_parse(h, out);
}

START_TEST(header_parse_bounds)
{
    uint32_t len = 7;

    ck_assert_int_eq(hdr_with_len(0, &len), PP_CHAMBER_EEMPTY);
    ck_assert_uint_eq(len, 7);
    ck_assert_int_eq(hdr_with_len(1, &len), PP_CHAMBER_OK);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(hdr_with_len(PP_CHAMBER_MAX_FRAME, &len), PP_CHAMBER_OK);
    ck_assert_uint_eq(len, PP_CHAMBER_MAX_FRAME);
    ck_assert_int_eq(hdr_with_len(PP_CHAMBER_MAX_FRAME + 1, &len), PP_CHAMBER_EBIG);
    ck_assert_int_eq(hdr_with_len(UINT32_C(1) << 31, &len), PP_CHAMBER_EBIG);
    ck_assert_int_eq(hdr_with_len(UINT32_MAX, &len), PP_CHAMBER_EBIG);
    ck_assert_int_eq(pp_chamber_header_parse(NULL, &len), PP_CHAMBER_EINVAL);
}
END_TEST

START_TEST(header_parse_little_endian_and_opaque)
{
    const uint8_t h[PP_CHAMBER_HEADER_LEN] = {
        0x34, 0x12, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef,
        0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04,
    };
    uint32_t len = 0;

    ck_assert_int_eq(pp_chamber_header_parse(h, &len), PP_CHAMBER_OK);
    ck_assert_uint_eq(len, 0x011234);
}
END_TEST

START_TEST(header_encode)
{
    uint8_t h[PP_CHAMBER_HEADER_LEN];
    const uint8_t want[PP_CHAMBER_HEADER_LEN] = {
        0x00, 0x20, 0x03, 0x00, 0x07, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    uint32_t len = 0;

    memset(h, 0xAA, sizeof(h));
    ck_assert_int_eq(pp_chamber_header_encode(h, 200 * 1024, 0x01000007), PP_CHAMBER_OK);
    ck_assert_mem_eq(h, want, sizeof(want));
    ck_assert_int_eq(pp_chamber_header_parse(h, &len), PP_CHAMBER_OK);
    ck_assert_uint_eq(len, 200 * 1024);
    ck_assert_int_eq(pp_chamber_header_encode(h, 0, 1), PP_CHAMBER_EEMPTY);
    ck_assert_int_eq(pp_chamber_header_encode(h, PP_CHAMBER_MAX_FRAME, 1), PP_CHAMBER_OK);
    ck_assert_int_eq(pp_chamber_header_encode(h, PP_CHAMBER_MAX_FRAME + 1, 1), PP_CHAMBER_EBIG);
    ck_assert_int_eq(pp_chamber_header_encode(NULL, 1, 1), PP_CHAMBER_EINVAL);
}
END_TEST

/* ---- JPEG sanity -------------------------------------------------------- */

START_TEST(jpeg_check)
{
    const uint8_t ok[] = { 0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0xFF, 0xD9 };
    const uint8_t tiny[] = { 0xFF, 0xD8, 0xFF, 0xD9 };
    const uint8_t overlap[] = { 0xFF, 0xD8, 0xD9 };
    const uint8_t no_soi[] = { 0xFF, 0xD9, 0xFF, 0xD9 };
    const uint8_t no_eoi[] = { 0xFF, 0xD8, 0xFF, 0xD9, 0x00 };

    ck_assert(pp_chamber_is_jpeg(ok, sizeof(ok)));
    ck_assert(pp_chamber_is_jpeg(tiny, sizeof(tiny)));
    ck_assert(!pp_chamber_is_jpeg(overlap, sizeof(overlap)));
    ck_assert(!pp_chamber_is_jpeg(no_soi, sizeof(no_soi)));
    ck_assert(!pp_chamber_is_jpeg(no_eoi, sizeof(no_eoi)));
    ck_assert(!pp_chamber_is_jpeg(ok, 0));
    ck_assert(!pp_chamber_is_jpeg(NULL, 4));
}
END_TEST

START_TEST(strerror_all)
{
    for (int e = PP_CHAMBER_OK; e <= PP_CHAMBER_EINVAL; e++) {
        ck_assert_str_ne(pp_chamber_strerror((pp_chamber_err)e), "unknown error");
    }
    ck_assert_str_eq(pp_chamber_strerror((pp_chamber_err)-1), "unknown error");
}
END_TEST

static Suite *chamber_suite(void)
{
    Suite *s = suite_create("chamber_codec");
    TCase *ta = tcase_create("auth");
    TCase *th = tcase_create("header");

    tcase_add_test(ta, auth_encode_bytes);
    tcase_add_test(ta, auth_encode_lengths);
    tcase_add_test(ta, auth_parse_good);
    tcase_add_test(ta, auth_parse_bad_magic);
    tcase_add_test(ta, auth_parse_bad_type);
    tcase_add_test(ta, auth_parse_reserved_nonzero);
    tcase_add_test(ta, auth_parse_user_garbled);
    tcase_add_test(ta, auth_parse_code_garbled);
    tcase_add_test(ta, auth_parse_leaves_out_untouched_on_error);
    tcase_add_test(ta, auth_parse_does_not_judge_code);
    tcase_add_test(th, header_parse_bounds);
    tcase_add_test(th, header_parse_little_endian_and_opaque);
    tcase_add_test(th, header_encode);
    tcase_add_test(th, jpeg_check);
    tcase_add_test(th, strerror_all);
    suite_add_tcase(s, ta);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    return unit_run(chamber_suite());
}
