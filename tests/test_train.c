// End-to-end tests of bin/train ($DIFFOOD_BIN) on tiny stores made in the test: the denoiser's
// loss falls, SIGKILL/SIGTERM then resume ends bit-identical to an uninterrupted run, the
// up-to-date rerun, refusal of a changed config without --force, and bad inputs (exit 2).
// The classifier's cases are in test_train_cls.c.
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernels/ops.h"
#include "tests/test_train_util.h"

#define DIFF_ARGS(data, out)                                                                            \
    "--model", "diffusion", "--data", data, "--out", out, "--config", "tiny", "--threads", "1", "--set", \
        "unet.image_size=16", "--set", "train_diffusion.batch=6", "--set", "train_diffusion.log_every=1", "--quiet"

static double trt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void diff_setup(void) {
    trt_setup();
    trt_make_store(trt_path("data"), 40, 1, 16, 1);
}

START_TEST(test_diffusion_loss_falls) {
    const char *out = trt_path("ck");
    const char *args[] = {DIFF_ARGS(trt_path("data"), out), "--set", "train_diffusion.steps=60", "--set",
                          "train_diffusion.lr=2e-3", "--set", "train_diffusion.checkpoint_every=30", NULL};
    ck_assert_int_eq(trt_run(args), 0);
    ck_assert_int_eq(trt_meta_long(out, "step"), 60);
    int n = 0;
    float *rows = trt_read_rows(out, "log", 5, &n);
    ck_assert_int_eq(n, 60);
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) {
        first += rows[i * 5 + 1] / 10;
        last += rows[(n - 10 + i) * 5 + 1] / 10;
    }
    ck_assert_msg(last < 0.8 * first, "loss did not fall: first 10 steps %.2f, last 10 %.2f", first, last);
    ck_assert_float_eq(rows[(n - 1) * 5], 60.0f);
    free(rows);
    // validation loss per bucket at the checkpoints, the picture as a table and a PNG
    rows = trt_read_rows(out, "val_loss", 10, &n);
    ck_assert_int_eq(n, 2);
    free(rows);
    ck_assert_int_eq(access(trt_path("ck.denoise.png"), R_OK), 0); // beside the store
    ck_assert_int_eq(access(trt_path("ck/denoise.png"), F_OK), -1);  // never inside it
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":true"));
}
END_TEST

// Uninterrupted reference run into `ref`.
static void diff_reference(const char *ref, const char *steps) {
    const char *args[] = {DIFF_ARGS(trt_path("data"), ref), "--set", steps, "--set", "train_diffusion.checkpoint_every=4",
                          NULL};
    ck_assert_int_eq(trt_run(args), 0);
}

static void assert_same_run(const char *a, const char *b) {
    ck_assert_msg(trt_tables_equal(a, b, "param"), "param differs after resume");
    ck_assert_msg(trt_tables_equal(a, b, "ema"), "ema differs after resume");
    ck_assert_msg(trt_tables_equal(a, b, "optim"), "optim differs after resume");
    ck_assert_msg(trt_tables_equal(a, b, "grid"), "grid differs after resume");
}

// Waits until meta step of `out` reaches at least `min` (or the child ends).
static int wait_step(const char *out, long min, pid_t pid) {
    double t0 = trt_now();
    while (trt_now() - t0 < 60) {
        if (trt_meta_long(out, "step") >= min) return 1;
        if (waitpid(pid, NULL, WNOHANG) == pid) return 0;
        usleep(20000);
    }
    return 0;
}

