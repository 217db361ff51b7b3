/* SPDX-License-Identifier: MIT */
/*
 * FTP control-channel codec: the line splitter, command/reply parsers, the
 * 227/229/PORT/EPRT address forms and reply formatting. No I/O here, so the
 * FTP proxy and the simulator's server share it and it is fuzzed on its own.
 */
#include "ftp_codec.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define CR          '\r'
#define LF          '\n'
#define PRINT_MIN   33      /* RFC 2428: delimiters are printable, no space */
#define PRINT_MAX   126
#define OCTET_MAX   255u
#define OCTET_DIGITS 3      /* "255" */
#define PORT_MAX    65535u
#define PORT_DIGITS 5       /* "65535" */
#define PORT_HI_SHIFT 8     /* p1 carries the high byte of the port */
#define HOSTPORT_FIELDS 6   /* h1,h2,h3,h4,p1,p2 */
#define CODE_DIGITS 3

_Static_assert(PP_FTP_ADDR_STR >= INET6_ADDRSTRLEN, "PP_FTP_ADDR_STR too small");
_Static_assert(PP_FTP_LINE_BUF >= 2, "line buffer must hold a byte and a NUL");

const char *pp_ftp_strerror(pp_ftp_err err)
{
    switch (err) {
    case PP_FTP_OK:       return "success";
    case PP_FTP_ENEED:    return "incomplete, more input needed";
    case PP_FTP_ETOOLONG: return "line too long";
    case PP_FTP_ENUL:     return "NUL byte in line";
    case PP_FTP_EVERB:    return "malformed command verb";
    case PP_FTP_EREPLY:   return "not a reply line";
    case PP_FTP_ETOOMANY: return "too many lines in reply";
    case PP_FTP_ESYNTAX:  return "malformed address argument";
    case PP_FTP_ERANGE:   return "number out of range";
    case PP_FTP_EPORT:    return "invalid port";
    case PP_FTP_EFAMILY:  return "unsupported network protocol";
    case PP_FTP_ESPACE:   return "output buffer too small";
    case PP_FTP_EINVAL:   return "invalid argument";
    }
    return "unknown error";
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char to_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* ---- line splitter ------------------------------------------------------ */

pp_ftp_err pp_ftp_lines_init(pp_ftp_lines *l, char *buf, size_t cap)
{
    if (l == NULL || buf == NULL || cap < PP_FTP_LINE_BUF) {
        return PP_FTP_EINVAL;
    }
    memset(l, 0, sizeof(*l));
    l->buf = buf;
    l->cap = cap;
    return PP_FTP_OK;
}

static void lines_reset(pp_ftp_lines *l)
{
    l->len = 0;
    l->nul_seen = false;
}

/* The LF has arrived: hand out the line, or reject it if it held a NUL. */
static pp_ftp_err lines_finish(pp_ftp_lines *l, const char **line, size_t *line_len)
{
    size_t n = l->len;

    if (n > 0 && l->buf[n - 1] == CR) {
        n--;
    }
    if (l->nul_seen) {
        lines_reset(l);
        return PP_FTP_ENUL;
    }
    l->buf[n] = '\0';
    *line = l->buf;
    *line_len = n;
    l->returned = true;
    return PP_FTP_OK;
}

/* Skips to just past the next LF of an overlong line; true when found. */
static bool lines_discard(pp_ftp_lines *l, const uint8_t *p, size_t n, size_t *i)
{
    const uint8_t *lf = memchr(p + *i, LF, n - *i);

    if (lf == NULL) {
        *i = n;
        return false;
    }
    *i = (size_t)(lf - p) + 1;
    l->discarding = false;
    lines_reset(l);
    return true;
}

pp_ftp_err pp_ftp_lines_feed(pp_ftp_lines *l, const void *data, size_t n, size_t *consumed,
                             const char **line, size_t *line_len)
{
    const uint8_t *p = data;
    size_t i = 0;

    if (l == NULL || l->buf == NULL || (data == NULL && n > 0) || consumed == NULL ||
        line == NULL || line_len == NULL) {
        return PP_FTP_EINVAL;
    }
    *consumed = 0;
    if (l->returned) {
        l->returned = false;
        lines_reset(l);
    }
    while (i < n) {
        if (l->discarding && !lines_discard(l, p, n, &i)) {
            break;
        }
        if (i >= n) {
            break;
        }
        uint8_t c = p[i++];
        if (c == LF) {
            *consumed = i;
            return lines_finish(l, line, line_len);
        }
        /* A non-LF byte when PP_FTP_MAX_LINE - 1 are held means the line
         * needs at least PP_FTP_MAX_LINE + 1 bytes with its LF. */
        if (l->len >= PP_FTP_MAX_LINE - 1) {
            l->discarding = true;
            lines_reset(l);
            *consumed = i;
            return PP_FTP_ETOOLONG;
        }
        l->nul_seen |= (c == '\0');
        l->buf[l->len++] = (char)c;
    }
    *consumed = n;
    return PP_FTP_ENEED;
}

/* ---- commands ----------------------------------------------------------- */

pp_ftp_err pp_ftp_parse_command(const char *line, size_t len, pp_ftp_cmd *cmd)
{
    size_t v = 0;

    if (line == NULL || cmd == NULL) {
        return PP_FTP_EINVAL;
    }
    if (len >= PP_FTP_MAX_LINE) {
        return PP_FTP_ETOOLONG;
    }
    if (memchr(line, '\0', len) != NULL) {
        return PP_FTP_ENUL;
    }
    memset(cmd, 0, sizeof(*cmd));
    while (v < len && is_alpha(line[v])) {
        if (v == PP_FTP_VERB_MAX) {
            return PP_FTP_EVERB;
        }
        cmd->verb[v] = to_upper(line[v]);
        v++;
    }
    if (v == 0 || (v < len && line[v] != ' ')) {
        return PP_FTP_EVERB;
    }
    if (v < len) {
        cmd->has_arg = true;
        cmd->arg_len = len - v - 1;
        memcpy(cmd->arg, line + v + 1, cmd->arg_len);
    }
    cmd->arg[cmd->arg_len] = '\0';
    return PP_FTP_OK;
}

/* ---- replies ------------------------------------------------------------ */

/* "NNN" with a first digit of 1..5 at the start of a line; 0 when absent. */
static int reply_code(const char *line, size_t len)
{
    if (len < CODE_DIGITS || line[0] < '1' || line[0] > '5' || !is_digit(line[1]) ||
        !is_digit(line[2])) {
        return 0;
    }
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

pp_ftp_err pp_ftp_parse_reply_line(const char *line, size_t len, pp_ftp_reply_line *out)
{
    int code;

    if (line == NULL || out == NULL) {
        return PP_FTP_EINVAL;
    }
    code = reply_code(line, len);
    out->kind = PP_FTP_LINE_TEXT;
    out->code = 0;
    out->text = line;
    out->text_len = len;
    if (code == 0) {
        return PP_FTP_OK;
    }
    /* A bare "NNN" is not RFC 959 but some servers send it; treat it as final. */
    if (len == CODE_DIGITS || line[CODE_DIGITS] == ' ') {
        out->kind = PP_FTP_LINE_SINGLE;
    } else if (line[CODE_DIGITS] == '-') {
        out->kind = PP_FTP_LINE_START;
    } else {
        return PP_FTP_OK;
    }
    out->code = code;
    out->text = line + (len == CODE_DIGITS ? CODE_DIGITS : CODE_DIGITS + 1);
    out->text_len = len - (size_t)(out->text - line);
    return PP_FTP_OK;
}

void pp_ftp_reply_init(pp_ftp_reply_asm *a)
{
    if (a != NULL) {
        memset(a, 0, sizeof(*a));
    }
}

/* First line: decides whether the reply is single- or multi-line. */
static pp_ftp_err reply_first(pp_ftp_reply_asm *a, const pp_ftp_reply_line *rl)
{
    if (rl->kind == PP_FTP_LINE_TEXT) {
        return PP_FTP_EREPLY;
    }
    a->code = rl->code;
    if (rl->kind == PP_FTP_LINE_SINGLE) {
        a->done = true;
        return PP_FTP_OK;
    }
    a->multi = true;
    return PP_FTP_ENEED;
}

pp_ftp_err pp_ftp_reply_feed(pp_ftp_reply_asm *a, const char *line, size_t len)
{
    pp_ftp_reply_line rl;

    if (a == NULL || line == NULL) {
        return PP_FTP_EINVAL;
    }
    if (a->done) {
        pp_ftp_reply_init(a);
    }
    if (a->lines >= PP_FTP_MAX_REPLY_LINES) {
        return PP_FTP_ETOOMANY;
    }
    (void)pp_ftp_parse_reply_line(line, len, &rl);
    a->lines++;
    if (!a->multi) {
        return reply_first(a, &rl);
    }
    if (rl.kind == PP_FTP_LINE_SINGLE && rl.code == a->code) {
        a->multi = false;
        a->done = true;
        return PP_FTP_OK;
    }
    return PP_FTP_ENEED;
}

pp_ftp_err pp_ftp_format_reply(char *buf, size_t cap, int code, const char *text,
                               size_t *out_len)
{
    int n;

    if (buf == NULL || text == NULL || out_len == NULL || code < PP_FTP_CODE_MIN ||
        code > PP_FTP_CODE_MAX || strpbrk(text, "\r\n") != NULL) {
        return PP_FTP_EINVAL;
    }
    n = snprintf(buf, cap, "%03d %s\r\n", code, text);
    if (n < 0) {
        return PP_FTP_EINVAL;
    }
    if ((size_t)n > PP_FTP_MAX_LINE) {
        return PP_FTP_ETOOLONG;
    }
    if ((size_t)n >= cap) {
        return PP_FTP_ESPACE;
    }
    *out_len = (size_t)n;
    return PP_FTP_OK;
}

/* ---- numbers ------------------------------------------------------------ */

/* Reads 1..max_digits decimal digits at s[*i]. A longer run is ERANGE, not a
 * shorter number, so "1234" never reads as 123. */
static pp_ftp_err read_uint(const char *s, size_t len, size_t *i, unsigned max_digits,
                            unsigned *val)
{
    unsigned v = 0;
    size_t start = *i;

    while (*i < len && is_digit(s[*i])) {
        if (*i - start == max_digits) {
            return PP_FTP_ERANGE;
        }
        v = v * 10 + (unsigned)(s[*i] - '0');
        (*i)++;
    }
    if (*i == start) {
        return PP_FTP_ESYNTAX;
    }
    *val = v;
    return PP_FTP_OK;
}

static pp_ftp_err read_port(const char *s, size_t len, size_t *i, uint16_t *port)
{
    unsigned v;

    if (read_uint(s, len, i, PORT_DIGITS, &v) != PP_FTP_OK || v == 0 || v > PORT_MAX) {
        return PP_FTP_EPORT;
    }
    *port = (uint16_t)v;
    return PP_FTP_OK;
}

/* Reads "h1,h2,h3,h4,p1,p2" starting at s[*i] (spaces allowed after commas).
 * Shape errors win over range errors so a scan can tell "not here" apart. */
static pp_ftp_err read_hostport(const char *s, size_t len, size_t *i, pp_ftp_ipv4_port *out)
{
    unsigned v[HOSTPORT_FIELDS] = {0};
    bool too_big = false;

    for (size_t k = 0; k < HOSTPORT_FIELDS; k++) {
        if (k > 0) {
            if (*i >= len || s[*i] != ',') {
                return PP_FTP_ESYNTAX;
            }
            (*i)++;
            while (*i < len && s[*i] == ' ') {
                (*i)++;
            }
        }
        pp_ftp_err e = read_uint(s, len, i, OCTET_DIGITS, &v[k]);
        if (e == PP_FTP_ERANGE) {
            too_big = true;
            while (*i < len && is_digit(s[*i])) {
                (*i)++;
            }
        } else if (e != PP_FTP_OK) {
            return e;
        }
        too_big |= (v[k] > OCTET_MAX);
    }
    if (*i < len && s[*i] == ',') {
        return PP_FTP_ESYNTAX;      /* a seventh field */
    }
    if (too_big) {
        return PP_FTP_ERANGE;
    }
    for (size_t k = 0; k < 4; k++) {
        out->ip[k] = (uint8_t)v[k];
    }
    out->port = (uint16_t)((v[4] << PORT_HI_SHIFT) | v[5]);
    return out->port == 0 ? PP_FTP_EPORT : PP_FTP_OK;
}

/* More specific errors are more useful to report after a failed scan. */
static pp_ftp_err worse(pp_ftp_err a, pp_ftp_err b)
{
    return (a == PP_FTP_ESYNTAX) ? b : a;
}

/* ---- 227 / PORT --------------------------------------------------------- */

/* A number list may start here: a digit not glued to a sign, digit or comma. */
static bool list_start(const char *s, size_t i)
{
    if (!is_digit(s[i])) {
        return false;
    }
    return i == 0 || !(is_digit(s[i - 1]) || s[i - 1] == '-' || s[i - 1] == '+' ||
                       s[i - 1] == ',');
}

pp_ftp_err pp_ftp_parse_227(const char *text, size_t len, pp_ftp_ipv4_port *out)
{
    pp_ftp_err best = PP_FTP_ESYNTAX;

    if (text == NULL || out == NULL) {
        return PP_FTP_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (!list_start(text, i)) {
            continue;
        }
        size_t j = i;
        pp_ftp_ipv4_port hp;
        pp_ftp_err e = read_hostport(text, len, &j, &hp);
        if (e == PP_FTP_OK) {
            *out = hp;
            return PP_FTP_OK;
        }
        best = worse(best, e);
    }
    return best;
}

pp_ftp_err pp_ftp_parse_port(const char *arg, size_t len, pp_ftp_ipv4_port *out)
{
    size_t i = 0;
    pp_ftp_ipv4_port hp;
    pp_ftp_err e;

    if (arg == NULL || out == NULL) {
        return PP_FTP_EINVAL;
    }
    e = read_hostport(arg, len, &i, &hp);
    if (e != PP_FTP_OK) {
        return e;
    }
    if (i != len) {
        return PP_FTP_ESYNTAX;
    }
    *out = hp;
    return PP_FTP_OK;
}

pp_ftp_err pp_ftp_format_227(char *buf, size_t cap, const pp_ftp_ipv4_port *hp,
                             size_t *out_len)
{
    char text[64];

    if (hp == NULL) {
        return PP_FTP_EINVAL;
    }
    if (hp->port == 0) {
        return PP_FTP_EPORT;
    }
    (void)snprintf(text, sizeof(text), "Entering Passive Mode (%u,%u,%u,%u,%u,%u).",
                   hp->ip[0], hp->ip[1], hp->ip[2], hp->ip[3],
                   (unsigned)(hp->port >> PORT_HI_SHIFT), (unsigned)(hp->port & OCTET_MAX));
    return pp_ftp_format_reply(buf, cap, PP_FTP_227_PASSIVE, text, out_len);
}

/* ---- 229 ---------------------------------------------------------------- */

static bool delim_ok_229(char d)
{
    return d >= PRINT_MIN && d <= PRINT_MAX && !is_digit(d);
}

/* Tries "(<d><d><d>port<d>)" with the '(' at text[i]. */
static pp_ftp_err try_229(const char *text, size_t len, size_t i, uint16_t *port)
{
    char d;
    uint16_t p;

    if (len - i < 3 + 1 || !delim_ok_229(text[i + 1])) {
        return PP_FTP_ESYNTAX;
    }
    d = text[i + 1];
    if (text[i + 2] != d || text[i + 3] != d) {
        return PP_FTP_ESYNTAX;
    }
    i += 4;
    if (read_port(text, len, &i, &p) != PP_FTP_OK) {
        return PP_FTP_EPORT;
    }
    if (len - i < 2 || text[i] != d || text[i + 1] != ')') {
        return PP_FTP_ESYNTAX;
    }
    *port = p;
    return PP_FTP_OK;
}

pp_ftp_err pp_ftp_parse_229(const char *text, size_t len, uint16_t *port)
{
    pp_ftp_err best = PP_FTP_ESYNTAX;

    if (text == NULL || port == NULL) {
        return PP_FTP_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '(') {
            continue;
        }
        pp_ftp_err e = try_229(text, len, i, port);
        if (e == PP_FTP_OK) {
            return PP_FTP_OK;
        }
        best = worse(best, e);
    }
    return best;
}

pp_ftp_err pp_ftp_format_229(char *buf, size_t cap, uint16_t port, size_t *out_len)
{
    char text[64];

    if (port == 0) {
        return PP_FTP_EPORT;
    }
    (void)snprintf(text, sizeof(text), "Entering Extended Passive Mode (|||%u|)",
                   (unsigned)port);
    return pp_ftp_format_reply(buf, cap, PP_FTP_229_EXT_PASSIVE, text, out_len);
}

/* ---- EPRT --------------------------------------------------------------- */

/* Letters, digits, '.' and ':' can appear inside the fields, so a delimiter
 * drawn from them would make the split ambiguous. */
static bool delim_ok_eprt(char d)
{
    return d >= PRINT_MIN && d <= PRINT_MAX && !is_digit(d) && !is_alpha(d) && d != '.' &&
           d != ':';
}

/* Returns the index of the next delimiter at or after i, or len. */
static size_t field_end(const char *s, size_t len, size_t i, char d)
{
    const char *p = memchr(s + i, d, len - i);

    return p == NULL ? len : (size_t)(p - s);
}

static pp_ftp_err eprt_proto(const char *s, size_t n, pp_ftp_eprt *out)
{
    if (n == 0) {
        return PP_FTP_ESYNTAX;
    }
    if (n == 1 && s[0] == '0' + PP_FTP_EPRT_IPV4) {
        out->proto = PP_FTP_EPRT_IPV4;
        out->family = AF_INET;
        return PP_FTP_OK;
    }
    if (n == 1 && s[0] == '0' + PP_FTP_EPRT_IPV6) {
        out->proto = PP_FTP_EPRT_IPV6;
        out->family = AF_INET6;
        return PP_FTP_OK;
    }
    return PP_FTP_EFAMILY;
}

static pp_ftp_err eprt_addr(const char *s, size_t n, pp_ftp_eprt *out)
{
    if (n == 0 || n >= sizeof(out->addr_str)) {
        return PP_FTP_ESYNTAX;
    }
    memcpy(out->addr_str, s, n);
    out->addr_str[n] = '\0';
    if (memchr(s, '\0', n) != NULL || inet_pton(out->family, out->addr_str, out->addr) != 1) {
        return PP_FTP_ESYNTAX;
    }
    return PP_FTP_OK;
}

pp_ftp_err pp_ftp_parse_eprt(const char *arg, size_t len, pp_ftp_eprt *out)
{
    pp_ftp_eprt r;
    size_t i = 1, end;
    char d;
    pp_ftp_err e;

    if (arg == NULL || out == NULL) {
        return PP_FTP_EINVAL;
    }
    if (len < 1 || !delim_ok_eprt(arg[0])) {
        return PP_FTP_ESYNTAX;
    }
    memset(&r, 0, sizeof(r));
    d = arg[0];
    end = field_end(arg, len, i, d);
    if (end == len) {
        return PP_FTP_ESYNTAX;
    }
    if ((e = eprt_proto(arg + i, end - i, &r)) != PP_FTP_OK) {
        return e;
    }
    i = end + 1;
    end = field_end(arg, len, i, d);
    if (end == len) {
        return PP_FTP_ESYNTAX;
    }
    if ((e = eprt_addr(arg + i, end - i, &r)) != PP_FTP_OK) {
        return e;
    }
    i = end + 1;
    end = field_end(arg, len, i, d);
    if (end == len || end + 1 != len) {
        return PP_FTP_ESYNTAX;
    }
    if (read_port(arg, end, &i, &r.port) != PP_FTP_OK || i != end) {
        return PP_FTP_EPORT;
    }
    *out = r;
    return PP_FTP_OK;
}
