/* SPDX-License-Identifier: MIT */
/*
 * Owns the command line and environment contract. Each option is one row of a table
 * that names its long option, short letter and variable; the same setter parses the
 * value whichever way it came, so errors read the same and precedence is uniform.
 */
#include "autoconf.h"

#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum src_level { SRC_NONE = 0, SRC_ENV, SRC_CLI };

/* Parsing state beyond the struct itself: where values came from. */
struct parse_ctx {
    struct pp_config *cfg;
    unsigned services_val[3];       /* indexed by enum src_level */
    bool services_set[3];
    bool enable_all[3];
    char code[3][PP_ACCESS_CODE_MAX + 1];
    char code_file[3][PP_PATH_MAX];
    int ports[3][PP_SVC_COUNT];
    int printer_ports[3][PP_SVC_COUNT];
};

typedef int (*setter_fn)(struct parse_ctx *pc, enum src_level lvl, const char *val,
                         char *err, size_t errlen);

struct opt_row {
    const char *longname;
    int shortname;      /* 0 when none; >= 256 for long-only ids */
    const char *env;    /* NULL when none */
    int has_arg;
    setter_fn set;
    const char *argname;
    const char *help;
};

static const char *const svc_names[PP_SVC_COUNT] = { "mqtt", "ftp", "chamber", "rtsp" };
static const int default_ports[PP_SVC_COUNT] = {
    PP_PORT_MQTT, PP_PORT_FTP, PP_PORT_CHAMBER, PP_PORT_RTSP
};

const char *config_svc_name(enum pp_svc svc)
{
    return (svc >= 0 && svc < PP_SVC_COUNT) ? svc_names[svc] : "?";
}

int config_svc_from_name(const char *name)
{
    for (int i = 0; i < PP_SVC_COUNT; i++) {
        if (strcmp(name, svc_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *config_camera_name(enum pp_camera_mode mode)
{
    switch (mode) {
    case PP_CAMERA_CHAMBER:
        return "chamber";
    case PP_CAMERA_RTSP:
        return "rtsp";
    default:
        return "auto";
    }
}

bool config_svc_enabled(const struct pp_config *cfg, enum pp_svc svc, enum pp_camera_mode cam)
{
    switch (svc) {
    case PP_SVC_MQTT:
        return (cfg->services & PP_WANT_MQTT) != 0;
    case PP_SVC_FTP:
        return (cfg->services & PP_WANT_FTP) != 0;
    case PP_SVC_CHAMBER:
        return (cfg->services & PP_WANT_CAMERA) != 0 && cam == PP_CAMERA_CHAMBER;
    case PP_SVC_RTSP:
        return (cfg->services & PP_WANT_CAMERA) != 0 && cam == PP_CAMERA_RTSP;
    default:
        return false;
    }
}

int config_parse_bool(const char *s)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            return 1;
        }
        if (strcasecmp(s, no[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_int(const char *s, long lo, long hi, int *out, char *err, size_t errlen)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || isspace((unsigned char)s[0])) {
        return fail(err, errlen, "'%s' is not a number", s);
    }
    if (v < lo || v > hi) {
        return fail(err, errlen, "%ld is out of range (%ld-%ld)", v, lo, hi);
    }
    *out = (int)v;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *val, char *err, size_t errlen)
{
    if (val[0] == '\0') {
        return fail(err, errlen, "must not be empty");
    }
    if (strlen(val) >= cap) {
        return fail(err, errlen, "is too long (at most %zu characters)", cap - 1);
    }
    memcpy(dst, val, strlen(val) + 1);
    return 0;
}

static int set_host(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                    size_t errlen)
{
    (void)lvl;
    for (const char *p = val; *p; p++) {
        if (isspace((unsigned char)*p) || !isprint((unsigned char)*p)) {
            return fail(err, errlen, "'%s' is not a host name or address", val);
        }
    }
    return copy_str(pc->cfg->printer_host, sizeof(pc->cfg->printer_host), val, err, errlen);
}

static int check_code(const char *val, char *err, size_t errlen)
{
    size_t n = strlen(val);

    if (n == 0) {
        return fail(err, errlen, "the access code is empty");
    }
    if (n > PP_ACCESS_CODE_MAXLEN) {
        return fail(err, errlen, "the access code is longer than %d characters",
                    PP_ACCESS_CODE_MAXLEN);
    }
    for (size_t i = 0; i < n; i++) {
        if (!isgraph((unsigned char)val[i])) {
            return fail(err, errlen, "the access code contains a space or control character");
        }
    }
    return 0;
}

static int set_code(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                    size_t errlen)
{
    if (check_code(val, err, errlen) != 0) {
        return -1;
    }
    snprintf(pc->code[lvl], sizeof(pc->code[lvl]), "%s", val);
    return 0;
}

static int set_code_file(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                         size_t errlen)
{
    return copy_str(pc->code_file[lvl], sizeof(pc->code_file[lvl]), val, err, errlen);
}

static int set_serial(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                      size_t errlen)
{
    (void)lvl;
    for (const char *p = val; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
            return fail(err, errlen, "'%s' may contain only letters, digits, '-' and '_'", val);
        }
    }
    return copy_str(pc->cfg->serial, sizeof(pc->cfg->serial), val, err, errlen);
}

static int set_bind(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                    size_t errlen)
{
    unsigned char tmp[sizeof(struct in6_addr)];

    (void)lvl;
    if (inet_pton(AF_INET, val, tmp) != 1 && inet_pton(AF_INET6, val, tmp) != 1) {
        return fail(err, errlen, "'%s' is not an IPv4 or IPv6 address", val);
    }
    return copy_str(pc->cfg->bind_addr, sizeof(pc->cfg->bind_addr), val, err, errlen);
}

static int parse_services(const char *val, unsigned *out, char *err, size_t errlen)
{
    char tmp[256];
    char *save = NULL;
    unsigned set = 0;

    if (copy_str(tmp, sizeof(tmp), val, err, errlen) != 0) {
        return -1;
    }
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok)) {
            tok++;
        }
        if (strcmp(tok, "camera") == 0) {
            set |= PP_WANT_CAMERA;
        } else if (strcmp(tok, "mqtt") == 0) {
            set |= PP_WANT_MQTT;
        } else if (strcmp(tok, "ftp") == 0) {
            set |= PP_WANT_FTP;
        } else if (strcmp(tok, "all") == 0) {
            set |= PP_WANT_ALL;
        } else {
            return fail(err, errlen, "unknown service '%s' (known: camera, mqtt, ftp)", tok);
        }
    }
    if (set == 0) {
        return fail(err, errlen, "no service named");
    }
    *out = set;
    return 0;
}

