/* SPDX-License-Identifier: MIT */
/*
 * Chamber camera codec: encodes and validates the 80-byte auth packet and the
 * 16-byte frame header, and checks that a payload looks like a JPEG. The proxy
 * service, the simulator and the camera detector share it.
 */
#include "chamber_codec.h"

#include <string.h>

_Static_assert(PP_CHAMBER_AUTH_CODE_OFF + PP_CHAMBER_AUTH_FIELD_LEN == PP_CHAMBER_AUTH_LEN,
               "auth layout does not add up to PP_CHAMBER_AUTH_LEN");
_Static_assert(PP_CHAMBER_AUTH_USER_OFF + PP_CHAMBER_AUTH_FIELD_LEN == PP_CHAMBER_AUTH_CODE_OFF,
               "auth user field overlaps the code field");
_Static_assert(PP_CHAMBER_AUTH_ZERO_OFF + PP_CHAMBER_AUTH_ZERO_LEN == PP_CHAMBER_AUTH_USER_OFF,
               "auth reserved bytes misplaced");
_Static_assert(PP_CHAMBER_HDR_SIM_SEQ_OFF + 4 <= PP_CHAMBER_HEADER_LEN,
               "sequence number outside the header");
_Static_assert(PP_CHAMBER_MAX_FRAME <= UINT32_MAX, "frame bound must fit the u32 length");

#define JPEG_MIN_LEN 4  /* SOI + EOI */

