// Replays the fuzz inputs kept under tests/data/fuzz/NAME/ (seeds, and every input a fuzzer
// crashed on, fixed since) through the fuzz targets' own entry points, tests/fuzz/fuzz_NAME.c,
// without libFuzzer: each must return 0 without a crash (run it under `make SAN=1` to see
// memory errors too). The list of targets is generated from the files (build/tests/fuzz_targets.h),
// so a new target needs no registration here.
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#define X(name) int fuzz_##name(const uint8_t *data, size_t size);
#include "fuzz_targets.h"
#undef X

typedef struct {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
} fuzz_target;

static const fuzz_target fuzz_targets[] = {
#define X(name) {#name, fuzz_##name},
#include "fuzz_targets.h"
#undef X
};

// Every file of tests/data/fuzz/<target>/ through the target; returns the number replayed.
static int replay(const fuzz_target *t) {
    char dir[512];
    snprintf(dir, sizeof dir, "tests/data/fuzz/%s", t->name);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no inputs for fuzz target %s: %s (every target keeps at least its seeds)", t->name, dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        uint8_t *data = tu_read_file(path, &len);
        int rc = t->fn(data, len);
        free(data);
        ck_assert_msg(rc == 0, "fuzz target %s: input %s broke an invariant", t->name, path);
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(test_replay) {
    const fuzz_target *t = &fuzz_targets[_i];
    int n = replay(t);
    ck_assert_msg(n > 0, "fuzz target %s: no inputs replayed", t->name);
}
END_TEST

Suite *suite_fuzz_regress(void) {
    Suite *s = suite_create("fuzz_regress");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_replay, 0, (int)(sizeof fuzz_targets / sizeof *fuzz_targets));
    suite_add_tcase(s, tc);
    return s;
}
