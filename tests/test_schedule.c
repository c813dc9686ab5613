// Tests of common/schedule: linear, quad and cosine betas and abar against numpy/torch
// ($DIFFOOD_PYTHON) value for value, the 0-based abar indexing, and bad parameters.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/schedule.h"

// Runs python to print T lines "beta abar" (float32 as %.9e) for the schedule `name`, the
// reference way: betas float64 (numpy), then .float(); abar = torch.cumprod(1 - betas).
static float *ref_values(const char *name, int T) {
    const char *py = getenv("DIFFOOD_PYTHON");
    if (!py) py = "/usr/bin/python3";
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s -c \"\n"
             "import math, numpy as np, torch\n"
             "T=%d; k='%s'\n"
             "if k=='linear': b=np.linspace(1e-4,0.02,T,dtype=np.float64)\n"
             "elif k=='quad': b=np.linspace(1e-4**0.5,0.02**0.5,T,dtype=np.float64)**2\n"
             "else:\n"
             "  f=lambda s: math.cos((s+0.008)/1.008*math.pi/2)**2\n"
             "  b=np.array([min(1-f((i+1)/T)/f(i/T),0.999) for i in range(T)],dtype=np.float64)\n"
             "bt=torch.from_numpy(b).float(); a=(1-bt).cumprod(dim=0)\n"
             "print('\\n'.join('%%.9e %%.9e'%%(x,y) for x,y in zip(bt.tolist(),a.tolist())))\n"
             "\"",
             py, T, name);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    float *v = malloc(sizeof(float) * 2 * T);
    int n = 0;
    while (n < T && fscanf(p, "%e %e", &v[2 * n], &v[2 * n + 1]) == 2) n++;
    int st = pclose(p);
    ck_assert_msg(st == 0 && n == T, "python reference failed (status %d, %d values)", st, n);
    return v;
}

static void check_kind(sched_kind kind, int T, float max_rel) {
    sched s;
    ck_assert_int_eq(sched_build(&s, kind, T, 1e-4, 0.02), 0);
    float *ref = ref_values(sched_kind_name(kind), T);
    for (int i = 0; i < T; i++) {
        float rb = ref[2 * i], ra = ref[2 * i + 1];
        ck_assert_msg(fabsf(s.beta[i] - rb) <= max_rel * rb, "%s beta[%d] %.9e vs %.9e", sched_kind_name(kind), i,
                      (double)s.beta[i], (double)rb);
        ck_assert_msg(fabsf(s.abar[i] - ra) <= max_rel * ra, "%s abar[%d] %.9e vs %.9e", sched_kind_name(kind), i,
                      (double)s.abar[i], (double)ra);
    }
    // 0-based: abar[0] = 1 - beta_0 exactly, decreasing
    ck_assert_float_eq(s.abar[0], 1.0f - s.beta[0]);
    for (int i = 1; i < T; i++) ck_assert(s.abar[i] < s.abar[i - 1]);
    free(ref);
    sched_free(&s);
}

START_TEST(test_linear_matches_torch) { check_kind(SCHED_LINEAR, 1000, 0.0f); } // bit for bit
END_TEST

START_TEST(test_quad_matches_torch) { check_kind(SCHED_QUAD, 1000, 0.0f); }
END_TEST

START_TEST(test_cosine_matches_torch) { check_kind(SCHED_COSINE, 1000, 1e-6f); } // libm cos vs Python's
END_TEST

START_TEST(test_linear_known_values) {
    sched s;
    ck_assert_int_eq(sched_build(&s, SCHED_LINEAR, 1000, 1e-4, 0.02), 0);
    ck_assert_float_eq(s.beta[0], 1e-4f);
    ck_assert_float_eq(s.beta[999], 0.02f);
    // the levels detection uses: abar[120], abar[240], abar[360] (float32 products)
    ck_assert_float_eq_tol(s.abar[360], 0.2623f, 2e-3f);
    ck_assert(s.abar[999] > 0 && s.abar[999] < 1e-4f);
    sched_free(&s);
}
END_TEST

START_TEST(test_bad_parameters) {
    sched s;
    sched_kind k;
    ck_assert_int_eq(sched_build(&s, SCHED_LINEAR, 0, 1e-4, 0.02), ERR_CONFIG);
    ck_assert_int_eq(sched_build(&s, SCHED_LINEAR, 10, 0.5, 0.1), ERR_CONFIG);
    ck_assert_int_eq(sched_build(&s, SCHED_QUAD, 10, -1, 0.1), ERR_CONFIG);
    ck_assert_int_eq(sched_kind_from_name("sigmoid", &k), ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err_msg(), "sigmoid"));
    ck_assert_int_eq(sched_kind_from_name("quad", &k), 0);
    ck_assert_int_eq(k, SCHED_QUAD);
}
END_TEST

Suite *suite_schedule(void) {
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("schedule");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_linear_matches_torch);
    tcase_add_test(tc, test_quad_matches_torch);
    tcase_add_test(tc, test_cosine_matches_torch);
    tcase_add_test(tc, test_linear_known_values);
    tcase_add_test(tc, test_bad_parameters);
    suite_add_tcase(s, tc);
    return s;
}
