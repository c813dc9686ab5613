// Tests of the files a stage keeps beside its store (common/stage.h, stage_side_path and
// stage_side_remove): the path is the store's plus a suffix, outside the store directory, with
// trailing slashes dropped; removal is quiet when the file is absent and names it when it fails.
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/stage.h"
#include "tests/test_util.h"

START_TEST(test_stage_side_path) {
    char *p = NULL;
    ck_assert_int_eq(stage_side_path("runs/x/den.store", ".denoise.png", &p), 0);
    ck_assert_str_eq(p, "runs/x/den.store.denoise.png");
    free(p);
    ck_assert_int_eq(stage_side_path("runs/x/den.store//", ".grid.png", &p), 0); // never inside the store
    ck_assert_str_eq(p, "runs/x/den.store.grid.png");
    free(p);
}
END_TEST

START_TEST(test_stage_side_remove) {
    tu_setup();
    const char *store = tu_path("s.store");
    ck_assert_int_eq(mkdir(store, 0755), 0);
    ck_assert_int_eq(stage_side_remove(store, ".denoise.png"), 0); // absent: nothing to do
    const char *pic = tu_put("s.store.denoise.png", "old picture");
    ck_assert_int_eq(stage_side_remove(store, ".denoise.png"), 0);
    ck_assert_int_eq(access(pic, F_OK), -1);
    ck_assert_int_eq(access(store, F_OK), 0); // the store itself is untouched
    ck_assert_int_eq(mkdir(tu_path("s.store.x"), 0755), 0); // cannot unlink a directory
    ck_assert_int_eq(stage_side_remove(store, ".x"), ERR_IO);
    ck_assert_msg(strstr(err_msg(), "s.store.x") != NULL, "message does not name the file: %s", err_msg());
    tu_teardown();
}
END_TEST

Suite *suite_stage_side(void) {
    Suite *s = suite_create("stage_side");
    TCase *tc = tcase_create("side");
    tcase_add_test(tc, test_stage_side_path);
    tcase_add_test(tc, test_stage_side_remove);
    suite_add_tcase(s, tc);
    return s;
}
