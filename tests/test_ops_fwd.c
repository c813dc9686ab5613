// test_ops_fwd: every forward op of the CPU backend against its double-precision reference
// (kernels/cpu/ref/) on random inputs at awkward sizes: odd H/W, channel counts that are not
// multiples of 8 or 16, batches of 1 and 3, stride 2, asymmetric padding, 1x1 and 3x3 kernels,
// chunked and unchunked convolution paths, sizes above and below the threading thresholds.
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "kernels/cpu/cpu_direct.h"
#include "kernels/cpu/cpu_winograd.h"
#include "kernels/cpu/ref/ref_ops.h"
#include "kernels/ops.h"
#include "tests/test_ops_ref.h"

#define TOL 1e-5
// Winograd F(4x4, 3x3) rounds more than F(2x2, 3x3) (its transforms hold 4s, 5s and 8s): up to
// 1.6e-5 on these cases (C_in 17, 4x4 planes), where F(2x2) stays under 4e-6.
#define TOL_F4 3e-5

#define CK_REL(a, b, n, tol, what)                                                                   \
    do {                                                                                           \
        double e_ = ref_rel_err((a), (b), (n));                                                    \
        ck_assert_msg(e_ <= (tol), "%s: relative error %.3g > %.3g", (what), e_, (double)(tol));   \
    } while (0)

// --- convolution ----------------------------------------------------------------------------------

typedef struct {
    ops_conv_shape s;
    int bias;
} conv_case;

static const conv_case conv_cases[] = {
    {{1, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1}, 1},     // 3x3 pad 1, batch 1, odd sizes
    {{3, 5, 9, 7, 6, 3, 3, 2, 0, 0, 1, 1}, 0},     // Downsample: pad right/bottom, stride 2
    {{3, 13, 5, 5, 7, 1, 1, 1, 0, 0, 0, 0}, 1},    // 1x1 pointwise path
    {{2, 4, 8, 8, 3, 1, 1, 2, 0, 0, 0, 0}, 0},     // 1x1 stride 2 (im2col path)
    {{3, 6, 11, 10, 9, 5, 3, 2, 2, 1, 0, 2}, 1},   // 5x3 kernel, all pads different
    {{40, 2, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1}, 1},    // many small images: chunks of 29 + 11
    {{2, 3, 34, 32, 5, 3, 3, 1, 1, 1, 1, 1}, 1},   // plane over the chunk size: one image per GEMM
    {{3, 17, 4, 4, 33, 3, 3, 1, 1, 1, 1, 1}, 1},   // deep, tiny plane (Winograd from here on)
    {{3, 9, 7, 9, 12, 3, 3, 1, 1, 1, 1, 1}, 1},    // odd output: partial Winograd tiles
    {{2, 8, 6, 5, 8, 3, 3, 1, 0, 2, 1, 0}, 0},     // asymmetric pads up to 2
    {{1, 16, 33, 31, 10, 3, 3, 1, 1, 1, 1, 1}, 1}, // one large image
    {{5, 11, 5, 6, 9, 3, 3, 1, 3, 0, 0, 3}, 1},    // pad 3 (backward data falls back to im2col)
    {{20, 8, 4, 4, 16, 3, 3, 1, 1, 1, 1, 1}, 1},   // many tiny images: multi-image chunks
    {{2, 8, 3, 515, 9, 3, 3, 1, 1, 1, 1, 1}, 1},   // rows wider than a Winograd staging block
    {{40, 8, 12, 11, 9, 3, 3, 1, 1, 1, 1, 1}, 0},  // F(4x4): staging runs across images and blocks
    {{3, 5, 9, 7, 6, 3, 3, 2, 1, 1, 1, 1}, 1},     // stride 2 pad 1, odd planes (direct: phase planes)
    {{2, 16, 28, 28, 20, 3, 3, 2, 1, 1, 1, 1}, 1}, // stride 2: two pixel vectors and a masked one
    {{2, 9, 8, 10, 12, 3, 3, 2, 1, 1, 0, 0}, 0},   // stride 2, no padding bottom and right
};

