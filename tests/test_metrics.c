// Suite metrics: common/ood/metrics against scikit-learn as OpenOOD calls it (golden cases with
// many ties from tools/torchref/make_metrics_golden.py in tests/data/metrics/golden.txt, to
// 1e-9), hand-checked tiny cases, the ROC curve points, histograms and the input errors.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/ood/metrics.h"

// tests/data/metrics/golden.txt from the working directory or DIFFOOD_BIN's parents.
static FILE *metrics_golden(void) {
    const char *bin = getenv("DIFFOOD_BIN");
    const char *ups[] = {".", "/..", "/../..", "/../../.."};
    char p[1024];
    for (int i = 0; i < 4; i++) {
        if (i == 0)
            snprintf(p, sizeof p, "tests/data/metrics/golden.txt");
        else if (bin)
            snprintf(p, sizeof p, "%s%s/tests/data/metrics/golden.txt", bin, ups[i]);
        else
            continue;
        FILE *f = fopen(p, "r");
        if (f) return f;
    }
    ck_abort_msg("tests/data/metrics/golden.txt not found (run from the repository root)");
    return NULL;
}

static void read_tagged(FILE *f, const char *tag, double *x, size_t n) {
    char t[32];
    ck_assert_int_eq(fscanf(f, "%31s", t), 1);
    ck_assert_str_eq(t, tag);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(fscanf(f, "%lf", &x[i]), 1);
}

START_TEST(test_golden_sklearn) {
    FILE *f = metrics_golden();
    char line[256], name[64];
    int cases = 0;
    // skip the comment line
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    size_t n_id, n_ood;
    while (fscanf(f, " case %63s %zu %zu", name, &n_id, &n_ood) == 3) {
        double *a = malloc(n_id * sizeof *a), *b = malloc(n_ood * sizeof *b), e[4];
        read_tagged(f, "id", a, n_id);
        read_tagged(f, "ood", b, n_ood);
        read_tagged(f, "expect", e, 4);
        size_t m;
        ck_assert_int_eq(fscanf(f, " roc %zu", &m), 1);
        double *fpr = malloc(m * sizeof *fpr), *tpr = malloc(m * sizeof *tpr);
        for (size_t i = 0; i < m; i++) ck_assert_int_eq(fscanf(f, "%lf", &fpr[i]), 1);
        for (size_t i = 0; i < m; i++) ck_assert_int_eq(fscanf(f, "%lf", &tpr[i]), 1);

        ood_metrics r;
        ck_assert_int_eq(ood_metrics_compute(a, n_id, b, n_ood, &r), 0);
        ck_assert_msg(fabs(r.auroc - e[0]) < 1e-9, "%s: AUROC %.17g, sklearn %.17g", name, r.auroc, e[0]);
        ck_assert_msg(fabs(r.aupr_in - e[1]) < 1e-9, "%s: AUPR-In %.17g, sklearn %.17g", name, r.aupr_in, e[1]);
        ck_assert_msg(fabs(r.aupr_out - e[2]) < 1e-9, "%s: AUPR-Out %.17g, sklearn %.17g", name, r.aupr_out, e[2]);
        ck_assert_msg(fabs(r.fpr95 - e[3]) < 1e-9, "%s: FPR95 %.17g, sklearn %.17g", name, r.fpr95, e[3]);
        ck_assert_uint_eq(r.n_id, n_id);
        ck_assert_uint_eq(r.n_ood, n_ood);

        ood_roc roc;
        ck_assert_int_eq(ood_metrics_roc(a, n_id, b, n_ood, 1, &roc), 0);
        ck_assert_msg(roc.n == m, "%s: %zu ROC points, sklearn %zu", name, roc.n, m);
        for (size_t i = 0; i < m; i++) {
            ck_assert_msg(fabs(roc.fpr[i] - fpr[i]) < 1e-12, "%s: fpr[%zu]", name, i);
            ck_assert_msg(fabs(roc.tpr[i] - tpr[i]) < 1e-12, "%s: tpr[%zu]", name, i);
        }
        ood_roc_free(&roc);
        free(a), free(b), free(fpr), free(tpr);
        cases++;
    }
    fclose(f);
    ck_assert_int_ge(cases, 8);
}
END_TEST

