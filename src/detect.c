/* SPDX-License-Identifier: MIT */
/*
 * Camera detection: a probe per camera port (run in parallel, each closed with
 * close_notify so it never keeps the printer's only camera slot), the decision and
 * its reason in the log, the serial-number guess when the printer is silent, and a
 * background thread that probes again until the printer answers (or, once detected,
 * when the chosen camera has kept failing for --camera-redetect seconds) and switches
 * the service.
 */
#include "autoconf.h"

#include "detect.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chamber_codec.h"
#include "limits.h"
#include "log.h"
#include "svc_chamber.h"
#include "thread.h"
#include "upstream.h"
#include "util.h"

#define DETECT_LOG      "camera"
#define RTSP_PATH       "/streaming/live/1"
#define RTSP_VERSION    "RTSP/1.0"
#define PROBE_REPLY_MAX 1024

/* ---- the serial-number hint ------------------------------------------- */

enum pp_camera_mode detect_camera_hint(const char *serial)
{
    /* Serial prefixes of RTSPS models (believed; see DESIGN.md). */
    static const char *const rtsp_prefixes[] = { "00M", "00W", "03W", "094", "239", "093", "22E" };

    for (size_t i = 0; i < PP_ARRAY_LEN(rtsp_prefixes); i++) {
        if (strncmp(serial, rtsp_prefixes[i], strlen(rtsp_prefixes[i])) == 0) {
            return PP_CAMERA_RTSP;
        }
    }
    return PP_CAMERA_CHAMBER;
}

/* ---- probes --------------------------------------------------------------- */

enum probe_level {
    PROBE_NONE = 0,     /* nothing answered */
    PROBE_TLS,          /* TLS answered, the protocol did not (or the cert was refused) */
    PROBE_PROTO,        /* the camera protocol answered */
};

struct probe {
    const struct pp_config *cfg;
    enum pp_svc kind;
    int cancel_fd;       /* the round's cancel pipe */
    int done_fd;         /* a byte when finished */
    int64_t deadline;
    enum probe_level level;
    char what[384];
};

/* Longest ipcam.rtsp_url we look at (a printer URL is far shorter). */
#define DETECT_URL_MAX 256

static void probe_chamber(struct probe *p, struct pp_conn *c)
{
    uint8_t pkt[PP_CHAMBER_AUTH_LEN];
    uint8_t hdr[PP_CHAMBER_HEADER_LEN];
    uint32_t len;
    int r;

    if (pp_chamber_auth_encode(pkt, "bblp", p->cfg->access_code) != PP_CHAMBER_OK) {
        snprintf(p->what, sizeof(p->what), "answers TLS (the access code is too long to try)");
        return;
    }
    r = conn_write(c, pkt, sizeof(pkt));
    pp_wipe(pkt, sizeof(pkt));
    if (r != 0) {
        snprintf(p->what, sizeof(p->what), "answers TLS, then failed");
        return;
    }
    r = chamber_read_header(c, hdr, p->deadline, p->cancel_fd);
    if (r == 1 && pp_chamber_header_parse(hdr, &len) == PP_CHAMBER_OK) {
        p->level = PROBE_PROTO;
        snprintf(p->what, sizeof(p->what), "sent a chamber frame header (%u-byte JPEG)",
                 (unsigned)len);
    } else if (r == 1) {
        snprintf(p->what, sizeof(p->what), "answers TLS but sent an invalid frame header");
    } else if (r == PP_IO_EOF) {
        snprintf(p->what, sizeof(p->what), "answers TLS but closed after the auth packet "
                 "(wrong access code?)");
    } else {
        snprintf(p->what, sizeof(p->what), "answers TLS but sent no frame");
    }
}

