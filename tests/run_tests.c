// The one Check runner: every `Suite *suite_NAME(void)` in tests/test_*.c, listed in the
// generated suites.h. Select suites with CK_RUN_SUITE=name or tests with CK_RUN_CASE=name
// (Check's own variables), or several suites with DIFFOOD_SUITES="name name ..." (the NAME of
// suite_NAME; make test-san uses it). Ends with Check's summary line; exit 0 only when all passed.
#include <check.h>
#include <stdlib.h>
#include <string.h>

#define X(fn) Suite *fn(void);
#include "suites.h"
#undef X

// Whether suite_NAME is selected by DIFFOOD_SUITES (all when unset or empty).
static int wanted(const char *fn) {
    const char *list = getenv("DIFFOOD_SUITES"), *name = fn + strlen("suite_");
    if (!list || !*list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == ',') && (p[n] == '\0' || p[n] == ' ' || p[n] == ','))
            return 1;
    return 0;
}

int main(void) {
    SRunner *sr = NULL;
#define X(fn)                                                                                      \
    if (wanted(#fn)) {                                                                             \
        if (!sr) sr = srunner_create(fn());                                                        \
        else srunner_add_suite(sr, fn());                                                          \
    }
#include "suites.h"
#undef X
    if (!sr) return 1;
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