START_TEST(test_conv2d_fwd) {
    const conv_case *cc = &conv_cases[_i];
    const ops_conv_shape *s = &cc->s;
    int ho = ops_conv_out_h(s), wo = ops_conv_out_w(s);
    size_t nx = (size_t)s->n * s->c_in * s->h * s->w, nw = (size_t)s->c_out * s->c_in * s->kh * s->kw;
    size_t ny = (size_t)s->n * s->c_out * ho * wo;
    float *x = ref_rand(nx, 1 + _i, -1, 1), *w = ref_rand(nw, 2 + _i, -1, 1), *b = ref_rand(s->c_out, 3 + _i, -1, 1);
    float *y = malloc(ny * sizeof *y);
    double *xd = ref_dup(x, nx), *wd = ref_dup(w, nw), *bd = ref_dup(b, s->c_out), *yd = malloc(ny * sizeof *yd);
    ref_conv2d_fwd(s, yd, xd, wd, cc->bias ? bd : NULL);
    for (int path = TOPS_CONV_F2; path < TOPS_CONV_PATHS; path++) { // Winograd F(2x2), F(4x4), direct
        tops_conv_path(path);
        char what[64];
        snprintf(what, sizeof what, "conv2d_fwd %s", tops_conv_path_names[path]);
        for (int threads = 1; threads <= 3; threads++) { // inner and outer threading, uneven splits
            ops_ctx *ctx = tops_ctx(threads);
            ref_fill_uniform(y, ny, 99, 5, 6); // garbage: the op assigns
            ck_assert_int_eq(ops_conv2d_fwd(ctx, s, y, x, w, cc->bias ? b : NULL), 0);
            CK_REL(y, yd, ny, path == TOPS_CONV_F4 ? TOL_F4 : TOL, what);
            ops_ctx_destroy(ctx);
        }
        tops_conv_path(TOPS_CONV_AUTO);
    }
    free(x), free(w), free(b), free(y), free(xd), free(wd), free(bd), free(yd);
}
END_TEST

// Adjoint identities, exact up to rounding on every shape (cheap enough for the big ones):
// <conv(x; w), dy> = <x, bwd_data(dy; w)> = <w, bwd_weight(dy; x)>.
START_TEST(test_conv2d_adjoint) {
    const ops_conv_shape *s = &conv_cases[_i].s;
    size_t nx = (size_t)s->n * s->c_in * s->h * s->w, nw = (size_t)s->c_out * s->c_in * s->kh * s->kw;
    size_t ny = (size_t)s->n * s->c_out * ops_conv_out_h(s) * ops_conv_out_w(s);
    float *x = ref_rand(nx, 5, -1, 1), *w = ref_rand(nw, 6, -1, 1), *dy = ref_rand(ny, 7, -1, 1);
    float *y = malloc(ny * sizeof *y), *dx = calloc(nx, sizeof *dx), *dw = calloc(nw, sizeof *dw);
    ops_ctx *ctx = tops_ctx(2);
    for (int path = TOPS_CONV_F2; path < TOPS_CONV_PATHS; path++) { // Winograd F(2x2), F(4x4), direct
        tops_conv_path(path);
        memset(dx, 0, nx * sizeof *dx), memset(dw, 0, nw * sizeof *dw);
        ck_assert_int_eq(ops_conv2d_fwd(ctx, s, y, x, w, NULL), 0);
        ck_assert_int_eq(ops_conv2d_bwd_data(ctx, s, dx, dy, w), 0);
        ck_assert_int_eq(ops_conv2d_bwd_weight(ctx, s, dw, NULL, dy, x), 0);
        tops_conv_path(TOPS_CONV_AUTO);
        double a = 0, b = 0, c = 0, scale = 0;
        for (size_t i = 0; i < ny; i++) a += (double)y[i] * dy[i], scale += fabs((double)y[i] * dy[i]);
        for (size_t i = 0; i < nx; i++) b += (double)x[i] * dx[i];
        for (size_t i = 0; i < nw; i++) c += (double)w[i] * dw[i];
        ck_assert_msg(fabs(a - b) <= 1e-5 * scale, "case %d %s: <conv x, dy> %.9g vs <x, bwd_data dy> %.9g", _i,
                      tops_conv_path_names[path], a, b);
        ck_assert_msg(fabs(a - c) <= 1e-5 * scale, "case %d %s: <conv x, dy> %.9g vs <w, bwd_weight> %.9g", _i,
                      tops_conv_path_names[path], a, c);
    }
    ops_ctx_destroy(ctx);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
}
END_TEST

