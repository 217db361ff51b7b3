/* SPDX-License-Identifier: MIT */
/*
 * Logging: timestamped lines on stderr (or syslog) with level, service and a
 * per-connection id. Registered secrets are masked in every line as a last line of
 * defence; callers must still never pass them.
 */
#ifndef PP_LOG_H
#define PP_LOG_H

#include <stdbool.h>
#include <stdarg.h>

enum log_level {
    LOG_LVL_ERROR = 0,
    LOG_LVL_WARN,
    LOG_LVL_INFO,
    LOG_LVL_DEBUG,
};

void log_init(const char *ident, bool use_syslog, bool verbose);
bool log_debug_enabled(void);
/* Mask this string wherever it appears in a log line (the access code). */
void log_add_secret(const char *secret);
void log_clear_secrets(void);

/* svc may be NULL ("main"); conn 0 means "not about one connection". */
void log_msg(enum log_level lvl, const char *svc, unsigned long conn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void log_vmsg(enum log_level lvl, const char *svc, unsigned long conn, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#define log_error(svc, conn, ...) log_msg(LOG_LVL_ERROR, (svc), (conn), __VA_ARGS__)
#define log_warn(svc, conn, ...)  log_msg(LOG_LVL_WARN, (svc), (conn), __VA_ARGS__)
#define log_info(svc, conn, ...)  log_msg(LOG_LVL_INFO, (svc), (conn), __VA_ARGS__)
#define log_debug(svc, conn, ...) \
    do { \
        if (log_debug_enabled()) { \
            log_msg(LOG_LVL_DEBUG, (svc), (conn), __VA_ARGS__); \
        } \
    } while (0)

/* Log the current OpenSSL error queue (and clear it) at the given level. */
void log_ssl_errors(enum log_level lvl, const char *svc, unsigned long conn, const char *what);

#endif