static int set_services(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                        size_t errlen)
{
    if (parse_services(val, &pc->services_val[lvl], err, errlen) != 0) {
        return -1;
    }
    pc->services_set[lvl] = true;
    return 0;
}

static int set_bool_field(bool *field, const char *val, char *err, size_t errlen)
{
    int b = config_parse_bool(val);

    if (b < 0) {
        return fail(err, errlen, "'%s' is not a boolean (use 1/true/yes or 0/false/no)", val);
    }
    *field = b == 1;
    return 0;
}

static int set_enable_all(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                          size_t errlen)
{
    return set_bool_field(&pc->enable_all[lvl], val ? val : "1", err, errlen);
}

static int set_camera(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                      size_t errlen)
{
    (void)lvl;
    if (strcmp(val, "auto") == 0) {
        pc->cfg->camera = PP_CAMERA_AUTO;
    } else if (strcmp(val, "chamber") == 0) {
        pc->cfg->camera = PP_CAMERA_CHAMBER;
    } else if (strcmp(val, "rtsp") == 0) {
        pc->cfg->camera = PP_CAMERA_RTSP;
    } else {
        return fail(err, errlen, "unknown camera mode '%s' (auto, chamber or rtsp)", val);
    }
    return 0;
}

/* "name=port[,name=port...]" into ports[], which starts filled with -1 (unset). */
static int parse_port_list(const char *val, int *ports, int minport, char *err, size_t errlen)
{
    char tmp[256];
    char *save = NULL;

    if (copy_str(tmp, sizeof(tmp), val, err, errlen) != 0) {
        return -1;
    }
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        int svc, port;

        if (eq == NULL) {
            return fail(err, errlen, "'%s' is not NAME=PORT", tok);
        }
        *eq = '\0';
        svc = config_svc_from_name(tok);
        if (svc < 0) {
            return fail(err, errlen, "unknown service '%s' (mqtt, ftp, chamber, rtsp)", tok);
        }
        if (parse_int(eq + 1, minport, 65535, &port, err, errlen) != 0) {
            return -1;
        }
        ports[svc] = port;
    }
    return 0;
}

