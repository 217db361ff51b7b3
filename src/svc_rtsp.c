/* SPDX-License-Identifier: MIT */
/*
 * The RTSPS camera service as the daemon sees it: a loader for the module rtsp.so
 * (rtsp_camera.c), which holds everything that needs GStreamer. Loading happens when the
 * service first starts, not at daemon start, so MQTT, FTPS and chamber-camera daemons
 * never pay GStreamer's memory. The module resolves the daemon's own functions (log,
 * identity, trust, service runtime) from the executable, which exports them.
 */
#include "autoconf.h"

#include "svc_rtsp.h"

#include <stdio.h>
#include <string.h>

#ifdef HAVE_RTSP

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static _Atomic(const struct pp_rtsp_module *) module;
static char load_err[768];

bool svc_rtsp_module_path(char *buf, size_t n)
{
    const char *dir = getenv("PANDAPROXY_MODULE_DIR");

    if (dir == NULL || dir[0] == '\0') {
        dir = PP_MODULEDIR;
    }
    return (size_t)snprintf(buf, n, "%s/%s", dir, PP_RTSP_MODULE_FILE) < n;
}

static void load_module(void)
{
    char path[512];
    const struct pp_rtsp_module *m;
    void *h;

    if (!svc_rtsp_module_path(path, sizeof(path))) {
        snprintf(load_err, sizeof(load_err), "RTSPS module path too long: %s", path);
        return;
    }
    /* Never unloaded: GStreamer cannot be. */
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(load_err, sizeof(load_err),
                 "cannot load the RTSPS module: %s (install PandaProxy completely with "
                 "'make install', or set PANDAPROXY_MODULE_DIR to the directory that "
                 "holds %s)", dlerror(), PP_RTSP_MODULE_FILE);
        return;
    }
    m = dlsym(h, "pp_rtsp_module");
    if (m == NULL || m->abi != PP_RTSP_MODULE_ABI || m->version == NULL ||
        strcmp(m->version, PACKAGE_VERSION) != 0 || m->config_size != sizeof(struct pp_config) ||
        m->service_size != sizeof(struct service) || m->ops == NULL || m->ops->start == NULL) {
        snprintf(load_err, sizeof(load_err),
                 "%s is not the RTSPS module of this pandaproxy (%s): install both from the "
                 "same build", path, PACKAGE_VERSION);
        (void)dlclose(h);
        return;
    }
    module = m;
}

int svc_rtsp_load(char *err, size_t errlen)
{
    pthread_once(&load_once, load_module);
    if (module == NULL) {
        snprintf(err, errlen, "%s", load_err);
        return -1;
    }
    return 0;
}

static int rtsp_start(struct service *svc, char *err, size_t errlen)
{
    if (svc_rtsp_load(err, errlen) != 0) {
        return -1;
    }
    return module->ops->start(svc, err, errlen);
}

static void rtsp_stop(struct service *svc)
{
    /* Only a service that started ran the loader, and then the module is there. */
    if (module != NULL && module->ops->stop != NULL) {
        module->ops->stop(svc);
    }
}

void svc_rtsp_reload(const struct pp_config *cfg)
{
    if (module != NULL && module->reload != NULL) {
        module->reload(cfg);
    }
}

void svc_rtsp_shutdown(void)
{
    if (module != NULL && module->shutdown != NULL) {
        module->shutdown();
    }
}

#else /* !HAVE_RTSP */

int svc_rtsp_load(char *err, size_t errlen)
{
    snprintf(err, errlen, "this build has no RTSPS support (configured with --disable-rtsp)");
    return -1;
}

static int rtsp_start(struct service *svc, char *err, size_t errlen)
{
    (void)svc;
    return svc_rtsp_load(err, errlen);
}

static void rtsp_stop(struct service *svc)
{
    (void)svc;
}

void svc_rtsp_reload(const struct pp_config *cfg)
{
    (void)cfg;
}

void svc_rtsp_shutdown(void)
{
}

#endif

const struct service_ops svc_rtsp_ops = {
    .start = rtsp_start,
    .stop = rtsp_stop,
    .own_listener = true,
};
