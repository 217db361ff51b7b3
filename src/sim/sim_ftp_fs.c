/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers of the simulated FTPS server: virtual paths normalised and confined
 * to the FTP root (a client never names anything above it), and the LIST / MLSD
 * line formats. No I/O, so they are unit tested on their own.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "sim_ftp.h"

/* `ls -l` shows the year instead of the time for files older than about 6 months. */
#define LIST_RECENT_S  (182 * 24 * 3600)
#define TIME_FMT_MAX   16

static const char *const month_names[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Append one component to out (len bytes used); handles "." and "..". */
static int push_component(char *out, size_t cap, size_t *len, const char *comp, size_t n)
{
    if (n == 0 || (n == 1 && comp[0] == '.')) {
        return 0;
    }
    if (n == 2 && comp[0] == '.' && comp[1] == '.') {
        char *slash;

        if (*len <= 1) {
            return -1; /* above the root: refused, not clamped */
        }
        slash = strrchr(out, '/');
        *len = slash == out ? 1 : (size_t)(slash - out);
        out[*len] = '\0';
        return 0;
    }
    if (*len + (*len > 1 ? 1 : 0) + n + 1 > cap) {
        return -1;
    }
    if (*len > 1) {
        out[(*len)++] = '/';
    }
    memcpy(out + *len, comp, n);
    *len += n;
    out[*len] = '\0';
    return 0;
}

static int push_path(char *out, size_t cap, size_t *len, const char *p)
{
    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);

        if (push_component(out, cap, len, p, n) != 0) {
            return -1;
        }
        p += n;
        while (*p == '/') {
            p++;
        }
    }
    return 0;
}

int sim_ftp_vpath(const char *cwd, const char *arg, char *out, size_t cap)
{
    size_t len = 1;

    if (cap < 2) {
        return -1;
    }
    out[0] = '/';
    out[1] = '\0';
    if (arg[0] != '/' && push_path(out, cap, &len, cwd) != 0) {
        return -1;
    }
    return push_path(out, cap, &len, arg);
}

int sim_ftp_real(const char *root, const char *vpath, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s", root, strcmp(vpath, "/") == 0 ? "" : vpath);

    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

bool sim_ftp_inside(const char *root, const char *resolved)
{
    size_t n = strlen(root);

    if (strcmp(root, "/") == 0) {
        return resolved[0] == '/';
    }
    return strncmp(root, resolved, n) == 0 && (resolved[n] == '\0' || resolved[n] == '/');
}

const char *sim_ftp_basename(const char *vpath)
{
    const char *slash = strrchr(vpath, '/');

    return slash ? slash + 1 : vpath;
}

bool sim_ftp_name_ok(const char *name)
{
    return strpbrk(name, "\r\n") == NULL;
}

void sim_ftp_format_time(char *buf, size_t cap, time_t t)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, cap, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void format_mode(char out[11], const struct stat *st)
{
    static const char rwx[] = "rwxrwxrwx";

    out[0] = S_ISDIR(st->st_mode) ? 'd' : '-';
    for (int i = 0; i < 9; i++) {
        out[1 + i] = (st->st_mode & (1u << (8 - i))) ? rwx[i] : '-';
    }
    out[10] = '\0';
}

int sim_ftp_format_list(char *buf, size_t cap, const char *name, const struct stat *st,
                        time_t now)
{
    char mode[11], when[TIME_FMT_MAX];
    struct tm tm;
    time_t t = st->st_mtime;
    int n;

    format_mode(mode, st);
    gmtime_r(&t, &tm);
    if (t > now - LIST_RECENT_S && t <= now + LIST_RECENT_S) {
        snprintf(when, sizeof(when), "%s %2d %02d:%02d", month_names[tm.tm_mon], tm.tm_mday,
                 tm.tm_hour, tm.tm_min);
    } else {
        snprintf(when, sizeof(when), "%s %2d  %04d", month_names[tm.tm_mon], tm.tm_mday,
                 tm.tm_year + 1900);
    }
    n = snprintf(buf, cap, "%s 1 root root %12llu %s %s\r\n", mode,
                 (unsigned long long)st->st_size, when, name);
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

int sim_ftp_format_mlsx(char *buf, size_t cap, const char *name, const struct stat *st)
{
    char when[TIME_FMT_MAX];
    int n;

    sim_ftp_format_time(when, sizeof(when), st->st_mtime);
    if (S_ISDIR(st->st_mode)) {
        n = snprintf(buf, cap, "type=dir;modify=%s;perm=flcdmpe; %s\r\n", when, name);
    } else {
        n = snprintf(buf, cap, "type=file;size=%llu;modify=%s;perm=adfrw; %s\r\n",
                     (unsigned long long)st->st_size, when, name);
    }
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}