// The variant chosen by plane size and channels (cpu_winograd.c): F(4x4, 3x3) for the forward
// and backward-data passes of 64 channels on 8x8 planes, F(2x2, 3x3) for 16 channels and for
// every weight gradient. The two variants round differently, so the bits tell which one ran.
START_TEST(test_winograd_pick) {
    static const ops_conv_shape shapes[2] = {{2, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1}, {2, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1}};
    for (int k = 0; k < 2; k++) {
        const ops_conv_shape *s = &shapes[k];
        size_t nx = (size_t)s->n * s->c_in * 64, nw = (size_t)s->c_out * s->c_in * 9, ny = (size_t)s->n * s->c_out * 64;
        float *x = ref_rand(nx, 61, -1, 1), *w = ref_rand(nw, 62, -1, 1), *y[3], *dx[3], *dw[3];
        ops_ctx *ctx = tops_ctx(1);
        for (int v = 0; v < 3; v++) { // 0: the default choice, 1: F(2x2) forced, 2: F(4x4) forced
            y[v] = malloc(ny * sizeof(float)), dx[v] = calloc(nx, sizeof(float)), dw[v] = calloc(nw, sizeof(float));
            int old = cpu_winograd_force(2 * v), old_d = cpu_direct_force(1); // Winograd's choice alone
            ck_assert_int_eq(ops_conv2d_fwd(ctx, s, y[v], x, w, NULL), 0);
            ck_assert_int_eq(ops_conv2d_bwd_data(ctx, s, dx[v], y[v], w), 0);
            ck_assert_int_eq(ops_conv2d_bwd_weight(ctx, s, dw[v], NULL, y[v], x), 0);
            cpu_winograd_force(old);
            cpu_direct_force(old_d);
        }
        int want = k == 0 ? 2 : 1; // the forced variant the default must match
        ck_assert_msg(memcmp(y[1], y[2], ny * sizeof(float)) != 0, "F(2x2) and F(4x4) gave the same bits");
        ck_assert_msg(memcmp(y[0], y[want], ny * sizeof(float)) == 0, "%d channels: forward not F(%d)", s->c_in, 2 * want);
        ck_assert_msg(memcmp(dx[0], dx[want], nx * sizeof(float)) == 0, "%d channels: bwd_data not F(%d)", s->c_in,
                      2 * want);
        // the weight gradient of the default's own y against F(2x2)'s on the same y
        ck_assert_int_eq(cpu_winograd_force(2), 0);
        float *dw2 = calloc(nw, sizeof(float));
        ck_assert_int_eq(ops_conv2d_bwd_weight(ctx, s, dw2, NULL, y[0], x), 0);
        cpu_winograd_force(0);
        ck_assert_msg(memcmp(dw[0], dw2, nw * sizeof(float)) == 0, "%d channels: bwd_weight not F(2x2)", s->c_in);
        ops_ctx_destroy(ctx);
        free(dw2), free(x), free(w);
        for (int v = 0; v < 3; v++) free(y[v]), free(dx[v]), free(dw[v]);
    }
}
END_TEST