static int set_ports(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                     size_t errlen)
{
    return parse_port_list(val, pc->ports[lvl], 0, err, errlen);
}

static int set_printer_ports(struct parse_ctx *pc, enum src_level lvl, const char *val,
                             char *err, size_t errlen)
{
    return parse_port_list(val, pc->printer_ports[lvl], 1, err, errlen);
}

#define PATH_SETTER(fname, field) \
    static int fname(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err, \
                     size_t errlen) \
    { \
        (void)lvl; \
        return copy_str(pc->cfg->field, sizeof(pc->cfg->field), val, err, errlen); \
    }

PATH_SETTER(set_state_dir, state_dir)
PATH_SETTER(set_cert, cert_file)
PATH_SETTER(set_key, key_file)
PATH_SETTER(set_printer_ca, printer_ca)
PATH_SETTER(set_run_as, run_as)

/* A boolean option: given alone (no value) it means true. */
#define BOOL_SETTER(fname, field) \
    static int fname(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err, \
                     size_t errlen) \
    { \
        (void)lvl; \
        return set_bool_field(&pc->cfg->field, val ? val : "1", err, errlen); \
    }

BOOL_SETTER(set_insecure, insecure_printer)
BOOL_SETTER(set_syslog, use_syslog)
BOOL_SETTER(set_verbose, verbose)

static int set_max_clients(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                           size_t errlen)
{
    (void)lvl;
    return parse_int(val, 1, PP_MAX_CLIENTS_CEILING, &pc->cfg->max_clients, err, errlen);
}

static int set_linger(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                      size_t errlen)
{
    (void)lvl;
    return parse_int(val, 0, 86400, &pc->cfg->camera_linger_s, err, errlen);
}

static int set_redetect(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                        size_t errlen)
{
    (void)lvl;
    return parse_int(val, 0, PP_CAMERA_REDETECT_MAX_S, &pc->cfg->camera_redetect_s, err, errlen);
}

static int set_ftp_ports(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                         size_t errlen)
{
    char tmp[32];
    char *dash;
    int lo, hi;

    (void)lvl;
    if (copy_str(tmp, sizeof(tmp), val, err, errlen) != 0) {
        return -1;
    }
    dash = strchr(tmp, '-');
    if (dash == NULL) {
        return fail(err, errlen, "'%s' is not a range LO-HI", val);
    }
    *dash = '\0';
    if (parse_int(tmp, 1, 65535, &lo, err, errlen) != 0 ||
        parse_int(dash + 1, 1, 65535, &hi, err, errlen) != 0) {
        return -1;
    }
    if (lo > hi) {
        return fail(err, errlen, "range %d-%d is empty (LO must not exceed HI)", lo, hi);
    }
    pc->cfg->ftp_data_lo = lo;
    pc->cfg->ftp_data_hi = hi;
    return 0;
}

static int set_pasv_addr(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err,
                         size_t errlen)
{
    struct in_addr a;

    (void)lvl;
    if (inet_pton(AF_INET, val, &a) != 1) {
        return fail(err, errlen, "'%s' is not an IPv4 address (PASV replies carry IPv4 only)",
                    val);
    }
    return copy_str(pc->cfg->ftp_pasv_address, sizeof(pc->cfg->ftp_pasv_address), val, err,
                    errlen);
}

static int set_ftp_sessions(struct parse_ctx *pc, enum src_level lvl, const char *val,
                            char *err, size_t errlen)
{
    (void)lvl;
    return parse_int(val, 1, 64, &pc->cfg->ftp_max_sessions, err, errlen);
}

#define FLAG_SETTER(fname, field) \
    static int fname(struct parse_ctx *pc, enum src_level lvl, const char *val, char *err, \
                     size_t errlen) \
    { \
        (void)lvl; \
        (void)val; \
        (void)err; \
        (void)errlen; \
        pc->cfg->field = true; \
        return 0; \
    }

