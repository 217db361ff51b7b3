/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the chamber codec: the input is read as a byte stream
 * of an auth packet followed by header + payload records, the way the proxy
 * reads a client and the printer. Accepted values must re-encode identically.
 */
#include "src/chamber_codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

static void fuzz_auth(const uint8_t *p)
{
    pp_chamber_auth a;
    uint8_t again[PP_CHAMBER_AUTH_LEN];

    if (pp_chamber_auth_parse(p, &a) != PP_CHAMBER_OK) {
        return;
    }
    check(strlen(a.user) <= PP_CHAMBER_AUTH_STR_MAX);
    check(strlen(a.code) <= PP_CHAMBER_AUTH_STR_MAX);
    /* a packet that parses is canonical: re-encoding gives the same bytes */
    check(pp_chamber_auth_encode(again, a.user, a.code) == PP_CHAMBER_OK);
    check(memcmp(again, p, PP_CHAMBER_AUTH_LEN) == 0);
    pp_chamber_auth_wipe(&a);
}

static size_t fuzz_frame(const uint8_t *p, size_t n)
{
    uint32_t len = 0;
    uint8_t h[PP_CHAMBER_HEADER_LEN];

    if (pp_chamber_header_parse(p, &len) != PP_CHAMBER_OK) {
        return 0;
    }
    check(len >= 1 && len <= PP_CHAMBER_MAX_FRAME);
    check(pp_chamber_header_encode(h, len, 0) == PP_CHAMBER_OK);
    check(memcmp(h, p, sizeof(uint32_t)) == 0);
    n -= PP_CHAMBER_HEADER_LEN;
    if (len > n) {
        (void)pp_chamber_is_jpeg(p + PP_CHAMBER_HEADER_LEN, n);
        return 0;
    }
    (void)pp_chamber_is_jpeg(p + PP_CHAMBER_HEADER_LEN, len);
    return PP_CHAMBER_HEADER_LEN + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off;

    if (size >= PP_CHAMBER_AUTH_LEN) {
        fuzz_auth(data);
    }
    off = size >= PP_CHAMBER_AUTH_LEN ? PP_CHAMBER_AUTH_LEN : 0;
    while (size - off >= PP_CHAMBER_HEADER_LEN) {
        size_t used = fuzz_frame(data + off, size - off);
        if (used == 0) {
            break;
        }
        off += used;
    }
    return 0;
}