// The direct kernel's choice (cpu_direct.c): forward and backward-data passes of 3x3 pad-1
// layers with at most 16 channels in and out (the backward-data kernel also at least 8 out),
// where it measured faster. The paths round differently, so the bits tell which one ran, except
// against im2col's forward (fewer than 8 channels), which sums in the same order (-1 below).
START_TEST(test_direct_pick) {
    static const struct {
        ops_conv_shape s;
        int fwd, bwd; // direct by default (1), not (0), the same bits either way (-1)
    } cases[] = {
        {{2, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1}, 1, 1},
        {{2, 16, 8, 8, 1, 3, 3, 1, 1, 1, 1, 1}, -1, 1}, // backward data: 1 channel in, 16 out
        {{2, 1, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1}, -1, 0}, // backward data: 16 in, 1 out
        {{2, 32, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1}, 0, 0},
        {{2, 16, 8, 8, 16, 3, 3, 2, 1, 1, 1, 1}, -1, 0}, // stride 2: im2col sums in the same order
    };
    tops_conv_path(TOPS_CONV_DIRECT);
    int have = cpu_direct_usable(&cases[0].s, 0);
    tops_conv_path(TOPS_CONV_AUTO);
    if (!have) return; // a build without AVX-512 has no direct kernel
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const ops_conv_shape *s = &cases[k].s;
        int ho = ops_conv_out_h(s), wo = ops_conv_out_w(s);
        size_t nx = (size_t)s->n * s->c_in * 64, nw = (size_t)s->c_out * s->c_in * 9;
        size_t ny = (size_t)s->n * s->c_out * ho * wo;
        float *x = ref_rand(nx, 71, -1, 1), *w = ref_rand(nw, 72, -1, 1), *dy = ref_rand(ny, 73, -1, 1), *y[3], *dx[3];
        ops_ctx *ctx = tops_ctx(1);
        static const int paths[3] = {TOPS_CONV_AUTO, TOPS_CONV_DIRECT, TOPS_CONV_F2}; // default, direct, not direct
        for (int v = 0; v < 3; v++) {
            y[v] = malloc(ny * sizeof(float)), dx[v] = calloc(nx, sizeof(float));
            tops_conv_path(paths[v]);
            ck_assert_int_eq(ops_conv2d_fwd(ctx, s, y[v], x, w, NULL), 0);
            ck_assert_int_eq(ops_conv2d_bwd_data(ctx, s, dx[v], dy, w), 0);
            tops_conv_path(TOPS_CONV_AUTO);
        }
        int direct = s->stride == 1; // forced: wherever it applies (stride 2: the forward only)
        if (cases[k].fwd >= 0)
            ck_assert_msg((memcmp(y[1], y[2], ny * sizeof(float)) != 0) == 1, "case %zu: forced direct forward", k);
        ck_assert_msg((memcmp(dx[1], dx[2], nx * sizeof(float)) != 0) == direct, "case %zu: forced direct bwd_data", k);
        ck_assert_msg(!memcmp(y[0], y[cases[k].fwd ? 1 : 2], ny * sizeof(float)), "case %zu: forward not %s", k,
                      cases[k].fwd ? "direct" : "Winograd/im2col");
        ck_assert_msg(!memcmp(dx[0], dx[cases[k].bwd ? 1 : 2], nx * sizeof(float)), "case %zu: bwd_data not %s", k,
                      cases[k].bwd ? "direct" : "Winograd/im2col");
        ops_ctx_destroy(ctx);
        free(x), free(w), free(dy);
        for (int v = 0; v < 3; v++) free(y[v]), free(dx[v]);
    }
    // stride 2, forward (cpu_direct.c): where whole pixel vectors are mostly outputs (7x7 and
    // up), at most 64 channels in below 10x10; never the backward data
    static const struct {
        ops_conv_shape s;
        int fwd;
    } s2[] = {
        {{2, 16, 28, 28, 32, 3, 3, 2, 1, 1, 1, 1}, 1},   {{2, 64, 14, 14, 64, 3, 3, 2, 1, 1, 1, 1}, 1},
        {{2, 64, 7, 7, 128, 3, 3, 2, 1, 1, 1, 1}, 0},    {{2, 128, 14, 14, 256, 3, 3, 2, 1, 1, 1, 1}, 0},
        {{2, 128, 32, 32, 128, 3, 3, 2, 1, 1, 1, 1}, 1}, {{2, 16, 28, 28, 32, 3, 3, 2, 0, 0, 1, 1}, 0}, // pad 0
    };
    for (size_t k = 0; k < sizeof s2 / sizeof s2[0]; k++) {
        ck_assert_msg(cpu_direct_usable(&s2[k].s, 0) == s2[k].fwd, "stride-2 case %zu: forward direct %d", k, !s2[k].fwd);
        ck_assert_msg(!cpu_direct_usable(&s2[k].s, 1), "stride-2 case %zu: backward data direct", k);
    }
}
END_TEST

// --- linear and bmm -------------------------------------------------------------------------------

START_TEST(test_linear_fwd) {
    static const int dims[][3] = {{1, 17, 9}, {3, 33, 7}, {5, 64, 130}};
    int n = dims[_i][0], in = dims[_i][1], out = dims[_i][2];
    float *x = ref_rand((size_t)n * in, 10, -1, 1), *w = ref_rand((size_t)out * in, 11, -1, 1);
    float *b = ref_rand(out, 12, -1, 1), *y = malloc((size_t)n * out * sizeof *y);
    double *xd = ref_dup(x, (size_t)n * in), *wd = ref_dup(w, (size_t)out * in), *bd = ref_dup(b, out);
    double *yd = malloc((size_t)n * out * sizeof *yd);
    ops_ctx *ctx = tops_ctx(2);
    for (int withb = 0; withb < 2; withb++) {
        ref_fill_uniform(y, (size_t)n * out, 5, 7, 8);
        ck_assert_int_eq(ops_linear_fwd(ctx, y, x, w, withb ? b : NULL, n, in, out), 0);
        ref_linear_fwd(yd, xd, wd, withb ? bd : NULL, n, in, out);
        CK_REL(y, yd, (size_t)n * out, TOL, withb ? "linear_fwd with bias" : "linear_fwd");
    }
    ops_ctx_destroy(ctx);
    free(x), free(w), free(b), free(y), free(xd), free(wd), free(bd), free(yd);
}
END_TEST