const char *pp_chamber_strerror(pp_chamber_err err)
{
    switch (err) {
    case PP_CHAMBER_OK:        return "success";
    case PP_CHAMBER_EMAGIC:    return "auth packet: bad magic";
    case PP_CHAMBER_ETYPE:     return "auth packet: bad type";
    case PP_CHAMBER_ERESERVED: return "auth packet: reserved bytes not zero";
    case PP_CHAMBER_EUSER:     return "auth packet: garbled username";
    case PP_CHAMBER_ECODE:     return "auth packet: garbled access code";
    case PP_CHAMBER_ETOOLONG:  return "username or access code too long";
    case PP_CHAMBER_EEMPTY:    return "frame header: zero length";
    case PP_CHAMBER_EBIG:      return "frame header: length above limit";
    case PP_CHAMBER_EINVAL:    return "invalid argument";
    }
    return "unknown error";
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- auth --------------------------------------------------------------- */

pp_chamber_err pp_chamber_auth_encode(uint8_t out[PP_CHAMBER_AUTH_LEN], const char *user,
                                      const char *code)
{
    size_t ulen, clen;

    if (out == NULL || user == NULL || code == NULL) {
        return PP_CHAMBER_EINVAL;
    }
    ulen = strnlen(user, PP_CHAMBER_AUTH_FIELD_LEN);
    clen = strnlen(code, PP_CHAMBER_AUTH_FIELD_LEN);
    if (ulen > PP_CHAMBER_AUTH_STR_MAX || clen > PP_CHAMBER_AUTH_STR_MAX) {
        return PP_CHAMBER_ETOOLONG;
    }
    memset(out, 0, PP_CHAMBER_AUTH_LEN);
    put_le32(out + PP_CHAMBER_AUTH_MAGIC_OFF, PP_CHAMBER_AUTH_MAGIC);
    put_le32(out + PP_CHAMBER_AUTH_TYPE_OFF, PP_CHAMBER_AUTH_TYPE);
    memcpy(out + PP_CHAMBER_AUTH_USER_OFF, user, ulen);
    memcpy(out + PP_CHAMBER_AUTH_CODE_OFF, code, clen);
    return PP_CHAMBER_OK;
}

/* A field is a string, a NUL, then only NULs; anything else is garbage that a
 * real client would never send. */
static bool field_copy(const uint8_t *field, char *dst)
{
    const uint8_t *nul = memchr(field, 0, PP_CHAMBER_AUTH_FIELD_LEN);
    size_t n;

    if (nul == NULL) {
        return false;
    }
    n = (size_t)(nul - field);
    for (size_t i = n + 1; i < PP_CHAMBER_AUTH_FIELD_LEN; i++) {
        if (field[i] != 0) {
            return false;
        }
    }
    memcpy(dst, field, n + 1);
    return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

pp_chamber_err pp_chamber_auth_parse(const uint8_t in[PP_CHAMBER_AUTH_LEN],
                                     pp_chamber_auth *out)
{
    pp_chamber_auth a;
    pp_chamber_err err = PP_CHAMBER_OK;

    if (in == NULL || out == NULL) {
        return PP_CHAMBER_EINVAL;
    }
    if (get_le32(in + PP_CHAMBER_AUTH_MAGIC_OFF) != PP_CHAMBER_AUTH_MAGIC) {
        return PP_CHAMBER_EMAGIC;
    }
    if (get_le32(in + PP_CHAMBER_AUTH_TYPE_OFF) != PP_CHAMBER_AUTH_TYPE) {
        return PP_CHAMBER_ETYPE;
    }
    if (!all_zero(in + PP_CHAMBER_AUTH_ZERO_OFF, PP_CHAMBER_AUTH_ZERO_LEN)) {
        return PP_CHAMBER_ERESERVED;
    }
    if (!field_copy(in + PP_CHAMBER_AUTH_USER_OFF, a.user)) {
        err = PP_CHAMBER_EUSER;
    } else if (!field_copy(in + PP_CHAMBER_AUTH_CODE_OFF, a.code)) {
        err = PP_CHAMBER_ECODE;
    } else {
        *out = a;
    }
    pp_chamber_auth_wipe(&a);
    return err;
}

void pp_chamber_auth_wipe(pp_chamber_auth *auth)
{
    /* volatile stores: a plain memset of a dying object may be optimised out */
    volatile uint8_t *p = (volatile uint8_t *)auth;

    if (auth == NULL) {
        return;
    }
    for (size_t i = 0; i < sizeof(*auth); i++) {
        p[i] = 0;
    }
}

/* ---- frame header ------------------------------------------------------- */

static pp_chamber_err check_len(uint32_t len)
{
    if (len == 0) {
        return PP_CHAMBER_EEMPTY;
    }
    if (len > PP_CHAMBER_MAX_FRAME) {
        return PP_CHAMBER_EBIG;
    }
    return PP_CHAMBER_OK;
}

pp_chamber_err pp_chamber_header_parse(const uint8_t in[PP_CHAMBER_HEADER_LEN], uint32_t *len)
{
    uint32_t v;
    pp_chamber_err err;

    if (in == NULL || len == NULL) {
        return PP_CHAMBER_EINVAL;
    }
    v = get_le32(in + PP_CHAMBER_HDR_LEN_OFF);
    err = check_len(v);
    if (err == PP_CHAMBER_OK) {
        *len = v;
    }
    return err;
}

pp_chamber_err pp_chamber_header_encode(uint8_t out[PP_CHAMBER_HEADER_LEN], uint32_t len,
                                        uint32_t seq)
{
    pp_chamber_err err;

    if (out == NULL) {
        return PP_CHAMBER_EINVAL;
    }
    err = check_len(len);
    if (err != PP_CHAMBER_OK) {
        return err;
    }
    memset(out, 0, PP_CHAMBER_HEADER_LEN);
    put_le32(out + PP_CHAMBER_HDR_LEN_OFF, len);
    put_le32(out + PP_CHAMBER_HDR_SIM_SEQ_OFF, seq);
    return PP_CHAMBER_OK;
}

/* ---- payload ------------------------------------------------------------ */

bool pp_chamber_is_jpeg(const uint8_t *payload, size_t len)
{
    if (payload == NULL || len < JPEG_MIN_LEN) {
        return false;
    }
    return payload[0] == PP_JPEG_MARKER && payload[1] == PP_JPEG_SOI &&
           payload[len - 2] == PP_JPEG_MARKER && payload[len - 1] == PP_JPEG_EOI;
}