START_TEST(test_diffusion_sigkill_resume_bitwise) {
    const char *ref = trt_path("ref"), *out = trt_path("ck");
    diff_reference(ref, "train_diffusion.steps=40");
    const char *args[] = {DIFF_ARGS(trt_path("data"), out), "--set", "train_diffusion.steps=40", "--set",
                          "train_diffusion.checkpoint_every=4", NULL};
    pid_t pid = trt_start(args);
    ck_assert_msg(wait_step(out, 8, pid), "no checkpoint appeared: %s", trt_stderr());
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    long at = trt_meta_long(out, "step");
    ck_assert_int_ge(at, 8);
    ck_assert_int_lt(at, 40);
    ck_assert_int_eq(trt_run(args), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":true"));
    assert_same_run(ref, out);
    // the log's loss, lr and gradient norm columns too (column 4, images/s, is a timing)
    int na = 0, nb = 0;
    float *ra = trt_read_rows(ref, "log", 5, &na), *rb = trt_read_rows(out, "log", 5, &nb);
    ck_assert_int_eq(na, 40);
    ck_assert_int_eq(nb, 40);
    for (int i = 0; i < na; i++) ck_assert_msg(memcmp(ra + i * 5, rb + i * 5, 4 * sizeof(float)) == 0, "log row %d differs", i);
    free(ra);
    free(rb);
}
END_TEST

START_TEST(test_diffusion_sigterm_exit3_resume) {
    const char *ref = trt_path("ref"), *out = trt_path("ck");
    diff_reference(ref, "train_diffusion.steps=40");
    const char *args[] = {DIFF_ARGS(trt_path("data"), out), "--set", "train_diffusion.steps=40", "--set",
                          "train_diffusion.checkpoint_every=4", NULL};
    pid_t pid = trt_start(args);
    ck_assert_msg(wait_step(out, 4, pid), "no checkpoint appeared: %s", trt_stderr());
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 3);
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "interrupted"));
    long at = trt_meta_long(out, "step");
    ck_assert_int_ge(at, 4);
    ck_assert_int_lt(at, 40);
    ck_assert_int_eq(trt_run(args), 0);
    assert_same_run(ref, out);
}
END_TEST

START_TEST(test_diffusion_budget_up_to_date_conflict) {
    const char *ref = trt_path("ref"), *out = trt_path("ck");
    diff_reference(ref, "train_diffusion.steps=12");
    // a tiny time budget stops at a checkpoint, incomplete; the rerun continues to the same bits
    const char *b1[] = {DIFF_ARGS(trt_path("data"), out), "--set", "train_diffusion.steps=12", "--set",
                        "train_diffusion.minutes=0.00001", NULL};
    ck_assert_int_eq(trt_run(b1), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":false"));
    ck_assert_int_lt(trt_meta_long(out, "step"), 12);
    const char *again[] = {DIFF_ARGS(trt_path("data"), out), "--set", "train_diffusion.steps=12", NULL};
    ck_assert_int_eq(trt_run(again), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":true"));
    assert_same_run(ref, out);
    // finished: up to date, fast, nothing changes
    double t0 = trt_now();
    ck_assert_int_eq(trt_run(again), 0);
    ck_assert_msg(trt_now() - t0 < 5, "the up-to-date rerun took %.1f s", trt_now() - t0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "up to date"));
    // another learning rate: refused without --force (store unchanged), replaced with it
    const char *other[] = {DIFF_ARGS(trt_path("data"), out), "--set", "train_diffusion.steps=12", "--set",
                           "train_diffusion.lr=1e-3", NULL};
    ck_assert_int_eq(trt_run(other), 2);
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "--force"));
    ck_assert_msg(trt_tables_equal(ref, out, "param"), "a refused run changed the store");
    // other training data: refused too
    trt_make_store(trt_path("data2"), 30, 1, 16, 1);
    const char *data2[] = {DIFF_ARGS(trt_path("data2"), out), "--set", "train_diffusion.steps=12", NULL};
    ck_assert_int_eq(trt_run(data2), 2);
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "--force"));
    const char *forced[] = {DIFF_ARGS(trt_path("data"), out), "--set", "train_diffusion.steps=12", "--set",
                            "train_diffusion.lr=1e-3", "--force", NULL};
    ck_assert_int_eq(trt_run(forced), 0);
    ck_assert_msg(!trt_tables_equal(ref, out, "param"), "--force did not retrain");
    // seeds one double cannot tell apart (2^53, 2^53 + 1) are two runs: refused, not "up to date"
    const char *big[] = {DIFF_ARGS(trt_path("data"), trt_path("big")), "--set", "train_diffusion.steps=1", "--set",
                         "train_diffusion.seed=9007199254740992", NULL};
    ck_assert_int_eq(trt_run(big), 0);
    const char *big1[] = {DIFF_ARGS(trt_path("data"), trt_path("big")), "--set", "train_diffusion.steps=1", "--set",
                          "train_diffusion.seed=9007199254740993", NULL};
    ck_assert_msg(trt_run(big1) == 2, "seed 2^53 + 1 was taken for seed 2^53: %s", trt_stdout());
    ck_assert_ptr_nonnull(strstr(trt_stderr(), "9007199254740993"));
    // a forced fresh start removes the replaced run's picture (beside the store): while the new
    // run is incomplete there is none
    ck_assert_int_eq(access(trt_path("ck.denoise.png"), R_OK), 0);
    const char *forced2[] = {DIFF_ARGS(trt_path("data"), out), "--set", "train_diffusion.steps=12", "--set",
                             "train_diffusion.lr=1e-4", "--set", "train_diffusion.minutes=0.00001", "--force", NULL};
    ck_assert_int_eq(trt_run(forced2), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":false"));
    ck_assert_int_eq(access(trt_path("ck.denoise.png"), F_OK), -1);
}
END_TEST

