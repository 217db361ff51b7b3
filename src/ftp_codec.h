/* SPDX-License-Identifier: MIT */
/*
 * FTP control-channel codec: line splitting, command and reply parsing, passive
 * and active address arguments (227/229/PORT/EPRT) and reply formatting. Pure:
 * no sockets, no allocation, no I/O; every function works on caller buffers.
 */
#ifndef PP_FTP_CODEC_H
#define PP_FTP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/* Reply codes the proxy and the simulator name (RFC 959, RFC 2228, RFC 2428). */
#define PP_FTP_150_OPENING_DATA      150
#define PP_FTP_200_OK                200
#define PP_FTP_202_NOT_IMPLEMENTED   202
#define PP_FTP_211_STATUS            211
#define PP_FTP_213_FILE_STATUS       213
#define PP_FTP_214_HELP              214
#define PP_FTP_215_SYSTEM            215
#define PP_FTP_220_READY             220
#define PP_FTP_221_BYE               221
#define PP_FTP_226_TRANSFER_DONE     226
#define PP_FTP_227_PASSIVE           227
#define PP_FTP_229_EXT_PASSIVE       229
#define PP_FTP_230_LOGGED_IN         230
#define PP_FTP_234_AUTH_OK           234
#define PP_FTP_250_FILE_OK           250
#define PP_FTP_257_PATH_CREATED      257
#define PP_FTP_331_NEED_PASSWORD     331
#define PP_FTP_350_PENDING           350
#define PP_FTP_421_UNAVAILABLE       421
#define PP_FTP_425_NO_DATA_CONN      425
#define PP_FTP_426_CONN_CLOSED       426
#define PP_FTP_450_FILE_BUSY         450
#define PP_FTP_451_LOCAL_ERROR       451
#define PP_FTP_500_SYNTAX            500
#define PP_FTP_501_BAD_ARGS          501
#define PP_FTP_502_NOT_IMPLEMENTED   502
#define PP_FTP_503_BAD_SEQUENCE      503
#define PP_FTP_504_BAD_PARAM         504
#define PP_FTP_522_BAD_PROTOCOL      522
#define PP_FTP_530_NOT_LOGGED_IN     530
#define PP_FTP_550_UNAVAILABLE       550

/* Valid reply codes are three digits with a first digit of 1..5. */
#define PP_FTP_CODE_MIN              100
#define PP_FTP_CODE_MAX              599

/* Longest command verb accepted. RFC 959 verbs have 3 or 4 letters; extensions
 * (e.g. "XCRC", "SITE"-style ones) stay short, so 8 leaves headroom. */
#define PP_FTP_VERB_MAX              8

/* Caller buffer size for the line splitter. The longest accepted line keeps at
 * most PP_FTP_MAX_LINE - 1 bytes before its LF (a CR among them); the last byte
 * holds a NUL so a returned line is always a C string. */
#define PP_FTP_LINE_BUF              PP_FTP_MAX_LINE

/* Room for the text form of an IPv6 address (INET6_ADDRSTRLEN, without pulling
 * <netinet/in.h> into every user of this header). */
#define PP_FTP_ADDR_STR              46

/* EPRT network protocol numbers (RFC 2428). */
#define PP_FTP_EPRT_IPV4             1
#define PP_FTP_EPRT_IPV6             2

typedef enum {
    PP_FTP_OK = 0,
    PP_FTP_ENEED,      /* no complete line / reply yet: feed more */
    PP_FTP_ETOOLONG,   /* line longer than PP_FTP_MAX_LINE (answer 500) */
    PP_FTP_ENUL,       /* NUL byte inside a line */
    PP_FTP_EVERB,      /* command verb missing, too long or not letters */
    PP_FTP_EREPLY,     /* not a reply line where one was required */
    PP_FTP_ETOOMANY,   /* reply has more than PP_FTP_MAX_REPLY_LINES lines */
    PP_FTP_ESYNTAX,    /* address argument malformed */
    PP_FTP_ERANGE,     /* a number is outside its range (e.g. octet > 255) */
    PP_FTP_EPORT,      /* port is 0, above 65535 or malformed */
    PP_FTP_EFAMILY,    /* EPRT network protocol is neither 1 nor 2 */
    PP_FTP_ESPACE,     /* output buffer too small */
    PP_FTP_EINVAL      /* bad argument from the caller */
} pp_ftp_err;

const char *pp_ftp_strerror(pp_ftp_err err);

/* ---- line splitter ------------------------------------------------------ */

/* Incremental splitter over a caller-owned buffer of at least PP_FTP_LINE_BUF
 * bytes. A line is complete at LF; one CR before the LF is stripped. A line is
 * too long when it needs more than PP_FTP_MAX_LINE bytes with its terminator. */
typedef struct {
    char *buf;
    size_t cap;
    size_t len;        /* bytes of the current line held in buf */
    bool returned;     /* buf holds a line handed out by the last call */
    bool nul_seen;     /* current line contains a NUL: reject it at LF */
    bool discarding;   /* overlong line reported: drop bytes up to its LF */
} pp_ftp_lines;

pp_ftp_err pp_ftp_lines_init(pp_ftp_lines *l, char *buf, size_t cap);

/* Consumes bytes from data until one line is complete or data runs out, and sets
 * *consumed. Returns:
 *   PP_FTP_OK       a line is ready: *line (NUL-terminated, inside the caller's
 *                   buffer, valid until the next call) and *line_len;
 *   PP_FTP_ENEED    all bytes consumed, no complete line yet;
 *   PP_FTP_ETOOLONG reported once as soon as the line overflows; the rest of it,
 *                   up to and including its LF, is then silently dropped so the
 *                   caller may answer 500 and keep going, or close;
 *   PP_FTP_ENUL     a complete line contained a NUL; it has been consumed.
 * Call again with the remaining bytes (data + *consumed) while any remain. */
