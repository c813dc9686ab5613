// Fault drills for every stage that writes (tests/fault_drills.py does the work; run from the
// checkout's root, as `make test` does): SIGKILL at seeded random moments then a rerun gives the
// stores of an uninterrupted run (ingest, train classifier and denoiser, sample, extract-features,
// score; report's files); a full disk (a 2 MiB tmpfs; skipped with a message where mounting is not
// permitted) says so naming the output, for every stage, leaves the other stores intact, and a
// rerun after freeing space completes; a second writer is refused naming the first (two ingests,
// two trains, dstore import/merge racing for real; every store-writing stage against a held lock);
// a reader during writes sees whole committed batches only.
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tests/test_util.h"

static char drill_out[1 << 16];

// Runs one drill; its output is kept for the failure message. Returns the exit status.
static int drill(const char *what, const char *seed) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s tests/fault_drills.py '%s' '%s' %s %s", tu_python(), tu_bin(), tu_dir, what, seed);
    int rc = tu_capture(cmd, drill_out, sizeof drill_out);
    fprintf(stderr, "%s", drill_out); // what each drill did (kill moments, messages)
    return rc;
}

START_TEST(test_drill_kill) {
    int rc = drill("kill", "12");
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, drill_out);
    ck_assert_ptr_nonnull(strstr(drill_out, "train-diffusion"));
    ck_assert_ptr_nonnull(strstr(drill_out, "report"));
    ck_assert_ptr_nonnull(strstr(drill_out, "killed"));
    // then every stage with its output on a full disk (unless mounting is not permitted here)
    ck_assert(strstr(drill_out, "full disk, every stage") || strstr(drill_out, "SKIP: cannot mount"));
}
END_TEST

START_TEST(test_drill_full_disk) {
    int rc = drill("full", "");
    if (rc == 77) return; // no permission to mount a tmpfs: the drill said so
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, drill_out);
    ck_assert_ptr_nonnull(strstr(drill_out, "disk is full"));
}
END_TEST

START_TEST(test_drill_second_writer) {
    int rc = drill("writer", "");
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, drill_out);
    ck_assert_ptr_nonnull(strstr(drill_out, "another process is writing it"));
}
END_TEST

START_TEST(test_drill_reader_during_writes) {
    int rc = drill("reader", "");
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, drill_out);
}
END_TEST

Suite *suite_drills(void) {
    Suite *s = suite_create("drills");
    TCase *tc = tcase_create("drills");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_drill_kill);
    tcase_add_test(tc, test_drill_full_disk);
    tcase_add_test(tc, test_drill_second_writer);
    tcase_add_test(tc, test_drill_reader_during_writes);
    suite_add_tcase(s, tc);
    return s;
}
