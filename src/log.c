/* SPDX-License-Identifier: MIT */
/*
 * Owns the log sink. One line is formatted into a local buffer and written with a
 * single write(2), so lines from different threads never interleave.
 */
#include "autoconf.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#define LOG_LINE_MAX 2048
#define LOG_MAX_SECRETS 4

static bool use_syslog_sink;
static bool debug_on;
static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char secrets[LOG_MAX_SECRETS][128];
static size_t nsecrets;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_init(const char *ident, bool use_syslog, bool verbose)
{
    use_syslog_sink = use_syslog;
    debug_on = verbose;
    if (use_syslog) {
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    }
}

bool log_debug_enabled(void)
{
    return debug_on;
}

void log_add_secret(const char *secret)
{
    if (secret == NULL || secret[0] == '\0' || strlen(secret) >= sizeof(secrets[0])) {
        return;
    }
    pthread_mutex_lock(&secret_lock);
    if (nsecrets < LOG_MAX_SECRETS) {
        snprintf(secrets[nsecrets++], sizeof(secrets[0]), "%s", secret);
    }
    pthread_mutex_unlock(&secret_lock);
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&secret_lock);
    memset(secrets, 0, sizeof(secrets));
    nsecrets = 0;
    pthread_mutex_unlock(&secret_lock);
}

static void mask_secrets(char *line)
{
    pthread_mutex_lock(&secret_lock);
    for (size_t i = 0; i < nsecrets; i++) {
        size_t n = strlen(secrets[i]);
        char *p = line;
        while ((p = strstr(p, secrets[i])) != NULL) {
            memset(p, '*', n);
            p += n;
        }
    }
    pthread_mutex_unlock(&secret_lock);
}

static size_t format_prefix(char *buf, size_t cap, enum log_level lvl, const char *svc,
                            unsigned long conn)
{
    struct timespec ts;
    struct tm tm;
    char when[32];
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    if (conn != 0) {
        n = snprintf(buf, cap, "%s.%03ldZ %-5s [%s#%lu] ", when, ts.tv_nsec / 1000000L,
                     level_names[lvl], svc ? svc : "main", conn);
    } else {
        n = snprintf(buf, cap, "%s.%03ldZ %-5s [%s] ", when, ts.tv_nsec / 1000000L,
                     level_names[lvl], svc ? svc : "main");
    }
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

void log_vmsg(enum log_level lvl, const char *svc, unsigned long conn, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t off;
    int n;
    int saved = errno;

    if (lvl == LOG_LVL_DEBUG && !debug_on) {
        return;
    }
    off = use_syslog_sink ? 0 : format_prefix(line, sizeof(line), lvl, svc, conn);
    if (use_syslog_sink) {
        n = conn ? snprintf(line, sizeof(line), "[%s#%lu] ", svc ? svc : "main", conn)
                 : snprintf(line, sizeof(line), "[%s] ", svc ? svc : "main");
        off = (n > 0 && (size_t)n < sizeof(line)) ? (size_t)n : 0;
    }
    n = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
    if (n < 0) {
        n = 0;
    }
    off += ((size_t)n < sizeof(line) - off - 1) ? (size_t)n : sizeof(line) - off - 2;
    line[off] = '\0';
    mask_secrets(line);
    if (use_syslog_sink) {
        syslog(syslog_prio[lvl], "%s", line);
    } else {
        line[off++] = '\n';
        ssize_t w = write(STDERR_FILENO, line, off);
        (void)w;
    }
    errno = saved;
}

void log_msg(enum log_level lvl, const char *svc, unsigned long conn, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(lvl, svc, conn, fmt, ap);
    va_end(ap);
}

void log_ssl_errors(enum log_level lvl, const char *svc, unsigned long conn, const char *what)
{
    unsigned long e;
    char buf[256];
    bool any = false;

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        log_msg(lvl, svc, conn, "%s: %s", what, buf);
        any = true;
    }
    if (!any && lvl != LOG_LVL_DEBUG) {
        log_msg(lvl, svc, conn, "%s", what);
    }
}
