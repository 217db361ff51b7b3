/* SPDX-License-Identifier: MIT */
/*
 * The simulated printer's MQTT side: job state machine (IDLE, RUNNING, PAUSE, FINISH,
 * FAILED), temperatures that move toward their targets, the push_status reports (full
 * after a pushall, only the changed fields every second), get_version and the print
 * commands. Reports are posted to a ring that subscribed client workers drain.
 */
#include "autoconf.h"

#include "sim_printer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../log.h"
#include "../thread.h"
#include "../util.h"

#define AMBIENT_C          25.0
#define NOZZLE_PRINT_C     220.0
#define BED_PRINT_C        60.0
#define HEAT_STEP_MIN_C    0.5    /* degrees per tick at least, so targets are reached */
#define HEAT_RATE          0.3    /* fraction of the gap closed per tick */
#define JOB_LAYERS         100
#define JOB_MINUTES        50     /* remaining time at 0 % */
#define PERCENT_PER_TICK   1
#define SPEED_STANDARD     2
#define SPEED_MAX          4
#define WIFI_BASE_DBM      (-42)
#define WIFI_SPREAD        4
#define NAME_MAX_LEN       128
#define FILE_MAX_LEN       256
#define FW_VERSION         "01.07.00.00"

#define URL_FTP            "ftp:///"
#define URL_SDCARD         "file:///sdcard/"

/* What a report shows; compared field by field for the "changed only" reports. */
struct pstate {
    char gcode_state[16];
    int mc_percent;
    int mc_remaining_time;
    int layer_num;
    int total_layer_num;
    int spd_lvl;
    int print_error;
    int wifi_dbm;
    double nozzle, nozzle_target;
    double bed, bed_target;
    char subtask_name[NAME_MAX_LEN];
    char gcode_file[FILE_MAX_LEN];
    char print_type[16];
    bool light_on;
};

struct sim_printer {
    struct sim *s;
    int cancel_fd;
    pthread_t ticker;
    pthread_mutex_t lock;
    pthread_cond_t idle;            /* attached reached 0 */
    int attached;
    struct pstate st;               /* current */
    struct pstate published;        /* as of the last periodic report */
    uint64_t tick;
    uint64_t seq;                   /* our own sequence_id for push_status */
    int64_t last_pushall_ms;        /* last answered pushall, 0 = none yet */
    char *ring[SIM_MQTT_RING];
    size_t ring_len[SIM_MQTT_RING];
    uint64_t head;                  /* sequence of the next report posted */
    struct sim_sub *subs;
};

/* ---- ring ----------------------------------------------------------------- */

/* Takes ownership of json. Caller holds the lock. */
static void post_locked(struct sim_printer *p, char *json)
{
    size_t i = (size_t)(p->head % SIM_MQTT_RING);
    uint64_t one = 1;

    if (json == NULL) {
        return;
    }
    free(p->ring[i]);
    p->ring[i] = json;
    p->ring_len[i] = strlen(json);
    p->head++;
    for (struct sim_sub *sub = p->subs; sub != NULL; sub = sub->next) {
        /* Non-blocking eventfd: a counter that cannot fill up in practice. */
        (void)!write(sub->wake_fd, &one, sizeof(one));
    }
}

static char *print_json(cJSON *root)
{
    char *out = root ? cJSON_PrintUnformatted(root) : NULL;

    cJSON_Delete(root);
    return out;
}

void sim_printer_subscribe(struct sim_printer *p, struct sim_sub *sub)
{
    pthread_mutex_lock(&p->lock);
    sub->cursor = p->head;
    sub->prev = NULL;
    sub->next = p->subs;
    if (p->subs != NULL) {
        p->subs->prev = sub;
    }
    p->subs = sub;
    pthread_mutex_unlock(&p->lock);
}

void sim_printer_unsubscribe(struct sim_printer *p, struct sim_sub *sub)
{
    pthread_mutex_lock(&p->lock);
    if (sub->prev != NULL) {
        sub->prev->next = sub->next;
    } else if (p->subs == sub) {
        p->subs = sub->next;
    }
    if (sub->next != NULL) {
        sub->next->prev = sub->prev;
    }
    sub->prev = sub->next = NULL;
    pthread_mutex_unlock(&p->lock);
}