static void probe_rtsp(struct probe *p, struct pp_conn *c)
{
    const char *host = p->cfg->printer_host;
    bool v6 = strchr(host, ':') != NULL;
    char req[PP_HOST_MAX + 256];
    char reply[PROBE_REPLY_MAX];
    size_t got = 0;

    /* rtsps:// in the URL: some models answer rtsp:// with a redirect. */
    snprintf(req, sizeof(req), "OPTIONS rtsps://%s%s%s:%d%s " RTSP_VERSION "\r\nCSeq: 1\r\n"
             "User-Agent: " PACKAGE_NAME "/" PACKAGE_VERSION "\r\n\r\n", v6 ? "[" : "", host,
             v6 ? "]" : "", p->cfg->printer_ports[PP_SVC_RTSP], RTSP_PATH);
    if (conn_write(c, req, strlen(req)) != 0) {
        snprintf(p->what, sizeof(p->what), "answers TLS, then failed");
        return;
    }
    while (got < sizeof(reply) - 1 && memmem(reply, got, "\r\n\r\n", 4) == NULL) {
        int64_t left = p->deadline - pp_now_ms();
        int r = left > 0 ? conn_read(c, reply + got, sizeof(reply) - 1 - got, (int)left,
                                     p->cancel_fd)
                         : PP_IO_TIMEOUT;
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    reply[got] = '\0';
    if (strncmp(reply, RTSP_VERSION, strlen(RTSP_VERSION)) == 0) {
        p->level = PROBE_PROTO;
        reply[strcspn(reply, "\r\n")] = '\0';
        snprintf(p->what, sizeof(p->what), "answered OPTIONS with \"%.80s\"", reply);
    } else {
        snprintf(p->what, sizeof(p->what), "answers TLS but not RTSP");
    }
}

static void *probe_main(void *arg)
{
    struct probe *p = arg;
    struct pp_conn c;
    char err[320];
    enum upstream_result r;

    r = upstream_connect(p->cfg, p->kind, &c, "detect", p->cancel_fd, err, sizeof(err));
    if (r == UP_TRUST) {
        p->level = PROBE_TLS;
        snprintf(p->what, sizeof(p->what), "answers TLS but its certificate was refused (%s)",
                 err);
    } else if (r != UP_OK) {
        snprintf(p->what, sizeof(p->what), "%s", r == UP_CANCEL ? "no answer in time" : err);
    } else {
        p->level = PROBE_TLS;
        if (p->kind == PP_SVC_CHAMBER) {
            probe_chamber(p, &c);
        } else {
            probe_rtsp(p, &c);
        }
        chamber_upstream_close(&c);
    }
    (void)!write(p->done_fd, "d", 1);
    return NULL;
}

/* Wait until both probes finished, the deadline passed or cancel_fd fired. */
static void probes_wait(int done_fd, int cancel_fd, int64_t deadline, int running)
{
    while (running > 0) {
        int64_t left = deadline - pp_now_ms();
        struct pollfd p[2] = {
            { .fd = done_fd, .events = POLLIN },
            { .fd = cancel_fd, .events = POLLIN },
        };
        char b;

        if (left <= 0 || poll(p, cancel_fd >= 0 ? 2 : 1, (int)left) <= 0 ||
            (p[1].revents & POLLIN)) {
            return;
        }
        if (read(done_fd, &b, 1) == 1) {
            running--;
        }
    }
}

static enum pp_camera_mode decide(const struct probe *ch, const struct probe *rt,
                                  enum pp_camera_mode hint)
{
    if (ch->level > rt->level) {
        return PP_CAMERA_CHAMBER;
    }
    if (rt->level > ch->level) {
        return PP_CAMERA_RTSP;
    }
    /* Both answered equally well: the serial breaks the tie. */
    return ch->level == PROBE_NONE ? PP_CAMERA_AUTO : hint;
}

enum pp_camera_mode detect_probe(const struct pp_config *cfg, int cancel_fd, char *why,
                                 size_t whylen)
{
    struct probe probes[2];
    pthread_t tids[2];
    int round[2], done[2];
    int started = 0, running = 0;
    enum pp_camera_mode mode;

    if (pipe2(round, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "cannot probe: out of file descriptors");
        return PP_CAMERA_AUTO;
    }
    if (pipe2(done, O_CLOEXEC) != 0) {
        close(round[0]);
        close(round[1]);
        snprintf(why, whylen, "cannot probe: out of file descriptors");
        return PP_CAMERA_AUTO;
    }
    for (int i = 0; i < 2; i++) {
        memset(&probes[i], 0, sizeof(probes[i]));
        probes[i].cfg = cfg;
        probes[i].kind = i == 0 ? PP_SVC_CHAMBER : PP_SVC_RTSP;
        probes[i].cancel_fd = round[0];
        probes[i].done_fd = done[1];
        probes[i].deadline = pp_now_ms() + PP_DETECT_TIMEOUT_MS;
        snprintf(probes[i].what, sizeof(probes[i].what), "not probed");
        if (thread_spawn(&tids[i], false, probe_main, &probes[i]) == 0) {
            started |= 1 << i;
            running++;
        }
    }
    probes_wait(done[0], cancel_fd, probes[0].deadline, running);
    (void)!write(round[1], "x", 1); /* late probes give up now */
    for (int i = 0; i < 2; i++) {
        if (started & (1 << i)) {
            pthread_join(tids[i], NULL);
        }
    }
    close(round[0]);
    close(round[1]);
    close(done[0]);
    close(done[1]);
    mode = decide(&probes[0], &probes[1], detect_camera_hint(cfg->serial));
    snprintf(why, whylen, "chamber port %d %s; RTSPS port %d %s",
             cfg->printer_ports[PP_SVC_CHAMBER], probes[0].what, cfg->printer_ports[PP_SVC_RTSP],
             probes[1].what);
    return mode;
}

/* ---- camera health, reported by the camera services --------------------- */

static atomic_llong ok_ms[PP_SVC_COUNT];
static atomic_llong fail_since_ms[PP_SVC_COUNT];
static atomic_llong last_fail_ms[PP_SVC_COUNT];
static atomic_bool rtsp_disable_logged;

void detect_camera_ok(enum pp_svc kind)
{
    atomic_store(&ok_ms[kind], pp_now_ms());
    atomic_store(&fail_since_ms[kind], 0);
}

void detect_camera_failed(enum pp_svc kind)
{
    long long zero = 0;
    long long now = pp_now_ms();

    atomic_compare_exchange_strong(&fail_since_ms[kind], &zero, now);
    atomic_store(&last_fail_ms[kind], now);
}

/* A service (re)started: what the previous run of that camera did says nothing now. */
static void camera_health_reset(enum pp_svc kind)
{
    atomic_store(&ok_ms[kind], 0);
    atomic_store(&fail_since_ms[kind], 0);
    atomic_store(&last_fail_ms[kind], 0);
}

/* Failing without a success for period_ms, and still failing lately. */
static bool camera_keeps_failing(enum pp_svc kind, int64_t period_ms)
{
    long long since = atomic_load(&fail_since_ms[kind]);
    long long last = atomic_load(&last_fail_ms[kind]);
    int64_t now = pp_now_ms();

    return since != 0 && now - since >= period_ms && now - last <= PP_DETECT_FAILING_RECENT_MS;
}

void detect_note_rtsp_url(const char *url)
{
    if (url == NULL) {
        return;
    }
    if (strcmp(url, "disable") != 0) {
        atomic_store(&rtsp_disable_logged, false);
        return;
    }
    if (!atomic_exchange(&rtsp_disable_logged, true)) {
        log_warn(DETECT_LOG, 0, "the printer reports its RTSPS camera as disabled "
                 "(ipcam.rtsp_url = \"disable\"): switch on \"LAN Only Liveview\" in the "
                 "printer's network settings to share the camera");
    }
}

void detect_scan_report(const uint8_t *payload, size_t len)
{
    static const char key[] = "\"rtsp_url\"";
    const uint8_t *p = memmem(payload, len, key, sizeof(key) - 1);
    const uint8_t *end = payload + len;
    char url[DETECT_URL_MAX];
    size_t n = 0;

    if (p == NULL) {
        return;
    }
    p += sizeof(key) - 1;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ':')) {
        p++;
    }
    if (p >= end || *p != '"') {
        return;
    }
    for (p++; p < end && *p != '"' && n + 1 < sizeof(url); p++) {
        url[n++] = (char)*p;
    }
    if (p >= end || *p != '"') {
        return; /* unterminated or too long: not the value we look for */
    }
    url[n] = '\0';
    detect_note_rtsp_url(url);
}

