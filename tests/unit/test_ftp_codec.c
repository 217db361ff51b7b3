/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the FTP codec: line splitting limits, command and reply
 * parsing, the reply assembler and the 227/229/PORT/EPRT address forms.
 */
#include "src/ftp_codec.h"

#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* ---- helpers ------------------------------------------------------------ */

static char g_buf[PP_FTP_LINE_BUF];
static pp_ftp_lines g_lines;

static void lines_setup(void)
{
    ck_assert_int_eq(pp_ftp_lines_init(&g_lines, g_buf, sizeof(g_buf)), PP_FTP_OK);
}

/* Feeds s and expects exactly one result; returns consumed count. */
static size_t feed1(const char *s, size_t n, pp_ftp_err want, const char *want_line)
{
    const char *line = NULL;
    size_t len = 0, used = 0;
    pp_ftp_err e = pp_ftp_lines_feed(&g_lines, s, n, &used, &line, &len);

    ck_assert_int_eq(e, want);
    if (want == PP_FTP_OK) {
        ck_assert_uint_eq(len, strlen(want_line));
        ck_assert_str_eq(line, want_line);
    }
    return used;
}

static char *repeat(char c, size_t n, const char *tail)
{
    size_t t = strlen(tail);
    char *s = malloc(n + t + 1);

    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    memcpy(s + n, tail, t + 1);
    return s;
}

static pp_ftp_err cmd(const char *s, pp_ftp_cmd *c)
{
    return pp_ftp_parse_command(s, strlen(s), c);
}

static pp_ftp_err p227(const char *s, pp_ftp_ipv4_port *hp)
{
    return pp_ftp_parse_227(s, strlen(s), hp);
}

static pp_ftp_err pport(const char *s, pp_ftp_ipv4_port *hp)
{
    return pp_ftp_parse_port(s, strlen(s), hp);
}

static pp_ftp_err peprt(const char *s, pp_ftp_eprt *ep)
{
    return pp_ftp_parse_eprt(s, strlen(s), ep);
}

static pp_ftp_err p229(const char *s, uint16_t *port)
{
    return pp_ftp_parse_229(s, strlen(s), port);
}

static pp_ftp_err rfeed(pp_ftp_reply_asm *a, const char *s)
{
    return pp_ftp_reply_feed(a, s, strlen(s));
}

/* ---- line splitter ------------------------------------------------------ */

START_TEST(lines_init_rejects_small_buffer)
{
    pp_ftp_lines l;
    char small[PP_FTP_LINE_BUF - 1];

    ck_assert_int_eq(pp_ftp_lines_init(&l, small, sizeof(small)), PP_FTP_EINVAL);
    ck_assert_int_eq(pp_ftp_lines_init(&l, NULL, PP_FTP_LINE_BUF), PP_FTP_EINVAL);
    ck_assert_int_eq(pp_ftp_lines_init(NULL, g_buf, sizeof(g_buf)), PP_FTP_EINVAL);
}
END_TEST

START_TEST(lines_crlf_and_lf)
{
    const char *in = "USER bblp\r\nPASS x\nNOOP\r\n";
    size_t n = strlen(in), off = 0;

    off += feed1(in + off, n - off, PP_FTP_OK, "USER bblp");
    off += feed1(in + off, n - off, PP_FTP_OK, "PASS x");
    off += feed1(in + off, n - off, PP_FTP_OK, "NOOP");
    ck_assert_uint_eq(off, n);
    ck_assert_uint_eq(feed1("", 0, PP_FTP_ENEED, NULL), 0);
}
END_TEST

START_TEST(lines_crlf_split_across_feeds)
{
    ck_assert_uint_eq(feed1("LIST /ca", 8, PP_FTP_ENEED, NULL), 8);
    ck_assert_uint_eq(feed1("che\r", 4, PP_FTP_ENEED, NULL), 4);
    ck_assert_uint_eq(feed1("\nQU", 3, PP_FTP_OK, "LIST /cache"), 1);
    ck_assert_uint_eq(feed1("QU", 2, PP_FTP_ENEED, NULL), 2);
    ck_assert_uint_eq(feed1("IT\r\n", 4, PP_FTP_OK, "QUIT"), 4);
}
END_TEST

