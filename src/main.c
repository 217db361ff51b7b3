/* SPDX-License-Identifier: MIT */
/* pandaproxy: parse the configuration and hand over to the daemon. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "svc_rtsp.h"

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

int main(int argc, char **argv)
{
    static struct pp_config cfg;
    char err[512];
    int rc;

    switch (config_parse(&cfg, argc, argv, env_lookup, err, sizeof(err))) {
    case PP_CONFIG_EXIT:
        if (cfg.help) {
            config_usage(stdout, "pandaproxy");
        } else {
            char path[512];

            printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
#ifdef HAVE_RTSP
            (void)svc_rtsp_module_path(path, sizeof(path));
            printf("RTSPS camera module: %s\n", path);
#else
            (void)path;
            printf("RTSPS camera: not built (configured with --disable-rtsp)\n");
#endif
        }
        return PP_EXIT_OK;
    case PP_CONFIG_ERROR:
        fprintf(stderr, "pandaproxy: %s\n", err);
        return PP_EXIT_CONFIG;
    default:
        break;
    }
    log_init("pandaproxy", cfg.use_syslog, cfg.verbose);
    log_add_secret(cfg.access_code);
    if (cfg.print_ca) {
        rc = daemon_print_ca(&cfg);
    } else if (cfg.check_config) {
        rc = daemon_check_config(&cfg);
    } else if (cfg.health) {
        rc = daemon_health(&cfg);
    } else {
        rc = daemon_run(&cfg);
    }
    config_wipe(&cfg);
    return rc;
}
