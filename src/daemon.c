/* SPDX-License-Identifier: MIT */
/*
 * Owns the process: signal handling (handlers only write to a self-pipe that the
 * main thread reads), the TLS identity, starting and stopping services, and the
 * one-shot actions (--print-ca, --check-config, --health).
 */
#include "autoconf.h"

#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "detect.h"
#include "identity.h"
#include "log.h"
#include "net.h"
#include "privdrop.h"
#include "service.h"
#include "signals.h"
#include "svc_chamber.h"
#include "svc_ftp.h"
#include "svc_mqtt.h"
#include "svc_rtsp.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"

#define HEALTH_TIMEOUT_MS 5000
#define RENEW_CHECK_MS    (12 * 3600 * 1000)

static const struct service_ops *ops_for(enum pp_svc kind)
{
    switch (kind) {
    case PP_SVC_MQTT:
        return &svc_mqtt_ops;
    case PP_SVC_FTP:
        return &svc_ftp_ops;
    case PP_SVC_CHAMBER:
        return &svc_chamber_ops;
    default:
        return &svc_rtsp_ops;
    }
}

static int load_identity(const struct pp_config *cfg, bool announce)
{
    struct tls_identity id;
    char err[512];
    char fp[128];
    SSL_CTX *ctx;

    if (identity_ensure(cfg, &id, err, sizeof(err)) != 0) {
        log_error(NULL, 0, "%s", err);
        return -1;
    }
    ctx = identity_server_ctx(&id, err, sizeof(err));
    if (ctx == NULL) {
        log_error(NULL, 0, "%s", err);
        return -1;
    }
    tls_server_ctx_install(ctx);
    if (announce && !id.custom && identity_fingerprint(id.ca_cert, fp, sizeof(fp)) == 0) {
        log_info(NULL, 0, "clients that verify certificates must trust the CA %s "
                 "(sha256 %s); print it with --print-ca", id.ca_cert, fp);
    } else if (announce) {
        log_info(NULL, 0, "serving the certificate %s", id.cert);
    }
    return 0;
}

/*
 * The main thread's wait: SIGHUP reloads certificates, SIGINT/SIGTERM end it, and
 * twice a day the certificates are checked (and renewed when they near expiry).
 */
static void wait_for_stop(const struct pp_config *cfg)
{
    for (;;) {
        int sig;
        int r = net_wait_readable(signals_fd(), RENEW_CHECK_MS, -1);

        if (r < 0) {
            return;
        }
        if (r == 0) {
            (void)load_identity(cfg, false);
            continue;
        }
        while ((sig = signals_next()) != 0) {
            if (sig == SIGHUP) {
                log_info(NULL, 0, "SIGHUP: reloading the certificate");
                if (load_identity(cfg, false) == 0) {
                    svc_rtsp_reload(cfg);
                }
            } else {
                log_info(NULL, 0, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
                return;
            }
        }
    }
}

int daemon_run(struct pp_config *cfg)
{
    static struct service services[PP_SVC_COUNT];
    enum pp_camera_mode cam = cfg->camera;
    char err[512];
    int rc = PP_EXIT_FAILURE;
    int64_t t0;

    static const int handled[] = { SIGINT, SIGTERM, SIGHUP };

    if (signals_install(handled, PP_ARRAY_LEN(handled)) != 0) {
        log_error(NULL, 0, "cannot set up signal handling: %s", strerror(errno));
        return PP_EXIT_FAILURE;
    }
    log_info(NULL, 0, "%s %s starting for printer %s (serial %s)", PACKAGE_NAME, PACKAGE_VERSION,
             cfg->printer_host, cfg->serial);
    if (cfg->insecure_printer) {
        log_warn(NULL, 0, "--insecure-printer: the printer's certificate is not checked; "
                 "anyone on the network path can impersonate it");
    }
    if (load_identity(cfg, true) != 0 || upstream_init(cfg, err, sizeof(err)) != 0) {
        goto out;
    }
    if (cfg->run_as[0] && privdrop(cfg->run_as, cfg->state_dir, err, sizeof(err)) != 0) {
        log_error(NULL, 0, "%s", err);
        goto out;
    }
    for (int k = 0; k < PP_SVC_COUNT; k++) {
        if (!config_svc_enabled(cfg, (enum pp_svc)k, cam)) {
            continue;
        }
        if (service_start(&services[k], (enum pp_svc)k, cfg, ops_for((enum pp_svc)k), NULL, err,
                          sizeof(err)) != 0) {
            log_error(config_svc_name((enum pp_svc)k), 0, "%s", err);
            goto stop;
        }
    }
    if (cam == PP_CAMERA_AUTO && (cfg->services & PP_WANT_CAMERA)) {
        /* Detection picks (and later may switch) the camera service. */
        struct detect_services ds = {
            .chamber = &services[PP_SVC_CHAMBER], .rtsp = &services[PP_SVC_RTSP],
            .chamber_ops = ops_for(PP_SVC_CHAMBER), .rtsp_ops = ops_for(PP_SVC_RTSP),
        };
        if (detect_start(cfg, &ds, signals_fd(), err, sizeof(err)) != 0) {
            log_error("camera", 0, "%s", err);
            goto stop;
        }
    }
    wait_for_stop(cfg);
    rc = PP_EXIT_OK;
stop:
    t0 = pp_now_ms();
    detect_stop();
    for (int k = PP_SVC_COUNT - 1; k >= 0; k--) {
        service_stop(&services[k]);
    }
    svc_rtsp_shutdown();
    log_info(NULL, 0, "stopped in %lld ms", (long long)(pp_now_ms() - t0));
out:
    upstream_cleanup();
    tls_server_ctx_install(NULL);
    return rc;
}

int daemon_print_ca(const struct pp_config *cfg)
{
    struct tls_identity id;
    char err[512];
    char *pem = NULL;
    size_t len = 0;

    if (identity_ensure_ca(cfg, &id, err, sizeof(err)) != 0) {
        fprintf(stderr, "pandaproxy: %s\n", err);
        return PP_EXIT_FAILURE;
    }
    if (pp_read_file(id.ca_cert, &pem, &len, 64 * 1024) != 0) {
        fprintf(stderr, "pandaproxy: cannot read %s: %s\n", id.ca_cert, strerror(errno));
        return PP_EXIT_FAILURE;
    }
    fwrite(pem, 1, len, stdout);
    free(pem);
    return PP_EXIT_OK;
}

static int check_state_dir(const char *dir, char *err, size_t errlen)
{
    char parent[PP_PATH_MAX];
    char *slash;

    if (access(dir, F_OK) == 0) {
        if (access(dir, W_OK | X_OK) != 0) {
            snprintf(err, errlen, "state directory %s is not writable: %s", dir,
                     strerror(errno));
            return -1;
        }
        return 0;
    }
    /* Not created yet: the nearest existing ancestor must be writable. */
    snprintf(parent, sizeof(parent), "%s", dir);
    while ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
        *slash = '\0';
        if (access(parent, F_OK) == 0) {
            if (access(parent, W_OK | X_OK) != 0) {
                snprintf(err, errlen, "state directory %s cannot be created: %s is not "
                         "writable", dir, parent);
                return -1;
            }
            return 0;
        }
    }
    return 0;
}

