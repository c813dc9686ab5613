// End-to-end tests of bin/train --model classifier ($DIFFOOD_BIN) on tiny stores made in the
// test: the loss falls and the best epoch is kept, --eval reports the accuracy, SIGTERM (exit 3)
// and SIGKILL mid-epoch then resume end bit-identical to an uninterrupted run, and a --val store
// is used when given. The interrupted runs are held mid-run by the test taking the store's write
// lock (the run cannot checkpoint, let alone finish, while the test holds it), so the signal
// certainly lands before the end.
#define _GNU_SOURCE
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <lmdb.h>

#include "common/err.h"
#include "common/stage.h"
#include "common/store.h"
#include "tests/test_train_util.h"
#include "tests/test_util.h"

#define CLS_ARGS_LOUD(data, out)                                                                         \
    "--model", "classifier", "--data", data, "--out", out, "--config", "tiny", "--threads", "1", "--set", \
        "train_classifier.batch=8", "--set", "train_classifier.log_every=1", "--set", "train_classifier.lr=0.05"
#define CLS_ARGS(data, out) CLS_ARGS_LOUD(data, out), "--quiet"
#define CLS_STEPS_PER_EPOCH 9 // 72 training images (val_fraction 0.1 of 80), batch 8

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

// A holder of LMDB's write lock on a store, in a child process (the store's own writer lock,
// STORE/writer.lock, is the run's: a second ts_open for writing is refused). While it holds the
// lock the run can commit nothing: no further checkpoint, no completion.
typedef struct {
    pid_t pid;
    int fd; // write a byte to release
} lmdb_hold;

static lmdb_hold lmdb_hold_take(const char *path) {
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        MDB_env *env = NULL;
        MDB_txn *txn = NULL;
        char b = 1;
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 256) || mdb_env_set_mapsize(env, (size_t)64 << 30) ||
            mdb_env_open(env, path, 0, 0664) || mdb_txn_begin(env, NULL, 0, &txn))
            _exit(1);
        if (write(up[1], &b, 1) != 1 || read(down[0], &b, 1) < 0) _exit(2); // held until released
        mdb_txn_abort(txn);
        mdb_env_close(env);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    char b = 0;
    ck_assert_msg(read(up[0], &b, 1) == 1, "could not take LMDB's write lock on %s", path);
    close(up[0]);
    return (lmdb_hold){pid, down[1]};
}