START_TEST(lines_byte_at_a_time)
{
    const char *in = "STOR a b.3mf\r\n";
    const char *line = NULL;
    size_t len = 0, used = 0;
    pp_ftp_err e = PP_FTP_ENEED;

    for (size_t i = 0; i < strlen(in); i++) {
        e = pp_ftp_lines_feed(&g_lines, in + i, 1, &used, &line, &len);
        ck_assert_uint_eq(used, 1);
        ck_assert_int_eq(e, i + 1 == strlen(in) ? PP_FTP_OK : PP_FTP_ENEED);
    }
    ck_assert_str_eq(line, "STOR a b.3mf");
}
END_TEST

START_TEST(lines_empty_lines_and_lone_cr)
{
    feed1("\r\n", 2, PP_FTP_OK, "");
    feed1("\n", 1, PP_FTP_OK, "");
    /* only the CR right before LF is a terminator */
    feed1("a\rb\r\r\n", 6, PP_FTP_OK, "a\rb\r");
}
END_TEST

START_TEST(lines_exactly_at_limit_crlf)
{
    char *s = repeat('x', PP_FTP_MAX_LINE - 2, "\r\n");
    char *want = repeat('x', PP_FTP_MAX_LINE - 2, "");

    ck_assert_uint_eq(strlen(s), PP_FTP_MAX_LINE);
    ck_assert_uint_eq(feed1(s, strlen(s), PP_FTP_OK, want), PP_FTP_MAX_LINE);
    free(s);
    free(want);
}
END_TEST

START_TEST(lines_exactly_at_limit_lf)
{
    char *s = repeat('y', PP_FTP_MAX_LINE - 1, "\n");
    char *want = repeat('y', PP_FTP_MAX_LINE - 1, "");

    ck_assert_uint_eq(feed1(s, strlen(s), PP_FTP_OK, want), PP_FTP_MAX_LINE);
    free(s);
    free(want);
}
END_TEST

START_TEST(lines_one_over_limit_then_resync)
{
    char *s = repeat('z', PP_FTP_MAX_LINE - 1, "\r\nNOOP\r\n");
    size_t n = strlen(s), used;

    used = feed1(s, n, PP_FTP_ETOOLONG, NULL);
    ck_assert_uint_eq(used, PP_FTP_MAX_LINE);   /* reported at the overflowing byte */
    used += feed1(s + used, n - used, PP_FTP_OK, "NOOP");
    ck_assert_uint_eq(used, n);
    free(s);
}
END_TEST

START_TEST(lines_overlong_reported_once_across_feeds)
{
    char *s = repeat('q', 3 * PP_FTP_MAX_LINE, "");

    ck_assert_int_eq(feed1(s, PP_FTP_MAX_LINE, PP_FTP_ETOOLONG, NULL), PP_FTP_MAX_LINE);
    ck_assert_uint_eq(feed1(s, 2 * PP_FTP_MAX_LINE, PP_FTP_ENEED, NULL), 2 * PP_FTP_MAX_LINE);
    ck_assert_uint_eq(feed1("tail\nUSER u\n", 12, PP_FTP_OK, "USER u"), 12);
    free(s);
}
END_TEST

START_TEST(lines_rejects_nul)
{
    static const char in[] = "US\0ER x\r\nPWD\r\n";
    size_t n = sizeof(in) - 1, used;

    used = feed1(in, n, PP_FTP_ENUL, NULL);
    ck_assert_uint_eq(used, 9);
    feed1(in + used, n - used, PP_FTP_OK, "PWD");
}
END_TEST

START_TEST(lines_bad_args)
{
    const char *line;
    size_t len, used;
    pp_ftp_lines zero;

    memset(&zero, 0, sizeof(zero));
    ck_assert_int_eq(pp_ftp_lines_feed(&g_lines, NULL, 1, &used, &line, &len), PP_FTP_EINVAL);
    ck_assert_int_eq(pp_ftp_lines_feed(&zero, "a\n", 2, &used, &line, &len), PP_FTP_EINVAL);
    ck_assert_int_eq(pp_ftp_lines_feed(&g_lines, "a\n", 2, NULL, &line, &len), PP_FTP_EINVAL);
}
END_TEST

/* ---- commands ----------------------------------------------------------- */

START_TEST(cmd_verb_upper_and_arg)
{
    pp_ftp_cmd c;

    ck_assert_int_eq(cmd("user bblp", &c), PP_FTP_OK);
    ck_assert_str_eq(c.verb, "USER");
    ck_assert_str_eq(c.arg, "bblp");
    ck_assert(c.has_arg);
    ck_assert_int_eq(cmd("StOr my model  v2 .3mf", &c), PP_FTP_OK);
    ck_assert_str_eq(c.verb, "STOR");
    ck_assert_str_eq(c.arg, "my model  v2 .3mf");
    ck_assert_uint_eq(c.arg_len, strlen("my model  v2 .3mf"));
}
END_TEST

