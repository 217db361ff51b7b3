/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the simulated FTPS server's pure helpers: virtual paths confined to
 * the root, the containment check on resolved paths, and the LIST/MLSD line formats.
 */
#include "src/sim/sim_ftp.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static const char *vp(const char *cwd, const char *arg)
{
    static char out[PP_SIM_FTP_VPATH_MAX];

    if (sim_ftp_vpath(cwd, arg, out, sizeof(out)) != 0) {
        return NULL;
    }
    return out;
}

START_TEST(vpath_relative_and_absolute)
{
    ck_assert_str_eq(vp("/", ""), "/");
    ck_assert_str_eq(vp("/", "model"), "/model");
    ck_assert_str_eq(vp("/model", "a.3mf"), "/model/a.3mf");
    ck_assert_str_eq(vp("/model", "/cache/x"), "/cache/x");
    ck_assert_str_eq(vp("/model", ""), "/model");
    ck_assert_str_eq(vp("/", "//cache///x//"), "/cache/x");
    ck_assert_str_eq(vp("/a/b", "./c/./d"), "/a/b/c/d");
    ck_assert_str_eq(vp("/", "name with spaces.gcode"), "/name with spaces.gcode");
}
END_TEST

START_TEST(vpath_dotdot_inside)
{
    ck_assert_str_eq(vp("/a/b", ".."), "/a");
    ck_assert_str_eq(vp("/a/b", "../.."), "/");
    ck_assert_str_eq(vp("/a", "../cache"), "/cache");
    ck_assert_str_eq(vp("/", "/model/../cache"), "/cache");
    ck_assert_str_eq(vp("/", "..."), "/...");
    ck_assert_str_eq(vp("/", "..a"), "/..a");
}
END_TEST

START_TEST(vpath_escapes_refused)
{
    ck_assert_ptr_null(vp("/", ".."));
    ck_assert_ptr_null(vp("/", "/.."));
    ck_assert_ptr_null(vp("/a", "../.."));
    ck_assert_ptr_null(vp("/", "model/../../etc/passwd"));
    ck_assert_ptr_null(vp("/a/b", "/../etc"));
}
END_TEST

START_TEST(vpath_bounded)
{
    char out[8];
    char *big = malloc(PP_SIM_FTP_VPATH_MAX + 10);

    ck_assert_int_eq(sim_ftp_vpath("/", "abc", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/abc");
    ck_assert_int_eq(sim_ftp_vpath("/", "abcdefg", out, sizeof(out)), -1);
    ck_assert_int_eq(sim_ftp_vpath("/abcd", "efg", out, sizeof(out)), -1);
    memset(big, 'x', PP_SIM_FTP_VPATH_MAX + 9);
    big[PP_SIM_FTP_VPATH_MAX + 9] = '\0';
    ck_assert_ptr_null(vp("/", big));
    free(big);
}
END_TEST

START_TEST(real_and_inside)
{
    char out[64];

    ck_assert_int_eq(sim_ftp_real("/srv/ftp", "/", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/srv/ftp");
    ck_assert_int_eq(sim_ftp_real("/srv/ftp", "/model/a", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "/srv/ftp/model/a");
    ck_assert_int_eq(sim_ftp_real("/srv/ftp", "/model/a", out, 10), -1);
    ck_assert(sim_ftp_inside("/srv/ftp", "/srv/ftp"));
    ck_assert(sim_ftp_inside("/srv/ftp", "/srv/ftp/model"));
    ck_assert(!sim_ftp_inside("/srv/ftp", "/srv/ftp2"));
    ck_assert(!sim_ftp_inside("/srv/ftp", "/srv"));
    ck_assert(!sim_ftp_inside("/srv/ftp", "/etc/passwd"));
    ck_assert(sim_ftp_inside("/", "/anything"));
}
END_TEST

START_TEST(basename_and_names)
{
    ck_assert_str_eq(sim_ftp_basename("/model/a.3mf"), "a.3mf");
    ck_assert_str_eq(sim_ftp_basename("/"), "");
    ck_assert(sim_ftp_name_ok("a b.gcode"));
    ck_assert(!sim_ftp_name_ok("evil\r\n226 done"));
    ck_assert(!sim_ftp_name_ok("x\n"));
}
END_TEST

static struct stat file_stat(off_t size, time_t mtime, bool dir)
{
    struct stat st;

    memset(&st, 0, sizeof(st));
    st.st_mode = (dir ? S_IFDIR | 0755 : S_IFREG | 0644);
    st.st_size = size;
    st.st_mtime = mtime;
    return st;
}

START_TEST(list_lines)
{
    char buf[256];
    time_t now = 1764072000; /* 2025-11-25 12:00:00 UTC */
    struct stat st = file_stat(1234, now - 3600, false);
    int n = sim_ftp_format_list(buf, sizeof(buf), "a.3mf", &st, now);

    ck_assert_int_eq(n, (int)strlen(buf));
    ck_assert_str_eq(buf, "-rw-r--r-- 1 root root         1234 Nov 25 11:00 a.3mf\r\n");
    st = file_stat(4096, now - 400L * 24 * 3600, true);
    sim_ftp_format_list(buf, sizeof(buf), "old", &st, now);
    ck_assert_str_eq(buf, "drwxr-xr-x 1 root root         4096 Oct 21  2024 old\r\n");
    ck_assert_int_eq(sim_ftp_format_list(buf, 20, "a.3mf", &st, now), -1);
}
END_TEST

START_TEST(mlsx_lines)
{
    char buf[256];
    struct stat st = file_stat(99, 1764072000, false);

    ck_assert_int_gt(sim_ftp_format_mlsx(buf, sizeof(buf), "a b", &st), 0);
    ck_assert_str_eq(buf, "type=file;size=99;modify=20251125120000;perm=adfrw; a b\r\n");
    st = file_stat(0, 1764072000, true);
    sim_ftp_format_mlsx(buf, sizeof(buf), "model", &st);
    ck_assert_str_eq(buf, "type=dir;modify=20251125120000;perm=flcdmpe; model\r\n");
    ck_assert_int_eq(sim_ftp_format_mlsx(buf, 10, "model", &st), -1);
}
END_TEST

static Suite *sim_ftp_fs_suite(void)
{
    Suite *s = suite_create("sim_ftp_fs");
    TCase *tp = tcase_create("paths");
    TCase *tl = tcase_create("listings");

    tcase_add_test(tp, vpath_relative_and_absolute);
    tcase_add_test(tp, vpath_dotdot_inside);
    tcase_add_test(tp, vpath_escapes_refused);
    tcase_add_test(tp, vpath_bounded);
    tcase_add_test(tp, real_and_inside);
    tcase_add_test(tp, basename_and_names);
    tcase_add_test(tl, list_lines);
    tcase_add_test(tl, mlsx_lines);
    suite_add_tcase(s, tp);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    return unit_run(sim_ftp_fs_suite());
}
