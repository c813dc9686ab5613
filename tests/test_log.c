// Tests of logging and progress (common/log.h): message format and levels, the non-terminal
// progress lines (stderr redirected to a file in a forked child, a fake clock), the bar, resumed
// rates, the environment interval, and the rate/ETA/duration arithmetic.
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/test_util.h"

static double fake_t;
static double fake_now(void) { return fake_t; }

struct child_fn {
    void (*fn)(void);
};

static int call_child(void *arg) {
    ((struct child_fn *)arg)->fn();
    return 0;
}

// Runs fn in a child whose stderr is a file; returns what it wrote (static buffer).
static const char *run_child(void (*fn)(void)) {
    static char out[8192];
    struct child_fn c = {fn};
    ck_assert_int_eq(tu_fork_stderr(tu_path("stderr.txt"), call_child, &c), 0);
    ck_assert_ptr_nonnull(tu_read_text(tu_path("stderr.txt"), out, sizeof out));
    return out;
}

// --- messages ------------------------------------------------------------------------------

static void child_levels(void) {
    log_set_prog("stage");
    log_info("hello %d", 1);
    log_warn("careful");
    log_error("broken %s", "file.yml");
    log_debug("hidden");
    log_set_level(LOG_DEBUG);
    log_debug("shown");
    log_set_level(LOG_ERROR);
    log_info("dropped");
    log_warn("dropped");
    prog_begin("quiet work", 10); // --quiet: no progress either
    prog_update(10, NULL);
    prog_end();
    log_error("still");
    log_set_prog(NULL);
    log_error("bare");
}

START_TEST(test_levels) {
    const char *out = run_child(child_levels);
    ck_assert_str_eq(out, "stage: hello 1\n"
                          "stage: warning: careful\n"
                          "stage: error: broken file.yml\n"
                          "stage: shown\n"
                          "stage: error: still\n"
                          "error: bare\n");
    ck_assert_int_eq(log_get_level(), LOG_INFO); // the parent is untouched
}
END_TEST

// --- progress lines ------------------------------------------------------------------------

static void child_lines(void) {
    log_set_prog("stage");
    prog_set_clock(fake_now);
    prog_set_interval(1.0);
    fake_t = 100;
    prog_begin("sample", 100);
    fake_t = 100.5;
    prog_update(10, "loss %.3f", 0.5); // too early for a line
    fake_t = 101.0;
    prog_update(20, "loss %.3f", 0.25);
    fake_t = 101.5;
    prog_update(30, NULL);
    fake_t = 102.0;
    prog_update(40, NULL); // keeps the last extra text
    log_info("a message between lines");
    fake_t = 105.0;
    prog_update(100, "loss %.3f", 0.125);
    prog_end();
    prog_end(); // no second final line
}

START_TEST(test_progress_lines) {
    const char *out = run_child(child_lines);
    ck_assert_str_eq(out, "stage: sample 20/100 (20.0%) 20.0/s ETA 4s loss 0.250\n"
                          "stage: sample 40/100 (40.0%) 20.0/s ETA 3s loss 0.250\n"
                          "stage: a message between lines\n"
                          "stage: sample 100/100 (100.0%) 20.0/s ETA 0s loss 0.125\n"
                          "stage: sample done 100/100 in 5s (20.0/s) loss 0.125\n");
}
END_TEST

static void child_resumed(void) {
    prog_set_clock(fake_now);
    prog_set_interval(10);
    fake_t = 0;
    prog_begin_from("train", 500, 1000); // 500 done by an earlier run
    fake_t = 20;
    prog_update(600, NULL); // rate counts the new 100 in 20 s
    fake_t = 25;
    prog_update(650, NULL); // not due (5 s after the last line)
    prog_begin("unknown total", 0);
    fake_t = 75;
    prog_update(100, NULL);
    prog_end();
}

START_TEST(test_progress_resumed) {
    const char *out = run_child(child_resumed);
    ck_assert_str_eq(out, "train 600/1000 (60.0%) 5.00/s ETA 1m20s\n"
                          "unknown total 100 done 2.00/s\n"
                          "unknown total done 100 in 50s (2.00/s)\n");
}
END_TEST