START_TEST(cmd_no_arg_and_empty_arg)
{
    pp_ftp_cmd c;

    ck_assert_int_eq(cmd("PASV", &c), PP_FTP_OK);
    ck_assert_str_eq(c.verb, "PASV");
    ck_assert(!c.has_arg);
    ck_assert_str_eq(c.arg, "");
    ck_assert_int_eq(cmd("LIST ", &c), PP_FTP_OK);
    ck_assert(c.has_arg);
    ck_assert_uint_eq(c.arg_len, 0);
    ck_assert_int_eq(cmd("CWD  /x ", &c), PP_FTP_OK);
    ck_assert_str_eq(c.arg, " /x ");
}
END_TEST

START_TEST(cmd_verb_length_bounds)
{
    pp_ftp_cmd c;

    ck_assert_int_eq(cmd("abcdefgh x", &c), PP_FTP_OK);
    ck_assert_str_eq(c.verb, "ABCDEFGH");
    ck_assert_int_eq(cmd("abcdefgh", &c), PP_FTP_OK);
    ck_assert_int_eq(cmd("abcdefghi", &c), PP_FTP_EVERB);
    ck_assert_int_eq(cmd("abcdefghi x", &c), PP_FTP_EVERB);
}
END_TEST

START_TEST(cmd_bad_verbs)
{
    pp_ftp_cmd c;

    ck_assert_int_eq(cmd("", &c), PP_FTP_EVERB);
    ck_assert_int_eq(cmd(" USER x", &c), PP_FTP_EVERB);
    ck_assert_int_eq(cmd("US3R x", &c), PP_FTP_EVERB);
    ck_assert_int_eq(cmd("USER\tx", &c), PP_FTP_EVERB);
    ck_assert_int_eq(cmd("\xc3\xa9t\xc3\xa9", &c), PP_FTP_EVERB);
    ck_assert_int_eq(pp_ftp_parse_command("NO\0P", 4, &c), PP_FTP_ENUL);
    ck_assert_int_eq(pp_ftp_parse_command(NULL, 0, &c), PP_FTP_EINVAL);
}
END_TEST

START_TEST(cmd_length_limit)
{
    pp_ftp_cmd c;
    char *ok = repeat('a', PP_FTP_MAX_LINE - 1, "");
    char *big = repeat('a', PP_FTP_MAX_LINE, "");

    memcpy(ok, "RETR ", 5);
    memcpy(big, "RETR ", 5);
    ck_assert_int_eq(cmd(ok, &c), PP_FTP_OK);
    ck_assert_uint_eq(c.arg_len, PP_FTP_MAX_LINE - 1 - 5);
    ck_assert_int_eq(cmd(big, &c), PP_FTP_ETOOLONG);
    free(ok);
    free(big);
}
END_TEST

/* ---- reply lines -------------------------------------------------------- */

START_TEST(reply_line_kinds)
{
    pp_ftp_reply_line r;

    ck_assert_int_eq(pp_ftp_parse_reply_line("220 ready", 9, &r), PP_FTP_OK);
    ck_assert_int_eq(r.kind, PP_FTP_LINE_SINGLE);
    ck_assert_int_eq(r.code, 220);
    ck_assert_uint_eq(r.text_len, 5);
    ck_assert_int_eq(strncmp(r.text, "ready", 5), 0);
    pp_ftp_parse_reply_line("211-Features:", 13, &r);
    ck_assert_int_eq(r.kind, PP_FTP_LINE_START);
    ck_assert_int_eq(r.code, 211);
    pp_ftp_parse_reply_line(" MDTM", 5, &r);
    ck_assert_int_eq(r.kind, PP_FTP_LINE_TEXT);
    ck_assert_int_eq(r.code, 0);
    pp_ftp_parse_reply_line("200", 3, &r);
    ck_assert_int_eq(r.kind, PP_FTP_LINE_SINGLE);
    ck_assert_uint_eq(r.text_len, 0);
}
END_TEST