// Worked by hand: ID {0, 1}, OOD {1, 2}. Descending groups: 2 (+1 OOD), 1 (+1 ID +1 OOD), 0 (+1 ID).
// ROC: (0,0) (0,.5) (.5,1) (1,1); AUROC = 3.5 of 4 pairs ranked right = 0.875.
START_TEST(test_tiny_by_hand) {
    double id[] = {0, 1}, ood[] = {1, 2};
    ood_metrics r;
    ck_assert_int_eq(ood_metrics_compute(id, 2, ood, 2, &r), 0);
    // trapezoids: [0,0]->[0,.5]: 0; [0,.5]->[.5,1]: .5*.75 = .375; [.5,1]->[1,1]: .5
    ck_assert_double_eq_tol(r.auroc, 0.875, 1e-15);
    // AUPR-Out: (0,1) -> (.5, 1) -> (1, 2/3): .5*1 + .5*(1+2/3)/2
    ck_assert_double_eq_tol(r.aupr_out, 0.5 + 0.5 * (1 + 2.0 / 3) / 2, 1e-15);
    // AUPR-In, ID positive ascending: group 0 (+1 ID): (.5, 1); group 1 (+1 ID +1 OOD): (1, 2/3)
    ck_assert_double_eq_tol(r.aupr_in, 0.5 + 0.5 * (1 + 2.0 / 3) / 2, 1e-15);
    // first TPR >= .95 at (.5, 1)
    ck_assert_double_eq_tol(r.fpr95, 0.5, 1e-15);

    // perfect separation and its reverse
    double lo[] = {0, 0.1, 0.2}, hi[] = {5, 6};
    ck_assert_int_eq(ood_metrics_compute(lo, 3, hi, 2, &r), 0);
    ck_assert_double_eq(r.auroc, 1.0);
    ck_assert_double_eq(r.aupr_in, 1.0);
    ck_assert_double_eq(r.aupr_out, 1.0);
    ck_assert_double_eq(r.fpr95, 0.0);
    ck_assert_int_eq(ood_metrics_compute(hi, 2, lo, 3, &r), 0);
    ck_assert_double_eq(r.auroc, 0.0);
    ck_assert_double_eq(r.fpr95, 1.0);
    // one tie group: the diagonal
    double t1[] = {3, 3, 3}, t2[] = {3};
    ck_assert_int_eq(ood_metrics_compute(t1, 3, t2, 1, &r), 0);
    ck_assert_double_eq(r.auroc, 0.5);
    ck_assert_double_eq_tol(r.aupr_out, (1 + 0.25) / 2, 1e-15);
    ck_assert_double_eq_tol(r.aupr_in, (1 + 0.75) / 2, 1e-15);
}
END_TEST

START_TEST(test_roc_points) {
    double id[] = {0, 1}, ood[] = {1, 2};
    ood_roc roc;
    ck_assert_int_eq(ood_metrics_roc(id, 2, ood, 2, 0, &roc), 0);
    ck_assert_uint_eq(roc.n, 4);
    double f[] = {0, 0, 0.5, 1}, t[] = {0, 0.5, 1, 1}, th[] = {3, 2, 1, 0};
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq(roc.fpr[i], f[i]);
        ck_assert_double_eq(roc.tpr[i], t[i]);
        ck_assert_double_eq(roc.thr[i], th[i]);
    }
    ood_roc_free(&roc);
    ck_assert_ptr_null(roc.fpr);
    ood_roc_free(NULL);
}
END_TEST

START_TEST(test_histogram) {
    double x[] = {0, 0.5, 1, 1.5, 2, -3, 9, NAN};
    double c[4];
    ck_assert_int_eq(ood_histogram(x, 8, 0, 2, 4, c), 0);
    ck_assert_double_eq(c[0], 2); // 0 and -3 (clamped)
    ck_assert_double_eq(c[1], 1);
    ck_assert_double_eq(c[2], 1);
    ck_assert_double_eq(c[3], 3); // 1.5, 2 (the upper edge), 9 (clamped)
    ck_assert_int_eq(ood_histogram(x, 8, 1, 1, 4, c), ERR_USAGE);
    ck_assert_int_eq(ood_histogram(x, 8, 0, 1, 0, c), ERR_USAGE);
    double lo, hi;
    ck_assert_int_eq(ood_range(x, 8, &lo, &hi), 0);
    ck_assert_double_eq(lo, -3);
    ck_assert_double_eq(hi, 9);
    double nan1[] = {NAN};
    ck_assert_int_eq(ood_range(nan1, 1, &lo, &hi), ERR_INPUT);
}
END_TEST

START_TEST(test_bad_input) {
    double a[] = {0, 1}, b[] = {1, NAN}, c[] = {INFINITY};
    ood_metrics r;
    ood_roc roc;
    ck_assert_int_eq(ood_metrics_compute(a, 0, a, 2, &r), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "ID set is empty"));
    ck_assert_int_eq(ood_metrics_compute(a, 2, a, 0, &r), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "OOD set is empty"));
    ck_assert_int_eq(ood_metrics_compute(a, 2, b, 2, &r), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "OOD score 1 is NaN"));
    ck_assert_int_eq(ood_metrics_compute(c, 1, a, 2, &r), ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(err_msg(), "ID score 0 is infinite"));
    ck_assert_int_eq(ood_metrics_roc(a, 2, b, 2, 1, &roc), ERR_INPUT);
    ck_assert_ptr_null(roc.fpr);
}
END_TEST

Suite *suite_metrics(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_golden_sklearn);
    tcase_add_test(tc, test_tiny_by_hand);
    tcase_add_test(tc, test_roc_points);
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