START_TEST(test_bmm) {
    int ta = _i & 1, tb = (_i >> 1) & 1, batch = 3, m = 7, n = 9, k = 13;
    float alpha = 0.7f, beta = (_i & 4) ? 0.0f : 0.3f;
    size_t na = (size_t)batch * m * k, nb = (size_t)batch * k * n, nc = (size_t)batch * m * n;
    float *a = ref_rand(na, 20 + _i, -1, 1), *b = ref_rand(nb, 30 + _i, -1, 1), *c = ref_rand(nc, 40 + _i, -1, 1);
    double *ad = ref_dup(a, na), *bd = ref_dup(b, nb), *cd = ref_dup(c, nc);
    ops_ctx *ctx = tops_ctx(1 + _i % 4); // 4 threads > batch 3: BLAS threads; else a loop over the batch
    ck_assert_int_eq(ops_bmm(ctx, c, a, b, batch, m, n, k, ta, tb, alpha, beta), 0);
    ref_bmm(cd, ad, bd, batch, m, n, k, ta, tb, alpha, beta);
    CK_REL(c, cd, nc, TOL, "bmm");
    ops_ctx_destroy(ctx);
    free(a), free(b), free(c), free(ad), free(bd), free(cd);
}
END_TEST

// --- normalisation --------------------------------------------------------------------------------

START_TEST(test_groupnorm_fwd) {
    static const int dims[][4] = {{1, 6, 15, 3}, {3, 12, 35, 4}, {2, 10, 9, 10}, {3, 64, 64, 32}};
    int n = dims[_i / 3][0], c = dims[_i / 3][1], hw = dims[_i / 3][2], g = dims[_i / 3][3];
    ops_act act = (ops_act)(_i % 3);
    size_t nx = (size_t)n * c * hw;
    float *x = ref_rand(nx, 50 + _i, -2, 3), *ga = ref_rand(c, 51, 0.5, 1.5), *be = ref_rand(c, 52, -0.5, 0.5);
    float *y = malloc(nx * sizeof *y), *mean = malloc((size_t)n * g * sizeof *mean), *rstd = malloc((size_t)n * g * sizeof *rstd);
    double *xd = ref_dup(x, nx), *gad = ref_dup(ga, c), *bed = ref_dup(be, c), *yd = malloc(nx * sizeof *yd);
    double *md = malloc((size_t)n * g * sizeof *md), *rd = malloc((size_t)n * g * sizeof *rd);
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_groupnorm_fwd(ctx, act, y, mean, rstd, x, ga, be, n, c, hw, g, 1e-6f), 0);
    ref_groupnorm_fwd(act, yd, md, rd, xd, gad, bed, n, c, hw, g, 1e-6);
    CK_REL(y, yd, nx, TOL, "groupnorm_fwd y");
    CK_REL(mean, md, (size_t)n * g, TOL, "groupnorm_fwd mean");
    CK_REL(rstd, rd, (size_t)n * g, TOL, "groupnorm_fwd rstd");
    ops_ctx_destroy(ctx);
    free(x), free(ga), free(be), free(y), free(mean), free(rstd), free(xd), free(gad), free(bed), free(yd), free(md), free(rd);
}
END_TEST

