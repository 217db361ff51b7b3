/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the configuration contract (issue 3's table): every option and its
 * environment variable, command line > environment > default, booleans, each class of
 * invalid value (the error must name the option or the variable), the state-dir
 * default, and the one-shot actions. The environment is an injected table.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/config.h"
#include "unit.h"

/* ---- injected environment ---------------------------------------------- */

#define ENV_SLOTS 48

struct env_var {
    char name[64];
    char value[512];
    bool set;
};

static struct env_var env_tab[ENV_SLOTS];

static const char *env_get(const char *name)
{
    for (size_t i = 0; i < ENV_SLOTS; i++) {
        if (env_tab[i].set && strcmp(env_tab[i].name, name) == 0) {
            return env_tab[i].value;
        }
    }
    return NULL;
}

static void env_unset(const char *name)
{
    for (size_t i = 0; i < ENV_SLOTS; i++) {
        if (env_tab[i].set && strcmp(env_tab[i].name, name) == 0) {
            env_tab[i].set = false;
        }
    }
}

static void env_set(const char *name, const char *value)
{
    env_unset(name);
    if (value == NULL) {
        return;
    }
    for (size_t i = 0; i < ENV_SLOTS; i++) {
        if (!env_tab[i].set) {
            snprintf(env_tab[i].name, sizeof(env_tab[i].name), "%s", name);
            snprintf(env_tab[i].value, sizeof(env_tab[i].value), "%s", value);
            env_tab[i].set = true;
            return;
        }
    }
    ck_abort_msg("environment table full");
}

static void env_clear(void)
{
    memset(env_tab, 0, sizeof(env_tab));
}

#define BASE_HOST   "printer.lan"
#define BASE_SERIAL "01P00A391800001"
#define BASE_CODE   "base1234"

/* The required settings come from the environment, so any CLI case can override them. */
static void env_base(void)
{
    env_clear();
    env_set("PRINTER_IP", BASE_HOST);
    env_set("SERIAL_NUMBER", BASE_SERIAL);
    env_set("ACCESS_CODE", BASE_CODE);
    env_set("HOME", "/home/tester");
}

/* ---- parsing helpers ----------------------------------------------------- */

#define MAX_ARGS 32

static struct pp_config cfg;
static char err[512];

/* Parse "pandaproxy" followed by the NULL-terminated arguments (first may be NULL). */
static enum pp_config_result parse(const char *first, ...)
{
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    enum pp_config_result r;
    va_list ap;

    argv[argc++] = strdup("pandaproxy");
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        ck_assert_int_lt(argc, MAX_ARGS);
        argv[argc++] = strdup(a);
    }
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    r = config_parse(&cfg, argc, argv, env_get, err, sizeof(err));
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    return r;
}

#define PARSE_OK(...) \
    ck_assert_msg(parse(__VA_ARGS__, NULL) == PP_CONFIG_OK, "unexpected error: %s", err)

/* The parse fails and the one error line contains each of the given words. */
static void expect_error(const char *const *words, enum pp_config_result r)
{
    ck_assert_msg(r == PP_CONFIG_ERROR, "expected an error, got %d (err '%s')", (int)r, err);
    ck_assert_msg(err[0] != '\0', "error text is empty");
    ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: '%s'", err);
    for (size_t i = 0; words[i] != NULL; i++) {
        ck_assert_msg(strstr(err, words[i]) != NULL, "error '%s' does not mention '%s'", err,
                      words[i]);
    }
}

#define WORDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define PARSE_FAILS(words, ...) expect_error(words, parse(__VA_ARGS__, NULL))

/* ---- renderers: one field of the config as text ------------------------- */

typedef void (*render_fn)(const struct pp_config *c, char *out, size_t len);

