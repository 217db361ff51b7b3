/* SPDX-License-Identifier: MIT */
/* Unit tests for camera detection's pure parts: the serial-number hint. */
#include <check.h>
#include <stdlib.h>

#include "src/detect.h"
#include "unit.h"

START_TEST(test_rtsp_models)
{
    /* X1C, X1, X1E, H2D and the other RTSPS prefixes (DESIGN.md). */
    static const char *const serials[] = { "00M09A350100001", "00W00A000000001",
                                           "03W00A000000001", "09400A000000001",
                                           "23900A000000001", "09300A000000001",
                                           "22E00A000000001" };

    for (size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
        ck_assert_int_eq(detect_camera_hint(serials[i]), PP_CAMERA_RTSP);
    }
}
END_TEST

START_TEST(test_chamber_models_and_unknown)
{
    /* P1P, P1S, A1 mini, A1; anything unknown or short falls back to chamber. */
    static const char *const serials[] = { "01S00A000000001", "01P00A391800001",
                                           "03000A000000001", "03900A000000001",
                                           "ZZZ", "00", "" };

    for (size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
        ck_assert_int_eq(detect_camera_hint(serials[i]), PP_CAMERA_CHAMBER);
    }
}
END_TEST

START_TEST(test_rtsp_url_note_is_safe)
{
    /* Logged once per "disable" period; NULL and real URLs are quiet. */
    detect_note_rtsp_url(NULL);
    detect_note_rtsp_url("disable");
    detect_note_rtsp_url("disable");
    detect_note_rtsp_url("rtsps://192.0.2.1/streaming/live/1");
    detect_note_rtsp_url("disable");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("detect");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_rtsp_models);
    tcase_add_test(tc, test_chamber_models_and_unknown);
    tcase_add_test(tc, test_rtsp_url_note_is_safe);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