char *sim_printer_next(struct sim_printer *p, struct sim_sub *sub, size_t *len,
                       unsigned long *skipped)
{
    char *out = NULL;

    pthread_mutex_lock(&p->lock);
    if (p->head - sub->cursor > SIM_MQTT_RING) {
        *skipped += (unsigned long)(p->head - SIM_MQTT_RING - sub->cursor);
        sub->cursor = p->head - SIM_MQTT_RING;
    }
    if (sub->cursor != p->head) {
        size_t i = (size_t)(sub->cursor % SIM_MQTT_RING);

        out = malloc(p->ring_len[i] + 1);
        if (out != NULL) {
            memcpy(out, p->ring[i], p->ring_len[i] + 1);
            *len = p->ring_len[i];
            sub->cursor++;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return out;
}

/* ---- reports ---------------------------------------------------------------- */

static void add_str(cJSON *o, const char *key, const char *cur, const char *prev)
{
    if (prev == NULL || strcmp(cur, prev) != 0) {
        cJSON_AddStringToObject(o, key, cur);
    }
}

static void add_int(cJSON *o, const char *key, int cur, const int *prev)
{
    if (prev == NULL || cur != *prev) {
        cJSON_AddNumberToObject(o, key, cur);
    }
}

static void add_temp(cJSON *o, const char *key, double cur, const double *prev)
{
    if (prev == NULL || cur != *prev) {
        cJSON_AddNumberToObject(o, key, cur);
    }
}

static void add_lights(cJSON *o, bool on)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "lights_report");
    cJSON *light = cJSON_CreateObject();

    cJSON_AddStringToObject(light, "node", "chamber_light");
    cJSON_AddStringToObject(light, "mode", on ? "on" : "off");
    cJSON_AddItemToArray(arr, light);
}

/* The camera block of a full report; rtsp_url only for RTSPS models. */
static void add_ipcam(struct sim_printer *p, cJSON *o)
{
    struct sim *s = p->s;
    cJSON *cam = cJSON_AddObjectToObject(o, "ipcam");
    int port = atomic_load(&s->rtsp_port);

    cJSON_AddStringToObject(cam, "ipcam_dev", "1");
    cJSON_AddStringToObject(cam, "ipcam_record", "enable");
    cJSON_AddStringToObject(cam, "timelapse", "disable");
    cJSON_AddStringToObject(cam, "resolution", "1080p");
    cJSON_AddStringToObject(cam, "tutk_server", "disable");
    cJSON_AddNumberToObject(cam, "mode_bits", 3);
    if (s->model->rtsp_camera) {
        char url[PP_HOST_MAX + 64];
        const char *host = s->cfg.bind_addr;
        bool v6 = strchr(host, ':') != NULL;

        if (port > 0) {
            snprintf(url, sizeof(url), "rtsps://%s%s%s:%d/streaming/live/1", v6 ? "[" : "", host,
                     v6 ? "]" : "", port);
        } else {
            snprintf(url, sizeof(url), "disable");
        }
        cJSON_AddStringToObject(cam, "rtsp_url", url);
    }
}

