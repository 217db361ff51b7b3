/* SPDX-License-Identifier: MIT */
/* Unit tests for failed-login throttling (per address, growing, capped, forgotten). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/limits.h"
#include "src/service.h"
#include "unit.h"

START_TEST(test_delay_grows_per_failure_and_is_capped)
{
    const char *host = "192.0.2.1";

    ck_assert_int_eq(authfail_delay_ms(host), 0);
    ck_assert_int_eq(authfail_note(host), PP_AUTHFAIL_STEP_MS);
    ck_assert_int_eq(authfail_note(host), 2 * PP_AUTHFAIL_STEP_MS);
    ck_assert_int_eq(authfail_delay_ms(host), 2 * PP_AUTHFAIL_STEP_MS);
    for (int i = 0; i < 1000; i++) {
        (void)authfail_note(host);
    }
    ck_assert_int_eq(authfail_delay_ms(host), PP_AUTHFAIL_MAX_DELAY_MS);
    authfail_forget(host);
    ck_assert_int_eq(authfail_delay_ms(host), 0);
}
END_TEST

START_TEST(test_lockout_follows_the_last_failure)
{
    const char *host = "192.0.2.2";

    ck_assert_int_eq(authfail_lockout_left_ms(host), 0);
    (void)authfail_note(host);
    ck_assert_int_gt(authfail_lockout_left_ms(host), 0);
    ck_assert_int_le(authfail_lockout_left_ms(host), PP_AUTHFAIL_STEP_MS);
    authfail_forget(host);
    ck_assert_int_eq(authfail_lockout_left_ms(host), 0);
}
END_TEST

START_TEST(test_addresses_are_independent)
{
    (void)authfail_note("192.0.2.3");
    ck_assert_int_eq(authfail_delay_ms("192.0.2.4"), 0);
    ck_assert_int_eq(authfail_lockout_left_ms("192.0.2.4"), 0);
    authfail_forget("192.0.2.3");
}
END_TEST

START_TEST(test_many_addresses_recycle_slots)
{
    char host[32];

    for (int i = 0; i < 4 * PP_AUTHFAIL_SLOTS; i++) {
        snprintf(host, sizeof(host), "198.51.100.%d", i % 250);
        (void)authfail_note(host);
    }
    /* Bounded table: still answers, and a fresh address starts clean. */
    ck_assert_int_eq(authfail_delay_ms("203.0.113.9"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("authfail");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_delay_grows_per_failure_and_is_capped);
    tcase_add_test(tc, test_lockout_follows_the_last_failure);
    tcase_add_test(tc, test_addresses_are_independent);
    tcase_add_test(tc, test_many_addresses_recycle_slots);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
