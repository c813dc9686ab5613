// threads: the default thread count follows the affinity mask; programs started without an
// OpenMP wait policy re-execute once with bounded spinning, and keep a policy the user set.
#define _GNU_SOURCE
#include <check.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/threads.h"
#include "tests/test_util.h"

START_TEST(test_count) {
    ck_assert_int_eq(thr_count(3), 3);
    ck_assert_int_eq(thr_count(0), thr_available());
    ck_assert_int_ge(thr_available(), 1);
}
END_TEST

// A process bound to one CPU (taskset, Slurm binding) computes with one thread by default.
START_TEST(test_affinity) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
        if (sched_setaffinity(0, sizeof one, &one)) _exit(90);
        _exit(thr_available() == 1 && thr_count(0) == 1 ? 0 : 1);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "thr_available under a one-CPU affinity mask: status %d",
                  WEXITSTATUS(st));
}
END_TEST

// The GOMP_SPINCOUNT libgomp ended up with in the program (its last OMP_DISPLAY_ENV report),
// and how many times libgomp started (2 = the program re-executed itself).
static void spin_of(const char *env, char spin[64], int *starts) {
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd,
             "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u DIFFOOD_OMP_KEEP -u " THR_MARK_ENV
             " OMP_DISPLAY_ENV=verbose %s '%s/bench-nn' --help",
             env, tu_bin());
    ck_assert_int_eq(tu_capture(cmd, out, sizeof out), 0);
    *starts = 0;
    spin[0] = 0;
    for (const char *p = out; (p = strstr(p, "GOMP_SPINCOUNT = '")); p++) {
        (*starts)++;
        sscanf(p + strlen("GOMP_SPINCOUNT = '"), "%63[0-9]", spin);
    }
}

START_TEST(test_wait_policy) {
    char spin[64];
    int starts = 0;
    spin_of("", spin, &starts); // no policy: bounded spinning, one re-execution
    ck_assert_str_eq(spin, THR_SPINCOUNT);
    ck_assert_int_eq(starts, 2);
    spin_of("OMP_WAIT_POLICY=active", spin, &starts); // the user's policy stays
    ck_assert_str_eq(spin, "30000000000");
    ck_assert_int_eq(starts, 1);
    spin_of("GOMP_SPINCOUNT=1234", spin, &starts);
    ck_assert_str_eq(spin, "1234");
    ck_assert_int_eq(starts, 1);
    spin_of("DIFFOOD_OMP_KEEP=1", spin, &starts); // opt out: libgomp's default
    ck_assert_str_eq(spin, "300000");
    ck_assert_int_eq(starts, 1);
}
END_TEST

// Made-up arguments (cli_parse called inside the test runner) never re-execute the process.
START_TEST(test_no_reexec_of_foreign_argv) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unsetenv("OMP_WAIT_POLICY");
        unsetenv("GOMP_SPINCOUNT");
        unsetenv("DIFFOOD_OMP_KEEP");
        char *fake[] = {"sample", "--out", "x.store", NULL};
        thr_wait_policy(fake);
        _exit(getenv("GOMP_SPINCOUNT") ? 1 : 0); // reached only without a re-execution
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}
END_TEST

Suite *suite_threads(void) {
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
    tcase_add_test(tc, test_count);
    tcase_add_test(tc, test_affinity);
    tcase_add_test(tc, test_wait_policy);
    tcase_add_test(tc, test_no_reexec_of_foreign_argv);
    suite_add_tcase(s, tc);
    return s;
}