FLAG_SETTER(set_print_ca, print_ca)
FLAG_SETTER(set_check, check_config)
FLAG_SETTER(set_health, health)
FLAG_SETTER(set_help, help)
FLAG_SETTER(set_version, version)

enum {
    OPT_CODE_FILE = 256, OPT_SERVICES, OPT_ENABLE_ALL, OPT_CAMERA, OPT_PORT, OPT_PRINTER_PORT,
    OPT_STATE_DIR, OPT_CERT, OPT_KEY, OPT_PRINTER_CA, OPT_INSECURE, OPT_MAX_CLIENTS,
    OPT_LINGER, OPT_REDETECT, OPT_FTP_PORTS, OPT_PASV, OPT_FTP_SESSIONS, OPT_USER, OPT_SYSLOG,
    OPT_PRINT_CA, OPT_HEALTH
};

static const struct opt_row rows[] = {
    { "printer-ip", 'p', "PRINTER_IP", required_argument, set_host, "HOST",
      "printer address (IPv4, IPv6 or host name); required" },
    { "access-code", 'a', "ACCESS_CODE", required_argument, set_code, "CODE",
      "printer access code; required unless --access-code-file is given" },
    { "access-code-file", OPT_CODE_FILE, "ACCESS_CODE_FILE", required_argument, set_code_file,
      "FILE", "read the access code from FILE (keeps it out of ps)" },
    { "serial-number", 's', "SERIAL_NUMBER", required_argument, set_serial, "SN",
      "printer serial number; required" },
    { "bind", 'b', "BIND_ADDRESS", required_argument, set_bind, "ADDR",
      "listen address (default 0.0.0.0; :: for dual stack)" },
    { "services", OPT_SERVICES, "SERVICES", required_argument, set_services, "LIST",
      "comma list of camera,mqtt,ftp (default camera)" },
    { "enable-all", OPT_ENABLE_ALL, "ENABLE_ALL", no_argument, set_enable_all, NULL,
      "enable every service" },
    { "camera", OPT_CAMERA, "CAMERA", required_argument, set_camera, "MODE",
      "auto (default: detect), chamber (port 6000) or rtsp (port 322)" },
    { "port", OPT_PORT, "PORTS", required_argument, set_ports, "NAME=PORT",
      "listen port of mqtt, ftp, chamber or rtsp (0 = any free port); repeatable" },
    { "printer-port", OPT_PRINTER_PORT, "PRINTER_PORTS", required_argument, set_printer_ports,
      "NAME=PORT", "port of that service on the printer; repeatable" },
    { "state-dir", OPT_STATE_DIR, "STATE_DIR", required_argument, set_state_dir, "DIR",
      "where the generated certificates and the printer pin live" },
    { "cert", OPT_CERT, "TLS_CERT", required_argument, set_cert, "FILE",
      "serve this certificate (PEM) instead of the generated one" },
    { "key", OPT_KEY, "TLS_KEY", required_argument, set_key, "FILE",
      "private key for --cert" },
    { "printer-ca", OPT_PRINTER_CA, "PRINTER_CA", required_argument, set_printer_ca, "FILE",
      "verify the printer against this CA and its CN against the serial" },
    { "insecure-printer", OPT_INSECURE, "INSECURE_PRINTER", no_argument, set_insecure, NULL,
      "accept any printer certificate (no pinning)" },
    { "max-clients", OPT_MAX_CLIENTS, "MAX_CLIENTS", required_argument, set_max_clients, "N",
      "clients per service (default 32)" },
    { "camera-linger", OPT_LINGER, "CAMERA_LINGER", required_argument, set_linger, "SEC",
      "keep the printer camera connection this long after the last viewer (default 60)" },
    { "camera-redetect", OPT_REDETECT, "CAMERA_REDETECT", required_argument, set_redetect,
      "SEC", "probe both camera ports again after the camera failed this long (default 300; "
      "0 = never)" },
    { "ftp-data-ports", OPT_FTP_PORTS, "FTP_DATA_PORTS", required_argument, set_ftp_ports,
      "LO-HI", "ports for passive FTP data connections (default 50000-50100)" },
    { "ftp-pasv-address", OPT_PASV, "FTP_PASV_ADDRESS", required_argument, set_pasv_addr,
      "ADDR", "IPv4 address announced in passive replies (NAT, containers)" },
    { "ftp-max-sessions", OPT_FTP_SESSIONS, "FTP_MAX_SESSIONS", required_argument,
      set_ftp_sessions, "N", "FTP sessions open to the printer at once (default 2)" },
    { "user", OPT_USER, "RUN_AS", required_argument, set_run_as, "NAME",
      "drop to this user after start-up" },
    { "syslog", OPT_SYSLOG, "SYSLOG", no_argument, set_syslog, NULL,
      "log to syslog instead of stderr" },
    { "verbose", 'v', "VERBOSE", no_argument, set_verbose, NULL, "debug logging" },
    { "print-ca", OPT_PRINT_CA, NULL, no_argument, set_print_ca, NULL,
      "print the proxy's CA certificate (PEM) and exit" },
    { "check-config", 'n', NULL, no_argument, set_check, NULL,
      "validate the configuration, then exit 0 if good or 2 if not" },
    { "health", OPT_HEALTH, NULL, no_argument, set_health, NULL,
      "TLS handshake to each enabled local port; exit 0 if all answer, else 1" },
    { "help", 'h', NULL, no_argument, set_help, NULL, "show this help and exit" },
    { "version", 'V', NULL, no_argument, set_version, NULL, "show the version and exit" },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

void config_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s -p HOST -s SERIAL (-a CODE | --access-code-file FILE) [OPTION]...\n"
            "Share one BambuLab printer's MQTT, FTPS and camera among many clients.\n\n"
            "Every option has an environment variable; the command line wins over the\n"
            "environment, which wins over the default. Booleans take 1/true/yes or 0/false/no.\n\n",
            prog);
    for (size_t i = 0; i < NROWS; i++) {
        char left[64];

        if (rows[i].shortname > 0 && rows[i].shortname < 256) {
            snprintf(left, sizeof(left), "-%c, --%s%s%s", rows[i].shortname, rows[i].longname,
                     rows[i].argname ? " " : "", rows[i].argname ? rows[i].argname : "");
        } else {
            snprintf(left, sizeof(left), "    --%s%s%s", rows[i].longname,
                     rows[i].argname ? " " : "", rows[i].argname ? rows[i].argname : "");
        }
        fprintf(out, "  %-32s %s", left, rows[i].help);
        if (rows[i].env) {
            fprintf(out, " [%s]", rows[i].env);
        }
        fputc('\n', out);
    }
    fprintf(out,
            "\nServices and default ports: mqtt 8883, ftp 990, chamber 6000, rtsp 322.\n"
            "  PORTS=mqtt=18883,ftp=18990 sets several listen ports at once.\n"
            "Exit status: 0 success, 1 runtime failure, 2 bad configuration.\n"
            "See pandaproxy(8) for the full manual.\n");
}