static void lmdb_hold_release(lmdb_hold h) {
    char b = 1;
    ck_assert_int_eq(write(h.fd, &b, 1), 1);
    close(h.fd);
    int st = 0;
    ck_assert_int_eq(waitpid(h.pid, &st, 0), h.pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// The committed meta `step` of a store (read only: never blocked by the writer), or -1.
static long committed_step(const char *out, int *complete) {
    ts_store *s = NULL;
    char *text = NULL;
    long step = -1;
    if (ts_open(&s, out, TS_RDONLY) == 0 && ts_meta_get(s, "step", &text) == 0) {
        step = atol(text);
        if (complete) *complete = stage_is_complete(s);
    }
    err_clear();
    free(text);
    ts_close(s);
    return step;
}

// Waits until the run `pid` writing `out` has committed a checkpoint at step >= min, then holds
// LMDB's write lock: the run can take no further checkpoint (nor finish) until the test releases
// it. *at: the committed step, asserted below `total` (the run is certainly unfinished).
static lmdb_hold hold_at_step(const char *out, long min, long total, pid_t pid, long *at) {
    for (int i = 0; i < 30000; i++) { // up to a minute
        ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "the run ended before step %ld: %s", min, trt_stderr());
        if (committed_step(out, NULL) >= min) {
            lmdb_hold h = lmdb_hold_take(out);
            int complete = 1;
            *at = committed_step(out, &complete); // stable now: nothing more can be committed
            ck_assert_msg(*at < total, "the run finished (step %ld of %ld) before the test could stop it", *at, total);
            ck_assert_int_eq(complete, 0);
            return h;
        }
        usleep(2000);
    }
    ck_abort_msg("no checkpoint at step %ld appeared: %s", min, trt_stderr());
    return (lmdb_hold){-1, -1};
}

// The last step a run's progress lines on stderr reported ("train N/TOTAL"), or -1.
static long last_progress_step(void) {
    size_t n = 0;
    char *text = tu_read_file(tu_path("stderr.txt"), &n), *p = text, *q;
    long last = -1;
    while ((q = strstr(p, "train ")) != NULL) {
        char *end = NULL;
        long v = strtol(q + 6, &end, 10);
        if (end != q + 6 && *end == '/') last = v;
        p = q + 6;
    }
    free(text);
    return last;
}

static void assert_same_as(const char *ref, const char *out) {
    const char *tables[] = {"param", "buffer", "optim", "best_param", "best_buffer", "val_acc"};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(trt_tables_equal(ref, out, tables[i]), "%s differs after resume", tables[i]);
    // the log's step, loss, lr and gradient norm (column 4, images/s, is a timing)
    int na = 0, nb = 0;
    float *ra = trt_read_rows(ref, "log", 5, &na), *rb = trt_read_rows(out, "log", 5, &nb);
    ck_assert_int_eq(na, nb);
    for (int i = 0; i < na; i++) ck_assert_msg(memcmp(ra + i * 5, rb + i * 5, 4 * sizeof(float)) == 0, "log row %d differs", i);
    free(ra);
    free(rb);
}

START_TEST(test_classifier_interrupt_resume_bitwise) {
    const long total = 12 * CLS_STEPS_PER_EPOCH;
    const char *ref = trt_path("ref"), *out = trt_path("ck"), *out2 = trt_path("ck2");
    const char *r[] = {CLS_ARGS(trt_path("data"), ref), "--set", "train_classifier.epochs=12", NULL};
    ck_assert_int_eq(trt_run(r), 0);
    ck_assert_int_eq(trt_meta_long(ref, "step"), total);

    // SIGTERM while the run is certainly unfinished: it checkpoints at the end of its batch and
    // exits 3 with the store incomplete; the rerun resumes and ends identical
    const char *args[] = {CLS_ARGS(trt_path("data"), out), "--set", "train_classifier.epochs=12", NULL};
    pid_t pid = trt_start(args);
    long at0 = 0;
    lmdb_hold held = hold_at_step(out, CLS_STEPS_PER_EPOCH, total, pid, &at0);
    kill(pid, SIGTERM);
    lmdb_hold_release(held); // lets it checkpoint
    int st = 0;
    waitpid(pid, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 3, "SIGTERM: exit %d (want 3): %s",
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1, trt_stderr());
    long at = trt_meta_long(out, "step");
    ck_assert_msg(at >= at0 && at < total, "interrupted at step %ld (held at %ld, total %ld)", at, at0, total);
    ck_assert_int_eq(trt_run(args), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":true"));
    assert_same_as(ref, out);

    // SIGKILL mid-epoch: the classifier checkpoints at epoch ends only, so steps past the last
    // checkpoint are lost and the rerun must redo them from the checkpoint's state
    const char *args2[] = {CLS_ARGS_LOUD(trt_path("data"), out2), "--set", "train_classifier.epochs=12", NULL};
    pid = trt_start(args2);
    held = hold_at_step(out2, CLS_STEPS_PER_EPOCH, total, pid, &at0);
    // the run cannot pass its next checkpoint (at0 + 9): wait until it is 4 steps into the epoch
    for (int i = 0; i < 30000 && last_progress_step() < at0 + 4; i++) usleep(2000);
    long done = last_progress_step();
    ck_assert_msg(done >= at0 + 4 && done <= at0 + CLS_STEPS_PER_EPOCH, "progress %ld after the checkpoint at %ld",
                  done, at0);
    kill(pid, SIGKILL);
    ck_assert_int_eq(tu_wait(pid), 128 + SIGKILL);
    lmdb_hold_release(held);
    ck_assert_int_eq(trt_meta_long(out2, "step"), at0); // steps at0+1.. were lost with the process
    const char *again[] = {CLS_ARGS(trt_path("data"), out2), "--set", "train_classifier.epochs=12", NULL};
    ck_assert_int_eq(trt_run(again), 0);
    ck_assert_ptr_nonnull(strstr(trt_stdout(), "\"complete\":true"));
    assert_same_as(ref, out2);
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
    tcase_add_test(tc, test_classifier_interrupt_resume_bitwise);
    tcase_add_test(tc, test_classifier_val_store);
    suite_add_tcase(s, tc);
    return s;
}
