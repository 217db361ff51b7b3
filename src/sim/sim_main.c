/* SPDX-License-Identifier: MIT */
/*
 * pandaproxy-sim: a BambuLab printer in LAN mode on loopback, quirks included. This
 * file owns the options, the certificate, starting the model's services, fault
 * injection by signal and the status file tests read.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../identity.h"
#include "../log.h"
#include "../signals.h"
#include "../tls.h"
#include "../util.h"
#include "sim.h"

#define STATUS_FILE     "sim-status.json"
#define STATUS_POLL_MS  100
#define STATUS_MAX      1024

struct sim *sim_instance;

static const struct sim_model models[] = {
    { "p1s", "P1S", "01P", false },
    { "p1p", "P1P", "01S", false },
    { "a1", "A1", "039", false },
    { "a1mini", "A1 mini", "030", false },
    { "x1c", "X1 Carbon", "00M", true },
    { "x1e", "X1E", "03W", true },
    { "h2d", "H2D", "094", true },
    { "p2s", "P2S", "22E", true },
};

void sim_status_changed(struct sim *s)
{
    atomic_fetch_add(&s->status_gen, 1);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: pandaproxy-sim [OPTION]...\n"
            "Simulate a BambuLab printer in LAN mode (MQTT, FTPS, camera) for trying and\n"
            "testing clients and PandaProxy without a printer.\n\n"
            "  --model NAME          p1s (default), p1p, a1, a1mini (chamber camera on 6000);\n"
            "                        x1c, x1e, h2d, p2s (RTSPS camera on 322)\n"
            "  --serial SN           serial number (default: the model's prefix + digits)\n"
            "  --access-code CODE    access code (default 12345678; env SIM_ACCESS_CODE)\n"
            "  --bind ADDR           listen address (default 127.0.0.1)\n"
            "  --port NAME=PORT      run only the named services (mqtt, ftp, chamber, rtsp)\n"
            "                        on these ports (0 = free port); repeatable. Without any\n"
            "                        --port all of the model's services use standard ports\n"
            "  --state-dir DIR       certificate and status file (default ./sim-state)\n"
            "  --ftp-root DIR        files served over FTPS (default STATE_DIR/ftp)\n"
            "  --fps N               chamber frames per second (default 1)\n"
            "  --frame-size BYTES    pad chamber JPEGs to this size (benchmarks)\n"
            "  --video WxH@FPS       camera picture size and RTSPS rate (default 640x360@15)\n"
            "  --limit NAME=N        connections the printer accepts per service\n"
            "                        (default mqtt=4, ftp=2, chamber=1, rtsp=2)\n"
            "  --pushall-interval S  ignore a pushall sooner than S seconds after the last\n"
            "  --stall-after S       stop sending camera frames after S seconds (no close)\n"
            "  -v, --verbose         debug logging\n"
            "  -h, --help            this help\n\n"
            "Signals: SIGUSR1 drops every connection of every service (a Wi-Fi blip);\n"
            "SIGUSR2 logs the counters. The counters are also kept in STATE_DIR/%s.\n",
            STATUS_FILE);
}

static int parse_kv(const char *arg, int *svc, int *val, int min, int max)
{
    char name[16];
    const char *eq = strchr(arg, '=');
    char *end;
    long v;

    if (eq == NULL || (size_t)(eq - arg) >= sizeof(name)) {
        return -1;
    }
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    *svc = config_svc_from_name(name);
    v = strtol(eq + 1, &end, 10);
    if (*svc < 0 || *end != '\0' || eq[1] == '\0' || v < min || v > max) {
        return -1;
    }
    *val = (int)v;
    return 0;
}

static const struct sim_model *find_model(const char *name)
{
    for (size_t i = 0; i < PP_ARRAY_LEN(models); i++) {
        if (strcmp(models[i].name, name) == 0) {
            return &models[i];
        }
    }
    return NULL;
}

static void set_defaults(struct sim *s)
{
    static const int std_ports[PP_SVC_COUNT] = { PP_PORT_MQTT, PP_PORT_FTP, PP_PORT_CHAMBER,
                                                 PP_PORT_RTSP };
    const char *code = getenv("SIM_ACCESS_CODE");

    memset(&s->cfg, 0, sizeof(s->cfg));
    s->model = &models[0];
    snprintf(s->cfg.bind_addr, sizeof(s->cfg.bind_addr), "127.0.0.1");
    snprintf(s->cfg.access_code, sizeof(s->cfg.access_code), "%s", code ? code : "12345678");
    snprintf(s->cfg.state_dir, sizeof(s->cfg.state_dir), "sim-state");
    memcpy(s->cfg.ports, std_ports, sizeof(std_ports));
    s->fps = SIM_DEFAULT_FPS;
    s->width = 640;
    s->height = 360;
    s->video_fps = 15;
    s->limits[PP_SVC_MQTT] = SIM_DEFAULT_LIMIT_MQTT;
    s->limits[PP_SVC_FTP] = SIM_DEFAULT_LIMIT_FTP;
    s->limits[PP_SVC_CHAMBER] = SIM_DEFAULT_LIMIT_CHAMBER;
    s->limits[PP_SVC_RTSP] = SIM_DEFAULT_LIMIT_RTSP;
}

enum {
    O_MODEL = 256, O_SERIAL, O_CODE, O_BIND, O_PORT, O_STATE, O_FTPROOT, O_FPS, O_FRAMESIZE,
    O_VIDEO, O_LIMIT, O_PUSHALL, O_STALL
};

static int bad(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "pandaproxy-sim: option --%s: '%s' %s\n", opt, val, why);
    return -1;
}

static int apply_opt(struct sim *s, int c, const char *arg, bool *any_port)
{
    int svc, val;
    char *end;

    switch (c) {
    case O_MODEL:
        s->model = find_model(arg);
        return s->model ? 0 : bad("model", arg, "is not a known model (see --help)");
    case O_SERIAL:
        snprintf(s->cfg.serial, sizeof(s->cfg.serial), "%s", arg);
        return 0;
    case O_CODE:
        if (strlen(arg) == 0 || strlen(arg) > PP_ACCESS_CODE_MAXLEN) {
            return bad("access-code", "...", "must be 1 to 31 characters");
        }
        snprintf(s->cfg.access_code, sizeof(s->cfg.access_code), "%s", arg);
        return 0;
    case O_BIND:
        snprintf(s->cfg.bind_addr, sizeof(s->cfg.bind_addr), "%s", arg);
        return 0;
    case O_PORT:
        if (parse_kv(arg, &svc, &val, 0, 65535) != 0) {
            return bad("port", arg, "is not NAME=PORT (mqtt, ftp, chamber, rtsp)");
        }
        if (!*any_port) {
            memset(s->enabled, 0, sizeof(s->enabled));
            *any_port = true;
        }
        s->cfg.ports[svc] = val;
        s->enabled[svc] = true;
        return 0;
    case O_STATE:
        snprintf(s->cfg.state_dir, sizeof(s->cfg.state_dir), "%s", arg);
        return 0;
    case O_FTPROOT:
        snprintf(s->ftp_root, sizeof(s->ftp_root), "%s", arg);
        return 0;
    case O_FPS:
        s->fps = strtod(arg, &end);
        return (*end || s->fps <= 0 || s->fps > 120) ? bad("fps", arg, "must be 0-120") : 0;
    case O_FRAMESIZE:
        s->frame_size = (unsigned)strtoul(arg, &end, 10);
        return (*end || s->frame_size > PP_CHAMBER_MAX_FRAME)
                   ? bad("frame-size", arg, "must be at most the frame limit")
                   : 0;
    case O_VIDEO:
        return sscanf(arg, "%ux%u@%u", &s->width, &s->height, &s->video_fps) == 3 &&
                       s->width >= 16 && s->height >= 16 && s->video_fps > 0
                   ? 0
                   : bad("video", arg, "is not WxH@FPS");
    case O_LIMIT:
        if (parse_kv(arg, &svc, &val, 1, 1000) != 0) {
            return bad("limit", arg, "is not NAME=N");
        }
        s->limits[svc] = val;
        return 0;
    case O_PUSHALL:
        s->pushall_interval_s = atoi(arg);
        return 0;
    case O_STALL:
        s->stall_after_s = atoi(arg);
        return 0;
    case 'v':
        s->cfg.verbose = true;
        return 0;
    default:
        return -1;
    }
}

static int parse_args(struct sim *s, int argc, char **argv)
{
    static const struct option opts[] = {
        { "model", required_argument, NULL, O_MODEL },
        { "serial", required_argument, NULL, O_SERIAL },
        { "access-code", required_argument, NULL, O_CODE },
        { "bind", required_argument, NULL, O_BIND },
        { "port", required_argument, NULL, O_PORT },
        { "state-dir", required_argument, NULL, O_STATE },
        { "ftp-root", required_argument, NULL, O_FTPROOT },
        { "fps", required_argument, NULL, O_FPS },
        { "frame-size", required_argument, NULL, O_FRAMESIZE },
        { "video", required_argument, NULL, O_VIDEO },
        { "limit", required_argument, NULL, O_LIMIT },
        { "pushall-interval", required_argument, NULL, O_PUSHALL },
        { "stall-after", required_argument, NULL, O_STALL },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool any_port = false;
    int c;

    set_defaults(s);
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c == '?' || apply_opt(s, c, optarg, &any_port) != 0) {
            return -1;
        }
    }
    if (!any_port) {
        s->enabled[PP_SVC_MQTT] = s->enabled[PP_SVC_FTP] = true;
        s->enabled[s->model->rtsp_camera ? PP_SVC_RTSP : PP_SVC_CHAMBER] = true;
    }
    if (s->cfg.serial[0] == '\0') {
        snprintf(s->cfg.serial, sizeof(s->cfg.serial), "%s00A000000001", s->model->serial_hint);
    }
    if (s->ftp_root[0] == '\0') {
        snprintf(s->ftp_root, sizeof(s->ftp_root), "%s/ftp", s->cfg.state_dir);
    }
    return 0;
}

static void write_status(struct sim *s)
{
    char buf[STATUS_MAX];
    char path[PP_PATH_MAX + 32];
    int n = 0;

    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "{\"model\":\"%s\",\"serial\":\"%s\"",
                  s->model->name, s->cfg.serial);
    for (int k = 0; k < PP_SVC_COUNT; k++) {
        unsigned long cur = 0, tot = 0;

        if (k == PP_SVC_RTSP) {
            cur = atomic_load(&s->rtsp_current);
            tot = atomic_load(&s->rtsp_total);
        } else if (s->svc[k].running) {
            cur = (unsigned long)service_client_count(&s->svc[k]);
            tot = (unsigned long)service_total_count(&s->svc[k]);
        }
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      ",\"%s\":{\"enabled\":%s,\"current\":%lu,\"total\":%lu",
                      config_svc_name((enum pp_svc)k), s->enabled[k] ? "true" : "false", cur, tot);
        if (k == PP_SVC_RTSP) {
            n += snprintf(buf + n, sizeof(buf) - (size_t)n, ",\"keepalives\":%lu",
                          atomic_load(&s->rtsp_keepalives));
        }
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "}");
    }
    n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                  ",\"pushalls\":%lu,\"pushalls_ignored\":%lu,\"messages\":%lu,\"frames\":%lu}\n",
                  atomic_load(&s->pushalls), atomic_load(&s->pushalls_ignored),
                  atomic_load(&s->messages), atomic_load(&s->frames));
    snprintf(path, sizeof(path), "%s/%s", s->cfg.state_dir, STATUS_FILE);
    if (n > 0 && (size_t)n < sizeof(buf)) {
        (void)pp_write_file_atomic(path, buf, (size_t)n, 0644, false);
    }
}

static void log_status(struct sim *s)
{
    log_info("sim", 0, "status: mqtt %d/%llu, ftp %d/%llu, chamber %d/%llu, rtsp %lu/%lu "
             "(current/total); pushalls %lu (%lu ignored), messages %lu, frames %lu",
             s->svc[PP_SVC_MQTT].running ? service_client_count(&s->svc[PP_SVC_MQTT]) : 0,
             s->svc[PP_SVC_MQTT].running ? (unsigned long long)service_total_count(&s->svc[PP_SVC_MQTT]) : 0ULL,
             s->svc[PP_SVC_FTP].running ? service_client_count(&s->svc[PP_SVC_FTP]) : 0,
             s->svc[PP_SVC_FTP].running ? (unsigned long long)service_total_count(&s->svc[PP_SVC_FTP]) : 0ULL,
             s->svc[PP_SVC_CHAMBER].running ? service_client_count(&s->svc[PP_SVC_CHAMBER]) : 0,
             s->svc[PP_SVC_CHAMBER].running ? (unsigned long long)service_total_count(&s->svc[PP_SVC_CHAMBER]) : 0ULL,
             atomic_load(&s->rtsp_current), atomic_load(&s->rtsp_total), atomic_load(&s->pushalls),
             atomic_load(&s->pushalls_ignored), atomic_load(&s->messages), atomic_load(&s->frames));
}

static void drop_all(struct sim *s)
{
    log_info("sim", 0, "SIGUSR1: dropping every connection");
    for (int k = 0; k < PP_SVC_COUNT; k++) {
        if (s->svc[k].running) {
            service_drop_all(&s->svc[k]);
        }
    }
    if (s->enabled[PP_SVC_RTSP]) {
        sim_rtsp_drop_all(s);
    }
}

/* Main thread: signals and the status file. Returns on SIGINT/SIGTERM. */
static void main_loop(struct sim *s)
{
    unsigned long written = (unsigned long)-1;
    int64_t last_write = 0;

    for (;;) {
        struct pollfd p = { .fd = signals_fd(), .events = POLLIN };
        int sig;
        unsigned long gen;

        (void)poll(&p, 1, STATUS_POLL_MS);
        while ((sig = signals_next()) != 0) {
            if (sig == SIGUSR1) {
                drop_all(s);
            } else if (sig == SIGUSR2) {
                log_status(s);
            } else {
                return;
            }
        }
        /* Connection counts change without a bump; rewrite at least every second. */
        gen = atomic_load(&s->status_gen);
        if (gen != written || pp_now_ms() - last_write >= 1000) {
            write_status(s);
            written = gen;
            last_write = pp_now_ms();
        }
    }
}