START_TEST(reply_line_not_codes)
{
    pp_ftp_reply_line r;
    const char *bad[] = { "099 x", "600 x", "20 x", "2a0 x", "220x", "", "22", "abc def" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(pp_ftp_parse_reply_line(bad[i], strlen(bad[i]), &r), PP_FTP_OK);
        ck_assert_int_eq(r.kind, PP_FTP_LINE_TEXT);
    }
    ck_assert_int_eq(pp_ftp_parse_reply_line(NULL, 0, &r), PP_FTP_EINVAL);
}
END_TEST

/* ---- reply assembler ---------------------------------------------------- */

START_TEST(asm_single)
{
    pp_ftp_reply_asm a;

    pp_ftp_reply_init(&a);
    ck_assert_int_eq(rfeed(&a, "230 Login successful."), PP_FTP_OK);
    ck_assert_int_eq(a.code, 230);
    ck_assert_uint_eq(a.lines, 1);
    /* the next line starts a new reply */
    ck_assert_int_eq(rfeed(&a, "150-opening"), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, "150 done"), PP_FTP_OK);
    ck_assert_int_eq(a.code, 150);
    ck_assert_uint_eq(a.lines, 2);
}
END_TEST

START_TEST(asm_multi)
{
    pp_ftp_reply_asm a;

    pp_ftp_reply_init(&a);
    ck_assert_int_eq(rfeed(&a, "211-Features:"), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, " EPSV"), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, "211-still text"), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, ""), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, "211 End"), PP_FTP_OK);
    ck_assert_int_eq(a.code, 211);
    ck_assert_uint_eq(a.lines, 5);
}
END_TEST

START_TEST(asm_multi_mismatched_code_is_text)
{
    pp_ftp_reply_asm a;

    pp_ftp_reply_init(&a);
    ck_assert_int_eq(rfeed(&a, "214-Help"), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, "200 not the end"), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, "215 nor this"), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, "214x neither"), PP_FTP_ENEED);
    ck_assert_int_eq(rfeed(&a, "214 End"), PP_FTP_OK);
    ck_assert_int_eq(a.code, 214);
}
END_TEST

START_TEST(asm_first_line_not_reply)
{
    pp_ftp_reply_asm a;

    pp_ftp_reply_init(&a);
    ck_assert_int_eq(rfeed(&a, "hello"), PP_FTP_EREPLY);
    pp_ftp_reply_init(&a);
    ck_assert_int_eq(rfeed(&a, "700 bogus"), PP_FTP_EREPLY);
    ck_assert_int_eq(pp_ftp_reply_feed(NULL, "200 x", 5), PP_FTP_EINVAL);
}
END_TEST

START_TEST(asm_line_bound)
{
    pp_ftp_reply_asm a;

    pp_ftp_reply_init(&a);
    ck_assert_int_eq(rfeed(&a, "250-start"), PP_FTP_ENEED);
    for (unsigned i = 0; i < PP_FTP_MAX_REPLY_LINES - 2; i++) {
        ck_assert_int_eq(rfeed(&a, " line"), PP_FTP_ENEED);
    }
    ck_assert_int_eq(rfeed(&a, "250 end"), PP_FTP_OK);   /* exactly at the bound */
    ck_assert_uint_eq(a.lines, PP_FTP_MAX_REPLY_LINES);

    pp_ftp_reply_init(&a);
    ck_assert_int_eq(rfeed(&a, "250-start"), PP_FTP_ENEED);
    for (unsigned i = 0; i < PP_FTP_MAX_REPLY_LINES - 1; i++) {
        ck_assert_int_eq(rfeed(&a, " line"), PP_FTP_ENEED);
    }
    ck_assert_int_eq(rfeed(&a, "250 end"), PP_FTP_ETOOMANY);
}
END_TEST

/* ---- reply formatting --------------------------------------------------- */

START_TEST(format_reply_basic)
{
    char buf[64];
    size_t n = 0;

    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), PP_FTP_220_READY, "ready", &n),
                     PP_FTP_OK);
    ck_assert_str_eq(buf, "220 ready\r\n");
    ck_assert_uint_eq(n, 11);
    ck_assert_int_eq(pp_ftp_format_reply(buf, 11, 220, "ready", &n), PP_FTP_ESPACE);
    ck_assert_int_eq(pp_ftp_format_reply(buf, 12, 220, "ready", &n), PP_FTP_OK);
    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), 220, "", &n), PP_FTP_OK);
    ck_assert_str_eq(buf, "220 \r\n");
}
END_TEST