START_TEST(test_batchnorm_fwd) {
    static const int dims[][3] = {{3, 5, 7}, {1, 9, 33}, {4, 3, 1}};
    int n = dims[_i / 3][0], c = dims[_i / 3][1], hw = dims[_i / 3][2];
    ops_act act = (ops_act)(_i % 3);
    size_t nx = (size_t)n * c * hw;
    float *x = ref_rand(nx, 60 + _i, -2, 3), *ga = ref_rand(c, 61, 0.5, 1.5), *be = ref_rand(c, 62, -0.5, 0.5);
    float *rm = ref_rand(c, 63, -0.2f, 0.2f), *rv = ref_rand(c, 64, 0.5, 2), *y = malloc(nx * sizeof *y);
    float *mean = malloc(c * sizeof *mean), *rstd = malloc(c * sizeof *rstd);
    double *xd = ref_dup(x, nx), *gad = ref_dup(ga, c), *bed = ref_dup(be, c), *rmd = ref_dup(rm, c), *rvd = ref_dup(rv, c);
    double *yd = malloc(nx * sizeof *yd), *md = malloc(c * sizeof *md), *rd = malloc(c * sizeof *rd);
    ops_ctx *ctx = tops_ctx(2);
    // eval first (from the initial running statistics), then a training step
    ck_assert_int_eq(ops_batchnorm_fwd_eval(ctx, act, y, x, ga, be, rm, rv, n, c, hw, 1e-5f), 0);
    ref_batchnorm_fwd_eval(act, yd, xd, gad, bed, rmd, rvd, n, c, hw, 1e-5);
    CK_REL(y, yd, nx, TOL, "batchnorm_fwd_eval");
    ck_assert_int_eq(ops_batchnorm_fwd_train(ctx, act, y, mean, rstd, rm, rv, x, ga, be, n, c, hw, 0.1f, 1e-5f), 0);
    ref_batchnorm_fwd_train(act, yd, md, rd, rmd, rvd, xd, gad, bed, n, c, hw, 0.1, 1e-5);
    CK_REL(y, yd, nx, TOL, "batchnorm_fwd_train y");
    CK_REL(mean, md, c, TOL, "batchnorm_fwd_train mean");
    CK_REL(rstd, rd, c, TOL, "batchnorm_fwd_train rstd");
    CK_REL(rm, rmd, c, TOL, "batchnorm running_mean");
    CK_REL(rv, rvd, c, TOL, "batchnorm running_var");
    // sync BatchNorm: the same step cut into slices of 1, 0-2 and the rest of the images (a
    // slice of one image has one value per channel when hw is 1), statistics merged, then
    // normalised slice by slice from the merged mean and variance
    float *parts = malloc((size_t)3 * 2 * c * sizeof *parts), *var = malloc(c * sizeof *var);
    float *rm2 = ref_rand(c, 63, -0.2f, 0.2f), *rv2 = ref_rand(c, 64, 0.5, 2);
    int i0[4] = {0, 1, 1 + (n - 1) / 2, n}, counts[3], r = 0;
    for (int k = 0; k < 3; k++)
        if (i0[k + 1] > i0[k]) {
            counts[r] = (i0[k + 1] - i0[k]) * hw;
            size_t o = (size_t)i0[k] * c * hw;
            ck_assert_int_eq(ops_batchnorm_stats(ctx, parts + (size_t)r++ * 2 * c, x + o, i0[k + 1] - i0[k], c, hw), 0);
        }
    ref_fill_uniform(y, nx, 99, 5, 6); // garbage: the ops assign
    ck_assert_int_eq(ops_batchnorm_stats_merge(ctx, mean, var, rstd, rm2, rv2, parts, counts, r, c, 0.1f, 1e-5f), 0);
    for (int k = 0; k < 3; k++) {
        size_t o = (size_t)i0[k] * c * hw;
        if (i0[k + 1] > i0[k])
            ck_assert_int_eq(ops_batchnorm_fwd_eval(ctx, act, y + o, x + o, ga, be, mean, var, i0[k + 1] - i0[k], c, hw,
                                                    1e-5f), 0);
    }
    CK_REL(y, yd, nx, TOL, "sync batchnorm y");
    CK_REL(mean, md, c, TOL, "batchnorm_stats_merge mean");
    CK_REL(rstd, rd, c, TOL, "batchnorm_stats_merge rstd");
    CK_REL(rm2, rmd, c, TOL, "batchnorm_stats_merge running_mean");
    CK_REL(rv2, rvd, c, TOL, "batchnorm_stats_merge running_var");
    for (int j = 0; j < c; j++) // rstd is 1/sqrt(var + eps) of the stored var: what fwd_eval applies
        ck_assert_float_eq(rstd[j], (float)(1.0 / sqrt((double)var[j] + 1e-5)));
    free(parts), free(var), free(rm2), free(rv2);
    ops_ctx_destroy(ctx);
    free(x), free(ga), free(be), free(rm), free(rv), free(y), free(mean), free(rstd);
    free(xd), free(gad), free(bed), free(rmd), free(rvd), free(yd), free(md), free(rd);
}
END_TEST

// --- elementwise ----------------------------------------------------------------------------------

