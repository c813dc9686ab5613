// End-to-end tests of bin/train --model classifier ($DIFFOOD_BIN) on tiny stores made in the
// test: the loss falls and the best epoch is kept, --eval reports the accuracy, SIGTERM then
// resume ends bit-identical to an uninterrupted run, and a --val store is used when given.
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tests/test_train_util.h"

#define CLS_ARGS(data, out)                                                                              \
    "--model", "classifier", "--data", data, "--out", out, "--config", "tiny", "--threads", "1", "--set", \
        "train_classifier.batch=8", "--set", "train_classifier.log_every=1", "--set", "train_classifier.lr=0.05", "--quiet"

static void cls_setup(void) {
    trt_setup();
    trt_make_store(trt_path("data"), 80, 1, 16, 1);
}

START_TEST(test_classifier_learns_and_evaluates) {
    const char *out = trt_path("ck");
    const char *args[] = {CLS_ARGS(trt_path("data"), out), "--set", "train_classifier.epochs=12", "--set", "train_classifier.crop_pad=0",
                          "--set", "train_classifier.flip=false", NULL};
    ck_assert_int_eq(trt_run(args), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":true"));
    int n = 0;
    float *rows = trt_read_rows(out, "log", 5, &n);
    ck_assert_int_eq(n, 12 * 9); // 72 training images (val_fraction 0.1 of 80), batch 8: 9 steps an epoch
    double first = 0, last = 0;
    for (int i = 0; i < 9; i++) {
        first += rows[i * 5 + 1] / 9;
        last += rows[(n - 9 + i) * 5 + 1] / 9;
    }
    ck_assert_msg(last < 0.75 * first, "loss did not fall: first epoch %.3f, last %.3f", first, last);
    // lr follows the cosine from 0.05 down towards lr_min
    ck_assert_float_eq_tol(rows[2], 0.05f, 1e-6f);
    ck_assert(rows[(n - 1) * 5 + 2] < 0.001f);
    free(rows);
    rows = trt_read_rows(out, "val_acc", 3, &n);
    ck_assert_int_eq(n, 12);
    float best = 0;
    for (int i = 0; i < n; i++) best = rows[i * 3 + 1] > best ? rows[i * 3 + 1] : best;
    free(rows);
    ck_assert_int_ge(trt_meta_long(out, "best_epoch"), 0);
    // --eval on the training store: the best checkpoint classifies its (separable) images
    const char *ev[] = {"--model", "classifier", "--out", out, "--eval", trt_path("data"), "--threads", "1", NULL};
    ck_assert_int_eq(trt_run(ev), 0);
    cJSON *j = cJSON_Parse(trt_stdout());
    ck_assert_ptr_nonnull(j);
    double acc = cJSON_GetObjectItem(j, "accuracy")->valuedouble;
    ck_assert_int_eq(cJSON_GetObjectItem(j, "images")->valueint, 80);
    cJSON_Delete(j);
    fprintf(stderr, "tiny classifier: --eval accuracy %.3f, best validation %.3f\n", acc, (double)best);
    ck_assert_msg(acc > 0.8, "accuracy %.3f (best validation %.3f)", acc, (double)best);
}
END_TEST

START_TEST(test_classifier_sigterm_resume_bitwise) {
    const char *ref = trt_path("ref"), *out = trt_path("ck");
    const char *r[] = {CLS_ARGS(trt_path("data"), ref), "--set", "train_classifier.epochs=6", NULL};
    ck_assert_int_eq(trt_run(r), 0);
    const char *args[] = {CLS_ARGS(trt_path("data"), out), "--set", "train_classifier.epochs=6", NULL};
    pid_t pid = trt_start(args);
    for (int i = 0; i < 3000 && trt_meta_long(out, "step") < 9; i++) usleep(10000);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    long at = trt_meta_long(out, "step");
    ck_assert_msg(WIFEXITED(st) && (WEXITSTATUS(st) == 3 || (WEXITSTATUS(st) == 0 && at == 54)),
                  "exit %d: %s", WEXITSTATUS(st), trt_stderr());
    ck_assert_int_ge(at, 9);
    ck_assert_int_eq(trt_run(args), 0);
    const char *tables[] = {"param", "buffer", "optim", "best_param", "best_buffer", "val_acc"};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(trt_tables_equal(ref, out, tables[i]), "%s differs after resume", tables[i]);
}
END_TEST

START_TEST(test_classifier_val_store) {
    const char *out = trt_path("ck");
    trt_make_store(trt_path("val"), 20, 1, 16, 1);
    const char *args[] = {CLS_ARGS(trt_path("data"), out), "--val", trt_path("val"), "--set",
                          "train_classifier.epochs=1", NULL};
    ck_assert_int_eq(trt_run(args), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":true"));
    int n = 0;
    float *rows = trt_read_rows(out, "log", 5, &n);
    ck_assert_int_eq(n, 10); // all 80 training images, batch 8
    free(rows);
    // a val store of another shape is refused
    trt_make_store(trt_path("val8"), 20, 1, 8, 1);
    const char *bad[] = {CLS_ARGS(trt_path("data"), trt_path("ck2")), "--val", trt_path("val8"), NULL};
    ck_assert_int_eq(trt_run(bad), 2);
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "--val"));
}
END_TEST

Suite *suite_train_cls(void) {
    Suite *s = suite_create("train_cls");
    TCase *tc = tcase_create("classifier");
    tcase_add_checked_fixture(tc, cls_setup, trt_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_classifier_learns_and_evaluates);
    tcase_add_test(tc, test_classifier_sigterm_resume_bitwise);
    tcase_add_test(tc, test_classifier_val_store);
    suite_add_tcase(s, tc);
    return s;
}