/* The "print" object: every field when prev is NULL, else only those that changed. */
static cJSON *report(struct sim_printer *p, const struct pstate *prev)
{
    const struct pstate *st = &p->st;
    cJSON *root = cJSON_CreateObject();
    cJSON *o = cJSON_AddObjectToObject(root, "print");
    char buf[32];

    add_str(o, "gcode_state", st->gcode_state, prev ? prev->gcode_state : NULL);
    add_int(o, "mc_percent", st->mc_percent, prev ? &prev->mc_percent : NULL);
    add_int(o, "mc_remaining_time", st->mc_remaining_time, prev ? &prev->mc_remaining_time : NULL);
    add_temp(o, "nozzle_temper", st->nozzle, prev ? &prev->nozzle : NULL);
    add_temp(o, "nozzle_target_temper", st->nozzle_target, prev ? &prev->nozzle_target : NULL);
    add_temp(o, "bed_temper", st->bed, prev ? &prev->bed : NULL);
    add_temp(o, "bed_target_temper", st->bed_target, prev ? &prev->bed_target : NULL);
    add_int(o, "layer_num", st->layer_num, prev ? &prev->layer_num : NULL);
    add_int(o, "total_layer_num", st->total_layer_num, prev ? &prev->total_layer_num : NULL);
    if (prev == NULL || st->wifi_dbm != prev->wifi_dbm) {
        snprintf(buf, sizeof(buf), "%ddBm", st->wifi_dbm);
        cJSON_AddStringToObject(o, "wifi_signal", buf);
    }
    add_str(o, "subtask_name", st->subtask_name, prev ? prev->subtask_name : NULL);
    add_str(o, "gcode_file", st->gcode_file, prev ? prev->gcode_file : NULL);
    add_str(o, "print_type", st->print_type, prev ? prev->print_type : NULL);
    add_int(o, "spd_lvl", st->spd_lvl, prev ? &prev->spd_lvl : NULL);
    add_int(o, "print_error", st->print_error, prev ? &prev->print_error : NULL);
    if (prev == NULL || st->light_on != prev->light_on) {
        add_lights(o, st->light_on);
    }
    if (prev == NULL) {
        add_ipcam(p, o);
    }
    cJSON_AddStringToObject(o, "command", "push_status");
    cJSON_AddNumberToObject(o, "msg", prev == NULL ? 0 : 1);
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)++p->seq);
    cJSON_AddStringToObject(o, "sequence_id", buf);
    return root;
}

/* ---- simulation ------------------------------------------------------------- */

/* One tick of heating or cooling, in tenths of a degree like the printer reports. */
static double approach(double cur, double target)
{
    double goal = target > 0 ? target : AMBIENT_C;
    double gap = goal - cur;
    double dist = gap < 0 ? -gap : gap;
    double step = dist * HEAT_RATE;
    long tenths;

    if (step < HEAT_STEP_MIN_C) {
        step = HEAT_STEP_MIN_C;
    }
    if (dist <= step) {
        return goal;
    }
    tenths = (long)((cur + (gap > 0 ? step : -step)) * 10.0 + 0.5);
    return (double)tenths / 10.0;
}

static void set_state(struct pstate *st, const char *state)
{
    snprintf(st->gcode_state, sizeof(st->gcode_state), "%s", state);
    if (strcmp(state, "RUNNING") == 0) {
        st->nozzle_target = NOZZLE_PRINT_C;
        st->bed_target = BED_PRINT_C;
    } else if (strcmp(state, "PAUSE") != 0) {
        st->nozzle_target = 0;
        st->bed_target = 0;
    }
}

static void advance(struct sim_printer *p)
{
    struct pstate *st = &p->st;

    p->tick++;
    st->wifi_dbm = WIFI_BASE_DBM - (int)(p->tick % WIFI_SPREAD);
    st->nozzle = approach(st->nozzle, st->nozzle_target);
    st->bed = approach(st->bed, st->bed_target);
    if (strcmp(st->gcode_state, "RUNNING") != 0) {
        return;
    }
    st->mc_percent += PERCENT_PER_TICK;
    if (st->mc_percent >= 100) {
        st->mc_percent = 100;
        set_state(st, "FINISH");
        log_info("mqtt", 0, "print of %s finished", st->gcode_file);
    }
    st->layer_num = st->total_layer_num * st->mc_percent / 100;
    st->mc_remaining_time = JOB_MINUTES * (100 - st->mc_percent) / 100;
}