void config_default_state_dir(char *out, size_t len, pp_getenv_fn env, bool is_root)
{
    const char *v = env("STATE_DIRECTORY");

    if (v && v[0]) {
        /* systemd may pass several colon-separated directories: use the first. */
        size_t n = strcspn(v, ":");
        snprintf(out, len, "%.*s", (int)n, v);
    } else if (is_root) {
        snprintf(out, len, "/var/lib/pandaproxy");
    } else if ((v = env("XDG_STATE_HOME")) && v[0] == '/') {
        snprintf(out, len, "%s/pandaproxy", v);
    } else if ((v = env("HOME")) && v[0]) {
        snprintf(out, len, "%s/.local/state/pandaproxy", v);
    } else {
        snprintf(out, len, "/var/lib/pandaproxy");
    }
}

static void set_defaults(struct pp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->bind_addr, sizeof(cfg->bind_addr), "0.0.0.0");
    cfg->services = PP_WANT_CAMERA;
    cfg->camera = PP_CAMERA_AUTO;
    for (int i = 0; i < PP_SVC_COUNT; i++) {
        cfg->ports[i] = default_ports[i];
        cfg->printer_ports[i] = default_ports[i];
    }
    cfg->max_clients = PP_DEFAULT_MAX_CLIENTS;
    cfg->camera_linger_s = PP_DEFAULT_CAMERA_LINGER_S;
    cfg->camera_redetect_s = PP_DEFAULT_CAMERA_REDETECT_S;
    cfg->ftp_data_lo = PP_DEFAULT_FTP_DATA_LO;
    cfg->ftp_data_hi = PP_DEFAULT_FTP_DATA_HI;
    cfg->ftp_max_sessions = PP_DEFAULT_FTP_SESSIONS;
}