START_TEST(format_reply_rejects)
{
    char buf[PP_FTP_MAX_LINE + 16];
    size_t n;
    char *text = repeat('t', PP_FTP_MAX_LINE - 6, "");

    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), 99, "x", &n), PP_FTP_EINVAL);
    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), 600, "x", &n), PP_FTP_EINVAL);
    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), 200, "a\r\n421 x", &n),
                     PP_FTP_EINVAL);
    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), 200, "a\nb", &n), PP_FTP_EINVAL);
    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), 200, NULL, &n), PP_FTP_EINVAL);
    /* "200 " + text + CRLF == PP_FTP_MAX_LINE exactly, then one more */
    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), 200, text, &n), PP_FTP_OK);
    ck_assert_uint_eq(n, PP_FTP_MAX_LINE);
    free(text);
    text = repeat('t', PP_FTP_MAX_LINE - 5, "");
    ck_assert_int_eq(pp_ftp_format_reply(buf, sizeof(buf), 200, text, &n), PP_FTP_ETOOLONG);
    free(text);
}
END_TEST

/* ---- 227 ---------------------------------------------------------------- */

START_TEST(p227_with_parens)
{
    pp_ftp_ipv4_port hp;

    ck_assert_int_eq(p227("227 Entering Passive Mode (192,168,1,20,195,80).", &hp), PP_FTP_OK);
    ck_assert_uint_eq(hp.ip[0], 192);
    ck_assert_uint_eq(hp.ip[1], 168);
    ck_assert_uint_eq(hp.ip[2], 1);
    ck_assert_uint_eq(hp.ip[3], 20);
    ck_assert_uint_eq(hp.port, 195 * 256 + 80);
}
END_TEST

START_TEST(p227_without_parens_and_spaces)
{
    pp_ftp_ipv4_port hp;

    ck_assert_int_eq(p227("227 Entering Passive Mode 10,0,0,1,4,1", &hp), PP_FTP_OK);
    ck_assert_uint_eq(hp.ip[0], 10);
    ck_assert_uint_eq(hp.port, 1025);
    ck_assert_int_eq(p227("Entering Passive Mode (0, 0, 0, 0, 255, 255)", &hp), PP_FTP_OK);
    ck_assert_uint_eq(hp.ip[0], 0);
    ck_assert_uint_eq(hp.port, 65535);
    ck_assert_int_eq(p227("=1,2,3,4,0,1", &hp), PP_FTP_OK);
    ck_assert_uint_eq(hp.port, 1);
    ck_assert_int_eq(p227("227 ok (001,002,003,004,005,006)", &hp), PP_FTP_OK);
    ck_assert_uint_eq(hp.ip[3], 4);
}
END_TEST

START_TEST(p227_out_of_range)
{
    pp_ftp_ipv4_port hp;

    ck_assert_int_eq(p227("227 x (256,1,1,1,1,1)", &hp), PP_FTP_ERANGE);
    ck_assert_int_eq(p227("227 x (1,1,1,1,1,256)", &hp), PP_FTP_ERANGE);
    ck_assert_int_eq(p227("227 x (1,1,1,1,1000,1)", &hp), PP_FTP_ERANGE);
    ck_assert_int_eq(p227("227 x (1,1,1,1,0,0)", &hp), PP_FTP_EPORT);
}
END_TEST

START_TEST(p227_malformed)
{
    pp_ftp_ipv4_port hp;
    const char *bad[] = {
        "227 Entering Passive Mode",
        "227 x (-1,2,3,4,5,6)",
        "227 x (1,2,3,4,5,-6)",
        "227 x (1,2,3,4,5)",
        "227 x (1,2,3,4,5,6,7)",
        "227 x (1,2,3,,5,6)",
        "227 x (1,2,3,4,5,)",
        "227 x (a,2,3,4,5,6)",
        "",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(p227(bad[i], &hp) == PP_FTP_ESYNTAX, "accepted: %s", bad[i]);
    }
    ck_assert_int_eq(pp_ftp_parse_227(NULL, 0, &hp), PP_FTP_EINVAL);
}
END_TEST