static void *ticker_main(void *arg)
{
    struct sim_printer *p = arg;
    int64_t next = pp_now_ms() + SIM_MQTT_TICK_MS;

    while (pp_sleep(next - pp_now_ms(), p->cancel_fd)) {
        struct pstate prev;

        next += SIM_MQTT_TICK_MS;
        if (next < pp_now_ms()) {
            next = pp_now_ms() + SIM_MQTT_TICK_MS; /* fell behind: no burst */
        }
        pthread_mutex_lock(&p->lock);
        prev = p->published;
        advance(p);
        post_locked(p, print_json(report(p, &prev)));
        p->published = p->st;
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

/* ---- requests --------------------------------------------------------------- */

/* {"<kind>":{"command":cmd,"sequence_id":<echoed>, ...}} */
static cJSON *answer(const char *kind, const char *cmd, const cJSON *req)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *o = cJSON_AddObjectToObject(root, kind);
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(req, "sequence_id");

    cJSON_AddStringToObject(o, "command", cmd);
    if (seq != NULL) {
        cJSON_AddItemToObject(o, "sequence_id", cJSON_Duplicate(seq, true));
    } else {
        cJSON_AddStringToObject(o, "sequence_id", "0");
    }
    return root;
}

static void set_result(cJSON *root, const char *kind, const char *reason)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(root, kind);

    cJSON_AddStringToObject(o, "result", reason == NULL ? "success" : "failed");
    if (reason != NULL) {
        cJSON_AddStringToObject(o, "reason", reason);
    }
}

static const char *project_name(const struct sim *s)
{
    static const struct {
        const char *model, *project;
    } names[] = {
        { "p1s", "C12" }, { "p1p", "C11" }, { "a1", "N2S" }, { "a1mini", "N1" },
        { "x1c", "BL-P001" }, { "x1e", "C13" }, { "h2d", "O1D" }, { "p2s", "N7" },
    };

    for (size_t i = 0; i < PP_ARRAY_LEN(names); i++) {
        if (strcmp(names[i].model, s->model->name) == 0) {
            return names[i].project;
        }
    }
    return "C11";
}

static void add_module(cJSON *arr, const char *name, const char *project, const char *hw,
                       const char *sn, const char *product)
{
    cJSON *m = cJSON_CreateObject();

    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "project_name", project);
    cJSON_AddStringToObject(m, "sw_ver", FW_VERSION);
    cJSON_AddStringToObject(m, "hw_ver", hw);
    cJSON_AddStringToObject(m, "sn", sn);
    if (product != NULL) {
        cJSON_AddStringToObject(m, "product_name", product);
    }
    cJSON_AddItemToArray(arr, m);
}

static void get_version(struct sim_printer *p, const cJSON *req)
{
    struct sim *s = p->s;
    cJSON *root = answer("info", "get_version", req);
    cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "info");
    cJSON *mods = cJSON_AddArrayToObject(o, "module");
    const char *proj = project_name(s);

    add_module(mods, "ota", proj, "OTA", s->cfg.serial, s->model->product);
    add_module(mods, "mc", proj, "MC01", s->cfg.serial, NULL);
    add_module(mods, "th", proj, "TH01", s->cfg.serial, NULL);
    add_module(mods, "ap", proj, "AP05", s->cfg.serial, s->model->product);
    cJSON_AddStringToObject(o, "result", "success");
    post_locked(p, print_json(root));
}

/* A pushall sooner than --pushall-interval after the last answered one is ignored. */
static void pushall(struct sim_printer *p, unsigned long conn_id)
{
    struct sim *s = p->s;
    int64_t now = pp_now_ms();

    atomic_fetch_add(&s->pushalls, 1);
    sim_status_changed(s);
    if (s->pushall_interval_s > 0 && p->last_pushall_ms != 0 &&
        now - p->last_pushall_ms < (int64_t)s->pushall_interval_s * 1000) {
        atomic_fetch_add(&s->pushalls_ignored, 1);
        log_info("mqtt", conn_id, "pushall %lld ms after the previous one: ignored "
                 "(--pushall-interval %d)", (long long)(now - p->last_pushall_ms),
                 s->pushall_interval_s);
        return;
    }
    p->last_pushall_ms = now;
    log_debug("mqtt", conn_id, "pushall: sending the full status");
    post_locked(p, print_json(report(p, NULL)));
}