static void r_host(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", c->printer_host); }
static void r_code(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", c->access_code); }
static void r_serial(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", c->serial); }
static void r_bind(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", c->bind_addr); }
static void r_services(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%u", c->services); }
static void r_camera(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", config_camera_name(c->camera)); }
static void r_state(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", c->state_dir); }
static void r_ca(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", c->printer_ca); }
static void r_maxcl(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%d", c->max_clients); }
static void r_linger(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%d", c->camera_linger_s); }
static void r_redetect(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%d", c->camera_redetect_s); }
static void r_pasv(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", c->ftp_pasv_address); }
static void r_sess(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%d", c->ftp_max_sessions); }
static void r_user(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%s", c->run_as); }
static void r_insecure(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%d", c->insecure_printer); }
static void r_syslog(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%d", c->use_syslog); }
static void r_verbose(const struct pp_config *c, char *o, size_t n) { snprintf(o, n, "%d", c->verbose); }

static void r_ftp_ports(const struct pp_config *c, char *o, size_t n)
{
    snprintf(o, n, "%d-%d", c->ftp_data_lo, c->ftp_data_hi);
}

static void r_ports(const struct pp_config *c, char *o, size_t n)
{
    snprintf(o, n, "%d,%d,%d,%d", c->ports[PP_SVC_MQTT], c->ports[PP_SVC_FTP],
             c->ports[PP_SVC_CHAMBER], c->ports[PP_SVC_RTSP]);
}

static void r_printer_ports(const struct pp_config *c, char *o, size_t n)
{
    snprintf(o, n, "%d,%d,%d,%d", c->printer_ports[PP_SVC_MQTT], c->printer_ports[PP_SVC_FTP],
             c->printer_ports[PP_SVC_CHAMBER], c->printer_ports[PP_SVC_RTSP]);
}

/* ---- every valued option: env only, CLI only, both, neither -------------- */

struct prec_case {
    const char *opt;      /* long option */
    const char *env;      /* its variable */
    const char *env_val;
    const char *cli_val;
    render_fn render;
    const char *exp_env;  /* field when only the variable is set */
    const char *exp_cli;  /* only the option */
    const char *exp_both; /* both: the option wins (per service for port lists) */
    const char *exp_def;  /* neither; NULL when the option is required */
};

static const struct prec_case prec_cases[] = {
    { "--printer-ip", "PRINTER_IP", "10.0.0.5", "fe80::1", r_host,
      "10.0.0.5", "fe80::1", "fe80::1", NULL },
    { "--access-code", "ACCESS_CODE", "envcode1", "clicode2", r_code,
      "envcode1", "clicode2", "clicode2", NULL },
    { "--serial-number", "SERIAL_NUMBER", "03W00X000000001", "00M09A350100123", r_serial,
      "03W00X000000001", "00M09A350100123", "00M09A350100123", NULL },
    { "--bind", "BIND_ADDRESS", "::", "127.0.0.3", r_bind,
      "::", "127.0.0.3", "127.0.0.3", "0.0.0.0" },
    { "--services", "SERVICES", "mqtt", "ftp,camera", r_services,
      "2", "5", "5", "1" },
    { "--camera", "CAMERA", "chamber", "rtsp", r_camera,
      "chamber", "rtsp", "rtsp", "auto" },
    { "--port", "PORTS", "mqtt=18883,ftp=18990", "chamber=0", r_ports,
      "18883,18990,6000,322", "8883,990,0,322", "18883,18990,0,322", "8883,990,6000,322" },
    { "--port", "PORTS", "mqtt=18883", "mqtt=28883", r_ports,
      "18883,990,6000,322", "28883,990,6000,322", "28883,990,6000,322", "8883,990,6000,322" },
    { "--printer-port", "PRINTER_PORTS", "rtsp=3322,ftp=1990", "ftp=2990", r_printer_ports,
      "8883,1990,6000,3322", "8883,2990,6000,322", "8883,2990,6000,3322",
      "8883,990,6000,322" },
    { "--state-dir", "STATE_DIR", "/srv/env-state", "/srv/cli-state", r_state,
      "/srv/env-state", "/srv/cli-state", "/srv/cli-state", NULL },
    { "--printer-ca", "PRINTER_CA", "/etc/env-ca.pem", "/etc/cli-ca.pem", r_ca,
      "/etc/env-ca.pem", "/etc/cli-ca.pem", "/etc/cli-ca.pem", "" },
    { "--max-clients", "MAX_CLIENTS", "7", "100", r_maxcl, "7", "100", "100", "32" },
    { "--camera-linger", "CAMERA_LINGER", "0", "300", r_linger, "0", "300", "300", "60" },
    { "--camera-redetect", "CAMERA_REDETECT", "0", "20", r_redetect, "0", "20", "20", "300" },
    { "--camera-redetect", "CAMERA_REDETECT", "86400", "1", r_redetect,
      "86400", "1", "1", "300" },
    { "--ftp-data-ports", "FTP_DATA_PORTS", "40000-40010", "1024-1024", r_ftp_ports,
      "40000-40010", "1024-1024", "1024-1024", "50000-50100" },
    { "--ftp-pasv-address", "FTP_PASV_ADDRESS", "192.168.1.10", "10.1.2.3", r_pasv,
      "192.168.1.10", "10.1.2.3", "10.1.2.3", "" },
    { "--ftp-max-sessions", "FTP_MAX_SESSIONS", "1", "4", r_sess, "1", "4", "4", "2" },
    { "--user", "RUN_AS", "nobody", "daemon", r_user, "nobody", "daemon", "daemon", "" },
};

static void expect_render(render_fn render, const char *want, const char *what)
{
    char got[256];

    render(&cfg, got, sizeof(got));
    ck_assert_msg(strcmp(got, want) == 0, "%s: got '%s', want '%s'", what, got, want);
}

START_TEST(test_precedence)
{
    const struct prec_case *pc = &prec_cases[_i];
    char what[128];

    /* Only the variable. */
    env_base();
    env_set(pc->env, pc->env_val);
    PARSE_OK("--state-dir", "/tmp/x");
    if (strcmp(pc->opt, "--state-dir") == 0) {
        PARSE_OK("-v"); /* --state-dir on the CLI would win */
    }
    snprintf(what, sizeof(what), "%s from the environment", pc->env);
    expect_render(pc->render, pc->exp_env, what);

    /* Only the option (the base environment still holds the required ones). */
    env_base();
    if (strcmp(pc->env, "PRINTER_IP") == 0 || strcmp(pc->env, "SERIAL_NUMBER") == 0 ||
        strcmp(pc->env, "ACCESS_CODE") == 0) {
        env_unset(pc->env);
    }
    PARSE_OK(pc->opt, pc->cli_val);
    snprintf(what, sizeof(what), "%s on the command line", pc->opt);
    expect_render(pc->render, pc->exp_cli, what);

    /* Both: the command line wins. */
    env_base();
    env_set(pc->env, pc->env_val);
    PARSE_OK(pc->opt, pc->cli_val);
    snprintf(what, sizeof(what), "%s over %s", pc->opt, pc->env);
    expect_render(pc->render, pc->exp_both, what);

    /* Neither: the default. */
    if (pc->exp_def != NULL) {
        env_base();
        PARSE_OK("-v");
        snprintf(what, sizeof(what), "default of %s", pc->opt);
        expect_render(pc->render, pc->exp_def, what);
    }
}
END_TEST

/* The "--opt=value" spelling and the short letters. */
START_TEST(test_short_and_equals_forms)
{
    env_clear();
    PARSE_OK("-p", "192.168.1.20", "-a", "short123", "-s", "SNSHORT", "-b", "::1", "-v", "-n");
    ck_assert_str_eq(cfg.printer_host, "192.168.1.20");
    ck_assert_str_eq(cfg.access_code, "short123");
    ck_assert_str_eq(cfg.serial, "SNSHORT");
    ck_assert_str_eq(cfg.bind_addr, "::1");
    ck_assert(cfg.verbose);
    ck_assert(cfg.check_config);

    PARSE_OK("--printer-ip=h", "--access-code=eq123456", "--serial-number=SN2",
             "--port=mqtt=1883", "--port", "ftp=2121", "--max-clients=3");
    ck_assert_str_eq(cfg.printer_host, "h");
    ck_assert_str_eq(cfg.access_code, "eq123456");
    ck_assert_int_eq(cfg.ports[PP_SVC_MQTT], 1883);
    ck_assert_int_eq(cfg.ports[PP_SVC_FTP], 2121);
    ck_assert_int_eq(cfg.max_clients, 3);

    /* Options after another option's value, and repeated options: the last wins. */
    PARSE_OK("-p", "h", "-a", "one11111", "-s", "S", "-a", "two22222", "--camera", "chamber",
             "--camera", "rtsp");
    ck_assert_str_eq(cfg.access_code, "two22222");
    ck_assert_int_eq(cfg.camera, PP_CAMERA_RTSP);
}
END_TEST

/* Every port of every service, and the accepted extremes. */
START_TEST(test_port_names_and_range)
{
    env_base();
    PARSE_OK("--port", "mqtt=1", "--port", "ftp=65535", "--port", "chamber=0", "--port",
             "rtsp=322", "--printer-port", "mqtt=1,ftp=65535,chamber=6001,rtsp=8554");
    ck_assert_int_eq(cfg.ports[PP_SVC_MQTT], 1);
    ck_assert_int_eq(cfg.ports[PP_SVC_FTP], 65535);
    ck_assert_int_eq(cfg.ports[PP_SVC_CHAMBER], 0);
    ck_assert_int_eq(cfg.ports[PP_SVC_RTSP], 322);
    ck_assert_int_eq(cfg.printer_ports[PP_SVC_MQTT], 1);
    ck_assert_int_eq(cfg.printer_ports[PP_SVC_FTP], 65535);
    ck_assert_int_eq(cfg.printer_ports[PP_SVC_CHAMBER], 6001);
    ck_assert_int_eq(cfg.printer_ports[PP_SVC_RTSP], 8554);

    env_set("PORTS", "mqtt=0,ftp=0,chamber=0,rtsp=0");
    PARSE_OK("-v");
    for (int s = 0; s < PP_SVC_COUNT; s++) {
        ck_assert_int_eq(cfg.ports[s], 0);
    }
}
END_TEST

/* ---- booleans -------------------------------------------------------------- */

struct bool_case {
    const char *opt;
    const char *env;
    render_fn render;
    const char *on;
    const char *off;
};

static void r_all(const struct pp_config *c, char *o, size_t n)
{
    snprintf(o, n, "%s", c->services == PP_WANT_ALL ? "all" : "some");
}

static const struct bool_case bool_cases[] = {
    { "--enable-all", "ENABLE_ALL", r_all, "all", "some" },
    { "--insecure-printer", "INSECURE_PRINTER", r_insecure, "1", "0" },
    { "--syslog", "SYSLOG", r_syslog, "1", "0" },
    { "--verbose", "VERBOSE", r_verbose, "1", "0" },
};

static const char *const truthy[] = { "1", "true", "yes", "TRUE", "Yes", "on" };
static const char *const falsy[] = { "0", "false", "no", "FALSE", "No", "off" };
static const char *const not_bool[] = { "", "2", "maybe", "y", "n", "truee", " 1", "-1" };

START_TEST(test_booleans)
{
    const struct bool_case *bc = &bool_cases[_i];
    char what[128];

    env_base();
    PARSE_OK("-n");
    expect_render(bc->render, bc->off, "default");

    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        env_base();
        env_set(bc->env, truthy[i]);
        PARSE_OK("-n");
        snprintf(what, sizeof(what), "%s=%s", bc->env, truthy[i]);
        expect_render(bc->render, bc->on, what);
    }
    for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
        env_base();
        env_set(bc->env, falsy[i]);
        PARSE_OK("-n");
        snprintf(what, sizeof(what), "%s=%s", bc->env, falsy[i]);
        expect_render(bc->render, bc->off, what);
    }
    for (size_t i = 0; i < sizeof(not_bool) / sizeof(not_bool[0]); i++) {
        env_base();
        env_set(bc->env, not_bool[i]);
        PARSE_FAILS(WORDS(bc->env, "boolean"), "-n");
    }
    /* The option wins over a false variable. */
    env_base();
    env_set(bc->env, "no");
    PARSE_OK(bc->opt);
    snprintf(what, sizeof(what), "%s over %s=no", bc->opt, bc->env);
    expect_render(bc->render, bc->on, what);
    /* Flags take no value. */
    env_base();
    {
        char spelled[64];
        snprintf(spelled, sizeof(spelled), "%s=1", bc->opt);
        PARSE_FAILS(WORDS(bc->opt), spelled);
    }
}
END_TEST

START_TEST(test_parse_bool)
{
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        ck_assert_int_eq(config_parse_bool(truthy[i]), 1);
    }
    for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
        ck_assert_int_eq(config_parse_bool(falsy[i]), 0);
    }
    for (size_t i = 0; i < sizeof(not_bool) / sizeof(not_bool[0]); i++) {
        ck_assert_int_eq(config_parse_bool(not_bool[i]), -1);
    }
}
END_TEST

/* --enable-all and --services: the command line wins over either variable. */
START_TEST(test_services_vs_enable_all)
{
    env_base();
    env_set("ENABLE_ALL", "1");
    PARSE_OK("--services", "mqtt");
    ck_assert_uint_eq(cfg.services, PP_WANT_MQTT);

    env_base();
    env_set("SERVICES", "mqtt");
    PARSE_OK("--enable-all");
    ck_assert_uint_eq(cfg.services, PP_WANT_ALL);

    env_base();
    env_set("SERVICES", "ftp");
    env_set("ENABLE_ALL", "0");
    PARSE_OK("-v");
    ck_assert_uint_eq(cfg.services, PP_WANT_FTP);

    env_base();
    env_set("SERVICES", "ftp");
    env_set("ENABLE_ALL", "yes");
    PARSE_OK("-v");
    ck_assert_uint_eq(cfg.services, PP_WANT_ALL);

    env_base();
    PARSE_OK("--services", "camera,mqtt,ftp");
    ck_assert_uint_eq(cfg.services, PP_WANT_ALL);
    PARSE_OK("--services", "all");
    ck_assert_uint_eq(cfg.services, PP_WANT_ALL);
    PARSE_OK("--services", "mqtt, ftp");
    ck_assert_uint_eq(cfg.services, PP_WANT_MQTT | PP_WANT_FTP);
}
END_TEST

/* --cert/--key together, from either source. */
START_TEST(test_cert_and_key)
{
    env_base();
    PARSE_OK("-v");
    ck_assert_str_eq(cfg.cert_file, "");
    ck_assert_str_eq(cfg.key_file, "");

    env_set("TLS_CERT", "/env/c.pem");
    env_set("TLS_KEY", "/env/k.pem");
    PARSE_OK("-v");
    ck_assert_str_eq(cfg.cert_file, "/env/c.pem");
    ck_assert_str_eq(cfg.key_file, "/env/k.pem");

    PARSE_OK("--cert", "/cli/c.pem", "--key", "/cli/k.pem");
    ck_assert_str_eq(cfg.cert_file, "/cli/c.pem");
    ck_assert_str_eq(cfg.key_file, "/cli/k.pem");

    PARSE_OK("--key", "/cli/k2.pem");
    ck_assert_str_eq(cfg.cert_file, "/env/c.pem");
    ck_assert_str_eq(cfg.key_file, "/cli/k2.pem");

    env_base();
    PARSE_OK("--cert", "/cli/c.pem", "--key", "/cli/k.pem");
    ck_assert_str_eq(cfg.cert_file, "/cli/c.pem");
    ck_assert_str_eq(cfg.key_file, "/cli/k.pem");
}
END_TEST

/* ---- the access code and its file ----------------------------------------- */

static char tmp_paths[8][64];
static int ntmp;

static const char *temp_file(const char *content)
{
    char *path = tmp_paths[ntmp++];
    int fd;

    ck_assert_int_lt(ntmp, 8);
    snprintf(path, sizeof(tmp_paths[0]), "/tmp/pp-test-config-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void remove_temp_files(void)
{
    for (int i = 0; i < ntmp; i++) {
        unlink(tmp_paths[i]);
    }
    ntmp = 0;
}

START_TEST(test_access_code_file)
{
    const char *plain = temp_file("filecode\n");
    const char *crlf = temp_file("crlfcode \r\nsecond line ignored\n");
    const char *bare = temp_file("barecode");
    const char *other = temp_file("othercod\n");

    env_base();
    env_unset("ACCESS_CODE");
    PARSE_OK("--access-code-file", plain);
    ck_assert_str_eq(cfg.access_code, "filecode");
    ck_assert_str_eq(cfg.access_code_file, plain);
    PARSE_OK("--access-code-file", crlf);
    ck_assert_str_eq(cfg.access_code, "crlfcode");
    PARSE_OK("--access-code-file", bare);
    ck_assert_str_eq(cfg.access_code, "barecode");

    env_set("ACCESS_CODE_FILE", plain);
    PARSE_OK("-v");
    ck_assert_str_eq(cfg.access_code, "filecode");
    /* CLI file beats env file. */
    PARSE_OK("--access-code-file", other);
    ck_assert_str_eq(cfg.access_code, "othercod");

    /* The code beats the file on the same level. */
    PARSE_OK("--access-code-file", other, "-a", "direct12");
    ck_assert_str_eq(cfg.access_code, "direct12");
    env_set("ACCESS_CODE", "envcode9");
    PARSE_OK("-v");
    ck_assert_str_eq(cfg.access_code, "envcode9");

    /* Any command-line source beats any environment source. */
    PARSE_OK("--access-code-file", other);
    ck_assert_str_eq(cfg.access_code, "othercod");
    env_unset("ACCESS_CODE");
    PARSE_OK("-a", "direct12");
    ck_assert_str_eq(cfg.access_code, "direct12");
    remove_temp_files();
}
END_TEST

START_TEST(test_access_code_invalid)
{
    const char *empty = temp_file("");
    const char *blank = temp_file("\n");
    const char *spaced = temp_file("has space\n");

    env_base();
    env_unset("ACCESS_CODE");
    PARSE_FAILS(WORDS("--access-code-file", "/nonexistent/pp-code", "No such file"),
                "--access-code-file", "/nonexistent/pp-code");
    PARSE_FAILS(WORDS("--access-code-file", "empty"), "--access-code-file", empty);
    PARSE_FAILS(WORDS("--access-code-file", "empty"), "--access-code-file", blank);
    PARSE_FAILS(WORDS("--access-code-file", "space"), "--access-code-file", spaced);
    PARSE_FAILS(WORDS("--access-code-file"), "--access-code-file", "/tmp");
    env_set("ACCESS_CODE_FILE", "/nonexistent/pp-code");
    PARSE_FAILS(WORDS("ACCESS_CODE_FILE", "/nonexistent/pp-code"), "-v");
    env_set("ACCESS_CODE_FILE", empty);
    PARSE_FAILS(WORDS("ACCESS_CODE_FILE", "empty"), "-v");
    env_unset("ACCESS_CODE_FILE");

    PARSE_FAILS(WORDS("--access-code", "empty"), "-a", "");
    PARSE_FAILS(WORDS("--access-code", "space"), "-a", "ab cd");
    PARSE_FAILS(WORDS("--access-code", "longer"), "-a", "0123456789012345678901234567890123");
    env_set("ACCESS_CODE", "");
    PARSE_FAILS(WORDS("ACCESS_CODE", "empty"), "-v");
    env_set("ACCESS_CODE", "tab\tcode");
    PARSE_FAILS(WORDS("ACCESS_CODE"), "-v");
    /* 31 characters is the most the chamber auth packet holds. */
    env_set("ACCESS_CODE", "0123456789012345678901234567890");
    PARSE_OK("-v");
    ck_assert_uint_eq(strlen(cfg.access_code), PP_ACCESS_CODE_MAXLEN);
    remove_temp_files();
}
END_TEST

/* The code never appears in an error line, even when it is the bad value. */
START_TEST(test_error_hides_code)
{
    env_base();
    PARSE_FAILS(WORDS("--access-code"), "-a", "sec ret7");
    ck_assert_ptr_null(strstr(err, "sec ret7"));
    env_set("ACCESS_CODE", "xsecret\x01");
    PARSE_FAILS(WORDS("ACCESS_CODE"), "-v");
    ck_assert_ptr_null(strstr(err, "xsecret"));
}
END_TEST

/* ---- invalid values: the error names the option or the variable ---------- */

struct bad_case {
    const char *opt;   /* long option (or short spelling) */
    const char *env;   /* the variable carrying the same value; NULL when none */
    const char *value;
    const char *word;  /* something else the message must say, or NULL */
};

static const struct bad_case bad_cases[] = {
    { "--services", "SERVICES", "camera,printer", "printer" },
    { "--services", "SERVICES", "", NULL },
    { "--services", "SERVICES", ",", NULL },
    { "--camera", "CAMERA", "usb", "usb" },
    { "--port", "PORTS", "mqtt=65536", "range" },
    { "--port", "PORTS", "mqtt=-1", "range" },
    { "--port", "PORTS", "mqtt=abc", "not a number" },
    { "--port", "PORTS", "mqtt=", "not a number" },
    { "--port", "PORTS", "mqtt=12x", "not a number" },
    { "--port", "PORTS", "mqtt", "NAME=PORT" },
    { "--port", "PORTS", "8883", "NAME=PORT" },
    { "--port", "PORTS", "mqtt=1,ftp", "NAME=PORT" },
    { "--port", "PORTS", "camera=6000", "camera" },
    { "--port", "PORTS", "http=80", "http" },
    { "--port", "PORTS", "=80", NULL },
    { "--printer-port", "PRINTER_PORTS", "mqtt=0", "range" },
    { "--printer-port", "PRINTER_PORTS", "ftp=99999", "range" },
    { "--printer-port", "PRINTER_PORTS", "ftp:990", "NAME=PORT" },
    { "--printer-port", "PRINTER_PORTS", "web=80", "web" },
    { "--serial-number", "SERIAL_NUMBER", "01P/../etc", NULL },
    { "--serial-number", "SERIAL_NUMBER", "01P 123", NULL },
    { "--serial-number", "SERIAL_NUMBER", "", "empty" },
    { "--printer-ip", "PRINTER_IP", "", "empty" },
    { "--printer-ip", "PRINTER_IP", "bad host", NULL },
    { "--bind", "BIND_ADDRESS", "localhost", "localhost" },
    { "--bind", "BIND_ADDRESS", "256.1.1.1", NULL },
    { "--bind", "BIND_ADDRESS", "", NULL },
    { "--ftp-data-ports", "FTP_DATA_PORTS", "50000", "LO-HI" },
    { "--ftp-data-ports", "FTP_DATA_PORTS", "60000-50000", "empty" },
    { "--ftp-data-ports", "FTP_DATA_PORTS", "0-100", "range" },
    { "--ftp-data-ports", "FTP_DATA_PORTS", "1000-70000", "range" },
    { "--ftp-data-ports", "FTP_DATA_PORTS", "a-b", "not a number" },
    { "--ftp-data-ports", "FTP_DATA_PORTS", "-", "not a number" },
    { "--ftp-pasv-address", "FTP_PASV_ADDRESS", "::1", "IPv4" },
    { "--ftp-pasv-address", "FTP_PASV_ADDRESS", "proxy.lan", "IPv4" },
    { "--ftp-pasv-address", "FTP_PASV_ADDRESS", "10.0.0", "IPv4" },
    { "--max-clients", "MAX_CLIENTS", "0", "range" },
    { "--max-clients", "MAX_CLIENTS", "100000", "range" },
    { "--max-clients", "MAX_CLIENTS", "ten", "not a number" },
    { "--camera-linger", "CAMERA_LINGER", "-5", "range" },
    { "--camera-linger", "CAMERA_LINGER", "1.5", "not a number" },
    { "--camera-redetect", "CAMERA_REDETECT", "-1", "range" },
    { "--camera-redetect", "CAMERA_REDETECT", "86401", "range" },
    { "--camera-redetect", "CAMERA_REDETECT", "5m", "not a number" },
    { "--camera-redetect", "CAMERA_REDETECT", "", NULL },
    { "--ftp-max-sessions", "FTP_MAX_SESSIONS", "0", "range" },
    { "--ftp-max-sessions", "FTP_MAX_SESSIONS", "", NULL },
    { "--state-dir", "STATE_DIR", "", "empty" },
    { "--printer-ca", "PRINTER_CA", "", "empty" },
    { "--user", "RUN_AS", "", "empty" },
};

START_TEST(test_invalid_values)
{
    const struct bad_case *bc = &bad_cases[_i];

    env_base();
    expect_error(WORDS(bc->opt, bc->word ? bc->word : bc->opt), parse(bc->opt, bc->value, NULL));
    if (bc->env != NULL) {
        env_set(bc->env, bc->value);
        expect_error(WORDS(bc->env, bc->word ? bc->word : bc->env), parse("-v", NULL));
        /* A bad variable is an error even when the option overrides it: the
         * environment is part of the configuration the user wrote. */
    }
}
END_TEST

START_TEST(test_missing_required)
{
    env_clear();
    PARSE_FAILS(WORDS("--printer-ip", "PRINTER_IP", "required"), "-s", "SN", "-a", "code1234");
    PARSE_FAILS(WORDS("--serial-number", "SERIAL_NUMBER", "required"), "-p", "h", "-a",
                "code1234");
    PARSE_FAILS(WORDS("--access-code", "ACCESS_CODE", "--access-code-file", "ACCESS_CODE_FILE"),
                "-p", "h", "-s", "SN");
    ck_assert_int_eq(parse(NULL), PP_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "required"));

    env_base();
    env_unset("SERIAL_NUMBER");
    PARSE_FAILS(WORDS("SERIAL_NUMBER"), "-v");
}
END_TEST

START_TEST(test_contradictions)
{
    env_base();
    PARSE_FAILS(WORDS("--cert", "--key"), "--cert", "/c.pem");
    PARSE_FAILS(WORDS("--cert", "--key"), "--key", "/k.pem");
    env_set("TLS_CERT", "/c.pem");
    PARSE_FAILS(WORDS("TLS_CERT", "TLS_KEY"), "-v");

    env_base();
    PARSE_FAILS(WORDS("--insecure-printer", "--printer-ca"), "--insecure-printer",
                "--printer-ca", "/ca.pem");
    env_set("INSECURE_PRINTER", "1");
    env_set("PRINTER_CA", "/ca.pem");
    PARSE_FAILS(WORDS("--insecure-printer", "--printer-ca"), "-v");
}
END_TEST

START_TEST(test_bad_command_line)
{
    env_base();
    PARSE_FAILS(WORDS("unknown option", "--frobnicate"), "--frobnicate");
    PARSE_FAILS(WORDS("unknown option", "-x"), "-x");
    PARSE_FAILS(WORDS("needs a value", "--port"), "--port");
    PARSE_FAILS(WORDS("needs a value", "-p"), "-p");
    PARSE_FAILS(WORDS("unexpected argument", "stray"), "-v", "stray");
    PARSE_FAILS(WORDS("--help"), "--printer"); /* ambiguous prefix */
}
END_TEST

/* ---- state directory ------------------------------------------------------- */

START_TEST(test_state_dir_default)
{
    char out[PP_PATH_MAX];

    env_clear();
    env_set("HOME", "/home/u");
    config_default_state_dir(out, sizeof(out), env_get, false);
    ck_assert_str_eq(out, "/home/u/.local/state/pandaproxy");

    env_set("XDG_STATE_HOME", "/xdg/state");
    config_default_state_dir(out, sizeof(out), env_get, false);
    ck_assert_str_eq(out, "/xdg/state/pandaproxy");

    /* A relative XDG_STATE_HOME is invalid per the spec: ignored. */
    env_set("XDG_STATE_HOME", "relative/state");
    config_default_state_dir(out, sizeof(out), env_get, false);
    ck_assert_str_eq(out, "/home/u/.local/state/pandaproxy");
    env_set("XDG_STATE_HOME", "");
    config_default_state_dir(out, sizeof(out), env_get, false);
    ck_assert_str_eq(out, "/home/u/.local/state/pandaproxy");

    /* root: the system directory, whatever XDG says. */
    env_set("XDG_STATE_HOME", "/xdg/state");
    config_default_state_dir(out, sizeof(out), env_get, true);
    ck_assert_str_eq(out, "/var/lib/pandaproxy");

    /* systemd's StateDirectory= wins over everything, root or not. */
    env_set("STATE_DIRECTORY", "/var/lib/pandaproxy-unit");
    config_default_state_dir(out, sizeof(out), env_get, true);
    ck_assert_str_eq(out, "/var/lib/pandaproxy-unit");
    config_default_state_dir(out, sizeof(out), env_get, false);
    ck_assert_str_eq(out, "/var/lib/pandaproxy-unit");
    env_set("STATE_DIRECTORY", "/first:/second");
    config_default_state_dir(out, sizeof(out), env_get, false);
    ck_assert_str_eq(out, "/first");

    /* Nothing usable at all. */
    env_clear();
    config_default_state_dir(out, sizeof(out), env_get, false);
    ck_assert_str_eq(out, "/var/lib/pandaproxy");
    env_set("STATE_DIRECTORY", "");
    env_set("HOME", "");
    config_default_state_dir(out, sizeof(out), env_get, false);
    ck_assert_str_eq(out, "/var/lib/pandaproxy");
}
END_TEST

START_TEST(test_state_dir_in_parse)
{
    env_base();
    env_set("STATE_DIRECTORY", "/run/unit-state");
    PARSE_OK("-v");
    ck_assert_str_eq(cfg.state_dir, "/run/unit-state");
    env_set("STATE_DIR", "/env/state");
    PARSE_OK("-v");
    ck_assert_str_eq(cfg.state_dir, "/env/state");
    PARSE_OK("--state-dir", "/cli/state");
    ck_assert_str_eq(cfg.state_dir, "/cli/state");

    env_base();
    env_set("XDG_STATE_HOME", "/xdg");
    PARSE_OK("-v");
    ck_assert_str_eq(cfg.state_dir, geteuid() == 0 ? "/var/lib/pandaproxy" : "/xdg/pandaproxy");
}
END_TEST

/* ---- actions --------------------------------------------------------------- */

START_TEST(test_help_and_version)
{
    env_clear();
    ck_assert_int_eq(parse("--help", NULL), PP_CONFIG_EXIT);
    ck_assert(cfg.help);
    ck_assert_int_eq(parse("-h", NULL), PP_CONFIG_EXIT);
    ck_assert(cfg.help);
    ck_assert_int_eq(parse("--version", NULL), PP_CONFIG_EXIT);
    ck_assert(cfg.version);
    ck_assert(!cfg.help);
    ck_assert_int_eq(parse("-V", NULL), PP_CONFIG_EXIT);
    ck_assert(cfg.version);
    /* Even with other options and without the required ones. */
    ck_assert_int_eq(parse("-p", "h", "--help", NULL), PP_CONFIG_EXIT);
}
END_TEST

START_TEST(test_actions)
{
    env_clear();
    /* --print-ca needs only the state directory. */
    ck_assert_int_eq(parse("--print-ca", "--state-dir", "/s", NULL), PP_CONFIG_OK);
    ck_assert(cfg.print_ca);
    ck_assert_str_eq(cfg.state_dir, "/s");
    ck_assert_int_eq(parse("--health", NULL), PP_CONFIG_OK);
    ck_assert(cfg.health);
    /* -n validates like a run: the required options are still required. */
    ck_assert_int_eq(parse("-n", NULL), PP_CONFIG_ERROR);
    env_base();
    ck_assert_int_eq(parse("--check-config", NULL), PP_CONFIG_OK);
    ck_assert(cfg.check_config);
    ck_assert(!cfg.print_ca);
}
END_TEST

/* --help documents every option and every variable of the contract. */
START_TEST(test_usage_complete)
{
    static const char *const words[] = {
        "--printer-ip", "PRINTER_IP", "--access-code", "ACCESS_CODE", "--access-code-file",
        "ACCESS_CODE_FILE", "--serial-number", "SERIAL_NUMBER", "--bind", "BIND_ADDRESS",
        "--services", "SERVICES", "--enable-all", "ENABLE_ALL", "--camera", "CAMERA",
        "--port", "PORTS", "--printer-port", "PRINTER_PORTS", "--state-dir", "STATE_DIR",
        "--cert", "TLS_CERT", "--key", "TLS_KEY", "--printer-ca", "PRINTER_CA",
        "--insecure-printer", "INSECURE_PRINTER", "--max-clients", "MAX_CLIENTS",
        "--camera-linger", "CAMERA_LINGER", "--camera-redetect", "CAMERA_REDETECT",
        "--ftp-data-ports", "FTP_DATA_PORTS",
        "--ftp-pasv-address", "FTP_PASV_ADDRESS", "--ftp-max-sessions", "FTP_MAX_SESSIONS",
        "--user", "RUN_AS", "--syslog", "SYSLOG", "--print-ca", "--check-config", "-n",
        "--verbose", "VERBOSE", "--help", "--version", "-V",
    };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(f);
    config_usage(f, "pandaproxy");
    fclose(f);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        ck_assert_msg(strstr(text, words[i]) != NULL, "--help does not mention %s", words[i]);
    }
    free(text);
}
END_TEST

/* ---- service names ---------------------------------------------------------- */

START_TEST(test_service_names)
{
    static const char *const names[] = { "mqtt", "ftp", "chamber", "rtsp" };

    for (int s = 0; s < PP_SVC_COUNT; s++) {
        ck_assert_str_eq(config_svc_name((enum pp_svc)s), names[s]);
        ck_assert_int_eq(config_svc_from_name(names[s]), s);
    }
    ck_assert_int_eq(config_svc_from_name("camera"), -1);
    ck_assert_int_eq(config_svc_from_name("MQTT"), -1);
    ck_assert_int_eq(config_svc_from_name(""), -1);
    ck_assert_str_eq(config_svc_name(PP_SVC_COUNT), "?");
    ck_assert_str_eq(config_camera_name(PP_CAMERA_AUTO), "auto");
    ck_assert_str_eq(config_camera_name(PP_CAMERA_CHAMBER), "chamber");
    ck_assert_str_eq(config_camera_name(PP_CAMERA_RTSP), "rtsp");
}
END_TEST

START_TEST(test_svc_enabled)
{
    env_base();
    PARSE_OK("--services", "mqtt");
    ck_assert(config_svc_enabled(&cfg, PP_SVC_MQTT, PP_CAMERA_CHAMBER));
    ck_assert(!config_svc_enabled(&cfg, PP_SVC_FTP, PP_CAMERA_CHAMBER));
    ck_assert(!config_svc_enabled(&cfg, PP_SVC_CHAMBER, PP_CAMERA_CHAMBER));
    ck_assert(!config_svc_enabled(&cfg, PP_SVC_RTSP, PP_CAMERA_RTSP));

    PARSE_OK("--services", "camera");
    ck_assert(!config_svc_enabled(&cfg, PP_SVC_MQTT, PP_CAMERA_CHAMBER));
    ck_assert(config_svc_enabled(&cfg, PP_SVC_CHAMBER, PP_CAMERA_CHAMBER));
    ck_assert(!config_svc_enabled(&cfg, PP_SVC_RTSP, PP_CAMERA_CHAMBER));
    ck_assert(config_svc_enabled(&cfg, PP_SVC_RTSP, PP_CAMERA_RTSP));
    ck_assert(!config_svc_enabled(&cfg, PP_SVC_CHAMBER, PP_CAMERA_RTSP));
    /* Undecided camera: neither listener until detection picks one. */
    ck_assert(!config_svc_enabled(&cfg, PP_SVC_CHAMBER, PP_CAMERA_AUTO));
    ck_assert(!config_svc_enabled(&cfg, PP_SVC_RTSP, PP_CAMERA_AUTO));

    PARSE_OK("--enable-all");
    ck_assert(config_svc_enabled(&cfg, PP_SVC_MQTT, PP_CAMERA_CHAMBER));
    ck_assert(config_svc_enabled(&cfg, PP_SVC_FTP, PP_CAMERA_CHAMBER));
    ck_assert(config_svc_enabled(&cfg, PP_SVC_CHAMBER, PP_CAMERA_CHAMBER));
}
END_TEST

START_TEST(test_wipe)
{
    env_base();
    PARSE_OK("-a", "wipeme12");
    ck_assert_str_eq(cfg.access_code, "wipeme12");
    config_wipe(&cfg);
    for (size_t i = 0; i < sizeof(cfg.access_code); i++) {
        ck_assert_int_eq(cfg.access_code[i], 0);
    }
    ck_assert_str_eq(cfg.serial, BASE_SERIAL);
}
END_TEST

/* Parsing twice in one process gives the same answer (getopt state is reset). */
START_TEST(test_reparse)
{
    env_base();
    for (int i = 0; i < 3; i++) {
        PARSE_OK("--port", "mqtt=1000", "-v");
        ck_assert_int_eq(cfg.ports[PP_SVC_MQTT], 1000);
        PARSE_FAILS(WORDS("--port"), "--port", "mqtt=x");
    }
}
END_TEST

#define NCASES(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_precedence, 0, NCASES(prec_cases));
    tcase_add_test(tc, test_short_and_equals_forms);
    tcase_add_test(tc, test_port_names_and_range);
    tcase_add_loop_test(tc, test_booleans, 0, NCASES(bool_cases));
    tcase_add_test(tc, test_parse_bool);
    tcase_add_test(tc, test_services_vs_enable_all);
    tcase_add_test(tc, test_cert_and_key);
    tcase_add_test(tc, test_access_code_file);
    tcase_add_test(tc, test_access_code_invalid);
    tcase_add_test(tc, test_error_hides_code);
    tcase_add_loop_test(tc, test_invalid_values, 0, NCASES(bad_cases));
    tcase_add_test(tc, test_missing_required);
    tcase_add_test(tc, test_contradictions);
    tcase_add_test(tc, test_bad_command_line);
    tcase_add_test(tc, test_state_dir_default);
    tcase_add_test(tc, test_state_dir_in_parse);
    tcase_add_test(tc, test_help_and_version);
    tcase_add_test(tc, test_actions);
    tcase_add_test(tc, test_usage_complete);
    tcase_add_test(tc, test_service_names);
    tcase_add_test(tc, test_svc_enabled);
    tcase_add_test(tc, test_wipe);
    tcase_add_test(tc, test_reparse);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
