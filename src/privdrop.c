/* SPDX-License-Identifier: MIT */
/*
 * Owns the switch from root to the service user. Every step is checked, and the
 * result is verified (we cannot get root back) before the daemon goes on.
 */
#include "autoconf.h"

#include "privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_LIBCAP
#include <sys/capability.h>
#endif

#include "log.h"

/* The state dir holds only our flat files: give the dir and each file to uid. */
static int chown_state(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        snprintf(err, errlen, "cannot open state directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (fchown(dirfd(d), uid, gid) != 0) {
        snprintf(err, errlen, "cannot give %s to the service user: %s", dir, strerror(errno));
        rc = -1;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat st;

        if (e->d_name[0] == '.' ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        if (fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
            snprintf(err, errlen, "cannot give %s/%s to the service user: %s", dir, e->d_name,
                     strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

#ifdef HAVE_LIBCAP
static int keep_bind_cap(char *err, size_t errlen)
{
    cap_value_t keep[] = { CAP_NET_BIND_SERVICE };
    cap_t caps = cap_init();
    int rc = -1;

    if (caps != NULL && cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET) == 0 &&
        cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET) == 0 && cap_set_proc(caps) == 0) {
        rc = 0;
    } else {
        snprintf(err, errlen, "cannot keep CAP_NET_BIND_SERVICE: %s", strerror(errno));
    }
    cap_free(caps);
    return rc;
}
#endif

int privdrop(const char *user, const char *state_dir, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    uid_t uid;
    gid_t gid;

    if (pw == NULL) {
        snprintf(err, errlen, "option --user: no user named '%s'", user);
        return -1;
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    if (geteuid() != 0) {
        if (geteuid() == uid) {
            return 0; /* already that user */
        }
        snprintf(err, errlen, "option --user %s needs the daemon to start as root", user);
        return -1;
    }
    if (chown_state(state_dir, uid, gid, err, errlen) != 0) {
        return -1;
    }
    /* Keep the permitted set across setuid so one capability can be re-raised. */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(1, &gid) != 0 || setgid(gid) != 0 ||
        setuid(uid) != 0) {
        snprintf(err, errlen, "cannot switch to user %s: %s", user, strerror(errno));
        return -1;
    }
    (void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid ||
        (uid != 0 && setuid(0) == 0)) {
        snprintf(err, errlen, "switching to user %s did not stick", user);
        return -1;
    }
#ifdef HAVE_LIBCAP
    if (keep_bind_cap(err, errlen) != 0) {
        return -1;
    }
    log_info(NULL, 0, "running as user %s (uid %u, gid %u), keeping only CAP_NET_BIND_SERVICE",
             user, (unsigned)uid, (unsigned)gid);
#else
    log_info(NULL, 0, "running as user %s (uid %u, gid %u); built without libcap, so ports "
             "below 1024 cannot be bound from now on", user, (unsigned)uid, (unsigned)gid);
#endif
    return 0;
}