static int start_services(struct sim *s)
{
    static const struct service_ops *const ops[PP_SVC_COUNT] = {
        &sim_mqtt_ops, &sim_ftp_ops, &sim_chamber_ops, NULL
    };
    char err[512];

    for (int k = 0; k < PP_SVC_COUNT; k++) {
        if (!s->enabled[k]) {
            continue;
        }
        s->svc_cfg[k] = s->cfg;
        s->svc_cfg[k].max_clients = s->limits[k];
        if (k == PP_SVC_RTSP) {
            if (sim_rtsp_start(s, err, sizeof(err)) != 0) {
                log_error("rtsp", 0, "%s", err);
                return -1;
            }
            continue;
        }
        if (service_start(&s->svc[k], (enum pp_svc)k, &s->svc_cfg[k], ops[k], s, err,
                          sizeof(err)) != 0) {
            log_error(config_svc_name((enum pp_svc)k), 0, "%s", err);
            return -1;
        }
    }
    return 0;
}

static int setup(struct sim *s)
{
    struct tls_identity id;
    char err[512];
    SSL_CTX *ctx;

    static const int handled[] = { SIGINT, SIGTERM, SIGUSR1, SIGUSR2 };

    if (signals_install(handled, PP_ARRAY_LEN(handled)) != 0) {
        return -1;
    }
    if (pp_mkdir_p(s->ftp_root, 0755) != 0) {
        log_error("sim", 0, "cannot create the FTP root %s: %s", s->ftp_root, strerror(errno));
        return -1;
    }
    /* A certificate with CN = serial, signed by the simulator's own CA (like a printer's
     * chain to Bambu's CA): tests can use that CA file as --printer-ca. */
    if (identity_ensure(&s->cfg, &id, err, sizeof(err)) != 0 ||
        (ctx = identity_server_ctx(&id, err, sizeof(err))) == NULL) {
        log_error("sim", 0, "%s", err);
        return -1;
    }
    tls_server_ctx_install(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    static struct sim s;
    int r;

    sim_instance = &s;
    r = parse_args(&s, argc, argv);
    if (r != 0) {
        return r > 0 ? 0 : 2;
    }
    log_init("pandaproxy-sim", false, s.cfg.verbose);
    if (setup(&s) != 0) {
        return 1;
    }
    log_info("sim", 0, "simulating a %s (serial %s, %s camera)", s.model->product, s.cfg.serial,
             s.model->rtsp_camera ? "RTSPS" : "chamber");
    if (start_services(&s) == 0) {
        write_status(&s);
        main_loop(&s);
        r = 0;
    } else {
        r = 1;
    }
    for (int k = PP_SVC_COUNT - 1; k >= 0; k--) {
        if (k == PP_SVC_RTSP && s.enabled[k]) {
            sim_rtsp_stop(&s);
        }
        service_stop(&s.svc[k]);
    }
    tls_server_ctx_install(NULL);
    log_info("sim", 0, "stopped");
    return r;
}
