// test_ops_ref: compiles the op references (kernels/cpu/ref/) into the test runner, with the
// helpers the op suites share (test_ops_ref.h). The references are test-only code, so they live
// outside the folders the Makefile builds into the library; this translation unit is their one
// home (it defines no suite).
#include "kernels/cpu/ref/ref_misc.c"
#include "kernels/cpu/ref/ref_nn.c"

#include <check.h>

#include "tests/test_ops_ref.h"

#include "kernels/cpu/cpu_direct.h"
#include "kernels/cpu/cpu_winograd.h"

ops_ctx *tops_ctx(int threads) {
    ops_options o = ops_options_default();
    o.threads = threads;
    ops_ctx *ctx = NULL;
    ck_assert_int_eq(ops_ctx_create(&ctx, OPS_DEV_CPU, &o), 0);
    return ctx;
}

const char *const tops_conv_path_names[TOPS_CONV_PATHS] = {"default", "F(2x2)", "F(4x4)", "direct"};

void tops_conv_path(int path) {
    cpu_winograd_force(path == TOPS_CONV_F2 ? 2 : path == TOPS_CONV_F4 ? 4 : 0);
    cpu_direct_force(path == TOPS_CONV_F2 || path == TOPS_CONV_F4 ? 1 : path == TOPS_CONV_DIRECT ? 2 : 0);
}

void tops_grad_check(void (*fwd)(void *, double *), void *cfg, double *param, size_t np, size_t ny,
                     const float *r, const float *got, const float *pre, const char *what) {
    double *rd = ref_dup(r, ny), *want = malloc(np * sizeof *want);
    float *diff = malloc(np * sizeof *diff);
    ref_fd_grad(fwd, cfg, param, np, ny, rd, want, TOPS_FD_H);
    for (size_t i = 0; i < np; i++) diff[i] = got[i] - (pre ? pre[i] : 0.0f);
    double e = ref_rel_err(diff, want, np);
    ck_assert_msg(e <= TOPS_GTOL, "%s: gradient relative error %.3g > %.3g", what, e, TOPS_GTOL);
    free(rd), free(want), free(diff);
}

float *tops_prefill(size_t n, uint64_t seed, float **copy) {
    float *g = ref_rand(n, seed, -1, 1);
    *copy = malloc(n * sizeof **copy);
    for (size_t i = 0; i < n; i++) (*copy)[i] = g[i];
    return g;
}