static void child_env_interval(void) {
    setenv("DIFFOOD_PROGRESS_INTERVAL", "0", 1);
    prog_set_clock(fake_now);
    fake_t = 0;
    prog_begin("x", 3);
    for (int i = 1; i <= 3; i++) {
        fake_t = i;
        prog_update((uint64_t)i, NULL);
    }
    prog_end();
}

START_TEST(test_progress_env_interval) {
    const char *out = run_child(child_env_interval);
    ck_assert_str_eq(out, "x 1/3 (33.3%) 1.00/s ETA 2s\n"
                          "x 2/3 (66.7%) 1.00/s ETA 1s\n"
                          "x 3/3 (100.0%) 1.00/s ETA 0s\n"
                          "x done 3/3 in 3s (1.00/s)\n");
}
END_TEST

static void child_bar(void) {
    log_set_prog("p");
    prog_set_clock(fake_now);
    prog_set_mode(PROG_BAR);
    fake_t = 0;
    prog_begin("work", 8);
    fake_t = 0.05;
    prog_update(1, NULL); // within the redraw period: not drawn
    fake_t = 1;
    prog_update(4, NULL);
    log_warn("w");
    fake_t = 2;
    prog_update(8, NULL);
    prog_end();
}

START_TEST(test_progress_bar) {
    const char *out = run_child(child_bar);
    const char *want = "\rp: work [........................] 0/8 (0.0%) 0.00/s ETA ?\033[K"
                       "\rp: work [############............] 4/8 (50.0%) 4.00/s ETA 1s\033[K"
                       "\r\033[Kp: warning: w\n"
                       "\rp: work [############............] 4/8 (50.0%) 4.00/s ETA 1s\033[K"
                       "\rp: work [########################] 8/8 (100.0%) 4.00/s ETA 0s\033[K"
                       "\r\033[Kp: work done 8/8 in 2s (4.00/s)\n";
    ck_assert_str_eq(out, want);
}
END_TEST

// --- arithmetic ----------------------------------------------------------------------------

START_TEST(test_eta_math) {
    ck_assert_double_eq(prog_rate(0, 50, 10), 5.0);
    ck_assert_double_eq(prog_rate(20, 50, 10), 3.0);
    ck_assert_double_eq(prog_rate(0, 0, 10), 0.0);
    ck_assert_double_eq(prog_rate(0, 10, 0), 0.0);
    ck_assert_double_eq(prog_eta(0, 50, 100, 10), 10.0);
    ck_assert_double_eq(prog_eta(40, 50, 100, 10), 50.0); // resumed: 10 in 10 s, 50 left
    ck_assert_double_eq(prog_eta(0, 100, 100, 10), 0.0);
    ck_assert_double_eq(prog_eta(0, 0, 100, 10), -1.0); // no rate yet
    ck_assert_double_eq(prog_eta(0, 50, 0, 10), -1.0);  // unknown total
    char b[16];
    ck_assert_str_eq(prog_format_duration(0, b, sizeof b), "0s");
    ck_assert_str_eq(prog_format_duration(59.4, b, sizeof b), "59s");
    ck_assert_str_eq(prog_format_duration(59.6, b, sizeof b), "1m00s");
    ck_assert_str_eq(prog_format_duration(250, b, sizeof b), "4m10s");
    ck_assert_str_eq(prog_format_duration(3599, b, sizeof b), "59m59s");
    ck_assert_str_eq(prog_format_duration(3600, b, sizeof b), "1h00m");
    ck_assert_str_eq(prog_format_duration(7260, b, sizeof b), "2h01m");
    ck_assert_str_eq(prog_format_duration(90000, b, sizeof b), "1d01h");
    ck_assert_str_eq(prog_format_duration(-1, b, sizeof b), "?");
}
END_TEST

Suite *suite_log(void) {
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_levels);
    tcase_add_test(tc, test_progress_lines);
    tcase_add_test(tc, test_progress_resumed);
    tcase_add_test(tc, test_progress_env_interval);
    tcase_add_test(tc, test_progress_bar);
    tcase_add_test(tc, test_eta_math);
    suite_add_tcase(s, tc);
    return s;
}