START_TEST(f227_roundtrip)
{
    char buf[128];
    size_t n;
    pp_ftp_ipv4_port hp = { { 127, 0, 0, 1 }, 50001 }, back;
    struct in_addr ia;

    ck_assert_int_eq(pp_ftp_format_227(buf, sizeof(buf), &hp, &n), PP_FTP_OK);
    ck_assert_str_eq(buf, "227 Entering Passive Mode (127,0,0,1,195,81).\r\n");
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert_int_eq(pp_ftp_parse_227(buf, n - 2, &back), PP_FTP_OK);
    ck_assert_mem_eq(back.ip, hp.ip, 4);
    ck_assert_uint_eq(back.port, hp.port);
    /* ip[] is in network order, so it maps straight onto an in_addr */
    ia.s_addr = htonl(0x7f000001);
    ck_assert_mem_eq(&ia.s_addr, back.ip, 4);
    hp.port = 0;
    ck_assert_int_eq(pp_ftp_format_227(buf, sizeof(buf), &hp, &n), PP_FTP_EPORT);
    hp.port = 1;
    ck_assert_int_eq(pp_ftp_format_227(buf, 10, &hp, &n), PP_FTP_ESPACE);
}
END_TEST

/* ---- 229 ---------------------------------------------------------------- */

START_TEST(p229_ok)
{
    uint16_t port = 0;

    ck_assert_int_eq(p229("229 Entering Extended Passive Mode (|||50000|)", &port), PP_FTP_OK);
    ck_assert_uint_eq(port, 50000);
    ck_assert_int_eq(p229("229 ok (!!!1!)", &port), PP_FTP_OK);
    ck_assert_uint_eq(port, 1);
    ck_assert_int_eq(p229("229 (x) then (~~~65535~)", &port), PP_FTP_OK);
    ck_assert_uint_eq(port, 65535);
}
END_TEST

START_TEST(p229_bad)
{
    uint16_t port = 0;

    ck_assert_int_eq(p229("229 (|||0|)", &port), PP_FTP_EPORT);
    ck_assert_int_eq(p229("229 (|||65536|)", &port), PP_FTP_EPORT);
    ck_assert_int_eq(p229("229 (|||123456|)", &port), PP_FTP_EPORT);
    ck_assert_int_eq(p229("229 (|||-1|)", &port), PP_FTP_EPORT);
    ck_assert_int_eq(p229("229 (|||21!)", &port), PP_FTP_ESYNTAX);
    ck_assert_int_eq(p229("229 (||21|)", &port), PP_FTP_ESYNTAX);
    ck_assert_int_eq(p229("229 (|||21|", &port), PP_FTP_ESYNTAX);
    ck_assert_int_eq(p229("229 (   21 )", &port), PP_FTP_ESYNTAX);   /* space is not printable */
    ck_assert_int_eq(p229("229 (\x7f\x7f\x7f" "21\x7f)", &port), PP_FTP_ESYNTAX);
    ck_assert_int_eq(p229("229 (1112131)", &port), PP_FTP_ESYNTAX);
    ck_assert_int_eq(p229("229 no parens", &port), PP_FTP_ESYNTAX);
    ck_assert_int_eq(p229("(|||", &port), PP_FTP_EPORT);
    ck_assert_int_eq(p229("(", &port), PP_FTP_ESYNTAX);
}
END_TEST

START_TEST(f229_roundtrip)
{
    char buf[128];
    size_t n;
    uint16_t port = 0;

    ck_assert_int_eq(pp_ftp_format_229(buf, sizeof(buf), 50099, &n), PP_FTP_OK);
    ck_assert_str_eq(buf, "229 Entering Extended Passive Mode (|||50099|)\r\n");
    ck_assert_int_eq(pp_ftp_parse_229(buf, n, &port), PP_FTP_OK);
    ck_assert_uint_eq(port, 50099);
    ck_assert_int_eq(pp_ftp_format_229(buf, sizeof(buf), 0, &n), PP_FTP_EPORT);
    ck_assert_int_eq(pp_ftp_format_229(buf, 20, 1, &n), PP_FTP_ESPACE);
}
END_TEST

/* ---- PORT --------------------------------------------------------------- */

START_TEST(port_ok)
{
    pp_ftp_ipv4_port hp;

    ck_assert_int_eq(pport("10,1,2,3,200,10", &hp), PP_FTP_OK);
    ck_assert_uint_eq(hp.ip[0], 10);
    ck_assert_uint_eq(hp.ip[3], 3);
    ck_assert_uint_eq(hp.port, 200 * 256 + 10);
    ck_assert_int_eq(pport("255,255,255,255,255,255", &hp), PP_FTP_OK);
    ck_assert_uint_eq(hp.port, 65535);
}
END_TEST