// Runs train expecting exit status `want` and `needle` in stderr.
static void expect_fail(const char *const *args, int want, const char *needle) {
    int rc = trt_run(args);
    const char *err = trt_stderr();
    ck_assert_msg(rc == want, "exit %d (want %d): %s", rc, want, err);
    ck_assert_msg(strstr(err, needle) != NULL, "stderr lacks '%s': %s", needle, err);
}

START_TEST(test_train_bad_inputs) {
    const char *data = trt_path("data"), *out = trt_path("ck");
    const char *neg_lr[] = {DIFF_ARGS(data, out), "--set", "train_diffusion.lr=-1", NULL};
    expect_fail(neg_lr, 2, "train_diffusion.lr");
    const char *neg_lr_c[] = {"--model", "classifier", "--data", data, "--out", out, "--config", "tiny", "--set",
                              "train_classifier.lr=-0.1", NULL};
    expect_fail(neg_lr_c, 2, "train_classifier.lr");
    const char *model[] = {"--model", "gan", "--data", data, "--out", out, NULL};
    expect_fail(model, 2, "--model");
    const char *missing[] = {DIFF_ARGS(trt_path("nothere"), out), NULL};
    expect_fail(missing, 2, "nothere");
    trt_make_store(trt_path("nolabels"), 12, 1, 16, 0);
    const char *nolab[] = {DIFF_ARGS(trt_path("nolabels"), out), NULL};
    expect_fail(nolab, 2, "label");
    const char *unknown[] = {DIFF_ARGS(data, out), "--frobnicate", NULL};
    expect_fail(unknown, 2, "--frobnicate");
    const char *badkey[] = {DIFF_ARGS(data, out), "--set", "train_diffusion.nosuchkey=1", NULL};
    expect_fail(badkey, 2, "nosuchkey");
    const char *shape[] = {"--model", "diffusion", "--data", data, "--out", out, "--config", "tiny", NULL};
    expect_fail(shape, 2, "image_size");
    ck_assert_int_ne(access(out, F_OK), 0); // nothing was created by the failures
    // --device cuda without a usable GPU: a device error, exit 1
    ops_ctx *ctx = NULL;
    if (ops_ctx_create(&ctx, OPS_DEV_CUDA, NULL) == 0) {
        ops_ctx_destroy(ctx);
    } else {
        const char *cuda[] = {DIFF_ARGS(data, out), "--device", "cuda", NULL};
        expect_fail(cuda, 1, "error");
    }
}
END_TEST

Suite *suite_train(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("diffusion");
    tcase_add_checked_fixture(tc, diff_setup, trt_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_diffusion_loss_falls);
    tcase_add_test(tc, test_diffusion_sigkill_resume_bitwise);
    tcase_add_test(tc, test_diffusion_sigterm_exit3_resume);
    tcase_add_test(tc, test_diffusion_budget_up_to_date_conflict);
    tcase_add_test(tc, test_train_bad_inputs);
    suite_add_tcase(s, tc);
    return s;
}
