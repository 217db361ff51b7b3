/* SPDX-License-Identifier: MIT */
/*
 * Chamber camera (TCP 6000) codec: the 80-byte auth packet, the 16-byte frame
 * header and a JPEG sanity check. Pure: no sockets, no allocation, no I/O.
 */
#ifndef PP_CHAMBER_CODEC_H
#define PP_CHAMBER_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/* Auth packet layout (little-endian), PP_CHAMBER_AUTH_LEN bytes in all. */
#define PP_CHAMBER_AUTH_MAGIC        0x40u     /* u32 at offset 0 */
#define PP_CHAMBER_AUTH_TYPE         0x3000u   /* u32 at offset 4 */
#define PP_CHAMBER_AUTH_MAGIC_OFF    0
#define PP_CHAMBER_AUTH_TYPE_OFF     4
#define PP_CHAMBER_AUTH_ZERO_OFF     8         /* 8 reserved bytes, always zero */
#define PP_CHAMBER_AUTH_ZERO_LEN     8
#define PP_CHAMBER_AUTH_USER_OFF     16
#define PP_CHAMBER_AUTH_CODE_OFF     48
#define PP_CHAMBER_AUTH_FIELD_LEN    32        /* user and code, NUL-padded */

/* A field needs at least one NUL, so strings are at most 31 bytes. Config
 * allows longer access codes (PP_ACCESS_CODE_MAX); those cannot be sent here. */
#define PP_CHAMBER_AUTH_STR_MAX      (PP_CHAMBER_AUTH_FIELD_LEN - 1)

/* Frame header: u32 LE payload length, then 12 opaque bytes. The printer's
 * meaning for them is undocumented, so the proxy relays them as received. The
 * simulator (our own choice, not the printer's) puts a u32 LE frame sequence
 * number at offset 4 and zeros elsewhere. */
#define PP_CHAMBER_HDR_LEN_OFF       0
#define PP_CHAMBER_HDR_SIM_SEQ_OFF   4

/* JPEG markers checked by the sanity helper. */
#define PP_JPEG_MARKER               0xFFu
#define PP_JPEG_SOI                  0xD8u
#define PP_JPEG_EOI                  0xD9u

typedef enum {
    PP_CHAMBER_OK = 0,
    PP_CHAMBER_EMAGIC,     /* auth: first u32 is not 0x40 */
    PP_CHAMBER_ETYPE,      /* auth: second u32 is not 0x3000 */
    PP_CHAMBER_ERESERVED,  /* auth: reserved bytes are not zero */
    PP_CHAMBER_EUSER,      /* auth: username field garbled */
    PP_CHAMBER_ECODE,      /* auth: access code field garbled */
    PP_CHAMBER_ETOOLONG,   /* encode: user or code longer than PP_CHAMBER_AUTH_STR_MAX */
    PP_CHAMBER_EEMPTY,     /* header: payload length 0 */
    PP_CHAMBER_EBIG,       /* header: payload length above PP_CHAMBER_MAX_FRAME */
    PP_CHAMBER_EINVAL      /* bad argument from the caller */
} pp_chamber_err;

const char *pp_chamber_strerror(pp_chamber_err err);

typedef struct {
    char user[PP_CHAMBER_AUTH_FIELD_LEN];   /* NUL-terminated */
    char code[PP_CHAMBER_AUTH_FIELD_LEN];   /* NUL-terminated; wipe after use */
} pp_chamber_auth;

/* Builds the auth packet. user and code may be empty; longer than
 * PP_CHAMBER_AUTH_STR_MAX is PP_CHAMBER_ETOOLONG. out holds the code in clear:
 * the caller wipes it after sending. */
pp_chamber_err pp_chamber_auth_encode(uint8_t out[PP_CHAMBER_AUTH_LEN], const char *user,
                                      const char *code);

/* Validates the constants, the zero bytes and both fields' NUL padding, and
 * extracts user and code. It does not judge the code: the caller compares it
 * in constant time and then calls pp_chamber_auth_wipe. */
pp_chamber_err pp_chamber_auth_parse(const uint8_t in[PP_CHAMBER_AUTH_LEN],
                                     pp_chamber_auth *out);

/* Clears the struct in a way the compiler may not elide. */
void pp_chamber_auth_wipe(pp_chamber_auth *auth);

/* Returns the payload length in *len; 0 or above PP_CHAMBER_MAX_FRAME means the
 * stream is corrupt. Bytes 4..15 are not interpreted. */
pp_chamber_err pp_chamber_header_parse(const uint8_t in[PP_CHAMBER_HEADER_LEN], uint32_t *len);

/* Simulator encoder: len (1..PP_CHAMBER_MAX_FRAME), seq at offset 4, zeros. */
pp_chamber_err pp_chamber_header_encode(uint8_t out[PP_CHAMBER_HEADER_LEN], uint32_t len,
                                        uint32_t seq);

/* True when the payload starts FF D8 and ends FF D9 (at least 4 bytes). */
bool pp_chamber_is_jpeg(const uint8_t *payload, size_t len);

#endif