pp_ftp_err pp_ftp_lines_feed(pp_ftp_lines *l, const void *data, size_t n, size_t *consumed,
                             const char **line, size_t *line_len);

/* ---- commands ----------------------------------------------------------- */

typedef struct {
    char verb[PP_FTP_VERB_MAX + 1];  /* upper-cased, NUL-terminated */
    char arg[PP_FTP_MAX_LINE];       /* everything after the first space; may be empty */
    size_t arg_len;
    bool has_arg;                    /* a space followed the verb (arg may still be "") */
} pp_ftp_cmd;

/* Parses a line without its terminator: VERB, or VERB SP argument. The verb is
 * 1..PP_FTP_VERB_MAX ASCII letters; the argument keeps its spaces verbatim. */
pp_ftp_err pp_ftp_parse_command(const char *line, size_t len, pp_ftp_cmd *cmd);

/* ---- replies ------------------------------------------------------------ */

typedef enum {
    PP_FTP_LINE_SINGLE,   /* "NNN text": a whole reply, or the end of a multi-line one */
    PP_FTP_LINE_START,    /* "NNN-text": first line of a multi-line reply */
    PP_FTP_LINE_TEXT      /* anything else: only valid inside a multi-line reply */
} pp_ftp_line_kind;

typedef struct {
    pp_ftp_line_kind kind;
    int code;             /* 0 for PP_FTP_LINE_TEXT */
    const char *text;     /* after "NNN " / "NNN-" (the whole line for TEXT) */
    size_t text_len;
} pp_ftp_reply_line;

/* Classifies one reply line (terminator already stripped). Never fails on
 * input the splitter produced; PP_FTP_EINVAL only for NULL pointers. */
pp_ftp_err pp_ftp_parse_reply_line(const char *line, size_t len, pp_ftp_reply_line *out);

/* Reply assembler: feed lines in order; it says when the reply is complete. */
typedef struct {
    int code;             /* code of the reply being assembled, 0 before its first line */
    unsigned lines;       /* lines consumed so far */
    bool multi;           /* inside a multi-line reply */
    bool done;            /* the last fed line completed the reply */
} pp_ftp_reply_asm;

void pp_ftp_reply_init(pp_ftp_reply_asm *a);

/* Returns PP_FTP_OK when this line completes the reply (a->code is its code),
 * PP_FTP_ENEED when more lines are needed, PP_FTP_EREPLY when the first line is
 * not a reply line, PP_FTP_ETOOMANY past PP_FTP_MAX_REPLY_LINES. Inside a
 * multi-line reply, per RFC 959 only "NNN " with the opening code ends it;
 * lines with other codes are text. Feeding after completion starts a new
 * reply; after an error, call pp_ftp_reply_init before reuse. */
pp_ftp_err pp_ftp_reply_feed(pp_ftp_reply_asm *a, const char *line, size_t len);

/* Writes "NNN text\r\n" plus a NUL into buf; *out_len excludes the NUL. The
 * text must not contain CR, LF or NUL (that would inject a second line). */
pp_ftp_err pp_ftp_format_reply(char *buf, size_t cap, int code, const char *text,
                               size_t *out_len);

/* ---- addresses ---------------------------------------------------------- */

typedef struct {
    uint8_t ip[4];        /* first octet in ip[0] (network order) */
    uint16_t port;        /* host order, never 0 */
} pp_ftp_ipv4_port;

/* Finds "h1,h2,h3,h4,p1,p2" anywhere in a 227 reply's text, with or without the
 * parentheses. Numbers are 1..3 digits, 0..255, optionally followed by spaces
 * after each comma. */
pp_ftp_err pp_ftp_parse_227(const char *text, size_t len, pp_ftp_ipv4_port *out);

/* Writes "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).\r\n". */
pp_ftp_err pp_ftp_format_227(char *buf, size_t cap, const pp_ftp_ipv4_port *hp,
                             size_t *out_len);

/* Finds "(<d><d><d>port<d>)" in a 229 reply's text; <d> is any one character in
 * 33..126 that is not a digit, repeated. Returns the port (1..65535). */
pp_ftp_err pp_ftp_parse_229(const char *text, size_t len, uint16_t *port);

/* Writes "229 Entering Extended Passive Mode (|||port|)\r\n". */
pp_ftp_err pp_ftp_format_229(char *buf, size_t cap, uint16_t port, size_t *out_len);

/* Parses a PORT argument: exactly "h1,h2,h3,h4,p1,p2". */
pp_ftp_err pp_ftp_parse_port(const char *arg, size_t len, pp_ftp_ipv4_port *out);

typedef struct {
    int proto;                    /* PP_FTP_EPRT_IPV4 or PP_FTP_EPRT_IPV6 */
    int family;                   /* AF_INET or AF_INET6 */
    uint8_t addr[16];             /* 4 or 16 bytes used, network order */
    char addr_str[PP_FTP_ADDR_STR];
    uint16_t port;                /* host order, never 0 */
} pp_ftp_eprt;

/* Parses an EPRT argument "<d>proto<d>address<d>port<d>". The delimiter is any
 * character in 33..126 that cannot occur in the fields (not a letter, digit,
 * '.' or ':'). */
pp_ftp_err pp_ftp_parse_eprt(const char *arg, size_t len, pp_ftp_eprt *out);

#endif