/* ---- the camera service manager ------------------------------------------ */

static struct {
    pthread_mutex_t lock;                /* serialises switching with detect_stop */
    const struct pp_config *cfg;
    struct detect_services ds;
    enum pp_camera_mode current;         /* the running camera service, AUTO: none */
    bool guessing;
    bool failing_logged;                 /* "is failing" logged, "works again" not yet */
    int stop_pipe[2];
    pthread_t tid;
    bool thread;
} dm = { .lock = PTHREAD_MUTEX_INITIALIZER, .stop_pipe = { -1, -1 } };

static enum pp_svc mode_svc(enum pp_camera_mode mode)
{
    return mode == PP_CAMERA_RTSP ? PP_SVC_RTSP : PP_SVC_CHAMBER;
}

static struct service *mode_service(enum pp_camera_mode mode)
{
    return mode == PP_CAMERA_RTSP ? dm.ds.rtsp : dm.ds.chamber;
}

/* Run the camera service for mode (and only it). 0, or -1 with err. */
static int camera_use(enum pp_camera_mode mode, char *err, size_t errlen)
{
    enum pp_svc kind = mode_svc(mode);

    if (dm.current == mode) {
        return 0;
    }
    if (dm.current != PP_CAMERA_AUTO) {
        log_info(DETECT_LOG, 0, "switching the camera service from %s to %s",
                 config_camera_name(dm.current), config_camera_name(mode));
        service_stop(mode_service(dm.current));
        dm.current = PP_CAMERA_AUTO;
    }
#ifndef HAVE_RTSP
    if (mode == PP_CAMERA_RTSP) {
        log_error(DETECT_LOG, 0, "the camera is %s to be RTSPS, but this build has no RTSP "
                  "support (configured with --disable-rtsp): no camera is served",
                  dm.guessing ? "guessed" : "detected");
        return 0;
    }
#endif
    camera_health_reset(kind);
    dm.failing_logged = false;
    if (service_start(mode_service(mode), kind, dm.cfg,
                      mode == PP_CAMERA_RTSP ? dm.ds.rtsp_ops : dm.ds.chamber_ops, NULL, err,
                      errlen) != 0) {
        return -1;
    }
    dm.current = mode;
    return 0;
}

