/* SPDX-License-Identifier: MIT */
/* Unit tests for the bounded buffer. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/buf.h"
#include "unit.h"

START_TEST(test_append_consume)
{
    struct buf b;

    ck_assert_int_eq(buf_init(&b, 4, 64), 0);
    ck_assert_int_eq(buf_append(&b, "hello", 5), 0);
    ck_assert_int_eq(buf_append(&b, " world", 6), 0);
    ck_assert_uint_eq(b.len, 11);
    ck_assert_mem_eq(b.data, "hello world", 11);
    buf_consume(&b, 6);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_mem_eq(b.data, "world", 5);
    buf_consume(&b, 100);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
}
END_TEST

START_TEST(test_limit_enforced)
{
    struct buf b;
    char big[100];

    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(buf_init(&b, 8, 64), 0);
    ck_assert_int_eq(buf_append(&b, big, 64), 0);
    ck_assert_uint_eq(b.len, 64);
    errno = 0;
    ck_assert_int_eq(buf_append(&b, "y", 1), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    ck_assert_uint_eq(b.len, 64);
    ck_assert_uint_le(b.cap, 64);
    buf_consume(&b, 1);
    ck_assert_int_eq(buf_append(&b, "y", 1), 0);
    ck_assert_int_eq(b.data[63], 'y');
    buf_free(&b);
}
END_TEST

START_TEST(test_reserve_and_tail)
{
    struct buf b;

    ck_assert_int_eq(buf_init(&b, 0, 1000), 0);
    ck_assert_int_eq(buf_reserve(&b, 300), 0);
    ck_assert_uint_ge(buf_room(&b), 300);
    memcpy(buf_tail(&b), "abc", 3);
    b.len += 3;
    ck_assert_mem_eq(b.data, "abc", 3);
    ck_assert_int_eq(buf_reserve(&b, 998), -1);
    ck_assert_int_eq(buf_reserve(&b, 997), 0);
    ck_assert_uint_eq(b.cap, 1000);
    buf_clear(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(buf_append(&b, "", 0), 0);
    buf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_initial_clamped)
{
    struct buf b;

    ck_assert_int_eq(buf_init(&b, 4096, 16), 0);
    ck_assert_uint_eq(b.cap, 16);
    buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_append_consume);
    tcase_add_test(tc, test_limit_enforced);
    tcase_add_test(tc, test_reserve_and_tail);
    tcase_add_test(tc, test_initial_clamped);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