START_TEST(port_bad)
{
    pp_ftp_ipv4_port hp;

    ck_assert_int_eq(pport("1,2,3,4,0,0", &hp), PP_FTP_EPORT);
    ck_assert_int_eq(pport("1,2,3,256,0,1", &hp), PP_FTP_ERANGE);
    ck_assert_int_eq(pport("1,2,3,4,256,0", &hp), PP_FTP_ERANGE);
    ck_assert_int_eq(pport("1,2,3,4,5", &hp), PP_FTP_ESYNTAX);
    ck_assert_int_eq(pport("1,2,3,4,5,6,7", &hp), PP_FTP_ESYNTAX);
    ck_assert_int_eq(pport("-1,2,3,4,5,6", &hp), PP_FTP_ESYNTAX);
    ck_assert_int_eq(pport("1,2,3,4,5,6 ", &hp), PP_FTP_ESYNTAX);
    ck_assert_int_eq(pport(" 1,2,3,4,5,6", &hp), PP_FTP_ESYNTAX);
    ck_assert_int_eq(pport("", &hp), PP_FTP_ESYNTAX);
    ck_assert_int_eq(pport("1,2,3,4,5,6x", &hp), PP_FTP_ESYNTAX);
}
END_TEST

/* ---- EPRT --------------------------------------------------------------- */

START_TEST(eprt_ipv4)
{
    pp_ftp_eprt ep;

    ck_assert_int_eq(peprt("|1|132.235.1.2|6275|", &ep), PP_FTP_OK);
    ck_assert_int_eq(ep.proto, PP_FTP_EPRT_IPV4);
    ck_assert_int_eq(ep.family, AF_INET);
    ck_assert_str_eq(ep.addr_str, "132.235.1.2");
    ck_assert_uint_eq(ep.addr[0], 132);
    ck_assert_uint_eq(ep.addr[3], 2);
    ck_assert_uint_eq(ep.port, 6275);
    ck_assert_int_eq(peprt("!1!1.2.3.4!65535!", &ep), PP_FTP_OK);
    ck_assert_uint_eq(ep.port, 65535);
}
END_TEST

START_TEST(eprt_ipv6)
{
    pp_ftp_eprt ep;
    static const uint8_t loop[16] = { [15] = 1 };

    ck_assert_int_eq(peprt("|2|::1|5282|", &ep), PP_FTP_OK);
    ck_assert_int_eq(ep.family, AF_INET6);
    ck_assert_mem_eq(ep.addr, loop, 16);
    ck_assert_uint_eq(ep.port, 5282);
    ck_assert_int_eq(peprt("#2#1080::8:800:200C:417A#1#", &ep), PP_FTP_OK);
    ck_assert_str_eq(ep.addr_str, "1080::8:800:200C:417A");
    ck_assert_int_eq(peprt("|2|ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255|1|", &ep),
                     PP_FTP_OK);
}
END_TEST

START_TEST(eprt_bad_family)
{
    pp_ftp_eprt ep;

    ck_assert_int_eq(peprt("|3|1.2.3.4|21|", &ep), PP_FTP_EFAMILY);
    ck_assert_int_eq(peprt("|0|1.2.3.4|21|", &ep), PP_FTP_EFAMILY);
    ck_assert_int_eq(peprt("|11|1.2.3.4|21|", &ep), PP_FTP_EFAMILY);
    ck_assert_int_eq(peprt("||1.2.3.4|21|", &ep), PP_FTP_ESYNTAX);
    /* family and address must agree */
    ck_assert_int_eq(peprt("|1|::1|21|", &ep), PP_FTP_ESYNTAX);
    ck_assert_int_eq(peprt("|2|1.2.3.4|21|", &ep), PP_FTP_ESYNTAX);
}
END_TEST

START_TEST(eprt_bad_port)
{
    pp_ftp_eprt ep;

    ck_assert_int_eq(peprt("|1|1.2.3.4|0|", &ep), PP_FTP_EPORT);
    ck_assert_int_eq(peprt("|1|1.2.3.4|65536|", &ep), PP_FTP_EPORT);
    ck_assert_int_eq(peprt("|1|1.2.3.4|-1|", &ep), PP_FTP_EPORT);
    ck_assert_int_eq(peprt("|1|1.2.3.4||", &ep), PP_FTP_EPORT);
    ck_assert_int_eq(peprt("|1|1.2.3.4|21x|", &ep), PP_FTP_EPORT);
    ck_assert_int_eq(peprt("|1|1.2.3.4|1000000|", &ep), PP_FTP_EPORT);
}
END_TEST