static void log_decision(enum pp_camera_mode mode, const char *why)
{
    log_info(DETECT_LOG, 0, "detected the %s camera: %s", config_camera_name(mode), why);
}

/* One background probe; true once the camera is known. */
static bool reprobe(void)
{
    char why[1024];
    char err[512];
    enum pp_camera_mode mode = detect_probe(dm.cfg, dm.stop_pipe[0], why, sizeof(why));

    if (mode == PP_CAMERA_AUTO) {
        log_debug(DETECT_LOG, 0, "camera probe: no answer (%s)", why);
        return false;
    }
    log_decision(mode, why);
    pthread_mutex_lock(&dm.lock);
    if (camera_use(mode, err, sizeof(err)) != 0) {
        log_error(DETECT_LOG, 0, "%s", err);
    }
    pthread_mutex_unlock(&dm.lock);
    return true;
}

/* Log when the detected camera starts failing and when it works again, so the user
 * (and the tests) see a re-detection coming, or a blip that did not cause one. */
static void log_health(enum pp_svc kind, int64_t period_ms)
{
    long long since = atomic_load(&fail_since_ms[kind]);

    if (since != 0 && !dm.failing_logged) {
        dm.failing_logged = true;
        if (period_ms > 0) {
            log_info(DETECT_LOG, 0, "the %s camera is failing; both camera ports are probed "
                     "again if it keeps failing for %lld s (--camera-redetect)",
                     config_camera_name(dm.current), (long long)(period_ms / 1000));
        } else {
            log_info(DETECT_LOG, 0, "the %s camera is failing (re-detection is off: "
                     "--camera-redetect 0)", config_camera_name(dm.current));
        }
    } else if (since == 0 && dm.failing_logged) {
        dm.failing_logged = false;
        log_info(DETECT_LOG, 0, "the %s camera works again", config_camera_name(dm.current));
    }
}

