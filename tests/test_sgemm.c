// test_sgemm: the CPU backend's own GEMM (kernels/cpu/cpu_sgemm.h) against a plain double
// reference over every layout it serves (NN, TN, NT), awkward sizes (every row-tile and column
// tail, k across the k-block boundary, k = 0), alpha and beta, beta 0 over NaN garbage, padded
// leading dimensions that must stay untouched; and its promises: the same bits from any number
// of threads, and from the AVX-512 and the AVX2 kernels when B is not transposed.
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_sgemm.h"
#include "kernels/cpu/ref/ref_ops.h"

typedef struct {
    int m, n, k, ta, tb;
} sg_case;

static const sg_case sg_cases[] = {
    {1, 1, 1, 0, 0},     {6, 16, 8, 0, 0},   {7, 17, 3, 0, 0},    {5, 33, 31, 0, 0},  {13, 50, 257, 0, 0},
    {32, 256, 32, 0, 0}, {3, 64, 600, 1, 0}, {11, 45, 19, 1, 0},  {16, 16, 256, 0, 1}, {9, 35, 513, 0, 1},
    {2, 3, 1, 0, 1},     {64, 20, 70, 0, 1}, {6, 32, 0, 0, 0},    {12, 48, 16, 1, 0},
};

// C (m x n, ldc = n + 3 with a guard column block) from the reference in double
static void sg_ref(const sg_case *c, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                   const float *c0, double *out, int ldc) {
    for (int i = 0; i < c->m; i++)
        for (int j = 0; j < c->n; j++) {
            double acc = 0;
            for (int p = 0; p < c->k; p++) {
                double x = c->ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double y = c->tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                acc += x * y;
            }
            out[(size_t)i * ldc + j] = alpha * acc + (beta != 0 ? beta * (double)c0[(size_t)i * ldc + j] : 0);
        }
}

// Runs case `c` with (alpha, beta) on `nt` threads; C starts as c0 (NaN everywhere when beta is
// 0). Returns C (caller frees).
static float *sg_run(const sg_case *c, float alpha, float beta, int nt, const float *a, int lda, const float *b, int ldb,
                     const float *c0, int ldc) {
    size_t cn = (size_t)c->m * ldc;
    float *cc = malloc(cn * sizeof *cc);
    ck_assert_ptr_nonnull(cc);
    memcpy(cc, c0, cn * sizeof *cc);
    int rc = nt > 1 ? cpu_sgemm_mt(nt, c->ta, c->tb, c->m, c->n, c->k, alpha, a, lda, b, ldb, beta, cc, ldc)
                    : cpu_sgemm(c->ta, c->tb, c->m, c->n, c->k, alpha, a, lda, b, ldb, beta, cc, ldc);
    ck_assert_int_eq(rc, 0);
    return cc;
}

START_TEST(test_sgemm_reference) {
    const sg_case *c = &sg_cases[_i];
    int lda = (c->ta ? c->m : c->k) + 2, ldb = (c->tb ? c->k : c->n) + 5, ldc = c->n + 3;
    size_t an = (size_t)(c->ta ? c->k : c->m) * lda + 1, bn = (size_t)(c->tb ? c->n : c->k) * ldb + 1;
    size_t cn = (size_t)c->m * ldc;
    float *a = malloc(an * sizeof *a), *b = malloc(bn * sizeof *b), *c0 = malloc(cn * sizeof *c0);
    double *want = malloc(cn * sizeof *want);
    ck_assert(a && b && c0 && want);
    ref_fill_uniform(a, an, 11 + (uint64_t)_i, -1, 1);
    ref_fill_uniform(b, bn, 29 + (uint64_t)_i, -1, 1);
    const float betas[] = {0.0f, 1.0f, -0.5f}, alphas[] = {1.0f, 0.25f};
    for (int bi = 0; bi < 3; bi++)
        for (int ai = 0; ai < 2; ai++) {
            float alpha = alphas[ai], beta = betas[bi];
            ref_fill_uniform(c0, cn, 5 + (uint64_t)bi, -1, 1);
            if (beta == 0.0f)
                for (size_t i = 0; i < cn; i++) c0[i] = NAN; // never read
            for (int i = 0; i < c->m; i++) c0[(size_t)i * ldc + c->n] = 1234.5f; // guard columns
            sg_ref(c, alpha, a, lda, b, ldb, beta, c0, want, ldc);
            float *got = sg_run(c, alpha, beta, 1, a, lda, b, ldb, c0, ldc);
            for (int i = 0; i < c->m; i++) {
                for (int j = 0; j < c->n; j++) {
                    double w = want[(size_t)i * ldc + j], g = got[(size_t)i * ldc + j];
                    ck_assert_msg(fabs(g - w) <= 1e-5 * (1 + fabs(w)) * (1 + sqrt((double)c->k)),
                                  "m%d n%d k%d ta%d tb%d alpha %g beta %g: C[%d][%d] = %.9g, want %.9g", c->m, c->n,
                                  c->k, c->ta, c->tb, alpha, beta, i, j, g, w);
                }
                ck_assert_msg(got[(size_t)i * ldc + c->n] == 1234.5f, "row %d: the column after C was written", i);
            }
            // any thread count: the same bits
            for (int nt = 2; nt <= 3; nt++) {
                float *mt = sg_run(c, alpha, beta, nt, a, lda, b, ldb, c0, ldc);
                ck_assert_msg(!memcmp(mt, got, cn * sizeof *mt), "m%d n%d k%d: %d threads differ from one", c->m, c->n,
                              c->k, nt);
                free(mt);
            }
            // the other kernel width (where the CPU has AVX-512): as exact as the reference, and
            // the same bits when B is not transposed
            int old = cpu_sgemm_force_isa(1);
            float *narrow = sg_run(c, alpha, beta, 1, a, lda, b, ldb, c0, ldc);
            if (old > 0) cpu_sgemm_force_isa(old);
            for (int i = 0; i < c->m; i++)
                for (int j = 0; j < c->n; j++) {
                    double w = want[(size_t)i * ldc + j], g = narrow[(size_t)i * ldc + j];
                    ck_assert_msg(fabs(g - w) <= 1e-5 * (1 + fabs(w)) * (1 + sqrt((double)c->k)),
                                  "AVX2 m%d n%d k%d tb%d: C[%d][%d] = %.9g, want %.9g", c->m, c->n, c->k, c->tb, i, j,
                                  g, w);
                }
            ck_assert_msg(c->tb || !memcmp(narrow, got, cn * sizeof *narrow),
                          "m%d n%d k%d ta%d: AVX2 and AVX-512 differ", c->m, c->n, c->k, c->ta);
            free(narrow);
            free(got);
        }
    free(a);
    free(b);
    free(c0);
    free(want);
}
END_TEST

START_TEST(test_sgemm_refuses_tt) {
    float a = 1, b = 1, c = 0;
    ck_assert_int_eq(cpu_sgemm(1, 1, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1), -1);
    ck_assert_int_eq(cpu_sgemm_mt(2, 1, 1, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1), -1);
}
END_TEST

Suite *suite_sgemm(void) {
    Suite *s = suite_create("sgemm");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_sgemm_reference, 0, (int)(sizeof sg_cases / sizeof *sg_cases));
    tcase_add_test(tc, test_sgemm_refuses_tt);
    suite_add_tcase(s, tc);
    return s;
}