int daemon_check_config(const struct pp_config *cfg)
{
    char err[512];
    int bad = 0;

    if (check_state_dir(cfg->state_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "pandaproxy: %s\n", err);
        bad++;
    }
    if (identity_check(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "pandaproxy: %s\n", err);
        bad++;
    }
    if (cfg->printer_ca[0]) {
        X509_STORE *st = X509_STORE_new();
        if (st == NULL || X509_STORE_load_file(st, cfg->printer_ca) != 1) {
            fprintf(stderr, "pandaproxy: option --printer-ca: cannot load %s as PEM CA "
                    "certificates\n", cfg->printer_ca);
            bad++;
        }
        X509_STORE_free(st);
        ERR_clear_error();
    }
    if (cfg->run_as[0] && getpwnam(cfg->run_as) == NULL) {
        fprintf(stderr, "pandaproxy: option --user: no user named '%s'\n", cfg->run_as);
        bad++;
    }
    if ((cfg->services & PP_WANT_CAMERA) && cfg->camera != PP_CAMERA_CHAMBER &&
        svc_rtsp_load(err, sizeof(err)) != 0) {
        if (cfg->camera == PP_CAMERA_RTSP) {
            fprintf(stderr, "pandaproxy: option --camera rtsp: %s\n", err);
            bad++;
#ifdef HAVE_RTSP
        } else {
            fprintf(stderr, "pandaproxy: warning: an RTSPS camera (X1, H2, P2) would not "
                    "work: %s\n", err);
#endif
        }
    }
    if (bad == 0) {
        printf("configuration OK\n");
        return PP_EXIT_OK;
    }
    return PP_EXIT_CONFIG;
}

/* A TLS handshake with one local port; 0 when it completes. */
static int health_probe(const char *host, int port, SSL_CTX *ctx)
{
    char err[256];
    struct pp_conn c;
    int fd = net_connect(host, port, HEALTH_TIMEOUT_MS, -1, err, sizeof(err));
    int r;

    if (fd < 0) {
        return -1;
    }
    conn_init(&c, fd, "health", 0);
    c.ssl = SSL_new(ctx);
    if (c.ssl == NULL) {
        conn_close(&c, false);
        return -1;
    }
    SSL_set_fd(c.ssl, fd);
    SSL_set_connect_state(c.ssl);
    r = conn_handshake(&c, pp_now_ms() + HEALTH_TIMEOUT_MS, -1);
    conn_close(&c, true);
    return r == 0 ? 0 : -1;
}

int daemon_health(const struct pp_config *cfg)
{
    const char *host = strcmp(cfg->bind_addr, "0.0.0.0") == 0 ? "127.0.0.1"
                       : strcmp(cfg->bind_addr, "::") == 0   ? "::1"
                                                             : cfg->bind_addr;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int bad = 0;

    if (ctx == NULL) {
        return PP_EXIT_FAILURE;
    }
    for (int k = 0; k < PP_SVC_COUNT; k++) {
        bool camera = k == PP_SVC_CHAMBER || k == PP_SVC_RTSP;
        bool ok;

        if (!config_svc_enabled(cfg, (enum pp_svc)k, cfg->camera) &&
            !(camera && cfg->camera == PP_CAMERA_AUTO && (cfg->services & PP_WANT_CAMERA))) {
            continue;
        }
        if (camera && cfg->camera == PP_CAMERA_AUTO) {
            if (k == PP_SVC_RTSP) {
                continue; /* checked together with chamber */
            }
            ok = health_probe(host, cfg->ports[PP_SVC_CHAMBER], ctx) == 0 ||
                 health_probe(host, cfg->ports[PP_SVC_RTSP], ctx) == 0;
            printf("camera: %s\n", ok ? "ok" : "no answer");
        } else {
            ok = health_probe(host, cfg->ports[k], ctx) == 0;
            printf("%s (port %d): %s\n", config_svc_name((enum pp_svc)k), cfg->ports[k],
                   ok ? "ok" : "no answer");
        }
        bad += ok ? 0 : 1;
    }
    SSL_CTX_free(ctx);
    return bad ? PP_EXIT_FAILURE : PP_EXIT_OK;
}