/* The detected camera: true when it has failed long enough to probe again. */
static bool should_redetect(enum pp_svc kind, int64_t period_ms)
{
    log_health(kind, period_ms);
    if (period_ms <= 0 || !camera_keeps_failing(kind, period_ms)) {
        return false;
    }
    log_warn(DETECT_LOG, 0, "the %s camera has kept failing for %lld s: probing both camera "
             "ports again", config_camera_name(dm.current),
             (long long)((pp_now_ms() - atomic_load(&fail_since_ms[kind])) / 1000));
    atomic_store(&fail_since_ms[kind], pp_now_ms()); /* next try in as long */
    return true;
}

static void *detect_main(void *arg)
{
    int64_t period_ms = (int64_t)dm.cfg->camera_redetect_s * 1000;
    /* A short re-detection period (tests, impatient users) is checked as often. */
    int check_ms = period_ms > 0 && period_ms < PP_DETECT_CHECK_MS ? (int)period_ms
                                                                    : PP_DETECT_CHECK_MS;

    (void)arg;
    for (;;) {
        enum pp_svc kind = mode_svc(dm.current);

        if (!pp_sleep(dm.guessing ? PP_DETECT_RETRY_MS : check_ms, dm.stop_pipe[0])) {
            return NULL;
        }
        if (dm.guessing && atomic_load(&ok_ms[kind]) != 0) {
            /* The guessed camera streams: the guess was right. */
            log_info(DETECT_LOG, 0, "the %s camera answers: the guess was right",
                     config_camera_name(dm.current));
            dm.guessing = false;
            continue;
        }
        if (!dm.guessing && !should_redetect(kind, period_ms)) {
            continue;
        }
        if (reprobe()) {
            dm.guessing = false;
        } else if (!dm.guessing) {
            log_info(DETECT_LOG, 0, "no camera port answered: keeping the %s camera",
                     config_camera_name(dm.current));
        }
    }
}

int detect_start(const struct pp_config *cfg, const struct detect_services *ds, int cancel_fd,
                 char *err, size_t errlen)
{
    char why[1024];
    enum pp_camera_mode mode;

    dm.cfg = cfg;
    dm.ds = *ds;
    dm.current = PP_CAMERA_AUTO;
    mode = detect_probe(cfg, cancel_fd, why, sizeof(why));
    dm.guessing = mode == PP_CAMERA_AUTO;
    if (dm.guessing) {
        mode = detect_camera_hint(cfg->serial);
        log_warn(DETECT_LOG, 0, "no camera answered (%s); guessing %s from the serial number "
                 "and probing again every %d s", why, config_camera_name(mode),
                 PP_DETECT_RETRY_MS / 1000);
    } else {
        log_decision(mode, why);
    }
    if (camera_use(mode, err, errlen) != 0) {
        return -1;
    }
    if (pipe2(dm.stop_pipe, O_CLOEXEC) != 0 ||
        thread_spawn(&dm.tid, false, detect_main, NULL) != 0) {
        log_warn(DETECT_LOG, 0, "cannot start background camera detection");
        return 0;
    }
    dm.thread = true;
    return 0;
}

void detect_stop(void)
{
    if (dm.thread) {
        (void)!write(dm.stop_pipe[1], "x", 1);
        pthread_join(dm.tid, NULL);
        dm.thread = false;
    }
    for (int i = 0; i < 2; i++) {
        if (dm.stop_pipe[i] >= 0) {
            close(dm.stop_pipe[i]);
            dm.stop_pipe[i] = -1;
        }
    }
}