/* The file a project_file URL names, if it was uploaded; NULL + reason otherwise. */
static const char *project_file_check(struct sim *s, const char *url, char *rel, size_t rellen)
{
    char path[PP_PATH_MAX + FILE_MAX_LEN];
    const char *name;
    struct stat sb;

    if (strncmp(url, URL_FTP, strlen(URL_FTP)) == 0) {
        name = url + strlen(URL_FTP);
    } else if (strncmp(url, URL_SDCARD, strlen(URL_SDCARD)) == 0) {
        name = url + strlen(URL_SDCARD);
    } else {
        return "unsupported url (ftp:///FILE or file:///sdcard/FILE)";
    }
    while (*name == '/') {
        name++;
    }
    if (*name == '\0' || strlen(name) >= rellen || strstr(name, "..") != NULL) {
        return "bad file name";
    }
    snprintf(rel, rellen, "%s", name);
    snprintf(path, sizeof(path), "%s/%s", s->ftp_root, name);
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        return "file not found";
    }
    return NULL;
}

static const char *start_project(struct sim_printer *p, const cJSON *req)
{
    struct pstate *st = &p->st;
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(req, "url");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(req, "subtask_name");
    char rel[FILE_MAX_LEN];
    const char *why;

    if (strcmp(st->gcode_state, "RUNNING") == 0 || strcmp(st->gcode_state, "PAUSE") == 0) {
        return "printer is busy";
    }
    if (!cJSON_IsString(url)) {
        return "no url";
    }
    why = project_file_check(p->s, url->valuestring, rel, sizeof(rel));
    if (why != NULL) {
        set_state(st, "FAILED");
        st->print_error = 1;
        return why;
    }
    snprintf(st->gcode_file, sizeof(st->gcode_file), "%s", rel);
    snprintf(st->subtask_name, sizeof(st->subtask_name), "%s",
             cJSON_IsString(task) && task->valuestring[0] ? task->valuestring : rel);
    snprintf(st->print_type, sizeof(st->print_type), "local");
    st->mc_percent = 0;
    st->layer_num = 0;
    st->total_layer_num = JOB_LAYERS;
    st->mc_remaining_time = JOB_MINUTES;
    st->print_error = 0;
    set_state(st, "RUNNING");
    return NULL;
}

/* pause / resume / stop / project_file / print_speed; NULL = success, else the reason. */
static const char *print_command(struct sim_printer *p, const char *cmd, const cJSON *req,
                                 bool *known)
{
    struct pstate *st = &p->st;
    const cJSON *param = cJSON_GetObjectItemCaseSensitive(req, "param");

    *known = true;
    if (strcmp(cmd, "pause") == 0) {
        if (strcmp(st->gcode_state, "RUNNING") != 0) {
            return "not printing";
        }
        set_state(st, "PAUSE");
        return NULL;
    }
    if (strcmp(cmd, "resume") == 0) {
        if (strcmp(st->gcode_state, "PAUSE") != 0) {
            return "not paused";
        }
        set_state(st, "RUNNING");
        return NULL;
    }
    if (strcmp(cmd, "stop") == 0) {
        set_state(st, "IDLE");
        return NULL;
    }
    if (strcmp(cmd, "project_file") == 0) {
        return start_project(p, req);
    }
    if (strcmp(cmd, "print_speed") == 0) {
        int lvl = cJSON_IsString(param) ? atoi(param->valuestring) : 0;
        if (lvl < 1 || lvl > SPEED_MAX) {
            return "bad speed level";
        }
        st->spd_lvl = lvl;
        return NULL;
    }
    if (strcmp(cmd, "gcode_line") == 0) {
        return NULL;
    }
    *known = false;
    return NULL;
}

/* system ledctrl: the chamber light. */
static const char *system_command(struct sim_printer *p, const char *cmd, const cJSON *req,
                                  bool *known)
{
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(req, "led_mode");

    *known = strcmp(cmd, "ledctrl") == 0;
    if (!*known) {
        return NULL;
    }
    if (!cJSON_IsString(mode)) {
        return "no led_mode";
    }
    p->st.light_on = strcmp(mode->valuestring, "off") != 0;
    return NULL;
}

