// The one Check runner: every `Suite *suite_NAME(void)` in tests/test_*.c, listed in the
// generated suites.h. Select suites with CK_RUN_SUITE=name or tests with CK_RUN_CASE=name
// (Check's own variables). Ends with Check's summary line; exit 0 only when all passed.
#include <check.h>
#include <stdlib.h>

#define X(fn) Suite *fn(void);
#include "suites.h"
#undef X

int main(void) {
    SRunner *sr = NULL;
#define X(fn) if (!sr) sr = srunner_create(fn()); else srunner_add_suite(sr, fn());
#include "suites.h"
#undef X
    if (!sr) return 1;
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
