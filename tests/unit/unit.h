/* SPDX-License-Identifier: MIT */
/* What every Check test program's main() does: run the suite, exit 0 when all passed. */
#ifndef PP_TEST_UNIT_H
#define PP_TEST_UNIT_H

#include <check.h>
#include <stdlib.h>

static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