START_TEST(test_elementwise) {
    size_t n = _i ? 100003 : 37; // below and above the threading threshold
    float *a = ref_rand(n, 70, -5, 5), *b = ref_rand(n, 71, -5, 5), *y = malloc(n * sizeof *y);
    double *ad = ref_dup(a, n), *bd = ref_dup(b, n), *yd = malloc(n * sizeof *yd);
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_fill(ctx, y, 2.5f, n), 0);
    for (size_t i = 0; i < n; i++) yd[i] = 2.5;
    CK_REL(y, yd, n, 0, "fill");
    ck_assert_int_eq(ops_add(ctx, y, a, b, n), 0);
    for (size_t i = 0; i < n; i++) yd[i] = ad[i] + bd[i];
    CK_REL(y, yd, n, TOL, "add");
    ck_assert_int_eq(ops_add(ctx, y, y, a, n), 0); // aliasing
    for (size_t i = 0; i < n; i++) yd[i] += ad[i];
    CK_REL(y, yd, n, TOL, "add in place");
    ck_assert_int_eq(ops_scale(ctx, y, -0.75f, n), 0);
    for (size_t i = 0; i < n; i++) yd[i] *= -0.75;
    CK_REL(y, yd, n, TOL, "scale");
    ck_assert_int_eq(ops_axpy(ctx, y, 0.3f, a, n), 0);
    for (size_t i = 0; i < n; i++) yd[i] += 0.3f * ad[i];
    CK_REL(y, yd, n, TOL, "axpy");
    ck_assert_int_eq(ops_axpby(ctx, y, 0.6f, a, -1.25f, b, n), 0);
    for (size_t i = 0; i < n; i++) yd[i] = 0.6f * ad[i] - 1.25 * bd[i];
    CK_REL(y, yd, n, TOL, "axpby");
    for (int act = 0; act < OPS_ACT_COUNT; act++) {
        ck_assert_int_eq(ops_act_fwd(ctx, (ops_act)act, y, a, n), 0);
        ref_act_fwd((ops_act)act, yd, ad, n);
        CK_REL(y, yd, n, TOL, "act_fwd");
        ck_assert_int_eq(ops_copy(ctx, y, a, n * sizeof *y), 0);
        ck_assert_int_eq(ops_act_fwd(ctx, (ops_act)act, y, y, n), 0); // in place
        CK_REL(y, yd, n, TOL, "act_fwd in place");
    }
    ops_ctx_destroy(ctx);
    free(a), free(b), free(y), free(ad), free(bd), free(yd);
}
END_TEST

// Swish over the whole float range: the vectorised exp saturates like expf (no NaN, no overflow).
START_TEST(test_swish_extremes) {
    float x[] = {-1e30f, -200.0f, -104.0f, -88.0f, -20.0f, -1e-30f, 0.0f, 1e-30f, 20.0f, 88.0f, 89.0f, 200.0f, 1e30f};
    size_t n = sizeof x / sizeof x[0];
    float y[sizeof x / sizeof x[0]];
    ops_ctx *ctx = tops_ctx(1);
    ck_assert_int_eq(ops_act_fwd(ctx, OPS_ACT_SWISH, y, x, n), 0);
    for (size_t i = 0; i < n; i++) {
        double want = ref_act(OPS_ACT_SWISH, x[i]);
        ck_assert_msg(isfinite(y[i]) && fabs(y[i] - want) <= 1e-6 * fabs(want) + 1e-30, "swish(%g) = %g, want %g",
                      (double)x[i], (double)y[i], want);
    }
    ops_ctx_destroy(ctx);
}
END_TEST

// --- shape ops ------------------------------------------------------------------------------------

START_TEST(test_shape_fwd) {
    int n = _i ? 3 : 1, c = 5, h = 7, w = 3, hw = h * w, cb = 6;
    size_t nx = (size_t)n * c * hw;
    float *x = ref_rand(nx, 80, -1, 1), *b2 = ref_rand((size_t)n * cb * hw, 81, -1, 1), *bias = ref_rand((size_t)n * c, 82, -1, 1);
    float *y = malloc(4 * nx * sizeof *y + (size_t)n * cb * hw * sizeof *y);
    double *xd = ref_dup(x, nx), *b2d = ref_dup(b2, (size_t)n * cb * hw), *biasd = ref_dup(bias, (size_t)n * c);
    double *yd = malloc(4 * nx * sizeof *yd + (size_t)n * cb * hw * sizeof *yd);
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_copy(ctx, y, x, nx * sizeof *y), 0);
    ck_assert_int_eq(ops_add_channel_bias(ctx, y, bias, n, c, hw), 0);
    ref_add_channel_bias(yd, xd, biasd, n, c, hw);
    CK_REL(y, yd, nx, TOL, "add_channel_bias");
    ck_assert_int_eq(ops_concat_fwd(ctx, y, x, b2, n, c, cb, hw), 0);
    ref_concat_fwd(yd, xd, b2d, n, c, cb, hw);
    CK_REL(y, yd, (size_t)n * (c + cb) * hw, 0, "concat_fwd");
    ck_assert_int_eq(ops_upsample2x_fwd(ctx, y, x, n, c, h, w), 0);
    ref_upsample2x_fwd(yd, xd, n, c, h, w);
    CK_REL(y, yd, 4 * nx, 0, "upsample2x_fwd");
    ck_assert_int_eq(ops_avgpool_fwd(ctx, y, x, n, c, hw), 0);
    ref_avgpool_fwd(yd, xd, n, c, hw);
    CK_REL(y, yd, (size_t)n * c, TOL, "avgpool_fwd");
    ops_ctx_destroy(ctx);
    free(x), free(b2), free(bias), free(y), free(xd), free(b2d), free(biasd), free(yd);
}
END_TEST