START_TEST(eprt_bad_shape)
{
    pp_ftp_eprt ep;
    const char *bad[] = {
        "", "|", "|1|", "|1|1.2.3.4", "|1|1.2.3.4|21", "|1|1.2.3.4|21|x",
        "|1|1.2.3.4|21||", "|1||21|", "|1|1.2.3.256|21|", "|1|localhost|21|",
        "a1a1.2.3.4a21a", "111.2.3.41211", " 1 1.2.3.4 21 ", "\x7f" "1\x7f" "1.2.3.4\x7f" "21\x7f",
        ".1.1.2.3.4.21.", "|2|fe80::1%eth0|21|",
        "|2|0000:0000:0000:0000:0000:0000:0000:0000:0000|21|",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(peprt(bad[i], &ep) == PP_FTP_ESYNTAX, "accepted: %s", bad[i]);
    }
    ck_assert_int_eq(pp_ftp_parse_eprt("|1|1.2.3.4\0|21|", 15, &ep), PP_FTP_ESYNTAX);
    ck_assert_int_eq(pp_ftp_parse_eprt(NULL, 0, &ep), PP_FTP_EINVAL);
}
END_TEST

START_TEST(strerror_all)
{
    for (int e = PP_FTP_OK; e <= PP_FTP_EINVAL; e++) {
        ck_assert_ptr_nonnull(pp_ftp_strerror((pp_ftp_err)e));
        ck_assert_str_ne(pp_ftp_strerror((pp_ftp_err)e), "unknown error");
    }
    ck_assert_str_eq(pp_ftp_strerror((pp_ftp_err)999), "unknown error");
}
END_TEST

static Suite *ftp_suite(void)
{
    Suite *s = suite_create("ftp_codec");
    TCase *tl = tcase_create("lines");
    TCase *tc = tcase_create("commands");
    TCase *tr = tcase_create("replies");
    TCase *ta = tcase_create("addresses");

    tcase_add_checked_fixture(tl, lines_setup, NULL);
    tcase_add_test(tl, lines_init_rejects_small_buffer);
    tcase_add_test(tl, lines_crlf_and_lf);
    tcase_add_test(tl, lines_crlf_split_across_feeds);
    tcase_add_test(tl, lines_byte_at_a_time);
    tcase_add_test(tl, lines_empty_lines_and_lone_cr);
    tcase_add_test(tl, lines_exactly_at_limit_crlf);
    tcase_add_test(tl, lines_exactly_at_limit_lf);
    tcase_add_test(tl, lines_one_over_limit_then_resync);
    tcase_add_test(tl, lines_overlong_reported_once_across_feeds);
    tcase_add_test(tl, lines_rejects_nul);
    tcase_add_test(tl, lines_bad_args);
    tcase_add_test(tc, cmd_verb_upper_and_arg);
    tcase_add_test(tc, cmd_no_arg_and_empty_arg);
    tcase_add_test(tc, cmd_verb_length_bounds);
    tcase_add_test(tc, cmd_bad_verbs);
    tcase_add_test(tc, cmd_length_limit);
    tcase_add_test(tr, reply_line_kinds);
    tcase_add_test(tr, reply_line_not_codes);
    tcase_add_test(tr, asm_single);
    tcase_add_test(tr, asm_multi);
    tcase_add_test(tr, asm_multi_mismatched_code_is_text);
    tcase_add_test(tr, asm_first_line_not_reply);
    tcase_add_test(tr, asm_line_bound);
    tcase_add_test(tr, format_reply_basic);
    tcase_add_test(tr, format_reply_rejects);
    tcase_add_test(tr, strerror_all);
    tcase_add_test(ta, p227_with_parens);
    tcase_add_test(ta, p227_without_parens_and_spaces);
    tcase_add_test(ta, p227_out_of_range);
    tcase_add_test(ta, p227_malformed);
    tcase_add_test(ta, f227_roundtrip);
    tcase_add_test(ta, p229_ok);
    tcase_add_test(ta, p229_bad);
    tcase_add_test(ta, f229_roundtrip);
    tcase_add_test(ta, port_ok);
    tcase_add_test(ta, port_bad);
    tcase_add_test(ta, eprt_ipv4);
    tcase_add_test(ta, eprt_ipv6);
    tcase_add_test(ta, eprt_bad_family);
    tcase_add_test(ta, eprt_bad_port);
    tcase_add_test(ta, eprt_bad_shape);
    suite_add_tcase(s, tl);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, tr);
    suite_add_tcase(s, ta);
    return s;
}

int main(void)
{
    return unit_run(ftp_suite());
}