static int apply(struct parse_ctx *pc, const struct opt_row *row, enum src_level lvl,
                 const char *val, char *err, size_t errlen)
{
    char why[256];

    if (row->set(pc, lvl, val, why, sizeof(why)) == 0) {
        return 0;
    }
    if (lvl == SRC_CLI) {
        snprintf(err, errlen, "option --%s: %s", row->longname, why);
    } else {
        snprintf(err, errlen, "environment variable %s: %s", row->env, why);
    }
    return -1;
}

static int apply_env(struct parse_ctx *pc, pp_getenv_fn env, char *err, size_t errlen)
{
    for (size_t i = 0; i < NROWS; i++) {
        const char *v;

        if (rows[i].env == NULL || (v = env(rows[i].env)) == NULL) {
            continue;
        }
        if (rows[i].has_arg == no_argument && config_parse_bool(v) < 0) {
            snprintf(err, errlen,
                     "environment variable %s: '%s' is not a boolean (use 1/true/yes or "
                     "0/false/no)", rows[i].env, v);
            return -1;
        }
        if (apply(pc, &rows[i], SRC_ENV, v, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

static int apply_cli(struct parse_ctx *pc, int argc, char **argv, char *err, size_t errlen)
{
    struct option longopts[NROWS + 1];
    char shortopts[2 * NROWS + 2];
    size_t ns = 0;
    int c;

    memset(longopts, 0, sizeof(longopts));
    shortopts[ns++] = ':';
    for (size_t i = 0; i < NROWS; i++) {
        longopts[i].name = rows[i].longname;
        longopts[i].has_arg = rows[i].has_arg;
        longopts[i].val = rows[i].shortname;
        if (rows[i].shortname > 0 && rows[i].shortname < 256) {
            shortopts[ns++] = (char)rows[i].shortname;
            if (rows[i].has_arg == required_argument) {
                shortopts[ns++] = ':';
            }
        }
    }
    shortopts[ns] = '\0';
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const struct opt_row *row = NULL;

        if (c == '?' || c == ':') {
            snprintf(err, errlen, "%s: %s (see --help)",
                     c == ':' ? "option needs a value" : "unknown option", argv[optind - 1]);
            return -1;
        }
        for (size_t i = 0; i < NROWS; i++) {
            if (rows[i].shortname == c) {
                row = &rows[i];
                break;
            }
        }
        if (row == NULL || apply(pc, row, SRC_CLI, optarg, err, errlen) != 0) {
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    return 0;
}

static int read_code_file(const char *path, char *out, size_t cap, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t n;

    if (f == NULL) {
        return fail(err, errlen, "cannot read it: %s", strerror(errno));
    }
    if (fgets(line, sizeof(line), f) == NULL) {
        line[0] = '\0';
    }
    fclose(f);
    n = strcspn(line, "\r\n");
    line[n] = '\0';
    while (n > 0 && isspace((unsigned char)line[n - 1])) {
        line[--n] = '\0';
    }
    if (check_code(line, err, errlen) != 0) {
        memset(line, 0, sizeof(line));
        return -1;
    }
    snprintf(out, cap, "%s", line);
    memset(line, 0, sizeof(line));
    return 0;
}

/* The access code: -a beats --access-code-file on the same level; CLI beats env. */
static int resolve_code(struct parse_ctx *pc, char *err, size_t errlen)
{
    static const char *const file_names[3] = { "", "environment variable ACCESS_CODE_FILE",
                                               "option --access-code-file" };
    char why[256];

    for (int lvl = SRC_CLI; lvl >= SRC_ENV; lvl--) {
        if (pc->code[lvl][0]) {
            snprintf(pc->cfg->access_code, sizeof(pc->cfg->access_code), "%s", pc->code[lvl]);
            return 0;
        }
        if (pc->code_file[lvl][0]) {
            snprintf(pc->cfg->access_code_file, sizeof(pc->cfg->access_code_file), "%s",
                     pc->code_file[lvl]);
            if (read_code_file(pc->code_file[lvl], pc->cfg->access_code,
                               sizeof(pc->cfg->access_code), why, sizeof(why)) != 0) {
                snprintf(err, errlen, "%s: %.200s: %.200s", file_names[lvl], pc->code_file[lvl],
                         why);
                return -1;
            }
            return 0;
        }
    }
    return 0;
}

static void resolve_levels(struct parse_ctx *pc)
{
    struct pp_config *cfg = pc->cfg;

    if (pc->enable_all[SRC_CLI]) {
        cfg->services = PP_WANT_ALL;
    } else if (pc->services_set[SRC_CLI]) {
        cfg->services = pc->services_val[SRC_CLI];
    } else if (pc->enable_all[SRC_ENV]) {
        cfg->services = PP_WANT_ALL;
    } else if (pc->services_set[SRC_ENV]) {
        cfg->services = pc->services_val[SRC_ENV];
    }
    for (int s = 0; s < PP_SVC_COUNT; s++) {
        for (int lvl = SRC_ENV; lvl <= SRC_CLI; lvl++) {
            if (pc->ports[lvl][s] >= 0) {
                cfg->ports[s] = pc->ports[lvl][s];
            }
            if (pc->printer_ports[lvl][s] >= 0) {
                cfg->printer_ports[s] = pc->printer_ports[lvl][s];
            }
        }
    }
}

static int check_required(const struct pp_config *cfg, char *err, size_t errlen)
{
    if (cfg->help || cfg->version || cfg->print_ca || cfg->health) {
        return 0;
    }
    if (cfg->printer_host[0] == '\0') {
        return fail(err, errlen, "option --printer-ip (PRINTER_IP) is required");
    }
    if (cfg->serial[0] == '\0') {
        return fail(err, errlen, "option --serial-number (SERIAL_NUMBER) is required");
    }
    if (cfg->access_code[0] == '\0') {
        return fail(err, errlen,
                    "option --access-code (ACCESS_CODE) or --access-code-file "
                    "(ACCESS_CODE_FILE) is required");
    }
    if ((cfg->cert_file[0] == '\0') != (cfg->key_file[0] == '\0')) {
        return fail(err, errlen, "options --cert (TLS_CERT) and --key (TLS_KEY) go together");
    }
    if (cfg->insecure_printer && cfg->printer_ca[0]) {
        return fail(err, errlen,
                    "options --insecure-printer and --printer-ca contradict each other");
    }
    return 0;
}

enum pp_config_result config_parse(struct pp_config *cfg, int argc, char **argv,
                                   pp_getenv_fn env, char *err, size_t errlen)
{
    struct parse_ctx *pc = calloc(1, sizeof(*pc));
    enum pp_config_result rc = PP_CONFIG_ERROR;

    if (pc == NULL) {
        snprintf(err, errlen, "out of memory");
        return PP_CONFIG_ERROR;
    }
    set_defaults(cfg);
    pc->cfg = cfg;
    memset(pc->ports, 0xff, sizeof(pc->ports));
    memset(pc->printer_ports, 0xff, sizeof(pc->printer_ports));
    if (apply_env(pc, env, err, errlen) != 0 || apply_cli(pc, argc, argv, err, errlen) != 0) {
        goto out;
    }
    if (cfg->help || cfg->version) {
        rc = PP_CONFIG_EXIT;
        goto out;
    }
    resolve_levels(pc);
    if (resolve_code(pc, err, errlen) != 0 || check_required(cfg, err, errlen) != 0) {
        goto out;
    }
    if (cfg->state_dir[0] == '\0') {
        config_default_state_dir(cfg->state_dir, sizeof(cfg->state_dir), env, geteuid() == 0);
    }
    rc = PP_CONFIG_OK;
out:
    memset(pc, 0, sizeof(*pc));
    free(pc);
    return rc;
}

void config_wipe(struct pp_config *cfg)
{
    volatile char *p = cfg->access_code;

    for (size_t i = 0; i < sizeof(cfg->access_code); i++) {
        p[i] = 0;
    }
}
