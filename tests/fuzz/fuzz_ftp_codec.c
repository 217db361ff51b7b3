/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the FTP codec: the input is split into lines in chunks
 * sized by its first byte, and every line goes through each parser. Parsed
 * addresses are formatted and parsed back to check the round trip.
 */
#include "src/ftp_codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

static void roundtrip_hostport(const pp_ftp_ipv4_port *hp)
{
    char out[PP_FTP_MAX_LINE + 1];
    size_t n;
    pp_ftp_ipv4_port back;

    check(pp_ftp_format_227(out, sizeof(out), hp, &n) == PP_FTP_OK);
    check(pp_ftp_parse_227(out, n, &back) == PP_FTP_OK);
    check(memcmp(back.ip, hp->ip, sizeof(back.ip)) == 0 && back.port == hp->port);
}

static void parse_line(pp_ftp_reply_asm *a, const char *line, size_t len)
{
    pp_ftp_cmd cmd;
    pp_ftp_reply_line rl;
    pp_ftp_ipv4_port hp;
    pp_ftp_eprt ep;
    uint16_t port;
    char out[PP_FTP_MAX_LINE + 1];
    size_t n;

    check(len < PP_FTP_MAX_LINE && line[len] == '\0' && memchr(line, '\0', len) == NULL);
    check(memchr(line, '\n', len) == NULL);
    if (pp_ftp_parse_command(line, len, &cmd) == PP_FTP_OK) {
        check(strlen(cmd.verb) >= 1 && strlen(cmd.verb) <= PP_FTP_VERB_MAX);
        check(strlen(cmd.arg) == cmd.arg_len);
    }
    check(pp_ftp_parse_reply_line(line, len, &rl) == PP_FTP_OK);
    check(rl.text >= line && rl.text + rl.text_len == line + len);
    if (pp_ftp_reply_feed(a, line, len) > PP_FTP_ENEED) {
        pp_ftp_reply_init(a);
    }
    check(a->lines <= PP_FTP_MAX_REPLY_LINES);
    if (pp_ftp_parse_227(line, len, &hp) == PP_FTP_OK) {
        roundtrip_hostport(&hp);
    }
    if (pp_ftp_parse_port(line, len, &hp) == PP_FTP_OK) {
        roundtrip_hostport(&hp);
    }
    if (pp_ftp_parse_229(line, len, &port) == PP_FTP_OK) {
        check(port != 0);
        check(pp_ftp_format_229(out, sizeof(out), port, &n) == PP_FTP_OK);
    }
    if (pp_ftp_parse_eprt(line, len, &ep) == PP_FTP_OK) {
        check(ep.port != 0 && strlen(ep.addr_str) < sizeof(ep.addr_str));
    }
    if (pp_ftp_format_reply(out, sizeof(out), PP_FTP_200_OK, line, &n) == PP_FTP_OK) {
        check(n <= PP_FTP_MAX_LINE && out[n - 2] == '\r' && out[n - 1] == '\n');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[PP_FTP_LINE_BUF];
    pp_ftp_lines l;
    pp_ftp_reply_asm a;
    size_t chunk, off = 1;

    if (size < 1) {
        return 0;
    }
    chunk = (size_t)data[0] + 1;
    check(pp_ftp_lines_init(&l, buf, sizeof(buf)) == PP_FTP_OK);
    pp_ftp_reply_init(&a);
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t used = 0;
        const char *line;
        size_t len;
        pp_ftp_err e = pp_ftp_lines_feed(&l, data + off, n, &used, &line, &len);

        check(used <= n && (used > 0 || n == 0));
        if (e == PP_FTP_OK) {
            parse_line(&a, line, len);
        }
        off += used;
    }
    return 0;
}