// --- softmax and embeddings -------------------------------------------------------------------------

START_TEST(test_softmax_fwd) {
    static const int dims[][2] = {{1, 1}, {3, 17}, {67, 130}, {256, 300}};
    static const float scales[] = {1.0f, 0.125f, -0.5f, 3.0f};
    int rows = dims[_i][0], cols = dims[_i][1];
    size_t nx = (size_t)rows * cols;
    float *x = ref_rand(nx, 90 + _i, -30, 30), *y = malloc(nx * sizeof *y);
    double *xd = ref_dup(x, nx), *yd = malloc(nx * sizeof *yd);
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_softmax_fwd(ctx, y, x, rows, cols, scales[_i]), 0);
    ref_softmax_fwd(yd, xd, rows, cols, scales[_i]);
    CK_REL(y, yd, nx, TOL, "softmax_fwd");
    ops_ctx_destroy(ctx);
    free(x), free(y), free(xd), free(yd);
}
END_TEST

START_TEST(test_embedding_fwd) {
    int n = 7, rows = 11, dim = 13;
    int32_t ids[] = {3, 0, 10, 3, 5, 10, 1};
    float *table = ref_rand((size_t)rows * dim, 100, -1, 1), *y = malloc((size_t)n * dim * sizeof *y);
    double *td = ref_dup(table, (size_t)rows * dim), *yd = malloc((size_t)n * dim * sizeof *yd);
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_embedding_fwd(ctx, y, table, ids, n, rows, dim), 0);
    ref_embedding_fwd(yd, td, ids, n, dim);
    CK_REL(y, yd, (size_t)n * dim, 0, "embedding_fwd");
    ops_ctx_destroy(ctx);
    free(table), free(y), free(td), free(yd);
}
END_TEST

START_TEST(test_timestep_embedding) {
    float t[] = {0, 1, 17, 250.5f, 500, 999};
    int n = 6, dims[] = {128, 7, 32, 2};
    int dim = dims[_i];
    float *y = malloc((size_t)n * dim * sizeof *y);
    double *yd = malloc((size_t)n * dim * sizeof *yd);
    ops_ctx *ctx = tops_ctx(2);
    ck_assert_int_eq(ops_timestep_embedding(ctx, y, t, n, dim), 0);
    ref_timestep_embedding(yd, t, n, dim);
    // float arguments t*f near 1000 carry an absolute rounding error of up to 3e-5
    for (int i = 0; i < n * dim; i++)
        ck_assert_msg(fabs(y[i] - yd[i]) <= 1e-4, "timestep_embedding[%d] dim %d: %g vs %g", i, dim, (double)y[i], yd[i]);
    if (dim % 2) ck_assert_float_eq(y[dim - 1], 0.0f);
    ops_ctx_destroy(ctx);
    free(y), free(yd);
}
END_TEST

Suite *suite_ops_fwd(void) {
    Suite *s = suite_create("ops_fwd");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_conv2d_fwd, 0, (int)(sizeof conv_cases / sizeof conv_cases[0]));
    tcase_add_loop_test(tc, test_conv2d_adjoint, 0, (int)(sizeof conv_cases / sizeof conv_cases[0]));
    tcase_add_test(tc, test_winograd_pick);
    tcase_add_test(tc, test_direct_pick);
    tcase_add_loop_test(tc, test_linear_fwd, 0, 3);
    tcase_add_loop_test(tc, test_bmm, 0, 8);
    tcase_add_loop_test(tc, test_groupnorm_fwd, 0, 12);
    tcase_add_loop_test(tc, test_batchnorm_fwd, 0, 9);
    tcase_add_loop_test(tc, test_elementwise, 0, 2);
    tcase_add_test(tc, test_swish_extremes);
    tcase_add_loop_test(tc, test_shape_fwd, 0, 2);
    tcase_add_loop_test(tc, test_softmax_fwd, 0, 4);
    tcase_add_test(tc, test_embedding_fwd);
    tcase_add_loop_test(tc, test_timestep_embedding, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}