static void command(struct sim_printer *p, const char *kind, const cJSON *req,
                    unsigned long conn_id)
{
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(req, "command");
    const char *why = NULL;
    bool known = false;
    cJSON *root;

    if (!cJSON_IsString(cmd)) {
        log_info("mqtt", conn_id, "'%s' request without a command: ignored", kind);
        return;
    }
    if (strcmp(kind, "pushing") == 0 && strcmp(cmd->valuestring, "pushall") == 0) {
        pushall(p, conn_id);
        return;
    }
    if (strcmp(kind, "info") == 0 && strcmp(cmd->valuestring, "get_version") == 0) {
        get_version(p, req);
        return;
    }
    if (strcmp(kind, "print") == 0) {
        why = print_command(p, cmd->valuestring, req, &known);
    } else if (strcmp(kind, "system") == 0) {
        why = system_command(p, cmd->valuestring, req, &known);
    }
    if (!known) {
        log_info("mqtt", conn_id, "'%s' command '%.64s' is not simulated: ignored", kind,
                 cmd->valuestring);
        return;
    }
    log_info("mqtt", conn_id, "%s %.64s: %s%s (state %s)", kind, cmd->valuestring,
             why ? "failed: " : "success", why ? why : "", p->st.gcode_state);
    root = answer(kind, cmd->valuestring, req);
    set_result(root, kind, why);
    post_locked(p, print_json(root));
}

void sim_printer_request(struct sim_printer *p, const uint8_t *json, size_t len,
                         unsigned long conn_id)
{
    cJSON *root = cJSON_ParseWithLength((const char *)json, len);
    const cJSON *req;

    if (!cJSON_IsObject(root) || root->child == NULL || !cJSON_IsObject(root->child)) {
        log_info("mqtt", conn_id, "request is not a JSON command object: ignored");
        cJSON_Delete(root);
        return;
    }
    req = root->child;
    pthread_mutex_lock(&p->lock);
    command(p, req->string, req, conn_id);
    pthread_mutex_unlock(&p->lock);
    cJSON_Delete(root);
}

/* ---- lifetime ----------------------------------------------------------------- */

void sim_printer_attach(struct sim_printer *p)
{
    pthread_mutex_lock(&p->lock);
    p->attached++;
    pthread_mutex_unlock(&p->lock);
}

void sim_printer_detach(struct sim_printer *p)
{
    pthread_mutex_lock(&p->lock);
    if (--p->attached == 0) {
        pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->lock);
}

static void initial_state(struct pstate *st)
{
    memset(st, 0, sizeof(*st));
    set_state(st, "IDLE");
    st->nozzle = AMBIENT_C;
    st->bed = AMBIENT_C;
    st->spd_lvl = SPEED_STANDARD;
    st->wifi_dbm = WIFI_BASE_DBM;
    st->light_on = true;
    snprintf(st->print_type, sizeof(st->print_type), "idle");
}

/* One printer per process. Static storage, never freed: a worker that reaches serve
 * while the service stops may still attach, see the service stopping and leave. */
static struct sim_printer the_printer;

struct sim_printer *sim_printer_start(struct sim *s, int cancel_fd, char *err, size_t errlen)
{
    struct sim_printer *p = &the_printer;
    int rc;

    memset(p, 0, sizeof(*p));
    p->s = s;
    p->cancel_fd = cancel_fd;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->idle, NULL);
    initial_state(&p->st);
    p->published = p->st;
    rc = thread_spawn(&p->ticker, false, ticker_main, p);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the MQTT report thread: %s", strerror(rc));
        return NULL;
    }
    return p;
}

void sim_printer_stop(struct sim_printer *p)
{
    if (p == NULL) {
        return;
    }
    pthread_join(p->ticker, NULL);
    pthread_mutex_lock(&p->lock);
    while (p->attached > 0) {
        pthread_cond_wait(&p->idle, &p->lock);
    }
    for (size_t i = 0; i < SIM_MQTT_RING; i++) {
        free(p->ring[i]);
        p->ring[i] = NULL;
    }
    pthread_mutex_unlock(&p->lock);
}
