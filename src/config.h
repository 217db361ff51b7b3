/* SPDX-License-Identifier: MIT */
/*
 * The configuration contract: command line > environment > defaults. Parsing is pure
 * (argv and an environment lookup in, a struct or one error line out) so every
 * option and variable is unit tested without starting anything.
 */
#ifndef PP_CONFIG_H
#define PP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "limits.h"

/* The listening services; "camera" on the command line means chamber or rtsp. */
enum pp_svc {
    PP_SVC_MQTT = 0,
    PP_SVC_FTP,
    PP_SVC_CHAMBER,
    PP_SVC_RTSP,
    PP_SVC_COUNT
};

enum pp_camera_mode {
    PP_CAMERA_AUTO = 0,
    PP_CAMERA_CHAMBER,
    PP_CAMERA_RTSP
};

/* Bits of pp_config.services */
#define PP_WANT_CAMERA (1u << 0)
#define PP_WANT_MQTT   (1u << 1)
#define PP_WANT_FTP    (1u << 2)
#define PP_WANT_ALL    (PP_WANT_CAMERA | PP_WANT_MQTT | PP_WANT_FTP)

#define PP_PORT_MQTT    8883
#define PP_PORT_FTP     990
#define PP_PORT_CHAMBER 6000
#define PP_PORT_RTSP    322

/* The chamber auth packet carries the code NUL-terminated in a 32-byte field. */
#define PP_ACCESS_CODE_MAXLEN 31

struct pp_config {
    char printer_host[PP_HOST_MAX];
    char access_code[PP_ACCESS_CODE_MAX + 1];
    char access_code_file[PP_PATH_MAX];
    char serial[PP_SERIAL_MAX];
    char bind_addr[PP_HOST_MAX];
    unsigned services;                 /* PP_WANT_* */
    enum pp_camera_mode camera;
    int ports[PP_SVC_COUNT];           /* listen ports; 0 = pick a free one */
    int printer_ports[PP_SVC_COUNT];
    char state_dir[PP_PATH_MAX];
    char cert_file[PP_PATH_MAX];
    char key_file[PP_PATH_MAX];
    char printer_ca[PP_PATH_MAX];
    bool insecure_printer;
    int max_clients;
    int camera_linger_s;
    int camera_redetect_s;             /* re-probe after failing this long; 0 = never */
    int ftp_data_lo, ftp_data_hi;
    char ftp_pasv_address[PP_HOST_MAX];
    int ftp_max_sessions;
    char run_as[64];
    bool use_syslog;
    bool verbose;
    /* actions */
    bool print_ca;
    bool check_config;
    bool health;
    bool help;
    bool version;
};

/* Environment lookup; getenv in the daemon, a table in the tests. */
typedef const char *(*pp_getenv_fn)(const char *name);

enum pp_config_result {
    PP_CONFIG_OK = 0,    /* run */
    PP_CONFIG_EXIT = 1,  /* --help or --version: print and exit 0 */
    PP_CONFIG_ERROR = 2  /* err holds one line naming the option or variable */
};

enum pp_config_result config_parse(struct pp_config *cfg, int argc, char **argv,
                                   pp_getenv_fn env, char *err, size_t errlen);
/* Zero the access code in memory. */
void config_wipe(struct pp_config *cfg);

const char *config_svc_name(enum pp_svc svc);
/* Returns -1 for an unknown name. */
int config_svc_from_name(const char *name);
const char *config_camera_name(enum pp_camera_mode mode);
/* Whether a listening service runs, given the camera decision. */
bool config_svc_enabled(const struct pp_config *cfg, enum pp_svc svc, enum pp_camera_mode cam);

void config_usage(FILE *out, const char *prog);
/* Fill state_dir default from the environment (STATE_DIRECTORY, root, XDG). */
void config_default_state_dir(char *out, size_t len, pp_getenv_fn env, bool is_root);
/* Parse a boolean word: 1/true/yes/on or 0/false/no/off; -1 otherwise. */
int config_parse_bool(const char *s);

#endif
